//! The group registry (R1.1, R1.2): cities, grids, medical groups, member units, departments
//! and practitioners, with the vocabulary of the seed texts.

mod entity;
pub mod layout;
pub mod rules;

pub use entity::*;

/// Generates the string forms of a closed vocabulary: a stable identifier used in the API,
/// files and database, and the Chinese label shown in the UI.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident, $field:literal { $($variant:ident => $id:literal, $zh:literal;)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Stable identifier (API, files, database).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $id),+ }
            }

            /// Label for people (zh-CN).
            pub fn label_zh(self) -> &'static str {
                match self { $($name::$variant => $zh),+ }
            }

            /// Accepts the identifier or the Chinese label.
            pub fn parse(raw: &str) -> Result<Self, $crate::error::FieldError> {
                let t = raw.trim();
                $(if t.eq_ignore_ascii_case($id) || t == $zh { return Ok($name::$variant); })+
                let allowed: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                Err($crate::error::FieldError::new(
                    $field,
                    "unknown_value",
                    format!("未知取值“{}”，可选：{}", t, allowed.join("、")),
                    format!("unknown value '{}'; expected one of: {}", t, allowed.join(", ")),
                ))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use vocabulary;

vocabulary! {
    /// What a member unit does inside its group.
    MemberRole, "role" {
        Lead => "lead", "牵头医院";
        Secondary => "secondary", "二级医院/接续性服务机构";
        Primary => "primary", "社区卫生服务中心/乡镇卫生院";
        Village => "village", "村卫生室/社区卫生服务站";
        PublicHealth => "public_health", "专业公共卫生机构";
        Cooperating => "cooperating", "协作单位";
    }
}

vocabulary! {
    /// Hospital grade (医院等级).
    Level, "level" {
        Tertiary => "tertiary", "三级";
        Secondary => "secondary", "二级";
        Primary => "primary", "一级";
        Unrated => "unrated", "未定级";
    }
}

vocabulary! {
    /// Services that one provider offers across several grids (002: 中医联盟, 妇幼健康共同体).
    CrossGridService, "service" {
        TcmAlliance => "tcm_alliance", "中医联盟";
        MaternalChild => "maternal_child", "妇幼健康共同体";
        Specialty => "specialty", "专科服务";
    }
}

vocabulary! {
    /// Professional title (专业技术职称).
    Title, "title" {
        ChiefPhysician => "chief_physician", "主任医师";
        AssociateChiefPhysician => "associate_chief_physician", "副主任医师";
        AttendingPhysician => "attending_physician", "主治医师";
        ResidentPhysician => "resident_physician", "住院医师";
        AssistantPhysician => "assistant_physician", "医士";
        VillageDoctor => "village_doctor", "乡村医生";
        ChiefNurse => "chief_nurse", "主任护师";
        AssociateChiefNurse => "associate_chief_nurse", "副主任护师";
        SupervisorNurse => "supervisor_nurse", "主管护师";
        Nurse => "nurse", "护师";
        ChiefPharmacist => "chief_pharmacist", "主任药师";
        Pharmacist => "pharmacist", "药师";
        Technician => "technician", "技师";
    }
}

impl Title {
    /// Whether the title is a doctor's (who can see patients and prescribe).
    pub fn is_physician(self) -> bool {
        matches!(
            self,
            Title::ChiefPhysician
                | Title::AssociateChiefPhysician
                | Title::AttendingPhysician
                | Title::ResidentPhysician
                | Title::AssistantPhysician
                | Title::VillageDoctor
        )
    }

    /// Senior title (高级职称: 正高 or 副高), which every family-doctor team needs one of (R3.1).
    pub fn is_senior(self) -> bool {
        matches!(
            self,
            Title::ChiefPhysician
                | Title::AssociateChiefPhysician
                | Title::ChiefNurse
                | Title::AssociateChiefNurse
                | Title::ChiefPharmacist
        )
    }
}

/// A registry entity as the layout rules see it: enough to judge the shape of a city, nothing
/// about how it is stored. Ids are whatever the caller uses (database ids, or file codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GridRef {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub id: String,
    pub name: String,
    pub grid_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRef {
    pub id: String,
    pub name: String,
    pub role: MemberRole,
    pub level: Level,
    /// Publicly owned (公立); the rule on secondary hospitals concerns public ones only.
    pub public: bool,
    /// The grid the unit stands in, if any (cross-grid and city-level units have none).
    pub grid_id: Option<String>,
    /// The group it is a member of, if any.
    pub group_id: Option<String>,
    /// The unit it is organised under (a village clinic's township hospital, a campus's
    /// hospital).
    pub parent_unit_id: Option<String>,
}

/// One city's registry, as the layout rules check it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CitySnapshot {
    pub city_name: String,
    pub grids: Vec<GridRef>,
    pub groups: Vec<GroupRef>,
    pub units: Vec<UnitRef>,
}
