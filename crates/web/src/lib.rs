//! medgrid's HTTP surface: the JSON API (`/api/v1`, OpenAPI at `/api/openapi.json`), the
//! FHIR R4 facade (`/fhir`), and the server-rendered zh-CN web UI (`/`).
//!
//! Handlers parse input into domain types, ask [`auth::Caller::allow`], call the store, and
//! render. Every asset is compiled into the binary: hospitals run closed networks.

pub mod actions;
pub mod api;
pub mod assessments;
pub mod auth;
pub mod capacity;
pub mod case_payments;
pub mod catalogues;
pub mod error;
pub mod fhir;
pub mod indicators;
pub mod insurance;
pub mod jobs;
pub mod persons;
pub mod referrals;
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

use medgrid_domain::capacity::Policy;
use medgrid_domain::indicator::Library;
use medgrid_domain::referral::Timers;
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
    /// Referral timers (`[web.referral]`).
    pub referral: ReferralConfig,
}

/// When referrals are escalated, expired and offered freed slots (R4.5).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReferralConfig {
    /// Hours a sent referral may wait to be accepted: routine, urgent, green channel.
    pub accept_hours: [i64; 3],
    /// Hours an accepted referral may wait to be booked: routine, urgent, green channel.
    pub book_hours: [i64; 3],
    /// Hours a queued referral may wait for a slot: routine, urgent, green channel.
    pub queue_hours: [i64; 3],
    /// Hours after its last move that an open, unbooked referral expires.
    pub expire_hours: i64,
    /// Hours a freed slot stays held for the first referral in the queue.
    pub offer_hours: i64,
    /// Seconds between two passes of the timers.
    pub timer_interval_seconds: u64,
}

impl Default for ReferralConfig {
    fn default() -> Self {
        let t = Timers::default();
        Self {
            accept_hours: t.accept_hours,
            book_hours: t.book_hours,
            queue_hours: t.queue_hours,
            expire_hours: t.expire_hours,
            offer_hours: 24,
            timer_interval_seconds: 60,
        }
    }
}

impl ReferralConfig {
    pub fn timers(&self) -> Timers {
        Timers {
            accept_hours: self.accept_hours,
            book_hours: self.book_hours,
            queue_hours: self.queue_hours,
            expire_hours: self.expire_hours,
        }
    }
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
            referral: ReferralConfig::default(),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<WebConfig>,
    pub templates: Arc<ui::Templates>,
    /// The reservation policy (seed 002's shares and release window).
    pub policy: Policy,
    pub timers: Timers,
    pub timers_offer_hours: i64,
    /// The indicator library in force (R11.1).
    pub library: Arc<Library>,
}

impl AppState {
    pub fn new(store: Store, config: WebConfig) -> Result<Self, AppError> {
        let library = Library::shipped().map_err(|e| AppError::Internal(e.to_string()))?;
        medgrid_analytics::evaluate::check_library(&library)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        Ok(Self {
            library: Arc::new(library),
            store,
            timers: config.referral.timers(),
            timers_offer_hours: config.referral.offer_hours,
            config: Arc::new(config),
            templates: Arc::new(ui::Templates::load()?),
            policy: Policy::default(),
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
