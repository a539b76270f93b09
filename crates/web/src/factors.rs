//! Second factors on the web: the step-up page and [`require_two_factor`]
//! for handlers that need two factors; enrolling an authenticator app
//! (TOTP) or a passkey, removing factors and new recovery codes from the
//! account page; logging in with a passkey alone. The rules live in
//! `tilgang_core::identity::{factors, stepup}`; WebAuthn verification
//! (webauthn-rs) happens here, its ceremony state in the database.

use crate::auth::{
    cookie, csrf_refusal, csrf_refused, logged_in, login_csrf_ok, login_page, no_store,
    private_page, retry_after_a_minute, session_of, set_cookie, signed_in, signed_in_form,
    uncached, user_agent, when, Texts,
};
use crate::error::ApiError;
use crate::i18n::{t, Lang};
use crate::pages::{lang_of, qr_svg, render, script, LangQuery};
use crate::AppState;
use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use tilgang_core::identity::factors::{
    self as core_factors, ceremony_key, Enrolled, TwoFactor, PASSKEY_LOGIN, PASSKEY_REGISTER,
    PASSKEY_STEP_UP, WEBAUTHN_TTL_S,
};
use tilgang_core::identity::session::{
    random_token, NewSession, SessionRecord, ACR_TWO_FACTOR, COOKIE,
};
use tilgang_core::identity::stepup::{self, Code, StepUp};
use tilgang_core::store::factors::{FactorKind, SecondFactor};
use tilgang_core::Error;
use webauthn_rs::prelude::{
    DiscoverableKey, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Uuid, Webauthn, WebauthnBuilder,
};

/// The window of the login attempt counters, in minutes (as password login).
const LOGIN_WINDOW_MIN: i64 = 10;

/// The cookie naming a passkey login ceremony (before any session).
const PASSKEY_LOGIN_COOKIE: &str = "__Host-tilgang-pk";

const PASSKEY_JS: &str = include_str!("../assets/passkey.js");

/// FNV-1a of the script, at compile time: its URL changes with its
/// content, so it can be cached for a year.
const PASSKEY_JS_HASH: u64 = {
    let bytes = PASSKEY_JS.as_bytes();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
};

/// The script's URL, for templates.
pub fn passkey_js() -> String {
    format!("/assets/passkey.js?v={PASSKEY_JS_HASH:016x}")
}

pub async fn passkey_script() -> Response {
    script(PASSKEY_JS, "public, max-age=31536000, immutable")
}

fn lang(headers: &HeaderMap) -> Lang {
    lang_of(&LangQuery { lang: None }, headers)
}

/// `next` when it is a path on this site: one leading slash, no scheme, no
/// host, no backslash or control character. Anything else is refused, so
/// the step-up page never redirects elsewhere.
pub fn local_path(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(|c| c.is_control() || c.is_whitespace())
        && next.len() <= 512;
    ok.then_some(next)
}

fn encode_component(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The step-up page that returns to `next`.
pub fn step_up_url(next: &str) -> String {
    format!("/login/step-up?next={}", encode_component(next))
}

/// For handlers that need two factors: the session when it has them;
/// otherwise the answer to give (to the login page, or to the step-up page
/// that returns to `next`, which tells a person without a second factor
/// how to add one). The OIDC endpoints use this for `acr_values`.
pub async fn require_two_factor(
    state: &AppState,
    headers: &HeaderMap,
    next: &str,
) -> Result<SessionRecord, Response> {
    match session_of(state, headers).await {
        Err(e) => Err(e.into_response()),
        Ok(None) => Err(Redirect::to("/login").into_response()),
        Ok(Some(s)) if s.acr == ACR_TWO_FACTOR => Ok(s),
        Ok(Some(_)) => Err(Redirect::to(&step_up_url(next)).into_response()),
    }
}

fn with_session(mut res: Response, session: &NewSession) -> Response {
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(COOKIE, &session.id, None));
    no_store(&mut res);
    res
}

