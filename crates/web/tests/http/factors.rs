//! Second factors over HTTP, on both dialects: TOTP enrolment, step-up
//! (rotating the session), replay and guessing refused, recovery codes,
//! what needs two factors, open redirects and CSRF refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tilgang_core::identity::session::{hash_id, ACR_ONE_FACTOR, ACR_TWO_FACTOR};
use tilgang_core::identity::totp;
use tilgang_core::Clock;
use tilgang_testkit::{dialects, small_roster, Dialect, TestServer, Visitor, PASSWORD};

const TEACHER: &str = "101001t1";
const SESSION: &str = "__Host-tilgang";

async fn server(d: &Dialect) -> TestServer {
    let s = TestServer::start(d).await;
    s.db.import_json(&small_roster("101001")).await;
    s.set_password(TEACHER).await;
    s
}

async fn logged_in(s: &TestServer) -> Visitor {
    let v = Visitor::new(s);
    assert_eq!(v.login(TEACHER, PASSWORD).await.status(), 303);
    v
}

fn b32decode(s: &str) -> Vec<u8> {
    let (mut buf, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.bytes().filter(|c| *c != b' ') {
        let v = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
            .iter()
            .position(|x| *x == c)
            .unwrap() as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

fn between<'a>(html: &'a str, start: &str, end: &str) -> Vec<&'a str> {
    html.split(start)
        .skip(1)
        .filter_map(|p| p.split(end).next())
        .collect()
}

fn now(s: &TestServer) -> i64 {
    s.db.clock.now().unix_timestamp()
}

/// Enrols an authenticator app; returns the seed and the recovery codes.
async fn enrol_totp(s: &TestServer, v: &Visitor) -> (Vec<u8>, Vec<String>) {
    let page = v.get("/account/factors/totp").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("<svg"), "inline QR code");
    let secret = between(&html, "data-secret=\"", "\"")[0].to_owned();
    let seed = b32decode(&secret);
    assert_eq!(seed.len(), 20);
    let code = totp::code_at(&seed, totp::step_of(now(s)));
    let res = v
        .submit(
            "/account/factors/totp",
            "/account/factors/totp",
            &[("code", &code), ("label", "Min telefon")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let codes: Vec<String> = between(&html, "<li><code>", "</code>")
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(codes.len(), 10, "{html}");
    (seed, codes)
}

async fn session_of(s: &TestServer, v: &Visitor) -> tilgang_core::identity::session::SessionRecord {
    let id = v.cookie(SESSION).unwrap();
    s.db.store.session(&hash_id(&id)).await.unwrap().unwrap()
}

async fn actions(s: &TestServer) -> Vec<(String, String)> {
    s.db.store
        .audit_page(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.details))
        .collect()
}

async fn step_up_totp(v: &Visitor, code: &str, next: &str) -> reqwest::Response {
    v.submit(
        &format!("/login/step-up?next={next}"),
        "/login/step-up/totp",
        &[("code", code), ("next", next)],
    )
    .await
}

#[tokio::test]
async fn totp_enrolment_is_confirmed_with_a_code_and_audited() {
    for d in dialects() {
        let s = server(&d).await;
        let v = logged_in(&s).await;
        let account = v.get("/account").await.text().await.unwrap();
        assert!(
            account.contains("Totrinsbekræftelse") && account.contains("/account/factors/totp")
        );

        // A wrong first code stores nothing and keeps the same seed.
        let html = v.get("/account/factors/totp").await.text().await.unwrap();
        let secret = between(&html, "data-secret=\"", "\"")[0].to_owned();
        let res = v
            .submit(
                "/account/factors/totp",
                "/account/factors/totp",
                &[("code", "000000")],
            )
            .await;
        assert_eq!(res.status(), 422);
        let again = res.text().await.unwrap();
        assert!(
            again.contains(&secret),
            "{d:?}: the same seed is shown again"
        );
        let person = session_of(&s, &v).await.person_id;
        assert!(s.db.store.second_factors(person).await.unwrap().is_empty());

        let (_seed, codes) = enrol_totp(&s, &v).await;
        assert!(codes.iter().all(|c| c.len() == 14));
        let factors = s.db.store.second_factors(person).await.unwrap();
        assert_eq!(factors.len(), 1);
        assert_eq!(factors[0].label, "Min telefon");
        assert_eq!(s.db.store.unused_recovery_codes(person).await.unwrap(), 10);
        let account = v.get("/account").await.text().await.unwrap();
        assert!(
            account.contains("Min telefon") && account.contains("id=\"recovery-left\">10<"),
            "{account}"
        );
        // Enrolling does not raise the session.
        assert_eq!(session_of(&s, &v).await.acr, ACR_ONE_FACTOR);
        let audit = actions(&s).await;
        let added = audit.iter().find(|(a, _)| a == "factor.added").unwrap();
        assert!(added.1.contains("totp"));
        let all = format!("{audit:?}");
        assert!(
            !all.contains(&secret) && !all.contains(&codes[0]),
            "no secrets audited"
        );
    }
}

#[tokio::test]
async fn step_up_raises_the_level_and_rotates_the_session_id() {
    for d in dialects() {
        let s = server(&d).await;
        let v = logged_in(&s).await;
        let (seed, _) = enrol_totp(&s, &v).await;
        let old_id = v.cookie(SESSION).unwrap();

        // The code that confirmed the enrolment cannot step up.
        let used = totp::code_at(&seed, totp::step_of(now(&s)));
        assert_eq!(step_up_totp(&v, &used, "/account").await.status(), 401);

        s.db.clock.advance(time::Duration::seconds(30));
        let code = totp::code_at(&seed, totp::step_of(now(&s)));
        let res = step_up_totp(&v, &code, "/account?tab=x").await;
        assert_eq!(res.status(), 303, "{d:?}");
        assert_eq!(res.headers()["location"], "/account?tab=x");
        let new_id = v.cookie(SESSION).unwrap();
        assert_ne!(new_id, old_id, "a new session id");
        assert!(s
            .db
            .store
            .session(&hash_id(&old_id))
            .await
            .unwrap()
            .is_none());
        let session = session_of(&s, &v).await;
        assert_eq!(session.acr, ACR_TWO_FACTOR);
        assert_eq!(session.amr, ["pwd", "otp"]);
        let audit = actions(&s).await;
        assert!(audit
            .iter()
            .any(|(a, d)| a == "login.step_up" && d.contains("otp")));
        // At two factors the step-up page just goes on.
        let res = v.get("/login/step-up?next=/account").await;
        assert_eq!(res.status(), 303);
    }
}

#[tokio::test]
async fn a_replayed_code_is_refused() {
    for d in dialects() {
        let s = server(&d).await;
        let v = logged_in(&s).await;
        let (seed, _) = enrol_totp(&s, &v).await;
        s.db.clock.advance(time::Duration::seconds(30));
        let code = totp::code_at(&seed, totp::step_of(now(&s)));
        assert_eq!(step_up_totp(&v, &code, "/account").await.status(), 303);

        // Someone who saw the code tries it from another browser.
        let other = logged_in(&s).await;
        let res = step_up_totp(&other, &code, "/account").await;
        assert_eq!(res.status(), 401, "{d:?}");
        assert!(res.text().await.unwrap().contains("step-up-error"));
        assert_eq!(session_of(&s, &other).await.acr, ACR_ONE_FACTOR);
        let audit = actions(&s).await;
        assert!(audit
            .iter()
            .any(|(a, d)| a == "login.step_up_failed" && d.contains("replayed")));
        // The next step's code works.
        s.db.clock.advance(time::Duration::seconds(30));
        let next = totp::code_at(&seed, totp::step_of(now(&s)));
        assert_eq!(step_up_totp(&other, &next, "/account").await.status(), 303);
    }
}

#[tokio::test]
async fn wrong_codes_count_toward_the_lockout() {
    for d in dialects() {
        let s = server(&d).await;
        let v = logged_in(&s).await;
        let (seed, _) = enrol_totp(&s, &v).await;
        s.db.clock.advance(time::Duration::seconds(30));
        for _ in 0..3 {
            assert_eq!(step_up_totp(&v, "123456", "/account").await.status(), 401);
        }
        let account = s.db.store.account(TEACHER).await.unwrap().unwrap();
        assert!(account.locked_until.is_some_and(|t| t > now(&s)), "{d:?}");
        // Locked: even the right code (and the password) are refused.
        let code = totp::code_at(&seed, totp::step_of(now(&s)));
        assert_eq!(step_up_totp(&v, &code, "/account").await.status(), 429);
        assert_eq!(
            Visitor::new(&s).login(TEACHER, PASSWORD).await.status(),
            401
        );
        assert!(actions(&s).await.iter().any(|(a, _)| a == "account.locked"));
        // After the delay, the right code works and clears the failures.
        s.db.clock.advance(time::Duration::seconds(61));
        let code = totp::code_at(&seed, totp::step_of(now(&s)));
        assert_eq!(step_up_totp(&v, &code, "/account").await.status(), 303);
        let account = s.db.store.account(TEACHER).await.unwrap().unwrap();
        assert_eq!(account.failed_logins, 0);
    }
}

#[tokio::test]
async fn a_recovery_code_works_once() {
    for d in dialects() {
        let s = server(&d).await;
        let v = logged_in(&s).await;
        let (_, codes) = enrol_totp(&s, &v).await;
        let typed = codes[3].to_lowercase().replace('-', " ");
        let res = v
            .submit(
                "/login/step-up?next=/account",
                "/login/step-up/recovery",
                &[("code", &typed), ("next", "/account")],
            )
            .await;
        assert_eq!(res.status(), 303, "{d:?}");
        let session = session_of(&s, &v).await;
        assert_eq!(
            (session.acr.as_str(), session.amr.clone()),
            (ACR_TWO_FACTOR, vec!["pwd".to_owned(), "otp".to_owned()])
        );
        assert_eq!(
            s.db.store
                .unused_recovery_codes(session.person_id)
                .await
                .unwrap(),
            9
        );
        assert!(actions(&s)
            .await
            .iter()
            .any(|(a, d)| a == "login.step_up" && d.contains("recovery")));

        let other = logged_in(&s).await;
        let res = other
            .submit(
                "/login/step-up?next=/account",
                "/login/step-up/recovery",
                &[("code", &codes[3]), ("next", "/account")],
            )
            .await;
        assert_eq!(res.status(), 401);
        assert_eq!(session_of(&s, &other).await.acr, ACR_ONE_FACTOR);
    }
}

#[tokio::test]
async fn removing_a_factor_or_adding_another_needs_step_up() {
    for d in dialects() {
        let s = server(&d).await;
        let v = logged_in(&s).await;
        let (seed, _) = enrol_totp(&s, &v).await;
        let person = session_of(&s, &v).await.person_id;
        let id = s.db.store.second_factors(person).await.unwrap()[0]
            .id
            .to_string();

        let res = v
            .submit("/account", "/account/factors/remove", &[("factor", &id)])
            .await;
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()["location"], "/login/step-up?next=%2Faccount");
        assert_eq!(s.db.store.second_factors(person).await.unwrap().len(), 1);
        let res = v.submit("/account", "/account/recovery-codes", &[]).await;
        assert_eq!(res.headers()["location"], "/login/step-up?next=%2Faccount");
        for page in ["/account/factors/totp", "/account/factors/passkey"] {
            let res = v.get(page).await;
            assert_eq!(res.status(), 303, "{page}");
            assert!(res.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/login/step-up?next=%2Faccount%2Ffactors"));
        }

        s.db.clock.advance(time::Duration::seconds(30));
        let code = totp::code_at(&seed, totp::step_of(now(&s)));
        assert_eq!(step_up_totp(&v, &code, "/account").await.status(), 303);
        // New recovery codes, shown once.
        let res = v.submit("/account", "/account/recovery-codes", &[]).await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            between(&res.text().await.unwrap(), "<li><code>", "</code>").len(),
            10
        );
        let res = v
            .submit("/account", "/account/factors/remove", &[("factor", &id)])
            .await;
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()["location"], "/account");
        assert!(
            s.db.store.second_factors(person).await.unwrap().is_empty(),
            "{d:?}"
        );
        assert_eq!(s.db.store.unused_recovery_codes(person).await.unwrap(), 0);
        let audit = actions(&s).await;
        for action in ["factor.removed", "factor.recovery_codes_replaced"] {
            assert!(audit.iter().any(|(a, _)| a == action), "{action}");
        }
    }
}

