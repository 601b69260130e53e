//! The demo city: the Jinhua "1+N+N" layout (seed 002, annex 1), a deterministic staff of
//! departments and practitioners for every unit, and one account per role.

use std::collections::HashMap;

use anyhow::Context;

use medgrid_domain::access::Role;
use medgrid_domain::org::layout::parse_layout;
use medgrid_domain::org::{DepartmentDraft, DepartmentKind, MemberRole, PractitionerDraft};
use medgrid_sim::staff::{departments_for, staff};
use medgrid_store::{Actor, Store};
use medgrid_web::actions::UserInput;

use crate::config::Config;

pub const JINHUA_LAYOUT: &[u8] = include_bytes!("../../../data/layouts/jinhua.csv");

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
    // The same departments and staff as `medgrid generate` writes for this seed.
    let units: HashMap<&str, &medgrid_domain::org::Unit> =
        tree.units.iter().map(|u| (u.code.as_str(), u)).collect();
    let mut departments: HashMap<(&str, &str), i64> = HashMap::new();
    for unit in &tree.units {
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
                departments.insert((unit.code.as_str(), code), d.id);
            }
        }
    }
    for member in staff(&layout, seed) {
        let unit = units
            .get(member.unit_code.as_str())
            .with_context(|| format!("staff of unknown unit {}", member.unit_code))?;
        let draft = PractitionerDraft {
            licence_no: member.licence_no.clone(),
            name: member.name.clone(),
            sex: member.sex,
            title: member.title,
            specialty: None,
            unit_id: unit.id,
            department_id: member
                .department_code
                .and_then(|d| departments.get(&(member.unit_code.as_str(), d)).copied()),
        };
        let p = store.create_practitioner(&actor, unit, &draft).await?;
        // Lead-hospital experts hold sessions at primary units of their group (R5.4),
        // registered as multi-site practice.
        for site in &member.extra_sites {
            if let Some(site) = units.get(site.as_str()) {
                store.add_practice_site(&actor, p.id, site, None).await?;
            }
        }
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
