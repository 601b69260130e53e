//! GB 32100-2015 unified social credit codes (法人和其他组织统一社会信用代码).
//!
//! 18 characters from a 31-character set (digits and capitals without I, O, Z, S, V):
//!
//! | positions | content                                                           |
//! |-----------|-------------------------------------------------------------------|
//! | 1         | registration authority (登记管理部门码)                           |
//! | 2         | organisation type within that authority (机构类别码)              |
//! | 3–8       | division code of the registering office (GB/T 2260)               |
//! | 9–17      | organisation code (GB 11714): 8 characters and its own check      |
//! | 18        | check character, MOD 31 over the 31-character set (GB/T 17710)     |
//!
//! A code that is not well-formed is an error. A well-formed code with a wrong check character
//! is only a warning: registries and licences in circulation contain such codes, and refusing
//! them would stop a real organisation from being recorded at all.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::gbt2260::{self, DivisionCode, NATIONAL};
use crate::error::FieldError;

/// A well-formed unified social credit code (its check characters may be wrong; see
/// [`ParsedUscc::warning`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Uscc(String);

/// The result of parsing: the code and, if one of its check characters is wrong, why it is
/// suspect (`code` = `check_character`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParsedUscc {
    pub code: Uscc,
    pub warning: Option<FieldError>,
}

