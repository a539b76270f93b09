//! Card login: `/login/card` shows a camera view that reads a pupil's QR
//! login card (jsQR, served from `/assets/`, never a CDN) and, without
//! JavaScript too, a form for typing the card's short code. The QR holds
//! `{public_url}/login/card#<code>`: the fragment never reaches a server or
//! a log, and the page's script submits a code it finds there.

use crate::auth::{cookie, csrf_refused, no_store, set_cookie, Texts, LOGIN_CSRF};
use crate::error::ApiError;
use crate::i18n::{t, Lang};
use crate::pages::{lang_of, render, LangQuery};
use crate::AppState;
use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use tilgang_core::identity::cards;
use tilgang_core::identity::login::LoginResult;
use tilgang_core::identity::session::{random_token, COOKIE};

#[derive(Template)]
#[template(path = "login_card.html")]
struct CardLoginPage {
    lang: &'static str,
    t: Texts,
    csrf: String,
    error: Option<String>,
}

fn card_page(lang: Lang, error: Option<String>, status: StatusCode) -> Response {
    let csrf = random_token();
    let page = CardLoginPage {
        lang: lang.code(),
        t: Texts(lang),
        csrf: csrf.clone(),
        error,
    };
    let mut res = (status, render(&page)).into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(LOGIN_CSRF, &csrf, None));
    no_store(&mut res);
    res
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
    let lang = lang_of(
        &LangQuery {
            lang: form.lang.clone(),
        },
        &headers,
    );
    if cookie(&headers, LOGIN_CSRF).is_none_or(|c| c.is_empty() || c != form.csrf) {
        return Ok(csrf_refused(lang));
    }
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
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
        LoginResult::Success { session, .. } => {
            let mut res = Redirect::to("/account").into_response();
            res.headers_mut()
                .append(header::SET_COOKIE, set_cookie(COOKIE, &session.id, None));
            res.headers_mut()
                .append(header::SET_COOKIE, set_cookie(LOGIN_CSRF, "", Some(0)));
            res
        }
        LoginResult::Refused => card_page(
            lang,
            Some(t(lang, "card.refused")),
            StatusCode::UNAUTHORIZED,
        ),
        LoginResult::Throttled => {
            let mut res = card_page(
                lang,
                Some(t(lang, "login.throttled")),
                StatusCode::TOO_MANY_REQUESTS,
            );
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            res
        }
    })
}

fn script(body: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ),
        ],
        body,
    )
        .into_response()
}

/// jsQR 1.4.0 (Apache-2.0), vendored from npm with its licence header.
pub async fn jsqr() -> Response {
    script(include_str!("../assets/jsQR.js"))
}

/// The card login page's own script: fragment and camera.
pub async fn card_js() -> Response {
    script(include_str!("../assets/card-login.js"))
}