#[tokio::test]
async fn a_person_without_a_second_factor_is_told_how_to_add_one() {
    let s = server(&dialects()[0]).await;
    let v = logged_in(&s).await;
    let res = v.get("/login/step-up?next=/account").await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("id=\"no-factor\"") && html.contains("/account/factors/totp"),
        "{html}"
    );
    // The first factor may be added from this one-factor session.
    let res = v.get("/account/factors/passkey").await;
    assert_eq!(res.status(), 200);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("data-passkey=\"register\""));
    // Without a session: to the login page.
    let res = Visitor::new(&s).get("/login/step-up?next=/account").await;
    assert_eq!(res.headers()["location"], "/login");
}

#[tokio::test]
async fn step_up_never_redirects_elsewhere() {
    let s = server(&dialects()[0]).await;
    let v = logged_in(&s).await;
    let (seed, _) = enrol_totp(&s, &v).await;
    for next in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "evil",
    ] {
        let q: String = next.bytes().map(|b| format!("%{b:02X}")).collect();
        let res = v.get(&format!("/login/step-up?next={q}")).await;
        assert_eq!(res.status(), 400, "{next}");
    }
    s.db.clock.advance(time::Duration::seconds(30));
    let code = totp::code_at(&seed, totp::step_of(now(&s)));
    let res = v
        .submit(
            "/login/step-up?next=/account",
            "/login/step-up/totp",
            &[("code", &code), ("next", "https://evil.example/")],
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(session_of(&s, &v).await.acr, ACR_ONE_FACTOR, "nothing used");
}

