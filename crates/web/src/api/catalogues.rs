//! The group's referral catalogues (R4.1): read the current lists and their versions, publish
//! the next version.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use medgrid_domain::access::Id;
use medgrid_domain::referral::CatalogueKind;
use medgrid_domain::Invalid;
use medgrid_store::catalogue::Catalogue;

use super::Body;
use crate::auth::ApiCaller;
use crate::catalogues::{self, CatalogueInput, VersionInfo};
use crate::error::{AppError, Problem};
use crate::AppState;

fn kind(raw: &str) -> Result<CatalogueKind, AppError> {
    CatalogueKind::parse(raw).map_err(|e| AppError::Invalid(Invalid::one(e)))
}

/// The current version of each of the group's four catalogues (medgrid's starting lists,
/// version 0, until the group publishes its own).
#[utoipa::path(get, path = "/api/v1/groups/{id}/catalogues", tag = "referral",
    params(("id" = i64, Path)), responses((status = 200, body = [Object]), (status = 404, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<Vec<Catalogue>>, AppError> {
    Ok(Json(catalogues::current(&state, &caller, id).await?))
}

/// Every published version of one catalogue, newest first.
#[utoipa::path(get, path = "/api/v1/groups/{id}/catalogues/{kind}/versions", tag = "referral",
    params(("id" = i64, Path), ("kind" = String, Path, description = "primary_first_visit, down_referral, up_referral or keep_in_city")),
    responses((status = 200, body = [VersionInfo]), (status = 422, body = Problem)))]
pub async fn versions(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path((id, k)): Path<(Id, String)>,
) -> Result<Json<Vec<VersionInfo>>, AppError> {
    Ok(Json(
        catalogues::versions(&state, &caller, id, kind(&k)?).await?,
    ))
}

/// Publishes the next version of one catalogue from its whole text.
#[utoipa::path(post, path = "/api/v1/groups/{id}/catalogues/{kind}", tag = "referral",
    params(("id" = i64, Path), ("kind" = String, Path)), request_body = CatalogueInput,
    responses((status = 201, body = Object), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn publish(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path((id, k)): Path<(Id, String)>,
    Body(input): Body<CatalogueInput>,
) -> Result<(StatusCode, Json<Catalogue>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(catalogues::publish(&state, &caller, id, kind(&k)?, &input).await?),
    ))
}
