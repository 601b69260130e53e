//! Referral endpoints (R4, R5): write, read, move and book referrals; the same use cases as
//! the web UI, so the two cannot disagree about who may do what.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;

use medgrid_domain::access::Id;
use medgrid_domain::{FieldError, Invalid};
use medgrid_store::attachment::Attachment;
use medgrid_store::booking::{Booking, FreeSlot, QueueEntry};
use medgrid_store::local_now;
use medgrid_store::referral::{Move, Notification, Referral, ReferralEvent};

use super::{idempotency_key, Body, Params, RawBody};
use crate::auth::ApiCaller;
use crate::error::{AppError, Problem};
use crate::referrals::{self, ReferralInput, View};
use crate::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `outgoing` (default), `incoming`, `group` or `overdue`.
    view: Option<View>,
    /// Include closed referrals.
    #[serde(default)]
    all: bool,
}

/// A worklist of live referrals, green channel first.
#[utoipa::path(get, path = "/api/v1/referrals", tag = "referral", params(ListParams),
    responses((status = 200, body = [Object]), (status = 403, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Params(q): Params<ListParams>,
) -> Result<Json<Vec<Referral>>, AppError> {
    Ok(Json(
        referrals::worklist(&state, &caller, q.view.unwrap_or(View::Outgoing), !q.all).await?,
    ))
}

/// Writes a referral (or advice request) from the caller's unit; sent at once unless
/// `send` is false. With an `Idempotency-Key` header a retried request returns the referral
/// the first one wrote rather than a second referral.
#[utoipa::path(post, path = "/api/v1/referrals", tag = "referral", request_body = ReferralInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "the same on every retry of one request")),
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    headers: HeaderMap,
    Body(input): Body<ReferralInput>,
) -> Result<(StatusCode, Json<Referral>), AppError> {
    let key = headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str().map(str::to_owned).map_err(|_| {
                AppError::Invalid(Invalid::one(FieldError::new(
                    "Idempotency-Key",
                    "invalid",
                    "Idempotency-Key 须为可见 ASCII 字符",
                    "Idempotency-Key must be visible ASCII",
                )))
            })
        })
        .transpose()?;
    Ok((
        StatusCode::CREATED,
        Json(referrals::create(&state, &caller, &input, key).await?),
    ))
}

/// One referral (either end or the coordinator only).
#[utoipa::path(get, path = "/api/v1/referrals/{id}", tag = "referral",
    params(("id" = i64, Path)), responses((status = 200, body = Object), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<Referral>, AppError> {
    Ok(Json(referrals::read(&state, &caller, id).await?))
}

/// A referral's history, oldest first.
#[utoipa::path(get, path = "/api/v1/referrals/{id}/events", tag = "referral",
    params(("id" = i64, Path)), responses((status = 200, body = [Object]), (status = 403, body = Problem)))]
pub async fn events(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<Vec<ReferralEvent>>, AppError> {
    referrals::read(&state, &caller, id).await?;
    Ok(Json(state.store.referral_events(id).await?))
}

/// A move on a referral.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TransitionInput {
    /// `send`, `accept`, `decline`, `redirect`, `arrive`, `complete` or `cancel`.
    pub transition: String,
    #[serde(default)]
    pub note: String,
    /// decline, cancel
    #[serde(default)]
    pub reason: String,
    /// decline: the clinician who refused
    #[serde(default)]
    pub practitioner_id: Option<Id>,
    /// decline: where to go instead
    #[serde(default)]
    pub suggested_unit_id: Option<Id>,
    /// redirect
    #[serde(default)]
    pub to_unit_id: Option<Id>,
    #[serde(default)]
    pub to_department_code: Option<String>,
    /// complete: the summary returned to the referrer
    #[serde(default)]
    pub outcome_summary: String,
}

/// Moves a referral one step; the server decides whether the caller's side may.
#[utoipa::path(post, path = "/api/v1/referrals/{id}/transitions", tag = "referral",
    params(("id" = i64, Path)), request_body = TransitionInput,
    responses((status = 200, body = Object), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn transition(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
    Body(t): Body<TransitionInput>,
) -> Result<Json<Referral>, AppError> {
    let mv = match t.transition.as_str() {
        "send" => Move::Send,
        "accept" => Move::Accept { note: t.note },
        "decline" => Move::Decline {
            reason: t.reason,
            practitioner_id: t.practitioner_id,
            suggested_unit_id: t.suggested_unit_id,
        },
        "redirect" => Move::Redirect {
            to_unit_id: t.to_unit_id.ok_or_else(|| {
                AppError::Invalid(Invalid::one(FieldError::required("to_unit_id")))
            })?,
            to_department_code: t.to_department_code,
            note: t.note,
        },
        "arrive" => Move::Arrive,
        "complete" => Move::Complete {
            outcome_summary: t.outcome_summary,
        },
        "cancel" => Move::Cancel { reason: t.reason },
        other => {
            return Err(AppError::Invalid(Invalid::one(FieldError::new(
                "transition",
                "unknown_value",
                format!("未知操作“{other}”"),
                format!("unknown transition '{other}'"),
            ))))
        }
    };
    Ok(Json(
        referrals::move_referral(&state, &caller, id, &mv).await?,
    ))
}

/// Free slots at the referral's receiving unit, marked with whether they may be taken now.
#[utoipa::path(get, path = "/api/v1/referrals/{id}/slots", tag = "referral",
    params(("id" = i64, Path)), responses((status = 200, body = [Object]), (status = 403, body = Problem)))]
