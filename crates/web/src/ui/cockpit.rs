//! The cockpit (驾驶舱, R11.3): the group on one screen. Headline indicators against their
//! targets with trends, the children of the node coloured and ranked by a chosen indicator
//! (click to drill from city to group to member to department), the full indicator table with
//! what each value is made of, referral flows, and exports. Charts are SVG drawn here.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use minijinja::context;
use serde::Serialize;

use super::{check_csrf, nav, page, UiError};
use crate::api::indicators::{download, XLSX};
use crate::auth::{Caller, UiCaller};
use crate::error::AppError;
use crate::indicators::{self, export, Board, BoardQuery, Trend};
use crate::AppState;
use medgrid_domain::access::{Action, Id};

/// The query a cockpit link carries, plus the indicator the children are ranked by.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct CockpitQuery {
    pub done: Option<String>,
    pub org: Option<String>,
    pub department: Option<String>,
    pub period: Option<String>,
    pub period_kind: Option<String>,
    pub rank: Option<String>,
}

impl CockpitQuery {
    /// The cockpit's address for this query, every value encoded.
    fn href(&self) -> String {
        let pairs: Vec<(&str, &str)> = [
            ("org", &self.org),
            ("department", &self.department),
            ("period", &self.period),
            ("period_kind", &self.period_kind),
            ("rank", &self.rank),
            ("done", &self.done),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| (k, v)))
        .collect();
        let qs = serde_urlencoded::to_string(pairs).unwrap_or_default();
        format!("/cockpit?{qs}")
    }

    fn board(&self) -> BoardQuery {
        let period = self.period.clone().filter(|p| !p.trim().is_empty());
        BoardQuery {
            org: self.org.clone(),
            department: self.department.clone(),
            // The page's form sends the kind it shows with every period typed: a typed
            // period is the choice, the kind only picks the latest when none is typed.
            period_kind: self.period_kind.clone().filter(|_| period.is_none()),
            period,
        }
    }
}

/// A trend as a polyline in a 200 × 48 box, with the target's line.
#[derive(Serialize)]
struct Spark {
    points: String,
    target_y: Option<f64>,
    last: Option<String>,
    first_month: String,
    last_month: String,
}

fn spark(t: &Trend) -> Spark {
    let values: Vec<f64> = t.points.iter().filter_map(|p| p.value).collect();
    let mut lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let mut hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if let Some(target) = t.target {
        lo = lo.min(target);
        hi = hi.max(target);
    }
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi - lo < 1e-9 {
        hi = lo + 1.0;
    }
    let y = |v: f64| 44.0 - (v - lo) / (hi - lo) * 40.0;
    let n = t.points.len().max(2) - 1;
    let points = t
        .points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            p.value
                .map(|v| format!("{:.1},{:.1}", i as f64 * 200.0 / n as f64, y(v)))
        })
        .collect::<Vec<_>>()
        .join(" ");
    Spark {
        points,
        target_y: t.target.map(|v| (y(v) * 10.0).round() / 10.0),
        last: t
            .points
            .last()
            .and_then(|p| p.value)
            .map(|v| format!("{v:.2}")),
        first_month: t
            .points
            .first()
            .map(|p| p.month.clone())
            .unwrap_or_default(),
        last_month: t.points.last().map(|p| p.month.clone()).unwrap_or_default(),
    }
}

/// One child's bar in the ranking.
#[derive(Serialize)]
struct RankBar {
    org: String,
    kind: String,
    name: String,
    role: Option<String>,
    value: Option<String>,
    width: i64,
    rag: String,
}

fn ranking(b: &Board, indicator: &str) -> Vec<RankBar> {
    let lower = b
        .rows
        .iter()
        .find(|r| r.indicator_id == indicator)
        .is_some_and(|r| r.direction == "lower");
    let mut bars: Vec<RankBar> = b
        .children
        .iter()
        .map(|c| {
            let v = c.values.iter().find(|v| v.indicator_id == indicator);
            RankBar {
                org: c.node.org.clone(),
                kind: c.node.kind.clone(),
                name: c.node.name.clone(),
                role: c.role.clone(),
                value: v.and_then(|v| v.value.clone()),
                width: 0,
                rag: v.map(|v| v.rag.clone()).unwrap_or_else(|| "none".into()),
            }
        })
        .collect();
    let number = |bar: &RankBar| bar.value.as_deref().and_then(|v| v.parse::<f64>().ok());
    // Best first; children without a value last.
    bars.sort_by(|a, b| {
        let (x, y) = (number(a), number(b));
        match (x, y) {
            (Some(x), Some(y)) if lower => x.total_cmp(&y),
            (Some(x), Some(y)) => y.total_cmp(&x),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.name.cmp(&b.name),
        }
    });
    let max = bars.iter().filter_map(number).fold(0.0_f64, f64::max);
    for bar in &mut bars {
        bar.width = match number(bar) {
            Some(v) if max > 0.0 => (v.max(0.0) / max * 400.0).round() as i64,
            _ => 0,
        };
    }
    bars
}

