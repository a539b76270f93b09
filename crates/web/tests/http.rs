//! The real server, in-process: health, readiness, metrics and pages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tilgang_testkit::{dialects, TestServer};

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
