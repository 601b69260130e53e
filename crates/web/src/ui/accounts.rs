//! Account pages: users of one's scope, one's API tokens, and the audit log.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use minijinja::context;
use serde::Deserialize;

use medgrid_domain::access::{Action, Id, OrgPath, Role, Scope, ScopeKind};
use medgrid_store::{AuditFilter, Outcome, UserRecord};

use super::registry::{fail, sees_city};
use super::{assignable_roles, check_csrf, may, nav, UiError};
use crate::actions::{self, UserInput};
use crate::auth::{Caller, UiCaller};
use crate::error::AppError;
use crate::AppState;

/// Names of every organisation the caller sees, by reference (`unit-7` → 名称).
async fn org_names(
    state: &AppState,
    caller: &Caller,
) -> Result<Vec<(String, String, OrgPath, ScopeKind)>, AppError> {
    let mut out = Vec::new();
    for c in state.store.cities().await? {
        if !sees_city(caller, c.id) {
            continue;
        }
        let tree = state.store.city_tree(c.id).await?;
        out.push((
            format!("city-{}", c.id),
            c.name.clone(),
            OrgPath::city(c.id),
            ScopeKind::City,
        ));
        for g in &tree.groups {
            out.push((
                format!("group-{}", g.id),
                g.name.clone(),
                g.path(),
                ScopeKind::Group,
            ));
        }
        for u in &tree.units {
            out.push((
                format!("unit-{}", u.id),
                u.legal_name.clone(),
                u.path(),
                ScopeKind::Unit,
            ));
        }
    }
    Ok(out)
}

