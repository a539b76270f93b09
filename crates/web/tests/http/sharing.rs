//! Sharing on the OIDC paths, on both dialects: claims follow the
//! institution's approval and drop to the minimal package the moment it is
//! revoked; a blocked service gets a clear page and no code, and its
//! tokens stop working; a service that needs a licence admits only the
//! licensed, and tells the others whom to ask.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::oidc::{
    auth_path, code_for, exchange, id_token_claims, location, server, userinfo, TEACHER,
};
use tilgang_core::oidc::Package;
use tilgang_core::sharing::agreement::{
    self, Addressee, Decider, Delivery, Filters, RequestSpec, ServiceLink,
};
use tilgang_core::sharing::licence::{self, Grantor, LicenceScope, NewLicence};
use tilgang_core::Clock;
use tilgang_testkit::{dialects, TestServer, Visitor, PASSWORD};

const OP: &str = "cli";

/// The institution approves `package` for `client` (an operator decides).
pub(crate) async fn approve(s: &TestServer, client: &str, institution: &str, package: Package) {
    let (store, clock) = (&*s.db.store, &*s.db.clock);
    let spec = RequestSpec {
        purpose: "Teaching".into(),
        package,
        delivery: Delivery::Both,
        filters: Filters::default(),
        sub_processors: vec![],
        locations: vec!["DK".into()],
        retention: "6 months after the roster stops delivering a user".into(),
        dpa_reference: "DPA-1".into(),
    };
    let to = Addressee::Institution(institution.into());
    let sent = agreement::request(store, clock, OP, client, &spec, &to)
        .await
        .unwrap();
    agreement::approve(store, clock, Decider::Operator(OP), sent[0].1)
        .await
        .unwrap();
}

