//! The insurance budget's use cases (R9.1), shared by the JSON API and the web UI: the
//! bureau's insurance officer sets budgets and makes the runs (`InsuranceSettle`); those who
//! read the group's reports (`ReportRead`) see them. Also the month-by-month picture of
//! spending against the budget, with a year-end projection, and the statement in Excel.

use serde::Serialize;

use medgrid_domain::access::{Action, Id, OrgPath};
use medgrid_domain::insurance::budget::months;
use medgrid_domain::insurance::{yuan, Fen};
use medgrid_store::insurance::case_payment::CasePaymentRun;
use medgrid_store::insurance::claims::ClaimImport;
use medgrid_store::insurance::public_funds::{PublicFundParams, PublicFundRun};
use medgrid_store::insurance::{
    BudgetDraft, BudgetRecord, MonthSpending, PrepaymentRun, SettlementRun,
};

use crate::auth::Caller;
use crate::error::AppError;
use crate::AppState;

pub(crate) async fn group_path(state: &AppState, group_id: Id) -> Result<OrgPath, AppError> {
    Ok(state.store.group(group_id).await?.path())
}

/// Everything of a group's year and fund on one page.
#[derive(Debug, Clone, Serialize)]
pub struct YearView {
    pub group_id: Id,
    pub year: i32,
    pub fund: String,
    pub budget: Option<BudgetRecord>,
    pub spending: Vec<MonthSpending>,
    pub runs: Vec<PrepaymentRun>,
    pub settlements: Vec<SettlementRun>,
    /// DIP case-payment runs, months first, then the year's final.
    pub case_payments: Vec<CasePaymentRun>,
    /// The year's quarterly public-fund runs (not split by fund).
    pub public_funds: Vec<PublicFundRun>,
    /// Months elapsed with spending, and the year's spending projected from them.
    pub months_seen: u32,
    pub projected: Fen,
}

pub async fn year(
    state: &AppState,
    caller: &Caller,
    group_id: Id,
    year: i32,
    fund: &str,
) -> Result<YearView, AppError> {
    caller
        .allow(Action::ReportRead, &group_path(state, group_id).await?)
        .await?;
    let budget = state
        .store
        .budgets(group_id)
        .await?
        .into_iter()
        .find(|b| b.year == year && b.fund.as_str() == fund);
    let spending = state.store.month_spending(group_id, year, fund).await?;
    let runs = state.store.prepayment_runs(group_id, year, fund).await?;
    let settlements = state.store.settlements(group_id, year, fund).await?;
    let case_payments = state.store.case_payment_runs(group_id, year, fund).await?;
    let public_funds = state.store.public_fund_runs(group_id, year).await?;
    let charged = budget.as_ref().is_none_or(|b| b.charge_outflow);
    let total = |m: &MonthSpending| m.in_group + if charged { m.outflow } else { 0 };
    let months_seen = spending
        .iter()
        .rposition(|m| total(m) > 0)
        .map_or(0, |i| i as u32 + 1);
    let so_far: Fen = spending.iter().map(total).sum();
    // A straight run-rate: what the months seen would make over twelve.
    let projected = if months_seen == 0 {
        0
    } else {
        medgrid_domain::insurance::share(so_far, 12, i64::from(months_seen))
    };
    Ok(YearView {
        group_id,
        year,
        fund: fund.to_owned(),
        budget,
        spending,
        runs,
        settlements,
        case_payments,
        public_funds,
        months_seen,
        projected,
    })
}

pub async fn set_budget(
    state: &AppState,
    caller: &Caller,
    group_id: Id,
    draft: &BudgetDraft,
) -> Result<BudgetRecord, AppError> {
    let path = group_path(state, group_id).await?;
    caller.allow(Action::InsuranceSettle, &path).await?;
    Ok(state.store.set_budget(&caller.actor, path, draft).await?)
}

pub async fn run_prepayment(
    state: &AppState,
    caller: &Caller,
    group_id: Id,
    year: i32,
    fund: &str,
    month: u32,
    correction: Option<&str>,
) -> Result<PrepaymentRun, AppError> {
    let path = group_path(state, group_id).await?;
    caller.allow(Action::InsuranceSettle, &path).await?;
    Ok(state
        .store
        .run_prepayment(
            &caller.actor,
            path,
            year,
            fund,
            month,
            correction,
            medgrid_store::local_now().date(),
        )
        .await?)
}

pub async fn settle(
    state: &AppState,
    caller: &Caller,
    group_id: Id,
    year: i32,
    fund: &str,
    score: i64,
) -> Result<SettlementRun, AppError> {
    let path = group_path(state, group_id).await?;
    caller.allow(Action::InsuranceSettle, &path).await?;
    Ok(state
        .store
        .settle_year(&caller.actor, path, year, fund, score)
        .await?)
}

/// Runs a quarter of the bundled public funds (R9.4).
#[allow(clippy::too_many_arguments)]
pub async fn run_public_funds(
    state: &AppState,
    caller: &Caller,
    group_id: Id,
    year: i32,
    quarter: u32,
    params: &PublicFundParams,
    reason: Option<&str>,
) -> Result<PublicFundRun, AppError> {
    let path = group_path(state, group_id).await?;
    caller.allow(Action::InsuranceSettle, &path).await?;
    Ok(state
        .store
        .run_public_funds(
            &caller.actor,
            path,
            year,
            quarter,
            params,
            reason,
            medgrid_store::local_now().date(),
        )
        .await?)
}

