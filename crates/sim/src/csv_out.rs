//! CSV files (RFC 4180, UTF-8, `\n` line ends, a header row), written by hand rather than
//! through a general serializer because the generator's rate is bounded by formatting: one
//! buffer, digits written directly, quoting only where a field needs it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

use crate::table::{Kind, Schema, Sink, SinkError, SinkFactory};

/// Writes `{dir}/{table}.csv`.
pub struct CsvFactory {
    dir: PathBuf,
}

impl CsvFactory {
    pub fn new(dir: &Path) -> Result<CsvFactory, SinkError> {
        std::fs::create_dir_all(dir).map_err(|source| SinkError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(CsvFactory {
            dir: dir.to_owned(),
        })
    }
}

impl SinkFactory for CsvFactory {
    type Sink = CsvSink<File>;

    fn open(&mut self, schema: &'static Schema) -> Result<CsvSink<File>, SinkError> {
        let path = self.dir.join(format!("{}.csv", schema.file));
        let file = File::create(&path).map_err(|source| SinkError::Io {
            path: path.display().to_string(),
            source,
        })?;
        CsvSink::new(file, schema, path.display().to_string())
    }
}

const FLUSH_AT: usize = 1 << 20;

/// Rows of one table as CSV text.
pub struct CsvSink<W: Write> {
    out: W,
    name: String,
    schema: &'static Schema,
    buf: Vec<u8>,
    column: usize,
    rows: u64,
    /// The last day spelled: rows of a resident mostly repeat the day they are about.
    last_day: Option<(NaiveDate, [u8; 10])>,
}

impl<W: Write> CsvSink<W> {
    pub fn new(out: W, schema: &'static Schema, name: String) -> Result<CsvSink<W>, SinkError> {
        let mut sink = CsvSink {
            out,
            name,
            schema,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            column: 0,
            rows: 0,
            last_day: None,
        };
        for c in schema.columns {
            sink.text(c.name);
        }
        sink.buf.push(b'\n');
        sink.column = 0;
        Ok(sink)
    }

    /// The writer, once finished (tests write into a `Vec<u8>`).
    pub fn into_inner(self) -> W {
        self.out
    }

    fn sep(&mut self) {
        if self.column > 0 {
            self.buf.push(b',');
        }
        self.column += 1;
    }

    fn scale(&self) -> u8 {
        match self.schema.columns.get(self.column.wrapping_sub(1)) {
            Some(c) => match c.kind {
                Kind::Fixed(s) => s,
                _ => 0,
            },
            None => 0,
        }
    }

    fn day(&mut self, d: NaiveDate) {
        match self.last_day {
            Some((day, text)) if day == d => self.buf.extend_from_slice(&text),
            _ => {
                let at = self.buf.len();
                push_date(&mut self.buf, d);
                if let Ok(text) = <[u8; 10]>::try_from(&self.buf[at..]) {
                    self.last_day = Some((d, text));
                }
            }
        }
    }

    fn flush_buf(&mut self) -> Result<(), SinkError> {
        self.out
            .write_all(&self.buf)
            .map_err(|source| SinkError::Io {
                path: self.name.clone(),
                source,
            })?;
        self.buf.clear();
        Ok(())
    }
}

const DIGITS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

// The spelling of values, shared with the databases' bulk loaders (PostgreSQL COPY reads CSV).

/// Appends the decimal digits of `v`, two at a time (the generator's hottest loop).
pub fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    while v >= 100 {
        let d = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        tmp[i] = DIGITS[d];
        tmp[i + 1] = DIGITS[d + 1];
    }
    if v >= 10 {
        let d = v as usize * 2;
        i -= 2;
        tmp[i] = DIGITS[d];
        tmp[i + 1] = DIGITS[d + 1];
    } else {
        i -= 1;
        tmp[i] = b'0' + v as u8;
    }
    // Byte by byte: numbers are short, and a memmove call per number costs more.
    buf.reserve(20);
    for &b in &tmp[i..] {
        buf.push(b);
    }
}

pub fn push_i64(buf: &mut Vec<u8>, v: i64) {
    if v < 0 {
        buf.push(b'-');
    }
    push_u64(buf, v.unsigned_abs());
}

fn push2(buf: &mut Vec<u8>, v: u32) {
    buf.push(b'0' + (v / 10 % 10) as u8);
    buf.push(b'0' + (v % 10) as u8);
}

/// `YYYY-MM-DD`, as files, both databases and DuckDB read a day.
pub fn push_date(buf: &mut Vec<u8>, d: NaiveDate) {
    match u32::try_from(d.year()) {
        Ok(y) if y <= 9999 => {
            push2(buf, y / 100);
            push2(buf, y % 100);
        }
        // Outside four digits: chrono's own spelling, which PostgreSQL reads too.
        _ => {
            buf.extend_from_slice(d.to_string().as_bytes());
            return;
        }
    }
    buf.push(b'-');
    push2(buf, d.month());
    buf.push(b'-');
    push2(buf, d.day());
}

pub fn push_timestamp(buf: &mut Vec<u8>, t: NaiveDateTime) {
    push_date(buf, t.date());
    buf.push(b' ');
    push2(buf, t.hour());
    buf.push(b':');
    push2(buf, t.minute());
    buf.push(b':');
    push2(buf, t.second());
}

