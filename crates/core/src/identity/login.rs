//! Password login, activation and logout: the rules, over any store. One
//! answer for every refusal, so a response never tells whether a login name
//! exists, is locked or has no password yet; the audit log tells operators.

use super::account::{hash_code, LockoutPolicy};
use super::password::{
    hash_password, needs_rehash, verify_password, HashParams, PasswordContext, Policy,
    PolicyProblem,
};
use super::session::{NewSession, SessionRecord, ACR_ONE_FACTOR};
use crate::audit::actions;
use crate::audit::NewEvent;
use crate::roster::Actor;
use crate::store::{AccountRecord, Store};
use crate::{Clock, Result};
use serde_json::json;
use std::sync::OnceLock;

/// Login settings; defaults from the seeds and the issue.
#[derive(Debug, Clone)]
pub struct LoginConfig {
    pub lockout: LockoutPolicy,
    pub hash: HashParams,
    pub policy: Policy,
    /// Absolute session lifetime (12 h).
    pub session_lifetime_s: i64,
    /// Idle timeout (30 min).
    pub idle_timeout_s: i64,
    /// Attempts per client address in ten minutes: generous, so one locked
    /// child does not lock out a class behind one school address.
    pub per_address_limit: i64,
    /// Attempts over all addresses in ten minutes.
    pub overall_limit: i64,
    /// How long an activation code lasts (7 days).
    pub activation_lifetime_s: i64,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            lockout: LockoutPolicy::default(),
            hash: HashParams::default(),
            policy: Policy::default(),
            session_lifetime_s: 12 * 3600,
            idle_timeout_s: 30 * 60,
            per_address_limit: 3_000,
            overall_limit: 200_000,
            activation_lifetime_s: 7 * 24 * 3600,
        }
    }
}

#[derive(Debug)]
pub enum LoginResult {
    Success {
        session: Box<NewSession>,
        /// The policy's rotation interval has passed since the password was
        /// set: the person is sent to change it before anything else.
        password_expired: bool,
    },
    /// Wrong name or password, locked, inactive or not yet activated.
    Refused,
    /// Too many attempts from this address (or overall): try later.
    Throttled,
}

/// A hash to verify against when the account does not exist, so refusals
/// take as long as a wrong password does.
fn dummy_hash(params: &HashParams) -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| hash_password("tilgang timing equaliser", params).unwrap_or_default())
}

/// The throttle window, in minutes (card login counts in the same one).
pub(crate) const WINDOW_MIN: i64 = 10;

/// Where the slow, memory-hard password work runs. The server hands each
/// hash to a small pool of blocking threads (one job per core), so that the
/// rest of a login (database round trips, rendering) never holds a core's
/// hashing slot; the CLI and tests run it in place ([`InPlace`]).
#[async_trait::async_trait]
pub trait HashRunner: Send + Sync {
    async fn verify(&self, password: String, phc: String) -> Result<bool>;
    async fn hash(&self, password: String, params: HashParams) -> Result<String>;
}

/// Runs password work on the calling thread.
pub struct InPlace;

#[async_trait::async_trait]
impl HashRunner for InPlace {
    async fn verify(&self, password: String, phc: String) -> Result<bool> {
        verify_password(&password, &phc)
    }
    async fn hash(&self, password: String, params: HashParams) -> Result<String> {
        hash_password(&password, &params)
    }
}

