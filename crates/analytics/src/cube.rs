//! The cube: every measure by unit, department and month, built from facts in one pass.
//!
//! The same `Builder` makes the whole cube (a full recomputation) and the part of it that
//! belongs to a few units (the refresh after new facts arrive), so the two cannot drift: the
//! refreshed cube equals a recomputation by construction, and a test checks it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;
use medgrid_domain::indicator::Month;

use crate::fact::*;
use crate::measure::{is_chronic, Measure};

/// One cell's address. Department is empty for the unit as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell {
    pub unit: i64,
    pub department: String,
    pub month: Month,
    pub measure: Measure,
}

/// Cells and their values. Zero cells are not kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cube {
    pub cells: BTreeMap<Cell, i64>,
}

impl Cube {
    pub fn from_cells(cells: impl IntoIterator<Item = (Cell, i64)>) -> Cube {
        Cube {
            cells: cells.into_iter().filter(|(_, v)| *v != 0).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The units the cube has any cell for.
    pub fn units(&self) -> HashSet<i64> {
        self.cells.keys().map(|c| c.unit).collect()
    }
}

/// The months stock measures are kept for, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub first: Month,
    pub last: Month,
}

impl Span {
    pub fn months(self) -> impl Iterator<Item = Month> {
        (self.first.index()..=self.last.index()).map(Month::from_index)
    }
}

#[derive(Debug, Default)]
struct ResidentState {
    home_unit: i64,
    birth_date: String,
    hypertension: bool,
    diabetes: bool,
    other_key: bool,
    /// (signed_on, ends_on)
    contracts: Vec<(String, String)>,
    /// (program, month due, done)
    follow_ups: Vec<(Program, Month, bool)>,
}

/// What a drill-through asks for: the records counted in one measure's cells over some
/// months, for the unit as a whole or one department.
#[derive(Debug, Clone)]
pub struct Trace {
    pub measure: Measure,
    pub first: Month,
    pub last: Month,
    pub department: Option<String>,
}

/// Builds a cube from facts. Feed residents first (other facts look up where their resident
/// lives), then anything in any order, then `finish`.
pub struct Builder {
    span: Span,
    units: HashMap<i64, UnitKind>,
    only: Option<HashSet<i64>>,
    residents: HashMap<i64, ResidentState>,
    cells: HashMap<(i64, String, Month, Measure), i64>,
    trace: Option<Trace>,
    traced: BTreeSet<Record>,
}

impl Builder {
    /// `units` are the registry's units and their kind; `only`, when given, keeps the cells of
    /// those units and drops the rest (the facts fed may concern other units too).
    pub fn new(span: Span, units: HashMap<i64, UnitKind>, only: Option<HashSet<i64>>) -> Builder {
        Builder {
            span,
            units,
            only,
            residents: HashMap::new(),
            cells: HashMap::new(),
            trace: None,
            traced: BTreeSet::new(),
        }
    }

    /// Also collects the records counted in the traced cells (`finish_traced`).
    pub fn tracing(mut self, trace: Trace) -> Builder {
        self.trace = Some(trace);
        self
    }

    #[allow(clippy::too_many_arguments)] // one call per cell kind; a struct would only rename them
    fn add(
        &mut self,
        unit: i64,
        department: &str,
        month: Month,
        measure: Measure,
        n: i64,
        record: Record,
    ) {
        // The cube holds the span's months only: a stay discharged after the last month of
        // care is counted when the span reaches its month (the span grows, the cube is
        // rebuilt).
        if n == 0
            || month < self.span.first
            || month > self.span.last
            || self.only.as_ref().is_some_and(|o| !o.contains(&unit))
        {
            return;
        }
        if let Some(t) = &self.trace {
            let department_matches = match &t.department {
                None => true,
                Some(d) => measure.by_department() && d == department,
            };
            if t.measure == measure && t.first <= month && month <= t.last && department_matches {
                self.traced.insert(record);
            }
        }
        *self
            .cells
            .entry((unit, String::new(), month, measure))
            .or_insert(0) += n;
        if measure.by_department() && !department.is_empty() {
            *self
                .cells
                .entry((unit, department.to_owned(), month, measure))
                .or_insert(0) += n;
        }
    }

