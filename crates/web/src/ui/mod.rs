//! The web UI (zh-CN), rendered on the server from templates compiled into the binary.
//! Forms post back with a per-session CSRF token; pages work without JavaScript.

mod accounts;
mod assessments;
mod capacity;
mod case_payments;
mod cockpit;
mod insurance;
mod persons;
mod referrals;
mod registry;

use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::{context, Environment, Value};
use serde::{Deserialize, Serialize};

use medgrid_domain::access::{authorize, Action, OrgPath, Role};

use crate::auth::{self, same_secret, Caller, LoginRequired, UiCaller, SESSION_COOKIE};
use crate::error::AppError;
use crate::AppState;

/// The page templates, parsed once at start.
pub struct Templates {
    env: Environment<'static>,
}

macro_rules! embedded_templates {
    ($($name:literal),+ $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/", $name)))),+]
    };
}

const TEMPLATES: &[(&str, &str)] = embedded_templates!(
    "base.html",
    "login.html",
    "error.html",
    "tree.html",
    "unit.html",
    "users.html",
    "tokens.html",
    "audit.html",
    "referrals.html",
    "referral_new.html",
    "referral.html",
    "referral_board.html",
    "follow_ups.html",
    "capacity.html",
    "compliance.html",
    "bed_pool.html",
    "catalogues.html",
    "cockpit.html",
    "cockpit_records.html",
    "assessments.html",
    "assessment.html",
    "persons.html",
    "person.html",
    "match_reviews.html",
    "match_review.html",
    "insurance.html",
    "case_payment_run.html",
    "case_payment_case.html",
);

/// Chinese labels of input fields, for error messages in forms.
fn field_label(field: &str) -> String {
    let label = match field {
        "code" => "编码",
        "name" => "名称",
        "legal_name" => "法定名称",
        "second_name" => "第二名称",
        "kind" => "类别",
        "beds" => "床位",
        "licence_no" => "执业证书编码",
        "title" => "职称",
        "sex" => "性别",
        "specialty" => "专业",
        "department_id" => "科室",
        "unit_id" => "执业机构",
        "username" => "用户名",
        "display_name" => "姓名",
        "role" => "角色",
        "org" => "所属机构",
        "password" => "密码",
        "uscc" => "统一社会信用代码",
        "division_code" => "行政区划代码",
        "resident_id" => "患者",
        "diagnosis" => "诊断",
        "reason" => "理由",
        "summary" => "病情摘要",
        "care_plan" => "康复/随访方案",
        "outside_catalogue_reason" => "目录外理由",
        "to_unit_id" => "接收机构",
        "to_department_code" => "接收科室",
        "patient_choice" => "患者自选",
        "practitioner_id" => "接诊医师",
        "suggested_unit_id" => "建议机构",
        "decline_reason" => "拒绝理由",
        "outcome_summary" => "接诊小结",
        "status" => "状态",
        "party" => "操作方",
        "slot" => "号源",
        "referral_id" => "转诊",
        "idempotency_key" => "幂等键",
        "department_code" => "科室",
        "transition" => "操作",
        "weekday" => "星期",
        "start_time" => "开始时间",
        "slot_minutes" => "每号分钟",
        "capacity" => "号源数",
        "reserved" => "转诊预留",
        "reserved_beds" => "转诊预留床位",
        "expert_visit" => "专家下沉",
        "ward" => "病区",
        "admit_on" => "入院日期",
        "file" => "附件",
        "file_name" => "文件名",
        "base_version" => "目录版本",
        "until" => "结束日期",
        "group_id" => "医疗集团",
        "period" => "统计期",
        "period_kind" => "统计期类型",
        "measure" => "统计量",
        "indicator_id" => "指标",
        "from" => "起始月份",
        "target" => "目标值",
        "amber" => "预警线",
        "scheme" => "考核方案",
        "dimensions" => "考核维度",
        "merged_id" => "被合并居民",
        "verdict" => "核对结论",
        "amount" => "预算总额",
        "fund" => "基金",
        "year" => "年度",
        "month" => "月份",
        "score" => "考核得分",
        "prepayment" => "预付规则",
        "settlement" => "清算规则",
        "local_record_no" => "本机构档案号",
        "birth_date" => "出生日期",
        other => other,
    };
    label.to_owned()
}

impl Templates {
    pub fn load() -> Result<Self, AppError> {
        let mut env = Environment::new();
        env.add_filter("label", field_label);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .map_err(|e| AppError::Internal(format!("template {name}: {e}")))?;
        }
        Ok(Self { env })
    }

    pub fn render(&self, name: &str, ctx: Value) -> Result<Html<String>, AppError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map(Html)
            .map_err(|e| AppError::Internal(format!("render {name}: {e}")))
    }
}

