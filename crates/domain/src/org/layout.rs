// PLACEHOLDER (being written): the agreed API only, so the workspace compiles.
use super::{CitySnapshot, CrossGridService, Level, MemberRole};
use crate::codes::{DivisionCode, Uscc};
use crate::error::{FieldError, Invalid};
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub city: CityRow,
    pub grids: Vec<GridRow>,
    pub groups: Vec<GroupRow>,
    pub units: Vec<UnitRow>,
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
    pub grid_code: Option<String>,
    pub under_code: Option<String>,
    pub role: MemberRole,
    pub level: Level,
    pub division_code: Option<DivisionCode>,
    pub uscc: Option<Uscc>,
    pub beds: Option<u32>,
    pub public: bool,
    pub services: Vec<CrossGridService>,
    pub note: Option<String>,
}
pub fn parse_layout(_bytes: &[u8]) -> Result<Layout, Invalid> {
    Err(Invalid::default())
}
impl Layout {
    pub fn snapshot(&self) -> CitySnapshot {
        CitySnapshot::default()
    }
}