/// `v` / 10^scale as a decimal with exactly `scale` places.
pub fn push_fixed(buf: &mut Vec<u8>, v: i64, scale: u8) {
    if v < 0 {
        buf.push(b'-');
    }
    let abs = v.unsigned_abs();
    match scale {
        0 => push_u64(buf, abs),
        // Money: the common case, two places from the digit-pair table.
        2 => {
            push_u64(buf, abs / 100);
            let d = (abs % 100) as usize * 2;
            buf.extend_from_slice(&[b'.', DIGITS[d], DIGITS[d + 1]]);
        }
        _ => {
            let div = 10u64.pow(u32::from(scale));
            push_u64(buf, abs / div);
            buf.push(b'.');
            let frac = abs % div;
            let mut d = div / 10;
            while d > 0 {
                buf.push(b'0' + (frac / d % 10) as u8);
                d /= 10;
            }
        }
    }
}

/// Whether a text field must be quoted. Every byte that needs it is at most b',', so one
/// comparison settles most bytes (Chinese text is all above 0x80).
fn needs_quotes(v: &str) -> bool {
    v.is_empty()
        || v.bytes()
            .any(|b| b <= b',' && matches!(b, b',' | b'"' | b'\n' | b'\r'))
}

impl<W: Write> Sink for CsvSink<W> {
    fn int(&mut self, v: i64) {
        self.sep();
        push_i64(&mut self.buf, v);
    }

    fn text(&mut self, v: &str) {
        self.sep();
        if needs_quotes(v) {
            // An empty string is quoted so that it stays apart from a missing value.
            self.buf.push(b'"');
            for b in v.bytes() {
                if b == b'"' {
                    self.buf.push(b'"');
                }
                self.buf.push(b);
            }
            self.buf.push(b'"');
        } else if v.len() <= 24 {
            // Short fields (codes, most names) are copied byte by byte: a call to memmove
            // per field cost more than the copy itself.
            self.buf.reserve(24);
            for &b in v.as_bytes() {
                self.buf.push(b);
            }
        } else {
            self.buf.extend_from_slice(v.as_bytes());
        }
    }

    fn date(&mut self, v: NaiveDate) {
        self.sep();
        self.day(v);
    }

    fn timestamp(&mut self, v: NaiveDateTime) {
        self.sep();
        self.day(v.date());
        self.buf.push(b' ');
        push2(&mut self.buf, v.hour());
        self.buf.push(b':');
        push2(&mut self.buf, v.minute());
        self.buf.push(b':');
        push2(&mut self.buf, v.second());
    }

    fn fixed(&mut self, v: i64) {
        self.sep();
        let scale = self.scale();
        push_fixed(&mut self.buf, v, scale);
    }

    fn flag(&mut self, v: bool) {
        self.sep();
        self.buf.push(if v { b'1' } else { b'0' });
    }

    fn unit(&mut self, code: &str) {
        self.text(code);
    }

    fn group(&mut self, code: &str) {
        self.text(code);
    }

    fn practitioner(&mut self, id: u64) {
        self.sep();
        push_u64(&mut self.buf, id);
    }

    fn null(&mut self) {
        self.sep();
    }

    fn end_row(&mut self) -> Result<(), SinkError> {
        debug_assert_eq!(
            self.column,
            self.schema.columns.len(),
            "row of {} has the wrong number of values",
            self.schema.file
        );
        self.buf.push(b'\n');
        self.column = 0;
        self.rows += 1;
        if self.buf.len() >= FLUSH_AT {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<u64, SinkError> {
        self.flush_buf()?;
        self.out.flush().map_err(|source| SinkError::Io {
            path: self.name.clone(),
            source,
        })?;
        Ok(self.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema;

    #[test]
    fn values_are_spelled_as_documented() {
        let mut s = CsvSink::new(Vec::new(), &schema::MPI_TRUTH, "t".into()).unwrap();
        s.int(-12);
        s.int(0);
        s.text("a,\"b\"");
        s.end_row().unwrap();
        s.int(7);
        s.int(1_234_567_890_123);
        s.null();
        s.end_row().unwrap();
        assert_eq!(s.finish().unwrap(), 2);
        let text = String::from_utf8(s.into_inner()).unwrap();
        assert_eq!(
            text,
            "record_id,resident_id,corruptions\n-12,0,\"a,\"\"b\"\"\"\n7,1234567890123,\n"
        );
        let mut b = Vec::new();
        push_fixed(&mut b, 12_345, 2);
        b.push(b' ');
        push_fixed(&mut b, -5, 2);
        b.push(b' ');
        push_fixed(&mut b, 72, 1);
        b.push(b' ');
        push_date(&mut b, NaiveDate::from_ymd_opt(2025, 3, 9).unwrap());
        b.push(b' ');
        push_timestamp(
            &mut b,
            NaiveDate::from_ymd_opt(1999, 12, 31)
                .unwrap()
                .and_hms_opt(23, 5, 7)
                .unwrap(),
        );
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "123.45 -0.05 7.2 2025-03-09 1999-12-31 23:05:07"
        );
    }

    #[test]
    fn the_csv_crate_reads_what_is_written() {
        let mut s = CsvSink::new(Vec::new(), &schema::MPI_TRUTH, "t".into()).unwrap();
        for (i, t) in ["王伟", "", "x\ny", "\"q\""].iter().enumerate() {
            s.int(i as i64);
            s.int(1);
            s.text(t);
            s.end_row().unwrap();
        }
        s.finish().unwrap();
        let bytes = s.into_inner();
        let mut r = csv::Reader::from_reader(bytes.as_slice());
        let got: Vec<String> = r.records().map(|x| x.unwrap()[2].to_owned()).collect();
        assert_eq!(got, ["王伟", "", "x\ny", "\"q\""]);
    }
}
