//! Assessment of members (考核, R11.2): a scheme scores each member out of 100 across weighted
//! dimensions, each dimension a weighted set of indicators with a scoring rule.
//!
//! Rules: `linear` (full points at the target, none at the floor, in proportion between),
//! `threshold` (full points when green, half when amber, none when red) and `rank` (full
//! points for the best member, none for the last, in proportion by position; ties share the
//! better position). An item without data is left out and its dimension is scored over the
//! items it has, so a member is not punished for what the platform cannot count. Item scores
//! are rounded to two decimals, dimension scores likewise, and the total is their sum: the
//! same inputs always give the same report.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::indicator::{Direction, Level, Library, Rag, Targets, Value};

/// How an item turns a value into points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    Linear { floor: Level },
    Threshold,
    Rank,
}

impl Rule {
    pub fn label_zh(&self) -> String {
        match self {
            Rule::Linear { floor } => format!("线性（{floor} 起计分，达目标满分）"),
            Rule::Threshold => "达标满分、预警半分、未达标不得分".into(),
            Rule::Rank => "按排名比例计分".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub indicator: String,
    pub points: Level,
    pub rule: Rule,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dimension {
    pub id: String,
    pub name_zh: String,
    pub points: Level,
    pub items: Vec<Item>,
}

/// A scheme: dimensions whose points add up to 100.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheme {
    pub id: String,
    pub name_zh: String,
    #[serde(default)]
    pub name_en: String,
    #[serde(default)]
    pub source: String,
    /// Unit roles assessed (`primary`, `secondary`, …).
    pub member_roles: Vec<String>,
    pub dimensions: Vec<Dimension>,
}

impl Scheme {
    /// medgrid's default scheme for a group that has not written its own.
    pub fn shipped() -> Result<Scheme, String> {
        serde_json::from_str(include_str!("assessment/default_scheme.json"))
            .map_err(|e| e.to_string())
    }

    /// Checks a scheme against the library: known indicators, points adding up, floors on
    /// the right side of the target. Every problem is named.
    pub fn check(&self, library: &Library) -> Result<(), crate::Invalid> {
        use crate::FieldError;
        let mut errors = Vec::new();
        let total: i64 = self.dimensions.iter().map(|d| d.points.0).sum();
        if total != 10_000 {
            errors.push(FieldError::new(
                "dimensions",
                "points",
                format!("各维度分值合计须为 100，现为 {}", Level(total)),
                format!("dimension points must add up to 100, not {}", Level(total)),
            ));
        }
        if self.member_roles.is_empty() {
            errors.push(FieldError::required("member_roles"));
        }
        for (at, role) in self.member_roles.iter().enumerate() {
            if crate::org::MemberRole::parse(role).is_err() {
                errors.push(FieldError::new(
                    format!("member_roles[{at}]"),
                    "unknown",
                    format!("没有成员角色“{role}”"),
                    format!("no member role “{role}”"),
                ));
            }
        }
        for (d_at, d) in self.dimensions.iter().enumerate() {
            if d.points.0 <= 0 {
                errors.push(FieldError::new(
                    format!("dimensions[{d_at}].points"),
                    "positive",
                    "维度分值须大于 0",
                    "a dimension's points must be positive",
                ));
            }
            if self.dimensions[..d_at].iter().any(|e| e.id == d.id) {
                errors.push(FieldError::new(
                    format!("dimensions[{d_at}].id"),
                    "duplicate",
                    format!("维度“{}”重复", d.id),
                    format!("dimension “{}” appears twice", d.id),
                ));
            }
            let sum: i64 = d.items.iter().map(|i| i.points.0).sum();
            if sum != d.points.0 {
                errors.push(FieldError::new(
                    format!("dimensions[{d_at}].items"),
                    "points",
                    format!(
                        "“{}”各项分值合计 {} 与维度分值 {} 不符",
                        d.name_zh,
                        Level(sum),
                        d.points
                    ),
                    format!(
                        "items of {} add up to {}, not the dimension's {}",
                        d.id,
                        Level(sum),
                        d.points
                    ),
                ));
            }
            for (i_at, item) in d.items.iter().enumerate() {
                let field = format!("dimensions[{d_at}].items[{i_at}]");
                let Some(indicator) = library.get(&item.indicator) else {
                    errors.push(FieldError::new(
                        format!("{field}.indicator"),
                        "unknown",
                        format!("指标库中没有“{}”", item.indicator),
                        format!("no indicator “{}” in the library", item.indicator),
                    ));
                    continue;
                };
                if item.points.0 <= 0 {
                    errors.push(FieldError::new(
                        format!("{field}.points"),
                        "positive",
                        "分值须大于 0",
                        "points must be positive",
                    ));
                }
                if let Rule::Linear { floor } = &item.rule {
                    // Against every target the library has had: a group's own target that
                    // is not better than the floor leaves the item unscored, never inverted.
                    let ok = indicator
                        .versions
                        .iter()
                        .all(|t| match indicator.direction {
                            Direction::Higher => *floor < t.target,
                            Direction::Lower => *floor > t.target,
                        });
                    if !ok {
                        errors.push(FieldError::new(
                            format!("{field}.rule"),
                            "floor",
                            "起计分值须在目标值之劣侧",
                            "the floor must lie on the worse side of the target",
                        ));
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(crate::Invalid(errors))
        }
    }
}

/// One member's value of one indicator, as the cube gives it.
#[derive(Debug, Clone)]
pub struct Measured {
    pub value: Value,
    pub direction: Direction,
    pub targets: Option<Targets>,
}

/// A member and its values, by indicator id.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: i64,
    pub name: String,
    pub values: HashMap<String, Measured>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemScore {
    pub indicator: String,
    pub points: Level,
    pub rule: Rule,
    pub value: Option<Level>,
    pub numerator: i64,
    pub denominator: i64,
    pub target: Option<Level>,
    /// `None` when there is no value to score.
    pub score: Option<Level>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DimensionScore {
    pub id: String,
    pub name_zh: String,
    pub points: Level,
    pub score: Level,
    pub items: Vec<ItemScore>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberScore {
    pub member_id: i64,
    pub name: String,
    /// 1 for the best; members with the same total share a rank.
    pub rank: usize,
    pub total: Level,
    pub dimensions: Vec<DimensionScore>,
}

/// `num / den` in hundredths already, rounded half away from zero (`den > 0`): scores are
/// exact, like indicator values, so a score on a boundary is never a float's accident.
fn rounded(num: i128, den: i128) -> Level {
    let q = (2 * num.abs() + den) / (2 * den);
    Level(i64::try_from(if num < 0 { -q } else { q }).unwrap_or(i64::MAX))
}

/// A value as an exact fraction with a positive denominator; `None` without one.
fn fraction(v: Value) -> Option<(i128, i128)> {
    let (n, d) = (
        i128::from(v.numerator) * i128::from(v.factor),
        i128::from(v.denominator),
    );
    match d.signum() {
        0 => None,
        1 => Some((n, d)),
        _ => Some((-n, -d)),
    }
}

/// Full points at the target, none at the floor, in proportion between; `None` when the
/// target in force is not better than the floor (the rule cannot be applied).
fn linear(
    v: Value,
    floor: Level,
    target: Level,
    points: Level,
    direction: Direction,
) -> Option<Level> {
    let (n, d) = fraction(v)?;
    // v − floor over target − floor, all in hundredths: (100n − floor·d) / (d·(target − floor)).
    let (gain, range) = match direction {
        Direction::Higher => (
            100 * n - i128::from(floor.0) * d,
            i128::from(target.0 - floor.0),
        ),
        Direction::Lower => (
            i128::from(floor.0) * d - 100 * n,
            i128::from(floor.0 - target.0),
        ),
    };
    if range <= 0 {
        return None;
    }
    let (num, den) = (gain, d * range);
    Some(if num <= 0 {
        Level(0)
    } else if num >= den {
        points
    } else {
        rounded(i128::from(points.0) * num, den)
    })
}

/// Whether `a` is better than `b` for the direction, exactly.
fn better(a: (i128, i128), b: (i128, i128), direction: Direction) -> std::cmp::Ordering {
    let (x, y) = (a.0 * b.1, b.0 * a.1);
    match direction {
        Direction::Higher => y.cmp(&x),
        Direction::Lower => x.cmp(&y),
    }
}

/// Scores every member by the scheme.
pub fn score(scheme: &Scheme, members: &[Member]) -> Vec<MemberScore> {
    // Positions for the rank rule: per indicator, the sorted values of the members that have
    // one (best first).
    let mut ranked: HashMap<&str, Vec<(i128, i128)>> = HashMap::new();
    for d in &scheme.dimensions {
        for item in d.items.iter().filter(|i| i.rule == Rule::Rank) {
            let mut values: Vec<((i128, i128), Direction)> = members
                .iter()
                .filter_map(|m| {
                    let x = m.values.get(&item.indicator)?;
                    Some((fraction(x.value)?, x.direction))
                })
                .collect();
            values.sort_by(|a, b| better(a.0, b.0, a.1));
            ranked.insert(&item.indicator, values.into_iter().map(|v| v.0).collect());
        }
    }
    let mut out: Vec<MemberScore> = members
        .iter()
        .map(|m| {
            let dimensions = scheme
                .dimensions
                .iter()
                .map(|d| {
                    let items: Vec<ItemScore> = d
                        .items
                        .iter()
                        .map(|item| {
                            let x = m.values.get(&item.indicator);
                            let score = x.and_then(|x| {
                                let v = fraction(x.value)?;
                                match &item.rule {
                                    // Without a target in force the item is not scored.
                                    Rule::Linear { floor } => x.targets.as_ref().and_then(|t| {
                                        linear(x.value, *floor, t.target, item.points, x.direction)
                                    }),
                                    Rule::Threshold => {
                                        match x.value.rag(x.direction, x.targets.as_ref()?) {
                                            Rag::Green => Some(item.points),
                                            Rag::Amber => {
                                                Some(rounded(i128::from(item.points.0), 2))
                                            }
                                            _ => Some(Level(0)),
                                        }
                                    }
                                    Rule::Rank => {
                                        let all = &ranked[item.indicator.as_str()];
                                        let n = all.len();
                                        let at = all
                                            .iter()
                                            .position(|w| w.0 * v.1 == v.0 * w.1)
                                            .unwrap_or(n);
                                        Some(if n <= 1 {
                                            item.points
                                        } else {
                                            rounded(
                                                i128::from(item.points.0)
                                                    * (n - 1 - at.min(n - 1)) as i128,
                                                (n - 1) as i128,
                                            )
                                        })
                                    }
                                }
                            });
                            ItemScore {
                                indicator: item.indicator.clone(),
                                points: item.points,
                                rule: item.rule.clone(),
                                value: x.and_then(|x| x.value.rounded()),
                                numerator: x.map_or(0, |x| x.value.numerator),
                                denominator: x.map_or(0, |x| x.value.denominator),
                                target: x.and_then(|x| x.targets.as_ref().map(|t| t.target)),
                                score,
                            }
                        })
                        .collect();
                    let available: i64 = items
                        .iter()
                        .filter(|i| i.score.is_some())
                        .map(|i| i.points.0)
                        .sum();
                    let got: i64 = items.iter().filter_map(|i| i.score.map(|s| s.0)).sum();
                    let score = if available == 0 {
                        Level(0)
                    } else {
                        rounded(
                            i128::from(got) * i128::from(d.points.0),
                            i128::from(available),
                        )
                    };
                    DimensionScore {
                        id: d.id.clone(),
                        name_zh: d.name_zh.clone(),
                        points: d.points,
                        score,
                        items,
                    }
                })
                .collect::<Vec<_>>();
            MemberScore {
                member_id: m.id,
                name: m.name.clone(),
                rank: 0,
                total: Level(dimensions.iter().map(|d| d.score.0).sum()),
                dimensions,
            }
        })
        .collect();
    out.sort_by(|a, b| b.total.cmp(&a.total).then(a.member_id.cmp(&b.member_id)));
    let totals: Vec<Level> = out.iter().map(|m| m.total).collect();
    for m in &mut out {
        m.rank = totals.iter().position(|t| *t == m.total).unwrap_or(0) + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lv(s: &str) -> Level {
        Level::parse("x", s).unwrap()
    }

    fn targets(target: &str, amber: &str) -> Option<Targets> {
        Some(Targets {
            from: "2024-01".into(),
            target: lv(target),
            amber: lv(amber),
        })
    }

    fn scheme() -> Scheme {
        Scheme {
            id: "t".into(),
            name_zh: "测试".into(),
            name_en: String::new(),
            source: String::new(),
            member_roles: vec!["primary".into()],
            dimensions: vec![
                Dimension {
                    id: "a".into(),
                    name_zh: "甲".into(),
                    points: lv("60"),
                    items: vec![
                        Item {
                            indicator: "contract_rate".into(),
                            points: lv("40"),
                            rule: Rule::Linear { floor: lv("20") },
                        },
                        Item {
                            indicator: "essential_medicine_share".into(),
                            points: lv("20"),
                            rule: Rule::Threshold,
                        },
                    ],
                },
                Dimension {
                    id: "b".into(),
                    name_zh: "乙".into(),
                    points: lv("40"),
                    items: vec![Item {
                        indicator: "average_length_of_stay".into(),
                        points: lv("40"),
                        rule: Rule::Rank,
                    }],
                },
            ],
        }
    }

    fn measured(n: i64, d: i64, f: i64, direction: Direction, t: Option<Targets>) -> Measured {
        Measured {
            value: Value::ratio(n, d, f),
            direction,
            targets: t,
        }
    }

    #[test]
    fn each_rule_scores_by_hand() {
        let s = scheme();
        let member = |id: i64, contract: (i64, i64), ess: (i64, i64), alos: Option<(i64, i64)>| {
            let mut values = HashMap::new();
            values.insert(
                "contract_rate".into(),
                measured(
                    contract.0,
                    contract.1,
                    100,
                    Direction::Higher,
                    targets("40", "35"),
                ),
            );
            values.insert(
                "essential_medicine_share".into(),
                measured(ess.0, ess.1, 100, Direction::Higher, targets("50", "45")),
            );
            if let Some((n, d)) = alos {
                values.insert(
                    "average_length_of_stay".into(),
                    measured(n, d, 1, Direction::Lower, targets("9", "10")),
                );
            }
            Member {
                id,
                name: format!("m{id}"),
                values,
            }
        };
        let scores = score(
            &s,
            &[
                // contract 30% → halfway from 20 to 40: 20 of 40; essential 46% amber: 10 of
                // 20; length of stay 8 days, best of three: 40.
                member(1, (30, 100), (46, 100), Some((8, 1))),
                // contract 50% → 40; essential 50% green → 20; 12 days, worst: 0.
                member(2, (50, 100), (50, 100), Some((12, 1))),
                // contract 10% → 0; essential 40% red → 0; 10 days, middle: 20.
                member(3, (10, 100), (40, 100), Some((10, 1))),
                // no length of stay: dimension b is left out, dimension a as member 2.
                member(4, (50, 100), (50, 100), None),
            ],
        );
        let by_id = |id: i64| scores.iter().find(|m| m.member_id == id).unwrap();
        assert_eq!(by_id(1).dimensions[0].items[0].score, Some(lv("20")));
        assert_eq!(by_id(1).dimensions[0].items[1].score, Some(lv("10")));
        assert_eq!(by_id(1).dimensions[1].score, lv("40"));
        assert_eq!(by_id(1).total, lv("70"));
        assert_eq!(by_id(2).total, lv("60"));
        assert_eq!(by_id(3).total, lv("20"));
        assert_eq!(by_id(4).dimensions[1].items[0].score, None);
        assert_eq!(by_id(4).dimensions[1].score, lv("0"));
        assert_eq!(by_id(4).total, lv("60"));
        // Ranks: 70 first; 60 shared by members 2 and 4; 20 last.
        let ranks: Vec<(i64, usize)> = scores.iter().map(|m| (m.member_id, m.rank)).collect();
        assert_eq!(ranks, [(1, 1), (2, 2), (4, 2), (3, 4)]);
    }

    #[test]
    fn a_missing_item_is_left_out_of_its_dimension() {
        let s = scheme();
        let mut values = HashMap::new();
        values.insert(
            "contract_rate".into(),
            measured(40, 100, 100, Direction::Higher, targets("40", "35")),
        );
        values.insert(
            "essential_medicine_share".into(),
            measured(0, 0, 100, Direction::Higher, targets("50", "45")),
        );
        let m = score(
            &s,
            &[Member {
                id: 1,
                name: "m".into(),
                values,
            }],
        );
        // 40 of the 40 points it can be scored on, scaled to the dimension's 60.
        assert_eq!(m[0].dimensions[0].score, lv("60"));
        assert_eq!(m[0].dimensions[0].items[1].score, None);
    }

    #[test]
    fn scores_are_exact_and_an_inverted_target_scores_nothing() {
        let mut s = scheme();
        // Amber on a 2.01-point threshold item: half is 1.005, rounded half away: 1.01 (a
        // float computation gives 1.00).
        s.dimensions[0].items[1].points = lv("2.01");
        s.dimensions[0].items[0].points = lv("57.99");
        let mut values = HashMap::new();
        values.insert(
            "essential_medicine_share".into(),
            measured(45, 100, 100, Direction::Higher, targets("50", "40")),
        );
        // A group target of 15 below the floor of 20: the linear rule cannot apply.
        values.insert(
            "contract_rate".into(),
            measured(30, 100, 100, Direction::Higher, targets("15", "10")),
        );
        let m = Member {
            id: 1,
            name: "甲".into(),
            values,
        };
        let scored = score(&s, &[m]);
        let items = &scored[0].dimensions[0].items;
        assert_eq!(items[1].score, Some(lv("1.01")));
        assert_eq!(items[0].score, None, "an inverted target is not scored");
    }

    #[test]
    fn schemes_are_checked_against_the_library() {
        let lib = Library::shipped().unwrap();
        Scheme::shipped().unwrap().check(&lib).unwrap();
        let mut bad = scheme();
        bad.dimensions[0].points = lv("50");
        bad.dimensions[1].items[0].indicator = "no_such".into();
        bad.dimensions[0].items[0].rule = Rule::Linear { floor: lv("45") };
        bad.member_roles.push("primry".into());
        let e = bad.check(&lib).unwrap_err();
        let fields: Vec<&str> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "dimensions",
                "member_roles[1]",
                "dimensions[0].items",
                "dimensions[0].items[0].rule",
                "dimensions[1].items[0].indicator"
            ]
        );
    }
}
