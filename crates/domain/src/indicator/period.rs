//! Reporting periods: month, quarter, half-year, year and the rolling twelve months, each a run
//! of calendar months. Year-on-year and period-on-period comparisons are periods too.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::FieldError;

/// A calendar month, counted from year 0 so that months subtract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month(i32);

impl Month {
    pub fn new(year: i32, month: u32) -> Option<Month> {
        (1..=12)
            .contains(&month)
            .then(|| Month(year * 12 + month as i32 - 1))
    }

    pub fn year(self) -> i32 {
        self.0.div_euclid(12)
    }

    /// 1 to 12.
    pub fn month(self) -> u32 {
        self.0.rem_euclid(12) as u32 + 1
    }

    pub fn index(self) -> i32 {
        self.0
    }

    pub fn from_index(index: i32) -> Month {
        Month(index)
    }

    pub fn plus(self, months: i32) -> Month {
        Month(self.0 + months)
    }

    /// The month of a `YYYY-MM…` day or moment as the databases store them.
    pub fn of_day(day: &str) -> Option<Month> {
        fn digits(s: &str) -> Option<&str> {
            s.bytes().all(|b| b.is_ascii_digit()).then_some(s)
        }
        let year = digits(day.get(0..4)?)?.parse().ok()?;
        if day.get(4..5)? != "-" {
            return None;
        }
        let month = digits(day.get(5..7)?)?.parse().ok()?;
        Month::new(year, month)
    }

    /// A month as typed, `YYYY-MM`, by the same rules as a month period.
    pub fn parse(field: &str, raw: &str) -> Result<Month, FieldError> {
        match Period::parse(field, raw) {
            Ok(Period::Month(m)) => Ok(m),
            _ => Err(FieldError::new(
                field,
                "month",
                format!("“{}”不是月份，须为 YYYY-MM（如 2025-03）", raw.trim()),
                format!("“{}” is not a month: YYYY-MM (e.g. 2025-03)", raw.trim()),
            )),
        }
    }

    pub fn of_date(day: chrono::NaiveDate) -> Month {
        use chrono::Datelike;
        Month(day.year() * 12 + day.month0() as i32)
    }

    /// `YYYY-MM-01`, the first day, as stored.
    pub fn first_day(self) -> String {
        format!("{self}-01")
    }

    /// The first day of the next month: periods are half-open `[first_day, end_day)`.
    pub fn end_day(self) -> String {
        self.plus(1).first_day()
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

impl Serialize for Month {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The kinds of period an indicator can be reported for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    Month,
    Quarter,
    HalfYear,
    Year,
    Rolling12,
}

impl PeriodKind {
    pub const ALL: [PeriodKind; 5] = [
        PeriodKind::Month,
        PeriodKind::Quarter,
        PeriodKind::HalfYear,
        PeriodKind::Year,
        PeriodKind::Rolling12,
    ];

    /// The name used in queries and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodKind::Month => "month",
            PeriodKind::Quarter => "quarter",
            PeriodKind::HalfYear => "half_year",
            PeriodKind::Year => "year",
            PeriodKind::Rolling12 => "rolling12",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<PeriodKind, FieldError> {
        PeriodKind::ALL
            .into_iter()
            .find(|k| k.as_str() == raw.trim())
            .ok_or_else(|| {
                FieldError::new(
                    field,
                    "unknown",
                    format!(
                        "未知的统计期类型“{raw}”（month、quarter、half_year、year、rolling12）"
                    ),
                    format!(
                        "unknown period kind “{raw}” (month, quarter, half_year, year, rolling12)"
                    ),
                )
            })
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            PeriodKind::Month => "月",
            PeriodKind::Quarter => "季度",
            PeriodKind::HalfYear => "半年",
            PeriodKind::Year => "年",
            PeriodKind::Rolling12 => "滚动12个月",
        }
    }

    /// The period of this kind that ends with (or contains) `month`.
    pub fn containing(self, month: Month) -> Period {
        let y = month.year();
        let m = month.month();
        match self {
            PeriodKind::Month => Period::Month(month),
            PeriodKind::Quarter => Period::Quarter(y, (m - 1) / 3 + 1),
            PeriodKind::HalfYear => Period::HalfYear(y, if m <= 6 { 1 } else { 2 }),
            PeriodKind::Year => Period::Year(y),
            PeriodKind::Rolling12 => Period::Rolling12(month),
        }
    }
}

/// A reporting period. Written `2025-03`, `2025-Q1`, `2025-H1`, `2025` or `2025-03-R12` (the
/// twelve months ending March 2025).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Month(Month),
    Quarter(i32, u32),
    HalfYear(i32, u32),
    Year(i32),
    Rolling12(Month),
}

