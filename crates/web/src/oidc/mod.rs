//! The OpenID Connect provider's HTTP side: discovery, JWKS, authorization
//! (with the login round trip), token, userinfo, revocation, introspection
//! and RP-initiated logout. Protocol state lives in the database; the
//! process keeps only a short cache of opened signing keys (see
//! [`OidcState`]).

mod authorize;
pub mod jwks_cache;
mod roles;
mod token;

pub use authorize::{authorize_get, authorize_post, logout_get, logout_post};
pub use roles::{account_roles, account_roles_submit, choose as choose_role};
pub use token::{introspect, revoke, token, userinfo_get, userinfo_post};

use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::json;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tilgang_core::audit::actions;
use tilgang_core::audit::NewEvent;
use tilgang_core::crypto::DataKeys;
use tilgang_core::oidc::keys::{self, Alg, KeyRecord, Signer};
use tilgang_core::oidc::{OidcConfig, Service};
use tilgang_core::store::Store;
use tilgang_core::{Clock, Error, Result};

/// How long opened signing keys are reused before the database is asked
/// again. A key rotated on another replica is picked up within this time;
/// the old key stays published long after, so tokens it signs still verify.
const KEY_CACHE: Duration = Duration::from_secs(60);

/// The provider's configuration and its one cache: the opened signing
/// keys (decrypting and parsing an RSA key per token would cost more than
/// the rest of the request). Nothing here is state another replica needs.
#[derive(Default)]
pub struct OidcState {
    pub config: OidcConfig,
    signers: RwLock<Option<(Instant, Vec<Arc<Signer>>)>>,
    /// Keys fetched from `private_key_jwt` services' JWKS URIs.
    jwks_cache: jwks_cache::JwksCache,
}

impl OidcState {
    pub fn new(config: OidcConfig) -> Self {
        OidcState {
            config,
            signers: RwLock::new(None),
            jwks_cache: jwks_cache::JwksCache::default(),
        }
    }
}

/// Generates the signing keys that are missing (first start), and replaces
/// keys older than the rotation interval. Returns the keys now stored.
pub async fn ensure_keys(
    store: &dyn Store,
    data_keys: &DataKeys,
    clock: &dyn Clock,
    config: &OidcConfig,
) -> Result<Vec<KeyRecord>> {
    let now = clock.now().unix_timestamp();
    let records = store.signing_keys(now).await?;
    for &alg in Alg::ALL {
        match keys::current(&records, alg, now) {
            None => {
                let new = generate(alg, data_keys, now).await?;
                store
                    .rotate_keys(&[new], true, now, clock.now(), key_event(alg, "first"))
                    .await?;
            }
            Some(k) if k.created_at + config.key_rotation_s <= now => {
                rotate(store, data_keys, clock, config, alg, "schedule").await?;
            }
            Some(_) => {}
        }
    }
    store.signing_keys(now).await
}

fn key_event(alg: Alg, why: &str) -> NewEvent {
    NewEvent::new("system:oidc", actions::OIDC_KEY_ROTATED)
        .details(json!({"alg": alg.as_str(), "reason": why}))
}

async fn generate(alg: Alg, data_keys: &DataKeys, now: i64) -> Result<KeyRecord> {
    let dk = data_keys.clone();
    // RSA key generation takes a while: off the async workers.
    tokio::task::spawn_blocking(move || keys::generate(alg, &dk, now))
        .await
        .map_err(Error::store)?
}

/// Replaces the signing key of `alg`; the old one keeps being published
/// until every ID token it signed has expired.
pub async fn rotate(
    store: &dyn Store,
    data_keys: &DataKeys,
    clock: &dyn Clock,
    config: &OidcConfig,
    alg: Alg,
    why: &str,
) -> Result<String> {
    let now = clock.now().unix_timestamp();
    let new = generate(alg, data_keys, now).await?;
    let kid = new.kid.clone();
    // A minute's margin for clocks that disagree.
    let retire_at = now + config.id_token_lifetime_s + 60;
    store
        .rotate_keys(&[new], false, retire_at, clock.now(), key_event(alg, why))
        .await?;
    Ok(kid)
}

/// The key that signs for `alg` now.
pub(crate) async fn signer(state: &AppState, alg: Alg) -> Result<Arc<Signer>> {
    let cached = state
        .oidc
        .signers
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .filter(|(at, _)| at.elapsed() < KEY_CACHE)
        .and_then(|(_, s)| s.iter().find(|s| s.alg == alg).cloned());
    if let Some(s) = cached {
        return Ok(s);
    }
    let records = ensure_keys(
        &*state.store,
        &state.keys,
        &*state.clock,
        &state.oidc.config,
    )
    .await?;
    let now = state.clock.now().unix_timestamp();
    let mut opened = Vec::new();
    for &a in Alg::ALL {
        if let Some(rec) = keys::current(&records, a, now) {
            opened.push(Arc::new(Signer::open(rec, &state.keys)?));
        }
    }
    let found = opened.iter().find(|s| s.alg == alg).cloned();
    *state
        .oidc
        .signers
        .write()
        .unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), opened));
    found.ok_or_else(|| Error::Crypto(format!("no {} signing key", alg.as_str())))
}

