//! QR login cards for pupils: a short random code (60 bits, Crockford
//! base32, grouped for typing) printed as text and inside a QR code. Only
//! its SHA-256 is stored; one live card per pupil; re-issuing replaces the
//! card and revoking removes it. A card logs a pupil in with one factor.

use super::login::{LoginConfig, LoginResult, WINDOW_MIN};
use super::rights::{self, PupilReset};
use super::session::{NewSession, ACR_ONE_FACTOR};
use crate::audit::actions;
use crate::audit::NewEvent;
use crate::roster::Actor;
use crate::store::staff::PupilRow;
use crate::store::Store;
use crate::{Clock, Result};
use rand::Rng;
use serde_json::json;
use sha2::{Digest, Sha256};

/// Crockford's base32: no I, L, O or U.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Characters in a card code: 12 × 5 = 60 bits.
pub const CODE_CHARS: usize = 12;

/// A new card code for display (`K7QM-4TXP-9R2D`) and the hash to store.
pub fn card_code() -> (String, [u8; 32]) {
    let mut rng = rand::rngs::OsRng;
    let raw: Vec<u8> = (0..CODE_CHARS)
        .map(|_| CROCKFORD[rng.gen_range(0..CROCKFORD.len())])
        .collect();
    let shown = raw
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-");
    let hash = hash_card(&shown);
    (shown, hash)
}

/// Normalises a typed or scanned code the Crockford way (case, spaces and
/// dashes do not matter; I and L read as 1, O as 0).
pub fn normalise(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| match c.to_ascii_uppercase() {
            'I' | 'L' => '1',
            'O' => '0',
            c => c,
        })
        .collect()
}

pub fn hash_card(typed: &str) -> [u8; 32] {
    Sha256::digest(format!("tilgang-card/1:{}", normalise(typed)).as_bytes()).into()
}

/// A freshly issued card, to print once.
#[derive(Clone)]
pub struct IssuedCard {
    pub pupil: PupilRow,
    pub code: String,
}

impl std::fmt::Debug for IssuedCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCard")
            .field("user_id", &self.pupil.user_id)
            .finish_non_exhaustive()
    }
}

/// Issues (or re-issues) cards for these pupils of the institution, in
/// one transaction; the old cards stop working. Pupils who are not at the
/// institution are left out.
pub async fn issue(
    store: &dyn Store,
    clock: &dyn Clock,
    cap: &PupilReset,
    pupils: Vec<PupilRow>,
) -> Result<Vec<IssuedCard>> {
    let (institution_id, number, actor) = rights::parts(cap);
    let mut cards = Vec::with_capacity(pupils.len());
    let mut rows = Vec::with_capacity(pupils.len());
    let mut events = Vec::with_capacity(pupils.len());
    let at_institution = store.institution_pupils(institution_id, None).await?;
    for p in pupils {
        if !at_institution.iter().any(|q| q.person_id == p.person_id) {
            continue;
        }
        let (code, hash) = card_code();
        rows.push((p.person_id, hash));
        events.push(
            NewEvent::new(actor.clone(), actions::CARD_ISSUED)
                .institution(number)
                .subjects(vec![p.person_id])
                .details(json!({"reissued": p.has_card})),
        );
        cards.push(IssuedCard { pupil: p, code });
    }
    if !rows.is_empty() {
        store
            .issue_cards(&rows, &actor, clock.now(), events)
            .await?;
    }
    Ok(cards)
}

/// Revokes a pupil's card; `None`: no such pupil at the institution;
/// `Some(false)`: the pupil had no card.
pub async fn revoke(
    store: &dyn Store,
    clock: &dyn Clock,
    cap: &PupilReset,
    user_id: &str,
) -> Result<Option<bool>> {
    let Some(p) = rights::pupil(store, cap, user_id).await? else {
        return Ok(None);
    };
    let (_, number, actor) = rights::parts(cap);
    let ev = NewEvent::new(actor, actions::CARD_REVOKED)
        .institution(number)
        .subjects(vec![p.person_id]);
    Ok(Some(store.revoke_card(p.person_id, clock.now(), ev).await?))
}

