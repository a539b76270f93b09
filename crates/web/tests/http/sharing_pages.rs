//! The institution admin's sharing pages, on both dialects: a pending
//! request is shown with its sub-processors and what changed from the
//! approval in force; approving and revoking through the page steer the
//! claims of an OIDC login at once; nobody but the institution's own admin
//! sees or decides anything, and a form without its CSRF token is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::oidc::{code_for, exchange, id_token_claims, location, server, service, TEACHER};
use serde_json::Value;
use tilgang_core::identity::rights;
use tilgang_core::oidc::Package;
use tilgang_core::sharing::agreement::{
    self, Addressee, Delivery, Filters, RequestSpec, RequestStatus, SubProcessor,
};
use tilgang_core::Clock;
use tilgang_testkit::dialects;
use tilgang_testkit::{staff_roster, TestServer, Visitor, PASSWORD};

const PAGE: &str = "/staff/101001/sharing";

fn sub(name: &str, country: &str) -> SubProcessor {
    SubProcessor {
        name: name.into(),
        cvr: "12345678".into(),
        address: "Havnegade 1, 1058 København K".into(),
        task: "Hosting".into(),
        data: "Names and classes".into(),
        country: country.into(),
        protection: "Encrypted at rest".into(),
    }
}

fn spec(package: Package, subs: Vec<SubProcessor>, locations: &[&str]) -> RequestSpec {
    RequestSpec {
        purpose: "Reading exercises in class".into(),
        package,
        delivery: Delivery::Lookup,
        filters: Filters::default(),
        sub_processors: subs,
        locations: locations.iter().map(|l| (*l).to_owned()).collect(),
        retention: "Deleted at most 6 months after the roster stops delivering a user".into(),
        dpa_reference: "DBA-2026-17".into(),
    }
}

/// The OIDC test server, with leaders (admins) at 101001 and 202002, and a
/// service `app` registered for the medium package but never approved.
async fn setup(d: &tilgang_testkit::Dialect) -> TestServer {
    let s = server(d).await;
    s.db.import_json(&staff_roster("101001", &["Leder"])).await;
    s.db.import_json(&staff_roster("202002", &["Leder"])).await;
    for u in ["101001l1", "202002l1"] {
        s.set_password(u).await;
    }
    let at = s.db.clock.now();
    s.db.store
        .add_service(
            &service("app", Package::Medium),
            at,
            tilgang_core::audit::NewEvent::new("test", "oidc.service.added"),
        )
        .await
        .unwrap();
    s
}

/// The provider sends a request to 101001; returns its id.
async fn ask(s: &TestServer, spec: &RequestSpec) -> i64 {
    let (store, clock) = (&*s.db.store, &*s.db.clock);
    let to = Addressee::Institution("101001".into());
    agreement::request(store, clock, "provider:1", "app", spec, &to)
        .await
        .unwrap()[0]
        .1
}

async fn logged_in(s: &TestServer, user: &str) -> Visitor {
    let v = Visitor::new(s);
    assert_eq!(v.login(user, PASSWORD).await.status(), 303, "{user}");
    v
}

/// The ID token claims of a fresh login of the teacher to `app`.
async fn claims(s: &TestServer) -> Value {
    let v = Visitor::new(s);
    let code = code_for(s, &v, "app", "").await;
    let body = exchange(s, "app", &code, None).await.1;
    id_token_claims(body["id_token"].as_str().unwrap())
}

pub(crate) async fn status_of(s: &TestServer, id: i64) -> RequestStatus {
    s.db.store.request(id).await.unwrap().unwrap().status
}

