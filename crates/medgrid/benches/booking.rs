//! Booking at the release moment: many simultaneous attempts at one popular session.
//!
//! ```text
//! cargo bench -p medgrid --bench booking -- [--attempts 4000] [--slots 200] [--db sqlite|postgres]
//! ```
//!
//! For each database, on a fresh database holding the Jinhua layout, its staff and 2,000
//! residents: a lead-hospital session of `--slots` slots, then `--attempts` referral bookings
//! fired at once (64 in flight), each at a slot drawn from the attempt's number. Printed:
//! attempts per second, slots booked, double bookings (slots holding more than one live
//! booking: must be 0), and p50/p99 latency. Baseline, in the same run on a second session of
//! the same size: the same attempts as a plain transaction per request that locks the slot
//! (`SELECT … FOR UPDATE` on PostgreSQL, `BEGIN IMMEDIATE` on SQLite, which has no row locks),
//! updates it when free and inserts the booking — without medgrid's policy check, idempotency
//! lookup or audit entry. Before each phase the database is checkpointed and analysed, so
//! that neither pays for what was written before it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure should stop it loudly

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use medgrid_domain::capacity::Policy;
use medgrid_domain::org::layout::parse_layout;
use medgrid_domain::org::MemberRole;
use medgrid_sim::Params;
use medgrid_store::booking::{BookingRequest, SessionDraft};
use medgrid_store::{Actor, DbKind, StoreError};

const IN_FLIGHT: usize = 64;

struct Args {
    attempts: usize,
    slots: u32,
    kinds: Vec<DbKind>,
}

fn args() -> Args {
    Args {
        attempts: common::flag("--attempts").unwrap_or(4_000),
        slots: common::flag("--slots").unwrap_or(200),
        kinds: common::kinds(),
    }
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for kind in &args.kinds {
        runtime.block_on(bench(*kind, &args));
    }
}

fn at(d: u32, h: u32) -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2025, 6, d)
        .unwrap()
        .and_hms_opt(h, 0, 0)
        .unwrap()
}

struct Outcome {
    seconds: f64,
    booked: usize,
    latencies: Vec<Duration>,
}

impl Outcome {
    fn print(&self, name: &str, attempts: usize) {
        let mut l = self.latencies.clone();
        l.sort_unstable();
        let q = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)].as_secs_f64() * 1000.0;
        println!(
            "  {name:<28} {:>8.0} attempts/s  {:>4} booked  p50 {:>6.2} ms  p99 {:>7.2} ms",
            attempts as f64 / self.seconds,
            self.booked,
            q(0.5),
            q(0.99)
        );
    }
}

