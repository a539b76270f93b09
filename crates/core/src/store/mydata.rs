//! What the "my data" page reads: a person's roster record, roles, groups
//! and contact relations, and the audit events that show which services
//! received their data. Plain rows; `identity::mydata` assembles them.

use crate::audit::Event;
use crate::Result;
use async_trait::async_trait;
use serde::Serialize;

/// The person's roster record. The CPR number is never read here: only
/// whether one is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonFacts {
    pub person_id: i64,
    pub user_id: String,
    pub given_name: String,
    pub family_name: String,
    pub birth_date: Option<String>,
    pub gender: Option<String>,
    pub email: Option<String>,
    pub phones: Vec<crate::roster::Phone>,
    pub address: Option<crate::roster::Address>,
    pub has_cpr: bool,
    pub protected: bool,
    pub source_system: Option<String>,
    pub inactive_since: Option<String>,
}

/// One role at one institution, ended or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleFact {
    pub institution_number: String,
    pub institution_name: String,
    pub role: String,
    pub grade_level: Option<String>,
    pub student_number: Option<String>,
    pub main_group: Option<String>,
    pub ended_on: Option<String>,
}

/// One group membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupFact {
    pub institution_name: String,
    pub name: String,
    pub kind: String,
    pub ended_on: Option<String>,
}

/// A contact relation seen from one side: `other` is the contact person
/// (for a pupil) or the pupil (for a contact person).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactFact {
    pub institution_name: String,
    pub other_id: i64,
    pub other_user_id: String,
    pub other_given_name: String,
    pub other_family_name: String,
    pub relation: String,
    pub custody: bool,
    pub access_level: Option<i64>,
    pub ended_on: Option<String>,
}

#[async_trait]
pub trait MyDataStore: Send + Sync {
    async fn person_facts(&self, person_id: i64) -> Result<Option<PersonFacts>>;
    async fn roles_of(&self, person_id: i64) -> Result<Vec<RoleFact>>;
    async fn groups_of(&self, person_id: i64) -> Result<Vec<GroupFact>>;
    /// The pupil's contact persons.
    async fn contacts_of_pupil(&self, person_id: i64) -> Result<Vec<ContactFact>>;
    /// The contact person's pupils (children).
    async fn pupils_of_contact(&self, person_id: i64) -> Result<Vec<ContactFact>>;
    /// Events naming the person as a subject with one of `actions`, newest
    /// first, at most `limit`.
    async fn events_about(
        &self,
        person_id: i64,
        actions: &[&str],
        limit: usize,
    ) -> Result<Vec<Event>>;
}
