//! Assessment use cases (考核, R11.2): a group's scheme (its own, else medgrid's default), a
//! run for a period that scores every member from the indicator cube and keeps the report as
//! computed, and the reports. Those who steer the group run and write schemes; those who may
//! read its reports read them.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use medgrid_analytics::{evaluate, Rollup};
use medgrid_domain::access::{Action, Id};
use medgrid_domain::assessment::{self, Measured, Member, MemberScore, Scheme};
use medgrid_domain::indicator::Period;
use medgrid_domain::{FieldError, Invalid};
use medgrid_store::assessment::{NewRun, StoredRun};
use medgrid_store::indicator::CubeState;

use crate::auth::Caller;
use crate::error::AppError;
use crate::indicators::{targets_in_force, within};
use crate::AppState;

/// A report as returned: the stored run with its scheme and results parsed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub id: Id,
    pub group_id: Id,
    pub period: String,
    pub period_label: String,
    /// 0: medgrid's default scheme.
    pub scheme_version: i64,
    #[schema(value_type = Object)]
    pub scheme: Scheme,
    #[schema(value_type = Vec<Object>)]
    pub results: Vec<MemberScore>,
    pub cube_refreshed_at: Option<String>,
    pub created_by: Option<String>,
    pub created_at: String,
}

fn report(r: StoredRun) -> Result<Report, AppError> {
    let scheme: Scheme =
        serde_json::from_str(&r.scheme).map_err(|e| AppError::Internal(e.to_string()))?;
    let results: Vec<MemberScore> =
        serde_json::from_str(&r.results).map_err(|e| AppError::Internal(e.to_string()))?;
    let period_label = Period::parse("period", &r.period)
        .map(|p| p.label_zh())
        .unwrap_or_else(|_| r.period.clone());
    Ok(Report {
        id: r.id,
        group_id: r.group_id,
        period: r.period,
        period_label,
        scheme_version: r.scheme_version,
        scheme,
        results,
        cube_refreshed_at: r.cube_refreshed_at.map(|t| t.to_rfc3339()),
        created_by: r.created_by,
        created_at: r.created_at.to_rfc3339(),
    })
}

/// The scheme a group runs with: its latest own version, else the default (version 0).
pub async fn scheme(state: &AppState, group_id: Id) -> Result<(i64, Scheme), AppError> {
    match state.store.assessment_scheme(group_id).await? {
        Some(s) => Ok((
            s.version,
            serde_json::from_str(&s.body).map_err(|e| AppError::Internal(e.to_string()))?,
        )),
        None => Ok((0, Scheme::shipped().map_err(AppError::Internal)?)),
    }
}

/// The group's scheme in force, for those who may read its reports.
pub async fn current_scheme(
    state: &AppState,
    caller: &Caller,
    group_id: Id,
) -> Result<(i64, Scheme), AppError> {
    let group = state.store.group(group_id).await?;
    caller.allow(Action::ReportRead, &group.path()).await?;
    scheme(state, group_id).await
}

