//! Weekly timetables, the reservation compliance report and the group bed pool (R5), run
//! unchanged on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should stop the test

use std::collections::BTreeSet;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use medgrid_domain::capacity::Policy;
use medgrid_domain::org::layout::{parse_layout, Layout};
use medgrid_domain::org::{MemberRole, Unit};
use medgrid_sim::Params;
use medgrid_store::beds::{BedRequest, WardDraft};
use medgrid_store::booking::{BookingRequest, SessionDraft};
use medgrid_store::schedule::ScheduleDraft;
use medgrid_store::{Actor, AuditFilter, Store, StoreError};
use medgrid_testkit::on_both_databases;

mod support;
use medgrid_domain::referral::Priority;

const JINHUA: &[u8] = include_bytes!("../../../data/layouts/jinhua.csv");
const CITY_SEED: u64 = 7;

// ---- Helpers copied from contract.rs ----

fn small_city() -> Params {
    Params::new(
        CITY_SEED,
        2_000,
        chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
    )
}

async fn jinhua_with_staff(store: &Store) -> (i64, Layout) {
    let layout = parse_layout(JINHUA).expect("bundled layout parses");
    let city = store
        .import_layout(&Actor::system("test"), &layout)
        .await
        .unwrap()
        .city_id;
    store
        .register_staff(&Actor::system("test"), city, &layout, CITY_SEED)
        .await
        .unwrap();
    (city, layout)
}

/// June 2025; the 20th is a Friday.
fn day(d: u32, h: u32) -> NaiveDateTime {
    date(d).and_hms_opt(h, 0, 0).unwrap()
}

fn date(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, d).unwrap()
}

/// The loaded small city, the lead hospital of the first group and one of its primary units.
async fn city_for_booking(store: &Store) -> (Unit, Unit) {
    let (city, layout) = jinhua_with_staff(store).await;
    store
        .load_population(&Actor::system("test"), city, &layout, &small_city(), |_| {})
        .await
        .unwrap();
    let tree = store.city_tree(city).await.unwrap();
    let lead = tree
        .units
        .iter()
        .find(|u| u.role == MemberRole::Lead)
        .unwrap()
        .clone();
    let other = tree
        .units
        .iter()
        .find(|u| u.role == MemberRole::Primary && u.group_id == lead.group_id)
        .unwrap()
        .clone();
    (lead, other)
}

/// A live up-referral, sent on the 10th at 09:00 and accepted an hour later.
async fn accepted_referral(
    store: &Store,
    from: &medgrid_domain::org::Unit,
    to: &medgrid_domain::org::Unit,
    resident: i64,
) -> i64 {
    support::accepted_referral(store, from, to, resident, Priority::Routine, day(10, 9)).await
}

fn session(
    department: &str,
    starts_at: NaiveDateTime,
    capacity: u32,
    reserved: u32,
) -> SessionDraft {
    SessionDraft {
        department_code: department.into(),
        practitioner_id: None,
        starts_at,
        slot_minutes: 10,
        capacity,
        reserved,
    }
}

fn timetable(department: &str, weekday: u32, capacity: u32, reserved: u32) -> ScheduleDraft {
    ScheduleDraft {
        department_code: department.into(),
        practitioner_id: None,
        weekday,
        start_time: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
        slot_minutes: 10,
        capacity,
        reserved,
        expert_visit: false,
    }
}