/// Why a page could not be shown.
pub enum UiError {
    Login(LoginRequired),
    App(AppError),
    /// A page error that must be rendered with the caller's navigation.
    Page(Box<(AppState, Option<Caller>, AppError)>),
}

impl From<AppError> for UiError {
    fn from(e: AppError) -> Self {
        UiError::App(e)
    }
}

impl From<medgrid_store::StoreError> for UiError {
    fn from(e: medgrid_store::StoreError) -> Self {
        UiError::App(e.into())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            UiError::Login(LoginRequired { next }) => {
                let target = format!("/login?next={}", encode_component(&next));
                Redirect::to(&target).into_response()
            }
            UiError::App(e) => plain_error_page(&e),
            UiError::Page(boxed) => {
                let (state, caller, e) = *boxed;
                let status = e.status();
                let (title, _) = e.title();
                let (detail, _) = e.detail();
                let ctx = context! { nav => caller.as_ref().map(nav), title, detail, status => status.as_u16() };
                match state.templates.render("error.html", ctx) {
                    Ok(html) => (status, html).into_response(),
                    Err(_) => plain_error_page(&e),
                }
            }
        }
    }
}

fn plain_error_page(e: &AppError) -> Response {
    let (title, title_en) = e.title();
    if let AppError::Internal(cause) = e {
        tracing::error!(%cause, "page failed");
    }
    (
        e.status(),
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!("<!doctype html><meta charset=utf-8><title>{title}</title><p>{title} / {title_en}</p><p><a href=\"/\">返回首页</a></p>"),
    )
        .into_response()
}

/// Percent-encodes a query component (the login page's `next`).
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Only same-site paths are followed after login (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".into(),
    }
}

/// What the navigation frame needs to know about the caller.
#[derive(Serialize)]
pub struct Nav {
    pub username: String,
    pub display_name: String,
    pub role: &'static str,
    pub csrf: String,
    pub can_users: bool,
    pub can_audit: bool,
    /// Clinicians and coordinators work with referrals.
    pub can_referrals: bool,
    pub can_board: bool,
    pub can_follow_ups: bool,
    /// Managers keep timetables and wards; those who steer read the reports.
    pub can_capacity: bool,
    pub can_reports: bool,
    /// Assessments rank a group's members: for those who may read the whole group.
    pub can_assessments: bool,
    pub can_catalogues: bool,
    /// Those who steer, pay or regulate see the cockpit, from their own organisation down.
    pub can_cockpit: bool,
    /// The group's coordinator settles the patient index's doubts.
    pub can_match_reviews: bool,
    /// The insurance budget: the bureau's officer runs it, those who steer read it.
    pub can_insurance: bool,
}

pub fn nav(c: &Caller) -> Nav {
    let own = c.principal.scope.path;
    Nav {
        username: c.user.username.clone(),
        display_name: c.user.display_name.clone(),
        role: c.principal.role.label_zh(),
        csrf: c.csrf_token.clone().unwrap_or_default(),
        can_users: authorize(&c.principal, Action::UserRead, &own).is_ok(),
        can_audit: authorize(&c.principal, Action::AuditRead, &own).is_ok(),
        can_referrals: authorize(&c.principal, Action::PatientRead, &own).is_ok(),
        can_board: c.principal.role == Role::ReferralCoordinator,
        can_follow_ups: c.principal.role == Role::FamilyDoctor && own.unit.is_some(),
        can_capacity: authorize(&c.principal, Action::UnitResourcesWrite, &own).is_ok()
            && (own.unit.is_some() || own.group.is_some()),
        can_reports: authorize(&c.principal, Action::ReportRead, &own).is_ok()
            && own.group.is_some(),
        can_assessments: own.group.is_some()
            && authorize(
                &c.principal,
                Action::ReportRead,
                &OrgPath { unit: None, ..own },
            )
            .is_ok(),
        can_catalogues: own.group.is_some(),
        can_cockpit: authorize(&c.principal, Action::ReportRead, &own).is_ok(),
        can_match_reviews: own.group.is_some()
            && authorize(&c.principal, Action::PatientIndexReview, &own).is_ok(),
        // Whoever may read a whole group's reports (a city's or a group's, not a unit's).
        can_insurance: authorize(
            &c.principal,
            Action::ReportRead,
            &OrgPath { unit: None, ..own },
        )
        .is_ok(),
    }
}

/// A use case's failure shown as a page to the signed-in caller.
pub fn page(state: &AppState, caller: &Caller, e: AppError) -> UiError {
    UiError::Page(Box::new((state.clone(), Some(caller.clone()), e)))
}

