//! The referral use cases behind the JSON API and the web UI (R4, R5): who may write, read,
//! move and book a referral is decided here, once, and every patient-level read is audited.

use serde::{Deserialize, Serialize};

use medgrid_domain::access::{authorize, Action, Id, OrgPath, Role};
use medgrid_domain::referral::{Direction, Kind, Party, Priority};
use medgrid_domain::{FieldError, Invalid};
use medgrid_store::attachment::Attachment;
use medgrid_store::booking::{Booking, BookingRequest, FreeSlot, SlotSearch};
use medgrid_store::referral::{Move, Referral, ReferralDraft, ReferralFilter};
use medgrid_store::{local_now, AuditEntry, Outcome};

use crate::auth::Caller;
use crate::error::AppError;
use crate::AppState;

/// A referral as written in a form or a JSON body.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ReferralInput {
    /// `referral` (default) or `advice` (咨询).
    #[serde(default)]
    pub kind: String,
    pub resident_id: Id,
    /// `up` or `down`.
    #[serde(default)]
    pub direction: String,
    /// `routine`, `urgent` or `green` (green channel).
    #[serde(default)]
    pub priority: String,
    /// Omit for "any unit of the group with capacity" (up-referrals; the coordinator routes).
    #[serde(default)]
    pub to_unit_id: Option<Id>,
    #[serde(default)]
    pub to_department_code: Option<String>,
    #[serde(default)]
    pub from_practitioner_id: Option<Id>,
    /// ICD-10 code, e.g. `I10` or `I21.0`.
    pub diagnosis: String,
    pub reason: String,
    #[serde(default)]
    pub summary: String,
    /// Required for down-referrals: the plan the family doctor carries out.
    #[serde(default)]
    pub care_plan: String,
    /// Asked for when the diagnosis is outside the group's catalogue.
    #[serde(default)]
    pub outside_catalogue_reason: String,
    #[serde(default)]
    pub patient_choice: bool,
    #[serde(default)]
    pub continuous_deductible: bool,
    #[serde(default)]
    pub advice_id: Option<Id>,
    #[serde(default)]
    pub up_referral_id: Option<Id>,
    /// Send at once (default) rather than keep a draft.
    #[serde(default = "yes")]
    pub send: bool,
}

fn yes() -> bool {
    true
}

fn optional<T>(
    inv: &mut Invalid,
    raw: &str,
    parse: fn(&str) -> Result<T, FieldError>,
) -> Option<T> {
    if raw.trim().is_empty() {
        None
    } else {
        inv.check(parse(raw))
    }
}

/// The unit a clinician writes from: their scope's unit.
fn own_unit(caller: &Caller) -> Result<Id, AppError> {
    caller.principal.scope.path.unit.ok_or_else(|| {
        AppError::Invalid(Invalid::one(FieldError::new(
            "from_unit_id",
            "no_unit",
            "只有绑定到成员单位的医生可以发起转诊",
            "only clinicians bound to a member unit can refer",
        )))
    })
}

/// Writes a referral from the caller's unit. A request repeated with the same
/// `idempotency_key` returns the referral the first one wrote.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    input: &ReferralInput,
    idempotency_key: Option<String>,
) -> Result<Referral, AppError> {
    let from_unit_id = own_unit(caller)?;
    caller
        .allow(Action::PatientWrite, &caller.principal.scope.path)
        .await?;
    if !matches!(caller.principal.role, Role::FamilyDoctor | Role::Specialist) {
        return Err(AppError::Forbidden(medgrid_domain::access::Denied {
            message_zh: "只有家庭医生或专科医生可以发起转诊".into(),
            message_en: "only family doctors and specialists refer patients".into(),
        }));
    }
    let mut inv = Invalid::default();
    let kind = optional(&mut inv, &input.kind, Kind::parse);
    let direction = optional(&mut inv, &input.direction, Direction::parse);
    let priority = optional(&mut inv, &input.priority, Priority::parse);
    if !inv.is_empty() {
        return Err(inv.into());
    }
    let draft = ReferralDraft {
        kind,
        resident_id: input.resident_id,
        direction,
        priority,
        from_unit_id,
        from_practitioner_id: input.from_practitioner_id,
        to_unit_id: input.to_unit_id,
        to_department_code: input.to_department_code.clone(),
        diagnosis: input.diagnosis.clone(),
        reason: input.reason.clone(),
        summary: input.summary.clone(),
        care_plan: input.care_plan.clone(),
        outside_catalogue_reason: input.outside_catalogue_reason.clone(),
        patient_choice: input.patient_choice,
        continuous_deductible: input.continuous_deductible,
        advice_id: input.advice_id,
        up_referral_id: input.up_referral_id,
        send: input.send,
        idempotency_key,
    };
    Ok(state
        .store
        .create_referral(&caller.actor, &draft, local_now())
        .await?)
}

