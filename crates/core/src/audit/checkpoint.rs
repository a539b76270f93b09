//! Signed checkpoints: every so many events or minutes, the chain's head
//! (sequence number, hash, time) is signed with an Ed25519 key that lives in
//! the database, sealed under the master key. Whoever holds an exported
//! checkpoint and the public key can later prove that nothing up to it
//! changed, even if someone rewrote the whole chain with fresh hashes, and
//! after retention has removed old events (`audit::retention`).

use super::Head;
use crate::audit::actions;
use crate::crypto::DataKeys;
use crate::store::Store;
use crate::{Clock, Error, Result};
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier as _, VerifyingKey};
use serde::Serialize;
use sha2::{Digest, Sha256};

const PURPOSE: &str = "audit-checkpoint-key";

/// A signed statement: "event `seq` of the chain has hash `hash`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    pub seq: i64,
    #[serde(with = "hex_32")]
    pub hash: [u8; 32],
    /// Microseconds since the Unix epoch, UTC, when it was signed.
    pub at_us: i64,
    /// Which key signed it (see [`AuditKey::id`]).
    pub key_id: String,
    #[serde(serialize_with = "b64")]
    pub signature: Vec<u8>,
}

/// The checkpoint signing key as stored: public half in the clear, private
/// half sealed under the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditKey {
    /// The first 16 hex digits of the SHA-256 of the public key.
    pub id: String,
    pub public: [u8; 32],
    pub sealed_private: Vec<u8>,
    pub created_at_us: i64,
}

impl AuditKey {
    /// The public key as a JWK (RFC 8037), for the well-known URL.
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "use": "sig",
            "kid": self.id,
            "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.public),
        })
    }
}

/// When a checkpoint is due: after this many new events, or this many
/// seconds after the last one when anything new was written.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointPolicy {
    pub every_events: i64,
    pub every_s: i64,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            every_events: 10_000,
            every_s: 3600,
        }
    }
}

/// The bytes a checkpoint's signature covers.
fn message(seq: i64, hash: &[u8; 32], at_us: i64) -> Vec<u8> {
    let mut m = b"tilgang-audit-checkpoint/1".to_vec();
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m.extend_from_slice(&at_us.to_be_bytes());
    m
}

fn key_id(public: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(public)[..8])
}

impl Checkpoint {
    pub fn sign(key: &SigningKey, head: Head, at_us: i64) -> Checkpoint {
        let public = key.verifying_key().to_bytes();
        Checkpoint {
            seq: head.seq,
            hash: head.hash,
            at_us,
            key_id: key_id(&public),
            signature: key
                .sign(&message(head.seq, &head.hash, at_us))
                .to_bytes()
                .to_vec(),
        }
    }

    /// Whether `public` signed exactly this checkpoint.
    pub fn verify(&self, public: &[u8; 32]) -> bool {
        let (Ok(key), Ok(sig)) = (
            VerifyingKey::from_bytes(public),
            Signature::from_slice(&self.signature),
        ) else {
            return false;
        };
        key_id(public) == self.key_id
            && key
                .verify(&message(self.seq, &self.hash, self.at_us), &sig)
                .is_ok()
    }
}

/// The signing key, made and stored at first use. Two replicas racing here
/// both insert; the store keeps the first, and both then use it.
pub async fn signing_key(
    store: &dyn Store,
    keys: &DataKeys,
    clock: &dyn Clock,
) -> Result<SigningKey> {
    if store.audit_key().await?.is_none() {
        let fresh = SigningKey::generate(&mut rand::rngs::OsRng);
        let public = fresh.verifying_key().to_bytes();
        let record = AuditKey {
            id: key_id(&public),
            public,
            sealed_private: keys.seal_secret(&fresh.to_bytes(), PURPOSE),
            created_at_us: (clock.now().unix_timestamp_nanos() / 1000) as i64,
        };
        let ev = crate::audit::NewEvent::new("system", actions::AUDIT_KEY_CREATED)
            .details(serde_json::json!({"key_id": record.id}));
        store.insert_audit_key(&record, clock.now(), ev).await?;
    }
    let stored = store
        .audit_key()
        .await?
        .ok_or_else(|| Error::Store("the audit key vanished".into()))?;
    let private: [u8; 32] = keys
        .open_secret(&stored.sealed_private, PURPOSE)?
        .try_into()
        .map_err(|_| Error::Store("the stored audit key is malformed".into()))?;
    Ok(SigningKey::from_bytes(&private))
}

