//! The store's contract, run unchanged on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should stop the test

use std::collections::BTreeSet;

use sqlx::Connection;

use medgrid_domain::access::{OrgPath, Role, Scope, ScopeKind};
use medgrid_domain::org::layout::parse_layout;
use medgrid_domain::org::layout::Layout;
use medgrid_domain::org::{MemberRole, UnitInput};
use medgrid_sim::table::{Kind, Schema, SinkError};
use medgrid_sim::{schema, Params};
use medgrid_store::{
    Actor, AuditFilter, DbKind, LoadError, NewUser, Store, StoreError, UnitFilter,
};
use medgrid_testkit::{on_both_databases, TestDb};

mod support;
use medgrid_domain::referral::Priority;

const JINHUA: &[u8] = include_bytes!("../../../data/layouts/jinhua.csv");

async fn load_jinhua(store: &Store) -> i64 {
    let layout = parse_layout(JINHUA).expect("bundled layout parses");
    store
        .import_layout(&Actor::system("test"), &layout)
        .await
        .expect("import")
        .city_id
}

fn new_user(username: &str, city: i64) -> NewUser {
    NewUser {
        username: username.into(),
        display_name: username.into(),
        role: Role::Auditor,
        scope: Scope {
            kind: ScopeKind::City,
            path: OrgPath::city(city),
        },
        password_hash: None,
    }
}

async fn layout_import_builds_the_tree(store: Store) {
    let city = load_jinhua(&store).await;
    let tree = store.city_tree(city).await.unwrap();
    assert_eq!(tree.city.division_code, "330700");
    assert_eq!(tree.grids.len(), 3);
    assert_eq!(tree.groups.len(), 3);
    for g in &tree.groups {
        let leads = tree
            .units
            .iter()
            .filter(|u| u.group_id == Some(g.id) && u.role == MemberRole::Lead)
            .count();
        assert_eq!(leads, 1, "group {} has one lead", g.name);
    }
    // The layout rules find no error in what was loaded.
    let findings = store.check_city(city).await.unwrap();
    assert!(
        findings
            .iter()
            .all(|f| f.severity != medgrid_domain::org::rules::Severity::Error),
        "{findings:?}"
    );
    // A second import of the same city is refused whole.
    let again = store
        .import_layout(&Actor::system("test"), &parse_layout(JINHUA).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(again, StoreError::Conflict(ref f) if f.field == "division_code"),
        "{again:?}"
    );
    assert_eq!(store.count_cities().await.unwrap(), 1);
    // The import is audited.
    let events = store
        .list_audit(&AuditFilter {
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(events
        .iter()
        .any(|e| e.action == "layout.import" && e.outcome == "ok"));
}

async fn a_second_lead_is_refused_and_nothing_changes(store: Store) {
    let city = load_jinhua(&store).await;
    let tree = store.city_tree(city).await.unwrap();
    let group = tree.groups[0].id;
    let before = tree.units.len();
    let input = UnitInput {
        code: "EXTRA-LEAD".into(),
        legal_name: "另一家三级医院".into(),
        role: "lead".into(),
        level: "tertiary".into(),
        group_id: Some(group),
        public: true,
        ..UnitInput::default()
    };
    let err = store
        .create_unit(&Actor::system("test"), city, &input.validate().unwrap())
        .await
        .unwrap_err();
    match err {
        StoreError::Conflict(f) => assert_eq!(f.field, "role"),
        StoreError::Invalid(inv) => {
            assert!(inv.0.iter().any(|e| e.field == "group_one_lead"), "{inv:?}")
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(store.city_tree(city).await.unwrap().units.len(), before);
}

async fn a_unit_takes_the_grid_of_its_group(store: Store) {
    let city = load_jinhua(&store).await;
    let before = store.city_tree(city).await.unwrap().units.len();
    // A unit's grid is its group's, so a public secondary hospital can never stand in a grid
    // while belonging to another grid's group (the rule the layout check reports for files).
    let tree = store.city_tree(city).await.unwrap();
    let input = UnitInput {
        code: "NEW-SEC".into(),
        legal_name: "新建二级医院".into(),
        role: "secondary".into(),
        level: "secondary".into(),
        group_id: Some(tree.groups[1].id),
        ..UnitInput::default()
    };
    let unit = store
        .create_unit(&Actor::system("test"), city, &input.validate().unwrap())
        .await
        .unwrap();
    assert_eq!(unit.grid_id, Some(tree.groups[1].grid_id));
    assert_eq!(store.city_tree(city).await.unwrap().units.len(), before + 1);
}

async fn unit_codes_are_unique_per_city(store: Store) {
    let city = load_jinhua(&store).await;
    let tree = store.city_tree(city).await.unwrap();
    let existing = &tree.units[3];
    let input = UnitInput {
        code: existing.code.clone(),
        legal_name: "重名编码".into(),
        role: "primary".into(),
        level: "primary".into(),
        group_id: Some(tree.groups[2].id),
        ..UnitInput::default()
    };
    let err = store
        .create_unit(&Actor::system("test"), city, &input.validate().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref f) if f.field == "code"),
        "{err:?}"
    );
}

async fn text_is_stored_verbatim(store: Store) {
    let city = load_jinhua(&store).await;
    let tree = store.city_tree(city).await.unwrap();
    let nasty = "'; DROP TABLE unit; --<script>alert(1)</script>\"&";
    let input = UnitInput {
        code: "META".into(),
        legal_name: nasty.into(),
        second_name: "O'Brien 分院".into(),
        role: "primary".into(),
        level: "primary".into(),
        group_id: Some(tree.groups[0].id),
        ..UnitInput::default()
    };
    let unit = store
        .create_unit(&Actor::system("test"), city, &input.validate().unwrap())
        .await
        .unwrap();
    let back = store.unit(unit.id).await.unwrap();
    assert_eq!(back.legal_name, nasty);
    assert_eq!(back.second_name.as_deref(), Some("O'Brien 分院"));
    let found = store
        .units(&UnitFilter {
            name_contains: Some("drop table".into()),
            limit: 10,
            ..UnitFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
}

async fn duplicate_usernames_conflict_even_when_concurrent(store: Store) {
    let city = load_jinhua(&store).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.create_user(&Actor::system("test"), &new_user("same.name", city))
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict(f)) => assert_eq!(f.field, "username"),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok, 1, "exactly one of the concurrent creations wins");
    assert_eq!(store.users(None).await.unwrap().len(), 1);
}

async fn concurrent_leads_leave_exactly_one(store: Store) {
    let city = load_jinhua(&store).await;
    let tree = store.city_tree(city).await.unwrap();
    // Every contender races for a place that is taken: none may slip in beside the lead.
    let group = tree.groups[0].id;
    let existing_lead = tree
        .units
        .iter()
        .find(|u| u.group_id == Some(group) && u.role == MemberRole::Lead)
        .unwrap()
        .id;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let input = UnitInput {
                code: format!("RACE-{i}"),
                legal_name: format!("竞争医院{i}"),
                role: "lead".into(),
                level: "tertiary".into(),
                group_id: Some(group),
                ..UnitInput::default()
            };
            s.create_unit(&Actor::system("test"), city, &input.validate().unwrap())
                .await
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().is_err(), "the group already has its lead");
    }
    let leads: Vec<_> = store
        .city_tree(city)
        .await
        .unwrap()
        .units
        .into_iter()
        .filter(|u| u.group_id == Some(group) && u.role == MemberRole::Lead)
        .map(|u| u.id)
        .collect();
    assert_eq!(leads, vec![existing_lead]);
}

