//! Sharing: which provider system receives which of an institution's data.
//! Providers and their services, data access requests and the
//! institution's decisions on them (approvals are versioned instructions),
//! blocks, licences, and the one [`policy`] every release of data asks.
//! The institution is the data controller: nothing but the minimal package
//! flows without its approval.

pub mod access;
pub mod agreement;
pub mod changes;
pub mod export;
pub mod licence;
pub mod lookup;
pub mod package;
pub mod policy;
pub mod portal;
pub mod record;

pub use package::{Field, FieldSet, Package};

/// The audit actions (sharing's are `SHARING_*` and `LICENCE_*`).
pub use crate::audit::actions;
