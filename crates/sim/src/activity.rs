//! A resident's months of care: visits, admissions, referrals up and down the group, chronic
//! and maternal-child follow-ups, exams at shared centres, prescriptions and the insurance
//! claim of every encounter. Each resident draws from their own stream, so a resident's year
//! depends only on the seed and on them; the rows are written resident by resident, each
//! resident's in time order.

use std::collections::HashMap;

use chrono::{Datelike, Days, Duration, Months, NaiveDate, NaiveDateTime};

use medgrid_domain::org::layout::Layout;
use medgrid_domain::org::{CrossGridService, Level, MemberRole};

use crate::catalog::{self, Care, Drug, Dx, ExamItem};
use crate::population::{Insurance, Resident};
use crate::rng::{Rng, Weighted};
use crate::staff::{departments_for, StaffMember};
use crate::table::{Sink, SinkError, SinkExt};

/// Index of the cost and insurance tables of `catalog`: primary, secondary (and unrated),
/// tertiary, out of the region.
type Tier = usize;
const OUT_OF_REGION: Tier = 3;

/// A unit where care happens, with the traits that make it differ from its neighbours.
#[derive(Debug)]
struct Place<'a> {
    code: &'a str,
    role: MemberRole,
    tier: Tier,
    level: &'static str,
    group: Option<&'a str>,
    /// The lead hospital of its group, home of the group's shared centres.
    lead: Option<usize>,
    /// Doctors by department code (a few dozen at most: a list beats a hash); `any` when the
    /// department has none.
    doctors: Vec<(&'static str, Vec<u64>)>,
    any: Vec<u64>,
    /// How strongly residents turn to this primary unit first (1.0 = average).
    pull: f64,
    /// Month-to-month variation of that pull.
    months: Vec<f64>,
    /// Share of scheduled follow-ups done.
    diligence: f64,
    /// Share of managed patients under control.
    control: f64,
    /// Share of prescribing that chooses an essential medicine.
    essential: f64,
    /// Share of earlier results recognised instead of repeated (R6.3).
    recognition: f64,
    /// Share of eligible stays referred down after discharge.
    down_rate: f64,
}

/// The primary unit of an area and the places its residents go.
#[derive(Debug)]
struct Area {
    primary: usize,
    /// Lead hospital of the group, first, then its other hospitals.
    hospitals: Vec<usize>,
    /// Hospitals of the other groups of the city.
    elsewhere: Vec<usize>,
}

/// The city as the activity generator sees it; built once.
pub struct World<'a> {
    places: Vec<Place<'a>>,
    areas: HashMap<&'a str, Area>,
    maternal: Option<usize>,
    tcm: Vec<usize>,
    start: NaiveDate,
    end: NaiveDate,
    days: Vec<NaiveDate>,
    day_weights: Weighted,
    seed: u64,
}

/// Seasonal weight of visits by calendar month: respiratory winters, the Spring Festival
/// lull in February.
const SEASON: [f64; 12] = [
    1.10, 0.84, 1.04, 1.00, 0.98, 0.95, 0.97, 0.98, 0.98, 0.97, 1.03, 1.12,
];

fn tier_of(level: Level, role: MemberRole) -> Tier {
    match (role, level) {
        (MemberRole::Primary | MemberRole::Village, Level::Primary | Level::Unrated) => 0,
        (_, Level::Tertiary) => 2,
        (_, Level::Primary) => 0,
        _ => 1,
    }
}

impl<'a> World<'a> {
    pub fn new(
        layout: &'a Layout,
        staff: &[StaffMember],
        seed: u64,
        start: NaiveDate,
        months: u32,
    ) -> World<'a> {
        let months = months.max(1);
        let end = start
            .checked_add_months(Months::new(months))
            .unwrap_or(start + Days::new(365));
        let mut places = Vec::new();
        let mut index = HashMap::new();
        for u in &layout.units {
            let mut r = Rng::stream(seed, "place", places.len() as u64);
            let mut doctors: Vec<(&'static str, Vec<u64>)> = Vec::new();
            let mut any = Vec::new();
            for s in staff.iter().filter(|s| s.unit_code == u.code) {
                if !s.title.is_physician() {
                    continue;
                }
                any.push(s.id);
                if let Some(d) = s.department_code {
                    match doctors.iter_mut().find(|(code, _)| *code == d) {
                        Some((_, ids)) => ids.push(s.id),
                        None => doctors.push((d, vec![s.id])),
                    }
                }
            }
            let primary = matches!(u.role, MemberRole::Primary | MemberRole::Village);
            let n_months = months as usize + 1;
            index.insert(u.code.as_str(), places.len());
            places.push(Place {
                code: &u.code,
                role: u.role,
                tier: tier_of(u.level, u.role),
                level: u.level.as_str(),
                group: u.group_code.as_deref(),
                lead: None,
                doctors,
                any,
                pull: 0.75 + 0.5 * r.unit(),
                months: (0..n_months).map(|_| 0.92 + 0.16 * r.unit()).collect(),
                diligence: 0.72 + 0.24 * r.unit(),
                control: 0.55 + 0.22 * r.unit(),
                essential: if primary {
                    0.68 + 0.2 * r.unit()
                } else {
                    0.42 + 0.2 * r.unit()
                },
                recognition: 0.45 + 0.4 * r.unit(),
                down_rate: 0.22 + 0.2 * r.unit(),
            });
        }
        for i in 0..places.len() {
            places[i].lead = (0..places.len()).find(|&j| {
                places[j].role == MemberRole::Lead
                    && places[j].group.is_some()
                    && places[j].group == places[i].group
            });
        }
        let hospital = |p: &Place| {
            matches!(p.role, MemberRole::Lead | MemberRole::Secondary) && !p.any.is_empty()
        };
        let mut areas = HashMap::new();
        for (i, p) in places.iter().enumerate() {
            if p.role != MemberRole::Primary || p.group.is_none() {
                continue;
            }
            let mut hospitals: Vec<usize> = (0..places.len())
                .filter(|&j| places[j].group == p.group && hospital(&places[j]))
                .collect();
            hospitals.sort_by_key(|&j| places[j].role != MemberRole::Lead);
            let elsewhere = (0..places.len())
                .filter(|&j| places[j].group != p.group && hospital(&places[j]))
                .collect();
            areas.insert(
                p.code,
                Area {
                    primary: i,
                    hospitals,
                    elsewhere,
                },
            );
        }
        let service = |s: CrossGridService| {
            layout
                .units
                .iter()
                .filter(|u| u.services.contains(&s))
                .filter_map(|u| index.get(u.code.as_str()).copied())
                .filter(|&i| !places[i].any.is_empty())
                .collect::<Vec<usize>>()
        };
        let maternal = service(CrossGridService::MaternalChild).first().copied();
        let tcm = service(CrossGridService::TcmAlliance);
        let mut days = Vec::new();
        let mut d = start;
        while d < end {
            days.push(d);
            d = d.succ_opt().unwrap_or(end);
        }
        let day_weights = Weighted::new(days.iter().map(|d| SEASON[d.month0() as usize]));
        World {
            places,
            areas,
            maternal,
            tcm,
            start,
            end,
            days,
            day_weights,
            seed,
        }
    }

