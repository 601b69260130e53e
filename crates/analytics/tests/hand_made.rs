//! Every measure and shipped indicator on a small city whose values are worked out by hand in
//! the comments; and the cube of a few units equals the same units' part of the whole cube.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should stop the test

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use medgrid_analytics::fact::Record;
use medgrid_analytics::fact::*;
use medgrid_analytics::{evaluate, Builder, Cube, Measure, Rollup, Span};
use medgrid_domain::indicator::{Library, Month, Period, Rag};

const LEAD: i64 = 1;
const CENTRE: i64 = 2;
const SECONDARY: i64 = 3;

thread_local! {
    static NEXT: std::cell::Cell<i64> = const { std::cell::Cell::new(1) };
}

/// Fact ids in the order the city is fed, the same on every feed (what a trace lists).
fn next_id() -> i64 {
    NEXT.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    })
}

/// The day of a `YYYY-MM-DD…` day or moment.
fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d").unwrap()
}

fn m(s: &str) -> Month {
    Month::of_day(s).unwrap()
}

fn span() -> Span {
    Span {
        first: m("2024-01"),
        last: m("2025-02"),
    }
}

fn units() -> HashMap<i64, UnitKind> {
    HashMap::from([
        (LEAD, UnitKind::Lead),
        (CENTRE, UnitKind::Primary),
        (SECONDARY, UnitKind::Other),
    ])
}

fn resident(id: i64, born: &str, htn: bool, dm: bool) -> ResidentFact {
    ResidentFact {
        id,
        home_unit: CENTRE,
        birth_date: d(born),
        hypertension: htn,
        diabetes: dm,
        other_key_condition: false,
    }
}

fn visit<'a>(
    resident: i64,
    place: Option<i64>,
    dept: &'a str,
    diag: &'a str,
    at: &str,
) -> EncounterFact<'a> {
    EncounterFact {
        id: next_id(),
        resident,
        place_unit: place,
        department: Some(dept),
        kind: EncounterKind::Visit,
        in_region: place.is_some(),
        diagnosis: diag,
        started_on: d(at),
        ended_on: d(at),
    }
}

fn stay(resident: i64, from: &str, to: &str) -> EncounterFact<'static> {
    EncounterFact {
        id: next_id(),
        resident,
        place_unit: Some(LEAD),
        department: Some("XXG"),
        kind: EncounterKind::Inpatient,
        in_region: true,
        diagnosis: "I21",
        started_on: d(from),
        ended_on: d(to),
    }
}

fn referral<'a>(from: i64, up: bool, diag: &'a str, at: &str) -> ReferralFact<'a> {
    ReferralFact {
        id: next_id(),
        from_unit: from,
        up,
        diagnosis: diag,
        requested_on: d(at),
    }
}

fn follow_up(resident: i64, program: Program, due: &str, done: bool) -> FollowUpFact {
    FollowUpFact {
        id: next_id(),
        resident,
        managing_unit: CENTRE,
        program,
        due_on: d(due),
        done,
    }
}

/// Feeds the whole hand-made city into a builder.
fn build(only: Option<HashSet<i64>>) -> Cube {
    feed(Builder::new(span(), units(), only)).finish()
}

