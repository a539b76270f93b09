//! Hash-chain links. Each event's hash covers the previous hash and every
//! stored field, length-prefixed so no two events encode alike. Verifying
//! walks events in sequence order and names the first broken link.

use super::{Event, NewEvent};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The end of the chain: the last sequence number and its hash. An empty
/// chain has seq 0 and an all-zero hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Head {
    pub seq: i64,
    pub hash: [u8; 32],
}

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

#[allow(clippy::too_many_arguments)]
pub fn link_hash(
    prev: &[u8; 32],
    seq: i64,
    at_us: i64,
    actor: &str,
    action: &str,
    institution: Option<&str>,
    subjects: &str,
    details: &str,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"tilgang-audit/1");
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(at_us.to_be_bytes());
    field(&mut h, actor.as_bytes());
    field(&mut h, action.as_bytes());
    match institution {
        Some(i) => {
            h.update([1]);
            field(&mut h, i.as_bytes());
        }
        None => h.update([0]),
    }
    field(&mut h, subjects.as_bytes());
    field(&mut h, details.as_bytes());
    h.finalize().into()
}

impl Event {
    /// The chain head this event makes.
    pub fn hash_head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash,
        }
    }

    pub fn compute_hash(&self) -> [u8; 32] {
        link_hash(
            &self.prev_hash,
            self.seq,
            self.at_us,
            &self.actor,
            &self.action,
            self.institution.as_deref(),
            &self.subjects,
            &self.details,
        )
    }
}

/// Seals new events onto the chain after `head`, all at time `at`.
pub fn seal(head: Head, at: OffsetDateTime, events: Vec<NewEvent>) -> (Vec<Event>, Head) {
    let at_us = (at.unix_timestamp_nanos() / 1_000) as i64;
    let mut head = head;
    let sealed = events
        .into_iter()
        .map(|e| {
            let mut ev = Event {
                seq: head.seq + 1,
                at_us,
                actor: e.actor,
                action: e.action,
                institution: e.institution,
                subjects: serde_json::to_string(&e.subjects).unwrap_or_else(|_| "[]".into()),
                details: serde_json::to_string(&e.details).unwrap_or_else(|_| "null".into()),
                prev_hash: head.hash,
                hash: [0; 32],
            };
            ev.hash = ev.compute_hash();
            head = Head {
                seq: ev.seq,
                hash: ev.hash,
            };
            ev
        })
        .collect();
    (sealed, head)
}

/// The first broken link found, by sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub seq: i64,
    pub reason: String,
}

/// Walks the chain event by event.
#[derive(Debug, Clone)]
pub struct Verifier {
    prev: Head,
    pub checked: u64,
    /// Signed heads the chain must pass through, ascending by sequence.
    expected: std::collections::VecDeque<Head>,
}

impl Verifier {
    /// Starts at the beginning of the chain (or at a trusted checkpoint).
    pub fn new(start: Head) -> Self {
        Verifier {
            prev: start,
            checked: 0,
            expected: Default::default(),
        }
    }

    /// Heads from signed checkpoints (signatures already checked): the
    /// chain must pass through each. Catches a chain rewritten from some
    /// point on with fresh, self-consistent hashes.
    pub fn expect(&mut self, mut heads: Vec<Head>) {
        heads.sort_by_key(|h| h.seq);
        self.expected = heads
            .into_iter()
            .filter(|h| h.seq > self.prev.seq)
            .collect();
    }

    pub fn push(&mut self, ev: &Event) -> Result<(), Broken> {
        self.push_hashed(ev, ev.compute_hash())
    }

    /// [`push`](Self::push) with the event's hash already computed (by
    /// `Event::compute_hash`, perhaps on another thread).
    pub fn push_hashed(&mut self, ev: &Event, computed: [u8; 32]) -> Result<(), Broken> {
        let expected = self.prev.seq + 1;
        if ev.seq != expected {
            let reason = if ev.seq > expected {
                format!(
                    "event {expected} is missing (the next stored event is {})",
                    ev.seq
                )
            } else {
                format!(
                    "event {} appears out of order after {}",
                    ev.seq, self.prev.seq
                )
            };
            return Err(Broken {
                seq: expected.min(ev.seq),
                reason,
            });
        }
        if ev.prev_hash != self.prev.hash {
            return Err(Broken {
                seq: ev.seq,
                reason: "its link to the previous event does not match (an event before it was removed, inserted or reordered)".into(),
            });
        }
        if computed != ev.hash {
            return Err(Broken {
                seq: ev.seq,
                reason: "its content does not match its hash (the event was edited)".into(),
            });
        }
        if let Some(cp) = self.expected.front().filter(|cp| cp.seq == ev.seq) {
            if cp.hash != ev.hash {
                return Err(Broken {
                    seq: ev.seq,
                    reason: "it differs from the signed checkpoint at this sequence number (the chain was rewritten)".into(),
                });
            }
            self.expected.pop_front();
        }
        self.prev = Head {
            seq: ev.seq,
            hash: ev.hash,
        };
        self.checked += 1;
        Ok(())
    }

