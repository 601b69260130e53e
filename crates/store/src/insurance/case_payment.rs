//! DIP runs (R9.2) over the claims in the database: a month's provisional run or the year's
//! final one, each case's numbers kept so that its payment can be traced, and totals by
//! member unit for the members' statements. Runs are kept exactly as made (triggers refuse
//! edits); a period is run again only by a further run with a reason, and the latest is in
//! force.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::Row;

use medgrid_domain::access::{Id, OrgPath};
use medgrid_domain::insurance::budget::months;
use medgrid_domain::insurance::case_payment::{Branch, CasePoints, PointValue, Points};
use medgrid_domain::insurance::dip::{self, DipCase, DipCaseResult, DipGroup, DipRule};
use medgrid_domain::insurance::Fen;
use medgrid_domain::FieldError;

use super::{fund_of, invalid, json, month_range, parsed};
use crate::audit::{audit_insert, AuditEntry};
use crate::{read, write, Actor, Outcome, Store, StoreError};

/// A DIP run as kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CasePaymentRun {
    pub id: Id,
    pub group_id: Id,
    pub year: i32,
    pub fund: String,
    /// 1–12 for a month's provisional run, 0 for the year's final run.
    pub month: u32,
    pub seq: i32,
    pub reason: Option<String>,
    pub cases: i64,
    /// The period's budget, the inpatient pool taken from it, and the reserve held back.
    pub budget: Fen,
    pub pool: Fen,
    pub reserve: Fen,
    pub total_points: Points,
    pub all_mean: Fen,
    pub gross: Fen,
    pub paid: Fen,
    /// Fen a point is worth (rounded, for people; payments use the exact fraction).
    pub fen_per_point: Fen,
    pub dip_groups: Vec<DipGroup>,
    pub rule: DipRule,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

impl CasePaymentRun {
    pub fn value(&self) -> PointValue {
        PointValue {
            available: self.pool - self.reserve,
            total_points: self.total_points,
        }
    }

    pub fn is_final(&self) -> bool {
        self.month == 0
    }
}

/// What a member unit's cases earned in a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitPayment {
    pub unit_id: Option<Id>,
    pub unit_name: String,
    pub cases: i64,
    pub points: Points,
    pub cost: Fen,
    pub gross: Fen,
    pub paid: Fen,
}

/// One case of a run, with every number its payment was made from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CasePaymentRow {
    pub claim_id: Id,
    pub unit_id: Option<Id>,
    pub dip_group: String,
    pub level: String,
    pub cost: Fen,
    pub result: DipCaseResult,
}

/// A page of a run's cases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CasePage {
    pub total: i64,
    pub cases: Vec<CasePaymentRow>,
}

const RUN_COLUMNS: &str = "id, group_id, year, fund, month, seq, reason, cases, budget, pool, \
    reserve, total_points, all_mean, gross, paid, dip_groups, parameters, created_at, created_by";

macro_rules! run_from_row {
    ($r:expr) => {{
        let r = &$r;
        let pool: Fen = r.try_get("pool")?;
        let reserve: Fen = r.try_get("reserve")?;
        let total_points: Points = r.try_get("total_points")?;
        CasePaymentRun {
            id: r.try_get("id")?,
            group_id: r.try_get("group_id")?,
            year: r.try_get("year")?,
            fund: r.try_get("fund")?,
            month: u32::try_from(r.try_get::<i32, _>("month")?).unwrap_or(0),
            seq: r.try_get("seq")?,
            reason: r.try_get("reason")?,
            cases: r.try_get("cases")?,
            budget: r.try_get("budget")?,
            pool,
            reserve,
            total_points,
            all_mean: r.try_get("all_mean")?,
            gross: r.try_get("gross")?,
            paid: r.try_get("paid")?,
            fen_per_point: PointValue {
                available: pool - reserve,
                total_points,
            }
            .fen_per_point(),
            dip_groups: parsed(&r.try_get::<String, _>("dip_groups")?)?,
            rule: parsed(&r.try_get::<String, _>("parameters")?)?,
            created_at: r.try_get("created_at")?,
            created_by: r.try_get("created_by")?,
        }
    }};
}

const CASE_COLUMNS: &str = "claim_id, unit_id, dip_group, level, cost, self_paid, group_points, \
    level_average, ratio, branch, points, coefficient, gross, paid";

