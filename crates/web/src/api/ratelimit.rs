//! Rate limits per service: a token bucket keyed by client id, in process
//! memory. Each replica keeps its own buckets, so N replicas allow N times
//! the configured rate; a database round trip per request would cost
//! more than the lookup it guards.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Services are few (hundreds); past this many buckets the full ones are
/// dropped, which loses nothing.
const MAX_BUCKETS: usize = 10_000;

impl RateLimiter {
    pub fn new(rate_per_second: f64, burst: u32) -> RateLimiter {
        RateLimiter {
            rate: rate_per_second.max(0.001),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`: `Ok` when there was one, else the whole
    /// seconds to wait for the next (at least 1), for `Retry-After`.
    pub fn take(&self, key: &str) -> Result<(), u64> {
        self.take_at(key, Instant::now())
    }

    fn take_at(&self, key: &str, now: Instant) -> Result<(), u64> {
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            // A panic while holding the lock left plain numbers behind.
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let b = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_rate_per_service() {
        let l = RateLimiter::new(10.0, 3);
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.take_at("a", t), Ok(()));
        }
        assert_eq!(l.take_at("a", t), Err(1));
        // Another service has its own bucket.
        assert_eq!(l.take_at("b", t), Ok(()));
        // 100 ms at 10/s: one more.
        let later = t + Duration::from_millis(100);
        assert_eq!(l.take_at("a", later), Ok(()));
        assert!(l.take_at("a", later).is_err());
        let slow = RateLimiter::new(0.1, 1);
        assert_eq!(slow.take_at("a", t), Ok(()));
        assert_eq!(slow.take_at("a", t), Err(10));
    }
}
