//! The real server, in-process: health, readiness, metrics and pages; the
//! second-factor and staff modules. One test binary for the crate (STYLE.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod audit;
mod factors;
mod former;
mod licences;
mod municipality;
mod mydata;
mod oidc;
mod oidc_login;
mod oidc_roles;
mod oidc_tokens;
mod portal;
mod security;
mod sharing;
mod sharing_pages;
mod staff;

use tilgang_testkit::{dialects, TestServer, Visitor};

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    for d in dialects() {
        let s = TestServer::start(&d).await;
        let r = s.get("/healthz").await;
        assert_eq!(r.status(), 200);
        let r = s.get("/readyz").await;
        assert_eq!(r.status(), 200, "{d:?}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["status"], "ready");
        let r = s.get("/metrics").await;
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(
            text.contains("# TYPE tilgang_http_requests_total counter"),
            "{text}"
        );
        assert!(text.contains("tilgang_persons 0"), "{text}");
    }
}

#[tokio::test]
async fn the_start_page_is_danish_by_default_and_english_on_request() {
    for d in dialects() {
        let s = TestServer::start(&d).await;
        let da = s.get("/").await.text().await.unwrap();
        assert!(
            da.contains("<html lang=\"da\">") && da.contains("Institutioner"),
            "{da}"
        );
        let en = s
            .http
            .get(format!("{}/", s.base))
            .header("accept-language", "en-GB,en;q=0.9")
            .send()
            .await
            .unwrap();
        let en = en.text().await.unwrap();
        assert!(
            en.contains("<html lang=\"en\">") && en.contains("Institutions"),
            "{en}"
        );
        let q = s.get("/?lang=en").await.text().await.unwrap();
        assert!(q.contains("Institutions"));
    }
}

#[tokio::test]
async fn an_unknown_page_is_a_helpful_404() {
    let s = TestServer::start(&dialects()[0]).await;
    let r = s.get("/no/such/page").await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("Til forsiden"));
}

mod login {
    use super::*;
    use reqwest::header::{COOKIE, SET_COOKIE};
    use reqwest::{redirect, Client, StatusCode};
    use tilgang_core::identity::login::{self, SetPassword};
    use tilgang_testkit::{small_roster, PASSWORD};

