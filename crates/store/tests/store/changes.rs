//! The changes feed on both dialects: what an import, an end and an
//! erasure write, what a service reads (only approved institutions, from
//! the approval on, with its filters and its kind of person id), cursors,
//! the audit event per page, and the ordering guarantee under concurrent
//! writers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use tilgang_core::audit::{actions, NewEvent};
use tilgang_core::lifecycle::person;
use tilgang_core::oidc::{hash_token, pairwise_subject, Package, Service};
use tilgang_core::roster::Actor;
use tilgang_core::sharing::agreement::{self, Addressee, Decider, Delivery, Filters, RequestSpec};
use tilgang_core::sharing::changes::{changes_since, encode_cursor, Change, Page};
use tilgang_core::store::changes::{ChangeKind, ChangeOp};
use tilgang_core::Clock;
use tilgang_testkit::{dialects, small_roster, TestDb};
use time::Duration;

const OP: &str = "cli";

async fn add_service(db: &TestDb, client_id: &str, package: Package) {
    db.store
        .add_service(
            &Service {
                client_id: client_id.into(),
                name: client_id.into(),
                secret_hash: Some(hash_token("s")),
                jwks_uri: None,
                jwks: None,
                redirect_uris: vec!["https://rp.example/cb".into()],
                post_logout_redirect_uris: vec![],
                grants: vec!["authorization_code".into()],
                package,
                min_acr: "urn:tilgang:loa:1".into(),
                public: false,
                id_token_alg: "RS256".into(),
                pairwise_salt: [7; 32],
                created_at: 1,
            },
            db.clock.now(),
            NewEvent::new("test", "oidc.service.added"),
        )
        .await
        .unwrap();
}

fn spec(package: Package, delivery: Delivery, filters: Filters) -> RequestSpec {
    RequestSpec {
        purpose: "Pupils practise maths".into(),
        package,
        delivery,
        filters,
        sub_processors: vec![],
        locations: vec!["DK".into()],
        retention: "deleted 6 months after the roster stops delivering a user".into(),
        dpa_reference: "DPA-1".into(),
    }
}

/// Requests and (unless minimal) approves `spec` at `number`.
async fn approve(db: &TestDb, client_id: &str, number: &str, spec: &RequestSpec) {
    let sent = agreement::request(
        &*db.store,
        &*db.clock,
        OP,
        client_id,
        spec,
        &Addressee::Institution(number.into()),
    )
    .await
    .unwrap();
    if spec.package != Package::Minimal {
        agreement::approve(&*db.store, &*db.clock, Decider::Operator(OP), sent[0].1)
            .await
            .unwrap();
    }
}

async fn page(db: &TestDb, client_id: &str, cursor: Option<&str>) -> Page {
    changes_since(&*db.store, client_id, cursor, 1000, &*db.clock)
        .await
        .unwrap()
}

/// (op, kind, person) of each change, for compact assertions.
fn brief(changes: &[Change]) -> Vec<(ChangeOp, ChangeKind, Option<String>)> {
    changes
        .iter()
        .map(|c| (c.op, c.kind, c.person.clone()))
        .collect()
}

fn has(changes: &[Change], op: ChangeOp, kind: ChangeKind, person: &str) -> bool {
    changes
        .iter()
        .any(|c| c.op == op && c.kind == kind && c.person.as_deref() == Some(person))
}

fn without(doc: &Value, user_id: &str) -> Value {
    let mut doc = doc.clone();
    let keep = |v: &Value| v.as_str() != Some(user_id);
    doc["persons"]
        .as_array_mut()
        .unwrap()
        .retain(|p| p["user_id"] != user_id);
    for g in doc["groups"].as_array_mut().unwrap() {
        g["members"].as_array_mut().unwrap().retain(keep);
    }
    doc["contacts"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c["pupil"] != user_id && c["contact"] != user_id);
    doc
}

