//! The provider portal (`/provider`): a provider's people register services
//! and ask institutions for data, and see where each service stands and its
//! history. Deny by default: anyone but a provider user gets 404, and a
//! provider user reaches only their own provider's services (the
//! `ProviderUser` capability from `core::sharing::portal`). Every form is
//! CSRF-checked and works without JavaScript.

use crate::auth::{csrf_refusal, uncached, when, Texts};
use crate::error::ApiError;
use crate::i18n::Lang;
use crate::notices::{self, RequestNotice};
use crate::pages::{lang_in, render, LangQuery};
use crate::staff::nowhere;
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use tilgang_core::identity::session::SessionRecord;
use tilgang_core::oidc;
use tilgang_core::roster::Actor;
use tilgang_core::sharing::agreement::{
    self, Addressee, Delivery, Filters, Problem, RequestSpec, SubProcessor,
};
use tilgang_core::sharing::portal::{self, NewService, ProviderUser, State as Standing};
use tilgang_core::sharing::Package;
use tilgang_core::Error;

/// The session and the provider capability; `Err` carries the answer to
/// give instead (the login page, or 404 for anyone but a provider user).
pub(crate) async fn provider_at(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Result<(ProviderUser, SessionRecord), Response>, ApiError> {
    let session = match crate::auth::signed_in(state, headers).await {
        Ok(s) => s,
        Err(res) => return Ok(Err(res)),
    };
    Ok(
        match portal::provider_user(&*state.store, session.person_id).await? {
            Some(cap) => Ok((cap, session)),
            None => Err(nowhere(headers.clone()).await),
        },
    )
}

/// The text for a problem's code.
fn problem_text(t: &Texts, p: &Problem) -> String {
    t.get(&format!("portal.error.{}", p.code))
}

struct StandingView {
    number: String,
    name: String,
    states: Vec<String>,
}

struct ServiceView {
    client_id: String,
    name: String,
    public: bool,
    standing: Vec<StandingView>,
}

#[derive(Template)]
#[template(path = "provider.html")]
struct OverviewPage {
    lang: &'static str,
    t: Texts,
    csrf: String,
    provider: String,
    authority: bool,
    services: Vec<ServiceView>,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct OverviewQuery {
    lang: Option<String>,
    done: Option<String>,
}

fn state_text(t: &Texts, s: &Standing) -> String {
    match s {
        Standing::Pending => t.get("portal.state.pending"),
        Standing::Approved { version } => {
            format!(
                "{} ({} {version})",
                t.get("portal.state.approved"),
                t.get("sharing.version").to_lowercase()
            )
        }
        Standing::Rejected { reason } => format!("{}: {reason}", t.get("portal.state.rejected")),
        Standing::Revoked { reason } => format!("{}: {reason}", t.get("portal.state.revoked")),
        Standing::Blocked => t.get("portal.state.blocked"),
        Standing::Listed => t.get("portal.state.listed"),
    }
}

pub(crate) async fn institution_names(
    state: &AppState,
) -> Result<HashMap<String, String>, ApiError> {
    Ok(state
        .store
        .institutions()
        .await?
        .into_iter()
        .map(|i| (i.number, i.name))
        .collect())
}

/// `/provider`: the provider's services and where each stands per
/// institution.
pub async fn overview(
    State(state): State<Arc<AppState>>,
    Query(q): Query<OverviewQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = lang_in(q.lang.clone(), &headers);
    let (cap, session) = match provider_at(&state, &headers).await? {
        Ok(v) => v,
        Err(res) => return Ok(res),
    };
    let t = Texts(lang);
    let names = institution_names(&state).await?;
    let store = &*state.store;
    let mut services = Vec::new();
    for s in portal::services(store, &cap).await? {
        let standing = portal::standing(store, &cap, &s.client_id)
            .await?
            .into_iter()
            .map(|(number, states)| StandingView {
                name: names.get(&number).cloned().unwrap_or_default(),
                number,
                states: states.iter().map(|s| state_text(&t, s)).collect(),
            })
            .collect();
        services.push(ServiceView {
            client_id: s.client_id,
            name: s.name,
            public: s.public,
            standing,
        });
    }
    let page = OverviewPage {
        lang: lang.code(),
        csrf: session.csrf,
        provider: cap.provider().name.clone(),
        authority: cap.provider().authority,
        services,
        notice: q
            .done
            .as_deref()
            .filter(|d| ["requested"].contains(d))
            .map(|d| t.get(&format!("portal.done.{d}"))),
        t,
    };
    Ok(uncached(render(&page)))
}

/// A form's fields as submitted (repeated names kept in order).
struct Fields(Vec<(String, String)>);

impl Fields {
    fn one(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    }
    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }
    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

/// Lines or commas to a list, empty items dropped.
fn list(s: &str) -> Vec<String> {
    s.split(['\n', ',', '\r'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

#[derive(Template)]
#[template(path = "provider_service_new.html")]
struct ServiceForm {
    lang: &'static str,
    t: Texts,
    csrf: String,
    name: String,
    redirect_uris: String,
    post_logout_uris: String,
    grants: Vec<(&'static str, bool)>,
    public: bool,
    errors: HashMap<String, String>,
}

impl ServiceForm {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).cloned().unwrap_or_default()
    }
}

#[derive(Template)]
#[template(path = "provider_secret.html")]
struct SecretPage {
    lang: &'static str,
    t: Texts,
    client_id: String,
    name: String,
    secret: Option<String>,
}

/// `/provider/services/new`: the registration form.
pub async fn service_form(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = lang_in(q.lang.clone(), &headers);
    let (_, session) = match provider_at(&state, &headers).await? {
        Ok(v) => v,
        Err(res) => return Ok(res),
    };
    let page = ServiceForm {
        lang: lang.code(),
        t: Texts(lang),
        csrf: session.csrf,
        name: String::new(),
        redirect_uris: String::new(),
        post_logout_uris: String::new(),
        grants: vec![
            (oidc::GRANT_CODE, true),
            (oidc::GRANT_REFRESH, true),
            (oidc::GRANT_CLIENT_CREDENTIALS, false),
        ],
        public: false,
        errors: HashMap::new(),
    };
    Ok(uncached(render(&page)))
}

/// `POST /provider/services`: registers the service and shows its secret
/// once; a wrong form comes back with each problem at its field (422).
pub async fn service_submit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let f = Fields(pairs);
    let lang = lang_in(Some(f.one("lang")).filter(|l| !l.is_empty()), &headers);
    let (cap, session) = match provider_at(&state, &headers).await? {
        Ok(v) => v,
        Err(res) => return Ok(res),
    };
    if let Some(refused) = csrf_refusal(&session, &f.one("csrf"), lang) {
        return Ok(refused);
    }
    let t = Texts(lang);
    let grants = f.all("grant");
    let new = NewService {
        name: f.one("name"),
        redirect_uris: list(&f.one("redirect_uris")),
        post_logout_redirect_uris: list(&f.one("post_logout_uris")),
        grants: oidc::GRANTS
            .iter()
            .filter(|g| grants.iter().any(|x| x == *g))
            .map(|g| (*g).to_owned())
            .collect(),
        public: f.one("client_type") == "public",
    };
    let problems = portal::service_problems(&new);
    let form = |errors: HashMap<String, String>| ServiceForm {
        lang: lang.code(),
        t: Texts(lang),
        csrf: session.csrf.clone(),
        name: f.one("name"),
        redirect_uris: f.one("redirect_uris"),
        post_logout_uris: f.one("post_logout_uris"),
        grants: oidc::GRANTS
            .iter()
            .map(|g| (*g, grants.iter().any(|x| x == g)))
            .collect(),
        public: new.public,
        errors,
    };
    if !problems.is_empty() {
        let mut errors = HashMap::new();
        for p in &problems {
            errors
                .entry(p.field.clone())
                .or_insert_with(|| problem_text(&t, p));
        }
        return Ok(unprocessable(render(&form(errors))));
    }
    let (service, secret) =
        portal::register_service(&*state.store, &*state.clock, &cap, &new).await?;
    let page = SecretPage {
        lang: lang.code(),
        t,
        client_id: service.client_id,
        name: service.name,
        secret,
    };
    Ok(uncached(render(&page)))
}

fn unprocessable(res: Response) -> Response {
    let mut res = uncached(res);
    *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    res
}

/// Sub-processor rows shown empty at first; "add more" adds this many.
const SUB_ROWS: usize = 2;
const SUB_FIELDS: &[&str] = &[
    "name",
    "cvr",
    "address",
    "task",
    "data",
    "country",
    "protection",
];

struct Cell {
    name: String,
    label: String,
    value: String,
    error: String,
}

struct SubRow {
    n: usize,
    cells: Vec<Cell>,
}

#[derive(Template)]
#[template(path = "provider_request.html")]
struct RequestForm {
    lang: &'static str,
    t: Texts,
    csrf: String,
    client_id: String,
    service: String,
    purpose: String,
    packages: Vec<(&'static str, String, bool)>,
    deliveries: Vec<(&'static str, String, bool)>,
    actors: Vec<(&'static str, bool)>,
    grade_levels: String,
    locations: String,
    retention: String,
    dpa_reference: String,
    target: String,
    institution: String,
    municipality: String,
    institutions: String,
    rows: usize,
    subs: Vec<SubRow>,
    errors: HashMap<String, String>,
}

impl RequestForm {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).cloned().unwrap_or_default()
    }

    fn new(
        lang: Lang,
        csrf: String,
        cap: &ProviderUser,
        service: &oidc::Service,
        f: &Fields,
        errors: HashMap<String, String>,
    ) -> RequestForm {
        let t = Texts(lang);
        let rows = f
            .one("rows")
            .parse::<usize>()
            .unwrap_or(SUB_ROWS)
            .clamp(1, 50)
            + if f.has("more") { SUB_ROWS } else { 0 };
        let package = Some(f.one("package"))
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "small".into());
        let delivery = Some(f.one("delivery"))
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "lookup".into());
        let actors = f.all("actor");
        let subs = (1..=rows)
            .map(|n| SubRow {
                n,
                cells: SUB_FIELDS
                    .iter()
                    .map(|field| {
                        let name = format!("sub.{n}.{field}");
                        Cell {
                            value: f.one(&name),
                            error: errors.get(&name).cloned().unwrap_or_default(),
                            label: t.get(&format!("portal.sub.{field}")),
                            name,
                        }
                    })
                    .collect(),
            })
            .collect();
        RequestForm {
            lang: lang.code(),
            csrf,
            client_id: service.client_id.clone(),
            service: service.name.clone(),
            purpose: f.one("purpose"),
            packages: Package::ALL
                .iter()
                .filter(|p| **p != Package::Authority || cap.provider().authority)
                .map(|p| {
                    let label = t.get(&format!("portal.package.{}", p.as_str()));
                    (p.as_str(), label, p.as_str() == package)
                })
                .collect(),
            deliveries: [Delivery::Lookup, Delivery::Export, Delivery::Both]
                .iter()
                .map(|d| {
                    let label = t.get(&format!("portal.delivery.{}", d.as_str()));
                    (d.as_str(), label, d.as_str() == delivery)
                })
                .collect(),
            actors: Actor::ALL
                .iter()
                .map(|a| (a.as_str(), actors.iter().any(|x| x == a.as_str())))
                .collect(),
            grade_levels: f.one("grade_levels"),
            locations: f.one("locations"),
            retention: f.one("retention"),
            dpa_reference: f.one("dpa_reference"),
            target: Some(f.one("target"))
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "institution".into()),
            institution: f.one("institution"),
            municipality: f.one("municipality"),
            institutions: f.one("institutions"),
            rows,
            subs,
            errors,
            t,
        }
    }
}

/// The request the form describes: sub-processor rows left wholly empty
/// are skipped, so the spare rows need no attention.
fn spec_of(f: &Fields) -> Result<RequestSpec, HashMap<String, String>> {
    let mut bad = HashMap::new();
    let package = Package::parse(&f.one("package"));
    if package.is_none() {
        bad.insert("package".to_owned(), "SHARING_FIELD_REQUIRED".to_owned());
    }
    let delivery = Delivery::parse(&f.one("delivery"));
    if delivery.is_none() {
        bad.insert("delivery".to_owned(), "SHARING_FIELD_REQUIRED".to_owned());
    }
    let rows = f
        .one("rows")
        .parse::<usize>()
        .unwrap_or(SUB_ROWS)
        .clamp(1, 50);
    let mut subs = Vec::new();
    for n in 1..=rows {
        let v = |field: &str| f.one(&format!("sub.{n}.{field}"));
        if SUB_FIELDS.iter().all(|x| v(x).is_empty()) {
            continue;
        }
        subs.push(SubProcessor {
            name: v("name"),
            cvr: v("cvr"),
            address: v("address"),
            task: v("task"),
            data: v("data"),
            country: v("country"),
            protection: v("protection"),
        });
    }
    let (Some(package), Some(delivery)) = (package, delivery) else {
        return Err(bad);
    };
    let spec = RequestSpec {
        purpose: f.one("purpose"),
        package,
        delivery,
        filters: Filters {
            actors: f
                .all("actor")
                .iter()
                .filter_map(|a| Actor::parse(a))
                .collect(),
            grade_levels: list(&f.one("grade_levels")),
        },
        sub_processors: subs,
        locations: list(&f.one("locations")),
        retention: f.one("retention"),
        dpa_reference: f.one("dpa_reference"),
    };
    if !bad.is_empty() {
        return Err(bad);
    }
    Ok(spec)
}

/// The form's row number of the kept sub-processor `i` (1-based).
fn form_row(f: &Fields, i: usize) -> usize {
    let rows = f
        .one("rows")
        .parse::<usize>()
        .unwrap_or(SUB_ROWS)
        .clamp(1, 50);
    (1..=rows)
        .filter(|n| {
            SUB_FIELDS
                .iter()
                .any(|x| !f.one(&format!("sub.{n}.{x}")).is_empty())
        })
        .nth(i.saturating_sub(1))
        .unwrap_or(i)
}

fn addressee(f: &Fields) -> Option<Addressee> {
    match f.one("target").as_str() {
        "municipality" => Some(f.one("municipality"))
            .filter(|m| !m.is_empty())
            .map(Addressee::Municipality),
        "list" => Some(list(&f.one("institutions")))
            .filter(|l| !l.is_empty())
            .map(Addressee::List),
        _ => Some(f.one("institution"))
            .filter(|i| !i.is_empty())
            .map(Addressee::Institution),
    }
}

/// `/provider/services/{client_id}/request`: the request form.
pub async fn request_form(
    State(state): State<Arc<AppState>>,
    Path(client_id): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = lang_in(q.lang.clone(), &headers);
    let (cap, session) = match provider_at(&state, &headers).await? {
        Ok(v) => v,
        Err(res) => return Ok(res),
    };
    let service = match portal::service(&*state.store, &cap, &client_id).await {
        Ok(s) => s,
        Err(Error::NotFound(_)) => return Ok(nowhere(headers).await),
        Err(e) => return Err(e.into()),
    };
    let page = RequestForm::new(
        lang,
        session.csrf,
        &cap,
        &service,
        &Fields(vec![]),
        HashMap::new(),
    );
    Ok(uncached(render(&page)))
}

/// `POST /provider/services/{client_id}/request`: sends the request (one
/// per institution), tells the institutions' admins, and goes back to the
/// overview; "add more" (`more`) shows more sub-processor rows instead.
pub async fn request_submit(
    State(state): State<Arc<AppState>>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let f = Fields(pairs);
    let lang = lang_in(Some(f.one("lang")).filter(|l| !l.is_empty()), &headers);
    let (cap, session) = match provider_at(&state, &headers).await? {
        Ok(v) => v,
        Err(res) => return Ok(res),
    };
    if let Some(refused) = csrf_refusal(&session, &f.one("csrf"), lang) {
        return Ok(refused);
    }
    let (store, clock) = (&*state.store, &*state.clock);
    let service = match portal::service(store, &cap, &client_id).await {
        Ok(s) => s,
        Err(Error::NotFound(_)) => return Ok(nowhere(headers).await),
        Err(e) => return Err(e.into()),
    };
    let t = Texts(lang);
    let again = |errors: HashMap<String, String>| {
        RequestForm::new(lang, session.csrf.clone(), &cap, &service, &f, errors)
    };
    if f.has("more") {
        return Ok(uncached(render(&again(HashMap::new()))));
    }
    let mut errors: HashMap<String, String> = HashMap::new();
    let spec = match spec_of(&f) {
        Ok(spec) => {
            for p in agreement::problems(&spec, Some(cap.provider())) {
                // `sub.N.x` counts kept rows; show it at the form's row.
                let field = match p.field.strip_prefix("sub.") {
                    Some(rest) => match rest.split_once('.') {
                        Some((n, x)) => format!("sub.{}.{x}", form_row(&f, n.parse().unwrap_or(1))),
                        None => p.field.clone(),
                    },
                    None => p.field.clone(),
                };
                errors.entry(field).or_insert_with(|| problem_text(&t, &p));
            }
            Some(spec)
        }
        Err(bad) => {
            for (field, code) in bad {
                errors.insert(field, t.get(&format!("portal.error.{code}")));
            }
            None
        }
    };
    let to = addressee(&f);
    if to.is_none() {
        errors.insert(
            "target".into(),
            t.get("portal.error.SHARING_FIELD_REQUIRED"),
        );
    }
    let (Some(spec), Some(to), true) = (spec, to, errors.is_empty()) else {
        return Ok(unprocessable(render(&again(errors))));
    };
    let sent = match portal::request(store, clock, &cap, &client_id, &spec, &to).await {
        Ok(sent) => sent,
        Err(Error::UnknownInstitution(n)) => {
            errors.insert(
                "target".into(),
                format!("{} {n}", t.get("portal.error.unknown_institution")),
            );
            return Ok(unprocessable(render(&again(errors))));
        }
        Err(Error::NotFound(_)) => {
            errors.insert("target".into(), t.get("portal.error.no_municipality"));
            return Ok(unprocessable(render(&again(errors))));
        }
        Err(e) => return Err(e.into()),
    };
    notices::request_sent(
        &state,
        RequestNotice {
            service: service.name.clone(),
            client_id: client_id.clone(),
            provider: cap.provider().name.clone(),
            institutions: sent.into_iter().map(|(n, _)| n).collect(),
        },
    );
    Ok(Redirect::to(&format!("/provider?lang={}&done=requested", lang.code())).into_response())
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
#[template(path = "provider_history.html")]
struct HistoryPage {
    lang: &'static str,
    t: Texts,
    service: String,
    number: String,
    institution: String,
    rows: Vec<HistoryRow>,
    versions: Vec<VersionRow>,
}

/// `/provider/services/{client_id}/history/{number}`: the service's full
/// history at one institution, as its admin sees it.
pub async fn history(
    State(state): State<Arc<AppState>>,
    Path((client_id, number)): Path<(String, String)>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = lang_in(q.lang.clone(), &headers);
    let (cap, _) = match provider_at(&state, &headers).await? {
        Ok(v) => v,
        Err(res) => return Ok(res),
    };
    let store = &*state.store;
    let service = match portal::service(store, &cap, &client_id).await {
        Ok(s) => s,
        Err(Error::NotFound(_)) => return Ok(nowhere(headers).await),
        Err(e) => return Err(e.into()),
    };
    let (entries, approvals) = portal::history(store, &cap, &client_id, &number).await?;
    let names = institution_names(&state).await?;
    let Some(institution) = names.get(&number).cloned() else {
        return Ok(nowhere(headers).await);
    };
    let page = HistoryPage {
        lang: lang.code(),
        t: Texts(lang),
        service: service.name,
        number,
        institution,
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
                approved: when(a.approved_at),
                ended: match (a.ended_at, a.end_reason) {
                    (Some(at), r) => format!("{}: {}", when(at), r.unwrap_or_default()),
                    (None, _) => String::new(),
                },
            })
            .collect(),
    };
    Ok(uncached(render(&page)))
}
