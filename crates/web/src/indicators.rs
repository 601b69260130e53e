//! Indicator use cases behind the cockpit (驾驶舱), the JSON API, the exports and the FHIR
//! `Measure`/`MeasureReport` (R11): the library with the targets in force for a group, every
//! indicator's value for a node of the city (city, group, unit, department) and period, its
//! children for drill-down and ranking, monthly trends and referral flows.

pub mod export;

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use medgrid_analytics::{evaluate, Cube, Measure, Rollup, Span};
use medgrid_domain::access::{Action, Id, OrgPath};
use medgrid_domain::indicator::{
    Direction, Indicator, Level, Library, Month, Period, PeriodKind, Rag, Targets, Value,
};
use medgrid_domain::org::{MemberRole, Unit};
use medgrid_domain::{FieldError, Invalid};
use medgrid_store::indicator::{CubeState, TargetSetting};
use medgrid_store::{CityTree, OrgKind};

use crate::auth::Caller;
use crate::error::AppError;
use crate::AppState;

/// Where in the city a board looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    City(Id),
    Group(Id),
    Unit(Id),
    Department(Id, String),
}

impl Node {
    /// The reference used in links and the API: `city-1`, `group-3`, `unit-7`, `unit-7/XXG`.
    pub fn reference(&self) -> String {
        match self {
            Node::City(id) => format!("city-{id}"),
            Node::Group(id) => format!("group-{id}"),
            Node::Unit(id) => format!("unit-{id}"),
            Node::Department(id, code) => format!("unit-{id}/{code}"),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Node::City(_) => "city",
            Node::Group(_) => "group",
            Node::Unit(_) => "unit",
            Node::Department(..) => "department",
        }
    }
}

/// A node as shown: its reference, kind and name.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NodeRef {
    /// `city-1`, `group-3`, `unit-7` or `unit-7/XXG`.
    pub org: String,
    pub kind: String,
    pub name: String,
}

/// One indicator's value for a node and period, with what explains it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IndicatorValue {
    pub indicator_id: String,
    pub name_zh: String,
    pub name_en: String,
    pub unit: String,
    /// `higher` or `lower` is better.
    pub direction: String,
    pub headline: bool,
    pub period: String,
    /// Rounded half away from zero to two decimals; absent when the denominator is zero.
    pub value: Option<String>,
    pub value_number: Option<f64>,
    pub numerator: i64,
    pub denominator: i64,
    pub numerator_measure: String,
    pub denominator_measure: String,
    pub numerator_label: String,
    pub denominator_label: String,
    /// For growth: the period the denominator is counted in.
    pub compared_with: Option<String>,
    pub target: Option<String>,
    pub amber: Option<String>,
    pub targets_from: Option<String>,
    /// The group set this target itself (else the library's).
    pub group_target: bool,
    /// `green`, `amber`, `red` or `none`.
    pub rag: String,
    pub rag_zh: String,
    /// Change against the same period a year earlier, in the indicator's unit (同比).
    pub year_on_year: Option<String>,
    /// Change against the period before (环比).
    pub period_on_period: Option<String>,
}

/// A child of the node (a group of the city, a unit of a group, a department of a unit) with
/// its headline values: the drill-down, the ranking and the coloured tree.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChildValues {
    pub node: NodeRef,
    /// `lead`, `secondary`, `primary`, … for units.
    pub role: Option<String>,
    pub values: Vec<ChildValue>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChildValue {
    pub indicator_id: String,
    pub value: Option<String>,
    pub value_number: Option<f64>,
    pub rag: String,
}

/// An indicator month by month.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Trend {
    pub indicator_id: String,
    pub name_zh: String,
    pub unit: String,
    pub target: Option<f64>,
    pub points: Vec<TrendPoint>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TrendPoint {
    pub month: String,
    pub value: Option<f64>,
    pub rag: String,
}

/// Referrals from one unit to another in the period.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FlowRow {
    pub from: NodeRef,
    pub to: NodeRef,
    /// `up` or `down`.
    pub direction: String,
    pub referrals: i64,
}

