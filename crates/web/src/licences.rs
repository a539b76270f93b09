//! The institution admin's licence page (`/staff/{number}/licences`): the
//! institution's licences, a form to grant one (to the institution, a group
//! or a person), withdrawal, and bulk grants from a CSV file. Everything
//! goes through `core::sharing::licence`, which checks that each licence
//! stays within the admin's institution and writes the audit events; a
//! file with any bad line grants nothing. Anyone but an admin of the
//! institution gets 404, as on the sharing page.
//!
//! Also the provider's licence page (`/provider/services/{client_id}/licences`):
//! a provider user grants licences for what the provider sold, naming the
//! institution's consent, and withdraws them; only for the provider's own
//! services (`ProviderUser`, else 404).

use crate::auth::{csrf_refusal, uncached, when, Texts};
use crate::error::ApiError;
use crate::i18n::Lang;
use crate::pages::{lang_in, render};
use crate::sharing_admin::service_name;
use crate::staff::{admin_at, enc, nowhere};
use crate::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use std::sync::Arc;
use tilgang_core::identity::rights::InstitutionAdmin;
use tilgang_core::identity::session::SessionRecord;
use tilgang_core::roster::import::native::parse_date;
use tilgang_core::sharing::licence::{self, CsvIssue, LicenceScope, NewLicence};
use tilgang_core::sharing::portal::ProviderUser;
use tilgang_core::Error;

struct LicenceView {
    id: i64,
    service: String,
    scope: String,
    target: String,
    from: String,
    to: String,
    granted_by: String,
    active: bool,
    withdrawn: String,
}

#[derive(Template)]
#[template(path = "staff_licences.html")]
struct LicencesPage {
    lang: &'static str,
    t: Texts,
    csrf: String,
    number: String,
    name: String,
    licences: Vec<LicenceView>,
    /// (client id, name, selected)
    services: Vec<(String, String, bool)>,
    /// (id, name, selected)
    groups: Vec<(String, String, bool)>,
    form: GrantForm,
    problems: Vec<String>,
    notice: Option<String>,
    csv_header: String,
}

#[derive(Deserialize)]
pub struct LicencesQuery {
    lang: Option<String>,
    done: Option<String>,
    count: Option<usize>,
}

/// The outcomes a redirect may report, each with its text.
const DONE: &[&str] = &["granted", "withdrawn", "csv", "unchanged"];

/// A problem as the admin reads it: the line (for a file), the field, and
/// what is wrong, worded from the issue's code.
fn problem_text(t: &Texts, i: &CsvIssue) -> String {
    let field = t.get(&format!("licence.field.{}", i.field));
    let text = t.get(&format!("licence.issue.{}", i.code));
    if i.line == 0 {
        format!("{field}: {text}")
    } else {
        t.get("licence.issue_at")
            .replace("{line}", &i.line.to_string())
            .replace("{field}", &field)
            .replace("{text}", &text)
    }
}

async fn page(
    state: &AppState,
    admin: &InstitutionAdmin,
    csrf: &str,
    lang: Lang,
    form: GrantForm,
    problems: Vec<String>,
    notice: Option<String>,
) -> Result<Response, ApiError> {
    let t = Texts(lang);
    let (store, clock) = (&*state.store, &*state.clock);
    let now = clock.now().date();
    let mut licences = Vec::new();
    for l in licence::at_institution(store, clock, admin).await? {
        let (n, lic) = (&l.licence.new, &l.licence);
        let target = match &n.scope {
            LicenceScope::Institution => admin.access().name().to_owned(),
            LicenceScope::Group(id) | LicenceScope::Person(id) if l.target_name.is_empty() => {
                id.clone()
            }
            LicenceScope::Group(id) | LicenceScope::Person(id) => {
                format!("{} ({id})", l.target_name)
            }
        };
        licences.push(LicenceView {
            id: lic.id,
            service: service_name(state, &n.client_id).await?,
            scope: t.get(&format!("licence.scope.{}", n.scope.kind())),
            target,
            from: n.valid_from.to_string(),
            to: n.valid_to.map(|d| d.to_string()).unwrap_or_default(),
            granted_by: n.granted_by.clone(),
            active: lic.live_on(now),
            withdrawn: lic.withdrawn_at.map(when).unwrap_or_default(),
        });
    }
    let mut services = Vec::new();
    for id in licence::grantable_services(store, admin).await? {
        let selected = id == form.service;
        services.push((id.clone(), service_name(state, &id).await?, selected));
    }
    let groups = licence::groups(store, admin)
        .await?
        .into_iter()
        .map(|(id, name)| {
            let selected = id == form.group;
            (id, name, selected)
        })
        .collect();
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = LicencesPage {
        lang: lang.code(),
        t,
        csrf: csrf.to_owned(),
        number: admin.access().number().to_owned(),
        name: admin.access().name().to_owned(),
        licences,
        services,
        groups,
        form,
        problems,
        notice,
        csv_header: licence::CSV_HEADER.join(","),
    };
    Ok(uncached((status, render(&page)).into_response()))
}

