//! Second factors in the store, on SQLite and (when configured) PostgreSQL:
//! uses accepted once, ceremonies taken once, changes audited, refusals
//! writing nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tilgang_core::audit::NewEvent;
use tilgang_core::identity::session::{NewSession, ACR_ONE_FACTOR, ACR_TWO_FACTOR};
use tilgang_core::store::factors::{Added, FactorKind, FactorUse, NewFactor};
use tilgang_core::Clock;
use tilgang_testkit::{dialects, small_roster, TestDb};

async fn db_with_person(d: &tilgang_testkit::Dialect) -> (TestDb, i64) {
    let db = TestDb::new(d).await;
    db.import_json(&small_roster("101001")).await;
    let id = db
        .store
        .account("101001t1")
        .await
        .unwrap()
        .unwrap()
        .person_id;
    (db, id)
}

fn totp(person_id: i64, last_step: i64) -> NewFactor {
    NewFactor {
        person_id,
        kind: FactorKind::Totp,
        label: "Telefon".into(),
        secret_enc: Some(vec![1, 2, 3]),
        last_step: Some(last_step),
        credential_id: None,
        credential: None,
        user_handle: None,
    }
}

fn passkey(person_id: i64, cred: &[u8]) -> NewFactor {
    NewFactor {
        person_id,
        kind: FactorKind::Passkey,
        label: "Nøgle".into(),
        secret_enc: None,
        last_step: None,
        credential_id: Some(cred.to_vec()),
        credential: Some("{\"cred\":1}".into()),
        user_handle: Some(vec![9; 16]),
    }
}

fn ev(action: &str) -> NewEvent {
    NewEvent::new("test", action)
}

async fn audit_count(db: &TestDb) -> i64 {
    db.store.counts().await.unwrap().audit_events
}

/// Adds a factor through a fresh ceremony.
async fn add(db: &TestDb, f: &NewFactor, only_first: bool, codes: &[[u8; 32]]) -> Added {
    let now = db.clock.now().unix_timestamp();
    let key = [(f.person_id as u8).wrapping_add(rand_byte()); 32];
    db.store
        .put_ceremony(&key, "k", Some(f.person_id), b"s", now + 60, now)
        .await
        .unwrap();
    db.store
        .add_factor(
            f,
            &key,
            only_first,
            codes,
            db.clock.now(),
            ev("factor.added"),
        )
        .await
        .unwrap()
}

