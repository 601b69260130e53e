//! One record against another, with the reasons: the store matches arriving records through
//! this, and a reviewer sees the same per-field evidence the decision was made on, not a bare
//! number.

use serde::Serialize;

use crate::compare;
use crate::em::{self, Pattern};
use crate::field::{FieldKind, Value};
use crate::index::{Candidate, Decision};
use crate::linkage::{Column, LinkageError, Scorer};
use crate::model::Params;

/// A model bound to the columns it was estimated for.
#[derive(Debug, Clone)]
pub struct Comparator {
    columns: Vec<Column>,
    params: Params,
    weights: Vec<Vec<f64>>,
    scorer: Scorer,
}

/// What one field said about a pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldScore {
    pub column: String,
    pub kind: FieldKind,
    /// The level's name (`exact`, `same_reading`, `day_month_swapped`, …).
    pub level: &'static str,
    /// Evidence in bits: positive for the same person, negative against.
    pub bits: f64,
}

/// A pair's evidence and the probability it adds up to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairScore {
    pub probability: f64,
    /// The prior, in bits: how likely any candidate pair is the same person.
    pub prior_bits: f64,
    /// The adjustment for how common the shared names are.
    pub frequency_bits: f64,
    pub fields: Vec<FieldScore>,
}

impl Comparator {
    pub fn new(columns: Vec<Column>, params: Params) -> Result<Comparator, LinkageError> {
        params.fit(&columns)?;
        Ok(Comparator {
            weights: params.weights(),
            scorer: Scorer::new(&params),
            columns,
            params,
        })
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn link_threshold(&self) -> f64 {
        self.scorer.link_threshold()
    }

    pub fn review_threshold(&self) -> f64 {
        self.scorer.review_threshold()
    }

    /// Prepares raw values, one per column (missing ones empty).
    pub fn prepare(&self, raw: &[&str]) -> Vec<Value> {
        self.columns
            .iter()
            .enumerate()
            .map(|(c, col)| Value::new(col.kind, raw.get(c).copied().unwrap_or_default()))
            .collect()
    }

    /// The levels of `a` against the record whose column `c` is `b(c)`.
    pub fn pattern<'v>(&self, a: &[Value], b: impl Fn(usize) -> &'v Value) -> Pattern {
        self.columns.iter().enumerate().fold(0, |p, (c, col)| {
            em::with_level(p, c, compare::level(col.kind, &a[c], b(c)))
        })
    }

    /// The probability of a pattern; `share(c)` is the share of records holding `a`'s value
    /// of column `c`, where known, for the term-frequency adjustment.
    pub fn probability(&self, p: Pattern, share: impl Fn(usize) -> Option<f64>) -> f64 {
        self.scorer
            .decide(p, self.scorer.bits(p) + self.scorer.tf_bits(p, share))
    }

    /// `a` against `b`, field by field.
    pub fn score(
        &self,
        a: &[Value],
        b: &[Value],
        share: impl Fn(usize) -> Option<f64>,
    ) -> PairScore {
        let p = self.pattern(a, |c| &b[c]);
        let frequency_bits = self.scorer.tf_bits(p, &share);
        PairScore {
            probability: self.probability(p, share),
            prior_bits: self.params.prior_weight(),
            frequency_bits,
            fields: self
                .columns
                .iter()
                .enumerate()
                .map(|(c, col)| {
                    let level = em::level_of(p, c);
                    FieldScore {
                        column: col.name.clone(),
                        kind: col.kind,
                        level: compare::levels(col.kind).get(level).copied().unwrap_or("?"),
                        bits: self.weights[c].get(level).copied().unwrap_or(0.0),
                    }
                })
                .collect(),
        }
    }

    /// What the thresholds make of candidates sorted most likely first: two persons above the
    /// link threshold are a question for a person, not a coin toss.
    pub fn decide(&self, candidates: &[Candidate]) -> Decision {
        let link = self.scorer.link_threshold();
        match candidates {
            [] => Decision::New,
            [best, rest @ ..] if best.probability >= link => {
                if rest.first().is_some_and(|c| c.probability >= link) {
                    Decision::Review(candidates.to_vec())
                } else {
                    Decision::Link(*best)
                }
            }
            _ => Decision::Review(candidates.to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn comparator() -> Comparator {
        let columns = vec![
            Column {
                name: "name".into(),
                kind: FieldKind::Name,
            },
            Column {
                name: "birth_date".into(),
                kind: FieldKind::BirthDate,
            },
            Column {
                name: "citizen_id".into(),
                kind: FieldKind::CitizenId,
            },
        ];
        let kinds: Vec<(String, FieldKind)> =
            columns.iter().map(|c| (c.name.clone(), c.kind)).collect();
        let u: Vec<Vec<f64>> = kinds
            .iter()
            .map(|(_, k)| {
                let n = compare::levels(*k).len() - 1;
                let mut u = vec![0.01; n];
                u[n - 1] = 0.97;
                u
            })
            .collect();
        Comparator::new(columns, Params::initial(&kinds, &u)).unwrap()
    }

    #[test]
    fn the_explanation_adds_up_to_the_probability() {
        let c = comparator();
        let a = c.prepare(&["王伟", "1980-03-04", ""]);
        let b = c.prepare(&["王玮", "1980-04-03", ""]);
        let s = c.score(&a, &b, |_| None);
        let levels: Vec<_> = s.fields.iter().map(|f| f.level).collect();
        assert_eq!(levels, ["same_reading", "day_month_swapped", "missing"]);
        assert_eq!(s.fields[2].bits, 0.0, "a missing value is no evidence");
        let bits = s.prior_bits + s.frequency_bits + s.fields.iter().map(|f| f.bits).sum::<f64>();
        assert!((crate::model::probability(bits) - s.probability).abs() < 1e-12);
        let stranger = c.prepare(&["李娜", "1955-12-30", ""]);
        assert!(c.score(&a, &stranger, |_| None).probability < s.probability);
    }

    #[test]
    fn a_shared_valid_id_with_flatly_different_names_is_reviewed_not_linked() {
        let c = comparator();
        let a = c.prepare(&["王伟", "1980-03-04", "11010519491231002X"]);
        let same = c.prepare(&["王伟", "1980-03-04", "11010519491231002X"]);
        let other = c.prepare(&["欧阳修", "1980-03-04", "11010519491231002X"]);
        assert!(c.score(&a, &same, |_| None).probability >= c.link_threshold());
        let p = c.score(&a, &other, |_| None).probability;
        assert!(p < c.link_threshold(), "{p}");
    }

    #[test]
    fn two_strong_candidates_go_to_review() {
        let c = comparator();
        let strong = |person| Candidate {
            person,
            record: person,
            probability: 0.99,
        };
        assert_eq!(c.decide(&[]), Decision::New);
        assert_eq!(c.decide(&[strong(1)]), Decision::Link(strong(1)));
        assert!(matches!(
            c.decide(&[strong(1), strong(2)]),
            Decision::Review(v) if v.len() == 2
        ));
    }
}
