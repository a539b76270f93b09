//! The store traits. Domain code talks to these only; the `store` crate
//! implements them for SQLite and PostgreSQL, and one test suite runs
//! against both. Imports run through an [`ImportTx`]: one institution, one
//! transaction, with primitive reads and batched writes that
//! [`crate::roster::apply`] sequences.

pub mod api;
pub mod changes;
pub mod export;
pub mod factors;
pub mod lifecycle;

use crate::audit::{Event, Head, NewEvent};
use crate::identity::account::FailureState;
use crate::identity::session::{NewSession, SessionRecord};
use crate::roster::{Group, InstitutionKind, Person, Role, RoleKind};
use crate::Result;
use async_trait::async_trait;
use serde::Serialize;
use time::{Date, OffsetDateTime};

pub mod mydata;
pub mod oidc;
pub mod portal;
pub mod reports;
pub mod sharing;
pub mod staff;

/// What a diff needs to know of a stored record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Existing {
    pub id: i64,
    pub digest: i64,
    /// Ended (for persons: inactive).
    pub ended: bool,
}

#[derive(Debug, Clone)]
pub struct InstitutionRow<'a> {
    pub number: &'a str,
    pub name: &'a str,
    pub kind: InstitutionKind,
    pub municipality_code: Option<&'a str>,
    pub source_system: Option<&'a str>,
    pub school_year: Option<&'a str>,
    pub digest: i64,
}

#[derive(Debug, Clone)]
pub struct PersonRow<'a> {
    pub person: &'a Person,
    /// AES-256-GCM ciphertext of the CPR number.
    pub cpr_enc: Option<Vec<u8>>,
    /// 64 bits of HMAC-SHA-256 of the CPR number, for look-ups.
    pub cpr_hash: Option<i64>,
    pub digest: i64,
}

/// The tables whose rows an import ends (sets an end date) or reopens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndTable {
    Groups,
    Roles,
    Memberships,
    Contacts,
}

/// One institution's import transaction. Dropping it without `commit`
/// rolls everything back.
#[async_trait]
pub trait ImportTx: Send {
    async fn institution(&mut self, number: &str) -> Result<Option<Existing>>;
    async fn insert_institution(
        &mut self,
        row: &InstitutionRow<'_>,
        now: OffsetDateTime,
    ) -> Result<i64>;
    async fn update_institution(
        &mut self,
        id: i64,
        row: &InstitutionRow<'_>,
        now: OffsetDateTime,
    ) -> Result<()>;
    /// The digest of the document the last full import applied, if no
    /// other write touched the institution's roster since.
    async fn import_digest(&mut self, institution: i64) -> Result<Option<i64>>;
    async fn set_import_digest(&mut self, institution: i64, digest: Option<i64>) -> Result<()>;

