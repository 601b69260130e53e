//! DIP case-payment pages (病种分值付费, R9.2): a run's point value and what each member unit
//! earned, as a chart and a table; its cases by branch, page by page; one case traced to
//! every number its payment used. Runs are made from the insurance page.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use minijinja::context;
use serde::Deserialize;

use medgrid_domain::access::Id;
use medgrid_domain::insurance::case_payment::{show_points, Branch};
use medgrid_domain::insurance::{yuan, Fen};
use medgrid_store::insurance::case_payment::CasePaymentRow;

use super::{check_csrf, nav, page, UiError};
use crate::auth::UiCaller;
use crate::case_payments;
use crate::AppState;

const PAGE: i64 = 50;

#[derive(Debug, Deserialize)]
pub struct RunForm {
    csrf: String,
    group_id: Id,
    year: i32,
    fund: String,
    month: u32,
    #[serde(default)]
    reason: Option<String>,
}

pub async fn run(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Form(f): Form<RunForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    let run = case_payments::run(
        &state,
        &caller,
        f.group_id,
        f.year,
        &f.fund,
        f.month,
        f.reason.as_deref(),
    )
    .await
    .map_err(|e| page(&state, &caller, e))?;
    Ok(Redirect::to(&format!("/insurance/case-payments/{}", run.id)).into_response())
}

/// "2025 年 3 月（预结算）" or "2025 年度（年终决算）".
pub fn period(year: i32, month: u32) -> String {
    if month == 0 {
        format!("{year} 年度（年终决算）")
    } else {
        format!("{year} 年 {month} 月（月度预结算）")
    }
}

fn branch_zh(b: Branch) -> &'static str {
    match b {
        Branch::High => "高倍率",
        Branch::Low => "低倍率",
        Branch::Normal => "正常",
    }
}

fn case_row(c: &CasePaymentRow) -> minijinja::Value {
    context! {
        claim_id => c.claim_id, dip_group => c.dip_group.clone(), level => c.level.clone(),
        cost => yuan(c.cost), branch => branch_zh(c.result.case.branch),
        branch_code => format!("{:?}", c.result.case.branch).to_lowercase(),
        points => show_points(c.result.case.points), gross => yuan(c.result.gross),
        self_paid => yuan(c.result.self_paid), paid => yuan(c.result.paid),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct CaseQuery {
    branch: Option<String>,
    #[serde(default)]
    offset: i64,
}

pub async fn run_page(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
    Query(q): Query<CaseQuery>,
) -> Result<Response, UiError> {
    let fail = |e| page(&state, &caller, e);
    let view = case_payments::view(&state, &caller, id)
        .await
        .map_err(fail)?;
    let branch = case_payments::branch(q.branch.as_deref()).map_err(fail)?;
    let offset = q.offset.max(0);
    let cases = case_payments::cases(&state, &caller, id, branch, PAGE, offset)
        .await
        .map_err(fail)?;
    let group = state
        .store
        .group(view.run.group_id)
        .await
        .map_err(|e| fail(e.into()))?;
    let r = &view.run;
    let top: Fen = view.units.iter().map(|u| u.paid).max().unwrap_or(0).max(1);
    let units: Vec<_> = view
        .units
        .iter()
        .enumerate()
        .map(|(i, u)| {
            context! {
                name => if u.unit_name.is_empty() { "（未注明机构）".to_owned() } else { u.unit_name.clone() },
                cases => u.cases, points => show_points(u.points), cost => yuan(u.cost),
                gross => yuan(u.gross), paid => yuan(u.paid),
                y => 4 + 24 * i as i64, width => medgrid_domain::insurance::share(u.paid.max(0), 480, top),
            }
        })
        .collect();
    let mut groups = r.dip_groups.clone();
    groups.sort_by(|a, b| b.cases.cmp(&a.cases).then(a.code.cmp(&b.code)));
    let groups: Vec<_> = groups
        .iter()
        .take(20)
        .map(|g| context! { code => g.code.clone(), cases => g.cases, mean => yuan(g.mean), points => show_points(g.points) })
        .collect();
    let branch_code = q.branch.clone().unwrap_or_default();
    let html = state.templates.render(
        "case_payment_run.html",
        context! {
            nav => nav(&caller), active => "insurance", group,
            run => context! {
                id => r.id, seq => r.seq, period => period(r.year, r.month), fund => r.fund.clone(),
                year => r.year, reason => r.reason.clone(), cases => r.cases, budget => yuan(r.budget),
                pool => yuan(r.pool), reserve => yuan(r.reserve), available => yuan(r.pool - r.reserve),
                total_points => show_points(r.total_points), point_value => yuan(r.fen_per_point),
                all_mean => yuan(r.all_mean), gross => yuan(r.gross), paid => yuan(r.paid),
                created_by => r.created_by.clone(), is_final => r.is_final(),
                groups_total => r.dip_groups.len(),
            },
            rule_text => view.rule_text, units, groups,
            cases => cases.cases.iter().map(case_row).collect::<Vec<_>>(),
            total => cases.total, branch => branch_code, offset,
            shown_from => if cases.cases.is_empty() { 0 } else { offset + 1 },
            shown_to => offset + cases.cases.len() as i64,
            prev => (offset > 0).then(|| (offset - PAGE).max(0)),
            next => (offset + PAGE < cases.total).then_some(offset + PAGE),
        },
    )?;
    Ok(html.into_response())
}

pub async fn case_page(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path((id, claim_id)): Path<(Id, Id)>,
) -> Result<Response, UiError> {
    let fail = |e| page(&state, &caller, e);
    let traced = case_payments::traced(&state, &caller, id, claim_id)
        .await
        .map_err(fail)?;
    let run = state
        .store
        .case_payment_run(id)
        .await
        .map_err(|e| fail(e.into()))?;
    let html = state.templates.render(
        "case_payment_case.html",
        context! {
            nav => nav(&caller), active => "insurance",
            run_id => id, period => period(run.year, run.month),
            case => case_row(&traced.case), unit_name => traced.unit_name,
            steps => traced.steps.iter().map(|s| context! {
                key => s.key.clone(), label => s.label_zh.clone(),
                amount => (s.amount != 0 || s.key == "paid").then(|| yuan(s.amount)),
            }).collect::<Vec<_>>(),
        },
    )?;
    Ok(html.into_response())
}

pub async fn export(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
) -> Result<Response, UiError> {
    case_payments::run_download(&state, &caller, id)
        .await
        .map_err(|e| page(&state, &caller, e))
}
