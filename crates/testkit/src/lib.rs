//! A fresh, migrated database per test, on either backend, so that one test suite runs
//! unchanged against SQLite and PostgreSQL.
//!
//! PostgreSQL is reached at `MEDGRID_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/test`); each test gets its own database, dropped when
//! the test finishes.

#![allow(clippy::expect_used)] // test support: a failed setup must stop the test loudly

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;
use sqlx::Connection;

use medgrid_store::{ConnectOptions, DbKind, Store};

pub const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let r: u32 = rand::thread_rng().gen();
    format!("{prefix}_{}_{n}_{r:08x}", std::process::id())
}

/// The admin URL of the PostgreSQL server used by tests.
pub fn pg_admin_url() -> String {
    std::env::var("MEDGRID_TEST_PG").unwrap_or_else(|_| DEFAULT_PG.to_owned())
}

/// A migrated, empty database that is removed by [`TestDb::finish`].
pub struct TestDb {
    pub store: Store,
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    File(PathBuf),
    Database(String),
}

impl TestDb {
    pub async fn new(kind: DbKind) -> TestDb {
        match kind {
            DbKind::Sqlite => {
                let dir = std::env::temp_dir().join(unique("medgrid_test"));
                std::fs::create_dir_all(&dir).expect("temp dir");
                let url = format!("sqlite://{}/medgrid.db", dir.display());
                let store = Store::connect(&url, &ConnectOptions::default())
                    .await
                    .expect("open sqlite");
                store.migrate().await.expect("migrate sqlite");
                TestDb {
                    store,
                    url,
                    cleanup: Cleanup::File(dir),
                }
            }
            DbKind::Postgres => {
                let admin = pg_admin_url();
                let name = unique("medgrid_t");
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .expect("PostgreSQL for tests (set MEDGRID_TEST_PG)");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                let url = format!("{base}/{name}");
                let store = Store::connect(
                    &url,
                    &ConnectOptions {
                        max_connections: 20,
                        ..ConnectOptions::default()
                    },
                )
                .await
                .expect("open postgres");
                store.migrate().await.expect("migrate postgres");
                TestDb {
                    store,
                    url,
                    cleanup: Cleanup::Database(name),
                }
            }
        }
    }

    /// Closes the store and removes the database.
    pub async fn finish(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::File(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Database(name) => {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            }
        }
    }
}

/// Declares each listed `async fn(Store)` as two tests, one per backend:
/// `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::TestDb::new(medgrid_store::DbKind::Sqlite).await;
                    super::$name(db.store.clone()).await;
                    db.finish().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::TestDb::new(medgrid_store::DbKind::Postgres).await;
                    super::$name(db.store.clone()).await;
                    db.finish().await;
                }
            )+
        }
    };
}
