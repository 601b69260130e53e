//! Capacity pages: a unit's timetable and wards (its managers), the reservation compliance
//! report with its chart (those who steer), the group bed pool, and the group's referral
//! catalogues (read by all, published by the group's medical-affairs side).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{Duration, NaiveDate};
use minijinja::context;
use serde::Deserialize;

use medgrid_domain::access::{Action, Id};
use medgrid_domain::referral::CatalogueKind;
use medgrid_domain::{FieldError, Invalid};
use medgrid_store::{local_now, UnitFilter};

use super::{check_csrf, may, nav, page, UiError};
use crate::auth::{Caller, UiCaller};
use crate::capacity::{self, ReportScope, ScheduleInput, WardInput};
use crate::catalogues::{self, CatalogueInput};
use crate::error::AppError;
use crate::AppState;

/// A share in whole per cent, 0 of nothing.
fn percent(part: u32, whole: u32) -> u32 {
    (part * 100).checked_div(whole).unwrap_or(0)
}

const WEEKDAYS: [&str; 7] = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"];

#[derive(Deserialize, Default)]
pub struct UnitQuery {
    unit_id: Option<Id>,
    done: Option<String>,
}

/// The unit the page is about: the one asked for, else the caller's own, else the lead
/// hospital of the caller's group.
async fn chosen_unit(state: &AppState, caller: &Caller, asked: Option<Id>) -> Result<Id, AppError> {
    let own = caller.principal.scope.path;
    if let Some(id) = asked.or(own.unit) {
        return Ok(id);
    }
    if let Some(group) = own.group {
        let units = state
            .store
            .units(&UnitFilter {
                group_id: Some(group),
                limit: 1,
                role: Some(medgrid_domain::org::MemberRole::Lead),
                ..UnitFilter::default()
            })
            .await?;
        if let Some(u) = units.first() {
            return Ok(u.id);
        }
    }
    Err(Invalid::one(FieldError::new(
        "unit_id",
        "required",
        "请选择机构",
        "choose a unit",
    ))
    .into())
}

pub async fn timetable_page(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Query(q): Query<UnitQuery>,
) -> Result<Response, UiError> {
    render_timetable(&state, &caller, q.unit_id, q.done, Vec::new()).await
}

async fn render_timetable(
    state: &AppState,
    caller: &Caller,
    unit_id: Option<Id>,
    done: Option<String>,
    errors: Vec<FieldError>,
) -> Result<Response, UiError> {
    let unit_id = chosen_unit(state, caller, unit_id)
        .await
        .map_err(|e| page(state, caller, e))?;
    let t = capacity::timetable(state, caller, unit_id)
        .await
        .map_err(|e| page(state, caller, e))?;
    let can_write = may(caller, Action::UnitResourcesWrite, &t.unit.path());
    let siblings = match t.unit.group_id {
        Some(g) => {
            state
                .store
                .units(&UnitFilter {
                    group_id: Some(g),
                    limit: 500,
                    ..UnitFilter::default()
                })
                .await?
        }
        None => Vec::new(),
    };
    let siblings: Vec<_> = siblings
        .iter()
        .map(|u| context! { id => u.id, name => u.legal_name })
        .collect();
    let departments = state.store.departments(unit_id).await?;
    let departments: Vec<_> = departments
        .iter()
        .map(|d| context! { code => d.code, name => d.name })
        .collect();
    let clinicians = state.store.practitioners(Some(unit_id), None, 300).await?;
    let names: BTreeMap<Id, String> = clinicians.iter().map(|p| (p.id, p.name.clone())).collect();
    let clinicians: Vec<_> = clinicians
        .iter()
        .map(|p| context! { id => p.id, name => p.name })
        .collect();
    let lead = t.unit.role == medgrid_domain::org::MemberRole::Lead;
    let schedules: Vec<_> = t
        .schedules
        .iter()
        .map(|s| {
            let needed = if lead {
                state.policy.reserved_needed(s.capacity)
            } else {
                0
            };
            context! {
                id => s.id,
                weekday => WEEKDAYS.get(s.weekday as usize - 1).copied().unwrap_or("?"),
                start => s.start_time.format("%H:%M").to_string(),
                department => s.department_code,
                practitioner => s.practitioner_id.and_then(|p| names.get(&p).cloned()),
                slot_minutes => s.slot_minutes, capacity => s.capacity, reserved => s.reserved,
                needed, expert => s.expert_visit,
                pct => percent(s.reserved, s.capacity),
            }
        })
        .collect();
    let wards: Vec<_> = t
        .wards
        .iter()
        .map(|w| {
            context! {
                name => w.name, department => w.department_code, beds => w.beds,
                reserved => w.reserved_beds,
                needed => if lead { state.policy.reserved_beds_needed(w.beds) } else { 0 },
                pct => percent(w.reserved_beds, w.beds),
            }
        })
        .collect();
    let status = if errors.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    let (share_n, share_d) = state.policy.session_share;
    let (bed_n, bed_d) = state.policy.bed_share;
    let html = state.templates.render(
        "capacity.html",
        context! {
            nav => nav(caller), active => "capacity", unit => t.unit, lead, can_write,
            schedules, wards, siblings, departments, clinicians, done, errors,
            weekdays => WEEKDAYS, open_days => state.policy.open_days_ahead,
            release_at => state.policy.release_at.format("%H:%M").to_string(),
            share => format!("{share_n}/{share_d}"), bed_share => format!("{bed_n}/{bed_d}"),
        },
    )?;
    Ok((status, html).into_response())
}

