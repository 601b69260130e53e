//! Writing the synthetic city into a folder, one file per table (docs/synthetic-city.md
//! describes every column), with a `manifest.csv` of row counts for readers to check against.

use std::io::Write;
use std::path::Path;

use medgrid_domain::org::layout::Layout;

use crate::city::{generate, Manifest, Params, Progress};
use crate::csv_out::CsvFactory;
use crate::table::SinkError;

/// File formats of `medgrid generate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }
}

/// Generates the city into `dir` in `format`, then writes `manifest.csv`.
pub fn write_files(
    layout: &Layout,
    params: &Params,
    dir: &Path,
    format: Format,
    progress: impl FnMut(Progress),
) -> Result<Manifest, SinkError> {
    let manifest = match format {
        Format::Csv => generate(layout, params, &mut CsvFactory::new(dir)?, progress)?,
        Format::Parquet => generate(
            layout,
            params,
            &mut crate::parquet_out::ParquetFactory::new(dir)?,
            progress,
        )?,
    };
    write_manifest(&manifest, dir, format)?;
    Ok(manifest)
}

fn write_manifest(m: &Manifest, dir: &Path, format: Format) -> Result<(), SinkError> {
    let path = dir.join("manifest.csv");
    let io = |source| SinkError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut text = String::from("file,rows,seed,residents,as_of,months\n");
    for (table, rows) in &m.tables {
        text.push_str(&format!(
            "{table}.{},{rows},{},{},{},{}\n",
            format.extension(),
            m.params.seed,
            m.params.residents,
            m.params.as_of,
            m.params.months
        ));
    }
    let mut f = std::fs::File::create(&path).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    Ok(())
}
