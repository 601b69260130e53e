//! Live referrals (R4): written by a clinician, moved only through the domain's state machine,
//! each move one conditional UPDATE with its event, notifications and audit entry in the same
//! transaction. A move made by someone who saw an older state loses cleanly (conflict) instead
//! of overwriting the newer one.

use chrono::{Duration, NaiveDateTime};
use serde::Serialize;
use sqlx::Row;

use medgrid_domain::access::{Id, OrgPath, Principal};
use medgrid_domain::codes::Icd10;
use medgrid_domain::error::text;
use medgrid_domain::referral::{
    in_catalogue, next_of, parties, Direction, Ends, Kind, Party, Priority, Status, Timers,
    Transition,
};
use medgrid_domain::{FieldError, Invalid};

use crate::audit::{audit_insert, AuditEntry};
use crate::{read, write, Actor, Outcome, Store, StoreError};

/// What a clinician writes to refer a patient or ask for advice.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReferralDraft {
    pub kind: Option<Kind>,
    pub resident_id: Id,
    pub direction: Option<Direction>,
    pub priority: Option<Priority>,
    pub from_unit_id: Id,
    pub from_practitioner_id: Option<Id>,
    /// `None`: any unit of the group with capacity; the coordinator routes it.
    pub to_unit_id: Option<Id>,
    pub to_department_code: Option<String>,
    pub diagnosis: String,
    pub reason: String,
    pub summary: String,
    pub care_plan: String,
    pub outside_catalogue_reason: String,
    /// The patient chose a hospital in another grid (R4.4).
    pub patient_choice: bool,
    /// The stay continues one already begun, so the deductible is paid once (R9.3).
    pub continuous_deductible: bool,
    pub advice_id: Option<Id>,
    pub up_referral_id: Option<Id>,
    /// Send at once rather than keep a draft.
    pub send: bool,
    /// The same key on a repeated request returns the referral the first one wrote.
    pub idempotency_key: Option<String>,
}

/// A referral as its parties see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Referral {
    pub id: Id,
    pub kind: Kind,
    pub status: Status,
    pub direction: Direction,
    pub priority: Priority,
    pub group_id: Id,
    pub resident_id: Id,
    pub resident_name: String,
    pub from_unit_id: Id,
    pub from_unit_name: String,
    pub from_practitioner_id: Option<Id>,
    pub to_unit_id: Option<Id>,
    pub to_unit_name: Option<String>,
    pub to_department_code: Option<String>,
    pub diagnosis: String,
    pub reason: Option<String>,
    pub summary: Option<String>,
    pub care_plan: Option<String>,
    pub outcome_summary: Option<String>,
    pub outside_catalogue_reason: Option<String>,
    pub patient_choice: bool,
    pub continuous_deductible: bool,
    pub coordinator_id: Option<Id>,
    pub coordinator_name: Option<String>,
    pub created_by: Option<Id>,
    pub decline_reason: Option<String>,
    pub declined_by_practitioner_id: Option<Id>,
    pub suggested_unit_id: Option<Id>,
    pub advice_id: Option<Id>,
    pub up_referral_id: Option<Id>,
    pub requested_at: NaiveDateTime,
    pub updated_at: Option<NaiveDateTime>,
    pub escalated_at: Option<NaiveDateTime>,
    pub escalation: Option<String>,
    /// Generated history rather than a live referral.
    pub generated: bool,
    #[serde(skip)]
    pub ends: EndsRow,
}

/// What a move's event and notices need of a referral: whom they go to and what they say.
/// A booking reads just this before it takes its slot, rather than the whole referral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Heard {
    pub id: Id,
    pub group_id: Id,
    pub kind: Kind,
    pub direction: Direction,
    pub resident_name: String,
    pub diagnosis: String,
    pub created_by: Option<Id>,
    pub from_unit_id: Id,
    pub to_unit_id: Option<Id>,
    pub coordinator_id: Option<Id>,
}

impl Referral {
    pub(crate) fn heard(&self) -> Heard {
        let f = self;
        Heard {
            id: f.id,
            group_id: f.group_id,
            kind: f.kind,
            direction: f.direction,
            resident_name: f.resident_name.clone(),
            diagnosis: f.diagnosis.clone(),
            created_by: f.created_by,
            from_unit_id: f.from_unit_id,
            to_unit_id: f.to_unit_id,
            coordinator_id: f.coordinator_id,
        }
    }
}

/// The organisation paths of a referral's ends, for the access gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EndsRow {
    pub city: Id,
    pub from_grid: Option<Id>,
    pub to_grid: Option<Id>,
    pub to_group: Option<Id>,
}

impl Referral {
    pub fn from_path(&self) -> OrgPath {
        OrgPath {
            city: self.ends.city,
            grid: self.ends.from_grid,
            group: Some(self.group_id),
            unit: Some(self.from_unit_id),
        }
    }

    pub fn to_path(&self) -> Option<OrgPath> {
        self.to_unit_id.map(|u| OrgPath {
            city: self.ends.city,
            grid: self.ends.to_grid,
            group: self.ends.to_group,
            unit: Some(u),
        })
    }

    pub fn group_path(&self) -> OrgPath {
        OrgPath {
            city: self.ends.city,
            grid: self.ends.from_grid,
            group: Some(self.group_id),
            unit: None,
        }
    }

    pub fn ends(&self) -> Ends {
        Ends {
            from: self.from_path(),
            to: self.to_path(),
            group: self.group_path(),
        }
    }

    /// The sides `p` acts for on this referral.
    pub fn parties_of(&self, p: &Principal) -> Vec<Party> {
        parties(p, &self.ends())
    }

    /// Whether `p` may see this referral at all: either end, or its group's coordinator.
    pub fn visible_to(&self, p: &Principal) -> bool {
        !self.parties_of(p).is_empty()
    }
}

/// One step in a referral's life, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferralEvent {
    pub at: NaiveDateTime,
    pub transition: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub party: String,
    pub user_name: Option<String>,
    pub note: Option<String>,
}

/// A move someone makes; each carries what that move must say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Move {
    Send,
    Redirect {
        to_unit_id: Id,
        to_department_code: Option<String>,
        note: String,
    },
    Accept {
        note: String,
    },
    /// A refusal names its reason, the clinician who refused, and where to go instead.
    Decline {
        reason: String,
        practitioner_id: Option<Id>,
        suggested_unit_id: Option<Id>,
    },
    Arrive,
    /// The receiving side's summary returns to the referrer (R4.5).
    Complete {
        outcome_summary: String,
    },
    Cancel {
        reason: String,
    },
}

impl Move {
    pub fn transition(&self) -> Transition {
        match self {
            Move::Send => Transition::Send,
            Move::Redirect { .. } => Transition::Redirect,
            Move::Accept { .. } => Transition::Accept,
            Move::Decline { .. } => Transition::Decline,
            Move::Arrive => Transition::Arrive,
            Move::Complete { .. } => Transition::Complete,
            Move::Cancel { .. } => Transition::Cancel,
        }
    }
}

