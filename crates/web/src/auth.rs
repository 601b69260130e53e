//! Who is calling, and whether they may: credentials (argon2 passwords, hashed bearer tokens,
//! hashed session ids), login throttling, CSRF, and the one gate every route passes,
//! [`Caller::allow`].

use std::net::SocketAddr;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use rand::RngCore;
use sha2::{Digest, Sha256};

use medgrid_domain::access::{authorize, Action, OrgPath, Principal};
use medgrid_domain::FieldError;
use medgrid_store::{Actor, AuditEntry, Outcome, UserRecord};

use crate::error::AppError;
use crate::AppState;

pub const SESSION_COOKIE: &str = "medgrid_session";
/// Bearer tokens start with this, so a leaked one is recognisable in logs and scanners.
pub const TOKEN_PREFIX: &str = "mgt_";

pub fn hash_password(password: &str) -> Result<String, AppError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(format!("argon2: {e}")))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Work equal to one verification, so that a login for an unknown user takes as long as one
/// for a known user (no username probing by timing).
pub fn burn_verification(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = DUMMY.get_or_init(|| hash_password(&new_secret()).unwrap_or_default());
    let _ = verify_password(password, hash);
}

/// The password rule: long enough to resist guessing, nothing more arbitrary.
pub fn check_password(field: &str, password: &str) -> Result<(), FieldError> {
    let n = password.chars().count();
    if n < 10 {
        return Err(FieldError::new(
            field,
            "too_short",
            "密码至少 10 个字符",
            "must be at least 10 characters",
        ));
    }
    if n > 256 {
        return Err(FieldError::too_long(field, 256));
    }
    Ok(())
}

/// A fresh random secret, hex-encoded (256 bits).
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

/// What is stored in place of a secret.
pub fn digest(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// A new API token: the secret shown once, its display prefix, and its digest to store.
pub fn new_token() -> (String, String, String) {
    let secret = format!("{TOKEN_PREFIX}{}", new_secret());
    let prefix: String = secret.chars().take(TOKEN_PREFIX.len() + 8).collect();
    let hash = digest(&secret);
    (secret, prefix, hash)
}

/// Constant-time comparison for CSRF tokens.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub fn client_ip(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
}

/// The peer's address, when the server was started with connection info.
pub struct ClientIp(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// An authenticated caller and the door to everything they may do.
#[derive(Clone)]
pub struct Caller {
    pub user: UserRecord,
    pub principal: Principal,
    pub actor: Actor,
    /// Present for browser sessions; forms must echo it.
    pub csrf_token: Option<String>,
    state: AppState,
}

impl Caller {
    fn new(
        state: &AppState,
        user: UserRecord,
        ip: Option<String>,
        csrf_token: Option<String>,
    ) -> Self {
        let principal = user.principal();
        let actor = Actor::user(&principal, ip);
        Self {
            user,
            principal,
            actor,
            csrf_token,
            state: state.clone(),
        }
    }

    /// The access check every route goes through. A refusal is audited with what was tried.
    pub async fn allow(&self, action: Action, target: &OrgPath) -> Result<(), AppError> {
        match authorize(&self.principal, action, target) {
            Ok(()) => Ok(()),
            Err(denied) => {
                let entry = AuditEntry {
                    actor: &self.actor,
                    action: "access.denied",
                    resource_type: "Access",
                    resource_id: None,
                    target: Some(*target),
                    outcome: Outcome::Denied,
                    detail: Some(format!("{action:?}")),
                };
                if let Err(e) = self.state.store.audit(&entry).await {
                    tracing::error!(error = %e, "could not audit a refusal");
                }
                Err(AppError::Forbidden(denied))
            }
        }
    }

    /// Records a read of patient-level or otherwise sensitive data.
    pub async fn audit_read(
        &self,
        action: &str,
        resource_type: &str,
        resource_id: String,
        target: OrgPath,
    ) -> Result<(), AppError> {
        self.state
            .store
            .audit(&AuditEntry {
                actor: &self.actor,
                action,
                resource_type,
                resource_id: Some(resource_id),
                target: Some(target),
                outcome: Outcome::Ok,
                detail: None,
            })
            .await?;
        Ok(())
    }
}

/// API and FHIR callers: `Authorization: Bearer mgt_…`.
pub struct ApiCaller(pub Caller);

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or(AppError::Unauthenticated)?;
        let user = state
            .store
            .user_by_token(&digest(token))
            .await?
            .ok_or(AppError::Unauthenticated)?;
        Ok(ApiCaller(Caller::new(state, user, client_ip(parts), None)))
    }
}

