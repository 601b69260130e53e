//! The audit log: who did what, when, from which unit, to what, and how it ended.
//!
//! A write and its audit entry are committed in the same transaction (see
//! [`audit_insert!`]), so there is never a change without its record. The log has no update or
//! delete path here, and the database refuses both with triggers.

use chrono::{DateTime, Utc};
use serde::Serialize;

use medgrid_domain::access::{Id, OrgPath, Principal, Role, Scope, ScopeKind};

use crate::{read, write, Store, StoreError};

/// Who acts: a user, or medgrid itself (demo loading, background jobs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<Id>,
    pub username: String,
    pub role: Option<Role>,
    pub unit_id: Option<Id>,
    pub group_id: Option<Id>,
    pub client_ip: Option<String>,
}

impl Actor {
    /// medgrid acting on its own (the command line, the demo loader).
    pub fn system(what: &str) -> Self {
        Self {
            user_id: None,
            username: format!("system:{what}"),
            role: None,
            unit_id: None,
            group_id: None,
            client_ip: None,
        }
    }

    pub fn user(p: &Principal, client_ip: Option<String>) -> Self {
        Self {
            user_id: Some(p.user_id),
            username: p.username.clone(),
            role: Some(p.role),
            unit_id: p.scope.path.unit,
            group_id: p.scope.path.group,
            client_ip,
        }
    }
}

/// How an audited request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Denied,
    Invalid,
    NotFound,
    Conflict,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Invalid => "invalid",
            Outcome::NotFound => "not_found",
            Outcome::Conflict => "conflict",
            Outcome::Error => "error",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Outcome::Ok => "成功",
            Outcome::Denied => "拒绝",
            Outcome::Invalid => "输入有误",
            Outcome::NotFound => "不存在",
            Outcome::Conflict => "冲突",
            Outcome::Error => "错误",
        }
    }
}

/// One entry to append.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    pub actor: &'a Actor,
    /// Dotted verb, e.g. `unit.create`, `user.login`, `patient.read`.
    pub action: &'a str,
    /// FHIR-style resource type, e.g. `Organization`, `User`.
    pub resource_type: &'a str,
    pub resource_id: Option<String>,
    /// Where the target sits, so auditors of a scope see what concerns it.
    pub target: Option<OrgPath>,
    pub outcome: Outcome,
    pub detail: Option<String>,
}

/// Appends `$entry` through `$ex` (a pool or a transaction of either backend). PostgreSQL's
/// one-statement booking (`booking/commit.rs`) writes the same columns.
macro_rules! audit_insert {
    ($ex:expr, $entry:expr) => {{
        let e: &$crate::AuditEntry<'_> = $entry;
        sqlx::query(
            "INSERT INTO audit_event (at, actor_user_id, actor_username, actor_role, actor_unit_id, \
             actor_group_id, action, resource_type, resource_id, city_id, group_id, unit_id, outcome, \
             detail, client_ip) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind($crate::now())
        .bind(e.actor.user_id)
        .bind(&e.actor.username)
        .bind(e.actor.role.map(|r| r.as_str()))
        .bind(e.actor.unit_id)
        .bind(e.actor.group_id)
        .bind(e.action)
        .bind(e.resource_type)
        .bind(e.resource_id.as_deref())
        .bind(e.target.map(|t| t.city))
        .bind(e.target.and_then(|t| t.group))
        .bind(e.target.and_then(|t| t.unit))
        .bind(e.outcome.as_str())
        .bind(e.detail.as_deref())
        .bind(e.actor.client_ip.as_deref())
        .execute($ex)
        .await
    }};
}
pub(crate) use audit_insert;

/// One entry as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub id: Id,
    pub at: DateTime<Utc>,
    pub actor_user_id: Option<Id>,
    pub actor_username: String,
    pub actor_role: Option<String>,
    pub actor_unit_id: Option<Id>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub city_id: Option<Id>,
    pub group_id: Option<Id>,
    pub unit_id: Option<Id>,
    pub outcome: String,
    pub detail: Option<String>,
    pub client_ip: Option<String>,
}

/// Which entries to list: those inside `scope` (all when `None`), newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub scope: Option<Scope>,
    /// Entries with a smaller id than this (paging backwards).
    pub before_id: Option<Id>,
    pub action_prefix: Option<String>,
    pub username: Option<String>,
    pub limit: i64,
}

impl Store {
    /// Appends one entry on its own (for reads, refusals and failures, which write nothing
    /// else).
    pub async fn audit(&self, entry: &AuditEntry<'_>) -> Result<(), StoreError> {
        write!(self, |p| {
            audit_insert!(p, entry)?;
        });
        Ok(())
    }

    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        let (scope_column, scope_id) = match filter.scope {
            None => ("0", 0),
            Some(s) => match s.kind {
                ScopeKind::City => ("city_id", s.path.city),
                ScopeKind::Group => ("group_id", s.path.group.unwrap_or(-1)),
                ScopeKind::Unit => ("unit_id", s.path.unit.unwrap_or(-1)),
            },
        };
        // The scope column comes from the match above, never from input.
        let sql = format!(
            "SELECT id, at, actor_user_id, actor_username, actor_role, actor_unit_id, action, \
             resource_type, resource_id, city_id, group_id, unit_id, outcome, detail, client_ip \
             FROM audit_event WHERE {scope_column} = $1 AND ($2 IS NULL OR id < $2) \
             AND ($3 IS NULL OR action LIKE $3 ESCAPE '\\') AND ($4 IS NULL OR actor_username = $4) \
             ORDER BY id DESC LIMIT $5"
        );
        let prefix = filter
            .action_prefix
            .as_ref()
            // Escaped, not stripped: actions are written with underscores
            // (`match_review.list`), which LIKE would otherwise read as wildcards.
            .map(|p| {
                let escaped = p
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_");
                format!("{escaped}%")
            });
        let limit = filter.limit.clamp(1, 1000);
        read!(self, |p| {
            let rows = sqlx::query(&sql)
                .bind(scope_id)
                .bind(filter.before_id)
                .bind(prefix.as_deref())
                .bind(filter.username.as_deref())
                .bind(limit)
                .fetch_all(p)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                use sqlx::Row;
                out.push(AuditEvent {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor_user_id: r.try_get("actor_user_id")?,
                    actor_username: r.try_get("actor_username")?,
                    actor_role: r.try_get("actor_role")?,
                    actor_unit_id: r.try_get("actor_unit_id")?,
                    action: r.try_get("action")?,
                    resource_type: r.try_get("resource_type")?,
                    resource_id: r.try_get("resource_id")?,
                    city_id: r.try_get("city_id")?,
                    group_id: r.try_get("group_id")?,
                    unit_id: r.try_get("unit_id")?,
                    outcome: r.try_get("outcome")?,
                    detail: r.try_get("detail")?,
                    client_ip: r.try_get("client_ip")?,
                });
            }
            Ok(out)
        })
    }
}