/// A password login. Only the Argon2id work goes through `runner`.
#[allow(clippy::too_many_arguments)]
pub async fn password_login(
    store: &dyn Store,
    clock: &dyn Clock,
    cfg: &LoginConfig,
    runner: &dyn HashRunner,
    login: &str,
    password: &str,
    address: &str,
    user_agent: Option<String>,
) -> Result<LoginResult> {
    let at = clock.now();
    let now = at.unix_timestamp();
    let minute = now / 60;
    let login = login.trim();
    let attempted: String = login.chars().take(64).collect();
    let buckets = [format!("addr:{address}"), "all".to_owned()];
    let counts = store.count_attempts(&buckets, minute, WINDOW_MIN).await?;
    if counts.first().is_some_and(|n| *n > cfg.per_address_limit)
        || counts.get(1).is_some_and(|n| *n > cfg.overall_limit)
    {
        let ev = NewEvent::new("anonymous", actions::LOGIN_THROTTLED)
            .details(json!({"login": attempted, "address": address}));
        store.append_audit(at, vec![ev]).await?;
        return Ok(LoginResult::Throttled);
    }
    let refuse = |reason: &str, subject: Option<i64>| {
        NewEvent::new("anonymous", actions::LOGIN_FAILED)
            .subjects(subject.into_iter().collect())
            .details(json!({"login": attempted, "address": address, "reason": reason}))
    };
    let account = store.account(login).await?;
    let usable = account.as_ref().and_then(|a| {
        let hash = a.password_hash.as_deref()?;
        (!a.inactive && a.locked_until.is_none_or(|t| t <= now)).then_some((a, hash))
    });
    let Some((account, hash)) = usable else {
        let _ = runner
            .verify(password.to_owned(), dummy_hash(&cfg.hash).to_owned())
            .await;
        let reason = match &account {
            None => "unknown login",
            Some(a) if a.inactive => "inactive",
            Some(a) if a.password_hash.is_none() => "not activated",
            Some(_) => "locked",
        };
        store
            .append_audit(at, vec![refuse(reason, account.map(|a| a.person_id))])
            .await?;
        return Ok(LoginResult::Refused);
    };
    if !runner.verify(password.to_owned(), hash.to_owned()).await? {
        let ev = refuse("wrong password", Some(account.person_id));
        count_failure(store, cfg, account, at, ev).await?;
        return Ok(LoginResult::Refused);
    }
    let rehash = if needs_rehash(hash, &cfg.hash) {
        Some(runner.hash(password.to_owned(), cfg.hash).await?)
    } else {
        None
    };
    let session = NewSession::new(
        account.person_id,
        now,
        cfg.session_lifetime_s,
        ACR_ONE_FACTOR,
        &["pwd"],
        user_agent,
    );
    let ev = NewEvent::new(format!("person:{}", account.person_id), actions::LOGIN_SUCCEEDED)
        .subjects(vec![account.person_id])
        .details(json!({"acr": ACR_ONE_FACTOR, "amr": ["pwd"], "address": address, "rehashed": rehash.is_some()}));
    store
        .record_login(account.person_id, rehash.as_deref(), &session, at, ev)
        .await?;
    let password_expired = account
        .password_set_at
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .is_some_and(|set_at| cfg.policy.is_expired(set_at, at));
    Ok(LoginResult::Success {
        session: Box::new(session),
        password_expired,
    })
}

/// Counts a failed proof (a password, a second-factor code) toward the
/// account's lockout, with `event` and, when it locks, `account.locked`.
pub async fn count_failure(
    store: &dyn Store,
    cfg: &LoginConfig,
    account: &AccountRecord,
    at: time::OffsetDateTime,
    event: NewEvent,
) -> Result<()> {
    let state =
        cfg.lockout
            .after_failure(account.failed_logins, account.lockouts, at.unix_timestamp());
    let mut events = vec![event];
    if let Some(until) = state.locked_until {
        events.push(
            NewEvent::new("system", actions::ACCOUNT_LOCKED)
                .subjects(vec![account.person_id])
                .details(json!({"until": until, "lockouts": state.lockouts})),
        );
    }
    store
        .record_failure(account.person_id, state, at, events)
        .await
}

/// The session a cookie names, if it is alive; refreshes its idle timer.
pub async fn current_session(
    store: &dyn Store,
    clock: &dyn Clock,
    cfg: &LoginConfig,
    cookie_id: &str,
) -> Result<Option<SessionRecord>> {
    let now = clock.now().unix_timestamp();
    let hash = super::session::hash_id(cookie_id);
    match store.session(&hash).await? {
        Some(s) if s.is_live(now, cfg.idle_timeout_s) => {
            // Touch at most once a minute: reads stay reads.
            if now - s.last_seen_at >= 60 {
                store.touch_session(&hash, now).await?;
            }
            Ok(Some(s))
        }
        _ => Ok(None),
    }
}

pub async fn logout(store: &dyn Store, clock: &dyn Clock, session: &SessionRecord) -> Result<()> {
    let ev = NewEvent::new(format!("person:{}", session.person_id), actions::LOGOUT)
        .subjects(vec![session.person_id]);
    store.end_session(&session.id_hash, clock.now(), ev).await
}

/// Issues an activation code for a person; returns the code to hand over.
pub async fn issue_activation(
    store: &dyn Store,
    clock: &dyn Clock,
    cfg: &LoginConfig,
    account: &AccountRecord,
    actor: &str,
) -> Result<String> {
    let (code, hash) = super::account::activation_code();
    let at = clock.now();
    let expires = at.unix_timestamp() + cfg.activation_lifetime_s;
    let ev = NewEvent::new(actor, actions::ACCOUNT_ACTIVATION_CODE_ISSUED)
        .subjects(vec![account.person_id])
        .details(json!({"expires_at": expires}));
    store
        .set_activation(account.person_id, &hash, expires, at, ev)
        .await?;
    Ok(code)
}