    fn month_index(&self, d: NaiveDate) -> usize {
        let m = (d.year() - self.start.year()) * 12 + d.month() as i32 - self.start.month() as i32;
        usize::try_from(m).unwrap_or(0)
    }

    /// Years since the start, for trends of the reform.
    fn years(&self, d: NaiveDate) -> f64 {
        (d - self.start).num_days() as f64 / 365.0
    }

    fn day(&self, g: &mut Rng) -> NaiveDate {
        self.days[g.weighted(&self.day_weights)]
    }
}

/// Ids given so far, table by table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    pub encounter: u64,
    pub referral: u64,
    pub follow_up: u64,
    pub exam: u64,
    pub prescription: u64,
    pub claim: u64,
}

/// The sinks of the activity tables.
pub struct Sinks<S> {
    pub encounters: S,
    pub referrals: S,
    pub follow_ups: S,
    pub exams: S,
    pub prescriptions: S,
    pub claims: S,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visit {
    Outpatient,
    Emergency,
    Inpatient,
}

impl Visit {
    fn as_str(self) -> &'static str {
        match self {
            Visit::Outpatient => "outpatient",
            Visit::Emergency => "emergency",
            Visit::Inpatient => "inpatient",
        }
    }
}

#[derive(Debug)]
struct Enc {
    start: NaiveDateTime,
    end: NaiveDateTime,
    place: Option<usize>,
    department: Option<&'static str>,
    practitioner: Option<u64>,
    visit: Visit,
    dx: &'static Dx,
    referral: Option<usize>,
    total: i64,
    chain: Chain,
    /// Within the policy scope, in fen.
    eligible: i64,
    /// Inpatient deductible owed by the patient, in fen (never above `eligible`).
    deductible: i64,
}

/// What is already decided about an encounter a referral causes.
#[derive(Debug, Clone, Copy, Default)]
struct Given {
    referral: Option<usize>,
    /// It starts after this moment.
    after: Option<NaiveDateTime>,
    department: Option<&'static str>,
}

/// How an inpatient stay stands in a referral chain, for the continuous deductible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chain {
    /// Not referred from a stay: the full deductible.
    Start,
    /// Transferred up from a stay: only the difference to the deductible already paid.
    Continued,
    /// Referred down: none.
    Down,
}

#[derive(Debug)]
struct Ref {
    up: bool,
    priority: &'static str,
    from: usize,
    from_practitioner: Option<u64>,
    to: usize,
    to_department: Option<&'static str>,
    dx: &'static Dx,
    at: NaiveDateTime,
    status: &'static str,
    source: usize,
    result: Option<usize>,
}

#[derive(Debug)]
struct FollowUp {
    program: &'static str,
    place: usize,
    due: NaiveDate,
    done: Option<NaiveDate>,
    method: Option<&'static str>,
    encounter: Option<usize>,
    systolic: Option<i64>,
    diastolic: Option<i64>,
    glucose: Option<i64>,
    controlled: Option<bool>,
}

impl FollowUp {
    /// A follow-up without measurements (child checks, maternal care).
    fn visit(
        program: &'static str,
        place: usize,
        due: NaiveDate,
        done: Option<NaiveDate>,
        method: Option<&'static str>,
        encounter: Option<usize>,
    ) -> FollowUp {
        FollowUp {
            program,
            place,
            due,
            done,
            method,
            encounter,
            systolic: None,
            diastolic: None,
            glucose: None,
            controlled: None,
        }
    }
}

#[derive(Debug)]
struct Exam {
    encounter: usize,
    item: &'static ExamItem,
    center: Option<usize>,
    ordered: NaiveDateTime,
    reported: NaiveDateTime,
    recognised: bool,
}

#[derive(Debug)]
struct Line {
    encounter: usize,
    drug: &'static Drug,
    days: i64,
    amount: i64,
}

/// One resident's rows before ids are given; reused from resident to resident.
#[derive(Default)]
pub struct Scratch {
    encs: Vec<Enc>,
    refs: Vec<Ref>,
    fus: Vec<FollowUp>,
    exams: Vec<Exam>,
    lines: Vec<Line>,
    text: String,
    order: Vec<usize>,
    rank: Vec<u64>,
}

impl Scratch {
    /// The units of the region where the last resident was seen, their home unit first,
    /// each once, at most `max`.
    pub fn units_seen<'a>(
        &self,
        world: &World<'a>,
        r: &Resident,
        max: usize,
        out: &mut Vec<&'a str>,
    ) {
        out.clear();
        if let Some(a) = world.areas.get(r.unit_code.as_str()) {
            out.push(world.places[a.primary].code);
        }
        for e in &self.encs {
            let Some(p) = e.place else { continue };
            let code = world.places[p].code;
            if out.len() < max && !out.contains(&code) {
                out.push(code);
            }
        }
    }

    fn clear(&mut self) {
        self.encs.clear();
        self.refs.clear();
        self.fus.clear();
        self.exams.clear();
        self.lines.clear();
    }
}

/// The family-doctor team a resident signed with, if any.
#[derive(Debug, Clone, Copy)]
pub struct Signed {
    pub team: u64,
    pub gp: u64,
    /// The day the contract (with its renewals) ends.
    pub until: NaiveDate,
}

fn at(day: NaiveDate, minutes: i64) -> NaiveDateTime {
    day.and_time(chrono::NaiveTime::MIN) + Duration::minutes(minutes)
}

