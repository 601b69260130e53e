//! FHIR referral and booking (`ServiceRequest`, `Task`, `Schedule`, `Slot`, `Appointment`)
//! through the real router, on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should stop the test

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::{json, Value};

use medgrid_store::{local_now, AuditFilter};
use medgrid_testkit::TestDb;

mod support;
use support::{world, World, RESIDENT};

impl World {
    fn appointment(&self, slot: &str, referral: Option<i64>) -> Value {
        let mut a = json!({
            "resourceType": "Appointment",
            "status": "proposed",
            "slot": [{"reference": format!("Slot/{slot}")}],
            "participant": [{"actor": {"reference": format!("Patient/{RESIDENT}")}, "status": "needs-action"}],
        });
        if let Some(f) = referral {
            a["basedOn"] = json!([{"reference": format!("ServiceRequest/{f}")}]);
        }
        a
    }

    /// The session's slots as the doctor finds them, with their reservation mark.
    async fn slots(&self, query: &str) -> Vec<Value> {
        let r = self
            .get(
                &format!("/fhir/Slot?schedule=Schedule/{}{query}", self.session),
                &self.doctor,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.content_type, "application/fhir+json");
        r.entries()
    }
}

fn is_reserved(slot: &Value) -> bool {
    slot["serviceCategory"][0]["text"] == "基层转诊预留"
}

