//! Data access agreements (Tilslutning): a provider's request per service
//! and institution, the institution's decision, and approvals as versioned
//! instructions. A changed request (a higher package, a new sub-processor,
//! a new data location) waits as pending while the approval in force
//! stays; the minimal package needs no approval but is listed; an
//! institution can block a service outright.

use super::actions;
use super::package::Package;
use crate::audit::NewEvent;
use crate::identity::rights::{InstitutionAdmin, MunicipalityAdmin};
use crate::roster::Actor;
use crate::store::sharing::Verdict;
use crate::store::Store;
use crate::{Clock, Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// An organisation that runs services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    pub id: i64,
    pub name: String,
    /// The company number (CVR), eight digits.
    pub cvr: String,
    pub address: String,
    pub contact: String,
    pub security_contact: String,
    /// A public authority, as an operator marked it: only these may
    /// receive the authority package.
    pub authority: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewProvider {
    pub name: String,
    pub cvr: String,
    pub address: String,
    pub contact: String,
    pub security_contact: String,
}

/// A service's provider and whether logins to it need a licence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceLink {
    pub client_id: String,
    pub provider_id: Option<i64>,
    pub licence_required: bool,
}

/// How the service receives data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// At login (claims, instant lookup).
    Lookup,
    Export,
    Both,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Lookup => "lookup",
            Delivery::Export => "export",
            Delivery::Both => "both",
        }
    }
    pub fn parse(s: &str) -> Option<Delivery> {
        [Delivery::Lookup, Delivery::Export, Delivery::Both]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
    pub fn lookup(self) -> bool {
        self != Delivery::Export
    }
    pub fn export(self) -> bool {
        self != Delivery::Lookup
    }
}

/// Whom the data covers; empty lists mean everyone.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Filters {
    #[serde(default)]
    pub actors: Vec<Actor>,
    /// Pupils' grade levels ("0" to "10" in Danish schools).
    #[serde(default)]
    pub grade_levels: Vec<String>,
}

/// A sub-processor the provider uses (seed 003).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubProcessor {
    pub name: String,
    pub cvr: String,
    pub address: String,
    /// What it does for the provider.
    pub task: String,
    /// Which data it processes.
    pub data: String,
    pub country: String,
    /// How the data is protected there.
    pub protection: String,
}

/// What a provider asks for, and (once approved) what the institution
/// instructed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestSpec {
    pub purpose: String,
    pub package: Package,
    pub delivery: Delivery,
    #[serde(default)]
    pub filters: Filters,
    #[serde(default)]
    pub sub_processors: Vec<SubProcessor>,
    /// Where the data is kept (countries or data centres).
    #[serde(default)]
    pub locations: Vec<String>,
    pub retention: String,
    /// The data processing agreement with the institution.
    pub dpa_reference: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    Pending,
    /// The minimal package: recorded and shown, needs no decision.
    Listed,
    Approved,
    Rejected,
    /// A newer request of the same service replaced it before a decision.
    Superseded,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Listed => "listed",
            RequestStatus::Approved => "approved",
            RequestStatus::Rejected => "rejected",
            RequestStatus::Superseded => "superseded",
        }
    }
    pub fn parse(s: &str) -> Option<RequestStatus> {
        use RequestStatus::*;
        [Pending, Listed, Approved, Rejected, Superseded]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// A request to store: one institution each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    pub client_id: String,
    pub institution: String,
    pub spec: RequestSpec,
    pub status: RequestStatus,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub id: i64,
    pub client_id: String,
    pub institution: String,
    pub spec: RequestSpec,
    pub status: RequestStatus,
    pub created_at: i64,
    pub created_by: String,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub reason: Option<String>,
}

/// One version of an institution's instruction for a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub id: i64,
    pub client_id: String,
    pub institution: String,
    /// 1, 2, … per service and institution.
    pub version: i64,
    pub request_id: i64,
    /// A snapshot of what was approved.
    pub spec: RequestSpec,
    pub approved_by: String,
    pub approved_at: i64,
    /// Revoked, or replaced by the next version.
    pub ended_at: Option<i64>,
    pub ended_by: Option<String>,
    /// `superseded` or the revocation's reason.
    pub end_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub client_id: String,
    pub institution: String,
    pub blocked_at: i64,
    pub blocked_by: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub details: serde_json::Value,
}

