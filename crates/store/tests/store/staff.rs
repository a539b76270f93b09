//! Staff standing, pupil lists, right grants and login cards, on SQLite and
//! (when TILGANG_TEST_POSTGRES_URL is set) PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tilgang_core::audit::NewEvent;
use tilgang_core::roster::RoleKind;
use tilgang_core::store::Store;
use tilgang_core::Clock;
use tilgang_testkit::{dialects, small_roster, staff_roster, TestDb};

/// Institution 101001 with a substitute and a leader added, and 202002.
async fn db(d: &tilgang_testkit::Dialect) -> TestDb {
    let db = TestDb::new(d).await;
    db.import_json(&staff_roster("101001", &["Leder", "Lærer"]))
        .await;
    db.import_json(&small_roster("202002")).await;
    db
}

async fn person(store: &dyn Store, user_id: &str) -> i64 {
    store.account(user_id).await.unwrap().unwrap().person_id
}

async fn institution_id(store: &dyn Store, teacher: &str, number: &str) -> i64 {
    let id = person(store, teacher).await;
    store
        .staff_standing(id)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.number == number)
        .unwrap()
        .institution_id
}

async fn events(db: &TestDb, action: &str) -> usize {
    db.store
        .audit_page(0, 10_000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == action)
        .count()
}

#[tokio::test]
async fn standing_lists_active_employee_roles_and_grants_per_institution() {
    for d in dialects() {
        let db = db(&d).await;
        let s = &*db.store;
        let leader = person(s, "101001l1").await;
        let standing = s.staff_standing(leader).await.unwrap();
        assert_eq!(standing.len(), 1, "{d:?}");
        let mut roles = standing[0].roles.clone();
        roles.sort();
        assert_eq!(roles, vec![RoleKind::Teacher, RoleKind::Leader]);
        assert!(standing[0].granted.is_empty());
        // A pupil and a parent stand nowhere.
        for u in ["101001p1", "101001m1"] {
            assert!(s
                .staff_standing(person(s, u).await)
                .await
                .unwrap()
                .is_empty());
        }

        let inst = standing[0].institution_id;
        let vikar = person(s, "101001v1").await;
        let at = db.clock.now();
        s.grant_right(
            inst,
            vikar,
            "pupil_reset",
            Some(leader),
            "covers 1.A",
            at,
            NewEvent::new("t", "right.granted"),
        )
        .await
        .unwrap();
        let v = s.staff_standing(vikar).await.unwrap();
        assert_eq!(v[0].granted, vec!["pupil_reset".to_owned()], "{d:?}");
        assert_eq!(v[0].roles, vec![RoleKind::Substitute]);
        let e = s
            .institution_employees(inst, Some("101001v1"))
            .await
            .unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].granted, vec!["pupil_reset".to_owned()]);
        assert_eq!(s.institution_employees(inst, None).await.unwrap().len(), 3);

        assert!(s
            .revoke_right(
                inst,
                vikar,
                "pupil_reset",
                at,
                NewEvent::new("t", "right.revoked")
            )
            .await
            .unwrap());
        assert!(!s
            .revoke_right(
                inst,
                vikar,
                "pupil_reset",
                at,
                NewEvent::new("t", "right.revoked")
            )
            .await
            .unwrap());
        assert!(s.staff_standing(vikar).await.unwrap()[0].granted.is_empty());
        assert_eq!(events(&db, "right.granted").await, 1);
        assert_eq!(
            events(&db, "right.revoked").await,
            1,
            "nothing audited when nothing changed"
        );
    }
}

#[tokio::test]
async fn pupils_come_with_class_and_account_state_and_stay_in_their_institution() {
    for d in dialects() {
        let db = db(&d).await;
        let s = &*db.store;
        let a = institution_id(s, "101001t1", "101001").await;
        let b = institution_id(s, "202002t1", "202002").await;
        let mut pupils = s.institution_pupils(a, None).await.unwrap();
        pupils.sort_by(|x, y| x.user_id.cmp(&y.user_id));
        assert_eq!(pupils.len(), 2, "{d:?}");
        assert_eq!(pupils[0].user_id, "101001p1");
        assert_eq!(pupils[0].class.as_deref(), Some("1.A"));
        assert_eq!(pupils[0].class_id.as_deref(), Some("1A"));
        assert!(!pupils[0].has_password && !pupils[0].has_card && pupils[0].locked_until.is_none());
        // A protected pupil is listed under the alias name.
        assert_eq!(
            (
                pupils[1].given_name.as_str(),
                pupils[1].family_name.as_str()
            ),
            ("Anders", "And")
        );
        assert!(s
            .institution_pupils(b, Some("101001p1"))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            s.institution_pupils(a, Some("101001p1"))
                .await
                .unwrap()
                .len(),
            1
        );
        // Employees are not pupils.
        assert!(s
            .institution_pupils(a, Some("101001t1"))
            .await
            .unwrap()
            .is_empty());
        // Members: roles and contact relations there, nobody else.
        for u in ["101001p1", "101001t1", "101001m1"] {
            let id = person(s, u).await;
            assert_eq!(s.institution_member(a, u).await.unwrap(), Some(id), "{u}");
            assert_eq!(s.institution_member(b, u).await.unwrap(), None, "{u}");
        }
        assert_eq!(s.institution_member(a, "nobody").await.unwrap(), None);
    }
}

#[tokio::test]
async fn a_card_is_found_by_its_hash_until_replaced_or_revoked() {
    for d in dialects() {
        let db = db(&d).await;
        let s = &*db.store;
        let p1 = person(s, "101001p1").await;
        let p2 = person(s, "101001p2").await;
        let at = db.clock.now();
        let ev = |n| vec![NewEvent::new("t", "card.issued"); n];
        s.issue_cards(&[(p1, [1; 32]), (p2, [2; 32])], "person:1", at, ev(2))
            .await
            .unwrap();
        assert_eq!(
            s.account_by_card(&[1; 32])
                .await
                .unwrap()
                .unwrap()
                .person_id,
            p1,
            "{d:?}"
        );
        assert_eq!(
            s.account_by_card(&[2; 32])
                .await
                .unwrap()
                .unwrap()
                .person_id,
            p2
        );
        s.issue_cards(&[(p1, [3; 32])], "person:1", at, ev(1))
            .await
            .unwrap();
        assert!(
            s.account_by_card(&[1; 32]).await.unwrap().is_none(),
            "re-issue replaces"
        );
        assert_eq!(
            s.account_by_card(&[3; 32])
                .await
                .unwrap()
                .unwrap()
                .person_id,
            p1
        );
        let a = institution_id(s, "101001t1", "101001").await;
        assert!(s.institution_pupils(a, Some("101001p1")).await.unwrap()[0].has_card);
        assert!(s
            .revoke_card(p1, at, NewEvent::new("t", "card.revoked"))
            .await
            .unwrap());
        assert!(!s
            .revoke_card(p1, at, NewEvent::new("t", "card.revoked"))
            .await
            .unwrap());
        assert!(s.account_by_card(&[3; 32]).await.unwrap().is_none());
        assert_eq!(events(&db, "card.issued").await, 3);
        assert_eq!(events(&db, "card.revoked").await, 1);
    }
}
