//! FHIR `Patient` (the resident, person of the patient index) and `Patient/$match`.
//!
//! A read is the person in full (identifiers, phone) and is audited as such; a search lists
//! persons with identifiers and phones masked (脱敏). `$match` scores a Patient against the
//! caller's group and answers candidates with a match grade (`certain` at or above the link
//! threshold, `possible` in the review band), the most likely first.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde_json::{json, Value};

use medgrid_domain::{FieldError, Invalid};
use medgrid_store::patient_index::{Demographics, PatientRecord, Person, PersonFilter};

use super::{count_param, id_param, searchset, Fhir, FhirCaller, Resource};
use crate::error::AppError;
use crate::persons;
use crate::AppState;

/// The citizen ID (居民身份证号码, GB 11643).
pub const SYS_CITIZEN_ID: &str = "urn:medgrid:identifier:citizen-id";
/// A member unit's own record number; the unit is the identifier's assigner.
pub const SYS_LOCAL_RECORD: &str = "urn:medgrid:identifier:local-record";
pub const SYS_PASSPORT: &str = "urn:medgrid:identifier:passport";
pub const SYS_INSURANCE_CARD: &str = "urn:medgrid:identifier:insurance-card";
const EXT_MATCH_GRADE: &str = "http://hl7.org/fhir/StructureDefinition/match-grade";

fn gender(sex: &str) -> &'static str {
    match sex {
        "male" | "M" => "male",
        "female" | "F" => "female",
        _ => "unknown",
    }
}

/// The person as a Patient; `records` become identifiers assigned by their units.
pub fn patient(p: &Person, records: &[PatientRecord]) -> Value {
    let mut identifiers = Vec::new();
    if !p.citizen_id.is_empty() {
        identifiers
            .push(json!({"use": "official", "system": SYS_CITIZEN_ID, "value": p.citizen_id}));
    }
    for r in records {
        identifiers.push(json!({
            "use": "usual",
            "system": SYS_LOCAL_RECORD,
            "value": r.local_record_no,
            "assigner": {"reference": format!("Organization/unit-{}", r.unit_id), "display": r.unit_name},
        }));
        let doc = match r.id_type.as_str() {
            "passport" => Some(SYS_PASSPORT),
            _ => None,
        };
        if let Some(system) = doc.filter(|_| !r.id_number.is_empty()) {
            identifiers.push(json!({"use": "secondary", "system": system, "value": r.id_number}));
        }
        if !r.insurance_card.is_empty() {
            identifiers.push(json!({"use": "secondary", "system": SYS_INSURANCE_CARD, "value": r.insurance_card}));
        }
    }
    let mut v = json!({
        "resourceType": "Patient",
        "id": p.id.to_string(),
        "active": p.merged_into_id.is_none(),
        "identifier": identifiers,
        "name": [{"use": "official", "text": p.name}],
        "gender": gender(&p.sex),
        "birthDate": p.birth_date,
        "managingOrganization": {"reference": format!("Organization/unit-{}", p.unit_id), "display": p.unit_name},
    });
    if !p.phone.is_empty() {
        v["telecom"] = json!([{"system": "phone", "value": p.phone, "use": "mobile"}]);
    }
    if !p.address.is_empty() {
        v["address"] = json!([{"text": p.address}]);
    }
    if let Some(kept) = p.merged_into_id {
        v["link"] =
            json!([{"other": {"reference": format!("Patient/{kept}")}, "type": "replaced-by"}]);
    }
    v
}

pub async fn read_patient(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Path(id): Path<String>,
) -> Result<Resource, Fhir> {
    let view = persons::read(&state, &caller, id_param(&id)?, true).await?;
    Ok(Resource(patient(&view.person, &view.records)))
}

