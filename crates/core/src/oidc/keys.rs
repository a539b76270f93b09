//! Signing keys: RS256 (2048-bit, required by OpenID Connect) and ES256,
//! generated at first start, their private halves sealed with the master
//! key's secrets key before they reach the database. A key signs until
//! `not_after` and stays published in the JWKS until `retire_at`, after the
//! last ID token it signed has expired.

use crate::crypto::DataKeys;
use crate::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const SEAL_PURPOSE: &str = "tilgang oidc signing key v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    RS256,
    ES256,
}

impl Alg {
    pub const ALL: &'static [Alg] = &[Alg::RS256, Alg::ES256];
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::ES256 => "ES256",
        }
    }
    pub fn parse(s: &str) -> Option<Alg> {
        match s {
            "RS256" => Some(Alg::RS256),
            "ES256" => Some(Alg::ES256),
            _ => None,
        }
    }
}

/// A signing key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub kid: String,
    pub alg: Alg,
    /// PKCS#8 DER, sealed (AES-256-GCM) with the secrets key.
    pub private_sealed: Vec<u8>,
    /// The public JWK, as published.
    pub public_jwk: String,
    pub created_at: i64,
    /// Signs no more from this time on (`None`: the current key).
    pub not_after: Option<i64>,
    /// Unpublished from this time on.
    pub retire_at: Option<i64>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("not_after", &self.not_after)
            .field("retire_at", &self.retire_at)
            .finish_non_exhaustive()
    }
}

impl KeyRecord {
    pub fn signs_at(&self, now: i64) -> bool {
        self.not_after.is_none_or(|t| now < t)
    }
    pub fn published_at(&self, now: i64) -> bool {
        self.retire_at.is_none_or(|t| now < t)
    }
}

/// RFC 7638 thumbprint of the required members, as the key id.
fn thumbprint(required: &Value) -> String {
    B64.encode(Sha256::digest(required.to_string().as_bytes()))
}

fn crypto(e: impl std::fmt::Display) -> Error {
    Error::Crypto(format!("signing key: {e}"))
}

/// Makes a new key of `alg`, sealed for storage.
pub fn generate(alg: Alg, keys: &DataKeys, now: i64) -> Result<KeyRecord> {
    use p256::pkcs8::EncodePrivateKey as _;
    let mut rng = rand::rngs::OsRng;
    let (der, mut jwk) = match alg {
        Alg::RS256 => {
            use rsa::traits::PublicKeyParts;
            let key = rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(crypto)?;
            let der = rsa::pkcs8::EncodePrivateKey::to_pkcs8_der(&key).map_err(crypto)?;
            // Members in lexicographic order, as the thumbprint needs.
            let jwk = json!({
                "e": B64.encode(key.e().to_bytes_be()),
                "kty": "RSA",
                "n": B64.encode(key.n().to_bytes_be()),
            });
            (der.as_bytes().to_vec(), jwk)
        }
        Alg::ES256 => {
            let key = p256::ecdsa::SigningKey::random(&mut rng);
            let der = key.to_pkcs8_der().map_err(crypto)?;
            let point = key.verifying_key().to_encoded_point(false);
            let (Some(x), Some(y)) = (point.x(), point.y()) else {
                return Err(crypto("a P-256 point without coordinates"));
            };
            let jwk = json!({
                "crv": "P-256",
                "kty": "EC",
                "x": B64.encode(x),
                "y": B64.encode(y),
            });
            (der.as_bytes().to_vec(), jwk)
        }
    };
    let kid = thumbprint(&jwk);
    if let Value::Object(m) = &mut jwk {
        m.insert("kid".into(), json!(kid));
        m.insert("alg".into(), json!(alg.as_str()));
        m.insert("use".into(), json!("sig"));
    }
    Ok(KeyRecord {
        kid,
        alg,
        private_sealed: keys.seal_secret(&der, SEAL_PURPOSE),
        public_jwk: jwk.to_string(),
        created_at: now,
        not_after: None,
        retire_at: None,
    })
}

enum Inner {
    Rsa(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
    Ec(p256::ecdsa::SigningKey),
}

/// An opened key that signs JWTs.
pub struct Signer {
    pub kid: String,
    pub alg: Alg,
    inner: Inner,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({} {})", self.alg.as_str(), self.kid)
    }
}

impl Signer {
    pub fn open(rec: &KeyRecord, keys: &DataKeys) -> Result<Signer> {
        let der = keys.open_secret(&rec.private_sealed, SEAL_PURPOSE)?;
        let inner = match rec.alg {
            Alg::RS256 => {
                let key =
                    <rsa::RsaPrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_der(&der)
                        .map_err(crypto)?;
                Inner::Rsa(Box::new(rsa::pkcs1v15::SigningKey::<Sha256>::new(key)))
            }
            Alg::ES256 => Inner::Ec(
                <p256::ecdsa::SigningKey as p256::pkcs8::DecodePrivateKey>::from_pkcs8_der(&der)
                    .map_err(crypto)?,
            ),
        };
        Ok(Signer {
            kid: rec.kid.clone(),
            alg: rec.alg,
            inner,
        })
    }