/// The link to the same view of another node (`unit-7` or `unit-7/XXG`), ranked by `rank`.
fn link(b: &Board, org: &str, rank: &str) -> String {
    let (org, department) = match org.split_once('/') {
        Some((u, d)) => (u, Some(d.to_owned())),
        None => (org, None),
    };
    CockpitQuery {
        org: Some(org.to_owned()),
        department,
        period: Some(b.period.clone()),
        rank: Some(rank.to_owned()),
        ..CockpitQuery::default()
    }
    .href()
}

pub async fn cockpit(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Query(q): Query<CockpitQuery>,
) -> Result<Response, UiError> {
    render(&state, &caller, &q, Vec::new()).await
}

/// The cockpit for `q`, with `errors` of a refused form above it.
async fn render(
    state: &AppState,
    caller: &Caller,
    q: &CockpitQuery,
    form_errors: Vec<medgrid_domain::FieldError>,
) -> Result<Response, UiError> {
    let (board, errors) = match indicators::board(state, caller, &q.board()).await {
        Ok(b) => (Some(b), form_errors),
        Err(AppError::Invalid(inv)) => {
            // A bad period or node: show the errors above the default board.
            let fallback = indicators::board(state, caller, &BoardQuery::default())
                .await
                .map_err(|e| page(state, caller, e))?;
            (Some(fallback), inv.0)
        }
        Err(e) => return Err(page(state, caller, e)),
    };
    let Some(b) = board else {
        return Err(page(state, caller, AppError::NotFound));
    };
    // A unit's children are departments, which keep only some measures: rank them by the
    // first indicator they have.
    let dept_first = (b.node.kind == "unit")
        .then(|| {
            b.children
                .first()
                .and_then(|c| c.values.first())
                .map(|v| v.indicator_id.clone())
        })
        .flatten();
    let rank = q
        .rank
        .clone()
        .filter(|r| b.rows.iter().any(|x| &x.indicator_id == r))
        .or(dept_first)
        .or_else(|| {
            b.rows
                .iter()
                .find(|r| r.headline)
                .map(|r| r.indicator_id.clone())
        })
        .or_else(|| b.rows.first().map(|r| r.indicator_id.clone()))
        .unwrap_or_default();
    let bars = ranking(&b, &rank);
    let links: Vec<String> = bars.iter().map(|bar| link(&b, &bar.org, &rank)).collect();
    let crumbs: Vec<String> = b
        .breadcrumbs
        .iter()
        .map(|c| link(&b, &c.org, &rank))
        .collect();
    let sparks: Vec<(String, Spark)> = b
        .trends
        .iter()
        .map(|t| (t.indicator_id.clone(), spark(t)))
        .collect();
    let (node_org, node_dept) = match b.node.org.split_once('/') {
        Some((u, d)) => (u.to_owned(), Some(d.to_owned())),
        None => (b.node.org.clone(), None),
    };
    let here = CockpitQuery {
        org: Some(node_org.clone()),
        department: node_dept.clone(),
        period: Some(b.period.clone()),
        ..CockpitQuery::default()
    };
    let export_query = here.href().trim_start_matches("/cockpit?").to_owned();
    let back = CockpitQuery {
        rank: Some(rank.clone()),
        ..here
    }
    .href();
    let flow_max = b
        .flows
        .iter()
        .map(|f| f.referrals)
        .max()
        .unwrap_or(1)
        .max(1);
    // Those who may see patients get links to the records behind a number (checked again,
    // at the node, when followed).
    let can_records = super::may(caller, Action::PatientRead, &caller.principal.scope.path);
    // A group's managers set its own targets from the group's board.
    let target_group = match b.node.org.strip_prefix("group-").map(str::parse::<Id>) {
        Some(Ok(id)) => {
            let group = state
                .store
                .group(id)
                .await
                .map_err(|e| page(state, caller, e.into()))?;
            super::may(caller, Action::IndicatorTargetWrite, &group.path()).then_some(id)
        }
        _ => None,
    };
    let html = state.templates.render(
        "cockpit.html",
        context! {
            nav => nav(caller), active => "cockpit", b, errors, rank, bars, links, crumbs,
            sparks => sparks.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
            export_query, flow_max, node_org, node_dept, can_records, target_group, back,
            done => q.done.is_some(),
            kinds => [("month", "月"), ("quarter", "季度"), ("half_year", "半年"), ("year", "年"), ("rolling12", "滚动12个月")],
        },
    )?;
    Ok(html.into_response())
}

