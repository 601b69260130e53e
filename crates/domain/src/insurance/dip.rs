//! A DIP run (R9.2): every inpatient case of a period paid by the rule of
//! [`super::case_payment`], from the cases alone. Each DIP group's points come from its mean
//! cost against the mean of all the period's cases; each case is judged against the mean of
//! its group at its hospital level; the point value shares the period's inpatient pool, less
//! the reserve, over every point the period earned. Nothing but the cases and the rule goes
//! in, so the same period with the same rule always pays the same.
//!
//! A run keeps, per case, the handful of numbers its payment was made from; [`trace`] turns
//! them back into the steps a statement shows.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::case_payment::{
    self, case_points, group_points, show_points, Branch, CasePoints, Outliers, PointValue, Points,
    POINT,
};
use super::{at_rate, div_round, percent, yuan, Fen, Ppm, Step, PPM};

/// The DIP rule a group's budget pays inpatient cases by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DipRule {
    pub outliers: Outliers,
    /// Coefficient by hospital level (`tertiary`, `secondary`, `primary`, `unrated`); a level
    /// without one counts at 1.
    pub coefficients: BTreeMap<String, Ppm>,
    /// The share of the period's budget that pays inpatient cases.
    pub inpatient_share: Ppm,
    /// The share of that pool held back as the reserve (调节金) before the point value.
    pub reserve: Ppm,
}

impl Default for DipRule {
    fn default() -> Self {
        Self {
            outliers: Outliers::default(),
            coefficients: [
                ("tertiary", PPM),
                ("secondary", 850_000),
                ("primary", 700_000),
                ("unrated", 600_000),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            inpatient_share: 600_000,
            reserve: 50_000,
        }
    }
}

impl DipRule {
    pub fn coefficient(&self, level: &str) -> Ppm {
        self.coefficients.get(level).copied().unwrap_or(PPM)
    }

    /// What is wrong with the rule, if anything, as (field, reason zh, reason en).
    pub fn problems(&self) -> Vec<(&'static str, &'static str, &'static str)> {
        let mut out = Vec::new();
        if !(self.outliers.low > 0 && self.outliers.low < PPM && self.outliers.high > PPM) {
            out.push((
                "case_payment.outliers",
                "低倍率须在 0–1 之间，高倍率须大于 1",
                "the low ratio must be between 0 and 1, the high ratio above 1",
            ));
        }
        if self
            .coefficients
            .values()
            .any(|c| !(1..=3 * PPM).contains(c))
        {
            out.push((
                "case_payment.coefficients",
                "级别系数须大于 0 且不超过 3",
                "level coefficients must be above 0 and at most 3",
            ));
        }
        if !(0..=PPM).contains(&self.inpatient_share) || !(0..PPM).contains(&self.reserve) {
            out.push((
                "case_payment.inpatient_share",
                "住院份额须在 0–100% 之间，调节金比例须小于 100%",
                "the inpatient share must be 0–100% and the reserve below 100%",
            ));
        }
        out
    }
}

/// One inpatient case as a run reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DipCase {
    pub id: i64,
    pub group: String,
    pub level: String,
    pub cost: Fen,
    pub self_paid: Fen,
}

/// A DIP group of the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DipGroup {
    pub code: String,
    pub cases: i64,
    pub mean: Fen,
    pub points: Points,
}

/// What a run decided for one case: enough to pay it and to show why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DipCaseResult {
    pub id: i64,
    pub group_points: Points,
    /// The mean cost of the case's group at the case's level.
    pub level_average: Fen,
    pub case: CasePoints,
    pub coefficient: Ppm,
    pub gross: Fen,
    pub self_paid: Fen,
    pub paid: Fen,
}

/// A period's run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DipRun {
    /// The mean cost of every case of the period.
    pub all_mean: Fen,
    pub groups: Vec<DipGroup>,
    /// The period's budget × the inpatient share, and the reserve held back from it.
    pub pool: Fen,
    pub reserve: Fen,
    pub value: PointValue,
    pub cases: Vec<DipCaseResult>,
    pub gross: Fen,
    pub paid: Fen,
}

