//! Signed audit checkpoints, on SQLite and (when configured) PostgreSQL:
//! they catch what the hash chain alone cannot, a chain rewritten whole.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tilgang_core::audit::checkpoint::{checkpoint_if_due, verify_store, CheckpointPolicy};
use tilgang_core::audit::retention::{self, Retention};
use tilgang_core::audit::{actions, NewEvent};
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

/// Applies the default retention (183 days for every action); returns
/// (through, removed) when it removed anything.
async fn prune(db: &TestDb) -> Option<(i64, u64)> {
    let r = retention::apply(&*db.store, &*db.clock, &Retention::default(), false, "test")
        .await
        .unwrap();
    assert!(r.redacted.is_empty(), "one period: nothing to clear");
    r.removed_through.map(|s| (s, r.removed_total()))
}

#[tokio::test]
async fn retention_removes_old_events_up_to_a_checkpoint_and_the_rest_still_verifies() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let seq = checkpointed(&db).await;
        assert!(prune(&db).await.is_none(), "nothing is old yet");
        db.clock.advance(time::Duration::days(200));
        db.store
            .append_audit(db.clock.now(), events(3, "thing.done"))
            .await
            .unwrap();
        let (through, removed) = prune(&db).await.unwrap();
        // The newest checkpoint before the cut is the second one, at 7.
        assert_eq!((through, removed), (seq + 1, 7), "{d:?}");
        let v = verify_store(&*db.store).await.unwrap().unwrap();
        assert_eq!(v.events, 4, "{d:?}: three new events and the removal's own");
        let last = db.store.audit_page(0, 100).await.unwrap().pop().unwrap();
        assert_eq!(last.action, "audit.pruned");
        assert!(prune(&db).await.is_none(), "done once");
        // Removing more than retention did is caught: no checkpoint marks it.
        db.raw("DELETE FROM audit_events WHERE seq = 8").await;
        let broken = verify_store(&*db.store).await.unwrap().unwrap_err();
        assert_eq!(broken.seq, 1, "{d:?}: {}", broken.reason);
    }
}

/// Who did what to whom: the content retention clears.
fn personal(action: &str, person: i64) -> NewEvent {
    NewEvent::new(format!("user:{person}"), action)
        .institution("101001")
        .subjects(vec![person])
        .details(serde_json::json!({"client_id": "matte"}))
}

async fn sign(db: &TestDb) {
    checkpoint_if_due(
        &*db.store,
        &db.keys,
        &*db.clock,
        CheckpointPolicy::default(),
        true,
    )
    .await
    .unwrap();
}

async fn event(db: &TestDb, seq: i64) -> tilgang_core::audit::Event {
    db.store.audit_page(seq - 1, 1).await.unwrap().remove(0)
}

