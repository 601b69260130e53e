//! Aggregate figures of each medical group's population and care, for the home page: counts
//! only, never a patient. The indicator library (with its definitions, targets and
//! drill-down) builds on the same tables.

use serde::Serialize;

use medgrid_domain::access::Id;

use crate::{read, Store, StoreError};

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

impl Store {
    /// Figures of every group that has residents, by group id.
    pub async fn group_overviews(&self) -> Result<Vec<GroupOverview>, StoreError> {
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
