//! Year-end settlement of a group with millions of claims.
//!
//! ```text
//! cargo bench -p medgrid --bench settlement -- [--claims 5000000] [--db sqlite|postgres]
//! ```
//!
//! For each database: the Jinhua layout with a synthetic city's year of care (2025), whose
//! first group's claims are then copied (same encounters, residents, amounts and days, new
//! ids) until the group holds `--claims` claims. The group's budgets are set and all twelve
//! months prepaid for both funds; then timed: the year-end settlement of both funds
//! (`Store::settle_year`: the budget, the runs in force, the year's claims by day and place,
//! the statement, kept). Baseline, in the same run: one `SUM` of the same claims' amounts per
//! fund, the least any settlement must read. Printed: both times, their ratio (target ≤ 3) and
//! the resident memory before and after.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure should stop it loudly

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use chrono::NaiveDate;

use medgrid_domain::access::OrgPath;
use medgrid_domain::insurance::budget::Fund;
use medgrid_domain::org::layout::parse_layout;
use medgrid_sim::Params;
use medgrid_store::insurance::BudgetDraft;
use medgrid_store::{Actor, DbKind};

fn main() {
    let claims: i64 = common::flag("--claims").unwrap_or(5_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for kind in common::kinds() {
        runtime.block_on(bench(kind, claims));
    }
}

/// Resident memory of this process in MiB (Linux).
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn psql_or_sqlite(db: &medgrid_testkit::TestDb, sql: &str) {
    let out = match db.store.kind() {
        DbKind::Sqlite => std::process::Command::new("sqlite3")
            .args([db.url.strip_prefix("sqlite://").unwrap(), sql])
            .output()
            .unwrap(),
        DbKind::Postgres => std::process::Command::new("psql")
            .args([db.url.as_str(), "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
            .output()
            .unwrap(),
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn scalar(db: &medgrid_testkit::TestDb, sql: &str) -> i64 {
    let out = match db.store.kind() {
        DbKind::Sqlite => std::process::Command::new("sqlite3")
            .args([db.url.strip_prefix("sqlite://").unwrap(), sql])
            .output()
            .unwrap(),
        DbKind::Postgres => std::process::Command::new("psql")
            .args([db.url.as_str(), "-tA", "-c", sql])
            .output()
            .unwrap(),
    };
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

async fn bench(kind: DbKind, target: i64) {
    let name = match kind {
        DbKind::Sqlite => "SQLite",
        DbKind::Postgres => "PostgreSQL",
    };
    let actor = Actor::system("bench");
    let layout = parse_layout(common::JINHUA).unwrap();
    let db = common::registered(kind, &layout, 1).await;
    let params = Params::new(1, 20_000, NaiveDate::from_ymd_opt(2025, 1, 1).unwrap());
    db.store
        .load_population(&actor, 1, &layout, &params, |_| {})
        .await
        .unwrap();
    let tree = db.store.city_tree(1).await.unwrap();
    let group = tree.groups.first().unwrap().clone();
    let g = group.id;
    // Copies of the group's claims, each round doubling them, until there are enough.
    loop {
        let n = scalar(
            &db,
            &format!("SELECT COUNT(*) FROM claim WHERE group_id = {g}"),
        );
        if n >= target {
            println!("\n{name}: {n} claims in {}", group.name);
            break;
        }
        let offset = scalar(&db, "SELECT MAX(id) FROM claim");
        let limit = target - n;
        psql_or_sqlite(
            &db,
            &format!(
                "INSERT INTO claim (id, encounter_id, resident_id, group_id, unit_id, fund, kind, level, \
                 in_group, dip_group, los_days, total_fen, eligible_fen, deductible_fen, \
                 insurance_paid_fen, self_paid_fen, settled_on) \
                 SELECT id + {offset}, encounter_id, resident_id, group_id, unit_id, fund, kind, level, \
                 in_group, dip_group, los_days, total_fen, eligible_fen, deductible_fen, \
                 insurance_paid_fen, self_paid_fen, settled_on FROM claim WHERE group_id = {g} \
                 ORDER BY id LIMIT {limit}"
            ),
        );
    }
    let path = OrgPath {
        unit: None,
        ..tree
            .units
            .iter()
            .find(|u| u.group_id == Some(g))
            .unwrap()
            .path()
    };
    let today = NaiveDate::from_ymd_opt(2026, 1, 15).unwrap();
    for fund in Fund::ALL {
        db.store
            .set_budget(
                &actor,
                path,
                &BudgetDraft {
                    year: 2025,
                    fund: fund.as_str().into(),
                    amount: 10_000_000_000,
                    charge_outflow: true,
                    prepayment: None,
                    settlement: None,
                    case_payment: None,
                },
            )
            .await
            .unwrap();
        for month in 1..=12 {
            db.store
                .run_prepayment(&actor, path, 2025, fund.as_str(), month, None, today)
                .await
                .unwrap();
        }
    }

    let rss_before = rss_mib();
    let started = Instant::now();
    let mut due = 0;
    for fund in Fund::ALL {
        due += db
            .store
            .settle_year(&actor, path, 2025, fund.as_str(), 9_000)
            .await
            .unwrap()
            .due;
    }
    let settle = started.elapsed().as_secs_f64();
    let rss_after = rss_mib();

    // The baseline reads through its own connection, as the store does, so that both pay
    // the same round trips.
    let sql = "SELECT CAST(SUM(insurance_paid_fen) AS BIGINT) FROM claim WHERE group_id = $1 \
               AND fund = $2 AND settled_on >= $3 AND settled_on < $4";
    let (first, end) = (
        NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
    );
    let mut summed = 0;
    let started;
    match kind {
        DbKind::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            started = Instant::now();
            for fund in Fund::ALL {
                let v: Option<i64> = sqlx::query_scalar(sql)
                    .bind(g)
                    .bind(fund.as_str())
                    .bind(first)
                    .bind(end)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                summed += v.unwrap_or(0);
            }
        }
        DbKind::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            started = Instant::now();
            for fund in Fund::ALL {
                let v: Option<i64> = sqlx::query_scalar(sql)
                    .bind(g)
                    .bind(fund.as_str())
                    .bind(first)
                    .bind(end)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                summed += v.unwrap_or(0);
            }
        }
    }
    let baseline = started.elapsed().as_secs_f64();
    println!("  settlement of both funds   {settle:>8.3} s  (due {due} fen)");
    println!("  baseline: SUM per fund     {baseline:>8.3} s  (spent {summed} fen)");
    println!(
        "  ratio {:.2}× the baseline (target ≤ 3); resident memory {rss_before:.0} → {rss_after:.0} MiB",
        settle / baseline.max(1e-9)
    );
    db.finish().await;
}
