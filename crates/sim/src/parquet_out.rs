//! Parquet files, one per table, through the parquet crate's low-level writer: the generator
//! hands values one at a time, so they are gathered per column and written as a row group
//! every `GROUP_ROWS` rows, which keeps memory bounded however long the table is.
//!
//! Types follow `Kind`: Int and Practitioner are INT64; Text, Unit and Group are UTF-8
//! strings (codes, as in CSV); Date is DATE; Timestamp is TIMESTAMP(MICROS) not adjusted to
//! UTC, since the generator's times are the city's wall-clock time; Fixed(s) is
//! DECIMAL(18, s) over INT64, i.e. the scaled integer as is; Flag is BOOLEAN. Nullable
//! columns are OPTIONAL. The table's and columns' docs go into the file's key-value metadata
//! (Parquet has no place for a field description).
//!
//! The same rows give the same bytes: nothing time- or host-dependent is written, and the
//! writer's dictionaries number values in order of appearance whatever their hash seed.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as PhysicalType};
use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use crate::table::{Kind, Schema, Sink, SinkError, SinkFactory};

/// Rows per row group. Large enough for good compression and few footer entries, small
/// enough that a group of the widest table stays within tens of megabytes.
pub const GROUP_ROWS: usize = 128 * 1024;

/// Text bytes buffered before a row group is written early, in case a table has long texts.
const GROUP_TEXT_BYTES: usize = 64 << 20;

/// Precision of every decimal: the most an INT64 holds exactly.
const DECIMAL_PRECISION: i32 = 18;

/// Days from 0001-01-01 (day 1 of chrono's `num_days_from_ce`) to 1970-01-01, the epoch of
/// Parquet's DATE.
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// Writes `{dir}/{table}.parquet`.
pub struct ParquetFactory {
    dir: PathBuf,
}

impl ParquetFactory {
    pub fn new(dir: &Path) -> Result<ParquetFactory, SinkError> {
        std::fs::create_dir_all(dir).map_err(|source| SinkError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(ParquetFactory {
            dir: dir.to_owned(),
        })
    }
}

impl SinkFactory for ParquetFactory {
    type Sink = ParquetSink<File>;

    fn open(&mut self, schema: &'static Schema) -> Result<ParquetSink<File>, SinkError> {
        let path = self.dir.join(format!("{}.parquet", schema.file));
        let file = File::create(&path).map_err(|source| SinkError::Io {
            path: path.display().to_string(),
            source,
        })?;
        ParquetSink::new(file, schema, path.display().to_string())
    }
}

/// The Parquet type of every column of `schema`.
fn message_type(schema: &Schema) -> Result<Type, ParquetError> {
    let mut fields = Vec::with_capacity(schema.columns.len());
    for c in schema.columns {
        let (physical, logical) = match c.kind {
            Kind::Int | Kind::Practitioner => (PhysicalType::INT64, None),
            Kind::Text | Kind::Unit | Kind::Group => {
                (PhysicalType::BYTE_ARRAY, Some(LogicalType::String))
            }
            Kind::Date => (PhysicalType::INT32, Some(LogicalType::Date)),
            Kind::Timestamp => (
                PhysicalType::INT64,
                Some(LogicalType::timestamp(false, TimeUnit::MICROS)),
            ),
            Kind::Fixed(s) => (
                PhysicalType::INT64,
                Some(LogicalType::decimal(i32::from(s), DECIMAL_PRECISION)),
            ),
            Kind::Flag => (PhysicalType::BOOLEAN, None),
        };
        let repetition = if c.nullable {
            Repetition::OPTIONAL
        } else {
            Repetition::REQUIRED
        };
        let mut field = Type::primitive_type_builder(c.name, physical)
            .with_repetition(repetition)
            .with_logical_type(logical);
        if let Kind::Fixed(s) = c.kind {
            // The builder checks the legacy precision/scale against the logical type's.
            field = field
                .with_precision(DECIMAL_PRECISION)
                .with_scale(i32::from(s));
        }
        fields.push(Arc::new(field.build()?));
    }
    Type::group_type_builder("schema")
        .with_fields(fields)
        .build()
}

fn properties(schema: &Schema) -> WriterProperties {
    let mut kv = vec![KeyValue::new(
        "medgrid.table".into(),
        schema.file.to_owned(),
    )];
    kv.push(KeyValue::new("medgrid.doc".into(), schema.doc.to_owned()));
    for c in schema.columns {
        kv.push(KeyValue::new(
            format!("medgrid.doc.{}", c.name),
            c.doc.to_owned(),
        ));
    }
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_key_value_metadata(Some(kv))
        .build()
}

/// One column's values of the row group being gathered.
enum Values {
    Bool(Vec<bool>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    /// All strings end to end, and where each ends: one allocation per group rather than one
    /// per value.
    Text {
        bytes: Vec<u8>,
        ends: Vec<usize>,
    },
}

struct ColumnBuf {
    values: Values,
    /// Definition levels of an OPTIONAL column (1 a value, 0 a null); unused when REQUIRED.
    defs: Vec<i16>,
    nullable: bool,
}

impl ColumnBuf {
    fn new(kind: Kind, nullable: bool) -> ColumnBuf {
        let values = match kind {
            Kind::Int | Kind::Practitioner | Kind::Timestamp | Kind::Fixed(_) => {
                Values::I64(Vec::new())
            }
            Kind::Text | Kind::Unit | Kind::Group => Values::Text {
                bytes: Vec::new(),
                ends: Vec::new(),
            },
            Kind::Date => Values::I32(Vec::new()),
            Kind::Flag => Values::Bool(Vec::new()),
        };
        ColumnBuf {
            values,
            defs: Vec::new(),
            nullable,
        }
    }

