//! `/fhir`: an HL7 FHIR R4 facade over the registry, two-way referral (`ServiceRequest` +
//! `Task`) and booking (`Schedule`, `Slot`, `Appointment`). JSON only
//! (`application/fhir+json`); errors are `OperationOutcome`s.

mod measure;
mod organization;
mod patient;
mod practitioner;
mod referral;
mod scheduling;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::auth::{ApiCaller, Caller};
use crate::error::AppError;
use crate::AppState;

pub const FHIR_VERSION: &str = "4.0.1";
/// Identifier and code systems that medgrid defines (local URNs: nothing is fetched from them).
pub const SYS_UNIT_CODE: &str = "urn:medgrid:identifier:org-code";
pub const SYS_USCC: &str = "urn:medgrid:identifier:uscc";
pub const SYS_DIVISION: &str = "urn:medgrid:identifier:gbt2260";
pub const SYS_LICENCE: &str = "urn:medgrid:identifier:practitioner-licence";
pub const SYS_ORG_KIND: &str = "urn:medgrid:CodeSystem:org-kind";
pub const SYS_MEMBER_ROLE: &str = "urn:medgrid:CodeSystem:member-role";
pub const SYS_LEVEL: &str = "urn:medgrid:CodeSystem:hospital-level";
pub const SYS_TITLE: &str = "urn:medgrid:CodeSystem:professional-title";
pub const SYS_HL7_ORG_TYPE: &str = "http://terminology.hl7.org/CodeSystem/organization-type";
pub const SYS_ICD10: &str = "http://hl7.org/fhir/sid/icd-10";
pub const SYS_REFERRAL_KIND: &str = "urn:medgrid:CodeSystem:referral-kind";
pub const SYS_REFERRAL_STATUS: &str = "urn:medgrid:CodeSystem:referral-status";
pub const SYS_DEPARTMENT: &str = "urn:medgrid:CodeSystem:department";
pub const SYS_SLOT_RESERVATION: &str = "urn:medgrid:CodeSystem:booking-kind";
pub const SYS_BOOKING_REFERENCE: &str = "urn:medgrid:identifier:booking-reference";
/// The `$book` operation (medgrid's own: R4 defines none for Appointment).
pub const OP_BOOK: &str = "urn:medgrid:OperationDefinition:Appointment-book";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/metadata", get(metadata))
        .route("/Organization", get(organization::search))
        .route("/Organization/{id}", get(organization::read))
        .route("/Practitioner", get(practitioner::search_practitioners))
        .route("/Practitioner/{id}", get(practitioner::read_practitioner))
        .route("/PractitionerRole", get(practitioner::search_roles))
        .route("/PractitionerRole/{id}", get(practitioner::read_role))
        .route("/ServiceRequest", get(referral::search_service_requests))
        .route("/ServiceRequest/{id}", get(referral::read_service_request))
        .route("/Task", get(referral::search_tasks))
        .route("/Task/{id}", get(referral::read_task))
        .route("/Schedule", get(scheduling::search_schedules))
        .route("/Schedule/{id}", get(scheduling::read_schedule))
        .route("/Slot", get(scheduling::search_slots))
        .route("/Slot/{id}", get(scheduling::read_slot))
        .route(
            "/Appointment",
            get(scheduling::search_appointments).post(scheduling::create_appointment),
        )
        .route("/Appointment/$book", post(scheduling::book_operation))
        .route("/Appointment/{id}", get(scheduling::read_appointment))
        .route("/Patient", get(patient::search_patients))
        .route("/Patient/$match", post(patient::match_operation))
        .route("/Patient/{id}", get(patient::read_patient))
        .route("/Measure", get(measure::search_measures))
        .route("/Measure/{id}", get(measure::read_measure))
        .route("/MeasureReport", get(measure::search_reports))
        .fallback(|| async { Fhir(AppError::NotFound) })
}

/// An error rendered as an `OperationOutcome`.
pub struct Fhir(pub AppError);

impl<E: Into<AppError>> From<E> for Fhir {
    fn from(e: E) -> Self {
        Fhir(e.into())
    }
}

impl IntoResponse for Fhir {
    fn into_response(self) -> Response {
        self.0.into_fhir()
    }
}

/// A FHIR resource or bundle as the response body.
pub struct Resource(pub Value);

impl IntoResponse for Resource {
    fn into_response(self) -> Response {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/fhir+json")],
            self.0.to_string(),
        )
            .into_response()
    }
}

/// A bearer-token caller whose rejection is an `OperationOutcome`.
pub struct FhirCaller(pub Caller);

impl FromRequestParts<AppState> for FhirCaller {
    type Rejection = Fhir;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Fhir> {
        ApiCaller::from_request_parts(parts, state)
            .await
            .map(|ApiCaller(c)| FhirCaller(c))
            .map_err(Fhir)
    }
}

/// A search-set bundle of `resources`, at most `count` of them, with the full match total.
pub fn searchset(resource_type: &str, resources: Vec<Value>, count: Option<usize>) -> Value {
    let total = resources.len();
    let entries: Vec<Value> = resources
        .into_iter()
        .take(count.unwrap_or(100).min(1000))
        .map(|r| {
            let id = r.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
            json!({"fullUrl": format!("{resource_type}/{id}"), "resource": r, "search": {"mode": "match"}})
        })
        .collect();
    json!({"resourceType": "Bundle", "type": "searchset", "total": total, "entry": entries})
}

