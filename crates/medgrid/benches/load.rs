//! The bulk loader against each database's own bulk path, on fresh databases.
//!
//! ```text
//! cargo bench -p medgrid --bench load -- --residents 20000 [--seed 1] [--db sqlite|postgres]
//! ```
//!
//! For each database, on a fresh database holding the Jinhua layout and its staff:
//!
//! - baseline: the population pre-written as files in the database's spelling (registry ids,
//!   fen, 1/0), then loaded in one transaction by the database's own path, the clock running
//!   only for the load. PostgreSQL: `COPY … FROM STDIN (FORMAT csv)` fed each file's raw bytes.
//!   SQLite has no bulk path of its own: what `sqlite3 .import` does, a prepared single-row
//!   `INSERT` stepped once per row through the C API (rusqlite, linking the same SQLite as
//!   sqlx), with the rows parsed into memory beforehand. Measured twice: into the schema as
//!   migrated, and with the loader's recipe (secondary indexes, and on PostgreSQL foreign
//!   keys, dropped first and re-created after, then ANALYZE on PostgreSQL), so that what the
//!   recipe gains and what the loader costs are told apart.
//! - medgrid: `Store::load_population`, the clock running from the first query to the commit,
//!   generation included (it overlaps the load on another core).
//!
//! PostgreSQL is the one the tests use, `MEDGRID_TEST_PG`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure should stop it loudly

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use sqlx::Connection;

use medgrid_domain::org::layout::{parse_layout, Layout};
use medgrid_sim::table::Kind;
use medgrid_sim::{schema, Params, Schema};
use medgrid_store::bulk::{pg_copy, write_copy_files};
use medgrid_store::{Actor, DbKind, Refs};

/// SQLite's page cache during the baseline, as the loader sets it (bulk.rs).
const SQLITE_CACHE_KIB: i64 = 256 * 1024;

struct Args {
    residents: u64,
    seed: u64,
    kinds: Vec<DbKind>,
}

fn args() -> Args {
    Args {
        residents: common::flag("--residents").unwrap_or(20_000),
        seed: common::flag("--seed").unwrap_or(1),
        kinds: common::kinds(),
    }
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let layout = parse_layout(common::JINHUA).unwrap();
    let params = Params::new(
        args.seed,
        args.residents,
        chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
    );
    println!(
        "synthetic city: Jinhua layout, {} residents, seed {}",
        args.residents, args.seed
    );
    for kind in &args.kinds {
        runtime.block_on(bench(*kind, &layout, &params));
    }
}

async fn bench(kind: DbKind, layout: &Layout, params: &Params) {
    let name = match kind {
        DbKind::Sqlite => "SQLite",
        DbKind::Postgres => "PostgreSQL",
    };
    let loaded: Vec<&'static Schema> = schema::loaded().collect();

    // Registry ids are the same in every fresh database, so one set of files serves all.
    let db = common::registered(kind, layout, params.seed).await;
    let refs = Refs::load(&db.store, 1, layout, params.seed).await.unwrap();
    let dir = std::env::temp_dir().join(format!("medgrid-bench-load-{}", std::process::id()));
    let started = Instant::now();
    let manifest = {
        let (layout, params, dir) = (layout.clone(), params.clone(), dir.clone());
        tokio::task::spawn_blocking(move || write_copy_files(&layout, &params, refs, &dir))
            .await
            .unwrap()
            .unwrap()
    };
    let rows: u64 = loaded.iter().filter_map(|t| manifest.rows(t.file)).sum();
    println!(
        "\n{name}: {rows} rows in {} tables; pre-made files written in {:.1} s",
        loaded.len(),
        started.elapsed().as_secs_f64()
    );
    let native = match kind {
        DbKind::Postgres => "COPY FROM STDIN (FORMAT csv) of pre-made files",
        DbKind::Sqlite => "prepared single-row INSERTs of pre-made rows (C API)",
    };
    let mut rates = Vec::new();
    let mut fresh = Some(db);
    for recipe in [false, true] {
        let db = match fresh.take() {
            Some(db) => db,
            None => common::registered(kind, layout, params.seed).await,
        };
        let seconds = match kind {
            DbKind::Postgres => copy_files(&db.url, &loaded, &dir, recipe).await,
            DbKind::Sqlite => {
                db.store.close().await;
                insert_rows(&db.url, &loaded, &dir, recipe)
            }
        };
        db.finish().await;
        let rate = rows as f64 / seconds;
        let how = match (recipe, kind) {
            (false, _) => "schema as migrated",
            (true, DbKind::Sqlite) => "indexes deferred",
            (true, DbKind::Postgres) => "indexes and keys deferred",
        };
        println!("  baseline, {native}, {how}: {seconds:.2} s, {rate:.0} rows/s");
        rates.push(rate);
    }
    let _ = std::fs::remove_dir_all(&dir);

    let db = common::registered(kind, layout, params.seed).await;
    let started = Instant::now();
    let summary = db
        .store
        .load_population(&Actor::system("bench"), 1, layout, params, |_| {})
        .await
        .unwrap();
    let ours = started.elapsed().as_secs_f64();
    db.finish().await;
    assert_eq!(summary.rows(), rows, "the loader wrote what was generated");
    let rate = rows as f64 / ours;
    println!("  medgrid loader, generation included: {ours:.2} s, {rate:.0} rows/s");
    println!(
        "  medgrid / baseline: {:.2} (schema as migrated), {:.2} (deferred as the loader does)",
        rate / rates[0],
        rate / rates[1]
    );
}

