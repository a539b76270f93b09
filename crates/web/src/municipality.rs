//! The municipality admin's page (`/municipality/{code}`): the pending data
//! access requests across the municipality's institutions, one row per
//! service, each approved or rejected for all of them at once through
//! `core::sharing::agreement` with `Decider::Municipality` (every
//! institution's decision its own audit event and history row). Anyone
//! but a municipality admin of that municipality gets 404.

use crate::auth::{csrf_refusal, signed_in, uncached, Texts};
use crate::error::ApiError;
use crate::pages::{lang_in, render};
use crate::staff::{enc, nowhere};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use tilgang_core::identity::rights::{self, MunicipalityAdmin};
use tilgang_core::identity::session::SessionRecord;
use tilgang_core::sharing::agreement::{self, Decider, RequestRecord};

/// The session and the municipality admin capability for `code`; `Err`
/// carries the answer to give instead (the login page, or 404).
pub(crate) async fn municipality_at(
    state: &AppState,
    headers: &HeaderMap,
    code: &str,
) -> Result<Result<(MunicipalityAdmin, SessionRecord), Response>, ApiError> {
    let session = match signed_in(state, headers).await {
        Ok(s) => s,
        Err(res) => return Ok(Err(res)),
    };
    Ok(
        match rights::municipality_admin(&*state.store, session.person_id, code).await? {
            Some(m) => Ok((m, session)),
            None => Err(nowhere(headers.clone()).await),
        },
    )
}

/// The pending requests of the municipality, by service (client id).
async fn pending_by_service(
    state: &AppState,
    admin: &MunicipalityAdmin,
) -> Result<BTreeMap<String, Vec<RequestRecord>>, ApiError> {
    let mut out: BTreeMap<String, Vec<RequestRecord>> = BTreeMap::new();
    let who = Decider::Municipality(admin);
    for r in agreement::pending_in_municipality(&*state.store, &who, admin.code(), None).await? {
        out.entry(r.client_id.clone()).or_default().push(r);
    }
    Ok(out)
}

/// The number of pending requests in the municipality (the badge).
pub(crate) async fn pending_count(
    state: &AppState,
    admin: &MunicipalityAdmin,
) -> Result<usize, ApiError> {
    Ok(pending_by_service(state, admin)
        .await?
        .values()
        .map(Vec::len)
        .sum())
}

/// One service's pending requests across the municipality.
struct ServiceView {
    client_id: String,
    name: String,
    provider: String,
    /// The packages asked, distinct, in order.
    packages: String,
    /// (number, name) of the institutions waiting.
    institutions: Vec<(String, String)>,
    /// The request ids shown: a decision covers these and no later one.
    requests: String,
}

#[derive(Template)]
#[template(path = "municipality.html")]
struct MunicipalityPage {
    lang: &'static str,
    t: Texts,
    csrf: String,
    code: String,
    title: String,
    /// (number, name)
    institutions: Vec<(String, String)>,
    pending: Vec<ServiceView>,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct PageQuery {
    lang: Option<String>,
    done: Option<String>,
    /// How many institutions a decision reached.
    n: Option<usize>,
}

/// The outcomes a redirect may report, each with its text.
const DONE: &[&str] = &["approved", "rejected", "no_reason", "none"];

/// `/municipality/{code}`: pending requests by service, and the
/// municipality's institutions.
pub async fn page(
    State(state): State<Arc<AppState>>,
    Path(code): Path<String>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = lang_in(q.lang.clone(), &headers);
    let (admin, session) = match municipality_at(&state, &headers, &code).await? {
        Ok(v) => v,
        Err(res) => return Ok(res),
    };
    let t = Texts(lang);
    let name_of = |number: &str| {
        admin
            .institutions()
            .iter()
            .find(|a| a.number() == number)
            .map(|a| a.name().to_owned())
            .unwrap_or_default()
    };
    let mut pending = Vec::new();
    for (client_id, requests) in pending_by_service(&state, &admin).await? {
        let service = state.store.service(&client_id).await?;
        let provider = agreement::provider_of(&*state.store, &client_id).await?;
        let mut packages: Vec<String> = Vec::new();
        for r in &requests {
            let p = t.package(r.spec.package);
            if !packages.contains(&p) {
                packages.push(p);
            }
        }
        pending.push(ServiceView {
            name: service.map(|s| s.name).unwrap_or_else(|| client_id.clone()),
            provider: provider.map(|p| p.name).unwrap_or_default(),
            packages: packages.join(", "),
            institutions: requests
                .iter()
                .map(|r| (r.institution.clone(), name_of(&r.institution)))
                .collect(),
            requests: requests
                .iter()
                .map(|r| r.id.to_string())
                .collect::<Vec<_>>()
                .join(","),
            client_id,
        });
    }
    let notice = q.done.as_deref().filter(|d| DONE.contains(d)).map(|d| {
        t.get(&format!("municipality.done.{d}"))
            .replace("{n}", &q.n.unwrap_or(0).to_string())
    });
    let page = MunicipalityPage {
        lang: lang.code(),
        title: t
            .get("municipality.title_of")
            .replace("{code}", admin.code()),
        t,
        csrf: session.csrf.clone(),
        code: admin.code().to_owned(),
        institutions: admin
            .institutions()
            .iter()
            .map(|a| (a.number().to_owned(), a.name().to_owned()))
            .collect(),
        pending,
        notice,
    };
    Ok(uncached(render(&page)))
}

#[derive(Deserialize)]
pub struct DecisionForm {
    // Missing is refused like a wrong one (403), not as a malformed form.
    #[serde(default)]
    csrf: String,
    /// The request ids the page showed, comma-separated.
    #[serde(default)]
    requests: String,
    reason: Option<String>,
    lang: Option<String>,
}

/// `POST /municipality/{code}/sharing/{client_id}/{approve|reject}`: the
/// decision for every institution whose request the page showed; back to
/// the page (303) with the outcome.
pub async fn decide(
    State(state): State<Arc<AppState>>,
    Path((code, client_id, action)): Path<(String, String, String)>,
    headers: HeaderMap,
    Form(form): Form<DecisionForm>,
) -> Result<Response, ApiError> {
    let (admin, session) = match municipality_at(&state, &headers, &code).await? {
        Ok(v) => v,
        Err(res) => return Ok(res),
    };
    let lang = lang_in(form.lang.clone(), &headers);
    if let Some(refused) = csrf_refusal(&session, &form.csrf, lang) {
        return Ok(refused);
    }
    let seen: Vec<i64> = form
        .requests
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let reason = form.reason.as_deref().unwrap_or("").trim().to_owned();
    let (store, clock) = (&*state.store, &*state.clock);
    let who = Decider::Municipality(&admin);
    let (done, n) = match action.as_str() {
        "approve" => {
            let made = agreement::approve_for_municipality(
                store,
                clock,
                who,
                admin.code(),
                &client_id,
                Some(&seen),
            )
            .await?;
            ("approved", made.len())
        }
        "reject" if reason.is_empty() => ("no_reason", 0),
        "reject" => {
            let rejected = agreement::reject_for_municipality(
                store,
                clock,
                who,
                admin.code(),
                &client_id,
                Some(&seen),
                &reason,
            )
            .await?;
            ("rejected", rejected.len())
        }
        _ => return Ok(nowhere(headers).await),
    };
    let done = if n == 0 && done != "no_reason" {
        "none"
    } else {
        done
    };
    Ok(Redirect::to(&format!(
        "/municipality/{}?lang={}&done={done}&n={n}",
        enc(admin.code()),
        lang.code()
    ))
    .into_response())
}
