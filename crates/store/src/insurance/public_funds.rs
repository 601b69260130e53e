//! Bundled public funds (R9.4) run a quarter at a time: the year's public-health capitation
//! (the group's residents × the standard per person) with the essential-drug subsidy bundled
//! in, a quarter of it shared among the member units by the residents each serves, part
//! advanced at once and the rest released by the member's score in the group's latest
//! assessment report of that half-year. Kept as run, with the parameters and the report used.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use medgrid_domain::access::{Id, OrgPath};
use medgrid_domain::assessment::MemberScore;
use medgrid_domain::insurance::public_funds::{bundle, quarter};
use medgrid_domain::insurance::{Fen, Ppm, PPM};
use medgrid_domain::{FieldError, Invalid};

use super::{invalid, json, parsed};
use crate::audit::{audit_insert, AuditEntry};
use crate::{read, write, Actor, Outcome, Store, StoreError};

/// What a quarter is run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicFundParams {
    /// The public-health standard per resident and year, fen.
    pub per_person: Fen,
    /// The year's essential-drug subsidy, fen.
    #[serde(default)]
    pub drug_subsidy: Fen,
    /// The share of each member's part paid at once (default 70%).
    #[serde(default = "seventy_percent")]
    pub advance: Ppm,
}

fn seventy_percent() -> Ppm {
    700_000
}

/// One member's line of a quarter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberLine {
    pub unit_id: Id,
    pub unit_name: String,
    pub population: i64,
    /// Hundredths of a point; none when the member has no score in the report (nothing of
    /// the remainder is released then).
    pub score: Option<i64>,
    pub share: Fen,
    pub advance: Fen,
    pub released: Fen,
    pub withheld: Fen,
}

/// A quarter's run as kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicFundRun {
    pub id: Id,
    pub group_id: Id,
    pub year: i32,
    pub quarter: u32,
    pub seq: i32,
    pub reason: Option<String>,
    pub population: i64,
    pub year_total: Fen,
    pub quarter_total: Fen,
    pub assessment_id: Option<Id>,
    pub members: Vec<MemberLine>,
    pub parameters: PublicFundParams,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

const COLUMNS: &str = "id, group_id, year, quarter, seq, reason, population, year_total, \
    quarter_total, assessment_id, members, parameters, created_at, created_by";

macro_rules! run_from_row {
    ($r:expr) => {{
        let r = &$r;
        PublicFundRun {
            id: r.try_get("id")?,
            group_id: r.try_get("group_id")?,
            year: r.try_get("year")?,
            quarter: u32::try_from(r.try_get::<i32, _>("quarter")?).unwrap_or(0),
            seq: r.try_get("seq")?,
            reason: r.try_get("reason")?,
            population: r.try_get("population")?,
            year_total: r.try_get("year_total")?,
            quarter_total: r.try_get("quarter_total")?,
            assessment_id: r.try_get("assessment_id")?,
            members: parsed(&r.try_get::<String, _>("members")?)?,
            parameters: parsed(&r.try_get::<String, _>("parameters")?)?,
            created_at: r.try_get("created_at")?,
            created_by: r.try_get("created_by")?,
        }
    }};
}

