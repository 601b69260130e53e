//! The facts the cube is built from, as the store (or a columnar file) hands them over: one
//! small `Copy` struct per kind of fact, days as dates and codes borrowed from the reader's
//! buffers, so that feeding tens of millions of them allocates nothing per fact.

use chrono::NaiveDate;

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

#[derive(Debug, Clone, Copy)]
pub struct ResidentFact {
    pub id: i64,
    /// The primary unit whose area the resident lives in.
    pub home_unit: i64,
    pub birth_date: NaiveDate,
    pub hypertension: bool,
    pub diabetes: bool,
    /// Severe mental illness or a current pregnancy: key population whatever the age.
    pub other_key_condition: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct ContractFact {
    pub resident: i64,
    pub signed_on: NaiveDate,
    /// The day it ends (no longer in force that day).
    pub ends_on: NaiveDate,
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

#[derive(Debug, Clone, Copy)]
pub struct FollowUpFact {
    pub id: i64,
    pub resident: i64,
    pub managing_unit: i64,
    pub program: Program,
    pub due_on: NaiveDate,
    pub done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncounterKind {
    /// Outpatient or emergency.
    Visit,
    Inpatient,
}

#[derive(Debug, Clone, Copy)]
pub struct EncounterFact<'a> {
    pub id: i64,
    pub resident: i64,
    /// Where it took place; `None` out of region.
    pub place_unit: Option<i64>,
    pub department: Option<&'a str>,
    pub kind: EncounterKind,
    pub in_region: bool,
    /// ICD-10.
    pub diagnosis: &'a str,
    /// The day of arrival or admission.
    pub started_on: NaiveDate,
    /// The day the visit ended or the patient was discharged.
    pub ended_on: NaiveDate,
}

#[derive(Debug, Clone, Copy)]
pub struct ReferralFact<'a> {
    pub id: i64,
    pub from_unit: i64,
    pub up: bool,
    pub diagnosis: &'a str,
    pub requested_on: NaiveDate,
}

#[derive(Debug, Clone, Copy)]
pub struct PrescriptionFact {
    pub id: i64,
    pub unit: i64,
    /// The day of the prescribing visit.
    pub day: NaiveDate,
    pub essential: bool,
}

#[derive(Debug, Clone, Copy)]
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