/// Reserved outpatient capacity over the period (R5.1): what the lead hospital kept for
/// referrals and what became of it, for a group or a unit.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ReservationUse {
    pub capacity: i64,
    pub reserved: i64,
    /// What the policy asks of the lead hospitals' sessions.
    pub required: i64,
    pub used_by_referral: i64,
    pub returned_to_general: i64,
    pub unused: i64,
    /// Department-days of a lead hospital below the share.
    pub breach_days: i64,
    pub department_days: i64,
}

/// Everything the cockpit shows for a node and period.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Board {
    pub node: NodeRef,
    /// From the city down to the node.
    pub breadcrumbs: Vec<NodeRef>,
    pub period: String,
    pub period_label: String,
    pub period_kind: String,
    /// The months the facts cover.
    pub data_first_month: Option<String>,
    pub data_last_month: Option<String>,
    /// When the cube last took in new facts (UTC, RFC 3339).
    pub refreshed_at: Option<String>,
    pub library_version: String,
    pub rows: Vec<IndicatorValue>,
    pub children: Vec<ChildValues>,
    pub trends: Vec<Trend>,
    pub flows: Vec<FlowRow>,
    /// For a group or a unit.
    pub reservation: Option<ReservationUse>,
}

/// What a board is asked for.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BoardQuery {
    /// `city-1`, `group-3`, `unit-7` (default: the caller's own organisation).
    pub org: Option<String>,
    /// A department code of the unit.
    pub department: Option<String>,
    /// `2025-03`, `2025-Q1`, `2025-H1`, `2025` or `2025-03-R12` (default: the latest month
    /// of data, as the chosen kind).
    pub period: Option<String>,
    /// `month`, `quarter`, `half_year`, `year` or `rolling12`, when no period is given.
    pub period_kind: Option<String>,
}

fn unit_name(u: &Unit) -> String {
    u.second_name
        .clone()
        .unwrap_or_else(|| u.legal_name.clone())
}

/// The registry's view of a node: its path, name and units.
struct Located {
    node: Node,
    path: OrgPath,
    name: String,
    group: Option<Id>,
    units: HashSet<Id>,
    tree: CityTree,
}

async fn locate(
    state: &AppState,
    caller: &Caller,
    q: &BoardQuery,
    action: Action,
) -> Result<Located, AppError> {
    let own = caller.principal.scope.path;
    let (kind, id) = match q.org.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(reference) => {
            let r = state
                .store
                .resolve_org(reference)
                .await
                .map_err(|e| match e {
                    medgrid_store::StoreError::NotFound => {
                        AppError::Invalid(Invalid::one(FieldError::new(
                            "org",
                            "unknown",
                            format!("找不到机构“{reference}”"),
                            format!("no organisation “{reference}”"),
                        )))
                    }
                    other => other.into(),
                })?;
            (r.kind, r.id)
        }
        None => match (own.unit, own.group) {
            (Some(u), _) => (OrgKind::Unit, u),
            (None, Some(g)) => (OrgKind::Group, g),
            (None, None) => (OrgKind::City, own.city),
        },
    };
    let city = match kind {
        OrgKind::City => id,
        OrgKind::Grid => state.store.grid(id).await?.city_id,
        OrgKind::Group => state.store.group(id).await?.city_id,
        OrgKind::Unit => state.store.unit(id).await?.city_id,
    };
    let tree = state.store.city_tree(city).await?;
    let department = q
        .department
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if department.is_some() && kind != OrgKind::Unit {
        // Silently widening to the whole node would list more than was asked for.
        return Err(Invalid::one(FieldError::new(
            "department",
            "needs_unit",
            "科室只能与成员单位（org=unit-…）一起指定",
            "a department can only be given with a unit (org=unit-…)",
        ))
        .into());
    }
    let in_group = |g: Id| -> HashSet<Id> {
        tree.units
            .iter()
            .filter(|u| u.group_id == Some(g))
            .map(|u| u.id)
            .collect()
    };
    let located = match kind {
        OrgKind::City => Located {
            node: Node::City(id),
            path: OrgPath::city(id),
            name: tree.city.name.clone(),
            group: None,
            units: tree
                .units
                .iter()
                .filter(|u| u.group_id.is_some())
                .map(|u| u.id)
                .collect(),
            tree,
        },
        OrgKind::Grid | OrgKind::Group => {
            let g = tree
                .groups
                .iter()
                .find(|g| {
                    if kind == OrgKind::Grid {
                        g.grid_id == id
                    } else {
                        g.id == id
                    }
                })
                .ok_or(AppError::NotFound)?;
            Located {
                node: Node::Group(g.id),
                path: g.path(),
                name: g.name.clone(),
                group: Some(g.id),
                units: in_group(g.id),
                tree: tree.clone(),
            }
        }
        OrgKind::Unit => {
            let u = tree
                .units
                .iter()
                .find(|u| u.id == id)
                .ok_or(AppError::NotFound)?
                .clone();
            let (node, name) = match department {
                Some(code) => {
                    let d = state
                        .store
                        .departments(u.id)
                        .await?
                        .into_iter()
                        .find(|d| d.code == code)
                        .ok_or_else(|| {
                            AppError::Invalid(Invalid::one(FieldError::new(
                                "department",
                                "unknown",
                                format!("该机构没有科室“{code}”"),
                                format!("the unit has no department “{code}”"),
                            )))
                        })?;
                    (
                        Node::Department(u.id, d.code.clone()),
                        format!("{} · {}", unit_name(&u), d.name),
                    )
                }
                None => (Node::Unit(u.id), unit_name(&u)),
            };
            Located {
                node,
                path: u.path(),
                name,
                group: u.group_id,
                units: HashSet::from([u.id]),
                tree,
            }
        }
    };
    caller.allow(action, &located.path).await?;
    Ok(located)
}

