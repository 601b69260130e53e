//! The group's money under one insurance global budget (R9): the budget, monthly prepayment,
//! case payment (DIP points, DRG weights, bed-days, capitation), the continuous inpatient
//! deductible along a referral chain, year-end settlement and the bundled public funds.
//!
//! Every rule is data: the parameters a bureau and a group agree on are values of the types
//! here, kept with their effective dates by the store. Each computation returns its result
//! together with the steps that led to it, so a statement can show every number used.
//!
//! **Money** is an integer number of fen (分): exact decimal money with two places. Shares and
//! rates are parts per million ([`Ppm`]), DIP points and DRG weights ten-thousandths. **One
//! rounding rule**, [`share`]: a product or quotient is rounded once, half away from zero, to
//! the fen, at the points each function documents; a sum split into parts gives the
//! remainder to the last part (or, by [`apportion`], to the largest remainders), so parts
//! always add up to the whole.

pub mod budget;
pub mod case_payment;
pub mod claims;
pub mod deductible;
pub mod dip;
pub mod public_funds;
pub mod settlement;

use serde::{Deserialize, Serialize};

/// Money in fen.
pub type Fen = i64;

/// A share or rate in parts per million: 950_000 is 95%.
pub type Ppm = i64;

pub const PPM: i64 = 1_000_000;

/// `amount × num ÷ den`, rounded half away from zero to the fen: the one rounding rule.
/// A zero denominator gives zero (there is nothing to share).
pub fn share(amount: Fen, num: i64, den: i64) -> Fen {
    div_round(i128::from(amount) * i128::from(num), i128::from(den))
}

/// `n ÷ d` rounded half away from zero: [`share`] for products too large for one factor.
pub fn div_round(n: i128, d: i128) -> Fen {
    if d == 0 {
        return 0;
    }
    let (n, d) = if d < 0 { (-n, -d) } else { (n, d) };
    let q = n / d;
    let r = n % d;
    let rounded = if 2 * r.abs() >= d { q + n.signum() } else { q };
    i64::try_from(rounded).unwrap_or(if rounded > 0 { i64::MAX } else { i64::MIN })
}

/// `amount × rate`, rounded by [`share`].
pub fn at_rate(amount: Fen, rate: Ppm) -> Fen {
    share(amount, rate, PPM)
}

/// Splits `total` in proportion to `weights` so that the parts add up to `total` exactly:
/// each part is rounded down, and the fen left over go one by one to the largest remainders
/// (earlier parts first on ties). All-zero weights give all-zero parts but the first, which
/// takes everything.
pub fn apportion(total: Fen, weights: &[i64]) -> Vec<Fen> {
    if weights.is_empty() {
        return Vec::new();
    }
    let sum: i128 = weights.iter().map(|w| i128::from((*w).max(0))).sum();
    if sum == 0 {
        let mut out = vec![0; weights.len()];
        out[0] = total;
        return out;
    }
    let t = i128::from(total);
    let mut parts: Vec<(usize, i128, i128)> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let n = t * i128::from((*w).max(0));
            (i, n.div_euclid(sum), n.rem_euclid(sum))
        })
        .collect();
    let given: i128 = parts.iter().map(|p| p.1).sum();
    let mut left = t - given;
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|a, b| parts[*b].2.cmp(&parts[*a].2).then(a.cmp(b)));
    for i in order.into_iter().cycle() {
        if left <= 0 {
            break;
        }
        parts[i].1 += 1;
        left -= 1;
    }
    parts
        .into_iter()
        .map(|p| i64::try_from(p.1).unwrap_or(0))
        .collect()
}

/// A number typed with at most two decimals (commas allowed), in hundredths: yuan to fen, a
/// score to hundredths of a point.
pub fn hundredths(raw: &str) -> Option<i64> {
    let t: String = raw.trim().chars().filter(|c| *c != ',').collect();
    let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
    if frac.len() > 2 || whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let frac = format!("{frac:0<2}");
    if !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(frac.parse::<i64>().ok()?)
}

/// One line of a statement: what was computed, how, and the amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// A stable key (`budget`, `prepaid_gross`, `deposit`, …).
    pub key: String,
    /// The line as people read it, in Chinese, with the numbers used.
    pub label_zh: String,
    pub amount: Fen,
}

impl Step {
    pub fn new(key: &str, label_zh: impl Into<String>, amount: Fen) -> Step {
        Step {
            key: key.to_owned(),
            label_zh: label_zh.into(),
            amount,
        }
    }
}

/// Fen as yuan for people: `123456` → `1,234.56`.
pub fn yuan(fen: Fen) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    let whole = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{:02}", abs % 100)
}

/// A rate for people: `950_000` → `95%`, `12_500` → `1.25%`.
pub fn percent(rate: Ppm) -> String {
    let hundredths = share(rate, 1, 100);
    let s = format!("{}.{:02}", hundredths / 100, (hundredths % 100).abs());
    format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rounding_rule_half_away_from_zero() {
        assert_eq!(share(10, 1, 4), 3, "2.5 → 3");
        assert_eq!(share(-10, 1, 4), -3, "-2.5 → -3");
        assert_eq!(share(10, 1, 3), 3, "3.33 → 3");
        assert_eq!(share(20, 1, 3), 7, "6.67 → 7");
        assert_eq!(share(5, 1, 0), 0);
        assert_eq!(at_rate(1_000_001, 500_000), 500_001, "500000.5 → 500001");
    }

    #[test]
    fn apportioned_parts_add_up() {
        // 100 fen by 1:1:1 → 33.33 each; the one fen left goes to the first.
        assert_eq!(apportion(100, &[1, 1, 1]), [34, 33, 33]);
        // 10 by 2:3:5 divides evenly.
        assert_eq!(apportion(10, &[2, 3, 5]), [2, 3, 5]);
        // 7 by 1:2 → 2.33 and 4.67: the larger remainder takes the fen.
        assert_eq!(apportion(7, &[1, 2]), [2, 5]);
        assert_eq!(apportion(9, &[0, 0]), [9, 0]);
        let parts = apportion(123_456_789, &[17, 29, 31, 1, 0, 5]);
        assert_eq!(parts.iter().sum::<i64>(), 123_456_789);
    }

    #[test]
    fn numbers_as_typed_to_hundredths() {
        assert_eq!(hundredths("1,234.5"), Some(123_450));
        assert_eq!(hundredths("100"), Some(10_000));
        assert_eq!(hundredths("0.07"), Some(7));
        assert_eq!(hundredths("1.234"), None);
        assert_eq!(hundredths("-5"), None);
        assert_eq!(hundredths("abc"), None);
    }

    #[test]
    fn money_and_rates_read_as_people_write_them() {
        assert_eq!(yuan(123_456_789), "1,234,567.89");
        assert_eq!(yuan(-5), "-0.05");
        assert_eq!(yuan(100), "1.00");
        assert_eq!(percent(950_000), "95%");
        assert_eq!(percent(12_500), "1.25%");
        assert_eq!(percent(100_000), "10%");
    }
}
