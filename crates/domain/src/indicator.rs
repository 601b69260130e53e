//! The indicator library (指标库): what the seeds judge the reform by, as data.
//!
//! An indicator is a formula over named measures (counts the platform keeps from its facts),
//! with a unit, a direction, a target and red/amber/green thresholds that change over time
//! (versions with the month they take effect). The library ships as `indicator/library.json`;
//! a group may set its own targets from a month on, and those versions win from that month.
//! Values are kept exact: a value is its numerator and denominator, and targets are compared
//! in integer arithmetic, so a value that sits on a threshold is never misjudged by rounding.

pub mod doc;
pub mod period;

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use period::{Month, Period, PeriodKind};

use crate::FieldError;

/// A decimal with two places, kept as hundredths (67.5 is 6750).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Level(pub i64);

impl Level {
    pub fn parse(field: &str, raw: &str) -> Result<Level, FieldError> {
        let raw = raw.trim();
        let bad = || {
            FieldError::new(
                field,
                "decimal",
                format!("“{raw}”不是最多两位小数的数值"),
                format!("“{raw}” is not a number with at most two decimals"),
            )
        };
        let (neg, body) = match raw.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, raw),
        };
        let (int, frac) = match body.split_once('.') {
            Some((_, "")) => return Err(bad()),
            Some(parts) => parts,
            None => (body, ""),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || (!frac.is_empty() && !digits(frac)) || frac.len() > 2 || int.len() > 12 {
            return Err(bad());
        }
        let whole: i64 = int.parse().map_err(|_| bad())?;
        let mut cents: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| bad())?
        };
        if frac.len() == 1 {
            cents *= 10;
        }
        let v = whole * 100 + cents;
        Ok(Level(if neg { -v } else { v }))
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.abs();
        match a % 100 {
            0 => write!(f, "{sign}{}", a / 100),
            c if c % 10 == 0 => write!(f, "{sign}{}.{}", a / 100, c / 10),
            c => write!(f, "{sign}{}.{c:02}", a / 100),
        }
    }
}

impl Serialize for Level {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Level, D::Error> {
        let raw = String::deserialize(d)?;
        Level::parse("level", &raw).map_err(|e| serde::de::Error::custom(e.message_en))
    }
}

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Higher,
    Lower,
}

/// How an indicator is computed from measures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Formula {
    /// numerator ÷ denominator × factor, both measures over the period.
    Ratio {
        numerator: String,
        denominator: String,
        factor: i64,
    },
    /// (measure in the period − the same period a year earlier) ÷ the earlier × 100: the
    /// growth targets of the seeds ("下转人次年增长10%").
    Growth { measure: String },
}

impl Formula {
    /// The measures the formula reads.
    pub fn measures(&self) -> Vec<&str> {
        match self {
            Formula::Ratio {
                numerator,
                denominator,
                ..
            } => vec![numerator, denominator],
            Formula::Growth { measure } => vec![measure],
        }
    }
}

/// Target and amber line in force from a month on. Green at or beyond the target, amber at
/// or beyond the amber line, red otherwise ("beyond" follows the direction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    pub from: String,
    pub target: Level,
    pub amber: Level,
}

impl Targets {
    pub fn from_month(&self) -> Option<Month> {
        Month::of_day(&self.from)
    }

    /// The amber line must not be beyond the target.
    pub fn check(&self, direction: Direction) -> Result<(), FieldError> {
        let ok = match direction {
            Direction::Higher => self.amber <= self.target,
            Direction::Lower => self.amber >= self.target,
        };
        if ok {
            Ok(())
        } else {
            Err(FieldError::new(
                "amber",
                "amber_beyond_target",
                "黄色预警线不能优于目标值",
                "the amber line cannot be better than the target",
            ))
        }
    }
}

/// One indicator of the library.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Indicator {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
    pub definition_zh: String,
    pub definition_en: String,
    pub formula: Formula,
    /// `%`, `天`, …
    pub unit: String,
    pub direction: Direction,
    pub periods: Vec<PeriodKind>,
    /// Requirement ids (R11.1 …).
    pub requirement: String,
    /// The seed text and clause the indicator and its target come from.
    pub source: String,
    /// The national definition followed, when there is one.
    #[serde(default)]
    pub national_definition: Option<String>,
    /// Shown on the cockpit's first row.
    #[serde(default)]
    pub headline: bool,
    pub versions: Vec<Targets>,
}

impl Indicator {
    /// The library's targets in force in `month` (the latest version that has started).
    pub fn targets_in(&self, month: Month) -> Option<&Targets> {
        self.versions
            .iter()
            .filter(|v| v.from_month().is_some_and(|m| m <= month))
            .max_by_key(|v| v.from_month())
    }
}

