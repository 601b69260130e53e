//! The insurance global budget through the JSON API, on SQLite and PostgreSQL, on a synthetic
//! city's year of claims: who may run what, a budget's twelve prepayments, a month that cannot
//! be run twice but can be corrected, runs the database refuses to change, a settlement whose
//! statement adds up from the claims, and the statement as Excel; the quarterly public-fund
//! runs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should stop the test

use chrono::NaiveDate;
use serde_json::{json, Value};

use medgrid_testkit::TestDb;

mod support;
use support::world_with;

fn step(statement: &Value, key: &str) -> i64 {
    statement["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no step {key}: {statement}"))["amount"]
        .as_i64()
        .unwrap()
}

async fn a_year_is_budgeted_prepaid_and_settled(db: &TestDb) {
    let params = medgrid_sim::Params::new(7, 600, NaiveDate::from_ymd_opt(2025, 1, 1).unwrap());
    let w = world_with(db, Some(params)).await;
    let insurer = support::insurance_officer(&w).await;
    let group = w.lead.group_id.unwrap();
    let base = format!("/api/v1/groups/{group}/insurance");

    // The year's spending from the claims.
    let r = w
        .get(&format!("{base}?year=2025&fund=resident"), &insurer)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let view = r.json();
    let months = view["spending"].as_array().unwrap();
    assert_eq!(months.len(), 12);
    let in_group: i64 = months.iter().map(|m| m["in_group"].as_i64().unwrap()).sum();
    let outflow: i64 = months.iter().map(|m| m["outflow"].as_i64().unwrap()).sum();
    assert!(in_group > 0, "the city's claims are counted: {view}");

    // Only the bureau's officer sets budgets and runs; bad input names its fields.
    let budget = json!({"year": 2025, "fund": "resident", "amount": 1_200_000_005i64, "charge_outflow": true});
    for token in [&w.group_manager, &w.doctor, &w.admin] {
        let r = w
            .post(&format!("{base}/budgets"), token, None, &budget)
            .await;
        assert_eq!(r.status, 403, "{}", r.text);
    }
    let r = w
        .post(
            &format!("{base}/budgets"),
            &insurer,
            None,
            &json!({"year": 1900, "fund": "gold", "amount": -1}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let mut f = r.fields();
    f.sort();
    assert_eq!(f, ["amount", "fund", "year"]);
    let r = w
        .post(&format!("{base}/budgets"), &insurer, None, &budget)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    // Settling before the months are prepaid is refused.
    let settle = json!({"year": 2025, "fund": "resident", "score": 92.5});
    let r = w
        .post(&format!("{base}/settlements"), &insurer, None, &settle)
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.fields(), ["year"]);

    // Twelve months: each once; the twelfth takes the budget's remainder.
    let mut dues = Vec::new();
    for month in 1..=12 {
        let r = w
            .post(
                &format!("{base}/prepayments"),
                &insurer,
                None,
                &json!({"year": 2025, "fund": "resident", "month": month}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let run = r.json();
        dues.push(run["due"].as_i64().unwrap());
        let expected_month = if month == 12 {
            1_200_000_005 - 11 * 100_000_000
        } else {
            100_000_000
        };
        assert_eq!(run["month_budget"], expected_month, "month {month}");
        // 95% prepaid, 5% of that withheld, the month's outflow deducted.
        let gross = run["gross"].as_i64().unwrap();
        assert_eq!(
            run["deposit"].as_i64().unwrap(),
            (gross as f64 * 0.05).round() as i64
        );
        assert_eq!(
            run["due"].as_i64().unwrap(),
            gross - run["outflow"].as_i64().unwrap() - run["deposit"].as_i64().unwrap()
        );
    }
    let r = w
        .post(
            &format!("{base}/prepayments"),
            &insurer,
            None,
            &json!({"year": 2025, "fund": "resident", "month": 3}),
        )
        .await;
    assert_eq!(r.status, 409, "a month runs once: {}", r.text);
    // A correction needs a reason, and records the difference (the same inputs: none).
    let r = w
        .post(
            &format!("{base}/prepayments"),
            &insurer,
            None,
            &json!({"year": 2025, "fund": "resident", "month": 3, "correction_reason": " "}),
        )
        .await;
    assert_eq!(r.status, 422);
    let r = w
        .post(&format!("{base}/prepayments"), &insurer, None,
            &json!({"year": 2025, "fund": "resident", "month": 3, "correction_reason": "外流数据补报"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let correction = r.json();
    assert_eq!(correction["seq"], 2);
    assert_eq!(correction["due"], dues[2], "same inputs, same result");
    assert_eq!(step(&correction, "difference"), 0);

    // The database itself refuses to change a confirmed run.
    let changed = support::sql(db, "UPDATE prepayment_run SET due = 0");
    assert!(!changed.status.success(), "runs are immutable");

    // The settlement: actual spending from the claims against the budget.
    let r = w
        .post(&format!("{base}/settlements"), &insurer, None, &settle)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let s = r.json();
    let st = &s["statement"];
    let actual = in_group + outflow;
    assert_eq!(st["actual"], actual);
    assert_eq!(step(st, "budget"), 1_200_000_005);
    assert_eq!(step(st, "prepaid"), -dues.iter().sum::<i64>());
    let due = s["due"].as_i64().unwrap();
    assert_eq!(due, step(st, "due"));
    // The statement adds up: entitled − outflow − forfeited − prepaid = due.
    assert_eq!(
        step(st, "entitled")
            + step(st, "outflow_paid")
            + step(st, "forfeited")
            + step(st, "prepaid"),
        due
    );
    assert_eq!(
        step(st, "forfeited"),
        0,
        "92.5 ≥ 90: the deposit comes back whole"
    );
    // Settling again with the same inputs gives the identical statement, as a new version.
    let again = w
        .post(&format!("{base}/settlements"), &insurer, None, &settle)
        .await
        .json();
    assert_eq!(again["seq"], 2);
    assert_eq!(again["statement"], s["statement"]);

    // Those who steer read it; the statement exports to Excel.
    let r = w
        .get(&format!("{base}?year=2025&fund=resident"), &w.group_manager)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["runs"].as_array().unwrap().len(), 13);
    let r = w
        .get(&format!("{base}?year=2025&fund=resident"), &w.doctor)
        .await;
    assert_eq!(r.status, 403);
    let id = s["id"].as_i64().unwrap();
    let r = w
        .get(
            &format!("/api/v1/insurance/settlements/{id}/statement.xlsx"),
            &insurer,
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.content_type.contains("spreadsheetml"),
        "{}",
        r.content_type
    );
}

/// The quarterly public-fund runs: capitation of the group's residents with the drug subsidy,
/// a quarter shared by the residents each member serves, 70% at once and the rest by the
/// half-year's assessment score, every fen of the year accounted for.
async fn public_funds_by_quarter(db: &TestDb) {
    let params = medgrid_sim::Params::new(7, 600, NaiveDate::from_ymd_opt(2025, 1, 1).unwrap());
    let w = world_with(db, Some(params)).await;
    let insurer = support::insurance_officer(&w).await;
    let group = w.lead.group_id.unwrap();
    let url = format!("/api/v1/groups/{group}/insurance/public-funds");
    let q = |quarter: u32| json!({"year": 2025, "quarter": quarter, "per_person": 8_900, "drug_subsidy": 1_000_003});

    let r = w.post(&url, &w.group_manager, None, &q(1)).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = w
        .post(
            &url,
            &insurer,
            None,
            &json!({"year": 2025, "quarter": 5, "per_person": 0, "advance": 2_000_000}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.fields(), ["quarter", "per_person", "advance"]);

    // Q1, before any assessment: the advance paid, the rest withheld.
    let r = w.post(&url, &insurer, None, &q(1)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let first = r.json();
    let residents: i64 = String::from_utf8_lossy(
        &support::sql(
            db,
            &format!(
                "SELECT COUNT(*) FROM resident WHERE group_id = {group} AND merged_into_id IS NULL"
            ),
        )
        .stdout,
    )
    .trim()
    .parse()
    .unwrap();
    assert_eq!(first["population"], residents);
    let year_total = residents * 8_900 + 1_000_003;
    assert_eq!(first["year_total"], year_total);
    let members = first["members"].as_array().unwrap();
    assert!(members.len() >= 2, "{first}");
    let shares: i64 = members.iter().map(|m| m["share"].as_i64().unwrap()).sum();
    assert_eq!(shares, first["quarter_total"].as_i64().unwrap());
    for m in members {
        let share = m["share"].as_i64().unwrap();
        // 70%, half a fen rounded up: (share × 7 + 5) ÷ 10 in whole fen.
        assert_eq!(m["advance"], (share * 7 + 5) / 10);
        assert_eq!(m["released"], 0, "no report yet: {m}");
        assert_eq!(
            m["withheld"].as_i64().unwrap(),
            share - m["advance"].as_i64().unwrap()
        );
    }
    let populations: i64 = members
        .iter()
        .map(|m| m["population"].as_i64().unwrap())
        .sum();
    assert_eq!(populations, residents);

    // Once again only with a reason, and then the same.
    let r = w.post(&url, &insurer, None, &q(1)).await;
    assert_eq!(r.status, 409, "{}", r.text);
    let mut again = q(1);
    again["reason"] = json!("人口数据更正");
    let r = w.post(&url, &insurer, None, &again).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["seq"], 2);
    assert_eq!(r.json()["members"], first["members"]);

    // The half-year's assessment releases Q2's remainder by each member's score.
    let report = w
        .post(
            &format!("/api/v1/groups/{group}/assessments"),
            &w.group_manager,
            None,
            &json!({"period": "2025-H1"}),
        )
        .await;
    assert_eq!(report.status, 201, "{}", report.text);
    let report = report.json();
    let r = w.post(&url, &insurer, None, &q(2)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let second = r.json();
    assert_eq!(second["assessment_id"], report["id"]);
    let mut released_any = false;
    for m in second["members"].as_array().unwrap() {
        let scored = report["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["member_id"] == m["unit_id"]);
        let rest = m["share"].as_i64().unwrap() - m["advance"].as_i64().unwrap();
        match scored {
            Some(s) => {
                // Reports write scores as decimals ("87.25"); runs keep hundredths.
                let score =
                    (s["total"].as_str().unwrap().parse::<f64>().unwrap() * 100.0).round() as i64;
                assert_eq!(m["score"], score);
                assert_eq!(m["released"], (rest * score * 2 + 10_000) / 20_000, "{m}");
                released_any |= m["released"].as_i64().unwrap() > 0;
            }
            None => assert_eq!(m["released"], 0, "no score, nothing released: {m}"),
        }
    }
    assert!(released_any, "someone's remainder was released");

    // Four quarters add up to the year exactly.
    for quarter in [3, 4] {
        let r = w.post(&url, &insurer, None, &q(quarter)).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let r = w.get(&format!("{url}?year=2025"), &w.group_manager).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let runs = r.json();
    let latest: i64 = [1, 2, 3, 4]
        .iter()
        .map(|quarter| {
            runs.as_array()
                .unwrap()
                .iter()
                .rfind(|x| x["quarter"] == *quarter)
                .unwrap()["quarter_total"]
                .as_i64()
                .unwrap()
        })
        .sum();
    assert_eq!(latest, year_total);
    assert!(
        !support::sql(db, "UPDATE public_fund_run SET quarter_total = 0")
            .status
            .success()
    );
}

on_both!(
    a_year_is_budgeted_prepaid_and_settled,
    public_funds_by_quarter
);
