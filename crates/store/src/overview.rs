//! Aggregate figures of each medical group's population and care, for the home page: counts
//! only, never a patient. They are computed from the facts when a population is loaded and
//! kept in `group_figures`, so that a page view reads a handful of rows instead of scanning
//! every encounter (seconds at a few hundred thousand residents). The indicator library, with
//! its definitions, targets and drill-down, builds on the same facts.

use serde::Serialize;

use medgrid_domain::access::Id;

use crate::audit::{audit_insert, AuditEntry};
use crate::{read, write, Actor, Outcome, Store, StoreError};

/// One group's figures over all loaded activity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupOverview {
    pub group_id: Id,
    pub residents: i64,
    /// Residents with a family-doctor contract (any term).
    pub contracted: i64,
    /// Outpatient and emergency visits of the group's residents.
    pub visits: i64,
    /// Of those, at primary units (community centres, township hospitals, village clinics).
    pub primary_visits: i64,
    /// Of those, inside the city.
    pub in_region_visits: i64,
    pub admissions: i64,
    pub referrals_up: i64,
    pub referrals_down: i64,
    /// First and last day of recorded care, `YYYY-MM-DD`.
    pub first_day: Option<String>,
    pub last_day: Option<String>,
}

type Counts = (Id, i64);

/// A stored row of `group_figures`.
type Figures = (
    Id,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
);

impl From<Figures> for GroupOverview {
    fn from(f: Figures) -> GroupOverview {
        GroupOverview {
            group_id: f.0,
            residents: f.1,
            contracted: f.2,
            visits: f.3,
            primary_visits: f.4,
            in_region_visits: f.5,
            admissions: f.6,
            referrals_up: f.7,
            referrals_down: f.8,
            first_day: f.9,
            last_day: f.10,
        }
    }
}

impl Store {
    /// Figures of every group that has residents, by group id, as last computed.
    pub async fn group_overviews(&self) -> Result<Vec<GroupOverview>, StoreError> {
        let rows: Vec<Figures> = read!(self, |p| {
            sqlx::query_as(
            "SELECT group_id, residents, contracted, visits, primary_visits, in_region_visits, \
             admissions, referrals_up, referrals_down, first_day, last_day \
             FROM group_figures ORDER BY group_id"
        )
        .fetch_all(p)
        .await?
        });
        Ok(rows.into_iter().map(GroupOverview::from).collect())
    }

    /// Computes every group's figures from the facts and keeps them, replacing the last ones.
    pub async fn refresh_group_figures(&self, actor: &Actor) -> Result<usize, StoreError> {
        let figures = self.compute_group_overviews().await?;
        write!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("DELETE FROM group_figures")
                .execute(&mut *tx)
                .await?;
            for g in &figures {
                sqlx::query(
                    "INSERT INTO group_figures (group_id, residents, contracted, visits, \
                     primary_visits, in_region_visits, admissions, referrals_up, referrals_down, \
                     first_day, last_day, computed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(g.group_id)
                .bind(g.residents)
                .bind(g.contracted)
                .bind(g.visits)
                .bind(g.primary_visits)
                .bind(g.in_region_visits)
                .bind(g.admissions)
                .bind(g.referrals_up)
                .bind(g.referrals_down)
                .bind(g.first_day.as_deref())
                .bind(g.last_day.as_deref())
                .bind(crate::now())
                .execute(&mut *tx)
                .await?;
            }
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "figures.refresh",
                    resource_type: "MeasureReport",
                    resource_id: None,
                    target: None,
                    outcome: Outcome::Ok,
                    detail: Some(format!("{} groups", figures.len())),
                }
            )?;
            tx.commit().await?;
            Ok(figures.len())
        })
    }

    /// The figures as the facts give them now (scans every encounter).
    async fn compute_group_overviews(&self) -> Result<Vec<GroupOverview>, StoreError> {
        let residents: Vec<Counts> = read!(self, |p| sqlx::query_as(
            "SELECT group_id, COUNT(*) FROM resident GROUP BY group_id ORDER BY group_id"
        )
        .fetch_all(p)
        .await?);
        let contracted: Vec<Counts> = read!(self, |p| sqlx::query_as(
            "SELECT group_id, COUNT(DISTINCT resident_id) FROM contract GROUP BY group_id"
        )
        .fetch_all(p)
        .await?);
        // in_region is BOOLEAN on PostgreSQL and 0/1 on SQLite; CASE WHEN reads both.
        let visits: Vec<(Id, i64, i64, i64, i64)> = read!(self, |p| sqlx::query_as(
            "SELECT e.group_id,
                    SUM(CASE WHEN e.kind <> 'inpatient' THEN 1 ELSE 0 END),
                    SUM(CASE WHEN e.kind <> 'inpatient' AND u.role IN ('primary', 'village')
                             THEN 1 ELSE 0 END),
                    SUM(CASE WHEN e.kind <> 'inpatient' AND e.in_region THEN 1 ELSE 0 END),
                    SUM(CASE WHEN e.kind = 'inpatient' THEN 1 ELSE 0 END)
             FROM encounter e LEFT JOIN unit u ON u.id = e.unit_id
             GROUP BY e.group_id"
        )
        .fetch_all(p)
        .await?);
        let referrals: Vec<(Id, i64, i64)> = read!(self, |p| sqlx::query_as(
            "SELECT group_id,
                    SUM(CASE WHEN direction = 'up' THEN 1 ELSE 0 END),
                    SUM(CASE WHEN direction = 'down' THEN 1 ELSE 0 END)
             FROM referral GROUP BY group_id"
        )
        .fetch_all(p)
        .await?);
        let days: Option<(Option<String>, Option<String>)> = match &self.backend {
            crate::Backend::Sqlite { read, .. } => sqlx::query_as(
                "SELECT substr(MIN(started_at), 1, 10), substr(MAX(started_at), 1, 10) FROM encounter",
            )
            .fetch_optional(read)
            .await?,
            crate::Backend::Postgres(pg) => sqlx::query_as(
                "SELECT to_char(MIN(started_at), 'YYYY-MM-DD'), to_char(MAX(started_at), 'YYYY-MM-DD') FROM encounter",
            )
            .fetch_optional(pg)
            .await?,
        };
        let (first_day, last_day) = days.unwrap_or_default();
        Ok(residents
            .into_iter()
            .map(|(group_id, residents)| {
                let find = |v: &[Counts]| v.iter().find(|c| c.0 == group_id).map_or(0, |c| c.1);
                let care = visits.iter().find(|v| v.0 == group_id);
                let refs = referrals.iter().find(|r| r.0 == group_id);
                GroupOverview {
                    group_id,
                    residents,
                    contracted: find(&contracted),
                    visits: care.map_or(0, |c| c.1),
                    primary_visits: care.map_or(0, |c| c.2),
                    in_region_visits: care.map_or(0, |c| c.3),
                    admissions: care.map_or(0, |c| c.4),
                    referrals_up: refs.map_or(0, |r| r.1),
                    referrals_down: refs.map_or(0, |r| r.2),
                    first_day: first_day.clone(),
                    last_day: last_day.clone(),
                }
            })
            .collect())
    }
}
