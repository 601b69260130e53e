//! Residents of the grids, generated household by household as a stream (memory stays
//! bounded whatever the size of the city).

use chrono::{Datelike, NaiveDate};

use medgrid_domain::codes::{CitizenId, DivisionCode, Sex};
use medgrid_domain::org::layout::Layout;
use medgrid_domain::org::MemberRole;

use crate::rng::{Rng, Weighted};
use crate::tables;

/// A primary unit and the residents who live in its area (服务片区).
#[derive(Debug, Clone)]
pub struct Catchment {
    pub unit_code: String,
    pub group_code: String,
    pub grid_code: String,
    pub division: DivisionCode,
    /// The town or street part of the unit's name, the start of its residents' addresses.
    pub place: String,
    /// Relative population of the area.
    pub weight: f64,
}

/// The primary units of every group, each with a population weight drawn from the seed
/// (areas differ several-fold in size, as township and street populations do).
pub fn catchments(layout: &Layout, seed: u64) -> Vec<Catchment> {
    let city_division = layout.city.division_code.clone();
    layout
        .units
        .iter()
        .filter(|u| u.role == MemberRole::Primary)
        .filter_map(|u| {
            let group = u.group_code.clone()?;
            let grid = u.grid_code.clone()?;
            let division = u
                .division_code
                .clone()
                .unwrap_or_else(|| city_division.clone());
            let mut r = Rng::stream(seed, "catchment", hash(&u.code));
            // Street community centres serve denser areas than township hospitals.
            let base = if u.name.contains("街道") { 2.0 } else { 1.0 };
            Some(Catchment {
                place: place_of(&u.name),
                unit_code: u.code.clone(),
                group_code: group,
                grid_code: grid,
                division,
                weight: base * (0.5 + r.unit()),
            })
        })
        .collect()
}

fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// "婺城区白龙桥镇中心卫生院" → "婺城区白龙桥镇".
fn place_of(unit_name: &str) -> String {
    for suffix in ["社区卫生服务中心", "中心卫生院", "卫生院"] {
        if let Some(p) = unit_name.strip_suffix(suffix) {
            return p.to_owned();
        }
    }
    unit_name.to_owned()
}

/// How a resident is insured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insurance {
    /// 城镇职工基本医疗保险
    Employee,
    /// 城乡居民基本医疗保险
    Resident,
}

impl Insurance {
    pub fn as_str(self) -> &'static str {
        match self {
            Insurance::Employee => "employee",
            Insurance::Resident => "resident",
        }
    }
}

/// One synthetic resident.
#[derive(Debug, Clone, PartialEq)]
pub struct Resident {
    /// 1-based, dense: resident `n` is the `n`-th generated.
    pub id: u64,
    pub household_id: u64,
    pub citizen_id: CitizenId,
    pub name: String,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    pub phone: String,
    pub address: String,
    /// Code of the primary unit whose area the resident lives in.
    pub unit_code: String,
    pub group_code: String,
    pub grid_code: String,
    pub insurance: Insurance,
    pub hypertension: bool,
    pub diabetes: bool,
    pub severe_mental_illness: bool,
    /// Five-colour grade when pregnant (R8.2).
    pub maternal_risk: Option<&'static str>,
}

impl Resident {
    pub fn age_on(&self, day: NaiveDate) -> u32 {
        let mut age = day.year() - self.birth_date.year();
        if (day.month(), day.day()) < (self.birth_date.month(), self.birth_date.day()) {
            age -= 1;
        }
        u32::try_from(age).unwrap_or(0)
    }
}

const VILLAGE_WORDS: &[&str] = &[
    "新华", "建设", "东方", "和平", "幸福", "光明", "胜利", "红旗", "团结", "前进", "人民", "长春",
    "新民", "永安", "兴隆", "丰收", "民主", "联合", "石门", "后宅", "山口", "溪口", "下徐", "上塘",
    "中村",
];

/// Days of birth dates a population spans: the oldest age drawn and a margin.
const SEQUENCE_DAYS: usize = 366 * (tables::MAX_AGE as usize + 2);

