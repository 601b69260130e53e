//! The group registry: cities, grids, groups, member units, departments, practitioners.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::Row;

use medgrid_domain::access::{Id, OrgPath, ScopeKind};
use medgrid_domain::codes::Sex;
use medgrid_domain::org::layout::Layout;
use medgrid_domain::org::rules::{check_layout, Finding, Severity};
use medgrid_domain::org::{
    City, CitySnapshot, CrossGridService, Department, DepartmentDraft, DepartmentKind, Grid,
    GridRef, Group, GroupRef, Level, MemberRole, PracticeSite, Practitioner, PractitionerDraft,
    Title, Unit, UnitDraft, UnitRef,
};
use medgrid_domain::{FieldError, Invalid};

use crate::audit::audit_insert;
use crate::{read, stored, write, Actor, AuditEntry, Outcome, Store, StoreError};

/// What a layout import created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub city_id: Id,
    pub grids: usize,
    pub groups: usize,
    pub units: usize,
    /// Layout rules that warn but do not refuse (e.g. a city with one grid).
    pub warnings: Vec<String>,
}

/// A whole city, for the registry tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CityTree {
    pub city: City,
    pub grids: Vec<Grid>,
    pub groups: Vec<Group>,
    pub units: Vec<Unit>,
}

/// An organisation named by reference (`city-1`, `group-3`, `unit-7`, or a unit's USCC),
/// resolved to where it sits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgRef {
    pub kind: OrgKind,
    pub id: Id,
    pub name: String,
    pub path: OrgPath,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    City,
    Grid,
    Group,
    Unit,
}

impl OrgKind {
    pub fn prefix(self) -> &'static str {
        match self {
            OrgKind::City => "city",
            OrgKind::Grid => "grid",
            OrgKind::Group => "group",
            OrgKind::Unit => "unit",
        }
    }

    /// The scope a user bound to this kind of organisation gets (a grid is not a scope).
    pub fn scope_kind(self) -> Option<ScopeKind> {
        match self {
            OrgKind::City => Some(ScopeKind::City),
            OrgKind::Grid => None,
            OrgKind::Group => Some(ScopeKind::Group),
            OrgKind::Unit => Some(ScopeKind::Unit),
        }
    }
}

impl OrgRef {
    /// The id used on the FHIR and HTTP surfaces, e.g. `unit-7`.
    pub fn reference(&self) -> String {
        format!("{}-{}", self.kind.prefix(), self.id)
    }
}

/// Search criteria for member units; all are optional and combine with AND.
#[derive(Debug, Clone, Default)]
pub struct UnitFilter {
    pub city_id: Option<Id>,
    pub group_id: Option<Id>,
    pub role: Option<MemberRole>,
    /// Part of the legal or second name.
    pub name_contains: Option<String>,
    pub limit: i64,
}

const UNIT_COLUMNS: &str = "id, city_id, grid_id, group_id, parent_unit_id, code, legal_name, \
    second_name, role, level, division_code, uscc, uscc_warning, beds, public, services, note";

macro_rules! unit_from_row {
    ($r:expr) => {{
        let r = &$r;
        let services: String = r.try_get("services")?;
        Unit {
            id: r.try_get("id")?,
            city_id: r.try_get("city_id")?,
            grid_id: r.try_get("grid_id")?,
            group_id: r.try_get("group_id")?,
            parent_unit_id: r.try_get("parent_unit_id")?,
            code: r.try_get("code")?,
            legal_name: r.try_get("legal_name")?,
            second_name: r.try_get("second_name")?,
            role: stored(MemberRole::parse, &r.try_get::<String, _>("role")?)?,
            level: stored(Level::parse, &r.try_get::<String, _>("level")?)?,
            division_code: r.try_get("division_code")?,
            uscc: r.try_get("uscc")?,
            uscc_warning: r.try_get("uscc_warning")?,
            beds: r.try_get("beds")?,
            public: r.try_get("public")?,
            services: services
                .split(';')
                .filter(|s| !s.is_empty())
                .map(|s| stored(CrossGridService::parse, s))
                .collect::<Result<Vec<_>, _>>()?,
            note: r.try_get("note")?,
        }
    }};
}