/// `/staff/{number}/licences`: the institution's licences and the forms.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(number): Path<String>,
    Query(q): Query<LicencesQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = lang_in(q.lang.clone(), &headers);
    let (admin, session) = match admin_at(&state, &headers, &number).await? {
        Ok(v) => v,
        Err(res) => return Ok(res),
    };
    let t = Texts(lang);
    let notice = q.done.as_deref().filter(|d| DONE.contains(d)).map(|d| {
        t.get(&format!("licence.done.{d}"))
            .replace("{count}", &q.count.unwrap_or(0).to_string())
    });
    page(
        &state,
        &admin,
        &session.csrf,
        lang,
        GrantForm::default(),
        vec![],
        notice,
    )
    .await
}

#[derive(Deserialize, Default)]
pub struct GrantForm {
    // Missing is refused like a wrong one (403), not as a malformed form.
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    person: String,
    #[serde(default)]
    institution: String,
    #[serde(default)]
    consent: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    lang: Option<String>,
}

/// The prologue of a posted form: the capability `found` (else the login
/// page or 404), then the session's CSRF token (else 403).
#[allow(clippy::result_large_err)] // the refusal is the handler's answer, returned at once
fn form_checked<C>(
    found: Result<(C, SessionRecord), Response>,
    csrf: &str,
    lang: Lang,
) -> Result<(C, SessionRecord, Lang), Response> {
    let (cap, session) = found?;
    match csrf_refusal(&session, csrf, lang) {
        Some(refused) => Err(refused),
        None => Ok((cap, session, lang)),
    }
}

async fn admin_form(
    state: &AppState,
    headers: &HeaderMap,
    number: &str,
    csrf: &str,
    lang: Option<String>,
) -> Result<Result<(InstitutionAdmin, SessionRecord, Lang), Response>, ApiError> {
    let found = admin_at(state, headers, number).await?;
    Ok(form_checked(found, csrf, lang_in(lang, headers)))
}

/// Back to a licence page (`path`) with what was done.
fn back(path: &str, lang: Lang, done: &str) -> Response {
    Redirect::to(&format!("{path}?lang={}&done={done}", lang.code())).into_response()
}

fn admin_back(number: &str, lang: Lang, done: &str) -> Response {
    back(&format!("/staff/{}/licences", enc(number)), lang, done)
}

/// The form's licence, or what is wrong with its fields.
fn from_form(f: &GrantForm, number: &str, actor: &str) -> Result<NewLicence, Vec<CsvIssue>> {
    let issue = |field: &str, code: &'static str| CsvIssue {
        line: 0,
        field: field.to_owned(),
        code,
        message: String::new(),
    };
    let mut issues = Vec::new();
    let target = match f.scope.as_str() {
        "group" => f.group.as_str(),
        "person" => f.person.as_str(),
        _ => "",
    };
    let scope = LicenceScope::from_parts(&f.scope, target);
    if scope.is_none() {
        issues.push(match f.scope.as_str() {
            "group" | "person" => issue("target", licence::CSV_NO_TARGET),
            _ => issue("scope", licence::CSV_BAD_SCOPE),
        });
    }
    let from = parse_date(f.from.trim());
    if from.is_none() {
        issues.push(issue("from", licence::CSV_BAD_DATE));
    }
    let to = match f.to.trim() {
        "" => Some(None),
        s => parse_date(s).map(Some),
    };
    if to.is_none() {
        issues.push(issue("to", licence::CSV_BAD_DATE));
    }
    if f.service.trim().is_empty() {
        issues.push(issue("service", licence::CSV_EMPTY));
    }
    if number.trim().is_empty() {
        issues.push(issue("institution", licence::CSV_EMPTY));
    }
    match (scope, from, to) {
        (Some(scope), Some(valid_from), Some(valid_to)) if issues.is_empty() => Ok(NewLicence {
            client_id: f.service.trim().to_owned(),
            institution: number.trim().to_owned(),
            scope,
            valid_from,
            valid_to,
            granted_by: actor.to_owned(),
            consent: None,
        }),
        _ => Err(issues),
    }
}

