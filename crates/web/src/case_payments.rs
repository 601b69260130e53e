//! DIP case payment's use cases (R9.2), shared by the JSON API and the web UI: the insurance
//! officer runs a month provisionally or the year finally (`InsuranceSettle`); those who read
//! the group's reports (`ReportRead`) see the runs, the members' totals and any case traced
//! to every number used. Case-level pages name claims of residents, so each read of them is
//! audited.

use serde::Serialize;

use medgrid_domain::access::{Action, Id, OrgPath};
use medgrid_domain::insurance::case_payment::Branch;
use medgrid_domain::insurance::Step;
use medgrid_store::insurance::case_payment::{
    self, CasePage, CasePaymentRow, CasePaymentRun, UnitPayment,
};

use crate::auth::Caller;
use crate::error::AppError;
use crate::insurance::group_path;
use crate::AppState;

/// Runs DIP for `month` (1–12) or, with 0, the whole year's final run.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    state: &AppState,
    caller: &Caller,
    group_id: Id,
    year: i32,
    fund: &str,
    month: u32,
    reason: Option<&str>,
) -> Result<CasePaymentRun, AppError> {
    let path = group_path(state, group_id).await?;
    caller.allow(Action::InsuranceSettle, &path).await?;
    Ok(state
        .store
        .run_case_payment(
            &caller.actor,
            path,
            year,
            fund,
            month,
            reason,
            medgrid_store::local_now().date(),
        )
        .await?)
}

pub async fn runs(
    state: &AppState,
    caller: &Caller,
    group_id: Id,
    year: i32,
    fund: &str,
) -> Result<Vec<CasePaymentRun>, AppError> {
    caller
        .allow(Action::ReportRead, &group_path(state, group_id).await?)
        .await?;
    Ok(state.store.case_payment_runs(group_id, year, fund).await?)
}

/// A run with what each member unit earned in it.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    pub run: CasePaymentRun,
    pub units: Vec<UnitPayment>,
    pub rule_text: String,
}

async fn allowed_run(
    state: &AppState,
    caller: &Caller,
    id: Id,
) -> Result<(CasePaymentRun, OrgPath), AppError> {
    let run = state.store.case_payment_run(id).await?;
    let path = group_path(state, run.group_id).await?;
    caller.allow(Action::ReportRead, &path).await?;
    Ok((run, path))
}

pub async fn view(state: &AppState, caller: &Caller, id: Id) -> Result<RunView, AppError> {
    let (run, _) = allowed_run(state, caller, id).await?;
    let units = state.store.case_payment_units(id).await?;
    let rule_text = medgrid_domain::insurance::dip::describe(&run.rule);
    Ok(RunView {
        run,
        units,
        rule_text,
    })
}

/// `high`, `low` or `normal`; anything else is refused by name.
pub fn branch(raw: Option<&str>) -> Result<Option<Branch>, AppError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some("high") => Ok(Some(Branch::High)),
        Some("low") => Ok(Some(Branch::Low)),
        Some("normal") => Ok(Some(Branch::Normal)),
        Some(_) => Err(AppError::Invalid(medgrid_domain::Invalid::one(
            medgrid_domain::FieldError::new(
                "branch",
                "unknown",
                "病例类型须为 high（高倍率）、low（低倍率）或 normal（正常）",
                "must be high, low or normal",
            ),
        ))),
    }
}

pub async fn cases(
    state: &AppState,
    caller: &Caller,
    id: Id,
    branch: Option<Branch>,
    limit: i64,
    offset: i64,
) -> Result<CasePage, AppError> {
    let (_, path) = allowed_run(state, caller, id).await?;
    let page = state.store.case_payments(id, branch, limit, offset).await?;
    caller
        .audit_read(
            "insurance.case_payment.cases.read",
            "CasePaymentRun",
            id.to_string(),
            path,
        )
        .await?;
    Ok(page)
}

/// One case with the steps behind its payment.
#[derive(Debug, Clone, Serialize)]
pub struct TracedCase {
    pub run_id: Id,
    pub case: CasePaymentRow,
    pub unit_name: Option<String>,
    pub steps: Vec<Step>,
}

pub async fn traced(
    state: &AppState,
    caller: &Caller,
    id: Id,
    claim_id: Id,
) -> Result<TracedCase, AppError> {
    let (run, path) = allowed_run(state, caller, id).await?;
    let case = state.store.case_payment(id, claim_id).await?;
    caller
        .audit_read(
            "insurance.case_payment.case.read",
            "Claim",
            claim_id.to_string(),
            path,
        )
        .await?;
    let unit_name = match case.unit_id {
        Some(u) => Some(state.store.unit(u).await?.legal_name),
        None => None,
    };
    Ok(TracedCase {
        run_id: id,
        steps: case_payment::trace(&run, &case),
        case,
        unit_name,
    })
}