macro_rules! department_from_row {
    ($r:expr) => {{
        let r = &$r;
        Department {
            id: r.try_get("id")?,
            unit_id: r.try_get("unit_id")?,
            group_id: r.try_get("group_id")?,
            code: r.try_get("code")?,
            name: r.try_get("name")?,
            kind: stored(DepartmentKind::parse, &r.try_get::<String, _>("kind")?)?,
            beds: r.try_get("beds")?,
        }
    }};
}

/// Loads a city's registry shape through `$ex` (a pool or an open transaction).
macro_rules! load_snapshot {
    ($ex:expr, $city_id:expr) => {{
        let city_id: Id = $city_id;
        let mut snap = CitySnapshot::default();
        let rows = sqlx::query(
            // Typed NULLs: PostgreSQL resolves UNION column types branch by branch.
            "SELECT 'city' AS kind, id, name, CAST(NULL AS BIGINT) AS grid_id, CAST(NULL AS BIGINT) AS group_id, \
             CAST(NULL AS BIGINT) AS parent_unit_id, CAST(NULL AS TEXT) AS role, CAST(NULL AS TEXT) AS level, \
             CAST(NULL AS BOOLEAN) AS public FROM city WHERE id = $1 \
             UNION ALL SELECT 'grid', id, name, NULL, NULL, NULL, NULL, NULL, NULL FROM grid WHERE city_id = $1 \
             UNION ALL SELECT 'group', id, name, grid_id, NULL, NULL, NULL, NULL, NULL FROM med_group WHERE city_id = $1 \
             UNION ALL SELECT 'unit', id, legal_name, grid_id, group_id, parent_unit_id, role, level, public FROM unit WHERE city_id = $1",
        )
        .bind(city_id)
        .fetch_all($ex)
        .await?;
        for r in rows {
            let kind: String = r.try_get("kind")?;
            let id: Id = r.try_get("id")?;
            let name: String = r.try_get("name")?;
            let grid_id: Option<Id> = r.try_get("grid_id")?;
            match kind.as_str() {
                "city" => snap.city_name = name,
                "grid" => snap.grids.push(GridRef { id: id.to_string(), name }),
                "group" => snap.groups.push(GroupRef {
                    id: id.to_string(),
                    name,
                    grid_id: grid_id.map(|g| g.to_string()).unwrap_or_default(),
                }),
                _ => {
                    let group_id: Option<Id> = r.try_get("group_id")?;
                    let parent: Option<Id> = r.try_get("parent_unit_id")?;
                    let role: Option<String> = r.try_get("role")?;
                    let level: Option<String> = r.try_get("level")?;
                    let public: Option<bool> = r.try_get("public")?;
                    snap.units.push(UnitRef {
                        id: id.to_string(),
                        name,
                        role: stored(MemberRole::parse, role.as_deref().unwrap_or_default())?,
                        level: stored(Level::parse, level.as_deref().unwrap_or_default())?,
                        public: public.unwrap_or(true),
                        grid_id: grid_id.map(|g| g.to_string()),
                        group_id: group_id.map(|g| g.to_string()),
                        parent_unit_id: parent.map(|g| g.to_string()),
                    });
                }
            }
        }
        snap
    }};
}

fn join_services(services: &[CrossGridService]) -> String {
    services
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(";")
}

fn sex_str(s: Sex) -> &'static str {
    match s {
        Sex::Male => "male",
        Sex::Female => "female",
    }
}

fn parse_sex(raw: &str) -> Result<Sex, FieldError> {
    medgrid_domain::org::sex("sex", raw)
}

/// Refuses the change when the layout rules find an error in the resulting city.
fn enforce(findings: Vec<Finding>) -> Result<Vec<Finding>, StoreError> {
    let errors: Vec<FieldError> = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| {
            FieldError::new(
                f.rule,
                "layout_rule",
                f.message_zh.clone(),
                f.message_en.clone(),
            )
        })
        .collect();
    if errors.is_empty() {
        Ok(findings)
    } else {
        Err(StoreError::Invalid(Invalid(errors)))
    }
}

