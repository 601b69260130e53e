//! Embedded migrations. Each migration carries its SQLite and its PostgreSQL text side by
//! side, so the two sets cannot drift apart in number or order; a contract test checks that
//! they also produce the same tables and columns.

use crate::{Backend, Store, StoreError};

/// One schema change in both dialects.
#[derive(Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
    /// SQLite cannot alter a column's constraints, so such a migration rebuilds the table. It
    /// runs with foreign keys off (they cannot be switched inside a transaction) and every
    /// key is checked before it commits.
    pub sqlite_rebuilds: bool,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "registry",
        sqlite: include_str!("../migrations/sqlite/0001_registry.sql"),
        postgres: include_str!("../migrations/postgres/0001_registry.sql"),
        sqlite_rebuilds: false,
    },
    Migration {
        version: 2,
        name: "population",
        sqlite: include_str!("../migrations/sqlite/0002_population.sql"),
        postgres: include_str!("../migrations/postgres/0002_population.sql"),
        sqlite_rebuilds: false,
    },
    Migration {
        version: 3,
        name: "capacity",
        sqlite: include_str!("../migrations/sqlite/0003_capacity.sql"),
        postgres: include_str!("../migrations/postgres/0003_capacity.sql"),
        sqlite_rebuilds: false,
    },
    Migration {
        version: 4,
        name: "group_figures",
        sqlite: include_str!("../migrations/sqlite/0004_group_figures.sql"),
        postgres: include_str!("../migrations/postgres/0004_group_figures.sql"),
        sqlite_rebuilds: false,
    },
    Migration {
        version: 5,
        name: "referral_workflow",
        sqlite: include_str!("../migrations/sqlite/0005_referral_workflow.sql"),
        postgres: include_str!("../migrations/postgres/0005_referral_workflow.sql"),
        sqlite_rebuilds: true,
    },
    Migration {
        version: 6,
        name: "indicators",
        sqlite: include_str!("../migrations/sqlite/0006_indicators.sql"),
        postgres: include_str!("../migrations/postgres/0006_indicators.sql"),
        sqlite_rebuilds: false,
    },
    Migration {
        version: 7,
        name: "assessment",
        sqlite: include_str!("../migrations/sqlite/0007_assessment.sql"),
        postgres: include_str!("../migrations/postgres/0007_assessment.sql"),
        sqlite_rebuilds: false,
    },
    Migration {
        version: 8,
        name: "cube_version",
        sqlite: include_str!("../migrations/sqlite/0008_cube_version.sql"),
        postgres: include_str!("../migrations/postgres/0008_cube_version.sql"),
        sqlite_rebuilds: false,
    },
    Migration {
        version: 9,
        name: "referral_idempotency",
        sqlite: include_str!("../migrations/sqlite/0009_referral_idempotency.sql"),
        postgres: include_str!("../migrations/postgres/0009_referral_idempotency.sql"),
        sqlite_rebuilds: false,
    },
    Migration {
        version: 10,
        name: "patient_index",
        sqlite: include_str!("../migrations/sqlite/0010_patient_index.sql"),
        postgres: include_str!("../migrations/postgres/0010_patient_index.sql"),
        sqlite_rebuilds: false,
    },
    Migration {
        version: 11,
        name: "insurance",
        sqlite: include_str!("../migrations/sqlite/0011_insurance.sql"),
        postgres: include_str!("../migrations/postgres/0011_insurance.sql"),
        sqlite_rebuilds: false,
    },
    Migration {
        version: 12,
        name: "booking_statement",
        sqlite: include_str!("../migrations/sqlite/0012_booking_statement.sql"),
        postgres: include_str!("../migrations/postgres/0012_booking_statement.sql"),
        sqlite_rebuilds: false,
    },
];

const LEDGER_SQLITE: &str = "CREATE TABLE IF NOT EXISTS schema_migration (
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)";
const LEDGER_POSTGRES: &str = "CREATE TABLE IF NOT EXISTS schema_migration (
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)";

/// Serialises concurrent `migrate` runs of several processes on one PostgreSQL database.
const PG_ADVISORY_KEY: i64 = 0x006d_6564_6772_6964; // "medgrid" in ASCII

