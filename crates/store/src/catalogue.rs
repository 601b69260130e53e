//! The groups' referral catalogues (R4.1) as versioned data: a change publishes a whole new
//! version, so what a referral was judged against can always be read back. Until a group
//! publishes its own, medgrid's starting lists apply (version 0).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use medgrid_domain::access::{Id, OrgPath};
use medgrid_domain::referral::{CatalogueEntry, CatalogueKind};
use medgrid_domain::{FieldError, Invalid};

use crate::audit::{audit_insert, AuditEntry};
use crate::{read, write, Actor, Outcome, Store, StoreError};

/// One version of one catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Catalogue {
    pub group_id: Id,
    pub kind: CatalogueKind,
    /// 0 for medgrid's starting list.
    pub version: i64,
    pub published_at: Option<DateTime<Utc>>,
    pub published_by: Option<String>,
    pub note: Option<String>,
    pub entries: Vec<CatalogueEntry>,
}

impl Catalogue {
    /// The entries as lines that the editor reads back.
    pub fn as_text(&self) -> String {
        self.entries
            .iter()
            .map(CatalogueEntry::to_line)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The current lists a referral from one group is judged against.
#[derive(Debug, Clone, Default)]
pub struct Catalogues {
    pub primary_first_visit: Vec<CatalogueEntry>,
    pub up: Vec<CatalogueEntry>,
    pub down: Vec<CatalogueEntry>,
    pub keep_in_city: Vec<CatalogueEntry>,
}

fn defaults(kind: CatalogueKind) -> Result<Vec<CatalogueEntry>, StoreError> {
    CatalogueEntry::parse_list(kind.default_text()).map_err(|e| {
        StoreError::Corrupt(format!("default catalogue {kind}: {} bad lines", e.len()))
    })
}

impl Store {
    /// The current version of a group's catalogue.
    pub async fn catalogue(
        &self,
        group_id: Id,
        kind: CatalogueKind,
    ) -> Result<Catalogue, StoreError> {
        let head = read!(self, |p| {
            sqlx::query(
                "SELECT c.id, c.version, c.published_at, u.username, c.note FROM referral_catalogue c \
                 LEFT JOIN app_user u ON u.id = c.published_by \
                 WHERE c.group_id = $1 AND c.kind = $2 ORDER BY c.version DESC LIMIT 1",
            )
            .bind(group_id)
            .bind(kind.as_str())
            .fetch_optional(p)
            .await?
            .map(|r| -> Result<_, StoreError> {
                Ok((
                    r.try_get::<Id, _>("id")?,
                    r.try_get::<i64, _>("version")?,
                    r.try_get::<DateTime<Utc>, _>("published_at")?,
                    r.try_get::<Option<String>, _>("username")?,
                    r.try_get::<Option<String>, _>("note")?,
                ))
            })
            .transpose()?
        });
        let Some((id, version, at, by, note)) = head else {
            return Ok(Catalogue {
                group_id,
                kind,
                version: 0,
                published_at: None,
                published_by: None,
                note: None,
                entries: defaults(kind)?,
            });
        };
        let rows: Vec<(Option<String>, Option<String>, String)> = read!(self, |p| {
            sqlx::query_as(
                "SELECT code_from, code_to, label FROM catalogue_entry WHERE catalogue_id = $1 ORDER BY position",
            )
            .bind(id)
            .fetch_all(p)
            .await?
        });
        let mut entries = Vec::with_capacity(rows.len());
        for (i, (from, to, label)) in rows.into_iter().enumerate() {
            let line = match (from, to) {
                (Some(f), Some(t)) if f == t => format!("{f} {label}"),
                (Some(f), Some(t)) => format!("{f}-{t} {label}"),
                _ => format!("- {label}"),
            };
            entries.push(
                CatalogueEntry::parse_line(i + 1, &line).map_err(|e| {
                    StoreError::Corrupt(format!("catalogue {id}: {}", e.message_en))
                })?,
            );
        }
        Ok(Catalogue {
            group_id,
            kind,
            version,
            published_at: Some(at),
            published_by: by,
            note,
            entries,
        })
    }

    /// Every version of a group's catalogue, newest first, without entries.
    pub async fn catalogue_versions(
        &self,
        group_id: Id,
        kind: CatalogueKind,
    ) -> Result<Vec<(i64, DateTime<Utc>, Option<String>, Option<String>, i64)>, StoreError> {
        read!(self, |p| {
            Ok(sqlx::query_as(
                "SELECT c.version, c.published_at, u.username, c.note, \
                 (SELECT COUNT(*) FROM catalogue_entry e WHERE e.catalogue_id = c.id) \
                 FROM referral_catalogue c LEFT JOIN app_user u ON u.id = c.published_by \
                 WHERE c.group_id = $1 AND c.kind = $2 ORDER BY c.version DESC",
            )
            .bind(group_id)
            .bind(kind.as_str())
            .fetch_all(p)
            .await?)
        })
    }

    /// The lists a referral from `unit_id`'s group is judged against.
    pub async fn catalogues_for_unit(&self, unit_id: Id) -> Result<Catalogues, StoreError> {
        let group: Option<Option<Id>> = read!(self, |p| {
            sqlx::query_scalar("SELECT group_id FROM unit WHERE id = $1")
                .bind(unit_id)
                .fetch_optional(p)
                .await?
        });
        let Some(Some(group)) = group else {
            return Ok(Catalogues::default());
        };
        Ok(Catalogues {
            primary_first_visit: self
                .catalogue(group, CatalogueKind::PrimaryFirstVisit)
                .await?
                .entries,
            up: self
                .catalogue(group, CatalogueKind::UpReferral)
                .await?
                .entries,
            down: self
                .catalogue(group, CatalogueKind::DownReferral)
                .await?
                .entries,
            keep_in_city: self
                .catalogue(group, CatalogueKind::KeepInCity)
                .await?
                .entries,
        })
    }

    /// Publishes the next version of a group's catalogue from its full text (one entry a
    /// line). Every bad line is reported and nothing is published. `base_version` is the
    /// version the editor started from: if another version was published since, the edit is
    /// refused rather than silently overwriting it, and of two editors publishing at once
    /// only one takes the next number.
    pub async fn publish_catalogue(
        &self,
        actor: &Actor,
        group: OrgPath,
        kind: CatalogueKind,
        base_version: i64,
        text: &str,
        note: &str,
    ) -> Result<Catalogue, StoreError> {
        let group_id = group.group.ok_or(StoreError::NotFound)?;
        let entries =
            CatalogueEntry::parse_list(text).map_err(|e| StoreError::Invalid(Invalid(e)))?;
        if entries.is_empty() {
            return Err(Invalid::one(FieldError::new(
                "entries",
                "required",
                "目录不能为空",
                "a catalogue needs at least one entry",
            ))
            .into());
        }
        let note = note.trim();
        write!(self, |p| {
            let mut tx = p.begin().await?;
            let version: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM referral_catalogue WHERE group_id = $1 AND kind = $2",
            )
            .bind(group_id)
            .bind(kind.as_str())
            .fetch_one(&mut *tx)
            .await?;
            if version != base_version + 1 {
                tx.rollback().await?;
                return Err(StoreError::Conflict(FieldError::new(
                    "base_version",
                    "stale",
                    format!(
                        "编辑期间已有人发布了第 {} 版，请重新打开目录后再修改",
                        version - 1
                    ),
                    format!(
                        "version {} was published while you edited; reopen the catalogue",
                        version - 1
                    ),
                )));
            }
            let id: Id = sqlx::query_scalar(
                "INSERT INTO referral_catalogue (group_id, kind, version, published_at, published_by, note) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(group_id)
            .bind(kind.as_str())
            .bind(version)
            .bind(crate::now())
            .bind(actor.user_id)
            .bind((!note.is_empty()).then_some(note))
            .fetch_one(&mut *tx)
            .await?;
            for (i, e) in entries.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO catalogue_entry (catalogue_id, position, code_from, code_to, label) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id)
                .bind(i as i64)
                .bind(e.range.as_ref().map(|r| r.from.to_string()))
                .bind(e.range.as_ref().map(|r| r.to.to_string()))
                .bind(&e.label)
                .execute(&mut *tx)
                .await?;
            }
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "catalogue.publish",
                    resource_type: "Catalogue",
                    resource_id: Some(format!("{kind}-{group_id}-v{version}")),
                    target: Some(group),
                    outcome: Outcome::Ok,
                    detail: Some(format!("{} entries", entries.len())),
                }
            )?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        self.catalogue(group_id, kind).await
    }
}
