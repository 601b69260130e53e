//! The demo city: the Jinhua "1+N+N" layout (seed 002, annex 1), a deterministic staff of
//! departments and practitioners for every unit, the synthetic city's residents and their year
//! of care (bulk-loaded), and one account per role.

use anyhow::Context;
use chrono::NaiveDate;
use indicatif::{ProgressBar, ProgressStyle};

use medgrid_domain::access::Role;
use medgrid_domain::org::layout::{parse_layout, Layout};
use medgrid_domain::org::MemberRole;
use medgrid_store::{Actor, Store};
use medgrid_web::actions::UserInput;

use crate::config::Config;

pub const JINHUA_LAYOUT: &[u8] = include_bytes!("../../../data/layouts/jinhua.csv");

/// The day the demo population is described on; its activity starts then and runs for
/// `DEMO_MONTHS`, so that the cockpit has a year to compare with (同比) and reaches recent
/// months.
pub const DEMO_AS_OF: NaiveDate = match NaiveDate::from_ymd_opt(2024, 11, 1) {
    Some(d) => d,
    None => panic!("a valid date"),
};

/// Months of demo activity from `DEMO_AS_OF`.
pub const DEMO_MONTHS: u32 = 24;

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
    // The same departments and staff as `medgrid generate` writes for this seed, so that the
    // generated rows find their practitioners.
    store
        .register_staff(&actor, summary.city_id, &layout, seed)
        .await
        .context("registering the demo staff")?;

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
            "lead.manager",
            "牵头医院管理者",
            Role::MemberManager,
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
    load_population(store, &actor, summary.city_id, &layout, residents, seed).await?;
    load_patient_records(
        store,
        &actor,
        &tree,
        first_group.id,
        &layout,
        residents,
        seed,
    )
    .await?;
    set_demo_budgets(store, &actor, first_group).await?;
    open_demo_clinics(store, &actor, lead).await?;
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

/// Gives the lead hospital's cardiology department a weekly timetable (a morning clinic every
/// day, a third of it reserved for referrals) and a ward with a quarter of its beds reserved,
/// and opens the coming two weeks, so that a family doctor can refer and book at once in the
/// demo. The server's timetable job keeps the window moving from then on.
async fn open_demo_clinics(
    store: &Store,
    actor: &Actor,
    lead: &medgrid_domain::org::Unit,
) -> anyhow::Result<()> {
    let policy = medgrid_domain::capacity::Policy::default();
    let start = chrono::NaiveTime::from_hms_opt(8, 0, 0).context("a valid time")?;
    for weekday in 1..=7 {
        let draft = medgrid_store::schedule::ScheduleDraft {
            department_code: "XXG".into(),
            practitioner_id: None,
            weekday,
            start_time: start,
            slot_minutes: 10,
            capacity: 24,
            reserved: 8,
            expert_visit: false,
        };
        store
            .create_schedule(actor, lead, &draft, &policy)
            .await
            .context("writing the demo timetable")?;
    }
    let today = medgrid_store::local_now().date();
    let opened = store
        .open_scheduled_sessions(
            actor,
            today + chrono::Days::new(1),
            today + chrono::Days::new(policy.open_days_ahead),
            &policy,
        )
        .await
        .context("opening the demo clinics")?;
    let ward = medgrid_store::beds::WardDraft {
        department_code: "XXG".into(),
        name: "心血管内科一病区".into(),
        beds: 40,
        reserved_beds: 10,
    };
    store
        .create_ward(actor, lead, &ward, &policy)
        .await
        .context("writing the demo ward")?;
    println!(
        "  {opened} cardiology sessions opened at {} (8 of 24 slots reserved for referrals); \
         ward of 40 beds, 10 reserved",
        lead.legal_name
    );
    Ok(())
}

/// The year the demo's insurance budgets are set for: the first full year of demo claims.
const DEMO_BUDGET_YEAR: i32 = 2025;

/// Gives the first group a global budget for each fund in the demo year, 3% above what its
/// claims came to (rounded to ten thousand yuan), so that an insurance officer can run the
/// year's prepayments and settle it.
async fn set_demo_budgets(
    store: &Store,
    actor: &Actor,
    group: &medgrid_domain::org::Group,
) -> anyhow::Result<()> {
    use medgrid_domain::insurance::budget::Fund;
    for fund in Fund::ALL {
        let spending = store
            .month_spending(group.id, DEMO_BUDGET_YEAR, fund.as_str())
            .await?;
        let actual: i64 = spending.iter().map(|m| m.in_group + m.outflow).sum();
        if actual == 0 {
            continue;
        }
        let amount = medgrid_domain::insurance::share(actual, 103, 100 * 1_000_000) * 1_000_000;
        store
            .set_budget(
                actor,
                group.path(),
                &medgrid_store::insurance::BudgetDraft {
                    year: DEMO_BUDGET_YEAR,
                    fund: fund.as_str().into(),
                    amount: amount.max(1_000_000),
                    charge_outflow: true,
                    prepayment: None,
                    settlement: None,
                    case_payment: None,
                },
            )
            .await
            .context("setting the demo budget")?;
        println!(
            "  {DEMO_BUDGET_YEAR} {} budget of {}: {} yuan",
            fund.label_zh(),
            group.name,
            medgrid_domain::insurance::yuan(amount.max(1_000_000))
        );
    }
    Ok(())
}