/// The stream of residents: households are drawn one after another until `count` residents
/// exist (the last household is cut to fit).
pub struct Population {
    seed: u64,
    count: u64,
    as_of: NaiveDate,
    catchments: Vec<Catchment>,
    areas: Weighted,
    /// Ages of household heads (adults) and of the other members, by single year, set so
    /// that everyone together follows the census pyramid.
    head_ages: Weighted,
    member_ages: Weighted,
    sizes: Weighted,
    surnames: Weighted,
    risk: Weighted,
    /// Next sequence number per (division, birth date, sex) so that citizen IDs never repeat.
    /// Indexed by (division, days before `as_of`, sex); 0 is "none yet", else next + 1. A flat
    /// table (a few MB) rather than a map: it is touched for every resident.
    sequences: Vec<u16>,
    divisions: Vec<DivisionCode>,
    /// "浙江省金华市": the start of every address.
    city_prefix: String,
    next_id: u64,
    next_household: u64,
    pending: Vec<Resident>,
}

impl Population {
    /// Residents of the layout's grids as they stand on `as_of`.
    pub fn new(layout: &Layout, seed: u64, count: u64, as_of: NaiveDate) -> Population {
        let catchments = catchments(layout, seed);
        let mut divisions: Vec<DivisionCode> = Vec::new();
        for c in &catchments {
            if !divisions.contains(&c.division) {
                divisions.push(c.division.clone());
            }
        }
        Population {
            seed,
            count,
            as_of,
            areas: Weighted::new(catchments.iter().map(|c| c.weight)),
            catchments,
            head_ages: Weighted::new(year_shares().iter().enumerate().map(|(a, p)| {
                if a >= 18 {
                    *p
                } else {
                    0.0
                }
            })),
            member_ages: member_ages(),
            sizes: Weighted::new(tables::HOUSEHOLD_SIZES),
            surnames: Weighted::new(tables::SURNAMES.iter().map(|(_, w)| *w)),
            risk: Weighted::new(tables::MATERNAL_RISK.iter().map(|(_, w)| *w)),
            sequences: vec![0; divisions.len() * SEQUENCE_DAYS * 2],
            divisions,
            city_prefix: format!(
                "{}{}",
                layout
                    .city
                    .division_code
                    .province_name()
                    .unwrap_or_default(),
                layout.city.name
            ),
            next_id: 1,
            next_household: 1,
            pending: Vec::new(),
        }
    }

    pub fn catchments(&self) -> &[Catchment] {
        &self.catchments
    }

    fn age(&self, r: &mut Rng, head: bool) -> u32 {
        r.weighted(if head {
            &self.head_ages
        } else {
            &self.member_ages
        }) as u32
    }

    fn birth_date(&self, r: &mut Rng, age: u32) -> NaiveDate {
        // Born between `age + 1` years and `age` years before the reference day.
        // By months, so that a 29 February reference day falls back to the 28th.
        let latest = self
            .as_of
            .checked_sub_months(chrono::Months::new(12 * age))
            .unwrap_or(self.as_of);
        let span = 365;
        latest - chrono::Days::new(1 + r.below(span))
    }

    fn citizen_id(
        &mut self,
        r: &mut Rng,
        division: usize,
        birth: NaiveDate,
        sex: Sex,
    ) -> Option<CitizenId> {
        let male = sex == Sex::Male;
        let start = r.below(200) as u16;
        let days = usize::try_from((self.as_of - birth).num_days()).ok()?;
        let slot = self.sequences.get_mut(
            (division * SEQUENCE_DAYS + days.min(SEQUENCE_DAYS - 1)) * 2 + usize::from(male),
        )?;
        if *slot == 0 {
            *slot = start + 1;
        }
        let n = *slot - 1;
        // The sequence's last digit is odd for men, even for women (GB 11643); 500 of each per
        // district and day, far above any real city's births on one day in one district.
        let sequence = (n % 500) * 2 + u16::from(male);
        *slot = (n + 1) % 10_000 + 1;
        CitizenId::build(&self.divisions[division], birth, sequence)
    }

