//! Crash safety of referrals: the real server is killed with SIGKILL while several clients are
//! writing referrals, then restarted on the same database. Every referral the server confirmed
//! (201) must still be there, sent, with its event; nothing may be half-written (a referral
//! without its event, notifications or audit entry, or any of those without their referral);
//! and the only referrals nobody saw confirmed are ones whose request was cut off by the kill.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should stop the test

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{binary, drop_pg, pg_database, sqlite_url, wait_for, Server};

/// Client threads writing referrals at the same time.
const WRITERS: usize = 8;
/// Confirmed referrals to wait for before the kill.
const CONFIRMED_BEFORE_KILL: usize = 40;
/// Every reason written by this test starts with this, so rows map back to attempts.
const TAG: &str = "crash-test";

/// The database under test, read directly with its command-line client.
enum Db {
    Sqlite { url: String, path: String },
    Postgres { url: String },
}

impl Db {
    fn url(&self) -> &str {
        match self {
            Db::Sqlite { url, .. } | Db::Postgres { url } => url,
        }
    }

    /// Runs one query and returns its rows, columns split on `|`.
    fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let out = match self {
            Db::Sqlite { path, .. } => Command::new("sqlite3")
                .args(["-cmd", ".timeout 10000", "-separator", "|", path, sql])
                .output()
                .expect("sqlite3 on PATH"),
            Db::Postgres { url } => Command::new("psql")
                .args([
                    url.as_str(),
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-qAt",
                    "-F",
                    "|",
                    "-c",
                    sql,
                ])
                .output()
                .expect("psql on PATH"),
        };
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("UTF-8 from the database client")
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split('|').map(str::to_owned).collect())
            .collect()
    }

    fn count(&self, sql: &str) -> i64 {
        let rows = self.rows(sql);
        assert_eq!(rows.len(), 1, "{sql} gives one row: {rows:?}");
        rows[0][0].parse().expect("a count")
    }
}

/// Drops the PostgreSQL database even when the test fails.
struct PgGuard(String);

impl Drop for PgGuard {
    fn drop(&mut self) {
        drop_pg(&self.0);
    }
}

/// What became of one POST.
#[derive(Debug, Clone)]
enum Answer {
    /// 201 with the new referral's id.
    Created(i64),
    /// No complete answer: the connection failed or the body was cut off. The referral may or
    /// may not have been committed.
    InDoubt { error: String, after_kill: bool },
    /// Any other HTTP answer: never expected here.
    Refused { status: u16, body: String },
}

#[derive(Debug, Clone)]
struct Attempt {
    reason: String,
    answer: Answer,
}

fn token(url: &str) -> String {
    let out = binary()
        .args([
            "admin",
            "create-token",
            "--username",
            "doctor",
            "--database-url",
            url,
        ])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run medgrid admin create-token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(token.starts_with("mgt_"), "a bearer token: {token}");
    token
}

fn get_json(server: &Server, path: &str, token: &str) -> Value {
    let url = server.url(path);
    ureq::get(&url)
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .into_json()
        .unwrap()
}

fn referral_body(resident_id: i64, lead_id: i64, reason: &str) -> Value {
    json!({
        "resident_id": resident_id,
        "direction": "up",
        "priority": "routine",
        "to_unit_id": lead_id,
        "to_department_code": "XXG",
        // In the demo group's up-referral catalogue (I10 is not, and would need a reason).
        "diagnosis": "I21.0",
        "reason": reason,
    })
}

