//! "My data": what tilgang holds about a person, which services received
//! it (read from the audit log), and which services they may use; for a
//! contact person the same for each child they have custody of or an
//! access level for. Viewing is audited before anything is read.

use crate::audit::{actions, NewEvent};
use crate::sharing::agreement::Approval;
use crate::store::mydata::{ContactFact, GroupFact, PersonFacts, RoleFact};
use crate::store::Store;
use crate::{Clock, Result};
use serde::Serialize;
use serde_json::json;
use std::collections::hash_map::{Entry, HashMap};

/// The actions that mean a service received the person's data.
pub const RECEIVED: &[&str] = &[
    actions::OIDC_LOGIN,
    actions::OIDC_TOKEN_ISSUED,
    actions::OIDC_TOKEN_REFRESHED,
    actions::OIDC_USERINFO,
    actions::API_LOOKUP,
    actions::SHARING_EXPORTED,
    actions::API_CHANGES,
];

/// How many receipts are shown per person (newest first).
pub const RECEIPTS_MAX: usize = 500;

/// Everything, as the page shows it and the JSON download holds it.
#[derive(Debug, Clone, Serialize)]
pub struct MyData {
    /// RFC 3339, UTC.
    pub generated_at: String,
    pub you: PersonData,
    /// The children whose data this person may see.
    pub children: Vec<PersonData>,
    /// The services registered in tilgang. Licences do not exist yet, so a
    /// person may use every service their institution uses.
    pub services_available: Vec<ServiceInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PersonData {
    pub person: PersonFacts,
    pub roles: Vec<RoleFact>,
    pub groups: Vec<GroupFact>,
    /// For a pupil: their contact persons.
    pub contact_persons: Vec<ContactFact>,
    /// For a contact person: the pupils they are registered for (all, also
    /// those whose data they may not see).
    pub contact_for: Vec<ContactFact>,
    /// Which services received the data, and when, newest first.
    pub received_by: Vec<Receipt>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub client_id: String,
    /// The service's name, or the client id if it has been removed.
    pub service: String,
    /// The audit action (`oidc.login`, `oidc.token.issued`, …).
    pub action: String,
    /// RFC 3339, UTC.
    pub at: String,
    pub at_us: i64,
    /// The data package the service received, when the event says.
    pub package: Option<String>,
    /// The approvals (data access agreements) in force at the person's
    /// institutions when it happened; empty when none was (the minimal
    /// package needs none).
    pub approvals: Vec<ApprovalRef>,
}

/// Which institution's approval, which version of it, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalRef {
    pub institution_number: String,
    pub institution_name: String,
    pub version: i64,
    /// The day it was approved, ISO 8601.
    pub approved_on: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceInfo {
    pub client_id: String,
    pub name: String,
    pub package: String,
}

/// A contact person may see a child's data while the relation is active
/// and they have custody or an access level of at least 1.
pub fn may_see(c: &ContactFact) -> bool {
    c.ended_on.is_none() && (c.custody || c.access_level.is_some_and(|l| l >= 1))
}

fn rfc3339(at_us: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at_us.div_euclid(1_000_000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

async fn person_data(
    store: &dyn Store,
    facts: PersonFacts,
    names: &[ServiceInfo],
) -> Result<PersonData> {
    let id = facts.person_id;
    let roles = store.roles_of(id).await?;
    let mut received_by: Vec<Receipt> = store
        .events_about(id, RECEIVED, RECEIPTS_MAX)
        .await?
        .into_iter()
        .map(|e| {
            let d: serde_json::Value = serde_json::from_str(&e.details).unwrap_or_default();
            let client_id = d["client_id"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| e.actor.strip_prefix("service:").map(str::to_owned))
                .unwrap_or_default();
            let service = names
                .iter()
                .find(|s| s.client_id == client_id)
                .map(|s| s.name.clone())
                .unwrap_or_else(|| client_id.clone());
            Receipt {
                service,
                action: e.action,
                at: rfc3339(e.at_us),
                at_us: e.at_us,
                package: d["package"].as_str().map(str::to_owned),
                approvals: Vec::new(),
                client_id,
            }
        })
        .collect();
    approvals_in_force(store, &roles, &mut received_by).await?;
    Ok(PersonData {
        roles,
        groups: store.groups_of(id).await?,
        contact_persons: store.contacts_of_pupil(id).await?,
        contact_for: store.pupils_of_contact(id).await?,
        received_by,
        person: facts,
    })
}

/// Names, on each receipt, the approvals that were in force at the time at
/// the institutions the person belongs to (read once per service and
/// institution from the approval history, which keeps every version).
async fn approvals_in_force(
    store: &dyn Store,
    roles: &[RoleFact],
    receipts: &mut [Receipt],
) -> Result<()> {
    let mut institutions: Vec<(&str, &str)> = roles
        .iter()
        .map(|r| (r.institution_number.as_str(), r.institution_name.as_str()))
        .collect();
    institutions.sort_unstable();
    institutions.dedup();
    let mut history: HashMap<(String, String), Vec<Approval>> = HashMap::new();
    for r in receipts.iter_mut() {
        let at_s = r.at_us.div_euclid(1_000_000);
        for (number, name) in &institutions {
            let key = (r.client_id.clone(), (*number).to_owned());
            let versions = match history.entry(key) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(store.approvals(&r.client_id, number).await?),
            };
            if let Some(a) = versions
                .iter()
                .find(|a| a.approved_at <= at_s && a.ended_at.is_none_or(|end| at_s < end))
            {
                r.approvals.push(ApprovalRef {
                    institution_number: (*number).to_owned(),
                    institution_name: (*name).to_owned(),
                    version: a.version,
                    approved_on: day_of(a.approved_at),
                });
            }
        }
    }
    Ok(())
}

fn day_of(unix_s: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_s)
        .map(|t| t.date().to_string())
        .unwrap_or_default()
}

/// The person's data and their children's; `format` (`page` or `json`)
/// goes into the audit event, which names every person shown.
pub async fn my_data(
    store: &dyn Store,
    clock: &dyn Clock,
    person_id: i64,
    format: &str,
) -> Result<Option<MyData>> {
    let Some(me) = store.person_facts(person_id).await? else {
        return Ok(None);
    };
    let children: Vec<ContactFact> = store
        .pupils_of_contact(person_id)
        .await?
        .into_iter()
        .filter(may_see)
        .collect();
    let mut subjects = vec![person_id];
    for c in &children {
        if !subjects.contains(&c.other_id) {
            subjects.push(c.other_id);
        }
    }
    let at = clock.now();
    let ev = NewEvent::new(format!("person:{person_id}"), actions::MYDATA_VIEWED)
        .subjects(subjects.clone())
        .details(json!({ "format": format }));
    store.append_audit(at, vec![ev]).await?;

    let services_available: Vec<ServiceInfo> = store
        .services()
        .await?
        .into_iter()
        .map(|s| ServiceInfo {
            package: s.package.as_str().to_owned(),
            client_id: s.client_id,
            name: s.name,
        })
        .collect();
    let you = person_data(store, me, &services_available).await?;
    let mut out = Vec::new();
    for id in &subjects[1..] {
        if let Some(f) = store.person_facts(*id).await? {
            out.push(person_data(store, f, &services_available).await?);
        }
    }
    Ok(Some(MyData {
        generated_at: rfc3339((at.unix_timestamp_nanos() / 1_000) as i64),
        you,
        children: out,
        services_available,
    }))
}
