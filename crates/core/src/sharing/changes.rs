//! The changes feed a service reads (`GET /api/v1/changes?since=CURSOR`):
//! created, updated, ended and deleted roster records of the institutions
//! that approved it for export, in commit order, resumable by an opaque
//! cursor. Writers add the rows in the transaction of their change
//! (`roster::apply`, the lifecycle's erasure); this module only reads.
//!
//! A service approved for export at an institution sees all its changes
//! from the approval in force (or the unbroken chain of versions it
//! superseded) on: a provider starts with an export, then follows the
//! feed. Created and updated records of persons honour the approval's
//! actor and grade filters; ends and deletions reach every approved
//! service of the institution, whatever the filters say now, because an
//! earlier version may have let the person through and the provider must
//! still delete them. A service that receives data only at login (the
//! minimal package it is listed with, or a lookup-only approval) sees the
//! ends and deletions of persons from then on, named as its login `sub`
//! (pairwise for the minimal package): enough to keep its retention
//! promise, nothing more.

use crate::audit::{actions, NewEvent};
use crate::oidc::claims::subject;
use crate::sharing::agreement::{self, Approval, RequestStatus};
use crate::sharing::package::Field;
use crate::sharing::policy::{self, Channel, PersonFacts, Reason, Standing, View};
use crate::store::changes::{ChangeKind, ChangeOp, StoredChange};
use crate::store::Store;
use crate::{Clock, Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeSet, HashMap};

/// The most changes one page holds.
pub const MAX_LIMIT: usize = 1000;

/// One change as the service sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Change {
    pub op: ChangeOp,
    pub kind: ChangeKind,
    /// The institution number.
    pub institution: String,
    /// The record's own key: the group id (group, membership) or the role
    /// name (role).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// The person as this service knows them: the user id where the
    /// approval releases it, the pairwise subject otherwise (as OIDC's
    /// `sub`). For a contact relation, the contact person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// The pupil of a contact relation, named the same way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pupil: Option<String>,
    /// When it was written, Unix seconds.
    pub at: i64,
}

/// One page of the feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Page {
    pub changes: Vec<Change>,
    /// Where the next read starts (also when this page is empty).
    pub next_cursor: String,
    /// More changes are waiting: read again at once with `next_cursor`.
    pub has_more: bool,
}

/// The cursor after `seq`, opaque to the service.
pub fn encode_cursor(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("c1.{seq}"))
}

/// The seq a cursor stands after; anything tilgang did not hand out is
/// `CHANGES_CURSOR_INVALID`.
pub fn decode_cursor(cursor: &str) -> Result<i64> {
    let bad = bad_cursor;
    let raw = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let text = std::str::from_utf8(&raw).map_err(|_| bad())?;
    text.strip_prefix("c1.")
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(bad)
}

/// A cursor from before the feed's retention cut: rows it would read next
/// are gone.
pub fn expired_cursor() -> Error {
    Error::Gone {
        code: "CHANGES_CURSOR_EXPIRED",
        message: "the cursor is older than the changes feed keeps (changes_retention_days); \
                  do a full export of each institution and start again from the cursor the \
                  first read without `since` gives"
            .into(),
    }
}

fn bad_cursor() -> Error {
    Error::invalid(
        "CHANGES_CURSOR_INVALID",
        "the cursor is not one this feed handed out; start again without `since` \
         (after a fresh export) or use the last `next_cursor` received",
    )
}

/// What the feed needs of one approved institution.
struct Approved {
    view: View,
    /// Changes before this (Unix seconds) predate the approval.
    from: i64,
    /// Only ends and deletions of persons (data flows at login only).
    ends_only: bool,
}

/// When the service's unbroken approval at an institution began: the
/// version in force, or the first of the versions it superseded.
fn approved_from(versions: &[Approval], current: &Approval) -> i64 {
    let mut from = current.approved_at;
    let mut older: Vec<&Approval> = versions
        .iter()
        .filter(|a| a.version < current.version)
        .collect();
    older.sort_by_key(|a| std::cmp::Reverse(a.version));
    for a in older {
        if a.end_reason.as_deref() == Some("superseded") {
            from = a.approved_at;
        } else {
            break;
        }
    }
    from
}

