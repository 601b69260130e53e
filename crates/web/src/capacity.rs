//! Capacity use cases behind the JSON API and the web UI (R5): a unit's weekly timetable and
//! wards (its managers), the daily reservation compliance report (those who steer), the
//! group bed pool, and bed bookings for referrals (the referral's parties).

use chrono::{Duration, NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

use medgrid_domain::access::{Action, Id, OrgPath};
use medgrid_domain::org::Unit;
use medgrid_domain::{FieldError, Invalid};
use medgrid_store::beds::{BedBooking, BedRequest, Ward, WardDay, WardDraft};
use medgrid_store::local_now;
use medgrid_store::schedule::{ComplianceRow, Schedule, ScheduleDraft};

use crate::auth::Caller;
use crate::error::AppError;
use crate::referrals;
use crate::AppState;

/// A weekly timetable entry as written in a form or a JSON body.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ScheduleInput {
    pub department_code: String,
    #[serde(default)]
    pub practitioner_id: Option<Id>,
    /// 1 = Monday … 7 = Sunday.
    pub weekday: u32,
    /// `HH:MM`, local time.
    pub start_time: String,
    pub slot_minutes: u32,
    pub capacity: u32,
    /// Slots kept for referrals from primary units; at a lead hospital at least a third.
    pub reserved: u32,
    /// A lead-hospital expert's session at a member site (R5.4).
    #[serde(default)]
    pub expert_visit: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct WardInput {
    pub department_code: String,
    pub name: String,
    pub beds: u32,
    /// Beds kept for referred patients; at a lead hospital at least a quarter.
    pub reserved_beds: u32,
}

/// A unit with what it offers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Timetable {
    #[schema(value_type = Object)]
    pub unit: Unit,
    #[schema(value_type = [Object])]
    pub schedules: Vec<Schedule>,
    #[schema(value_type = [Object])]
    pub wards: Vec<Ward>,
}

/// The longest report one request may ask for.
const MAX_REPORT_DAYS: i64 = 92;

/// A unit's timetable and wards; anybody of the city may read them (they name no patient).
pub async fn timetable(
    state: &AppState,
    caller: &Caller,
    unit_id: Id,
) -> Result<Timetable, AppError> {
    let unit = state.store.unit(unit_id).await?;
    caller.allow(Action::RegistryRead, &unit.path()).await?;
    Ok(Timetable {
        schedules: state.store.schedules(unit_id).await?,
        wards: state.store.wards(unit_id).await?,
        unit,
    })
}

async fn managed_unit(state: &AppState, caller: &Caller, unit_id: Id) -> Result<Unit, AppError> {
    let unit = state.store.unit(unit_id).await?;
    caller
        .allow(Action::UnitResourcesWrite, &unit.path())
        .await?;
    Ok(unit)
}

fn parse_time(raw: &str) -> Result<NaiveTime, FieldError> {
    let raw = raw.trim();
    NaiveTime::parse_from_str(raw, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(raw, "%H:%M:%S"))
        .map_err(|_| {
            FieldError::new(
                "start_time",
                "invalid",
                "开始时间须为“时:分”，如 08:00",
                "must be a time as HH:MM, e.g. 08:00",
            )
        })
}

/// Adds a timetable entry and opens its own sessions of the release window at once, so that the
/// slots a manager just promised can be booked today, not after the next nightly run.
pub async fn add_schedule(
    state: &AppState,
    caller: &Caller,
    unit_id: Id,
    input: &ScheduleInput,
) -> Result<Schedule, AppError> {
    let unit = managed_unit(state, caller, unit_id).await?;
    let start_time = parse_time(&input.start_time).map_err(Invalid::one)?;
    let draft = ScheduleDraft {
        department_code: input.department_code.trim().to_owned(),
        practitioner_id: input.practitioner_id,
        weekday: input.weekday,
        start_time,
        slot_minutes: input.slot_minutes,
        capacity: input.capacity,
        reserved: input.reserved,
        expert_visit: input.expert_visit,
    };
    let id = state
        .store
        .create_schedule(&caller.actor, &unit, &draft, &state.policy)
        .await?;
    let (from, until) = release_window(state);
    state
        .store
        .open_schedule(&caller.actor, id, from, until, &state.policy)
        .await?;
    state
        .store
        .schedules(unit_id)
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or(AppError::NotFound)
}

/// Opens every timetable's sessions from today to the end of the release window; safe to
/// repeat (each session opens once).
pub async fn open_release_window(
    state: &AppState,
    actor: &medgrid_store::Actor,
) -> Result<u64, AppError> {
    let (from, until) = release_window(state);
    Ok(state
        .store
        .open_scheduled_sessions(actor, from, until, &state.policy)
        .await?)
}

/// Today to the last day whose slots are open.
fn release_window(state: &AppState) -> (NaiveDate, NaiveDate) {
    let today = local_now().date();
    let days = i64::try_from(state.policy.open_days_ahead).unwrap_or(14);
    (today, today + Duration::days(days))
}

