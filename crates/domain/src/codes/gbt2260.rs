//! GB/T 2260 administrative division codes (中华人民共和国行政区划代码).
//!
//! A code is six digits: province level (1–2), prefecture level (3–4) and county level (5–6),
//! a level being `00` when the code stops above it.
//!
//! Validation is structural plus province-level on purpose: six ASCII digits, a province-level
//! prefix that exists (all 34, Taiwan, Hong Kong and Macao included) and no county part under
//! an empty prefecture part. Whether a given prefecture or county code exists is *not*
//! checked: divisions are created, merged and renumbered every year, and identity numbers and
//! registrations keep the code that was current when they were issued, so a code that is no
//! longer in today's list is still a legitimate value here.
//!
//! For the same reason the name table is partial on purpose: a full, versioned list of
//! divisions is data to be loaded, not code. It holds every province, the prefecture-level
//! cities of Zhejiang and the county-level divisions of Jinhua and Zibo (the pilot cities),
//! and [`DivisionCode::name`] is `None` for anything else.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;

/// A structurally valid GB/T 2260 division code, six ASCII digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct DivisionCode(String);

/// Province-level divisions (省级行政区): the two leading digits and the name.
const PROVINCES: &[(&str, &str)] = &[
    ("11", "北京市"),
    ("12", "天津市"),
    ("13", "河北省"),
    ("14", "山西省"),
    ("15", "内蒙古自治区"),
    ("21", "辽宁省"),
    ("22", "吉林省"),
    ("23", "黑龙江省"),
    ("31", "上海市"),
    ("32", "江苏省"),
    ("33", "浙江省"),
    ("34", "安徽省"),
    ("35", "福建省"),
    ("36", "江西省"),
    ("37", "山东省"),
    ("41", "河南省"),
    ("42", "湖北省"),
    ("43", "湖南省"),
    ("44", "广东省"),
    ("45", "广西壮族自治区"),
    ("46", "海南省"),
    ("50", "重庆市"),
    ("51", "四川省"),
    ("52", "贵州省"),
    ("53", "云南省"),
    ("54", "西藏自治区"),
    ("61", "陕西省"),
    ("62", "甘肃省"),
    ("63", "青海省"),
    ("64", "宁夏回族自治区"),
    ("65", "新疆维吾尔自治区"),
    ("71", "台湾省"),
    ("81", "香港特别行政区"),
    ("82", "澳门特别行政区"),
];

/// Names below province level that the pilot needs; sorted by code for binary search.
const NAMES: &[(&str, &str)] = &[
    ("330100", "杭州市"),
    ("330200", "宁波市"),
    ("330300", "温州市"),
    ("330400", "嘉兴市"),
    ("330500", "湖州市"),
    ("330600", "绍兴市"),
    ("330700", "金华市"),
    ("330702", "婺城区"),
    ("330703", "金东区"),
    ("330723", "武义县"),
    ("330726", "浦江县"),
    ("330727", "磐安县"),
    ("330781", "兰溪市"),
    ("330782", "义乌市"),
    ("330783", "东阳市"),
    ("330784", "永康市"),
    ("330800", "衢州市"),
    ("330900", "舟山市"),
    ("331000", "台州市"),
    ("331100", "丽水市"),
    ("370300", "淄博市"),
    ("370302", "淄川区"),
    ("370303", "张店区"),
    ("370304", "博山区"),
    ("370305", "临淄区"),
    ("370306", "周村区"),
    ("370321", "桓台县"),
    ("370322", "高青县"),
    ("370323", "沂源县"),
];

/// GB 32100 puts this in the division position for registration authorities of the central
/// government; it is not a GB/T 2260 code, so [`DivisionCode::parse`] refuses it and only
/// [`crate::codes::Uscc::division_code`] can produce it.
pub(crate) const NATIONAL: &str = "100000";

fn province_name_of(two_digits: &str) -> Option<&'static str> {
    PROVINCES
        .iter()
        .find(|(code, _)| *code == two_digits)
        .map(|(_, name)| *name)
}