/// FNV-1a, 64 bit: enough to notice that an applied migration's text was edited (not a
/// defence against tampering, which the database's own permissions are for).
fn checksum(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

impl Store {
    /// Applies every migration not yet applied, each in its own transaction. Refuses to run
    /// if an applied migration's text has changed since (the schema would no longer match).
    /// Returns the versions applied now.
    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        match &self.backend {
            Backend::Sqlite { write, .. } => {
                let mut conn = write.acquire().await?;
                sqlx::raw_sql(LEDGER_SQLITE).execute(&mut *conn).await?;
                let applied: Vec<(i64, String)> =
                    sqlx::query_as("SELECT version, checksum FROM schema_migration")
                        .fetch_all(&mut *conn)
                        .await?;
                let mut done = Vec::new();
                for m in pending(&applied, |m| m.sqlite)? {
                    if m.sqlite_rebuilds {
                        sqlx::query("PRAGMA foreign_keys = OFF")
                            .execute(&mut *conn)
                            .await?;
                    }
                    let applied = apply_sqlite(&mut conn, m).await;
                    if m.sqlite_rebuilds {
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                    }
                    applied?;
                    done.push(m.version);
                }
                Ok(done)
            }
            Backend::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(PG_ADVISORY_KEY)
                    .execute(&mut *conn)
                    .await?;
                let result = async {
                    sqlx::raw_sql(LEDGER_POSTGRES).execute(&mut *conn).await?;
                    let applied: Vec<(i64, String)> =
                        sqlx::query_as("SELECT version, checksum FROM schema_migration")
                            .fetch_all(&mut *conn)
                            .await?;
                    let mut done = Vec::new();
                    for m in pending(&applied, |m| m.postgres)? {
                        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                        sqlx::raw_sql(m.postgres).execute(&mut *tx).await?;
                        sqlx::query("INSERT INTO schema_migration (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)")
                            .bind(m.version)
                            .bind(m.name)
                            .bind(checksum(m.postgres))
                            .bind(crate::now())
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await?;
                        done.push(m.version);
                    }
                    Ok::<_, StoreError>(done)
                }
                .await;
                sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(PG_ADVISORY_KEY)
                    .execute(&mut *conn)
                    .await?;
                result
            }
        }
    }
}

/// Applies one migration on SQLite in its own transaction, refusing to commit a rebuild that
/// left a dangling foreign key.
async fn apply_sqlite(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>,
    m: &Migration,
) -> Result<(), StoreError> {
    let mut tx = sqlx::Connection::begin(&mut **conn).await?;
    sqlx::raw_sql(m.sqlite).execute(&mut *tx).await?;
    if m.sqlite_rebuilds {
        let dangling = sqlx::query("PRAGMA foreign_key_check")
            .fetch_all(&mut *tx)
            .await?;
        if !dangling.is_empty() {
            return Err(StoreError::Migration(format!(
                "migration {} would leave {} rows with a dangling foreign key",
                m.version,
                dangling.len()
            )));
        }
    }
    sqlx::query(
        "INSERT INTO schema_migration (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(m.version)
    .bind(m.name)
    .bind(checksum(m.sqlite))
    .bind(crate::now())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The migrations still to apply, after checking that applied ones are unchanged.
fn pending(
    applied: &[(i64, String)],
    text: impl Fn(&Migration) -> &'static str,
) -> Result<Vec<&'static Migration>, StoreError> {
    for (version, sum) in applied {
        match MIGRATIONS.iter().find(|m| m.version == *version) {
            None => {
                return Err(StoreError::Migration(format!(
                    "the database has migration {version}, which this medgrid does not know: it is newer than this binary"
                )))
            }
            Some(m) if checksum(text(m)) != *sum => {
                return Err(StoreError::Migration(format!(
                    "migration {version} ({}) was changed after it was applied",
                    m.name
                )))
            }
            Some(_) => {}
        }
    }
    Ok(MIGRATIONS
        .iter()
        .filter(|m| !applied.iter().any(|(v, _)| *v == m.version))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_strictly_increasing_and_both_dialects_present() {
        let mut last = 0;
        for m in MIGRATIONS {
            assert!(m.version > last, "migration {} out of order", m.version);
            last = m.version;
            assert!(!m.sqlite.trim().is_empty() && !m.postgres.trim().is_empty());
        }
    }

    #[test]
    fn an_edited_migration_is_refused() {
        let applied = vec![(1, "0000000000000000".to_owned())];
        let err = pending(&applied, |m| m.sqlite).unwrap_err();
        assert!(err.to_string().contains("changed after it was applied"));
        let unknown = vec![(999, "x".to_owned())];
        assert!(pending(&unknown, |m| m.sqlite).is_err());
    }
}