/// Signs the current head when the policy says one is due (or `force`);
/// returns the new checkpoint. Safe to run on every replica at once: a
/// checkpoint for a sequence number that already has one is not stored twice.
pub async fn checkpoint_if_due(
    store: &dyn Store,
    keys: &DataKeys,
    clock: &dyn Clock,
    policy: CheckpointPolicy,
    force: bool,
) -> Result<Option<Checkpoint>> {
    let head = store.stored_head().await?;
    let last = store.latest_checkpoint().await?;
    let now_us = (clock.now().unix_timestamp_nanos() / 1000) as i64;
    // The first checkpoint is due as soon as there is anything to sign.
    let due = match &last {
        None => head.seq > 0,
        Some(c) => {
            head.seq > c.seq
                && (force
                    || head.seq - c.seq >= policy.every_events
                    || now_us - c.at_us >= policy.every_s * 1_000_000)
        }
    };
    if !due {
        return Ok(None);
    }
    let key = signing_key(store, keys, clock).await?;
    // Making the key may have written its event: sign the head after it.
    let head = store.stored_head().await?;
    let cp = Checkpoint::sign(&key, head, now_us);
    store.add_checkpoint(&cp).await?;
    Ok(Some(cp))
}

mod hex_32 {
    pub fn serialize<S: serde::Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
}

fn b64<S: serde::Serializer>(v: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_checkpoint_verifies_only_unchanged_and_with_its_key() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let public = key.verifying_key().to_bytes();
        let cp = Checkpoint::sign(
            &key,
            Head {
                seq: 42,
                hash: [1; 32],
            },
            1_000,
        );
        assert!(cp.verify(&public));
        let mut other = cp.clone();
        other.hash[0] ^= 1;
        assert!(!other.verify(&public), "a changed hash");
        let mut later = cp.clone();
        later.seq = 43;
        assert!(!later.verify(&public), "a changed sequence number");
        let stranger = SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
        assert!(!cp.verify(&stranger), "another key");
    }
}

/// What a full verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub events: u64,
    pub checkpoints: usize,
    pub head: Head,
}

/// Walks the whole stored chain against its stored head and every signed
/// checkpoint (whose signatures are checked first). The outer error is a
/// store failure; the inner one names the first broken link.
pub async fn verify_store(
    store: &dyn Store,
) -> Result<std::result::Result<Verified, super::Broken>> {
    let key = store.audit_key().await?;
    let mut checkpoints = Vec::new();
    loop {
        let after = checkpoints.last().map_or(0, |c: &Checkpoint| c.seq);
        let page = store.checkpoints(after, 10_000).await?;
        if page.is_empty() {
            break;
        }
        checkpoints.extend(page);
    }
    for cp in &checkpoints {
        if !key.as_ref().is_some_and(|k| cp.verify(&k.public)) {
            return Ok(Err(super::Broken {
                seq: cp.seq,
                reason: "the signed checkpoint for this event does not verify with the audit key"
                    .into(),
            }));
        }
    }
    let head = store.stored_head().await?;
    // After retention the chain starts after a signed checkpoint.
    let start = match store.audit_page(0, 1).await?.first().map(|e| e.seq) {
        Some(first) if first > 1 => match checkpoints.iter().find(|c| c.seq == first - 1) {
            Some(c) => Head {
                seq: c.seq,
                hash: c.hash,
            },
            None => {
                return Ok(Err(super::Broken {
                    seq: 1,
                    reason: format!(
                    "events 1 to {} are gone, and no signed checkpoint marks a retention cut there",
                    first - 1
                ),
                }))
            }
        },
        _ => Head::default(),
    };
    let mut v = super::Verifier::new(start);
    v.expect(
        checkpoints
            .iter()
            .map(|c| Head {
                seq: c.seq,
                hash: c.hash,
            })
            .collect(),
    );
    // The next page is read while this one is checked, and the hashes of a
    // page are computed on all cores; the links are then checked in order.
    const PAGE: usize = 20_000;
    let mut page = store.audit_page(start.seq, PAGE).await?;
    while let Some(last) = page.last() {
        let after = last.seq;
        let check = async {
            use rayon::prelude::*;
            let hashes: Vec<_> = page.par_iter().map(|e| e.compute_hash()).collect();
            page.iter()
                .zip(hashes)
                .try_for_each(|(e, h)| v.push_hashed(e, h))
        };
        let (next, checked) =
            futures_util::future::join(store.audit_page(after, PAGE), check).await;
        if let Err(b) = checked {
            return Ok(Err(b));
        }
        page = next?;
    }
    Ok(v.finish(head).map(|head| Verified {
        events: v.checked,
        checkpoints: checkpoints.len(),
        head,
    }))
}