impl Period {
    pub fn parse(field: &str, raw: &str) -> Result<Period, FieldError> {
        let raw = raw.trim();
        let bad = || {
            FieldError::new(
                field,
                "period",
                format!(
                    "“{raw}”不是有效的统计期（如 2025-03、2025-Q1、2025-H1、2025、2025-03-R12）"
                ),
                format!(
                    "“{raw}” is not a period (e.g. 2025-03, 2025-Q1, 2025-H1, 2025, 2025-03-R12)"
                ),
            )
        };
        let year = |s: &str| -> Result<i32, FieldError> {
            if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let y: i32 = s.parse().map_err(|_| bad())?;
            if (1900..=2999).contains(&y) {
                Ok(y)
            } else {
                Err(bad())
            }
        };
        let month = |s: &str| -> Result<Month, FieldError> {
            let (y, m) = s.split_once('-').ok_or_else(bad)?;
            if m.len() != 2 || !m.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            Month::new(year(y)?, m.parse().map_err(|_| bad())?).ok_or_else(bad)
        };
        if let Some(m) = raw.strip_suffix("-R12") {
            return Ok(Period::Rolling12(month(m)?));
        }
        match raw.split_once('-') {
            None => Ok(Period::Year(year(raw)?)),
            Some((y, "Q1" | "Q2" | "Q3" | "Q4")) => Ok(Period::Quarter(
                year(y)?,
                u32::from(raw.as_bytes()[6] - b'0'),
            )),
            Some((y, "H1" | "H2")) => Ok(Period::HalfYear(
                year(y)?,
                u32::from(raw.as_bytes()[6] - b'0'),
            )),
            Some(_) => Ok(Period::Month(month(raw)?)),
        }
    }

    pub fn kind(self) -> PeriodKind {
        match self {
            Period::Month(_) => PeriodKind::Month,
            Period::Quarter(..) => PeriodKind::Quarter,
            Period::HalfYear(..) => PeriodKind::HalfYear,
            Period::Year(_) => PeriodKind::Year,
            Period::Rolling12(_) => PeriodKind::Rolling12,
        }
    }

    /// First and last month, inclusive.
    pub fn bounds(self) -> (Month, Month) {
        let at = |y: i32, m: u32| Month(y * 12 + m as i32 - 1);
        match self {
            Period::Month(m) => (m, m),
            Period::Quarter(y, q) => (at(y, q * 3 - 2), at(y, q * 3)),
            Period::HalfYear(y, h) => (at(y, h * 6 - 5), at(y, h * 6)),
            Period::Year(y) => (at(y, 1), at(y, 12)),
            Period::Rolling12(m) => (m.plus(-11), m),
        }
    }

    pub fn first(self) -> Month {
        self.bounds().0
    }

    pub fn last(self) -> Month {
        self.bounds().1
    }

    pub fn months(self) -> impl Iterator<Item = Month> {
        let (a, b) = self.bounds();
        (a.0..=b.0).map(Month)
    }

    /// The same period shifted by whole months.
    fn shifted(self, months: i32) -> Period {
        match self {
            Period::Month(m) => Period::Month(m.plus(months)),
            Period::Rolling12(m) => Period::Rolling12(m.plus(months)),
            other => other.kind().containing(other.last().plus(months)),
        }
    }

    /// The same period a year earlier (year-on-year, 同比).
    pub fn year_ago(self) -> Period {
        self.shifted(-12)
    }

    /// The period just before (period-on-period, 环比).
    pub fn previous(self) -> Period {
        let len = self.last().0 - self.first().0 + 1;
        self.shifted(-len)
    }

    pub fn label_zh(self) -> String {
        match self {
            Period::Month(m) => format!("{}年{}月", m.year(), m.month()),
            Period::Quarter(y, q) => format!("{y}年第{q}季度"),
            Period::HalfYear(y, 1) => format!("{y}年上半年"),
            Period::HalfYear(y, _) => format!("{y}年下半年"),
            Period::Year(y) => format!("{y}年"),
            Period::Rolling12(m) => format!("截至{}年{}月的12个月", m.year(), m.month()),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Month(m) => write!(f, "{m}"),
            Period::Quarter(y, q) => write!(f, "{y}-Q{q}"),
            Period::HalfYear(y, h) => write!(f, "{y}-H{h}"),
            Period::Year(y) => write!(f, "{y}"),
            Period::Rolling12(m) => write!(f, "{m}-R12"),
        }
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Period {
        Period::parse("period", s).unwrap()
    }

    #[test]
    fn every_written_form_parses_and_prints_back() {
        for s in [
            "2025-03",
            "2025-Q1",
            "2025-Q4",
            "2025-H1",
            "2025-H2",
            "2025",
            "2025-03-R12",
        ] {
            assert_eq!(p(s).to_string(), s);
        }
        for bad in [
            "",
            "25",
            "2025-13",
            "2025-Q5",
            "2025-H3",
            "2025-3",
            "x-03",
            "2025-03-R1",
        ] {
            let e = Period::parse("period", bad).unwrap_err();
            assert_eq!((e.field.as_str(), e.code), ("period", "period"), "{bad}");
        }
    }

    #[test]
    fn bounds_comparisons_and_labels() {
        let q = p("2025-Q2");
        assert_eq!(
            q.bounds(),
            (Month::new(2025, 4).unwrap(), Month::new(2025, 6).unwrap())
        );
        assert_eq!(q.previous().to_string(), "2025-Q1");
        assert_eq!(p("2025-Q1").previous().to_string(), "2024-Q4");
        assert_eq!(q.year_ago().to_string(), "2024-Q2");
        assert_eq!(p("2025-H1").previous().to_string(), "2024-H2");
        assert_eq!(p("2025").previous().to_string(), "2024");
        assert_eq!(p("2025-01").previous().to_string(), "2024-12");
        let r = p("2025-03-R12");
        assert_eq!(r.first().to_string(), "2024-04");
        assert_eq!(r.months().count(), 12);
        assert_eq!(r.year_ago().to_string(), "2024-03-R12");
        assert_eq!(p("2025-H2").label_zh(), "2025年下半年");
        assert_eq!(Month::of_day("2025-03-31 23:59:00"), Month::new(2025, 3));
        assert_eq!(Month::new(2025, 12).unwrap().end_day(), "2026-01-01");
    }
}
