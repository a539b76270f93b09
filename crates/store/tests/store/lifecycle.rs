//! Lifecycle rules, on SQLite and (when configured) PostgreSQL: the injected
//! clock moves across each threshold; the effect and its audit event follow.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use tilgang_core::audit::NewEvent;
use tilgang_core::identity::session::NewSession;
use tilgang_core::lifecycle::{self, person, Job, Rules};
use tilgang_core::{Clock, Error};
use tilgang_testkit::{dialects, small_roster, staff_roster, TestDb};
use time::Duration;

async fn id_of(db: &TestDb, user_id: &str) -> i64 {
    db.store.account(user_id).await.unwrap().unwrap().person_id
}

/// Gives the person a password (a stand-in hash: nobody logs in here).
async fn activate(db: &TestDb, user_id: &str) -> i64 {
    let id = id_of(db, user_id).await;
    let ev = NewEvent::new("test", "account.password_set").subjects(vec![id]);
    db.store
        .set_password(id, "$argon2id$stand-in", db.clock.now(), ev)
        .await
        .unwrap();
    id
}

async fn login(db: &TestDb, id: i64) {
    let now = db.clock.now().unix_timestamp();
    let s = NewSession::new(id, now, 3600, "1", &["pwd"], None);
    let ev = NewEvent::new("test", "login.succeeded").subjects(vec![id]);
    db.store
        .record_login(id, None, &s, db.clock.now(), ev)
        .await
        .unwrap();
}

async fn run(db: &TestDb, job: Job, dry_run: bool) -> lifecycle::Outcome {
    lifecycle::run(
        &*db.store,
        &*db.clock,
        &Rules::default(),
        job,
        dry_run,
        "test",
        "holder-a",
        0,
    )
    .await
    .unwrap()
    .expect("the lease is free")
}

async fn last_event(db: &TestDb) -> (String, Vec<i64>, Value) {
    let head = db.store.stored_head().await.unwrap();
    let e = db
        .store
        .audit_page(head.seq - 1, 1)
        .await
        .unwrap()
        .remove(0);
    (
        e.action,
        serde_json::from_str(&e.subjects).unwrap(),
        serde_json::from_str(&e.details).unwrap(),
    )
}

fn ids(o: &lifecycle::Outcome) -> Vec<i64> {
    o.affected.iter().map(|a| a.person_id).collect()
}

#[tokio::test]
async fn unused_accounts_close_after_twelve_months_externals_after_three_leaders_never() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let mut doc = staff_roster("101001", &["Leder"]);
        doc["persons"].as_array_mut().unwrap().push(json!({
            "user_id": "101001x1", "given_name": "Erik", "family_name": "Ekstern",
            "roles": [{"role": "Praktikant"}]}));
        doc["persons"].as_array_mut().unwrap().push(json!({
            "user_id": "101001k1", "given_name": "Kim", "family_name": "Konsulent",
            "roles": [{"role": "Konsulent"}]}));
        db.import_json(&doc).await;
        let pupil = activate(&db, "101001p1").await;
        let teacher = activate(&db, "101001t1").await;
        let leader = activate(&db, "101001l1").await;
        let external = activate(&db, "101001x1").await;
        let substitute = activate(&db, "101001v1").await;
        let consultant = activate(&db, "101001k1").await;
        // The consultant is a municipality admin: never closed either.
        tilgang_core::identity::rights::operator_set_municipality_right(
            &*db.store,
            &*db.clock,
            tilgang_core::identity::rights::MUNICIPALITY_ADMIN,
            "101",
            "101001k1",
            "skoleafdelingen",
            true,
            "test",
        )
        .await
        .unwrap();
        // The substitute holds a granted right: never closed for disuse.
        tilgang_core::identity::rights::operator_set_right(
            &*db.store,
            &*db.clock,
            tilgang_core::identity::rights::PUPIL_RESET,
            "101001",
            "101001v1",
            "vikar i 1.A",
            true,
            "test",
        )
        .await
        .unwrap();

        // Three months and a day: only the external.
        db.clock.advance(Duration::days(93));
        login(&db, teacher).await;
        let dry = run(&db, Job::CloseUnused, true).await;
        assert_eq!(ids(&dry), vec![external], "{d:?}");
        let audit_before = db.store.counts().await.unwrap().audit_events;
        assert!(db
            .store
            .account("101001x1")
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .is_some());
        assert_eq!(
            db.store.counts().await.unwrap().audit_events,
            audit_before,
            "a dry run writes nothing"
        );
        let out = run(&db, Job::CloseUnused, false).await;
        assert_eq!((ids(&out), out.changed), (vec![external], 1), "{d:?}");
        assert!(db
            .store
            .account("101001x1")
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .is_none());
        let (action, subjects, details) = last_event(&db).await;
        assert_eq!(action, "lifecycle.close_unused");
        assert_eq!(subjects, vec![external]);
        assert_eq!(details["changed"], 1);

        // Just short of a year since activation: nothing more.
        db.clock.advance(Duration::days(365 - 93 - 1));
        assert!(
            run(&db, Job::CloseUnused, true).await.affected.is_empty(),
            "{d:?}"
        );
        // Past a year: the pupil; the teacher logged in since, the leader,
        // the substitute and the consultant hold special rights.
        db.clock.advance(Duration::days(2));
        let out = run(&db, Job::CloseUnused, false).await;
        assert_eq!(ids(&out), vec![pupil], "{d:?}");
        assert_eq!(last_event(&db).await.1, vec![pupil]);
        let _ = (leader, substitute, consultant);
        // Running again changes nothing, and says so.
        let again = run(&db, Job::CloseUnused, false).await;
        assert_eq!((again.affected.len(), again.changed), (0, 0));
        assert_eq!(last_event(&db).await.2["changed"], 0);
        // A new password (activation) opens the account again.
        activate(&db, "101001p1").await;
        db.clock.advance(Duration::days(30));
        assert!(
            run(&db, Job::CloseUnused, true).await.affected.is_empty(),
            "{d:?}"
        );
    }
}