/// Where a service stands at one institution.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Agreement {
    /// The approval in force.
    pub approval: Option<Approval>,
    /// What waits for a decision (at most one: a newer request supersedes).
    pub pending: Option<RequestRecord>,
    pub block: Option<Block>,
}

/// What a request changes against the approval in force, for the admin's
/// side-by-side view. Any change waits for approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    Package { from: Package, to: Package },
    SubProcessorAdded { name: String },
    SubProcessorRemoved { name: String },
    SubProcessorChanged { name: String },
    LocationAdded { location: String },
    LocationRemoved { location: String },
    Delivery,
    Filters,
    Purpose,
    Retention,
    DpaReference,
}

impl Change {
    /// A change that widens what flows, or to whom: a higher package, a
    /// new or changed sub-processor, a new location.
    pub fn widens(&self) -> bool {
        match self {
            Change::Package { from, to } => to > from,
            Change::SubProcessorAdded { .. }
            | Change::SubProcessorChanged { .. }
            | Change::LocationAdded { .. }
            | Change::Delivery
            | Change::Filters => true,
            _ => false,
        }
    }
}

/// The changes from `old` (the approval in force; none: everything is new)
/// to `new`.
pub fn changes(old: Option<&RequestSpec>, new: &RequestSpec) -> Vec<Change> {
    let empty = RequestSpec {
        purpose: String::new(),
        package: Package::Minimal,
        delivery: new.delivery,
        filters: new.filters.clone(),
        sub_processors: vec![],
        locations: vec![],
        retention: String::new(),
        dpa_reference: String::new(),
    };
    let old = old.unwrap_or(&empty);
    let mut out = Vec::new();
    if old.package != new.package {
        out.push(Change::Package {
            from: old.package,
            to: new.package,
        });
    }
    for s in &new.sub_processors {
        match old.sub_processors.iter().find(|o| o.name == s.name) {
            None => out.push(Change::SubProcessorAdded {
                name: s.name.clone(),
            }),
            Some(o) if o != s => out.push(Change::SubProcessorChanged {
                name: s.name.clone(),
            }),
            _ => {}
        }
    }
    for o in &old.sub_processors {
        if !new.sub_processors.iter().any(|s| s.name == o.name) {
            out.push(Change::SubProcessorRemoved {
                name: o.name.clone(),
            });
        }
    }
    for l in &new.locations {
        if !old.locations.contains(l) {
            out.push(Change::LocationAdded {
                location: l.clone(),
            });
        }
    }
    for l in &old.locations {
        if !new.locations.contains(l) {
            out.push(Change::LocationRemoved {
                location: l.clone(),
            });
        }
    }
    if old.delivery != new.delivery {
        out.push(Change::Delivery);
    }
    if old.filters != new.filters {
        out.push(Change::Filters);
    }
    if !old.purpose.is_empty() && old.purpose != new.purpose {
        out.push(Change::Purpose);
    }
    if !old.retention.is_empty() && old.retention != new.retention {
        out.push(Change::Retention);
    }
    if !old.dpa_reference.is_empty() && old.dpa_reference != new.dpa_reference {
        out.push(Change::DpaReference);
    }
    out
}

/// The institutions a request goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addressee {
    Institution(String),
    /// Every institution of the municipality with this code.
    Municipality(String),
    List(Vec<String>),
}

/// Who decides: an admin of the institution, a municipality admin (for
/// each institution of their municipality), or an operator (the CLI).
#[derive(Debug, Clone, Copy)]
pub enum Decider<'a> {
    Admin(&'a InstitutionAdmin),
    Municipality(&'a MunicipalityAdmin),
    Operator(&'a str),
}

impl Decider<'_> {
    fn may(&self, institution: &str) -> bool {
        match self {
            Decider::Admin(cap) => cap.access().number() == institution,
            Decider::Municipality(cap) => cap.covers(institution),
            Decider::Operator(_) => true,
        }
    }
    fn actor(&self) -> String {
        match self {
            Decider::Admin(cap) => cap.access().actor_ref(),
            Decider::Municipality(cap) => cap.actor_ref(),
            Decider::Operator(a) => (*a).to_owned(),
        }
    }
}

const TEXT_MAX: usize = 2000;

fn clean(s: &str) -> String {
    s.trim().chars().take(TEXT_MAX).collect()
}

fn required(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(
            "SHARING_FIELD_REQUIRED",
            format!("{field} is required"),
        ));
    }
    Ok(())
}

