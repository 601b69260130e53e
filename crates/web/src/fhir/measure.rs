//! FHIR `Measure` (one per indicator of the library) and `MeasureReport` (an indicator's
//! value for an organisation and period, a summary report with its numerator and denominator
//! populations). Reports are read with `ReportRead` on the organisation, as on the cockpit.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use serde_json::{json, Value};

use medgrid_domain::indicator::{Direction, Formula, Indicator, Period};
use medgrid_domain::{FieldError, Invalid};

use super::{count_param, reference_id, searchset, Fhir, FhirCaller, Resource};
use crate::error::AppError;
use crate::indicators::{self, BoardQuery, IndicatorValue};
use crate::AppState;

pub const SYS_MEASURE: &str = "urn:medgrid:Measure";
const SYS_POPULATION: &str = "http://terminology.hl7.org/CodeSystem/measure-population";
const SYS_SCORING: &str = "http://terminology.hl7.org/CodeSystem/measure-scoring";
const SYS_IMPROVEMENT: &str = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation";

/// FHIR ids allow letters, digits, `-` and `.`: the indicator's id with hyphens.
pub fn measure_id(indicator_id: &str) -> String {
    indicator_id.replace('_', "-")
}

fn indicator_of<'a>(state: &'a AppState, id: &str) -> Option<&'a Indicator> {
    state.library.get(&id.replace('-', "_"))
}

fn population(code: &str, criteria: &str) -> Value {
    json!({
        "code": {"coding": [{"system": SYS_POPULATION, "code": code}]},
        "criteria": {"language": "text/plain", "expression": criteria},
    })
}

fn measure(state: &AppState, i: &Indicator) -> Value {
    let (scoring, populations) = match &i.formula {
        Formula::Ratio {
            numerator,
            denominator,
            ..
        } => (
            if i.unit == "%" { "proportion" } else { "ratio" },
            vec![
                population("numerator", numerator),
                population("denominator", denominator),
            ],
        ),
        Formula::Growth { measure } => (
            "ratio",
            vec![
                population(
                    "numerator",
                    &format!("{measure} (period) − {measure} (a year earlier)"),
                ),
                population("denominator", &format!("{measure} (a year earlier)")),
            ],
        ),
    };
    json!({
        "resourceType": "Measure",
        "id": measure_id(&i.id),
        "url": format!("{SYS_MEASURE}/{}", measure_id(&i.id)),
        "version": state.library.version,
        "name": i.id,
        "title": i.name_zh,
        "subtitle": i.name_en,
        "status": "active",
        "publisher": "medgrid",
        "description": format!("{}\n\n{}", i.definition_zh, i.definition_en),
        "purpose": format!("{} — {}", i.requirement, i.source),
        "scoring": {"coding": [{"system": SYS_SCORING, "code": scoring}]},
        "improvementNotation": {"coding": [{"system": SYS_IMPROVEMENT,
            "code": match i.direction { Direction::Higher => "increase", Direction::Lower => "decrease" }}]},
        "guidance": i.national_definition.clone().unwrap_or_default(),
        "group": [{"population": populations}],
    })
}

/// `GET /fhir/Measure`: the whole library (`_id`, `name` narrow it).
pub async fn search_measures(
    State(state): State<AppState>,
    FhirCaller(_caller): FhirCaller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Resource, Fhir> {
    let count = count_param(q.get("_count").map(String::as_str))?;
    let found: Vec<Value> = state
        .library
        .indicators
        .iter()
        .filter(|i| q.get("_id").is_none_or(|id| measure_id(&i.id) == *id))
        .filter(|i| {
            q.get("name")
                .is_none_or(|n| super::string_matches(&format!("{} {}", i.id, i.name_zh), n))
        })
        .map(|i| measure(&state, i))
        .collect();
    Ok(Resource(searchset("Measure", found, count)))
}

pub async fn read_measure(
    State(state): State<AppState>,
    FhirCaller(_caller): FhirCaller,
    Path(id): Path<String>,
) -> Result<Resource, Fhir> {
    let i = indicator_of(&state, &id).ok_or(Fhir(AppError::NotFound))?;
    Ok(Resource(measure(&state, i)))
}

fn report(subject: &str, r: &IndicatorValue, period: Period) -> Value {
    let (first, last) = period.bounds();
    let mut group = json!({
        "population": [
            {"code": {"coding": [{"system": SYS_POPULATION, "code": "numerator"}]}, "count": r.numerator},
            {"code": {"coding": [{"system": SYS_POPULATION, "code": "denominator"}]}, "count": r.denominator},
        ],
    });
    if let Some(v) = r.value.as_deref().and_then(|v| v.parse::<f64>().ok()) {
        group["measureScore"] = json!({"value": v, "unit": r.unit});
    }
    let mut report = json!({
        "resourceType": "MeasureReport",
        "id": format!("{}.{}.{}", measure_id(&r.indicator_id), subject.replace('/', "."), period),
        "status": "complete",
        "type": "summary",
        "measure": format!("{SYS_MEASURE}/{}", measure_id(&r.indicator_id)),
        "subject": {"reference": format!("Organization/{}", subject.split('/').next().unwrap_or(subject))},
        "period": {"start": first.first_day(), "end": format!("{}", last_day(last))},
        "group": [group],
    });
    if r.rag != "none" {
        report["extension"] = json!([{
            "url": "urn:medgrid:StructureDefinition:rag",
            "valueCode": r.rag,
        }]);
    }
    report
}

fn last_day(m: medgrid_domain::indicator::Month) -> String {
    chrono::NaiveDate::parse_from_str(&m.end_day(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.pred_opt())
        .map(|d| d.to_string())
        .unwrap_or_default()
}

/// `GET /fhir/MeasureReport?subject=Organization/group-1&period=2025-Q1[&measure=…]`: the
/// indicators' values for that organisation and period, computed as the cockpit shows them.
pub async fn search_reports(
    State(state): State<AppState>,
    FhirCaller(caller): FhirCaller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Resource, Fhir> {
    let count = count_param(q.get("_count").map(String::as_str))?;
    let org = q
        .get("subject")
        .or_else(|| q.get("reporter"))
        .map(|s| reference_id(s, "Organization").to_owned());
    let board = indicators::board(
        &state,
        &caller,
        &BoardQuery {
            org,
            department: None,
            period: q.get("period").cloned(),
            period_kind: None,
        },
    )
    .await?;
    let period = Period::parse("period", &board.period)
        .map_err(|e| Fhir(AppError::Invalid(Invalid::one(e))))?;
    let wanted = q.get("measure").map(|m| {
        let m = m.rsplit('/').next().unwrap_or(m);
        m.replace('-', "_")
    });
    if let Some(w) = &wanted {
        if state.library.get(w).is_none() {
            return Err(Fhir(AppError::Invalid(Invalid::one(FieldError::new(
                "measure",
                "unknown",
                format!("没有指标“{w}”"),
                format!("no measure “{w}”"),
            )))));
        }
    }
    let found: Vec<Value> = board
        .rows
        .iter()
        .filter(|r| wanted.as_ref().is_none_or(|w| *w == r.indicator_id))
        .map(|r| report(&board.node.org, r, period))
        .collect();
    Ok(Resource(searchset("MeasureReport", found, count)))
}