#[tokio::test]
async fn every_new_form_checks_its_csrf_token() {
    let s = server(&dialects()[0]).await;
    let v = logged_in(&s).await;
    let (_, codes) = enrol_totp(&s, &v).await;
    let forged = [
        ("csrf", "forged"),
        ("code", codes[0].as_str()),
        ("next", "/account"),
        ("factor", "1"),
        ("credential", "{}"),
    ];
    for path in [
        "/login/step-up/totp",
        "/login/step-up/recovery",
        "/login/step-up/passkey/begin",
        "/login/step-up/passkey",
        "/account/factors/totp",
        "/account/factors/passkey",
        "/account/factors/passkey/begin",
        "/account/factors/remove",
        "/account/recovery-codes",
        "/login/passkey/begin",
        "/login/passkey",
    ] {
        let res = v.post(path, &forged).await;
        assert_eq!(res.status(), 403, "{path}");
    }
    let session = session_of(&s, &v).await;
    assert_eq!(session.acr, ACR_ONE_FACTOR);
    assert_eq!(
        s.db.store
            .unused_recovery_codes(session.person_id)
            .await
            .unwrap(),
        10
    );
}

#[tokio::test]
async fn the_passkey_script_is_served_for_long_caching() {
    let s = TestServer::start(&dialects()[0]).await;
    let login = s.get("/login").await.text().await.unwrap();
    let src = between(&login, "<script src=\"", "\"")[0].to_owned();
    assert!(src.starts_with("/assets/passkey.js?v="), "{src}");
    assert!(login.contains("Log ind med adgangsnøgle"));
    let res = s.get(&src).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(res.text().await.unwrap().contains("navigator.credentials"));
}

#[tokio::test]
async fn replicas_share_enrolments_and_refuse_each_others_codes() {
    for d in dialects() {
        let s = server(&d).await;
        let (other_base, task) = s.replica().await;
        let mut v = logged_in(&s).await;
        // Begun on one replica…
        let html = v.get("/account/factors/totp").await.text().await.unwrap();
        let seed = b32decode(between(&html, "data-secret=\"", "\"")[0]);
        // …finished on the other.
        v.base = other_base.clone();
        let code = totp::code_at(&seed, totp::step_of(now(&s)));
        let res = v
            .post(
                "/account/factors/totp",
                &[("code", &code), ("csrf", &session_of(&s, &v).await.csrf)],
            )
            .await;
        assert_eq!(res.status(), 200, "{d:?}");
        s.db.clock.advance(time::Duration::seconds(30));
        let code = totp::code_at(&seed, totp::step_of(now(&s)));
        assert_eq!(step_up_totp(&v, &code, "/account").await.status(), 303);
        // The same code on the first replica is a replay.
        let w = logged_in(&s).await;
        assert_eq!(
            step_up_totp(&w, &code, "/account").await.status(),
            401,
            "{d:?}"
        );
        task.abort();
    }
}