pub async fn slots(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<Vec<FreeSlot>>, AppError> {
    let f = referrals::read(&state, &caller, id).await?;
    Ok(Json(referrals::slots_for(&state, &f, None).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct BookInput {
    pub slot_id: Id,
    /// The token of a hold or of a waitlist offer on this slot.
    #[serde(default)]
    pub hold_token: Option<String>,
}

/// Books a slot for the referral. Requires an `Idempotency-Key` header: a retry returns the
/// first booking rather than a second one.
#[utoipa::path(post, path = "/api/v1/referrals/{id}/booking", tag = "referral",
    params(("id" = i64, Path), ("Idempotency-Key" = String, Header)), request_body = BookInput,
    responses((status = 201, body = Object), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn book(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
    headers: HeaderMap,
    Body(b): Body<BookInput>,
) -> Result<(StatusCode, Json<Booking>), AppError> {
    let key = idempotency_key(&headers)?;
    let booking = referrals::book(&state, &caller, id, b.slot_id, &key, b.hold_token).await?;
    Ok((StatusCode::CREATED, Json(booking)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct HoldInput {
    pub slot_id: Id,
    /// 1 to 60; default 10.
    #[serde(default = "ten")]
    pub minutes: i64,
}

fn ten() -> i64 {
    10
}

/// Holds a free slot for the accepted referral for a few minutes; book it with the returned
/// `token` as `hold_token`. A slot the referral could not book is not held.
#[utoipa::path(post, path = "/api/v1/referrals/{id}/hold", tag = "referral",
    params(("id" = i64, Path)), request_body = HoldInput,
    responses((status = 201, body = Object), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn hold(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
    Body(h): Body<HoldInput>,
) -> Result<(StatusCode, Json<medgrid_store::booking::Hold>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(referrals::hold(&state, &caller, id, h.slot_id, h.minutes).await?),
    ))
}

/// Cancels the referral's live booking; the slot returns (and is offered to the queue).
#[utoipa::path(delete, path = "/api/v1/referrals/{id}/booking", tag = "referral",
    params(("id" = i64, Path)), responses((status = 200, body = Object), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel_booking(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<Booking>, AppError> {
    Ok(Json(referrals::cancel_booking(&state, &caller, id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct QueueInput {
    #[serde(default)]
    pub department_code: String,
}

/// No slot available: queue the referral; a freed slot is offered to it automatically.
#[utoipa::path(post, path = "/api/v1/referrals/{id}/queue", tag = "referral",
    params(("id" = i64, Path)), request_body = QueueInput,
    responses((status = 201, body = Object), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn queue(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
    Body(q): Body<QueueInput>,
) -> Result<(StatusCode, Json<QueueEntry>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(referrals::enqueue(&state, &caller, id, &q.department_code).await?),
    ))
}

/// The caller's notifications, newest first.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "referral",
    responses((status = 200, body = [Object])))]
pub async fn notifications(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Json<Vec<Notification>>, AppError> {
    // Notifications name patients: a patient-level read, audited like one.
    let list = state
        .store
        .notifications(caller.user.id, caller.principal.scope.path.unit, 100)
        .await?;
    referrals::audit_read(
        &state,
        &caller,
        "notification.list",
        &format!("user-{}", caller.user.id),
        caller.principal.scope.path,
    )
    .await;
    Ok(Json(list))
}

/// Marks the caller's notifications read.
#[utoipa::path(post, path = "/api/v1/notifications/read", tag = "referral",
    responses((status = 200, body = Object)))]
pub async fn mark_read(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Json<serde_json::Value>, AppError> {
    let n = state
        .store
        .mark_notifications_read(
            &caller.actor,
            caller.user.id,
            caller.principal.scope.path.unit,
            local_now(),
        )
        .await?;
    Ok(Json(serde_json::json!({ "marked": n })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttachParams {
    /// The file's name as the user knows it, e.g. `心电图.pdf`.
    file_name: String,
}

/// Attaches a file (the request body, at most 10 MB; PDF, PNG, JPEG or DICOM, recognised by
/// its content) to an open referral.
#[utoipa::path(post, path = "/api/v1/referrals/{id}/attachments", tag = "referral",
    params(("id" = i64, Path), AttachParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = Object), (status = 409, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
pub async fn attach(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
    Params(q): Params<AttachParams>,
    RawBody(bytes): RawBody,
) -> Result<(StatusCode, Json<Attachment>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(referrals::attach(&state, &caller, id, &q.file_name, &bytes).await?),
    ))
}

/// The referral's files, without their content.
#[utoipa::path(get, path = "/api/v1/referrals/{id}/attachments", tag = "referral",
    params(("id" = i64, Path)), responses((status = 200, body = [Object]), (status = 403, body = Problem)))]
pub async fn attachments(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<Vec<Attachment>>, AppError> {
    referrals::read(&state, &caller, id).await?;
    Ok(Json(state.store.attachments(id).await?))
}

/// One file's content, served as a download under its recognised type.
#[utoipa::path(get, path = "/api/v1/referrals/{id}/attachments/{attachment_id}", tag = "referral",
    params(("id" = i64, Path), ("attachment_id" = i64, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 404, body = Problem)))]
pub async fn download(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path((id, attachment_id)): Path<(Id, Id)>,
) -> Result<Response, AppError> {
    let (a, content) = referrals::attachment(&state, &caller, id, attachment_id).await?;
    Ok(crate::referrals::file_response(&a, content))
}