/// `_count`, parsed leniently: a bad value is an error naming the parameter.
pub fn count_param(raw: Option<&str>) -> Result<Option<usize>, Fhir> {
    match raw {
        None => Ok(None),
        Some(s) => s.parse::<usize>().map(Some).map_err(|_| {
            Fhir(AppError::Invalid(medgrid_domain::Invalid::one(
                medgrid_domain::FieldError::new(
                    "_count",
                    "format",
                    "_count 须为非负整数",
                    "_count must be a non-negative integer",
                ),
            )))
        }),
    }
}

/// The CapabilityStatement: every resource and search parameter served.
async fn metadata(FhirCaller(_caller): FhirCaller) -> Resource {
    let search = |params: &[(&str, &str)]| -> Vec<Value> {
        params
            .iter()
            .map(|(name, kind)| json!({"name": name, "type": kind}))
            .collect()
    };
    let resource = |kind: &str, params: &[(&str, &str)]| {
        json!({
            "type": kind,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": search(params),
        })
    };
    let mut appointment = resource(
        "Appointment",
        &[
            ("patient", "reference"),
            ("status", "token"),
            ("_count", "number"),
        ],
    );
    appointment["interaction"] = json!([{"code": "read"}, {"code": "search-type"}, {"code": "create",
        "documentation": "Books the one Slot named; Idempotency-Key header, else a digest of user and body, makes a retry return the first booking"}]);
    appointment["operation"] = json!([{"name": "book", "definition": OP_BOOK,
        "documentation": "POST Appointment/$book with Parameters.parameter[name=appointment].resource: the Appointment to book"}]);
    let mut patient = resource(
        "Patient",
        &[
            ("_id", "token"),
            ("identifier", "token"),
            ("name", "string"),
            ("birthdate", "date"),
            ("gender", "token"),
            ("phone", "token"),
            ("_count", "number"),
        ],
    );
    patient["documentation"] = json!("Persons of the master patient index. A read returns identifiers and phone in full (audited); a search masks them. A merged person reads with active=false and link.type=replaced-by");
    patient["operation"] = json!([{"name": "match", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-match",
        "documentation": "POST Patient/$match with Parameters: resource (Patient), count, onlyCertainMatches; entries carry search.score and the match-grade extension (certain, possible)"}]);
    Resource(json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "publisher": "medgrid",
        "kind": "instance",
        "software": {"name": "medgrid", "version": env!("CARGO_PKG_VERSION")},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "security": {
                "description": "Authorization: Bearer <token> (medgrid admin create-token, or the web UI's token page)"
            },
            "resource": [
                resource("Organization", &[("_id", "token"), ("name", "string"), ("type", "token"), ("partof", "reference"), ("identifier", "token"), ("_count", "number")]),
                patient,
                resource("Practitioner", &[("_id", "token"), ("name", "string"), ("identifier", "token"), ("_count", "number")]),
                resource("PractitionerRole", &[("_id", "token"), ("practitioner", "reference"), ("organization", "reference"), ("_count", "number")]),
                resource("ServiceRequest", &[("_id", "token"), ("patient", "reference"), ("status", "token"), ("_count", "number")]),
                resource("Task", &[("_id", "token"), ("focus", "reference"), ("based-on", "reference"), ("patient", "reference"), ("status", "token"), ("owner", "reference"), ("requester", "reference"), ("_count", "number")]),
                resource("Schedule", &[("_id", "token"), ("actor", "reference"), ("service-type", "token"), ("_count", "number")]),
                resource("Slot", &[("_id", "token"), ("schedule", "reference"), ("start", "date"), ("status", "token"), ("service-type", "token"), ("_count", "number")]),
                appointment,
                resource("Measure", &[("_id", "token"), ("name", "string"), ("_count", "number")]),
                json!({"type": "MeasureReport", "interaction": [{"code": "search-type"}],
                    "searchParam": search(&[("subject", "reference"), ("reporter", "reference"), ("period", "date"), ("measure", "reference"), ("_count", "number")]),
                    "documentation": "Summary reports computed on request from the indicator cube; period as 2025-03, 2025-Q1, 2025-H1, 2025 or 2025-03-R12"}),
            ]
        }]
    }))
}

/// Case-insensitive "starts with or contains" per FHIR string search (`:contains` widens it;
/// for Chinese names a plain search by any part is what people expect, so both match parts).
pub fn string_matches(value: &str, query: &str) -> bool {
    value.to_lowercase().contains(&query.trim().to_lowercase())
}

/// A path id of a resource whose ids are numbers; anything else names no resource.
pub fn id_param(raw: &str) -> Result<medgrid_domain::access::Id, Fhir> {
    raw.parse().map_err(|_| Fhir(AppError::NotFound))
}

/// A China-time moment as a FHIR instant.
pub fn instant(t: chrono::NaiveDateTime) -> String {
    format!("{}+08:00", t.format("%Y-%m-%dT%H:%M:%S"))
}

/// A reference parameter's id: `Organization/unit-3` or `unit-3`.
pub fn reference_id<'a>(raw: &'a str, resource_type: &str) -> &'a str {
    raw.strip_prefix(resource_type)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(raw)
}
