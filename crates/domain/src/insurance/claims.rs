//! Claims as the insurance bureau sends them (R9): a CSV file with the columns of the
//! synthetic city's `claims.csv` (see docs/insurance.md), amounts in yuan with at most two
//! decimals. Reading checks each line on its own — numbers, codes, dates, and that the
//! amounts agree with each other — and reports every problem with its line and column;
//! whether the encounters, residents and units exist is the store's to check.

use std::collections::HashSet;

use chrono::NaiveDate;

use super::budget::Fund;
use super::{hundredths, Fen};
use crate::error::{FieldError, Invalid};
use crate::table_file::{read_rows, Row};

const REQUIRED: &[&str] = &[
    "claim_id",
    "encounter_id",
    "resident_id",
    "group_code",
    "fund",
    "kind",
    "level",
    "in_group",
    "total",
    "eligible",
    "deductible",
    "insurance_paid",
    "self_paid",
    "settled_on",
];

const OPTIONAL: &[&str] = &["unit_code", "dip_group", "los_days"];

pub const KINDS: &[&str] = &["outpatient", "emergency", "inpatient"];
pub const LEVELS: &[&str] = &[
    "tertiary",
    "secondary",
    "primary",
    "unrated",
    "out_of_region",
];

/// One claim line, read and checked on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimLine {
    pub line: usize,
    pub claim_id: i64,
    pub encounter_id: i64,
    pub resident_id: i64,
    pub group_code: String,
    pub unit_code: Option<String>,
    pub fund: Fund,
    pub kind: String,
    pub level: String,
    pub in_group: bool,
    pub dip_group: Option<String>,
    pub los_days: Option<i64>,
    pub total: Fen,
    pub eligible: Fen,
    pub deductible: Fen,
    pub insurance_paid: Fen,
    pub self_paid: Fen,
    pub settled_on: NaiveDate,
}

struct Checker<'a> {
    row: &'a Row<'a>,
    problems: &'a mut Invalid,
}

impl Checker<'_> {
    fn bad(&mut self, column: &str, code: &'static str, zh: &str, en: &str) {
        self.problems
            .push(FieldError::new(self.row.field(column), code, zh, en));
    }

    fn id(&mut self, column: &str) -> i64 {
        match self.row.get(column).parse::<i64>() {
            Ok(v) if v > 0 => v,
            _ => {
                self.bad(
                    column,
                    "invalid",
                    "须为正整数",
                    "must be a positive whole number",
                );
                0
            }
        }
    }

    fn money(&mut self, column: &str) -> Fen {
        match hundredths(self.row.get(column)) {
            Some(v) => v,
            None => {
                self.bad(
                    column,
                    "invalid",
                    "须为不小于 0 的金额（元，最多两位小数）",
                    "must be an amount in yuan, not negative, with at most two decimals",
                );
                0
            }
        }
    }

    fn optional(&self, column: &str) -> Option<String> {
        Some(self.row.get(column).to_owned()).filter(|s| !s.is_empty())
    }
}

/// Reads a claims file: every line, or every problem.
pub fn parse_claims(bytes: &[u8]) -> Result<Vec<ClaimLine>, Invalid> {
    let (lines, problems) = read_claims(bytes)?;
    problems.into_result(lines)
}

