//! DIP case payment's use cases (R9.2), shared by the JSON API and the web UI: the insurance
//! officer runs a month provisionally or the year finally (`InsuranceSettle`); those who read
//! the group's reports (`ReportRead`) see the runs, the members' totals and any case traced
//! to every number used. Case-level pages name claims of residents, so each read of them is
//! audited.

use serde::Serialize;

use medgrid_domain::access::{Action, Id, OrgPath};
use medgrid_domain::insurance::case_payment::Branch;
use medgrid_domain::insurance::Step;
use medgrid_store::insurance::case_payment::{
    self, CasePage, CasePaymentRow, CasePaymentRun, UnitPayment,
};

use crate::auth::Caller;
use crate::error::AppError;
use crate::insurance::group_path;
use crate::AppState;

/// Runs DIP for `month` (1–12) or, with 0, the whole year's final run.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    state: &AppState,
    caller: &Caller,
    group_id: Id,
    year: i32,
    fund: &str,
    month: u32,
    reason: Option<&str>,
) -> Result<CasePaymentRun, AppError> {
    let path = group_path(state, group_id).await?;
    caller.allow(Action::InsuranceSettle, &path).await?;
    Ok(state
        .store
        .run_case_payment(
            &caller.actor,
            path,
            year,
            fund,
            month,
            reason,
            medgrid_store::local_now().date(),
        )
        .await?)
}

pub async fn runs(
    state: &AppState,
    caller: &Caller,
    group_id: Id,
    year: i32,
    fund: &str,
) -> Result<Vec<CasePaymentRun>, AppError> {
    caller
        .allow(Action::ReportRead, &group_path(state, group_id).await?)
        .await?;
    Ok(state.store.case_payment_runs(group_id, year, fund).await?)
}

/// A run with what each member unit earned in it.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    pub run: CasePaymentRun,
    pub units: Vec<UnitPayment>,
    pub rule_text: String,
}

async fn allowed_run(
    state: &AppState,
    caller: &Caller,
    id: Id,
) -> Result<(CasePaymentRun, OrgPath), AppError> {
    let run = state.store.case_payment_run(id).await?;
    let path = group_path(state, run.group_id).await?;
    caller.allow(Action::ReportRead, &path).await?;
    Ok((run, path))
}

pub async fn view(state: &AppState, caller: &Caller, id: Id) -> Result<RunView, AppError> {
    let (run, _) = allowed_run(state, caller, id).await?;
    let units = state.store.case_payment_units(id).await?;
    let rule_text = medgrid_domain::insurance::dip::describe(&run.rule);
    Ok(RunView {
        run,
        units,
        rule_text,
    })
}

/// `high`, `low` or `normal`; anything else is refused by name.
pub fn branch(raw: Option<&str>) -> Result<Option<Branch>, AppError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some("high") => Ok(Some(Branch::High)),
        Some("low") => Ok(Some(Branch::Low)),
        Some("normal") => Ok(Some(Branch::Normal)),
        Some(_) => Err(AppError::Invalid(medgrid_domain::Invalid::one(
            medgrid_domain::FieldError::new(
                "branch",
                "unknown",
                "病例类型须为 high（高倍率）、low（低倍率）或 normal（正常）",
                "must be high, low or normal",
            ),
        ))),
    }
}

pub async fn cases(
    state: &AppState,
    caller: &Caller,
    id: Id,
    branch: Option<Branch>,
    limit: i64,
    offset: i64,
) -> Result<CasePage, AppError> {
    let (_, path) = allowed_run(state, caller, id).await?;
    let page = state.store.case_payments(id, branch, limit, offset).await?;
    caller
        .audit_read(
            "insurance.case_payment.cases.read",
            "CasePaymentRun",
            id.to_string(),
            path,
        )
        .await?;
    Ok(page)
}

/// One case with the steps behind its payment.
#[derive(Debug, Clone, Serialize)]
pub struct TracedCase {
    pub run_id: Id,
    pub case: CasePaymentRow,
    pub unit_name: Option<String>,
    pub steps: Vec<Step>,
}

pub async fn traced(
    state: &AppState,
    caller: &Caller,
    id: Id,
    claim_id: Id,
) -> Result<TracedCase, AppError> {
    let (run, path) = allowed_run(state, caller, id).await?;
    let case = state.store.case_payment(id, claim_id).await?;
    caller
        .audit_read(
            "insurance.case_payment.case.read",
            "Claim",
            claim_id.to_string(),
            path,
        )
        .await?;
    let unit_name = match case.unit_id {
        Some(u) => Some(state.store.unit(u).await?.legal_name),
        None => None,
    };
    Ok(TracedCase {
        run_id: id,
        steps: case_payment::trace(&run, &case),
        case,
        unit_name,
    })
}