/// The targets in force in `month`: the group's own setting when it has one from a month not
/// before the library's, else the library's.
pub fn targets_in_force<'a>(
    indicator: &'a Indicator,
    settings: &'a [TargetSetting],
    month: Month,
) -> Option<(&'a Targets, bool)> {
    let library = indicator.targets_in(month).map(|t| (t, false));
    let own = settings
        .iter()
        .filter(|s| s.indicator_id == indicator.id)
        .filter(|s| s.targets.from_month().is_some_and(|m| m <= month))
        // The latest month wins; among settings for the same month, the latest made.
        .max_by_key(|s| (s.targets.from_month(), s.id))
        .map(|s| (&s.targets, true));
    match (library, own) {
        (Some(l), Some(o)) if l.0.from_month() > o.0.from_month() => Some(l),
        (_, Some(o)) => Some(o),
        (l, None) => l,
    }
}

fn rag_name(r: Rag) -> String {
    match r {
        Rag::Green => "green",
        Rag::Amber => "amber",
        Rag::Red => "red",
        Rag::None => "none",
    }
    .to_owned()
}

fn change(now: Value, before: Value) -> Option<String> {
    let (a, b) = (now.rounded()?, before.rounded()?);
    Some(Level(a.0 - b.0).to_string())
}

/// Whether every measure of the indicator is kept per department.
fn by_department(i: &Indicator) -> bool {
    i.formula
        .measures()
        .iter()
        .all(|m| Measure::parse(m).is_some_and(Measure::by_department))
}

fn value_of(i: &Indicator, period: Period, rollup: &Rollup) -> Result<Value, AppError> {
    evaluate(i, period, rollup)
        .map(|e| e.value)
        .map_err(|e| AppError::Internal(e.to_string()))
}

/// The rollup limited to the months the cube covers (when there is a cube).
pub(crate) fn within(r: Rollup, data: Option<Span>) -> Rollup {
    match data {
        Some(s) => r.within(s.first, s.last),
        None => r,
    }
}

