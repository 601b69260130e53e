//! The review queue and its decisions.

use super::*;
use crate::{read, write};

impl Store {
    /// Reviews of a group with `status` (`open` when `None`), oldest first.
    pub async fn match_reviews(
        &self,
        group_id: Id,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<MatchReview>, StoreError> {
        read!(self, |p| {
            let rows = sqlx::query(&format!(
                "{REVIEW_SELECT} WHERE m.group_id = $1 AND m.status = $2 ORDER BY m.id LIMIT $3"
            ))
            .bind(group_id)
            .bind(status.unwrap_or("open"))
            .bind(limit.clamp(1, 1000))
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(review_from_row!(&r)?);
            }
            Ok(out)
        })
    }

    /// Open reviews per group.
    pub async fn open_review_count(&self, group_id: Id) -> Result<i64, StoreError> {
        read!(self, |p| {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM match_review WHERE group_id = $1 AND status = 'open'",
            )
            .bind(group_id)
            .fetch_one(p)
            .await?;
            Ok(n)
        })
    }

    /// One review as listed, without both sides' records and the score.
    pub async fn match_review(&self, id: Id) -> Result<MatchReview, StoreError> {
        read!(self, |p| {
            let r = sqlx::query(&format!("{REVIEW_SELECT} WHERE m.id = $1"))
                .bind(id)
                .fetch_optional(p)
                .await?
                .ok_or(StoreError::NotFound)?;
            review_from_row!(&r)
        })
    }

    pub async fn review_detail(&self, id: Id) -> Result<ReviewDetail, StoreError> {
        let c = comparator()?;
        let review = self.match_review(id).await?;
        let record = self.patient_record(review.record_id).await?;
        let candidate = self.person(review.resident_id).await?;
        let candidate_records: Vec<PatientRecord> = self
            .records_of(review.resident_id)
            .await?
            .into_iter()
            .filter(|r| r.id != record.id)
            .collect();
        let a = c.prepare(&record.demographics().raw());
        let mut best = (
            c.score(&a, &c.prepare(&candidate.demographics().raw()), |_| None),
            None,
        );
        for r in &candidate_records {
            let s = c.score(&a, &c.prepare(&r.demographics().raw()), |_| None);
            if s.probability > best.0.probability {
                best = (s, Some(r.id));
            }
        }
        Ok(ReviewDetail {
            review,
            record,
            candidate,
            candidate_records,
            score: best.0,
            best_record_id: best.1,
        })
    }

    /// Settles a review. "Same" merges the record's person into the candidate (moving every
    /// row, undoably); "not same" is kept so that later runs never propose the pair again.
    pub async fn decide_review(
        &self,
        actor: &Actor,
        id: Id,
        verdict: Verdict,
    ) -> Result<MatchReview, StoreError> {
        let now = crate::now();
        write!(self, |p| {
            let mut tx = p.begin().await?;
            lock_index!(self, tx);
            let row = sqlx::query(
                "SELECT m.status, m.record_id, m.resident_id, m.group_id, p.resident_id AS own, \
                 p.unit_id, u.city_id FROM match_review m JOIN patient_record p ON p.id = m.record_id \
                 JOIN unit u ON u.id = p.unit_id WHERE m.id = $1",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
            let status: String = row.try_get("status")?;
            if status != "open" {
                return Err(StoreError::Conflict(FieldError::new(
                    "review",
                    "already_decided",
                    "该核对已有结论",
                    "the review has already been decided",
                )));
            }
            let record_id: Id = row.try_get("record_id")?;
            let candidate: Id = row.try_get("resident_id")?;
            let own: Id = row.try_get("own")?;
            let group_id: Id = row.try_get("group_id")?;
            let target = OrgPath {
                city: row.try_get("city_id")?,
                grid: None,
                group: Some(group_id),
                unit: Some(row.try_get("unit_id")?),
            };
            let merged = sqlx::query_scalar::<_, Option<Id>>(
                "SELECT merged_into_id FROM resident WHERE id = $1",
            )
            .bind(candidate)
            .fetch_one(&mut *tx)
            .await?;
            if verdict == Verdict::Same && merged.is_some() {
                return Err(StoreError::Conflict(FieldError::new(
                    "resident_id",
                    "merged",
                    "候选居民已被合并到其他主索引，请在其现主索引上处理",
                    "the candidate has been merged into another person; decide there",
                )));
            }
            let status = match verdict {
                Verdict::Same => "same",
                Verdict::NotSame => "not_same",
            };
            sqlx::query(
                "UPDATE match_review SET status = $2, decided_at = $3, decided_by = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(status)
            .bind(now)
            .bind(&actor.username)
            .execute(&mut *tx)
            .await?;
            if verdict == Verdict::Same {
                sqlx::query(
                    "UPDATE match_review SET status = 'withdrawn', decided_at = $2, decided_by = $3 \
                     WHERE record_id = $1 AND status = 'open'",
                )
                .bind(record_id)
                .bind(now)
                .bind(&actor.username)
                .execute(&mut *tx)
                .await?;
                if own != candidate {
                    let reason = format!("主索引核对确认同一人（核对 {id}）");
                    merge_body!(tx, actor, candidate, own, reason.as_str(), Some(id), now);
                }
            }
            let open: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM match_review WHERE record_id = $1 AND status = 'open'",
            )
            .bind(record_id)
            .fetch_one(&mut *tx)
            .await?;
            if open == 0 {
                sqlx::query("UPDATE patient_record SET link_state = 'manual', updated_at = $2 WHERE id = $1")
                    .bind(record_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "match_review.decide",
                    resource_type: "Patient",
                    resource_id: Some(candidate.to_string()),
                    target: Some(target),
                    outcome: Outcome::Ok,
                    detail: Some(format!("review {id} record {record_id}: {status}")),
                }
            )?;
            let r = sqlx::query(&format!("{REVIEW_SELECT} WHERE m.id = $1"))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            let out = review_from_row!(&r)?;
            tx.commit().await?;
            Ok(out)
        })
    }
}
