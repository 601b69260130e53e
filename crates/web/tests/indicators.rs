//! Indicators through the JSON API and FHIR on a loaded synthetic city, on SQLite and on
//! PostgreSQL: who sees which node, what bad input is told, the exports, the groups' own
//! targets applying from their month, and the cockpit's values equal to a recomputation from
//! every fact after new facts arrive.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should stop the test

use chrono::NaiveDate;
use serde_json::{json, Value};

use medgrid_analytics::{evaluate, Rollup};
use medgrid_domain::indicator::{Library, Period};
use medgrid_domain::referral::Priority;
use medgrid_store::referral::ReferralDraft;
use medgrid_store::Actor;
use medgrid_testkit::TestDb;

mod support;
use support::{world_with, World};

/// The world with a synthetic city of 2025 loaded (the cube is built by the load).
async fn loaded(db: &TestDb) -> World {
    let params = medgrid_sim::Params::new(7, 1_200, NaiveDate::from_ymd_opt(2025, 1, 1).unwrap());
    world_with(db, Some(params)).await
}

fn group(w: &World) -> String {
    format!("group-{}", w.lead.group_id.unwrap())
}

fn row<'a>(board: &'a Value, id: &str) -> &'a Value {
    board["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["indicator_id"] == id)
        .unwrap_or_else(|| panic!("no row {id}"))
}

async fn board_scope_errors_and_exports(db: &TestDb) {
    let w = loaded(db).await;
    let g = group(&w);
    let r = w
        .get(
            &format!("/api/v1/indicators/board?org={g}&period=2025-Q2"),
            &w.group_manager,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let b = r.json();
    assert_eq!(b["node"]["org"], g.as_str());
    assert_eq!(b["period"], "2025-Q2");
    assert_eq!(b["rows"].as_array().unwrap().len(), 14);
    let visits = row(&b, "in_region_visit_rate");
    let (n, d) = (
        visits["numerator"].as_i64().unwrap(),
        visits["denominator"].as_i64().unwrap(),
    );
    assert!(d > 0 && n <= d, "{visits}");
    let shown: f64 = visits["value"].as_str().unwrap().parse().unwrap();
    assert!((shown - n as f64 * 100.0 / d as f64).abs() < 0.005);
    assert!(["green", "amber", "red"].contains(&visits["rag"].as_str().unwrap()));
    let children = b["children"].as_array().unwrap();
    assert!(children.len() > 3, "the group's units");
    assert!(children
        .iter()
        .any(|c| c["node"]["org"] == format!("unit-{}", w.lead.id)));
    assert_eq!(b["breadcrumbs"].as_array().unwrap().len(), 2);

    // The city's view (regulator, administrator): every group of the city, to drill into.
    let city = w
        .get(
            &format!(
                "/api/v1/indicators/board?org=city-{}&period=2025-Q2",
                w.lead.city_id
            ),
            &w.admin,
        )
        .await;
    assert_eq!(city.status, 200, "{}", city.text);
    let city = city.json();
    let groups = city["children"].as_array().unwrap();
    assert_eq!(groups.len(), 3, "the Jinhua layout's three groups");
    assert!(groups.iter().all(|c| c["node"]["kind"] == "group"));
    let city_visits = row(&city, "in_region_visit_rate")["denominator"]
        .as_i64()
        .unwrap();
    assert!(city_visits > d, "the city counts every group's visits");

    // The lead hospital's reserved capacity in the month of the world's session (30 slots, 10
    // kept for referrals, none used yet).
    let month = (medgrid_store::local_now().date() + chrono::Days::new(3)).format("%Y-%m");
    let lead = w
        .get(
            &format!(
                "/api/v1/indicators/board?org=unit-{}&period={month}",
                w.lead.id
            ),
            &w.manager,
        )
        .await
        .json();
    let reserved = &lead["reservation"];
    assert_eq!(
        (reserved["capacity"].as_i64(), reserved["reserved"].as_i64()),
        (Some(30), Some(10))
    );
    assert_eq!(reserved["required"], 10);
    assert_eq!(reserved["breach_days"], 0);

    // A member manager sees their own unit, and its departments, but not the group.
    let own = w
        .get("/api/v1/indicators/board?period=2025-Q2", &w.manager)
        .await;
    assert_eq!(own.status, 200, "{}", own.text);
    assert_eq!(own.json()["node"]["org"], format!("unit-{}", w.lead.id));
    for other in [g.clone(), format!("unit-{}", w.primary.id)] {
        let r = w
            .get(&format!("/api/v1/indicators/board?org={other}"), &w.manager)
            .await;
        assert_eq!(r.status, 403, "{other}: {}", r.text);
    }
    let dept = w
        .get(
            &format!(
                "/api/v1/indicators/board?org=unit-{}&department=XXG&period=2025",
                w.lead.id
            ),
            &w.manager,
        )
        .await;
    assert_eq!(dept.status, 200, "{}", dept.text);
    let dept = dept.json();
    let ids: Vec<&str> = dept["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["indicator_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["average_length_of_stay"]);
    // Clinicians see patients, not the group's numbers.
    let r = w.get("/api/v1/indicators/board", &w.doctor).await;
    assert_eq!(r.status, 403);

    for (query, field) in [
        ("period=2025-13", "period"),
        ("period=2025-+3", "period"),
        ("period_kind=decade", "period_kind"),
        ("period=2025-03&period_kind=quarter", "period_kind"),
        ("org=unit-999999", "org"),
        (format!("org={g}&department=XXG").as_str(), "department"),
        ("perod=2025-Q1", "perod"),
    ] {
        let r = w
            .get(
                &format!("/api/v1/indicators/board?{query}"),
                &w.group_manager,
            )
            .await;
        assert_eq!(r.status, 422, "{query}: {}", r.text);
        assert_eq!(r.fields(), [field], "{query}");
    }
    let r = w
        .get(
            &format!(
                "/api/v1/indicators/board?org=unit-{}&department=NOPE",
                w.lead.id
            ),
            &w.group_manager,
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.fields()),
        (422, vec!["department".to_owned()])
    );

    let csv = w
        .get(
            &format!("/api/v1/indicators/table.csv?org={g}&period=2025-Q2"),
            &w.group_manager,
        )
        .await;
    assert_eq!(csv.status, 200);
    assert!(csv.content_type.starts_with("text/csv"));
    assert!(csv.text.starts_with('\u{feff}'), "Excel needs the BOM");
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines.len(), 15);
    assert!(lines[0].contains("指标编码") && lines[0].contains("同比增减"));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("in_region_visit_rate,") && l.contains(&format!(",{n},{d},"))));
    let xlsx = w
        .get(
            &format!("/api/v1/indicators/table.xlsx?org={g}&period=2025-Q2"),
            &w.group_manager,
        )
        .await;
    assert_eq!(xlsx.status, 200);
    assert!(xlsx.content_type.contains("spreadsheetml"));
    assert!(xlsx.text.starts_with("PK"), "an xlsx file is a zip archive");
    let r = w
        .get(&format!("/api/v1/indicators/table.xlsx?org={g}"), &w.doctor)
        .await;
    assert_eq!(r.status, 403);
}