/// `POST /staff/{number}/licences`: grants one licence from the form.
pub async fn grant(
    State(state): State<Arc<AppState>>,
    Path(number): Path<String>,
    headers: HeaderMap,
    Form(form): Form<GrantForm>,
) -> Result<Response, ApiError> {
    let (admin, session, lang) =
        match admin_form(&state, &headers, &number, &form.csrf, form.lang.clone()).await? {
            Ok(v) => v,
            Err(res) => return Ok(res),
        };
    let actor = admin.access().actor_ref();
    let issues = match from_form(&form, admin.access().number(), &actor) {
        Ok(l) => {
            match licence::admin_grant(&*state.store, &*state.clock, &admin, vec![(0, l)]).await? {
                Ok(_) => return Ok(admin_back(&number, lang, "granted")),
                Err(issues) => issues,
            }
        }
        Err(issues) => issues,
    };
    let t = Texts(lang);
    let problems = issues.iter().map(|i| problem_text(&t, i)).collect();
    page(&state, &admin, &session.csrf, lang, form, problems, None).await
}

#[derive(Deserialize)]
pub struct WithdrawForm {
    #[serde(default)]
    csrf: String,
    lang: Option<String>,
}

/// `POST /staff/{number}/licences/{id}/withdraw`.
pub async fn withdraw(
    State(state): State<Arc<AppState>>,
    Path((number, id)): Path<(String, i64)>,
    headers: HeaderMap,
    Form(form): Form<WithdrawForm>,
) -> Result<Response, ApiError> {
    let (admin, _, lang) =
        match admin_form(&state, &headers, &number, &form.csrf, form.lang.clone()).await? {
            Ok(v) => v,
            Err(res) => return Ok(res),
        };
    if licence::admin_withdraw(&*state.store, &*state.clock, &admin, id).await? {
        Ok(admin_back(&number, lang, "withdrawn"))
    } else {
        Ok(nowhere(headers).await)
    }
}

struct ProviderLicenceView {
    id: i64,
    institution: String,
    scope: String,
    target: String,
    from: String,
    to: String,
    consent: String,
    granted_by: String,
    active: bool,
    withdrawn: String,
}

#[derive(Template)]
#[template(path = "provider_licences.html")]
struct ProviderLicencesPage {
    lang: &'static str,
    t: Texts,
    csrf: String,
    client_id: String,
    service: String,
    licences: Vec<ProviderLicenceView>,
    form: GrantForm,
    problems: Vec<String>,
    notice: Option<String>,
}

