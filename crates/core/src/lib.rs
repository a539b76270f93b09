//! tilgang's domain: the roster, the audit chain and the store traits.
//! No HTTP and no SQL live here; the `store` crate implements the traits for
//! SQLite and PostgreSQL, and `web` maps [`Error`] to HTTP.

pub mod audit;
pub mod clock;
pub mod crypto;
pub mod error;
pub mod identity;
pub mod lifecycle;
pub mod oidc;
pub mod roster;
pub mod security;
pub mod sharing;
pub mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Result};
