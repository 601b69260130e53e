//! What the synthetic city is treated for and with: diagnoses (ICD-10), drugs (ATC codes, with
//! the national essential-medicines flag), exam items, and the prices and insurance rules its
//! costs are drawn from. Sources and assumptions: docs/synthetic-city.md.

/// Why someone comes; decides department, exams and drugs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Care {
    Hypertension,
    Diabetes,
    Respiratory,
    Digestive,
    Musculoskeletal,
    Cardiac,
    Neuro,
    Skin,
    EyeEnt,
    Mental,
    Pregnancy,
    ChildCheck,
    Injury,
    Cancer,
    Other,
}

/// A diagnosis with its place in the hospital.
#[derive(Debug)]
pub struct Dx {
    pub code: &'static str,
    pub name: &'static str,
    pub care: Care,
    /// Outpatient department of a hospital (codes of `staff::departments_for`).
    pub clinic: &'static str,
    /// Ward of a hospital for admissions.
    pub ward: &'static str,
    /// ICD-9-CM-3 operation, for inpatient cases that have one (part of the DIP group).
    pub procedure: Option<&'static str>,
    /// Relative cost of a case against the mean of its level.
    pub cost: f64,
}

const fn dx(
    code: &'static str,
    name: &'static str,
    care: Care,
    clinic: &'static str,
    ward: &'static str,
    cost: f64,
) -> Dx {
    Dx {
        code,
        name,
        care,
        clinic,
        ward,
        procedure: None,
        cost,
    }
}

const fn op(
    code: &'static str,
    name: &'static str,
    care: Care,
    ward: &'static str,
    procedure: &'static str,
    cost: f64,
) -> Dx {
    Dx {
        code,
        name,
        care,
        clinic: "PWK",
        ward,
        procedure: Some(procedure),
        cost,
    }
}

use Care::*;

pub static HYPERTENSION: Dx = dx(
    "I10",
    "特发性（原发性）高血压",
    Hypertension,
    "XXG",
    "NK-BQ",
    1.0,
);
pub static DIABETES: Dx = dx(
    "E11.9",
    "2型糖尿病不伴有并发症",
    Diabetes,
    "NFM",
    "NK-BQ",
    1.0,
);
pub static SCHIZOPHRENIA: Dx = dx("F20.9", "精神分裂症", Mental, "SJN", "NK-BQ", 1.0);
pub static PREGNANCY: Dx = dx("Z34.9", "正常妊娠监督", Pregnancy, "FCK", "FC-BQ", 0.6);
pub static HIGH_RISK_PREGNANCY: Dx = dx("Z35.9", "高危妊娠监督", Pregnancy, "FCK", "FC-BQ", 0.9);
pub static CHILD_CHECK: Dx = dx("Z00.1", "儿童常规健康检查", ChildCheck, "EK", "NK-BQ", 0.5);
pub static DELIVERY: Dx = dx("O80", "单胎顺产", Pregnancy, "FCK", "FC-BQ", 0.45);
pub static CAESAREAN: Dx = op(
    "O82",
    "经剖宫产术的单胎分娩",
    Pregnancy,
    "FC-BQ",
    "74.1",
    0.75,
);
pub static CHEST_PAIN: Dx = dx("R07.4", "胸痛", Cardiac, "JZK", "NK-BQ", 1.0);
pub static UNSTABLE_ANGINA: Dx = op("I20.0", "不稳定性心绞痛", Cardiac, "NK-BQ", "36.06", 2.2);
pub static STROKE: Dx = dx("I63.9", "脑梗死", Neuro, "SJN", "NK-BQ", 1.3);
pub static STROKE_SEQUELA: Dx = dx("I69.3", "脑梗死后遗症", Neuro, "KFK", "KF-BQ", 0.8);
pub static HIP_FRACTURE: Dx = op("S72.0", "股骨颈骨折", Injury, "WK-BQ", "81.51", 3.0);
pub static FRACTURE_AFTERCARE: Dx = dx(
    "Z47.8",
    "其他特指的矫形外科随诊医疗",
    Injury,
    "KFK",
    "KF-BQ",
    0.7,
);
pub static COPD: Dx = dx("J44.9", "慢性阻塞性肺病", Respiratory, "HXN", "NK-BQ", 1.0);
pub static COPD_EXACERBATION: Dx = dx(
    "J44.1",
    "慢性阻塞性肺病伴急性加重",
    Respiratory,
    "HXN",
    "NK-BQ",
    1.1,
);
pub static HEART_FAILURE: Dx = dx("I50.9", "心力衰竭", Cardiac, "XXG", "NK-BQ", 1.2);

