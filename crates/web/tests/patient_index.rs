//! The master patient index end to end, on SQLite and PostgreSQL: records matched on arrival
//! (linked, new, or queued for review), the review settled by the coordinator, merges that
//! move every linked row and unmerges that move exactly those rows back, masking with an
//! audited full read, refusals by role and scope, bad input that changes nothing, FHIR
//! `Patient` and `$match`, and simultaneous arrivals of one new person making one person.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should stop the test

use serde_json::{json, Value};

use medgrid_domain::access::{OrgPath, Role, ScopeKind};
use medgrid_store::patient_index::RecordDraft;
use medgrid_store::referral::ReferralDraft;
use medgrid_store::{local_now, Actor, AuditFilter};
use medgrid_testkit::TestDb;

mod support;
use support::{user, world, Reply, World, RESIDENT};

/// A GB 11643 number for a birth date and sequence, with its check character.
fn citizen_id(birth: &str, seq: u32) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const C: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let body = format!("330702{}{:03}", birth.replace('-', ""), seq % 1000);
    let sum: u32 = body
        .chars()
        .zip(W)
        .map(|(c, w)| c.to_digit(10).unwrap() * w)
        .sum();
    format!("{body}{}", C[(sum % 11) as usize])
}

async fn arrive(w: &World, token: &str, body: Value) -> Reply {
    w.post("/api/v1/patient-records", token, None, &body).await
}

async fn coordinator(w: &World) -> String {
    let group = OrgPath {
        unit: None,
        ..w.lead.path()
    };
    user(
        &w.store,
        "coord",
        Role::ReferralCoordinator,
        ScopeKind::Group,
        group,
    )
    .await
}

