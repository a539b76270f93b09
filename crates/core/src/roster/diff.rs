//! Diffing incoming records against stored ones by key and content digest.
//! Digests are 64-bit XXH3 over a canonical, length-prefixed encoding of the
//! stored attributes: stable across processes and versions of tilgang, so an
//! unchanged record is recognised without reading its columns back.

use crate::store::Existing;
use std::collections::HashMap;
use std::hash::Hash;
use xxhash_rust::xxh3::xxh3_64;

/// Builds a digest field by field.
#[derive(Default)]
pub struct Digest(Vec<u8>);

impl Digest {
    pub fn new() -> Self {
        Digest(Vec::with_capacity(256))
    }
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    pub fn opt(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => {
                self.0.push(1);
                self.str(s)
            }
            None => {
                self.0.push(0);
                self
            }
        }
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&(b.len() as u32).to_le_bytes());
        self.0.extend_from_slice(b);
        self
    }
    pub fn flag(&mut self, b: bool) -> &mut Self {
        self.0.push(b as u8);
        self
    }
    pub fn finish(&self) -> i64 {
        xxh3_64(&self.0) as i64
    }
}

/// What to do with each incoming record and each stored one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KeyedPlan {
    /// Indexes into the incoming records.
    pub insert: Vec<usize>,
    /// (incoming index, stored id): changed content (and reopened).
    pub update: Vec<(usize, i64)>,
    /// Stored ids with unchanged content that were ended and come back.
    pub reopen: Vec<i64>,
    /// Stored, active ids the incoming set does not name (full imports).
    pub end: Vec<i64>,
    pub unchanged: usize,
    /// Every incoming index with its stored or still-to-insert id slot.
    pub ids: Vec<Option<i64>>,
}

/// Diffs `incoming` (key, digest) against `stored`. With `end_missing`
/// (a full import), stored active records not named are ended.
pub fn diff<K: Eq + Hash>(
    stored: Vec<(K, Existing)>,
    incoming: &[(K, i64)],
    end_missing: bool,
) -> KeyedPlan {
    let mut stored: HashMap<K, Existing> = stored.into_iter().collect();
    let mut plan = KeyedPlan {
        ids: Vec::with_capacity(incoming.len()),
        ..KeyedPlan::default()
    };
    for (i, (key, digest)) in incoming.iter().enumerate() {
        match stored.remove(key) {
            None => {
                plan.insert.push(i);
                plan.ids.push(None);
            }
            Some(e) => {
                if e.digest != *digest {
                    plan.update.push((i, e.id));
                } else if e.ended {
                    plan.reopen.push(e.id);
                } else {
                    plan.unchanged += 1;
                }
                plan.ids.push(Some(e.id));
            }
        }
    }
    if end_missing {
        plan.end = stored
            .into_values()
            .filter(|e| !e.ended)
            .map(|e| e.id)
            .collect();
        plan.end.sort_unstable();
    }
    plan
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ex(id: i64, digest: i64, ended: bool) -> Existing {
        Existing { id, digest, ended }
    }

    #[test]
    fn diff_sorts_every_record() {
        let stored = vec![
            ("a", ex(1, 10, false)),
            ("b", ex(2, 20, false)),
            ("c", ex(3, 30, true)),
            ("d", ex(4, 40, false)),
            ("e", ex(5, 50, true)),
        ];
        let incoming = [("a", 10), ("b", 21), ("c", 30), ("new", 1)];
        let plan = diff(stored, &incoming, true);
        assert_eq!(plan.insert, vec![3]);
        assert_eq!(plan.update, vec![(1, 2)]);
        assert_eq!(plan.reopen, vec![3]);
        assert_eq!(plan.end, vec![4]);
        assert_eq!(plan.unchanged, 1);
        assert_eq!(plan.ids, vec![Some(1), Some(2), Some(3), None]);
    }

    #[test]
    fn a_delta_ends_nothing_it_does_not_name() {
        let plan = diff(vec![("a", ex(1, 10, false))], &[], false);
        assert!(plan.end.is_empty());
    }

    #[test]
    fn digests_tell_absent_from_empty() {
        assert_ne!(
            Digest::new().opt(None).finish(),
            Digest::new().opt(Some("")).finish()
        );
        assert_ne!(
            Digest::new().str("ab").str("c").finish(),
            Digest::new().str("a").str("bc").finish()
        );
    }
}
