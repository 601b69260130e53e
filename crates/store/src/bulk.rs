//! Bulk loading of the synthetic city (`medgrid_sim::generate`) into either database.
//!
//! The generator runs on a blocking thread and writes into a [`SinkFactory`] whose sinks spell
//! each value the way the database takes it: CSV text for PostgreSQL's `COPY … FROM STDIN`,
//! bound parameters of multi-row `INSERT`s for SQLite. Rows are buffered per table and sent in
//! batches over a bounded channel; the async side writes each batch while the generator
//! produces the next, so on two cores generation and loading overlap.
//!
//! A batch holds every table's buffered rows, sent in `schema::loaded()` order (referenced
//! tables first), and is cut only between two residents, when the generator has written all of
//! one resident's rows: so each row's references are already in the database when it arrives,
//! and SQLite checks foreign keys row by row as they come.
//!
//! The tables are empty when a load starts (generated ids would collide otherwise), so the load
//! follows the databases' own advice for populating them: secondary indexes are dropped first and
//! built once at the end, from all the rows; on PostgreSQL the foreign keys too, each then
//! checked by one join when it is re-added.
//!
//! The whole population loads in one transaction, with one audit entry per table: a refused row
//! or a failing database leaves nothing behind, indexes and keys included.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime};
use medgrid_sim::csv_out::{push_date, push_i64, push_timestamp};
use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, Connection};
use tokio::sync::mpsc;

use medgrid_domain::access::{Id, OrgPath};
use medgrid_domain::org::layout::Layout;
use medgrid_domain::org::{DepartmentDraft, DepartmentKind, PractitionerDraft};
use medgrid_domain::FieldError;
use medgrid_sim::staff::{departments_for, staff};
use medgrid_sim::table::{Schema, Sink, SinkError, SinkFactory};
use medgrid_sim::{schema, Manifest, Params, Progress};

use crate::audit::audit_insert;
use crate::{read, Actor, AuditEntry, Backend, Outcome, Store, StoreError};

/// What went wrong in a bulk load. Nothing of the load is left in the database.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The generator produced a row the database cannot take (a unit, group or practitioner
    /// the registry does not hold).
    #[error("{0}")]
    Rejected(SinkError),
    /// The population tables already hold rows: generated ids would collide.
    #[error("table {0} already holds rows: a synthetic city loads into empty population tables")]
    NotEmpty(&'static str),
    /// The generator stopped abnormally, or its count disagrees with the rows written: a bug.
    #[error("bulk load: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for LoadError {
    fn from(e: sqlx::Error) -> Self {
        LoadError::Store(e.into())
    }
}

/// What a bulk load wrote.
#[derive(Debug, Clone)]
pub struct LoadSummary {
    /// What the generator produced, every table included.
    pub manifest: Manifest,
    /// Rows written per database table, in load order.
    pub tables: Vec<(&'static str, u64)>,
    /// From the first query to the commit, generation included.
    pub elapsed: Duration,
}

impl LoadSummary {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

/// (code, registry id) pairs.
type Codes = Vec<(String, Id)>;

/// Registry ids of what generated rows name by code (units, groups) or by generated id
/// (practitioners, matched through their licence numbers).
#[derive(Debug, Clone, Default)]
pub struct Refs {
    units: HashMap<String, Id>,
    groups: HashMap<String, Id>,
    /// By generated practitioner id − 1; `None` when the licence is not registered.
    practitioners: Vec<Option<Id>>,
}

impl Refs {
    /// Reads the city's units, groups and practitioners, and pairs the generated staff of
    /// `layout` and `seed` with the registered practitioners by licence number.
    pub async fn load(
        store: &Store,
        city_id: Id,
        layout: &Layout,
        seed: u64,
    ) -> Result<Refs, StoreError> {
        let (units, groups, licences): (Codes, Codes, Codes) = read!(store, |p| {
            let units = sqlx::query_as("SELECT code, id FROM unit WHERE city_id = $1")
                .bind(city_id)
                .fetch_all(p)
                .await?;
            let groups = sqlx::query_as("SELECT code, id FROM med_group WHERE city_id = $1")
                .bind(city_id)
                .fetch_all(p)
                .await?;
            let licences =
                sqlx::query_as("SELECT licence_no, id FROM practitioner WHERE city_id = $1")
                    .bind(city_id)
                    .fetch_all(p)
                    .await?;
            (units, groups, licences)
        });
        let by_licence: HashMap<String, Id> = licences.into_iter().collect();
        let members = staff(layout, seed);
        let mut practitioners = vec![None; members.len()];
        for m in &members {
            if let Some(slot) = (m.id as usize)
                .checked_sub(1)
                .and_then(|i| practitioners.get_mut(i))
            {
                *slot = by_licence.get(&m.licence_no).copied();
            }
        }
        Ok(Refs {
            units: units.into_iter().collect(),
            groups: groups.into_iter().collect(),
            practitioners,
        })
    }

    pub fn unit(&self, code: &str) -> Option<Id> {
        self.units.get(code).copied()
    }

