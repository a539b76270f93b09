//! Login, logout, activation and the account page. Sessions live in the
//! database; the cookie is `__Host-` prefixed, Secure, HttpOnly and
//! SameSite=Lax; every form carries a CSRF token that is checked.

use crate::error::ApiError;
use crate::i18n::{t, Lang};
use crate::pages::{lang_in, lang_of, render, LangQuery};
use crate::AppState;
use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use tilgang_core::audit::actions;
use tilgang_core::identity::login::{self, ChangePassword, LoginResult, SetPassword};
use tilgang_core::identity::password::{self, HashParams, PolicyProblem};
use tilgang_core::identity::session::{csrf_matches, random_token, SessionRecord, COOKIE};

/// The pre-login CSRF cookie (double submit): no session exists yet.
pub(crate) const LOGIN_CSRF: &str = "__Host-tilgang-csrf";

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

pub(crate) fn set_cookie(name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Runs work that hashes passwords (tens of milliseconds of CPU) on a
/// blocking thread, so the async workers keep serving other requests. At
/// most one such job per core runs at once: more would only fight over the
/// cores and their caches (each Argon2id hash walks 19 MiB).
pub(crate) async fn off_the_runtime<T: Send + 'static>(
    state: &AppState,
    work: impl std::future::Future<Output = tilgang_core::Result<T>> + Send + 'static,
) -> Result<T, ApiError> {
    let _permit = state
        .hashing
        .acquire()
        .await
        .map_err(|e| ApiError(tilgang_core::Error::store(e)))?;
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(work))
        .await
        .map_err(|e| ApiError(tilgang_core::Error::store(e)))?
        .map_err(ApiError)
}

/// The login's password work on blocking threads, one job per core at once;
/// the permit is held for the hash alone, never across database round trips.
struct HashPool<'a>(&'a tokio::sync::Semaphore);

impl HashPool<'_> {
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> tilgang_core::Result<T> + Send + 'static,
    ) -> tilgang_core::Result<T> {
        let _permit = self.0.acquire().await.map_err(tilgang_core::Error::store)?;
        tokio::task::spawn_blocking(job)
            .await
            .map_err(tilgang_core::Error::store)?
    }
}

#[async_trait::async_trait]
impl login::HashRunner for HashPool<'_> {
    async fn verify(&self, password: String, phc: String) -> tilgang_core::Result<bool> {
        self.run(move || password::verify_password(&password, &phc))
            .await
    }
    async fn hash(&self, password: String, params: HashParams) -> tilgang_core::Result<String> {
        self.run(move || password::hash_password(&password, &params))
            .await
    }
}

/// The live session the request's cookie names, if any.
pub async fn session_of(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<SessionRecord>, ApiError> {
    let Some(id) = cookie(headers, COOKIE) else {
        return Ok(None);
    };
    Ok(login::current_session(&*state.store, &*state.clock, &state.login, &id).await?)
}

/// The session the request's cookie names; without one, the answer to give
/// instead: to the login page.
pub(crate) async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<SessionRecord, Response> {
    match session_of(state, headers).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(Redirect::to("/login").into_response()),
        Err(e) => Err(e.into_response()),
    }
}

/// The form's CSRF token checked against the session's: the refusal (403,
/// in `lang`) when it is wrong.
pub(crate) fn csrf_refusal(
    session: &SessionRecord,
    submitted: &str,
    lang: Lang,
) -> Option<Response> {
    (!csrf_matches(session, submitted)).then(|| csrf_refused(lang))
}

/// The prologue of a signed-in form: the session (or to the login page),
/// then its CSRF token (or 403 in `lang`).
pub(crate) async fn signed_in_form(
    state: &AppState,
    headers: &HeaderMap,
    submitted: &str,
    lang: Lang,
) -> Result<SessionRecord, Response> {
    let session = signed_in(state, headers).await?;
    match csrf_refusal(&session, submitted, lang) {
        Some(refused) => Err(refused),
        None => Ok(session),
    }
}

/// Before login there is no session: the form's token must equal the
/// double-submit cookie [`pre_login_page`] set.
pub(crate) fn login_csrf_ok(headers: &HeaderMap, submitted: &str) -> bool {
    cookie(headers, LOGIN_CSRF).is_some_and(|c| !c.is_empty() && c == submitted)
}

/// A page shown before login: a fresh double-submit CSRF token, in the page
/// `make` builds and in its cookie; never cached.
pub(crate) fn pre_login_page<P: Template>(
    status: StatusCode,
    make: impl FnOnce(String) -> P,
) -> Response {
    let csrf = random_token();
    let page = make(csrf.clone());
    let mut res = (status, render(&page)).into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(LOGIN_CSRF, &csrf, None));
    no_store(&mut res);
    res
}