/// A diagnosis of a list, uniformly.
fn one(g: &mut Rng, list: &'static [&'static Dx]) -> &'static Dx {
    list[g.below(list.len() as u64) as usize]
}

fn fen(yuan: f64) -> i64 {
    (yuan * 100.0).round() as i64
}

/// Generates and writes one resident's activity.
pub fn resident<S: Sink>(
    world: &World,
    r: &Resident,
    signed: Option<Signed>,
    scratch: &mut Scratch,
    ids: &mut Ids,
    out: &mut Sinks<S>,
) -> Result<(), SinkError> {
    scratch.clear();
    let Some(area) = world.areas.get(r.unit_code.as_str()) else {
        return Ok(());
    };
    let mut g = Rng::stream(world.seed, "activity", r.id);
    let mut b = Builder {
        world,
        r,
        area,
        signed,
        s: scratch,
        age: r.age_on(world.start),
    };
    b.follow_ups(&mut g);
    b.visits(&mut g);
    b.admissions(&mut g);
    b.maternity(&mut g);
    b.finish(&mut g);
    emit(world, r, signed, scratch, ids, out)
}

struct Builder<'w, 's> {
    world: &'w World<'w>,
    r: &'w Resident,
    area: &'w Area,
    signed: Option<Signed>,
    s: &'s mut Scratch,
    age: u32,
}