async fn booking_a_referral_through_fhir(db: &TestDb) {
    let w = world(db).await;
    let day = (local_now().date() + chrono::Days::new(3)).to_string();

    // The capability statement lists what is served, the booking operation included.
    let meta = w.get("/fhir/metadata", &w.doctor).await.json();
    let served: Vec<&str> = meta["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    for kind in ["ServiceRequest", "Task", "Schedule", "Slot", "Appointment"] {
        assert!(served.contains(&kind), "{kind} missing from {served:?}");
    }
    let appt = meta["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Appointment")
        .unwrap();
    assert_eq!(appt["operation"][0]["name"], "book");
    assert!(appt["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["code"] == "create"));

    // The session's slots: all free, a third reserved for referrals, and the date filter
    // keeps exactly that day.
    let slots = w
        .slots(&format!("&start=ge{day}&start=lt{day}T23:59:00"))
        .await;
    assert_eq!(slots.len(), 30);
    assert!(slots.iter().all(|s| s["status"] == "free"));
    assert_eq!(slots.iter().filter(|s| is_reserved(s)).count(), 10);
    assert!(slots[0]["start"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{day}T08:00:00")));
    assert!(w.slots(&format!("&start=lt{day}")).await.is_empty());
    let schedule = w
        .get(&format!("/fhir/Schedule/{}", w.session), &w.doctor)
        .await;
    assert_eq!(schedule.status, StatusCode::OK, "{}", schedule.text);
    let schedule = schedule.json();
    assert_eq!(schedule["serviceType"][0]["text"], "XXG");
    assert_eq!(
        schedule["actor"][0]["reference"],
        format!("Organization/unit-{}", w.lead.id)
    );
    let reserved: Vec<String> = slots
        .iter()
        .filter(|s| is_reserved(s))
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();

    // Before booking, the referral's Task is accepted.
    let task = w
        .get(&format!("/fhir/Task/{}", w.referral), &w.doctor)
        .await;
    assert_eq!(task.status, StatusCode::OK, "{}", task.text);
    assert_eq!(task.json()["status"], "accepted");
    assert_eq!(task.json()["businessStatus"]["text"], "已接收");

    // The referring family doctor books a reserved slot for the referral.
    let body = w.appointment(&reserved[0], Some(w.referral));
    let booked = w
        .post("/fhir/Appointment", &w.doctor, Some("k1"), &body)
        .await;
    assert_eq!(booked.status, StatusCode::CREATED, "{}", booked.text);
    assert_eq!(booked.content_type, "application/fhir+json");
    let a = booked.json();
    let id = a["id"].as_str().unwrap().to_owned();
    assert_eq!(
        booked.headers.get(header::LOCATION).unwrap(),
        format!("/fhir/Appointment/{id}").as_str()
    );
    assert_eq!(a["resourceType"], "Appointment");
    assert_eq!(a["status"], "booked");
    assert_eq!(a["slot"][0]["reference"], format!("Slot/{}", reserved[0]));
    assert_eq!(
        a["basedOn"][0]["reference"],
        format!("ServiceRequest/{}", w.referral)
    );
    assert_eq!(
        a["start"],
        slots
            .iter()
            .find(|s| s["id"] == reserved[0].as_str())
            .unwrap()["start"]
    );
    assert_eq!(
        a["participant"][0]["actor"]["reference"],
        format!("Patient/{RESIDENT}")
    );
    // A retry with the same key returns the same booking.
    let again = w
        .post("/fhir/Appointment", &w.doctor, Some("k1"), &body)
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert_eq!(again.json()["id"], id.as_str());

    // The Task now reads in progress, pointing at the appointment.
    let task = w
        .get(&format!("/fhir/Task/{}", w.referral), &w.doctor)
        .await
        .json();
    assert_eq!(task["status"], "in-progress");
    assert_eq!(task["businessStatus"]["text"], "已预约");
    assert_eq!(task["intent"], "order");
    assert_eq!(
        task["focus"]["reference"],
        format!("ServiceRequest/{}", w.referral)
    );
    assert_eq!(
        task["owner"]["reference"],
        format!("Organization/unit-{}", w.lead.id)
    );
    assert_eq!(
        task["output"][0]["valueReference"]["reference"],
        format!("Appointment/{id}")
    );
    let by_focus = w
        .get(
            &format!("/fhir/Task?focus=ServiceRequest/{}", w.referral),
            &w.specialist,
        )
        .await;
    assert_eq!(by_focus.entries().len(), 1, "{}", by_focus.text);
    assert_eq!(by_focus.entries()[0]["status"], "in-progress");
    assert!(w
        .get("/fhir/Task?status=accepted", &w.doctor)
        .await
        .entries()
        .is_empty());

    // The ServiceRequest is found by patient and status.
    let found = w
        .get(
            &format!("/fhir/ServiceRequest?patient=Patient/{RESIDENT}&status=active"),
            &w.doctor,
        )
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    let list = found.entries();
    assert_eq!(list.len(), 1, "{}", found.text);
    let sr = &list[0];
    assert_eq!(sr["id"], w.referral.to_string());
    assert_eq!(sr["status"], "active");
    assert_eq!(sr["intent"], "order");
    assert_eq!(sr["priority"], "routine");
    assert_eq!(sr["category"][0]["text"], "上转");
    assert_eq!(sr["subject"]["reference"], format!("Patient/{RESIDENT}"));
    assert_eq!(sr["subject"]["display"], "张三");
    assert_eq!(
        sr["requester"]["reference"],
        format!("Organization/unit-{}", w.primary.id)
    );
    assert_eq!(
        sr["performer"][0]["reference"],
        format!("Organization/unit-{}", w.lead.id)
    );
    assert_eq!(
        sr["reasonCode"][0]["coding"][0],
        json!({"system": "http://hl7.org/fhir/sid/icd-10", "code": "I21.0"})
    );
    assert!(sr["note"].to_string().contains("反复胸痛三天"));
    assert!(w
        .get(
            &format!("/fhir/ServiceRequest?patient=Patient/{RESIDENT}&status=revoked"),
            &w.doctor,
        )
        .await
        .entries()
        .is_empty());
    // The organisation ids are the directory's.
    let org = w
        .get(&format!("/fhir/Organization/unit-{}", w.lead.id), &w.doctor)
        .await;
    assert_eq!(org.status, StatusCode::OK);

    // The slot is taken: another key gets 409 naming the slot, and the slot reads busy.
    let taken = w
        .post("/fhir/Appointment", &w.doctor, Some("k2"), &body)
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text);
    assert_eq!(taken.expressions(), ["Appointment.slot"]);
    let slot = w
        .get(&format!("/fhir/Slot/{}", reserved[0]), &w.doctor)
        .await;
    assert_eq!(slot.status, StatusCode::OK, "{}", slot.text);
    assert_eq!(slot.json()["status"], "busy");

    // The appointment reads back, and the read is audited.
    let read = w
        .get(&format!("/fhir/Appointment/{id}"), &w.specialist)
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert!(read.json()["identifier"][0]["value"]
        .as_str()
        .unwrap()
        .starts_with("BK"));
    let mine = w
        .get(
            &format!("/fhir/Appointment?patient=Patient/{RESIDENT}"),
            &w.doctor,
        )
        .await;
    assert_eq!(mine.entries().len(), 1, "{}", mine.text);
    let audit = w
        .store
        .list_audit(&AuditFilter {
            action_prefix: Some("fhir.read".into()),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(
        audit.iter().any(|e| e.resource_type == "Appointment"
            && e.resource_id.as_deref() == Some(id.as_str())
            && e.actor_username == "sp"),
        "{audit:?}"
    );
}

async fn other_units_and_bad_requests_are_refused(db: &TestDb) {
    let w = world(db).await;
    let slots = w.slots("").await;
    let reserved: Vec<String> = slots
        .iter()
        .filter(|s| is_reserved(s))
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let ordinary: Vec<String> = slots
        .iter()
        .filter(|s| !is_reserved(s))
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();

    // A doctor of another group's unit may neither read nor book the referral.
    let read = w
        .get(&format!("/fhir/ServiceRequest/{}", w.referral), &w.stranger)
        .await;
    assert_eq!(read.status, StatusCode::FORBIDDEN, "{}", read.text);
    assert_eq!(read.content_type, "application/fhir+json");
    assert_eq!(read.json()["resourceType"], "OperationOutcome");
    assert_eq!(read.json()["issue"][0]["code"], "forbidden");
    let booked = w
        .post(
            "/fhir/Appointment",
            &w.stranger,
            Some("s1"),
            &w.appointment(&reserved[1], Some(w.referral)),
        )
        .await;
    assert_eq!(booked.status, StatusCode::FORBIDDEN, "{}", booked.text);
    assert_eq!(booked.json()["resourceType"], "OperationOutcome");
    assert!(w
        .get(
            &format!("/fhir/ServiceRequest?patient=Patient/{RESIDENT}"),
            &w.stranger
        )
        .await
        .entries()
        .is_empty());
    // The refusals are audited, and nothing was booked.
    let denied = w
        .store
        .list_audit(&AuditFilter {
            action_prefix: Some("access.denied".into()),
            username: Some("other".into()),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(denied.len(), 2, "{denied:?}");
    let slot = w
        .get(&format!("/fhir/Slot/{}", reserved[1]), &w.doctor)
        .await;
    assert_eq!(slot.json()["status"], "free");
    // Administrators steer with aggregates: no patient-level reads.
    let admin = w.get("/fhir/ServiceRequest", &w.admin).await;
    assert_eq!(admin.status, StatusCode::FORBIDDEN, "{}", admin.text);
    assert_eq!(
        w.get("/fhir/Task", "").await.status,
        StatusCode::UNAUTHORIZED
    );

    // The lead's own specialist books without a referral: a reserved slot is refused by the
    // policy (422 naming the slot), an ordinary one is booked through $book.
    let general = w
        .post(
            "/fhir/Appointment",
            &w.specialist,
            Some("g1"),
            &w.appointment(&reserved[2], None),
        )
        .await;
    assert_eq!(
        general.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        general.text
    );
    assert_eq!(general.expressions(), ["Appointment.slot"]);
    assert!(
        general.text.contains("reserved for referrals"),
        "{}",
        general.text
    );
    let params = json!({
        "resourceType": "Parameters",
        "parameter": [{"name": "appointment", "resource": w.appointment(&ordinary[0], None)}],
    });
    let op = w
        .post("/fhir/Appointment/$book", &w.specialist, None, &params)
        .await;
    assert_eq!(op.status, StatusCode::CREATED, "{}", op.text);
    let a = op.json();
    assert_eq!(a["status"], "booked");
    assert!(a.get("basedOn").is_none());
    assert_eq!(a["slot"][0]["reference"], format!("Slot/{}", ordinary[0]));
    // Without a key the body's digest is the key: the same body books once.
    let op2 = w
        .post("/fhir/Appointment/$book", &w.specialist, None, &params)
        .await;
    assert_eq!(op2.status, StatusCode::CREATED, "{}", op2.text);
    assert_eq!(op2.json()["id"], a["id"]);
    // A family doctor of the primary unit may not take the lead's capacity without a referral.
    let fd = w
        .post(
            "/fhir/Appointment",
            &w.doctor,
            Some("g2"),
            &w.appointment(&ordinary[1], None),
        )
        .await;
    assert_eq!(fd.status, StatusCode::FORBIDDEN, "{}", fd.text);

    // Malformed bookings name the element to fix.
    let bad = w
        .post(
            "/fhir/Appointment",
            &w.doctor,
            Some("b1"),
            &json!({"resourceType": "Appointment", "slot": [], "participant": []}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert_eq!(
        bad.expressions(),
        ["Appointment.slot", "Appointment.participant"]
    );
    let unknown = w
        .post(
            "/fhir/Appointment",
            &w.doctor,
            Some("b2"),
            &w.appointment(&reserved[3], Some(999_999)),
        )
        .await;
    assert_eq!(
        unknown.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unknown.text
    );
    assert_eq!(unknown.expressions(), ["Appointment.basedOn"]);
    let not_json = w
        .send(
            Request::post("/fhir/Appointment")
                .header(header::AUTHORIZATION, format!("Bearer {}", w.doctor))
                .body(Body::from("{"))
                .unwrap(),
        )
        .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    let bad_date = w.get("/fhir/Slot?start=ge24/11/2026", &w.doctor).await;
    assert_eq!(bad_date.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad_date.expressions(), ["start"]);
}

on_both!(
    booking_a_referral_through_fhir,
    other_units_and_bad_requests_are_refused
);
