//! What sharing keeps: providers, the link of a service to its provider,
//! data access requests, approvals (versioned), blocks, a history per
//! service and institution, and licences. Every write stores its audit
//! events in the same transaction, and a history row for each event that
//! names a service and an institution ([`history_of`]).

use crate::audit::NewEvent;
use crate::sharing::agreement::{
    Approval, Block, HistoryEntry, NewProvider, NewRequest, Provider, RequestRecord, ServiceLink,
};
use crate::sharing::licence::{Licence, NewLicence};
use crate::Result;
use async_trait::async_trait;
use time::OffsetDateTime;

/// A history row: (service, institution, actor, action, details as JSON).
pub type HistoryRow = (String, String, String, String, String);

/// The history rows a batch of events leaves: one per event whose
/// details name a `service` and that concerns an institution.
pub fn history_of(events: &[NewEvent]) -> Vec<HistoryRow> {
    events
        .iter()
        .filter_map(|e| {
            let service = e.details.get("service")?.as_str()?.to_owned();
            let institution = e.institution.clone()?;
            Some((
                service,
                institution,
                e.actor.clone(),
                e.action.clone(),
                e.details.to_string(),
            ))
        })
        .collect()
}

/// What a decision on a pending request does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Ends the current approval (if any) and stores the request as the
    /// next version.
    Approve,
    Reject {
        reason: String,
    },
}

#[async_trait]
pub trait SharingStore: Send + Sync {
    async fn add_provider(
        &self,
        p: &NewProvider,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<i64>;
    async fn providers(&self) -> Result<Vec<Provider>>;
    /// False when there is no such provider.
    async fn set_provider_authority(
        &self,
        id: i64,
        authority: bool,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool>;
    /// Sets (replacing) a service's provider and licence flag.
    async fn link_service(
        &self,
        link: &ServiceLink,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()>;
    async fn service_link(&self, client_id: &str) -> Result<Option<ServiceLink>>;

    /// Stores requests (one per institution); an earlier pending request
    /// of the same service at the same institution becomes superseded.
    /// Returns the new ids in order.
    async fn add_requests(
        &self,
        rows: &[NewRequest],
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> Result<Vec<i64>>;
    async fn request(&self, id: i64) -> Result<Option<RequestRecord>>;
    /// Requests, newest first, optionally of one service and/or at one
    /// institution.
    async fn requests(
        &self,
        client_id: Option<&str>,
        institution: Option<&str>,
    ) -> Result<Vec<RequestRecord>>;
    /// Decides a pending request; `None` when it is not pending (any more).
    /// An approval returns the new version.
    async fn decide(
        &self,
        request_id: i64,
        verdict: &Verdict,
        by: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<Option<Option<Approval>>>;
    /// Ends the current approval; false when there was none.
    async fn revoke(
        &self,
        client_id: &str,
        institution: &str,
        by: &str,
        reason: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool>;
    /// Blocks (`Some(reason)`) or unblocks; false when nothing changed.
    async fn set_block(
        &self,
        client_id: &str,
        institution: &str,
        by: &str,
        reason: Option<&str>,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool>;
    /// Every approval version, oldest first.
    async fn approvals(&self, client_id: &str, institution: &str) -> Result<Vec<Approval>>;
    async fn block(&self, client_id: &str, institution: &str) -> Result<Option<Block>>;
    /// Every block of an institution (all when `None`).
    async fn blocks(&self, institution: Option<&str>) -> Result<Vec<Block>>;
    /// Oldest first.
    async fn history(&self, client_id: &str, institution: &str) -> Result<Vec<HistoryEntry>>;

    async fn add_licences(
        &self,
        rows: &[NewLicence],
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> Result<Vec<i64>>;
    /// False when there is no such live licence.
    async fn withdraw_licence(
        &self,
        id: i64,
        by: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool>;
    /// Licences (withdrawn ones too), optionally of one service and/or at
    /// one institution, by id.
    async fn licences(
        &self,
        client_id: Option<&str>,
        institution: Option<&str>,
    ) -> Result<Vec<Licence>>;
}
