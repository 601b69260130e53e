//! GB 11643 citizen identity numbers (公民身份号码).
//!
//! 18 characters: the GB/T 2260 division code of the place of first registration (1–6), the
//! birth date `YYYYMMDD` (7–14), a sequence number whose last digit is odd for men and even
//! for women (15–17), and a check character by ISO 7064 MOD 11-2 (18), `X` standing for 10.
//!
//! The division code is checked only structurally and at province level (see
//! [`super::gbt2260`]): a number keeps the code of the place where it was first issued even
//! after that division is abolished, so a complete current list would reject real people.
//!
//! First-generation numbers had 15 digits (no century, no check character). They are
//! accepted and upgraded to the 18-character form, which is the only form stored.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::gbt2260::{self, DivisionCode};
use super::Sex;
use crate::error::FieldError;

/// A valid citizen identity number in its 18-character form, check character `X` uppercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct CitizenId(String);

/// 2^(17 − i) mod 11 for positions 1–17: the ISO 7064 MOD 11-2 weights.
const WEIGHTS: [usize; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// The check character for each remainder of the weighted sum modulo 11.
const CHECK_CHARACTERS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// The first year accepted in a birth date. Identity numbers were introduced in 1984 and the
/// oldest people ever verified were born in the 1870s, so anything earlier is a typing error,
/// not a very old person.
const EARLIEST_BIRTH_YEAR: i32 = 1800;

/// The ISO 7064 MOD 11-2 check character of the first 17 digits of an identity number, or
/// `None` if `first17` is not exactly 17 ASCII digits.
pub fn check_character(first17: &str) -> Option<char> {
    if first17.len() != 17 || !first17.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: usize = first17
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| usize::from(b - b'0') * w)
        .sum();
    CHECK_CHARACTERS.get(sum % 11).copied()
}

/// The value of a run of ASCII digits (the caller has checked that they are digits).
fn number(digits: &str) -> u32 {
    digits
        .bytes()
        .fold(0, |n, b| n * 10 + u32::from(b.wrapping_sub(b'0')))
}

fn date_of(yyyymmdd: &str) -> Option<NaiveDate> {
    if yyyymmdd.len() != 8 {
        return None;
    }
    let year = i32::try_from(number(&yyyymmdd[..4])).ok()?;
    NaiveDate::from_ymd_opt(year, number(&yyyymmdd[4..6]), number(&yyyymmdd[6..]))
}

/// Re-labels an error of the embedded division code so that the person sees it is about the
/// first six digits of the identity number.
fn division_error(e: FieldError) -> FieldError {
    FieldError::new(
        e.field,
        "division_code",
        format!("身份号码前 6 位（行政区划代码）无效：{}", e.message_zh),
        format!(
            "the first 6 digits (division code) are invalid: {}",
            e.message_en
        ),
    )
}

/// Checks the birth date digits and returns the date.
fn birth_date_checked(field: &str, yyyymmdd: &str) -> Result<NaiveDate, FieldError> {
    match date_of(yyyymmdd) {
        Some(date) if date.year() >= EARLIEST_BIRTH_YEAR => Ok(date),
        Some(_) => Err(FieldError::new(
            field,
            "birth_date",
            format!("出生日期“{yyyymmdd}”早于 {EARLIEST_BIRTH_YEAR} 年"),
            format!("birth date '{yyyymmdd}' is before {EARLIEST_BIRTH_YEAR}"),
        )),
        None => Err(FieldError::new(
            field,
            "birth_date",
            format!("出生日期“{yyyymmdd}”不是有效日期（应为 YYYYMMDD）"),
            format!("birth date '{yyyymmdd}' is not a real date (YYYYMMDD)"),
        )),
    }
}

fn length_error(field: &str, len: usize) -> FieldError {
    FieldError::new(
        field,
        "length",
        format!("公民身份号码应为 18 位（或旧版 15 位），实际为 {len} 位"),
        format!("an identity number has 18 characters (or 15 in the old form), not {len}"),
    )
}

fn digits_error(field: &str, bad: char, position: usize) -> FieldError {
    FieldError::new(
        field,
        "charset",
        format!("第 {position} 位“{bad}”无效：公民身份号码除末位校验码外只能是数字"),
        format!(
            "character {position} '{bad}' is invalid: all but the check character must be digits"
        ),
    )
}

