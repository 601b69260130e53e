//! End to end: the real binary, its command line, both databases, and a browser.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should stop the test

mod support;

use serde_json::Value;
use std::process::Output;
use support::{binary, drop_pg, pg_database, sqlite_url, Browser, Server, PASSWORD};

fn run(args: &[&str]) -> Output {
    binary()
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run medgrid")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn get_json(url: &str, token: &str) -> Value {
    ureq::get(url)
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .into_json()
        .unwrap()
}

/// The demo comes up on the given database, serves the Jinhua groups to a token made by the
/// command line, stops on SIGTERM, and keeps its data on restart.
fn demo_round_trip(url: &str) {
    let server = Server::demo(url);
    let printed = server.stdout.join("\n");
    assert!(printed.contains("demo city loaded: 金华市"), "{printed}");
    assert!(
        printed.contains("synthetic city loaded: seed 1, 300 residents"),
        "{printed}"
    );
    assert!(
        printed
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["resident", "300", "rows"]),
        "{printed}"
    );
    for account in [
        "admin",
        "regulator",
        "group.manager",
        "member.manager",
        "doctor",
        "specialist",
        "auditor",
    ] {
        assert!(printed.contains(account), "demo account {account} printed");
    }
    assert_eq!(
        ureq::get(&server.url("/healthz")).call().unwrap().status(),
        200
    );
    assert_eq!(
        ureq::get(&server.url("/readyz")).call().unwrap().status(),
        200
    );

    let made = run(&[
        "admin",
        "create-token",
        "--username",
        "admin",
        "--database-url",
        url,
    ]);
    assert!(made.status.success(), "{}", stderr(&made));
    let token = stdout(&made).trim().to_owned();
    assert!(token.starts_with("mgt_"));
    let cities = get_json(&server.url("/api/v1/cities"), &token);
    assert_eq!(cities[0]["name"], "金华市");
    let groups = get_json(&server.url("/fhir/Organization?type=group"), &token);
    assert_eq!(groups["total"], 3);
    let names: Vec<&str> = groups["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["name"].as_str().unwrap())
        .collect();
    assert!(names.iter().any(|n| n.contains("婺城区")), "{names:?}");

    let status = server.stop();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");

    let again = Server::demo(url);
    assert!(again.stdout.join("\n").contains("already holds a city"));
    let cities = get_json(&again.url("/api/v1/cities"), &token);
    assert_eq!(
        cities.as_array().unwrap().len(),
        1,
        "no second copy of the city"
    );
    again.stop();
}

#[test]
fn demo_on_sqlite() {
    demo_round_trip(&sqlite_url("demo"));
}

#[test]
fn demo_on_postgres() {
    let (url, name) = pg_database("demo");
    demo_round_trip(&url);
    drop_pg(&name);
}