    pub fn group(&self, code: &str) -> Option<Id> {
        self.groups.get(code).copied()
    }

    /// The registry id of generated practitioner `id` (1-based).
    pub fn practitioner(&self, id: u64) -> Option<Id> {
        let i = usize::try_from(id).ok()?.checked_sub(1)?;
        self.practitioners.get(i).copied().flatten()
    }
}

/// What the staff registration created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaffSummary {
    pub departments: usize,
    pub practitioners: usize,
}

impl Store {
    /// Registers every unit's departments and the generated staff of `layout` for `seed`
    /// (the practitioners that generated rows refer to), each with its audit entry.
    pub async fn register_staff(
        &self,
        actor: &Actor,
        city_id: Id,
        layout: &Layout,
        seed: u64,
    ) -> Result<StaffSummary, StoreError> {
        let tree = self.city_tree(city_id).await?;
        let units: HashMap<&str, &medgrid_domain::org::Unit> =
            tree.units.iter().map(|u| (u.code.as_str(), u)).collect();
        let mut outpatient: HashMap<(&str, &str), Id> = HashMap::new();
        let mut summary = StaffSummary {
            departments: 0,
            practitioners: 0,
        };
        for unit in &tree.units {
            for (code, name, kind, beds) in departments_for(unit.role) {
                let d = self
                    .create_department(
                        actor,
                        unit,
                        &DepartmentDraft {
                            code: (*code).into(),
                            name: (*name).into(),
                            kind: *kind,
                            beds: *beds,
                        },
                    )
                    .await?;
                summary.departments += 1;
                if *kind == DepartmentKind::Outpatient {
                    outpatient.insert((unit.code.as_str(), code), d.id);
                }
            }
        }
        for member in staff(layout, seed) {
            let unit = units.get(member.unit_code.as_str()).ok_or_else(|| {
                StoreError::Reference(FieldError::new(
                    "unit_code",
                    "not_found",
                    format!("人员所在机构 {} 不在该城市", member.unit_code),
                    format!("staff of unit {}, which the city lacks", member.unit_code),
                ))
            })?;
            let draft = PractitionerDraft {
                licence_no: member.licence_no.clone(),
                name: member.name.clone(),
                sex: member.sex,
                title: member.title,
                specialty: None,
                unit_id: unit.id,
                department_id: member
                    .department_code
                    .and_then(|d| outpatient.get(&(member.unit_code.as_str(), d)).copied()),
            };
            let p = self.create_practitioner(actor, unit, &draft).await?;
            summary.practitioners += 1;
            // Lead-hospital experts hold sessions at primary units of their group (R5.4),
            // registered as multi-site practice.
            for site in &member.extra_sites {
                if let Some(site) = units.get(site.as_str()) {
                    self.add_practice_site(actor, p.id, site, None).await?;
                }
            }
        }
        Ok(summary)
    }

    /// Rows of each population table, in load order.
    pub async fn population_counts(&self) -> Result<Vec<(&'static str, i64)>, StoreError> {
        let mut out = Vec::new();
        for t in loaded_tables() {
            // Table names come from the static schema, never from input.
            let sql = format!("SELECT COUNT(*) FROM {}", t.db);
            let n: i64 = read!(self, |p| sqlx::query_scalar(&sql).fetch_one(p).await?);
            out.push((t.db, n));
        }
        Ok(out)
    }

