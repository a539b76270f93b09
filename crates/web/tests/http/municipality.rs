//! Municipality admins, on both dialects: an operator grants the right
//! (audited, with its reason); the holder is an admin of every institution
//! of the municipality, decides data access requests for all of them at
//! once (each institution's decision audited) and searches their events
//! (the search audited); nothing of another municipality is ever shown,
//! and nobody without the right gets anything but 404.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::audit::{audited, logged_in};
use crate::oidc::{location, service};
use crate::sharing_pages::status_of;
use tilgang_core::audit::{actions, Event, NewEvent};
use tilgang_core::identity::rights::{self, GrantOutcome, MUNICIPALITY_ADMIN};
use tilgang_core::oidc::Package;
use tilgang_core::sharing::agreement::{
    self, Addressee, Delivery, Filters, RequestSpec, RequestStatus,
};
use tilgang_core::Clock;
use tilgang_testkit::{dialects, staff_roster, Dialect, TestServer, Visitor};

/// The substitute at 751001: an employee with no right of their own.
const MUNI: &str = "751001v1";
const PAGE: &str = "/municipality/751";

fn spec(package: Package) -> RequestSpec {
    RequestSpec {
        purpose: "Reading exercises in class".into(),
        package,
        delivery: Delivery::Lookup,
        filters: Filters::default(),
        sub_processors: vec![],
        locations: vec!["DK".into()],
        retention: "6 months".into(),
        dpa_reference: "DBA-2026-17".into(),
    }
}

/// 751001 and 751002 in municipality 751, 101001 in 101; a service `app`.
async fn setup(d: &Dialect) -> TestServer {
    let s = TestServer::start(d).await;
    for (number, code) in [("751001", "751"), ("751002", "751"), ("101001", "101")] {
        let mut doc = staff_roster(number, &["Leder"]);
        doc["institution"]["municipality_code"] = code.into();
        s.db.import_json(&doc).await;
    }
    for u in [MUNI, "101001l1", "751001p1", "751002p1", "101001p1"] {
        s.set_password(u).await;
    }
    let at = s.db.clock.now();
    s.db.store
        .add_service(
            &service("app", Package::Medium),
            at,
            NewEvent::new("test", "oidc.service.added"),
        )
        .await
        .unwrap();
    s
}

async fn grant(s: &TestServer, user: &str, code: &str, reason: &str, on: bool) -> GrantOutcome {
    rights::operator_set_municipality_right(
        &*s.db.store,
        &*s.db.clock,
        MUNICIPALITY_ADMIN,
        code,
        user,
        reason,
        on,
        "cli",
    )
    .await
    .unwrap()
}

/// The provider asks every institution of `to`; returns the request ids.
async fn ask(s: &TestServer, to: Addressee, package: Package) -> Vec<i64> {
    let (store, clock) = (&*s.db.store, &*s.db.clock);
    agreement::request(store, clock, "provider:1", "app", &spec(package), &to)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, id)| id)
        .collect()
}

