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
        for (d_at, d) in self.dimensions.iter().enumerate() {
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
                if let (Rule::Linear { floor }, Some(t)) = (&item.rule, indicator.versions.first())
                {
                    let ok = match indicator.direction {
                        Direction::Higher => *floor < t.target,
                        Direction::Lower => *floor > t.target,
                    };
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

fn round(x: f64) -> Level {
    Level((x * 100.0).round() as i64)
}

fn linear(v: f64, floor: f64, target: f64, points: f64, direction: Direction) -> f64 {
    let share = match direction {
        Direction::Higher => (v - floor) / (target - floor),
        Direction::Lower => (floor - v) / (floor - target),
    };
    points * share.clamp(0.0, 1.0)
}

/// Scores every member by the scheme.
pub fn score(scheme: &Scheme, members: &[Member]) -> Vec<MemberScore> {
    // Positions for the rank rule: per indicator, the sorted values of the members that have
    // one (best first).
    let mut ranked: HashMap<&str, Vec<f64>> = HashMap::new();
    for d in &scheme.dimensions {
        for item in d.items.iter().filter(|i| i.rule == Rule::Rank) {
            let mut values: Vec<(f64, Direction)> = members
                .iter()
                .filter_map(|m| {
                    let x = m.values.get(&item.indicator)?;
                    Some((x.value.as_f64()?, x.direction))
                })
                .collect();
            values.sort_by(|a, b| match a.1 {
                Direction::Higher => b.0.total_cmp(&a.0),
                Direction::Lower => a.0.total_cmp(&b.0),
            });
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
                            let v = x.and_then(|x| x.value.as_f64());
                            let points = item.points.0 as f64 / 100.0;
                            let score = match (x, v) {
                                (Some(x), Some(v)) => Some(round(match &item.rule {
                                    Rule::Linear { floor } => match &x.targets {
                                        Some(t) => linear(
                                            v,
                                            floor.0 as f64 / 100.0,
                                            t.target.0 as f64 / 100.0,
                                            points,
                                            x.direction,
                                        ),
                                        None => 0.0,
                                    },
                                    Rule::Threshold => match x
                                        .targets
                                        .as_ref()
                                        .map(|t| x.value.rag(x.direction, t))
                                    {
                                        Some(Rag::Green) => points,
                                        Some(Rag::Amber) => points / 2.0,
                                        _ => 0.0,
                                    },
                                    Rule::Rank => {
                                        let all = &ranked[item.indicator.as_str()];
                                        let n = all.len();
                                        let at = all.iter().position(|w| *w == v).unwrap_or(n);
                                        if n <= 1 {
                                            points
                                        } else {
                                            points * (n - 1 - at.min(n - 1)) as f64 / (n - 1) as f64
                                        }
                                    }
                                })),
                                _ => None,
                            };
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
                        round(got as f64 / available as f64 * d.points.0 as f64 / 100.0)
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
    fn schemes_are_checked_against_the_library() {
        let lib = Library::shipped().unwrap();
        Scheme::shipped().unwrap().check(&lib).unwrap();
        let mut bad = scheme();
        bad.dimensions[0].points = lv("50");
        bad.dimensions[1].items[0].indicator = "no_such".into();
        bad.dimensions[0].items[0].rule = Rule::Linear { floor: lv("45") };
        let e = bad.check(&lib).unwrap_err();
        let fields: Vec<&str> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "dimensions",
                "dimensions[0].items",
                "dimensions[0].items[0].rule",
                "dimensions[1].items[0].indicator"
            ]
        );
    }
}
