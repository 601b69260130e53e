//! Claims imported from the bureau's file (R9): each line read and checked on its own by
//! `medgrid_domain::insurance::claims`, then against the database — the group is the one
//! named, the encounter exists and is that resident's in that group, the unit exists and
//! lies inside the group exactly when the line says so. Every problem of every line is
//! reported and nothing is written, or every line is written in one transaction. A line
//! already imported unchanged is counted and skipped, so sending a file twice is harmless;
//! one that would change a kept claim is refused.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::Row;

use medgrid_domain::access::{Id, OrgPath};
use medgrid_domain::insurance::claims::{read_claims, ClaimLine};
use medgrid_domain::insurance::Fen;
use medgrid_domain::{FieldError, Invalid};

use crate::audit::{audit_insert, AuditEntry};
use crate::{read, write, Actor, Outcome, Store, StoreError};

/// What an import did, or would do when only checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClaimImport {
    pub lines: usize,
    pub imported: usize,
    /// Lines whose claim was already kept, unchanged.
    pub unchanged: usize,
    /// The imported lines' totals.
    pub total: Fen,
    pub insurance_paid: Fen,
    /// Whether anything was written (false when only checked).
    pub written: bool,
}

/// Rows a multi-row INSERT carries: 18 values each, under SQLite's 32,766 parameters.
const CHUNK: usize = 1_000;

/// Ids per `IN (…)` lookup.
const LOOKUP: usize = 5_000;

fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A kept claim, as far as an import compares it.
#[derive(PartialEq, Eq)]
struct Kept {
    encounter_id: Id,
    resident_id: Id,
    total: Fen,
    insurance_paid: Fen,
    settled_on: chrono::NaiveDate,
}

impl Store {
    /// Imports a claims file for `group` (its code `group_code`); with `check_only`, reports
    /// what it would do and writes nothing.
    pub async fn import_claims(
        &self,
        actor: &Actor,
        group: OrgPath,
        group_code: &str,
        bytes: &[u8],
        check_only: bool,
    ) -> Result<ClaimImport, StoreError> {
        let group_id = group.group.ok_or(StoreError::NotFound)?;
        let (lines, mut problems) = read_claims(bytes)?;
        let bad =
            |problems: &mut Invalid, l: &ClaimLine, column: &str, code, zh: &str, en: &str| {
                problems.push(FieldError::new(
                    format!("line {}: {column}", l.line),
                    code,
                    zh,
                    en,
                ));
            };
        let units = self.unit_codes(group.city).await?;
        let encounters = self
            .encounter_owners(&lines.iter().map(|l| l.encounter_id).collect::<Vec<_>>())
            .await?;
        let kept = self
            .kept_claims(&lines.iter().map(|l| l.claim_id).collect::<Vec<_>>())
            .await?;
        let mut report = ClaimImport {
            lines: lines.len(),
            ..ClaimImport::default()
        };
        let mut fresh = Vec::with_capacity(lines.len());
        let mut unit_of = Vec::with_capacity(lines.len());
        for l in &lines {
            if l.group_code != group_code {
                bad(
                    &mut problems,
                    l,
                    "group_code",
                    "other_group",
                    "不是本医疗集团的编码",
                    "not this group's code",
                );
            }
            let unit = match &l.unit_code {
                None => None,
                Some(code) => match units.get(code.as_str()) {
                    None => {
                        bad(
                            &mut problems,
                            l,
                            "unit_code",
                            "not_found",
                            "机构编码不存在",
                            "no such unit in the city",
                        );
                        None
                    }
                    Some((id, unit_group)) => {
                        if (*unit_group == Some(group_id)) != l.in_group {
                            bad(
                                &mut problems,
                                l,
                                "in_group",
                                "contradicts_unit",
                                "集团内标志与机构所属集团不符",
                                "in_group contradicts the unit's group",
                            );
                        }
                        Some(*id)
                    }
                },
            };
            match encounters.get(&l.encounter_id) {
                None => bad(
                    &mut problems,
                    l,
                    "encounter_id",
                    "not_found",
                    "就诊记录不存在",
                    "no such encounter",
                ),
                Some((resident, enc_group)) => {
                    if *resident != l.resident_id || *enc_group != group_id {
                        bad(
                            &mut problems,
                            l,
                            "resident_id",
                            "not_the_encounters",
                            "与就诊记录的居民或集团不符",
                            "not the encounter's resident or group",
                        );
                    }
                }
            }
            let this = Kept {
                encounter_id: l.encounter_id,
                resident_id: l.resident_id,
                total: l.total,
                insurance_paid: l.insurance_paid,
                settled_on: l.settled_on,
            };
            match kept.get(&l.claim_id) {
                Some(k) if *k == this => report.unchanged += 1,
                Some(_) => bad(
                    &mut problems,
                    l,
                    "claim_id",
                    "exists",
                    "该结算单已导入且内容不同；已确认的结算不能改写",
                    "a claim with this number is kept with other content; kept claims are not rewritten",
                ),
                None => {
                    report.total += l.total;
                    report.insurance_paid += l.insurance_paid;
                    fresh.push(l);
                    unit_of.push(unit);
                }
            }
        }
        if !problems.is_empty() {
            // One report in the file's order: a line's own problems, then the database's.
            let line_of = |e: &FieldError| -> usize {
                e.field
                    .strip_prefix("line ")
                    .and_then(|r| r.split(':').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            };
            problems.0.sort_by_key(line_of);
            return Err(StoreError::Invalid(problems));
        }
        report.imported = fresh.len();
        if check_only || fresh.is_empty() {
            return Ok(report);
        }
        write!(self, |p| {
            let mut tx = p.begin().await?;
            for (chunk, units) in fresh.chunks(CHUNK).zip(unit_of.chunks(CHUNK)) {
                let rows: Vec<String> = (0..chunk.len())
                    .map(|i| {
                        let b = i * 17;
                        format!(
                            "({})",
                            (1..=17)
                                .map(|k| format!("${}", b + k))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    })
                    .collect();
                let sql = format!(
                    "INSERT INTO claim (id, encounter_id, resident_id, group_id, unit_id, fund, \
                     kind, level, in_group, dip_group, los_days, total_fen, eligible_fen, \
                     deductible_fen, insurance_paid_fen, self_paid_fen, settled_on) VALUES {}",
                    rows.join(", ")
                );
                let mut q = sqlx::query(&sql);
                for (l, unit) in chunk.iter().zip(units) {
                    q = q
                        .bind(l.claim_id)
                        .bind(l.encounter_id)
                        .bind(l.resident_id)
                        .bind(group_id)
                        .bind(*unit)
                        .bind(l.fund.as_str())
                        .bind(&l.kind)
                        .bind(&l.level)
                        .bind(l.in_group)
                        .bind(l.dip_group.as_deref())
                        .bind(l.los_days)
                        .bind(l.total)
                        .bind(l.eligible)
                        .bind(l.deductible)
                        .bind(l.insurance_paid)
                        .bind(l.self_paid)
                        .bind(l.settled_on);
                }
                match q.execute(&mut *tx).await {
                    Err(e)
                        if e.as_database_error()
                            .is_some_and(|d| d.is_unique_violation()) =>
                    {
                        // The same claims sent at once by someone else: theirs stand, and
                        // sending the file again finds them kept.
                        return Err(StoreError::Conflict(FieldError::new(
                            "claim_id",
                            "imported_meanwhile",
                            "这些结算单刚由他人同时导入；请重新提交以核对",
                            "these claims were imported by someone else meanwhile; send the file again to check",
                        )));
                    }
                    other => {
                        other?;
                    }
                }
            }
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "insurance.claims.import",
                    resource_type: "Claim",
                    resource_id: None,
                    target: Some(group),
                    outcome: Outcome::Ok,
                    detail: Some(format!(
                        "{} lines, {} imported, {} unchanged, {} fen",
                        report.lines, report.imported, report.unchanged, report.total
                    )),
                }
            )?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })?;
        report.written = true;
        Ok(report)
    }