fn user_org_ref(u: &UserRecord) -> String {
    let p = u.scope.path;
    match u.scope.kind {
        ScopeKind::City => format!("city-{}", p.city),
        ScopeKind::Group => format!("group-{}", p.group.unwrap_or_default()),
        ScopeKind::Unit => format!("unit-{}", p.unit.unwrap_or_default()),
    }
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

async fn render_users(
    state: &AppState,
    caller: &Caller,
    done: Option<String>,
    values: HashMap<String, String>,
    errors: Vec<medgrid_domain::FieldError>,
) -> Result<Response, UiError> {
    let users = actions::list_users(state, caller)
        .await
        .map_err(|e| fail(state, caller, e))?;
    let orgs = org_names(state, caller).await?;
    let names: HashMap<&str, &str> = orgs
        .iter()
        .map(|(r, n, ..)| (r.as_str(), n.as_str()))
        .collect();
    let rows: Vec<_> = users
        .iter()
        .map(|u| {
            let org = user_org_ref(u);
            let target = Scope { kind: u.scope.kind, path: u.scope.path };
            context! {
                id => u.id,
                username => u.username,
                display_name => u.display_name,
                role => u.role.label_zh(),
                org_name => names.get(org.as_str()).copied().unwrap_or(org.as_str()),
                disabled => u.disabled,
                is_self => u.id == caller.user.id,
                can_change => medgrid_domain::access::authorize_grant(&caller.principal, u.role, &target).is_ok(),
            }
        })
        .collect();
    // Only organisations inside the caller's scope may be chosen for a new account.
    let own = caller.principal.scope;
    let choices: Vec<_> = orgs
        .iter()
        .filter(|(_, _, path, kind)| {
            caller.principal.role == Role::SystemAdmin
                || own.encloses(&Scope {
                    kind: *kind,
                    path: *path,
                })
        })
        .map(|(r, n, ..)| (r.clone(), n.clone()))
        .collect();
    let html = state
        .templates
        .render(
            "users.html",
            context! {
                nav => nav(caller), users => rows, roles => assignable_roles(caller.principal.role),
                orgs => choices, done, values, errors,
            },
        )
        .map_err(|e| fail(state, caller, e))?;
    Ok(html.into_response())
}

pub async fn users_page(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Query(q): Query<DoneQuery>,
) -> Result<Response, UiError> {
    render_users(&state, &caller, q.done, HashMap::new(), Vec::new()).await
}

#[derive(Deserialize)]
pub struct UserForm {
    csrf: String,
    username: String,
    #[serde(default)]
    display_name: String,
    role: String,
    org: String,
    #[serde(default)]
    password: String,
}

pub async fn create_user(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Form(f): Form<UserForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| fail(&state, &caller, e))?;
    let input = UserInput {
        username: f.username.clone(),
        display_name: f.display_name.clone(),
        role: f.role.clone(),
        org: f.org.clone(),
        password: Some(f.password.clone()).filter(|p| !p.is_empty()),
    };
    match actions::create_user(&state, &caller, &input).await {
        Ok(_) => Ok(Redirect::to("/admin/users?done=created").into_response()),
        Err(e) if !e.fields().is_empty() => {
            // The password is never sent back to the browser.
            let values = [
                ("username", f.username),
                ("display_name", f.display_name),
                ("role", f.role),
                ("org", f.org),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            let status = e.status();
            let resp = render_users(&state, &caller, None, values, e.fields()).await?;
            Ok((status, resp).into_response())
        }
        Err(e) => Err(fail(&state, &caller, e)),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

async fn set_disabled(
    state: AppState,
    caller: Caller,
    id: Id,
    csrf: &str,
    disabled: bool,
) -> Result<Response, UiError> {
    check_csrf(&caller, csrf).map_err(|e| fail(&state, &caller, e))?;
    actions::set_user_disabled(&state, &caller, id, disabled)
        .await
        .map_err(|e| fail(&state, &caller, e))?;
    Ok(Redirect::to(if disabled {
        "/admin/users?done=disabled"
    } else {
        "/admin/users?done=enabled"
    })
    .into_response())
}

pub async fn disable_user(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, UiError> {
    set_disabled(state, caller, id, &f.csrf, true).await
}

pub async fn enable_user(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, UiError> {
    set_disabled(state, caller, id, &f.csrf, false).await
}

async fn render_tokens(
    state: &AppState,
    caller: &Caller,
    issued: Option<(String, String)>,
    status: StatusCode,
) -> Result<Response, UiError> {
    let tokens: Vec<_> = actions::list_tokens(state, caller, caller.user.id)
        .await
        .map_err(|e| fail(state, caller, e))?
        .into_iter()
        .rev()
        .map(|t| context! { id => t.id, name => t.name, prefix => t.prefix, created_at => beijing_time(t.created_at), last_used_at => t.last_used_at.map(beijing_time), revoked => t.revoked_at.is_some() })
        .collect();
    let html = state
        .templates
        .render(
            "tokens.html",
            context! { nav => nav(caller), tokens, issued },
        )
        .map_err(|e| fail(state, caller, e))?;
    Ok((status, html).into_response())
}

pub async fn tokens_page(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
) -> Result<Response, UiError> {
    render_tokens(&state, &caller, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct TokenForm {
    csrf: String,
    #[serde(default)]
    name: String,
}

pub async fn create_token(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Form(f): Form<TokenForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| fail(&state, &caller, e))?;
    let (token, secret) = actions::issue_token(&state, &caller, caller.user.id, &f.name)
        .await
        .map_err(|e| fail(&state, &caller, e))?;
    // The secret is rendered in this response only; it is stored as a digest.
    render_tokens(
        &state,
        &caller,
        Some((token.name, secret)),
        StatusCode::CREATED,
    )
    .await
}

pub async fn revoke_token(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| fail(&state, &caller, e))?;
    actions::revoke_token(&state, &caller, id)
        .await
        .map_err(|e| fail(&state, &caller, e))?;
    Ok(Redirect::to("/account/tokens").into_response())
}

#[derive(Deserialize)]
pub struct AuditQuery {
    before: Option<Id>,
    action: Option<String>,
    username: Option<String>,
}

const AUDIT_PAGE: i64 = 50;

/// Times are stored in UTC and shown in China Standard Time (UTC+8, no daylight saving).
pub(super) fn beijing_time(t: chrono::DateTime<chrono::Utc>) -> String {
    match chrono::FixedOffset::east_opt(8 * 3600) {
        Some(tz) => t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string(),
        None => t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    }
}

pub async fn audit_page(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Query(q): Query<AuditQuery>,
) -> Result<Response, UiError> {
    if !may(&caller, Action::AuditRead, &caller.principal.scope.path) {
        // Through the gate, so that the refusal is audited too.
        caller
            .allow(Action::AuditRead, &caller.principal.scope.path)
            .await
            .map_err(|e| fail(&state, &caller, e))?;
    }
    let filter = AuditFilter {
        scope: None,
        before_id: q.before,
        action_prefix: q.action.clone().filter(|s| !s.is_empty()),
        username: q.username.clone().filter(|s| !s.is_empty()),
        limit: AUDIT_PAGE,
    };
    let events = actions::list_audit(&state, &caller, filter)
        .await
        .map_err(|e| fail(&state, &caller, e))?;
    let next = (events.len() as i64 == AUDIT_PAGE)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    let rows: Vec<_> = events
        .iter()
        .map(|e| {
            let outcome = match e.outcome.as_str() {
                "ok" => Outcome::Ok,
                "denied" => Outcome::Denied,
                "invalid" => Outcome::Invalid,
                "not_found" => Outcome::NotFound,
                "conflict" => Outcome::Conflict,
                _ => Outcome::Error,
            };
            context! {
                id => e.id,
                at => beijing_time(e.at),
                username => e.actor_username,
                role => e.actor_role.as_deref().and_then(|r| Role::parse(r).ok()).map(|r| r.label_zh()),
                action => e.action,
                resource => format!("{}{}", e.resource_type, e.resource_id.as_deref().map(|r| format!(" {r}")).unwrap_or_default()),
                outcome => outcome.label_zh(),
                ok => outcome == Outcome::Ok,
                detail => e.detail,
                client_ip => e.client_ip,
            }
        })
        .collect();
    let html = state
        .templates
        .render(
            "audit.html",
            context! { nav => nav(&caller), events => rows, next, action => q.action, username => q.username },
        )
        .map_err(|e| fail(&state, &caller, e))?;
    Ok(html.into_response())
}
