//! Weekly timetables that open sessions (R5), and the daily reservation compliance report
//! per department (R5.1).
//!
//! Sessions are opened from a timetable by `INSERT … ON CONFLICT DO NOTHING` on the unique
//! (schedule, start) index, so that any number of runs, even simultaneous ones from several
//! processes, open each session exactly once; slots are written only by the run whose insert
//! created the session.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};
use serde::Serialize;
use sqlx::Row;

use medgrid_domain::access::{Id, OrgPath};
use medgrid_domain::capacity::Policy;
use medgrid_domain::org::{MemberRole, Unit};
use medgrid_domain::{FieldError, Invalid};

use crate::audit::{audit_insert, AuditEntry};
use crate::{read, write, Actor, Outcome, Store, StoreError};

/// A weekly timetable entry to create at a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleDraft {
    pub department_code: String,
    pub practitioner_id: Option<Id>,
    /// ISO weekday: 1 = Monday … 7 = Sunday.
    pub weekday: u32,
    pub start_time: NaiveTime,
    pub slot_minutes: u32,
    pub capacity: u32,
    pub reserved: u32,
    /// A lead-hospital expert seeing patients at a member site (R5.4).
    pub expert_visit: bool,
}

/// A stored weekly timetable entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Schedule {
    pub id: Id,
    pub group_id: Id,
    pub unit_id: Id,
    pub department_code: String,
    pub practitioner_id: Option<Id>,
    pub weekday: u32,
    pub start_time: NaiveTime,
    pub slot_minutes: u32,
    pub capacity: u32,
    pub reserved: u32,
    pub expert_visit: bool,
}

/// A session opened from a timetable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduledSession {
    pub session_id: Id,
    pub schedule_id: Id,
    pub starts_at: NaiveDateTime,
    pub capacity: u32,
    pub reserved: u32,
}

/// One department of one unit on one day: how much was kept for referrals and who used it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComplianceRow {
    pub unit_id: Id,
    pub unit_name: String,
    pub unit_role: String,
    pub department_code: String,
    pub day: NaiveDate,
    pub sessions: i64,
    pub capacity: i64,
    pub reserved: i64,
    /// What the policy asks of these sessions (the sum over sessions, each rounded up).
    pub required: i64,
    /// Only lead hospitals owe the share; other units are always compliant.
    pub compliant: bool,
    pub reserved_booked_by_referral: i64,
    /// Reserved slots that returned to general booking and were taken by it.
    pub reserved_taken_by_general: i64,
    pub referral_bookings: i64,
    pub general_bookings: i64,
}

const SCHEDULE_COLUMNS: &str = "id, group_id, unit_id, department_code, practitioner_id, \
     CAST(weekday AS BIGINT) AS weekday, start_time, CAST(slot_minutes AS BIGINT) AS slot_minutes, \
     CAST(capacity AS BIGINT) AS capacity, CAST(reserved AS BIGINT) AS reserved, expert_visit";

/// Times are kept as text on both databases (the column is TEXT), in one fixed format.
const TIME_FORMAT: &str = "%H:%M:%S";

/// The longest span one run may open, so that a typo cannot write years of sessions.
const MAX_OPEN_DAYS: i64 = 366;

fn small(v: i64, field: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(field.to_owned()))
}

macro_rules! schedule_from_row {
    ($r:expr) => {{
        let r = &$r;
        let start: String = r.try_get("start_time")?;
        Schedule {
            id: r.try_get("id")?,
            group_id: r.try_get("group_id")?,
            unit_id: r.try_get("unit_id")?,
            department_code: r.try_get("department_code")?,
            practitioner_id: r.try_get("practitioner_id")?,
            weekday: small(r.try_get::<i64, _>("weekday")?, "weekday")?,
            start_time: NaiveTime::parse_from_str(&start, TIME_FORMAT)
                .map_err(|_| StoreError::Corrupt(format!("start_time: '{start}'")))?,
            slot_minutes: small(r.try_get::<i64, _>("slot_minutes")?, "slot_minutes")?,
            capacity: small(r.try_get::<i64, _>("capacity")?, "capacity")?,
            reserved: small(r.try_get::<i64, _>("reserved")?, "reserved")?,
            expert_visit: r.try_get("expert_visit")?,
        }
    }};
}

