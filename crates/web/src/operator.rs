//! The operators' page of security reports (`/operator/security-reports`):
//! every report, newest first, new or acknowledged (by whom, when), and the
//! acknowledgement, which core audits and which is mailed to the reporter
//! when they left an e-mail address and SMTP is configured. Deny by
//! default: anyone without the `operator` right (granted only by the CLI)
//! gets 404.

use crate::auth::{csrf_refusal, signed_in, uncached, when, Texts};
use crate::error::ApiError;
use crate::pages::{lang_in, render};
use crate::staff::nowhere;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use std::sync::Arc;
use tilgang_core::identity::rights::{self, Operator};
use tilgang_core::identity::session::SessionRecord;
use tilgang_core::security::{self, Acknowledged};

/// The session and the operator capability; `Err` carries the answer to
/// give instead (the login page, or 404).
async fn operator_at(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Result<(Operator, SessionRecord), Response>, ApiError> {
    let session = match signed_in(state, headers).await {
        Ok(s) => s,
        Err(res) => return Ok(Err(res)),
    };
    Ok(
        match rights::operator(&*state.store, session.person_id).await? {
            Some(cap) => Ok((cap, session)),
            None => Err(nowhere(headers.clone()).await),
        },
    )
}

/// Whether the signed-in person is an operator (for the account page).
pub(crate) async fn is_operator(state: &AppState, person_id: i64) -> Result<bool, ApiError> {
    Ok(rights::operator(&*state.store, person_id).await?.is_some())
}

struct ReportView {
    id: i64,
    reference: String,
    received: String,
    contact: String,
    summary: String,
    details: String,
    acknowledged: Option<String>,
}

#[derive(Template)]
#[template(path = "operator_reports.html")]
struct ReportsPage {
    lang: &'static str,
    t: Texts,
    csrf: String,
    reports: Vec<ReportView>,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct ReportsQuery {
    lang: Option<String>,
    done: Option<String>,
}

const DONE: &[&str] = &["acknowledged", "already"];

/// `/operator/security-reports`.
pub async fn reports(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ReportsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = lang_in(q.lang.clone(), &headers);
    let (cap, session) = match operator_at(&state, &headers).await? {
        Ok(v) => v,
        Err(res) => return Ok(res),
    };
    let t = Texts(lang);
    let reports = security::reports(&*state.store, &cap)
        .await?
        .into_iter()
        .map(|r| ReportView {
            id: r.id,
            reference: r.reference,
            received: when(r.received_at),
            contact: r.contact,
            summary: r.summary,
            details: r.details,
            acknowledged: r
                .acknowledged_at
                .map(|at| format!("{} ({})", when(at), r.acknowledged_by.unwrap_or_default())),
        })
        .collect();
    let page = ReportsPage {
        lang: lang.code(),
        notice: q
            .done
            .as_deref()
            .filter(|d| DONE.contains(d))
            .map(|d| t.get(&format!("operator.done.{d}"))),
        t,
        csrf: session.csrf.clone(),
        reports,
    };
    Ok(uncached(render(&page)))
}

#[derive(Deserialize)]
pub struct AckForm {
    #[serde(default)]
    csrf: String,
    lang: Option<String>,
}

/// `POST /operator/security-reports/{id}/acknowledge`.
pub async fn acknowledge(
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Form(form): Form<AckForm>,
) -> Result<Response, ApiError> {
    let (cap, session) = match operator_at(&state, &headers).await? {
        Ok(v) => v,
        Err(res) => return Ok(res),
    };
    let lang = lang_in(form.lang.clone(), &headers);
    if let Some(refused) = csrf_refusal(&session, &form.csrf, lang) {
        return Ok(refused);
    }
    let done = match security::acknowledge(&*state.store, &*state.clock, &cap, id).await? {
        Acknowledged::Now(report) => {
            crate::notices::report_acknowledged(&state, &report);
            "acknowledged"
        }
        Acknowledged::Already => "already",
        Acknowledged::NotFound => return Ok(nowhere(headers).await),
    };
    Ok(Redirect::to(&format!(
        "/operator/security-reports?lang={}&done={done}",
        lang.code()
    ))
    .into_response())
}
