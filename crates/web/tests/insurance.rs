//! The insurance global budget through the JSON API, on SQLite and PostgreSQL, on a synthetic
//! city's year of claims: who may run what, a budget's twelve prepayments, a month that cannot
//! be run twice but can be corrected, runs the database refuses to change, a settlement whose
//! statement adds up from the claims, and the statement as Excel.

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

on_both!(a_year_is_budgeted_prepaid_and_settled);
