//! The master patient index in the database (R2.1): every unit's record of a person is matched
//! on arrival against the persons (residents) of the group, and linked, created, or sent to
//! review; reviewers settle doubts; merges move a person's rows and can be undone exactly.
//!
//! The engine (`medgrid-mpi`) judges pairs; this module chooses the candidates by blocking
//! keys in SQL, keeps the links, and makes arrivals of one person at once create one person:
//! an arrival reads and writes inside one transaction that no other arrival runs beside
//! (SQLite has one writer; PostgreSQL takes a transaction lock).

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use medgrid_domain::access::{Id, OrgPath};
use medgrid_domain::{FieldError, Invalid};
use medgrid_mpi::{Candidate, Column, Comparator, Decision, FieldKind, PairScore, Params, Value};

use crate::audit::{audit_insert, AuditEntry};
use crate::{Actor, Outcome, Store, StoreError};

/// The model for the fields every member unit records, estimated without labels on the
/// synthetic city's patient records (`medgrid mpi match … --params-out`).
const STANDARD_MODEL: &str = include_str!("../../../data/mpi/standard_model.json");

/// The columns a patient record is compared on, in the model's order.
const COLUMNS: [(&str, FieldKind); 6] = [
    ("citizen_id", FieldKind::CitizenId),
    ("name", FieldKind::Name),
    ("sex", FieldKind::Sex),
    ("birth_date", FieldKind::BirthDate),
    ("phone", FieldKind::Phone),
    ("address", FieldKind::Address),
];

static COMPARATOR: LazyLock<Result<Comparator, String>> = LazyLock::new(|| {
    let params = Params::from_json(STANDARD_MODEL)?;
    let columns = COLUMNS
        .iter()
        .map(|(name, kind)| Column {
            name: (*name).to_owned(),
            kind: *kind,
        })
        .collect();
    Comparator::new(columns, params).map_err(|e| e.to_string())
});

fn comparator() -> Result<&'static Comparator, StoreError> {
    COMPARATOR
        .as_ref()
        .map_err(|e| StoreError::Config(format!("patient index model: {e}")))
}

/// PostgreSQL transaction lock that serialises arrivals and merges (resident ids are taken
/// as the next free number, and one person's records must not race each other).
const ARRIVAL_LOCK: i64 = 7262;

/// Takes the arrival lock inside `$tx` on PostgreSQL (SQLite's one writer already is one).
macro_rules! lock_index {
    ($store:expr, $tx:expr) => {
        if $store.kind() == crate::DbKind::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(ARRIVAL_LOCK)
                .execute(&mut *$tx)
                .await?;
        }
    };
}

/// The tables whose rows belong to a resident and move with a merge.
const PERSON_TABLES: [&str; 10] = [
    "patient_record",
    "contract",
    "encounter",
    "referral",
    "follow_up",
    "exam",
    "prescription",
    "claim",
    "booking",
    "bed_booking",
];

/// Kinds of identity document a record may carry.
const ID_TYPES: [&str; 4] = ["citizen_id", "passport", "hk_macao_permit", "other"];

/// A unit's record of a person, as sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordDraft {
    pub unit_id: Id,
    pub local_record_no: String,
    /// The system that issued the local number; the unit's HIS when not given.
    #[serde(default)]
    pub issuer: Option<String>,
    /// `citizen_id` (default), `passport`, `hk_macao_permit` or `other`.
    #[serde(default)]
    pub id_type: Option<String>,
    #[serde(default)]
    pub id_number: Option<String>,
    #[serde(default)]
    pub insurance_card: Option<String>,
    pub name: String,
    pub sex: String,
    pub birth_date: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

/// How a record found its person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Above the link threshold: linked without review.
    Matched,
    /// Nobody close: a new person.
    Created,
    /// A person of its own until a reviewer decides.
    Review,
    /// Settled by a reviewer or a merge.
    Manual,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Matched => "matched",
            LinkState::Created => "created",
            LinkState::Review => "review",
            LinkState::Manual => "manual",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            LinkState::Matched => "自动关联",
            LinkState::Created => "新建主索引",
            LinkState::Review => "待人工核对",
            LinkState::Manual => "人工确认",
        }
    }

    fn parse(raw: &str) -> Result<LinkState, FieldError> {
        Ok(match raw {
            "matched" => LinkState::Matched,
            "created" => LinkState::Created,
            "review" => LinkState::Review,
            "manual" => LinkState::Manual,
            _ => {
                return Err(FieldError::new(
                    "link_state",
                    "unknown",
                    "未知关联状态",
                    "unknown link state",
                ))
            }
        })
    }
}

