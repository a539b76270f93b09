//! The authorization endpoint (code flow only) and RP-initiated logout.
//! A request that needs a login is stored server-side under a random id
//! that travels through the login page (`/login?pending=…`); the login
//! sends the browser back here with it. An unknown client or a redirect
//! URI that is not registered exactly gets an error page, never a redirect.

use super::{issuer, sid_of};
use crate::auth::{session_of, Texts};
use crate::error::ApiError;
use crate::i18n::Lang;
use crate::pages::{lang_of, render, LangQuery};
use crate::AppState;
use askama::Template;
use axum::extract::{Query, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use tilgang_core::audit::actions;
use tilgang_core::audit::NewEvent;
use tilgang_core::identity::session::{ACR_ONE_FACTOR, ACR_TWO_FACTOR};
use tilgang_core::oidc::{hash_token, random_token, CodeRecord, GrantData, Service, GRANT_CODE};
use tilgang_core::store::oidc::Pending;

pub(super) type Params = BTreeMap<String, String>;

#[derive(Template)]
#[template(path = "oidc_error.html")]
struct ErrorPage {
    lang: &'static str,
    t: Texts,
    message: String,
}

pub(super) fn error_page(lang: Lang, key: &str) -> Response {
    let page = ErrorPage {
        lang: lang.code(),
        t: Texts(lang),
        message: crate::i18n::t(lang, key),
    };
    let mut res = (StatusCode::BAD_REQUEST, render(&page)).into_response();
    super::no_store(&mut res);
    res
}

/// A redirect back to the service with `params`, `state` and `iss`
/// (RFC 9207) added.
fn back(
    state: &AppState,
    redirect_uri: &str,
    p: &Params,
    mut params: Vec<(&str, String)>,
) -> Response {
    if let Some(s) = p.get("state") {
        params.push(("state", s.clone()));
    }
    params.push(("iss", issuer(state).to_owned()));
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in &params {
            q.append_pair(k, v);
        }
    }
    let mut res = Redirect::to(url.as_str()).into_response();
    super::no_store(&mut res);
    res
}

pub(super) fn error_back(
    state: &AppState,
    redirect_uri: &str,
    p: &Params,
    error: &str,
    description: &str,
) -> Response {
    back(
        state,
        redirect_uri,
        p,
        vec![
            ("error", error.to_owned()),
            ("error_description", description.to_owned()),
        ],
    )
}

pub async fn authorize_get(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let (p, repeated) = super::parse_params(q.unwrap_or_default().as_bytes());
    authorize(state, headers, p, repeated).await
}

pub async fn authorize_post(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let (p, repeated) = super::parse_params(&body);
    authorize(state, headers, p, repeated).await
}

/// Resumed requests keep the time they were first made and the session
/// that was present then, to tell a fresh login from an old one.
struct Resumed {
    id_hash: [u8; 32],
    created_at: i64,
    session_before: Option<String>,
}