async fn bench(kind: DbKind, args: &Args) {
    let name = match kind {
        DbKind::Sqlite => "SQLite",
        DbKind::Postgres => "PostgreSQL",
    };
    let actor = Actor::system("bench");
    let layout = parse_layout(common::JINHUA).unwrap();
    let db = common::registered(kind, &layout, 1).await;
    let city = 1;
    let params = Params::new(
        1,
        2_000,
        chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
    );
    db.store
        .load_population(&actor, city, &layout, &params, |_| {})
        .await
        .unwrap();
    let tree = db.store.city_tree(city).await.unwrap();
    let lead = tree
        .units
        .iter()
        .find(|u| u.role == MemberRole::Lead)
        .unwrap()
        .clone();
    let policy = Policy::default();
    let draft = SessionDraft {
        department_code: "XXG".into(),
        practitioner_id: None,
        starts_at: at(20, 8),
        slot_minutes: 5,
        capacity: args.slots,
        reserved: policy.reserved_needed(args.slots),
    };
    let (_, medgrid_slots) = db
        .store
        .open_care_session(&actor, &lead, &draft, &policy)
        .await
        .unwrap();
    let (_, baseline_slots) = db
        .store
        .open_care_session(&actor, &lead, &draft, &policy)
        .await
        .unwrap();
    println!(
        "\n{name}: {} attempts at {} slots, {IN_FLIGHT} in flight",
        args.attempts, args.slots
    );

    // Live referrals to the lead hospital, accepted and waiting for a slot (the generated
    // history cannot book): one per generated referral, each quoted with its own resident.
    // Routine, so that every one may take any slot of the session ten days out (urgent and
    // green-channel referrals are booked within their nearer windows).
    // Fifty live referrals per generated one, so that nearly every attempt quotes its own
    // referral (each referral holds one booking at most).
    let copy = "WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 50) \
        INSERT INTO referral (resident_id, group_id, direction, priority, from_unit_id, \
        to_unit_id, diagnosis, requested_at, status, kind) SELECT resident_id, group_id, direction, \
        'routine', from_unit_id, to_unit_id, diagnosis, requested_at, 'accepted', 'referral' \
        FROM referral, n WHERE to_unit_id = $1 AND source_encounter_id IS NOT NULL";
    match kind {
        DbKind::Postgres => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .connect(&db.url)
                .await
                .unwrap();
            sqlx::query(copy)
                .bind(lead.id)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        DbKind::Sqlite => {
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .connect(&db.url)
                .await
                .unwrap();
            sqlx::query(copy)
                .bind(lead.id)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
    let referrals: Arc<Vec<(i64, i64)>> = Arc::new(
        db.store
            .referrals(&medgrid_store::referral::ReferralFilter {
                to_unit_id: Some(lead.id),
                status: Some(medgrid_domain::referral::Status::Accepted),
                live_only: true,
                limit: 10_000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|f| (f.id, f.resident_id))
            .collect(),
    );
    assert!(
        !referrals.is_empty(),
        "the city has referrals to its lead hospital"
    );

    // medgrid's booking path, measured after the bulk load has settled, as the baseline is.
    settle(kind, &db.url).await;
    let store = db.store.clone();
    let pairs = referrals.clone();
    let slots: Arc<Vec<i64>> = Arc::new(medgrid_slots.iter().map(|s| s.id).collect());
    let medgrid = fire(args.attempts, move |i| {
        let (store, slots, pairs) = (store.clone(), slots.clone(), pairs.clone());
        async move {
            let (referral, resident) = pairs[i % pairs.len()];
            let req = BookingRequest::new(
                slots[(i * 7_919) % slots.len()],
                resident,
                Some(referral),
                &format!("m{i}"),
                at(10, 12),
            );
            match store
                .book(&Actor::system("bench"), &Policy::default(), &req)
                .await
            {
                Ok(_) => true,
                Err(StoreError::Conflict(_)) => false,
                // The referral already holds its one booking (quoted again by a later
                // attempt): refused like a taken slot.
                Err(StoreError::Invalid(inv)) if inv.0.iter().all(|e| e.code == "not_accepted") => {
                    false
                }
                Err(e) => panic!("{e:?}"),
            }
        }
    })
    .await;

    // Baseline: a locking transaction per request, straight through the driver.
    let slots: Arc<Vec<i64>> = Arc::new(baseline_slots.iter().map(|s| s.id).collect());
    let group = lead.group_id.unwrap();
    settle(kind, &db.url).await;
    let baseline = match kind {
        DbKind::Postgres => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(10)
                .connect(&db.url)
                .await
                .unwrap();
            fire(args.attempts, move |i| {
                let (pool, slots) = (pool.clone(), slots.clone());
                async move {
                    let slot = slots[(i * 7_919) % slots.len()];
                    let mut tx = pool.begin().await.unwrap();
                    let status: String =
                        sqlx::query_scalar("SELECT status FROM slot WHERE id = $1 FOR UPDATE")
                            .bind(slot)
                            .fetch_one(&mut *tx)
                            .await
                            .unwrap();
                    if status != "free" {
                        tx.rollback().await.unwrap();
                        return false;
                    }
                    sqlx::query("UPDATE slot SET status = 'booked' WHERE id = $1")
                        .bind(slot)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    insert_booking_pg(&mut tx, group, slot, i).await;
                    tx.commit().await.unwrap();
                    true
                }
            })
            .await
        }
        DbKind::Sqlite => {
            db.store.close().await;
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect(&db.url)
                .await
                .unwrap();
            fire(args.attempts, move |i| {
                let (pool, slots) = (pool.clone(), slots.clone());
                async move {
                    let slot = slots[(i * 7_919) % slots.len()];
                    let mut conn = pool.acquire().await.unwrap();
                    let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await.unwrap();
                    let status: String = sqlx::query_scalar("SELECT status FROM slot WHERE id = $1")
                        .bind(slot)
                        .fetch_one(&mut *tx)
                        .await
                        .unwrap();
                    if status != "free" {
                        tx.rollback().await.unwrap();
                        return false;
                    }
                    sqlx::query("UPDATE slot SET status = 'booked' WHERE id = $1").bind(slot).execute(&mut *tx).await.unwrap();
                    sqlx::query(
                        "INSERT INTO booking (group_id, slot_id, resident_id, kind, reference, idempotency_key, status, created_at) \
                         VALUES ($1, $2, $3, 'referral', $4, $5, 'booked', $6)",
                    )
                    .bind(group)
                    .bind(slot)
                    .bind((i % 2_000) as i64 + 1)
                    .bind(format!("B{i}"))
                    .bind(format!("b{i}"))
                    .bind(chrono::Utc::now())
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                    tx.commit().await.unwrap();
                    true
                }
            })
            .await
        }
    };

    // Double bookings, counted by the database itself.
    let doubles = double_bookings(kind, &db.url).await;
    medgrid.print("medgrid (policy, audit)", args.attempts);
    baseline.print("baseline (locking tx)", args.attempts);
    println!(
        "  double bookings: {doubles}; throughput ratio medgrid / baseline: {:.2}",
        baseline.seconds / medgrid.seconds
    );
    assert_eq!(
        medgrid.booked, args.slots as usize,
        "every slot booked once"
    );
    assert_eq!(doubles, 0);
}

async fn insert_booking_pg(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    group: i64,
    slot: i64,
    i: usize,
) {
    sqlx::query(
        "INSERT INTO booking (group_id, slot_id, resident_id, kind, reference, idempotency_key, status, created_at) \
         VALUES ($1, $2, $3, 'referral', $4, $5, 'booked', $6)",
    )
    .bind(group)
    .bind(slot)
    .bind((i % 2_000) as i64 + 1)
    .bind(format!("B{i}"))
    .bind(format!("b{i}"))
    .bind(chrono::Utc::now())
    .execute(&mut **tx)
    .await
    .unwrap();
}

async fn double_bookings(kind: DbKind, url: &str) -> i64 {
    let sql = "SELECT COUNT(*) FROM (SELECT slot_id FROM booking WHERE status = 'booked' \
               GROUP BY slot_id HAVING COUNT(*) > 1) d";
    match kind {
        DbKind::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap()
        }
        DbKind::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap()
        }
    }
}

