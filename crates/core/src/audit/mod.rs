//! The audit log: append-only events, each carrying the SHA-256 of the one
//! before (a hash chain), written in the same transaction as the change they
//! describe. `chain` computes and verifies links; stores only persist them.

pub mod actions;
pub mod chain;
pub mod checkpoint;
pub mod retention;
pub mod search;

pub use chain::{Broken, Head, Verifier};

use serde::Serialize;

/// Who did something: `system:import`, `cli`, `user:<id>`, `service:<id>`.
pub type ActorRef = String;

/// An event before it is sealed into the chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewEvent {
    pub actor: ActorRef,
    /// Dotted, stable names: `roster.import`, `person.created`, …
    pub action: String,
    /// The institution number the event concerns, if any.
    pub institution: Option<String>,
    /// Internal ids of the persons whose data the event concerns.
    pub subjects: Vec<i64>,
    pub details: serde_json::Value,
}

impl NewEvent {
    pub fn new(actor: impl Into<String>, action: impl Into<String>) -> Self {
        NewEvent {
            actor: actor.into(),
            action: action.into(),
            institution: None,
            subjects: Vec::new(),
            details: serde_json::Value::Null,
        }
    }
    pub fn institution(mut self, number: impl Into<String>) -> Self {
        self.institution = Some(number.into());
        self
    }
    pub fn subjects(mut self, subjects: Vec<i64>) -> Self {
        self.subjects = subjects;
        self
    }
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// A sealed event as stored. `subjects` and `details` are kept as the exact
/// JSON text that was hashed.
///
/// Events sealed since migration 0019 link by version 2: the link covers
/// the sequence number, time, action and `content_hash` (the SHA-256 of
/// actor, institution, subjects and details), so retention can clear the
/// content (`redacted_at_us`) and the chain still verifies. Older events
/// (`content_hash` none) link by version 1, over every field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub seq: i64,
    /// Microseconds since the Unix epoch, UTC.
    pub at_us: i64,
    pub actor: String,
    pub action: String,
    pub institution: Option<String>,
    pub subjects: String,
    pub details: String,
    #[serde(with = "hex_bytes")]
    pub prev_hash: [u8; 32],
    #[serde(with = "hex_bytes")]
    pub hash: [u8; 32],
    /// The content's hash (link version 2); none on a version 1 event.
    #[serde(serialize_with = "hex_opt")]
    pub content_hash: Option<[u8; 32]>,
    /// When retention cleared the content (microseconds since the epoch);
    /// actor, institution, subjects and details are then empty.
    pub redacted_at_us: Option<i64>,
}

mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(b: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }
}

fn hex_opt<S: serde::Serializer>(b: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        Some(b) => s.serialize_str(&hex::encode(b)),
        None => s.serialize_none(),
    }
}