pub async fn search_patients(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Resource, Fhir> {
    let count = count_param(q.get("_count").map(String::as_str))?;
    let birth_date = match q.get("birthdate") {
        None => None,
        Some(raw) => Some(
            chrono::NaiveDate::parse_from_str(raw.trim_start_matches("eq"), "%Y-%m-%d").map_err(
                |_| {
                    invalid(
                        "birthdate",
                        "format",
                        "birthdate 须为 YYYY-MM-DD",
                        "birthdate must be YYYY-MM-DD",
                    )
                },
            )?,
        ),
    };
    let sex = match q.get("gender").map(String::as_str) {
        None => None,
        Some(g @ ("male" | "female")) => Some(g.to_owned()),
        Some(_) => {
            return Err(Fhir(invalid(
                "gender",
                "invalid",
                "gender 须为 male 或 female",
                "gender must be male or female",
            )))
        }
    };
    // A token search may name its system: `system|value`.
    let identifier = q
        .get("identifier")
        .map(|i| i.rsplit('|').next().unwrap_or(i).to_owned());
    let filter = PersonFilter {
        group_ids: None,
        identifier,
        name: q.get("name").cloned(),
        birth_date,
        sex,
        phone: q.get("phone").or(q.get("telecom")).cloned(),
        limit: count.unwrap_or(100).clamp(1, 200) as i64,
    };
    let found = persons::search(&state, &caller, filter).await?;
    let resources = found.iter().map(|p| patient(p, &[])).collect();
    Ok(Resource(searchset("Patient", resources, count)))
}

fn invalid(field: &str, code: &'static str, zh: &str, en: &str) -> AppError {
    AppError::Invalid(Invalid::one(FieldError::new(field, code, zh, en)))
}

/// The demographics of a Patient resource, as `$match` compares them.
fn demographics(p: &Value) -> Demographics {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
    let citizen_id = p
        .get("identifier")
        .and_then(Value::as_array)
        .and_then(|ids| {
            ids.iter()
                .find(|i| i.get("system").and_then(Value::as_str) == Some(SYS_CITIZEN_ID))
                .or_else(|| ids.first())
        })
        .map(|i| s(i.get("value")))
        .unwrap_or_default();
    let name = p
        .get("name")
        .and_then(|n| n.get(0))
        .map(|n| {
            let text = s(n.get("text"));
            if !text.is_empty() {
                return text;
            }
            let family = s(n.get("family"));
            let given: String = n
                .get("given")
                .and_then(Value::as_array)
                .map(|g| g.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            format!("{family}{given}")
        })
        .unwrap_or_default();
    let sex = p
        .get("gender")
        .and_then(Value::as_str)
        .filter(|g| matches!(*g, "male" | "female"))
        .unwrap_or_default();
    let phone = p
        .get("telecom")
        .and_then(Value::as_array)
        .and_then(|t| {
            t.iter()
                .find(|c| c.get("system").and_then(Value::as_str) == Some("phone"))
        })
        .map(|c| s(c.get("value")))
        .unwrap_or_default();
    let address = p
        .get("address")
        .and_then(|a| a.get(0))
        .map(|a| s(a.get("text")))
        .unwrap_or_default();
    Demographics {
        citizen_id,
        name,
        sex: sex.to_owned(),
        birth_date: s(p.get("birthDate")),
        phone,
        address,
    }
}

/// `POST Patient/$match`: Parameters with `resource` (a Patient), optional `count` and
/// `onlyCertainMatches`.
pub async fn match_operation(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    body: Bytes,
) -> Result<Resource, Fhir> {
    let v: Value = serde_json::from_slice(&body).map_err(|e| {
        invalid(
            "body",
            "json",
            &format!("请求体不是合法 JSON：{e}"),
            &format!("the body is not JSON: {e}"),
        )
    })?;
    let param = |name: &str| {
        v.get("parameter").and_then(Value::as_array).and_then(|ps| {
            ps.iter()
                .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
        })
    };
    let resource = match v.get("resourceType").and_then(Value::as_str) {
        Some("Parameters") => param("resource").and_then(|p| p.get("resource")),
        _ => None,
    };
    let Some(resource) =
        resource.filter(|r| r.get("resourceType").and_then(Value::as_str) == Some("Patient"))
    else {
        return Err(Fhir(invalid(
            "Parameters.parameter",
            "required",
            "须以 Parameters 提交参数 resource（Patient 资源）",
            "send Parameters with the parameter resource (a Patient)",
        )));
    };
    let d = demographics(resource);
    if d.name.is_empty() && d.citizen_id.is_empty() {
        return Err(Fhir(invalid(
            "Patient.name",
            "required",
            "匹配至少需要姓名或身份证号",
            "matching needs at least a name or a citizen ID",
        )));
    }
    let only_certain = param("onlyCertainMatches")
        .and_then(|p| p.get("valueBoolean"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let count = param("count")
        .and_then(|p| p.get("valueInteger"))
        .and_then(Value::as_u64)
        .map(|c| c as usize);
    let found = persons::find_matches(&state, &caller, &d).await?;
    let entries: Vec<Value> = found
        .iter()
        .filter(|(c, _)| !only_certain || c.grade == "certain")
        .take(count.unwrap_or(10).min(100))
        .map(|(c, p)| {
            json!({
                "fullUrl": format!("Patient/{}", p.id),
                "resource": patient(p, &[]),
                "search": {
                    "mode": "match",
                    "score": (c.probability * 1e6).round() / 1e6,
                    "extension": [{"url": EXT_MATCH_GRADE, "valueCode": c.grade}],
                },
            })
        })
        .collect();
    Ok(Resource(json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "entry": entries,
    })))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn demographics_are_read_from_text_or_parts() {
        let d = demographics(&json!({
            "resourceType": "Patient",
            "identifier": [{"system": SYS_CITIZEN_ID, "value": "11010519491231002X"}],
            "name": [{"family": "王", "given": ["伟"]}],
            "gender": "male",
            "birthDate": "1949-12-31",
            "telecom": [{"system": "email", "value": "a@b"}, {"system": "phone", "value": "13800000000"}],
        }));
        assert_eq!(d.name, "王伟");
        assert_eq!(d.citizen_id, "11010519491231002X");
        assert_eq!(d.sex, "male");
        assert_eq!(d.phone, "13800000000");
        assert_eq!(d.address, "");
    }

    #[test]
    fn a_merged_person_points_to_the_one_it_became() {
        let p = Person {
            id: 7,
            group_id: 1,
            city_id: 1,
            unit_id: 3,
            unit_name: "社区".into(),
            citizen_id: String::new(),
            name: "李娜".into(),
            sex: "female".into(),
            birth_date: chrono::NaiveDate::from_ymd_opt(1980, 1, 1).unwrap(),
            phone: String::new(),
            address: String::new(),
            merged_into_id: Some(5),
        };
        let v = patient(&p, &[]);
        assert_eq!(v["active"], false);
        assert_eq!(v["link"][0]["other"]["reference"], "Patient/5");
        assert_eq!(v["link"][0]["type"], "replaced-by");
        assert!(v.get("telecom").is_none());
    }
}
