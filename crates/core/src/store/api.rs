//! What one data API request reads, gathered: who the bearer token stands
//! for ([`ApiStore::caller_read`]) and, for a lookup, the person with the
//! service's standing at each of their institutions
//! ([`ApiStore::person_read`]), or both at once for a service's lookup
//! ([`ApiStore::caller_person_read`]). The default methods compose the
//! per-area reads; SQLite answers each on one reader connection in one
//! read transaction (a consistent snapshot, one hop to a blocking thread
//! instead of a dozen: `bench/api.sh`).

use super::export::ExportStore;
use super::oidc::OidcStore;
use super::sharing::SharingStore;
use super::{AccountRecord, IdentityStore};
use crate::oidc::claims::ClaimsSource;
use crate::oidc::{Service, TokenRecord};
use crate::sharing::agreement::{
    Approval, Provider, RequestRecord, RequestSpec, RequestStatus, ServiceLink,
};
use crate::store::export::ExportPerson;
use crate::Result;
use async_trait::async_trait;

/// Who a bearer token may stand for: the stored token row under its hash
/// (a login token, or a revoked sealed one), the service, and the
/// provider behind the service.
#[derive(Debug, Clone, Default)]
pub struct CallerRead {
    pub stored: Option<TokenRecord>,
    pub service: Option<Service>,
    pub provider: Option<Provider>,
}

impl CallerRead {
    /// The service a token names: the stored row's, else the sealed token's.
    pub fn client_of(stored: Option<&TokenRecord>, sealed_client: Option<&str>) -> Option<String> {
        stored
            .map(|t| t.client_id.clone())
            .or(sealed_client.map(str::to_owned))
    }
}

/// A person for a lookup by one service.
#[derive(Debug, Clone)]
pub struct PersonRead {
    pub account: AccountRecord,
    pub claims: ClaimsSource,
    /// The service's standing at each of the person's institutions, in
    /// the claims source's order.
    pub at: Vec<StandingRead>,
}

/// Where a service stands at one institution, and the person's row there.
#[derive(Debug, Clone)]
pub struct StandingRead {
    pub number: String,
    pub blocked: bool,
    /// The approval in force.
    pub approval: Option<Approval>,
    /// The newest pending request's spec.
    pub pending: Option<RequestSpec>,
    /// Whether the service listed the minimal package here.
    pub listed: bool,
    /// The person at the institution as the export reads them (roles,
    /// memberships, contacts).
    pub row: Option<ExportPerson>,
}

impl StandingRead {
    /// Builds the standing from the rows the sharing tables hold.
    pub fn new(
        number: String,
        blocked: bool,
        approvals: Vec<Approval>,
        requests: &[RequestRecord],
        row: Option<ExportPerson>,
    ) -> StandingRead {
        StandingRead {
            number,
            blocked,
            approval: approvals.into_iter().rev().find(|a| a.ended_at.is_none()),
            pending: requests
                .iter()
                .find(|r| r.status == RequestStatus::Pending)
                .map(|r| r.spec.clone()),
            listed: requests.iter().any(|r| r.status == RequestStatus::Listed),
            row,
        }
    }
}

#[async_trait]
pub trait ApiStore: IdentityStore + OidcStore + SharingStore + ExportStore {
    /// The stored token under `token_hash`, and the service it (or, for a
    /// sealed token, `sealed_client`) names with its provider.
    async fn caller_read(
        &self,
        token_hash: &[u8; 32],
        sealed_client: Option<&str>,
    ) -> Result<CallerRead> {
        let stored = self.token(token_hash).await?;
        let Some(client_id) = CallerRead::client_of(stored.as_ref(), sealed_client) else {
            return Ok(CallerRead::default());
        };
        let service = self.service(&client_id).await?;
        let provider = match self.service_link(&client_id).await? {
            Some(ServiceLink {
                provider_id: Some(id),
                ..
            }) => self.providers().await?.into_iter().find(|p| p.id == id),
            _ => None,
        };
        Ok(CallerRead {
            stored,
            service,
            provider,
        })
    }

    /// Where `client_id` stands at one institution (no person's row).
    async fn standing_read(&self, client_id: &str, institution: &str) -> Result<StandingRead> {
        let blocked = self.block(client_id, institution).await?.is_some();
        let approvals = self.approvals(client_id, institution).await?;
        let requests = self.requests(Some(client_id), Some(institution)).await?;
        Ok(StandingRead::new(
            institution.to_owned(),
            blocked,
            approvals,
            &requests,
            None,
        ))
    }

    /// [`ApiStore::caller_read`] of a sealed token of `client_id` and
    /// [`ApiStore::person_read`] together.
    async fn caller_person_read(
        &self,
        token_hash: &[u8; 32],
        client_id: &str,
        user_id: &str,
    ) -> Result<(CallerRead, Option<PersonRead>)> {
        let caller = self.caller_read(token_hash, Some(client_id)).await?;
        let person = self.person_read(client_id, user_id).await?;
        Ok((caller, person))
    }

    /// The person with this user id and `client_id`'s standing at each of
    /// their active institutions; `None` when no account has the id.
    async fn person_read(&self, client_id: &str, user_id: &str) -> Result<Option<PersonRead>> {
        let Some(account) = self.account(user_id).await? else {
            return Ok(None);
        };
        let Some(claims) = self.claims_source(account.person_id).await? else {
            return Ok(None);
        };
        let mut at = Vec::with_capacity(claims.institutions.len());
        for inst in &claims.institutions {
            let mut standing = self.standing_read(client_id, &inst.number).await?;
            standing.row = match self.export_institution(&inst.number).await? {
                Some(i) => self.export_person(i.id, claims.person_id).await?,
                None => None,
            };
            at.push(standing);
        }
        Ok(Some(PersonRead {
            account,
            claims,
            at,
        }))
    }
}