/// The indicator table of the node and period as CSV or Excel, from the cockpit.
async fn export(
    state: &AppState,
    caller: &crate::auth::Caller,
    q: &CockpitQuery,
    xlsx: bool,
) -> Result<Response, UiError> {
    let b = indicators::board(state, caller, &q.board())
        .await
        .map_err(|e| page(state, caller, e))?;
    if xlsx {
        let bytes =
            export::xlsx(&b).map_err(|e| page(state, caller, AppError::Internal(e.to_string())))?;
        Ok(download(
            bytes,
            XLSX,
            &format!("indicators-{}.xlsx", b.period),
        ))
    } else {
        Ok(download(
            export::csv(&b).into_bytes(),
            "text/csv; charset=utf-8",
            &format!("indicators-{}.csv", b.period),
        ))
    }
}

pub async fn export_csv(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Query(q): Query<CockpitQuery>,
) -> Result<Response, UiError> {
    export(&state, &caller, &q, false).await
}

pub async fn export_xlsx(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Query(q): Query<CockpitQuery>,
) -> Result<Response, UiError> {
    export(&state, &caller, &q, true).await
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct RecordsPageQuery {
    pub org: Option<String>,
    pub department: Option<String>,
    pub period: Option<String>,
    pub measure: String,
}

/// The records behind a number of the cockpit (patient-level: names masked, read audited).
pub async fn records(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Query(q): Query<RecordsPageQuery>,
) -> Result<Response, UiError> {
    let list = indicators::records(
        &state,
        &caller,
        &indicators::RecordsQuery {
            org: q.org.clone(),
            department: q.department.clone(),
            period: q.period.clone(),
            measure: q.measure.clone(),
            limit: Some(500),
        },
    )
    .await
    .map_err(|e| page(&state, &caller, e))?;
    let html = state.templates.render(
        "cockpit_records.html",
        context! { nav => nav(&caller), active => "cockpit", list },
    )?;
    Ok(html.into_response())
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct TargetForm {
    csrf: String,
    group_id: Id,
    indicator_id: String,
    from: String,
    target: String,
    amber: String,
    #[serde(default)]
    note: Option<String>,
    /// The cockpit page the form was on, to return to.
    back: String,
}

/// A group manager's new target for an indicator, from the cockpit's table.
pub async fn set_target(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Form(f): Form<TargetForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    // Only a cockpit view is followed back, rebuilt from its parsed query before anything is
    // written: never an address from elsewhere, nor one that cannot be a redirect.
    let q: CockpitQuery = f
        .back
        .strip_prefix("/cockpit?")
        .and_then(return_query)
        .unwrap_or_default();
    let input = indicators::TargetInput {
        indicator_id: f.indicator_id,
        from: f.from,
        target: f.target,
        amber: f.amber,
        note: f.note,
    };
    match indicators::set_target(&state, &caller, f.group_id, &input).await {
        Ok(_) => Ok(Redirect::to(
            &CockpitQuery {
                done: Some("1".into()),
                ..q
            }
            .href(),
        )
        .into_response()),
        Err(AppError::Invalid(inv)) => render(&state, &caller, &q, inv.0).await,
        Err(e) => Err(page(&state, &caller, e)),
    }
}

/// The cockpit query of a return address.
fn return_query(qs: &str) -> Option<CockpitQuery> {
    let uri: axum::http::Uri = format!("/cockpit?{qs}").parse().ok()?;
    Query::<CockpitQuery>::try_from_uri(&uri)
        .ok()
        .map(|Query(q)| q)
}