    fn kind(&self, unit: i64) -> UnitKind {
        self.units.get(&unit).copied().unwrap_or(UnitKind::Other)
    }

    pub fn resident(&mut self, r: ResidentFact) {
        self.residents.insert(
            r.id,
            ResidentState {
                home_unit: r.home_unit,
                birth_date: r.birth_date,
                hypertension: r.hypertension,
                diabetes: r.diabetes,
                other_key: r.other_key_condition,
                ..ResidentState::default()
            },
        );
    }

    pub fn contract(&mut self, c: ContractFact) {
        if let Some(r) = self.residents.get_mut(&c.resident) {
            r.contracts.push((c.signed_on, c.ends_on));
        }
    }

    pub fn follow_up(&mut self, f: FollowUpFact) {
        let Some(month) = Month::of_day(&f.due_on) else {
            return;
        };
        let record = Record::FollowUp(f.id);
        self.add(f.managing_unit, "", month, Measure::FollowUpsDue, 1, record);
        if f.done {
            self.add(
                f.managing_unit,
                "",
                month,
                Measure::FollowUpsDone,
                1,
                record,
            );
        }
        if f.program != Program::Other {
            if let Some(r) = self.residents.get_mut(&f.resident) {
                r.follow_ups.push((f.program, month, f.done));
            }
        }
    }

    pub fn encounter(&mut self, e: EncounterFact) {
        let department = e.department.as_deref().unwrap_or("");
        let record = Record::Encounter(e.id);
        match e.kind {
            EncounterKind::Visit => {
                let Some(month) = Month::of_day(&e.started_at) else {
                    return;
                };
                if let Some(place) = e.place_unit {
                    self.add(place, department, month, Measure::ClinicVisits, 1, record);
                }
                let Some(home) = self.residents.get(&e.resident).map(|r| r.home_unit) else {
                    return;
                };
                let primary =
                    e.in_region && e.place_unit.map(|u| self.kind(u)) == Some(UnitKind::Primary);
                let chronic = is_chronic(&e.diagnosis);
                self.add(home, "", month, Measure::Visits, 1, record);
                if e.in_region {
                    self.add(home, "", month, Measure::VisitsInRegion, 1, record);
                    if chronic {
                        self.add(home, "", month, Measure::ChronicVisits, 1, record);
                    }
                }
                if primary {
                    self.add(home, "", month, Measure::VisitsPrimary, 1, record);
                    if chronic {
                        self.add(home, "", month, Measure::ChronicVisitsPrimary, 1, record);
                    }
                }
            }
            EncounterKind::Inpatient => {
                let (Some(place), Some(month)) = (e.place_unit, Month::of_day(&e.ended_at)) else {
                    return;
                };
                let day = |s: &str| NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok();
                let days = match (day(&e.started_at), day(&e.ended_at)) {
                    // A same-day stay counts one bed-day, as the statistics rules have it.
                    (Some(a), Some(b)) => (b - a).num_days().max(1),
                    _ => 1,
                };
                self.add(place, department, month, Measure::Discharges, 1, record);
                self.add(
                    place,
                    department,
                    month,
                    Measure::InpatientDays,
                    days,
                    record,
                );
            }
        }
    }

    pub fn referral(&mut self, r: ReferralFact) {
        let Some(month) = Month::of_day(&r.requested_at) else {
            return;
        };
        let record = Record::Referral(r.id);
        self.add(r.from_unit, "", month, Measure::Referrals, 1, record);
        if r.up {
            self.add(r.from_unit, "", month, Measure::ReferralsUp, 1, record);
            return;
        }
        self.add(r.from_unit, "", month, Measure::ReferralsDown, 1, record);
        if self.kind(r.from_unit) == UnitKind::Lead {
            self.add(
                r.from_unit,
                "",
                month,
                Measure::LeadReferralsDown,
                1,
                record,
            );
            if is_chronic(&r.diagnosis) {
                self.add(
                    r.from_unit,
                    "",
                    month,
                    Measure::LeadChronicReferralsDown,
                    1,
                    record,
                );
            }
        }
    }

