//! Batch linkage: a file deduplicated, or two files linked, by the same engine the patient
//! index uses on arrival. The model is estimated from the data themselves, unless a stored
//! model is given: u from random pairs, m by EM over each blocking rule's candidates with the
//! rule's own fields left out, and the prior from the candidates against all pairs.

use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashMap, FxHasher};

use crate::block::{self, Candidates, Rule};
use crate::compare;
use crate::em::{self, Pattern};
use crate::field::{FieldKind, Value};
use crate::model::{self, Params};

/// A column and its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: FieldKind,
}

/// Records held column by column, prepared for comparison.
#[derive(Debug, Default)]
pub struct Dataset {
    pub columns: Vec<Column>,
    pub ids: Vec<Box<str>>,
    /// `values[c][r]`: column `c` of record `r`.
    pub values: Vec<Vec<Value>>,
    /// With two files: the first record of the second.
    pub split: Option<usize>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LinkageError {
    #[error("at most {max} fields can be compared, not {given}")]
    TooManyFields { given: usize, max: usize },
    #[error("no field to compare")]
    NoFields,
    #[error("the model's fields ({model}) are not these columns ({data})")]
    ModelMismatch { model: String, data: String },
}

impl Dataset {
    pub fn new(columns: Vec<Column>) -> Result<Dataset, LinkageError> {
        if columns.is_empty() {
            return Err(LinkageError::NoFields);
        }
        if columns.len() > em::MAX_FIELDS {
            return Err(LinkageError::TooManyFields {
                given: columns.len(),
                max: em::MAX_FIELDS,
            });
        }
        let values = vec![Vec::new(); columns.len()];
        Ok(Dataset {
            columns,
            values,
            ..Dataset::default()
        })
    }

    /// Adds a record; `raw` holds one value per column, in column order.
    pub fn push(&mut self, id: &str, raw: &[&str]) {
        self.ids.push(id.into());
        for (c, column) in self.columns.iter().enumerate() {
            let v = raw.get(c).copied().unwrap_or_default();
            self.values[c].push(Value::new(column.kind, v));
        }
    }

