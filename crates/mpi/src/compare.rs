//! How alike two values of one kind are, as a level: 0 when either is missing (no evidence
//! either way), 1 for the closest agreement, the last level for "different". The model learns
//! how much each level says; the levels only have to separate what means different things.

use chrono::Datelike;

use crate::field::{FieldKind, Value};
use crate::pinyin;

/// The names of a kind's levels, index = level; level 0 is "missing".
pub fn levels(kind: FieldKind) -> &'static [&'static str] {
    match kind {
        FieldKind::Name | FieldKind::Surname | FieldKind::GivenName => &[
            "missing",
            "exact",
            "same_reading",
            "close",
            "similar",
            "different",
        ],
        FieldKind::BirthDate => &[
            "missing",
            "exact",
            "day_month_swapped",
            "one_edit",
            "two_edits",
            "different",
        ],
        FieldKind::Sex => &["missing", "exact", "different"],
        FieldKind::Phone | FieldKind::Postcode => &["missing", "exact", "one_edit", "different"],
        FieldKind::CitizenId => &["missing", "exact_valid", "close", "different"],
        FieldKind::OtherId => &["missing", "exact", "one_edit", "two_edits", "different"],
        FieldKind::Address | FieldKind::Text => &[
            "missing",
            "exact",
            "contained",
            "close",
            "similar",
            "different",
        ],
    }
}

/// The level of agreement between `a` and `b`, both of `kind`.
pub fn level(kind: FieldKind, a: &Value, b: &Value) -> u8 {
    if a.is_missing() || b.is_missing() {
        return 0;
    }
    let exact = a.norm == b.norm;
    match kind {
        FieldKind::Name | FieldKind::Surname | FieldKind::GivenName => {
            if exact {
                1
            } else if pinyin::sound_alike(&a.readings, &b.readings) {
                2
            } else {
                let jw = jaro_winkler(&a.chars, &b.chars);
                let longest = a.chars.len().max(b.chars.len());
                let edits = levenshtein(&a.chars, &b.chars, 2);
                // Chinese names are two or three characters: one changed character in a
                // three-character name is close, in a two-character one merely similar.
                if jw >= 0.92 || (edits <= 1 && longest >= 3) {
                    3
                } else if jw >= 0.8 || edits <= 1 {
                    4
                } else {
                    5
                }
            }
        }
        FieldKind::BirthDate => {
            if exact {
                return 1;
            }
            if let (Some(x), Some(y)) = (a.date, b.date) {
                if x.year() == y.year() && x.month() == y.day() && x.day() == y.month() {
                    return 2;
                }
            }
            match levenshtein(&a.chars, &b.chars, 2) {
                1 => 3,
                2 => 4,
                _ => 5,
            }
        }
        FieldKind::Sex => {
            if exact {
                1
            } else {
                2
            }
        }
        FieldKind::Phone | FieldKind::Postcode => {
            if exact {
                1
            } else if levenshtein(&a.chars, &b.chars, 1) <= 1 {
                2
            } else {
                3
            }
        }
        FieldKind::CitizenId => {
            // An invalid number is never proof of identity: agreeing on one counts no more
            // than a near miss. Two valid numbers that differ belong to two people (people
            // born on one day in one county differ only in a digit or two, so closeness
            // between valid numbers means nothing); a near miss counts only when the check
            // character says one of the two was mistyped.
            if exact && a.valid && b.valid {
                1
            } else if exact
                || (!(a.valid && b.valid)
                    && (levenshtein(&a.chars, &b.chars, 1) <= 1 || transposed(&a.chars, &b.chars)))
            {
                2
            } else {
                3
            }
        }
        FieldKind::OtherId => {
            if exact {
                1
            } else {
                match levenshtein(&a.chars, &b.chars, 2) {
                    1 => 2,
                    2 => 3,
                    _ => 4,
                }
            }
        }
        FieldKind::Address | FieldKind::Text => {
            if exact {
                return 1;
            }
            let (short, long) = if a.chars.len() <= b.chars.len() {
                (a, b)
            } else {
                (b, a)
            };
            // A clerk who leaves out the province and city writes the rest of the address.
            if short.chars.len() >= 4 && long.norm.contains(&*short.norm) {
                return 2;
            }
            let jw = jaro_winkler(&a.chars, &b.chars);
            if jw >= 0.9 {
                3
            } else if jw >= 0.7 {
                4
            } else {
                5
            }
        }
    }
}

/// Whether `b` is `a` with two neighbouring characters swapped.
fn transposed(a: &[char], b: &[char]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    diff.len() == 2
        && diff[1] == diff[0] + 1
        && a[diff[0]] == b[diff[1]]
        && a[diff[1]] == b[diff[0]]
}