fn feed(mut b: Builder) -> Builder {
    NEXT.with(|n| n.set(1));
    // r1: 65 and over throughout, hypertensive. r2: young, healthy. r3: turns 65 on
    // 2024-12-10, so key population from December's month end; diabetic.
    b.resident(resident(1, "1950-06-15", true, false));
    b.resident(resident(2, "1990-01-01", false, false));
    b.resident(resident(3, "1959-12-10", false, false));
    // r1 in force at the ends of 2024-03 … 2025-02; r3 at the ends of 2024-02 … 2024-11.
    b.contract(ContractFact {
        resident: 1,
        signed_on: d("2024-03-15"),
        ends_on: d("2025-03-15"),
    });
    b.contract(ContractFact {
        resident: 3,
        signed_on: d("2024-02-01"),
        ends_on: d("2024-12-01"),
    });
    // r1's hypertension follow-ups: July missed. r3's one diabetes follow-up done.
    for (due, done) in [
        ("2024-01-10", true),
        ("2024-04-10", true),
        ("2024-07-10", false),
        ("2024-10-10", true),
        ("2025-01-10", true),
    ] {
        b.follow_up(follow_up(1, Program::Hypertension, due, done));
    }
    b.follow_up(follow_up(3, Program::Diabetes, "2024-06-05", true));
    // December 2024 visits of the centre's residents: 3 in all, 2 in the city, 1 at primary
    // care; 2 hypertension visits in the city, 1 at primary care. November: one emergency.
    b.encounter(visit(
        1,
        Some(CENTRE),
        "QKM",
        "I10.x00",
        "2024-12-03 09:00:00",
    ));
    b.encounter(visit(1, Some(LEAD), "XXG", "I10", "2024-12-20 10:00:00"));
    b.encounter(visit(2, None, "", "J18", "2024-12-25 10:00:00"));
    b.encounter(visit(2, Some(LEAD), "JZK", "S52", "2024-11-30 23:59:00"));
    // Discharged January 2025 from the lead's cardiology: 7 bed-days and a same-day stay (1).
    b.encounter(stay(3, "2024-12-28 08:00:00", "2025-01-04 10:00:00"));
    b.encounter(stay(1, "2025-01-10 08:00:00", "2025-01-10 17:00:00"));
    // Lead down-referrals: 1 in January 2024 (chronic), 2 in January 2025 (both chronic), 1
    // in February 2025; the secondary hospital's and the centre's are not the lead's.
    b.referral(referral(LEAD, false, "I10", "2024-01-20 10:00:00"));
    b.referral(referral(LEAD, false, "E11.9", "2025-01-05 10:00:00"));
    b.referral(referral(LEAD, false, "I15", "2025-01-31 23:00:00"));
    b.referral(referral(LEAD, false, "J18", "2025-02-01 00:00:00"));
    b.referral(referral(SECONDARY, false, "I10", "2025-01-07 10:00:00"));
    b.referral(referral(CENTRE, true, "I10", "2024-12-01 10:00:00"));
    for essential in [true, true, false] {
        b.prescription(PrescriptionFact {
            id: next_id(),
            unit: CENTRE,
            day: d("2024-12-03"),
            essential,
        });
    }
    for tcm in [true, false, false] {
        b.physician(PhysicianFact {
            practitioner: next_id(),
            unit: CENTRE,
            tcm,
        });
    }
    b
}

fn get(cube: &Cube, unit: i64, dept: &str, month: &str, measure: Measure) -> i64 {
    let rollup = Rollup::new(cube, Some(&HashSet::from([unit])), Some(dept));
    rollup.total(measure, Period::Month(m(month)))
}

#[test]
fn every_measure_by_hand() {
    let c = build(None);
    use Measure::*;
    for (measure, month, want) in [
        (Visits, "2024-12", 3),
        (VisitsInRegion, "2024-12", 2),
        (VisitsPrimary, "2024-12", 1),
        (ChronicVisits, "2024-12", 2),
        (ChronicVisitsPrimary, "2024-12", 1),
        (Visits, "2024-11", 1),
        (Residents, "2024-11", 3),
        (KeyResidents, "2024-11", 1),
        (KeyResidents, "2024-12", 2),
        (Contracted, "2024-11", 2),
        (Contracted, "2024-12", 1),
        (KeyContracted, "2024-11", 1),
        (KeyContracted, "2024-12", 1),
        (Contracted, "2024-02", 1),
        (Contracted, "2024-03", 2),
        // Window 2024-01…2024-12: 4 due, July missed. 2025-02: window from 2024-03, still
        // July in it.
        (HypertensionManaged, "2024-12", 1),
        (HypertensionStandard, "2024-12", 0),
        (HypertensionStandard, "2025-02", 0),
        (HypertensionManaged, "2024-01", 1),
        (HypertensionStandard, "2024-06", 1),
        (DiabetesManaged, "2024-05", 0),
        (DiabetesManaged, "2024-06", 1),
        (DiabetesStandard, "2025-02", 1),
        (FollowUpsDue, "2024-07", 1),
        (FollowUpsDone, "2024-07", 0),
        (FollowUpsDone, "2024-06", 1),
        (RxLines, "2024-12", 3),
        (RxEssential, "2024-12", 2),
        (Physicians, "2024-01", 3),
        (TcmPhysicians, "2025-02", 1),
        (ReferralsUp, "2024-12", 1),
        (ClinicVisits, "2024-12", 1),
    ] {
        assert_eq!(
            get(&c, CENTRE, "", month, measure),
            want,
            "{measure:?} {month}"
        );
    }
    for (measure, dept, month, want) in [
        (Discharges, "", "2025-01", 2),
        (InpatientDays, "", "2025-01", 8),
        (InpatientDays, "XXG", "2025-01", 8),
        (Discharges, "XXG", "2024-12", 0),
        (ClinicVisits, "XXG", "2024-12", 1),
        (ClinicVisits, "JZK", "2024-11", 1),
        (LeadReferralsDown, "", "2025-01", 2),
        (LeadChronicReferralsDown, "", "2025-01", 2),
        (LeadReferralsDown, "", "2024-01", 1),
        (ReferralsDown, "", "2025-02", 1),
    ] {
        assert_eq!(
            get(&c, LEAD, dept, month, measure),
            want,
            "{measure:?} {dept} {month}"
        );
    }
    assert_eq!(
        get(&c, SECONDARY, "", "2025-01", Measure::LeadReferralsDown),
        0
    );
    assert_eq!(get(&c, SECONDARY, "", "2025-01", Measure::ReferralsDown), 1);
}

