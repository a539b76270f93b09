//! Group commit, shared by both dialects: small audited writes (the tokens
//! of a client-credentials grant with their event, audit events appended on
//! their own) that wait at the same moment go into ONE transaction.
//!
//! There is no background task: a caller queues its write and then waits
//! for either its answer or the writer lock. Whoever gets the lock takes
//! everything queued (up to [`MAX_WRITES`] writes / [`MAX_EVENTS`] events)
//! and hands it, with the lock, to a spawned task that writes it in one
//! transaction (tokens, then every event sealed onto the chain in queue
//! order from the head read inside that transaction, the head once) and
//! answers each caller after the commit, then releases the lock. The chain
//! head lives only in the database; nothing is kept between transactions.
//!
//! A spawned task, not the caller's future, does the write, so a caller
//! that goes away (a client hanging up) cannot leave the others of its
//! batch without an answer. An error fails every caller of the batch: the
//! writes are independent, and what can fail them (I/O, a full or locked
//! database, a lost connection) would fail each of them alone too.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tilgang_core::audit::{chain, Event, Head, NewEvent};
use tilgang_core::oidc::TokenRecord;
use tilgang_core::{Error, Result};
use time::OffsetDateTime;
use tokio::sync::{oneshot, Mutex as AsyncMutex, OwnedMutexGuard};

/// Most writes one transaction takes: enough to amortise a commit over a
/// full wave of concurrent requests, small enough that the first caller of
/// a batch does not wait long for the last.
pub(crate) const MAX_WRITES: usize = 256;
/// Most events one transaction takes (a large `append_audit` still goes
/// whole; it just is not joined by others).
pub(crate) const MAX_EVENTS: usize = 4096;
/// How long a group under load waits for more writes before it starts
/// (tokio's timer rounds up to a millisecond). Measured with
/// `bench/api.sh`: 1 ms gave the most lookups/s; 3 ms made the 32
/// connections wait on the timer.
const LINGER: std::time::Duration = std::time::Duration::from_millis(1);

/// One caller's write: tokens to store and the events that record it.
pub(crate) struct Write {
    pub tokens: Vec<TokenRecord>,
    pub at: OffsetDateTime,
    pub events: Vec<NewEvent>,
}

type Reply = oneshot::Sender<Result<()>>;

/// The writes of one transaction, with whom to answer.
pub(crate) struct Batch {
    writes: Vec<Write>,
    replies: Vec<Reply>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Takes the writes out for sealing; the replies stay for [`answer`](Self::answer).
    pub fn take_writes(&mut self) -> Vec<Write> {
        std::mem::take(&mut self.writes)
    }

    /// Answers every caller with the transaction's outcome.
    pub fn answer(self, outcome: &Result<()>) {
        for reply in self.replies {
            let _ = reply.send(match outcome {
                Ok(()) => Ok(()),
                Err(Error::Store(m)) => Err(Error::Store(m.clone())),
                Err(e) => Err(Error::Store(e.to_string())),
            });
        }
    }
}

/// Every token of the writes, taken out of them.
pub(crate) fn take_tokens(writes: &mut [Write]) -> Vec<TokenRecord> {
    writes
        .iter_mut()
        .flat_map(|w| std::mem::take(&mut w.tokens))
        .collect()
}

/// The writes' events sealed onto the chain after `head`: in queue order,
/// each write's events at its own time.
pub(crate) fn seal(head: Head, writes: Vec<Write>) -> Vec<Event> {
    let mut head = head;
    let mut events = Vec::with_capacity(writes.iter().map(|w| w.events.len()).sum());
    for w in writes {
        let (sealed, next) = chain::seal(head, w.at, w.events);
        head = next;
        events.extend(sealed);
    }
    events
}

/// The queue of writes waiting for a transaction.
#[derive(Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<VecDeque<(Write, Reply)>>,
    /// Writes in the last group started: more than one means writers are
    /// waiting on each other, and the next group lingers.
    last_group: AtomicUsize,
}

impl GroupCommit {
    /// Queues `write` and returns once the transaction holding it has
    /// committed (or failed). `lock` is the writer lock; when this caller
    /// gets it with writes queued, `start` receives the lock and the batch
    /// and must spawn the work (and answer the batch) without awaiting it.
    pub async fn submit<L: Send + 'static>(
        &self,
        lock: &Arc<AsyncMutex<L>>,
        write: Write,
        start: impl Fn(OwnedMutexGuard<L>, Batch),
    ) -> Result<()> {
        let (tx, mut rx) = oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back((write, tx));
        loop {
            tokio::select! {
                // The answer first: a batch's task answers before it lets
                // go of the lock, so a caller already served never starts
                // an empty batch.
                biased;
                answer = &mut rx => {
                    return answer.unwrap_or_else(|_| {
                        Err(Error::Store("the group commit ended without an answer".into()))
                    });
                }
                guard = lock.clone().lock_owned() => {
                    // Under load, let the wave of writes behind this one
                    // join it (as PostgreSQL's `commit_delay`): every commit
                    // costs the readers their page caches on SQLite, so
                    // fewer, larger groups serve more requests. A lone
                    // write (the last group held one) goes at once.
                    if self.last_group.load(Ordering::Relaxed) > 1 {
                        tokio::time::sleep(LINGER).await;
                    }
                    let batch = self.take();
                    if !batch.is_empty() {
                        start(guard, batch);
                    }
                }
            }
        }
    }

    fn take(&self) -> Batch {
        let batch = self.take_queued();
        self.last_group.store(batch.len(), Ordering::Relaxed);
        batch
    }

    fn take_queued(&self) -> Batch {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let mut batch = Batch {
            writes: Vec::new(),
            replies: Vec::new(),
        };
        let mut events = 0;
        while let Some((w, _)) = queue.front() {
            if batch.len() == MAX_WRITES
                || (!batch.is_empty() && events + w.events.len() > MAX_EVENTS)
            {
                break;
            }
            let Some((w, reply)) = queue.pop_front() else {
                break;
            };
            events += w.events.len();
            batch.writes.push(w);
            batch.replies.push(reply);
        }
        batch
    }
}