    fn write(&mut self, out: &mut ColumnWriter<'_>) -> Result<(), ParquetError> {
        let defs = self.nullable.then_some(self.defs.as_slice());
        match (&mut self.values, out) {
            (Values::Bool(v), ColumnWriter::BoolColumnWriter(w)) => {
                w.write_batch(v, defs, None)?;
                v.clear();
            }
            (Values::I32(v), ColumnWriter::Int32ColumnWriter(w)) => {
                w.write_batch(v, defs, None)?;
                v.clear();
            }
            (Values::I64(v), ColumnWriter::Int64ColumnWriter(w)) => {
                w.write_batch(v, defs, None)?;
                v.clear();
            }
            (Values::Text { bytes, ends }, ColumnWriter::ByteArrayColumnWriter(w)) => {
                // Slices of one shared buffer: no copy of the strings.
                let all = ByteArray::from(std::mem::take(bytes));
                let mut start = 0;
                let values: Vec<ByteArray> = ends
                    .iter()
                    .map(|&end| {
                        let v = all.slice(start, end - start);
                        start = end;
                        v
                    })
                    .collect();
                w.write_batch(&values, defs, None)?;
                ends.clear();
            }
            _ => {
                return Err(ParquetError::General(
                    "column buffer does not match the column's physical type".into(),
                ))
            }
        }
        self.defs.clear();
        Ok(())
    }
}

/// Rows of one table as a Parquet file.
pub struct ParquetSink<W: Write + Send> {
    /// `None` once finished.
    writer: Option<SerializedFileWriter<W>>,
    /// The writer's output, once finished (tests write into a `Vec<u8>`).
    out: Option<W>,
    name: String,
    schema: &'static Schema,
    columns: Vec<ColumnBuf>,
    /// Index of the column the next value is for.
    column: usize,
    group_rows: usize,
    group_text_bytes: usize,
    rows: u64,
    /// The first misuse of the sink (a value of the wrong kind, a null in a required column,
    /// a row of the wrong length). The buffers are then out of step, so the sink refuses
    /// every later row rather than writing misaligned columns.
    fault: Option<String>,
}

impl<W: Write + Send> ParquetSink<W> {
    pub fn new(out: W, schema: &'static Schema, name: String) -> Result<ParquetSink<W>, SinkError> {
        let rejected = |e: ParquetError| SinkError::Rejected {
            table: schema.file.to_owned(),
            message: e.to_string(),
        };
        let message = message_type(schema).map_err(rejected)?;
        let writer =
            SerializedFileWriter::new(out, Arc::new(message), Arc::new(properties(schema)))
                .map_err(|e| io_error(&name, e))?;
        Ok(ParquetSink {
            writer: Some(writer),
            out: None,
            name,
            schema,
            columns: schema
                .columns
                .iter()
                .map(|c| ColumnBuf::new(c.kind, c.nullable))
                .collect(),
            column: 0,
            group_rows: 0,
            group_text_bytes: 0,
            rows: 0,
            fault: None,
        })
    }

