//! Card login: `/login/card` shows a camera view that reads a pupil's QR
//! login card (jsQR, served from `/assets/`, never a CDN) and, without
//! JavaScript too, a form for typing the card's short code. The QR holds
//! `{public_url}/login/card#<code>`: the fragment never reaches a server or
//! a log, and the page's script submits a code it finds there.

use crate::auth::{
    csrf_refused, logged_in, login_csrf_ok, pre_login_page, retry_after_a_minute, user_agent, Texts,
};
use crate::error::ApiError;
use crate::i18n::{t, Lang};
use crate::pages::{lang_in, lang_of, LangQuery};
use crate::AppState;
use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use tilgang_core::identity::cards;
use tilgang_core::identity::login::LoginResult;

#[derive(Template)]
#[template(path = "login_card.html")]
struct CardLoginPage {
    lang: &'static str,
    t: Texts,
    csrf: String,
    error: Option<String>,
}

fn card_page(lang: Lang, error: Option<String>, status: StatusCode) -> Response {
    pre_login_page(status, |csrf| CardLoginPage {
        lang: lang.code(),
        t: Texts(lang),
        csrf,
        error,
    })
}

pub async fn form(Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    card_page(lang_of(&q, &headers), None, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct CardForm {
    code: String,
    csrf: String,
    lang: Option<String>,
}

pub async fn submit(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<CardForm>,
) -> Result<Response, ApiError> {
    let lang = lang_in(form.lang.clone(), &headers);
    if !login_csrf_ok(&headers, &form.csrf) {
        return Ok(csrf_refused(lang));
    }
    let ua = user_agent(&headers);
    let address = peer.ip().to_string();
    let result = cards::card_login(
        &*state.store,
        &*state.clock,
        &state.login,
        &form.code,
        &address,
        ua,
    )
    .await?;
    Ok(match result {
        LoginResult::Success { session, .. } => logged_in("/account", &session.id),
        LoginResult::Refused => card_page(
            lang,
            Some(t(lang, "card.refused")),
            StatusCode::UNAUTHORIZED,
        ),
        LoginResult::Throttled => retry_after_a_minute(card_page(
            lang,
            Some(t(lang, "login.throttled")),
            StatusCode::TOO_MANY_REQUESTS,
        )),
    })
}

fn script(body: &'static str) -> Response {
    crate::pages::script(body, "public, max-age=86400")
}

/// jsQR 1.4.0 (Apache-2.0), vendored from npm with its licence header.
pub async fn jsqr() -> Response {
    script(include_str!("../assets/jsQR.js"))
}

/// The card login page's own script: fragment and camera.
pub async fn card_js() -> Response {
    script(include_str!("../assets/card-login.js"))
}
