//! A booking's writes on PostgreSQL, sent as one statement. At the release moment the
//! database's CPU is what a popular session's winners wait for, and every statement costs a
//! round trip and an executor start-up of its own: taking the slot, the booking, the
//! referral's move with its event and notices, the waitlist and the audit entry therefore go
//! to the server together as data-modifying common table expressions, each step fed by the
//! rows the step before returned, so that nothing is written unless the slot was taken. A
//! single statement is atomic without a transaction around it; where the referral turns out to
//! have been moved by a rival since it was read, `medgrid_refuse` aborts the statement and with
//! it every step. SQLite has no such statements and no network to save; there the same steps
//! run one by one in a transaction (`Store::book`), under the same conditions, and the store's
//! tests hold both to the same rows written. The columns written here are those of
//! `audit_insert!` and `record_event!`: a column added there must be added here.

use sqlx::{PgPool, Row};

use medgrid_domain::access::Id;

use medgrid_domain::capacity::Policy;
use medgrid_domain::{FieldError, Invalid};

use super::{
    earlier_answer, insert_refused, not_accepted, refusal, slot_taken, Booking, Plan,
    BOOKING_COLUMNS, TAKE_SLOT,
};
use crate::referral::{notice_text, recipients};
use crate::{Actor, Outcome, StoreError};

/// Books as `Store::book` does after its reads, for a first booking (not a reschedule).
pub(super) async fn in_one_statement(
    pool: &PgPool,
    actor: &Actor,
    policy: &Policy,
    plan: &Plan<'_>,
) -> Result<Booking, StoreError> {
    let req = plan.req;
    let (text_zh, text_en, heard) = match &plan.moving {
        Some(f) => {
            let (zh, en) = notice_text(f, "book", "booked");
            (Some(zh), Some(en), recipients(f, actor.user_id, "sender"))
        }
        None => (None, None, Vec::new()),
    };
    let heard_users: Vec<Option<Id>> = heard.iter().map(|h| h.0).collect();
    let heard_units: Vec<Option<Id>> = heard.iter().map(|h| h.1).collect();
    let heard_as: Vec<&str> = heard.iter().map(|h| h.2).collect();
    let target = plan.target();
    let sql = format!(
        "WITH s AS (UPDATE slot SET {TAKE_SLOT} RETURNING id, group_id), \
         b AS (INSERT INTO booking (group_id, slot_id, resident_id, referral_id, kind, reference, \
          idempotency_key, status, created_at) \
          SELECT group_id, id, $6, $7, $8, $9, $10, 'booked', $11 FROM s \
          RETURNING {BOOKING_COLUMNS}), \
         f AS (UPDATE referral SET status = 'booked', updated_at = $2, escalated_at = NULL, \
          escalation = NULL WHERE id = $7 AND status = 'accepted' AND EXISTS (SELECT 1 FROM b) \
          RETURNING id, group_id), \
         e AS (INSERT INTO referral_event (group_id, referral_id, at, transition, from_status, \
          to_status, party, user_id, note) \
          SELECT group_id, id, $2, 'book', 'accepted', 'booked', 'sender', $12, $13 FROM f), \
         n AS (INSERT INTO notification (group_id, referral_id, user_id, unit_id, audience, \
          text_zh, text_en, created_at, channel, delivery) \
          SELECT f.group_id, f.id, h.user_id, h.unit_id, h.audience, $14, $15, $2, 'in_app', \
          'pending' FROM f CROSS JOIN unnest($16::BIGINT[], $17::BIGINT[], $18::TEXT[]) \
          AS h(user_id, unit_id, audience)), \
         w AS (UPDATE waitlist SET status = 'fulfilled' WHERE referral_id IN (SELECT id FROM f) \
          AND status IN ('waiting', 'offered')), \
         a AS (INSERT INTO audit_event (at, actor_user_id, actor_username, actor_role, \
          actor_unit_id, actor_group_id, action, resource_type, resource_id, city_id, group_id, \
          unit_id, outcome, detail, client_ip) \
          SELECT $11, $12, $19, $20, $21, $22, 'slot.book', 'Appointment', 'booking-' || b.id, \
          $23, b.group_id, $24, $25, $26, $27 FROM b) \
         SELECT {BOOKING_COLUMNS}, CASE WHEN $7::BIGINT IS NOT NULL \
          AND NOT EXISTS (SELECT 1 FROM f) THEN medgrid_refuse('referral_not_accepted') END \
          AS refused FROM b"
    );
    let r = sqlx::query(&sql)
        .bind(req.slot_id)
        .bind(req.now)
        .bind(req.hold_token.as_deref())
        .bind(plan.may_take_reserved)
        .bind(plan.may_take_open)
        .bind(req.resident_id)
        .bind(req.referral_id)
        .bind(plan.kind.as_str())
        .bind(&plan.reference)
        .bind(plan.key)
        .bind(crate::now())
        .bind(actor.user_id)
        .bind(plan.event_note())
        .bind(text_zh)
        .bind(text_en)
        .bind(heard_users)
        .bind(heard_units)
        .bind(heard_as)
        .bind(&actor.username)
        .bind(actor.role.map(|r| r.as_str()))
        .bind(actor.unit_id)
        .bind(actor.group_id)
        .bind(target.city)
        .bind(target.unit)
        .bind(Outcome::Ok.as_str())
        .bind(&plan.detail)
        .bind(actor.client_ip.as_deref())
        .fetch_optional(pool)
        .await;
    match r {
        Ok(Some(r)) => Ok(booking_from_row!(r)),
        // Nothing was written: the slot was taken, or this is a retry.
        Ok(None) => after_losing!(pool, policy, plan),
        // Accepted when read, but booked or withdrawn by a rival since.
        Err(e)
            if e.as_database_error().is_some_and(|d| {
                d.message()
                    .starts_with("medgrid_refuse: referral_not_accepted")
            }) =>
        {
            Err(StoreError::Invalid(Invalid::one(not_accepted())))
        }
        Err(e) => Err(insert_refused(e)),
    }
}