/// A page for a signed-in person (or one in mid-login), never cached.
pub(crate) fn private_page(status: StatusCode, page: &impl Template) -> Response {
    uncached((status, render(page)).into_response())
}

/// After a login: to `next` with the new session's cookie; the pre-login
/// CSRF cookie has done its work. A fresh id at every login: no fixation.
/// Session cookies end with the browser (no Max-Age); the server ends them
/// earlier.
pub(crate) fn logged_in(next: &str, session_id: &str) -> Response {
    let mut res = Redirect::to(next).into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(COOKIE, session_id, None));
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(LOGIN_CSRF, "", Some(0)));
    res
}

/// Asks a throttled client to wait a minute.
pub(crate) fn retry_after_a_minute(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    res
}

/// The browser's own description, kept with the session.
pub(crate) fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    lang: &'static str,
    t: Texts,
    csrf: String,
    login: String,
    error: Option<String>,
    notice: Option<String>,
    /// OIDC: the pending authorization request the login continues.
    pending: Option<String>,
}

/// Texts of a page, looked up by key in the template.
pub struct Texts(pub Lang);
impl Texts {
    pub fn get(&self, key: &str) -> String {
        t(self.0, key)
    }
    /// A data package's name as people read it (Danish: the national
    /// service's lille / mellem / stor / myndighed), never its key.
    pub fn package(&self, p: tilgang_core::sharing::Package) -> String {
        self.get(&format!("package.{}", p.as_str()))
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    lang: Option<String>,
    activated: Option<String>,
    changed: Option<String>,
    // OIDC: the pending authorization request, and the service's login hint.
    pending: Option<String>,
    login_hint: Option<String>,
}

/// OIDC: a pending-request id has the shape of a random token (no path or
/// URL can pass for one, so the redirect after login stays on tilgang).
pub(crate) fn pending_id(p: Option<String>) -> Option<String> {
    p.filter(|p| {
        p.len() == 43
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

pub(crate) fn login_page(
    lang: Lang,
    login: String,
    error: Option<String>,
    notice: Option<String>,
    status: StatusCode,
    pending: Option<String>,
) -> Response {
    pre_login_page(status, |csrf| LoginPage {
        lang: lang.code(),
        t: Texts(lang),
        csrf,
        login,
        error,
        notice,
        pending,
    })
}

pub(crate) fn no_store(res: &mut Response) {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

pub(crate) fn uncached(mut res: Response) -> Response {
    no_store(&mut res);
    res
}

pub async fn login_form(Query(q): Query<LoginQuery>, headers: HeaderMap) -> Response {
    let lang = lang_of(&LangQuery { lang: q.lang }, &headers);
    let notice = match (q.activated, q.changed) {
        (Some(_), _) => Some(t(lang, "login.activated")),
        (_, Some(_)) => Some(t(lang, "login.changed")),
        _ => None,
    };
    let hint: String = q.login_hint.unwrap_or_default().chars().take(64).collect();
    login_page(
        lang,
        hint,
        None,
        notice,
        StatusCode::OK,
        pending_id(q.pending),
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    login: String,
    password: String,
    csrf: String,
    lang: Option<String>,
    pending: Option<String>,
}

pub async fn login_submit(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, ApiError> {
    let lang = lang_in(form.lang.clone(), &headers);
    let pending = pending_id(form.pending.clone());
    if !login_csrf_ok(&headers, &form.csrf) {
        return Ok(csrf_refused(lang));
    }
    let ua = user_agent(&headers);
    let result = login::password_login(
        &*state.store,
        &*state.clock,
        &state.login,
        &HashPool(&state.hashing),
        &form.login,
        &form.password,
        &peer.ip().to_string(),
        ua,
    )
    .await?;
    Ok(match result {
        LoginResult::Success {
            session,
            password_expired,
        } => {
            let next = match (password_expired, &pending) {
                // OIDC: a forced change carries the authorization request
                // through the change and the login that follows it.
                (true, Some(id)) => format!("/account/password?expired=1&pending={id}"),
                (true, None) => "/account/password?expired=1".to_owned(),
                // OIDC: continue the service's authorization request.
                (false, Some(id)) => format!("/oidc/authorize?pending={id}"),
                (false, None) => "/account".to_owned(),
            };
            // A fresh id at every login: no fixation. Session cookies end
            // with the browser (no Max-Age); the server ends them earlier.
            logged_in(&next, &session.id)
        }
        LoginResult::Refused => login_page(
            lang,
            form.login,
            Some(t(lang, "login.refused")),
            None,
            StatusCode::UNAUTHORIZED,
            pending,
        ),
        LoginResult::Throttled => retry_after_a_minute(login_page(
            lang,
            form.login,
            Some(t(lang, "login.throttled")),
            None,
            StatusCode::TOO_MANY_REQUESTS,
            pending,
        )),
    })
}

pub(crate) fn csrf_refused(lang: Lang) -> Response {
    let mut res = (StatusCode::FORBIDDEN, t(lang, "csrf.refused")).into_response();
    no_store(&mut res);
    res
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    lang: &'static str,
    t: Texts,
    csrf: String,
    name: String,
    user_id: String,
    /// (started, browser, is this one, key for ending it)
    sessions: Vec<(String, String, bool, String)>,
    /// (name, institution) of the pupils this person is a contact person of.
    children: Vec<(String, String)>,
    factors: crate::factors::AccountFactors,
    /// The person holds a staff right somewhere (links to /staff).
    staff: bool,
    /// A provider user (links to /provider).
    provider: bool,
    /// Holds the operator right (links to the security reports).
    operator: bool,
}

pub(crate) fn when(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| format!("{} {:02}:{:02} UTC", t.date(), t.hour(), t.minute()))
        .unwrap_or_default()
}

pub async fn account(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = lang_of(&q, &headers);
    let session = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(res) => return Ok(res),
    };
    let sessions = state
        .store
        .sessions_of(session.person_id)
        .await?
        .into_iter()
        .map(|s| {
            (
                when(s.created_at),
                s.user_agent.clone().unwrap_or_default(),
                s.id_hash == session.id_hash,
                hex::encode(s.id_hash),
            )
        })
        .collect();
    let children = state
        .store
        .children_of(session.person_id)
        .await?
        .into_iter()
        .map(|c| (format!("{} {}", c.given_name, c.family_name), c.institution))
        .collect();
    let staff = !tilgang_core::identity::rights::standing(&*state.store, session.person_id)
        .await?
        .is_empty();
    let provider = tilgang_core::sharing::portal::provider_user(&*state.store, session.person_id)
        .await?
        .is_some();
    let operator = crate::operator::is_operator(&state, session.person_id).await?;
    let page = AccountPage {
        factors: crate::factors::account_section(&state, &session, lang).await?,
        staff,
        provider,
        operator,
        children,
        lang: lang.code(),
        t: Texts(lang),
        csrf: session.csrf.clone(),
        name: session.given_name.clone(),
        user_id: session.user_id.clone(),
        sessions,
    };
    Ok(uncached(render(&page)))
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    let lang = lang_of(&LangQuery { lang: None }, &headers);
    let session = match signed_in_form(&state, &headers, &form.csrf, lang).await {
        Ok(s) => s,
        Err(res) => return Ok(res),
    };
    login::logout(&*state.store, &*state.clock, &session).await?;
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(COOKIE, "", Some(0)));
    Ok(res)
}

#[derive(Template)]
#[template(path = "activate.html")]
struct ActivatePage {
    lang: &'static str,
    t: Texts,
    csrf: String,
    problems: Vec<String>,
}

fn activate_page(lang: Lang, problems: Vec<String>, status: StatusCode) -> Response {
    pre_login_page(status, |csrf| ActivatePage {
        lang: lang.code(),
        t: Texts(lang),
        csrf,
        problems,
    })
}

pub async fn activate_form(Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    activate_page(lang_of(&q, &headers), Vec::new(), StatusCode::OK)
}

#[derive(Deserialize)]
pub struct ActivateForm {
    code: String,
    password: String,
    repeat: String,
    csrf: String,
    lang: Option<String>,
}

pub async fn activate_submit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<ActivateForm>,
) -> Result<Response, ApiError> {
    let lang = lang_in(form.lang.clone(), &headers);
    if !login_csrf_ok(&headers, &form.csrf) {
        return Ok(csrf_refused(lang));
    }
    if form.password != form.repeat {
        return Ok(activate_page(
            lang,
            vec![t(lang, "activate.mismatch")],
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    let (st, code, password) = (state.clone(), form.code.clone(), form.password.clone());
    let outcome = off_the_runtime(&state, async move {
        login::activate(&*st.store, &*st.clock, &st.login, &code, &password).await
    })
    .await?;
    Ok(match outcome {
        SetPassword::Done => Redirect::to("/login?activated=1").into_response(),
        SetPassword::BadCode => activate_page(
            lang,
            vec![t(lang, "activate.bad_code")],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        SetPassword::Rejected(problems) => activate_page(
            lang,
            problem_texts(lang, &problems),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    })
}

/// The policy's objections, in words, with their hints.
fn problem_texts(lang: Lang, problems: &[PolicyProblem]) -> Vec<String> {
    problems
        .iter()
        .map(|p| {
            let mut text = t(lang, p.message_key());
            for (k, v) in p.params() {
                text = text.replace(&format!("{{{k}}}"), &v.to_string());
            }
            for h in p.hints() {
                text.push(' ');
                text.push_str(&t(lang, h));
            }
            text
        })
        .collect()
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    lang: &'static str,
    t: Texts,
    csrf: String,
    problems: Vec<String>,
    pending: Option<String>,
}

fn password_page(
    lang: Lang,
    session: &SessionRecord,
    problems: Vec<String>,
    status: StatusCode,
    pending: Option<String>,
) -> Response {
    let page = PasswordPage {
        lang: lang.code(),
        t: Texts(lang),
        csrf: session.csrf.clone(),
        problems,
        pending,
    };
    private_page(status, &page)
}

#[derive(Deserialize)]
pub struct PasswordQuery {
    lang: Option<String>,
    /// Set when login found the password older than the rotation interval.
    expired: Option<String>,
    /// OIDC: the pending authorization request to continue afterwards.
    pending: Option<String>,
}

pub async fn password_form(
    State(state): State<Arc<AppState>>,
    Query(q): Query<PasswordQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let session = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(res) => return Ok(res),
    };
    let lang = lang_of(&LangQuery { lang: q.lang }, &headers);
    let notice = q.expired.map(|_| t(lang, "password.expired"));
    Ok(password_page(
        lang,
        &session,
        notice.into_iter().collect(),
        StatusCode::OK,
        pending_id(q.pending),
    ))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current: String,
    password: String,
    repeat: String,
    lang: Option<String>,
    pending: Option<String>,
}

/// Changes one's own password; success ends every session (this one too)
/// and sends the person to log in with the new password.
pub async fn password_submit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Result<Response, ApiError> {
    let lang = lang_in(form.lang.clone(), &headers);
    let session = match signed_in_form(&state, &headers, &form.csrf, lang).await {
        Ok(s) => s,
        Err(res) => return Ok(res),
    };
    let pending = pending_id(form.pending.clone());
    let refuse = |key: &str| {
        password_page(
            lang,
            &session,
            vec![t(lang, key)],
            StatusCode::UNPROCESSABLE_ENTITY,
            pending.clone(),
        )
    };
    if form.password != form.repeat {
        return Ok(refuse("activate.mismatch"));
    }
    let st = state.clone();
    let user_id = session.user_id.clone();
    let outcome = off_the_runtime(&state, async move {
        login::change_password(
            &*st.store,
            &*st.clock,
            &st.login,
            &user_id,
            &form.current,
            &form.password,
        )
        .await
    })
    .await?;
    Ok(match outcome {
        ChangePassword::Done => {
            let next = match &pending {
                Some(id) => format!("/login?changed=1&pending={id}"),
                None => "/login?changed=1".to_owned(),
            };
            let mut res = Redirect::to(&next).into_response();
            res.headers_mut()
                .append(header::SET_COOKIE, set_cookie(COOKIE, "", Some(0)));
            res
        }
        ChangePassword::WrongCurrent => refuse("password.wrong_current"),
        ChangePassword::Rejected(problems) => password_page(
            lang,
            &session,
            problem_texts(lang, &problems),
            StatusCode::UNPROCESSABLE_ENTITY,
            pending.clone(),
        ),
    })
}

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    lang: &'static str,
    t: Texts,
}

pub async fn forgot(Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    let lang = lang_of(&q, &headers);
    render(&ForgotPage {
        lang: lang.code(),
        t: Texts(lang),
    })
}

#[derive(Deserialize)]
pub struct EndSessionForm {
    csrf: String,
    /// The hex SHA-256 of the session id (never the id itself).
    session: String,
}

/// Ends one of the person's other sessions (a phone left logged in).
pub async fn end_session(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<EndSessionForm>,
) -> Result<Response, ApiError> {
    let lang = lang_of(&LangQuery { lang: None }, &headers);
    let session = match signed_in_form(&state, &headers, &form.csrf, lang).await {
        Ok(s) => s,
        Err(res) => return Ok(res),
    };
    let mine = state.store.sessions_of(session.person_id).await?;
    // Only the person's own sessions: any other key is simply not found.
    if let Some(target) = mine.iter().find(|s| hex::encode(s.id_hash) == form.session) {
        let ev = tilgang_core::audit::NewEvent::new(
            format!("person:{}", session.person_id),
            actions::SESSION_ENDED,
        )
        .subjects(vec![session.person_id]);
        state
            .store
            .end_session(&target.id_hash, state.clock.now(), ev)
            .await?;
    }
    Ok(Redirect::to("/account").into_response())
}
