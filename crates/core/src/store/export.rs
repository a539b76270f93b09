//! What an export reads of the store: an institution's header and groups,
//! and its persons page by page in id order (keyset), each with their
//! active roles, group memberships and contact relations there, so an
//! export holds one page in memory whatever the institution's size.

use crate::roster::{ContactRelation, Group, Institution, Person, Role};
use crate::Result;
use async_trait::async_trait;
use time::Date;

/// The institution an export is of, and which import its roster is from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportInstitution {
    /// Internal id, for [`ExportStore::export_page`].
    pub id: i64,
    pub institution: Institution,
    pub source_system: Option<String>,
    pub school_year: Option<String>,
    /// The digest of the document the last full import applied (none when
    /// another write changed the roster since).
    pub import_digest: Option<i64>,
    /// When an import last changed the institution's row (Unix seconds).
    pub updated_at: i64,
}

/// A group membership of a person, with its end date if it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportMembership {
    /// The group's id in the source system.
    pub group: String,
    pub ended_on: Option<Date>,
}

/// One person of an institution as an export reads them: CPR still
/// encrypted; roles active at the institution; memberships in its active
/// groups (ended ones too, with their date: the caller leaves them out);
/// active contact relations there where the person is pupil or contact.
#[derive(Debug, Clone)]
pub struct ExportPerson {
    /// Internal id: the keyset cursor and the audit subject.
    pub id: i64,
    pub person: Person,
    pub cpr_enc: Option<Vec<u8>>,
    pub roles: Vec<Role>,
    pub memberships: Vec<ExportMembership>,
    pub contacts: Vec<ContactRelation>,
}

#[async_trait]
pub trait ExportStore: Send + Sync {
    async fn export_institution(&self, number: &str) -> Result<Option<ExportInstitution>>;
    /// The institution's active groups, by source id.
    async fn export_groups(&self, institution_id: i64) -> Result<Vec<Group>>;
    /// Persons with an active role or an active contact relation (as the
    /// contact) at the institution and an id above `after`, ascending by
    /// id, at most `limit`.
    async fn export_page(
        &self,
        institution_id: i64,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ExportPerson>>;
    /// One person at the institution as [`ExportStore::export_page`]
    /// reads them (the lookups use it); `None` when they hold no active
    /// role or contact relation there.
    async fn export_person(
        &self,
        institution_id: i64,
        person_id: i64,
    ) -> Result<Option<ExportPerson>> {
        let page = self
            .export_page(institution_id, person_id.saturating_sub(1), 1)
            .await?;
        Ok(page.into_iter().find(|p| p.id == person_id))
    }
}