/// A Danish company number: eight digits.
pub fn valid_cvr(s: &str) -> bool {
    s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit())
}

pub async fn add_provider(
    store: &dyn Store,
    clock: &dyn Clock,
    actor: &str,
    p: &NewProvider,
) -> Result<i64> {
    required("name", &p.name)?;
    if !valid_cvr(p.cvr.trim()) {
        return Err(Error::invalid(
            "SHARING_CVR_INVALID",
            format!("company number (CVR) must be eight digits, not {:?}", p.cvr),
        ));
    }
    required("contact", &p.contact)?;
    required("security contact", &p.security_contact)?;
    let p = NewProvider {
        name: clean(&p.name),
        cvr: p.cvr.trim().to_owned(),
        address: clean(&p.address),
        contact: clean(&p.contact),
        security_contact: clean(&p.security_contact),
    };
    let ev = NewEvent::new(actor, actions::SHARING_PROVIDER_ADDED)
        .details(json!({"name": p.name, "cvr": p.cvr}));
    store.add_provider(&p, clock.now(), ev).await
}

/// Only an operator marks a provider as a public authority.
pub async fn mark_authority(
    store: &dyn Store,
    clock: &dyn Clock,
    operator: &str,
    provider_id: i64,
    authority: bool,
) -> Result<bool> {
    let ev = NewEvent::new(operator, actions::SHARING_PROVIDER_AUTHORITY)
        .details(json!({"provider": provider_id, "authority": authority}));
    store
        .set_provider_authority(provider_id, authority, clock.now(), ev)
        .await
}

pub async fn provider_of(store: &dyn Store, client_id: &str) -> Result<Option<Provider>> {
    let Some(link) = store.service_link(client_id).await? else {
        return Ok(None);
    };
    let Some(id) = link.provider_id else {
        return Ok(None);
    };
    Ok(store.providers().await?.into_iter().find(|p| p.id == id))
}

/// Links a registered service to its provider and sets its licence flag.
pub async fn link_service(
    store: &dyn Store,
    clock: &dyn Clock,
    actor: &str,
    link: &ServiceLink,
) -> Result<()> {
    if store.service(&link.client_id).await?.is_none() {
        return Err(Error::NotFound(format!("service {}", link.client_id)));
    }
    if let Some(id) = link.provider_id {
        if !store.providers().await?.iter().any(|p| p.id == id) {
            return Err(Error::NotFound(format!("provider {id}")));
        }
    }
    let ev = NewEvent::new(actor, actions::SHARING_SERVICE_LINKED).details(json!({
        "service": link.client_id, "provider": link.provider_id,
        "licence_required": link.licence_required,
    }));
    store.link_service(link, clock.now(), ev).await
}

/// One thing wrong with a request, for the field that holds it: `field` is
/// `purpose`, `retention`, `dpa_reference`, `locations`, `package`, or
/// `sub.N.name` (N from 1) and the like, so a form can show it in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