fn invalid_fields(e: StoreError) -> Vec<(String, &'static str)> {
    match e {
        StoreError::Invalid(inv) => inv.0.into_iter().map(|f| (f.field, f.code)).collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn bed(ward_id: i64, d: u32, resident_id: i64, referral_id: Option<i64>, key: &str) -> BedRequest {
    BedRequest {
        ward_id,
        admit_on: date(d),
        resident_id,
        referral_id,
        idempotency_key: key.into(),
        now: day(10, 12),
    }
}

// ---- Timetables ----

async fn a_refused_timetable_names_every_field_and_writes_nothing(store: Store) {
    let (lead, other) = city_for_booking(&store).await;
    let policy = Policy::default();
    let actor = Actor::system("test");
    let mut bad = timetable("NOPE", 8, 30, 9);
    bad.practitioner_id = Some(999_999);
    let fields = invalid_fields(
        store
            .create_schedule(&actor, &lead, &bad, &policy)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        fields,
        [
            ("reserved".to_owned(), "below_reservation"),
            ("weekday".to_owned(), "out_of_range"),
            ("department_code".to_owned(), "not_found"),
            ("practitioner_id".to_owned(), "not_at_unit"),
        ]
    );
    // An expert visit names its expert, and the expert comes from the lead hospital.
    let mut expert = timetable("QK", 2, 12, 0);
    expert.expert_visit = true;
    let fields = invalid_fields(
        store
            .create_schedule(&actor, &other, &expert, &policy)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        fields,
        [("practitioner_id".to_owned(), "required_for_expert_visit")]
    );
    let local = store.practitioners(Some(other.id), None, 50).await.unwrap();
    let mut local_only = None;
    for pr in &local {
        let mut at_lead = false;
        for s in &pr.sites {
            at_lead |= store.unit(s.unit_id).await.unwrap().role == MemberRole::Lead;
        }
        if !at_lead {
            local_only = Some(pr.id);
            break;
        }
    }
    expert.practitioner_id = Some(local_only.expect("a practitioner of the primary unit only"));
    let fields = invalid_fields(
        store
            .create_schedule(&actor, &other, &expert, &policy)
            .await
            .unwrap_err(),
    );
    assert_eq!(fields, [("practitioner_id".to_owned(), "not_lead_expert")]);
    assert!(store.schedules(lead.id).await.unwrap().is_empty());
    assert!(store.schedules(other.id).await.unwrap().is_empty());
    let audited = store
        .list_audit(&AuditFilter {
            limit: 500,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(!audited.iter().any(|e| e.action == "schedule.create"));
    // A lead-hospital expert who also practises at the primary unit may hold the visit.
    let specialist = store
        .practitioners(Some(lead.id), None, 1)
        .await
        .unwrap()
        .remove(0);
    store
        .add_practice_site(&actor, specialist.id, &other, None)
        .await
        .unwrap();
    expert.practitioner_id = Some(specialist.id);
    let id = store
        .create_schedule(&actor, &other, &expert, &policy)
        .await
        .unwrap();
    let stored = store.schedules(other.id).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, id);
    assert!(stored[0].expert_visit);
    assert_eq!(stored[0].practitioner_id, Some(specialist.id));
    assert_eq!(stored[0].start_time, expert.start_time);
    assert_eq!(stored[0].weekday, 2);
    let audited = store
        .list_audit(&AuditFilter {
            limit: 500,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(audited.iter().any(|e| e.action == "schedule.create"));
}

async fn timetables_open_each_session_once(store: Store) {
    let (lead, other) = city_for_booking(&store).await;
    let policy = Policy::default();
    let actor = Actor::system("test");
    let friday = store
        .create_schedule(&actor, &lead, &timetable("XXG", 5, 30, 10), &policy)
        .await
        .unwrap();
    let monday = store
        .create_schedule(&actor, &other, &timetable("QK", 1, 12, 0), &policy)
        .await
        .unwrap();
    // 16–29 June: Fridays 20 and 27, Mondays 16 and 23.
    let opened = store
        .open_scheduled_sessions(&actor, date(16), date(29), &policy)
        .await
        .unwrap();
    assert_eq!(opened, 4);
    let again = store
        .open_scheduled_sessions(&actor, date(14), date(29), &policy)
        .await
        .unwrap();
    assert_eq!(again, 0, "nothing opened twice");
    let fridays = store.scheduled_sessions(friday).await.unwrap();
    let starts: Vec<_> = fridays.iter().map(|s| s.starts_at).collect();
    assert_eq!(starts, [day(20, 8), day(27, 8)]);
    for s in &fridays {
        let slots = store.slots(s.session_id).await.unwrap();
        assert_eq!(slots.len(), 30);
        assert_eq!(slots.iter().filter(|x| x.reserved).count(), 10);
        assert_eq!(
            slots[1].starts_at,
            s.starts_at + chrono::Duration::minutes(10)
        );
    }
    let mondays = store.scheduled_sessions(monday).await.unwrap();
    assert_eq!(
        mondays.iter().map(|s| s.starts_at).collect::<Vec<_>>(),
        [day(16, 8), day(23, 8)]
    );
    let slots = store.slots(mondays[0].session_id).await.unwrap();
    assert_eq!(slots.len(), 12);
    assert!(slots.iter().all(|s| !s.reserved));
    // A timetable change that breaks the rule is refused and changes nothing.
    let fields = invalid_fields(
        store
            .change_schedule_reservation(&actor, &lead, friday, 9, &policy)
            .await
            .unwrap_err(),
    );
    assert_eq!(fields, [("reserved".to_owned(), "below_reservation")]);
    assert_eq!(store.schedules(lead.id).await.unwrap()[0].reserved, 10);
    // Another unit's timetable cannot be changed through this one.
    assert!(matches!(
        store
            .change_schedule_reservation(&actor, &lead, monday, 3, &policy)
            .await
            .unwrap_err(),
        StoreError::NotFound
    ));
    let changed = store
        .change_schedule_reservation(&actor, &lead, friday, 15, &policy)
        .await
        .unwrap();
    assert_eq!(changed.reserved, 15);
    assert_eq!(store.schedules(lead.id).await.unwrap()[0].reserved, 15);
    // Sessions opened later use it; those already open keep theirs.
    assert_eq!(
        store
            .open_scheduled_sessions(&actor, date(30), date(30) + chrono::Days::new(6), &policy)
            .await
            .unwrap(),
        2
    );
    let fridays = store.scheduled_sessions(friday).await.unwrap();
    assert_eq!(
        fridays.iter().map(|s| s.reserved).collect::<Vec<_>>(),
        [10, 10, 15]
    );
    let slots = store.slots(fridays[2].session_id).await.unwrap();
    assert_eq!(slots.iter().filter(|s| s.reserved).count(), 15);
    // A backwards range is refused.
    let fields = invalid_fields(
        store
            .open_scheduled_sessions(&actor, date(29), date(16), &policy)
            .await
            .unwrap_err(),
    );
    assert_eq!(fields, [("until".to_owned(), "out_of_range")]);
}

async fn simultaneous_runs_open_each_session_once(store: Store) {
    let (lead, other) = city_for_booking(&store).await;
    let policy = Policy::default();
    let actor = Actor::system("test");
    let mut schedules = Vec::new();
    for weekday in 1..=7 {
        schedules.push(
            store
                .create_schedule(&actor, &lead, &timetable("XXG", weekday, 9, 3), &policy)
                .await
                .unwrap(),
        );
        schedules.push(
            store
                .create_schedule(&actor, &other, &timetable("QK", weekday, 4, 0), &policy)
                .await
                .unwrap(),
        );
    }
    // Four runs over the same four weeks at once: 14 timetables × 4 weeks sessions in all.
    let mut runs = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        runs.push(tokio::spawn(async move {
            store
                .open_scheduled_sessions(
                    &Actor::system("test"),
                    date(2),
                    date(29),
                    &Policy::default(),
                )
                .await
                .unwrap()
        }));
    }
    let mut total = 0;
    for r in runs {
        total += r.await.unwrap();
    }
    assert_eq!(total, 56, "each session opened by exactly one run");
    let mut seen = 0;
    for id in schedules {
        let sessions = store.scheduled_sessions(id).await.unwrap();
        assert_eq!(sessions.len(), 4);
        let distinct: BTreeSet<_> = sessions.iter().map(|s| s.starts_at).collect();
        assert_eq!(distinct.len(), 4);
        for s in sessions {
            assert_eq!(
                store.slots(s.session_id).await.unwrap().len() as u32,
                s.capacity,
                "slots written once"
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 56);
}

// ---- Compliance report ----

async fn the_compliance_report_counts_reservations_and_bookings(store: Store) {
    let (lead, other) = city_for_booking(&store).await;
    let policy = Policy::default();
    let actor = Actor::system("test");
    let (_, slots) = store
        .open_care_session(&actor, &lead, &session("XXG", day(20, 8), 30, 10), &policy)
        .await
        .unwrap();
    // A session opened under a quarter share falls short of the default third.
    let quarter = Policy {
        session_share: (1, 4),
        ..Policy::default()
    };
    store
        .open_care_session(&actor, &lead, &session("XXG", day(21, 8), 30, 8), &quarter)
        .await
        .unwrap();
    store
        .open_care_session(&actor, &other, &session("QK", day(20, 8), 12, 0), &policy)
        .await
        .unwrap();
    let reserved: Vec<_> = slots.iter().filter(|s| s.reserved).collect();
    let general: Vec<_> = slots.iter().filter(|s| !s.reserved).collect();
    let (_, patient) = store.referrals_to(lead.id, 1).await.unwrap()[0];
    let referral = accepted_referral(&store, &other, &lead, patient).await;
    let req = |slot, resident, key: &str, referral| {
        BookingRequest::new(slot, resident, referral, key, day(10, 12))
    };
    store
        .book(
            &actor,
            &policy,
            &req(reserved[0].id, patient, "r1", Some(referral)),
        )
        .await
        .unwrap();
    store
        .book(&actor, &policy, &req(general[0].id, 2, "g1", None))
        .await
        .unwrap();
    let mut late = req(reserved[1].id, 3, "g2", None);
    late.now = reserved[1].starts_at - chrono::Duration::hours(23);
    store.book(&actor, &policy, &late).await.unwrap();
    let rows = store
        .reservation_compliance(lead.group_id, None, date(20), date(21), &policy)
        .await
        .unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let row = rows
        .iter()
        .find(|r| r.unit_id == lead.id && r.day == date(20))
        .unwrap();
    assert_eq!(row.unit_role, "lead");
    assert_eq!(row.department_code, "XXG");
    assert_eq!(
        (row.sessions, row.capacity, row.reserved, row.required),
        (1, 30, 10, 10)
    );
    assert!(row.compliant, "{row:?}");
    assert_eq!(
        (
            row.reserved_booked_by_referral,
            row.reserved_taken_by_general,
            row.referral_bookings,
            row.general_bookings
        ),
        (1, 1, 1, 2)
    );
    let short = rows
        .iter()
        .find(|r| r.unit_id == lead.id && r.day == date(21))
        .unwrap();
    assert_eq!((short.reserved, short.required), (8, 10));
    assert!(!short.compliant);
    let primary = rows.iter().find(|r| r.unit_id == other.id).unwrap();
    assert_eq!((primary.reserved, primary.required), (0, 4));
    assert!(primary.compliant, "only lead hospitals owe the share");
    assert_eq!(primary.general_bookings + primary.referral_bookings, 0);
    // Narrowed to one unit and one day.
    let one = store
        .reservation_compliance(None, Some(other.id), date(20), date(20), &policy)
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].unit_id, other.id);
    assert!(store
        .reservation_compliance(lead.group_id, None, date(22), date(28), &policy)
        .await
        .unwrap()
        .is_empty());
    // The row serializes for the report's JSON.
    let json = serde_json::to_value(row).unwrap();
    assert_eq!(json["day"], "2025-06-20");
}

// ---- Beds ----

async fn a_lead_ward_keeps_a_quarter_of_its_beds(store: Store) {
    let (lead, other) = city_for_booking(&store).await;
    let policy = Policy::default();
    let actor = Actor::system("test");
    let ward = |beds, reserved_beds| WardDraft {
        department_code: "XXG".into(),
        name: "心内科一病区".into(),
        beds,
        reserved_beds,
    };
    let fields = invalid_fields(
        store
            .create_ward(&actor, &lead, &ward(10, 2), &policy)
            .await
            .unwrap_err(),
    );
    assert_eq!(fields, [("reserved_beds".to_owned(), "below_reservation")]);
    let mut bad = ward(10, 3);
    bad.department_code = "NOPE".into();
    bad.name = " ".into();
    let fields = invalid_fields(
        store
            .create_ward(&actor, &lead, &bad, &policy)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        fields,
        [
            ("name".to_owned(), "required"),
            ("department_code".to_owned(), "not_found")
        ]
    );
    let group = lead.group_id.unwrap();
    assert!(store.bed_pool(group, date(20)).await.unwrap().is_empty());
    let w = store
        .create_ward(&actor, &lead, &ward(10, 3), &policy)
        .await
        .unwrap();
    assert_eq!((w.beds, w.reserved_beds), (10, 3));
    let primary = WardDraft {
        department_code: "QK".into(),
        name: "全科病区".into(),
        beds: 6,
        reserved_beds: 0,
    };
    store
        .create_ward(&actor, &other, &primary, &policy)
        .await
        .unwrap();
    let pool = store.bed_pool(group, date(20)).await.unwrap();
    assert_eq!(pool.len(), 2);
    assert_eq!(pool[0].ward_id, w.id, "lead hospital first");
    assert_eq!((pool[0].free_general, pool[0].free_reserved), (7, 3));
    assert_eq!((pool[1].free_general, pool[1].free_reserved), (6, 0));
}

async fn simultaneous_bed_bookings_never_share_a_bed(store: Store) {
    let (lead, _) = city_for_booking(&store).await;
    let policy = Policy::default();
    let actor = Actor::system("test");
    let ward = store
        .create_ward(
            &actor,
            &lead,
            &WardDraft {
                department_code: "XXG".into(),
                name: "心内科一病区".into(),
                beds: 10,
                reserved_beds: 3,
            },
            &policy,
        )
        .await
        .unwrap();
    // 30 general admissions at once, well before the day: only the 7 general beds go.
    let mut tasks = Vec::new();
    for patient in 1..=30i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            match store
                .book_bed(
                    &Actor::system("test"),
                    &Policy::default(),
                    &bed(ward.id, 20, patient, None, &format!("p{patient}")),
                )
                .await
            {
                Ok(b) => Some(b),
                Err(StoreError::Conflict(e)) => {
                    assert_eq!((e.field.as_str(), e.code), ("ward", "full"));
                    None
                }
                Err(e) => panic!("{e:?}"),
            }
        }));
    }
    let mut booked = Vec::new();
    for t in tasks {
        if let Some(b) = t.await.unwrap() {
            booked.push(b);
        }
    }
    assert_eq!(booked.len(), 7, "{booked:?}");
    let beds: BTreeSet<u32> = booked.iter().map(|b| b.bed_no).collect();
    assert_eq!(beds, (4..=10).collect(), "each general bed once");
    assert!(booked.iter().all(|b| !b.reserved && b.kind == "general"));
    let pool = store
        .bed_pool(lead.group_id.unwrap(), date(20))
        .await
        .unwrap();
    assert_eq!(
        (
            pool[0].booked_general,
            pool[0].booked_reserved,
            pool[0].free_general,
            pool[0].free_reserved
        ),
        (7, 0, 0, 3)
    );
    // Another day is untouched.
    let next = store
        .bed_pool(lead.group_id.unwrap(), date(21))
        .await
        .unwrap();
    assert_eq!((next[0].free_general, next[0].free_reserved), (7, 3));
    // Within a day of admission, unused reserved beds return to everyone.
    let mut late = bed(ward.id, 20, 31, None, "late");
    late.now = day(19, 9);
    let b = store.book_bed(&actor, &policy, &late).await.unwrap();
    assert_eq!((b.bed_no, b.reserved), (1, true));
    // Cancelling frees the bed for the next booker, under a fresh reference.
    let cancelled = store
        .cancel_bed_booking(&actor, booked[0].id)
        .await
        .unwrap();
    assert_eq!(cancelled.status, "cancelled");
    let again = store
        .book_bed(&actor, &policy, &bed(ward.id, 20, 32, None, "after-cancel"))
        .await
        .unwrap();
    assert_eq!(again.bed_no, booked[0].bed_no);
    assert_ne!(again.reference, booked[0].reference);
    // The same request sent five times at once books one bed.
    let mut retries = Vec::new();
    for _ in 0..5 {
        let store = store.clone();
        retries.push(tokio::spawn(async move {
            store
                .book_bed(
                    &Actor::system("test"),
                    &Policy::default(),
                    &bed(ward.id, 22, 40, None, "impatient"),
                )
                .await
                .unwrap()
        }));
    }
    let mut answers = Vec::new();
    for r in retries {
        answers.push(r.await.unwrap());
    }
    assert!(answers.iter().all(|b| *b == answers[0]), "{answers:?}");
    let pool = store
        .bed_pool(lead.group_id.unwrap(), date(22))
        .await
        .unwrap();
    assert_eq!(pool[0].booked_general, 1);
    assert!(matches!(
        store
            .cancel_bed_booking(&actor, booked[0].id)
            .await
            .unwrap_err(),
        StoreError::Conflict(_)
    ));
}