pub(crate) fn issuer(state: &AppState) -> &str {
    &state.public_url
}

pub async fn discovery(State(state): State<Arc<AppState>>) -> Response {
    let iss = issuer(&state);
    let doc = json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/oidc/authorize"),
        "token_endpoint": format!("{iss}/oidc/token"),
        "userinfo_endpoint": format!("{iss}/oidc/userinfo"),
        "jwks_uri": format!("{iss}/oidc/jwks"),
        "revocation_endpoint": format!("{iss}/oidc/revoke"),
        "introspection_endpoint": format!("{iss}/oidc/introspect"),
        "end_session_endpoint": format!("{iss}/oidc/logout"),
        "scopes_supported": ["openid", "profile", "email"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": tilgang_core::oidc::GRANTS,
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "userinfo_signing_alg_values_supported": ["none"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid", "at_hash",
            "actor_groups", "institutions", "groups", "name", "given_name", "family_name",
            "preferred_username", "email", "email_verified"
        ],
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "acr_values_supported": [
            tilgang_core::identity::session::ACR_ONE_FACTOR,
            tilgang_core::identity::session::ACR_TWO_FACTOR
        ],
        "prompt_values_supported": ["none", "login", "consent"],
        "display_values_supported": ["page", "popup"],
        "claim_types_supported": ["normal"],
        "ui_locales_supported": ["da", "en"],
        "claims_locales_supported": ["da"],
        "authorization_response_iss_parameter_supported": true,
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": false,
    });
    let mut res = Json(doc).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}

pub async fn jwks(State(state): State<Arc<AppState>>) -> Result<Response, crate::error::ApiError> {
    // Read from the database every time (cheap, public): a key another
    // replica just made is published at once.
    let mut records = state
        .store
        .signing_keys(state.clock.now().unix_timestamp())
        .await?;
    if records.is_empty() {
        records = ensure_keys(
            &*state.store,
            &state.keys,
            &*state.clock,
            &state.oidc.config,
        )
        .await?;
    }
    let mut res = Json(keys::jwks(&records, state.clock.now().unix_timestamp())).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(res)
}

/// An OAuth error from the token, revocation or introspection endpoint
/// (RFC 6749 §5.2).
pub(crate) struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    /// Basic authentication was tried: answer with a challenge.
    pub basic_challenge: bool,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status: if error == "invalid_client" {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            },
            error,
            description: description.into(),
            basic_challenge: false,
        }
    }
}

impl From<Error> for OAuthError {
    fn from(e: Error) -> Self {
        tracing::error!(code = e.code(), error = %e, "OIDC request failed");
        OAuthError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "server_error",
            description: "Something went wrong on our side; please try again later.".into(),
            basic_challenge: false,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response();
        no_store(&mut res);
        if self.basic_challenge || self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tilgang\""),
            );
        }
        res
    }
}

