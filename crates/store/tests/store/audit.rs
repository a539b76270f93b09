//! Audit coverage of imports, and audit search (filters, keyset pages,
//! institution scope, the search's own event), on SQLite and (when
//! configured) PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::import;
use serde_json::Value;
use tilgang_core::audit::search::{search, Query, Scope};
use tilgang_core::audit::{actions, Event, NewEvent};
use tilgang_core::Clock;
use tilgang_testkit::{dialects, small_roster, TestDb};

async fn all_events(db: &TestDb) -> Vec<Event> {
    db.store.audit_page(0, 100_000).await.unwrap()
}

fn with<'a>(events: &'a [Event], action: &str) -> Vec<&'a Event> {
    events.iter().filter(|e| e.action == action).collect()
}

async fn id_of(db: &TestDb, user: &str) -> i64 {
    db.store.account(user).await.unwrap().unwrap().person_id
}

#[tokio::test]
async fn an_import_audits_created_changed_inactivated_and_reactivated_persons_and_roles() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let doc = small_roster("101001");
        import(&db, "a.json", &doc, false, false).await.unwrap();
        let ev = all_events(&db).await;
        let created = with(&ev, actions::PERSON_CREATED);
        assert_eq!(
            created.len(),
            1,
            "{d:?}: one event for the institution's new persons"
        );
        let subjects: Vec<i64> = serde_json::from_str(&created[0].subjects).unwrap();
        assert_eq!(subjects.len(), 4);
        assert_eq!(created[0].institution.as_deref(), Some("101001"));
        assert_eq!(with(&ev, actions::ROLE_GRANTED).len(), 1);
        assert_eq!(with(&ev, actions::ROSTER_IMPORT_INSTITUTION).len(), 1);
        let run = with(&ev, actions::ROSTER_IMPORT);
        assert_eq!(run.len(), 1, "one summary per run");

        // p2 leaves and t1 changes name.
        let p2 = id_of(&db, "101001p2").await;
        let t1 = id_of(&db, "101001t1").await;
        let mut less = doc.clone();
        less["persons"]
            .as_array_mut()
            .unwrap()
            .retain(|p| p["user_id"] != "101001p2");
        for p in less["persons"].as_array_mut().unwrap() {
            if p["user_id"] == "101001t1" {
                p["family_name"] = Value::from("Nielsen-Berg");
            }
        }
        for g in less["groups"].as_array_mut().unwrap() {
            g["members"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m != "101001p2");
        }
        import(&db, "b.json", &less, false, false).await.unwrap();
        let ev = all_events(&db).await;
        let subjects = |e: &Event| serde_json::from_str::<Vec<i64>>(&e.subjects).unwrap();
        let inactivated = with(&ev, actions::PERSON_INACTIVATED);
        assert_eq!(inactivated.len(), 1, "{d:?}");
        assert_eq!(subjects(inactivated[0]), vec![p2]);
        let updated = with(&ev, actions::PERSON_UPDATED);
        assert!(updated.iter().any(|e| subjects(e).contains(&t1)), "{d:?}");
        let ended = with(&ev, actions::ROLE_ENDED);
        assert_eq!(ended.len(), 1);
        assert_eq!(subjects(ended[0]), vec![p2]);
        assert!(
            ended[0].details.contains("reason"),
            "a removed role says why"
        );

        import(&db, "a.json", &doc, false, false).await.unwrap();
        let ev = all_events(&db).await;
        let back = with(&ev, actions::PERSON_REACTIVATED);
        assert_eq!(back.len(), 1, "{d:?}");
        assert_eq!(subjects(back[0]), vec![p2]);
    }
}

/// Ten events about persons 1..=10 at institutions A and B one second
/// apart, each a login or a service's token.
async fn seeded(db: &TestDb) -> i64 {
    let start = db.clock.now();
    for i in 1..=10i64 {
        let ev = if i % 2 == 0 {
            NewEvent::new("service:lms", actions::OIDC_TOKEN_ISSUED)
                .subjects(vec![i])
                .details(serde_json::json!({"client_id": "lms"}))
        } else {
            NewEvent::new(format!("person:{i}"), actions::LOGIN_SUCCEEDED)
                .subjects(vec![i])
                .institution(if i < 6 { "A" } else { "B" })
        };
        db.store
            .append_audit(db.clock.now(), vec![ev])
            .await
            .unwrap();
        db.clock.advance(time::Duration::seconds(1));
    }
    (start.unix_timestamp_nanos() / 1000) as i64
}

fn q() -> Query {
    Query {
        limit: 100,
        ..Default::default()
    }
}