/// The request ids the page's first decision form carries.
fn shown_requests(html: &str) -> String {
    html.split("name=\"requests\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

async fn person(s: &TestServer, user: &str) -> i64 {
    s.db.store.account(user).await.unwrap().unwrap().person_id
}

#[tokio::test]
async fn only_an_operator_grant_makes_a_municipality_admin_and_it_is_audited() {
    for d in dialects() {
        let s = setup(&d).await;
        let v = logged_in(&s, MUNI).await;
        assert_eq!(v.get(PAGE).await.status(), 404, "{d:?}: deny by default");
        assert_eq!(v.get("/staff/751002/sharing").await.status(), 404);

        assert_eq!(
            grant(&s, MUNI, "751", " ", true).await,
            GrantOutcome::NoReason
        );
        // Pupils never become admins; nor does anyone of an unknown code.
        assert_eq!(
            grant(&s, "751001p1", "751", "x", true).await,
            GrantOutcome::NotFound
        );
        let unknown = rights::operator_set_municipality_right(
            &*s.db.store,
            &*s.db.clock,
            MUNICIPALITY_ADMIN,
            "999",
            MUNI,
            "x",
            true,
            "cli",
        )
        .await;
        assert!(unknown.is_err(), "{d:?}");
        let wrong = rights::operator_set_municipality_right(
            &*s.db.store,
            &*s.db.clock,
            rights::PUPIL_RESET,
            "751",
            MUNI,
            "x",
            true,
            "cli",
        )
        .await;
        assert_eq!(wrong.unwrap_err().code(), "STAFF_UNKNOWN_RIGHT");

        let reason = "skoleafdelingen, aftale om dataadgang";
        assert_eq!(
            grant(&s, MUNI, "751", reason, true).await,
            GrantOutcome::Done
        );
        let granted = audited(&s, actions::RIGHT_GRANTED).await;
        let muni = person(&s, MUNI).await;
        let ev = granted.last().unwrap();
        assert_eq!(ev.actor, "cli", "{d:?}");
        assert_eq!(ev.subjects, format!("[{muni}]"));
        assert!(ev.details.contains("\"municipality\":\"751\""), "{ev:?}");
        assert!(ev.details.contains(reason), "{ev:?}");

        // An admin of every institution of 751 (the existing pages open),
        // of none elsewhere.
        assert_eq!(v.get(PAGE).await.status(), 200, "{d:?}");
        for p in [
            "/staff/751001/sharing",
            "/staff/751002/sharing",
            "/staff/751002/audit",
        ] {
            assert_eq!(v.get(p).await.status(), 200, "{d:?}: {p}");
        }
        assert_eq!(v.get("/staff/101001/sharing").await.status(), 404);
        assert_eq!(v.get("/municipality/101").await.status(), 404);
        let index = v.get("/staff").await.text().await.unwrap();
        assert!(index.contains("id=\"municipality-751\""), "{d:?}: {index}");
        assert!(!index.contains("101001"), "{d:?}: {index}");

        // Revoked: closed again, on the next request.
        assert_eq!(
            grant(&s, MUNI, "751", "ny stilling", false).await,
            GrantOutcome::Done
        );
        assert_eq!(
            grant(&s, MUNI, "751", "", false).await,
            GrantOutcome::Unchanged
        );
        assert_eq!(audited(&s, actions::RIGHT_REVOKED).await.len(), 1);
        assert_eq!(v.get(PAGE).await.status(), 404, "{d:?}");
        assert_eq!(v.get("/staff/751002/sharing").await.status(), 404);
    }
}

#[tokio::test]
async fn a_municipality_admin_decides_for_all_their_institutions_and_no_other() {
    for d in dialects() {
        let s = setup(&d).await;
        let ours = ask(&s, Addressee::Municipality("751".into()), Package::Small).await;
        let theirs = ask(&s, Addressee::Institution("101001".into()), Package::Small).await;
        assert_eq!(ours.len(), 2);
        grant(&s, MUNI, "751", "kommunens administrator", true).await;
        let v = logged_in(&s, MUNI).await;

        let index = v.get("/staff").await.text().await.unwrap();
        assert!(
            index.contains("id=\"municipality-badge-751\""),
            "{d:?}: {index}"
        );
        let html = v.get(PAGE).await.text().await.unwrap();
        assert!(html.contains("id=\"pending-app\""), "{d:?}: {html}");
        assert!(html.contains("<span class=\"count\">2</span>"), "{html}");
        assert!(html.contains("Skole 751001") && html.contains("Skole 751002"));
        assert!(
            !html.contains("101001"),
            "{d:?}: another municipality shown"
        );

        // Without the page's CSRF token: refused, nothing decided.
        let res = v
            .post(
                "/municipality/751/sharing/app/approve",
                &[("requests", "1,2")],
            )
            .await;
        assert_eq!(res.status(), 403);
        assert_eq!(status_of(&s, ours[0]).await, RequestStatus::Pending);
        // Another municipality's request is not theirs to decide, whatever
        // the form says.
        let forged = format!("{},{}", ours[0], theirs[0]);
        let res = v
            .submit(
                PAGE,
                "/municipality/101/sharing/app/approve",
                &[("requests", forged.as_str())],
            )
            .await;
        assert_eq!(res.status(), 404, "{d:?}");

        let seen = shown_requests(&html);
        let forged = format!("{seen},{}", theirs[0]);
        let res = v
            .submit(
                PAGE,
                "/municipality/751/sharing/app/approve",
                &[("requests", forged.as_str())],
            )
            .await;
        assert_eq!(res.status(), 303);
        assert!(location(&res).contains("done=approved&n=2"), "{d:?}");
        for id in &ours {
            assert_eq!(status_of(&s, *id).await, RequestStatus::Approved, "{d:?}");
        }
        assert_eq!(status_of(&s, theirs[0]).await, RequestStatus::Pending);
        let muni = format!("person:{}", person(&s, MUNI).await);
        let approved = audited(&s, actions::SHARING_APPROVED).await;
        let mut at: Vec<_> = approved
            .iter()
            .filter(|e| e.actor == muni)
            .filter_map(|e| e.institution.clone())
            .collect();
        at.sort();
        assert_eq!(at, ["751001", "751002"], "{d:?}: one event per institution");
        let html = v.get(PAGE).await.text().await.unwrap();
        assert!(html.contains("id=\"no-pending\""), "{d:?}");

        // A raised request: rejected for all, with a reason only.
        let raised = ask(&s, Addressee::Municipality("751".into()), Package::Medium).await;
        let res = v
            .submit(
                PAGE,
                "/municipality/751/sharing/app/reject",
                &[("reason", " ")],
            )
            .await;
        assert!(location(&res).contains("done=no_reason"), "{d:?}");
        let html = v.get(PAGE).await.text().await.unwrap();
        let seen = shown_requests(&html);
        let res = v
            .submit(
                PAGE,
                "/municipality/751/sharing/app/reject",
                &[("requests", seen.as_str()), ("reason", "Not now")],
            )
            .await;
        assert!(location(&res).contains("done=rejected&n=2"), "{d:?}");
        for id in &raised {
            assert_eq!(status_of(&s, *id).await, RequestStatus::Rejected, "{d:?}");
        }
        // The approvals in force stay.
        assert!(agreement::current_approval(&*s.db.store, "app", "751002")
            .await
            .unwrap()
            .is_some());
        let html = v.get("/municipality/751?lang=en&done=none&n=0").await;
        assert!(html.text().await.unwrap().contains("nothing to decide"));

        // An institution admin elsewhere gets nothing here.
        let other = logged_in(&s, "101001l1").await;
        assert_eq!(other.get(PAGE).await.status(), 404, "{d:?}");
        let res = other
            .submit(
                "/staff/101001/sharing",
                "/municipality/751/sharing/app/approve",
                &[],
            )
            .await;
        assert_eq!(res.status(), 404);
        // Signed out: to the login page.
        let res = Visitor::new(&s).get(PAGE).await;
        assert_eq!(location(&res), "/login");
    }
}

#[tokio::test]
async fn a_municipality_admin_searches_their_institutions_events_only_and_is_audited() {
    for d in dialects() {
        let s = setup(&d).await;
        for u in ["751001p1", "751002p1", "101001p1"] {
            logged_in(&s, u).await;
        }
        grant(&s, MUNI, "751", "kommunens administrator", true).await;
        let v = logged_in(&s, MUNI).await;
        let page = v.get(PAGE).await.text().await.unwrap();
        assert!(page.contains("id=\"municipality-audit-link\""), "{d:?}");

        let ids = [
            person(&s, "751001p1").await,
            person(&s, "751002p1").await,
            person(&s, "101001p1").await,
        ];
        let html = v
            .get("/municipality/751/audit?action=login.succeeded")
            .await
            .text()
            .await
            .unwrap();
        assert!(html.contains("<table id=\"events\">"), "{d:?}: {html}");
        assert!(html.contains(&format!("[{}]", ids[0])), "{d:?}: {html}");
        assert!(html.contains(&format!("[{}]", ids[1])), "{d:?}");
        assert!(!html.contains(&format!("[{}]", ids[2])), "{d:?}: 101 shown");
        assert!(html.contains("<select id=\"institution\""), "{d:?}");

        // Narrowed to one institution of theirs; another's is not there.
        let html = v
            .get("/municipality/751/audit?action=login.succeeded&institution=751002")
            .await
            .text()
            .await
            .unwrap();
        assert!(html.contains(&format!("[{}]", ids[1])), "{d:?}");
        assert!(!html.contains(&format!("[{}]", ids[0])), "{d:?}: {html}");
        let res = v.get("/municipality/751/audit?institution=101001").await;
        assert_eq!(res.status(), 404, "{d:?}");
        // Searching for another municipality's pupil finds nothing.
        let html = v
            .get("/municipality/751/audit?person=101001p1")
            .await
            .text()
            .await
            .unwrap();
        assert!(html.contains("id=\"no-events\""), "{d:?}: {html}");

        // Every search was audited, as the admin, naming the municipality.
        let muni = format!("person:{}", person(&s, MUNI).await);
        let searches: Vec<Event> = audited(&s, actions::AUDIT_SEARCH)
            .await
            .into_iter()
            .filter(|e| e.actor == muni)
            .collect();
        assert_eq!(searches.len(), 3, "{d:?}: {searches:?}");
        assert!(searches
            .iter()
            .all(|e| e.details.contains("\"municipality\":\"751\"")));
        assert_eq!(searches[1].institution.as_deref(), Some("751002"));
        assert!(
            searches[0].details.contains("[\"751001\",\"751002\"]"),
            "{:?}",
            searches[0]
        );

        // Deny by default: nobody else searches here.
        let other = logged_in(&s, "101001l1").await;
        assert_eq!(
            other.get("/municipality/751/audit").await.status(),
            404,
            "{d:?}"
        );
    }
}
