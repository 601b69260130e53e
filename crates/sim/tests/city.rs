//! The synthetic city as its readers see it: the files `generate` writes, read back with the
//! `csv` crate. Determinism, referential integrity and the distributions the issue names.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use medgrid_domain::codes::CitizenId;
use medgrid_domain::org::layout::parse_layout;
use medgrid_sim::{schema, write_files, Format, Kind, Manifest, Params};

const JINHUA: &[u8] = include_bytes!("../../../data/layouts/jinhua.csv");

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()
}

fn generate(tag: &str, params: &Params) -> (PathBuf, Manifest) {
    let dir = std::env::temp_dir().join(format!("medgrid-city-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let layout = parse_layout(JINHUA).unwrap();
    let m = write_files(&layout, params, &dir, Format::Csv, |_| {}).unwrap();
    (dir, m)
}

/// A table as header → column index and rows of strings.
struct Table {
    columns: HashMap<String, usize>,
    rows: Vec<csv::StringRecord>,
}

impl Table {
    fn read(dir: &Path, file: &str) -> Table {
        let mut r = csv::Reader::from_path(dir.join(format!("{file}.csv"))).unwrap();
        let columns = r
            .headers()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, h)| (h.to_owned(), i))
            .collect();
        Table {
            columns,
            rows: r.records().map(|x| x.unwrap()).collect(),
        }
    }

    fn col<'a>(&self, row: &'a csv::StringRecord, name: &str) -> &'a str {
        &row[*self
            .columns
            .get(name)
            .unwrap_or_else(|| panic!("no column {name}"))]
    }

    fn values(&self, name: &str) -> HashSet<String> {
        self.rows
            .iter()
            .map(|r| self.col(r, name).to_owned())
            .collect()
    }

    fn count(&self, f: impl Fn(&csv::StringRecord) -> bool) -> usize {
        self.rows.iter().filter(|r| f(r)).count()
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_city() {
    let p = Params::new(21, 2_000, as_of());
    let (a, ma) = generate("a", &p);
    let (b, mb) = generate("b", &p);
    assert_eq!(ma, mb);
    for s in schema::ALL.iter().filter(|s| ma.rows(s.file).is_some()) {
        let f = format!("{}.csv", s.file);
        assert_eq!(
            std::fs::read(a.join(&f)).unwrap(),
            std::fs::read(b.join(&f)).unwrap(),
            "{f} differs between two runs"
        );
    }
    let (c, _) = generate("c", &Params::new(22, 2_000, as_of()));
    assert_ne!(
        std::fs::read(a.join("encounters.csv")).unwrap(),
        std::fs::read(c.join("encounters.csv")).unwrap()
    );
    for d in [a, b, c] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn every_reference_resolves_and_every_count_matches_the_manifest() {
    let (dir, m) = generate("refs", &Params::new(5, 3_000, as_of()));
    let tables: HashMap<&str, Table> = m
        .tables
        .iter()
        .map(|(f, _)| (*f, Table::read(&dir, f)))
        .collect();
    for (file, rows) in &m.tables {
        assert_eq!(tables[file].rows.len() as u64, *rows, "{file} rows");
        assert!(*rows > 0, "{file} is not empty");
    }
    let units = tables["units"].values("unit_code");
    let groups = tables["units"].values("group_code");
    let practitioners = tables["practitioners"].values("practitioner_id");
    let ids = |file: &str, col: &str| tables[file].values(col);
    let targets: HashMap<&str, HashSet<String>> = [
        ("resident_id", ids("residents", "resident_id")),
        ("encounter_id", ids("encounters", "encounter_id")),
        ("source_encounter_id", ids("encounters", "encounter_id")),
        ("result_encounter_id", ids("encounters", "encounter_id")),
        ("referral_id", ids("referrals", "referral_id")),
        ("team_id", ids("teams", "team_id")),
    ]
    .into_iter()
    .collect();
    let mut checked = 0;
    for s in schema::ALL {
        let Some(t) = tables.get(s.file) else {
            continue;
        };
        for (i, c) in s.columns.iter().enumerate() {
            let own_key = i == 0;
            let set = match c.kind {
                Kind::Unit => Some(&units),
                Kind::Group => Some(&groups),
                Kind::Practitioner => Some(&practitioners),
                _ if own_key => None,
                _ => targets.get(c.name),
            };
            let Some(set) = set else { continue };
            for row in &t.rows {
                let v = &row[i];
                if v.is_empty() {
                    assert!(c.nullable, "{}.{} is empty", s.file, c.name);
                    continue;
                }
                assert!(
                    set.contains(v),
                    "{}.{} = {v} refers to nothing",
                    s.file,
                    c.name
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 50_000, "references checked: {checked}");
    // Ids are dense and 1-based.
    for file in [
        "encounters",
        "referrals",
        "claims",
        "prescriptions",
        "exams",
        "follow_ups",
    ] {
        let t = &tables[file];
        let mut seen: Vec<u64> = t.rows.iter().map(|r| r[0].parse().unwrap()).collect();
        seen.sort_unstable();
        assert!(
            seen.iter().enumerate().all(|(i, v)| *v == i as u64 + 1),
            "{file} ids"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn fen(s: &str) -> i64 {
    let (y, f) = s.split_once('.').unwrap();
    y.parse::<i64>().unwrap() * 100 + f.parse::<i64>().unwrap()
}

#[test]
fn a_year_of_care_looks_like_a_chinese_city() {
    let n = 20_000usize;
    let (dir, _) = generate("dist", &Params::new(3, n as u64, as_of()));
    let enc = Table::read(&dir, "encounters");
    let units = Table::read(&dir, "units");
    let role: HashMap<String, String> = units
        .rows
        .iter()
        .map(|r| {
            (
                units.col(r, "unit_code").to_owned(),
                units.col(r, "role").to_owned(),
            )
        })
        .collect();
    let visits = enc.count(|r| enc.col(r, "kind") != "inpatient");
    let per_capita = visits as f64 / n as f64;
    let stat = |name: &str, v: f64| eprintln!("{name}: {v:.3}");
    stat("visits per capita", per_capita);
    assert!(
        (5.5..=7.5).contains(&per_capita),
        "visits per capita {per_capita}"
    );
    let admissions = enc.count(|r| enc.col(r, "kind") == "inpatient") as f64 / n as f64 * 100.0;
    stat("admissions per 100", admissions);
    assert!(
        (15.0..=25.0).contains(&admissions),
        "admissions per 100: {admissions}"
    );
    let primary = |r: &csv::StringRecord| {
        role.get(enc.col(r, "unit_code"))
            .is_some_and(|x| x == "primary")
    };
    let share =
        enc.count(|r| enc.col(r, "kind") != "inpatient" && primary(r)) as f64 / visits as f64;
    stat("primary share", share);
    assert!((0.47..=0.60).contains(&share), "primary share {share}");
    let in_region = enc.count(|r| enc.col(r, "in_region") == "1") as f64 / enc.rows.len() as f64;
    stat("in-region share", in_region);
    assert!(
        (0.88..=0.97).contains(&in_region),
        "in-region share {in_region}"
    );

    // The primary share differs from unit to unit (residents are assigned by area).
    let res = Table::read(&dir, "residents");
    let home: HashMap<String, String> = res
        .rows
        .iter()
        .map(|r| {
            (
                res.col(r, "resident_id").to_owned(),
                res.col(r, "unit_code").to_owned(),
            )
        })
        .collect();
    let mut by_unit: HashMap<&str, (u32, u32)> = HashMap::new();
    for r in enc
        .rows
        .iter()
        .filter(|r| enc.col(r, "kind") != "inpatient")
    {
        let e = by_unit
            .entry(home[enc.col(r, "resident_id")].as_str())
            .or_default();
        e.1 += 1;
        if primary(r) {
            e.0 += 1;
        }
    }
    let shares: Vec<f64> = by_unit
        .values()
        .filter(|(_, t)| *t > 800)
        .map(|(p, t)| f64::from(*p) / f64::from(*t))
        .collect();
    let (lo, hi) = shares
        .iter()
        .fold((1.0f64, 0.0f64), |(l, h), s| (l.min(*s), h.max(*s)));
    assert!(hi - lo > 0.12, "unit shares from {lo} to {hi}");

    // Money adds up on every claim; the deductible only on inpatient claims.
    let claims = Table::read(&dir, "claims");
    assert_eq!(claims.rows.len(), enc.rows.len());
    for r in &claims.rows {
        let total = fen(claims.col(r, "total"));
        let eligible = fen(claims.col(r, "eligible"));
        let deductible = fen(claims.col(r, "deductible"));
        let paid = fen(claims.col(r, "insurance_paid"));
        let own = fen(claims.col(r, "self_paid"));
        assert_eq!(paid + own, total);
        // The fund never pays more than 95 % of what is eligible above the deductible.
        assert!(
            paid * 100 <= (eligible - deductible) * 95 + 100,
            "claim {}",
            &r[0]
        );
        assert!(deductible <= eligible && eligible <= total && paid >= 0);
        if claims.col(r, "kind") != "inpatient" {
            assert_eq!(deductible, 0);
        }
    }

    // Referrals: both directions, mostly completed, each completed one with its result.
    let refs = Table::read(&dir, "referrals");
    let up = refs.count(|r| refs.col(r, "direction") == "up");
    let down = refs.count(|r| refs.col(r, "direction") == "down");
    assert!(up > 200 && down > 50, "up {up}, down {down}");
    assert!(refs.count(|r| refs.col(r, "priority") == "green") > 0);
    for r in &refs.rows {
        let done = refs.col(r, "status") == "completed";
        assert_eq!(done, !refs.col(r, "result_encounter_id").is_empty());
    }

    // Chronic follow-ups: about four a year per managed patient, most done.
    let fu = Table::read(&dir, "follow_ups");
    let ht = fu.count(|r| fu.col(r, "program") == "hypertension");
    let ht_done =
        fu.count(|r| fu.col(r, "program") == "hypertension" && !fu.col(r, "done_on").is_empty());
    let ratio = ht_done as f64 / ht as f64;
    assert!(
        (0.65..=0.95).contains(&ratio),
        "hypertension follow-ups done {ratio}"
    );
    assert!(fu.count(|r| fu.col(r, "program") == "child") > 100);
    assert!(fu.count(|r| fu.col(r, "program") == "maternal") > 20);

    // Essential medicines: more at primary units than in hospitals, about half overall.
    let rx = Table::read(&dir, "prescriptions");
    let ess = |f: &dyn Fn(&csv::StringRecord) -> bool| {
        let all: Vec<_> = rx.rows.iter().filter(|r| f(r)).collect();
        all.iter().filter(|r| rx.col(r, "essential") == "1").count() as f64 / all.len() as f64
    };
    let at_primary = ess(&|r| {
        role.get(rx.col(r, "unit_code"))
            .is_some_and(|x| x == "primary")
    });
    let elsewhere = ess(&|r| {
        role.get(rx.col(r, "unit_code"))
            .is_none_or(|x| x != "primary")
    });
    assert!(
        at_primary > elsewhere + 0.1,
        "essential share {at_primary} vs {elsewhere}"
    );
    let overall = ess(&|_| true);
    assert!((0.5..=0.85).contains(&overall), "essential share {overall}");

    // Exams from primary units are mostly read by the group's shared centres.
    let ex = Table::read(&dir, "exams");
    let from_primary: Vec<_> = ex
        .rows
        .iter()
        .filter(|r| {
            role.get(ex.col(r, "ordering_unit_code"))
                .is_some_and(|x| x == "primary")
        })
        .collect();
    let central = from_primary
        .iter()
        .filter(|r| !ex.col(r, "center_unit_code").is_empty())
        .count();
    assert!(
        central * 2 > from_primary.len(),
        "shared centre reads {central}/{}",
        from_primary.len()
    );
    assert!(ex.count(|r| ex.col(r, "recognised") == "1") > 0);
    for r in &ex.rows {
        assert!(ex.col(r, "reported_at") > ex.col(r, "ordered_at"));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_transfer_up_owes_only_the_rest_of_the_deductible() {
    let (dir, _) = generate("chain", &Params::new(8, 20_000, as_of()));
    let enc = Table::read(&dir, "encounters");
    let refs = Table::read(&dir, "referrals");
    let claims = Table::read(&dir, "claims");
    let claim: HashMap<String, &csv::StringRecord> = claims
        .rows
        .iter()
        .map(|r| (claims.col(r, "encounter_id").to_owned(), r))
        .collect();
    let deductible = |e: &str| fen(claims.col(claim[e], "deductible"));
    let kind: HashMap<String, String> = enc
        .rows
        .iter()
        .map(|r| {
            (
                enc.col(r, "encounter_id").to_owned(),
                enc.col(r, "kind").to_owned(),
            )
        })
        .collect();
    let mut chains = 0;
    for r in &refs.rows {
        let (src, res) = (
            refs.col(r, "source_encounter_id"),
            refs.col(r, "result_encounter_id"),
        );
        if res.is_empty() || kind[src] != "inpatient" || kind[res] != "inpatient" {
            continue;
        }
        if refs.col(r, "direction") == "down" {
            assert_eq!(deductible(res), 0, "none after a down-referral");
            continue;
        }
        // The level's deductible in fen, less what the stay it came from already took.
        let full = match claims.col(claim[res], "level") {
            "primary" => 30_000,
            "tertiary" => 100_000,
            _ => 60_000,
        };
        let eligible = fen(claims.col(claim[res], "eligible"));
        let expected = (full - deductible(src)).max(0).min(eligible);
        assert_eq!(deductible(res), expected, "referral {}", &r[0]);
        assert!(deductible(src) > 0);
        chains += 1;
    }
    assert!(chains > 0, "some stays were transferred up");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn residents_carry_valid_citizen_ids() {
    let (dir, _) = generate("ids", &Params::new(2, 3_000, as_of()));
    let res = Table::read(&dir, "residents");
    for r in &res.rows {
        let id = CitizenId::parse("citizen_id", res.col(r, "citizen_id")).unwrap();
        assert_eq!(id.birth_date().to_string(), res.col(r, "birth_date"));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn patient_records_differ_from_the_truth_exactly_where_the_truth_says() {
    let mut p = Params::new(4, 5_000, as_of());
    p.mpi_records = true;
    let (dir, m) = generate("mpi", &p);
    let res = Table::read(&dir, "residents");
    let rec = Table::read(&dir, "mpi_records");
    let truth = Table::read(&dir, "mpi_truth");
    assert_eq!(rec.rows.len(), truth.rows.len());
    assert_eq!(m.rows("mpi_records"), Some(rec.rows.len() as u64));
    let people: HashMap<&str, &csv::StringRecord> = res
        .rows
        .iter()
        .map(|r| (res.col(r, "resident_id"), r))
        .collect();
    let mut per_person: HashMap<&str, usize> = HashMap::new();
    let mut kinds: HashSet<String> = HashSet::new();
    for (r, t) in rec.rows.iter().zip(&truth.rows) {
        assert_eq!(rec.col(r, "record_id"), truth.col(t, "record_id"));
        let person = people[truth.col(t, "resident_id")];
        *per_person.entry(truth.col(t, "resident_id")).or_default() += 1;
        let changes: HashSet<&str> = truth
            .col(t, "corruptions")
            .split(';')
            .filter(|c| !c.is_empty())
            .collect();
        kinds.extend(changes.iter().map(|c| c.to_string()));
        let id_changed = ["missing_id", "id_typo", "id_15_digit"]
            .iter()
            .any(|c| changes.contains(c));
        assert_eq!(
            id_changed,
            rec.col(r, "citizen_id") != res.col(person, "citizen_id"),
            "record {}",
            &r[0]
        );
        if changes.contains("missing_id") {
            assert_eq!(rec.col(r, "citizen_id"), "");
        } else if changes.contains("id_15_digit") {
            assert_eq!(rec.col(r, "citizen_id").len(), 15);
        } else if changes.contains("id_typo") {
            assert!(
                CitizenId::parse("citizen_id", rec.col(r, "citizen_id")).is_err(),
                "{} vs {}",
                rec.col(r, "citizen_id"),
                res.col(person, "citizen_id")
            );
        }
        let name_changed = changes.contains("name_homophone") || changes.contains("name_variant");
        assert_eq!(name_changed, rec.col(r, "name") != res.col(person, "name"));
        assert_eq!(
            rec.col(r, "name").chars().count(),
            res.col(person, "name").chars().count()
        );
        assert_eq!(
            changes.contains("birth_day_month_swapped"),
            rec.col(r, "birth_date") != res.col(person, "birth_date")
        );
        assert_eq!(
            changes.contains("phone_changed"),
            rec.col(r, "phone") != res.col(person, "phone")
        );
        assert_eq!(
            changes.contains("address_shortened"),
            rec.col(r, "address") != res.col(person, "address")
        );
    }
    assert_eq!(per_person.len(), 5_000, "everyone has a record");
    let several = per_person.values().filter(|n| **n > 1).count();
    assert!(
        several > 2_000,
        "many are known at several units ({several})"
    );
    for k in [
        "missing_id",
        "id_typo",
        "id_15_digit",
        "name_homophone",
        "name_variant",
        "birth_day_month_swapped",
        "phone_changed",
        "address_shortened",
    ] {
        assert!(kinds.contains(k), "{k} occurs");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn referrals_contracts_and_care_hang_together_in_time() {
    let mut p = Params::new(6, 20_000, as_of());
    p.months = 24;
    let (dir, m) = generate("time", &p);
    let enc = Table::read(&dir, "encounters");
    let refs = Table::read(&dir, "referrals");
    let row: HashMap<&str, &csv::StringRecord> = enc
        .rows
        .iter()
        .map(|r| (enc.col(r, "encounter_id"), r))
        .collect();
    let end = "2027-01-01";
    for r in &refs.rows {
        let id = refs.col(r, "referral_id");
        let src = row[refs.col(r, "source_encounter_id")];
        let asked = refs.col(r, "requested_at");
        assert!(
            asked >= enc.col(src, "started_at"),
            "referral {id} sent before its source began"
        );
        assert_eq!(enc.col(src, "resident_id"), refs.col(r, "resident_id"));
        let result = refs.col(r, "result_encounter_id");
        if result.is_empty() {
            continue;
        }
        let res = row[result];
        assert_eq!(
            enc.col(res, "resident_id"),
            refs.col(r, "resident_id"),
            "referral {id}"
        );
        assert_eq!(
            enc.col(res, "referral_id"),
            id,
            "the caused encounter names referral {id}"
        );
        assert!(
            enc.col(res, "started_at") > asked,
            "referral {id} caused care before it was sent"
        );
        assert_eq!(enc.col(res, "unit_code"), refs.col(r, "to_unit_code"));
        assert_eq!(
            enc.col(res, "department_code"),
            refs.col(r, "to_department_code")
        );
        if enc.col(src, "kind") == "inpatient" {
            assert!(
                enc.col(res, "started_at") >= enc.col(src, "ended_at"),
                "referral {id}: stays overlap"
            );
        }
    }
    // Every encounter that names a referral is that referral's result, and all care falls in
    // the period.
    let results: HashSet<&str> = refs
        .rows
        .iter()
        .map(|r| refs.col(r, "result_encounter_id"))
        .collect();
    for r in &enc.rows {
        let referral = enc.col(r, "referral_id");
        assert!(referral.is_empty() || results.contains(enc.col(r, "encounter_id")));
        assert!(enc.col(r, "started_at") >= "2025-01-01" && enc.col(r, "started_at") < end);
        assert!(enc.col(r, "ended_at") > enc.col(r, "started_at"));
    }
    // Follow-ups name a team only while the resident's contract (or its renewal) runs.
    let contracts = Table::read(&dir, "contracts");
    let mut terms: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
    for c in &contracts.rows {
        terms
            .entry(contracts.col(c, "resident_id"))
            .or_default()
            .push((contracts.col(c, "signed_on"), contracts.col(c, "ends_on")));
    }
    let renewed = terms.values().filter(|t| t.len() > 1).count();
    assert!(
        renewed * 2 > terms.len(),
        "most contracts are renewed ({renewed}/{})",
        terms.len()
    );
    let fu = Table::read(&dir, "follow_ups");
    for f in &fu.rows {
        if fu.col(f, "team_id").is_empty() {
            continue;
        }
        let due = fu.col(f, "due_on");
        let t = &terms[fu.col(f, "resident_id")];
        assert!(
            t.iter().any(|(from, to)| *from <= due && due < *to) || due < t[0].0,
            "follow-up {}",
            &f[0]
        );
    }
    // Year-on-year: the second year's primary share is above the first's.
    let units = Table::read(&dir, "units");
    let primary: HashSet<String> = units
        .rows
        .iter()
        .filter(|u| units.col(u, "role") == "primary")
        .map(|u| units.col(u, "unit_code").to_owned())
        .collect();
    let share = |year: &str| {
        let visits: Vec<_> = enc
            .rows
            .iter()
            .filter(|r| {
                enc.col(r, "kind") != "inpatient" && enc.col(r, "started_at").starts_with(year)
            })
            .collect();
        visits
            .iter()
            .filter(|r| primary.contains(enc.col(r, "unit_code")))
            .count() as f64
            / visits.len() as f64
    };
    assert!(
        share("2026") > share("2025") + 0.005,
        "{} vs {}",
        share("2026"),
        share("2025")
    );
    assert!(m.rows("encounters").unwrap() > 250_000);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_leap_day_reference_keeps_the_age_pyramid() {
    let (dir, _) = generate(
        "leap",
        &Params::new(1, 5_000, NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()),
    );
    let res = Table::read(&dir, "residents");
    let infants = res.count(|r| res.col(r, "birth_date") > "2023-02-28");
    assert!(infants < 5_000 / 50, "{infants} born in the last year");
    let _ = std::fs::remove_dir_all(dir);
}

/// The bytes of a small city, pinned: a change of platform, dependency or generator that
/// alters a single value shows here. When the generator changes on purpose, the new digest is
/// printed by the failing assertion.
#[test]
fn a_small_city_has_pinned_bytes() {
    let mut p = Params::new(2025, 400, as_of());
    p.mpi_records = true;
    let (dir, m) = generate("golden", &p);
    // FNV-1a over every file in manifest order.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (file, _) in &m.tables {
        for b in std::fs::read(dir.join(format!("{file}.csv"))).unwrap() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!(format!("{h:016x}"), GOLDEN);
}

const GOLDEN: &str = "ce7ff63b7de46bf7";