    /// The group with `code`, in whichever city (codes are unique within a city; a code two
    /// cities share is refused as ambiguous).
    pub async fn group_by_code(
        &self,
        code: &str,
    ) -> Result<medgrid_domain::org::Group, StoreError> {
        let ids: Vec<Id> = read!(self, |p| {
            sqlx::query_scalar("SELECT id FROM med_group WHERE code = $1")
                .bind(code)
                .fetch_all(p)
                .await
        })?;
        match ids.as_slice() {
            [id] => self.group(*id).await,
            [] => Err(StoreError::NotFound),
            _ => Err(StoreError::Invalid(Invalid::one(FieldError::new(
                "group",
                "ambiguous",
                "多个城市有此集团编码",
                "more than one city has a group with this code",
            )))),
        }
    }

    /// The city's units by code: id and group.
    async fn unit_codes(&self, city: Id) -> Result<HashMap<String, (Id, Option<Id>)>, StoreError> {
        read!(self, |p| {
            let rows = sqlx::query("SELECT id, code, group_id FROM unit WHERE city_id = $1")
                .bind(city)
                .fetch_all(p)
                .await?;
            let mut out = HashMap::with_capacity(rows.len());
            for r in rows {
                out.insert(
                    r.try_get("code")?,
                    (r.try_get("id")?, r.try_get("group_id")?),
                );
            }
            Ok(out)
        })
    }

    /// Each named encounter's resident and group.
    async fn encounter_owners(&self, ids: &[Id]) -> Result<HashMap<Id, (Id, Id)>, StoreError> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(LOOKUP) {
            let sql = format!(
                "SELECT id, resident_id, group_id FROM encounter WHERE id IN ({})",
                placeholders(chunk.len())
            );
            read!(self, |p| {
                let mut q = sqlx::query(&sql);
                for id in chunk {
                    q = q.bind(*id);
                }
                for r in q.fetch_all(p).await? {
                    out.insert(
                        r.try_get("id")?,
                        (r.try_get("resident_id")?, r.try_get("group_id")?),
                    );
                }
                Ok::<_, StoreError>(())
            })?;
        }
        Ok(out)
    }

    /// The claims already kept under the numbers given.
    async fn kept_claims(&self, ids: &[Id]) -> Result<HashMap<Id, Kept>, StoreError> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(LOOKUP) {
            let sql = format!(
                "SELECT id, encounter_id, resident_id, total_fen, insurance_paid_fen, settled_on \
                 FROM claim WHERE id IN ({})",
                placeholders(chunk.len())
            );
            read!(self, |p| {
                let mut q = sqlx::query(&sql);
                for id in chunk {
                    q = q.bind(*id);
                }
                for r in q.fetch_all(p).await? {
                    out.insert(
                        r.try_get("id")?,
                        Kept {
                            encounter_id: r.try_get("encounter_id")?,
                            resident_id: r.try_get("resident_id")?,
                            total: r.try_get("total_fen")?,
                            insurance_paid: r.try_get("insurance_paid_fen")?,
                            settled_on: r.try_get("settled_on")?,
                        },
                    );
                }
                Ok::<_, StoreError>(())
            })?;
        }
        Ok(out)
    }
}