/// One row of the indicator table.
fn row(
    i: &Indicator,
    period: Period,
    rollup: &Rollup,
    settings: &[TargetSetting],
) -> Result<IndicatorValue, AppError> {
    let e = evaluate(i, period, rollup).map_err(|e| AppError::Internal(e.to_string()))?;
    let targets = targets_in_force(i, settings, period.last());
    let rag = targets.map_or(Rag::None, |(t, _)| e.value.rag(i.direction, t));
    let year_ago = value_of(i, period.year_ago(), rollup)?;
    let previous = value_of(i, period.previous(), rollup)?;
    Ok(IndicatorValue {
        indicator_id: i.id.clone(),
        name_zh: i.name_zh.clone(),
        name_en: i.name_en.clone(),
        unit: i.unit.clone(),
        direction: match i.direction {
            Direction::Higher => "higher",
            Direction::Lower => "lower",
        }
        .to_owned(),
        headline: i.headline,
        period: period.to_string(),
        value: e.value.rounded().map(|l| l.to_string()),
        value_number: e.value.as_f64(),
        numerator: e.value.numerator,
        denominator: e.value.denominator,
        numerator_measure: e.numerator.name().to_owned(),
        denominator_measure: e.denominator.name().to_owned(),
        numerator_label: match e.compared_with {
            Some(_) => format!("{}（本期较上年同期增减）", e.numerator.label_zh()),
            None => e.numerator.label_zh().to_owned(),
        },
        denominator_label: match e.compared_with {
            Some(p) => format!("{}（{}）", e.denominator.label_zh(), p.label_zh()),
            None => e.denominator.label_zh().to_owned(),
        },
        compared_with: e.compared_with.map(|p| p.to_string()),
        target: targets.map(|(t, _)| t.target.to_string()),
        amber: targets.map(|(t, _)| t.amber.to_string()),
        targets_from: targets.map(|(t, _)| t.from.clone()),
        group_target: targets.is_some_and(|(_, own)| own),
        rag: rag_name(rag),
        rag_zh: rag.label_zh().to_owned(),
        year_on_year: change(e.value, year_ago),
        period_on_period: change(e.value, previous),
    })
}

/// The period asked for; else the latest complete month with data, as the asked kind (the
/// month under way is still filling up, so it is not shown unasked).
fn choose_period(q: &BoardQuery, last: Option<Month>) -> Result<Period, AppError> {
    let asked_kind = match q.period_kind.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(k) => Some(PeriodKind::parse("period_kind", k)?),
        None => None,
    };
    if let Some(raw) = q.period.as_deref().filter(|s| !s.trim().is_empty()) {
        let period = Period::parse("period", raw)?;
        if asked_kind.is_some_and(|k| k != period.kind()) {
            return Err(Invalid::one(FieldError::new(
                "period_kind",
                "mismatch",
                format!("统计期“{raw}”与所选类型不符"),
                format!("the period “{raw}” is not of the kind asked for"),
            ))
            .into());
        }
        return Ok(period);
    }
    let kind = asked_kind.unwrap_or(PeriodKind::Month);
    let this_month = Month::of_date(medgrid_store::local_now().date());
    let complete = this_month.plus(-1);
    Ok(kind.containing(last.map_or(complete, |l| l.min(complete))))
}

