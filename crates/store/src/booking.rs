//! Sessions, slots and bookings (R5.1–R5.3): a slot is taken by one conditional UPDATE inside
//! the booking's transaction, so that of any number of simultaneous attempts exactly one wins
//! on either database; the reservation policy is checked in the same transaction.

use chrono::NaiveDateTime;
use serde::Serialize;
use sqlx::Row;

use medgrid_domain::access::{Id, OrgPath};
use medgrid_domain::capacity::{BookingKind, Policy};
use medgrid_domain::org::{MemberRole, Unit};
use medgrid_domain::referral::{Direction, Kind, Priority};
use medgrid_domain::{FieldError, Invalid};

use crate::audit::{audit_insert, AuditEntry};
use crate::{read, write, Actor, Outcome, Store, StoreError};

/// An outpatient session to open at a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDraft {
    pub department_code: String,
    pub practitioner_id: Option<Id>,
    pub starts_at: NaiveDateTime,
    pub slot_minutes: u32,
    pub capacity: u32,
    pub reserved: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Slot {
    pub id: Id,
    pub session_id: Id,
    pub starts_at: NaiveDateTime,
    pub reserved: bool,
    pub status: String,
}

/// A slot taken for a resident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Booking {
    pub id: Id,
    pub group_id: Id,
    pub slot_id: Id,
    pub resident_id: Id,
    pub referral_id: Option<Id>,
    pub kind: String,
    /// What the patient is told: the group's booking reference.
    pub reference: String,
    pub status: String,
}

/// One attempt to book. `idempotency_key` makes a retried request return the first result
/// instead of booking twice; `now` is the moment the policy is judged at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingRequest {
    pub slot_id: Id,
    pub resident_id: Id,
    pub referral_id: Option<Id>,
    pub idempotency_key: String,
    pub now: NaiveDateTime,
    /// The token of a hold on this slot (from [`Store::hold_slot`] or a waitlist offer).
    pub hold_token: Option<String>,
    /// Rescheduling: the live booking this one replaces, released in the same transaction.
    pub replaces: Option<Id>,
}

impl BookingRequest {
    /// A plain request: no hold, nothing replaced.
    pub fn new(
        slot_id: Id,
        resident_id: Id,
        referral_id: Option<Id>,
        idempotency_key: &str,
        now: NaiveDateTime,
    ) -> Self {
        Self {
            slot_id,
            resident_id,
            referral_id,
            idempotency_key: idempotency_key.to_owned(),
            now,
            hold_token: None,
            replaces: None,
        }
    }
}

/// A slot kept for one booker until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hold {
    pub slot_id: Id,
    pub token: String,
    pub until: NaiveDateTime,
}

/// A free slot found for a booker, with why it may or may not be taken now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FreeSlot {
    pub slot_id: Id,
    pub session_id: Id,
    pub unit_id: Id,
    pub unit_name: String,
    pub department_code: String,
    pub practitioner_id: Option<Id>,
    pub practitioner_name: Option<String>,
    pub starts_at: NaiveDateTime,
    pub slot_minutes: i64,
    pub reserved: bool,
    pub expert_visit: bool,
    /// `None` when bookable now; otherwise the reason in Chinese.
    pub refused_zh: Option<String>,
}

/// Where to look for capacity.
#[derive(Debug, Clone, Default)]
pub struct SlotSearch {
    pub group_id: Option<Id>,
    pub unit_id: Option<Id>,
    pub department_code: Option<String>,
    pub practitioner_id: Option<Id>,
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
    /// Judge as a referral booking (reserved slots count).
    pub for_referral: bool,
    pub limit: i64,
}

/// A referral waiting for capacity (the "no slot available" queue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueEntry {
    pub id: Id,
    pub referral_id: Id,
    pub resident_name: String,
    pub unit_id: Id,
    pub unit_name: String,
    pub department_code: String,
    pub priority: String,
    pub deadline: NaiveDateTime,
    pub status: String,
    pub offered_slot_id: Option<Id>,
    pub created_at: NaiveDateTime,
}

macro_rules! booking_from_row {
    ($r:expr) => {
        Booking {
            id: $r.try_get("id")?,
            group_id: $r.try_get("group_id")?,
            slot_id: $r.try_get("slot_id")?,
            resident_id: $r.try_get("resident_id")?,
            referral_id: $r.try_get("referral_id")?,
            kind: $r.try_get("kind")?,
            reference: $r.try_get("reference")?,
            status: $r.try_get("status")?,
        }
    };
}

fn slot_taken() -> StoreError {
    StoreError::Conflict(FieldError::new(
        "slot",
        "taken",
        "该号源已被预约",
        "the slot is already booked",
    ))
}

fn key_reused() -> StoreError {
    StoreError::Conflict(FieldError::new(
        "idempotency_key",
        "reused",
        "该幂等键已用于另一预约请求",
        "the key was used for another booking request",
    ))
}

fn not_accepted() -> FieldError {
    FieldError::new(
        "referral_id",
        "not_accepted",
        "转诊须先由接收方接收后才能预约",
        "the referral must be accepted before it is booked",
    )
}

fn replaced_gone() -> FieldError {
    FieldError::new(
        "replaces",
        "not_found",
        "要改约的预约不存在或已取消",
        "the booking to reschedule does not exist or is no longer live",
    )
}

