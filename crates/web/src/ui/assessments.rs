//! Assessment pages (考核, R11.2): the group's scheme and reports, a run for a half-year, and
//! a report with the members' ranking, their dimension scores as stacked bars and every item.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use minijinja::context;
use serde::{Deserialize, Serialize};

use medgrid_domain::access::{Action, Id};

use super::{check_csrf, may, nav, page, UiError};
use crate::api::indicators::{download, XLSX};
use crate::assessments::{self, RunInput};
use crate::auth::UiCaller;
use crate::error::AppError;
use crate::AppState;

#[derive(Debug, Deserialize)]
pub struct GroupQuery {
    pub group_id: Option<Id>,
}

pub async fn list(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Query(q): Query<GroupQuery>,
) -> Result<Response, UiError> {
    let Some(group_id) = q.group_id.or(caller.principal.scope.path.group) else {
        return Err(page(&state, &caller, AppError::NotFound));
    };
    let reports = assessments::reports(&state, &caller, group_id)
        .await
        .map_err(|e| page(&state, &caller, e))?;
    let (version, scheme) = assessments::current_scheme(&state, &caller, group_id)
        .await
        .map_err(|e| page(&state, &caller, e))?;
    let group = state
        .store
        .group(group_id)
        .await
        .map_err(|e| page(&state, &caller, e.into()))?;
    let can_run = may(&caller, Action::IndicatorTargetWrite, &group.path());
    let html = state.templates.render(
        "assessments.html",
        context! {
            nav => nav(&caller), active => "assessments", group, reports, version, scheme,
            can_run, error => Option::<String>::None,
        },
    )?;
    Ok(html.into_response())
}

#[derive(Debug, Deserialize)]
pub struct RunForm {
    csrf: String,
    group_id: Id,
    period: String,
}

pub async fn run(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Form(f): Form<RunForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    match assessments::run(&state, &caller, f.group_id, &RunInput { period: f.period }).await {
        Ok(r) => Ok(Redirect::to(&format!("/assessments/{}", r.id)).into_response()),
        Err(e) => Err(page(&state, &caller, e)),
    }
}

/// One member's stacked bar: a segment per dimension, in 0–100 points.
#[derive(Serialize)]
struct Segment {
    x: f64,
    width: f64,
    class: usize,
    label: String,
}

pub async fn show(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
) -> Result<Response, UiError> {
    let r = assessments::one(&state, &caller, id)
        .await
        .map_err(|e| page(&state, &caller, e))?;
    let bars: Vec<Vec<Segment>> = r
        .results
        .iter()
        .map(|m| {
            let mut x = 0.0;
            m.dimensions
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let width = d.score.0 as f64 / 100.0 * 4.0;
                    let s = Segment {
                        x,
                        width,
                        class: i % 4,
                        label: format!("{} {}", d.name_zh, d.score),
                    };
                    x += width;
                    s
                })
                .collect()
        })
        .collect();
    let names: std::collections::HashMap<String, String> = state
        .library
        .indicators
        .iter()
        .map(|i| (i.id.clone(), i.name_zh.clone()))
        .collect();
    let html = state.templates.render(
        "assessment.html",
        context! { nav => nav(&caller), active => "assessments", r, bars, names },
    )?;
    Ok(html.into_response())
}

pub async fn export(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
) -> Result<Response, UiError> {
    let r = assessments::one(&state, &caller, id)
        .await
        .map_err(|e| page(&state, &caller, e))?;
    let bytes = assessments::xlsx(&r)
        .map_err(|e| page(&state, &caller, AppError::Internal(e.to_string())))?;
    Ok(download(
        bytes,
        XLSX,
        &format!("assessment-{id}-{}.xlsx", r.period),
    ))
}
