//! `/api/v1/institutions/{number}/export` and `/api/v1/changes`: thin
//! wiring of `core::sharing::export` (streamed page by page, each page
//! audited by the core before its bytes leave) and `core::sharing::changes`.

use super::auth;
use crate::error::{ApiError, Problem};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::sync::Arc;
use tilgang_core::sharing::changes::{self, Page};
use tilgang_core::sharing::export::{self, Export, Format};
use tilgang_core::Error;

/// The format the `Accept` header asks for: the zip only when named.
fn format(headers: &HeaderMap) -> Format {
    let wants_zip = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|m| {
            m.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/zip"))
        });
    if wants_zip {
        Format::OneRoster
    } else {
        Format::Json
    }
}

fn set(res: &mut Response, name: &'static str, value: &str) {
    // A value that is not a valid header (it cannot be, the core builds
    // them from digits and RFC 3339) is left out rather than failing.
    if let Ok(v) = HeaderValue::from_str(value) {
        res.headers_mut().insert(HeaderName::from_static(name), v);
    }
}

/// The body: the export's chunks as they are pulled. An error mid-way
/// ends the stream with an error, so the client sees a broken transfer
/// rather than a short but well-formed file.
fn body(export: Export, app: Arc<AppState>, client_id: String, number: String) -> Body {
    let stream = futures_util::stream::unfold(Some(export), move |state| {
        let client_id = client_id.clone();
        let number = number.clone();
        let app = app.clone();
        async move {
            let mut export = state?;
            match export.next_chunk().await {
                Ok(Some(chunk)) => {
                    app.metrics
                        .export_bytes
                        .fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    Some((Ok(chunk), Some(export)))
                }
                Ok(None) => {
                    let p = export.progress();
                    tracing::info!(
                        client_id,
                        institution = number,
                        persons = p.persons,
                        bytes = p.bytes,
                        pages = p.pages,
                        "export sent"
                    );
                    None
                }
                Err(e) => {
                    // The code only: a message may name a person.
                    tracing::error!(
                        client_id,
                        institution = number,
                        code = e.code(),
                        "export aborted mid-stream"
                    );
                    Some((Err(std::io::Error::other(e.code())), None))
                }
            }
        }
    });
    Body::from_stream(stream)
}

/// An institution's approved package as one download: JSON, or a
/// OneRoster 1.2 CSV zip with `Accept: application/zip`.
#[utoipa::path(
    get,
    path = "/api/v1/institutions/{number}/export",
    tag = "export",
    security(("bearer" = [])),
    params(("number" = String, Path, description = "The institution number")),
    responses(
        (status = 200, description = "The export, streamed: a JSON object (header, persons, groups), or with `Accept: application/zip` a OneRoster 1.2 CSV bundle. Headers `X-Tilgang-Package`, `X-Tilgang-Made-At`, `X-Tilgang-School-Year` repeat the export's header.", content(
            (serde_json::Value = "application/json"),
            (String = "application/zip"),
        )),
        (status = 401, description = "No valid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A person's token on a service endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such institution, or none that approved the service for export (the same answer)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the service's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn export(
    State(state): State<Arc<AppState>>,
    Path(number): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let client = auth::service(&state, &headers).await?;
    let format = format(&headers);
    let export = export::open(
        state.store.clone(),
        state.clock.clone(),
        (*state.keys).clone(),
        client.client_id(),
        &number,
        format,
    )
    .await
    .map(|e| e.with_page_size(state.api.config.export_page_size))
    .map_err(|e| match e {
        // The lookup's wording, so that the answer is the same byte for
        // byte whichever number was asked (and as for the lookup).
        Error::NotFound(_) => Error::NotFound("no such institution".into()),
        e => e,
    })?;
    let h = export.header().clone();
    let filename = match format {
        Format::Json => format!("tilgang-{number}.json"),
        Format::OneRoster => format!("tilgang-{number}-oneroster.zip"),
    };
    let mut res =
        body(export, state.clone(), client.client_id().to_owned(), number).into_response();
    let hs = res.headers_mut();
    hs.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    hs.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    set(
        &mut res,
        "content-disposition",
        &format!("attachment; filename=\"{filename}\""),
    );
    set(&mut res, "x-tilgang-package", h.package.as_str());
    set(&mut res, "x-tilgang-made-at", &h.made_at);
    if let Some(year) = &h.import.school_year {
        set(&mut res, "x-tilgang-school-year", year);
    }
    Ok(res)
}

/// Changes per page when the request does not say.
const DEFAULT_LIMIT: usize = 100;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// The `next_cursor` of the last page read; none to start from the
    /// approval (after a fresh export).
    since: Option<String>,
    /// Changes per page, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
}

/// Roster changes at the institutions that approved the service, in
/// commit order, resumable by cursor.
#[utoipa::path(
    get,
    path = "/api/v1/changes",
    tag = "export",
    security(("bearer" = [])),
    params(ChangesQuery),
    responses(
        (status = 200, description = "One page of changes and the cursor to read on from", body = Page),
        (status = 401, description = "No valid access token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A person's token on a service endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "A cursor older than the feed keeps (`CHANGES_CURSOR_EXPIRED`): export again and start without `since`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A cursor this feed did not hand out (`CHANGES_CURSOR_INVALID`) or a limit out of range (`CHANGES_LIMIT_INVALID`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the service's rate limit; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn changes(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ChangesQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let client = auth::service(&state, &headers).await?;
    // Parsed here rather than by the extractor so that a bad limit is the
    // core's 422 with its code, not axum's plain-text 400. 0 is out of
    // range for the core too.
    let limit = match q.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(l) => l.trim().parse().unwrap_or(0),
    };
    let page = changes::changes_since(
        &*state.store,
        client.client_id(),
        q.since.as_deref(),
        limit,
        &*state.clock,
    )
    .await?;
    let mut res = Json(page).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}
