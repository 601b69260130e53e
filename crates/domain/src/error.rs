//! Field-level validation errors, worded in Chinese and English.
//!
//! Every edge (HTTP form, JSON body, CSV import, CLI flag) turns bad input into a list of
//! [`FieldError`]s so that the person who typed it sees which field is wrong and why, in the
//! language of the UI, and integrations get a stable machine-readable `code`.

use serde::Serialize;
use std::fmt;

/// One problem with one input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field as the caller named it (`uscc`, `role`, `line 12: name`…).
    pub field: String,
    /// Stable machine-readable reason, e.g. `check_digit`, `required`, `too_long`.
    pub code: &'static str,
    /// Message for people, Simplified Chinese.
    pub message_zh: String,
    /// Message for people, English.
    pub message_en: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: &'static str,
        message_zh: impl Into<String>,
        message_en: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code,
            message_zh: message_zh.into(),
            message_en: message_en.into(),
        }
    }

    pub fn required(field: impl Into<String>) -> Self {
        Self::new(field, "required", "必填项不能为空", "is required")
    }

    pub fn too_long(field: impl Into<String>, max_chars: usize) -> Self {
        Self::new(
            field,
            "too_long",
            format!("长度不能超过 {max_chars} 个字符"),
            format!("must be at most {max_chars} characters"),
        )
    }

    /// The same error reported under another field name (e.g. prefixed with a line number).
    pub fn renamed(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} / {}",
            self.field, self.message_zh, self.message_en
        )
    }
}

/// All the problems found in one piece of input. Never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Invalid(pub Vec<FieldError>);

impl Invalid {
    pub fn one(error: FieldError) -> Self {
        Self(vec![error])
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    /// Collects the error of `result` (if any) and hands back its value.
    pub fn check<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    /// `Ok(value)` when nothing was collected, otherwise all collected errors.
    pub fn into_result<T>(self, value: T) -> Result<T, Invalid> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl From<FieldError> for Invalid {
    fn from(e: FieldError) -> Self {
        Self::one(e)
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for Invalid {}

/// A trimmed, non-empty text of bounded length, counted in characters (not bytes) so that
/// Chinese names are measured the way people count them.
pub fn text(field: &str, raw: &str, max_chars: usize) -> Result<String, FieldError> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(FieldError::required(field));
    }
    if t.chars().count() > max_chars {
        return Err(FieldError::too_long(field, max_chars));
    }
    if t.chars().any(|c| c.is_control()) {
        return Err(FieldError::new(
            field,
            "control_character",
            "不能包含控制字符",
            "must not contain control characters",
        ));
    }
    Ok(t.to_owned())
}

/// Like [`text`] but an empty input is `None`.
pub fn optional_text(
    field: &str,
    raw: &str,
    max_chars: usize,
) -> Result<Option<String>, FieldError> {
    if raw.trim().is_empty() {
        Ok(None)
    } else {
        text(field, raw, max_chars).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_counts_characters_not_bytes() {
        let name = "金华市人民医院"; // 7 characters, 21 bytes
        assert_eq!(text("name", name, 7).as_deref(), Ok(name));
        assert_eq!(text("name", name, 6).map_err(|e| e.code), Err("too_long"));
    }

    #[test]
    fn text_trims_and_rejects_blank_and_control() {
        assert_eq!(text("n", "  a ", 5).as_deref(), Ok("a"));
        assert_eq!(text("n", "   ", 5).map_err(|e| e.code), Err("required"));
        assert_eq!(
            text("n", "a\u{0}b", 5).map_err(|e| e.code),
            Err("control_character")
        );
        assert_eq!(optional_text("n", " ", 5), Ok(None));
    }

    #[test]
    fn invalid_collects_every_problem() {
        let mut inv = Invalid::default();
        assert_eq!(inv.check(text("a", "", 3)), None);
        assert_eq!(inv.check(text("b", "xyz", 3)).as_deref(), Some("xyz"));
        assert_eq!(inv.check(text("c", "wxyz", 3)), None);
        let err = inv.into_result(()).unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["a", "c"]);
    }
}
