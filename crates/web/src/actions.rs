//! The use cases behind both the JSON API and the web UI: each validates its input, asks the
//! access gate, and calls the store, so the two surfaces cannot drift apart.

use serde::Deserialize;

use medgrid_domain::access::{authorize_grant, Action, Id, OrgPath, Role, Scope};
use medgrid_domain::error::text;
use medgrid_domain::org::layout::parse_layout;
use medgrid_domain::org::{
    Department, DepartmentInput, PracticeSite, Practitioner, PractitionerInput, Unit, UnitInput,
};
use medgrid_domain::{FieldError, Invalid};
use medgrid_store::{
    AuditEvent, AuditFilter, ImportSummary, NewUser, OrgRef, StoreError, TokenRecord, UserRecord,
};

use crate::auth::{check_password, hash_password, new_token, Caller};
use crate::error::AppError;
use crate::AppState;

/// Input for a new user account.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct UserInput {
    pub username: String,
    #[serde(default)]
    pub display_name: String,
    pub role: String,
    /// Organisation the account is bound to: `city-1`, `group-3`, `unit-7`, or a unit's USCC.
    pub org: String,
    /// Omit for accounts that only use API tokens.
    #[serde(default)]
    pub password: Option<String>,
}

pub fn username(field: &str, raw: &str) -> Result<String, FieldError> {
    let t = raw.trim();
    let ok = (3..=64).contains(&t.len())
        && t.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(t.to_owned())
    } else {
        Err(FieldError::new(
            field,
            "format",
            "用户名须为 3–64 位小写字母、数字或“._-”",
            "must be 3–64 lowercase letters, digits, '.', '_' or '-'",
        ))
    }
}

/// Resolves an organisation reference to the scope a user bound to it gets.
pub async fn scope_of(
    state: &AppState,
    field: &str,
    reference: &str,
) -> Result<(OrgRef, Scope), AppError> {
    let org = state
        .store
        .resolve_org(reference)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => AppError::Invalid(Invalid::one(FieldError::new(
                field,
                "not_found",
                format!("找不到机构“{}”", reference.trim()),
                format!("no organisation '{}'", reference.trim()),
            ))),
            other => other.into(),
        })?;
    let kind = org.kind.scope_kind().ok_or_else(|| {
        AppError::Invalid(Invalid::one(FieldError::new(
            field,
            "scope",
            "用户只能绑定到城市、医疗集团或成员单位",
            "users are bound to a city, a group or a member unit",
        )))
    })?;
    let scope = Scope {
        kind,
        path: org.path,
    };
    Ok((org, scope))
}

/// Validates a new account's fields; the organisation is resolved separately.
pub fn validate_user(input: &UserInput) -> Result<(String, String, Role, Option<String>), Invalid> {
    let mut inv = Invalid::default();
    let name = inv.check(username("username", &input.username));
    let display = if input.display_name.trim().is_empty() {
        name.clone()
    } else {
        inv.check(text("display_name", &input.display_name, 50))
    };
    let role = inv.check(Role::parse(&input.role));
    let password = match input.password.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => inv
            .check(check_password("password", p))
            .map(|()| Some(p.to_owned())),
        None => Some(None),
    };
    match (name, display, role, password) {
        (Some(n), Some(d), Some(r), Some(p)) if inv.is_empty() => Ok((n, d, r, p)),
        _ => Err(inv),
    }
}

pub async fn create_user(
    state: &AppState,
    caller: &Caller,
    input: &UserInput,
) -> Result<UserRecord, AppError> {
    // Every bad field is reported at once, the organisation's included.
    let (fields, scope) = match (
        validate_user(input),
        scope_of(state, "org", &input.org).await,
    ) {
        (Ok(f), Ok((_, s))) => (f, s),
        (Err(mut inv), Err(AppError::Invalid(more))) => {
            inv.0.extend(more.0);
            return Err(inv.into());
        }
        (Err(inv), _) => return Err(inv.into()),
        (Ok(_), Err(e)) => return Err(e),
    };
    caller.allow(Action::UserWrite, &scope.path).await?;
    authorize_grant(&caller.principal, fields.2, &scope)?;
    store_user(state, caller, fields, scope).await
}