#[tokio::test]
async fn import_and_erase_appear_in_order_for_the_approved_institution_only() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        add_service(&db, "matte", Package::Small).await;
        db.import_json(&small_roster("101001")).await;
        db.import_json(&small_roster("101002")).await;
        db.clock.advance(Duration::seconds(5));
        approve(
            &db,
            "matte",
            "101001",
            &spec(Package::Small, Delivery::Export, Filters::default()),
        )
        .await;
        let start = page(&db, "matte", None).await;
        assert!(
            start.changes.is_empty(),
            "the feed starts at the approval: {d:?}"
        );

        // A new pupil with a mother and a new group, at both schools.
        let with_new = |number: &str| {
            let mut doc = small_roster(number);
            doc["persons"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                "user_id": format!("{number}p1"), "given_name": "Alma", "family_name": "Jensen",
                "roles": [{"role": "Elev", "grade_level": "1", "main_group": "1A"}]}));
            doc["persons"].as_array_mut().unwrap().remove(0);
            doc["persons"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                "user_id": format!("{number}p9"), "given_name": "Ny", "family_name": "Elev",
                "roles": [{"role": "Elev", "grade_level": "2", "main_group": "2B"}]}));
            doc["groups"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                "id": "2B", "name": "2.B", "type": "Hovedgruppe", "level": "2",
                "members": [format!("{number}p9")]}));
            doc["contacts"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                "pupil": format!("{number}p9"), "contact": format!("{number}m1"),
                "relation": "Mor", "custody": true}));
            doc
        };
        let doc = with_new("101001");
        db.import_json(&doc).await;
        db.import_json(&with_new("101002")).await;
        let first = page(&db, "matte", Some(&start.next_cursor)).await;
        assert!(!first.has_more);
        assert!(
            first.changes.iter().all(|c| c.institution == "101001"),
            "an institution that approved nothing stays invisible: {d:?}"
        );
        let (p1, p9) = ("101001p1", "101001p9");
        assert!(
            has(&first.changes, ChangeOp::Created, ChangeKind::Person, p9),
            "{d:?}"
        );
        assert!(has(&first.changes, ChangeOp::Created, ChangeKind::Role, p9));
        assert!(has(
            &first.changes,
            ChangeOp::Created,
            ChangeKind::Membership,
            p9
        ));
        assert!(has(
            &first.changes,
            ChangeOp::Updated,
            ChangeKind::Person,
            p1
        ));
        assert!(first.changes.iter().any(|c| c.kind == ChangeKind::Contact
            && c.pupil.as_deref() == Some(p9)
            && c.person.as_deref() == Some("101001m1")));
        assert!(first
            .changes
            .iter()
            .any(|c| c.kind == ChangeKind::Group && c.record.as_deref() == Some("2B")));

        // Reading is a data access: one event naming the service and persons.
        let head = db.store.stored_head().await.unwrap();
        let ev = db
            .store
            .audit_page(head.seq - 1, 1)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(
            (ev.action.as_str(), ev.actor.as_str()),
            (actions::API_CHANGES, "service:matte")
        );
        let p1_id = db.store.person_id(p1).await.unwrap().unwrap();
        let subjects: Vec<i64> = serde_json::from_str(&ev.subjects).unwrap();
        let p9_id = db.store.person_id(p9).await.unwrap().unwrap();
        assert!(
            subjects.contains(&p1_id) && subjects.contains(&p9_id),
            "{d:?}"
        );

        // An empty poll releases nothing: same cursor, nothing audited.
        let events = db.store.counts().await.unwrap().audit_events;
        let again = page(&db, "matte", Some(&first.next_cursor)).await;
        assert!(again.changes.is_empty() && !again.has_more);
        assert_eq!(again.next_cursor, first.next_cursor);
        assert_eq!(db.store.counts().await.unwrap().audit_events, events);

        // An update, then the end.
        let mut renamed = doc.clone();
        for p in renamed["persons"].as_array_mut().unwrap() {
            if p["user_id"] == p1 {
                p["family_name"] = "Jensen-Berg".into();
            }
        }
        db.import_json(&renamed).await;
        let updated = page(&db, "matte", Some(&first.next_cursor)).await;
        assert_eq!(
            brief(&updated.changes),
            vec![(ChangeOp::Updated, ChangeKind::Person, Some(p1.to_owned()))],
            "{d:?}"
        );
        db.clock.advance(Duration::days(1));
        db.import_json(&without(&renamed, p1)).await;
        let ended = page(&db, "matte", Some(&updated.next_cursor)).await;
        for kind in [ChangeKind::Role, ChangeKind::Membership, ChangeKind::Person] {
            assert!(
                has(&ended.changes, ChangeOp::Ended, kind, p1),
                "{kind:?} {d:?}"
            );
        }
        assert!(ended.changes.iter().all(|c| c.op == ChangeOp::Ended));
        assert_eq!(
            ended.changes.last().map(|c| (c.op, c.kind)),
            Some((ChangeOp::Ended, ChangeKind::Person)),
            "the person ends after their records"
        );

        // Erasure: deleted, named by the user id the provider knows.
        person::erase(&*db.store, &*db.clock, p1_id, OP, "asked")
            .await
            .unwrap();
        let deleted = page(&db, "matte", Some(&ended.next_cursor)).await;
        assert_eq!(
            brief(&deleted.changes),
            vec![(ChangeOp::Deleted, ChangeKind::Person, Some(p1.to_owned()))],
            "{d:?}"
        );

        // Resuming from the first cursor gives exactly what came after it.
        let all = page(&db, "matte", Some(&first.next_cursor)).await;
        let mut expected = updated.changes.clone();
        expected.extend(ended.changes.clone());
        expected.extend(deleted.changes.clone());
        assert_eq!(all.changes, expected, "{d:?}");

        // Small pages: has_more until the end, the same changes in order.
        let mut cursor = first.next_cursor.clone();
        let mut walked = Vec::new();
        loop {
            let p = changes_since(&*db.store, "matte", Some(&cursor), 2, &*db.clock)
                .await
                .unwrap();
            walked.extend(p.changes);
            cursor = p.next_cursor;
            if !p.has_more {
                break;
            }
        }
        assert_eq!(walked, expected, "{d:?}");
    }
}

