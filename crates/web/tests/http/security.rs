//! Reporting security problems: security.txt (RFC 9116) and the public
//! report page, on SQLite and (when configured) PostgreSQL.

use tilgang_testkit::{dialects, TestServer, Visitor};

#[tokio::test]
async fn security_txt_names_the_contacts_the_policy_and_an_expiry() {
    let s = TestServer::start(&dialects()[0]).await;
    let r = s.get("/.well-known/security.txt").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let body = r.text().await.unwrap();
    for line in [
        "Contact: mailto:security@tilgang.example".to_owned(),
        format!("Contact: {}/security", s.base),
        format!("Policy: {}/security", s.base),
        format!("Canonical: {}/.well-known/security.txt", s.base),
        "Preferred-Languages: da, en".to_owned(),
    ] {
        assert!(body.lines().any(|l| l == line), "{line} in\n{body}");
    }
    let expires = body
        .lines()
        .find_map(|l| l.strip_prefix("Expires: "))
        .unwrap();
    assert!(expires.ends_with('Z') && expires.len() == 20, "{expires}");
}

#[tokio::test]
async fn a_report_is_stored_acknowledged_and_audited_without_its_content() {
    for d in dialects() {
        let s = TestServer::start(&d).await;
        let v = Visitor::new(&s);
        let page = v.get("/security").await.text().await.unwrap();
        assert!(
            page.contains("politianmelder ikke"),
            "the disclosure promise"
        );
        let empty = v
            .submit("/security", "/security", &[("summary", " ")])
            .await;
        assert_eq!(empty.status(), 422);
        let forged = v
            .post("/security", &[("csrf", "guess"), ("summary", "x")])
            .await;
        assert_eq!(forged.status(), 403);
        let sent = v
            .submit(
                "/security",
                "/security",
                &[
                    ("summary", "Stored XSS in the class name"),
                    ("details", "Import a class named <script>…"),
                    ("contact", "finder@example.org"),
                ],
            )
            .await;
        assert_eq!(sent.status(), 200, "{d:?}");
        let thanks = sent.text().await.unwrap();
        assert!(thanks.contains("id=\"reference\">SR-"), "{thanks}");
        let reports = s.db.store.reports().await.unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].summary, "Stored XSS in the class name");
        assert!(thanks.contains(&reports[0].reference));
        let events = s.db.store.audit_page(0, 100).await.unwrap();
        let ev = events
            .iter()
            .find(|e| e.action == "security.report_received")
            .unwrap();
        assert!(ev.details.contains(&reports[0].reference));
        assert!(!ev.details.contains("XSS") && !ev.details.contains("finder"));
    }
}

mod operators {
    //! The operators' page of security reports: only holders of the
    //! `operator` right (granted by the CLI) see it; acknowledging is
    //! audited, needs the CSRF token, and is mailed to the reporter.
    use crate::oidc::location;
    use crate::portal::{decode, smtp_sink};
    use crate::staff::{audited, logged_in, person};
    use tilgang_core::audit::actions;
    use tilgang_core::identity::rights::{self, GrantOutcome, OPERATOR};
    use tilgang_testkit::{dialects, small_roster, TestServer, Visitor};

    const PAGE: &str = "/operator/security-reports";

    async fn report(s: &TestServer, summary: &str, contact: &str) {
        let v = Visitor::new(s);
        let sent = v
            .submit(
                "/security",
                "/security",
                &[
                    ("summary", summary),
                    ("details", "Steps: …"),
                    ("contact", contact),
                ],
            )
            .await;
        assert_eq!(sent.status(), 200);
    }

