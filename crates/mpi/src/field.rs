//! What a column holds, and each value brought to the one form comparisons work on: full-width
//! characters folded, case and spacing ignored, dates parsed, citizen IDs validated (a 15-digit
//! one upgraded), names read in pinyin.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use medgrid_domain::codes::gb11643::CitizenId;

use crate::pinyin;

/// The kinds of column the engine knows how to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// A whole personal name (Chinese names are written surname first, without a space).
    Name,
    Surname,
    GivenName,
    BirthDate,
    Sex,
    Phone,
    Address,
    Postcode,
    /// A GB 11643 citizen identity number.
    CitizenId,
    /// Any other identifier: passport, insurance card, a unit's record number.
    OtherId,
    Text,
}

impl FieldKind {
    pub const ALL: [FieldKind; 11] = [
        FieldKind::Name,
        FieldKind::Surname,
        FieldKind::GivenName,
        FieldKind::BirthDate,
        FieldKind::Sex,
        FieldKind::Phone,
        FieldKind::Address,
        FieldKind::Postcode,
        FieldKind::CitizenId,
        FieldKind::OtherId,
        FieldKind::Text,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Name => "name",
            FieldKind::Surname => "surname",
            FieldKind::GivenName => "given_name",
            FieldKind::BirthDate => "birth_date",
            FieldKind::Sex => "sex",
            FieldKind::Phone => "phone",
            FieldKind::Address => "address",
            FieldKind::Postcode => "postcode",
            FieldKind::CitizenId => "citizen_id",
            FieldKind::OtherId => "other_id",
            FieldKind::Text => "text",
        }
    }

    pub fn parse(raw: &str) -> Option<FieldKind> {
        let t = raw.trim();
        FieldKind::ALL.into_iter().find(|k| k.as_str() == t)
    }

    /// Names are compared on characters and on readings, and a match on a common one means
    /// less than on a rare one.
    pub fn is_name(self) -> bool {
        matches!(
            self,
            FieldKind::Name | FieldKind::Surname | FieldKind::GivenName
        )
    }
}

impl fmt::Display for FieldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value ready to compare. An empty `norm` is a missing value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Value {
    /// The normalised text: what "exact" compares and term frequencies count.
    pub norm: Box<str>,
    /// `norm` as characters, so that edit distances count characters, not bytes.
    pub chars: Box<[char]>,
    /// Birth dates that parse.
    pub date: Option<NaiveDate>,
    /// Names in Chinese characters: every plausible full pinyin reading, the surname read as a
    /// surname; the first is the usual one.
    pub readings: Box<[Box<str>]>,
    /// Citizen IDs: whether the number passed GB 11643 (an invalid one is kept as received
    /// and never taken as proof of identity).
    pub valid: bool,
}

impl Value {
    pub fn is_missing(&self) -> bool {
        self.norm.is_empty()
    }

    /// Prepares a raw value of `kind`.
    pub fn new(kind: FieldKind, raw: &str) -> Value {
        let folded = fold(raw);
        let norm: String = match kind {
            FieldKind::Name | FieldKind::Surname | FieldKind::GivenName => {
                folded.chars().filter(|c| c.is_alphanumeric()).collect()
            }
            FieldKind::Phone => {
                let digits: String = folded.chars().filter(char::is_ascii_digit).collect();
                // A mainland mobile written with the country code is the same number.
                match digits.strip_prefix("86") {
                    Some(rest) if digits.len() == 13 => rest.to_owned(),
                    _ => digits,
                }
            }
            FieldKind::Postcode | FieldKind::OtherId | FieldKind::CitizenId => folded
                .chars()
                .filter(|c| c.is_alphanumeric())
                .map(|c| c.to_ascii_uppercase())
                .collect(),
            FieldKind::Sex => match folded.as_str() {
                "m" | "male" | "男" | "1" => "M".to_owned(),
                "f" | "female" | "女" | "2" => "F".to_owned(),
                other => other.to_owned(),
            },
            FieldKind::BirthDate | FieldKind::Address | FieldKind::Text => folded,
        };
        let mut v = Value::default();
        match kind {
            FieldKind::CitizenId if !norm.is_empty() => match CitizenId::parse("citizen_id", &norm)
            {
                Ok(id) => {
                    v.valid = true;
                    v.norm = id.as_str().into();
                }
                Err(_) => v.norm = norm.into(),
            },
            FieldKind::BirthDate if !norm.is_empty() => {
                v.date = parse_date(&norm);
                // Compared as eight digits, so that a one-digit slip is one edit.
                v.norm = match v.date {
                    Some(d) => d.format("%Y%m%d").to_string().into(),
                    None => norm.into(),
                };
            }
            _ => v.norm = norm.into(),
        }
        v.chars = v.norm.chars().collect();
        if kind.is_name() && v.chars.iter().any(|c| pinyin::is_han(*c)) {
            v.readings = pinyin::readings(&v.chars, kind != FieldKind::GivenName);
        }
        v
    }

    /// The usual pinyin reading of a Chinese name, else the name itself: the blocking key
    /// that survives homophones typed at a registration desk.
    pub fn sound(&self) -> &str {
        self.readings.first().map_or(&*self.norm, |r| r)
    }
}

/// Full-width forms to their ASCII twins, ASCII lowercased, spaces collapsed: what clerks and
/// input methods vary without meaning anything.
fn fold(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut space = false;
    for c in raw.trim().chars() {
        let c = match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        };
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn parse_date(t: &str) -> Option<NaiveDate> {
    ["%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(t, f).ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn values_are_brought_to_one_form() {
        assert_eq!(&*Value::new(FieldKind::Name, " 王　伟 ").norm, "王伟");
        assert_eq!(
            &*Value::new(FieldKind::Phone, "+86 138-0000-0000").norm,
            "13800000000"
        );
        assert_eq!(&*Value::new(FieldKind::OtherId, "ｅ１２３４").norm, "E1234");
        assert_eq!(&*Value::new(FieldKind::Sex, "女").norm, "F");
        let d = Value::new(FieldKind::BirthDate, "1950/1/2");
        assert_eq!(d.date, NaiveDate::from_ymd_opt(1950, 1, 2));
        assert_eq!(&*d.norm, "19500102");
        assert!(Value::new(FieldKind::Text, "  ").is_missing());
    }

    #[test]
    fn citizen_ids_are_validated_and_upgraded() {
        // The standard's own example number.
        let v = Value::new(FieldKind::CitizenId, "11010519491231002x");
        assert!(v.valid);
        assert_eq!(&*v.norm, "11010519491231002X");
        let old = Value::new(FieldKind::CitizenId, "110105491231002");
        assert!(old.valid);
        assert_eq!(
            old.norm, v.norm,
            "a 15-digit number is the same person's 18-digit one"
        );
        let typo = Value::new(FieldKind::CitizenId, "110105194912310021");
        assert!(!typo.valid, "a wrong check character is flagged");
        assert_eq!(&*typo.norm, "110105194912310021", "and kept as received");
    }

    #[test]
    fn kinds_parse_by_their_names() {
        for k in FieldKind::ALL {
            assert_eq!(FieldKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(FieldKind::parse("dob"), None);
    }
}
