//! FHIR `ServiceRequest` (the referral as asked for) and `Task` (its fulfilment: one Task per
//! referral, with the same id, whose status is the referral's workflow state).
//!
//! Referrals are patient-level data: a caller sees one when `PatientRead` is allowed on either
//! end (the sending unit, the receiving unit, or their group for a coordinator), the same rule
//! as the JSON API; every read and search is audited as `fhir.read` / `fhir.search`.

use std::collections::HashMap;

use axum::extract::{Path, Query, RawQuery, State};
use chrono::NaiveDateTime;
use serde_json::{json, Value};

use medgrid_domain::access::{authorize, Action, Id, ScopeKind};
use medgrid_domain::referral::{Direction, Kind, Priority, Status};
use medgrid_store::referral::{Referral, ReferralFilter};

use super::{
    count_param, id_param, instant, reference_id, searchset, Fhir, FhirCaller, Resource,
    SYS_DEPARTMENT, SYS_ICD10, SYS_REFERRAL_KIND, SYS_REFERRAL_STATUS,
};
use crate::auth::Caller;
use crate::error::AppError;
use crate::AppState;

/// ServiceRequest.status: the request stays `active` while anyone still works on it.
pub fn request_status(s: Status) -> &'static str {
    match s {
        Status::Draft => "draft",
        Status::Sent | Status::Redirected | Status::Accepted | Status::Booked | Status::Arrived => {
            "active"
        }
        Status::Completed => "completed",
        Status::Cancelled | Status::Declined | Status::Expired => "revoked",
    }
}

/// FHIR request-priority: the green channel (绿色通道) is the one that cannot wait.
pub fn request_priority(p: Priority) -> &'static str {
    match p {
        Priority::Routine => "routine",
        Priority::Urgent => "urgent",
        Priority::Green => "stat",
    }
}

fn category_text(f: &Referral) -> &'static str {
    match (f.kind, f.direction) {
        (Kind::Advice, _) => "咨询",
        (Kind::Referral, Direction::Up) => "上转",
        (Kind::Referral, Direction::Down) => "下转",
    }
}

fn org(unit_id: Id, name: &str) -> Value {
    json!({"reference": format!("Organization/unit-{unit_id}"), "display": name})
}

fn patient(f: &Referral) -> Value {
    json!({"reference": format!("Patient/{}", f.resident_id), "display": f.resident_name})
}

fn note(at: NaiveDateTime, label: &str, text: Option<&str>) -> Option<Value> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| json!({"time": instant(at), "text": format!("{label}：{t}")}))
}

