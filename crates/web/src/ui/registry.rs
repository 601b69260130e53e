//! Registry pages: the city → grid → group → member tree, and each unit's details with its
//! departments and practitioners.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use minijinja::context;
use serde::{Deserialize, Serialize};

use medgrid_domain::access::{authorize, Action, Id, OrgPath};
use medgrid_domain::org::rules::Finding;
use medgrid_domain::org::{
    City, DepartmentInput, DepartmentKind, Grid, Group, MemberRole, PractitionerInput, Title, Unit,
};
use medgrid_domain::FieldError;
use medgrid_store::GroupOverview;

use super::{check_csrf, may, nav, UiError};
use crate::actions;
use crate::auth::{Caller, UiCaller};
use crate::error::AppError;
use crate::AppState;

/// A page failure shown inside the navigation frame.
pub(super) fn fail(state: &AppState, caller: &Caller, e: impl Into<AppError>) -> UiError {
    UiError::Page(Box::new((state.clone(), Some(caller.clone()), e.into())))
}

#[derive(Serialize)]
struct UnitNode {
    id: Id,
    name: String,
    second_name: Option<String>,
    role: &'static str,
    role_id: &'static str,
    level: &'static str,
    beds: Option<i64>,
    services: Vec<&'static str>,
    children: Vec<UnitNode>,
}

#[derive(Serialize)]
struct GroupNode {
    group: Group,
    units: Vec<UnitNode>,
    unit_count: usize,
    figures: Option<Figures>,
}

/// A group's figures as the home page shows them: counts and the shares people judge the
/// reform by (seed 002), with one decimal.
#[derive(Serialize)]
struct Figures {
    residents: i64,
    contract_rate: f64,
    visits: i64,
    visits_per_capita: f64,
    primary_share: f64,
    in_region_rate: f64,
    admissions: i64,
    admissions_per_100: f64,
    referrals_up: i64,
    referrals_down: i64,
    period: String,
}

fn percent(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / whole as f64).round() / 10.0
    }
}

impl From<&GroupOverview> for Figures {
    fn from(o: &GroupOverview) -> Figures {
        let per = |n: i64, scale: f64| {
            if o.residents == 0 {
                0.0
            } else {
                (n as f64 * scale * 10.0 / o.residents as f64).round() / 10.0
            }
        };
        Figures {
            residents: o.residents,
            contract_rate: percent(o.contracted, o.residents),
            visits: o.visits,
            visits_per_capita: per(o.visits, 1.0),
            primary_share: percent(o.primary_visits, o.visits),
            in_region_rate: percent(o.in_region_visits, o.visits),
            admissions: o.admissions,
            admissions_per_100: per(o.admissions, 100.0),
            referrals_up: o.referrals_up,
            referrals_down: o.referrals_down,
            period: match (&o.first_day, &o.last_day) {
                (Some(a), Some(b)) => format!("{a} 至 {b}"),
                _ => String::new(),
            },
        }
    }
}

#[derive(Serialize)]
struct GridNode {
    grid: Grid,
    groups: Vec<GroupNode>,
}

#[derive(Serialize)]
struct CityNode {
    city: City,
    grids: Vec<GridNode>,
    /// Units outside every group: cross-grid providers and city institutions.
    others: Vec<UnitNode>,
    findings: Vec<Finding>,
    unit_count: usize,
}

fn role_rank(r: MemberRole) -> usize {
    MemberRole::ALL
        .iter()
        .position(|x| *x == r)
        .unwrap_or(usize::MAX)
}

/// Nests units under their parent where the parent is in the same list (villages under their
/// township hospital, campuses under their hospital), leads first.
fn nest(units: &[&Unit]) -> Vec<UnitNode> {
    let ids: Vec<Id> = units.iter().map(|u| u.id).collect();
    let mut children: HashMap<Id, Vec<&Unit>> = HashMap::new();
    let mut roots = Vec::new();
    for u in units {
        match u.parent_unit_id.filter(|p| ids.contains(p)) {
            Some(p) => children.entry(p).or_default().push(u),
            None => roots.push(*u),
        }
    }
    roots.sort_by_key(|u| (role_rank(u.role), u.id));
    fn node(u: &Unit, children: &HashMap<Id, Vec<&Unit>>) -> UnitNode {
        UnitNode {
            id: u.id,
            name: u.legal_name.clone(),
            second_name: u.second_name.clone(),
            role: u.role.label_zh(),
            role_id: u.role.as_str(),
            level: u.level.label_zh(),
            beds: u.beds,
            services: u.services.iter().map(|s| s.label_zh()).collect(),
            children: children
                .get(&u.id)
                .map(|c| c.iter().map(|x| node(x, children)).collect())
                .unwrap_or_default(),
        }
    }
    roots.iter().map(|u| node(u, &children)).collect()
}