fn mean(sum: i128, n: i64) -> Fen {
    div_round(sum, i128::from(n))
}

/// Runs DIP over a period's `cases` with the period's `budget` (fen) and `rule`. The cases
/// come back in the order given.
pub fn run(cases: &[DipCase], budget: Fen, rule: &DipRule) -> DipRun {
    let pool = at_rate(budget, rule.inpatient_share);
    let reserve = at_rate(pool, rule.reserve);
    let all_sum: i128 = cases.iter().map(|c| i128::from(c.cost)).sum();
    let all_mean = mean(all_sum, cases.len() as i64);
    // Sums by group, and by group and level.
    let mut by_group: HashMap<&str, (i128, i64)> = HashMap::new();
    let mut by_level: HashMap<(&str, &str), (i128, i64)> = HashMap::new();
    for c in cases {
        let g = by_group.entry(&c.group).or_default();
        g.0 += i128::from(c.cost);
        g.1 += 1;
        let l = by_level.entry((&c.group, &c.level)).or_default();
        l.0 += i128::from(c.cost);
        l.1 += 1;
    }
    let mut groups: Vec<DipGroup> = by_group
        .iter()
        .map(|(code, (sum, n))| {
            let m = mean(*sum, *n);
            DipGroup {
                code: (*code).to_owned(),
                cases: *n,
                mean: m,
                points: group_points(m, all_mean),
            }
        })
        .collect();
    groups.sort_by(|a, b| a.code.cmp(&b.code));
    let points_of: HashMap<&str, Points> =
        groups.iter().map(|g| (g.code.as_str(), g.points)).collect();
    let mut results: Vec<DipCaseResult> = cases
        .iter()
        .map(|c| {
            let gp = points_of.get(c.group.as_str()).copied().unwrap_or(0);
            let level_average = by_level
                .get(&(c.group.as_str(), c.level.as_str()))
                .map_or(0, |(s, n)| mean(*s, *n));
            DipCaseResult {
                id: c.id,
                group_points: gp,
                level_average,
                case: case_points(gp, c.cost, level_average, &rule.outliers),
                coefficient: rule.coefficient(&c.level),
                gross: 0,
                self_paid: c.self_paid,
                paid: 0,
            }
        })
        .collect();
    let total_points: Points = results.iter().map(weighted).sum();
    let value = PointValue::new(pool, reserve, total_points);
    let (mut gross, mut paid) = (0, 0);
    for r in &mut results {
        r.gross = value.pay(weighted(r));
        r.paid = (r.gross - r.self_paid).max(0);
        gross += r.gross;
        paid += r.paid;
    }
    DipRun {
        all_mean,
        groups,
        pool,
        reserve,
        value,
        cases: results,
        gross,
        paid,
    }
}

/// What a case counts in the period's total.
pub fn weighted(r: &DipCaseResult) -> Points {
    case_payment::weighted(r.case.points, r.coefficient)
}