impl Store {
    /// Loads a whole city layout in one transaction: all of it or nothing.
    pub async fn import_layout(
        &self,
        actor: &Actor,
        layout: &Layout,
    ) -> Result<ImportSummary, StoreError> {
        let now = crate::now();
        write!(self, |p| {
            let mut tx = p.begin().await?;
            let city_id: Id = sqlx::query_scalar(
                "INSERT INTO city (division_code, name, created_at) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(layout.city.division_code.as_str())
            .bind(&layout.city.name)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let mut grid_ids: HashMap<&str, Id> = HashMap::new();
            for g in &layout.grids {
                let id: Id = sqlx::query_scalar(
                    "INSERT INTO grid (city_id, code, name, division_code, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(city_id)
                .bind(&g.code)
                .bind(&g.name)
                .bind(g.division_code.as_str())
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                grid_ids.insert(g.code.as_str(), id);
            }
            let mut group_ids: HashMap<&str, (Id, Id)> = HashMap::new();
            for g in &layout.groups {
                let grid_id = *grid_ids.get(g.grid_code.as_str()).ok_or_else(|| {
                    StoreError::Corrupt(format!("layout group {} names unknown grid", g.code))
                })?;
                let id: Id = sqlx::query_scalar(
                    "INSERT INTO med_group (city_id, grid_id, code, name, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(city_id)
                .bind(grid_id)
                .bind(&g.code)
                .bind(&g.name)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                group_ids.insert(g.code.as_str(), (id, grid_id));
            }
            let mut unit_ids: HashMap<&str, Id> = HashMap::new();
            for u in &layout.units {
                let (group_id, grid_id) = match u.group_code.as_deref() {
                    Some(code) => {
                        let (g, grid) = *group_ids.get(code).ok_or_else(|| {
                            StoreError::Corrupt(format!(
                                "layout unit {} names unknown group",
                                u.code
                            ))
                        })?;
                        (Some(g), Some(grid))
                    }
                    None => (
                        None,
                        u.grid_code
                            .as_deref()
                            .and_then(|c| grid_ids.get(c).copied()),
                    ),
                };
                let id: Id = sqlx::query_scalar(
                    "INSERT INTO unit (city_id, grid_id, group_id, code, legal_name, second_name, role, level, \
                     division_code, uscc, uscc_warning, beds, public, services, note, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16) RETURNING id",
                )
                .bind(city_id)
                .bind(grid_id)
                .bind(group_id)
                .bind(&u.code)
                .bind(&u.name)
                .bind(u.second_name.as_deref())
                .bind(u.role.as_str())
                .bind(u.level.as_str())
                .bind(u.division_code.as_ref().map(|d| d.as_str()))
                .bind(u.uscc.as_ref().map(|c| c.as_str()))
                .bind(None::<String>)
                .bind(u.beds)
                .bind(u.public)
                .bind(join_services(&u.services))
                .bind(u.note.as_deref())
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                unit_ids.insert(u.code.as_str(), id);
            }
            // Parents are set once every unit exists, so the file may list them in any order.
            for u in &layout.units {
                if let Some(under) = u.under_code.as_deref() {
                    let (Some(id), Some(parent)) =
                        (unit_ids.get(u.code.as_str()), unit_ids.get(under))
                    else {
                        return Err(StoreError::Corrupt(format!(
                            "layout unit {} is under unknown unit {under}",
                            u.code
                        )));
                    };
                    sqlx::query("UPDATE unit SET parent_unit_id = $1 WHERE id = $2")
                        .bind(*parent)
                        .bind(*id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            let summary = ImportSummary {
                city_id,
                grids: layout.grids.len(),
                groups: layout.groups.len(),
                units: layout.units.len(),
                warnings: layout.warnings.iter().map(ToString::to_string).collect(),
            };
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "layout.import",
                    resource_type: "Organization",
                    resource_id: Some(format!("city-{city_id}")),
                    target: Some(OrgPath::city(city_id)),
                    outcome: Outcome::Ok,
                    detail: Some(format!(
                        "{}: {} grids, {} groups, {} units",
                        layout.city.name, summary.grids, summary.groups, summary.units
                    )),
                }
            )?;
            tx.commit().await?;
            Ok(summary)
        })
    }

    pub async fn count_cities(&self) -> Result<i64, StoreError> {
        read!(self, |p| Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM city"
        )
        .fetch_one(p)
        .await?))
    }

    pub async fn cities(&self) -> Result<Vec<City>, StoreError> {
        read!(self, |p| {
            let rows =
                sqlx::query("SELECT id, division_code, name FROM city ORDER BY division_code")
                    .fetch_all(p)
                    .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(City {
                    id: r.try_get("id")?,
                    division_code: r.try_get("division_code")?,
                    name: r.try_get("name")?,
                });
            }
            Ok(out)
        })
    }

    pub async fn city_tree(&self, city_id: Id) -> Result<CityTree, StoreError> {
        read!(self, |p| {
            let r = sqlx::query("SELECT id, division_code, name FROM city WHERE id = $1")
                .bind(city_id)
                .fetch_optional(p)
                .await?
                .ok_or(StoreError::NotFound)?;
            let city = City {
                id: r.try_get("id")?,
                division_code: r.try_get("division_code")?,
                name: r.try_get("name")?,
            };
            let mut grids = Vec::new();
            for r in sqlx::query("SELECT id, city_id, code, name, division_code FROM grid WHERE city_id = $1 ORDER BY id")
                .bind(city_id)
                .fetch_all(p)
                .await?
            {
                grids.push(Grid {
                    id: r.try_get("id")?,
                    city_id: r.try_get("city_id")?,
                    code: r.try_get("code")?,
                    name: r.try_get("name")?,
                    division_code: r.try_get("division_code")?,
                });
            }
            let mut groups = Vec::new();
            for r in sqlx::query("SELECT id, city_id, grid_id, code, name FROM med_group WHERE city_id = $1 ORDER BY id")
                .bind(city_id)
                .fetch_all(p)
                .await?
            {
                groups.push(Group {
                    id: r.try_get("id")?,
                    city_id: r.try_get("city_id")?,
                    grid_id: r.try_get("grid_id")?,
                    code: r.try_get("code")?,
                    name: r.try_get("name")?,
                });
            }
            let mut units = Vec::new();
            for r in sqlx::query(&format!(
                "SELECT {UNIT_COLUMNS} FROM unit WHERE city_id = $1 ORDER BY id"
            ))
            .bind(city_id)
            .fetch_all(p)
            .await?
            {
                units.push(unit_from_row!(r));
            }
            Ok(CityTree {
                city,
                grids,
                groups,
                units,
            })
        })
    }

    pub async fn group(&self, id: Id) -> Result<Group, StoreError> {
        read!(self, |p| {
            let r =
                sqlx::query("SELECT id, city_id, grid_id, code, name FROM med_group WHERE id = $1")
                    .bind(id)
                    .fetch_optional(p)
                    .await?
                    .ok_or(StoreError::NotFound)?;
            Ok(Group {
                id: r.try_get("id")?,
                city_id: r.try_get("city_id")?,
                grid_id: r.try_get("grid_id")?,
                code: r.try_get("code")?,
                name: r.try_get("name")?,
            })
        })
    }

    pub async fn grid(&self, id: Id) -> Result<Grid, StoreError> {
        read!(self, |p| {
            let r = sqlx::query(
                "SELECT id, city_id, code, name, division_code FROM grid WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(p)
            .await?
            .ok_or(StoreError::NotFound)?;
            Ok(Grid {
                id: r.try_get("id")?,
                city_id: r.try_get("city_id")?,
                code: r.try_get("code")?,
                name: r.try_get("name")?,
                division_code: r.try_get("division_code")?,
            })
        })
    }

    pub async fn city(&self, id: Id) -> Result<City, StoreError> {
        read!(self, |p| {
            let r = sqlx::query("SELECT id, division_code, name FROM city WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await?
                .ok_or(StoreError::NotFound)?;
            Ok(City {
                id: r.try_get("id")?,
                division_code: r.try_get("division_code")?,
                name: r.try_get("name")?,
            })
        })
    }

    pub async fn unit(&self, id: Id) -> Result<Unit, StoreError> {
        read!(self, |p| {
            let r = sqlx::query(&format!("SELECT {UNIT_COLUMNS} FROM unit WHERE id = $1"))
                .bind(id)
                .fetch_optional(p)
                .await?
                .ok_or(StoreError::NotFound)?;
            Ok(unit_from_row!(r))
        })
    }

    pub async fn units(&self, filter: &UnitFilter) -> Result<Vec<Unit>, StoreError> {
        let pattern = filter
            .name_contains
            .as_ref()
            .map(|n| format!("%{}%", n.to_lowercase().replace(['%', '_'], "")));
        let sql = format!(
            "SELECT {UNIT_COLUMNS} FROM unit WHERE ($1 IS NULL OR city_id = $1) AND ($2 IS NULL OR group_id = $2) \
             AND ($3 IS NULL OR role = $3) AND ($4 IS NULL OR lower(legal_name) LIKE $4 OR lower(second_name) LIKE $4) \
             ORDER BY id LIMIT $5"
        );
        read!(self, |p| {
            let rows = sqlx::query(&sql)
                .bind(filter.city_id)
                .bind(filter.group_id)
                .bind(filter.role.map(|r| r.as_str()))
                .bind(pattern.as_deref())
                .bind(filter.limit.clamp(1, 10_000))
                .fetch_all(p)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(unit_from_row!(r));
            }
            Ok(out)
        })
    }

    /// Resolves `city-1`, `grid-2`, `group-3`, `unit-4` or a unit's USCC.
    pub async fn resolve_org(&self, reference: &str) -> Result<OrgRef, StoreError> {
        let reference = reference.trim();
        let parsed = reference
            .split_once('-')
            .and_then(|(kind, id)| Some((kind, id.parse::<Id>().ok()?)));
        match parsed {
            Some(("city", id)) => {
                let c = self.city(id).await?;
                Ok(OrgRef {
                    kind: OrgKind::City,
                    id,
                    name: c.name,
                    path: OrgPath::city(id),
                })
            }
            Some(("grid", id)) => {
                let g = self.grid(id).await?;
                Ok(OrgRef {
                    kind: OrgKind::Grid,
                    id,
                    name: g.name,
                    path: OrgPath {
                        city: g.city_id,
                        grid: Some(id),
                        group: None,
                        unit: None,
                    },
                })
            }
            Some(("group", id)) => {
                let g = self.group(id).await?;
                Ok(OrgRef {
                    kind: OrgKind::Group,
                    id,
                    path: g.path(),
                    name: g.name,
                })
            }
            Some(("unit", id)) => {
                let u = self.unit(id).await?;
                Ok(OrgRef {
                    kind: OrgKind::Unit,
                    id,
                    path: u.path(),
                    name: u.legal_name,
                })
            }
            _ => {
                let id: Option<Id> = read!(self, |p| sqlx::query_scalar(
                    "SELECT id FROM unit WHERE uscc = $1"
                )
                .bind(reference.to_uppercase())
                .fetch_optional(p)
                .await?);
                let u = self.unit(id.ok_or(StoreError::NotFound)?).await?;
                Ok(OrgRef {
                    kind: OrgKind::Unit,
                    id: u.id,
                    path: u.path(),
                    name: u.legal_name,
                })
            }
        }
    }

    /// Adds a member unit to a city, checking the layout rules on the city as it would be.
    pub async fn create_unit(
        &self,
        actor: &Actor,
        city_id: Id,
        draft: &UnitDraft,
    ) -> Result<Unit, StoreError> {
        // The group decides the grid; a unit outside any group stands in no grid.
        let (grid_id, group_city) = match draft.group_id {
            Some(g) => {
                let group = self.group(g).await.map_err(|e| match e {
                    StoreError::NotFound => StoreError::Reference(FieldError::new(
                        "group_id",
                        "not_found",
                        "医疗集团不存在",
                        "no such group",
                    )),
                    other => other,
                })?;
                (Some(group.grid_id), Some(group.city_id))
            }
            None => (None, None),
        };
        if group_city.is_some_and(|c| c != city_id) {
            return Err(Invalid::one(FieldError::new(
                "group_id",
                "other_city",
                "医疗集团不属于该城市",
                "the group belongs to another city",
            ))
            .into());
        }
        let now = crate::now();
        write!(self, |p| {
            let mut tx = p.begin().await?;
            let id: Id = sqlx::query_scalar(
                "INSERT INTO unit (city_id, grid_id, group_id, parent_unit_id, code, legal_name, second_name, role, level, \
                 division_code, uscc, uscc_warning, beds, public, services, note, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17) RETURNING id",
            )
            .bind(city_id)
            .bind(grid_id)
            .bind(draft.group_id)
            .bind(draft.parent_unit_id)
            .bind(&draft.code)
            .bind(&draft.legal_name)
            .bind(draft.second_name.as_deref())
            .bind(draft.role.as_str())
            .bind(draft.level.as_str())
            .bind(draft.division_code.as_ref().map(|d| d.as_str()))
            .bind(draft.uscc.as_ref().map(|c| c.as_str()))
            .bind(draft.uscc_warning.as_ref().map(|w| w.message_zh.clone()))
            .bind(draft.beds)
            .bind(draft.public)
            .bind(join_services(&draft.services))
            .bind(draft.note.as_deref())
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let snapshot = load_snapshot!(&mut *tx, city_id);
            enforce(check_layout(&snapshot))?;
            let r = sqlx::query(&format!("SELECT {UNIT_COLUMNS} FROM unit WHERE id = $1"))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            let unit = unit_from_row!(r);
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "unit.create",
                    resource_type: "Organization",
                    resource_id: Some(format!("unit-{id}")),
                    target: Some(unit.path()),
                    outcome: Outcome::Ok,
                    detail: Some(unit.legal_name.clone()),
                }
            )?;
            tx.commit().await?;
            Ok(unit)
        })
    }