/// Logs a pupil in with a card code. Attempts count in the same buckets as
/// passwords; every refusal is the same answer, the audit log says why.
pub async fn card_login(
    store: &dyn Store,
    clock: &dyn Clock,
    cfg: &LoginConfig,
    code: &str,
    address: &str,
    user_agent: Option<String>,
) -> Result<LoginResult> {
    let at = clock.now();
    let now = at.unix_timestamp();
    let buckets = [format!("addr:{address}"), "all".to_owned()];
    let counts = store.count_attempts(&buckets, now / 60, WINDOW_MIN).await?;
    if counts.first().is_some_and(|n| *n > cfg.per_address_limit)
        || counts.get(1).is_some_and(|n| *n > cfg.overall_limit)
    {
        let ev = NewEvent::new("anonymous", actions::LOGIN_THROTTLED)
            .details(json!({"method": "card", "address": address}));
        store.append_audit(at, vec![ev]).await?;
        return Ok(LoginResult::Throttled);
    }
    let refuse = |reason: &str, subject: Option<i64>| {
        NewEvent::new("anonymous", actions::LOGIN_FAILED)
            .subjects(subject.into_iter().collect())
            .details(json!({"method": "card", "address": address, "reason": reason}))
    };
    let norm = normalise(code);
    let account = if norm.len() == CODE_CHARS {
        store.account_by_card(&hash_card(&norm)).await?
    } else {
        None
    };
    let reason = match &account {
        None => Some("unknown card"),
        Some(a) if a.inactive => Some("inactive"),
        // Cards are for pupils only: an adult's account is never one
        // printed code away.
        Some(a) if a.actors.is_empty() || a.actors.iter().any(|x| *x != Actor::Pupil) => {
            Some("not a pupil")
        }
        Some(a) if a.locked_until.is_some_and(|t| t > now) => Some("locked"),
        Some(_) => None,
    };
    let account = match (account, reason) {
        (Some(a), None) => a,
        (account, reason) => {
            let subject = account.map(|a| a.person_id);
            let ev = refuse(reason.unwrap_or("unknown card"), subject);
            store.append_audit(at, vec![ev]).await?;
            return Ok(LoginResult::Refused);
        }
    };
    let session = NewSession::new(
        account.person_id,
        now,
        cfg.session_lifetime_s,
        ACR_ONE_FACTOR,
        &["card"],
        user_agent,
    );
    let ev = NewEvent::new(
        format!("person:{}", account.person_id),
        actions::LOGIN_SUCCEEDED,
    )
    .subjects(vec![account.person_id])
    .details(json!({"acr": ACR_ONE_FACTOR, "amr": ["card"], "address": address}));
    store
        .record_login(account.person_id, None, &session, at, ev)
        .await?;
    // A card is no password: rotation never applies.
    Ok(LoginResult::Success {
        session: Box::new(session),
        password_expired: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sixty_bits_grouped_and_forgiving_to_type() {
        let (code, hash) = card_code();
        assert_eq!(code.len(), 14);
        assert_eq!(code.matches('-').count(), 2);
        assert!(code.bytes().all(|b| b == b'-' || CROCKFORD.contains(&b)));
        assert_eq!(hash_card(&code.to_lowercase().replace('-', " ")), hash);
        assert_ne!(card_code().0, code);
        assert_eq!(normalise("k7qm-4txp 9r2d"), "K7QM4TXP9R2D");
        assert_eq!(hash_card("ILO0-1111-0000"), hash_card("1100-1111-0000"));
        assert_eq!(hash_card("il00-1111-0000"), hash_card("1100-1111-0000"));
        assert_ne!(hash_card("K7QM-4TXP-9R2D"), hash_card("K7QM-4TXP-9R2E"));
    }

    #[test]
    fn card_hashes_differ_from_activation_hashes() {
        assert_ne!(
            hash_card("K7QM-4TXP-9R2D"),
            super::super::account::hash_code("K7QM-4TXP-9R2D")
        );
    }
}