    fn household(&mut self) {
        let hid = self.next_household;
        self.next_household += 1;
        let mut r = Rng::stream(self.seed, "household", hid);
        let area = r.weighted(&self.areas);
        let division = self
            .divisions
            .iter()
            .position(|d| *d == self.catchments[area].division)
            .unwrap_or(0);
        let size = match r.weighted(&self.sizes) {
            4 => 5 + r.below(3) as usize,
            n => n + 1,
        };
        let surname = tables::SURNAMES[r.weighted(&self.surnames)].0;
        let village = VILLAGE_WORDS[r.below(VILLAGE_WORDS.len() as u64) as usize];
        let catchment = &self.catchments[area];
        let kind = if catchment.place.ends_with("街道") {
            "社区"
        } else {
            "村"
        };
        let address = format!(
            "{}{}{}{}{}号",
            self.city_prefix,
            catchment.place,
            village,
            kind,
            1 + r.below(300)
        );
        let head_phone = phone(&mut r);
        for member in 0..size {
            if self.next_id > self.count {
                break;
            }
            let id = self.next_id;
            self.next_id += 1;
            let age = self.age(&mut r, member == 0);
            let sex = if r.chance(tables::male_share(age)) {
                Sex::Male
            } else {
                Sex::Female
            };
            let birth = self.birth_date(&mut r, age);
            let Some(citizen_id) = self.citizen_id(&mut r, division, birth, sex) else {
                continue;
            };
            // Most members share the head's surname; spouses and some children do not.
            let family = if member == 0 || r.chance(0.7) {
                surname
            } else {
                tables::SURNAMES[r.weighted(&self.surnames)].0
            };
            let given_pool = if sex == Sex::Male {
                tables::GIVEN_MALE
            } else {
                tables::GIVEN_FEMALE
            };
            let mut name = family.to_owned();
            name.push_str(given_pool[r.below(given_pool.len() as u64) as usize]);
            if r.chance(0.8) {
                name.push_str(given_pool[r.below(given_pool.len() as u64) as usize]);
            }
            let phone = if age < 16 {
                head_phone.clone()
            } else {
                phone(&mut r)
            };
            let pregnant = sex == Sex::Female && r.chance(tables::pregnant(age));
            let maternal_risk = pregnant.then(|| tables::MATERNAL_RISK[r.weighted(&self.risk)].0);
            let resident = Resident {
                id,
                household_id: hid,
                citizen_id,
                name,
                sex,
                birth_date: birth,
                phone,
                address: address.clone(),
                unit_code: self.catchments[area].unit_code.clone(),
                group_code: self.catchments[area].group_code.clone(),
                grid_code: self.catchments[area].grid_code.clone(),
                insurance: if r.chance(tables::employee_insurance(age)) {
                    Insurance::Employee
                } else {
                    Insurance::Resident
                },
                hypertension: r.chance(tables::hypertension(age)),
                diabetes: r.chance(tables::diabetes(age)),
                severe_mental_illness: age >= 15 && r.chance(tables::SEVERE_MENTAL_ILLNESS),
                maternal_risk,
            };
            self.pending.push(resident);
        }
        self.pending.reverse();
    }
}

/// The census pyramid by single year of age (a band's share spread evenly over its years).
fn year_shares() -> Vec<f64> {
    (0..=tables::MAX_AGE)
        .map(|a| {
            let band = (a / 5).min(17) as usize;
            let years = if band == 17 {
                tables::MAX_AGE - 85 + 1
            } else {
                5
            };
            tables::AGE_BANDS[band] / f64::from(years)
        })
        .collect()
}

/// Mean household size as drawn (sizes 1–4, and 5–7 for "5+").
fn mean_household() -> f64 {
    let t = tables::HOUSEHOLD_SIZES;
    (t[0] + 2.0 * t[1] + 3.0 * t[2] + 4.0 * t[3] + 6.0 * t[4]) / t.iter().sum::<f64>()
}

/// Ages of members other than the head. Heads (a share h = 1/mean size of everyone) are all
/// adults, so the others must hold all the children: P_member(a) = (P(a) − h·P_head(a)) / (1 − h).
fn member_ages() -> Weighted {
    let shares = year_shares();
    let total: f64 = shares.iter().sum();
    let adult: f64 = shares.iter().skip(18).sum();
    let h = 1.0 / mean_household();
    Weighted::new(shares.iter().enumerate().map(|(a, p)| {
        let p = p / total;
        let head = if a >= 18 { p * total / adult } else { 0.0 };
        ((p - h * head) / (1.0 - h)).max(0.0)
    }))
}