/// What a booking attempt reads of the slot and the parties before any lock is taken.
struct Seen {
    reserved: bool,
    starts_at: NaiveDateTime,
    /// The slot's group and session: neither ever changes.
    group: Id,
    session: Id,
    unit: Id,
    city: Id,
    grid: Option<Id>,
    /// The resident, if they exist.
    resident: Option<Id>,
    /// The referral's status, if it is the resident's and addressed to the slot's unit.
    referral: Option<String>,
    priority: Option<String>,
    /// The slot of the live booking being rescheduled, if it is the resident's.
    replaced_slot: Option<Id>,
}

/// Why an attempt may not take the slot, if it may not: the policy's reserved share and
/// booking window, and the parties named. A referral booking must name a referral of that
/// resident addressed to the slot's unit, or the reserved share could be taken by anyone
/// quoting any referral. `reserved` is passed apart because it is judged twice: on the read,
/// and again on the row the attempt won.
fn refusal(
    policy: &Policy,
    req: &BookingRequest,
    kind: BookingKind,
    seen: &Seen,
    reserved: bool,
) -> Option<FieldError> {
    // A referral is booked once it is accepted; rescheduling keeps it booked.
    let referral_ready = matches!(
        (seen.referral.as_deref(), req.replaces),
        (Some("accepted"), None) | (Some("booked"), Some(_))
    );
    let window = match seen.priority.as_deref().map(Priority::parse) {
        Some(Ok(p)) => policy.check_window(p, seen.starts_at, req.now),
        _ => Ok(()),
    };
    if let Err(e) = policy.may_take(reserved, kind, seen.starts_at, req.now) {
        Some(e)
    } else if seen.resident.is_none() {
        Some(FieldError::new(
            "resident_id",
            "not_found",
            "居民不存在",
            "no such resident",
        ))
    } else if req.referral_id.is_some() && seen.referral.is_none() {
        Some(FieldError::new(
            "referral_id",
            "not_for_this_slot",
            "该转诊不属于此居民或未转往此机构",
            "the referral is not this resident's, or not to this unit",
        ))
    } else if req.referral_id.is_some() && !referral_ready {
        Some(not_accepted())
    } else if let Err(e) = window {
        Some(e)
    } else if req.replaces.is_some() && seen.replaced_slot.is_none() {
        Some(replaced_gone())
    } else {
        None
    }
}

const BOOKING_COLUMNS: &str =
    "id, group_id, slot_id, resident_id, referral_id, kind, reference, status";

/// Takes the slot (`UPDATE slot SET …`): a row changes only while the slot is free (or held
/// past its time, or held by this booker's token), and only if the attempt may take a slot
/// reserved as this one is now. PostgreSQL re-checks the condition after waiting for a rival,
/// so of any number of simultaneous attempts exactly one wins. Binds: $1 slot, $2 now,
/// $3 hold token, $4 may take a reserved slot, $5 may take an open one.
const TAKE_SLOT: &str = "status = 'booked', hold_until = NULL, hold_token = NULL, \
     hold_referral_id = NULL WHERE id = $1 AND (status = 'free' OR (status = 'held' \
     AND (hold_until <= $2 OR hold_token = $3))) \
     AND ((reserved AND $4) OR (NOT reserved AND $5))";

/// A booking attempt that passed the checks on the read, with what its writes need.
struct Plan<'a> {
    req: &'a BookingRequest,
    key: &'a str,
    kind: BookingKind,
    seen: Seen,
    may_take_reserved: bool,
    may_take_open: bool,
    reference: String,
    /// The audit entry's detail.
    detail: String,
    /// The referral this booking moves from accepted to booked (none when rescheduling).
    moving: Option<crate::referral::Heard>,
}

impl Plan<'_> {
    /// What the referral's "book" event says: the reference and the time.
    fn event_note(&self) -> String {
        format!(
            "{} {}",
            self.reference,
            self.seen.starts_at.format("%Y-%m-%d %H:%M")
        )
    }

    fn audit<'b>(&'b self, actor: &'b Actor, booking: &Booking) -> AuditEntry<'b> {
        AuditEntry {
            actor,
            action: "slot.book",
            resource_type: "Appointment",
            resource_id: Some(format!("booking-{}", booking.id)),
            target: Some(self.target()),
            outcome: Outcome::Ok,
            detail: Some(self.detail.clone()),
        }
    }

    fn target(&self) -> OrgPath {
        OrgPath {
            city: self.seen.city,
            grid: self.seen.grid,
            group: Some(self.seen.group),
            unit: Some(self.seen.unit),
        }
    }
}

/// What a request whose idempotency key already names a booking gets: that booking, if the
/// request is the same one again.
fn earlier_answer(b: Booking, req: &BookingRequest) -> Result<Booking, StoreError> {
    if b.slot_id != req.slot_id || b.resident_id != req.resident_id {
        Err(key_reused())
    } else {
        Ok(b)
    }
}

/// Why inserting the booking failed: the key already names a booking of another slot, or the
/// referral already holds a live booking (the unique indexes say so); anything else as is.
fn insert_refused(e: sqlx::Error) -> StoreError {
    let Some(d) = e.as_database_error().filter(|d| d.is_unique_violation()) else {
        return e.into();
    };
    if d.constraint() == Some("uq_booking_live_referral")
        || d.message().contains("booking.referral_id")
    {
        StoreError::Conflict(FieldError::new(
            "referral_id",
            "already_booked",
            "该转诊已有有效预约；如需更改请改约",
            "the referral already holds a live booking; reschedule it instead",
        ))
    } else {
        key_reused()
    }
}

