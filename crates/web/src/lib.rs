//! tilgang's HTTP surface: health and readiness, Prometheus metrics, and the
//! server-rendered pages. Handlers are thin: parse, call core, map the
//! result; [`error::ApiError`] is the one error-to-HTTP mapping.

pub mod api;
mod audit;
mod auth;
mod cards;
pub mod error;
pub mod factors;
mod former;
pub mod i18n;
mod licences;
mod municipality;
mod mydata;
pub mod notices;
pub mod oidc;
mod operator;
mod pages;
mod portal;
mod security;
mod sharing;
mod sharing_admin;
mod staff;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tilgang_core::store::Store;
use tilgang_core::Clock;

/// Shared state, passed as `Arc<AppState>`. Nothing here is state a second
/// replica would need: the database holds it all.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    pub version: &'static str,
    pub login: tilgang_core::identity::login::LoginConfig,
    /// Password hashing jobs that may run at once (one per core).
    pub hashing: tokio::sync::Semaphore,
    /// Keys for secrets stored in the database (TOTP seeds and the like).
    pub keys: Arc<tilgang_core::crypto::DataKeys>,
    /// The address people reach tilgang at, without a trailing slash, e.g.
    /// `https://login.example.dk`: the WebAuthn origin and the links on
    /// printed login cards.
    pub public_url: String,
    /// Extra `Contact:` lines for security.txt (`mailto:…`, `https://…`);
    /// the reporting page is always one.
    pub security_contacts: Vec<String>,
    /// The OpenID Connect provider's settings and signing-key cache.
    pub oidc: oidc::OidcState,
    /// Where e-mail notices go; `None` sends none (the badges still show).
    pub smtp: Option<notices::SmtpConfig>,
    /// The data API's settings and rate-limit buckets.
    pub api: api::ApiState,
}

/// One hashing permit per core.
pub fn hashing_permits() -> tokio::sync::Semaphore {
    tokio::sync::Semaphore::new(
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
    )
}

/// Per-process request counters for `/metrics`.
#[derive(Default)]
pub struct Metrics {
    requests: AtomicU64,
    errors: AtomicU64,
    latency_us: AtomicU64,
    /// Bytes the exports handed to the HTTP layer: what a client has read
    /// plus what is still buffered, so it shows whether a slow reader makes
    /// the server hold the export in memory.
    pub export_bytes: AtomicU64,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(pages::start))
        .route("/login", get(auth::login_form).post(auth::login_submit))
        .route("/logout", post(auth::logout))
        .route("/account", get(auth::account))
        .route("/account/sessions/end", post(auth::end_session))
        .route("/account/data", get(mydata::page))
        .route("/account/data.json", get(mydata::download))
        .route(
            "/account/password",
            get(auth::password_form).post(auth::password_submit),
        )
        .route("/activate", get(auth::activate_form).post(auth::activate_submit))
        .route("/forgot", get(auth::forgot))
        .route("/login/step-up", get(factors::step_up_page))
        .route("/login/step-up/totp", post(factors::step_up_totp))
        .route("/login/step-up/recovery", post(factors::step_up_recovery))
        .route("/login/step-up/passkey/begin", post(factors::step_up_passkey_begin))
        .route("/login/step-up/passkey", post(factors::step_up_passkey))
        .route("/login/passkey/begin", post(factors::login_passkey_begin))
        .route("/login/passkey", post(factors::login_passkey))
        .route("/account/factors/totp", get(factors::totp_page).post(factors::totp_confirm))
        .route("/account/factors/passkey", get(factors::passkey_page).post(factors::passkey_finish))
        .route("/account/factors/passkey/begin", post(factors::passkey_begin))
        .route("/account/factors/remove", post(factors::remove_factor))
        .route("/account/recovery-codes", post(factors::regenerate_recovery))
        .route("/assets/passkey.js", get(factors::passkey_script))
        .route("/.well-known/tilgang-audit-keys", get(audit_keys))
        .route("/.well-known/security.txt", get(security::security_txt))
        .route("/security", get(security::form).post(security::submit))
        .route("/login/card", get(cards::form).post(cards::submit))
        .route("/assets/jsQR.js", get(cards::jsqr))
        .route("/assets/htmx.min.js", get(pages::htmx))
        .route("/assets/card-login.js", get(cards::card_js))
        .route("/staff", get(staff::index))
        .route("/staff/{number}", get(staff::institution))
        .route("/staff/{number}/activation", post(staff::activation))
        .route("/staff/{number}/unlock", post(staff::unlock))
        .route("/staff/{number}/cards", get(staff::cards_confirm).post(staff::cards_print))
        .route("/staff/{number}/cards/revoke", post(staff::revoke_card))
        .route("/staff/{number}/grant", post(staff::grant))
        .route("/staff/{number}/revoke-right", post(staff::revoke_right))
        .route("/staff/{number}/audit", get(audit::staff_audit))
        .route("/municipality/{code}", get(municipality::page))
        .route("/municipality/{code}/audit", get(audit::municipality_audit))
        .route(
            "/municipality/{code}/sharing/{client_id}/{action}",
            post(municipality::decide),
        )
        .route("/staff/{number}/former", get(former::page))
        .route("/staff/{number}/sharing", get(sharing_admin::page))
        .route("/staff/{number}/licences", get(licences::list).post(licences::grant))
        .route("/staff/{number}/licences/csv", post(licences::upload))
        .route("/staff/{number}/licences/{id}/withdraw", post(licences::withdraw))
        .route("/operator/security-reports", get(operator::reports))
        .route("/operator/security-reports/{id}/acknowledge", post(operator::acknowledge))
        .route("/staff/{number}/sharing/{client_id}", get(sharing_admin::history))
        .route(
            "/staff/{number}/sharing/{client_id}/{action}",
            post(sharing_admin::decide),
        )
        // OpenID Connect provider (issue 4).
        .route("/provider", get(portal::overview))
        .route("/provider/services/new", get(portal::service_form))
        .route("/provider/services", post(portal::service_submit))
        .route(
            "/provider/services/{client_id}/request",
            get(portal::request_form).post(portal::request_submit),
        )
        .route(
            "/provider/services/{client_id}/history/{number}",
            get(portal::history),
        )
        .route(
            "/provider/services/{client_id}/licences",
            get(licences::provider_list).post(licences::provider_grant),
        )
        .route(
            "/provider/services/{client_id}/licences/{id}/withdraw",
            post(licences::provider_withdraw),
        )
        .route("/.well-known/openid-configuration", get(oidc::discovery))
        .route("/oidc/jwks", get(oidc::jwks))
        .route("/oidc/authorize", get(oidc::authorize_get).post(oidc::authorize_post))
        .route("/oidc/token", post(oidc::token))
        .route("/oidc/userinfo", get(oidc::userinfo_get).post(oidc::userinfo_post))
        .route("/oidc/revoke", post(oidc::revoke))
        .route("/oidc/introspect", post(oidc::introspect))
        .route("/oidc/logout", get(oidc::logout_get).post(oidc::logout_post))
        .route("/oidc/role", post(oidc::choose_role))
        .route("/account/roles", get(oidc::account_roles).post(oidc::account_roles_submit))
        // The data API for provider services (issue 6).
        .merge(api::routes())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(pages::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(
            // One line per request at INFO: method, path, status, latency.
            // Query strings are not logged: they may carry codes or tokens.
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
                })
                .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .with_state(state)
}

