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
