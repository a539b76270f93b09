//! The audit search page for institution admins (`/staff/{number}/audit`):
//! their institution's events, filtered by person, service, action and
//! time, newest first, a page at a time. Every search is itself audited
//! (core does it before reading). Anyone else gets 404, as on the other
//! staff pages.

use crate::auth::{uncached, Texts};
use crate::error::ApiError;
use crate::pages::{lang_in, render};
use crate::staff::{admin_at, enc};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;
use tilgang_core::audit::{actions, search};

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
    number: String,
    name: String,
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

/// `/staff/{number}/audit`: the search form and one page of results.
pub async fn staff_audit(
    State(state): State<Arc<AppState>>,
    Path(number): Path<String>,
    Query(q): Query<AuditQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = lang_in(q.lang.clone(), &headers);
    let (admin, _) = match admin_at(&state, &headers, &number).await? {
        Ok(found) => found,
        Err(res) => return Ok(res),
    };
    let person = nonempty(&q.person);
    let action = nonempty(&q.action).filter(|a| actions::is_known(a));
    let service = nonempty(&q.service);
    let (from, to) = (nonempty(&q.from), nonempty(&q.to));
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
    let page = search::institution_search(&*state.store, &*state.clock, &admin, &query).await?;
    let keep = |k: &str, v: &Option<String>| {
        v.as_ref()
            .map(|v| format!("&{k}={}", enc(v)))
            .unwrap_or_default()
    };
    let next = page.next.map(|n| {
        format!(
            "lang={}{}{}{}{}{}&after={n}",
            lang.code(),
            keep("person", &person),
            keep("service", &service),
            keep("action", &action),
            keep("from", &from),
            keep("to", &to)
        )
    });
    let access = admin.access();
    let view = AuditPage {
        lang: lang.code(),
        t: Texts(lang),
        number: access.number().to_owned(),
        name: access.name().to_owned(),
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
