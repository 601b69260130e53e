//! FHIR `Schedule` (one per care session), `Slot` and `Appointment` (a booking), and booking
//! through `POST /fhir/Appointment` or `POST /fhir/Appointment/$book`.
//!
//! Capacity is not patient-level data: schedules and slots are read with `RegistryRead` on
//! their unit (the city's directory, so that any unit can find where to refer). Appointments
//! are: a referral's booking is read by whoever may read the referral, and booked by its
//! parties (sender, receiver, or the group's coordinator: `PatientWrite` at their end); a
//! booking without a referral is made by staff of the slot's own unit (`PatientWrite` on the
//! slot's unit), since a primary unit sends its patients to the lead hospital by referral.
//!
//! The store has no lookup of a session or a slot by id yet, so sessions are found through the
//! free capacity the caller's group offers (`Store::find_slots`, up to 90 days ahead) and their
//! slots through `Store::slots`: a session whose slots are all taken or past is not found.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, NaiveDateTime};
use serde_json::{json, Value};

use medgrid_domain::access::{authorize, Action, Id, OrgPath};
use medgrid_domain::{FieldError, Invalid};
use medgrid_store::booking::{Booking, BookingRequest, FreeSlot, Slot, SlotSearch};
use medgrid_store::referral::Referral;
use medgrid_store::{local_now, StoreError};

use super::referral::{may_read, readable};
use super::{
    count_param, id_param, instant, reference_id, searchset, Fhir, FhirCaller, Resource,
    SYS_BOOKING_REFERENCE, SYS_DEPARTMENT, SYS_SLOT_RESERVATION,
};
use crate::auth::{digest, Caller};
use crate::error::AppError;
use crate::AppState;

/// How far ahead sessions are looked for.
const HORIZON_DAYS: i64 = 90;

/// A care session as far as the free capacity tells it.
#[derive(Debug, Clone)]
struct Session {
    id: Id,
    unit_id: Id,
    unit_name: String,
    department_code: String,
    practitioner_id: Option<Id>,
    practitioner_name: Option<String>,
    slot_minutes: i64,
    /// Free slot ids whose hold, if any, has run out (the store counts them free).
    free: Vec<Id>,
}

impl Session {
    fn from_free(s: &FreeSlot) -> Session {
        Session {
            id: s.session_id,
            unit_id: s.unit_id,
            unit_name: s.unit_name.clone(),
            department_code: s.department_code.clone(),
            practitioner_id: s.practitioner_id,
            practitioner_name: s.practitioner_name.clone(),
            slot_minutes: s.slot_minutes,
            free: Vec::new(),
        }
    }
}

/// Sessions with free capacity in the caller's group (a unit's, when `unit` is named) whose
/// unit the caller may see in the directory, in time order.
async fn sessions(
    state: &AppState,
    caller: &Caller,
    unit: Option<Id>,
) -> Result<Vec<Session>, AppError> {
    let now = local_now();
    let search = SlotSearch {
        group_id: if unit.is_some() {
            None
        } else {
            caller.principal.scope.path.group
        },
        unit_id: unit,
        from: Some(now),
        to: Some(now + chrono::Duration::days(HORIZON_DAYS)),
        for_referral: true,
        limit: 500,
        ..SlotSearch::default()
    };
    let free = state.store.find_slots(&state.policy, &search, now).await?;
    let mut out: Vec<Session> = Vec::new();
    let mut paths: HashMap<Id, bool> = HashMap::new();
    for s in &free {
        let visible = match paths.get(&s.unit_id) {
            Some(v) => *v,
            None => {
                let path = state.store.unit(s.unit_id).await?.path();
                let v = authorize(&caller.principal, Action::RegistryRead, &path).is_ok();
                paths.insert(s.unit_id, v);
                v
            }
        };
        if !visible {
            continue;
        }
        let i = match out.iter().position(|x| x.id == s.session_id) {
            Some(i) => i,
            None => {
                out.push(Session::from_free(s));
                out.len() - 1
            }
        };
        out[i].free.push(s.slot_id);
    }
    Ok(out)
}

