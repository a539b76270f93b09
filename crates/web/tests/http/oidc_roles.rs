//! Several roles over HTTP: a person who is a teacher at one school and a
//! parent at another is asked once per service which role they sign in
//! as (unless the request names it), the choice is remembered in the
//! database and can be changed on the account page, and it narrows the
//! claims.

use super::oidc::{
    auth_path, exchange, id_token_claims, location, log_in_at, pending_of, query_of, server,
    userinfo, CB, TEACHER,
};
use serde_json::{json, Value};
use tilgang_testkit::{dialects, small_roster, TestServer, Visitor, PASSWORD};

/// The teacher of school 101001 is also the mother of a pupil at 202002.
async fn teacher_and_parent(s: &TestServer) {
    let mut other = small_roster("202002");
    other["persons"].as_array_mut().unwrap().push(json!({
        "user_id": TEACHER, "given_name": "Karen", "family_name": "Nielsen", "email": "kn@skole.dk"
    }));
    other["contacts"].as_array_mut().unwrap().push(json!({
        "pupil": "202002p1", "contact": TEACHER, "relation": "Mor", "custody": true, "access_level": 1
    }));
    s.db.import_json(&other).await;
}

/// Logs in for the authorization request at `path`; returns the answer
/// after the login (the role page, or the redirect to the service).
async fn login_for(v: &Visitor, path: &str) -> (reqwest::Response, String) {
    let res = v.get(path).await;
    assert_eq!(res.status(), 303);
    let back = log_in_at(v, &location(&res), PASSWORD).await;
    (v.get(&back).await, back)
}

async fn claims_of(s: &TestServer, client: &str, back: &str) -> Value {
    let code = query_of(back)["code"].clone();
    let body = exchange(s, client, &code, None).await.1;
    id_token_claims(body["id_token"].as_str().unwrap())
}

