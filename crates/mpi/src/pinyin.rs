//! Chinese names as they sound. A registration clerk who hears 王玮 may type 王伟; both read
//! wang wei. Many characters have several readings, and some surnames are read differently
//! from the same character in ordinary words (单 is shan as a surname, dan otherwise), so a
//! name has a set of readings and two names sound alike when their sets meet.

use pinyin::ToPinyinMulti;

/// Surnames whose reading differs from the character's usual one, with the reading a surname
/// takes. Where a character's surname reading is disputed or regional, both are listed.
const SURNAMES: &[(char, &[&str])] = &[
    ('单', &["shan"]),
    ('曾', &["zeng"]),
    ('解', &["xie"]),
    ('仇', &["qiu"]),
    ('区', &["ou"]),
    ('朴', &["piao"]),
    ('查', &["zha"]),
    ('盖', &["ge", "gai"]),
    ('乐', &["yue", "le"]),
    ('缪', &["miao"]),
    ('翟', &["zhai", "di"]),
    ('尉', &["yu", "wei"]),
    ('繁', &["po"]),
    ('覃', &["qin", "tan"]),
    ('召', &["shao"]),
    ('员', &["yun"]),
    ('种', &["chong"]),
    ('长', &["chang"]),
    ('秘', &["bi"]),
    ('冼', &["xian"]),
    ('折', &["she"]),
    ('句', &["gou"]),
    ('教', &["jiao"]),
    ('能', &["nai"]),
    ('万', &["wan", "mo"]),
    ('沈', &["shen"]),
    ('费', &["fei", "bi"]),
    ('华', &["hua"]),
    ('任', &["ren"]),
    ('过', &["guo"]),
    ('燕', &["yan"]),
    ('阚', &["kan"]),
    ('隗', &["wei", "kui"]),
    ('訾', &["zi"]),
    ('郇', &["xun", "huan"]),
    ('眭', &["sui"]),
    ('黑', &["he"]),
    ('柏', &["bai"]),
    ('藏', &["zang"]),
    ('重', &["chong"]),
    ('薄', &["bo"]),
    ('洗', &["xian"]),
    ('那', &["na"]),
    ('相', &["xiang"]),
    ('贲', &["ben"]),
    ('宿', &["su"]),
    ('令', &["ling"]),
    ('红', &["hong"]),
    ('纪', &["ji"]),
    ('朝', &["chao"]),
];

/// Above this many combinations a name keeps only the first: a long name of polyphones would
/// otherwise explode, and its usual reading is what was most likely meant.
const MAX_READINGS: usize = 16;

/// CJK unified ideographs, the extension A block and the compatibility block: the characters
/// names are written in.
pub fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{F900}'..='\u{FAFF}')
}

/// The readings of one character, the usual one first; a surname's own reading when
/// `as_surname`. A character without a known reading (a letter, a digit, a rare variant)
/// stands for itself.
pub fn char_readings(c: char, as_surname: bool) -> Vec<String> {
    if as_surname {
        if let Some((_, r)) = SURNAMES.iter().find(|(s, _)| *s == c) {
            return r.iter().map(|s| (*s).to_owned()).collect();
        }
    }
    let mut out: Vec<String> = Vec::new();
    if let Some(multi) = c.to_pinyin_multi() {
        for p in multi {
            let plain = p.plain();
            // Tones are dropped: a clerk hearing a name does not hear its tones reliably.
            if !out.iter().any(|o| o == plain) {
                out.push(plain.to_owned());
            }
        }
    }
    if out.is_empty() {
        out.push(c.to_string());
    }
    out
}

/// Every full reading of a name, syllables separated by spaces, the usual reading first;
/// `surname_first` when the first character is a surname.
pub fn readings(chars: &[char], surname_first: bool) -> Box<[Box<str>]> {
    let mut acc: Vec<String> = vec![String::new()];
    for (i, &c) in chars.iter().enumerate() {
        let options = char_readings(c, surname_first && i == 0);
        let keep = if acc.len() * options.len() > MAX_READINGS {
            &options[..1]
        } else {
            &options[..]
        };
        let mut next = Vec::with_capacity(acc.len() * keep.len());
        for prefix in &acc {
            for o in keep {
                let mut s = prefix.clone();
                if !s.is_empty() {
                    s.push(' ');
                }
                s.push_str(o);
                next.push(s);
            }
        }
        acc = next;
    }
    acc.into_iter().map(String::into_boxed_str).collect()
}

/// Whether two names can be read the same.
pub fn sound_alike(a: &[Box<str>], b: &[Box<str>]) -> bool {
    !a.is_empty() && a.iter().any(|x| b.contains(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(name: &str, surname: bool) -> Vec<String> {
        let chars: Vec<char> = name.chars().collect();
        readings(&chars, surname)
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn multi_reading_surnames_read_as_surnames() {
        for (name, usual) in [
            ("单", "shan"),
            ("曾", "zeng"),
            ("解", "xie"),
            ("仇", "qiu"),
            ("区", "ou"),
            ("朴", "piao"),
            ("查", "zha"),
            ("缪", "miao"),
            ("覃", "qin"),
        ] {
            assert_eq!(read(name, true)[0], usual, "{name}");
        }
        // The same characters inside a given name keep their ordinary readings.
        assert!(read("单", false).contains(&"dan".to_owned()));
        assert!(read("查", false).contains(&"cha".to_owned()));
        assert_eq!(read("单雄信", true)[0], "shan xiong xin");
    }

    #[test]
    fn homophones_sound_alike_and_different_names_do_not() {
        let a = readings(&['王', '伟'], true);
        let b = readings(&['王', '玮'], true);
        let c = readings(&['汪', '威'], true);
        let d = readings(&['王', '强'], true);
        assert!(sound_alike(&a, &b));
        assert!(sound_alike(&a, &c));
        assert!(!sound_alike(&a, &d));
        // 曾 as a surname is zeng; a given name of 曾 may be ceng, and that still meets zeng.
        let z = readings(&['曾', '红'], true);
        let w = readings(&['增', '宏'], true);
        assert!(sound_alike(&z, &w));
    }

    #[test]
    fn readings_stay_bounded_and_letters_stand_for_themselves() {
        let long: Vec<char> = "行长重乐朝和".chars().collect();
        assert!(readings(&long, false).len() <= MAX_READINGS);
        assert_eq!(read("李a", true)[0], "li a");
    }
}
