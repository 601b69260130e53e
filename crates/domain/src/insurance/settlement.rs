//! Year-end settlement of the global budget (R9.1): the year's actual spending (in the group,
//! and outside it when outflow is charged) against the budget. A surplus is retained in bands
//! (e.g. all of it up to 5% of the budget, half beyond); an overspend is shared in bands (e.g.
//! the bureau bears half of it up to 10% of the budget, nothing beyond); the quality deposit
//! comes back by the assessment score. The statement ends with what is still due either way.

use serde::{Deserialize, Serialize};

use super::{at_rate, percent, share, yuan, Fen, Ppm, Step, PPM};

/// A band of a surplus or an overspend, as a share of the budget: the part of it up to
/// `up_to` (all the rest when `None`) counts at `rate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Band {
    pub up_to: Option<Ppm>,
    pub rate: Ppm,
}

/// How the deposit comes back: none below `none_below`, all from `full_from`, in proportion
/// between (scores in hundredths of a point: 8500 = 85.00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositReturn {
    pub none_below: i64,
    pub full_from: i64,
}

/// The settlement's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementRule {
    /// Bands of the surplus: the share the group retains.
    pub surplus: Vec<Band>,
    /// Bands of the overspend: the share the bureau bears.
    pub overspend: Vec<Band>,
    pub deposit: DepositReturn,
}

impl Default for SettlementRule {
    /// 结余留用、合理超支分担 as the seeds describe it: the whole surplus up to 5% of the
    /// budget retained and half beyond; an overspend within 10% shared half and half, beyond
    /// borne by the group; the deposit back in full from 90 points, none below 60.
    fn default() -> Self {
        Self {
            surplus: vec![
                Band {
                    up_to: Some(50_000),
                    rate: PPM,
                },
                Band {
                    up_to: None,
                    rate: 500_000,
                },
            ],
            overspend: vec![
                Band {
                    up_to: Some(100_000),
                    rate: 500_000,
                },
                Band {
                    up_to: None,
                    rate: 0,
                },
            ],
            deposit: DepositReturn {
                none_below: 6_000,
                full_from: 9_000,
            },
        }
    }
}

/// What the year came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Year {
    pub budget: Fen,
    /// Spending in the group's own units.
    pub in_group: Fen,
    /// The group's residents' spending elsewhere.
    pub outflow: Fen,
    pub charge_outflow: bool,
    /// What the monthly prepayments paid (after their deductions).
    pub prepaid: Fen,
    /// The deposits they withheld.
    pub deposits: Fen,
    /// The group's assessment score in hundredths.
    pub score: i64,
}

/// The statement: every step, and the amount due (positive: the bureau pays the group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    pub actual: Fen,
    pub surplus: Fen,
    pub retained: Fen,
    pub overspend: Fen,
    pub bureau_share: Fen,
    pub entitled: Fen,
    pub deposit_returned: Fen,
    pub due: Fen,
    pub steps: Vec<Step>,
}

/// The amount that counts from a surplus or an overspend of `amount`, band by band (bands as
/// shares of `budget`), with a line per band.
fn banded(amount: Fen, budget: Fen, bands: &[Band], key: &str, steps: &mut Vec<Step>) -> Fen {
    let mut counted = 0;
    let mut lower = 0;
    for band in bands {
        let upper = band.up_to.map(|u| at_rate(budget, u));
        let top = upper.map_or(amount, |u| u.min(amount));
        let part = (top - lower).max(0);
        if part > 0 {
            let c = at_rate(part, band.rate);
            counted += c;
            let range = match band.up_to {
                Some(u) => format!("预算 {} 以内部分", percent(u)),
                None => "其余部分".to_owned(),
            };
            steps.push(Step::new(
                key,
                format!("{range} {} × {}", yuan(part), percent(band.rate)),
                c,
            ));
        }
        match upper {
            Some(u) if u < amount => lower = u,
            _ => break,
        }
    }
    counted
}

