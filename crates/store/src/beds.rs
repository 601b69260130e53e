//! The group bed pool (R5.3, 集团一张床): every ward of every unit of a group, with a quarter of
//! a lead hospital's beds kept for referred patients (R5.1).
//!
//! Beds of a ward are numbered 1..=beds, the first `reserved_beds` being the reserved ones. A
//! booking claims one bed for one admission day by inserting a row that the partial unique
//! index (ward, day, bed) WHERE live lets exist only once; a loser of that race moves on to the
//! next free bed, so simultaneous bookings never share a bed on either database.

use chrono::{NaiveDate, NaiveDateTime};
use serde::Serialize;
use sqlx::Row;

use medgrid_domain::access::{Id, OrgPath};
use medgrid_domain::capacity::{BookingKind, Policy};
use medgrid_domain::org::{MemberRole, Unit};
use medgrid_domain::{FieldError, Invalid};

use crate::audit::{audit_insert, AuditEntry};
use crate::{read, write, Actor, Outcome, Store, StoreError};

/// A ward to create at a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WardDraft {
    pub department_code: String,
    pub name: String,
    pub beds: u32,
    pub reserved_beds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ward {
    pub id: Id,
    pub group_id: Id,
    pub unit_id: Id,
    pub department_code: String,
    pub name: String,
    pub beds: u32,
    pub reserved_beds: u32,
}

/// One ward of the pool on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WardDay {
    pub ward_id: Id,
    pub unit_id: Id,
    pub unit_name: String,
    pub unit_role: String,
    pub department_code: String,
    pub name: String,
    pub day: NaiveDate,
    pub beds: u32,
    pub reserved_beds: u32,
    /// Live bookings on general beds.
    pub booked_general: u32,
    /// Live bookings on reserved beds (by referrals, or by anyone once returned).
    pub booked_reserved: u32,
    pub free_general: u32,
    pub free_reserved: u32,
}

/// One attempt to book a bed: a referral admission when `referral_id` is given.
/// `idempotency_key` makes a retried request return the first result; `now` is the moment
/// the policy is judged at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BedRequest {
    pub ward_id: Id,
    pub admit_on: NaiveDate,
    pub resident_id: Id,
    pub referral_id: Option<Id>,
    pub idempotency_key: String,
    pub now: NaiveDateTime,
}

/// A bed taken for an admission day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BedBooking {
    pub id: Id,
    pub group_id: Id,
    pub ward_id: Id,
    pub admit_on: NaiveDate,
    pub bed_no: u32,
    pub reserved: bool,
    pub resident_id: Id,
    pub referral_id: Option<Id>,
    pub kind: String,
    pub reference: String,
    pub status: String,
}

const BED_BOOKING_COLUMNS: &str =
    "id, group_id, ward_id, admit_on, CAST(bed_no AS BIGINT) AS bed_no, \
     reserved, resident_id, referral_id, kind, reference, status";

fn count(v: i64, field: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(field.to_owned()))
}

macro_rules! bed_booking_from_row {
    ($r:expr) => {{
        let r = &$r;
        BedBooking {
            id: r.try_get("id")?,
            group_id: r.try_get("group_id")?,
            ward_id: r.try_get("ward_id")?,
            admit_on: r.try_get("admit_on")?,
            bed_no: count(r.try_get("bed_no")?, "bed_no")?,
            reserved: r.try_get("reserved")?,
            resident_id: r.try_get("resident_id")?,
            referral_id: r.try_get("referral_id")?,
            kind: r.try_get("kind")?,
            reference: r.try_get("reference")?,
            status: r.try_get("status")?,
        }
    }};
}

fn ward_full() -> StoreError {
    StoreError::Conflict(FieldError::new(
        "ward",
        "full",
        "该病区当日已无可预约床位",
        "the ward has no bed left that this booking may take on that day",
    ))
}

fn key_reused() -> StoreError {
    StoreError::Conflict(FieldError::new(
        "idempotency_key",
        "reused",
        "该幂等键已用于另一床位预约请求",
        "the key was used for another bed booking request",
    ))
}

/// Whether an earlier booking under the same key answers this request.
fn same_request(b: &BedBooking, req: &BedRequest) -> bool {
    b.ward_id == req.ward_id
        && b.admit_on == req.admit_on
        && b.resident_id == req.resident_id
        && b.referral_id == req.referral_id
}