    fn client() -> Client {
        Client::builder()
            .redirect(redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// A server with institution 101001 imported and a password for the
    /// teacher `101001t1`.
    async fn server(d: &tilgang_testkit::Dialect) -> TestServer {
        let s = TestServer::start(d).await;
        s.db.import_json(&small_roster("101001")).await;
        let account = s.db.store.account("101001t1").await.unwrap().unwrap();
        let cfg = Default::default();
        let r = login::set_password(&*s.db.store, &*s.db.clock, &cfg, &account, PASSWORD, "test")
            .await
            .unwrap();
        assert!(matches!(r, SetPassword::Done), "{r:?}");
        s
    }

    fn cookie_value(res: &reqwest::Response, name: &str) -> Option<String> {
        res.headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(|v| {
                v[name.len() + 1..]
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
    }

    /// Fetches the login form and posts it; returns the response.
    async fn try_login(
        s: &TestServer,
        login: &str,
        password: &str,
        extra_cookie: Option<&str>,
    ) -> reqwest::Response {
        let c = client();
        let form = c.get(format!("{}/login", s.base)).send().await.unwrap();
        let csrf = cookie_value(&form, "__Host-tilgang-csrf").unwrap();
        let mut cookie = format!("__Host-tilgang-csrf={csrf}");
        if let Some(extra) = extra_cookie {
            cookie.push_str("; ");
            cookie.push_str(extra);
        }
        c.post(format!("{}/login", s.base))
            .header(COOKIE, cookie)
            .form(&[("login", login), ("password", password), ("csrf", &csrf)])
            .send()
            .await
            .unwrap()
    }

    fn without_tokens(body: &str) -> String {
        body.lines()
            .filter(|l| !l.contains("name=\"csrf\"") && !l.contains("name=\"login\""))
            .collect()
    }

    #[tokio::test]
    async fn a_refusal_never_tells_whether_the_name_exists() {
        for d in dialects() {
            let s = server(&d).await;
            let known = try_login(&s, "101001t1", "wrong password here", None).await;
            let unknown = try_login(&s, "nobody", "wrong password here", None).await;
            assert_eq!(known.status(), StatusCode::UNAUTHORIZED, "{d:?}");
            assert_eq!(unknown.status(), known.status());
            let (a, b) = (known.text().await.unwrap(), unknown.text().await.unwrap());
            assert_eq!(without_tokens(&a), without_tokens(&b));
        }
    }

    #[tokio::test]
    async fn three_failures_lock_the_account_for_a_minute() {
        for d in dialects() {
            let s = server(&d).await;
            for _ in 0..3 {
                assert_eq!(
                    try_login(&s, "101001t1", "not it at all", None)
                        .await
                        .status(),
                    StatusCode::UNAUTHORIZED
                );
            }
            let locked = try_login(&s, "101001t1", PASSWORD, None).await;
            assert_eq!(
                locked.status(),
                StatusCode::UNAUTHORIZED,
                "{d:?}: locked even with the right password"
            );
            s.db.clock.advance(time::Duration::seconds(61));
            let ok = try_login(&s, "101001t1", PASSWORD, None).await;
            assert_eq!(ok.status(), StatusCode::SEE_OTHER, "{d:?}");
        }
    }

    #[tokio::test]
    async fn a_login_sets_a_fresh_strict_session_cookie() {
        for d in dialects() {
            let s = server(&d).await;
            let res = try_login(
                &s,
                "101001t1",
                PASSWORD,
                Some("__Host-tilgang=planted-by-attacker"),
            )
            .await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
            let header = res
                .headers()
                .get_all(SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find(|v| v.starts_with("__Host-tilgang="))
                .unwrap()
                .to_owned();
            for flag in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
                assert!(header.contains(flag), "{header}");
            }
            let id = cookie_value(&res, "__Host-tilgang").unwrap();
            assert_ne!(id, "planted-by-attacker");
            assert!(id.len() >= 43, "at least 128 bits");

            // The session works, then logout ends it.
            let c = client();
            let account = c
                .get(format!("{}/account", s.base))
                .header(COOKIE, format!("__Host-tilgang={id}"))
                .send()
                .await
                .unwrap();
            assert_eq!(account.status(), StatusCode::OK);
            let page = account.text().await.unwrap();
            assert!(page.contains("Karen"), "{page}");
            let csrf = page
                .split("name=\"csrf\" value=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_owned();
            let no_token = c
                .post(format!("{}/logout", s.base))
                .header(COOKIE, format!("__Host-tilgang={id}"))
                .form(&[("csrf", "")])
                .send()
                .await
                .unwrap();
            assert_eq!(
                no_token.status(),
                StatusCode::FORBIDDEN,
                "a form without its CSRF token is refused"
            );
            let out = c
                .post(format!("{}/logout", s.base))
                .header(COOKIE, format!("__Host-tilgang={id}"))
                .form(&[("csrf", csrf.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(out.status(), StatusCode::SEE_OTHER);
            let after = c
                .get(format!("{}/account", s.base))
                .header(COOKIE, format!("__Host-tilgang={id}"))
                .send()
                .await
                .unwrap();
            assert_eq!(
                after.status(),
                StatusCode::SEE_OTHER,
                "{d:?}: the session is gone"
            );
        }
    }

    #[tokio::test]
    async fn a_login_form_without_its_csrf_token_is_refused() {
        let s = server(&dialects()[0]).await;
        let res = client()
            .post(format!("{}/login", s.base))
            .form(&[
                ("login", "101001t1"),
                ("password", PASSWORD),
                ("csrf", "guess"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn an_activation_code_sets_the_first_password() {
        for d in dialects() {
            let s = TestServer::start(&d).await;
            s.db.import_json(&small_roster("101001")).await;
            let account = s.db.store.account("101001m1").await.unwrap().unwrap();
            let code = login::issue_activation(
                &*s.db.store,
                &*s.db.clock,
                &Default::default(),
                &account,
                "test",
            )
            .await
            .unwrap();
            let c = client();
            let form = c.get(format!("{}/activate", s.base)).send().await.unwrap();
            let csrf = cookie_value(&form, "__Host-tilgang-csrf").unwrap();
            let post = |pw: &'static str, code: String| {
                let c = c.clone();
                let (base, csrf) = (s.base.clone(), csrf.clone());
                async move {
                    c.post(format!("{base}/activate"))
                        .header(COOKIE, format!("__Host-tilgang-csrf={csrf}"))
                        .form(&[
                            ("code", code.as_str()),
                            ("password", pw),
                            ("repeat", pw),
                            ("csrf", &csrf),
                        ])
                        .send()
                        .await
                        .unwrap()
                }
            };
            let weak = post("password1", code.clone()).await;
            assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
            assert!(weak.text().await.unwrap().contains("role=\"alert\""));
            let done = post(PASSWORD, code.to_lowercase()).await;
            assert_eq!(done.status(), StatusCode::SEE_OTHER, "{d:?}");
            let again = post(PASSWORD, code).await;
            assert_eq!(
                again.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "a code works once"
            );
            assert_eq!(
                try_login(&s, "101001m1", PASSWORD, None).await.status(),
                StatusCode::SEE_OTHER
            );
        }
    }

    #[tokio::test]
    async fn a_person_ends_a_session_left_open_elsewhere() {
        for d in dialects() {
            let s = server(&d).await;
            let id_of = |res: &reqwest::Response| cookie_value(res, "__Host-tilgang").unwrap();
            let phone = id_of(&try_login(&s, "101001t1", PASSWORD, None).await);
            let laptop = id_of(&try_login(&s, "101001t1", PASSWORD, None).await);
            let c = client();
            let get = |id: String| {
                let (c, base) = (c.clone(), s.base.clone());
                async move {
                    c.get(format!("{base}/account"))
                        .header(COOKIE, format!("__Host-tilgang={id}"))
                        .send()
                        .await
                        .unwrap()
                }
            };
            let page = get(laptop.clone()).await.text().await.unwrap();
            let field = |name: &str| {
                page.split(&format!("name=\"{name}\" value=\""))
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
                    .to_owned()
            };
            let (csrf, other) = (field("csrf"), field("session"));
            let res = c
                .post(format!("{}/account/sessions/end", s.base))
                .header(COOKIE, format!("__Host-tilgang={laptop}"))
                .form(&[("csrf", csrf.as_str()), ("session", other.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::SEE_OTHER);
            assert_eq!(
                get(phone).await.status(),
                StatusCode::SEE_OTHER,
                "{d:?}: the phone's session is over"
            );
            assert_eq!(
                get(laptop).await.status(),
                StatusCode::OK,
                "{d:?}: this one goes on"
            );
        }
    }

    #[tokio::test]
    async fn a_parent_sees_their_child_on_the_account_page() {
        for d in dialects() {
            let s = server(&d).await;
            s.set_password("101001m1").await;
            let v = Visitor::new(&s);
            assert_eq!(v.login("101001m1", PASSWORD).await.status(), 303);
            let page = v.get("/account").await.text().await.unwrap();
            let children = page
                .split("<ul id=\"children\">")
                .nth(1)
                .unwrap()
                .split("</ul>")
                .next()
                .unwrap();
            assert!(
                children.contains("Alma Jensen") && children.contains("Skole 101001"),
                "{d:?}: {children}"
            );
            assert!(!children.contains("Bo Hansen"), "only their own child");
        }
    }

    #[tokio::test]
    async fn changing_ones_password_needs_the_current_one_and_ends_every_session() {
        for d in dialects() {
            let s = server(&d).await;
            let (v, phone) = (Visitor::new(&s), Visitor::new(&s));
            assert_eq!(v.login("101001t1", PASSWORD).await.status(), 303);
            assert_eq!(phone.login("101001t1", PASSWORD).await.status(), 303);
            let new = "tre glade elefanter cykler til Skagen";
            let me = &v;
            let change = |current: &'static str, password: &'static str| async move {
                me.submit(
                    "/account/password",
                    "/account/password",
                    &[
                        ("current", current),
                        ("password", password),
                        ("repeat", password),
                    ],
                )
                .await
            };
            let wrong = change("not my password", new).await;
            assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY, "{d:?}");
            assert!(wrong
                .text()
                .await
                .unwrap()
                .contains("nuværende adgangskode er forkert"));
            let weak = change(PASSWORD, "password1").await;
            assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
            let forged = v
                .post(
                    "/account/password",
                    &[
                        ("csrf", "forged"),
                        ("current", PASSWORD),
                        ("password", new),
                        ("repeat", new),
                    ],
                )
                .await;
            assert_eq!(forged.status(), StatusCode::FORBIDDEN);
            let done = change(PASSWORD, new).await;
            assert_eq!(done.status(), StatusCode::SEE_OTHER, "{d:?}");
            assert_eq!(done.headers()["location"], "/login?changed=1");
            for who in [&v, &phone] {
                assert_eq!(who.get("/account").await.status(), StatusCode::SEE_OTHER);
            }
            let again = Visitor::new(&s);
            assert_eq!(again.login("101001t1", PASSWORD).await.status(), 401);
            assert_eq!(again.login("101001t1", new).await.status(), 303);
            // The wrong current password counted as a failure, and was audited.
            let events = s.db.store.audit_page(0, 1000).await.unwrap();
            assert!(events.iter().any(
                |e| e.action == "login.failed" && e.details.contains("wrong current password")
            ));
            assert!(events.iter().any(|e| e.action == "account.password_set"));
        }
    }

    #[tokio::test]
    async fn a_password_older_than_the_rotation_interval_must_be_changed_first() {
        for d in dialects() {
            let mut cfg = login::LoginConfig::default();
            cfg.policy.rotation_days = Some(180);
            let s = TestServer::start_with(&d, cfg).await;
            s.db.import_json(&small_roster("101001")).await;
            s.set_password("101001t1").await;
            let v = Visitor::new(&s);
            let fresh = v.login("101001t1", PASSWORD).await;
            assert_eq!(fresh.headers()["location"], "/account", "{d:?}");
            s.db.clock.advance(time::Duration::days(181));
            let old = v.login("101001t1", PASSWORD).await;
            assert_eq!(
                old.headers()["location"],
                "/account/password?expired=1",
                "{d:?}"
            );
            let page = v
                .get("/account/password?expired=1")
                .await
                .text()
                .await
                .unwrap();
            assert!(page.contains("nu er det tid"), "{page}");
        }
    }
}