    /// Generates the synthetic city of `layout` and `params` into the population tables of
    /// city `city_id`, whose registry must hold the layout and its staff
    /// ([`Store::register_staff`]). The population tables must be empty. `progress` hears how
    /// many residents are in the database.
    ///
    /// This sets a database up: on PostgreSQL the load holds exclusive locks on the population
    /// tables and on the registry's unit, med_group and practitioner tables until it commits
    /// (their foreign keys are set aside), so readers of those wait for it.
    pub async fn load_population(
        &self,
        actor: &Actor,
        city_id: Id,
        layout: &Layout,
        params: &Params,
        mut progress: impl FnMut(Progress) + Send,
    ) -> Result<LoadSummary, LoadError> {
        let started = Instant::now();
        let refs = Refs::load(self, city_id, layout, params.seed).await?;
        let loaded = loaded_tables();
        progress(Progress {
            done: 0,
            total: params.residents,
        });
        let (manifest, tables) = match &self.backend {
            Backend::Sqlite { write, .. } => {
                let mut conn = write.acquire().await?;
                // Random-order index inserts (citizen ids, dates) stay in memory instead of
                // spilling pages during the one long transaction; restored afterwards.
                let cache: i64 = sqlx::query_scalar("PRAGMA cache_size")
                    .fetch_one(&mut *conn)
                    .await?;
                sqlx::query(&format!("PRAGMA cache_size = -{SQLITE_LOAD_CACHE_KIB}"))
                    .execute(&mut *conn)
                    .await?;
                let result = async {
                    let mut tx = conn.begin().await?;
                    ensure_empty!(&mut *tx, &loaded);
                    let rebuild = sqlite_drop_indexes(&mut tx, &loaded).await?;
                    let (sender, receiver) = mpsc::channel(CHANNEL_BATCHES);
                    let generator =
                        spawn_generator::<SqliteRows>(layout, params, refs, sender, BATCH_VALUES);
                    let written =
                        receive_sqlite(&mut tx, &loaded, receiver, params, &mut progress).await;
                    let (manifest, tables) = settle(generator, written, &loaded).await?;
                    for sql in &rebuild {
                        sqlx::query(sql).execute(&mut *tx).await?;
                    }
                    audit_tables!(&mut *tx, actor, city_id, params, &tables);
                    tx.commit().await?;
                    Ok::<_, LoadError>((manifest, tables))
                }
                .await;
                let restored = sqlx::query(&format!("PRAGMA cache_size = {cache}"))
                    .execute(&mut *conn)
                    .await;
                // The load's statements are large and not needed again.
                let cleared = conn.clear_cached_statements().await;
                let loaded = result?;
                restored?;
                cleared?;
                loaded
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                ensure_empty!(&mut *tx, &loaded);
                let rebuild = pg_drop_indexes_and_keys(&mut tx, &loaded).await?;
                let (sender, receiver) = mpsc::channel(CHANNEL_BATCHES);
                let generator =
                    spawn_generator::<PgCsv>(layout, params, refs, sender, BATCH_VALUES);
                let written = receive_pg(&mut tx, &loaded, receiver, params, &mut progress).await;
                let (manifest, tables) = settle(generator, written, &loaded).await?;
                for sql in &rebuild {
                    sqlx::query(sql).execute(&mut *tx).await?;
                }
                // Fresh statistics, so the first queries after the load are planned well.
                let names: Vec<&str> = loaded.iter().map(|t| t.db).collect();
                sqlx::query(&format!("ANALYZE {}", names.join(", ")))
                    .execute(&mut *tx)
                    .await?;
                // Live referrals and follow-ups take ids after the generated ones.
                for (seq, table) in [
                    ("referral_id_seq", "referral"),
                    ("follow_up_id_seq", "follow_up"),
                ] {
                    sqlx::query(&format!(
                        "SELECT setval('{seq}', (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
                    ))
                    .execute(&mut *tx)
                    .await?;
                }
                audit_tables!(&mut *tx, actor, city_id, params, &tables);
                tx.commit().await?;
                (manifest, tables)
            }
        };
        let elapsed = started.elapsed();
        // The home page's figures and the indicator cube follow the facts just loaded.
        self.refresh_group_figures(actor).await?;
        self.rebuild_cube(actor).await?;
        Ok(LoadSummary {
            manifest,
            tables,
            elapsed,
        })
    }
}

/// Writes the population of `layout` and `params` as PostgreSQL's `COPY … (FORMAT csv)` reads
/// it ([`pg_copy`]), with registry ids from `refs`: `{dir}/{table}.csv`, without a header, for
/// every database table. These are the files an administrator would feed to `COPY`, and the
/// load benchmark's baseline. Generates on the calling thread.
pub fn write_copy_files(
    layout: &Layout,
    params: &Params,
    refs: Refs,
    dir: &Path,
) -> Result<Manifest, SinkError> {
    let io = |path: &Path, source| SinkError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut files = Vec::new();
    for t in loaded_tables() {
        let path = dir.join(format!("{}.csv", t.db));
        let file = File::create(&path).map_err(|e| io(&path, e))?;
        files.push((path, file));
    }
    // Batches are megabytes each: written as they come, without a further buffer.
    let out: Output<Vec<u8>> = Box::new(move |_, batch| {
        for part in batch.parts {
            if let Some((path, file)) = files.get_mut(part.table) {
                file.write_all(&part.data).map_err(|e| io(path, e))?;
            }
        }
        Ok(())
    });
    let mut factory = DbFactory::<PgCsv>::new(refs, out, BATCH_VALUES);
    medgrid_sim::generate(layout, params, &mut factory, |_| {})
}

/// Batches queued between the generator and the writer, beside the one each holds: enough to
/// absorb the difference in pace of the two, little memory.
const CHANNEL_BATCHES: usize = 2;
/// Values per batch. Large enough that the per-table statements of a batch cost little beside
/// its rows; small enough that a batch is a few megabytes and the pipeline stays short.
const BATCH_VALUES: usize = 1 << 18;
/// A batch is cut early only if the generator stops writing residents, so memory stays bounded
/// whatever order it writes tables in.
const HARD_LIMIT_FACTOR: usize = 8;
/// SQLite's page cache during a load (256 MiB), for one connection and only while it loads.
const SQLITE_LOAD_CACHE_KIB: i64 = 256 * 1024;
/// SQLite's limit on bound parameters per statement (SQLITE_MAX_VARIABLE_NUMBER since 3.32).
const SQLITE_MAX_VARIABLES: usize = 32_766;

/// The tables that go into the databases, in load order.
fn loaded_tables() -> Vec<&'static Schema> {
    schema::loaded().collect()
}

