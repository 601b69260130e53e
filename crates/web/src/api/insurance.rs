//! Insurance budget endpoints (R9.1): budgets, monthly prepayment runs (and correcting runs),
//! year-end settlements and their statements; DIP case-payment runs with every case traced.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;

use medgrid_domain::access::Id;
use medgrid_store::insurance::case_payment::{CasePage, CasePaymentRun};
use medgrid_store::insurance::claims::ClaimImport;
use medgrid_store::insurance::public_funds::{PublicFundParams, PublicFundRun};
use medgrid_store::insurance::{BudgetDraft, BudgetRecord, PrepaymentRun, SettlementRun};

use super::{Body, Params, RawBody};
use crate::auth::ApiCaller;
use crate::case_payments::{self, RunView, TracedCase};
use crate::error::{AppError, Problem};
use crate::insurance::{self, YearView};
use crate::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct YearParams {
    year: i32,
    /// `employee` or `resident`.
    fund: String,
}

/// A group's year under one fund: the budget and its rules, spending month by month
/// (in the group and outflow), every prepayment run, the settlements, the projection.
#[utoipa::path(get, path = "/api/v1/groups/{id}/insurance", tag = "insurance",
    params(("id" = i64, Path), YearParams),
    responses((status = 200, body = Object), (status = 403, body = Problem)))]
pub async fn year(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(group_id): Path<Id>,
    Params(q): Params<YearParams>,
) -> Result<Json<YearView>, AppError> {
    Ok(Json(
        insurance::year(&state, &caller, group_id, q.year, &q.fund).await?,
    ))
}