/// A run as a workbook: the run's figures, each member unit's statement, every case with the
/// numbers it was paid from. Reading the cases is audited like any read of them.
pub async fn run_download(
    state: &AppState,
    caller: &Caller,
    id: Id,
) -> Result<axum::response::Response, AppError> {
    let view = view(state, caller, id).await?;
    let group = state.store.group(view.run.group_id).await?;
    let mut cases = Vec::with_capacity(usize::try_from(view.run.cases).unwrap_or(0));
    loop {
        let page = state
            .store
            .case_payments(id, None, 500, cases.len() as i64)
            .await?;
        if page.cases.is_empty() {
            break;
        }
        cases.extend(page.cases);
    }
    caller
        .audit_read(
            "insurance.case_payment.cases.read",
            "CasePaymentRun",
            id.to_string(),
            group.path(),
        )
        .await?;
    let bytes =
        run_xlsx(&view, &group.name, &cases).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(crate::api::indicators::download(
        bytes,
        crate::api::indicators::XLSX,
        &format!(
            "dip-{}-{}-{:02}-{}.xlsx",
            view.run.group_id, view.run.year, view.run.month, view.run.seq
        ),
    ))
}

fn run_xlsx(
    view: &RunView,
    group_name: &str,
    cases: &[CasePaymentRow],
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use medgrid_domain::insurance::case_payment::show_points;
    use rust_xlsxwriter::{Format, Workbook};
    let r = &view.run;
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let money = Format::new().set_num_format("#,##0.00");
    let yuan = |fen: i64| fen as f64 / 100.0;
    let period = if r.month == 0 {
        format!("{} 年度年终决算", r.year)
    } else {
        format!("{} 年 {} 月预结算", r.year, r.month)
    };
    let sheet = book.add_worksheet().set_name("汇总")?;
    sheet.write_string_with_format(
        0,
        0,
        format!("{group_name} · 病种分值付费 · {period}（第 {} 版）", r.seq),
        &bold,
    )?;
    let figures = [
        ("期间预算（元）", yuan(r.budget)),
        ("住院基金（元）", yuan(r.pool)),
        ("调节金（元）", yuan(r.reserve)),
        ("病例数", r.cases as f64),
        ("全部病例均费（元）", yuan(r.all_mean)),
        ("总分值", r.total_points as f64 / 10_000.0),
        ("点值（元/分）", yuan(r.fen_per_point)),
        ("病例付费合计（元）", yuan(r.gross)),
        ("医保基金支付（元）", yuan(r.paid)),
    ];
    for (i, (label, value)) in figures.iter().enumerate() {
        sheet.write_string(2 + i as u32, 0, *label)?;
        sheet.write_number_with_format(2 + i as u32, 1, *value, &money)?;
    }
    sheet.write_string(
        3 + figures.len() as u32,
        0,
        format!("参数：{}", view.rule_text),
    )?;
    sheet.set_column_width(0, 28)?;
    sheet.set_column_width(1, 20)?;

    let units = book.add_worksheet().set_name("成员单位")?;
    for (c, h) in [
        "机构",
        "病例数",
        "病例分值合计",
        "医疗总费用",
        "病例付费",
        "医保基金支付",
    ]
    .iter()
    .enumerate()
    {
        units.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    for (i, u) in view.units.iter().enumerate() {
        let row = 1 + i as u32;
        units.write_string(row, 0, &u.unit_name)?;
        units.write_number(row, 1, u.cases as f64)?;
        units.write_string(row, 2, show_points(u.points))?;
        for (c, v) in [u.cost, u.gross, u.paid].iter().enumerate() {
            units.write_number_with_format(row, 3 + c as u16, yuan(*v), &money)?;
        }
    }
    units.set_column_width(0, 36)?;

    let sheet = book.add_worksheet().set_name("病例")?;
    for (c, h) in [
        "结算单",
        "病种",
        "级别",
        "总费用",
        "病种分值",
        "同级均费",
        "费用比",
        "类型",
        "病例分值",
        "级别系数",
        "病例付费",
        "患者自付",
        "基金支付",
    ]
    .iter()
    .enumerate()
    {
        sheet.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    for (i, c) in cases.iter().enumerate() {
        let row = 1 + i as u32;
        let x = &c.result;
        sheet.write_number(row, 0, c.claim_id as f64)?;
        sheet.write_string(row, 1, &c.dip_group)?;
        sheet.write_string(row, 2, &c.level)?;
        sheet.write_number_with_format(row, 3, yuan(c.cost), &money)?;
        sheet.write_string(row, 4, show_points(x.group_points))?;
        sheet.write_number_with_format(row, 5, yuan(x.level_average), &money)?;
        sheet.write_number(row, 6, x.case.ratio as f64 / 1_000_000.0)?;
        sheet.write_string(row, 7, format!("{:?}", x.case.branch).to_lowercase())?;
        sheet.write_string(row, 8, show_points(x.case.points))?;
        sheet.write_number(row, 9, x.coefficient as f64 / 1_000_000.0)?;
        for (k, v) in [x.gross, x.self_paid, x.paid].iter().enumerate() {
            sheet.write_number_with_format(row, 10 + k as u16, yuan(*v), &money)?;
        }
    }
    book.save_to_buffer()
}