/// The cockpit's board for a node and period.
pub async fn board(state: &AppState, caller: &Caller, q: &BoardQuery) -> Result<Board, AppError> {
    let at = locate(state, caller, q, Action::ReportRead).await?;
    let cube_state = state.store.cube_state().await?;
    let data = cube_state.as_ref().and_then(CubeState::span);
    let period = choose_period(q, data.map(|s| s.last))?;
    // Two years back covers year-on-year of a whole year and the twelve-month trends.
    let from = period.first().plus(-24);
    let cube = state
        .store
        .stored_cube(cube_state.as_ref(), Some(&at.units), from, period.last())
        .await?;
    let settings = match at.group {
        Some(g) => state.store.indicator_targets(g).await?,
        None => Vec::new(),
    };
    let library = &state.library;
    let department = match &at.node {
        Node::Department(_, code) => Some(code.as_str()),
        _ => None,
    };
    let rollup = within(Rollup::new(&cube, None, department), data);
    let shown: Vec<&Indicator> = library
        .indicators
        .iter()
        .filter(|i| department.is_none() || by_department(i))
        .collect();
    let mut rows = Vec::with_capacity(shown.len());
    for i in &shown {
        rows.push(row(i, period, &rollup, &settings)?);
    }
    let children = children(state, &at, &cube, &shown, period, &settings, data).await?;
    let mut trends = Vec::new();
    for i in shown.iter().filter(|i| i.headline || department.is_some()) {
        let mut points = Vec::new();
        for k in (0..12).rev() {
            let m = period.last().plus(-k);
            let v = value_of(i, Period::Month(m), &rollup)?;
            let rag =
                targets_in_force(i, &settings, m).map_or(Rag::None, |(t, _)| v.rag(i.direction, t));
            points.push(TrendPoint {
                month: m.to_string(),
                value: v.as_f64(),
                rag: rag_name(rag),
            });
        }
        trends.push(Trend {
            indicator_id: i.id.clone(),
            name_zh: i.name_zh.clone(),
            unit: i.unit.clone(),
            target: targets_in_force(i, &settings, period.last())
                .map(|(t, _)| t.target.0 as f64 / 100.0),
            points,
        });
    }
    let flows = if matches!(at.node, Node::Group(_) | Node::Unit(_)) {
        let names: HashMap<Id, &Unit> = at.tree.units.iter().map(|u| (u.id, u)).collect();
        let (a, b) = (period.first(), period.last());
        let start = chrono::NaiveDate::parse_from_str(&a.first_day(), "%Y-%m-%d")
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let end = chrono::NaiveDate::parse_from_str(&b.end_day(), "%Y-%m-%d")
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let node_ref = |id: Id| NodeRef {
            org: format!("unit-{id}"),
            kind: "unit".into(),
            name: names
                .get(&id)
                .map(|u| unit_name(u))
                .unwrap_or_else(|| format!("unit-{id}")),
        };
        state
            .store
            .referral_flows(
                &at.units,
                start.and_time(chrono::NaiveTime::MIN),
                end.and_time(chrono::NaiveTime::MIN),
            )
            .await?
            .into_iter()
            .take(20)
            .map(|f| FlowRow {
                from: node_ref(f.from_unit_id),
                to: node_ref(f.to_unit_id),
                direction: if f.up { "up" } else { "down" }.into(),
                referrals: f.referrals,
            })
            .collect()
    } else {
        Vec::new()
    };
    let reservation = match &at.node {
        Node::Group(g) => Some(reservation_use(state, Some(*g), None, period).await?),
        Node::Unit(u) => Some(reservation_use(state, at.group, Some(*u), period).await?),
        _ => None,
    };
    Ok(Board {
        reservation,
        breadcrumbs: breadcrumbs(&at),
        node: NodeRef {
            org: at.node.reference(),
            kind: at.node.kind().into(),
            name: at.name.clone(),
        },
        period: period.to_string(),
        period_label: period.label_zh(),
        period_kind: period.kind().as_str().to_owned(),
        data_first_month: cube_state.as_ref().map(|s| s.first_month.clone()),
        data_last_month: cube_state.as_ref().map(|s| s.last_month.clone()),
        refreshed_at: cube_state.map(|s| s.refreshed_at.to_rfc3339()),
        library_version: library.version.clone(),
        rows,
        children,
        trends,
        flows,
    })
}

/// The daily reservation compliance report summed over the period.
async fn reservation_use(
    state: &AppState,
    group: Option<Id>,
    unit: Option<Id>,
    period: Period,
) -> Result<ReservationUse, AppError> {
    let day = |s: String| {
        chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d")
            .map_err(|e| AppError::Internal(e.to_string()))
    };
    let from = day(period.first().first_day())?;
    let until = day(period.last().end_day())?
        .pred_opt()
        .ok_or_else(|| AppError::Internal("no day before".into()))?;
    let rows = state
        .store
        .reservation_compliance(group, unit, from, until, &state.policy)
        .await?;
    let mut u = ReservationUse::default();
    for r in rows {
        u.capacity += r.capacity;
        u.reserved += r.reserved;
        u.required += r.required;
        u.used_by_referral += r.reserved_booked_by_referral;
        u.returned_to_general += r.reserved_taken_by_general;
        u.department_days += 1;
        u.breach_days += i64::from(!r.compliant);
    }
    u.unused = (u.reserved - u.used_by_referral - u.returned_to_general).max(0);
    Ok(u)
}