/// Refuses to load over existing rows, whose ids the generated ones would collide with.
macro_rules! ensure_empty {
    ($ex:expr, $loaded:expr) => {
        for t in $loaded.iter() {
            // Table names come from the static schema, never from input.
            let any = sqlx::query(&format!("SELECT id FROM {} LIMIT 1", t.db))
                .fetch_optional($ex)
                .await?;
            if any.is_some() {
                return Err(LoadError::NotEmpty(t.db));
            }
        }
    };
}
use ensure_empty;

/// One audit entry per table loaded, in the load's transaction.
macro_rules! audit_tables {
    ($ex:expr, $actor:expr, $city_id:expr, $params:expr, $tables:expr) => {
        for (table, rows) in $tables.iter() {
            audit_insert!(
                $ex,
                &AuditEntry {
                    actor: $actor,
                    action: "population.load",
                    resource_type: "Table",
                    resource_id: Some((*table).to_owned()),
                    target: Some(OrgPath::city($city_id)),
                    outcome: Outcome::Ok,
                    detail: Some(format!(
                        "{rows} rows (synthetic city: seed {}, {} residents, as of {}, {} months)",
                        $params.seed, $params.residents, $params.as_of, $params.months
                    )),
                }
            )?;
        }
    };
}
use audit_tables;

/// Drops the secondary indexes of the population tables, returning the statements that
/// re-create them. Built once from sorted rows at the end, an index costs a fraction of what
/// inserting each row into it does; in the load's transaction, a failure restores them.
/// Unique indexes stay, so they are checked row by row.
async fn sqlite_drop_indexes(
    conn: &mut sqlx::SqliteConnection,
    loaded: &[&'static Schema],
) -> Result<Vec<String>, StoreError> {
    // Table names come from the static schema, never from input.
    let tables: Vec<String> = loaded.iter().map(|t| format!("'{}'", t.db)).collect();
    let indexes: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
         AND sql NOT LIKE 'CREATE UNIQUE%' AND tbl_name IN ({}) ORDER BY name",
        tables.join(", ")
    ))
    .fetch_all(&mut *conn)
    .await?;
    let mut rebuild = Vec::new();
    for (name, sql) in indexes {
        sqlx::query(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))
            .execute(&mut *conn)
            .await?;
        rebuild.push(sql);
    }
    Ok(rebuild)
}

/// As [`sqlite_drop_indexes`], and the foreign keys too: checking a whole table against its
/// references when the key is re-added is one join, checking each row as it comes is a query
/// per row and key. The tables are locked for the load's duration, and so are the registry
/// tables they reference (unit, med_group, practitioner), whose key triggers are dropped and
/// re-created with the keys: a load is for a database being set up, not for one in service.
async fn pg_drop_indexes_and_keys(
    conn: &mut sqlx::PgConnection,
    loaded: &[&'static Schema],
) -> Result<Vec<String>, StoreError> {
    let tables: Vec<String> = loaded.iter().map(|t| t.db.to_owned()).collect();
    // Index builds sort in memory rather than in temporary files.
    sqlx::query("SET LOCAL maintenance_work_mem = '256MB'")
        .execute(&mut *conn)
        .await?;
    let keys: Vec<(String, String)> = sqlx::query_as(
        "SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname), \
         format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname, pg_get_constraintdef(oid)) \
         FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY($1::regclass[]) ORDER BY conrelid, conname",
    )
    .bind(&tables)
    .fetch_all(&mut *conn)
    .await?;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT format('DROP INDEX %s', indexrelid::regclass), pg_get_indexdef(indexrelid) \
         FROM pg_index WHERE indrelid = ANY($1::regclass[]) AND NOT indisunique AND NOT indisprimary \
         ORDER BY indexrelid",
    )
    .bind(&tables)
    .fetch_all(&mut *conn)
    .await?;
    // Waiting for the registry's locks behind a long reader would queue every other reader
    // behind the load: better to fail, with nothing changed.
    sqlx::query("SET LOCAL lock_timeout = '10s'")
        .execute(&mut *conn)
        .await?;
    let mut rebuild = Vec::new();
    for (drop, create) in indexes.into_iter().chain(keys) {
        sqlx::query(&drop).execute(&mut *conn).await?;
        rebuild.push(create);
    }
    sqlx::query("SET LOCAL lock_timeout TO DEFAULT")
        .execute(&mut *conn)
        .await?;
    Ok(rebuild)
}

/// Starts `generate` on a blocking thread, sending batches spelled by `B` to `sender`.
fn spawn_generator<B: RowBuf>(
    layout: &Layout,
    params: &Params,
    refs: Refs,
    sender: mpsc::Sender<Batch<B::Rows>>,
    batch_values: usize,
) -> tokio::task::JoinHandle<Result<Manifest, SinkError>> {
    let layout = layout.clone();
    let params = params.clone();
    tokio::task::spawn_blocking(move || {
        let out: Output<B::Rows> = Box::new(move |table, batch| {
            sender
                .blocking_send(batch)
                .map_err(|_| SinkError::Rejected {
                    table: table.db.to_owned(),
                    message: "the database stopped taking rows".into(),
                })
        });
        let mut factory = DbFactory::<B>::new(refs, out, batch_values);
        medgrid_sim::generate(&layout, &params, &mut factory, |_| {})
    })
}

