//! Indicators at city scale: every indicator for every unit and month, recomputed from the
//! synthetic city's Parquet files, against a scan of the same columns and against DuckDB; and
//! the cockpit's latency with the cube that recomputation makes.
//!
//! ```text
//! cargo bench -p medgrid --bench indicators -- [--residents 3750000] [--seed 1] [--months 24]
//!     [--threads 2] [--requests 200] [--no-duckdb]
//! ```
//!
//! 3,750,000 residents over 24 months is about 50 million encounters. The city is generated
//! once (`medgrid generate --format parquet`) into `target/bench-city/` and reused.
//!
//! - (c) scan: every column the indicators read (departments, practitioners, residents,
//!   contracts, follow-ups, encounters, referrals, prescriptions), decoded row group by row group on `--threads` threads and
//!   folded into a checksum: the floor any computation over these files pays.
//! - (a) recomputation: the same reading, the facts fed to `medgrid_analytics::Builder` (the
//!   code the server's cube uses), then every indicator of the library evaluated for every
//!   unit and month. A fact whose unit or encounter cannot be found stops the benchmark:
//!   nothing is skipped. Target: within 3× of (c).
//! - (b) DuckDB: `indicators_duckdb.py`, the same definitions in SQL over the same files, with
//!   DuckDB from PyPI (pinned, `DUCKDB`) in its own virtual environment under
//!   `target/bench-venv`, on the same threads, best of the same rounds; timed inside Python
//!   from the first statement to the indicator checksums. Its
//!   cube is compared with (a)'s cell by cell and the benchmark stops if they differ.
//!   Target: (a) at least 5× faster.
//! - (d) cockpit: the cube of (a) kept in a fresh SQLite database holding the layout and its
//!   staff (the cockpit reads the cube and the registry, never the raw facts), the server on
//!   a local port, and `--requests` page loads of `/cockpit` across city, groups and units and
//!   the period kinds, by a group manager and the city's regulator. Target: p95 ≤ 100 ms.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure should stop it loudly

#[path = "common/mod.rs"]
mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use parquet::basic::Type as Physical;
use parquet::column::reader::get_typed_column_reader;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DataType, Int32Type, Int64Type};
use parquet::file::reader::{FileReader, RowGroupReader, SerializedFileReader};
use rustc_hash::FxHashMap;

use medgrid_analytics::fact::*;
use medgrid_analytics::{evaluate, Builder, Cube, Rollup, Span, Tally};
use medgrid_domain::access::{OrgPath, Role, Scope, ScopeKind};
use medgrid_domain::indicator::{Formula, Library, Month, Period, PeriodKind};
use medgrid_domain::org::layout::parse_layout;
use medgrid_domain::org::Title;
use medgrid_store::{Actor, DbKind, NewUser, UnitFilter};
use medgrid_web::{auth, router, AppState, WebConfig};

struct Args {
    residents: u64,
    seed: u64,
    months: u32,
    threads: usize,
    requests: usize,
    duckdb: bool,
    rounds: u32,
}

fn args() -> Args {
    Args {
        residents: common::flag("--residents").unwrap_or(3_750_000),
        seed: common::flag("--seed").unwrap_or(1),
        months: common::flag("--months").unwrap_or(24),
        threads: common::flag("--threads").unwrap_or(2),
        requests: common::flag("--requests").unwrap_or(200),
        duckdb: !std::env::args().any(|a| a == "--no-duckdb"),
        rounds: common::flag("--rounds").unwrap_or(2),
    }
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
}