    /// Layout findings for a city as stored now.
    pub async fn check_city(&self, city_id: Id) -> Result<Vec<Finding>, StoreError> {
        read!(self, |p| {
            let snapshot = load_snapshot!(p, city_id);
            Ok(check_layout(&snapshot))
        })
    }

    pub async fn departments(&self, unit_id: Id) -> Result<Vec<Department>, StoreError> {
        read!(self, |p| {
            let rows = sqlx::query("SELECT id, unit_id, group_id, code, name, kind, beds FROM department WHERE unit_id = $1 ORDER BY code")
                .bind(unit_id)
                .fetch_all(p)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(department_from_row!(r));
            }
            Ok(out)
        })
    }

    pub async fn create_department(
        &self,
        actor: &Actor,
        unit: &Unit,
        draft: &DepartmentDraft,
    ) -> Result<Department, StoreError> {
        write!(self, |p| {
            let mut tx = p.begin().await?;
            let r = sqlx::query(
                "INSERT INTO department (unit_id, group_id, code, name, kind, beds, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, unit_id, group_id, code, name, kind, beds",
            )
            .bind(unit.id)
            .bind(unit.group_id)
            .bind(&draft.code)
            .bind(&draft.name)
            .bind(draft.kind.as_str())
            .bind(draft.beds)
            .bind(crate::now())
            .fetch_one(&mut *tx)
            .await?;
            let dept = department_from_row!(r);
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "department.create",
                    resource_type: "Organization",
                    resource_id: Some(format!("department-{}", dept.id)),
                    target: Some(unit.path()),
                    outcome: Outcome::Ok,
                    detail: Some(dept.name.clone()),
                }
            )?;
            tx.commit().await?;
            Ok(dept)
        })
    }

    /// Practitioners practising at `unit_id` (any unit when `None`), by name part.
    pub async fn practitioners(
        &self,
        unit_id: Option<Id>,
        name_contains: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Practitioner>, StoreError> {
        let pattern = name_contains.map(|n| format!("%{}%", n.replace(['%', '_'], "")));
        let ids: Vec<Id> = read!(self, |p| {
            sqlx::query_scalar(
            "SELECT DISTINCT pr.id FROM practitioner pr LEFT JOIN practice_site s ON s.practitioner_id = pr.id \
             WHERE ($1 IS NULL OR s.unit_id = $1) AND ($2 IS NULL OR pr.name LIKE $2) ORDER BY pr.id LIMIT $3",
        )
        .bind(unit_id)
        .bind(pattern.as_deref())
        .bind(limit.clamp(1, 10_000))
        .fetch_all(p)
        .await?
        });
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.practitioner(id).await?);
        }
        Ok(out)
    }

    pub async fn practitioner(&self, id: Id) -> Result<Practitioner, StoreError> {
        read!(self, |p| {
            let r = sqlx::query("SELECT id, city_id, licence_no, name, sex, title, specialty FROM practitioner WHERE id = $1")
                .bind(id)
                .fetch_optional(p)
                .await?
                .ok_or(StoreError::NotFound)?;
            let mut sites = Vec::new();
            for s in sqlx::query(
                "SELECT id, practitioner_id, unit_id, group_id, department_id, is_primary FROM practice_site \
                 WHERE practitioner_id = $1 ORDER BY is_primary DESC, id",
            )
            .bind(id)
            .fetch_all(p)
            .await?
            {
                sites.push(PracticeSite {
                    id: s.try_get("id")?,
                    practitioner_id: s.try_get("practitioner_id")?,
                    unit_id: s.try_get("unit_id")?,
                    group_id: s.try_get("group_id")?,
                    department_id: s.try_get("department_id")?,
                    primary: s.try_get("is_primary")?,
                });
            }
            Ok(Practitioner {
                id: r.try_get("id")?,
                city_id: r.try_get("city_id")?,
                licence_no: r.try_get("licence_no")?,
                name: r.try_get("name")?,
                sex: stored(parse_sex, &r.try_get::<String, _>("sex")?)?,
                title: stored(Title::parse, &r.try_get::<String, _>("title")?)?,
                specialty: r.try_get("specialty")?,
                sites,
            })
        })
    }

    /// A practice site by id (FHIR PractitionerRole read).
    pub async fn practice_site(&self, id: Id) -> Result<PracticeSite, StoreError> {
        let practitioner_id: Id = read!(self, |p| sqlx::query_scalar(
            "SELECT practitioner_id FROM practice_site WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(p)
        .await?
        .ok_or(StoreError::NotFound)?);
        self.practitioner(practitioner_id)
            .await?
            .sites
            .into_iter()
            .find(|s| s.id == id)
            .ok_or(StoreError::NotFound)
    }

    /// Registers a practitioner with their primary site.
    pub async fn create_practitioner(
        &self,
        actor: &Actor,
        unit: &Unit,
        draft: &PractitionerDraft,
    ) -> Result<Practitioner, StoreError> {
        let id: Id = write!(self, |p| {
            let mut tx = p.begin().await?;
            let now = crate::now();
            let id: Id = sqlx::query_scalar(
                "INSERT INTO practitioner (city_id, licence_no, name, sex, title, specialty, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(unit.city_id)
            .bind(&draft.licence_no)
            .bind(&draft.name)
            .bind(sex_str(draft.sex))
            .bind(draft.title.as_str())
            .bind(draft.specialty.as_deref())
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO practice_site (practitioner_id, unit_id, group_id, department_id, is_primary, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(unit.id)
            .bind(unit.group_id)
            .bind(draft.department_id)
            .bind(true)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "practitioner.create",
                    resource_type: "Practitioner",
                    resource_id: Some(id.to_string()),
                    target: Some(unit.path()),
                    outcome: Outcome::Ok,
                    detail: Some(draft.name.clone()),
                }
            )?;
            tx.commit().await?;
            id
        });
        self.practitioner(id).await
    }

    /// Adds a further site of practice (多点执业: no re-registration inside the group).
    pub async fn add_practice_site(
        &self,
        actor: &Actor,
        practitioner_id: Id,
        unit: &Unit,
        department_id: Option<Id>,
    ) -> Result<PracticeSite, StoreError> {
        let id: Id = write!(self, |p| {
            let mut tx = p.begin().await?;
            let id: Id = sqlx::query_scalar(
                "INSERT INTO practice_site (practitioner_id, unit_id, group_id, department_id, is_primary, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(practitioner_id)
            .bind(unit.id)
            .bind(unit.group_id)
            .bind(department_id)
            .bind(false)
            .bind(crate::now())
            .fetch_one(&mut *tx)
            .await?;
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: "practitioner.add_site",
                    resource_type: "PractitionerRole",
                    resource_id: Some(id.to_string()),
                    target: Some(unit.path()),
                    outcome: Outcome::Ok,
                    detail: Some(format!("practitioner {practitioner_id}")),
                }
            )?;
            tx.commit().await?;
            id
        });
        self.practice_site(id).await
    }
}
