//! What the referral tests share: both databases, one resident, and a small world of the
//! Jinhua layout with its staff, an open cardiology session at the lead hospital and an
//! accepted up-referral to it.

#![allow(dead_code)] // each test binary uses its own part of this

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use medgrid_domain::access::{OrgPath, Principal, Role, Scope, ScopeKind};
use medgrid_domain::org::layout::parse_layout;
use medgrid_domain::org::{MemberRole, Unit};
use medgrid_store::booking::SessionDraft;
use medgrid_store::referral::{Move, ReferralDraft};
use medgrid_store::{local_now, Actor, DbKind, NewUser, Store};
use medgrid_testkit::TestDb;
use medgrid_web::{auth, router, AppState, WebConfig};

const JINHUA: &[u8] = include_bytes!("../../../../data/layouts/jinhua.csv");
const STAFF_SEED: u64 = 7;
pub const RESIDENT: i64 = 900_001;

/// Both backends, as `on_both_databases!` declares them; these tests also need the database's
/// URL (see `add_resident`), which that macro does not hand over.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = medgrid_testkit::TestDb::new(medgrid_store::DbKind::Sqlite).await;
                    super::$name(&db).await;
                    db.finish().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = medgrid_testkit::TestDb::new(medgrid_store::DbKind::Postgres).await;
                    super::$name(&db).await;
                    db.finish().await;
                }
            )+
        }
    };
}

