//! The demo city: the Jinhua "1+N+N" layout (seed 002, annex 1), a deterministic staff of
//! departments and practitioners for every unit, and one account per role.

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use medgrid_domain::access::Role;
use medgrid_domain::codes::Sex;
use medgrid_domain::org::layout::parse_layout;
use medgrid_domain::org::{
    DepartmentDraft, DepartmentKind, MemberRole, PractitionerDraft, Title, Unit,
};
use medgrid_store::{Actor, Store};
use medgrid_web::actions::UserInput;

use crate::config::Config;

pub const JINHUA_LAYOUT: &[u8] = include_bytes!("../../../data/layouts/jinhua.csv");

/// Departments by the kind of unit: (code, name, kind, beds).
fn departments_for(
    role: MemberRole,
) -> &'static [(&'static str, &'static str, DepartmentKind, Option<i64>)] {
    use DepartmentKind::*;
    match role {
        MemberRole::Lead | MemberRole::Secondary => &[
            ("XXG", "心血管内科", Outpatient, None),
            ("NFM", "内分泌科", Outpatient, None),
            ("SJN", "神经内科", Outpatient, None),
            ("HXN", "呼吸与危重症医学科", Outpatient, None),
            ("PWK", "普通外科", Outpatient, None),
            ("GK", "骨科", Outpatient, None),
            ("FCK", "妇产科", Outpatient, None),
            ("EK", "儿科", Outpatient, None),
            ("JZK", "急诊医学科", Outpatient, None),
            ("KFK", "康复医学科", Outpatient, None),
            ("NK-BQ", "内科病区", Ward, Some(120)),
            ("WK-BQ", "外科病区", Ward, Some(90)),
            ("KF-BQ", "康复病区", Ward, Some(40)),
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

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "胡", "朱", "高", "林",
    "何", "郭", "马", "罗", "金", "叶", "楼", "傅", "单", "曾", "欧阳",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀英", "霞", "平", "刚", "建华", "晓东", "海燕", "志刚", "丹", "婷", "浩然",
];

fn staff_count(role: MemberRole) -> usize {
    match role {
        MemberRole::Lead => 14,
        MemberRole::Secondary => 8,
        MemberRole::Primary => 4,
        MemberRole::Village => 1,
        MemberRole::PublicHealth | MemberRole::Cooperating => 3,
    }
}

fn title_for(role: MemberRole, rng: &mut StdRng) -> Title {
    let roll: u32 = rng.gen_range(0..100);
    match role {
        MemberRole::Village => Title::VillageDoctor,
        MemberRole::Lead => match roll {
            0..=19 => Title::ChiefPhysician,
            20..=49 => Title::AssociateChiefPhysician,
            50..=79 => Title::AttendingPhysician,
            _ => Title::ResidentPhysician,
        },
        _ => match roll {
            0..=9 => Title::AssociateChiefPhysician,
            10..=54 => Title::AttendingPhysician,
            _ => Title::ResidentPhysician,
        },
    }
}

/// Loads the demo city when the database holds no city yet; prints the demo accounts.
pub async fn load_if_empty(
    store: &Store,
    config: &Config,
    residents: u64,
    seed: u64,
) -> anyhow::Result<()> {
    if store.count_cities().await? > 0 {
        println!("the database already holds a city: demo data and accounts are left as they are");
        return Ok(());
    }
    let actor = Actor::system("demo");
    let layout =
        parse_layout(JINHUA_LAYOUT).map_err(|e| anyhow::anyhow!("bundled Jinhua layout: {e}"))?;
    let summary = store
        .import_layout(&actor, &layout)
        .await
        .context("loading the Jinhua layout")?;
    let tree = store.city_tree(summary.city_id).await?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut licence: u64 = 110_330_700_000_000;
    let mut experts: Vec<(i64, Unit)> = Vec::new();
    for unit in &tree.units {
        let mut dept_ids = Vec::new();
        for (code, name, kind, beds) in departments_for(unit.role) {
            let d = store
                .create_department(
                    &actor,
                    unit,
                    &DepartmentDraft {
                        code: (*code).into(),
                        name: (*name).into(),
                        kind: *kind,
                        beds: *beds,
                    },
                )
                .await?;
            if *kind == DepartmentKind::Outpatient {
                dept_ids.push(d.id);
            }
        }
        for i in 0..staff_count(unit.role) {
            licence += 1;
            let surname = SURNAMES[rng.gen_range(0..SURNAMES.len())];
            let given = GIVEN[rng.gen_range(0..GIVEN.len())];
            let title = title_for(unit.role, &mut rng);
            let draft = PractitionerDraft {
                licence_no: licence.to_string(),
                name: format!("{surname}{given}"),
                sex: if rng.gen_bool(0.5) {
                    Sex::Male
                } else {
                    Sex::Female
                },
                title,
                specialty: None,
                unit_id: unit.id,
                department_id: dept_ids.get(i % dept_ids.len().max(1)).copied(),
            };
            let p = store.create_practitioner(&actor, unit, &draft).await?;
            if unit.role == MemberRole::Lead && title.is_senior() {
                experts.push((p.id, unit.clone()));
            }
        }
    }
    // Lead-hospital experts hold sessions at primary units of their group (R5.4), registered
    // as multi-site practice.
    for (practitioner_id, lead) in &experts {
        let sites: Vec<&Unit> = tree
            .units
            .iter()
            .filter(|u| u.role == MemberRole::Primary && u.group_id == lead.group_id)
            .collect();
        if sites.is_empty() {
            continue;
        }
        let site = sites[rng.gen_range(0..sites.len())];
        store
            .add_practice_site(&actor, *practitioner_id, site, None)
            .await?;
    }

    let password = if config.demo.admin_password.is_empty() {
        medgrid_web::auth::new_secret()[..16].to_owned()
    } else {
        config.demo.admin_password.clone()
    };
    let first_group = tree
        .groups
        .first()
        .context("the demo layout has no group")?;
    let lead = tree
        .units
        .iter()
        .find(|u| u.group_id == Some(first_group.id) && u.role == MemberRole::Lead)
        .context("the first group has no lead hospital")?;
    let primary = tree
        .units
        .iter()
        .find(|u| u.group_id == Some(first_group.id) && u.role == MemberRole::Primary)
        .context("the first group has no primary unit")?;
    let city = format!("city-{}", tree.city.id);
    let group = format!("group-{}", first_group.id);
    let accounts: Vec<(&str, &str, Role, String)> = vec![
        ("admin", "系统管理员", Role::SystemAdmin, city.clone()),
        (
            "regulator",
            "市卫健委监管员",
            Role::CityRegulator,
            city.clone(),
        ),
        ("auditor", "审计员", Role::Auditor, city.clone()),
        (
            "insurer",
            "医保经办员",
            Role::InsuranceOfficer,
            city.clone(),
        ),
        (
            "group.manager",
            "集团管理者",
            Role::GroupManager,
            group.clone(),
        ),
        (
            "coordinator",
            "转诊协调员",
            Role::ReferralCoordinator,
            group.clone(),
        ),
        (
            "specialist",
            "牵头医院专科医生",
            Role::Specialist,
            format!("unit-{}", lead.id),
        ),
        (
            "member.manager",
            "社区中心管理者",
            Role::MemberManager,
            format!("unit-{}", primary.id),
        ),
        (
            "doctor",
            "家庭医生",
            Role::FamilyDoctor,
            format!("unit-{}", primary.id),
        ),
    ];
    println!();
    println!(
        "demo city loaded: {} — {} grids, {} groups, {} units",
        tree.city.name, summary.grids, summary.groups, summary.units
    );
    if residents > 0 {
        println!("(synthetic residents and their activity come from the synthetic-city generator; requested {residents}, seed {seed})");
    }
    println!("demo accounts (password for all: {password}):");
    for (username, display, role, org) in accounts {
        let input = UserInput {
            username: username.into(),
            display_name: display.into(),
            role: role.as_str().into(),
            org: org.clone(),
            password: Some(password.clone()),
        };
        let user = crate::create_user_offline(store, config, &input).await?;
        println!("  {:<16} {:<12} {}", user.username, role.label_zh(), org);
    }
    println!();
    Ok(())
}
