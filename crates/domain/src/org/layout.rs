//! The city layout file (docs/layout-format.md): one CSV, one row per city, grid, group or
//! unit. Parsing reports every problem with its line, resolves references, and applies the
//! layout rules; a file with any error yields no layout at all.

use std::collections::HashMap;

use super::rules::{check_layout, Severity};
use super::{CitySnapshot, CrossGridService, GridRef, GroupRef, Level, MemberRole, UnitRef};
use crate::codes::{DivisionCode, Uscc};
use crate::error::{optional_text, text, FieldError, Invalid};
use crate::org::entity::{code, UnitInput, MAX_NAME, MAX_NOTE};
use crate::table_file::{read_rows, whole_file, Row};

#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub city: CityRow,
    pub grids: Vec<GridRow>,
    pub groups: Vec<GroupRow>,
    pub units: Vec<UnitRow>,
    /// Rule warnings and suspect check characters: shown, not refused.
    pub warnings: Vec<FieldError>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CityRow {
    pub line: usize,
    pub code: String,
    pub name: String,
    pub division_code: DivisionCode,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GridRow {
    pub line: usize,
    pub code: String,
    pub name: String,
    pub city_code: String,
    pub division_code: DivisionCode,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub line: usize,
    pub code: String,
    pub name: String,
    pub grid_code: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UnitRow {
    pub line: usize,
    pub code: String,
    pub name: String,
    pub second_name: Option<String>,
    pub group_code: Option<String>,
    /// The grid of its group; `None` for units outside any group.
    pub grid_code: Option<String>,
    pub under_code: Option<String>,
    pub role: MemberRole,
    pub level: Level,
    pub division_code: Option<DivisionCode>,
    pub uscc: Option<Uscc>,
    pub beds: Option<i64>,
    pub public: bool,
    pub services: Vec<CrossGridService>,
    pub note: Option<String>,
}

const REQUIRED: &[&str] = &[
    "kind",
    "code",
    "name",
    "parent",
    "role",
    "level",
    "division_code",
];
const OPTIONAL: &[&str] = &[
    "second_name",
    "under",
    "uscc",
    "beds",
    "public",
    "services",
    "note",
];

/// A unit row, validated exactly as a unit entered through the API or UI
/// ([`UnitInput::validate`]); the file adds only the cells a form does not have.
fn unit_row(
    row: &Row<'_>,
    parent: String,
    inv: &mut Invalid,
    warnings: &mut Vec<FieldError>,
) -> Option<UnitRow> {
    let before = inv.0.len();
    let beds = match row.get("beds") {
        "" => None,
        raw => match raw.parse::<i64>() {
            Ok(b) => Some(b),
            Err(_) => {
                inv.push(FieldError::new(
                    row.field("beds"),
                    "format",
                    "床位数须为整数",
                    "beds must be a whole number",
                ));
                None
            }
        },
    };
    let public = match row.get("public") {
        "" | "是" | "公立" => true,
        "否" | "非公立" => false,
        t if t.eq_ignore_ascii_case("true") => true,
        f if f.eq_ignore_ascii_case("false") => false,
        other => {
            inv.push(FieldError::new(
                row.field("public"),
                "unknown_value",
                format!("“{other}”无法识别，请填 true/false 或 是/否"),
                format!("'{other}' is not true/false"),
            ));
            true
        }
    };
    let mut services = Vec::new();
    for s in row
        .get("services")
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if let Some(v) =
            inv.check(CrossGridService::parse(s).map_err(|e| e.renamed(row.field("services"))))
        {
            services.push(v);
        }
    }
    let input = UnitInput {
        code: row.get("code").to_owned(),
        legal_name: row.get("name").to_owned(),
        second_name: row.get("second_name").to_owned(),
        role: row.get("role").to_owned(),
        level: row.get("level").to_owned(),
        group_id: None,
        parent_unit_id: None,
        division_code: row.get("division_code").to_owned(),
        uscc: row.get("uscc").to_owned(),
        beds,
        public,
        note: row.get("note").to_owned(),
    };
    let draft = match input.validate() {
        Ok(d) => Some(d),
        Err(errors) => {
            // Code and name were checked with every row; the rest is reported by its column.
            for e in errors
                .0
                .into_iter()
                .filter(|e| e.field != "code" && e.field != "legal_name")
            {
                let column = e.field.clone();
                inv.push(e.renamed(row.field(&column)));
            }
            None
        }
    };
    let draft = draft.filter(|_| inv.0.len() == before)?;
    if let Some(w) = draft.uscc_warning {
        warnings.push(w.renamed(row.field("uscc")));
    }
    Some(UnitRow {
        line: row.line,
        code: draft.code,
        name: draft.legal_name,
        second_name: draft.second_name,
        group_code: Some(parent),
        grid_code: None,
        under_code: Some(row.get("under").to_owned()).filter(|u| !u.is_empty()),
        role: draft.role,
        level: draft.level,
        division_code: draft.division_code,
        uscc: draft.uscc,
        beds: draft.beds,
        public: draft.public,
        services,
        note: draft.note,
    })
}

/// Parses a layout file. All problems are reported at once; any error means no layout.
pub fn parse_layout(bytes: &[u8]) -> Result<Layout, Invalid> {
    let rows = read_rows(bytes, REQUIRED, OPTIONAL)?;
    let mut inv = Invalid::default();
    let mut warnings = Vec::new();
    let mut cities = Vec::new();
    let mut grids = Vec::new();
    let mut groups = Vec::new();
    let mut units = Vec::new();
    let mut seen: HashMap<String, (usize, &'static str)> = HashMap::new();

    for row in &rows {
        let kind = row.get("kind");
        let kind: &'static str = match kind {
            "city" => "city",
            "grid" => "grid",
            "group" => "group",
            "unit" => "unit",
            other => {
                inv.push(FieldError::new(
                    row.field("kind"),
                    "unknown_value",
                    format!("未知类型“{other}”，可选：city、grid、group、unit"),
                    format!("unknown kind '{other}'; expected city, grid, group or unit"),
                ));
                continue;
            }
        };
        let code = inv.check(code(&row.field("code"), row.get("code")));
        let name = inv.check(text(&row.field("name"), row.get("name"), MAX_NAME));
        if let Some(c) = &code {
            if let Some((first, _)) = seen.get(c) {
                inv.push(FieldError::new(
                    row.field("code"),
                    "duplicate",
                    format!("编码“{c}”与第 {first} 行重复"),
                    format!("code '{c}' is already used on line {first}"),
                ));
            } else {
                seen.insert(c.clone(), (row.line, kind));
            }
        }
        if kind != "unit" {
            // A unit's note is checked with the rest of the unit.
            inv.check(optional_text(&row.field("note"), row.get("note"), MAX_NOTE));
        }
        let parent = row.get("parent").to_owned();
        match kind {
            "city" | "grid" => {
                let division = inv.check(DivisionCode::parse(
                    &row.field("division_code"),
                    row.get("division_code"),
                ));
                if let (Some(code), Some(name), Some(division_code)) = (code, name, division) {
                    if kind == "city" {
                        cities.push(CityRow {
                            line: row.line,
                            code,
                            name,
                            division_code,
                        });
                    } else {
                        grids.push(GridRow {
                            line: row.line,
                            code,
                            name,
                            city_code: parent,
                            division_code,
                        });
                    }
                }
            }
            "group" => {
                if let (Some(code), Some(name)) = (code, name) {
                    groups.push(GroupRow {
                        line: row.line,
                        code,
                        name,
                        grid_code: parent,
                    });
                }
            }
            _ => {
                if let Some(unit) = unit_row(row, parent, &mut inv, &mut warnings) {
                    if code.is_some() && name.is_some() {
                        units.push(unit);
                    }
                }
            }
        }
    }

    // References: each row's parent must be a row of the right kind.
    let kind_of = |code: &str| seen.get(code).map(|(line, kind)| (*line, *kind));
    let reference =
        |inv: &mut Invalid, line: usize, column: &str, target: &str, expected: &[&str]| -> bool {
            if target.is_empty() {
                inv.push(FieldError::required(format!("line {line}: {column}")));
                return false;
            }
            match kind_of(target) {
                Some((_, kind)) if expected.contains(&kind) => true,
                Some((at, kind)) => {
                    inv.push(FieldError::new(
                        format!("line {line}: {column}"),
                        "reference_kind",
                        format!(
                            "“{target}”是第 {at} 行的{kind}，此处须引用 {}",
                            expected.join("/")
                        ),
                        format!(
                            "'{target}' is the {kind} on line {at}; expected a {}",
                            expected.join(" or ")
                        ),
                    ));
                    false
                }
                None => {
                    inv.push(FieldError::new(
                        format!("line {line}: {column}"),
                        "reference",
                        format!("引用的编码“{target}”不存在"),
                        format!("no row has the code '{target}'"),
                    ));
                    false
                }
            }
        };
    // Counted over rows, not parsed cities, so that a city row with a bad cell is reported
    // for that cell only.
    let city_rows = rows.iter().filter(|r| r.get("kind") == "city").count();
    if city_rows != 1 {
        inv.push(FieldError::new(
            "file",
            "city_count",
            format!("文件须恰好包含 1 个城市，实际 {city_rows} 个"),
            format!("the file must hold exactly one city; it holds {city_rows}"),
        ));
    }
    for g in &grids {
        reference(&mut inv, g.line, "parent", &g.city_code, &["city"]);
    }
    for g in &groups {
        reference(&mut inv, g.line, "parent", &g.grid_code, &["grid"]);
    }
    let grid_of_group: HashMap<&str, &str> = groups
        .iter()
        .map(|g| (g.code.as_str(), g.grid_code.as_str()))
        .collect();
    let mut member_at: HashMap<(String, String), usize> = HashMap::new();
    for u in &mut units {
        let parent = u.group_code.take().unwrap_or_default();
        if reference(&mut inv, u.line, "parent", &parent, &["group", "city"])
            && kind_of(&parent).map(|k| k.1) == Some("group")
        {
            u.grid_code = grid_of_group.get(parent.as_str()).map(|g| (*g).to_owned());
            u.group_code = Some(parent);
        }
        if let Some(under) = &u.under_code {
            reference(&mut inv, u.line, "under", under, &["unit"]);
        }
        // The same unit listed twice: in one group a duplicate line, in two groups a unit
        // claimed by both.
        for (other_group, at) in member_at
            .iter()
            .filter(|((n, _), _)| *n == u.name)
            .map(|((_, g), at)| (g.clone(), *at))
            .collect::<Vec<_>>()
        {
            let here = u.group_code.clone().unwrap_or_default();
            if other_group == here {
                inv.push(FieldError::new(
                    format!("line {}: name", u.line),
                    "duplicate_unit",
                    format!("“{}”已在第 {at} 行列出（重复行）", u.name),
                    format!(
                        "'{}' is already listed on line {at} (a duplicated line)",
                        u.name
                    ),
                ));
            } else {
                inv.push(FieldError::new(
                    format!("line {}: parent", u.line),
                    "member_in_two_groups",
                    format!("“{}”已在第 {at} 行列入另一医疗集团：同一成员单位不能属于两个医疗集团", u.name),
                    format!("'{}' is already a member of another group (line {at}): a member in two groups is not allowed", u.name),
                ));
            }
        }
        member_at.insert(
            (u.name.clone(), u.group_code.clone().unwrap_or_default()),
            u.line,
        );
    }
    // The store keeps `under` as a tree, so a loop of any length (not just a unit under
    // itself) would leave units that no walk up the tree ever finishes.
    let under_of: HashMap<&str, &str> = units
        .iter()
        .filter_map(|u| Some((u.code.as_str(), u.under_code.as_deref()?)))
        .collect();
    for u in &units {
        let mut at = u.under_code.as_deref();
        for _ in 0..units.len() {
            match at {
                Some(c) if c == u.code => {
                    inv.push(FieldError::new(
                        format!("line {}: under", u.line),
                        "cycle",
                        format!("“{}”的隶属关系形成循环（最终隶属于自身）", u.name),
                        format!("'{}' is, through its `under` chain, under itself", u.name),
                    ));
                    break;
                }
                Some(c) => at = under_of.get(c).copied(),
                None => break,
            }
        }
    }
    if !inv.is_empty() {
        return Err(inv);
    }
    let Some(city) = cities.into_iter().next() else {
        return Err(whole_file(
            "city_count",
            "文件须恰好包含 1 个城市",
            "the file must hold exactly one city",
        ));
    };
    let mut layout = Layout {
        city,
        grids,
        groups,
        units,
        warnings,
    };
    // A finding names its subject by code (the city by name); the row's line lets people find
    // it in the file, and the rule id stays in the field so it can be looked up in the doc.
    let line_of = |subject: &str| {
        seen.get(subject)
            .map_or(layout.city.line, |(line, _)| *line)
    };
    let mut rule_warnings = Vec::new();
    for f in check_layout(&layout.snapshot()) {
        let e = FieldError::new(
            format!("line {}: {}", line_of(&f.subject), f.rule),
            "layout_rule",
            f.message_zh,
            f.message_en,
        );
        match f.severity {
            Severity::Error => inv.push(e),
            Severity::Warning => rule_warnings.push(e),
        }
    }
    if !inv.is_empty() {
        return Err(inv);
    }
    layout.warnings.extend(rule_warnings);
    Ok(layout)
}

impl Layout {
    /// The layout as the rules see it; ids are the file's codes.
    pub fn snapshot(&self) -> CitySnapshot {
        CitySnapshot {
            city_name: self.city.name.clone(),
            grids: self
                .grids
                .iter()
                .map(|g| GridRef {
                    id: g.code.clone(),
                    name: g.name.clone(),
                })
                .collect(),
            groups: self
                .groups
                .iter()
                .map(|g| GroupRef {
                    id: g.code.clone(),
                    name: g.name.clone(),
                    grid_id: g.grid_code.clone(),
                })
                .collect(),
            units: self
                .units
                .iter()
                .map(|u| UnitRef {
                    id: u.code.clone(),
                    name: u.name.clone(),
                    role: u.role,
                    level: u.level,
                    public: u.public,
                    grid_id: u.grid_code.clone(),
                    group_id: u.group_code.clone(),
                    parent_unit_id: u.under_code.clone(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JINHUA: &[u8] = include_bytes!("../../../../data/layouts/jinhua.csv");
    const HEADER: &str = "kind,code,name,second_name,parent,under,role,level,division_code,uscc,beds,public,services,note\n";

    fn small(extra_units: &str) -> String {
        format!(
            "{HEADER}city,C,测试市,,,,,,330100,,,,,\n\
             grid,GA,甲区,,C,,,,330102,,,,,\n\
             grid,GB,乙区,,C,,,,330105,,,,,\n\
             group,G1,甲集团,,GA,,,,,,,,,\n\
             group,G2,乙集团,,GB,,,,,,,,,\n\
             unit,L1,甲医院,,G1,,lead,tertiary,,,,,,\n\
             unit,L2,乙医院,,G2,,lead,tertiary,,,,,,\n{extra_units}"
        )
    }

    fn error_fields(input: &str) -> Vec<String> {
        parse_layout(input.as_bytes())
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn the_jinhua_layout_matches_the_seed() {
        let l = parse_layout(JINHUA).unwrap();
        assert_eq!(l.city.name, "金华市");
        assert_eq!(l.city.division_code.as_str(), "330700");
        assert_eq!(l.grids.len(), 3);
        assert_eq!(l.groups.len(), 3);
        let in_group = |g: &str, role: MemberRole| -> Vec<&str> {
            l.units
                .iter()
                .filter(|u| u.group_code.as_deref() == Some(g) && u.role == role)
                .map(|u| u.name.as_str())
                .collect()
        };
        assert_eq!(in_group("JH-G-WC", MemberRole::Lead), ["金华市人民医院"]);
        assert_eq!(
            in_group("JH-G-JD", MemberRole::Lead),
            ["金华市中心医院金义院区"]
        );
        assert_eq!(in_group("JH-G-KFQ", MemberRole::Lead), ["金华市中心医院"]);
        assert_eq!(
            in_group("JH-G-WC", MemberRole::Secondary),
            ["婺城区人民医院"]
        );
        assert_eq!(
            in_group("JH-G-KFQ", MemberRole::Secondary),
            ["婺城区第一人民医院"]
        );
        // Community centres and township hospitals of annex 1, counted by hand from the seed:
        // lines 130–149 less the blank line 142 and the duplicate line 140 give 18 for 婺城区,
        // lines 150–164 less the blank line 158 give 14 for 金东区, lines 165–173 give 9 for
        // 金华开发区.
        assert_eq!(in_group("JH-G-WC", MemberRole::Primary).len(), 18);
        assert_eq!(in_group("JH-G-JD", MemberRole::Primary).len(), 14);
        assert_eq!(in_group("JH-G-KFQ", MemberRole::Primary).len(), 9);
        // By level, 曹宅 ("同时为二级医院") is the one of them that is not primary-level.
        let primary_level = |g: &str| {
            l.units
                .iter()
                .filter(|u| u.group_code.as_deref() == Some(g) && u.level == Level::Primary)
                .count()
        };
        assert_eq!(primary_level("JH-G-WC"), 18);
        assert_eq!(primary_level("JH-G-JD"), 13);
        assert_eq!(primary_level("JH-G-KFQ"), 9);
        assert_eq!(
            l.units
                .iter()
                .filter(|u| u.name == "婺城区箬阳乡卫生院")
                .count(),
            1
        );
        let caozhai = l
            .units
            .iter()
            .find(|u| u.name == "金东区曹宅镇中心卫生院")
            .unwrap();
        assert_eq!(
            (caozhai.role, caozhai.level),
            (MemberRole::Primary, Level::Secondary)
        );
        let jinyi = l.units.iter().find(|u| u.code == "JH-ZXYY-JY").unwrap();
        assert_eq!(jinyi.under_code.as_deref(), Some("JH-ZXYY"));
        assert_eq!(jinyi.grid_code.as_deref(), Some("JH-JD"));
        let outside: Vec<(&str, &[CrossGridService])> = l
            .units
            .iter()
            .filter(|u| u.group_code.is_none())
            .map(|u| (u.name.as_str(), u.services.as_slice()))
            .collect();
        let tcm: &[CrossGridService] = &[CrossGridService::TcmAlliance];
        let mch: &[CrossGridService] = &[CrossGridService::MaternalChild];
        assert_eq!(
            outside,
            [
                ("金华市中医医院", tcm),
                ("婺城区中医医院", tcm),
                ("金东区中医医院", tcm),
                ("金华市妇幼保健院", mch)
            ]
        );
        for u in l.units.iter().filter(|u| u.group_code.is_none()) {
            assert_eq!(u.grid_code, None, "{} serves across grids", u.name);
        }
        // Nothing the seed does not say: no codes, beds or second names; all public.
        assert!(l
            .units
            .iter()
            .all(|u| u.public && u.uscc.is_none() && u.beds.is_none() && u.second_name.is_none()));
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    }

    #[test]
    fn a_missing_column_is_named() {
        let err = parse_layout(b"kind,code,name,parent,role,level\ncity,C,x,,,\n").unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].field, "line 1: division_code");
        assert_eq!(err.0[0].code, "missing_column");
    }

    #[test]
    fn gbk_bytes_get_a_clear_message() {
        let mut bytes = HEADER.as_bytes().to_vec();
        // "金华" in GBK.
        bytes.extend_from_slice(b"city,C,");
        bytes.extend_from_slice(&[0xBD, 0xF0, 0xBB, 0xAA]);
        bytes.extend_from_slice(b",,,,,,330100,,,,,\n");
        let err = parse_layout(&bytes).unwrap_err();
        assert_eq!(err.0.len(), 1, "one message, not one per cell: {err:?}");
        let e = &err.0[0];
        assert_eq!((e.field.as_str(), e.code), ("file", "encoding"));
        assert!(e.message_en.contains("not UTF-8") && e.message_en.contains("GB18030"));
        assert!(e.message_en.contains("line 2"));
        assert!(e.message_zh.contains("iconv -f GB18030 -t UTF-8"));
        assert!(e.message_zh.contains("第 2 行"));
    }

    #[test]
    fn blank_and_comment_lines_keep_physical_line_numbers() {
        let input = format!(
            "# a comment\n\n{}\n\nunit,U9,坏单位,,G1,,duke,primary,,,,,,\n",
            small("").trim_end()
        );
        // Line 1 comment, 2 blank, 3 header, 4–10 rows, 11 blank, 12 the bad unit.
        assert_eq!(error_fields(&input), ["line 12: role"]);
        assert!(parse_layout(format!("# c\n\n{}", small("")).as_bytes()).is_ok());
    }

    #[test]
    fn a_second_lead_in_a_group_is_refused() {
        let err = parse_layout(small("unit,L3,丙医院,,G1,,lead,tertiary,,,,,,\n").as_bytes())
            .unwrap_err();
        assert_eq!(err.0.len(), 1);
        // The group's line, and the rule by its id.
        assert_eq!(err.0[0].field, "line 5: group_one_lead");
        assert_eq!(err.0[0].code, "layout_rule");
        assert!(err.0[0].message_zh.contains("丙医院") && err.0[0].message_zh.contains("甲医院"));
        // docs/layout-format.md quotes this very message.
        let doc = include_str!("../../../../docs/layout-format.md");
        assert!(doc.contains(&err.0[0].to_string()), "{}", err.0[0]);
    }

    #[test]
    fn a_member_in_two_groups_and_a_duplicate_line() {
        let two = small("unit,P1,某卫生院,,G1,,primary,primary,,,,,,\nunit,P2,某卫生院,,G2,,primary,primary,,,,,,\n");
        let err = parse_layout(two.as_bytes()).unwrap_err();
        assert_eq!(err.0[0].code, "member_in_two_groups");
        assert_eq!(err.0[0].field, "line 10: parent");
        assert!(err.0[0].message_en.contains("line 9"));
        let dup = small("unit,P1,某卫生院,,G1,,primary,primary,,,,,,\nunit,P2,某卫生院,,G1,,primary,primary,,,,,,\n");
        let err = parse_layout(dup.as_bytes()).unwrap_err();
        assert_eq!(
            (err.0[0].field.as_str(), err.0[0].code),
            ("line 10: name", "duplicate_unit")
        );
        assert!(err.0[0].message_zh.contains("第 9 行"));
        let code = small("unit,L1,又一个,,G1,,primary,primary,,,,,,\n");
        let err = parse_layout(code.as_bytes()).unwrap_err();
        assert_eq!(err.0[0].code, "duplicate");
        assert!(err.0[0].message_en.contains("line 7"));
    }

    #[test]
    fn bad_values_are_all_reported_with_their_lines() {
        let input = small("unit,P1,某卫生院,,G1,,boss,primary,12345,,,,,\nunit,P2,某院,,NOPE,,primary,primary,,,-3,maybe,,\n");
        assert_eq!(
            error_fields(&input),
            [
                "line 9: role",
                "line 9: division_code",
                "line 10: public",
                "line 10: beds"
            ]
        );
        let dangling = small("unit,P2,某院,,NOPE,,primary,primary,,,,,,\n");
        assert_eq!(error_fields(&dangling), ["line 9: parent"]);
        let wrong_count = small("unit,P3,少字段,,G1\n");
        assert_eq!(error_fields(&wrong_count), ["line 9"]);
    }

    #[test]
    fn uscc_malformed_is_an_error_bad_check_character_a_warning() {
        let malformed = small("unit,P1,某院,,G1,,primary,primary,,12345,,,,\n");
        assert_eq!(error_fields(&malformed), ["line 9: uscc"]);
        let division = DivisionCode::parse("d", "330702").unwrap();
        let good = Uscc::build('1', '2', &division, "47000001").unwrap();
        let mut bad = good.as_str().to_owned();
        let last = bad.pop().unwrap();
        bad.push(if last == '0' { '1' } else { '0' });
        let l = parse_layout(
            small(&format!("unit,P1,某院,,G1,,primary,primary,,{bad},,,,\n")).as_bytes(),
        )
        .unwrap();
        assert_eq!(l.warnings.len(), 1);
        assert_eq!(
            l.units
                .iter()
                .find(|u| u.code == "P1")
                .unwrap()
                .uscc
                .as_ref()
                .unwrap()
                .as_str(),
            bad
        );
    }

    #[test]
    fn metacharacters_are_kept_verbatim() {
        let name = "'; DROP TABLE unit; --<script>";
        let l = parse_layout(
            small(&format!("unit,P1,\"{name}\",,G1,,primary,primary,,,,,,\n")).as_bytes(),
        )
        .unwrap();
        assert_eq!(l.units.last().unwrap().name, name);
    }

    #[test]
    fn one_grid_is_a_warning_not_an_error() {
        let input = format!(
            "{HEADER}city,C,测试市,,,,,,330100,,,,,\ngrid,GA,甲区,,C,,,,330102,,,,,\ngroup,G1,甲集团,,GA,,,,,,,,,\nunit,L1,甲医院,,G1,,lead,tertiary,,,,,,\n"
        );
        let l = parse_layout(input.as_bytes()).unwrap();
        assert_eq!(l.warnings.len(), 1);
        assert_eq!(l.warnings[0].field, "line 2: city_two_grids");
    }

    #[test]
    fn a_bom_and_any_column_order_are_accepted() {
        let input = "\u{feff}code,kind,name,parent,role,level,division_code\nC,city,测试市,,,,330100\nGA,grid,甲区,C,,,330102\nGB,grid,乙区,C,,,330105\nG1,group,甲集团,GA,,,\nG2,group,乙集团,GB,,,\nL1,unit,甲医院,G1,lead,tertiary,\nL2,unit,乙医院,G2,lead,tertiary,\n";
        let l = parse_layout(input.as_bytes()).unwrap();
        assert_eq!(l.units.len(), 2);
    }

    #[test]
    fn unknown_role_and_malformed_division_code_are_errors() {
        let role = small("unit,P1,某卫生院,,G1,,doctor,primary,,,,,,\n");
        let err = parse_layout(role.as_bytes()).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(
            (err.0[0].field.as_str(), err.0[0].code),
            ("line 9: role", "unknown_value")
        );
        // The Chinese label is as good as the identifier.
        assert!(parse_layout(
            small("unit,P1,某卫生院,,G1,,社区卫生服务中心/乡镇卫生院,一级,,,,,,\n").as_bytes()
        )
        .is_ok());
        let division = HEADER.to_owned() + "city,C,测试市,,,,,,33010,,,,,\n";
        assert_eq!(error_fields(&division), ["line 2: division_code"]);
        let unit_division = small("unit,P1,某卫生院,,G1,,primary,primary,3301O2,,,,,\n");
        assert_eq!(error_fields(&unit_division), ["line 9: division_code"]);
    }

    #[test]
    fn references_must_exist_be_of_the_right_kind_and_not_loop() {
        let wrong_kind = small("unit,P1,某院,,GA,,primary,primary,,,,,,\n");
        let err = parse_layout(wrong_kind.as_bytes()).unwrap_err();
        assert_eq!(
            (err.0[0].field.as_str(), err.0[0].code),
            ("line 9: parent", "reference_kind")
        );
        let no_parent = small("unit,P1,某院,,,,primary,primary,,,,,,\n");
        let err = parse_layout(no_parent.as_bytes()).unwrap_err();
        assert_eq!(
            (err.0[0].field.as_str(), err.0[0].code),
            ("line 9: parent", "required")
        );
        let looped = small(
            "unit,P1,甲卫生院,,G1,P2,primary,primary,,,,,,\nunit,P2,乙卫生院,,G1,P1,primary,primary,,,,,,\n",
        );
        assert_eq!(error_fields(&looped), ["line 9: under", "line 10: under"]);
        let village = small(
            "unit,P1,甲卫生院,,G1,,primary,primary,,,,,,\nunit,V1,某村卫生室,,G1,P1,village,unrated,,,,,,\n",
        );
        let l = parse_layout(village.as_bytes()).unwrap();
        assert_eq!(l.units.last().unwrap().under_code.as_deref(), Some("P1"));
        let stray = small("unit,V1,某村卫生室,,G1,L1,village,unrated,,,,,,\n");
        assert_eq!(error_fields(&stray), ["line 9: village_under_primary"]);
    }

    #[test]
    fn city_level_units_serve_every_grid() {
        let l = parse_layout(
            small("unit,M1,某市妇幼保健院,,C,,public_health,unrated,,,,是,maternal_child,\n")
                .as_bytes(),
        )
        .unwrap();
        let m = l.units.last().unwrap();
        assert_eq!((m.group_code.as_ref(), m.grid_code.as_ref()), (None, None));
        assert_eq!(m.services, [CrossGridService::MaternalChild]);
        let snapshot = l.snapshot();
        assert_eq!(snapshot.units.last().unwrap().group_id, None);
        let bad = small("unit,M1,某院,,C,,public_health,unrated,,,,,maternity,\n");
        assert_eq!(error_fields(&bad), ["line 9: services"]);
    }

    #[test]
    fn exactly_one_city() {
        let two = small("").replace("grid,GA,", "city,D,另一市,,,,,,330200,,,,,\ngrid,GA,");
        let err = parse_layout(two.as_bytes()).unwrap_err();
        assert!(err.0.iter().any(|e| e.code == "city_count"), "{err:?}");
        let none = format!("{HEADER}grid,GA,甲区,,C,,,,330102,,,,,\n");
        let err = parse_layout(none.as_bytes()).unwrap_err();
        assert!(err.0.iter().any(|e| e.code == "city_count"), "{err:?}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let input = format!(
            "{HEADER}city,C,测试市,,,,,,330100,,,,,\n\
             grid,G A,甲区,,C,,,,330102,,,,,\n\
             grid,GB,,,C,,,,330105,,,,,\n\
             building,X,某楼,,C,,,,,,,,,\n"
        );
        assert_eq!(
            error_fields(&input),
            ["line 3: code", "line 4: name", "line 5: kind"]
        );
    }

    #[test]
    fn the_example_in_the_format_doc_parses() {
        let doc = include_str!("../../../../docs/layout-format.md");
        let start = doc.find("```csv\n").unwrap() + "```csv\n".len();
        let example = &doc[start..start + doc[start..].find("```").unwrap()];
        let l = parse_layout(example.as_bytes()).unwrap();
        assert_eq!((l.grids.len(), l.groups.len(), l.units.len()), (2, 2, 6));
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        let village = l
            .units
            .iter()
            .find(|u| u.role == MemberRole::Village)
            .unwrap();
        assert_eq!(village.under_code.as_deref(), Some("CS-A-DJ"));
    }
}
