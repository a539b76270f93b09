//! Step-up: a one-factor session proves a second factor and is replaced by
//! a new session (a new id: rotate on privilege change) at two-factor
//! level; and login with a passkey alone. Wrong codes count toward the same
//! lockout as wrong passwords, so codes cannot be guessed.
//!
//! `amr` values (RFC 8176): password and TOTP `["pwd", "otp"]`; password
//! and recovery code `["pwd", "otp"]` too (a recovery code is a one-time
//! password; the audit event names it); password and passkey
//! `["pwd", "hwk"]`; a passkey alone, with user verification,
//! `["hwk", "user"]`.

use super::account::FailureState;
use super::login::LoginConfig;
use super::recovery;
use super::session::{NewSession, SessionRecord, ACR_TWO_FACTOR};
use super::totp;
use crate::audit::actions;
use crate::audit::NewEvent;
use crate::crypto::DataKeys;
use crate::store::factors::{FactorKind, FactorUse, SecondFactor, TOTP_PURPOSE};
use crate::store::{AccountRecord, Store};
use crate::{Clock, Result};
use serde_json::json;

pub const AMR_TOTP: &[&str] = &["pwd", "otp"];
pub const AMR_RECOVERY: &[&str] = &["pwd", "otp"];
pub const AMR_PASSKEY_STEP_UP: &[&str] = &["pwd", "hwk"];
pub const AMR_PASSKEY_LOGIN: &[&str] = &["hwk", "user"];

#[derive(Debug)]
pub enum StepUp {
    /// The new session (its id goes into the cookie); the old one is gone.
    Done(Box<NewSession>),
    /// Wrong, replayed or used code (one answer for all).
    Refused,
    /// Locked after too many failures: try later.
    Locked,
}

/// Which code a person typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Totp,
    Recovery,
}

fn usable(account: &AccountRecord, now: i64) -> bool {
    !account.inactive && account.locked_until.is_none_or(|t| t <= now)
}

/// The session replacing `old` at two-factor level: same person, browser
/// and absolute end, new id and CSRF token.
pub fn raised(old: &SessionRecord, now: i64, amr: &[&str]) -> NewSession {
    let mut s = NewSession::new(
        old.person_id,
        now,
        0,
        ACR_TWO_FACTOR,
        amr,
        old.user_agent.clone(),
    );
    s.expires_at = old.expires_at;
    s
}

async fn fail(
    store: &dyn Store,
    clock: &dyn Clock,
    cfg: &LoginConfig,
    account: &AccountRecord,
    reason: &str,
    method: &str,
    address: &str,
) -> Result<StepUp> {
    let at = clock.now();
    let state: FailureState =
        cfg.lockout
            .after_failure(account.failed_logins, account.lockouts, at.unix_timestamp());
    let mut events = vec![NewEvent::new(
        format!("person:{}", account.person_id),
        actions::LOGIN_STEP_UP_FAILED,
    )
    .subjects(vec![account.person_id])
    .details(json!({"method": method, "reason": reason, "address": address}))];
    if let Some(until) = state.locked_until {
        events.push(
            NewEvent::new("system", actions::ACCOUNT_LOCKED)
                .subjects(vec![account.person_id])
                .details(json!({"until": until, "lockouts": state.lockouts})),
        );
    }
    store
        .record_failure(account.person_id, state, at, events)
        .await?;
    Ok(StepUp::Refused)
}

/// Steps a session up with a TOTP or recovery code.
#[allow(clippy::too_many_arguments)]
pub async fn with_code(
    store: &dyn Store,
    clock: &dyn Clock,
    cfg: &LoginConfig,
    keys: &DataKeys,
    session: &SessionRecord,
    which: Code,
    code: &str,
    address: &str,
) -> Result<StepUp> {
    let at = clock.now();
    let now = at.unix_timestamp();
    let method = match which {
        Code::Totp => "totp",
        Code::Recovery => "recovery",
    };
    let Some(account) = store.account(&session.user_id).await? else {
        return Ok(StepUp::Refused);
    };
    if !usable(&account, now) {
        let ev = NewEvent::new(
            format!("person:{}", account.person_id),
            actions::LOGIN_STEP_UP_FAILED,
        )
        .subjects(vec![account.person_id])
        .details(json!({"method": method, "reason": "locked", "address": address}));
        store.append_audit(at, vec![ev]).await?;
        return Ok(StepUp::Locked);
    }
    let (used, amr) = match which {
        Code::Totp => {
            let mut found = None;
            let mut replayed = false;
            for f in store.second_factors(session.person_id).await? {
                let (FactorKind::Totp, Some(sealed)) = (f.kind, &f.secret_enc) else {
                    continue;
                };
                let seed = keys.open_secret(sealed, TOTP_PURPOSE)?;
                if let Some(step) = totp::matching_step(&seed, code, now) {
                    if f.last_step.is_none_or(|last| step > last) {
                        found = Some(FactorUse::Totp {
                            factor_id: f.id,
                            step,
                        });
                        break;
                    }
                    replayed = true;
                }
            }
            match found {
                Some(u) => (u, AMR_TOTP),
                None => {
                    let reason = if replayed {
                        "replayed code"
                    } else {
                        "wrong code"
                    };
                    return fail(store, clock, cfg, &account, reason, method, address).await;
                }
            }
        }
        Code::Recovery => (
            FactorUse::Recovery {
                code_hash: recovery::hash_code(code),
            },
            AMR_RECOVERY,
        ),
    };
    let new = raised(session, now, amr);
    let ev = NewEvent::new(
        format!("person:{}", session.person_id),
        actions::LOGIN_STEP_UP,
    )
    .subjects(vec![session.person_id])
    .details(json!({"acr": ACR_TWO_FACTOR, "amr": amr, "method": method, "address": address}));
    if store
        .use_factor(
            session.person_id,
            &used,
            Some(&session.id_hash),
            &new,
            at,
            ev,
        )
        .await?
    {
        Ok(StepUp::Done(Box::new(new)))
    } else {
        // Another request used the step (or the recovery code) first.
        let reason = match which {
            Code::Totp => "replayed code",
            Code::Recovery => "wrong or used code",
        };
        fail(store, clock, cfg, &account, reason, method, address).await
    }
}

