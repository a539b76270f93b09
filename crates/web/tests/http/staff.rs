//! Staff rights, the staff pages and QR card login, through the real
//! server, on SQLite and (when configured) PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tilgang_core::identity::cards::hash_card;
use tilgang_core::identity::session::ACR_ONE_FACTOR;
use tilgang_core::Clock;
use tilgang_testkit::{
    dialects, small_roster, staff_roster, Dialect, TestServer, Visitor, PASSWORD,
};

/// Institution 101001 (pupils p1 and p2 in 1.A, teacher t1, a substitute
/// v1, a leader l1) and institution 202002 (from `small_roster`), with
/// passwords for the staff of both.
async fn server(d: &Dialect) -> TestServer {
    let s = TestServer::start(d).await;
    s.db.import_json(&staff_roster("101001", &["Leder"])).await;
    s.db.import_json(&small_roster("202002")).await;
    for u in ["101001t1", "101001v1", "101001l1", "202002t1"] {
        s.set_password(u).await;
    }
    s
}

pub(crate) async fn logged_in(s: &TestServer, user: &str) -> Visitor {
    let v = Visitor::new(s);
    assert_eq!(v.login(user, PASSWORD).await.status(), 303, "{user}");
    v
}

pub(crate) async fn person(s: &TestServer, user: &str) -> i64 {
    s.db.store.account(user).await.unwrap().unwrap().person_id
}

/// The audit events with this action.
pub(crate) async fn audited(s: &TestServer, action: &str) -> Vec<tilgang_core::audit::Event> {
    s.db.store
        .audit_page(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action)
        .collect()
}

/// Posts a staff form with the visitor's session CSRF token.
async fn act(v: &Visitor, action: &str, form: &[(&str, &str)]) -> reqwest::Response {
    v.submit("/account", action, form).await
}

fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    html.split(start).nth(1).unwrap().split(end).next().unwrap()
}

fn card_codes(html: &str) -> Vec<String> {
    html.split("<span class=\"code\">")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_owned())
        .collect()
}

/// Logs in with a card code on /login/card as a fresh visitor.
async fn card_login(s: &TestServer, code: &str) -> (Visitor, reqwest::Response) {
    let v = Visitor::new(s);
    let r = v
        .submit("/login/card", "/login/card", &[("code", code)])
        .await;
    (v, r)
}

fn without_tokens(body: &str) -> String {
    body.split("name=\"csrf\" value=\"")
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part
            } else {
                part.split_once('"').map_or("", |p| p.1)
            }
        })
        .collect()
}

#[tokio::test]
async fn a_teacher_sees_her_institutions_pupils_only() {
    for d in dialects() {
        let s = server(&d).await;
        let t = logged_in(&s, "101001t1").await;
        let account = t.get("/account").await.text().await.unwrap();
        assert!(account.contains("href=\"/staff"), "{d:?}");
        let index = t.get("/staff").await.text().await.unwrap();
        assert!(index.contains("/staff/101001") && !index.contains("202002"));
        let r = t.get("/staff/101001").await;
        assert_eq!(r.status(), 200);
        let page = r.text().await.unwrap();
        assert!(
            page.contains("101001p1") && page.contains("101001p2"),
            "{page}"
        );
        assert!(!page.contains("202002"), "another institution's pupil");
        assert!(
            !page.contains("101001t1"),
            "employees are not listed to a teacher"
        );
        assert!(page.contains("Ikke aktiveret") && page.contains("1.A"));
        // Filtering by class.
        let page = t.get("/staff/101001?class=1A").await.text().await.unwrap();
        assert!(page.contains("101001p1") && page.contains("id=\"print-class\""));
        let page = t.get("/staff/101001?class=9Z").await.text().await.unwrap();
        assert!(!page.contains("101001p1"));
        // Another institution, or no right at all: nothing there.
        assert_eq!(t.get("/staff/202002").await.status(), 404);
        assert_eq!(t.get("/staff/999999").await.status(), 404);
        assert!(!audited(&s, "staff.pupils_listed").await.is_empty());

        // A parent and a pupil hold no right: no link, no page.
        s.set_password("101001m1").await;
        let m = logged_in(&s, "101001m1").await;
        assert!(!m
            .get("/account")
            .await
            .text()
            .await
            .unwrap()
            .contains("href=\"/staff"));
        assert_eq!(m.get("/staff").await.status(), 404);
        assert_eq!(m.get("/staff/101001").await.status(), 404);
        // Not logged in: to the login page.
        let anon = Visitor::new(&s);
        assert_eq!(anon.get("/staff/101001").await.status(), 303);
    }
}

