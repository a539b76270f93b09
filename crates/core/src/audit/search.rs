//! Searching the audit log: who may see which events (the scope), the
//! filters, keyset pagination (newest first), and the rule that every
//! search is itself an audit event, written before the results are shown.

use super::{actions, Event, NewEvent};
use crate::store::Store;
use crate::{Clock, Result};
use serde::Serialize;
use serde_json::json;

/// The most events one page may hold.
pub const MAX_LIMIT: usize = 500;

/// Which events a searcher may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Scope {
    /// An operator (the CLI): every event.
    All,
    /// Institution admins: events about these institutions (by number),
    /// and events tied to no institution whose subjects hold, or held, a
    /// role or a contact relation at one of them. Events tied to another
    /// institution stay hidden even when they name the same person.
    Institutions(Vec<String>),
}

/// The filters; every one is optional and they combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Query {
    /// Internal person id among the event's subjects.
    pub person: Option<i64>,
    /// A service's client id: events it caused (`service:<id>`) or that
    /// name it (`details.client_id`, e.g. a login to it).
    pub service: Option<String>,
    pub action: Option<String>,
    /// Microseconds since the epoch, inclusive.
    pub from_us: Option<i64>,
    /// Microseconds since the epoch, exclusive.
    pub to_us: Option<i64>,
    pub institution: Option<String>,
    /// Keyset cursor: only events with a smaller sequence number (the last
    /// one of the previous page).
    pub after: Option<i64>,
    pub limit: usize,
}

/// One page of results, newest first, and the cursor for the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page {
    pub events: Vec<Event>,
    pub next: Option<i64>,
}

/// Runs a search for `actor` within `scope`. The search (its filters, not
/// its results) is audited first, in its own transaction: a search that
/// cannot be recorded is not run.
pub async fn search(
    store: &dyn Store,
    clock: &dyn Clock,
    actor: &str,
    scope: &Scope,
    query: &Query,
) -> Result<Page> {
    search_in(store, clock, actor, scope, query, None).await
}

/// [`search`], the audit event naming the municipality searched (if any).
async fn search_in(
    store: &dyn Store,
    clock: &dyn Clock,
    actor: &str,
    scope: &Scope,
    query: &Query,
    municipality: Option<&str>,
) -> Result<Page> {
    let mut q = query.clone();
    q.limit = q.limit.clamp(1, MAX_LIMIT);
    let mut ev = NewEvent::new(actor, actions::AUDIT_SEARCH).details(json!({
        "scope": match scope { Scope::All => json!("all"), Scope::Institutions(n) => json!(n) },
        "filters": {
            "person": q.person, "service": q.service, "action": q.action,
            "from_us": q.from_us, "to_us": q.to_us, "institution": q.institution,
            "after": q.after, "limit": q.limit,
        },
    }));
    if let (Some(code), Some(d)) = (municipality, ev.details.as_object_mut()) {
        d.insert("municipality".into(), json!(code));
    }
    if let Scope::Institutions(n) = scope {
        if n.len() == 1 {
            ev = ev.institution(n[0].clone());
        }
    }
    if let Some(p) = q.person {
        ev = ev.subjects(vec![p]);
    }
    store.append_audit(clock.now(), vec![ev]).await?;
    // One more than asked tells whether there is a next page.
    let mut want = q.clone();
    want.limit += 1;
    let mut events = store.audit_search(scope, &want).await?;
    let next = if events.len() > q.limit {
        events.truncate(q.limit);
        events.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(Page { events, next })
}

/// An institution admin's search: their institution's events only.
pub async fn institution_search(
    store: &dyn Store,
    clock: &dyn Clock,
    cap: &crate::identity::rights::InstitutionAdmin,
    query: &Query,
) -> Result<Page> {
    let a = cap.access();
    let scope = Scope::Institutions(vec![a.number().to_owned()]);
    search(store, clock, &a.actor(), &scope, query).await
}

/// A municipality admin's search: the events of the municipality's
/// institutions, or of one of them (`institution`); an institution outside
/// the municipality is not found.
pub async fn municipality_search(
    store: &dyn Store,
    clock: &dyn Clock,
    cap: &crate::identity::rights::MunicipalityAdmin,
    institution: Option<&str>,
    query: &Query,
) -> Result<Page> {
    let numbers: Vec<String> = match institution {
        Some(n) if cap.covers(n) => vec![n.to_owned()],
        Some(n) => return Err(crate::Error::UnknownInstitution(n.to_owned())),
        None => cap
            .institutions()
            .iter()
            .map(|a| a.number().to_owned())
            .collect(),
    };
    let scope = Scope::Institutions(numbers);
    search_in(
        store,
        clock,
        &cap.actor_ref(),
        &scope,
        query,
        Some(cap.code()),
    )
    .await
}