/// Joins the generator and the writer: the database's error first (the generator only stops
/// because of it), then the generator's, then a check that every row generated was written.
async fn settle(
    generator: tokio::task::JoinHandle<Result<Manifest, SinkError>>,
    written: Result<Vec<u64>, StoreError>,
    loaded: &[&'static Schema],
) -> Result<(Manifest, Vec<(&'static str, u64)>), LoadError> {
    let generated = generator.await;
    let written = written?;
    let manifest = match generated {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return Err(LoadError::Rejected(e)),
        Err(e) => return Err(LoadError::Internal(format!("the generator stopped: {e}"))),
    };
    let mut tables = Vec::new();
    for (t, rows) in loaded.iter().zip(&written) {
        match manifest.rows(t.file) {
            Some(n) if n == *rows => tables.push((t.db, n)),
            Some(n) => {
                return Err(LoadError::Internal(format!(
                    "{}: {n} rows generated, {rows} written",
                    t.db
                )))
            }
            None if *rows == 0 => {}
            None => {
                return Err(LoadError::Internal(format!(
                    "{}: {rows} rows written, none generated",
                    t.db
                )))
            }
        }
    }
    Ok((manifest, tables))
}

/// Writes SQLite batches until the generator closes the channel; rows written per table.
async fn receive_sqlite(
    conn: &mut sqlx::SqliteConnection,
    loaded: &[&'static Schema],
    mut receiver: mpsc::Receiver<Batch<SqliteBatch>>,
    params: &Params,
    progress: &mut (impl FnMut(Progress) + Send),
) -> Result<Vec<u64>, StoreError> {
    let mut statements: HashMap<(usize, usize), String> = HashMap::new();
    let mut written = vec![0u64; loaded.len()];
    let mut residents = 0;
    while let Some(batch) = receiver.recv().await {
        for part in batch.parts {
            let Some(table) = loaded.get(part.table) else {
                continue;
            };
            let mut n = 0;
            for (args, rows) in part.data {
                let sql = statements
                    .entry((part.table, rows))
                    .or_insert_with(|| sqlite_insert(table, rows));
                n += sqlx::query_with(sql, args)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
            }
            check_written(table, part.rows, n)?;
            written[part.table] += n;
            if table.db == schema::RESIDENTS.db {
                residents += n;
            }
        }
        progress(Progress {
            done: residents,
            total: params.residents,
        });
    }
    Ok(written)
}

/// Writes PostgreSQL batches until the generator closes the channel; rows written per table.
async fn receive_pg(
    conn: &mut sqlx::PgConnection,
    loaded: &[&'static Schema],
    mut receiver: mpsc::Receiver<Batch<Vec<u8>>>,
    params: &Params,
    progress: &mut (impl FnMut(Progress) + Send),
) -> Result<Vec<u64>, StoreError> {
    let copy: Vec<String> = loaded.iter().map(|t| pg_copy(t)).collect();
    let mut written = vec![0u64; loaded.len()];
    let mut residents = 0;
    while let Some(batch) = receiver.recv().await {
        for part in batch.parts {
            let (Some(table), Some(sql)) = (loaded.get(part.table), copy.get(part.table)) else {
                continue;
            };
            let mut sink = conn.copy_in_raw(sql).await?;
            if let Err(e) = sink.send(part.data).await {
                // The connection is still in COPY mode: leave it, then report the cause.
                let _ = sink.abort("medgrid bulk load failed").await;
                return Err(e.into());
            }
            let n = sink.finish().await?;
            check_written(table, part.rows, n)?;
            written[part.table] += n;
            if table.db == schema::RESIDENTS.db {
                residents += n;
            }
        }
        progress(Progress {
            done: residents,
            total: params.residents,
        });
    }
    Ok(written)
}

fn check_written(table: &Schema, sent: u64, written: u64) -> Result<(), StoreError> {
    if sent == written {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!(
            "{}: {sent} rows sent, the database wrote {written}",
            table.db
        )))
    }
}

/// `COPY` of a whole table in CSV, the spelling [`PgCsv`] writes.
pub fn pg_copy(table: &Schema) -> String {
    format!(
        "COPY {} ({}) FROM STDIN (FORMAT csv)",
        table.db,
        column_list(table)
    )
}

/// As many rows per statement as SQLite's parameter limit allows.
fn sqlite_rows_per_statement(table: &Schema) -> usize {
    (SQLITE_MAX_VARIABLES / table.columns.len().max(1)).max(1)
}

/// `INSERT` of `rows` rows into a table.
fn sqlite_insert(table: &Schema, rows: usize) -> String {
    let one = format!("({})", vec!["?"; table.columns.len()].join(","));
    let mut sql = format!("INSERT INTO {} ({}) VALUES ", table.db, column_list(table));
    sql.reserve((one.len() + 1) * rows);
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&one);
    }
    sql
}

