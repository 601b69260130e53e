//! Expectation–maximisation over the candidate pairs: no labels, only the observation that
//! true pairs agree on many fields at once and different people rarely do. Pairs are counted
//! by their pattern of levels first, so an iteration costs the number of distinct patterns
//! (hundreds), not the number of pairs (millions).

use rustc_hash::FxHashMap;

use crate::model::{Params, FLOOR};

/// Levels of a pair, three bits per field.
pub type Pattern = u64;

pub const BITS: u32 = 3;
pub const MAX_FIELDS: usize = (64 / BITS) as usize;

pub fn level_of(p: Pattern, field: usize) -> usize {
    ((p >> (BITS as usize * field)) & 0b111) as usize
}

pub fn with_level(p: Pattern, field: usize, level: u8) -> Pattern {
    p | (u64::from(level) << (BITS as usize * field))
}

/// Estimates m, u and the prior in place from pattern counts; returns the iterations run.
/// Stops when no probability moves by more than `tolerance`.
pub fn estimate(
    params: &mut Params,
    counts: &FxHashMap<Pattern, u64>,
    max_iterations: u32,
    tolerance: f64,
) -> u32 {
    iterate(params, counts, max_iterations, tolerance, true)
}

/// Estimates m and the prior in place, u held as given; returns the iterations run.
///
/// This is how a model is estimated from the candidates of one blocking rule: u comes from
/// random pairs, because among candidates the different people agree far more often than
/// random pairs do (blocking put them together), and EM with u free would learn the
/// blocking instead of the people. A field whose level is 0 in a pattern (missing, or
/// blanked because the rule blocks on it) neither sways the pair nor learns from it.
pub fn estimate_m(
    params: &mut Params,
    counts: &FxHashMap<Pattern, u64>,
    max_iterations: u32,
    tolerance: f64,
) -> u32 {
    iterate(params, counts, max_iterations, tolerance, false)
}

/// The chance a pair of `pattern` is the same person under `params`, prior included.
pub fn posterior(params: &Params, pattern: Pattern) -> f64 {
    let (pm, pu) = likelihoods(params, pattern);
    let (pm, pu) = (params.prior * pm, (1.0 - params.prior) * pu);
    if pm + pu > 0.0 {
        pm / (pm + pu)
    } else {
        0.0
    }
}

/// The chance of `pattern` among true pairs and among different people (missing levels
/// left out of both).
pub fn likelihoods(params: &Params, pattern: Pattern) -> (f64, f64) {
    let mut pm = 1.0;
    let mut pu = 1.0;
    for (k, f) in params.fields.iter().enumerate() {
        let l = level_of(pattern, k);
        if l > 0 {
            pm *= f.levels[l - 1].m;
            pu *= f.levels[l - 1].u;
        }
    }
    (pm, pu)
}