async fn authorize(
    state: Arc<AppState>,
    headers: HeaderMap,
    mut p: Params,
    mut repeated: Vec<String>,
) -> Result<Response, ApiError> {
    let now = state.clock.now().unix_timestamp();
    let mut resumed = None;
    if let Some(id) = p.get("pending").cloned() {
        let id_hash = hash_token(&id);
        let lang = lang_of(&LangQuery { lang: None }, &headers);
        let Some(pending) = state.store.pending(&id_hash, now).await? else {
            return Ok(error_page(lang, "oidc.error.expired"));
        };
        let Ok(stored) = serde_json::from_str::<Params>(&pending.request) else {
            return Ok(error_page(lang, "oidc.error.expired"));
        };
        resumed = Some(Resumed {
            id_hash,
            created_at: pending.created_at,
            session_before: stored.get("\u{0}session").cloned(),
        });
        p = stored;
        repeated.clear();
    }
    let lang = lang_of(
        &LangQuery {
            lang: p
                .get("ui_locales")
                .and_then(|l| l.split(' ').next())
                .map(str::to_owned),
        },
        &headers,
    );

    // Who is asking, and where the answer may go: never redirect before both
    // are known to match the registration exactly.
    let Some(client_id) = p.get("client_id") else {
        return Ok(error_page(lang, "oidc.error.unknown_client"));
    };
    let Some(service) = state.store.service(client_id).await? else {
        return Ok(error_page(lang, "oidc.error.unknown_client"));
    };
    let Some(redirect_uri) = p.get("redirect_uri").cloned() else {
        return Ok(error_page(lang, "oidc.error.redirect_uri"));
    };
    if !service.redirect_uris.contains(&redirect_uri) {
        return Ok(error_page(lang, "oidc.error.redirect_uri"));
    }
    if repeated
        .iter()
        .any(|k| k == "client_id" || k == "redirect_uri")
    {
        return Ok(error_page(lang, "oidc.error.redirect_uri"));
    }
    let fail = |error: &str, description: &str| {
        Ok(error_back(&state, &redirect_uri, &p, error, description))
    };
    if let Some(k) = repeated.first() {
        return fail("invalid_request", &format!("{k} is repeated"));
    }

    if p.contains_key("request") {
        return fail("request_not_supported", "request objects are not supported");
    }
    if p.contains_key("request_uri") {
        return fail("request_uri_not_supported", "request_uri is not supported");
    }
    match p.get("response_type").map(String::as_str) {
        None => return fail("invalid_request", "response_type is required"),
        Some("code") => {}
        Some(_) => {
            return fail(
                "unsupported_response_type",
                "only the code flow is supported",
            )
        }
    }
    if let Some(mode) = p.get("response_mode") {
        if mode != "query" {
            return fail("invalid_request", "only response_mode=query is supported");
        }
    }
    let scope = p.get("scope").cloned().unwrap_or_default();
    if !scope.split(' ').any(|s| s == "openid") {
        return fail("invalid_scope", "the scope must include openid");
    }
    if !service.allows(GRANT_CODE) {
        return fail(
            "unauthorized_client",
            "the service may not use the code flow",
        );
    }
    let challenge = p.get("code_challenge").cloned();
    match (
        &challenge,
        p.get("code_challenge_method").map(String::as_str),
    ) {
        (None, _) if service.public => {
            return fail("invalid_request", "a public client must use PKCE (S256)")
        }
        (None, Some(_)) => {
            return fail(
                "invalid_request",
                "code_challenge_method without code_challenge",
            )
        }
        (Some(_), Some("S256")) => {}
        (Some(_), _) => return fail("invalid_request", "code_challenge_method must be S256"),
        (None, None) => {}
    }
    if let Some(c) = &challenge {
        if c.len() != 43
            || !c
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return fail(
                "invalid_request",
                "code_challenge is not a base64url SHA-256",
            );
        }
    }
    let claims = match p.get("claims") {
        None => None,
        Some(c) => match serde_json::from_str::<Value>(c) {
            Ok(v) if v.is_object() => Some(v),
            _ => return fail("invalid_request", "claims is not a JSON object"),
        },
    };
    let prompts: Vec<&str> = p
        .get("prompt")
        .map(|s| s.split(' ').filter(|x| !x.is_empty()).collect())
        .unwrap_or_default();
    let prompt_none = prompts.contains(&"none");
    if prompt_none && prompts.len() > 1 {
        return fail("invalid_request", "prompt=none cannot be combined");
    }
    let max_age = match p.get("max_age").map(|m| m.parse::<i64>()) {
        None => None,
        Some(Ok(m)) if m >= 0 => Some(m),
        Some(_) => {
            return fail(
                "invalid_request",
                "max_age must be a whole number of seconds",
            )
        }
    };

    // The session, and whether it is fresh enough for this request.
    let session = session_of(&state, &headers).await?;
    let fresh_login = |s: &tilgang_core::identity::session::SessionRecord| {
        resumed.as_ref().is_some_and(|r| {
            s.created_at >= r.created_at
                && r.session_before.as_deref() != Some(&hex::encode(s.id_hash))
        })
    };
    let needs_login = match &session {
        None => true,
        Some(s) => {
            let too_old = max_age.is_some_and(|m| now - s.created_at > m);
            let login_asked = prompts.contains(&"login");
            (too_old || login_asked) && !fresh_login(s)
        }
    };
    if needs_login {
        if prompt_none {
            return fail("login_required", "the person is not logged in");
        }
        return to_login(
            &state,
            &p,
            &service,
            resumed.as_ref(),
            session.as_ref(),
            now,
            lang,
        )
        .await;
    }
    let Some(session) = session else {
        return fail("login_required", "the person is not logged in");
    };

    // Level of assurance: the service's minimum, or two factors when asked.
    let wants_two = service.min_acr == ACR_TWO_FACTOR
        || p.get("acr_values")
            .is_some_and(|v| v.split(' ').next() == Some(ACR_TWO_FACTOR))
        || claims
            .as_ref()
            .and_then(|c| c.pointer("/id_token/acr"))
            .is_some_and(|a| a.get("essential") == Some(&json!(true)) && acr_asks_two(a));
    if wants_two && session.acr != ACR_TWO_FACTOR {
        if prompt_none {
            return fail("interaction_required", "a second factor is needed");
        }
        let pending = match &resumed {
            Some(_) => p.get("\u{0}id").cloned(),
            None => None,
        };
        let id = match pending {
            Some(id) => id,
            None => store_pending(&state, &p, &service, session_hash(&session), now).await?,
        };
        let next = format!("/oidc/authorize?pending={id}");
        let url = format!(
            "/login/step-up?next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        );
        return Ok(Redirect::to(&url).into_response());
    }

    // Sharing: no login to a service blocked at the person's institutions,
    // nor to one that needs a licence they lack; no code, no tokens.
    if let Some(page) = crate::sharing::gate(&state, &service, session.person_id, lang).await? {
        return Ok(page);
    }

    // Several roles: the context the person acts in towards this service.
    let role = match super::roles::role_for(
        &state,
        &p,
        &service,
        &session,
        claims.as_ref(),
        resumed.is_some(),
        lang,
    )
    .await?
    {
        super::roles::RoleStep::Use(role) => role,
        super::roles::RoleStep::Answer(res) => return Ok(res),
    };
    let code = random_token();
    let grant = GrantData {
        person_id: Some(session.person_id),
        scope,
        nonce: p.get("nonce").cloned(),
        redirect_uri: redirect_uri.clone(),
        acr: if session.acr.is_empty() {
            ACR_ONE_FACTOR.to_owned()
        } else {
            session.acr.clone()
        },
        amr: session.amr.clone(),
        auth_time: session.created_at,
        claims,
        code_challenge: challenge,
        sid: Some(sid_of(&session.id_hash)),
        role,
    };
    let record = CodeRecord {
        code_hash: hash_token(&code),
        client_id: service.client_id.clone(),
        grant,
        created_at: now,
        expires_at: now + state.oidc.config.code_lifetime_s,
        used_at: None,
    };
    let event = NewEvent::new(format!("person:{}", session.person_id), actions::OIDC_LOGIN)
        .subjects(vec![session.person_id])
        .details(json!({"client_id": service.client_id, "acr": session.acr}));
    state
        .store
        .issue_code(
            &record,
            resumed.as_ref().map(|r| &r.id_hash),
            state.clock.now(),
            event,
        )
        .await?;
    Ok(back(&state, &redirect_uri, &p, vec![("code", code)]))
}

