//! Patient records as the member units hold them: one per unit a resident was seen at, each
//! typed in by someone else, some with the errors real registration desks make. With the
//! truth beside them, the patient index can be measured for precision and recall.

use std::collections::HashMap;

use chrono::Datelike;

use crate::population::Resident;
use crate::rng::Rng;
use crate::table::{Sink, SinkError, SinkExt};

/// Given-name and surname characters and others read the same (homophones, tones ignored)
/// that a clerk may type instead.
const HOMOPHONES: &[(char, &str)] = &[
    ('伟', "玮炜威"),
    ('芳', "方昉"),
    ('娜', "纳"),
    ('敏', "民闵"),
    ('静', "晶婧靖"),
    ('丽', "莉俪利"),
    ('强', "蔷"),
    ('磊', "蕾垒"),
    ('军', "君钧"),
    ('勇', "永咏"),
    ('杰', "洁捷"),
    ('涛', "韬"),
    ('斌', "彬滨"),
    ('超', "朝"),
    ('明', "铭鸣"),
    ('刚', "钢"),
    ('平', "萍苹"),
    ('辉', "晖徽"),
    ('鹏', "朋"),
    ('华', "桦骅"),
    ('飞', "菲"),
    ('鑫', "欣馨"),
    ('宇', "雨羽禹"),
    ('浩', "昊皓"),
    ('凯', "恺锴"),
    ('健', "建剑"),
    ('俊', "骏峻"),
    ('帆', "凡"),
    ('旭', "煦"),
    ('宁', "凝"),
    ('龙', "隆"),
    ('林', "琳霖"),
    ('阳', "杨洋"),
    ('志', "智治"),
    ('文', "雯闻"),
    ('峰', "锋枫"),
    ('亮', "靓"),
    ('成', "诚承"),
    ('东', "冬"),
    ('荣', "蓉容"),
    ('良', "梁"),
    ('博', "波"),
    ('诚', "成"),
    ('轩', "宣萱"),
    ('睿', "瑞锐"),
    ('泽', "则"),
    ('晨', "辰臣"),
    ('娟', "涓"),
    ('霞', "侠"),
    ('秀', "绣"),
    ('英', "瑛莹"),
    ('玲', "琳铃灵"),
    ('桂', "贵"),
    ('兰', "岚蓝"),
    ('萍', "平"),
    ('红', "虹宏"),
    ('婷', "亭庭"),
    ('琳', "林霖"),
    ('慧', "惠蕙"),
    ('莹', "盈滢"),
    ('颖', "影"),
    ('倩', "茜"),
    ('洁', "杰"),
    ('佳', "家嘉"),
    ('梅', "玫媚"),
    ('燕', "艳雁"),
    ('蕾', "磊"),
    ('欣', "新馨"),
    ('怡', "宜仪"),
    ('悦', "月越"),
    ('雯', "文"),
    ('晶', "静菁"),
    ('琴', "芹勤"),
    ('云', "芸韵"),
    ('莉', "丽俐"),
    ('璐', "露路"),
    ('涵', "寒含"),
    ('萱', "轩宣"),
    ('妍', "研"),
    ('馨', "欣鑫"),
    ('彤', "桐童"),
    ('月', "悦"),
    ('春', "纯"),
    ('珍', "贞真"),
    ('建', "健剑"),
    ('国', "帼"),
    ('海', "亥"),
    ('德', "得"),
    ('永', "勇"),
    ('丹', "单"),
    // Surnames: 张/章, 李/理, 王/汪, 陈/程 (in southern speech), 徐/许, 黄/王 (in Zhejiang).
    ('张', "章"),
    ('李', "理"),
    ('王', "汪黄"),
    ('陈', "程"),
    ('徐', "许"),
    ('黄', "王"),
    ('周', "邹"),
    ('吴', "伍武"),
    ('杨', "阳"),
    ('刘', "柳"),
    ('林', "凌"),
];