/// Which referrals to list. Unset fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct ReferralFilter {
    pub group_id: Option<Id>,
    pub from_unit_id: Option<Id>,
    pub to_unit_id: Option<Id>,
    /// Either end is this unit.
    pub unit_id: Option<Id>,
    pub resident_id: Option<Id>,
    pub coordinator_id: Option<Id>,
    pub status: Option<Status>,
    /// Only referrals still open (not closed).
    pub open_only: bool,
    pub escalated_only: bool,
    /// Leave out the generated history.
    pub live_only: bool,
    pub limit: i64,
}

/// A notification for one person or for everyone on one side of a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub id: Id,
    pub referral_id: Option<Id>,
    pub user_id: Option<Id>,
    pub unit_id: Option<Id>,
    pub audience: String,
    pub text_zh: String,
    pub text_en: String,
    pub created_at: NaiveDateTime,
    pub read_at: Option<NaiveDateTime>,
    pub channel: String,
    pub delivery: String,
}

/// What the escalation job did in one pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Escalated {
    pub not_accepted: u64,
    pub not_booked: u64,
    pub queue_overdue: u64,
    pub expired: u64,
    pub holds_released: u64,
}

pub(crate) const REFERRAL_SELECT: &str = "SELECT f.id, f.kind, f.status, f.direction, f.priority, f.group_id, \
     f.resident_id, r.name AS resident_name, f.from_unit_id, fu.legal_name AS from_unit_name, \
     f.from_practitioner_id, f.to_unit_id, tu.legal_name AS to_unit_name, f.to_department_code, \
     f.diagnosis, f.reason, f.summary, f.care_plan, f.outcome_summary, \
     f.outside_catalogue_reason, f.patient_choice, f.continuous_deductible, f.coordinator_id, \
     c.display_name AS coordinator_name, f.created_by, f.decline_reason, \
     f.declined_by_practitioner_id, f.suggested_unit_id, f.advice_id, f.up_referral_id, \
     f.requested_at, f.updated_at, f.escalated_at, f.escalation, \
     CASE WHEN f.source_encounter_id IS NULL THEN 0 ELSE 1 END AS generated, \
     fu.city_id AS city_id, fu.grid_id AS from_grid, tu.grid_id AS to_grid, tu.group_id AS to_group \
     FROM referral f JOIN resident r ON r.id = f.resident_id \
     JOIN unit fu ON fu.id = f.from_unit_id LEFT JOIN unit tu ON tu.id = f.to_unit_id \
     LEFT JOIN app_user c ON c.id = f.coordinator_id";

pub(crate) fn corrupt(field: &str) -> impl Fn(FieldError) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("referral.{field}: {}", e.message_en))
}

macro_rules! referral_from_row {
    ($r:expr) => {{
        let r = &$r;
        let generated: i64 = r
            .try_get::<i32, _>("generated")
            .map(i64::from)
            .or_else(|_| r.try_get::<i64, _>("generated"))?;
        $crate::referral::Referral {
            id: r.try_get("id")?,
            kind: medgrid_domain::referral::Kind::parse(&r.try_get::<String, _>("kind")?)
                .map_err($crate::referral::corrupt("kind"))?,
            status: medgrid_domain::referral::Status::parse(&r.try_get::<String, _>("status")?)
                .map_err($crate::referral::corrupt("status"))?,
            direction: medgrid_domain::referral::Direction::parse(
                &r.try_get::<String, _>("direction")?,
            )
            .map_err($crate::referral::corrupt("direction"))?,
            priority: medgrid_domain::referral::Priority::parse(
                &r.try_get::<String, _>("priority")?,
            )
            .map_err($crate::referral::corrupt("priority"))?,
            group_id: r.try_get("group_id")?,
            resident_id: r.try_get("resident_id")?,
            resident_name: r.try_get("resident_name")?,
            from_unit_id: r.try_get("from_unit_id")?,
            from_unit_name: r.try_get("from_unit_name")?,
            from_practitioner_id: r.try_get("from_practitioner_id")?,
            to_unit_id: r.try_get("to_unit_id")?,
            to_unit_name: r.try_get("to_unit_name")?,
            to_department_code: r.try_get("to_department_code")?,
            diagnosis: r.try_get("diagnosis")?,
            reason: r.try_get("reason")?,
            summary: r.try_get("summary")?,
            care_plan: r.try_get("care_plan")?,
            outcome_summary: r.try_get("outcome_summary")?,
            outside_catalogue_reason: r.try_get("outside_catalogue_reason")?,
            patient_choice: r.try_get("patient_choice")?,
            continuous_deductible: r.try_get("continuous_deductible")?,
            coordinator_id: r.try_get("coordinator_id")?,
            coordinator_name: r.try_get("coordinator_name")?,
            created_by: r.try_get("created_by")?,
            decline_reason: r.try_get("decline_reason")?,
            declined_by_practitioner_id: r.try_get("declined_by_practitioner_id")?,
            suggested_unit_id: r.try_get("suggested_unit_id")?,
            advice_id: r.try_get("advice_id")?,
            up_referral_id: r.try_get("up_referral_id")?,
            requested_at: r.try_get("requested_at")?,
            updated_at: r.try_get("updated_at")?,
            escalated_at: r.try_get("escalated_at")?,
            escalation: r.try_get("escalation")?,
            generated: generated != 0,
            ends: $crate::referral::EndsRow {
                city: r.try_get("city_id")?,
                from_grid: r.try_get("from_grid")?,
                to_grid: r.try_get("to_grid")?,
                to_group: r.try_get("to_group")?,
            },
        }
    }};
}
pub(crate) use referral_from_row;

/// Records one event of a referral and tells its other parties, in the caller's transaction.
/// A referral read inside a transaction that is about to record one of its events.
macro_rules! referral_in_tx {
    ($tx:expr, $id:expr) => {{
        let r = sqlx::query(&format!(
            "{} WHERE f.id = $1",
            $crate::referral::REFERRAL_SELECT
        ))
        .bind($id)
        .fetch_one(&mut *$tx)
        .await?;
        $crate::referral::referral_from_row!(r)
    }};
}
pub(crate) use referral_in_tx;

/// Sends a booked referral back to "accepted" once its last live booking (slot or bed) is
/// cancelled, with its `unbook` event; a referral still holding another booking stays booked.
/// Call after the booking's own row is cancelled, inside the same transaction.
macro_rules! unbook_referral {
    ($tx:expr, $referral_id:expr, $reference:expr, $actor:expr, $now:expr) => {{
        let referral_id: medgrid_domain::access::Id = $referral_id;
        let now: chrono::NaiveDateTime = $now;
        let moved = sqlx::query(
            "UPDATE referral SET status = 'accepted', updated_at = $2 \
             WHERE id = $1 AND status = 'booked' \
             AND NOT EXISTS (SELECT 1 FROM booking k WHERE k.referral_id = $1 AND k.status = 'booked') \
             AND NOT EXISTS (SELECT 1 FROM bed_booking k WHERE k.referral_id = $1 AND k.status = 'booked')",
        )
        .bind(referral_id)
        .bind(now)
        .execute(&mut *$tx)
        .await?;
        if moved.rows_affected() == 1 {
            let f = $crate::referral::referral_in_tx!($tx, referral_id);
            $crate::referral::record_event!(
                $tx,
                &f.heard(),
                "unbook",
                Some("booked"),
                "accepted",
                "sender",
                $actor,
                Some($reference),
                now
            );
        }
    }};
}
pub(crate) use unbook_referral;

