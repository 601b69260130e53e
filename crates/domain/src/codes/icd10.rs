//! ICD-10 diagnosis codes and code ranges, as referral catalogues (R4.1) and indicator
//! definitions name them: `I10`, `E11.9`, the Chinese national clinical extension `I10.x00`,
//! and ranges such as `I10-I15` or `E11-E14.9`.

use std::cmp::Ordering;
use std::fmt;

use serde::{Serialize, Serializer};

use crate::error::FieldError;

/// A well-formed ICD-10 code: a letter, two digits, and optionally a point and up to four
/// more characters (digits, or `x` as the national extension writes them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Icd10(String);

impl Icd10 {
    pub fn parse(field: &str, raw: &str) -> Result<Icd10, FieldError> {
        let code = raw.trim().to_ascii_uppercase();
        let bad = || {
            FieldError::new(
                field,
                "icd10_format",
                format!(
                    "“{}”不是有效的ICD-10编码（如 I10、E11.9、I10.x00）",
                    raw.trim()
                ),
                format!(
                    "'{}' is not an ICD-10 code (e.g. I10, E11.9, I10.x00)",
                    raw.trim()
                ),
            )
        };
        let b = code.as_bytes();
        if b.len() < 3
            || !b[0].is_ascii_uppercase()
            || !b[1].is_ascii_digit()
            || !b[2].is_ascii_digit()
        {
            return Err(bad());
        }
        match &b[3..] {
            [] => {}
            [b'.', rest @ ..]
                if (1..=4).contains(&rest.len())
                    && rest.iter().all(|c| c.is_ascii_digit() || *c == b'X') => {}
            _ => return Err(bad()),
        }
        // The national extension writes a lower-case x: keep the conventional spelling.
        Ok(Icd10(code.replace('X', "x")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The category: letter and two digits (`E11` of `E11.9`).
    pub fn category(&self) -> &str {
        &self.0[..3]
    }

    /// Comparable key: category, then the subdivision digits (`x` sorts first).
    fn key(&self) -> (&str, &str) {
        (self.category(), self.0.get(4..).unwrap_or(""))
    }
}

impl fmt::Display for Icd10 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Icd10 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A code or an inclusive range of codes. A bound without subdivision covers its whole
/// category: `I10-I15` includes `I15.9`, `E11` includes `E11.9` and `E11.x00`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Icd10Range {
    pub from: Icd10,
    pub to: Icd10,
}

impl Icd10Range {
    pub fn parse(field: &str, raw: &str) -> Result<Icd10Range, FieldError> {
        let (a, b) = match raw.split_once(['-', '–', '~']) {
            Some((a, b)) => (a, b),
            None => (raw, raw),
        };
        let from = Icd10::parse(field, a)?;
        let to = Icd10::parse(field, b)?;
        if cmp_low(&to, &from) == Ordering::Less {
            return Err(FieldError::new(
                field,
                "icd10_range_order",
                format!("编码范围“{}”起点大于终点", raw.trim()),
                format!("the range '{}' ends before it starts", raw.trim()),
            ));
        }
        Ok(Icd10Range { from, to })
    }

    pub fn contains(&self, code: &Icd10) -> bool {
        cmp_low(code, &self.from) != Ordering::Less && !above_high(code, &self.to)
    }
}

/// Orders `code` against a lower bound: a bound's missing subdivision is the lowest.
fn cmp_low(code: &Icd10, bound: &Icd10) -> Ordering {
    code.key().cmp(&bound.key())
}

/// Whether `code` lies beyond an upper bound: a bound without subdivision covers its whole
/// category, one with a subdivision covers the codes that begin with it.
fn above_high(code: &Icd10, bound: &Icd10) -> bool {
    let (cat, sub) = code.key();
    let (bcat, bsub) = bound.key();
    match cat.cmp(bcat) {
        Ordering::Less => false,
        Ordering::Greater => true,
        Ordering::Equal => !bsub.is_empty() && !sub.starts_with(bsub) && sub > bsub,
    }
}

impl fmt::Display for Icd10Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "{}", self.from)
        } else {
            write!(f, "{}-{}", self.from, self.to)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> Icd10 {
        Icd10::parse("diagnosis", s).unwrap()
    }

    fn range(s: &str) -> Icd10Range {
        Icd10Range::parse("codes", s).unwrap()
    }

    #[test]
    fn codes_of_both_spellings_are_read() {
        assert_eq!(code("i10").as_str(), "I10");
        assert_eq!(code(" E11.9 ").as_str(), "E11.9");
        assert_eq!(code("I10.X00").as_str(), "I10.x00");
        assert_eq!(code("E11.9").category(), "E11");
        for bad in [
            "",
            "10",
            "I1",
            "II0",
            "I10.",
            "I10.12345",
            "I10-9",
            "高血压",
        ] {
            let e = Icd10::parse("diagnosis", bad).unwrap_err();
            assert_eq!(
                (e.field.as_str(), e.code),
                ("diagnosis", "icd10_format"),
                "{bad}"
            );
        }
    }

    #[test]
    fn ranges_cover_whole_categories_at_their_ends() {
        let r = range("I10-I15");
        for inside in ["I10", "I10.x00", "I12.9", "I15", "I15.9"] {
            assert!(r.contains(&code(inside)), "{inside}");
        }
        for outside in ["I09.9", "I16", "I20.0", "H10", "J10"] {
            assert!(!r.contains(&code(outside)), "{outside}");
        }
        let one = range("E11");
        assert!(one.contains(&code("E11.9")) && one.contains(&code("E11")));
        assert!(!one.contains(&code("E12")));
        let sub = range("E11.2-E11.5");
        assert!(sub.contains(&code("E11.3")) && sub.contains(&code("E11.5")));
        assert!(
            sub.contains(&code("E11.51")),
            "a subdivision of the upper bound"
        );
        assert!(!sub.contains(&code("E11.1")) && !sub.contains(&code("E11.6")));
        assert_eq!(range("I10–I15").to_string(), "I10-I15");
        assert_eq!(
            Icd10Range::parse("codes", "I15-I10").unwrap_err().code,
            "icd10_range_order"
        );
    }
}