fn acr_asks_two(a: &Value) -> bool {
    a.get("value").and_then(Value::as_str) == Some(ACR_TWO_FACTOR)
        || a.get("values")
            .and_then(Value::as_array)
            .and_then(|v| v.first())
            .and_then(Value::as_str)
            == Some(ACR_TWO_FACTOR)
}

fn session_hash(s: &tilgang_core::identity::session::SessionRecord) -> Option<String> {
    Some(hex::encode(s.id_hash))
}

pub(super) async fn store_pending(
    state: &AppState,
    p: &Params,
    service: &Service,
    session_before: Option<String>,
    now: i64,
) -> Result<String, ApiError> {
    let id = random_token();
    let mut stored = p.clone();
    stored.remove("pending");
    // Internal members start with NUL, which no query parameter carries.
    stored.retain(|k, _| !k.starts_with('\u{0}'));
    if let Some(s) = session_before {
        stored.insert("\u{0}session".into(), s);
    }
    stored.insert("\u{0}id".into(), id.clone());
    let pending = Pending {
        client_id: service.client_id.clone(),
        request: serde_json::to_string(&stored)
            .map_err(|e| ApiError(tilgang_core::Error::store(e)))?,
        created_at: now,
        expires_at: now + state.oidc.config.pending_lifetime_s,
    };
    state.store.put_pending(&hash_token(&id), &pending).await?;
    Ok(id)
}

