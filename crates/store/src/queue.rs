//! The "no slot available" queue (R5): a referral that finds no capacity waits with a deadline
//! set by its urgency; a freed slot of its clinic is held for the first in line (green channel
//! first, then urgent, then routine, oldest first) and offered to its referrer.

use chrono::{Duration, NaiveDateTime};
use sqlx::Row;

use medgrid_domain::access::Id;
use medgrid_domain::referral::{Kind, Status, Timers};
use medgrid_domain::{FieldError, Invalid};

use crate::audit::{audit_insert, AuditEntry};
use crate::booking::QueueEntry;
use crate::{read, write, Actor, Outcome, Store, StoreError};

impl Store {
    /// Queues an accepted referral for capacity at its receiving unit's department.
    pub async fn enqueue_referral(
        &self,
        actor: &Actor,
        referral_id: Id,
        department_code: &str,
        timers: &Timers,
        now: NaiveDateTime,
    ) -> Result<QueueEntry, StoreError> {
        let f = self.referral(referral_id).await?;
        let mut inv = Invalid::default();
        if f.kind != Kind::Referral || f.status != Status::Accepted {
            inv.push(FieldError::new(
                "referral_id",
                "not_accepted",
                "只有已接收、尚未预约的转诊可以排队候补",
                "only an accepted, unbooked referral can be queued",
            ));
        }
        let department = department_code.trim();
        let department = if department.is_empty() {
            f.to_department_code.clone().unwrap_or_default()
        } else {
            department.to_owned()
        };
        if department.is_empty() {
            inv.push(FieldError::required("department_code"));
        }
        let Some(unit_id) = f.to_unit_id else {
            inv.push(FieldError::new(
                "referral_id",
                "no_unit",
                "转诊尚未指定接收机构",
                "the referral has no receiving unit yet",
            ));
            return Err(inv.into());
        };
        if !inv.is_empty() {
            return Err(inv.into());
        }
        let deadline = now + timers.queue_within(f.priority);
        let id = write!(self, |p| {
            let mut tx = p.begin().await?;
            let id: Id = sqlx::query_scalar(
                "INSERT INTO waitlist (group_id, referral_id, unit_id, department_code, priority, \
                 deadline, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'waiting', $7) RETURNING id",
            )
            .bind(f.group_id)
            .bind(f.id)
            .bind(unit_id)
            .bind(&department)
            .bind(f.priority.as_str())
            .bind(deadline)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            crate::referral::record_event!(
                tx,
                &f.heard(),
                "queue",
                Some(f.status.as_str()),
                f.status.as_str(),
                "sender",
                actor,
                Some(department.as_str()),
                now
            );
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "referral.queue",
                    resource_type: "Task",
                    resource_id: Some(format!("referral-{}", f.id)),
                    target: Some(f.from_path()),
                    outcome: Outcome::Ok,
                    detail: Some(format!("{department} until {deadline}")),
                }
            )?;
            tx.commit().await?;
            Ok::<Id, StoreError>(id)
        })?;
        self.queue_entry(id).await
    }

    async fn queue_entry(&self, id: Id) -> Result<QueueEntry, StoreError> {
        let mut all = self.queue_where(Some(id), None, false).await?;
        all.pop().ok_or(StoreError::NotFound)
    }

    /// The queue of a group (or everything), open entries only unless `all`: in the order
    /// slots are offered.
    pub async fn queue(
        &self,
        group_id: Option<Id>,
        all: bool,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        self.queue_where(None, group_id, all).await
    }

    async fn queue_where(
        &self,
        id: Option<Id>,
        group_id: Option<Id>,
        all: bool,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        read!(self, |p| {
            let rows = sqlx::query(
                "SELECT w.id, w.referral_id, r.name, w.unit_id, u.legal_name, w.department_code, \
                 w.priority, w.deadline, w.status, w.offered_slot_id, w.created_at \
                 FROM waitlist w JOIN referral f ON f.id = w.referral_id \
                 JOIN resident r ON r.id = f.resident_id JOIN unit u ON u.id = w.unit_id \
                 WHERE ($1 IS NULL OR w.id = $1) AND ($2 IS NULL OR w.group_id = $2) \
                 AND ($3 OR w.status IN ('waiting', 'offered')) \
                 ORDER BY CASE w.priority WHEN 'green' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END, w.created_at, w.id",
            )
            .bind(id)
            .bind(group_id)
            .bind(all)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(QueueEntry {
                    id: r.try_get("id")?,
                    referral_id: r.try_get("referral_id")?,
                    resident_name: r.try_get("name")?,
                    unit_id: r.try_get("unit_id")?,
                    unit_name: r.try_get("legal_name")?,
                    department_code: r.try_get("department_code")?,
                    priority: r.try_get("priority")?,
                    deadline: r.try_get("deadline")?,
                    status: r.try_get("status")?,
                    offered_slot_id: r.try_get("offered_slot_id")?,
                    created_at: r.try_get("created_at")?,
                });
            }
            Ok(out)
        })
    }

    /// Offers a just-freed slot to the first referral waiting for its clinic: the slot is held
    /// for that referral for `offer_hours` (never past the slot's start) and its referrer is
    /// told. Returns the referral offered, if any.
    pub async fn offer_freed_slot(
        &self,
        actor: &Actor,
        slot_id: Id,
        now: NaiveDateTime,
        offer_hours: i64,
    ) -> Result<Option<Id>, StoreError> {
        write!(self, |p| {
            let mut tx = p.begin().await?;
            let first = sqlx::query(
                "SELECT w.id, w.referral_id, s.starts_at FROM slot s \
                 JOIN care_session c ON c.id = s.session_id \
                 JOIN waitlist w ON w.unit_id = c.unit_id AND w.department_code = c.department_code \
                 WHERE s.id = $1 AND s.status = 'free' AND s.starts_at > $2 AND w.status = 'waiting' \
                 ORDER BY CASE w.priority WHEN 'green' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END, w.created_at, w.id \
                 LIMIT 1",
            )
            .bind(slot_id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(first) = first else {
                tx.rollback().await?;
                return Ok(None);
            };
            let entry: Id = first.try_get("id")?;
            let referral_id: Id = first.try_get("referral_id")?;
            let starts_at: NaiveDateTime = first.try_get("starts_at")?;
            let until = (now + Duration::hours(offer_hours)).min(starts_at);
            let token = format!("W{entry}");
            let held = sqlx::query(
                "UPDATE slot SET status = 'held', hold_until = $2, hold_token = $3, hold_referral_id = $4 \
                 WHERE id = $1 AND status = 'free'",
            )
            .bind(slot_id)
            .bind(until)
            .bind(&token)
            .bind(referral_id)
            .execute(&mut *tx)
            .await?;
            if held.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(None);
            }
            sqlx::query(
                "UPDATE waitlist SET status = 'offered', offered_slot_id = $2 WHERE id = $1",
            )
            .bind(entry)
            .bind(slot_id)
            .execute(&mut *tx)
            .await?;
            let f = crate::referral::referral_in_tx!(tx, referral_id);
            let note = format!(
                "slot {slot_id} {} until {until}",
                starts_at.format("%Y-%m-%d %H:%M")
            );
            crate::referral::record_event!(
                tx,
                &f.heard(),
                "offer",
                Some(f.status.as_str()),
                f.status.as_str(),
                "system",
                actor,
                Some(note.as_str()),
                now
            );
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "slot.offer",
                    resource_type: "Slot",
                    resource_id: Some(format!("slot-{slot_id}")),
                    target: Some(f.from_path()),
                    outcome: Outcome::Ok,
                    detail: Some(format!("referral {referral_id} until {until}")),
                }
            )?;
            tx.commit().await?;
            Ok(Some(referral_id))
        })
    }

    /// The slot held for a referral by a waitlist offer, with its token, if any.
    pub async fn offered_slot(
        &self,
        referral_id: Id,
    ) -> Result<Option<(Id, String, NaiveDateTime)>, StoreError> {
        read!(self, |p| {
            Ok(sqlx::query_as(
                "SELECT id, hold_token, hold_until FROM slot WHERE hold_referral_id = $1 AND status = 'held'",
            )
            .bind(referral_id)
            .fetch_optional(p)
            .await?)
        })
    }
}