/// Changes how many slots of a timetable's future sessions are kept for referrals; a
/// change below the policy's share is refused with the reason.
pub async fn change_reservation(
    state: &AppState,
    caller: &Caller,
    unit_id: Id,
    schedule_id: Id,
    reserved: u32,
) -> Result<Schedule, AppError> {
    let unit = managed_unit(state, caller, unit_id).await?;
    Ok(state
        .store
        .change_schedule_reservation(&caller.actor, &unit, schedule_id, reserved, &state.policy)
        .await?)
}

pub async fn add_ward(
    state: &AppState,
    caller: &Caller,
    unit_id: Id,
    input: &WardInput,
) -> Result<Ward, AppError> {
    let unit = managed_unit(state, caller, unit_id).await?;
    let draft = WardDraft {
        department_code: input.department_code.clone(),
        name: input.name.clone(),
        beds: input.beds,
        reserved_beds: input.reserved_beds,
    };
    Ok(state
        .store
        .create_ward(&caller.actor, &unit, &draft, &state.policy)
        .await?)
}

/// Which part of the organisation a report covers: a unit, else a group, else the caller's
/// own scope.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportScope {
    pub group_id: Option<Id>,
    pub unit_id: Option<Id>,
}

async fn report_target(
    state: &AppState,
    caller: &Caller,
    scope: ReportScope,
) -> Result<(Option<Id>, Option<Id>, OrgPath), AppError> {
    let own = caller.principal.scope.path;
    let (group, unit, path) = if let Some(unit_id) = scope.unit_id {
        let unit = state.store.unit(unit_id).await?;
        (unit.group_id, Some(unit_id), unit.path())
    } else if let Some(group_id) = scope.group_id {
        (
            Some(group_id),
            None,
            state.store.group(group_id).await?.path(),
        )
    } else if own.unit.is_some() {
        (own.group, own.unit, own)
    } else if own.group.is_some() {
        (own.group, None, own)
    } else {
        return Err(Invalid::one(FieldError::new(
            "group_id",
            "required",
            "请选择医疗集团或机构",
            "choose a group or a unit",
        ))
        .into());
    };
    caller.allow(Action::ReportRead, &path).await?;
    Ok((group, unit, path))
}

/// The daily reservation compliance report (R5.1) over `from..=until`.
pub async fn compliance(
    state: &AppState,
    caller: &Caller,
    scope: ReportScope,
    from: NaiveDate,
    until: NaiveDate,
) -> Result<Vec<ComplianceRow>, AppError> {
    if until < from || (until - from).num_days() >= MAX_REPORT_DAYS {
        return Err(Invalid::one(FieldError::new(
            "until",
            "out_of_range",
            format!("结束日期须不早于开始日期，且一次最多 {MAX_REPORT_DAYS} 天"),
            format!("must not be before the start, and at most {MAX_REPORT_DAYS} days on"),
        ))
        .into());
    }
    let (group, unit, _) = report_target(state, caller, scope).await?;
    Ok(state
        .store
        .reservation_compliance(group, unit, from, until, &state.policy)
        .await?)
}

/// The group bed pool on one day.
pub async fn bed_pool(
    state: &AppState,
    caller: &Caller,
    group_id: Option<Id>,
    day: NaiveDate,
) -> Result<Vec<WardDay>, AppError> {
    let (group, _, _) = report_target(
        state,
        caller,
        ReportScope {
            group_id: group_id.or(caller.principal.scope.path.group),
            unit_id: None,
        },
    )
    .await?;
    let group = group.ok_or(AppError::NotFound)?;
    Ok(state.store.bed_pool(group, day).await?)
}

/// The wards of a referral's receiving unit with their beds on `day`, for booking.
pub async fn wards_for(
    state: &AppState,
    f: &medgrid_store::referral::Referral,
    day: NaiveDate,
) -> Result<Vec<WardDay>, AppError> {
    let Some(unit) = f.to_unit_id else {
        return Ok(Vec::new());
    };
    Ok(state
        .store
        .bed_pool(f.group_id, day)
        .await?
        .into_iter()
        .filter(|w| w.unit_id == unit)
        .collect())
}

/// Books a bed for an accepted referral's admission (R5.3).
pub async fn book_bed(
    state: &AppState,
    caller: &Caller,
    referral_id: Id,
    ward_id: Id,
    admit_on: NaiveDate,
    idempotency_key: &str,
) -> Result<BedBooking, AppError> {
    let f =
        referrals::read_as_party(state, caller, referral_id, ("预约床位", "book a bed")).await?;
    let req = BedRequest {
        ward_id,
        admit_on,
        resident_id: f.resident_id,
        referral_id: Some(f.id),
        idempotency_key: idempotency_key.to_owned(),
        now: local_now(),
    };
    Ok(state
        .store
        .book_bed(&caller.actor, &state.policy, &req)
        .await?)
}

/// Cancels a referral's bed booking; the referral goes back to "accepted".
pub async fn cancel_bed(
    state: &AppState,
    caller: &Caller,
    referral_id: Id,
) -> Result<BedBooking, AppError> {
    referrals::read_as_party(
        state,
        caller,
        referral_id,
        ("取消床位预约", "cancel its bed booking"),
    )
    .await?;
    let Some((b, _)) = state.store.referral_bed_booking(referral_id).await? else {
        return Err(AppError::NotFound);
    };
    Ok(state.store.cancel_bed_booking(&caller.actor, b.id).await?)
}
