//! Paying cases (R9.2): DIP points (病种分值) as the main method, DRG relative weights as the
//! alternative, per bed-day for rehabilitation by class, severity and length-of-stay segment,
//! and per capita. Each rule is a value with its parameters; each payment carries the numbers
//! it used.
//!
//! DIP, as the national technical specification describes it: a DIP group's points are its
//! mean cost relative to the mean cost of all cases, × 100. A case costing far more or far
//! less than the same group's average at the same hospital level is an outlier: from the most
//! extreme threshold down, a case at or above the high ratio is paid for its cost beyond the
//! norm (points × (ratio − high + 1)), a case at or below the low ratio for its cost (points ×
//! ratio), anything else the group's points. A hospital level's coefficient scales the
//! points; the point value is the fund's budget less its reserve divided by all points of the
//! period (provisional monthly, final at year end); the fund pays points × coefficient × point
//! value, less what the patient paid themselves.

use serde::{Deserialize, Serialize};

use super::{div_round, yuan, Fen, Ppm, Step, PPM};

/// DIP points and DRG weights in ten-thousandths.
pub type Points = i64;
pub const POINT: i64 = 10_000;

/// A DIP group's points: its mean cost over the mean cost of every case, × 100, rounded to a
/// ten-thousandth of a point.
pub fn group_points(group_mean: Fen, all_mean: Fen) -> Points {
    div_round(
        i128::from(group_mean) * 100 * i128::from(POINT),
        i128::from(all_mean),
    )
}

/// The outlier thresholds, as ratios of a case's cost to its group's average at its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outliers {
    /// At or above: a high outlier (e.g. 2.0 = 2_000_000).
    pub high: Ppm,
    /// At or below: a low outlier (e.g. 0.5 = 500_000).
    pub low: Ppm,
}

impl Default for Outliers {
    fn default() -> Self {
        Self {
            high: 2 * PPM,
            low: PPM / 2,
        }
    }
}

/// Which branch a case fell in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Branch {
    High,
    Low,
    Normal,
}

/// A case's points and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CasePoints {
    /// The case's cost over its group's average at its level, in ppm.
    pub ratio: Ppm,
    pub branch: Branch,
    pub points: Points,
}

/// A case's points from its cost and its group's average at the same level.
pub fn case_points(
    points: Points,
    case_cost: Fen,
    level_average: Fen,
    outliers: &Outliers,
) -> CasePoints {
    let ratio = div_round(
        i128::from(case_cost) * i128::from(PPM),
        i128::from(level_average),
    );
    // From the most extreme threshold down: high first, then low, then the norm.
    let (branch, points) = if level_average > 0 && ratio >= outliers.high {
        (
            Branch::High,
            div_round(
                i128::from(points) * i128::from(ratio - outliers.high + PPM),
                i128::from(PPM),
            ),
        )
    } else if level_average > 0 && ratio <= outliers.low {
        (
            Branch::Low,
            div_round(i128::from(points) * i128::from(ratio), i128::from(PPM)),
        )
    } else {
        (Branch::Normal, points)
    };
    CasePoints {
        ratio,
        branch,
        points,
    }
}

/// The point value: what a point is worth, as the fraction (fund budget − reserve) ÷ points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointValue {
    /// Fen to share out.
    pub available: Fen,
    /// Every point of the period, weighted by level coefficients (ten-thousandths).
    pub total_points: Points,
}

impl PointValue {
    pub fn new(fund_budget: Fen, reserve: Fen, total_points: Points) -> PointValue {
        PointValue {
            available: fund_budget - reserve,
            total_points,
        }
    }

    /// What `points` (already weighted by their level) are worth, rounded once to the fen.
    pub fn pay(&self, points: Points) -> Fen {
        div_round(
            i128::from(points) * i128::from(self.available),
            i128::from(self.total_points),
        )
    }

    /// Fen per point, for people (rounded to the fen).
    pub fn fen_per_point(&self) -> Fen {
        div_round(
            i128::from(self.available) * i128::from(POINT),
            i128::from(self.total_points),
        )
    }
}

/// What the fund pays for a case and every number used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CasePayment {
    pub gross: Fen,
    pub self_paid: Fen,
    pub paid: Fen,
    pub steps: Vec<Step>,
}

/// Points × a level coefficient, rounded to a ten-thousandth of a point: what a case counts
/// in its period's total.
pub fn weighted(points: Points, coefficient: Ppm) -> Points {
    div_round(
        i128::from(points) * i128::from(coefficient),
        i128::from(PPM),
    )
}