    async fn set_operator(s: &TestServer, user: &str, grant: bool) -> GrantOutcome {
        let (store, clock) = (&*s.db.store, &*s.db.clock);
        rights::operator_set_right(store, clock, OPERATOR, "", user, "driftsvagt", grant, "cli")
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn an_operator_reads_and_acknowledges_reports_and_the_reporter_is_told() {
        for d in dialects() {
            let (port, mail) = smtp_sink().await;
            let s = TestServer::start_with_smtp(&d, port).await;
            s.db.import_json(&small_roster("101001")).await;
            for u in ["101001t1", "101001m1"] {
                s.set_password(u).await;
            }
            report(&s, "Old problem", "").await;
            report(&s, "Stored XSS in the class name", "finder@example.org").await;

            // Deny by default: anonymous to the login, anyone else 404.
            assert_eq!(Visitor::new(&s).get(PAGE).await.status(), 303);
            let op = logged_in(&s, "101001t1").await;
            assert_eq!(op.get(PAGE).await.status(), 404, "{d:?}");
            let account = op.get("/account").await.text().await.unwrap();
            assert!(!account.contains("operator-link"), "{d:?}");

            assert_eq!(set_operator(&s, "101001t1", true).await, GrantOutcome::Done);
            let granted = audited(&s, actions::RIGHT_GRANTED).await;
            let ev = granted.last().unwrap();
            assert_eq!(ev.actor, "cli");
            assert!(
                ev.details.contains("\"right\":\"operator\""),
                "{}",
                ev.details
            );
            let account = op.get("/account").await.text().await.unwrap();
            assert!(account.contains("id=\"operator-link\""), "{d:?}: {account}");
            let parent = logged_in(&s, "101001m1").await;
            assert_eq!(parent.get(PAGE).await.status(), 404, "{d:?}");

            let html = op.get(PAGE).await.text().await.unwrap();
            let (newer, older) = (
                html.find("Stored XSS in the class name").unwrap(),
                html.find("Old problem").unwrap(),
            );
            assert!(newer < older, "{d:?}: newest first");
            assert!(html.contains("finder@example.org") && html.contains("<strong>ny</strong>"));
            let reports = s.db.store.reports().await.unwrap();
            let id = reports[0].id;
            let action = format!("/operator/security-reports/{id}/acknowledge");

            // Without the session's CSRF token nothing changes.
            assert_eq!(op.post(&action, &[]).await.status(), 403, "{d:?}");
            assert!(s.db.store.reports().await.unwrap()[0]
                .acknowledged_at
                .is_none());
            // Someone else cannot acknowledge.
            assert_eq!(parent.submit("/account", &action, &[]).await.status(), 404);

            let res = op.submit(PAGE, &action, &[]).await;
            assert_eq!(res.status(), 303, "{d:?}");
            assert!(location(&res).contains("done=acknowledged"));
            let operator = person(&s, "101001t1").await;
            let r = &s.db.store.reports().await.unwrap()[0];
            assert_eq!(
                r.acknowledged_by.as_deref(),
                Some(format!("person:{operator}").as_str())
            );
            assert!(r.acknowledged_at.is_some());
            let acks = audited(&s, actions::SECURITY_REPORT_ACKNOWLEDGED).await;
            assert_eq!(acks.len(), 1, "{d:?}");
            assert_eq!(acks[0].actor, format!("person:{operator}"));
            assert!(acks[0].details.contains(&r.reference));
            assert!(!acks[0].details.contains("XSS") && !acks[0].details.contains("finder"));

            let mail = tokio::time::timeout(std::time::Duration::from_secs(10), mail)
                .await
                .expect("an acknowledgement within 10 s")
                .unwrap();
            assert_eq!(mail.to, vec!["finder@example.org"], "{d:?}");
            let text = decode(&mail.data);
            assert!(text.contains(&r.reference), "{text}");
            assert!(text.contains("We have read your security report"), "{text}");
            assert!(text.contains("Tak for din rapport"), "{text}");
            assert!(!text.contains("XSS"), "the content never goes out: {text}");

            let html = op.get(PAGE).await.text().await.unwrap();
            let section = html.split(&format!("id=\"report-{id}\"")).nth(1).unwrap();
            let section = section.split("</section>").next().unwrap();
            assert!(
                section.contains("kvitteret") && section.contains(&format!("person:{operator}"))
            );
            assert!(!section.contains("acknowledge-"), "{section}");
            // Twice is once.
            let res = op
                .post(
                    &action,
                    &[("csrf", &tilgang_testkit::csrf_of(&html).unwrap())],
                )
                .await;
            assert!(location(&res).contains("done=already"), "{d:?}");
            assert_eq!(
                audited(&s, actions::SECURITY_REPORT_ACKNOWLEDGED)
                    .await
                    .len(),
                1
            );
            // An unknown report is not found.
            let res = op
                .submit(PAGE, "/operator/security-reports/99999/acknowledge", &[])
                .await;
            assert_eq!(res.status(), 404);

            // The right taken back: 404 again.
            assert_eq!(
                set_operator(&s, "101001t1", false).await,
                GrantOutcome::Done
            );
            assert_eq!(op.get(PAGE).await.status(), 404, "{d:?}");
            assert_eq!(
                set_operator(&s, "101001t1", false).await,
                GrantOutcome::Unchanged
            );
            let revoked = audited(&s, actions::RIGHT_REVOKED).await;
            assert!(revoked
                .last()
                .unwrap()
                .details
                .contains("\"right\":\"operator\""));
        }
    }
}
