//! A pending authorization request survives the detours a login can take:
//! a forced password change (rotation), and the passkey login.

use super::oidc::{
    auth_path, exchange, location, log_in_at, pending_of, query_of, server, server_with, CB,
};
use tilgang_core::identity::login::LoginConfig;
use tilgang_testkit::{dialects, Visitor, PASSWORD};

#[tokio::test]
async fn a_pending_authorization_survives_a_forced_password_change() {
    for d in dialects() {
        let mut cfg = LoginConfig::default();
        cfg.policy.rotation_days = Some(180);
        let s = server_with(&d, cfg).await;
        s.db.clock.advance(time::Duration::days(181));
        let v = Visitor::new(&s);
        let login = location(&v.get(&auth_path("rp", "")).await);
        let pending = pending_of(&login);
        let change = log_in_at(&v, &login, PASSWORD).await;
        assert_eq!(
            change,
            format!("/account/password?expired=1&pending={pending}"),
            "{d:?}"
        );
        let html = v.get(&change).await.text().await.unwrap();
        assert!(
            html.contains(&format!("name=\"pending\" value=\"{pending}\"")),
            "{html}"
        );
        let new = "grøn elefant danser langsomt tango";
        let res = v
            .submit(
                &change,
                "/account/password",
                &[
                    ("current", PASSWORD),
                    ("password", new),
                    ("repeat", new),
                    ("pending", &pending),
                ],
            )
            .await;
        assert_eq!(res.status(), 303);
        let login = location(&res);
        assert_eq!(login, format!("/login?changed=1&pending={pending}"));
        let back = log_in_at(&v, &login, new).await;
        assert_eq!(back, format!("/oidc/authorize?pending={pending}"));
        let res = v.get(&back).await;
        assert_eq!(res.status(), 303);
        let to_service = location(&res);
        assert!(to_service.starts_with(CB), "{to_service}");
        let code = query_of(&to_service)["code"].clone();
        assert_eq!(exchange(&s, "rp", &code, None).await.0, 200);
    }
}

/// A real passkey ceremony needs an authenticator, which no HTTP test here
/// drives; the unit test `a_passkey_login_continues_a_pending_authorization_
/// and_nothing_else` covers where a successful one goes. Over HTTP: the
/// login page's passkey form carries the request, and a failed passkey
/// login keeps it.
#[tokio::test]
async fn the_passkey_login_form_carries_the_pending_authorization() {
    for d in dialects() {
        let s = server(&d).await;
        let v = Visitor::new(&s);
        let login = location(&v.get(&auth_path("rp", "")).await);
        let pending = pending_of(&login);
        let html = v.get(&login).await.text().await.unwrap();
        let passkey_form = html.split("action=\"/login/passkey\"").nth(1).unwrap();
        let passkey_form = passkey_form.split("</form>").next().unwrap();
        assert!(
            passkey_form.contains(&format!("name=\"pending\" value=\"{pending}\"")),
            "{d:?} {passkey_form}"
        );
        let res = v
            .submit(
                &login,
                "/login/passkey",
                &[("credential", "{}"), ("pending", &pending)],
            )
            .await;
        assert_eq!(res.status(), 401);
        let html = res.text().await.unwrap();
        assert!(html.contains(&format!("name=\"pending\" value=\"{pending}\"")));
    }
}