    /// The writer, once finished.
    pub fn into_inner(self) -> Option<W> {
        self.out
    }

    /// The buffer of the next column if it is of a kind `accepts`, else records the fault.
    fn slot(&mut self, accepts: fn(Kind) -> bool, what: &str) -> Option<&mut Values> {
        let i = self.column;
        self.column += 1;
        if self.fault.is_some() {
            return None;
        }
        let Some(c) = self.schema.columns.get(i) else {
            self.fault = Some(format!(
                "a row has more than {} values",
                self.schema.columns.len()
            ));
            return None;
        };
        if !accepts(c.kind) {
            self.fault = Some(format!(
                "column {} ({:?}) was given a {what} value",
                c.name, c.kind
            ));
            return None;
        }
        let buf = self.columns.get_mut(i)?;
        if buf.nullable {
            buf.defs.push(1);
        }
        Some(&mut buf.values)
    }

    fn push_i64(&mut self, accepts: fn(Kind) -> bool, what: &str, v: i64) {
        if let Some(Values::I64(b)) = self.slot(accepts, what) {
            b.push(v);
        }
    }

    fn push_text(&mut self, accepts: fn(Kind) -> bool, what: &str, v: &str) {
        if let Some(Values::Text { bytes, ends }) = self.slot(accepts, what) {
            bytes.extend_from_slice(v.as_bytes());
            ends.push(bytes.len());
            self.group_text_bytes += v.len();
        }
    }

    fn rejected(&self, message: String) -> SinkError {
        SinkError::Rejected {
            table: self.schema.file.to_owned(),
            message,
        }
    }

