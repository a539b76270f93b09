//! What the OpenID Connect provider keeps: services, signing keys, pending
//! authorization requests, codes and tokens. Every change that issues,
//! uses or revokes something writes its audit events in the same
//! transaction. Each token-issuing call is one short transaction of plain
//! inserts and a conditional update, so a later version can batch them.

use crate::audit::NewEvent;
use crate::oidc::claims::ClaimsSource;
use crate::oidc::keys::KeyRecord;
use crate::oidc::{CodeRecord, Service, TokenRecord};
use crate::Result;
use async_trait::async_trait;
use time::OffsetDateTime;

/// How redeeming a code went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// The code was unused and live; the tokens are stored.
    Issued,
    /// The code was used before: every token issued from it is now revoked.
    Reused,
    /// Unknown or expired.
    Invalid,
}

/// How rotating a refresh token went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotated {
    Issued,
    /// Used or revoked before: the whole family is now revoked.
    Reused,
    Invalid,
}

/// A pending authorization request, waiting for a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub client_id: String,
    /// The request's parameters, as JSON.
    pub request: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[async_trait]
pub trait OidcStore: Send + Sync {
    /// Registers a service; fails when the client id is taken.
    async fn add_service(
        &self,
        service: &Service,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()>;
    async fn service(&self, client_id: &str) -> Result<Option<Service>>;
    async fn services(&self) -> Result<Vec<Service>>;
    /// Removes a service and every code and token issued to it; false when
    /// there was none.
    async fn remove_service(
        &self,
        client_id: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool>;

    /// Every signing key still published (or signing) at `now`.
    async fn signing_keys(&self, now: i64) -> Result<Vec<KeyRecord>>;
    /// Stores new keys. With `only_if_none`, does nothing (and returns
    /// false) when a signing key of any of the new keys' algorithms exists
    /// (first start on several replicas). Otherwise the current keys of
    /// those algorithms stop signing at `now` and are unpublished at
    /// `retire_at`; keys past their `retire_at` are deleted.
    async fn rotate_keys(
        &self,
        new: &[KeyRecord],
        only_if_none: bool,
        retire_at: i64,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool>;

    async fn put_pending(&self, id_hash: &[u8; 32], pending: &Pending) -> Result<()>;
    async fn pending(&self, id_hash: &[u8; 32], now: i64) -> Result<Option<Pending>>;

    /// Stores a code (deleting the pending request it completes) with the
    /// login-to-a-service event.
    async fn issue_code(
        &self,
        code: &CodeRecord,
        completes: Option<&[u8; 32]>,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()>;
    async fn code(&self, code_hash: &[u8; 32]) -> Result<Option<CodeRecord>>;
    /// Marks the code used and stores the tokens issued from it, if it is
    /// unused and live at `at`; a used code revokes every token of the
    /// family it was redeemed into (`reuse_event` is written then).
    async fn redeem_code(
        &self,
        code_hash: &[u8; 32],
        tokens: &[TokenRecord],
        at: OffsetDateTime,
        event: NewEvent,
        reuse_event: NewEvent,
    ) -> Result<Redeemed>;

    /// Stores tokens (client credentials) with their event; group-committed
    /// like `AuditStore::append_audit`, answered after the commit.
    async fn issue_tokens(
        &self,
        tokens: &[TokenRecord],
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()>;
    async fn token(&self, token_hash: &[u8; 32]) -> Result<Option<TokenRecord>>;
    /// Marks a live refresh token used and stores its successors; a used
    /// or revoked one revokes its whole family instead.
    async fn rotate_refresh(
        &self,
        token_hash: &[u8; 32],
        tokens: &[TokenRecord],
        at: OffsetDateTime,
        event: NewEvent,
        reuse_event: NewEvent,
    ) -> Result<Rotated>;
    /// Revokes a token of `client_id` (a refresh token with its whole
    /// family); false when there was no such token.
    async fn revoke_token(
        &self,
        token_hash: &[u8; 32],
        client_id: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool>;
    /// Records a client assertion's id; false when it was seen before (a
    /// replay).
    async fn use_assertion(
        &self,
        client_id: &str,
        jti_hash: &[u8; 32],
        expires_at: i64,
    ) -> Result<bool>;
    /// Deletes codes, pending requests, tokens and assertion ids that ended
    /// before `before`.
    async fn purge_oidc(&self, before: i64) -> Result<u64>;

    /// What the roster holds of a person that a service may receive.
    async fn claims_source(&self, person_id: i64) -> Result<Option<ClaimsSource>>;

    /// The role context (`INSTITUTION/ACTOR`) the person chose for the
    /// service, if any.
    async fn role_choice(&self, person_id: i64, client_id: &str) -> Result<Option<String>>;
    /// Every choice of the person: (client id, service name, role context),
    /// by service name.
    async fn role_choices(&self, person_id: i64) -> Result<Vec<(String, String, String)>>;
    /// Remembers (`Some`) or forgets (`None`) the person's choice for the
    /// service, with its event.
    async fn set_role_choice(
        &self,
        person_id: i64,
        client_id: &str,
        role: Option<&str>,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()>;
}
