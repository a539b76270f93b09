//! tilgang as an OpenID Connect provider: the registered services (clients),
//! their packages, codes and tokens (random, stored only as SHA-256), PKCE,
//! pairwise subjects and the claims a package releases. No HTTP here: `web`
//! speaks the protocol, the store keeps the state (`store::oidc`).

pub mod claims;
pub mod keys;
pub mod roles;
pub mod sealed;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Lifetimes and schedules; defaults an integrating platform expects.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// Authorization codes: single use, 60 s (the issue).
    pub code_lifetime_s: i64,
    pub access_token_lifetime_s: i64,
    pub id_token_lifetime_s: i64,
    /// A refresh token family's absolute lifetime (each rotation keeps the
    /// family's end).
    pub refresh_token_lifetime_s: i64,
    /// How long a pending authorization request waits for a login.
    pub pending_lifetime_s: i64,
    /// Signing keys are replaced after this long (`tilgang keys rotate`
    /// rotates at once).
    pub key_rotation_s: i64,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            code_lifetime_s: 60,
            access_token_lifetime_s: 3600,
            id_token_lifetime_s: 3600,
            refresh_token_lifetime_s: 30 * 24 * 3600,
            pending_lifetime_s: 30 * 60,
            key_rotation_s: 90 * 24 * 3600,
        }
    }
}

/// The data packages moved to sharing; re-exported so OIDC code keeps its
/// paths.
pub use crate::sharing::package::Package;

pub const GRANT_CODE: &str = "authorization_code";
pub const GRANT_REFRESH: &str = "refresh_token";
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
pub const GRANTS: &[&str] = &[GRANT_CODE, GRANT_REFRESH, GRANT_CLIENT_CREDENTIALS];

/// A registered service (an OpenID Connect client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub client_id: String,
    pub name: String,
    /// SHA-256 of the client secret; `None` for public clients and
    /// `private_key_jwt` clients.
    pub secret_hash: Option<[u8; 32]>,
    /// `private_key_jwt`: where the service publishes its keys, or the keys
    /// inline (a JWKS document).
    pub jwks_uri: Option<String>,
    pub jwks: Option<String>,
    /// Compared exactly, character for character.
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grants: Vec<String>,
    pub package: Package,
    /// The lowest `acr` the service accepts (`urn:tilgang:loa:1` or `:2`).
    pub min_acr: String,
    /// A public client (a browser or mobile app) has no secret and must use
    /// PKCE.
    pub public: bool,
    /// `RS256` (default) or `ES256` for the service's ID tokens.
    pub id_token_alg: String,
    /// Salt for the pairwise `sub` of the minimal package.
    pub pairwise_salt: [u8; 32],
    pub created_at: i64,
}

impl Service {
    pub fn allows(&self, grant: &str) -> bool {
        self.grants.iter().any(|g| g == grant)
    }
    /// Checks a presented secret against the stored hash in constant time.
    pub fn secret_matches(&self, presented: &str) -> bool {
        match &self.secret_hash {
            Some(h) => ct_eq(h, &hash_token(presented)),
            None => false,
        }
    }
    /// The subject a service sees: the stable user id from the small
    /// package up, a pairwise pseudonym for the minimal package.
    pub fn subject(&self, user_id: &str) -> String {
        if self.package == Package::Minimal {
            pairwise_subject(&self.pairwise_salt, user_id)
        } else {
            user_id.to_owned()
        }
    }
}

pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A random 256-bit token, base64url: codes, tokens, client secrets,
/// pending-request ids.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64.encode(bytes)
}

pub fn random_salt() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// SHA-256 of a high-entropy token: what the database keeps (a slow hash
/// adds nothing at 256 bits of entropy and would cap the token rate).
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub fn pairwise_subject(salt: &[u8; 32], user_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"tilgang-pairwise/1:");
    h.update(salt);
    h.update(user_id.as_bytes());
    B64.encode(h.finalize())
}

/// RFC 7636: the verifier's S256 transform equals the challenge. A
/// verifier of the wrong shape never matches.
pub fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    let shaped = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    shaped
        && ct_eq(
            B64.encode(Sha256::digest(verifier.as_bytes())).as_bytes(),
            challenge.as_bytes(),
        )
}

/// What an authorization grant carries from the login to the tokens: kept
/// with the code, and with each token issued from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct GrantData {
    pub person_id: Option<i64>,
    pub scope: String,
    pub nonce: Option<String>,
    pub redirect_uri: String,
    pub acr: String,
    pub amr: Vec<String>,
    pub auth_time: i64,
    /// The `claims` request parameter (its `userinfo` and `id_token` parts).
    pub claims: Option<serde_json::Value>,
    pub code_challenge: Option<String>,
    /// The SHA-256 (hex) of the session the login ran in, for logout.
    pub sid: Option<String>,
    /// The role context (`INSTITUTION/ACTOR`) the person acts in towards
    /// the service, when they have several; narrows the claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// A stored authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    pub code_hash: [u8; 32],
    pub client_id: String,
    pub grant: GrantData,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
    pub fn parse(s: &str) -> Option<TokenKind> {
        match s {
            "access" => Some(TokenKind::Access),
            "refresh" => Some(TokenKind::Refresh),
            _ => None,
        }
    }
}

/// A stored access or refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token_hash: [u8; 32],
    pub kind: TokenKind,
    pub client_id: String,
    /// The grant the token came from: every token of one code exchange and
    /// its refreshes shares it, so reuse revokes them together.
    pub family: String,
    pub grant: GrantData,
    pub created_at: i64,
    pub expires_at: i64,
    /// A refresh token that was rotated.
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl TokenRecord {
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.used_at.is_none() && now < self.expires_at
    }
}

/// A new token and its record (the token itself is never stored).
pub fn new_token(
    kind: TokenKind,
    client_id: &str,
    family: &str,
    grant: &GrantData,
    now: i64,
    expires_at: i64,
) -> (String, TokenRecord) {
    let token = random_token();
    let rec = TokenRecord {
        token_hash: hash_token(&token),
        kind,
        client_id: client_id.to_owned(),
        family: family.to_owned(),
        grant: grant.clone(),
        created_at: now,
        expires_at,
        used_at: None,
        revoked_at: None,
    };
    (token, rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_the_rfc_example() {
        // RFC 7636, appendix B.
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            v
        ));
        assert!(!pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN",
            v
        ));
        assert!(!pkce_matches("x", "short"));
    }

    #[test]
    fn pairwise_subjects_differ_per_service_and_are_stable() {
        let a = pairwise_subject(&[1; 32], "u1");
        assert_eq!(a, pairwise_subject(&[1; 32], "u1"));
        assert_ne!(a, pairwise_subject(&[2; 32], "u1"));
        assert!(!a.contains("u1"));
    }
}
