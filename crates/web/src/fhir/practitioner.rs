//! FHIR `Practitioner` and `PractitionerRole` (one role per site of practice: 多点执业 shows
//! as several roles of one practitioner).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use serde_json::{json, Value};

use medgrid_domain::access::{Action, Id, OrgPath};
use medgrid_domain::codes::Sex;
use medgrid_domain::org::{PracticeSite, Practitioner};

use super::{
    count_param, id_param, reference_id, searchset, string_matches, Fhir, FhirCaller, Resource,
    SYS_LICENCE, SYS_TITLE,
};
use crate::api::visible_practitioners;
use crate::AppState;

fn practitioner_resource(p: &Practitioner) -> Value {
    json!({
        "resourceType": "Practitioner",
        "id": p.id.to_string(),
        "active": true,
        "identifier": [{"system": SYS_LICENCE, "value": p.licence_no}],
        "name": [{"text": p.name}],
        "gender": match p.sex { Sex::Male => "male", Sex::Female => "female" },
        "qualification": [{"code": {
            "coding": [{"system": SYS_TITLE, "code": p.title.as_str(), "display": p.title.label_zh()}],
            "text": p.title.label_zh(),
        }}],
    })
}

fn role_resource(p: &Practitioner, s: &PracticeSite) -> Value {
    let mut r = json!({
        "resourceType": "PractitionerRole",
        "id": s.id.to_string(),
        "active": true,
        "practitioner": {"reference": format!("Practitioner/{}", p.id), "display": p.name},
        "organization": {"reference": format!("Organization/unit-{}", s.unit_id)},
        "code": [{
            "coding": [{"system": SYS_TITLE, "code": p.title.as_str(), "display": p.title.label_zh()}],
            "text": if s.primary { "主要执业机构" } else { "多点执业" },
        }],
    });
    if let Some(spec) = &p.specialty {
        r["specialty"] = json!([{"text": spec}]);
    }
    r
}

pub async fn read_practitioner(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Path(id): Path<String>,
) -> Result<Resource, Fhir> {
    let p = state.store.practitioner(id_param(&id)?).await?;
    caller
        .allow(Action::RegistryRead, &OrgPath::city(p.city_id))
        .await?;
    Ok(Resource(practitioner_resource(&p)))
}

pub async fn search_practitioners(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Resource, Fhir> {
    let count = count_param(params.get("_count").map(String::as_str))?;
    let name = params.get("name").or_else(|| params.get("name:contains"));
    let identifier = params
        .get("identifier")
        .map(|t| t.rsplit('|').next().unwrap_or(t).to_owned());
    let id = params.get("_id");
    let list = visible_practitioners(
        &caller,
        state.store.practitioners(None, None, 10_000).await?,
    );
    let matches = list
        .iter()
        .filter(|p| id.is_none_or(|i| p.id.to_string() == *i))
        .filter(|p| name.is_none_or(|n| string_matches(&p.name, n)))
        .filter(|p| identifier.as_ref().is_none_or(|i| &p.licence_no == i))
        .map(practitioner_resource)
        .collect();
    Ok(Resource(searchset("Practitioner", matches, count)))
}

pub async fn read_role(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Path(id): Path<String>,
) -> Result<Resource, Fhir> {
    let site = state.store.practice_site(id_param(&id)?).await?;
    let p = state.store.practitioner(site.practitioner_id).await?;
    caller
        .allow(Action::RegistryRead, &OrgPath::city(p.city_id))
        .await?;
    Ok(Resource(role_resource(&p, &site)))
}

pub async fn search_roles(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Resource, Fhir> {
    let count = count_param(params.get("_count").map(String::as_str))?;
    let practitioner = params
        .get("practitioner")
        .map(|p| reference_id(p, "Practitioner").to_owned());
    let organization = params
        .get("organization")
        .map(|p| reference_id(p, "Organization").to_owned());
    let id = params.get("_id");
    let unit_filter = organization
        .as_deref()
        .and_then(|o| o.strip_prefix("unit-"))
        .and_then(|u| u.parse::<Id>().ok());
    let list = visible_practitioners(
        &caller,
        state.store.practitioners(unit_filter, None, 10_000).await?,
    );
    let mut matches = Vec::new();
    for p in &list {
        if practitioner
            .as_ref()
            .is_some_and(|x| *x != p.id.to_string())
        {
            continue;
        }
        for s in &p.sites {
            let org = format!("unit-{}", s.unit_id);
            if organization.as_ref().is_some_and(|o| *o != org)
                || id.is_some_and(|i| *i != s.id.to_string())
            {
                continue;
            }
            matches.push(role_resource(p, s));
        }
    }
    Ok(Resource(searchset("PractitionerRole", matches, count)))
}