async fn store_user(
    state: &AppState,
    caller: &Caller,
    (username, display_name, role, password): (String, String, Role, Option<String>),
    scope: Scope,
) -> Result<UserRecord, AppError> {
    let password_hash = match password {
        Some(p) => Some(hash_password(&p)?),
        None => None,
    };
    let new = NewUser {
        username,
        display_name,
        role,
        scope,
        password_hash,
    };
    Ok(state.store.create_user(&caller.actor, &new).await?)
}

pub async fn list_users(state: &AppState, caller: &Caller) -> Result<Vec<UserRecord>, AppError> {
    caller
        .allow(Action::UserRead, &caller.principal.scope.path)
        .await?;
    let scope = (caller.principal.role != Role::SystemAdmin).then_some(&caller.principal.scope);
    Ok(state.store.users(scope).await?)
}

/// A user another user may act on (read, disable, manage tokens).
pub async fn user_for(
    state: &AppState,
    caller: &Caller,
    id: Id,
    action: Action,
) -> Result<UserRecord, AppError> {
    let user = state.store.user(id).await?;
    caller.allow(action, &user.scope.path).await?;
    Ok(user)
}

pub async fn set_user_disabled(
    state: &AppState,
    caller: &Caller,
    id: Id,
    disabled: bool,
) -> Result<UserRecord, AppError> {
    let user = user_for(state, caller, id, Action::UserWrite).await?;
    if user.id == caller.user.id && disabled {
        return Err(AppError::Invalid(Invalid::one(FieldError::new(
            "id",
            "self",
            "不能停用自己的账号",
            "you cannot disable your own account",
        ))));
    }
    authorize_grant(&caller.principal, user.role, &user.scope)?;
    state
        .store
        .set_user_disabled(&caller.actor, &user, disabled)
        .await?;
    Ok(state.store.user(id).await?)
}

/// Tokens of `user_id`: one's own always, others' only with [`Action::TokenManage`].
async fn token_owner(
    state: &AppState,
    caller: &Caller,
    user_id: Id,
) -> Result<UserRecord, AppError> {
    if user_id == caller.user.id {
        Ok(caller.user.clone())
    } else {
        user_for(state, caller, user_id, Action::TokenManage).await
    }
}

pub async fn list_tokens(
    state: &AppState,
    caller: &Caller,
    user_id: Id,
) -> Result<Vec<TokenRecord>, AppError> {
    let owner = token_owner(state, caller, user_id).await?;
    Ok(state.store.tokens(owner.id).await?)
}

/// Issues a token; the secret is returned once and never stored.
pub async fn issue_token(
    state: &AppState,
    caller: &Caller,
    user_id: Id,
    name: &str,
) -> Result<(TokenRecord, String), AppError> {
    let name = text(
        "name",
        if name.trim().is_empty() { "api" } else { name },
        50,
    )?;
    let owner = token_owner(state, caller, user_id).await?;
    let (secret, prefix, hash) = new_token();
    let token = state
        .store
        .create_token(&caller.actor, &owner, &name, &prefix, &hash)
        .await?;
    Ok((token, secret))
}

pub async fn revoke_token(
    state: &AppState,
    caller: &Caller,
    token_id: Id,
) -> Result<TokenRecord, AppError> {
    let token = state.store.token(token_id).await?;
    let owner = token_owner(state, caller, token.user_id).await?;
    state
        .store
        .revoke_token(&caller.actor, &token, &owner)
        .await?;
    Ok(state.store.token(token_id).await?)
}