fn breadcrumbs(at: &Located) -> Vec<NodeRef> {
    let mut out = vec![NodeRef {
        org: format!("city-{}", at.tree.city.id),
        kind: "city".into(),
        name: at.tree.city.name.clone(),
    }];
    if let Some(g) = at
        .group
        .and_then(|g| at.tree.groups.iter().find(|x| x.id == g))
    {
        out.push(NodeRef {
            org: format!("group-{}", g.id),
            kind: "group".into(),
            name: g.name.clone(),
        });
    }
    if let Node::Unit(u) | Node::Department(u, _) = &at.node {
        if let Some(u) = at.tree.units.iter().find(|x| x.id == *u) {
            out.push(NodeRef {
                org: format!("unit-{}", u.id),
                kind: "unit".into(),
                name: unit_name(u),
            });
        }
    }
    if let Node::Department(..) = &at.node {
        out.push(NodeRef {
            org: at.node.reference(),
            kind: "department".into(),
            name: at.name.clone(),
        });
    }
    out
}

/// A child node: itself, its name, its role (units), its units and its department.
type Kid = (Node, String, Option<String>, HashSet<Id>, Option<String>);

async fn children(
    state: &AppState,
    at: &Located,
    cube: &Cube,
    shown: &[&Indicator],
    period: Period,
    settings: &[TargetSetting],
    data: Option<Span>,
) -> Result<Vec<ChildValues>, AppError> {
    let mut kids: Vec<Kid> = Vec::new();
    match &at.node {
        Node::City(_) => {
            for g in &at.tree.groups {
                let units: HashSet<Id> = at
                    .tree
                    .units
                    .iter()
                    .filter(|u| u.group_id == Some(g.id))
                    .map(|u| u.id)
                    .collect();
                if !units.is_empty() {
                    kids.push((Node::Group(g.id), g.name.clone(), None, units, None));
                }
            }
        }
        Node::Group(g) => {
            let mut units: Vec<&Unit> = at
                .tree
                .units
                .iter()
                .filter(|u| u.group_id == Some(*g))
                .collect();
            let order = |r: MemberRole| match r {
                MemberRole::Lead => 0,
                MemberRole::Secondary => 1,
                MemberRole::Primary => 2,
                MemberRole::Village => 3,
                _ => 4,
            };
            units.sort_by_key(|u| (order(u.role), u.code.clone()));
            for u in units {
                kids.push((
                    Node::Unit(u.id),
                    unit_name(u),
                    Some(u.role.as_str().to_owned()),
                    HashSet::from([u.id]),
                    None,
                ));
            }
        }
        Node::Unit(u) => {
            let codes: BTreeSet<&str> = cube
                .cells
                .keys()
                .filter(|c| c.unit == *u && !c.department.is_empty())
                .map(|c| c.department.as_str())
                .collect();
            let names: HashMap<String, String> = state
                .store
                .departments(*u)
                .await?
                .into_iter()
                .map(|d| (d.code, d.name))
                .collect();
            for code in codes {
                kids.push((
                    Node::Department(*u, code.to_owned()),
                    names.get(code).cloned().unwrap_or_else(|| code.to_owned()),
                    None,
                    HashSet::from([*u]),
                    Some(code.to_owned()),
                ));
            }
        }
        Node::Department(..) => {}
    }
    let mut out = Vec::with_capacity(kids.len());
    for (node, name, role, units, department) in kids {
        let rollup = within(Rollup::new(cube, Some(&units), department.as_deref()), data);
        let mut values = Vec::new();
        for i in shown
            .iter()
            .filter(|i| department.is_none() || by_department(i))
        {
            let v = value_of(i, period, &rollup)?;
            let rag = targets_in_force(i, settings, period.last())
                .map_or(Rag::None, |(t, _)| v.rag(i.direction, t));
            values.push(ChildValue {
                indicator_id: i.id.clone(),
                value: v.rounded().map(|l| l.to_string()),
                value_number: v.as_f64(),
                rag: rag_name(rag),
            });
        }
        out.push(ChildValues {
            node: NodeRef {
                org: node.reference(),
                kind: node.kind().into(),
                name,
            },
            role,
            values,
        });
    }
    Ok(out)
}