    /// Writes the gathered rows as one row group.
    fn flush_group(&mut self) -> Result<(), SinkError> {
        if self.group_rows == 0 {
            return Ok(());
        }
        let name = &self.name;
        let Some(writer) = self.writer.as_mut() else {
            return Err(self.rejected("rows after finish".into()));
        };
        let mut group = writer.next_row_group().map_err(|e| io_error(name, e))?;
        for buf in &mut self.columns {
            let mut column = match group.next_column() {
                Ok(Some(c)) => c,
                Ok(None) => {
                    return Err(io_error(
                        name,
                        ParquetError::General("fewer columns in the file than in the table".into()),
                    ))
                }
                Err(e) => return Err(io_error(name, e)),
            };
            buf.write(column.untyped()).map_err(|e| io_error(name, e))?;
            column.close().map_err(|e| io_error(name, e))?;
        }
        group.close().map_err(|e| io_error(name, e))?;
        self.group_rows = 0;
        self.group_text_bytes = 0;
        Ok(())
    }
}

/// Failures of the writer are mostly of the file under it; they are reported with its path.
fn io_error(path: &str, e: ParquetError) -> SinkError {
    SinkError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(e),
    }
}

/// Days since 1970-01-01.
fn days(d: NaiveDate) -> i32 {
    d.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE
}

/// Microseconds since 1970-01-01 00:00 of the same wall clock: the encoding of a timestamp
/// that is not adjusted to UTC.
fn micros(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

impl<W: Write + Send> Sink for ParquetSink<W> {
    fn int(&mut self, v: i64) {
        self.push_i64(|k| k == Kind::Int, "int", v);
    }

    fn text(&mut self, v: &str) {
        self.push_text(|k| k == Kind::Text, "text", v);
    }

    fn date(&mut self, v: NaiveDate) {
        if let Some(Values::I32(b)) = self.slot(|k| k == Kind::Date, "date") {
            b.push(days(v));
        }
    }

    fn timestamp(&mut self, v: NaiveDateTime) {
        self.push_i64(|k| k == Kind::Timestamp, "timestamp", micros(v));
    }

    fn fixed(&mut self, v: i64) {
        self.push_i64(|k| matches!(k, Kind::Fixed(_)), "fixed", v);
    }

    fn flag(&mut self, v: bool) {
        if let Some(Values::Bool(b)) = self.slot(|k| k == Kind::Flag, "flag") {
            b.push(v);
        }
    }

    fn unit(&mut self, code: &str) {
        self.push_text(|k| k == Kind::Unit, "unit", code);
    }

    fn group(&mut self, code: &str) {
        self.push_text(|k| k == Kind::Group, "group", code);
    }

    fn practitioner(&mut self, id: u64) {
        match i64::try_from(id) {
            Ok(v) => self.push_i64(|k| k == Kind::Practitioner, "practitioner", v),
            Err(_) => {
                self.column += 1;
                self.fault
                    .get_or_insert_with(|| format!("practitioner id {id} is beyond INT64"));
            }
        }
    }

    fn null(&mut self) {
        let i = self.column;
        self.column += 1;
        if self.fault.is_some() {
            return;
        }
        match (self.schema.columns.get(i), self.columns.get_mut(i)) {
            (Some(_), Some(buf)) if buf.nullable => buf.defs.push(0),
            (Some(c), _) => self.fault = Some(format!("column {} is not nullable", c.name)),
            (None, _) => {
                self.fault = Some(format!(
                    "a row has more than {} values",
                    self.schema.columns.len()
                ))
            }
        }
    }

    fn end_row(&mut self) -> Result<(), SinkError> {
        if self.fault.is_none() && self.column != self.schema.columns.len() {
            self.fault = Some(format!(
                "a row has {} values for {} columns",
                self.column,
                self.schema.columns.len()
            ));
        }
        if let Some(fault) = &self.fault {
            return Err(self.rejected(fault.clone()));
        }
        self.column = 0;
        self.rows += 1;
        self.group_rows += 1;
        if self.group_rows >= GROUP_ROWS || self.group_text_bytes >= GROUP_TEXT_BYTES {
            self.flush_group()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<u64, SinkError> {
        if let Some(fault) = &self.fault {
            return Err(self.rejected(fault.clone()));
        }
        if self.writer.is_none() {
            return Ok(self.rows);
        }
        self.flush_group()?;
        if let Some(writer) = self.writer.take() {
            // `into_inner` writes the footer and hands back the output with its buffer
            // drained; calling `finish` first would write the footer twice.
            let mut out = writer.into_inner().map_err(|e| io_error(&self.name, e))?;
            out.flush().map_err(|source| SinkError::Io {
                path: self.name.clone(),
                source,
            })?;
            self.out = Some(out);
        }
        Ok(self.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema;
    use crate::table::{Column, SinkExt};
    use parquet::data_type::Decimal;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    const fn col(name: &'static str, kind: Kind, nullable: bool) -> Column {
        Column {
            name,
            db: "",
            kind,
            nullable,
            doc: "doc of a column",
        }
    }

    static EVERY_KIND: Schema = Schema {
        file: "every_kind",
        db: "",
        doc: "one column of each kind, and a nullable one of each",
        columns: &[
            col("int", Kind::Int, false),
            col("text", Kind::Text, false),
            col("date", Kind::Date, false),
            col("timestamp", Kind::Timestamp, false),
            col("money", Kind::Fixed(2), false),
            col("flag", Kind::Flag, false),
            col("unit", Kind::Unit, false),
            col("group", Kind::Group, false),
            col("practitioner", Kind::Practitioner, false),
            col("opt_int", Kind::Int, true),
            col("opt_text", Kind::Text, true),
            col("opt_date", Kind::Date, true),
            col("opt_timestamp", Kind::Timestamp, true),
            col("opt_tenths", Kind::Fixed(1), true),
            col("opt_flag", Kind::Flag, true),
            col("opt_unit", Kind::Unit, true),
            col("opt_practitioner", Kind::Practitioner, true),
        ],
    };

    /// A folder of its own for each test, under the system's temporary folder.
    fn scratch(test: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("medgrid-sim-parquet-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// Row `i` of EVERY_KIND; odd rows have every nullable column null.
    fn write_every_kind(s: &mut impl Sink, i: i64) {
        let day = date(2025, 3, 9) + chrono::Days::new(i as u64);
        let at = day.and_hms_opt(23, 5, 7).unwrap();
        s.int(-12 + i);
        s.text(["王伟", "", "a,\"b\"\n", "plain"][i as usize % 4]);
        s.date(day);
        s.timestamp(at);
        s.fixed(-12_345 + i);
        s.flag(i % 3 == 0);
        s.unit("U01");
        s.group("G1");
        s.practitioner(40 + i as u64);
        let some = i % 2 == 0;
        s.opt_int(some.then_some(i64::MIN + i));
        s.opt_text(some.then_some("可选"));
        s.opt_date(some.then(|| date(1950, 1, 1)));
        s.opt_timestamp(some.then(|| date(1969, 12, 31).and_hms_opt(0, 0, 1).unwrap()));
        s.opt_fixed(some.then_some(72));
        if some {
            s.flag(false);
        } else {
            s.null();
        }
        s.opt_unit(some.then_some("U02"));
        s.opt_practitioner(some.then_some(7));
        s.end_row().unwrap();
    }

    fn expected_every_kind(i: i64) -> Vec<Field> {
        let day = date(2025, 3, 9) + chrono::Days::new(i as u64);
        let some = i % 2 == 0;
        let or_null = |f: Field| if some { f } else { Field::Null };
        vec![
            Field::Long(-12 + i),
            Field::Str(["王伟", "", "a,\"b\"\n", "plain"][i as usize % 4].into()),
            Field::Date(days(day)),
            Field::TimestampMicros(micros(day.and_hms_opt(23, 5, 7).unwrap())),
            Field::Decimal(Decimal::from_i64(-12_345 + i, 18, 2)),
            Field::Bool(i % 3 == 0),
            Field::Str("U01".into()),
            Field::Str("G1".into()),
            Field::Long(40 + i),
            or_null(Field::Long(i64::MIN + i)),
            or_null(Field::Str("可选".into())),
            or_null(Field::Date(-7305)),
            or_null(Field::TimestampMicros(-86_399_000_000)),
            or_null(Field::Decimal(Decimal::from_i64(72, 18, 1))),
            or_null(Field::Bool(false)),
            or_null(Field::Str("U02".into())),
            or_null(Field::Long(7)),
        ]
    }

    fn read_rows(path: &Path) -> Vec<Vec<Field>> {
        let reader = SerializedFileReader::new(File::open(path).unwrap()).unwrap();
        reader
            .get_row_iter(None)
            .unwrap()
            .map(|row| {
                row.unwrap()
                    .into_columns()
                    .into_iter()
                    .map(|(_, f)| f)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn parquet_reader_reads_back_every_kind_and_nulls() {
        let dir = scratch("every-kind");
        let mut f = ParquetFactory::new(&dir).unwrap();
        let mut s = f.open(&EVERY_KIND).unwrap();
        for i in 0..6 {
            write_every_kind(&mut s, i);
        }
        assert_eq!(s.finish().unwrap(), 6);

        let path = dir.join("every_kind.parquet");
        let rows = read_rows(&path);
        let expected: Vec<Vec<Field>> = (0..6).map(expected_every_kind).collect();
        assert_eq!(rows, expected);

        let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        let meta = reader.metadata().file_metadata();
        let schema = meta.schema_descr();
        for (i, c) in EVERY_KIND.columns.iter().enumerate() {
            let p = schema.column(i);
            assert_eq!(p.name(), c.name);
            assert_eq!(p.self_type().is_optional(), c.nullable, "{}", c.name);
        }
        let ts = schema.column(3).logical_type_ref().cloned();
        assert_eq!(ts, Some(LogicalType::timestamp(false, TimeUnit::MICROS)));
        let money = schema.column(4);
        assert_eq!(
            money.logical_type_ref().cloned(),
            Some(LogicalType::decimal(2, 18))
        );
        assert_eq!(money.physical_type(), PhysicalType::INT64);
        let kv = meta.key_value_metadata().unwrap();
        let doc = kv.iter().find(|k| k.key == "medgrid.doc").unwrap();
        assert_eq!(doc.value.as_deref(), Some(EVERY_KIND.doc));
        assert!(kv.iter().any(|k| k.key == "medgrid.doc.opt_flag"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn every_kind_bytes(rows: i64) -> Vec<u8> {
        let mut s = ParquetSink::new(Vec::new(), &EVERY_KIND, "mem".into()).unwrap();
        for i in 0..rows {
            write_every_kind(&mut s, i);
        }
        s.finish().unwrap();
        s.into_inner().unwrap()
    }

    #[test]
    fn parquet_output_is_deterministic() {
        let a = every_kind_bytes(1000);
        let b = every_kind_bytes(1000);
        assert!(a.starts_with(b"PAR1") && a.ends_with(b"PAR1"));
        assert_eq!(a, b);
        assert_ne!(a, every_kind_bytes(999));
    }

    #[test]
    fn parquet_tables_longer_than_a_row_group_are_split() {
        let dir = scratch("groups");
        let mut f = ParquetFactory::new(&dir).unwrap();
        let mut s = f.open(&schema::MPI_TRUTH).unwrap();
        let n = GROUP_ROWS as i64 * 2 + 1000;
        for i in 0..n {
            s.int(i);
            s.int(i / 3);
            s.opt_text((i % 5 == 0).then_some("name;phone"));
            s.end_row().unwrap();
        }
        assert_eq!(s.finish().unwrap(), n as u64);
        // A second finish changes nothing.
        assert_eq!(s.finish().unwrap(), n as u64);

        let path = dir.join("mpi_truth.parquet");
        let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        let meta = reader.metadata();
        assert_eq!(meta.num_row_groups(), 3);
        assert_eq!(meta.row_group(0).num_rows(), GROUP_ROWS as i64);
        assert_eq!(meta.row_group(2).num_rows(), 1000);
        assert_eq!(meta.file_metadata().num_rows(), n);
        let rows = read_rows(&path);
        assert_eq!(rows.len() as i64, n);
        for i in [0, 1, GROUP_ROWS as i64 - 1, GROUP_ROWS as i64, n - 1] {
            let text = if i % 5 == 0 {
                Field::Str("name;phone".into())
            } else {
                Field::Null
            };
            assert_eq!(
                rows[i as usize],
                vec![Field::Long(i), Field::Long(i / 3), text]
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parquet_sink_rejects_misuse() {
        let mut s = ParquetSink::new(Vec::new(), &schema::MPI_TRUTH, "mem".into()).unwrap();
        s.int(1);
        s.text("not an int");
        s.null();
        assert!(s.end_row().is_err());
        assert!(s.finish().is_err());

        let mut s = ParquetSink::new(Vec::new(), &schema::MPI_TRUTH, "mem".into()).unwrap();
        s.int(1);
        s.null();
        s.null();
        assert!(s.end_row().is_err());

        let mut s = ParquetSink::new(Vec::new(), &schema::MPI_TRUTH, "mem".into()).unwrap();
        s.int(1);
        s.int(2);
        assert!(s.end_row().is_err());
    }

    #[test]
    fn parquet_empty_table_is_a_valid_file() {
        let mut s = ParquetSink::new(Vec::new(), &schema::RESIDENTS, "mem".into()).unwrap();
        assert_eq!(s.finish().unwrap(), 0);
        let bytes = s.into_inner().unwrap();
        assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));
    }
}
