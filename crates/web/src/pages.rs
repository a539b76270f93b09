//! Server-rendered pages (askama). Texts come from the i18n catalogs.

use crate::error::ApiError;
use crate::i18n::{t, Lang};
use crate::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
pub struct LangQuery {
    pub lang: Option<String>,
}

pub fn lang_of(q: &LangQuery, headers: &HeaderMap) -> Lang {
    Lang::negotiate(
        q.lang.as_deref(),
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

/// The language a form or query names, else the browser's.
pub fn lang_in(lang: Option<String>, headers: &HeaderMap) -> Lang {
    lang_of(&LangQuery { lang }, headers)
}

pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `data` as a QR code (error correction M) in inline SVG, at least `min`
/// pixels square.
pub(crate) fn qr_svg(data: &str, min: u32) -> qrcode::types::QrResult<String> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::with_error_correction_level(data, qrcode::EcLevel::M)?;
    let svg = code
        .render::<svg::Color<'_>>()
        .min_dimensions(min, min)
        .quiet_zone(true)
        .build();
    // Inline in HTML: no XML declaration.
    Ok(match svg.find("<svg") {
        Some(i) => svg[i..].to_owned(),
        None => svg,
    })
}

/// One of our own scripts, cached as `cache_control` says.
pub(crate) fn script(body: &'static str, cache_control: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(cache_control),
            ),
        ],
        body,
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "start.html")]
struct Start {
    lang: &'static str,
    t: crate::auth::Texts,
    other_lang: &'static str,
    switch_label: String,
    title: String,
    lead: String,
    health: String,
    figures: Vec<(String, i64)>,
}

pub async fn start(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = lang_of(&q, &headers);
    let c = state.store.counts().await?;
    let page = Start {
        lang: lang.code(),
        t: crate::auth::Texts(lang),
        other_lang: if lang == Lang::Da { "en" } else { "da" },
        switch_label: t(lang, "start.language"),
        title: t(lang, "start.title"),
        lead: t(lang, "start.lead"),
        health: t(lang, "start.health"),
        figures: vec![
            (t(lang, "start.institutions"), c.institutions),
            (t(lang, "start.persons"), c.active_persons),
            (t(lang, "start.groups"), c.groups),
            (t(lang, "start.audit"), c.audit_events),
        ],
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFound {
    lang: &'static str,
    t: crate::auth::Texts,
    title: String,
    body: String,
    home: String,
}

pub async fn not_found(Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    let lang = lang_of(&q, &headers);
    let page = NotFound {
        lang: lang.code(),
        t: crate::auth::Texts(lang),
        title: t(lang, "notfound.title"),
        body: t(lang, "notfound.body"),
        home: t(lang, "notfound.home"),
    };
    (StatusCode::NOT_FOUND, render(&page)).into_response()
}

/// htmx, vendored (see the file's header); the URL carries its version, so
/// it may be cached for a year.
pub async fn htmx() -> Response {
    script(
        include_str!("../assets/htmx.min.js"),
        "public, max-age=31536000, immutable",
    )
}