pub async fn import_layout(
    state: &AppState,
    caller: &Caller,
    bytes: &[u8],
) -> Result<ImportSummary, AppError> {
    // A new city lies outside every scope but the platform's, so the caller's own scope is
    // the target: only a role with structure rights anywhere passes.
    caller
        .allow(Action::RegistryStructureWrite, &caller.principal.scope.path)
        .await?;
    let layout = parse_layout(bytes)?;
    Ok(state.store.import_layout(&caller.actor, &layout).await?)
}

pub async fn create_unit(
    state: &AppState,
    caller: &Caller,
    city_id: Id,
    input: &UnitInput,
) -> Result<Unit, AppError> {
    caller
        .allow(Action::RegistryStructureWrite, &OrgPath::city(city_id))
        .await?;
    let draft = input.validate()?;
    state.store.city(city_id).await?;
    Ok(state
        .store
        .create_unit(&caller.actor, city_id, &draft)
        .await?)
}

pub async fn unit_for_write(
    state: &AppState,
    caller: &Caller,
    unit_id: Id,
) -> Result<Unit, AppError> {
    let unit = state.store.unit(unit_id).await?;
    caller
        .allow(Action::UnitResourcesWrite, &unit.path())
        .await?;
    Ok(unit)
}

pub async fn create_department(
    state: &AppState,
    caller: &Caller,
    unit_id: Id,
    input: &DepartmentInput,
) -> Result<Department, AppError> {
    let unit = unit_for_write(state, caller, unit_id).await?;
    let draft = input.validate()?;
    Ok(state
        .store
        .create_department(&caller.actor, &unit, &draft)
        .await?)
}

/// Checks that a department, if named, belongs to the unit.
async fn department_of(
    state: &AppState,
    unit: &Unit,
    department_id: Option<Id>,
) -> Result<(), AppError> {
    if let Some(d) = department_id {
        if !state
            .store
            .departments(unit.id)
            .await?
            .iter()
            .any(|x| x.id == d)
        {
            return Err(AppError::Invalid(Invalid::one(FieldError::new(
                "department_id",
                "not_found",
                "科室不属于该机构",
                "the department does not belong to the unit",
            ))));
        }
    }
    Ok(())
}

pub async fn create_practitioner(
    state: &AppState,
    caller: &Caller,
    input: &PractitionerInput,
) -> Result<Practitioner, AppError> {
    let draft = input.validate()?;
    let unit = unit_for_write(state, caller, draft.unit_id).await?;
    department_of(state, &unit, draft.department_id).await?;
    Ok(state
        .store
        .create_practitioner(&caller.actor, &unit, &draft)
        .await?)
}

/// Input for a further site of practice.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct SiteInput {
    pub unit_id: Id,
    #[serde(default)]
    pub department_id: Option<Id>,
}

pub async fn add_practice_site(
    state: &AppState,
    caller: &Caller,
    practitioner_id: Id,
    input: &SiteInput,
) -> Result<PracticeSite, AppError> {
    let unit = unit_for_write(state, caller, input.unit_id).await?;
    let practitioner = state.store.practitioner(practitioner_id).await?;
    if practitioner.city_id != unit.city_id {
        return Err(AppError::Invalid(Invalid::one(FieldError::new(
            "unit_id",
            "other_city",
            "多点执业限于本市机构",
            "multi-site practice is within the practitioner's city",
        ))));
    }
    department_of(state, &unit, input.department_id).await?;
    Ok(state
        .store
        .add_practice_site(&caller.actor, practitioner_id, &unit, input.department_id)
        .await?)
}

/// Audit entries the caller may see, newest first.
pub async fn list_audit(
    state: &AppState,
    caller: &Caller,
    mut filter: AuditFilter,
) -> Result<Vec<AuditEvent>, AppError> {
    caller
        .allow(Action::AuditRead, &caller.principal.scope.path)
        .await?;
    filter.scope = (caller.principal.role != Role::SystemAdmin).then_some(caller.principal.scope);
    Ok(state.store.list_audit(&filter).await?)
}
