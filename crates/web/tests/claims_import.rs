//! The bureau's claims file through the JSON API, on SQLite and PostgreSQL: only the officer
//! imports; a file with bad lines is reported line by line and changes nothing; a check
//! reports without writing; an import is written once, counted in the month's spending, and
//! a second sending finds it kept; a kept claim cannot be rewritten; the import is audited.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should stop the test

use chrono::NaiveDate;

use medgrid_testkit::TestDb;

mod support;
use support::world_with;

fn rows(db: &TestDb, statement: &str) -> Vec<Vec<String>> {
    let out = support::sql(db, statement);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect()
}

fn scalar(db: &TestDb, statement: &str) -> i64 {
    rows(db, statement)[0][0].trim().parse().unwrap()
}

const HEADER: &str = "claim_id,encounter_id,resident_id,group_code,unit_code,fund,kind,level,in_group,dip_group,los_days,total,eligible,deductible,insurance_paid,self_paid,settled_on\n";

async fn claims_come_from_a_file(db: &TestDb) {
    let params = medgrid_sim::Params::new(7, 600, NaiveDate::from_ymd_opt(2025, 1, 1).unwrap());
    let w = world_with(db, Some(params)).await;
    let insurer = support::insurance_officer(&w).await;
    let group = w.lead.group_id.unwrap();
    let code = w.store.group(group).await.unwrap().code;
    let url = format!("/api/v1/groups/{group}/insurance/claims");

    // Three outpatient visits at the group's own units, billed again as supplementary claims.
    let visits = rows(
        db,
        &format!(
            "SELECT e.id, e.resident_id, u.code FROM encounter e JOIN unit u ON u.id = e.unit_id \
             WHERE e.group_id = {group} AND e.in_group AND e.kind = 'outpatient' \
             AND u.group_id = {group} ORDER BY e.id LIMIT 3"
        ),
    );
    assert_eq!(visits.len(), 3);
    let next = scalar(db, "SELECT MAX(id) FROM claim") + 1;
    let line = |i: usize, claim: i64, resident: &str, group_code: &str, unit: &str, total: &str| {
        format!(
            "{claim},{},{resident},{group_code},{unit},resident,outpatient,primary,1,,,{total},100.00,0.00,60.00,{},2025-06-15\n",
            visits[i][0],
            // self-paid = total − 60.00
            {
                let t: f64 = total.parse().unwrap();
                format!("{:.2}", t - 60.0)
            }
        )
    };
    let good = format!(
        "{HEADER}{}{}{}",
        line(0, next, &visits[0][1], &code, &visits[0][2], "150.00"),
        line(1, next + 1, &visits[1][1], &code, &visits[1][2], "200.00"),
        line(2, next + 2, &visits[2][1], &code, &visits[2][2], "120.50"),
    );
    let count = || scalar(db, "SELECT COUNT(*) FROM claim");
    let before = count();

    // Only the bureau's officer imports.
    for token in [&w.group_manager, &w.doctor] {
        let r = w.post_raw(&url, token, "text/csv", good.as_bytes()).await;
        assert_eq!(r.status, 403, "{}", r.text);
    }

    // Bad lines, each named; nothing written.
    let wrong_resident = (visits[0][1].parse::<i64>().unwrap() + 100_000).to_string();
    let bad = format!(
        "{HEADER}{}{}{}",
        line(0, next, &visits[0][1], &code, "NO-SUCH-UNIT", "150.00"),
        line(1, next + 1, &wrong_resident, &code, &visits[1][2], "200.00"),
        line(
            2,
            next + 2,
            &visits[2][1],
            "OTHER-GROUP",
            &visits[2][2],
            "120.50"
        ),
    );
    let r = w.post_raw(&url, &insurer, "text/csv", bad.as_bytes()).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(
        r.fields(),
        [
            "line 2: unit_code",
            "line 3: resident_id",
            "line 4: group_code"
        ]
    );
    let r = w
        .post_raw(&url, &insurer, "text/csv", b"claim_id,total\n1,5\n")
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.fields().contains(&"line 1: settled_on".to_owned()));
    assert_eq!(count(), before, "a refused file writes nothing");

    // A check reports what would be done and writes nothing.
    let r = w
        .post_raw(
            &format!("{url}?check=true"),
            &insurer,
            "text/csv",
            good.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let report = r.json();
    assert_eq!(
        (report["imported"].as_i64(), report["written"].as_bool()),
        (Some(3), Some(false))
    );
    assert_eq!(count(), before);

    // The import: written once, in June's spending.
    let year = format!("/api/v1/groups/{group}/insurance?year=2025&fund=resident");
    let june = |v: &serde_json::Value| v["spending"][5]["in_group"].as_i64().unwrap();
    let june_before = june(&w.get(&year, &insurer).await.json());
    let r = w
        .post_raw(&url, &insurer, "text/csv", good.as_bytes())
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let report = r.json();
    assert_eq!(report["imported"], 3);
    assert_eq!(report["total"], 15_000 + 20_000 + 12_050);
    assert_eq!(report["insurance_paid"], 3 * 6_000);
    assert_eq!(count(), before + 3);
    assert_eq!(
        june(&w.get(&year, &insurer).await.json()),
        june_before + 18_000
    );
    assert_eq!(
        scalar(
            db,
            &format!("SELECT self_paid_fen FROM claim WHERE id = {}", next + 2)
        ),
        6_050
    );

    // Sent again: kept, counted, nothing doubled.
    let r = w
        .post_raw(&url, &insurer, "text/csv", good.as_bytes())
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["unchanged"], 3);
    assert_eq!(count(), before + 3);

    // A kept claim with other amounts is refused.
    let changed = format!(
        "{HEADER}{}",
        line(0, next, &visits[0][1], &code, &visits[0][2], "999.00")
    );
    let r = w
        .post_raw(&url, &insurer, "text/csv", changed.as_bytes())
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.fields(), ["line 2: claim_id"]);
    assert_eq!(
        scalar(
            db,
            "SELECT COUNT(*) FROM audit_event WHERE action = 'insurance.claims.import'"
        ),
        1
    );
}

on_both!(claims_come_from_a_file);