async fn to_login(
    state: &AppState,
    p: &Params,
    service: &Service,
    resumed: Option<&Resumed>,
    session: Option<&tilgang_core::identity::session::SessionRecord>,
    now: i64,
    lang: Lang,
) -> Result<Response, ApiError> {
    let id = match (resumed, p.get("\u{0}id")) {
        (Some(_), Some(id)) => id.clone(),
        _ => store_pending(state, p, service, session.and_then(session_hash), now).await?,
    };
    let mut url = format!("/login?pending={id}&lang={}", lang.code());
    if let Some(hint) = p.get("login_hint") {
        // `USER@INSTITUTION` names a role context too: the login page gets
        // the user part.
        let hint = tilgang_core::oidc::roles::login_part(hint);
        url.push_str("&login_hint=");
        url.extend(url::form_urlencoded::byte_serialize(hint.as_bytes()));
    }
    let mut res = Redirect::to(&url).into_response();
    super::no_store(&mut res);
    Ok(res)
}

#[derive(Template)]
#[template(path = "oidc_logout.html")]
struct LogoutPage {
    lang: &'static str,
    t: Texts,
    csrf: String,
    params: Vec<(String, String)>,
}

pub async fn logout_get(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(p): Query<Params>,
) -> Result<Response, ApiError> {
    logout(state, headers, p).await
}

pub async fn logout_post(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> Result<Response, ApiError> {
    logout(state, headers, p).await
}

/// The claims of an ID token, unverified: only used to find the client
/// whose registered post-logout URIs are compared exactly, and the session
/// it names; neither can send anyone anywhere unregistered.
fn hint_claims(hint: &str) -> Option<Value> {
    use base64::Engine;
    let payload = hint.split('.').nth(1)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&raw).ok()
}

/// RP-initiated logout 1.0. The session ends at once when the ID token
/// hint names it (its `sid`) or the confirmation form is posted with the
/// session's CSRF token; otherwise the person is asked to confirm.
async fn logout(state: Arc<AppState>, headers: HeaderMap, p: Params) -> Result<Response, ApiError> {
    let lang = lang_of(
        &LangQuery {
            lang: p
                .get("ui_locales")
                .and_then(|l| l.split(' ').next())
                .map(str::to_owned),
        },
        &headers,
    );
    let hint = p.get("id_token_hint").and_then(|h| hint_claims(h));
    let client_id = p.get("client_id").cloned().or_else(|| {
        hint.as_ref().and_then(|h| match &h["aud"] {
            Value::String(s) => Some(s.clone()),
            Value::Array(a) => a.first().and_then(Value::as_str).map(str::to_owned),
            _ => None,
        })
    });
    let mut target = None;
    if let Some(uri) = p.get("post_logout_redirect_uri") {
        let service = match &client_id {
            Some(id) => state.store.service(id).await?,
            None => None,
        };
        match service {
            Some(s) if s.post_logout_redirect_uris.iter().any(|u| u == uri) => {
                target = Some(uri.clone())
            }
            _ => return Ok(error_page(lang, "oidc.error.logout_uri")),
        }
    }
    let session = session_of(&state, &headers).await?;
    if let Some(s) = &session {
        let hinted = hint
            .as_ref()
            .and_then(|h| h.get("sid"))
            .and_then(Value::as_str)
            .is_some_and(|sid| sid == sid_of(&s.id_hash));
        let confirmed = p
            .get("csrf")
            .is_some_and(|c| tilgang_core::identity::session::csrf_matches(s, c));
        if !hinted && !confirmed {
            let params = p
                .iter()
                .filter(|(k, _)| *k != "csrf")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let page = LogoutPage {
                lang: lang.code(),
                t: Texts(lang),
                csrf: s.csrf.clone(),
                params,
            };
            let mut res = render(&page);
            super::no_store(&mut res);
            return Ok(res);
        }
        tilgang_core::identity::login::logout(&*state.store, &*state.clock, s).await?;
    }
    let mut res = match target {
        Some(uri) => {
            let mut url =
                url::Url::parse(&uri).map_err(|e| ApiError(tilgang_core::Error::store(e)))?;
            if let Some(st) = p.get("state") {
                url.query_pairs_mut().append_pair("state", st);
            }
            Redirect::to(url.as_str()).into_response()
        }
        None => Redirect::to(&format!("/login?lang={}", lang.code())).into_response(),
    };
    res.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "__Host-tilgang=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0",
        ),
    );
    Ok(res)
}
