//! The token endpoint (authorization code with PKCE, refresh with rotation
//! and reuse detection, client credentials), userinfo, revocation (RFC
//! 7009) and introspection (RFC 7662). Tokens are opaque 256-bit values;
//! the database keeps their SHA-256 with the grant they carry.

use super::{at_hash, authenticate, issuer, no_store, oauth_form, signer, OAuthError};
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use tilgang_core::audit::actions;
use tilgang_core::audit::NewEvent;
use tilgang_core::oidc::claims::{person_claims_released, subject, ClaimsSource, Target};
use tilgang_core::oidc::keys::Alg;
use tilgang_core::oidc::roles;
use tilgang_core::oidc::sealed;
use tilgang_core::oidc::{
    hash_token, new_token, pkce_matches, random_token, GrantData, Service, TokenKind, TokenRecord,
    GRANT_CLIENT_CREDENTIALS, GRANT_CODE, GRANT_REFRESH,
};
use tilgang_core::sharing::Package;
use tilgang_core::store::oidc::{Redeemed, Rotated};

type FormMap = HashMap<String, String>;

fn service_event(service: &Service, action: &str, person: Option<i64>, details: Value) -> NewEvent {
    NewEvent::new(format!("service:{}", service.client_id), action)
        .subjects(person.into_iter().collect())
        .details(details)
}

pub async fn token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = match oauth_form(&body) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    match token_inner(&state, &headers, &form).await {
        Ok(body) => {
            let mut res = Json(body).into_response();
            no_store(&mut res);
            res
        }
        Err(e) => e.into_response(),
    }
}

async fn token_inner(
    state: &AppState,
    headers: &HeaderMap,
    form: &FormMap,
) -> Result<Value, OAuthError> {
    let service = authenticate(state, headers, form).await?;
    let grant_type = form.get("grant_type").map(String::as_str);
    match grant_type {
        Some(GRANT_CODE) if service.allows(GRANT_CODE) => code_grant(state, &service, form).await,
        Some(GRANT_REFRESH) if service.allows(GRANT_REFRESH) => {
            refresh_grant(state, &service, form).await
        }
        Some(GRANT_CLIENT_CREDENTIALS)
            if service.allows(GRANT_CLIENT_CREDENTIALS) && !service.public =>
        {
            client_credentials(state, &service, form).await
        }
        Some(GRANT_CODE | GRANT_REFRESH | GRANT_CLIENT_CREDENTIALS) => Err(OAuthError::new(
            "unauthorized_client",
            "the service may not use this grant",
        )),
        Some(_) => Err(OAuthError::new(
            "unsupported_grant_type",
            "unsupported grant_type",
        )),
        None => Err(OAuthError::new("invalid_request", "grant_type is required")),
    }
}

/// The claims source in the role context the grant carries (several
/// roles), before the package decides the claims.
fn in_role(src: ClaimsSource, grant: &GrantData) -> ClaimsSource {
    match &grant.role {
        Some(role) => roles::narrow(&src, role),
        None => src,
    }
}

fn invalid_grant(why: &str) -> OAuthError {
    OAuthError::new("invalid_grant", why)
}