/// One writer: POSTs referrals until the first answer that is not a 201 (after the kill, the
/// connection fails), or until `give_up`.
#[allow(clippy::too_many_arguments)]
fn writer(
    n: usize,
    url: String,
    token: String,
    residents: Arc<Vec<i64>>,
    lead_id: i64,
    created: Arc<AtomicUsize>,
    started: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
    killed: Arc<AtomicBool>,
    give_up: Instant,
) -> Vec<Attempt> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build();
    let mut attempts = Vec::new();
    for seq in 0.. {
        if Instant::now() > give_up {
            break;
        }
        let reason = format!("{TAG} w{n} #{seq} 胸痛待查");
        let resident = residents[(n * 7 + seq) % residents.len()];
        started.fetch_add(1, Ordering::SeqCst);
        let sent = agent
            .post(&url)
            .set("Authorization", &format!("Bearer {token}"))
            .send_json(referral_body(resident, lead_id, &reason));
        let answer = match sent {
            Ok(resp) if resp.status() == 201 => match resp.into_json::<Value>() {
                Ok(v) => match v["id"].as_i64() {
                    Some(id) => Answer::Created(id),
                    None => Answer::Refused {
                        status: 201,
                        body: v.to_string(),
                    },
                },
                Err(e) => Answer::InDoubt {
                    error: format!("201 with a cut-off body: {e}"),
                    after_kill: killed.load(Ordering::SeqCst),
                },
            },
            Ok(resp) => Answer::Refused {
                status: resp.status(),
                body: resp.into_string().unwrap_or_default(),
            },
            Err(ureq::Error::Status(status, resp)) => Answer::Refused {
                status,
                body: resp.into_string().unwrap_or_default(),
            },
            Err(e @ ureq::Error::Transport(_)) => Answer::InDoubt {
                error: e.to_string(),
                after_kill: killed.load(Ordering::SeqCst),
            },
        };
        finished.fetch_add(1, Ordering::SeqCst);
        let go_on = matches!(answer, Answer::Created(_));
        if go_on {
            created.fetch_add(1, Ordering::SeqCst);
        }
        attempts.push(Attempt { reason, answer });
        if !go_on {
            break;
        }
    }
    attempts
}

/// One live referral as stored, with what must have been written with it.
#[derive(Debug)]
struct Stored {
    status: String,
    reason: String,
    events: i64,
    send_events: i64,
    notifications: i64,
    audits: i64,
}

/// Every live referral (written through the application rather than generated), by id.
fn live_referrals(db: &Db) -> BTreeMap<i64, Stored> {
    db.rows(
        "SELECT r.id, r.status, COALESCE(r.reason, ''), \
         (SELECT COUNT(*) FROM referral_event e WHERE e.referral_id = r.id), \
         (SELECT COUNT(*) FROM referral_event e WHERE e.referral_id = r.id \
            AND e.transition = 'send' AND e.to_status = 'sent'), \
         (SELECT COUNT(*) FROM notification n WHERE n.referral_id = r.id), \
         (SELECT COUNT(*) FROM audit_event a WHERE a.action = 'referral.create' \
            AND a.resource_id = 'referral-' || r.id) \
         FROM referral r WHERE r.created_by IS NOT NULL OR r.source_encounter_id IS NULL \
         ORDER BY r.id",
    )
    .into_iter()
    .map(|row| {
        assert_eq!(row.len(), 7, "{row:?}");
        let n = |i: usize| row[i].parse::<i64>().expect("a number");
        (
            n(0),
            Stored {
                status: row[1].clone(),
                reason: row[2].clone(),
                events: n(3),
                send_events: n(4),
                notifications: n(5),
                audits: n(6),
            },
        )
    })
    .collect()
}

/// Checks that nothing of a referral's write exists without the rest.
fn assert_nothing_half_written(db: &Db, live: &BTreeMap<i64, Stored>) {
    for (id, r) in live {
        assert!(
            r.events >= 1 && r.send_events >= 1,
            "referral {id} was stored without its send event: {r:?}"
        );
        assert!(
            r.notifications >= 1,
            "referral {id} was stored without its notifications: {r:?}"
        );
        assert_eq!(
            r.audits, 1,
            "referral {id} has {} referral.create audit entries: {r:?}",
            r.audits
        );
    }
    let orphans = [
        (
            "referral_event",
            "SELECT COUNT(*) FROM referral_event e \
             WHERE NOT EXISTS (SELECT 1 FROM referral r WHERE r.id = e.referral_id)",
        ),
        (
            "notification",
            "SELECT COUNT(*) FROM notification n WHERE n.referral_id IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM referral r WHERE r.id = n.referral_id)",
        ),
        (
            "audit_event",
            "SELECT COUNT(*) FROM audit_event a WHERE a.action = 'referral.create' \
             AND NOT EXISTS (SELECT 1 FROM referral r WHERE 'referral-' || r.id = a.resource_id)",
        ),
    ];
    for (table, sql) in orphans {
        assert_eq!(db.count(sql), 0, "{table} rows without their referral");
    }
    if let Db::Sqlite { .. } = db {
        let check = db.rows("PRAGMA integrity_check");
        assert_eq!(check, vec![vec!["ok".to_owned()]], "SQLite integrity check");
        let fk = db.rows("PRAGMA foreign_key_check");
        assert!(fk.is_empty(), "foreign keys broken after the crash: {fk:?}");
    }
}

