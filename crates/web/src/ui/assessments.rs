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
    render_list(&state, &caller, group_id, Vec::new(), None).await
}

/// The group's assessment page, with a refused form's errors and text when there are.
async fn render_list(
    state: &AppState,
    caller: &crate::auth::Caller,
    group_id: Id,
    errors: Vec<medgrid_domain::FieldError>,
    scheme_text: Option<String>,
) -> Result<Response, UiError> {
    let reports = assessments::reports(state, caller, group_id)
        .await
        .map_err(|e| page(state, caller, e))?;
    let (version, scheme) = assessments::current_scheme(state, caller, group_id)
        .await
        .map_err(|e| page(state, caller, e))?;
    let group = state
        .store
        .group(group_id)
        .await
        .map_err(|e| page(state, caller, e.into()))?;
    let can_run = may(caller, Action::IndicatorTargetWrite, &group.path());
    // The scheme as its managers edit it: the JSON they sent back when it was refused.
    let scheme_text = match scheme_text {
        Some(t) => t,
        None => serde_json::to_string_pretty(&scheme)
            .map_err(|e| page(state, caller, AppError::Internal(e.to_string())))?,
    };
    let html = state.templates.render(
        "assessments.html",
        context! {
            nav => nav(caller), active => "assessments", group, reports, version, scheme,
            can_run, errors, scheme_text,
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

#[derive(Debug, Deserialize)]
pub struct SchemeForm {
    csrf: String,
    group_id: Id,
    scheme: String,
}

/// The next version of the group's own scheme, written as JSON on the page.
pub async fn save_scheme(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Form(f): Form<SchemeForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    let parsed: Result<medgrid_domain::assessment::Scheme, _> = serde_json::from_str(&f.scheme);
    let result = match parsed {
        Ok(scheme) => assessments::save_scheme(&state, &caller, f.group_id, &scheme).await,
        Err(e) => Err(AppError::Invalid(medgrid_domain::Invalid::one(
            medgrid_domain::FieldError::new(
                "scheme",
                "json",
                format!("方案不是有效的 JSON 或缺少字段：{e}"),
                format!("the scheme is not valid JSON or lacks a field: {e}"),
            ),
        ))),
    };
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/assessments?group_id={}", f.group_id)).into_response()),
        Err(AppError::Invalid(inv)) => {
            render_list(&state, &caller, f.group_id, inv.0, Some(f.scheme)).await
        }
        Err(e) => Err(page(&state, &caller, e)),
    }
}
