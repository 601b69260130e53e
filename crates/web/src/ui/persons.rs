//! Patient index pages (患者主索引, R2.1): finding a person, the person with every unit's
//! record of them, the review queue, and one review with both records side by side, the
//! differences marked and the evidence of each field drawn as a bar.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use minijinja::context;
use serde::{Deserialize, Serialize};

use medgrid_domain::access::{Action, Id};
use medgrid_store::patient_index::{PersonFilter, Verdict};

use super::{check_csrf, may, nav, page, UiError};
use crate::auth::UiCaller;
use crate::error::AppError;
use crate::persons;
use crate::AppState;

/// A comparison level as reviewers read it.
fn level_zh(level: &str) -> &'static str {
    match level {
        "exact" => "完全一致",
        "exact_valid" => "有效证件号一致",
        "same_reading" => "同音（拼音相同）",
        "close" => "相近",
        "similar" => "部分相似",
        "contained" => "包含",
        "day_month_swapped" => "月日颠倒",
        "one_edit" => "一处不同",
        "two_edits" => "两处不同",
        "missing" => "缺失（不计分）",
        "different" => "不同",
        _ => "—",
    }
}

fn field_zh(column: &str) -> &'static str {
    match column {
        "citizen_id" => "身份证号",
        "name" => "姓名",
        "sex" => "性别",
        "birth_date" => "出生日期",
        "phone" => "电话",
        "address" => "地址",
        _ => "其他",
    }
}