/// Access token, refresh token (when the service may refresh) and ID token
/// for a grant; the records to store with them.
async fn tokens_for(
    state: &AppState,
    service: &Service,
    grant: &GrantData,
    family: &str,
    refresh_expires_at: Option<i64>,
    with_nonce: bool,
) -> Result<(Value, Vec<TokenRecord>, Package), OAuthError> {
    let cfg = &state.oidc.config;
    // What the person's data went out as (for the audit event).
    let mut package = Package::Minimal;
    let now = state.clock.now().unix_timestamp();
    let (access, access_rec) = new_token(
        TokenKind::Access,
        &service.client_id,
        family,
        grant,
        now,
        now + cfg.access_token_lifetime_s,
    );
    let mut records = vec![access_rec];
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": cfg.access_token_lifetime_s,
        "scope": grant.scope,
    });
    if service.allows(GRANT_REFRESH) {
        let (refresh, rec) = new_token(
            TokenKind::Refresh,
            &service.client_id,
            family,
            grant,
            now,
            refresh_expires_at.unwrap_or(now + cfg.refresh_token_lifetime_s),
        );
        records.push(rec);
        body["refresh_token"] = json!(refresh);
    }
    if let Some(person_id) = grant.person_id {
        let Some(src) = state.store.claims_source(person_id).await? else {
            return Err(invalid_grant("the person is no longer in the roster"));
        };
        let src = in_role(src, grant);
        let Some(released) = crate::sharing::released(state, service, &src).await? else {
            return Err(invalid_grant(
                "the service is blocked at the person's institutions",
            ));
        };
        package = Package::released_as(released);
        let mut claims = person_claims_released(
            service,
            released,
            &src,
            &grant.scope,
            grant.claims.as_ref(),
            Target::IdToken,
        );
        let protocol = json!({
            "iss": issuer(state),
            "aud": service.client_id,
            "azp": service.client_id,
            "exp": now + cfg.id_token_lifetime_s,
            "iat": now,
            "auth_time": grant.auth_time,
            "acr": grant.acr,
            "amr": grant.amr,
            "at_hash": at_hash(body["access_token"].as_str().unwrap_or_default()),
        });
        if let Value::Object(m) = protocol {
            claims.extend(m);
        }
        if let Some(sid) = &grant.sid {
            claims.insert("sid".into(), json!(sid));
        }
        if with_nonce {
            if let Some(n) = &grant.nonce {
                claims.insert("nonce".into(), json!(n));
            }
        }
        let alg = Alg::parse(&service.id_token_alg).unwrap_or(Alg::RS256);
        let key = signer(state, alg).await?;
        body["id_token"] = json!(key.sign_jwt(&Value::Object(claims))?);
    }
    Ok((body, records, package))
}

