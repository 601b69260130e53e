//! The index on arrival: a new or changed record is matched against the persons already
//! known within milliseconds. Candidates come from the blocking keys; each candidate person
//! is compared through every one of its records, and the best record speaks for the person
//! (a person registered once with an old ID and once with a new phone is still one person).

use rustc_hash::FxHashMap;

use crate::block::{self, Rule, MAX_BLOCK};
use crate::field::Value;
use crate::linkage::{Column, LinkageError};
use crate::model::Params;
use crate::score::Comparator;

/// A person the arriving record may be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub person: u32,
    /// The person's record that agrees best.
    pub record: u32,
    pub probability: f64,
}

/// What the thresholds make of the best candidates.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// At or above the link threshold: this person.
    Link(Candidate),
    /// Between the thresholds: a person decides among these.
    Review(Vec<Candidate>),
    /// Nobody close enough: a new person.
    New,
}

/// Persons and their records in memory, with the blocking keys of every record.
pub struct Index {
    comparator: Comparator,
    rules: Vec<Rule>,
    /// `values[c][r]`, as in a dataset.
    values: Vec<Vec<Value>>,
    person_of: Vec<u32>,
    members: Vec<Vec<u32>>,
    blocks: Vec<FxHashMap<u64, Vec<u32>>>,
    /// Counts of each name value, for the term-frequency adjustment.
    counts: Vec<Option<FxHashMap<Box<str>, u32>>>,
}

impl Index {
    pub fn new(columns: Vec<Column>, params: &Params) -> Result<Index, LinkageError> {
        let kinds: Vec<_> = columns.iter().map(|c| c.kind).collect();
        let rules = block::default_rules(&kinds);
        Ok(Index {
            values: vec![Vec::new(); columns.len()],
            counts: params
                .fields
                .iter()
                .map(|f| f.term_frequency.then(FxHashMap::default))
                .collect(),
            blocks: vec![FxHashMap::default(); rules.len()],
            rules,
            comparator: Comparator::new(columns, params.clone())?,
            person_of: Vec::new(),
            members: Vec::new(),
        })
    }

    /// Prepares raw values, one per column.
    pub fn prepare(&self, raw: &[&str]) -> Vec<Value> {
        self.comparator.prepare(raw)
    }

    pub fn records(&self) -> usize {
        self.person_of.len()
    }

    pub fn persons(&self) -> usize {
        self.members.len()
    }

    pub fn person_of(&self, record: u32) -> Option<u32> {
        self.person_of.get(record as usize).copied()
    }

    /// Candidate persons for `v`, the most likely first, down to the review threshold.
    pub fn search(&self, v: &[Value]) -> Vec<Candidate> {
        let mut persons: Vec<u32> = Vec::new();
        for (rule, block) in self.rules.iter().zip(&self.blocks) {
            let key = block::key_of(rule, |c| &v[c]);
            if key == 0 {
                continue;
            }
            if let Some(records) = block.get(&key).filter(|r| r.len() <= MAX_BLOCK) {
                persons.extend(records.iter().map(|r| self.person_of[*r as usize]));
            }
        }
        persons.sort_unstable();
        persons.dedup();
        let total = self.records().max(1) as f64;
        let mut out: Vec<Candidate> = persons
            .into_iter()
            .filter_map(|person| {
                self.members[person as usize]
                    .iter()
                    .map(|&r| {
                        let p = self.comparator.pattern(v, |c| &self.values[c][r as usize]);
                        let probability = self.comparator.probability(p, |k| {
                            let n = self.counts[k].as_ref()?.get(&v[k].norm)?;
                            Some(f64::from(*n) / total)
                        });
                        Candidate {
                            person,
                            record: r,
                            probability,
                        }
                    })
                    .max_by(|a, b| a.probability.total_cmp(&b.probability))
            })
            .filter(|c| c.probability >= self.comparator.review_threshold())
            .collect();
        out.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        out
    }

    /// What the thresholds make of `candidates` (see [`Comparator::decide`]).
    pub fn decide(&self, candidates: &[Candidate]) -> Decision {
        self.comparator.decide(candidates)
    }