impl Builder<'_, '_> {
    fn place(&self, i: usize) -> &Place<'_> {
        &self.world.places[i]
    }

    fn doctor(
        &self,
        g: &mut Rng,
        place: usize,
        department: &'static str,
        day: NaiveDate,
    ) -> Option<u64> {
        let p = self.place(place);
        if place == self.area.primary && department == "QK" && g.chance(0.7) {
            if let Some(s) = self.signed.filter(|s| day < s.until) {
                return Some(s.gp);
            }
        }
        let pool = p
            .doctors
            .iter()
            .find(|(code, _)| *code == department)
            .map_or(&p.any, |(_, ids)| ids);
        if pool.is_empty() {
            None
        } else {
            Some(*g.pick(pool))
        }
    }

    /// The department of a place for a diagnosis.
    fn department(&self, g: &mut Rng, place: usize, dx: &Dx, visit: Visit) -> &'static str {
        let p = self.place(place);
        let has = |code: &str| departments_for(p.role).iter().any(|d| d.0 == code);
        if visit == Visit::Inpatient {
            return if has(dx.ward) {
                dx.ward
            } else if has("BQ") {
                "BQ"
            } else {
                departments_for(p.role).first().map_or("MZ", |d| d.0)
            };
        }
        if visit == Visit::Emergency && has("JZK") {
            return "JZK";
        }
        match p.role {
            MemberRole::Primary => match dx.care {
                Care::Pregnancy | Care::ChildCheck => "YFBJ",
                Care::Musculoskeletal if g.chance(0.3) => "KFK",
                _ if g.chance(0.15) => "ZYK",
                _ if dx.clinic == "KFK" => "KFK",
                _ => "QK",
            },
            MemberRole::Village => "ZS",
            _ if has(dx.clinic) => dx.clinic,
            _ => departments_for(p.role).first().map_or("MZ", |d| d.0),
        }
    }

    /// Adds an encounter; `None` when it would fall after the period.
    #[allow(clippy::too_many_arguments)]
    fn encounter(
        &mut self,
        g: &mut Rng,
        day: NaiveDate,
        place: Option<usize>,
        visit: Visit,
        dx: &'static Dx,
        given: Given,
    ) -> Option<usize> {
        let tier = place.map_or(OUT_OF_REGION, |p| self.place(p).tier);
        let mut start = match visit {
            Visit::Inpatient => at(day, 8 * 60 + g.between(0, 600)),
            Visit::Outpatient => at(day, 8 * 60 + g.between(0, 540)),
            Visit::Emergency => at(day, g.between(0, 24 * 60 - 1)),
        };
        // Care a referral causes comes after the referral.
        if let Some(after) = given.after {
            if start <= after {
                start = after + Duration::minutes(g.between(15, 90));
            }
        }
        if start.date() >= self.world.end || start.date() < self.world.start {
            return None;
        }
        let (end, total) = match visit {
            Visit::Inpatient => {
                let mean_stay = catalog::STAY_MEAN[tier] * libm::pow(dx.cost, 0.3);
                let stay = g.lognormal(mean_stay, 0.45).round().clamp(1.0, 60.0);
                let total = catalog::INPATIENT_MEAN[tier]
                    * dx.cost
                    * libm::pow(stay / catalog::STAY_MEAN[tier], 0.7)
                    * g.lognormal(1.0, 0.3);
                let discharge = start.date() + Days::new(stay as u64);
                (at(discharge, 9 * 60 + g.between(0, 180)), total)
            }
            Visit::Outpatient => {
                let total = catalog::OUTPATIENT_MEAN[tier] * dx.cost * g.lognormal(1.0, 0.55);
                (start + Duration::minutes(g.between(10, 90)), total)
            }
            Visit::Emergency => {
                let total = 1.4 * catalog::OUTPATIENT_MEAN[tier] * dx.cost * g.lognormal(1.0, 0.55);
                (start + Duration::minutes(g.between(30, 360)), total)
            }
        };
        let (department, practitioner) = match place {
            Some(p) => {
                let d = match given.department {
                    Some(d) => d,
                    None => self.department(g, p, dx, visit),
                };
                (Some(d), self.doctor(g, p, d, start.date()))
            }
            None => (None, None),
        };
        let referral = given.referral;
        self.s.encs.push(Enc {
            start,
            end,
            place,
            department,
            practitioner,
            visit,
            dx,
            referral,
            total: fen(total).max(500),
            chain: Chain::Start,
            eligible: 0,
            deductible: 0,
        });
        Some(self.s.encs.len() - 1)
    }

    fn t(&self, day: NaiveDate) -> f64 {
        self.world.years(day)
    }

    /// Whether a visit for `care` on `day` goes to the resident's primary unit.
    fn goes_primary(&self, g: &mut Rng, care: Care, day: NaiveDate) -> bool {
        let base = match care {
            Care::Hypertension | Care::Diabetes => 0.78,
            Care::ChildCheck => 0.9,
            Care::Pregnancy => 0.45,
            Care::Mental => 0.45,
            Care::Cancer => 0.1,
            _ if self.age <= 14 => 0.40,
            _ if self.age >= 65 => 0.58,
            _ => 0.46,
        };
        let p = self.place(self.area.primary);
        let month = p
            .months
            .get(self.world.month_index(day))
            .copied()
            .unwrap_or(1.0);
        // The reform draws care down over time: about +4 % a year.
        let share = base * p.pull * month * (1.0 + 0.04 * self.t(day));
        g.chance(share.min(0.95))
    }

    /// A hospital for care that does not stay at the primary unit; `None` is out of region.
    fn hospital(&self, g: &mut Rng, care: Care) -> Option<usize> {
        let u = g.unit();
        let w = self.world;
        let out_share = if care == Care::Cancer { 0.3 } else { 0.12 };
        if u < out_share {
            return None;
        }
        if u < out_share + 0.07 && !self.area.elsewhere.is_empty() {
            return Some(*g.pick(&self.area.elsewhere));
        }
        if u < out_share + 0.13 {
            match care {
                Care::Pregnancy | Care::ChildCheck => {
                    if let Some(m) = w.maternal {
                        return Some(m);
                    }
                }
                _ if self.age < 7 && g.chance(0.5) => {
                    if let Some(m) = w.maternal {
                        return Some(m);
                    }
                }
                _ if !w.tcm.is_empty() => return Some(*g.pick(&w.tcm)),
                _ => {}
            }
        }
        self.group_hospital(g)
    }

    /// The lead hospital (about 60 %) or another hospital of the resident's group.
    fn group_hospital(&self, g: &mut Rng) -> Option<usize> {
        let h = &self.area.hospitals;
        match h.len() {
            0 => None,
            1 => Some(h[0]),
            n => Some(if g.chance(0.6) {
                h[0]
            } else {
                h[1 + g.below(n as u64 - 1) as usize]
            }),
        }
    }

    fn complaint(&self, g: &mut Rng) -> &'static Dx {
        if self.age <= 14 {
            one(g, catalog::CHILD_COMPLAINTS)
        } else if self.age >= 60 && g.chance(0.6) {
            one(g, catalog::OLDER_COMPLAINTS)
        } else {
            one(g, catalog::ADULT_COMPLAINTS)
        }
    }

    /// Ordinary outpatient and emergency visits.
    fn visits(&mut self, g: &mut Rng) {
        let base = match self.age {
            0..=4 => 8.0,
            5..=14 => 3.6,
            15..=44 => 4.0,
            45..=64 => 5.7,
            _ => 7.8,
        };
        let chronic = 1.8 * f64::from(u8::from(self.r.hypertension) + u8::from(self.r.diabetes))
            + if self.r.severe_mental_illness {
                2.0
            } else {
                0.0
            };
        // People differ in how often they seek care beyond what age and illness explain.
        let frailty = g.lognormal(1.0, 0.5);
        let n = g.poisson((base + chronic) * frailty * self.world.days.len() as f64 / 365.0);
        for _ in 0..n {
            let day = self.world.day(g);
            let emergency = g.chance(0.07);
            let dx: &'static Dx = if emergency {
                // Chest pain (the last, and the green channel's) is an adult's emergency.
                let list = if self.age <= 14 {
                    &catalog::EMERGENCIES[..catalog::EMERGENCIES.len() - 1]
                } else {
                    catalog::EMERGENCIES
                };
                list[g.below(list.len() as u64) as usize]
            } else if self.r.hypertension && g.chance(0.3) {
                &catalog::HYPERTENSION
            } else if self.r.diabetes && g.chance(0.3) {
                &catalog::DIABETES
            } else if self.r.severe_mental_illness && g.chance(0.3) {
                &catalog::SCHIZOPHRENIA
            } else {
                self.complaint(g)
            };
            let visit = if emergency {
                Visit::Emergency
            } else {
                Visit::Outpatient
            };
            let primary = self.goes_primary(g, dx.care, day);
            let place = if primary {
                Some(self.area.primary)
            } else {
                self.hospital(g, dx.care)
            };
            let Some(e) = self.encounter(g, day, place, visit, dx, Given::default()) else {
                continue;
            };
            if primary {
                self.maybe_refer_up(g, e);
            } else if matches!(dx.care, Care::Hypertension | Care::Diabetes)
                && self.in_own_group(place)
                && g.chance(0.05 * (1.0 + 0.1 * self.t(day)))
            {
                // A stable chronic patient handed back to the family doctor.
                let result_day = day + Days::new(g.between(7, 30) as u64);
                self.refer_down(g, e, result_day, Visit::Outpatient, dx);
            }
        }
    }

    fn in_own_group(&self, place: Option<usize>) -> bool {
        place.is_some_and(|p| self.place(p).group == Some(self.r.group_code.as_str()))
    }

    /// Up-referrals from a primary-unit visit: routine and urgent ones for specialist care,
    /// the green channel for chest pain.
    fn maybe_refer_up(&mut self, g: &mut Rng, source: usize) {
        let enc = &self.s.encs[source];
        let (dx, visit, day) = (enc.dx, enc.visit, enc.start.date());
        let green = visit == Visit::Emergency && dx.code == "R07.4";
        let p = if green {
            0.6
        } else {
            0.028 * if self.age >= 65 { 1.5 } else { 1.0 }
        };
        if !g.chance(p) {
            return;
        }
        let Some(to) = (if green {
            self.area.hospitals.first().copied()
        } else {
            self.group_hospital(g)
        }) else {
            return;
        };
        let priority = if green {
            "green"
        } else if g.chance(0.12) {
            "urgent"
        } else {
            "routine"
        };
        let (result_visit, result_dx, delay): (Visit, &'static Dx, i64) = if green {
            let dx = if g.chance(0.7) {
                &catalog::UNSTABLE_ANGINA
            } else {
                &catalog::STROKE
            };
            (Visit::Inpatient, dx, 0)
        } else if g.chance(0.15) {
            let dx = match dx.care {
                _ if self.age <= 14 => one(g, catalog::CHILD_ADMISSIONS),
                Care::Cardiac | Care::Hypertension => &catalog::UNSTABLE_ANGINA,
                Care::Neuro => &catalog::STROKE,
                Care::Respiratory => &catalog::COPD_EXACERBATION,
                _ => one(g, self.admissions_list()),
            };
            (Visit::Inpatient, dx, g.between(0, 3))
        } else {
            let delay = if priority == "urgent" {
                g.between(0, 3)
            } else {
                g.between(1, 10)
            };
            (Visit::Outpatient, dx, delay)
        };
        self.refer(
            g,
            true,
            priority,
            source,
            to,
            day,
            delay,
            result_visit,
            result_dx,
        );
    }

    /// Sends a referral from `source` to `to`, and the encounter it causes `delay` days later.
    #[allow(clippy::too_many_arguments)]
    fn refer(
        &mut self,
        g: &mut Rng,
        up: bool,
        priority: &'static str,
        source: usize,
        to: usize,
        day: NaiveDate,
        delay: i64,
        result_visit: Visit,
        result_dx: &'static Dx,
    ) {
        let src = &self.s.encs[source];
        let from = src.place.unwrap_or(self.area.primary);
        let from_practitioner = src.practitioner;
        // Sent at the end of a visit, or in the last hours of a stay (never before it began).
        let requested = if src.visit == Visit::Inpatient {
            (src.end - Duration::hours(g.between(2, 20))).max(src.start + Duration::hours(1))
        } else {
            src.end
        };
        let roll = g.unit();
        let status = if priority == "green" {
            "completed"
        } else if roll < 0.05 {
            "cancelled"
        } else if roll < 0.10 {
            "expired"
        } else {
            "completed"
        };
        let referral = self.s.refs.len();
        let department = self.department(g, to, result_dx, result_visit);
        let to_department = Some(department);
        self.s.refs.push(Ref {
            up,
            priority,
            from,
            from_practitioner,
            to,
            to_department,
            dx: result_dx,
            at: requested,
            status,
            source,
            result: None,
        });
        if status != "completed" {
            return;
        }
        let result_day = day + Days::new(delay.max(0) as u64);
        // After a stay, the next care starts once the patient has left.
        let after = if self.s.encs[source].visit == Visit::Inpatient {
            requested.max(self.s.encs[source].end)
        } else {
            requested
        };
        let given = Given {
            referral: Some(referral),
            after: Some(after),
            department: Some(department),
        };
        match self.encounter(g, result_day, Some(to), result_visit, result_dx, given) {
            Some(e) => {
                self.s.refs[referral].result = Some(e);
                self.s.encs[e].chain = if !up {
                    Chain::Down
                } else if self.s.encs[source].visit == Visit::Inpatient {
                    Chain::Continued
                } else {
                    Chain::Start
                };
            }
            None => self.s.refs[referral].status = "booked",
        }
    }

    fn refer_down(
        &mut self,
        g: &mut Rng,
        source: usize,
        result_day: NaiveDate,
        visit: Visit,
        dx: &'static Dx,
    ) {
        let day = self.s.encs[source].end.date();
        let delay = (result_day - day).num_days();
        self.refer(
            g,
            false,
            "routine",
            source,
            self.area.primary,
            day,
            delay,
            visit,
            dx,
        );
    }

    fn admissions_list(&self) -> &'static [&'static Dx] {
        if self.age <= 14 {
            catalog::CHILD_ADMISSIONS
        } else if self.age >= 60 {
            catalog::OLDER_ADMISSIONS
        } else {
            catalog::ADULT_ADMISSIONS
        }
    }

    /// Admissions; primary-unit stays are sometimes transferred up, hospital stays for
    /// conditions that continue are referred down to the family doctor.
    fn admissions(&mut self, g: &mut Rng) {
        let rate = match self.age {
            0..=4 => 0.15,
            5..=14 => 0.05,
            15..=44 => 0.08,
            45..=64 => 0.17,
            65..=74 => 0.33,
            _ => 0.50,
        } + if self.r.hypertension || self.r.diabetes {
            0.06
        } else {
            0.0
        };
        let n = g.poisson(rate * self.world.days.len() as f64 / 365.0);
        for _ in 0..n {
            let day = self.world.day(g);
            let dx = one(g, self.admissions_list());
            let primary = dx.procedure.is_none()
                && dx.care != Care::Cancer
                && g.chance(0.28 * self.place(self.area.primary).pull);
            let place = if primary {
                Some(self.area.primary)
            } else {
                self.hospital(g, dx.care)
            };
            let Some(e) = self.encounter(g, day, place, Visit::Inpatient, dx, Given::default())
            else {
                continue;
            };
            self.after_stay(g, e, primary);
        }
    }

    fn after_stay(&mut self, g: &mut Rng, e: usize, primary: bool) {
        let dx = self.s.encs[e].dx;
        if primary {
            if g.chance(0.08) {
                if let Some(to) = self.area.hospitals.first().copied() {
                    // The stay ends with the transfer, some hours into it.
                    let (start, end) = (self.s.encs[e].start, self.s.encs[e].end);
                    let hours = (end - start).num_hours().max(5);
                    let out = start + Duration::hours(g.between(4, hours));
                    self.s.encs[e].end = out.min(end);
                    self.refer(
                        g,
                        true,
                        "urgent",
                        e,
                        to,
                        out.date(),
                        0,
                        Visit::Inpatient,
                        dx,
                    );
                }
            }
            return;
        }
        let place = self.s.encs[e].place;
        let Some(next) = catalog::continued_care(dx) else {
            return;
        };
        if !self.in_own_group(place) {
            return;
        }
        let day = self.s.encs[e].end.date();
        let rate = place.map_or(0.0, |p| self.place(p).down_rate) * (1.0 + 0.1 * self.t(day));
        if g.chance(rate) {
            let (visit, delay) = if g.chance(0.3) {
                (Visit::Inpatient, 0)
            } else {
                (Visit::Outpatient, g.between(3, 14))
            };
            self.refer_down(g, e, day + Days::new(delay as u64), visit, next);
        }
    }

    fn schedule(&self, g: &mut Rng, every_days: u64) -> Vec<NaiveDate> {
        let mut due = self.world.start + Days::new(g.below(every_days));
        let mut out = Vec::new();
        while due < self.world.end {
            out.push(due);
            due = due + Days::new(every_days);
        }
        out
    }

    /// Follow-ups of the key populations under management.
    fn follow_ups(&mut self, g: &mut Rng) {
        let contracted = self.signed.is_some();
        let managed = |g: &mut Rng| g.chance(if contracted { 0.95 } else { 0.55 });
        if self.r.hypertension && managed(g) {
            self.chronic(g, "hypertension", &catalog::HYPERTENSION);
        }
        if self.r.diabetes && managed(g) {
            self.chronic(g, "diabetes", &catalog::DIABETES);
        }
        if self.r.severe_mental_illness && g.chance(0.9) {
            self.chronic(g, "severe_mental_illness", &catalog::SCHIZOPHRENIA);
        }
        if self.age <= 6 {
            self.child_checks(g);
        }
    }

    fn done_on(&self, g: &mut Rng, due: NaiveDate, rate: f64) -> Option<NaiveDate> {
        if !g.chance(rate) {
            return None;
        }
        let d = due + Duration::days(g.between(-10, 14));
        Some(d.clamp(self.world.start, self.world.end - Days::new(1)))
    }

    fn chronic(&mut self, g: &mut Rng, program: &'static str, dx: &'static Dx) {
        let primary = self.area.primary;
        let p = self.place(primary);
        let rate = p.diligence * if self.signed.is_some() { 1.0 } else { 0.85 };
        let control = p.control;
        for due in self.schedule(g, 91) {
            let done = self.done_on(g, due, rate);
            let method = done.map(|_| match g.below(100) {
                0..=54 => "clinic",
                55..=69 => "home",
                _ => "phone",
            });
            let encounter = match (done, method) {
                (Some(d), Some("clinic")) => {
                    self.encounter(g, d, Some(primary), Visit::Outpatient, dx, Given::default())
                }
                _ => None,
            };
            let controlled = done.map(|_| g.chance(control));
            let (mut systolic, mut diastolic, mut glucose) = (None, None, None);
            if let (Some(c), Some(m)) = (controlled, method) {
                match program {
                    "hypertension" if m != "phone" => {
                        systolic = Some(if c {
                            g.between(112, 139)
                        } else {
                            g.between(140, 178)
                        });
                        diastolic = Some(if c {
                            g.between(68, 89)
                        } else {
                            g.between(85, 104)
                        });
                    }
                    "diabetes" if m != "phone" => {
                        glucose = Some(if c {
                            g.between(44, 70)
                        } else {
                            g.between(71, 135)
                        });
                    }
                    _ => {}
                }
            }
            self.s.fus.push(FollowUp {
                program,
                place: primary,
                due,
                done,
                method,
                encounter,
                systolic,
                diastolic,
                glucose,
                controlled,
            });
        }
    }

    /// Child health checks at 1, 3, 6, 8, 12, 18, 24, 30 and 36 months and at 4, 5 and 6
    /// years (national basic public health service).
    fn child_checks(&mut self, g: &mut Rng) {
        const AGES: [u32; 12] = [1, 3, 6, 8, 12, 18, 24, 30, 36, 48, 60, 72];
        let primary = self.area.primary;
        let rate = 0.95 * self.place(primary).diligence.max(0.8);
        for months in AGES {
            let Some(due) = self.r.birth_date.checked_add_months(Months::new(months)) else {
                continue;
            };
            if due < self.world.start || due >= self.world.end {
                continue;
            }
            let done = self.done_on(g, due, rate);
            let encounter = done.and_then(|d| {
                self.encounter(
                    g,
                    d,
                    Some(primary),
                    Visit::Outpatient,
                    &catalog::CHILD_CHECK,
                    Given::default(),
                )
            });
            self.s.fus.push(FollowUp::visit(
                "child",
                primary,
                due,
                done,
                done.map(|_| "clinic"),
                encounter,
            ));
        }
    }

    /// Antenatal visits by the five-colour grade (green and yellow at the primary unit, the
    /// higher grades at the maternal-child hospital or the lead hospital, R8.2), the delivery
    /// and the postnatal home visit.
    fn maternity(&mut self, g: &mut Rng) {
        let Some(risk) = self.r.maternal_risk else {
            return;
        };
        let high = !matches!(risk, "green" | "yellow");
        let managing = if high {
            self.world
                .maternal
                .or_else(|| self.area.hospitals.first().copied())
                .unwrap_or(self.area.primary)
        } else {
            self.area.primary
        };
        let dx: &'static Dx = if high {
            &catalog::HIGH_RISK_PREGNANCY
        } else {
            &catalog::PREGNANCY
        };
        let weeks_left = g.between(4, 36);
        let delivery_day = self.world.start + Days::new(weeks_left as u64 * 7);
        let mut due = self.world.start + Days::new(g.below(28));
        while due + Days::new(14) < delivery_day && due < self.world.end {
            let done = self.done_on(g, due, 0.93);
            let encounter = done.and_then(|d| {
                self.encounter(
                    g,
                    d,
                    Some(managing),
                    Visit::Outpatient,
                    dx,
                    Given::default(),
                )
            });
            self.s.fus.push(FollowUp {
                program: "maternal",
                place: managing,
                due,
                done,
                method: done.map(|_| "clinic"),
                encounter,
                systolic: None,
                diastolic: None,
                glucose: None,
                controlled: done.map(|_| !high),
            });
            due = due + Days::new(28);
        }
        let place = if high {
            Some(managing)
        } else if g.chance(0.3) {
            self.world.maternal.or_else(|| self.group_hospital(g))
        } else {
            self.group_hospital(g)
        };
        let dx: &'static Dx = if g.chance(0.4) {
            &catalog::CAESAREAN
        } else {
            &catalog::DELIVERY
        };
        if let Some(e) = self.encounter(
            g,
            delivery_day,
            place,
            Visit::Inpatient,
            dx,
            Given::default(),
        ) {
            let due = self.s.encs[e].end.date() + Days::new(7);
            if due < self.world.end {
                let done = self.done_on(g, due, 0.9);
                self.s.fus.push(FollowUp::visit(
                    "maternal",
                    self.area.primary,
                    due,
                    done,
                    done.map(|_| "home"),
                    None,
                ));
            }
        }
    }

    /// Exams, prescriptions and the insurance share of every encounter.
    fn finish(&mut self, g: &mut Rng) {
        for e in 0..self.s.encs.len() {
            self.exams(g, e);
            self.prescribe(g, e);
        }
        // A referred patient's earlier results travel with them: recognised, or repeated.
        for i in 0..self.s.refs.len() {
            let (Some(result), source) = (self.s.refs[i].result, self.s.refs[i].source) else {
                continue;
            };
            let to = self.s.refs[i].to;
            let recognition = self.place(to).recognition;
            let start = self.s.encs[result].start;
            for x in 0..self.s.exams.len() {
                if self.s.exams[x].encounter != source {
                    continue;
                }
                if g.chance(recognition) {
                    self.s.exams[x].recognised = true;
                } else {
                    let item = self.s.exams[x].item;
                    self.push_exam(g, result, item, Some(to), start);
                }
            }
        }
        self.deductibles(g);
    }

    fn exams(&mut self, g: &mut Rng, e: usize) {
        let enc = &self.s.encs[e];
        let primary = enc.place.is_some_and(|p| self.place(p).tier == 0);
        let (p, count) = match enc.visit {
            Visit::Inpatient => (1.0, 2),
            Visit::Emergency => (0.6, 1),
            Visit::Outpatient if primary => (0.18, 1),
            Visit::Outpatient => (0.4, 1),
        };
        if !g.chance(p) {
            return;
        }
        let items = catalog::exams_for(enc.dx.care);
        let (place, start) = (enc.place, enc.start);
        for k in 0..count.min(items.len()) {
            let item = if k == 0 && g.chance(0.6) {
                items[0]
            } else {
                *g.pick(items)
            };
            let Some(place) = place else {
                // Out-of-region exams are not the group's; only the visit is known.
                return;
            };
            self.push_exam(g, e, item, Some(place), start);
        }
    }

    fn push_exam(
        &mut self,
        g: &mut Rng,
        e: usize,
        item: &'static ExamItem,
        place: Option<usize>,
        start: NaiveDateTime,
    ) {
        let Some(place) = place else { return };
        let p = self.place(place);
        // Primary units send images and ECGs to their group's shared centres at the lead
        // hospital for reading (R6.1), and some samples to its laboratory; secondary hospitals
        // send some imaging there too. Units outside every group read their own.
        let central = match (p.role, item.kind) {
            (MemberRole::Primary | MemberRole::Village, "imaging" | "ecg") => g.chance(0.75),
            (MemberRole::Primary | MemberRole::Village, _) => g.chance(0.45),
            (MemberRole::Secondary, "imaging") => g.chance(0.2),
            _ => false,
        };
        let center = if central { p.lead } else { None };
        let ordered = start + Duration::minutes(g.between(5, 40));
        let mut minutes = g.between(item.minutes.0, item.minutes.1);
        if center.is_some() {
            minutes = match item.kind {
                "lab" => minutes + g.between(120, 600),
                _ => minutes * 3 / 2,
            };
        }
        self.s.exams.push(Exam {
            encounter: e,
            item,
            center,
            ordered,
            reported: ordered + Duration::minutes(minutes),
            recognised: false,
        });
    }

    fn prescribe(&mut self, g: &mut Rng, e: usize) {
        let enc = &self.s.encs[e];
        if enc.visit == Visit::Inpatient {
            return;
        }
        let chronic = matches!(
            enc.dx.care,
            Care::Hypertension | Care::Diabetes | Care::Mental
        );
        let p = match enc.dx.care {
            Care::ChildCheck => 0.03,
            Care::Pregnancy => 0.4,
            _ if chronic => 0.97,
            _ => 0.72,
        };
        if !g.chance(p) {
            return;
        }
        let essential = enc.place.map_or(0.4, |p| self.place(p).essential);
        let primary = enc.place.is_some_and(|p| self.place(p).tier == 0);
        let drugs = catalog::drugs_for(enc.dx.care);
        let lines = if chronic {
            1 + g.below(2)
        } else {
            1 + g.below(3)
        };
        for _ in 0..lines {
            let want = g.chance(essential);
            let start = g.below(drugs.len() as u64) as usize;
            let drug = (0..drugs.len())
                .map(|k| &drugs[(start + k) % drugs.len()])
                .find(|d| d.essential == want)
                .unwrap_or(&drugs[start]);
            let days = if chronic {
                if primary && g.chance(0.4) {
                    *g.pick(&[56, 84])
                } else {
                    28
                }
            } else {
                g.between(3, 7)
            };
            let amount =
                fen(drug.fen_per_day as f64 * days as f64 / 100.0 * g.lognormal(1.0, 0.15))
                    .max(100);
            self.s.lines.push(Line {
                encounter: e,
                drug,
                days,
                amount,
            });
            self.s.encs[e].total += amount;
        }
    }

    /// Inpatient deductibles, continued along a referral chain inside the group (R9.3): an
    /// up-transfer owes only what the higher level's deductible exceeds the one already paid,
    /// a down-referral owes none.
    fn deductibles(&mut self, g: &mut Rng) {
        for e in 0..self.s.encs.len() {
            let inpatient = self.s.encs[e].visit == Visit::Inpatient;
            let share = if inpatient {
                0.85 + 0.12 * g.unit()
            } else {
                0.90 + 0.10 * g.unit()
            };
            let eligible = (self.s.encs[e].total as f64 * share).round() as i64;
            self.s.encs[e].eligible = eligible;
            if !inpatient {
                continue;
            }
            let tier = self.s.encs[e]
                .place
                .map_or(OUT_OF_REGION, |p| self.place(p).tier);
            let full = catalog::DEDUCTIBLE[tier] * 100;
            let owed = match self.s.encs[e].chain {
                Chain::Down => 0,
                Chain::Continued => {
                    let paid = self.s.encs[e]
                        .referral
                        .map(|r| self.s.refs[r].source)
                        .map_or(0, |s| self.s.encs[s].deductible);
                    (full - paid).max(0)
                }
                Chain::Start => full,
            };
            self.s.encs[e].deductible = owed.min(eligible);
        }
    }
}

