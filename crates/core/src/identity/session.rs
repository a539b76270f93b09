//! Server-side sessions. The cookie carries a random 256-bit id; the
//! database keeps only its SHA-256, so a leaked table opens no session.
//! Every session has its own CSRF token, an idle timeout and an absolute
//! lifetime; a login always makes a new id (no fixation).

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// `__Host-`: Secure, no Domain, Path=/ — the browser enforces all three.
pub const COOKIE: &str = "__Host-tilgang";

/// Levels of assurance, as released in `acr`.
pub const ACR_ONE_FACTOR: &str = "urn:tilgang:loa:1";
/// Two factors (a password and TOTP, a passkey, or a recovery code).
pub const ACR_TWO_FACTOR: &str = "urn:tilgang:loa:2";

pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash_id(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// A session about to be stored; `id` goes into the cookie and nowhere else.
#[derive(Clone)]
pub struct NewSession {
    pub id: String,
    pub id_hash: [u8; 32],
    pub csrf: String,
    pub person_id: i64,
    pub acr: String,
    pub amr: Vec<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub user_agent: Option<String>,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession")
            .field("person_id", &self.person_id)
            .finish_non_exhaustive()
    }
}

impl NewSession {
    pub fn new(
        person_id: i64,
        now: i64,
        lifetime_s: i64,
        acr: &str,
        amr: &[&str],
        user_agent: Option<String>,
    ) -> Self {
        let id = random_token();
        NewSession {
            id_hash: hash_id(&id),
            id,
            csrf: random_token(),
            person_id,
            acr: acr.to_owned(),
            amr: amr.iter().map(|s| (*s).to_owned()).collect(),
            created_at: now,
            expires_at: now + lifetime_s,
            user_agent: user_agent.map(|ua| ua.chars().take(200).collect()),
        }
    }
}

/// A stored session as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id_hash: [u8; 32],
    pub person_id: i64,
    pub user_id: String,
    pub given_name: String,
    pub csrf: String,
    pub acr: String,
    pub amr: Vec<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub user_agent: Option<String>,
}

impl SessionRecord {
    /// Alive: within its absolute lifetime and not idle too long.
    pub fn is_live(&self, now: i64, idle_timeout_s: i64) -> bool {
        now < self.expires_at && now < self.last_seen_at + idle_timeout_s
    }
}

/// Compares a submitted CSRF token with the session's in constant time.
pub fn csrf_matches(session: &SessionRecord, submitted: &str) -> bool {
    let a = session.csrf.as_bytes();
    let b = submitted.as_bytes();
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_long_and_stored_hashed() {
        let a = NewSession::new(1, 0, 60, ACR_ONE_FACTOR, &["pwd"], None);
        let b = NewSession::new(1, 0, 60, ACR_ONE_FACTOR, &["pwd"], None);
        assert_ne!(a.id, b.id);
        assert!(a.id.len() >= 43, "256 bits in base64url");
        assert_eq!(a.id_hash, hash_id(&a.id));
        assert!(!format!("{a:?}").contains(&a.id));
    }

    #[test]
    fn idle_and_absolute_lifetimes_both_end_a_session() {
        let rec = SessionRecord {
            id_hash: [0; 32],
            person_id: 1,
            user_id: "u".into(),
            given_name: "U".into(),
            csrf: "x".into(),
            acr: ACR_ONE_FACTOR.into(),
            amr: vec!["pwd".into()],
            created_at: 0,
            last_seen_at: 100,
            expires_at: 1000,
            user_agent: None,
        };
        assert!(rec.is_live(500, 1800));
        assert!(!rec.is_live(100 + 1800, 1800));
        assert!(!rec.is_live(1000, 1_000_000));
        assert!(csrf_matches(&rec, "x") && !csrf_matches(&rec, "y") && !csrf_matches(&rec, ""));
    }
}