    /// A compact JWS over `claims`.
    pub fn sign_jwt(&self, claims: &Value) -> Result<String> {
        let header = json!({"alg": self.alg.as_str(), "kid": self.kid, "typ": "JWT"});
        let mut out = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = match &self.inner {
            Inner::Rsa(k) => {
                use rsa::signature::{RandomizedSigner, SignatureEncoding};
                // Blinded with fresh randomness (side-channel hardening).
                k.sign_with_rng(&mut rand::rngs::OsRng, out.as_bytes())
                    .to_vec()
            }
            Inner::Ec(k) => {
                use p256::ecdsa::signature::Signer as _;
                let s: p256::ecdsa::Signature = k.sign(out.as_bytes());
                s.to_bytes().to_vec()
            }
        };
        out.push('.');
        out.push_str(&B64.encode(sig));
        Ok(out)
    }
}

/// The JWKS document: every published key.
pub fn jwks(records: &[KeyRecord], now: i64) -> Value {
    let keys: Vec<Value> = records
        .iter()
        .filter(|r| r.published_at(now))
        .filter_map(|r| serde_json::from_str(&r.public_jwk).ok())
        .collect();
    json!({ "keys": keys })
}

/// The key of `alg` that signs now: the newest current one.
pub fn current(records: &[KeyRecord], alg: Alg, now: i64) -> Option<&KeyRecord> {
    records
        .iter()
        .filter(|r| r.alg == alg && r.signs_at(now))
        .max_by_key(|r| r.created_at)
}

/// Verifies a compact JWS signed with RS256 or ES256 by one of the keys
/// in `jwks` (a JWKS document; the header's `kid` picks the key when
/// given) and returns its claims. Every other algorithm (`none`, HMAC) is
/// refused.
pub fn verify_jws(jwt: &str, jwks: &Value) -> Result<Value> {
    let bad = |m: &str| Error::Crypto(format!("client assertion: {m}"));
    let mut parts = jwt.split('.');
    let (Some(h), Some(p), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not a compact JWS"));
    };
    let decode = |s: &str| B64.decode(s).map_err(|_| bad("not base64url"));
    let header: Value = serde_json::from_slice(&decode(h)?).map_err(|_| bad("bad header"))?;
    let alg = header["alg"]
        .as_str()
        .and_then(Alg::parse)
        .ok_or_else(|| bad("algorithm not allowed"))?;
    let kid = header["kid"].as_str();
    let sig = decode(sig)?;
    let signed = &jwt[..h.len() + 1 + p.len()];
    let keys = jwks["keys"].as_array().ok_or_else(|| bad("no keys"))?;
    let fits = |k: &&Value| {
        let kty = match alg {
            Alg::RS256 => "RSA",
            Alg::ES256 => "EC",
        };
        k["kty"] == kty
            && kid.is_none_or(|kid| k["kid"] == kid)
            && k.get("alg").is_none_or(|a| a == alg.as_str())
            && k.get("use").is_none_or(|u| u == "sig")
    };
    for k in keys.iter().filter(fits) {
        let field = |name: &str| k[name].as_str().map(|v| B64.decode(v)).and_then(|r| r.ok());
        let ok = match alg {
            Alg::RS256 => {
                use rsa::signature::Verifier;
                let (Some(n), Some(e)) = (field("n"), field("e")) else {
                    continue;
                };
                let Ok(key) = rsa::RsaPublicKey::new(
                    rsa::BigUint::from_bytes_be(&n),
                    rsa::BigUint::from_bytes_be(&e),
                ) else {
                    continue;
                };
                let Ok(s) = rsa::pkcs1v15::Signature::try_from(sig.as_slice()) else {
                    continue;
                };
                rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key)
                    .verify(signed.as_bytes(), &s)
                    .is_ok()
            }
            Alg::ES256 => {
                use p256::ecdsa::signature::Verifier;
                if k["crv"] != "P-256" {
                    continue;
                }
                let (Some(x), Some(y)) = (field("x"), field("y")) else {
                    continue;
                };
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                let Ok(key) = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point) else {
                    continue;
                };
                let Ok(s) = p256::ecdsa::Signature::from_slice(&sig) else {
                    continue;
                };
                key.verify(signed.as_bytes(), &s).is_ok()
            }
        };
        if ok {
            return serde_json::from_slice(&decode(p)?).map_err(|_| bad("bad claims"));
        }
    }
    Err(bad("no key verifies the signature"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_sign_and_publish_without_their_private_half() {
        let dk = DataKeys::from_master(&[3; 32]);
        for &alg in Alg::ALL {
            let rec = generate(alg, &dk, 100).unwrap();
            let jwk: Value = serde_json::from_str(&rec.public_jwk).unwrap();
            assert_eq!(jwk["kid"], rec.kid);
            assert!(jwk.get("d").is_none() && jwk.get("p").is_none());
            let jwt = Signer::open(&rec, &dk)
                .unwrap()
                .sign_jwt(&json!({"sub": "x"}))
                .unwrap();
            assert_eq!(jwt.split('.').count(), 3);
            assert!(Signer::open(&rec, &DataKeys::from_master(&[4; 32])).is_err());
            let set = json!({"keys": [serde_json::from_str::<Value>(&rec.public_jwk).unwrap()]});
            assert_eq!(verify_jws(&jwt, &set).unwrap()["sub"], "x");
            let mut forged = jwt.clone();
            forged.replace_range(jwt.len() - 4.., "AAAA");
            assert!(verify_jws(&forged, &set).is_err());
            let none = format!(
                "{}.{}.",
                B64.encode(r#"{"alg":"none"}"#),
                B64.encode(r#"{"sub":"x"}"#)
            );
            assert!(verify_jws(&none, &set).is_err());
        }
    }
}
