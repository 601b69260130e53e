//! Writing the synthetic city as files, one table per file (docs/synthetic-city.md describes
//! every column), streamed so that memory does not grow with the city.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use chrono::NaiveDate;

use medgrid_domain::org::layout::Layout;

use crate::population::Population;

/// What was written, for the caller to report and for readers of the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub seed: u64,
    pub as_of: NaiveDate,
    pub files: Vec<(String, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Csv { path: String, source: csv::Error },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn csv_err(path: &Path) -> impl Fn(csv::Error) -> OutputError + '_ {
    move |source| OutputError::Csv {
        path: path.display().to_string(),
        source,
    }
}

fn writer(path: &Path) -> Result<csv::Writer<BufWriter<File>>, OutputError> {
    let file = File::create(path).map_err(io(path))?;
    Ok(csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(BufWriter::with_capacity(1 << 20, file)))
}

/// Writes `units.csv` and `residents.csv` (and `manifest.csv`) into `dir`, calling
/// `progress(done, total)` now and then.
pub fn write_csv(
    layout: &Layout,
    seed: u64,
    residents: u64,
    as_of: NaiveDate,
    dir: &Path,
    mut progress: impl FnMut(u64, u64),
) -> Result<Manifest, OutputError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut files = Vec::new();

    let path = dir.join("units.csv");
    let mut w = writer(&path)?;
    let e = csv_err(&path);
    w.write_record([
        "unit_code",
        "name",
        "role",
        "level",
        "group_code",
        "grid_code",
        "under_code",
        "division_code",
    ])
    .map_err(&e)?;
    for u in &layout.units {
        w.write_record([
            u.code.as_str(),
            u.name.as_str(),
            u.role.as_str(),
            u.level.as_str(),
            u.group_code.as_deref().unwrap_or(""),
            u.grid_code.as_deref().unwrap_or(""),
            u.under_code.as_deref().unwrap_or(""),
            u.division_code.as_ref().map_or("", |d| d.as_str()),
        ])
        .map_err(&e)?;
    }
    w.flush().map_err(io(&path))?;
    files.push(("units.csv".to_owned(), layout.units.len() as u64));

    let path = dir.join("residents.csv");
    let mut w = writer(&path)?;
    let e = csv_err(&path);
    w.write_record([
        "resident_id",
        "household_id",
        "citizen_id",
        "name",
        "sex",
        "birth_date",
        "phone",
        "address",
        "unit_code",
        "group_code",
        "grid_code",
        "insurance",
        "hypertension",
        "diabetes",
        "severe_mental_illness",
        "pregnancy_risk",
    ])
    .map_err(&e)?;
    let mut written = 0u64;
    let flag = |b: bool| if b { "1" } else { "0" };
    for r in Population::new(layout, seed, residents, as_of) {
        let birth = r.birth_date.format("%Y-%m-%d").to_string();
        w.write_record([
            r.id.to_string().as_str(),
            r.household_id.to_string().as_str(),
            r.citizen_id.as_str(),
            r.name.as_str(),
            r.sex.as_str(),
            birth.as_str(),
            r.phone.as_str(),
            r.address.as_str(),
            r.unit_code.as_str(),
            r.group_code.as_str(),
            r.grid_code.as_str(),
            r.insurance.as_str(),
            flag(r.hypertension),
            flag(r.diabetes),
            flag(r.severe_mental_illness),
            r.pregnancy_risk.unwrap_or(""),
        ])
        .map_err(&e)?;
        written += 1;
        if written.is_multiple_of(100_000) {
            progress(written, residents);
        }
    }
    w.flush().map_err(io(&path))?;
    if !written.is_multiple_of(100_000) {
        progress(written, residents);
    }
    files.push(("residents.csv".to_owned(), written));

    let path = dir.join("manifest.csv");
    let mut f = BufWriter::new(File::create(&path).map_err(io(&path))?);
    writeln!(f, "file,rows,seed,as_of").map_err(io(&path))?;
    for (name, rows) in &files {
        writeln!(f, "{name},{rows},{seed},{as_of}").map_err(io(&path))?;
    }
    f.flush().map_err(io(&path))?;
    Ok(Manifest { seed, as_of, files })
}

#[cfg(test)]
mod tests {
    use super::*;
    use medgrid_domain::org::layout::parse_layout;

    const JINHUA: &[u8] = include_bytes!("../../../data/layouts/jinhua.csv");

    fn generate(tag: &str, seed: u64) -> (std::path::PathBuf, Manifest) {
        let dir = std::env::temp_dir().join(format!("medgrid-sim-{tag}-{}", std::process::id()));
        let layout = parse_layout(JINHUA).unwrap();
        let m = write_csv(
            &layout,
            seed,
            3_000,
            NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
            &dir,
            |_, _| {},
        )
        .unwrap();
        (dir, m)
    }

    #[test]
    fn files_are_identical_for_the_same_seed() {
        let (a, ma) = generate("a", 9);
        let (b, mb) = generate("b", 9);
        assert_eq!(ma, mb);
        for f in ["units.csv", "residents.csv", "manifest.csv"] {
            let x = std::fs::read(a.join(f)).unwrap();
            assert!(!x.is_empty());
            assert_eq!(x, std::fs::read(b.join(f)).unwrap(), "{f} differs");
        }
        let (c, _) = generate("c", 10);
        assert_ne!(
            std::fs::read(a.join("residents.csv")).unwrap(),
            std::fs::read(c.join("residents.csv")).unwrap()
        );
        for d in [a, b, c] {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    #[test]
    fn every_resident_row_refers_to_a_unit_row() {
        let (dir, m) = generate("ref", 4);
        assert_eq!(
            m.files,
            vec![("units.csv".into(), 50), ("residents.csv".into(), 3_000)]
        );
        let mut units = csv::Reader::from_path(dir.join("units.csv")).unwrap();
        let codes: std::collections::HashSet<String> =
            units.records().map(|r| r.unwrap()[0].to_owned()).collect();
        let mut rows = csv::Reader::from_path(dir.join("residents.csv")).unwrap();
        let mut n = 0;
        for r in rows.records() {
            let r = r.unwrap();
            assert!(codes.contains(&r[8]), "unit {} exists", &r[8]);
            n += 1;
        }
        assert_eq!(n, 3_000);
        let _ = std::fs::remove_dir_all(dir);
    }
}
