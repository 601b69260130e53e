//! FHIR `Organization`: cities, grids, groups and member units, linked by `partOf`
//! (unit → group → grid → city; a unit outside any group is part of its city).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use serde_json::{json, Value};

use medgrid_domain::access::{authorize, Action, OrgPath};
use medgrid_store::CityTree;

use super::{
    count_param, reference_id, searchset, string_matches, Fhir, FhirCaller, Resource, SYS_DIVISION,
    SYS_HL7_ORG_TYPE, SYS_LEVEL, SYS_MEMBER_ROLE, SYS_ORG_KIND, SYS_UNIT_CODE, SYS_USCC,
};
use crate::auth::Caller;
use crate::error::AppError;
use crate::AppState;

/// One organisation as FHIR, with the codes its search matches on.
struct Org {
    resource: Value,
    id: String,
    name: String,
    alias: Option<String>,
    type_codes: Vec<String>,
    part_of: Option<String>,
    identifiers: Vec<String>,
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({"system": system, "code": code, "display": display})
}

fn organizations(tree: &CityTree) -> Vec<Org> {
    let mut out = Vec::new();
    let city_ref = format!("city-{}", tree.city.id);
    out.push(Org {
        resource: json!({
            "resourceType": "Organization",
            "id": city_ref,
            "active": true,
            "identifier": [{"system": SYS_DIVISION, "value": tree.city.division_code}],
            "type": [{"coding": [coding(SYS_HL7_ORG_TYPE, "govt", "Government"), coding(SYS_ORG_KIND, "city", "城市")]}],
            "name": tree.city.name,
        }),
        id: city_ref.clone(),
        name: tree.city.name.clone(),
        alias: None,
        type_codes: vec!["govt".into(), "city".into()],
        part_of: None,
        identifiers: vec![tree.city.division_code.clone()],
    });
    let mut names: HashMap<String, String> = HashMap::new();
    names.insert(city_ref.clone(), tree.city.name.clone());
    for g in &tree.grids {
        let id = format!("grid-{}", g.id);
        names.insert(id.clone(), g.name.clone());
        out.push(Org {
            resource: json!({
                "resourceType": "Organization",
                "id": id,
                "active": true,
                "identifier": [{"system": SYS_UNIT_CODE, "value": g.code}, {"system": SYS_DIVISION, "value": g.division_code}],
                "type": [{"coding": [coding(SYS_HL7_ORG_TYPE, "other", "Other"), coding(SYS_ORG_KIND, "grid", "网格")]}],
                "name": g.name,
                "partOf": {"reference": format!("Organization/{city_ref}"), "display": tree.city.name},
            }),
            id,
            name: g.name.clone(),
            alias: None,
            type_codes: vec!["other".into(), "grid".into()],
            part_of: Some(city_ref.clone()),
            identifiers: vec![g.code.clone(), g.division_code.clone()],
        });
    }
    for g in &tree.groups {
        let id = format!("group-{}", g.id);
        let grid = format!("grid-{}", g.grid_id);
        names.insert(id.clone(), g.name.clone());
        out.push(Org {
            resource: json!({
                "resourceType": "Organization",
                "id": id,
                "active": true,
                "identifier": [{"system": SYS_UNIT_CODE, "value": g.code}],
                "type": [{"coding": [coding(SYS_HL7_ORG_TYPE, "prov", "Healthcare Provider"), coding(SYS_ORG_KIND, "group", "医疗集团")]}],
                "name": g.name,
                "partOf": {"reference": format!("Organization/{grid}"), "display": names.get(&grid).cloned().unwrap_or_default()},
            }),
            id,
            name: g.name.clone(),
            alias: None,
            type_codes: vec!["prov".into(), "group".into()],
            part_of: Some(grid),
            identifiers: vec![g.code.clone()],
        });
    }
    for u in &tree.units {
        let id = format!("unit-{}", u.id);
        let parent = u
            .group_id
            .map_or_else(|| city_ref.clone(), |g| format!("group-{g}"));
        let mut identifiers = vec![json!({"system": SYS_UNIT_CODE, "value": u.code})];
        if let Some(uscc) = &u.uscc {
            identifiers.push(json!({"system": SYS_USCC, "value": uscc}));
        }
        let mut resource = json!({
            "resourceType": "Organization",
            "id": id,
            "active": true,
            "identifier": identifiers,
            "type": [{"coding": [
                coding(SYS_HL7_ORG_TYPE, "prov", "Healthcare Provider"),
                coding(SYS_ORG_KIND, "unit", "成员单位"),
                coding(SYS_MEMBER_ROLE, u.role.as_str(), u.role.label_zh()),
                coding(SYS_LEVEL, u.level.as_str(), u.level.label_zh()),
            ]}],
            "name": u.legal_name,
            "partOf": {"reference": format!("Organization/{parent}"), "display": names.get(&parent).cloned().unwrap_or_default()},
        });
        if let Some(alias) = &u.second_name {
            resource["alias"] = json!([alias]);
        }
        out.push(Org {
            resource,
            id,
            name: u.legal_name.clone(),
            alias: u.second_name.clone(),
            type_codes: vec![
                "prov".into(),
                "unit".into(),
                u.role.as_str().into(),
                u.level.as_str().into(),
            ],
            part_of: Some(parent),
            identifiers: std::iter::once(u.code.clone())
                .chain(u.uscc.clone())
                .collect(),
        });
    }
    out
}

