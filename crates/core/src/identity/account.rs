//! Accounts of roster persons: activation codes, passwords, and the
//! consecutive-failure lockout with a growing delay.

use rand::Rng;
use sha2::{Digest, Sha256};

/// Lockout after consecutive failures (default from the state LMS
/// agreement: 3), for a growing delay; never permanent unless configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub threshold: u32,
    /// Delays in seconds for the 1st, 2nd, … lockout; the last repeats.
    pub delays_s: Vec<i64>,
    /// Lock until an admin unlocks after this many lockouts in a row.
    pub permanent_after: Option<u32>,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            threshold: 3,
            delays_s: vec![60, 5 * 60, 15 * 60, 60 * 60],
            permanent_after: None,
        }
    }
}

/// An account's failure state after one more failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureState {
    pub failed_logins: i32,
    pub lockouts: i32,
    /// Unix seconds; `i64::MAX` for a permanent lock.
    pub locked_until: Option<i64>,
}

impl LockoutPolicy {
    pub fn after_failure(&self, failed_logins: i32, lockouts: i32, now: i64) -> FailureState {
        let failed = failed_logins + 1;
        if (failed as u32) < self.threshold {
            return FailureState {
                failed_logins: failed,
                lockouts,
                locked_until: None,
            };
        }
        let lockouts = lockouts + 1;
        let permanent = self.permanent_after.is_some_and(|n| lockouts as u32 >= n);
        let delay = self
            .delays_s
            .get((lockouts as usize).saturating_sub(1))
            .or(self.delays_s.last())
            .copied()
            .unwrap_or(60);
        FailureState {
            failed_logins: 0,
            lockouts,
            locked_until: Some(if permanent { i64::MAX } else { now + delay }),
        }
    }
}

/// Letters and digits that cannot be mistaken for one another when read
/// aloud or copied from paper (no 0/O, 1/I/L).
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// A one-time activation code (12 characters, ~59 bits; short-lived and
/// single-use) for display, and the hash that is stored.
pub fn activation_code() -> (String, [u8; 32]) {
    let mut rng = rand::rngs::OsRng;
    let raw: String = (0..12)
        .map(|_| CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char)
        .collect();
    let shown = format!("{}-{}-{}", &raw[0..4], &raw[4..8], &raw[8..12]);
    let hash = hash_code(&shown);
    (shown, hash)
}

/// Normalises what a person typed (case, spaces, dashes) and hashes it.
pub fn hash_code(typed: &str) -> [u8; 32] {
    let norm: String = typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    Sha256::digest(format!("tilgang-activation/1:{norm}").as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_failures_lock_with_a_growing_delay() {
        let p = LockoutPolicy::default();
        let s1 = p.after_failure(0, 0, 1000);
        let s2 = p.after_failure(s1.failed_logins, s1.lockouts, 1000);
        assert_eq!(s2.locked_until, None);
        let s3 = p.after_failure(s2.failed_logins, s2.lockouts, 1000);
        assert_eq!(s3.locked_until, Some(1060));
        let mut s = s3;
        for expected in [1000 + 300, 1000 + 900, 1000 + 3600, 1000 + 3600] {
            for _ in 0..2 {
                s = p.after_failure(s.failed_logins, s.lockouts, 1000);
            }
            s = p.after_failure(s.failed_logins, s.lockouts, 1000);
            assert_eq!(s.locked_until, Some(expected));
        }
    }

    #[test]
    fn a_permanent_lock_only_when_configured() {
        let p = LockoutPolicy {
            threshold: 1,
            permanent_after: Some(2),
            ..LockoutPolicy::default()
        };
        let s = p.after_failure(0, 0, 0);
        assert_eq!(s.locked_until, Some(60));
        assert_eq!(
            p.after_failure(0, s.lockouts, 0).locked_until,
            Some(i64::MAX)
        );
    }

    #[test]
    fn activation_codes_are_forgiving_to_type() {
        let (code, hash) = activation_code();
        assert_eq!(code.len(), 14);
        assert_eq!(hash_code(&code.to_lowercase().replace('-', " ")), hash);
        assert_ne!(activation_code().0, code);
    }
}