/// Keeps a new version of the group's own scheme after checking it against the library.
pub async fn save_scheme(
    state: &AppState,
    caller: &Caller,
    group_id: Id,
    scheme: &Scheme,
) -> Result<i64, AppError> {
    let group = state.store.group(group_id).await?;
    caller
        .allow(Action::IndicatorTargetWrite, &group.path())
        .await?;
    scheme.check(&state.library)?;
    let body = serde_json::to_string(scheme).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(state
        .store
        .save_assessment_scheme(&caller.actor, &group.path(), &body)
        .await?)
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct RunInput {
    /// `2025-H1` (the seeds evaluate twice a year), or any other period.
    pub period: String,
}

/// Scores every member of the group for the period and keeps the report.
pub async fn run(
    state: &AppState,
    caller: &Caller,
    group_id: Id,
    input: &RunInput,
) -> Result<Report, AppError> {
    let group = state.store.group(group_id).await?;
    caller
        .allow(Action::IndicatorTargetWrite, &group.path())
        .await?;
    let period = Period::parse("period", &input.period)?;
    let cube_state = state.store.cube_state().await?;
    let data = cube_state.as_ref().and_then(CubeState::span);
    if data.is_none_or(|s| period.last() < s.first || period.first() > s.last) {
        return Err(Invalid::one(FieldError::new(
            "period",
            "no_data",
            "所选统计期没有数据",
            "there are no facts for this period",
        ))
        .into());
    }
    let (version, scheme) = scheme(state, group_id).await?;
    let tree = state.store.city_tree(group.city_id).await?;
    let members: Vec<_> = tree
        .units
        .iter()
        .filter(|u| u.group_id == Some(group_id))
        .filter(|u| scheme.member_roles.iter().any(|r| r == u.role.as_str()))
        .collect();
    if members.is_empty() {
        // A report with nobody in it would be kept for good: refuse it instead.
        return Err(Invalid::one(FieldError::new(
            "member_roles",
            "no_members",
            "本集团没有方案所列角色的成员单位",
            "the group has no member units of the roles the scheme assesses",
        ))
        .into());
    }
    let units: HashSet<Id> = members.iter().map(|u| u.id).collect();
    let cube = state
        .store
        .stored_cube(
            cube_state.as_ref(),
            Some(&units),
            period.first().plus(-24),
            period.last(),
        )
        .await?;
    let settings = state.store.indicator_targets(group_id).await?;
    let mut inputs = Vec::with_capacity(members.len());
    for u in &members {
        let rollup = within(Rollup::new(&cube, Some(&HashSet::from([u.id])), None), data);
        let mut values = HashMap::new();
        for d in &scheme.dimensions {
            for item in &d.items {
                let Some(i) = state.library.get(&item.indicator) else {
                    continue;
                };
                let e =
                    evaluate(i, period, &rollup).map_err(|e| AppError::Internal(e.to_string()))?;
                values.insert(
                    i.id.clone(),
                    Measured {
                        value: e.value,
                        direction: i.direction,
                        targets: targets_in_force(i, &settings, period.last())
                            .map(|(t, _)| t.clone()),
                    },
                );
            }
        }
        inputs.push(Member {
            id: u.id,
            name: u
                .second_name
                .clone()
                .unwrap_or_else(|| u.legal_name.clone()),
            values,
        });
    }
    let results = assessment::score(&scheme, &inputs);
    let scheme_json =
        serde_json::to_string(&scheme).map_err(|e| AppError::Internal(e.to_string()))?;
    let results_json =
        serde_json::to_string(&results).map_err(|e| AppError::Internal(e.to_string()))?;
    let id = state
        .store
        .save_assessment_run(
            &caller.actor,
            &group.path(),
            &NewRun {
                period: &period.to_string(),
                scheme_version: version,
                scheme: &scheme_json,
                results: &results_json,
                cube_refreshed_at: cube_state.map(|s| s.refreshed_at),
            },
        )
        .await?;
    report(state.store.assessment_run(id).await?)
}

/// The group's reports, newest first.
pub async fn reports(
    state: &AppState,
    caller: &Caller,
    group_id: Id,
) -> Result<Vec<Report>, AppError> {
    let group = state.store.group(group_id).await?;
    caller.allow(Action::ReportRead, &group.path()).await?;
    state
        .store
        .assessment_runs(group_id)
        .await?
        .into_iter()
        .map(report)
        .collect()
}

/// One report, for those who may read its group's reports.
pub async fn one(state: &AppState, caller: &Caller, id: Id) -> Result<Report, AppError> {
    let r = state.store.assessment_run(id).await?;
    let group = state.store.group(r.group_id).await?;
    caller.allow(Action::ReportRead, &group.path()).await?;
    report(r)
}

/// The report as an Excel workbook: the ranking with dimension scores, then every item.
pub fn xlsx(r: &Report) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let sheet = book.add_worksheet().set_name("考核结果")?;
    sheet.write_string_with_format(
        0,
        0,
        format!("{} · {}", r.scheme.name_zh, r.period_label),
        &bold,
    )?;
    let mut header = vec!["排名".to_owned(), "成员单位".to_owned(), "总分".to_owned()];
    header.extend(
        r.scheme
            .dimensions
            .iter()
            .map(|d| format!("{}（{}分）", d.name_zh, d.points)),
    );
    for (c, h) in header.iter().enumerate() {
        sheet.write_string_with_format(2, c as u16, h, &bold)?;
    }
    let num = |l: medgrid_domain::indicator::Level| l.0 as f64 / 100.0;
    for (i, m) in r.results.iter().enumerate() {
        let row = 3 + i as u32;
        sheet.write_number(row, 0, m.rank as f64)?;
        sheet.write_string(row, 1, &m.name)?;
        sheet.write_number(row, 2, num(m.total))?;
        for (c, d) in m.dimensions.iter().enumerate() {
            sheet.write_number(row, 3 + c as u16, num(d.score))?;
        }
    }
    sheet.set_column_width(1, 30)?;
    let items = book.add_worksheet().set_name("评分明细")?;
    for (c, h) in [
        "成员单位",
        "维度",
        "指标",
        "分值",
        "值",
        "分子",
        "分母",
        "目标",
        "得分",
    ]
    .iter()
    .enumerate()
    {
        items.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    let mut row = 1;
    for m in &r.results {
        for d in &m.dimensions {
            for it in &d.items {
                items.write_string(row, 0, &m.name)?;
                items.write_string(row, 1, &d.name_zh)?;
                items.write_string(row, 2, &it.indicator)?;
                items.write_number(row, 3, num(it.points))?;
                if let Some(v) = it.value {
                    items.write_number(row, 4, num(v))?;
                }
                items.write_number(row, 5, it.numerator as f64)?;
                items.write_number(row, 6, it.denominator as f64)?;
                if let Some(t) = it.target {
                    items.write_number(row, 7, num(t))?;
                }
                match it.score {
                    Some(s) => items.write_number(row, 8, num(s))?,
                    None => items.write_string(row, 8, "无数据")?,
                };
                row += 1;
            }
        }
    }
    items.set_column_width(0, 30)?;
    book.save_to_buffer()
}
