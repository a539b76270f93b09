//! Client-credentials tokens under load: concurrent requests are written
//! by the group commit, and each still gets a working token and exactly
//! one audit event on an intact chain.

use crate::oidc::{server, SECRET};
use serde_json::Value;
use tilgang_core::audit::{actions, Head, Verifier};
use tilgang_testkit::dialects;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_client_credentials_requests_all_get_working_tokens_and_one_event_each() {
    for d in dialects() {
        let s = server(&d).await;
        let before = s.db.store.stored_head().await.unwrap().seq;
        let token_url = format!("{}/oidc/token", s.base);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..200 {
            let (http, url) = (s.http.clone(), token_url.clone());
            tasks.spawn(async move {
                let res = http
                    .post(url)
                    .basic_auth("rp", Some(SECRET))
                    .form(&[
                        ("grant_type", "client_credentials"),
                        ("scope", "roster:read"),
                    ])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                let body: Value = res.json().await.unwrap();
                body["access_token"].as_str().unwrap().to_owned()
            });
        }
        let mut tokens = Vec::new();
        while let Some(t) = tasks.join_next().await {
            tokens.push(t.unwrap());
        }
        tokens.sort();
        tokens.dedup();
        assert_eq!(tokens.len(), 200, "{d:?}: every token distinct");
        for t in &tokens {
            let i: Value = s
                .http
                .post(format!("{}/oidc/introspect", s.base))
                .basic_auth("rp", Some(SECRET))
                .form(&[("token", t)])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(i["active"], true, "{d:?}: {i}");
            assert_eq!(i["scope"], "roster:read");
        }
        // One issue event per token, and the whole chain verifies.
        let events = s.db.store.audit_page(0, 100_000).await.unwrap();
        let issued = events
            .iter()
            .filter(|e| e.seq > before && e.action == actions::OIDC_TOKEN_ISSUED)
            .count();
        assert_eq!(issued, 200, "{d:?}");
        let head = s.db.store.stored_head().await.unwrap();
        let mut v = Verifier::new(Head::default());
        for e in &events {
            v.push(e).unwrap();
        }
        assert_eq!(v.finish(head).unwrap(), head, "{d:?}");
    }
}

async fn post_form(
    s: &tilgang_testkit::TestServer,
    path: &str,
    client: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    s.http
        .post(format!("{}{path}", s.base))
        .basic_auth(client, Some(SECRET))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// Client-credentials tokens are sealed, not stored: a forged or altered
/// one is refused, another service cannot revoke one, and a revoked one
/// is dead at introspection and at the data API at once.
#[tokio::test]
async fn a_sealed_client_credentials_token_is_checked_and_revoked_like_a_stored_one() {
    for d in dialects() {
        let s = server(&d).await;
        let grant = [("grant_type", "client_credentials")];
        let body: Value = post_form(&s, "/oidc/token", "rp", &grant)
            .await
            .json()
            .await
            .unwrap();
        let token = body["access_token"].as_str().unwrap().to_owned();
        let active = |t: String| {
            let s = &s;
            async move {
                let i: Value = post_form(s, "/oidc/introspect", "rp", &[("token", &t)])
                    .await
                    .json()
                    .await
                    .unwrap();
                i["active"] == true
            }
        };
        let api = |t: String| {
            let s = &s;
            async move {
                s.http
                    .get(format!("{}/api/v1/institutions/101001", s.base))
                    .bearer_auth(t)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        assert!(active(token.clone()).await, "{d:?}");
        assert_ne!(api(token.clone()).await, 401, "{d:?}");

        // One character changed anywhere is another token.
        let mut forged = token.clone().into_bytes();
        let mid = forged.len() / 2;
        forged[mid] = if forged[mid] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert!(!active(forged.clone()).await, "{d:?}");
        assert_eq!(api(forged).await, 401, "{d:?}");

        // Another service's revocation is a no-op (RFC 7009: still 200).
        let res = post_form(&s, "/oidc/revoke", "med", &[("token", &token)]).await;
        assert_eq!(res.status(), 200, "{d:?}");
        assert!(active(token.clone()).await, "{d:?}");

        for _ in 0..2 {
            let res = post_form(&s, "/oidc/revoke", "rp", &[("token", &token)]).await;
            assert_eq!(res.status(), 200, "{d:?}: revoking twice is fine");
        }
        assert!(!active(token.clone()).await, "{d:?}");
        assert_eq!(api(token).await, 401, "{d:?}");
        let events = s.db.store.audit_page(0, 100_000).await.unwrap();
        assert!(
            events
                .iter()
                .any(|e| e.action == actions::OIDC_TOKEN_REVOKED),
            "{d:?}"
        );
    }
}
