//! The facts the cube is built from, as the store (or a columnar file) hands them over: one
//! struct per kind of fact, days as stored (`YYYY-MM-DD…`, which compare as they read).

/// What a unit is, as far as the measures care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitKind {
    /// 牵头医院.
    Lead,
    /// Community health centres, township hospitals, village clinics (基层).
    Primary,
    Other,
}

impl UnitKind {
    /// From the registry's unit role.
    pub fn of_role(role: &str) -> UnitKind {
        match role {
            "lead" => UnitKind::Lead,
            "primary" | "village" => UnitKind::Primary,
            _ => UnitKind::Other,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ResidentFact {
    pub id: i64,
    /// The primary unit whose area the resident lives in.
    pub home_unit: i64,
    pub birth_date: String,
    pub hypertension: bool,
    pub diabetes: bool,
    /// Severe mental illness or a current pregnancy: key population whatever the age.
    pub other_key_condition: bool,
}

#[derive(Debug, Clone)]
pub struct ContractFact {
    pub resident: i64,
    pub signed_on: String,
    /// The day it ends (no longer in force that day).
    pub ends_on: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    Hypertension,
    Diabetes,
    Other,
}

impl Program {
    pub fn parse(program: &str) -> Program {
        match program {
            "hypertension" => Program::Hypertension,
            "diabetes" => Program::Diabetes,
            _ => Program::Other,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FollowUpFact {
    pub id: i64,
    pub resident: i64,
    pub managing_unit: i64,
    pub program: Program,
    pub due_on: String,
    pub done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncounterKind {
    /// Outpatient or emergency.
    Visit,
    Inpatient,
}

#[derive(Debug, Clone)]
pub struct EncounterFact {
    pub id: i64,
    pub resident: i64,
    /// Where it took place; `None` out of region.
    pub place_unit: Option<i64>,
    pub department: Option<String>,
    pub kind: EncounterKind,
    pub in_region: bool,
    pub diagnosis: String,
    pub started_at: String,
    pub ended_at: String,
}

#[derive(Debug, Clone)]
pub struct ReferralFact {
    pub id: i64,
    pub from_unit: i64,
    pub up: bool,
    pub diagnosis: String,
    pub requested_at: String,
}

#[derive(Debug, Clone)]
pub struct PrescriptionFact {
    pub id: i64,
    pub unit: i64,
    /// The day of the prescribing visit.
    pub day: String,
    pub essential: bool,
}

#[derive(Debug, Clone)]
pub struct PhysicianFact {
    pub practitioner: i64,
    /// Main practice unit.
    pub unit: i64,
    pub tcm: bool,
}

/// A record behind a cell: what a drill-through lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Record {
    Resident(i64),
    Encounter(i64),
    Referral(i64),
    FollowUp(i64),
    Prescription(i64),
    Practitioner(i64),
}