/// Tells an attempt whose UPDATE took no slot why, on `$ex` (inside its transaction): a retry
/// of a request that won before gets that booking back; a slot still free was refused by the
/// reserved share as it stands now; otherwise a rival has it.
macro_rules! after_losing {
    ($ex:expr, $policy:expr, $plan:expr) => {{
        let plan: &Plan<'_> = $plan;
        let req = plan.req;
        let r = sqlx::query(
            "SELECT s.reserved AS slot_reserved, COALESCE(s.status = 'free' OR (s.status = 'held' \
             AND (s.hold_until <= $3 OR s.hold_token = $4)), FALSE) AS takeable, \
             b.id, b.group_id, b.slot_id, b.resident_id, b.referral_id, b.kind, b.reference, \
             b.status FROM slot s LEFT JOIN booking b \
             ON b.group_id = s.group_id AND b.idempotency_key = $2 WHERE s.id = $1",
        )
        .bind(req.slot_id)
        .bind(plan.key)
        .bind(req.now)
        .bind(req.hold_token.as_deref())
        .fetch_optional($ex)
        .await?;
        match r {
            None => Err(StoreError::NotFound),
            Some(r) => {
                let earlier: Option<Id> = r.try_get("id")?;
                if earlier.is_some() {
                    earlier_answer(booking_from_row!(r), req)
                } else if r.try_get::<bool, _>("takeable")? {
                    let reserved: bool = r.try_get("slot_reserved")?;
                    match refusal($policy, req, plan.kind, &plan.seen, reserved) {
                        Some(e) => Err(StoreError::Invalid(Invalid::one(e))),
                        // Free again and allowed: it changed twice under this attempt.
                        None => Err(StoreError::Conflict(FieldError::new(
                            "slot",
                            "changed",
                            "号源状态刚刚发生变化，请重试",
                            "the slot changed just now; try again",
                        ))),
                    }
                } else {
                    Err(slot_taken())
                }
            }
        }
    }};
}

mod commit;