/// Traditional or variant forms, as older records and some systems keep them.
const VARIANTS: &[(char, char)] = &[
    ('华', '華'),
    ('丽', '麗'),
    ('伟', '偉'),
    ('军', '軍'),
    ('红', '紅'),
    ('兰', '蘭'),
    ('凤', '鳳'),
    ('国', '國'),
    ('东', '東'),
    ('龙', '龍'),
    ('云', '雲'),
    ('张', '張'),
    ('刘', '劉'),
    ('陈', '陳'),
    ('杨', '楊'),
    ('黄', '黃'),
    ('赵', '趙'),
    ('吴', '吳'),
    ('孙', '孫'),
    ('马', '馬'),
    ('郑', '鄭'),
    ('许', '許'),
    ('邓', '鄧'),
    ('冯', '馮'),
    ('涛', '濤'),
    ('辉', '輝'),
    ('鹏', '鵬'),
    ('飞', '飛'),
    ('宁', '寧'),
    ('杰', '傑'),
    ('庆', '慶'),
    ('梅', '楳'),
    ('秀', '琇'),
];

/// Share of the records beyond a resident's first that carry at least one error.
pub const CORRUPTION_RATE: f64 = 0.4;

/// Numbers the records of each unit.
#[derive(Default)]
pub struct Registry<'a> {
    next_record: u64,
    per_unit: HashMap<&'a str, u64>,
}

/// What can go wrong at a registration desk, and how often among corrupted records.
const ERRORS: &[(&str, f64)] = &[
    ("missing_id", 0.22),
    ("id_typo", 0.12),
    ("id_15_digit", 0.08),
    ("name_homophone", 0.18),
    ("name_variant", 0.07),
    ("birth_day_month_swapped", 0.10),
    ("phone_changed", 0.15),
    ("address_shortened", 0.08),
];

/// Writes a record of `r` for each unit in `units` (the home unit first) and the truth.
pub fn records<'a, S: Sink>(
    reg: &mut Registry<'a>,
    seed: u64,
    r: &Resident,
    units: &[&'a str],
    records: &mut S,
    truth: &mut S,
) -> Result<(), SinkError> {
    let mut g = Rng::stream(seed, "mpi", r.id);
    let weights = crate::rng::Weighted::new(ERRORS.iter().map(|e| e.1));
    let mut applied: Vec<&'static str> = Vec::new();
    for (k, unit) in units.iter().enumerate() {
        reg.next_record += 1;
        let n = reg.per_unit.entry(unit).or_insert(0);
        *n += 1;
        let local = format!("{}{:08}", unit.rsplit('-').next().unwrap_or(unit), *n);
        let mut citizen_id = Some(r.citizen_id.as_str().to_owned());
        let mut name = r.name.clone();
        let mut birth = Some(r.birth_date);
        let mut phone = Some(r.phone.clone());
        let mut address = Some(r.address.clone());
        applied.clear();
        let rate = if k == 0 { 0.1 } else { CORRUPTION_RATE };
        if g.chance(rate) {
            let count = if g.chance(0.25) { 2 } else { 1 };
            for _ in 0..count {
                let error = ERRORS[g.weighted(&weights)].0;
                if applied.contains(&error) {
                    continue;
                }
                let done = match error {
                    "missing_id" => citizen_id.take().is_some(),
                    "id_typo" => match citizen_id.as_mut() {
                        Some(id) if id.len() == 18 => {
                            *id = typo(&mut g, id);
                            true
                        }
                        _ => false,
                    },
                    "id_15_digit" => {
                        let old = r.birth_date.year() < 1990
                            && citizen_id.as_deref().is_some_and(|i| i.len() == 18);
                        if old {
                            citizen_id = citizen_id.map(|id| fifteen(&id));
                        }
                        old
                    }
                    "name_homophone" => swap_char(&mut g, &mut name, |c| {
                        HOMOPHONES
                            .iter()
                            .find(|(k, _)| *k == c)
                            .map(|(_, alts)| alts.chars().collect())
                    }),
                    "name_variant" => swap_char(&mut g, &mut name, |c| {
                        VARIANTS
                            .iter()
                            .find(|(k, v)| *k == c && *v != c)
                            .map(|(_, v)| vec![*v])
                    }),
                    "birth_day_month_swapped" => {
                        let d = r.birth_date;
                        match chrono::NaiveDate::from_ymd_opt(d.year(), d.day(), d.month()) {
                            Some(s) if s != d => {
                                birth = Some(s);
                                true
                            }
                            _ => false,
                        }
                    }
                    "phone_changed" => {
                        let prefix = ['3', '5', '8'][g.below(3) as usize];
                        phone = Some(format!("1{prefix}{:09}", g.below(1_000_000_000)));
                        phone.as_deref() != Some(r.phone.as_str())
                    }
                    "address_shortened" => {
                        // The clerk leaves out province and city.
                        let short = r
                            .address
                            .find('市')
                            .map(|i| r.address[i + '市'.len_utf8()..].to_owned());
                        match short {
                            Some(s) if !s.is_empty() => {
                                address = Some(s);
                                true
                            }
                            _ => false,
                        }
                    }
                    _ => false,
                };
                if done {
                    applied.push(error);
                }
            }
        }
        records.int(reg.next_record as i64);
        records.text(unit);
        records.text(&local);
        records.opt_text(citizen_id.as_deref());
        records.text(&name);
        records.text(r.sex.as_str());
        records.opt_date(birth);
        records.opt_text(phone.as_deref());
        records.opt_text(address.as_deref());
        records.end_row()?;
        truth.int(reg.next_record as i64);
        truth.int(r.id as i64);
        if applied.is_empty() {
            truth.null();
        } else {
            truth.text(&applied.join(";"));
        }
        truth.end_row()?;
    }
    Ok(())
}

