//! Enrolling and removing second factors, and recovery codes. The first
//! factor may be added from a one-factor session; anything more (another
//! factor, removing one, new recovery codes) needs a [`TwoFactor`] session.
//! Every change is audited in the transaction that makes it.

use super::recovery;
use super::session::{SessionRecord, ACR_TWO_FACTOR};
use super::totp;
use crate::audit::actions;
use crate::audit::NewEvent;
use crate::crypto::DataKeys;
use crate::store::factors::{Added, FactorKind, NewFactor, TOTP_PURPOSE};
use crate::store::Store;
use crate::{Clock, Result};
use serde_json::json;
use sha2::{Digest, Sha256};

/// How long a TOTP enrolment may take (scanning, typing the first code).
pub const ENROL_TTL_S: i64 = 10 * 60;
/// How long a WebAuthn ceremony may take.
pub const WEBAUTHN_TTL_S: i64 = 5 * 60;

/// Ceremony kinds, as stored.
pub const TOTP_ENROL: &str = "totp-enrol";
pub const PASSKEY_REGISTER: &str = "passkey-register";
pub const PASSKEY_STEP_UP: &str = "passkey-step-up";
pub const PASSKEY_LOGIN: &str = "passkey-login";

/// The AEAD purpose of a pending (unconfirmed) TOTP seed.
const PENDING_PURPOSE: &str = "totp-seed-pending";

/// The key a ceremony is stored under: bound to a session (its id hash) or
/// to a random id in a cookie; only the hash is stored.
pub fn ceremony_key(kind: &str, bound_to: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"tilgang-ceremony/1:");
    h.update(kind.as_bytes());
    h.update(b":");
    h.update(bound_to);
    h.finalize().into()
}

/// A session at two-factor level: the capability that removing factors,
/// adding a further one and new recovery codes require.
#[derive(Debug, Clone, Copy)]
pub struct TwoFactor<'a>(&'a SessionRecord);

impl<'a> TwoFactor<'a> {
    pub fn of(session: &'a SessionRecord) -> Option<Self> {
        (session.acr == ACR_TWO_FACTOR).then_some(TwoFactor(session))
    }
    pub fn session(&self) -> &'a SessionRecord {
        self.0
    }
}

fn actor(session: &SessionRecord) -> String {
    format!("person:{}", session.person_id)
}

/// A label as stored: trimmed, at most 60 characters, `default` if empty.
pub fn label(typed: &str, default: &str) -> String {
    let t: String = typed.trim().chars().take(60).collect();
    if t.is_empty() {
        default.to_owned()
    } else {
        t
    }
}

/// A TOTP enrolment in progress, to show: the base32 seed and the URI.
#[derive(Clone)]
pub struct TotpEnrolment {
    pub secret: String,
    pub uri: String,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment(..)")
    }
}

/// Begins a TOTP enrolment bound to the session, or shows the one begun
/// (a reload does not change the QR code that is being scanned).
pub async fn begin_totp(
    store: &dyn Store,
    clock: &dyn Clock,
    keys: &DataKeys,
    session: &SessionRecord,
) -> Result<TotpEnrolment> {
    let now = clock.now().unix_timestamp();
    let key = ceremony_key(TOTP_ENROL, &session.id_hash);
    let pending = match store.ceremony(&key, TOTP_ENROL, now).await? {
        Some(c) => keys.open_secret(&c.state, PENDING_PURPOSE).ok(),
        None => None,
    };
    let seed = match pending {
        Some(seed) => seed,
        None => {
            let seed = totp::new_seed().to_vec();
            let sealed = keys.seal_secret(&seed, PENDING_PURPOSE);
            store
                .put_ceremony(
                    &key,
                    TOTP_ENROL,
                    Some(session.person_id),
                    &sealed,
                    now + ENROL_TTL_S,
                    now,
                )
                .await?;
            seed
        }
    };
    Ok(TotpEnrolment {
        secret: totp::base32(&seed),
        uri: totp::otpauth_uri(&session.user_id, &seed),
    })
}

/// What finishing an enrolment did.
#[derive(Debug, PartialEq, Eq)]
pub enum Enrolled {
    /// Stored; the recovery codes to show once when it was the first.
    Done {
        recovery: Option<Vec<String>>,
    },
    WrongCode,
    /// No enrolment in progress (expired, or finished elsewhere).
    Expired,
    /// The person has a factor already: adding another needs two factors.
    NeedsTwoFactor,
}