/// An HTML form's optional number: empty means none.
fn optional_id(raw: &str, field: &str) -> Result<Option<Id>, AppError> {
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse().map(Some).map_err(|_| {
        Invalid::one(FieldError::new(
            field,
            "invalid",
            "请选择有效的选项",
            "not a valid choice",
        ))
        .into()
    })
}

fn number(raw: &str, field: &str, inv: &mut Invalid) -> u32 {
    match raw.trim().parse() {
        Ok(n) => n,
        Err(_) => {
            inv.push(FieldError::new(
                field,
                "invalid",
                "须为非负整数",
                "must be a whole number, 0 or more",
            ));
            0
        }
    }
}

#[derive(Deserialize)]
pub struct ScheduleForm {
    csrf: String,
    department_code: String,
    #[serde(default)]
    practitioner_id: String,
    weekday: String,
    start_time: String,
    slot_minutes: String,
    capacity: String,
    reserved: String,
    #[serde(default)]
    expert_visit: Option<String>,
}

async fn back(
    state: &AppState,
    caller: &Caller,
    unit_id: Id,
    result: Result<(), AppError>,
    done: &str,
) -> Result<Response, UiError> {
    match result {
        Ok(()) => {
            Ok(Redirect::to(&format!("/capacity?unit_id={unit_id}&done={done}")).into_response())
        }
        Err(AppError::Invalid(inv)) => {
            render_timetable(state, caller, Some(unit_id), None, inv.0).await
        }
        Err(AppError::Conflict(e)) => {
            render_timetable(state, caller, Some(unit_id), None, vec![e]).await
        }
        Err(e) => Err(page(state, caller, e)),
    }
}

pub async fn add_schedule(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(unit_id): Path<Id>,
    Form(f): Form<ScheduleForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    let result = async {
        let mut inv = Invalid::default();
        let input = ScheduleInput {
            department_code: f.department_code.clone(),
            practitioner_id: optional_id(&f.practitioner_id, "practitioner_id")?,
            weekday: number(&f.weekday, "weekday", &mut inv),
            start_time: f.start_time.clone(),
            slot_minutes: number(&f.slot_minutes, "slot_minutes", &mut inv),
            capacity: number(&f.capacity, "capacity", &mut inv),
            reserved: number(&f.reserved, "reserved", &mut inv),
            expert_visit: f.expert_visit.is_some(),
        };
        if !inv.is_empty() {
            return Err(inv.into());
        }
        capacity::add_schedule(&state, &caller, unit_id, &input).await?;
        Ok(())
    }
    .await;
    back(&state, &caller, unit_id, result, "schedule").await
}

#[derive(Deserialize)]
pub struct ReservationForm {
    csrf: String,
    reserved: String,
}

pub async fn change_reservation(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path((unit_id, schedule_id)): Path<(Id, Id)>,
    Form(f): Form<ReservationForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    let mut inv = Invalid::default();
    let reserved = number(&f.reserved, "reserved", &mut inv);
    let result = if inv.is_empty() {
        capacity::change_reservation(&state, &caller, unit_id, schedule_id, reserved)
            .await
            .map(|_| ())
    } else {
        Err(inv.into())
    };
    back(&state, &caller, unit_id, result, "reservation").await
}

#[derive(Deserialize)]
pub struct WardForm {
    csrf: String,
    department_code: String,
    name: String,
    beds: String,
    reserved_beds: String,
}

pub async fn add_ward(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(unit_id): Path<Id>,
    Form(f): Form<WardForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    let mut inv = Invalid::default();
    let input = WardInput {
        department_code: f.department_code.clone(),
        name: f.name.clone(),
        beds: number(&f.beds, "beds", &mut inv),
        reserved_beds: number(&f.reserved_beds, "reserved_beds", &mut inv),
    };
    let result = if inv.is_empty() {
        capacity::add_ward(&state, &caller, unit_id, &input)
            .await
            .map(|_| ())
    } else {
        Err(inv.into())
    };
    back(&state, &caller, unit_id, result, "ward").await
}