/// Writes a move's event and its notices. PostgreSQL's one-statement booking
/// (`booking/commit.rs`) writes the same rows for its "book" move.
macro_rules! record_event {
    ($tx:expr, $ref:expr, $transition:expr, $from:expr, $to:expr, $party:expr, $actor:expr, $note:expr, $at:expr) => {{
        let f: &$crate::referral::Heard = $ref;
        let transition: &str = $transition;
        let from: Option<&str> = $from;
        let to: &str = $to;
        let party: &str = $party;
        let actor: &$crate::Actor = $actor;
        let note: Option<&str> = $note;
        let at: chrono::NaiveDateTime = $at;
        sqlx::query(
            "INSERT INTO referral_event (group_id, referral_id, at, transition, from_status, \
             to_status, party, user_id, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(f.group_id)
        .bind(f.id)
        .bind(at)
        .bind(transition)
        .bind(from)
        .bind(to)
        .bind(party)
        .bind(actor.user_id)
        .bind(note)
        .execute(&mut *$tx)
        .await?;
        let (zh, en) = $crate::referral::notice_text(f, transition, to);
        let heard = $crate::referral::recipients(f, actor.user_id, party);
        // One statement for every recipient: the move holds its locks one round trip less
        // for each.
        if !heard.is_empty() {
            let rows: Vec<String> = (0..heard.len())
                .map(|i| {
                    let b = i * 8;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, 'in_app', 'pending')",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6,
                        b + 7,
                        b + 8
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO notification (group_id, referral_id, user_id, unit_id, audience, \
                 text_zh, text_en, created_at, channel, delivery) VALUES {}",
                rows.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for (user, unit, audience) in heard {
                q = q
                    .bind(f.group_id)
                    .bind(f.id)
                    .bind(user)
                    .bind(unit)
                    .bind(audience)
                    .bind(zh.clone())
                    .bind(en.clone())
                    .bind(at);
            }
            q.execute(&mut *$tx).await?;
        }
    }};
}
pub(crate) use record_event;

/// Who hears of a move: the referrer, the receiving unit and the coordinator, except the one
/// who made it.
pub(crate) fn recipients(
    f: &Heard,
    acting_user: Option<Id>,
    acting_party: &str,
) -> Vec<(Option<Id>, Option<Id>, &'static str)> {
    let mut out = Vec::new();
    match f.created_by {
        Some(u) if Some(u) != acting_user => out.push((Some(u), None, "sender")),
        Some(_) => {}
        None if acting_party != "sender" => out.push((None, Some(f.from_unit_id), "sender")),
        None => {}
    }
    if let Some(to) = f.to_unit_id {
        if acting_party != "receiver" {
            out.push((None, Some(to), "receiver"));
        }
    }
    if let Some(c) = f.coordinator_id {
        if Some(c) != acting_user {
            out.push((Some(c), None, "coordinator"));
        }
    }
    out
}

pub(crate) fn notice_text(f: &Heard, transition: &str, to: &str) -> (String, String) {
    let label = Transition::parse(transition)
        .map(|t| t.label_zh())
        .unwrap_or(match transition {
            "escalate" => "超时督办",
            "create" => "创建",
            "offer" => "候补号源",
            "attach" => "添加附件",
            _ => "更新",
        });
    let status_zh = Status::parse(to).map(|s| s.label_zh()).unwrap_or(to);
    (
        format!(
            "{}{} #{}（{}，{}）：{}，当前状态：{}",
            f.direction.label_zh(),
            f.kind.label_zh(),
            f.id,
            f.resident_name,
            f.diagnosis,
            label,
            status_zh
        ),
        format!(
            "{} {} #{} ({}): {transition}, now {to}",
            f.direction, f.kind, f.id, f.diagnosis
        ),
    )
}

pub(crate) fn party_str(p: Party) -> &'static str {
    match p {
        Party::Sender => "sender",
        Party::Receiver => "receiver",
        Party::Coordinator => "coordinator",
        Party::System => "system",
    }
}

fn long_text(field: &str, raw: &str, max: usize) -> Result<Option<String>, FieldError> {
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if t.chars().count() > max {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("不能超过 {max} 个字符"),
            format!("must be at most {max} characters"),
        ));
    }
    Ok(Some(t.to_owned()))
}

fn changed_meanwhile() -> StoreError {
    StoreError::Conflict(FieldError::new(
        "status",
        "changed",
        "转诊状态已被他人更新，请刷新后重试",
        "the referral changed meanwhile; reload and try again",
    ))
}