/// The provider's licence page for one of its services, with the form's
/// problems or a notice; `None` when the service is not the provider's
/// (the caller answers 404).
async fn provider_page(
    state: &AppState,
    (cap, client_id): (&ProviderUser, &str),
    csrf: &str,
    lang: Lang,
    form: GrantForm,
    problems: Vec<String>,
    notice: Option<String>,
) -> Result<Option<Response>, ApiError> {
    let store = &*state.store;
    let licences = match licence::of_service(store, cap, client_id).await {
        Ok(l) => l,
        Err(Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let t = Texts(lang);
    let names = crate::portal::institution_names(state).await?;
    let now = state.clock.now().date();
    let licences = licences
        .into_iter()
        .map(|l| {
            let n = &l.new;
            let name = names.get(&n.institution).cloned().unwrap_or_default();
            ProviderLicenceView {
                id: l.id,
                institution: format!("{name} ({})", n.institution),
                scope: t.get(&format!("licence.scope.{}", n.scope.kind())),
                target: n.scope.target().to_owned(),
                from: n.valid_from.to_string(),
                to: n.valid_to.map(|d| d.to_string()).unwrap_or_default(),
                consent: n.consent.clone().unwrap_or_default(),
                granted_by: n.granted_by.clone(),
                active: l.live_on(now),
                withdrawn: l.withdrawn_at.map(when).unwrap_or_default(),
            }
        })
        .collect();
    let service = service_name(state, client_id).await?;
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = ProviderLicencesPage {
        lang: lang.code(),
        t,
        csrf: csrf.to_owned(),
        client_id: client_id.to_owned(),
        service,
        licences,
        form,
        problems,
        notice,
    };
    Ok(Some(uncached((status, render(&page)).into_response())))
}

/// `/provider/services/{client_id}/licences`: the service's licences and
/// the form to grant one.
pub async fn provider_list(
    State(state): State<Arc<AppState>>,
    Path(client_id): Path<String>,
    Query(q): Query<LicencesQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = lang_in(q.lang.clone(), &headers);
    let (cap, session) = match crate::portal::provider_at(&state, &headers).await? {
        Ok(v) => v,
        Err(res) => return Ok(res),
    };
    let t = Texts(lang);
    let notice = q
        .done
        .as_deref()
        .filter(|d| ["granted", "withdrawn"].contains(d))
        .map(|d| t.get(&format!("licence.done.{d}")));
    let form = GrantForm::default();
    match provider_page(
        &state,
        (&cap, &client_id),
        &session.csrf,
        lang,
        form,
        vec![],
        notice,
    )
    .await?
    {
        Some(res) => Ok(res),
        None => Ok(nowhere(headers).await),
    }
}

async fn provider_form(
    state: &AppState,
    headers: &HeaderMap,
    csrf: &str,
    lang: Option<String>,
) -> Result<Result<(ProviderUser, SessionRecord, Lang), Response>, ApiError> {
    let found = crate::portal::provider_at(state, headers).await?;
    Ok(form_checked(found, csrf, lang_in(lang, headers)))
}

fn provider_back(client_id: &str, lang: Lang, done: &str) -> Response {
    back(
        &format!("/provider/services/{}/licences", enc(client_id)),
        lang,
        done,
    )
}

/// `POST /provider/services/{client_id}/licences`: the provider grants one
/// licence with the institution's consent; a wrong form comes back with
/// its problems (422) and grants nothing.
pub async fn provider_grant(
    State(state): State<Arc<AppState>>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    Form(mut form): Form<GrantForm>,
) -> Result<Response, ApiError> {
    let (cap, session, lang) =
        match provider_form(&state, &headers, &form.csrf, form.lang.clone()).await? {
            Ok(v) => v,
            Err(res) => return Ok(res),
        };
    form.service = client_id.clone();
    let (store, clock) = (&*state.store, &*state.clock);
    let issues = match from_form(&form, &form.institution, &cap.actor_ref()) {
        Ok(l) => {
            let rows = vec![(0, l)];
            match licence::provider_grant(store, clock, &cap, &client_id, &form.consent, rows).await
            {
                Ok(Ok(_)) => return Ok(provider_back(&client_id, lang, "granted")),
                Ok(Err(issues)) => issues,
                Err(Error::NotFound(_)) => return Ok(nowhere(headers).await),
                Err(e) => return Err(e.into()),
            }
        }
        // The consent is asked for with the form's other problems.
        Err(mut issues) if form.consent.trim().is_empty() => {
            issues.push(CsvIssue {
                line: 0,
                field: "consent".into(),
                code: licence::CSV_EMPTY,
                message: String::new(),
            });
            issues
        }
        Err(issues) => issues,
    };
    let t = Texts(lang);
    let problems = issues.iter().map(|i| problem_text(&t, i)).collect();
    let csrf = session.csrf.clone();
    match provider_page(
        &state,
        (&cap, &client_id),
        &csrf,
        lang,
        form,
        problems,
        None,
    )
    .await?
    {
        Some(res) => Ok(res),
        None => Ok(nowhere(headers).await),
    }
}

/// `POST /provider/services/{client_id}/licences/{id}/withdraw`: only a
/// live licence this provider granted for its own service.
pub async fn provider_withdraw(
    State(state): State<Arc<AppState>>,
    Path((client_id, id)): Path<(String, i64)>,
    headers: HeaderMap,
    Form(form): Form<WithdrawForm>,
) -> Result<Response, ApiError> {
    let (cap, _, lang) =
        match provider_form(&state, &headers, &form.csrf, form.lang.clone()).await? {
            Ok(v) => v,
            Err(res) => return Ok(res),
        };
    match licence::provider_withdraw(&*state.store, &*state.clock, &cap, &client_id, id).await {
        Ok(true) => Ok(provider_back(&client_id, lang, "withdrawn")),
        Ok(false) | Err(Error::NotFound(_)) => Ok(nowhere(headers).await),
        Err(e) => Err(e.into()),
    }
}

/// The fields of a `multipart/form-data` body (RFC 7578) by name; `None`
/// when it is not one. Enough for the one small upload form tilgang has,
/// without a multipart dependency: parts are split at the boundary, and
/// each part's name is read from its `Content-Disposition`.
fn multipart(headers: &HeaderMap, body: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let (kind, params) = ct.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let boundary = params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary")
            .then(|| v.trim_matches('"').to_owned())
    })?;
    let delimiter = format!("--{boundary}").into_bytes();
    let mut out = Vec::new();
    let mut rest = body;
    // Everything before the first delimiter is a preamble.
    let start = find(rest, &delimiter)?;
    rest = &rest[start + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Some(out);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let end = find(rest, &delimiter)?;
        let part = rest[..end].strip_suffix(b"\r\n")?;
        rest = &rest[end + delimiter.len()..];
        let split = find(part, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&part[..split]).ok()?;
        let name = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            if !k.trim().eq_ignore_ascii_case("content-disposition") {
                return None;
            }
            v.split(';').find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                (k == "name").then(|| v.trim_matches('"').to_owned())
            })
        })?;
        out.push((name, part[split + 4..].to_vec()));
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `POST /staff/{number}/licences/csv`: bulk grants from an uploaded file
/// (`multipart/form-data`: `csrf`, `lang`, `file`). Any bad line, in the
/// file's syntax or against the institution, grants nothing and the page
/// lists every problem with its line and field.
pub async fn upload(
    State(state): State<Arc<AppState>>,
    Path(number): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let fields = multipart(&headers, &body).unwrap_or_default();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    };
    let text = |name: &str| String::from_utf8_lossy(field(name).unwrap_or_default()).into_owned();
    let lang = Some(text("lang")).filter(|l| !l.is_empty());
    let (admin, session, lang) =
        match admin_form(&state, &headers, &number, &text("csrf"), lang).await? {
            Ok(v) => v,
            Err(res) => return Ok(res),
        };
    let actor = admin.access().actor_ref();
    let data = field("file").unwrap_or_default();
    let issues = match licence::parse_csv_lines(data, &actor) {
        Ok(rows) if rows.is_empty() => vec![CsvIssue {
            line: 1,
            field: "file".into(),
            code: licence::CSV_EMPTY,
            message: String::new(),
        }],
        Ok(rows) => match licence::admin_grant(&*state.store, &*state.clock, &admin, rows).await? {
            Ok(ids) => {
                return Ok(Redirect::to(&format!(
                    "/staff/{}/licences?lang={}&done=csv&count={}",
                    enc(&number),
                    lang.code(),
                    ids.len()
                ))
                .into_response())
            }
            Err(issues) => issues,
        },
        Err(issues) => issues,
    };
    let t = Texts(lang);
    let mut problems = vec![t.get("licence.csv_nothing_granted")];
    problems.extend(issues.iter().map(|i| problem_text(&t, i)));
    page(
        &state,
        &admin,
        &session.csrf,
        lang,
        GrantForm::default(),
        problems,
        None,
    )
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_multipart_body_yields_its_fields() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=XyZ".parse().unwrap(),
        );
        let body = b"pre\r\n--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"l.csv\"\r\nContent-Type: text/csv\r\n\r\na,b\r\nc,d\r\n\r\n--XyZ--\r\n";
        let f = multipart(&h, body).unwrap();
        assert_eq!(f[0], ("csrf".into(), b"abc".to_vec()));
        assert_eq!(f[1], ("file".into(), b"a,b\r\nc,d\r\n".to_vec()));
        assert!(multipart(&h, b"--XyZ\r\nbroken").is_none());
        let mut form = HeaderMap::new();
        form.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        assert!(multipart(&form, body).is_none());
    }
}
