//! Blocking: only records that share a key under some rule are compared, so a million records
//! cost millions of comparisons, not half a trillion. Each rule is a few key parts; a pair
//! already found by an earlier rule is not emitted again, so the rules' union needs no set.

use std::hash::{Hash, Hasher};

use chrono::Datelike;
use rustc_hash::FxHasher;

use crate::field::{FieldKind, Value};

/// One part of a blocking key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPart {
    /// The column's normalised value.
    Exact(usize),
    /// The usual reading of a Chinese name (the name itself otherwise): homophones share it.
    Sound(usize),
    /// The first characters of the column's value.
    Prefix(usize, usize),
    /// The year of a birth date.
    Year(usize),
}

/// Records agreeing on every part are compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule(pub Vec<KeyPart>);

/// A block larger than this says the rule is too coarse for these data (everyone born on
/// 1 January, a placeholder phone); its records are left to the other rules.
pub const MAX_BLOCK: usize = 2_000;

/// Rules from the kinds of the columns alone: each identifier, the birth date, names by
/// sound with the birth year, the address, and the postcode with the surname's initial or
/// the address's beginning.
pub fn default_rules(kinds: &[FieldKind]) -> Vec<Rule> {
    let find = |k: FieldKind| kinds.iter().position(|x| *x == k);
    let mut rules = Vec::new();
    for (i, k) in kinds.iter().enumerate() {
        if matches!(
            k,
            FieldKind::CitizenId | FieldKind::OtherId | FieldKind::Phone
        ) {
            rules.push(Rule(vec![KeyPart::Exact(i)]));
        }
    }
    let birth = find(FieldKind::BirthDate);
    if let Some(b) = birth {
        rules.push(Rule(vec![KeyPart::Exact(b)]));
    }
    let name = find(FieldKind::Name);
    let surname = find(FieldKind::Surname);
    let given = find(FieldKind::GivenName);
    if let Some(n) = name {
        rules.push(Rule(match birth {
            Some(b) => vec![KeyPart::Sound(n), KeyPart::Year(b)],
            None => vec![KeyPart::Sound(n)],
        }));
    }
    if let (Some(s), Some(g)) = (surname, given) {
        rules.push(Rule(vec![KeyPart::Sound(s), KeyPart::Sound(g)]));
    }
    if let Some(b) = birth {
        for x in [surname, given].into_iter().flatten() {
            rules.push(Rule(vec![KeyPart::Sound(x), KeyPart::Year(b)]));
        }
    }
    let address = find(FieldKind::Address);
    if let Some(a) = address {
        rules.push(Rule(vec![KeyPart::Exact(a)]));
    }
    if let Some(p) = find(FieldKind::Postcode) {
        if let Some(x) = surname.or(name) {
            rules.push(Rule(vec![KeyPart::Exact(p), KeyPart::Prefix(x, 1)]));
        }
        // Names written in each other's fields, or both mistyped: the place still agrees.
        if let Some(a) = address {
            rules.push(Rule(vec![KeyPart::Exact(p), KeyPart::Prefix(a, 3)]));
        }
    }
    rules
}

/// A record's key under `rule`, or 0 when a part is missing.
pub fn key(rule: &Rule, columns: &[Vec<Value>], record: usize) -> u64 {
    key_of(rule, |c| &columns[c][record])
}

/// The key of a record whose value of column `c` is `value(c)`.
pub fn key_of<'v>(rule: &Rule, value: impl Fn(usize) -> &'v Value) -> u64 {
    let mut h = FxHasher::default();
    for part in &rule.0 {
        let (c, bytes): (usize, &str) = match *part {
            KeyPart::Exact(c) => (c, &value(c).norm),
            KeyPart::Sound(c) => (c, value(c).sound()),
            KeyPart::Prefix(c, n) => {
                let s: &str = &value(c).norm;
                let end = s.char_indices().nth(n).map_or(s.len(), |(i, _)| i);
                (c, &s[..end])
            }
            KeyPart::Year(c) => match value(c).date {
                Some(d) => {
                    d.year().hash(&mut h);
                    continue;
                }
                None => return 0,
            },
        };
        if value(c).is_missing() {
            return 0;
        }
        bytes.hash(&mut h);
    }
    // 0 means "no key"; a real key hashing to 0 moves aside.
    h.finish().max(1)
}

impl Rule {
    /// The columns the rule's key is made of: under this rule their agreement is given, so
    /// it says nothing about whether a pair is one person.
    pub fn columns(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().map(|part| match *part {
            KeyPart::Exact(c) | KeyPart::Sound(c) | KeyPart::Prefix(c, _) | KeyPart::Year(c) => c,
        })
    }
}

/// What blocking found.
#[derive(Debug, Default)]
pub struct Candidates {
    pub pairs: Vec<(u32, u32)>,
    /// Records left out of a rule because its block was too large.
    pub skipped: usize,
    /// `keys[rule][record]`: the record's key under each rule, 0 when it has none or its
    /// block was too large, so that two records share a non-zero key exactly when the rule
    /// compared them.
    pub keys: Vec<Vec<u64>>,
}

