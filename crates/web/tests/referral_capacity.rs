//! Timetables, the compliance report, the bed pool, catalogues and attachments through the
//! JSON API, on SQLite and on PostgreSQL: who may do what, what is refused and why, and that
//! a refusal changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should stop the test

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use chrono::{Datelike, Days};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use medgrid_store::{local_now, AuditFilter};
use medgrid_testkit::TestDb;

mod support;
use support::{world, Reply, World};

async fn delete(w: &World, path: &str, token: &str) -> Reply {
    w.send(
        Request::delete(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

async fn upload(w: &World, referral: i64, token: &str, name: &str, bytes: Vec<u8>) -> Reply {
    w.send(
        Request::post(format!(
            "/api/v1/referrals/{referral}/attachments?file_name={name}"
        ))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Body::from(bytes))
        .unwrap(),
    )
    .await
}

async fn status_of(w: &World, token: &str) -> String {
    let r = w
        .get(&format!("/api/v1/referrals/{}", w.referral), token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()["status"].as_str().unwrap().to_owned()
}

fn schedule(weekday: u32, reserved: u32) -> Value {
    json!({
        "department_code": "XXG", "weekday": weekday, "start_time": "13:30",
        "slot_minutes": 15, "capacity": 24, "reserved": reserved,
    })
}

async fn timetables_and_the_compliance_report(db: &TestDb) {
    let w = world(db).await;
    let lead = w.lead.id;
    let path = format!("/api/v1/units/{lead}/schedules");
    // Two days from now, so the new timetable opens a session inside the release window.
    let weekday = (local_now().date() + Days::new(2))
        .weekday()
        .number_from_monday();

    // A lead hospital keeps at least a third: 7 of 24 is refused, with the field named, and
    // nothing is written.
    let short = w.post(&path, &w.manager, None, &schedule(weekday, 7)).await;
    assert_eq!(
        short.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        short.text
    );
    assert_eq!(short.fields(), ["reserved"]);
    assert!(
        short.text.contains("1/3") || short.text.contains("三分之一"),
        "{}",
        short.text
    );
    let bad = w
        .post(
            &path,
            &w.manager,
            None,
            &json!({"department_code": "XXG", "weekday": 9, "start_time": "25:00",
                    "slot_minutes": 15, "capacity": 24, "reserved": 8}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert_eq!(bad.fields(), ["start_time"]);
    let timetable = w
        .get(&format!("/api/v1/units/{lead}/timetable"), &w.doctor)
        .await;
    assert_eq!(timetable.status, StatusCode::OK, "{}", timetable.text);
    assert_eq!(timetable.json()["schedules"].as_array().unwrap().len(), 0);

    // Clinicians do not write timetables; a manager of another unit neither.
    let doctor = w.post(&path, &w.doctor, None, &schedule(weekday, 8)).await;
    assert_eq!(doctor.status, StatusCode::FORBIDDEN, "{}", doctor.text);

    // Another unit's timetable, written but not opened yet: the manager's entry must not
    // open it (nor be audited as having done so).
    let elsewhere = w
        .store
        .create_schedule(
            &medgrid_store::Actor::system("test"),
            &w.primary,
            &medgrid_store::schedule::ScheduleDraft {
                department_code: "QK".into(),
                practitioner_id: None,
                weekday,
                start_time: chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
                slot_minutes: 10,
                capacity: 12,
                reserved: 0,
                expert_visit: false,
            },
            &medgrid_domain::capacity::Policy::default(),
        )
        .await
        .unwrap();
    let made = w.post(&path, &w.manager, None, &schedule(weekday, 8)).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    let id = made.json()["id"].as_i64().unwrap();
    assert_eq!(made.json()["reserved"], 8);
    let sessions = w.store.scheduled_sessions(id).await.unwrap();
    assert!(!sessions.is_empty(), "the release window is opened at once");
    assert!(sessions.iter().all(|s| s.reserved == 8 && s.capacity == 24));
    assert!(
        w.store
            .scheduled_sessions(elsewhere)
            .await
            .unwrap()
            .is_empty(),
        "only the new entry's sessions are opened"
    );

    // A change below the share is refused and the timetable keeps its 8.
    let change = format!("/api/v1/units/{lead}/schedules/{id}/reservation");
    let lower = w
        .post(&change, &w.manager, None, &json!({"reserved": 6}))
        .await;
    assert_eq!(
        lower.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        lower.text
    );
    assert_eq!(lower.fields(), ["reserved"]);
    let raised = w
        .post(&change, &w.manager, None, &json!({"reserved": 12}))
        .await;
    assert_eq!(raised.status, StatusCode::OK, "{}", raised.text);
    let timetable = w
        .get(&format!("/api/v1/units/{lead}/timetable"), &w.manager)
        .await
        .json();
    assert_eq!(timetable["schedules"][0]["reserved"], 12);

    // The report: the group manager sees every day of the lead's XXG sessions with what
    // the policy asks; clinicians and strangers are refused.
    let from = local_now().date();
    let until = from + Days::new(13);
    let report =
        format!("/api/v1/reports/reservation-compliance?unit_id={lead}&from={from}&until={until}");
    let r = w.get(&report, &w.group_manager).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let rows = r.json();
    let rows = rows.as_array().unwrap();
    let opened_day = sessions[0].starts_at.date().to_string();
    let that_day = rows
        .iter()
        .find(|r| r["day"] == opened_day.as_str() && r["department_code"] == "XXG")
        .unwrap_or_else(|| panic!("{opened_day} missing from {rows:?}"));
    assert!(that_day["required"].as_i64().unwrap() >= 8);
    assert!(rows.iter().all(|r| r["compliant"] == true), "{rows:?}");
    for token in [&w.doctor, &w.specialist, &w.stranger] {
        let refused = w.get(&report, token).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    }
    let too_long = w
        .get(
            &format!(
                "/api/v1/reports/reservation-compliance?unit_id={lead}&from={from}&until={}",
                from + Days::new(200)
            ),
            &w.group_manager,
        )
        .await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(too_long.fields(), ["until"]);
}

async fn beds_for_a_referral(db: &TestDb) {
    let w = world(db).await;
    let lead = w.lead.id;
    let wards = format!("/api/v1/units/{lead}/wards");
    let few =
        json!({"department_code": "XXG", "name": "心内一病区", "beds": 20, "reserved_beds": 4});
    let r = w.post(&wards, &w.manager, None, &few).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.fields(), ["reserved_beds"]);
    let ok =
        json!({"department_code": "XXG", "name": "心内一病区", "beds": 20, "reserved_beds": 5});
    let r = w.post(&wards, &w.manager, None, &ok).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let ward = r.json()["id"].as_i64().unwrap();

    let admit_on = (local_now().date() + Days::new(1)).to_string();
    let booking = format!("/api/v1/referrals/{}/bed-booking", w.referral);
    let body = json!({"ward_id": ward, "admit_on": admit_on});
    let no_key = w.post(&booking, &w.doctor, None, &body).await;
    assert_eq!(no_key.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_key.fields(), ["Idempotency-Key"]);
    let stranger = w.post(&booking, &w.stranger, Some("s1"), &body).await;
    assert_eq!(stranger.status, StatusCode::FORBIDDEN, "{}", stranger.text);

    let first = w.post(&booking, &w.doctor, Some("bed-1"), &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let first = first.json();
    assert_eq!(
        first["reserved"], true,
        "a referral takes a reserved bed first"
    );
    assert_eq!(first["bed_no"], 1);
    let again = w.post(&booking, &w.doctor, Some("bed-1"), &body).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert_eq!(
        again.json()["reference"],
        first["reference"],
        "a retry is the same booking"
    );
    assert_eq!(status_of(&w, &w.doctor).await, "booked");

    let pool = format!("/api/v1/bed-pool?day={admit_on}");
    let seen = w.get(&pool, &w.group_manager).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.text);
    let day = seen.json();
    let row = day
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ward_id"] == ward)
        .unwrap()
        .clone();
    assert_eq!(row["booked_reserved"], 1);
    assert_eq!(row["free_reserved"], 4);
    assert_eq!(row["free_general"], 15);
    assert_eq!(
        w.get(&pool, &w.doctor).await.status,
        StatusCode::FORBIDDEN,
        "the pool is a report for those who steer"
    );

    let cancelled = delete(&w, &booking, &w.specialist).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(status_of(&w, &w.doctor).await, "accepted");
    let after = w.get(&pool, &w.group_manager).await.json();
    let row = after
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ward_id"] == ward)
        .unwrap()
        .clone();
    assert_eq!(row["booked_reserved"], 0);
    assert_eq!(
        delete(&w, &booking, &w.specialist).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn catalogues_are_versioned_and_edited_by_the_group(db: &TestDb) {
    let w = world(db).await;
    let group = w.lead.group_id.unwrap();
    let list = w
        .get(&format!("/api/v1/groups/{group}/catalogues"), &w.doctor)
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let lists = list.json();
    assert_eq!(lists.as_array().unwrap().len(), 4);
    assert!(lists.as_array().unwrap().iter().all(|c| c["version"] == 0));

    let publish = format!("/api/v1/groups/{group}/catalogues/down_referral");
    let text = "I10-I15 高血压\nE11 2型糖尿病\n- 术后康复";
    let body = json!({"base_version": 0, "text": text, "note": "2026 年修订"});
    for token in [&w.doctor, &w.manager, &w.specialist] {
        let refused = w.post(&publish, token, None, &body).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    }
    let bad = w
        .post(
            &publish,
            &w.group_manager,
            None,
            &json!({"base_version": 0, "text": "I10 高血压\nXYZ 坏行\nI99-I10 倒置"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert_eq!(bad.fields(), ["entries[2]", "entries[3]"]);

    let made = w.post(&publish, &w.group_manager, None, &body).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    assert_eq!(made.json()["version"], 1);
    assert_eq!(made.json()["entries"].as_array().unwrap().len(), 3);

    // An editor who started from version 0 is told that version 1 exists.
    let stale = w.post(&publish, &w.group_manager, None, &body).await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.text);
    assert_eq!(stale.fields(), ["base_version"]);
    let versions = w
        .get(&format!("{publish}/versions"), &w.doctor)
        .await
        .json();
    assert_eq!(versions.as_array().unwrap().len(), 1);
    assert_eq!(versions[0]["note"], "2026 年修订");
    let unknown = w
        .get(
            &format!("/api/v1/groups/{group}/catalogues/nonsense/versions"),
            &w.doctor,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn attachments_are_checked_by_content(db: &TestDb) {
    let w = world(db).await;
    let mut pdf = b"%PDF-1.4\n".to_vec();
    pdf.extend(std::iter::repeat_n(b'x', 5000));
    let r = upload(&w, w.referral, &w.doctor, "ecg.pdf", pdf.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let a = r.json();
    let digest: String = Sha256::digest(&pdf)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(a["sha256"], digest.as_str());
    assert_eq!(a["media_type"], "application/pdf");
    let id = a["id"].as_i64().unwrap();

    // A program renamed to .pdf, an empty file, and a stranger: refused, nothing stored.
    let exe = upload(
        &w,
        w.referral,
        &w.doctor,
        "report.pdf",
        b"MZ\x90\x00".to_vec(),
    )
    .await;
    assert_eq!(exe.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", exe.text);
    assert_eq!(exe.fields(), ["file"]);
    assert!(exe.text.contains("unsupported_type"), "{}", exe.text);
    let empty = upload(&w, w.referral, &w.doctor, "x.pdf", Vec::new()).await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    let stranger = upload(&w, w.referral, &w.stranger, "x.pdf", pdf.clone()).await;
    assert_eq!(stranger.status, StatusCode::FORBIDDEN);
    let mut big = b"%PDF-1.4\n".to_vec();
    big.resize(medgrid_domain::attachment::MAX_BYTES + 1, b'x');
    let too_big = upload(&w, w.referral, &w.doctor, "big.pdf", big).await;
    assert_eq!(
        too_big.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        too_big.text
    );
    assert!(too_big.text.contains("too_large"));
    let huge = upload(&w, w.referral, &w.doctor, "huge.pdf", vec![b'%'; 12 << 20]).await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);

    let listed = w
        .get(
            &format!("/api/v1/referrals/{}/attachments", w.referral),
            &w.specialist,
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.json().as_array().unwrap().len(), 1);

    // The receiving side downloads exactly what was sent, as a download.
    let file = format!("/api/v1/referrals/{}/attachments/{id}", w.referral);
    let got = w.get(&file, &w.specialist).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.content_type, "application/pdf");
    assert_eq!(got.text.as_bytes(), pdf.as_slice());
    let disposition = got.headers[header::CONTENT_DISPOSITION].to_str().unwrap();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert_eq!(
        w.get(&file, &w.stranger).await.status,
        StatusCode::FORBIDDEN
    );
    // The id of a file is reached only through its own referral.
    let other = w
        .get(
            &format!("/api/v1/referrals/{}/attachments/{}", w.referral, id + 1000),
            &w.specialist,
        )
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);

    // Both ends see the attachment in the referral's history.
    let events = w
        .get(
            &format!("/api/v1/referrals/{}/events", w.referral),
            &w.specialist,
        )
        .await
        .json();
    assert!(events
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["transition"] == "attach" && e["note"].as_str().unwrap().contains("ecg.pdf")));

    // Notifications told the receiving unit; marking them read empties the unread list.
    let before = w.get("/api/v1/notifications", &w.specialist).await.json();
    assert!(before
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["read_at"].is_null()));
    let marked = w
        .post(
            "/api/v1/notifications/read",
            &w.specialist,
            None,
            &json!({}),
        )
        .await;
    assert_eq!(marked.status, StatusCode::OK, "{}", marked.text);
    assert!(marked.json()["marked"].as_u64().unwrap() >= 1);
    let after = w.get("/api/v1/notifications", &w.specialist).await.json();
    assert!(after
        .as_array()
        .unwrap()
        .iter()
        .all(|n| !n["read_at"].is_null()));
    let audited = w
        .store
        .list_audit(&AuditFilter {
            action_prefix: Some("notification.read".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(audited.len(), 1, "marking read is a write, audited");
    assert_eq!(audited[0].actor_username, "sp");
    // Reading a file is audited like reading the referral.
    let reads = w
        .store
        .list_audit(&AuditFilter {
            action_prefix: Some("referral.attachment.read".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(!reads.is_empty());

    // A closed referral takes no more files.
    let cancel = w
        .post(
            &format!("/api/v1/referrals/{}/transitions", w.referral),
            &w.doctor,
            None,
            &json!({"transition": "cancel", "reason": "患者改期"}),
        )
        .await;
    assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.text);
    let late = upload(&w, w.referral, &w.doctor, "late.pdf", pdf).await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.text);
}

/// A hold keeps a slot for the referral while the patient is asked; nobody else books it, the
/// token does, and nobody holds what they could not book.
async fn holding_a_slot_for_a_referral(db: &TestDb) {
    let w = world(db).await;
    let slots = w
        .get(
            &format!("/api/v1/referrals/{}/slots", w.referral),
            &w.doctor,
        )
        .await
        .json();
    let slot = slots
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["reserved"] == true && s["refused_zh"].is_null())
        .unwrap()["slot_id"]
        .as_i64()
        .unwrap();
    let hold = format!("/api/v1/referrals/{}/hold", w.referral);
    let stranger = w
        .post(&hold, &w.stranger, None, &json!({"slot_id": slot}))
        .await;
    assert_eq!(stranger.status, StatusCode::FORBIDDEN, "{}", stranger.text);
    let too_long = w
        .post(
            &hold,
            &w.doctor,
            None,
            &json!({"slot_id": slot, "minutes": 600}),
        )
        .await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(too_long.fields(), ["minutes"]);
    let held = w
        .post(&hold, &w.doctor, None, &json!({"slot_id": slot}))
        .await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.text);
    let token = held.json()["token"].as_str().unwrap().to_owned();
    let again = w
        .post(&hold, &w.specialist, None, &json!({"slot_id": slot}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);

    let booking = format!("/api/v1/referrals/{}/booking", w.referral);
    let without = w
        .post(
            &booking,
            &w.doctor,
            Some("k-no-token"),
            &json!({"slot_id": slot}),
        )
        .await;
    assert_eq!(without.status, StatusCode::CONFLICT, "{}", without.text);
    let with = w
        .post(
            &booking,
            &w.doctor,
            Some("k-token"),
            &json!({"slot_id": slot, "hold_token": token}),
        )
        .await;
    assert_eq!(with.status, StatusCode::CREATED, "{}", with.text);
    assert_eq!(with.json()["slot_id"], slot);

    // Booking again moves the booking: the first slot is free again, one live booking stays.
    let later = slots
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["refused_zh"].is_null())
        .map(|s| s["slot_id"].as_i64().unwrap())
        .find(|id| *id != slot)
        .unwrap();
    let moved = w
        .post(
            &booking,
            &w.doctor,
            Some("k-move"),
            &json!({"slot_id": later}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::CREATED, "{}", moved.text);
    assert_eq!(moved.json()["slot_id"], later);
    let now = w.store.slots(w.session).await.unwrap();
    assert_eq!(now.iter().find(|s| s.id == slot).unwrap().status, "free");
    assert_eq!(now.iter().filter(|s| s.status == "booked").count(), 1);
    assert_eq!(status_of(&w, &w.doctor).await, "booked");

    // A general booker may not even hold a reserved slot before it returns.
    let other = slots
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["reserved"] == true)
        .map(|s| s["slot_id"].as_i64().unwrap())
        .find(|id| *id != slot && *id != later)
        .unwrap();
    let refused = w
        .store
        .hold_slot(
            &medgrid_store::Actor::system("test"),
            &medgrid_domain::capacity::Policy::default(),
            other,
            None,
            10,
            local_now(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, medgrid_store::StoreError::Invalid(i) if i.0[0].code == "reserved_for_referrals"),
        "{refused:?}"
    );
    let still = w.store.slots(w.session).await.unwrap();
    assert_eq!(
        still.iter().find(|s| s.id == other).unwrap().status,
        "free",
        "the refused hold left the slot free"
    );

    // A referral only sent, not yet accepted, holds nothing.
    let sent = w
        .post(
            "/api/v1/referrals",
            &w.doctor,
            None,
            &json!({
                "resident_id": support::RESIDENT,
                "to_unit_id": w.lead.id,
                "to_department_code": "XXG",
                "diagnosis": "I21.0",
                "reason": "胸痛复发",
            }),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.text);
    let early = w
        .post(
            &format!("/api/v1/referrals/{}/hold", sent.json()["id"]),
            &w.doctor,
            None,
            &json!({"slot_id": other}),
        )
        .await;
    assert_eq!(
        early.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        early.text
    );
    assert_eq!(early.fields(), ["referral_id"]);
    assert_eq!(early.json()["errors"][0]["code"], "not_accepted");

    // A hold names a real referral addressed to the slot's unit, and a real slot.
    let system = medgrid_store::Actor::system("test");
    let policy = medgrid_domain::capacity::Policy::default();
    let unknown = w
        .store
        .hold_slot(&system, &policy, other, Some(999_999), 10, local_now())
        .await
        .unwrap_err();
    assert!(
        matches!(&unknown, medgrid_store::StoreError::Invalid(i) if i.0[0].field == "referral_id" && i.0[0].code == "not_found"),
        "{unknown:?}"
    );
    let department = w.store.departments(w.primary.id).await.unwrap()[0]
        .code
        .clone();
    let (_, elsewhere) = w
        .store
        .open_care_session(
            &system,
            &w.primary,
            &medgrid_store::booking::SessionDraft {
                department_code: department,
                practitioner_id: None,
                starts_at: (local_now().date() + chrono::Days::new(2))
                    .and_hms_opt(9, 0, 0)
                    .unwrap(),
                slot_minutes: 10,
                capacity: 6,
                reserved: 0,
            },
            &policy,
        )
        .await
        .unwrap();
    let misplaced = w
        .store
        .hold_slot(
            &system,
            &policy,
            elsewhere[0].id,
            Some(w.referral),
            10,
            local_now(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&misplaced, medgrid_store::StoreError::Invalid(i) if i.0[0].code == "not_for_this_slot"),
        "{misplaced:?}"
    );
    let gone = w
        .store
        .hold_slot(&system, &policy, 999_999, None, 10, local_now())
        .await
        .unwrap_err();
    assert!(
        matches!(gone, medgrid_store::StoreError::NotFound),
        "{gone:?}"
    );
    let after = w.store.slots(w.session).await.unwrap();
    assert_eq!(
        after.iter().find(|s| s.id == other).unwrap().status,
        "free",
        "refused holds change nothing"
    );
    assert_eq!(
        w.store.slots(elsewhere[0].session_id).await.unwrap()[0].status,
        "free"
    );
}

/// A referral request sent twice, even at the same moment, writes one referral; the key
/// cannot be spent on another patient.
async fn a_retried_referral_is_written_once(db: &TestDb) {
    let w = world(db).await;
    let body = json!({
        "resident_id": support::RESIDENT,
        "to_unit_id": w.lead.id,
        "to_department_code": "XXG",
        "diagnosis": "I21.0",
        "reason": "胸痛复发",
    });
    let (a, b) = tokio::join!(
        w.post("/api/v1/referrals", &w.doctor, Some("ref-1"), &body),
        w.post("/api/v1/referrals", &w.doctor, Some("ref-1"), &body),
    );
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.text);
    assert_eq!(a.json()["id"], b.json()["id"], "one referral for one key");
    let again = w
        .post("/api/v1/referrals", &w.doctor, Some("ref-1"), &body)
        .await;
    assert_eq!(again.json()["id"], a.json()["id"]);
    let replays = w
        .store
        .list_audit(&AuditFilter {
            action_prefix: Some("referral.create.replayed".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(
        !replays.is_empty(),
        "handing back an earlier referral is an audited read"
    );
    let other = w
        .post("/api/v1/referrals", &w.doctor, Some("ref-2"), &body)
        .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.text);
    assert_ne!(other.json()["id"], a.json()["id"]);
    let live = w
        .store
        .referrals(&medgrid_store::referral::ReferralFilter {
            resident_id: Some(support::RESIDENT),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        live.iter()
            .filter(|f| f.reason.as_deref() == Some("胸痛复发"))
            .count(),
        2,
        "two keys, two referrals"
    );
    let blank = w
        .post("/api/v1/referrals", &w.doctor, Some("  "), &body)
        .await;
    assert_eq!(
        blank.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        blank.text
    );
    assert_eq!(blank.fields(), ["idempotency_key"]);
}

on_both!(
    a_retried_referral_is_written_once,
    holding_a_slot_for_a_referral,
    timetables_and_the_compliance_report,
    beds_for_a_referral,
    catalogues_are_versioned_and_edited_by_the_group,
    attachments_are_checked_by_content,
);
