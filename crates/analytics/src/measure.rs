//! Measures: the counts kept from the platform's facts, which indicator formulas name. Each
//! measure says how it sums over a period (a flow adds its months; a stock is read at the
//! period's last month) and which unit a fact is counted at.

use serde::Serialize;

macro_rules! measures {
    ($($variant:ident => $name:literal, $stock:literal, $dept:literal, $zh:literal;)*) => {
        /// A measure of the cube.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Measure { $($variant,)* }

        impl Measure {
            pub const ALL: &'static [Measure] = &[$(Measure::$variant,)*];

            /// The name formulas and the cube's rows use.
            pub fn name(self) -> &'static str {
                match self { $(Measure::$variant => $name,)* }
            }

            /// Read at the period's last month rather than summed over its months.
            pub fn is_stock(self) -> bool {
                match self { $(Measure::$variant => $stock,)* }
            }

            /// Also kept per department of the unit.
            pub fn by_department(self) -> bool {
                match self { $(Measure::$variant => $dept,)* }
            }

            pub fn label_zh(self) -> &'static str {
                match self { $(Measure::$variant => $zh,)* }
            }

            pub fn parse(name: &str) -> Option<Measure> {
                match name { $($name => Some(Measure::$variant),)* _ => None }
            }
        }
    };
}

measures! {
    Visits => "visits", false, false, "居民门急诊人次（按居住地成员单位）";
    VisitsInRegion => "visits_in_region", false, false, "居民市内门急诊人次";
    VisitsPrimary => "visits_primary", false, false, "居民基层门急诊人次";
    ChronicVisits => "chronic_visits", false, false, "居民两慢病市内门急诊人次";
    ChronicVisitsPrimary => "chronic_visits_primary", false, false, "居民两慢病基层门急诊人次";
    ClinicVisits => "clinic_visits", false, true, "本单位门急诊人次（按就诊单位、科室）";
    Discharges => "discharges", false, true, "出院人数";
    InpatientDays => "inpatient_days", false, true, "出院者占用总床日数";
    Referrals => "referrals", false, false, "转出人次（上转与下转）";
    ReferralsUp => "referrals_up", false, false, "上转人次";
    ReferralsDown => "referrals_down", false, false, "下转人次";
    LeadReferralsDown => "lead_referrals_down", false, false, "牵头医院下转人次";
    LeadChronicReferralsDown => "lead_chronic_referrals_down", false, false, "牵头医院下转两慢病人次";
    RxLines => "rx_lines", false, false, "处方药品条目数";
    RxEssential => "rx_essential", false, false, "基本药物条目数";
    FollowUpsDue => "follow_ups_due", false, false, "应随访次数";
    FollowUpsDone => "follow_ups_done", false, false, "已完成随访次数";
    Residents => "residents", true, false, "常住居民数";
    KeyResidents => "key_residents", true, false, "重点人群人数";
    Contracted => "contracted", true, false, "有效签约居民数";
    KeyContracted => "key_contracted", true, false, "有效签约重点人群人数";
    HypertensionManaged => "hypertension_managed", true, false, "已管理高血压患者数";
    HypertensionStandard => "hypertension_standard", true, false, "规范管理高血压患者数";
    DiabetesManaged => "diabetes_managed", true, false, "已管理糖尿病患者数";
    DiabetesStandard => "diabetes_standard", true, false, "规范管理糖尿病患者数";
    Physicians => "physicians", true, false, "执业（助理）医师数";
    TcmPhysicians => "tcm_physicians", true, false, "中医类别医师数";
}

impl Serialize for Measure {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Hypertension (ICD-10 I10–I15) or diabetes (E10–E14), the two chronic diseases (两慢病).
pub fn is_chronic(diagnosis: &str) -> bool {
    let b = diagnosis.as_bytes();
    if b.len() < 3 || !b[1].is_ascii_digit() || !b[2].is_ascii_digit() {
        return false;
    }
    let n = (b[1] - b'0') * 10 + (b[2] - b'0');
    match b[0].to_ascii_uppercase() {
        b'I' => (10..=15).contains(&n),
        b'E' => (10..=14).contains(&n),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_chronic_codes() {
        for (i, m) in Measure::ALL.iter().enumerate() {
            assert_eq!(Measure::parse(m.name()), Some(*m));
            // The cube indexes its cells by `measure as usize`.
            assert_eq!(*m as usize, i);
        }
        assert!(is_chronic("I10.x00") && is_chronic("E11.9") && is_chronic("I15"));
        assert!(!is_chronic("I16") && !is_chronic("E15") && !is_chronic("J18") && !is_chronic(""));
    }
}
