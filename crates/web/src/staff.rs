//! The staff pages: an employee holding `pupil_reset` at an institution
//! lists its pupils (by class), issues activation codes, unlocks, and
//! prints or revokes QR login cards; institution admins also grant and
//! revoke the right and unlock employees. Every handler asks core for the
//! capability at the exact institution in the URL; without it, or for a
//! person who is not there, the answer is 404.

use crate::auth::{csrf_refusal, off_the_runtime, signed_in, uncached, when, Texts};
use crate::error::ApiError;
use crate::pages::{lang_in, lang_of, not_found, render, LangQuery};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use std::sync::Arc;
use tilgang_core::identity::cards;
use tilgang_core::identity::rights::{
    self, AccountState, GrantOutcome, InstitutionAdmin, StaffAccess,
};
use tilgang_core::identity::session::SessionRecord;
use tilgang_core::store::staff::PupilRow;

/// Percent-encodes a query or path value (ids come from source systems).
pub(crate) fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn full_name(given: &str, family: &str) -> String {
    format!("{given} {family}")
}

pub(crate) async fn nowhere(headers: HeaderMap) -> Response {
    uncached(not_found(Query(LangQuery { lang: None }), headers).await)
}

/// The session and the person's access at institution `number`; `Err`
/// carries the answer to give instead (to the login page, or 404).
async fn access(
    state: &AppState,
    headers: &HeaderMap,
    number: &str,
) -> Result<Result<(SessionRecord, StaffAccess), Response>, ApiError> {
    let session = match signed_in(state, headers).await {
        Ok(s) => s,
        Err(res) => return Ok(Err(res)),
    };
    match rights::access_at(&*state.store, session.person_id, number).await? {
        Some(a) => Ok(Ok((session, a))),
        None => Ok(Err(nowhere(headers.clone()).await)),
    }
}

/// The session and the admin capability at institution `number`; `Err`
/// carries the answer to give instead (the login page, or 404).
pub(crate) async fn admin_at(
    state: &AppState,
    headers: &HeaderMap,
    number: &str,
) -> Result<Result<(InstitutionAdmin, SessionRecord), Response>, ApiError> {
    Ok(match access(state, headers, number).await? {
        Ok((session, a)) => match a.admin() {
            Some(admin) => Ok((admin, session)),
            None => Err(nowhere(headers.clone()).await),
        },
        Err(res) => Err(res),
    })
}

#[derive(Template)]
#[template(path = "staff_index.html")]
struct IndexPage {
    lang: &'static str,
    t: Texts,
    /// (number, name, pending data access requests for an admin)
    institutions: Vec<(String, String, usize)>,
    /// (code, title, pending data access requests) where the person is a
    /// municipality admin.
    municipalities: Vec<(String, String, usize)>,
}

/// `/staff`: the institutions where the person holds a right.
pub async fn index(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = lang_of(&q, &headers);
    let session = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(res) => return Ok(res),
    };
    let standing = rights::standing(&*state.store, session.person_id).await?;
    if standing.is_empty() {
        return Ok(nowhere(headers).await);
    }
    let mut institutions = Vec::with_capacity(standing.len());
    for a in &standing {
        let pending = match a.admin() {
            Some(admin) => crate::sharing_admin::pending_count(&state, &admin).await?,
            None => 0,
        };
        institutions.push((a.number().to_owned(), a.name().to_owned(), pending));
    }
    let mut municipalities = Vec::new();
    for m in rights::municipalities(&*state.store, session.person_id).await? {
        let pending = crate::municipality::pending_count(&state, &m).await?;
        let title = Texts(lang)
            .get("municipality.title_of")
            .replace("{code}", m.code());
        municipalities.push((m.code().to_owned(), title, pending));
    }
    let page = IndexPage {
        lang: lang.code(),
        t: Texts(lang),
        institutions,
        municipalities,
    };
    Ok(uncached(render(&page)))
}

