//! Time-based one-time passwords (RFC 6238): HMAC-SHA1, 6 digits, 30-second
//! steps, one step of tolerance either way. A code is accepted only when
//! its step is newer than the last accepted one, so a code (or an older
//! one) is never accepted twice; the store enforces that atomically.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;

pub const STEP_S: i64 = 30;
pub const DIGITS: u32 = 6;
/// Steps accepted either side of now (clock drift, slow typing).
pub const WINDOW: i64 = 1;
/// 160 bits, as RFC 4226 recommends for HMAC-SHA1.
pub const SEED_LEN: usize = 20;

pub fn new_seed() -> [u8; SEED_LEN] {
    let mut seed = [0u8; SEED_LEN];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    seed
}

/// The time step a Unix time falls in.
pub fn step_of(unix: i64) -> i64 {
    unix.div_euclid(STEP_S)
}

/// The HOTP value (RFC 4226) of `counter`, with `digits` digits.
pub fn hotp(seed: &[u8], counter: u64, digits: u32) -> u32 {
    let Ok(mut mac) = <Hmac<Sha1> as Mac>::new_from_slice(seed) else {
        return 0; // HMAC takes keys of any length
    };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = (h[h.len() - 1] & 0x0f) as usize;
    let bin = u32::from_be_bytes([
        h[offset] & 0x7f,
        h[offset + 1],
        h[offset + 2],
        h[offset + 3],
    ]);
    bin % 10u32.pow(digits)
}

/// The 6-digit code for a time step, zero-padded.
pub fn code_at(seed: &[u8], step: i64) -> String {
    format!(
        "{:0width$}",
        hotp(seed, step.max(0) as u64, DIGITS),
        width = DIGITS as usize
    )
}

/// The step whose code `typed` is, within the window around `now`, and
/// newer than `last_step`; `None` for a wrong or replayed code. Spaces are
/// ignored; comparisons take the same time whatever matches.
pub fn verify(seed: &[u8], typed: &str, now: i64, last_step: Option<i64>) -> Option<i64> {
    matching_step(seed, typed, now).filter(|s| last_step.is_none_or(|last| *s > last))
}

/// The step within the window whose code `typed` is, replayed or not.
pub fn matching_step(seed: &[u8], typed: &str, now: i64) -> Option<i64> {
    let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if typed.len() != DIGITS as usize || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_of(now);
    let mut found = None;
    // Newest first, so a code valid for two steps (never, in practice)
    // counts as the newer one.
    for step in (current - WINDOW..=current + WINDOW).rev() {
        let code = code_at(seed, step);
        let same = code
            .bytes()
            .zip(typed.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        if same && found.is_none() {
            found = Some(step);
        }
    }
    found
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding, as authenticator apps expect.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The seed in groups of four, for typing into an app by hand.
pub fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `otpauth://` URI an authenticator app reads from the QR code.
pub fn otpauth_uri(login: &str, seed: &[u8]) -> String {
    let login: String = login
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!(
        "otpauth://totp/tilgang:{login}?secret={}&issuer=tilgang&algorithm=SHA1&digits={DIGITS}&period={STEP_S}",
        base32(seed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (8 digits; the seed is ASCII
    /// "12345678901234567890").
    #[test]
    fn rfc_6238_test_vectors() {
        let seed = b"12345678901234567890";
        for (t, expected) in [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(seed, step_of(t) as u64, 8), expected, "T = {t}");
        }
        assert_eq!(code_at(seed, step_of(59)), "287082");
        assert_eq!(code_at(seed, step_of(1111111109)), "081804");
    }

    #[test]
    fn one_step_either_way_is_accepted_and_no_more() {
        let seed = new_seed();
        let now = 1_800_000_015;
        let s = step_of(now);
        for d in -1..=1 {
            assert_eq!(
                verify(&seed, &code_at(&seed, s + d), now, None),
                Some(s + d)
            );
        }
        assert_eq!(verify(&seed, &code_at(&seed, s - 2), now, None), None);
        assert_eq!(verify(&seed, &code_at(&seed, s + 2), now, None), None);
        let spaced = code_at(&seed, s);
        let spaced = format!("{} {}", &spaced[..3], &spaced[3..]);
        assert_eq!(verify(&seed, &spaced, now, None), Some(s));
        assert_eq!(verify(&seed, "12345", now, None), None);
        assert_eq!(verify(&seed, "abcdef", now, None), None);
    }

    #[test]
    fn a_code_is_refused_once_its_step_was_used() {
        let seed = new_seed();
        let now = 1_800_000_015;
        let s = step_of(now);
        let code = code_at(&seed, s);
        assert_eq!(verify(&seed, &code, now, Some(s - 1)), Some(s));
        assert_eq!(verify(&seed, &code, now, Some(s)), None, "replay");
        // An older code stays refused after a newer one was used.
        assert_eq!(verify(&seed, &code_at(&seed, s - 1), now, Some(s)), None);
        assert_eq!(matching_step(&seed, &code, now), Some(s));
    }

    #[test]
    fn base32_and_the_uri_follow_rfc_4648_and_the_key_uri_format() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(&[0u8; 20]).len(), 32);
        assert_eq!(grouped("ABCDEFGHIJ"), "ABCD EFGH IJ");
        let uri = otpauth_uri("anna b", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/tilgang:anna%20b?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=tilgang&algorithm=SHA1&digits=6&period=30"
        );
        assert_ne!(new_seed(), new_seed());
    }
}
