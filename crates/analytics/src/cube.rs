//! The cube: every measure by unit, department and month, built from facts in one pass.
//!
//! The same `Builder` makes the whole cube (a full recomputation) and the part of it that
//! belongs to a few units (the refresh after new facts arrive), so the two cannot drift: the
//! refreshed cube equals a recomputation by construction, and a test checks it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;
use medgrid_domain::indicator::Month;

use rustc_hash::FxHashMap;

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

/// What a drill-through asks for: the records counted in one measure's cells over some
/// months, for the unit as a whole or one department.
#[derive(Debug, Clone)]
pub struct Trace {
    pub measure: Measure,
    pub first: Month,
    pub last: Month,
    pub department: Option<String>,
}

/// The measures kept per department too, in the order of a department's cells.
const DEPARTMENT_MEASURES: [Measure; 3] = [
    Measure::ClinicVisits,
    Measure::Discharges,
    Measure::InpatientDays,
];

fn department_slot(measure: Measure) -> Option<usize> {
    DEPARTMENT_MEASURES.iter().position(|m| *m == measure)
}

/// Ids below this are indexed by a vector rather than a map: registry and fact ids are
/// dense sequences, and a vector lookup is one memory access where a map is several.
const DENSE_IDS: i64 = 1 << 26;

/// Resident ids to slots.
#[derive(Debug, Default)]
struct IdIndex {
    dense: Vec<u32>,
    sparse: FxHashMap<i64, u32>,
}

impl IdIndex {
    const NONE: u32 = u32::MAX;

    fn insert(&mut self, id: i64, slot: u32) {
        // One stray large id must not make the vector huge: dense while ids stay within a
        // few times the number of entries.
        let entries = self.dense.len() + self.sparse.len();
        match usize::try_from(id) {
            Ok(i) if id < DENSE_IDS && i <= 4 * entries + 1_000_000 => {
                if self.dense.len() <= i {
                    self.dense.resize(i + 1, Self::NONE);
                }
                self.dense[i] = slot;
            }
            _ => {
                self.sparse.insert(id, slot);
            }
        }
    }

    fn get(&self, id: i64) -> Option<u32> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.dense.get(i).copied())
            .filter(|s| *s != Self::NONE)
            .or_else(|| self.sparse.get(&id).copied())
    }
}

#[derive(Debug)]
struct ResidentState {
    id: i64,
    home: u32,
    /// From this month on the resident is a key person by age (65 or over).
    aged_from: Month,
    /// Hypertension, diabetes or another key condition: a key person whatever the age.
    key_condition: bool,
    /// (signed_on, ends_on)
    contracts: Vec<(NaiveDate, NaiveDate)>,
    /// (program, month due, done)
    follow_ups: Vec<(Program, Month, bool)>,
}

/// What every tally shares: the span, the registry's units in a dense order, which units'
/// cells are kept and what is traced.
#[derive(Debug)]
struct Shape {
    span: Span,
    months: usize,
    /// Registry ids, ascending; a unit's position is its index in the tallies.
    unit_ids: Vec<i64>,
    kinds: Vec<UnitKind>,
    keep: Vec<bool>,
    trace: Option<Trace>,
    /// The first day of the month after each month of the span: a contract counts in a month
    /// when it was signed before that day and ends on it or later, i.e. it is in force on the
    /// month's last day.
    next_firsts: Vec<NaiveDate>,
}

impl Shape {
    fn unit(&self, id: i64) -> Option<u32> {
        self.unit_ids.binary_search(&id).ok().map(|i| i as u32)
    }

    fn month(&self, month: Month) -> Option<usize> {
        usize::try_from(month.index() - self.span.first.index())
            .ok()
            .filter(|m| *m < self.months)
    }

    fn kind(&self, unit: Option<u32>) -> UnitKind {
        unit.map_or(UnitKind::Other, |u| self.kinds[u as usize])
    }
}