#[tokio::test]
async fn the_reset_right_does_not_cross_institutions() {
    for d in dialects() {
        let s = server(&d).await;
        let t = logged_in(&s, "101001t1").await;
        let l = logged_in(&s, "101001l1").await;
        let before = s.db.store.audit_page(0, 100_000).await.unwrap().len();
        for who in [&t, &l] {
            for number in ["101001", "202002"] {
                for (path, extra) in [
                    ("activation", None),
                    ("unlock", None),
                    ("cards", None),
                    ("cards/revoke", None),
                    ("grant", Some(("reason", "vikar"))),
                    ("revoke-right", Some(("reason", "x"))),
                ] {
                    for user in ["202002p1", "202002t1"] {
                        let mut form = vec![("user", user)];
                        form.extend(extra);
                        let r = act(who, &format!("/staff/{number}/{path}"), &form).await;
                        assert_eq!(r.status(), 404, "{d:?} {number}/{path} {user}");
                    }
                }
                let r = who
                    .get(&format!("/staff/{number}/cards?user=202002p1"))
                    .await;
                assert_eq!(r.status(), 404);
            }
            // A person of the right institution who is not a pupil.
            for path in ["activation", "cards", "cards/revoke"] {
                let r = act(
                    who,
                    &format!("/staff/101001/{path}"),
                    &[("user", "101001t1")],
                )
                .await;
                assert_eq!(r.status(), 404, "{path}");
            }
        }
        // Nothing was issued, unlocked or granted: only page views and
        // logins reached the audit log.
        let after = s.db.store.audit_page(0, 100_000).await.unwrap();
        for e in &after[before..] {
            assert!(
                ["staff.pupils_listed", "login.succeeded"].contains(&e.action.as_str()),
                "{d:?} {e:?}"
            );
        }
        let b_pupil = s.db.store.account("202002p1").await.unwrap().unwrap();
        assert!(b_pupil.password_hash.is_none());
    }
}

