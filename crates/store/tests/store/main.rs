//! The store test suite: every test runs on SQLite, and on PostgreSQL when
//! TILGANG_TEST_POSTGRES_URL is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod anonymize;
mod audit;
mod changes;
mod checkpoints;
mod export;
mod factors;
mod lifecycle;
mod oidc;
mod sharing;
mod staff;

use serde_json::{json, Value};
use tilgang_core::audit::{Head, NewEvent, Verifier};
use tilgang_core::roster::import::run::{run, NoProgress, Options, RunReport};
use tilgang_core::roster::import::Source;
use tilgang_core::{Clock, Error};
use tilgang_testkit::{dialects, small_roster, TestDb};

fn opts(delta: bool, dry_run: bool) -> Options {
    Options {
        format: None,
        institution: None,
        delta,
        dry_run,
        actor: "test".into(),
    }
}

async fn import(
    db: &TestDb,
    name: &str,
    doc: &Value,
    delta: bool,
    dry_run: bool,
) -> Result<RunReport, Error> {
    let path = db.dir().join(name);
    std::fs::write(&path, serde_json::to_vec(doc).unwrap()).unwrap();
    import_from(db, &path, delta, dry_run).await
}

/// Imports a file or folder already in place.
async fn import_from(
    db: &TestDb,
    path: &std::path::Path,
    delta: bool,
    dry_run: bool,
) -> Result<RunReport, Error> {
    run(
        &*db.store,
        &db.keys,
        &*db.clock,
        &Source::open(path).unwrap(),
        &opts(delta, dry_run),
        &NoProgress,
    )
    .await
}

/// Everything a snapshot compares: the roster as read back, and counts
/// without the audit log.
async fn snapshot(db: &TestDb, number: &str) -> String {
    let roster = db.store.institution_roster(number).await.unwrap();
    let mut counts = db.store.counts().await.unwrap();
    counts.audit_events = 0;
    format!("{roster:?}\n{counts:?}")
}

/// Not a roster row and not an audit event.
async fn assert_nothing_written(db: &TestDb, context: impl std::fmt::Debug) {
    let c = db.store.counts().await.unwrap();
    assert_eq!(
        (c.institutions, c.persons, c.audit_events),
        (0, 0, 0),
        "{context:?}"
    );
}

async fn verify(db: &TestDb) -> Result<u64, (i64, String)> {
    let head = db.store.stored_head().await.unwrap();
    let mut v = Verifier::new(Head::default());
    let mut after = 0;
    loop {
        let page = db.store.audit_page(after, 3).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            v.push(e).map_err(|b| (b.seq, b.reason))?;
        }
    }
    v.finish(head).map_err(|b| (b.seq, b.reason))?;
    Ok(v.checked)
}

#[tokio::test]
async fn importing_the_same_file_twice_changes_nothing() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let doc = small_roster("101001");
        let first = import(&db, "a.json", &doc, false, false).await.unwrap();
        assert_eq!(first.summary.persons.created, 4, "{d:?}");
        assert_eq!(first.summary.memberships.created, 5);
        assert_eq!(first.summary.contacts.created, 1);
        let before = snapshot(&db, "101001").await;
        let audit_before = db.store.counts().await.unwrap().audit_events;
        let second = import(&db, "a.json", &doc, false, false).await.unwrap();
        assert!(!second.summary.changed(), "{d:?}: {:?}", second.summary);
        assert_eq!(second.summary.persons.unchanged, 4);
        assert_eq!(snapshot(&db, "101001").await, before, "{d:?}");
        // Only the run's summary event is added.
        assert_eq!(
            db.store.counts().await.unwrap().audit_events,
            audit_before + 1
        );
        assert!(verify(&db).await.is_ok());
    }
}