/// The steps behind one case's payment, every number used, as a statement shows them.
pub fn trace(r: &DipCaseResult, group: &DipGroup, all_mean: Fen, value: &PointValue) -> Vec<Step> {
    let ratio = div_round(
        i128::from(r.case.ratio) * i128::from(POINT),
        i128::from(PPM),
    );
    let branch = match r.case.branch {
        Branch::High => "高倍率病例：分值 × (费用比 − 高倍率界值 + 1)",
        Branch::Low => "低倍率病例：分值 × 费用比",
        Branch::Normal => "正常病例：按病种分值",
    };
    let coefficient = div_round(
        i128::from(r.coefficient) * i128::from(POINT),
        i128::from(PPM),
    );
    vec![
        Step::new(
            "group_points",
            format!(
                "病种 {} 分值 {} = 病种均费 {} 元 ÷ 全部病例均费 {} 元 × 100（{} 例）",
                group.code,
                show_points(r.group_points),
                yuan(group.mean),
                yuan(all_mean),
                group.cases
            ),
            0,
        ),
        Step::new(
            "ratio",
            format!(
                "费用比 {} = 本病例费用 ÷ 同级别同病种均费 {} 元",
                show_points(ratio),
                yuan(r.level_average)
            ),
            0,
        ),
        Step::new(
            "case_points",
            format!("{branch}，得 {} 分", show_points(r.case.points)),
            0,
        ),
        Step::new(
            "weighted",
            format!(
                "× 级别系数 {} = {} 分",
                show_points(coefficient),
                show_points(weighted(r))
            ),
            0,
        ),
        Step::new(
            "point_value",
            format!(
                "点值 = (住院基金 − 调节金) {} 元 ÷ 总分值 {} 分 ≈ {} 元/分",
                yuan(value.available),
                show_points(value.total_points),
                yuan(value.fen_per_point())
            ),
            0,
        ),
        Step::new("gross", "病例分值 × 点值（四舍五入到分）", r.gross),
        Step::new("self_paid", "− 患者自付", -r.self_paid),
        Step::new("paid", "医保基金支付（不低于 0）", r.paid),
    ]
}

