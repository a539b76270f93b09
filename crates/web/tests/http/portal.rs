//! The provider portal, on both dialects: deny by default (only provider
//! users, only their own provider's services, others get 404), registering
//! a service (secret shown once), sending a request with errors shown per
//! field, the admin seeing it, the history, and the e-mail notice to the
//! institution's admins through an in-process SMTP sink; licences the
//! provider grants with the institution's consent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::oidc::location;
use crate::sharing::approve;
use tilgang_core::audit::actions;
use tilgang_core::oidc::Package;
use tilgang_core::sharing::agreement::{self, Decider, NewProvider, RequestStatus};
use tilgang_core::sharing::licence::{self, Grantor, LicenceScope, NewLicence};
use tilgang_core::sharing::portal;
use tilgang_testkit::{dialects, staff_roster, TestServer, Visitor, PASSWORD};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Provider `name`'s id.
async fn provider(s: &TestServer, name: &str) -> i64 {
    let p = NewProvider {
        name: name.into(),
        cvr: "87654321".into(),
        address: "Forlagsvej 2, 8000 Aarhus C".into(),
        contact: "kontakt@forlag.example".into(),
        security_contact: "security@forlag.example".into(),
    };
    agreement::add_provider(&*s.db.store, &*s.db.clock, "cli", &p)
        .await
        .unwrap()
}

/// A portal login for the provider, with the test password; its user id.
async fn user(s: &TestServer, provider_id: i64) -> String {
    let (store, clock) = (&*s.db.store, &*s.db.clock);
    let id = portal::add_user(
        store,
        clock,
        "cli",
        provider_id,
        "Sofie Berg",
        "sofie@forlag.example",
    )
    .await
    .unwrap();
    s.set_password(&id).await;
    id
}

async fn logged_in(s: &TestServer, user: &str) -> Visitor {
    let v = Visitor::new(s);
    assert_eq!(v.login(user, PASSWORD).await.status(), 303, "{user}");
    v
}

async fn setup(s: &TestServer) {
    let mut doc = staff_roster("101001", &["Leder"]);
    for p in doc["persons"].as_array_mut().unwrap() {
        if p["user_id"] == "101001l1" {
            p["email"] = "leder@skole.example".into();
        }
    }
    s.db.import_json(&doc).await;
    s.set_password("101001l1").await;
}

