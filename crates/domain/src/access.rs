//! Who may do what, where: roles (interfaces.md) bound to an organisation scope.
//!
//! Every route of the HTTP surface asks [`authorize`] before it touches the store, so the
//! whole access policy lives in this one pure function and its matrix test.

use serde::Serialize;

use crate::org::vocabulary;

/// Database id of a registry entity (city, grid, group, unit).
pub type Id = i64;

vocabulary! {
    /// A user's role; what it may do is decided by [`authorize`].
    Role, "role" {
        SystemAdmin => "system_admin", "系统管理员";
        CityRegulator => "city_regulator", "市级监管";
        GroupManager => "group_manager", "集团管理者";
        MemberManager => "member_manager", "成员单位管理者";
        FamilyDoctor => "family_doctor", "家庭医生";
        Specialist => "specialist", "专科医生";
        ReferralCoordinator => "referral_coordinator", "转诊协调员";
        InsuranceOfficer => "insurance_officer", "医保经办";
        Auditor => "auditor", "审计员";
    }
}

/// Where an organisation (or something that belongs to one) sits in the registry.
/// A city-level entity has only `city`; a group has `city`, `grid`, `group`; a unit also has
/// `unit` (and no group when it is a cross-grid provider).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct OrgPath {
    pub city: Id,
    pub grid: Option<Id>,
    pub group: Option<Id>,
    pub unit: Option<Id>,
}

impl OrgPath {
    pub fn city(city: Id) -> Self {
        Self {
            city,
            grid: None,
            group: None,
            unit: None,
        }
    }
}

/// The level of organisation a user's scope is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeKind {
    City,
    Group,
    Unit,
}

/// A user's organisation scope: the org it is bound to and where that org sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Scope {
    pub kind: ScopeKind,
    pub path: OrgPath,
}

impl Scope {
    /// Whether `target` lies inside this scope.
    pub fn contains(&self, target: &OrgPath) -> bool {
        match self.kind {
            ScopeKind::City => target.city == self.path.city,
            ScopeKind::Group => self.path.group.is_some() && target.group == self.path.group,
            ScopeKind::Unit => self.path.unit.is_some() && target.unit == self.path.unit,
        }
    }

    /// Whether another scope lies entirely inside this one (for granting access to others).
    pub fn encloses(&self, other: &Scope) -> bool {
        let rank = |k: ScopeKind| match k {
            ScopeKind::City => 0,
            ScopeKind::Group => 1,
            ScopeKind::Unit => 2,
        };
        rank(other.kind) >= rank(self.kind) && self.contains(&other.path)
    }
}

/// An authenticated user, as the access rules see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub user_id: Id,
    pub username: String,
    pub role: Role,
    pub scope: Scope,
}

/// What someone wants to do. Each action names the kind of resource it touches; the target
/// [`OrgPath`] says whose it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The directory of cities, grids, groups, units, departments and practitioners.
    RegistryRead,
    /// Cities, grids, groups, member units and layout imports.
    RegistryStructureWrite,
    /// A unit's departments, beds and practitioners.
    UnitResourcesWrite,
    /// User accounts (list, view).
    UserRead,
    /// User accounts (create, change role, disable).
    UserWrite,
    /// Another user's API tokens (one's own tokens are always allowed).
    TokenManage,
    /// The audit log.
    AuditRead,
    /// Patient-level data (records, referrals, contracts of a person).
    PatientRead,
    /// Patient-level writes.
    PatientWrite,
    /// Aggregate reports (reservation compliance, indicators): counts, never persons.
    ReportRead,
    /// The group's referral catalogues (R4.1), the medical-affairs side of the group.
    CatalogueWrite,
    /// Steering the group's performance (R11): its own indicator targets, its assessment
    /// scheme, and assessment runs.
    IndicatorTargetWrite,
    /// Settling the patient index's doubts: same/not-same reviews, merges and unmerges of
    /// persons across the group's units (R2.1).
    PatientIndexReview,
    /// The group's insurance money (R9): budgets, monthly prepayment runs and the year-end
    /// settlement, which the insurance bureau makes.
    InsuranceSettle,
}