#[tokio::test]
async fn retention_per_action_clears_content_on_time_and_keeps_long_kinds_past_the_default() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let mut r = Retention::default();
        r.by_action.insert(actions::LOGIN_SUCCEEDED.into(), 30);
        r.by_action.insert(actions::SHARING_APPROVED.into(), 400);
        let run = |dry_run| retention::apply(&*db.store, &*db.clock, &r, dry_run, "cli");
        // 1-2 logins, 3 a logout, 4 an approval; 5 the key, signed at 5.
        let now = db.clock.now();
        let first = vec![
            personal(actions::LOGIN_SUCCEEDED, 1),
            personal(actions::LOGIN_SUCCEEDED, 2),
            personal(actions::LOGOUT, 1),
            personal(actions::SHARING_APPROVED, 2),
        ];
        db.store.append_audit(now, first).await.unwrap();
        sign(&db).await;
        assert!(
            run(false).await.unwrap().redacted.is_empty(),
            "nothing is due"
        );

        // 40 days on: the logins are past their 30 days.
        db.clock.advance(time::Duration::days(40));
        db.store
            .append_audit(db.clock.now(), vec![personal(actions::LOGIN_SUCCEEDED, 3)])
            .await
            .unwrap();
        sign(&db).await;
        let head = db.store.stored_head().await.unwrap();
        let dry = run(true).await.unwrap();
        assert_eq!(
            dry.redacted.get(actions::LOGIN_SUCCEEDED),
            Some(&2),
            "{d:?}"
        );
        assert!(dry.removed.is_empty());
        assert_eq!(
            db.store.stored_head().await.unwrap(),
            head,
            "a dry run writes nothing"
        );
        assert!(event(&db, 1).await.redacted_at_us.is_none());

        let done = run(false).await.unwrap();
        assert_eq!(done.redacted, dry.redacted, "{d:?}");
        for seq in [1, 2] {
            let e = event(&db, seq).await;
            assert_eq!(e.action, actions::LOGIN_SUCCEEDED);
            assert!(e.redacted_at_us.is_some(), "{d:?}");
            assert_eq!(
                (
                    e.actor.as_str(),
                    e.institution.as_deref(),
                    e.subjects.as_str(),
                    e.details.as_str()
                ),
                ("", None, "[]", "null"),
                "the content is gone"
            );
        }
        assert_eq!(
            event(&db, 3).await.actor,
            "user:1",
            "a logout keeps 183 days"
        );
        let summary = db.store.audit_page(head.seq, 1).await.unwrap().remove(0);
        assert_eq!(summary.action, actions::AUDIT_PRUNED);
        let details: serde_json::Value = serde_json::from_str(&summary.details).unwrap();
        assert_eq!(details["redacted_by_action"][actions::LOGIN_SUCCEEDED], 2);
        let v = verify_store(&*db.store).await.unwrap().unwrap();
        assert_eq!(v.head, db.store.stored_head().await.unwrap(), "{d:?}");
        // Nothing about person 1 or the school is left in the cleared events.
        let scope = tilgang_core::audit::search::Scope::Institutions(vec!["101001".into()]);
        let q = tilgang_core::audit::search::Query {
            limit: 100,
            ..Default::default()
        };
        let seen = db.store.audit_search(&scope, &q).await.unwrap();
        assert!(seen.iter().all(|e| e.redacted_at_us.is_none() && e.seq > 2));
        let again = run(false).await.unwrap();
        assert!(
            again.redacted.is_empty() && again.removed.is_empty(),
            "done once"
        );

        // 200 days on: past the default, so the logout and the later login
        // are cleared; the approval (400 days) keeps its content, and no
        // whole event goes before the longest period has passed.
        db.clock.advance(time::Duration::days(160));
        sign(&db).await;
        let done = run(false).await.unwrap();
        assert_eq!(done.redacted.get(actions::LOGOUT), Some(&1), "{d:?}");
        assert_eq!(done.redacted.get(actions::LOGIN_SUCCEEDED), Some(&1));
        assert!(done.removed.is_empty(), "{d:?}");
        assert_eq!(event(&db, 4).await.actor, "user:2", "the approval survives");
        assert!(verify_store(&*db.store).await.unwrap().is_ok());

        // 420 days on: whole events go, up to the checkpoint before the cut.
        db.clock.advance(time::Duration::days(220));
        sign(&db).await;
        let done = run(false).await.unwrap();
        assert_eq!(done.removed_through, Some(5), "{d:?}");
        assert_eq!(done.removed.get(actions::SHARING_APPROVED), Some(&1));
        assert_eq!(done.removed.get(actions::LOGIN_SUCCEEDED), Some(&2));
        assert_eq!(db.store.audit_page(0, 1).await.unwrap()[0].seq, 6);
        let v = verify_store(&*db.store).await.unwrap().unwrap();
        assert_eq!(v.head, db.store.stored_head().await.unwrap(), "{d:?}");
    }
}

#[tokio::test]
async fn a_redacted_event_whose_content_is_put_back_or_edited_is_named() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let mut r = Retention::default();
        r.by_action.insert(actions::LOGIN_SUCCEEDED.into(), 30);
        r.by_action.insert(actions::SHARING_APPROVED.into(), 400);
        let now = db.clock.now();
        let first = vec![
            personal(actions::LOGIN_SUCCEEDED, 1),
            personal(actions::LOGOUT, 1),
        ];
        db.store.append_audit(now, first).await.unwrap();
        sign(&db).await;
        db.clock.advance(time::Duration::days(40));
        retention::apply(&*db.store, &*db.clock, &r, false, "cli")
            .await
            .unwrap();
        assert!(event(&db, 1).await.redacted_at_us.is_some());
        assert!(verify_store(&*db.store).await.unwrap().is_ok(), "{d:?}");

        db.raw("UPDATE audit_events SET subjects = '[1]' WHERE seq = 1")
            .await;
        let broken = verify_store(&*db.store).await.unwrap().unwrap_err();
        assert_eq!(broken.seq, 1, "{d:?}: {}", broken.reason);
        assert!(broken.reason.contains("redacted"), "{}", broken.reason);

        db.raw("UPDATE audit_events SET subjects = '[]', action = 'logout' WHERE seq = 1")
            .await;
        assert_eq!(verify_store(&*db.store).await.unwrap().unwrap_err().seq, 1);

        // A kept event's content edited: its content hash no longer fits.
        db.raw("UPDATE audit_events SET action = 'login.succeeded' WHERE seq = 1")
            .await;
        assert!(verify_store(&*db.store).await.unwrap().is_ok(), "{d:?}");
        db.raw("UPDATE audit_events SET actor = 'user:9' WHERE seq = 2")
            .await;
        assert_eq!(verify_store(&*db.store).await.unwrap().unwrap_err().seq, 2);
    }
}