/// The library with the targets in force for a group this month (the library's own when no
/// group is given).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LibraryEntry {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
    pub definition_zh: String,
    pub definition_en: String,
    pub unit: String,
    pub direction: String,
    pub requirement: String,
    pub source: String,
    pub national_definition: Option<String>,
    pub numerator: String,
    pub denominator: Option<String>,
    /// `ratio` or `growth`.
    pub formula: String,
    pub factor: i64,
    pub headline: bool,
    pub target: Option<String>,
    pub amber: Option<String>,
    pub targets_from: Option<String>,
    pub group_target: bool,
}

pub fn library_entries(
    library: &Library,
    settings: &[TargetSetting],
    month: Month,
) -> Vec<LibraryEntry> {
    use medgrid_domain::indicator::Formula;
    library
        .indicators
        .iter()
        .map(|i| {
            let t = targets_in_force(i, settings, month);
            let (formula, numerator, denominator, factor) = match &i.formula {
                Formula::Ratio {
                    numerator,
                    denominator,
                    factor,
                } => (
                    "ratio",
                    numerator.clone(),
                    Some(denominator.clone()),
                    *factor,
                ),
                Formula::Growth { measure } => ("growth", measure.clone(), None, 100),
            };
            LibraryEntry {
                id: i.id.clone(),
                name_zh: i.name_zh.clone(),
                name_en: i.name_en.clone(),
                definition_zh: i.definition_zh.clone(),
                definition_en: i.definition_en.clone(),
                unit: i.unit.clone(),
                direction: match i.direction {
                    Direction::Higher => "higher",
                    Direction::Lower => "lower",
                }
                .into(),
                requirement: i.requirement.clone(),
                source: i.source.clone(),
                national_definition: i.national_definition.clone(),
                numerator,
                denominator,
                formula: formula.into(),
                factor,
                headline: i.headline,
                target: t.map(|(t, _)| t.target.to_string()),
                amber: t.map(|(t, _)| t.amber.to_string()),
                targets_from: t.map(|(t, _)| t.from.clone()),
                group_target: t.is_some_and(|(_, own)| own),
            }
        })
        .collect()
}

/// A target as a group manager writes it.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct TargetInput {
    pub indicator_id: String,
    /// `YYYY-MM`: the first month it applies to.
    pub from: String,
    pub target: String,
    pub amber: String,
    #[serde(default)]
    pub note: Option<String>,
}

/// Sets a group's own target for an indicator from a month on (a new version; the old ones
/// stay for the periods they applied to).
pub async fn set_target(
    state: &AppState,
    caller: &Caller,
    group_id: Id,
    input: &TargetInput,
) -> Result<Id, AppError> {
    let group = state.store.group(group_id).await?;
    caller
        .allow(Action::IndicatorTargetWrite, &group.path())
        .await?;
    let mut errors = Vec::new();
    let indicator = state.library.get(input.indicator_id.trim());
    if indicator.is_none() {
        errors.push(FieldError::new(
            "indicator_id",
            "unknown",
            format!("指标库中没有“{}”", input.indicator_id),
            format!("no indicator “{}” in the library", input.indicator_id),
        ));
    }
    let from = Month::parse("from", &input.from)
        .map_err(|e| errors.push(e))
        .ok();
    let target = Level::parse("target", &input.target)
        .map_err(|e| errors.push(e))
        .ok();
    let amber = Level::parse("amber", &input.amber)
        .map_err(|e| errors.push(e))
        .ok();
    let note = input
        .note
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if note.is_some_and(|n| n.chars().count() > 500) {
        errors.push(FieldError::too_long("note", 500));
    }
    let (Some(indicator), Some(from), Some(target), Some(amber)) = (indicator, from, target, amber)
    else {
        return Err(Invalid(errors).into());
    };
    let targets = Targets {
        from: from.to_string(),
        target,
        amber,
    };
    if let Err(e) = targets.check(indicator.direction) {
        errors.push(e);
    }
    if !errors.is_empty() {
        return Err(Invalid(errors).into());
    }
    Ok(state
        .store
        .set_indicator_target(&caller.actor, &group.path(), &indicator.id, &targets, note)
        .await?)
}