#[tokio::test]
async fn a_person_with_several_roles_chooses_once_per_service_and_the_choice_narrows_the_claims() {
    for d in dialects() {
        let s = server(&d).await;
        teacher_and_parent(&s).await;
        let v = Visitor::new(&s);
        let (res, page) = login_for(&v, &auth_path("rp", "")).await;
        assert_eq!(res.status(), 200, "{d:?}");
        let html = res.text().await.unwrap();
        assert!(
            html.contains("Hvilken rolle logger du ind som?"),
            "Danish by default: {html}"
        );
        assert!(html.contains(r#"<label for="role-1">"#), "labelled choices");
        assert!(
            html.contains("value=\"101001/Medarbejder\"")
                && html.contains("value=\"202002/Kontaktperson\"")
        );
        assert!(!html.contains("<script"), "works without JavaScript");
        let pending = pending_of(&page);
        let res = v
            .submit(
                &page,
                "/oidc/role",
                &[("pending", &pending), ("role", "202002/Kontaktperson")],
            )
            .await;
        assert_eq!(res.status(), 303);
        let res = v.get(&location(&res)).await;
        assert_eq!(res.status(), 303);
        let back = location(&res);
        assert!(back.starts_with(CB), "{back}");
        let claims = claims_of(&s, "rp", &back).await;
        assert_eq!(claims["actor_groups"], json!(["Kontaktperson"]), "{d:?}");
        assert_eq!(
            claims["institutions"],
            json!([{"number": "202002", "name": "Skole 202002", "roles": ["Kontaktperson"]}])
        );
        assert_eq!(claims["groups"], json!([]));
        // Remembered: the next sign-in to the same service asks nothing.
        let res = v.get(&auth_path("rp", "")).await;
        assert_eq!(res.status(), 303);
        let back = location(&res);
        let code = query_of(&back)["code"].clone();
        let body = exchange(&s, "rp", &code, None).await.1;
        let (_, info) = userinfo(&s, body["access_token"].as_str().unwrap()).await;
        assert_eq!(
            info["actor_groups"],
            json!(["Kontaktperson"]),
            "userinfo too"
        );
        // Another service asks again; prompt=none cannot ask.
        let q = query_of(&location(&v.get(&auth_path("med", "&prompt=none")).await));
        assert_eq!(q["error"], "account_selection_required");
        assert_eq!(v.get(&auth_path("med", "")).await.status(), 200);
        // The choice is in the database, with its audit event.
        let person =
            s.db.store
                .account(TEACHER)
                .await
                .unwrap()
                .unwrap()
                .person_id;
        assert_eq!(
            s.db.store
                .role_choice(person, "rp")
                .await
                .unwrap()
                .as_deref(),
            Some("202002/Kontaktperson")
        );
        let actions: Vec<String> =
            s.db.store
                .audit_page(0, 10_000)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.action)
                .collect();
        assert!(actions.contains(&"oidc.role.chosen".to_owned()));
        // A role that is not the person's is refused.
        let (res, page) = (v.get(&auth_path("med", "")).await, auth_path("med", ""));
        let html = res.text().await.unwrap();
        let pending = html
            .split("name=\"pending\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let res = v
            .submit(
                &page,
                "/oidc/role",
                &[("pending", &pending), ("role", "999999/Elev")],
            )
            .await;
        assert_eq!(res.status(), 400);
    }
}

#[tokio::test]
async fn the_request_can_name_the_role_and_one_role_asks_nothing() {
    for d in dialects() {
        let s = server(&d).await;
        let v = Visitor::new(&s);
        // One role: no page (the existing flows cover this); two roles:
        let (res, _) = login_for(&v, &auth_path("rp", "")).await;
        assert_eq!(res.status(), 303, "{d:?}: a single role is not asked about");
        teacher_and_parent(&s).await;
        for (extra, actor) in [
            ("&login_hint=101001t1%40101001", "Medarbejder"),
            ("&acr_values=urn%3Atilgang%3Arole%3A202002%2FKontaktperson", "Kontaktperson"),
            (
                "&claims=%7B%22id_token%22%3A%7B%22actor_groups%22%3A%7B%22value%22%3A%22Medarbejder%22%7D%7D%7D",
                "Medarbejder",
            ),
        ] {
            let res = v.get(&auth_path("rp", extra)).await;
            assert_eq!(res.status(), 303, "{extra}: no role page");
            let claims = claims_of(&s, "rp", &location(&res)).await;
            assert_eq!(claims["actor_groups"], json!([actor]), "{d:?} {extra}");
        }
        // The login page gets the user part of a USER@INSTITUTION hint.
        let fresh = Visitor::new(&s);
        let res = fresh
            .get(&auth_path("rp", "&login_hint=101001t1%40101001"))
            .await;
        let login = location(&res);
        assert!(
            login.contains("login_hint=101001t1&") || login.ends_with("login_hint=101001t1"),
            "{login}"
        );
    }
}

#[tokio::test]
async fn the_account_page_changes_or_forgets_the_remembered_role() {
    for d in dialects() {
        let s = server(&d).await;
        teacher_and_parent(&s).await;
        let v = Visitor::new(&s);
        let (_, page) = login_for(&v, &auth_path("rp", "")).await;
        let pending = pending_of(&page);
        v.submit(
            &page,
            "/oidc/role",
            &[("pending", &pending), ("role", "101001/Medarbejder")],
        )
        .await;
        let html = v.get("/account/roles?lang=en").await.text().await.unwrap();
        assert!(
            html.contains("Service rp") && html.contains("Employee"),
            "{d:?} {html}"
        );
        assert!(v
            .get("/account")
            .await
            .text()
            .await
            .unwrap()
            .contains("/account/roles"));
        let res = v
            .submit(
                "/account",
                "/account/roles",
                &[("client_id", "rp"), ("role", "202002/Kontaktperson")],
            )
            .await;
        assert_eq!(res.status(), 303);
        let back = location(&v.get(&auth_path("rp", "")).await);
        assert_eq!(
            claims_of(&s, "rp", &back).await["actor_groups"],
            json!(["Kontaktperson"])
        );
        let res = v
            .submit(
                "/account",
                "/account/roles",
                &[("client_id", "rp"), ("role", "")],
            )
            .await;
        assert_eq!(res.status(), 303);
        assert_eq!(
            v.get(&auth_path("rp", "")).await.status(),
            200,
            "asked again"
        );
        let res = v
            .submit(
                "/account",
                "/account/roles",
                &[("client_id", "rp"), ("role", "999999/Elev")],
            )
            .await;
        assert_eq!(res.status(), 400);
    }
}
