//! Indicators (R11): the library with the targets in force, a node's board (the cockpit's
//! data), its table as CSV or Excel, and the groups' own targets.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use medgrid_domain::access::{Action, Id};
use medgrid_domain::indicator::Month;
use medgrid_store::indicator::TargetSetting;

use super::{Body, Params};
use crate::auth::ApiCaller;
use crate::error::{AppError, Problem};
use crate::indicators::{
    self, export, Board, BoardQuery, LibraryEntry, RecordList, RecordsQuery, TargetInput,
};
use crate::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LibraryQuery {
    /// Show this group's own targets where it has set them.
    pub group_id: Option<Id>,
    /// The month whose targets are shown, `YYYY-MM` (default: this month).
    pub month: Option<String>,
}

/// The indicator library: every indicator with its definition, formula, source and the
/// targets in force.
#[utoipa::path(get, path = "/api/v1/indicators", tag = "indicator", params(LibraryQuery),
    responses((status = 200, body = [LibraryEntry]), (status = 403, body = Problem)))]
pub async fn library(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Params(q): Params<LibraryQuery>,
) -> Result<Json<Vec<LibraryEntry>>, AppError> {
    let month = match q.month.as_deref() {
        Some(m) => Month::parse("month", m)?,
        None => Month::of_date(medgrid_store::local_now().date()),
    };
    let settings = match q.group_id {
        Some(g) => indicators::targets(&state, &caller, g).await?,
        None => {
            caller
                .allow(Action::ReportRead, &caller.principal.scope.path)
                .await?;
            Vec::new()
        }
    };
    Ok(Json(indicators::library_entries(
        &state.library,
        &settings,
        month,
    )))
}

/// Every indicator's value for a node (city, group, unit or department) and period, with
/// numerators, denominators, targets, RAG, year-on-year and period-on-period change; the
/// node's children with their values; monthly trends; referral flows.
#[utoipa::path(get, path = "/api/v1/indicators/board", tag = "indicator", params(BoardQuery),
    responses((status = 200, body = Board), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn board(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Params(q): Params<BoardQuery>,
) -> Result<Json<Board>, AppError> {
    Ok(Json(indicators::board(&state, &caller, &q).await?))
}

/// The records behind one measure of a node and period (a drill-through): patient-level, for
/// those who may see the node's patients; names masked; the read is audited.
#[utoipa::path(get, path = "/api/v1/indicators/records", tag = "indicator", params(RecordsQuery),
    responses((status = 200, body = RecordList), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn records(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Params(q): Params<RecordsQuery>,
) -> Result<Json<RecordList>, AppError> {
    Ok(Json(indicators::records(&state, &caller, &q).await?))
}

/// The file name of an export: node and period, ASCII only.
fn file_name(b: &Board, ext: &str) -> String {
    let safe: String = format!("indicators-{}-{}", b.node.org, b.period)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.{ext}")
}

/// The board's indicator table as CSV (UTF-8 with BOM).
#[utoipa::path(get, path = "/api/v1/indicators/table.csv", tag = "indicator", params(BoardQuery),
    responses((status = 200, content_type = "text/csv"), (status = 403, body = Problem)))]
pub async fn table_csv(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Params(q): Params<BoardQuery>,
) -> Result<Response, AppError> {
    let b = indicators::board(&state, &caller, &q).await?;
    Ok(download(
        export::csv(&b).into_bytes(),
        "text/csv; charset=utf-8",
        &file_name(&b, "csv"),
    ))
}

/// The board's indicator table and its children's values as an Excel workbook.
#[utoipa::path(get, path = "/api/v1/indicators/table.xlsx", tag = "indicator", params(BoardQuery),
    responses((status = 200, content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (status = 403, body = Problem)))]
pub async fn table_xlsx(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Params(q): Params<BoardQuery>,
) -> Result<Response, AppError> {
    let b = indicators::board(&state, &caller, &q).await?;
    let bytes = export::xlsx(&b).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(download(bytes, XLSX, &file_name(&b, "xlsx")))
}

pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

pub fn download(bytes: Vec<u8>, content_type: &'static str, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// The group's own target settings, oldest first.
#[utoipa::path(get, path = "/api/v1/groups/{id}/indicator-targets", tag = "indicator",
    params(("id" = i64, Path)), responses((status = 200, body = [Object]), (status = 403, body = Problem)))]
pub async fn targets(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<Vec<TargetSetting>>, AppError> {
    Ok(Json(indicators::targets(&state, &caller, id).await?))
}

/// Sets the group's own target and amber line for an indicator from a month on (group
/// managers). Earlier settings stay for the periods they applied to.
#[utoipa::path(post, path = "/api/v1/groups/{id}/indicator-targets", tag = "indicator",
    params(("id" = i64, Path)), request_body = TargetInput,
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn set_target(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
    Body(input): Body<TargetInput>,
) -> Result<(StatusCode, Json<serde_json::Value>), AppError> {
    let setting = indicators::set_target(&state, &caller, id, &input).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "id": setting })),
    ))
}