/// The position (1-based) and character of the first non-digit among `chars`.
fn first_non_digit(s: &str) -> Option<(usize, char)> {
    s.chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_digit())
        .map(|(i, c)| (i + 1, c))
}

/// Upgrades a 15-digit identity number (division, `YYMMDD`, sequence) to the 18-character
/// form: the century is 19, as for every number issued in the 15-digit era, and the check
/// character is computed.
pub fn upgrade_15(field: &str, raw: &str) -> Result<CitizenId, FieldError> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(FieldError::required(field));
    }
    let len = t.chars().count();
    if len != 15 {
        return Err(FieldError::new(
            field,
            "length",
            format!("旧版公民身份号码应为 15 位数字，实际为 {len} 位"),
            format!("an old-form identity number has 15 digits, not {len}"),
        ));
    }
    if let Some((position, bad)) = first_non_digit(t) {
        return Err(FieldError::new(
            field,
            "charset",
            format!("第 {position} 位“{bad}”无效：旧版 15 位公民身份号码只能是数字"),
            format!("character {position} '{bad}' is invalid: an old-form identity number has digits only"),
        ));
    }
    gbt2260::check(field, &t[..6]).map_err(division_error)?;
    let birth = format!("19{}", &t[6..12]);
    birth_date_checked(field, &birth)?;
    let first17 = format!("{}{}{}", &t[..6], birth, &t[12..]);
    let check = check_character(&first17).ok_or_else(|| length_error(field, len))?;
    Ok(CitizenId(format!("{first17}{check}")))
}

fn parse_18(field: &str, t: &str) -> Result<CitizenId, FieldError> {
    let id = t.to_ascii_uppercase();
    if let Some((position, bad)) = first_non_digit(&id).filter(|(p, _)| *p <= 17) {
        return Err(digits_error(field, bad, position));
    }
    let given = id.chars().last().unwrap_or(' ');
    if !(given.is_ascii_digit() || given == 'X') {
        return Err(FieldError::new(
            field,
            "charset",
            format!("第 18 位校验码“{given}”无效：应为数字或 X"),
            format!("the check character '{given}' is invalid: it must be a digit or X"),
        ));
    }
    // Everything is ASCII from here on, so byte slicing is by character.
    gbt2260::check(field, &id[..6]).map_err(division_error)?;
    birth_date_checked(field, &id[6..14])?;
    let expected = check_character(&id[..17]).ok_or_else(|| length_error(field, 18))?;
    if given != expected {
        return Err(FieldError::new(
            field,
            "check_digit",
            format!("校验码错误：第 18 位应为“{expected}”，实际为“{given}”，请核对号码"),
            format!(
                "wrong check character: the 18th character should be '{expected}', not '{given}'; please check the number"
            ),
        ));
    }
    Ok(CitizenId(id))
}

fn parse_until(field: &str, raw: &str, today: Option<NaiveDate>) -> Result<CitizenId, FieldError> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(FieldError::required(field));
    }
    let id = match t.chars().count() {
        18 => parse_18(field, t)?,
        15 => upgrade_15(field, t)?,
        len => return Err(length_error(field, len)),
    };
    if let Some(today) = today {
        let birth = id.birth_date();
        if birth > today {
            return Err(FieldError::new(
                field,
                "birth_date",
                format!("出生日期 {birth} 晚于今天（{today}）"),
                format!("birth date {birth} is after today ({today})"),
            ));
        }
    }
    Ok(id)
}

impl CitizenId {
    /// Parses an 18-character number (lowercase `x` accepted) or upgrades a 15-digit one.
    /// Deterministic: a birth date in the future is *not* rejected here, see [`Self::parse_at`].
    pub fn parse(field: &str, raw: &str) -> Result<CitizenId, FieldError> {
        parse_until(field, raw, None)
    }

    /// Like [`Self::parse`], and also rejects a birth date after `today`.
    pub fn parse_at(field: &str, raw: &str, today: NaiveDate) -> Result<CitizenId, FieldError> {
        parse_until(field, raw, Some(today))
    }