pub async fn public_fund_runs(
    state: &AppState,
    caller: &Caller,
    group_id: Id,
    year: i32,
) -> Result<Vec<PublicFundRun>, AppError> {
    caller
        .allow(Action::ReportRead, &group_path(state, group_id).await?)
        .await?;
    Ok(state.store.public_fund_runs(group_id, year).await?)
}

/// Imports the bureau's claims file for a group; with `check_only`, the validation report
/// alone.
pub async fn import_claims(
    state: &AppState,
    caller: &Caller,
    group_id: Id,
    bytes: &[u8],
    check_only: bool,
) -> Result<ClaimImport, AppError> {
    let group = state.store.group(group_id).await?;
    caller.allow(Action::InsuranceSettle, &group.path()).await?;
    Ok(state
        .store
        .import_claims(&caller.actor, group.path(), &group.code, bytes, check_only)
        .await?)
}

pub async fn settlement(
    state: &AppState,
    caller: &Caller,
    id: Id,
) -> Result<SettlementRun, AppError> {
    let s = state.store.settlement(id).await?;
    caller
        .allow(Action::ReportRead, &group_path(state, s.group_id).await?)
        .await?;
    Ok(s)
}

/// One bar of the chart: a month's spending against its share of the budget.
#[derive(Debug, Clone, Serialize)]
pub struct ChartBar {
    pub month: u32,
    pub x: i64,
    pub y: i64,
    pub height: i64,
    pub budget_y: i64,
    pub label: String,
    pub over: bool,
}

/// The month-by-month chart as SVG coordinates (a 600 × 200 plot): bars of spending, the
/// month's budget as a mark on each.
pub fn chart(view: &YearView) -> Vec<ChartBar> {
    let charged = view.budget.as_ref().is_none_or(|b| b.charge_outflow);
    let budget_months = view.budget.as_ref().map(|b| months(b.amount));
    let totals: Vec<Fen> = view
        .spending
        .iter()
        .map(|m| m.in_group + if charged { m.outflow } else { 0 })
        .collect();
    let top = totals
        .iter()
        .copied()
        .chain(budget_months.iter().flatten().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let scale = |v: Fen| medgrid_domain::insurance::share(v, 190, top);
    totals
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let h = scale(*t);
            let b = budget_months.map_or(0, |m| m[i]);
            ChartBar {
                month: i as u32 + 1,
                x: 40 + 46 * i as i64,
                y: 200 - h,
                height: h,
                budget_y: 200 - scale(b),
                label: format!("{} 月：{} 元 / 预算 {} 元", i + 1, yuan(*t), yuan(b)),
                over: b > 0 && *t > b,
            }
        })
        .collect()
}

/// Settlement `id` as a workbook download, for the API and the UI alike.
pub async fn statement_download(
    state: &AppState,
    caller: &Caller,
    id: Id,
) -> Result<axum::response::Response, AppError> {
    let s = settlement(state, caller, id).await?;
    let group = state.store.group(s.group_id).await?;
    let runs = state
        .store
        .prepayment_runs(s.group_id, s.year, &s.fund)
        .await?;
    let bytes =
        statement_xlsx(&s, &group.name, &runs).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(crate::api::indicators::download(
        bytes,
        crate::api::indicators::XLSX,
        &format!("settlement-{}-{}-{}.xlsx", s.group_id, s.year, s.seq),
    ))
}

/// The settlement statement as a workbook: the statement's lines, then the months' runs.
pub fn statement_xlsx(
    s: &SettlementRun,
    group_name: &str,
    runs: &[PrepaymentRun],
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let money = Format::new().set_num_format("#,##0.00");
    let sheet = book.add_worksheet().set_name("年终清算")?;
    sheet.write_string_with_format(
        0,
        0,
        format!(
            "{group_name} · {} 年度医保总额年终清算（第 {} 版）",
            s.year, s.seq
        ),
        &bold,
    )?;
    sheet.write_string_with_format(2, 0, "项目", &bold)?;
    sheet.write_string_with_format(2, 1, "金额（元）", &bold)?;
    for (i, step) in s.statement.steps.iter().enumerate() {
        let row = 3 + i as u32;
        sheet.write_string(row, 0, &step.label_zh)?;
        sheet.write_number_with_format(row, 1, step.amount as f64 / 100.0, &money)?;
    }
    sheet.set_column_width(0, 48)?;
    sheet.set_column_width(1, 20)?;
    let months = book.add_worksheet().set_name("月度预付")?;
    for (c, h) in [
        "月份",
        "版本",
        "月预算",
        "预付额",
        "外流",
        "保证金",
        "应拨付",
        "更正理由",
    ]
    .iter()
    .enumerate()
    {
        months.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    for (i, r) in runs.iter().enumerate() {
        let row = 1 + i as u32;
        months.write_number(row, 0, f64::from(r.month))?;
        months.write_number(row, 1, f64::from(r.seq))?;
        for (c, v) in [r.month_budget, r.gross, r.outflow, r.deposit, r.due]
            .iter()
            .enumerate()
        {
            months.write_number_with_format(row, 2 + c as u16, *v as f64 / 100.0, &money)?;
        }
        months.write_string(row, 7, r.reason.as_deref().unwrap_or(""))?;
    }
    book.save_to_buffer()
}
