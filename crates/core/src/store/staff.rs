//! What staff pages and login cards need of the database: a person's
//! standing as an employee per institution, an institution's pupils and
//! employees (one query each), explicit right grants, and login cards.
//! Every change is written with its audit events in one transaction.

use crate::audit::NewEvent;
use crate::roster::RoleKind;
use crate::store::AccountRecord;
use crate::Result;
use async_trait::async_trait;
use time::OffsetDateTime;

/// One institution where a person holds an active employee role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffStanding {
    pub institution_id: i64,
    pub number: String,
    pub name: String,
    /// The person's active employee roles there.
    pub roles: Vec<RoleKind>,
    /// Rights granted explicitly there, by name.
    pub granted: Vec<String>,
}

/// An institution of a municipality where a person holds a granted
/// municipality right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MunicipalInstitution {
    pub municipality_code: String,
    pub institution_id: i64,
    pub number: String,
    pub name: String,
}

/// An active pupil of an institution, as the staff page lists them. Names
/// are the alias names for a protected person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PupilRow {
    pub person_id: i64,
    pub user_id: String,
    pub given_name: String,
    pub family_name: String,
    /// The main group (class): its id in the source system and its name.
    pub class_id: Option<String>,
    pub class: Option<String>,
    pub has_password: bool,
    /// Unix seconds.
    pub locked_until: Option<i64>,
    pub has_card: bool,
}

/// A former person of an institution (inactive, neither archived nor
/// erased), for its admins' "former persons" page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormerRow {
    pub person_id: i64,
    pub user_id: String,
    /// Alias names for protected persons.
    pub given_name: String,
    pub family_name: String,
    /// The actor groups they had there (roles, and Kontaktperson for a
    /// contact relation), as the roster names them, sorted.
    pub actors: Vec<String>,
    pub inactive_since: Option<time::Date>,
    /// The last end date of their roles and relations there.
    pub ended_on: Option<time::Date>,
    /// The account was closed for disuse.
    pub closed: bool,
}

/// An active employee of an institution, for its admins' page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmployeeRow {
    pub person_id: i64,
    pub user_id: String,
    pub given_name: String,
    pub family_name: String,
    pub roles: Vec<RoleKind>,
    /// Rights granted explicitly at this institution, by name.
    pub granted: Vec<String>,
    /// Unix seconds.
    pub locked_until: Option<i64>,
}

#[async_trait]
pub trait StaffStore: Send + Sync {
    /// The institutions where the person (if active) holds an active
    /// employee role, with those roles and the rights granted there.
    async fn staff_standing(&self, person_id: i64) -> Result<Vec<StaffStanding>>;
    /// The institution's active pupils (persons with an active pupil role
    /// there), or only the one with this user id; any order.
    async fn institution_pupils(
        &self,
        institution_id: i64,
        user_id: Option<&str>,
    ) -> Result<Vec<PupilRow>>;
    /// The institution's active employees, or only the one with this user
    /// id; any order.
    async fn institution_employees(
        &self,
        institution_id: i64,
        user_id: Option<&str>,
    ) -> Result<Vec<EmployeeRow>>;
    /// The person with this user id if they are active and belong to the
    /// institution: an active role there, or an active contact relation
    /// to one of its pupils.
    async fn institution_member(&self, institution_id: i64, user_id: &str) -> Result<Option<i64>>;
    /// The institution's former persons: inactive, not archived, not
    /// erased, with a role or a contact relation there; by family name,
    /// given name and id; `limit` of them from `offset`.
    async fn former_persons(
        &self,
        institution_id: i64,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<FormerRow>>;
    /// Grants a right at an institution (replacing an earlier grant of
    /// it); `granted_by` is `None` for an operator (the CLI).
    #[allow(clippy::too_many_arguments)]
    async fn grant_right(
        &self,
        institution_id: i64,
        person_id: i64,
        right: &str,
        granted_by: Option<i64>,
        reason: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()>;
    /// Removes a grant; false (and nothing written) when there was none.
    async fn revoke_right(
        &self,
        institution_id: i64,
        person_id: i64,
        right: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool>;
    /// The institutions of every municipality where the person holds
    /// `right` by a grant, while the person is active and holds an active
    /// employee role somewhere; by municipality code and number.
    async fn municipality_institutions(
        &self,
        person_id: i64,
        right: &str,
    ) -> Result<Vec<MunicipalInstitution>>;
    /// Grants a right for a municipality (replacing an earlier grant of
    /// it); only operators grant these, `granted_by` is their actor.
    #[allow(clippy::too_many_arguments)]
    async fn grant_municipality_right(
        &self,
        municipality_code: &str,
        person_id: i64,
        right: &str,
        granted_by: &str,
        reason: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()>;
    /// Removes a municipality grant; false (and nothing written) when there
    /// was none.
    async fn revoke_municipality_right(
        &self,
        municipality_code: &str,
        person_id: i64,
        right: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool>;
    /// Stores a new card per person (hash of its code), replacing any
    /// earlier card and ending the sessions cards opened for them, all in
    /// one transaction with the events.
    async fn issue_cards(
        &self,
        cards: &[(i64, [u8; 32])],
        issued_by: &str,
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> Result<()>;
    /// Removes the person's card and ends the sessions cards opened for
    /// them; false (and nothing written) when there was no card.
    async fn revoke_card(
        &self,
        person_id: i64,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool>;
    /// The account whose live card has this code hash.
    async fn account_by_card(&self, code_hash: &[u8; 32]) -> Result<Option<AccountRecord>>;
}
