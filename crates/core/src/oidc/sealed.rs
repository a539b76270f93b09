//! Sealed access tokens for the client-credentials grant: the token
//! carries its own record (service, scope, times, a random id) under an
//! HMAC from the master key, so issuing one writes only its audit event,
//! no token row. Every replica shares the master key and checks them
//! alike. A revoked one is remembered as a stored row marked revoked
//! (until it would have expired), so every check still reads the store
//! once: `find` returns that row when there is one.

use super::{hash_token, random_token, GrantData, TokenKind, TokenRecord};
use crate::crypto::DataKeys;
use crate::store::Store;
use crate::Result;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

const PREFIX: &str = "tgs1.";

#[derive(Serialize, Deserialize)]
struct Body {
    /// client id
    c: String,
    /// scope
    s: String,
    /// issued at, expires at (Unix seconds)
    i: i64,
    e: i64,
    /// random id: no two tokens alike; the family of its record
    n: String,
}

fn record(token: &str, b: Body) -> TokenRecord {
    TokenRecord {
        token_hash: hash_token(token),
        kind: TokenKind::Access,
        client_id: b.c,
        family: format!("sealed:{}", b.n),
        grant: GrantData {
            scope: b.s,
            ..Default::default()
        },
        created_at: b.i,
        expires_at: b.e,
        used_at: None,
        revoked_at: None,
    }
}

/// A new client-credentials access token and the record it stands for.
pub fn issue(
    keys: &DataKeys,
    client_id: &str,
    scope: &str,
    now: i64,
    expires_at: i64,
) -> Result<(String, TokenRecord)> {
    let body = Body {
        c: client_id.to_owned(),
        s: scope.to_owned(),
        i: now,
        e: expires_at,
        n: random_token(),
    };
    let json = serde_json::to_vec(&body).map_err(crate::Error::store)?;
    let mut token = format!("{PREFIX}{}", B64.encode(json));
    let tag = keys.token_mac(token.as_bytes());
    token.push('.');
    token.push_str(&B64.encode(tag));
    let rec = record(&token, body);
    Ok((token, rec))
}

/// The record a sealed token stands for, if `token` is one and its MAC
/// holds (not yet checked: expiry and revocation).
pub fn open(keys: &DataKeys, token: &str) -> Option<TokenRecord> {
    let (signed, tag) = token.rsplit_once('.')?;
    let body = signed.strip_prefix(PREFIX)?;
    let tag = B64.decode(tag).ok()?;
    if !keys.token_mac_matches(signed.as_bytes(), &tag) {
        return None;
    }
    let body: Body = serde_json::from_slice(&B64.decode(body).ok()?).ok()?;
    Some(record(token, body))
}

/// The record behind a presented token: a stored one (every token but a
/// sealed one, and a sealed one once revoked), else the record a sealed
/// token carries when its MAC holds.
pub async fn find(store: &dyn Store, keys: &DataKeys, token: &str) -> Result<Option<TokenRecord>> {
    if let Some(stored) = store.token(&hash_token(token)).await? {
        return Ok(Some(stored));
    }
    Ok(open(keys, token))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_sealed_token_opens_only_whole_and_with_its_key() {
        let keys = DataKeys::from_master(&[1; 32]);
        let (token, rec) = issue(&keys, "matte", "api", 100, 700).unwrap();
        let opened = open(&keys, &token).unwrap();
        assert_eq!(opened, rec);
        assert_eq!(opened.client_id, "matte");
        assert_eq!((opened.created_at, opened.expires_at), (100, 700));
        assert!(opened.is_active(699) && !opened.is_active(700));
        let (other, _) = issue(&keys, "matte", "api", 100, 700).unwrap();
        assert_ne!(token, other, "a random id makes each token unique");

        assert!(open(&DataKeys::from_master(&[2; 32]), &token).is_none());
        // Another service's body under this tag, or a cut-off tag.
        let (signed, tag) = token.rsplit_once('.').unwrap();
        let (signed2, _) = other.rsplit_once('.').unwrap();
        assert!(open(&keys, &format!("{signed2}.{tag}")).is_none());
        assert!(open(&keys, &format!("{signed}.{}", &tag[..10])).is_none());
        assert!(open(&keys, signed).is_none());
        assert!(open(&keys, "tgs1.e30.AAAA").is_none());
    }
}