#[tokio::test]
async fn a_full_import_ends_what_it_leaves_out_and_brings_it_back() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let doc = small_roster("101001");
        import(&db, "a.json", &doc, false, false).await.unwrap();
        let ids_before: Vec<_> = db
            .store
            .institution_roster("101001")
            .await
            .unwrap()
            .unwrap()
            .1
            .iter()
            .map(|p| (p.person.user_id.clone(), p.id))
            .collect();

        // Pupil p2 leaves: their role and memberships end, they become inactive.
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
        let r = import(&db, "b.json", &less, false, false).await.unwrap();
        assert_eq!(r.summary.roles.ended, 1, "{d:?}");
        assert_eq!(r.summary.memberships.ended, 2);
        assert_eq!(r.summary.inactivated, 1);
        let (roster, _) = db
            .store
            .institution_roster("101001")
            .await
            .unwrap()
            .unwrap();
        assert!(roster.persons.iter().all(|p| p.user_id != "101001p2"));
        assert_eq!(
            db.store.counts().await.unwrap().persons,
            4,
            "ended, never deleted"
        );

        // Delivered again: the same ids, reopened, active.
        let r = import(&db, "a.json", &doc, false, false).await.unwrap();
        assert_eq!(r.summary.reactivated, 1, "{d:?}");
        assert_eq!(r.summary.persons.created, 0);
        let ids_after: Vec<_> = db
            .store
            .institution_roster("101001")
            .await
            .unwrap()
            .unwrap()
            .1
            .iter()
            .map(|p| (p.person.user_id.clone(), p.id))
            .collect();
        assert_eq!(ids_before, ids_after);
        assert!(verify(&db).await.is_ok());
    }
}

#[tokio::test]
async fn a_delta_applies_only_what_it_names() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        import(&db, "a.json", &small_roster("101001"), false, false)
            .await
            .unwrap();
        let delta = json!({
            "format": "tilgang-roster/1",
            "institution": {"number": "101001", "name": "Skole 101001", "type": "school", "municipality_code": "101"},
            "source_system": "test",
            "school_year": "2026/2027",
            "persons": [{"user_id": "101001t2", "given_name": "Ole", "family_name": "Vikar", "roles": [{"role": "Vikar"}]}],
            "groups": [],
            "ended": {"memberships": [{"group": "1", "user_id": "101001p1"}]}
        });
        let r = import(&db, "d.json", &delta, true, false).await.unwrap();
        assert_eq!(r.summary.persons.created, 1, "{d:?}");
        assert_eq!(r.summary.memberships.ended, 1);
        assert_eq!(
            r.summary.groups.ended, 0,
            "a delta ends nothing it does not name"
        );
        assert_eq!(r.summary.roles.ended, 0);
        let (roster, _) = db
            .store
            .institution_roster("101001")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(roster.persons.len(), 5);
        assert_eq!(roster.memberships.len(), 4);
    }
}

#[tokio::test]
async fn cpr_numbers_are_encrypted_at_rest() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        import(&db, "a.json", &small_roster("101001"), false, false)
            .await
            .unwrap();
        let (_, stored) = db
            .store
            .institution_roster("101001")
            .await
            .unwrap()
            .unwrap();
        let alma = stored
            .iter()
            .find(|p| p.person.user_id == "101001p1")
            .unwrap();
        let blob = alma.cpr_enc.as_ref().unwrap();
        assert!(!blob.windows(4).any(|w| w == b"3002"), "{d:?}");
        assert_eq!(db.keys.decrypt_cpr(blob).unwrap().expose(), "3002201234");
        assert!(
            alma.person.cpr.is_none(),
            "the store never hands out plain CPR numbers"
        );
    }
}

#[tokio::test]
async fn a_dry_run_writes_nothing() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let r = import(&db, "a.json", &small_roster("101001"), false, true)
            .await
            .unwrap();
        assert_eq!(r.summary.persons.created, 4, "{d:?}");
        assert_nothing_written(&db, &d).await;
    }
}

#[tokio::test]
async fn an_invalid_import_writes_nothing_and_names_every_problem() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let good = small_roster("101001");
        let mut bad = small_roster("101002");
        bad["groups"][0]["members"]
            .as_array_mut()
            .unwrap()
            .push(json!("nobody"));
        bad["persons"][0]["birth_date"] = json!("2020-13-45");
        let dir = db.dir().join("in");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.json"), good.to_string()).unwrap();
        std::fs::write(dir.join("b.json"), bad.to_string()).unwrap();
        let err = import_from(&db, &dir, false, false).await.unwrap_err();
        let Error::ImportInvalid(issues) = err else {
            panic!("{err}")
        };
        let errors: Vec<String> = issues
            .iter()
            .filter(|i| i.is_error())
            .map(|i| i.to_string())
            .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("b.json") && e.contains("members[3]") && e.contains("nobody")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("b.json") && e.contains("birth_date")),
            "{errors:?}"
        );
        assert_nothing_written(&db, &d).await;
    }
}