#[derive(Deserialize, Default)]
pub struct ReportQuery {
    group_id: Option<Id>,
    unit_id: Option<Id>,
    from: Option<NaiveDate>,
    until: Option<NaiveDate>,
}

/// One unit's department over the whole period, for the chart.
#[derive(Default, serde::Serialize)]
struct Bar {
    label: String,
    capacity: i64,
    reserved: i64,
    required: i64,
    by_referral: i64,
    by_general: i64,
    unused: i64,
    compliant_days: i64,
    days: i64,
}

pub async fn compliance_page(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Query(q): Query<ReportQuery>,
) -> Result<Response, UiError> {
    let today = local_now().date();
    let from = q.from.unwrap_or(today);
    let until = q.until.unwrap_or(from + Duration::days(13));
    let scope = ReportScope {
        group_id: q.group_id,
        unit_id: q.unit_id,
    };
    let (rows, errors) = match capacity::compliance(&state, &caller, scope, from, until).await {
        Ok(rows) => (rows, Vec::new()),
        Err(AppError::Invalid(inv)) => (Vec::new(), inv.0),
        Err(e) => return Err(page(&state, &caller, e)),
    };
    let mut bars: BTreeMap<(bool, String, String), Bar> = BTreeMap::new();
    for r in &rows {
        let b = bars
            .entry((
                r.unit_role != "lead",
                r.unit_name.clone(),
                r.department_code.clone(),
            ))
            .or_default();
        // The chart's label column is narrow: the unit's name is cut, the department kept.
        let unit: String = r.unit_name.chars().take(12).collect();
        let cut = if unit.chars().count() < r.unit_name.chars().count() {
            "…"
        } else {
            ""
        };
        b.label = format!("{unit}{cut} · {}", r.department_code);
        b.capacity += r.capacity;
        b.reserved += r.reserved;
        b.required += r.required;
        b.by_referral += r.reserved_booked_by_referral;
        b.by_general += r.reserved_taken_by_general;
        b.days += 1;
        b.compliant_days += i64::from(r.compliant);
    }
    let mut bars: Vec<Bar> = bars.into_values().collect();
    for b in &mut bars {
        b.unused = (b.reserved - b.by_referral - b.by_general).max(0);
    }
    let scale = bars
        .iter()
        .map(|b| b.reserved.max(b.required))
        .max()
        .unwrap_or(0)
        .max(1);
    let breaches = rows.iter().filter(|r| !r.compliant).count();
    let rows: Vec<_> = rows
        .iter()
        .map(|r| {
            context! {
                day => r.day.to_string(), unit => r.unit_name, lead => r.unit_role == "lead",
                department => r.department_code, sessions => r.sessions, capacity => r.capacity,
                reserved => r.reserved, required => r.required, compliant => r.compliant,
                by_referral => r.reserved_booked_by_referral, by_general => r.reserved_taken_by_general,
                referral_bookings => r.referral_bookings, general_bookings => r.general_bookings,
                pct => (r.reserved * 100).checked_div(r.capacity).unwrap_or(0),
            }
        })
        .collect();
    let html = state.templates.render(
        "compliance.html",
        context! {
            nav => nav(&caller), active => "compliance", rows, bars, scale, breaches, errors,
            from => from.to_string(), until => until.to_string(),
            group_id => q.group_id, unit_id => q.unit_id,
            share => format!("{}/{}", state.policy.session_share.0, state.policy.session_share.1),
        },
    )?;
    Ok(html.into_response())
}

#[derive(Deserialize, Default)]
pub struct PoolQuery {
    group_id: Option<Id>,
    day: Option<NaiveDate>,
}

pub async fn bed_pool_page(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Query(q): Query<PoolQuery>,
) -> Result<Response, UiError> {
    let day = q.day.unwrap_or_else(|| local_now().date());
    let wards = capacity::bed_pool(&state, &caller, q.group_id, day)
        .await
        .map_err(|e| page(&state, &caller, e))?;
    let totals = wards.iter().fold((0u32, 0u32, 0u32, 0u32), |t, w| {
        (
            t.0 + w.beds,
            t.1 + w.reserved_beds,
            t.2 + w.booked_general + w.booked_reserved,
            t.3 + w.free_reserved,
        )
    });
    let wards: Vec<_> = wards
        .iter()
        .map(|w| {
            let pct = |n: u32| percent(n, w.beds);
            context! {
                unit => w.unit_name, lead => w.unit_role == "lead", name => w.name,
                department => w.department_code, beds => w.beds, reserved => w.reserved_beds,
                booked_general => w.booked_general, booked_reserved => w.booked_reserved,
                free_general => w.free_general, free_reserved => w.free_reserved,
                pct_booked_reserved => pct(w.booked_reserved),
                pct_free_reserved => pct(w.free_reserved),
                pct_booked_general => pct(w.booked_general),
            }
        })
        .collect();
    let html = state.templates.render(
        "bed_pool.html",
        context! {
            nav => nav(&caller), active => "beds", wards, day => day.to_string(),
            beds => totals.0, reserved => totals.1, booked => totals.2, free_reserved => totals.3,
            group_id => q.group_id,
        },
    )?;
    Ok(html.into_response())
}

