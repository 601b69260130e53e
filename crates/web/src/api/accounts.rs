//! Account endpoints: the caller, users, tokens, and the audit log.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use medgrid_domain::access::{Action, Id};
use medgrid_store::{AuditEvent, AuditFilter, TokenRecord, UserRecord};

use super::{Body, Params};
use crate::actions::{self, UserInput};
use crate::auth::ApiCaller;
use crate::error::{AppError, Problem};
use crate::AppState;

/// A user account as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: Id,
    pub username: String,
    pub display_name: String,
    pub role: String,
    /// `city`, `group` or `unit`.
    pub scope_kind: String,
    /// The organisation the account is bound to, e.g. `unit-7`.
    pub org: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

impl From<UserRecord> for UserView {
    fn from(u: UserRecord) -> Self {
        use medgrid_domain::access::ScopeKind;
        let p = u.scope.path;
        let (kind, org) = match u.scope.kind {
            ScopeKind::City => ("city", format!("city-{}", p.city)),
            ScopeKind::Group => ("group", format!("group-{}", p.group.unwrap_or_default())),
            ScopeKind::Unit => ("unit", format!("unit-{}", p.unit.unwrap_or_default())),
        };
        Self {
            id: u.id,
            username: u.username,
            display_name: u.display_name,
            role: u.role.as_str().into(),
            scope_kind: kind.into(),
            org,
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/me", tag = "accounts",
    responses((status = 200, body = UserView), (status = 401, body = Problem)))]
pub async fn me(ApiCaller(caller): ApiCaller) -> Json<UserView> {
    Json(caller.user.into())
}

#[utoipa::path(get, path = "/api/v1/users", tag = "accounts",
    responses((status = 200, body = [UserView]), (status = 403, body = Problem)))]
pub async fn list_users(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Json<Vec<UserView>>, AppError> {
    let users = actions::list_users(&state, &caller).await?;
    Ok(Json(users.into_iter().map(Into::into).collect()))
}

/// Creates a user bound to an organisation; one may grant only roles and scopes within one's own.
#[utoipa::path(post, path = "/api/v1/users", tag = "accounts", request_body = UserInput,
    responses((status = 201, body = UserView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_user(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Body(input): Body<UserInput>,
) -> Result<(StatusCode, Json<UserView>), AppError> {
    let user = actions::create_user(&state, &caller, &input).await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "accounts",
    params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = UserView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_user(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<UserView>, AppError> {
    Ok(Json(
        actions::user_for(&state, &caller, id, Action::UserRead)
            .await?
            .into(),
    ))
}

#[utoipa::path(post, path = "/api/v1/users/{id}/disable", tag = "accounts",
    params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = UserView), (status = 403, body = Problem)))]
pub async fn disable_user(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<UserView>, AppError> {
    Ok(Json(
        actions::set_user_disabled(&state, &caller, id, true)
            .await?
            .into(),
    ))
}

#[utoipa::path(post, path = "/api/v1/users/{id}/enable", tag = "accounts",
    params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = UserView), (status = 403, body = Problem)))]
pub async fn enable_user(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<UserView>, AppError> {
    Ok(Json(
        actions::set_user_disabled(&state, &caller, id, false)
            .await?
            .into(),
    ))
}

/// A token as listed (never the secret).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: Id,
    pub user_id: Id,
    pub name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<TokenRecord> for TokenView {
    fn from(t: TokenRecord) -> Self {
        Self {
            id: t.id,
            user_id: t.user_id,
            name: t.name,
            prefix: t.prefix,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// A new token with its secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    #[serde(flatten)]
    pub token: TokenView,
    pub secret: String,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct TokenInput {
    #[serde(default)]
    pub name: String,
}

#[utoipa::path(get, path = "/api/v1/users/{id}/tokens", tag = "accounts",
    params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = [TokenView]), (status = 403, body = Problem)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<Vec<TokenView>>, AppError> {
    let tokens = actions::list_tokens(&state, &caller, id).await?;
    Ok(Json(tokens.into_iter().map(Into::into).collect()))
}

#[utoipa::path(post, path = "/api/v1/users/{id}/tokens", tag = "accounts",
    params(("id" = i64, Path, description = "user id")),
    request_body = TokenInput,
    responses((status = 201, body = IssuedToken), (status = 403, body = Problem)))]
pub async fn create_token(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
    Body(input): Body<TokenInput>,
) -> Result<(StatusCode, Json<IssuedToken>), AppError> {
    let (token, secret) = actions::issue_token(&state, &caller, id, &input.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            token: token.into(),
            secret,
        }),
    ))
}

#[utoipa::path(post, path = "/api/v1/tokens/{id}/revoke", tag = "accounts",
    params(("id" = i64, Path, description = "token id")),
    responses((status = 200, body = TokenView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<Id>,
) -> Result<Json<TokenView>, AppError> {
    Ok(Json(
        actions::revoke_token(&state, &caller, id).await?.into(),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries older than this id (paging).
    pub before: Option<Id>,
    /// Actions starting with this, e.g. `user.`.
    pub action: Option<String>,
    pub username: Option<String>,
    pub limit: Option<i64>,
}

/// The audit log within the caller's scope, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = [Object]), (status = 403, body = Problem)))]
pub async fn list_audit(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Params(q): Params<AuditQuery>,
) -> Result<Json<Vec<AuditEvent>>, AppError> {
    let filter = AuditFilter {
        scope: None,
        before_id: q.before,
        action_prefix: q.action.filter(|s| !s.is_empty()),
        username: q.username.filter(|s| !s.is_empty()),
        limit: q.limit.unwrap_or(100),
    };
    Ok(Json(actions::list_audit(&state, &caller, filter).await?))
}