/// Everyday outpatient complaints of children, adults and older people.
pub static CHILD_COMPLAINTS: &[&Dx] = &[
    &dx("J06.9", "急性上呼吸道感染", Respiratory, "EK", "NK-BQ", 0.8),
    &dx("J20.9", "急性支气管炎", Respiratory, "EK", "NK-BQ", 0.9),
    &dx("A09.9", "胃肠炎和结肠炎", Digestive, "EK", "NK-BQ", 0.8),
    &dx("H66.9", "中耳炎", EyeEnt, "WGK", "WK-BQ", 0.8),
    &dx("L20.9", "特应性皮炎", Skin, "PFK", "NK-BQ", 0.7),
    &dx("J02.9", "急性咽炎", Respiratory, "EK", "NK-BQ", 0.7),
];

pub static ADULT_COMPLAINTS: &[&Dx] = &[
    &dx(
        "J06.9",
        "急性上呼吸道感染",
        Respiratory,
        "HXN",
        "NK-BQ",
        0.8,
    ),
    &dx("J02.9", "急性咽炎", Respiratory, "HXN", "NK-BQ", 0.7),
    &dx("K29.7", "胃炎", Digestive, "XHN", "NK-BQ", 1.0),
    &dx("K21.9", "胃食管反流病", Digestive, "XHN", "NK-BQ", 1.1),
    &dx("M54.5", "腰痛", Musculoskeletal, "GK", "WK-BQ", 1.0),
    &dx("M25.5", "关节痛", Musculoskeletal, "GK", "WK-BQ", 0.9),
    &dx("R51", "头痛", Neuro, "SJN", "NK-BQ", 1.0),
    &dx("N39.0", "尿路感染", Other, "PWK", "WK-BQ", 0.9),
    &dx("L30.9", "皮炎", Skin, "PFK", "NK-BQ", 0.7),
    &dx("H10.9", "结膜炎", EyeEnt, "WGK", "WK-BQ", 0.6),
    &dx("F41.9", "焦虑障碍", Mental, "SJN", "NK-BQ", 1.2),
    &dx("E78.5", "高脂血症", Cardiac, "XXG", "NK-BQ", 1.0),
];

pub static OLDER_COMPLAINTS: &[&Dx] = &[
    &dx(
        "I25.1",
        "动脉粥样硬化性心脏病",
        Cardiac,
        "XXG",
        "NK-BQ",
        1.3,
    ),
    &COPD,
    &dx("M17.9", "膝关节病", Musculoskeletal, "GK", "WK-BQ", 1.0),
    &dx("E78.5", "高脂血症", Cardiac, "XXG", "NK-BQ", 1.0),
    &STROKE_SEQUELA,
    &dx("H25.9", "老年性白内障", EyeEnt, "WGK", "WK-BQ", 1.0),
    &dx("K59.0", "便秘", Digestive, "XHN", "NK-BQ", 0.7),
    &dx(
        "J06.9",
        "急性上呼吸道感染",
        Respiratory,
        "HXN",
        "NK-BQ",
        0.8,
    ),
];

pub static EMERGENCIES: &[&Dx] = &[
    &dx("S93.4", "踝关节扭伤", Injury, "JZK", "WK-BQ", 0.9),
    &dx("S61.0", "手指开放性伤口", Injury, "JZK", "WK-BQ", 0.8),
    &dx("R10.4", "腹痛", Digestive, "JZK", "NK-BQ", 1.2),
    &dx("T78.4", "变态反应", Skin, "JZK", "NK-BQ", 0.9),
    &dx("R50.9", "发热", Respiratory, "JZK", "NK-BQ", 1.0),
    &CHEST_PAIN,
];

/// Reasons for admission by age group: children, adults, older people.
pub static CHILD_ADMISSIONS: &[&Dx] = &[
    &dx("J18.9", "肺炎", Respiratory, "EK", "NK-BQ", 0.45),
    &dx("A09.9", "胃肠炎和结肠炎", Digestive, "EK", "NK-BQ", 0.35),
    &dx("J20.9", "急性支气管炎", Respiratory, "EK", "NK-BQ", 0.35),
];