fn column_list(table: &Schema) -> String {
    table
        .columns
        .iter()
        .map(|c| c.db)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a factory's batches go; `table` is the one whose row closed the batch.
type Output<R> = Box<dyn FnMut(&'static Schema, Batch<R>) -> Result<(), SinkError>>;

/// One batch: the rows of every table buffered since the last, in load order.
struct Batch<R> {
    parts: Vec<Part<R>>,
}

struct Part<R> {
    /// Position in `loaded_tables()`.
    table: usize,
    rows: u64,
    data: R,
}

/// Rows of one table as one database spells them, while they are buffered.
trait RowBuf: Send + 'static {
    /// What is sent to the writer.
    type Rows: Send + 'static;
    fn new(table: &'static Schema) -> Self;
    fn int(&mut self, v: i64);
    fn text(&mut self, v: &str);
    fn date(&mut self, v: NaiveDate);
    fn timestamp(&mut self, v: NaiveDateTime);
    fn flag(&mut self, v: bool);
    fn null(&mut self);
    /// Closes a row; an error means the row could not be spelled.
    fn end_row(&mut self) -> Result<(), String>;
    fn take(&mut self) -> Self::Rows;
}

/// One open table of the factory.
struct TableBuf<B> {
    buf: B,
    rows: u64,
}

/// What every sink of one load shares: the buffers of all tables, so that a batch carries
/// all of them in load order.
struct Shared<B: RowBuf> {
    tables: Vec<Option<TableBuf<B>>>,
    loaded: Vec<&'static Schema>,
    out: Output<B::Rows>,
    /// Values buffered across tables.
    values: usize,
    batch_values: usize,
}

impl<B: RowBuf> Shared<B> {
    fn flush(&mut self, table: &'static Schema) -> Result<(), SinkError> {
        let mut parts = Vec::new();
        for (i, t) in self.tables.iter_mut().enumerate() {
            if let Some(t) = t {
                if t.rows > 0 {
                    parts.push(Part {
                        table: i,
                        rows: t.rows,
                        data: t.buf.take(),
                    });
                    t.rows = 0;
                }
            }
        }
        self.values = 0;
        if parts.is_empty() {
            return Ok(());
        }
        (self.out)(table, Batch { parts })
    }
}

/// The databases' [`SinkFactory`]: sinks that map codes and generated ids to registry ids,
/// spell values as `B` does, and send batches to the writer.
struct DbFactory<B: RowBuf> {
    shared: Rc<RefCell<Shared<B>>>,
    refs: Rc<Refs>,
}

impl<B: RowBuf> DbFactory<B> {
    fn new(refs: Refs, out: Output<B::Rows>, batch_values: usize) -> Self {
        let loaded = loaded_tables();
        DbFactory {
            shared: Rc::new(RefCell::new(Shared {
                tables: loaded.iter().map(|_| None).collect(),
                loaded,
                out,
                values: 0,
                batch_values,
            })),
            refs: Rc::new(refs),
        }
    }
}

impl<B: RowBuf> SinkFactory for DbFactory<B> {
    type Sink = DbSink<B>;

    fn open(&mut self, table: &'static Schema) -> Result<DbSink<B>, SinkError> {
        let slot = if table.db.is_empty() {
            // The registry's tables (units, staff) and test data are not loaded here.
            None
        } else {
            let mut shared = self.shared.borrow_mut();
            let i = shared
                .loaded
                .iter()
                .position(|t| t.db == table.db)
                .ok_or_else(|| SinkError::Rejected {
                    table: table.db.to_owned(),
                    message: "no such table in the database".into(),
                })?;
            if let Some(t) = shared.tables.get_mut(i) {
                t.get_or_insert_with(|| TableBuf {
                    buf: B::new(table),
                    rows: 0,
                });
            }
            Some(i)
        };
        Ok(DbSink {
            shared: self.shared.clone(),
            refs: self.refs.clone(),
            table,
            slot,
            cuts_batches: table.db == schema::RESIDENTS.db,
            rows: 0,
            refused: None,
        })
    }
}

/// A sink of one table.
struct DbSink<B: RowBuf> {
    shared: Rc<RefCell<Shared<B>>>,
    refs: Rc<Refs>,
    table: &'static Schema,
    /// Position in the loaded tables; `None` for tables the databases do not take.
    slot: Option<usize>,
    /// A new resident row means the previous resident's rows are all written: a safe place
    /// to cut a batch.
    cuts_batches: bool,
    rows: u64,
    /// Why the current row cannot be loaded, reported by `end_row`.
    refused: Option<String>,
}

impl<B: RowBuf> DbSink<B> {
    fn with(&mut self, f: impl FnOnce(&mut B)) {
        if let Some(i) = self.slot {
            if let Some(Some(t)) = self.shared.borrow_mut().tables.get_mut(i) {
                f(&mut t.buf);
            }
        }
    }

    fn reference(&mut self, id: Option<Id>, what: impl FnOnce() -> String) {
        match id {
            Some(id) => self.with(|b| b.int(id)),
            None => {
                if self.slot.is_some() && self.refused.is_none() {
                    self.refused = Some(what());
                }
                self.with(|b| b.null());
            }
        }
    }
}

impl<B: RowBuf> Sink for DbSink<B> {
    fn int(&mut self, v: i64) {
        self.with(|b| b.int(v));
    }

    fn text(&mut self, v: &str) {
        self.with(|b| b.text(v));
    }

    fn date(&mut self, v: NaiveDate) {
        self.with(|b| b.date(v));
    }

    fn timestamp(&mut self, v: NaiveDateTime) {
        self.with(|b| b.timestamp(v));
    }

    fn fixed(&mut self, v: i64) {
        // The scale is part of the column (`total_fen`): the database keeps the integer.
        self.with(|b| b.int(v));
    }

    fn flag(&mut self, v: bool) {
        self.with(|b| b.flag(v));
    }

    fn unit(&mut self, code: &str) {
        let id = self.refs.unit(code);
        self.reference(id, || format!("unknown unit code '{code}'"));
    }

    fn group(&mut self, code: &str) {
        let id = self.refs.group(code);
        self.reference(id, || format!("unknown group code '{code}'"));
    }

    fn practitioner(&mut self, id: u64) {
        let registered = self.refs.practitioner(id);
        self.reference(registered, || {
            format!("practitioner {id} is not in the registry")
        });
    }

    fn null(&mut self) {
        self.with(|b| b.null());
    }

    fn end_row(&mut self) -> Result<(), SinkError> {
        let refused = |message| SinkError::Rejected {
            table: self.table.db.to_owned(),
            message,
        };
        if let Some(message) = self.refused.take() {
            return Err(refused(message));
        }
        self.rows += 1;
        let Some(i) = self.slot else {
            return Ok(());
        };
        let mut shared = self.shared.borrow_mut();
        if let Some(Some(t)) = shared.tables.get_mut(i) {
            t.buf.end_row().map_err(refused)?;
            t.rows += 1;
        }
        shared.values += self.table.columns.len();
        let full = shared.values >= shared.batch_values;
        if (full && self.cuts_batches) || shared.values >= shared.batch_values * HARD_LIMIT_FACTOR {
            shared.flush(self.table)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<u64, SinkError> {
        self.shared.borrow_mut().flush(self.table)?;
        Ok(self.rows)
    }
}

/// PostgreSQL: CSV as `COPY … (FORMAT csv)` reads it. A missing value is an empty field, an
/// empty text is `""`; flags are 1/0, which BOOLEAN accepts.
struct PgCsv {
    buf: Vec<u8>,
    column: usize,
}

impl PgCsv {
    fn sep(&mut self) {
        if self.column > 0 {
            self.buf.push(b',');
        }
        self.column += 1;
    }
}

impl RowBuf for PgCsv {
    type Rows = Vec<u8>;

    fn new(_: &'static Schema) -> Self {
        PgCsv {
            buf: Vec::new(),
            column: 0,
        }
    }

    fn int(&mut self, v: i64) {
        self.sep();
        push_i64(&mut self.buf, v);
    }

    fn text(&mut self, v: &str) {
        self.sep();
        // Backslash too: `\.` alone on a line would end the data.
        if v.is_empty()
            || v.bytes()
                .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r' | b'\\'))
        {
            self.buf.push(b'"');
            for b in v.bytes() {
                if b == b'"' {
                    self.buf.push(b'"');
                }
                self.buf.push(b);
            }
            self.buf.push(b'"');
        } else {
            self.buf.extend_from_slice(v.as_bytes());
        }
    }

    fn date(&mut self, v: NaiveDate) {
        self.sep();
        push_date(&mut self.buf, v);
    }

    fn timestamp(&mut self, v: NaiveDateTime) {
        self.sep();
        push_timestamp(&mut self.buf, v);
    }

    fn flag(&mut self, v: bool) {
        self.sep();
        self.buf.push(if v { b'1' } else { b'0' });
    }

    fn null(&mut self) {
        self.sep();
    }

    fn end_row(&mut self) -> Result<(), String> {
        self.buf.push(b'\n');
        self.column = 0;
        Ok(())
    }

    fn take(&mut self) -> Vec<u8> {
        // The next batch of this table is likely the size of this one.
        let capacity = self.buf.len();
        std::mem::replace(&mut self.buf, Vec::with_capacity(capacity))
    }
}

/// SQLite: rows kept as values until a batch is cut, then cut into multi-row `INSERT`s of
/// a few fixed sizes (one cached statement each): as many rows as the parameter limit allows,
/// and powers of four below that for the rest. Compiling a statement for each odd-sized rest
/// cost as much as inserting the rows.
struct SqliteRows {
    columns: usize,
    per_statement: usize,
    values: Vec<Value>,
    rows: usize,
}

enum Value {
    Null,
    Int(i64),
    Text(String),
}

/// A table's rows of one batch for SQLite: parameters and row count of each statement.
type SqliteBatch = Vec<(SqliteArguments<'static>, usize)>;

impl RowBuf for SqliteRows {
    type Rows = SqliteBatch;

    fn new(table: &'static Schema) -> Self {
        SqliteRows {
            columns: table.columns.len(),
            per_statement: sqlite_rows_per_statement(table),
            values: Vec::new(),
            rows: 0,
        }
    }

    fn int(&mut self, v: i64) {
        self.values.push(Value::Int(v));
    }

    fn text(&mut self, v: &str) {
        self.values.push(Value::Text(v.to_owned()));
    }

    fn date(&mut self, v: NaiveDate) {
        let mut b = Vec::with_capacity(10);
        push_date(&mut b, v);
        self.values
            .push(Value::Text(String::from_utf8_lossy(&b).into_owned()));
    }

    fn timestamp(&mut self, v: NaiveDateTime) {
        let mut b = Vec::with_capacity(19);
        push_timestamp(&mut b, v);
        self.values
            .push(Value::Text(String::from_utf8_lossy(&b).into_owned()));
    }

    fn flag(&mut self, v: bool) {
        self.values.push(Value::Int(i64::from(v)));
    }

    fn null(&mut self) {
        self.values.push(Value::Null);
    }

    fn end_row(&mut self) -> Result<(), String> {
        self.rows += 1;
        if self.values.len() != self.rows * self.columns {
            return Err(format!(
                "a row has {} values for {} columns",
                self.values.len() + self.columns - self.rows * self.columns,
                self.columns
            ));
        }
        Ok(())
    }

    fn take(&mut self) -> SqliteBatch {
        let mut statements = Vec::new();
        let mut values = std::mem::take(&mut self.values).into_iter();
        let mut left = std::mem::take(&mut self.rows);
        while left > 0 {
            let rows = statement_rows(left, self.per_statement);
            let mut args = SqliteArguments::default();
            args.reserve(rows * self.columns, 0);
            for v in values.by_ref().take(rows * self.columns) {
                // Integers and strings always encode; a failure would show as a wrong
                // parameter count, which SQLite refuses.
                let _ = match v {
                    Value::Null => args.add(None::<i64>),
                    Value::Int(i) => args.add(i),
                    Value::Text(t) => args.add(t),
                };
            }
            statements.push((args, rows));
            left -= rows;
        }
        statements
    }
}

/// Rows of the next statement for `left` rows: a full statement, else the largest power of
/// four that fits, so a table needs at most seven statement sizes.
fn statement_rows(left: usize, per_statement: usize) -> usize {
    if left >= per_statement {
        return per_statement;
    }
    let mut rows = 1;
    while rows * 4 <= left {
        rows *= 4;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_is_spelled_for_copy() {
        let mut c = PgCsv::new(&schema::RESIDENTS);
        c.int(-12);
        c.text("");
        c.null();
        c.text("a,\"b\"\\");
        c.flag(true);
        c.date(NaiveDate::from_ymd_opt(2025, 3, 9).unwrap());
        c.timestamp(
            NaiveDate::from_ymd_opt(1999, 12, 31)
                .unwrap()
                .and_hms_opt(23, 5, 9)
                .unwrap(),
        );
        c.end_row().unwrap();
        c.text("plain");
        c.end_row().unwrap();
        assert_eq!(
            String::from_utf8(c.take()).unwrap(),
            "-12,\"\",,\"a,\"\"b\"\"\\\",1,2025-03-09,1999-12-31 23:05:09\nplain\n"
        );
        let mut b = Vec::new();
        medgrid_sim::csv_out::push_date(&mut b, NaiveDate::from_ymd_opt(12345, 1, 2).unwrap());
        assert_eq!(b, b"+12345-01-02");
    }

    #[test]
    fn sqlite_statements_fill_the_parameter_limit() {
        let t = &schema::RESIDENTS;
        let per = sqlite_rows_per_statement(t);
        assert!(per * t.columns.len() <= SQLITE_MAX_VARIABLES);
        assert!((per + 1) * t.columns.len() > SQLITE_MAX_VARIABLES);
        let mut rows = SqliteRows::new(t);
        for _ in 0..per + 21 {
            for _ in t.columns {
                rows.int(1);
            }
            rows.end_row().unwrap();
        }
        let sizes: Vec<(usize, usize)> = rows
            .take()
            .iter()
            .map(|(args, n)| (args.len(), *n))
            .collect();
        let c = t.columns.len();
        assert_eq!(
            sizes,
            [(per * c, per), (16 * c, 16), (4 * c, 4), (c, 1)],
            "21 = 16 + 4 + 1"
        );
        assert!(rows.take().is_empty());
        // A short row is refused rather than shifting every value after it.
        let mut short = SqliteRows::new(t);
        short.int(1);
        assert!(short.end_row().is_err());
    }
}