/// The institutions where `client_id` receives data now (approved for
/// export; or at login only: listed, or approved for lookup), with their
/// compiled views. Blocked institutions are left out.
async fn approved(store: &dyn Store, client_id: &str) -> Result<HashMap<String, Approved>> {
    let authority = agreement::provider_of(store, client_id)
        .await?
        .is_some_and(|p| p.authority);
    // The earliest minimal-package listing per institution.
    let mut listed: HashMap<String, Option<i64>> = HashMap::new();
    for r in store.requests(Some(client_id), None).await? {
        let at = listed.entry(r.institution).or_insert(None);
        if r.status == RequestStatus::Listed {
            *at = Some(at.map_or(r.created_at, |t| t.min(r.created_at)));
        }
    }
    let mut out = HashMap::new();
    for (number, listed_at) in listed {
        let a = agreement::agreement(store, client_id, &number).await?;
        let standing = Standing::of(&number, &a, authority);
        let export = policy::compile(&standing, Channel::Export);
        let lookup = policy::compile(&standing, Channel::Lookup);
        let found = match &a.approval {
            Some(current) if export.denied().is_none() => {
                let versions = store.approvals(client_id, &number).await?;
                Some((export, approved_from(&versions, current), false))
            }
            _ if lookup.denied().is_some() => None,
            Some(current) => {
                let versions = store.approvals(client_id, &number).await?;
                Some((lookup, approved_from(&versions, current), true))
            }
            None => listed_at.map(|at| (lookup, at, true)),
        };
        if let Some((view, from, ends_only)) = found {
            out.insert(
                number,
                Approved {
                    view,
                    from,
                    ends_only,
                },
            );
        }
    }
    Ok(out)
}

/// Whether the approval's filters keep this change from the service.
fn filtered(a: &Approved, c: &StoredChange, today: i32) -> bool {
    let ch = &c.change;
    let end = matches!(ch.op, ChangeOp::Ended | ChangeOp::Deleted);
    if a.ends_only {
        return !(end && ch.kind == ChangeKind::Person);
    }
    if end || ch.actors == 0 {
        return false;
    }
    let facts = PersonFacts {
        institution: policy::institution_key(&ch.institution),
        actors: ch.actors,
        grade: ch.grade,
        protected: false,
        until: i32::MAX,
    };
    matches!(
        policy::decide(&a.view, &facts, Field::UserId, today).reason,
        Reason::ActorFiltered | Reason::GradeFiltered
    )
}

/// The next page of changes for `client_id` after `cursor` (`None`: from
/// the start), at most `limit` (1 to [`MAX_LIMIT`]). A page that names
/// persons is audited as `api.changes` (actor `service:<client_id>`,
/// subjects the persons' internal ids) before it is returned; an empty
/// poll releases nothing and writes nothing.
pub async fn changes_since(
    store: &dyn Store,
    client_id: &str,
    cursor: Option<&str>,
    limit: usize,
    clock: &dyn Clock,
) -> Result<Page> {
    let after = match cursor {
        Some(c) => decode_cursor(c)?,
        None => 0,
    };
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::invalid(
            "CHANGES_LIMIT_INVALID",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let service = store
        .service(client_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("service {client_id}")))?;
    // The head is read before the rows: every row up to it has committed
    // (writers take seqs under the head's row lock), so a page that ends
    // the feed may move the cursor to it, and an idle service's cursor
    // keeps up with the feed instead of falling behind its retention.
    let head = store.changes_head().await?;
    if after > head {
        return Err(bad_cursor());
    }
    let approved = approved(store, client_id).await?;
    let numbers: Vec<String> = approved.keys().cloned().collect();
    let mut rows = store.changes_after(after, &numbers, limit + 1).await?;
    // Read after the rows: a retention cut that removed any of the rows
    // after the cursor shows here, and the read fails rather than skip.
    if cursor.is_some() && after < store.changes_pruned_through().await? {
        return Err(expired_cursor());
    }
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    let now = clock.now();
    let today = policy::day(now.date());
    let mut next = after;
    let mut out = Vec::with_capacity(rows.len());
    let mut subjects = BTreeSet::new();
    for c in rows {
        next = c.seq;
        let Some(a) = approved.get(&c.change.institution) else {
            continue;
        };
        if c.at < a.from || filtered(a, &c, today) {
            continue;
        }
        let fields = a.view.fields();
        let name = |uid: &Option<String>| uid.as_deref().map(|u| subject(&service, fields, u));
        subjects.extend(c.change.person_id);
        subjects.extend(c.change.pupil_id);
        out.push(Change {
            person: name(&c.change.user_id),
            pupil: name(&c.change.pupil_user_id),
            op: c.change.op,
            kind: c.change.kind,
            institution: c.change.institution,
            record: c.change.record,
            at: c.at,
        });
    }
    if !out.is_empty() {
        let institutions: BTreeSet<&str> = out.iter().map(|c| c.institution.as_str()).collect();
        let mut ev = NewEvent::new(format!("service:{client_id}"), actions::API_CHANGES)
            .subjects(subjects.into_iter().collect())
            .details(json!({
                "client_id": client_id,
                "after": after,
                "through": next,
                "changes": out.len(),
                "institutions": institutions,
            }));
        if let [only] = institutions.iter().collect::<Vec<_>>()[..] {
            ev = ev.institution((*only).to_owned());
        }
        store.append_audit(now, vec![ev]).await?;
    }
    if !has_more {
        next = next.max(head);
    }
    Ok(Page {
        changes: out,
        next_cursor: encode_cursor(next),
        has_more,
    })
}