/// The session of a slot, and the slot, among the sessions the caller can see.
async fn find_slot(
    state: &AppState,
    caller: &Caller,
    slot_id: Id,
) -> Result<Option<(Session, Slot)>, AppError> {
    for s in sessions(state, caller, None).await? {
        if let Some(slot) = state
            .store
            .slots(s.id)
            .await?
            .into_iter()
            .find(|x| x.id == slot_id)
        {
            return Ok(Some((s, slot)));
        }
    }
    Ok(None)
}

fn schedule_resource(s: &Session, slots: &[Slot]) -> Value {
    let mut actors = vec![
        json!({"reference": format!("Organization/unit-{}", s.unit_id), "display": s.unit_name}),
    ];
    if let Some(p) = s.practitioner_id {
        actors.push(
            json!({"reference": format!("Practitioner/{p}"), "display": s.practitioner_name}),
        );
    }
    let mut r = json!({
        "resourceType": "Schedule",
        "id": s.id.to_string(),
        "active": true,
        "serviceType": [{"coding": [{"system": SYS_DEPARTMENT, "code": s.department_code}], "text": s.department_code}],
        "actor": actors,
    });
    if let (Some(first), Some(last)) = (slots.first(), slots.last()) {
        r["planningHorizon"] = json!({
            "start": instant(first.starts_at),
            "end": instant(last.starts_at + chrono::Duration::minutes(s.slot_minutes)),
        });
    }
    let reserved = slots.iter().filter(|x| x.reserved).count();
    r["comment"] = json!(format!(
        "号源 {} 个，其中基层转诊预留 {} 个",
        slots.len(),
        reserved
    ));
    r
}

/// FHIR slot status: a hold is tentative until it runs out (then the store counts it free).
fn slot_status(s: &Session, slot: &Slot) -> &'static str {
    match slot.status.as_str() {
        "free" => "free",
        "held" if s.free.contains(&slot.id) => "free",
        "held" => "busy-tentative",
        _ => "busy",
    }
}

fn slot_resource(s: &Session, slot: &Slot) -> Value {
    let mut r = json!({
        "resourceType": "Slot",
        "id": slot.id.to_string(),
        "schedule": {"reference": format!("Schedule/{}", s.id)},
        "serviceType": [{"coding": [{"system": SYS_DEPARTMENT, "code": s.department_code}], "text": s.department_code}],
        "status": slot_status(s, slot),
        "start": instant(slot.starts_at),
        "end": instant(slot.starts_at + chrono::Duration::minutes(s.slot_minutes)),
    });
    if slot.reserved {
        r["serviceCategory"] = json!([{
            "coding": [{"system": SYS_SLOT_RESERVATION, "code": "referral", "display": "基层转诊预留"}],
            "text": "基层转诊预留",
        }]);
        r["comment"] = json!("基层转诊预留：仅供已接收的转诊预约，就诊前一天未用则转为普通号源");
    }
    r
}

async fn unit_path(state: &AppState, unit: Id) -> Result<OrgPath, AppError> {
    Ok(state.store.unit(unit).await?.path())
}

pub async fn read_schedule(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Path(id): Path<String>,
) -> Result<Resource, Fhir> {
    let id = id_param(&id)?;
    let s = sessions(&state, &caller, None)
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or(Fhir(AppError::NotFound))?;
    caller
        .allow(Action::RegistryRead, &unit_path(&state, s.unit_id).await?)
        .await?;
    let slots = state.store.slots(s.id).await?;
    Ok(Resource(schedule_resource(&s, &slots)))
}