#[test]
fn command_line_accounts_imports_and_errors() {
    let url = sqlite_url("cli");
    let migrated = run(&["migrate", "--database-url", &url]);
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let versions: Vec<i64> = medgrid_store::MIGRATIONS
        .iter()
        .map(|m| m.version)
        .collect();
    assert!(
        stdout(&migrated).contains(&format!("{versions:?}")),
        "{}",
        stdout(&migrated)
    );
    let again = run(&["migrate", "--database-url", &url]);
    assert!(stdout(&again).contains("up to date"));

    let layout = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/layouts/jinhua.csv");
    let imported = run(&["import", "layout", layout, "--database-url", &url]);
    assert!(imported.status.success(), "{}", stderr(&imported));
    assert!(stdout(&imported).contains("3 groups"));
    let twice = run(&["import", "layout", layout, "--database-url", &url]);
    assert!(!twice.status.success());
    assert_eq!(
        stderr(&twice).lines().count(),
        1,
        "one line: {}",
        stderr(&twice)
    );

    let dir = std::env::temp_dir().join(format!("medgrid-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let gbk = dir.join("gbk.csv");
    std::fs::write(&gbk, [0xBD, 0xF0, 0xBB, 0xAA, b'\n']).unwrap();
    let bad = run(&[
        "import",
        "layout",
        gbk.to_str().unwrap(),
        "--database-url",
        &url,
    ]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("UTF-8"), "{}", stderr(&bad));

    // Claims: a file naming no known encounter is refused line by line, nothing written; an
    // unknown group is named.
    let claims = dir.join("claims.csv");
    std::fs::write(
        &claims,
        "claim_id,encounter_id,resident_id,group_code,unit_code,fund,kind,level,in_group,dip_group,los_days,total,eligible,deductible,insurance_paid,self_paid,settled_on\n\
         1,1,1,JH-G-WC,,resident,outpatient,primary,0,,,10.00,10.00,0.00,6.00,4.00,2025-01-01\n\
         2,2,1,JH-G-WC,,resident,outpatient,primary,0,,,10.00,10.00,0.00,6.00,5.00,2025-01-01\n",
    )
    .unwrap();
    let claims = claims.to_str().unwrap();
    let refused = run(&[
        "import",
        "claims",
        claims,
        "--group",
        "JH-G-WC",
        "--database-url",
        &url,
    ]);
    assert!(!refused.status.success());
    let report = stderr(&refused);
    assert!(report.contains("line 2: encounter_id"), "{report}");
    assert!(report.contains("line 3: self_paid"), "{report}");
    let nobody = run(&[
        "import",
        "claims",
        claims,
        "--group",
        "NO-SUCH",
        "--check",
        "--database-url",
        &url,
    ]);
    assert!(!nobody.status.success());
    assert!(stderr(&nobody).contains("NO-SUCH"), "{}", stderr(&nobody));

    let created = binary()
        .args([
            "admin",
            "create-user",
            "--username",
            "li.si",
            "--role",
            "city_regulator",
            "--org",
            "city-1",
            "--password-stdin",
            "--database-url",
            &url,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(b"a long enough password\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(created.status.success(), "{}", stderr(&created));
    let dup = run(&[
        "admin",
        "create-user",
        "--username",
        "li.si",
        "--role",
        "auditor",
        "--org",
        "city-1",
        "--database-url",
        &url,
    ]);
    assert!(!dup.status.success());
    assert!(stderr(&dup).contains("username"), "{}", stderr(&dup));
    let role = run(&[
        "admin",
        "create-user",
        "--username",
        "wang.wu",
        "--role",
        "emperor",
        "--org",
        "city-1",
        "--database-url",
        &url,
    ]);
    assert!(!role.status.success());
    assert!(
        stderr(&role).contains("role") && stderr(&role).lines().count() == 1,
        "{}",
        stderr(&role)
    );
    let org = run(&[
        "admin",
        "create-user",
        "--username",
        "wang.wu",
        "--role",
        "auditor",
        "--org",
        "unit-99999",
        "--database-url",
        &url,
    ]);
    assert!(!org.status.success());
    let nobody = run(&[
        "admin",
        "create-token",
        "--username",
        "nobody",
        "--database-url",
        &url,
    ]);
    assert!(!nobody.status.success());

    let defaults = run(&["config", "print-default"]);
    let text = stdout(&defaults);
    for key in [
        "database_url",
        "addr",
        "log_format",
        "[web]",
        "session_hours",
        "login_max_failures",
        "[demo]",
    ] {
        assert!(text.contains(key), "{key} in {text}");
    }
    let shown = binary()
        .args(["config", "show"])
        .env(
            "MEDGRID_DATABASE_URL",
            "postgres://medgrid:topsecret@db/medgrid",
        )
        .output()
        .unwrap();
    assert!(!stdout(&shown).contains("topsecret") && stdout(&shown).contains("***"));
    let bad_url = run(&["migrate", "--database-url", "mysql://x/y"]);
    assert!(!bad_url.status.success());
}

#[test]
fn generate_writes_the_same_city_for_the_same_seed() {
    let base = std::env::temp_dir().join(format!("medgrid-gen-{}", std::process::id()));
    let dirs: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|d| base.join(d).display().to_string())
        .collect();
    for (dir, seed) in dirs.iter().zip(["5", "5", "6"]) {
        let out = run(&[
            "generate",
            "--residents",
            "5000",
            "--seed",
            seed,
            "--out",
            dir,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("residents.csv: 5000 rows"));
    }
    let read = |d: &str| std::fs::read(std::path::Path::new(d).join("residents.csv")).unwrap();
    assert_eq!(read(&dirs[0]), read(&dirs[1]), "same seed, same bytes");
    assert_ne!(read(&dirs[0]), read(&dirs[2]));
    let bad = run(&[
        "generate",
        "--residents",
        "10",
        "--out",
        &dirs[2],
        "--as-of",
        "2025-13-01",
    ]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("--as-of"), "{}", stderr(&bad));
    let _ = std::fs::remove_dir_all(base);
}

/// The journey of a newcomer: log in, see the city's groups, open a member unit, add a
/// department to it, and find it listed.
#[test]
fn browser_journey() {
    let server = Server::demo(&sqlite_url("browser"));
    let browser = Browser::start();
    browser.goto(&server.url("/"));
    let user = browser.find("#username");
    assert!(
        browser.current_url().contains("/login"),
        "anonymous visitors are sent to the login page"
    );
    browser.type_into(&user, "admin");
    let pass = browser.find("#password");
    browser.type_into(&pass, PASSWORD);
    let submit = browser.find("#login-submit");
    browser.click(&submit);

    browser.wait_text("金华市人民医院—婺城区紧密型城市医疗集团");
    let source = browser.page_source();
    assert!(source.contains("金华市中心医院—金东区紧密型城市医疗集团"));
    assert!(source.contains("金华市中心医院—金华开发区紧密型城市医疗集团"));
    browser.screenshot(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("journey-tree.png"));
    let who = browser.find("#current-user");
    assert_eq!(browser.text(&who), "系统管理员");
    // The synthetic city's figures, one row per group, shares as percentages.
    let rows = browser.find_all("tr.group-figures");
    assert_eq!(rows.len(), 3, "a row of figures per group");
    for share in browser.find_all(".primary-share") {
        let text = browser.text(&share);
        let value: f64 = text.trim_end_matches('%').parse().expect("a percentage");
        assert!((20.0..=90.0).contains(&value), "primary share {text}");
    }

    // Open the lead hospital of the first group.
    let links = browser.find_all("a.unit-link");
    assert!(
        links.len() > 40,
        "every member unit is listed ({})",
        links.len()
    );
    let target = links
        .iter()
        .find(|l| browser.text(l) == "金华市人民医院")
        .expect("the lead hospital is in the tree")
        .clone();
    browser.click(&target);
    browser.wait_text("所属医疗集团");
    let title = browser.find("#unit-name");
    assert!(browser.text(&title).starts_with("金华市人民医院"));
    assert!(
        browser.page_source().contains("心血管内科"),
        "demo departments are listed"
    );

    // Add a department through the form.
    let code = browser.find("#department-form input[name=code]");
    browser.type_into(&code, "LNK");
    let name = browser.find("#department-form input[name=name]");
    browser.type_into(&name, "老年医学科");
    let button = browser.find("#department-form button[type=submit]");
    browser.click(&button);
    browser.wait_text("科室已添加");
    let table = browser.find("#departments");
    assert!(browser.text(&table).contains("老年医学科"));

    // The same code again is refused with the reason, in Chinese.
    let code = browser.find("#department-form input[name=code]");
    browser.type_into(&code, "LNK");
    let name = browser.find("#department-form input[name=name]");
    browser.type_into(&name, "重复科室");
    let button = browser.find("#department-form button[type=submit]");
    browser.click(&button);
    browser.wait_text("本机构已有同编码的科室");

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("journey-unit.png");
    browser.screenshot(&shot);
    drop(browser);
    server.stop();
}

fn log_in(browser: &Browser, server: &Server, username: &str) {
    browser.goto(&server.url("/login"));
    let user = browser.find("#username");
    browser.type_into(&user, username);
    let pass = browser.find("#password");
    browser.type_into(&pass, PASSWORD);
    let submit = browser.find("#login-submit");
    browser.click(&submit);
    browser.wait_text("退出");
}

fn log_out(browser: &Browser) {
    let out = browser.find("#logout");
    browser.click(&out);
    browser.find("#username");
}

/// Clicks the first element matching `css` whose text starts with `text`.
fn click_text(browser: &Browser, css: &str, text: &str) {
    let all = browser.find_all(css);
    let target = all
        .iter()
        .find(|e| browser.text(e).starts_with(text))
        .unwrap_or_else(|| panic!("no {css} reading {text}"))
        .clone();
    browser.click(&target);
}

fn status_of(browser: &Browser) -> String {
    let s = browser.find("#referral-status");
    browser.text(&s)
}

/// The referral's closed loop in the browser on the demo city: a family doctor refers a
/// patient up and books one of the lead hospital's reserved slots once the specialist has
/// accepted; the specialist records the arrival, completes with a summary for the referrer and
/// refers the patient down with a care plan; the family doctor accepts the down-referral and
/// finds the follow-up task on the list.
#[test]
fn referral_journey() {
    let server = Server::demo(&sqlite_url("referral"));
    let browser = Browser::start();

    log_in(&browser, &server, "doctor");
    browser.goto(&server.url("/referrals/new?q=王"));
    let choose = browser.find("a.choose-resident");
    browser.click(&choose);
    let chosen = browser.find("#chosen-resident");
    let patient = browser.text(&chosen);
    assert!(patient.contains("患者"), "{patient}");
    click_text(&browser, "select[name=to_unit_id] option", "金华市人民医院");
    let dept = browser.find("input[name=to_department_code]");
    browser.type_into(&dept, "XXG");
    let dx = browser.find("input[name=diagnosis]");
    browser.type_into(&dx, "I21.0");
    let reason = browser.find("input[name=reason]");
    browser.type_into(&reason, "胸痛待查，需冠脉评估");
    let send = browser.find("#send-referral");
    browser.click(&send);
    browser.wait_text("操作已完成");
    assert_eq!(status_of(&browser), "已发送");
    let url = browser.current_url();
    let referral_path = url
        .split("/referrals/")
        .nth(1)
        .and_then(|r| r.split('?').next())
        .map(|id| format!("/referrals/{id}"))
        .expect("the referral's page");
    // Booking is for accepted referrals only: no slots are offered yet.
    assert!(browser.find_all("button.book-slot").is_empty());
    log_out(&browser);

    // The specialist finds it on the incoming worklist and accepts it.
    log_in(&browser, &server, "specialist");
    browser.goto(&server.url("/referrals?view=incoming"));
    let rows = browser.find_all("a.referral-link");
    assert!(!rows.is_empty(), "the referral is on the incoming list");
    browser.goto(&server.url(&referral_path));
    let accept = browser.find("#do-accept");
    browser.click(&accept);
    browser.wait_text("操作已完成");
    assert_eq!(status_of(&browser), "已接收");
    log_out(&browser);

    // The family doctor attaches the ECG report, then books a reserved slot.
    log_in(&browser, &server, "doctor");
    browser.goto(&server.url(&referral_path));
    let ecg = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("心电图报告.pdf");
    std::fs::write(
        &ecg,
        b"%PDF-1.4\n% ECG: sinus rhythm, ST depression V4-V6\n",
    )
    .unwrap();
    let file = browser.find("#attach-form input[type=file]");
    browser.type_into(&file, ecg.to_str().unwrap());
    let attach = browser.find("#do-attach");
    browser.click(&attach);
    browser.wait_text("操作已完成");
    let files = browser.find_all("a.attachment-link");
    assert_eq!(files.len(), 1, "the attachment is listed");
    assert_eq!(browser.text(&files[0]), "心电图报告.pdf");
    let slots = browser.find_all("button.book-slot");
    assert!(!slots.is_empty(), "reserved slots are open to the referral");
    browser.click(&slots[0]);
    browser.wait_text("预约号");
    assert_eq!(status_of(&browser), "已预约");
    let booking = browser.find("#booking");
    assert!(browser.text(&booking).contains("BK"), "a booking reference");
    // The patient asks for another time: the booking moves, still one booking.
    let first = browser.text(&booking);
    click_text(&browser, "#reschedule summary", "改约");
    let moves = browser.find_all("button.reschedule-slot");
    assert!(!moves.is_empty(), "other slots to move to");
    browser.click(&moves[0]);
    // The page before showed "操作已完成" too: wait for the booking itself to change. While
    // the page reloads the element can read empty, so a moved booking is one with a reference.
    let moved = text_when(&browser, "#booking", |t| t != first && t.contains("BK"));
    assert_eq!(status_of(&browser), "已预约");
    assert!(moved.contains("BK"), "still one booking, moved: {moved}");
    log_out(&browser);

    // The specialist: arrival, completion with a summary, then a down-referral.
    log_in(&browser, &server, "specialist");
    browser.goto(&server.url(&referral_path));
    assert_eq!(
        browser.find_all("a.attachment-link").len(),
        1,
        "the receiving side sees the file the referrer attached"
    );
    let arrive = browser.find("#do-arrive");
    browser.click(&arrive);
    browser.wait_text("操作已完成");
    assert_eq!(status_of(&browser), "已到诊");
    let summary = browser.find("#complete-form textarea[name=outcome_summary]");
    browser.type_into(&summary, "冠脉造影未见严重狭窄，予药物治疗");
    let complete = browser.find("#do-complete");
    browser.click(&complete);
    browser.wait_text("操作已完成");
    assert_eq!(status_of(&browser), "已完成");
    let summary = browser.find("#outcome-summary");
    assert!(browser.text(&summary).contains("药物治疗"));
    let down = browser.find("#refer-down");
    browser.click(&down);
    let plan = browser.find("textarea[name=care_plan]");
    browser.type_into(&plan, "每两周随访血压、心率，监测胸痛症状");
    let send = browser.find("#send-referral");
    browser.click(&send);
    browser.wait_text("操作已完成");
    assert_eq!(status_of(&browser), "已发送");
    let care = browser.find("#care-plan");
    assert!(browser.text(&care).contains("每两周随访"));
    let down_path = browser
        .current_url()
        .split("/referrals/")
        .nth(1)
        .and_then(|r| r.split('?').next())
        .map(|id| format!("/referrals/{id}"))
        .expect("the down-referral's page");
    assert_ne!(down_path, referral_path);
    log_out(&browser);

    // The family doctor accepts it; the follow-up task appears on the list.
    log_in(&browser, &server, "doctor");
    browser.goto(&server.url(&down_path));
    let accept = browser.find("#do-accept");
    browser.click(&accept);
    browser.wait_text("操作已完成");
    assert_eq!(status_of(&browser), "已接收");
    browser.goto(&server.url("/follow-ups"));
    let tasks = browser.find_all("tr.follow-up");
    assert_eq!(tasks.len(), 1, "one follow-up task from the down-referral");
    assert!(browser.text(&tasks[0]).contains("每两周随访"));
    // The referrer sees the summary the receiving side sent back.
    browser.goto(&server.url(&referral_path));
    let summary = browser.find("#outcome-summary");
    assert!(browser.text(&summary).contains("药物治疗"));
    browser.screenshot(
        &std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("journey-referral.png"),
    );
    drop(browser);
    server.stop();
}

/// Replaces an input's value: select all, then type (WebDriver keys: Control, a, release).
fn replace_value(browser: &Browser, element: &str, text: &str) {
    browser.type_into(element, &format!("\u{E009}a\u{E000}{text}"));
}

/// The managers' side of capacity on the demo city: the lead hospital's manager is refused a
/// timetable that keeps fewer than a third of its slots for referrals and then saves one that
/// keeps enough; the group manager reads the reservation compliance chart and the bed pool,
/// and publishes a new version of a referral catalogue.
#[test]
fn capacity_journey() {
    let server = Server::demo(&sqlite_url("capacity"));
    let browser = Browser::start();

    log_in(&browser, &server, "lead.manager");
    let nav = browser.find("#nav-capacity");
    browser.click(&nav);
    let rows = browser.find_all("#schedules tbody tr");
    assert_eq!(rows.len(), 7, "the demo's daily cardiology clinic");
    click_text(&browser, "summary", "新增出诊安排");
    let reserved = browser.find("#schedule-form input[name=reserved]");
    replace_value(&browser, &reserved, "5");
    let save = browser.find("#add-schedule");
    browser.click(&save);
    // The refusal names the field (waited for: the page may still be loading under load).
    let text = text_when(&browser, "#form-errors", |t| !t.is_empty());
    assert!(
        text.contains("转诊预留"),
        "the refusal names the field: {text}"
    );
    assert_eq!(
        browser.find_all("#schedules tbody tr").len(),
        7,
        "nothing was written"
    );
    let reserved = browser.find("#schedule-form input[name=reserved]");
    replace_value(&browser, &reserved, "8");
    let save = browser.find("#add-schedule");
    browser.click(&save);
    browser.wait_text("操作已完成");
    assert_eq!(browser.find_all("#schedules tbody tr").len(), 8);
    log_out(&browser);

    log_in(&browser, &server, "group.manager");
    let nav = browser.find("#nav-compliance");
    browser.click(&nav);
    let chart = browser.find("#compliance-chart");
    let bars = browser.find_all("#compliance-chart rect.s-unused");
    assert!(!bars.is_empty(), "one bar per department");
    let breaches = browser.find("#breaches");
    assert!(
        browser.text(&breaches).contains("均达到"),
        "{}",
        browser.text(&breaches)
    );
    assert!(!browser.text(&chart).is_empty() || !bars.is_empty());
    browser.goto(&server.url("/capacity/beds"));
    let totals = browser.find("#pool-totals");
    assert!(
        browser.text(&totals).contains("共 40 张床位"),
        "{}",
        browser.text(&totals)
    );

    let nav = browser.find("#nav-catalogues");
    browser.click(&nav);
    let section = "#catalogue-down_referral";
    click_text(&browser, &format!("{section} summary"), "编辑并发布新版本");
    let text = browser.find(&format!("{section} textarea[name=text]"));
    replace_value(&browser, &text, "I10-I15 高血压\nE11 2型糖尿病\n- 术后康复");
    let publish = browser.find(&format!("{section} form.catalogue-form button"));
    browser.click(&publish);
    browser.wait_text("新版本已发布");
    let heading = browser.find(&format!("{section} h2"));
    let heading = browser.text(&heading);
    assert!(
        heading.contains("第 1 版") && heading.contains("3 项"),
        "{heading}"
    );
    browser.screenshot(
        &std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("journey-capacity.png"),
    );
    drop(browser);
    server.stop();
}

/// The text of `css` once it satisfies `ok`: after a click the old page may still be showing
/// (or be going away) for a moment, so the new page is waited for by what it says.
fn text_when(browser: &Browser, css: &str, ok: impl Fn(&str) -> bool) -> String {
    support::wait_for(css, std::time::Duration::from_secs(15), || {
        let found = browser.find_all(css);
        let text = browser.text(found.first()?);
        ok(&text).then_some(text)
    })
}

/// The cockpit on the demo city: the group manager sees the group's headline indicators,
/// drills from the group to a member unit and on to a department, climbs back by the
/// breadcrumbs, changes the period and finds the export, then runs the half-year assessment;
/// a member manager sees their own unit and is refused the group's board.
#[test]
fn cockpit_journey() {
    let server = Server::demo(&sqlite_url("cockpit"));
    let browser = Browser::start();

    log_in(&browser, &server, "group.manager");
    let nav = browser.find("#nav-cockpit");
    browser.click(&nav);
    let group_name = text_when(&browser, "#cockpit-title", |t| t.contains("医疗集团"));
    let tiles = browser.find_all("#headline .tile");
    assert!(tiles.len() >= 6, "headline indicators: {}", tiles.len());
    assert!(
        browser.find_all("#headline .tile.rag-none").len() < tiles.len(),
        "the demo city's indicators have values"
    );
    assert_eq!(browser.find_all("#indicator-table tbody tr").len(), 14);
    let export = browser.find("#export-xlsx");
    let href = browser.attribute(&export, "href");
    assert!(href.contains("/cockpit/table.xlsx?org=group-"), "{href}");
    browser
        .screenshot(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cockpit-group.png"));

    // The group's own target, set from the table: refused with the field named, then kept.
    let row = "#indicator-table tr[data-indicator=primary_visit_share]";
    let summary = browser.find(&format!("{row} summary"));
    browser.click(&summary);
    let form = format!("{row} form.target-form");
    let from = browser.find(&format!("{form} input[name=from]"));
    replace_value(&browser, &from, "2024-11");
    let target = browser.find(&format!("{form} input[name=target]"));
    replace_value(&browser, &target, "60");
    let amber = browser.find(&format!("{form} input[name=amber]"));
    replace_value(&browser, &amber, "65");
    let save = browser.find(&format!("{form} button"));
    browser.click(&save);
    let errors = text_when(&browser, "#form-errors", |t| !t.is_empty());
    assert!(errors.contains("预警线"), "{errors}");
    let summary = browser.find(&format!("{row} summary"));
    browser.click(&summary);
    let from = browser.find(&format!("{form} input[name=from]"));
    replace_value(&browser, &from, "2024-11");
    let target = browser.find(&format!("{form} input[name=target]"));
    replace_value(&browser, &target, "60");
    let amber = browser.find(&format!("{form} input[name=amber]"));
    replace_value(&browser, &amber, "55");
    let save = browser.find(&format!("{form} button"));
    browser.click(&save);
    text_when(&browser, "#done", |t| t.contains("目标已生效"));
    let cells = browser.find_all(&format!("{row} td.num"));
    assert!(
        browser.text(&cells[2]).starts_with("≥60 / 55"),
        "{}",
        browser.text(&cells[2])
    );

    // Drill down: the lead hospital, then one of its departments.
    let units = browser.find_all("#unit-grid .unit-tile");
    assert!(units.len() >= 5, "the group's member units");
    let lead = units
        .iter()
        .find(|u| browser.text(u).contains("人民医院"))
        .expect("the lead hospital's tile")
        .clone();
    let lead_name = browser.text(&lead);
    let lead_name = lead_name.split_whitespace().next().unwrap_or("").to_owned();
    browser.click(&lead);
    text_when(&browser, "#cockpit-title", |t| t.starts_with(&lead_name));
    assert_eq!(
        browser.find_all("#crumbs a").len(),
        2,
        "city › group › unit"
    );
    let departments = browser.find_all("#unit-grid .unit-tile");
    assert!(!departments.is_empty(), "the lead hospital's departments");
    browser.click(&departments[0]);
    text_when(&browser, "#cockpit-title", |t| t.contains(" · "));
    assert_eq!(browser.find_all("#crumbs a").len(), 3);
    assert_eq!(
        browser.find_all("#indicator-table tbody tr").len(),
        1,
        "a department keeps the length of stay"
    );

    // Back to the group by the breadcrumbs, then a half-year (the demo's activity starts in
    // November 2024, so 2026's first half has its year before).
    let crumbs = browser.find_all("#crumbs a");
    browser.click(&crumbs[1]);
    text_when(&browser, "#cockpit-title", |t| t == group_name);
    let period = browser.find("#period");
    replace_value(&browser, &period, "2026-H1");
    let form = browser.find("#period-form button");
    browser.click(&form);
    text_when(&browser, "#cockpit-title", |t| t.contains("2026年上半年"));
    // Columns: value, numerator ÷ denominator, target, year-on-year, period-on-period.
    let cells = browser.find_all("#indicator-table tr[data-indicator=in_region_visit_rate] td.num");
    assert_eq!(cells.len(), 5);
    assert_ne!(
        browser.text(&cells[3]),
        "—",
        "the same half a year earlier to compare with"
    );

    // The half-yearly assessment of the members, from the same cube; the group's own scheme
    // is written on the page, refused when it does not add up.
    let nav = browser.find("#nav-assessments");
    browser.click(&nav);
    let editor = browser.find("#scheme-editor summary");
    browser.click(&editor);
    let text = browser.find("#scheme-text");
    let scheme = browser.property(&text, "value");
    assert!(scheme.contains("\"dimensions\""), "{scheme}");
    replace_value(
        &browser,
        &text,
        &scheme.replacen("\"points\": \"30\"", "\"points\": \"20\"", 1),
    );
    let save = browser.find("#save-scheme");
    browser.click(&save);
    let errors = text_when(&browser, "#form-errors", |t| !t.is_empty());
    assert!(errors.contains("合计须为 100"), "{errors}");
    let text = browser.find("#scheme-text");
    replace_value(
        &browser,
        &text,
        &scheme.replacen("默认方案", "本集团方案", 1),
    );
    let save = browser.find("#save-scheme");
    browser.click(&save);
    // The page before the save showed a scheme too: wait for the group's own in force.
    text_when(&browser, "#scheme-in-force", |t| t.contains("本集团方案"));
    let period = browser.find("#assessment-period");
    replace_value(&browser, &period, "2026-H1");
    let run = browser.find("#run-assessment");
    browser.click(&run);
    text_when(&browser, "#assessment-title", |t| {
        t.contains("2026年上半年")
    });
    let ranked = browser.find_all("#ranking tbody tr");
    assert!(ranked.len() >= 3, "the group's primary units, ranked");
    assert_eq!(
        browser.find_all("#assessment-chart text.chart-value").len(),
        ranked.len()
    );
    browser.screenshot(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("assessment.png"));
    log_out(&browser);

    // The group's coordinator may see patients: the records behind a number, names masked.
    log_in(&browser, &server, "coordinator");
    let nav = browser.find("#nav-cockpit");
    browser.click(&nav);
    text_when(&browser, "#cockpit-title", |t| t == group_name);
    let summary = browser.find("#indicator-table tr[data-indicator=contract_rate] summary");
    browser.click(&summary);
    let links =
        browser.find_all("#indicator-table tr[data-indicator=contract_rate] a.records-link");
    assert_eq!(links.len(), 2, "numerator and denominator");
    browser.click(&links[0]);
    let total = text_when(&browser, "#records-total", |t| t.starts_with("共"));
    assert!(!total.starts_with("共 0 条"), "{total}");
    let names = browser.find_all("#records tbody tr td:nth-child(4)");
    assert!(!names.is_empty());
    assert!(browser.text(&names[0]).contains('*'), "names are masked");
    log_out(&browser);

    log_in(&browser, &server, "member.manager");
    let nav = browser.find("#nav-cockpit");
    browser.click(&nav);
    text_when(&browser, "#cockpit-title", |t| !t.is_empty());
    assert_eq!(browser.find_all("#crumbs a").len(), 2, "their own unit");
    browser.goto(&server.url(&format!(
        "/cockpit?org={}",
        href.split("org=")
            .nth(1)
            .and_then(|s| s.split('&').next())
            .unwrap_or("")
    )));
    browser.wait_text("权限");
}

/// The patient index on the demo city: the group's coordinator opens the review queue the
/// units' records left, reads a doubtful pair side by side with the evidence of each field,
/// decides they are one person (a merge), finds the merge on the person's page and undoes it;
/// a family doctor finds a person with identifiers masked and shows them in full.
#[test]
fn patient_index_journey() {
    let server = Server::demo(&sqlite_url("patient-index"));
    let printed = server.stdout.join("\n");
    assert!(
        printed.contains("待人工核对"),
        "the demo queues doubts: {printed}"
    );
    let browser = Browser::start();

    log_in(&browser, &server, "coordinator");
    let nav = browser.find("#nav-match-reviews");
    browser.click(&nav);
    let links = browser.find_all("#review-queue a.review-link");
    assert!(!links.is_empty(), "open reviews are listed");
    browser.click(&links[0]);
    let title = text_when(&browser, "#review-title", |t| t.contains("是否同一人"));
    assert!(title.contains("编号"));
    let rows = browser.find_all("#side-by-side tbody tr");
    assert_eq!(rows.len(), 6, "one row per compared field");
    let differing = browser.find_all("#side-by-side tr.differs");
    assert!(
        !differing.is_empty() && differing.len() < 6,
        "differences are marked, agreements are not"
    );
    let probability = browser.text(&browser.find("#review-probability"));
    assert!(probability.contains('%'), "{probability}");
    browser.screenshot(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("match-review.png"));
    let candidate = browser.find("#side-by-side thead a");
    let person_href = browser.attribute(&candidate, "href");
    let same = browser.find("#verdict-same");
    browser.click(&same);
    browser.wait_text("主索引核对");

    // The merge is on the kept person's page, and can be undone.
    browser.goto(&server.url(&person_href));
    let merges = text_when(&browser, "#merges", |t| t.contains("主索引核对"));
    assert!(
        merges.contains("有效") || merges.contains("撤销合并"),
        "{merges}"
    );
    let undo = browser
        .find_all("#merges button.danger")
        .first()
        .cloned()
        .expect("an undo button for the merge");
    browser.click(&undo);
    let merges = text_when(&browser, "#merges", |t| t.contains("撤销"));
    assert!(merges.contains("已于"), "{merges}");
    log_out(&browser);

    // A family doctor finds a person: masked in the list and on the page until asked.
    log_in(&browser, &server, "doctor");
    let nav = browser.find("#nav-persons");
    browser.click(&nav);
    browser.find("#person-search");
    // The doctor's own unit's residents: some common surname is among them.
    let found = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周"]
        .iter()
        .any(|surname| {
            browser.goto(&server.url(&format!("/persons?q={surname}")));
            let table = text_when(&browser, "#persons", |t| !t.is_empty());
            !table.contains("没有找到")
        });
    assert!(found, "a resident of the unit is found by surname");
    let table = browser.text(&browser.find("#persons"));
    assert!(
        table.contains('*'),
        "identifiers masked in the list: {table}"
    );
    let first = browser.find("#persons tbody a");
    browser.click(&first);
    let id = text_when(&browser, "#person-citizen-id", |t| !t.is_empty());
    assert!(id.contains('*'), "masked: {id}");
    let full = browser.find("#show-full");
    browser.click(&full);
    let id = text_when(&browser, "#person-citizen-id", |t| !t.contains('*'));
    assert_eq!(id.chars().count(), 18, "in full: {id}");
    drop(browser);
    server.stop();
}

/// The insurance budget on the demo city: the insurance officer runs the twelve monthly
/// prepayments of the demo year, settles it with the group's score and finds the statement and
/// its Excel export, then runs the year's DIP case payment and traces one case; the group
/// manager reads the same page without the controls.
#[test]
fn insurance_journey() {
    let server = Server::demo(&sqlite_url("insurance"));
    let browser = Browser::start();

    log_in(&browser, &server, "insurer");
    let nav = browser.find("#nav-insurance");
    browser.click(&nav);
    let title = text_when(&browser, "#insurance-title", |t| t.contains("2025"));
    assert!(title.contains("医疗集团"), "{title}");
    assert!(browser
        .text(&browser.find("#budget-amount"))
        .ends_with("元"));
    assert_eq!(browser.find_all("#spending-chart rect").len(), 12);
    // A claims file with a bad amount: the line and the reason are shown, nothing is written.
    let claims = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("claims-bad.csv");
    std::fs::write(
        &claims,
        "claim_id,encounter_id,resident_id,group_code,unit_code,fund,kind,level,in_group,dip_group,los_days,total,eligible,deductible,insurance_paid,self_paid,settled_on\n\
         1,1,1,X,,resident,outpatient,primary,0,,,-1,0,0,0,0,2025-01-01\n",
    )
    .unwrap();
    click_text(&browser, "#claims-import summary", "导入医保结算数据");
    let file = browser.find("#claims-form input[type=file]");
    browser.type_into(&file, claims.to_str().unwrap());
    let import = browser.find("#import-claims");
    browser.click(&import);
    browser.wait_text("须为不小于 0 的金额");
    browser.goto(&server.url("/insurance"));
    text_when(&browser, "#insurance-title", |t| t.contains("2025"));
    for month in 1..=12 {
        let run = browser.find("#run-prepayment");
        assert_eq!(browser.text(&run), format!("运行 {month} 月预付"));
        browser.click(&run);
        text_when(
            &browser,
            &format!("#months tr[data-month=\"{month}\"]"),
            |t| t.contains("已确认"),
        );
    }
    assert!(
        browser.find_all("#run-prepayment").is_empty(),
        "all twelve run"
    );
    browser
        .screenshot(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("insurance-year.png"));
    let score = browser.find("#settle-form input[name=score]");
    browser.type_into(&score, "92.5");
    let settle = browser.find("#run-settlement");
    browser.click(&settle);
    let due = text_when(&browser, "#settlement-due", |t| t.contains("元"));
    assert!(
        due.contains("医保应补付") || due.contains("集团应退回"),
        "{due}"
    );
    let lines = browser.find_all("#statement tbody tr");
    assert!(
        lines.len() >= 12,
        "every step of the statement: {}",
        lines.len()
    );
    let export = browser.find("#export-statement");
    let href = browser.attribute(&export, "href");
    assert!(href.ends_with("/statement.xlsx"), "{href}");

    // The first quarter's public funds: shared among the members, 70% at once.
    let per_person = browser.find("#public-funds-form input[name=per_person]");
    browser.type_into(&per_person, "89");
    let run_funds = browser.find("#run-public-funds");
    browser.click(&run_funds);
    let funds = text_when(&browser, "#public-fund-runs", |t| t.contains("第 1 季度"));
    assert!(funds.contains("70%"), "{funds}");

    // DIP: the year's final run, the members' chart, one case traced to its numbers.
    let year_option = browser.find("#dip-form select[name=month] option[value=\"0\"]");
    browser.click(&year_option);
    let run_dip = browser.find("#run-dip");
    browser.click(&run_dip);
    text_when(&browser, "#dip-title", |t| t.contains("年终决算"));
    let cases: i64 = browser.text(&browser.find("#dip-cases")).parse().unwrap();
    assert!(cases > 0, "the demo year has inpatient cases");
    assert!(
        !browser.find_all("#dip-units-chart rect").is_empty(),
        "what each member earned, drawn"
    );
    assert!(browser
        .text(&browser.find("#dip-point-value"))
        .ends_with("元/分"));
    let export = browser.find("#export-dip");
    assert!(browser
        .attribute(&export, "href")
        .ends_with("/statement.xlsx"));
    let first = browser.find("#dip-case-list a.dip-case");
    browser.click(&first);
    let steps = text_when(&browser, "#case-steps", |t| t.contains("医保基金支付"));
    assert!(steps.contains("点值"), "{steps}");
    log_out(&browser);

    log_in(&browser, &server, "group.manager");
    browser.goto(&server.url("/insurance"));
    text_when(&browser, "#settlement-due", |t| t.contains("元"));
    assert!(
        browser.find_all("#run-settlement").is_empty() && browser.find_all("#run-dip").is_empty(),
        "reading, not running"
    );
    assert_eq!(browser.find_all("#dip-runs a.dip-run").len(), 1);
    drop(browser);
    server.stop();
}
