//! The indicator cube as stored, and the groups' own targets.
//!
//! The cube is built by `medgrid_analytics::Builder` from the facts streamed out of the
//! database. A full rebuild streams every fact; a refresh finds the facts that arrived since
//! (ids above the ones last seen) and rebuilds only the units they concern, with the same
//! builder, so the refreshed cube equals a rebuild. Ids of a PostgreSQL sequence can commit
//! out of order, so a fact whose transaction was still open during a refresh could be skipped
//! by it; the nightly rebuild (and every rebuild after a bulk load) puts such a fact in.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;
use serde::Serialize;

use medgrid_analytics::cube::Trace;
use medgrid_analytics::fact::*;
use medgrid_analytics::{Builder, Cell, Cube, Measure, Span};
use medgrid_domain::access::{Id, OrgPath};
use medgrid_domain::indicator::{Level, Month, Targets};
use medgrid_domain::org::Title;

use crate::audit::{audit_insert, AuditEntry};
use crate::{read, write, Actor, Outcome, Store, StoreError};

/// The highest id seen of each kind of fact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Seen {
    encounter: i64,
    referral: i64,
    event: i64,
    contract: i64,
    follow_up: i64,
    prescription: i64,
    practice: i64,
    resident: i64,
}

/// What a rebuild or refresh did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CubeRefresh {
    /// `true` for a rebuild of the whole cube.
    pub rebuilt: bool,
    /// Units whose cells were rebuilt.
    pub units: usize,
    /// Cells written.
    pub cells: usize,
    pub first_month: Option<String>,
    pub last_month: Option<String>,
}

/// The last cube read, with its version.
#[derive(Clone, Default)]
pub struct CubeCache(Arc<std::sync::Mutex<Option<Versioned>>>);

/// A cube and the version and last rebuild it was read at.
type Versioned = ((i64, DateTime<Utc>), Arc<Cube>);

/// `indicator_refresh` as the cube's state.
type StateRow = (String, String, DateTime<Utc>, DateTime<Utc>, i64);

/// When the cube was last rebuilt and refreshed, and the months it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CubeState {
    /// Counts every replacement of cells.
    pub version: i64,
    pub first_month: String,
    pub last_month: String,
    pub rebuilt_at: DateTime<Utc>,
    pub refreshed_at: DateTime<Utc>,
}

impl CubeState {
    /// The months covered, as the analytics crate counts them.
    pub fn span(&self) -> Option<Span> {
        Some(Span {
            first: Month::of_day(&self.first_month)?,
            last: Month::of_day(&self.last_month)?,
        })
    }
}

/// A group's own setting of an indicator's target, as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetSetting {
    pub id: Id,
    pub group_id: Id,
    pub indicator_id: String,
    pub targets: Targets,
    pub note: Option<String>,
    pub set_by: Option<String>,
    pub set_at: DateTime<Utc>,
}

type CubeRow = (i64, String, String, String, i64);

/// An encounter as streamed into the builder.
type EncounterRow = (
    i64,
    Option<i64>,
    Option<String>,
    String,
    bool,
    String,
    String,
    String,
    i64,
);

/// `indicator_refresh` as read: the months covered and the ids seen.
type RefreshRow = (String, String, i64, i64, i64, i64, i64, i64, i64, i64);

/// The day of a `YYYY-MM-DD…` day or moment as the databases render them as text.
fn day(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
}

/// Referrals `x` that were sent: past the draft, and not a draft cancelled before sending.
const SENT: &str = "x.status <> 'draft' AND NOT (x.status = 'cancelled' AND EXISTS \
    (SELECT 1 FROM referral_event e WHERE e.referral_id = x.id AND e.transition = 'cancel' \
    AND e.from_status = 'draft'))";