/// Imports the small roster, then again without pupil p2: p2 is inactive
/// from that day. Returns p2's id.
async fn end_p2(db: &TestDb) -> i64 {
    let doc = small_roster("101001");
    db.import_json(&doc).await;
    let p2 = id_of(db, "101001p2").await;
    let mut less = doc.clone();
    less["persons"]
        .as_array_mut()
        .unwrap()
        .retain(|p| p["user_id"] != "101001p2");
    for g in less["groups"].as_array_mut().unwrap() {
        g["members"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m != "101001p2");
    }
    db.import_json(&less).await;
    assert!(
        db.store
            .account("101001p2")
            .await
            .unwrap()
            .unwrap()
            .inactive
    );
    p2
}

#[tokio::test]
async fn inactive_persons_are_archived_after_three_years_and_erased_after_five() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let p2 = end_p2(&db).await;
        activate(&db, "101001p2").await;

        db.clock.advance(Duration::days(3 * 365));
        assert!(
            run(&db, Job::ArchiveInactive, false)
                .await
                .affected
                .is_empty(),
            "{d:?}"
        );
        db.clock.advance(Duration::days(2));
        let out = run(&db, Job::ArchiveInactive, false).await;
        assert_eq!((ids(&out), out.changed), (vec![p2], 1), "{d:?}");
        let (action, subjects, _) = last_event(&db).await;
        assert_eq!(
            (action.as_str(), subjects),
            ("lifecycle.archive_inactive", vec![p2])
        );
        assert!(db
            .store
            .account("101001p2")
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .is_none());
        assert!(
            run(&db, Job::ArchiveInactive, false)
                .await
                .affected
                .is_empty(),
            "once"
        );

        assert!(
            run(&db, Job::EraseExpired, false).await.affected.is_empty(),
            "{d:?}"
        );
        db.clock.advance(Duration::days(2 * 365));
        let out = run(&db, Job::EraseExpired, false).await;
        assert_eq!((ids(&out), out.changed), (vec![p2], 1), "{d:?}");
        let (action, subjects, details) = last_event(&db).await;
        assert_eq!(
            (action.as_str(), subjects),
            ("lifecycle.erase_expired", vec![p2])
        );
        assert_eq!(details["changed"], 1);
        // The row stays as a pseudonymous reference.
        assert!(db.store.account("101001p2").await.unwrap().is_none());
        let data = db.store.person_data(p2).await.unwrap().unwrap();
        let row = &data.tables["persons"][0];
        assert_eq!(row["user_id"], format!("erased-{p2}"), "{d:?}");
        assert_eq!(
            (row["given_name"].as_str(), row["family_name"].as_str()),
            (Some(""), Some(""))
        );
        assert_eq!(row["alias_given_name"], Value::Null);
        assert!(data.erased && !data.delivered);
        assert!(data.tables["accounts"].as_array().unwrap().is_empty());
        // The others are untouched.
        assert_eq!(
            db.store
                .account("101001p1")
                .await
                .unwrap()
                .unwrap()
                .given_name,
            "Alma"
        );
    }
}

