//! A safe way to report security problems: `/.well-known/security.txt`
//! (RFC 9116) and a public page with the disclosure policy and a form.
//! Reports are stored for the operators (`tilgang security-reports`) and
//! acknowledged with a reference; the audit log records that one arrived,
//! never what it says.

use crate::auth::{
    csrf_refused, login_csrf_ok, pre_login_page, private_page, set_cookie, Texts, LOGIN_CSRF,
};
use crate::error::ApiError;
use crate::i18n::{t, Lang};
use crate::pages::{lang_in, lang_of, LangQuery};
use crate::AppState;
use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use tilgang_core::audit::actions;
use tilgang_core::audit::NewEvent;
use tilgang_core::store::reports::NewReport;

/// Reports one address may send in ten minutes.
const REPORTS_PER_ADDRESS: i64 = 10;
const MAX_SUMMARY: usize = 200;
const MAX_DETAILS: usize = 20_000;
const MAX_CONTACT: usize = 200;

/// RFC 9116. `Expires` is a year ahead of today: the file is made from the
/// running configuration, so it is never stale while the server runs.
pub async fn security_txt(State(state): State<Arc<AppState>>) -> Response {
    let base = &state.public_url;
    let expires = (state.clock.now() + time::Duration::days(365))
        .date()
        .midnight()
        .assume_utc();
    let expires = expires
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut body = String::new();
    for c in &state.security_contacts {
        body.push_str(&format!("Contact: {c}\n"));
    }
    body.push_str(&format!(
        "Contact: {base}/security\nExpires: {expires}\nPreferred-Languages: da, en\nCanonical: {base}/.well-known/security.txt\nPolicy: {base}/security\n"
    ));
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    lang: &'static str,
    t: Texts,
    csrf: String,
    problems: Vec<String>,
    contact: String,
    summary: String,
    details: String,
}

#[derive(Template)]
#[template(path = "security_thanks.html")]
struct ThanksPage {
    lang: &'static str,
    t: Texts,
    reference: String,
}

fn page(
    lang: Lang,
    form: Option<&ReportForm>,
    problems: Vec<String>,
    status: StatusCode,
) -> Response {
    let field = |f: fn(&ReportForm) -> &String| form.map(f).cloned().unwrap_or_default();
    pre_login_page(status, |csrf| SecurityPage {
        lang: lang.code(),
        t: Texts(lang),
        csrf,
        problems,
        contact: field(|f| &f.contact),
        summary: field(|f| &f.summary),
        details: field(|f| &f.details),
    })
}

pub async fn form(Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    page(lang_of(&q, &headers), None, Vec::new(), StatusCode::OK)
}

#[derive(Deserialize)]
pub struct ReportForm {
    csrf: String,
    #[serde(default)]
    contact: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    details: String,
    lang: Option<String>,
}

pub async fn submit(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<ReportForm>,
) -> Result<Response, ApiError> {
    let lang = lang_in(form.lang.clone(), &headers);
    if !login_csrf_ok(&headers, &form.csrf) {
        return Ok(csrf_refused(lang));
    }
    let mut problems = Vec::new();
    if form.summary.trim().is_empty() {
        problems.push(t(lang, "security.summary_missing"));
    }
    if form.summary.chars().count() > MAX_SUMMARY
        || form.details.chars().count() > MAX_DETAILS
        || form.contact.chars().count() > MAX_CONTACT
    {
        problems.push(t(lang, "security.too_long"));
    }
    if !problems.is_empty() {
        return Ok(page(
            lang,
            Some(&form),
            problems,
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    let now = state.clock.now();
    let bucket = [format!("report:{}", peer.ip())];
    let counts = state
        .store
        .count_attempts(&bucket, now.unix_timestamp() / 60, 10)
        .await?;
    if counts.first().is_some_and(|n| *n > REPORTS_PER_ADDRESS) {
        let mut res = page(
            lang,
            Some(&form),
            vec![t(lang, "security.throttled")],
            StatusCode::TOO_MANY_REQUESTS,
        );
        res.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("600"));
        return Ok(res);
    }
    let report = NewReport {
        contact: form.contact.trim().to_owned(),
        summary: form.summary.trim().to_owned(),
        details: form.details.trim().to_owned(),
    };
    let stored = state
        .store
        .add_report(
            &report,
            now,
            NewEvent::new("anonymous", actions::SECURITY_REPORT_RECEIVED),
        )
        .await?;
    tracing::warn!(reference = %stored.reference, "security report received");
    let mut res = private_page(
        StatusCode::OK,
        &ThanksPage {
            lang: lang.code(),
            t: Texts(lang),
            reference: stored.reference,
        },
    );
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(LOGIN_CSRF, "", Some(0)));
    Ok(res)
}