/// Sets the budget of a year and fund (amounts in fen; rates in parts per million):
/// `year`, `fund`, `amount`, `charge_outflow`, and optionally `prepayment`
/// (`ratio`, `deposit`) and `settlement` (`surplus` and `overspend` bands, `deposit`).
#[utoipa::path(post, path = "/api/v1/groups/{id}/insurance/budgets", tag = "insurance",
    params(("id" = i64, Path)), request_body = Object,
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn set_budget(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(group_id): Path<Id>,
    Body(draft): Body<BudgetDraft>,
) -> Result<(StatusCode, Json<BudgetRecord>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(insurance::set_budget(&state, &caller, group_id, &draft).await?),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrepaymentInput {
    pub year: i32,
    pub fund: String,
    pub month: u32,
    /// Makes a correcting run of a month already run, for this reason.
    #[serde(default)]
    pub correction_reason: Option<String>,
}

/// Runs a month's prepayment (once; a month already run takes a correcting run).
#[utoipa::path(post, path = "/api/v1/groups/{id}/insurance/prepayments", tag = "insurance",
    params(("id" = i64, Path)), request_body = PrepaymentInput,
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn prepay(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(group_id): Path<Id>,
    Body(input): Body<PrepaymentInput>,
) -> Result<(StatusCode, Json<PrepaymentRun>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(
            insurance::run_prepayment(
                &state,
                &caller,
                group_id,
                input.year,
                &input.fund,
                input.month,
                input.correction_reason.as_deref(),
            )
            .await?,
        ),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettlementInput {
    pub year: i32,
    pub fund: String,
    /// The group's assessment score, 0–100 with up to two decimals.
    pub score: f64,
}

/// Settles the year once its twelve months are prepaid; returns the statement.
#[utoipa::path(post, path = "/api/v1/groups/{id}/insurance/settlements", tag = "insurance",
    params(("id" = i64, Path)), request_body = SettlementInput,
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn settle(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(group_id): Path<Id>,
    Body(input): Body<SettlementInput>,
) -> Result<(StatusCode, Json<SettlementRun>), AppError> {
    let score = (input.score * 100.0).round() as i64;
    Ok((
        StatusCode::CREATED,
        Json(insurance::settle(&state, &caller, group_id, input.year, &input.fund, score).await?),
    ))
}

/// A settlement statement.
#[utoipa::path(get, path = "/api/v1/insurance/settlements/{id}", tag = "insurance",
    params(("id" = i64, Path)),
    responses((status = 200, body = Object), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn settlement(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<SettlementRun>, AppError> {
    Ok(Json(insurance::settlement(&state, &caller, id).await?))
}

/// A settlement statement as an Excel workbook (statement and monthly runs).
#[utoipa::path(get, path = "/api/v1/insurance/settlements/{id}/statement.xlsx", tag = "insurance",
    params(("id" = i64, Path)),
    responses((status = 200, content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (status = 403, body = Problem)))]
pub async fn statement_xlsx(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Response, AppError> {
    insurance::statement_download(&state, &caller, id).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CasePaymentInput {
    pub year: i32,
    pub fund: String,
    /// 1–12 for a month's provisional run; 0 for the year's final run.
    pub month: u32,
    /// Runs a period already run again, for this reason.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Runs DIP case payment over the period's inpatient cases at the group's units: points by
/// DIP group, outliers against the same level, level coefficients, the point value from the
/// period's inpatient pool less the reserve; every case kept with its numbers.
#[utoipa::path(post, path = "/api/v1/groups/{id}/insurance/case-payments", tag = "insurance",
    params(("id" = i64, Path)), request_body = CasePaymentInput,
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn run_case_payment(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(group_id): Path<Id>,
    Body(input): Body<CasePaymentInput>,
) -> Result<(StatusCode, Json<CasePaymentRun>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(
            case_payments::run(
                &state,
                &caller,
                group_id,
                input.year,
                &input.fund,
                input.month,
                input.reason.as_deref(),
            )
            .await?,
        ),
    ))
}

/// Every DIP run of a year and fund.
#[utoipa::path(get, path = "/api/v1/groups/{id}/insurance/case-payments", tag = "insurance",
    params(("id" = i64, Path), YearParams),
    responses((status = 200, body = Object), (status = 403, body = Problem)))]
pub async fn case_payment_runs(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(group_id): Path<Id>,
    Params(q): Params<YearParams>,
) -> Result<Json<Vec<CasePaymentRun>>, AppError> {
    Ok(Json(
        case_payments::runs(&state, &caller, group_id, q.year, &q.fund).await?,
    ))
}

/// A DIP run with its DIP groups and what each member unit earned.
#[utoipa::path(get, path = "/api/v1/insurance/case-payments/{id}", tag = "insurance",
    params(("id" = i64, Path)),
    responses((status = 200, body = Object), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn case_payment_run(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<RunView>, AppError> {
    Ok(Json(case_payments::view(&state, &caller, id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CaseParams {
    /// `high`, `low` or `normal`.
    branch: Option<String>,
    #[serde(default = "fifty")]
    limit: i64,
    #[serde(default)]
    offset: i64,
}

fn fifty() -> i64 {
    50
}

/// A page of a run's cases (audited: cases are residents' claims).
#[utoipa::path(get, path = "/api/v1/insurance/case-payments/{id}/cases", tag = "insurance",
    params(("id" = i64, Path), CaseParams),
    responses((status = 200, body = Object), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn case_payment_cases(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
    Params(q): Params<CaseParams>,
) -> Result<Json<CasePage>, AppError> {
    let branch = case_payments::branch(q.branch.as_deref())?;
    Ok(Json(
        case_payments::cases(&state, &caller, id, branch, q.limit, q.offset).await?,
    ))
}

/// One case of a run traced to every number its payment used.
#[utoipa::path(get, path = "/api/v1/insurance/case-payments/{id}/cases/{claim_id}", tag = "insurance",
    params(("id" = i64, Path), ("claim_id" = i64, Path)),
    responses((status = 200, body = Object), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn case_payment_case(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path((id, claim_id)): Path<(Id, Id)>,
) -> Result<Json<TracedCase>, AppError> {
    Ok(Json(
        case_payments::traced(&state, &caller, id, claim_id).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// Only check the file: the validation report, nothing written.
    #[serde(default)]
    check: bool,
}

/// Imports the bureau's claims (CSV with the columns of the synthetic city's `claims.csv`,
/// amounts in yuan). Every bad line is reported with its column and reason, and then nothing
/// is written; lines already kept unchanged are skipped. `?check=true` only reports.
#[utoipa::path(post, path = "/api/v1/groups/{id}/insurance/claims", tag = "insurance",
    params(("id" = i64, Path), ImportParams),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 201, body = Object), (status = 200, body = Object), (status = 403, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
pub async fn import_claims(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(group_id): Path<Id>,
    Params(q): Params<ImportParams>,
    RawBody(bytes): RawBody,
) -> Result<(StatusCode, Json<ClaimImport>), AppError> {
    let report = insurance::import_claims(&state, &caller, group_id, &bytes, q.check).await?;
    let status = if report.written {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(report)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicFundInput {
    pub year: i32,
    /// 1–4.
    pub quarter: u32,
    /// The public-health standard per resident and year, fen.
    pub per_person: i64,
    /// The year's essential-drug subsidy, fen.
    #[serde(default)]
    pub drug_subsidy: i64,
    /// Share paid at once, parts per million (default 700000 = 70%).
    #[serde(default)]
    pub advance: Option<i64>,
    /// Runs a quarter already run again, for this reason.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Runs a quarter of the bundled public funds: the year's capitation (residents × standard)
/// with the drug subsidy, a quarter of it shared among members by residents served, part
/// advanced, the rest released by each member's score in the half-year's assessment report.
#[utoipa::path(post, path = "/api/v1/groups/{id}/insurance/public-funds", tag = "insurance",
    params(("id" = i64, Path)), request_body = PublicFundInput,
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn run_public_funds(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(group_id): Path<Id>,
    Body(input): Body<PublicFundInput>,
) -> Result<(StatusCode, Json<PublicFundRun>), AppError> {
    let params = PublicFundParams {
        per_person: input.per_person,
        drug_subsidy: input.drug_subsidy,
        advance: input.advance.unwrap_or(700_000),
    };
    Ok((
        StatusCode::CREATED,
        Json(
            insurance::run_public_funds(
                &state,
                &caller,
                group_id,
                input.year,
                input.quarter,
                &params,
                input.reason.as_deref(),
            )
            .await?,
        ),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OnlyYear {
    year: i32,
}

/// Every quarter's public-fund runs of a year.
#[utoipa::path(get, path = "/api/v1/groups/{id}/insurance/public-funds", tag = "insurance",
    params(("id" = i64, Path), OnlyYear),
    responses((status = 200, body = Object), (status = 403, body = Problem)))]
pub async fn public_fund_runs(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(group_id): Path<Id>,
    Params(q): Params<OnlyYear>,
) -> Result<Json<Vec<PublicFundRun>>, AppError> {
    Ok(Json(
        insurance::public_fund_runs(&state, &caller, group_id, q.year).await?,
    ))
}

/// A DIP run as an Excel workbook: its figures, each member's statement, every case with
/// its numbers (audited: cases are residents' claims).
#[utoipa::path(get, path = "/api/v1/insurance/case-payments/{id}/statement.xlsx", tag = "insurance",
    params(("id" = i64, Path)),
    responses((status = 200, content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn case_payment_xlsx(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Response, AppError> {
    case_payments::run_download(&state, &caller, id).await
}