/// A value as the reviewer reads it: sex in words.
fn shown(column: &str, value: &str) -> String {
    match (column, value) {
        ("sex", "male" | "M") => "男".to_owned(),
        ("sex", "female" | "F") => "女".to_owned(),
        _ => value.to_owned(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    birth_date: String,
}

pub async fn search_page(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Query(q): Query<SearchQuery>,
) -> Result<Response, UiError> {
    let text = q.q.trim();
    let birth_date = chrono::NaiveDate::parse_from_str(q.birth_date.trim(), "%Y-%m-%d").ok();
    let searched = !text.is_empty() || birth_date.is_some();
    let found = if searched {
        // Digits are an identifier or a phone; anything else the start of a name.
        let digits = text.chars().all(|c| c.is_ascii_alphanumeric()) && text.len() >= 6;
        let filter = PersonFilter {
            identifier: (digits && text.len() != 11).then(|| text.to_owned()),
            phone: (digits && text.len() == 11 && text.starts_with('1')).then(|| text.to_owned()),
            name: (!digits && !text.is_empty()).then(|| text.to_owned()),
            birth_date,
            limit: 100,
            ..PersonFilter::default()
        };
        persons::search(&state, &caller, filter)
            .await
            .map_err(|e| page(&state, &caller, e))?
    } else {
        caller
            .allow(Action::PatientRead, &caller.principal.scope.path)
            .await
            .map_err(|e| page(&state, &caller, e))?;
        Vec::new()
    };
    let group = caller.principal.scope.path.group;
    let open_reviews = match group {
        Some(g)
            if may(
                &caller,
                Action::PatientIndexReview,
                &caller.principal.scope.path,
            ) =>
        {
            Some(state.store.open_review_count(g).await?)
        }
        _ => None,
    };
    let html = state.templates.render(
        "persons.html",
        context! { nav => nav(&caller), active => "persons", q => text, birth_date => q.birth_date.trim(),
            searched, found, open_reviews },
    )?;
    Ok(html.into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct FullQuery {
    #[serde(default)]
    full: Option<String>,
}

pub async fn person_page(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
    Query(q): Query<FullQuery>,
) -> Result<Response, UiError> {
    let full = q.full.is_some();
    let view = persons::read(&state, &caller, id, full)
        .await
        .map_err(|e| page(&state, &caller, e))?;
    let group = state.store.group(view.person.group_id).await?;
    let can_review = may(&caller, Action::PatientIndexReview, &group.path());
    let records: Vec<_> = view
        .records
        .iter()
        .map(|r| {
            context! { r => r, state_zh => r.link_state.label_zh(),
            pct => r.probability.map(|p| (p * 1000.0).round() / 10.0) }
        })
        .collect();
    let html = state.templates.render(
        "person.html",
        context! { nav => nav(&caller), active => "persons", person => view.person,
        records, merges => view.merges, full, can_review },
    )?;
    Ok(html.into_response())
}

#[derive(Debug, Deserialize)]
pub struct MergeForm {
    csrf: String,
    merged_id: String,
    #[serde(default)]
    reason: String,
}

pub async fn merge(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
    Form(f): Form<MergeForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    let merged: Id = f.merged_id.trim().parse().map_err(|_| {
        page(
            &state,
            &caller,
            AppError::Invalid(medgrid_domain::Invalid::one(
                medgrid_domain::FieldError::new(
                    "merged_id",
                    "format",
                    "请填写被合并居民的编号（数字）",
                    "the id of the person to merge, a number",
                ),
            )),
        )
    })?;
    persons::merge(&state, &caller, id, merged, &f.reason)
        .await
        .map_err(|e| page(&state, &caller, e))?;
    Ok(Redirect::to(&format!("/persons/{id}")).into_response())
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn unmerge(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path((id, merge_id)): Path<(Id, Id)>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    persons::unmerge(&state, &caller, id, merge_id)
        .await
        .map_err(|e| page(&state, &caller, e))?;
    Ok(Redirect::to(&format!("/persons/{id}")).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct QueueQuery {
    status: Option<String>,
}

pub async fn queue_page(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Query(q): Query<QueueQuery>,
) -> Result<Response, UiError> {
    let Some(group_id) = caller.principal.scope.path.group else {
        return Err(page(&state, &caller, AppError::NotFound));
    };
    let status = q.status.as_deref().unwrap_or("open");
    let reviews = persons::reviews(&state, &caller, group_id, Some(status))
        .await
        .map_err(|e| page(&state, &caller, e))?;
    let rows: Vec<_> = reviews
        .iter()
        .map(|r| context! { r => r, pct => (r.probability * 1000.0).round() / 10.0 })
        .collect();
    let html = state.templates.render(
        "match_reviews.html",
        context! { nav => nav(&caller), active => "match_reviews", rows, status },
    )?;
    Ok(html.into_response())
}

/// One field of the side-by-side table.
#[derive(Serialize)]
struct Row {
    field: &'static str,
    record: String,
    candidate: String,
    level: &'static str,
    level_code: &'static str,
    bits: f64,
    /// Bar width in percent of the widest evidence on the page.
    width: f64,
    differs: bool,
}

pub async fn review_page(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
    Query(q): Query<FullQuery>,
) -> Result<Response, UiError> {
    let full = q.full.is_some();
    let d = persons::review(&state, &caller, id, full)
        .await
        .map_err(|e| page(&state, &caller, e))?;
    // The candidate's side is the record the score was computed on.
    let best = d
        .best_record_id
        .and_then(|b| d.candidate_records.iter().find(|r| r.id == b));
    let candidate = best.map_or_else(|| d.candidate.demographics(), |r| r.demographics());
    let record = d.record.demographics();
    // A score's fields come in the model's column order, as the demographics do.
    let (candidate, record) = (candidate.raw(), record.raw());
    let widest = d
        .score
        .fields
        .iter()
        .map(|f| f.bits.abs())
        .fold(1.0, f64::max);
    let rows: Vec<Row> = d
        .score
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| Row {
            field: field_zh(&f.column),
            record: shown(&f.column, record.get(i).copied().unwrap_or_default()),
            candidate: shown(&f.column, candidate.get(i).copied().unwrap_or_default()),
            level: level_zh(f.level),
            level_code: f.level,
            bits: (f.bits * 100.0).round() / 100.0,
            width: (f.bits.abs() / widest * 100.0).round(),
            differs: !matches!(f.level, "exact" | "exact_valid" | "missing"),
        })
        .collect();
    let group = state.store.group(d.review.group_id).await?;
    let html = state.templates.render(
        "match_review.html",
        context! { nav => nav(&caller), active => "match_reviews", d, rows, full, group,
        pct => (d.score.probability * 1000.0).round() / 10.0,
        prior => (d.score.prior_bits * 100.0).round() / 100.0,
        frequency => (d.score.frequency_bits * 100.0).round() / 100.0,
        best_unit => best.map(|r| r.unit_name.clone()),
        open => d.review.status == "open" },
    )?;
    Ok(html.into_response())
}

#[derive(Debug, Deserialize)]
pub struct DecideForm {
    csrf: String,
    verdict: String,
}

pub async fn decide(
    State(state): State<AppState>,
    UiCaller(caller): UiCaller,
    Path(id): Path<Id>,
    Form(f): Form<DecideForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &f.csrf).map_err(|e| page(&state, &caller, e))?;
    let verdict = Verdict::parse(&f.verdict).map_err(|e| {
        page(
            &state,
            &caller,
            AppError::Invalid(medgrid_domain::Invalid::one(e)),
        )
    })?;
    persons::decide(&state, &caller, id, verdict)
        .await
        .map_err(|e| page(&state, &caller, e))?;
    Ok(Redirect::to("/match-reviews").into_response())
}