/// Counts made apart from the builder (on another thread, say) and added to it afterwards.
/// Every count of the cube lands in a tally; tallies add up.
#[derive(Debug)]
pub struct Tally {
    /// `[unit][month][measure]`
    cells: Vec<i64>,
    departments: FxHashMap<Box<str>, u32>,
    department_names: Vec<Box<str>>,
    /// `[department][unit][month][DEPARTMENT_MEASURES]`
    department_cells: Vec<Vec<i64>>,
    traced: BTreeSet<Record>,
}

impl Tally {
    fn new(shape: &Shape) -> Tally {
        Tally {
            cells: vec![0; shape.unit_ids.len() * shape.months * Measure::ALL.len()],
            departments: FxHashMap::default(),
            department_names: Vec::new(),
            department_cells: Vec::new(),
            traced: BTreeSet::new(),
        }
    }

    fn department(&mut self, shape: &Shape, name: &str) -> usize {
        if let Some(d) = self.departments.get(name) {
            return *d as usize;
        }
        let d = self.department_names.len();
        self.departments.insert(name.into(), d as u32);
        self.department_names.push(name.into());
        self.department_cells.push(vec![
            0;
            shape.unit_ids.len()
                * shape.months
                * DEPARTMENT_MEASURES.len()
        ]);
        d
    }

    /// Adds `other`'s counts to these.
    pub fn absorb(&mut self, other: Tally) {
        for (a, b) in self.cells.iter_mut().zip(&other.cells) {
            *a += b;
        }
        for (name, cells) in other.department_names.iter().zip(other.department_cells) {
            let d = match self.departments.get(name) {
                Some(d) => *d as usize,
                None => {
                    self.departments
                        .insert(name.clone(), self.department_names.len() as u32);
                    self.department_names.push(name.clone());
                    self.department_cells.push(vec![0; cells.len()]);
                    self.department_names.len() - 1
                }
            };
            for (a, b) in self.department_cells[d].iter_mut().zip(&cells) {
                *a += b;
            }
        }
        self.traced.extend(other.traced);
    }

    #[allow(clippy::too_many_arguments)] // one call per cell kind; a struct would only rename them
    fn add(
        &mut self,
        shape: &Shape,
        unit: u32,
        department: &str,
        month: Month,
        measure: Measure,
        n: i64,
        record: Record,
    ) {
        // The cube holds the span's months only: a stay discharged after the last month of
        // care is counted when the span reaches its month (the span grows, the cube is
        // rebuilt).
        let Some(m) = shape.month(month) else {
            return;
        };
        if n == 0 || !shape.keep[unit as usize] {
            return;
        }
        if let Some(t) = &shape.trace {
            let department_matches = match &t.department {
                None => true,
                Some(d) => measure.by_department() && d == department,
            };
            if t.measure == measure && t.first <= month && month <= t.last && department_matches {
                self.traced.insert(record);
            }
        }
        let at = unit as usize * shape.months + m;
        self.cells[at * Measure::ALL.len() + measure as usize] += n;
        if let (false, Some(slot)) = (department.is_empty(), department_slot(measure)) {
            let d = self.department(shape, department);
            self.department_cells[d][at * DEPARTMENT_MEASURES.len() + slot] += n;
        }
    }
}

/// Builds a cube from facts. Feed residents first (other facts look up where their resident
/// lives), then contracts and follow-ups, then anything in any order, then `finish`.
///
/// Encounters, referrals, prescriptions and the residents' stock measures can also be
/// counted in parallel, each thread into its own `Tally` (`count_*`), and the tallies handed
/// to `finish_with`.
pub struct Builder {
    shape: Shape,
    slots: IdIndex,
    /// Each resident's home unit by id, apart from the rest for the encounters' lookups.
    homes: IdIndex,
    residents: Vec<ResidentState>,
    tally: Tally,
}