/// `actor=Organization/unit-N` (or `Practitioner/N`), `service-type`, `_id`.
pub async fn search_schedules(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Resource, Fhir> {
    let count = count_param(params.get("_count").map(String::as_str))?;
    let actor = params.get("actor").map(String::as_str);
    let unit = actor
        .and_then(|a| reference_id(a, "Organization").strip_prefix("unit-"))
        .and_then(|u| u.parse::<Id>().ok());
    let practitioner = actor
        .and_then(|a| a.strip_prefix("Practitioner/"))
        .and_then(|p| p.parse::<Id>().ok());
    if actor.is_some() && unit.is_none() && practitioner.is_none() {
        return Ok(Resource(searchset("Schedule", Vec::new(), count)));
    }
    let service = params
        .get("service-type")
        .map(|t| t.rsplit('|').next().unwrap_or(t).to_owned());
    let id = params.get("_id");
    let mut matches = Vec::new();
    for s in sessions(&state, &caller, unit).await? {
        if id.is_some_and(|i| *i != s.id.to_string())
            || service.as_ref().is_some_and(|t| *t != s.department_code)
            || practitioner.is_some_and(|p| s.practitioner_id != Some(p))
        {
            continue;
        }
        let slots = state.store.slots(s.id).await?;
        matches.push(schedule_resource(&s, &slots));
    }
    Ok(Resource(searchset("Schedule", matches, count)))
}

pub async fn read_slot(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Path(id): Path<String>,
) -> Result<Resource, Fhir> {
    let (s, slot) = find_slot(&state, &caller, id_param(&id)?)
        .await?
        .ok_or(Fhir(AppError::NotFound))?;
    caller
        .allow(Action::RegistryRead, &unit_path(&state, s.unit_id).await?)
        .await?;
    Ok(Resource(slot_resource(&s, &slot)))
}

/// A FHIR date search value on `start`: `ge2026-11-24`, `lt2026-11-25T12:00:00`, …
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DateParam {
    prefix: Prefix,
    /// The value's range: a whole day for a date, one instant for a date-time.
    low: NaiveDateTime,
    high: NaiveDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl DateParam {
    fn parse(raw: &str) -> Result<DateParam, FieldError> {
        let bad = || {
            FieldError::new(
                "start",
                "format",
                "start 须为日期或时间，如 ge2026-11-24",
                "start must be a date or date-time, such as ge2026-11-24",
            )
        };
        let (prefix, value) = match raw.get(..2) {
            Some("eq") => (Prefix::Eq, &raw[2..]),
            Some("ne") => (Prefix::Ne, &raw[2..]),
            Some("lt") => (Prefix::Lt, &raw[2..]),
            Some("le") => (Prefix::Le, &raw[2..]),
            Some("gt") => (Prefix::Gt, &raw[2..]),
            Some("ge") => (Prefix::Ge, &raw[2..]),
            _ => (Prefix::Eq, raw),
        };
        if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
            let low = d.and_time(chrono::NaiveTime::MIN);
            return Ok(DateParam {
                prefix,
                low,
                high: low + chrono::Duration::days(1),
            });
        }
        // Times are China time; an offset, if given, is read as such and converted.
        let t = chrono::DateTime::parse_from_rfc3339(value)
            .map(|t| t.naive_utc() + chrono::Duration::hours(8))
            .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S"))
            .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M"))
            .map_err(|_| bad())?;
        Ok(DateParam {
            prefix,
            low: t,
            high: t + chrono::Duration::seconds(1),
        })
    }

    fn matches(&self, t: NaiveDateTime) -> bool {
        let within = self.low <= t && t < self.high;
        match self.prefix {
            Prefix::Eq => within,
            Prefix::Ne => !within,
            Prefix::Lt => t < self.low,
            Prefix::Le => t < self.high,
            Prefix::Gt => t >= self.high,
            Prefix::Ge => t >= self.low,
        }
    }
}

/// `schedule=Schedule/N`, `start` (repeatable, with prefixes), `status`, `service-type`.
pub async fn search_slots(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Resource, Fhir> {
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let count = count_param(get("_count").map(String::as_str))?;
    let mut starts = Vec::new();
    let mut bad = Invalid::default();
    for (_, v) in pairs.iter().filter(|(k, _)| k == "start") {
        if let Some(d) = bad.check(DateParam::parse(v)) {
            starts.push(d);
        }
    }
    if !bad.is_empty() {
        return Err(Fhir(AppError::Invalid(bad)));
    }
    let schedule = match get("schedule").map(|s| reference_id(s, "Schedule").parse::<Id>()) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => return Ok(Resource(searchset("Slot", Vec::new(), count))),
    };
    let status = get("status");
    let service = get("service-type").map(|t| t.rsplit('|').next().unwrap_or(t).to_owned());
    let id = get("_id");
    let mut matches = Vec::new();
    for s in sessions(&state, &caller, None).await? {
        if schedule.is_some_and(|id| id != s.id)
            || service.as_ref().is_some_and(|t| *t != s.department_code)
        {
            continue;
        }
        for slot in state.store.slots(s.id).await? {
            if starts.iter().all(|d| d.matches(slot.starts_at))
                && status.is_none_or(|st| st.split(',').any(|x| x == slot_status(&s, &slot)))
                && id.is_none_or(|i| *i == slot.id.to_string())
            {
                matches.push(slot_resource(&s, &slot));
            }
        }
    }
    Ok(Resource(searchset("Slot", matches, count)))
}

fn appointment_status(b: &Booking) -> &'static str {
    match b.status.as_str() {
        "booked" => "booked",
        "arrived" => "arrived",
        "fulfilled" | "completed" => "fulfilled",
        "noshow" | "no_show" => "noshow",
        _ => "cancelled",
    }
}

