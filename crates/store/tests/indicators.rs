//! The indicator cube as stored (R11): built when a city is loaded, refreshed from the facts
//! that arrive later, always equal to a rebuild from every fact; and the groups' own targets.
//! Run unchanged on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should stop the test

use std::collections::HashSet;

use chrono::NaiveDate;

use medgrid_analytics::{Measure, Rollup, Span};
use medgrid_domain::access::Role;
use medgrid_domain::indicator::{Level, Month, Period, Targets};
use medgrid_domain::org::layout::parse_layout;
use medgrid_domain::org::{MemberRole, Unit};
use medgrid_domain::referral::Priority;
use medgrid_sim::Params;
use medgrid_store::referral::{Move, ReferralDraft};
use medgrid_store::{Actor, AuditFilter, Store};
use medgrid_testkit::on_both_databases;

mod support;

const JINHUA: &[u8] = include_bytes!("../../../data/layouts/jinhua.csv");
const SEED: u64 = 11;

/// A small city loaded, with the lead hospital of the first group and a primary unit of it.
async fn loaded(store: &Store) -> (Unit, Unit) {
    let actor = Actor::system("test");
    let layout = parse_layout(JINHUA).unwrap();
    let city = store.import_layout(&actor, &layout).await.unwrap().city_id;
    store
        .register_staff(&actor, city, &layout, SEED)
        .await
        .unwrap();
    let params = Params::new(SEED, 1_500, NaiveDate::from_ymd_opt(2025, 1, 1).unwrap());
    store
        .load_population(&actor, city, &layout, &params, |_| {})
        .await
        .unwrap();
    let tree = store.city_tree(city).await.unwrap();
    let lead = tree
        .units
        .iter()
        .find(|u| u.role == MemberRole::Lead)
        .unwrap()
        .clone();
    let primary = tree
        .units
        .iter()
        .find(|u| u.role == MemberRole::Primary && u.group_id == lead.group_id)
        .unwrap()
        .clone();
    (lead, primary)
}

async fn span(store: &Store) -> Span {
    let s = store
        .cube_state()
        .await
        .unwrap()
        .expect("cube built on load");
    Span {
        first: Month::of_day(&s.first_month).unwrap(),
        last: Month::of_day(&s.last_month).unwrap(),
    }
}

async fn stored_equals_rebuild(store: &Store) {
    let s = span(store).await;
    let stored = store
        .stored_cube(
            store.cube_state().await.unwrap().as_ref(),
            None,
            s.first,
            s.last,
        )
        .await
        .unwrap();
    let rebuilt = store.build_cube(s, None).await.unwrap();
    assert!(!stored.is_empty());
    assert_eq!(stored.len(), rebuilt.len());
    assert!(stored == rebuilt, "the stored cube differs from a rebuild");
}

