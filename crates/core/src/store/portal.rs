//! What the provider portal needs of the database: provider users (external
//! persons who log in for a provider), the services linked to a provider,
//! and the e-mail addresses of an institution's admins for notices.

use crate::audit::NewEvent;
use crate::Result;
use async_trait::async_trait;
use time::OffsetDateTime;

/// A person to create for a provider. The roster never delivers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProviderUser {
    pub provider_id: i64,
    pub user_id: String,
    pub given_name: String,
    pub family_name: String,
    pub email: String,
}

/// A provider user as the operator lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderUserRow {
    pub person_id: i64,
    pub user_id: String,
    pub name: String,
    pub email: Option<String>,
    pub created_at: i64,
}

#[async_trait]
pub trait PortalStore: Send + Sync {
    /// Makes the person and links them to the provider, with the event
    /// (its subjects gain the new person) in one transaction. Returns the
    /// person's id; `NotFound` for an unknown provider, `Invalid` with
    /// `PORTAL_USER_EXISTS` for a taken user id.
    async fn add_provider_user(
        &self,
        user: &NewProviderUser,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<i64>;
    /// The provider a person logs in for, if any.
    async fn provider_of_person(&self, person_id: i64) -> Result<Option<i64>>;
    async fn provider_users(&self, provider_id: i64) -> Result<Vec<ProviderUserRow>>;
    /// Client ids of the services linked to the provider, ordered.
    async fn provider_services(&self, provider_id: i64) -> Result<Vec<String>>;
    /// E-mail addresses of the persons holding an active admin role
    /// (`rights::ADMIN_ROLES`) at the institution, without duplicates.
    async fn admin_emails(&self, institution: &str) -> Result<Vec<String>>;
}