    /// Adds a record to `person` (a new person when `None`); returns (record, person).
    pub fn add(&mut self, v: Vec<Value>, person: Option<u32>) -> (u32, u32) {
        let record = self.person_of.len() as u32;
        let person = match person {
            Some(p) if (p as usize) < self.members.len() => p,
            _ => {
                self.members.push(Vec::new());
                (self.members.len() - 1) as u32
            }
        };
        for (rule, block) in self.rules.iter().zip(self.blocks.iter_mut()) {
            let key = block::key_of(rule, |c| &v[c]);
            if key != 0 {
                block.entry(key).or_default().push(record);
            }
        }
        for (c, value) in v.into_iter().enumerate() {
            if let Some(counts) = self.counts[c].as_mut() {
                if !value.is_missing() {
                    *counts.entry(value.norm.clone()).or_default() += 1;
                }
            }
            self.values[c].push(value);
        }
        self.person_of.push(person);
        self.members[person as usize].push(record);
        (record, person)
    }

    /// Matches a record on arrival and files it: linked to the person found, else a new
    /// person (a review leaves it a person of its own until someone decides).
    pub fn arrive(&mut self, raw: &[&str]) -> (u32, u32, Decision) {
        let v = self.prepare(raw);
        let candidates = self.search(&v);
        let decision = self.decide(&candidates);
        let person = match &decision {
            Decision::Link(c) => Some(c.person),
            _ => None,
        };
        let (record, person) = self.add(v, person);
        (record, person, decision)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::field::FieldKind;
    use crate::linkage::{run, Dataset, Options};

    #[test]
    fn arrivals_join_their_person_and_strangers_become_new_persons() {
        let columns = vec![
            Column {
                name: "name".into(),
                kind: FieldKind::Name,
            },
            Column {
                name: "dob".into(),
                kind: FieldKind::BirthDate,
            },
            Column {
                name: "phone".into(),
                kind: FieldKind::Phone,
            },
            Column {
                name: "id".into(),
                kind: FieldKind::CitizenId,
            },
        ];
        let mut d = Dataset::new(columns.clone()).unwrap();
        let surnames = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄"];
        let given = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军"];
        let mut rows = Vec::new();
        for (a, s) in surnames.iter().enumerate() {
            for (b, g) in given.iter().enumerate() {
                let name = format!("{s}{g}");
                let dob = format!("19{:02}-{:02}-{:02}", 50 + a, 1 + b, 10 + a);
                let phone = format!("139{:04}{:04}", a * 97, b * 89);
                rows.push([name.clone(), dob.clone(), phone.clone()]);
                d.push(&name, &[&name, &dob, &phone, ""]);
                d.push(
                    &format!("{name}-2"),
                    &[&name.replace('伟', "玮"), &dob, &phone, ""],
                );
            }
        }
        let params = run(&d, &Options::default()).unwrap().params;
        let mut index = Index::new(columns, &params).unwrap();
        for r in &rows {
            let (_, _, decision) = index.arrive(&[&r[0], &r[1], &r[2], ""]);
            assert_eq!(decision, Decision::New, "{r:?}");
        }
        assert_eq!(index.persons(), rows.len());
        // The same people again, one with a homophone, one without a phone: each joins.
        let (_, person, decision) = index.arrive(&[
            &rows[0][0].replace('伟', "玮"),
            &rows[0][1],
            &rows[0][2],
            "",
        ]);
        assert!(matches!(decision, Decision::Link(_)), "{decision:?}");
        assert_eq!(person, 0);
        let (_, person, _) = index.arrive(&[&rows[5][0], &rows[5][1], "", ""]);
        assert_eq!(person, 5);
        assert_eq!(index.persons(), rows.len(), "no new person for a known one");
        // A stranger is new.
        let (_, person, decision) = index.arrive(&["欧阳修", "1907-07-07", "13100000000", ""]);
        assert_eq!(decision, Decision::New);
        assert_eq!(person as usize, rows.len());
    }
}