#[test]
fn shipped_indicators_by_hand() {
    let c = build(None);
    let lib = Library::shipped().unwrap();
    medgrid_analytics::evaluate::check_library(&lib).unwrap();
    let all = Rollup::new(&c, None, None);
    let p = |s: &str| Period::parse("period", s).unwrap();
    let value = |id: &str, period: &str| {
        let e = evaluate(lib.get(id).unwrap(), p(period), &all).unwrap();
        (e.value.numerator, e.value.denominator)
    };
    assert_eq!(value("in_region_visit_rate", "2024-12"), (2, 3));
    // Q4 adds November's one in-city visit.
    assert_eq!(value("in_region_visit_rate", "2024-Q4"), (3, 4));
    assert_eq!(value("primary_visit_share", "2024-12"), (1, 2));
    assert_eq!(value("chronic_primary_visit_share", "2024-12"), (1, 2));
    // Stocks are read at the period's last month: Q4 is December.
    assert_eq!(value("contract_rate", "2024-11"), (2, 3));
    assert_eq!(value("contract_rate", "2024-Q4"), (1, 3));
    assert_eq!(value("key_population_contract_rate", "2024-12"), (1, 2));
    assert_eq!(value("hypertension_standard_management", "2024-12"), (0, 1));
    assert_eq!(value("diabetes_standard_management", "2024-12"), (1, 1));
    assert_eq!(value("essential_medicine_share", "2024-12"), (2, 3));
    // Growth: January 2025 against January 2024 — (2 − 1) ÷ 1.
    assert_eq!(value("lead_down_referral_growth", "2025-01"), (1, 1));
    assert_eq!(value("chronic_down_referral_growth", "2025-01"), (1, 1));
    // All referrals: 3 in January 2025 (lead 2, secondary 1) against 1.
    assert_eq!(value("referral_growth", "2025-01"), (2, 1));
    assert_eq!(value("average_length_of_stay", "2025-01"), (8, 2));
    assert_eq!(value("tcm_physician_share", "2024-06"), (1, 3));
    assert_eq!(value("follow_up_completion_rate", "2024"), (4, 5));

    // Limited to the months with data: a year under way is counted over its months so far and
    // compared with the same months a year earlier; nothing to compare before the data.
    let known = Rollup::new(&c, None, None).within(m("2024-01"), m("2025-02"));
    let value_known = |id: &str, period: &str| {
        let e = evaluate(lib.get(id).unwrap(), p(period), &known).unwrap();
        (e.value.numerator, e.value.denominator)
    };
    assert_eq!(value_known("referral_growth", "2025"), (3, 1));
    assert_eq!(value_known("contract_rate", "2025"), (1, 3));
    assert_eq!(value_known("lead_down_referral_growth", "2024-06"), (0, 0));
    assert_eq!(value("lead_down_referral_growth", "2025"), (2, 1));

    let judged = |id: &str, period: &str| {
        let i = lib.get(id).unwrap();
        let e = evaluate(i, p(period), &all).unwrap();
        e.value
            .rag(i.direction, i.targets_in(p(period).last()).unwrap())
    };
    assert_eq!(judged("in_region_visit_rate", "2024-12"), Rag::Red);
    assert_eq!(judged("lead_down_referral_growth", "2025-01"), Rag::Green);
    assert_eq!(judged("average_length_of_stay", "2025-01"), Rag::Green);
    assert_eq!(judged("essential_medicine_share", "2024-12"), Rag::Green);
    assert_eq!(judged("tcm_physician_share", "2024-06"), Rag::Green);
    assert_eq!(
        judged("hypertension_standard_management", "2024-12"),
        Rag::Red
    );
    assert_eq!(judged("average_length_of_stay", "2024-12"), Rag::None);
}

