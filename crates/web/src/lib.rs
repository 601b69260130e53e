//! medgrid's HTTP surface: the JSON API (`/api/v1`, OpenAPI at `/api/openapi.json`), the
//! FHIR R4 facade (`/fhir`), and the server-rendered zh-CN web UI (`/`).
//!
//! Handlers parse input into domain types, ask [`auth::Caller::allow`], call the store, and
//! render. Every asset is compiled into the binary: hospitals run closed networks.

pub mod actions;
pub mod api;
pub mod auth;
pub mod error;
pub mod fhir;
pub mod ui;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use medgrid_store::Store;

pub use error::AppError;

/// Settings of the HTTP surface (the `[web]` table of the configuration file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// How long a browser session lasts without logging in again.
    pub session_hours: i64,
    /// Mark the session cookie `Secure` (set when served over HTTPS).
    pub cookie_secure: bool,
    /// Largest request body accepted, in bytes (layout imports included).
    pub max_body_bytes: usize,
    /// Failed logins of one user within the window before it is locked.
    pub login_max_failures: i64,
    pub login_window_minutes: i64,
    pub login_lock_minutes: i64,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            session_hours: 8,
            cookie_secure: false,
            max_body_bytes: 2 * 1024 * 1024,
            login_max_failures: 5,
            login_window_minutes: 15,
            login_lock_minutes: 15,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<WebConfig>,
    pub templates: Arc<ui::Templates>,
}

impl AppState {
    pub fn new(store: Store, config: WebConfig) -> Result<Self, AppError> {
        Ok(Self {
            store,
            config: Arc::new(config),
            templates: Arc::new(ui::Templates::load()?),
        })
    }
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .nest("/api", api::router())
        .nest("/fhir", fhir::router())
        .merge(ui::router())
        .layer(DefaultBodyLimit::max(max_body))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> impl IntoResponse {
    let ok = tokio::time::timeout(Duration::from_secs(2), state.store.ping())
        .await
        .unwrap_or(false);
    if ok {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
    }
}