/// Every organisation of every city the caller may read.
async fn visible(state: &AppState, caller: &Caller) -> Result<Vec<Org>, AppError> {
    let mut out = Vec::new();
    for c in state.store.cities().await? {
        if authorize(
            &caller.principal,
            Action::RegistryRead,
            &OrgPath::city(c.id),
        )
        .is_ok()
        {
            out.extend(organizations(&state.store.city_tree(c.id).await?));
        }
    }
    Ok(out)
}

pub async fn read(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Path(id): Path<String>,
) -> Result<Resource, Fhir> {
    let org = state
        .store
        .resolve_org(&id)
        .await
        .map_err(|_| Fhir(AppError::NotFound))?;
    if org.reference() != id {
        // A USCC resolves too, but the resource's id is its reference.
        return Err(Fhir(AppError::NotFound));
    }
    caller.allow(Action::RegistryRead, &org.path).await?;
    let tree = state.store.city_tree(org.path.city).await?;
    organizations(&tree)
        .into_iter()
        .find(|o| o.id == id)
        .map(|o| Resource(o.resource))
        .ok_or(Fhir(AppError::NotFound))
}

pub async fn search(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Resource, Fhir> {
    let count = count_param(params.get("_count").map(String::as_str))?;
    let name = params.get("name").or_else(|| params.get("name:contains"));
    let kind = params
        .get("type")
        .map(|t| t.rsplit('|').next().unwrap_or(t).to_owned());
    let part_of = params
        .get("partof")
        .map(|p| reference_id(p, "Organization").to_owned());
    let identifier = params
        .get("identifier")
        .map(|t| t.rsplit('|').next().unwrap_or(t).to_owned());
    let id = params.get("_id");
    let matches: Vec<Value> = visible(&state, &caller)
        .await?
        .into_iter()
        .filter(|o| id.is_none_or(|i| &o.id == i))
        .filter(|o| {
            name.is_none_or(|n| {
                string_matches(&o.name, n)
                    || o.alias.as_deref().is_some_and(|a| string_matches(a, n))
            })
        })
        .filter(|o| {
            kind.as_ref()
                .is_none_or(|k| o.type_codes.iter().any(|c| c == k))
        })
        .filter(|o| {
            part_of
                .as_ref()
                .is_none_or(|p| o.part_of.as_ref() == Some(p))
        })
        .filter(|o| {
            identifier
                .as_ref()
                .is_none_or(|i| o.identifiers.iter().any(|x| x == i))
        })
        .map(|o| o.resource)
        .collect();
    Ok(Resource(searchset("Organization", matches, count)))
}
