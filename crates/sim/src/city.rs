//! `generate`: the whole synthetic city, table by table, into any `SinkFactory`.

use std::collections::HashMap;

use chrono::NaiveDate;

use medgrid_domain::org::layout::Layout;

use crate::activity::{self, Ids, Scratch, Signed, Sinks, World};
use crate::mpi;
use crate::population::{Population, Resident};
use crate::rng::Rng;
use crate::schema;
use crate::staff::{departments_for, staff, teams, Team};
use crate::table::{Sink, SinkError, SinkExt, SinkFactory};
use crate::tables;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub seed: u64,
    pub residents: u64,
    /// The day the population is described on; activity starts that day.
    pub as_of: NaiveDate,
    /// Months of activity from `as_of` (12 by default; 24 gives year-on-year comparisons).
    pub months: u32,
    /// Also write the patient records of member units with realistic errors, and the truth.
    pub mpi_records: bool,
}

impl Params {
    pub fn new(seed: u64, residents: u64, as_of: NaiveDate) -> Params {
        Params {
            seed,
            residents,
            as_of,
            months: 12,
            mpi_records: false,
        }
    }
}

/// Residents done so far, of the total; reported every few thousand residents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// What was written: rows per table, in the order of `schema::ALL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub params: Params,
    pub tables: Vec<(&'static str, u64)>,
}

impl Manifest {
    pub fn rows(&self, file: &str) -> Option<u64> {
        self.tables
            .iter()
            .find(|(f, _)| *f == file)
            .map(|(_, n)| *n)
    }
}

const PROGRESS_EVERY: u64 = 10_000;

/// Generates every table into `out`, streaming: memory holds the layout, the staff and one
/// resident's year at a time.
pub fn generate<F: SinkFactory>(
    layout: &Layout,
    params: &Params,
    out: &mut F,
    mut progress: impl FnMut(Progress),
) -> Result<Manifest, SinkError> {
    let seed = params.seed;
    let mut tables = Vec::new();

    let mut s = out.open(&schema::UNITS)?;
    for u in &layout.units {
        s.text(&u.code);
        s.text(&u.name);
        s.text(u.role.as_str());
        s.text(u.level.as_str());
        s.opt_text(u.group_code.as_deref());
        s.opt_text(u.grid_code.as_deref());
        s.opt_text(u.under_code.as_deref());
        s.opt_text(u.division_code.as_ref().map(|d| d.as_str()));
        s.end_row()?;
    }
    tables.push((schema::UNITS.file, s.finish()?));

    let mut s = out.open(&schema::DEPARTMENTS)?;
    for u in &layout.units {
        for (code, name, kind, beds) in departments_for(u.role) {
            s.text(&u.code);
            s.text(code);
            s.text(name);
            s.text(kind.as_str());
            s.opt_int(*beds);
            s.end_row()?;
        }
    }
    tables.push((schema::DEPARTMENTS.file, s.finish()?));

    let staff = staff(layout, seed);
    let mut s = out.open(&schema::PRACTITIONERS)?;
    for m in &staff {
        s.int(m.id as i64);
        s.text(&m.licence_no);
        s.text(&m.name);
        s.text(m.sex.as_str());
        s.text(m.title.as_str());
        s.text(&m.unit_code);
        s.opt_text(m.department_code);
        if m.extra_sites.is_empty() {
            s.null();
        } else {
            s.text(&m.extra_sites.join(";"));
        }
        s.end_row()?;
    }
    tables.push((schema::PRACTITIONERS.file, s.finish()?));

    let teams = teams(layout, &staff, seed);
    let group_of: HashMap<&str, &str> = layout
        .units
        .iter()
        .filter_map(|u| Some((u.code.as_str(), u.group_code.as_deref()?)))
        .collect();
    let mut s = out.open(&schema::TEAMS)?;
    for t in &teams {
        s.int(t.id as i64);
        s.group(group_of.get(t.unit_code.as_str()).copied().unwrap_or(""));
        s.unit(&t.unit_code);
        s.practitioner(t.gp);
        s.practitioner(t.specialist);
        s.practitioner(t.third);
        s.end_row()?;
    }
    tables.push((schema::TEAMS.file, s.finish()?));
    let mut teams_of: HashMap<&str, Vec<&Team>> = HashMap::new();
    for t in &teams {
        teams_of.entry(t.unit_code.as_str()).or_default().push(t);
    }

    let world = World::new(layout, &staff, seed, params.as_of, params.months);
    let mut residents = out.open(&schema::RESIDENTS)?;
    let mut contracts = out.open(&schema::CONTRACTS)?;
    let mut sinks = Sinks {
        encounters: out.open(&schema::ENCOUNTERS)?,
        referrals: out.open(&schema::REFERRALS)?,
        follow_ups: out.open(&schema::FOLLOW_UPS)?,
        exams: out.open(&schema::EXAMS)?,
        prescriptions: out.open(&schema::PRESCRIPTIONS)?,
        claims: out.open(&schema::CLAIMS)?,
    };
    let mut mpi = if params.mpi_records {
        Some((
            out.open(&schema::MPI_RECORDS)?,
            out.open(&schema::MPI_TRUTH)?,
            mpi::Registry::default(),
        ))
    } else {
        None
    };
    let period_end = params
        .as_of
        .checked_add_months(chrono::Months::new(params.months))
        .unwrap_or(params.as_of);
    let mut seen = Vec::new();
    let mut scratch = Scratch::default();
    let mut ids = Ids::default();
    let mut contract_id = 0u64;
    let mut done = 0u64;
    for r in Population::new(layout, seed, params.residents, params.as_of) {
        write_resident(&mut residents, &r);
        residents.end_row()?;
        let c = contract(&r, &teams_of, seed, params.as_of, period_end);
        let signed = c.as_ref().and_then(|c| {
            let team = teams.get(usize::try_from(c.team).ok()?.checked_sub(1)?)?;
            Some(Signed {
                team: team.id,
                gp: team.gp,
                until: c.terms.last().map_or(params.as_of, |t| t.1),
            })
        });
        activity::resident(&world, &r, signed, &mut scratch, &mut ids, &mut sinks)?;
        if let Some((records, truth, registry)) = mpi.as_mut() {
            scratch.units_seen(&world, &r, 4, &mut seen);
            mpi::records(registry, seed, &r, &seen, records, truth)?;
        }
        if let Some(c) = &c {
            for (signed_on, ends_on) in &c.terms {
                contract_id += 1;
                contracts.int(contract_id as i64);
                contracts.int(r.id as i64);
                contracts.group(&r.group_code);
                contracts.int(c.team as i64);
                contracts.text(c.package);
                contracts.date(*signed_on);
                contracts.date(*ends_on);
                contracts.end_row()?;
            }
        }
        done += 1;
        if done.is_multiple_of(PROGRESS_EVERY) {
            progress(Progress {
                done,
                total: params.residents,
            });
        }
    }
    tables.push((schema::RESIDENTS.file, residents.finish()?));
    tables.push((schema::CONTRACTS.file, contracts.finish()?));
    tables.push((schema::ENCOUNTERS.file, sinks.encounters.finish()?));
    tables.push((schema::REFERRALS.file, sinks.referrals.finish()?));
    tables.push((schema::FOLLOW_UPS.file, sinks.follow_ups.finish()?));
    tables.push((schema::EXAMS.file, sinks.exams.finish()?));
    tables.push((schema::PRESCRIPTIONS.file, sinks.prescriptions.finish()?));
    tables.push((schema::CLAIMS.file, sinks.claims.finish()?));
    if let Some((mut records, mut truth, _)) = mpi {
        tables.push((schema::MPI_RECORDS.file, records.finish()?));
        tables.push((schema::MPI_TRUTH.file, truth.finish()?));
    }
    progress(Progress {
        done,
        total: params.residents,
    });
    Ok(Manifest {
        params: params.clone(),
        tables,
    })
}

