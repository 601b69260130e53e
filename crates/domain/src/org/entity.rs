//! Registry entities as stored: each with its database id and where it sits ([`OrgPath`]),
//! and the validated drafts from which they are created.

use serde::{Deserialize, Serialize};

use super::{vocabulary, CrossGridService, Level, MemberRole, Title};
use crate::access::{Id, OrgPath};
use crate::codes::{DivisionCode, Sex, Uscc};
use crate::error::{optional_text, text, FieldError, Invalid};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct City {
    pub id: Id,
    /// GB/T 2260 division code of the city.
    pub division_code: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Grid {
    pub id: Id,
    pub city_id: Id,
    pub code: String,
    pub name: String,
    pub division_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Group {
    pub id: Id,
    pub city_id: Id,
    pub grid_id: Id,
    pub code: String,
    pub name: String,
}

impl Group {
    pub fn path(&self) -> OrgPath {
        OrgPath {
            city: self.city_id,
            grid: Some(self.grid_id),
            group: Some(self.id),
            unit: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Unit {
    pub id: Id,
    pub city_id: Id,
    pub grid_id: Option<Id>,
    pub group_id: Option<Id>,
    pub parent_unit_id: Option<Id>,
    pub code: String,
    /// Legal name (法定名称); the unit keeps it inside the group.
    pub legal_name: String,
    /// Second name inside the group (第二名称, "××分院").
    pub second_name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub role: MemberRole,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub level: Level,
    pub division_code: Option<String>,
    /// GB 32100 unified social credit code.
    pub uscc: Option<String>,
    /// Why the stored USCC is suspect (a wrong check character), if it is.
    pub uscc_warning: Option<String>,
    pub beds: Option<i64>,
    pub public: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub services: Vec<CrossGridService>,
    pub note: Option<String>,
}

impl Unit {
    pub fn path(&self) -> OrgPath {
        OrgPath {
            city: self.city_id,
            grid: self.grid_id,
            group: self.group_id,
            unit: Some(self.id),
        }
    }
}

vocabulary! {
    /// What a department does.
    DepartmentKind, "kind" {
        Outpatient => "outpatient", "门诊科室";
        Ward => "ward", "住院病区";
        MedicalTechnology => "medical_technology", "医技科室";
        PublicHealth => "public_health", "公共卫生科室";
        Administration => "administration", "职能科室";
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Department {
    pub id: Id,
    pub unit_id: Id,
    pub group_id: Option<Id>,
    pub code: String,
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kind: DepartmentKind,
    pub beds: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Practitioner {
    pub id: Id,
    pub city_id: Id,
    /// 医师执业证书编码 (practising licence number); the practitioner's national identifier.
    pub licence_no: String,
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub sex: Sex,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub title: Title,
    pub specialty: Option<String>,
    /// Every unit where the practitioner practises (多点执业), the primary one first.
    pub sites: Vec<PracticeSite>,
}

/// One place of practice of a practitioner (FHIR PractitionerRole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PracticeSite {
    pub id: Id,
    pub practitioner_id: Id,
    pub unit_id: Id,
    pub group_id: Option<Id>,
    pub department_id: Option<Id>,
    /// The registered primary site (主要执业机构); the others are multi-site practice.
    pub primary: bool,
}

/// Raw input for a member unit, as a form or JSON body gives it.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnitInput {
    pub code: String,
    pub legal_name: String,
    #[serde(default)]
    pub second_name: String,
    pub role: String,
    pub level: String,
    /// Group id, or none for units outside any group.
    #[serde(default)]
    pub group_id: Option<Id>,
    #[serde(default)]
    pub parent_unit_id: Option<Id>,
    #[serde(default)]
    pub division_code: String,
    #[serde(default)]
    pub uscc: String,
    #[serde(default)]
    pub beds: Option<i64>,
    #[serde(default = "yes")]
    pub public: bool,
    #[serde(default)]
    pub note: String,
}

fn yes() -> bool {
    true
}

/// A member unit that passed validation, ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitDraft {
    pub code: String,
    pub legal_name: String,
    pub second_name: Option<String>,
    pub role: MemberRole,
    pub level: Level,
    pub group_id: Option<Id>,
    pub parent_unit_id: Option<Id>,
    pub division_code: Option<DivisionCode>,
    pub uscc: Option<Uscc>,
    pub uscc_warning: Option<FieldError>,
    pub beds: Option<i64>,
    pub public: bool,
    pub services: Vec<CrossGridService>,
    pub note: Option<String>,
}

pub const MAX_NAME: usize = 100;
pub const MAX_NOTE: usize = 500;
pub const MAX_BEDS: i64 = 100_000;

/// A registry code: the stable external key of a record (1–32 ASCII letters, digits, - or _).
pub fn code(field: &str, raw: &str) -> Result<String, FieldError> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(FieldError::required(field));
    }
    if t.len() > 32
        || !t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(FieldError::new(
            field,
            "format",
            "编码须为 1–32 位字母、数字、“-”或“_”",
            "must be 1–32 ASCII letters, digits, '-' or '_'",
        ));
    }
    Ok(t.to_owned())
}

pub fn beds(field: &str, value: Option<i64>) -> Result<Option<i64>, FieldError> {
    match value {
        Some(b) if !(0..=MAX_BEDS).contains(&b) => Err(FieldError::new(
            field,
            "range",
            format!("床位数须在 0 到 {MAX_BEDS} 之间"),
            format!("must be between 0 and {MAX_BEDS}"),
        )),
        other => Ok(other),
    }
}

/// An optional coded field: empty input is `None`, anything else must parse.
fn optional<T>(
    raw: &str,
    parse: impl FnOnce(&str) -> Result<T, FieldError>,
) -> Result<Option<T>, FieldError> {
    if raw.trim().is_empty() {
        Ok(None)
    } else {
        parse(raw).map(Some)
    }
}

impl UnitInput {
    pub fn validate(&self) -> Result<UnitDraft, Invalid> {
        let mut inv = Invalid::default();
        let code = inv.check(code("code", &self.code));
        let legal_name = inv.check(text("legal_name", &self.legal_name, MAX_NAME));
        let second_name = inv.check(optional_text("second_name", &self.second_name, MAX_NAME));
        let role = inv.check(MemberRole::parse(&self.role));
        let level = inv.check(Level::parse(&self.level));
        let division_code = inv.check(optional(&self.division_code, |r| {
            DivisionCode::parse("division_code", r)
        }));
        let uscc = inv.check(optional(&self.uscc, |r| Uscc::parse("uscc", r)));
        let beds = inv.check(beds("beds", self.beds));
        let note = inv.check(optional_text("note", &self.note, MAX_NOTE));
        let (
            Some(code),
            Some(legal_name),
            Some(second_name),
            Some(role),
            Some(level),
            Some(division_code),
            Some(uscc),
            Some(beds),
            Some(note),
        ) = (
            code,
            legal_name,
            second_name,
            role,
            level,
            division_code,
            uscc,
            beds,
            note,
        )
        else {
            return Err(inv);
        };
        let (uscc, uscc_warning) = match uscc {
            Some(p) => (Some(p.code), p.warning),
            None => (None, None),
        };
        Ok(UnitDraft {
            code,
            legal_name,
            second_name,
            role,
            level,
            group_id: self.group_id,
            parent_unit_id: self.parent_unit_id,
            division_code,
            uscc,
            uscc_warning,
            beds,
            public: self.public,
            services: Vec::new(),
            note,
        })
    }
}

/// Raw input for a department.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DepartmentInput {
    pub code: String,
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub beds: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepartmentDraft {
    pub code: String,
    pub name: String,
    pub kind: DepartmentKind,
    pub beds: Option<i64>,
}

impl DepartmentInput {
    pub fn validate(&self) -> Result<DepartmentDraft, Invalid> {
        let mut inv = Invalid::default();
        let code = inv.check(code("code", &self.code));
        let name = inv.check(text("name", &self.name, MAX_NAME));
        let kind = inv.check(DepartmentKind::parse(&self.kind));
        let beds = inv.check(beds("beds", self.beds));
        match (code, name, kind, beds) {
            (Some(code), Some(name), Some(kind), Some(beds)) => Ok(DepartmentDraft {
                code,
                name,
                kind,
                beds,
            }),
            _ => Err(inv),
        }
    }
}

/// Raw input for a practitioner with their primary site.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PractitionerInput {
    pub licence_no: String,
    pub name: String,
    pub sex: String,
    pub title: String,
    #[serde(default)]
    pub specialty: String,
    pub unit_id: Id,
    #[serde(default)]
    pub department_id: Option<Id>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PractitionerDraft {
    pub licence_no: String,
    pub name: String,
    pub sex: Sex,
    pub title: Title,
    pub specialty: Option<String>,
    pub unit_id: Id,
    pub department_id: Option<Id>,
}

pub fn sex(field: &str, raw: &str) -> Result<Sex, FieldError> {
    match raw.trim() {
        "male" | "男" | "1" | "M" | "m" => Ok(Sex::Male),
        "female" | "女" | "2" | "F" | "f" => Ok(Sex::Female),
        other => Err(FieldError::new(
            field,
            "unknown_value",
            format!("未知性别“{other}”，可选：male/男、female/女"),
            format!("unknown sex '{other}'; expected male or female"),
        )),
    }
}

impl PractitionerInput {
    pub fn validate(&self) -> Result<PractitionerDraft, Invalid> {
        let mut inv = Invalid::default();
        // Licence numbers are 15 digits in today's national register, but older ones differ,
        // so only the shape is enforced.
        let licence_no = inv.check(code("licence_no", &self.licence_no));
        let name = inv.check(text("name", &self.name, 50));
        let sex = inv.check(sex("sex", &self.sex));
        let title = inv.check(Title::parse(&self.title));
        let specialty = inv.check(optional_text("specialty", &self.specialty, MAX_NAME));
        match (licence_no, name, sex, title, specialty) {
            (Some(licence_no), Some(name), Some(sex), Some(title), Some(specialty)) => {
                Ok(PractitionerDraft {
                    licence_no,
                    name,
                    sex,
                    title,
                    specialty,
                    unit_id: self.unit_id,
                    department_id: self.department_id,
                })
            }
            _ => Err(inv),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_unit() -> UnitInput {
        UnitInput {
            code: "JH-U1".into(),
            legal_name: "婺城区城东街道社区卫生服务中心".into(),
            role: "primary".into(),
            level: "一级".into(),
            public: true,
            ..UnitInput::default()
        }
    }

    #[test]
    fn unit_input_validates() {
        let d = valid_unit().validate().unwrap();
        assert_eq!(d.role, MemberRole::Primary);
        assert_eq!(d.level, Level::Primary);
        assert_eq!(d.second_name, None);
    }

    #[test]
    fn unit_input_reports_every_bad_field() {
        let input = UnitInput {
            code: "bad code!".into(),
            legal_name: "".into(),
            role: "boss".into(),
            level: "四级".into(),
            division_code: "99".into(),
            beds: Some(-1),
            ..valid_unit()
        };
        let err = input.validate().unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "code",
                "legal_name",
                "role",
                "level",
                "division_code",
                "beds"
            ]
        );
        assert!(err
            .0
            .iter()
            .all(|e| !e.message_zh.is_empty() && !e.message_en.is_empty()));
    }

    #[test]
    fn metacharacters_are_plain_text() {
        let input = UnitInput {
            legal_name: "'; DROP TABLE unit; --<script>".into(),
            ..valid_unit()
        };
        assert_eq!(
            input.validate().unwrap().legal_name,
            "'; DROP TABLE unit; --<script>"
        );
    }

    #[test]
    fn practitioner_input_validates() {
        let input = PractitionerInput {
            licence_no: "110330700000001".into(),
            name: "单志刚".into(),
            sex: "男".into(),
            title: "副主任医师".into(),
            unit_id: 3,
            ..PractitionerInput::default()
        };
        let d = input.clone().validate().unwrap();
        assert!(d.title.is_senior());
        let bad = PractitionerInput {
            sex: "x".into(),
            title: "院长".into(),
            ..input
        };
        let fields: Vec<_> = bad
            .validate()
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["sex", "title"]);
    }
}