pub static ADULT_ADMISSIONS: &[&Dx] = &[
    &op("K35.8", "急性阑尾炎", Digestive, "WK-BQ", "47.01", 0.9),
    &op(
        "K80.1",
        "胆囊结石伴胆囊炎",
        Digestive,
        "WK-BQ",
        "51.23",
        1.2,
    ),
    &op("S82.2", "胫骨骨干骨折", Injury, "WK-BQ", "79.36", 1.6),
    &dx("J18.9", "肺炎", Respiratory, "HXN", "NK-BQ", 0.8),
    &dx("N20.0", "肾结石", Other, "PWK", "WK-BQ", 0.8),
    &HYPERTENSION,
    &dx("C34.9", "支气管和肺恶性肿瘤", Cancer, "HXN", "NK-BQ", 2.2),
    &dx("C16.9", "胃恶性肿瘤", Cancer, "XHN", "WK-BQ", 2.4),
];

pub static OLDER_ADMISSIONS: &[&Dx] = &[
    &STROKE,
    &dx("J18.9", "肺炎", Respiratory, "HXN", "NK-BQ", 1.0),
    &HEART_FAILURE,
    &COPD_EXACERBATION,
    &UNSTABLE_ANGINA,
    &HIP_FRACTURE,
    &dx(
        "E11.7",
        "2型糖尿病伴有多个并发症",
        Diabetes,
        "NFM",
        "NK-BQ",
        1.1,
    ),
    &dx("C34.9", "支气管和肺恶性肿瘤", Cancer, "HXN", "NK-BQ", 2.2),
];

/// What a hospital stay for `dx` is continued with at the primary unit after a
/// down-referral, if it is a condition that is.
pub fn continued_care(dx: &Dx) -> Option<&'static Dx> {
    match dx.code {
        "I63.9" | "I69.3" => Some(&STROKE_SEQUELA),
        "S72.0" | "S82.2" => Some(&FRACTURE_AFTERCARE),
        "J44.1" | "J44.9" => Some(&COPD),
        "I50.9" => Some(&HEART_FAILURE),
        "I10" => Some(&HYPERTENSION),
        "E11.7" | "E11.9" => Some(&DIABETES),
        _ => None,
    }
}

/// A drug: ATC code (TCM patent medicines carry a "Z" code of their category), generic name,
/// whether it is on the national essential-medicines list (国家基本药物目录, 2018 edition), and
/// the cost of one day's dose in fen.
#[derive(Debug)]
pub struct Drug {
    pub code: &'static str,
    pub name: &'static str,
    pub essential: bool,
    pub fen_per_day: i64,
}

const fn drug(code: &'static str, name: &'static str, essential: bool, fen_per_day: i64) -> Drug {
    Drug {
        code,
        name,
        essential,
        fen_per_day,
    }
}

pub static HYPERTENSION_DRUGS: &[Drug] = &[
    drug("C08CA01", "氨氯地平", true, 60),
    drug("C08CA05", "硝苯地平", true, 80),
    drug("C09CA03", "缬沙坦", true, 120),
    drug("C09CA04", "厄贝沙坦", true, 110),
    drug("C07AB02", "美托洛尔", true, 50),
    drug("C03AA03", "氢氯噻嗪", true, 10),
    drug("C09CA08", "奥美沙坦酯", false, 320),
    drug("C09DX04", "沙库巴曲缬沙坦", false, 980),
];

pub static DIABETES_DRUGS: &[Drug] = &[
    drug("A10BA02", "二甲双胍", true, 40),
    drug("A10BB07", "格列吡嗪", true, 50),
    drug("A10BF01", "阿卡波糖", true, 180),
    drug("A10AB01", "人胰岛素", true, 450),
    drug("A10BH01", "西格列汀", false, 520),
    drug("A10BK01", "达格列净", false, 560),
];

pub static CARDIAC_DRUGS: &[Drug] = &[
    drug("C10AA05", "阿托伐他汀", true, 90),
    drug("B01AC06", "阿司匹林", true, 15),
    drug("B01AC04", "氯吡格雷", true, 300),
    drug("C10AA07", "瑞舒伐他汀", false, 210),
    drug("C01DA14", "单硝酸异山梨酯", true, 70),
];

