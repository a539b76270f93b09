//! The audit search page for institution admins (`/staff/{number}/audit`)
//! and municipality admins (`/municipality/{code}/audit`): their
//! institutions' events, filtered by person, service, action, time and (for
//! a municipality) institution, newest first, a page at a time. Every
//! search is itself audited (core does it before reading). Anyone else
//! gets 404, as on the other staff pages.

use crate::auth::{uncached, Texts};
use crate::error::ApiError;
use crate::municipality::municipality_at;
use crate::pages::{lang_in, render};
use crate::staff::{admin_at, enc, nowhere};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;
use tilgang_core::audit::{actions, search};
use tilgang_core::identity::rights::{InstitutionAdmin, MunicipalityAdmin};
use tilgang_core::Error;

const PAGE: usize = 50;

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    lang: Option<String>,
    /// A user id (login name).
    person: Option<String>,
    service: Option<String>,
    action: Option<String>,
    /// YYYY-MM-DD, inclusive, UTC.
    from: Option<String>,
    /// YYYY-MM-DD, inclusive, UTC.
    to: Option<String>,
    after: Option<i64>,
    /// An institution number, to narrow a municipality's search.
    institution: Option<String>,
}

struct Row {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    subjects: String,
    details: String,
}

#[derive(Template)]
#[template(path = "staff_audit.html")]
struct AuditPage {
    lang: &'static str,
    t: Texts,
    /// This page's path (the form's action).
    base: String,
    /// The page to go back to, and its name.
    back: String,
    name: String,
    /// A municipality's institutions to narrow by: (number, name,
    /// selected); empty on an institution's page.
    institutions: Vec<(String, String, bool)>,
    person: String,
    service: String,
    from: String,
    to: String,
    /// (action, description, selected)
    actions: Vec<(String, String, bool)>,
    rows: Vec<Row>,
    /// The query string of the next page, if there is one.
    next: Option<String>,
    unknown_person: bool,
}

fn day_us(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), &fmt)
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp() * 1_000_000)
}

fn at_text(at_us: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at_us.div_euclid(1_000_000))
        .map(|t| {
            format!(
                "{} {:02}:{:02}:{:02} UTC",
                t.date(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_default()
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Whose events a search page shows.
enum Searcher {
    Institution(InstitutionAdmin),
    Municipality(MunicipalityAdmin),
}

/// `/staff/{number}/audit`: the search form and one page of results.
pub async fn staff_audit(
    State(state): State<Arc<AppState>>,
    Path(number): Path<String>,
    Query(q): Query<AuditQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match admin_at(&state, &headers, &number).await? {
        Ok((admin, _)) => search_page(&state, q, headers, Searcher::Institution(admin)).await,
        Err(res) => Ok(res),
    }
}

/// `/municipality/{code}/audit`: the same search over every institution
/// of the municipality, or one of them.
pub async fn municipality_audit(
    State(state): State<Arc<AppState>>,
    Path(code): Path<String>,
    Query(q): Query<AuditQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match municipality_at(&state, &headers, &code).await? {
        Ok((admin, _)) => search_page(&state, q, headers, Searcher::Municipality(admin)).await,
        Err(res) => Ok(res),
    }
}

async fn search_page(
    state: &AppState,
    q: AuditQuery,
    headers: HeaderMap,
    searcher: Searcher,
) -> Result<Response, ApiError> {
    let lang = lang_in(q.lang.clone(), &headers);
    let person = nonempty(&q.person);
    let action = nonempty(&q.action).filter(|a| actions::is_known(a));
    let service = nonempty(&q.service);
    let (from, to) = (nonempty(&q.from), nonempty(&q.to));
    let institution = nonempty(&q.institution);
    // A user id that names no one matches nothing; it is still searched
    // for (and audited) as an impossible person id, so the answer does not
    // tell whether the name exists elsewhere.
    let (person_id, unknown_person) = match &person {
        Some(u) => match state.store.account(u).await? {
            Some(a) => (Some(a.person_id), false),
            None => (Some(-1), true),
        },
        None => (None, false),
    };
    let query = search::Query {
        person: person_id,
        service: service.clone(),
        action: action.clone(),
        from_us: from.as_deref().and_then(day_us),
        // The whole "to" day is included.
        to_us: to
            .as_deref()
            .and_then(day_us)
            .map(|d| d + 86_400 * 1_000_000),
        institution: None,
        after: q.after,
        limit: PAGE,
    };
    let (store, clock) = (&*state.store, &*state.clock);
    let (page, base, back, name, institutions) = match &searcher {
        Searcher::Institution(admin) => {
            let a = admin.access();
            (
                search::institution_search(store, clock, admin, &query).await?,
                format!("/staff/{}/audit", enc(a.number())),
                format!("/staff/{}", enc(a.number())),
                a.name().to_owned(),
                Vec::new(),
            )
        }
        Searcher::Municipality(m) => {
            let page =
                match search::municipality_search(store, clock, m, institution.as_deref(), &query)
                    .await
                {
                    Ok(p) => p,
                    Err(Error::UnknownInstitution(_)) => return Ok(nowhere(headers).await),
                    Err(e) => return Err(e.into()),
                };
            (
                page,
                format!("/municipality/{}/audit", enc(m.code())),
                format!("/municipality/{}", enc(m.code())),
                Texts(lang)
                    .get("municipality.title_of")
                    .replace("{code}", m.code()),
                m.institutions()
                    .iter()
                    .map(|a| {
                        (
                            a.number().to_owned(),
                            a.name().to_owned(),
                            Some(a.number()) == institution.as_deref(),
                        )
                    })
                    .collect(),
            )
        }
    };
    let keep = |k: &str, v: &Option<String>| {
        v.as_ref()
            .map(|v| format!("&{k}={}", enc(v)))
            .unwrap_or_default()
    };
    let next = page.next.map(|n| {
        format!(
            "lang={}{}{}{}{}{}{}&after={n}",
            lang.code(),
            keep("person", &person),
            keep("service", &service),
            keep("action", &action),
            keep("from", &from),
            keep("to", &to),
            keep("institution", &institution)
        )
    });
    let view = AuditPage {
        lang: lang.code(),
        t: Texts(lang),
        base,
        back,
        name,
        institutions,
        actions: actions::ALL
            .iter()
            .map(|(a, d)| {
                (
                    (*a).to_owned(),
                    (*d).to_owned(),
                    Some(*a) == action.as_deref(),
                )
            })
            .collect(),
        rows: page
            .events
            .into_iter()
            .map(|e| Row {
                seq: e.seq,
                at: at_text(e.at_us),
                actor: e.actor,
                action: e.action,
                subjects: e.subjects,
                details: e.details,
            })
            .collect(),
        next,
        unknown_person,
        person: person.unwrap_or_default(),
        service: service.unwrap_or_default(),
        from: from.unwrap_or_default(),
        to: to.unwrap_or_default(),
    };
    Ok(uncached(render(&view)))
}