pub(crate) fn no_store(res: &mut Response) {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

fn form_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("v={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Client authentication (RFC 6749 §2.3): `client_secret_basic`,
/// `client_secret_post`, or `none` for a public client, which names itself
/// with `client_id`. More than one method at once is refused.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    form: &std::collections::HashMap<String, String>,
) -> Result<Service, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .map(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .and_then(|s| {
                    s.split_once(':')
                        .map(|(id, secret)| (form_decode(id), form_decode(secret)))
                })
        });
    let post_secret = form.get("client_secret");
    if form.contains_key("client_assertion") || form.contains_key("client_assertion_type") {
        if basic.is_some() || post_secret.is_some() {
            return Err(OAuthError::new(
                "invalid_request",
                "use one client authentication method",
            ));
        }
        return private_key_jwt(state, form).await;
    }
    let refuse = |basic: bool| {
        let mut e = OAuthError::new("invalid_client", "client authentication failed");
        e.basic_challenge = basic;
        e
    };
    let (client_id, secret, via_basic) = match (basic, post_secret) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::new(
                "invalid_request",
                "use one client authentication method",
            ))
        }
        (Some(None), _) => return Err(refuse(true)),
        (Some(Some((id, secret))), None) => {
            if form.get("client_id").is_some_and(|c| *c != id) {
                return Err(refuse(true));
            }
            (id, Some(secret), true)
        }
        (None, secret) => match form.get("client_id") {
            Some(id) => (id.clone(), secret.cloned(), false),
            None => return Err(refuse(false)),
        },
    };
    let Some(service) = state.store.service(&client_id).await? else {
        return Err(refuse(via_basic));
    };
    match (service.public, secret) {
        (false, Some(s)) if service.secret_matches(&s) => Ok(service),
        (true, None) => Ok(service),
        _ => Err(refuse(via_basic)),
    }
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// `private_key_jwt` (RFC 7523): a JWT signed with the service's registered
/// key (inline JWKS, or fetched from its JWKS URI), naming the client as
/// `iss` and `sub`, tilgang's token endpoint or issuer as `aud`, expiring
/// within ten minutes, with a `jti` that is never accepted twice.
async fn private_key_jwt(
    state: &AppState,
    form: &std::collections::HashMap<String, String>,
) -> Result<Service, OAuthError> {
    let refuse = || OAuthError::new("invalid_client", "client authentication failed");
    if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
        return Err(OAuthError::new(
            "invalid_request",
            "unsupported client_assertion_type",
        ));
    }
    let Some(assertion) = form.get("client_assertion") else {
        return Err(OAuthError::new(
            "invalid_request",
            "client_assertion is required",
        ));
    };
    // The client id, unverified, to find the keys that must verify it.
    let unverified: serde_json::Value = assertion
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .ok_or_else(refuse)?;
    let Some(client_id) = unverified["iss"].as_str() else {
        return Err(refuse());
    };
    if form.get("client_id").is_some_and(|c| c != client_id) {
        return Err(refuse());
    }
    let Some(service) = state.store.service(client_id).await? else {
        return Err(refuse());
    };
    let jwks: serde_json::Value = match (&service.jwks, &service.jwks_uri) {
        (Some(inline), _) => serde_json::from_str(inline).map_err(|_| refuse())?,
        (None, Some(uri)) => {
            let kid = assertion_kid(assertion);
            state
                .oidc
                .jwks_cache
                .keys(
                    uri,
                    kid.as_deref(),
                    state.clock.now().unix_timestamp(),
                    || fetch_jwks(uri),
                )
                .await
                .ok_or_else(refuse)?
        }
        (None, None) => return Err(refuse()),
    };
    let claims = keys::verify_jws(assertion, &jwks).map_err(|_| refuse())?;
    let now = state.clock.now().unix_timestamp();
    let iss = issuer(state);
    let token_endpoint = format!("{iss}/oidc/token");
    let aud_ok = match &claims["aud"] {
        serde_json::Value::String(a) => *a == token_endpoint || a == iss,
        serde_json::Value::Array(list) => list
            .iter()
            .any(|a| *a == token_endpoint.as_str() || *a == iss),
        _ => false,
    };
    let exp = claims["exp"].as_i64().unwrap_or(0);
    let fresh = exp > now && exp <= now + 600;
    let named = claims["iss"] == client_id && claims["sub"] == client_id;
    let Some(jti) = claims["jti"].as_str() else {
        return Err(refuse());
    };
    if !(aud_ok && fresh && named) {
        return Err(refuse());
    }
    if !state
        .store
        .use_assertion(client_id, &tilgang_core::oidc::hash_token(jti), exp)
        .await?
    {
        return Err(refuse());
    }
    Ok(service)
}

/// The `kid` in a JWS header, unverified: only picks the key.
fn assertion_kid(jwt: &str) -> Option<String> {
    let header = jwt.split('.').next()?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    v["kid"].as_str().map(str::to_owned)
}

/// A service's published keys and their `Cache-Control`; no redirects, a
/// short timeout, 64 KiB at most.
async fn fetch_jwks(uri: &str) -> Option<(serde_json::Value, Option<String>)> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    let res = client.get(uri).send().await.ok()?;
    if !res.status().is_success() {
        return None;
    }
    let cache_control = res
        .headers()
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = res.bytes().await.ok()?;
    if body.len() > 64 * 1024 {
        return None;
    }
    serde_json::from_slice(&body)
        .ok()
        .map(|v| (v, cache_control))
}

/// Form or query parameters. A parameter sent twice is remembered in
/// `repeated` (RFC 6749 §3.1: each may appear at most once); the first
/// value counts.
pub(crate) fn parse_params(
    raw: &[u8],
) -> (std::collections::BTreeMap<String, String>, Vec<String>) {
    let mut out = std::collections::BTreeMap::new();
    let mut repeated = Vec::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        if out.contains_key(k.as_ref()) {
            repeated.push(k.into_owned());
        } else {
            out.insert(k.into_owned(), v.into_owned());
        }
    }
    (out, repeated)
}

/// A token-endpoint style form: a repeated parameter is `invalid_request`.
pub(crate) fn oauth_form(
    raw: &[u8],
) -> Result<std::collections::HashMap<String, String>, OAuthError> {
    let (map, repeated) = parse_params(raw);
    if let Some(k) = repeated.first() {
        return Err(OAuthError::new(
            "invalid_request",
            format!("{k} is repeated"),
        ));
    }
    Ok(map.into_iter().collect())
}

/// `at_hash`: the left half of the access token's SHA-256 (RS256, ES256).
pub(crate) fn at_hash(access_token: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(access_token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d[..16])
}

/// The `sid` an RP sees for a session: a hash of its stored hash.
pub(crate) fn sid_of(session_hash: &[u8; 32]) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(session_hash)[..16])
}