#[tokio::test]
async fn the_feed_starts_at_the_approval_and_honours_its_filters() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        add_service(&db, "matte", Package::Small).await;
        db.import_json(&small_roster("101001")).await;
        db.clock.advance(Duration::seconds(5));
        let filters = Filters {
            actors: vec![Actor::Employee],
            grade_levels: vec![],
        };
        approve(
            &db,
            "matte",
            "101001",
            &spec(Package::Small, Delivery::Both, filters),
        )
        .await;
        assert!(page(&db, "matte", None).await.changes.is_empty(), "{d:?}");

        let mut doc = small_roster("101001");
        doc["persons"][0]["family_name"] = "Jensen-Berg".into();
        doc["persons"][2]["family_name"] = "Nielsen-Berg".into();
        db.import_json(&doc).await;
        let p = page(&db, "matte", None).await;
        assert_eq!(
            brief(&p.changes),
            vec![(
                ChangeOp::Updated,
                ChangeKind::Person,
                Some("101001t1".to_owned())
            )],
            "the pupil is filtered out: {d:?}"
        );

        // Ends pass every filter: the provider may hold the pupil from an
        // earlier version.
        db.import_json(&without(&doc, "101001p1")).await;
        let ended = page(&db, "matte", Some(&p.next_cursor)).await;
        assert!(
            has(
                &ended.changes,
                ChangeOp::Ended,
                ChangeKind::Person,
                "101001p1"
            ),
            "{d:?}"
        );
    }
}

#[tokio::test]
async fn a_minimal_package_service_sees_ends_and_deletions_by_pairwise_subject() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        add_service(&db, "kort", Package::Minimal).await;
        let doc = small_roster("101001");
        db.import_json(&doc).await;
        approve(
            &db,
            "kort",
            "101001",
            &spec(Package::Minimal, Delivery::Lookup, Filters::default()),
        )
        .await;
        let mut renamed = doc.clone();
        renamed["persons"][0]["family_name"] = "Jensen-Berg".into();
        db.import_json(&renamed).await;
        assert!(
            page(&db, "kort", None).await.changes.is_empty(),
            "no roster data beyond login: {d:?}"
        );
        db.import_json(&without(&doc, "101001p1")).await;
        let id = db.store.person_id("101001p1").await.unwrap().unwrap();
        person::erase(&*db.store, &*db.clock, id, OP, "asked")
            .await
            .unwrap();
        let p = page(&db, "kort", None).await;
        let sub = pairwise_subject(&[7; 32], "101001p1");
        // The mother's only relation was to the pupil: she ends too.
        let mother = pairwise_subject(&[7; 32], "101001m1");
        assert_eq!(
            brief(&p.changes),
            vec![
                (ChangeOp::Ended, ChangeKind::Person, Some(sub.clone())),
                (ChangeOp::Ended, ChangeKind::Person, Some(mother)),
                (ChangeOp::Deleted, ChangeKind::Person, Some(sub)),
            ],
            "{d:?}"
        );
    }
}

#[tokio::test]
async fn a_bad_cursor_is_refused_with_a_clear_error() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        add_service(&db, "matte", Package::Small).await;
        for bad in ["nonsense", "", &encode_cursor(-1), &encode_cursor(5)] {
            let err = changes_since(&*db.store, "matte", Some(bad), 10, &*db.clock)
                .await
                .unwrap_err();
            assert_eq!(err.code(), "CHANGES_CURSOR_INVALID", "{bad:?} {d:?}");
        }
        let err = changes_since(&*db.store, "matte", None, 0, &*db.clock)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "CHANGES_LIMIT_INVALID");
        let err = changes_since(&*db.store, "nobody", None, 10, &*db.clock)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "NOT_FOUND", "{d:?}");
    }
}