async fn records_matched_reviewed_merged_and_unmerged(db: &TestDb) {
    let w = world(db).await;
    let coord = coordinator(&w).await;
    let group = w.lead.group_id.unwrap();

    // The registered resident, seen again at the primary unit: linked.
    let again = json!({"unit_id": w.primary.id, "local_record_no": "P-0001", "name": "张三",
        "sex": "男", "birth_date": "1950-01-01", "phone": "13800000000", "address": "金华市婺城区"});
    let r = arrive(&w, &w.doctor, again.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let a = r.json();
    assert_eq!(a["record"]["resident_id"], RESIDENT, "{}", r.text);
    assert_eq!(a["record"]["link_state"], "matched", "{}", r.text);
    assert_eq!(a["candidates"][0]["grade"], "certain");
    // Sent again unchanged: answered, nothing written.
    let r = arrive(&w, &w.doctor, again).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["unchanged"], true);

    // A stranger: a new person.
    let stranger_id = citizen_id("1988-07-15", 42);
    let r = arrive(
        &w,
        &w.doctor,
        json!({"unit_id": w.primary.id, "local_record_no": "P-0002",
        "id_number": stranger_id, "name": "欧阳娜", "sex": "female", "birth_date": "1988-07-15",
        "phone": "+86 139 1234 5678"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let created = r.json()["record"].clone();
    assert_eq!(created["link_state"], "created", "{}", r.text);
    let p2 = created["resident_id"].as_i64().unwrap();
    assert_ne!(p2, RESIDENT);
    assert_eq!(created["id_valid"], true);

    // The resident again at the lead hospital, with a homophone, another phone and an
    // invalid ID: close, but not proof: queued for review, a person of its own meanwhile.
    let r = arrive(
        &w,
        &w.specialist,
        json!({"unit_id": w.lead.id, "local_record_no": "L-77",
        "id_number": "330702195001011230", "name": "张叁", "sex": "M", "birth_date": "1950-01-01",
        "phone": "13900000001", "address": "金华市婺城区"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let doubt = r.json()["record"].clone();
    assert_eq!(doubt["link_state"], "review", "{}", r.text);
    assert_eq!(doubt["id_valid"], false, "the ID fails its check digit");
    assert!(
        doubt["id_number"].as_str().unwrap().contains('*'),
        "masked in the answer"
    );
    let p3 = doubt["resident_id"].as_i64().unwrap();
    assert!(p3 != RESIDENT && p3 != p2);

    // Only the group's coordinator sees and settles the queue.
    let path = format!("/api/v1/groups/{group}/match-reviews");
    for token in [&w.doctor, &w.group_manager, &w.admin, &w.stranger] {
        assert_eq!(w.get(&path, token).await.status, 403);
    }
    let r = w.get(&path, &coord).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let queue = r.json();
    let listed = w
        .store
        .list_audit(&AuditFilter {
            action_prefix: Some("match_review.list".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "reading the queue is audited");
    assert_eq!(listed[0].actor_username, "coord");
    let review = queue
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["record_id"] == doubt["id"])
        .expect("the doubt is queued")
        .clone();
    assert_eq!(review["resident_id"], RESIDENT);
    let rid = review["id"].as_i64().unwrap();
    let r = w.get(&format!("/api/v1/match-reviews/{rid}"), &coord).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let d = r.json();
    let levels: Vec<&str> = d["score"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["level"].as_str().unwrap())
        .collect();
    assert_eq!(levels.len(), 6);
    assert_eq!(levels[1], "same_reading", "张三 and 张叁 read alike");
    assert_eq!(levels[3], "exact", "birth date");
    assert!(d["candidate"]["citizen_id"].as_str().unwrap().contains('*'));

    // Bad verdict: refused, nothing changes.
    let decision = format!("/api/v1/match-reviews/{rid}/decision");
    let r = w
        .post(&decision, &coord, None, &json!({"verdict": "maybe"}))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.fields(), ["verdict"]);
    // The referral of the registered resident, to see that merges never move it away.
    let own_referral = w.referral;

    // "Same": the doubtful record's person is merged into the resident.
    let r = w
        .post(&decision, &coord, None, &json!({"verdict": "same"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "same");
    let r = w
        .post(&decision, &coord, None, &json!({"verdict": "not_same"}))
        .await;
    assert_eq!(r.status, 409, "a settled review stays settled");
    let view = w
        .get(&format!("/api/v1/persons/{RESIDENT}"), &w.doctor)
        .await;
    assert_eq!(view.status, 200, "{}", view.text);
    let v = view.json();
    let numbers: Vec<&str> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["local_record_no"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["P-0001", "L-77"]);
    assert_eq!(v["merges"].as_array().unwrap().len(), 1);
    // The merged person still resolves (its old links keep working) and points on.
    let merged = w.get(&format!("/api/v1/persons/{p3}"), &coord).await;
    assert_eq!(merged.status, 200, "{}", merged.text);
    assert_eq!(merged.json()["person"]["merged_into_id"], RESIDENT);

    // An explicit merge moves every linked row, and an unmerge moves exactly those back.
    let actor = Actor::system("test");
    let f = w
        .store
        .create_referral(
            &actor,
            &ReferralDraft {
                resident_id: p2,
                from_unit_id: w.primary.id,
                to_unit_id: Some(w.lead.id),
                to_department_code: Some("XXG".into()),
                diagnosis: "I10".into(),
                reason: "血压控制不佳".into(),
                outside_catalogue_reason: "高血压急症待排".into(),
                send: true,
                ..ReferralDraft::default()
            },
            local_now(),
        )
        .await
        .unwrap();
    let before_p2 = w.get(&format!("/api/v1/persons/{p2}"), &coord).await.json();
    let merge = format!("/api/v1/persons/{RESIDENT}/merges");
    let r = w
        .post(
            &merge,
            &w.doctor,
            None,
            &json!({"merged_id": p2, "reason": "同一人"}),
        )
        .await;
    assert_eq!(r.status, 403, "a family doctor does not merge persons");
    let r = w
        .post(
            &merge,
            &coord,
            None,
            &json!({"merged_id": p2, "reason": " "}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.fields(), ["reason"]);
    let r = w
        .post(
            &merge,
            &coord,
            None,
            &json!({"merged_id": RESIDENT, "reason": "x"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let r = w
        .post(
            &merge,
            &coord,
            None,
            &json!({"merged_id": p2, "reason": "电话核实为同一人"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let merge_id = r.json()["merge_id"].as_i64().unwrap();
    let moved = w.store.referral(f.id).await.unwrap();
    assert_eq!(
        moved.resident_id, RESIDENT,
        "the referral moved with its person"
    );
    let r = w
        .post(
            &merge,
            &coord,
            None,
            &json!({"merged_id": p2, "reason": "again"}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    // A row added to the kept person after the merge stays with it.
    let later = w
        .store
        .create_referral(
            &actor,
            &ReferralDraft {
                resident_id: RESIDENT,
                from_unit_id: w.primary.id,
                to_unit_id: Some(w.lead.id),
                to_department_code: Some("XXG".into()),
                diagnosis: "E11.9".into(),
                reason: "血糖控制不佳".into(),
                outside_catalogue_reason: "糖尿病并发症评估".into(),
                send: true,
                ..ReferralDraft::default()
            },
            local_now(),
        )
        .await
        .unwrap();
    let undo = format!("/api/v1/persons/{RESIDENT}/merges/{merge_id}/undo");
    let r = w.post(&undo, &coord, None, &json!({})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = w.post(&undo, &coord, None, &json!({})).await;
    assert_eq!(r.status, 409, "an undone merge cannot be undone twice");
    assert_eq!(w.store.referral(f.id).await.unwrap().resident_id, p2);
    assert_eq!(
        w.store.referral(later.id).await.unwrap().resident_id,
        RESIDENT
    );
    assert_eq!(
        w.store.referral(own_referral).await.unwrap().resident_id,
        RESIDENT
    );
    let after_p2 = w.get(&format!("/api/v1/persons/{p2}"), &coord).await.json();
    assert_eq!(
        before_p2["records"], after_p2["records"],
        "every link restored"
    );
    assert_eq!(after_p2["person"]["merged_into_id"], Value::Null);
    assert_eq!(after_p2["merges"][0]["unmerged_by"], "coord");

    // Reading: masked by default, in full on request, each audited; refused by scope/role.
    let r = w.get(&format!("/api/v1/persons/{p2}"), &w.doctor).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let masked = r.json()["person"]["citizen_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        masked,
        format!("{}********{}", &stranger_id[..6], &stranger_id[14..])
    );
    assert_eq!(r.json()["person"]["phone"], "139****5678");
    let r = w
        .get(&format!("/api/v1/persons/{p2}?full=true"), &w.doctor)
        .await;
    assert_eq!(r.json()["person"]["citizen_id"], stranger_id);
    let audit = w
        .store
        .list_audit(&AuditFilter {
            action_prefix: Some("patient.read".into()),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(audit.iter().any(|e| e.action == "patient.read.identifiers"
        && e.resource_id.as_deref() == Some(&p2.to_string())
        && e.actor_username == "fd"));
    for token in [&w.group_manager, &w.admin, &w.stranger, &w.manager] {
        let r = w.get(&format!("/api/v1/persons/{p2}"), token).await;
        assert!(matches!(r.status.as_u16(), 403 | 404), "{}", r.text);
    }

    // Bad input names its fields and writes nothing.
    let r = arrive(
        &w,
        &w.doctor,
        json!({"unit_id": w.primary.id, "local_record_no": "",
        "name": "", "sex": "x", "birth_date": "2999-01-01", "id_type": "card"}),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let mut f = r.fields();
    f.sort();
    assert_eq!(
        f,
        ["birth_date", "id_type", "local_record_no", "name", "sex"]
    );
    let r = arrive(
        &w,
        &w.stranger,
        json!({"unit_id": w.primary.id, "local_record_no": "X",
        "name": "某", "sex": "M", "birth_date": "1990-01-01"}),
    )
    .await;
    assert_eq!(r.status, 403, "another group's doctor files nothing here");
    let r = w.get("/api/v1/persons?name=某", &w.doctor).await;
    assert_eq!(r.json().as_array().unwrap().len(), 0);

    // Search: masked.
    let r = w.get("/api/v1/persons?name=欧阳", &w.doctor).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let found = r.json();
    assert_eq!(found.as_array().unwrap().len(), 1, "{}", r.text);
    assert_eq!(found[0]["id"], p2);
    assert!(found[0]["citizen_id"].as_str().unwrap().contains('*'));

    // FHIR: read in full, search masked, $match with grades, declared in the metadata.
    let r = w.get(&format!("/fhir/Patient/{p2}"), &w.doctor).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let p = r.json();
    assert_eq!(p["resourceType"], "Patient");
    assert_eq!(p["gender"], "female");
    assert_eq!(p["identifier"][0]["value"], stranger_id);
    assert_eq!(p["identifier"][1]["value"], "P-0002");
    let r = w
        .get("/fhir/Patient?name=欧阳&gender=female", &w.doctor)
        .await;
    assert_eq!(r.entries().len(), 1, "{}", r.text);
    let r = w.get("/fhir/Patient?gender=x", &w.doctor).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.expressions(), ["gender"]);
    let params = json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {
        "resourceType": "Patient", "name": [{"text": "欧阳娜"}], "gender": "female", "birthDate": "1988-07-15",
        "telecom": [{"system": "phone", "value": "13912345678"}]}}]});
    let r = w
        .post("/fhir/Patient/$match", &w.doctor, None, &params)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let b = r.json();
    assert_eq!(
        b["entry"][0]["fullUrl"],
        format!("Patient/{p2}"),
        "{}",
        r.text
    );
    assert_eq!(
        b["entry"][0]["search"]["extension"][0]["valueCode"],
        "certain"
    );
    let r = w
        .post(
            "/fhir/Patient/$match",
            &w.doctor,
            None,
            &json!({"resourceType": "Patient"}),
        )
        .await;
    assert_eq!(r.status, 422);
    let meta = w.get("/fhir/metadata", &w.doctor).await.json();
    let patient = meta["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .expect("Patient in the CapabilityStatement")
        .clone();
    assert_eq!(patient["operation"][0]["name"], "match");
}

/// Records of one new person arriving at once, from several units, make one person.
async fn simultaneous_arrivals_make_one_person(db: &TestDb) {
    let w = world(db).await;
    let id = citizen_id("1975-03-09", 7);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = w.store.clone();
        let unit = if i % 2 == 0 { w.primary.id } else { w.lead.id };
        let draft = RecordDraft {
            unit_id: unit,
            local_record_no: format!("R-{i}"),
            id_number: Some(id.clone()),
            name: "司马光".into(),
            sex: "男".into(),
            birth_date: "1975-03-09".into(),
            phone: Some("13700001111".into()),
            ..RecordDraft::default()
        };
        tasks.push(tokio::spawn(async move {
            store
                .arrive_record(&Actor::system("feed"), &draft)
                .await
                .unwrap()
        }));
    }
    let mut persons = Vec::new();
    for t in tasks {
        persons.push(t.await.unwrap().record.resident_id);
    }
    persons.sort_unstable();
    persons.dedup();
    assert_eq!(persons.len(), 1, "one person, not {persons:?}");
    let view = w.store.person_view(persons[0]).await.unwrap();
    assert_eq!(view.records.len(), 8);
    assert_eq!(
        view.records
            .iter()
            .filter(|r| r.link_state.as_str() == "created")
            .count(),
        1,
        "the first created the person, the others joined it"
    );
}

on_both!(
    records_matched_reviewed_merged_and_unmerged,
    simultaneous_arrivals_make_one_person
);
