//! The numbers the synthetic city is drawn from, each with its source (docs/synthetic-city.md
//! lists them for readers). Where a source gives only aggregates, finer bands were set to
//! reproduce those aggregates, and the code says so.

/// Share of the population by five-year age band (0–4, 5–9, …, 80–84, 85+), in percent.
/// Calibrated to the aggregates of the 7th national census (第七次全国人口普查公报 第五号, 2021):
/// 0–14 17.95 %, 15–59 63.35 %, 60+ 18.70 %, 65+ 13.50 %.
pub const AGE_BANDS: [f64; 18] = [
    5.52, 6.36, 6.06, // 0–14: 17.94
    5.23, 5.30, 6.51, 8.33, 7.06, 6.74, 8.31, 8.69, 7.18, // 15–59: 63.35
    5.20, 5.13, 3.53, 2.27, 1.46, 1.11, // 60+: 18.70; 65+: 13.50
];

/// Oldest age drawn in the open 85+ band.
pub const MAX_AGE: u32 = 100;

/// Probability that a person of `age` is male. The census sex ratio is 105.07 (51.24 % male);
/// women outlive men, so the share falls in old age.
pub fn male_share(age: u32) -> f64 {
    match age {
        0..=59 => 0.515,
        60..=79 => 0.485,
        _ => 0.42,
    }
}

/// Household sizes 1, 2, 3, 4, 5+ in percent of households (7th census; mean 2.62 persons).
pub const HOUSEHOLD_SIZES: [f64; 5] = [25.4, 29.7, 20.9, 13.2, 10.8];

/// Hypertension prevalence by age band of adults. 中国居民营养与慢性病状况报告（2020年）
/// gives 27.5 % for adults 18+; the band values reproduce it over the age pyramid above.
pub fn hypertension(age: u32) -> f64 {
    match age {
        0..=17 => 0.0,
        18..=29 => 0.05,
        30..=39 => 0.10,
        40..=49 => 0.20,
        50..=59 => 0.38,
        60..=69 => 0.52,
        _ => 0.60,
    }
}

/// Diabetes (type 2) prevalence by age band; same report: 11.9 % of adults 18+.
pub fn diabetes(age: u32) -> f64 {
    match age {
        0..=17 => 0.0,
        18..=29 => 0.02,
        30..=39 => 0.04,
        40..=49 => 0.09,
        50..=59 => 0.16,
        60..=69 => 0.24,
        _ => 0.27,
    }
}

/// Severe mental illness under management: about 6.4 million registered patients in 2020,
/// 0.45 % of people 15 and older.
pub const SEVERE_MENTAL_ILLNESS: f64 = 0.0045;

/// Pregnant at a given moment, women aged 20–39: 12.0 million births in 2020 (birth rate
/// 8.5 ‰) and about nine months of pregnancy put ~0.64 % of the population pregnant, which is
/// ~4.5 % of women 20–39 (plus a small share at 15–19 and 40–44).
pub fn pregnant(age: u32) -> f64 {
    match age {
        15..=19 => 0.004,
        20..=39 => 0.045,
        40..=44 => 0.006,
        _ => 0.0,
    }
}

/// Maternal five-colour risk grades (R8.2) green, yellow, orange, red, purple, in percent.
/// An assumption from provincial reports of screening results: most pregnancies are green,
/// about a third carry some risk; purple marks infectious disease.
pub const MATERNAL_RISK: [(&str, f64); 5] = [
    ("green", 62.0),
    ("yellow", 24.0),
    ("orange", 9.0),
    ("red", 4.0),
    ("purple", 1.0),
];

/// Share covered by employee basic medical insurance (城镇职工) rather than resident insurance
/// (城乡居民), by age. Nationally ~27 % of the insured are employees (2021 statistical bulletin
/// of the National Healthcare Security Administration); working-age urban residents more,
/// children none (they are insured as residents).
pub fn employee_insurance(age: u32) -> f64 {
    match age {
        0..=17 => 0.0,
        18..=59 => 0.40,
        _ => 0.30,
    }
}