/// The rule's parameters as a line people read.
pub fn describe(rule: &DipRule) -> String {
    let levels: Vec<String> = rule
        .coefficients
        .iter()
        .map(|(k, v)| {
            format!(
                "{k} {}",
                show_points(div_round(i128::from(*v) * 10_000, 1_000_000))
            )
        })
        .collect();
    format!(
        "住院份额 {}，调节金 {}，高倍率 ≥ {}，低倍率 ≤ {}，级别系数 {}",
        percent(rule.inpatient_share),
        percent(rule.reserve),
        percent(rule.outliers.high),
        percent(rule.outliers.low),
        levels.join("、")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(id: i64, group: &str, level: &str, cost: Fen, self_paid: Fen) -> DipCase {
        DipCase {
            id,
            group: group.into(),
            level: level.into(),
            cost,
            self_paid,
        }
    }

    /// Four cases, two groups, two levels, worked by hand.
    ///
    /// Costs (yuan): A at tertiary 10,000 and 30,000; A at secondary 8,000; B at secondary
    /// 4,000. All cases' mean: 52,000 ÷ 4 = 13,000. Group A's mean 48,000 ÷ 3 = 16,000 →
    /// 16,000 ÷ 13,000 × 100 = 123.0769 points; group B 4,000 ÷ 13,000 × 100 = 30.7692.
    ///
    /// Against the same group at the same level: A tertiary's mean is 20,000, so case 1 is
    /// 0.5 (low: 123.0769 × 0.5 = 61.5385 points, rounded from 61.53845) and case 2 is 1.5
    /// (normal: 123.0769); A secondary (case 3) and B secondary (case 4) are each their
    /// level's only case, ratio 1: normal.
    ///
    /// Coefficients tertiary 1, secondary 0.85: weighted 61.5385 + 123.0769 + 104.6154
    /// (123.0769 × 0.85 = 104.615365) + 26.1538 (30.7692 × 0.85 = 26.15382) = 315.3846.
    ///
    /// Budget 100,000 yuan × inpatient share 60% = 60,000; reserve 5% = 3,000; 57,000 to
    /// share. Case 2: 123.0769 × 57,000 ÷ 315.3846 = 22,243.90 (22,243.8993…); it paid
    /// 3,000 itself → 19,243.90.
    #[test]
    fn a_period_paid_by_hand() {
        let cases = vec![
            case(1, "A", "tertiary", 1_000_000, 100_000),
            case(2, "A", "tertiary", 3_000_000, 300_000),
            case(3, "A", "secondary", 800_000, 80_000),
            case(4, "B", "secondary", 400_000, 500_000),
        ];
        let r = run(&cases, 10_000_000, &DipRule::default());
        assert_eq!(r.all_mean, 1_300_000);
        assert_eq!((r.pool, r.reserve), (6_000_000, 300_000));
        assert_eq!(r.groups[0].points, 1_230_769);
        assert_eq!(r.groups[1].points, 307_692);
        let c = &r.cases;
        assert_eq!((c[0].case.branch, c[0].case.points), (Branch::Low, 615_385));
        assert_eq!(
            (c[1].case.branch, c[1].case.points),
            (Branch::Normal, 1_230_769)
        );
        assert_eq!(c[0].level_average, 2_000_000);
        assert_eq!(
            (c[2].case.branch, c[3].case.branch),
            (Branch::Normal, Branch::Normal)
        );
        assert_eq!(weighted(&c[2]), 1_046_154);
        assert_eq!(weighted(&c[3]), 261_538);
        assert_eq!(r.value.total_points, 3_153_846);
        assert_eq!(r.value.available, 5_700_000);
        assert_eq!(c[1].gross, 2_224_390);
        assert_eq!(c[1].paid, 1_924_390);
        // Case 4 paid 5,000 itself, more than its 26.1538 × 57,000 ÷ 315.3846 = 4,726.82
        // (4,726.8211…): the fund pays nothing.
        assert_eq!(c[3].gross, 472_682);
        assert_eq!(c[3].paid, 0);
        // The shares add up to the pool less the reserve, give or take a fen a case (here
        // 11,121.96 + 22,243.90 + 18,907.32 + 4,726.82 = 57,000.00 exactly).
        assert_eq!(r.gross, 5_700_000);
        assert_eq!(r.paid, c.iter().map(|x| x.paid).sum::<Fen>());
    }

    #[test]
    fn the_same_cases_and_rule_pay_the_same_whatever_their_order() {
        let mut cases: Vec<DipCase> = (0..200)
            .map(|i| {
                case(
                    i,
                    ["A", "B", "C"][i as usize % 3],
                    ["tertiary", "secondary", "primary"][i as usize % 7 % 3],
                    100_000 + i * 7_919 % 900_000,
                    i * 31 % 50_000,
                )
            })
            .collect();
        let first = run(&cases, 50_000_000, &DipRule::default());
        cases.reverse();
        let second = run(&cases, 50_000_000, &DipRule::default());
        let pay = |r: &DipRun| {
            let mut v: Vec<(i64, Fen)> = r.cases.iter().map(|c| (c.id, c.paid)).collect();
            v.sort();
            v
        };
        assert_eq!(pay(&first), pay(&second));
        assert_eq!(first.groups, second.groups);
        assert_eq!(first.value, second.value);
    }

    #[test]
    fn a_trace_names_every_number() {
        let cases = vec![
            case(1, "A", "tertiary", 1_000_000, 100_000),
            case(2, "A", "tertiary", 3_000_000, 300_000),
        ];
        let r = run(&cases, 10_000_000, &DipRule::default());
        let steps = trace(&r.cases[0], &r.groups[0], r.all_mean, &r.value);
        let text: Vec<&str> = steps.iter().map(|s| s.label_zh.as_str()).collect();
        assert!(text[0].contains("20,000.00"), "{}", text[0]);
        assert!(text[2].contains("低倍率"), "{}", text[2]);
        assert_eq!(steps.last().map(|s| s.amount), Some(r.cases[0].paid));
    }

    #[test]
    fn a_rule_out_of_range_is_named() {
        let mut rule = DipRule::default();
        assert!(rule.problems().is_empty());
        rule.outliers.low = PPM;
        rule.reserve = PPM;
        let fields: Vec<&str> = rule.problems().iter().map(|p| p.0).collect();
        assert_eq!(
            fields,
            ["case_payment.outliers", "case_payment.inpatient_share"]
        );
    }
}