    /// [`Self::parse_at`] with today's date on the local clock, for input typed by people.
    pub fn parse_not_future(field: &str, raw: &str) -> Result<CitizenId, FieldError> {
        Self::parse_at(field, raw, chrono::Local::now().date_naive())
    }

    /// Assembles a valid number: `None` if the sequence is above 999, the division code is not
    /// a province-level-valid GB/T 2260 code, or the birth year is outside 1800–9999.
    pub fn build(division: &DivisionCode, birth: NaiveDate, sequence: u16) -> Option<CitizenId> {
        if sequence > 999 || !(EARLIEST_BIRTH_YEAR..=9999).contains(&birth.year()) {
            return None;
        }
        gbt2260::check("division_code", division.as_str()).ok()?;
        let first17 = format!(
            "{}{:04}{:02}{:02}{:03}",
            division.as_str(),
            birth.year(),
            birth.month(),
            birth.day(),
            sequence
        );
        let check = check_character(&first17)?;
        Some(CitizenId(format!("{first17}{check}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The division code of the place of first registration (digits 1–6).
    pub fn division_code(&self) -> DivisionCode {
        DivisionCode::from_validated(&self.0[..6])
    }

    /// The birth date (digits 7–14).
    pub fn birth_date(&self) -> NaiveDate {
        // parse and build only ever store a real date here, so the fallback is unreachable.
        date_of(&self.0[6..14]).unwrap_or(NaiveDate::MIN)
    }

    /// The sex coded by digit 17: odd for men, even for women.
    pub fn sex(&self) -> Sex {
        if number(&self.0[16..17]) % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// The sequence number (digits 15–17), including the sex digit.
    pub fn sequence(&self) -> &str {
        &self.0[14..17]
    }

    /// The number for lists and logs (脱敏): the first 6 and last 4 characters kept, the 8
    /// characters between them — essentially the birth date — replaced by `*`.
    pub fn masked(&self) -> String {
        format!("{}********{}", &self.0[..6], &self.0[14..])
    }
}

impl fmt::Display for CitizenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for CitizenId {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CitizenId::parse("citizen_id", s)
    }
}

impl TryFrom<String> for CitizenId {
    type Error = FieldError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        CitizenId::parse("citizen_id", &s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example printed in GB 11643-1999.
    const STANDARD_EXAMPLE: &str = "11010519491231002X";

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn err_code(raw: &str) -> &'static str {
        CitizenId::parse("id", raw).unwrap_err().code
    }

    /// `first17` completed with its correct check character.
    fn with_check(first17: &str) -> String {
        format!("{first17}{}", check_character(first17).unwrap())
    }

    #[test]
    fn standard_example_is_valid() {
        assert_eq!(check_character("11010519491231002"), Some('X'));
        let id = CitizenId::parse("id", STANDARD_EXAMPLE).unwrap();
        assert_eq!(id.as_str(), STANDARD_EXAMPLE);
        assert_eq!(id.to_string(), STANDARD_EXAMPLE);
        assert_eq!(id.division_code().as_str(), "110105");
        assert_eq!(id.division_code().province_name(), Some("北京市"));
        assert_eq!(id.birth_date(), date(1949, 12, 31));
        assert_eq!(id.sequence(), "002");
        assert_eq!(id.sex(), Sex::Female);
    }

    #[test]
    fn born_before_1900_is_valid() {
        let id = CitizenId::parse("id", "440524188001010014").unwrap();
        assert_eq!(id.birth_date(), date(1880, 1, 1));
        assert_eq!(id.sex(), Sex::Male);
        let ninety = CitizenId::parse("id", &with_check("11010518900101001")).unwrap();
        assert_eq!(ninety.birth_date(), date(1890, 1, 1));
    }

    #[test]
    fn check_character_matches_a_hand_computation() {
        // 440524188001010014: 4·7+4·9+0·10+5·5+2·8+4·4+1·2+8·1+8·6+0·3+0·7+1·9+0·10+1·5+0·8
        // +0·4+1·2 = 28+36+25+16+16+2+8+48+9+5+2 = 195; 195 mod 11 = 8 -> "10X98765432"[8] = '4'.
        assert_eq!(check_character("44052418800101001"), Some('4'));
        assert_eq!(check_character("4405241880010100"), None);
        assert_eq!(check_character("440524188001010014"), None);
        assert_eq!(check_character("4405241880010100X"), None);
        assert_eq!(check_character("４4052418800101001"), None);
    }

    #[test]
    fn every_single_digit_substitution_is_detected() {
        let valid = "44052418800101001";
        let original_check = check_character(valid).unwrap();
        let mut by_check_digit = 0;
        for position in 0..17 {
            for digit in b'0'..=b'9' {
                let mut bytes = valid.as_bytes().to_vec();
                if bytes[position] == digit {
                    continue;
                }
                bytes[position] = digit;
                let changed = String::from_utf8(bytes).unwrap();
                let new_check = check_character(&changed).unwrap();
                assert_ne!(new_check, original_check, "{changed}");
                let err =
                    CitizenId::parse("id", &format!("{changed}{original_check}")).unwrap_err();
                // A substitution that also breaks the province or the date is reported as such
                // (more specific); otherwise it must be caught by the check character.
                if CitizenId::parse("id", &format!("{changed}{new_check}")).is_ok() {
                    assert_eq!(err.code, "check_digit", "{changed}");
                    assert!(err.message_en.contains(&format!("'{new_check}'")));
                    by_check_digit += 1;
                } else {
                    assert!(
                        matches!(err.code, "division_code" | "birth_date"),
                        "{changed}"
                    );
                }
            }
        }
        assert!(
            by_check_digit > 100,
            "only {by_check_digit} substitutions reached the check"
        );
    }

    #[test]
    fn every_adjacent_transposition_is_detected() {
        for valid in [
            "44052418800101001",
            "11010519491231002",
            "33070219870625371",
        ] {
            let original_check = check_character(valid).unwrap();
            let mut by_check_digit = 0;
            for i in 0..16 {
                let mut bytes = valid.as_bytes().to_vec();
                if bytes[i] == bytes[i + 1] {
                    continue;
                }
                bytes.swap(i, i + 1);
                let swapped = String::from_utf8(bytes).unwrap();
                let new_check = check_character(&swapped).unwrap();
                assert_ne!(new_check, original_check, "{swapped}");
                let err =
                    CitizenId::parse("id", &format!("{swapped}{original_check}")).unwrap_err();
                if CitizenId::parse("id", &format!("{swapped}{new_check}")).is_ok() {
                    assert_eq!(err.code, "check_digit", "{swapped}");
                    by_check_digit += 1;
                } else {
                    assert!(
                        matches!(err.code, "division_code" | "birth_date"),
                        "{swapped}"
                    );
                }
            }
            assert!(by_check_digit >= 5, "{valid}: {by_check_digit}");
        }
    }

    #[test]
    fn wrong_check_character_names_the_expected_one() {
        let e = CitizenId::parse("patient.id", "110105194912310021").unwrap_err();
        assert_eq!(e.field, "patient.id");
        assert_eq!(e.code, "check_digit");
        assert!(e.message_zh.contains("“X”"), "{}", e.message_zh);
        assert!(e.message_en.contains("'X'"), "{}", e.message_en);
    }

    #[test]
    fn impossible_birth_dates_are_rejected() {
        assert_eq!(err_code(&with_check("11010519990230002")), "birth_date");
        assert_eq!(err_code(&with_check("11010519001301002")), "birth_date");
        assert_eq!(err_code(&with_check("11010519000229002")), "birth_date"); // 1900 not leap
        assert_eq!(err_code(&with_check("11010517991231002")), "birth_date"); // before 1800
        let leap = CitizenId::parse("id", &with_check("11010520000229002")).unwrap();
        assert_eq!(leap.birth_date(), date(2000, 2, 29));
    }

    #[test]
    fn unknown_province_is_rejected() {
        assert_eq!(err_code(&with_check("00010519491231002")), "division_code");
        assert_eq!(err_code(&with_check("99010519491231002")), "division_code");
        assert_eq!(err_code(&with_check("33000219491231002")), "division_code");
        let e = CitizenId::parse("id", &with_check("00010519491231002")).unwrap_err();
        assert!(e.message_zh.contains("00") && e.message_en.contains("00"));
    }

    #[test]
    fn lowercase_x_and_blanks_are_accepted() {
        let id = CitizenId::parse("id", "  11010519491231002x \n").unwrap();
        assert_eq!(id.as_str(), STANDARD_EXAMPLE);
    }

    #[test]
    fn malformed_input_is_rejected() {
        assert_eq!(err_code(""), "required");
        assert_eq!(err_code("   "), "required");
        assert_eq!(err_code("11010519491231002"), "length");
        assert_eq!(err_code("11010519491231002XX"), "length");
        assert_eq!(err_code("1101051949123100X2"), "charset");
        assert_eq!(err_code("11010519491231002Y"), "charset");
        assert_eq!(err_code("１1010519491231002X"), "charset");
        assert_eq!(err_code("11010549123100A"), "charset");
    }

    #[test]
    fn fifteen_digit_numbers_are_upgraded() {
        let id = CitizenId::parse("id", "110105491231002").unwrap();
        assert_eq!(id.as_str(), STANDARD_EXAMPLE);
        assert_eq!(upgrade_15("id", " 110105491231002 ").unwrap(), id);
        assert_eq!(id.birth_date(), date(1949, 12, 31));
        assert_eq!(
            upgrade_15("id", "110105490230002").unwrap_err().code,
            "birth_date"
        );
        assert_eq!(
            upgrade_15("id", "990105491231002").unwrap_err().code,
            "division_code"
        );
        assert_eq!(
            upgrade_15("id", STANDARD_EXAMPLE).unwrap_err().code,
            "length"
        );
        assert_eq!(
            upgrade_15("id", "11010549123100x").unwrap_err().code,
            "charset"
        );
    }

    #[test]
    fn build_round_trips_through_parse() {
        let jinhua = DivisionCode::parse("d", "330702").unwrap();
        for (birth, sequence, sex) in [
            (date(1987, 6, 25), 371, Sex::Male),
            (date(2024, 2, 29), 2, Sex::Female),
            (date(1880, 1, 1), 999, Sex::Male),
            (date(1950, 10, 1), 0, Sex::Female),
        ] {
            let built = CitizenId::build(&jinhua, birth, sequence).unwrap();
            let parsed = CitizenId::parse("id", built.as_str()).unwrap();
            assert_eq!(parsed, built);
            assert_eq!(parsed.birth_date(), birth);
            assert_eq!(parsed.sex(), sex);
            assert_eq!(parsed.division_code(), jinhua);
            assert_eq!(parsed.sequence(), format!("{sequence:03}"));
        }
    }

    #[test]
    fn build_refuses_what_parse_would_refuse() {
        let d = DivisionCode::parse("d", "370303").unwrap();
        assert!(CitizenId::build(&d, date(1990, 1, 1), 1000).is_none());
        assert!(CitizenId::build(&d, date(1799, 12, 31), 1).is_none());
        assert!(CitizenId::build(&d, date(10000, 1, 1), 1).is_none());
        let national = DivisionCode::from_validated(gbt2260::NATIONAL);
        assert!(CitizenId::build(&national, date(1990, 1, 1), 1).is_none());
    }

    #[test]
    fn future_birth_dates_only_rejected_by_parse_at() {
        let id = with_check("33070220991231001");
        let today = date(2025, 6, 1);
        assert!(CitizenId::parse("id", &id).is_ok());
        let e = CitizenId::parse_at("id", &id, today).unwrap_err();
        assert_eq!(e.code, "birth_date");
        assert!(CitizenId::parse_at("id", STANDARD_EXAMPLE, today).is_ok());
        let born_today = with_check("33070220250601001");
        assert!(CitizenId::parse_at("id", &born_today, today).is_ok());
        assert!(CitizenId::parse_at("id", &born_today, date(2025, 5, 31)).is_err());
        assert!(CitizenId::parse_not_future("id", &id).is_err());
        assert!(CitizenId::parse_not_future("id", STANDARD_EXAMPLE).is_ok());
    }

    #[test]
    fn masked_hides_the_birth_date() {
        let id = CitizenId::parse("id", STANDARD_EXAMPLE).unwrap();
        assert_eq!(id.masked(), "110105********002X");
        assert_eq!(id.masked().chars().count(), 18);
    }
}
