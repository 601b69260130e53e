//! Persistence for medgrid.
//!
//! One [`Store`] serves SQLite (embedded default) and PostgreSQL (production), chosen by the
//! database URL. Every query is written once, in SQL that both dialects accept (`$n`
//! placeholders, `RETURNING`, partial indexes), and the [`read!`]/[`write!`] macros compile it
//! once per backend, so both databases run the same code path with native types.
//!
//! SQLite allows one writer at a time; rather than let concurrent write transactions fail
//! with `SQLITE_BUSY`, writes go through a pool of one connection and queue in-process, while
//! reads use their own pool (WAL mode lets them run beside the writer).

mod accounts;
pub mod assessment;
pub mod attachment;
mod audit;
pub mod beds;
pub mod booking;
pub mod bulk;
pub mod catalogue;
pub mod indicator;
pub mod insurance;
mod migrate;
mod overview;
pub mod patient_index;
mod queue;
pub mod referral;
mod registry;
pub mod schedule;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use accounts::{NewUser, SessionRecord, TokenRecord, UserRecord};
pub use audit::{Actor, AuditEntry, AuditEvent, AuditFilter, Outcome};
pub use bulk::{LoadError, LoadSummary, Refs, StaffSummary};
pub use migrate::{Migration, MIGRATIONS};
pub use overview::GroupOverview;
pub use registry::{CityTree, ImportSummary, OrgKind, OrgRef, UnitFilter};

use medgrid_domain::{FieldError, Invalid};

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
enum Backend {
    Sqlite { read: SqlitePool, write: SqlitePool },
    Postgres(PgPool),
}

/// The database, whichever it is.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// The cockpit's cube as last read, by version: every page would otherwise read all its
    /// cells from the database.
    cube: indicator::CubeCache,
}

/// Runs `$body` with `$pool` bound to a pool that may read.
macro_rules! read {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite { read, .. } => {
                let $pool = read;
                $body
            }
            $crate::Backend::Postgres(pg) => {
                let $pool = pg;
                $body
            }
        }
    };
}
pub(crate) use read;

/// Runs `$body` with `$pool` bound to the pool that writes.
macro_rules! write {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite { write, .. } => {
                let $pool = write;
                $body
            }
            $crate::Backend::Postgres(pg) => {
                let $pool = pg;
                $body
            }
        }
    };
}
pub(crate) use write;

/// Connection settings beyond the URL.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Upper bound of pooled connections (PostgreSQL; SQLite readers).
    pub max_connections: u32,
    /// How long to wait for a connection or a lock before giving up.
    pub acquire_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

impl Store {
    /// Opens the database named by `url` (`sqlite://PATH` or `postgres://…`), creating a
    /// SQLite file and its folder if missing. Does not migrate.
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Store, StoreError> {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() {
                return Err(StoreError::Config(
                    "sqlite URL needs a file path: sqlite://PATH".into(),
                ));
            }
            if let Some(dir) = std::path::Path::new(path).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Config(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
            }
            let base = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(options.acquire_timeout);
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(options.acquire_timeout * 6)
                .connect_with(base.clone())
                .await?;
            let read = SqlitePoolOptions::new()
                .max_connections(options.max_connections.clamp(1, 8))
                .acquire_timeout(options.acquire_timeout)
                .connect_with(base.read_only(true))
                .await?;
            Ok(Store {
                backend: Backend::Sqlite { read, write },
                cube: Default::default(),
            })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(opts)
                .await?;
            Ok(Store {
                backend: Backend::Postgres(pool),
                cube: Default::default(),
            })
        } else {
            Err(StoreError::Config(format!(
                "unsupported database URL '{}': use sqlite://PATH or postgres://…",
                redact_url(url)
            )))
        }
    }

    pub fn kind(&self) -> DbKind {
        match self.backend {
            Backend::Sqlite { .. } => DbKind::Sqlite,
            Backend::Postgres(_) => DbKind::Postgres,
        }
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        read!(self, |p| sqlx::query("SELECT 1").execute(p).await.is_ok())
    }

    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Backend::Postgres(pg) => pg.close().await,
        }
    }
}

/// A database URL with any password replaced, fit for logs.
pub fn redact_url(url: &str) -> String {
    // postgres://user:secret@host/db → postgres://user:***@host/db
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((creds, host)) = rest.split_once('@') {
            if let Some((user, _)) = creds.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_owned()
}

/// What can go wrong in the store, classified so the edges can answer precisely.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule refused the write (409 at the edge).
    #[error("conflict: {}", .0)]
    Conflict(FieldError),
    /// The write would break a rule of the domain (422 at the edge).
    #[error("invalid: {0}")]
    Invalid(Invalid),
    /// The write refers to a record that does not exist (422 at the edge).
    #[error("reference: {}", .0)]
    Reference(FieldError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("migration: {0}")]
    Migration(String),
    /// A stored value no longer parses: the database was edited outside medgrid.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Database(sqlx::Error),
}

impl From<Invalid> for StoreError {
    fn from(e: Invalid) -> Self {
        StoreError::Invalid(e)
    }
}