/// Refuses a form whose CSRF token is not the session's.
pub fn check_csrf(caller: &Caller, submitted: &str) -> Result<(), AppError> {
    match &caller.csrf_token {
        Some(t) if same_secret(t, submitted) => Ok(()),
        _ => Err(AppError::Forbidden(medgrid_domain::access::Denied {
            message_zh: "表单已过期或来源不明，请刷新页面后重试".into(),
            message_en: "the form is stale or cross-site; reload the page and try again".into(),
        })),
    }
}

/// Whether the caller may perform `action` at `target`, for showing or hiding controls
/// (the handlers check again through [`Caller::allow`]).
pub fn may(c: &Caller, action: Action, target: &OrgPath) -> bool {
    authorize(&c.principal, action, target).is_ok()
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(registry::home))
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout))
        .route("/units/{id}", get(registry::unit_page))
        .route("/units/{id}/departments", post(registry::add_department))
        .route(
            "/units/{id}/practitioners",
            post(registry::add_practitioner),
        )
        .route(
            "/admin/users",
            get(accounts::users_page).post(accounts::create_user),
        )
        .route("/admin/users/{id}/disable", post(accounts::disable_user))
        .route("/admin/users/{id}/enable", post(accounts::enable_user))
        .route(
            "/account/tokens",
            get(accounts::tokens_page).post(accounts::create_token),
        )
        .route("/account/tokens/{id}/revoke", post(accounts::revoke_token))
        .route("/audit", get(accounts::audit_page))
        .route(
            "/referrals",
            get(referrals::list_page).post(referrals::create),
        )
        .route("/referrals/new", get(referrals::new_page))
        .route("/referrals/board", get(referrals::board_page))
        .route("/referrals/{id}", get(referrals::detail_page))
        .route("/referrals/{id}/move", post(referrals::move_referral))
        .route("/referrals/{id}/book", post(referrals::book))
        .route(
            "/referrals/{id}/cancel-booking",
            post(referrals::cancel_booking),
        )
        .route("/referrals/{id}/queue", post(referrals::queue))
        .route("/referrals/{id}/book-bed", post(referrals::book_bed))
        .route("/referrals/{id}/cancel-bed", post(referrals::cancel_bed))
        .route(
            "/referrals/{id}/attachments",
            post(referrals::attach).layer(DefaultBodyLimit::max(crate::api::ATTACHMENT_BODY)),
        )
        .route(
            "/referrals/{id}/attachments/{attachment_id}",
            get(referrals::download),
        )
        .route("/notifications/read", post(referrals::mark_read))
        .route("/follow-ups", get(referrals::follow_ups_page))
        .route("/capacity", get(capacity::timetable_page))
        .route("/capacity/{unit}/schedules", post(capacity::add_schedule))
        .route(
            "/capacity/{unit}/schedules/{schedule}/reservation",
            post(capacity::change_reservation),
        )
        .route("/capacity/{unit}/wards", post(capacity::add_ward))
        .route("/capacity/compliance", get(capacity::compliance_page))
        .route("/cockpit", get(cockpit::cockpit))
        .route("/assessments", get(assessments::list))
        .route("/assessments/run", axum::routing::post(assessments::run))
        .route(
            "/assessments/scheme",
            axum::routing::post(assessments::save_scheme),
        )
        .route("/assessments/{id}", get(assessments::show))
        .route("/assessments/{id}/report.xlsx", get(assessments::export))
        .route("/cockpit/records", get(cockpit::records))
        .route("/cockpit/targets", axum::routing::post(cockpit::set_target))
        .route("/cockpit/table.csv", get(cockpit::export_csv))
        .route("/cockpit/table.xlsx", get(cockpit::export_xlsx))
        .route("/capacity/beds", get(capacity::bed_pool_page))
        .route("/catalogues", get(capacity::catalogues_page))
        .route(
            "/catalogues/{group}/{kind}",
            post(capacity::publish_catalogue),
        )
        .route("/insurance", get(insurance::page_view))
        .route("/insurance/budget", post(insurance::set_budget))
        .route("/insurance/prepay", post(insurance::prepay))
        .route("/insurance/settle", post(insurance::settle))
        .route("/insurance/case-payments", post(case_payments::run))
        .route("/insurance/public-funds", post(insurance::run_public_funds))
        .route(
            "/insurance/claims",
            post(insurance::import_claims).layer(DefaultBodyLimit::max(crate::api::CLAIMS_BODY)),
        )
        .route(
            "/insurance/case-payments/{id}",
            get(case_payments::run_page),
        )
        .route(
            "/insurance/case-payments/{id}/statement.xlsx",
            get(case_payments::export),
        )
        .route(
            "/insurance/case-payments/{id}/cases/{claim_id}",
            get(case_payments::case_page),
        )
        .route(
            "/insurance/settlements/{id}/statement.xlsx",
            get(insurance::export),
        )
        .route("/persons", get(persons::search_page))
        .route("/persons/{id}", get(persons::person_page))
        .route("/persons/{id}/merge", post(persons::merge))
        .route(
            "/persons/{id}/merges/{merge_id}/undo",
            post(persons::unmerge),
        )
        .route("/match-reviews", get(persons::queue_page))
        .route("/match-reviews/{id}", get(persons::review_page))
        .route("/match-reviews/{id}/decision", post(persons::decide))
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/app.css"),
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/app.js"),
    )
}

