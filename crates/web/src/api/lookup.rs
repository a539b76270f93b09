//! The lookups: `/api/v1/me`, `/api/v1/users/{id}`,
//! `/api/v1/institutions/{number}`. Thin: authenticate, ask
//! `core::sharing::lookup` (the policy decides every field), write the
//! audit event, then send.

use super::{auth, record_release};
use crate::error::{ApiError, Problem};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;
use tilgang_core::audit::{actions, NewEvent};
use tilgang_core::sharing::lookup::{self, InstitutionRecord, PersonRecord, Released};
use tilgang_core::Error;

/// The one answer for a person or institution that does not exist and
/// for one the service may not see: the same status and body.
fn not_found(what: &str) -> ApiError {
    ApiError(Error::NotFound(what.into()))
}

async fn send(
    state: &AppState,
    client_id: &str,
    endpoint: &str,
    r: Released,
) -> Result<Response, ApiError> {
    let event = NewEvent::new(format!("service:{client_id}"), actions::API_LOOKUP)
        .subjects(vec![r.person_id])
        .details(json!({
            "client_id": client_id,
            "package": r.package.as_str(),
            "endpoint": endpoint,
            "cpr_released": r.cpr_released(),
        }));
    record_release(state, event).await?;
    Ok(private(Json(r.record()).into_response()))
}

fn private(mut res: Response) -> Response {
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    res
}

/// The person the access token was issued for, as the service's claims
/// show them.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "lookup",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The person, as far as the sharing policy releases them", body = PersonRecord),
        (status = 401, description = "No valid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A client-credentials token", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the service's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn me(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = auth::person(&state, &headers).await?;
    let today = state.clock.now().date();
    let Some(r) = lookup::me(&*state.store, &state.keys, &caller, today).await? else {
        // Gone from the roster, or the service is blocked at all the
        // person's institutions: the token no longer stands for anyone.
        return Err(ApiError(Error::Unauthenticated(
            "the access token is missing, unknown, expired or revoked".into(),
        )));
    };
    send(&state, caller.client_id(), "/api/v1/me", r).await
}

/// A person by user id, through the institutions where the service is
/// approved.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}",
    tag = "lookup",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The person's user id (UNI-login style)")),
    responses(
        (status = 200, description = "The person, as far as the sharing policy releases them", body = PersonRecord),
        (status = 401, description = "No valid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A person's token on a service endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such person, or none the service may see (the same answer)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the service's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn user(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (caller, released) = lookup::caller_and_user(
        &*state.store,
        &state.keys,
        auth::bearer(&headers),
        &id,
        state.clock.now(),
    )
    .await?;
    let client = auth::service_within_limit(&state, caller)?;
    let Some(r) = released else {
        return Err(not_found("no such user"));
    };
    send(&state, client.client_id(), "/api/v1/users/{id}", r).await
}

/// An institution: name, groups and hierarchy (no personal data).
#[utoipa::path(
    get,
    path = "/api/v1/institutions/{number}",
    tag = "lookup",
    security(("bearer" = [])),
    params(("number" = String, Path, description = "The institution number")),
    responses(
        (status = 200, description = "The institution", body = InstitutionRecord),
        (status = 401, description = "No valid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A person's token on a service endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such institution, or none the service may see (the same answer)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the service's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn institution(
    State(state): State<Arc<AppState>>,
    Path(number): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let client = auth::service(&state, &headers).await?;
    let Some(record) = lookup::institution(&*state.store, &client, &number).await? else {
        return Err(not_found("no such institution"));
    };
    let event = NewEvent::new(
        format!("service:{}", client.client_id()),
        actions::API_INSTITUTION,
    )
    .institution(number.clone())
    .details(json!({"client_id": client.client_id(), "endpoint": "/api/v1/institutions/{number}"}));
    record_release(&state, event).await?;
    Ok(private(Json(record).into_response()))
}
