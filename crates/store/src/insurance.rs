//! The group's money under the insurance global budget (R9.1): budgets with their rules,
//! monthly prepayment runs and year-end settlements, computed by the rules of
//! `medgrid_domain::insurance` from the claims in the database.
//!
//! Runs are kept exactly as computed, with the parameters they used (database triggers refuse
//! edits and deletions). A month is run once; a mistake is put right by a correcting run that
//! names the run it corrects and the reason, and the latest run of a month is the one in
//! force. The same inputs and parameters always give the same statement.

pub mod case_payment;
pub mod claims;
pub mod public_funds;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use medgrid_domain::access::{Id, OrgPath};
use medgrid_domain::insurance::budget::{self, Budget, Fund, Prepayment, PrepaymentRule};
use medgrid_domain::insurance::dip::DipRule;
use medgrid_domain::insurance::settlement::{self, SettlementRule, Statement, Year};
use medgrid_domain::insurance::{Fen, Step};
use medgrid_domain::{FieldError, Invalid};

use crate::audit::{audit_insert, AuditEntry};
use crate::{read, write, Actor, Outcome, Store, StoreError};

/// A budget as agreed for a group, year and fund, with its rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetRecord {
    pub id: Id,
    pub group_id: Id,
    pub year: i32,
    pub fund: Fund,
    pub amount: Fen,
    pub charge_outflow: bool,
    pub prepayment: PrepaymentRule,
    pub settlement: SettlementRule,
    pub case_payment: DipRule,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

impl BudgetRecord {
    fn budget(&self) -> Budget {
        Budget {
            year: self.year,
            fund: self.fund,
            amount: self.amount,
            charge_outflow: self.charge_outflow,
        }
    }
}

/// A budget as sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetDraft {
    pub year: i32,
    pub fund: String,
    /// Fen.
    pub amount: Fen,
    #[serde(default = "yes")]
    pub charge_outflow: bool,
    #[serde(default)]
    pub prepayment: Option<PrepaymentRule>,
    #[serde(default)]
    pub settlement: Option<SettlementRule>,
    #[serde(default)]
    pub case_payment: Option<DipRule>,
}

fn yes() -> bool {
    true
}

/// A monthly prepayment run as kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrepaymentRun {
    pub id: Id,
    pub group_id: Id,
    pub year: i32,
    pub fund: String,
    pub month: u32,
    pub seq: i32,
    pub corrects_id: Option<Id>,
    pub month_budget: Fen,
    pub gross: Fen,
    pub outflow: Fen,
    pub deposit: Fen,
    pub due: Fen,
    pub steps: Vec<Step>,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// A year-end settlement as kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SettlementRun {
    pub id: Id,
    pub group_id: Id,
    pub year: i32,
    pub fund: String,
    pub seq: i32,
    pub score: i64,
    pub due: Fen,
    pub statement: Statement,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// Spending of one month: in the group's units and by its residents elsewhere.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MonthSpending {
    pub month: u32,
    pub in_group: Fen,
    pub outflow: Fen,
}

pub(crate) fn invalid(field: &str, code: &'static str, zh: &str, en: &str) -> StoreError {
    StoreError::Invalid(Invalid::one(FieldError::new(field, code, zh, en)))
}

fn unknown_fund() -> FieldError {
    FieldError::new(
        "fund",
        "unknown",
        "基金须为 employee（职工医保）或 resident（城乡居民医保）",
        "must be employee or resident",
    )
}

pub(crate) fn fund_of(raw: &str) -> Result<Fund, StoreError> {
    Fund::parse(raw).ok_or_else(|| StoreError::Invalid(Invalid::one(unknown_fund())))
}

pub(crate) fn json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn parsed<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("stored rule: {e}")))
}

const BUDGET_COLUMNS: &str = "id, group_id, year, fund, amount_fen, charge_outflow, \
    prepayment_rule, settlement_rule, case_rule, updated_at, updated_by";

