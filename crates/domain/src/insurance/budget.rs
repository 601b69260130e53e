//! The global budget (医保总额, R9.1) and its monthly prepayment.
//!
//! A budget is set per group, year and fund. Each month the bureau prepays the month's
//! twelfth times a prepayment ratio, less what the group's residents spent outside the group
//! that month (when outflow is charged to the group), less a quality deposit withheld until
//! the year's assessment.

use serde::{Deserialize, Serialize};

use super::{at_rate, share, Fen, Ppm, Step, PPM};

/// Which insurance fund pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fund {
    /// 城镇职工基本医疗保险
    Employee,
    /// 城乡居民基本医疗保险
    Resident,
}

impl Fund {
    pub const ALL: [Fund; 2] = [Fund::Employee, Fund::Resident];

    pub fn as_str(self) -> &'static str {
        match self {
            Fund::Employee => "employee",
            Fund::Resident => "resident",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Fund::Employee => "职工医保",
            Fund::Resident => "城乡居民医保",
        }
    }

    pub fn parse(raw: &str) -> Option<Fund> {
        Fund::ALL.into_iter().find(|f| f.as_str() == raw.trim())
    }
}

/// A year's budget as agreed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub year: i32,
    pub fund: Fund,
    pub amount: Fen,
    /// Whether the group's residents' spending outside the group is charged to it.
    pub charge_outflow: bool,
}

/// Next year's budget from this year's final spending and an agreed growth rate, rounded once.
pub fn grown(last_final: Fen, growth: Ppm) -> Fen {
    at_rate(last_final, PPM + growth)
}

/// The budget's twelve months: each a twelfth rounded by the one rule, the twelfth month
/// taking what remains so that the year adds up exactly.
pub fn months(amount: Fen) -> [Fen; 12] {
    let month = share(amount, 1, 12);
    let mut out = [month; 12];
    out[11] = amount - 11 * month;
    out
}

/// How the bureau prepays (the parameters of a prepayment run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepaymentRule {
    /// Share of the month's budget prepaid.
    pub ratio: Ppm,
    /// Share of the gross prepayment withheld as the quality deposit.
    pub deposit: Ppm,
}

impl Default for PrepaymentRule {
    fn default() -> Self {
        Self {
            ratio: 950_000,
            deposit: 50_000,
        }
    }
}

/// One month's prepayment with its steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepayment {
    pub month: u32,
    pub month_budget: Fen,
    pub gross: Fen,
    pub outflow: Fen,
    pub deposit: Fen,
    /// What the bureau pays the group this month (negative: the group owes).
    pub due: Fen,
    pub steps: Vec<Step>,
}

/// The prepayment of `month` (1–12): the month's twelfth × the ratio (rounded), less the
/// outflow when charged, less the deposit (the gross × the deposit share, rounded).
pub fn prepay(budget: &Budget, month: u32, outflow: Fen, rule: &PrepaymentRule) -> Prepayment {
    let index = usize::try_from(month.clamp(1, 12) - 1).unwrap_or(0);
    let month_budget = months(budget.amount)[index];
    let gross = at_rate(month_budget, rule.ratio);
    let outflow = if budget.charge_outflow { outflow } else { 0 };
    let deposit = at_rate(gross, rule.deposit);
    let due = gross - outflow - deposit;
    let steps = vec![
        Step::new(
            "month_budget",
            format!(
                "{} 年 {} 月预算（年度 {} ÷ 12{}）",
                budget.year,
                month,
                super::yuan(budget.amount),
                if month == 12 {
                    "，12 月取余数"
                } else {
                    ""
                }
            ),
            month_budget,
        ),
        Step::new(
            "gross",
            format!("× 预付比例 {}", super::percent(rule.ratio)),
            gross,
        ),
        Step::new(
            "outflow",
            if budget.charge_outflow {
                "− 本月参保人集团外就医费用（外流）".to_owned()
            } else {
                "外流费用不计入集团（不扣减）".to_owned()
            },
            -outflow,
        ),
        Step::new(
            "deposit",
            format!("− 质量保证金（预付额 × {}）", super::percent(rule.deposit)),
            -deposit,
        ),
        Step::new("due", "本月应拨付", due),
    ];
    Prepayment {
        month,
        month_budget,
        gross,
        outflow,
        deposit,
        due,
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(amount: Fen, charge_outflow: bool) -> Budget {
        Budget {
            year: 2025,
            fund: Fund::Resident,
            amount,
            charge_outflow,
        }
    }

    #[test]
    fn twelve_months_add_up_to_the_year() {
        // 100,000,000.05 yuan = 10,000,000,005 fen; ÷ 12 = 833,333,333.75 → 833,333,334;
        // 11 × 833,333,334 = 9,166,666,674; December takes 10,000,000,005 − that = 833,333,331.
        let m = months(10_000_000_005);
        assert_eq!(m[0], 833_333_334);
        assert_eq!(m[11], 833_333_331);
        assert_eq!(m.iter().sum::<i64>(), 10_000_000_005);
    }

    #[test]
    fn growth_from_last_years_final() {
        // 1,000,000.00 yuan grown 3.5% = 1,035,000.00 yuan.
        assert_eq!(grown(100_000_000, 35_000), 103_500_000);
    }

    #[test]
    fn a_month_is_prepaid_less_outflow_and_deposit() {
        // Budget 12,000,000.00 yuan → 1,000,000.00 a month; × 95% = 950,000.00;
        // outflow 80,000.00; deposit 5% of 950,000.00 = 47,500.00;
        // due 950,000.00 − 80,000.00 − 47,500.00 = 822,500.00 yuan.
        let p = prepay(
            &budget(1_200_000_000, true),
            3,
            8_000_000,
            &PrepaymentRule::default(),
        );
        assert_eq!(p.month_budget, 100_000_000);
        assert_eq!(p.gross, 95_000_000);
        assert_eq!(p.deposit, 4_750_000);
        assert_eq!(p.due, 82_250_000);
        assert_eq!(p.steps.last().map(|s| s.amount), Some(82_250_000));
        // Outflow not charged: nothing deducted for it.
        let p = prepay(
            &budget(1_200_000_000, false),
            3,
            8_000_000,
            &PrepaymentRule::default(),
        );
        assert_eq!(p.outflow, 0);
        assert_eq!(p.due, 90_250_000);
    }
}