/// The booking as an Appointment; the slot's time and place when the caller can see them.
async fn appointment(
    state: &AppState,
    caller: &Caller,
    b: &Booking,
    referral: Option<&Referral>,
) -> Result<Value, AppError> {
    let mut patient = json!({"reference": format!("Patient/{}", b.resident_id)});
    if let Some(f) = referral {
        patient["display"] = json!(f.resident_name);
    }
    let mut participants = vec![json!({
        "actor": patient,
        "required": "required",
        "status": "accepted",
    })];
    let mut r = json!({
        "resourceType": "Appointment",
        "id": b.id.to_string(),
        "identifier": [{"system": SYS_BOOKING_REFERENCE, "value": b.reference}],
        "status": appointment_status(b),
        "serviceCategory": [{
            "coding": [{"system": SYS_SLOT_RESERVATION, "code": b.kind, "display": if b.kind == "referral" { "转诊预约" } else { "普通预约" }}],
            "text": if b.kind == "referral" { "转诊预约" } else { "普通预约" },
        }],
        "slot": [{"reference": format!("Slot/{}", b.slot_id)}],
    });
    if let Some(f) = b.referral_id {
        r["basedOn"] = json!([{"reference": format!("ServiceRequest/{f}")}]);
    }
    match find_slot(state, caller, b.slot_id).await? {
        Some((s, slot)) => {
            r["start"] = json!(instant(slot.starts_at));
            r["end"] = json!(instant(
                slot.starts_at + chrono::Duration::minutes(s.slot_minutes)
            ));
            r["minutesDuration"] = json!(s.slot_minutes);
            r["serviceType"] = json!([{"coding": [{"system": SYS_DEPARTMENT, "code": s.department_code}], "text": s.department_code}]);
            participants.push(json!({
                "actor": {"reference": format!("Organization/unit-{}", s.unit_id), "display": s.unit_name},
                "required": "required",
                "status": "accepted",
            }));
            if let Some(p) = s.practitioner_id {
                participants.push(json!({
                    "actor": {"reference": format!("Practitioner/{p}"), "display": s.practitioner_name},
                    "required": "required",
                    "status": "accepted",
                }));
            }
        }
        None => {
            if let (Some(f), "booked") = (b.referral_id, b.status.as_str()) {
                if let Some((_, starts_at, unit_name)) = state.store.referral_booking(f).await? {
                    r["start"] = json!(instant(starts_at));
                    if let Some(to) = referral.and_then(|f| f.to_unit_id) {
                        participants.push(json!({
                            "actor": {"reference": format!("Organization/unit-{to}"), "display": unit_name},
                            "required": "required",
                            "status": "accepted",
                        }));
                    }
                }
            }
        }
    }
    r["participant"] = json!(participants);
    Ok(r)
}

/// A booking for a caller who may see it, and the referral it is for.
async fn readable_booking(
    state: &AppState,
    caller: &Caller,
    b: &Booking,
) -> Result<(Option<Referral>, OrgPath), AppError> {
    if let Some(id) = b.referral_id {
        let f = readable(state, caller, id).await?;
        let path = f.from_path();
        return Ok((Some(f), path));
    }
    // Without a referral the booking's unit is known only through its slot; the group is
    // always known, so a group-wide clinician or coordinator may read it.
    let path = match find_slot(state, caller, b.slot_id).await? {
        Some((s, _)) => unit_path(state, s.unit_id).await?,
        None => state.store.group(b.group_id).await?.path(),
    };
    caller.allow(Action::PatientRead, &path).await?;
    Ok((None, path))
}

pub async fn read_appointment(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Path(id): Path<String>,
) -> Result<Resource, Fhir> {
    let b = state.store.booking(id_param(&id)?).await?;
    let (f, path) = readable_booking(&state, &caller, &b).await?;
    let r = appointment(&state, &caller, &b, f.as_ref()).await?;
    caller
        .audit_read("fhir.read", "Appointment", b.id.to_string(), path)
        .await?;
    Ok(Resource(r))
}

