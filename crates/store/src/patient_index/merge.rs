//! Merging two persons, every linked row moving and each move listed, and undoing it.

use super::*;
use crate::write;

/// The merge itself, inside the caller's transaction (which holds the arrival lock).
macro_rules! merge_body {
    ($tx:expr, $actor:expr, $kept:expr, $merged:expr, $reason:expr, $review:expr, $now:expr) => {{
        let (kept, merged): (Id, Id) = ($kept, $merged);
        if kept == merged {
            return Err(StoreError::Invalid(Invalid::one(FieldError::new(
                "merged_id",
                "same_person",
                "不能与自身合并",
                "cannot merge a person into itself",
            ))));
        }
        let rows = sqlx::query(
            "SELECT r.id, r.group_id, r.merged_into_id, r.unit_id, u.city_id FROM resident r \
             JOIN unit u ON u.id = r.unit_id WHERE r.id IN ($1, $2)",
        )
        .bind(kept)
        .bind(merged)
        .fetch_all(&mut *$tx)
        .await?;
        let mut found: HashMap<Id, (Id, Option<Id>, Id, Id)> = HashMap::new();
        for r in &rows {
            found.insert(
                r.try_get("id")?,
                (
                    r.try_get("group_id")?,
                    r.try_get("merged_into_id")?,
                    r.try_get("unit_id")?,
                    r.try_get("city_id")?,
                ),
            );
        }
        let (Some(k), Some(m)) = (found.get(&kept), found.get(&merged)) else {
            return Err(StoreError::NotFound);
        };
        if k.0 != m.0 {
            return Err(StoreError::Invalid(Invalid::one(FieldError::new(
                "merged_id",
                "other_group",
                "只能合并同一医疗集团的居民",
                "only residents of one group can be merged",
            ))));
        }
        if k.1.is_some() || m.1.is_some() {
            return Err(StoreError::Conflict(FieldError::new(
                "merged_id",
                "already_merged",
                "其中一方已被合并",
                "one of them has already been merged",
            )));
        }
        let (group_id, unit_id, city_id) = (k.0, k.2, k.3);
        let merge_id: Id = sqlx::query_scalar(
            "INSERT INTO resident_merge (group_id, kept_id, merged_id, reason, review_id, merged_at, \
             merged_by) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(group_id)
        .bind(kept)
        .bind(merged)
        .bind($reason)
        .bind($review)
        .bind($now)
        .bind(&$actor.username)
        .fetch_one(&mut *$tx)
        .await?;
        for table in PERSON_TABLES {
            // Table names come from the constant, never from input.
            sqlx::query(&format!(
                "INSERT INTO resident_merge_row (merge_id, table_name, row_id) \
                 SELECT $1, '{table}', id FROM {table} WHERE resident_id = $2"
            ))
            .bind(merge_id)
            .bind(merged)
            .execute(&mut *$tx)
            .await?;
            sqlx::query(&format!(
                "UPDATE {table} SET resident_id = $1 WHERE resident_id = $2"
            ))
            .bind(kept)
            .bind(merged)
            .execute(&mut *$tx)
            .await?;
        }
        // Persons merged into the merged one before now point at the kept one.
        sqlx::query(
            "INSERT INTO resident_merge_row (merge_id, table_name, row_id) \
             SELECT $1, 'resident', id FROM resident WHERE merged_into_id = $2",
        )
        .bind(merge_id)
        .bind(merged)
        .execute(&mut *$tx)
        .await?;
        sqlx::query("UPDATE resident SET merged_into_id = $1 WHERE merged_into_id = $2")
            .bind(kept)
            .bind(merged)
            .execute(&mut *$tx)
            .await?;
        sqlx::query("UPDATE resident SET merged_into_id = $1 WHERE id = $2")
            .bind(kept)
            .bind(merged)
            .execute(&mut *$tx)
            .await?;
        // A reviewer's "not same" between the records now of one person no longer applies to
        // the merged one: the person it named is gone.
        sqlx::query(
            "UPDATE match_review SET status = 'withdrawn' WHERE resident_id = $1 AND status = 'open'",
        )
        .bind(merged)
        .execute(&mut *$tx)
        .await?;
        audit_insert!(
            &mut *$tx,
            &AuditEntry {
                actor: $actor,
                action: "resident.merge",
                resource_type: "Patient",
                resource_id: Some(kept.to_string()),
                target: Some(OrgPath {
                    city: city_id,
                    grid: None,
                    group: Some(group_id),
                    unit: Some(unit_id),
                }),
                outcome: Outcome::Ok,
                detail: Some(format!("merge {merge_id}: {merged} into {kept}")),
            }
        )?;
        merge_id
    }};
}

impl Store {
    /// Merges `merged_id` into `kept_id`: every row of the merged resident moves, and the
    /// merged resident points at the kept one. Returns the merge's id.
    pub async fn merge_residents(
        &self,
        actor: &Actor,
        kept_id: Id,
        merged_id: Id,
        reason: &str,
    ) -> Result<Id, StoreError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(StoreError::Invalid(Invalid::one(FieldError::new(
                "reason",
                "required",
                "请填写合并理由（不超过 500 字）",
                "a reason of at most 500 characters is required",
            ))));
        }
        let now = crate::now();
        write!(self, |p| {
            let mut tx = p.begin().await?;
            lock_index!(self, tx);
            let id = merge_body!(tx, actor, kept_id, merged_id, reason, None::<Id>, now);
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Undoes a merge: exactly the rows it moved go back (rows added to the kept person since
    /// stay), the merged resident is a person again, and the pair is recorded as "not same".
    pub async fn unmerge(&self, actor: &Actor, merge_id: Id) -> Result<(), StoreError> {
        let now = crate::now();
        write!(self, |p| {
            let mut tx = p.begin().await?;
            lock_index!(self, tx);
            let row = sqlx::query(
                "SELECT m.kept_id, m.merged_id, m.review_id, m.unmerged_at IS NOT NULL AS undone, \
                 k.merged_into_id AS kept_into, k.group_id, u.city_id, k.unit_id \
                 FROM resident_merge m JOIN resident k ON k.id = m.kept_id \
                 JOIN unit u ON u.id = k.unit_id WHERE m.id = $1",
            )
            .bind(merge_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
            let undone: bool = row.try_get("undone")?;
            if undone {
                return Err(StoreError::Conflict(FieldError::new(
                    "merge_id",
                    "already_undone",
                    "该合并已撤销",
                    "the merge has already been undone",
                )));
            }
            let kept_into: Option<Id> = row.try_get("kept_into")?;
            if kept_into.is_some() {
                return Err(StoreError::Conflict(FieldError::new(
                    "merge_id",
                    "later_merge",
                    "保留的主索引此后又被合并，请先撤销后来的合并",
                    "the kept person was merged again later; undo that merge first",
                )));
            }
            let kept: Id = row.try_get("kept_id")?;
            let merged: Id = row.try_get("merged_id")?;
            let review_id: Option<Id> = row.try_get("review_id")?;
            for table in PERSON_TABLES {
                // Table names come from the constant above, never from input.
                sqlx::query(&format!(
                    "UPDATE {table} SET resident_id = $1 WHERE resident_id = $2 AND id IN \
                     (SELECT row_id FROM resident_merge_row WHERE merge_id = $3 AND table_name = '{table}')"
                ))
                .bind(merged)
                .bind(kept)
                .bind(merge_id)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "UPDATE resident SET merged_into_id = $1 WHERE merged_into_id = $2 AND id IN \
                 (SELECT row_id FROM resident_merge_row WHERE merge_id = $3 AND table_name = 'resident')",
            )
            .bind(merged)
            .bind(kept)
            .bind(merge_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE resident SET merged_into_id = NULL WHERE id = $1")
                .bind(merged)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE resident_merge SET unmerged_at = $2, unmerged_by = $3 WHERE id = $1",
            )
            .bind(merge_id)
            .bind(now)
            .bind(&actor.username)
            .execute(&mut *tx)
            .await?;
            if let Some(review_id) = review_id {
                sqlx::query(
                    "UPDATE match_review SET status = 'not_same', decided_at = $2, decided_by = $3 \
                     WHERE id = $1",
                )
                .bind(review_id)
                .bind(now)
                .bind(&actor.username)
                .execute(&mut *tx)
                .await?;
            }
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "resident.unmerge",
                    resource_type: "Patient",
                    resource_id: Some(merged.to_string()),
                    target: Some(OrgPath {
                        city: row.try_get("city_id")?,
                        grid: None,
                        group: Some(row.try_get("group_id")?),
                        unit: Some(row.try_get("unit_id")?),
                    }),
                    outcome: Outcome::Ok,
                    detail: Some(format!("merge {merge_id}: {merged} split from {kept}")),
                }
            )?;
            tx.commit().await?;
            Ok(())
        })
    }
}