#[tokio::test]
async fn an_admin_approves_a_request_sees_a_change_marked_and_revokes_and_claims_follow() {
    for d in dialects() {
        let s = setup(&d).await;
        assert!(
            claims(&s).await.get("name").is_none(),
            "{d:?}: never approved"
        );
        let first = ask(
            &s,
            &spec(
                Package::Small,
                vec![sub("Cloudco", "DK"), sub("Mailco", "DK")],
                &["DK"],
            ),
        )
        .await;
        let admin = logged_in(&s, "101001l1").await;
        let index = admin.get("/staff").await.text().await.unwrap();
        assert!(
            index.contains("id=\"sharing-badge-101001\""),
            "{d:?}: {index}"
        );
        assert!(index.contains("1 venter på godkendelse"), "{index}");

        let html = admin.get(PAGE).await.text().await.unwrap();
        assert!(html.contains("id=\"pending-app\""), "{d:?}: {html}");
        assert!(html.contains("Cloudco (CVR 12345678") && html.contains("Mailco"));
        assert!(html.contains("DBA-2026-17") && html.contains("Reading exercises in class"));
        assert!(html.contains("<label for=\"reject-reason-app\">"));

        let res = admin
            .submit(
                PAGE,
                "/staff/101001/sharing/app/approve",
                &[("request", &first.to_string())],
            )
            .await;
        assert_eq!(res.status(), 303, "{d:?}");
        assert!(location(&res).contains("done=approved"));
        assert_eq!(status_of(&s, first).await, RequestStatus::Approved);
        let c = claims(&s).await;
        assert_eq!(c["name"], "Karen Nielsen", "{d:?}: {c}");
        assert!(c.get("email").is_none(), "small has no e-mail: {c}");

        // The provider raises the package and adds a sub-processor and a
        // location: the admin sees exactly that marked, in words.
        let second = ask(
            &s,
            &spec(
                Package::Medium,
                vec![
                    sub("Cloudco", "DK"),
                    sub("Mailco", "DK"),
                    sub("Backupco", "IE"),
                ],
                &["DK", "IE"],
            ),
        )
        .await;
        let html = admin
            .get(&format!("{PAGE}?lang=en"))
            .await
            .text()
            .await
            .unwrap();
        let pending = html.split("id=\"pending-app\"").nth(1).unwrap();
        assert!(
            pending.contains("<mark class=\"change\">New: medium</mark>"),
            "{d:?}: {pending}"
        );
        assert!(
            pending.contains("<mark class=\"change\">New: Backupco (CVR"),
            "{pending}"
        );
        assert!(
            pending.contains("<mark class=\"change\">New: IE</mark>"),
            "{pending}"
        );
        assert!(!pending.contains("New: Cloudco"), "unchanged is not marked");
        assert!(pending.contains("(changed)"));
        // Until the change is approved, the old approval holds.
        assert!(claims(&s).await.get("email").is_none(), "{d:?}");

        let res = admin
            .submit(
                PAGE,
                "/staff/101001/sharing/app/approve",
                &[("request", &second.to_string())],
            )
            .await;
        assert_eq!(res.status(), 303);
        assert_eq!(claims(&s).await["email"], "kn@skole.dk", "{d:?}");

        // A revocation needs a reason, and then acts at once.
        let res = admin
            .submit(PAGE, "/staff/101001/sharing/app/revoke", &[("reason", " ")])
            .await;
        assert!(location(&res).contains("done=no_reason"), "{d:?}");
        assert!(claims(&s).await.get("name").is_some());
        let res = admin
            .submit(
                PAGE,
                "/staff/101001/sharing/app/revoke",
                &[("reason", "No longer used")],
            )
            .await;
        assert_eq!(res.status(), 303);
        assert!(location(&res).contains("done=revoked"));
        let c = claims(&s).await;
        assert!(
            c.get("name").is_none() && c.get("email").is_none(),
            "{d:?}: {c}"
        );

        // The history shows both versions and every decision.
        let h = admin
            .get("/staff/101001/sharing/app?lang=en")
            .await
            .text()
            .await
            .unwrap();
        assert!(
            h.contains("id=\"version-1\"") && h.contains("id=\"version-2\""),
            "{d:?}: {h}"
        );
        assert!(h.contains("No longer used"), "{h}");
        assert!(
            h.contains("sharing.approved") || h.contains("approved"),
            "{h}"
        );
    }
}

