//! Assessment schemes and reports as stored (R11.2). A scheme is kept whole as JSON, one row
//! per version; a report keeps the scheme it was computed with and its results, and the
//! database refuses to change it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use medgrid_domain::access::{Id, OrgPath};

use crate::audit::{audit_insert, AuditEntry};
use crate::{read, write, Actor, Outcome, Store, StoreError};

/// A group's own scheme, as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredScheme {
    pub group_id: Id,
    pub version: i64,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// An assessment report: what was computed, from what, when and by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredRun {
    pub id: Id,
    pub group_id: Id,
    pub period: String,
    /// 0 for medgrid's default scheme.
    pub scheme_version: i64,
    pub scheme: String,
    pub results: String,
    pub cube_refreshed_at: Option<DateTime<Utc>>,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What is written for a new report.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub period: &'a str,
    pub scheme_version: i64,
    pub scheme: &'a str,
    pub results: &'a str,
    pub cube_refreshed_at: Option<DateTime<Utc>>,
}

type RunRow = (
    i64,
    i64,
    String,
    i64,
    String,
    String,
    Option<DateTime<Utc>>,
    Option<String>,
    DateTime<Utc>,
);

const RUN_SELECT: &str = "SELECT r.id, r.group_id, r.period, r.scheme_version, r.scheme, \
     r.results, r.cube_refreshed_at, u.username, r.created_at FROM assessment_run r \
     LEFT JOIN app_user u ON u.id = r.created_by";

fn run_of(r: RunRow) -> StoredRun {
    StoredRun {
        id: r.0,
        group_id: r.1,
        period: r.2,
        scheme_version: r.3,
        scheme: r.4,
        results: r.5,
        cube_refreshed_at: r.6,
        created_by: r.7,
        created_at: r.8,
    }
}

impl Store {
    /// Keeps the next version of a group's scheme (checked by the caller).
    pub async fn save_assessment_scheme(
        &self,
        actor: &Actor,
        group: &OrgPath,
        body: &str,
    ) -> Result<i64, StoreError> {
        let group_id = group.group.ok_or(StoreError::NotFound)?;
        write!(self, |p| {
            let mut tx = p.begin().await?;
            let (version,): (i64,) = sqlx::query_as(
                "INSERT INTO assessment_scheme (group_id, version, body, created_by, created_at) \
                 VALUES ($1, (SELECT COALESCE(MAX(version), 0) + 1 FROM assessment_scheme \
                 WHERE group_id = $1), $2, $3, $4) RETURNING version",
            )
            .bind(group_id)
            .bind(body)
            .bind(actor.user_id)
            .bind(crate::now())
            .fetch_one(&mut *tx)
            .await?;
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "assessment.scheme",
                    resource_type: "Measure",
                    resource_id: Some(format!("scheme-v{version}")),
                    target: Some(*group),
                    outcome: Outcome::Ok,
                    detail: None,
                }
            )?;
            tx.commit().await?;
            Ok(version)
        })
    }

    /// The group's latest scheme, if it wrote one.
    pub async fn assessment_scheme(
        &self,
        group_id: Id,
    ) -> Result<Option<StoredScheme>, StoreError> {
        let row: Option<(i64, i64, String, DateTime<Utc>)> = read!(self, |p| {
            sqlx::query_as(
                "SELECT group_id, version, body, created_at FROM assessment_scheme \
                 WHERE group_id = $1 ORDER BY version DESC LIMIT 1",
            )
            .bind(group_id)
            .fetch_optional(p)
            .await?
        });
        Ok(row.map(|r| StoredScheme {
            group_id: r.0,
            version: r.1,
            body: r.2,
            created_at: r.3,
        }))
    }

    /// Keeps a report, audited.
    pub async fn save_assessment_run(
        &self,
        actor: &Actor,
        group: &OrgPath,
        run: &NewRun<'_>,
    ) -> Result<Id, StoreError> {
        let group_id = group.group.ok_or(StoreError::NotFound)?;
        write!(self, |p| {
            let mut tx = p.begin().await?;
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO assessment_run (group_id, period, scheme_version, scheme, results, \
                 cube_refreshed_at, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 RETURNING id",
            )
            .bind(group_id)
            .bind(run.period)
            .bind(run.scheme_version)
            .bind(run.scheme)
            .bind(run.results)
            .bind(run.cube_refreshed_at)
            .bind(actor.user_id)
            .bind(crate::now())
            .fetch_one(&mut *tx)
            .await?;
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "assessment.run",
                    resource_type: "MeasureReport",
                    resource_id: Some(format!("assessment-{id}")),
                    target: Some(*group),
                    outcome: Outcome::Ok,
                    detail: Some(format!("{} scheme v{}", run.period, run.scheme_version)),
                }
            )?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// The group's reports, newest first.
    pub async fn assessment_runs(&self, group_id: Id) -> Result<Vec<StoredRun>, StoreError> {
        let sql = format!("{RUN_SELECT} WHERE r.group_id = $1 ORDER BY r.id DESC");
        let rows: Vec<RunRow> = read!(self, |p| sqlx::query_as(&sql)
            .bind(group_id)
            .fetch_all(p)
            .await?);
        Ok(rows.into_iter().map(run_of).collect())
    }

    pub async fn assessment_run(&self, id: Id) -> Result<StoredRun, StoreError> {
        let sql = format!("{RUN_SELECT} WHERE r.id = $1");
        let row: Option<RunRow> = read!(self, |p| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(p)
            .await?);
        row.map(run_of).ok_or(StoreError::NotFound)
    }
}