/// The login form's CSRF cookie: the form must echo it (double submit), since there is no
/// session yet to hold a token.
const LOGIN_CSRF_COOKIE: &str = "medgrid_login";

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

async fn login_page(
    State(state): State<AppState>,
    Query(q): Query<NextQuery>,
) -> Result<Response, UiError> {
    render_login(&state, q.next.as_deref(), None, "", StatusCode::OK)
}

fn render_login(
    state: &AppState,
    next: Option<&str>,
    error: Option<String>,
    username: &str,
    status: StatusCode,
) -> Result<Response, UiError> {
    let token = auth::new_secret();
    let html = state.templates.render(
        "login.html",
        context! { next => safe_next(next), error, username, csrf => token },
    )?;
    let cookie = format!(
        "{LOGIN_CSRF_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict{}",
        secure(state)
    );
    Ok((status, [(header::SET_COOKIE, cookie)], html).into_response())
}

fn secure(state: &AppState) -> &'static str {
    if state.config.cookie_secure {
        "; Secure"
    } else {
        ""
    }
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

async fn login_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth::ClientIp(ip): auth::ClientIp,
    Form(form): Form<LoginForm>,
) -> Result<Response, UiError> {
    let cookie_token = auth::cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if cookie_token.is_empty() || !same_secret(&cookie_token, &form.csrf) {
        return render_login(
            &state,
            form.next.as_deref(),
            Some("登录表单已过期，请重试 / the form expired, please try again".into()),
            &form.username,
            StatusCode::FORBIDDEN,
        );
    }
    match auth::login(&state, form.username.trim(), &form.password, ip.as_deref()).await {
        Ok(user) => {
            let session_id = auth::new_secret();
            let csrf = auth::new_secret();
            let expires = chrono::Utc::now() + chrono::Duration::hours(state.config.session_hours);
            state
                .store
                .create_session(user.id, &auth::digest(&session_id), &csrf, expires)
                .await?;
            let max_age = state.config.session_hours * 3600;
            let cookie = format!(
                "{SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
                secure(&state)
            );
            let mut resp = Redirect::to(&safe_next(form.next.as_deref())).into_response();
            if let Ok(v) = cookie.parse() {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            Ok(resp)
        }
        Err(e @ AppError::Throttled { .. }) => {
            let (zh, _) = e.detail();
            render_login(
                &state,
                form.next.as_deref(),
                Some(zh),
                &form.username,
                StatusCode::TOO_MANY_REQUESTS,
            )
        }
        Err(AppError::Unauthenticated) => render_login(
            &state,
            form.next.as_deref(),
            Some("用户名或密码错误 / wrong username or password".into()),
            &form.username,
            StatusCode::UNAUTHORIZED,
        ),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    UiCaller(caller): UiCaller,
    Form(form): Form<CsrfForm>,
) -> Result<Response, UiError> {
    check_csrf(&caller, &form.csrf)?;
    if let Some(id) = auth::cookie(&headers, SESSION_COOKIE) {
        state.store.delete_session(&auth::digest(&id)).await?;
    }
    let mut resp = Redirect::to("/login").into_response();
    if let Ok(v) =
        format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0").parse()
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// The roles a caller may grant, for the user form.
pub fn assignable_roles(actor: Role) -> Vec<(&'static str, &'static str)> {
    Role::ALL
        .iter()
        .filter(|r| medgrid_domain::access::can_assign(actor, **r))
        .map(|r| (r.as_str(), r.label_zh()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        Templates::load().unwrap();
    }

    #[test]
    fn next_is_same_site_only() {
        assert_eq!(safe_next(Some("/units/3")), "/units/3");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn next_is_encoded_for_the_login_redirect() {
        assert_eq!(encode_component("/audit?x=1&y=2"), "/audit%3Fx%3D1%26y%3D2");
    }
}
