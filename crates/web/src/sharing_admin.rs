//! The institution admin's sharing pages (`/staff/{number}/sharing`):
//! pending data access requests side by side with what the service has
//! today (changes marked in words, not colour only), approved, listed and
//! blocked services, the decisions, and each service's history. Decisions
//! go through `core::sharing::agreement` with `Decider::Admin`, which
//! writes the audit event and the history row. Anyone but an admin of the
//! institution gets 404, as on the audit page.

use crate::auth::{csrf_refusal, uncached, when, Texts};
use crate::error::ApiError;
use crate::pages::{lang_in, render, LangQuery};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use std::sync::Arc;
use tilgang_core::identity::rights::InstitutionAdmin;
use tilgang_core::sharing::agreement::{self, Change, Decider, Filters, RequestSpec};
use tilgang_core::Error;

use crate::staff::{admin_at, enc, nowhere};

/// The number of pending requests at an institution (the badge).
pub(crate) async fn pending_count(
    state: &AppState,
    admin: &InstitutionAdmin,
) -> Result<usize, ApiError> {
    Ok(agreement::overview(&*state.store, admin)
        .await?
        .iter()
        .filter(|s| s.agreement.pending.is_some())
        .count())
}

pub(crate) async fn service_name(state: &AppState, client_id: &str) -> Result<String, ApiError> {
    Ok(state
        .store
        .service(client_id)
        .await?
        .map(|s| s.name)
        .unwrap_or_else(|| client_id.to_owned()))
}

/// One line of the side-by-side view.
struct Row {
    label: String,
    /// What the service has today.
    today: Vec<String>,
    /// What it asks for; `true` marks a new or changed item.
    asked: Vec<(String, bool)>,
    changed: bool,
}

struct PendingView {
    client_id: String,
    name: String,
    request_id: i64,
    asked_at: String,
    asked_by: String,
    has_approval: bool,
    blocked: bool,
    rows: Vec<Row>,
}

struct ApprovedView {
    client_id: String,
    name: String,
    version: i64,
    package: String,
    approved_at: String,
    blocked: bool,
}

struct ListedView {
    client_id: String,
    name: String,
    blocked: bool,
}

struct BlockedView {
    client_id: String,
    name: String,
    reason: String,
    blocked_at: String,
}