/// The checks that need no database, all of them at once.
fn check_draft(unit: &Unit, draft: &ScheduleDraft, policy: &Policy) -> Vec<FieldError> {
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
    } else if draft.capacity > 0 {
        // A session that runs past midnight would open slots on the next weekday.
        let end = draft.start_time.signed_duration_since(NaiveTime::MIN)
            + chrono::Duration::minutes(i64::from(draft.slot_minutes) * i64::from(draft.capacity));
        if end > chrono::Duration::days(1) {
            problems.push(FieldError::new(
                "start_time",
                "beyond_day",
                "该出诊单元的号源须在当天结束",
                "the session's slots must end within the day",
            ));
        }
    }
    if !(1..=7).contains(&draft.weekday) {
        problems.push(FieldError::new(
            "weekday",
            "out_of_range",
            "星期须为 1（周一）到 7（周日）",
            "must be 1 (Monday) to 7 (Sunday)",
        ));
    }
    if draft.department_code.trim().is_empty() {
        problems.push(FieldError::required("department_code"));
    }
    if draft.expert_visit && draft.practitioner_id.is_none() {
        problems.push(FieldError::new(
            "practitioner_id",
            "required_for_expert_visit",
            "专家下沉出诊须指定出诊医师",
            "an expert visit names the visiting practitioner",
        ));
    }
    if draft.expert_visit && unit.role == MemberRole::Lead {
        problems.push(FieldError::new(
            "expert_visit",
            "at_lead",
            "专家下沉出诊须在成员单位，而非牵头医院",
            "an expert visit is held at a member unit, not at the lead hospital",
        ));
    }
    problems
}

impl Store {
    /// Creates a weekly timetable entry at `unit`, checked like a session opened by hand
    /// ([`Store::open_care_session`]): every problem is reported at once and nothing is
    /// written unless there are none.
    pub async fn create_schedule(
        &self,
        actor: &Actor,
        unit: &Unit,
        draft: &ScheduleDraft,
        policy: &Policy,
    ) -> Result<Id, StoreError> {
        let mut problems = check_draft(unit, draft, policy);
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
            // The expert must practise at the group's lead hospital as well as at this unit.
            let r = sqlx::query(
                "SELECT (SELECT id FROM department WHERE unit_id = $1 AND code = $2) AS department, \
                 (SELECT id FROM practice_site WHERE unit_id = $1 AND practitioner_id = $3) AS site, \
                 (SELECT s.id FROM practice_site s JOIN unit l ON l.id = s.unit_id \
                  WHERE s.practitioner_id = $3 AND l.group_id = $4 AND l.role = 'lead') AS lead_site",
            )
            .bind(unit.id)
            .bind(draft.department_code.trim())
            .bind(draft.practitioner_id)
            .bind(group_id)
            .fetch_one(&mut *tx)
            .await?;
            let department: Option<Id> = r.try_get("department")?;
            let site: Option<Id> = r.try_get("site")?;
            let lead_site: Option<Id> = r.try_get("lead_site")?;
            if !draft.department_code.trim().is_empty() && department.is_none() {
                problems.push(FieldError::new(
                    "department_code",
                    "not_found",
                    "该机构没有此科室",
                    "the unit has no such department",
                ));
            }
            if draft.practitioner_id.is_some() && site.is_none() {
                problems.push(FieldError::new(
                    "practitioner_id",
                    "not_at_unit",
                    "该医师不在此机构执业",
                    "the practitioner does not practise at this unit",
                ));
            } else if draft.expert_visit && draft.practitioner_id.is_some() && lead_site.is_none() {
                problems.push(FieldError::new(
                    "practitioner_id",
                    "not_lead_expert",
                    "专家下沉出诊的医师须在本集团牵头医院执业",
                    "an expert visit needs a practitioner of the group's lead hospital",
                ));
            }
            if !problems.is_empty() {
                tx.rollback().await?;
                return Err(StoreError::Invalid(Invalid(problems)));
            }
            let id: Id = sqlx::query_scalar(
                "INSERT INTO care_schedule (group_id, unit_id, department_code, practitioner_id, \
                 weekday, start_time, slot_minutes, capacity, reserved, expert_visit, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            )
            .bind(group_id)
            .bind(unit.id)
            .bind(draft.department_code.trim())
            .bind(draft.practitioner_id)
            .bind(i64::from(draft.weekday))
            .bind(draft.start_time.format(TIME_FORMAT).to_string())
            .bind(i64::from(draft.slot_minutes))
            .bind(i64::from(draft.capacity))
            .bind(i64::from(draft.reserved))
            .bind(draft.expert_visit)
            .bind(crate::now())
            .fetch_one(&mut *tx)
            .await?;
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "schedule.create",
                    resource_type: "Schedule",
                    resource_id: Some(format!("schedule-{id}")),
                    target: Some(unit.path()),
                    outcome: Outcome::Ok,
                    detail: Some(format!(
                        "{} weekday {} {} capacity {} reserved {}{}",
                        draft.department_code.trim(),
                        draft.weekday,
                        draft.start_time.format("%H:%M"),
                        draft.capacity,
                        draft.reserved,
                        if draft.expert_visit {
                            " expert visit"
                        } else {
                            ""
                        }
                    )),
                }
            )?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// The timetable of a unit, by weekday and time.
    pub async fn schedules(&self, unit_id: Id) -> Result<Vec<Schedule>, StoreError> {
        read!(self, |p| {
            let rows = sqlx::query(&format!(
                "SELECT {SCHEDULE_COLUMNS} FROM care_schedule WHERE unit_id = $1 \
                 ORDER BY weekday, start_time, id"
            ))
            .bind(unit_id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(schedule_from_row!(r));
            }
            Ok(out)
        })
    }