fn rand_byte() -> u8 {
    use std::sync::atomic::{AtomicU8, Ordering};
    static N: AtomicU8 = AtomicU8::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

async fn login(db: &TestDb, person_id: i64) -> NewSession {
    let now = db.clock.now().unix_timestamp();
    let s = NewSession::new(person_id, now, 3600, ACR_ONE_FACTOR, &["pwd"], None);
    db.store
        .record_login(person_id, None, &s, db.clock.now(), ev("login.succeeded"))
        .await
        .unwrap();
    s
}

#[tokio::test]
async fn a_totp_step_is_accepted_once_and_never_an_older_one() {
    for d in dialects() {
        let (db, pid) = db_with_person(&d).await;
        let Added::Stored { id, first } = add(&db, &totp(pid, 100), false, &[[1; 32]]).await else {
            panic!("not stored")
        };
        assert!(first);
        let old = login(&db, pid).await;
        let now = db.clock.now().unix_timestamp();
        let new = NewSession::new(pid, now, 3600, ACR_TWO_FACTOR, &["pwd", "otp"], None);
        let use_step = |step| FactorUse::Totp {
            factor_id: id,
            step,
        };
        let before = audit_count(&db).await;
        // The enrolment's own step is used already.
        for step in [100, 99] {
            let ok = db
                .store
                .use_factor(
                    pid,
                    &use_step(step),
                    Some(&old.id_hash),
                    &new,
                    db.clock.now(),
                    ev("login.step_up"),
                )
                .await
                .unwrap();
            assert!(!ok, "{d:?} step {step}");
        }
        assert_eq!(audit_count(&db).await, before, "a refusal writes nothing");
        assert!(db.store.session(&new.id_hash).await.unwrap().is_none());
        assert!(db.store.session(&old.id_hash).await.unwrap().is_some());

        let ok = db
            .store
            .use_factor(
                pid,
                &use_step(101),
                Some(&old.id_hash),
                &new,
                db.clock.now(),
                ev("login.step_up"),
            )
            .await
            .unwrap();
        assert!(ok, "{d:?}");
        assert!(
            db.store.session(&old.id_hash).await.unwrap().is_none(),
            "old session ended"
        );
        let s = db.store.session(&new.id_hash).await.unwrap().unwrap();
        assert_eq!(s.acr, ACR_TWO_FACTOR);
        assert_eq!(s.amr, ["pwd", "otp"]);
        assert_eq!(audit_count(&db).await, before + 1);

        let again = NewSession::new(pid, now, 3600, ACR_TWO_FACTOR, &["pwd", "otp"], None);
        let replay = db
            .store
            .use_factor(
                pid,
                &use_step(101),
                None,
                &again,
                db.clock.now(),
                ev("login.step_up"),
            )
            .await
            .unwrap();
        assert!(!replay, "{d:?}: replay refused");
        let f = &db.store.second_factors(pid).await.unwrap()[0];
        assert_eq!(f.last_step, Some(101));
        assert!(f.last_used_at.is_some());
        assert!(
            !format!("{f:?}").contains("[1, 2, 3]"),
            "no secret in Debug"
        );
    }
}

#[tokio::test]
async fn concurrent_uses_of_one_step_accept_exactly_one() {
    for d in dialects() {
        let (db, pid) = db_with_person(&d).await;
        let Added::Stored { id, .. } = add(&db, &totp(pid, 1), false, &[]).await else {
            panic!()
        };
        let now = db.clock.now().unix_timestamp();
        let tries = (0..8).map(|_| {
            let store = db.store.clone();
            let at = db.clock.now();
            tokio::spawn(async move {
                let s = NewSession::new(pid, now, 60, ACR_TWO_FACTOR, &["pwd", "otp"], None);
                store
                    .use_factor(
                        pid,
                        &FactorUse::Totp {
                            factor_id: id,
                            step: 5,
                        },
                        None,
                        &s,
                        at,
                        ev("x"),
                    )
                    .await
                    .unwrap()
            })
        });
        let mut accepted = 0;
        for t in tries.collect::<Vec<_>>() {
            accepted += t.await.unwrap() as i32;
        }
        assert_eq!(accepted, 1, "{d:?}");
    }
}

#[tokio::test]
async fn recovery_codes_work_once_and_go_with_the_last_factor() {
    for d in dialects() {
        let (db, pid) = db_with_person(&d).await;
        let codes: Vec<[u8; 32]> = (0..10u8).map(|i| [i; 32]).collect();
        let Added::Stored {
            id: first_id,
            first: true,
        } = add(&db, &totp(pid, 1), true, &codes).await
        else {
            panic!("first factor")
        };
        assert_eq!(db.store.unused_recovery_codes(pid).await.unwrap(), 10);
        // A second factor stores no new codes, and needs `only_first` off.
        assert_eq!(
            add(&db, &passkey(pid, b"cred-1"), true, &[[42; 32]]).await,
            Added::NotFirst
        );
        let Added::Stored {
            id: second_id,
            first: false,
        } = add(&db, &passkey(pid, b"cred-1"), false, &[[42; 32]]).await
        else {
            panic!("second factor")
        };
        let now = db.clock.now().unix_timestamp();
        let use_code = |h: [u8; 32]| FactorUse::Recovery { code_hash: h };
        let s1 = NewSession::new(pid, now, 60, ACR_TWO_FACTOR, &["pwd", "otp"], None);
        assert!(db
            .store
            .use_factor(pid, &use_code([3; 32]), None, &s1, db.clock.now(), ev("x"))
            .await
            .unwrap());
        let s2 = NewSession::new(pid, now, 60, ACR_TWO_FACTOR, &["pwd", "otp"], None);
        assert!(!db
            .store
            .use_factor(pid, &use_code([3; 32]), None, &s2, db.clock.now(), ev("x"))
            .await
            .unwrap());
        assert!(!db
            .store
            .use_factor(pid, &use_code([42; 32]), None, &s2, db.clock.now(), ev("x"))
            .await
            .unwrap());
        assert_eq!(db.store.unused_recovery_codes(pid).await.unwrap(), 9);

        db.store
            .replace_recovery_codes(pid, &[[50; 32], [51; 32]], db.clock.now(), ev("r"))
            .await
            .unwrap();
        assert_eq!(db.store.unused_recovery_codes(pid).await.unwrap(), 2);
        assert!(!db
            .store
            .use_factor(pid, &use_code([4; 32]), None, &s2, db.clock.now(), ev("x"))
            .await
            .unwrap());

        // Someone else's factor id is not found.
        let other = db
            .store
            .account("101001m1")
            .await
            .unwrap()
            .unwrap()
            .person_id;
        assert!(!db
            .store
            .remove_factor(other, first_id, db.clock.now(), ev("rm"))
            .await
            .unwrap());
        assert!(db
            .store
            .remove_factor(pid, first_id, db.clock.now(), ev("rm"))
            .await
            .unwrap());
        assert_eq!(db.store.unused_recovery_codes(pid).await.unwrap(), 2);
        assert!(db
            .store
            .remove_factor(pid, second_id, db.clock.now(), ev("rm"))
            .await
            .unwrap());
        assert_eq!(
            db.store.unused_recovery_codes(pid).await.unwrap(),
            0,
            "{d:?}"
        );
        assert!(db.store.second_factors(pid).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn passkeys_are_found_by_credential_id_which_is_unique() {
    for d in dialects() {
        let (db, pid) = db_with_person(&d).await;
        assert!(matches!(
            add(&db, &passkey(pid, b"cred-9"), false, &[]).await,
            Added::Stored { .. }
        ));
        let f = db
            .store
            .passkey_by_credential(b"cred-9")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (f.person_id, f.kind, f.user_handle.as_deref()),
            (pid, FactorKind::Passkey, Some(&[9u8; 16][..]))
        );
        assert!(db
            .store
            .passkey_by_credential(b"cred-0")
            .await
            .unwrap()
            .is_none());
        let now = db.clock.now().unix_timestamp();
        db.store
            .put_ceremony(&[200; 32], "k", Some(pid), b"s", now + 60, now)
            .await
            .unwrap();
        let dup = db
            .store
            .add_factor(
                &passkey(pid, b"cred-9"),
                &[200; 32],
                false,
                &[],
                db.clock.now(),
                ev("x"),
            )
            .await;
        assert!(dup.is_err(), "{d:?}");
        let s = NewSession::new(pid, now, 60, ACR_TWO_FACTOR, &["hwk", "user"], None);
        let moved = FactorUse::Passkey {
            factor_id: f.id,
            credential: "{\"cred\":2}".into(),
        };
        assert!(db
            .store
            .use_factor(pid, &moved, None, &s, db.clock.now(), ev("x"))
            .await
            .unwrap());
        let f = db
            .store
            .passkey_by_credential(b"cred-9")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(f.credential.as_deref(), Some("{\"cred\":2}"));
        assert_eq!(
            db.store.user_id_of(pid).await.unwrap().as_deref(),
            Some("101001t1")
        );
    }
}

#[tokio::test]
async fn a_ceremony_is_finished_once_and_expires() {
    for d in dialects() {
        let (db, pid) = db_with_person(&d).await;
        let now = db.clock.now().unix_timestamp();
        db.store
            .put_ceremony(&[1; 32], "a", Some(pid), b"one", now + 60, now)
            .await
            .unwrap();
        db.store
            .put_ceremony(&[2; 32], "b", None, b"two", now + 60, now)
            .await
            .unwrap();
        assert!(
            db.store
                .ceremony(&[1; 32], "b", now)
                .await
                .unwrap()
                .is_none(),
            "kind checked"
        );
        let c = db
            .store
            .ceremony(&[1; 32], "a", now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((c.person_id, c.state.as_slice()), (Some(pid), &b"one"[..]));
        // Replacing keeps one row per key.
        db.store
            .put_ceremony(&[1; 32], "a", Some(pid), b"uno", now + 60, now)
            .await
            .unwrap();
        assert_eq!(
            db.store
                .take_ceremony(&[1; 32], "a", now)
                .await
                .unwrap()
                .unwrap()
                .state,
            b"uno"
        );
        assert!(
            db.store
                .take_ceremony(&[1; 32], "a", now)
                .await
                .unwrap()
                .is_none(),
            "{d:?}"
        );
        assert!(
            db.store
                .take_ceremony(&[2; 32], "b", now + 60)
                .await
                .unwrap()
                .is_none(),
            "expired"
        );
        // Adding a factor needs its ceremony, and ends it.
        let gone = db
            .store
            .add_factor(&totp(pid, 1), &[2; 32], false, &[], db.clock.now(), ev("x"))
            .await
            .unwrap();
        assert_eq!(
            gone,
            Added::Stored {
                id: gone_id(&gone),
                first: true
            }
        );
        let again = db
            .store
            .add_factor(&totp(pid, 1), &[2; 32], false, &[], db.clock.now(), ev("x"))
            .await
            .unwrap();
        assert_eq!(again, Added::CeremonyGone);
        assert_eq!(db.store.second_factors(pid).await.unwrap().len(), 1);
    }
}

fn gone_id(a: &Added) -> i64 {
    match a {
        Added::Stored { id, .. } => *id,
        _ => -1,
    }
}
