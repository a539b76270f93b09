//! A process-memory cache of the keys `private_key_jwt` services publish at
//! their JWKS URI. Only a cache: every replica fills its own, and losing it
//! costs one fetch. Bounded in entries; an entry lives as long as the
//! service's `Cache-Control: max-age` says, within a floor and a ceiling.
//! An assertion naming a `kid` the cached document lacks (the service
//! rotated its keys) refetches once, but never sooner than
//! [`MIN_REFETCH`] after the last fetch of that URI, so assertions with
//! made-up `kid`s cannot make tilgang hammer a service's server.

use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// At most this many URIs are remembered; the least recently fetched one
/// makes room.
pub const CAPACITY: usize = 256;
/// A document is kept at least this long, whatever its headers say
/// (`no-store` or `max-age=0` included): a service's keys change rarely,
/// and a new `kid` triggers a refetch anyway.
pub const FLOOR: Duration = Duration::from_secs(5 * 60);
/// And at most this long, so a removed key stops working within a day.
pub const CEILING: Duration = Duration::from_secs(24 * 3600);
/// Without a usable `max-age`.
pub const DEFAULT: Duration = Duration::from_secs(3600);
/// Fetches of one URI are at least this far apart.
pub const MIN_REFETCH: Duration = Duration::from_secs(30);

/// Times are unix seconds from the injected clock.
struct Entry {
    jwks: Option<Value>,
    fresh_until: i64,
    fetched_at: i64,
}

#[derive(Default)]
pub struct JwksCache {
    entries: Mutex<HashMap<String, Entry>>,
}

/// How long a document fetched with this `Cache-Control` header is fresh.
pub fn lifetime(cache_control: Option<&str>) -> Duration {
    let max_age = cache_control.and_then(|cc| {
        cc.split(',').find_map(|d| {
            let (name, value) = d.trim().split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("max-age")
                .then(|| value.trim().trim_matches('"').parse::<u64>().ok())?
        })
    });
    match max_age {
        Some(s) => Duration::from_secs(s).clamp(FLOOR, CEILING),
        None => DEFAULT,
    }
}

fn has_kid(jwks: &Value, kid: &str) -> bool {
    jwks["keys"]
        .as_array()
        .is_some_and(|keys| keys.iter().any(|k| k["kid"] == kid))
}

/// What to do for one look-up.
enum Plan {
    Use(Value),
    Fetch,
    Nothing,
}

impl JwksCache {
    /// The JWKS at `uri` for an assertion naming `kid` (if any), from the
    /// cache when it is fresh and knows the kid, else fetched with
    /// `fetch`, which returns the document and its `Cache-Control`.
    pub async fn keys<F, Fut>(
        &self,
        uri: &str,
        kid: Option<&str>,
        now: i64,
        fetch: F,
    ) -> Option<Value>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Option<(Value, Option<String>)>>,
    {
        let plan = self.plan(uri, kid, now);
        match plan {
            Plan::Use(v) => Some(v),
            Plan::Nothing => None,
            Plan::Fetch => {
                let fetched = fetch().await;
                self.store(uri, fetched, now)
            }
        }
    }

    fn plan(&self, uri: &str, kid: Option<&str>, now: i64) -> Plan {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let Some(e) = entries.get_mut(uri) else {
            if entries.len() >= CAPACITY {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, e)| e.fetched_at)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    entries.remove(&k);
                }
            }
            // Claimed before the fetch, so concurrent look-ups wait out
            // the interval instead of fetching too.
            entries.insert(
                uri.to_owned(),
                Entry {
                    jwks: None,
                    fresh_until: now,
                    fetched_at: now,
                },
            );
            return Plan::Fetch;
        };
        let knows = |j: &Value| kid.is_none_or(|k| has_kid(j, k));
        match &e.jwks {
            Some(j) if now < e.fresh_until && knows(j) => return Plan::Use(j.clone()),
            _ => {}
        }
        if now - e.fetched_at >= MIN_REFETCH.as_secs() as i64 {
            e.fetched_at = now;
            return Plan::Fetch;
        }
        // Too soon to ask again: what we have (an unknown kid then simply
        // fails to verify).
        e.jwks.clone().map_or(Plan::Nothing, Plan::Use)
    }

    fn store(&self, uri: &str, fetched: Option<(Value, Option<String>)>, at: i64) -> Option<Value> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let e = entries.entry(uri.to_owned()).or_insert(Entry {
            jwks: None,
            fresh_until: at,
            fetched_at: at,
        });
        match fetched {
            Some((jwks, cc)) => {
                e.fresh_until = at + lifetime(cc.as_deref()).as_secs() as i64;
                e.jwks = Some(jwks.clone());
                Some(jwks)
            }
            // A failed fetch keeps the last good document, if any.
            None => e.jwks.clone(),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn max_age_is_honoured_between_the_floor_and_the_ceiling() {
        assert_eq!(lifetime(None), DEFAULT);
        assert_eq!(lifetime(Some("no-store")), DEFAULT);
        assert_eq!(
            lifetime(Some("public, max-age=7200")),
            Duration::from_secs(7200)
        );
        assert_eq!(lifetime(Some("max-age=0")), FLOOR);
        assert_eq!(lifetime(Some("max-age=99999999")), CEILING);
        assert_eq!(lifetime(Some("max-age=junk")), DEFAULT);
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_at_most_once_per_interval() {
        let cache = JwksCache::default();
        let fetches = AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Some((json!({"keys": [{"kid": "a"}]}), None))
        };
        assert!(cache.keys("u", Some("a"), 0, fetch).await.is_some());
        assert!(cache.keys("u", Some("a"), 1, fetch).await.is_some());
        assert_eq!(fetches.load(Ordering::SeqCst), 1, "cached");
        // An unknown kid right after a fetch: too soon, the cached keys.
        cache.keys("u", Some("b"), 2, fetch).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // Once the interval has passed, one refetch.
        cache.keys("u", Some("b"), 30, fetch).await;
        cache.keys("u", Some("b"), 31, fetch).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        // Stale (no max-age: the default lifetime): fetched again even for
        // a known kid.
        let stale = 30 + DEFAULT.as_secs() as i64;
        cache.keys("u", Some("a"), stale, fetch).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let cache = JwksCache::default();
        for i in 0..CAPACITY + 10 {
            cache
                .keys(&format!("u{i}"), None, i as i64, || async {
                    Some((json!({"keys": []}), None))
                })
                .await;
        }
        assert_eq!(cache.len(), CAPACITY);
    }
}
