//! Bundled public funds (R9.4) and incentives (R9.5): basic public-health money comes to the
//! lead hospital by capitation (population × the standard per person), with the essential-drug
//! subsidy bundled in, and goes on to members quarterly — 70% of each member's share in
//! advance, the rest released by its assessment score. A share of members' surplus growth
//! goes to the lead hospital as the down-flow fund, and a surplus can be distributed to
//! members by any weights the group chooses.

use serde::{Deserialize, Serialize};

use super::{apportion, at_rate, share, Fen, Ppm};

/// The year's bundled public funds.
pub fn bundle(population: i64, per_person: Fen, drug_subsidy: Fen) -> Fen {
    population * per_person + drug_subsidy
}

/// One member's part of a quarter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberQuarter {
    pub share: Fen,
    pub advance: Fen,
    pub released: Fen,
    pub withheld: Fen,
}

/// A quarter of `year_total` split among members by `weights` (their populations served),
/// each paid `advance` (e.g. 70%) at once and the rest by `scores` (hundredths of 100).
/// Quarters and members are apportioned so that every fen is accounted for.
pub fn quarter(
    year_total: Fen,
    quarter_no: usize,
    weights: &[i64],
    advance: Ppm,
    scores: &[i64],
) -> Vec<MemberQuarter> {
    let quarters = apportion(year_total, &[1, 1, 1, 1]);
    let q = quarters
        .get(quarter_no.clamp(1, 4) - 1)
        .copied()
        .unwrap_or(0);
    apportion(q, weights)
        .into_iter()
        .enumerate()
        .map(|(i, share_fen)| {
            let adv = at_rate(share_fen, advance);
            let rest = share_fen - adv;
            let score = scores.get(i).copied().unwrap_or(0).clamp(0, 10_000);
            let released = share(rest, score, 10_000);
            MemberQuarter {
                share: share_fen,
                advance: adv,
                released,
                withheld: rest - released,
            }
        })
        .collect()
}

/// The lead hospital's part of members' surplus growth (e.g. 30%); no growth, nothing.
pub fn surplus_growth_share(this_year: Fen, last_year: Fen, rate: Ppm) -> Fen {
    at_rate((this_year - last_year).max(0), rate)
}

/// A surplus distributed by the group's chosen weights (population, workload, scores, …).
pub fn distribute(surplus: Fen, weights: &[i64]) -> Vec<Fen> {
    apportion(surplus, weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capitation_with_the_drug_subsidy_bundled() {
        // 120,000 residents × 89.00 yuan + 600,000.00 subsidy = 11,280,000.00 yuan.
        assert_eq!(bundle(120_000, 8_900, 60_000_000), 1_128_000_000);
    }

    #[test]
    fn a_quarter_is_advanced_at_seventy_percent_and_released_by_score() {
        // 10,000,000.00 a year → 2,500,000.00 a quarter; members serving 30,000 and 20,000
        // people: 1,500,000.00 and 1,000,000.00. Advance 70%: 1,050,000.00 and 700,000.00.
        // Scores 90 and 60: 450,000.00 × 90% = 405,000.00 released, 45,000.00 withheld;
        // 300,000.00 × 60% = 180,000.00 released, 120,000.00 withheld.
        let q = quarter(
            1_000_000_000,
            2,
            &[30_000, 20_000],
            700_000,
            &[9_000, 6_000],
        );
        assert_eq!(q[0].share, 150_000_000);
        assert_eq!(q[0].advance, 105_000_000);
        assert_eq!(q[0].released, 40_500_000);
        assert_eq!(q[0].withheld, 4_500_000);
        assert_eq!(q[1].advance, 70_000_000);
        assert_eq!(q[1].released, 18_000_000);
        assert_eq!(q[1].withheld, 12_000_000);
        // A year that does not divide by four: the quarters still add up.
        let total: i64 = (1..=4)
            .flat_map(|n| quarter(1_000_000_003, n, &[1, 1, 1], 700_000, &[10_000; 3]))
            .map(|m| m.share)
            .sum();
        assert_eq!(total, 1_000_000_003);
    }

    #[test]
    fn the_lead_hospital_takes_thirty_percent_of_surplus_growth() {
        // Members' surplus 3,000,000.00 this year, 2,000,000.00 last: growth 1,000,000.00 ×
        // 30% = 300,000.00. Shrinking surplus: nothing.
        assert_eq!(
            surplus_growth_share(300_000_000, 200_000_000, 300_000),
            30_000_000
        );
        assert_eq!(surplus_growth_share(100_000_000, 200_000_000, 300_000), 0);
        assert_eq!(distribute(100, &[1, 1, 1]).iter().sum::<i64>(), 100);
    }
}