/// Concurrent imports while a reader polls: every seq the reader passes
/// was committed before it, so polling from the cursors it was given
/// finds every row exactly once.
#[tokio::test]
async fn a_reader_never_skips_a_change_that_commits_late() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let numbers: Vec<String> = (1..=8).map(|i| format!("1020{i:02}")).collect();
        for n in &numbers {
            db.import_json(&small_roster(n)).await;
        }
        assert_eq!(
            db.store.changes_head().await.unwrap(),
            0,
            "nobody can follow an institution before its first import: it writes no rows ({d:?})"
        );
        // Every school renames a class and adds a pupil to it.
        let docs: Vec<Value> = numbers
            .iter()
            .map(|n| {
                let mut doc = small_roster(n);
                doc["groups"][0]["name"] = "1.A (ny)".into();
                doc["persons"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({
                    "user_id": format!("{n}p8"), "given_name": "Ida", "family_name": "Holm",
                    "roles": [{"role": "Elev", "grade_level": "1", "main_group": "1A"}]}));
                doc
            })
            .collect();
        let writers = futures_util::future::join_all(docs.iter().map(|doc| db.import_json(doc)));
        let reader = async {
            let mut seen = Vec::new();
            let mut after = 0;
            for _ in 0..200 {
                let rows = db.store.changes_after(after, &numbers, 50).await.unwrap();
                if let Some(last) = rows.last() {
                    after = last.seq;
                }
                seen.extend(rows.into_iter().map(|r| r.seq));
                tokio::task::yield_now().await;
            }
            (seen, after)
        };
        let (_, (mut seen, after)) = tokio::join!(writers, reader);
        loop {
            let rows = db
                .store
                .changes_after(*seen.last().unwrap_or(&after), &numbers, 1000)
                .await
                .unwrap();
            if rows.is_empty() {
                break;
            }
            seen.extend(rows.into_iter().map(|r| r.seq));
        }
        let head = db.store.changes_head().await.unwrap();
        assert!(head >= 8 * 3, "{d:?}");
        assert_eq!(seen, (1..=head).collect::<Vec<_>>(), "{d:?}");
    }
}

/// Retention: rows older than `changes_days` go (a dry run only counts);
/// a cursor before the cut is refused as expired, never silently moved
/// on; a cursor the feed handed out after the cut reads on.
#[tokio::test]
async fn old_rows_are_pruned_and_a_cursor_before_the_cut_is_expired() {
    use tilgang_core::lifecycle::{self, Job, Rules};
    for d in dialects() {
        let db = TestDb::new(&d).await;
        add_service(&db, "matte", Package::Small).await;
        // A first import writes no feed rows; a change after it does.
        let mut doc = small_roster("101001");
        db.import_json(&doc).await;
        doc["persons"][0]["family_name"] = "Jensen-Berg".into();
        db.import_json(&doc).await;
        assert!(db.store.changes_head().await.unwrap() >= 1, "{d:?}");
        db.clock.advance(Duration::seconds(5));
        approve(
            &db,
            "matte",
            "101001",
            &spec(Package::Small, Delivery::Export, Filters::default()),
        )
        .await;
        let old = encode_cursor(0);
        // A poll that finds nothing new still moves the cursor to the head.
        let polled = page(&db, "matte", Some(&old)).await;
        assert_eq!(
            polled.next_cursor,
            encode_cursor(db.store.changes_head().await.unwrap())
        );

        db.clock.advance(Duration::days(401));
        db.import_json(&without(&doc, "101001p1")).await;
        let rules = Rules::default();
        let run = |job, dry_run| {
            lifecycle::run(
                &*db.store, &*db.clock, &rules, job, dry_run, "cli", "test", 0,
            )
        };
        let dry = run(Job::ChangesRetention, true).await.unwrap().unwrap();
        let through = dry.details["through"].as_i64().unwrap();
        assert_eq!(dry.details["rows"].as_u64(), Some(through as u64), "{d:?}");
        assert_eq!(
            db.store.changes_pruned_through().await.unwrap(),
            0,
            "dry run"
        );
        assert!(
            changes_since(&*db.store, "matte", Some(&old), 10, &*db.clock)
                .await
                .is_ok(),
            "not expired before the run"
        );

        let done = run(Job::ChangesRetention, false).await.unwrap().unwrap();
        assert_eq!(done.changed, through as u64, "{d:?}");
        assert_eq!(db.store.changes_pruned_through().await.unwrap(), through);
        let head = db.store.stored_head().await.unwrap();
        let ev = db
            .store
            .audit_page(head.seq - 1, 1)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(ev.action, actions::LIFECYCLE_CHANGES_RETENTION, "{d:?}");

        let err = changes_since(&*db.store, "matte", Some(&old), 10, &*db.clock)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "CHANGES_CURSOR_EXPIRED", "{d:?}");
        assert!(err.to_string().contains("full export"), "{err}");
        // The cursor of the poll before the cut missed nothing: it reads on.
        let on = page(&db, "matte", Some(&polled.next_cursor)).await;
        assert!(
            has(&on.changes, ChangeOp::Ended, ChangeKind::Person, "101001p1"),
            "{d:?}: {:?}",
            brief(&on.changes)
        );
        let again = run(Job::ChangesRetention, false).await.unwrap().unwrap();
        assert_eq!(again.changed, 0, "done once");
    }
}