/// PostgreSQL's own path: one `COPY` per table in one transaction. Seconds.
async fn copy_files(url: &str, loaded: &[&'static Schema], dir: &Path, recipe: bool) -> f64 {
    let files: Vec<Vec<u8>> = loaded
        .iter()
        .map(|t| std::fs::read(file(dir, t)).unwrap())
        .collect();
    let tables: Vec<String> = loaded.iter().map(|t| t.db.to_owned()).collect();
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let started = Instant::now();
    let mut tx = conn.begin().await.unwrap();
    let mut rebuild = Vec::new();
    if recipe {
        sqlx::query("SET LOCAL maintenance_work_mem = '256MB'")
            .execute(&mut *tx)
            .await
            .unwrap();
        let set_aside: Vec<(String, String)> = sqlx::query_as(
            "SELECT format('DROP INDEX %s', indexrelid::regclass), pg_get_indexdef(indexrelid) \
             FROM pg_index WHERE indrelid = ANY($1::regclass[]) AND NOT indisunique AND NOT indisprimary \
             UNION ALL \
             SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname), \
             format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname, pg_get_constraintdef(oid)) \
             FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY($1::regclass[])",
        )
        .bind(&tables)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        for (drop, create) in set_aside {
            sqlx::query(&drop).execute(&mut *tx).await.unwrap();
            rebuild.push(create);
        }
    }
    for (t, bytes) in loaded.iter().zip(files) {
        let mut copy = tx.copy_in_raw(&pg_copy(t)).await.unwrap();
        copy.send(bytes).await.unwrap();
        copy.finish().await.unwrap();
    }
    for sql in &rebuild {
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
    }
    if recipe {
        sqlx::query(&format!("ANALYZE {}", tables.join(", ")))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    started.elapsed().as_secs_f64()
}

/// SQLite through its C API: a prepared single-row INSERT per table, stepped once per row,
/// in one transaction. Seconds.
fn insert_rows(url: &str, loaded: &[&'static Schema], dir: &Path, recipe: bool) -> f64 {
    let rows: Vec<Vec<Vec<rusqlite::types::Value>>> = loaded
        .iter()
        .map(|t| parse(t, &std::fs::read(file(dir, t)).unwrap()))
        .collect();
    let path = url.strip_prefix("sqlite://").unwrap();
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -{SQLITE_CACHE_KIB};"
    ))
    .unwrap();
    let started = Instant::now();
    let tx = conn.transaction().unwrap();
    let mut rebuild = Vec::new();
    if recipe {
        let tables: Vec<String> = loaded.iter().map(|t| format!("'{}'", t.db)).collect();
        let indexes: Vec<(String, String)> = tx
            .prepare(&format!(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
                 AND sql NOT LIKE 'CREATE UNIQUE%' AND tbl_name IN ({})",
                tables.join(", ")
            ))
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (name, sql) in indexes {
            tx.execute_batch(&format!("DROP INDEX {name}")).unwrap();
            rebuild.push(sql);
        }
    }
    for (t, rows) in loaded.iter().zip(rows) {
        let columns: Vec<&str> = t.columns.iter().map(|c| c.db).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            t.db,
            columns.join(", "),
            vec!["?"; columns.len()].join(",")
        );
        let mut stmt = tx.prepare_cached(&sql).unwrap();
        for row in rows {
            stmt.execute(rusqlite::params_from_iter(row)).unwrap();
        }
    }
    for sql in &rebuild {
        tx.execute_batch(sql).unwrap();
    }
    tx.commit().unwrap();
    started.elapsed().as_secs_f64()
}

fn file(dir: &Path, t: &Schema) -> PathBuf {
    dir.join(format!("{}.csv", t.db))
}

/// Rows of a file written by `write_copy_files`: fields quoted where needed with `""` for a
/// quote, an unquoted empty field is NULL (as `COPY … (FORMAT csv)` reads them).
fn parse(t: &Schema, bytes: &[u8]) -> Vec<Vec<rusqlite::types::Value>> {
    use rusqlite::types::Value;
    let mut rows = Vec::new();
    let mut row = Vec::with_capacity(t.columns.len());
    let mut field = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let quoted = bytes[i] == b'"';
        field.clear();
        if quoted {
            i += 1;
            loop {
                match bytes[i] {
                    b'"' if bytes.get(i + 1) == Some(&b'"') => {
                        field.push(b'"');
                        i += 2;
                    }
                    b'"' => {
                        i += 1;
                        break;
                    }
                    b => {
                        field.push(b);
                        i += 1;
                    }
                }
            }
        } else {
            while i < bytes.len() && bytes[i] != b',' && bytes[i] != b'\n' {
                field.push(bytes[i]);
                i += 1;
            }
        }
        let text = String::from_utf8(field.clone()).unwrap();
        let value = if !quoted && text.is_empty() {
            Value::Null
        } else {
            match t.columns[row.len()].kind {
                Kind::Text | Kind::Date | Kind::Timestamp => Value::Text(text),
                _ => Value::Integer(text.parse().unwrap()),
            }
        };
        row.push(value);
        let end = bytes.get(i).copied();
        i += 1;
        if end == Some(b'\n') || end.is_none() {
            assert_eq!(row.len(), t.columns.len(), "{}: row {}", t.db, rows.len());
            rows.push(std::mem::replace(
                &mut row,
                Vec::with_capacity(t.columns.len()),
            ));
        }
    }
    rows
}