impl Action {
    pub const ALL: &'static [Action] = &[
        Action::RegistryRead,
        Action::RegistryStructureWrite,
        Action::UnitResourcesWrite,
        Action::UserRead,
        Action::UserWrite,
        Action::TokenManage,
        Action::AuditRead,
        Action::PatientRead,
        Action::PatientWrite,
        Action::ReportRead,
        Action::CatalogueWrite,
        Action::IndicatorTargetWrite,
        Action::PatientIndexReview,
        Action::InsuranceSettle,
    ];
}

/// The refusal, worded for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message_en}")]
pub struct Denied {
    pub message_zh: String,
    pub message_en: String,
}

impl Denied {
    fn role(role: Role, action: Action) -> Self {
        Self {
            message_zh: format!("角色“{}”无权执行此操作", role.label_zh()),
            message_en: format!("role {} may not perform {:?}", role.as_str(), action),
        }
    }

    fn scope() -> Self {
        Self {
            message_zh: "目标不在您的机构权限范围内".into(),
            message_en: "the target lies outside your organisation scope".into(),
        }
    }
}

/// The access policy. `Ok` means the principal may perform `action` on something located at
/// `target`.
pub fn authorize(p: &Principal, action: Action, target: &OrgPath) -> Result<(), Denied> {
    use Action::*;
    use Role::*;

    // The system administrator runs the platform for every city; the registry directory is
    // shared by everybody of the city so that units can find each other (referral targets).
    let within_scope = p.scope.contains(target);
    let within_city = p.scope.path.city == target.city;
    let allowed_role = match action {
        RegistryRead => {
            return if p.role == SystemAdmin || within_city {
                Ok(())
            } else {
                Err(Denied::scope())
            }
        }
        RegistryStructureWrite => matches!(p.role, SystemAdmin),
        UnitResourcesWrite => matches!(p.role, SystemAdmin | GroupManager | MemberManager),
        UserRead | UserWrite => matches!(p.role, SystemAdmin | GroupManager | MemberManager),
        TokenManage => matches!(p.role, SystemAdmin),
        AuditRead => matches!(p.role, SystemAdmin | Auditor),
        // Administrators and managers steer with aggregates; patient-level data is for the
        // people who treat or route the patient (least privilege, R12.3).
        PatientRead => matches!(p.role, FamilyDoctor | Specialist | ReferralCoordinator),
        PatientWrite => matches!(p.role, FamilyDoctor | Specialist | ReferralCoordinator),
        // Those who steer or pay see the group's numbers; auditors look at who did what, not
        // at how the group performs.
        ReportRead => matches!(
            p.role,
            SystemAdmin
                | CityRegulator
                | GroupManager
                | MemberManager
                | ReferralCoordinator
                | InsuranceOfficer
        ),
        CatalogueWrite | IndicatorTargetWrite => matches!(p.role, SystemAdmin | GroupManager),
        // Deciding that two records are one person reads both and moves a person's rows across
        // units: the group's coordinator, who sees the group's patients, does it.
        PatientIndexReview => matches!(p.role, ReferralCoordinator),
        InsuranceSettle => matches!(p.role, InsuranceOfficer),
    };
    if !allowed_role {
        return Err(Denied::role(p.role, action));
    }
    if p.role == SystemAdmin || within_scope {
        Ok(())
    } else {
        Err(Denied::scope())
    }
}

/// Which roles a user of `actor` role may grant to others (never more power than one has).
pub fn can_assign(actor: Role, role: Role) -> bool {
    use Role::*;
    match actor {
        SystemAdmin => true,
        GroupManager => matches!(
            role,
            GroupManager | MemberManager | FamilyDoctor | Specialist | ReferralCoordinator
        ),
        MemberManager => matches!(
            role,
            MemberManager | FamilyDoctor | Specialist | ReferralCoordinator
        ),
        _ => false,
    }
}