async fn group_targets_apply_from_their_month(db: &TestDb) {
    let w = loaded(db).await;
    let g = w.lead.group_id.unwrap();
    let path = format!("/api/v1/groups/{g}/indicator-targets");
    let body = |from: &str, target: &str, amber: &str| {
        json!({"indicator_id": "primary_visit_share", "from": from, "target": target,
               "amber": amber, "note": "集团年度目标"})
    };
    for (input, field) in [
        (body("2025-04", "50", "60"), "amber"),
        (body("2025-13", "50", "40"), "from"),
        (body("2025-04", "fifty", "40"), "target"),
        (
            json!({"indicator_id": "no_such", "from": "2025-04", "target": "1", "amber": "0"}),
            "indicator_id",
        ),
    ] {
        let r = w.post(&path, &w.group_manager, None, &input).await;
        assert_eq!(r.status, 422, "{input}: {}", r.text);
        assert_eq!(r.fields(), [field]);
    }
    let r = w
        .post(&path, &w.manager, None, &body("2025-04", "50", "40"))
        .await;
    assert_eq!(
        r.status, 403,
        "a member manager does not set the group's targets"
    );
    let listed = w.get(&path, &w.group_manager).await.json();
    assert_eq!(
        listed.as_array().unwrap().len(),
        0,
        "refusals wrote nothing"
    );

    let r = w
        .post(&path, &w.group_manager, None, &body("2025-04", "50", "40"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let before = w
        .get(
            &format!("/api/v1/indicators/board?org=group-{g}&period=2025-03"),
            &w.group_manager,
        )
        .await
        .json();
    let share = row(&before, "primary_visit_share");
    assert_eq!(
        (share["target"].as_str(), share["group_target"].as_bool()),
        (Some("67.5"), Some(false))
    );
    let after = w
        .get(
            &format!("/api/v1/indicators/board?org=group-{g}&period=2025-Q2"),
            &w.group_manager,
        )
        .await
        .json();
    let share = row(&after, "primary_visit_share");
    assert_eq!(
        (share["target"].as_str(), share["group_target"].as_bool()),
        (Some("50"), Some(true))
    );
    assert_eq!(share["targets_from"], "2025-04");
    let value: f64 = share["value"].as_str().unwrap().parse().unwrap();
    let expected = if value >= 50.0 {
        "green"
    } else if value >= 40.0 {
        "amber"
    } else {
        "red"
    };
    assert_eq!(share["rag"], expected);
    let lib = w
        .get(
            &format!("/api/v1/indicators?group_id={g}&month=2025-05"),
            &w.group_manager,
        )
        .await;
    assert_eq!(lib.status, 200);
    let entry = lib
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "primary_visit_share")
        .cloned()
        .unwrap();
    assert_eq!(
        (entry["target"].as_str(), entry["group_target"].as_bool()),
        (Some("50"), Some(true))
    );
}

async fn fhir_measures_and_reports(db: &TestDb) {
    let w = loaded(db).await;
    let g = group(&w);
    let all = w.get("/fhir/Measure", &w.group_manager).await;
    assert_eq!(all.status, 200);
    assert_eq!(all.json()["total"], 14);
    let m = w
        .get("/fhir/Measure/in-region-visit-rate", &w.group_manager)
        .await
        .json();
    assert_eq!(m["resourceType"], "Measure");
    assert_eq!(m["scoring"]["coding"][0]["code"], "proportion");
    assert_eq!(m["improvementNotation"]["coding"][0]["code"], "increase");
    let r = w
        .get(
            &format!("/fhir/MeasureReport?subject=Organization/{g}&period=2025-Q2&measure=in-region-visit-rate"),
            &w.group_manager,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let reports = r.entries();
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert_eq!(report["type"], "summary");
    assert_eq!(report["period"]["start"], "2025-04-01");
    assert_eq!(report["period"]["end"], "2025-06-30");
    let b = w
        .get(
            &format!("/api/v1/indicators/board?org={g}&period=2025-Q2"),
            &w.group_manager,
        )
        .await
        .json();
    let visits = row(&b, "in_region_visit_rate");
    assert_eq!(
        report["group"][0]["population"][0]["count"],
        visits["numerator"]
    );
    assert_eq!(
        report["group"][0]["population"][1]["count"],
        visits["denominator"]
    );
    let denied = w
        .get(
            &format!("/fhir/MeasureReport?subject=Organization/{g}"),
            &w.doctor,
        )
        .await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.json()["resourceType"], "OperationOutcome");
}

/// After new facts arrive and the cube is refreshed, every value the board shows for every
/// node equals the value recomputed from all the facts.
async fn board_equals_a_full_recomputation(db: &TestDb) {
    let w = loaded(db).await;
    let actor = Actor::system("test");
    // The world's own referral, sent today, widened the months after the load: taken in.
    w.store.refresh_cube(&actor).await.unwrap();
    let sent = NaiveDate::from_ymd_opt(2025, 6, 12)
        .unwrap()
        .and_hms_opt(10, 0, 0)
        .unwrap();
    for priority in [Priority::Routine, Priority::Urgent] {
        support_referral(&w, sent, priority).await;
    }
    let r = w.store.refresh_cube(&actor).await.unwrap();
    assert!(!r.rebuilt && r.units >= 1, "{r:?}");

    let span = w.store.cube_state().await.unwrap().unwrap().span().unwrap();
    let full = w.store.build_cube(span, None).await.unwrap();
    let lib = Library::shipped().unwrap();
    let g = w.lead.group_id.unwrap();
    let tree = w.store.city_tree(w.lead.city_id).await.unwrap();
    for period in ["2025-06", "2025-Q2", "2025-H1", "2025"] {
        let p = Period::parse("period", period).unwrap();
        for (org, units) in [
            (
                format!("group-{g}"),
                tree.units
                    .iter()
                    .filter(|u| u.group_id == Some(g))
                    .map(|u| u.id)
                    .collect(),
            ),
            (
                format!("unit-{}", w.primary.id),
                std::collections::HashSet::from([w.primary.id]),
            ),
        ] {
            let b = w
                .get(
                    &format!("/api/v1/indicators/board?org={org}&period={period}"),
                    &w.group_manager,
                )
                .await
                .json();
            let rollup = Rollup::new(&full, Some(&units), None).within(span.first, span.last);
            for i in &lib.indicators {
                let e = evaluate(i, p, &rollup).unwrap();
                let shown = row(&b, &i.id);
                assert_eq!(
                    (
                        shown["numerator"].as_i64().unwrap(),
                        shown["denominator"].as_i64().unwrap()
                    ),
                    (e.value.numerator, e.value.denominator),
                    "{org} {period} {}",
                    i.id
                );
            }
        }
    }
}

async fn support_referral(w: &World, sent: chrono::NaiveDateTime, priority: Priority) {
    let (_, patient) = w.store.referrals_to(w.lead.id, 1).await.unwrap()[0];
    w.store
        .create_referral(
            &Actor::system("test"),
            &ReferralDraft {
                resident_id: patient,
                from_unit_id: w.primary.id,
                to_unit_id: Some(w.lead.id),
                priority: Some(priority),
                diagnosis: "I21.0".into(),
                reason: "胸痛待查".into(),
                send: true,
                ..ReferralDraft::default()
            },
            sent,
        )
        .await
        .unwrap();
}

async fn assessments_score_members_and_keep_their_reports(db: &TestDb) {
    let w = loaded(db).await;
    let g = w.lead.group_id.unwrap();
    let scheme = w
        .get(
            &format!("/api/v1/groups/{g}/assessment-scheme"),
            &w.group_manager,
        )
        .await;
    assert_eq!(scheme.status, 200, "{}", scheme.text);
    let scheme = scheme.json();
    assert_eq!(scheme["version"], 0);
    let runs = format!("/api/v1/groups/{g}/assessments");
    for token in [&w.manager, &w.doctor] {
        let r = w
            .post(&runs, token, None, &json!({"period": "2025-H1"}))
            .await;
        assert_eq!(
            r.status, 403,
            "only those who steer the group run assessments"
        );
    }
    for (period, code) in [("2025-H3", "period"), ("2019-H1", "no_data")] {
        let r = w
            .post(&runs, &w.group_manager, None, &json!({"period": period}))
            .await;
        assert_eq!(r.status, 422, "{period}: {}", r.text);
        assert_eq!(r.fields(), ["period"]);
        assert_eq!(r.json()["errors"][0]["code"], code);
    }
    let first = w
        .post(&runs, &w.group_manager, None, &json!({"period": "2025-H1"}))
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let first = first.json();
    let tree = w.store.city_tree(w.lead.city_id).await.unwrap();
    let primaries = tree
        .units
        .iter()
        .filter(|u| u.group_id == Some(g) && u.role.as_str() == "primary")
        .count();
    let results = first["results"].as_array().unwrap();
    assert_eq!(results.len(), primaries);
    assert_eq!(results[0]["rank"], 1);
    for m in results {
        let total: f64 = m["total"].as_str().unwrap().parse().unwrap();
        assert!((0.0..=100.0).contains(&total), "{m}");
        let sum: f64 = m["dimensions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["score"].as_str().unwrap().parse::<f64>().unwrap())
            .sum();
        assert!(
            (sum - total).abs() < 1e-9,
            "the total is its dimensions' sum"
        );
    }
    assert!(
        results.windows(2).all(|p| {
            let t = |m: &Value| m["total"].as_str().unwrap().parse::<f64>().unwrap();
            t(&p[0]) >= t(&p[1])
        }),
        "best first"
    );
    // The same facts give the same report; a report stays as computed.
    let again = w
        .post(&runs, &w.group_manager, None, &json!({"period": "2025-H1"}))
        .await
        .json();
    assert_eq!(again["results"], first["results"]);
    assert_ne!(again["id"], first["id"]);
    let read = w
        .get(
            &format!("/api/v1/assessments/{}", first["id"]),
            &w.group_manager,
        )
        .await;
    assert_eq!(read.json()["results"], first["results"]);
    let listed = w.get(&runs, &w.group_manager).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["id"], again["id"], "newest first");
    let xlsx = w
        .get(
            &format!("/api/v1/assessments/{}/report.xlsx", first["id"]),
            &w.group_manager,
        )
        .await;
    assert!(xlsx.status == 200 && xlsx.text.starts_with("PK"));
    let r = w
        .get(&format!("/api/v1/assessments/{}", first["id"]), &w.doctor)
        .await;
    assert_eq!(r.status, 403);

    // The group writes its own scheme: checked, then used by the next run.
    let mut own = scheme["scheme"].clone();
    own["dimensions"][0]["points"] = json!("20");
    let r = w
        .post(
            &format!("/api/v1/groups/{g}/assessment-scheme"),
            &w.group_manager,
            None,
            &own,
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.fields().contains(&"dimensions".to_owned()));
    let mut own = scheme["scheme"].clone();
    own["name_zh"] = json!("本集团2026年考核方案");
    let r = w
        .post(
            &format!("/api/v1/groups/{g}/assessment-scheme"),
            &w.group_manager,
            None,
            &own,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["version"], 1);
    let third = w
        .post(&runs, &w.group_manager, None, &json!({"period": "2025-H1"}))
        .await
        .json();
    assert_eq!(third["scheme_version"], 1);
    assert_eq!(third["scheme"]["name_zh"], "本集团2026年考核方案");
}

/// The records behind a number: as many as the board counts, names masked, for those who may
/// see the unit's patients only, and the read audited.
async fn records_behind_a_number(db: &TestDb) {
    let w = loaded(db).await;
    // The world's resident and referral came after the load: the cube takes them in.
    w.store.refresh_cube(&Actor::system("test")).await.unwrap();
    let unit = format!("unit-{}", w.primary.id);
    let board = w
        .get(
            &format!("/api/v1/indicators/board?org={unit}&period=2025-Q2"),
            &w.group_manager,
        )
        .await
        .json();
    for (indicator, side) in [
        ("in_region_visit_rate", "numerator"),
        ("contract_rate", "numerator"),
        ("contract_rate", "denominator"),
        ("essential_medicine_share", "denominator"),
    ] {
        let r = row(&board, indicator);
        let measure = r[format!("{side}_measure")].as_str().unwrap();
        let list = w
            .get(
                &format!("/api/v1/indicators/records?org={unit}&period=2025-Q2&measure={measure}&limit=5"),
                &w.doctor,
            )
            .await;
        assert_eq!(list.status, 200, "{}", list.text);
        let list = list.json();
        assert_eq!(list["total"], r[side], "{indicator} {side}");
        let records = list["records"].as_array().unwrap();
        assert_eq!(records.len(), 5.min(r[side].as_u64().unwrap() as usize));
        assert!(
            records
                .iter()
                .all(|x| x["name"].as_str().unwrap().contains('*')),
            "masked"
        );
    }
    // Managers steer with numbers, not patients; a doctor sees their own unit only.
    let q = format!("/api/v1/indicators/records?org={unit}&period=2025-Q2&measure=visits");
    assert_eq!(w.get(&q, &w.group_manager).await.status, 403);
    let group = format!(
        "/api/v1/indicators/records?org={}&period=2025-Q2&measure=visits",
        group(&w)
    );
    assert_eq!(w.get(&group, &w.doctor).await.status, 403);
    let bad = w
        .get(
            &format!("/api/v1/indicators/records?org={unit}&measure=nothing"),
            &w.doctor,
        )
        .await;
    assert_eq!(
        (bad.status.as_u16(), bad.fields()),
        (422, vec!["measure".to_owned()])
    );
    for (query, field) in [
        (format!("org={unit}&period=2025-Q2"), "measure"),
        (
            format!("org={unit}&period=2025-Q2&measure=visits&limit=0"),
            "limit",
        ),
        (
            format!("org={unit}&period=2025-Q2&measure=visits&limit=2001"),
            "limit",
        ),
    ] {
        let r = w
            .get(&format!("/api/v1/indicators/records?{query}"), &w.doctor)
            .await;
        assert_eq!(r.status, 422, "{query}: {}", r.text);
        assert_eq!(r.fields(), [field], "{query}");
    }
    let audit = w
        .store
        .list_audit(&medgrid_store::AuditFilter {
            action_prefix: Some("patient.read".into()),
            limit: 50,
            ..medgrid_store::AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .filter(|e| e.resource_type == "MeasureReport")
            .count()
            >= 4
    );
    // The entry says whose records were shown, not only how many.
    assert!(audit.iter().any(|e| e
        .detail
        .as_deref()
        .is_some_and(|d| d.contains("records listed: ") && d.contains('('))));
}

on_both!(
    records_behind_a_number,
    assessments_score_members_and_keep_their_reports,
    board_scope_errors_and_exports,
    group_targets_apply_from_their_month,
    fhir_measures_and_reports,
    board_equals_a_full_recomputation,
);