async fn cube_built_on_load_equals_a_rebuild(store: Store) {
    let (lead, _) = loaded(&store).await;
    let s = span(&store).await;
    assert_eq!(s.first.to_string(), "2025-01");
    stored_equals_rebuild(&store).await;
    // Every resident lives somewhere: the residents measure over all units is the city's.
    let cube = store
        .stored_cube(
            store.cube_state().await.unwrap().as_ref(),
            None,
            s.first,
            s.last,
        )
        .await
        .unwrap();
    let all = Rollup::new(&cube, None, None);
    assert_eq!(all.total(Measure::Residents, Period::Month(s.last)), 1_500);
    assert!(all.total(Measure::Visits, Period::Year(2025)) > 1_500);
    // The lead hospital discharges patients; its cardiology has its own cells.
    let lead_only = HashSet::from([lead.id]);
    let lead_cube = store
        .stored_cube(
            store.cube_state().await.unwrap().as_ref(),
            Some(&lead_only),
            s.first,
            s.last,
        )
        .await
        .unwrap();
    assert!(lead_cube.cells.keys().all(|c| c.unit == lead.id));
    assert!(Rollup::new(&lead_cube, None, None).total(Measure::Discharges, Period::Year(2025)) > 0);
    assert!(lead_cube.cells.keys().any(|c| !c.department.is_empty()));
    let audit = store
        .list_audit(&AuditFilter {
            action_prefix: Some("indicator.rebuild".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
}

async fn refresh_takes_new_facts_and_still_equals_a_rebuild(store: Store) {
    let (lead, primary) = loaded(&store).await;
    let actor = Actor::system("test");
    let s = span(&store).await;
    // Nothing new: nothing rebuilt.
    let nothing = store.refresh_cube(&actor).await.unwrap();
    assert_eq!((nothing.rebuilt, nothing.units), (false, 0));

    let month = Month::new(2025, 6).unwrap();
    let primary_only = HashSet::from([primary.id]);
    let before = store
        .stored_cube(
            store.cube_state().await.unwrap().as_ref(),
            Some(&primary_only),
            s.first,
            s.last,
        )
        .await
        .unwrap();
    let before = Rollup::new(&before, None, None).total(Measure::ReferralsUp, Period::Month(month));
    let (_, patient) = store.referrals_to(lead.id, 1).await.unwrap()[0];
    let sent = NaiveDate::from_ymd_opt(2025, 6, 10)
        .unwrap()
        .and_hms_opt(9, 0, 0)
        .unwrap();
    support::accepted_referral(&store, &primary, &lead, patient, Priority::Routine, sent).await;

    let r = store.refresh_cube(&actor).await.unwrap();
    assert!(
        !r.rebuilt,
        "a referral inside the months covered refreshes, not rebuilds"
    );
    assert_eq!(r.units, 1, "only the referring unit's cells change");
    let after = store
        .stored_cube(
            store.cube_state().await.unwrap().as_ref(),
            Some(&primary_only),
            s.first,
            s.last,
        )
        .await
        .unwrap();
    let after = Rollup::new(&after, None, None).total(Measure::ReferralsUp, Period::Month(month));
    assert_eq!(after, before + 1);
    stored_equals_rebuild(&store).await;

    // A draft cancelled before it was sent never was a referral: it counts nowhere.
    let draft = store
        .create_referral(
            &actor,
            &ReferralDraft {
                resident_id: patient,
                from_unit_id: primary.id,
                to_unit_id: Some(lead.id),
                priority: Some(Priority::Routine),
                diagnosis: "I21.0".into(),
                reason: "胸痛待查".into(),
                send: false,
                ..ReferralDraft::default()
            },
            sent,
        )
        .await
        .unwrap();
    let sender = support::unit_principal("sender", Role::FamilyDoctor, &primary);
    store
        .move_referral(
            &actor,
            &sender,
            draft.id,
            &Move::Cancel {
                reason: "患者改期".into(),
            },
            sent + chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    store.refresh_cube(&actor).await.unwrap();
    let cancelled = store
        .stored_cube(
            store.cube_state().await.unwrap().as_ref(),
            Some(&primary_only),
            s.first,
            s.last,
        )
        .await
        .unwrap();
    assert_eq!(
        Rollup::new(&cancelled, None, None).total(Measure::ReferralsUp, Period::Month(month)),
        after,
        "a cancelled draft is not counted"
    );
    stored_equals_rebuild(&store).await;

    // A fact beyond the months covered widens them: the cube is rebuilt.
    let later = sent + chrono::Duration::days(400);
    support::accepted_referral(&store, &primary, &lead, patient, Priority::Routine, later).await;
    let r = store.refresh_cube(&actor).await.unwrap();
    assert!(r.rebuilt);
    assert_eq!(span(&store).await.last, Month::of_day("2026-07").unwrap());
    stored_equals_rebuild(&store).await;
}

async fn group_targets_are_kept_as_versions_and_audited(store: Store) {
    let (lead, _) = loaded(&store).await;
    let group = lead.path();
    let group = medgrid_domain::access::OrgPath {
        unit: None,
        ..group
    };
    let t = |from: &str, target: &str| Targets {
        from: from.into(),
        target: Level::parse("target", target).unwrap(),
        amber: Level::parse("amber", "60").unwrap(),
    };
    let actor = Actor::system("test");
    store
        .set_indicator_target(
            &actor,
            &group,
            "primary_visit_share",
            &t("2025-01", "70"),
            Some("003"),
        )
        .await
        .unwrap();
    store
        .set_indicator_target(
            &actor,
            &group,
            "primary_visit_share",
            &t("2025-07", "72.5"),
            None,
        )
        .await
        .unwrap();
    let kept = store.indicator_targets(group.group.unwrap()).await.unwrap();
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0].targets, t("2025-01", "70"));
    assert_eq!(kept[1].targets.target, Level(7250));
    assert_eq!(kept[0].note.as_deref(), Some("003"));
    let audit = store
        .list_audit(&AuditFilter {
            action_prefix: Some("indicator.target".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 2);
}

on_both_databases!(
    cube_built_on_load_equals_a_rebuild,
    refresh_takes_new_facts_and_still_equals_a_rebuild,
    group_targets_are_kept_as_versions_and_audited,
);
