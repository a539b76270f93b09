//! Who calls the data API: a bearer access token from `/oidc/token`, read
//! from the store by its hash (or opened, when sealed: `oidc::sealed`) and
//! turned into a capability by `core::sharing::lookup::caller`, in one
//! read. Unknown, expired and revoked tokens
//! are one 401; a token of the wrong kind is a 403. Every authenticated
//! call takes a token from its service's rate-limit bucket.

use crate::AppState;
use axum::http::{header, HeaderMap};
use tilgang_core::sharing::lookup::{self, Caller, PersonCaller, ProviderClient};
use tilgang_core::{Error, Result};

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The caller behind the request's bearer token, within its rate limit.
pub async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller> {
    let now = state.clock.now().unix_timestamp();
    let caller = lookup::caller(&*state.store, &state.keys, bearer(headers), now).await?;
    within_limit(state, caller)
}

fn within_limit(state: &AppState, caller: Caller) -> Result<Caller> {
    state
        .api
        .limiter
        .take(caller.client_id())
        .map_err(|retry_after_s| Error::RateLimited { retry_after_s })?;
    Ok(caller)
}

/// A service endpoint: a client-credentials token.
pub async fn service(state: &AppState, headers: &HeaderMap) -> Result<ProviderClient> {
    service_within_limit(state, caller(state, headers).await?)
}

/// [`service`] for a caller already read (`lookup::caller_and_user`).
pub fn service_within_limit(state: &AppState, caller: Caller) -> Result<ProviderClient> {
    match within_limit(state, caller)? {
        Caller::Service(c) => Ok(c),
        Caller::Person(_) => Err(Error::Forbidden(
            "this endpoint needs the service's own token (client credentials), not a person's"
                .into(),
        )),
    }
}

/// `/me`: a person's access token.
pub async fn person(state: &AppState, headers: &HeaderMap) -> Result<PersonCaller> {
    match caller(state, headers).await? {
        Caller::Person(c) => Ok(c),
        Caller::Service(_) => Err(Error::Forbidden(
            "/api/v1/me needs a person's access token from a login, not client credentials".into(),
        )),
    }
}