pub async fn home(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
) -> Result<Response, UiError> {
    let mut cities = Vec::new();
    let overviews = state.store.group_overviews().await?;
    for c in state.store.cities().await? {
        if !may(&caller, Action::RegistryRead, &OrgPath::city(c.id)) {
            continue;
        }
        let tree = state.store.city_tree(c.id).await?;
        let findings = state.store.check_city(c.id).await?;
        let grids = tree
            .grids
            .iter()
            .map(|g| GridNode {
                grid: g.clone(),
                groups: tree
                    .groups
                    .iter()
                    .filter(|gr| gr.grid_id == g.id)
                    .map(|gr| {
                        let members: Vec<&Unit> = tree
                            .units
                            .iter()
                            .filter(|u| u.group_id == Some(gr.id))
                            .collect();
                        GroupNode {
                            group: gr.clone(),
                            unit_count: members.len(),
                            units: nest(&members),
                            figures: overviews
                                .iter()
                                .find(|o| o.group_id == gr.id)
                                .map(Figures::from),
                        }
                    })
                    .collect(),
            })
            .collect();
        let others: Vec<&Unit> = tree.units.iter().filter(|u| u.group_id.is_none()).collect();
        cities.push(CityNode {
            unit_count: tree.units.len(),
            city: tree.city,
            grids,
            others: nest(&others),
            findings,
        });
    }
    let html = state
        .templates
        .render("tree.html", context! { nav => nav(&caller), cities })
        .map_err(|e| fail(&state, &caller, e))?;
    Ok(html.into_response())
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

/// The form values and errors to show again after a failed submission.
#[derive(Default, Serialize)]
struct FormState {
    form: &'static str,
    values: HashMap<String, String>,
    errors: Vec<FieldError>,
}

async fn render_unit(
    state: &AppState,
    caller: &Caller,
    id: Id,
    done: Option<String>,
    form: FormState,
) -> Result<Response, UiError> {
    let unit = state
        .store
        .unit(id)
        .await
        .map_err(|e| fail(state, caller, e))?;
    caller
        .allow(Action::RegistryRead, &unit.path())
        .await
        .map_err(|e| fail(state, caller, e))?;
    let group = match unit.group_id {
        Some(g) => Some(state.store.group(g).await?),
        None => None,
    };
    let grid = match unit.grid_id {
        Some(g) => Some(state.store.grid(g).await?),
        None => None,
    };
    let city = state.store.city(unit.city_id).await?;
    let parent = match unit.parent_unit_id {
        Some(p) => Some(state.store.unit(p).await?),
        None => None,
    };
    let departments = state.store.departments(id).await?;
    let dept_names: HashMap<Id, String> =
        departments.iter().map(|d| (d.id, d.name.clone())).collect();
    let practitioners: Vec<_> = state
        .store
        .practitioners(Some(id), None, 1000)
        .await?
        .into_iter()
        .map(|p| {
            let site = p.sites.iter().find(|s| s.unit_id == id);
            context! {
                id => p.id,
                name => p.name,
                licence_no => p.licence_no,
                sex => p.sex.label_zh(),
                title => p.title.label_zh(),
                senior => p.title.is_senior(),
                specialty => p.specialty,
                department => site.and_then(|s| s.department_id).and_then(|d| dept_names.get(&d).cloned()),
                primary_here => site.is_some_and(|s| s.primary),
                site_count => p.sites.len(),
            }
        })
        .collect();
    let departments: Vec<_> = departments
        .iter()
        .map(|d| context! { id => d.id, code => d.code, name => d.name, kind => d.kind.label_zh(), beds => d.beds })
        .collect();
    let can_write = may(caller, Action::UnitResourcesWrite, &unit.path());
    let kinds: Vec<_> = DepartmentKind::ALL
        .iter()
        .map(|k| (k.as_str(), k.label_zh()))
        .collect();
    let titles: Vec<_> = Title::ALL
        .iter()
        .map(|t| (t.as_str(), t.label_zh()))
        .collect();
    let html = state
        .templates
        .render(
            "unit.html",
            context! {
                nav => nav(caller),
                unit => context! {
                    id => unit.id,
                    reference => format!("unit-{}", unit.id),
                    code => unit.code,
                    legal_name => unit.legal_name,
                    second_name => unit.second_name,
                    role => unit.role.label_zh(),
                    level => unit.level.label_zh(),
                    division_code => unit.division_code,
                    uscc => unit.uscc,
                    uscc_warning => unit.uscc_warning,
                    beds => unit.beds,
                    public => unit.public,
                    services => unit.services.iter().map(|s| s.label_zh()).collect::<Vec<_>>(),
                    note => unit.note,
                },
                group, grid, city, parent => parent.map(|p| context! { id => p.id, name => p.legal_name }),
                departments, practitioners, can_write, kinds, titles, done, form,
            },
        )
        .map_err(|e| fail(state, caller, e))?;
    Ok(html.into_response())
}

pub async fn unit_page(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, UiError> {
    render_unit(&state, &caller, id, q.done, FormState::default()).await
}

#[derive(Deserialize)]
pub struct DepartmentForm {
    csrf: String,
    code: String,
    name: String,
    kind: String,
    #[serde(default)]
    beds: String,
}

/// An optional whole number from a form field.
fn form_number(field: &str, raw: &str) -> Result<Option<i64>, FieldError> {
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse()
        .map(Some)
        .map_err(|_| FieldError::new(field, "format", "须为整数", "must be a whole number"))
}

/// Turns a failed write into the page again with the form's values and errors; anything
/// that is not the user's input to fix is an error page.
async fn refill(
    state: &AppState,
    caller: &Caller,
    id: Id,
    form: &'static str,
    values: HashMap<String, String>,
    e: AppError,
) -> Result<Response, UiError> {
    let errors = e.fields();
    if errors.is_empty() {
        return Err(fail(state, caller, e));
    }
    let status = e.status();
    let resp = render_unit(
        state,
        caller,
        id,
        None,
        FormState {
            form,
            values,
            errors,
        },
    )
    .await?;
    Ok((status, resp).into_response())
}

pub async fn add_department(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
    Form(f): Form<DepartmentForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| fail(&state, &caller, e))?;
    let values: HashMap<String, String> = [
        ("code", &f.code),
        ("name", &f.name),
        ("kind", &f.kind),
        ("beds", &f.beds),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.clone()))
    .collect();
    let result = async {
        let beds = form_number("beds", &f.beds).map_err(medgrid_domain::Invalid::one)?;
        let input = DepartmentInput {
            code: f.code.clone(),
            name: f.name.clone(),
            kind: f.kind.clone(),
            beds,
        };
        actions::create_department(&state, &caller, id, &input).await
    }
    .await;
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/units/{id}?done=department")).into_response()),
        Err(e) => refill(&state, &caller, id, "department", values, e).await,
    }
}

