//! Departments and practitioners of every unit, and the family-doctor teams of every primary
//! unit ("1+1+1", R3.1): a senior specialist of the group's hospitals, a general practitioner of
//! the unit, and a village doctor (or, where the unit has no village clinic, one of its nurses).

use medgrid_domain::codes::Sex;
use medgrid_domain::org::layout::{Layout, UnitRow};
use medgrid_domain::org::{DepartmentKind, MemberRole, Title};

use crate::rng::Rng;
use crate::tables;

/// A department every unit of a role has: (code, name, kind, beds).
pub type DepartmentSpec = (&'static str, &'static str, DepartmentKind, Option<i64>);

/// The departments of a unit by its role.
pub fn departments_for(role: MemberRole) -> &'static [DepartmentSpec] {
    use DepartmentKind::*;
    match role {
        MemberRole::Lead | MemberRole::Secondary => &[
            ("XXG", "心血管内科", Outpatient, None),
            ("NFM", "内分泌科", Outpatient, None),
            ("SJN", "神经内科", Outpatient, None),
            ("HXN", "呼吸与危重症医学科", Outpatient, None),
            ("XHN", "消化内科", Outpatient, None),
            ("PWK", "普通外科", Outpatient, None),
            ("GK", "骨科", Outpatient, None),
            ("FCK", "妇产科", Outpatient, None),
            ("EK", "儿科", Outpatient, None),
            ("WGK", "五官科", Outpatient, None),
            ("PFK", "皮肤科", Outpatient, None),
            ("ZYK", "中医科", Outpatient, None),
            ("JZK", "急诊医学科", Outpatient, None),
            ("KFK", "康复医学科", Outpatient, None),
            ("NK-BQ", "内科病区", Ward, Some(120)),
            ("WK-BQ", "外科病区", Ward, Some(90)),
            ("KF-BQ", "康复病区", Ward, Some(40)),
            ("FC-BQ", "妇产科病区", Ward, Some(40)),
            ("JYK", "检验科", MedicalTechnology, None),
            ("YXK", "医学影像科", MedicalTechnology, None),
            ("XDT", "心电诊断科", MedicalTechnology, None),
        ],
        MemberRole::Primary => &[
            ("QK", "全科医学科", Outpatient, None),
            ("ZYK", "中医科", Outpatient, None),
            ("KFK", "康复科", Outpatient, None),
            ("YFBJ", "预防保健科", PublicHealth, None),
            ("BQ", "综合病区", Ward, Some(30)),
            ("JYK", "检验科", MedicalTechnology, None),
        ],
        MemberRole::Village => &[("ZS", "诊室", Outpatient, None)],
        MemberRole::PublicHealth | MemberRole::Cooperating => &[
            ("MZ", "门诊部", Outpatient, None),
            ("BJ", "保健部", PublicHealth, None),
        ],
    }
}

/// One practitioner of the synthetic city.
#[derive(Debug, Clone, PartialEq)]
pub struct StaffMember {
    /// 1-based, dense.
    pub id: u64,
    pub licence_no: String,
    pub name: String,
    pub sex: Sex,
    pub title: Title,
    pub unit_code: String,
    /// Code of the outpatient department they work in, if any.
    pub department_code: Option<&'static str>,
    /// Units where they also practise (multi-site practice, R10.3): lead-hospital experts hold
    /// sessions at a primary unit of their group (R5.4).
    pub extra_sites: Vec<String>,
}

/// Doctors and nurses by kind of unit.
fn staff_count(role: MemberRole) -> (usize, usize) {
    match role {
        MemberRole::Lead => (24, 6),
        MemberRole::Secondary => (12, 3),
        MemberRole::Primary => (7, 2),
        MemberRole::Village => (1, 0),
        MemberRole::PublicHealth | MemberRole::Cooperating => (3, 1),
    }
}