/// A referral for someone on either end or its coordinator; anybody else is refused and the
/// refusal audited. The read itself is audited too.
pub async fn read(state: &AppState, caller: &Caller, id: Id) -> Result<Referral, AppError> {
    let f = state.store.referral(id).await?;
    let p = &caller.principal;
    let ok = authorize(p, Action::PatientRead, &f.from_path()).is_ok()
        || f.to_path()
            .is_some_and(|to| authorize(p, Action::PatientRead, &to).is_ok());
    if !ok {
        caller.allow(Action::PatientRead, &f.from_path()).await?;
    }
    audit_read(
        state,
        caller,
        "referral.read",
        &format!("referral-{id}"),
        f.from_path(),
    )
    .await;
    Ok(f)
}

/// A referral for one of its parties (either end or its coordinator) about to act on it;
/// `what` names the act in Chinese and English for the refusal.
pub async fn read_as_party(
    state: &AppState,
    caller: &Caller,
    id: Id,
    what: (&str, &str),
) -> Result<Referral, AppError> {
    let f = read(state, caller, id).await?;
    if f.parties_of(&caller.principal).is_empty() {
        return Err(AppError::Forbidden(medgrid_domain::access::Denied {
            message_zh: format!("只有转诊双方或转诊协调员可以{}", what.0),
            message_en: format!(
                "only the referral's parties or its coordinator may {}",
                what.1
            ),
        }));
    }
    Ok(f)
}

pub async fn audit_read(
    state: &AppState,
    caller: &Caller,
    action: &'static str,
    resource: &str,
    target: OrgPath,
) {
    let entry = AuditEntry {
        actor: &caller.actor,
        action,
        resource_type: "ServiceRequest",
        resource_id: Some(resource.to_owned()),
        target: Some(target),
        outcome: Outcome::Ok,
        detail: None,
    };
    if let Err(e) = state.store.audit(&entry).await {
        tracing::error!(error = %e, "could not audit a read");
    }
}

/// Which list a worklist shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// Sent from my unit.
    Outgoing,
    /// Addressed to my unit.
    Incoming,
    /// The group's open referrals (coordinator).
    Group,
    /// Escalated ones only (coordinator).
    Overdue,
}

pub async fn worklist(
    state: &AppState,
    caller: &Caller,
    view: View,
    open_only: bool,
) -> Result<Vec<Referral>, AppError> {
    let path = caller.principal.scope.path;
    caller.allow(Action::PatientRead, &path).await?;
    let mut filter = ReferralFilter {
        live_only: true,
        open_only,
        limit: 500,
        ..ReferralFilter::default()
    };
    match view {
        View::Outgoing => filter.from_unit_id = Some(own_unit(caller)?),
        View::Incoming => filter.to_unit_id = Some(own_unit(caller)?),
        View::Group | View::Overdue => {
            filter.group_id = Some(path.group.ok_or_else(|| {
                AppError::Invalid(Invalid::one(FieldError::new(
                    "view",
                    "no_group",
                    "您的账号未绑定医疗集团",
                    "your account is bound to no group",
                )))
            })?);
            filter.escalated_only = view == View::Overdue;
        }
    }
    let list = state.store.referrals(&filter).await?;
    audit_read(state, caller, "referral.list", &format!("{view:?}"), path).await;
    Ok(list)
}

/// A move on a referral, by whoever holds the side it needs.
pub async fn move_referral(
    state: &AppState,
    caller: &Caller,
    id: Id,
    mv: &Move,
) -> Result<Referral, AppError> {
    let f = read(state, caller, id).await?;
    caller
        .allow(Action::PatientWrite, &f.from_path())
        .await
        .or_else(|e| {
            // The receiving side writes from its own end.
            match f.to_path() {
                Some(to) if authorize(&caller.principal, Action::PatientWrite, &to).is_ok() => {
                    Ok(())
                }
                _ => Err(e),
            }
        })?;
    Ok(state
        .store
        .move_referral(&caller.actor, &caller.principal, id, mv, local_now())
        .await?)
}

/// Free capacity for a referral at its receiving unit (and department, when it names one).
pub async fn slots_for(
    state: &AppState,
    f: &Referral,
    department: Option<String>,
) -> Result<Vec<FreeSlot>, AppError> {
    let Some(unit) = f.to_unit_id else {
        return Ok(Vec::new());
    };
    // Only what the referral's urgency allows: a green-channel patient is offered the
    // next 48 hours, not the first free slot in two weeks.
    let search = SlotSearch {
        unit_id: Some(unit),
        department_code: department.or_else(|| f.to_department_code.clone()),
        for_referral: true,
        to: state.policy.window_end(f.priority, local_now()),
        limit: 60,
        ..SlotSearch::default()
    };
    Ok(state
        .store
        .find_slots(&state.policy, &search, local_now())
        .await?)
}