#[tokio::test]
async fn a_substitute_needs_a_leaders_grant_and_loses_it_on_revoke() {
    for d in dialects() {
        let s = server(&d).await;
        let v = logged_in(&s, "101001v1").await;
        assert_eq!(v.get("/staff").await.status(), 404, "{d:?}");
        assert_eq!(v.get("/staff/101001").await.status(), 404);

        // A teacher is no admin: no grant form, and the grant is refused.
        let t = logged_in(&s, "101001t1").await;
        let page = t.get("/staff/101001").await.text().await.unwrap();
        assert!(!page.contains("id=\"employees\""));
        let r = act(
            &t,
            "/staff/101001/grant",
            &[("user", "101001v1"), ("reason", "x")],
        )
        .await;
        assert_eq!(r.status(), 404);

        let l = logged_in(&s, "101001l1").await;
        let page = l.get("/staff/101001").await.text().await.unwrap();
        assert!(page.contains("id=\"employee-101001v1\""), "{page}");
        // A grant needs a reason.
        let r = act(
            &l,
            "/staff/101001/grant",
            &[("user", "101001v1"), ("reason", " ")],
        )
        .await;
        assert_eq!(r.status(), 303);
        assert!(r.headers()["location"]
            .to_str()
            .unwrap()
            .contains("done=no_reason"));
        assert_eq!(v.get("/staff/101001").await.status(), 404);

        let r = act(
            &l,
            "/staff/101001/grant",
            &[("user", "101001v1"), ("reason", "vikar i 1.A")],
        )
        .await;
        assert_eq!(r.status(), 303);
        assert_eq!(v.get("/staff/101001").await.status(), 200);
        assert!(v
            .get("/account")
            .await
            .text()
            .await
            .unwrap()
            .contains("href=\"/staff"));
        let granted = audited(&s, "right.granted").await;
        assert_eq!(granted.len(), 1);
        assert_eq!(
            granted[0].actor,
            format!("person:{}", person(&s, "101001l1").await)
        );
        assert_eq!(granted[0].institution.as_deref(), Some("101001"));
        assert!(
            granted[0].details.contains("vikar i 1.A")
                && granted[0].details.contains("pupil_reset")
        );
        // The substitute is no admin.
        let r = act(
            &v,
            "/staff/101001/grant",
            &[("user", "101001t1"), ("reason", "x")],
        )
        .await;
        assert_eq!(r.status(), 404);

        let r = act(
            &l,
            "/staff/101001/revoke-right",
            &[("user", "101001v1"), ("reason", "slut")],
        )
        .await;
        assert_eq!(r.status(), 303);
        assert_eq!(v.get("/staff/101001").await.status(), 404);
        assert_eq!(audited(&s, "right.revoked").await.len(), 1);

        // A grant counts only while the grantee is employed there.
        act(
            &l,
            "/staff/101001/grant",
            &[("user", "101001v1"), ("reason", "igen")],
        )
        .await;
        assert_eq!(v.get("/staff/101001").await.status(), 200);
        s.db.raw("UPDATE roles SET ended_on = '2026-11-01' WHERE role = 'Vikar'")
            .await;
        assert_eq!(v.get("/staff/101001").await.status(), 404);
    }
}

#[tokio::test]
async fn a_teacher_issues_an_activation_code_and_the_pupil_activates_with_it() {
    for d in dialects() {
        let s = server(&d).await;
        let t = logged_in(&s, "101001t1").await;
        let r = act(&t, "/staff/101001/activation", &[("user", "101001p1")]).await;
        assert_eq!(r.status(), 200, "{d:?}");
        let slip = r.text().await.unwrap();
        let code = between(
            &slip,
            "id=\"activation-code\" style=\"font-size:1.4rem\">",
            "<",
        )
        .to_owned();
        assert_eq!(code.len(), 14, "{slip}");
        assert!(slip.contains("Alma Jensen") && slip.contains(&format!("{}/activate", s.base)));
        let issued = audited(&s, "account.activation_code_issued").await;
        assert_eq!(issued.len(), 1);
        assert_eq!(
            issued[0].actor,
            format!("person:{}", person(&s, "101001t1").await)
        );
        assert!(!issued[0].details.contains(&code));

        let p = Visitor::new(&s);
        let new_password = "grøn krokodille læser tegneserier";
        let r = p
            .submit(
                "/activate",
                "/activate",
                &[
                    ("code", &code),
                    ("password", new_password),
                    ("repeat", new_password),
                ],
            )
            .await;
        assert_eq!(r.status(), 303);
        assert_eq!(p.login("101001p1", new_password).await.status(), 303);
    }
}