fn write_resident(s: &mut impl Sink, r: &Resident) {
    s.int(r.id as i64);
    s.int(r.household_id as i64);
    s.text(r.citizen_id.as_str());
    s.text(&r.name);
    s.text(r.sex.as_str());
    s.date(r.birth_date);
    s.text(&r.phone);
    s.text(&r.address);
    s.unit(&r.unit_code);
    s.group(&r.group_code);
    s.text(&r.grid_code);
    s.text(r.insurance.as_str());
    s.flag(r.hypertension);
    s.flag(r.diabetes);
    s.flag(r.severe_mental_illness);
    s.opt_text(r.maternal_risk);
}

/// A family-doctor contract (R3.2).
pub struct Contract {
    pub team: u64,
    pub package: &'static str,
    /// The year in force on the first day and each renewal (signed on, ends on): a contract
    /// runs one year and nine in ten are renewed with the same team.
    pub terms: Vec<(NaiveDate, NaiveDate)>,
}

/// Whether and how a resident is contracted: key populations at about 86 %, others at 20 %
/// (seed 002 targets ≥ 40 % overall and ≥ 85 % for key populations, R3.3).
pub fn contract(
    r: &Resident,
    teams_of: &HashMap<&str, Vec<&Team>>,
    seed: u64,
    as_of: NaiveDate,
    period_end: NaiveDate,
) -> Option<Contract> {
    let teams = teams_of.get(r.unit_code.as_str())?;
    let age = r.age_on(as_of);
    let package = if r.maternal_risk.is_some() {
        "maternal_care"
    } else if r.severe_mental_illness {
        "mental_health"
    } else if r.hypertension || r.diabetes {
        "chronic_care"
    } else if age >= 65 {
        "elderly_care"
    } else if age <= 6 {
        "child_care"
    } else {
        "basic"
    };
    let mut g = Rng::stream(seed, "contract", r.id);
    let rate = if package == "basic" {
        tables::CONTRACT_OTHERS
    } else {
        tables::CONTRACT_KEY
    };
    if !g.chance(rate) {
        return None;
    }
    // Signed on some day of the past year; a contract runs one year and is renewed.
    let signed_on = as_of - chrono::Days::new(g.below(365));
    let year = |d: NaiveDate| d.checked_add_months(chrono::Months::new(12)).unwrap_or(d);
    let team = teams[g.below(teams.len() as u64) as usize].id;
    let mut terms = vec![(signed_on, year(signed_on))];
    while let Some(&(_, ends_on)) = terms.last() {
        if ends_on >= period_end || !g.chance(0.9) {
            break;
        }
        terms.push((ends_on, year(ends_on)));
    }
    Some(Contract {
        team,
        package,
        terms,
    })
}