/// Checks a code that the caller has already trimmed. Shared with the identity number and
/// credit code parsers, which embed a division code.
pub(crate) fn check(field: &str, code: &str) -> Result<(), FieldError> {
    let len = code.chars().count();
    if len != 6 {
        return Err(FieldError::new(
            field,
            "length",
            format!("行政区划代码应为 6 位数字，实际为 {len} 位"),
            format!("a division code has 6 digits, not {len}"),
        ));
    }
    if let Some(bad) = code.chars().find(|c| !c.is_ascii_digit()) {
        return Err(FieldError::new(
            field,
            "charset",
            format!("行政区划代码只能由数字组成，不能包含“{bad}”"),
            format!("a division code has digits only, not '{bad}'"),
        ));
    }
    let province = &code[..2];
    if province_name_of(province).is_none() {
        return Err(FieldError::new(
            field,
            "province",
            format!("前两位“{province}”不是省级行政区划代码"),
            format!("'{province}' (the first two digits) is not a province-level division code"),
        ));
    }
    if &code[2..4] == "00" && &code[4..] != "00" {
        return Err(FieldError::new(
            field,
            "structure",
            format!(
                "地级代码（第 3–4 位）为 00 时县级代码（第 5–6 位）也须为 00，实际为“{}”",
                &code[4..]
            ),
            format!(
                "digits 5–6 must be 00 when digits 3–4 are 00, not '{}'",
                &code[4..]
            ),
        ));
    }
    Ok(())
}

impl DivisionCode {
    /// Parses a GB/T 2260 code typed or imported by a person; surrounding blanks are ignored.
    pub fn parse(field: &str, raw: &str) -> Result<DivisionCode, FieldError> {
        let code = raw.trim();
        if code.is_empty() {
            return Err(FieldError::required(field));
        }
        check(field, code)?;
        Ok(DivisionCode(code.to_owned()))
    }

    /// Wraps six characters that a caller in this module tree has already validated.
    pub(crate) fn from_validated(code: &str) -> DivisionCode {
        DivisionCode(code.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The two province-level digits.
    pub fn province_code(&self) -> &str {
        &self.0[..2]
    }

    /// The code of the prefecture this code belongs to (first four digits and `00`); for a
    /// province-level code that is the province code itself.
    pub fn prefecture_code(&self) -> String {
        format!("{}00", &self.0[..4])
    }

    /// A province-level code (`xx0000`).
    pub fn is_province(&self) -> bool {
        self.0.ends_with("0000") && !self.is_national()
    }

    /// A prefecture-level code (`xxxx00`, not `xx0000`).
    pub fn is_prefecture(&self) -> bool {
        self.0.ends_with("00") && !self.0.ends_with("0000")
    }

    /// A county-level code (the last two digits are not `00`).
    pub fn is_county(&self) -> bool {
        !self.0.ends_with("00")
    }

    /// The central-government pseudo-code `100000` carried by some credit codes.
    pub fn is_national(&self) -> bool {
        self.0 == NATIONAL
    }

    pub fn province_name(&self) -> Option<&'static str> {
        province_name_of(self.province_code())
    }

    /// The name of this division if it is in the embedded (partial) table.
    pub fn name(&self) -> Option<&'static str> {
        if self.is_national() {
            return Some("全国");
        }
        if self.is_province() {
            return self.province_name();
        }
        NAMES
            .binary_search_by(|(code, _)| (*code).cmp(self.0.as_str()))
            .ok()
            .map(|i| NAMES[i].1)
    }
}

impl fmt::Display for DivisionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DivisionCode {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DivisionCode::parse("division_code", s)
    }
}

impl TryFrom<String> for DivisionCode {
    type Error = FieldError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        DivisionCode::parse("division_code", &s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(raw: &str) -> &'static str {
        DivisionCode::parse("division_code", raw).unwrap_err().code
    }

    #[test]
    fn county_of_jinhua() {
        let c = DivisionCode::parse("division_code", "330702").unwrap();
        assert_eq!(c.as_str(), "330702");
        assert_eq!(c.to_string(), "330702");
        assert_eq!(c.name(), Some("婺城区"));
        assert_eq!(c.province_code(), "33");
        assert_eq!(c.province_name(), Some("浙江省"));
        assert_eq!(c.prefecture_code(), "330700");
        assert!(c.is_county());
        assert!(!c.is_prefecture());
        assert!(!c.is_province());
    }

