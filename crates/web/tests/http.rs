//! The HTTP surface through the real router, on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should stop the test

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use medgrid_domain::access::{OrgPath, Role, Scope, ScopeKind};
use medgrid_domain::org::layout::parse_layout;
use medgrid_domain::org::MemberRole;
use medgrid_store::{Actor, CityTree, NewUser, Store};
use medgrid_testkit::on_both_databases;
use medgrid_web::{auth, router, AppState, WebConfig};

const JINHUA: &[u8] = include_bytes!("../../../data/layouts/jinhua.csv");
const PASSWORD: &str = "correct horse battery";

struct App {
    router: Router,
    store: Store,
    tree: CityTree,
    admin_token: String,
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    content_type: String,
    headers: axum::http::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

impl App {
    async fn new(store: Store) -> App {
        let layout = parse_layout(JINHUA).unwrap();
        let summary = store
            .import_layout(&Actor::system("test"), &layout)
            .await
            .unwrap();
        let tree = store.city_tree(summary.city_id).await.unwrap();
        let state = AppState::new(
            store.clone(),
            WebConfig {
                max_body_bytes: 64 * 1024,
                ..WebConfig::default()
            },
        )
        .unwrap();
        let mut app = App {
            router: router(state),
            store,
            tree,
            admin_token: String::new(),
        };
        app.admin_token = app
            .user_with_token(
                "admin",
                Role::SystemAdmin,
                ScopeKind::City,
                OrgPath::city(summary.city_id),
            )
            .await;
        app
    }

    /// Creates a user with the password and returns a fresh token for them.
    async fn user_with_token(
        &self,
        username: &str,
        role: Role,
        kind: ScopeKind,
        path: OrgPath,
    ) -> String {
        let user = self
            .store
            .create_user(
                &Actor::system("test"),
                &NewUser {
                    username: username.into(),
                    display_name: username.into(),
                    role,
                    scope: Scope { kind, path },
                    password_hash: Some(auth::hash_password(PASSWORD).unwrap()),
                },
            )
            .await
            .unwrap();
        let (secret, prefix, hash) = auth::new_token();
        self.store
            .create_token(&Actor::system("test"), &user, "test", &prefix, &hash)
            .await
            .unwrap();
        secret
    }