/// Jaro–Winkler similarity on characters (prefix scale 0.1, up to four characters).
pub fn jaro_winkler(a: &[char], b: &[char]) -> f64 {
    let j = jaro(a, b);
    let prefix = a
        .iter()
        .zip(b.iter())
        .take(4)
        .take_while(|(x, y)| x == y)
        .count();
    j + prefix as f64 * 0.1 * (1.0 - j)
}

/// Jaro similarity: matching characters within half the longer length, and transpositions.
pub fn jaro(a: &[char], b: &[char]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let window = (a.len().max(b.len()) / 2).saturating_sub(1);
    // Names and addresses are short: flags on the stack cover them without allocating.
    let (mut a_stack, mut b_stack) = ([false; 128], [false; 128]);
    let (mut a_heap, mut b_heap): (Vec<bool>, Vec<bool>);
    let (a_used, b_used): (&mut [bool], &mut [bool]) = if a.len() <= 128 && b.len() <= 128 {
        (&mut a_stack[..a.len()], &mut b_stack[..b.len()])
    } else {
        a_heap = vec![false; a.len()];
        b_heap = vec![false; b.len()];
        (&mut a_heap, &mut b_heap)
    };
    let mut m = 0usize;
    for (i, &c) in a.iter().enumerate() {
        let lo = i.saturating_sub(window);
        let hi = (i + window + 1).min(b.len());
        for j in lo..hi {
            if !b_used[j] && b[j] == c {
                b_used[j] = true;
                a_used[i] = true;
                m += 1;
                break;
            }
        }
    }
    if m == 0 {
        return 0.0;
    }
    // Matched characters read in order on both sides; each disagreement is half a
    // transposition.
    let mut half_transpositions = 0u32;
    let mut bj = b_used
        .iter()
        .enumerate()
        .filter(|(_, u)| **u)
        .map(|(j, _)| b[j]);
    for (i, _) in a_used.iter().enumerate().filter(|(_, u)| **u) {
        if bj.next() != Some(a[i]) {
            half_transpositions += 1;
        }
    }
    let m = m as f64;
    let t = f64::from(half_transpositions) / 2.0;
    (m / a.len() as f64 + m / b.len() as f64 + (m - t) / m) / 3.0
}