#[tokio::test]
async fn audit_verify_names_the_first_broken_link() {
    type Tamper = (&'static str, &'static str, i64);
    let cases: &[Tamper] = &[
        ("edited", "UPDATE audit_events SET details = '{\"x\":1}' WHERE seq = 3", 3),
        ("deleted", "DELETE FROM audit_events WHERE seq = 2", 2),
        (
            "inserted",
            "UPDATE audit_events SET seq = seq + 100 WHERE seq >= 3; UPDATE audit_events SET seq = seq - 99 WHERE seq >= 103; \
             INSERT INTO audit_events SELECT 3, at_us, actor, action, institution, subjects, details, prev_hash, hash, content_hash, redacted_at_us FROM audit_events WHERE seq = 2",
            3,
        ),
        (
            "reordered",
            "UPDATE audit_events SET seq = -1 WHERE seq = 2; UPDATE audit_events SET seq = 2 WHERE seq = 3; UPDATE audit_events SET seq = 3 WHERE seq = -1",
            2,
        ),
        ("truncated", "DELETE FROM audit_events WHERE seq >= 4", 4),
    ];
    for d in dialects() {
        for (what, sql, seq) in cases {
            let db = TestDb::new(&d).await;
            let events = (0..5)
                .map(|i| NewEvent::new("test", "thing.done").subjects(vec![i]))
                .collect();
            db.store.append_audit(db.clock.now(), events).await.unwrap();
            assert_eq!(verify(&db).await, Ok(5));
            db.raw(sql).await;
            let broken = verify(&db).await.expect_err(what);
            assert_eq!(broken.0, *seq, "{d:?} {what}: {}", broken.1);
        }
    }
}

#[tokio::test]
async fn every_kind_of_bad_input_is_rejected_and_writes_nothing() {
    let base = small_roster("101001");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut d = base.clone();
        f(&mut d);
        d.to_string()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "malformed JSON",
            "{\"format\": \"tilgang-roster/1\", \"persons\": [".into(),
            "not valid JSON",
        ),
        (
            "bad date",
            with(&|d| d["groups"][0]["from"] = json!("01-08-2026")),
            "field from",
        ),
        (
            "duplicate id",
            with(&|d| d["persons"][1]["user_id"] = json!("101001p1")),
            "duplicate user_id",
        ),
        (
            "dangling reference",
            with(&|d| d["contacts"][0]["contact"] = json!("ghost")),
            "\"ghost\"",
        ),
        (
            "unknown role",
            with(&|d| d["persons"][0]["roles"][0]["role"] = json!("Rektor")),
            "\"Rektor\"",
        ),
        (
            "missing name",
            with(&|d| d["persons"][2]["family_name"] = json!("")),
            "field family_name",
        ),
        (
            "wrong format",
            with(&|d| d["format"] = json!("uni-login/7")),
            "field format",
        ),
        (
            "ended in a full import",
            with(&|d| d["ended"] = json!({"groups": ["1A"]})),
            "only a delta",
        ),
    ];
    for d in dialects() {
        for (what, doc, expect) in &cases {
            let db = TestDb::new(&d).await;
            let path = db.dir().join("bad.json");
            std::fs::write(&path, doc).unwrap();
            let err = import_from(&db, &path, false, false).await.unwrap_err();
            let Error::ImportInvalid(issues) = err else {
                panic!("{what}: {err}")
            };
            let text: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
            assert!(
                text.iter()
                    .any(|t| t.contains("bad.json") && t.contains(expect)),
                "{what}: {text:?}"
            );
            assert_nothing_written(&db, (&d, what)).await;
        }
    }
}

#[tokio::test]
async fn a_oneroster_bundle_with_a_malformed_row_writes_nothing() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let dir = db.dir().join("bundle");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("manifest.csv"), "propertyName,value\nmanifest.version,1.0\noneroster.version,1.2\nfile.orgs,bulk\nfile.users,bulk\nfile.roles,bulk\n").unwrap();
        std::fs::write(dir.join("orgs.csv"), "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\ns1,,,Skole,school,101001,\n").unwrap();
        std::fs::write(dir.join("users.csv"), "sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password\nu1,,,true,u1,,Alma,\"Jensen,,,,,,,,,\n").unwrap();
        std::fs::write(dir.join("roles.csv"), "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId,userProfileSourcedId\nr1,,,u1,primary,student,,,s1,\n").unwrap();
        let err = import_from(&db, &dir, false, false).await.unwrap_err();
        assert!(matches!(err, Error::ImportInvalid(_)), "{err}");
        assert_nothing_written(&db, &d).await;
    }
}