fn doctor_title(role: MemberRole, r: &mut Rng) -> Title {
    let roll = r.below(100);
    match role {
        MemberRole::Village => Title::VillageDoctor,
        MemberRole::Lead => match roll {
            0..=19 => Title::ChiefPhysician,
            20..=49 => Title::AssociateChiefPhysician,
            50..=79 => Title::AttendingPhysician,
            _ => Title::ResidentPhysician,
        },
        MemberRole::Secondary => match roll {
            0..=9 => Title::ChiefPhysician,
            10..=34 => Title::AssociateChiefPhysician,
            35..=74 => Title::AttendingPhysician,
            _ => Title::ResidentPhysician,
        },
        _ => match roll {
            0..=9 => Title::AssociateChiefPhysician,
            10..=54 => Title::AttendingPhysician,
            _ => Title::ResidentPhysician,
        },
    }
}

fn name(r: &mut Rng, sex: Sex) -> String {
    let surnames = crate::rng::Weighted::new(tables::SURNAMES.iter().map(|(_, w)| *w));
    let pool = if sex == Sex::Male {
        tables::GIVEN_MALE
    } else {
        tables::GIVEN_FEMALE
    };
    let mut n = tables::SURNAMES[r.weighted(&surnames)].0.to_owned();
    n.push_str(pool[r.below(pool.len() as u64) as usize]);
    if r.chance(0.8) {
        n.push_str(pool[r.below(pool.len() as u64) as usize]);
    }
    n
}

/// Every practitioner of the layout's units, deterministic in `seed`.
pub fn staff(layout: &Layout, seed: u64) -> Vec<StaffMember> {
    let mut out: Vec<StaffMember> = Vec::new();
    for unit in &layout.units {
        let mut r = Rng::stream(seed, "staff", out.len() as u64);
        let outpatient: Vec<&'static str> = departments_for(unit.role)
            .iter()
            .filter(|d| d.2 == DepartmentKind::Outpatient)
            .map(|d| d.0)
            .collect();
        let (doctors, nurses) = staff_count(unit.role);
        for i in 0..doctors + nurses {
            let sex = if r.chance(if i < doctors { 0.55 } else { 0.1 }) {
                Sex::Male
            } else {
                Sex::Female
            };
            let title = if i < doctors {
                doctor_title(unit.role, &mut r)
            } else if r.chance(0.3) {
                Title::SupervisorNurse
            } else {
                Title::Nurse
            };
            let id = out.len() as u64 + 1;
            out.push(StaffMember {
                id,
                // 15 digits, as national practising licences are; synthetic, in the 110 range.
                licence_no: format!(
                    "110{:012}",
                    seed.wrapping_mul(1_000_003).wrapping_add(id) % 1_000_000_000_000
                ),
                name: name(&mut r, sex),
                sex,
                title,
                unit_code: unit.code.clone(),
                department_code: outpatient
                    .get(i % outpatient.len().max(1))
                    .copied()
                    .filter(|_| i < doctors),
                extra_sites: Vec::new(),
            });
        }
    }
    // Experts of each lead hospital practise at a primary unit of their group too.
    let primaries = |group: &Option<String>| -> Vec<&UnitRow> {
        layout
            .units
            .iter()
            .filter(|u| u.role == MemberRole::Primary && &u.group_code == group && group.is_some())
            .collect()
    };
    for s in &mut out {
        let Some(unit) = layout.units.iter().find(|u| u.code == s.unit_code) else {
            continue;
        };
        if unit.role != MemberRole::Lead || !s.title.is_senior() {
            continue;
        }
        let sites = primaries(&unit.group_code);
        if !sites.is_empty() {
            let mut r = Rng::stream(seed, "expert-site", s.id);
            s.extra_sites
                .push(sites[r.below(sites.len() as u64) as usize].code.clone());
        }
    }
    out
}

/// A family-doctor team of a primary unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Team {
    /// 1-based, dense.
    pub id: u64,
    pub unit_code: String,
    /// The general practitioner who leads it.
    pub gp: u64,
    /// A senior-title physician of a secondary-or-higher hospital of the group (R3.1).
    pub specialist: u64,
    /// A village doctor of a clinic under the unit, or a nurse of the unit.
    pub third: u64,
}

