//! Registry endpoints: cities, layouts, member units, departments, practitioners.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use medgrid_domain::access::{Action, Id, OrgPath, Role};
use medgrid_domain::org::rules::Finding;
use medgrid_domain::org::{
    City, Department, DepartmentInput, MemberRole, PracticeSite, Practitioner, PractitionerInput,
    Unit, UnitInput,
};
use medgrid_store::UnitFilter;
use medgrid_store::{CityTree, ImportSummary};

use super::{Body, Params, RawBody};
use crate::actions::{self, SiteInput};
use crate::auth::ApiCaller;
use crate::error::{AppError, Problem};
use crate::AppState;

/// Cities the caller may see.
#[utoipa::path(get, path = "/api/v1/cities", tag = "registry",
    responses((status = 200, body = [City]), (status = 401, body = Problem)))]
pub async fn list_cities(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Json<Vec<City>>, AppError> {
    let mut visible = Vec::new();
    for c in state.store.cities().await? {
        if medgrid_domain::access::authorize(
            &caller.principal,
            Action::RegistryRead,
            &OrgPath::city(c.id),
        )
        .is_ok()
        {
            visible.push(c);
        }
    }
    Ok(Json(visible))
}

/// A whole city: grids, groups, member units.
#[utoipa::path(get, path = "/api/v1/cities/{id}/tree", tag = "registry",
    params(("id" = i64, Path, description = "city id")),
    responses((status = 200, body = Object), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn city_tree(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<CityTree>, AppError> {
    caller
        .allow(Action::RegistryRead, &OrgPath::city(id))
        .await?;
    Ok(Json(state.store.city_tree(id).await?))
}

/// The layout rules applied to a city as stored (errors and warnings).
#[utoipa::path(get, path = "/api/v1/cities/{id}/checks", tag = "registry",
    params(("id" = i64, Path, description = "city id")),
    responses((status = 200, body = [Object]), (status = 403, body = Problem)))]
pub async fn city_checks(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<Vec<Finding>>, AppError> {
    caller
        .allow(Action::RegistryRead, &OrgPath::city(id))
        .await?;
    state.store.city(id).await?;
    Ok(Json(state.store.check_city(id).await?))
}

/// Adds a member unit; the layout rules are checked on the city as it would be.
#[utoipa::path(post, path = "/api/v1/cities/{id}/units", tag = "registry",
    params(("id" = i64, Path, description = "city id")),
    request_body = UnitInput,
    responses((status = 201, body = Unit), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_unit(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
    Body(input): Body<UnitInput>,
) -> Result<(StatusCode, Json<Unit>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(actions::create_unit(&state, &caller, id, &input).await?),
    ))
}

/// Loads a city layout (CSV, see docs/layout-format.md). All rows or none.
#[utoipa::path(post, path = "/api/v1/layouts", tag = "registry",
    request_body(content = String, content_type = "text/csv"),
    responses((status = 201, body = Object), (status = 413, body = Problem), (status = 422, body = Problem)))]
pub async fn import_layout(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    RawBody(bytes): RawBody,
) -> Result<(StatusCode, Json<ImportSummary>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(actions::import_layout(&state, &caller, &bytes).await?),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnitQuery {
    pub group_id: Option<Id>,
    pub role: Option<String>,
    pub name: Option<String>,
    pub limit: Option<i64>,
}

/// Member units of the caller's city, filtered.
#[utoipa::path(get, path = "/api/v1/units", tag = "registry", params(UnitQuery),
    responses((status = 200, body = [Unit]), (status = 422, body = Problem)))]
pub async fn list_units(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Params(q): Params<UnitQuery>,
) -> Result<Json<Vec<Unit>>, AppError> {
    let role = q.role.as_deref().map(MemberRole::parse).transpose()?;
    let filter = UnitFilter {
        city_id: (caller.principal.role != Role::SystemAdmin)
            .then_some(caller.principal.scope.path.city),
        group_id: q.group_id,
        role,
        name_contains: q.name,
        limit: q.limit.unwrap_or(500),
    };
    Ok(Json(state.store.units(&filter).await?))
}

#[utoipa::path(get, path = "/api/v1/units/{id}", tag = "registry",
    params(("id" = i64, Path, description = "unit id")),
    responses((status = 200, body = Unit), (status = 404, body = Problem)))]
pub async fn get_unit(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<Unit>, AppError> {
    let unit = state.store.unit(id).await?;
    caller.allow(Action::RegistryRead, &unit.path()).await?;
    Ok(Json(unit))
}

#[utoipa::path(get, path = "/api/v1/units/{id}/departments", tag = "registry",
    params(("id" = i64, Path, description = "unit id")),
    responses((status = 200, body = [Department])))]
pub async fn list_departments(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<Vec<Department>>, AppError> {
    let unit = state.store.unit(id).await?;
    caller.allow(Action::RegistryRead, &unit.path()).await?;
    Ok(Json(state.store.departments(id).await?))
}

#[utoipa::path(post, path = "/api/v1/units/{id}/departments", tag = "registry",
    params(("id" = i64, Path, description = "unit id")),
    request_body = DepartmentInput,
    responses((status = 201, body = Department), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_department(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
    Body(input): Body<DepartmentInput>,
) -> Result<(StatusCode, Json<Department>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(actions::create_department(&state, &caller, id, &input).await?),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PractitionerQuery {
    pub unit_id: Option<Id>,
    pub name: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/practitioners", tag = "registry", params(PractitionerQuery),
    responses((status = 200, body = [Practitioner])))]
pub async fn list_practitioners(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Params(q): Params<PractitionerQuery>,
) -> Result<Json<Vec<Practitioner>>, AppError> {
    let list = state
        .store
        .practitioners(q.unit_id, q.name.as_deref(), q.limit.unwrap_or(500))
        .await?;
    Ok(Json(visible_practitioners(&caller, list)))
}

pub(crate) fn visible_practitioners(
    caller: &crate::auth::Caller,
    list: Vec<Practitioner>,
) -> Vec<Practitioner> {
    list.into_iter()
        .filter(|p| {
            medgrid_domain::access::authorize(
                &caller.principal,
                Action::RegistryRead,
                &OrgPath::city(p.city_id),
            )
            .is_ok()
        })
        .collect()
}

#[utoipa::path(post, path = "/api/v1/practitioners", tag = "registry", request_body = PractitionerInput,
    responses((status = 201, body = Practitioner), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_practitioner(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Body(input): Body<PractitionerInput>,
) -> Result<(StatusCode, Json<Practitioner>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(actions::create_practitioner(&state, &caller, &input).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/practitioners/{id}", tag = "registry",
    params(("id" = i64, Path, description = "practitioner id")),
    responses((status = 200, body = Practitioner), (status = 404, body = Problem)))]
pub async fn get_practitioner(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<Practitioner>, AppError> {
    let p = state.store.practitioner(id).await?;
    caller
        .allow(Action::RegistryRead, &OrgPath::city(p.city_id))
        .await?;
    Ok(Json(p))
}

/// Adds a site of multi-site practice (多点执业).
#[utoipa::path(post, path = "/api/v1/practitioners/{id}/sites", tag = "registry",
    params(("id" = i64, Path, description = "practitioner id")),
    request_body = SiteInput,
    responses((status = 201, body = PracticeSite), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn add_site(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
    Body(input): Body<SiteInput>,
) -> Result<(StatusCode, Json<PracticeSite>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(actions::add_practice_site(&state, &caller, id, &input).await?),
    ))
}