/// One resident, written with the database's own client: the store has no call that creates
/// a single resident (residents arrive with the synthetic city, whose parameters this crate
/// cannot name).
pub fn add_resident(db: &TestDb, unit: &Unit) {
    let statement = format!(
        "INSERT INTO resident (id, household_id, citizen_id, name, sex, birth_date, phone, \
         address, unit_id, group_id, grid_code, insurance, hypertension, diabetes, \
         severe_mental_illness) VALUES ({RESIDENT}, 1, '330702195001011234', '张三', 'M', \
         '1950-01-01', '13800000000', '金华市婺城区', {}, {}, 'G1', 'urban_employee', \
         TRUE, FALSE, FALSE)",
        unit.id,
        unit.group_id.unwrap()
    );
    let out = sql(db, &statement);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs one SQL statement with the database's own command-line client, beside the store:
/// for what the store offers no call for, and to show what the database itself refuses.
/// Output is unaligned, one row a line, columns split by `|`.
pub fn sql(db: &TestDb, statement: &str) -> std::process::Output {
    match db.store.kind() {
        DbKind::Sqlite => {
            let path = db.url.strip_prefix("sqlite://").unwrap();
            std::process::Command::new("sqlite3")
                .args(["-cmd", ".timeout 10000", path, statement])
                .output()
                .expect("sqlite3 on PATH")
        }
        DbKind::Postgres => std::process::Command::new("psql")
            .args([
                db.url.as_str(),
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-A",
                "-t",
                "-c",
                statement,
            ])
            .output()
            .expect("psql on PATH"),
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: axum::http::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The fields a problem answer names, in its order.
    pub fn fields(&self) -> Vec<String> {
        self.json()["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["field"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The resources of a search-set bundle.
    pub fn entries(&self) -> Vec<Value> {
        let b = self.json();
        assert_eq!(b["resourceType"], "Bundle", "{}", self.text);
        b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"].clone())
            .collect()
    }

    /// The `expression`s of an OperationOutcome's issues.
    pub fn expressions(&self) -> Vec<String> {
        let o = self.json();
        assert_eq!(o["resourceType"], "OperationOutcome", "{}", self.text);
        o["issue"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|i| i["expression"].as_array().cloned().unwrap_or_default())
            .map(|e| e.as_str().unwrap().to_owned())
            .collect()
    }
}

pub struct World {
    pub router: Router,
    pub store: Store,
    pub lead: Unit,
    pub primary: Unit,
    pub session: i64,
    pub referral: i64,
    /// Family doctor of the referring primary unit.
    pub doctor: String,
    /// Specialist of the lead hospital (the receiving unit).
    pub specialist: String,
    /// Family doctor of a unit of another group.
    pub stranger: String,
    pub admin: String,
    /// Member manager of the lead hospital.
    pub manager: String,
    /// Group manager of the lead hospital's group.
    pub group_manager: String,
}

pub async fn user(store: &Store, name: &str, role: Role, kind: ScopeKind, path: OrgPath) -> String {
    let user = store
        .create_user(
            &Actor::system("test"),
            &NewUser {
                username: name.into(),
                display_name: name.into(),
                role,
                scope: Scope { kind, path },
                password_hash: None,
            },
        )
        .await
        .unwrap();
    let (secret, prefix, hash) = auth::new_token();
    store
        .create_token(&Actor::system("test"), &user, "test", &prefix, &hash)
        .await
        .unwrap();
    secret
}

/// The Jinhua layout with its staff, one resident of a primary unit, a cardiology (XXG)
/// session at the group's lead hospital three days from now (open to booking), and the
/// resident's up-referral there, sent and accepted.
/// The city's insurance officer (the bureau's, scoped to the whole city).
pub async fn insurance_officer(w: &World) -> String {
    user(
        &w.store,
        "insurer",
        Role::InsuranceOfficer,
        ScopeKind::City,
        OrgPath::city(w.lead.path().city),
    )
    .await
}

pub async fn world(db: &TestDb) -> World {
    world_with(db, None).await
}

/// The same world, on a synthetic city generated with `population` when given (its seed must
/// be the staff seed, 7: the city's teams name the registered practitioners).
pub async fn world_with(db: &TestDb, population: Option<medgrid_sim::Params>) -> World {
    let store = db.store.clone();
    let actor = Actor::system("test");
    let layout = parse_layout(JINHUA).unwrap();
    let city = store.import_layout(&actor, &layout).await.unwrap().city_id;
    store
        .register_staff(&actor, city, &layout, STAFF_SEED)
        .await
        .unwrap();
    if let Some(params) = population {
        store
            .load_population(&actor, city, &layout, &params, |_| {})
            .await
            .unwrap();
    }
    let tree = store.city_tree(city).await.unwrap();
    let lead = tree
        .units
        .iter()
        .find(|u| u.role == MemberRole::Lead)
        .unwrap()
        .clone();
    let primary = tree
        .units
        .iter()
        .find(|u| u.role == MemberRole::Primary && u.group_id == lead.group_id)
        .unwrap()
        .clone();
    let elsewhere = tree
        .units
        .iter()
        .find(|u| u.group_id.is_some() && u.group_id != lead.group_id)
        .unwrap()
        .clone();
    add_resident(db, &primary);
    let state = AppState::new(store.clone(), WebConfig::default()).unwrap();
    let starts_at = (local_now().date() + chrono::Days::new(3))
        .and_hms_opt(8, 0, 0)
        .unwrap();
    let (session, slots) = store
        .open_care_session(
            &actor,
            &lead,
            &SessionDraft {
                department_code: "XXG".into(),
                practitioner_id: None,
                starts_at,
                slot_minutes: 10,
                capacity: 30,
                reserved: 10,
            },
            &state.policy,
        )
        .await
        .unwrap();
    assert_eq!(slots.iter().filter(|s| s.reserved).count(), 10);
    let f = store
        .create_referral(
            &actor,
            &ReferralDraft {
                resident_id: RESIDENT,
                from_unit_id: primary.id,
                to_unit_id: Some(lead.id),
                to_department_code: Some("XXG".into()),
                diagnosis: "I21.0".into(),
                reason: "胸痛待查".into(),
                summary: "反复胸痛三天".into(),
                send: true,
                ..ReferralDraft::default()
            },
            local_now(),
        )
        .await
        .unwrap();
    let receiver = Principal {
        user_id: 0,
        username: "receiver".into(),
        role: Role::Specialist,
        scope: Scope {
            kind: ScopeKind::Unit,
            path: lead.path(),
        },
    };
    store
        .move_referral(
            &actor,
            &receiver,
            f.id,
            &Move::Accept {
                note: String::new(),
            },
            local_now(),
        )
        .await
        .unwrap();
    let doctor = user(
        &store,
        "fd",
        Role::FamilyDoctor,
        ScopeKind::Unit,
        primary.path(),
    )
    .await;
    let specialist = user(&store, "sp", Role::Specialist, ScopeKind::Unit, lead.path()).await;
    let stranger = user(
        &store,
        "other",
        Role::FamilyDoctor,
        ScopeKind::Unit,
        elsewhere.path(),
    )
    .await;
    let admin = user(
        &store,
        "admin",
        Role::SystemAdmin,
        ScopeKind::City,
        OrgPath::city(city),
    )
    .await;
    let manager = user(
        &store,
        "mm",
        Role::MemberManager,
        ScopeKind::Unit,
        lead.path(),
    )
    .await;
    let group_path = OrgPath {
        unit: None,
        ..lead.path()
    };
    let group_manager = user(
        &store,
        "gm",
        Role::GroupManager,
        ScopeKind::Group,
        group_path,
    )
    .await;
    World {
        manager,
        group_manager,
        router: router(state),
        store,
        lead,
        primary,
        session,
        referral: f.id,
        doctor,
        specialist,
        stranger,
        admin,
    }
}

impl World {
    pub async fn send(&self, req: Request<Body>) -> Reply {
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

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        let mut req = Request::get(path);
        if !token.is_empty() {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }

    pub async fn post(&self, path: &str, token: &str, key: Option<&str>, body: &Value) -> Reply {
        let mut req = Request::post(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/fhir+json");
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        self.send(req.body(Body::from(body.to_string())).unwrap())
            .await
    }

    /// A file sent as the request body (CSV uploads).
    pub async fn post_raw(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        body: &[u8],
    ) -> Reply {
        let req = Request::post(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, content_type);
        self.send(req.body(Body::from(body.to_vec())).unwrap())
            .await
    }
}