impl Store {
    /// Runs quarter `q` (1–4) of `year` for the group. A quarter already run is refused
    /// unless `reason` says why it is run again.
    #[allow(clippy::too_many_arguments)]
    pub async fn run_public_funds(
        &self,
        actor: &Actor,
        group: OrgPath,
        year: i32,
        q: u32,
        params: &PublicFundParams,
        reason: Option<&str>,
        today: NaiveDate,
    ) -> Result<PublicFundRun, StoreError> {
        let group_id = group.group.ok_or(StoreError::NotFound)?;
        let mut inv = Invalid::default();
        if !(1..=4).contains(&q) {
            inv.push(FieldError::new(
                "quarter",
                "invalid",
                "季度须为 1–4",
                "the quarter must be 1–4",
            ));
        }
        if params.per_person <= 0 {
            inv.push(FieldError::new(
                "per_person",
                "not_positive",
                "人均标准须大于 0（单位：分）",
                "the standard per person must be more than zero (fen)",
            ));
        }
        if params.drug_subsidy < 0 {
            inv.push(FieldError::new(
                "drug_subsidy",
                "negative",
                "药品补助不能为负",
                "must not be negative",
            ));
        }
        if !(0..=PPM).contains(&params.advance) {
            inv.push(FieldError::new(
                "advance",
                "out_of_range",
                "预拨比例须在 0–100% 之间（百万分率）",
                "must be 0–100% (parts per million)",
            ));
        }
        if !inv.is_empty() {
            return Err(StoreError::Invalid(inv));
        }
        let first = NaiveDate::from_ymd_opt(year, (q - 1) * 3 + 1, 1)
            .ok_or_else(|| invalid("year", "invalid", "年份超出范围", "year out of range"))?;
        if first > today {
            return Err(invalid(
                "quarter",
                "future",
                "不能拨付尚未开始的季度",
                "a quarter that has not begun cannot be run",
            ));
        }
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        let served = self.residents_served(group_id).await?;
        if served.is_empty() {
            return Err(invalid(
                "group_id",
                "no_residents",
                "本集团尚无签约或属地居民，无从按人头拨付",
                "the group serves no residents to pay for",
            ));
        }
        let half = if q <= 2 { 1 } else { 2 };
        let report = self
            .assessment_runs(group_id)
            .await?
            .into_iter()
            .filter(|r| r.period == format!("{year}-H{half}"))
            .max_by_key(|r| r.id);
        let scores: Vec<MemberScore> = match &report {
            Some(r) => serde_json::from_str(&r.results)
                .map_err(|e| StoreError::Corrupt(format!("assessment report: {e}")))?,
            None => Vec::new(),
        };
        let score_of = |unit: Id| {
            scores
                .iter()
                .find(|s| s.member_id == unit)
                .map(|s| s.total.0.clamp(0, 10_000))
        };
        let population: i64 = served.iter().map(|s| s.2).sum();
        let year_total = bundle(population, params.per_person, params.drug_subsidy);
        let weights: Vec<i64> = served.iter().map(|s| s.2).collect();
        let unit_scores: Vec<i64> = served.iter().map(|s| score_of(s.0).unwrap_or(0)).collect();
        let parts = quarter(
            year_total,
            q as usize,
            &weights,
            params.advance,
            &unit_scores,
        );
        let members: Vec<MemberLine> = served
            .iter()
            .zip(parts)
            .map(|((unit_id, name, population), p)| MemberLine {
                unit_id: *unit_id,
                unit_name: name.clone(),
                population: *population,
                score: score_of(*unit_id),
                share: p.share,
                advance: p.advance,
                released: p.released,
                withheld: p.withheld,
            })
            .collect();
        let quarter_total: Fen = members.iter().map(|m| m.share).sum();
        let now = crate::now();
        write!(self, |p| {
            let mut tx = p.begin().await?;
            let last: Option<i32> = sqlx::query_scalar(
                "SELECT MAX(seq) FROM public_fund_run WHERE group_id = $1 AND year = $2 \
                 AND quarter = $3",
            )
            .bind(group_id)
            .bind(year)
            .bind(q as i32)
            .fetch_one(&mut *tx)
            .await?;
            let seq = match (last, reason) {
                (None, _) => 1,
                (Some(_), None) => {
                    return Err(StoreError::Conflict(FieldError::new(
                        "quarter",
                        "already_run",
                        "该季度已拨付；如需重算请写明理由",
                        "the quarter is run; give a reason to run it again",
                    )))
                }
                (Some(s), Some(_)) => s + 1,
            };
            let r = sqlx::query(&format!(
                "INSERT INTO public_fund_run (group_id, year, quarter, seq, reason, population, \
                 year_total, quarter_total, assessment_id, members, parameters, created_at, \
                 created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                 RETURNING {COLUMNS}"
            ))
            .bind(group_id)
            .bind(year)
            .bind(q as i32)
            .bind(seq)
            .bind(reason)
            .bind(population)
            .bind(year_total)
            .bind(quarter_total)
            .bind(report.as_ref().map(|r| r.id))
            .bind(json(&members)?)
            .bind(json(params)?)
            .bind(now)
            .bind(&actor.username)
            .fetch_one(&mut *tx)
            .await;
            let r = match r {
                Err(e)
                    if e.as_database_error()
                        .is_some_and(|d| d.is_unique_violation()) =>
                {
                    return Err(StoreError::Conflict(FieldError::new(
                        "quarter",
                        "already_run",
                        "该季度已由他人同时拨付，请刷新",
                        "the quarter was run by someone else meanwhile; reload",
                    )))
                }
                other => other?,
            };
            let run = run_from_row!(r);
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "insurance.public_funds.run",
                    resource_type: "PublicFundRun",
                    resource_id: Some(run.id.to_string()),
                    target: Some(group),
                    outcome: Outcome::Ok,
                    detail: Some(format!("{year}-Q{q} quarter {} fen", run.quarter_total)),
                }
            )?;
            tx.commit().await?;
            Ok(run)
        })
    }

    /// Member units with the residents each serves (merged persons counted once).
    async fn residents_served(&self, group_id: Id) -> Result<Vec<(Id, String, i64)>, StoreError> {
        read!(self, |p| {
            let rows = sqlx::query(
                "SELECT r.unit_id, u.legal_name, COUNT(*) AS residents FROM resident r \
                 JOIN unit u ON u.id = r.unit_id \
                 WHERE r.group_id = $1 AND r.merged_into_id IS NULL \
                 GROUP BY r.unit_id, u.legal_name ORDER BY r.unit_id",
            )
            .bind(group_id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push((
                    r.try_get("unit_id")?,
                    r.try_get("legal_name")?,
                    r.try_get("residents")?,
                ));
            }
            Ok(out)
        })
    }

    /// Every quarter's runs of a year, by quarter and in order.
    pub async fn public_fund_runs(
        &self,
        group_id: Id,
        year: i32,
    ) -> Result<Vec<PublicFundRun>, StoreError> {
        read!(self, |p| {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM public_fund_run WHERE group_id = $1 AND year = $2 \
                 ORDER BY quarter, seq"
            ))
            .bind(group_id)
            .bind(year)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(run_from_row!(r));
            }
            Ok(out)
        })
    }
}
