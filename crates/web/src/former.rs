//! The "former persons" page for institution admins
//! (`/staff/{number}/former`): persons the roster no longer delivers, until
//! they are archived (then only operators see them, with the CLI). Core
//! audits every page shown; anyone but an admin there gets 404.

use crate::auth::{uncached, Texts};
use crate::error::ApiError;
use crate::pages::{lang_in, render};
use crate::staff::admin_at;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;
use tilgang_core::lifecycle::former;

#[derive(Deserialize, Default)]
pub struct FormerQuery {
    lang: Option<String>,
    /// From 0.
    page: Option<usize>,
}

struct Row {
    user_id: String,
    name: String,
    actors: String,
    inactive_since: String,
    ended_on: String,
    closed: bool,
}

#[derive(Template)]
#[template(path = "staff_former.html")]
struct FormerPage {
    lang: &'static str,
    t: Texts,
    number: String,
    name: String,
    rows: Vec<Row>,
    prev: Option<usize>,
    next: Option<usize>,
}

/// `/staff/{number}/former`: one page of the institution's former persons.
pub async fn page(
    State(state): State<Arc<AppState>>,
    Path(number): Path<String>,
    Query(q): Query<FormerQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = lang_in(q.lang.clone(), &headers);
    let (admin, _) = match admin_at(&state, &headers, &number).await? {
        Ok(found) => found,
        Err(res) => return Ok(res),
    };
    let n = q.page.unwrap_or(0);
    let (rows, more) = former::former(&*state.store, &*state.clock, &admin, n).await?;
    let day = |d: Option<time::Date>| d.map(|d| d.to_string()).unwrap_or_default();
    let access = admin.access();
    let view = FormerPage {
        lang: lang.code(),
        t: Texts(lang),
        number: access.number().to_owned(),
        name: access.name().to_owned(),
        rows: rows
            .into_iter()
            .map(|r| Row {
                name: format!("{} {}", r.given_name, r.family_name),
                user_id: r.user_id,
                actors: r.actors.join(", "),
                inactive_since: day(r.inactive_since),
                ended_on: day(r.ended_on),
                closed: r.closed,
            })
            .collect(),
        prev: n.checked_sub(1),
        next: more.then_some(n + 1),
    };
    Ok(uncached(render(&view)))
}