/// `patient=Patient/N`: the patient's live referral bookings the caller may see (the store
/// lists bookings by referral, not yet by resident).
pub async fn search_appointments(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Resource, Fhir> {
    let count = count_param(params.get("_count").map(String::as_str))?;
    let Some(patient) = params.get("patient").or_else(|| params.get("actor")) else {
        return Err(Fhir(AppError::Invalid(Invalid::one(FieldError::new(
            "patient",
            "required",
            "请按患者检索预约：patient=Patient/{id}",
            "search appointments by patient: patient=Patient/{id}",
        )))));
    };
    let Ok(resident) = reference_id(patient, "Patient").parse::<Id>() else {
        return Ok(Resource(searchset("Appointment", Vec::new(), count)));
    };
    caller
        .allow(Action::PatientRead, &caller.principal.scope.path)
        .await?;
    let status = params.get("status");
    let referrals = state
        .store
        .referrals(&medgrid_store::referral::ReferralFilter {
            resident_id: Some(resident),
            live_only: true,
            limit: 500,
            ..Default::default()
        })
        .await?;
    let mut matches = Vec::new();
    for f in referrals.iter().filter(|f| may_read(&caller, f)) {
        if let Some((b, _, _)) = state.store.referral_booking(f.id).await? {
            if status.is_none_or(|s| s.split(',').any(|x| x == appointment_status(&b))) {
                matches.push(appointment(&state, &caller, &b, Some(f)).await?);
            }
        }
    }
    caller
        .audit_read(
            "fhir.search",
            "Appointment",
            format!("patient={resident}"),
            caller.principal.scope.path,
        )
        .await?;
    Ok(Resource(searchset("Appointment", matches, count)))
}

/// What an Appointment asks to book.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ask {
    slot_id: Id,
    resident_id: Id,
    referral_id: Option<Id>,
}

fn invalid(field: &str, code: &'static str, zh: &str, en: &str) -> AppError {
    AppError::Invalid(Invalid::one(FieldError::new(field, code, zh, en)))
}

/// The ids of the references in `list` to resources of `kind`.
fn references(list: Option<&Value>, kind: &str, path: &str) -> Vec<Option<Id>> {
    list.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.pointer(path).and_then(Value::as_str))
                .filter_map(|r| {
                    r.strip_prefix(kind)?
                        .strip_prefix('/')
                        .map(|id| id.parse().ok())
                })
                .collect()
        })
        .unwrap_or_default()
}

fn read_ask(a: &Value) -> Result<Ask, AppError> {
    if a.get("resourceType").and_then(Value::as_str) != Some("Appointment") {
        return Err(invalid(
            "resourceType",
            "invalid",
            "请求体须为 Appointment 资源",
            "the body must be an Appointment resource",
        ));
    }
    let mut bad = Invalid::default();
    let slots = references(a.get("slot"), "Slot", "/reference");
    let slot_id = match slots.as_slice() {
        [Some(id)] => Some(*id),
        [] => {
            bad.push(FieldError::new(
                "Appointment.slot",
                "required",
                "须指定一个号源 Slot/{id}",
                "name one slot: Slot/{id}",
            ));
            None
        }
        _ => {
            bad.push(FieldError::new(
                "Appointment.slot",
                "invalid",
                "只能预约一个号源，且须为 Slot/{id}",
                "book exactly one slot, as Slot/{id}",
            ));
            None
        }
    };
    let patients = references(a.get("participant"), "Patient", "/actor/reference");
    let resident_id = match patients.as_slice() {
        [Some(id)] => Some(*id),
        _ => {
            bad.push(FieldError::new(
                "Appointment.participant",
                "required",
                "须有且仅有一位患者参与者 Patient/{id}",
                "name exactly one participant Patient/{id}",
            ));
            None
        }
    };
    let based = references(a.get("basedOn"), "ServiceRequest", "/reference");
    let referral_id = match based.as_slice() {
        [] => None,
        [Some(id)] => Some(*id),
        _ => {
            bad.push(FieldError::new(
                "Appointment.basedOn",
                "invalid",
                "至多引用一个转诊 ServiceRequest/{id}",
                "refer to at most one ServiceRequest/{id}",
            ));
            None
        }
    };
    match (slot_id, resident_id) {
        (Some(slot_id), Some(resident_id)) if bad.is_empty() => Ok(Ask {
            slot_id,
            resident_id,
            referral_id,
        }),
        _ => Err(AppError::Invalid(bad)),
    }
}