/// Levenshtein distance on characters, or `bound + 1` as soon as it is known to exceed
/// `bound` (the levels only ask "at most one or two edits?").
pub fn levenshtein(a: &[char], b: &[char], bound: usize) -> usize {
    let big = bound.saturating_add(1);
    if a.len().abs_diff(b.len()) > bound {
        return big;
    }
    // A shared beginning and end cost nothing; most near misses differ in a character or two.
    let head = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[head..], &b[head..]);
    let tail = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (a, b) = (&a[..a.len() - tail], &b[..b.len() - tail]);
    if a.is_empty() || b.is_empty() {
        return a.len().max(b.len()).min(big);
    }
    // Two rows; values short enough for the stack need no allocation, which is most of the
    // cost of comparing a pair of short values.
    const STACK: usize = 64;
    let n = b.len();
    let (mut prev_stack, mut cur_stack) = ([0usize; STACK], [0usize; STACK]);
    let (mut prev_heap, mut cur_heap): (Vec<usize>, Vec<usize>);
    let (mut prev, mut cur): (&mut [usize], &mut [usize]) = if n < STACK {
        (&mut prev_stack[..=n], &mut cur_stack[..=n])
    } else {
        prev_heap = vec![0; n + 1];
        cur_heap = vec![0; n + 1];
        (&mut prev_heap, &mut cur_heap)
    };
    for (j, x) in prev.iter_mut().enumerate() {
        *x = j.min(big);
    }
    // Only cells within `bound` of the diagonal can stay within `bound`; the rest count as
    // `bound + 1`, and every value is capped there (edits only add up).
    for (i, &ca) in a.iter().enumerate().map(|(i, c)| (i + 1, c)) {
        let lo = i.saturating_sub(bound).max(1);
        let hi = i.saturating_add(bound).min(n);
        cur[0] = i.min(big);
        if lo > 1 {
            cur[lo - 1] = big;
        }
        let mut row_min = if lo == 1 { cur[0] } else { big };
        for j in lo..=hi {
            let cost = usize::from(ca != b[j - 1]);
            let v = (prev[j - 1] + cost)
                .min(prev[j] + 1)
                .min(cur[j - 1] + 1)
                .min(big);
            cur[j] = v;
            row_min = row_min.min(v);
        }
        if hi < n {
            cur[hi + 1] = big;
        }
        if row_min >= big {
            return big;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[n].min(big)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn jaro_winkler_matches_the_published_examples() {
        // Winkler's examples: MARTHA/MARHTA 0.961, DWAYNE/DUANE 0.84, DIXON/DICKSONX 0.813.
        let r = |a: &str, b: &str| (jaro_winkler(&c(a), &c(b)) * 1000.0).round() / 1000.0;
        assert_eq!(r("MARTHA", "MARHTA"), 0.961);
        assert_eq!(r("DWAYNE", "DUANE"), 0.84);
        assert_eq!(r("DIXON", "DICKSONX"), 0.813);
        assert_eq!(r("", ""), 1.0);
        assert_eq!(r("abc", ""), 0.0);
    }

    #[test]
    fn distances_count_characters_not_bytes() {
        assert_eq!(levenshtein(&c("王伟"), &c("王玮"), 2), 1);
        assert_eq!(levenshtein(&c("kitten"), &c("sitting"), 5), 3);
        assert_eq!(levenshtein(&c("kitten"), &c("sitting"), 1), 2, "bounded");
        assert!(jaro_winkler(&c("张小明"), &c("张晓明")) > 0.7);
    }

    #[test]
    fn bounded_levenshtein_agrees_with_the_full_table() {
        fn full(a: &[char], b: &[char]) -> usize {
            let mut d: Vec<Vec<usize>> = (0..=a.len())
                .map(|i| (0..=b.len()).map(|j| if i == 0 { j } else { i }).collect())
                .collect();
            for i in 1..=a.len() {
                for j in 1..=b.len() {
                    let cost = usize::from(a[i - 1] != b[j - 1]);
                    d[i][j] = (d[i - 1][j - 1] + cost)
                        .min(d[i - 1][j] + 1)
                        .min(d[i][j - 1] + 1);
                }
            }
            d[a.len()][b.len()]
        }
        // Every pair of strings of up to five characters over a three-letter alphabet.
        let words: Vec<Vec<char>> = (0..=5u32)
            .flat_map(|len| {
                (0..3usize.pow(len)).map(move |mut x| {
                    (0..len)
                        .map(|_| {
                            let c = ['a', 'b', 'c'][x % 3];
                            x /= 3;
                            c
                        })
                        .collect()
                })
            })
            .collect();
        for a in words.iter().step_by(3) {
            for b in &words {
                let d = full(a, b);
                for bound in 0..4 {
                    assert_eq!(
                        levenshtein(a, b, bound),
                        d.min(bound + 1),
                        "{a:?} {b:?} {bound}"
                    );
                }
            }
        }
    }

    #[test]
    fn levels_separate_what_means_different_things() {
        let v = |k, s: &str| Value::new(k, s);
        let name = FieldKind::Name;
        assert_eq!(level(name, &v(name, "王伟"), &v(name, "王伟")), 1);
        assert_eq!(level(name, &v(name, "王伟"), &v(name, "王玮")), 2);
        assert_eq!(level(name, &v(name, "张小明"), &v(name, "张大明")), 3);
        assert_eq!(level(name, &v(name, "王伟"), &v(name, "李娜")), 5);
        assert_eq!(level(name, &v(name, "王伟"), &v(name, "")), 0);
        let dob = FieldKind::BirthDate;
        assert_eq!(level(dob, &v(dob, "1980-03-07"), &v(dob, "1980-07-03")), 2);
        assert_eq!(level(dob, &v(dob, "1980-03-07"), &v(dob, "1980-03-08")), 3);
        let id = FieldKind::CitizenId;
        let valid = "11010519491231002X";
        let invalid = "110105194912310021";
        assert_eq!(level(id, &v(id, valid), &v(id, valid)), 1);
        assert_eq!(
            level(id, &v(id, invalid), &v(id, invalid)),
            2,
            "never proof"
        );
        assert_eq!(level(id, &v(id, valid), &v(id, invalid)), 2);
        // Two valid numbers a digit apart are two people born the same day.
        let neighbour = "110105194912310011";
        assert!(v(id, neighbour).valid);
        assert_eq!(level(id, &v(id, valid), &v(id, neighbour)), 3);
        let addr = FieldKind::Address;
        assert_eq!(
            level(
                addr,
                &v(addr, "浙江省金华市婺城区城北街道8号"),
                &v(addr, "婺城区城北街道8号")
            ),
            2
        );
        for k in FieldKind::ALL {
            assert!(levels(k).len() <= 8, "a level fits in three bits");
        }
    }
}