/// A stored patient record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatientRecord {
    pub id: Id,
    pub group_id: Id,
    pub unit_id: Id,
    pub unit_name: String,
    pub local_record_no: String,
    pub issuer: String,
    pub id_type: String,
    pub id_number: String,
    pub id_valid: bool,
    pub insurance_card: String,
    pub name: String,
    pub sex: String,
    pub birth_date: NaiveDate,
    pub phone: String,
    pub address: String,
    pub resident_id: Id,
    pub link_state: LinkState,
    pub probability: Option<f64>,
    pub model_version: String,
    pub received_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PatientRecord {
    /// What the record is matched on: its identity number only when it is a citizen ID.
    pub fn demographics(&self) -> Demographics {
        Demographics {
            citizen_id: if self.id_type == "citizen_id" {
                self.id_number.clone()
            } else {
                String::new()
            },
            name: self.name.clone(),
            sex: self.sex.clone(),
            birth_date: self.birth_date.to_string(),
            phone: self.phone.clone(),
            address: self.address.clone(),
        }
    }
}

const RECORD_COLUMNS: &str = "p.id, p.group_id, p.unit_id, u.legal_name AS unit_name, \
    p.local_record_no, p.issuer, p.id_type, p.id_number, p.id_valid, p.insurance_card, p.name, \
    p.sex, p.birth_date, p.phone, p.address, p.resident_id, p.link_state, p.probability, \
    p.model_version, p.received_at, p.updated_at";
const RECORD_FROM: &str = "FROM patient_record p JOIN unit u ON u.id = p.unit_id";

macro_rules! record_from_row {
    ($r:expr) => {{
        let r = &$r;
        PatientRecord {
            id: r.try_get("id")?,
            group_id: r.try_get("group_id")?,
            unit_id: r.try_get("unit_id")?,
            unit_name: r.try_get("unit_name")?,
            local_record_no: r.try_get("local_record_no")?,
            issuer: r.try_get("issuer")?,
            id_type: r.try_get("id_type")?,
            id_number: r.try_get("id_number")?,
            id_valid: r.try_get("id_valid")?,
            insurance_card: r.try_get("insurance_card")?,
            name: r.try_get("name")?,
            sex: r.try_get("sex")?,
            birth_date: r.try_get("birth_date")?,
            phone: r.try_get("phone")?,
            address: r.try_get("address")?,
            resident_id: r.try_get("resident_id")?,
            link_state: crate::stored(LinkState::parse, &r.try_get::<String, _>("link_state")?)?,
            probability: r.try_get("probability")?,
            model_version: r.try_get("model_version")?,
            received_at: r.try_get("received_at")?,
            updated_at: r.try_get("updated_at")?,
        }
    }};
}

/// What became of an arriving record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arrival {
    pub record: PatientRecord,
    /// The persons it may be, most likely first (those at or above the review threshold).
    pub candidates: Vec<MatchCandidate>,
    /// The same record sent again unchanged: nothing was written.
    pub unchanged: bool,
}

/// A person a record may be, with the probability from its best-agreeing record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatchCandidate {
    pub resident_id: Id,
    pub probability: f64,
    /// `certain` (link), `possible` (review) — the FHIR match grades.
    pub grade: &'static str,
}

/// The demographics a record is matched on, raw, in [`COLUMNS`] order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Demographics {
    pub citizen_id: String,
    pub name: String,
    pub sex: String,
    pub birth_date: String,
    pub phone: String,
    pub address: String,
}

impl Demographics {
    /// The values in the model's column order (that of a score's fields).
    pub fn raw(&self) -> [&str; 6] {
        [
            &self.citizen_id,
            &self.name,
            &self.sex,
            &self.birth_date,
            &self.phone,
            &self.address,
        ]
    }
}

/// A doubt waiting for, or settled by, a reviewer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatchReview {
    pub id: Id,
    pub group_id: Id,
    pub record_id: Id,
    pub resident_id: Id,
    pub probability: f64,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    /// The record's name and unit, for lists.
    pub record_name: String,
    pub record_unit: String,
    pub resident_name: String,
}

/// A reviewer's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Same,
    NotSame,
}

impl Verdict {
    pub fn parse(raw: &str) -> Result<Verdict, FieldError> {
        match raw {
            "same" => Ok(Verdict::Same),
            "not_same" => Ok(Verdict::NotSame),
            _ => Err(FieldError::new(
                "verdict",
                "invalid",
                "结论须为 same（同一人）或 not_same（不同人）",
                "must be same or not_same",
            )),
        }
    }
}

/// The resident's registered demographics, as the person view and the review show them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Person {
    pub id: Id,
    pub group_id: Id,
    pub city_id: Id,
    pub unit_id: Id,
    pub unit_name: String,
    pub citizen_id: String,
    pub name: String,
    pub sex: String,
    pub birth_date: NaiveDate,
    pub phone: String,
    pub address: String,
    pub merged_into_id: Option<Id>,
}