impl Store {
    /// Opens a session at `unit` with its slots; a lead hospital's session must keep the
    /// policy's share for referrals (refused with the reason otherwise).
    pub async fn open_care_session(
        &self,
        actor: &Actor,
        unit: &Unit,
        draft: &SessionDraft,
        policy: &Policy,
    ) -> Result<(Id, Vec<Slot>), StoreError> {
        let mut problems = Vec::new();
        if let Err(e) = policy.check_session(
            draft.capacity,
            draft.reserved,
            unit.role == MemberRole::Lead,
        ) {
            problems.push(e);
        }
        if !(5..=240).contains(&draft.slot_minutes) {
            problems.push(FieldError::new(
                "slot_minutes",
                "out_of_range",
                "每个号源时长须在 5 到 240 分钟之间",
                "must be between 5 and 240 minutes",
            ));
        }
        if draft.department_code.trim().is_empty() {
            problems.push(FieldError::required("department_code"));
        }
        let Some(group_id) = unit.group_id else {
            problems.push(FieldError::new(
                "unit",
                "not_in_group",
                "该机构不属于任何医疗集团",
                "the unit belongs to no medical group",
            ));
            return Err(Invalid(problems).into());
        };
        if !problems.is_empty() {
            return Err(Invalid(problems).into());
        }
        let positions = Policy::reserved_positions(draft.capacity, draft.reserved);
        write!(self, |p| {
            let mut tx = p.begin().await?;
            // The department must be the unit's, and the clinician must practise there.
            let (department, site): (Option<Id>, Option<Id>) = sqlx::query_as(
                "SELECT (SELECT id FROM department WHERE unit_id = $1 AND code = $2), \
                 (SELECT id FROM practice_site WHERE unit_id = $1 AND practitioner_id = $3)",
            )
            .bind(unit.id)
            .bind(draft.department_code.trim())
            .bind(draft.practitioner_id)
            .fetch_one(&mut *tx)
            .await?;
            let mut wrong = Vec::new();
            if department.is_none() {
                wrong.push(FieldError::new(
                    "department_code",
                    "not_found",
                    "该机构没有此科室",
                    "the unit has no such department",
                ));
            }
            if draft.practitioner_id.is_some() && site.is_none() {
                wrong.push(FieldError::new(
                    "practitioner_id",
                    "not_at_unit",
                    "该医师不在此机构执业",
                    "the practitioner does not practise at this unit",
                ));
            }
            if !wrong.is_empty() {
                return Err(StoreError::Invalid(Invalid(wrong)));
            }
            let session_id: Id = sqlx::query_scalar(
                "INSERT INTO care_session (group_id, unit_id, department_code, practitioner_id, \
                 starts_at, slot_minutes, capacity, reserved, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            )
            .bind(group_id)
            .bind(unit.id)
            .bind(draft.department_code.trim())
            .bind(draft.practitioner_id)
            .bind(draft.starts_at)
            .bind(i64::from(draft.slot_minutes))
            .bind(i64::from(draft.capacity))
            .bind(i64::from(draft.reserved))
            .bind(crate::now())
            .fetch_one(&mut *tx)
            .await?;
            let mut slots = Vec::with_capacity(positions.len());
            for (i, reserved) in positions.iter().enumerate() {
                let starts_at = draft.starts_at
                    + chrono::Duration::minutes(i64::from(draft.slot_minutes) * i as i64);
                let id: Id = sqlx::query_scalar(
                    "INSERT INTO slot (group_id, session_id, starts_at, reserved, status) \
                     VALUES ($1, $2, $3, $4, 'free') RETURNING id",
                )
                .bind(group_id)
                .bind(session_id)
                .bind(starts_at)
                .bind(*reserved)
                .fetch_one(&mut *tx)
                .await?;
                slots.push(Slot {
                    id,
                    session_id,
                    starts_at,
                    reserved: *reserved,
                    status: "free".into(),
                });
            }
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "session.create",
                    resource_type: "Schedule",
                    resource_id: Some(format!("session-{session_id}")),
                    target: Some(unit.path()),
                    outcome: Outcome::Ok,
                    detail: Some(format!(
                        "{} {} capacity {} reserved {}",
                        draft.department_code, draft.starts_at, draft.capacity, draft.reserved
                    )),
                }
            )?;
            tx.commit().await?;
            Ok((session_id, slots))
        })
    }

    /// Changes how many of a session's slots are reserved for referrals. A change that would
    /// break the policy (a lead hospital below its share) is refused with the reason and
    /// changes nothing; otherwise the reserved slots are spread through the session again.
    pub async fn change_reservation(
        &self,
        actor: &Actor,
        unit: &Unit,
        session_id: Id,
        reserved: u32,
        policy: &Policy,
    ) -> Result<Vec<Slot>, StoreError> {
        write!(self, |p| {
            let mut tx = p.begin().await?;
            let row =
                sqlx::query("SELECT CAST(capacity AS BIGINT) AS capacity FROM care_session WHERE id = $1 AND unit_id = $2")
                    .bind(session_id)
                    .bind(unit.id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound)?;
            let capacity: i64 = row.try_get("capacity")?;
            let capacity =
                u32::try_from(capacity).map_err(|_| StoreError::Corrupt("capacity".into()))?;
            policy
                .check_session(capacity, reserved, unit.role == MemberRole::Lead)
                .map_err(|e| StoreError::Invalid(Invalid::one(e)))?;
            let ids: Vec<Id> = sqlx::query_scalar(
                "SELECT id FROM slot WHERE session_id = $1 ORDER BY starts_at, id",
            )
            .bind(session_id)
            .fetch_all(&mut *tx)
            .await?;
            for (id, flag) in ids
                .iter()
                .zip(Policy::reserved_positions(capacity, reserved))
            {
                sqlx::query("UPDATE slot SET reserved = $2 WHERE id = $1")
                    .bind(id)
                    .bind(flag)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("UPDATE care_session SET reserved = $2 WHERE id = $1")
                .bind(session_id)
                .bind(i64::from(reserved))
                .execute(&mut *tx)
                .await?;
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "session.reservation",
                    resource_type: "Schedule",
                    resource_id: Some(format!("session-{session_id}")),
                    target: Some(unit.path()),
                    outcome: Outcome::Ok,
                    detail: Some(format!("reserved {reserved} of {capacity}")),
                }
            )?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        self.slots(session_id).await
    }

    /// Referrals addressed to `unit_id` that are still open or booked, as (referral, resident),
    /// oldest first: the receiving side's worklist starts here.
    pub async fn referrals_to(&self, unit_id: Id, limit: i64) -> Result<Vec<(Id, Id)>, StoreError> {
        Ok(read!(self, |p| {
            sqlx::query_as(
            "SELECT id, resident_id FROM referral WHERE to_unit_id = $1 \
             AND status NOT IN ('cancelled', 'expired', 'declined') ORDER BY requested_at, id LIMIT $2"
        )
        .bind(unit_id)
        .bind(limit)
        .fetch_all(p)
        .await?
        }))
    }

    /// The slots of a session, in time order.
    pub async fn slots(&self, session_id: Id) -> Result<Vec<Slot>, StoreError> {
        read!(self, |p| {
            let rows = sqlx::query(
                "SELECT id, session_id, starts_at, reserved, status FROM slot \
                 WHERE session_id = $1 ORDER BY starts_at, id",
            )
            .bind(session_id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(Slot {
                    id: r.try_get("id")?,
                    session_id: r.try_get("session_id")?,
                    starts_at: r.try_get("starts_at")?,
                    reserved: r.try_get("reserved")?,
                    status: r.try_get("status")?,
                });
            }
            Ok(out)
        })
    }

    /// Books a slot for a resident: a referral booking when `referral_id` is given. Exactly
    /// one of any number of simultaneous attempts on a free slot succeeds; the others are told
    /// it is taken. A request repeated with the same idempotency key returns the first booking.
    pub async fn book(
        &self,
        actor: &Actor,
        policy: &Policy,
        req: &BookingRequest,
    ) -> Result<Booking, StoreError> {
        let key = req.idempotency_key.trim();
        if key.is_empty() || key.chars().count() > 100 {
            return Err(Invalid::one(FieldError::new(
                "idempotency_key",
                "invalid",
                "幂等键须为 1 到 100 个字符",
                "must be 1 to 100 characters",
            ))
            .into());
        }
        let kind = if req.referral_id.is_some() {
            BookingKind::Referral
        } else {
            BookingKind::General
        };
        // Fast path for the many who arrive after a slot is gone (and for retries): one light
        // read, no transaction. A slot once booked stays booked, so a "taken" read is never
        // stale in the patient's favour; a "free" read is only a hint, settled by the UPDATE
        // that takes the slot.
        let first = read!(self, |p| {
            sqlx::query(
                "SELECT s.status AS slot_status, b.id, b.group_id, b.slot_id, b.resident_id, \
                 b.referral_id, b.kind, b.reference, b.status \
                 FROM slot s LEFT JOIN booking b \
                 ON b.group_id = s.group_id AND b.idempotency_key = $2 \
                 WHERE s.id = $1",
            )
            .bind(req.slot_id)
            .bind(key)
            .fetch_optional(p)
            .await?
            .map(|r| -> Result<(String, Option<Booking>), StoreError> {
                let earlier: Option<Id> = r.try_get("id")?;
                let booking = match earlier {
                    Some(_) => Some(booking_from_row!(r)),
                    None => None,
                };
                Ok((r.try_get("slot_status")?, booking))
            })
            .transpose()?
        });
        match first {
            None => return Err(StoreError::NotFound),
            Some((_, Some(b))) => return earlier_answer(b, req),
            Some((status, None)) if status == "booked" => return Err(slot_taken()),
            Some(_) => {}
        }
        // Where the slot is and whether the parties named may book it, also before any
        // transaction, so that refusals never wait for a connection that holds a row lock;
        // each party check that could go stale is repeated by the statement that acts on it.
        // The referral's own columns come along for the event and the notices a first booking
        // writes; its move is guarded by its status when it is made.
        let (seen, heard) = read!(self, |p| {
            let r = sqlx::query(
                "SELECT s.reserved AS slot_reserved, s.starts_at AS slot_starts_at, \
                 s.group_id AS slot_group, s.session_id AS slot_session, \
                 u.id AS unit_id, u.city_id, u.grid_id, \
                 (SELECT r.id FROM resident r WHERE r.id = $2) AS party_resident, \
                 CASE WHEN f.resident_id = $2 AND f.to_unit_id = u.id \
                  AND f.source_encounter_id IS NULL AND f.kind = 'referral' \
                  THEN f.status END AS party_referral, \
                 f.priority AS party_priority, f.id AS heard_id, f.group_id AS heard_group, \
                 f.kind AS heard_kind, f.direction AS heard_direction, \
                 (SELECT r.name FROM resident r WHERE r.id = f.resident_id) AS heard_name, \
                 f.diagnosis AS heard_diagnosis, f.created_by AS heard_created_by, \
                 f.from_unit_id AS heard_from, f.to_unit_id AS heard_to, \
                 f.coordinator_id AS heard_coordinator, \
                 (SELECT k.slot_id FROM booking k WHERE k.id = $4 AND k.status = 'booked' \
                  AND k.resident_id = $2) AS replaced_slot \
                 FROM slot s JOIN care_session c ON c.id = s.session_id \
                 JOIN unit u ON u.id = c.unit_id LEFT JOIN referral f ON f.id = $3 \
                 WHERE s.id = $1",
            )
            .bind(req.slot_id)
            .bind(req.resident_id)
            .bind(req.referral_id)
            .bind(req.replaces)
            .fetch_optional(p)
            .await?
            .ok_or(StoreError::NotFound)?;
            let heard_id: Option<Id> = r.try_get("heard_id")?;
            let heard = match heard_id {
                None => None,
                Some(id) => Some(crate::referral::Heard {
                    id,
                    group_id: r.try_get("heard_group")?,
                    kind: Kind::parse(&r.try_get::<String, _>("heard_kind")?)
                        .map_err(crate::referral::corrupt("kind"))?,
                    direction: Direction::parse(&r.try_get::<String, _>("heard_direction")?)
                        .map_err(crate::referral::corrupt("direction"))?,
                    resident_name: r.try_get("heard_name")?,
                    diagnosis: r.try_get("heard_diagnosis")?,
                    created_by: r.try_get("heard_created_by")?,
                    from_unit_id: r.try_get("heard_from")?,
                    to_unit_id: r.try_get("heard_to")?,
                    coordinator_id: r.try_get("heard_coordinator")?,
                }),
            };
            let seen = Seen {
                reserved: r.try_get("slot_reserved")?,
                starts_at: r.try_get("slot_starts_at")?,
                group: r.try_get("slot_group")?,
                session: r.try_get("slot_session")?,
                unit: r.try_get("unit_id")?,
                city: r.try_get("city_id")?,
                grid: r.try_get("grid_id")?,
                resident: r.try_get("party_resident")?,
                referral: r.try_get("party_referral")?,
                priority: r.try_get("party_priority")?,
                replaced_slot: r.try_get("replaced_slot")?,
            };
            Ok::<_, StoreError>((seen, heard))
        })?;
        if let Some(e) = refusal(policy, req, kind, &seen, seen.reserved) {
            return Err(StoreError::Invalid(Invalid::one(e)));
        }
        // A first booking moves its referral to "booked" (rescheduling keeps it there).
        let moving = match req.replaces {
            None => heard,
            Some(_) => None,
        };
        let plan = Plan {
            req,
            key,
            kind,
            // The reserved share is judged again on the row the UPDATE takes, in case it
            // changed since the read: the statement takes a reserved slot only if a reserved
            // slot may be taken, and likewise an open one.
            may_take_reserved: refusal(policy, req, kind, &seen, true).is_none(),
            may_take_open: refusal(policy, req, kind, &seen, false).is_none(),
            reference: format!("BK{}-{}-{}", seen.group, req.slot_id, req.resident_id),
            detail: format!(
                "slot {} session {} resident {} {}",
                req.slot_id,
                seen.session,
                req.resident_id,
                kind.as_str()
            ),
            moving,
            seen,
        };
        if let (crate::Backend::Postgres(pool), None) = (&self.backend, req.replaces) {
            return commit::in_one_statement(pool, actor, policy, &plan).await;
        }
        write!(self, |p| {
            let mut tx = p.begin().await?;
            // The one statement that decides who gets the slot: it changes a row only while the
            // slot is free, and PostgreSQL re-checks that condition after waiting for a rival.
            let won = sqlx::query(&format!("UPDATE slot SET {TAKE_SLOT}"))
                .bind(req.slot_id)
                .bind(req.now)
                .bind(req.hold_token.as_deref())
                .bind(plan.may_take_reserved)
                .bind(plan.may_take_open)
                .execute(&mut *tx)
                .await?;
            if won.rows_affected() != 1 {
                let answer = after_losing!(&mut *tx, policy, &plan);
                tx.rollback().await?;
                return answer;
            }
            // Rescheduling releases the old booking first, so that the referral's one live
            // booking moves rather than doubles.
            if let (Some(old), Some(old_slot)) = (req.replaces, plan.seen.replaced_slot) {
                let released = sqlx::query(
                    "UPDATE booking SET status = 'rescheduled', cancelled_at = $2 \
                     WHERE id = $1 AND status = 'booked'",
                )
                .bind(old)
                .bind(crate::now())
                .execute(&mut *tx)
                .await?;
                if released.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Err(StoreError::Invalid(Invalid::one(replaced_gone())));
                }
                sqlx::query("UPDATE slot SET status = 'free' WHERE id = $1")
                    .bind(old_slot)
                    .execute(&mut *tx)
                    .await?;
            }
            let r = sqlx::query(&format!(
                "INSERT INTO booking (group_id, slot_id, resident_id, referral_id, kind, reference, \
                 idempotency_key, status, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'booked', $8) RETURNING {BOOKING_COLUMNS}"
            ))
            .bind(plan.seen.group)
            .bind(req.slot_id)
            .bind(req.resident_id)
            .bind(req.referral_id)
            .bind(kind.as_str())
            .bind(&plan.reference)
            .bind(key)
            .bind(crate::now())
            .fetch_one(&mut *tx)
            .await;
            let r = match r {
                Err(e) => {
                    tx.rollback().await?;
                    return Err(insert_refused(e));
                }
                Ok(r) => r,
            };
            let booking = booking_from_row!(r);
            if let Some(f) = &plan.moving {
                let moved = sqlx::query("UPDATE referral SET status = 'booked', updated_at = $2, escalated_at = NULL, escalation = NULL WHERE id = $1 AND status = 'accepted'")
                    .bind(f.id)
                    .bind(req.now)
                    .execute(&mut *tx)
                    .await?;
                // Accepted when read, but booked or withdrawn by a rival since.
                if moved.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Err(StoreError::Invalid(Invalid::one(not_accepted())));
                }
                let note = plan.event_note();
                crate::referral::record_event!(
                    tx,
                    f,
                    "book",
                    Some("accepted"),
                    "booked",
                    "sender",
                    actor,
                    Some(note.as_str()),
                    req.now
                );
                sqlx::query("UPDATE waitlist SET status = 'fulfilled' WHERE referral_id = $1 AND status IN ('waiting', 'offered')")
                    .bind(f.id)
                    .execute(&mut *tx)
                    .await?;
            }
            audit_insert!(&mut *tx, &plan.audit(actor, &booking))?;
            tx.commit().await?;
            Ok(booking)
        })
    }
}