impl Builder {
    /// `units` are the registry's units and their kind; `only`, when given, keeps the cells of
    /// those units and drops the rest (the facts fed may concern other units too). Facts at a
    /// unit the registry does not hold are not counted.
    pub fn new(span: Span, units: HashMap<i64, UnitKind>, only: Option<HashSet<i64>>) -> Builder {
        let mut unit_ids: Vec<i64> = units.keys().copied().collect();
        unit_ids.sort_unstable();
        let kinds = unit_ids.iter().map(|u| units[u]).collect();
        let keep = unit_ids
            .iter()
            .map(|u| only.as_ref().is_none_or(|o| o.contains(u)))
            .collect();
        let next_firsts = span
            .months()
            .map(|m| {
                let next = m.plus(1);
                NaiveDate::from_ymd_opt(next.year(), next.month(), 1).unwrap_or(NaiveDate::MAX)
            })
            .collect();
        let shape = Shape {
            span,
            months: span.months().count(),
            unit_ids,
            kinds,
            keep,
            trace: None,
            next_firsts,
        };
        let tally = Tally::new(&shape);
        Builder {
            shape,
            slots: IdIndex::default(),
            homes: IdIndex::default(),
            residents: Vec::new(),
            tally,
        }
    }

    /// Also collects the records counted in the traced cells (`finish_traced`).
    pub fn tracing(mut self, trace: Trace) -> Builder {
        self.shape.trace = Some(trace);
        self
    }

    /// An empty tally for counting apart.
    pub fn tally(&self) -> Tally {
        Tally::new(&self.shape)
    }

    pub fn resident(&mut self, r: ResidentFact) {
        let Some(home) = self.shape.unit(r.home_unit) else {
            return;
        };
        let slot = self.residents.len() as u32;
        self.slots.insert(r.id, slot);
        self.homes.insert(r.id, home);
        self.residents.push(ResidentState {
            id: r.id,
            home,
            // Aged 65 or over on the month's last day: born in a month at least 65 years
            // before it.
            aged_from: Month::of_date(r.birth_date).plus(65 * 12),
            key_condition: r.hypertension || r.diabetes || r.other_key_condition,
            contracts: Vec::new(),
            follow_ups: Vec::new(),
        });
    }

    fn state(&mut self, resident: i64) -> Option<&mut ResidentState> {
        let slot = self.slots.get(resident)?;
        self.residents.get_mut(slot as usize)
    }

    pub fn contract(&mut self, c: ContractFact) {
        if let Some(r) = self.state(c.resident) {
            r.contracts.push((c.signed_on, c.ends_on));
        }
    }

    pub fn follow_up(&mut self, f: FollowUpFact) {
        let month = Month::of_date(f.due_on);
        if let Some(unit) = self.shape.unit(f.managing_unit) {
            let record = Record::FollowUp(f.id);
            let t = &mut self.tally;
            t.add(
                &self.shape,
                unit,
                "",
                month,
                Measure::FollowUpsDue,
                1,
                record,
            );
            if f.done {
                t.add(
                    &self.shape,
                    unit,
                    "",
                    month,
                    Measure::FollowUpsDone,
                    1,
                    record,
                );
            }
        }
        if f.program != Program::Other {
            if let Some(r) = self.state(f.resident) {
                r.follow_ups.push((f.program, month, f.done));
            }
        }
    }

    pub fn encounter(&mut self, e: EncounterFact<'_>) {
        encounter_into(&self.shape, &self.homes, &mut self.tally, e);
    }

    pub fn referral(&mut self, r: ReferralFact<'_>) {
        referral_into(&self.shape, &mut self.tally, r);
    }

    pub fn prescription(&mut self, p: PrescriptionFact) {
        prescription_into(&self.shape, &mut self.tally, p);
    }

    pub fn count_encounter(&self, t: &mut Tally, e: EncounterFact<'_>) {
        encounter_into(&self.shape, &self.homes, t, e);
    }

    pub fn count_referral(&self, t: &mut Tally, r: ReferralFact<'_>) {
        referral_into(&self.shape, t, r);
    }

    pub fn count_prescription(&self, t: &mut Tally, p: PrescriptionFact) {
        prescription_into(&self.shape, t, p);
    }

    /// Physicians are a snapshot of the registry: counted in every month of the span.
    pub fn physician(&mut self, p: PhysicianFact) {
        let Some(unit) = self.shape.unit(p.unit) else {
            return;
        };
        let record = Record::Practitioner(p.practitioner);
        for month in self.shape.span.months() {
            let t = &mut self.tally;
            t.add(&self.shape, unit, "", month, Measure::Physicians, 1, record);
            if p.tcm {
                t.add(
                    &self.shape,
                    unit,
                    "",
                    month,
                    Measure::TcmPhysicians,
                    1,
                    record,
                );
            }
        }
    }