pub fn service_request(f: &Referral) -> Value {
    let category = category_text(f);
    let mut r = json!({
        "resourceType": "ServiceRequest",
        "id": f.id.to_string(),
        "status": request_status(f.status),
        "intent": "order",
        "category": [{
            "coding": [{"system": SYS_REFERRAL_KIND, "code": if f.kind == Kind::Advice { "advice" } else { f.direction.as_str() }, "display": category}],
            "text": category,
        }],
        "priority": request_priority(f.priority),
        "code": {
            "coding": [{"system": SYS_REFERRAL_KIND, "code": f.kind.as_str(), "display": f.kind.label_zh()}],
            "text": f.kind.label_zh(),
        },
        "subject": patient(f),
        "authoredOn": instant(f.requested_at),
        "requester": org(f.from_unit_id, &f.from_unit_name),
        "reasonCode": [{
            "coding": [{"system": SYS_ICD10, "code": f.diagnosis}],
            "text": f.reason.clone().unwrap_or_else(|| f.diagnosis.clone()),
        }],
    });
    if let Some(to) = f.to_unit_id {
        r["performer"] = json!([org(to, f.to_unit_name.as_deref().unwrap_or_default())]);
    }
    if let Some(dept) = &f.to_department_code {
        r["performerType"] =
            json!({"coding": [{"system": SYS_DEPARTMENT, "code": dept}], "text": dept});
    }
    let at = f.requested_at;
    let notes: Vec<Value> = [
        note(at, "转诊原因", f.reason.as_deref()),
        note(at, "病情摘要", f.summary.as_deref()),
        note(at, "诊疗方案", f.care_plan.as_deref()),
        note(at, "目录外转诊理由", f.outside_catalogue_reason.as_deref()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !notes.is_empty() {
        r["note"] = json!(notes);
    }
    r
}

/// The Task of a referral; `appointment` is its live booking, when there is one.
pub fn task(f: &Referral, appointment: Option<Id>) -> Value {
    let mut t = json!({
        "resourceType": "Task",
        "id": f.id.to_string(),
        "basedOn": [{"reference": format!("ServiceRequest/{}", f.id)}],
        "status": f.status.fhir_task_status(),
        "businessStatus": {
            "coding": [{"system": SYS_REFERRAL_STATUS, "code": f.status.as_str(), "display": f.status.label_zh()}],
            "text": f.status.label_zh(),
        },
        "intent": "order",
        "priority": request_priority(f.priority),
        "code": {"text": category_text(f)},
        "focus": {"reference": format!("ServiceRequest/{}", f.id)},
        "for": patient(f),
        "authoredOn": instant(f.requested_at),
        "requester": org(f.from_unit_id, &f.from_unit_name),
    });
    if let Some(at) = f.updated_at {
        t["lastModified"] = json!(instant(at));
    }
    if let Some(to) = f.to_unit_id {
        t["owner"] = org(to, f.to_unit_name.as_deref().unwrap_or_default());
    }
    if let Some(reason) = f.decline_reason.as_deref().filter(|r| !r.trim().is_empty()) {
        t["statusReason"] = json!({"text": reason});
    }
    let mut output = Vec::new();
    if f.status == Status::Completed {
        if let Some(summary) = f.outcome_summary.as_deref() {
            output.push(json!({"type": {"text": "诊疗结果摘要"}, "valueString": summary}));
        }
    }
    if let Some(b) = appointment {
        output.push(json!({
            "type": {"text": "预约"},
            "valueReference": {"reference": format!("Appointment/{b}")},
        }));
    }
    if !output.is_empty() {
        t["output"] = json!(output);
    }
    t
}

/// Whether the caller may read this referral: `PatientRead` at either end.
pub fn may_read(caller: &Caller, f: &Referral) -> bool {
    let p = &caller.principal;
    authorize(p, Action::PatientRead, &f.from_path()).is_ok()
        || f.to_path()
            .is_some_and(|to| authorize(p, Action::PatientRead, &to).is_ok())
}

/// One referral for a caller allowed to see it; a refusal is audited by `Caller::allow`.
pub async fn readable(state: &AppState, caller: &Caller, id: Id) -> Result<Referral, AppError> {
    let f = state.store.referral(id).await?;
    if !may_read(caller, &f) {
        caller.allow(Action::PatientRead, &f.from_path()).await?;
    }
    Ok(f)
}

async fn live_booking(state: &AppState, f: &Referral) -> Result<Option<Id>, AppError> {
    if !matches!(f.status, Status::Booked | Status::Arrived) {
        return Ok(None);
    }
    Ok(state
        .store
        .referral_booking(f.id)
        .await?
        .map(|(b, _, _)| b.id))
}

pub async fn read_service_request(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Path(id): Path<String>,
) -> Result<Resource, Fhir> {
    let f = readable(&state, &caller, id_param(&id)?).await?;
    caller
        .audit_read(
            "fhir.read",
            "ServiceRequest",
            f.id.to_string(),
            f.from_path(),
        )
        .await?;
    Ok(Resource(service_request(&f)))
}

pub async fn read_task(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Path(id): Path<String>,
) -> Result<Resource, Fhir> {
    let f = readable(&state, &caller, id_param(&id)?).await?;
    let booking = live_booking(&state, &f).await?;
    caller
        .audit_read("fhir.read", "Task", f.id.to_string(), f.from_path())
        .await?;
    Ok(Resource(task(&f, booking)))
}

/// The live referrals (not the generated history) the caller's scope reaches, narrowed to one
/// patient when asked; each is then checked end by end.
async fn candidates(
    state: &AppState,
    caller: &Caller,
    params: &HashMap<String, String>,
    id: Option<Id>,
) -> Result<Vec<Referral>, Fhir> {
    let scope = caller.principal.scope;
    caller.allow(Action::PatientRead, &scope.path).await?;
    if let Some(id) = id {
        return Ok(match state.store.referral(id).await {
            Ok(f) if may_read(caller, &f) => vec![f],
            Ok(_) | Err(medgrid_store::StoreError::NotFound) => Vec::new(),
            Err(e) => return Err(e.into()),
        });
    }
    let resident_id = match params.get("patient").or_else(|| params.get("subject")) {
        None => None,
        Some(p) => match reference_id(p, "Patient").parse::<Id>() {
            Ok(id) => Some(id),
            // An id that cannot exist matches nothing.
            Err(_) => return Ok(Vec::new()),
        },
    };
    let mut filter = ReferralFilter {
        resident_id,
        live_only: true,
        limit: 2000,
        ..ReferralFilter::default()
    };
    match scope.kind {
        ScopeKind::Unit => filter.unit_id = scope.path.unit,
        ScopeKind::Group => filter.group_id = scope.path.group,
        ScopeKind::City => {}
    }
    Ok(state
        .store
        .referrals(&filter)
        .await?
        .into_iter()
        .filter(|f| may_read(caller, f))
        .collect())
}

fn query_text(raw: Option<String>) -> String {
    raw.unwrap_or_default().chars().take(200).collect()
}

pub async fn search_service_requests(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Query(params): Query<HashMap<String, String>>,
    RawQuery(raw): RawQuery,
) -> Result<Resource, Fhir> {
    let count = count_param(params.get("_count").map(String::as_str))?;
    let id = match params.get("_id") {
        Some(i) => match i.parse::<Id>() {
            Ok(i) => Some(i),
            Err(_) => return Ok(Resource(searchset("ServiceRequest", Vec::new(), count))),
        },
        None => None,
    };
    let status = params.get("status");
    let list = candidates(&state, &caller, &params, id).await?;
    let matches: Vec<Value> = list
        .iter()
        .filter(|f| status.is_none_or(|s| s.split(',').any(|s| s == request_status(f.status))))
        .map(service_request)
        .collect();
    caller
        .audit_read(
            "fhir.search",
            "ServiceRequest",
            query_text(raw),
            caller.principal.scope.path,
        )
        .await?;
    Ok(Resource(searchset("ServiceRequest", matches, count)))
}

pub async fn search_tasks(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Query(params): Query<HashMap<String, String>>,
    RawQuery(raw): RawQuery,
) -> Result<Resource, Fhir> {
    let count = count_param(params.get("_count").map(String::as_str))?;
    // A Task shares its referral's id, so `focus` and `_id` both name one referral.
    let named = params
        .get("_id")
        .map(String::as_str)
        .into_iter()
        .chain(
            params
                .get("focus")
                .map(|f| reference_id(f, "ServiceRequest")),
        )
        .chain(
            params
                .get("based-on")
                .map(|f| reference_id(f, "ServiceRequest")),
        )
        .map(|raw| raw.parse::<Id>().ok())
        .collect::<Vec<_>>();
    if named.iter().any(Option::is_none) {
        return Ok(Resource(searchset("Task", Vec::new(), count)));
    }
    let named: Vec<Id> = named.into_iter().flatten().collect();
    if named.windows(2).any(|w| w[0] != w[1]) {
        return Ok(Resource(searchset("Task", Vec::new(), count)));
    }
    let status = params.get("status");
    let owner = params
        .get("owner")
        .map(|o| reference_id(o, "Organization").to_owned());
    let requester = params
        .get("requester")
        .map(|o| reference_id(o, "Organization").to_owned());
    let list = candidates(&state, &caller, &params, named.first().copied()).await?;
    let mut matches = Vec::new();
    for f in list.iter().filter(|f| {
        status.is_none_or(|s| s.split(',').any(|s| s == f.status.fhir_task_status()))
            && owner
                .as_ref()
                .is_none_or(|o| f.to_unit_id.map(|u| format!("unit-{u}")).as_ref() == Some(o))
            && requester
                .as_ref()
                .is_none_or(|r| *r == format!("unit-{}", f.from_unit_id))
    }) {
        matches.push(task(f, live_booking(&state, f).await?));
    }
    caller
        .audit_read(
            "fhir.search",
            "Task",
            query_text(raw),
            caller.principal.scope.path,
        )
        .await?;
    Ok(Resource(searchset("Task", matches, count)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_maps_to_a_request_status() {
        let active = [
            Status::Sent,
            Status::Redirected,
            Status::Accepted,
            Status::Booked,
            Status::Arrived,
        ];
        for s in Status::ALL {
            let expected = match s {
                Status::Draft => "draft",
                Status::Completed => "completed",
                s if active.contains(s) => "active",
                _ => "revoked",
            };
            assert_eq!(request_status(*s), expected, "{s:?}");
        }
        assert_eq!(request_priority(Priority::Green), "stat");
        assert_eq!(request_priority(Priority::Urgent), "urgent");
    }
}
