//! The rules of a city's grid layout (R1.1, seeds 002 and 004): checked and reported with
//! their reason, never silently accepted. Errors refuse a change; warnings are shown.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::{CitySnapshot, Level, MemberRole, UnitRef};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// One rule's verdict on one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable rule id, e.g. `group_one_lead`.
    pub rule: &'static str,
    /// The grid, group or unit concerned (its id in the snapshot).
    pub subject: String,
    pub message_zh: String,
    pub message_en: String,
}

fn finding(
    severity: Severity,
    rule: &'static str,
    subject: &str,
    zh: String,
    en: String,
) -> Finding {
    Finding {
        severity,
        rule,
        subject: subject.to_owned(),
        message_zh: zh,
        message_en: en,
    }
}

/// Applies every layout rule to a city. Findings come in a stable order: by rule, then by
/// subject as listed in the snapshot.
pub fn check_layout(city: &CitySnapshot) -> Vec<Finding> {
    use Severity::{Error, Warning};
    let mut out = Vec::new();
    let grid_names: HashMap<&str, &str> = city
        .grids
        .iter()
        .map(|g| (g.id.as_str(), g.name.as_str()))
        .collect();
    let group_names: HashMap<&str, &str> = city
        .groups
        .iter()
        .map(|g| (g.id.as_str(), g.name.as_str()))
        .collect();
    let units: HashMap<&str, &UnitRef> = city.units.iter().map(|u| (u.id.as_str(), u)).collect();

    if city.grids.len() < 2 {
        out.push(finding(
            Warning,
            "city_two_grids",
            &city.city_name,
            format!(
                "{}只有 {} 个网格，城市应划分为不少于 2 个网格",
                city.city_name,
                city.grids.len()
            ),
            format!(
                "{} has {} grid(s); a city should have at least 2",
                city.city_name,
                city.grids.len()
            ),
        ));
    }

    // Dangling references first: the other rules assume a coherent snapshot.
    for g in &city.groups {
        if !grid_names.contains_key(g.grid_id.as_str()) {
            out.push(finding(
                Error,
                "group_grid_exists",
                &g.id,
                format!("医疗集团“{}”所属网格不存在", g.name),
                format!("group '{}' names a grid that does not exist", g.name),
            ));
        }
    }
    for u in &city.units {
        if let Some(g) = &u.group_id {
            if !group_names.contains_key(g.as_str()) {
                out.push(finding(
                    Error,
                    "group_grid_exists",
                    &u.id,
                    format!("成员单位“{}”所属医疗集团不存在", u.name),
                    format!("unit '{}' names a group that does not exist", u.name),
                ));
            }
        }
    }

    let mut groups_per_grid: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for g in &city.groups {
        groups_per_grid
            .entry(g.grid_id.as_str())
            .or_default()
            .push(g.name.as_str());
    }
    for grid in &city.grids {
        match groups_per_grid
            .get(grid.id.as_str())
            .map(Vec::len)
            .unwrap_or(0)
        {
            1 => {}
            0 => out.push(finding(
                Warning,
                "grid_one_group",
                &grid.id,
                format!("网格“{}”尚未组建医疗集团", grid.name),
                format!("grid '{}' has no medical group yet", grid.name),
            )),
            n => out.push(finding(
                Error,
                "grid_one_group",
                &grid.id,
                format!("网格“{}”有 {} 个医疗集团，一个网格只能有一个", grid.name, n),
                format!(
                    "grid '{}' has {n} groups; a grid has exactly one",
                    grid.name
                ),
            )),
        }
    }

    for g in &city.groups {
        let leads: Vec<&UnitRef> = city
            .units
            .iter()
            .filter(|u| u.group_id.as_deref() == Some(g.id.as_str()) && u.role == MemberRole::Lead)
            .collect();
        match leads.len() {
            1 => {
                if leads[0].level != Level::Tertiary {
                    out.push(finding(
                        Warning,
                        "lead_level",
                        &leads[0].id,
                        format!("“{}”的牵头医院“{}”不是三级医院", g.name, leads[0].name),
                        format!(
                            "the lead hospital '{}' of '{}' is not tertiary",
                            leads[0].name, g.name
                        ),
                    ));
                }
            }
            0 => out.push(finding(
                Error,
                "group_one_lead",
                &g.id,
                format!("医疗集团“{}”没有牵头医院", g.name),
                format!("group '{}' has no lead hospital", g.name),
            )),
            n => {
                let names: Vec<&str> = leads.iter().map(|u| u.name.as_str()).collect();
                out.push(finding(
                    Error,
                    "group_one_lead",
                    &g.id,
                    format!(
                        "医疗集团“{}”有 {n} 家牵头医院（{}），只能有一家",
                        g.name,
                        names.join("、")
                    ),
                    format!(
                        "group '{}' has {n} lead hospitals ({}); it has exactly one",
                        g.name,
                        names.join(", ")
                    ),
                ));
            }
        }
    }

    // Only a grid with exactly one group says where its secondary hospitals belong; a grid
    // with several is already an error above.
    let group_of_grid: HashMap<&str, &str> = city
        .groups
        .iter()
        .filter(|g| groups_per_grid.get(g.grid_id.as_str()).map(Vec::len) == Some(1))
        .map(|g| (g.grid_id.as_str(), g.id.as_str()))
        .collect();
    for u in &city.units {
        if u.role != MemberRole::Secondary || !u.public {
            continue;
        }
        let Some(grid) = u.grid_id.as_deref() else {
            continue;
        };
        let Some(expected) = group_of_grid.get(grid) else {
            continue;
        };
        if u.group_id.as_deref() != Some(*expected) {
            out.push(finding(
                Error,
                "secondary_in_grid_group",
                &u.id,
                format!(
                    "公立二级医院“{}”位于网格“{}”，应纳入该网格的医疗集团“{}”",
                    u.name,
                    grid_names.get(grid).copied().unwrap_or(grid),
                    group_names.get(expected).copied().unwrap_or(expected)
                ),
                format!(
                    "public secondary hospital '{}' stands in grid '{}' and belongs in its group '{}'",
                    u.name,
                    grid_names.get(grid).copied().unwrap_or(grid),
                    group_names.get(expected).copied().unwrap_or(expected)
                ),
            ));
        }
    }

    for u in &city.units {
        if u.role != MemberRole::Village {
            continue;
        }
        let parent = u.parent_unit_id.as_deref().and_then(|p| units.get(p));
        match parent {
            Some(p) if p.role == MemberRole::Primary && p.group_id == u.group_id => {}
            Some(p) if p.role == MemberRole::Primary => out.push(finding(
                Error,
                "village_under_primary",
                &u.id,
                format!("村卫生室“{}”应与所属卫生院“{}”在同一医疗集团", u.name, p.name),
                format!("village clinic '{}' must be in the same group as its township hospital '{}'", u.name, p.name),
            )),
            _ => out.push(finding(
                Error,
                "village_under_primary",
                &u.id,
                format!("村卫生室“{}”须隶属于一家乡镇卫生院或社区卫生服务中心", u.name),
                format!("village clinic '{}' must be under a township hospital or community health centre", u.name),
            )),
        }
    }

    let rank = |rule: &str| match rule {
        "group_grid_exists" => 0,
        "grid_one_group" => 1,
        "group_one_lead" => 2,
        "secondary_in_grid_group" => 3,
        "village_under_primary" => 4,
        "lead_level" => 5,
        "city_two_grids" => 6,
        _ => 7,
    };
    out.sort_by_key(|f| rank(f.rule));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::{GridRef, GroupRef};

    fn unit(id: &str, role: MemberRole, group: Option<&str>, grid: Option<&str>) -> UnitRef {
        UnitRef {
            id: id.into(),
            name: format!("单位{id}"),
            role,
            level: if role == MemberRole::Lead {
                Level::Tertiary
            } else {
                Level::Primary
            },
            public: true,
            grid_id: grid.map(Into::into),
            group_id: group.map(Into::into),
            parent_unit_id: None,
        }
    }

    /// Two grids, each with one group and one lead: nothing to report.
    fn good() -> CitySnapshot {
        CitySnapshot {
            city_name: "测试市".into(),
            grids: vec![
                GridRef {
                    id: "g1".into(),
                    name: "甲网格".into(),
                },
                GridRef {
                    id: "g2".into(),
                    name: "乙网格".into(),
                },
            ],
            groups: vec![
                GroupRef {
                    id: "G1".into(),
                    name: "甲集团".into(),
                    grid_id: "g1".into(),
                },
                GroupRef {
                    id: "G2".into(),
                    name: "乙集团".into(),
                    grid_id: "g2".into(),
                },
            ],
            units: vec![
                unit("L1", MemberRole::Lead, Some("G1"), Some("g1")),
                unit("L2", MemberRole::Lead, Some("G2"), Some("g2")),
                unit("S1", MemberRole::Secondary, Some("G1"), Some("g1")),
                unit("P1", MemberRole::Primary, Some("G1"), Some("g1")),
            ],
        }
    }

    fn rules(c: &CitySnapshot) -> Vec<(&'static str, Severity)> {
        check_layout(c)
            .into_iter()
            .map(|f| (f.rule, f.severity))
            .collect()
    }

    #[test]
    fn a_correct_city_has_no_findings() {
        assert_eq!(rules(&good()), vec![]);
    }

    #[test]
    fn one_grid_is_a_warning() {
        let mut c = good();
        c.grids.pop();
        c.groups.pop();
        c.units.retain(|u| u.id != "L2");
        assert_eq!(rules(&c), vec![("city_two_grids", Severity::Warning)]);
    }

    #[test]
    fn two_groups_in_a_grid_is_an_error_and_none_a_warning() {
        let mut c = good();
        c.groups[1].grid_id = "g1".into();
        c.units[1].grid_id = Some("g1".into());
        assert_eq!(
            rules(&c),
            vec![
                ("grid_one_group", Severity::Error),
                ("grid_one_group", Severity::Warning)
            ]
        );
    }

    #[test]
    fn a_group_has_exactly_one_lead() {
        let mut c = good();
        c.units
            .push(unit("L3", MemberRole::Lead, Some("G1"), Some("g1")));
        let f = check_layout(&c);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, "group_one_lead");
        assert!(f[0].message_zh.contains("单位L1") && f[0].message_zh.contains("单位L3"));
        let mut c = good();
        c.units.retain(|u| u.id != "L2");
        assert_eq!(rules(&c), vec![("group_one_lead", Severity::Error)]);
    }

    #[test]
    fn a_public_secondary_hospital_belongs_to_its_grids_group() {
        let mut c = good();
        c.units[2].group_id = Some("G2".into());
        assert_eq!(
            rules(&c),
            vec![("secondary_in_grid_group", Severity::Error)]
        );
        // A private one may stay outside.
        c.units[2].public = false;
        assert_eq!(rules(&c), vec![]);
    }

    #[test]
    fn village_clinics_sit_under_a_primary_unit_of_their_group() {
        let mut c = good();
        let mut v = unit("V1", MemberRole::Village, Some("G1"), Some("g1"));
        v.parent_unit_id = Some("P1".into());
        c.units.push(v.clone());
        assert_eq!(rules(&c), vec![]);
        c.units.pop();
        v.parent_unit_id = Some("S1".into());
        c.units.push(v.clone());
        assert_eq!(rules(&c), vec![("village_under_primary", Severity::Error)]);
        c.units.pop();
        v.parent_unit_id = Some("P1".into());
        v.group_id = Some("G2".into());
        v.grid_id = Some("g2".into());
        c.units.push(v);
        assert_eq!(rules(&c), vec![("village_under_primary", Severity::Error)]);
    }

    #[test]
    fn dangling_references_and_a_non_tertiary_lead() {
        let mut c = good();
        c.groups[1].grid_id = "nowhere".into();
        c.units[3].group_id = Some("G9".into());
        c.units[0].level = Level::Secondary;
        let got = rules(&c);
        assert!(got.contains(&("group_grid_exists", Severity::Error)));
        assert_eq!(got.iter().filter(|r| r.0 == "group_grid_exists").count(), 2);
        assert!(got.contains(&("lead_level", Severity::Warning)));
    }

    #[test]
    fn findings_come_in_rule_order_then_snapshot_order() {
        // One grid left; G2 points nowhere; G1 gets a second lead; G2's lead is not tertiary.
        let mut c = good();
        c.grids.pop();
        c.groups[1].grid_id = "nowhere".into();
        c.units[1].level = Level::Secondary;
        c.units
            .push(unit("L3", MemberRole::Lead, Some("G1"), Some("g1")));
        let got: Vec<(&str, String)> = check_layout(&c)
            .into_iter()
            .map(|f| (f.rule, f.subject))
            .collect();
        assert_eq!(
            got,
            [
                ("group_grid_exists", "G2".to_owned()),
                ("group_one_lead", "G1".to_owned()),
                ("lead_level", "L2".to_owned()),
                ("city_two_grids", "测试市".to_owned()),
            ]
        );
    }
}