    /// Counts the stock measures of the residents in `range` (positions in feeding order).
    fn count_residents(&self, t: &mut Tally, range: std::ops::Range<usize>) {
        let shape = &self.shape;
        let first = shape.span.first;
        // Follow-ups due in the eleven months before the span still count in its windows.
        let window_first = first.plus(-11);
        let width = shape.months + 11;
        let mut due = vec![0i32; width];
        let mut done = vec![0i32; width];
        for r in &self.residents[range] {
            let record = Record::Resident(r.id);
            for (m, next_first) in shape.next_firsts.iter().enumerate() {
                let month = first.plus(m as i32);
                let key = r.key_condition || r.aged_from <= month;
                let contracted = r
                    .contracts
                    .iter()
                    .any(|(signed, ends)| signed < next_first && ends >= next_first);
                t.add(shape, r.home, "", month, Measure::Residents, 1, record);
                if key {
                    t.add(shape, r.home, "", month, Measure::KeyResidents, 1, record);
                }
                if contracted {
                    t.add(shape, r.home, "", month, Measure::Contracted, 1, record);
                    if key {
                        t.add(shape, r.home, "", month, Measure::KeyContracted, 1, record);
                    }
                }
            }
            if r.follow_ups.is_empty() {
                continue;
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
                // Under management in a month: a follow-up was due in the twelve months to
                // it; to standard: every one of them was done. Counted per month due, then
                // summed over a sliding window of twelve.
                due.fill(0);
                done.fill(0);
                let mut any = false;
                for (p, month, d) in &r.follow_ups {
                    let Ok(i) = usize::try_from(month.index() - window_first.index()) else {
                        continue;
                    };
                    if *p == program && i < width {
                        due[i] += 1;
                        done[i] += i32::from(*d);
                        any = true;
                    }
                }
                if !any {
                    continue;
                }
                let (mut due_in_window, mut done_in_window) = (0, 0);
                for i in 0..width {
                    due_in_window += due[i];
                    done_in_window += done[i];
                    if i >= 12 {
                        due_in_window -= due[i - 12];
                        done_in_window -= done[i - 12];
                    }
                    if i < 11 || due_in_window == 0 {
                        continue;
                    }
                    let month = window_first.plus(i as i32);
                    t.add(shape, r.home, "", month, managed, 1, record);
                    if done_in_window == due_in_window {
                        t.add(shape, r.home, "", month, standard, 1, record);
                    }
                }
            }
        }
    }

    /// Adds the stock measures of every resident and returns the cube.
    pub fn finish(self) -> Cube {
        self.finish_traced().0
    }

    /// The cube and the records counted in the traced cells, in id order by kind.
    pub fn finish_traced(self) -> (Cube, Vec<Record>) {
        self.finish_with(Vec::new(), 1)
    }