/// The city's files, generated on first use.
fn city(a: &Args) -> PathBuf {
    let dir = target_dir().join(format!(
        "bench-city/r{}-s{}-m{}",
        a.residents, a.seed, a.months
    ));
    if !dir.join("manifest.csv").exists() {
        println!("generating the city into {} …", dir.display());
        let status = Command::new(env!("CARGO_BIN_EXE_medgrid"))
            .args(["generate", "--format", "parquet", "--out"])
            .arg(&dir)
            .args(["--residents", &a.residents.to_string()])
            .args(["--seed", &a.seed.to_string()])
            .args(["--months", &a.months.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "medgrid generate failed");
    }
    dir
}

// ---- Reading columns -------------------------------------------------------------------

/// A column of one row group, one value per row; `present` says which rows are not null
/// (empty for required columns).
struct Column<T> {
    values: Vec<T>,
    present: Vec<bool>,
}

impl<T: Clone> Column<T> {
    fn get(&self, row: usize) -> Option<&T> {
        (self.present.is_empty() || self.present[row]).then(|| &self.values[row])
    }
}

fn column<D: DataType>(rg: &dyn RowGroupReader, name: &str) -> Column<D::T>
where
    D::T: Default + Clone,
{
    let meta = rg.metadata();
    let idx = (0..meta.num_columns())
        .find(|i| meta.column(*i).column_descr().name() == name)
        .unwrap_or_else(|| panic!("no column {name}"));
    let rows = meta.num_rows() as usize;
    let nullable = meta.column(idx).column_descr().max_def_level() > 0;
    let mut reader = get_typed_column_reader::<D>(rg.get_column_reader(idx).unwrap());
    let mut values = Vec::with_capacity(rows);
    let mut defs = Vec::with_capacity(if nullable { rows } else { 0 });
    let mut read = 0;
    while read < rows {
        let (records, _, _) = reader
            .read_records(
                rows - read,
                nullable.then_some(&mut defs),
                None,
                &mut values,
            )
            .unwrap();
        assert!(records > 0, "{name}: fewer rows than the metadata says");
        read += records;
    }
    if !nullable {
        return Column {
            values,
            present: Vec::new(),
        };
    }
    let present: Vec<bool> = defs.iter().map(|d| *d > 0).collect();
    let mut given = values.into_iter();
    let values = present
        .iter()
        .map(|p| {
            if *p {
                given.next().unwrap()
            } else {
                D::T::default()
            }
        })
        .collect();
    Column { values, present }
}

fn int64(rg: &dyn RowGroupReader, name: &str) -> Column<i64> {
    column::<Int64Type>(rg, name)
}

fn int32(rg: &dyn RowGroupReader, name: &str) -> Column<i32> {
    column::<Int32Type>(rg, name)
}

fn flag(rg: &dyn RowGroupReader, name: &str) -> Column<bool> {
    column::<BoolType>(rg, name)
}

fn text(rg: &dyn RowGroupReader, name: &str) -> Column<ByteArray> {
    column::<ByteArrayType>(rg, name)
}

fn utf8(b: &ByteArray) -> &str {
    std::str::from_utf8(b.data()).unwrap_or("")
}

/// Days since 1970-01-01 (Parquet `DATE`). Dates from 1900 to 2100 come from a table made
/// once: the conversion runs for every encounter and prescription line.
fn date(days: i32) -> NaiveDate {
    const FIRST: i32 = -25_567; // 1900-01-01
    const LAST: i32 = 47_481; // 2099-12-31
    static TABLE: std::sync::OnceLock<Vec<NaiveDate>> = std::sync::OnceLock::new();
    let convert = |d: i32| NaiveDate::from_num_days_from_ce_opt(d + 719_163).unwrap();
    if !(FIRST..=LAST).contains(&days) {
        return convert(days);
    }
    TABLE.get_or_init(|| (FIRST..=LAST).map(convert).collect())[(days - FIRST) as usize]
}

/// Microseconds since 1970-01-01 (Parquet `TIMESTAMP(MICROS)`): the day.
fn day_of_micros(micros: i64) -> i32 {
    micros.div_euclid(86_400_000_000) as i32
}

/// Runs `f` over every row group of `file` on `threads` threads (row group i on thread
/// i mod threads), each thread with its own state from `init`; the states, in thread order.
fn each_group<S: Send>(
    dir: &Path,
    file: &str,
    threads: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, &dyn RowGroupReader) + Sync,
) -> Vec<S> {
    let path = dir.join(format!("{file}.parquet"));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (path, init, f) = (&path, &init, &f);
                s.spawn(move || {
                    let reader = SerializedFileReader::new(File::open(path).unwrap()).unwrap();
                    let mut state = init();
                    for g in (t..reader.num_row_groups()).step_by(threads) {
                        let rg = reader.get_row_group(g).unwrap();
                        f(&mut state, rg.as_ref());
                    }
                    state
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn rows(dir: &Path, file: &str) -> u64 {
    let reader =
        SerializedFileReader::new(File::open(dir.join(format!("{file}.parquet"))).unwrap())
            .unwrap();
    reader.metadata().file_metadata().num_rows() as u64
}

// ---- The registry ----------------------------------------------------------------------

/// The registry's units as the cube knows them: code → (id, kind).
struct Units {
    by_code: FxHashMap<Vec<u8>, i64>,
    kinds: HashMap<i64, UnitKind>,
    codes: HashMap<i64, String>,
    /// Facts read but not counted for want of a unit or an encounter: none are expected, and
    /// a recomputation that skipped some would look faster than it is.
    unmatched: AtomicU64,
}

impl Units {
    /// The registry id of a unit code; a code the registry lacks is counted as unmatched.
    fn id(&self, code: &ByteArray) -> Option<i64> {
        let id = self.by_code.get(code.data()).copied();
        if id.is_none() {
            self.unmatched.fetch_add(1, Ordering::Relaxed);
        }
        id
    }
}

// ---- (c) the scan ----------------------------------------------------------------------

/// Decodes every column (a) reads and folds each value into a checksum.
fn scan(dir: &Path, threads: usize) -> u64 {
    fn fold(acc: &mut u64, v: u64) {
        *acc = acc.rotate_left(5) ^ v;
    }
    fn texts(acc: &mut u64, c: &Column<ByteArray>) {
        for (i, v) in c.values.iter().enumerate() {
            fold(acc, c.get(i).map_or(0, |_| v.len() as u64));
        }
    }
    fn ints(acc: &mut u64, c: &Column<i64>) {
        for v in &c.values {
            fold(acc, *v as u64);
        }
    }
    fn days(acc: &mut u64, c: &Column<i32>) {
        for v in &c.values {
            fold(acc, *v as u64);
        }
    }
    fn flags(acc: &mut u64, c: &Column<bool>) {
        for v in &c.values {
            fold(acc, u64::from(*v));
        }
    }
    let tables: [(&str, &[(&str, Physical)]); 8] = [
        (
            "departments",
            &[
                ("unit_code", Physical::BYTE_ARRAY),
                ("department_code", Physical::BYTE_ARRAY),
                ("name", Physical::BYTE_ARRAY),
            ],
        ),
        (
            "practitioners",
            &[
                ("practitioner_id", Physical::INT64),
                ("title", Physical::BYTE_ARRAY),
                ("unit_code", Physical::BYTE_ARRAY),
                ("department_code", Physical::BYTE_ARRAY),
            ],
        ),
        (
            "residents",
            &[
                ("resident_id", Physical::INT64),
                ("unit_code", Physical::BYTE_ARRAY),
                ("birth_date", Physical::INT32),
                ("hypertension", Physical::BOOLEAN),
                ("diabetes", Physical::BOOLEAN),
                ("severe_mental_illness", Physical::BOOLEAN),
                ("maternal_risk", Physical::BYTE_ARRAY),
            ],
        ),
        (
            "contracts",
            &[
                ("resident_id", Physical::INT64),
                ("signed_on", Physical::INT32),
                ("ends_on", Physical::INT32),
            ],
        ),
        (
            "follow_ups",
            &[
                ("follow_up_id", Physical::INT64),
                ("resident_id", Physical::INT64),
                ("unit_code", Physical::BYTE_ARRAY),
                ("program", Physical::BYTE_ARRAY),
                ("due_on", Physical::INT32),
                ("done_on", Physical::INT32),
            ],
        ),
        (
            "encounters",
            &[
                ("encounter_id", Physical::INT64),
                ("resident_id", Physical::INT64),
                ("unit_code", Physical::BYTE_ARRAY),
                ("department_code", Physical::BYTE_ARRAY),
                ("kind", Physical::BYTE_ARRAY),
                ("started_at", Physical::INT64),
                ("ended_at", Physical::INT64),
                ("diagnosis", Physical::BYTE_ARRAY),
                ("in_region", Physical::BOOLEAN),
            ],
        ),
        (
            "referrals",
            &[
                ("referral_id", Physical::INT64),
                ("from_unit_code", Physical::BYTE_ARRAY),
                ("direction", Physical::BYTE_ARRAY),
                ("diagnosis", Physical::BYTE_ARRAY),
                ("requested_at", Physical::INT64),
            ],
        ),
        (
            "prescriptions",
            &[
                ("prescription_id", Physical::INT64),
                ("encounter_id", Physical::INT64),
                ("unit_code", Physical::BYTE_ARRAY),
                ("essential", Physical::BOOLEAN),
            ],
        ),
    ];
    let mut total = 0u64;
    for (file, columns) in tables {
        for acc in each_group(
            dir,
            file,
            threads,
            || 0u64,
            |acc, rg| {
                for (name, physical) in columns {
                    match physical {
                        Physical::INT64 => ints(acc, &int64(rg, name)),
                        Physical::INT32 => days(acc, &int32(rg, name)),
                        Physical::BOOLEAN => flags(acc, &flag(rg, name)),
                        _ => texts(acc, &text(rg, name)),
                    }
                }
            },
        ) {
            total ^= acc;
        }
    }
    total
}

// ---- (a) the recomputation -------------------------------------------------------------

fn physicians(dir: &Path, units: &Units) -> Vec<PhysicianFact> {
    // Departments whose name says traditional Chinese medicine, by (unit, code).
    let mut tcm = HashSet::new();
    for part in each_group(dir, "departments", 1, Vec::new, |out, rg| {
        let (u, c, n) = (
            text(rg, "unit_code"),
            text(rg, "department_code"),
            text(rg, "name"),
        );
        for i in 0..u.values.len() {
            if utf8(&n.values[i]).contains("中医") {
                out.push((u.values[i].data().to_vec(), c.values[i].data().to_vec()));
            }
        }
    }) {
        tcm.extend(part);
    }
    let mut out = Vec::new();
    for part in each_group(dir, "practitioners", 1, Vec::new, |out, rg| {
        let (id, title, unit, dept) = (
            int64(rg, "practitioner_id"),
            text(rg, "title"),
            text(rg, "unit_code"),
            text(rg, "department_code"),
        );
        for i in 0..id.values.len() {
            let physician = Title::parse(utf8(&title.values[i])).is_ok_and(Title::is_physician);
            let Some(unit_id) = units.id(&unit.values[i]) else {
                continue;
            };
            if physician {
                let d = dept.get(i).map(|d| d.data().to_vec()).unwrap_or_default();
                out.push(PhysicianFact {
                    practitioner: id.values[i],
                    unit: unit_id,
                    tcm: tcm.contains(&(unit.values[i].data().to_vec(), d)),
                });
            }
        }
    }) {
        out.extend(part);
    }
    out
}

/// Every indicator for every unit and month of the cube; (values, Σ numerators,
/// Σ denominators).
fn evaluate_all(cube: &Cube, span: Span, library: &Library, units: &Units) -> (u64, i64, i64) {
    let (mut n, mut num, mut den) = (0, 0, 0);
    for unit in units.kinds.keys() {
        let rollup =
            Rollup::new(cube, Some(&HashSet::from([*unit])), None).within(span.first, span.last);
        for month in span.months() {
            for indicator in &library.indicators {
                let e = evaluate(indicator, Period::Month(month), &rollup).unwrap();
                n += 1;
                num += e.value.numerator;
                den += e.value.denominator;
            }
        }
    }
    (n, num, den)
}

fn recompute(dir: &Path, threads: usize, span: Span, units: &Units) -> Cube {
    let clock = Instant::now();
    let mut phases = Vec::new();
    let mut b = Builder::new(span, units.kinds.clone(), None);
    // Residents, contracts and follow-ups shape each resident's state: decoded in parallel,
    // fed in order.
    let residents = each_group(dir, "residents", threads, Vec::new, |out, rg| {
        let (id, unit, born, htn, dm, smi, maternal) = (
            int64(rg, "resident_id"),
            text(rg, "unit_code"),
            int32(rg, "birth_date"),
            flag(rg, "hypertension"),
            flag(rg, "diabetes"),
            flag(rg, "severe_mental_illness"),
            text(rg, "maternal_risk"),
        );
        for i in 0..id.values.len() {
            let Some(home) = units.id(&unit.values[i]) else {
                continue;
            };
            out.push(ResidentFact {
                id: id.values[i],
                home_unit: home,
                birth_date: date(born.values[i]),
                hypertension: htn.values[i],
                diabetes: dm.values[i],
                other_key_condition: smi.values[i] || maternal.get(i).is_some(),
            });
        }
    });
    for part in residents {
        for r in part {
            b.resident(r);
        }
    }
    for part in each_group(dir, "contracts", threads, Vec::new, |out, rg| {
        let (resident, signed, ends) = (
            int64(rg, "resident_id"),
            int32(rg, "signed_on"),
            int32(rg, "ends_on"),
        );
        for i in 0..resident.values.len() {
            out.push(ContractFact {
                resident: resident.values[i],
                signed_on: date(signed.values[i]),
                ends_on: date(ends.values[i]),
            });
        }
    }) {
        for c in part {
            b.contract(c);
        }
    }
    for part in each_group(dir, "follow_ups", threads, Vec::new, |out, rg| {
        let (id, resident, unit, program, due, done) = (
            int64(rg, "follow_up_id"),
            int64(rg, "resident_id"),
            text(rg, "unit_code"),
            text(rg, "program"),
            int32(rg, "due_on"),
            int32(rg, "done_on"),
        );
        for i in 0..id.values.len() {
            let Some(unit) = units.id(&unit.values[i]) else {
                continue;
            };
            out.push(FollowUpFact {
                id: id.values[i],
                resident: resident.values[i],
                managing_unit: unit,
                program: Program::parse(utf8(&program.values[i])),
                due_on: date(due.values[i]),
                done: done.get(i).is_some(),
            });
        }
    }) {
        for f in part {
            b.follow_up(f);
        }
    }
    for p in physicians(dir, units) {
        b.physician(p);
    }
    phases.push(("residents, contracts, follow-ups", clock.elapsed()));
    // Encounters, referrals and prescriptions: counted on every thread into its own tally.
    // Prescriptions take the day of their encounter, kept by encounter id on the way.
    let encounters = rows(dir, "encounters") as usize;
    let day_of: Vec<AtomicI32> = (0..=encounters).map(|_| AtomicI32::new(i32::MIN)).collect();
    let builder = b;
    let b = &builder;
    let mut tallies: Vec<Tally> = each_group(
        dir,
        "encounters",
        threads,
        || b.tally(),
        |t, rg| {
            let (id, resident, unit, dept, kind, started, ended, diagnosis, in_region) = (
                int64(rg, "encounter_id"),
                int64(rg, "resident_id"),
                text(rg, "unit_code"),
                text(rg, "department_code"),
                text(rg, "kind"),
                int64(rg, "started_at"),
                int64(rg, "ended_at"),
                text(rg, "diagnosis"),
                flag(rg, "in_region"),
            );
            for i in 0..id.values.len() {
                let started_day = day_of_micros(started.values[i]);
                if let Some(slot) = usize::try_from(id.values[i])
                    .ok()
                    .and_then(|e| day_of.get(e))
                {
                    slot.store(started_day, Ordering::Relaxed);
                }
                b.count_encounter(
                    t,
                    EncounterFact {
                        id: id.values[i],
                        resident: resident.values[i],
                        place_unit: unit.get(i).and_then(|u| units.id(u)),
                        department: dept.get(i).map(utf8),
                        kind: if kind.values[i].data() == b"inpatient" {
                            EncounterKind::Inpatient
                        } else {
                            EncounterKind::Visit
                        },
                        in_region: in_region.values[i],
                        diagnosis: utf8(&diagnosis.values[i]),
                        started_on: date(started_day),
                        ended_on: date(day_of_micros(ended.values[i])),
                    },
                );
            }
        },
    );
    phases.push(("encounters", clock.elapsed()));
    let mut more = each_group(
        dir,
        "referrals",
        threads,
        || b.tally(),
        |t, rg| {
            let (id, from, direction, diagnosis, at) = (
                int64(rg, "referral_id"),
                text(rg, "from_unit_code"),
                text(rg, "direction"),
                text(rg, "diagnosis"),
                int64(rg, "requested_at"),
            );
            for i in 0..id.values.len() {
                let Some(from) = units.id(&from.values[i]) else {
                    continue;
                };
                b.count_referral(
                    t,
                    ReferralFact {
                        id: id.values[i],
                        from_unit: from,
                        up: direction.values[i].data() == b"up",
                        diagnosis: utf8(&diagnosis.values[i]),
                        requested_on: date(day_of_micros(at.values[i])),
                    },
                );
            }
        },
    );
    tallies.append(&mut more);
    let mut more = each_group(
        dir,
        "prescriptions",
        threads,
        || b.tally(),
        |t, rg| {
            let (id, encounter, unit, essential) = (
                int64(rg, "prescription_id"),
                int64(rg, "encounter_id"),
                text(rg, "unit_code"),
                flag(rg, "essential"),
            );
            for i in 0..id.values.len() {
                let (Some(unit), Some(day)) = (
                    unit.get(i).and_then(|u| units.id(u)),
                    usize::try_from(encounter.values[i])
                        .ok()
                        .and_then(|e| day_of.get(e))
                        .map(|d| d.load(Ordering::Relaxed))
                        .filter(|d| *d != i32::MIN)
                        .or_else(|| {
                            units.unmatched.fetch_add(1, Ordering::Relaxed);
                            None
                        }),
                ) else {
                    continue;
                };
                b.count_prescription(
                    t,
                    PrescriptionFact {
                        id: id.values[i],
                        unit,
                        day: date(day),
                        essential: essential.values[i],
                    },
                );
            }
        },
    );
    tallies.append(&mut more);
    phases.push(("referrals, prescriptions", clock.elapsed()));
    // The residents' stock measures are counted by the builder, on the same threads.
    let cube = builder.finish_with(tallies, threads).0;
    phases.push(("stock measures and cube", clock.elapsed()));
    let mut last = Duration::ZERO;
    let steps: Vec<String> = phases
        .into_iter()
        .map(|(what, at)| {
            let step = format!("{what} {:.2} s", (at - last).as_secs_f64());
            last = at;
            step
        })
        .collect();
    println!("  recomputation: {}", steps.join(", "));
    let unmatched = units.unmatched.swap(0, Ordering::Relaxed);
    assert_eq!(unmatched, 0, "facts read but not counted");
    cube
}

// ---- (b) DuckDB ------------------------------------------------------------------------

/// The DuckDB measured: pinned, so that runs compare with each other.
const DUCKDB: &str = "duckdb==2.0.0";

/// DuckDB in its own virtual environment, installed on first use.
fn duckdb_python() -> PathBuf {
    let venv = target_dir().join("bench-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap()
            .success();
        assert!(ok, "python3 -m venv failed");
    }
    let have = Command::new(&python)
        .args([
            "-c",
            &format!(
                "import duckdb, sys; sys.exit(duckdb.__version__ != '{}')",
                &DUCKDB["duckdb==".len()..]
            ),
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    if !have {
        let ok = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", DUCKDB])
            .status()
            .unwrap()
            .success();
        assert!(ok, "pip install duckdb failed");
    }
    python
}

struct DuckDb {
    seconds: f64,
    cube_seconds: f64,
    values: u64,
    numerators: i64,
    denominators: i64,
    cube: BTreeMap<(String, String, i32, String), i64>,
}

fn duckdb(
    dir: &Path,
    span: Span,
    units: &Units,
    library: &Library,
    threads: usize,
    rounds: u32,
) -> DuckDb {
    let python = duckdb_python();
    let code = |kind: UnitKind| -> Vec<&String> {
        let mut c: Vec<&String> = units
            .kinds
            .iter()
            .filter(|(_, k)| **k == kind)
            .map(|(id, _)| &units.codes[id])
            .collect();
        c.sort();
        c
    };
    let titles: Vec<&str> = Title::ALL
        .iter()
        .filter(|t| t.is_physician())
        .map(|t| t.as_str())
        .collect();
    let indicators: Vec<serde_json::Value> = library
        .indicators
        .iter()
        .map(|i| match &i.formula {
            Formula::Ratio {
                numerator,
                denominator,
                factor,
            } => serde_json::json!({"id": i.id, "numerator": numerator,
                "denominator": denominator, "factor": factor, "growth": false}),
            Formula::Growth { measure } => serde_json::json!({"id": i.id, "numerator": measure,
                "denominator": measure, "factor": 100, "growth": true}),
        })
        .collect();
    let params = serde_json::json!({
        "first": span.first.index(),
        "last": span.last.index(),
        "lead": code(UnitKind::Lead),
        "primary": code(UnitKind::Primary),
        "physician_titles": titles,
        "indicators": indicators,
        "threads": threads,
    });
    let scratch = target_dir().join("bench-city/duckdb");
    std::fs::create_dir_all(&scratch).unwrap();
    let params_path = scratch.join("params.json");
    std::fs::write(&params_path, params.to_string()).unwrap();
    let out = scratch.join("cube.csv");
    // As many runs as (a) and (c) get; the best.
    let mut best: Option<serde_json::Value> = None;
    for _ in 0..rounds.max(1) {
        let run = Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/indicators_duckdb.py"))
            .arg(dir)
            .arg(&out)
            .arg(&params_path)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "DuckDB failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        println!("  DuckDB run: {:.2} s", report["seconds"].as_f64().unwrap());
        if best
            .as_ref()
            .is_none_or(|b| report["seconds"].as_f64() < b["seconds"].as_f64())
        {
            best = Some(report);
        }
    }
    let report = best.unwrap();
    let mut cube = BTreeMap::new();
    for line in std::fs::read_to_string(&out).unwrap().lines() {
        let f: Vec<&str> = line.split(',').collect();
        let key = (
            f[0].to_owned(),
            f[1].trim_matches('"').to_owned(),
            f[2].parse().unwrap(),
            f[3].to_owned(),
        );
        cube.insert(key, f[4].parse().unwrap());
    }
    DuckDb {
        seconds: report["seconds"].as_f64().unwrap(),
        cube_seconds: report["cube_seconds"].as_f64().unwrap(),
        values: report["indicator_values"].as_u64().unwrap(),
        numerators: report["numerators"].as_i64().unwrap(),
        denominators: report["denominators"].as_i64().unwrap(),
        cube,
    }
}

/// Our cube keyed as DuckDB writes it.
fn keyed(cube: &Cube, units: &Units) -> BTreeMap<(String, String, i32, String), i64> {
    cube.cells
        .iter()
        .map(|(c, v)| {
            (
                (
                    units.codes[&c.unit].clone(),
                    c.department.clone(),
                    c.month.index(),
                    c.measure.name().to_owned(),
                ),
                *v,
            )
        })
        .collect()
}

// ---- (d) the cockpit -------------------------------------------------------------------

/// A browser session for a new user: the cookie to send.
async fn session(
    store: &medgrid_store::Store,
    name: &str,
    role: Role,
    kind: ScopeKind,
    path: OrgPath,
) -> String {
    let actor = Actor::system("bench");
    let user = store
        .create_user(
            &actor,
            &NewUser {
                username: name.into(),
                display_name: name.into(),
                role,
                scope: Scope { kind, path },
                password_hash: None,
            },
        )
        .await
        .unwrap();
    let secret = auth::new_secret();
    store
        .create_session(
            user.id,
            &auth::digest(&secret),
            &auth::new_secret(),
            chrono::Utc::now() + chrono::Duration::hours(8),
        )
        .await
        .unwrap();
    format!("{}={secret}", auth::SESSION_COOKIE)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let a = args();
    let dir = city(&a);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let layout = parse_layout(common::JINHUA).unwrap();
    let db = runtime.block_on(common::registered(DbKind::Sqlite, &layout, a.seed));
    let registry = runtime
        .block_on(db.store.units(&UnitFilter {
            city_id: Some(1),
            limit: 100_000,
            ..UnitFilter::default()
        }))
        .unwrap();
    let units = Units {
        by_code: registry
            .iter()
            .map(|u| (u.code.as_bytes().to_vec(), u.id))
            .collect(),
        kinds: registry
            .iter()
            .map(|u| (u.id, UnitKind::of_role(u.role.as_str())))
            .collect(),
        codes: registry.iter().map(|u| (u.id, u.code.clone())).collect(),
        unmatched: AtomicU64::new(0),
    };
    let manifest = std::fs::read_to_string(dir.join("manifest.csv")).unwrap();
    let as_of = manifest
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').nth(4))
        .and_then(Month::of_day)
        .unwrap();
    let span = Span {
        first: as_of,
        last: as_of.plus(a.months as i32 - 1),
    };
    let library = Library::shipped().unwrap();
    let encounters = rows(&dir, "encounters");
    println!(
        "city: {} residents, {} encounters, {} prescription lines, months {}…{}, {} units, {} thread(s)",
        rows(&dir, "residents"),
        encounters,
        rows(&dir, "prescriptions"),
        span.first,
        span.last,
        units.kinds.len(),
        a.threads
    );

    // (c) and (a), twice each, alternating; the best of each.
    let (mut scan_best, mut full_best) = (Duration::MAX, Duration::MAX);
    let mut result = None;
    for round in 1..=a.rounds {
        let t = Instant::now();
        let checksum = scan(&dir, a.threads);
        let scan_time = t.elapsed();
        let t = Instant::now();
        let cube = recompute(&dir, a.threads, span, &units);
        let evaluated = evaluate_all(&cube, span, &library, &units);
        let full_time = t.elapsed();
        println!(
            "round {round}: scan {:.2} s (checksum {checksum:x}), recomputation {:.2} s ({} cells, {} indicator values)",
            scan_time.as_secs_f64(),
            full_time.as_secs_f64(),
            cube.len(),
            evaluated.0
        );
        scan_best = scan_best.min(scan_time);
        full_best = full_best.min(full_time);
        result = Some((cube, evaluated));
    }
    let (cube, (values, numerators, denominators)) = result.unwrap();
    println!(
        "(c) scan of the same columns:        {:>8.2} s  ({:.1} M encounters/s)",
        scan_best.as_secs_f64(),
        encounters as f64 / scan_best.as_secs_f64() / 1e6
    );
    println!(
        "(a) full recomputation:              {:>8.2} s  = {:.2}× the scan (target ≤ 3×)",
        full_best.as_secs_f64(),
        full_best.as_secs_f64() / scan_best.as_secs_f64()
    );

    if a.duckdb {
        let d = duckdb(&dir, span, &units, &library, a.threads, a.rounds);
        let ours = keyed(&cube, &units);
        let differing = ours
            .iter()
            .filter(|(k, v)| d.cube.get(*k) != Some(*v))
            .count()
            + d.cube.keys().filter(|k| !ours.contains_key(*k)).count();
        for (k, v) in ours
            .iter()
            .filter(|(k, v)| d.cube.get(*k) != Some(*v))
            .take(5)
        {
            println!("  differs: {k:?} medgrid {v}, DuckDB {:?}", d.cube.get(k));
        }
        for k in d.cube.keys().filter(|k| !ours.contains_key(*k)).take(5) {
            println!("  only in DuckDB: {k:?} {}", d.cube[k]);
        }
        println!(
            "(b) DuckDB SQL over the same files:  {:>8.2} s  (cube {:.2} s); medgrid is {:.1}× faster (target ≥ 5×)",
            d.seconds,
            d.cube_seconds,
            d.seconds / full_best.as_secs_f64()
        );
        println!(
            "    cubes: {} cells each, {differing} differing; indicator values {} vs {}, Σ numerators {} vs {}, Σ denominators {} vs {}",
            ours.len(),
            values,
            d.values,
            numerators,
            d.numerators,
            denominators,
            d.denominators
        );
        assert_eq!(differing, 0, "DuckDB's cube differs from medgrid's");
        assert_eq!(
            (values, numerators, denominators),
            (d.values, d.numerators, d.denominators),
            "the indicator values differ"
        );
    }

    // (d) the cockpit on that cube.
    let store = db.store.clone();
    let (cookies, paths) = runtime.block_on(async {
        store
            .keep_cube(&Actor::system("bench"), &cube, span)
            .await
            .unwrap();
        let group = registry.iter().find_map(|u| u.group_id).unwrap();
        let manager = session(
            &store,
            "gm",
            Role::GroupManager,
            ScopeKind::Group,
            OrgPath {
                city: 1,
                grid: None,
                group: Some(group),
                unit: None,
            },
        )
        .await;
        let regulator = session(
            &store,
            "regulator",
            Role::CityRegulator,
            ScopeKind::City,
            OrgPath::city(1),
        )
        .await;
        let kinds: Vec<&str> = PeriodKind::ALL.iter().map(|k| k.as_str()).collect();
        let mut paths = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            paths.push((1, format!("/cockpit?org=city-1&period_kind={kind}")));
            paths.push((0, format!("/cockpit?org=group-{group}&period_kind={kind}")));
            for u in registry
                .iter()
                .filter(|u| u.group_id == Some(group))
                .skip(i)
                .step_by(3)
            {
                paths.push((0, format!("/cockpit?org=unit-{}&period_kind={kind}", u.id)));
            }
        }
        (vec![manager, regulator], paths)
    });
    let state = AppState::new(db.store.clone(), WebConfig::default()).unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, router(state)).await });
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let get = |(who, path): &(usize, String)| {
        let t = Instant::now();
        let resp = agent
            .get(&format!("http://{addr}{path}"))
            .set("Cookie", &cookies[*who])
            .call()
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let body = resp.into_string().unwrap();
        let took = t.elapsed();
        assert!(body.contains("驾驶舱"), "{path}: not the cockpit");
        took
    };
    for p in paths.iter().take(10) {
        get(p);
    }
    let mut timed: Vec<(Duration, &String)> = paths
        .iter()
        .cycle()
        .take(a.requests)
        .map(|p| (get(p), &p.1))
        .collect();
    timed.sort();
    for (took, path) in timed.iter().rev().take(3) {
        println!("    slowest: {:.1} ms {path}", ms(*took));
    }
    let times: Vec<Duration> = timed.into_iter().map(|(t, _)| t).collect();
    println!(
        "(d) cockpit page, {} loads over {} pages: p50 {:.1} ms, p95 {:.1} ms (target ≤ 100 ms), max {:.1} ms",
        times.len(),
        paths.len(),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.95)),
        ms(times[times.len() - 1])
    );
}