/// One team per general practitioner of each primary unit.
pub fn teams(layout: &Layout, staff: &[StaffMember], seed: u64) -> Vec<Team> {
    let mut out = Vec::new();
    for unit in layout
        .units
        .iter()
        .filter(|u| u.role == MemberRole::Primary)
    {
        // Teams are led by the unit's general practitioners.
        let doctors: Vec<&StaffMember> = staff
            .iter()
            .filter(|s| s.unit_code == unit.code && s.department_code == Some("QK"))
            .collect();
        let specialists: Vec<&StaffMember> = staff
            .iter()
            .filter(|s| {
                s.title.is_senior()
                    && matches!(
                        s.title,
                        Title::ChiefPhysician | Title::AssociateChiefPhysician
                    )
            })
            .filter(|s| {
                layout.units.iter().any(|u| {
                    u.code == s.unit_code
                        && matches!(u.role, MemberRole::Lead | MemberRole::Secondary)
                        && u.group_code == unit.group_code
                })
            })
            .collect();
        let villages: Vec<&StaffMember> = staff
            .iter()
            .filter(|s| {
                layout.units.iter().any(|u| {
                    u.code == s.unit_code && u.under_code.as_deref() == Some(unit.code.as_str())
                })
            })
            .collect();
        let nurses: Vec<&StaffMember> = staff
            .iter()
            .filter(|s| {
                s.unit_code == unit.code && matches!(s.title, Title::Nurse | Title::SupervisorNurse)
            })
            .collect();
        if specialists.is_empty() {
            continue;
        }
        for gp in doctors {
            let mut r = Rng::stream(seed, "team", gp.id);
            let third = villages
                .get(r.below(villages.len().max(1) as u64) as usize)
                .or_else(|| nurses.get(r.below(nurses.len().max(1) as u64) as usize));
            let Some(third) = third else { continue };
            out.push(Team {
                id: out.len() as u64 + 1,
                unit_code: unit.code.clone(),
                gp: gp.id,
                specialist: specialists[r.below(specialists.len() as u64) as usize].id,
                third: third.id,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use medgrid_domain::org::layout::parse_layout;

    const JINHUA: &[u8] = include_bytes!("../../../data/layouts/jinhua.csv");

    #[test]
    fn staff_is_deterministic_with_unique_licences() {
        let layout = parse_layout(JINHUA).unwrap();
        let a = staff(&layout, 1);
        assert_eq!(a, staff(&layout, 1));
        let licences: std::collections::HashSet<&str> =
            a.iter().map(|s| s.licence_no.as_str()).collect();
        assert_eq!(licences.len(), a.len());
        assert!(a.iter().all(|s| s.licence_no.len() == 15));
        assert!(
            a.iter().any(|s| !s.extra_sites.is_empty()),
            "some experts practise at primary units"
        );
    }

    #[test]
    fn every_team_is_one_plus_one_plus_one() {
        let layout = parse_layout(JINHUA).unwrap();
        let staff = staff(&layout, 2);
        let teams = teams(&layout, &staff, 2);
        let by_id = |id: u64| staff.iter().find(|s| s.id == id).unwrap();
        let unit = |code: &str| layout.units.iter().find(|u| u.code == code).unwrap();
        assert!(
            teams.len() >= 41 * 3,
            "every primary unit has teams ({})",
            teams.len()
        );
        for t in &teams {
            let gp = by_id(t.gp);
            assert_eq!(gp.unit_code, t.unit_code);
            assert_eq!(
                gp.department_code,
                Some("QK"),
                "team {} is led by a GP",
                t.id
            );
            let third = by_id(t.third);
            assert!(
                matches!(
                    third.title,
                    Title::VillageDoctor | Title::Nurse | Title::SupervisorNurse
                ),
                "team {}'s third member is a village doctor or nurse",
                t.id
            );
            let spec = by_id(t.specialist);
            assert!(
                spec.title.is_senior(),
                "team {} has a senior physician",
                t.id
            );
            let home = unit(&spec.unit_code);
            assert!(matches!(
                home.role,
                MemberRole::Lead | MemberRole::Secondary
            ));
            assert_eq!(
                home.group_code,
                unit(&t.unit_code).group_code,
                "the specialist is of the same group"
            );
            assert_ne!(t.third, t.gp);
        }
    }
}
