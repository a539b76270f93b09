//! Sharing: which provider system receives which of an institution's data.
//! Providers and their services, data access requests and the
//! institution's decisions on them (approvals are versioned instructions),
//! blocks, licences, and the one [`policy`] every release of data asks.
//! The institution is the data controller: nothing but the minimal package
//! flows without its approval.

pub mod access;
pub mod agreement;
pub mod licence;
pub mod package;
pub mod policy;

pub use package::{Field, FieldSet, Package};

/// The audit actions of sharing, in one place (a registry of all actions
/// is built elsewhere and will take these over).
pub mod actions {
    pub const PROVIDER_ADDED: &str = "sharing.provider_added";
    pub const PROVIDER_AUTHORITY: &str = "sharing.provider_authority_set";
    pub const SERVICE_LINKED: &str = "sharing.service_linked";
    pub const REQUESTED: &str = "sharing.requested";
    /// A minimal-package request: recorded and listed, no approval needed.
    pub const LISTED: &str = "sharing.listed";
    pub const APPROVED: &str = "sharing.approved";
    pub const REJECTED: &str = "sharing.rejected";
    pub const REVOKED: &str = "sharing.revoked";
    pub const BLOCKED: &str = "sharing.blocked";
    pub const UNBLOCKED: &str = "sharing.unblocked";
    pub const LICENCE_GRANTED: &str = "licence.granted";
    pub const LICENCE_WITHDRAWN: &str = "licence.withdrawn";

    pub const ALL: &[&str] = &[
        PROVIDER_ADDED,
        PROVIDER_AUTHORITY,
        SERVICE_LINKED,
        REQUESTED,
        LISTED,
        APPROVED,
        REJECTED,
        REVOKED,
        BLOCKED,
        UNBLOCKED,
        LICENCE_GRANTED,
        LICENCE_WITHDRAWN,
    ];
}