#[derive(Deserialize)]
pub struct PractitionerForm {
    csrf: String,
    licence_no: String,
    name: String,
    sex: String,
    title: String,
    #[serde(default)]
    specialty: String,
    #[serde(default)]
    department_id: String,
}

pub async fn add_practitioner(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
    Form(f): Form<PractitionerForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| fail(&state, &caller, e))?;
    let values: HashMap<String, String> = [
        ("licence_no", &f.licence_no),
        ("name", &f.name),
        ("sex", &f.sex),
        ("title", &f.title),
        ("specialty", &f.specialty),
        ("department_id", &f.department_id),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.clone()))
    .collect();
    let result = async {
        let department_id =
            form_number("department_id", &f.department_id).map_err(medgrid_domain::Invalid::one)?;
        let input = PractitionerInput {
            licence_no: f.licence_no.clone(),
            name: f.name.clone(),
            sex: f.sex.clone(),
            title: f.title.clone(),
            specialty: f.specialty.clone(),
            unit_id: id,
            department_id,
        };
        actions::create_practitioner(&state, &caller, &input).await
    }
    .await;
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/units/{id}?done=practitioner")).into_response()),
        Err(e) => refill(&state, &caller, id, "practitioner", values, e).await,
    }
}

/// Whether a caller sees a city (used by the account pages for organisation choices).
pub(super) fn sees_city(caller: &Caller, city: Id) -> bool {
    authorize(
        &caller.principal,
        Action::RegistryRead,
        &OrgPath::city(city),
    )
    .is_ok()
}
