//! `/api/v1`: the JSON API, authenticated by bearer token, described by the OpenAPI document
//! at `/api/openapi.json` (generated from these handlers).

mod accounts;
mod assessments;
mod capacity;
mod catalogues;
pub(crate) mod indicators;
pub(crate) mod insurance;
mod persons;
mod referrals;
mod registry;
pub(crate) use registry::visible_practitioners;

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use medgrid_domain::{FieldError, Invalid};

use crate::error::AppError;
use crate::AppState;

/// An attachment's body may be larger than other requests: the file plus a form's framing.
/// A claims file: a large group's year runs to a few hundred thousand lines.
pub(crate) const CLAIMS_BODY: usize = 256 * 1024 * 1024;

pub(crate) const ATTACHMENT_BODY: usize = medgrid_domain::attachment::MAX_BYTES + 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/v1/me", get(accounts::me))
        .route("/v1/cities", get(registry::list_cities))
        .route("/v1/cities/{id}/tree", get(registry::city_tree))
        .route("/v1/cities/{id}/checks", get(registry::city_checks))
        .route("/v1/cities/{id}/units", post(registry::create_unit))
        .route("/v1/layouts", post(registry::import_layout))
        .route("/v1/units", get(registry::list_units))
        .route("/v1/units/{id}", get(registry::get_unit))
        .route(
            "/v1/units/{id}/departments",
            get(registry::list_departments).post(registry::create_department),
        )
        .route(
            "/v1/practitioners",
            get(registry::list_practitioners).post(registry::create_practitioner),
        )
        .route("/v1/practitioners/{id}", get(registry::get_practitioner))
        .route("/v1/practitioners/{id}/sites", post(registry::add_site))
        .route(
            "/v1/users",
            get(accounts::list_users).post(accounts::create_user),
        )
        .route("/v1/users/{id}", get(accounts::get_user))
        .route("/v1/users/{id}/disable", post(accounts::disable_user))
        .route("/v1/users/{id}/enable", post(accounts::enable_user))
        .route(
            "/v1/users/{id}/tokens",
            get(accounts::list_tokens).post(accounts::create_token),
        )
        .route("/v1/tokens/{id}/revoke", post(accounts::revoke_token))
        .route("/v1/audit", get(accounts::list_audit))
        .route(
            "/v1/referrals",
            get(referrals::list).post(referrals::create),
        )
        .route("/v1/referrals/{id}", get(referrals::get))
        .route("/v1/referrals/{id}/events", get(referrals::events))
        .route(
            "/v1/referrals/{id}/transitions",
            post(referrals::transition),
        )
        .route("/v1/referrals/{id}/slots", get(referrals::slots))
        .route(
            "/v1/referrals/{id}/booking",
            post(referrals::book).delete(referrals::cancel_booking),
        )
        .route("/v1/referrals/{id}/queue", post(referrals::queue))
        .route("/v1/referrals/{id}/hold", post(referrals::hold))
        .route("/v1/notifications", get(referrals::notifications))
        .route("/v1/notifications/read", post(referrals::mark_read))
        .route(
            "/v1/referrals/{id}/attachments",
            get(referrals::attachments)
                .post(referrals::attach)
                .layer(DefaultBodyLimit::max(ATTACHMENT_BODY)),
        )
        .route(
            "/v1/referrals/{id}/attachments/{attachment_id}",
            get(referrals::download),
        )
        .route(
            "/v1/referrals/{id}/bed-booking",
            post(capacity::book_bed).delete(capacity::cancel_bed),
        )
        .route("/v1/units/{id}/timetable", get(capacity::timetable))
        .route("/v1/units/{id}/schedules", post(capacity::add_schedule))
        .route(
            "/v1/units/{id}/schedules/{schedule_id}/reservation",
            post(capacity::change_reservation),
        )
        .route("/v1/units/{id}/wards", post(capacity::add_ward))
        .route(
            "/v1/reports/reservation-compliance",
            get(capacity::compliance),
        )
        .route("/v1/bed-pool", get(capacity::bed_pool))
        .route("/v1/groups/{id}/catalogues", get(catalogues::list))
        .route(
            "/v1/groups/{id}/catalogues/{kind}",
            post(catalogues::publish),
        )
        .route(
            "/v1/groups/{id}/catalogues/{kind}/versions",
            get(catalogues::versions),
        )
        .route("/v1/indicators", get(indicators::library))
        .route("/v1/indicators/board", get(indicators::board))
        .route("/v1/indicators/records", get(indicators::records))
        .route("/v1/indicators/table.csv", get(indicators::table_csv))
        .route("/v1/indicators/table.xlsx", get(indicators::table_xlsx))
        .route(
            "/v1/groups/{id}/indicator-targets",
            get(indicators::targets).post(indicators::set_target),
        )
        .route(
            "/v1/groups/{id}/assessment-scheme",
            get(assessments::scheme).post(assessments::save_scheme),
        )
        .route(
            "/v1/groups/{id}/assessments",
            get(assessments::list).post(assessments::run),
        )
        .route("/v1/assessments/{id}", get(assessments::read))
        .route(
            "/v1/assessments/{id}/report.xlsx",
            get(assessments::report_xlsx),
        )
        .route("/v1/groups/{id}/insurance", get(insurance::year))
        .route(
            "/v1/groups/{id}/insurance/budgets",
            post(insurance::set_budget),
        )
        .route(
            "/v1/groups/{id}/insurance/prepayments",
            post(insurance::prepay),
        )
        .route(
            "/v1/groups/{id}/insurance/settlements",
            post(insurance::settle),
        )
        .route(
            "/v1/groups/{id}/insurance/claims",
            post(insurance::import_claims).layer(DefaultBodyLimit::max(CLAIMS_BODY)),
        )
        .route(
            "/v1/groups/{id}/insurance/public-funds",
            post(insurance::run_public_funds).get(insurance::public_fund_runs),
        )
        .route(
            "/v1/groups/{id}/insurance/case-payments",
            post(insurance::run_case_payment).get(insurance::case_payment_runs),
        )
        .route(
            "/v1/insurance/case-payments/{id}",
            get(insurance::case_payment_run),
        )
        .route(
            "/v1/insurance/case-payments/{id}/statement.xlsx",
            get(insurance::case_payment_xlsx),
        )
        .route(
            "/v1/insurance/case-payments/{id}/cases",
            get(insurance::case_payment_cases),
        )
        .route(
            "/v1/insurance/case-payments/{id}/cases/{claim_id}",
            get(insurance::case_payment_case),
        )
        .route("/v1/insurance/settlements/{id}", get(insurance::settlement))
        .route(
            "/v1/insurance/settlements/{id}/statement.xlsx",
            get(insurance::statement_xlsx),
        )
        .route("/v1/patient-records", post(persons::arrive))
        .route("/v1/persons", get(persons::search))
        .route("/v1/persons/{id}", get(persons::read))
        .route("/v1/persons/{id}/merges", post(persons::merge))
        .route(
            "/v1/persons/{id}/merges/{merge_id}/undo",
            post(persons::unmerge),
        )
        .route("/v1/groups/{id}/match-reviews", get(persons::reviews))
        .route("/v1/match-reviews/{id}", get(persons::review))
        .route("/v1/match-reviews/{id}/decision", post(persons::decide))
        .fallback(|| async { AppError::NotFound })
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "medgrid API",
        description = "紧密型城市医疗集团信息平台 — the information platform of a tight-knit urban medical group. \
                       Errors are RFC 9457 problem details with per-field messages in Chinese and English.",
        version = "1"
    ),
    paths(
        accounts::me,
        registry::list_cities,
        registry::city_tree,
        registry::city_checks,
        registry::create_unit,
        registry::import_layout,
        registry::list_units,
        registry::get_unit,
        registry::list_departments,
        registry::create_department,
        registry::list_practitioners,
        registry::create_practitioner,
        registry::get_practitioner,
        registry::add_site,
        accounts::list_users,
        accounts::create_user,
        accounts::get_user,
        accounts::disable_user,
        accounts::enable_user,
        accounts::list_tokens,
        accounts::create_token,
        accounts::revoke_token,
        accounts::list_audit,
        referrals::list,
        referrals::create,
        referrals::get,
        referrals::events,
        referrals::transition,
        referrals::slots,
        referrals::book,
        referrals::cancel_booking,
        referrals::queue,
        referrals::hold,
        referrals::notifications,
        referrals::mark_read,
        referrals::attach,
        referrals::attachments,
        referrals::download,
        capacity::timetable,
        capacity::add_schedule,
        capacity::change_reservation,
        capacity::add_ward,
        capacity::compliance,
        capacity::bed_pool,
        capacity::book_bed,
        capacity::cancel_bed,
        catalogues::list,
        catalogues::versions,
        catalogues::publish,
        indicators::library,
        indicators::board,
        indicators::records,
        indicators::table_csv,
        indicators::table_xlsx,
        indicators::targets,
        indicators::set_target,
        assessments::scheme,
        assessments::save_scheme,
        assessments::run,
        assessments::list,
        assessments::read,
        assessments::report_xlsx,
        insurance::year,
        insurance::set_budget,
        insurance::prepay,
        insurance::settle,
        insurance::settlement,
        insurance::statement_xlsx,
        insurance::import_claims,
        insurance::run_public_funds,
        insurance::public_fund_runs,
        insurance::run_case_payment,
        insurance::case_payment_runs,
        insurance::case_payment_run,
        insurance::case_payment_cases,
        insurance::case_payment_case,
        insurance::case_payment_xlsx,
        persons::arrive,
        persons::search,
        persons::read,
        persons::merge,
        persons::unmerge,
        persons::reviews,
        persons::review,
        persons::decide,
    ),
    components(schemas(crate::error::Problem, crate::referrals::ReferralInput, crate::referrals::View,
        referrals::TransitionInput, referrals::BookInput, referrals::QueueInput, referrals::HoldInput,
        crate::capacity::ScheduleInput, crate::capacity::WardInput, crate::capacity::Timetable,
        capacity::ReservationInput, capacity::BedInput,
        crate::catalogues::CatalogueInput, crate::catalogues::VersionInfo,
        crate::indicators::Board, crate::indicators::LibraryEntry, crate::indicators::RecordList, crate::indicators::TargetInput,
        crate::assessments::Report, crate::assessments::RunInput,
        persons::MergeInput, persons::DecisionInput,
        insurance::PrepaymentInput, insurance::SettlementInput, insurance::CasePaymentInput, insurance::PublicFundInput)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "registry", description = "Cities, grids, groups, member units, departments, practitioners (R1.1, R1.2)"),
        (name = "accounts", description = "Users, roles, organisation scopes and API tokens"),
        (name = "audit", description = "The append-only audit log"),
        (name = "referral", description = "Two-way referral, catalogues, attachments, reserved slots, the no-slot queue and notifications (R4, R5)"),
        (name = "capacity", description = "Timetables, wards, the group bed pool and the reservation compliance report (R5)"),
        (name = "insurance", description = "The insurance global budget: budgets and rules, monthly prepayment and correcting runs, year-end settlement statements (R9.1); DIP case-payment runs traced case by case (R9.2)"),
        (name = "patient-index", description = "The master patient index: records matched on arrival, persons, the review queue, merges and unmerges (R2.1)"),
        (name = "indicator", description = "The indicator library, boards for any node and period, exports, the groups' own targets and the assessment of members (R11)"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document, for API clients (bearer token) and for people browsing from the UI
/// (session cookie); like everything else, not for the anonymous.
async fn openapi_json(
    api: Result<crate::auth::ApiCaller, AppError>,
    ui: Result<crate::auth::UiCaller, crate::ui::UiError>,
) -> Result<Json<utoipa::openapi::OpenApi>, AppError> {
    if api.is_ok() || ui.is_ok() {
        Ok(Json(ApiDoc::openapi()))
    } else {
        Err(AppError::Unauthenticated)
    }
}

/// A JSON body whose every rejection is a problem document naming what is wrong.
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> AppError {
    let text = rejection.body_text();
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::TooLarge,
        StatusCode::UNPROCESSABLE_ENTITY => {
            // serde names the field in backticks for missing and unknown fields.
            let field = text
                .split('`')
                .nth(1)
                .filter(|_| text.contains("field `"))
                .unwrap_or("body")
                .to_owned();
            AppError::Invalid(Invalid::one(FieldError::new(
                field,
                "type",
                format!("字段缺失或类型不符：{}", serde_reason(&text)),
                serde_reason(&text).to_owned(),
            )))
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::BadRequest(FieldError::new(
            "content-type",
            "media_type",
            "请求须为 application/json",
            "the request must be application/json",
        )),
        _ => AppError::BadRequest(FieldError::new(
            "body",
            "syntax",
            "请求体不是有效的 JSON",
            "the body is not valid JSON",
        )),
    }
}

/// Query-string parameters whose rejection is a problem document naming the parameter (axum's
/// own is plain text): `?limit=abc` is a 422 on `limit`, like a bad field of a JSON body.
pub struct Params<T>(pub T);

impl<S, T> FromRequestParts<S> for Params<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Params(v)),
            Err(rejection) => {
                let text = rejection.body_text();
                // "Failed to deserialize query string: limit: invalid digit found in string"
                let detail = text.split_once(": ").map_or(text.as_str(), |(_, d)| d);
                let (field, reason) = match detail.split_once(": ") {
                    Some((path, reason)) if !path.is_empty() && path != "." => (path, reason),
                    // "missing field `measure`", "unknown field `perod`, expected …": serde
                    // names the parameter in backticks.
                    _ => (detail.split('`').nth(1).unwrap_or("query"), detail),
                };
                let zh = if reason.starts_with("missing field") {
                    format!("缺少查询参数 {field}")
                } else if reason.starts_with("unknown field") {
                    format!("没有名为 {field} 的查询参数")
                } else {
                    format!("查询参数 {field} 格式不符")
                };
                Err(AppError::Invalid(Invalid::one(FieldError::new(
                    field,
                    "type",
                    zh,
                    reason.to_owned(),
                ))))
            }
        }
    }
}

/// The part of serde's message that describes the problem, without axum's preamble.
fn serde_reason(text: &str) -> &str {
    text.rsplit_once(": ").map_or(text, |(_, r)| r)
}

/// The `Idempotency-Key` header every booking request carries.
pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<String, AppError> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| {
            AppError::Invalid(Invalid::one(FieldError::new(
                "Idempotency-Key",
                "required",
                "预约请求须带 Idempotency-Key 请求头，重试时沿用同一值",
                "a booking request needs an Idempotency-Key header, the same on every retry",
            )))
        })
}

/// A raw body (CSV uploads) whose size rejection is a problem document.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|r| {
                if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::TooLarge
                } else {
                    AppError::BadRequest(FieldError::new(
                        "body",
                        "read",
                        "无法读取请求体",
                        "could not read the body",
                    ))
                }
            })
    }
}