/// The library as shipped: a version and its indicators.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Library {
    pub version: String,
    pub indicators: Vec<Indicator>,
}

/// Problems with a library file, for whoever edits it.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("indicator library is not valid JSON: {0}")]
    Json(String),
    #[error("indicator {id}: {reason}")]
    Indicator { id: String, reason: String },
}

impl Library {
    /// The library that ships with medgrid.
    pub fn shipped() -> Result<Library, LibraryError> {
        Library::parse(include_str!("indicator/library.json"))
    }

    /// Parses and checks a library: unique ids, dated versions, sane thresholds, positive
    /// factors. (Whether the measures a formula names exist is the analytics crate's to say:
    /// `medgrid_analytics::evaluate::check_library`, run when the server starts.)
    pub fn parse(text: &str) -> Result<Library, LibraryError> {
        let lib: Library =
            serde_json::from_str(text).map_err(|e| LibraryError::Json(e.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        for i in &lib.indicators {
            let fail = |reason: String| LibraryError::Indicator {
                id: i.id.clone(),
                reason,
            };
            if !seen.insert(i.id.as_str()) {
                return Err(fail("duplicate id".into()));
            }
            if i.versions.is_empty() {
                return Err(fail("no target version".into()));
            }
            for v in &i.versions {
                if v.from_month().is_none() {
                    return Err(fail(format!("version date {} is not YYYY-MM", v.from)));
                }
                v.check(i.direction).map_err(|e| fail(e.message_en))?;
            }
            if let Formula::Ratio { factor, .. } = i.formula {
                if factor <= 0 {
                    return Err(fail("factor must be positive".into()));
                }
            }
        }
        Ok(lib)
    }

    pub fn get(&self, id: &str) -> Option<&Indicator> {
        self.indicators.iter().find(|i| i.id == id)
    }
}

/// Red, amber, green — or no judgement when there is nothing to judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rag {
    Green,
    Amber,
    Red,
    None,
}

impl Rag {
    pub fn label_zh(self) -> &'static str {
        match self {
            Rag::Green => "达标",
            Rag::Amber => "预警",
            Rag::Red => "未达标",
            Rag::None => "无数据",
        }
    }
}

/// An exact value: numerator over denominator, times the factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Value {
    pub numerator: i64,
    pub denominator: i64,
    pub factor: i64,
}

impl Value {
    /// The ratio for a `Ratio` formula.
    pub fn ratio(numerator: i64, denominator: i64, factor: i64) -> Value {
        Value {
            numerator,
            denominator,
            factor,
        }
    }

    /// Growth in percent: (now − before) ÷ before × 100.
    pub fn growth(now: i64, before: i64) -> Value {
        Value {
            numerator: now - before,
            denominator: before,
            factor: 100,
        }
    }

    /// The value as a float for display and charts; `None` when the denominator is zero.
    pub fn as_f64(self) -> Option<f64> {
        (self.denominator != 0)
            .then(|| self.numerator as f64 * self.factor as f64 / self.denominator as f64)
    }

    /// Rounded half away from zero to two decimals, as shown and exported.
    pub fn rounded(self) -> Option<Level> {
        if self.denominator == 0 {
            return None;
        }
        let n = i128::from(self.numerator) * i128::from(self.factor) * 100;
        let d = i128::from(self.denominator);
        let (n, d) = if d < 0 { (-n, -d) } else { (n, d) };
        let q = (n.abs() * 2 + d) / (2 * d);
        let q = if n < 0 { -q } else { q };
        i64::try_from(q).ok().map(Level)
    }

    /// The exact value against a level, in integer arithmetic: n·f / d against L/100 is
    /// 100·n·f against L·d, the comparison turning round when d is negative.
    fn compare(self, level: Level) -> std::cmp::Ordering {
        let lhs = i128::from(self.numerator) * i128::from(self.factor) * 100;
        let rhs = i128::from(level.0) * i128::from(self.denominator);
        if self.denominator > 0 {
            lhs.cmp(&rhs)
        } else {
            rhs.cmp(&lhs)
        }
    }

