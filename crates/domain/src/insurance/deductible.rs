//! The inpatient deductible along a referral chain (起付线连续计算, R9.3): inside the group a
//! referred patient has already paid part of it; at the next level they owe only what that
//! level's deductible exceeds what was paid; a down-referral owes none. Reimbursement rates
//! differ by level and are higher for referred patients where the bureau says so.

use serde::{Deserialize, Serialize};

use super::{at_rate, Fen, Ppm, Step};

/// One admission of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admission {
    /// The deductible of this admission's hospital level.
    pub level_deductible: Fen,
    /// Reached by a down-referral (from a higher level of the group).
    pub down_referral: bool,
}

/// What the patient owes at each admission of a chain, given the deductible paid earlier.
pub fn owed(a: &Admission, already_paid: Fen) -> Fen {
    if a.down_referral {
        0
    } else {
        (a.level_deductible - already_paid).max(0)
    }
}

/// The deductibles owed along a whole chain, in order.
pub fn chain(admissions: &[Admission]) -> Vec<Fen> {
    let mut paid = 0;
    admissions
        .iter()
        .map(|a| {
            let o = owed(a, paid);
            paid += o;
            o
        })
        .collect()
}

/// How the fund and the patient share an admission's eligible cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reimbursement {
    pub deductible: Fen,
    pub fund_pays: Fen,
    pub patient_pays: Fen,
    pub steps: Vec<Step>,
}

/// The eligible cost less the deductible owed, × the level's rate (the referred rate when the
/// patient was referred inside the group), rounded once; the patient pays the rest.
pub fn reimburse(eligible: Fen, deductible: Fen, rate: Ppm) -> Reimbursement {
    let deductible = deductible.min(eligible).max(0);
    let fund_pays = at_rate(eligible - deductible, rate);
    let patient_pays = eligible - fund_pays;
    Reimbursement {
        deductible,
        fund_pays,
        patient_pays,
        steps: vec![
            Step::new("eligible", "政策范围内费用", eligible),
            Step::new("deductible", "− 本次应付起付线", -deductible),
            Step::new(
                "fund_pays",
                format!("× 报销比例 {}", super::percent(rate)),
                fund_pays,
            ),
            Step::new("patient_pays", "患者负担", patient_pays),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_three_step_chain_pays_the_deductible_once() {
        // Township hospital (deductible 300.00) → county hospital (800.00) → city lead
        // hospital (1,200.00): 300.00, then 800.00 − 300.00 = 500.00, then 1,200.00 − 800.00
        // = 400.00; 1,200.00 in all, the highest level's deductible, paid once.
        let up = |d| Admission {
            level_deductible: d,
            down_referral: false,
        };
        let owed = chain(&[up(30_000), up(80_000), up(120_000)]);
        assert_eq!(owed, [30_000, 50_000, 40_000]);
        assert_eq!(owed.iter().sum::<i64>(), 120_000);
    }

    #[test]
    fn down_referral_owes_nothing_and_a_lower_level_after_a_higher_owes_nothing() {
        let owed = chain(&[
            Admission {
                level_deductible: 120_000,
                down_referral: false,
            },
            Admission {
                level_deductible: 30_000,
                down_referral: true,
            },
            Admission {
                level_deductible: 80_000,
                down_referral: false,
            },
        ]);
        // Lead hospital 1,200.00; down to a community centre: 0; up again to a county
        // hospital whose 800.00 is less than the 1,200.00 already paid: 0.
        assert_eq!(owed, [120_000, 0, 0]);
    }

    #[test]
    fn the_rest_is_reimbursed_at_the_levels_rate() {
        // Eligible 10,000.00, deductible owed 500.00, referred rate 85%:
        // (10,000.00 − 500.00) × 85% = 8,075.00 from the fund; the patient 1,925.00.
        let r = reimburse(1_000_000, 50_000, 850_000);
        assert_eq!((r.fund_pays, r.patient_pays), (807_500, 192_500));
        // A deductible larger than the cost: the patient pays all, the fund nothing.
        let r = reimburse(20_000, 50_000, 850_000);
        assert_eq!(
            (r.deductible, r.fund_pays, r.patient_pays),
            (20_000, 0, 20_000)
        );
    }
}
