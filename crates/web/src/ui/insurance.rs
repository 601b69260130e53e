//! The insurance budget pages (医保总额, R9.1): a group's year under one fund — the budget and
//! its rules, spending month by month against the budget with a year-end projection, the
//! monthly prepayment runs with their corrections, and the year-end settlement statement
//! with its Excel export; DIP case-payment runs are made here and read on their own pages.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Datelike;
use minijinja::context;
use serde::Deserialize;

use medgrid_domain::access::{Action, Id};
use medgrid_domain::insurance::budget::{months, Fund};
use medgrid_domain::insurance::{hundredths, percent, yuan};
use medgrid_store::insurance::BudgetDraft;

use super::{check_csrf, may, nav, page, UiError};
use crate::auth::{Caller, UiCaller};
use crate::error::AppError;
use crate::insurance;
use crate::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct YearQuery {
    group_id: Option<Id>,
    year: Option<i32>,
    fund: Option<String>,
    /// After a claims import: how many lines were imported and how many were already kept.
    imported: Option<usize>,
    unchanged: Option<usize>,
}

/// The groups the caller may read reports of, first the caller's own.
async fn groups(
    state: &AppState,
    caller: &Caller,
) -> Result<Vec<medgrid_domain::org::Group>, AppError> {
    let city = caller.principal.scope.path.city;
    let tree = state.store.city_tree(city).await?;
    Ok(tree
        .groups
        .into_iter()
        .filter(|g| may(caller, Action::ReportRead, &g.path()))
        .collect())
}

pub async fn page_view(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Query(q): Query<YearQuery>,
) -> Result<Response, UiError> {
    let groups = groups(&state, &caller)
        .await
        .map_err(|e| page(&state, &caller, e))?;
    let Some(group) = q
        .group_id
        .and_then(|id| groups.iter().find(|g| g.id == id))
        .or_else(|| groups.first())
        .cloned()
    else {
        return Err(page(
            &state,
            &caller,
            AppError::Forbidden(medgrid_domain::access::Denied {
                message_zh: "您无权查看任何医疗集团的医保总额".into(),
                message_en: "no group's insurance budget is open to you".into(),
            }),
        ));
    };
    let year = q
        .year
        .unwrap_or_else(|| medgrid_store::local_now().date().year() - 1);
    let fund = q
        .fund
        .as_deref()
        .and_then(Fund::parse)
        .unwrap_or(Fund::Resident);
    let view = insurance::year(&state, &caller, group.id, year, fund.as_str())
        .await
        .map_err(|e| page(&state, &caller, e))?;
    let can_settle = may(&caller, Action::InsuranceSettle, &group.path());
    let budget_months = view.budget.as_ref().map(|b| months(b.amount));
    let charged = view.budget.as_ref().is_none_or(|b| b.charge_outflow);
    let rows: Vec<_> = view
        .spending
        .iter()
        .map(|m| {
            let runs: Vec<_> = view.runs.iter().filter(|r| r.month == m.month).collect();
            let in_force = runs.last();
            context! {
                month => m.month,
                budget => budget_months.map(|b| yuan(b[m.month as usize - 1])),
                in_group => yuan(m.in_group),
                outflow => yuan(m.outflow),
                total => yuan(m.in_group + if charged { m.outflow } else { 0 }),
                due => in_force.map(|r| yuan(r.due)),
                deposit => in_force.map(|r| yuan(r.deposit)),
                run_id => in_force.map(|r| r.id),
                corrections => runs.len().saturating_sub(1),
                steps => in_force.map(|r| r.steps.iter().map(|s| context! { label => s.label_zh.clone(), amount => yuan(s.amount) }).collect::<Vec<_>>()),
            }
        })
        .collect();
    let next_month = (1..=12u32).find(|m| !view.runs.iter().any(|r| r.month == *m));
    let latest = view.settlements.first().map(|s| {
        context! {
            id => s.id, seq => s.seq, score => format!("{}.{:02}", s.score / 100, s.score % 100),
            due => yuan(s.due), owed_back => s.due < 0, created_by => s.created_by.clone(),
            steps => s.statement.steps.iter().map(|x| context! { label => x.label_zh.clone(), amount => yuan(x.amount), key => x.key.clone() }).collect::<Vec<_>>(),
        }
    });
    let budget = view.budget.as_ref().map(|b| {
        context! {
            amount => yuan(b.amount), amount_fen => b.amount, charge_outflow => b.charge_outflow,
            ratio => percent(b.prepayment.ratio), deposit => percent(b.prepayment.deposit),
            updated_by => b.updated_by.clone(),
        }
    });
    let dip_runs: Vec<_> = view
        .case_payments
        .iter()
        .map(|r| {
            context! {
                id => r.id, seq => r.seq, period => super::case_payments::period(r.year, r.month),
                cases => r.cases, point_value => yuan(r.fen_per_point), paid => yuan(r.paid),
                created_by => r.created_by.clone(), reason => r.reason.clone(),
            }
        })
        .collect();
    let dip_periods: Vec<_> = (1..=12u32)
        .chain(std::iter::once(0))
        .map(|m| {
            let done = view.case_payments.iter().any(|r| r.month == m);
            context! { month => m, label => super::case_payments::period(year, m), done }
        })
        .collect();
    let fund_runs: Vec<_> = view
        .public_funds
        .iter()
        .map(|r| {
            context! {
                quarter => r.quarter, seq => r.seq, reason => r.reason.clone(), population => r.population,
                year_total => yuan(r.year_total), quarter_total => yuan(r.quarter_total),
                per_person => yuan(r.parameters.per_person), advance_rate => percent(r.parameters.advance),
                scored => r.assessment_id.is_some(), created_by => r.created_by.clone(),
                members => r.members.iter().map(|m| context! {
                    name => m.unit_name.clone(), population => m.population,
                    score => m.score.map(|s| format!("{}.{:02}", s / 100, s % 100)),
                    share => yuan(m.share), advance => yuan(m.advance), released => yuan(m.released), withheld => yuan(m.withheld),
                }).collect::<Vec<_>>(),
            }
        })
        .collect();
    let html = state.templates.render(
        "insurance.html",
        context! {
            nav => nav(&caller), active => "insurance", groups, group, year, fund => fund.as_str(),
            fund_label => fund.label_zh(), funds => Fund::ALL.iter().map(|f| context! { code => f.as_str(), label => f.label_zh() }).collect::<Vec<_>>(),
            budget, rows, bars => insurance::chart(&view), can_settle, next_month,
            all_run => next_month.is_none(), latest, settlements => view.settlements.len(),
            projected => yuan(view.projected), months_seen => view.months_seen,
            over_budget => view.budget.as_ref().is_some_and(|b| view.projected > b.amount),
            dip_runs, dip_periods, imported => q.imported, unchanged => q.unchanged, fund_runs,
            dip_rule => view.budget.as_ref().map(|b| medgrid_domain::insurance::dip::describe(&b.case_payment)),
        },
    )?;
    Ok(html.into_response())
}

