//! Generation rate of the synthetic city, against writing the same rows of constant data.
//!
//! `cargo bench -p medgrid-sim --bench generate -- [RESIDENTS]` (default 200,000). Prints
//! encounters generated per second (on one core: the generator is one thread) and the ratio
//! of generation time to the baseline: writing, for every table, the same number of rows of
//! one constant line of that table into a file of the same folder.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::time::Instant;

use chrono::NaiveDate;

use medgrid_domain::org::layout::parse_layout;
use medgrid_sim::{write_files, Format, Params};

const JINHUA: &[u8] = include_bytes!("../../../data/layouts/jinhua.csv");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let residents: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let layout = parse_layout(JINHUA).map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("medgrid-bench-gen-{}", std::process::id()));
    let params = Params::new(
        1,
        residents,
        NaiveDate::from_ymd_opt(2025, 1, 1).ok_or("date")?,
    );

    // Generation alone: every value formatted as CSV into memory, nothing written.
    let started = Instant::now();
    let m = medgrid_sim::generate(&layout, &params, &mut Discard, |_| {})?;
    let in_memory = started.elapsed().as_secs_f64();
    let encounters_only = m.rows("encounters").unwrap_or(0);
    if std::env::args().any(|a| a == "--no-disk") {
        println!(
            "generation, no disk {in_memory:.2} s  {:.0} encounters/s",
            encounters_only as f64 / in_memory
        );
        return Ok(());
    }

    let started = Instant::now();
    let manifest = write_files(&layout, &params, &dir, Format::Csv, |_| {})?;
    let generated = started.elapsed().as_secs_f64();

    // Baseline: the same number of rows of each table, each a copy of its first data line.
    let started = Instant::now();
    let mut bytes = 0u64;
    for (table, rows) in &manifest.tables {
        let path = dir.join(format!("{table}.csv"));
        let mut lines = BufReader::new(std::fs::File::open(&path)?).lines();
        let header = lines.next().transpose()?.unwrap_or_default();
        let line = lines.next().transpose()?.unwrap_or_default();
        let mut w = BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(dir.join(format!("{table}.const")))?,
        );
        writeln!(w, "{header}")?;
        for _ in 0..*rows {
            w.write_all(line.as_bytes())?;
            w.write_all(b"\n")?;
            bytes += line.len() as u64 + 1;
        }
        w.flush()?;
    }
    let baseline = started.elapsed().as_secs_f64();

    let encounters = manifest.rows("encounters").unwrap_or(0);
    let rows: u64 = manifest.tables.iter().map(|(_, n)| n).sum();
    println!("synthetic city, {residents} residents, 12 months");
    println!(
        "  rows written        {rows} ({:.0} MB)",
        bytes as f64 / 1e6
    );
    println!("  encounters          {encounters}");
    println!(
        "  generation          {generated:.2} s  {:.0} encounters/s  {:.0} rows/s",
        encounters as f64 / generated,
        rows as f64 / generated
    );
    println!(
        "  generation, no disk {in_memory:.2} s  {:.0} encounters/s",
        encounters_only as f64 / in_memory
    );
    println!(
        "  baseline (constant) {baseline:.2} s  {:.0} rows/s",
        rows as f64 / baseline
    );
    println!("  ratio generation / baseline: {:.2}", generated / baseline);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// CSV formatting into a buffer that is dropped: the generator's own cost.
struct Discard;

impl medgrid_sim::SinkFactory for Discard {
    type Sink = medgrid_sim::csv_out::CsvSink<std::io::Sink>;

    fn open(
        &mut self,
        schema: &'static medgrid_sim::Schema,
    ) -> Result<Self::Sink, medgrid_sim::SinkError> {
        medgrid_sim::csv_out::CsvSink::new(std::io::sink(), schema, schema.file.to_owned())
    }
}