/// Unique constraints by their PostgreSQL name and the columns SQLite names in its message,
/// with the field and the words people see.
const UNIQUE_CONSTRAINTS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "uq_assessment_scheme_version",
        "assessment_scheme.group_id, assessment_scheme.version",
        "scheme",
        "考核方案已被他人同时保存，请刷新后重试",
        "the scheme was saved by someone else meanwhile; reload and try again",
    ),
    (
        "uq_referral_catalogue_version",
        "referral_catalogue.group_id, referral_catalogue.kind, referral_catalogue.version",
        "base_version",
        "目录已被他人同时更新，请刷新后重试",
        "the catalogue was published by someone else meanwhile; reload and try again",
    ),
    (
        "uq_booking_live_referral",
        "booking.referral_id",
        "referral_id",
        "该转诊已有有效预约；如需更改请改约",
        "the referral already holds a live booking; reschedule it instead",
    ),
    (
        "uq_waitlist_open_referral",
        "waitlist.referral_id",
        "referral_id",
        "该转诊已在候补队列中",
        "the referral is already queued",
    ),
    (
        "uq_city_division_code",
        "city.division_code",
        "division_code",
        "该区划代码的城市已存在",
        "a city with this division code already exists",
    ),
    (
        "uq_grid_code",
        "grid.city_id, grid.code",
        "code",
        "本市已有同编码的网格",
        "a grid with this code already exists in the city",
    ),
    (
        "uq_med_group_code",
        "med_group.city_id, med_group.code",
        "code",
        "本市已有同编码的医疗集团",
        "a group with this code already exists in the city",
    ),
    (
        "uq_med_group_grid",
        "med_group.grid_id",
        "grid_id",
        "一个网格只能有一个医疗集团",
        "a grid has exactly one medical group",
    ),
    (
        "uq_unit_uscc",
        "unit.uscc",
        "uscc",
        "该统一社会信用代码已被其他机构使用",
        "another unit already has this unified social credit code",
    ),
    (
        "uq_unit_code",
        "unit.city_id, unit.code",
        "code",
        "本市已有同编码的机构",
        "a unit with this code already exists in the city",
    ),
    (
        "uq_unit_group_lead",
        "unit.group_id",
        "role",
        "该医疗集团已有牵头医院，一个集团只能有一家牵头医院",
        "the group already has a lead hospital; a group has exactly one",
    ),
    (
        "uq_department_code",
        "department.unit_id, department.code",
        "code",
        "本机构已有同编码的科室",
        "a department with this code already exists in the unit",
    ),
    (
        "uq_practitioner_licence_no",
        "practitioner.licence_no",
        "licence_no",
        "该执业证书编码已登记",
        "a practitioner with this licence number already exists",
    ),
    (
        "uq_practice_site_unit",
        "practice_site.practitioner_id, practice_site.unit_id",
        "unit_id",
        "该医师已在此机构执业",
        "the practitioner already practises at this unit",
    ),
    (
        "uq_practice_site_primary",
        "practice_site.practitioner_id",
        "primary",
        "该医师已有主要执业机构",
        "the practitioner already has a primary site",
    ),
    (
        "uq_app_user_username",
        "app_user.username",
        "username",
        "用户名已存在",
        "the username is taken",
    ),
    (
        "uq_api_token_token_hash",
        "api_token.token_hash",
        "token",
        "令牌冲突，请重试",
        "token collision, try again",
    ),
];

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => return StoreError::NotFound,
            sqlx::Error::Database(db) => match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation => {
                    let message = db.message();
                    let hit = UNIQUE_CONSTRAINTS.iter().find(|(pg, sqlite, ..)| {
                        db.constraint() == Some(pg)
                            || message.strip_prefix("UNIQUE constraint failed: ") == Some(sqlite)
                    });
                    if let Some((_, _, field, zh, en)) = hit {
                        return StoreError::Conflict(FieldError::new(*field, "conflict", *zh, *en));
                    }
                    return StoreError::Conflict(FieldError::new(
                        "record",
                        "conflict",
                        "记录已存在",
                        "the record already exists",
                    ));
                }
                sqlx::error::ErrorKind::ForeignKeyViolation => {
                    return StoreError::Reference(FieldError::new(
                        "reference",
                        "not_found",
                        "引用的记录不存在",
                        "a referenced record does not exist",
                    ));
                }
                _ => {}
            },
            _ => {}
        }
        StoreError::Database(e)
    }
}

/// Parses a stored vocabulary value, reporting corruption instead of panicking.
pub(crate) fn stored<T>(
    parse: impl FnOnce(&str) -> Result<T, FieldError>,
    raw: &str,
) -> Result<T, StoreError> {
    parse(raw).map_err(|e| StoreError::Corrupt(format!("{}: '{raw}'", e.field)))
}

/// The group's wall clock: China Standard Time (UTC+8, no daylight saving), in which sessions,
/// slots and referral timers are written.
pub fn local_now() -> chrono::NaiveDateTime {
    use chrono::SubsecRound;
    (chrono::Utc::now() + chrono::Duration::hours(8))
        .naive_utc()
        .trunc_subsecs(0)
}

/// The clock, in one place so that stored timestamps share one resolution.
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{SubsecRound, Utc};
    Utc::now().trunc_subsecs(6)
}
