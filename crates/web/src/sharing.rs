//! The sharing policy on the OIDC paths: the fields a login releases (the
//! claims follow them), and the page a person gets when the service is
//! blocked at their institution or needs a licence they lack. Kept here so
//! the OIDC handlers call one function each.

use crate::auth::Texts;
use crate::i18n::{t, Lang};
use crate::pages::render;
use crate::AppState;
use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tilgang_core::oidc::claims::ClaimsSource;
use tilgang_core::oidc::Service;
use tilgang_core::sharing::access::{self, LoginView, Refusal};
use tilgang_core::sharing::FieldSet;
use tilgang_core::Result;

#[derive(Template)]
#[template(path = "sharing_denied.html")]
struct Denied {
    lang: &'static str,
    t: Texts,
    title_key: &'static str,
    message: String,
    ask: String,
}

async fn view(state: &AppState, service: &Service, src: &ClaimsSource) -> Result<LoginView> {
    let grade = state
        .store
        .account(&src.user_id)
        .await?
        .and_then(|a| a.grade_level);
    let today = state.clock.now().date();
    access::login_view(
        &*state.store,
        &service.client_id,
        src,
        grade.as_deref(),
        today,
    )
    .await
}

/// The fields the policy releases of this person to this service now;
/// `None` when the service is blocked at all their institutions.
pub(crate) async fn released(
    state: &AppState,
    service: &Service,
    src: &ClaimsSource,
) -> Result<Option<FieldSet>> {
    let v = view(state, service, src).await?;
    Ok((!v.blocked()).then_some(v.released))
}

/// `Some(page)` when the person may not sign in to the service: blocked
/// at all their institutions, or without a licence the service needs.
pub(crate) async fn gate(
    state: &AppState,
    service: &Service,
    person_id: i64,
    lang: Lang,
) -> Result<Option<Response>> {
    let Some(src) = state.store.claims_source(person_id).await? else {
        return Ok(None);
    };
    let v = view(state, service, &src).await?;
    let today = state.clock.now().date();
    let Some(refusal) = access::admit(&*state.store, &service.client_id, &src, &v, today).await?
    else {
        return Ok(None);
    };
    let (title_key, body_key, names) = match refusal {
        Refusal::Blocked(n) => (
            "sharing.denied.blocked.title",
            "sharing.denied.blocked.body",
            n,
        ),
        Refusal::NoLicence(n) => (
            "sharing.denied.licence.title",
            "sharing.denied.licence.body",
            n,
        ),
    };
    let names = names.join(", ");
    let page = Denied {
        lang: lang.code(),
        t: Texts(lang),
        title_key,
        message: t(lang, body_key)
            .replace("{service}", &service.name)
            .replace("{institutions}", &names),
        ask: t(lang, "sharing.denied.ask").replace("{institutions}", &names),
    };
    let mut res = (StatusCode::FORBIDDEN, render(&page)).into_response();
    crate::oidc::no_store(&mut res);
    Ok(Some(res))
}