    /// Adds records `(id, values in column order)`, preparing them on `threads` threads:
    /// reading pinyin and validating IDs is most of the cost of loading a file.
    pub fn extend(&mut self, rows: &[(String, Vec<String>)], threads: usize) {
        let kinds = self.kinds();
        let chunk = rows.len().div_ceil(threads.max(1)).max(1);
        let prepared: Vec<Vec<Vec<Value>>> = std::thread::scope(|s| {
            let handles: Vec<_> = rows
                .chunks(chunk)
                .map(|part| {
                    let kinds = &kinds;
                    s.spawn(move || {
                        part.iter()
                            .map(|(_, raw)| {
                                kinds
                                    .iter()
                                    .enumerate()
                                    .map(|(c, k)| {
                                        Value::new(*k, raw.get(c).map_or("", String::as_str))
                                    })
                                    .collect::<Vec<Value>>()
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        for record in prepared.into_iter().flatten() {
            for (c, v) in record.into_iter().enumerate() {
                self.values[c].push(v);
            }
        }
        self.ids
            .extend(rows.iter().map(|(id, _)| id.as_str().into()));
    }

    /// Marks the records added from now on as the second file.
    pub fn start_second_file(&mut self) {
        self.split = Some(self.ids.len());
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn kinds(&self) -> Vec<FieldKind> {
        self.columns.iter().map(|c| c.kind).collect()
    }

    /// The levels of records `i` and `j`, as a pattern.
    pub fn pattern(&self, i: usize, j: usize) -> Pattern {
        let mut p = 0;
        for (c, column) in self.columns.iter().enumerate() {
            let l = compare::level(column.kind, &self.values[c][i], &self.values[c][j]);
            p = em::with_level(p, c, l);
        }
        p
    }
}

/// How a run goes.
#[derive(Debug, Clone)]
pub struct Options {
    /// Pairs at or above this probability are returned.
    pub threshold: Option<f64>,
    /// A stored model to use instead of estimating one.
    pub params: Option<Params>,
    /// Blocking rules; by default chosen from the kinds of the columns.
    pub rules: Option<Vec<Rule>>,
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threshold: None,
            params: None,
            rules: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// A pair judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    pub left: u32,
    pub right: u32,
    pub probability: f64,
}

/// What a run found and how.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub params: Params,
    pub links: Vec<Link>,
    pub candidates: usize,
    /// Records left out of a rule because its block was too large.
    pub skipped_in_blocks: usize,
    /// Seconds spent blocking, comparing, estimating and scoring.
    pub timings: Vec<(&'static str, f64)>,
}

/// Random pairs sampled to estimate u from. Exact agreement, the rarest level among
/// different people, is counted over all pairs instead, so this only has to count the near
/// misses (a name read alike, a day and month swapped) well enough.
const U_SAMPLE: usize = 100_000;

/// Term frequencies of each name-like column: value → share of records.
struct Frequencies {
    per_column: Vec<Option<FxHashMap<Box<str>, f64>>>,
}

impl Frequencies {
    fn of(data: &Dataset) -> Frequencies {
        let n = data.len().max(1) as f64;
        let per_column = data
            .columns
            .iter()
            .enumerate()
            .map(|(c, column)| {
                column.kind.is_name().then(|| {
                    let mut counts: FxHashMap<Box<str>, f64> = FxHashMap::default();
                    for v in &data.values[c] {
                        if !v.is_missing() {
                            *counts.entry(v.norm.clone()).or_default() += 1.0;
                        }
                    }
                    for x in counts.values_mut() {
                        *x /= n;
                    }
                    counts
                })
            })
            .collect();
        Frequencies { per_column }
    }

    fn share(&self, c: usize, value: &str) -> Option<f64> {
        self.per_column.get(c)?.as_ref()?.get(value).copied()
    }

    /// The chance two random records agree exactly: Σ share².
    fn by_chance(&self, c: usize) -> Option<f64> {
        self.per_column[c]
            .as_ref()
            .map(|m| m.values().map(|s| s * s).sum())
    }
}

/// Deduplicates or links `data`.
pub fn run(data: &Dataset, options: &Options) -> Result<Outcome, LinkageError> {
    let kinds = data.kinds();
    let rules = options
        .rules
        .clone()
        .unwrap_or_else(|| block::default_rules(&kinds));
    let mut clock = std::time::Instant::now();
    let mut timings = Vec::new();
    let mut lap = |what: &'static str| {
        timings.push((what, clock.elapsed().as_secs_f64()));
        clock = std::time::Instant::now();
    };
    let found = block::candidates(&rules, &data.values, data.len(), data.split);
    let (pairs, skipped) = (&found.pairs, found.skipped);
    let threads = options.threads.max(1);
    lap("blocking");
    let patterns = patterns(data, pairs, threads);
    lap("comparing");
    let freq = Frequencies::of(data);
    let params = match &options.params {
        Some(p) => {
            p.fit(&data.columns)?;
            p.clone()
        }
        None => estimate(data, &rules, &found, &patterns, &freq, threads),
    };
    lap("estimating");
    let threshold = options.threshold.unwrap_or(params.link_threshold);
    let scorer = Scorer::new(&params);
    let mut cache: FxHashMap<Pattern, f64> = FxHashMap::default();
    let mut links = Vec::new();
    for (&(i, j), &p) in pairs.iter().zip(&patterns) {
        let base = *cache.entry(p).or_insert_with(|| scorer.bits(p));
        let tf = scorer.tf_bits(p, |k| freq.share(k, &data.values[k][i as usize].norm));
        let probability = scorer.decide(p, base + tf);
        if probability >= threshold {
            links.push(Link {
                left: i,
                right: j,
                probability,
            });
        }
    }
    lap("scoring");
    Ok(Outcome {
        params,
        links,
        candidates: pairs.len(),
        skipped_in_blocks: skipped,
        timings,
    })
}

/// The pattern of every pair, on `threads` threads.
fn patterns(data: &Dataset, pairs: &[(u32, u32)], threads: usize) -> Vec<Pattern> {
    let chunk = pairs.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = pairs
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|&(i, j)| data.pattern(i as usize, j as usize))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// Estimates the model without labels, as Splink does:
///
/// - u from random pairs, which are nearly all different people, and then held fixed;
/// - m by EM over each blocking rule's candidates, with the fields the rule blocks on left
///   out (every candidate agrees on them, people or not), averaged per field over the rules
///   that could estimate it;
/// - the prior as the share of true pairs among all pairs of records, not among candidates:
///   u describes random pairs, so the prior must too, or blocking would be counted twice.
fn estimate(
    data: &Dataset,
    rules: &[Rule],
    found: &Candidates,
    patterns: &[Pattern],
    freq: &Frequencies,
    threads: usize,
) -> Params {
    let nf = data.columns.len();
    let u = random_u(data, threads);
    let columns: Vec<(String, FieldKind)> = data
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.kind))
        .collect();
    let mut params = Params::initial(&columns, &u);
    for (k, f) in params.fields.iter_mut().enumerate() {
        if let Some(chance) = freq.by_chance(k) {
            f.exact_by_chance = chance;
        }
    }
    let by_rules = counts_by_rules(found, patterns, threads);
    let iterations = estimate_m(&mut params, rules, &by_rules);
    let mut all: FxHashMap<Pattern, u64> = FxHashMap::default();
    for (&(_, p), &c) in &by_rules {
        *all.entry(p).or_default() += c;
    }
    params.prior = prior_among_all_pairs(&params, &all, all_pairs(data));
    params.iterations = iterations;
    params.trained_pairs = patterns.len() as u64;
    params.version = format!(
        "em-{}-{}fields-{}pairs",
        chrono::Utc::now().format("%Y%m%dT%H%M%S"),
        nf,
        params.trained_pairs
    );
    params
}

/// How many pairs the data hold: every pair of records, or with two files every pair across.
fn all_pairs(data: &Dataset) -> f64 {
    let n = data.len() as f64;
    match data.split {
        Some(s) if s > 0 && s < data.len() => s as f64 * (n - s as f64),
        _ => n * (n - 1.0) / 2.0,
    }
}

/// u per field and level (after "missing"), as among random pairs of records: nearly all of
/// them different people, whatever the blocking would have put together. Exact agreement is
/// counted over every pair from the values' frequencies; the other levels, which need a
/// comparison, from a sample of random pairs.
fn random_u(data: &Dataset, threads: usize) -> Vec<Vec<f64>> {
    let mut counts: Vec<Vec<f64>> = data
        .columns
        .iter()
        .map(|c| vec![0.0; compare::levels(c.kind).len() - 1])
        .collect();
    let n = data.len();
    let mut sample: Vec<(u32, u32)> = Vec::new();
    if n >= 2 {
        // A fixed-seed generator: the same data give the same model.
        let mut state: u64 = 0x853C_49E6_748F_EA9B;
        let mut next = |bound: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) as usize) % bound
        };
        let wanted = (U_SAMPLE as f64).min(all_pairs(data)) as usize;
        sample.reserve(wanted);
        for _ in 0..wanted {
            let (i, j) = match data.split {
                Some(s) if s > 0 && s < n => (next(s), s + next(n - s)),
                _ => (next(n), next(n)),
            };
            if i != j {
                sample.push((i as u32, j as u32));
            }
        }
    }
    for p in self::patterns(data, &sample, threads) {
        for (k, counts_k) in counts.iter_mut().enumerate() {
            let l = em::level_of(p, k);
            if l > 0 {
                counts_k[l - 1] += 1.0;
            }
        }
    }
    let fields: Vec<usize> = (0..data.columns.len()).collect();
    let chunk = fields.len().div_ceil(threads).max(1);
    let exact: Vec<Option<f64>> = std::thread::scope(|s| {
        let handles: Vec<_> = fields
            .chunks(chunk)
            .map(|part| {
                let work = move || part.iter().map(|&k| exact_agreement(data, k)).collect();
                (part.len(), s.spawn(work))
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(n, h)| h.join().unwrap_or_else(|_| vec![None; n]))
            .collect()
    });
    counts
        .iter()
        .enumerate()
        .map(|(k, counts_k)| {
            let (exact, rest) = match exact[k] {
                Some(share) => (Some(share), &counts_k[1..]),
                None => (None, &counts_k[..]),
            };
            let total: f64 = rest.iter().sum();
            let levels = rest.len() as f64;
            // Laplace smoothing: a level never seen among random pairs is rare, not
            // impossible.
            let of_rest = 1.0 - exact.unwrap_or(0.0);
            exact
                .into_iter()
                .chain(rest.iter().map(|x| of_rest * (x + 1.0) / (total + levels)))
                .collect()
        })
        .collect()
}

/// The share of pairs of present values (across the files, when linking) that agree exactly,
/// counted from the values' frequencies: exact agreement between different people is often
/// too rare (one pair in tens of thousands for a birth date) for a sample to count well.
/// `None` for a column with no pair of present values.
fn exact_agreement(data: &Dataset, c: usize) -> Option<f64> {
    let linking = data.split.filter(|&s| s > 0 && s < data.len());
    let kind = data.columns[c].kind;
    let mut present = [0.0f64; 2];
    // Values by a 63-bit hash, the file in the lowest bit: sorting them brings equal values
    // together faster than a map of strings would, and a collision in a million values is
    // about one in ten million.
    let mut values: Vec<u64> = Vec::with_capacity(data.len());
    for (r, v) in data.values[c].iter().enumerate() {
        if v.is_missing() {
            continue;
        }
        let side = u64::from(linking.is_some_and(|s| r >= s));
        present[side as usize] += 1.0;
        // Level 1 of a citizen ID is agreement on a valid number.
        if kind == FieldKind::CitizenId && !v.valid {
            continue;
        }
        let mut h = FxHasher::default();
        v.norm.hash(&mut h);
        values.push(h.finish() << 1 | side);
    }
    values.sort_unstable();
    let mut agree = 0.0;
    for same in values.chunk_by(|a, b| a >> 1 == b >> 1) {
        let second = same.iter().filter(|x| *x & 1 == 1).count() as f64;
        let first = same.len() as f64 - second;
        agree += if linking.is_some() {
            first * second
        } else {
            first * (first - 1.0) / 2.0
        };
    }
    let all = if linking.is_some() {
        present[0] * present[1]
    } else {
        present[0] * (present[0] - 1.0) / 2.0
    };
    // Never quite impossible: as if one pair of all agreed.
    (all > 0.0).then(|| agree.max(1.0) / all)
}

/// Pattern counts per set of rules (as bits) that compared the pair, on `threads` threads.
fn counts_by_rules(
    found: &Candidates,
    patterns: &[Pattern],
    threads: usize,
) -> FxHashMap<(u64, Pattern), u64> {
    let chunk = found.pairs.len().div_ceil(threads).max(1);
    let parts: Vec<FxHashMap<(u64, Pattern), u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = found
            .pairs
            .chunks(chunk)
            .zip(patterns.chunks(chunk))
            .map(|(pairs, patterns)| {
                s.spawn(move || {
                    let mut counts: FxHashMap<(u64, Pattern), u64> = FxHashMap::default();
                    for (&(i, j), &p) in pairs.iter().zip(patterns) {
                        *counts.entry((found.rules_of(i, j), p)).or_default() += 1;
                    }
                    counts
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut counts = FxHashMap::default();
    for part in parts {
        for (key, c) in part {
            *counts.entry(key).or_default() += c;
        }
    }
    counts
}

/// m by EM over each rule's candidates in turn, u held fixed and the rule's own fields left
/// out, then per field the average over the rules that estimated it, each weighed by the
/// true pairs it found (a rule that found a handful says less than one that found
/// thousands); a field no rule could estimate keeps its starting m. Returns the EM
/// iterations run in all.
///
/// A phone, an address or a postcode is shared by a household. Among the pairs a rule on one
/// of them compares, family members agree on the other household fields far more often than
/// random pairs do; with u from random pairs EM takes them for one person and learns that
/// true pairs often differ in name and birth date. So a field's m comes from the rules on a
/// person's own fields (identifiers, names, birth date) when any of them could estimate it,
/// and from the household rules only when none could.
fn estimate_m(
    params: &mut Params,
    rules: &[Rule],
    by_rules: &FxHashMap<(u64, Pattern), u64>,
) -> u32 {
    let nf = params.fields.len();
    let kinds: Vec<FieldKind> = params.fields.iter().map(|f| f.kind).collect();
    let household = |rule: &Rule| {
        rule.columns().any(|c| {
            matches!(
                kinds.get(c),
                Some(FieldKind::Phone | FieldKind::Address | FieldKind::Postcode)
            )
        })
    };
    // Per field, per kind of rule (own fields, household): Σ found × m, and Σ found.
    let zero: Vec<Vec<f64>> = params
        .fields
        .iter()
        .map(|f| vec![0.0; f.levels.len()])
        .collect();
    let mut sums = [zero.clone(), zero];
    let mut weights = [vec![0.0; nf], vec![0.0; nf]];
    let mut iterations = 0;
    for (r, rule) in rules.iter().enumerate().take(64) {
        let mut blanked: Vec<bool> = vec![false; nf];
        for c in rule.columns() {
            if let Some(b) = blanked.get_mut(c) {
                *b = true;
            }
        }
        // Blocked fields are blanked to level 0, which EM reads as missing.
        let keep = (0..nf)
            .filter(|&k| !blanked[k])
            .fold(0, |p, k| em::with_level(p, k, 0b111));
        let mut counts: FxHashMap<Pattern, u64> = FxHashMap::default();
        for (&(mask, p), &c) in by_rules {
            if mask & (1 << r) != 0 {
                *counts.entry(p & keep).or_default() += c;
            }
        }
        let informed: Vec<bool> = (0..nf)
            .map(|k| counts.keys().any(|&p| em::level_of(p, k) > 0))
            .collect();
        if !informed.iter().any(|x| *x) {
            continue;
        }
        let mut local = params.clone();
        iterations += em::estimate_m(&mut local, &counts, 200, 1e-6);
        let found = local.prior * counts.values().sum::<u64>() as f64;
        let tier = usize::from(household(rule));
        for k in (0..nf).filter(|&k| informed[k]) {
            for (s, l) in sums[tier][k].iter_mut().zip(&local.fields[k].levels) {
                *s += found * l.m;
            }
            weights[tier][k] += found;
        }
    }
    for (k, f) in params.fields.iter_mut().enumerate() {
        let Some(tier) = (0..2).find(|&t| weights[t][k] > 0.0) else {
            continue;
        };
        for (l, s) in f.levels.iter_mut().zip(&sums[tier][k]) {
            l.m = (s / weights[tier][k]).max(model::FLOOR);
        }
    }
    iterations
}

/// The share of true pairs among all pairs of records: the fixed point of "the expected
/// number of true pairs among the candidates, over all pairs". Pairs no rule compared are
/// counted as different people, which they nearly all are.
fn prior_among_all_pairs(params: &Params, counts: &FxHashMap<Pattern, u64>, all: f64) -> f64 {
    let mut ratios: Vec<(Pattern, f64, f64)> = counts
        .iter()
        .map(|(&p, &c)| {
            let (pm, pu) = em::likelihoods(params, p);
            (p, c as f64, pm / pu.max(f64::MIN_POSITIVE))
        })
        .collect();
    // One order of summation: the same data give the same prior bit for bit.
    ratios.sort_unstable_by_key(|r| r.0);
    let candidates: f64 = ratios.iter().map(|r| r.1).sum();
    if candidates == 0.0 || all <= 0.0 {
        return model::PRIOR_FLOOR;
    }
    let mut prior = (candidates / all).clamp(model::PRIOR_FLOOR, 0.5);
    for _ in 0..1_000 {
        let odds = prior / (1.0 - prior);
        let expected: f64 = ratios
            .iter()
            .map(|(_, c, ratio)| c * odds * ratio / (1.0 + odds * ratio))
            .sum();
        let next = (expected / all).clamp(model::PRIOR_FLOOR, 1.0 - model::FLOOR);
        let moved = (next - prior).abs() / prior;
        prior = next;
        if moved < 1e-9 {
            break;
        }
    }
    prior
}

/// Turns patterns into evidence; the same for a batch run and for the index on arrival.
#[derive(Debug, Clone)]
pub struct Scorer {
    weights: Vec<Vec<f64>>,
    prior: f64,
    kinds: Vec<FieldKind>,
    /// Per field: the chance of an exact agreement between random records, for fields
    /// weighed by term frequency.
    by_chance: Vec<Option<f64>>,
    citizen_id: Option<usize>,
    contradicting: Vec<usize>,
    link_threshold: f64,
    review_threshold: f64,
}

/// Bits a common or rare name can move the evidence, either way.
const TF_LIMIT: f64 = 8.0;

impl Scorer {
    pub fn new(params: &Params) -> Scorer {
        let kinds: Vec<FieldKind> = params.fields.iter().map(|f| f.kind).collect();
        Scorer {
            weights: params.weights(),
            prior: params.prior_weight(),
            by_chance: params
                .fields
                .iter()
                .map(|f| (f.term_frequency && f.exact_by_chance > 0.0).then_some(f.exact_by_chance))
                .collect(),
            citizen_id: kinds.iter().position(|k| *k == FieldKind::CitizenId),
            contradicting: kinds
                .iter()
                .enumerate()
                .filter(|(_, k)| {
                    matches!(k, FieldKind::Name | FieldKind::BirthDate | FieldKind::Sex)
                })
                .map(|(i, _)| i)
                .collect(),
            kinds,
            link_threshold: params.link_threshold,
            review_threshold: params.review_threshold,
        }
    }

    /// The prior and every field's weight for a pattern, in bits.
    pub fn bits(&self, p: Pattern) -> f64 {
        self.prior
            + self
                .weights
                .iter()
                .enumerate()
                .map(|(k, w)| w[em::level_of(p, k)])
                .sum::<f64>()
    }

    /// The term-frequency adjustment: an exactly shared name counts more when rare.
    /// `share(k)` is the share of records holding the shared value of field `k`.
    pub fn tf_bits(&self, p: Pattern, share: impl Fn(usize) -> Option<f64>) -> f64 {
        let mut adj = 0.0;
        for (k, chance) in self.by_chance.iter().enumerate() {
            let Some(chance) = chance else { continue };
            if em::level_of(p, k) != 1 {
                continue;
            }
            if let Some(s) = share(k).filter(|s| *s > 0.0) {
                adj += (chance / s).log2().clamp(-TF_LIMIT, TF_LIMIT);
            }
        }
        adj
    }

    /// The probability of a pair, with the first tier applied: the same valid citizen ID is
    /// the same person, unless name, birth date or sex flatly disagree, which sends the pair
    /// to review however strong the rest of the evidence.
    pub fn decide(&self, p: Pattern, bits: f64) -> f64 {
        let model_p = model::probability(bits);
        let Some(c) = self.citizen_id else {
            return model_p;
        };
        if em::level_of(p, c) != 1 {
            return model_p;
        }
        let flat = self.contradicting.iter().any(|&k| {
            let last = compare::levels(self.kinds[k]).len() - 1;
            em::level_of(p, k) == last
        });
        if flat {
            model_p.min(self.review_threshold.max(self.link_threshold - 1e-6))
        } else {
            model_p.max(ID_TIER)
        }
    }

    pub fn link_threshold(&self) -> f64 {
        self.link_threshold
    }

    pub fn review_threshold(&self) -> f64 {
        self.review_threshold
    }
}

/// The probability given to a pair on the same valid citizen ID whose demographics agree.
pub const ID_TIER: f64 = 0.999_999;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn people() -> Dataset {
        let cols = [
            ("name", FieldKind::Name),
            ("sex", FieldKind::Sex),
            ("dob", FieldKind::BirthDate),
            ("phone", FieldKind::Phone),
            ("id", FieldKind::CitizenId),
        ];
        let mut d = Dataset::new(
            cols.iter()
                .map(|(n, k)| Column {
                    name: (*n).to_owned(),
                    kind: *k,
                })
                .collect(),
        )
        .unwrap();
        let surnames = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"];
        let given = [
            "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳",
        ];
        let mut n = 0;
        for (a, s) in surnames.iter().enumerate() {
            for (b, g) in given.iter().enumerate() {
                for c in 0..5 {
                    n += 1;
                    let name = format!("{s}{g}");
                    let dob = format!("19{:02}-{:02}-{:02}", 40 + c * 9, 1 + b, 1 + a * 2);
                    let phone = format!("139{:08}", n * 7919);
                    let sex = if b % 2 == 0 { "M" } else { "F" };
                    d.push(&format!("p{n}"), &[&name, sex, &dob, &phone, ""]);
                    // Every third person is registered again elsewhere, with a slip.
                    if n % 3 == 0 {
                        let slip = match n % 4 {
                            0 => name.replace('伟', "玮"),
                            1 => name.clone(),
                            _ => name.clone(),
                        };
                        let dob2 = if n % 4 == 1 {
                            format!("19{:02}-{:02}-{:02}", 40 + c * 9, 1 + a * 2, 1 + b)
                        } else {
                            dob.clone()
                        };
                        let phone2 = if n % 4 == 2 {
                            String::new()
                        } else {
                            phone.clone()
                        };
                        d.push(&format!("p{n}-dup"), &[&slip, sex, &dob2, &phone2, ""]);
                    }
                }
            }
        }
        d
    }

    #[test]
    fn m_is_learned_per_rule_without_the_fields_the_rule_blocks_on() {
        use crate::block::KeyPart;
        use crate::em::tests::Mix;
        // Two rules, one blocking on the birth date and one on the surname: under each,
        // every candidate agrees on the rule's field, true pair or not. Of the first rule's
        // pairs 5% are true, of the second's 20%.
        let (kinds, m, u) = (
            crate::em::tests::KINDS,
            crate::em::tests::M,
            crate::em::tests::U,
        );
        let rules = [Rule(vec![KeyPart::Exact(1)]), Rule(vec![KeyPart::Exact(0)])];
        let mut g = Mix(11);
        let mut by_rules: FxHashMap<(u64, Pattern), u64> = FxHashMap::default();
        for (r, (blocked, share)) in [(1, 0.05), (0, 0.2)].into_iter().enumerate() {
            for _ in 0..200_000 {
                let truth = g.next() < share;
                let mut p = 0;
                for k in 0..4 {
                    let level = if k == blocked {
                        1
                    } else {
                        g.pick(if truth { m[k] } else { u[k] })
                    };
                    p = em::with_level(p, k, level);
                }
                *by_rules.entry((1 << r, p)).or_default() += 1;
            }
        }
        let columns: Vec<(String, FieldKind)> =
            kinds.iter().map(|k| (k.as_str().to_owned(), *k)).collect();
        let u_known: Vec<Vec<f64>> = u.iter().map(|x| x.to_vec()).collect();
        let mut params = Params::initial(&columns, &u_known);
        estimate_m(&mut params, &rules, &by_rules);
        for k in 0..4 {
            for (i, l) in params.fields[k].levels.iter().enumerate() {
                assert!(
                    (l.m - m[k][i]).abs() < 0.02,
                    "m[{k}][{i}] = {} not {}",
                    l.m,
                    m[k][i]
                );
                assert_eq!(l.u, u[k][i], "u stays as given");
            }
        }
        // The weight of an exactly shared birth date is what m and u say (7.8 bits), not
        // what EM over the candidates would make of "every candidate agrees".
        let w = params.weights();
        let truth = (m[1][0] / u[1][0]).log2();
        assert!((w[1][1] - truth).abs() < 0.1, "{} not {truth}", w[1][1]);
        let mut free = Params::initial(&columns, &u_known);
        let mut union: FxHashMap<Pattern, u64> = FxHashMap::default();
        for (&(_, p), &c) in &by_rules {
            *union.entry(p).or_default() += c;
        }
        em::estimate(&mut free, &union, 500, 1e-7);
        assert!(
            (free.weights()[1][1] - truth).abs() > 2.0,
            "EM with u free learns the blocking"
        );
    }

    #[test]
    fn the_prior_is_the_share_of_true_pairs_among_all_pairs() {
        let d = people();
        let out = run(&d, &Options::default()).unwrap();
        let n = d.len() as f64;
        let truth = d.ids.iter().filter(|i| i.ends_with("-dup")).count() as f64;
        let share = truth / (n * (n - 1.0) / 2.0);
        assert!(
            (out.params.prior / share).log2().abs() < 0.5,
            "prior {} not about {share}",
            out.params.prior
        );
        // u from random pairs: different people rarely share a birth date, although every
        // pair the birth-date rule compared does.
        let dob = &out.params.fields[2].levels[0];
        assert!(dob.u < 0.01, "u(birth date exact) = {}", dob.u);
    }

    #[test]
    fn duplicates_are_found_and_strangers_kept_apart() {
        let d = people();
        let out = run(&d, &Options::default()).unwrap();
        let found: Vec<(String, String)> = out
            .links
            .iter()
            .map(|l| {
                let a = d.ids[l.left as usize].to_string();
                let b = d.ids[l.right as usize].to_string();
                (a, b)
            })
            .collect();
        let truth = d.ids.iter().filter(|i| i.ends_with("-dup")).count();
        let right = found
            .iter()
            .filter(|(a, b)| a.trim_end_matches("-dup") == b.trim_end_matches("-dup"))
            .count();
        assert!(
            right as f64 >= truth as f64 * 0.95,
            "{right} of {truth} found"
        );
        assert!(
            found.len() - right <= truth / 20,
            "{} wrong links",
            found.len() - right
        );
        let stored = serde_json::to_string(&out.params).unwrap();
        assert_eq!(Params::from_json(&stored).unwrap(), out.params);
    }

    #[test]
    fn a_stored_model_gives_the_same_links_and_must_fit_the_columns() {
        let d = people();
        let first = run(&d, &Options::default()).unwrap();
        let again = run(
            &d,
            &Options {
                params: Some(first.params.clone()),
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(first.links, again.links);
        let mut wrong = first.params.clone();
        wrong.fields.pop();
        let refused = run(
            &d,
            &Options {
                params: Some(wrong),
                ..Options::default()
            },
        )
        .unwrap_err();
        assert!(matches!(refused, LinkageError::ModelMismatch { .. }));
    }

    #[test]
    fn the_same_valid_id_links_unless_the_person_flatly_differs() {
        let mut d = people();
        let id = "11010519491231002X";
        d.push("x1", &["赵敏", "F", "1949-12-31", "", id]);
        d.push("x2", &["赵敏", "F", "1949-12-31", "13333333333", id]);
        d.push("x3", &["孙悟空", "M", "1990-01-01", "", id]);
        let out = run(
            &d,
            &Options {
                threshold: Some(0.0),
                ..Options::default()
            },
        )
        .unwrap();
        let p = |a: &str, b: &str| {
            out.links
                .iter()
                .find(|l| {
                    let (x, y) = (&*d.ids[l.left as usize], &*d.ids[l.right as usize]);
                    (x == a && y == b) || (x == b && y == a)
                })
                .map(|l| l.probability)
                .unwrap()
        };
        assert!(p("x1", "x2") >= ID_TIER);
        assert!(
            p("x1", "x3") < out.params.link_threshold,
            "to review, never linked"
        );
    }
}