macro_rules! budget_from_row {
    ($r:expr) => {{
        let r = &$r;
        BudgetRecord {
            id: r.try_get("id")?,
            group_id: r.try_get("group_id")?,
            year: r.try_get("year")?,
            fund: fund_of(&r.try_get::<String, _>("fund")?)?,
            amount: r.try_get("amount_fen")?,
            charge_outflow: r.try_get("charge_outflow")?,
            prepayment: parsed(&r.try_get::<String, _>("prepayment_rule")?)?,
            settlement: parsed(&r.try_get::<String, _>("settlement_rule")?)?,
            case_payment: parsed(&r.try_get::<String, _>("case_rule")?)?,
            updated_at: r.try_get("updated_at")?,
            updated_by: r.try_get("updated_by")?,
        }
    }};
}

const RUN_COLUMNS: &str = "id, group_id, year, fund, month, seq, corrects_id, month_budget, \
    gross, outflow, deposit, due, steps, reason, created_at, created_by";

macro_rules! run_from_row {
    ($r:expr) => {{
        let r = &$r;
        PrepaymentRun {
            id: r.try_get("id")?,
            group_id: r.try_get("group_id")?,
            year: r.try_get("year")?,
            fund: r.try_get("fund")?,
            month: u32::try_from(r.try_get::<i32, _>("month")?).unwrap_or(0),
            seq: r.try_get("seq")?,
            corrects_id: r.try_get("corrects_id")?,
            month_budget: r.try_get("month_budget")?,
            gross: r.try_get("gross")?,
            outflow: r.try_get("outflow")?,
            deposit: r.try_get("deposit")?,
            due: r.try_get("due")?,
            steps: parsed(&r.try_get::<String, _>("steps")?)?,
            reason: r.try_get("reason")?,
            created_at: r.try_get("created_at")?,
            created_by: r.try_get("created_by")?,
        }
    }};
}

const SETTLEMENT_COLUMNS: &str =
    "id, group_id, year, fund, seq, score, due, statement, created_at, created_by";

macro_rules! settlement_from_row {
    ($r:expr) => {{
        let r = &$r;
        SettlementRun {
            id: r.try_get("id")?,
            group_id: r.try_get("group_id")?,
            year: r.try_get("year")?,
            fund: r.try_get("fund")?,
            seq: r.try_get("seq")?,
            score: r.try_get("score")?,
            due: r.try_get("due")?,
            statement: parsed(&r.try_get::<String, _>("statement")?)?,
            created_at: r.try_get("created_at")?,
            created_by: r.try_get("created_by")?,
        }
    }};
}

/// The first day of `month` of `year`, and of the month after.
pub(crate) fn month_range(year: i32, month: u32) -> Result<(NaiveDate, NaiveDate), StoreError> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)
        .ok_or_else(|| invalid("month", "invalid", "月份须为 1–12", "month must be 1–12"))?;
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .ok_or_else(|| invalid("year", "invalid", "年份超出范围", "year out of range"))?;
    Ok((first, next))
}

