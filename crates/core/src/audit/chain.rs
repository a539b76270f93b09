//! Hash-chain links. Each event's hash covers the previous hash and every
//! stored field, length-prefixed so no two events encode alike. Verifying
//! walks events in sequence order and names the first broken link.
//!
//! Two link versions: "tilgang-audit/1" hashes every field into the link;
//! "tilgang-audit/2" (every event sealed since migration 0019) hashes the
//! personal content (actor, institution, subjects, details) into a
//! separate content hash and links over that, so retention can clear the
//! content of an event in the middle of the chain without breaking it.

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

/// The version 1 link: every field.
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
    place_and_persons(&mut h, institution, subjects, details);
    h.finalize().into()
}

/// Institution (with a presence byte), subjects and details, as both
/// versions encode them.
fn place_and_persons(h: &mut Sha256, institution: Option<&str>, subjects: &str, details: &str) {
    match institution {
        Some(i) => {
            h.update([1]);
            field(h, i.as_bytes());
        }
        None => h.update([0]),
    }
    field(h, subjects.as_bytes());
    field(h, details.as_bytes());
}

/// The hash of an event's personal content, which the version 2 link
/// covers in place of the content itself.
pub fn content_hash(
    actor: &str,
    institution: Option<&str>,
    subjects: &str,
    details: &str,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"tilgang-audit-content/2");
    field(&mut h, actor.as_bytes());
    place_and_persons(&mut h, institution, subjects, details);
    h.finalize().into()
}

/// The version 2 link: sequence number, time, action and content hash.
pub fn link_hash_v2(
    prev: &[u8; 32],
    seq: i64,
    at_us: i64,
    action: &str,
    content: &[u8; 32],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"tilgang-audit/2");
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(at_us.to_be_bytes());
    field(&mut h, action.as_bytes());
    h.update(content);
    h.finalize().into()
}

/// What a redacted event's content is cleared to.
pub const REDACTED_SUBJECTS: &str = "[]";
pub const REDACTED_DETAILS: &str = "null";

impl Event {
    /// The chain head this event makes.
    pub fn hash_head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash,
        }
    }

    /// The hash of the stored content (whatever link version the event has).
    pub fn compute_content_hash(&self) -> [u8; 32] {
        content_hash(
            &self.actor,
            self.institution.as_deref(),
            &self.subjects,
            &self.details,
        )
    }

    /// Whether the content is what redaction leaves.
    pub fn content_is_empty(&self) -> bool {
        self.actor.is_empty()
            && self.institution.is_none()
            && self.subjects == REDACTED_SUBJECTS
            && self.details == REDACTED_DETAILS
    }

    /// The link hash the stored fields make, or why the event cannot be
    /// right whatever its link: content that does not match its content
    /// hash, or a redaction marker on content that was not cleared (or on
    /// a version 1 event, whose link covers the content itself).
    pub fn compute_hash(&self) -> Result<[u8; 32], &'static str> {
        let Some(stored) = self.content_hash else {
            if self.redacted_at_us.is_some() {
                return Err("it is marked as redacted, but its link (version 1) covers its content: the event was edited");
            }
            return Ok(link_hash(
                &self.prev_hash,
                self.seq,
                self.at_us,
                &self.actor,
                &self.action,
                self.institution.as_deref(),
                &self.subjects,
                &self.details,
            ));
        };
        if self.redacted_at_us.is_some() {
            if !self.content_is_empty() {
                return Err("it is marked as redacted but holds content (the event was edited)");
            }
        } else if self.compute_content_hash() != stored {
            return Err("its content does not match its hash (the event was edited)");
        }
        Ok(link_hash_v2(
            &self.prev_hash,
            self.seq,
            self.at_us,
            &self.action,
            &stored,
        ))
    }

    /// Clears the personal content, as retention does; the link still
    /// verifies from the content hash. A version 1 event is left alone.
    pub fn redact(&mut self, at_us: i64) {
        if self.content_hash.is_none() {
            return;
        }
        self.actor.clear();
        self.institution = None;
        self.subjects = REDACTED_SUBJECTS.into();
        self.details = REDACTED_DETAILS.into();
        self.redacted_at_us = Some(at_us);
    }
}

