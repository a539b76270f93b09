//! What the changes feed needs of the store: the rows writers add in the
//! transaction of their change (through [`crate::store::ImportTx`] or the
//! lifecycle's erase), and a reader's page after a cursor.

use crate::Result;
use async_trait::async_trait;

/// What kind of roster record changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Person,
    Membership,
    Role,
    Group,
    Contact,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Person => "person",
            ChangeKind::Membership => "membership",
            ChangeKind::Role => "role",
            ChangeKind::Group => "group",
            ChangeKind::Contact => "contact",
        }
    }
    pub fn parse(s: &str) -> Option<ChangeKind> {
        [
            ChangeKind::Person,
            ChangeKind::Membership,
            ChangeKind::Role,
            ChangeKind::Group,
            ChangeKind::Contact,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// What happened to it. A record delivered again after it ended is
/// `created` again: for the provider it reappears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    Created,
    Updated,
    /// The roster stopped delivering it (an end date): the person is
    /// inactive from now on.
    Ended,
    /// The personal data was erased: the provider deletes its copy.
    Deleted,
}

impl ChangeOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Created => "created",
            ChangeOp::Updated => "updated",
            ChangeOp::Ended => "ended",
            ChangeOp::Deleted => "deleted",
        }
    }
    pub fn parse(s: &str) -> Option<ChangeOp> {
        [
            ChangeOp::Created,
            ChangeOp::Updated,
            ChangeOp::Ended,
            ChangeOp::Deleted,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One change as a writer hands it to the store. The store fills the user
/// ids from `persons` when they are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChange {
    pub institution: String,
    pub kind: ChangeKind,
    pub op: ChangeOp,
    /// The record's own roster key, where it has one beside the persons:
    /// the group id (group, membership) or the role name (role).
    pub record: Option<String>,
    /// The person (for a contact relation: the contact person).
    pub person_id: Option<i64>,
    pub user_id: Option<String>,
    /// The pupil of a contact relation.
    pub pupil_id: Option<i64>,
    pub pupil_user_id: Option<String>,
    /// `sharing::policy` actor bits of the person at the institution;
    /// 0 when the record names no person.
    pub actors: u8,
    /// `sharing::policy::grade_index` of a pupil's grade level.
    pub grade: u8,
}

impl NewChange {
    /// A person's erasure at one institution.
    pub fn deleted(institution: String, person_id: i64, user_id: String) -> NewChange {
        NewChange {
            institution,
            kind: ChangeKind::Person,
            op: ChangeOp::Deleted,
            record: None,
            person_id: Some(person_id),
            user_id: Some(user_id),
            pupil_id: None,
            pupil_user_id: None,
            actors: 0,
            grade: crate::sharing::policy::NO_GRADE,
        }
    }
}

/// A stored change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChange {
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    pub change: NewChange,
}

#[async_trait]
pub trait ChangesStore: Send + Sync {
    /// Changes with seq > `after` at these institutions, ascending, at
    /// most `limit`.
    async fn changes_after(
        &self,
        after: i64,
        institutions: &[String],
        limit: usize,
    ) -> Result<Vec<StoredChange>>;
    /// The highest seq written (0 when none).
    async fn changes_head(&self) -> Result<i64>;
    /// Retention: every row with seq up to this was removed (0: none). A
    /// cursor before it may have missed rows.
    async fn changes_pruned_through(&self) -> Result<i64>;
    /// The newest row written before `before` (Unix seconds) and how many
    /// rows there are up to it: what a retention cut there removes.
    async fn changes_before(&self, before: i64) -> Result<Option<(i64, u64)>>;
    /// Removes the oldest rows up to `through`, at most `limit` of them,
    /// and moves [`changes_pruned_through`](Self::changes_pruned_through)
    /// past them, in one transaction; returns how many went.
    async fn prune_changes(&self, through: i64, limit: usize) -> Result<u64>;
}
