//! The data API for provider services under `/api/v1` (issue 6): bearer
//! authentication, per-service rate limits, the lookups, and the OpenAPI
//! 3.1 document generated from the handlers (`/api/openapi.json`, with a
//! Swagger UI page at `/api/docs` served from the binary).
//!
//! To add an endpoint: a handler with `#[utoipa::path]` in its own module
//! (taking a [`auth::service`] or [`auth::person`] capability first), its
//! route in [`routes`], its path in [`ApiDoc`]; any response carrying
//! personal data calls [`record_release`] before it returns the body.
//! Then `TILGANG_UPDATE_OPENAPI=1 cargo test -p tilgang-web --test http openapi`.

pub mod auth;
mod docs;
pub mod export;
pub mod lookup;
mod ratelimit;

use crate::error::{ApiError, Problem};
use crate::AppState;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use tilgang_core::audit::NewEvent;
use tilgang_core::Error;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub use ratelimit::RateLimiter;

/// The data API's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfig {
    /// Requests per second one service may make, on average …
    pub rate_per_second: f64,
    /// … and in a burst. Kept per process: N replicas allow N times this.
    pub rate_burst: u32,
    /// Audit every release of personal data. Off only for the benchmark
    /// that measures what the audit costs (`TILGANG_BENCH_DISABLE_API_AUDIT`).
    pub audit: bool,
    /// Persons per export page: what one export holds in memory at once
    /// (tests use small pages to watch the stream).
    pub export_page_size: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            rate_per_second: 50.0,
            rate_burst: 100,
            audit: true,
            export_page_size: tilgang_core::sharing::export::PAGE_SIZE,
        }
    }
}

/// The data API's part of the shared state: its settings and the rate
/// limiter's buckets (the only per-process state, see [`RateLimiter`]).
#[derive(Debug)]
pub struct ApiState {
    pub config: ApiConfig,
    pub limiter: RateLimiter,
}

impl ApiState {
    pub fn new(config: ApiConfig) -> ApiState {
        ApiState {
            limiter: RateLimiter::new(config.rate_per_second, config.rate_burst),
            config,
        }
    }
}

impl Default for ApiState {
    fn default() -> Self {
        ApiState::new(ApiConfig::default())
    }
}

/// The `/api` routes: the v1 endpoints (with a problem+json 404 for any
/// other path under `/api/v1`), the OpenAPI document and its docs page.
pub fn routes() -> Router<Arc<AppState>> {
    let v1 = Router::new()
        .route("/me", get(lookup::me))
        .route("/users/{id}", get(lookup::user))
        .route("/institutions/{number}", get(lookup::institution))
        .route("/institutions/{number}/export", get(export::export))
        .route("/changes", get(export::changes))
        .fallback(not_found);
    Router::new().nest("/api/v1", v1).merge(docs::routes())
}

async fn not_found() -> ApiError {
    ApiError(Error::NotFound("no such endpoint".into()))
}

/// Writes the audit event of a response that carries personal data, in
/// the request's own path and before the body goes out: when it fails,
/// the caller answers 500 and sends nothing. The one place to switch to a
/// batching (group-commit) writer.
pub(crate) async fn record_release(state: &AppState, event: NewEvent) -> Result<(), Error> {
    if !state.api.config.audit {
        return Ok(());
    }
    state
        .store
        .append_audit(state.clock.now(), vec![event])
        .await
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access token from /oidc/token: client credentials for the service \
                         endpoints, a person's access token (issued to the service at login) \
                         for /api/v1/me.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document, generated from the handlers' annotations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tilgang data API",
        description = "Lookups for provider services, filtered by the institutions' sharing \
                       approvals. Errors are RFC 9457 problem details with a stable `code`. \
                       See docs/api.md.",
        license(name = "AGPL-3.0-or-later", identifier = "AGPL-3.0-or-later"),
    ),
    paths(
        lookup::me,
        lookup::user,
        lookup::institution,
        export::export,
        export::changes
    ),
    components(schemas(Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "lookup", description = "A person or an institution, at login or by id"),
        (name = "export", description = "An institution's approved package in bulk, and the changes since"),
    ),
)]
pub struct ApiDoc;

/// The document served at `/api/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    // The API's version, not the crate's (which would drift every release).
    doc.info.version = "1".into();
    doc
}

/// The document as committed in `docs/openapi.json` (and printed by
/// `tilgang openapi`).
pub fn openapi_json() -> String {
    let mut out = document().to_pretty_json().unwrap_or_default();
    out.push('\n');
    out
}