fn in_list(ids: &HashSet<i64>) -> String {
    let mut v: Vec<i64> = ids.iter().copied().collect();
    v.sort_unstable();
    v.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

impl Store {
    /// The months of care the facts cover, from the earliest visit, referral or follow-up to
    /// the latest (contracts signed before count from the first month on; a stay that ends
    /// after the last month is counted in its month of discharge all the same).
    async fn fact_span(&self) -> Result<Option<Span>, StoreError> {
        let row: (Option<String>, Option<String>) = read!(self, |p| {
            sqlx::query_as(
                "SELECT MIN(d), MAX(d) FROM ( \
                 SELECT CAST(MIN(started_at) AS TEXT) AS d FROM encounter \
                 UNION ALL SELECT CAST(MAX(started_at) AS TEXT) FROM encounter \
                 UNION ALL SELECT CAST(MIN(requested_at) AS TEXT) FROM referral \
                 UNION ALL SELECT CAST(MAX(requested_at) AS TEXT) FROM referral \
                 UNION ALL SELECT CAST(MIN(due_on) AS TEXT) FROM follow_up \
                 UNION ALL SELECT CAST(MAX(due_on) AS TEXT) FROM follow_up) AS days",
            )
            .fetch_one(p)
            .await?
        });
        Ok(
            match (
                row.0.as_deref().and_then(Month::of_day),
                row.1.as_deref().and_then(Month::of_day),
            ) {
                (Some(first), Some(last)) => Some(Span { first, last }),
                _ => None,
            },
        )
    }

    /// The months of the facts that arrived in `(old, seen]` (ids only: a range of primary
    /// keys, where `fact_span` reads whole tables), referrals moved by new events included.
    async fn new_facts_span(&self, old: Seen, seen: Seen) -> Result<Option<Span>, StoreError> {
        let row: (Option<String>, Option<String>) = read!(self, |p| {
            sqlx::query_as(
                "SELECT MIN(d), MAX(d) FROM ( \
                 SELECT CAST(started_at AS TEXT) AS d FROM encounter WHERE id > $1 AND id <= $2 \
                 UNION ALL SELECT CAST(requested_at AS TEXT) FROM referral \
                 WHERE id > $3 AND id <= $4 \
                 UNION ALL SELECT CAST(x.requested_at AS TEXT) FROM referral x \
                 JOIN referral_event v ON v.referral_id = x.id WHERE v.id > $5 AND v.id <= $6 \
                 UNION ALL SELECT CAST(due_on AS TEXT) FROM follow_up \
                 WHERE id > $7 AND id <= $8) AS days",
            )
            .bind(old.encounter)
            .bind(seen.encounter)
            .bind(old.referral)
            .bind(seen.referral)
            .bind(old.event)
            .bind(seen.event)
            .bind(old.follow_up)
            .bind(seen.follow_up)
            .fetch_one(p)
            .await?
        });
        Ok(
            match (
                row.0.as_deref().and_then(Month::of_day),
                row.1.as_deref().and_then(Month::of_day),
            ) {
                (Some(first), Some(last)) => Some(Span { first, last }),
                _ => None,
            },
        )
    }

    async fn seen_now(&self) -> Result<Seen, StoreError> {
        let r: (i64, i64, i64, i64, i64, i64, i64, i64) = read!(self, |p| {
            sqlx::query_as(
                "SELECT (SELECT COALESCE(MAX(id), 0) FROM encounter), \
                 (SELECT COALESCE(MAX(id), 0) FROM referral), \
                 (SELECT COALESCE(MAX(id), 0) FROM referral_event), \
                 (SELECT COALESCE(MAX(id), 0) FROM contract), \
                 (SELECT COALESCE(MAX(id), 0) FROM follow_up), \
                 (SELECT COALESCE(MAX(id), 0) FROM prescription), \
                 (SELECT COALESCE(MAX(id), 0) FROM practice_site), \
                 (SELECT COALESCE(MAX(id), 0) FROM resident)",
            )
            .fetch_one(p)
            .await?
        });
        Ok(Seen {
            encounter: r.0,
            referral: r.1,
            event: r.2,
            contract: r.3,
            follow_up: r.4,
            prescription: r.5,
            practice: r.6,
            resident: r.7,
        })
    }

    async fn unit_kinds(&self) -> Result<HashMap<i64, UnitKind>, StoreError> {
        let rows: Vec<(i64, String)> = read!(self, |p| sqlx::query_as("SELECT id, role FROM unit")
            .fetch_all(p)
            .await?);
        Ok(rows
            .into_iter()
            .map(|(id, role)| (id, UnitKind::of_role(&role)))
            .collect())
    }

    /// Builds the cube from the facts as they are now: the whole cube, or the cells of `only`
    /// those units. Nothing is stored.
    pub async fn build_cube(
        &self,
        span: Span,
        only: Option<&HashSet<i64>>,
    ) -> Result<Cube, StoreError> {
        let b = Builder::new(span, self.unit_kinds().await?, only.cloned());
        Ok(self.feed(b, only).await?.finish())
    }

    /// The records counted in one measure's cells of `units` over the traced months: what a
    /// drill-through lists. Built by the same builder as the cube, so the list and the count
    /// cannot disagree.
    pub async fn trace_records(
        &self,
        span: Span,
        units: &HashSet<i64>,
        trace: Trace,
    ) -> Result<Vec<Record>, StoreError> {
        let b = Builder::new(span, self.unit_kinds().await?, Some(units.clone())).tracing(trace);
        Ok(self.feed(b, Some(units)).await?.finish_traced().1)
    }

    /// Streams every fact `only` those units' cells need (all facts when `None`) into `b`.
    async fn feed(
        &self,
        mut b: Builder,
        only: Option<&HashSet<i64>>,
    ) -> Result<Builder, StoreError> {
        // `home` selects by where the resident lives, `place` by the unit a fact is at.
        let (home, place_or_home, referral_from, rx_unit, practice_unit) = match only {
            None => Default::default(),
            Some(units) => {
                let l = in_list(units);
                (
                    format!(" WHERE r.unit_id IN ({l})"),
                    format!(" WHERE r.unit_id IN ({l}) OR x.unit_id IN ({l})"),
                    format!(" AND x.from_unit_id IN ({l})"),
                    format!(" AND x.unit_id IN ({l})"),
                    format!(" AND ps.unit_id IN ({l})"),
                )
            }
        };
        read!(self, |p| {
            let sql = format!(
                "SELECT r.id, r.unit_id, CAST(r.birth_date AS TEXT), r.hypertension, r.diabetes, \
                 (r.severe_mental_illness OR r.maternal_risk IS NOT NULL), \
                 (r.merged_into_id IS NOT NULL) FROM resident r{home}"
            );
            let mut rows =
                sqlx::query_as::<_, (i64, i64, String, bool, bool, bool, bool)>(&sql).fetch(p);
            while let Some(r) = rows.try_next().await? {
                // A resident merged into another is that person: counted once, as the other.
                if r.6 {
                    continue;
                }
                let Some(birth_date) = day(&r.2) else {
                    continue;
                };
                b.resident(ResidentFact {
                    id: r.0,
                    home_unit: r.1,
                    birth_date,
                    hypertension: r.3,
                    diabetes: r.4,
                    other_key_condition: r.5,
                });
            }
            drop(rows);
            let sql = format!(
                "SELECT x.resident_id, CAST(x.signed_on AS TEXT), CAST(x.ends_on AS TEXT) \
                 FROM contract x JOIN resident r ON r.id = x.resident_id{home}"
            );
            let mut rows = sqlx::query_as::<_, (i64, String, String)>(&sql).fetch(p);
            while let Some(r) = rows.try_next().await? {
                let (Some(signed_on), Some(ends_on)) = (day(&r.1), day(&r.2)) else {
                    continue;
                };
                b.contract(ContractFact {
                    resident: r.0,
                    signed_on,
                    ends_on,
                });
            }
            drop(rows);
            let sql = format!(
                "SELECT x.resident_id, x.unit_id, x.program, CAST(x.due_on AS TEXT), \
                 x.done_on IS NOT NULL, x.id FROM follow_up x JOIN resident r ON r.id = x.resident_id\
                 {place_or_home}"
            );
            let mut rows =
                sqlx::query_as::<_, (i64, i64, String, String, bool, i64)>(&sql).fetch(p);
            while let Some(r) = rows.try_next().await? {
                let Some(due_on) = day(&r.3) else { continue };
                b.follow_up(FollowUpFact {
                    id: r.5,
                    resident: r.0,
                    managing_unit: r.1,
                    program: Program::parse(&r.2),
                    due_on,
                    done: r.4,
                });
            }
            drop(rows);
            let sql = format!(
                "SELECT x.resident_id, x.unit_id, x.department_code, x.kind, x.in_region, \
                 x.diagnosis, CAST(x.started_at AS TEXT), CAST(x.ended_at AS TEXT), x.id \
                 FROM encounter x JOIN resident r ON r.id = x.resident_id{place_or_home}"
            );
            let mut rows = sqlx::query_as::<_, EncounterRow>(&sql).fetch(p);
            while let Some(r) = rows.try_next().await? {
                let (Some(started_on), Some(ended_on)) = (day(&r.6), day(&r.7)) else {
                    continue;
                };
                b.encounter(EncounterFact {
                    id: r.8,
                    resident: r.0,
                    place_unit: r.1,
                    department: r.2.as_deref(),
                    kind: if r.3 == "inpatient" {
                        EncounterKind::Inpatient
                    } else {
                        EncounterKind::Visit
                    },
                    in_region: r.4,
                    diagnosis: &r.5,
                    started_on,
                    ended_on,
                });
            }
            drop(rows);
            // A live referral counts once sent; advice requests are not referrals.
            let sql = format!(
                "SELECT x.from_unit_id, x.direction, x.diagnosis, CAST(x.requested_at AS TEXT), \
                 x.id FROM referral x WHERE x.kind = 'referral' AND {SENT}{referral_from}"
            );
            let mut rows = sqlx::query_as::<_, (i64, String, String, String, i64)>(&sql).fetch(p);
            while let Some(r) = rows.try_next().await? {
                let Some(requested_on) = day(&r.3) else {
                    continue;
                };
                b.referral(ReferralFact {
                    id: r.4,
                    from_unit: r.0,
                    up: r.1 == "up",
                    diagnosis: &r.2,
                    requested_on,
                });
            }
            drop(rows);
            let sql = format!(
                "SELECT x.unit_id, CAST(e.started_at AS TEXT), x.essential, x.id FROM prescription x \
                 JOIN encounter e ON e.id = x.encounter_id WHERE x.unit_id IS NOT NULL{rx_unit}"
            );
            let mut rows = sqlx::query_as::<_, (i64, String, bool, i64)>(&sql).fetch(p);
            while let Some(r) = rows.try_next().await? {
                let Some(on) = day(&r.1) else { continue };
                b.prescription(PrescriptionFact {
                    id: r.3,
                    unit: r.0,
                    day: on,
                    essential: r.2,
                });
            }
            drop(rows);
            let sql = format!(
                "SELECT ps.unit_id, pr.title, COALESCE(d.name, ''), pr.id FROM practice_site ps \
                 JOIN practitioner pr ON pr.id = ps.practitioner_id \
                 LEFT JOIN department d ON d.id = ps.department_id \
                 WHERE ps.is_primary{practice_unit}"
            );
            let mut rows = sqlx::query_as::<_, (i64, String, String, i64)>(&sql).fetch(p);
            while let Some(r) = rows.try_next().await? {
                if Title::parse(&r.1).is_ok_and(Title::is_physician) {
                    b.physician(PhysicianFact {
                        practitioner: r.3,
                        unit: r.0,
                        tcm: r.2.contains("中医"),
                    });
                }
            }
        });
        Ok(b)
    }

    /// Rebuilds the whole cube from every fact and keeps it, replacing what was there.
    pub async fn rebuild_cube(&self, actor: &Actor) -> Result<CubeRefresh, StoreError> {
        let seen = self.seen_now().await?;
        let Some(span) = self.fact_span().await? else {
            self.replace_cube(actor, None, &Cube::default(), None, seen)
                .await?;
            return Ok(CubeRefresh {
                rebuilt: true,
                units: 0,
                cells: 0,
                first_month: None,
                last_month: None,
            });
        };
        let cube = self.build_cube(span, None).await?;
        let units = cube.units().len();
        self.replace_cube(actor, None, &cube, Some(span), seen)
            .await?;
        Ok(CubeRefresh {
            rebuilt: true,
            units,
            cells: cube.len(),
            first_month: Some(span.first.to_string()),
            last_month: Some(span.last.to_string()),
        })
    }

    /// Keeps `cube`, computed over `span` elsewhere (from the columnar files, when a
    /// recomputation outgrows the database), as the cockpit's cube, replacing what was there;
    /// audited as a rebuild. The cube must count every fact the database holds now: they are
    /// recorded as seen, and only later ones are refreshed.
    pub async fn keep_cube(
        &self,
        actor: &Actor,
        cube: &Cube,
        span: Span,
    ) -> Result<(), StoreError> {
        let seen = self.seen_now().await?;
        self.replace_cube(actor, None, cube, Some(span), seen).await
    }

    /// Brings the cube up to date with the facts that arrived since it was last refreshed:
    /// only the units they concern are rebuilt. A rebuild when there is no cube yet or the
    /// facts now cover other months.
    pub async fn refresh_cube(&self, actor: &Actor) -> Result<CubeRefresh, StoreError> {
        let state: Option<RefreshRow> = read!(self, |p| {
            sqlx::query_as(
                "SELECT first_month, last_month, encounter_seen, referral_seen, event_seen, \
                     contract_seen, follow_up_seen, prescription_seen, practice_seen, \
                     resident_seen FROM indicator_refresh WHERE id = 1",
            )
            .fetch_optional(p)
            .await?
        });
        let Some(state) = state else {
            return self.rebuild_cube(actor).await;
        };
        let old = Seen {
            encounter: state.2,
            referral: state.3,
            event: state.4,
            contract: state.5,
            follow_up: state.6,
            prescription: state.7,
            practice: state.8,
            resident: state.9,
        };
        let seen = self.seen_now().await?;
        // Nothing new (the usual case, every 20 s): one read of the highest ids, no scan.
        if seen == old {
            write!(self, |p| {
                sqlx::query("UPDATE indicator_refresh SET refreshed_at = $1 WHERE id = 1")
                    .bind(crate::now())
                    .execute(p)
                    .await?;
            });
            return Ok(CubeRefresh {
                rebuilt: false,
                units: 0,
                cells: 0,
                first_month: Some(state.0),
                last_month: Some(state.1),
            });
        }
        // Facts are never deleted, so the months covered now are the stored ones widened by
        // the new facts'; when they widen, every unit's stock months change: rebuild.
        let stored = match (Month::of_day(&state.0), Month::of_day(&state.1)) {
            (Some(first), Some(last)) => Some(Span { first, last }),
            _ => None,
        };
        let span = match (stored, self.new_facts_span(old, seen).await?) {
            (Some(s), Some(n)) => Some(Span {
                first: s.first.min(n.first),
                last: s.last.max(n.last),
            }),
            (s, n) => s.or(n),
        };
        let Some(span) = span.filter(|s| Some(*s) == stored) else {
            return self.rebuild_cube(actor).await;
        };
        let touched = self.touched_units(old, seen).await?;
        if touched.is_empty() {
            // New rows that count nowhere (a prescription without a unit, say): only note
            // them as seen. An empty unit list is not SQL PostgreSQL accepts.
            self.replace_cube(actor, Some(&touched), &Cube::default(), Some(span), seen)
                .await?;
            return Ok(CubeRefresh {
                rebuilt: false,
                units: 0,
                cells: 0,
                first_month: Some(state.0),
                last_month: Some(state.1),
            });
        }
        let cube = self.build_cube(span, Some(&touched)).await?;
        self.replace_cube(actor, Some(&touched), &cube, Some(span), seen)
            .await?;
        Ok(CubeRefresh {
            rebuilt: false,
            units: touched.len(),
            cells: cube.len(),
            first_month: Some(state.0),
            last_month: Some(state.1),
        })
    }

    /// The units whose cells facts with ids in `(old, seen]` change: where the resident
    /// lives and where the fact happened.
    async fn touched_units(&self, old: Seen, seen: Seen) -> Result<HashSet<i64>, StoreError> {
        let queries: [(&str, i64, i64); 8] = [
            (
                "SELECT r.unit_id FROM encounter x JOIN resident r ON r.id = x.resident_id \
                 WHERE x.id > $1 AND x.id <= $2 \
                 UNION SELECT x.unit_id FROM encounter x \
                 WHERE x.id > $1 AND x.id <= $2 AND x.unit_id IS NOT NULL",
                old.encounter,
                seen.encounter,
            ),
            (
                "SELECT from_unit_id FROM referral WHERE id > $1 AND id <= $2",
                old.referral,
                seen.referral,
            ),
            (
                "SELECT x.from_unit_id FROM referral x JOIN referral_event v \
                 ON v.referral_id = x.id WHERE v.id > $1 AND v.id <= $2",
                old.event,
                seen.event,
            ),
            (
                "SELECT r.unit_id FROM contract x JOIN resident r ON r.id = x.resident_id \
                 WHERE x.id > $1 AND x.id <= $2",
                old.contract,
                seen.contract,
            ),
            (
                "SELECT r.unit_id FROM follow_up x JOIN resident r ON r.id = x.resident_id \
                 WHERE x.id > $1 AND x.id <= $2 \
                 UNION SELECT x.unit_id FROM follow_up x WHERE x.id > $1 AND x.id <= $2",
                old.follow_up,
                seen.follow_up,
            ),
            (
                "SELECT unit_id FROM prescription WHERE id > $1 AND id <= $2 \
                 AND unit_id IS NOT NULL",
                old.prescription,
                seen.prescription,
            ),
            (
                "SELECT unit_id FROM practice_site WHERE id > $1 AND id <= $2",
                old.practice,
                seen.practice,
            ),
            (
                "SELECT unit_id FROM resident WHERE id > $1 AND id <= $2",
                old.resident,
                seen.resident,
            ),
        ];
        let mut units = HashSet::new();
        for (sql, from, to) in queries {
            if from == to {
                continue;
            }
            let rows: Vec<(i64,)> = read!(self, |p| sqlx::query_as(sql)
                .bind(from)
                .bind(to)
                .fetch_all(p)
                .await?);
            units.extend(rows.into_iter().map(|r| r.0));
        }
        Ok(units)
    }

    /// Replaces the cells of `units` (every cell when `None`) by `cube`'s and records what
    /// was seen, in one transaction. A rebuild is audited; a refresh is not: it rewrites
    /// derived counts every few seconds from facts whose own writes were audited, and an
    /// entry each time would bury the log's real events.
    async fn replace_cube(
        &self,
        actor: &Actor,
        units: Option<&HashSet<i64>>,
        cube: &Cube,
        span: Option<Span>,
        seen: Seen,
    ) -> Result<(), StoreError> {
        let now = crate::now();
        let (first, last) = span
            .map(|s| (s.first.to_string(), s.last.to_string()))
            .unwrap_or_default();
        let cells: Vec<(&Cell, i64)> = cube.cells.iter().map(|(c, v)| (c, *v)).collect();
        write!(self, |p| {
            let mut tx = p.begin().await?;
            if self.kind() == crate::DbKind::Postgres {
                // Two processes refreshing at once would otherwise insert the same cells.
                sqlx::query("SELECT pg_advisory_xact_lock(7261)")
                    .execute(&mut *tx)
                    .await?;
            }
            match units {
                None => {
                    sqlx::query("DELETE FROM indicator_cube")
                        .execute(&mut *tx)
                        .await?;
                }
                Some(u) if !u.is_empty() => {
                    sqlx::query(&format!(
                        "DELETE FROM indicator_cube WHERE unit_id IN ({})",
                        in_list(u)
                    ))
                    .execute(&mut *tx)
                    .await?;
                }
                Some(_) => {}
            }
            // Multi-row inserts: one statement per 500 cells keeps under both databases'
            // bind-parameter limits.
            for chunk in cells.chunks(500) {
                let mut sql = String::from(
                    "INSERT INTO indicator_cube (unit_id, department_code, month, measure, value) VALUES ",
                );
                for i in 0..chunk.len() {
                    if i > 0 {
                        sql.push(',');
                    }
                    let b = i * 5;
                    sql.push_str(&format!(
                        "(${}, ${}, ${}, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5
                    ));
                }
                let mut q = sqlx::query(&sql);
                for (c, v) in chunk {
                    q = q
                        .bind(c.unit)
                        .bind(c.department.as_str())
                        .bind(c.month.to_string())
                        .bind(c.measure.name())
                        .bind(*v);
                }
                q.execute(&mut *tx).await?;
            }
            let rebuilt_at_sql = if units.is_none() {
                "$11"
            } else {
                "indicator_refresh.rebuilt_at"
            };
            sqlx::query(&format!(
                "INSERT INTO indicator_refresh (id, first_month, last_month, encounter_seen, \
                 referral_seen, event_seen, contract_seen, follow_up_seen, prescription_seen, \
                 practice_seen, resident_seen, rebuilt_at, refreshed_at, version) \
                 VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, 1) \
                 ON CONFLICT (id) DO UPDATE SET version = indicator_refresh.version + 1, \
                 first_month = $1, last_month = $2, \
                 encounter_seen = $3, referral_seen = $4, event_seen = $5, contract_seen = $6, \
                 follow_up_seen = $7, prescription_seen = $8, practice_seen = $9, \
                 resident_seen = $10, rebuilt_at = {rebuilt_at_sql}, refreshed_at = $11"
            ))
            .bind(&first)
            .bind(&last)
            .bind(seen.encounter)
            .bind(seen.referral)
            .bind(seen.event)
            .bind(seen.contract)
            .bind(seen.follow_up)
            .bind(seen.prescription)
            .bind(seen.practice)
            .bind(seen.resident)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if units.is_none() {
                audit_insert!(
                    &mut *tx,
                    &AuditEntry {
                        actor,
                        action: "indicator.rebuild",
                        resource_type: "MeasureReport",
                        resource_id: None,
                        target: None,
                        outcome: Outcome::Ok,
                        detail: Some(format!("{} cells, {first}…{last}", cells.len())),
                    }
                )?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// When the cube was last rebuilt and refreshed; `None` before the first build.
    pub async fn cube_state(&self) -> Result<Option<CubeState>, StoreError> {
        let row: Option<StateRow> = read!(self, |p| {
            sqlx::query_as(
                "SELECT first_month, last_month, rebuilt_at, refreshed_at, version \
                 FROM indicator_refresh WHERE id = 1",
            )
            .fetch_optional(p)
            .await?
        });
        Ok(row.map(|r| CubeState {
            first_month: r.0,
            last_month: r.1,
            rebuilt_at: r.2,
            refreshed_at: r.3,
            version: r.4,
        }))
    }

    /// The stored cells of `units` (all when `None`) in months `[from, to]`, as of `state`
    /// (what `cube_state` read for the same page, so that its months and these cells agree):
    /// from memory when the cube has not been replaced since it was last read.
    pub async fn stored_cube(
        &self,
        state: Option<&CubeState>,
        units: Option<&HashSet<i64>>,
        from: Month,
        to: Month,
    ) -> Result<Cube, StoreError> {
        let Some(state) = state else {
            return Ok(Cube::default());
        };
        // A database restored or recreated may count versions again from the start: the
        // last rebuild tells the two apart.
        let key = (state.version, state.rebuilt_at);
        let cached = self.cube.0.lock().ok().and_then(|c| {
            c.as_ref()
                .filter(|(k, _)| *k == key)
                .map(|(_, cube)| cube.clone())
        });
        let all = match cached {
            Some(c) => c,
            None => {
                let c = Arc::new(self.read_cube().await?);
                if let Ok(mut cache) = self.cube.0.lock() {
                    // A slower reader must not put back an older cube. Cells read after a
                    // newer replacement are cached under the older key and read again at the
                    // next request: never stale for longer.
                    if cache.as_ref().is_none_or(|(k, _)| k.0 <= key.0) {
                        *cache = Some((key, c.clone()));
                    }
                }
                c
            }
        };
        Ok(Cube::from_cells(
            all.cells
                .iter()
                .filter(|(c, _)| {
                    from <= c.month && c.month <= to && units.is_none_or(|u| u.contains(&c.unit))
                })
                .map(|(c, v)| (c.clone(), *v)),
        ))
    }

    /// Every stored cell.
    async fn read_cube(&self) -> Result<Cube, StoreError> {
        let rows: Vec<CubeRow> = read!(self, |p| sqlx::query_as(
            "SELECT unit_id, department_code, month, measure, value FROM indicator_cube"
        )
        .fetch_all(p)
        .await?);
        let mut cells = Vec::with_capacity(rows.len());
        for (unit, department, month, measure, value) in rows {
            let (Some(month), Some(measure)) = (Month::of_day(&month), Measure::parse(&measure))
            else {
                return Err(StoreError::Corrupt(format!(
                    "indicator_cube row {unit}/{department}/{month}/{measure}"
                )));
            };
            cells.push((
                Cell {
                    unit,
                    department,
                    month,
                    measure,
                },
                value,
            ));
        }
        Ok(Cube::from_cells(cells))
    }

    /// Keeps a group's own target for an indicator from a month on. The caller has checked
    /// the indicator exists and the levels make sense for its direction.
    pub async fn set_indicator_target(
        &self,
        actor: &Actor,
        group: &OrgPath,
        indicator_id: &str,
        targets: &Targets,
        note: Option<&str>,
    ) -> Result<Id, StoreError> {
        let group_id = group.group.ok_or(StoreError::NotFound)?;
        write!(self, |p| {
            let mut tx = p.begin().await?;
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO indicator_target (group_id, indicator_id, from_month, target_x100, \
                 amber_x100, note, set_by, set_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 RETURNING id",
            )
            .bind(group_id)
            .bind(indicator_id)
            .bind(&targets.from)
            .bind(targets.target.0)
            .bind(targets.amber.0)
            .bind(note)
            .bind(actor.user_id)
            .bind(crate::now())
            .fetch_one(&mut *tx)
            .await?;
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "indicator.target",
                    resource_type: "Measure",
                    resource_id: Some(indicator_id.to_owned()),
                    target: Some(*group),
                    outcome: Outcome::Ok,
                    detail: Some(format!(
                        "from {}: target {}, amber {}",
                        targets.from, targets.target, targets.amber
                    )),
                }
            )?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Every target a group has set, oldest first (the history of its settings).
    pub async fn indicator_targets(&self, group_id: Id) -> Result<Vec<TargetSetting>, StoreError> {
        type Row = (
            i64,
            i64,
            String,
            String,
            i64,
            i64,
            Option<String>,
            Option<String>,
            DateTime<Utc>,
        );
        let rows: Vec<Row> = read!(self, |p| {
            sqlx::query_as(
                "SELECT t.id, t.group_id, t.indicator_id, t.from_month, t.target_x100, \
                 t.amber_x100, t.note, u.username, t.set_at FROM indicator_target t \
                 LEFT JOIN app_user u ON u.id = t.set_by WHERE t.group_id = $1 ORDER BY t.id",
            )
            .bind(group_id)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| TargetSetting {
                id: r.0,
                group_id: r.1,
                indicator_id: r.2,
                targets: Targets {
                    from: r.3,
                    target: Level(r.4),
                    amber: Level(r.5),
                },
                note: r.6,
                set_by: r.7,
                set_at: r.8,
            })
            .collect())
    }
}

/// Referrals sent from one unit to another in a period (the cockpit's flows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flow {
    pub from_unit_id: Id,
    pub to_unit_id: Id,
    pub up: bool,
    pub referrals: i64,
}

impl Store {
    /// Referrals sent in `[from, until)` that leave or reach one of `units`, counted by pair
    /// of units and direction. Drafts and advice requests are not referrals yet.
    pub async fn referral_flows(
        &self,
        units: &HashSet<i64>,
        from: chrono::NaiveDateTime,
        until: chrono::NaiveDateTime,
    ) -> Result<Vec<Flow>, StoreError> {
        if units.is_empty() {
            return Ok(Vec::new());
        }
        let l = in_list(units);
        let sql = format!(
            "SELECT from_unit_id, to_unit_id, direction, COUNT(*) FROM referral x WHERE kind = 'referral' AND {SENT} AND to_unit_id IS NOT NULL \
             AND requested_at >= $1 AND requested_at < $2 \
             AND (from_unit_id IN ({l}) OR to_unit_id IN ({l})) \
             GROUP BY from_unit_id, to_unit_id, direction \
             ORDER BY COUNT(*) DESC, from_unit_id, to_unit_id, direction"
        );
        let rows: Vec<(i64, i64, String, i64)> = read!(self, |p| sqlx::query_as(&sql)
            .bind(from)
            .bind(until)
            .fetch_all(p)
            .await?);
        Ok(rows
            .into_iter()
            .map(|r| Flow {
                from_unit_id: r.0,
                to_unit_id: r.1,
                up: r.2 == "up",
                referrals: r.3,
            })
            .collect())
    }
}

/// One record of a drill-through as people read it. The person's name is masked (脱敏): a
/// list shows who, not every letter of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordRow {
    /// `resident`, `encounter`, `referral`, `follow_up`, `prescription` or `practitioner`.
    pub kind: &'static str,
    pub id: Id,
    pub resident_id: Option<Id>,
    /// The person, masked.
    pub name: String,
    /// The day that places it in the period, `YYYY-MM-DD`.
    pub day: Option<String>,
    pub unit_id: Option<Id>,
    pub detail: String,
}

/// 张三 → 张*, 欧阳娜娜 → 欧**娜: the first character and, from three on, the last.
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    match chars.len() {
        0 => String::new(),
        1 => "*".into(),
        2 => format!("{}*", chars[0]),
        n => format!("{}{}{}", chars[0], "*".repeat(n - 2), chars[n - 1]),
    }
}

impl Store {
    /// The records of a drill-through, in the order given.
    pub async fn record_rows(&self, records: &[Record]) -> Result<Vec<RecordRow>, StoreError> {
        let ids = |pick: fn(&Record) -> Option<i64>| -> HashSet<i64> {
            records.iter().filter_map(pick).collect()
        };
        type Row = (
            i64,
            Option<i64>,
            String,
            Option<String>,
            Option<i64>,
            String,
        );
        let mut found: HashMap<(&'static str, i64), RecordRow> = HashMap::new();
        let queries: [(&'static str, HashSet<i64>, &str); 6] = [
            (
                "resident",
                ids(|r| match r {
                    Record::Resident(i) => Some(*i),
                    _ => None,
                }),
                "SELECT r.id, r.id, r.name, CAST(r.birth_date AS TEXT), r.unit_id, \
                 r.sex || ' ' || r.insurance FROM resident r WHERE r.id IN ({})",
            ),
            (
                "encounter",
                ids(|r| match r {
                    Record::Encounter(i) => Some(*i),
                    _ => None,
                }),
                "SELECT x.id, x.resident_id, r.name, CAST(x.started_at AS TEXT), x.unit_id, \
                 x.kind || ' ' || x.diagnosis || ' ' || x.diagnosis_name FROM encounter x \
                 JOIN resident r ON r.id = x.resident_id WHERE x.id IN ({})",
            ),
            (
                "referral",
                ids(|r| match r {
                    Record::Referral(i) => Some(*i),
                    _ => None,
                }),
                "SELECT x.id, x.resident_id, r.name, CAST(x.requested_at AS TEXT), x.from_unit_id, \
                 x.direction || ' ' || x.diagnosis || ' ' || x.status FROM referral x \
                 JOIN resident r ON r.id = x.resident_id WHERE x.id IN ({})",
            ),
            (
                "follow_up",
                ids(|r| match r {
                    Record::FollowUp(i) => Some(*i),
                    _ => None,
                }),
                "SELECT x.id, x.resident_id, r.name, CAST(x.due_on AS TEXT), x.unit_id, \
                 x.program || ' ' || COALESCE(CAST(x.done_on AS TEXT), 'missed') FROM follow_up x \
                 JOIN resident r ON r.id = x.resident_id WHERE x.id IN ({})",
            ),
            (
                "prescription",
                ids(|r| match r {
                    Record::Prescription(i) => Some(*i),
                    _ => None,
                }),
                "SELECT x.id, x.resident_id, r.name, CAST(e.started_at AS TEXT), x.unit_id, \
                 x.drug_code || ' ' || x.drug_name FROM prescription x \
                 JOIN encounter e ON e.id = x.encounter_id \
                 JOIN resident r ON r.id = x.resident_id WHERE x.id IN ({})",
            ),
            (
                "practitioner",
                ids(|r| match r {
                    Record::Practitioner(i) => Some(*i),
                    _ => None,
                }),
                "SELECT p.id, CAST(NULL AS BIGINT), p.name, CAST(NULL AS TEXT), \
                 (SELECT ps.unit_id FROM practice_site ps WHERE ps.practitioner_id = p.id \
                 AND ps.is_primary), p.title FROM practitioner p WHERE p.id IN ({})",
            ),
        ];
        for (kind, set, sql) in queries {
            if set.is_empty() {
                continue;
            }
            let sql = sql.replace("{}", &in_list(&set));
            let rows: Vec<Row> = read!(self, |p| sqlx::query_as(&sql).fetch_all(p).await?);
            for r in rows {
                found.insert(
                    (kind, r.0),
                    RecordRow {
                        kind,
                        id: r.0,
                        resident_id: r.1,
                        // A practitioner is staff, shown by name; a person's name is masked.
                        name: if kind == "practitioner" {
                            r.2
                        } else {
                            mask_name(&r.2)
                        },
                        day: r.3.map(|d| d.chars().take(10).collect()),
                        unit_id: r.4,
                        detail: r.5,
                    },
                );
            }
        }
        Ok(records
            .iter()
            .filter_map(|r| {
                let key = match r {
                    Record::Resident(i) => ("resident", *i),
                    Record::Encounter(i) => ("encounter", *i),
                    Record::Referral(i) => ("referral", *i),
                    Record::FollowUp(i) => ("follow_up", *i),
                    Record::Prescription(i) => ("prescription", *i),
                    Record::Practitioner(i) => ("practitioner", *i),
                };
                found.remove(&key)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_masked() {
        assert_eq!(super::mask_name("张三"), "张*");
        assert_eq!(super::mask_name("王小明"), "王*明");
        assert_eq!(super::mask_name("欧阳娜娜"), "欧**娜");
        assert_eq!(super::mask_name("李"), "*");
    }
}