#[tokio::test]
async fn a_person_is_exported_whole_and_erased_only_once_the_roster_stops_delivering_them() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let p2 = end_p2(&db).await;
        activate(&db, "101001p1").await;
        let p1 = person::find(&*db.store, "101001p1").await.unwrap();
        let doc = person::export(&*db.store, &db.keys, &*db.clock, p1, "test")
            .await
            .unwrap();
        assert_eq!(doc["cpr"], "3002201234", "{d:?}");
        assert_eq!(doc["tables"]["persons"][0]["given_name"], "Alma");
        assert_eq!(doc["tables"]["persons"][0]["cpr_enc"], "(held; not shown)");
        assert_eq!(doc["tables"]["roles"][0]["student_number"], "17");
        assert_eq!(
            doc["tables"]["contacts.pupil_id"].as_array().unwrap().len(),
            1
        );
        assert!(!doc["audit_events"].as_array().unwrap().is_empty());
        let (action, subjects, _) = last_event(&db).await;
        assert_eq!((action.as_str(), subjects), ("person.exported", vec![p1]));

        let err = person::erase(&*db.store, &*db.clock, p1, "test", "request 1")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Refused(_)), "{d:?}: {err:?}");
        assert!(
            err.to_string().contains("still delivered by the roster"),
            "{err}"
        );
        assert_eq!(
            db.store
                .account("101001p1")
                .await
                .unwrap()
                .unwrap()
                .given_name,
            "Alma"
        );

        let r = person::erase(&*db.store, &*db.clock, p2, "test", "request 2")
            .await
            .unwrap();
        assert_eq!(r, person::Erased::Done, "{d:?}");
        let (action, subjects, details) = last_event(&db).await;
        assert_eq!((action.as_str(), subjects), ("person.erased", vec![p2]));
        assert_eq!(details["reason"], "request 2");
        assert_eq!(
            person::erase(&*db.store, &*db.clock, p2, "test", "again")
                .await
                .unwrap(),
            person::Erased::Already
        );
        // Found by internal id only now; the export shows nothing personal.
        assert!(matches!(
            person::find(&*db.store, "101001p2").await,
            Err(Error::NotFound(_))
        ));
        let found = person::find(&*db.store, &format!("#{p2}")).await.unwrap();
        let doc = person::export(&*db.store, &db.keys, &*db.clock, found, "test")
            .await
            .unwrap();
        assert_eq!(doc["erased"], true);
        assert_eq!(doc["cpr"], Value::Null);
        assert_eq!(doc["tables"]["persons"][0]["given_name"], "");
    }
}

#[tokio::test]
async fn one_replica_at_a_time_holds_a_job_and_a_recent_run_is_not_repeated() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let s = &db.store;
        assert!(
            s.take_lease("close-unused", "a", 1000, 60, 0)
                .await
                .unwrap(),
            "{d:?}"
        );
        assert!(
            !s.take_lease("close-unused", "b", 1010, 60, 0)
                .await
                .unwrap(),
            "{d:?}"
        );
        assert!(s
            .take_lease("archive-inactive", "b", 1010, 60, 0)
            .await
            .unwrap());
        s.release_lease("close-unused", "a", 1020, true)
            .await
            .unwrap();
        // The scheduler waits a day after a run; the CLI does not.
        assert!(!s
            .take_lease("close-unused", "b", 1030, 60, 86_400)
            .await
            .unwrap());
        assert!(s
            .take_lease("close-unused", "b", 1030, 60, 0)
            .await
            .unwrap());
        // A crashed holder's lease runs out.
        assert!(
            s.take_lease("close-unused", "c", 1091, 60, 0)
                .await
                .unwrap(),
            "{d:?}"
        );
        // Through `lifecycle::run`: another holder's live lease means no run.
        let now = db.clock.now().unix_timestamp();
        assert!(s
            .take_lease("erase-expired", "other", now, 600, 0)
            .await
            .unwrap());
        let r = lifecycle::run(
            &*db.store,
            &*db.clock,
            &Rules::default(),
            Job::EraseExpired,
            false,
            "test",
            "me",
            0,
        )
        .await
        .unwrap();
        assert!(r.is_none(), "{d:?}");
        // A dry run needs no lease.
        let r = lifecycle::run(
            &*db.store,
            &*db.clock,
            &Rules::default(),
            Job::EraseExpired,
            true,
            "test",
            "me",
            0,
        )
        .await
        .unwrap();
        assert!(r.is_some());
        // The import-files job: tilgang keeps none, so it reports 0, audited.
        let out = run(&db, Job::PurgeImportFiles, false).await;
        assert_eq!((out.affected.len(), out.changed), (0, 0));
        assert_eq!(last_event(&db).await.0, "lifecycle.purge_import_files");
    }
}
