//! Signed audit checkpoints, on SQLite and (when configured) PostgreSQL:
//! they catch what the hash chain alone cannot, a chain rewritten whole.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tilgang_core::audit::checkpoint::{checkpoint_if_due, prune, verify_store, CheckpointPolicy};
use tilgang_core::audit::NewEvent;
use tilgang_core::Clock;
use tilgang_testkit::{dialects, Dialect, TestDb};

fn events(n: usize, what: &str) -> Vec<NewEvent> {
    (0..n)
        .map(|i| NewEvent::new("test", what).subjects(vec![i as i64]))
        .collect()
}

/// A chain of seven events with signed checkpoints at 6 and 7; returns the
/// first.
async fn checkpointed(db: &TestDb) -> i64 {
    let now = db.clock.now();
    db.store
        .append_audit(now, events(5, "thing.done"))
        .await
        .unwrap();
    let policy = CheckpointPolicy::default();
    let due = |force| checkpoint_if_due(&*db.store, &db.keys, &*db.clock, policy, force);
    // The first one is due at once; the key's creation is itself an event.
    let cp = due(false).await.unwrap().unwrap();
    assert_eq!(cp.seq, 6);
    assert!(due(true).await.unwrap().is_none(), "nothing new to sign");
    db.store
        .append_audit(now, events(1, "thing.done"))
        .await
        .unwrap();
    assert!(
        due(false).await.unwrap().is_none(),
        "one event, no time: not due"
    );
    assert_eq!(due(true).await.unwrap().unwrap().seq, 7);
    6
}

#[tokio::test]
async fn an_intact_chain_verifies_with_its_checkpoints() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        checkpointed(&db).await;
        // Time passes and more happens: the next one is due by time.
        db.clock.advance(time::Duration::hours(2));
        db.store
            .append_audit(db.clock.now(), events(2, "thing.done"))
            .await
            .unwrap();
        let policy = CheckpointPolicy::default();
        let cp = checkpoint_if_due(&*db.store, &db.keys, &*db.clock, policy, false)
            .await
            .unwrap();
        assert_eq!(cp.map(|c| c.seq), Some(9), "{d:?}");
        let v = verify_store(&*db.store).await.unwrap().unwrap();
        assert_eq!((v.events, v.checkpoints), (9, 3), "{d:?}");
        let events = db.store.audit_page(0, 100).await.unwrap();
        assert_eq!(events[5].action, "audit.key_created");
    }
}

#[tokio::test]
async fn a_chain_rewritten_whole_is_caught_by_the_checkpoint() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let seq = checkpointed(&db).await;
        // Someone with database access replaces every event by a forged,
        // self-consistent chain of the same length.
        db.raw("DELETE FROM audit_events").await;
        db.raw(match d {
            Dialect::Postgres(_) => {
                "UPDATE audit_head SET seq = 0, hash = decode(repeat('00', 32), 'hex')"
            }
            _ => "UPDATE audit_head SET seq = 0, hash = zeroblob(32)",
        })
        .await;
        db.store
            .append_audit(db.clock.now(), events(7, "nothing.happened"))
            .await
            .unwrap();
        let broken = verify_store(&*db.store).await.unwrap().unwrap_err();
        assert_eq!(broken.seq, seq, "{d:?}: {}", broken.reason);
        assert!(
            broken.reason.contains("signed checkpoint"),
            "{}",
            broken.reason
        );
    }
}

#[tokio::test]
async fn a_truncated_chain_with_a_forged_tail_and_a_forged_checkpoint_are_named() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        checkpointed(&db).await;
        db.raw("DELETE FROM audit_events WHERE seq > 3").await;
        db.raw(
            "UPDATE audit_head SET seq = 3, hash = (SELECT hash FROM audit_events WHERE seq = 3)",
        )
        .await;
        let broken = verify_store(&*db.store).await.unwrap().unwrap_err();
        assert_eq!(broken.seq, 4, "{d:?}: {}", broken.reason);

        let db = TestDb::new(&d).await;
        let seq = checkpointed(&db).await;
        db.raw("UPDATE audit_checkpoints SET at_us = at_us + 1")
            .await;
        let broken = verify_store(&*db.store).await.unwrap().unwrap_err();
        assert_eq!(broken.seq, seq, "{d:?}");
        assert!(
            broken.reason.contains("does not verify"),
            "{}",
            broken.reason
        );
    }
}

#[tokio::test]
async fn retention_removes_old_events_up_to_a_checkpoint_and_the_rest_still_verifies() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let seq = checkpointed(&db).await;
        assert!(
            prune(&*db.store, &*db.clock, 183).await.unwrap().is_none(),
            "nothing is old yet"
        );
        db.clock.advance(time::Duration::days(200));
        db.store
            .append_audit(db.clock.now(), events(3, "thing.done"))
            .await
            .unwrap();
        let (through, removed) = prune(&*db.store, &*db.clock, 183).await.unwrap().unwrap();
        // The newest checkpoint before the cut is the second one, at 7.
        assert_eq!((through, removed), (seq + 1, 7), "{d:?}");
        let v = verify_store(&*db.store).await.unwrap().unwrap();
        assert_eq!(v.events, 4, "{d:?}: three new events and the removal's own");
        let last = db.store.audit_page(0, 100).await.unwrap().pop().unwrap();
        assert_eq!(last.action, "audit.pruned");
        assert!(
            prune(&*db.store, &*db.clock, 183).await.unwrap().is_none(),
            "done once"
        );
        // Removing more than retention did is caught: no checkpoint marks it.
        db.raw("DELETE FROM audit_events WHERE seq = 8").await;
        let broken = verify_store(&*db.store).await.unwrap().unwrap_err();
        assert_eq!(broken.seq, 1, "{d:?}: {}", broken.reason);
    }
}