async fn tokens_work_until_revoked(store: Store) {
    let city = load_jinhua(&store).await;
    let user = store
        .create_user(&Actor::system("test"), &new_user("api.user", city))
        .await
        .unwrap();
    let token = store
        .create_token(
            &Actor::system("test"),
            &user,
            "script",
            "mgt_abcd",
            "digest-1",
        )
        .await
        .unwrap();
    assert_eq!(
        store.user_by_token("digest-1").await.unwrap().map(|u| u.id),
        Some(user.id)
    );
    assert!(store.token(token.id).await.unwrap().last_used_at.is_some());
    assert_eq!(store.user_by_token("digest-2").await.unwrap(), None);
    store
        .revoke_token(&Actor::system("test"), &token, &user)
        .await
        .unwrap();
    assert_eq!(store.user_by_token("digest-1").await.unwrap(), None);
    // A disabled user's tokens stop working too.
    let t2 = store
        .create_token(&Actor::system("test"), &user, "s2", "mgt_efgh", "digest-3")
        .await
        .unwrap();
    assert!(store.user_by_token("digest-3").await.unwrap().is_some());
    store
        .set_user_disabled(&Actor::system("test"), &user, true)
        .await
        .unwrap();
    assert_eq!(store.user_by_token("digest-3").await.unwrap(), None);
    let _ = t2;
}

async fn sessions_expire(store: Store) {
    let city = load_jinhua(&store).await;
    let user = store
        .create_user(&Actor::system("test"), &new_user("web.user", city))
        .await
        .unwrap();
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    store
        .create_session(user.id, "live", "csrf-1", later)
        .await
        .unwrap();
    store
        .create_session(user.id, "stale", "csrf-2", past)
        .await
        .unwrap();
    let s = store.session("live").await.unwrap().unwrap();
    assert_eq!(s.user.id, user.id);
    assert_eq!(s.csrf_token, "csrf-1");
    assert_eq!(store.session("stale").await.unwrap(), None);
    store.delete_session("live").await.unwrap();
    assert_eq!(store.session("live").await.unwrap(), None);
}

async fn login_throttle_locks_after_repeated_failures(store: Store) {
    let window = chrono::Duration::minutes(15);
    let lock = chrono::Duration::minutes(15);
    for _ in 0..4 {
        assert_eq!(
            store.login_failed("user:x", 5, window, lock).await.unwrap(),
            None
        );
    }
    assert_eq!(store.login_locked_until("user:x").await.unwrap(), None);
    assert!(store
        .login_failed("user:x", 5, window, lock)
        .await
        .unwrap()
        .is_some());
    assert!(store.login_locked_until("user:x").await.unwrap().is_some());
    assert_eq!(store.login_locked_until("user:y").await.unwrap(), None);
    store.login_succeeded("user:x").await.unwrap();
    assert_eq!(store.login_locked_until("user:x").await.unwrap(), None);
}

