//! The rights of the person: an export of everything tilgang holds about
//! them, and erasure once the roster no longer delivers them. Both are
//! operator actions, audited.

use crate::audit::{actions, NewEvent};
use crate::crypto::DataKeys;
use crate::store::Store;
use crate::{Clock, Error, Result};
use serde_json::{json, Value};

/// Columns whose values are secrets or their hashes: the export says that
/// one is held, never the value (it would help nobody and harm if leaked).
const SECRET_COLUMNS: &[&str] = &[
    "password_hash",
    "activation_hash",
    "secret_enc",
    "credential",
    "credential_id",
    "user_handle",
    "code_hash",
    "id_hash",
    "key_hash",
    "token_hash",
    "state",
    "csrf",
    "cpr_hash",
    "cpr_enc",
];

/// Finds a person by user id, or by internal id (`#12` or `12`; erased
/// persons are found by it only).
pub async fn find(store: &dyn Store, id: &str) -> Result<i64> {
    if let Some(pid) = store.person_id(id).await? {
        return Ok(pid);
    }
    let internal = id.trim_start_matches('#').parse::<i64>().ok();
    if let Some(pid) = internal {
        if store.person_data(pid).await?.is_some() {
            return Ok(pid);
        }
    }
    Err(Error::NotFound(format!(
        "no person with user id or internal id {id}"
    )))
}

/// Everything held about a person as one JSON document; audited as
/// `person.exported`.
pub async fn export(
    store: &dyn Store,
    keys: &DataKeys,
    clock: &dyn Clock,
    person_id: i64,
    actor: &str,
) -> Result<Value> {
    let data = store
        .person_data(person_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("person #{person_id}")))?;
    let mut tables = data.tables;
    for rows in tables.values_mut() {
        for row in rows.as_array_mut().into_iter().flatten() {
            for (k, v) in row.as_object_mut().into_iter().flatten() {
                if SECRET_COLUMNS.contains(&k.as_str()) && !v.is_null() {
                    *v = json!("(held; not shown)");
                }
            }
        }
    }
    let cpr = match &data.cpr_enc {
        Some(blob) => Some(keys.decrypt_cpr(blob)?.expose().to_owned()),
        None => None,
    };
    let audit: Vec<Value> = store
        .person_audit(person_id)
        .await?
        .into_iter()
        .map(|e| {
            json!({
                "seq": e.seq, "at_us": e.at_us, "actor": e.actor, "action": e.action,
                "institution": e.institution,
                "details": serde_json::from_str::<Value>(&e.details).unwrap_or(Value::Null),
            })
        })
        .collect();
    let at = clock.now();
    let doc = json!({
        "format": "tilgang-person-export/1",
        "person_id": person_id,
        "exported_at": at.unix_timestamp(),
        "delivered_by_roster": data.delivered,
        "erased": data.erased,
        "cpr": cpr,
        "tables": tables,
        "audit_events": audit,
    });
    let ev = NewEvent::new(actor, actions::PERSON_EXPORTED)
        .subjects(vec![person_id])
        .details(json!({"tables": doc["tables"].as_object().map(|t| t.len()), "audit_events": doc["audit_events"].as_array().map(Vec::len)}));
    store.append_audit(at, vec![ev]).await?;
    Ok(doc)
}

/// What `erase` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Erased {
    Done,
    /// Erased before; nothing left to erase.
    Already,
}

/// Erases a person's personal data now (the right to erasure), refused
/// while the roster still delivers them: the school's system would only
/// deliver them again, and the roster is the school's record, not ours.
pub async fn erase(
    store: &dyn Store,
    clock: &dyn Clock,
    person_id: i64,
    actor: &str,
    reason: &str,
) -> Result<Erased> {
    let data = store
        .person_data(person_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("person #{person_id}")))?;
    if data.delivered {
        return Err(Error::Refused(format!(
            "person #{person_id} is still delivered by the roster of an institution; \
             erasure waits until the institution's system stops delivering them"
        )));
    }
    if data.erased {
        return Ok(Erased::Already);
    }
    let ev = NewEvent::new(actor, actions::PERSON_ERASED)
        .subjects(vec![person_id])
        .details(json!({"reason": reason, "rule": "explicit"}));
    let n = store.erase_persons(&[person_id], clock.now(), ev).await?;
    Ok(if n > 0 { Erased::Done } else { Erased::Already })
}