    /// Stored persons among these user ids, in any order.
    async fn persons(&mut self, user_ids: &[&str]) -> Result<Vec<(String, Existing)>>;
    /// Returns the new ids, in the order of `rows`.
    async fn insert_persons(
        &mut self,
        rows: &[PersonRow<'_>],
        now: OffsetDateTime,
    ) -> Result<Vec<i64>>;
    async fn update_persons(
        &mut self,
        rows: &[(i64, PersonRow<'_>)],
        now: OffsetDateTime,
    ) -> Result<()>;
    /// Sets or clears `inactive_since`.
    async fn set_inactive(&mut self, ids: &[i64], since: Option<Date>) -> Result<()>;
    /// Of these persons, those with no active role, membership or contact
    /// relation at any institution.
    async fn unlinked_persons(&mut self, ids: &[i64]) -> Result<Vec<i64>>;

    async fn groups(&mut self, institution: i64) -> Result<Vec<(String, Existing)>>;
    async fn insert_groups(
        &mut self,
        institution: i64,
        rows: &[(&Group, i64)],
        now: OffsetDateTime,
    ) -> Result<Vec<i64>>;
    /// Updates attributes and digest, and reopens the group.
    async fn update_groups(
        &mut self,
        rows: &[(i64, &Group, i64)],
        now: OffsetDateTime,
    ) -> Result<()>;

    /// Keyed by (person id, role).
    async fn roles(&mut self, institution: i64) -> Result<Vec<((i64, RoleKind), Existing)>>;
    async fn insert_roles(
        &mut self,
        institution: i64,
        rows: &[(i64, &Role, i64)],
        now: OffsetDateTime,
    ) -> Result<()>;
    async fn update_roles(&mut self, rows: &[(i64, &Role, i64)], now: OffsetDateTime)
        -> Result<()>;

    /// Keyed by (group id, person id).
    async fn memberships(&mut self, institution: i64) -> Result<Vec<((i64, i64), Existing)>>;
    async fn insert_memberships(&mut self, rows: &[(i64, i64)], now: OffsetDateTime) -> Result<()>;

    /// Keyed by (pupil id, contact id).
    async fn contacts(&mut self, institution: i64) -> Result<Vec<((i64, i64), Existing)>>;
    async fn insert_contacts(
        &mut self,
        institution: i64,
        rows: &[ContactRow],
        now: OffsetDateTime,
    ) -> Result<()>;
    async fn update_contacts(
        &mut self,
        rows: &[(i64, ContactRow)],
        now: OffsetDateTime,
    ) -> Result<()>;

    /// Sets an end date on rows (never deletes).
    async fn end_rows(&mut self, table: EndTable, ids: &[i64], on: Date) -> Result<()>;
    /// Clears the end date (the source delivers them again).
    async fn reopen_rows(&mut self, table: EndTable, ids: &[i64]) -> Result<()>;

    /// The chain head, locked until commit so appends stay in order across
    /// processes.
    async fn audit_head(&mut self) -> Result<Head>;
    /// Stores sealed events and moves the head to the last one.
    async fn insert_audit(&mut self, events: &[Event]) -> Result<()>;
    /// Appends rows to the changes feed, numbered in commit order (after
    /// `audit_head`: writers lock the audit head first, then the changes
    /// counter, so they never wait on each other in a cycle).
    async fn insert_changes(
        &mut self,
        rows: &[changes::NewChange],
        now: OffsetDateTime,
    ) -> Result<()>;

    async fn commit(self: Box<Self>) -> Result<()>;
}

#[derive(Debug, Clone)]
pub struct ContactRow {
    pub pupil: i64,
    pub contact: i64,
    pub relation: crate::roster::Relation,
    pub custody: bool,
    pub access_level: Option<u8>,
    pub digest: i64,
}

/// Row counts, for summaries and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub institutions: i64,
    pub persons: i64,
    pub active_persons: i64,
    pub roles: i64,
    pub groups: i64,
    pub memberships: i64,
    pub contacts: i64,
    pub audit_events: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstitutionInfo {
    pub number: String,
    pub name: String,
    pub kind: InstitutionKind,
    pub municipality_code: Option<String>,
    pub school_year: Option<String>,
    pub active_persons: i64,
}

/// A stored person as read back: CPR still encrypted.
#[derive(Debug, Clone)]
pub struct StoredPerson {
    pub id: i64,
    pub person: Person,
    pub cpr_enc: Option<Vec<u8>>,
    pub inactive_since: Option<Date>,
}

#[async_trait]
pub trait RosterStore: Send + Sync {
    async fn begin_import(&self) -> Result<Box<dyn ImportTx + '_>>;
    async fn institutions(&self) -> Result<Vec<InstitutionInfo>>;
    /// The institution's active roster, CPR numbers still encrypted
    /// (the caller decrypts what it may release).
    async fn institution_roster(
        &self,
        number: &str,
    ) -> Result<Option<(crate::roster::InstitutionRoster, Vec<StoredPerson>)>>;
    async fn counts(&self) -> Result<Counts>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends events for work that changes no other table (exports,
    /// audit searches, a service reading data). Group-committed: the
    /// events go, consecutive and in order, into one transaction with the
    /// other small writes waiting at the same moment; returns once that
    /// transaction committed. The entry point for an event per request at
    /// high rates.
    async fn append_audit(&self, at: OffsetDateTime, events: Vec<NewEvent>) -> Result<()>;
    async fn stored_head(&self) -> Result<Head>;
    /// Events with seq > `after`, ascending, at most `limit`.
    async fn audit_page(&self, after: i64, limit: usize) -> Result<Vec<Event>>;
    /// Events matching `query` within `scope`, newest first, at most
    /// `query.limit` (see `audit::search`, which audits the search).
    async fn audit_search(
        &self,
        scope: &crate::audit::search::Scope,
        query: &crate::audit::search::Query,
    ) -> Result<Vec<Event>>;
    /// The checkpoint signing key, if one was made.
    async fn audit_key(&self) -> Result<Option<crate::audit::checkpoint::AuditKey>>;
    /// Stores the signing key unless one exists already (the first wins),
    /// with its audit event.
    async fn insert_audit_key(
        &self,
        key: &crate::audit::checkpoint::AuditKey,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()>;
    /// Stores a checkpoint; one for a sequence number already signed is
    /// ignored.
    async fn add_checkpoint(&self, cp: &crate::audit::checkpoint::Checkpoint) -> Result<()>;
    async fn latest_checkpoint(&self) -> Result<Option<crate::audit::checkpoint::Checkpoint>>;
    /// The newest checkpoint signed before `at_us`.
    async fn checkpoint_before(
        &self,
        at_us: i64,
    ) -> Result<Option<crate::audit::checkpoint::Checkpoint>>;
    /// Retention: removes the events up to and including `through_seq` (a
    /// signed checkpoint, from which the chain stays verifiable) and writes
    /// `event` in the same transaction; returns how many were removed.
    async fn prune_audit(
        &self,
        through_seq: i64,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<u64>;
    /// The events up to and including `through_seq`, counted per action
    /// (what a retention cut there removes).
    async fn audit_counts_through(&self, through_seq: i64) -> Result<Vec<(String, u64)>>;
    /// How far retention has redacted `action`: every event of it up to
    /// this sequence number is redacted (or older than version 2, or
    /// gone). 0 when never.
    async fn redacted_through(&self, action: &str) -> Result<i64>;
    /// Version 2 events of `action` with `after < seq <= through`, not yet
    /// redacted: how many (`limit` none), or (with a limit) the content of
    /// the first `limit` of them cleared ([`crate::audit::Event::redact`],
    /// `redacted_at_us = at_us`) in one transaction that also moves
    /// [`redacted_through`](Self::redacted_through) past them (to
    /// `through` when fewer than `limit` were left). Returns how many, and
    /// where the redaction of `action` now stands.
    async fn redact_audit(
        &self,
        action: &str,
        after: i64,
        through: i64,
        at_us: i64,
        limit: Option<usize>,
    ) -> Result<(u64, i64)>;
    /// Checkpoints with seq > `after`, ascending, at most `limit`.
    async fn checkpoints(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<crate::audit::checkpoint::Checkpoint>>;
}

/// A report of applied migrations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Migrated {
    pub applied: Vec<String>,
    pub version: i64,
}

/// An account as login sees it: the person, whether the roster still
/// delivers them, and the account's state (defaults before the first use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub person_id: i64,
    pub user_id: String,
    pub given_name: String,
    pub family_name: String,
    /// The roster no longer delivers the person anywhere.
    pub inactive: bool,
    /// The person's active actor groups (from roles, and Kontaktperson for
    /// an active contact relation), without duplicates.
    pub actors: Vec<crate::roster::Actor>,
    /// The grade level of an active pupil role, if any.
    pub grade_level: Option<String>,
    pub password_hash: Option<String>,
    pub password_set_at: Option<i64>,
    pub failed_logins: i32,
    pub lockouts: i32,
    /// Unix seconds.
    pub locked_until: Option<i64>,
}

/// A pupil as their contact person's account page shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub given_name: String,
    pub family_name: String,
    pub institution: String,
    pub custody: bool,
}

/// Accounts and sessions. Times are Unix seconds; every change is written
/// with its audit events in one transaction.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// The person with this login name (user id) and their account state.
    async fn account(&self, user_id: &str) -> Result<Option<AccountRecord>>;
    /// The account whose activation code has this hash and has not expired.
    async fn account_by_activation(
        &self,
        code_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<AccountRecord>>;
    /// Stores a new activation code, replacing any earlier one.
    async fn set_activation(
        &self,
        person_id: i64,
        code_hash: &[u8; 32],
        expires_at: i64,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()>;
    /// Sets the password; clears the activation code, failures and lock,
    /// and ends every session of the person.
    async fn set_password(
        &self,
        person_id: i64,
        phc: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()>;
    /// Stores the failure state after a failed login.
    async fn record_failure(
        &self,
        person_id: i64,
        state: FailureState,
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> Result<()>;
    /// Clears failures and any lock.
    async fn unlock(&self, person_id: i64, at: OffsetDateTime, event: NewEvent) -> Result<()>;
    /// A successful login: failures cleared, an upgraded hash stored when
    /// given, the session created.
    async fn record_login(
        &self,
        person_id: i64,
        rehash: Option<&str>,
        session: &NewSession,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()>;
    async fn session(&self, id_hash: &[u8; 32]) -> Result<Option<SessionRecord>>;
    async fn touch_session(&self, id_hash: &[u8; 32], now: i64) -> Result<()>;
    async fn end_session(
        &self,
        id_hash: &[u8; 32],
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()>;
    /// The person's sessions, newest first.
    async fn sessions_of(&self, person_id: i64) -> Result<Vec<SessionRecord>>;
    /// The pupils this person is an active contact person of, by name.
    async fn children_of(&self, person_id: i64) -> Result<Vec<Child>>;
    /// Counts one attempt in each bucket at `minute` and returns, per
    /// bucket, the attempts in the `window` minutes ending there; older
    /// minutes are dropped. One transaction for all buckets.
    async fn count_attempts(
        &self,
        buckets: &[String],
        minute: i64,
        window: i64,
    ) -> Result<Vec<i64>>;
}

/// Everything a tilgang server needs of its database.
#[async_trait]
pub trait Store:
    RosterStore
    + AuditStore
    + IdentityStore
    + factors::FactorStore
    + staff::StaffStore
    + reports::ReportStore
    + mydata::MyDataStore
    + oidc::OidcStore
    + sharing::SharingStore
    + portal::PortalStore
    + lifecycle::LifecycleStore
    + changes::ChangesStore
    + export::ExportStore
    + api::ApiStore
{
    fn dialect(&self) -> &'static str;
    async fn migrate(&self) -> Result<Migrated>;
    /// Cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<()>;
    /// Refreshes the query planner's statistics after bulk changes, so that
    /// look-ups keep their indexes as tables grow from empty.
    async fn refresh_statistics(&self) -> Result<()>;
}