fn branch_of(raw: &str) -> Result<Branch, StoreError> {
    match raw {
        "high" => Ok(Branch::High),
        "low" => Ok(Branch::Low),
        "normal" => Ok(Branch::Normal),
        other => Err(StoreError::Corrupt(format!("case payment branch {other}"))),
    }
}

fn branch_str(b: Branch) -> &'static str {
    match b {
        Branch::High => "high",
        Branch::Low => "low",
        Branch::Normal => "normal",
    }
}

macro_rules! case_from_row {
    ($r:expr) => {{
        let r = &$r;
        let claim_id: Id = r.try_get("claim_id")?;
        CasePaymentRow {
            claim_id,
            unit_id: r.try_get("unit_id")?,
            dip_group: r.try_get("dip_group")?,
            level: r.try_get("level")?,
            cost: r.try_get("cost")?,
            result: DipCaseResult {
                id: claim_id,
                group_points: r.try_get("group_points")?,
                level_average: r.try_get("level_average")?,
                case: CasePoints {
                    ratio: r.try_get("ratio")?,
                    branch: branch_of(&r.try_get::<String, _>("branch")?)?,
                    points: r.try_get("points")?,
                },
                coefficient: r.try_get("coefficient")?,
                gross: r.try_get("gross")?,
                self_paid: r.try_get("self_paid")?,
                paid: r.try_get("paid")?,
            },
        }
    }};
}

/// Rows a multi-row INSERT carries: 14 values each, under SQLite's 32,766 parameters.
const CHUNK: usize = 1_000;

/// A case as read for a run: the claim, its unit and the DIP input.
struct Claimed {
    unit_id: Option<Id>,
    case: DipCase,
}

