//! Capacity endpoints (R5): timetables and wards of a unit, the reservation compliance report,
//! the group bed pool and bed bookings for referrals; the same use cases as the web UI.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;

use medgrid_domain::access::Id;
use medgrid_store::beds::{BedBooking, Ward, WardDay};
use medgrid_store::schedule::{ComplianceRow, Schedule};

use super::{idempotency_key, Body, Params};
use crate::auth::ApiCaller;
use crate::capacity::{self, ReportScope, ScheduleInput, Timetable, WardInput};
use crate::error::{AppError, Problem};
use crate::AppState;

/// A unit's weekly timetable and wards.
#[utoipa::path(get, path = "/api/v1/units/{id}/timetable", tag = "capacity",
    params(("id" = i64, Path)), responses((status = 200, body = Timetable), (status = 404, body = Problem)))]
pub async fn timetable(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<Timetable>, AppError> {
    Ok(Json(capacity::timetable(&state, &caller, id).await?))
}

/// Adds a weekly timetable entry and opens its sessions of the release window. At a lead
/// hospital, fewer than a third of the slots kept for referrals is refused with the reason.
#[utoipa::path(post, path = "/api/v1/units/{id}/schedules", tag = "capacity",
    params(("id" = i64, Path)), request_body = ScheduleInput,
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn add_schedule(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
    Body(input): Body<ScheduleInput>,
) -> Result<(StatusCode, Json<Schedule>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(capacity::add_schedule(&state, &caller, id, &input).await?),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ReservationInput {
    pub reserved: u32,
}

/// Changes how many slots of a timetable's future sessions are kept for referrals; a change
/// that breaks the policy is refused with the reason and changes nothing.
#[utoipa::path(post, path = "/api/v1/units/{id}/schedules/{schedule_id}/reservation", tag = "capacity",
    params(("id" = i64, Path), ("schedule_id" = i64, Path)), request_body = ReservationInput,
    responses((status = 200, body = Object), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn change_reservation(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path((id, schedule_id)): Path<(Id, Id)>,
    Body(input): Body<ReservationInput>,
) -> Result<Json<Schedule>, AppError> {
    Ok(Json(
        capacity::change_reservation(&state, &caller, id, schedule_id, input.reserved).await?,
    ))
}

/// Adds a ward to the group bed pool; a lead hospital keeps at least a quarter of its beds
/// for referred patients.
#[utoipa::path(post, path = "/api/v1/units/{id}/wards", tag = "capacity",
    params(("id" = i64, Path)), request_body = WardInput,
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn add_ward(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
    Body(input): Body<WardInput>,
) -> Result<(StatusCode, Json<Ward>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(capacity::add_ward(&state, &caller, id, &input).await?),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ComplianceParams {
    group_id: Option<Id>,
    unit_id: Option<Id>,
    /// First day, `YYYY-MM-DD`.
    from: NaiveDate,
    /// Last day (inclusive); at most 92 days after `from`.
    until: NaiveDate,
}

/// The daily reservation compliance report per unit and department (R5.1).
#[utoipa::path(get, path = "/api/v1/reports/reservation-compliance", tag = "capacity",
    params(ComplianceParams),
    responses((status = 200, body = [Object]), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn compliance(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Params(q): Params<ComplianceParams>,
) -> Result<Json<Vec<ComplianceRow>>, AppError> {
    let scope = ReportScope {
        group_id: q.group_id,
        unit_id: q.unit_id,
    };
    Ok(Json(
        capacity::compliance(&state, &caller, scope, q.from, q.until).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PoolParams {
    /// Defaults to the caller's group.
    group_id: Option<Id>,
    day: NaiveDate,
}

/// Every ward of the group with its free general and reserved beds on a day (R5.3).
#[utoipa::path(get, path = "/api/v1/bed-pool", tag = "capacity", params(PoolParams),
    responses((status = 200, body = [Object]), (status = 403, body = Problem)))]
pub async fn bed_pool(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Params(q): Params<PoolParams>,
) -> Result<Json<Vec<WardDay>>, AppError> {
    Ok(Json(
        capacity::bed_pool(&state, &caller, q.group_id, q.day).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct BedInput {
    pub ward_id: Id,
    /// Admission day, `YYYY-MM-DD`.
    pub admit_on: NaiveDate,
}

/// Books a bed for the accepted referral's admission: a reserved bed first. Requires an
/// `Idempotency-Key` header.
#[utoipa::path(post, path = "/api/v1/referrals/{id}/bed-booking", tag = "capacity",
    params(("id" = i64, Path), ("Idempotency-Key" = String, Header)), request_body = BedInput,
    responses((status = 201, body = Object), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn book_bed(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
    headers: HeaderMap,
    Body(b): Body<BedInput>,
) -> Result<(StatusCode, Json<BedBooking>), AppError> {
    let key = idempotency_key(&headers)?;
    let booking = capacity::book_bed(&state, &caller, id, b.ward_id, b.admit_on, &key).await?;
    Ok((StatusCode::CREATED, Json(booking)))
}

/// Cancels the referral's bed booking; the bed returns to the pool.
#[utoipa::path(delete, path = "/api/v1/referrals/{id}/bed-booking", tag = "capacity",
    params(("id" = i64, Path)), responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn cancel_bed(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<BedBooking>, AppError> {
    Ok(Json(capacity::cancel_bed(&state, &caller, id).await?))
}