#[tokio::test]
async fn a_teacher_unlocks_a_locked_pupil_and_a_leader_anyone_of_the_institution() {
    for d in dialects() {
        let s = server(&d).await;
        s.set_password("101001p1").await;
        let p = Visitor::new(&s);
        for _ in 0..3 {
            assert_eq!(p.login("101001p1", "forkert").await.status(), 401);
        }
        assert_eq!(p.login("101001p1", PASSWORD).await.status(), 401, "locked");
        let t = logged_in(&s, "101001t1").await;
        let page = t.get("/staff/101001").await.text().await.unwrap();
        let row = between(&page, "id=\"pupil-101001p1\"", "</tr>");
        assert!(
            row.contains("Låst") && row.contains("/unlock"),
            "{d:?} {row}"
        );
        let r = act(
            &t,
            "/staff/101001/unlock",
            &[("user", "101001p1"), ("class", "1A")],
        )
        .await;
        assert_eq!(r.status(), 303);
        assert_eq!(
            r.headers()["location"],
            "/staff/101001?done=unlocked&class=1A"
        );
        assert_eq!(p.login("101001p1", PASSWORD).await.status(), 303);
        let ev = audited(&s, "account.unlocked").await;
        assert_eq!(ev.len(), 1);
        assert_eq!(
            ev[0].actor,
            format!("person:{}", person(&s, "101001t1").await)
        );

        // A leader can unlock an employee too; a teacher cannot.
        let l = logged_in(&s, "101001l1").await;
        let r = act(&t, "/staff/101001/unlock", &[("user", "101001v1")]).await;
        assert_eq!(r.status(), 404);
        let r = act(&l, "/staff/101001/unlock", &[("user", "101001v1")]).await;
        assert_eq!(r.status(), 303);
        // And a parent of one of its pupils; but nobody of another
        // institution.
        let r = act(&t, "/staff/101001/unlock", &[("user", "101001m1")]).await;
        assert_eq!(r.status(), 404);
        let r = act(&l, "/staff/101001/unlock", &[("user", "101001m1")]).await;
        assert_eq!(r.status(), 303);
        for user in ["202002m1", "202002t1", "202002p1"] {
            let r = act(&l, "/staff/101001/unlock", &[("user", user)]).await;
            assert_eq!(r.status(), 404, "{user}");
        }
        assert_eq!(audited(&s, "account.unlocked").await.len(), 3);
    }
}

#[tokio::test]
async fn card_login_gives_pupils_a_one_factor_session_until_reissued_or_revoked() {
    for d in dialects() {
        let s = server(&d).await;
        let t = logged_in(&s, "101001t1").await;
        let confirm = t
            .get("/staff/101001/cards?class=1A")
            .await
            .text()
            .await
            .unwrap();
        assert!(
            confirm.contains("gamle kort holder op med at virke"),
            "{confirm}"
        );
        let r = act(&t, "/staff/101001/cards", &[("class", "1A")]).await;
        assert_eq!(r.status(), 200, "{d:?}");
        let page = r.text().await.unwrap();
        let codes = card_codes(&page);
        assert_eq!(codes.len(), 2, "{page}");
        assert!(page.contains("<svg") && page.contains("Skole 101001") && page.contains("1.A"));
        assert_eq!(audited(&s, "card.issued").await.len(), 2);
        for e in audited(&s, "card.issued").await {
            assert!(!e.details.contains(&codes[0]) && !e.details.contains(&codes[1]));
        }
        let p1_code = between(&page, "id=\"card-101001p1\"", "</section>");
        let p1_code = card_codes(p1_code).remove(0);

        // Typed forgivingly: lower case, spaces for dashes.
        let typed = p1_code.to_lowercase().replace('-', " ");
        let (p, r) = card_login(&s, &typed).await;
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "/account");
        assert!(p
            .get("/account")
            .await
            .text()
            .await
            .unwrap()
            .contains("Alma"));
        let sessions =
            s.db.store
                .sessions_of(person(&s, "101001p1").await)
                .await
                .unwrap();
        assert_eq!(sessions[0].acr, ACR_ONE_FACTOR);
        assert_eq!(sessions[0].amr, vec!["card".to_owned()]);
        let ok = audited(&s, "login.succeeded").await;
        assert!(ok.last().unwrap().details.contains("\"card\""));

        // Re-issuing one pupil's card: the old one stops working.
        let r = act(&t, "/staff/101001/cards", &[("user", "101001p1")]).await;
        let new_code = card_codes(&r.text().await.unwrap()).remove(0);
        let (_, old) = card_login(&s, &p1_code).await;
        assert_eq!(old.status(), 401);
        // The session the old card opened is over too (a lost card).
        assert_eq!(p.get("/account").await.status(), 303);
        let old_body = without_tokens(&old.text().await.unwrap());

        // Revoking: the card stops working; the answer is the same as for
        // a card that never existed.
        let (p, _) = card_login(&s, &new_code).await;
        assert_eq!(p.get("/account").await.status(), 200);
        let r = act(&t, "/staff/101001/cards/revoke", &[("user", "101001p1")]).await;
        assert_eq!(r.status(), 303);
        assert_eq!(
            p.get("/account").await.status(),
            303,
            "logged out with the card"
        );
        let (_, revoked) = card_login(&s, &new_code).await;
        assert_eq!(revoked.status(), 401);
        let (_, unknown) = card_login(&s, "AAAA-BBBB-CCCC").await;
        assert_eq!(unknown.status(), 401);
        let (_, short) = card_login(&s, "x").await;
        assert_eq!(short.status(), 401);
        let revoked = without_tokens(&revoked.text().await.unwrap());
        assert_eq!(revoked, old_body);
        assert_eq!(without_tokens(&unknown.text().await.unwrap()), old_body);
        assert_eq!(without_tokens(&short.text().await.unwrap()), old_body);
        assert_eq!(audited(&s, "card.revoked").await.len(), 1);
        let failed = audited(&s, "login.failed").await;
        assert!(failed.iter().all(|e| e.details.contains("unknown card")));
        assert!(failed
            .iter()
            .all(|e| !e.details.contains(&new_code) && !e.details.contains(&p1_code)));
    }
}