fn back(group_id: Id, year: i32, fund: &str) -> Response {
    Redirect::to(&format!(
        "/insurance?group_id={group_id}&year={year}&fund={fund}"
    ))
    .into_response()
}

#[derive(Debug, Deserialize)]
pub struct BudgetForm {
    csrf: String,
    group_id: Id,
    year: i32,
    fund: String,
    /// Yuan, as people type it.
    amount: String,
    #[serde(default)]
    charge_outflow: Option<String>,
}

pub async fn set_budget(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Form(f): Form<BudgetForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    let Some(amount) = hundredths(&f.amount) else {
        return Err(page(
            &state,
            &caller,
            AppError::Invalid(medgrid_domain::Invalid::one(
                medgrid_domain::FieldError::new(
                    "amount",
                    "format",
                    "预算总额须为金额（元，最多两位小数）",
                    "the budget is an amount in yuan with at most two decimals",
                ),
            )),
        ));
    };
    let draft = BudgetDraft {
        year: f.year,
        fund: f.fund.clone(),
        amount,
        charge_outflow: f.charge_outflow.is_some(),
        prepayment: None,
        settlement: None,
        case_payment: None,
    };
    insurance::set_budget(&state, &caller, f.group_id, &draft)
        .await
        .map_err(|e| page(&state, &caller, e))?;
    Ok(back(f.group_id, f.year, &f.fund))
}

#[derive(Debug, Deserialize)]
pub struct PrepayForm {
    csrf: String,
    group_id: Id,
    year: i32,
    fund: String,
    month: u32,
    #[serde(default)]
    reason: Option<String>,
}