pub static RESPIRATORY_DRUGS: &[Drug] = &[
    drug("J01CA04", "阿莫西林", true, 90),
    drug("J01DC02", "头孢呋辛", true, 260),
    drug("J01FA10", "阿奇霉素", true, 240),
    drug("N02BE01", "对乙酰氨基酚", true, 30),
    drug("R05CA", "复方甘草", true, 20),
    drug("ZA01", "连花清瘟胶囊", false, 450),
    drug("ZA02", "蒲地蓝消炎口服液", false, 520),
    drug("R03AK06", "沙美特罗替卡松", false, 800),
];

pub static DIGESTIVE_DRUGS: &[Drug] = &[
    drug("A02BC01", "奥美拉唑", true, 60),
    drug("A03FA03", "多潘立酮", true, 50),
    drug("A06AD11", "乳果糖", true, 150),
    drug("A02BC05", "艾司奥美拉唑", false, 420),
    drug("A07FA", "双歧杆菌三联活菌", false, 280),
];

pub static PAIN_DRUGS: &[Drug] = &[
    drug("M01AE01", "布洛芬", true, 40),
    drug("M01AB05", "双氯芬酸", true, 50),
    drug("M01AH01", "塞来昔布", false, 380),
    drug("ZB01", "活血止痛胶囊", false, 300),
];

pub static MENTAL_DRUGS: &[Drug] = &[
    drug("N05AX08", "利培酮", true, 150),
    drug("N05AH03", "奥氮平", true, 380),
    drug("N06AB06", "舍曲林", false, 420),
];

pub static OTHER_DRUGS: &[Drug] = &[
    drug("D07AC13", "糠酸莫米松", false, 260),
    drug("S01AE05", "左氧氟沙星滴眼液", true, 180),
    drug("R06AE07", "西替利嗪", true, 60),
    drug("B03BB01", "叶酸", true, 10),
    drug("A11AA03", "多种维生素", false, 120),
];

/// Drugs that treat a kind of care.
pub fn drugs_for(care: Care) -> &'static [Drug] {
    match care {
        Hypertension => HYPERTENSION_DRUGS,
        Diabetes => DIABETES_DRUGS,
        Cardiac | Neuro => CARDIAC_DRUGS,
        Respiratory => RESPIRATORY_DRUGS,
        Digestive | Cancer => DIGESTIVE_DRUGS,
        Musculoskeletal | Injury => PAIN_DRUGS,
        Mental => MENTAL_DRUGS,
        Skin | EyeEnt | Pregnancy | ChildCheck | Other => OTHER_DRUGS,
    }
}

/// An exam item: kind (lab, imaging, ecg), name, and minutes to report when done locally.
#[derive(Debug)]
pub struct ExamItem {
    pub kind: &'static str,
    pub name: &'static str,
    pub minutes: (i64, i64),
}

const fn exam(kind: &'static str, name: &'static str, lo: i64, hi: i64) -> ExamItem {
    ExamItem {
        kind,
        name,
        minutes: (lo, hi),
    }
}

pub const BLOOD_COUNT: ExamItem = exam("lab", "血常规", 30, 120);
pub const HBA1C: ExamItem = exam("lab", "糖化血红蛋白", 120, 480);
pub const LIPIDS: ExamItem = exam("lab", "血脂四项", 120, 360);
pub const RENAL: ExamItem = exam("lab", "肾功能", 120, 360);
pub const TROPONIN: ExamItem = exam("lab", "心肌损伤标志物", 30, 90);
pub const CHEST_XRAY: ExamItem = exam("imaging", "胸部DR", 30, 180);
pub const CHEST_CT: ExamItem = exam("imaging", "胸部CT", 60, 480);
pub const HEAD_CT: ExamItem = exam("imaging", "头颅CT", 30, 240);
pub const ABDOMEN_US: ExamItem = exam("imaging", "腹部超声", 20, 120);
pub const JOINT_XRAY: ExamItem = exam("imaging", "关节DR", 30, 180);
pub const OBSTETRIC_US: ExamItem = exam("imaging", "产科超声", 20, 90);
pub const ECG: ExamItem = exam("ecg", "常规心电图", 10, 45);