    pub fn prescription(&mut self, p: PrescriptionFact) {
        let Some(month) = Month::of_day(&p.day) else {
            return;
        };
        let record = Record::Prescription(p.id);
        self.add(p.unit, "", month, Measure::RxLines, 1, record);
        if p.essential {
            self.add(p.unit, "", month, Measure::RxEssential, 1, record);
        }
    }

    /// Physicians are a snapshot of the registry: counted in every month of the span.
    pub fn physician(&mut self, p: PhysicianFact) {
        let record = Record::Practitioner(p.practitioner);
        for month in self.span.months() {
            self.add(p.unit, "", month, Measure::Physicians, 1, record);
            if p.tcm {
                self.add(p.unit, "", month, Measure::TcmPhysicians, 1, record);
            }
        }
    }

    /// Adds the stock measures of every resident and returns the cube.
    pub fn finish(self) -> Cube {
        self.finish_traced().0
    }

    /// The cube and the records counted in the traced cells, in id order by kind.
    pub fn finish_traced(mut self) -> (Cube, Vec<Record>) {
        let residents = std::mem::take(&mut self.residents);
        let months: Vec<(Month, String, String)> = self
            .span
            .months()
            .map(|m| {
                let next = m.plus(1);
                // Aged 65 or over on the month's last day: born before the next month's first
                // day 65 years earlier.
                let aged = format!("{:04}-{:02}-01", next.year() - 65, next.month());
                (m, next.first_day(), aged)
            })
            .collect();
        for (id, r) in &residents {
            let unit = r.home_unit;
            let record = Record::Resident(*id);
            for (month, next_first, aged_65) in &months {
                let month = *month;
                let key = r.hypertension
                    || r.diabetes
                    || r.other_key
                    || r.birth_date.as_str() < aged_65.as_str();
                let contracted = r.contracts.iter().any(|(signed, ends)| {
                    signed.as_str() < next_first.as_str() && ends.as_str() >= next_first.as_str()
                });
                self.add(unit, "", month, Measure::Residents, 1, record);
                if key {
                    self.add(unit, "", month, Measure::KeyResidents, 1, record);
                }
                if contracted {
                    self.add(unit, "", month, Measure::Contracted, 1, record);
                    if key {
                        self.add(unit, "", month, Measure::KeyContracted, 1, record);
                    }
                }
                for (program, managed, standard) in [
                    (
                        Program::Hypertension,
                        Measure::HypertensionManaged,
                        Measure::HypertensionStandard,
                    ),
                    (
                        Program::Diabetes,
                        Measure::DiabetesManaged,
                        Measure::DiabetesStandard,
                    ),
                ] {
                    // Under management: a follow-up was due in the twelve months to this one;
                    // to standard: every one of them was done.
                    let window = r.follow_ups.iter().filter(|(p, due, _)| {
                        *p == program && *due <= month && *due > month.plus(-12)
                    });
                    let (mut due, mut done) = (0, 0);
                    for (_, _, d) in window {
                        due += 1;
                        done += i64::from(*d);
                    }
                    if due > 0 {
                        self.add(unit, "", month, managed, 1, record);
                        if done == due {
                            self.add(unit, "", month, standard, 1, record);
                        }
                    }
                }
            }
        }
        let traced = std::mem::take(&mut self.traced).into_iter().collect();
        let cube = Cube::from_cells(self.cells.into_iter().map(
            |((unit, department, month, measure), v)| {
                (
                    Cell {
                        unit,
                        department,
                        month,
                        measure,
                    },
                    v,
                )
            },
        ));
        (cube, traced)
    }
}
