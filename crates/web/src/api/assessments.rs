//! Assessment of members (R11.2): the group's scheme, runs and reports.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;

use medgrid_domain::access::Id;
use medgrid_domain::assessment::Scheme;

use super::indicators::{download, XLSX};
use super::Body;
use crate::assessments::{self, Report, RunInput};
use crate::auth::ApiCaller;
use crate::error::{AppError, Problem};
use crate::AppState;

/// The scheme the group runs with (its latest own version, else medgrid's default, version 0).
#[utoipa::path(get, path = "/api/v1/groups/{id}/assessment-scheme", tag = "indicator",
    params(("id" = i64, Path)), responses((status = 200, body = Object), (status = 403, body = Problem)))]
pub async fn scheme(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<serde_json::Value>, AppError> {
    let (version, scheme) = assessments::current_scheme(&state, &caller, id).await?;
    Ok(Json(
        serde_json::json!({ "version": version, "scheme": scheme }),
    ))
}

/// Keeps the next version of the group's own scheme: dimensions adding up to 100, items
/// adding up to their dimension, indicators of the library, rules `linear` (with a floor),
/// `threshold` or `rank`.
#[utoipa::path(post, path = "/api/v1/groups/{id}/assessment-scheme", tag = "indicator",
    params(("id" = i64, Path)), request_body = Object,
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn save_scheme(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
    Body(scheme): Body<Scheme>,
) -> Result<(StatusCode, Json<serde_json::Value>), AppError> {
    let version = assessments::save_scheme(&state, &caller, id, &scheme).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "version": version })),
    ))
}

/// Scores every member for a period and keeps the report (immutable).
#[utoipa::path(post, path = "/api/v1/groups/{id}/assessments", tag = "indicator",
    params(("id" = i64, Path)), request_body = RunInput,
    responses((status = 201, body = Report), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn run(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
    Body(input): Body<RunInput>,
) -> Result<(StatusCode, Json<Report>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(assessments::run(&state, &caller, id, &input).await?),
    ))
}

/// The group's reports, newest first.
#[utoipa::path(get, path = "/api/v1/groups/{id}/assessments", tag = "indicator",
    params(("id" = i64, Path)), responses((status = 200, body = [Report]), (status = 403, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<Vec<Report>>, AppError> {
    Ok(Json(assessments::reports(&state, &caller, id).await?))
}

#[utoipa::path(get, path = "/api/v1/assessments/{id}", tag = "indicator",
    params(("id" = i64, Path)), responses((status = 200, body = Report), (status = 404, body = Problem)))]
pub async fn read(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<Report>, AppError> {
    Ok(Json(assessments::one(&state, &caller, id).await?))
}

/// The report as an Excel workbook.
#[utoipa::path(get, path = "/api/v1/assessments/{id}/report.xlsx", tag = "indicator",
    params(("id" = i64, Path)), responses((status = 200, content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (status = 404, body = Problem)))]
pub async fn report_xlsx(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Response, AppError> {
    let r = assessments::one(&state, &caller, id).await?;
    let bytes = assessments::xlsx(&r).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(download(
        bytes,
        XLSX,
        &format!("assessment-{id}-{}.xlsx", r.period),
    ))
}