fn iterate(
    params: &mut Params,
    counts: &FxHashMap<Pattern, u64>,
    max_iterations: u32,
    tolerance: f64,
    update_u: bool,
) -> u32 {
    // Sorted, so that the sums run in one order and the same data give the same model
    // bit for bit, whatever the hash map's order.
    let mut patterns: Vec<(Pattern, f64)> = counts.iter().map(|(p, c)| (*p, *c as f64)).collect();
    patterns.sort_unstable_by_key(|(p, _)| *p);
    let nf = params.fields.len();
    let mut iterations = 0;
    while iterations < max_iterations {
        iterations += 1;
        let mut m_acc: Vec<Vec<f64>> = params
            .fields
            .iter()
            .map(|f| vec![0.0; f.levels.len() + 1])
            .collect();
        let mut u_acc = m_acc.clone();
        let mut matches = 0.0;
        let mut total = 0.0;
        for &(p, c) in &patterns {
            let g = posterior(params, p);
            matches += c * g;
            total += c;
            for k in 0..nf {
                let l = level_of(p, k);
                m_acc[k][l] += c * g;
                u_acc[k][l] += c * (1.0 - g);
            }
        }
        let mut moved: f64 = 0.0;
        let prior = (matches / total.max(1.0)).clamp(FLOOR, 1.0 - FLOOR);
        moved = moved.max((prior - params.prior).abs());
        params.prior = prior;
        for (k, f) in params.fields.iter_mut().enumerate() {
            // Missing values say nothing, so they are left out of both distributions.
            let m_sum: f64 = m_acc[k][1..].iter().sum();
            let u_sum: f64 = u_acc[k][1..].iter().sum();
            for (i, l) in f.levels.iter_mut().enumerate() {
                if m_sum > 0.0 {
                    let m = (m_acc[k][i + 1] / m_sum).max(FLOOR);
                    moved = moved.max((m - l.m).abs());
                    l.m = m;
                }
                if update_u && u_sum > 0.0 {
                    let u = (u_acc[k][i + 1] / u_sum).max(FLOOR);
                    moved = moved.max((u - l.u).abs());
                    l.u = u;
                }
            }
        }
        if moved < tolerance {
            break;
        }
    }
    params.iterations = iterations;
    params.trained_pairs = counts.values().sum();
    iterations
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::field::FieldKind;

    /// A tiny deterministic generator (SplitMix64), so the tests need no dependency.
    pub(crate) struct Mix(pub(crate) u64);

    /// Four fields with known m and u per level (after "missing"), for the estimation tests.
    pub(crate) const KINDS: [FieldKind; 4] = [
        FieldKind::Surname,
        FieldKind::BirthDate,
        FieldKind::Sex,
        FieldKind::Postcode,
    ];
    pub(crate) const M: [&[f64]; 4] = [
        &[0.85, 0.05, 0.04, 0.03, 0.03],
        &[0.9, 0.02, 0.04, 0.02, 0.02],
        &[0.97, 0.03],
        &[0.88, 0.07, 0.05],
    ];
    pub(crate) const U: [&[f64]; 4] = [
        &[0.02, 0.01, 0.05, 0.12, 0.80],
        &[0.004, 0.001, 0.01, 0.03, 0.955],
        &[0.5, 0.5],
        &[0.05, 0.15, 0.80],
    ];
    impl Mix {
        pub(crate) fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }
        /// A level (from 1) drawn from `dist`.
        pub(crate) fn pick(&mut self, dist: &[f64]) -> u8 {
            let mut x = self.next();
            for (i, p) in dist.iter().enumerate() {
                if x < *p {
                    return i as u8 + 1;
                }
                x -= p;
            }
            dist.len() as u8
        }
    }

    #[test]
    fn em_recovers_known_parameters_from_unlabelled_pairs() {
        // Four fields with known m and u; 200,000 pairs of which 12% are true.
        let (kinds, m, u) = (KINDS, M, U);
        let prior = 0.12;
        let mut g = Mix(7);
        let mut counts: FxHashMap<Pattern, u64> = FxHashMap::default();
        for _ in 0..200_000 {
            let truth = g.next() < prior;
            let mut p = 0;
            for k in 0..4 {
                let dist = if truth { m[k] } else { u[k] };
                p = with_level(p, k, g.pick(dist));
            }
            *counts.entry(p).or_default() += 1;
        }
        let columns: Vec<(String, FieldKind)> =
            kinds.iter().map(|k| (k.as_str().to_owned(), *k)).collect();
        // Start from uniform u, far from the truth.
        let start: Vec<Vec<f64>> = kinds
            .iter()
            .map(|k| {
                let n = crate::compare::levels(*k).len() - 1;
                vec![1.0 / n as f64; n]
            })
            .collect();
        let mut params = Params::initial(&columns, &start);
        let its = estimate(&mut params, &counts, 500, 1e-7);
        assert!(its < 500, "converged");
        assert!(
            (params.prior - prior).abs() < 0.01,
            "prior {}",
            params.prior
        );
        for k in 0..4 {
            for (i, l) in params.fields[k].levels.iter().enumerate() {
                assert!(
                    (l.m - m[k][i]).abs() < 0.02,
                    "m[{k}][{i}] = {} not {}",
                    l.m,
                    m[k][i]
                );
                assert!(
                    (l.u - u[k][i]).abs() < 0.02,
                    "u[{k}][{i}] = {} not {}",
                    l.u,
                    u[k][i]
                );
            }
        }
    }
}