/// Rows of a resident: ids are given in time order within the resident.
fn emit<S: Sink>(
    world: &World,
    r: &Resident,
    signed: Option<Signed>,
    s: &mut Scratch,
    ids: &mut Ids,
    out: &mut Sinks<S>,
) -> Result<(), SinkError> {
    let n = s.encs.len();
    s.order.clear();
    s.order.extend(0..n);
    s.order.sort_by_key(|&i| s.encs[i].start);
    s.rank.clear();
    s.rank.resize(n, 0);
    for (pos, &i) in s.order.iter().enumerate() {
        s.rank[i] = ids.encounter + pos as u64 + 1;
    }
    let mut ref_order: Vec<usize> = (0..s.refs.len()).collect();
    ref_order.sort_by_key(|&i| s.refs[i].at);
    let mut ref_id = vec![0u64; s.refs.len()];
    for (pos, &i) in ref_order.iter().enumerate() {
        ref_id[i] = ids.referral + pos as u64 + 1;
    }
    let group = r.group_code.as_str();
    let fund = r.insurance;
    let place_code = |p: Option<usize>| p.map(|p| world.places[p].code);

    for &i in &s.order {
        let e = &s.encs[i];
        let id = s.rank[i];
        let place = e.place.map(|p| &world.places[p]);
        let tier = place.map_or(OUT_OF_REGION, |p| p.tier);
        let level = place.map_or("out_of_region", |p| p.level);
        let in_group = place.is_some_and(|p| p.group == Some(group));
        let referral = e.referral.map(|k| ref_id[k]);
        // Insurance: eligible share, deductible (inpatient), fund rate by level.
        let (eligible, deductible) = (e.eligible, e.deductible);
        let mut rate = match (e.visit == Visit::Inpatient, fund) {
            (true, Insurance::Employee) => catalog::INPATIENT_RATE_EMPLOYEE[tier],
            (true, Insurance::Resident) => catalog::INPATIENT_RATE_RESIDENT[tier],
            (false, Insurance::Employee) => catalog::OUTPATIENT_RATE_EMPLOYEE[tier],
            (false, Insurance::Resident) => catalog::OUTPATIENT_RATE_RESIDENT[tier],
        };
        if referral.is_some() && in_group {
            rate += catalog::REFERRED_BONUS;
        }
        let paid = ((eligible - deductible) as f64 * rate.min(0.95)).round() as i64;
        let self_paid = e.total - paid;

        let o = &mut out.encounters;
        o.int(id as i64);
        o.int(r.id as i64);
        o.group(group);
        o.opt_unit(place_code(e.place));
        o.opt_text(e.department);
        o.opt_practitioner(e.practitioner);
        o.text(e.visit.as_str());
        o.text(level);
        o.timestamp(e.start);
        o.timestamp(e.end);
        o.text(e.dx.code);
        o.text(e.dx.name);
        o.flag(place.is_some());
        o.flag(in_group);
        o.opt_int(referral.map(|x| x as i64));
        o.fixed(e.total);
        o.fixed(paid);
        o.fixed(self_paid);
        o.end_row()?;

        ids.claim += 1;
        let c = &mut out.claims;
        c.int(ids.claim as i64);
        c.int(id as i64);
        c.int(r.id as i64);
        c.group(group);
        c.opt_unit(place_code(e.place));
        c.text(fund.as_str());
        c.text(e.visit.as_str());
        c.text(level);
        c.flag(in_group);
        if e.visit == Visit::Inpatient {
            s.text.clear();
            s.text.push_str(e.dx.code);
            s.text.push(':');
            s.text.push_str(e.dx.procedure.unwrap_or("conservative"));
            c.text(&s.text);
            c.int((e.end.date() - e.start.date()).num_days().max(1));
        } else {
            c.null();
            c.null();
        }
        c.fixed(e.total);
        c.fixed(eligible);
        c.fixed(deductible);
        c.fixed(paid);
        c.fixed(self_paid);
        c.date(e.end.date());
        c.end_row()?;

        for l in s.lines.iter().filter(|l| l.encounter == i) {
            ids.prescription += 1;
            let p = &mut out.prescriptions;
            p.int(ids.prescription as i64);
            p.int(id as i64);
            p.int(r.id as i64);
            p.group(group);
            p.opt_unit(place_code(e.place));
            p.text(l.drug.code);
            p.text(l.drug.name);
            p.flag(l.drug.essential);
            p.int(l.days);
            p.fixed(l.amount);
            p.end_row()?;
        }
        for x in s.exams.iter().filter(|x| x.encounter == i) {
            ids.exam += 1;
            let o = &mut out.exams;
            o.int(ids.exam as i64);
            o.int(id as i64);
            o.int(r.id as i64);
            o.group(group);
            o.opt_unit(place_code(e.place));
            o.opt_unit(place_code(x.center));
            o.text(x.item.kind);
            o.text(x.item.name);
            o.timestamp(x.ordered);
            o.timestamp(x.reported);
            o.flag(x.recognised);
            o.end_row()?;
        }
    }
    ids.encounter += n as u64;

    for &i in &ref_order {
        let x = &s.refs[i];
        let o = &mut out.referrals;
        o.int(ref_id[i] as i64);
        o.int(r.id as i64);
        o.group(group);
        o.text(if x.up { "up" } else { "down" });
        o.text(x.priority);
        o.unit(world.places[x.from].code);
        o.opt_practitioner(x.from_practitioner);
        o.unit(world.places[x.to].code);
        o.opt_text(x.to_department);
        o.text(x.dx.code);
        o.timestamp(x.at);
        o.text(x.status);
        o.int(s.rank[x.source] as i64);
        o.opt_int(x.result.map(|e| s.rank[e] as i64));
        o.end_row()?;
    }
    ids.referral += s.refs.len() as u64;

    s.fus.sort_by_key(|f| f.due);
    let home = world
        .areas
        .get(r.unit_code.as_str())
        .map_or(usize::MAX, |a| a.primary);
    for f in &s.fus {
        ids.follow_up += 1;
        let o = &mut out.follow_ups;
        o.int(ids.follow_up as i64);
        o.int(r.id as i64);
        o.group(group);
        o.text(f.program);
        o.unit(world.places[f.place].code);
        let team = signed.filter(|s| f.place == home && f.due < s.until);
        o.opt_int(team.map(|s| s.team as i64));
        o.date(f.due);
        o.opt_date(f.done);
        o.opt_text(f.method);
        o.opt_int(f.encounter.map(|e| s.rank[e] as i64));
        o.opt_int(f.systolic);
        o.opt_int(f.diastolic);
        o.opt_fixed(f.glucose);
        match f.controlled {
            Some(c) => o.flag(c),
            None => o.null(),
        }
        o.end_row()?;
    }
    Ok(())
}