/// The group's target settings, oldest first, for those who may read its reports.
pub async fn targets(
    state: &AppState,
    caller: &Caller,
    group_id: Id,
) -> Result<Vec<TargetSetting>, AppError> {
    let group = state.store.group(group_id).await?;
    caller.allow(Action::ReportRead, &group.path()).await?;
    Ok(state.store.indicator_targets(group_id).await?)
}

/// What a drill-through asks for: a board's node and period, and one measure.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecordsQuery {
    pub org: Option<String>,
    pub department: Option<String>,
    pub period: Option<String>,
    /// A measure an indicator names (`visits_primary`, `contracted`, …).
    pub measure: String,
    /// At most this many records (default 200, at most 2000); `total` counts them all.
    pub limit: Option<usize>,
}

/// The records behind one measure of a node and period, for those who may see patients there.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecordList {
    pub node: NodeRef,
    pub period: String,
    pub measure: String,
    pub measure_label: String,
    /// Every record counted; equals the measure's value in the board.
    pub total: usize,
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<medgrid_store::indicator::RecordRow>,
}

/// The drill-through: the records a measure counts for a node and period. Patient-level, so it
/// takes `PatientRead` at the node (the clinicians and coordinators who may see those
/// patients), and the read is audited.
pub async fn records(
    state: &AppState,
    caller: &Caller,
    q: &RecordsQuery,
) -> Result<RecordList, AppError> {
    let board_query = BoardQuery {
        org: q.org.clone(),
        department: q.department.clone(),
        period: q.period.clone(),
        period_kind: None,
    };
    let at = locate(state, caller, &board_query, Action::PatientRead).await?;
    let limit = q.limit.unwrap_or(200);
    if !(1..=2000).contains(&limit) {
        return Err(Invalid::one(FieldError::new(
            "limit",
            "range",
            "每次列出 1 至 2000 条",
            "must be from 1 to 2000",
        ))
        .into());
    }
    let measure = Measure::parse(q.measure.trim()).ok_or_else(|| {
        AppError::Invalid(Invalid::one(FieldError::new(
            "measure",
            "unknown",
            format!("没有名为“{}”的统计量", q.measure),
            format!("no measure named “{}”", q.measure),
        )))
    })?;
    let cube_state = state.store.cube_state().await?;
    let span = cube_state.as_ref().and_then(CubeState::span);
    let period = choose_period(&board_query, span.map(|s| s.last))?;
    let Some(span) = span else {
        return Err(AppError::NotFound);
    };
    // As the rollup counts: a flow over the period's months with data, a stock at its last.
    let last = period.last().min(span.last);
    let first = if measure.is_stock() {
        last
    } else {
        period.first()
    };
    let department = match &at.node {
        Node::Department(_, code) => Some(code.clone()),
        _ => None,
    };
    let found = state
        .store
        .trace_records(
            span,
            &at.units,
            medgrid_analytics::cube::Trace {
                measure,
                first,
                last,
                department,
            },
        )
        .await?;
    let listed = &found[..found.len().min(limit)];
    let rows = state.store.record_rows(listed).await?;
    state
        .store
        .audit(&medgrid_store::AuditEntry {
            actor: &caller.actor,
            action: "patient.read",
            resource_type: "MeasureReport",
            resource_id: Some(format!(
                "{}/{}/{}",
                at.node.reference(),
                period,
                measure.name()
            )),
            target: Some(at.path),
            outcome: medgrid_store::Outcome::Ok,
            // Which patients' records were shown, not only how many.
            detail: Some(format!(
                "{} of {} records listed: {}",
                rows.len(),
                found.len(),
                listed
                    .iter()
                    .map(|r| format!("{r:?}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )),
        })
        .await?;
    Ok(RecordList {
        node: NodeRef {
            org: at.node.reference(),
            kind: at.node.kind().into(),
            name: at.name.clone(),
        },
        period: period.to_string(),
        measure: measure.name().into(),
        measure_label: measure.label_zh().into(),
        total: found.len(),
        records: rows,
    })
}
