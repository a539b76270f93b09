//! Audit search for institution admins, and the events of logout, ended
//! sessions, throttling and key rotation, through the real server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tilgang_core::audit::{actions, Event};
use tilgang_core::Clock;
use tilgang_testkit::{
    dialects, small_roster, staff_roster, Dialect, TestServer, Visitor, PASSWORD,
};

pub(crate) async fn audited(s: &TestServer, action: &str) -> Vec<Event> {
    s.db.store
        .audit_page(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action)
        .collect()
}

/// Institution 101001 with a leader l1 (an admin) and 202002 with one too.
async fn server(d: &Dialect) -> TestServer {
    let s = TestServer::start(d).await;
    s.db.import_json(&staff_roster("101001", &["Leder"])).await;
    s.db.import_json(&staff_roster("202002", &["Leder"])).await;
    for u in ["101001t1", "101001l1", "202002l1", "101001p1", "202002p1"] {
        s.set_password(u).await;
    }
    s
}

pub(crate) async fn logged_in(s: &TestServer, user: &str) -> Visitor {
    let v = Visitor::new(s);
    assert_eq!(v.login(user, PASSWORD).await.status(), 303, "{user}");
    v
}

#[tokio::test]
async fn an_admin_searches_their_institutions_events_and_never_anothers() {
    for d in dialects() {
        let s = server(&d).await;
        // Both pupils sign in: each login is about one institution's pupil.
        logged_in(&s, "101001p1").await;
        logged_in(&s, "202002p1").await;
        let admin = logged_in(&s, "101001l1").await;
        let staff = admin.get("/staff/101001").await.text().await.unwrap();
        assert!(staff.contains("id=\"audit-link\""), "{d:?}");

        let page = admin
            .get("/staff/101001/audit?person=101001p1&action=login.succeeded")
            .await;
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("<table id=\"events\">"), "{d:?}: {html}");
        assert!(html.contains("login.succeeded"));
        let theirs =
            s.db.store
                .account("202002p1")
                .await
                .unwrap()
                .unwrap()
                .person_id;
        // An unfiltered search shows no event about the other school's pupil.
        let html = admin.get("/staff/101001/audit").await.text().await.unwrap();
        assert!(!html.contains(&format!("[{theirs}]")), "{d:?}");
        // Searching for the other school's pupil finds nothing of theirs.
        let html = admin
            .get("/staff/101001/audit?person=202002p1&action=login.succeeded")
            .await
            .text()
            .await
            .unwrap();
        assert!(html.contains("id=\"no-events\""), "{d:?}: {html}");
        // And the other institution's page is not there at all.
        assert_eq!(admin.get("/staff/202002/audit").await.status(), 404);

        // Every search was audited, as the admin, for their institution.
        let searches = audited(&s, actions::AUDIT_SEARCH).await;
        assert_eq!(searches.len(), 3, "{d:?}: {searches:?}");
        let l1 =
            s.db.store
                .account("101001l1")
                .await
                .unwrap()
                .unwrap()
                .person_id;
        assert!(searches.iter().all(
            |e| e.actor == format!("person:{l1}") && e.institution.as_deref() == Some("101001")
        ));
    }
}

#[tokio::test]
async fn the_audit_page_is_danish_by_default_english_on_request_and_paginated() {
    for d in dialects() {
        let s = server(&d).await;
        for _ in 0..60 {
            logged_in(&s, "101001p1").await;
        }
        let admin = logged_in(&s, "101001l1").await;
        let da = admin
            .get("/staff/101001/audit?action=login.succeeded")
            .await
            .text()
            .await
            .unwrap();
        assert!(da.contains("Log over hændelser"), "{d:?}");
        let next = da
            .split("id=\"next-page\" href=\"")
            .nth(1)
            .expect("a next page")
            .split('"')
            .next()
            .unwrap()
            .replace("&amp;", "&")
            .replace("&#38;", "&");
        let older = admin.get(&next).await.text().await.unwrap();
        let rows = |h: &str| h.matches("<tr id=\"event-").count();
        assert_eq!(rows(&da), 50);
        assert!(rows(&older) >= 11, "{d:?}");
        assert!(!older.contains("id=\"next-page\""), "{next}: {older}");
        let en = admin
            .get("/staff/101001/audit?lang=en")
            .await
            .text()
            .await
            .unwrap();
        assert!(en.contains("Event log"));
    }
}

#[tokio::test]
async fn a_teacher_who_is_not_an_admin_gets_no_audit_page() {
    for d in dialects() {
        let s = server(&d).await;
        let t = logged_in(&s, "101001t1").await;
        assert_eq!(t.get("/staff/101001/audit").await.status(), 404, "{d:?}");
        let p = logged_in(&s, "101001p1").await;
        assert_eq!(p.get("/staff/101001/audit").await.status(), 404);
        let anonymous = Visitor::new(&s);
        assert_eq!(anonymous.get("/staff/101001/audit").await.status(), 303);
        assert!(
            audited(&s, actions::AUDIT_SEARCH).await.is_empty(),
            "no search ran"
        );
    }
}

#[tokio::test]
async fn logout_and_ending_another_session_are_audited() {
    for d in dialects() {
        let s = TestServer::start(&d).await;
        s.db.import_json(&small_roster("101001")).await;
        s.set_password("101001t1").await;
        let phone = logged_in(&s, "101001t1").await;
        let laptop = logged_in(&s, "101001t1").await;
        let account = laptop.get("/account").await.text().await.unwrap();
        let key = account
            .split("name=\"session\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let res = laptop
            .submit("/account", "/account/sessions/end", &[("session", &key)])
            .await;
        assert_eq!(res.status(), 303);
        let ended = audited(&s, actions::SESSION_ENDED).await;
        assert_eq!(ended.len(), 1, "{d:?}");
        let t1 =
            s.db.store
                .account("101001t1")
                .await
                .unwrap()
                .unwrap()
                .person_id;
        assert_eq!(ended[0].subjects, format!("[{t1}]"));
        assert_eq!(
            phone.get("/account").await.status(),
            303,
            "the phone is signed out"
        );

        assert_eq!(
            laptop.submit("/account", "/logout", &[]).await.status(),
            303
        );
        let out = audited(&s, actions::LOGOUT).await;
        assert_eq!(out.len(), 1, "{d:?}");
        assert_eq!(out[0].actor, format!("person:{t1}"));
    }
}

#[tokio::test]
async fn too_many_logins_from_one_address_are_throttled_and_audited() {
    for d in dialects() {
        let cfg = tilgang_core::identity::login::LoginConfig {
            per_address_limit: 2,
            ..Default::default()
        };
        let s = TestServer::start_with(&d, cfg).await;
        s.db.import_json(&small_roster("101001")).await;
        let v = Visitor::new(&s);
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(v.login("101001t1", "wrong").await.status().as_u16());
        }
        assert_eq!(statuses.last(), Some(&429), "{d:?}: {statuses:?}");
        let throttled = audited(&s, actions::LOGIN_THROTTLED).await;
        assert!(!throttled.is_empty(), "{d:?}");
        assert!(throttled[0].details.contains("address"));
        let _ = s.db.clock.now();
    }
}
