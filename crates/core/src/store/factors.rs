//! The store of second factors: TOTP seeds and passkeys, recovery codes,
//! and the state of ceremonies that one replica begins and any finishes.
//! Every change is written with its audit events in one transaction; a
//! factor is used only through an atomic conditional update, so a code or
//! a ceremony is accepted once across all replicas.

use crate::audit::NewEvent;
use crate::identity::session::NewSession;
use crate::Result;
use async_trait::async_trait;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorKind {
    Totp,
    Passkey,
}

impl FactorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FactorKind::Totp => "totp",
            FactorKind::Passkey => "passkey",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "totp" => Some(FactorKind::Totp),
            "passkey" => Some(FactorKind::Passkey),
            _ => None,
        }
    }
}

/// A stored second factor.
#[derive(Clone, PartialEq, Eq)]
pub struct SecondFactor {
    pub id: i64,
    pub person_id: i64,
    pub kind: FactorKind,
    pub label: String,
    /// TOTP: the seed, sealed (`DataKeys::seal_secret`, purpose
    /// [`TOTP_PURPOSE`]).
    pub secret_enc: Option<Vec<u8>>,
    /// TOTP: the last accepted time step.
    pub last_step: Option<i64>,
    /// Passkey: the credential id.
    pub credential_id: Option<Vec<u8>>,
    /// Passkey: the serialised credential (public key, counter).
    pub credential: Option<String>,
    /// Passkey: the WebAuthn user handle (16 random bytes per person).
    pub user_handle: Option<Vec<u8>>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl std::fmt::Debug for SecondFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecondFactor")
            .field("id", &self.id)
            .field("person_id", &self.person_id)
            .field("kind", &self.kind)
            .field("label", &self.label)
            .field("last_step", &self.last_step)
            .field("created_at", &self.created_at)
            .field("last_used_at", &self.last_used_at)
            .finish_non_exhaustive()
    }
}

/// The AEAD purpose TOTP seeds are sealed under.
pub const TOTP_PURPOSE: &str = "totp-seed";

/// A factor about to be stored.
#[derive(Clone)]
pub struct NewFactor {
    pub person_id: i64,
    pub kind: FactorKind,
    pub label: String,
    pub secret_enc: Option<Vec<u8>>,
    /// TOTP: the step of the code that confirmed the enrolment (so that
    /// code cannot be used again at step-up).
    pub last_step: Option<i64>,
    pub credential_id: Option<Vec<u8>>,
    pub credential: Option<String>,
    pub user_handle: Option<Vec<u8>>,
}

impl std::fmt::Debug for NewFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewFactor")
            .field("person_id", &self.person_id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// What adding a factor did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Stored; `first` when it is the person's first factor (the recovery
    /// codes passed along were stored with it).
    Stored { id: i64, first: bool },
    /// The ceremony is gone (finished elsewhere, or expired): nothing
    /// stored.
    CeremonyGone,
    /// Only a first factor was allowed, and the person has one already.
    NotFirst,
}

/// A use of a factor, accepted only once.
#[derive(Debug, Clone)]
pub enum FactorUse {
    /// Accepted only when `step` is newer than the factor's last step.
    Totp { factor_id: i64, step: i64 },
    /// A verified passkey assertion; the credential with its counter moved.
    Passkey { factor_id: i64, credential: String },
    /// Accepted only when the code is unused.
    Recovery { code_hash: [u8; 32] },
}

/// A stored ceremony.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceremony {
    pub person_id: Option<i64>,
    pub state: Vec<u8>,
}

#[async_trait]
pub trait FactorStore: Send + Sync {
    /// The login name (user id) of a person.
    async fn user_id_of(&self, person_id: i64) -> Result<Option<String>>;
    /// The person's factors, oldest first.
    async fn second_factors(&self, person_id: i64) -> Result<Vec<SecondFactor>>;
    /// The passkey with this credential id.
    async fn passkey_by_credential(&self, credential_id: &[u8]) -> Result<Option<SecondFactor>>;
    /// Stores a factor and ends the ceremony `ceremony` in one transaction.
    /// When the person has no factor yet, `recovery` (hashes) replaces their
    /// recovery codes; when `only_first` and they have one, nothing is
    /// stored.
    async fn add_factor(
        &self,
        factor: &NewFactor,
        ceremony: &[u8; 32],
        only_first: bool,
        recovery: &[[u8; 32]],
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<Added>;
    /// Removes one of the person's factors; removing the last also removes
    /// the recovery codes. False when there was no such factor.
    async fn remove_factor(
        &self,
        person_id: i64,
        factor_id: i64,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool>;
    /// Replaces the person's recovery codes.
    async fn replace_recovery_codes(
        &self,
        person_id: i64,
        hashes: &[[u8; 32]],
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()>;
    async fn unused_recovery_codes(&self, person_id: i64) -> Result<i64>;
    /// Uses a factor of the person, at most once (an atomic conditional
    /// update); when accepted, in the same transaction: the failure count
    /// is cleared, `replaces` (the old session) is ended, `session` stored
    /// and the event written. False, with nothing written, when refused.
    async fn use_factor(
        &self,
        person_id: i64,
        factor: &FactorUse,
        replaces: Option<&[u8; 32]>,
        session: &NewSession,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool>;
    /// Stores (or replaces) a ceremony; drops expired ones.
    async fn put_ceremony(
        &self,
        key: &[u8; 32],
        kind: &str,
        person_id: Option<i64>,
        state: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<()>;
    /// The live ceremony of this kind, left in place.
    async fn ceremony(&self, key: &[u8; 32], kind: &str, now: i64) -> Result<Option<Ceremony>>;
    /// The live ceremony of this kind, removed: only one caller gets it.
    async fn take_ceremony(&self, key: &[u8; 32], kind: &str, now: i64)
        -> Result<Option<Ceremony>>;
}