impl Store {
    /// Writes a referral (or advice request) as a draft, or sends it at once. Everything wrong
    /// with it is reported together and nothing is written. A diagnosis outside the group's
    /// catalogue is not refused: it asks for a reason (R4.1).
    pub async fn create_referral(
        &self,
        actor: &Actor,
        draft: &ReferralDraft,
        now: NaiveDateTime,
    ) -> Result<Referral, StoreError> {
        let mut inv = Invalid::default();
        let kind = draft.kind.unwrap_or(Kind::Referral);
        let direction = draft.direction.unwrap_or(Direction::Up);
        let priority = draft.priority.unwrap_or(Priority::Routine);
        let diagnosis = inv.check(Icd10::parse("diagnosis", &draft.diagnosis));
        let reason = inv
            .check(text("reason", &draft.reason, 500))
            .unwrap_or_default();
        let summary = inv
            .check(long_text("summary", &draft.summary, 10_000))
            .flatten();
        let care_plan = inv
            .check(long_text("care_plan", &draft.care_plan, 10_000))
            .flatten();
        let outside = inv
            .check(long_text(
                "outside_catalogue_reason",
                &draft.outside_catalogue_reason,
                500,
            ))
            .flatten();
        if kind == Kind::Referral && direction == Direction::Down && care_plan.is_none() {
            inv.push(FieldError::new(
                "care_plan",
                "required",
                "下转须附康复/随访方案，交家庭医生执行",
                "a down-referral needs a care plan for the family doctor",
            ));
        }
        if draft.to_unit_id.is_none() && direction == Direction::Down {
            inv.push(FieldError::new(
                "to_unit_id",
                "required",
                "下转须指定接收的基层机构",
                "a down-referral names the primary unit that receives it",
            ));
        }
        if draft.to_unit_id == Some(draft.from_unit_id) {
            inv.push(FieldError::new(
                "to_unit_id",
                "same_unit",
                "不能转诊到本机构",
                "cannot refer to the referring unit itself",
            ));
        }
        let department = draft
            .to_department_code
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned);
        let key = match draft.idempotency_key.as_deref().map(str::trim) {
            Some(k) if k.is_empty() || k.chars().count() > 100 => {
                inv.push(FieldError::new(
                    "idempotency_key",
                    "invalid",
                    "幂等键须为 1 到 100 个字符",
                    "must be 1 to 100 characters",
                ));
                None
            }
            k => k.map(str::to_owned),
        };
        if let Some(k) = &key {
            if let Some(earlier) = self.referral_by_key(actor, draft, k).await? {
                return Ok(earlier);
            }
        }
        let catalogues = self.catalogues_for_unit(draft.from_unit_id).await?;
        write!(self, |p| {
            let mut tx = p.begin().await?;
            // The parties, the units and the catalogue in one round trip.
            let row = sqlx::query(
                "SELECT fu.group_id AS from_group, fu.city_id AS from_city, \
                 (SELECT r.id FROM resident r WHERE r.id = $1) AS resident, \
                 tu.id AS to_unit, tu.group_id AS to_group, tu.city_id AS to_city, \
                 (SELECT d.id FROM department d WHERE d.unit_id = tu.id AND d.code = $4) AS department, \
                 (SELECT s.id FROM practice_site s WHERE s.unit_id = fu.id AND s.practitioner_id = $5) AS site, \
                 (SELECT a.kind FROM referral a WHERE a.id = $6 AND a.resident_id = $1) AS advice_kind, \
                 (SELECT u.id FROM referral u WHERE u.id = $7 AND u.resident_id = $1) AS up_referral \
                 FROM unit fu LEFT JOIN unit tu ON tu.id = $3 WHERE fu.id = $2",
            )
            .bind(draft.resident_id)
            .bind(draft.from_unit_id)
            .bind(draft.to_unit_id)
            .bind(department.as_deref())
            .bind(draft.from_practitioner_id)
            .bind(draft.advice_id)
            .bind(draft.up_referral_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Err(StoreError::Invalid(Invalid::one(FieldError::new(
                    "from_unit_id",
                    "not_found",
                    "转出机构不存在",
                    "no such referring unit",
                ))));
            };
            let mut inv = inv;
            let from_group: Option<Id> = row.try_get("from_group")?;
            let from_city: Id = row.try_get("from_city")?;
            let to_group: Option<Id> = row.try_get("to_group")?;
            let to_city: Option<Id> = row.try_get("to_city")?;
            if row.try_get::<Option<Id>, _>("resident")?.is_none() {
                inv.push(FieldError::new(
                    "resident_id",
                    "not_found",
                    "居民不存在",
                    "no such resident",
                ));
            }
            if draft.to_unit_id.is_some() && row.try_get::<Option<Id>, _>("to_unit")?.is_none() {
                inv.push(FieldError::new(
                    "to_unit_id",
                    "not_found",
                    "接收机构不存在",
                    "no such receiving unit",
                ));
            }
            if department.is_some()
                && draft.to_unit_id.is_some()
                && row.try_get::<Option<Id>, _>("department")?.is_none()
            {
                inv.push(FieldError::new(
                    "to_department_code",
                    "not_found",
                    "接收机构没有此科室",
                    "the receiving unit has no such department",
                ));
            }
            if draft.from_practitioner_id.is_some()
                && row.try_get::<Option<Id>, _>("site")?.is_none()
            {
                inv.push(FieldError::new(
                    "from_practitioner_id",
                    "not_at_unit",
                    "该医师不在转出机构执业",
                    "the practitioner does not practise at the referring unit",
                ));
            }
            if draft.advice_id.is_some()
                && row.try_get::<Option<String>, _>("advice_kind")?.as_deref() != Some("advice")
            {
                inv.push(FieldError::new(
                    "advice_id",
                    "not_found",
                    "找不到该居民的这条咨询申请",
                    "no such advice request for this resident",
                ));
            }
            if draft.up_referral_id.is_some()
                && row.try_get::<Option<Id>, _>("up_referral")?.is_none()
            {
                inv.push(FieldError::new(
                    "up_referral_id",
                    "not_found",
                    "找不到该居民的这条上转记录",
                    "no such up-referral for this resident",
                ));
            }
            let Some(group_id) = from_group else {
                inv.push(FieldError::new(
                    "from_unit_id",
                    "not_in_group",
                    "转出机构不属于任何医疗集团",
                    "the referring unit belongs to no medical group",
                ));
                return Err(StoreError::Invalid(inv));
            };
            if draft.to_unit_id.is_some() && to_group != Some(group_id) && !draft.patient_choice {
                inv.push(FieldError::new(
                    "patient_choice",
                    "other_group",
                    "接收机构不在本集团；患者自主选择其他网格医院时请勾选“患者自选”",
                    "the receiving unit is outside the group; tick patient choice if the patient chose it",
                ));
            }
            if let Some(code) = &diagnosis {
                if kind == Kind::Referral && outside.is_none() {
                    let (list, zh, en) = match direction {
                        Direction::Up => (&catalogues.up, "上转类别", "up-referral"),
                        Direction::Down => (&catalogues.down, "下转病种", "down-referral"),
                    };
                    if !in_catalogue(list, code) {
                        inv.push(FieldError::new(
                            "outside_catalogue_reason",
                            "outside_catalogue",
                            format!("诊断 {code} 不在本集团{zh}目录中，请填写转诊理由说明"),
                            format!("{code} is not in the group's {en} catalogue; give a reason"),
                        ));
                    } else if to_city.is_some_and(|c| c != from_city)
                        && in_catalogue(&catalogues.keep_in_city, code)
                    {
                        inv.push(FieldError::new(
                            "outside_catalogue_reason",
                            "keep_in_city",
                            format!("诊断 {code} 属于不得转出市外病种，请说明理由"),
                            format!("{code} is on the keep-in-city list; give a reason to refer out of the city"),
                        ));
                    }
                }
            }
            if !inv.is_empty() {
                return Err(StoreError::Invalid(inv));
            }
            let diagnosis = diagnosis.map(|d| d.to_string()).unwrap_or_default();
            // The group's coordinator with the fewest open referrals follows this one.
            let coordinator: Option<Id> = sqlx::query_scalar(
                "SELECT u.id FROM app_user u WHERE u.role = 'referral_coordinator' \
                 AND u.group_id = $1 AND u.unit_id IS NULL AND NOT u.disabled \
                 ORDER BY (SELECT COUNT(*) FROM referral f WHERE f.coordinator_id = u.id \
                 AND f.status IN ('draft', 'sent', 'redirected', 'accepted', 'booked', 'arrived')), u.id LIMIT 1",
            )
            .bind(group_id)
            .fetch_optional(&mut *tx)
            .await?;
            let status = if draft.send {
                Status::Sent
            } else {
                Status::Draft
            };
            let id: Result<Id, sqlx::Error> = sqlx::query_scalar(
                "INSERT INTO referral (resident_id, group_id, direction, priority, from_unit_id, \
                 from_practitioner_id, to_unit_id, to_department_code, diagnosis, requested_at, \
                 status, kind, reason, summary, care_plan, outside_catalogue_reason, \
                 patient_choice, continuous_deductible, coordinator_id, created_by, advice_id, \
                 up_referral_id, updated_at, idempotency_key) VALUES ($1, $2, $3, $4, $5, $6, \
                 $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, \
                 $10, $23) RETURNING id",
            )
            .bind(draft.resident_id)
            .bind(group_id)
            .bind(direction.as_str())
            .bind(priority.as_str())
            .bind(draft.from_unit_id)
            .bind(draft.from_practitioner_id)
            .bind(draft.to_unit_id)
            .bind(department.as_deref())
            .bind(&diagnosis)
            .bind(now)
            .bind(status.as_str())
            .bind(kind.as_str())
            .bind(&reason)
            .bind(summary.as_deref())
            .bind(care_plan.as_deref())
            .bind(outside.as_deref())
            .bind(draft.patient_choice)
            .bind(draft.continuous_deductible)
            .bind(coordinator)
            .bind(actor.user_id)
            .bind(draft.advice_id)
            .bind(draft.up_referral_id)
            .bind(key.as_deref())
            .fetch_one(&mut *tx)
            .await;
            // A twin request committed first: answer with its referral, keeping nothing.
            let id = match id {
                Err(e)
                    if key.is_some()
                        && e.as_database_error()
                            .is_some_and(|d| d.is_unique_violation()) =>
                {
                    tx.rollback().await?;
                    let k = key.as_deref().unwrap_or_default();
                    return match self.referral_by_key(actor, draft, k).await? {
                        Some(earlier) => Ok(earlier),
                        None => Err(StoreError::NotFound),
                    };
                }
                other => other?,
            };
            let f = sqlx::query(&format!("{REFERRAL_SELECT} WHERE f.id = $1"))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            let f = referral_from_row!(f);
            record_event!(
                tx,
                &f.heard(),
                if draft.send { "send" } else { "create" },
                None,
                status.as_str(),
                "sender",
                actor,
                None,
                now
            );
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "referral.create",
                    resource_type: "ServiceRequest",
                    resource_id: Some(format!("referral-{id}")),
                    target: Some(f.from_path()),
                    outcome: Outcome::Ok,
                    detail: Some(format!(
                        "{} {} {} resident {} to {:?} {}",
                        kind, direction, priority, draft.resident_id, draft.to_unit_id, status
                    )),
                }
            )?;
            tx.commit().await?;
            Ok(f)
        })
    }

    /// The referral an earlier request with this idempotency key wrote in the referring
    /// unit's group; the key names one request, so the same key with another patient or
    /// from another unit is refused. Handing the referral back is a read of patient data,
    /// and is audited as one.
    async fn referral_by_key(
        &self,
        actor: &Actor,
        draft: &ReferralDraft,
        key: &str,
    ) -> Result<Option<Referral>, StoreError> {
        let earlier: Option<Id> = read!(self, |p| {
            sqlx::query_scalar(
                "SELECT f.id FROM referral f JOIN unit u ON u.group_id = f.group_id \
                 WHERE u.id = $1 AND f.idempotency_key = $2",
            )
            .bind(draft.from_unit_id)
            .bind(key)
            .fetch_optional(p)
            .await?
        });
        let Some(id) = earlier else {
            return Ok(None);
        };
        let f = self.referral(id).await?;
        if f.resident_id != draft.resident_id || f.from_unit_id != draft.from_unit_id {
            return Err(StoreError::Conflict(FieldError::new(
                "idempotency_key",
                "reused",
                "该幂等键已用于另一份转诊",
                "the key was already used for another referral",
            )));
        }
        self.audit(&AuditEntry {
            actor,
            action: "referral.create.replayed",
            resource_type: "ServiceRequest",
            resource_id: Some(format!("referral-{id}")),
            target: Some(f.from_path()),
            outcome: Outcome::Ok,
            detail: Some(format!("idempotency key {key}")),
        })
        .await?;
        Ok(Some(f))
    }

    /// One referral, or `NotFound`.
    pub async fn referral(&self, id: Id) -> Result<Referral, StoreError> {
        read!(self, |p| {
            let r = sqlx::query(&format!("{REFERRAL_SELECT} WHERE f.id = $1"))
                .bind(id)
                .fetch_optional(p)
                .await?
                .ok_or(StoreError::NotFound)?;
            Ok(referral_from_row!(r))
        })
    }

    /// Referrals matching `filter`: green channel first, then urgent, then routine; oldest
    /// first within each.
    pub async fn referrals(&self, filter: &ReferralFilter) -> Result<Vec<Referral>, StoreError> {
        let limit = if filter.limit <= 0 {
            200
        } else {
            filter.limit.min(2000)
        };
        read!(self, |p| {
            let rows = sqlx::query(&format!(
                "{REFERRAL_SELECT} WHERE ($1 IS NULL OR f.group_id = $1) \
                 AND ($2 IS NULL OR f.from_unit_id = $2) AND ($3 IS NULL OR f.to_unit_id = $3) \
                 AND ($4 IS NULL OR f.from_unit_id = $4 OR f.to_unit_id = $4) \
                 AND ($5 IS NULL OR f.resident_id = $5) AND ($6 IS NULL OR f.coordinator_id = $6) \
                 AND ($7 IS NULL OR f.status = $7) \
                 AND (NOT $8 OR f.status IN ('draft', 'sent', 'redirected', 'accepted', 'booked', 'arrived')) \
                 AND (NOT $9 OR f.escalated_at IS NOT NULL) \
                 AND (NOT $10 OR f.source_encounter_id IS NULL) \
                 ORDER BY CASE f.priority WHEN 'green' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END, \
                 f.requested_at, f.id LIMIT $11"
            ))
            .bind(filter.group_id)
            .bind(filter.from_unit_id)
            .bind(filter.to_unit_id)
            .bind(filter.unit_id)
            .bind(filter.resident_id)
            .bind(filter.coordinator_id)
            .bind(filter.status.map(|s| s.as_str()))
            .bind(filter.open_only)
            .bind(filter.escalated_only)
            .bind(filter.live_only)
            .bind(limit)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(referral_from_row!(r));
            }
            Ok(out)
        })
    }

    /// A referral's history, oldest first.
    pub async fn referral_events(&self, id: Id) -> Result<Vec<ReferralEvent>, StoreError> {
        read!(self, |p| {
            let rows = sqlx::query(
                "SELECT e.at, e.transition, e.from_status, e.to_status, e.party, \
                 u.display_name AS user_name, e.note FROM referral_event e \
                 LEFT JOIN app_user u ON u.id = e.user_id WHERE e.referral_id = $1 ORDER BY e.at, e.id",
            )
            .bind(id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(ReferralEvent {
                    at: r.try_get("at")?,
                    transition: r.try_get("transition")?,
                    from_status: r.try_get("from_status")?,
                    to_status: r.try_get("to_status")?,
                    party: r.try_get("party")?,
                    user_name: r.try_get("user_name")?,
                    note: r.try_get("note")?,
                });
            }
            Ok(out)
        })
    }

    /// Moves a referral one step for `who`, who must hold a side the move allows. The move is
    /// one conditional UPDATE on the status `who` saw, so of two people acting at once one
    /// wins and the other is told it changed. Side effects happen in the same transaction:
    /// a down-referral accepted by the primary unit leaves a follow-up task on its list, and a
    /// cancelled referral gives back its slot and leaves the queue.
    pub async fn move_referral(
        &self,
        actor: &Actor,
        who: &Principal,
        id: Id,
        mv: &Move,
        now: NaiveDateTime,
    ) -> Result<Referral, StoreError> {
        let f = self.referral(id).await?;
        if f.generated {
            return Err(StoreError::Invalid(Invalid::one(FieldError::new(
                "id",
                "history",
                "历史转诊记录不能再变更",
                "a referral of the generated history cannot change",
            ))));
        }
        let transition = mv.transition();
        let held = f.parties_of(who);
        // The first side `who` holds that may make this move; the refusal names the side needed.
        let mut result = Err(FieldError::new(
            "party",
            "not_a_party",
            "您不是此转诊的任何一方",
            "you are not a party to this referral",
        ));
        for party in &held {
            result = next_of(f.kind, f.status, transition, *party);
            if result.is_ok() {
                break;
            }
        }
        let to = result.map_err(|e| StoreError::Invalid(Invalid::one(e)))?;
        let party = held
            .iter()
            .copied()
            .find(|p| next_of(f.kind, f.status, transition, *p).is_ok())
            .unwrap_or(Party::System);
        self.apply_move(actor, &f, mv, to, party, now).await
    }

    async fn apply_move(
        &self,
        actor: &Actor,
        f: &Referral,
        mv: &Move,
        to: Status,
        party: Party,
        now: NaiveDateTime,
    ) -> Result<Referral, StoreError> {
        let mut inv = Invalid::default();
        let mut note: Option<String> = None;
        let (
            mut to_unit,
            mut to_department,
            mut decline_reason,
            mut declined_by,
            mut suggested,
            mut outcome,
        ) = (None, None, None, None, None, None);
        match mv {
            Move::Send | Move::Arrive => {}
            Move::Redirect {
                to_unit_id,
                to_department_code,
                note: n,
            } => {
                if Some(*to_unit_id) == f.to_unit_id
                    && to_department_code.as_deref().map(str::trim)
                        == f.to_department_code.as_deref()
                {
                    inv.push(FieldError::new(
                        "to_unit_id",
                        "unchanged",
                        "改派须选择另一机构或科室",
                        "redirect to another unit or department",
                    ));
                }
                if *to_unit_id == f.from_unit_id {
                    inv.push(FieldError::new(
                        "to_unit_id",
                        "same_unit",
                        "不能改派回转出机构",
                        "cannot redirect to the referring unit",
                    ));
                }
                to_unit = Some(*to_unit_id);
                to_department = to_department_code
                    .as_deref()
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(str::to_owned);
                note = inv.check(long_text("note", n, 500)).flatten();
            }
            Move::Accept { note: n } => note = inv.check(long_text("note", n, 500)).flatten(),
            Move::Decline {
                reason,
                practitioner_id,
                suggested_unit_id,
            } => {
                decline_reason = inv.check(text("decline_reason", reason, 500));
                if practitioner_id.is_none() {
                    inv.push(FieldError::new(
                        "practitioner_id",
                        "required",
                        "拒绝须署名接诊医师",
                        "a refusal names the clinician who made it",
                    ));
                }
                if suggested_unit_id.is_none() {
                    inv.push(FieldError::new(
                        "suggested_unit_id",
                        "required",
                        "拒绝须给出建议的替代机构",
                        "a refusal suggests where to go instead",
                    ));
                }
                declined_by = *practitioner_id;
                suggested = *suggested_unit_id;
                note = decline_reason.clone();
            }
            Move::Complete { outcome_summary } => {
                if f.kind == Kind::Referral || !outcome_summary.trim().is_empty() {
                    outcome = inv.check(text("outcome_summary", outcome_summary, 10_000));
                } else {
                    inv.push(FieldError::required("outcome_summary"));
                }
            }
            Move::Cancel { reason } => note = inv.check(text("reason", reason, 500)),
        }
        if !inv.is_empty() {
            return Err(StoreError::Invalid(inv));
        }
        let transition = mv.transition();
        write!(self, |p| {
            let mut tx = p.begin().await?;
            // Named people and places must exist where the move puts them.
            let check = sqlx::query(
                "SELECT (SELECT u.group_id FROM unit u WHERE u.id = $1) AS to_group, \
                 (SELECT u.id FROM unit u WHERE u.id = $1) AS to_unit, \
                 (SELECT d.id FROM department d WHERE d.unit_id = $1 AND d.code = $2) AS department, \
                 (SELECT s.id FROM practice_site s WHERE s.unit_id = $3 AND s.practitioner_id = $4) AS site, \
                 (SELECT u.id FROM unit u WHERE u.id = $5) AS suggested",
            )
            .bind(to_unit)
            .bind(to_department.as_deref())
            .bind(f.to_unit_id)
            .bind(declined_by)
            .bind(suggested)
            .fetch_one(&mut *tx)
            .await?;
            let mut wrong = Vec::new();
            if to_unit.is_some() {
                if check.try_get::<Option<Id>, _>("to_unit")?.is_none() {
                    wrong.push(FieldError::new(
                        "to_unit_id",
                        "not_found",
                        "机构不存在",
                        "no such unit",
                    ));
                } else if check.try_get::<Option<Id>, _>("to_group")? != Some(f.group_id)
                    && !f.patient_choice
                {
                    wrong.push(FieldError::new(
                        "to_unit_id",
                        "other_group",
                        "只能改派到本集团的机构",
                        "redirect within the group",
                    ));
                }
                if to_department.is_some()
                    && check.try_get::<Option<Id>, _>("department")?.is_none()
                {
                    wrong.push(FieldError::new(
                        "to_department_code",
                        "not_found",
                        "该机构没有此科室",
                        "the unit has no such department",
                    ));
                }
            }
            if declined_by.is_some() && check.try_get::<Option<Id>, _>("site")?.is_none() {
                wrong.push(FieldError::new(
                    "practitioner_id",
                    "not_at_unit",
                    "该医师不在接收机构执业",
                    "the clinician does not practise at the receiving unit",
                ));
            }
            if suggested.is_some() && check.try_get::<Option<Id>, _>("suggested")?.is_none() {
                wrong.push(FieldError::new(
                    "suggested_unit_id",
                    "not_found",
                    "建议的机构不存在",
                    "no such unit",
                ));
            }
            if !wrong.is_empty() {
                return Err(StoreError::Invalid(Invalid(wrong)));
            }
            let done = sqlx::query(
                "UPDATE referral SET status = $2, updated_at = $3, escalated_at = NULL, escalation = NULL, \
                 to_unit_id = COALESCE($5, to_unit_id), \
                 to_department_code = CASE WHEN $5 IS NULL THEN to_department_code ELSE $6 END, \
                 decline_reason = COALESCE($7, decline_reason), \
                 declined_by_practitioner_id = COALESCE($8, declined_by_practitioner_id), \
                 suggested_unit_id = COALESCE($9, suggested_unit_id), \
                 outcome_summary = COALESCE($10, outcome_summary) \
                 WHERE id = $1 AND status = $4",
            )
            .bind(f.id)
            .bind(to.as_str())
            .bind(now)
            .bind(f.status.as_str())
            .bind(to_unit)
            .bind(to_department.as_deref())
            .bind(decline_reason.as_deref())
            .bind(declined_by)
            .bind(suggested)
            .bind(outcome.as_deref())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Err(changed_meanwhile());
            }
            let after = sqlx::query(&format!("{REFERRAL_SELECT} WHERE f.id = $1"))
                .bind(f.id)
                .fetch_one(&mut *tx)
                .await?;
            let after = referral_from_row!(after);
            let party_s = party_str(party);
            // A redirected referral is also heard of by the unit it left.
            record_event!(
                tx,
                &after.heard(),
                transition.as_str(),
                Some(f.status.as_str()),
                to.as_str(),
                party_s,
                actor,
                note.as_deref(),
                now
            );
            if transition == Transition::Redirect {
                if let Some(old) = f.to_unit_id {
                    let (zh, en) = notice_text(&after.heard(), "redirect", to.as_str());
                    sqlx::query(
                        "INSERT INTO notification (group_id, referral_id, user_id, unit_id, audience, \
                         text_zh, text_en, created_at, channel, delivery) \
                         VALUES ($1, $2, NULL, $3, 'receiver', $4, $5, $6, 'in_app', 'pending')",
                    )
                    .bind(f.group_id).bind(f.id).bind(old).bind(&zh).bind(&en).bind(now)
                    .execute(&mut *tx).await?;
                }
            }
            // A down-referral accepted at the primary unit lands on its family doctor's list.
            if transition == Transition::Accept
                && f.direction == Direction::Down
                && f.kind == Kind::Referral
            {
                let due = (now + Duration::days(7)).date();
                sqlx::query(
                    "INSERT INTO follow_up (resident_id, group_id, program, unit_id, team_id, due_on, \
                     referral_id, note) VALUES ($1, $2, 'referral', $3, \
                     (SELECT c.team_id FROM contract c WHERE c.resident_id = $1 ORDER BY c.ends_on DESC, c.id DESC LIMIT 1), \
                     $4, $5, $6)",
                )
                .bind(f.resident_id)
                .bind(f.group_id)
                .bind(after.to_unit_id)
                .bind(due)
                .bind(f.id)
                .bind(after.care_plan.as_deref())
                .execute(&mut *tx)
                .await?;
            }
            if matches!(
                transition,
                Transition::Cancel | Transition::Expire | Transition::Decline
            ) {
                // Whatever it held goes back: its live booking's slot, and its place in the queue.
                let freed: Vec<Id> = sqlx::query_scalar(
                    "UPDATE booking SET status = 'cancelled', cancelled_at = $2 \
                     WHERE referral_id = $1 AND status = 'booked' RETURNING slot_id",
                )
                .bind(f.id)
                .bind(crate::now())
                .fetch_all(&mut *tx)
                .await?;
                for slot in freed {
                    sqlx::query("UPDATE slot SET status = 'free', hold_until = NULL, hold_token = NULL, hold_referral_id = NULL WHERE id = $1")
                        .bind(slot)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query("UPDATE bed_booking SET status = 'cancelled' WHERE referral_id = $1 AND status = 'booked'")
                    .bind(f.id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE waitlist SET status = 'withdrawn' WHERE referral_id = $1 AND status IN ('waiting', 'offered')")
                    .bind(f.id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE slot SET status = 'free', hold_until = NULL, hold_token = NULL, hold_referral_id = NULL \
                             WHERE hold_referral_id = $1 AND status = 'held'")
                    .bind(f.id)
                    .execute(&mut *tx)
                    .await?;
            }
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "referral.transition",
                    resource_type: "Task",
                    resource_id: Some(format!("referral-{}", f.id)),
                    target: Some(f.from_path()),
                    outcome: Outcome::Ok,
                    detail: Some(format!(
                        "{} {} -> {} as {party_s}",
                        transition, f.status, to
                    )),
                }
            )?;
            tx.commit().await?;
            Ok(after)
        })
    }

    /// Notifications for a user: addressed to them, or to their unit's side.
    pub async fn notifications(
        &self,
        user_id: Id,
        unit_id: Option<Id>,
        limit: i64,
    ) -> Result<Vec<Notification>, StoreError> {
        read!(self, |p| {
            let rows = sqlx::query(
                "SELECT id, referral_id, user_id, unit_id, audience, text_zh, text_en, created_at, \
                 read_at, channel, delivery FROM notification \
                 WHERE user_id = $1 OR (user_id IS NULL AND unit_id = $2) \
                 ORDER BY created_at DESC, id DESC LIMIT $3",
            )
            .bind(user_id)
            .bind(unit_id)
            .bind(limit.clamp(1, 500))
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(notification_from_row(&r)?);
            }
            Ok(out)
        })
    }

    /// Notifications not yet handed to the outbound channel, oldest first.
    pub async fn pending_notifications(&self, limit: i64) -> Result<Vec<Notification>, StoreError> {
        read!(self, |p| {
            let rows = sqlx::query(
                "SELECT id, referral_id, user_id, unit_id, audience, text_zh, text_en, created_at, \
                 read_at, channel, delivery FROM notification WHERE delivery = 'pending' \
                 ORDER BY id LIMIT $1",
            )
            .bind(limit.clamp(1, 1000))
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(notification_from_row(&r)?);
            }
            Ok(out)
        })
    }

    /// Records what the outbound channel did with a notification (`sent`, `logged`, `failed`).
    pub async fn mark_delivery(
        &self,
        id: Id,
        channel: &str,
        delivery: &str,
    ) -> Result<(), StoreError> {
        write!(self, |p| {
            sqlx::query("UPDATE notification SET channel = $2, delivery = $3 WHERE id = $1")
                .bind(id)
                .bind(channel)
                .bind(delivery)
                .execute(p)
                .await?;
            Ok(())
        })
    }

    /// Marks a user's notifications read.
    pub async fn mark_notifications_read(
        &self,
        actor: &Actor,
        user_id: Id,
        unit_id: Option<Id>,
        now: NaiveDateTime,
    ) -> Result<u64, StoreError> {
        write!(self, |p| {
            let mut tx = p.begin().await?;
            let done = sqlx::query(
                "UPDATE notification SET read_at = $3 WHERE read_at IS NULL \
                 AND (user_id = $1 OR (user_id IS NULL AND unit_id = $2))",
            )
            .bind(user_id)
            .bind(unit_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "notification.read",
                    resource_type: "Communication",
                    resource_id: Some(format!("user-{user_id}")),
                    target: None,
                    outcome: Outcome::Ok,
                    detail: Some(format!("{done} marked read")),
                }
            )?;
            tx.commit().await?;
            Ok(done)
        })
    }

    /// The timers' pass (R4.5): referrals left too long unaccepted or unbooked, and queued
    /// ones past their deadline, are escalated to the coordinator once each; open referrals
    /// idle past the expiry are expired; lapsed holds free their slots. Safe to run from
    /// several processes: each change is conditional on the state it was judged in.
    pub async fn escalate_overdue(
        &self,
        timers: &Timers,
        now: NaiveDateTime,
    ) -> Result<Escalated, StoreError> {
        let mut out = Escalated::default();
        let actor = Actor::system("timers");
        let open = self
            .referrals(&ReferralFilter {
                open_only: true,
                live_only: true,
                limit: 2000,
                ..ReferralFilter::default()
            })
            .await?;
        for f in open {
            let since = f.updated_at.unwrap_or(f.requested_at);
            if matches!(
                f.status,
                Status::Sent | Status::Redirected | Status::Accepted
            ) && now - since >= Duration::hours(timers.expire_hours)
            {
                if let Ok(to) = next_of(f.kind, f.status, Transition::Expire, Party::System) {
                    match self.apply_move_system(&actor, &f, to, now).await {
                        Ok(()) => out.expired += 1,
                        Err(StoreError::Conflict(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            if f.escalated_at.is_some() {
                continue;
            }
            let why = match f.status {
                Status::Sent | Status::Redirected
                    if now - since >= timers.accept_within(f.priority) =>
                {
                    Some("not_accepted")
                }
                Status::Accepted
                    if f.kind == Kind::Referral
                        && now - since >= timers.book_within(f.priority) =>
                {
                    Some("not_booked")
                }
                _ => None,
            };
            if let Some(why) = why {
                if self.escalate(&actor, &f, why, now).await? {
                    match why {
                        "not_accepted" => out.not_accepted += 1,
                        _ => out.not_booked += 1,
                    }
                }
            }
        }
        let overdue: Vec<Id> = read!(self, |p| {
            sqlx::query_scalar(
                "SELECT w.referral_id FROM waitlist w JOIN referral f ON f.id = w.referral_id \
                 WHERE w.status = 'waiting' AND w.deadline <= $1 AND f.escalated_at IS NULL",
            )
            .bind(now)
            .fetch_all(p)
            .await?
        });
        for id in overdue {
            let f = self.referral(id).await?;
            if self.escalate(&actor, &f, "queue_overdue", now).await? {
                out.queue_overdue += 1;
            }
        }
        out.holds_released = write!(self, |p| {
            sqlx::query(
                "UPDATE slot SET status = 'free', hold_until = NULL, hold_token = NULL, hold_referral_id = NULL \
                 WHERE status = 'held' AND hold_until <= $1",
            )
            .bind(now)
            .execute(p)
            .await?
            .rows_affected()
        });
        if out.holds_released > 0 {
            write!(self, |p| {
                sqlx::query(
                    "UPDATE waitlist SET status = 'waiting', offered_slot_id = NULL WHERE status = 'offered' \
                     AND offered_slot_id IN (SELECT id FROM slot WHERE status = 'free')",
                )
                .execute(p)
                .await?;
            });
        }
        Ok(out)
    }

    async fn escalate(
        &self,
        actor: &Actor,
        f: &Referral,
        why: &str,
        now: NaiveDateTime,
    ) -> Result<bool, StoreError> {
        write!(self, |p| {
            let mut tx = p.begin().await?;
            let done = sqlx::query(
                "UPDATE referral SET escalated_at = $2, escalation = $3 \
                 WHERE id = $1 AND status = $4 AND escalated_at IS NULL",
            )
            .bind(f.id)
            .bind(now)
            .bind(why)
            .bind(f.status.as_str())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            record_event!(
                tx,
                &f.heard(),
                "escalate",
                Some(f.status.as_str()),
                f.status.as_str(),
                "system",
                actor,
                Some(why),
                now
            );
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "referral.escalate",
                    resource_type: "Task",
                    resource_id: Some(format!("referral-{}", f.id)),
                    target: Some(f.from_path()),
                    outcome: Outcome::Ok,
                    detail: Some(why.to_owned()),
                }
            )?;
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn apply_move_system(
        &self,
        actor: &Actor,
        f: &Referral,
        to: Status,
        now: NaiveDateTime,
    ) -> Result<(), StoreError> {
        // Expiry has the cancel path's side effects, made by medgrid.
        self.apply_move(
            actor,
            f,
            &Move::Cancel {
                reason: "超时未处理，系统自动过期 / expired by the timers".into(),
            },
            to,
            Party::System,
            now,
        )
        .await
        .map(|_| ())
    }
}

fn notification_from_row<R: Row>(r: &R) -> Result<Notification, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    Id: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<Id>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    NaiveDateTime: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<NaiveDateTime>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Notification {
        id: r.try_get("id")?,
        referral_id: r.try_get("referral_id")?,
        user_id: r.try_get("user_id")?,
        unit_id: r.try_get("unit_id")?,
        audience: r.try_get("audience")?,
        text_zh: r.try_get("text_zh")?,
        text_en: r.try_get("text_en")?,
        created_at: r.try_get("created_at")?,
        read_at: r.try_get("read_at")?,
        channel: r.try_get("channel")?,
        delivery: r.try_get("delivery")?,
    })
}

/// A resident as the referral form shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResidentBrief {
    pub id: Id,
    pub name: String,
    pub sex: String,
    pub birth_date: chrono::NaiveDate,
    pub citizen_id: String,
    pub unit_id: Id,
    pub group_id: Id,
}

/// A follow-up task a down-referral left on a unit's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FollowUpTask {
    pub id: Id,
    pub resident_id: Id,
    pub resident_name: String,
    pub referral_id: Option<Id>,
    pub due_on: chrono::NaiveDate,
    pub done_on: Option<chrono::NaiveDate>,
    pub note: Option<String>,
}

impl Store {
    /// Residents whose id, citizen id or name matches `q` (a name matches by its start),
    /// within a group when given.
    pub async fn find_residents(
        &self,
        q: &str,
        group_id: Option<Id>,
        limit: i64,
    ) -> Result<Vec<ResidentBrief>, StoreError> {
        let q = q.trim();
        if q.is_empty() {
            return Ok(Vec::new());
        }
        let id: Option<Id> = q.parse().ok();
        let prefix = format!("{}%", q.replace(['%', '_'], ""));
        read!(self, |p| {
            let rows = sqlx::query(
                "SELECT id, name, sex, birth_date, citizen_id, unit_id, group_id FROM resident \
                 WHERE (id = $1 OR citizen_id = $2 OR name LIKE $3) AND ($4 IS NULL OR group_id = $4) \
                 ORDER BY id LIMIT $5",
            )
            .bind(id)
            .bind(q.to_uppercase())
            .bind(&prefix)
            .bind(group_id)
            .bind(limit.clamp(1, 100))
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(ResidentBrief {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    sex: r.try_get("sex")?,
                    birth_date: r.try_get("birth_date")?,
                    citizen_id: r.try_get("citizen_id")?,
                    unit_id: r.try_get("unit_id")?,
                    group_id: r.try_get("group_id")?,
                });
            }
            Ok(out)
        })
    }

    /// Follow-up tasks left by down-referrals at a unit, soonest due first.
    pub async fn referral_follow_ups(&self, unit_id: Id) -> Result<Vec<FollowUpTask>, StoreError> {
        read!(self, |p| {
            let rows = sqlx::query(
                "SELECT f.id, f.resident_id, r.name, f.referral_id, f.due_on, f.done_on, f.note \
                 FROM follow_up f JOIN resident r ON r.id = f.resident_id \
                 WHERE f.unit_id = $1 AND f.referral_id IS NOT NULL ORDER BY f.due_on, f.id LIMIT 500",
            )
            .bind(unit_id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(FollowUpTask {
                    id: r.try_get("id")?,
                    resident_id: r.try_get("resident_id")?,
                    resident_name: r.try_get("name")?,
                    referral_id: r.try_get("referral_id")?,
                    due_on: r.try_get("due_on")?,
                    done_on: r.try_get("done_on")?,
                    note: r.try_get("note")?,
                });
            }
            Ok(out)
        })
    }
}