pub async fn prepay(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Form(f): Form<PrepayForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    insurance::run_prepayment(
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
    Ok(back(f.group_id, f.year, &f.fund))
}

#[derive(Debug, Deserialize)]
pub struct SettleForm {
    csrf: String,
    group_id: Id,
    year: i32,
    fund: String,
    score: String,
}

pub async fn settle(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Form(f): Form<SettleForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    let score = hundredths(&f.score)
        .filter(|s| *s <= 10_000)
        .ok_or_else(|| {
            page(
                &state,
                &caller,
                AppError::Invalid(medgrid_domain::Invalid::one(
                    medgrid_domain::FieldError::new(
                        "score",
                        "format",
                        "考核得分须为 0–100 的数（最多两位小数）",
                        "the score is a number 0–100 with at most two decimals",
                    ),
                )),
            )
        })?;
    insurance::settle(&state, &caller, f.group_id, f.year, &f.fund, score)
        .await
        .map_err(|e| page(&state, &caller, e))?;
    Ok(back(f.group_id, f.year, &f.fund))
}

pub async fn export(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
) -> Result<Response, UiError> {
    insurance::statement_download(&state, &caller, id)
        .await
        .map_err(|e| page(&state, &caller, e))
}

/// The bureau's claims file, uploaded from the page: imported whole or refused with every bad
/// line listed.
pub async fn import_claims(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    mut form: axum::extract::Multipart,
) -> Result<Response, UiError> {
    let mut fields: std::collections::HashMap<String, String> = Default::default();
    let mut bytes = Vec::new();
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(page(&state, &caller, super::referrals::upload_error(&e))),
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            bytes = field
                .bytes()
                .await
                .map_err(|e| page(&state, &caller, super::referrals::upload_error(&e)))?
                .to_vec();
        } else {
            let value = field
                .text()
                .await
                .map_err(|e| page(&state, &caller, super::referrals::upload_error(&e)))?;
            fields.insert(name, value);
        }
    }
    let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or_default();
    check_csrf(&caller, get("csrf")).map_err(|e| page(&state, &caller, e))?;
    let (Ok(group_id), Ok(year)) = (get("group_id").parse::<Id>(), get("year").parse::<i32>())
    else {
        return Err(page(
            &state,
            &caller,
            AppError::Invalid(medgrid_domain::Invalid::one(
                medgrid_domain::FieldError::new(
                    "group_id",
                    "invalid",
                    "表单缺少医疗集团或年度",
                    "the form lacks the group or the year",
                ),
            )),
        ));
    };
    let report = insurance::import_claims(&state, &caller, group_id, &bytes, false)
        .await
        .map_err(|e| page(&state, &caller, e))?;
    Ok(Redirect::to(&format!(
        "/insurance?group_id={group_id}&year={year}&fund={}&imported={}&unchanged={}",
        get("fund"),
        report.imported,
        report.unchanged
    ))
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct PublicFundForm {
    csrf: String,
    group_id: Id,
    year: i32,
    fund: String,
    quarter: u32,
    /// Yuan per resident and year.
    per_person: String,
    /// Yuan.
    #[serde(default)]
    drug_subsidy: String,
    /// Percent paid at once.
    advance: String,
    #[serde(default)]
    reason: Option<String>,
}

pub async fn run_public_funds(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Form(f): Form<PublicFundForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    let amount = |field: &str, raw: &str, zh: &str, en: &str| {
        hundredths(if raw.trim().is_empty() { "0" } else { raw }).ok_or_else(|| {
            page(
                &state,
                &caller,
                AppError::Invalid(medgrid_domain::Invalid::one(
                    medgrid_domain::FieldError::new(field.to_owned(), "format", zh, en),
                )),
            )
        })
    };
    let per_person = amount(
        "per_person",
        &f.per_person,
        "人均标准须为金额（元，最多两位小数）",
        "the standard per person is an amount in yuan",
    )?;
    let drug_subsidy = amount(
        "drug_subsidy",
        &f.drug_subsidy,
        "药品补助须为金额（元，最多两位小数）",
        "the drug subsidy is an amount in yuan",
    )?;
    // Percent with two decimals → parts per million.
    let advance = amount(
        "advance",
        &f.advance,
        "预拨比例须为 0–100 的百分数",
        "the advance is a percentage 0–100",
    )? * 100;
    let params = medgrid_store::insurance::public_funds::PublicFundParams {
        per_person,
        drug_subsidy,
        advance,
    };
    insurance::run_public_funds(
        &state,
        &caller,
        f.group_id,
        f.year,
        f.quarter,
        &params,
        f.reason.as_deref(),
    )
    .await
    .map_err(|e| page(&state, &caller, e))?;
    Ok(back(f.group_id, f.year, &f.fund))
}
