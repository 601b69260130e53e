//! The Fellegi–Sunter model: for each field and level, how often true pairs agree that way
//! (m) and how often different people do (u). A pair's evidence is the sum of log2(m/u) over
//! its fields, adjusted for how common an exactly shared name is; with the share of true
//! pairs among candidates (the prior) it becomes a probability. Parameters are data: they are
//! estimated without labels (see [`crate::em`]) and kept as versioned JSON.

use serde::{Deserialize, Serialize};

use crate::compare;
use crate::field::FieldKind;
use crate::linkage::{Column, LinkageError};

/// The format of the parameter file; a change that old files cannot be read under bumps it.
pub const FORMAT: u32 = 1;

/// Probabilities are kept away from 0 and 1 so that no single field decides alone.
pub const FLOOR: f64 = 1e-6;

/// The smallest prior: the share of true pairs among all pairs of a few million records is
/// far below [`FLOOR`], and clamping it there would add bits to every pair.
pub const PRIOR_FLOOR: f64 = 1e-15;

/// A model as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub format: u32,
    /// Names this estimate: the data it came from and when.
    pub version: String,
    /// The share of pairs that are the same person: among all pairs of records for a model
    /// whose u comes from random pairs (as estimated now), among candidate pairs for one
    /// whose u came from EM over the candidates (as older models were). Either way it is the
    /// population u describes, so the probabilities mean the same.
    pub prior: f64,
    pub fields: Vec<FieldParams>,
    /// At or above: the same person, linked without review.
    pub link_threshold: f64,
    /// At or above (and below the link threshold): a person reviews the pair.
    pub review_threshold: f64,
    /// Pairs compared while estimating, and the EM iterations it took.
    pub trained_pairs: u64,
    pub iterations: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldParams {
    pub column: String,
    pub kind: FieldKind,
    /// Per level after "missing": label, m and u.
    pub levels: Vec<LevelParams>,
    /// Whether an exact agreement is weighed by how common the value is.
    pub term_frequency: bool,
    /// The chance that two random records agree exactly on this field: the average a
    /// particular value's frequency is compared with.
    pub exact_by_chance: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelParams {
    pub label: String,
    pub m: f64,
    pub u: f64,
}

/// The default thresholds: above 0.95 a pair is linked; from 0.5 it is reviewed.
pub const LINK_THRESHOLD: f64 = 0.95;
pub const REVIEW_THRESHOLD: f64 = 0.5;

impl Params {
    /// A starting point for estimation: agreement likely for true pairs, u as given.
    pub fn initial(columns: &[(String, FieldKind)], u: &[Vec<f64>]) -> Params {
        let fields = columns
            .iter()
            .zip(u)
            .map(|((column, kind), u)| {
                let labels = &compare::levels(*kind)[1..];
                let n = labels.len();
                // m falls off geometrically from the closest level to "different".
                let raw: Vec<f64> = (0..n).map(|i| 0.5f64.powi(2 * i as i32 + 1)).collect();
                let total: f64 = raw.iter().sum();
                FieldParams {
                    column: column.clone(),
                    kind: *kind,
                    levels: labels
                        .iter()
                        .enumerate()
                        .map(|(i, label)| LevelParams {
                            label: (*label).to_owned(),
                            m: (raw[i] / total).max(FLOOR),
                            u: u.get(i).copied().unwrap_or(1.0 / n as f64).max(FLOOR),
                        })
                        .collect(),
                    term_frequency: kind.is_name(),
                    exact_by_chance: u.first().copied().unwrap_or(0.0),
                }
            })
            .collect();
        Params {
            format: FORMAT,
            version: String::new(),
            prior: 0.1,
            fields,
            link_threshold: LINK_THRESHOLD,
            review_threshold: REVIEW_THRESHOLD,
            trained_pairs: 0,
            iterations: 0,
        }
    }

    /// log2(m/u) per field and level (index 0, missing, weighs nothing).
    pub fn weights(&self) -> Vec<Vec<f64>> {
        self.fields
            .iter()
            .map(|f| {
                std::iter::once(0.0)
                    .chain(
                        f.levels
                            .iter()
                            .map(|l| (l.m.max(FLOOR) / l.u.max(FLOOR)).log2()),
                    )
                    .collect()
            })
            .collect()
    }

    /// log2 of the prior odds.
    pub fn prior_weight(&self) -> f64 {
        let p = self.prior.clamp(PRIOR_FLOOR, 1.0 - FLOOR);
        (p / (1.0 - p)).log2()
    }

    /// Reads a stored model, refusing one of another format or one that does not fit the
    /// kinds of its own fields.
    pub fn from_json(text: &str) -> Result<Params, String> {
        let p: Params = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if p.format != FORMAT {
            return Err(format!("format {} (this engine reads {FORMAT})", p.format));
        }
        for f in &p.fields {
            if f.levels.len() + 1 != compare::levels(f.kind).len() {
                return Err(format!(
                    "field {}: {} levels, a {} field has {}",
                    f.column,
                    f.levels.len(),
                    f.kind,
                    compare::levels(f.kind).len() - 1
                ));
            }
        }
        if !(0.0..=1.0).contains(&p.link_threshold)
            || !(0.0..=1.0).contains(&p.review_threshold)
            || p.review_threshold > p.link_threshold
        {
            return Err("thresholds must satisfy 0 ≤ review ≤ link ≤ 1".into());
        }
        Ok(p)
    }
}

impl Params {
    /// Refuses a model estimated for other columns: its weights would be read against the
    /// wrong fields.
    pub fn fit(&self, columns: &[Column]) -> Result<(), LinkageError> {
        let fits = self.fields.len() == columns.len()
            && self
                .fields
                .iter()
                .zip(columns)
                .all(|(f, c)| f.kind == c.kind);
        if fits {
            return Ok(());
        }
        let list = |it: &mut dyn Iterator<Item = String>| it.collect::<Vec<_>>().join(",");
        Err(LinkageError::ModelMismatch {
            model: list(
                &mut self
                    .fields
                    .iter()
                    .map(|f| format!("{}={}", f.column, f.kind)),
            ),
            data: list(&mut columns.iter().map(|c| format!("{}={}", c.name, c.kind))),
        })
    }
}

/// Evidence in bits to a probability.
pub fn probability(bits: f64) -> f64 {
    1.0 / (1.0 + (-bits).exp2())
}