/// The store's field names as FHIR element paths, so that a client sees which element to fix.
fn fhir_fields(e: AppError) -> AppError {
    let rename = |mut f: FieldError| {
        f.field = match f.field.as_str() {
            "slot" | "slot_id" => "Appointment.slot".into(),
            "resident_id" => "Appointment.participant".into(),
            "referral_id" => "Appointment.basedOn".into(),
            "idempotency_key" => "Idempotency-Key".into(),
            other => other.to_owned(),
        };
        f
    };
    match e {
        AppError::Invalid(i) => AppError::Invalid(Invalid(i.0.into_iter().map(rename).collect())),
        AppError::Conflict(f) => AppError::Conflict(rename(f)),
        other => other,
    }
}

/// The key a retried request repeats: the `Idempotency-Key` header, or else a digest of the
/// caller and the exact body (so an identical retry by the same user books once).
fn idempotency_key(headers: &HeaderMap, caller: &Caller, body: &[u8]) -> String {
    match headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
    {
        Some(k) => k.to_owned(),
        None => {
            let d = digest(&format!(
                "{}\n{}",
                caller.user.id,
                String::from_utf8_lossy(body)
            ));
            format!("fhir-{}", d.get(..40).unwrap_or(&d))
        }
    }
}

/// Access for a booking, then the booking itself.
async fn book(
    state: &AppState,
    caller: &Caller,
    ask: &Ask,
    key: &str,
) -> Result<Booking, AppError> {
    let p = &caller.principal;
    let req = BookingRequest::new(
        ask.slot_id,
        ask.resident_id,
        ask.referral_id,
        key,
        local_now(),
    );
    if let Some(id) = ask.referral_id {
        let f = match state.store.referral(id).await {
            Err(StoreError::NotFound) => {
                return Err(invalid(
                    "Appointment.basedOn",
                    "not_found",
                    "引用的转诊不存在",
                    "no such ServiceRequest",
                ))
            }
            other => other?,
        };
        // The sending side books for its patient; the receiving side may book too.
        let target = match f.to_path() {
            Some(to)
                if authorize(p, Action::PatientWrite, &f.from_path()).is_err()
                    && authorize(p, Action::PatientWrite, &to).is_ok() =>
            {
                to
            }
            _ => f.from_path(),
        };
        caller.allow(Action::PatientWrite, &target).await?;
        if f.parties_of(p).is_empty() {
            return Err(AppError::Forbidden(medgrid_domain::access::Denied {
                message_zh: "只有转诊双方或转诊协调员可以预约".into(),
                message_en: "only the referral's parties or its coordinator may book".into(),
            }));
        }
        if f.resident_id != ask.resident_id {
            return Err(invalid(
                "Appointment.participant",
                "not_referral_patient",
                "患者须为该转诊的患者",
                "the patient must be the referral's patient",
            ));
        }
    } else {
        caller.allow(Action::PatientWrite, &p.scope.path).await?;
        let Some((s, _)) = find_slot(state, caller, ask.slot_id).await? else {
            return Err(AppError::Conflict(FieldError::new(
                "Appointment.slot",
                "not_free",
                "该号源不存在、已被预约或尚不可预约",
                "the slot does not exist, is taken, or is not open to booking",
            )));
        };
        caller
            .allow(Action::PatientWrite, &unit_path(state, s.unit_id).await?)
            .await?;
    }
    state
        .store
        .book(&caller.actor, &state.policy, &req)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => invalid(
                "Appointment.slot",
                "not_found",
                "号源不存在",
                "no such slot",
            ),
            other => fhir_fields(other.into()),
        })
}

async fn book_and_answer(
    state: &AppState,
    caller: &Caller,
    ask: &Ask,
    key: &str,
) -> Result<Response, Fhir> {
    let b = book(state, caller, ask, key).await?;
    let f = match b.referral_id {
        Some(id) => Some(state.store.referral(id).await?),
        None => None,
    };
    let r = appointment(state, caller, &b, f.as_ref()).await?;
    Ok((
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, "application/fhir+json".to_owned()),
            (header::LOCATION, format!("/fhir/Appointment/{}", b.id)),
        ],
        r.to_string(),
    )
        .into_response())
}

