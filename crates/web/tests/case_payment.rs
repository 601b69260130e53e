//! DIP case payment through the JSON API, on SQLite and PostgreSQL, on a synthetic city's
//! year of claims: who may run it, bad periods named, a month's run checked against the
//! claims and against arithmetic done here (group points, branches, the point value, every
//! case adding up to the members' totals), a case traced and its read audited, a period
//! that runs again only with a reason and then pays the same, changed parameters that leave
//! a kept run alone, runs the database refuses to change, and the year's final run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should stop the test

use std::collections::HashMap;

use chrono::NaiveDate;
use serde_json::{json, Value};

use medgrid_testkit::TestDb;

mod support;
use support::{world_with, World};

/// One number the database itself computes.
fn scalar(db: &TestDb, statement: &str) -> i64 {
    let out = support::sql(db, statement);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Every case of a run, page by page.
async fn all_cases(w: &World, token: &str, run: i64) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let r = w
            .get(
                &format!(
                    "/api/v1/insurance/case-payments/{run}/cases?limit=500&offset={}",
                    out.len()
                ),
                token,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let page = r.json();
        let cases = page["cases"].as_array().unwrap().clone();
        if cases.is_empty() {
            assert_eq!(page["total"].as_u64().unwrap() as usize, out.len());
            return out;
        }
        out.extend(cases);
    }
}

