//! Several roles at the authorization endpoint: which role context a person
//! with several acts in towards a service (`core::oidc::roles`). Asked at
//! most once per service, on a page that works without JavaScript; the
//! choice lives in the database (every replica sees it) and can be changed
//! on `/account/roles`.

use super::authorize::{error_back, error_page, store_pending, Params};
use crate::auth::{signed_in, signed_in_form, Texts};
use crate::error::ApiError;
use crate::i18n::{t, Lang};
use crate::pages::{lang_in, lang_of, render, LangQuery};
use crate::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use tilgang_core::audit::actions;
use tilgang_core::audit::NewEvent;
use tilgang_core::identity::session::SessionRecord;
use tilgang_core::oidc::roles::{self, RoleContext};
use tilgang_core::oidc::{hash_token, Service};

/// The outcome for one authorization request.
pub(super) enum RoleStep {
    /// Go on, narrowing the claims to this context (`None`: no narrowing,
    /// the person has one context or none).
    Use(Option<String>),
    /// Answered already: the choice page, or an error for `prompt=none`.
    Answer(Response),
}

/// The contexts among which the person may act towards `service`. Every
/// context for now: the licence check (sharing issue) narrows this to the
/// institutions whose licence covers the service, and a service that only
/// one of the person's contexts applies to then asks nothing.
fn applicable(_service: &Service, all: Vec<RoleContext>) -> Vec<RoleContext> {
    all
}

fn label(lang: Lang, c: &RoleContext) -> String {
    format!(
        "{} ({}) — {}",
        t(lang, &format!("oidc.role.actor.{}", c.actor)),
        c.roles.join(", "),
        c.institution_name
    )
}

async fn contexts_of(
    state: &AppState,
    person_id: i64,
    service: &Service,
) -> Result<Vec<RoleContext>, ApiError> {
    Ok(match state.store.claims_source(person_id).await? {
        Some(src) => applicable(service, roles::contexts(&src)),
        None => Vec::new(),
    })
}

/// The role context of this request: named by the request (`login_hint`
/// `USER@SELECTOR`, `acr_values` `urn:tilgang:role:SELECTOR`, or one value
/// asked for the `institutions` / `actor_groups` claims), the only one that
/// applies, or remembered; otherwise the person is asked.
pub(super) async fn role_for(
    state: &AppState,
    p: &Params,
    service: &Service,
    session: &SessionRecord,
    claims: Option<&Value>,
    resumed: bool,
    lang: Lang,
) -> Result<RoleStep, ApiError> {
    let all = contexts_of(state, session.person_id, service).await?;
    if all.len() <= 1 {
        return Ok(RoleStep::Use(None));
    }
    let sels = roles::selectors(
        p.get("login_hint").map(String::as_str),
        p.get("acr_values").map(String::as_str),
        claims,
    );
    let picked = roles::select(&all, &sels);
    if !sels.is_empty() && picked.len() == 1 {
        return Ok(RoleStep::Use(picked.first().map(|c| c.key())));
    }
    // The request narrowed the choice without settling it: choose among
    // those; a request matching none leaves every context open.
    let offered: Vec<&RoleContext> = if picked.is_empty() {
        all.iter().collect()
    } else {
        picked
    };
    if let Some(r) = state
        .store
        .role_choice(session.person_id, &service.client_id)
        .await?
    {
        if offered.iter().any(|c| c.key() == r) {
            return Ok(RoleStep::Use(Some(r)));
        }
    }
    let redirect_uri = p.get("redirect_uri").cloned().unwrap_or_default();
    if p.get("prompt")
        .is_some_and(|v| v.split(' ').any(|x| x == "none"))
    {
        return Ok(RoleStep::Answer(error_back(
            state,
            &redirect_uri,
            p,
            "account_selection_required",
            "the person must choose the role to act in",
        )));
    }
    let now = state.clock.now().unix_timestamp();
    let id = match (resumed, p.get("\u{0}id")) {
        (true, Some(id)) => id.clone(),
        _ => store_pending(state, p, service, Some(hex::encode(session.id_hash)), now).await?,
    };
    let page = ChoosePage {
        lang: lang.code(),
        t: Texts(lang),
        csrf: session.csrf.clone(),
        pending: id,
        service: service.name.clone(),
        choices: offered.iter().map(|c| (c.key(), label(lang, c))).collect(),
    };
    let mut res = render(&page);
    super::no_store(&mut res);
    Ok(RoleStep::Answer(res))
}

#[derive(Template)]
#[template(path = "oidc_role.html")]
struct ChoosePage {
    lang: &'static str,
    t: Texts,
    csrf: String,
    pending: String,
    service: String,
    choices: Vec<(String, String)>,
}