    /// The sessions opened from one timetable entry, in time order.
    pub async fn scheduled_sessions(
        &self,
        schedule_id: Id,
    ) -> Result<Vec<ScheduledSession>, StoreError> {
        read!(self, |p| {
            let rows = sqlx::query(
                "SELECT id, schedule_id, starts_at, CAST(capacity AS BIGINT) AS capacity, \
                 CAST(reserved AS BIGINT) AS reserved FROM care_session \
                 WHERE schedule_id = $1 ORDER BY starts_at, id",
            )
            .bind(schedule_id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(ScheduledSession {
                    session_id: r.try_get("id")?,
                    schedule_id: r.try_get("schedule_id")?,
                    starts_at: r.try_get("starts_at")?,
                    capacity: small(r.try_get::<i64, _>("capacity")?, "capacity")?,
                    reserved: small(r.try_get::<i64, _>("reserved")?, "reserved")?,
                });
            }
            Ok(out)
        })
    }

    /// Opens, for every timetable entry, the sessions of every day in `from..=until` that
    /// falls on its weekday and is not open yet, with their slots. Safe to repeat and to run
    /// from several processes at once: each session is opened once. Returns how many were
    /// opened by this call.
    ///
    /// A lead hospital's session keeps at least what `policy` asks today even if its
    /// timetable was written under a smaller share.
    pub async fn open_scheduled_sessions(
        &self,
        actor: &Actor,
        from: NaiveDate,
        until: NaiveDate,
        policy: &Policy,
    ) -> Result<u64, StoreError> {
        self.open_sessions(actor, None, from, until, policy).await
    }

    /// The same for one timetable entry only: what a manager who just wrote it opens, so that
    /// the audit log names them for their own unit's sessions and nobody else's.
    pub async fn open_schedule(
        &self,
        actor: &Actor,
        schedule_id: Id,
        from: NaiveDate,
        until: NaiveDate,
        policy: &Policy,
    ) -> Result<u64, StoreError> {
        self.open_sessions(actor, Some(schedule_id), from, until, policy)
            .await
    }

