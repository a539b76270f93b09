//! Recovery codes: ten single-use codes made with the first second factor,
//! shown once, kept only as SHA-256 hashes. Each is 12 Crockford base32
//! characters (60 bits), read and typed forgivingly.

use rand::Rng;
use sha2::{Digest, Sha256};

pub const COUNT: usize = 10;
/// Crockford's base32: no I, L, O or U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Ten fresh codes for display, and their hashes for the store.
pub fn new_codes() -> (Vec<String>, Vec<[u8; 32]>) {
    let mut rng = rand::rngs::OsRng;
    let codes: Vec<String> = (0..COUNT)
        .map(|_| {
            let raw: Vec<u8> = (0..12).map(|_| ALPHABET[rng.gen_range(0..32)]).collect();
            let raw = String::from_utf8_lossy(&raw).into_owned();
            format!("{}-{}-{}", &raw[0..4], &raw[4..8], &raw[8..12])
        })
        .collect();
    let hashes = codes.iter().map(|c| hash_code(c)).collect();
    (codes, hashes)
}

/// Normalises what a person typed (case, spaces, dashes; O for 0 and I or
/// L for 1, as Crockford decodes them) and hashes it.
pub fn hash_code(typed: &str) -> [u8; 32] {
    let norm: String = typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect();
    Sha256::digest(format!("tilgang-recovery/1:{norm}").as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_long_and_forgiving_to_type() {
        let (codes, hashes) = new_codes();
        assert_eq!(codes.len(), COUNT);
        assert_eq!(hashes.len(), COUNT);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), COUNT);
        for (c, h) in codes.iter().zip(&hashes) {
            assert_eq!(c.len(), 14);
            assert!(c.bytes().all(|b| b == b'-' || ALPHABET.contains(&b)));
            assert_eq!(hash_code(&c.to_lowercase().replace('-', " ")), *h);
        }
        assert_eq!(hash_code("0000-1111"), hash_code("oooo-iiLL"));
    }
}
