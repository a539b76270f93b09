//! What the lifecycle jobs and the person's rights need of the store: job
//! leases (one replica runs a job at a time), the candidates of each rule,
//! and the changes, each with its audit event in one transaction.

use crate::audit::NewEvent;
use crate::Result;
use async_trait::async_trait;
use serde::Serialize;
use time::{Date, OffsetDateTime};

/// A person a job would change (or changed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Affected {
    pub person_id: i64,
    pub user_id: String,
}

/// Everything stored about one person, for `person export`: the rows of
/// every table that refers to them, as JSON objects keyed by table name.
/// Blobs are hex; the CPR number is handed over still encrypted.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonData {
    pub person_id: i64,
    pub tables: serde_json::Map<String, serde_json::Value>,
    pub cpr_enc: Option<Vec<u8>>,
    /// The roster still delivers the person (not inactive).
    pub delivered: bool,
    pub erased: bool,
}

/// Tables (and the column naming the person) that hold a person's data;
/// `person export` reads each, `person erase` clears each.
pub const PERSON_TABLES: &[(&str, &str)] = &[
    ("persons", "id"),
    ("accounts", "person_id"),
    ("sessions", "person_id"),
    ("second_factors", "person_id"),
    ("recovery_codes", "person_id"),
    ("factor_ceremonies", "person_id"),
    ("right_grants", "person_id"),
    ("operator_grants", "person_id"),
    ("municipality_grants", "person_id"),
    ("login_cards", "person_id"),
    ("oidc_tokens", "person_id"),
    ("oidc_role_choices", "person_id"),
    ("provider_users", "person_id"),
    ("roles", "person_id"),
    ("memberships", "person_id"),
    ("contacts", "pupil_id"),
    ("contacts", "contact_id"),
    // The changes feed keeps the user id as the providers' deletion key.
    ("changes", "person_id"),
];

#[async_trait]
pub trait LifecycleStore: Send + Sync {
    /// Takes the lease of `job` for `holder` until `now + lease_s`, unless
    /// another holder's lease is still live or (when `min_interval_s > 0`)
    /// the job last ran less than `min_interval_s` ago. One conditional
    /// write, so two replicas never both get it. True when taken.
    async fn take_lease(
        &self,
        job: &str,
        holder: &str,
        now: i64,
        lease_s: i64,
        min_interval_s: i64,
    ) -> Result<bool>;
    /// Gives the lease back; `ran` records the run's time.
    async fn release_lease(&self, job: &str, holder: &str, now: i64, ran: bool) -> Result<()>;

    /// Open accounts of persons the roster delivers, last used (logged in,
    /// else password set, else made) before `before`, or before
    /// `before_external` when the person holds only external roles; never
    /// a person with special rights (an admin role or a granted right).
    async fn unused_accounts(&self, before: i64, before_external: i64) -> Result<Vec<Affected>>;
    /// Closes these accounts: no password, activation code, session,
    /// second factor or login card is left. A new password (activation)
    /// opens the account again.
    async fn close_accounts(&self, ids: &[i64], at: OffsetDateTime, event: NewEvent)
        -> Result<u64>;
    /// Persons inactive since before `before`, not yet archived.
    async fn archivable(&self, before: Date) -> Result<Vec<Affected>>;
    /// Archives inactive persons: only operators see them from now on.
    async fn archive_persons(
        &self,
        ids: &[i64],
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<u64>;
    /// Persons inactive since before `before`, not yet erased.
    async fn erasable(&self, before: Date) -> Result<Vec<Affected>>;
    /// Erases the personal data of these persons, skipping any the roster
    /// delivers; the row stays as a pseudonymous reference (its internal
    /// id, which audit events name), with the times it ended and was
    /// erased. Returns how many were erased.
    async fn erase_persons(&self, ids: &[i64], at: OffsetDateTime, event: NewEvent) -> Result<u64>;
    /// Everything held about one person (by internal id).
    async fn person_data(&self, person_id: i64) -> Result<Option<PersonData>>;
    /// The internal id of the person with this user id.
    async fn person_id(&self, user_id: &str) -> Result<Option<i64>>;
    /// Audit events naming the person (as subject or actor), oldest first.
    async fn person_audit(&self, person_id: i64) -> Result<Vec<crate::audit::Event>>;
}

/// Writes the number of rows a change touched into its audit event.
pub fn with_changed(mut event: NewEvent, changed: u64) -> NewEvent {
    if let Some(map) = event.details.as_object_mut() {
        map.insert("changed".into(), changed.into());
    }
    event
}