impl Store {
    /// Creates a ward at `unit`; a lead hospital's ward must keep the policy's share of beds
    /// for referrals (refused with the reason otherwise).
    pub async fn create_ward(
        &self,
        actor: &Actor,
        unit: &Unit,
        draft: &WardDraft,
        policy: &Policy,
    ) -> Result<Ward, StoreError> {
        let mut problems = Vec::new();
        if let Err(e) = policy.check_ward(
            draft.beds,
            draft.reserved_beds,
            unit.role == MemberRole::Lead,
        ) {
            problems.push(e);
        }
        let name = draft.name.trim();
        if name.is_empty() {
            problems.push(FieldError::required("name"));
        } else if name.chars().count() > 100 {
            problems.push(FieldError::new(
                "name",
                "too_long",
                "病区名称不能超过 100 个字",
                "at most 100 characters",
            ));
        }
        let department_code = draft.department_code.trim();
        if department_code.is_empty() {
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
        write!(self, |p| {
            let mut tx = p.begin().await?;
            let department: Option<Id> =
                sqlx::query_scalar("SELECT id FROM department WHERE unit_id = $1 AND code = $2")
                    .bind(unit.id)
                    .bind(department_code)
                    .fetch_optional(&mut *tx)
                    .await?;
            if !department_code.is_empty() && department.is_none() {
                problems.push(FieldError::new(
                    "department_code",
                    "not_found",
                    "该机构没有此科室",
                    "the unit has no such department",
                ));
            }
            if !problems.is_empty() {
                tx.rollback().await?;
                return Err(StoreError::Invalid(Invalid(problems)));
            }
            let id: Id = sqlx::query_scalar(
                "INSERT INTO ward (group_id, unit_id, department_code, name, beds, reserved_beds, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(group_id)
            .bind(unit.id)
            .bind(department_code)
            .bind(name)
            .bind(i64::from(draft.beds))
            .bind(i64::from(draft.reserved_beds))
            .bind(crate::now())
            .fetch_one(&mut *tx)
            .await?;
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "ward.create",
                    resource_type: "Location",
                    resource_id: Some(format!("ward-{id}")),
                    target: Some(unit.path()),
                    outcome: Outcome::Ok,
                    detail: Some(format!(
                        "{department_code} {name} beds {} reserved {}",
                        draft.beds, draft.reserved_beds
                    )),
                }
            )?;
            tx.commit().await?;
            Ok(Ward {
                id,
                group_id,
                unit_id: unit.id,
                department_code: department_code.to_owned(),
                name: name.to_owned(),
                beds: draft.beds,
                reserved_beds: draft.reserved_beds,
            })
        })
    }