/// The exams a kind of care calls for, most usual first.
pub fn exams_for(care: Care) -> &'static [&'static ExamItem] {
    match care {
        Hypertension => &[&RENAL, &ECG, &LIPIDS],
        Diabetes => &[&HBA1C, &RENAL, &LIPIDS],
        Cardiac => &[&ECG, &TROPONIN, &LIPIDS],
        Respiratory => &[&BLOOD_COUNT, &CHEST_XRAY, &CHEST_CT],
        Digestive => &[&ABDOMEN_US, &BLOOD_COUNT],
        Musculoskeletal | Injury => &[&JOINT_XRAY],
        Neuro => &[&HEAD_CT, &ECG],
        Cancer => &[&CHEST_CT, &BLOOD_COUNT],
        Pregnancy => &[&OBSTETRIC_US, &BLOOD_COUNT],
        ChildCheck => &[&BLOOD_COUNT],
        Skin | EyeEnt | Mental | Other => &[&BLOOD_COUNT],
    }
}

/// Mean cost in yuan of an outpatient visit and of an inpatient stay, and the mean length of
/// stay in days, by level of the place: primary, secondary (and unrated), tertiary, and
/// tertiary out of the region. Means of 2021 (中国卫生健康统计年鉴 2022: community centres
/// 165 and township hospitals 84 yuan per visit, hospitals 329 and tertiary 370; stays 3,600 /
/// 2,100, secondary 6,800, tertiary 14,300), rounded, with out-of-region care dearer.
pub const OUTPATIENT_MEAN: [f64; 4] = [110.0, 240.0, 360.0, 480.0];
pub const INPATIENT_MEAN: [f64; 4] = [3_000.0, 7_000.0, 14_000.0, 21_000.0];
pub const STAY_MEAN: [f64; 4] = [7.0, 8.0, 9.0, 10.0];

/// Insurance rules of the synthetic city (parameters of a typical prefecture-level scheme;
/// the settlement issue makes them configurable): inpatient deductible in yuan by level, and
/// the share of eligible costs the fund pays, for employees and residents, inpatient and
/// outpatient.
pub const DEDUCTIBLE: [i64; 4] = [300, 600, 1_000, 1_500];
pub const INPATIENT_RATE_EMPLOYEE: [f64; 4] = [0.92, 0.88, 0.85, 0.70];
pub const INPATIENT_RATE_RESIDENT: [f64; 4] = [0.85, 0.75, 0.60, 0.45];
pub const OUTPATIENT_RATE_EMPLOYEE: [f64; 4] = [0.70, 0.65, 0.60, 0.40];
pub const OUTPATIENT_RATE_RESIDENT: [f64; 4] = [0.55, 0.40, 0.30, 0.20];
/// Extra share paid for a patient referred inside the group (R9.3).
pub const REFERRED_BONUS: f64 = 0.05;

#[cfg(test)]
mod tests {
    use super::*;
    use medgrid_domain::codes::Icd10;

    #[test]
    fn every_diagnosis_is_a_valid_icd10_code_and_every_essential_flag_has_company() {
        let lists: [&[&Dx]; 7] = [
            CHILD_COMPLAINTS,
            ADULT_COMPLAINTS,
            OLDER_COMPLAINTS,
            EMERGENCIES,
            CHILD_ADMISSIONS,
            ADULT_ADMISSIONS,
            OLDER_ADMISSIONS,
        ];
        let singles = [
            &HYPERTENSION,
            &DIABETES,
            &SCHIZOPHRENIA,
            &PREGNANCY,
            &HIGH_RISK_PREGNANCY,
            &CHILD_CHECK,
            &DELIVERY,
            &CAESAREAN,
            &STROKE_SEQUELA,
            &FRACTURE_AFTERCARE,
        ];
        for dx in lists.iter().flat_map(|l| l.iter().copied()).chain(singles) {
            let code = Icd10::parse("diagnosis", dx.code).unwrap();
            assert_eq!(code.as_str(), dx.code);
            assert!(!dx.name.is_empty());
        }
        // Prescribing picks an essential or a non-essential drug of the list: where a list
        // lacks one kind, the other is used, so each list must hold at least one essential.
        for care in [
            Care::Hypertension,
            Care::Diabetes,
            Care::Cardiac,
            Care::Respiratory,
            Care::Digestive,
            Care::Musculoskeletal,
            Care::Mental,
            Care::Other,
        ] {
            assert!(drugs_for(care).iter().any(|d| d.essential), "{care:?}");
        }
    }
}