/// Member units' records of the first group's residents that the demo files through the
/// patient index: enough for duplicates to be found and reviewed, few enough to load quickly.
const DEMO_PATIENT_RECORDS: usize = 2_000;

/// Files the member units' own records of their patients (with the typing errors of real
/// registration desks) through the patient index, as the units' systems would on arrival:
/// most link to their resident, some become persons of their own with the doubt queued for
/// the coordinator's review.
async fn load_patient_records(
    store: &Store,
    actor: &Actor,
    tree: &medgrid_store::CityTree,
    group_id: i64,
    layout: &Layout,
    residents: u64,
    seed: u64,
) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("medgrid-demo-records-{}", std::process::id()));
    let mut params = medgrid_sim::Params {
        months: DEMO_MONTHS,
        ..medgrid_sim::Params::new(seed, residents, DEMO_AS_OF)
    };
    params.mpi_records = true;
    medgrid_sim::write_files(layout, &params, &dir, medgrid_sim::Format::Csv, |_| {})
        .context("generating the units' patient records")?;
    let units: std::collections::HashMap<&str, i64> = tree
        .units
        .iter()
        .filter(|u| u.group_id == Some(group_id))
        .map(|u| (u.code.as_str(), u.id))
        .collect();
    let path = dir.join("mpi_records.csv");
    let mut reader =
        csv::Reader::from_path(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut drafts = Vec::new();
    for row in reader.deserialize::<DemoRecord>() {
        let r = row.context("a patient record of the synthetic city")?;
        let Some(unit_id) = units.get(r.unit_code.as_str()) else {
            continue;
        };
        drafts.push(medgrid_store::patient_index::RecordDraft {
            unit_id: *unit_id,
            local_record_no: r.local_record_no,
            id_number: Some(r.citizen_id),
            name: r.name,
            sex: r.sex,
            birth_date: r.birth_date,
            phone: Some(r.phone),
            address: Some(r.address),
            ..Default::default()
        });
        if drafts.len() == DEMO_PATIENT_RECORDS {
            break;
        }
    }
    // The files were only a way to the records; the database now holds what matters.
    let _ = std::fs::remove_dir_all(&dir);
    let bar = ProgressBar::new(drafts.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "matching patient records {bar:40} {pos}/{len} ({percent}%, about {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut tally: std::collections::BTreeMap<&'static str, u64> = Default::default();
    for draft in &drafts {
        let state = match store.arrive_record(actor, draft).await {
            Ok(a) => a.record.link_state.label_zh(),
            // A record the desk typed beyond repair (a birth date that is no date) is refused
            // as it would be from a unit's system.
            Err(medgrid_store::StoreError::Invalid(_)) => "输入有误被拒",
            Err(e) => return Err(e).context("matching a patient record"),
        };
        *tally.entry(state).or_default() += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let summary: Vec<String> = tally.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "  {} patient records of the first group matched: {}",
        drafts.len(),
        summary.join("，")
    );
    Ok(())
}

#[derive(serde::Deserialize)]
struct DemoRecord {
    unit_code: String,
    local_record_no: String,
    citizen_id: String,
    name: String,
    sex: String,
    birth_date: String,
    phone: String,
    address: String,
}

/// Generates the synthetic city into the database, with a progress bar on stderr (hidden when
/// stderr is not a terminal), and prints what was loaded.
async fn load_population(
    store: &Store,
    actor: &Actor,
    city_id: i64,
    layout: &Layout,
    residents: u64,
    seed: u64,
) -> anyhow::Result<()> {
    let params = medgrid_sim::Params {
        months: DEMO_MONTHS,
        ..medgrid_sim::Params::new(seed, residents, DEMO_AS_OF)
    };
    let bar = ProgressBar::new(residents);
    bar.set_style(
        ProgressStyle::with_template(
            "loading residents {bar:40} {pos}/{len} ({percent}%, {elapsed}, about {eta} left){msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress = {
        let bar = bar.clone();
        move |p: medgrid_sim::Progress| {
            bar.set_length(p.total);
            bar.set_position(p.done);
            if p.done == p.total {
                // The bar stands full while the indexes are built after the last row.
                bar.set_message(" — building indexes");
            }
        }
    };
    let loaded = store
        .load_population(actor, city_id, layout, &params, progress)
        .await;
    bar.finish_and_clear();
    let loaded = loaded.context("loading the synthetic city")?;
    let seconds = loaded.elapsed.as_secs_f64();
    println!(
        "synthetic city loaded: seed {seed}, {residents} residents as of {DEMO_AS_OF}, {} months",
        params.months
    );
    for (table, rows) in &loaded.tables {
        println!("  {table:<14} {rows:>10} rows");
    }
    println!(
        "  {} rows in {seconds:.1} s ({:.0} rows/s, generation included)",
        loaded.rows(),
        loaded.rows() as f64 / seconds.max(1e-9)
    );
    Ok(())
}