impl Candidates {
    /// The rules (the first 64, as bits) that compared records `i` and `j`.
    pub fn rules_of(&self, i: u32, j: u32) -> u64 {
        let mut mask = 0;
        for (r, ks) in self.keys.iter().take(64).enumerate() {
            let a = ks[i as usize];
            if a != 0 && a == ks[j as usize] {
                mask |= 1 << r;
            }
        }
        mask
    }
}

/// Candidate pairs `(i, j)`, `i < j`. With `split`, records below it come from the first
/// file and the rest from the second, and only pairs across the two are candidates.
pub fn candidates(
    rules: &[Rule],
    columns: &[Vec<Value>],
    records: usize,
    split: Option<usize>,
) -> Candidates {
    let mut keys: Vec<Vec<u64>> = rules
        .iter()
        .map(|r| (0..records).map(|i| key(r, columns, i)).collect())
        .collect();
    // Every rule's blocks first, and the keys of too large blocks cleared, so that a pair
    // in a too large block of an earlier rule is still found by a later one.
    let mut skipped = 0;
    let orders: Vec<Vec<(u64, u32)>> = keys
        .iter_mut()
        .map(|rule_keys| {
            let mut order: Vec<(u64, u32)> = rule_keys
                .iter()
                .enumerate()
                .filter(|(_, key)| **key != 0)
                .map(|(i, key)| (*key, i as u32))
                .collect();
            order.sort_unstable();
            let mut kept = Vec::with_capacity(order.len());
            for block in order.chunk_by(|a, b| a.0 == b.0) {
                if block.len() > MAX_BLOCK {
                    skipped += block.len();
                    for &(_, i) in block {
                        rule_keys[i as usize] = 0;
                    }
                } else {
                    kept.extend_from_slice(block);
                }
            }
            kept
        })
        .collect();
    let mut pairs = Vec::new();
    for (k, order) in orders.iter().enumerate() {
        for block in order.chunk_by(|a, b| a.0 == b.0) {
            for (x, &(_, i)) in block.iter().enumerate() {
                for &(_, j) in &block[x + 1..] {
                    let (i, j) = (i.min(j), i.max(j));
                    if let Some(s) = split {
                        if (i as usize) < s && (j as usize) < s
                            || (i as usize) >= s && (j as usize) >= s
                        {
                            continue;
                        }
                    }
                    let earlier = keys[..k].iter().any(|ks| {
                        let a = ks[i as usize];
                        a != 0 && a == ks[j as usize]
                    });
                    if !earlier {
                        pairs.push((i, j));
                    }
                }
            }
        }
    }
    Candidates {
        pairs,
        skipped,
        keys,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn each_pair_is_found_once_and_only_across_files_when_linking() {
        let kinds = [FieldKind::Name, FieldKind::BirthDate, FieldKind::Phone];
        let rows = [
            ["王伟", "1980-01-02", "13800000001"],
            ["王玮", "1980-01-02", "13800000001"],
            ["汪威", "1980-05-06", ""],
            ["李娜", "1990-01-01", "13900000000"],
        ];
        let columns: Vec<Vec<Value>> = (0..3)
            .map(|c| rows.iter().map(|r| Value::new(kinds[c], r[c])).collect())
            .collect();
        let rules = default_rules(&kinds);
        let mut pairs = candidates(&rules, &columns, 4, None).pairs;
        pairs.sort_unstable();
        // 0–1 share a phone, a birth date and a sound; 0–2 and 1–2 a sound and a year.
        assert_eq!(pairs, [(0, 1), (0, 2), (1, 2)]);
        let mut across = candidates(&rules, &columns, 4, Some(2)).pairs;
        across.sort_unstable();
        assert_eq!(across, [(0, 2), (1, 2)]);
    }

    #[test]
    fn a_pair_in_a_too_large_block_is_left_to_the_other_rules() {
        // Everyone born on 1 January: the birth-date block is too large, yet the two
        // records sharing a name and a birth year are still compared by the name rule.
        let kinds = [FieldKind::Name, FieldKind::BirthDate];
        let names: Vec<String> = (0..MAX_BLOCK + 1).map(|i| format!("n{i}")).collect();
        let mut rows: Vec<[&str; 2]> = names.iter().map(|n| [n.as_str(), "1950-01-01"]).collect();
        rows.push(["n0", "1950-01-01"]);
        let columns: Vec<Vec<Value>> = (0..2)
            .map(|c| rows.iter().map(|r| Value::new(kinds[c], r[c])).collect())
            .collect();
        let rules = default_rules(&kinds);
        let found = candidates(&rules, &columns, rows.len(), None);
        assert_eq!(found.pairs, [(0, rows.len() as u32 - 1)]);
        assert_eq!(found.skipped, rows.len());
        assert_eq!(found.rules_of(0, rows.len() as u32 - 1), 0b10);
    }
}