fn webauthn(state: &AppState) -> Result<Webauthn, ApiError> {
    let bad = |m: &str| ApiError(Error::Config(format!("public_url for passkeys: {m}")));
    let origin =
        webauthn_rs::prelude::Url::parse(&state.public_url).map_err(|e| bad(&e.to_string()))?;
    let rp_id = origin
        .domain()
        .ok_or_else(|| bad("needs a host name, not an address"))?
        .to_owned();
    WebauthnBuilder::new(&rp_id, &origin)
        .and_then(|b| b.rp_name("tilgang").build())
        .map_err(|e| bad(&e.to_string()))
}

fn json_state<T: Serialize>(v: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(v).map_err(|e| ApiError(Error::store(e)))
}

fn stored_passkey(f: &SecondFactor) -> Option<Passkey> {
    serde_json::from_str(f.credential.as_deref()?).ok()
}

// ---------------------------------------------------------------- account

pub struct FactorRow {
    pub id: i64,
    pub kind: String,
    pub label: String,
    pub added: String,
    pub last_used: String,
}

/// The account page's "Second factors" section.
pub struct AccountFactors {
    pub list: Vec<FactorRow>,
    pub recovery_left: i64,
    pub two_factor: bool,
}

pub async fn account_section(
    state: &AppState,
    session: &SessionRecord,
    lang: Lang,
) -> Result<AccountFactors, ApiError> {
    let list = state
        .store
        .second_factors(session.person_id)
        .await?
        .into_iter()
        .map(|f| FactorRow {
            id: f.id,
            kind: t(lang, &format!("factors.kind.{}", f.kind.as_str())),
            label: f.label,
            added: when(f.created_at),
            last_used: f
                .last_used_at
                .map(when)
                .unwrap_or_else(|| t(lang, "factors.never_used")),
        })
        .collect();
    Ok(AccountFactors {
        list,
        recovery_left: state.store.unused_recovery_codes(session.person_id).await?,
        two_factor: session.acr == ACR_TWO_FACTOR,
    })
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct RecoveryPage {
    lang: &'static str,
    t: Texts,
    codes: Vec<String>,
}

fn recovery_page(lang: Lang, codes: Vec<String>) -> Response {
    uncached(render(&RecoveryPage {
        lang: lang.code(),
        t: Texts(lang),
        codes,
    }))
}

/// The answer to an enrolment that went through: the recovery codes when
/// it was the first factor, shown once; else the account page, or the
/// step-up page returning to `here`. `Err` gives back a refused code.
fn enrolment_answer(lang: Lang, outcome: Enrolled, here: &str) -> Result<Response, Enrolled> {
    match outcome {
        Enrolled::Done {
            recovery: Some(codes),
        } => Ok(recovery_page(lang, codes)),
        Enrolled::Done { recovery: None } => Ok(Redirect::to("/account").into_response()),
        Enrolled::NeedsTwoFactor => Ok(Redirect::to(&step_up_url(here)).into_response()),
        refused @ (Enrolled::WrongCode | Enrolled::Expired) => Err(refused),
    }
}

/// Adding a factor: the first from any session, more only at two factors.
async fn may_add(
    state: &AppState,
    headers: &HeaderMap,
    here: &str,
) -> Result<(SessionRecord, Vec<SecondFactor>), Response> {
    let session = signed_in(state, headers).await?;
    let factors = state
        .store
        .second_factors(session.person_id)
        .await
        .map_err(|e| ApiError(e).into_response())?;
    if factors.is_empty() {
        return Ok((session, factors));
    }
    let session = require_two_factor(state, headers, here).await?;
    Ok((session, factors))
}

#[derive(Template)]
#[template(path = "totp_enrol.html")]
struct TotpPage {
    lang: &'static str,
    t: Texts,
    csrf: String,
    qr: String,
    secret: String,
    secret_grouped: String,
    label: String,
    error: Option<String>,
}

async fn totp_view(
    state: &AppState,
    session: &SessionRecord,
    lang: Lang,
    label: String,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let e = core_factors::begin_totp(&*state.store, &*state.clock, &state.keys, session).await?;
    let page = TotpPage {
        lang: lang.code(),
        t: Texts(lang),
        csrf: session.csrf.clone(),
        qr: qr_svg(&e.uri, 200).unwrap_or_default(),
        secret_grouped: tilgang_core::identity::totp::grouped(&e.secret),
        secret: e.secret,
        label,
        error,
    };
    Ok(private_page(status, &page))
}

pub async fn totp_page(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = lang_of(&q, &headers);
    let session = match may_add(&state, &headers, "/account/factors/totp").await {
        Ok((s, _)) => s,
        Err(res) => return Ok(res),
    };
    totp_view(
        &state,
        &session,
        lang,
        t(lang, "totp.label_default"),
        None,
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize)]
pub struct TotpForm {
    csrf: String,
    code: String,
    #[serde(default)]
    label: String,
}

pub async fn totp_confirm(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<TotpForm>,
) -> Result<Response, ApiError> {
    let lang = lang(&headers);
    let session = match signed_in_form(&state, &headers, &form.csrf, lang).await {
        Ok(s) => s,
        Err(res) => return Ok(res),
    };
    let label = core_factors::label(&form.label, &t(lang, "totp.label_default"));
    let outcome = core_factors::confirm_totp(
        &*state.store,
        &*state.clock,
        &state.keys,
        &session,
        &form.code,
        label.clone(),
    )
    .await?;
    let error = match enrolment_answer(lang, outcome, "/account/factors/totp") {
        Ok(res) => return Ok(res),
        Err(Enrolled::Expired) => t(lang, "totp.expired"),
        Err(_) => t(lang, "totp.wrong"),
    };
    totp_view(
        &state,
        &session,
        lang,
        label,
        Some(error),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

#[derive(Template)]
#[template(path = "passkey_add.html")]
struct PasskeyPage {
    lang: &'static str,
    t: Texts,
    csrf: String,
    label: String,
    error: Option<String>,
}

fn passkey_view(
    session: &SessionRecord,
    lang: Lang,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let page = PasskeyPage {
        lang: lang.code(),
        t: Texts(lang),
        csrf: session.csrf.clone(),
        label: t(lang, "passkey.label_default"),
        error,
    };
    private_page(status, &page)
}

pub async fn passkey_page(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = lang_of(&q, &headers);
    match may_add(&state, &headers, "/account/factors/passkey").await {
        Ok((session, _)) => passkey_view(&session, lang, None, StatusCode::OK),
        Err(res) => res,
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

#[derive(Serialize, Deserialize)]
struct Registration {
    state: PasskeyRegistration,
    user_handle: Vec<u8>,
}

/// Starts a passkey registration: the options for
/// `navigator.credentials.create`, the state kept in the database.
pub async fn passkey_begin(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    let (session, factors) = match may_add(&state, &headers, "/account/factors/passkey").await {
        Ok(v) => v,
        Err(_) => return Ok(StatusCode::FORBIDDEN.into_response()),
    };
    if let Some(refused) = csrf_refusal(&session, &form.csrf, lang(&headers)) {
        return Ok(refused);
    }
    let passkeys: Vec<&SecondFactor> = factors
        .iter()
        .filter(|f| f.kind == FactorKind::Passkey)
        .collect();
    let handle = passkeys
        .iter()
        .find_map(|f| {
            f.user_handle
                .as_deref()
                .and_then(|h| Uuid::from_slice(h).ok())
        })
        .unwrap_or_else(Uuid::new_v4);
    let exclude = passkeys
        .iter()
        .filter_map(|f| stored_passkey(f))
        .map(|p| p.cred_id().clone())
        .collect();
    let (options, reg) = webauthn(&state)?
        .start_passkey_registration(handle, &session.user_id, &session.given_name, Some(exclude))
        .map_err(|e| ApiError(Error::Config(format!("passkey registration: {e}"))))?;
    // A discoverable credential, so that it can log in without a name
    // (the registration itself does not depend on it).
    let mut options = serde_json::to_value(options).map_err(|e| ApiError(Error::store(e)))?;
    options["publicKey"]["authenticatorSelection"] = serde_json::json!({
        "residentKey": "required",
        "requireResidentKey": true,
        "userVerification": "required"
    });
    let now = state.clock.now().unix_timestamp();
    let kept = json_state(&Registration {
        state: reg,
        user_handle: handle.as_bytes().to_vec(),
    })?;
    state
        .store
        .put_ceremony(
            &ceremony_key(PASSKEY_REGISTER, &session.id_hash),
            PASSKEY_REGISTER,
            Some(session.person_id),
            &kept,
            now + WEBAUTHN_TTL_S,
            now,
        )
        .await?;
    Ok(uncached(Json(options).into_response()))
}

#[derive(Deserialize)]
pub struct PasskeyForm {
    csrf: String,
    #[serde(default)]
    credential: String,
    #[serde(default)]
    label: String,
    next: Option<String>,
    /// OIDC: the pending authorization request a passkey login continues.
    pending: Option<String>,
}

/// Finishes a passkey registration (the form the script submits).
pub async fn passkey_finish(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<PasskeyForm>,
) -> Result<Response, ApiError> {
    let lang = lang(&headers);
    let session = match signed_in_form(&state, &headers, &form.csrf, lang).await {
        Ok(s) => s,
        Err(res) => return Ok(res),
    };
    let failed = |session: &SessionRecord| {
        passkey_view(
            session,
            lang,
            Some(t(lang, "passkey.failed")),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    let now = state.clock.now().unix_timestamp();
    let key = ceremony_key(PASSKEY_REGISTER, &session.id_hash);
    let Some(c) = state.store.ceremony(&key, PASSKEY_REGISTER, now).await? else {
        return Ok(failed(&session));
    };
    let (Ok(reg), Ok(cred)) = (
        serde_json::from_slice::<Registration>(&c.state),
        serde_json::from_str::<RegisterPublicKeyCredential>(&form.credential),
    ) else {
        return Ok(failed(&session));
    };
    let passkey = match webauthn(&state)?.finish_passkey_registration(&cred, &reg.state) {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(error = %e, "passkey registration refused");
            return Ok(failed(&session));
        }
    };
    let label = core_factors::label(&form.label, &t(lang, "passkey.label_default"));
    let credential = serde_json::to_string(&passkey).map_err(|e| ApiError(Error::store(e)))?;
    let outcome = core_factors::add_passkey(
        &*state.store,
        &*state.clock,
        &session,
        passkey.cred_id().to_vec(),
        credential,
        reg.user_handle,
        label,
    )
    .await?;
    Ok(enrolment_answer(lang, outcome, "/account/factors/passkey")
        .unwrap_or_else(|_| failed(&session)))
}

#[derive(Deserialize)]
pub struct RemoveForm {
    csrf: String,
    factor: i64,
}

/// Removes a factor: needs two factors.
pub async fn remove_factor(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<RemoveForm>,
) -> Result<Response, ApiError> {
    let session = match signed_in_form(&state, &headers, &form.csrf, lang(&headers)).await {
        Ok(s) => s,
        Err(res) => return Ok(res),
    };
    let Some(tf) = TwoFactor::of(&session) else {
        return Ok(Redirect::to(&step_up_url("/account")).into_response());
    };
    core_factors::remove(&*state.store, &*state.clock, tf, form.factor).await?;
    Ok(Redirect::to("/account").into_response())
}

/// New recovery codes: needs two factors (and a factor to recover).
pub async fn regenerate_recovery(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    let lang = lang(&headers);
    let session = match signed_in_form(&state, &headers, &form.csrf, lang).await {
        Ok(s) => s,
        Err(res) => return Ok(res),
    };
    let Some(tf) = TwoFactor::of(&session) else {
        return Ok(Redirect::to(&step_up_url("/account")).into_response());
    };
    if state
        .store
        .second_factors(session.person_id)
        .await?
        .is_empty()
    {
        return Ok(Redirect::to("/account").into_response());
    }
    let codes = core_factors::regenerate_recovery(&*state.store, &*state.clock, tf).await?;
    Ok(recovery_page(lang, codes))
}

// ---------------------------------------------------------------- step-up

#[derive(Template)]
#[template(path = "step_up.html")]
struct StepUpPage {
    lang: &'static str,
    t: Texts,
    csrf: String,
    next: String,
    error: Option<String>,
    has_totp: bool,
    has_passkey: bool,
    recovery_left: i64,
}

fn bad_next(lang: Lang) -> Response {
    let mut res = (StatusCode::BAD_REQUEST, t(lang, "stepup.bad_next")).into_response();
    no_store(&mut res);
    res
}

async fn step_up_view(
    state: &AppState,
    session: &SessionRecord,
    lang: Lang,
    next: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let factors = state.store.second_factors(session.person_id).await?;
    let page = StepUpPage {
        lang: lang.code(),
        t: Texts(lang),
        csrf: session.csrf.clone(),
        next: next.to_owned(),
        error,
        has_totp: factors.iter().any(|f| f.kind == FactorKind::Totp),
        has_passkey: factors.iter().any(|f| f.kind == FactorKind::Passkey),
        recovery_left: state.store.unused_recovery_codes(session.person_id).await?,
    };
    Ok(private_page(status, &page))
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
    lang: Option<String>,
}

pub async fn step_up_page(
    State(state): State<Arc<AppState>>,
    Query(q): Query<NextQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = lang_of(&LangQuery { lang: q.lang }, &headers);
    let Some(next) = local_path(q.next.as_deref().unwrap_or("/account")) else {
        return Ok(bad_next(lang));
    };
    let session = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(res) => return Ok(res),
    };
    if session.acr == ACR_TWO_FACTOR {
        return Ok(Redirect::to(next).into_response());
    }
    step_up_view(&state, &session, lang, next, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    code: String,
    next: Option<String>,
}

pub async fn step_up_totp(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Result<Response, ApiError> {
    step_up_code(state, peer, headers, form, Code::Totp).await
}

pub async fn step_up_recovery(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Result<Response, ApiError> {
    step_up_code(state, peer, headers, form, Code::Recovery).await
}

async fn step_up_code(
    state: Arc<AppState>,
    peer: SocketAddr,
    headers: HeaderMap,
    form: CodeForm,
    which: Code,
) -> Result<Response, ApiError> {
    let lang = lang(&headers);
    let Some(next) = local_path(form.next.as_deref().unwrap_or("/account")) else {
        return Ok(bad_next(lang));
    };
    let session = match signed_in_form(&state, &headers, &form.csrf, lang).await {
        Ok(s) => s,
        Err(res) => return Ok(res),
    };
    if session.acr == ACR_TWO_FACTOR {
        return Ok(Redirect::to(next).into_response());
    }
    let outcome = stepup::with_code(
        &*state.store,
        &*state.clock,
        &state.login,
        &state.keys,
        &session,
        which,
        &form.code,
        &peer.ip().to_string(),
    )
    .await?;
    let again =
        |key: &str, status| step_up_view(&state, &session, lang, next, Some(t(lang, key)), status);
    Ok(match outcome {
        StepUp::Done(new) => with_session(Redirect::to(next).into_response(), &new),
        StepUp::Refused => again("stepup.refused", StatusCode::UNAUTHORIZED).await?,
        StepUp::Locked => {
            retry_after_a_minute(again("stepup.locked", StatusCode::TOO_MANY_REQUESTS).await?)
        }
    })
}

/// Starts a passkey step-up: the options for `navigator.credentials.get`
/// with the person's passkeys.
pub async fn step_up_passkey_begin(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    let Ok(session) = signed_in(&state, &headers).await else {
        return Ok(StatusCode::FORBIDDEN.into_response());
    };
    if let Some(refused) = csrf_refusal(&session, &form.csrf, lang(&headers)) {
        return Ok(refused);
    }
    let passkeys: Vec<Passkey> = state
        .store
        .second_factors(session.person_id)
        .await?
        .iter()
        .filter(|f| f.kind == FactorKind::Passkey)
        .filter_map(stored_passkey)
        .collect();
    if passkeys.is_empty() {
        return Ok(StatusCode::NOT_FOUND.into_response());
    }
    let (options, auth) = webauthn(&state)?
        .start_passkey_authentication(&passkeys)
        .map_err(|e| ApiError(Error::Config(format!("passkey authentication: {e}"))))?;
    let now = state.clock.now().unix_timestamp();
    state
        .store
        .put_ceremony(
            &ceremony_key(PASSKEY_STEP_UP, &session.id_hash),
            PASSKEY_STEP_UP,
            Some(session.person_id),
            &json_state(&auth)?,
            now + WEBAUTHN_TTL_S,
            now,
        )
        .await?;
    Ok(uncached(Json(options).into_response()))
}

/// Finishes a passkey step-up (the form the script submits).
pub async fn step_up_passkey(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<PasskeyForm>,
) -> Result<Response, ApiError> {
    let lang = lang(&headers);
    let Some(next) = local_path(form.next.as_deref().unwrap_or("/account")) else {
        return Ok(bad_next(lang));
    };
    let session = match signed_in_form(&state, &headers, &form.csrf, lang).await {
        Ok(s) => s,
        Err(res) => return Ok(res),
    };
    let failed = |status| {
        step_up_view(
            &state,
            &session,
            lang,
            next,
            Some(t(lang, "passkey.failed")),
            status,
        )
    };
    let now = state.clock.now().unix_timestamp();
    let key = ceremony_key(PASSKEY_STEP_UP, &session.id_hash);
    let taken = state
        .store
        .take_ceremony(&key, PASSKEY_STEP_UP, now)
        .await?;
    let parsed = taken.and_then(|c| {
        Some((
            serde_json::from_slice::<PasskeyAuthentication>(&c.state).ok()?,
            serde_json::from_str::<PublicKeyCredential>(&form.credential).ok()?,
        ))
    });
    let Some((auth, cred)) = parsed else {
        return failed(StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    let result = match webauthn(&state)?.finish_passkey_authentication(&cred, &auth) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(error = %e, "passkey step-up refused");
            return failed(StatusCode::UNAUTHORIZED).await;
        }
    };
    let factor = state
        .store
        .passkey_by_credential(result.cred_id().as_ref())
        .await?
        .filter(|f| f.person_id == session.person_id);
    let Some((factor, mut passkey)) = factor.and_then(|f| Some((f.clone(), stored_passkey(&f)?)))
    else {
        return failed(StatusCode::UNAUTHORIZED).await;
    };
    passkey.update_credential(&result);
    let credential = serde_json::to_string(&passkey).map_err(|e| ApiError(Error::store(e)))?;
    let outcome = stepup::with_passkey(
        &*state.store,
        &*state.clock,
        &session,
        &factor,
        credential,
        &peer.ip().to_string(),
    )
    .await?;
    Ok(match outcome {
        StepUp::Done(new) => with_session(Redirect::to(next).into_response(), &new),
        StepUp::Refused | StepUp::Locked => failed(StatusCode::UNAUTHORIZED).await?,
    })
}

// ---------------------------------------------------------------- passkey login

/// Starts a passkey login from the login page (double-submit CSRF, as the
/// password form): a discoverable, user-verified assertion.
pub async fn login_passkey_begin(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    if !login_csrf_ok(&headers, &form.csrf) {
        return Ok(csrf_refused(lang(&headers)));
    }
    // Each begin stores a ceremony before anyone is known: it counts as a
    // login attempt, in the password login's buckets and limits.
    let now = state.clock.now().unix_timestamp();
    let buckets = [format!("addr:{}", peer.ip()), "all".to_owned()];
    let counts = state
        .store
        .count_attempts(&buckets, now / 60, LOGIN_WINDOW_MIN)
        .await?;
    if counts
        .first()
        .is_some_and(|n| *n > state.login.per_address_limit)
        || counts
            .get(1)
            .is_some_and(|n| *n > state.login.overall_limit)
    {
        return Ok(retry_after_a_minute(
            StatusCode::TOO_MANY_REQUESTS.into_response(),
        ));
    }
    let (mut options, auth) = webauthn(&state)?
        .start_discoverable_authentication()
        .map_err(|e| ApiError(Error::Config(format!("passkey login: {e}"))))?;
    // A button press, not autofill.
    options.mediation = None;
    let id = random_token();
    state
        .store
        .put_ceremony(
            &ceremony_key(PASSKEY_LOGIN, id.as_bytes()),
            PASSKEY_LOGIN,
            None,
            &json_state(&auth)?,
            now + WEBAUTHN_TTL_S,
            now,
        )
        .await?;
    let mut res = Json(options).into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(PASSKEY_LOGIN_COOKIE, &id, Some(WEBAUTHN_TTL_S)),
    );
    no_store(&mut res);
    Ok(res)
}

/// Where a passkey login goes: the service's pending authorization
/// request when the login page carried one, else the account page.
pub(crate) fn passkey_login_next(pending: Option<String>) -> String {
    match crate::auth::pending_id(pending) {
        Some(id) => format!("/oidc/authorize?pending={id}"),
        None => "/account".to_owned(),
    }
}

/// Finishes a passkey login (the form the script submits).
pub async fn login_passkey(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<PasskeyForm>,
) -> Result<Response, ApiError> {
    let lang = lang(&headers);
    if !login_csrf_ok(&headers, &form.csrf) {
        return Ok(csrf_refused(lang));
    }
    let refused = || {
        login_page(
            lang,
            String::new(),
            Some(t(lang, "passkey.failed")),
            None,
            StatusCode::UNAUTHORIZED,
            crate::auth::pending_id(form.pending.clone()),
        )
    };
    let Some(id) = cookie(&headers, PASSKEY_LOGIN_COOKIE) else {
        return Ok(refused());
    };
    let now = state.clock.now().unix_timestamp();
    let taken = state
        .store
        .take_ceremony(
            &ceremony_key(PASSKEY_LOGIN, id.as_bytes()),
            PASSKEY_LOGIN,
            now,
        )
        .await?;
    let parsed = taken.and_then(|c| {
        Some((
            serde_json::from_slice::<webauthn_rs::prelude::DiscoverableAuthentication>(&c.state)
                .ok()?,
            serde_json::from_str::<PublicKeyCredential>(&form.credential).ok()?,
        ))
    });
    let Some((auth, cred)) = parsed else {
        return Ok(refused());
    };
    let wa = webauthn(&state)?;
    let Ok((user, cred_id)) = wa.identify_discoverable_authentication(&cred) else {
        return Ok(refused());
    };
    let factor = state
        .store
        .passkey_by_credential(cred_id)
        .await?
        .filter(|f| f.user_handle.as_deref() == Some(user.as_bytes().as_slice()));
    let Some((factor, mut passkey)) = factor.and_then(|f| Some((f.clone(), stored_passkey(&f)?)))
    else {
        return Ok(refused());
    };
    let result = match wa.finish_discoverable_authentication(
        &cred,
        auth,
        &[DiscoverableKey::from(&passkey)],
    ) {
        Ok(r) if r.user_verified() => r,
        Ok(_) => return Ok(refused()),
        Err(e) => {
            tracing::info!(error = %e, "passkey login refused");
            return Ok(refused());
        }
    };
    passkey.update_credential(&result);
    let credential = serde_json::to_string(&passkey).map_err(|e| ApiError(Error::store(e)))?;
    let ua = user_agent(&headers);
    let session = stepup::passkey_login(
        &*state.store,
        &*state.clock,
        &state.login,
        &factor,
        credential,
        &peer.ip().to_string(),
        ua,
    )
    .await?;
    Ok(match session {
        Some(session) => {
            let next = passkey_login_next(form.pending.clone());
            let mut res = uncached(logged_in(&next, &session.id));
            res.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(PASSKEY_LOGIN_COOKIE, "", Some(0)),
            );
            res
        }
        None => refused(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passkey_login_continues_a_pending_authorization_and_nothing_else() {
        let id = "a".repeat(43);
        assert_eq!(
            passkey_login_next(Some(id.clone())),
            format!("/oidc/authorize?pending={id}")
        );
        for bad in ["/evil", "https://evil.example/", ""] {
            assert_eq!(passkey_login_next(Some(bad.into())), "/account");
        }
        assert_eq!(passkey_login_next(None), "/account");
    }

    #[test]
    fn only_local_paths_are_followed() {
        for ok in ["/account", "/a/b?c=d", "/"] {
            assert_eq!(local_path(ok), Some(ok));
        }
        for bad in [
            "https://evil.example",
            "//evil.example/x",
            "/\\evil.example",
            "evil",
            "",
            "/a\nb",
            "javascript:alert(1)",
        ] {
            assert_eq!(local_path(bad), None, "{bad:?}");
        }
        assert_eq!(
            step_up_url("/a b?c=d"),
            "/login/step-up?next=%2Fa%20b%3Fc%3Dd"
        );
    }
}