#[test]
fn the_cube_of_some_units_is_their_part_of_the_whole() {
    let whole = build(None);
    for only in [[LEAD].as_slice(), &[CENTRE], &[LEAD, SECONDARY]] {
        let only: HashSet<i64> = only.iter().copied().collect();
        let part = build(Some(only.clone()));
        let expected = Cube::from_cells(
            whole
                .cells
                .iter()
                .filter(|(c, _)| only.contains(&c.unit))
                .map(|(c, v)| (c.clone(), *v)),
        );
        assert_eq!(part, expected, "{only:?}");
        assert!(!part.is_empty());
    }
}

#[test]
fn a_trace_lists_the_records_behind_a_cell() {
    use medgrid_analytics::cube::Trace;
    let trace = |measure, first: &str, last: &str, department: Option<&str>, only: i64| {
        let b = Builder::new(span(), units(), Some(HashSet::from([only]))).tracing(Trace {
            measure,
            first: m(first),
            last: m(last),
            department: department.map(str::to_owned),
        });
        feed(b).finish_traced().1
    };
    // December's three visits of the centre's residents are three encounters; the two
    // hypertension visits in the city are two of them.
    let visits = trace(Measure::Visits, "2024-12", "2024-12", None, CENTRE);
    assert_eq!(visits.len(), 3);
    assert!(visits.iter().all(|r| matches!(r, Record::Encounter(_))));
    let chronic = trace(Measure::ChronicVisits, "2024-12", "2024-12", None, CENTRE);
    assert_eq!(chronic.len(), 2);
    assert!(chronic.iter().all(|r| visits.contains(r)));
    // Contracted at the end of November: residents 1 and 3.
    let contracted = trace(Measure::Contracted, "2024-11", "2024-11", None, CENTRE);
    assert_eq!(contracted, [Record::Resident(1), Record::Resident(3)]);
    // The lead's cardiology discharged two in January; a department's trace keeps to it.
    assert_eq!(
        trace(Measure::Discharges, "2025-01", "2025-01", Some("XXG"), LEAD).len(),
        2
    );
    assert_eq!(
        trace(Measure::Discharges, "2025-01", "2025-01", Some("JZK"), LEAD).len(),
        0
    );
    assert_eq!(
        trace(Measure::LeadReferralsDown, "2025-01", "2025-02", None, LEAD).len(),
        3
    );
}

#[test]
fn counting_apart_on_threads_equals_counting_in_the_builder() {
    // One more visit, at a department the city has nowhere else, counted in a tally of its
    // own: the tallies merge departments by name.
    let extra = EncounterFact {
        id: 9_999,
        resident: 2,
        place_unit: Some(LEAD),
        department: Some("ZZK"),
        kind: EncounterKind::Visit,
        in_region: true,
        diagnosis: "E11.9",
        started_on: d("2024-08-08"),
        ended_on: d("2024-08-08"),
    };
    let mut whole = feed(Builder::new(span(), units(), None));
    whole.encounter(extra);
    let whole = whole.finish();
    let apart = feed(Builder::new(span(), units(), None));
    let mut t = apart.tally();
    apart.count_encounter(&mut t, extra);
    let (apart, _) = apart.finish_with(vec![t, Builder::new(span(), units(), None).tally()], 3);
    assert_eq!(apart, whole);
    assert_eq!(
        get(&whole, LEAD, "ZZK", "2024-08", Measure::ClinicVisits),
        1
    );
}

#[test]
fn management_counts_a_follow_up_for_twelve_months_exactly() {
    let mut b = Builder::new(span(), units(), None);
    b.resident(resident(1, "1980-01-01", true, false));
    b.follow_up(follow_up(1, Program::Hypertension, "2024-02-10", true));
    let c = b.finish();
    // Due in February 2024: in the windows of February 2024 … January 2025, not February 2025.
    assert_eq!(
        get(&c, CENTRE, "", "2024-01", Measure::HypertensionManaged),
        0
    );
    assert_eq!(
        get(&c, CENTRE, "", "2024-02", Measure::HypertensionManaged),
        1
    );
    assert_eq!(
        get(&c, CENTRE, "", "2025-01", Measure::HypertensionManaged),
        1
    );
    assert_eq!(
        get(&c, CENTRE, "", "2025-01", Measure::HypertensionStandard),
        1
    );
    assert_eq!(
        get(&c, CENTRE, "", "2025-02", Measure::HypertensionManaged),
        0
    );
}