#[derive(Deserialize, Default)]
pub struct CatalogueQuery {
    group_id: Option<Id>,
    done: Option<String>,
}

pub async fn catalogues_page(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Query(q): Query<CatalogueQuery>,
) -> Result<Response, UiError> {
    render_catalogues(&state, &caller, q.group_id, q.done, None).await
}

async fn render_catalogues(
    state: &AppState,
    caller: &Caller,
    group_id: Option<Id>,
    done: Option<String>,
    failed: Option<(CatalogueKind, String, Vec<FieldError>)>,
) -> Result<Response, UiError> {
    let Some(group_id) = group_id.or(caller.principal.scope.path.group) else {
        return Err(page(
            state,
            caller,
            Invalid::one(FieldError::new(
                "group_id",
                "required",
                "请选择医疗集团",
                "choose a group",
            ))
            .into(),
        ));
    };
    let group = state.store.group(group_id).await?;
    let current = catalogues::current(state, caller, group_id)
        .await
        .map_err(|e| page(state, caller, e))?;
    let can_write = may(caller, Action::CatalogueWrite, &group.path());
    let mut lists = Vec::with_capacity(current.len());
    for c in &current {
        let versions = catalogues::versions(state, caller, group_id, c.kind)
            .await
            .map_err(|e| page(state, caller, e))?;
        let versions: Vec<_> = versions
            .iter()
            .map(|v| {
                context! {
                    version => v.version, entries => v.entries, by => v.published_by,
                    note => v.note, at => super::accounts::beijing_time(v.published_at),
                }
            })
            .collect();
        let (text, errors) = match &failed {
            Some((kind, text, errors)) if *kind == c.kind => (text.clone(), errors.clone()),
            _ => (c.as_text(), Vec::new()),
        };
        let entries: Vec<_> = c
            .entries
            .iter()
            .map(|e| {
                context! {
                    codes => e.range.as_ref().map(|r| if r.from == r.to { r.from.to_string() } else { format!("{}-{}", r.from, r.to) }),
                    label => e.label,
                }
            })
            .collect();
        lists.push(context! {
            kind => c.kind.as_str(), label => c.kind.label_zh(), version => c.version,
            count => c.entries.len(), entries, versions, text, errors,
            published_at => c.published_at.map(super::accounts::beijing_time),
            published_by => c.published_by, note => c.note,
        });
    }
    let status = if failed.is_some() {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    } else {
        axum::http::StatusCode::OK
    };
    let html = state.templates.render(
        "catalogues.html",
        context! {
            nav => nav(caller), active => "catalogues", group, lists, can_write, done,
        },
    )?;
    Ok((status, html).into_response())
}

#[derive(Deserialize)]
pub struct CatalogueForm {
    csrf: String,
    base_version: i64,
    text: String,
    #[serde(default)]
    note: String,
}

pub async fn publish_catalogue(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path((group_id, kind)): Path<(Id, String)>,
    Form(f): Form<CatalogueForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    let kind = CatalogueKind::parse(&kind)
        .map_err(|e| page(&state, &caller, AppError::Invalid(Invalid::one(e))))?;
    let input = CatalogueInput {
        base_version: f.base_version,
        text: f.text.clone(),
        note: f.note.clone(),
    };
    match catalogues::publish(&state, &caller, group_id, kind, &input).await {
        Ok(_) => Ok(Redirect::to(&format!(
            "/catalogues?group_id={group_id}&done={}",
            kind.as_str()
        ))
        .into_response()),
        Err(AppError::Invalid(inv)) => {
            render_catalogues(
                &state,
                &caller,
                Some(group_id),
                None,
                Some((kind, f.text, inv.0)),
            )
            .await
        }
        Err(AppError::Conflict(e)) => {
            render_catalogues(
                &state,
                &caller,
                Some(group_id),
                None,
                Some((kind, f.text, vec![e])),
            )
            .await
        }
        Err(e) => Err(page(&state, &caller, e)),
    }
}