impl Store {
    /// Runs DIP for a month (1–12, provisional) or the year (0, final) over the group's
    /// inpatient cases settled in the period at its own units. A period already run is
    /// refused unless `reason` says why it is run again.
    #[allow(clippy::too_many_arguments)]
    pub async fn run_case_payment(
        &self,
        actor: &Actor,
        group: OrgPath,
        year: i32,
        fund: &str,
        month: u32,
        reason: Option<&str>,
        today: NaiveDate,
    ) -> Result<CasePaymentRun, StoreError> {
        let group_id = group.group.ok_or(StoreError::NotFound)?;
        let fund = fund_of(fund)?;
        let (first, end) = if month == 0 {
            (month_range(year, 1)?.0, month_range(year, 12)?.1)
        } else {
            month_range(year, month)?
        };
        if month == 0 && end > today {
            return Err(invalid(
                "month",
                "year_not_over",
                "年度尚未结束，不能做年终决算；请先做月度预结算",
                "the year is not over; run the months provisionally instead",
            ));
        }
        if first > today {
            return Err(invalid(
                "month",
                "future",
                "不能结算尚未开始的月份",
                "a month that has not begun cannot be run",
            ));
        }
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if reason.is_some_and(|r| r.chars().count() > 500) {
            return Err(invalid(
                "reason",
                "too_long",
                "重算理由不超过 500 字",
                "the reason must be at most 500 characters",
            ));
        }
        let b = self.budget_of(group_id, year, fund).await?;
        let budget = if month == 0 {
            b.amount
        } else {
            months(b.amount)[month as usize - 1]
        };
        let claimed = self
            .inpatient_cases(group_id, fund.as_str(), first, end)
            .await?;
        if claimed.is_empty() {
            return Err(invalid(
                "month",
                "no_cases",
                "该期间没有本集团机构的住院病例可结算",
                "the period has no inpatient cases at the group's units",
            ));
        }
        let cases: Vec<DipCase> = claimed.iter().map(|c| c.case.clone()).collect();
        let run = dip::run(&cases, budget, &b.case_payment);
        let now = crate::now();
        write!(self, |p| {
            let mut tx = p.begin().await?;
            let last: Option<i32> = sqlx::query_scalar(
                "SELECT MAX(seq) FROM case_payment_run WHERE group_id = $1 AND year = $2 \
                 AND fund = $3 AND month = $4",
            )
            .bind(group_id)
            .bind(year)
            .bind(fund.as_str())
            .bind(month as i32)
            .fetch_one(&mut *tx)
            .await?;
            let seq = match (last, reason) {
                (None, _) => 1,
                (Some(_), None) => {
                    return Err(StoreError::Conflict(FieldError::new(
                        "month",
                        "already_run",
                        "该期间已结算；如需重算请写明理由",
                        "the period is run; give a reason to run it again",
                    )))
                }
                (Some(s), Some(_)) => s + 1,
            };
            let r = sqlx::query(&format!(
                "INSERT INTO case_payment_run (group_id, year, fund, month, seq, reason, cases, \
                 budget, pool, reserve, total_points, all_mean, gross, paid, dip_groups, \
                 parameters, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
                 $10, $11, $12, $13, $14, $15, $16, $17, $18) RETURNING {RUN_COLUMNS}"
            ))
            .bind(group_id)
            .bind(year)
            .bind(fund.as_str())
            .bind(month as i32)
            .bind(seq)
            .bind(reason)
            .bind(run.cases.len() as i64)
            .bind(budget)
            .bind(run.pool)
            .bind(run.reserve)
            .bind(run.value.total_points)
            .bind(run.all_mean)
            .bind(run.gross)
            .bind(run.paid)
            .bind(json(&run.groups)?)
            .bind(json(&b.case_payment)?)
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
                        "month",
                        "already_run",
                        "该期间已由他人同时结算，请刷新",
                        "the period was run by someone else meanwhile; reload",
                    )))
                }
                other => other?,
            };
            let kept = run_from_row!(r);
            for (chunk, results) in claimed.chunks(CHUNK).zip(run.cases.chunks(CHUNK)) {
                let rows: Vec<String> = (0..chunk.len())
                    .map(|i| {
                        let b = i * 15;
                        format!(
                            "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                            b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8,
                            b + 9, b + 10, b + 11, b + 12, b + 13, b + 14, b + 15
                        )
                    })
                    .collect();
                let sql = format!(
                    "INSERT INTO case_payment (run_id, {CASE_COLUMNS}) VALUES {}",
                    rows.join(", ")
                );
                let mut q = sqlx::query(&sql);
                for (c, r) in chunk.iter().zip(results) {
                    q = q
                        .bind(kept.id)
                        .bind(c.case.id)
                        .bind(c.unit_id)
                        .bind(&c.case.group)
                        .bind(&c.case.level)
                        .bind(c.case.cost)
                        .bind(r.self_paid)
                        .bind(r.group_points)
                        .bind(r.level_average)
                        .bind(r.case.ratio)
                        .bind(branch_str(r.case.branch))
                        .bind(r.case.points)
                        .bind(r.coefficient)
                        .bind(r.gross)
                        .bind(r.paid);
                }
                q.execute(&mut *tx).await?;
            }
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "insurance.case_payment.run",
                    resource_type: "CasePaymentRun",
                    resource_id: Some(kept.id.to_string()),
                    target: Some(group),
                    outcome: Outcome::Ok,
                    detail: Some(format!(
                        "{year}-{month:02} {} {} cases paid {} fen",
                        fund.as_str(),
                        kept.cases,
                        kept.paid
                    )),
                }
            )?;
            tx.commit().await?;
            Ok(kept)
        })
    }

    /// The group's inpatient cases with a DIP group, settled from `first` up to `end` at the
    /// group's own units, in claim order.
    async fn inpatient_cases(
        &self,
        group_id: Id,
        fund: &str,
        first: NaiveDate,
        end: NaiveDate,
    ) -> Result<Vec<Claimed>, StoreError> {
        read!(self, |p| {
            let rows = sqlx::query(
                "SELECT id, unit_id, level, dip_group, total_fen, self_paid_fen FROM claim \
                 WHERE group_id = $1 AND fund = $2 AND settled_on >= $3 AND settled_on < $4 \
                 AND in_group = $5 AND kind = 'inpatient' AND dip_group IS NOT NULL \
                 ORDER BY id",
            )
            .bind(group_id)
            .bind(fund)
            .bind(first)
            .bind(end)
            .bind(true)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(Claimed {
                    unit_id: r.try_get("unit_id")?,
                    case: DipCase {
                        id: r.try_get("id")?,
                        group: r.try_get("dip_group")?,
                        level: r.try_get("level")?,
                        cost: r.try_get("total_fen")?,
                        self_paid: r.try_get("self_paid_fen")?,
                    },
                });
            }
            Ok(out)
        })
    }

    /// Every DIP run of a year and fund: by period (months, then the year) and in order.
    pub async fn case_payment_runs(
        &self,
        group_id: Id,
        year: i32,
        fund: &str,
    ) -> Result<Vec<CasePaymentRun>, StoreError> {
        let fund = fund_of(fund)?;
        read!(self, |p| {
            let rows = sqlx::query(&format!(
                "SELECT {RUN_COLUMNS} FROM case_payment_run WHERE group_id = $1 AND year = $2 \
                 AND fund = $3 ORDER BY CASE WHEN month = 0 THEN 13 ELSE month END, seq"
            ))
            .bind(group_id)
            .bind(year)
            .bind(fund.as_str())
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(run_from_row!(r));
            }
            Ok(out)
        })
    }

    pub async fn case_payment_run(&self, id: Id) -> Result<CasePaymentRun, StoreError> {
        read!(self, |p| {
            let r = sqlx::query(&format!(
                "SELECT {RUN_COLUMNS} FROM case_payment_run WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(p)
            .await?
            .ok_or(StoreError::NotFound)?;
            Ok(run_from_row!(r))
        })
    }

    /// A run's totals by member unit, the largest payment first: the members' statements.
    pub async fn case_payment_units(&self, run_id: Id) -> Result<Vec<UnitPayment>, StoreError> {
        read!(self, |p| {
            let rows = sqlx::query(
                "SELECT c.unit_id, COALESCE(u.legal_name, '') AS unit_name, COUNT(*) AS cases, \
                 CAST(SUM(c.points) AS BIGINT) AS points, \
                 CAST(SUM(c.cost) AS BIGINT) AS cost, CAST(SUM(c.gross) AS BIGINT) AS gross, \
                 CAST(SUM(c.paid) AS BIGINT) AS paid \
                 FROM case_payment c LEFT JOIN unit u ON u.id = c.unit_id \
                 WHERE c.run_id = $1 GROUP BY c.unit_id, u.legal_name ORDER BY paid DESC, c.unit_id",
            )
            .bind(run_id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(UnitPayment {
                    unit_id: r.try_get("unit_id")?,
                    unit_name: r.try_get("unit_name")?,
                    cases: r.try_get("cases")?,
                    points: r.try_get("points")?,
                    cost: r.try_get("cost")?,
                    gross: r.try_get("gross")?,
                    paid: r.try_get("paid")?,
                });
            }
            Ok(out)
        })
    }

    /// A page of a run's cases in claim order, of one branch or all.
    pub async fn case_payments(
        &self,
        run_id: Id,
        branch: Option<Branch>,
        limit: i64,
        offset: i64,
    ) -> Result<CasePage, StoreError> {
        let branch = branch.map(branch_str);
        read!(self, |p| {
            let total: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM case_payment WHERE run_id = $1 \
                 AND (CAST($2 AS TEXT) IS NULL OR branch = $2)",
            )
            .bind(run_id)
            .bind(branch)
            .fetch_one(p)
            .await?;
            let rows = sqlx::query(&format!(
                "SELECT {CASE_COLUMNS} FROM case_payment WHERE run_id = $1 \
                 AND (CAST($2 AS TEXT) IS NULL OR branch = $2) ORDER BY claim_id LIMIT $3 OFFSET $4"
            ))
            .bind(run_id)
            .bind(branch)
            .bind(limit.clamp(1, 500))
            .bind(offset.max(0))
            .fetch_all(p)
            .await?;
            let mut cases = Vec::with_capacity(rows.len());
            for r in rows {
                cases.push(case_from_row!(r));
            }
            Ok(CasePage { total, cases })
        })
    }

    /// One case of a run.
    pub async fn case_payment(
        &self,
        run_id: Id,
        claim_id: Id,
    ) -> Result<CasePaymentRow, StoreError> {
        read!(self, |p| {
            let r = sqlx::query(&format!(
                "SELECT {CASE_COLUMNS} FROM case_payment WHERE run_id = $1 AND claim_id = $2"
            ))
            .bind(run_id)
            .bind(claim_id)
            .fetch_optional(p)
            .await?
            .ok_or(StoreError::NotFound)?;
            Ok(case_from_row!(r))
        })
    }
}

/// The steps behind one case of `run`: every number its payment was made from.
pub fn trace(run: &CasePaymentRun, row: &CasePaymentRow) -> Vec<medgrid_domain::insurance::Step> {
    let group = run
        .dip_groups
        .iter()
        .find(|g| g.code == row.dip_group)
        .cloned()
        .unwrap_or(DipGroup {
            code: row.dip_group.clone(),
            cases: 0,
            mean: 0,
            points: row.result.group_points,
        });
    dip::trace(&row.result, &group, run.all_mean, &run.value())
}