#[tokio::test]
async fn only_the_institutions_own_admin_sees_or_decides_and_csrf_is_checked() {
    for d in dialects() {
        let s = setup(&d).await;
        let id = ask(
            &s,
            &spec(Package::Small, vec![sub("Cloudco", "DK")], &["DK"]),
        )
        .await;
        let approve = "/staff/101001/sharing/app/approve";
        let form = [("request", id.to_string())];
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();

        // A teacher who is no admin: nothing there.
        let teacher = logged_in(&s, TEACHER).await;
        assert_eq!(teacher.get(PAGE).await.status(), 404, "{d:?}");
        assert_eq!(teacher.get("/staff/101001/sharing/app").await.status(), 404);
        assert_eq!(
            teacher
                .submit("/staff/101001", approve, &form)
                .await
                .status(),
            404
        );

        // Another institution's admin: neither the page nor the decision,
        // not even through their own institution's address.
        let other = logged_in(&s, "202002l1").await;
        assert_eq!(other.get(PAGE).await.status(), 404, "{d:?}");
        let theirs = other
            .get("/staff/202002/sharing")
            .await
            .text()
            .await
            .unwrap();
        assert!(!theirs.contains("pending-app"), "{d:?}");
        let res = other
            .submit("/staff/202002", "/staff/202002/sharing/app/approve", &form)
            .await;
        assert_eq!(res.status(), 404, "{d:?}");
        assert_eq!(
            other
                .submit("/staff/202002/sharing", approve, &form)
                .await
                .status(),
            404
        );
        assert_eq!(status_of(&s, id).await, RequestStatus::Pending);

        // The admin's own form without (or with a wrong) CSRF token.
        let admin = logged_in(&s, "101001l1").await;
        assert_eq!(admin.post(approve, &form).await.status(), 403, "{d:?}");
        let mut wrong = form.clone();
        wrong.push(("csrf", "not-the-token"));
        assert_eq!(admin.post(approve, &wrong).await.status(), 403);
        assert_eq!(status_of(&s, id).await, RequestStatus::Pending);

        // A rejection needs a reason; blocking and unblocking work too.
        let res = admin
            .submit(
                PAGE,
                "/staff/101001/sharing/app/reject",
                &[("request", &id.to_string()), ("reason", "")],
            )
            .await;
        assert!(location(&res).contains("done=no_reason"), "{d:?}");
        assert_eq!(status_of(&s, id).await, RequestStatus::Pending);
        let res = admin
            .submit(
                PAGE,
                "/staff/101001/sharing/app/reject",
                &[
                    ("request", &id.to_string()),
                    ("reason", "Not for our pupils"),
                ],
            )
            .await;
        assert!(location(&res).contains("done=rejected"));
        assert_eq!(status_of(&s, id).await, RequestStatus::Rejected);
        let res = admin
            .submit(
                PAGE,
                "/staff/101001/sharing/app/block",
                &[("reason", "Unsafe")],
            )
            .await;
        assert!(location(&res).contains("done=blocked"), "{d:?}");
        let html = admin.get(PAGE).await.text().await.unwrap();
        assert!(
            html.contains("id=\"blocked-app\"") && html.contains("Unsafe"),
            "{html}"
        );
        let res = admin
            .submit(PAGE, "/staff/101001/sharing/app/unblock", &[])
            .await;
        assert!(location(&res).contains("done=unblocked"));
        assert!(s.db.store.block("app", "101001").await.unwrap().is_none());

        // The municipality names the teacher the school's admin: the page
        // opens to them (checked on every request), and closes again.
        let municipality = |grant: bool| {
            let s = &s;
            async move {
                let out = rights::operator_set_right(
                    &*s.db.store,
                    &*s.db.clock,
                    rights::INSTITUTION_ADMIN,
                    "101001",
                    TEACHER,
                    "skolesekretær",
                    grant,
                    "cli",
                )
                .await
                .unwrap();
                assert_eq!(out, rights::GrantOutcome::Done);
            }
        };
        municipality(true).await;
        assert_eq!(teacher.get(PAGE).await.status(), 200, "{d:?}");
        municipality(false).await;
        assert_eq!(teacher.get(PAGE).await.status(), 404, "{d:?}");
    }
}
