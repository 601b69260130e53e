//! Patient index endpoints (R2.1): units file their records of a person, clinicians find and
//! read persons, the group's coordinator settles the doubts and merges or unmerges persons.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use medgrid_domain::access::Id;
use medgrid_store::patient_index::{
    Arrival, MatchReview, Person, PersonFilter, PersonView, RecordDraft, ReviewDetail, Verdict,
};

use super::{Body, Params};
use crate::auth::ApiCaller;
use crate::error::{AppError, Problem};
use crate::persons;
use crate::AppState;

/// Files a unit's record of a person and matches it on arrival: linked to the person found
/// (`matched`), a new person (`created`), or a new person with the doubt queued (`review`).
/// The same record sent again unchanged is answered 200 and writes nothing. Body: `unit_id`,
/// `local_record_no`, `name`, `sex`, `birth_date`, and optionally `issuer`, `id_type`
/// (`citizen_id`, `passport`, `hk_macao_permit`, `other`), `id_number`, `insurance_card`,
/// `phone`, `address`. An invalid citizen ID is kept, flagged, and never used as proof.
#[utoipa::path(post, path = "/api/v1/patient-records", tag = "patient-index", request_body = Object,
    responses((status = 201, body = Object), (status = 200, body = Object), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn arrive(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Body(draft): Body<RecordDraft>,
) -> Result<(StatusCode, Json<Arrival>), AppError> {
    let arrival = persons::arrive(&state, &caller, &draft).await?;
    let status = if arrival.unchanged {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(arrival)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// A citizen ID, passport, insurance card or a unit's record number.
    identifier: Option<String>,
    /// The start of the name.
    name: Option<String>,
    birth_date: Option<chrono::NaiveDate>,
    /// `male` or `female`.
    sex: Option<String>,
    phone: Option<String>,
}

/// Persons of the caller's group matching every given parameter; identifiers and phones
/// masked.
#[utoipa::path(get, path = "/api/v1/persons", tag = "patient-index", params(SearchParams),
    responses((status = 200, body = [Object]), (status = 403, body = Problem)))]
pub async fn search(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Params(q): Params<SearchParams>,
) -> Result<Json<Vec<Person>>, AppError> {
    let filter = PersonFilter {
        group_ids: None,
        identifier: q.identifier,
        name: q.name,
        birth_date: q.birth_date,
        sex: q.sex,
        phone: q.phone,
        limit: 100,
    };
    Ok(Json(persons::search(&state, &caller, filter).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FullParam {
    /// Identifiers and phones in full (a separately audited read).
    #[serde(default)]
    full: bool,
}

/// A person with every unit's record of them and the merges they took part in.
#[utoipa::path(get, path = "/api/v1/persons/{id}", tag = "patient-index",
    params(("id" = i64, Path), FullParam),
    responses((status = 200, body = Object), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn read(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
    Params(q): Params<FullParam>,
) -> Result<Json<PersonView>, AppError> {
    Ok(Json(persons::read(&state, &caller, id, q.full).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeInput {
    /// The person folded into this one: its rows move here and its id points here.
    pub merged_id: Id,
    pub reason: String,
}

/// Merges another person of the group into this one; returns the merge's id.
#[utoipa::path(post, path = "/api/v1/persons/{id}/merges", tag = "patient-index",
    params(("id" = i64, Path)), request_body = MergeInput,
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn merge(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
    Body(input): Body<MergeInput>,
) -> Result<(StatusCode, Json<serde_json::Value>), AppError> {
    let merge_id = persons::merge(&state, &caller, id, input.merged_id, &input.reason).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "merge_id": merge_id })),
    ))
}

/// Undoes a merge: exactly the rows it moved go back.
#[utoipa::path(post, path = "/api/v1/persons/{id}/merges/{merge_id}/undo", tag = "patient-index",
    params(("id" = i64, Path), ("merge_id" = i64, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn unmerge(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path((id, merge_id)): Path<(Id, Id)>,
) -> Result<StatusCode, AppError> {
    persons::unmerge(&state, &caller, id, merge_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewParams {
    /// `open` (default), `same`, `not_same` or `withdrawn`.
    status: Option<String>,
}

/// The group's review queue, oldest first.
#[utoipa::path(get, path = "/api/v1/groups/{id}/match-reviews", tag = "patient-index",
    params(("id" = i64, Path), ReviewParams),
    responses((status = 200, body = [Object]), (status = 403, body = Problem)))]
pub async fn reviews(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(group_id): Path<Id>,
    Params(q): Params<ReviewParams>,
) -> Result<Json<Vec<MatchReview>>, AppError> {
    Ok(Json(
        persons::reviews(&state, &caller, group_id, q.status.as_deref()).await?,
    ))
}

/// One review: the record, the candidate person and its records, and the score per field.
#[utoipa::path(get, path = "/api/v1/match-reviews/{id}", tag = "patient-index",
    params(("id" = i64, Path), FullParam),
    responses((status = 200, body = Object), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn review(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
    Params(q): Params<FullParam>,
) -> Result<Json<ReviewDetail>, AppError> {
    Ok(Json(persons::review(&state, &caller, id, q.full).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    /// `same` (merge the record's person into the candidate) or `not_same`.
    pub verdict: String,
}

/// Settles a review; "same" merges, undoably, and "not same" is kept for later runs.
#[utoipa::path(post, path = "/api/v1/match-reviews/{id}/decision", tag = "patient-index",
    params(("id" = i64, Path)), request_body = DecisionInput,
    responses((status = 200, body = Object), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn decide(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
    Body(input): Body<DecisionInput>,
) -> Result<Json<MatchReview>, AppError> {
    let verdict = Verdict::parse(input.verdict.trim())
        .map_err(|e| AppError::Invalid(medgrid_domain::Invalid::one(e)))?;
    Ok(Json(persons::decide(&state, &caller, id, verdict).await?))
}
