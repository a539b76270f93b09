//! "Mine data" through the real server: what a person sees about
//! themselves and their children, which services received it, the JSON
//! download, and that each view is audited.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use tilgang_core::audit::actions;
use tilgang_core::oidc::{hash_token, Package, Service};
use tilgang_testkit::{dialects, small_roster, Dialect, TestServer, Visitor, PASSWORD};

const CB: &str = "https://lms.example/cb";
const SECRET: &str = "the-learning-platform-secret-0123456789abcdef";

/// 101001 with pupil p1 (mother m1 has custody) and p2 (m1 registered
/// without custody or access), a learning platform `lms` (small package),
/// and passwords for p1, p2 and m1.
async fn server(d: &Dialect) -> TestServer {
    let s = TestServer::start(d).await;
    let mut doc = small_roster("101001");
    doc["contacts"].as_array_mut().unwrap().push(serde_json::json!(
        {"pupil": "101001p2", "contact": "101001m1", "relation": "Andet", "custody": false, "access_level": 0}
    ));
    s.db.import_json(&doc).await;
    for u in ["101001p1", "101001p2", "101001m1"] {
        s.set_password(u).await;
    }
    let service = Service {
        client_id: "lms".into(),
        name: "Læringsportalen".into(),
        secret_hash: Some(hash_token(SECRET)),
        jwks_uri: None,
        jwks: None,
        redirect_uris: vec![CB.into()],
        post_logout_redirect_uris: vec![],
        grants: vec!["authorization_code".into()],
        package: Package::Small,
        min_acr: "urn:tilgang:loa:1".into(),
        public: false,
        id_token_alg: "RS256".into(),
        pairwise_salt: [7; 32],
        created_at: 0,
    };
    let ev = tilgang_core::audit::NewEvent::new("test", actions::OIDC_SERVICE_ADDED);
    s.db.store
        .add_service(&service, s.db.clock.now(), ev)
        .await
        .unwrap();
    // The school approved the small package: that is what the events say
    // the platform received.
    crate::sharing::approve(&s, "lms", "101001", Package::Small).await;
    s
}

use tilgang_core::Clock;

async fn logged_in(s: &TestServer, user: &str) -> Visitor {
    let v = Visitor::new(s);
    assert_eq!(v.login(user, PASSWORD).await.status(), 303, "{user}");
    v
}

/// `user` signs in to the learning platform; the platform redeems the code.
async fn sign_in_to_lms(s: &TestServer, user: &str) {
    let v = logged_in(s, user).await;
    let cb: String = url::form_urlencoded::byte_serialize(CB.as_bytes()).collect();
    let res = v
        .get(&format!(
            "/oidc/authorize?response_type=code&client_id=lms&redirect_uri={cb}&scope=openid%20profile&state=s&nonce=n"
        ))
        .await;
    assert_eq!(res.status(), 303);
    let loc = res.headers()["location"].to_str().unwrap().to_owned();
    let code = url::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let res = s
        .http
        .post(format!("{}/oidc/token", s.base))
        .basic_auth("lms", Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

#[tokio::test]
async fn a_parent_sees_which_service_received_their_childs_data_and_when() {
    for d in dialects() {
        let s = server(&d).await;
        sign_in_to_lms(&s, "101001p1").await;
        let mother = logged_in(&s, "101001m1").await;
        let account = mother.get("/account").await.text().await.unwrap();
        assert!(
            account.contains("href=\"/account/data"),
            "linked from the account page"
        );
        let html = mother.get("/account/data").await.text().await.unwrap();
        assert!(
            html.contains("<html lang=\"da\">") && html.contains("Dine data"),
            "{d:?}"
        );
        // Her own data, then her child's, with the platform that got it.
        assert!(html.contains("Om dit barn Alma Jensen"), "{html}");
        assert!(html.contains("Læringsportalen"));
        assert!(html.contains("Tjenesten fik oplysningerne"));
        assert!(
            html.contains("Navn, brugernavn, skole, klasser og rolle"),
            "the package, in words"
        );
        let today = s.db.clock.now().date().to_string();
        assert!(html.contains(&today), "when");
        // Under which approval: the school's, version 1, from today.
        assert!(
            html.contains(&format!("godkendte det (version 1, {today})")),
            "the approval it happened under: {html}"
        );
        // No custody and no access: not shown, only named as a relation.
        assert!(!html.contains("Om dit barn Bo Hansen"), "{d:?}");
        // The CPR number is never shown.
        assert!(!html.contains("3002201234") && !html.contains("300220-1234"));
        let en = mother
            .get("/account/data?lang=en")
            .await
            .text()
            .await
            .unwrap();
        assert!(
            en.contains("About your child Alma Jensen")
                && en.contains("The service received the information")
        );

        // Each view is audited, naming the mother and the child shown.
        let views: Vec<_> =
            s.db.store
                .audit_page(0, 100_000)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.action == actions::MYDATA_VIEWED)
                .collect();
        assert_eq!(views.len(), 2, "{d:?}");
        let m1 =
            s.db.store
                .account("101001m1")
                .await
                .unwrap()
                .unwrap()
                .person_id;
        let p1 =
            s.db.store
                .account("101001p1")
                .await
                .unwrap()
                .unwrap()
                .person_id;
        assert_eq!(views[0].subjects, format!("[{m1},{p1}]"));
    }
}

#[tokio::test]
async fn a_pupil_sees_their_own_data_and_contact_persons_and_can_download_it() {
    for d in dialects() {
        let s = server(&d).await;
        sign_in_to_lms(&s, "101001p1").await;
        let pupil = logged_in(&s, "101001p1").await;
        let html = pupil
            .get("/account/data?lang=en")
            .await
            .text()
            .await
            .unwrap();
        assert!(html.contains("About you"), "{d:?}");
        assert!(
            html.contains("Mette Jensen (Mor"),
            "her contact person: {html}"
        );
        assert!(html.contains("1.A"), "her class");
        assert!(html.contains("We have it. It is stored encrypted"));
        assert!(!html.contains("About your child"));

        let res = pupil.get("/account/data.json").await;
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment"));
        let data: Value = res.json().await.unwrap();
        assert_eq!(data["you"]["person"]["user_id"], "101001p1");
        assert_eq!(data["you"]["person"]["has_cpr"], true);
        assert!(
            data.to_string().find("3002201234").is_none(),
            "no CPR in the file"
        );
        let got = data["you"]["received_by"].as_array().unwrap();
        assert!(got.iter().any(|r| r["client_id"] == "lms"
            && r["action"] == "oidc.token.issued"
            && r["package"] == "small"
            && r["approvals"][0]["version"] == 1
            && r["approvals"][0]["institution_number"] == "101001"));
        assert_eq!(data["services_available"][0]["name"], "Læringsportalen");
        let views: Vec<_> =
            s.db.store
                .audit_page(0, 100_000)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.action == actions::MYDATA_VIEWED)
                .map(|e| e.details)
                .collect();
        assert_eq!(
            views,
            vec!["{\"format\":\"page\"}", "{\"format\":\"json\"}"],
            "{d:?}"
        );
        // Without a session: to the login page.
        assert_eq!(
            Visitor::new(&s).get("/account/data.json").await.status(),
            303
        );
    }
}