/// Settles a year.
pub fn settle(y: &Year, rule: &SettlementRule) -> Statement {
    let mut steps = vec![Step::new("budget", "年度预算总额", y.budget)];
    let outflow = if y.charge_outflow { y.outflow } else { 0 };
    let actual = y.in_group + outflow;
    steps.push(Step::new("in_group", "集团内实际发生医保费用", y.in_group));
    steps.push(Step::new(
        "outflow",
        if y.charge_outflow {
            "参保人集团外就医费用（计入集团）"
        } else {
            "集团外就医费用不计入集团"
        },
        outflow,
    ));
    steps.push(Step::new("actual", "实际费用合计", actual));
    let (surplus, retained, overspend, bureau_share, entitled) = if actual <= y.budget {
        let surplus = y.budget - actual;
        steps.push(Step::new("surplus", "结余", surplus));
        let retained = banded(surplus, y.budget, &rule.surplus, "retained", &mut steps);
        steps.push(Step::new("retained_total", "结余留用合计", retained));
        (surplus, retained, 0, 0, actual + retained)
    } else {
        let overspend = actual - y.budget;
        steps.push(Step::new("overspend", "超支", overspend));
        let shared = banded(overspend, y.budget, &rule.overspend, "shared", &mut steps);
        steps.push(Step::new("shared_total", "医保分担合计", shared));
        (0, 0, overspend, shared, y.budget + shared)
    };
    steps.push(Step::new(
        "entitled",
        "集团年度应得（含支付集团外就医部分）",
        entitled,
    ));
    let d = rule.deposit;
    let deposit_returned = if y.score >= d.full_from {
        y.deposits
    } else if y.score < d.none_below || d.full_from <= d.none_below {
        0
    } else {
        share(
            y.deposits,
            y.score - d.none_below,
            d.full_from - d.none_below,
        )
    };
    steps.push(Step::new(
        "deposit_returned",
        format!(
            "质量保证金 {} 按考核得分 {}.{:02} 返还",
            yuan(y.deposits),
            y.score / 100,
            y.score % 100
        ),
        deposit_returned,
    ));
    let forfeited = y.deposits - deposit_returned;
    // What the group ends up with: its entitlement, less what was spent for it outside (paid
    // by the bureau to other hospitals), less the deposit it forfeits; the prepayments already
    // paid come off.
    let due = entitled - outflow - forfeited - y.prepaid;
    steps.push(Step::new(
        "outflow_paid",
        "− 已由医保支付集团外就医",
        -outflow,
    ));
    steps.push(Step::new("forfeited", "− 未返还保证金", -forfeited));
    steps.push(Step::new("prepaid", "− 已预付（月度拨付合计）", -y.prepaid));
    steps.push(Step::new(
        "due",
        if due >= 0 {
            "年终清算：医保应补付集团"
        } else {
            "年终清算：集团应退回医保"
        },
        due,
    ));
    Statement {
        actual,
        surplus,
        retained,
        overspend,
        bureau_share,
        entitled,
        deposit_returned,
        due,
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Budget 100,000,000.00 yuan; prepaid 11 × 7,916,666.67 ... all written in fen below.
    fn year(in_group: Fen, score: i64) -> Year {
        Year {
            budget: 10_000_000_000,
            in_group,
            outflow: 500_000_000,
            charge_outflow: true,
            // 95% of the budget prepaid gross = 95,000,000.00; deposits 5% of it =
            // 4,750,000.00; outflow 5,000,000.00 deducted monthly: 95,000,000.00 −
            // 4,750,000.00 − 5,000,000.00 = 85,250,000.00 paid.
            prepaid: 8_525_000_000,
            deposits: 475_000_000,
            score,
        }
    }

    #[test]
    fn a_surplus_is_retained_in_bands() {
        // Actual 88,000,000.00 + 5,000,000.00 = 93,000,000.00; surplus 7,000,000.00.
        // Up to 5% of the budget (5,000,000.00) all retained; the 2,000,000.00 beyond at 50%
        // = 1,000,000.00; retained 6,000,000.00; entitled 93,000,000.00 + 6,000,000.00 =
        // 99,000,000.00. Score 92 ≥ 90: deposit back in full. Due = 99,000,000.00 −
        // 5,000,000.00 − 0 − 85,250,000.00 = 8,750,000.00 to the group.
        let s = settle(&year(8_800_000_000, 9_200), &SettlementRule::default());
        assert_eq!(s.surplus, 700_000_000);
        assert_eq!(s.retained, 600_000_000);
        assert_eq!(s.entitled, 9_900_000_000);
        assert_eq!(s.deposit_returned, 475_000_000);
        assert_eq!(s.due, 875_000_000);
        assert_eq!(s.steps.last().map(|x| x.amount), Some(875_000_000));
    }

    #[test]
    fn an_overspend_within_the_band_is_shared() {
        // Actual 103,000,000.00 + 5,000,000.00 = 108,000,000.00; overspend 8,000,000.00, all
        // within 10% (10,000,000.00): the bureau bears 50% = 4,000,000.00; entitled
        // 104,000,000.00. Score 75: deposit back (75 − 60) / (90 − 60) = 50% = 2,375,000.00,
        // 2,375,000.00 forfeited. Due = 104,000,000.00 − 5,000,000.00 − 2,375,000.00 −
        // 85,250,000.00 = 11,375,000.00.
        let s = settle(&year(10_300_000_000, 7_500), &SettlementRule::default());
        assert_eq!(s.overspend, 800_000_000);
        assert_eq!(s.bureau_share, 400_000_000);
        assert_eq!(s.deposit_returned, 237_500_000);
        assert_eq!(s.due, 1_137_500_000);
    }

    #[test]
    fn an_overspend_beyond_the_band_is_the_groups() {
        // Actual 110,000,000.00 + 5,000,000.00 = 115,000,000.00; overspend 15,000,000.00:
        // 10,000,000.00 within the band × 50% = 5,000,000.00; the 5,000,000.00 beyond × 0.
        // Entitled 105,000,000.00. Score 55 < 60: the deposit is forfeited. Due =
        // 105,000,000.00 − 5,000,000.00 − 4,750,000.00 − 85,250,000.00 = 10,000,000.00.
        let s = settle(&year(11_000_000_000, 5_500), &SettlementRule::default());
        assert_eq!(s.bureau_share, 500_000_000);
        assert_eq!(s.entitled, 10_500_000_000);
        assert_eq!(s.deposit_returned, 0);
        assert_eq!(s.due, 1_000_000_000);
        let shared: Vec<Fen> = s
            .steps
            .iter()
            .filter(|x| x.key == "shared")
            .map(|x| x.amount)
            .collect();
        assert_eq!(shared, [500_000_000, 0]);
    }

    #[test]
    fn a_group_that_received_too_much_owes_it_back() {
        // Actual 70,000,000.00, outflow not charged: surplus 30,000,000.00; retained
        // 5,000,000.00 + 25,000,000.00 × 50% = 17,500,000.00; entitled 87,500,000.00.
        // Prepaid 95,000,000.00 − 4,750,000.00 = 90,250,000.00; deposit back in full.
        // Due = 87,500,000.00 − 0 − 0 − 90,250,000.00 = −2,750,000.00: the group repays.
        let y = Year {
            charge_outflow: false,
            prepaid: 9_025_000_000,
            ..year(7_000_000_000, 9_500)
        };
        let s = settle(&y, &SettlementRule::default());
        assert_eq!(s.retained, 1_750_000_000);
        assert_eq!(s.due, -275_000_000);
        assert!(s.steps.last().is_some_and(|x| x.label_zh.contains("退回")));
    }
}