/// One of the first 17 characters changed to another digit: the check character no longer
/// fits (GB 11643 catches every single-digit error).
fn typo(g: &mut Rng, id: &str) -> String {
    let pos = g.below(17) as usize;
    id.char_indices()
        .map(|(i, c)| {
            if i == pos {
                let d = c.to_digit(10).unwrap_or(0);
                char::from_digit((d + 1 + g.below(9) as u32) % 10, 10).unwrap_or('0')
            } else {
                c
            }
        })
        .collect()
}

/// The 15-digit ID issued before 1999: no century, no check character.
pub fn fifteen(id18: &str) -> String {
    if id18.len() != 18 || !id18.is_ascii() {
        return id18.to_owned();
    }
    format!("{}{}", &id18[..6], &id18[8..17])
}

/// Replaces one character of `name` that has an alternative; false when none has.
fn swap_char(
    g: &mut Rng,
    name: &mut String,
    alternatives: impl Fn(char) -> Option<Vec<char>>,
) -> bool {
    let chars: Vec<char> = name.chars().collect();
    let candidates: Vec<usize> = (0..chars.len())
        .filter(|&i| alternatives(chars[i]).is_some())
        .collect();
    let Some(&i) = candidates.get(g.below(candidates.len().max(1) as u64) as usize) else {
        return false;
    };
    let Some(alts) = alternatives(chars[i]) else {
        return false;
    };
    let Some(&c) = alts.get(g.below(alts.len().max(1) as u64) as usize) else {
        return false;
    };
    *name = chars
        .iter()
        .enumerate()
        .map(|(k, x)| if k == i { c } else { *x })
        .collect();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifteen_digit_id_drops_century_and_check() {
        assert_eq!(fifteen("11010519491231002X"), "110105491231002");
        assert_eq!(fifteen("bad"), "bad");
    }

    #[test]
    fn a_typo_breaks_the_check_character() {
        let id = "11010519491231002X";
        for k in 0..50 {
            let mut g = Rng::stream(1, "t", k);
            let t = typo(&mut g, id);
            assert_eq!(t.len(), 18);
            assert_ne!(t, id);
            assert!(
                medgrid_domain::codes::CitizenId::parse("id", &t).is_err(),
                "{t}"
            );
        }
    }

    #[test]
    fn homophones_keep_the_length_and_change_one_character() {
        let mut name = "王伟".to_owned();
        let mut g = Rng::stream(3, "t", 0);
        assert!(swap_char(&mut g, &mut name, |c| HOMOPHONES
            .iter()
            .find(|(k, _)| *k == c)
            .map(|(_, a)| a.chars().collect())));
        assert_eq!(name.chars().count(), 2);
        assert_ne!(name, "王伟");
        let mut plain = "欧阳".to_owned();
        assert!(!swap_char(&mut g, &mut plain, |_| None));
    }
}
