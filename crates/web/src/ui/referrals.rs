//! Referral pages: the family doctor's and the receiving department's worklists, the referral
//! form, one referral with the moves its viewer may make and the slots to book, the
//! coordinator's board and the follow-up list that down-referrals feed.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use minijinja::context;
use serde::Deserialize;

use medgrid_domain::access::{Action, Id, Role};
use medgrid_domain::referral::{Direction, Kind, Party, Status};
use medgrid_domain::{FieldError, Invalid};
use medgrid_store::referral::{Move, ReferralFilter};
use medgrid_store::{local_now, UnitFilter};

use super::{check_csrf, nav, page, UiError};
use crate::auth::{Caller, UiCaller};
use crate::error::AppError;
use crate::referrals::{self, ReferralInput, View};
use crate::AppState;

#[derive(Deserialize)]
pub struct ListQuery {
    view: Option<View>,
    #[serde(default)]
    all: Option<String>,
}

fn default_view(role: Role) -> View {
    match role {
        Role::Specialist => View::Incoming,
        Role::ReferralCoordinator => View::Group,
        _ => View::Outgoing,
    }
}

pub async fn list_page(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Query(q): Query<ListQuery>,
) -> Result<Response, UiError> {
    let view = q
        .view
        .unwrap_or_else(|| default_view(caller.principal.role));
    let open_only = q.all.is_none();
    let list = referrals::worklist(&state, &caller, view, open_only)
        .await
        .map_err(|e| page(&state, &caller, e))?;
    let notes = state
        .store
        .notifications(caller.user.id, caller.principal.scope.path.unit, 20)
        .await?;
    let rows: Vec<_> = list.iter().map(row).collect();
    let clinician = matches!(caller.principal.role, Role::FamilyDoctor | Role::Specialist);
    let html = state.templates.render(
        "referrals.html",
        context! {
            nav => nav(&caller), active => "referrals", view, rows, notes, open_only,
            clinician, coordinator => caller.principal.role == Role::ReferralCoordinator,
        },
    )?;
    Ok(html.into_response())
}

fn row(f: &medgrid_store::referral::Referral) -> minijinja::Value {
    context! {
        id => f.id, kind => f.kind.label_zh(), status => f.status.as_str(),
        status_zh => f.status.label_zh(), direction => f.direction.label_zh(),
        priority => f.priority.as_str(), priority_zh => f.priority.label_zh(),
        resident => f.resident_name, diagnosis => f.diagnosis,
        from_unit => f.from_unit_name, to_unit => f.to_unit_name,
        requested_at => f.requested_at.format("%Y-%m-%d %H:%M").to_string(),
        escalation => f.escalation, coordinator => f.coordinator_name,
    }
}

#[derive(Deserialize, Default)]
pub struct NewQuery {
    q: Option<String>,
    resident_id: Option<Id>,
    up_referral_id: Option<Id>,
    advice_id: Option<Id>,
    direction: Option<String>,
}

pub async fn new_page(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Query(q): Query<NewQuery>,
) -> Result<Response, UiError> {
    let mut values = ReferralInput {
        resident_id: q.resident_id.unwrap_or_default(),
        direction: q.direction.clone().unwrap_or_else(|| "up".into()),
        priority: "routine".into(),
        up_referral_id: q.up_referral_id,
        advice_id: q.advice_id,
        send: true,
        ..ReferralInput::default()
    };
    // A down-referral closes an up-referral, and an advice request becomes a referral: both
    // start from what was already written, so nobody types it twice.
    for from in [q.up_referral_id, q.advice_id].into_iter().flatten() {
        let f = referrals::read(&state, &caller, from)
            .await
            .map_err(|e| page(&state, &caller, e))?;
        values.resident_id = f.resident_id;
        values.diagnosis = f.diagnosis.clone();
        values.summary = f
            .outcome_summary
            .clone()
            .or(f.summary.clone())
            .unwrap_or_default();
        values.reason = f.reason.clone().unwrap_or_default();
        if q.up_referral_id == Some(from) {
            values.direction = "down".into();
            values.to_unit_id = Some(f.from_unit_id);
            values.reason = "病情稳定，转回基层继续治疗与随访".into();
        } else {
            values.to_unit_id = f.to_unit_id;
            values.to_department_code = f.to_department_code.clone();
        }
    }
    render_new(
        &state,
        &caller,
        values,
        q.q.unwrap_or_default(),
        Vec::new(),
        None,
    )
    .await
}