async fn audit_is_scoped_and_paged(store: Store) {
    let city = load_jinhua(&store).await;
    let tree = store.city_tree(city).await.unwrap();
    let group = &tree.groups[0];
    let unit = tree
        .units
        .iter()
        .find(|u| u.group_id == Some(group.id))
        .unwrap();
    let actor = Actor::system("test");
    for i in 0..5 {
        store
            .audit(&medgrid_store::AuditEntry {
                actor: &actor,
                action: "probe.read",
                resource_type: "Probe",
                resource_id: Some(i.to_string()),
                target: Some(unit.path()),
                outcome: medgrid_store::Outcome::Ok,
                detail: None,
            })
            .await
            .unwrap();
    }
    let group_scope = Scope {
        kind: ScopeKind::Group,
        path: group.path(),
    };
    let page1 = store
        .list_audit(&AuditFilter {
            scope: Some(group_scope),
            action_prefix: Some("probe.".into()),
            limit: 3,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page1.len(), 3);
    assert!(page1.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let page2 = store
        .list_audit(&AuditFilter {
            scope: Some(group_scope),
            action_prefix: Some("probe.".into()),
            before_id: page1.last().map(|e| e.id),
            limit: 3,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page2.len(), 2);
    let other_group = Scope {
        kind: ScopeKind::Group,
        path: tree.groups[1].path(),
    };
    let none = store
        .list_audit(&AuditFilter {
            scope: Some(other_group),
            action_prefix: Some("probe.".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
}

async fn practitioners_practise_at_several_sites(store: Store) {
    let city = load_jinhua(&store).await;
    let tree = store.city_tree(city).await.unwrap();
    let lead = tree
        .units
        .iter()
        .find(|u| u.role == MemberRole::Lead)
        .unwrap();
    let primary = tree
        .units
        .iter()
        .find(|u| u.role == MemberRole::Primary && u.group_id == lead.group_id)
        .unwrap();
    let draft = medgrid_domain::org::PractitionerInput {
        licence_no: "110330700000001".into(),
        name: "单志刚".into(),
        sex: "男".into(),
        title: "主任医师".into(),
        unit_id: lead.id,
        ..Default::default()
    }
    .validate()
    .unwrap();
    let actor = Actor::system("test");
    let p = store
        .create_practitioner(&actor, lead, &draft)
        .await
        .unwrap();
    store
        .add_practice_site(&actor, p.id, primary, None)
        .await
        .unwrap();
    let again = store
        .add_practice_site(&actor, p.id, primary, None)
        .await
        .unwrap_err();
    assert!(
        matches!(again, StoreError::Conflict(ref f) if f.field == "unit_id"),
        "{again:?}"
    );
    let p = store.practitioner(p.id).await.unwrap();
    let sites: Vec<(i64, bool)> = p.sites.iter().map(|s| (s.unit_id, s.primary)).collect();
    assert_eq!(sites, vec![(lead.id, true), (primary.id, false)]);
    let at_primary = store
        .practitioners(Some(primary.id), None, 10)
        .await
        .unwrap();
    assert_eq!(at_primary.len(), 1);
    let dup = store
        .create_practitioner(&actor, lead, &draft)
        .await
        .unwrap_err();
    assert!(matches!(dup, StoreError::Conflict(ref f) if f.field == "licence_no"));
}

async fn resolve_org_by_reference_and_uscc(store: Store) {
    let city = load_jinhua(&store).await;
    let tree = store.city_tree(city).await.unwrap();
    let group = &tree.groups[0];
    let r = store
        .resolve_org(&format!("group-{}", group.id))
        .await
        .unwrap();
    assert_eq!(r.path, group.path());
    let unit = &tree.units[0];
    assert_eq!(
        store
            .resolve_org(&format!("unit-{}", unit.id))
            .await
            .unwrap()
            .path,
        unit.path()
    );
    assert!(matches!(
        store.resolve_org("unit-999999").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.resolve_org("nonsense").await,
        Err(StoreError::NotFound)
    ));
}

async fn village_clinics_hang_under_a_township_hospital(store: Store) {
    let city = load_jinhua(&store).await;
    let tree = store.city_tree(city).await.unwrap();
    let group = &tree.groups[0];
    let township = tree
        .units
        .iter()
        .find(|u| u.group_id == Some(group.id) && u.role == MemberRole::Primary)
        .unwrap();
    let secondary = tree
        .units
        .iter()
        .find(|u| u.group_id == Some(group.id) && u.role == MemberRole::Secondary)
        .unwrap();
    let village = |code: &str, parent: i64| UnitInput {
        code: code.into(),
        legal_name: format!("{code}村卫生室"),
        role: "village".into(),
        level: "unrated".into(),
        group_id: Some(group.id),
        parent_unit_id: Some(parent),
        ..UnitInput::default()
    };
    let ok = store
        .create_unit(
            &Actor::system("test"),
            city,
            &village("V1", township.id).validate().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(ok.parent_unit_id, Some(township.id));
    let before = store.city_tree(city).await.unwrap().units.len();
    let err = store
        .create_unit(
            &Actor::system("test"),
            city,
            &village("V2", secondary.id).validate().unwrap(),
        )
        .await
        .unwrap_err();
    match err {
        StoreError::Invalid(inv) => assert_eq!(inv.0[0].field, "village_under_primary"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        store.city_tree(city).await.unwrap().units.len(),
        before,
        "nothing half-written"
    );
}

async fn a_suspect_uscc_is_kept_with_its_warning(store: Store) {
    use medgrid_domain::codes::{DivisionCode, Uscc};
    let city = load_jinhua(&store).await;
    let tree = store.city_tree(city).await.unwrap();
    let good = Uscc::build(
        '1',
        '2',
        &DivisionCode::parse("d", "330702").unwrap(),
        "47000001",
    )
    .unwrap();
    let mut bad = good.as_str().to_owned();
    let last = bad.pop().unwrap();
    bad.push(if last == '0' { '1' } else { '0' });
    let input = UnitInput {
        code: "USCC-W".into(),
        legal_name: "代码可疑的卫生院".into(),
        role: "primary".into(),
        level: "primary".into(),
        group_id: Some(tree.groups[0].id),
        uscc: bad.clone(),
        ..UnitInput::default()
    };
    let unit = store
        .create_unit(&Actor::system("test"), city, &input.validate().unwrap())
        .await
        .unwrap();
    assert_eq!(unit.uscc.as_deref(), Some(bad.as_str()));
    assert!(unit.uscc_warning.is_some());
    // The same code on a second unit is a conflict on the field.
    let again = UnitInput {
        code: "USCC-2".into(),
        ..input
    };
    let err = store
        .create_unit(&Actor::system("test"), city, &again.validate().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref f) if f.field == "uscc"),
        "{err:?}"
    );
    assert_eq!(store.resolve_org(&bad).await.unwrap().id, unit.id);
}

on_both_databases!(
    a_lead_session_keeps_its_reserved_share,
    reserved_slots_wait_for_referrals_then_return,
    simultaneous_bookings_never_share_a_slot,
    a_retried_booking_returns_the_first,
    a_referral_withdrawn_while_it_is_booked_keeps_no_booking,
    a_referral_booking_writes_its_event_notice_and_audit_entry,
    bulk_load_writes_the_generated_city,
    group_overviews_add_up_to_the_loaded_city,
    a_refused_row_leaves_nothing_behind,
    village_clinics_hang_under_a_township_hospital,
    a_suspect_uscc_is_kept_with_its_warning,
    layout_import_builds_the_tree,
    a_second_lead_is_refused_and_nothing_changes,
    a_unit_takes_the_grid_of_its_group,
    unit_codes_are_unique_per_city,
    text_is_stored_verbatim,
    duplicate_usernames_conflict_even_when_concurrent,
    concurrent_leads_leave_exactly_one,
    tokens_work_until_revoked,
    sessions_expire,
    login_throttle_locks_after_repeated_failures,
    audit_is_scoped_and_paged,
    practitioners_practise_at_several_sites,
    resolve_org_by_reference_and_uscc,
);

/// The audit log refuses updates and deletes in the database itself, on both backends.
#[tokio::test]
async fn audit_log_is_append_only_in_the_database() {
    for kind in [DbKind::Sqlite, DbKind::Postgres] {
        let db = TestDb::new(kind).await;
        db.store
            .audit(&medgrid_store::AuditEntry {
                actor: &Actor::system("test"),
                action: "probe",
                resource_type: "Probe",
                resource_id: None,
                target: None,
                outcome: medgrid_store::Outcome::Ok,
                detail: None,
            })
            .await
            .unwrap();
        let (update, delete) = match kind {
            DbKind::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
                let u = sqlx::query("UPDATE audit_event SET outcome = 'x'")
                    .execute(&mut c)
                    .await;
                let d = sqlx::query("DELETE FROM audit_event").execute(&mut c).await;
                (u.is_err(), d.is_err())
            }
            DbKind::Postgres => {
                let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
                let u = sqlx::query("UPDATE audit_event SET outcome = 'x'")
                    .execute(&mut c)
                    .await;
                let d = sqlx::query("DELETE FROM audit_event").execute(&mut c).await;
                (u.is_err(), d.is_err())
            }
        };
        assert!(update, "{kind:?}: update refused");
        assert!(delete, "{kind:?}: delete refused");
        db.finish().await;
    }
}

/// Both migration sets produce the same tables and columns.
#[tokio::test]
async fn migrations_stay_in_step() {
    let lite = TestDb::new(DbKind::Sqlite).await;
    let pg = TestDb::new(DbKind::Postgres).await;
    let mut c = sqlx::SqliteConnection::connect(&lite.url).await.unwrap();
    let sqlite_cols: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let mut p = sqlx::PgConnection::connect(&pg.url).await.unwrap();
    let pg_cols: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns WHERE table_schema = 'public'",
    )
    .fetch_all(&mut p)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert!(!sqlite_cols.is_empty());
    assert_eq!(sqlite_cols, pg_cols, "SQLite and PostgreSQL schemas differ");
    lite.finish().await;
    pg.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Bulk loading of the synthetic city. Table-generic: every table of `schema::loaded()` is
// checked, whichever the generator writes so far.

/// Small enough for a quick test, large enough that every table gets rows and batches are cut.
const SMALL_CITY: u64 = 2_000;
const CITY_SEED: u64 = 7;

fn small_city() -> Params {
    Params::new(
        CITY_SEED,
        SMALL_CITY,
        chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
    )
}

/// The Jinhua layout and its generated staff, registered.
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

async fn bulk_load_writes_the_generated_city(store: Store) {
    let (city, layout) = jinhua_with_staff(&store).await;
    let params = small_city();
    let mut seen = Vec::new();
    let summary = store
        .load_population(&Actor::system("test"), city, &layout, &params, |p| {
            seen.push(p)
        })
        .await
        .unwrap();
    // Every table the generator wrote holds exactly its rows; the others stay empty.
    let counts = store.population_counts().await.unwrap();
    assert_eq!(counts.len(), schema::loaded().count());
    for (t, (table, n)) in schema::loaded().zip(&counts) {
        assert_eq!(t.db, *table);
        let generated = summary.manifest.rows(t.file).unwrap_or(0);
        assert_eq!(*n as u64, generated, "{table}");
    }
    assert_eq!(summary.manifest.rows("residents"), Some(SMALL_CITY));
    assert!(summary.rows() > SMALL_CITY, "{:?}", summary.tables);
    // Progress counts residents in the database, up to all of them.
    assert!(seen.windows(2).all(|w| w[0].done <= w[1].done), "{seen:?}");
    assert_eq!(
        seen.last().map(|p| (p.done, p.total)),
        Some((SMALL_CITY, SMALL_CITY))
    );
    // One audit entry per table loaded, naming it and its rows.
    let events = store
        .list_audit(&AuditFilter {
            action_prefix: Some("population.load".into()),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), summary.tables.len(), "{events:?}");
    for (table, rows) in &summary.tables {
        let e = events
            .iter()
            .find(|e| e.resource_id.as_deref() == Some(table))
            .unwrap_or_else(|| panic!("no audit entry for {table}"));
        assert_eq!(e.actor_username, "system:test");
        assert_eq!(e.outcome, "ok");
        assert_eq!(e.city_id, Some(city));
        assert!(
            e.detail
                .as_deref()
                .unwrap_or_default()
                .starts_with(&format!("{rows} rows")),
            "{e:?}"
        );
    }
    // A second load would collide with the generated ids: refused whole.
    let again = store
        .load_population(&Actor::system("test"), city, &layout, &params, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(again, LoadError::NotEmpty(_)), "{again:?}");
    assert_eq!(store.population_counts().await.unwrap(), counts);
}

async fn a_refused_row_leaves_nothing_behind(store: Store) {
    let (city, layout) = jinhua_with_staff(&store).await;
    // The generator is given a layout whose primary unit the registry does not know.
    let mut unknown = layout.clone();
    let old = unknown
        .units
        .iter()
        .find(|u| u.role == MemberRole::Primary)
        .unwrap()
        .code
        .clone();
    for u in &mut unknown.units {
        if u.code == old {
            u.code = "NOT-REGISTERED".into();
        }
        if u.under_code.as_deref() == Some(old.as_str()) {
            u.under_code = Some("NOT-REGISTERED".into());
        }
    }
    let err = store
        .load_population(
            &Actor::system("test"),
            city,
            &unknown,
            &small_city(),
            |_| {},
        )
        .await
        .unwrap_err();
    match &err {
        LoadError::Rejected(SinkError::Rejected { table, message }) => {
            assert!(schema::loaded().any(|t| t.db == table), "{err}");
            assert!(message.contains("'NOT-REGISTERED'"), "{err}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("NOT-REGISTERED"));
    assert!(store
        .population_counts()
        .await
        .unwrap()
        .iter()
        .all(|(_, n)| *n == 0));
    let events = store
        .list_audit(&AuditFilter {
            action_prefix: Some("population.load".into()),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(events.is_empty(), "{events:?}");
    // The database is as it was: the right layout loads.
    store
        .load_population(&Actor::system("test"), city, &layout, &small_city(), |_| {})
        .await
        .unwrap();
}

/// Plain SQL on either database, for what the store's API does not show.
enum Raw {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Raw {
    async fn open(db: &TestDb) -> Raw {
        if db.url.starts_with("sqlite:") {
            Raw::Sqlite(sqlx::SqliteConnection::connect(&db.url).await.unwrap())
        } else {
            Raw::Postgres(sqlx::PgConnection::connect(&db.url).await.unwrap())
        }
    }

    async fn execute(&mut self, sql: &str) {
        match self {
            Raw::Sqlite(c) => sqlx::query(sql).execute(c).await.map(|_| ()),
            Raw::Postgres(c) => sqlx::query(sql).execute(c).await.map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn int(&mut self, sql: &str) -> i64 {
        match self {
            Raw::Sqlite(c) => sqlx::query_scalar(sql).fetch_one(c).await,
            Raw::Postgres(c) => sqlx::query_scalar(sql).fetch_one(c).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn text(&mut self, sql: &str) -> String {
        match self {
            Raw::Sqlite(c) => sqlx::query_scalar(sql).fetch_one(c).await,
            Raw::Postgres(c) => sqlx::query_scalar(sql).fetch_one(c).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn pairs(&mut self, sql: &str) -> BTreeSet<(String, String)> {
        match self {
            Raw::Sqlite(c) => sqlx::query_as(sql).fetch_all(c).await,
            Raw::Postgres(c) => sqlx::query_as(sql).fetch_all(c).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .collect()
    }

    /// (table, index) of the population tables.
    async fn indexes(&mut self) -> BTreeSet<(String, String)> {
        let tables = loaded_list();
        let sql = match self {
            Raw::Sqlite(_) => format!(
                "SELECT tbl_name, name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({tables})"
            ),
            Raw::Postgres(_) => format!(
                "SELECT tablename::text, indexname::text FROM pg_indexes WHERE tablename IN ({tables}) AND indexname NOT LIKE '%_pkey'"
            ),
        };
        self.pairs(&sql).await
    }

    /// (table, referenced table) of every foreign key of the population tables, with how many.
    async fn foreign_keys(&mut self) -> BTreeSet<(String, String)> {
        let tables = loaded_list();
        let sql = match self {
            Raw::Sqlite(_) => format!(
                "SELECT m.name || '.' || f.\"from\", f.\"table\" FROM sqlite_master m \
                 JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table' AND m.name IN ({tables})"
            ),
            Raw::Postgres(_) => format!(
                "SELECT c.conrelid::regclass::text || '.' || a.attname, c.confrelid::regclass::text \
                 FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
                 WHERE c.contype = 'f' AND c.convalidated AND c.conrelid::regclass::text IN ({tables})"
            ),
        };
        self.pairs(&sql).await
    }
}

fn loaded_list() -> String {
    schema::loaded()
        .map(|t| format!("'{}'", t.db))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a table holds, summed up in one line that both databases spell alike: counts,
/// sums of integers and money, distinct values, first and last days.
fn fingerprint_sql(t: &Schema) -> String {
    let mut parts = vec!["COUNT(*)".to_owned()];
    for c in t.columns {
        let col = c.db;
        parts.push(format!("COUNT({col})"));
        match c.kind {
            Kind::Int | Kind::Fixed(_) => parts.push(format!("SUM({col})")),
            Kind::Flag => parts.push(format!("SUM(CASE WHEN {col} THEN 1 ELSE 0 END)")),
            Kind::Date | Kind::Timestamp => {
                parts.push(format!("MIN({col})"));
                parts.push(format!("MAX({col})"));
                parts.push(format!("COUNT(DISTINCT {col})"));
            }
            // Registry ids may differ between databases; how many are named may not.
            Kind::Text | Kind::Unit | Kind::Group | Kind::Practitioner => {
                parts.push(format!("COUNT(DISTINCT {col})"))
            }
        }
    }
    let parts: Vec<String> = parts
        .into_iter()
        .map(|p| {
            // PostgreSQL sums BIGINT as NUMERIC; both spell a BIGINT, a DATE and a TIMESTAMP
            // as SQLite stores them.
            let p = if p.starts_with("SUM(") {
                format!("CAST({p} AS BIGINT)")
            } else {
                p
            };
            format!("COALESCE(CAST({p} AS TEXT), '-')")
        })
        .collect();
    format!("SELECT {} FROM {}", parts.join(" || '|' || "), t.db)
}

/// The same seed loads the same rows on SQLite and on PostgreSQL, with exact money sums,
/// keys that hold and indexes as the migrations made them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_loads_agree_across_databases() {
    let mut prints = Vec::new();
    for kind in [DbKind::Sqlite, DbKind::Postgres] {
        let db = TestDb::new(kind).await;
        let mut raw = Raw::open(&db).await;
        let indexes = raw.indexes().await;
        let keys = raw.foreign_keys().await;
        let (city, layout) = jinhua_with_staff(&db.store).await;
        let summary = db
            .store
            .load_population(&Actor::system("test"), city, &layout, &small_city(), |_| {})
            .await
            .unwrap();
        // Indexes and keys set aside during the load are all back.
        assert_eq!(raw.indexes().await, indexes, "{kind:?}");
        assert_eq!(raw.foreign_keys().await, keys, "{kind:?}");
        assert!(keys.contains(&("encounter.resident_id".into(), "resident".into())));
        assert!(keys.contains(&("resident.group_id".into(), "med_group".into())));
        if let DbKind::Sqlite = kind {
            assert_eq!(
                raw.int("SELECT COUNT(*) FROM pragma_foreign_key_check")
                    .await,
                0
            );
        }
        // The one link without a key (the circle encounter ↔ referral) holds too.
        assert_eq!(
            raw.int(
                "SELECT COUNT(*) FROM encounter e WHERE e.referral_id IS NOT NULL \
                 AND NOT EXISTS (SELECT 1 FROM referral r WHERE r.id = e.referral_id)"
            )
            .await,
            0
        );
        let mut print = Vec::new();
        for t in schema::loaded() {
            let n = raw.int(&format!("SELECT COUNT(*) FROM {}", t.db)).await;
            assert_eq!(
                n as u64,
                summary.manifest.rows(t.file).unwrap_or(0),
                "{kind:?} {}",
                t.db
            );
            print.push((t.db, raw.text(&fingerprint_sql(t)).await));
        }
        if summary.manifest.rows("encounters").unwrap_or(0) > 0 {
            assert!(
                raw.int("SELECT CAST(SUM(total_fen) AS BIGINT) FROM encounter")
                    .await
                    > 0
            );
        }
        prints.push(print);
        db.finish().await;
    }
    for (lite, pg) in prints[0].iter().zip(&prints[1]) {
        assert_eq!(lite, pg, "SQLite and PostgreSQL hold different rows");
    }
}

/// A database that refuses rows halfway through the load keeps nothing of it: no rows, no
/// audit entries, and the indexes and keys set aside for the load are back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_database_keeps_nothing_of_the_load() {
    for kind in [DbKind::Sqlite, DbKind::Postgres] {
        let db = TestDb::new(kind).await;
        let mut raw = Raw::open(&db).await;
        // Households have several residents: this index fails the load once rows arrive, after
        // the other indexes and keys were set aside.
        raw.execute("CREATE UNIQUE INDEX probe_one_per_household ON resident (household_id)")
            .await;
        let indexes = raw.indexes().await;
        let keys = raw.foreign_keys().await;
        let (city, layout) = jinhua_with_staff(&db.store).await;
        let err = db
            .store
            .load_population(&Actor::system("test"), city, &layout, &small_city(), |_| {})
            .await
            .unwrap_err();
        assert!(
            matches!(err, LoadError::Store(StoreError::Conflict(_))),
            "{kind:?} {err:?}"
        );
        assert!(db
            .store
            .population_counts()
            .await
            .unwrap()
            .iter()
            .all(|(_, n)| *n == 0));
        assert_eq!(raw.indexes().await, indexes, "{kind:?}");
        assert_eq!(raw.foreign_keys().await, keys, "{kind:?}");
        let events = db
            .store
            .list_audit(&AuditFilter {
                action_prefix: Some("population.load".into()),
                limit: 100,
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        assert!(events.is_empty(), "{kind:?} {events:?}");
        db.finish().await;
    }
}

/// The population tables follow the generator's schema column for column.
#[tokio::test]
async fn population_tables_follow_the_generator_schema() {
    for kind in [DbKind::Sqlite, DbKind::Postgres] {
        let db = TestDb::new(kind).await;
        let mut raw = Raw::open(&db).await;
        for t in schema::loaded() {
            let sql = match kind {
                DbKind::Sqlite => format!(
                    "SELECT printf('%03d', cid), name || CASE WHEN \"notnull\" = 1 OR pk = 1 THEN '' ELSE '?' END \
                     FROM pragma_table_info('{}')",
                    t.db
                ),
                DbKind::Postgres => format!(
                    "SELECT lpad((ordinal_position - 1)::text, 3, '0'), column_name::text || CASE WHEN is_nullable = 'YES' THEN '?' ELSE '' END \
                     FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '{}'",
                    t.db
                ),
            };
            let columns: Vec<String> = raw.pairs(&sql).await.into_iter().map(|(_, c)| c).collect();
            // The generator's columns come first and in its order; the live workflow may add
            // columns after them and relax a NOT NULL (a live referral has no source
            // encounter), but never demand a value the generator leaves out.
            assert!(columns.len() >= t.columns.len(), "{kind:?} {}", t.db);
            for (have, want) in columns.iter().zip(t.columns.iter()) {
                assert_eq!(have.trim_end_matches('?'), want.db, "{kind:?} {}", t.db);
                if want.nullable {
                    assert!(
                        have.ends_with('?'),
                        "{kind:?} {}.{} is nullable",
                        t.db,
                        want.db
                    );
                }
            }
            // The patient index adds one column to residents: the person a merge folded one
            // into, empty for every generated resident.
            for extra in &columns[t.columns.len()..] {
                assert!(
                    matches!(t.db, "referral" | "follow_up")
                        || (t.db == "resident" && extra == "merged_into_id?"),
                    "{kind:?} {} has an unexpected column {extra}",
                    t.db
                );
            }
            assert!(
                t.columns.iter().any(|c| c.db == "group_id"),
                "{} has the tenant key",
                t.db
            );
        }
        db.finish().await;
    }
}

async fn group_overviews_add_up_to_the_loaded_city(store: Store) {
    assert!(
        store.group_overviews().await.unwrap().is_empty(),
        "no residents, no figures"
    );
    let (city, layout) = jinhua_with_staff(&store).await;
    let summary = store
        .load_population(&Actor::system("test"), city, &layout, &small_city(), |_| {})
        .await
        .unwrap();
    let figures = store.group_overviews().await.unwrap();
    assert_eq!(figures.len(), 3, "one row per group");
    let sum =
        |f: fn(&medgrid_store::GroupOverview) -> i64| figures.iter().map(f).sum::<i64>() as u64;
    let rows = |file: &str| summary.manifest.rows(file).unwrap_or(0);
    assert_eq!(sum(|g| g.residents), rows("residents"));
    assert_eq!(sum(|g| g.visits + g.admissions), rows("encounters"));
    assert_eq!(
        sum(|g| g.referrals_up + g.referrals_down),
        rows("referrals")
    );
    for g in &figures {
        assert!(g.primary_visits > 0 && g.primary_visits < g.visits, "{g:?}");
        assert!(
            g.in_region_visits <= g.visits && g.in_region_visits * 10 > g.visits * 8,
            "{g:?}"
        );
        assert!(g.contracted > 0 && g.contracted < g.residents, "{g:?}");
        assert_eq!(g.first_day.as_deref(), Some("2025-01-01"));
    }
}

// ---- Sessions, slots and bookings (R5.1–R5.3) ----

fn day(d: u32, h: u32) -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2025, 6, d)
        .unwrap()
        .and_hms_opt(h, 0, 0)
        .unwrap()
}

/// The loaded small city, its lead hospital of the first group and one of that group's
/// secondary or primary units.
async fn city_for_booking(store: &Store) -> (medgrid_domain::org::Unit, medgrid_domain::org::Unit) {
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

/// A general-practice session at a primary unit.
fn primary_draft(capacity: u32, reserved: u32) -> medgrid_store::booking::SessionDraft {
    medgrid_store::booking::SessionDraft {
        department_code: "QK".into(),
        ..draft(capacity, reserved)
    }
}

fn draft(capacity: u32, reserved: u32) -> medgrid_store::booking::SessionDraft {
    medgrid_store::booking::SessionDraft {
        department_code: "XXG".into(),
        practitioner_id: None,
        starts_at: day(20, 8),
        slot_minutes: 10,
        capacity,
        reserved,
    }
}

fn request(
    slot_id: i64,
    resident_id: i64,
    key: &str,
    referral: Option<i64>,
) -> medgrid_store::booking::BookingRequest {
    medgrid_store::booking::BookingRequest {
        slot_id,
        resident_id,
        referral_id: referral,
        idempotency_key: key.into(),
        now: day(10, 12),
        hold_token: None,
        replaces: None,
    }
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

async fn a_lead_session_keeps_its_reserved_share(store: Store) {
    let (lead, other) = city_for_booking(&store).await;
    let policy = medgrid_domain::capacity::Policy::default();
    let actor = Actor::system("test");
    let e = store
        .open_care_session(&actor, &lead, &draft(30, 9), &policy)
        .await
        .unwrap_err();
    match e {
        StoreError::Invalid(inv) => assert_eq!(inv.0[0].code, "below_reservation"),
        other => panic!("{other:?}"),
    }
    let (session, slots) = store
        .open_care_session(&actor, &lead, &draft(30, 10), &policy)
        .await
        .unwrap();
    assert_eq!(slots.len(), 30);
    assert_eq!(slots.iter().filter(|s| s.reserved).count(), 10);
    assert_eq!(
        store.slots(session).await.unwrap(),
        slots,
        "stored as returned"
    );
    // The refused session left nothing: only the second one's slots exist.
    assert!(store.slots(session - 1).await.unwrap().is_empty());
    // A schedule edit that would break the rule is refused and changes nothing.
    match store
        .change_reservation(&actor, &lead, session, 9, &policy)
        .await
        .unwrap_err()
    {
        StoreError::Invalid(inv) => assert_eq!(inv.0[0].code, "below_reservation"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.slots(session).await.unwrap(), slots);
    let more = store
        .change_reservation(&actor, &lead, session, 15, &policy)
        .await
        .unwrap();
    assert_eq!(more.iter().filter(|s| s.reserved).count(), 15);
    // The department must be the unit's and the clinician must practise there.
    let mut bad = draft(30, 10);
    bad.department_code = "NOPE".into();
    bad.practitioner_id = Some(999_999);
    match store
        .open_care_session(&actor, &lead, &bad, &policy)
        .await
        .unwrap_err()
    {
        StoreError::Invalid(inv) => {
            let fields: Vec<&str> = inv.0.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, ["department_code", "practitioner_id"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        store.slots(session + 1).await.unwrap().is_empty(),
        "nothing written"
    );
    // Other units reserve what they choose.
    store
        .open_care_session(&actor, &other, &primary_draft(12, 0), &policy)
        .await
        .unwrap();
}

async fn reserved_slots_wait_for_referrals_then_return(store: Store) {
    let (lead, other) = city_for_booking(&store).await;
    let policy = medgrid_domain::capacity::Policy::default();
    let actor = Actor::system("test");
    let (_, slots) = store
        .open_care_session(&actor, &lead, &draft(6, 2), &policy)
        .await
        .unwrap();
    let reserved: Vec<_> = slots.iter().filter(|s| s.reserved).collect();
    let e = store
        .book(&actor, &policy, &request(reserved[0].id, 1, "k1", None))
        .await
        .unwrap_err();
    match e {
        StoreError::Invalid(inv) => assert_eq!(inv.0[0].code, "reserved_for_referrals"),
        other => panic!("{other:?}"),
    }
    // A referral booking must quote a referral of that resident to this unit.
    let referrals = store.referrals_to(lead.id, 5).await.unwrap();
    let (generated, patient) = referrals[0];
    let referral = accepted_referral(&store, &other, &lead, patient).await;
    // Generated history cannot take a reserved slot: only a live, accepted referral.
    match store
        .book(
            &actor,
            &policy,
            &request(reserved[0].id, patient, "k7", Some(generated)),
        )
        .await
        .unwrap_err()
    {
        StoreError::Invalid(inv) => assert_eq!(inv.0[0].field, "referral_id"),
        other => panic!("{other:?}"),
    }
    for (bad, field) in [
        (
            request(reserved[0].id, patient + 1, "k5", Some(referral)),
            "referral_id",
        ),
        (
            request(reserved[0].id, 999_999, "k6", Some(referral)),
            "resident_id",
        ),
    ] {
        match store.book(&actor, &policy, &bad).await.unwrap_err() {
            StoreError::Invalid(inv) => assert_eq!(inv.0[0].field, field),
            other => panic!("{other:?}"),
        }
    }
    let b = store
        .book(
            &actor,
            &policy,
            &request(reserved[0].id, patient, "k2", Some(referral)),
        )
        .await
        .unwrap();
    assert_eq!((b.kind.as_str(), b.status.as_str()), ("referral", "booked"));
    // A day before the slot, an unused reserved slot is open to everyone.
    let mut late = request(reserved[1].id, 2, "k3", None);
    late.now = reserved[1].starts_at - chrono::Duration::hours(23);
    assert_eq!(
        store.book(&actor, &policy, &late).await.unwrap().kind,
        "general"
    );
    // Slots not yet open are refused with the day they open.
    let mut early = request(slots[0].id, 3, "k4", None);
    early.now = day(1, 9);
    match store.book(&actor, &policy, &early).await.unwrap_err() {
        StoreError::Invalid(inv) => assert_eq!(inv.0[0].code, "not_open"),
        other => panic!("{other:?}"),
    }
}

async fn simultaneous_bookings_never_share_a_slot(store: Store) {
    let (_, other) = city_for_booking(&store).await;
    let policy = medgrid_domain::capacity::Policy::default();
    let actor = Actor::system("test");
    let (_, slots) = store
        .open_care_session(&actor, &other, &primary_draft(5, 0), &policy)
        .await
        .unwrap();
    // 40 patients at once, each trying every slot from a different starting point until one
    // is theirs: exactly the five slots are booked, once each.
    let mut tasks = Vec::new();
    for patient in 1..=40i64 {
        let store = store.clone();
        let slots = slots.clone();
        tasks.push(tokio::spawn(async move {
            let actor = Actor::system("test");
            let policy = medgrid_domain::capacity::Policy::default();
            for k in 0..slots.len() {
                let slot = &slots[(patient as usize + k) % slots.len()];
                let key = format!("p{patient}-s{}", slot.id);
                match store
                    .book(&actor, &policy, &request(slot.id, patient, &key, None))
                    .await
                {
                    Ok(b) => return Some(b),
                    Err(StoreError::Conflict(e)) => assert_eq!(e.code, "taken"),
                    Err(e) => panic!("{e:?}"),
                }
            }
            None
        }));
    }
    let mut booked = Vec::new();
    for t in tasks {
        if let Some(b) = t.await.unwrap() {
            booked.push(b);
        }
    }
    assert_eq!(booked.len(), 5, "{booked:?}");
    let distinct: BTreeSet<i64> = booked.iter().map(|b| b.slot_id).collect();
    assert_eq!(distinct.len(), 5, "no slot twice");
    let stored = store.slots(slots[0].session_id).await.unwrap();
    assert!(stored.iter().all(|s| s.status == "booked"));
}

async fn a_retried_booking_returns_the_first(store: Store) {
    let (_, other) = city_for_booking(&store).await;
    let policy = medgrid_domain::capacity::Policy::default();
    let actor = Actor::system("test");
    let (_, slots) = store
        .open_care_session(&actor, &other, &primary_draft(3, 0), &policy)
        .await
        .unwrap();
    let first = store
        .book(&actor, &policy, &request(slots[0].id, 7, "same", None))
        .await
        .unwrap();
    let again = store
        .book(&actor, &policy, &request(slots[0].id, 7, "same", None))
        .await
        .unwrap();
    assert_eq!(first, again);
    match store
        .book(&actor, &policy, &request(slots[1].id, 7, "same", None))
        .await
        .unwrap_err()
    {
        StoreError::Conflict(e) => {
            assert_eq!((e.field.as_str(), e.code), ("idempotency_key", "reused"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.slots(slots[0].session_id).await.unwrap()[1].status,
        "free",
        "nothing taken"
    );
}

/// A sender cancels a referral at the moment it is being booked, twelve times over: whichever
/// wins, the referral never ends cancelled with a live booking, nor booked without one, and a
/// slot is held only by a live booking.
async fn a_referral_withdrawn_while_it_is_booked_keeps_no_booking(store: Store) {
    use medgrid_store::referral::Move;
    let (lead, other) = city_for_booking(&store).await;
    let policy = medgrid_domain::capacity::Policy::default();
    let actor = Actor::system("test");
    let (session, slots) = store
        .open_care_session(&actor, &lead, &draft(12, 4), &policy)
        .await
        .unwrap();
    let sender = support::unit_principal("sender", Role::FamilyDoctor, &other);
    let (mut booked, mut withdrawn) = (0, 0);
    for (i, slot) in slots.iter().enumerate() {
        let resident = 100 + i as i64;
        let referral = accepted_referral(&store, &other, &lead, resident).await;
        let booking = {
            let store = store.clone();
            let key = format!("race-{i}");
            let slot = slot.id;
            tokio::spawn(async move {
                store
                    .book(
                        &Actor::system("test"),
                        &medgrid_domain::capacity::Policy::default(),
                        &request(slot, resident, &key, Some(referral)),
                    )
                    .await
            })
        };
        let cancel = {
            let store = store.clone();
            let sender = sender.clone();
            tokio::spawn(async move {
                store
                    .move_referral(
                        &Actor::system("test"),
                        &sender,
                        referral,
                        &Move::Cancel {
                            reason: "患者放弃".into(),
                        },
                        day(10, 12),
                    )
                    .await
            })
        };
        let (booking, cancel) = (booking.await.unwrap(), cancel.await.unwrap());
        let status = store.referral(referral).await.unwrap().status;
        let live = store.referral_booking(referral).await.unwrap();
        match &booking {
            Ok(_) => booked += 1,
            Err(StoreError::Invalid(inv)) => {
                assert_eq!(inv.0[0].code, "not_accepted", "{inv:?}");
                withdrawn += 1;
            }
            Err(e) => panic!("{e:?}"),
        }
        let slot_now = store.slots(session).await.unwrap()[i].status.clone();
        match cancel {
            // Cancelled, before or after the booking: nothing of the booking stays live.
            Ok(_) => {
                assert_eq!(status.as_str(), "cancelled");
                assert!(live.is_none(), "a cancelled referral keeps no live booking");
                assert_eq!(slot_now, "free", "its slot is given back or never taken");
            }
            // The sender saw it accepted, but the booking moved it first: it stays booked,
            // with its booking and its slot.
            Err(StoreError::Conflict(e)) => {
                assert_eq!(e.code, "changed");
                assert!(booking.is_ok());
                assert_eq!(status.as_str(), "booked");
                assert!(live.is_some());
                assert_eq!(slot_now, "booked");
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    // Every booking made is audited once; a refused one leaves no entry.
    let audited = store
        .list_audit(&AuditFilter {
            action_prefix: Some("slot.book".into()),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(audited.len(), booked, "{withdrawn} withdrawn");
}

/// What a referral's booking writes besides the booking, the same on both databases (on
/// PostgreSQL it is one statement, on SQLite one step at a time): the referral booked, its
/// "book" event naming the reference and time, the receiving unit's notice, the audit entry
/// placed at the slot's unit; and a general booking writes its audit entry but no notice.
async fn a_referral_booking_writes_its_event_notice_and_audit_entry(store: Store) {
    let (lead, other) = city_for_booking(&store).await;
    let policy = medgrid_domain::capacity::Policy::default();
    let actor = Actor::system("test");
    let (_, slots) = store
        .open_care_session(&actor, &lead, &draft(12, 4), &policy)
        .await
        .unwrap();
    let referral = accepted_referral(&store, &other, &lead, 100).await;
    let unread_before = store.notifications(0, Some(lead.id), 100).await.unwrap();
    let reserved = slots.iter().find(|s| s.reserved).unwrap();
    let booking = store
        .book(
            &actor,
            &policy,
            &request(reserved.id, 100, "write-set", Some(referral)),
        )
        .await
        .unwrap();
    assert_eq!(booking.referral_id, Some(referral));
    assert_eq!(
        store.referral(referral).await.unwrap().status.as_str(),
        "booked"
    );
    let events = store.referral_events(referral).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(
        (
            last.transition.as_str(),
            last.from_status.as_deref(),
            last.to_status.as_str(),
            last.party.as_str()
        ),
        ("book", Some("accepted"), "booked", "sender")
    );
    assert_eq!(
        last.note.as_deref(),
        Some(
            format!(
                "{} {}",
                booking.reference,
                reserved.starts_at.format("%Y-%m-%d %H:%M")
            )
            .as_str()
        )
    );
    let unread = store.notifications(0, Some(lead.id), 100).await.unwrap();
    let new: Vec<_> = unread
        .iter()
        .filter(|n| !unread_before.iter().any(|b| b.id == n.id))
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    let notice = new[0];
    assert_eq!(
        (
            notice.referral_id,
            notice.unit_id,
            notice.user_id,
            notice.audience.as_str()
        ),
        (Some(referral), Some(lead.id), None, "receiver")
    );
    assert!(
        notice.text_en.ends_with(": book, now booked"),
        "{}",
        notice.text_en
    );
    assert!(
        notice.text_zh.contains(&format!("#{referral}")),
        "{}",
        notice.text_zh
    );
    assert_eq!(
        (notice.channel.as_str(), notice.delivery.as_str()),
        ("in_app", "pending")
    );
    // A general booking of an open slot: audited, heard by nobody.
    let open = slots.iter().find(|s| !s.reserved).unwrap();
    let general = store
        .book(&actor, &policy, &request(open.id, 101, "general", None))
        .await
        .unwrap();
    assert_eq!(general.kind, "general");
    assert_eq!(
        store
            .notifications(0, Some(lead.id), 100)
            .await
            .unwrap()
            .len(),
        unread.len()
    );
    let audited = store
        .list_audit(&AuditFilter {
            action_prefix: Some("slot.book".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let placed: Vec<_> = audited
        .iter()
        .map(|a| {
            (
                a.resource_id.clone(),
                a.group_id,
                a.unit_id,
                a.city_id,
                a.outcome.as_str(),
                a.actor_username.as_str(),
            )
        })
        .collect();
    let at = |b: &medgrid_store::booking::Booking| {
        (
            Some(format!("booking-{}", b.id)),
            lead.group_id,
            Some(lead.id),
            Some(lead.city_id),
            "ok",
            actor.username.as_str(),
        )
    };
    assert_eq!(placed, vec![at(&general), at(&booking)], "newest first");
    assert!(audited[1]
        .detail
        .as_deref()
        .unwrap()
        .ends_with("resident 100 referral"));
}