/// Runs `attempts` calls, `IN_FLIGHT` at a time, timing each.
/// Writes the pages the load and the phase before left dirty and refreshes the planner's
/// statistics, so that neither measured phase pays for the work done before it (the first
/// would otherwise take the bulk load's checkpoint and run on plans made for empty tables).
async fn settle(kind: DbKind, url: &str) {
    match kind {
        DbKind::Postgres => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await
                .unwrap();
            for statement in ["CHECKPOINT", "ANALYZE"] {
                sqlx::query(statement).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
        DbKind::Sqlite => {
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await
                .unwrap();
            for statement in ["PRAGMA wal_checkpoint(TRUNCATE)", "ANALYZE"] {
                sqlx::query(statement).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
    }
}

async fn fire<F, Fut>(attempts: usize, call: F) -> Outcome
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let call = Arc::new(call);
    let gate = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(attempts);
    for i in 0..attempts {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let ok = call(i).await;
            drop(permit);
            (ok, t.elapsed())
        }));
    }
    let mut booked = 0;
    let mut latencies = Vec::with_capacity(attempts);
    for t in tasks {
        let (ok, l) = t.await.unwrap();
        booked += usize::from(ok);
        latencies.push(l);
    }
    Outcome {
        seconds: started.elapsed().as_secs_f64(),
        booked,
        latencies,
    }
}