fn crash_and_recover(db: &Db) {
    let began = Instant::now();
    let url = db.url().to_owned();
    let server = Server::demo(&url);
    let token = token(&url);

    // The receiving end: the first group's lead hospital.
    let units = ureq::get(&server.url("/api/v1/units"))
        .query("role", "lead")
        .query("name", "金华市人民医院")
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap()
        .into_json::<Value>()
        .unwrap();
    let leads: Vec<i64> = units
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["legal_name"] == "金华市人民医院")
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    assert_eq!(leads.len(), 1, "one lead hospital 金华市人民医院: {units}");
    let lead_id = leads[0];

    // Residents of the doctor's own group.
    let residents: Vec<i64> = db
        .rows(
            "SELECT r.id FROM resident r JOIN app_user a ON a.username = 'doctor' \
             JOIN unit u ON u.id = a.unit_id WHERE r.group_id = u.group_id ORDER BY r.id LIMIT 50",
        )
        .into_iter()
        .map(|r| r[0].parse().unwrap())
        .collect();
    assert!(
        residents.len() >= 10,
        "residents to refer in the doctor's group: {residents:?}"
    );
    let residents = Arc::new(residents);

    let before = live_referrals(db);
    assert!(
        before.values().all(|r| !r.reason.starts_with(TAG)),
        "a fresh database"
    );

    // The storm, then the kill in the middle of it.
    let created = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let give_up = Instant::now() + Duration::from_secs(180);
    let post_url = server.url("/api/v1/referrals");
    let writers: Vec<_> = (0..WRITERS)
        .map(|n| {
            let (url, token, residents) = (post_url.clone(), token.clone(), residents.clone());
            let (created, started, finished, killed) = (
                created.clone(),
                started.clone(),
                finished.clone(),
                killed.clone(),
            );
            std::thread::spawn(move || {
                writer(
                    n, url, token, residents, lead_id, created, started, finished, killed, give_up,
                )
            })
        })
        .collect();
    wait_for(
        &format!("{CONFIRMED_BEFORE_KILL} confirmed referrals"),
        Duration::from_secs(120),
        || (created.load(Ordering::SeqCst) >= CONFIRMED_BEFORE_KILL).then_some(()),
    );
    killed.store(true, Ordering::SeqCst);
    let in_flight = started.load(Ordering::SeqCst) - finished.load(Ordering::SeqCst);
    let confirmed_at_kill = created.load(Ordering::SeqCst);
    let status = server.kill();
    assert_eq!(
        status.signal(),
        Some(9),
        "the server died of SIGKILL, not otherwise: {status}"
    );
    let attempts: Vec<Attempt> = writers
        .into_iter()
        .flat_map(|w| w.join().expect("a writer thread"))
        .collect();

    let mut confirmed: BTreeMap<String, i64> = BTreeMap::new();
    let mut in_doubt: BTreeSet<String> = BTreeSet::new();
    for a in &attempts {
        match &a.answer {
            Answer::Created(id) => {
                assert!(
                    confirmed.values().all(|other| other != id),
                    "id {id} answered twice"
                );
                confirmed.insert(a.reason.clone(), *id);
            }
            Answer::InDoubt { error, after_kill } => {
                assert!(
                    after_kill,
                    "a request failed before the kill ({}): {error}",
                    a.reason
                );
                in_doubt.insert(a.reason.clone());
            }
            Answer::Refused { status, body } => {
                panic!("{} was answered {status}: {body}", a.reason)
            }
        }
    }
    assert_eq!(
        in_doubt.len(),
        WRITERS,
        "every writer ran until the kill cut its connection: {attempts:?}"
    );
    assert_eq!(confirmed.len() + in_doubt.len(), attempts.len());
    println!(
        "{}: {} attempts, {} confirmed ({confirmed_at_kill} when the kill was sent), \
         {in_flight} in flight at the kill, {} in doubt",
        if matches!(db, Db::Sqlite { .. }) {
            "SQLite"
        } else {
            "PostgreSQL"
        },
        attempts.len(),
        confirmed.len(),
        in_doubt.len()
    );

    // PostgreSQL ends the dead server's sessions on its own (rolling back what was not
    // committed); wait for that, so that nothing can still commit behind the checks below.
    if let Db::Postgres { .. } = db {
        wait_for(
            "the killed server's PostgreSQL sessions to end",
            Duration::from_secs(30),
            || {
                (db.count(
                    "SELECT COUNT(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND pid <> pg_backend_pid()",
                ) == 0)
                    .then_some(())
            },
        );
    }

    // Restart on the same database.
    let server = Server::demo(&url);
    assert!(
        server.stdout.join("\n").contains("already holds a city"),
        "restarted on the same data: {:?}",
        server.stdout
    );
    wait_for("/readyz after the restart", Duration::from_secs(30), || {
        ureq::get(&server.url("/readyz"))
            .call()
            .ok()
            .filter(|r| r.status() == 200)
            .map(|_| ())
    });

    // What the database holds.
    let after = live_referrals(db);
    assert_nothing_half_written(db, &after);
    let ours: BTreeMap<&str, i64> = after
        .iter()
        .filter(|(id, _)| !before.contains_key(id))
        .map(|(id, r)| (r.reason.as_str(), *id))
        .collect();
    let new_rows = after.len() - before.len();
    assert_eq!(ours.len(), new_rows, "one row per reason, no duplicates");
    for (id, r) in after.iter().filter(|(id, _)| !before.contains_key(id)) {
        assert!(
            confirmed.contains_key(&r.reason) || in_doubt.contains(&r.reason),
            "referral {id} matches no attempt: {r:?}"
        );
        assert_eq!(r.status, "sent", "referral {id}: {r:?}");
    }
    for (reason, id) in &confirmed {
        assert_eq!(
            ours.get(reason.as_str()),
            Some(id),
            "confirmed referral {id} ({reason}) is stored under its id"
        );
    }
    assert!(
        new_rows >= confirmed.len() && new_rows <= attempts.len(),
        "{new_rows} stored for {} confirmed of {} attempts",
        confirmed.len(),
        attempts.len()
    );
    let committed_in_doubt = new_rows - confirmed.len();
    println!(
        "after the restart: {new_rows} referrals stored, {committed_in_doubt} of the {} in doubt \
         committed without their answer",
        in_doubt.len()
    );

    // What the API serves.
    for id in confirmed.values() {
        let r = get_json(&server, &format!("/api/v1/referrals/{id}"), &token);
        assert_eq!(r["id"], *id);
        assert_eq!(r["status"], "sent", "referral {id}: {r}");
        let events = get_json(&server, &format!("/api/v1/referrals/{id}/events"), &token);
        let sent = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["transition"] == "send" && e["to_status"] == "sent")
            .count();
        assert!(sent >= 1, "referral {id} has its send event: {events}");
    }
    let outgoing = get_json(&server, "/api/v1/referrals?view=outgoing&all=true", &token);
    let listed: BTreeSet<i64> = outgoing
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    for id in confirmed.values() {
        assert!(
            listed.contains(id),
            "confirmed referral {id} on the outgoing list"
        );
    }

    // And it takes new work.
    let reason = format!("{TAG} after the restart");
    let resp = ureq::post(&server.url("/api/v1/referrals"))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(referral_body(residents[0], lead_id, &reason))
        .unwrap_or_else(|e| panic!("a referral after the restart: {e}"));
    assert_eq!(resp.status(), 201);
    let fresh: Value = resp.into_json().unwrap();
    let fresh_id = fresh["id"].as_i64().unwrap();
    assert_eq!(fresh["status"], "sent");
    assert!(
        !after.contains_key(&fresh_id),
        "the new referral {fresh_id} reuses the id of a stored one"
    );
    let events = get_json(
        &server,
        &format!("/api/v1/referrals/{fresh_id}/events"),
        &token,
    );
    assert_eq!(events[0]["transition"], "send", "{events}");
    let last = live_referrals(db);
    assert_eq!(last.len(), after.len() + 1);
    assert_eq!(last[&fresh_id].reason, reason);
    assert_nothing_half_written(db, &last);

    let status = server.stop();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    println!("crash test took {:.1} s", began.elapsed().as_secs_f64());
}

#[test]
fn crash_on_sqlite() {
    let url = sqlite_url("crash");
    let path = url.strip_prefix("sqlite://").unwrap().to_owned();
    crash_and_recover(&Db::Sqlite {
        url,
        path: path.clone(),
    });
    if let Some(dir) = std::path::Path::new(&path).parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn crash_on_postgres() {
    let (url, name) = pg_database("crash");
    let _guard = PgGuard(name);
    crash_and_recover(&Db::Postgres { url });
}
