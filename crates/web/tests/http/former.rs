//! The "former persons" page: an admin sees the institution's inactive
//! persons (not archived ones), audited; everyone else gets 404.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tilgang_core::audit::actions;
use tilgang_core::lifecycle::{self, Job, Rules};
use tilgang_core::Clock;
use tilgang_testkit::{dialects, staff_roster, TestServer, Visitor, PASSWORD};

#[tokio::test]
async fn an_admin_sees_former_persons_until_they_are_archived() {
    for d in dialects() {
        let s = TestServer::start(&d).await;
        let doc = staff_roster("101001", &["Leder"]);
        s.db.import_json(&doc).await;
        for u in ["101001t1", "101001l1"] {
            s.set_password(u).await;
        }
        // The pupil p1 leaves the school.
        let mut left = doc.clone();
        left["persons"]
            .as_array_mut()
            .unwrap()
            .retain(|p| p["user_id"] != "101001p1");
        for g in left["groups"].as_array_mut().unwrap() {
            g["members"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m != "101001p1");
        }
        left["contacts"]
            .as_array_mut()
            .unwrap()
            .retain(|c| c["pupil"] != "101001p1");
        s.db.clock.advance(time::Duration::days(2));
        s.db.import_json(&left).await;

        let admin = Visitor::new(&s);
        assert_eq!(admin.login("101001l1", PASSWORD).await.status(), 303);
        let staff = admin.get("/staff/101001").await.text().await.unwrap();
        assert!(staff.contains("id=\"former-link\""), "{d:?}");
        let page = admin.get("/staff/101001/former").await;
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("Tidligere personer"), "{d:?}");
        assert!(html.contains("id=\"former-101001p1\""), "{d:?}: {html}");
        assert!(html.contains("Alma Jensen") && html.contains("Elev"));
        let since = s.db.clock.now().date().to_string();
        assert!(html.contains(&since), "inactive since today: {html}");
        assert!(
            !html.contains("former-101001t1"),
            "active staff are not former"
        );
        let en = admin
            .get("/staff/101001/former?lang=en")
            .await
            .text()
            .await
            .unwrap();
        assert!(en.contains("Former persons") && en.contains("Inactive since"));

        // Viewing is audited, naming the persons shown.
        let p1 = s.db.store.person_id("101001p1").await.unwrap().unwrap();
        let events: Vec<_> =
            s.db.store
                .audit_page(0, 100_000)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.action == actions::STAFF_FORMER_LISTED)
                .collect();
        assert_eq!(events.len(), 2, "{d:?}");
        // The pupil, and the mother whose only relation was to them.
        let m1 = s.db.store.person_id("101001m1").await.unwrap().unwrap();
        assert_eq!(events[0].subjects, format!("[{p1},{m1}]"));
        assert_eq!(events[0].institution.as_deref(), Some("101001"));

        // A teacher without admin rights gets 404.
        let teacher = Visitor::new(&s);
        assert_eq!(teacher.login("101001t1", PASSWORD).await.status(), 303);
        assert_eq!(teacher.get("/staff/101001/former").await.status(), 404);

        // Archived after three years: operators only.
        s.db.clock.advance(time::Duration::days(3 * 366));
        lifecycle::run(
            &*s.db.store,
            &*s.db.clock,
            &Rules::default(),
            Job::ArchiveInactive,
            false,
            "test",
            "holder",
            0,
        )
        .await
        .unwrap()
        .unwrap();
        let admin = Visitor::new(&s);
        assert_eq!(admin.login("101001l1", PASSWORD).await.status(), 303);
        let html = admin
            .get("/staff/101001/former")
            .await
            .text()
            .await
            .unwrap();
        assert!(html.contains("id=\"no-former\""), "{d:?}: {html}");
    }
}