#[tokio::test]
async fn a_card_of_anyone_but_a_pupil_is_refused_the_same_way() {
    for d in dialects() {
        let s = server(&d).await;
        let teacher = person(&s, "101001t1").await;
        let code = "K7QM-4TXP-9R2D";
        s.db.store
            .issue_cards(
                &[(teacher, hash_card(code))],
                "test",
                s.db.clock.now(),
                vec![],
            )
            .await
            .unwrap();
        let (_, r) = card_login(&s, code).await;
        assert_eq!(r.status(), 401, "{d:?}");
        let body = without_tokens(&r.text().await.unwrap());
        let (_, unknown) = card_login(&s, "AAAA-BBBB-CCCC").await;
        assert_eq!(without_tokens(&unknown.text().await.unwrap()), body);
        let failed = audited(&s, "login.failed").await;
        assert!(failed[0].details.contains("not a pupil"), "{failed:?}");
        assert!(s.db.store.sessions_of(teacher).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn every_new_form_checks_its_csrf_token() {
    for d in dialects() {
        let s = server(&d).await;
        let l = logged_in(&s, "101001l1").await;
        for path in [
            "activation",
            "unlock",
            "cards",
            "cards/revoke",
            "grant",
            "revoke-right",
        ] {
            let r = l
                .post(
                    &format!("/staff/101001/{path}"),
                    &[
                        ("user", "101001p1"),
                        ("class", "1A"),
                        ("reason", "x"),
                        ("csrf", "forged"),
                    ],
                )
                .await;
            assert_eq!(r.status(), 403, "{d:?} {path}");
        }
        // Card login: the double-submit cookie must match the form.
        let v = Visitor::new(&s);
        v.get("/login/card").await;
        let r = v
            .post(
                "/login/card",
                &[("code", "AAAA-BBBB-CCCC"), ("csrf", "forged")],
            )
            .await;
        assert_eq!(r.status(), 403);
        assert!(audited(&s, "card.issued").await.is_empty());
        assert!(audited(&s, "account.activation_code_issued")
            .await
            .is_empty());
    }
}

#[tokio::test]
async fn the_card_page_serves_its_scripts_from_tilgang() {
    let s = TestServer::start(&dialects()[0]).await;
    let page = s.get("/login/card").await.text().await.unwrap();
    assert!(page.contains("src=\"/assets/jsQR.js\"") && page.contains("for=\"code\""));
    let js = s.get("/assets/jsQR.js").await;
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let js = js.text().await.unwrap();
    assert!(js.contains("Apache License, Version 2.0") && js.contains("jsQR"));
    assert_eq!(s.get("/assets/card-login.js").await.status(), 200);
}