    #[test]
    fn prefecture_jinhua() {
        let c = DivisionCode::parse("division_code", " 330700\t").unwrap();
        assert_eq!(c.as_str(), "330700");
        assert!(c.is_prefecture());
        assert!(!c.is_province());
        assert!(!c.is_county());
        assert_eq!(c.name(), Some("金华市"));
        assert_eq!(c.prefecture_code(), "330700");
    }

    #[test]
    fn province_level() {
        let c = DivisionCode::parse("division_code", "370000").unwrap();
        assert!(c.is_province());
        assert!(!c.is_prefecture());
        assert_eq!(c.name(), Some("山东省"));
        let zibo = DivisionCode::parse("division_code", "370303").unwrap();
        assert_eq!(zibo.name(), Some("张店区"));
        assert_eq!(zibo.province_name(), Some("山东省"));
    }

    #[test]
    fn rejects_malformed_codes() {
        assert_eq!(code_of("990000"), "province");
        assert_eq!(code_of("000000"), "province");
        assert_eq!(code_of("100000"), "province");
        assert_eq!(code_of("12345"), "length");
        assert_eq!(code_of("1234567"), "length");
        assert_eq!(code_of("3307a2"), "charset");
        assert_eq!(code_of("３３０７０２"), "charset");
        assert_eq!(code_of("330002"), "structure");
        assert_eq!(code_of("  "), "required");
    }

    #[test]
    fn errors_name_the_field_in_both_languages() {
        let e = DivisionCode::parse("unit.division", "990000").unwrap_err();
        assert_eq!(e.field, "unit.division");
        assert!(e.message_zh.contains("99"));
        assert!(e.message_en.contains("99"));
        let e = DivisionCode::parse("x", "330002").unwrap_err();
        assert!(e.message_zh.contains("02") && e.message_en.contains("02"));
    }

    #[test]
    fn every_province_is_accepted_and_named() {
        assert_eq!(PROVINCES.len(), 34);
        for (code, name) in PROVINCES {
            let c = DivisionCode::parse("p", &format!("{code}0000")).unwrap();
            assert_eq!(c.name(), Some(*name));
            assert!(c.is_province());
        }
        for special in ["710000", "810000", "820000"] {
            assert!(DivisionCode::parse("p", special).is_ok(), "{special}");
        }
    }

    #[test]
    fn unknown_but_well_formed_codes_are_valid_without_name() {
        // Existence below province level is not checked (see the module comment).
        let c = DivisionCode::parse("d", "330799").unwrap();
        assert_eq!(c.name(), None);
        assert_eq!(c.province_name(), Some("浙江省"));
    }

    #[test]
    fn name_table_is_sorted_valid_and_complete_for_zhejiang() {
        assert!(NAMES.windows(2).all(|w| w[0].0 < w[1].0));
        for (code, _) in NAMES {
            let c = DivisionCode::parse("n", code).unwrap();
            assert!(!c.is_province(), "{code}");
        }
        let zhejiang: Vec<&str> = NAMES
            .iter()
            .filter(|(c, _)| c.starts_with("33") && c.ends_with("00"))
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(
            zhejiang,
            [
                "杭州市",
                "宁波市",
                "温州市",
                "嘉兴市",
                "湖州市",
                "绍兴市",
                "金华市",
                "衢州市",
                "舟山市",
                "台州市",
                "丽水市"
            ]
        );
        let jinhua = NAMES.iter().filter(|(c, _)| c.starts_with("3307")).count();
        assert_eq!(jinhua, 10); // the city and its nine county-level divisions
        let zibo = NAMES.iter().filter(|(c, _)| c.starts_with("3703")).count();
        assert_eq!(zibo, 9); // the city and its eight county-level divisions
    }

    #[test]
    fn national_pseudo_code() {
        let n = DivisionCode::from_validated(NATIONAL);
        assert!(n.is_national());
        assert!(!n.is_province());
        assert_eq!(n.province_name(), None);
        assert_eq!(n.name(), Some("全国"));
    }

    #[test]
    fn from_str_and_ordering() {
        let a: DivisionCode = "330702".parse().unwrap();
        let b: DivisionCode = "330703".parse().unwrap();
        assert!(a < b);
        assert!("33070".parse::<DivisionCode>().is_err());
    }
}