/// Seals new events onto the chain after `head`, all at time `at`.
pub fn seal(head: Head, at: OffsetDateTime, events: Vec<NewEvent>) -> (Vec<Event>, Head) {
    let at_us = (at.unix_timestamp_nanos() / 1_000) as i64;
    let mut head = head;
    let sealed = events
        .into_iter()
        .map(|e| {
            let subjects = serde_json::to_string(&e.subjects).unwrap_or_else(|_| "[]".into());
            let details = serde_json::to_string(&e.details).unwrap_or_else(|_| "null".into());
            let content = content_hash(&e.actor, e.institution.as_deref(), &subjects, &details);
            let seq = head.seq + 1;
            let ev = Event {
                seq,
                at_us,
                hash: link_hash_v2(&head.hash, seq, at_us, &e.action, &content),
                actor: e.actor,
                action: e.action,
                institution: e.institution,
                subjects,
                details,
                prev_hash: head.hash,
                content_hash: Some(content),
                redacted_at_us: None,
            };
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
    pub fn push_hashed(
        &mut self,
        ev: &Event,
        computed: Result<[u8; 32], &'static str>,
    ) -> Result<(), Broken> {
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
        match computed {
            Err(reason) => {
                return Err(Broken {
                    seq: ev.seq,
                    reason: reason.into(),
                })
            }
            Ok(h) if h != ev.hash => {
                return Err(Broken {
                    seq: ev.seq,
                    reason: "its content does not match its hash (the event was edited)".into(),
                })
            }
            Ok(_) => {}
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

    /// Events as sealed before migration 0019: version 1 links.
    fn v1_chain(n: usize) -> (Vec<Event>, Head) {
        let (mut events, _) = chain(n);
        let mut prev = [0u8; 32];
        for e in &mut events {
            e.content_hash = None;
            e.prev_hash = prev;
            e.hash = link_hash(
                &prev,
                e.seq,
                e.at_us,
                &e.actor,
                &e.action,
                e.institution.as_deref(),
                &e.subjects,
                &e.details,
            );
            prev = e.hash;
        }
        let head = events.last().unwrap().hash_head();
        (events, head)
    }

    #[test]
    fn version_1_events_then_version_2_events_verify() {
        let (mut events, head) = v1_chain(3);
        let (tail, head) = seal(
            head,
            datetime!(2026-11-24 12:00 UTC),
            vec![NewEvent::new("later", "thing.done").institution("101001")],
        );
        events.extend(tail);
        assert!(events[3].content_hash.is_some());
        assert_eq!(verify(&events, head).unwrap(), head);
        let mut edited = events.clone();
        edited[1].details = "{\"x\":1}".into();
        assert_eq!(verify(&edited, head).unwrap_err().seq, 2);
        // A version 1 event cannot be redacted: its link covers the content.
        let mut redacted = events.clone();
        redacted[1].redact(1);
        assert_eq!(redacted[1].redacted_at_us, None, "left alone");
        redacted[1].redacted_at_us = Some(1);
        assert_eq!(verify(&redacted, head).unwrap_err().seq, 2);
    }

    #[test]
    fn a_redacted_event_still_verifies_and_its_content_is_gone() {
        let (mut events, head) = chain(5);
        events[2].redact(42);
        assert_eq!(events[2].actor, "");
        assert_eq!(events[2].subjects, "[]");
        assert_eq!(verify(&events, head).unwrap(), head);
    }

    #[test]
    fn a_redacted_event_given_content_again_is_named() {
        let (mut events, head) = chain(5);
        events[2].redact(42);
        // Content slipped back under the redaction marker …
        let mut refilled = events.clone();
        refilled[2].subjects = "[99]".into();
        let err = verify(&refilled, head).unwrap_err();
        assert_eq!(err.seq, 3);
        assert!(err.reason.contains("redacted"), "{}", err.reason);
        // … or the marker taken away and forged content put in.
        let mut forged = events.clone();
        forged[2].redacted_at_us = None;
        forged[2].actor = "someone".into();
        assert_eq!(verify(&forged, head).unwrap_err().seq, 3);
        // The action, time or content hash of a redacted event still count.
        let mut moved = events.clone();
        moved[2].action = "other.thing".into();
        assert_eq!(verify(&moved, head).unwrap_err().seq, 3);
        let mut rehashed = events.clone();
        rehashed[2].content_hash = Some([7; 32]);
        assert_eq!(verify(&rehashed, head).unwrap_err().seq, 3);
    }

    #[test]
    fn a_stored_content_hash_that_does_not_match_the_content_is_named() {
        let (mut events, head) = chain(5);
        events[3].content_hash = Some([7; 32]);
        assert_eq!(verify(&events, head).unwrap_err().seq, 4);
    }
}
