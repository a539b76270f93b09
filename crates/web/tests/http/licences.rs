//! The institution admin's licence page, on both dialects: granting to a
//! group on the page lets its members log in to a service that needs a
//! licence, and withdrawing stops them at once; a CSV file with any bad
//! line grants nothing and names each problem's line and field; targets
//! must belong to the institution; nobody but its admin sees or changes
//! anything, and every form needs the session's CSRF token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::oidc::{location, server};
use crate::sharing::{approve, login_to, require_licence};
use crate::staff::{audited, logged_in, person};
use tilgang_core::audit::actions;
use tilgang_core::oidc::Package;
use tilgang_core::sharing::licence::{self, Grantor, LicenceScope, NewLicence};
use tilgang_core::Clock;
use tilgang_testkit::dialects;
use tilgang_testkit::{csrf_of, staff_roster, TestServer, Visitor};

const PAGE: &str = "/staff/101001/licences";
const ADMIN: &str = "101001l1";

/// The OIDC test server with leaders at 101001 and 202002, and `rp`
/// needing a licence and approved (small) at 101001.
async fn setup(d: &tilgang_testkit::Dialect) -> TestServer {
    let s = server(d).await;
    s.db.import_json(&staff_roster("101001", &["Leder"])).await;
    s.db.import_json(&staff_roster("202002", &["Leder"])).await;
    for u in [ADMIN, "202002l1"] {
        s.set_password(u).await;
    }
    require_licence(&s, "rp").await;
    approve(&s, "rp", "101001", Package::Small).await;
    s
}

fn today(s: &TestServer) -> String {
    s.db.clock.now().date().to_string()
}

#[tokio::test]
async fn an_admin_grants_a_group_licence_and_withdraws_it_and_the_login_follows() {
    for d in dialects() {
        let s = setup(&d).await;
        let admin = logged_in(&s, ADMIN).await;
        let staff = admin.get("/staff/101001").await.text().await.unwrap();
        assert!(
            staff.contains("id=\"licences-link\" href=\"/staff/101001/licences?lang=da\""),
            "{d:?}: {staff}"
        );
        let html = admin.get(PAGE).await.text().await.unwrap();
        assert!(html.contains("id=\"no-licences\""), "{d:?}: {html}");
        assert!(
            html.contains("<option value=\"rp\">Service rp</option>"),
            "{html}"
        );
        assert!(html.contains("<option value=\"1A\">1.A</option>"), "{html}");
        assert_eq!(
            login_to(&s, &Visitor::new(&s), "rp", "en").await.status(),
            403
        );

        let res = admin
            .submit(
                PAGE,
                PAGE,
                &[
                    ("service", "rp"),
                    ("scope", "group"),
                    ("group", "1A"),
                    ("from", &today(&s)),
                    ("to", ""),
                ],
            )
            .await;
        assert_eq!(res.status(), 303, "{d:?}");
        assert!(location(&res).contains("done=granted"));
        let res = login_to(&s, &Visitor::new(&s), "rp", "en").await;
        assert_eq!(res.status(), 303, "{d:?}: a member of 1.A is licensed");
        let granted = audited(&s, actions::LICENCE_GRANTED).await;
        assert_eq!(granted.len(), 1, "{d:?}");
        assert_eq!(
            granted[0].actor,
            format!("person:{}", person(&s, ADMIN).await)
        );
        assert_eq!(granted[0].institution.as_deref(), Some("101001"));
        assert!(
            granted[0].details.contains("\"target\":\"1A\""),
            "{}",
            granted[0].details
        );

        let html = admin
            .get(&format!("{PAGE}?lang=en"))
            .await
            .text()
            .await
            .unwrap();
        let id = s.db.store.licences(None, Some("101001")).await.unwrap()[0].id;
        let row = html.split(&format!("id=\"licence-{id}\"")).nth(1).unwrap();
        assert!(
            row.contains("1.A (1A)") && row.contains("in force"),
            "{d:?}: {row}"
        );
        assert!(
            row.contains("until withdrawn") && row.contains("A group"),
            "{row}"
        );

        // Withdrawing needs the CSRF token, then acts at once.
        let action = format!("/staff/101001/licences/{id}/withdraw");
        assert_eq!(admin.post(&action, &[]).await.status(), 403, "{d:?}");
        assert!(audited(&s, actions::LICENCE_WITHDRAWN).await.is_empty());
        let res = admin.submit(PAGE, &action, &[]).await;
        assert_eq!(res.status(), 303, "{d:?}");
        assert!(location(&res).contains("done=withdrawn"));
        assert_eq!(
            login_to(&s, &Visitor::new(&s), "rp", "en").await.status(),
            403
        );
        let withdrawn = audited(&s, actions::LICENCE_WITHDRAWN).await;
        assert_eq!(withdrawn.len(), 1, "{d:?}");
        assert!(withdrawn[0].actor.starts_with("person:"));
        // A second withdrawal finds no live licence.
        assert_eq!(admin.submit(PAGE, &action, &[]).await.status(), 404);
        let html = admin.get(PAGE).await.text().await.unwrap();
        assert!(html.contains("trukket tilbage"), "{d:?}");
    }
}