/// Books a slot for a referral, or moves its booking to another slot; only its sender,
/// receiver or coordinator may.
pub async fn book(
    state: &AppState,
    caller: &Caller,
    id: Id,
    slot_id: Id,
    idempotency_key: &str,
    hold_token: Option<String>,
) -> Result<Booking, AppError> {
    let f = read_as_party(state, caller, id, ("预约", "book")).await?;
    let mut req = BookingRequest::new(
        slot_id,
        f.resident_id,
        Some(f.id),
        idempotency_key,
        local_now(),
    );
    req.hold_token = hold_token;
    // Booking a referral that is already booked moves its booking (reschedule): the old slot
    // is released in the same transaction that takes the new one.
    if f.status == medgrid_domain::referral::Status::Booked {
        if let Some((live, _, _)) = state.store.referral_booking(id).await? {
            if live.slot_id != slot_id {
                req.replaces = Some(live.id);
            }
        }
    }
    Ok(state.store.book(&caller.actor, &state.policy, &req).await?)
}

/// Holds a slot for a referral for a few minutes (while the patient is asked, or while a
/// booked referral is moved); the returned token confirms the booking. Only the referral's
/// parties may.
pub async fn hold(
    state: &AppState,
    caller: &Caller,
    id: Id,
    slot_id: Id,
    minutes: i64,
) -> Result<medgrid_store::booking::Hold, AppError> {
    // Whether the referral may hold this slot (accepted, addressed to the slot's unit) is
    // the store's to judge, as it judges the booking.
    read_as_party(state, caller, id, ("暂留号源", "hold a slot")).await?;
    Ok(state
        .store
        .hold_slot(
            &caller.actor,
            &state.policy,
            slot_id,
            Some(id),
            minutes,
            local_now(),
        )
        .await?)
}

/// Cancels a referral's live booking (the referral goes back to "accepted").
pub async fn cancel_booking(
    state: &AppState,
    caller: &Caller,
    id: Id,
) -> Result<Booking, AppError> {
    read_as_party(state, caller, id, ("取消预约", "cancel its booking")).await?;
    let Some((b, _, _)) = state.store.referral_booking(id).await? else {
        return Err(AppError::NotFound);
    };
    Ok(state
        .store
        .cancel_booking(&caller.actor, b.id, local_now(), state.timers_offer_hours)
        .await?)
}

/// Puts an accepted referral in the "no slot available" queue.
pub async fn enqueue(
    state: &AppState,
    caller: &Caller,
    id: Id,
    department: &str,
) -> Result<medgrid_store::booking::QueueEntry, AppError> {
    read_as_party(state, caller, id, ("登记候补", "queue it")).await?;
    Ok(state
        .store
        .enqueue_referral(&caller.actor, id, department, &state.timers, local_now())
        .await?)
}

/// Attaches a file to a referral on behalf of the side the caller holds.
pub async fn attach(
    state: &AppState,
    caller: &Caller,
    id: Id,
    file_name: &str,
    bytes: &[u8],
) -> Result<Attachment, AppError> {
    let f = read_as_party(state, caller, id, ("添加附件", "attach files")).await?;
    let party = f
        .parties_of(&caller.principal)
        .first()
        .copied()
        .unwrap_or(Party::Coordinator);
    Ok(state
        .store
        .attach_file(&caller.actor, id, party, file_name, bytes, local_now())
        .await?)
}

/// One attached file with its content, for someone who may read the referral; the read is
/// audited like the referral's.
pub async fn attachment(
    state: &AppState,
    caller: &Caller,
    id: Id,
    attachment_id: Id,
) -> Result<(Attachment, Vec<u8>), AppError> {
    let f = read(state, caller, id).await?;
    let found = state.store.attachment(id, attachment_id).await?;
    audit_read(
        state,
        caller,
        "referral.attachment.read",
        &format!("attachment-{attachment_id}"),
        f.from_path(),
    )
    .await;
    Ok(found)
}

/// A stored file as a download: its recognised type, its name for the browser's save dialog,
/// and never rendered inline (a file from another unit is not trusted as a page).
pub fn file_response(a: &Attachment, content: Vec<u8>) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    let ascii: String = a
        .file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = a
        .file_name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'.' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    (
        [
            (header::CONTENT_TYPE, a.media_type.clone()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"),
            ),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        content,
    )
        .into_response()
}