async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let res = next.run(req).await;
    let m = &state.metrics;
    m.requests.fetch_add(1, Ordering::Relaxed);
    if res.status().is_server_error() {
        m.errors.fetch_add(1, Ordering::Relaxed);
    }
    m.latency_us
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    res
}

/// The public key that signs audit checkpoints, as a JWK set, so anyone
/// holding an exported checkpoint can check it.
async fn audit_keys(State(state): State<Arc<AppState>>) -> Result<Response, error::ApiError> {
    let keys: Vec<_> = state
        .store
        .audit_key()
        .await?
        .iter()
        .map(|k| k.jwk())
        .collect();
    Ok(Json(serde_json::json!({ "keys": keys })).into_response())
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the database answers.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(serde_json::json!({"status": "ready", "database": state.store.dialect()})),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "unavailable", "database": state.store.dialect(), "code": e.code()})),
            )
                .into_response()
        }
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Result<Response, error::ApiError> {
    let counts = state.store.counts().await?;
    let m = &state.metrics;
    let mut out = String::with_capacity(1024);
    let mut metric = |name: &str, kind: &str, help: &str, value: i64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    };
    metric(
        "tilgang_http_requests_total",
        "counter",
        "HTTP requests answered by this process.",
        m.requests.load(Ordering::Relaxed) as i64,
    );
    metric(
        "tilgang_http_errors_total",
        "counter",
        "HTTP requests answered with a 5xx status.",
        m.errors.load(Ordering::Relaxed) as i64,
    );
    metric(
        "tilgang_http_request_duration_microseconds_total",
        "counter",
        "Total time spent answering HTTP requests.",
        m.latency_us.load(Ordering::Relaxed) as i64,
    );
    metric(
        "tilgang_export_bytes_total",
        "counter",
        "Bytes of exports handed to the HTTP layer by this process.",
        m.export_bytes.load(Ordering::Relaxed) as i64,
    );
    metric(
        "tilgang_institutions",
        "gauge",
        "Institutions in the roster.",
        counts.institutions,
    );
    metric(
        "tilgang_persons",
        "gauge",
        "Persons in the roster.",
        counts.persons,
    );
    metric(
        "tilgang_persons_active",
        "gauge",
        "Active persons in the roster.",
        counts.active_persons,
    );
    metric(
        "tilgang_groups",
        "gauge",
        "Groups in the roster.",
        counts.groups,
    );
    metric(
        "tilgang_memberships",
        "gauge",
        "Group memberships in the roster.",
        counts.memberships,
    );
    metric(
        "tilgang_audit_events",
        "gauge",
        "Events in the audit chain.",
        counts.audit_events,
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

/// Serves the router on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