fn n(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Checks a run's cases against arithmetic done here, under the test's rule (outliers from
/// 2.5 and up to 0.4 times the level's mean; coefficients 1, 0.8, 0.6, 0.5): group points,
/// branches, coefficients, the total points, each payment and the totals. Returns how many
/// cases fell in each branch.
fn verify(run: &Value, cases: &[Value]) -> HashMap<String, usize> {
    // Group points from the cases, here in floating point: mean of the group ÷ mean of all,
    // each mean rounded to the fen first as the rule says.
    let all_mean =
        (cases.iter().map(|c| n(&c["cost"]) as f64).sum::<f64>() / cases.len() as f64).round();
    assert_eq!(n(&run["all_mean"]) as f64, all_mean);
    let mut groups: HashMap<&str, (f64, f64)> = HashMap::new();
    let mut levels: HashMap<(&str, &str), (f64, f64)> = HashMap::new();
    for c in cases {
        let g = groups.entry(c["dip_group"].as_str().unwrap()).or_default();
        g.0 += n(&c["cost"]) as f64;
        g.1 += 1.0;
        let l = levels
            .entry((
                c["dip_group"].as_str().unwrap(),
                c["level"].as_str().unwrap(),
            ))
            .or_default();
        l.0 += n(&c["cost"]) as f64;
        l.1 += 1.0;
    }
    let mut total_weighted = 0.0;
    let mut branches: HashMap<String, usize> = HashMap::new();
    for c in cases {
        let r = &c["result"];
        let (sum, count) = groups[c["dip_group"].as_str().unwrap()];
        let expected = (sum / count).round() / all_mean * 100.0 * 10_000.0;
        assert!(
            (n(&r["group_points"]) as f64 - expected).abs() <= 1.0,
            "group points of {c}: expected {expected}"
        );
        let (lsum, lcount) = levels[&(
            c["dip_group"].as_str().unwrap(),
            c["level"].as_str().unwrap(),
        )];
        let ratio = n(&c["cost"]) as f64 / (lsum / lcount).round();
        let branch = r["case"]["branch"].as_str().unwrap();
        let want = if ratio >= 2.5 {
            "high"
        } else if ratio <= 0.4 {
            "low"
        } else {
            "normal"
        };
        // Exactly at a threshold the stored ratio decides; away from one, the branch is plain.
        if (ratio - 2.5).abs() > 1e-6 && (ratio - 0.4).abs() > 1e-6 {
            assert_eq!(branch, want, "ratio {ratio} of {c}");
        }
        *branches.entry(branch.to_owned()).or_default() += 1;
        let coefficient = match c["level"].as_str().unwrap() {
            "tertiary" => 1.0,
            "secondary" => 0.8,
            "primary" => 0.6,
            _ => 0.5,
        };
        assert_eq!(n(&r["coefficient"]) as f64, coefficient * 1_000_000.0);
        total_weighted += n(&r["case"]["points"]) as f64 * coefficient;
        assert_eq!(
            n(&r["paid"]),
            (n(&r["gross"]) - n(&r["self_paid"])).max(0),
            "the fund pays the case less what the patient paid, never below zero"
        );
    }
    assert!(
        (n(&run["total_points"]) as f64 - total_weighted).abs() <= cases.len() as f64,
        "total points {} against {total_weighted}",
        run["total_points"]
    );
    // The point value shares the pool less the reserve over the points: the cases' payments
    // add up to it within a fen a case, and to the run's totals exactly.
    let available = n(&run["pool"]) - n(&run["reserve"]);
    let gross: i64 = cases.iter().map(|c| n(&c["result"]["gross"])).sum();
    let paid: i64 = cases.iter().map(|c| n(&c["result"]["paid"])).sum();
    assert!((gross - available).abs() <= cases.len() as i64, "{gross}");
    assert_eq!(gross, n(&run["gross"]));
    assert_eq!(paid, n(&run["paid"]));
    branches
}

async fn dip_runs_by_month_and_year(db: &TestDb) {
    let params = medgrid_sim::Params::new(7, 5_000, NaiveDate::from_ymd_opt(2025, 1, 1).unwrap());
    let w = world_with(db, Some(params)).await;
    let insurer = support::insurance_officer(&w).await;
    let group = w.lead.group_id.unwrap();
    let base = format!("/api/v1/groups/{group}/insurance");

    // The budget with its DIP rule: 50% of each month's budget pays inpatient cases, 10% of
    // that is held back; high outliers from 2.5 times the level's mean, low up to 0.4.
    let rule = json!({
        "outliers": {"high": 2_500_000, "low": 400_000},
        "coefficients": {"tertiary": 1_000_000, "secondary": 800_000, "primary": 600_000, "unrated": 500_000},
        "inpatient_share": 500_000,
        "reserve": 100_000,
    });
    let mut bad = rule.clone();
    bad["reserve"] = json!(1_000_000);
    bad["outliers"]["low"] = json!(1_200_000);
    let r = w
        .post(
            &format!("{base}/budgets"),
            &insurer,
            None,
            &json!({"year": 2025, "fund": "resident", "amount": 1_200_000_000i64, "case_payment": bad}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let mut f = r.fields();
    f.sort();
    assert_eq!(f, ["case_payment.inpatient_share", "case_payment.outliers"]);
    let r = w
        .post(
            &format!("{base}/budgets"),
            &insurer,
            None,
            &json!({"year": 2025, "fund": "resident", "amount": 1_200_000_000i64, "case_payment": rule}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    // Only the bureau's officer runs; bad periods are named.
    let march = json!({"year": 2025, "fund": "resident", "month": 3});
    for token in [&w.group_manager, &w.doctor] {
        let r = w
            .post(&format!("{base}/case-payments"), token, None, &march)
            .await;
        assert_eq!(r.status, 403, "{}", r.text);
    }
    for (body, field) in [
        (
            json!({"year": 2025, "fund": "resident", "month": 13}),
            "month",
        ),
        (
            json!({"year": 2099, "fund": "resident", "month": 1}),
            "month",
        ),
        (json!({"year": 2025, "fund": "gold", "month": 1}), "fund"),
        (
            json!({"year": 2024, "fund": "resident", "month": 1}),
            "year",
        ),
    ] {
        let r = w
            .post(&format!("{base}/case-payments"), &insurer, None, &body)
            .await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.fields(), [field], "{body}");
    }
    assert_eq!(
        scalar(db, "SELECT COUNT(*) FROM case_payment_run"),
        0,
        "a refused run writes nothing"
    );

    // March: every inpatient case at the group's units settled in March, and no other.
    let r = w
        .post(&format!("{base}/case-payments"), &insurer, None, &march)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let run = r.json();
    let id = n(&run["id"]);
    let claims = scalar(
        db,
        &format!(
            "SELECT COUNT(*) FROM claim WHERE group_id = {group} AND fund = 'resident' \
             AND kind = 'inpatient' AND in_group AND dip_group IS NOT NULL \
             AND settled_on >= '2025-03-01' AND settled_on < '2025-04-01'"
        ),
    );
    assert!(
        claims > 10,
        "the city has inpatient cases in March: {claims}"
    );
    assert_eq!(n(&run["cases"]), claims);
    // 1,200,000,000 fen ÷ 12 = 100,000,000 for March; half pays cases; 10% held back.
    assert_eq!(n(&run["budget"]), 100_000_000);
    assert_eq!(n(&run["pool"]), 50_000_000);
    assert_eq!(n(&run["reserve"]), 5_000_000);

    let cases = all_cases(&w, &insurer, id).await;
    assert_eq!(cases.len() as i64, claims);
    let branches = verify(&run, &cases);
    let paid = n(&run["paid"]);

    // The members' statements add up to the run.
    let r = w
        .get(
            &format!("/api/v1/insurance/case-payments/{id}"),
            &w.group_manager,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let view = r.json();
    let units = view["units"].as_array().unwrap();
    assert!(!units.is_empty());
    assert_eq!(units.iter().map(|u| n(&u["paid"])).sum::<i64>(), paid);
    assert_eq!(units.iter().map(|u| n(&u["cases"])).sum::<i64>(), claims);
    let r = w
        .get(
            &format!("/api/v1/insurance/case-payments/{id}"),
            &w.stranger,
        )
        .await;
    assert_eq!(r.status, 403, "another group's doctor: {}", r.text);

    // One case traced: the steps end in what the fund paid, and the read is audited.
    let case = cases
        .iter()
        .find(|c| c["result"]["case"]["branch"] != "normal")
        .unwrap_or(&cases[0]);
    let claim = n(&case["claim_id"]);
    let reads_before = scalar(
        db,
        "SELECT COUNT(*) FROM audit_event WHERE action = 'insurance.case_payment.case.read'",
    );
    let r = w
        .get(
            &format!("/api/v1/insurance/case-payments/{id}/cases/{claim}"),
            &insurer,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let traced = r.json();
    let steps = traced["steps"].as_array().unwrap();
    assert_eq!(steps.last().unwrap()["amount"], case["result"]["paid"]);
    let gross_step = steps.iter().find(|s| s["key"] == "gross").unwrap();
    assert_eq!(gross_step["amount"], case["result"]["gross"]);
    assert!(steps[0]["label_zh"]
        .as_str()
        .unwrap()
        .contains(case["dip_group"].as_str().unwrap()));
    assert_eq!(
        scalar(
            db,
            "SELECT COUNT(*) FROM audit_event WHERE action = 'insurance.case_payment.case.read'"
        ),
        reads_before + 1
    );
    let r = w
        .get(
            &format!("/api/v1/insurance/case-payments/{id}/cases?branch=odd"),
            &insurer,
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.fields(), ["branch"]);
    let r = w
        .get(
            &format!("/api/v1/insurance/case-payments/{id}/cases?branch=normal&limit=500"),
            &insurer,
        )
        .await;
    assert_eq!(
        n(&r.json()["total"]) as usize,
        branches.get("normal").copied().unwrap_or(0)
    );

    // The run as a workbook for the members' finance offices; the cases in it are a read.
    let r = w
        .get(
            &format!("/api/v1/insurance/case-payments/{id}/statement.xlsx"),
            &w.group_manager,
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.content_type.contains("spreadsheetml"),
        "{}",
        r.content_type
    );
    assert!(r.text.starts_with("PK"), "a zip container");
    assert_eq!(
        scalar(
            db,
            "SELECT COUNT(*) FROM audit_event WHERE action = 'insurance.case_payment.cases.read' \
             AND actor_username = 'gm'"
        ),
        1
    );

    // March again: refused without a reason; with one, a second run paying the same.
    let r = w
        .post(&format!("{base}/case-payments"), &insurer, None, &march)
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    let mut again = march.clone();
    again["reason"] = json!("医保数据补传后重算");
    let r = w
        .post(&format!("{base}/case-payments"), &insurer, None, &again)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let second = r.json();
    assert_eq!(second["seq"], 2);
    for key in [
        "cases",
        "total_points",
        "gross",
        "paid",
        "all_mean",
        "dip_groups",
    ] {
        assert_eq!(second[key], run[key], "same inputs, same {key}");
    }

    // New parameters change later runs, never a kept one.
    let mut cheaper = rule.clone();
    cheaper["reserve"] = json!(300_000);
    let r = w
        .post(
            &format!("{base}/budgets"),
            &insurer,
            None,
            &json!({"year": 2025, "fund": "resident", "amount": 1_200_000_000i64, "case_payment": cheaper}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    again["reason"] = json!("调节金比例调整");
    let r = w
        .post(&format!("{base}/case-payments"), &insurer, None, &again)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let third = r.json();
    assert_eq!(n(&third["reserve"]), 15_000_000);
    assert!(n(&third["gross"]) < n(&run["gross"]));
    let r = w
        .get(&format!("/api/v1/insurance/case-payments/{id}"), &insurer)
        .await;
    assert_eq!(r.json()["run"], run, "the first run reads as it was made");
    for statement in [
        "UPDATE case_payment SET paid = 0",
        "DELETE FROM case_payment_run",
    ] {
        assert!(
            !support::sql(db, statement).status.success(),
            "the database refuses: {statement}"
        );
    }

    // The year's final run takes every month's cases; the year view lists the runs.
    let r = w
        .post(
            &format!("{base}/case-payments"),
            &insurer,
            None,
            &json!({"year": 2025, "fund": "resident", "month": 0}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let year = r.json();
    assert_eq!(
        n(&year["cases"]),
        scalar(
            db,
            &format!(
                "SELECT COUNT(*) FROM claim WHERE group_id = {group} AND fund = 'resident' \
                 AND kind = 'inpatient' AND in_group AND dip_group IS NOT NULL \
                 AND settled_on >= '2025-01-01' AND settled_on < '2026-01-01'"
            )
        )
    );
    assert_eq!(n(&year["pool"]), 600_000_000);
    let year_cases = all_cases(&w, &insurer, n(&year["id"])).await;
    let branches = verify(&year, &year_cases);
    assert!(
        branches.len() >= 2,
        "outliers among the year's cases: {branches:?}"
    );
    let r = w
        .get(
            &format!("{base}/case-payments?year=2025&fund=resident"),
            &w.group_manager,
        )
        .await;
    let listed: Vec<(i64, i64)> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (n(&x["month"]), n(&x["seq"])))
        .collect();
    assert_eq!(listed, [(3, 1), (3, 2), (3, 3), (0, 1)]);
}

on_both!(dip_runs_by_month_and_year);