    async fn send(&self, req: Request<Body>) -> Reply {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            content_type,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        let mut req = Request::get(path);
        if !token.is_empty() {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        let req = Request::post(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(req).await
    }

    fn group(&self, i: usize) -> &medgrid_domain::org::Group {
        &self.tree.groups[i]
    }

    fn unit(&self, group: usize, role: MemberRole) -> &medgrid_domain::org::Unit {
        let g = self.group(group).id;
        self.tree
            .units
            .iter()
            .find(|u| u.group_id == Some(g) && u.role == role)
            .unwrap()
    }
}

fn fields(reply: &Reply) -> Vec<String> {
    reply.json()["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["field"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn health_and_authentication(store: Store) {
    let app = App::new(store).await;
    assert_eq!(app.get("/healthz", "").await.status, StatusCode::OK);
    assert_eq!(app.get("/readyz", "").await.status, StatusCode::OK);
    let anon = app.get("/api/v1/me", "").await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anon.content_type, "application/problem+json");
    assert_eq!(
        anon.headers.get(header::WWW_AUTHENTICATE).unwrap(),
        "Bearer"
    );
    assert_eq!(
        app.get("/api/v1/me", "mgt_wrong").await.status,
        StatusCode::UNAUTHORIZED
    );
    let me = app.get("/api/v1/me", &app.admin_token).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["role"], "system_admin");
    // Nothing but health, login and static assets is open to the anonymous.
    for path in [
        "/fhir/metadata",
        "/fhir/Organization",
        "/api/v1/cities",
        "/api/openapi.json",
    ] {
        assert_eq!(
            app.get(path, "").await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    assert_eq!(app.get("/static/app.css", "").await.status, StatusCode::OK);
    let page = app.get("/", "").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page
        .headers
        .get(header::LOCATION)
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("/login"));
}

async fn registry_reads(store: Store) {
    let app = App::new(store).await;
    let cities = app.get("/api/v1/cities", &app.admin_token).await.json();
    assert_eq!(cities.as_array().unwrap().len(), 1);
    let city = cities[0]["id"].as_i64().unwrap();
    let tree = app
        .get(&format!("/api/v1/cities/{city}/tree"), &app.admin_token)
        .await
        .json();
    assert_eq!(tree["groups"].as_array().unwrap().len(), 3);
    let leads = app
        .get("/api/v1/units?role=lead", &app.admin_token)
        .await
        .json();
    assert_eq!(leads.as_array().unwrap().len(), 3);
    let bad = app.get("/api/v1/units?role=king", &app.admin_token).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&bad), ["role"]);
    let checks = app
        .get(&format!("/api/v1/cities/{city}/checks"), &app.admin_token)
        .await
        .json();
    assert!(checks
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["severity"] != "error"));
    assert_eq!(
        app.get("/api/v1/units/999999", &app.admin_token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

async fn unit_creation_validates_and_conflicts(store: Store) {
    let app = App::new(store).await;
    let city = app.tree.city.id;
    let group = app.group(0).id;
    let bad = app
        .post(
            &format!("/api/v1/cities/{city}/units"),
            &app.admin_token,
            json!({"code": "x y", "legal_name": "", "role": "boss", "level": "三级", "uscc": "91350100M00010", "group_id": group}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&bad), ["code", "legal_name", "role", "uscc"]);
    assert!(bad.json()["errors"][0]["message_zh"]
        .as_str()
        .unwrap()
        .chars()
        .any(|c| c > '\u{2E80}'));

    let second_lead = app
        .post(
            &format!("/api/v1/cities/{city}/units"),
            &app.admin_token,
            json!({"code": "L2", "legal_name": "第二牵头医院", "role": "lead", "level": "tertiary", "group_id": group}),
        )
        .await;
    assert!(
        matches!(
            second_lead.status,
            StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY
        ),
        "{}",
        second_lead.text
    );
    assert!(
        !second_lead.text.contains("UNIQUE") && !second_lead.text.contains("duplicate key"),
        "no SQL leaks: {}",
        second_lead.text
    );

    let ok = app
        .post(
            &format!("/api/v1/cities/{city}/units"),
            &app.admin_token,
            json!({"code": "NEW-1", "legal_name": "新社区卫生服务中心", "role": "primary", "level": "primary", "group_id": group}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    let dup = app
        .post(
            &format!("/api/v1/cities/{city}/units"),
            &app.admin_token,
            json!({"code": "NEW-1", "legal_name": "另一个", "role": "primary", "level": "primary", "group_id": group}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(fields(&dup), ["code"]);

    let not_json = app
        .send(
            Request::post(format!("/api/v1/cities/{city}/units"))
                .header(header::AUTHORIZATION, format!("Bearer {}", app.admin_token))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{oops"))
                .unwrap(),
        )
        .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    let missing = app
        .post(
            &format!("/api/v1/cities/{city}/units"),
            &app.admin_token,
            json!({"code": "A"}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&missing), ["legal_name"]);
}

async fn oversized_bodies_are_refused(store: Store) {
    let app = App::new(store).await;
    let city = app.tree.city.id;
    let huge = "医".repeat(40_000); // 120 KB, over the 64 KB configured for tests
    let reply = app
        .post(
            &format!("/api/v1/cities/{city}/units"),
            &app.admin_token,
            json!({"code": "A", "legal_name": huge, "role": "primary", "level": "primary"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.content_type, "application/problem+json");
    let csv = app
        .send(
            Request::post("/api/v1/layouts")
                .header(header::AUTHORIZATION, format!("Bearer {}", app.admin_token))
                .header(header::CONTENT_TYPE, "text/csv")
                .body(Body::from(vec![b'a'; 100_000]))
                .unwrap(),
        )
        .await;
    assert_eq!(csv.status, StatusCode::PAYLOAD_TOO_LARGE);
}

async fn layout_import_reports_lines_and_changes_nothing(store: Store) {
    let app = App::new(store).await;
    let post_csv = |body: Vec<u8>| {
        Request::post("/api/v1/layouts")
            .header(header::AUTHORIZATION, format!("Bearer {}", app.admin_token))
            .header(header::CONTENT_TYPE, "text/csv")
            .body(Body::from(body))
            .unwrap()
    };
    let missing_column = b"kind,code,name\ncity,HZ,Hangzhou\n".to_vec();
    let r = app.send(post_csv(missing_column)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let gbk = vec![0xBD, 0xF0, 0xBB, 0xAA, b'\n'];
    let r = app.send(post_csv(gbk)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("UTF-8"), "{}", r.text);
    // The same city again: refused whole, one city remains.
    let r = app.send(post_csv(JINHUA.to_vec())).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert_eq!(app.store.count_cities().await.unwrap(), 1);
    // A new city with a second lead in one group: the line is named.
    let bad = "kind,code,name,second_name,parent,under,role,level,division_code,uscc,beds,public,services,note\n\
               city,HZ,杭州市,,,,,,330100,,,,,\n\
               grid,HZ-A,上城区,,HZ,,,,330102,,,,,\n\
               grid,HZ-B,拱墅区,,HZ,,,,330105,,,,,\n\
               group,HZ-G1,上城集团,,HZ-A,,,,,,,,,\n\
               group,HZ-G2,拱墅集团,,HZ-B,,,,,,,,,\n\
               unit,HZ-U1,甲医院,,HZ-G1,,lead,tertiary,,,,,,\n\
               unit,HZ-U2,乙医院,,HZ-G1,,lead,tertiary,,,,,,\n\
               unit,HZ-U3,丙医院,,HZ-G2,,lead,tertiary,,,,,,\n";
    let r = app.send(post_csv(bad.as_bytes().to_vec())).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(app.store.count_cities().await.unwrap(), 1);
    let good = bad.replace(
        "unit,HZ-U2,乙医院,,HZ-G1,,lead,tertiary",
        "unit,HZ-U2,乙医院,,HZ-G1,,secondary,secondary",
    );
    let r = app.send(post_csv(good.into_bytes())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json()["units"], 3);
    assert_eq!(app.store.count_cities().await.unwrap(), 2);
}

async fn access_matrix_over_http(store: Store) {
    let app = App::new(store).await;
    let unit_a = app.unit(0, MemberRole::Primary).clone();
    let unit_b = app.unit(1, MemberRole::Primary).clone();
    let mm_a = app
        .user_with_token(
            "manager.a",
            Role::MemberManager,
            ScopeKind::Unit,
            unit_a.path(),
        )
        .await;
    let mm_b = app
        .user_with_token(
            "manager.b",
            Role::MemberManager,
            ScopeKind::Unit,
            unit_b.path(),
        )
        .await;
    let doctor = app
        .user_with_token(
            "doctor.a",
            Role::FamilyDoctor,
            ScopeKind::Unit,
            unit_a.path(),
        )
        .await;
    let auditor = app
        .user_with_token(
            "auditor.g",
            Role::Auditor,
            ScopeKind::Group,
            app.group(0).path(),
        )
        .await;
    let b_id = app.store.user_by_username("manager.b").await.unwrap().id;
    let a_id = app.store.user_by_username("manager.a").await.unwrap().id;

    // A member manager sees their own unit's users, not another member's.
    assert_eq!(
        app.get(&format!("/api/v1/users/{a_id}"), &mm_a)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/api/v1/users/{b_id}"), &mm_a)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let listed = app.get("/api/v1/users", &mm_a).await.json();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"manager.a")
            && names.contains(&"doctor.a")
            && !names.contains(&"manager.b"),
        "{names:?}"
    );
    // ...may add departments to their unit only.
    let dept = json!({"code": "QK2", "name": "全科二诊室", "kind": "outpatient"});
    assert_eq!(
        app.post(
            &format!("/api/v1/units/{}/departments", unit_a.id),
            &mm_a,
            dept.clone()
        )
        .await
        .status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.post(
            &format!("/api/v1/units/{}/departments", unit_b.id),
            &mm_a,
            dept.clone()
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(
            &format!("/api/v1/units/{}/departments", unit_b.id),
            &mm_b,
            dept
        )
        .await
        .status,
        StatusCode::CREATED
    );
    // ...and cannot grant more power than they have.
    let grant = |role: &str, org: String| json!({"username": format!("new.{role}"), "role": role, "org": org, "password": "long enough password"});
    assert_eq!(
        app.post(
            "/api/v1/users",
            &mm_a,
            grant("family_doctor", format!("unit-{}", unit_a.id))
        )
        .await
        .status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.post(
            "/api/v1/users",
            &mm_a,
            grant("group_manager", format!("unit-{}", unit_a.id))
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(
            "/api/v1/users",
            &mm_a,
            grant("specialist", format!("unit-{}", unit_b.id))
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    // A family doctor manages nobody and reads no audit log.
    assert_eq!(
        app.get("/api/v1/users", &doctor).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/api/v1/audit", &doctor).await.status,
        StatusCode::FORBIDDEN
    );
    // Only a system administrator changes the city's structure.
    let unit =
        json!({"code": "X1", "legal_name": "某卫生院", "role": "primary", "level": "primary"});
    assert_eq!(
        app.post(
            &format!("/api/v1/cities/{}/units", app.tree.city.id),
            &mm_a,
            unit
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    // The group auditor sees the refusals inside their group, and not those elsewhere.
    let seen = app
        .get("/api/v1/audit?action=access.denied", &auditor)
        .await
        .json();
    let seen = seen.as_array().unwrap();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|e| e["group_id"] == json!(app.group(0).id)),
        "{seen:?}"
    );
    // Every refusal above was audited.
    let all = app
        .get(
            "/api/v1/audit?action=access.denied&limit=100",
            &app.admin_token,
        )
        .await
        .json();
    assert!(all.as_array().unwrap().len() >= 6);
}

async fn users_and_tokens(store: Store) {
    let app = App::new(store).await;
    let unit = app.unit(0, MemberRole::Primary).clone();
    let body = json!({"username": "zhang.san", "display_name": "张三", "role": "family_doctor", "org": format!("unit-{}", unit.id), "password": "long enough password"});
    let created = app
        .post("/api/v1/users", &app.admin_token, body.clone())
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.json()["org"], format!("unit-{}", unit.id));
    let dup = app.post("/api/v1/users", &app.admin_token, body).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(fields(&dup), ["username"]);
    let bad = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            json!({"username": "A B", "role": "pope", "org": "unit-99999", "password": "short"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&bad), ["username", "role", "password", "org"]);
    let grid = app.post("/api/v1/users", &app.admin_token, json!({"username": "gridder", "role": "auditor", "org": format!("grid-{}", app.tree.grids[0].id)})).await;
    assert_eq!(fields(&grid), ["org"]);

    let id = created.json()["id"].as_i64().unwrap();
    let issued = app
        .post(
            &format!("/api/v1/users/{id}/tokens"),
            &app.admin_token,
            json!({"name": "HIS"}),
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED);
    let secret = issued.json()["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/api/v1/me", &secret).await.json()["username"],
        "zhang.san"
    );
    let listed = app
        .get(&format!("/api/v1/users/{id}/tokens"), &app.admin_token)
        .await;
    assert!(!listed.text.contains(&secret), "secrets are never listed");
    let token_id = issued.json()["id"].as_i64().unwrap();
    assert_eq!(
        app.post(
            &format!("/api/v1/tokens/{token_id}/revoke"),
            &secret,
            json!({})
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/me", &secret).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Disabling an account ends its access.
    let (s2, ..) = {
        let r = app
            .post(
                &format!("/api/v1/users/{id}/tokens"),
                &app.admin_token,
                json!({}),
            )
            .await;
        (r.json()["secret"].as_str().unwrap().to_owned(), ())
    };
    assert_eq!(
        app.post(
            &format!("/api/v1/users/{id}/disable"),
            &app.admin_token,
            json!({})
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/me", &s2).await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn fhir_organization_and_practitioners(store: Store) {
    let app = App::new(store).await;
    let meta = app.get("/fhir/metadata", &app.admin_token).await;
    assert_eq!(meta.status, StatusCode::OK);
    assert_eq!(meta.content_type, "application/fhir+json");
    let meta = meta.json();
    assert_eq!(meta["resourceType"], "CapabilityStatement");
    assert_eq!(meta["fhirVersion"], "4.0.1");
    let types: Vec<&str> = meta["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "Organization",
            "Patient",
            "Practitioner",
            "PractitionerRole",
            "ServiceRequest",
            "Task",
            "Schedule",
            "Slot",
            "Appointment",
            "Measure",
            "MeasureReport"
        ]
    );

    let groups = app
        .get("/fhir/Organization?type=group", &app.admin_token)
        .await
        .json();
    assert_eq!(groups["resourceType"], "Bundle");
    assert_eq!(groups["total"], 3);
    let group = app.group(0);
    let members = app
        .get(
            &format!("/fhir/Organization?partof=Organization/group-{}", group.id),
            &app.admin_token,
        )
        .await
        .json();
    let expected = app
        .tree
        .units
        .iter()
        .filter(|u| u.group_id == Some(group.id))
        .count();
    assert_eq!(members["total"], expected);
    let lead = app.unit(0, MemberRole::Lead);
    let by_name = app
        .get(
            &format!("/fhir/Organization?name={}", urlencode(&lead.legal_name)),
            &app.admin_token,
        )
        .await
        .json();
    assert!(by_name["entry"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["resource"]["id"] == format!("unit-{}", lead.id)));
    let read = app
        .get(
            &format!("/fhir/Organization/unit-{}", lead.id),
            &app.admin_token,
        )
        .await
        .json();
    assert_eq!(
        read["partOf"]["reference"],
        format!("Organization/group-{}", group.id)
    );
    assert_eq!(read["name"], lead.legal_name);
    let group_res = app
        .get(
            &format!("/fhir/Organization/group-{}", group.id),
            &app.admin_token,
        )
        .await
        .json();
    assert_eq!(
        group_res["partOf"]["reference"],
        format!("Organization/grid-{}", group.grid_id)
    );
    let missing = app
        .get("/fhir/Organization/unit-999999", &app.admin_token)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["resourceType"], "OperationOutcome");
    assert_eq!(
        app.get("/fhir/Organization?_count=many", &app.admin_token)
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let anon = app.get("/fhir/Organization", "").await;
    assert_eq!(anon.json()["issue"][0]["code"], "login");

    let p = app
        .post(
            "/api/v1/practitioners",
            &app.admin_token,
            json!({"licence_no": "110330700000009", "name": "曾国华", "sex": "male", "title": "主任医师", "unit_id": lead.id}),
        )
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.text);
    let pid = p.json()["id"].as_i64().unwrap();
    let primary = app.unit(0, MemberRole::Primary);
    assert_eq!(
        app.post(
            &format!("/api/v1/practitioners/{pid}/sites"),
            &app.admin_token,
            json!({"unit_id": primary.id})
        )
        .await
        .status,
        StatusCode::CREATED
    );
    let found = app
        .get(
            &format!("/fhir/Practitioner?name={}", urlencode("国华")),
            &app.admin_token,
        )
        .await
        .json();
    assert_eq!(found["total"], 1);
    assert_eq!(
        found["entry"][0]["resource"]["qualification"][0]["code"]["text"],
        "主任医师"
    );
    let roles = app
        .get(
            &format!("/fhir/PractitionerRole?practitioner=Practitioner/{pid}"),
            &app.admin_token,
        )
        .await
        .json();
    assert_eq!(roles["total"], 2);
    let at_primary = app
        .get(
            &format!(
                "/fhir/PractitionerRole?organization=Organization/unit-{}",
                primary.id
            ),
            &app.admin_token,
        )
        .await
        .json();
    assert_eq!(at_primary["total"], 1);
    let role_id = at_primary["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let role = app
        .get(
            &format!("/fhir/PractitionerRole/{role_id}"),
            &app.admin_token,
        )
        .await
        .json();
    assert_eq!(
        role["practitioner"]["reference"],
        format!("Practitioner/{pid}")
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Logs in through the form, returning the session cookie.
async fn ui_login(app: &App, username: &str, password: &str) -> Result<String, Reply> {
    let page = app.get("/login", "").await;
    assert_eq!(page.status, StatusCode::OK);
    let cookie = page
        .headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = page
        .text
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let form = format!(
        "username={username}&password={}&csrf={csrf}&next=%2F",
        password.replace(' ', "+")
    );
    let reply = app
        .send(
            Request::post("/login")
                .header(header::COOKIE, cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form))
                .unwrap(),
        )
        .await;
    if reply.status != StatusCode::SEE_OTHER {
        return Err(reply);
    }
    let session = reply
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(auth::SESSION_COOKIE))
        .unwrap()
        .to_owned();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    Ok(session.split(';').next().unwrap().to_owned())
}

async fn page(app: &App, cookie: &str, path: &str) -> Reply {
    app.send(
        Request::get(path)
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

async fn ui_login_csrf_and_escaping(store: Store) {
    let app = App::new(store).await;
    let wrong = ui_login(&app, "admin", "wrong password!!")
        .await
        .unwrap_err();
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text.contains("用户名或密码错误"));
    let cookie = ui_login(&app, "admin", PASSWORD).await.unwrap();
    let home = page(&app, &cookie, "/").await;
    assert_eq!(home.status, StatusCode::OK);
    for g in &app.tree.groups {
        assert!(home.text.contains(&g.name), "tree shows {}", g.name);
    }
    // A name full of markup is shown as text, never as markup.
    let city = app.tree.city.id;
    let nasty = "<script>alert('x')</script>医院";
    let made = app
        .post(&format!("/api/v1/cities/{city}/units"), &app.admin_token, json!({"code": "XSS", "legal_name": nasty, "role": "primary", "level": "primary", "group_id": app.group(0).id}))
        .await;
    assert_eq!(made.status, StatusCode::CREATED);
    let id = made.json()["id"].as_i64().unwrap();
    let unit_page = page(&app, &cookie, &format!("/units/{id}")).await;
    assert_eq!(unit_page.status, StatusCode::OK);
    assert!(
        !unit_page.text.contains("<script>alert"),
        "markup must be escaped"
    );
    assert!(unit_page.text.contains("&lt;script&gt;"));
    // A form without the session's CSRF token changes nothing.
    let forged = app
        .send(
            Request::post(format!("/units/{id}/departments"))
                .header(header::COOKIE, &cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("csrf=forged&code=QK&name=x&kind=outpatient"))
                .unwrap(),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(app.store.departments(id).await.unwrap().is_empty());
    // Throttling: five wrong passwords lock the account even for the right one.
    for _ in 0..5 {
        let _ = ui_login(&app, "admin", "not the password").await;
    }
    let locked = ui_login(&app, "admin", PASSWORD).await.unwrap_err();
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    // The earlier session still works; the audit page lists the failed logins.
    let audit = page(&app, &cookie, "/audit?action=user.login").await;
    assert_eq!(audit.status, StatusCode::OK);
    assert!(audit.text.contains("拒绝"));
}

on_both_databases!(
    health_and_authentication,
    registry_reads,
    unit_creation_validates_and_conflicts,
    oversized_bodies_are_refused,
    layout_import_reports_lines_and_changes_nothing,
    access_matrix_over_http,
    users_and_tokens,
    fhir_organization_and_practitioners,
    ui_login_csrf_and_escaping,
);

/// The OpenAPI document served is the committed one (`docs/openapi.json`); regenerate with
/// `MEDGRID_BLESS=1 cargo test -p medgrid-web openapi`.
#[test]
fn openapi_document_is_committed() {
    use utoipa::OpenApi;
    let generated =
        serde_json::to_string_pretty(&medgrid_web::api::ApiDoc::openapi()).unwrap() + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    if std::env::var_os("MEDGRID_BLESS").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is stale: run MEDGRID_BLESS=1 cargo test -p medgrid-web openapi"
    );
}