async fn a_referral_takes_a_reserved_bed_and_is_booked(store: Store) {
    let (lead, other) = city_for_booking(&store).await;
    let policy = Policy::default();
    let actor = Actor::system("test");
    let ward = store
        .create_ward(
            &actor,
            &lead,
            &WardDraft {
                department_code: "XXG".into(),
                name: "心内科一病区".into(),
                beds: 4,
                reserved_beds: 1,
            },
            &policy,
        )
        .await
        .unwrap();
    let (generated, patient) = store.referrals_to(lead.id, 1).await.unwrap()[0];
    let referral = accepted_referral(&store, &other, &lead, patient).await;
    // Generated history, or a referral of someone else, takes no bed.
    for (req, field) in [
        (
            bed(ward.id, 20, patient, Some(generated), "x1"),
            "referral_id",
        ),
        (
            bed(ward.id, 20, patient + 1, Some(referral), "x2"),
            "referral_id",
        ),
        (
            bed(ward.id, 20, 999_999, Some(referral), "x3"),
            "resident_id",
        ),
    ] {
        let fields = invalid_fields(store.book_bed(&actor, &policy, &req).await.unwrap_err());
        assert_eq!(fields[0].0, field);
    }
    let first = store
        .book_bed(
            &actor,
            &policy,
            &bed(ward.id, 20, patient, Some(referral), "ref"),
        )
        .await
        .unwrap();
    assert_eq!(
        (first.bed_no, first.reserved, first.kind.as_str()),
        (1, true, "referral")
    );
    assert_eq!(
        first.reference,
        format!("BD{}-{}-20250620-1", lead.group_id.unwrap(), ward.id)
    );
    let f = store.referral(referral).await.unwrap();
    assert_eq!(f.status.as_str(), "booked");
    let events = store.referral_events(referral).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(
        (last.transition.as_str(), last.to_status.as_str()),
        ("book", "booked")
    );
    assert!(last.note.as_deref().unwrap().contains(&first.reference));
    // A retry returns the first booking; the key reused for something else is refused.
    let retry = store
        .book_bed(
            &actor,
            &policy,
            &bed(ward.id, 20, patient, Some(referral), "ref"),
        )
        .await
        .unwrap();
    assert_eq!(retry, first);
    match store
        .book_bed(
            &actor,
            &policy,
            &bed(ward.id, 21, patient, Some(referral), "ref"),
        )
        .await
        .unwrap_err()
    {
        StoreError::Conflict(e) => {
            assert_eq!((e.field.as_str(), e.code), ("idempotency_key", "reused"))
        }
        other => panic!("{other:?}"),
    }
    // A booked referral cannot take a second bed.
    let fields = invalid_fields(
        store
            .book_bed(
                &actor,
                &policy,
                &bed(ward.id, 21, patient, Some(referral), "ref2"),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(fields, [("referral_id".to_owned(), "not_accepted")]);
    let pool = store
        .bed_pool(lead.group_id.unwrap(), date(20))
        .await
        .unwrap();
    assert_eq!(
        (
            pool[0].booked_reserved,
            pool[0].free_reserved,
            pool[0].free_general
        ),
        (1, 0, 3)
    );
    // Cancelling the bed sends the referral back to accepted.
    store.cancel_bed_booking(&actor, first.id).await.unwrap();
    assert_eq!(
        store.referral(referral).await.unwrap().status.as_str(),
        "accepted"
    );
    assert_eq!(
        store.bed_booking(first.id).await.unwrap().status,
        "cancelled"
    );
    let pool = store
        .bed_pool(lead.group_id.unwrap(), date(20))
        .await
        .unwrap();
    assert_eq!(pool[0].free_reserved, 1);
    // With the reserved bed taken, the next referral moves on to a general bed.
    let again = store
        .book_bed(
            &actor,
            &policy,
            &bed(ward.id, 20, patient, Some(referral), "ref3"),
        )
        .await
        .unwrap();
    assert_eq!((again.bed_no, again.reserved), (1, true));
    let sent = store.referrals_to(lead.id, 50).await.unwrap();
    let (_, neighbour) = *sent.iter().find(|(_, r)| *r != patient).unwrap();
    let second_referral = accepted_referral(&store, &other, &lead, neighbour).await;
    let second = store
        .book_bed(
            &actor,
            &policy,
            &bed(ward.id, 20, neighbour, Some(second_referral), "ref4"),
        )
        .await
        .unwrap();
    assert_eq!((second.bed_no, second.reserved), (2, false));
}

// ---- Priority windows ----

/// A green-channel referral is booked within its 48 hours or not at all (it is queued first
/// instead); a routine referral may take the same far slot.
async fn a_green_referral_books_within_its_nearer_window(store: Store) {
    let (lead, other) = city_for_booking(&store).await;
    let policy = Policy::default();
    let actor = Actor::system("test");
    let (_, near) = store
        .open_care_session(&actor, &lead, &session("XXG", day(12, 8), 12, 4), &policy)
        .await
        .unwrap();
    let (_, far) = store
        .open_care_session(&actor, &lead, &session("XXG", day(16, 8), 12, 4), &policy)
        .await
        .unwrap();
    let patients = store.referrals_to(lead.id, 2).await.unwrap();
    let (green_patient, routine_patient) = (patients[0].1, patients[1].1);
    let green = support::accepted_referral(
        &store,
        &other,
        &lead,
        green_patient,
        Priority::Green,
        day(11, 9),
    )
    .await;
    let now = day(11, 11);
    let far_slot = far.iter().find(|s| s.reserved).unwrap().id;
    let refused = store
        .book(
            &actor,
            &policy,
            &BookingRequest::new(far_slot, green_patient, Some(green), "green-far", now),
        )
        .await
        .unwrap_err();
    assert_eq!(
        invalid_fields(refused),
        [("slot".to_owned(), "beyond_priority_window")]
    );
    assert_eq!(
        store
            .slots(far[0].session_id)
            .await
            .unwrap()
            .iter()
            .filter(|s| s.status == "free")
            .count(),
        12,
        "the refusal took nothing"
    );
    let near_slot = near.iter().find(|s| s.reserved).unwrap().id;
    let booked = store
        .book(
            &actor,
            &policy,
            &BookingRequest::new(near_slot, green_patient, Some(green), "green-near", now),
        )
        .await
        .unwrap();
    assert_eq!(booked.slot_id, near_slot);
    let routine = support::accepted_referral(
        &store,
        &other,
        &lead,
        routine_patient,
        Priority::Routine,
        day(11, 9),
    )
    .await;
    store
        .book(
            &actor,
            &policy,
            &BookingRequest::new(far_slot, routine_patient, Some(routine), "routine-far", now),
        )
        .await
        .unwrap();
}

on_both_databases!(
    a_green_referral_books_within_its_nearer_window,
    a_refused_timetable_names_every_field_and_writes_nothing,
    timetables_open_each_session_once,
    simultaneous_runs_open_each_session_once,
    the_compliance_report_counts_reservations_and_bookings,
    a_lead_ward_keeps_a_quarter_of_its_beds,
    simultaneous_bed_bookings_never_share_a_bed,
    a_referral_takes_a_reserved_bed_and_is_booked,
);
