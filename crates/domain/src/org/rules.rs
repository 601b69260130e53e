// PLACEHOLDER (being written): the agreed API only, so the workspace compiles.
use super::CitySnapshot;
use serde::Serialize;
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub rule: &'static str,
    pub subject: String,
    pub message_zh: String,
    pub message_en: String,
}
pub fn check_layout(_city: &CitySnapshot) -> Vec<Finding> {
    Vec::new()
}