/// Logs the teacher in through the authorization request and returns the
/// final response (a redirect to the service, or a page).
pub(crate) async fn login_to(
    s: &TestServer,
    v: &Visitor,
    client: &str,
    lang: &str,
) -> reqwest::Response {
    let path = format!("{}&ui_locales={lang}", auth_path(client, ""));
    let res = v.get(&path).await;
    assert_eq!(res.status(), 303);
    let loc = location(&res);
    assert!(loc.starts_with("/login?"), "{loc}");
    let pending = url::Url::parse(&format!("http://x{loc}"))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "pending")
        .unwrap()
        .1
        .into_owned();
    let res = v
        .submit(
            &loc,
            "/login",
            &[
                ("login", TEACHER),
                ("password", PASSWORD),
                ("pending", &pending),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let _ = s;
    v.get(&location(&res)).await
}

#[tokio::test]
async fn claims_drop_to_minimal_the_moment_the_approval_is_revoked() {
    for d in dialects() {
        let s = server(&d).await;
        let v = Visitor::new(&s);
        let code = code_for(&s, &v, "med", "").await;
        let body = exchange(&s, "med", &code, None).await.1;
        let claims = id_token_claims(body["id_token"].as_str().unwrap());
        assert_eq!(claims["email"], "kn@skole.dk", "{d:?}");
        let token = body["access_token"].as_str().unwrap().to_owned();
        assert_eq!(userinfo(&s, &token).await.1["name"], "Karen Nielsen");

        let (store, clock) = (&*s.db.store, &*s.db.clock);
        assert!(agreement::revoke(
            store,
            clock,
            Decider::Operator(OP),
            "med",
            "101001",
            "ended"
        )
        .await
        .unwrap());
        // The same access token, at once: minimal package only.
        let (status, info) = userinfo(&s, &token).await;
        assert_eq!(status, 200);
        assert!(
            info.get("name").is_none() && info.get("email").is_none(),
            "{info}"
        );
        assert_ne!(info["sub"], TEACHER, "a pairwise subject");
        assert_eq!(info["institutions"][0]["number"], "101001");

        // A service never approved gets the minimal package even though it
        // registered a larger one.
        let mut fresh = s.db.store.service("rp").await.unwrap().unwrap();
        fresh.client_id = "never".into();
        s.db.store
            .add_service(
                &fresh,
                clock.now(),
                tilgang_core::audit::NewEvent::new("test", "oidc.service.added"),
            )
            .await
            .unwrap();
        let code = code_for(&s, &v, "never", "").await;
        let body = exchange(&s, "never", &code, None).await.1;
        let claims = id_token_claims(body["id_token"].as_str().unwrap());
        assert!(claims.get("name").is_none(), "{claims}");
        assert_ne!(claims["sub"], TEACHER, "{claims}");
        // Introspection names the person by the same pairwise subject.
        let i: serde_json::Value = s
            .http
            .post(format!("{}/oidc/introspect", s.base))
            .basic_auth("never", Some(crate::oidc::SECRET))
            .form(&[("token", body["access_token"].as_str().unwrap())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(i["active"], true);
        assert_eq!(i["sub"], claims["sub"]);
    }
}

#[tokio::test]
async fn a_blocked_service_gets_a_clear_page_no_code_and_its_tokens_stop() {
    for d in dialects() {
        let s = server(&d).await;
        let v = Visitor::new(&s);
        let code = code_for(&s, &v, "rp", "").await;
        let body = exchange(&s, "rp", &code, None).await.1;
        let token = body["access_token"].as_str().unwrap().to_owned();
        let (store, clock) = (&*s.db.store, &*s.db.clock);
        agreement::set_block(
            store,
            clock,
            Decider::Operator(OP),
            "rp",
            "101001",
            Some("not for our pupils"),
        )
        .await
        .unwrap();
        assert_eq!(userinfo(&s, &token).await.0, 401, "{d:?}");

        let fresh = Visitor::new(&s);
        let res = login_to(&s, &fresh, "rp", "en").await;
        assert_eq!(res.status(), 403);
        assert!(res.headers().get("location").is_none());
        let html = res.text().await.unwrap();
        assert!(
            html.contains("Your school has blocked this service"),
            "{html}"
        );
        assert!(html.contains("Service rp") && html.contains("Skole 101001"));
        let res = login_to(&s, &Visitor::new(&s), "rp", "da").await;
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("Din skole har blokeret denne tjeneste"));

        agreement::set_block(store, clock, Decider::Operator(OP), "rp", "101001", None)
            .await
            .unwrap();
        let res = login_to(&s, &Visitor::new(&s), "rp", "en").await;
        assert_eq!(res.status(), 303);
        assert!(location(&res).contains("code="));
    }
}

/// Marks `client` as needing a licence (an operator links it).
pub(crate) async fn require_licence(s: &TestServer, client: &str) {
    let (store, clock) = (&*s.db.store, &*s.db.clock);
    let link = ServiceLink {
        client_id: client.into(),
        provider_id: None,
        licence_required: true,
    };
    agreement::link_service(store, clock, OP, &link)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_service_that_needs_a_licence_admits_only_the_licensed() {
    for d in dialects() {
        let s = server(&d).await;
        let (store, clock) = (&*s.db.store, &*s.db.clock);
        require_licence(&s, "rp").await;
        let res = login_to(&s, &Visitor::new(&s), "rp", "en").await;
        assert_eq!(res.status(), 403, "{d:?}");
        let html = res.text().await.unwrap();
        assert!(
            html.contains("You have no licence for this service"),
            "{html}"
        );
        assert!(html.contains("Service rp"));
        assert!(
            html.contains("administrator (school leader or management) at Skole 101001"),
            "{html}"
        );
        let res = login_to(&s, &Visitor::new(&s), "rp", "da").await;
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("Du har ingen licens til denne tjeneste"));

        // A licence for the teacher's class admits them.
        let today = clock.now().date();
        let ids = licence::grant(
            store,
            clock,
            OP,
            &Grantor::Institution,
            vec![NewLicence {
                client_id: "rp".into(),
                institution: "101001".into(),
                scope: LicenceScope::Group("1A".into()),
                valid_from: today,
                valid_to: None,
                granted_by: OP.into(),
                consent: None,
            }],
        )
        .await
        .unwrap();
        let res = login_to(&s, &Visitor::new(&s), "rp", "en").await;
        assert_eq!(res.status(), 303);
        assert!(location(&res).contains("code="));

        licence::withdraw(store, clock, OP, ids[0]).await.unwrap();
        let res = login_to(&s, &Visitor::new(&s), "rp", "en").await;
        assert_eq!(res.status(), 403);
    }
}