async fn code_grant(
    state: &AppState,
    service: &Service,
    form: &FormMap,
) -> Result<Value, OAuthError> {
    let Some(code) = form.get("code") else {
        return Err(OAuthError::new("invalid_request", "code is required"));
    };
    let code_hash = hash_token(code);
    let Some(rec) = state.store.code(&code_hash).await? else {
        return Err(invalid_grant("the code is not valid"));
    };
    if rec.client_id != service.client_id {
        return Err(invalid_grant("the code was issued to another client"));
    }
    let person = rec.grant.person_id;
    let at = state.clock.now();
    let reuse = service_event(
        service,
        actions::OIDC_CODE_REUSED,
        person,
        json!({"client_id": service.client_id}),
    );
    if rec.used_at.is_some() {
        // A second use: revoke what the first one got.
        state
            .store
            .redeem_code(&code_hash, &[], at, reuse.clone(), reuse)
            .await?;
        return Err(invalid_grant("the code was already used"));
    }
    if rec.expires_at <= at.unix_timestamp() {
        return Err(invalid_grant("the code has expired"));
    }
    if form.get("redirect_uri") != Some(&rec.grant.redirect_uri) {
        return Err(invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&rec.grant.code_challenge, form.get("code_verifier")) {
        (Some(c), Some(v)) if pkce_matches(c, v) => {}
        (Some(_), _) => return Err(invalid_grant("code_verifier does not match")),
        // A verifier where no challenge was sent: a downgrade attempt.
        (None, Some(_)) => return Err(invalid_grant("no code_challenge was sent for this code")),
        (None, None) => {}
    }
    let family = random_token();
    let (body, records, package) =
        tokens_for(state, service, &rec.grant, &family, None, true).await?;
    let event = service_event(
        service,
        actions::OIDC_TOKEN_ISSUED,
        person,
        json!({"client_id": service.client_id, "grant": GRANT_CODE, "refresh": records.len() > 1, "package": package.as_str()}),
    );
    match state
        .store
        .redeem_code(&code_hash, &records, at, event, reuse)
        .await?
    {
        Redeemed::Issued => Ok(body),
        Redeemed::Reused => Err(invalid_grant("the code was already used")),
        Redeemed::Invalid => Err(invalid_grant("the code is not valid")),
    }
}

async fn refresh_grant(
    state: &AppState,
    service: &Service,
    form: &FormMap,
) -> Result<Value, OAuthError> {
    let Some(token) = form.get("refresh_token") else {
        return Err(OAuthError::new(
            "invalid_request",
            "refresh_token is required",
        ));
    };
    let hash = hash_token(token);
    let Some(rec) = state.store.token(&hash).await? else {
        return Err(invalid_grant("the refresh token is not valid"));
    };
    if rec.kind != TokenKind::Refresh || rec.client_id != service.client_id {
        return Err(invalid_grant("the refresh token is not valid"));
    }
    let mut grant = rec.grant.clone();
    if let Some(scope) = form.get("scope") {
        let granted: Vec<&str> = rec.grant.scope.split(' ').collect();
        if !scope.split(' ').all(|s| granted.contains(&s)) {
            return Err(OAuthError::new(
                "invalid_scope",
                "a refresh cannot widen the scope",
            ));
        }
        grant.scope = scope.clone();
    }
    let at = state.clock.now();
    let reuse = service_event(
        service,
        actions::OIDC_REFRESH_REUSED,
        rec.grant.person_id,
        json!({"client_id": service.client_id}),
    );
    let (body, records, package) = tokens_for(
        state,
        service,
        &grant,
        &rec.family,
        Some(rec.expires_at),
        false,
    )
    .await?;
    let event = service_event(
        service,
        actions::OIDC_TOKEN_REFRESHED,
        rec.grant.person_id,
        json!({"client_id": service.client_id, "grant": GRANT_REFRESH, "package": package.as_str()}),
    );
    match state
        .store
        .rotate_refresh(&hash, &records, at, event, reuse)
        .await?
    {
        Rotated::Issued => Ok(body),
        Rotated::Reused => Err(invalid_grant(
            "the refresh token was already used; the grant is revoked",
        )),
        Rotated::Invalid => Err(invalid_grant("the refresh token is not valid")),
    }
}

async fn client_credentials(
    state: &AppState,
    service: &Service,
    form: &FormMap,
) -> Result<Value, OAuthError> {
    let grant = GrantData {
        scope: form.get("scope").cloned().unwrap_or_default(),
        ..Default::default()
    };
    let at = state.clock.now();
    let now = at.unix_timestamp();
    let lifetime = state.oidc.config.access_token_lifetime_s;
    // Sealed, not stored: the audit event is the only write.
    let (access, _) = sealed::issue(
        &state.keys,
        &service.client_id,
        &grant.scope,
        now,
        now + lifetime,
    )?;
    let event = service_event(
        service,
        actions::OIDC_TOKEN_ISSUED,
        None,
        json!({"client_id": service.client_id, "grant": GRANT_CLIENT_CREDENTIALS}),
    );
    state.store.issue_tokens(&[], at, event).await?;
    Ok(
        json!({"access_token": access, "token_type": "Bearer", "expires_in": lifetime, "scope": grant.scope}),
    )
}

fn bearer_error(error: &str) -> Response {
    let mut res = (StatusCode::UNAUTHORIZED, Json(json!({"error": error}))).into_response();
    let challenge = format!("Bearer realm=\"tilgang\", error=\"{error}\"");
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    no_store(&mut res);
    res
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_owned())
}

pub async fn userinfo_get(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    userinfo(&state, bearer(&headers)).await
}

pub async fn userinfo_post(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let from_body = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned());
    match (bearer(&headers), from_body) {
        (Some(_), Some(_)) => bearer_error("invalid_request"),
        (h, b) => userinfo(&state, h.or(b)).await,
    }
}

