//! Key material. One master key lives in a key file created at first start
//! (mode 0600); the keys for CPR encryption, CPR look-up hashes and secrets
//! stored in the database are derived from it, so one file is all an
//! operator must keep safe (and back up).

use crate::roster::Cpr;
use crate::{Error, Result};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::io::Write;
use std::path::Path;

const HEADER: &str = "tilgang-master-key/1";
const NONCE_LEN: usize = 12;

type HmacSha256 = Hmac<Sha256>;

/// The keys derived from the master key. Cheap to clone; never printed.
#[derive(Clone)]
pub struct DataKeys {
    cpr_cipher: Aes256Gcm,
    cpr_lookup: HmacSha256,
    secrets_cipher: Aes256Gcm,
    token_mac: HmacSha256,
}

impl std::fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKeys(..)")
    }
}

fn derive(master: &[u8; 32], purpose: &str) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(master).unwrap_or_else(|_| unreachable!());
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().into()
}

impl DataKeys {
    pub fn from_master(master: &[u8; 32]) -> Self {
        let cpr = derive(master, "tilgang cpr encryption v1");
        let lookup = derive(master, "tilgang cpr lookup v1");
        let secrets = derive(master, "tilgang stored secrets v1");
        let tokens = derive(master, "tilgang sealed tokens v1");
        DataKeys {
            cpr_cipher: Aes256Gcm::new(&cpr.into()),
            cpr_lookup: <HmacSha256 as Mac>::new_from_slice(&lookup)
                .unwrap_or_else(|_| unreachable!()),
            secrets_cipher: Aes256Gcm::new(&secrets.into()),
            token_mac: <HmacSha256 as Mac>::new_from_slice(&tokens)
                .unwrap_or_else(|_| unreachable!()),
        }
    }

    /// Reads the key file, creating it (mode 0600, never overwriting) when
    /// it does not exist yet.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        let ctx = || format!("key file {}", path.display());
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let master =
                    parse_key_file(&text).map_err(|m| Error::Crypto(format!("{}: {m}", ctx())))?;
                Ok(Self::from_master(&master))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut master = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut master);
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| Error::io(ctx(), e))?;
                }
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                match opts.open(path) {
                    Ok(mut f) => {
                        writeln!(f, "{HEADER}\n{}", hex::encode(master))
                            .map_err(|e| Error::io(ctx(), e))?;
                        f.sync_all().map_err(|e| Error::io(ctx(), e))?;
                        Ok(Self::from_master(&master))
                    }
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(path)
                    }
                    Err(e) => Err(Error::io(ctx(), e)),
                }
            }
            Err(e) => Err(Error::io(ctx(), e)),
        }
    }

    pub fn encrypt_cpr(&self, cpr: &Cpr) -> Vec<u8> {
        seal(&self.cpr_cipher, cpr.expose().as_bytes(), b"cpr")
    }

    pub fn decrypt_cpr(&self, blob: &[u8]) -> Result<Cpr> {
        let plain = open(&self.cpr_cipher, blob, b"cpr")?;
        std::str::from_utf8(&plain)
            .ok()
            .and_then(Cpr::parse)
            .ok_or_else(|| {
                Error::Crypto("a stored CPR number did not decrypt to a CPR number".into())
            })
    }

    /// The keyed hash stored beside an encrypted CPR number, for look-ups:
    /// 64 bits of HMAC-SHA-256, which keeps the index small; a look-up
    /// confirms a match by decrypting.
    pub fn cpr_lookup_hash(&self, cpr: &Cpr) -> i64 {
        let mut mac = self.cpr_lookup.clone();
        mac.update(cpr.expose().as_bytes());
        let full = mac.finalize().into_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&full[..8]);
        i64::from_be_bytes(first)
    }

    /// Encrypts a secret for storage in the database (signing keys and the
    /// like); `purpose` binds the ciphertext to its use.
    pub fn seal_secret(&self, plaintext: &[u8], purpose: &str) -> Vec<u8> {
        seal(&self.secrets_cipher, plaintext, purpose.as_bytes())
    }

    pub fn open_secret(&self, blob: &[u8], purpose: &str) -> Result<Vec<u8>> {
        open(&self.secrets_cipher, blob, purpose.as_bytes())
    }

    /// HMAC-SHA-256 of a sealed token's body (`oidc::sealed`).
    pub fn token_mac(&self, body: &[u8]) -> [u8; 32] {
        let mut mac = self.token_mac.clone();
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is the MAC of `body`, in constant time.
    pub fn token_mac_matches(&self, body: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.token_mac.clone();
        mac.update(body);
        mac.verify_slice(tag).is_ok()
    }
}

fn parse_key_file(text: &str) -> std::result::Result<[u8; 32], &'static str> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err("not a tilgang master key file");
    }
    let bytes = hex::decode(lines.next().unwrap_or("").trim()).map_err(|_| "the key is not hex")?;
    bytes.try_into().map_err(|_| "the key is not 32 bytes")
}

fn seal(cipher: &Aes256Gcm, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap_or_default(); // AES-GCM encryption only fails past 64 GiB
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

fn open(cipher: &Aes256Gcm, blob: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    if blob.len() < NONCE_LEN + 16 {
        return Err(Error::Crypto("a stored ciphertext is truncated".into()));
    }
    let (nonce, ct) = blob.split_at(NONCE_LEN);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| {
            Error::Crypto(
                "a stored ciphertext does not match the master key (wrong key file?)".into(),
            )
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/master.key");
        let a = DataKeys::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let b = DataKeys::load_or_create(&path).unwrap();
        let cpr = Cpr::parse("3002101234").unwrap();
        let blob = a.encrypt_cpr(&cpr);
        assert_eq!(b.decrypt_cpr(&blob).unwrap(), cpr);
        assert_eq!(a.cpr_lookup_hash(&cpr), b.cpr_lookup_hash(&cpr));
        assert!(!blob.windows(10).any(|w| w == b"3002101234"));
    }

    #[test]
    fn a_wrong_key_is_refused_without_leaking() {
        let a = DataKeys::from_master(&[1; 32]);
        let b = DataKeys::from_master(&[2; 32]);
        let blob = a.encrypt_cpr(&Cpr::parse("010203-4567").unwrap());
        let err = b.decrypt_cpr(&blob).unwrap_err().to_string();
        assert!(!err.contains("4567"));
        assert_ne!(
            a.cpr_lookup_hash(&Cpr::parse("0102034567").unwrap()),
            b.cpr_lookup_hash(&Cpr::parse("0102034567").unwrap())
        );
    }

    #[test]
    fn cpr_debug_never_shows_the_number() {
        let cpr = Cpr::parse("0102034567").unwrap();
        assert!(!format!("{cpr:?}").contains("0102"));
    }
}