    /// Every ward of every unit of the group with its beds on `day`, lead hospital first.
    pub async fn bed_pool(&self, group_id: Id, day: NaiveDate) -> Result<Vec<WardDay>, StoreError> {
        read!(self, |p| {
            let rows = sqlx::query(
                "SELECT w.id, w.unit_id, u.legal_name, u.role, w.department_code, w.name, \
                 CAST(w.beds AS BIGINT) AS beds, CAST(w.reserved_beds AS BIGINT) AS reserved_beds, \
                 (SELECT COUNT(*) FROM bed_booking b WHERE b.ward_id = w.id AND b.admit_on = $2 \
                  AND b.status = 'booked' AND NOT b.reserved) AS booked_general, \
                 (SELECT COUNT(*) FROM bed_booking b WHERE b.ward_id = w.id AND b.admit_on = $2 \
                  AND b.status = 'booked' AND b.reserved) AS booked_reserved \
                 FROM ward w JOIN unit u ON u.id = w.unit_id WHERE w.group_id = $1 \
                 ORDER BY CASE WHEN u.role = 'lead' THEN 0 ELSE 1 END, u.id, w.id",
            )
            .bind(group_id)
            .bind(day)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let beds = count(r.try_get("beds")?, "beds")?;
                let reserved_beds = count(r.try_get("reserved_beds")?, "reserved_beds")?;
                let booked_general = count(r.try_get("booked_general")?, "booked_general")?;
                let booked_reserved = count(r.try_get("booked_reserved")?, "booked_reserved")?;
                out.push(WardDay {
                    ward_id: r.try_get("id")?,
                    unit_id: r.try_get("unit_id")?,
                    unit_name: r.try_get("legal_name")?,
                    unit_role: r.try_get("role")?,
                    department_code: r.try_get("department_code")?,
                    name: r.try_get("name")?,
                    day,
                    beds,
                    reserved_beds,
                    booked_general,
                    booked_reserved,
                    free_general: (beds.saturating_sub(reserved_beds))
                        .saturating_sub(booked_general),
                    free_reserved: reserved_beds.saturating_sub(booked_reserved),
                });
            }
            Ok(out)
        })
    }

    /// The wards of a unit.
    pub async fn wards(&self, unit_id: Id) -> Result<Vec<Ward>, StoreError> {
        read!(self, |p| {
            let rows = sqlx::query(
                "SELECT id, group_id, unit_id, department_code, name, CAST(beds AS BIGINT) AS beds, \
                 CAST(reserved_beds AS BIGINT) AS reserved_beds FROM ward WHERE unit_id = $1 \
                 ORDER BY department_code, id",
            )
            .bind(unit_id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(Ward {
                    id: r.try_get("id")?,
                    group_id: r.try_get("group_id")?,
                    unit_id: r.try_get("unit_id")?,
                    department_code: r.try_get("department_code")?,
                    name: r.try_get("name")?,
                    beds: count(r.try_get("beds")?, "beds")?,
                    reserved_beds: count(r.try_get("reserved_beds")?, "reserved_beds")?,
                });
            }
            Ok(out)
        })
    }

    /// The live bed booking of a referral, with its ward's name.
    pub async fn referral_bed_booking(
        &self,
        referral_id: Id,
    ) -> Result<Option<(BedBooking, String)>, StoreError> {
        read!(self, |p| {
            let r = sqlx::query(&format!(
                "SELECT {BED_BOOKING_COLUMNS}, (SELECT w.name FROM ward w WHERE w.id = ward_id) \
                 AS ward_name FROM bed_booking WHERE referral_id = $1 AND status = 'booked'"
            ))
            .bind(referral_id)
            .fetch_optional(p)
            .await?;
            match r {
                None => Ok(None),
                Some(r) => Ok(Some((bed_booking_from_row!(r), r.try_get("ward_name")?))),
            }
        })
    }

    /// A bed booking by its id.
    pub async fn bed_booking(&self, id: Id) -> Result<BedBooking, StoreError> {
        read!(self, |p| {
            let r = sqlx::query(&format!(
                "SELECT {BED_BOOKING_COLUMNS} FROM bed_booking WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(p)
            .await?
            .ok_or(StoreError::NotFound)?;
            Ok(bed_booking_from_row!(r))
        })
    }

    /// Books the lowest free bed this booker may take on `admit_on`. A referral takes a
    /// reserved bed first, then a general one; a general booking takes a general bed, or a
    /// reserved one once the policy has returned it. A request repeated with the same key
    /// returns the first booking.
    pub async fn book_bed(
        &self,
        actor: &Actor,
        policy: &Policy,
        req: &BedRequest,
    ) -> Result<BedBooking, StoreError> {
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
        let (group_id, unit_id, beds, reserved_beds, target) = read!(self, |p| {
            let ward = sqlx::query(
                "SELECT w.group_id, w.unit_id, CAST(w.beds AS BIGINT) AS beds, \
                 CAST(w.reserved_beds AS BIGINT) AS reserved_beds, u.city_id, u.grid_id \
                 FROM ward w JOIN unit u ON u.id = w.unit_id WHERE w.id = $1",
            )
            .bind(req.ward_id)
            .fetch_optional(p)
            .await?
            .ok_or(StoreError::NotFound)?;
            let group_id: Id = ward.try_get("group_id")?;
            let unit_id: Id = ward.try_get("unit_id")?;
            let beds = count(ward.try_get("beds")?, "beds")?;
            let reserved_beds = count(ward.try_get("reserved_beds")?, "reserved_beds")?.min(beds);
            let target = OrgPath {
                city: ward.try_get("city_id")?,
                grid: ward.try_get("grid_id")?,
                group: Some(group_id),
                unit: Some(unit_id),
            };
            (group_id, unit_id, beds, reserved_beds, target)
        });
        if let Some(b) = self.bed_booking_by_key(group_id, key).await? {
            return if same_request(&b, req) {
                Ok(b)
            } else {
                Err(key_reused())
            };
        }
        let moment = policy.admission_moment(req.admit_on);
        // Too early or too late for any bed: the same answer whichever bed it would be.
        policy
            .may_take(false, kind, moment, req.now)
            .map_err(|e| StoreError::Invalid(Invalid::one(e)))?;
        let reserved_open = policy.may_take(true, kind, moment, req.now).is_ok();
        let general_beds = reserved_beds + 1..=beds;
        let reserved = 1..=reserved_beds;
        let order: Vec<u32> = match kind {
            BookingKind::Referral => reserved.chain(general_beds).collect(),
            BookingKind::General if reserved_open => general_beds.chain(reserved).collect(),
            BookingKind::General => general_beds.collect(),
        };
        // An async block, so that its early returns end the attempt rather than the function.
        let result = write!(self, |p| {
            async {
            let mut tx = p.begin().await?;
            let place = sqlx::query(
                "SELECT (SELECT r.id FROM resident r WHERE r.id = $1) AS resident, \
                 (SELECT f.status FROM referral f WHERE f.id = $2 AND f.resident_id = $1 \
                  AND f.to_unit_id = $3 AND f.source_encounter_id IS NULL \
                  AND f.kind = 'referral') AS referral",
            )
            .bind(req.resident_id)
            .bind(req.referral_id)
            .bind(unit_id)
            .fetch_one(&mut *tx)
            .await?;
            let resident: Option<Id> = place.try_get("resident")?;
            let referral: Option<String> = place.try_get("referral")?;
            let refused = if resident.is_none() {
                Some(FieldError::new(
                    "resident_id",
                    "not_found",
                    "居民不存在",
                    "no such resident",
                ))
            } else if req.referral_id.is_some() && referral.is_none() {
                Some(FieldError::new(
                    "referral_id",
                    "not_for_this_ward",
                    "该转诊不属于此居民或未转往此病区所在机构",
                    "the referral is not this resident's, or not to this ward's unit",
                ))
            } else if req.referral_id.is_some() && referral.as_deref() != Some("accepted") {
                Some(not_accepted())
            } else {
                None
            };
            if let Some(e) = refused {
                tx.rollback().await?;
                return Err(StoreError::Invalid(Invalid::one(e)));
            }
            let taken: Vec<i64> = sqlx::query_scalar(
                "SELECT CAST(bed_no AS BIGINT) FROM bed_booking \
                 WHERE ward_id = $1 AND admit_on = $2 AND status = 'booked'",
            )
            .bind(req.ward_id)
            .bind(req.admit_on)
            .fetch_all(&mut *tx)
            .await?;
            let mut won = None;
            let mut key_clash = false;
            for bed in order
                .iter()
                .copied()
                .filter(|b| !taken.contains(&i64::from(*b)))
            {
                // A bed booked and cancelled before keeps its reference; the next one counts on.
                let earlier: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM bed_booking WHERE ward_id = $1 AND admit_on = $2 \
                     AND bed_no = $3",
                )
                .bind(req.ward_id)
                .bind(req.admit_on)
                .bind(i64::from(bed))
                .fetch_one(&mut *tx)
                .await?;
                let mut reference = format!(
                    "BD{group_id}-{}-{}-{bed}",
                    req.ward_id,
                    req.admit_on.format("%Y%m%d")
                );
                if earlier > 0 {
                    reference.push_str(&format!("-{}", earlier + 1));
                }
                // Only the bed index is the arbiter. PostgreSQL may still report a rival's
                // simultaneous insert of this bed through another unique index (its reference)
                // or a clash on the key as an error; a savepoint keeps the transaction usable.
                let mut attempt = sqlx::Connection::begin(&mut *tx).await?;
                let inserted = sqlx::query(&format!(
                    "INSERT INTO bed_booking (group_id, ward_id, admit_on, bed_no, reserved, \
                     resident_id, referral_id, kind, reference, idempotency_key, status, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'booked', $11) \
                     ON CONFLICT (ward_id, admit_on, bed_no) WHERE status = 'booked' DO NOTHING \
                     RETURNING {BED_BOOKING_COLUMNS}"
                ))
                .bind(group_id)
                .bind(req.ward_id)
                .bind(req.admit_on)
                .bind(i64::from(bed))
                .bind(bed <= reserved_beds)
                .bind(req.resident_id)
                .bind(req.referral_id)
                .bind(kind.as_str())
                .bind(&reference)
                .bind(key)
                .bind(crate::now())
                .fetch_optional(&mut *attempt)
                .await;
                match inserted {
                    Ok(Some(r)) => {
                        attempt.commit().await?;
                        won = Some(bed_booking_from_row!(r));
                        break;
                    }
                    Ok(None) => {
                        attempt.commit().await?;
                        continue;
                    }
                    Err(e) if e.as_database_error().is_some_and(|d| d.is_unique_violation()) => {
                        attempt.rollback().await?;
                        // The key, now taken by a committed rival, or else the bed was.
                        let keyed: Option<Id> = sqlx::query_scalar(
                            "SELECT id FROM bed_booking WHERE group_id = $1 AND idempotency_key = $2",
                        )
                        .bind(group_id)
                        .bind(key)
                        .fetch_optional(&mut *tx)
                        .await?;
                        if keyed.is_some() {
                            key_clash = true;
                            break;
                        }
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if key_clash {
                tx.rollback().await?;
                return Ok(None);
            }
            let Some(booking) = won else {
                tx.rollback().await?;
                return Err(ward_full());
            };
            if let Some(referral_id) = req.referral_id {
                // Re-checked by the update itself: a rival booking for the same referral may
                // have moved it since it was read.
                let moved = sqlx::query(
                    "UPDATE referral SET status = 'booked', updated_at = $2, escalated_at = NULL, \
                     escalation = NULL WHERE id = $1 AND status = 'accepted'",
                )
                .bind(referral_id)
                .bind(req.now)
                .execute(&mut *tx)
                .await?;
                if moved.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Err(StoreError::Invalid(Invalid::one(not_accepted())));
                }
                let f = crate::referral::referral_in_tx!(tx, referral_id);
                let note = format!("{} {}", booking.reference, booking.admit_on);
                crate::referral::record_event!(
                    tx,
                    &f.heard(),
                    "book",
                    Some("accepted"),
                    "booked",
                    "sender",
                    actor,
                    Some(note.as_str()),
                    req.now
                );
            }
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "bed.book",
                    resource_type: "Appointment",
                    resource_id: Some(format!("bed-booking-{}", booking.id)),
                    target: Some(target),
                    outcome: Outcome::Ok,
                    detail: Some(format!(
                        "ward {} {} bed {} resident {} {}",
                        req.ward_id,
                        req.admit_on,
                        booking.bed_no,
                        req.resident_id,
                        kind.as_str()
                    )),
                }
            )?;
            tx.commit().await?;
            Ok::<Option<BedBooking>, StoreError>(Some(booking))
            }
            .await
        })?;
        match result {
            Some(b) => Ok(b),
            // The key was taken meanwhile, by a retry of this request or by another one.
            None => match self.bed_booking_by_key(group_id, key).await? {
                Some(b) if same_request(&b, req) => Ok(b),
                Some(_) => Err(key_reused()),
                None => Err(StoreError::Conflict(FieldError::new(
                    "record",
                    "conflict",
                    "记录已存在，请重试",
                    "the record already exists; try again",
                ))),
            },
        }
    }

    async fn bed_booking_by_key(
        &self,
        group_id: Id,
        key: &str,
    ) -> Result<Option<BedBooking>, StoreError> {
        read!(self, |p| {
            let r = sqlx::query(&format!(
                "SELECT {BED_BOOKING_COLUMNS} FROM bed_booking \
                 WHERE group_id = $1 AND idempotency_key = $2"
            ))
            .bind(group_id)
            .bind(key)
            .fetch_optional(p)
            .await?;
            match r {
                Some(r) => Ok(Some(bed_booking_from_row!(r))),
                None => Ok(None),
            }
        })
    }

    /// Cancels a live bed booking, freeing the bed. A referral that this bed booked goes back
    /// to "accepted" so it can be booked again; one that also holds a live appointment stays
    /// booked.
    pub async fn cancel_bed_booking(
        &self,
        actor: &Actor,
        id: Id,
    ) -> Result<BedBooking, StoreError> {
        let now = crate::local_now();
        write!(self, |p| {
            let mut tx = p.begin().await?;
            let r = sqlx::query(&format!(
                "UPDATE bed_booking SET status = 'cancelled' WHERE id = $1 AND status = 'booked' \
                 RETURNING {BED_BOOKING_COLUMNS}"
            ))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(r) = r else {
                tx.rollback().await?;
                return Err(StoreError::Conflict(FieldError::new(
                    "bed_booking",
                    "not_live",
                    "该床位预约不存在或已取消",
                    "the bed booking does not exist or is no longer live",
                )));
            };
            let b = bed_booking_from_row!(r);
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
                    action: "bed.cancel",
                    resource_type: "Appointment",
                    resource_id: Some(format!("bed-booking-{}", b.id)),
                    target: None,
                    outcome: Outcome::Ok,
                    detail: Some(format!(
                        "ward {} {} bed {} resident {}",
                        b.ward_id, b.admit_on, b.bed_no, b.resident_id
                    )),
                }
            )?;
            tx.commit().await?;
            Ok(b)
        })
    }
}

fn not_accepted() -> FieldError {
    FieldError::new(
        "referral_id",
        "not_accepted",
        "转诊须先由接收方接收后才能预约",
        "the referral must be accepted before it is booked",
    )
}