/// DIP: points × level coefficient (rounded to a ten-thousandth) × point value (rounded to
/// the fen), less the patient's own payment (never below zero).
pub fn dip_payment(
    case: &CasePoints,
    coefficient: Ppm,
    value: &PointValue,
    self_paid: Fen,
) -> CasePayment {
    let gross = value.pay(weighted(case.points, coefficient));
    let paid = (gross - self_paid).max(0);
    let branch = match case.branch {
        Branch::High => "高倍率病例",
        Branch::Low => "低倍率病例",
        Branch::Normal => "正常病例",
    };
    CasePayment {
        gross,
        self_paid,
        paid,
        steps: vec![
            Step::new(
                "points",
                format!(
                    "病例分值 {}（{}，费用比 {}）",
                    show_points(case.points),
                    branch,
                    show_points(div_round(
                        i128::from(case.ratio) * i128::from(POINT),
                        i128::from(PPM)
                    ))
                ),
                0,
            ),
            Step::new(
                "gross",
                format!(
                    "× 级别系数 {} × 点值（{} ÷ {} 分，约 {} 元/分）",
                    show_points(div_round(
                        i128::from(coefficient) * i128::from(POINT),
                        i128::from(PPM)
                    )),
                    yuan(value.available),
                    show_points(value.total_points),
                    yuan(value.fen_per_point())
                ),
                gross,
            ),
            Step::new("self_paid", "− 患者自付", -self_paid),
            Step::new("paid", "医保基金支付", paid),
        ],
    }
}

/// DRG: relative weight × base rate, rounded once, less the patient's own payment.
pub fn drg_payment(weight: Points, base_rate: Fen, self_paid: Fen) -> CasePayment {
    let gross = div_round(
        i128::from(weight) * i128::from(base_rate),
        i128::from(POINT),
    );
    let paid = (gross - self_paid).max(0);
    CasePayment {
        gross,
        self_paid,
        paid,
        steps: vec![
            Step::new(
                "gross",
                format!(
                    "相对权重 {} × 费率 {} 元",
                    show_points(weight),
                    yuan(base_rate)
                ),
                gross,
            ),
            Step::new("self_paid", "− 患者自付", -self_paid),
            Step::new("paid", "医保基金支付", paid),
        ],
    }
}

/// A bed-day rate for a class of care, a severity and a segment of the stay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BedDayRate {
    pub class: String,
    pub severity: u8,
    /// First day of the segment (1-based) and last, or open-ended.
    pub from_day: u32,
    pub to_day: Option<u32>,
    pub rate: Fen,
}

/// Per bed-day (rehabilitation): each day of the stay at its segment's rate, less the
/// patient's own payment. Days no segment covers are not paid.
pub fn bed_day_payment(
    rates: &[BedDayRate],
    class: &str,
    severity: u8,
    days: u32,
    self_paid: Fen,
) -> CasePayment {
    let mut steps = Vec::new();
    let mut gross = 0;
    let mut segments: Vec<&BedDayRate> = rates
        .iter()
        .filter(|r| r.class == class && r.severity == severity)
        .collect();
    segments.sort_by_key(|r| r.from_day);
    for r in segments {
        let last = r.to_day.unwrap_or(u32::MAX).min(days);
        if last < r.from_day {
            continue;
        }
        let n = last - r.from_day + 1;
        let amount = i64::from(n) * r.rate;
        gross += amount;
        steps.push(Step::new(
            "segment",
            format!(
                "第 {}–{} 天 {} 天 × {} 元",
                r.from_day,
                last,
                n,
                yuan(r.rate)
            ),
            amount,
        ));
    }
    let paid = (gross - self_paid).max(0);
    steps.push(Step::new("self_paid", "− 患者自付", -self_paid));
    steps.push(Step::new("paid", "医保基金支付", paid));
    CasePayment {
        gross,
        self_paid,
        paid,
        steps,
    }
}

/// Per capita: persons × the standard per person.
pub fn capitation(persons: i64, per_person: Fen) -> Fen {
    persons * per_person
}