/// Registers a service through the portal; returns (client id, page).
async fn register(v: &Visitor, name: &str) -> (String, String) {
    let res = v
        .submit(
            "/provider/services/new",
            "/provider/services",
            &[
                ("name", name),
                ("redirect_uris", "https://app.example/cb"),
                ("grant", "authorization_code"),
                ("grant", "refresh_token"),
                ("client_type", "confidential"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let id = html
        .split("id=\"client-id\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap()
        .to_owned();
    (id, html)
}

fn good_request(target: &str) -> Vec<(&'static str, String)> {
    let mut f: Vec<(&'static str, String)> = vec![
        ("purpose", "Reading exercises in class".into()),
        ("package", "small".into()),
        ("delivery", "lookup".into()),
        ("rows", "2".into()),
        ("locations", "DK".into()),
        (
            "retention",
            "Deleted 6 months after the roster stops delivering a user".into(),
        ),
        ("dpa_reference", "DBA-2026-17".into()),
        ("target", "institution".into()),
        ("institution", target.into()),
    ];
    for (n, name) in [(1, "Cloudco"), (2, "Mailco")] {
        for (field, v) in [
            ("name", name),
            ("cvr", "12345678"),
            ("address", "Havnegade 1, 1058 København K"),
            ("task", "Hosting"),
            ("data", "Names and classes"),
            ("country", "DK"),
            ("protection", "Encrypted at rest"),
        ] {
            let key: &'static str = Box::leak(format!("sub.{n}.{field}").into_boxed_str());
            f.push((key, v.into()));
        }
    }
    f
}

async fn send(v: &Visitor, client_id: &str, form: &[(&'static str, String)]) -> reqwest::Response {
    // The overview's form carries the session's CSRF token, even for a
    // service that is not the visitor's.
    let action = format!("/provider/services/{client_id}/request");
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    v.submit("/provider", &action, &fields).await
}

#[tokio::test]
async fn only_provider_users_reach_the_portal_and_only_their_own_services() {
    for d in dialects() {
        let s = TestServer::start(&d).await;
        setup(&s).await;
        let (a, b) = (
            provider(&s, "Forlag A").await,
            provider(&s, "Forlag B").await,
        );
        let (ua, ub) = (user(&s, a).await, user(&s, b).await);
        let events = s.db.store.audit_page(0, 10_000).await.unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.action == actions::SHARING_PROVIDER_USER_ADDED),
            "{d:?}"
        );

        // Not signed in: to the login page; a teacher or an admin: 404.
        assert_eq!(Visitor::new(&s).get("/provider").await.status(), 303);
        let admin = logged_in(&s, "101001l1").await;
        assert_eq!(admin.get("/provider").await.status(), 404, "{d:?}");
        assert_eq!(admin.get("/provider/services/new").await.status(), 404);

        let va = logged_in(&s, &ua).await;
        let html = va.get("/provider").await.text().await.unwrap();
        assert!(html.contains("Udbyderportal: Forlag A"), "{d:?}: {html}");
        // The account page links a provider user, and only them, to the portal.
        let account = va.get("/account").await.text().await.unwrap();
        assert!(
            account.contains("id=\"provider-link\" href=\"/provider?lang=da\""),
            "{d:?}: {account}"
        );
        let account = admin.get("/account").await.text().await.unwrap();
        assert!(!account.contains("provider-link"), "{d:?}");
        let vb = logged_in(&s, &ub).await;
        let (theirs, _) = register(&vb, "B's app").await;
        // A's user cannot see, ask for or read the history of B's service.
        assert!(!va
            .get("/provider")
            .await
            .text()
            .await
            .unwrap()
            .contains(&theirs));
        for path in [
            format!("/provider/services/{theirs}/request"),
            format!("/provider/services/{theirs}/history/101001"),
        ] {
            assert_eq!(va.get(&path).await.status(), 404, "{d:?} {path}");
        }
        let res = send(&va, &theirs, &good_request("101001")).await;
        assert_eq!(res.status(), 404, "{d:?}");
        assert!(s
            .db
            .store
            .requests(Some(&theirs), None)
            .await
            .unwrap()
            .is_empty());

        // A form without the session's CSRF token is refused.
        let res = va
            .post(
                "/provider/services",
                &[("name", "X"), ("grant", "authorization_code")],
            )
            .await;
        assert_eq!(res.status(), 403, "{d:?}");
    }
}

#[tokio::test]
async fn a_provider_registers_a_service_whose_secret_is_shown_once() {
    for d in dialects() {
        let s = TestServer::start(&d).await;
        let p = provider(&s, "Forlag A").await;
        let v = logged_in(&s, &user(&s, p).await).await;
        // Errors come back at their fields, with what was typed.
        let res = v
            .submit(
                "/provider/services/new",
                "/provider/services",
                &[
                    ("name", "Matte"),
                    ("redirect_uris", "not a uri#x"),
                    ("client_type", "public"),
                ],
            )
            .await;
        assert_eq!(res.status(), 422, "{d:?}");
        let html = res.text().await.unwrap();
        assert!(html.contains("id=\"error-redirect_uris\""), "{html}");
        assert!(html.contains("id=\"error-grants\""), "{html}");
        assert!(html.contains("value=\"Matte\""));

        let (id, html) = register(&v, "Matte for alle").await;
        assert!(id.starts_with("matte-for-alle-"), "{id}");
        let secret = html
            .split("id=\"client-secret\">")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .unwrap();
        let service = s.db.store.service(&id).await.unwrap().unwrap();
        assert!(service.secret_matches(secret), "{d:?}");
        assert_eq!(service.redirect_uris, vec!["https://app.example/cb"]);
        let link = s.db.store.service_link(&id).await.unwrap().unwrap();
        assert_eq!(link.provider_id, Some(p));
        // The overview lists it, without the secret.
        let html = v.get("/provider").await.text().await.unwrap();
        assert!(html.contains(&format!("id=\"service-{id}\"")), "{html}");
        assert!(!html.contains(secret));
    }
}

#[tokio::test]
async fn a_request_with_errors_is_shown_per_field_and_a_good_one_reaches_the_admin() {
    for d in dialects() {
        let s = TestServer::start(&d).await;
        setup(&s).await;
        let p = provider(&s, "Forlag A").await;
        let v = logged_in(&s, &user(&s, p).await).await;
        let (id, _) = register(&v, "Matte").await;

        let mut bad = good_request("101001");
        bad.retain(|(k, _)| *k != "purpose" && *k != "sub.2.cvr");
        bad.push(("sub.2.cvr", "123".into()));
        let res = send(&v, &id, &bad).await;
        assert_eq!(res.status(), 422, "{d:?}");
        let html = res.text().await.unwrap();
        assert!(html.contains("id=\"error-purpose\""), "{html}");
        assert!(html.contains("id=\"error-sub.2.cvr\""), "{html}");
        assert!(!html.contains("id=\"error-sub.1.cvr\""));
        assert!(html.contains("value=\"Mailco\""), "typed values stay");

        // "Add more" shows more rows and sends nothing.
        let mut more = good_request("101001");
        more.push(("more", "1".into()));
        let html = send(&v, &id, &more).await.text().await.unwrap();
        assert!(html.contains("id=\"sub-4\""), "{html}");
        let res = send(&v, &id, &good_request("999999")).await;
        assert_eq!(res.status(), 422);
        assert!(res.text().await.unwrap().contains("id=\"error-target\""));
        assert!(s
            .db
            .store
            .requests(Some(&id), None)
            .await
            .unwrap()
            .is_empty());

        let res = send(&v, &id, &good_request("101001")).await;
        assert_eq!(res.status(), 303, "{d:?}");
        assert!(location(&res).contains("done=requested"));
        let r = &s.db.store.requests(Some(&id), None).await.unwrap()[0];
        assert_eq!(r.status, RequestStatus::Pending);
        assert_eq!(r.spec.sub_processors.len(), 2);
        assert!(r.created_by.starts_with("person:"));
        let html = v.get("/provider").await.text().await.unwrap();
        assert!(html.contains("venter på godkendelse"), "{d:?}: {html}");

        let admin = logged_in(&s, "101001l1").await;
        let html = admin
            .get("/staff/101001/sharing")
            .await
            .text()
            .await
            .unwrap();
        assert!(html.contains(&format!("id=\"pending-{id}\"")), "{d:?}");
        assert!(html.contains("Cloudco (CVR 12345678"));
    }
}

#[tokio::test]
async fn the_provider_sees_the_history_the_admin_sees() {
    for d in dialects() {
        let s = TestServer::start(&d).await;
        setup(&s).await;
        let p = provider(&s, "Forlag A").await;
        let v = logged_in(&s, &user(&s, p).await).await;
        let (id, _) = register(&v, "Matte").await;
        assert_eq!(send(&v, &id, &good_request("101001")).await.status(), 303);
        let (store, clock) = (&*s.db.store, &*s.db.clock);
        let r = store.requests(Some(&id), None).await.unwrap()[0].id;
        agreement::approve(store, clock, Decider::Operator("cli"), r)
            .await
            .unwrap();
        let html = v.get("/provider?lang=en").await.text().await.unwrap();
        assert!(html.contains("approved (version 1)"), "{d:?}: {html}");
        let path = format!("/provider/services/{id}/history/101001");
        let html = v.get(&path).await.text().await.unwrap();
        assert!(html.contains("id=\"version-1\""), "{d:?}: {html}");
        assert!(
            html.contains(actions::SHARING_REQUESTED) && html.contains(actions::SHARING_APPROVED)
        );
        agreement::revoke(
            store,
            clock,
            Decider::Operator("cli"),
            &id,
            "101001",
            "Not used",
        )
        .await
        .unwrap();
        let html = v.get("/provider?lang=en").await.text().await.unwrap();
        assert!(html.contains("revoked: Not used"), "{d:?}: {html}");
    }
}

#[tokio::test]
async fn a_provider_grants_licences_with_the_institutions_consent_and_withdraws_its_own() {
    for d in dialects() {
        let s = TestServer::start(&d).await;
        setup(&s).await;
        s.db.import_json(&staff_roster("202002", &["Leder"])).await;
        let (a, b) = (
            provider(&s, "Forlag A").await,
            provider(&s, "Forlag B").await,
        );
        let va = logged_in(&s, &user(&s, a).await).await;
        let vb = logged_in(&s, &user(&s, b).await).await;
        let (id, _) = register(&va, "Matte").await;
        approve(&s, &id, "101001", Package::Small).await;
        let page = format!("/provider/services/{id}/licences");
        let overview = va.get("/provider").await.text().await.unwrap();
        assert!(
            overview.contains(&format!("id=\"licences-{id}\" href=\"{page}?lang=da\"")),
            "{d:?}: {overview}"
        );
        let store = &*s.db.store;
        let none_granted = || async { store.licences(Some(&id), None).await.unwrap().is_empty() };
        let grant = |inst: &'static str, consent: &'static str| {
            let page = page.clone();
            let va = &va;
            async move {
                let mut f = vec![
                    ("institution", inst),
                    ("scope", "person"),
                    ("person", "101001l1"),
                    ("from", "2026-08-01"),
                    ("to", "2027-07-31"),
                ];
                if !consent.is_empty() {
                    f.push(("consent", consent));
                }
                va.submit(&page, &page, &f).await
            }
        };

        // No consent: the field says so, and nothing is granted.
        let res = grant("101001", "").await;
        assert_eq!(res.status(), 422, "{d:?}");
        let html = res.text().await.unwrap();
        assert!(html.contains("Samtykke: mangler"), "{d:?}: {html}");
        assert!(html.contains("value=\"101001l1\""), "typed values stay");
        assert!(none_granted().await, "{d:?}");
        // An institution where the service has no standing, or none at all.
        let res = grant("202002", "ORDER-118").await;
        assert_eq!(res.status(), 422, "{d:?}");
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("Institution: tjenesten har hverken en godkendelse eller minimalpakken"));
        let res = grant("999999", "ORDER-118").await;
        assert_eq!(res.status(), 422, "{d:?}");
        assert!(none_granted().await, "{d:?}");
        // A form without the session's CSRF token is refused.
        let res = va
            .post(
                &page,
                &[
                    ("institution", "101001"),
                    ("scope", "institution"),
                    ("from", "2026-08-01"),
                    ("consent", "X"),
                ],
            )
            .await;
        assert_eq!(res.status(), 403, "{d:?}");
        assert!(none_granted().await, "{d:?}");

        // With consent: granted, shown as the provider's with its consent.
        let res = grant("101001", "ORDER-118").await;
        assert_eq!(res.status(), 303, "{d:?}");
        assert!(location(&res).contains("done=granted"));
        let l = store.licences(Some(&id), None).await.unwrap().remove(0);
        assert_eq!(l.new.consent.as_deref(), Some("ORDER-118"));
        assert_eq!(l.new.scope, LicenceScope::Person("101001l1".into()));
        assert!(l.new.granted_by.starts_with("person:"), "{d:?}");
        let events = store.audit_page(0, 10_000).await.unwrap();
        assert!(events
            .iter()
            .any(|e| e.action == actions::LICENCE_GRANTED && e.actor == l.new.granted_by));
        let html = va.get(&page).await.text().await.unwrap();
        let row = html
            .split(&format!("id=\"licence-{}\"", l.id))
            .nth(1)
            .unwrap();
        assert!(
            row.contains("ORDER-118") && row.contains("udbyderen"),
            "{d:?}: {html}"
        );

        // The institution's own grant is listed but not the provider's to end.
        let own = NewLicence {
            client_id: id.clone(),
            institution: "101001".into(),
            scope: LicenceScope::Institution,
            valid_from: l.new.valid_from,
            valid_to: None,
            granted_by: "cli".into(),
            consent: None,
        };
        let theirs = licence::grant(store, &*s.db.clock, "cli", &Grantor::Institution, vec![own])
            .await
            .unwrap()[0];
        let html = va.get(&page).await.text().await.unwrap();
        assert!(html.contains(&format!("id=\"licence-{theirs}\"")), "{d:?}");
        assert!(
            !html.contains(&format!("id=\"withdraw-{theirs}\"")),
            "{d:?}"
        );
        let withdraw = |n: i64| format!("{page}/{n}/withdraw");
        assert_eq!(va.submit(&page, &withdraw(theirs), &[]).await.status(), 404);

        // Another provider's user finds nothing, and changes nothing.
        assert_eq!(vb.get(&page).await.status(), 404, "{d:?}");
        let f = [
            ("institution", "101001"),
            ("scope", "institution"),
            ("from", "2026-08-01"),
            ("consent", "X"),
        ];
        assert_eq!(vb.submit("/provider", &page, &f).await.status(), 404);
        assert_eq!(
            vb.submit("/provider", &withdraw(l.id), &[]).await.status(),
            404
        );
        assert_eq!(store.licences(Some(&id), None).await.unwrap().len(), 2);

        // Withdrawing its own grant needs the CSRF token, then works.
        assert_eq!(va.post(&withdraw(l.id), &[]).await.status(), 403);
        let res = va.submit(&page, &withdraw(l.id), &[]).await;
        assert_eq!(res.status(), 303, "{d:?}");
        assert!(location(&res).contains("done=withdrawn"));
        let all = store.licences(Some(&id), None).await.unwrap();
        assert!(all
            .iter()
            .find(|x| x.id == l.id)
            .unwrap()
            .withdrawn_at
            .is_some());
        assert!(all
            .iter()
            .find(|x| x.id == theirs)
            .unwrap()
            .withdrawn_at
            .is_none());
    }
}

/// What an SMTP client sent: the recipients and the message.
pub(crate) struct Mail {
    pub(crate) to: Vec<String>,
    pub(crate) data: String,
}

/// A tiny SMTP server on a free port that takes one message and hands it
/// over.
pub(crate) async fn smtp_sink() -> (u16, tokio::sync::oneshot::Receiver<Mail>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let (r, mut w) = sock.into_split();
        let mut lines = BufReader::new(r).lines();
        w.write_all(b"220 sink ESMTP\r\n").await.unwrap();
        let mut mail = Mail {
            to: vec![],
            data: String::new(),
        };
        let mut in_data = false;
        while let Ok(Some(line)) = lines.next_line().await {
            if in_data {
                if line == "." {
                    in_data = false;
                    w.write_all(b"250 queued\r\n").await.unwrap();
                } else {
                    mail.data.push_str(&line);
                    mail.data.push('\n');
                }
                continue;
            }
            let upper = line.to_ascii_uppercase();
            let answer: &[u8] = if upper.starts_with("EHLO") {
                b"250-sink\r\n250 8BITMIME\r\n"
            } else if upper.starts_with("RCPT TO:") {
                mail.to
                    .push(line[8..].trim().trim_matches(['<', '>']).to_owned());
                b"250 ok\r\n"
            } else if upper.starts_with("DATA") {
                in_data = true;
                b"354 go on\r\n"
            } else if upper.starts_with("QUIT") {
                w.write_all(b"221 bye\r\n").await.unwrap();
                break;
            } else {
                b"250 ok\r\n"
            };
            w.write_all(answer).await.unwrap();
        }
        let _ = tx.send(mail);
    });
    (port, rx)
}

#[tokio::test]
async fn a_request_is_mailed_to_the_institutions_admins() {
    for d in dialects() {
        let (port, mail) = smtp_sink().await;
        let s = TestServer::start_with_smtp(&d, port).await;
        setup(&s).await;
        let p = provider(&s, "Forlag A").await;
        let v = logged_in(&s, &user(&s, p).await).await;
        let (id, _) = register(&v, "Matte").await;
        assert_eq!(send(&v, &id, &good_request("101001")).await.status(), 303);
        let mail = tokio::time::timeout(std::time::Duration::from_secs(10), mail)
            .await
            .expect("a notice within 10 s")
            .unwrap();
        assert_eq!(mail.to, vec!["leder@skole.example"], "{d:?}");
        // Quoted-printable or base64 aside, the subject names the service in
        // both languages and the body links to the admin's page.
        assert!(
            mail.data.contains("noreply@tilgang.example"),
            "{}",
            mail.data
        );
        let text = decode(&mail.data);
        assert!(text.contains("Ny anmodning om data fra Matte"), "{text}");
        assert!(
            text.contains("New data access request from Matte"),
            "{text}"
        );
        assert!(text.contains("/staff/101001/sharing"), "{text}");
    }
}

/// The message's text: headers as they are, a base64 body decoded.
pub(crate) fn decode(data: &str) -> String {
    use base64::Engine;
    let (head, body) = data.split_once("\n\n").unwrap_or((data, ""));
    let b64 = head
        .to_ascii_lowercase()
        .contains("content-transfer-encoding: base64");
    let body = if b64 {
        let joined: String = body.lines().collect();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(joined.trim())
                .unwrap_or_default(),
        )
        .unwrap_or_default()
    } else {
        body.replace("=\n", "")
    };
    format!("{}\n{}", decode_subject(head), body)
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`) in the headers.
fn decode_subject(head: &str) -> String {
    use base64::Engine;
    let mut out = String::new();
    for part in head.split_whitespace() {
        let lower = part.to_ascii_lowercase();
        if lower.starts_with("=?utf-8?b?") && part.ends_with("?=") {
            let inner = &part[10..part.len() - 2];
            out.push_str(&String::from_utf8_lossy(
                &base64::engine::general_purpose::STANDARD
                    .decode(inner)
                    .unwrap_or_default(),
            ));
        } else {
            out.push_str(part);
            out.push(' ');
        }
    }
    out
}
