//! One description per generated table, and the `Sink` every writer implements (CSV, Parquet,
//! the databases' bulk paths), so that a row is produced once and each format only decides
//! how to spell its values.

use chrono::{NaiveDate, NaiveDateTime};

/// How a column's values are typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A 64-bit integer (ids, counts, measurements in whole units).
    Int,
    Text,
    /// A calendar day: `YYYY-MM-DD` in CSV, DATE in Parquet and PostgreSQL, text in SQLite.
    Date,
    /// A moment to the second, local time of the city: `YYYY-MM-DD HH:MM:SS`.
    Timestamp,
    /// An exact decimal held as an integer scaled by 10^scale: money in fen is `Fixed(2)`.
    /// Files spell it as a decimal ("123.45" yuan); the databases keep the scaled integer, so
    /// sums are exact on both.
    Fixed(u8),
    /// 1/0 in CSV, BOOLEAN in Parquet and PostgreSQL, 1/0 in SQLite.
    Flag,
    /// A member unit, by its code in files and by its registry id in the databases.
    Unit,
    /// A medical group, by its code in files and by its registry id in the databases.
    Group,
    /// A practitioner, by the generated id in files and by the registry id in the databases.
    Practitioner,
}

/// One column of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The name in files.
    pub name: &'static str,
    /// The name in the databases (differs where the value does: `total` yuan in files is
    /// `total_fen` there, `unit_code` is `unit_id`).
    pub db: &'static str,
    pub kind: Kind,
    pub nullable: bool,
    /// What the column means, for docs/synthetic-city.md and the Parquet metadata.
    pub doc: &'static str,
}

/// One generated table: a file `{file}.csv` / `{file}.parquet` and a database table `{db}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    pub file: &'static str,
    pub db: &'static str,
    pub doc: &'static str,
    pub columns: &'static [Column],
}

impl Schema {
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// Where generated rows go. Values are given in column order, then `end_row`; a value of the
/// wrong kind for its column is a bug in the generator, which each sink may check in debug
/// builds.
pub trait Sink {
    fn int(&mut self, v: i64);
    fn text(&mut self, v: &str);
    fn date(&mut self, v: NaiveDate);
    fn timestamp(&mut self, v: NaiveDateTime);
    /// `v` scaled by 10^scale of the column.
    fn fixed(&mut self, v: i64);
    fn flag(&mut self, v: bool);
    fn unit(&mut self, code: &str);
    fn group(&mut self, code: &str);
    fn practitioner(&mut self, id: u64);
    fn null(&mut self);
    fn end_row(&mut self) -> Result<(), SinkError>;
    /// Flushes what is buffered; returns the number of rows written.
    fn finish(&mut self) -> Result<u64, SinkError>;
}

/// Opens one sink per table.
pub trait SinkFactory {
    type Sink: Sink;
    fn open(&mut self, schema: &'static Schema) -> Result<Self::Sink, SinkError>;
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    // The cause is the error's source, which reports print after this line.
    #[error("cannot write {path}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{table}: {message}")]
    Rejected { table: String, message: String },
}

/// Optional values.
pub trait SinkExt: Sink {
    fn opt_int(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.int(v),
            None => self.null(),
        }
    }
    fn opt_text(&mut self, v: Option<&str>) {
        match v {
            Some(v) => self.text(v),
            None => self.null(),
        }
    }
    fn opt_fixed(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.fixed(v),
            None => self.null(),
        }
    }
    fn opt_unit(&mut self, v: Option<&str>) {
        match v {
            Some(v) => self.unit(v),
            None => self.null(),
        }
    }
    fn opt_practitioner(&mut self, v: Option<u64>) {
        match v {
            Some(v) => self.practitioner(v),
            None => self.null(),
        }
    }
    fn opt_date(&mut self, v: Option<NaiveDate>) {
        match v {
            Some(v) => self.date(v),
            None => self.null(),
        }
    }
    fn opt_timestamp(&mut self, v: Option<NaiveDateTime>) {
        match v {
            Some(v) => self.timestamp(v),
            None => self.null(),
        }
    }
}

impl<S: Sink + ?Sized> SinkExt for S {}