    async fn open_sessions(
        &self,
        actor: &Actor,
        only: Option<Id>,
        from: NaiveDate,
        until: NaiveDate,
        policy: &Policy,
    ) -> Result<u64, StoreError> {
        if until < from || (until - from).num_days() >= MAX_OPEN_DAYS {
            return Err(Invalid::one(FieldError::new(
                "until",
                "out_of_range",
                format!("结束日期须不早于开始日期，且一次最多 {MAX_OPEN_DAYS} 天"),
                format!("must not be before the start, and at most {MAX_OPEN_DAYS} days on"),
            ))
            .into());
        }
        let entries = read!(self, |p| {
            let rows = sqlx::query(&format!(
                "SELECT {SCHEDULE_COLUMNS}, (SELECT u.role FROM unit u WHERE u.id = unit_id) AS role, \
                 (SELECT u.city_id FROM unit u WHERE u.id = unit_id) AS city_id, \
                 (SELECT u.grid_id FROM unit u WHERE u.id = unit_id) AS grid_id \
                 FROM care_schedule WHERE ($1 IS NULL OR id = $1) ORDER BY id"
            ))
            .bind(only)
            .fetch_all(p)
            .await?;
            let mut entries = Vec::with_capacity(rows.len());
            for r in rows {
                let schedule = schedule_from_row!(r);
                let role: String = r.try_get("role")?;
                let target = OrgPath {
                    city: r.try_get("city_id")?,
                    grid: r.try_get("grid_id")?,
                    group: Some(schedule.group_id),
                    unit: Some(schedule.unit_id),
                };
                entries.push((schedule, role, target));
            }
            entries
        });
        let mut opened = 0u64;
        for (schedule, role, target) in entries {
            let reserved = if role == MemberRole::Lead.as_str() {
                schedule
                    .reserved
                    .max(policy.reserved_needed(schedule.capacity))
                    .min(schedule.capacity)
            } else {
                schedule.reserved
            };
            let starts: Vec<NaiveDateTime> = from
                .iter_days()
                .take_while(|d| *d <= until)
                .filter(|d| d.weekday().number_from_monday() == schedule.weekday)
                .map(|d| d.and_time(schedule.start_time))
                .collect();
            if starts.is_empty() {
                continue;
            }
            let positions = Policy::reserved_positions(schedule.capacity, reserved);
            // One transaction per timetable entry, its days in order: simultaneous runs meet
            // the same rows in the same order, so they wait for each other rather than
            // deadlock.
            let n = write!(self, |p| {
                let mut tx = p.begin().await?;
                let mut n = 0u64;
                for starts_at in &starts {
                    let session: Option<Id> = sqlx::query_scalar(
                        "INSERT INTO care_session (group_id, unit_id, department_code, \
                         practitioner_id, starts_at, slot_minutes, capacity, reserved, created_at, \
                         schedule_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                         ON CONFLICT (schedule_id, starts_at) WHERE schedule_id IS NOT NULL \
                         DO NOTHING RETURNING id",
                    )
                    .bind(schedule.group_id)
                    .bind(schedule.unit_id)
                    .bind(&schedule.department_code)
                    .bind(schedule.practitioner_id)
                    .bind(*starts_at)
                    .bind(i64::from(schedule.slot_minutes))
                    .bind(i64::from(schedule.capacity))
                    .bind(i64::from(reserved))
                    .bind(crate::now())
                    .bind(schedule.id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(session_id) = session else {
                        continue;
                    };
                    n += 1;
                    for (i, flag) in positions.iter().enumerate() {
                        let at = *starts_at
                            + chrono::Duration::minutes(
                                i64::from(schedule.slot_minutes) * i as i64,
                            );
                        sqlx::query(
                            "INSERT INTO slot (group_id, session_id, starts_at, reserved, status) \
                             VALUES ($1, $2, $3, $4, 'free')",
                        )
                        .bind(schedule.group_id)
                        .bind(session_id)
                        .bind(at)
                        .bind(*flag)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                if n > 0 {
                    audit_insert!(
                        &mut *tx,
                        &AuditEntry {
                            actor,
                            action: "schedule.open",
                            resource_type: "Schedule",
                            resource_id: Some(format!("schedule-{}", schedule.id)),
                            target: Some(target),
                            outcome: Outcome::Ok,
                            detail: Some(format!(
                                "{n} sessions {from}..{until} capacity {} reserved {reserved}",
                                schedule.capacity
                            )),
                        }
                    )?;
                }
                tx.commit().await?;
                Ok::<u64, StoreError>(n)
            })?;
            opened += n;
        }
        Ok(opened)
    }

    /// Changes how many slots of a timetable's future sessions are reserved for referrals;
    /// sessions already open keep theirs (see [`Store::change_reservation`]). A change that
    /// breaks the policy is refused with the reason and changes nothing.
    pub async fn change_schedule_reservation(
        &self,
        actor: &Actor,
        unit: &Unit,
        schedule_id: Id,
        reserved: u32,
        policy: &Policy,
    ) -> Result<Schedule, StoreError> {
        write!(self, |p| {
            let mut tx = p.begin().await?;
            let r = sqlx::query(&format!(
                "SELECT {SCHEDULE_COLUMNS} FROM care_schedule WHERE id = $1 AND unit_id = $2"
            ))
            .bind(schedule_id)
            .bind(unit.id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
            let mut schedule = schedule_from_row!(r);
            if let Err(e) =
                policy.check_session(schedule.capacity, reserved, unit.role == MemberRole::Lead)
            {
                tx.rollback().await?;
                return Err(StoreError::Invalid(Invalid::one(e)));
            }
            sqlx::query("UPDATE care_schedule SET reserved = $2 WHERE id = $1")
                .bind(schedule_id)
                .bind(i64::from(reserved))
                .execute(&mut *tx)
                .await?;
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "schedule.reservation",
                    resource_type: "Schedule",
                    resource_id: Some(format!("schedule-{schedule_id}")),
                    target: Some(unit.path()),
                    outcome: Outcome::Ok,
                    detail: Some(format!(
                        "reserved {} -> {reserved} of {}",
                        schedule.reserved, schedule.capacity
                    )),
                }
            )?;
            tx.commit().await?;
            schedule.reserved = reserved;
            Ok(schedule)
        })
    }

    /// The daily reservation compliance report (R5.1): per unit, department and day in
    /// `from..=until`, the capacity kept for referrals against what the policy asks, and who
    /// booked it. Narrowed to a group and/or a unit when given.
    pub async fn reservation_compliance(
        &self,
        group_id: Option<Id>,
        unit_id: Option<Id>,
        from: NaiveDate,
        until: NaiveDate,
        policy: &Policy,
    ) -> Result<Vec<ComplianceRow>, StoreError> {
        let Some(end) = until.succ_opt() else {
            return Ok(Vec::new());
        };
        let days = read!(self, |p| {
            let rows = sqlx::query(
                "SELECT c.id, c.unit_id, u.legal_name, u.role, c.department_code, \
                 SUBSTR(CAST(c.starts_at AS TEXT), 1, 10) AS day, \
                 CAST(c.capacity AS BIGINT) AS capacity, CAST(c.reserved AS BIGINT) AS reserved, \
                 CAST(COALESCE(SUM(CASE WHEN s.reserved AND b.kind = 'referral' THEN 1 ELSE 0 END), 0) AS BIGINT) AS reserved_referral, \
                 CAST(COALESCE(SUM(CASE WHEN s.reserved AND b.kind = 'general' THEN 1 ELSE 0 END), 0) AS BIGINT) AS reserved_general, \
                 CAST(COALESCE(SUM(CASE WHEN b.kind = 'referral' THEN 1 ELSE 0 END), 0) AS BIGINT) AS referral_bookings, \
                 CAST(COALESCE(SUM(CASE WHEN b.kind = 'general' THEN 1 ELSE 0 END), 0) AS BIGINT) AS general_bookings \
                 FROM care_session c JOIN unit u ON u.id = c.unit_id \
                 LEFT JOIN slot s ON s.session_id = c.id \
                 LEFT JOIN booking b ON b.slot_id = s.id AND b.status = 'booked' \
                 WHERE ($1 IS NULL OR c.group_id = $1) AND ($2 IS NULL OR c.unit_id = $2) \
                 AND c.starts_at >= $3 AND c.starts_at < $4 \
                 GROUP BY c.id, c.unit_id, u.legal_name, u.role, c.department_code, c.starts_at, \
                 c.capacity, c.reserved",
            )
            .bind(group_id)
            .bind(unit_id)
            .bind(from.and_time(NaiveTime::MIN))
            .bind(end.and_time(NaiveTime::MIN))
            .fetch_all(p)
            .await?;
            let mut days: BTreeMap<(NaiveDate, Id, String), ComplianceRow> = BTreeMap::new();
            for r in rows {
                let day: String = r.try_get("day")?;
                let day = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                    .map_err(|_| StoreError::Corrupt(format!("starts_at: '{day}'")))?;
                let unit_id: Id = r.try_get("unit_id")?;
                let department: String = r.try_get("department_code")?;
                let role: String = r.try_get("role")?;
                let capacity = small(r.try_get::<i64, _>("capacity")?, "capacity")?;
                let lead = role == MemberRole::Lead.as_str();
                let row = days
                    .entry((day, unit_id, department.clone()))
                    .or_insert(ComplianceRow {
                        unit_id,
                        unit_name: r.try_get("legal_name")?,
                        unit_role: role,
                        department_code: department,
                        day,
                        sessions: 0,
                        capacity: 0,
                        reserved: 0,
                        required: 0,
                        compliant: true,
                        reserved_booked_by_referral: 0,
                        reserved_taken_by_general: 0,
                        referral_bookings: 0,
                        general_bookings: 0,
                    });
                row.sessions += 1;
                row.capacity += i64::from(capacity);
                row.reserved += r.try_get::<i64, _>("reserved")?;
                row.required += i64::from(policy.reserved_needed(capacity));
                row.reserved_booked_by_referral += r.try_get::<i64, _>("reserved_referral")?;
                row.reserved_taken_by_general += r.try_get::<i64, _>("reserved_general")?;
                row.referral_bookings += r.try_get::<i64, _>("referral_bookings")?;
                row.general_bookings += r.try_get::<i64, _>("general_bookings")?;
                row.compliant = !lead || row.reserved >= row.required;
            }
            days
        });
        Ok(days.into_values().collect())
    }
}