/// Steps a session up with a passkey assertion the web layer verified;
/// `credential` is the passkey with its counter moved.
pub async fn with_passkey(
    store: &dyn Store,
    clock: &dyn Clock,
    session: &SessionRecord,
    factor: &SecondFactor,
    credential: String,
    address: &str,
) -> Result<StepUp> {
    let at = clock.now();
    let now = at.unix_timestamp();
    let account = store.account(&session.user_id).await?;
    if factor.person_id != session.person_id || !account.is_some_and(|a| usable(&a, now)) {
        return Ok(StepUp::Refused);
    }
    let new = raised(session, now, AMR_PASSKEY_STEP_UP);
    let ev = NewEvent::new(format!("person:{}", session.person_id), actions::LOGIN_STEP_UP)
        .subjects(vec![session.person_id])
        .details(json!({"acr": ACR_TWO_FACTOR, "amr": AMR_PASSKEY_STEP_UP, "method": "passkey", "address": address}));
    let used = FactorUse::Passkey {
        factor_id: factor.id,
        credential,
    };
    Ok(
        if store
            .use_factor(
                session.person_id,
                &used,
                Some(&session.id_hash),
                &new,
                at,
                ev,
            )
            .await?
        {
            StepUp::Done(Box::new(new))
        } else {
            StepUp::Refused
        },
    )
}

/// A login with a passkey alone (discoverable, user-verified): two-factor
/// level. `None` when the account may not log in (inactive or locked).
pub async fn passkey_login(
    store: &dyn Store,
    clock: &dyn Clock,
    cfg: &LoginConfig,
    factor: &SecondFactor,
    credential: String,
    address: &str,
    user_agent: Option<String>,
) -> Result<Option<NewSession>> {
    let at = clock.now();
    let now = at.unix_timestamp();
    let account = match store.user_id_of(factor.person_id).await? {
        Some(user_id) => store.account(&user_id).await?,
        None => None,
    };
    let Some(account) = account.filter(|a| usable(a, now) && a.password_hash.is_some()) else {
        let ev = NewEvent::new("anonymous", actions::LOGIN_FAILED)
            .subjects(vec![factor.person_id])
            .details(
                json!({"method": "passkey", "reason": "inactive or locked", "address": address}),
            );
        store.append_audit(at, vec![ev]).await?;
        return Ok(None);
    };
    let session = NewSession::new(
        account.person_id,
        now,
        cfg.session_lifetime_s,
        ACR_TWO_FACTOR,
        AMR_PASSKEY_LOGIN,
        user_agent,
    );
    let ev = NewEvent::new(format!("person:{}", account.person_id), actions::LOGIN_SUCCEEDED)
        .subjects(vec![account.person_id])
        .details(json!({"acr": ACR_TWO_FACTOR, "amr": AMR_PASSKEY_LOGIN, "method": "passkey", "address": address}));
    let used = FactorUse::Passkey {
        factor_id: factor.id,
        credential,
    };
    Ok(store
        .use_factor(account.person_id, &used, None, &session, at, ev)
        .await?
        .then_some(session))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::factors::TwoFactor;
    use crate::identity::session::ACR_ONE_FACTOR;

    #[test]
    fn a_raised_session_is_new_but_ends_when_the_old_one_would() {
        let old = SessionRecord {
            id_hash: [1; 32],
            person_id: 7,
            user_id: "u".into(),
            given_name: "U".into(),
            csrf: "c".into(),
            acr: ACR_ONE_FACTOR.into(),
            amr: vec!["pwd".into()],
            created_at: 100,
            last_seen_at: 150,
            expires_at: 5000,
            user_agent: Some("Firefox".into()),
        };
        assert!(TwoFactor::of(&old).is_none());
        let new = raised(&old, 200, AMR_TOTP);
        assert_ne!(new.id_hash, old.id_hash);
        assert_ne!(new.csrf, old.csrf);
        assert_eq!(
            (new.person_id, new.expires_at, new.created_at),
            (7, 5000, 200)
        );
        assert_eq!(
            (new.acr.as_str(), new.amr.clone()),
            (ACR_TWO_FACTOR, vec!["pwd".to_owned(), "otp".to_owned()])
        );
        assert_eq!(new.user_agent.as_deref(), Some("Firefox"));
        let stored = SessionRecord {
            acr: new.acr.clone(),
            ..old
        };
        assert!(TwoFactor::of(&stored).is_some());
    }
}