async fn render_new(
    state: &AppState,
    caller: &Caller,
    values: ReferralInput,
    search: String,
    errors: Vec<FieldError>,
    request_key: Option<String>,
) -> Result<Response, UiError> {
    // One key per form shown: a form sent twice (a double click, a resend after a lost
    // answer) writes one referral; a form shown again after errors keeps its key, since
    // nothing was written.
    let request_key = request_key.unwrap_or_else(|| {
        format!(
            "ui-{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        )
    });
    let group = caller.principal.scope.path.group;
    let found = if search.trim().is_empty() {
        Vec::new()
    } else {
        caller
            .allow(Action::PatientRead, &caller.principal.scope.path)
            .await
            .map_err(|e| page(state, caller, e))?;
        state.store.find_residents(&search, group, 20).await?
    };
    let resident = if values.resident_id > 0 {
        state
            .store
            .find_residents(&values.resident_id.to_string(), None, 1)
            .await?
            .into_iter()
            .next()
    } else {
        None
    };
    let units = state
        .store
        .units(&UnitFilter {
            group_id: group,
            city_id: Some(caller.principal.scope.path.city),
            limit: 500,
            ..UnitFilter::default()
        })
        .await?;
    let units: Vec<_> = units
        .iter()
        .filter(|u| Some(u.id) != caller.principal.scope.path.unit)
        .map(|u| context! { id => u.id, name => u.legal_name, role => u.role.label_zh() })
        .collect();
    let status = if errors.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    let html = state.templates.render(
        "referral_new.html",
        context! { nav => nav(caller), active => "referrals", values, search, found, resident, units, errors, request_key },
    )?;
    Ok((status, html).into_response())
}

#[derive(Deserialize)]
pub struct NewForm {
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    resident_id: String,
    #[serde(default)]
    direction: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    to_unit_id: String,
    #[serde(default)]
    to_department_code: String,
    #[serde(default)]
    diagnosis: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    care_plan: String,
    #[serde(default)]
    outside_catalogue_reason: String,
    patient_choice: Option<String>,
    continuous_deductible: Option<String>,
    #[serde(default)]
    advice_id: String,
    #[serde(default)]
    up_referral_id: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    request_key: String,
}

fn id_field(inv: &mut Invalid, field: &str, raw: &str) -> Option<Id> {
    let t = raw.trim();
    if t.is_empty() {
        return None;
    }
    match t.parse::<Id>() {
        Ok(v) => Some(v),
        Err(_) => {
            inv.push(FieldError::new(
                field,
                "number",
                "须为数字编号",
                "must be a numeric id",
            ));
            None
        }
    }
}

pub async fn create(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Form(f): Form<NewForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    let mut inv = Invalid::default();
    let resident_id = id_field(&mut inv, "resident_id", &f.resident_id);
    if resident_id.is_none() && f.resident_id.trim().is_empty() {
        inv.push(FieldError::new(
            "resident_id",
            "required",
            "请先查找并选择居民",
            "choose a resident",
        ));
    }
    let request_key = Some(f.request_key.trim().to_owned()).filter(|k| !k.is_empty());
    let input = ReferralInput {
        kind: f.kind.clone(),
        resident_id: resident_id.unwrap_or_default(),
        direction: f.direction.clone(),
        priority: f.priority.clone(),
        to_unit_id: id_field(&mut inv, "to_unit_id", &f.to_unit_id),
        to_department_code: Some(f.to_department_code.clone()).filter(|d| !d.trim().is_empty()),
        from_practitioner_id: None,
        diagnosis: f.diagnosis.clone(),
        reason: f.reason.clone(),
        summary: f.summary.clone(),
        care_plan: f.care_plan.clone(),
        outside_catalogue_reason: f.outside_catalogue_reason.clone(),
        patient_choice: f.patient_choice.is_some(),
        continuous_deductible: f.continuous_deductible.is_some(),
        advice_id: id_field(&mut inv, "advice_id", &f.advice_id),
        up_referral_id: id_field(&mut inv, "up_referral_id", &f.up_referral_id),
        send: f.action != "draft",
    };
    let result = if inv.is_empty() {
        referrals::create(&state, &caller, &input, request_key.clone()).await
    } else {
        Err(AppError::Invalid(inv))
    };
    match result {
        Ok(r) => Ok(Redirect::to(&format!("/referrals/{}?done=created", r.id)).into_response()),
        Err(AppError::Invalid(inv)) => {
            render_new(&state, &caller, input, String::new(), inv.0, request_key).await
        }
        Err(e) => Err(page(&state, &caller, e)),
    }
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
    /// The admission day whose beds the page shows.
    bed_day: Option<chrono::NaiveDate>,
}

pub async fn detail_page(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, UiError> {
    render_detail_on(&state, &caller, id, q.done, Vec::new(), q.bed_day).await
}

async fn render_detail(
    state: &AppState,
    caller: &Caller,
    id: Id,
    done: Option<String>,
    errors: Vec<FieldError>,
) -> Result<Response, UiError> {
    render_detail_on(state, caller, id, done, errors, None).await
}

/// The page after a form: back to the referral with the outcome, or the page again with
/// the refusal's fields named.
async fn after<T>(
    state: &AppState,
    caller: &Caller,
    id: Id,
    result: Result<T, AppError>,
    done: &str,
) -> Result<Response, UiError> {
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/referrals/{id}?done={done}")).into_response()),
        Err(AppError::Invalid(inv)) => render_detail(state, caller, id, None, inv.0).await,
        Err(AppError::Conflict(e)) => render_detail(state, caller, id, None, vec![e]).await,
        Err(e) => Err(page(state, caller, e)),
    }
}

async fn render_detail_on(
    state: &AppState,
    caller: &Caller,
    id: Id,
    done: Option<String>,
    errors: Vec<FieldError>,
    bed_day: Option<chrono::NaiveDate>,
) -> Result<Response, UiError> {
    let f = referrals::read(state, caller, id)
        .await
        .map_err(|e| page(state, caller, e))?;
    let events = state.store.referral_events(id).await?;
    let parties = f.parties_of(&caller.principal);
    let sender = parties.contains(&Party::Sender);
    let receiver = parties.contains(&Party::Receiver);
    let coordinator = parties.contains(&Party::Coordinator);
    let booking = state.store.referral_booking(id).await?;
    let offered = state.store.offered_slot(id).await?;
    let slots = if matches!(f.status, Status::Accepted | Status::Booked)
        && f.kind == Kind::Referral
        && (sender || receiver || coordinator)
    {
        referrals::slots_for(state, &f, None).await?
    } else {
        Vec::new()
    };
    let group_units = state
        .store
        .units(&UnitFilter {
            group_id: Some(f.group_id),
            limit: 500,
            ..UnitFilter::default()
        })
        .await?;
    let units: Vec<_> = group_units
        .iter()
        .map(|u| context! { id => u.id, name => u.legal_name })
        .collect();
    let clinicians = match f.to_unit_id {
        Some(u) if receiver => state.store.practitioners(Some(u), None, 200).await?,
        _ => Vec::new(),
    };
    let clinicians: Vec<_> = clinicians
        .iter()
        .map(|p| context! { id => p.id, name => p.name, title => p.title.label_zh() })
        .collect();
    let events: Vec<_> = events
        .iter()
        .map(|e| {
            context! {
                at => e.at.format("%Y-%m-%d %H:%M").to_string(),
                transition => medgrid_domain::referral::Transition::parse(&e.transition).map(|t| t.label_zh()).unwrap_or(match e.transition.as_str() {
                    "create" => "创建草稿", "escalate" => "超时督办", "attach" => "添加附件", "offer" => "候补号源", "queue" => "登记候补", "unbook" => "取消预约", other => other,
                }),
                to => Status::parse(&e.to_status).map(|s| s.label_zh()).unwrap_or("-"),
                party => e.party, user => e.user_name, note => e.note,
            }
        })
        .collect();
    let slots: Vec<_> = slots
        .iter()
        .map(|s| {
            context! {
                id => s.slot_id, at => s.starts_at.format("%m-%d %H:%M").to_string(),
                department => s.department_code, practitioner => s.practitioner_name,
                reserved => s.reserved, expert => s.expert_visit, refused => s.refused_zh,
            }
        })
        .collect();
    let bed = state.store.referral_bed_booking(id).await?;
    let bed_day = bed_day.unwrap_or_else(|| local_now().date() + chrono::Duration::days(1));
    let wards = if f.status == Status::Accepted
        && f.kind == Kind::Referral
        && (sender || receiver || coordinator)
    {
        crate::capacity::wards_for(state, &f, bed_day).await?
    } else {
        Vec::new()
    };
    let attachments = state.store.attachments(id).await?;
    let attachments: Vec<_> = attachments
        .iter()
        .map(|a| {
            context! {
                id => a.id, name => a.file_name, media_type => a.media_type,
                kb => (a.size_bytes + 1023) / 1024, sha256 => a.sha256.get(..16),
                at => super::accounts::beijing_time(a.uploaded_at),
            }
        })
        .collect();
    let status = if errors.is_empty() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    let html = state.templates.render(
        "referral.html",
        context! {
            nav => nav(caller), active => "referrals", f, done, errors,
            kind_zh => f.kind.label_zh(), status_zh => f.status.label_zh(),
            direction_zh => f.direction.label_zh(), priority_zh => f.priority.label_zh(),
            is_up => f.direction == Direction::Up, is_advice => f.kind == Kind::Advice,
            status => f.status.as_str(), sender, receiver, coordinator, events, slots, units, clinicians,
            booking => booking.map(|(b, at, unit)| context! { reference => b.reference, at => at.format("%Y-%m-%d %H:%M").to_string(), unit }),
            offered => offered.map(|(slot, token, until)| context! { slot, token, until => until.format("%m-%d %H:%M").to_string() }),
            key => crate::auth::new_secret(),
            bed => bed.map(|(b, ward)| context! { reference => b.reference, ward, day => b.admit_on.to_string(), bed_no => b.bed_no, reserved => b.reserved }),
            wards, bed_day => bed_day.to_string(), attachments,
            max_mb => medgrid_domain::attachment::MAX_BYTES / 1024 / 1024,
        },
    )?;
    Ok((status, html).into_response())
}

#[derive(Deserialize)]
pub struct MoveForm {
    csrf: String,
    transition: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    practitioner_id: String,
    #[serde(default)]
    suggested_unit_id: String,
    #[serde(default)]
    to_unit_id: String,
    #[serde(default)]
    to_department_code: String,
    #[serde(default)]
    outcome_summary: String,
}

pub async fn move_referral(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
    Form(f): Form<MoveForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    let mut inv = Invalid::default();
    let mv = match f.transition.as_str() {
        "send" => Some(Move::Send),
        "accept" => Some(Move::Accept {
            note: f.note.clone(),
        }),
        "decline" => Some(Move::Decline {
            reason: f.reason.clone(),
            practitioner_id: id_field(&mut inv, "practitioner_id", &f.practitioner_id),
            suggested_unit_id: id_field(&mut inv, "suggested_unit_id", &f.suggested_unit_id),
        }),
        "redirect" => id_field(&mut inv, "to_unit_id", &f.to_unit_id).map(|to| Move::Redirect {
            to_unit_id: to,
            to_department_code: Some(f.to_department_code.clone()),
            note: f.note.clone(),
        }),
        "arrive" => Some(Move::Arrive),
        "complete" => Some(Move::Complete {
            outcome_summary: f.outcome_summary.clone(),
        }),
        "cancel" => Some(Move::Cancel {
            reason: f.reason.clone(),
        }),
        _ => None,
    };
    let Some(mv) = mv.filter(|_| inv.is_empty()) else {
        if inv.is_empty() {
            inv.push(FieldError::new(
                "transition",
                "unknown_value",
                "未知操作",
                "unknown move",
            ));
        }
        return render_detail(&state, &caller, id, None, inv.0).await;
    };
    let result = referrals::move_referral(&state, &caller, id, &mv).await;
    after(&state, &caller, id, result, &f.transition).await
}

#[derive(Deserialize)]
pub struct BookForm {
    csrf: String,
    slot_id: Id,
    key: String,
    #[serde(default)]
    hold_token: String,
}

pub async fn book(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
    Form(f): Form<BookForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    let hold = Some(f.hold_token.clone()).filter(|t| !t.is_empty());
    let result = referrals::book(&state, &caller, id, f.slot_id, &f.key, hold).await;
    after(&state, &caller, id, result, "book").await
}

#[derive(Deserialize)]
pub struct SimpleForm {
    csrf: String,
    #[serde(default)]
    department: String,
}

pub async fn cancel_booking(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
    Form(f): Form<SimpleForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    let result = referrals::cancel_booking(&state, &caller, id).await;
    after(&state, &caller, id, result, "unbook").await
}

pub async fn queue(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
    Form(f): Form<SimpleForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    let result = referrals::enqueue(&state, &caller, id, &f.department).await;
    after(&state, &caller, id, result, "queue").await
}

/// The coordinator's board: what is overdue, what waits for a slot, and how the group's open
/// referrals stand.
pub async fn board_page(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
) -> Result<Response, UiError> {
    let overdue = referrals::worklist(&state, &caller, View::Overdue, true)
        .await
        .map_err(|e| page(&state, &caller, e))?;
    let group = caller.principal.scope.path.group;
    let open = state
        .store
        .referrals(&ReferralFilter {
            group_id: group,
            live_only: true,
            limit: 2000,
            ..ReferralFilter::default()
        })
        .await?;
    let queue = state.store.queue(group, false).await?;
    let mut counts: Vec<(Status, usize)> = Status::ALL.iter().map(|s| (*s, 0)).collect();
    for f in &open {
        if let Some(c) = counts.iter_mut().find(|(s, _)| *s == f.status) {
            c.1 += 1;
        }
    }
    let max = counts.iter().map(|c| c.1).max().unwrap_or(0).max(1);
    let bars: Vec<_> = counts
        .iter()
        .map(|(s, n)| context! { status => s.as_str(), label => s.label_zh(), n => n, pct => n * 100 / max })
        .collect();
    let now = local_now();
    let queue: Vec<_> = queue
        .iter()
        .map(|q| {
            context! {
                referral_id => q.referral_id, resident => q.resident_name, unit => q.unit_name,
                department => q.department_code, priority => q.priority, status => q.status,
                deadline => q.deadline.format("%m-%d %H:%M").to_string(), late => q.deadline <= now,
            }
        })
        .collect();
    let rows: Vec<_> = overdue.iter().map(row).collect();
    let html = state.templates.render(
        "referral_board.html",
        context! { nav => nav(&caller), active => "board", rows, queue, bars, total => open.len() },
    )?;
    Ok(html.into_response())
}

/// The follow-up tasks down-referrals left at the caller's unit (R4.3).
pub async fn follow_ups_page(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
) -> Result<Response, UiError> {
    let path = caller.principal.scope.path;
    caller
        .allow(Action::PatientRead, &path)
        .await
        .map_err(|e| page(&state, &caller, e))?;
    let unit = path.unit.ok_or_else(|| {
        page(
            &state,
            &caller,
            AppError::Invalid(Invalid::one(FieldError::new(
                "unit",
                "no_unit",
                "您的账号未绑定成员单位",
                "your account is bound to no unit",
            ))),
        )
    })?;
    let tasks = state.store.referral_follow_ups(unit).await?;
    referrals::audit_read(
        &state,
        &caller,
        "follow_up.list",
        &format!("unit-{unit}"),
        path,
    )
    .await;
    let html = state.templates.render(
        "follow_ups.html",
        context! { nav => nav(&caller), active => "follow_ups", tasks },
    )?;
    Ok(html.into_response())
}

#[derive(Deserialize)]
pub struct BedForm {
    csrf: String,
    ward_id: Id,
    admit_on: chrono::NaiveDate,
    key: String,
}

pub async fn book_bed(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
    Form(f): Form<BedForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    let result =
        crate::capacity::book_bed(&state, &caller, id, f.ward_id, f.admit_on, &f.key).await;
    after(&state, &caller, id, result, "bed").await
}

pub async fn cancel_bed(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
    Form(f): Form<SimpleForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    let result = crate::capacity::cancel_bed(&state, &caller, id).await;
    after(&state, &caller, id, result, "unbed").await
}

/// The upload form: its CSRF token and its one file, read from the multipart body (whose
/// size the route limits).
pub async fn attach(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
    mut form: axum::extract::Multipart,
) -> Result<Response, UiError> {
    let mut csrf = String::new();
    let mut file: Option<(String, Vec<u8>)> = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(page(&state, &caller, upload_error(&e))),
        };
        match field.name() {
            Some("csrf") => {
                csrf = field
                    .text()
                    .await
                    .map_err(|e| page(&state, &caller, upload_error(&e)))?;
            }
            Some("file") => {
                let name = field.file_name().unwrap_or_default().to_owned();
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| page(&state, &caller, upload_error(&e)))?;
                file = Some((name, bytes.to_vec()));
            }
            _ => {}
        }
    }
    check_csrf(&caller, &csrf).map_err(|e| page(&state, &caller, e))?;
    let (name, bytes) = file.unwrap_or_default();
    let result = referrals::attach(&state, &caller, id, &name, &bytes).await;
    after(&state, &caller, id, result, "attach").await
}

pub(super) fn upload_error(e: &axum::extract::multipart::MultipartError) -> AppError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        AppError::Invalid(Invalid::one(medgrid_domain::attachment::too_large()))
    } else {
        AppError::BadRequest(FieldError::new(
            "file",
            "read",
            "无法读取上传的文件",
            "could not read the uploaded file",
        ))
    }
}

pub async fn download(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path((id, attachment_id)): Path<(Id, Id)>,
) -> Result<Response, UiError> {
    let (a, content) = referrals::attachment(&state, &caller, id, attachment_id)
        .await
        .map_err(|e| page(&state, &caller, e))?;
    Ok(referrals::file_response(&a, content))
}

pub async fn mark_read(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Form(f): Form<SimpleForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    state
        .store
        .mark_notifications_read(
            &caller.actor,
            caller.user.id,
            caller.principal.scope.path.unit,
            local_now(),
        )
        .await?;
    Ok(Redirect::to("/referrals").into_response())
}
