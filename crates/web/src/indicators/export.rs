//! The indicator table as files people open in a spreadsheet: CSV (UTF-8 with a byte-order
//! mark, which Excel needs to read Chinese) and Excel workbooks.

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use super::Board;

const HEADER: [&str; 14] = [
    "指标编码",
    "指标名称",
    "统计期",
    "值",
    "单位",
    "分子",
    "分母",
    "分子含义",
    "分母含义",
    "目标值",
    "预警线",
    "评价",
    "同比增减",
    "环比增减",
];

fn row_cells(b: &Board) -> Vec<[String; 14]> {
    b.rows
        .iter()
        .map(|r| {
            [
                r.indicator_id.clone(),
                r.name_zh.clone(),
                r.period.clone(),
                r.value.clone().unwrap_or_default(),
                r.unit.clone(),
                r.numerator.to_string(),
                r.denominator.to_string(),
                r.numerator_label.clone(),
                r.denominator_label.clone(),
                r.target.clone().unwrap_or_default(),
                r.amber.clone().unwrap_or_default(),
                r.rag_zh.clone(),
                r.year_on_year.clone().unwrap_or_default(),
                r.period_on_period.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The indicator table of a board as CSV.
pub fn csv(b: &Board) -> String {
    let mut out = String::from("\u{feff}");
    let mut line = |cells: &[String]| {
        let l: Vec<String> = cells.iter().map(|c| csv_field(c)).collect();
        out.push_str(&l.join(","));
        out.push_str("\r\n");
    };
    line(&HEADER.map(str::to_owned));
    for r in row_cells(b) {
        line(&r);
    }
    out
}

/// Two decimals, as shown.
fn shown(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The indicator table and the children's values as an Excel workbook: numbers are numbers,
/// so the sheet sums and charts them.
pub fn xlsx(b: &Board) -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let cells = row_cells(b);
    let sheet = book.add_worksheet().set_name("指标表")?;
    sheet.write_string_with_format(0, 0, format!("{} · {}", b.node.name, b.period_label), &bold)?;
    for (c, h) in HEADER.iter().enumerate() {
        sheet.write_string_with_format(2, c as u16, *h, &bold)?;
    }
    for (i, (r, texts)) in b.rows.iter().zip(&cells).enumerate() {
        let row = 3 + i as u32;
        for (c, text) in texts.iter().enumerate() {
            let c = c as u16;
            match (c, r.value_number) {
                (3, Some(v)) => sheet.write_number(row, c, shown(v))?,
                (5, _) => sheet.write_number(row, c, r.numerator as f64)?,
                (6, _) => sheet.write_number(row, c, r.denominator as f64)?,
                _ => sheet.write_string(row, c, text)?,
            };
        }
    }
    sheet.set_column_width(1, 28)?;
    sheet.set_column_width(7, 30)?;
    sheet.set_column_width(8, 30)?;
    if !b.children.is_empty() {
        let kids = book.add_worksheet().set_name("下级单位")?;
        kids.write_string_with_format(0, 0, "单位", &bold)?;
        for (c, r) in b.rows.iter().enumerate() {
            kids.write_string_with_format(0, 1 + c as u16, &r.name_zh, &bold)?;
        }
        for (i, child) in b.children.iter().enumerate() {
            let row = 1 + i as u32;
            kids.write_string(row, 0, &child.node.name)?;
            for (c, r) in b.rows.iter().enumerate() {
                let v = child
                    .values
                    .iter()
                    .find(|v| v.indicator_id == r.indicator_id)
                    .and_then(|v| v.value_number);
                if let Some(v) = v {
                    kids.write_number(row, 1 + c as u16, shown(v))?;
                }
            }
        }
        kids.set_column_width(0, 30)?;
    }
    book.save_to_buffer()
}