    /// Checks the walked chain ends where the stored head says it does:
    /// catches events removed from the end.
    pub fn finish(&self, head: Head) -> Result<Head, Broken> {
        if let Some(cp) = self.expected.front() {
            return Err(Broken {
                seq: self.prev.seq + 1,
                reason: format!(
                    "the chain ends at {} but a signed checkpoint covers event {}: events were removed from the end",
                    self.prev.seq, cp.seq
                ),
            });
        }
        if head.seq > self.prev.seq {
            return Err(Broken {
                seq: self.prev.seq + 1,
                reason: format!("the chain ends at {} but its head records {}: events were removed from the end", self.prev.seq, head.seq),
            });
        }
        if head != self.prev {
            return Err(Broken {
                seq: head.seq.max(1),
                reason: "the chain head does not match the last event".into(),
            });
        }
        Ok(self.prev)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::datetime;

    fn chain(n: usize) -> (Vec<Event>, Head) {
        let events = (0..n)
            .map(|i| NewEvent::new("test", "thing.done").subjects(vec![i as i64]))
            .collect();
        seal(Head::default(), datetime!(2026-11-23 12:00 UTC), events)
    }

    fn verify(events: &[Event], head: Head) -> Result<Head, Broken> {
        let mut v = Verifier::new(Head::default());
        for e in events {
            v.push(e)?;
        }
        v.finish(head)
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (events, head) = chain(5);
        assert_eq!(verify(&events, head).unwrap(), head);
    }

    #[test]
    fn an_edited_event_is_named() {
        let (mut events, head) = chain(5);
        events[2].details = "{\"x\":1}".into();
        assert_eq!(verify(&events, head).unwrap_err().seq, 3);
    }

    #[test]
    fn a_deleted_event_is_named() {
        let (mut events, head) = chain(5);
        events.remove(1);
        assert_eq!(verify(&events, head).unwrap_err().seq, 2);
    }

    #[test]
    fn a_reordered_pair_is_named() {
        let (mut events, head) = chain(5);
        events.swap(1, 2);
        let (a, b) = (events[1].seq, events[2].seq);
        events[1].seq = b;
        events[2].seq = a;
        assert_eq!(verify(&events, head).unwrap_err().seq, 2);
    }

    #[test]
    fn a_rewritten_chain_is_caught_by_a_checkpoint() {
        let (events, head) = chain(5);
        let checkpoint = Head {
            seq: 3,
            hash: events[2].hash,
        };
        // Rewrite from event 2 on, with fresh and self-consistent hashes.
        let mut forged = events[..1].to_vec();
        let rest = (1..5)
            .map(|i| NewEvent::new("test", "thing.done").subjects(vec![i * 10]))
            .collect();
        let (tail, forged_head) = seal(
            Head {
                seq: 1,
                hash: events[0].hash,
            },
            datetime!(2026-11-23 12:00 UTC),
            rest,
        );
        forged.extend(tail);
        assert!(
            verify(&forged, forged_head).is_ok(),
            "the chain alone is fooled"
        );
        let mut v = Verifier::new(Head::default());
        v.expect(vec![checkpoint]);
        let err = forged.iter().try_for_each(|e| v.push(e)).unwrap_err();
        assert_eq!(err.seq, 3);
        // And a truncation below a checkpoint is named too.
        let mut v = Verifier::new(Head::default());
        v.expect(vec![checkpoint]);
        events[..2].iter().for_each(|e| v.push(e).unwrap());
        assert_eq!(v.finish(events[1].hash_head()).unwrap_err().seq, 3);
        let _ = head;
    }

    #[test]
    fn a_truncated_tail_is_named() {
        let (mut events, head) = chain(5);
        events.truncate(3);
        assert_eq!(verify(&events, head).unwrap_err().seq, 4);
    }
}
