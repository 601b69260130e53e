//! One error type for the HTTP surface, mapped once to each dialect: RFC 9457 problem details
//! on `/api`, `OperationOutcome` on `/fhir`. Internal causes are logged, never sent.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use medgrid_domain::access::Denied;
use medgrid_domain::{FieldError, Invalid};
use medgrid_store::StoreError;

/// What went wrong, in terms a client can act on.
#[derive(Debug)]
pub enum AppError {
    /// No or bad credentials (401).
    Unauthenticated,
    /// Authenticated but not allowed (403).
    Forbidden(Denied),
    NotFound,
    /// Bad input, per field (422).
    Invalid(Invalid),
    /// A uniqueness rule (409).
    Conflict(FieldError),
    /// Too many failed logins (429).
    Throttled {
        retry_after_seconds: i64,
    },
    /// The body is larger than allowed (413).
    TooLarge,
    /// The body is not what the endpoint reads (400/415).
    BadRequest(FieldError),
    /// Something failed inside; details go to the log only (500).
    Internal(String),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound,
            StoreError::Conflict(f) => AppError::Conflict(f),
            StoreError::Invalid(i) => AppError::Invalid(i),
            StoreError::Reference(f) => AppError::Invalid(Invalid::one(f)),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<Invalid> for AppError {
    fn from(e: Invalid) -> Self {
        AppError::Invalid(e)
    }
}

impl From<FieldError> for AppError {
    fn from(e: FieldError) -> Self {
        AppError::Invalid(Invalid::one(e))
    }
}

impl From<Denied> for AppError {
    fn from(e: Denied) -> Self {
        AppError::Forbidden(e)
    }
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short title, Chinese then English.
    pub fn title(&self) -> (&'static str, &'static str) {
        match self {
            AppError::Unauthenticated => ("需要登录", "Authentication required"),
            AppError::Forbidden(_) => ("无权访问", "Forbidden"),
            AppError::NotFound => ("未找到", "Not found"),
            AppError::Invalid(_) => ("输入有误", "Invalid input"),
            AppError::Conflict(_) => ("记录冲突", "Conflict"),
            AppError::Throttled { .. } => ("尝试次数过多", "Too many attempts"),
            AppError::TooLarge => ("请求过大", "Request too large"),
            AppError::BadRequest(_) => ("请求格式有误", "Bad request"),
            AppError::Internal(_) => ("服务器内部错误", "Internal server error"),
        }
    }

    /// Per-field problems, for clients to show beside their inputs.
    pub fn fields(&self) -> Vec<FieldError> {
        match self {
            AppError::Invalid(i) => i.0.clone(),
            AppError::Conflict(f) | AppError::BadRequest(f) => vec![f.clone()],
            _ => Vec::new(),
        }
    }

    /// A sentence for people (Chinese / English).
    pub fn detail(&self) -> (String, String) {
        match self {
            AppError::Forbidden(d) => (d.message_zh.clone(), d.message_en.clone()),
            AppError::Throttled {
                retry_after_seconds,
            } => (
                format!(
                    "登录失败次数过多，请 {} 分钟后再试",
                    (retry_after_seconds + 59) / 60
                ),
                format!("too many failed logins; try again in {retry_after_seconds} s"),
            ),
            AppError::TooLarge => (
                "请求体超过允许的大小".into(),
                "the request body exceeds the allowed size".into(),
            ),
            other => {
                let fields = other.fields();
                if fields.is_empty() {
                    let (zh, en) = other.title();
                    (zh.into(), en.into())
                } else {
                    (
                        fields
                            .iter()
                            .map(|f| format!("{}：{}", f.field, f.message_zh))
                            .collect::<Vec<_>>()
                            .join("；"),
                        fields
                            .iter()
                            .map(|f| format!("{}: {}", f.field, f.message_en))
                            .collect::<Vec<_>>()
                            .join("; "),
                    )
                }
            }
        }
    }

    fn log(&self) {
        if let AppError::Internal(cause) = self {
            tracing::error!(%cause, "request failed");
        }
    }

    /// FHIR `OperationOutcome` rendering, for `/fhir`.
    pub fn into_fhir(self) -> Response {
        self.log();
        let code = match &self {
            AppError::Unauthenticated => "login",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound => "not-found",
            AppError::Invalid(_) | AppError::BadRequest(_) => "invalid",
            AppError::Conflict(_) => "duplicate",
            AppError::Throttled { .. } => "throttled",
            AppError::TooLarge => "too-costly",
            AppError::Internal(_) => "exception",
        };
        let (zh, en) = self.detail();
        let mut issues: Vec<serde_json::Value> = self
            .fields()
            .iter()
            .map(|f| {
                json!({"severity": "error", "code": code, "diagnostics": format!("{} / {}", f.message_zh, f.message_en), "expression": [f.field]})
            })
            .collect();
        if issues.is_empty() {
            issues.push(
                json!({"severity": "error", "code": code, "diagnostics": format!("{zh} / {en}")}),
            );
        }
        let body = json!({"resourceType": "OperationOutcome", "issue": issues});
        (
            self.status(),
            [(header::CONTENT_TYPE, "application/fhir+json")],
            body.to_string(),
        )
            .into_response()
    }
}

/// RFC 9457 problem details with the per-field list medgrid adds.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Chinese title and detail for the UI.
    pub title_zh: String,
    pub detail_zh: String,
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<FieldError>,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let (title_zh, title_en) = self.title();
        let (detail_zh, detail_en) = self.detail();
        let problem = Problem {
            kind: "about:blank".into(),
            title: title_en.into(),
            status: status.as_u16(),
            detail: detail_en,
            title_zh: title_zh.into(),
            detail_zh,
            errors: self.fields(),
        };
        let body = serde_json::to_string(&problem).unwrap_or_else(|_| "{}".into());
        let mut resp = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response();
        if let AppError::Throttled {
            retry_after_seconds,
        } = self
        {
            if let Ok(v) = retry_after_seconds.to_string().parse() {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if matches!(self, AppError::Unauthenticated) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}