async fn userinfo(state: &AppState, token: Option<String>) -> Response {
    let Some(token) = token else {
        return bearer_error("invalid_token");
    };
    let result: Result<Option<Map<String, Value>>, tilgang_core::Error> = async {
        let now = state.clock.now().unix_timestamp();
        let Some(rec) = state.store.token(&hash_token(&token)).await? else {
            return Ok(None);
        };
        let Some(person_id) = rec.grant.person_id else {
            return Ok(None);
        };
        if rec.kind != TokenKind::Access || !rec.is_active(now) {
            return Ok(None);
        }
        let Some(service) = state.store.service(&rec.client_id).await? else {
            return Ok(None);
        };
        let Some(src) = state.store.claims_source(person_id).await? else {
            return Ok(None);
        };
        let src = in_role(src, &rec.grant);
        let Some(released) = crate::sharing::released(state, &service, &src).await? else {
            return Ok(None);
        };
        let mut claims = person_claims_released(
            &service,
            released,
            &src,
            &rec.grant.scope,
            rec.grant.claims.as_ref(),
            Target::Userinfo,
        );
        claims.insert("acr".into(), json!(rec.grant.acr));
        // A service reading a person's data: audited before it is handed
        // out (names of the claims, never their values).
        let names: Vec<&String> = claims.keys().collect();
        let event = service_event(
            &service,
            actions::OIDC_USERINFO,
            Some(person_id),
            json!({"client_id": service.client_id, "package": Package::released_as(released).as_str(), "claims": names}),
        );
        state.store.append_audit(state.clock.now(), vec![event]).await?;
        Ok(Some(claims))
    }
    .await;
    match result {
        Ok(Some(claims)) => {
            let mut res = Json(Value::Object(claims)).into_response();
            no_store(&mut res);
            res
        }
        Ok(None) => bearer_error("invalid_token"),
        Err(e) => OAuthError::from(e).into_response(),
    }
}

/// RFC 7009: always 200 for a token that is unknown or not the client's,
/// so the endpoint tells nobody which tokens exist.
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result: Result<(), OAuthError> = async {
        let form = oauth_form(&body)?;
        let service = authenticate(&state, &headers, &form).await?;
        let Some(token) = form.get("token") else {
            return Err(OAuthError::new("invalid_request", "token is required"));
        };
        let event = service_event(
            &service,
            actions::OIDC_TOKEN_REVOKED,
            None,
            json!({"client_id": service.client_id}),
        );
        let at = state.clock.now();
        let stored = state
            .store
            .revoke_token(&hash_token(token), &service.client_id, at, event.clone())
            .await?;
        // A sealed token is remembered as revoked until it expires.
        if !stored {
            if let Some(mut rec) = sealed::find(&*state.store, &state.keys, token)
                .await?
                .filter(|r| r.client_id == service.client_id && r.revoked_at.is_none())
            {
                rec.revoked_at = Some(at.unix_timestamp());
                state.store.issue_tokens(&[rec], at, event).await?;
            }
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            let mut res = StatusCode::OK.into_response();
            no_store(&mut res);
            res
        }
        Err(e) => e.into_response(),
    }
}

/// RFC 7662, for confidential clients about their own tokens; any other
/// token is simply inactive.
pub async fn introspect(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let result: Result<Value, OAuthError> = async {
        let form = oauth_form(&body)?;
        let service = authenticate(&state, &headers, &form).await?;
        if service.public {
            return Err(OAuthError::new(
                "invalid_client",
                "public clients cannot introspect",
            ));
        }
        let Some(token) = form.get("token") else {
            return Err(OAuthError::new("invalid_request", "token is required"));
        };
        let now = state.clock.now().unix_timestamp();
        let rec = sealed::find(&*state.store, &state.keys, token).await?;
        let Some(rec) = rec.filter(|r| r.client_id == service.client_id && r.is_active(now)) else {
            return Ok(json!({"active": false}));
        };
        let mut out = json!({
            "active": true,
            "client_id": rec.client_id,
            "scope": rec.grant.scope,
            "token_type": if rec.kind == TokenKind::Access { "Bearer" } else { "refresh_token" },
            "exp": rec.expires_at,
            "iat": rec.created_at,
            "iss": issuer(&state),
            "aud": rec.client_id,
        });
        if let Some(pid) = rec.grant.person_id {
            if let Some(src) = state.store.claims_source(pid).await? {
                // The subject as the policy releases it now; a service
                // blocked at the person's institutions holds no live token.
                let Some(released) = crate::sharing::released(&state, &service, &src).await? else {
                    return Ok(json!({"active": false}));
                };
                out["sub"] = json!(subject(&service, released, &src.user_id));
                out["acr"] = json!(rec.grant.acr);
                out["auth_time"] = json!(rec.grant.auth_time);
            }
        }
        Ok(out)
    }
    .await;
    match result {
        Ok(v) => {
            let mut res = Json(v).into_response();
            no_store(&mut res);
            res
        }
        Err(e) => e.into_response(),
    }
}
