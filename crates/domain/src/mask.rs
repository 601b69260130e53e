//! Masking (脱敏) of identifiers and phone numbers for lists and screens that do not need them
//! in full: enough remains to tell two people apart at a glance, not enough to use the number.

/// An identity document number: the first 6 and last 4 characters kept (the division code and
/// the tail of an 18-digit citizen ID; the birth date hidden); short numbers keep only their
/// last 2.
pub fn identifier(raw: &str) -> String {
    let chars: Vec<char> = raw.trim().chars().collect();
    match chars.len() {
        0 => String::new(),
        n if n >= 12 => chars[..6]
            .iter()
            .chain(std::iter::repeat_n(&'*', n - 10))
            .chain(&chars[n - 4..])
            .collect(),
        n if n > 2 => std::iter::repeat_n('*', n - 2)
            .chain(chars[n - 2..].iter().copied())
            .collect(),
        n => "*".repeat(n),
    }
}

/// A phone number: the first 3 and last 4 digits kept, as banks and carriers show them.
pub fn phone(raw: &str) -> String {
    let chars: Vec<char> = raw.trim().chars().collect();
    match chars.len() {
        0 => String::new(),
        n if n >= 8 => chars[..3]
            .iter()
            .chain(std::iter::repeat_n(&'*', n - 7))
            .chain(&chars[n - 4..])
            .collect(),
        n => {
            "*".repeat(n.saturating_sub(2))
                + &chars[n.saturating_sub(2)..].iter().collect::<String>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citizen_ids_lose_their_birth_date() {
        assert_eq!(identifier("11010519491231002X"), "110105********002X");
        assert_eq!(identifier("110105491231002"), "110105*****1002");
        assert_eq!(identifier("E1234567"), "******67");
        assert_eq!(identifier(""), "");
    }

    #[test]
    fn phones_keep_prefix_and_last_four() {
        assert_eq!(phone("13812345678"), "138****5678");
        assert_eq!(phone("057182345678"), "057*****5678");
        assert_eq!(phone("12345"), "***45");
        assert_eq!(phone(""), "");
    }
}