struct PupilView {
    user_id: String,
    name: String,
    class: String,
    state: String,
    locked: bool,
    has_card: bool,
}

struct EmployeeView {
    user_id: String,
    name: String,
    roles: String,
    /// The right comes from a roster role (cannot be revoked here).
    by_role: bool,
    granted: bool,
    locked: bool,
}

#[derive(Template)]
#[template(path = "staff.html")]
struct StaffPage {
    lang: &'static str,
    t: Texts,
    csrf: String,
    number: String,
    name: String,
    /// (id, name, selected)
    classes: Vec<(String, String, bool)>,
    class: String,
    class_name: String,
    pupils: Vec<PupilView>,
    admin: bool,
    /// Data access requests waiting for the admin (the badge).
    sharing_pending: usize,
    employees: Vec<EmployeeView>,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct StaffQuery {
    lang: Option<String>,
    class: Option<String>,
    done: Option<String>,
}

/// The outcomes a redirect may report, each with its text.
const DONE: &[&str] = &[
    "unlocked",
    "card_revoked",
    "no_card",
    "granted",
    "right_revoked",
    "no_grant",
    "no_reason",
];

/// `/staff/{number}`: the institution's pupils, filterable by class.
pub async fn institution(
    State(state): State<Arc<AppState>>,
    Path(number): Path<String>,
    Query(q): Query<StaffQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = lang_in(q.lang.clone(), &headers);
    let (session, access) = match access(&state, &headers, &number).await? {
        Ok(v) => v,
        Err(res) => return Ok(res),
    };
    let class = q.class.filter(|c| !c.is_empty());
    let cap = access.pupil_reset();
    let (classes, pupils) =
        rights::pupils(&*state.store, &*state.clock, &cap, class.as_deref()).await?;
    let now = state.clock.now().unix_timestamp();
    let t = Texts(lang);
    let pupils = pupils
        .into_iter()
        .map(|p| {
            let st = rights::state_of(p.has_password, p.locked_until, now);
            PupilView {
                name: full_name(&p.given_name, &p.family_name),
                class: p.class.unwrap_or_default(),
                state: t.get(match st {
                    AccountState::NotActivated => "staff.state.not_activated",
                    AccountState::Active => "staff.state.active",
                    AccountState::Locked => "staff.state.locked",
                }),
                locked: st == AccountState::Locked,
                has_card: p.has_card,
                user_id: p.user_id,
            }
        })
        .collect();
    let sharing_pending = match access.admin() {
        Some(admin) => crate::sharing_admin::pending_count(&state, &admin).await?,
        None => 0,
    };
    let employees = match access.admin() {
        Some(admin) => rights::employees(&*state.store, &admin)
            .await?
            .into_iter()
            .map(|e| EmployeeView {
                name: full_name(&e.given_name, &e.family_name),
                roles: e
                    .roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                by_role: e.roles.iter().any(|r| rights::RESET_ROLES.contains(r)),
                granted: e.granted.iter().any(|g| g == rights::PUPIL_RESET),
                locked: e.locked_until.is_some_and(|u| u > now),
                user_id: e.user_id,
            })
            .collect(),
        None => Vec::new(),
    };
    let class_name = classes
        .iter()
        .find(|(id, _)| Some(id) == class.as_ref())
        .map(|(_, n)| n.clone())
        .unwrap_or_default();
    let notice = q
        .done
        .filter(|d| DONE.contains(&d.as_str()))
        .map(|d| t.get(&format!("staff.done.{d}")));
    let page = StaffPage {
        lang: lang.code(),
        csrf: session.csrf.clone(),
        classes: classes
            .into_iter()
            .map(|(id, n)| {
                let sel = Some(&id) == class.as_ref();
                (id, n, sel)
            })
            .collect(),
        class: class.unwrap_or_default(),
        class_name,
        pupils,
        admin: access.is_admin(),
        sharing_pending,
        employees,
        notice,
        number: access.number().to_owned(),
        name: access.name().to_owned(),
        t,
    };
    Ok(uncached(render(&page)))
}

#[derive(Deserialize)]
pub struct StaffForm {
    csrf: String,
    user: Option<String>,
    class: Option<String>,
    reason: Option<String>,
    lang: Option<String>,
}

/// Back to the institution's page, keeping the class filter.
fn back(number: &str, class: Option<&str>, done: &str) -> Response {
    let class = class
        .filter(|c| !c.is_empty())
        .map(|c| format!("&class={}", enc(c)))
        .unwrap_or_default();
    Redirect::to(&format!("/staff/{}?done={done}{class}", enc(number))).into_response()
}

/// Checks the session, the CSRF token and the access at `number`.
async fn acting(
    state: &AppState,
    headers: &HeaderMap,
    number: &str,
    form: &StaffForm,
) -> Result<Result<StaffAccess, Response>, ApiError> {
    let (session, access) = match access(state, headers, number).await? {
        Ok(v) => v,
        Err(res) => return Ok(Err(res)),
    };
    if let Some(refused) = csrf_refusal(&session, &form.csrf, lang_in(form.lang.clone(), headers)) {
        return Ok(Err(refused));
    }
    Ok(Ok(access))
}

#[derive(Template)]
#[template(path = "staff_slip.html")]
struct SlipPage {
    lang: &'static str,
    t: Texts,
    number: String,
    institution: String,
    name: String,
    user_id: String,
    code: String,
    activate_url: String,
    expires: String,
}

/// Issues an activation code for a pupil and shows it once, on a slip.
pub async fn activation(
    State(state): State<Arc<AppState>>,
    Path(number): Path<String>,
    headers: HeaderMap,
    Form(form): Form<StaffForm>,
) -> Result<Response, ApiError> {
    let access = match acting(&state, &headers, &number, &form).await? {
        Ok(a) => a,
        Err(res) => return Ok(res),
    };
    let user = form.user.clone().unwrap_or_default();
    let cap = access.pupil_reset();
    let issued =
        rights::issue_pupil_activation(&*state.store, &*state.clock, &state.login, &cap, &user)
            .await?;
    let Some((pupil, code)) = issued else {
        return Ok(nowhere(headers).await);
    };
    let lang = lang_in(form.lang, &headers);
    let expires = state.clock.now().unix_timestamp() + state.login.activation_lifetime_s;
    let page = SlipPage {
        lang: lang.code(),
        t: Texts(lang),
        number: access.number().to_owned(),
        institution: access.name().to_owned(),
        name: full_name(&pupil.given_name, &pupil.family_name),
        user_id: pupil.user_id,
        code,
        activate_url: format!("{}/activate", state.public_url),
        expires: when(expires),
    };
    Ok(uncached(render(&page)))
}

/// Unlocks a pupil (any employee with the right) or, for an institution
/// admin, any pupil or employee of the institution.
pub async fn unlock(
    State(state): State<Arc<AppState>>,
    Path(number): Path<String>,
    headers: HeaderMap,
    Form(form): Form<StaffForm>,
) -> Result<Response, ApiError> {
    let access = match acting(&state, &headers, &number, &form).await? {
        Ok(a) => a,
        Err(res) => return Ok(res),
    };
    let user = form.user.clone().unwrap_or_default();
    let done = match access.admin() {
        Some(admin) => rights::unlock_member(&*state.store, &*state.clock, &admin, &user).await?,
        None => {
            rights::unlock_pupil(&*state.store, &*state.clock, &access.pupil_reset(), &user).await?
        }
    };
    if !done {
        return Ok(nowhere(headers).await);
    }
    Ok(back(&number, form.class.as_deref(), "unlocked"))
}

/// Revokes a pupil's login card.
pub async fn revoke_card(
    State(state): State<Arc<AppState>>,
    Path(number): Path<String>,
    headers: HeaderMap,
    Form(form): Form<StaffForm>,
) -> Result<Response, ApiError> {
    let access = match acting(&state, &headers, &number, &form).await? {
        Ok(a) => a,
        Err(res) => return Ok(res),
    };
    let user = form.user.clone().unwrap_or_default();
    match cards::revoke(&*state.store, &*state.clock, &access.pupil_reset(), &user).await? {
        None => Ok(nowhere(headers).await),
        Some(true) => Ok(back(&number, form.class.as_deref(), "card_revoked")),
        Some(false) => Ok(back(&number, form.class.as_deref(), "no_card")),
    }
}

/// An institution admin grants or revokes `pupil_reset` for an employee.
async fn grant_or_revoke(
    state: Arc<AppState>,
    number: String,
    headers: HeaderMap,
    form: StaffForm,
    grant: bool,
) -> Result<Response, ApiError> {
    let access = match acting(&state, &headers, &number, &form).await? {
        Ok(a) => a,
        Err(res) => return Ok(res),
    };
    let Some(admin) = access.admin() else {
        return Ok(nowhere(headers).await);
    };
    let user = form.user.clone().unwrap_or_default();
    let reason = form.reason.clone().unwrap_or_default();
    let (store, clock) = (&*state.store, &*state.clock);
    let outcome = if grant {
        rights::grant_reset(store, clock, &admin, &user, &reason).await?
    } else {
        rights::revoke_reset(store, clock, &admin, &user, &reason).await?
    };
    let done = match (outcome, grant) {
        (GrantOutcome::NotFound, _) => return Ok(nowhere(headers).await),
        (GrantOutcome::NoReason, _) => "no_reason",
        (GrantOutcome::Unchanged, _) => "no_grant",
        (GrantOutcome::Done, true) => "granted",
        (GrantOutcome::Done, false) => "right_revoked",
    };
    Ok(back(&number, None, done))
}

pub async fn grant(
    State(state): State<Arc<AppState>>,
    Path(number): Path<String>,
    headers: HeaderMap,
    Form(form): Form<StaffForm>,
) -> Result<Response, ApiError> {
    grant_or_revoke(state, number, headers, form, true).await
}

pub async fn revoke_right(
    State(state): State<Arc<AppState>>,
    Path(number): Path<String>,
    headers: HeaderMap,
    Form(form): Form<StaffForm>,
) -> Result<Response, ApiError> {
    grant_or_revoke(state, number, headers, form, false).await
}

#[derive(Deserialize)]
pub struct CardsQuery {
    lang: Option<String>,
    class: Option<String>,
    user: Option<String>,
}

#[derive(Template)]
#[template(path = "staff_cards_confirm.html")]
struct ConfirmPage {
    lang: &'static str,
    t: Texts,
    csrf: String,
    number: String,
    class: String,
    user: String,
    /// What will be printed: the class's name or the pupil's.
    what: String,
    count: usize,
    reissue: usize,
}

/// The pupils a card print covers: one pupil, or a whole class.
async fn selection(
    state: &AppState,
    access: &StaffAccess,
    class: Option<&str>,
    user: Option<&str>,
) -> Result<Option<(String, Vec<PupilRow>)>, ApiError> {
    let cap = access.pupil_reset();
    if let Some(u) = user.filter(|u| !u.is_empty()) {
        return Ok(rights::pupil(&*state.store, &cap, u)
            .await?
            .map(|p| (full_name(&p.given_name, &p.family_name), vec![p])));
    }
    let Some(c) = class.filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    let (classes, pupils) = rights::pupils(&*state.store, &*state.clock, &cap, Some(c)).await?;
    Ok(classes
        .into_iter()
        .find(|(id, _)| id == c)
        .map(|(_, name)| (name, pupils)))
}

/// `GET /staff/{number}/cards?class=…` (or `?user=…`): what printing will
/// do, with the button that does it (printing re-issues the cards).
pub async fn cards_confirm(
    State(state): State<Arc<AppState>>,
    Path(number): Path<String>,
    Query(q): Query<CardsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = lang_in(q.lang.clone(), &headers);
    let (session, access) = match access(&state, &headers, &number).await? {
        Ok(v) => v,
        Err(res) => return Ok(res),
    };
    let Some((what, pupils)) =
        selection(&state, &access, q.class.as_deref(), q.user.as_deref()).await?
    else {
        return Ok(nowhere(headers).await);
    };
    let page = ConfirmPage {
        lang: lang.code(),
        t: Texts(lang),
        csrf: session.csrf.clone(),
        number: access.number().to_owned(),
        class: q.class.unwrap_or_default(),
        user: q.user.unwrap_or_default(),
        what,
        count: pupils.len(),
        reissue: pupils.iter().filter(|p| p.has_card).count(),
    };
    Ok(uncached(render(&page)))
}

struct CardView {
    name: String,
    class: String,
    user_id: String,
    code: String,
    svg: String,
}

#[derive(Template)]
#[template(path = "staff_cards.html")]
struct CardsPage {
    lang: &'static str,
    t: Texts,
    number: String,
    institution: String,
    login_url: String,
    cards: Vec<CardView>,
}

/// The QR code of a card's login address, as inline SVG.
fn qr_svg(url: &str) -> Result<String, ApiError> {
    crate::pages::qr_svg(url, 180)
        .map_err(|e| ApiError(tilgang_core::Error::store(format!("QR code: {e}"))))
}

/// `POST /staff/{number}/cards`: issues new cards for the selection and
/// shows them, once, ready to print. The old cards stop working.
pub async fn cards_print(
    State(state): State<Arc<AppState>>,
    Path(number): Path<String>,
    headers: HeaderMap,
    Form(form): Form<StaffForm>,
) -> Result<Response, ApiError> {
    let access = match acting(&state, &headers, &number, &form).await? {
        Ok(a) => a,
        Err(res) => return Ok(res),
    };
    let Some((_, pupils)) =
        selection(&state, &access, form.class.as_deref(), form.user.as_deref()).await?
    else {
        return Ok(nowhere(headers).await);
    };
    let cap = access.pupil_reset();
    let issued = cards::issue(&*state.store, &*state.clock, &cap, pupils).await?;
    // Rendering a class's QR codes is CPU work: off the async workers.
    let st = state.clone();
    let cards = off_the_runtime(&state, async move {
        issued
            .into_iter()
            .map(|c| {
                let url = format!("{}/login/card#{}", st.public_url, c.code);
                Ok(CardView {
                    svg: qr_svg(&url).map_err(|e| e.0)?,
                    name: full_name(&c.pupil.given_name, &c.pupil.family_name),
                    class: c.pupil.class.clone().unwrap_or_default(),
                    user_id: c.pupil.user_id.clone(),
                    code: c.code,
                })
            })
            .collect::<tilgang_core::Result<Vec<_>>>()
    })
    .await?;
    let lang = lang_in(form.lang, &headers);
    let page = CardsPage {
        lang: lang.code(),
        t: Texts(lang),
        number: access.number().to_owned(),
        institution: access.name().to_owned(),
        login_url: format!("{}/login/card", state.public_url),
        cards,
    };
    Ok(uncached(render(&page)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(enc("1A"), "1A");
        assert_eq!(enc("1 A&b=ø"), "1%20A%26b%3D%C3%B8");
    }

    #[test]
    fn a_card_qr_is_inline_svg() {
        let svg = qr_svg("https://login.example.dk/login/card#K7QM-4TXP-9R2D")
            .map_err(|e| e.0.to_string());
        assert!(
            svg.as_deref().is_ok_and(|s| s.starts_with("<svg")),
            "{svg:?}"
        );
    }
}