impl Person {
    pub fn path(&self) -> OrgPath {
        OrgPath {
            city: self.city_id,
            grid: None,
            group: Some(self.group_id),
            unit: Some(self.unit_id),
        }
    }

    pub fn demographics(&self) -> Demographics {
        Demographics {
            citizen_id: self.citizen_id.clone(),
            name: self.name.clone(),
            sex: self.sex.clone(),
            birth_date: self.birth_date.to_string(),
            phone: self.phone.clone(),
            address: self.address.clone(),
        }
    }
}

const REVIEW_SELECT: &str = "SELECT m.id, m.group_id, m.record_id, m.resident_id, m.probability, \
    m.status, m.created_at, m.decided_at, m.decided_by, p.name AS record_name, \
    u.legal_name AS record_unit, r.name AS resident_name \
    FROM match_review m JOIN patient_record p ON p.id = m.record_id \
    JOIN unit u ON u.id = p.unit_id JOIN resident r ON r.id = m.resident_id";

const PERSON_SELECT: &str =
    "SELECT r.id, r.group_id, u.city_id, r.unit_id, u.legal_name AS unit_name, \
    r.citizen_id, r.name, r.sex, r.birth_date, r.phone, r.address, r.merged_into_id \
    FROM resident r JOIN unit u ON u.id = r.unit_id";

macro_rules! person_from_row {
    ($r:expr) => {{
        let r = &$r;
        Person {
            id: r.try_get("id")?,
            group_id: r.try_get("group_id")?,
            city_id: r.try_get("city_id")?,
            unit_id: r.try_get("unit_id")?,
            unit_name: r.try_get("unit_name")?,
            citizen_id: r.try_get("citizen_id")?,
            name: r.try_get("name")?,
            sex: r.try_get("sex")?,
            birth_date: r.try_get("birth_date")?,
            phone: r.try_get("phone")?,
            address: r.try_get("address")?,
            merged_into_id: r.try_get("merged_into_id")?,
        }
    }};
}

/// A merge as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergeEvent {
    pub id: Id,
    pub kept_id: Id,
    pub merged_id: Id,
    pub reason: String,
    pub merged_at: DateTime<Utc>,
    pub merged_by: String,
    pub unmerged_at: Option<DateTime<Utc>>,
    pub unmerged_by: Option<String>,
    /// Rows moved, by table.
    pub moved: Vec<(String, i64)>,
}

/// A person with every unit's record of them and the merges they took part in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonView {
    pub person: Person,
    pub records: Vec<PatientRecord>,
    pub merges: Vec<MergeEvent>,
}

/// One review, with both sides and the evidence field by field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewDetail {
    pub review: MatchReview,
    pub record: PatientRecord,
    pub candidate: Person,
    /// The candidate's own records, beside its registered demographics.
    pub candidate_records: Vec<PatientRecord>,
    /// The record against the candidate's best-agreeing record (registered demographics
    /// first).
    pub score: PairScore,
    /// Where the best-agreeing record came from: `None` for the registered demographics.
    pub best_record_id: Option<Id>,
}

/// Filter for [`Store::search_persons`]: every given part must hold.
#[derive(Debug, Clone, Default)]
pub struct PersonFilter {
    pub group_ids: Option<Vec<Id>>,
    pub identifier: Option<String>,
    pub name: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub sex: Option<String>,
    pub phone: Option<String>,
    pub limit: i64,
}

/// A checked `YYYY-MM-DD` as the date the databases store (DATE in PostgreSQL).
fn day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

fn not_found(field: &'static str, zh: &'static str, en: &'static str) -> StoreError {
    StoreError::Invalid(Invalid::one(FieldError::new(field, "not_found", zh, en)))
}

macro_rules! review_from_row {
    ($r:expr) => {{
        let r = $r;
        Ok::<MatchReview, StoreError>(MatchReview {
            id: r.try_get("id")?,
            group_id: r.try_get("group_id")?,
            record_id: r.try_get("record_id")?,
            resident_id: r.try_get("resident_id")?,
            probability: r.try_get("probability")?,
            status: r.try_get("status")?,
            created_at: r.try_get("created_at")?,
            decided_at: r.try_get("decided_at")?,
            decided_by: r.try_get("decided_by")?,
            record_name: r.try_get("record_name")?,
            record_unit: r.try_get("record_unit")?,
            resident_name: r.try_get("resident_name")?,
        })
    }};
}

#[macro_use]
mod merge;
mod arrival;
mod person;
mod review;