impl Store {
    /// Sets (or replaces) a group's budget for a year and fund. Runs already made keep the
    /// parameters they were made with.
    pub async fn set_budget(
        &self,
        actor: &Actor,
        group: OrgPath,
        draft: &BudgetDraft,
    ) -> Result<BudgetRecord, StoreError> {
        let mut inv = Invalid::default();
        let fund = Fund::parse(&draft.fund);
        if fund.is_none() {
            inv.push(unknown_fund());
        }
        if !(2000..=2100).contains(&draft.year) {
            inv.push(FieldError::new(
                "year",
                "out_of_range",
                "年度须在 2000–2100 之间",
                "year must be 2000–2100",
            ));
        }
        if draft.amount <= 0 {
            inv.push(FieldError::new(
                "amount",
                "not_positive",
                "预算总额须大于 0（单位：分）",
                "the budget must be more than zero (fen)",
            ));
        }
        // A rule not sent stays as it was (or takes its default): a form that edits the amount
        // must not reset what the bureau agreed through the API.
        let existing = match Fund::parse(&draft.fund) {
            Some(f) => self
                .budgets(group.group.ok_or(StoreError::NotFound)?)
                .await?
                .into_iter()
                .find(|b| b.year == draft.year && b.fund == f),
            None => None,
        };
        let prepayment = draft
            .prepayment
            .or(existing.as_ref().map(|b| b.prepayment))
            .unwrap_or_default();
        let ppm = 0..=medgrid_domain::insurance::PPM;
        if !ppm.contains(&prepayment.ratio) || !ppm.contains(&prepayment.deposit) {
            inv.push(FieldError::new(
                "prepayment",
                "out_of_range",
                "预付比例与保证金比例须在 0–100% 之间（百万分率）",
                "ratio and deposit must be 0–100% (parts per million)",
            ));
        }
        let settlement_rule = draft
            .settlement
            .clone()
            .or(existing.as_ref().map(|b| b.settlement.clone()))
            .unwrap_or_default();
        let bands_ok = |bands: &[settlement::Band]| {
            !bands.is_empty()
                && bands.last().is_some_and(|b| b.up_to.is_none())
                && bands.iter().all(|b| ppm.contains(&b.rate))
                && bands.windows(2).all(|w| {
                    matches!((w[0].up_to, w[1].up_to), (Some(a), Some(b)) if a < b)
                        || w[1].up_to.is_none()
                })
        };
        if !bands_ok(&settlement_rule.surplus) || !bands_ok(&settlement_rule.overspend) {
            inv.push(FieldError::new(
                "settlement",
                "bands",
                "分档须按上限递增、最后一档不设上限，比例在 0–100% 之间",
                "bands must rise, the last open-ended, rates within 0–100%",
            ));
        }
        let case_rule = draft
            .case_payment
            .clone()
            .or(existing.map(|b| b.case_payment))
            .unwrap_or_default();
        for (field, zh, en) in case_rule.problems() {
            inv.push(FieldError::new(field, "out_of_range", zh, en));
        }
        let (Some(fund), true) = (fund, inv.is_empty()) else {
            return Err(StoreError::Invalid(inv));
        };
        let group_id = group.group.ok_or(StoreError::NotFound)?;
        let now = crate::now();
        write!(self, |p| {
            let mut tx = p.begin().await?;
            let r = sqlx::query(&format!(
                "INSERT INTO insurance_budget (group_id, year, fund, amount_fen, charge_outflow, \
                 prepayment_rule, settlement_rule, case_rule, updated_at, updated_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (group_id, year, fund) DO UPDATE SET amount_fen = excluded.amount_fen, \
                 charge_outflow = excluded.charge_outflow, prepayment_rule = excluded.prepayment_rule, \
                 settlement_rule = excluded.settlement_rule, case_rule = excluded.case_rule, \
                 updated_at = excluded.updated_at, \
                 updated_by = excluded.updated_by RETURNING {BUDGET_COLUMNS}"
            ))
            .bind(group_id)
            .bind(draft.year)
            .bind(fund.as_str())
            .bind(draft.amount)
            .bind(draft.charge_outflow)
            .bind(json(&prepayment)?)
            .bind(json(&settlement_rule)?)
            .bind(json(&case_rule)?)
            .bind(now)
            .bind(&actor.username)
            .fetch_one(&mut *tx)
            .await?;
            let b = budget_from_row!(r);
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "insurance.budget.set",
                    resource_type: "InsuranceBudget",
                    resource_id: Some(b.id.to_string()),
                    target: Some(group),
                    outcome: Outcome::Ok,
                    detail: Some(format!("{} {} {} fen", b.year, fund.as_str(), b.amount)),
                }
            )?;
            tx.commit().await?;
            Ok(b)
        })
    }

    pub async fn budgets(&self, group_id: Id) -> Result<Vec<BudgetRecord>, StoreError> {
        read!(self, |p| {
            let rows = sqlx::query(&format!(
                "SELECT {BUDGET_COLUMNS} FROM insurance_budget WHERE group_id = $1 \
                 ORDER BY year DESC, fund"
            ))
            .bind(group_id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(budget_from_row!(r));
            }
            Ok(out)
        })
    }

    pub(crate) async fn budget_of(
        &self,
        group_id: Id,
        year: i32,
        fund: Fund,
    ) -> Result<BudgetRecord, StoreError> {
        self.budgets(group_id)
            .await?
            .into_iter()
            .find(|b| b.year == year && b.fund == fund)
            .ok_or_else(|| {
                invalid(
                    "year",
                    "no_budget",
                    "该年度该基金尚未设定预算",
                    "no budget is set for this year and fund",
                )
            })
    }

    /// The year's insurance spending month by month: in the group's units and by its
    /// residents outside the group (what the fund paid).
    pub async fn month_spending(
        &self,
        group_id: Id,
        year: i32,
        fund: &str,
    ) -> Result<Vec<MonthSpending>, StoreError> {
        let fund = fund_of(fund)?;
        let (first, _) = month_range(year, 1)?;
        let (_, end) = month_range(year, 12)?;
        self.spending_between(group_id, fund, first, end).await
    }

    /// Spending by month of the days from `first` up to `end` (months of one year).
    async fn spending_between(
        &self,
        group_id: Id,
        fund: Fund,
        first: NaiveDate,
        end: NaiveDate,
    ) -> Result<Vec<MonthSpending>, StoreError> {
        let mut out: Vec<MonthSpending> = (1..=12)
            .map(|month| MonthSpending {
                month,
                ..MonthSpending::default()
            })
            .collect();
        read!(self, |p| {
            // Read from the covering index alone: group, fund, day, place and amount.
            let rows = sqlx::query(
                "SELECT settled_on, in_group, CAST(SUM(insurance_paid_fen) AS BIGINT) AS paid FROM claim \
                 WHERE group_id = $1 AND fund = $2 AND settled_on >= $3 AND settled_on < $4 \
                 GROUP BY settled_on, in_group",
            )
            .bind(group_id)
            .bind(fund.as_str())
            .bind(first)
            .bind(end)
            .fetch_all(p)
            .await?;
            for r in rows {
                let day: NaiveDate = r.try_get("settled_on")?;
                let in_group: bool = r.try_get("in_group")?;
                let paid: i64 = r.try_get("paid")?;
                if let Some(m) = out.get_mut(day.month0() as usize) {
                    if in_group {
                        m.in_group += paid;
                    } else {
                        m.outflow += paid;
                    }
                }
            }
            Ok::<_, StoreError>(())
        })?;
        Ok(out)
    }

    /// Runs a month's prepayment. A month already run is refused unless this is a
    /// correcting run, which needs a reason and records the difference from the run in force.
    #[allow(clippy::too_many_arguments)]
    pub async fn run_prepayment(
        &self,
        actor: &Actor,
        group: OrgPath,
        year: i32,
        fund: &str,
        month: u32,
        correction: Option<&str>,
        today: NaiveDate,
    ) -> Result<PrepaymentRun, StoreError> {
        let group_id = group.group.ok_or(StoreError::NotFound)?;
        let fund = fund_of(fund)?;
        let (first, _) = month_range(year, month)?;
        if first > today {
            return Err(invalid(
                "month",
                "future",
                "不能预付尚未开始的月份",
                "a month that has not begun cannot be prepaid",
            ));
        }
        let reason = correction.map(str::trim);
        if reason.is_some_and(|r| r.is_empty() || r.chars().count() > 500) {
            return Err(invalid(
                "reason",
                "required",
                "更正须写明理由（不超过 500 字）",
                "a correction needs a reason of at most 500 characters",
            ));
        }
        let b = self.budget_of(group_id, year, fund).await?;
        let (_, next) = month_range(year, month)?;
        let spending = self.spending_between(group_id, fund, first, next).await?;
        let outflow = spending
            .get(month as usize - 1)
            .map(|m| m.outflow)
            .unwrap_or(0);
        let p = budget::prepay(&b.budget(), month, outflow, &b.prepayment);
        let parameters = json(&(&b.prepayment, b.amount, b.charge_outflow))?;
        let now = crate::now();
        write!(self, |pool| {
            let mut tx = pool.begin().await?;
            let last = sqlx::query(
                "SELECT id, seq, due FROM prepayment_run WHERE group_id = $1 AND year = $2 \
                 AND fund = $3 AND month = $4 ORDER BY seq DESC LIMIT 1",
            )
            .bind(group_id)
            .bind(year)
            .bind(fund.as_str())
            .bind(month as i32)
            .fetch_optional(&mut *tx)
            .await?;
            let (seq, corrects, previous_due) = match (&last, reason) {
                (None, None) => (1, None, None),
                (None, Some(_)) => {
                    return Err(invalid(
                        "reason",
                        "nothing_to_correct",
                        "该月尚未预付，无需更正",
                        "the month has not been run; there is nothing to correct",
                    ))
                }
                (Some(_), None) => {
                    return Err(StoreError::Conflict(FieldError::new(
                        "month",
                        "already_run",
                        "该月已预付并确认；如需调整请发起更正",
                        "the month is run and confirmed; make a correcting run instead",
                    )))
                }
                (Some(r), Some(_)) => (
                    r.try_get::<i32, _>("seq")? + 1,
                    Some(r.try_get::<Id, _>("id")?),
                    Some(r.try_get::<Fen, _>("due")?),
                ),
            };
            let Prepayment {
                month_budget,
                gross,
                outflow,
                deposit,
                due,
                mut steps,
                ..
            } = p;
            if let Some(prev) = previous_due {
                steps.push(Step::new("previous_due", "− 原预付（被更正的一次）", -prev));
                steps.push(Step::new(
                    "difference",
                    "更正差额（正数补付，负数扣回）",
                    due - prev,
                ));
            }
            let r = sqlx::query(&format!(
                "INSERT INTO prepayment_run (group_id, year, fund, month, seq, corrects_id, \
                 month_budget, gross, outflow, deposit, due, steps, parameters, reason, created_at, \
                 created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                 $15, $16) RETURNING {RUN_COLUMNS}"
            ))
            .bind(group_id)
            .bind(year)
            .bind(fund.as_str())
            .bind(month as i32)
            .bind(seq)
            .bind(corrects)
            .bind(month_budget)
            .bind(gross)
            .bind(outflow)
            .bind(deposit)
            .bind(due)
            .bind(json(&steps)?)
            .bind(&parameters)
            .bind(reason)
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
                        "该月已由他人同时预付，请刷新",
                        "the month was run by someone else meanwhile; reload",
                    )))
                }
                other => other?,
            };
            let run = run_from_row!(r);
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: if corrects.is_some() {
                        "insurance.prepayment.correct"
                    } else {
                        "insurance.prepayment.run"
                    },
                    resource_type: "PrepaymentRun",
                    resource_id: Some(run.id.to_string()),
                    target: Some(group),
                    outcome: Outcome::Ok,
                    detail: Some(format!(
                        "{year}-{month:02} {} due {} fen",
                        fund.as_str(),
                        run.due
                    )),
                }
            )?;
            tx.commit().await?;
            Ok(run)
        })
    }

    /// Every prepayment run of a year and fund, by month and then in order.
    pub async fn prepayment_runs(
        &self,
        group_id: Id,
        year: i32,
        fund: &str,
    ) -> Result<Vec<PrepaymentRun>, StoreError> {
        let fund = fund_of(fund)?;
        read!(self, |p| {
            let rows = sqlx::query(&format!(
                "SELECT {RUN_COLUMNS} FROM prepayment_run WHERE group_id = $1 AND year = $2 \
                 AND fund = $3 ORDER BY month, seq"
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

    /// Settles a year once all twelve months are prepaid: actual spending against the
    /// budget, the bands, the deposit by `score` (hundredths of a point), what is still due.
    pub async fn settle_year(
        &self,
        actor: &Actor,
        group: OrgPath,
        year: i32,
        fund: &str,
        score: i64,
    ) -> Result<SettlementRun, StoreError> {
        let group_id = group.group.ok_or(StoreError::NotFound)?;
        let fund = fund_of(fund)?;
        if !(0..=10_000).contains(&score) {
            return Err(invalid(
                "score",
                "out_of_range",
                "考核得分须在 0–100 之间",
                "the score must be 0–100",
            ));
        }
        let b = self.budget_of(group_id, year, fund).await?;
        let runs = self.prepayment_runs(group_id, year, fund.as_str()).await?;
        // The run in force for each month is its latest.
        let mut latest: Vec<Option<&PrepaymentRun>> = vec![None; 12];
        for r in &runs {
            if let Some(slot) = latest.get_mut(r.month as usize - 1) {
                *slot = Some(r);
            }
        }
        let missing: Vec<String> = latest
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_none())
            .map(|(i, _)| (i + 1).to_string())
            .collect();
        if !missing.is_empty() {
            return Err(invalid(
                "year",
                "months_missing",
                &format!("以下月份尚未预付：{}", missing.join("、")),
                &format!("months not yet prepaid: {}", missing.join(", ")),
            ));
        }
        let in_force = latest.into_iter().flatten();
        let (prepaid, deposits) = in_force.fold((0, 0), |(p, d), r| (p + r.due, d + r.deposit));
        let spending = self.month_spending(group_id, year, fund.as_str()).await?;
        let y = Year {
            budget: b.amount,
            in_group: spending.iter().map(|m| m.in_group).sum(),
            outflow: spending.iter().map(|m| m.outflow).sum(),
            charge_outflow: b.charge_outflow,
            prepaid,
            deposits,
            score,
        };
        let statement = settlement::settle(&y, &b.settlement);
        let parameters = json(&(&b.settlement, &y))?;
        let now = crate::now();
        write!(self, |p| {
            let mut tx = p.begin().await?;
            let seq: i32 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM settlement_run WHERE group_id = $1 \
                 AND year = $2 AND fund = $3",
            )
            .bind(group_id)
            .bind(year)
            .bind(fund.as_str())
            .fetch_one(&mut *tx)
            .await?;
            let r = sqlx::query(&format!(
                "INSERT INTO settlement_run (group_id, year, fund, seq, score, due, statement, \
                 parameters, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 RETURNING {SETTLEMENT_COLUMNS}"
            ))
            .bind(group_id)
            .bind(year)
            .bind(fund.as_str())
            .bind(seq)
            .bind(score)
            .bind(statement.due)
            .bind(json(&statement)?)
            .bind(&parameters)
            .bind(now)
            .bind(&actor.username)
            .fetch_one(&mut *tx)
            .await?;
            let run = settlement_from_row!(r);
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "insurance.settlement.run",
                    resource_type: "SettlementRun",
                    resource_id: Some(run.id.to_string()),
                    target: Some(group),
                    outcome: Outcome::Ok,
                    detail: Some(format!("{year} {} due {} fen", fund.as_str(), run.due)),
                }
            )?;
            tx.commit().await?;
            Ok(run)
        })
    }

    pub async fn settlements(
        &self,
        group_id: Id,
        year: i32,
        fund: &str,
    ) -> Result<Vec<SettlementRun>, StoreError> {
        let fund = fund_of(fund)?;
        read!(self, |p| {
            let rows = sqlx::query(&format!(
                "SELECT {SETTLEMENT_COLUMNS} FROM settlement_run WHERE group_id = $1 AND year = $2 \
                 AND fund = $3 ORDER BY seq DESC"
            ))
            .bind(group_id)
            .bind(year)
            .bind(fund.as_str())
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(settlement_from_row!(r));
            }
            Ok(out)
        })
    }

    pub async fn settlement(&self, id: Id) -> Result<SettlementRun, StoreError> {
        read!(self, |p| {
            let r = sqlx::query(&format!(
                "SELECT {SETTLEMENT_COLUMNS} FROM settlement_run WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(p)
            .await?
            .ok_or(StoreError::NotFound)?;
            Ok(settlement_from_row!(r))
        })
    }
}