/// Points for people: `1234567` → `123.4567`.
pub fn show_points(p: Points) -> String {
    let s = format!("{}.{:04}", p / POINT, (p % POINT).abs());
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_groups_points_are_its_cost_relative_to_all_cases() {
        // Group mean 12,000.00 yuan, all cases 8,000.00: 12,000 / 8,000 × 100 = 150 points.
        assert_eq!(group_points(1_200_000, 800_000), 150 * POINT);
        // 10,000 / 30,000 × 100 = 33.3333… → 33.3333.
        assert_eq!(group_points(1_000_000, 3_000_000), 333_333);
    }

    #[test]
    fn outliers_from_the_most_extreme_threshold_down() {
        let o = Outliers::default();
        let points = 150 * POINT;
        // High: 25,000 / 10,000 = 2.5 ≥ 2 → 150 × (2.5 − 2 + 1) = 225 points.
        let c = case_points(points, 2_500_000, 1_000_000, &o);
        assert_eq!((c.branch, c.points), (Branch::High, 225 * POINT));
        // Exactly at the high threshold: 2.0 → 150 × 1 = 150, but as a high outlier.
        let c = case_points(points, 2_000_000, 1_000_000, &o);
        assert_eq!((c.branch, c.points), (Branch::High, 150 * POINT));
        // Low: 4,000 / 10,000 = 0.4 ≤ 0.5 → 150 × 0.4 = 60 points.
        let c = case_points(points, 400_000, 1_000_000, &o);
        assert_eq!((c.branch, c.points), (Branch::Low, 60 * POINT));
        // At the low threshold: 0.5 → 75 points, low.
        let c = case_points(points, 500_000, 1_000_000, &o);
        assert_eq!((c.branch, c.points), (Branch::Low, 75 * POINT));
        // Normal: 1.2 → the group's 150 points.
        let c = case_points(points, 1_200_000, 1_000_000, &o);
        assert_eq!((c.branch, c.points), (Branch::Normal, 150 * POINT));
        // Thresholds are parameters: with high at 1.1 the same case is high (150 × 1.1).
        let tight = Outliers {
            high: 1_100_000,
            low: 500_000,
        };
        let c = case_points(points, 1_200_000, 1_000_000, &tight);
        assert_eq!((c.branch, c.points), (Branch::High, 165 * POINT));
    }

    #[test]
    fn dip_pays_points_times_coefficient_times_point_value() {
        // Fund 10,000,000.00 yuan, reserve 500,000.00 → 9,500,000.00 to share over 95,000
        // points: 100.00 yuan a point. A normal case of 150 points at a secondary hospital
        // (coefficient 0.9): 150 × 0.9 × 100 = 13,500.00; patient paid 2,000.00 → 11,500.00.
        let value = PointValue::new(1_000_000_000, 50_000_000, 95_000 * POINT);
        assert_eq!(value.fen_per_point(), 10_000);
        let case = CasePoints {
            ratio: PPM,
            branch: Branch::Normal,
            points: 150 * POINT,
        };
        let p = dip_payment(&case, 900_000, &value, 200_000);
        assert_eq!(p.gross, 1_350_000);
        assert_eq!(p.paid, 1_150_000);
        assert_eq!(p.steps.last().map(|s| s.amount), Some(1_150_000));
        // Self-pay above the gross: the fund pays nothing, never less.
        assert_eq!(dip_payment(&case, 900_000, &value, 2_000_000).paid, 0);
    }

    #[test]
    fn drg_pays_weight_times_base_rate() {
        // Weight 1.25 × base rate 12,000.00 = 15,000.00; self-paid 3,000.00 → 12,000.00.
        let p = drg_payment(12_500, 1_200_000, 300_000);
        assert_eq!((p.gross, p.paid), (1_500_000, 1_200_000));
    }

    #[test]
    fn bed_days_by_segment() {
        let rates = vec![
            BedDayRate {
                class: "rehab".into(),
                severity: 2,
                from_day: 1,
                to_day: Some(30),
                rate: 40_000,
            },
            BedDayRate {
                class: "rehab".into(),
                severity: 2,
                from_day: 31,
                to_day: Some(60),
                rate: 30_000,
            },
            BedDayRate {
                class: "rehab".into(),
                severity: 2,
                from_day: 61,
                to_day: None,
                rate: 20_000,
            },
        ];
        // 45 days: 30 × 400.00 + 15 × 300.00 = 12,000.00 + 4,500.00 = 16,500.00;
        // self-paid 1,500.00 → 15,000.00.
        let p = bed_day_payment(&rates, "rehab", 2, 45, 150_000);
        assert_eq!((p.gross, p.paid), (1_650_000, 1_500_000));
        // 70 days reach the open-ended segment: + 10 × 200.00 over 60 days' 21,000.00.
        assert_eq!(bed_day_payment(&rates, "rehab", 2, 70, 0).gross, 2_300_000);
        // Another severity has no rates: nothing is paid.
        assert_eq!(bed_day_payment(&rates, "rehab", 3, 10, 0).gross, 0);
    }

    #[test]
    fn per_capita() {
        assert_eq!(capitation(12_000, 8_900), 106_800_000);
    }
}