/// What a password change may answer.
#[derive(Debug)]
pub enum SetPassword {
    Done,
    /// The code is wrong or expired (one answer for both).
    BadCode,
    Rejected(Vec<PolicyProblem>),
}

/// The actor group whose password rules apply: an adult role outranks a
/// pupil role, so a teacher who is also a student gets the adult minimum.
pub fn strictest_actor(account: &AccountRecord) -> Actor {
    [Actor::Employee, Actor::ContactPerson, Actor::External]
        .into_iter()
        .find(|a| account.actors.contains(a))
        .unwrap_or(Actor::Pupil)
}

/// The context the policy needs for a person's new password.
pub fn password_context<'a>(
    account: &'a AccountRecord,
    names: &'a [&'a str],
) -> PasswordContext<'a> {
    let actor = strictest_actor(account);
    PasswordContext {
        actor,
        grade_level: (actor == Actor::Pupil)
            .then(|| {
                account
                    .grade_level
                    .as_deref()
                    .and_then(|g| g.trim().parse().ok())
            })
            .flatten(),
        login: &account.user_id,
        names,
    }
}

/// Sets a password after the policy allows it; `actor` is who did it.
pub async fn set_password(
    store: &dyn Store,
    clock: &dyn Clock,
    cfg: &LoginConfig,
    account: &AccountRecord,
    password: &str,
    actor: &str,
) -> Result<SetPassword> {
    let names = [account.given_name.as_str(), account.family_name.as_str()];
    let ctx = password_context(account, &names);
    if let Err(problems) = cfg.policy.check(password, &ctx) {
        return Ok(SetPassword::Rejected(problems));
    }
    let phc = hash_password(password, &cfg.hash)?;
    let ev = NewEvent::new(actor, actions::ACCOUNT_PASSWORD_SET).subjects(vec![account.person_id]);
    store
        .set_password(account.person_id, &phc, clock.now(), ev)
        .await?;
    Ok(SetPassword::Done)
}

/// What a change of one's own password may answer.
#[derive(Debug)]
pub enum ChangePassword {
    Done,
    /// The current password is wrong; counted as a failed login.
    WrongCurrent,
    Rejected(Vec<PolicyProblem>),
}

/// A logged-in person changes their password: the current one first (a
/// session left open on a shared computer must not be enough), then the
/// policy. A wrong current password counts toward the lockout like a failed
/// login. Success ends every session of the person, this one too.
pub async fn change_password(
    store: &dyn Store,
    clock: &dyn Clock,
    cfg: &LoginConfig,
    user_id: &str,
    current: &str,
    new: &str,
) -> Result<ChangePassword> {
    let Some(account) = store.account(user_id).await? else {
        return Ok(ChangePassword::WrongCurrent);
    };
    let now = clock.now().unix_timestamp();
    let verified = match account.password_hash.as_deref() {
        Some(hash) if account.locked_until.is_none_or(|t| t <= now) => {
            verify_password(current, hash)?
        }
        _ => false,
    };
    if !verified {
        let ev = NewEvent::new(
            format!("person:{}", account.person_id),
            actions::LOGIN_FAILED,
        )
        .subjects(vec![account.person_id])
        .details(json!({"reason": "wrong current password"}));
        count_failure(store, cfg, &account, clock.now(), ev).await?;
        return Ok(ChangePassword::WrongCurrent);
    }
    let actor = format!("person:{}", account.person_id);
    Ok(
        match set_password(store, clock, cfg, &account, new, &actor).await? {
            SetPassword::Rejected(p) => ChangePassword::Rejected(p),
            _ => ChangePassword::Done,
        },
    )
}

/// Activation: a valid code lets the person set their first password.
pub async fn activate(
    store: &dyn Store,
    clock: &dyn Clock,
    cfg: &LoginConfig,
    code: &str,
    password: &str,
) -> Result<SetPassword> {
    let now = clock.now().unix_timestamp();
    let Some(account) = store.account_by_activation(&hash_code(code), now).await? else {
        return Ok(SetPassword::BadCode);
    };
    let actor = format!("person:{}", account.person_id);
    set_password(store, clock, cfg, &account, password, &actor).await
}