#[derive(Template)]
#[template(path = "staff_sharing.html")]
struct SharingPage {
    lang: &'static str,
    t: Texts,
    csrf: String,
    number: String,
    name: String,
    pending: Vec<PendingView>,
    approved: Vec<ApprovedView>,
    listed: Vec<ListedView>,
    blocked: Vec<BlockedView>,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct SharingQuery {
    lang: Option<String>,
    done: Option<String>,
}

/// The outcomes a redirect may report, each with its text.
const DONE: &[&str] = &[
    "approved",
    "rejected",
    "revoked",
    "blocked",
    "unblocked",
    "no_reason",
    "not_pending",
    "unchanged",
];

fn filters_text(t: &Texts, f: &Filters) -> String {
    if f.actors.is_empty() && f.grade_levels.is_empty() {
        return t.get("sharing.everyone");
    }
    let actors = f
        .actors
        .iter()
        .map(|a| {
            serde_json::to_value(a)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("{a:?}"))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = Vec::new();
    if !actors.is_empty() {
        out.push(format!("{}: {actors}", t.get("sharing.actors")));
    }
    if !f.grade_levels.is_empty() {
        out.push(format!(
            "{}: {}",
            t.get("sharing.grade_levels"),
            f.grade_levels.join(", ")
        ));
    }
    out.join("; ")
}

fn sub_text(s: &agreement::SubProcessor) -> String {
    format!(
        "{} (CVR {}, {}): {}; {}; {}; {}",
        s.name, s.cvr, s.address, s.task, s.data, s.country, s.protection
    )
}

/// The side-by-side rows of a request against the approval in force.
fn rows(t: &Texts, today: Option<&RequestSpec>, asked: &RequestSpec) -> Vec<Row> {
    let changes = agreement::changes(today, asked);
    let has = |f: &dyn Fn(&Change) -> bool| changes.iter().any(f);
    let one = |s: String, changed: bool| vec![(s, changed)];
    let today_or = |f: &dyn Fn(&RequestSpec) -> Vec<String>| today.map(f).unwrap_or_default();
    let mut out = Vec::new();
    let pkg = has(&|c| matches!(c, Change::Package { .. }));
    out.push(Row {
        label: t.get("sharing.package"),
        today: today_or(&|s| vec![t.package(s.package)]),
        asked: one(t.package(asked.package), pkg),
        changed: pkg,
    });
    let delivery = has(&|c| matches!(c, Change::Delivery)) && today.is_some();
    out.push(Row {
        label: t.get("sharing.delivery"),
        today: today_or(&|s| vec![s.delivery.as_str().to_owned()]),
        asked: one(asked.delivery.as_str().to_owned(), delivery),
        changed: delivery,
    });
    let filters = has(&|c| matches!(c, Change::Filters)) && today.is_some();
    out.push(Row {
        label: t.get("sharing.filters"),
        today: today_or(&|s| vec![filters_text(t, &s.filters)]),
        asked: one(filters_text(t, &asked.filters), filters),
        changed: filters,
    });
    let subs: Vec<(String, bool)> = asked
        .sub_processors
        .iter()
        .map(|s| {
            let marked = changes.iter().any(|c| match c {
                Change::SubProcessorAdded { name } | Change::SubProcessorChanged { name } => {
                    *name == s.name
                }
                _ => false,
            });
            (sub_text(s), marked)
        })
        .collect();
    let subs_changed = has(&|c| {
        matches!(
            c,
            Change::SubProcessorAdded { .. }
                | Change::SubProcessorChanged { .. }
                | Change::SubProcessorRemoved { .. }
        )
    });
    out.push(Row {
        label: t.get("sharing.sub_processors"),
        today: today_or(&|s| s.sub_processors.iter().map(sub_text).collect()),
        asked: subs,
        changed: subs_changed,
    });
    let locations_changed = has(&|c| {
        matches!(
            c,
            Change::LocationAdded { .. } | Change::LocationRemoved { .. }
        )
    });
    out.push(Row {
        label: t.get("sharing.locations"),
        today: today_or(&|s| s.locations.clone()),
        asked: asked
            .locations
            .iter()
            .map(|l| {
                (
                    l.clone(),
                    today.is_some_and(|s| !s.locations.contains(l)) || today.is_none(),
                )
            })
            .collect(),
        changed: locations_changed,
    });
    for (key, change, today_v, asked_v) in [
        (
            "sharing.purpose",
            Change::Purpose,
            today.map(|s| s.purpose.clone()),
            asked.purpose.clone(),
        ),
        (
            "sharing.retention",
            Change::Retention,
            today.map(|s| s.retention.clone()),
            asked.retention.clone(),
        ),
        (
            "sharing.dpa",
            Change::DpaReference,
            today.map(|s| s.dpa_reference.clone()),
            asked.dpa_reference.clone(),
        ),
    ] {
        let changed = changes.contains(&change);
        out.push(Row {
            label: t.get(key),
            today: today_v.into_iter().collect(),
            asked: one(asked_v, changed),
            changed,
        });
    }
    out
}

/// `/staff/{number}/sharing`: the services and their requests.
pub async fn page(
    State(state): State<Arc<AppState>>,
    Path(number): Path<String>,
    Query(q): Query<SharingQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = lang_in(q.lang.clone(), &headers);
    let (admin, session) = match admin_at(&state, &headers, &number).await? {
        Ok(v) => v,
        Err(res) => return Ok(res),
    };
    let t = Texts(lang);
    let mut page = SharingPage {
        lang: lang.code(),
        t: Texts(lang),
        csrf: session.csrf.clone(),
        number: admin.access().number().to_owned(),
        name: admin.access().name().to_owned(),
        pending: vec![],
        approved: vec![],
        listed: vec![],
        blocked: vec![],
        notice: q
            .done
            .as_deref()
            .filter(|d| DONE.contains(d))
            .map(|d| t.get(&format!("sharing.done.{d}"))),
    };
    for s in agreement::overview(&*state.store, &admin).await? {
        let name = service_name(&state, &s.client_id).await?;
        let a = &s.agreement;
        if let Some(p) = &a.pending {
            let today = a.approval.as_ref().map(|x| &x.spec);
            page.pending.push(PendingView {
                client_id: s.client_id.clone(),
                name: name.clone(),
                request_id: p.id,
                asked_at: when(p.created_at),
                asked_by: p.created_by.clone(),
                has_approval: today.is_some(),
                blocked: a.block.is_some(),
                rows: rows(&t, today, &p.spec),
            });
        }
        if let Some(x) = &a.approval {
            page.approved.push(ApprovedView {
                client_id: s.client_id.clone(),
                name: name.clone(),
                version: x.version,
                package: t.package(x.spec.package),
                approved_at: when(x.approved_at),
                blocked: a.block.is_some(),
            });
        } else if s.listed.is_some() {
            page.listed.push(ListedView {
                client_id: s.client_id.clone(),
                name: name.clone(),
                blocked: a.block.is_some(),
            });
        }
        if let Some(b) = &a.block {
            page.blocked.push(BlockedView {
                client_id: s.client_id.clone(),
                name,
                reason: b.reason.clone(),
                blocked_at: when(b.blocked_at),
            });
        }
    }
    Ok(uncached(render(&page)))
}

struct HistoryRow {
    at: String,
    actor: String,
    action: String,
    details: String,
}

struct VersionRow {
    version: i64,
    package: String,
    sub_processors: String,
    locations: String,
    approved: String,
    ended: String,
}

#[derive(Template)]
#[template(path = "staff_sharing_history.html")]
struct HistoryPage {
    lang: &'static str,
    t: Texts,
    number: String,
    name: String,
    client_id: String,
    service: String,
    rows: Vec<HistoryRow>,
    versions: Vec<VersionRow>,
}

/// `/staff/{number}/sharing/{client_id}`: the service's full history at
/// the institution, and every approval version.
pub async fn history(
    State(state): State<Arc<AppState>>,
    Path((number, client_id)): Path<(String, String)>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = lang_in(q.lang.clone(), &headers);
    let (admin, _) = match admin_at(&state, &headers, &number).await? {
        Ok(v) => v,
        Err(res) => return Ok(res),
    };
    let (entries, approvals) = agreement::history_at(&*state.store, &admin, &client_id).await?;
    if entries.is_empty()
        && approvals.is_empty()
        && state.store.service(&client_id).await?.is_none()
    {
        return Ok(nowhere(headers).await);
    }
    let page = HistoryPage {
        lang: lang.code(),
        t: Texts(lang),
        number: admin.access().number().to_owned(),
        name: admin.access().name().to_owned(),
        service: service_name(&state, &client_id).await?,
        client_id,
        rows: entries
            .into_iter()
            .map(|e| HistoryRow {
                at: when(e.at),
                actor: e.actor,
                action: e.action,
                details: e.details.to_string(),
            })
            .collect(),
        versions: approvals
            .into_iter()
            .map(|a| VersionRow {
                version: a.version,
                package: Texts(lang).package(a.spec.package),
                sub_processors: a
                    .spec
                    .sub_processors
                    .iter()
                    .map(|s| s.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
                locations: a.spec.locations.join(", "),
                approved: format!("{} ({})", when(a.approved_at), a.approved_by),
                ended: match (a.ended_at, a.end_reason) {
                    (Some(at), r) => format!(
                        "{} ({}): {}",
                        when(at),
                        a.ended_by.unwrap_or_default(),
                        r.unwrap_or_default()
                    ),
                    (None, _) => String::new(),
                },
            })
            .collect(),
    };
    Ok(uncached(render(&page)))
}

#[derive(Deserialize)]
pub struct DecisionForm {
    // Missing is refused like a wrong one (403), not as a malformed form.
    #[serde(default)]
    csrf: String,
    request: Option<i64>,
    reason: Option<String>,
    lang: Option<String>,
}

/// `POST /staff/{number}/sharing/{client_id}/{action}`: approve, reject,
/// revoke, block or unblock; back to the page (303) with the outcome.
pub async fn decide(
    State(state): State<Arc<AppState>>,
    Path((number, client_id, action)): Path<(String, String, String)>,
    headers: HeaderMap,
    Form(form): Form<DecisionForm>,
) -> Result<Response, ApiError> {
    let (admin, session) = match admin_at(&state, &headers, &number).await? {
        Ok(v) => v,
        Err(res) => return Ok(res),
    };
    let lang = lang_in(form.lang.clone(), &headers);
    if let Some(refused) = csrf_refusal(&session, &form.csrf, lang) {
        return Ok(refused);
    }
    let (store, clock) = (&*state.store, &*state.clock);
    let who = Decider::Admin(&admin);
    let reason = form.reason.as_deref().unwrap_or("").trim().to_owned();
    let needs_reason = matches!(action.as_str(), "reject" | "revoke" | "block");
    let done: Result<&str, Error> = if needs_reason && reason.is_empty() {
        Ok("no_reason")
    } else {
        // A request id from the form must be this service's.
        let request = match form.request {
            Some(id) => match store.request(id).await? {
                Some(r) if r.client_id == client_id => Some(id),
                _ => return Ok(nowhere(headers).await),
            },
            None => None,
        };
        match (action.as_str(), request) {
            ("approve", Some(id)) => agreement::approve(store, clock, who, id)
                .await
                .map(|_| "approved"),
            ("reject", Some(id)) => agreement::reject(store, clock, who, id, &reason)
                .await
                .map(|_| "rejected"),
            ("revoke", _) => agreement::revoke(store, clock, who, &client_id, &number, &reason)
                .await
                .map(|b| if b { "revoked" } else { "unchanged" }),
            ("block", _) => {
                agreement::set_block(store, clock, who, &client_id, &number, Some(&reason))
                    .await
                    .map(|b| if b { "blocked" } else { "unchanged" })
            }
            ("unblock", _) => agreement::set_block(store, clock, who, &client_id, &number, None)
                .await
                .map(|b| if b { "unblocked" } else { "unchanged" }),
            _ => return Ok(nowhere(headers).await),
        }
    };
    let done = match done {
        Ok(d) => d,
        Err(Error::NotFound(_)) => return Ok(nowhere(headers).await),
        Err(e) if e.code() == "SHARING_NOT_PENDING" => "not_pending",
        Err(e) if e.code() == "SHARING_FIELD_REQUIRED" => "no_reason",
        Err(e) => return Err(e.into()),
    };
    Ok(Redirect::to(&format!(
        "/staff/{}/sharing?lang={}&done={done}",
        enc(&number),
        lang.code()
    ))
    .into_response())
}
