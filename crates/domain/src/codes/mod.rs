//! Validators for the national codes that identify people, places and organisations.
//!
//! - [`gbt2260`]: GB/T 2260 administrative division codes (行政区划代码);
//! - [`gb11643`]: GB 11643 citizen identity numbers (公民身份号码);
//! - [`gb32100`]: GB 32100 unified social credit codes (统一社会信用代码);
//! - [`icd10`]: ICD-10 diagnosis codes and code ranges.
//!
//! Each code is a newtype that can only be obtained through its validating `parse` (or a
//! `build` that computes the check characters), so holding one means it is well-formed. All
//! failures are [`FieldError`](crate::error::FieldError)s naming the caller's field, with a
//! stable `code` and messages in Chinese and English.

pub mod gb11643;
pub mod gb32100;
pub mod gbt2260;
pub mod icd10;

pub use gb11643::CitizenId;
pub use gb32100::{ParsedUscc, Uscc};
pub use gbt2260::DivisionCode;
pub use icd10::{Icd10, Icd10Range};

use serde::{Deserialize, Serialize};

/// Sex as coded by GB/T 2261.1
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
}

impl Sex {
    /// The GB/T 2261.1 code: 1 male, 2 female.
    pub fn code(self) -> u8 {
        match self {
            Sex::Male => 1,
            Sex::Female => 2,
        }
    }

    /// The sex for a GB/T 2261.1 code; 0 (unknown) and 9 (unstated) have no [`Sex`].
    pub fn from_code(code: u8) -> Option<Sex> {
        match code {
            1 => Some(Sex::Male),
            2 => Some(Sex::Female),
            _ => None,
        }
    }

    /// Label for people (zh-CN).
    pub fn label_zh(self) -> &'static str {
        match self {
            Sex::Male => "男",
            Sex::Female => "女",
        }
    }

    /// Stable identifier (API, files, database); the same as the serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sex_codes_and_labels() {
        assert_eq!(Sex::Male.code(), 1);
        assert_eq!(Sex::Female.code(), 2);
        assert_eq!(Sex::from_code(1), Some(Sex::Male));
        assert_eq!(Sex::from_code(2), Some(Sex::Female));
        assert_eq!(Sex::from_code(0), None);
        assert_eq!(Sex::from_code(9), None);
        assert_eq!(Sex::Male.label_zh(), "男");
        assert_eq!(Sex::Female.label_zh(), "女");
        assert_eq!(Sex::Male.as_str(), "male");
        assert_eq!(Sex::Female.as_str(), "female");
    }

    /// serde_json is not a dependency of this crate, but csv is and drives serde the same way.
    fn to_csv<T: Serialize>(value: &T) -> String {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        w.serialize(value).unwrap();
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    }

    fn from_csv<T: serde::de::DeserializeOwned>(line: &str) -> Result<T, csv::Error> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line.as_bytes())
            .deserialize()
            .next()
            .unwrap()
    }

    #[test]
    fn codes_serialize_as_plain_strings() {
        let id = CitizenId::parse("id", "11010519491231002x").unwrap();
        let uscc = Uscc::parse("uscc", "91350100M000100Y43").unwrap().code;
        let div = DivisionCode::parse("div", "330702").unwrap();
        assert_eq!(
            to_csv(&(&id, &uscc, &div, Sex::Female)),
            "11010519491231002X,91350100M000100Y43,330702,female\n"
        );
    }

    #[test]
    fn codes_deserialize_only_when_valid() {
        let (id, uscc, div, sex): (CitizenId, Uscc, DivisionCode, Sex) =
            from_csv("11010519491231002X,91350100M000100Y43,330702,male\n").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(uscc.as_str(), "91350100M000100Y43");
        assert_eq!(div.as_str(), "330702");
        assert_eq!(sex, Sex::Male);

        assert!(from_csv::<(DivisionCode,)>("990000\n").is_err());
        assert!(from_csv::<(CitizenId,)>("110105194912310021\n").is_err());
        assert!(from_csv::<(Uscc,)>("91350100M000100Y4\n").is_err());
        assert!(from_csv::<(Sex,)>("男\n").is_err());
    }
}