/// Surnames with approximate shares in percent, in the order of the Ministry of Public
/// Security's 2020 national surname report (王 李 张 刘 陈 lead with ~30 %), plus surnames common
/// in Zhejiang (金 楼 傅 应), surnames with several readings (单 shàn, 曾 zēng, 解 xiè, 仇 qiú,
/// 区 ōu, 朴 piáo, 查 zhā), and two-character surnames.
pub const SURNAMES: &[(&str, f64)] = &[
    ("王", 7.12),
    ("李", 7.00),
    ("张", 6.74),
    ("刘", 5.10),
    ("陈", 4.61),
    ("杨", 3.22),
    ("黄", 2.45),
    ("赵", 2.29),
    ("吴", 2.05),
    ("周", 1.90),
    ("徐", 1.72),
    ("孙", 1.54),
    ("马", 1.44),
    ("朱", 1.43),
    ("胡", 1.33),
    ("郭", 1.24),
    ("何", 1.19),
    ("林", 1.16),
    ("高", 1.15),
    ("罗", 1.07),
    ("郑", 1.06),
    ("梁", 0.89),
    ("谢", 0.81),
    ("宋", 0.77),
    ("唐", 0.76),
    ("许", 0.72),
    ("韩", 0.71),
    ("冯", 0.69),
    ("邓", 0.68),
    ("曹", 0.65),
    ("彭", 0.63),
    ("曾", 0.62),
    ("肖", 0.61),
    ("田", 0.59),
    ("董", 0.56),
    ("袁", 0.54),
    ("潘", 0.53),
    ("于", 0.52),
    ("蒋", 0.51),
    ("蔡", 0.50),
    ("余", 0.49),
    ("杜", 0.47),
    ("叶", 0.46),
    ("程", 0.45),
    ("苏", 0.44),
    ("魏", 0.43),
    ("吕", 0.42),
    ("丁", 0.41),
    ("任", 0.40),
    ("沈", 0.39),
    ("姚", 0.38),
    ("卢", 0.37),
    ("姜", 0.36),
    ("崔", 0.35),
    ("钟", 0.34),
    ("谭", 0.33),
    ("陆", 0.32),
    ("汪", 0.31),
    ("范", 0.30),
    ("金", 0.29),
    ("石", 0.28),
    ("廖", 0.27),
    ("贾", 0.26),
    ("夏", 0.25),
    ("韦", 0.24),
    ("付", 0.23),
    ("方", 0.22),
    ("白", 0.21),
    ("邹", 0.20),
    ("孟", 0.19),
    ("熊", 0.18),
    ("秦", 0.17),
    ("邱", 0.16),
    ("江", 0.15),
    ("尹", 0.14),
    ("薛", 0.13),
    ("闫", 0.12),
    ("段", 0.11),
    ("雷", 0.10),
    ("侯", 0.10),
    ("龙", 0.09),
    ("史", 0.09),
    ("陶", 0.08),
    ("黎", 0.08),
    ("贺", 0.08),
    ("顾", 0.07),
    ("毛", 0.07),
    ("郝", 0.07),
    ("龚", 0.06),
    ("邵", 0.06),
    ("万", 0.06),
    ("钱", 0.06),
    ("严", 0.05),
    ("覃", 0.05),
    ("武", 0.05),
    ("戴", 0.05),
    ("傅", 0.05),
    ("莫", 0.04),
    ("孔", 0.04),
    ("楼", 0.03),
    ("应", 0.02),
    ("单", 0.02),
    ("朴", 0.01),
    ("解", 0.01),
    ("仇", 0.01),
    ("查", 0.01),
    ("区", 0.005),
    ("欧阳", 0.04),
    ("司马", 0.003),
    ("上官", 0.003),
    ("诸葛", 0.002),
    ("皇甫", 0.002),
];

/// Characters of given names, by sex; a given name is one character (about a fifth of
/// people) or two.
pub const GIVEN_MALE: &[&str] = &[
    "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华", "飞",
    "鑫", "波", "宇", "浩", "凯", "健", "俊", "帆", "帅", "旭", "宁", "龙", "林", "阳", "建", "国",
    "志", "文", "海", "峰", "亮", "成", "东", "荣", "德", "永", "良", "斌", "博", "诚", "轩", "睿",
    "泽", "晨",
];
pub const GIVEN_FEMALE: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀", "英", "玲", "桂", "兰", "萍", "红", "婷",
    "雪", "琳", "慧", "莹", "颖", "倩", "洁", "佳", "梅", "燕", "丹", "蕾", "欣", "怡", "悦", "雯",
    "晶", "琴", "云", "凤", "莉", "璐", "诗", "涵", "萱", "妍", "可", "馨", "彤", "月", "春", "华",
    "秋", "珍",
];

/// Family-doctor contract rates (seed 002 annex 2, 16.2: ≥ 40 % overall, ≥ 85 % of key
/// populations; R3.3). Others sign at the rate that brings the whole to about 45 %.
pub const CONTRACT_KEY: f64 = 0.86;
pub const CONTRACT_OTHERS: f64 = 0.20;

/// Mobile number prefixes of the three carriers (a number is prefix + 8 digits).
pub const PHONE_PREFIXES: &[&str] = &[
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152",
    "153", "155", "156", "157", "158", "159", "177", "180", "181", "182", "183", "184", "185",
    "186", "187", "188", "189", "191", "198", "199",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(xs: &[f64]) -> f64 {
        xs.iter().sum()
    }

    #[test]
    fn age_bands_reproduce_the_census_aggregates() {
        let total = sum(&AGE_BANDS);
        let share = |r: std::ops::Range<usize>| sum(&AGE_BANDS[r]) / total * 100.0;
        assert!((share(0..3) - 17.95).abs() < 0.05);
        assert!((share(3..12) - 63.35).abs() < 0.05);
        assert!((share(12..18) - 18.70).abs() < 0.05);
        assert!((share(13..18) - 13.50).abs() < 0.05);
    }

    #[test]
    fn household_sizes_average_the_census_mean() {
        let total = sum(&HOUSEHOLD_SIZES);
        // 5+ households average about 5.6 persons.
        let mean = HOUSEHOLD_SIZES
            .iter()
            .zip([1.0, 2.0, 3.0, 4.0, 5.6])
            .map(|(w, n)| w * n)
            .sum::<f64>()
            / total;
        assert!((mean - 2.62).abs() < 0.05, "{mean}");
    }

    #[test]
    fn phone_prefixes_are_mobile_prefixes() {
        assert!(PHONE_PREFIXES
            .iter()
            .all(|p| p.len() == 3 && p.starts_with('1')));
    }
}