async fn store_factor(
    store: &dyn Store,
    clock: &dyn Clock,
    session: &SessionRecord,
    factor: NewFactor,
    ceremony: &[u8; 32],
) -> Result<Enrolled> {
    let (codes, hashes) = recovery::new_codes();
    let only_first = TwoFactor::of(session).is_none();
    let ev = NewEvent::new(actor(session), actions::FACTOR_ADDED)
        .subjects(vec![session.person_id])
        .details(json!({"kind": factor.kind.as_str(), "label": factor.label}));
    let added = store
        .add_factor(&factor, ceremony, only_first, &hashes, clock.now(), ev)
        .await?;
    Ok(match added {
        Added::Stored { first, .. } => Enrolled::Done {
            recovery: first.then_some(codes),
        },
        Added::CeremonyGone => Enrolled::Expired,
        Added::NotFirst => Enrolled::NeedsTwoFactor,
    })
}

/// Confirms a TOTP enrolment with a current code from the app; only then
/// is the factor stored (with the code's step as its last, so that code
/// cannot step up a session afterwards).
pub async fn confirm_totp(
    store: &dyn Store,
    clock: &dyn Clock,
    keys: &DataKeys,
    session: &SessionRecord,
    code: &str,
    label: String,
) -> Result<Enrolled> {
    let now = clock.now().unix_timestamp();
    let key = ceremony_key(TOTP_ENROL, &session.id_hash);
    let Some(pending) = store.ceremony(&key, TOTP_ENROL, now).await? else {
        return Ok(Enrolled::Expired);
    };
    let seed = keys.open_secret(&pending.state, PENDING_PURPOSE)?;
    let Some(step) = totp::verify(&seed, code, now, None) else {
        return Ok(Enrolled::WrongCode);
    };
    let factor = NewFactor {
        person_id: session.person_id,
        kind: FactorKind::Totp,
        label,
        secret_enc: Some(keys.seal_secret(&seed, TOTP_PURPOSE)),
        last_step: Some(step),
        credential_id: None,
        credential: None,
        user_handle: None,
    };
    store_factor(store, clock, session, factor, &key).await
}

/// Stores a passkey whose registration the web layer verified.
pub async fn add_passkey(
    store: &dyn Store,
    clock: &dyn Clock,
    session: &SessionRecord,
    credential_id: Vec<u8>,
    credential: String,
    user_handle: Vec<u8>,
    label: String,
) -> Result<Enrolled> {
    let key = ceremony_key(PASSKEY_REGISTER, &session.id_hash);
    let factor = NewFactor {
        person_id: session.person_id,
        kind: FactorKind::Passkey,
        label,
        secret_enc: None,
        last_step: None,
        credential_id: Some(credential_id),
        credential: Some(credential),
        user_handle: Some(user_handle),
    };
    store_factor(store, clock, session, factor, &key).await
}

/// Removes one of the person's own factors (removing the last also
/// removes the recovery codes). False when it is not theirs or gone.
pub async fn remove(
    store: &dyn Store,
    clock: &dyn Clock,
    tf: TwoFactor<'_>,
    factor_id: i64,
) -> Result<bool> {
    let s = tf.session();
    let ev = NewEvent::new(actor(s), actions::FACTOR_REMOVED)
        .subjects(vec![s.person_id])
        .details(json!({"factor": factor_id}));
    store
        .remove_factor(s.person_id, factor_id, clock.now(), ev)
        .await
}

/// New recovery codes, replacing the old ones; shown once.
pub async fn regenerate_recovery(
    store: &dyn Store,
    clock: &dyn Clock,
    tf: TwoFactor<'_>,
) -> Result<Vec<String>> {
    let s = tf.session();
    let (codes, hashes) = recovery::new_codes();
    let ev = NewEvent::new(actor(s), actions::FACTOR_RECOVERY_CODES_REPLACED)
        .subjects(vec![s.person_id])
        .details(json!({"count": codes.len()}));
    store
        .replace_recovery_codes(s.person_id, &hashes, clock.now(), ev)
        .await?;
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceremony_keys_are_bound_to_kind_and_owner() {
        let a = ceremony_key(TOTP_ENROL, b"session-1");
        assert_eq!(a, ceremony_key(TOTP_ENROL, b"session-1"));
        assert_ne!(a, ceremony_key(PASSKEY_REGISTER, b"session-1"));
        assert_ne!(a, ceremony_key(TOTP_ENROL, b"session-2"));
    }

    #[test]
    fn labels_are_trimmed_bounded_and_never_empty() {
        assert_eq!(label("  Telefon ", "App"), "Telefon");
        assert_eq!(label("   ", "App"), "App");
        assert_eq!(label(&"x".repeat(100), "App").chars().count(), 60);
    }
}