    /// The cube from the builder's own counts and `tallies` (counted apart with `count_*`),
    /// with the residents' stock measures counted here on `threads` threads; and the traced
    /// records.
    pub fn finish_with(self, mut tallies: Vec<Tally>, threads: usize) -> (Cube, Vec<Record>) {
        let threads = threads.max(1);
        let n = self.residents.len();
        let this = &self;
        let stocks: Vec<Tally> = std::thread::scope(|s| {
            let parts: Vec<_> = (0..threads)
                .map(|t| {
                    s.spawn(move || {
                        let mut tally = this.tally();
                        this.count_residents(&mut tally, n * t / threads..n * (t + 1) / threads);
                        tally
                    })
                })
                .collect();
            // A part that panicked has lost its counts: the cube would be short, so the
            // panic goes on.
            parts
                .into_iter()
                .map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        tallies.extend(stocks);
        let Builder {
            shape, mut tally, ..
        } = self;
        for t in tallies {
            tally.absorb(t);
        }
        let mut cells = BTreeMap::new();
        let measures = Measure::ALL.len();
        for (u, unit) in shape.unit_ids.iter().enumerate() {
            for m in 0..shape.months {
                let month = shape.span.first.plus(m as i32);
                let at = u * shape.months + m;
                for (i, measure) in Measure::ALL.iter().enumerate() {
                    let v = tally.cells[at * measures + i];
                    if v != 0 {
                        cells.insert(
                            Cell {
                                unit: *unit,
                                department: String::new(),
                                month,
                                measure: *measure,
                            },
                            v,
                        );
                    }
                }
                for (name, by_department) in
                    tally.department_names.iter().zip(&tally.department_cells)
                {
                    for (i, measure) in DEPARTMENT_MEASURES.iter().enumerate() {
                        let v = by_department[at * DEPARTMENT_MEASURES.len() + i];
                        if v != 0 {
                            cells.insert(
                                Cell {
                                    unit: *unit,
                                    department: name.to_string(),
                                    month,
                                    measure: *measure,
                                },
                                v,
                            );
                        }
                    }
                }
            }
        }
        (Cube { cells }, tally.traced.into_iter().collect())
    }
}

fn encounter_into(shape: &Shape, homes: &IdIndex, t: &mut Tally, e: EncounterFact<'_>) {
    let department = e.department.unwrap_or("");
    let record = Record::Encounter(e.id);
    let place = e.place_unit.and_then(|u| shape.unit(u));
    match e.kind {
        EncounterKind::Visit => {
            let month = Month::of_date(e.started_on);
            if let Some(place) = place {
                t.add(
                    shape,
                    place,
                    department,
                    month,
                    Measure::ClinicVisits,
                    1,
                    record,
                );
            }
            let Some(home) = homes.get(e.resident) else {
                return;
            };
            let primary = e.in_region && shape.kind(place) == UnitKind::Primary;
            let chronic = is_chronic(e.diagnosis);
            t.add(shape, home, "", month, Measure::Visits, 1, record);
            if e.in_region {
                t.add(shape, home, "", month, Measure::VisitsInRegion, 1, record);
                if chronic {
                    t.add(shape, home, "", month, Measure::ChronicVisits, 1, record);
                }
            }
            if primary {
                t.add(shape, home, "", month, Measure::VisitsPrimary, 1, record);
                if chronic {
                    t.add(
                        shape,
                        home,
                        "",
                        month,
                        Measure::ChronicVisitsPrimary,
                        1,
                        record,
                    );
                }
            }
        }
        EncounterKind::Inpatient => {
            let Some(place) = place else {
                return;
            };
            let month = Month::of_date(e.ended_on);
            // A same-day stay counts one bed-day, as the statistics rules have it.
            let days = (e.ended_on - e.started_on).num_days().max(1);
            t.add(
                shape,
                place,
                department,
                month,
                Measure::Discharges,
                1,
                record,
            );
            t.add(
                shape,
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

fn referral_into(shape: &Shape, t: &mut Tally, r: ReferralFact<'_>) {
    let Some(from) = shape.unit(r.from_unit) else {
        return;
    };
    let month = Month::of_date(r.requested_on);
    let record = Record::Referral(r.id);
    t.add(shape, from, "", month, Measure::Referrals, 1, record);
    if r.up {
        t.add(shape, from, "", month, Measure::ReferralsUp, 1, record);
        return;
    }
    t.add(shape, from, "", month, Measure::ReferralsDown, 1, record);
    if shape.kind(Some(from)) == UnitKind::Lead {
        t.add(
            shape,
            from,
            "",
            month,
            Measure::LeadReferralsDown,
            1,
            record,
        );
        if is_chronic(r.diagnosis) {
            t.add(
                shape,
                from,
                "",
                month,
                Measure::LeadChronicReferralsDown,
                1,
                record,
            );
        }
    }
}

fn prescription_into(shape: &Shape, t: &mut Tally, p: PrescriptionFact) {
    let Some(unit) = shape.unit(p.unit) else {
        return;
    };
    let month = Month::of_date(p.day);
    let record = Record::Prescription(p.id);
    t.add(shape, unit, "", month, Measure::RxLines, 1, record);
    if p.essential {
        t.add(shape, unit, "", month, Measure::RxEssential, 1, record);
    }
}