fn parse_body(body: &[u8]) -> Result<Value, Fhir> {
    serde_json::from_slice(body).map_err(|_| {
        Fhir(AppError::BadRequest(FieldError::new(
            "body",
            "json",
            "请求体须为 FHIR JSON",
            "the body must be FHIR JSON",
        )))
    })
}

/// `POST /fhir/Appointment`: create = book the named slot.
pub async fn create_appointment(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Fhir> {
    let ask = read_ask(&parse_body(&body)?)?;
    let key = idempotency_key(&headers, &caller, &body);
    book_and_answer(&state, &caller, &ask, &key).await
}

/// `POST /fhir/Appointment/$book`: a `Parameters` resource whose `appointment` parameter is
/// the Appointment to book.
pub async fn book_operation(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Fhir> {
    let v = parse_body(&body)?;
    let appointment = match v.get("resourceType").and_then(Value::as_str) {
        Some("Parameters") => v
            .get("parameter")
            .and_then(Value::as_array)
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p.get("name").and_then(Value::as_str) == Some("appointment"))
            })
            .and_then(|p| p.get("resource"))
            .ok_or_else(|| {
                invalid(
                    "Parameters.parameter",
                    "required",
                    "缺少参数 appointment（Appointment 资源）",
                    "the parameter appointment (an Appointment resource) is missing",
                )
            })?,
        // A bare Appointment is accepted too, as the operation's single input.
        Some("Appointment") => &v,
        _ => {
            return Err(Fhir(invalid(
                "resourceType",
                "invalid",
                "请求体须为 Parameters 资源",
                "the body must be a Parameters resource",
            )))
        }
    };
    let ask = read_ask(appointment)?;
    let key = idempotency_key(&headers, &caller, &body);
    book_and_answer(&state, &caller, &ask, &key).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").unwrap()
    }

    #[test]
    fn date_prefixes_bound_slot_starts() {
        let ge = DateParam::parse("ge2026-11-24").unwrap();
        assert!(ge.matches(at("2026-11-24T00:00:00")));
        assert!(!ge.matches(at("2026-11-23T23:59:59")));
        let lt = DateParam::parse("lt2026-11-25").unwrap();
        assert!(lt.matches(at("2026-11-24T23:00:00")));
        assert!(!lt.matches(at("2026-11-25T00:00:00")));
        let day = DateParam::parse("2026-11-24").unwrap();
        assert!(day.matches(at("2026-11-24T08:10:00")));
        assert!(!day.matches(at("2026-11-25T08:10:00")));
        let gt = DateParam::parse("gt2026-11-24T08:00:00").unwrap();
        assert!(!gt.matches(at("2026-11-24T08:00:00")));
        assert!(gt.matches(at("2026-11-24T08:10:00")));
        // An offset is converted to China time.
        let utc = DateParam::parse("ge2026-11-24T00:00:00Z").unwrap();
        assert!(!utc.matches(at("2026-11-24T07:59:00")));
        assert!(utc.matches(at("2026-11-24T08:00:00")));
        assert!(DateParam::parse("ge24/11/2026").is_err());
    }

    #[test]
    fn an_appointment_names_one_slot_and_one_patient() {
        let ok = read_ask(&json!({
            "resourceType": "Appointment",
            "status": "proposed",
            "slot": [{"reference": "Slot/7"}],
            "participant": [{"actor": {"reference": "Patient/9"}, "status": "needs-action"}],
            "basedOn": [{"reference": "ServiceRequest/3"}],
        }))
        .unwrap();
        assert_eq!(
            ok,
            Ask {
                slot_id: 7,
                resident_id: 9,
                referral_id: Some(3)
            }
        );
        let e = read_ask(&json!({
            "resourceType": "Appointment",
            "slot": [{"reference": "Slot/x"}],
            "participant": [],
        }))
        .unwrap_err();
        let fields: Vec<String> = e.fields().into_iter().map(|f| f.field).collect();
        assert_eq!(fields, ["Appointment.slot", "Appointment.participant"]);
    }
}