#[tokio::test]
async fn audit_search_filters_by_person_service_action_time_and_institution() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        let t0 = seeded(&db).await;
        let run = |query: Query| {
            let db = &db;
            async move {
                search(&*db.store, &*db.clock, "test", &Scope::All, &query)
                    .await
                    .unwrap()
                    .events
                    .into_iter()
                    .filter(|e| e.action != actions::AUDIT_SEARCH)
                    .map(|e| e.subjects)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            run(Query {
                person: Some(3),
                ..q()
            })
            .await,
            vec!["[3]"],
            "{d:?}"
        );
        let by_service = run(Query {
            service: Some("lms".into()),
            ..q()
        })
        .await;
        assert_eq!(
            by_service,
            vec!["[10]", "[8]", "[6]", "[4]", "[2]"],
            "newest first"
        );
        let logins = run(Query {
            action: Some(actions::LOGIN_SUCCEEDED.into()),
            ..q()
        })
        .await;
        assert_eq!(logins.len(), 5);
        let window = run(Query {
            from_us: Some(t0 + 2_000_000),
            to_us: Some(t0 + 4_000_000),
            ..q()
        })
        .await;
        assert_eq!(window, vec!["[4]", "[3]"], "from inclusive, to exclusive");
        let at_b = run(Query {
            institution: Some("B".into()),
            ..q()
        })
        .await;
        assert_eq!(at_b, vec!["[9]", "[7]"]);
    }
}

#[tokio::test]
async fn audit_search_pages_by_keyset_newest_first() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        seeded(&db).await;
        let query = Query {
            action: Some(actions::LOGIN_SUCCEEDED.into()),
            limit: 2,
            ..Default::default()
        };
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = search(
                &*db.store,
                &*db.clock,
                "test",
                &Scope::All,
                &Query {
                    after,
                    ..query.clone()
                },
            )
            .await
            .unwrap();
            seen.extend(page.events.iter().map(|e| e.subjects.clone()));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, vec!["[9]", "[7]", "[5]", "[3]", "[1]"], "{d:?}");
    }
}

#[tokio::test]
async fn every_audit_search_is_itself_audited_with_its_filters() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        seeded(&db).await;
        let query = Query {
            person: Some(4),
            ..q()
        };
        let page = search(&*db.store, &*db.clock, "person:99", &Scope::All, &query)
            .await
            .unwrap();
        // The search's own event is written first, so it is in the results
        // (it names the person searched for).
        assert_eq!(page.events[0].action, actions::AUDIT_SEARCH, "{d:?}");
        let ev = all_events(&db).await;
        let searches = with(&ev, actions::AUDIT_SEARCH);
        assert_eq!(searches.len(), 1);
        assert_eq!(searches[0].actor, "person:99");
        assert!(
            searches[0].details.contains("\"person\":4"),
            "{}",
            searches[0].details
        );
    }
}

#[tokio::test]
async fn an_institution_scope_sees_its_own_and_its_peoples_events_but_no_other_institutions() {
    for d in dialects() {
        let db = TestDb::new(&d).await;
        import(&db, "a.json", &small_roster("101001"), false, false)
            .await
            .unwrap();
        import(&db, "b.json", &small_roster("202002"), false, false)
            .await
            .unwrap();
        let ours = id_of(&db, "101001p1").await;
        let theirs = id_of(&db, "202002p1").await;
        let at = db.clock.now();
        let events = vec![
            // A login carries no institution: it is ours through the person.
            NewEvent::new("x", actions::LOGIN_SUCCEEDED).subjects(vec![ours]),
            NewEvent::new("x", actions::LOGIN_SUCCEEDED).subjects(vec![theirs]),
            // Tied to the other institution: hidden even if it named ours.
            NewEvent::new("x", actions::STAFF_PUPILS_LISTED)
                .institution("202002")
                .subjects(vec![ours, theirs]),
        ];
        db.store.append_audit(at, events).await.unwrap();
        let scope = Scope::Institutions(vec!["101001".into()]);
        let page = search(&*db.store, &*db.clock, "test", &scope, &q())
            .await
            .unwrap();
        assert!(!page.events.is_empty());
        for e in &page.events {
            assert!(
                e.institution.as_deref() == Some("101001")
                    || (e.institution.is_none() && e.subjects.contains(&ours.to_string())),
                "{d:?}: {e:?}"
            );
            assert!(!e.subjects.contains(&theirs.to_string()), "{e:?}");
        }
        assert!(page
            .events
            .iter()
            .any(|e| e.action == actions::LOGIN_SUCCEEDED));
        let other = Query {
            person: Some(theirs),
            ..q()
        };
        let page = search(&*db.store, &*db.clock, "test", &scope, &other)
            .await
            .unwrap();
        // Only the admin's own searches (events of their institution) show.
        assert!(
            page.events
                .iter()
                .all(|e| e.action == actions::AUDIT_SEARCH),
            "{d:?}: {:?}",
            page.events
        );
    }
}
