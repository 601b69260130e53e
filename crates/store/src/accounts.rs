//! Users, API tokens, web sessions and login throttling.
//!
//! Secrets never reach the database in the clear: passwords arrive as argon2 hashes, tokens
//! and session ids as SHA-256 digests (hashing is the web layer's job; the store only keeps
//! what it is given).

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::Row;

use medgrid_domain::access::{Id, OrgPath, Principal, Role, Scope, ScopeKind};

use crate::audit::audit_insert;
use crate::{read, stored, write, Actor, AuditEntry, Outcome, Store, StoreError};

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub scope: Scope,
    /// argon2 PHC string; `None` for an account that only uses tokens.
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRecord {
    pub id: Id,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub scope: Scope,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

impl UserRecord {
    pub fn principal(&self) -> Principal {
        Principal {
            user_id: self.id,
            username: self.username.clone(),
            role: self.role,
            scope: self.scope,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    pub id: Id,
    pub user_id: Id,
    pub name: String,
    /// The first characters of the token, so people can tell their tokens apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub user: UserRecord,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

const USER_COLUMNS: &str =
    "u.id, u.username, u.display_name, u.role, u.scope_kind, u.city_id, u.grid_id, u.group_id, u.unit_id, u.disabled, u.created_at";

fn scope_kind_str(k: ScopeKind) -> &'static str {
    match k {
        ScopeKind::City => "city",
        ScopeKind::Group => "group",
        ScopeKind::Unit => "unit",
    }
}

fn parse_scope_kind(raw: &str) -> Result<ScopeKind, medgrid_domain::FieldError> {
    match raw {
        "city" => Ok(ScopeKind::City),
        "group" => Ok(ScopeKind::Group),
        "unit" => Ok(ScopeKind::Unit),
        _ => Err(medgrid_domain::FieldError::new(
            "scope_kind",
            "unknown_value",
            "未知范围",
            "unknown scope",
        )),
    }
}

macro_rules! user_from_row {
    ($r:expr) => {{
        let r = &$r;
        UserRecord {
            id: r.try_get("id")?,
            username: r.try_get("username")?,
            display_name: r.try_get("display_name")?,
            role: stored(Role::parse, &r.try_get::<String, _>("role")?)?,
            scope: Scope {
                kind: stored(parse_scope_kind, &r.try_get::<String, _>("scope_kind")?)?,
                path: OrgPath {
                    city: r.try_get("city_id")?,
                    grid: r.try_get("grid_id")?,
                    group: r.try_get("group_id")?,
                    unit: r.try_get("unit_id")?,
                },
            },
            disabled: r.try_get("disabled")?,
            created_at: r.try_get("created_at")?,
        }
    }};
}

macro_rules! token_from_row {
    ($r:expr) => {{
        let r = &$r;
        TokenRecord {
            id: r.try_get("id")?,
            user_id: r.try_get("user_id")?,
            name: r.try_get("name")?,
            prefix: r.try_get("prefix")?,
            created_at: r.try_get("created_at")?,
            last_used_at: r.try_get("last_used_at")?,
            revoked_at: r.try_get("revoked_at")?,
        }
    }};
}

/// How often a token's `last_used_at` is refreshed: often enough to be useful, rarely enough
/// that API reads do not become writes.
const TOUCH_INTERVAL_MINUTES: i64 = 5;

impl Store {
    pub async fn create_user(
        &self,
        actor: &Actor,
        new: &NewUser,
    ) -> Result<UserRecord, StoreError> {
        let now = crate::now();
        let id: Id = write!(self, |p| {
            let mut tx = p.begin().await?;
            let id: Id = sqlx::query_scalar(
                "INSERT INTO app_user (username, display_name, role, scope_kind, city_id, grid_id, group_id, unit_id, \
                 password_hash, disabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id",
            )
            .bind(&new.username)
            .bind(&new.display_name)
            .bind(new.role.as_str())
            .bind(scope_kind_str(new.scope.kind))
            .bind(new.scope.path.city)
            .bind(new.scope.path.grid)
            .bind(new.scope.path.group)
            .bind(new.scope.path.unit)
            .bind(new.password_hash.as_deref())
            .bind(false)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "user.create",
                    resource_type: "User",
                    resource_id: Some(id.to_string()),
                    target: Some(new.scope.path),
                    outcome: Outcome::Ok,
                    detail: Some(format!("{} ({})", new.username, new.role.as_str())),
                }
            )?;
            tx.commit().await?;
            id
        });
        self.user(id).await
    }

    pub async fn user(&self, id: Id) -> Result<UserRecord, StoreError> {
        read!(self, |p| {
            let r = sqlx::query(&format!(
                "SELECT {USER_COLUMNS} FROM app_user u WHERE u.id = $1"
            ))
            .bind(id)
            .fetch_optional(p)
            .await?
            .ok_or(StoreError::NotFound)?;
            Ok(user_from_row!(r))
        })
    }

    /// The user and their password hash, for login.
    pub async fn user_for_login(
        &self,
        username: &str,
    ) -> Result<Option<(UserRecord, Option<String>)>, StoreError> {
        read!(self, |p| {
            let Some(r) = sqlx::query(&format!(
                "SELECT {USER_COLUMNS}, u.password_hash FROM app_user u WHERE u.username = $1"
            ))
            .bind(username)
            .fetch_optional(p)
            .await?
            else {
                return Ok(None);
            };
            let hash: Option<String> = r.try_get("password_hash")?;
            Ok(Some((user_from_row!(r), hash)))
        })
    }

    pub async fn user_by_username(&self, username: &str) -> Result<UserRecord, StoreError> {
        Ok(self
            .user_for_login(username)
            .await?
            .ok_or(StoreError::NotFound)?
            .0)
    }

    /// Users whose scope lies inside `scope` (all when `None`).
    pub async fn users(&self, scope: Option<&Scope>) -> Result<Vec<UserRecord>, StoreError> {
        let all: Vec<UserRecord> = read!(self, |p| {
            let rows = sqlx::query(&format!(
                "SELECT {USER_COLUMNS} FROM app_user u ORDER BY u.username"
            ))
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(user_from_row!(r));
            }
            out
        });
        // The scope test is the access module's, so listing and authorising never disagree.
        Ok(all
            .into_iter()
            .filter(|u| scope.is_none_or(|s| s.contains(&u.scope.path)))
            .collect())
    }

    pub async fn set_user_disabled(
        &self,
        actor: &Actor,
        user: &UserRecord,
        disabled: bool,
    ) -> Result<(), StoreError> {
        write!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE app_user SET disabled = $1, updated_at = $2 WHERE id = $3")
                .bind(disabled)
                .bind(crate::now())
                .bind(user.id)
                .execute(&mut *tx)
                .await?;
            if disabled {
                // A disabled account loses its open sessions at once.
                sqlx::query("DELETE FROM web_session WHERE user_id = $1")
                    .bind(user.id)
                    .execute(&mut *tx)
                    .await?;
            }
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: if disabled {
                        "user.disable"
                    } else {
                        "user.enable"
                    },
                    resource_type: "User",
                    resource_id: Some(user.id.to_string()),
                    target: Some(user.scope.path),
                    outcome: Outcome::Ok,
                    detail: Some(user.username.clone()),
                }
            )?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn set_password(
        &self,
        actor: &Actor,
        user: &UserRecord,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        write!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE app_user SET password_hash = $1, updated_at = $2 WHERE id = $3")
                .bind(password_hash)
                .bind(crate::now())
                .bind(user.id)
                .execute(&mut *tx)
                .await?;
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "user.set_password",
                    resource_type: "User",
                    resource_id: Some(user.id.to_string()),
                    target: Some(user.scope.path),
                    outcome: Outcome::Ok,
                    detail: Some(user.username.clone()),
                }
            )?;
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn create_token(
        &self,
        actor: &Actor,
        user: &UserRecord,
        name: &str,
        prefix: &str,
        token_hash: &str,
    ) -> Result<TokenRecord, StoreError> {
        write!(self, |p| {
            let mut tx = p.begin().await?;
            let r = sqlx::query(
                "INSERT INTO api_token (user_id, name, prefix, token_hash, created_at) VALUES ($1, $2, $3, $4, $5) \
                 RETURNING id, user_id, name, prefix, created_at, last_used_at, revoked_at",
            )
            .bind(user.id)
            .bind(name)
            .bind(prefix)
            .bind(token_hash)
            .bind(crate::now())
            .fetch_one(&mut *tx)
            .await?;
            let token = token_from_row!(r);
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "token.create",
                    resource_type: "Token",
                    resource_id: Some(token.id.to_string()),
                    target: Some(user.scope.path),
                    outcome: Outcome::Ok,
                    detail: Some(format!("{} for {}", name, user.username)),
                }
            )?;
            tx.commit().await?;
            Ok(token)
        })
    }

    pub async fn tokens(&self, user_id: Id) -> Result<Vec<TokenRecord>, StoreError> {
        read!(self, |p| {
            let rows = sqlx::query(
                "SELECT id, user_id, name, prefix, created_at, last_used_at, revoked_at FROM api_token WHERE user_id = $1 ORDER BY id",
            )
            .bind(user_id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(token_from_row!(r));
            }
            Ok(out)
        })
    }

    pub async fn token(&self, id: Id) -> Result<TokenRecord, StoreError> {
        read!(self, |p| {
            let r = sqlx::query(
                "SELECT id, user_id, name, prefix, created_at, last_used_at, revoked_at FROM api_token WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(p)
            .await?
            .ok_or(StoreError::NotFound)?;
            Ok(token_from_row!(r))
        })
    }

    pub async fn revoke_token(
        &self,
        actor: &Actor,
        token: &TokenRecord,
        owner: &UserRecord,
    ) -> Result<(), StoreError> {
        write!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "UPDATE api_token SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            )
            .bind(crate::now())
            .bind(token.id)
            .execute(&mut *tx)
            .await?;
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "token.revoke",
                    resource_type: "Token",
                    resource_id: Some(token.id.to_string()),
                    target: Some(owner.scope.path),
                    outcome: Outcome::Ok,
                    detail: Some(format!("{} of {}", token.name, owner.username)),
                }
            )?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The active user behind a token digest, if the token is live.
    pub async fn user_by_token(&self, token_hash: &str) -> Result<Option<UserRecord>, StoreError> {
        let found: Option<(UserRecord, Id, Option<DateTime<Utc>>)> = read!(self, |p| {
            match sqlx::query(&format!(
                "SELECT {USER_COLUMNS}, t.id AS token_id, t.last_used_at FROM api_token t JOIN app_user u ON u.id = t.user_id \
                 WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND NOT u.disabled"
            ))
            .bind(token_hash)
            .fetch_optional(p)
            .await?
            {
                None => None,
                Some(r) => Some((user_from_row!(r), r.try_get("token_id")?, r.try_get("last_used_at")?)),
            }
        });
        let Some((user, token_id, last_used)) = found else {
            return Ok(None);
        };
        let now = crate::now();
        if last_used.is_none_or(|t| now - t > Duration::minutes(TOUCH_INTERVAL_MINUTES)) {
            write!(self, |p| {
                sqlx::query("UPDATE api_token SET last_used_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(token_id)
                    .execute(p)
                    .await?;
            });
        }
        Ok(Some(user))
    }

    pub async fn create_session(
        &self,
        user_id: Id,
        id_hash: &str,
        csrf_token: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = crate::now();
        write!(self, |p| {
            let mut tx = p.begin().await?;
            // Expired sessions are swept whenever a new one starts, so the table stays small
            // without a background job.
            sqlx::query("DELETE FROM web_session WHERE expires_at < $1")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO web_session (id_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(id_hash)
                .bind(user_id)
                .bind(csrf_token)
                .bind(now)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The live session with this id digest, with its active user.
    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        read!(self, |p| {
            let Some(r) = sqlx::query(&format!(
                "SELECT {USER_COLUMNS}, s.csrf_token, s.expires_at FROM web_session s JOIN app_user u ON u.id = s.user_id \
                 WHERE s.id_hash = $1 AND s.expires_at > $2 AND NOT u.disabled"
            ))
            .bind(id_hash)
            .bind(crate::now())
            .fetch_optional(p)
            .await?
            else {
                return Ok(None);
            };
            Ok(Some(SessionRecord {
                user: user_from_row!(r),
                csrf_token: r.try_get("csrf_token")?,
                expires_at: r.try_get("expires_at")?,
            }))
        })
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        write!(self, |p| {
            sqlx::query("DELETE FROM web_session WHERE id_hash = $1")
                .bind(id_hash)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Until when logins under `key` are refused, if they are now.
    pub async fn login_locked_until(&self, key: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let until: Option<Option<DateTime<Utc>>> = read!(self, |p| sqlx::query_scalar(
            "SELECT locked_until FROM login_throttle WHERE throttle_key = $1"
        )
        .bind(key)
        .fetch_optional(p)
        .await?);
        Ok(until.flatten().filter(|t| *t > crate::now()))
    }

    /// Counts a failed login under `key`; after `max_failures` within `window` the key is
    /// locked for `lock`. Returns the lock's end when this failure set one.
    pub async fn login_failed(
        &self,
        key: &str,
        max_failures: i64,
        window: Duration,
        lock: Duration,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let now = crate::now();
        write!(self, |p| {
            let mut tx = p.begin().await?;
            let row: Option<(i64, DateTime<Utc>)> = sqlx::query_as(
                "SELECT failures, first_failure_at FROM login_throttle WHERE throttle_key = $1",
            )
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            let (failures, first) = match row {
                Some((f, first)) if now - first <= window => (f + 1, first),
                _ => (1, now),
            };
            let locked_until = (failures >= max_failures).then(|| now + lock);
            sqlx::query(
                "INSERT INTO login_throttle (throttle_key, failures, first_failure_at, locked_until) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (throttle_key) DO UPDATE SET failures = $2, first_failure_at = $3, locked_until = $4",
            )
            .bind(key)
            .bind(if locked_until.is_some() { 0 } else { failures })
            .bind(first)
            .bind(locked_until)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(locked_until)
        })
    }

    pub async fn login_succeeded(&self, key: &str) -> Result<(), StoreError> {
        write!(self, |p| {
            sqlx::query("DELETE FROM login_throttle WHERE throttle_key = $1")
                .bind(key)
                .execute(p)
                .await?;
        });
        Ok(())
    }
}