/// Reads a claims file as far as it can: the lines that could be read (some with problems
/// of their own) and every line's problems, so that checks against the database can add
/// theirs to one report. A file that cannot be read at all is the error.
pub fn read_claims(bytes: &[u8]) -> Result<(Vec<ClaimLine>, Invalid), Invalid> {
    let rows = read_rows(bytes, REQUIRED, OPTIONAL)?;
    let mut problems = Invalid::default();
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut c = Checker {
            row,
            problems: &mut problems,
        };
        let claim_id = c.id("claim_id");
        let encounter_id = c.id("encounter_id");
        let resident_id = c.id("resident_id");
        let group_code = row.get("group_code").to_owned();
        if group_code.is_empty() {
            c.bad("group_code", "required", "不能为空", "must not be empty");
        }
        let fund = Fund::parse(row.get("fund"));
        if fund.is_none() {
            c.bad(
                "fund",
                "unknown",
                "须为 employee（职工医保）或 resident（城乡居民医保）",
                "must be employee or resident",
            );
        }
        let kind = row.get("kind").to_owned();
        if !KINDS.contains(&kind.as_str()) {
            c.bad(
                "kind",
                "unknown",
                "须为 outpatient、emergency 或 inpatient",
                "must be outpatient, emergency or inpatient",
            );
        }
        let level = row.get("level").to_owned();
        if !LEVELS.contains(&level.as_str()) {
            c.bad(
                "level",
                "unknown",
                "须为 tertiary、secondary、primary、unrated 或 out_of_region",
                "must be tertiary, secondary, primary, unrated or out_of_region",
            );
        }
        let in_group = match row.get("in_group") {
            "1" | "true" => true,
            "0" | "false" => false,
            _ => {
                c.bad("in_group", "invalid", "须为 1 或 0", "must be 1 or 0");
                false
            }
        };
        let unit_code = c.optional("unit_code");
        if in_group && unit_code.is_none() {
            c.bad(
                "unit_code",
                "required",
                "集团内就医须注明机构编码",
                "a claim inside the group names its unit",
            );
        }
        let dip_group = c.optional("dip_group");
        let los_days = match c.optional("los_days") {
            None => None,
            Some(raw) => match raw.parse::<i64>() {
                Ok(d) if d >= 1 => Some(d),
                _ => {
                    c.bad(
                        "los_days",
                        "invalid",
                        "住院天数须为正整数",
                        "must be a positive whole number of days",
                    );
                    None
                }
            },
        };
        if kind == "inpatient" && (dip_group.is_none() || los_days.is_none()) {
            c.bad(
                "dip_group",
                "required",
                "住院病例须有 DIP 病种与住院天数",
                "an inpatient case needs its DIP group and length of stay",
            );
        }
        if kind != "inpatient" && (dip_group.is_some() || los_days.is_some()) {
            c.bad(
                "dip_group",
                "not_inpatient",
                "门急诊结算不应有 DIP 病种或住院天数",
                "an outpatient or emergency claim has no DIP group or length of stay",
            );
        }
        let total = c.money("total");
        let eligible = c.money("eligible");
        let deductible = c.money("deductible");
        let insurance_paid = c.money("insurance_paid");
        let self_paid = c.money("self_paid");
        if eligible > total {
            c.bad(
                "eligible",
                "above_total",
                "政策范围内费用不能超过总费用",
                "cannot exceed the total",
            );
        }
        if deductible > eligible {
            c.bad(
                "deductible",
                "above_eligible",
                "起付线不能超过政策范围内费用",
                "cannot exceed the eligible amount",
            );
        }
        if insurance_paid + self_paid != total {
            c.bad(
                "self_paid",
                "does_not_add_up",
                "基金支付与个人自付之和须等于总费用",
                "insurance paid and self paid must add up to the total",
            );
        }
        let settled_on = NaiveDate::parse_from_str(row.get("settled_on"), "%Y-%m-%d");
        if settled_on.is_err() {
            c.bad(
                "settled_on",
                "invalid",
                "须为日期 YYYY-MM-DD",
                "must be a date YYYY-MM-DD",
            );
        }
        if claim_id > 0 && !seen.insert(claim_id) {
            c.bad(
                "claim_id",
                "duplicate",
                "文件中重复的结算单号",
                "repeated in the file",
            );
        }
        if let (Some(fund), Ok(settled_on)) = (fund, settled_on) {
            out.push(ClaimLine {
                line: row.line,
                claim_id,
                encounter_id,
                resident_id,
                group_code,
                unit_code,
                fund,
                kind,
                level,
                in_group,
                dip_group,
                los_days,
                total,
                eligible,
                deductible,
                insurance_paid,
                self_paid,
                settled_on,
            });
        }
    }
    Ok((out, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "claim_id,encounter_id,resident_id,group_code,unit_code,fund,kind,level,in_group,dip_group,los_days,total,eligible,deductible,insurance_paid,self_paid,settled_on\n";

    #[test]
    fn a_generated_file_reads_as_written() {
        let file = format!(
            "{HEADER}1,1,1,G1,U1,employee,outpatient,primary,1,,,393.18,357.05,0.00,249.94,143.24,2025-01-30\n\
             2,5,1,G1,U2,resident,inpatient,tertiary,1,I21.0:pci,7,52000.5,48000,1200,30000,22000.50,2025-03-02\n\
             3,9,2,G1,,resident,outpatient,out_of_region,0,,,100,90,0,60,40,2025-12-31\n"
        );
        let lines = parse_claims(file.as_bytes()).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].total, 39_318);
        assert_eq!(lines[1].total, 5_200_050);
        assert_eq!(lines[1].dip_group.as_deref(), Some("I21.0:pci"));
        assert_eq!(lines[1].line, 3);
        assert!(!lines[2].in_group && lines[2].unit_code.is_none());
    }

    #[test]
    fn every_problem_is_named_with_its_line_and_column() {
        let file = format!(
            "{HEADER}0,1,1,G1,U1,gold,outpatient,primary,1,,,-5,1,0,1,1,2025-13-01\n\
             2,1,1,G1,,employee,inpatient,primary,1,,,10,11,12,5,4,2025-01-01\n\
             2,1,1,G1,U1,employee,outpatient,primary,1,X,2,10,10,0,5,5,2025-01-01\n"
        );
        let err = parse_claims(file.as_bytes()).unwrap_err();
        let fields: Vec<&str> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "line 2: claim_id",
                "line 2: fund",
                "line 2: total",
                "line 2: eligible",
                "line 2: self_paid",
                "line 2: settled_on",
                "line 3: unit_code",
                "line 3: dip_group",
                "line 3: eligible",
                "line 3: deductible",
                "line 3: self_paid",
                "line 4: dip_group",
                "line 4: claim_id",
            ]
        );
    }

    #[test]
    fn a_missing_column_is_named_before_any_line() {
        let err = parse_claims(b"claim_id,encounter_id\n1,2\n").unwrap_err();
        assert!(err
            .0
            .iter()
            .any(|e| e.field == "line 1: total" && e.code == "missing_column"));
    }
}