fn phone(r: &mut Rng) -> String {
    let prefix = tables::PHONE_PREFIXES[r.below(tables::PHONE_PREFIXES.len() as u64) as usize];
    let mut n = r.below(100_000_000);
    let mut digits = [b'0'; 8];
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let mut s = String::with_capacity(11);
    s.push_str(prefix);
    s.extend(digits.iter().map(|&b| char::from(b)));
    s
}

impl Iterator for Population {
    type Item = Resident;

    fn next(&mut self) -> Option<Resident> {
        loop {
            if let Some(r) = self.pending.pop() {
                return Some(r);
            }
            if self.next_id > self.count || self.catchments.is_empty() {
                return None;
            }
            self.household();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medgrid_domain::org::layout::parse_layout;
    use std::collections::HashSet;

    const JINHUA: &[u8] = include_bytes!("../../../data/layouts/jinhua.csv");

    fn as_of() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()
    }

    fn people(n: u64, seed: u64) -> Vec<Resident> {
        Population::new(&parse_layout(JINHUA).unwrap(), seed, n, as_of()).collect()
    }

    #[test]
    fn exactly_the_requested_count_with_dense_ids() {
        let p = people(5_000, 1);
        assert_eq!(p.len(), 5_000);
        assert!(p.iter().enumerate().all(|(i, r)| r.id == i as u64 + 1));
    }

    #[test]
    fn same_seed_same_people_other_seed_other_people() {
        assert_eq!(people(2_000, 7), people(2_000, 7));
        assert_ne!(people(2_000, 7), people(2_000, 8));
    }

    #[test]
    fn citizen_ids_are_valid_unique_and_agree_with_the_person() {
        let p = people(30_000, 3);
        let mut seen = HashSet::new();
        for r in &p {
            let parsed = CitizenId::parse("citizen_id", r.citizen_id.as_str()).unwrap();
            assert_eq!(parsed.birth_date(), r.birth_date);
            assert_eq!(parsed.sex(), r.sex);
            assert!(
                seen.insert(r.citizen_id.as_str().to_owned()),
                "duplicate {}",
                r.citizen_id
            );
            assert!(r.phone.len() == 11 && r.phone.starts_with('1'));
            assert!(r.address.contains("号"));
        }
    }

    #[test]
    fn distributions_match_their_sources() {
        let p = people(60_000, 11);
        let n = p.len() as f64;
        let share =
            |f: &dyn Fn(&Resident) -> bool| p.iter().filter(|r| f(r)).count() as f64 / n * 100.0;
        let day = as_of();
        let children = share(&|r| r.age_on(day) <= 14);
        let old = share(&|r| r.age_on(day) >= 65);
        assert!((children - 17.95).abs() < 1.0, "0–14: {children}");
        assert!((old - 13.50).abs() < 1.5, "65+: {old}");
        let adults: Vec<&Resident> = p.iter().filter(|r| r.age_on(day) >= 18).collect();
        let a = adults.len() as f64;
        let ht = adults.iter().filter(|r| r.hypertension).count() as f64 / a * 100.0;
        let dm = adults.iter().filter(|r| r.diabetes).count() as f64 / a * 100.0;
        assert!((ht - 27.5).abs() < 1.5, "hypertension {ht}");
        assert!((dm - 11.9).abs() < 1.0, "diabetes {dm}");
        let male = share(&|r| r.sex == Sex::Male);
        assert!((male - 51.2).abs() < 1.0, "male {male}");
        let households: HashSet<u64> = p.iter().map(|r| r.household_id).collect();
        let mean = n / households.len() as f64;
        assert!((mean - 2.62).abs() < 0.15, "household size {mean}");
        assert!(p
            .iter()
            .filter(|r| r.maternal_risk.is_some())
            .all(|r| r.sex == Sex::Female));
        assert!(p
            .iter()
            .all(|r| r.insurance == Insurance::Resident || r.age_on(day) >= 18));
    }

    #[test]
    fn residents_live_in_primary_units_of_every_group() {
        let p = people(20_000, 5);
        let groups: HashSet<&str> = p.iter().map(|r| r.group_code.as_str()).collect();
        assert_eq!(groups.len(), 3);
        let units: HashSet<&str> = p.iter().map(|r| r.unit_code.as_str()).collect();
        assert_eq!(units.len(), 41, "all 41 primary units have residents");
    }
}