/// The characters of the code in value order: the value of a character is its index.
const CHARSET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/// 3^i mod 31 for positions 1–17.
const WEIGHTS: [usize; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// GB 11714 weights over the 8 characters of an organisation code body.
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// Registration authorities and the organisation types each may register, as in the table
/// of GB 32100-2015 currently published (A and N included): code, names (zh, en), allowed
/// types. 旅游 includes 9 (其他) like most authorities. A code from an authority added to the
/// table later would be refused here; the table is the one place to extend.
const AUTHORITIES: &[(char, &str, &str, &[char])] = &[
    (
        '1',
        "机构编制",
        "institutional staffing",
        &['1', '2', '3', '9'],
    ),
    ('2', "外交", "foreign affairs", &['1', '9']),
    (
        '3',
        "司法行政",
        "justice administration",
        &['1', '2', '3', '4', '5', '9'],
    ),
    ('4', "文化", "culture", &['1', '9']),
    ('5', "民政", "civil affairs", &['1', '2', '3', '9']),
    ('6', "旅游", "tourism", &['1', '2', '9']),
    ('7', "宗教", "religious affairs", &['1', '2', '9']),
    ('8', "工会", "trade unions", &['1', '9']),
    ('9', "工商", "industry and commerce", &['1', '2', '3']),
    (
        'A',
        "中央军委改革和编制办公室",
        "CMC reform and staffing office",
        &['1', '9'],
    ),
    ('N', "农业", "agriculture", &['1', '2', '3', '9']),
    ('Y', "其他", "other", &['1']),
];

fn value_of(c: char) -> Option<usize> {
    CHARSET.chars().position(|x| x == c)
}

/// The check character (position 18) of the first 17 characters, or `None` if `first17` is
/// not exactly 17 characters of the code's character set.
pub fn check_character(first17: &str) -> Option<char> {
    if first17.chars().count() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first17.chars().zip(WEIGHTS) {
        sum += value_of(c)? * w;
    }
    CHARSET.chars().nth((31 - sum % 31) % 31)
}

/// The GB 11714 check character of an organisation code body (8 digits or capitals).
fn org_check_character(body8: &str) -> Option<char> {
    if body8.chars().count() != 8 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in body8.chars().zip(ORG_WEIGHTS) {
        let v = match c {
            '0'..='9' => u32::from(c) - u32::from('0'),
            'A'..='Z' => u32::from(c) - u32::from('A') + 10,
            _ => return None,
        };
        sum += v * w;
    }
    match 11 - sum % 11 {
        10 => Some('X'),
        11 => Some('0'),
        n => char::from_digit(n, 10),
    }
}

/// Checks the authority/type pair of positions 1–2.
fn check_authority_type(field: &str, authority: char, org_type: char) -> Result<(), FieldError> {
    let Some((_, zh, en, types)) = AUTHORITIES.iter().find(|(a, ..)| *a == authority) else {
        let known: String = AUTHORITIES.iter().map(|(a, ..)| *a).collect();
        return Err(FieldError::new(
            field,
            "authority_type",
            format!("第 1 位登记管理部门码“{authority}”不存在（应为 {known} 之一）"),
            format!("'{authority}' (character 1) is not a registration authority code; expected one of {known}"),
        ));
    };
    if !types.contains(&org_type) {
        let allowed: Vec<String> = types.iter().map(char::to_string).collect();
        return Err(FieldError::new(
            field,
            "authority_type",
            format!(
                "第 2 位机构类别码“{org_type}”不属于登记管理部门“{zh}”（{authority}），可选：{}",
                allowed.join("、")
            ),
            format!(
                "'{org_type}' (character 2) is not an organisation type of authority {authority} ({en}); expected one of {}",
                allowed.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Checks positions 3–8: a GB/T 2260 code (structure and province), or the central
/// government's `100000`.
fn check_division(field: &str, code: &str) -> Result<(), FieldError> {
    if code == NATIONAL {
        return Ok(());
    }
    gbt2260::check(field, code).map_err(|e| {
        FieldError::new(
            e.field,
            "division_code",
            format!("第 3–8 位登记管理机关行政区划码无效：{}", e.message_zh),
            format!(
                "characters 3–8 (division code of the registering office) are invalid: {}",
                e.message_en
            ),
        )
    })
}

impl Uscc {
    /// Parses a code as typed or imported (blanks trimmed, letters uppercased). Malformed
    /// codes are errors; a wrong check character is reported in [`ParsedUscc::warning`].
    pub fn parse(field: &str, raw: &str) -> Result<ParsedUscc, FieldError> {
        let code = raw.trim().to_ascii_uppercase();
        if code.is_empty() {
            return Err(FieldError::required(field));
        }
        let len = code.chars().count();
        if len != 18 {
            return Err(FieldError::new(
                field,
                "length",
                format!("统一社会信用代码应为 18 位，实际为 {len} 位"),
                format!("a unified social credit code has 18 characters, not {len}"),
            ));
        }
        if let Some((i, bad)) = code
            .chars()
            .enumerate()
            .find(|(_, c)| value_of(*c).is_none())
        {
            let position = i + 1;
            return Err(FieldError::new(
                field,
                "charset",
                format!("第 {position} 位“{bad}”无效：统一社会信用代码只使用数字和大写字母，且不使用 I、O、Z、S、V"),
                format!("character {position} '{bad}' is invalid: only digits and capital letters other than I, O, Z, S and V are used"),
            ));
        }
        // Every character is now ASCII, so the byte slicing below is by character.
        let mut chars = code.chars();
        let authority = chars.next().unwrap_or(' ');
        let org_type = chars.next().unwrap_or(' ');
        check_authority_type(field, authority, org_type)?;
        check_division(field, &code[2..8])?;

        let mut problems_zh = Vec::new();
        let mut problems_en = Vec::new();
        let org_given = code[16..17].chars().next().unwrap_or(' ');
        match org_check_character(&code[8..16]) {
            Some(expected) if expected != org_given => {
                problems_zh.push(format!(
                    "第 9–17 位组织机构代码的校验码（第 17 位）应为“{expected}”，实际为“{org_given}”"
                ));
                problems_en.push(format!(
                    "the check character of the organisation code (character 17) should be '{expected}', not '{org_given}'"
                ));
            }
            _ => {}
        }
        let given = code[17..].chars().next().unwrap_or(' ');
        match check_character(&code[..17]) {
            Some(expected) if expected != given => {
                problems_zh.push(format!("第 18 位校验码应为“{expected}”，实际为“{given}”"));
                problems_en.push(format!(
                    "the check character (character 18) should be '{expected}', not '{given}'"
                ));
            }
            _ => {}
        }
        let warning = (!problems_zh.is_empty()).then(|| {
            FieldError::new(
                field,
                "check_character",
                format!("代码可能有误：{}，请核对", problems_zh.join("；")),
                format!(
                    "the code may be wrong: {}; please check it",
                    problems_en.join("; ")
                ),
            )
        });
        Ok(ParsedUscc {
            code: Uscc(code),
            warning,
        })
    }

    /// Assembles a fully valid code, computing both check characters. `None` if the
    /// authority/type pair is not in the standard's table, the division code is not valid,
    /// or the organisation code body is not 8 characters of the code's character set.
    pub fn build(
        authority: char,
        org_type: char,
        division: &DivisionCode,
        org_code_body8: &str,
    ) -> Option<Uscc> {
        let authority = authority.to_ascii_uppercase();
        check_authority_type("uscc", authority, org_type).ok()?;
        check_division("uscc", division.as_str()).ok()?;
        let body = org_code_body8.to_ascii_uppercase();
        if body.chars().count() != 8 || body.chars().any(|c| value_of(c).is_none()) {
            return None;
        }
        let org_check = org_check_character(&body)?;
        let first17 = format!(
            "{authority}{org_type}{}{body}{org_check}",
            division.as_str()
        );
        let check = check_character(&first17)?;
        Some(Uscc(format!("{first17}{check}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The registration authority code (position 1).
    pub fn authority(&self) -> char {
        self.0.chars().next().unwrap_or(' ')
    }

    /// The organisation type code (position 2).
    pub fn org_type(&self) -> char {
        self.0.chars().nth(1).unwrap_or(' ')
    }

    /// The division code of the registering office (positions 3–8); `100000` (see
    /// [`DivisionCode::is_national`]) for authorities of the central government.
    pub fn division_code(&self) -> DivisionCode {
        DivisionCode::from_validated(&self.0[2..8])
    }

    /// The GB 11714 organisation code with its check character (positions 9–17).
    pub fn org_code(&self) -> &str {
        &self.0[8..17]
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Uscc {
    type Err = FieldError;

    /// The well-formed code; a check-character warning is dropped.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uscc::parse("uscc", s).map(|p| p.code)
    }
}

impl TryFrom<String> for Uscc {
    type Error = FieldError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn div(code: &str) -> DivisionCode {
        DivisionCode::parse("d", code).unwrap()
    }

    fn err_code(raw: &str) -> &'static str {
        Uscc::parse("uscc", raw).unwrap_err().code
    }

    #[test]
    fn built_code_parses_without_warning() {
        let built = Uscc::build('1', '2', &div("330702"), "MB0A1234").unwrap();
        let parsed = Uscc::parse("uscc", built.as_str()).unwrap();
        assert_eq!(parsed.warning, None);
        assert_eq!(parsed.code, built);
        assert_eq!(built.authority(), '1');
        assert_eq!(built.org_type(), '2');
        assert_eq!(built.division_code().as_str(), "330702");
        assert_eq!(&built.org_code()[..8], "MB0A1234");
        assert_eq!(built.to_string(), built.as_str());
    }

    #[test]
    fn build_covers_every_authority_type_pair() {
        let d = div("370303");
        for (authority, _, _, types) in AUTHORITIES {
            for org_type in *types {
                let built = Uscc::build(*authority, *org_type, &d, "12345678").unwrap();
                let parsed = Uscc::parse("uscc", built.as_str()).unwrap();
                assert_eq!(parsed.warning, None, "{built}");
            }
        }
        assert!(Uscc::build('9', '4', &d, "12345678").is_none());
        assert!(Uscc::build('B', '1', &d, "12345678").is_none());
        assert!(Uscc::build('9', '1', &d, "1234567").is_none());
        assert!(Uscc::build('9', '1', &d, "1234567I").is_none());
        assert!(Uscc::build('n', '1', &d, "abcdefgh").is_some());
    }

    #[test]
    fn flipping_the_last_character_is_a_warning_not_an_error() {
        let good = Uscc::build('9', '1', &div("330782"), "MA2E7K3P").unwrap();
        let good_last = good.as_str().chars().last().unwrap();
        for c in CHARSET.chars().filter(|c| *c != good_last) {
            let flipped = format!("{}{c}", &good.as_str()[..17]);
            let parsed = Uscc::parse("unit.uscc", &flipped).unwrap();
            let warning = parsed.warning.unwrap();
            assert_eq!(warning.code, "check_character");
            assert_eq!(warning.field, "unit.uscc");
            assert!(warning.message_zh.contains(&format!("“{good_last}”")));
            assert!(warning.message_en.contains(&format!("'{good_last}'")));
            assert_eq!(parsed.code.as_str(), flipped);
        }
    }

    #[test]
    fn wrong_organisation_check_character_is_a_warning() {
        // 清华大学: organisation code 40000062-4. Put a wrong organisation check character and
        // recompute position 18, so only the organisation code is inconsistent.
        let first17 = "12100000400000625";
        let code = format!("{first17}{}", check_character(first17).unwrap());
        let warning = Uscc::parse("uscc", &code).unwrap().warning.unwrap();
        assert_eq!(warning.code, "check_character");
        assert!(warning.message_en.contains("organisation code"));
        assert!(warning.message_en.contains("'4'"));
        assert!(!warning.message_en.contains("character 18"));
    }

    #[test]
    fn codes_with_forbidden_letters_are_errors() {
        let good = Uscc::build('9', '1', &div("330782"), "MA2E7K3P").unwrap();
        for bad in ['I', 'O', 'S', 'V', 'Z'] {
            for position in [8, 12, 17] {
                let mut chars: Vec<char> = good.as_str().chars().collect();
                chars[position] = bad;
                let code: String = chars.into_iter().collect();
                let e = Uscc::parse("uscc", &code).unwrap_err();
                assert_eq!(e.code, "charset", "{code}");
                assert!(e.message_zh.contains(&format!("第 {} 位", position + 1)));
            }
        }
        assert_eq!(err_code("91350100M000100Y4-"), "charset");
        assert_eq!(err_code("91350100M000100Y4３"), "charset");
    }

    #[test]
    fn wrong_length_is_an_error() {
        assert_eq!(err_code("91350100M000100Y4"), "length");
        assert_eq!(err_code("91350100M000100Y433"), "length");
        assert_eq!(err_code("   "), "required");
    }

    #[test]
    fn unknown_authority_type_pair_is_an_error() {
        // Same body, recomputed check characters, so only the pair is wrong.
        for pair in ["94", "99", "Y2", "B1", "01", "64", "A2", "N4"] {
            let first17 = format!("{pair}350100M000100Y4");
            let code = format!("{first17}{}", check_character(&first17).unwrap());
            let e = Uscc::parse("uscc", &code).unwrap_err();
            assert_eq!(e.code, "authority_type", "{code}");
        }
        let e = Uscc::parse("uscc", "94350100M000100Y43").unwrap_err();
        assert!(e.message_zh.contains("工商") && e.message_en.contains("1, 2, 3"));
    }

    #[test]
    fn division_part_must_be_well_formed() {
        for division in ["990000", "330002", "3307A2"] {
            let first17 = format!("91{division}M000100Y4");
            let code = format!("{first17}{}", check_character(&first17).unwrap());
            assert_eq!(err_code(&code), "division_code", "{code}");
        }
    }

    #[test]
    fn published_codes_verify() {
        // 91350100M000100Y43, the format example widely quoted for GB 32100.
        // Position 18: values 9,1,3,5,0,1,0,0,M=21,0,0,0,1,0,0,Y=30,4 with weights
        // 1,3,9,27,19,26,16,17,20,29,25,13,8,24,10,30,28:
        // 9+3+27+135+0+26+0+0+420+0+0+0+8+0+0+900+112 = 1640; 1640 mod 31 = 28; 31-28 = 3.
        // Organisation code M000100Y-4: M=22, Y=34 with weights 3,7,9,10,5,8,4,2:
        // 66+0+0+0+5+0+0+68 = 139; 139 mod 11 = 7; 11-7 = 4.
        assert_eq!(check_character("91350100M000100Y4"), Some('3'));
        assert_eq!(org_check_character("M000100Y"), Some('4'));
        // 清华大学 12100000400000624D (printed on its invoices), a central-government
        // institution registered under the national pseudo-division 100000.
        // Position 18: 1+6+9+4·20+6·10+2·30+4·28 = 328; 328 mod 31 = 18; 31-18 = 13 -> 'D'.
        // Organisation code 40000062-4: 4·3+6·4+2·2 = 40; 40 mod 11 = 7; 11-7 = 4.
        assert_eq!(check_character("12100000400000624"), Some('D'));
        // 北京理工大学 12100000400009127B: 1+6+9+4·20+9·24+1·10+2·30+7·28 = 578;
        // 578 mod 31 = 20; 31-20 = 11 -> 'B'. Organisation code 40000912-7.
        assert_eq!(check_character("12100000400009127"), Some('B'));
        for code in [
            "91350100M000100Y43",
            "12100000400000624D",
            "12100000400009127B",
        ] {
            let parsed = Uscc::parse("uscc", code).unwrap();
            assert_eq!(parsed.warning, None, "{code}");
        }
        let tsinghua = Uscc::parse("uscc", "12100000400000624D").unwrap().code;
        assert!(tsinghua.division_code().is_national());
        assert_eq!(tsinghua.org_code(), "400000624");
        let fuzhou = Uscc::parse("uscc", "91350100M000100Y43").unwrap().code;
        assert_eq!(fuzhou.division_code().province_name(), Some("福建省"));
    }

    #[test]
    fn input_is_trimmed_and_uppercased() {
        let parsed = Uscc::parse("uscc", "  91350100m000100y43\t").unwrap();
        assert_eq!(parsed.code.as_str(), "91350100M000100Y43");
        assert_eq!(parsed.warning, None);
    }

    #[test]
    fn check_character_rejects_bad_input() {
        assert_eq!(check_character("91350100M000100Y"), None);
        assert_eq!(check_character("91350100M000100Y43"), None);
        assert_eq!(check_character("91350100I000100Y4"), None);
        assert_eq!(check_character("91350100m000100Y4"), None);
    }

    #[test]
    fn organisation_check_maps_ten_and_eleven() {
        // Sum ≡ 1 (mod 11) gives 10 -> 'X'; sum ≡ 0 gives 11 -> '0'.
        // "00000003": 3·2 = 6 -> 11-6 = 5; "00000010": 1·4 = 4 -> 7;
        // "00000006": 6·2 = 12 ≡ 1 -> 10 -> 'X'; "00000000": 0 -> 11 -> '0'.
        assert_eq!(org_check_character("00000003"), Some('5'));
        assert_eq!(org_check_character("00000010"), Some('7'));
        assert_eq!(org_check_character("00000006"), Some('X'));
        assert_eq!(org_check_character("00000000"), Some('0'));
        assert_eq!(org_check_character("0000000"), None);
    }
}