/// Whether `actor` may create or change a user with `role` bound to `scope`.
pub fn authorize_grant(actor: &Principal, role: Role, scope: &Scope) -> Result<(), Denied> {
    authorize(actor, Action::UserWrite, &scope.path)?;
    if !can_assign(actor.role, role) {
        return Err(Denied {
            message_zh: format!("您不能授予角色“{}”", role.label_zh()),
            message_en: format!("you may not grant the role {}", role.as_str()),
        });
    }
    if actor.role != Role::SystemAdmin && !actor.scope.encloses(scope) {
        return Err(Denied::scope());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // A city (1) with two groups (10, 20); units 100 and 101 in group 10, unit 200 in group
    // 20; a second city (2) with group 30 and unit 300.
    const UNIT_100: OrgPath = OrgPath {
        city: 1,
        grid: Some(5),
        group: Some(10),
        unit: Some(100),
    };
    const UNIT_101: OrgPath = OrgPath {
        city: 1,
        grid: Some(5),
        group: Some(10),
        unit: Some(101),
    };
    const UNIT_200: OrgPath = OrgPath {
        city: 1,
        grid: Some(6),
        group: Some(20),
        unit: Some(200),
    };
    const UNIT_300: OrgPath = OrgPath {
        city: 2,
        grid: Some(7),
        group: Some(30),
        unit: Some(300),
    };

    fn principal(role: Role, kind: ScopeKind) -> Principal {
        let path = match kind {
            ScopeKind::City => OrgPath::city(1),
            ScopeKind::Group => OrgPath {
                unit: None,
                ..UNIT_100
            },
            ScopeKind::Unit => UNIT_100,
        };
        Principal {
            user_id: 1,
            username: "u".into(),
            role,
            scope: Scope { kind, path },
        }
    }

    /// The whole matrix, written out: for each role (with its usual scope) and action, which
    /// of the four targets — own unit, other unit of own group, unit of another group of the
    /// city, unit of another city — are allowed ('Y') or denied ('.').
    #[test]
    fn access_matrix() {
        use Action::*;
        use Role::*;
        use ScopeKind as S;
        let targets = [UNIT_100, UNIT_101, UNIT_200, UNIT_300];
        #[rustfmt::skip]
        let expected: &[(Role, ScopeKind, Action, &str)] = &[
            (SystemAdmin, S::City, RegistryRead, "YYYY"),
            (SystemAdmin, S::City, RegistryStructureWrite, "YYYY"),
            (SystemAdmin, S::City, UnitResourcesWrite, "YYYY"),
            (SystemAdmin, S::City, UserRead, "YYYY"),
            (SystemAdmin, S::City, UserWrite, "YYYY"),
            (SystemAdmin, S::City, TokenManage, "YYYY"),
            (SystemAdmin, S::City, AuditRead, "YYYY"),
            (SystemAdmin, S::City, PatientRead, "...."),
            (SystemAdmin, S::City, PatientWrite, "...."),
            (SystemAdmin, S::City, ReportRead, "YYYY"),
            (SystemAdmin, S::City, CatalogueWrite, "YYYY"),
            (SystemAdmin, S::City, IndicatorTargetWrite, "YYYY"),
            (SystemAdmin, S::City, PatientIndexReview, "...."),
            (SystemAdmin, S::City, InsuranceSettle, "...."),

            (CityRegulator, S::City, RegistryRead, "YYY."),
            (CityRegulator, S::City, RegistryStructureWrite, "...."),
            (CityRegulator, S::City, UnitResourcesWrite, "...."),
            (CityRegulator, S::City, UserRead, "...."),
            (CityRegulator, S::City, UserWrite, "...."),
            (CityRegulator, S::City, TokenManage, "...."),
            (CityRegulator, S::City, AuditRead, "...."),
            (CityRegulator, S::City, PatientRead, "...."),
            (CityRegulator, S::City, PatientWrite, "...."),
            (CityRegulator, S::City, ReportRead, "YYY."),
            (CityRegulator, S::City, CatalogueWrite, "...."),
            (CityRegulator, S::City, IndicatorTargetWrite, "...."),
            (CityRegulator, S::City, PatientIndexReview, "...."),
            (CityRegulator, S::City, InsuranceSettle, "...."),

            (GroupManager, S::Group, RegistryRead, "YYY."),
            (GroupManager, S::Group, RegistryStructureWrite, "...."),
            (GroupManager, S::Group, UnitResourcesWrite, "YY.."),
            (GroupManager, S::Group, UserRead, "YY.."),
            (GroupManager, S::Group, UserWrite, "YY.."),
            (GroupManager, S::Group, TokenManage, "...."),
            (GroupManager, S::Group, AuditRead, "...."),
            (GroupManager, S::Group, PatientRead, "...."),
            (GroupManager, S::Group, PatientWrite, "...."),
            (GroupManager, S::Group, ReportRead, "YY.."),
            (GroupManager, S::Group, CatalogueWrite, "YY.."),
            (GroupManager, S::Group, IndicatorTargetWrite, "YY.."),
            (GroupManager, S::Group, PatientIndexReview, "...."),
            (GroupManager, S::Group, InsuranceSettle, "...."),

            (MemberManager, S::Unit, RegistryRead, "YYY."),
            (MemberManager, S::Unit, RegistryStructureWrite, "...."),
            (MemberManager, S::Unit, UnitResourcesWrite, "Y..."),
            (MemberManager, S::Unit, UserRead, "Y..."),
            (MemberManager, S::Unit, UserWrite, "Y..."),
            (MemberManager, S::Unit, TokenManage, "...."),
            (MemberManager, S::Unit, AuditRead, "...."),
            (MemberManager, S::Unit, PatientRead, "...."),
            (MemberManager, S::Unit, PatientWrite, "...."),
            (MemberManager, S::Unit, ReportRead, "Y..."),
            (MemberManager, S::Unit, CatalogueWrite, "...."),
            (MemberManager, S::Unit, IndicatorTargetWrite, "...."),
            (MemberManager, S::Unit, PatientIndexReview, "...."),
            (MemberManager, S::Unit, InsuranceSettle, "...."),

            (FamilyDoctor, S::Unit, RegistryRead, "YYY."),
            (FamilyDoctor, S::Unit, UnitResourcesWrite, "...."),
            (FamilyDoctor, S::Unit, UserRead, "...."),
            (FamilyDoctor, S::Unit, AuditRead, "...."),
            (FamilyDoctor, S::Unit, PatientRead, "Y..."),
            (FamilyDoctor, S::Unit, PatientWrite, "Y..."),
            (FamilyDoctor, S::Unit, ReportRead, "...."),
            (FamilyDoctor, S::Unit, CatalogueWrite, "...."),
            (FamilyDoctor, S::Unit, IndicatorTargetWrite, "...."),
            (FamilyDoctor, S::Unit, PatientIndexReview, "...."),
            (FamilyDoctor, S::Unit, InsuranceSettle, "...."),

            (Specialist, S::Unit, PatientRead, "Y..."),
            (Specialist, S::Unit, UserWrite, "...."),
            (Specialist, S::Unit, PatientIndexReview, "...."),

            (ReferralCoordinator, S::Group, PatientRead, "YY.."),
            (ReferralCoordinator, S::Group, PatientWrite, "YY.."),
            (ReferralCoordinator, S::Group, ReportRead, "YY.."),
            (ReferralCoordinator, S::Group, CatalogueWrite, "...."),
            (ReferralCoordinator, S::Group, IndicatorTargetWrite, "...."),
            (ReferralCoordinator, S::Group, PatientIndexReview, "YY.."),
            (ReferralCoordinator, S::Group, InsuranceSettle, "...."),
            (ReferralCoordinator, S::Group, UserRead, "...."),

            (InsuranceOfficer, S::City, RegistryRead, "YYY."),
            (InsuranceOfficer, S::City, PatientRead, "...."),
            (InsuranceOfficer, S::City, UserRead, "...."),
            (InsuranceOfficer, S::City, AuditRead, "...."),
            (InsuranceOfficer, S::City, ReportRead, "YYY."),
            (InsuranceOfficer, S::City, CatalogueWrite, "...."),
            (InsuranceOfficer, S::City, IndicatorTargetWrite, "...."),
            (InsuranceOfficer, S::City, PatientIndexReview, "...."),
            (InsuranceOfficer, S::City, InsuranceSettle, "YYY."),

            (Auditor, S::City, AuditRead, "YYY."),
            (Auditor, S::Group, AuditRead, "YY.."),
            (Auditor, S::Unit, AuditRead, "Y..."),
            (Auditor, S::City, PatientRead, "...."),
            (Auditor, S::City, UserWrite, "...."),
            (Auditor, S::City, ReportRead, "...."),
            (Auditor, S::City, PatientIndexReview, "...."),
            (Auditor, S::City, InsuranceSettle, "...."),
        ];
        for (role, kind, action, row) in expected {
            let p = principal(*role, *kind);
            let got: String = targets
                .iter()
                .map(|t| {
                    if authorize(&p, *action, t).is_ok() {
                        'Y'
                    } else {
                        '.'
                    }
                })
                .collect();
            assert_eq!(&got, row, "{role:?} ({kind:?}) {action:?}");
        }
        // Every role appears in the matrix with every action at least once for its scope.
        for role in Role::ALL {
            assert!(
                expected.iter().any(|(r, ..)| r == role),
                "{role:?} missing from matrix"
            );
        }
    }

    #[test]
    fn member_manager_cannot_read_another_members_users() {
        let p = principal(Role::MemberManager, ScopeKind::Unit);
        assert!(authorize(&p, Action::UserRead, &UNIT_100).is_ok());
        let err = authorize(&p, Action::UserRead, &UNIT_101).unwrap_err();
        assert!(err.message_zh.contains("权限范围"));
    }

    #[test]
    fn grants_never_exceed_the_granter() {
        let gm = principal(Role::GroupManager, ScopeKind::Group);
        let unit_scope = Scope {
            kind: ScopeKind::Unit,
            path: UNIT_101,
        };
        let city_scope = Scope {
            kind: ScopeKind::City,
            path: OrgPath::city(1),
        };
        let other_group = Scope {
            kind: ScopeKind::Unit,
            path: UNIT_200,
        };
        assert!(authorize_grant(&gm, Role::FamilyDoctor, &unit_scope).is_ok());
        assert!(authorize_grant(&gm, Role::SystemAdmin, &unit_scope).is_err());
        assert!(authorize_grant(&gm, Role::Auditor, &unit_scope).is_err());
        assert!(authorize_grant(&gm, Role::MemberManager, &other_group).is_err());
        // A group manager cannot mint a city-wide account even of a role it may grant.
        assert!(authorize_grant(&gm, Role::GroupManager, &city_scope).is_err());

        let mm = principal(Role::MemberManager, ScopeKind::Unit);
        assert!(authorize_grant(
            &mm,
            Role::Specialist,
            &Scope {
                kind: ScopeKind::Unit,
                path: UNIT_100
            }
        )
        .is_ok());
        assert!(authorize_grant(
            &mm,
            Role::GroupManager,
            &Scope {
                kind: ScopeKind::Unit,
                path: UNIT_100
            }
        )
        .is_err());
        assert!(authorize_grant(&mm, Role::Specialist, &unit_scope).is_err());

        let admin = principal(Role::SystemAdmin, ScopeKind::City);
        for role in Role::ALL {
            assert!(authorize_grant(&admin, *role, &city_scope).is_ok());
        }
    }

    #[test]
    fn role_parses_identifier_and_label_and_rejects_unknown() {
        assert_eq!(Role::parse("family_doctor"), Ok(Role::FamilyDoctor));
        assert_eq!(Role::parse("家庭医生"), Ok(Role::FamilyDoctor));
        let err = Role::parse("superuser").unwrap_err();
        assert_eq!(err.field, "role");
        assert_eq!(err.code, "unknown_value");
        assert!(err.message_en.contains("system_admin"));
    }
}
