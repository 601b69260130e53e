//! Files attached to a live referral (R4.2). The file travels with the referral inside the
//! database, so that a backup or a move to PostgreSQL carries it too, and its SHA-256 is kept
//! so that either end can show it was not changed on the way.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use medgrid_domain::access::Id;
use medgrid_domain::attachment::{self, MAX_PER_REFERRAL};
use medgrid_domain::referral::Party;
use medgrid_domain::{FieldError, Invalid};

use crate::audit::{audit_insert, AuditEntry};
use crate::{read, write, Actor, Outcome, Store, StoreError};

/// What is known of an attached file without its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    pub id: Id,
    pub referral_id: Id,
    pub file_name: String,
    pub media_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub uploaded_by: Option<Id>,
    pub uploaded_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, referral_id, file_name, media_type, size_bytes, sha256, uploaded_by, uploaded_at";

macro_rules! attachment_from_row {
    ($r:expr) => {{
        let r = &$r;
        Attachment {
            id: r.try_get("id")?,
            referral_id: r.try_get("referral_id")?,
            file_name: r.try_get("file_name")?,
            media_type: r.try_get("media_type")?,
            size_bytes: r.try_get("size_bytes")?,
            sha256: r.try_get("sha256")?,
            uploaded_by: r.try_get("uploaded_by")?,
            uploaded_at: r.try_get("uploaded_at")?,
        }
    }};
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Attaches a file to an open live referral on behalf of one of its parties. The file is
    /// checked by its content ([`attachment::check`]); the referral's row is touched first so
    /// that simultaneous uploads to one referral take turns and the per-referral limit holds.
    pub async fn attach_file(
        &self,
        actor: &Actor,
        referral_id: Id,
        party: Party,
        file_name: &str,
        bytes: &[u8],
        now: NaiveDateTime,
    ) -> Result<Attachment, StoreError> {
        let checked = attachment::check(file_name, bytes)?;
        let sha256 = hex(&Sha256::digest(bytes));
        let size = i64::try_from(bytes.len()).map_err(|_| Invalid::one(attachment::too_large()))?;
        write!(self, |p| {
            let mut tx = p.begin().await?;
            let touched = sqlx::query(
                "UPDATE referral SET updated_at = $2 WHERE id = $1 AND source_encounter_id IS NULL \
                 AND status IN ('draft', 'sent', 'accepted', 'redirected', 'booked', 'arrived')",
            )
            .bind(referral_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if touched.rows_affected() != 1 {
                tx.rollback().await?;
                return Err(StoreError::Conflict(FieldError::new(
                    "referral",
                    "closed",
                    "只能为进行中的转诊添加附件",
                    "files can be attached to open referrals only",
                )));
            }
            let f = crate::referral::referral_in_tx!(tx, referral_id);
            let count: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM referral_attachment WHERE referral_id = $1",
            )
            .bind(referral_id)
            .fetch_one(&mut *tx)
            .await?;
            if count >= MAX_PER_REFERRAL {
                tx.rollback().await?;
                return Err(StoreError::Invalid(Invalid::one(FieldError::new(
                    "file",
                    "too_many",
                    format!("每个转诊最多 {MAX_PER_REFERRAL} 个附件"),
                    format!("a referral carries at most {MAX_PER_REFERRAL} files"),
                ))));
            }
            let r = sqlx::query(&format!(
                "INSERT INTO referral_attachment (group_id, referral_id, file_name, media_type, \
                 size_bytes, sha256, content, uploaded_by, uploaded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
            ))
            .bind(f.group_id)
            .bind(referral_id)
            .bind(&checked.file_name)
            .bind(checked.media_type.as_mime())
            .bind(size)
            .bind(&sha256)
            .bind(bytes)
            .bind(actor.user_id)
            .bind(crate::now())
            .fetch_one(&mut *tx)
            .await?;
            let a = attachment_from_row!(r);
            let note = format!("{} ({} KB)", a.file_name, (a.size_bytes + 1023) / 1024);
            let status = f.status.as_str();
            crate::referral::record_event!(
                tx,
                &f.heard(),
                "attach",
                Some(status),
                status,
                crate::referral::party_str(party),
                actor,
                Some(note.as_str()),
                now
            );
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "referral.attach",
                    resource_type: "DocumentReference",
                    resource_id: Some(format!("attachment-{}", a.id)),
                    target: Some(f.from_path()),
                    outcome: Outcome::Ok,
                    detail: Some(format!(
                        "referral {referral_id} {} {} bytes sha256 {}",
                        a.media_type, a.size_bytes, a.sha256
                    )),
                }
            )?;
            tx.commit().await?;
            Ok(a)
        })
    }

    /// The files of a referral, oldest first, without their content.
    pub async fn attachments(&self, referral_id: Id) -> Result<Vec<Attachment>, StoreError> {
        read!(self, |p| {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM referral_attachment WHERE referral_id = $1 ORDER BY id"
            ))
            .bind(referral_id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(attachment_from_row!(r));
            }
            Ok(out)
        })
    }

    /// One file of one referral with its content; `NotFound` when the id belongs to another
    /// referral, so that a file is only ever reached through a referral its reader may see.
    pub async fn attachment(
        &self,
        referral_id: Id,
        id: Id,
    ) -> Result<(Attachment, Vec<u8>), StoreError> {
        read!(self, |p| {
            let r = sqlx::query(&format!(
                "SELECT {COLUMNS}, content FROM referral_attachment \
                 WHERE id = $1 AND referral_id = $2"
            ))
            .bind(id)
            .bind(referral_id)
            .fetch_optional(p)
            .await?
            .ok_or(StoreError::NotFound)?;
            let content: Vec<u8> = r.try_get("content")?;
            Ok((attachment_from_row!(r), content))
        })
    }
}