fn hold_lost() -> StoreError {
    StoreError::Conflict(FieldError::new(
        "slot",
        "not_free",
        "该号源已被预约或暂留",
        "the slot is booked or held by someone else",
    ))
}

impl Store {
    /// Keeps a free slot for one booker for `minutes` (1 to 60); the token confirms it with
    /// [`Store::book`]. An expired hold counts as free. The slot is judged as the booking
    /// would judge it (opening, reservation, the referral's priority window), so that nobody
    /// holds what they could not book.
    pub async fn hold_slot(
        &self,
        actor: &Actor,
        policy: &Policy,
        slot_id: Id,
        referral_id: Option<Id>,
        minutes: i64,
        now: NaiveDateTime,
    ) -> Result<Hold, StoreError> {
        if !(1..=60).contains(&minutes) {
            return Err(Invalid::one(FieldError::new(
                "minutes",
                "out_of_range",
                "暂留时长须在 1 到 60 分钟之间",
                "a hold lasts 1 to 60 minutes",
            ))
            .into());
        }
        let token = format!(
            "H{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        let until = now + chrono::Duration::minutes(minutes);
        write!(self, |p| {
            let mut tx = p.begin().await?;
            // A referral's hold is judged like its booking: the referral must exist, be
            // addressed to the slot's unit and be accepted (or booked, when it is moving).
            if let Some(referral_id) = referral_id {
                let row = sqlx::query(
                    "SELECT f.status, f.to_unit_id, \
                     (SELECT c.unit_id FROM slot s JOIN care_session c ON c.id = s.session_id \
                      WHERE s.id = $2) AS slot_unit \
                     FROM referral f WHERE f.id = $1 AND f.kind = 'referral' \
                     AND f.source_encounter_id IS NULL",
                )
                .bind(referral_id)
                .bind(slot_id)
                .fetch_optional(&mut *tx)
                .await?;
                let refused = match &row {
                    None => Some(FieldError::new(
                        "referral_id",
                        "not_found",
                        "转诊不存在",
                        "no such referral",
                    )),
                    Some(r) => {
                        let slot_unit: Option<Id> = r.try_get("slot_unit")?;
                        let to_unit: Option<Id> = r.try_get("to_unit_id")?;
                        let status: String = r.try_get("status")?;
                        if slot_unit.is_none() {
                            tx.rollback().await?;
                            return Err(StoreError::NotFound);
                        }
                        if slot_unit != to_unit {
                            Some(FieldError::new(
                                "referral_id",
                                "not_for_this_slot",
                                "该转诊未转往此号源所在机构",
                                "the referral is not addressed to this slot's unit",
                            ))
                        } else if status != "accepted" && status != "booked" {
                            Some(FieldError::new(
                                "referral_id",
                                "not_accepted",
                                "转诊须先由接收方接收后才能暂留号源",
                                "the referral must be accepted before a slot is held for it",
                            ))
                        } else {
                            None
                        }
                    }
                };
                if let Some(e) = refused {
                    tx.rollback().await?;
                    return Err(StoreError::Invalid(Invalid::one(e)));
                }
            }
            let won = sqlx::query(
                "UPDATE slot SET status = 'held', hold_until = $2, hold_token = $3, hold_referral_id = $4 \
                 WHERE id = $1 AND (status = 'free' OR (status = 'held' AND hold_until <= $5)) \
                 RETURNING starts_at, reserved, \
                 (SELECT f.priority FROM referral f WHERE f.id = $4) AS priority",
            )
            .bind(slot_id)
            .bind(until)
            .bind(&token)
            .bind(referral_id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(won) = won else {
                let exists: Option<Id> = sqlx::query_scalar("SELECT id FROM slot WHERE id = $1")
                    .bind(slot_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.rollback().await?;
                return Err(if exists.is_some() {
                    hold_lost()
                } else {
                    StoreError::NotFound
                });
            };
            let starts_at: NaiveDateTime = won.try_get("starts_at")?;
            let reserved: bool = won.try_get("reserved")?;
            let priority: Option<String> = won.try_get("priority")?;
            let kind = if referral_id.is_some() {
                BookingKind::Referral
            } else {
                BookingKind::General
            };
            let judged = policy
                .may_take(reserved, kind, starts_at, now)
                .and_then(|()| match priority.as_deref().map(Priority::parse) {
                    Some(Ok(p)) => policy.check_window(p, starts_at, now),
                    _ => Ok(()),
                });
            if let Err(e) = judged {
                tx.rollback().await?;
                return Err(StoreError::Invalid(Invalid::one(e)));
            }
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "slot.hold",
                    resource_type: "Slot",
                    resource_id: Some(format!("slot-{slot_id}")),
                    target: None,
                    outcome: Outcome::Ok,
                    detail: Some(format!("until {until} referral {referral_id:?}")),
                }
            )?;
            tx.commit().await?;
            Ok(Hold {
                slot_id,
                token,
                until,
            })
        })
    }

    /// A booking by its id.
    pub async fn booking(&self, id: Id) -> Result<Booking, StoreError> {
        read!(self, |p| {
            let r = sqlx::query(&format!(
                "SELECT {BOOKING_COLUMNS} FROM booking WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(p)
            .await?
            .ok_or(StoreError::NotFound)?;
            Ok(booking_from_row!(r))
        })
    }

    /// A booking by the reference the patient was given.
    pub async fn booking_by_reference(&self, reference: &str) -> Result<Booking, StoreError> {
        read!(self, |p| {
            let r = sqlx::query(&format!(
                "SELECT {BOOKING_COLUMNS} FROM booking WHERE reference = $1"
            ))
            .bind(reference.trim())
            .fetch_optional(p)
            .await?
            .ok_or(StoreError::NotFound)?;
            Ok(booking_from_row!(r))
        })
    }

    /// The live booking of a referral, with its slot's start and unit.
    pub async fn referral_booking(
        &self,
        referral_id: Id,
    ) -> Result<Option<(Booking, NaiveDateTime, String)>, StoreError> {
        read!(self, |p| {
            let r = sqlx::query(
                "SELECT b.id, b.group_id, b.slot_id, b.resident_id, b.referral_id, b.kind, \
                 b.reference, b.status, s.starts_at, u.legal_name FROM booking b \
                 JOIN slot s ON s.id = b.slot_id JOIN care_session c ON c.id = s.session_id \
                 JOIN unit u ON u.id = c.unit_id WHERE b.referral_id = $1 AND b.status = 'booked'",
            )
            .bind(referral_id)
            .fetch_optional(p)
            .await?;
            match r {
                None => Ok(None),
                Some(r) => Ok(Some((
                    booking_from_row!(r),
                    r.try_get("starts_at")?,
                    r.try_get("legal_name")?,
                ))),
            }
        })
    }

    /// Cancels a live booking and frees its slot; a referral's booking sends the referral back
    /// to "accepted" so it can be booked again. The freed slot is offered to the first referral
    /// waiting for that clinic (green channel first).
    pub async fn cancel_booking(
        &self,
        actor: &Actor,
        booking_id: Id,
        now: NaiveDateTime,
        offer_hours: i64,
    ) -> Result<Booking, StoreError> {
        let cancelled = write!(self, |p| {
            let mut tx = p.begin().await?;
            let r = sqlx::query(&format!(
                "UPDATE booking SET status = 'cancelled', cancelled_at = $2 \
                 WHERE id = $1 AND status = 'booked' RETURNING {BOOKING_COLUMNS}"
            ))
            .bind(booking_id)
            .bind(crate::now())
            .fetch_optional(&mut *tx)
            .await?;
            let Some(r) = r else {
                tx.rollback().await?;
                return Err(StoreError::Conflict(FieldError::new(
                    "booking",
                    "not_live",
                    "该预约不存在或已取消",
                    "the booking does not exist or is no longer live",
                )));
            };
            let b = booking_from_row!(r);
            sqlx::query("UPDATE slot SET status = 'free', hold_until = NULL, hold_token = NULL, hold_referral_id = NULL WHERE id = $1")
                .bind(b.slot_id)
                .execute(&mut *tx)
                .await?;
            if let Some(referral_id) = b.referral_id {
                crate::referral::unbook_referral!(
                    tx,
                    referral_id,
                    b.reference.as_str(),
                    actor,
                    now
                );
            }
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "slot.cancel",
                    resource_type: "Appointment",
                    resource_id: Some(format!("booking-{}", b.id)),
                    target: None,
                    outcome: Outcome::Ok,
                    detail: Some(format!("slot {} resident {}", b.slot_id, b.resident_id)),
                }
            )?;
            tx.commit().await?;
            Ok::<Booking, StoreError>(b)
        })?;
        self.offer_freed_slot(actor, cancelled.slot_id, now, offer_hours)
            .await?;
        Ok(cancelled)
    }

    /// Free capacity matching `search`, earliest first, each marked with whether the policy
    /// lets this booker take it now.
    pub async fn find_slots(
        &self,
        policy: &Policy,
        search: &SlotSearch,
        now: NaiveDateTime,
    ) -> Result<Vec<FreeSlot>, StoreError> {
        let limit = if search.limit <= 0 {
            50
        } else {
            search.limit.min(500)
        };
        let from = search.from.unwrap_or(now);
        let to = search
            .to
            .unwrap_or(now + chrono::Duration::days(policy.open_days_ahead as i64 + 1));
        let rows = read!(self, |p| {
            sqlx::query(
                "SELECT s.id, s.session_id, c.unit_id, u.legal_name, c.department_code, \
                 c.practitioner_id, pr.name AS practitioner_name, s.starts_at, \
                 CAST(c.slot_minutes AS BIGINT) AS slot_minutes, s.reserved, \
                 CASE WHEN sc.expert_visit THEN 1 ELSE 0 END AS expert_visit \
                 FROM slot s JOIN care_session c ON c.id = s.session_id JOIN unit u ON u.id = c.unit_id \
                 LEFT JOIN practitioner pr ON pr.id = c.practitioner_id \
                 LEFT JOIN care_schedule sc ON sc.id = c.schedule_id \
                 WHERE (s.status = 'free' OR (s.status = 'held' AND s.hold_until <= $1)) \
                 AND s.starts_at > $1 AND s.starts_at >= $2 AND s.starts_at < $3 \
                 AND ($4 IS NULL OR c.group_id = $4) AND ($5 IS NULL OR c.unit_id = $5) \
                 AND ($6 IS NULL OR c.department_code = $6) AND ($7 IS NULL OR c.practitioner_id = $7) \
                 ORDER BY s.starts_at, s.id LIMIT $8",
            )
            .bind(now)
            .bind(from)
            .bind(to)
            .bind(search.group_id)
            .bind(search.unit_id)
            .bind(search.department_code.as_deref().filter(|d| !d.is_empty()))
            .bind(search.practitioner_id)
            .bind(limit)
            .fetch_all(p)
            .await?
            .into_iter()
            .map(|r| -> Result<FreeSlot, StoreError> {
                let expert: i64 = r
                    .try_get::<i32, _>("expert_visit")
                    .map(i64::from)
                    .or_else(|_| r.try_get::<i64, _>("expert_visit"))?;
                Ok(FreeSlot {
                    slot_id: r.try_get("id")?,
                    session_id: r.try_get("session_id")?,
                    unit_id: r.try_get("unit_id")?,
                    unit_name: r.try_get("legal_name")?,
                    department_code: r.try_get("department_code")?,
                    practitioner_id: r.try_get("practitioner_id")?,
                    practitioner_name: r.try_get("practitioner_name")?,
                    starts_at: r.try_get("starts_at")?,
                    slot_minutes: r.try_get("slot_minutes")?,
                    reserved: r.try_get("reserved")?,
                    expert_visit: expert != 0,
                    refused_zh: None,
                })
            })
            .collect::<Result<Vec<_>, _>>()?
        });
        let kind = if search.for_referral {
            BookingKind::Referral
        } else {
            BookingKind::General
        };
        Ok(rows
            .into_iter()
            .map(|mut s| {
                s.refused_zh = policy
                    .may_take(s.reserved, kind, s.starts_at, now)
                    .err()
                    .map(|e| e.message_zh);
                s
            })
            .collect())
    }
}