#[derive(Deserialize)]
pub struct ChooseForm {
    csrf: String,
    pending: String,
    role: Option<String>,
    lang: Option<String>,
}

fn bad_choice(lang: Lang) -> Response {
    let mut res = (StatusCode::BAD_REQUEST, t(lang, "oidc.role.unknown")).into_response();
    super::no_store(&mut res);
    res
}

/// The choice page's form: remembers the choice and continues the
/// authorization request.
pub async fn choose(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<ChooseForm>,
) -> Result<Response, ApiError> {
    let lang = lang_in(form.lang.clone(), &headers);
    let session = match signed_in_form(&state, &headers, &form.csrf, lang).await {
        Ok(s) => s,
        Err(res) => return Ok(res),
    };
    let now = state.clock.now().unix_timestamp();
    // A pending id is a random token: nothing else can be found by it, so
    // it is safe in the redirect below.
    let Some(pending) = state.store.pending(&hash_token(&form.pending), now).await? else {
        return Ok(error_page(lang, "oidc.error.expired"));
    };
    let Some(service) = state.store.service(&pending.client_id).await? else {
        return Ok(error_page(lang, "oidc.error.unknown_client"));
    };
    let all = contexts_of(&state, session.person_id, &service).await?;
    let Some(role) = form.role.filter(|r| all.iter().any(|c| c.key() == *r)) else {
        return Ok(bad_choice(lang));
    };
    remember(&state, &session, &service.client_id, Some(&role)).await?;
    let next = format!(
        "/oidc/authorize?pending={}",
        url::form_urlencoded::byte_serialize(form.pending.as_bytes()).collect::<String>()
    );
    Ok(Redirect::to(&next).into_response())
}

async fn remember(
    state: &AppState,
    session: &SessionRecord,
    client_id: &str,
    role: Option<&str>,
) -> Result<(), ApiError> {
    let action = if role.is_some() {
        actions::OIDC_ROLE_CHOSEN
    } else {
        actions::OIDC_ROLE_FORGOTTEN
    };
    let event = NewEvent::new(format!("person:{}", session.person_id), action)
        .subjects(vec![session.person_id])
        .details(json!({"client_id": client_id, "role": role}));
    state
        .store
        .set_role_choice(session.person_id, client_id, role, state.clock.now(), event)
        .await?;
    Ok(())
}

#[derive(Template)]
#[template(path = "account_roles.html")]
struct AccountRolesPage {
    lang: &'static str,
    t: Texts,
    csrf: String,
    /// Per service: client id, name, and its options.
    services: Vec<(String, String, Vec<RoleOption>)>,
}

/// A role context on the account page: key, label, whether it is chosen.
type RoleOption = (String, String, bool);

/// The person's remembered roles, one form per service to change or
/// forget the choice.
pub async fn account_roles(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let session = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(res) => return Ok(res),
    };
    let lang = lang_of(&q, &headers);
    let all = match state.store.claims_source(session.person_id).await? {
        Some(src) => roles::contexts(&src),
        None => Vec::new(),
    };
    let services = state
        .store
        .role_choices(session.person_id)
        .await?
        .into_iter()
        .map(|(client_id, name, chosen)| {
            let options = all
                .iter()
                .map(|c| (c.key(), label(lang, c), c.key() == chosen))
                .collect();
            (client_id, name, options)
        })
        .collect();
    let page = AccountRolesPage {
        lang: lang.code(),
        t: Texts(lang),
        csrf: session.csrf.clone(),
        services,
    };
    Ok(crate::auth::private_page(StatusCode::OK, &page))
}

#[derive(Deserialize)]
pub struct AccountRoleForm {
    csrf: String,
    client_id: String,
    /// Empty: forget the choice (the service asks again next time).
    role: Option<String>,
    lang: Option<String>,
}

pub async fn account_roles_submit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<AccountRoleForm>,
) -> Result<Response, ApiError> {
    let lang = lang_in(form.lang.clone(), &headers);
    let session = match signed_in_form(&state, &headers, &form.csrf, lang).await {
        Ok(s) => s,
        Err(res) => return Ok(res),
    };
    let Some(service) = state.store.service(&form.client_id).await? else {
        return Ok(bad_choice(lang));
    };
    let role = form.role.filter(|r| !r.is_empty());
    if let Some(r) = &role {
        let all = contexts_of(&state, session.person_id, &service).await?;
        if !all.iter().any(|c| c.key() == *r) {
            return Ok(bad_choice(lang));
        }
    }
    remember(&state, &session, &service.client_id, role.as_deref()).await?;
    Ok(Redirect::to(&format!("/account/roles?lang={}", lang.code())).into_response())
}