#[tokio::test]
async fn a_target_must_belong_to_the_institution_and_the_form_says_which_field() {
    for d in dialects() {
        let s = setup(&d).await;
        let admin = logged_in(&s, ADMIN).await;
        let from = today(&s);
        for (form, text) in [
            (
                vec![("scope", "person"), ("person", "202002t1")],
                "Gruppe eller person: der er ingen aktiv person med det brugernavn hos jer",
            ),
            (
                vec![("scope", "group"), ("group", "9Z")],
                "Gruppe eller person: der er ingen aktiv gruppe med det id hos jer",
            ),
            (
                vec![("scope", "person"), ("person", "")],
                "Gruppe eller person: vælg en gruppe eller skriv et brugernavn",
            ),
            (
                vec![("scope", "institution"), ("service", "other")],
                "Tjeneste: tjenesten har hverken en godkendelse eller minimalpakken hos jer",
            ),
        ] {
            let mut fields = vec![("from", from.as_str())];
            if !form.iter().any(|(k, _)| *k == "service") {
                fields.push(("service", "rp"));
            }
            fields.extend(form);
            let res = admin.submit(PAGE, PAGE, &fields).await;
            assert_eq!(res.status(), 422, "{d:?}: {fields:?}");
            let html = res.text().await.unwrap();
            assert!(html.contains(text), "{d:?}: {text} in {html}");
        }
        assert!(s.db.store.licences(None, None).await.unwrap().is_empty());

        // A person of the institution, named on the list (an audited read).
        let res = admin
            .submit(
                PAGE,
                PAGE,
                &[
                    ("service", "rp"),
                    ("scope", "person"),
                    ("person", "101001p1"),
                    ("from", &from),
                ],
            )
            .await;
        assert_eq!(res.status(), 303, "{d:?}");
        let html = admin.get(PAGE).await.text().await.unwrap();
        assert!(html.contains("Alma Jensen (101001p1)"), "{d:?}: {html}");
        let listed = audited(&s, actions::LICENCE_LISTED).await;
        assert_eq!(
            listed.last().unwrap().subjects,
            format!("[{}]", person(&s, "101001p1").await)
        );
        // Without the CSRF token nothing is granted.
        let res = admin
            .post(
                PAGE,
                &[("service", "rp"), ("scope", "institution"), ("from", &from)],
            )
            .await;
        assert_eq!(res.status(), 403, "{d:?}");
        assert_eq!(s.db.store.licences(None, None).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_csv_with_a_bad_line_grants_nothing_and_a_good_one_grants_every_line() {
    for d in dialects() {
        let s = setup(&d).await;
        let admin = logged_in(&s, ADMIN).await;
        let csrf = csrf_of(&admin.get(PAGE).await.text().await.unwrap()).unwrap();
        let upload = |csv: String| {
            let admin = &admin;
            let csrf = csrf.clone();
            async move {
                admin
                    .post_file(
                        "/staff/101001/licences/csv",
                        &[("csrf", &csrf), ("lang", "da")],
                        "file",
                        csv.as_bytes(),
                    )
                    .await
            }
        };
        let bad = "service,institution,scope,target,from,to\n\
                   rp,101001,institution,,2026-08-01,2027-07-31\n\
                   rp,101001,group,9Z,2026-08-01,\n\
                   rp,202002,person,101001t1,2026-08-01,\n\
                   rp,101001,person,101001t1,2026-13-01,\n";
        let res = upload(bad.into()).await;
        assert_eq!(res.status(), 422, "{d:?}");
        let html = res.text().await.unwrap();
        assert!(html.contains("der er ikke givet nogen licenser"), "{html}");
        assert!(
            html.contains("Linje 5, Fra: er ikke en dato (ÅÅÅÅ-MM-DD)"),
            "{d:?}: syntax first: {html}"
        );
        assert!(s.db.store.licences(None, None).await.unwrap().is_empty());

        // Well-formed, but two lines reach outside the institution.
        let outside = bad.replace("2026-13-01", "2026-09-01");
        let html = upload(outside).await.text().await.unwrap();
        assert!(
            html.contains("Linje 3, Gruppe eller person: der er ingen aktiv gruppe"),
            "{d:?}: {html}"
        );
        assert!(
            html.contains("Linje 4, Institution: er ikke jeres institution"),
            "{html}"
        );
        assert!(
            !html.contains("Linje 2,") && !html.contains("Linje 5,"),
            "{html}"
        );
        assert!(
            s.db.store.licences(None, None).await.unwrap().is_empty(),
            "{d:?}"
        );
        assert!(audited(&s, actions::LICENCE_GRANTED).await.is_empty());

        let good = "service,institution,scope,target,from,to\n\
                    rp,101001,institution,,2026-08-01,2027-07-31\n\
                    rp,101001,person,101001t1,2026-08-01,\n";
        let res = upload(good.into()).await;
        assert_eq!(res.status(), 303, "{d:?}");
        assert!(location(&res).contains("done=csv&count=2"));
        assert_eq!(s.db.store.licences(None, None).await.unwrap().len(), 2);
        assert_eq!(audited(&s, actions::LICENCE_GRANTED).await.len(), 2);
        let html = admin.get(&location(&res)).await.text().await.unwrap();
        assert!(
            html.contains("Licenserne fra filen er givet (2)."),
            "{html}"
        );

        // A file without the session's CSRF token is refused.
        let res = admin
            .post_file("/staff/101001/licences/csv", &[], "file", good.as_bytes())
            .await;
        assert_eq!(res.status(), 403, "{d:?}");
        assert_eq!(s.db.store.licences(None, None).await.unwrap().len(), 2);
    }
}

#[tokio::test]
async fn nobody_but_the_institutions_admin_sees_or_changes_its_licences() {
    for d in dialects() {
        let s = setup(&d).await;
        let (store, clock) = (&*s.db.store, &*s.db.clock);
        let theirs = licence::grant(
            store,
            clock,
            "cli",
            &Grantor::Institution,
            vec![NewLicence {
                client_id: "rp".into(),
                institution: "202002".into(),
                scope: LicenceScope::Institution,
                valid_from: clock.now().date(),
                valid_to: None,
                granted_by: "cli".into(),
                consent: None,
            }],
        )
        .await
        .unwrap()[0];
        assert_eq!(
            Visitor::new(&s).get(PAGE).await.status(),
            303,
            "to the login"
        );
        let teacher = logged_in(&s, "101001t1").await;
        assert_eq!(teacher.get(PAGE).await.status(), 404, "{d:?}");
        let other = logged_in(&s, "202002l1").await;
        assert_eq!(other.get(PAGE).await.status(), 404, "{d:?}");
        assert!(!other
            .get("/staff/202002/licences")
            .await
            .text()
            .await
            .unwrap()
            .contains("id=\"no-licences\""));
        // 101001's admin cannot withdraw 202002's licence through their own page.
        let admin = logged_in(&s, ADMIN).await;
        let res = admin
            .submit(
                PAGE,
                &format!("/staff/101001/licences/{theirs}/withdraw"),
                &[],
            )
            .await;
        assert_eq!(res.status(), 404, "{d:?}");
        assert!(s.db.store.licences(None, Some("202002")).await.unwrap()[0]
            .withdrawn_at
            .is_none());
        let html = admin.get(PAGE).await.text().await.unwrap();
        assert!(!html.contains(&format!("licence-{theirs}\"")), "{d:?}");
    }
}