/// Browser callers: the session cookie. Without one they are sent to the login page.
pub struct UiCaller(pub Caller);

/// Why a page could not be shown to an anonymous visitor.
pub struct LoginRequired {
    pub next: String,
}

impl FromRequestParts<AppState> for UiCaller {
    type Rejection = crate::ui::UiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let next = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        let Some(session_id) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(crate::ui::UiError::Login(LoginRequired { next }));
        };
        let session = state
            .store
            .session(&digest(&session_id))
            .await
            .map_err(|e| crate::ui::UiError::App(e.into()))?;
        match session {
            Some(s) => Ok(UiCaller(Caller::new(
                state,
                s.user,
                client_ip(parts),
                Some(s.csrf_token),
            ))),
            None => Err(crate::ui::UiError::Login(LoginRequired { next })),
        }
    }
}

/// Checks a username and password, with throttling by user and by address.
pub async fn login(
    state: &AppState,
    username: &str,
    password: &str,
    ip: Option<&str>,
) -> Result<UserRecord, AppError> {
    let cfg = &state.config;
    let keys = [
        Some(format!("user:{}", username.to_lowercase())),
        ip.map(|ip| format!("ip:{ip}")),
    ];
    for key in keys.iter().flatten() {
        if let Some(until) = state.store.login_locked_until(key).await? {
            let secs = (until - chrono::Utc::now()).num_seconds().max(1);
            return Err(AppError::Throttled {
                retry_after_seconds: secs,
            });
        }
    }
    let found = state.store.user_for_login(username).await?;
    let ok = match &found {
        Some((user, Some(hash))) if !user.disabled => verify_password(password, hash),
        _ => {
            burn_verification(password);
            false
        }
    };
    let actor = Actor {
        user_id: found.as_ref().map(|(u, _)| u.id),
        username: username.chars().take(64).collect(),
        role: found.as_ref().map(|(u, _)| u.role),
        unit_id: found.as_ref().and_then(|(u, _)| u.scope.path.unit),
        group_id: found.as_ref().and_then(|(u, _)| u.scope.path.group),
        client_ip: ip.map(str::to_owned),
    };
    let target = found.as_ref().map(|(u, _)| u.scope.path);
    if ok {
        if let Some(key) = &keys[0] {
            state.store.login_succeeded(key).await?;
        }
        state
            .store
            .audit(&AuditEntry {
                actor: &actor,
                action: "user.login",
                resource_type: "User",
                resource_id: found.as_ref().map(|(u, _)| u.id.to_string()),
                target,
                outcome: Outcome::Ok,
                detail: None,
            })
            .await?;
        return found.map(|(u, _)| u).ok_or(AppError::Unauthenticated);
    }
    let window = chrono::Duration::minutes(cfg.login_window_minutes);
    let lock = chrono::Duration::minutes(cfg.login_lock_minutes);
    if let Some(key) = &keys[0] {
        state
            .store
            .login_failed(key, cfg.login_max_failures, window, lock)
            .await?;
    }
    if let Some(key) = &keys[1] {
        state
            .store
            .login_failed(key, cfg.login_max_failures * 4, window, lock)
            .await?;
    }
    state
        .store
        .audit(&AuditEntry {
            actor: &actor,
            action: "user.login",
            resource_type: "User",
            resource_id: None,
            target,
            outcome: Outcome::Denied,
            detail: Some("bad credentials".into()),
        })
        .await?;
    Err(AppError::Unauthenticated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_verifies_only_the_right_password() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterx", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn tokens_are_random_prefixed_and_stored_as_digests() {
        let (a, prefix, hash) = new_token();
        let (b, ..) = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        assert!(a.starts_with(&prefix));
        assert_eq!(hash, digest(&a));
        assert_ne!(hash, a);
    }

    #[test]
    fn cookie_parsing_and_secret_comparison() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; medgrid_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert_eq!(
            check_password("password", "short").unwrap_err().code,
            "too_short"
        );
        assert!(check_password("password", "long enough pass").is_ok());
    }
}