    /// Red, amber or green against the targets in force.
    pub fn rag(self, direction: Direction, targets: &Targets) -> Rag {
        if self.denominator == 0 {
            return Rag::None;
        }
        let meets = |l: Level| match direction {
            Direction::Higher => self.compare(l).is_ge(),
            Direction::Lower => self.compare(l).is_le(),
        };
        if meets(targets.target) {
            Rag::Green
        } else if meets(targets.amber) {
            Rag::Amber
        } else {
            Rag::Red
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(target: &str, amber: &str) -> Targets {
        Targets {
            from: "2024-01".into(),
            target: Level::parse("t", target).unwrap(),
            amber: Level::parse("a", amber).unwrap(),
        }
    }

    #[test]
    fn levels_parse_exactly_and_print_back() {
        for (raw, v, shown) in [
            ("67.5", 6750, "67.5"),
            ("90", 9000, "90"),
            ("0.05", 5, "0.05"),
            ("-3.25", -325, "-3.25"),
        ] {
            let l = Level::parse("target", raw).unwrap();
            assert_eq!(l, Level(v));
            assert_eq!(l.to_string(), shown);
        }
        for bad in ["", "1.234", "abc", "1.", ".5", "1e3"] {
            assert_eq!(Level::parse("target", bad).unwrap_err().field, "target");
        }
    }

    #[test]
    fn rag_at_the_edges_of_higher_is_better() {
        let th = t("90", "85");
        // exactly on the target: 9 of 10 is 90%.
        assert_eq!(
            Value::ratio(9, 10, 100).rag(Direction::Higher, &th),
            Rag::Green
        );
        // a hair below: 899999/1000000 = 89.9999%.
        assert_eq!(
            Value::ratio(899_999, 1_000_000, 100).rag(Direction::Higher, &th),
            Rag::Amber
        );
        // exactly on the amber line, and just under it.
        assert_eq!(
            Value::ratio(17, 20, 100).rag(Direction::Higher, &th),
            Rag::Amber
        );
        assert_eq!(
            Value::ratio(84_999, 100_000, 100).rag(Direction::Higher, &th),
            Rag::Red
        );
        assert_eq!(
            Value::ratio(0, 0, 100).rag(Direction::Higher, &th),
            Rag::None
        );
    }

    #[test]
    fn rag_at_the_edges_of_lower_is_better_and_of_growth() {
        let th = t("9", "10");
        assert_eq!(
            Value::ratio(90, 10, 1).rag(Direction::Lower, &th),
            Rag::Green
        );
        assert_eq!(
            Value::ratio(91, 10, 1).rag(Direction::Lower, &th),
            Rag::Amber
        );
        assert_eq!(
            Value::ratio(100, 10, 1).rag(Direction::Lower, &th),
            Rag::Amber
        );
        assert_eq!(
            Value::ratio(101, 10, 1).rag(Direction::Lower, &th),
            Rag::Red
        );
        let growth = t("10", "0");
        assert_eq!(
            Value::growth(110, 100).rag(Direction::Higher, &growth),
            Rag::Green
        );
        assert_eq!(
            Value::growth(109, 100).rag(Direction::Higher, &growth),
            Rag::Amber
        );
        assert_eq!(
            Value::growth(100, 100).rag(Direction::Higher, &growth),
            Rag::Amber
        );
        assert_eq!(
            Value::growth(99, 100).rag(Direction::Higher, &growth),
            Rag::Red
        );
        assert_eq!(
            Value::growth(5, 0).rag(Direction::Higher, &growth),
            Rag::None
        );
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(Value::ratio(2, 3, 100).rounded(), Some(Level(6667)));
        assert_eq!(Value::ratio(1, 8, 1).rounded(), Some(Level(13)));
        assert_eq!(Value::growth(95, 100).rounded(), Some(Level(-500)));
        assert_eq!(Value::ratio(1, 0, 100).rounded(), None);
    }

    #[test]
    fn versions_apply_from_their_month() {
        let lib = Library::shipped().unwrap();
        let i = lib.get("primary_visit_share").unwrap();
        let first = i
            .versions
            .iter()
            .filter_map(|v| v.from_month())
            .min()
            .unwrap();
        assert!(i.targets_in(first.plus(-1)).is_none());
        assert_eq!(i.targets_in(first).unwrap().from_month(), Some(first));
    }

    #[test]
    fn the_shipped_library_is_valid_and_names_every_seed_indicator() {
        let lib = Library::shipped().unwrap();
        for id in [
            "in_region_visit_rate",
            "primary_visit_share",
            "chronic_primary_visit_share",
            "hypertension_standard_management",
            "diabetes_standard_management",
            "contract_rate",
            "key_population_contract_rate",
            "essential_medicine_share",
            "lead_down_referral_growth",
            "chronic_down_referral_growth",
            "referral_growth",
            "average_length_of_stay",
            "tcm_physician_share",
        ] {
            assert!(lib.get(id).is_some(), "{id} missing");
        }
        let bad = r#"{"version":"x","indicators":[{"id":"a","name_zh":"a","name_en":"a",
            "definition_zh":"","definition_en":"","formula":{"growth":{"measure":"visits"}},
            "unit":"%","direction":"higher","periods":["month"],"requirement":"R11","source":"",
            "versions":[{"from":"2024-01","target":"10","amber":"20"}]}]}"#;
        assert!(matches!(
            Library::parse(bad),
            Err(LibraryError::Indicator { .. })
        ));
    }
}
