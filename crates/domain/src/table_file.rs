//! Tables people send as CSV files (a city's layout, a bureau's claims): read into rows
//! that know their physical line, so that every problem can be reported where it stands.
//! Lines starting with `#` are comments; blank lines are skipped; a byte-order mark is
//! dropped; a file that is not UTF-8 is refused with the way to convert it.

use std::collections::HashMap;

use crate::error::{FieldError, Invalid};

/// One data row: its physical line and its cells by column name.
pub struct Row<'a> {
    pub line: usize,
    pub cells: HashMap<&'a str, String>,
}

impl Row<'_> {
    pub fn get(&self, column: &str) -> &str {
        self.cells.get(column).map(|s| s.trim()).unwrap_or("")
    }

    pub fn field(&self, column: &str) -> String {
        format!("line {}: {column}", self.line)
    }
}

pub fn whole_file(code: &'static str, zh: &str, en: &str) -> Invalid {
    Invalid::one(FieldError::new("file", code, zh, en))
}

/// The 1-based line on which byte `offset` of `text` stands.
/// The reader places a record after blank lines at the first of them, so line breaks at the
/// offset are skipped.
fn line_at(text: &str, offset: u64) -> usize {
    let bytes = text.as_bytes();
    let mut end = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    while end < bytes.len() && matches!(bytes[end], b'\n' | b'\r') {
        end += 1;
    }
    bytes[..end].iter().filter(|b| **b == b'\n').count() + 1
}

/// Reads the CSV into rows, or explains why it cannot be read at all: every unreadable
/// line, unknown or missing column and short row, each with its physical line.
pub fn read_rows(
    bytes: &[u8],
    required: &[&'static str],
    optional: &[&'static str],
) -> Result<Vec<Row<'static>>, Invalid> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
        whole_file(
            "encoding",
            &format!("文件不是 UTF-8 编码（第 {line} 行起无法解码），可能是 GBK/GB18030；请用“iconv -f GB18030 -t UTF-8”转换后再导入"),
            &format!("the file is not UTF-8 (undecodable from line {line}); it is probably GBK/GB18030: convert it with `iconv -f GB18030 -t UTF-8` and import again"),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Comment lines are blanked rather than left to the CSV reader, so that the reader's line
    // numbers stay the file's physical ones.
    let text: String = text
        .split_inclusive('\n')
        .map(|l| {
            if l.trim_start().starts_with('#') {
                if l.ends_with('\n') {
                    "\n"
                } else {
                    ""
                }
            } else {
                l
            }
        })
        .collect();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut header: Option<Vec<&'static str>> = None;
    let mut rows = Vec::new();
    let mut problems = Invalid::default();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| line_at(&text, p.byte()));
                problems.push(FieldError::new(
                    format!("line {line}"),
                    "csv",
                    "CSV 格式错误（引号不匹配？）",
                    format!("malformed CSV: {e}"),
                ));
                continue;
            }
        };
        // The reader's own line counter skips blank lines; the byte offset does not lie.
        let line = record.position().map_or(0, |p| line_at(&text, p.byte()));
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        match &header {
            None => {
                let mut columns = Vec::new();
                for cell in record.iter() {
                    let name = cell.trim();
                    match required.iter().chain(optional).find(|c| **c == name) {
                        Some(known) => columns.push(*known),
                        None => problems.push(FieldError::new(
                            format!("line {line}: {name}"),
                            "unknown_column",
                            format!("未知列“{name}”"),
                            format!("unknown column '{name}'"),
                        )),
                    }
                }
                for needed in required {
                    if !columns.contains(needed) {
                        problems.push(FieldError::new(
                            format!("line {line}: {needed}"),
                            "missing_column",
                            format!("缺少必需的列“{needed}”"),
                            format!("the required column '{needed}' is missing"),
                        ));
                    }
                }
                header = Some(columns);
            }
            Some(columns) => {
                if record.len() != columns.len() {
                    problems.push(FieldError::new(
                        format!("line {line}"),
                        "field_count",
                        format!(
                            "该行有 {} 个字段，表头有 {} 列",
                            record.len(),
                            columns.len()
                        ),
                        format!(
                            "the row has {} fields; the header has {} columns",
                            record.len(),
                            columns.len()
                        ),
                    ));
                    continue;
                }
                let cells = columns
                    .iter()
                    .copied()
                    .zip(record.iter().map(str::to_owned))
                    .collect();
                rows.push(Row { line, cells });
            }
        }
    }
    if header.is_none() {
        problems.push(FieldError::new(
            "file",
            "empty",
            "文件为空或只有注释",
            "the file is empty",
        ));
    }
    problems.into_result(rows)
}
