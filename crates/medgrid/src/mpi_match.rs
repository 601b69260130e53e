//! `medgrid mpi match`: the patient index engine on any CSV file, Chinese or not. One input
//! is deduplicated, two are linked; the columns to compare are named with their kinds on the
//! command line and the model is estimated from the data themselves.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};

use medgrid_mpi::{Column, Dataset, FieldKind, Options, Params};

#[derive(clap::Args)]
pub struct MatchArgs {
    /// CSV file with a header; give it twice to link two files.
    #[arg(long = "input", required = true)]
    pub inputs: Vec<PathBuf>,
    /// The column that identifies a record.
    #[arg(long)]
    pub id_column: String,
    /// COL=KIND, KIND one of name, surname, given_name, birth_date, sex, phone, address,
    /// postcode, citizen_id, other_id, text.
    #[arg(long = "field", required = true)]
    pub fields: Vec<String>,
    #[arg(long)]
    pub out: PathBuf,
    /// Probability at or above which a pair is written (default: the engine's link
    /// threshold).
    #[arg(long)]
    pub threshold: Option<f64>,
    /// A model saved by --params-out, used instead of estimating one.
    #[arg(long)]
    pub params: Option<PathBuf>,
    /// Saves the estimated model as JSON.
    #[arg(long)]
    pub params_out: Option<PathBuf>,
}

fn parse_fields(raw: &[String]) -> anyhow::Result<Vec<Column>> {
    if raw.is_empty() {
        bail!("--field: give at least one COL=KIND to compare");
    }
    let mut columns: Vec<Column> = Vec::new();
    for f in raw {
        let Some((name, kind)) = f.split_once('=') else {
            bail!("--field {f}: expected COL=KIND");
        };
        let Some(kind) = FieldKind::parse(kind) else {
            let known: Vec<&str> = FieldKind::ALL.iter().map(|k| k.as_str()).collect();
            bail!(
                "--field {f}: unknown kind {kind:?}; one of {}",
                known.join(", ")
            );
        };
        if columns.iter().any(|c| c.name == name) {
            bail!("--field {f}: column {name} is named twice");
        }
        columns.push(Column {
            name: name.to_owned(),
            kind,
        });
    }
    Ok(columns)
}

/// Reads one file into `data`: the id column and the compared columns, found by header.
fn read_file(path: &Path, id_column: &str, data: &mut Dataset) -> anyhow::Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(path)
        .with_context(|| format!("--input {}", path.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("--input {}: header", path.display()))?
        .clone();
    let find = |name: &str| -> anyhow::Result<usize> {
        headers
            .iter()
            .position(|h| h.trim().trim_start_matches('\u{feff}') == name)
            .with_context(|| format!("--input {}: no column {name:?}", path.display()))
    };
    let id = find(id_column)?;
    let positions = data
        .columns
        .iter()
        .map(|c| find(&c.name))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut record = csv::StringRecord::new();
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut line = 1u64;
    while reader
        .read_record(&mut record)
        .with_context(|| format!("--input {}: line {}", path.display(), line + 1))?
    {
        line += 1;
        let Some(rid) = record.get(id).filter(|v| !v.trim().is_empty()) else {
            bail!("--input {}: line {line}: empty {id_column}", path.display());
        };
        let values = positions
            .iter()
            .map(|&p| record.get(p).unwrap_or("").to_owned())
            .collect();
        rows.push((rid.trim().to_owned(), values));
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    data.extend(&rows, threads);
    Ok(())
}

pub fn run(args: &MatchArgs) -> anyhow::Result<()> {
    if args.inputs.is_empty() || args.inputs.len() > 2 {
        bail!("--input: give one file to deduplicate or two to link");
    }
    if let Some(t) = args.threshold {
        if !(0.0..=1.0).contains(&t) {
            bail!("--threshold {t}: a probability between 0 and 1");
        }
    }
    let columns = parse_fields(&args.fields)?;
    let params = match &args.params {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("--params {}", p.display()))?;
            Some(
                Params::from_json(&text)
                    .map_err(|e| anyhow::anyhow!("--params {}: {e}", p.display()))?,
            )
        }
        None => None,
    };
    let started = Instant::now();
    let mut data = Dataset::new(columns).map_err(|e| anyhow::anyhow!("--field: {e}"))?;
    for (k, path) in args.inputs.iter().enumerate() {
        if k == 1 {
            data.start_second_file();
        }
        read_file(path, &args.id_column, &mut data)?;
    }
    eprintln!(
        "read {} records in {:.1} s; matching…",
        data.len(),
        started.elapsed().as_secs_f64()
    );
    let outcome = medgrid_mpi::run(
        &data,
        &Options {
            threshold: args.threshold,
            params,
            ..Options::default()
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("--out {}", args.out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    writeln!(w, "left_id,right_id,probability")?;
    let mut field = String::new();
    for l in &outcome.links {
        field.clear();
        for (k, id) in [&data.ids[l.left as usize], &data.ids[l.right as usize]]
            .into_iter()
            .enumerate()
        {
            if k > 0 {
                field.push(',');
            }
            csv_field(&mut field, id);
        }
        writeln!(w, "{field},{:.6}", l.probability)?;
    }
    w.flush()?;
    if let Some(p) = &args.params_out {
        std::fs::write(p, serde_json::to_string_pretty(&outcome.params)?)
            .with_context(|| format!("--params-out {}", p.display()))?;
    }
    let phases: Vec<String> = outcome
        .timings
        .iter()
        .map(|(what, s)| format!("{what} {s:.2} s"))
        .collect();
    eprintln!("{}", phases.join(", "));
    eprintln!(
        "{} candidate pairs, {} at or above {:.3}; {:.1} s; model {}",
        outcome.candidates,
        outcome.links.len(),
        args.threshold.unwrap_or(outcome.params.link_threshold),
        started.elapsed().as_secs_f64(),
        outcome.params.version
    );
    Ok(())
}

/// Quotes a CSV field only when it has to.
fn csv_field(out: &mut String, v: &str) {
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(v);
    }
}
