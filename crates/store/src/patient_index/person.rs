//! Reading persons: one with every unit's record of them and their merges, and searches.

use super::*;
use crate::read;

impl Store {
    /// The resident with its registered demographics (a merged one too: it still resolves).
    pub async fn person(&self, id: Id) -> Result<Person, StoreError> {
        read!(self, |p| {
            let r = sqlx::query(&format!("{PERSON_SELECT} WHERE r.id = $1"))
                .bind(id)
                .fetch_optional(p)
                .await?
                .ok_or(StoreError::NotFound)?;
            Ok(person_from_row!(r))
        })
    }

    /// The person, every unit's record of them, and the merges they took part in.
    pub async fn person_view(&self, id: Id) -> Result<PersonView, StoreError> {
        let person = self.person(id).await?;
        let records = self.records_of(id).await?;
        let merges = read!(self, |p| {
            let rows = sqlx::query(
                "SELECT m.id, m.kept_id, m.merged_id, m.reason, m.merged_at, m.merged_by, \
                 m.unmerged_at, m.unmerged_by FROM resident_merge m \
                 WHERE m.kept_id = $1 OR m.merged_id = $1 ORDER BY m.id DESC",
            )
            .bind(id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let merge_id: Id = r.try_get("id")?;
                let moved = sqlx::query(
                    "SELECT table_name, COUNT(*) AS n FROM resident_merge_row WHERE merge_id = $1 \
                     GROUP BY table_name ORDER BY table_name",
                )
                .bind(merge_id)
                .fetch_all(p)
                .await?;
                let mut counts = Vec::with_capacity(moved.len());
                for m in moved {
                    counts.push((m.try_get("table_name")?, m.try_get("n")?));
                }
                out.push(MergeEvent {
                    id: merge_id,
                    kept_id: r.try_get("kept_id")?,
                    merged_id: r.try_get("merged_id")?,
                    reason: r.try_get("reason")?,
                    merged_at: r.try_get("merged_at")?,
                    merged_by: r.try_get("merged_by")?,
                    unmerged_at: r.try_get("unmerged_at")?,
                    unmerged_by: r.try_get("unmerged_by")?,
                    moved: counts,
                });
            }
            Ok::<_, StoreError>(out)
        })?;
        Ok(PersonView {
            person,
            records,
            merges,
        })
    }

    pub(super) async fn records_of(
        &self,
        resident_id: Id,
    ) -> Result<Vec<PatientRecord>, StoreError> {
        read!(self, |p| {
            let rows = sqlx::query(&format!(
                "SELECT {RECORD_COLUMNS} {RECORD_FROM} WHERE p.resident_id = $1 ORDER BY p.id"
            ))
            .bind(resident_id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(record_from_row!(r));
            }
            Ok(out)
        })
    }

    pub async fn patient_record(&self, id: Id) -> Result<PatientRecord, StoreError> {
        read!(self, |p| {
            let r = sqlx::query(&format!(
                "SELECT {RECORD_COLUMNS} {RECORD_FROM} WHERE p.id = $1"
            ))
            .bind(id)
            .fetch_optional(p)
            .await?
            .ok_or(StoreError::NotFound)?;
            Ok(record_from_row!(r))
        })
    }

    /// Residents matching every given part of `f`, the registered ones first (merged ones
    /// are left out: they resolve to their person by id).
    pub async fn search_persons(&self, f: &PersonFilter) -> Result<Vec<Person>, StoreError> {
        let identifier = f
            .identifier
            .as_deref()
            .map(|i| Value::new(FieldKind::CitizenId, i).norm.to_string());
        let phone = f
            .phone
            .as_deref()
            .map(|x| Value::new(FieldKind::Phone, x).norm.to_string());
        let name = f
            .name
            .as_deref()
            .map(|n| format!("{}%", n.trim().replace(['%', '_'], "")));
        let groups = f.group_ids.as_ref().map(|g| {
            g.iter()
                .map(|id| id.to_string())
                .collect::<Vec<_>>()
                .join(",")
        });
        // The group list is made of integers above, never of input text.
        let group_clause = match &groups {
            Some(list) if list.is_empty() => " AND 1 = 0".to_owned(),
            Some(list) => format!(" AND r.group_id IN ({list})"),
            None => String::new(),
        };
        let sql = format!(
            "{PERSON_SELECT} WHERE r.merged_into_id IS NULL{group_clause} \
             AND ($1 IS NULL OR r.citizen_id = $1 OR r.id IN \
                  (SELECT x.resident_id FROM patient_record x WHERE x.citizen_id = $1 OR x.id_number = $1 \
                   OR x.local_record_no = $1 OR x.insurance_card = $1)) \
             AND ($2 IS NULL OR r.name LIKE $2) AND ($3 IS NULL OR r.birth_date = $3) \
             AND ($4 IS NULL OR r.sex = $4) AND ($5 IS NULL OR r.phone = $5) ORDER BY r.id LIMIT $6"
        );
        read!(self, |p| {
            let rows = sqlx::query(&sql)
                .bind(identifier.as_deref())
                .bind(name.as_deref())
                .bind(f.birth_date)
                .bind(f.sex.as_deref())
                .bind(phone.as_deref())
                .bind(f.limit.clamp(1, 200))
                .fetch_all(p)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(person_from_row!(r));
            }
            Ok(out)
        })
    }
}