fn problem(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Problem {
    Problem {
        field: field.into(),
        code,
        message: message.into(),
    }
}

/// Everything wrong with a request (the rules of [`validate`]), in form order.
pub fn problems(spec: &RequestSpec, provider: Option<&Provider>) -> Vec<Problem> {
    let mut out = Vec::new();
    let missing = |v: &str| v.trim().is_empty();
    const REQ: &str = "SHARING_FIELD_REQUIRED";
    if missing(&spec.purpose) {
        out.push(problem("purpose", REQ, "purpose is required"));
    }
    if spec.package == Package::Authority && !provider.is_some_and(|p| p.authority) {
        out.push(problem(
            "package",
            "SHARING_AUTHORITY_ONLY",
            "the authority package is only for providers an operator has marked as a public authority",
        ));
    }
    if spec.package > Package::Minimal {
        if missing(&spec.retention) {
            out.push(problem("retention", REQ, "retention promise is required"));
        }
        if missing(&spec.dpa_reference) {
            out.push(problem(
                "dpa_reference",
                REQ,
                "data processing agreement reference is required",
            ));
        }
        if spec.locations.iter().all(|l| missing(l)) {
            out.push(problem(
                "locations",
                REQ,
                "at least one data location is required",
            ));
        }
    }
    for (i, s) in spec.sub_processors.iter().enumerate() {
        let n = i + 1;
        for (field, v) in [
            ("name", &s.name),
            ("address", &s.address),
            ("task", &s.task),
            ("data", &s.data),
            ("country", &s.country),
            ("protection", &s.protection),
        ] {
            if missing(v) {
                out.push(problem(
                    format!("sub.{n}.{field}"),
                    REQ,
                    format!("sub-processor {n}: {field} is required"),
                ));
            }
        }
        if !valid_cvr(s.cvr.trim()) {
            out.push(problem(
                format!("sub.{n}.cvr"),
                "SHARING_CVR_INVALID",
                format!("sub-processor {n}: company number (CVR) must be eight digits"),
            ));
        }
    }
    out
}

/// Checks a request: a purpose in plain words, the retention promise and
/// the DPA reference (unless minimal), every sub-processor fully described,
/// and the authority package only for a provider marked as an authority.
/// The first of [`problems`] is the error.
pub fn validate(spec: &RequestSpec, provider: Option<&Provider>) -> Result<RequestSpec> {
    if let Some(p) = problems(spec, provider).into_iter().next() {
        return Err(Error::invalid(p.code, p.message));
    }
    let mut out = spec.clone();
    out.purpose = clean(&spec.purpose);
    out.retention = clean(&spec.retention);
    out.dpa_reference = clean(&spec.dpa_reference);
    out.locations = spec
        .locations
        .iter()
        .map(|l| clean(l))
        .filter(|l| !l.is_empty())
        .collect();
    out.filters.grade_levels.sort();
    out.filters.grade_levels.dedup();
    out.filters.actors.sort();
    out.filters.actors.dedup();
    Ok(out)
}

/// The institution numbers an addressee names; unknown ones are an error.
pub async fn resolve(store: &dyn Store, to: &Addressee) -> Result<Vec<String>> {
    let all = store.institutions().await?;
    let numbers: Vec<String> = match to {
        Addressee::Institution(n) => vec![n.clone()],
        Addressee::List(l) => l.clone(),
        Addressee::Municipality(code) => {
            let v: Vec<String> = all
                .iter()
                .filter(|i| i.municipality_code.as_deref() == Some(code.as_str()))
                .map(|i| i.number.clone())
                .collect();
            if v.is_empty() {
                return Err(Error::NotFound(format!(
                    "institutions of municipality {code}"
                )));
            }
            v
        }
    };
    let mut out = Vec::new();
    for n in numbers {
        if !all.iter().any(|i| i.number == n) {
            return Err(Error::UnknownInstitution(n));
        }
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

/// A provider (or an operator on its behalf) asks for data: one request
/// per institution. Returns (institution, request id) pairs.
pub async fn request(
    store: &dyn Store,
    clock: &dyn Clock,
    actor: &str,
    client_id: &str,
    spec: &RequestSpec,
    to: &Addressee,
) -> Result<Vec<(String, i64)>> {
    if store.service(client_id).await?.is_none() {
        return Err(Error::NotFound(format!("service {client_id}")));
    }
    let provider = provider_of(store, client_id).await?;
    let spec = validate(spec, provider.as_ref())?;
    let institutions = resolve(store, to).await?;
    let status = if spec.package == Package::Minimal {
        RequestStatus::Listed
    } else {
        RequestStatus::Pending
    };
    let action = if status == RequestStatus::Listed {
        actions::SHARING_LISTED
    } else {
        actions::SHARING_REQUESTED
    };
    let mut rows = Vec::new();
    let mut events = Vec::new();
    for inst in &institutions {
        let current = current_approval(store, client_id, inst).await?;
        let changes = changes(current.as_ref().map(|a| &a.spec), &spec);
        events.push(
            NewEvent::new(actor, action)
                .institution(inst.clone())
                .details(json!({
                    "service": client_id, "package": spec.package,
                    "sub_processors": spec.sub_processors.iter().map(|s| &s.name).collect::<Vec<_>>(),
                    "locations": spec.locations, "changes": changes,
                })),
        );
        rows.push(NewRequest {
            client_id: client_id.to_owned(),
            institution: inst.clone(),
            spec: spec.clone(),
            status,
            created_by: actor.to_owned(),
        });
    }
    let ids = store.add_requests(&rows, clock.now(), events).await?;
    Ok(institutions.into_iter().zip(ids).collect())
}

pub async fn current_approval(
    store: &dyn Store,
    client_id: &str,
    institution: &str,
) -> Result<Option<Approval>> {
    Ok(store
        .approvals(client_id, institution)
        .await?
        .into_iter()
        .rev()
        .find(|a| a.ended_at.is_none()))
}

/// Where a service stands at an institution: approval in force, pending
/// request, block.
pub async fn agreement(store: &dyn Store, client_id: &str, institution: &str) -> Result<Agreement> {
    let approval = current_approval(store, client_id, institution).await?;
    let pending = store
        .requests(Some(client_id), Some(institution))
        .await?
        .into_iter()
        .find(|r| r.status == RequestStatus::Pending);
    let block = store.block(client_id, institution).await?;
    Ok(Agreement {
        approval,
        pending,
        block,
    })
}

async fn pending_for(
    store: &dyn Store,
    who: &Decider<'_>,
    request_id: i64,
) -> Result<RequestRecord> {
    match store.request(request_id).await? {
        Some(r) if who.may(&r.institution) && r.status == RequestStatus::Pending => Ok(r),
        Some(r) if who.may(&r.institution) => Err(Error::invalid(
            "SHARING_NOT_PENDING",
            format!("request {request_id} is {}, not pending", r.status.as_str()),
        )),
        // Another institution's request is not found, not forbidden.
        _ => Err(Error::NotFound(format!("request {request_id}"))),
    }
}

/// Approves a pending request: it becomes the next version of the
/// institution's instruction, and the one before ends.
pub async fn approve(
    store: &dyn Store,
    clock: &dyn Clock,
    who: Decider<'_>,
    request_id: i64,
) -> Result<Approval> {
    let r = pending_for(store, &who, request_id).await?;
    // A provider demoted from authority since it asked cannot be approved
    // for the authority package.
    validate(&r.spec, provider_of(store, &r.client_id).await?.as_ref())?;
    let ev = NewEvent::new(who.actor(), actions::SHARING_APPROVED)
        .institution(r.institution.clone())
        .details(json!({
            "service": r.client_id, "request": r.id, "package": r.spec.package,
            "filters": r.spec.filters,
            "sub_processors": r.spec.sub_processors.iter().map(|s| &s.name).collect::<Vec<_>>(),
            "locations": r.spec.locations,
        }));
    match store
        .decide(request_id, &Verdict::Approve, &who.actor(), clock.now(), ev)
        .await?
    {
        Some(Some(a)) => Ok(a),
        _ => Err(Error::invalid(
            "SHARING_NOT_PENDING",
            format!("request {request_id} was decided meanwhile"),
        )),
    }
}

pub async fn reject(
    store: &dyn Store,
    clock: &dyn Clock,
    who: Decider<'_>,
    request_id: i64,
    reason: &str,
) -> Result<()> {
    required("reason", reason)?;
    let reason = clean(reason);
    let r = pending_for(store, &who, request_id).await?;
    let ev = NewEvent::new(who.actor(), actions::SHARING_REJECTED)
        .institution(r.institution.clone())
        .details(json!({"service": r.client_id, "request": r.id, "reason": reason}));
    match store
        .decide(
            request_id,
            &Verdict::Reject { reason },
            &who.actor(),
            clock.now(),
            ev,
        )
        .await?
    {
        Some(_) => Ok(()),
        None => Err(Error::invalid(
            "SHARING_NOT_PENDING",
            format!("request {request_id} was decided meanwhile"),
        )),
    }
}

/// Ends the approval in force at once: the service falls back to the
/// minimal package. False: there was none.
pub async fn revoke(
    store: &dyn Store,
    clock: &dyn Clock,
    who: Decider<'_>,
    client_id: &str,
    institution: &str,
    reason: &str,
) -> Result<bool> {
    if !who.may(institution) {
        return Err(Error::NotFound(format!("institution {institution}")));
    }
    required("reason", reason)?;
    let reason = clean(reason);
    let ev = NewEvent::new(who.actor(), actions::SHARING_REVOKED)
        .institution(institution)
        .details(json!({"service": client_id, "reason": reason}));
    store
        .revoke(
            client_id,
            institution,
            &who.actor(),
            &reason,
            clock.now(),
            ev,
        )
        .await
}

/// Blocks (`Some(reason)`) or unblocks a service at an institution: a
/// blocked service gets nothing, not even the minimal package, and no
/// login. False: nothing changed.
pub async fn set_block(
    store: &dyn Store,
    clock: &dyn Clock,
    who: Decider<'_>,
    client_id: &str,
    institution: &str,
    reason: Option<&str>,
) -> Result<bool> {
    if !who.may(institution) {
        return Err(Error::NotFound(format!("institution {institution}")));
    }
    if store.service(client_id).await?.is_none() {
        return Err(Error::NotFound(format!("service {client_id}")));
    }
    let reason = reason.map(clean);
    if let Some(r) = &reason {
        required("reason", r)?;
    }
    let action = if reason.is_some() {
        actions::SHARING_BLOCKED
    } else {
        actions::SHARING_UNBLOCKED
    };
    let ev = NewEvent::new(who.actor(), action)
        .institution(institution)
        .details(json!({"service": client_id, "reason": reason}));
    store
        .set_block(
            client_id,
            institution,
            &who.actor(),
            reason.as_deref(),
            clock.now(),
            ev,
        )
        .await
}

/// The pending requests at the institutions of municipality `code` that
/// `who` may decide, of one service or of all (`None`), oldest first.
/// A municipality admin's own municipality is the only one they see.
pub async fn pending_in_municipality(
    store: &dyn Store,
    who: &Decider<'_>,
    code: &str,
    client_id: Option<&str>,
) -> Result<Vec<RequestRecord>> {
    let numbers = match who {
        Decider::Municipality(cap) if cap.code() == code => cap
            .institutions()
            .iter()
            .map(|a| a.number().to_owned())
            .collect(),
        Decider::Municipality(_) | Decider::Admin(_) => Vec::new(),
        Decider::Operator(_) => resolve(store, &Addressee::Municipality(code.to_owned())).await?,
    };
    // One read per institution: a municipality's few dozen, never the
    // whole country's requests.
    let mut out: Vec<RequestRecord> = Vec::new();
    for n in numbers.iter().filter(|n| who.may(n)) {
        out.extend(
            store
                .requests(client_id, Some(n))
                .await?
                .into_iter()
                .filter(|r| r.status == RequestStatus::Pending),
        );
    }
    out.sort_by_key(|r| r.id);
    Ok(out)
}

/// The pending requests of a service in a municipality that a decision
/// for all of them covers: those the decider was shown (`seen`, request
/// ids; `None` for the CLI, which decides what is pending now). A request
/// raised after the page was shown waits for its own decision.
async fn for_all(
    store: &dyn Store,
    who: &Decider<'_>,
    code: &str,
    client_id: &str,
    seen: Option<&[i64]>,
) -> Result<Vec<RequestRecord>> {
    let mut rs = pending_in_municipality(store, who, code, Some(client_id)).await?;
    if let Some(seen) = seen {
        rs.retain(|r| seen.contains(&r.id));
    }
    Ok(rs)
}

/// A request decided by someone else meanwhile is skipped, not an error.
fn skip_decided<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.code() == "SHARING_NOT_PENDING" => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every pending request of a service at the institutions of a
/// municipality, approved at once (a municipality admin, or an operator,
/// deciding for all its institutions). Each approval is its own decision,
/// with its audit event and history row. Returns the approvals made.
pub async fn approve_for_municipality(
    store: &dyn Store,
    clock: &dyn Clock,
    who: Decider<'_>,
    municipality: &str,
    client_id: &str,
    seen: Option<&[i64]>,
) -> Result<Vec<Approval>> {
    let mut out = Vec::new();
    for r in for_all(store, &who, municipality, client_id, seen).await? {
        out.extend(skip_decided(approve(store, clock, who, r.id).await)?);
    }
    Ok(out)
}

/// Every pending request of a service at the institutions of a
/// municipality, rejected at once with one reason; each rejection is its
/// own decision, audited. Returns the institutions rejected.
pub async fn reject_for_municipality(
    store: &dyn Store,
    clock: &dyn Clock,
    who: Decider<'_>,
    municipality: &str,
    client_id: &str,
    seen: Option<&[i64]>,
    reason: &str,
) -> Result<Vec<String>> {
    required("reason", reason)?;
    let mut out = Vec::new();
    for r in for_all(store, &who, municipality, client_id, seen).await? {
        if skip_decided(reject(store, clock, who, r.id, reason).await)?.is_some() {
            out.push(r.institution);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    pub(crate) fn sub(name: &str) -> SubProcessor {
        SubProcessor {
            name: name.into(),
            cvr: "12345678".into(),
            address: "Vej 1".into(),
            task: "hosting".into(),
            data: "names".into(),
            country: "DK".into(),
            protection: "encrypted at rest".into(),
        }
    }

    fn spec(package: Package, subs: &[&str], locations: &[&str]) -> RequestSpec {
        RequestSpec {
            purpose: "Lessons".into(),
            package,
            delivery: Delivery::Lookup,
            filters: Filters::default(),
            sub_processors: subs.iter().map(|s| sub(s)).collect(),
            locations: locations.iter().map(|s| (*s).to_owned()).collect(),
            retention: "6 months".into(),
            dpa_reference: "DPA-1".into(),
        }
    }

    #[test]
    fn changes_show_what_widens() {
        let old = spec(Package::Small, &["A", "B"], &["DK"]);
        let new = spec(Package::Medium, &["A", "B", "C"], &["DK", "IE"]);
        let c = changes(Some(&old), &new);
        assert!(c.contains(&Change::Package {
            from: Package::Small,
            to: Package::Medium
        }));
        assert!(c.contains(&Change::SubProcessorAdded { name: "C".into() }));
        assert!(c.contains(&Change::LocationAdded {
            location: "IE".into()
        }));
        assert!(c.iter().all(Change::widens));
        assert!(changes(Some(&old), &old).is_empty());
    }

    #[test]
    fn requests_need_purpose_and_only_authorities_get_the_authority_package() {
        let mut s = spec(Package::Small, &["A"], &["DK"]);
        assert!(validate(&s, None).is_ok());
        s.purpose = "  ".into();
        assert_eq!(
            validate(&s, None).unwrap_err().code(),
            "SHARING_FIELD_REQUIRED"
        );
        let s = spec(Package::Authority, &[], &["DK"]);
        assert_eq!(
            validate(&s, None).unwrap_err().code(),
            "SHARING_AUTHORITY_ONLY"
        );
        let mut p = Provider {
            id: 1,
            name: "P".into(),
            cvr: "12345678".into(),
            address: String::new(),
            contact: "c".into(),
            security_contact: "s".into(),
            authority: false,
            created_at: 0,
        };
        assert!(validate(&s, Some(&p)).is_err());
        p.authority = true;
        assert!(validate(&s, Some(&p)).is_ok());
        let mut s = spec(Package::Small, &["A"], &["DK"]);
        s.sub_processors[0].cvr = "123".into();
        assert_eq!(
            validate(&s, None).unwrap_err().code(),
            "SHARING_CVR_INVALID"
        );
    }
}

/// One service as its institution's admin sees it: where it stands, and
/// the minimal-package listing (needs no decision, but is shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub client_id: String,
    pub agreement: Agreement,
    pub listed: Option<RequestRecord>,
}

/// Every service that asked the admin's institution, holds an approval
/// there or is blocked there, ordered by client id.
pub async fn overview(store: &dyn Store, admin: &InstitutionAdmin) -> Result<Vec<Standing>> {
    let number = admin.access().number();
    let requests = store.requests(None, Some(number)).await?;
    let mut ids: Vec<String> = requests.iter().map(|r| r.client_id.clone()).collect();
    ids.extend(
        store
            .blocks(Some(number))
            .await?
            .into_iter()
            .map(|b| b.client_id),
    );
    ids.sort();
    ids.dedup();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let agreement = agreement(store, &id, number).await?;
        let listed = requests
            .iter()
            .filter(|r| r.client_id == id && r.status == RequestStatus::Listed)
            .max_by_key(|r| r.id)
            .cloned();
        out.push(Standing {
            client_id: id,
            agreement,
            listed,
        });
    }
    Ok(out)
}

/// The full history of a service at the admin's institution, oldest first,
/// with every approval version.
pub async fn history_at(
    store: &dyn Store,
    admin: &InstitutionAdmin,
    client_id: &str,
) -> Result<(Vec<HistoryEntry>, Vec<Approval>)> {
    let number = admin.access().number();
    Ok((
        store.history(client_id, number).await?,
        store.approvals(client_id, number).await?,
    ))
}
