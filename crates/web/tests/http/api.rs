//! The data API (`/api/v1`), on both dialects: per package, protected
//! persons, ended memberships, filters, the indistinguishable 401/404,
//! problem+json, the rate limit, the audit event written before the data
//! goes out, and the OpenAPI document that must match docs/openapi.json.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::oidc::{code_for, exchange, server, service, token_request, SECRET, TEACHER};
use serde_json::Value;
use tilgang_core::audit::actions;
use tilgang_core::oidc::Package;
use tilgang_core::roster::Actor;
use tilgang_core::sharing::agreement::{
    self, Addressee, Decider, Delivery, Filters, NewProvider, RequestSpec, ServiceLink,
};
use tilgang_core::Clock;
use tilgang_testkit::{dialects, small_roster, Dialect, TestServer, Visitor};

const OP: &str = "cli";
const PUPIL: &str = "101001p1";
const PROTECTED: &str = "101001p2";
const PARENT: &str = "101001m1";

fn spec(package: Package, filters: Filters) -> RequestSpec {
    RequestSpec {
        purpose: "Teaching".into(),
        package,
        delivery: Delivery::Both,
        filters,
        sub_processors: vec![],
        locations: vec!["DK".into()],
        retention: "6 months after the roster stops delivering a user".into(),
        dpa_reference: "DPA-1".into(),
    }
}

/// The institution approves `package` (with `filters`) for `client`.
async fn approve(
    s: &TestServer,
    client: &str,
    institution: &str,
    package: Package,
    filters: Filters,
) {
    let (store, clock) = (&*s.db.store, &*s.db.clock);
    let to = Addressee::Institution(institution.into());
    let sent = agreement::request(store, clock, OP, client, &spec(package, filters), &to)
        .await
        .unwrap();
    if package != Package::Minimal {
        agreement::approve(store, clock, Decider::Operator(OP), sent[0].1)
            .await
            .unwrap();
    }
}

async fn add_service(s: &TestServer, id: &str, package: Package) {
    let ev = tilgang_core::audit::NewEvent::new("test", "oidc.service.added");
    s.db.store
        .add_service(&service(id, package), s.db.clock.now(), ev)
        .await
        .unwrap();
}

/// The small roster with a protected pupil who has an address and phones.
fn roster(number: &str) -> Value {
    let mut doc = small_roster(number);
    let p2 = &mut doc["persons"][1];
    p2["phones"] =
        serde_json::json!([{"kind": "mobile", "number": "+4587654321", "protectable": true}]);
    p2["address"] =
        serde_json::json!({"street": "Hemmelig Vej 9", "postal_code": "8000", "city": "Aarhus C"});
    let p1 = &mut doc["persons"][0];
    p1["photo_id"] = "foto-17".into();
    p1["local_person_id"] = "elev-17".into();
    // A real date: a CPR number of the register (the others name 30 and
    // 31 February, so they are fictitious).
    doc["persons"][2]["cpr"] = "0101801234".into();
    doc["persons"][3]["address"]["municipality_code"] = "751".into();
    doc
}

/// [`server`] (services `rp` small and `med` medium approved at 101001,
/// `min` with no agreement) plus: `lrg` (large), `auth` (authority, from a
/// provider an operator marked), `mini` (the minimal package listed), and
/// institution 202002 where nobody is approved.
async fn api_server(d: &Dialect) -> TestServer {
    let s = server(d).await;
    s.db.import_json(&roster("101001")).await;
    s.db.import_json(&small_roster("202002")).await;
    add_service(&s, "lrg", Package::Large).await;
    add_service(&s, "auth", Package::Authority).await;
    add_service(&s, "mini", Package::Minimal).await;
    let (store, clock) = (&*s.db.store, &*s.db.clock);
    let provider = agreement::add_provider(
        store,
        clock,
        OP,
        &NewProvider {
            name: "Kommunens Forvaltning".into(),
            cvr: "12345678".into(),
            address: "Rådhuspladsen 1".into(),
            contact: "it@kommune.example".into(),
            security_contact: "security@kommune.example".into(),
        },
    )
    .await
    .unwrap();
    agreement::mark_authority(store, clock, OP, provider, true)
        .await
        .unwrap();
    agreement::link_service(
        store,
        clock,
        OP,
        &ServiceLink {
            client_id: "auth".into(),
            provider_id: Some(provider),
            licence_required: false,
        },
    )
    .await
    .unwrap();
    approve(&s, "lrg", "101001", Package::Large, Filters::default()).await;
    approve(&s, "auth", "101001", Package::Authority, Filters::default()).await;
    approve(&s, "mini", "101001", Package::Minimal, Filters::default()).await;
    s
}

/// A client-credentials access token of `client`.
async fn service_token(s: &TestServer, client: &str) -> String {
    let (status, body) = token_request(
        s,
        &[("grant_type", "client_credentials")],
        Some((client, SECRET)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn get(s: &TestServer, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = s.http.get(format!("{}{path}", s.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn get_json(s: &TestServer, path: &str, token: &str) -> (u16, Value) {
    let res = get(s, path, Some(token)).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A problem+json body, checked for its shape.
async fn problem(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status);
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "problem+json for {status}"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(
        body["type"],
        format!("https://tilgang.dev/problems/{}", code.to_ascii_lowercase())
    );
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}

async fn api_events(s: &TestServer) -> Vec<tilgang_core::audit::Event> {
    s.db.store
        .audit_page(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action.starts_with("api."))
        .collect()
}

async fn person_id(s: &TestServer, user_id: &str) -> i64 {
    s.db.store
        .account(user_id)
        .await
        .unwrap()
        .unwrap()
        .person_id
}

#[tokio::test]
async fn each_package_releases_its_fields_and_no_more() {
    for d in dialects() {
        let s = api_server(&d).await;
        let user = |u: &str| format!("/api/v1/users/{u}");

        // Minimal (listed): a pairwise id, institutions, groups and roles.
        let t = service_token(&s, "mini").await;
        let (status, p) = get_json(&s, &user(PUPIL), &t).await;
        assert_eq!(status, 200, "{d:?} {p}");
        assert_ne!(p["id"], PUPIL, "a pairwise pseudonym");
        assert_eq!(p["package"], "minimal");
        assert_eq!(p["institutions"][0]["number"], "101001");
        assert_eq!(p["institutions"][0]["roles"][0], "Elev");
        assert_eq!(p["actor_groups"][0], "Elev");
        assert_eq!(p["groups"].as_array().unwrap().len(), 2, "{p}");
        for absent in [
            "user_id",
            "given_name",
            "family_name",
            "roles",
            "birth_date",
            "email",
        ] {
            assert!(p.get(absent).is_none(), "minimal has no {absent}: {p}");
        }
        // The pseudonym is stable for the service.
        assert_eq!(get_json(&s, &user(PUPIL), &t).await.1["id"], p["id"]);

        // Small: names, user id, role details; nothing medium.
        let t = service_token(&s, "rp").await;
        let (_, p) = get_json(&s, &user(PUPIL), &t).await;
        assert_eq!(p["id"], PUPIL);
        assert_eq!(p["user_id"], PUPIL);
        assert_eq!(p["package"], "small");
        assert_eq!(
            (p["given_name"].as_str(), p["family_name"].as_str()),
            (Some("Alma"), Some("Jensen"))
        );
        let role = &p["roles"][0];
        assert_eq!(role["grade_level"], "1", "{p}");
        assert_eq!(role["student_number"], "17");
        assert_eq!(role["main_group"], "1A");
        for absent in [
            "birth_date",
            "gender",
            "email",
            "address",
            "phones",
            "protected",
        ] {
            assert!(p.get(absent).is_none(), "small has no {absent}: {p}");
        }

        // Medium: birth date, gender, e-mail; no address or phones.
        let t = service_token(&s, "med").await;
        let (_, p) = get_json(&s, &user(PUPIL), &t).await;
        assert_eq!(p["package"], "medium", "{p}");
        assert_eq!(p["birth_date"], "2020-02-03");
        assert_eq!(p["gender"], "K");
        let (_, teacher) = get_json(&s, &user(TEACHER), &t).await;
        assert_eq!(teacher["email"], "kn@skole.dk");
        assert!(
            p.get("address").is_none() && p.get("phones").is_none(),
            "{p}"
        );

        // Large: address, phones, the protection flag.
        let t = service_token(&s, "lrg").await;
        let (status, p) = get_json(&s, &user(PARENT), &t).await;
        assert_eq!(status, 200, "{p}");
        assert_eq!(p["package"], "large", "{p}");
        assert_eq!(p["address"]["street"], "Skolevej 1");
        assert_eq!(p["phones"][0]["number"], "+4512345678");
        assert_eq!(p["protected"], false);
        assert_eq!(p["actor_groups"][0], Actor::ContactPerson.as_str());
    }
}

#[tokio::test]
async fn protected_persons_get_alias_names_and_no_contact_data_outside_authority() {
    for d in dialects() {
        let s = api_server(&d).await;
        let path = format!("/api/v1/users/{PROTECTED}");
        for client in ["rp", "med", "lrg"] {
            let t = service_token(&s, client).await;
            let (status, p) = get_json(&s, &path, &t).await;
            assert_eq!(status, 200, "{d:?} {client} {p}");
            assert_eq!(p["given_name"], "Anders", "{client}: the alias, {p}");
            assert_eq!(p["family_name"], "And");
            let text = p.to_string();
            assert!(
                !text.contains("Bo") && !text.contains("Hansen"),
                "{client}: {text}"
            );
            assert!(
                !text.contains("Hemmelig") && !text.contains("+4587654321"),
                "{client}: {text}"
            );
        }
        // Large carries the flag (the package has it) but still no address.
        let t = service_token(&s, "lrg").await;
        assert_eq!(get_json(&s, &path, &t).await.1["protected"], true);
        // Authority: the real name, address and phone, with the flag.
        let t = service_token(&s, "auth").await;
        let (status, p) = get_json(&s, &path, &t).await;
        assert_eq!(status, 200, "{p}");
        assert_eq!(
            (p["given_name"].as_str(), p["family_name"].as_str()),
            (Some("Bo"), Some("Hansen"))
        );
        assert_eq!(p["protected"], true);
        assert_eq!(p["address"]["street"], "Hemmelig Vej 9");
        assert_eq!(p["phones"][0]["number"], "+4587654321");
        assert_eq!(p["package"], "large", "authority is reported as large");
    }
}

#[tokio::test]
async fn ended_memberships_and_ended_persons_are_gone() {
    for d in dialects() {
        let s = api_server(&d).await;
        let t = service_token(&s, "rp").await;
        // The next full import: the pupil leaves group "1" and the teacher
        // is no longer delivered.
        let mut doc = roster("101001");
        doc["groups"][1]["members"] = serde_json::json!([PROTECTED]);
        let persons = doc["persons"].as_array_mut().unwrap();
        persons.retain(|p| p["user_id"] != TEACHER);
        doc["groups"][0]["members"] = serde_json::json!([PUPIL, PROTECTED]);
        s.db.import_json(&doc).await;
        let (status, p) = get_json(&s, &format!("/api/v1/users/{PUPIL}"), &t).await;
        assert_eq!(status, 200, "{d:?} {p}");
        let groups: Vec<&str> = p["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["id"].as_str().unwrap())
            .collect();
        assert_eq!(groups, ["1A"], "{p}");
        let res = get(&s, &format!("/api/v1/users/{TEACHER}"), Some(&t)).await;
        problem(res, 404, "NOT_FOUND").await;
    }
}

#[tokio::test]
async fn actor_and_grade_filters_hide_whom_they_exclude() {
    for d in dialects() {
        let s = api_server(&d).await;
        add_service(&s, "elever", Package::Small).await;
        add_service(&s, "andet", Package::Small).await;
        approve(
            &s,
            "elever",
            "101001",
            Package::Small,
            Filters {
                actors: vec![Actor::Pupil],
                grade_levels: vec![],
            },
        )
        .await;
        approve(
            &s,
            "andet",
            "101001",
            Package::Small,
            Filters {
                actors: vec![],
                grade_levels: vec!["2".into()],
            },
        )
        .await;
        let t = service_token(&s, "elever").await;
        assert_eq!(
            get_json(&s, &format!("/api/v1/users/{PUPIL}"), &t).await.0,
            200,
            "{d:?}"
        );
        problem(
            get(&s, &format!("/api/v1/users/{TEACHER}"), Some(&t)).await,
            404,
            "NOT_FOUND",
        )
        .await;
        // A grade filter excludes pupils of other grades, not staff.
        let t = service_token(&s, "andet").await;
        problem(
            get(&s, &format!("/api/v1/users/{PUPIL}"), Some(&t)).await,
            404,
            "NOT_FOUND",
        )
        .await;
        assert_eq!(
            get_json(&s, &format!("/api/v1/users/{TEACHER}"), &t)
                .await
                .0,
            200
        );
    }
}

#[tokio::test]
async fn unknown_and_unapproved_look_the_same_and_bad_tokens_are_401() {
    for d in dialects() {
        let s = api_server(&d).await;
        let t = service_token(&s, "rp").await;
        // A person at an institution the service has no approval for, and
        // one who does not exist: the same answer, byte for byte.
        let elsewhere = get(&s, "/api/v1/users/202002p1", Some(&t)).await;
        let elsewhere = problem(elsewhere, 404, "NOT_FOUND").await;
        let nobody = problem(
            get(&s, "/api/v1/users/nobody", Some(&t)).await,
            404,
            "NOT_FOUND",
        )
        .await;
        assert_eq!(elsewhere, nobody, "{d:?}");
        let inst_elsewhere = problem(
            get(&s, "/api/v1/institutions/202002", Some(&t)).await,
            404,
            "NOT_FOUND",
        )
        .await;
        let inst_nowhere = problem(
            get(&s, "/api/v1/institutions/999999", Some(&t)).await,
            404,
            "NOT_FOUND",
        )
        .await;
        assert_eq!(inst_elsewhere, inst_nowhere);
        // A service with no agreement sees nothing at all.
        let none = service_token(&s, "min").await;
        let res = get(&s, &format!("/api/v1/users/{PUPIL}"), Some(&none)).await;
        assert_eq!(problem(res, 404, "NOT_FOUND").await, nobody);
        // Blocked at the institution: not found either.
        let (store, clock) = (&*s.db.store, &*s.db.clock);
        agreement::set_block(
            store,
            clock,
            Decider::Operator(OP),
            "med",
            "101001",
            Some("stop"),
        )
        .await
        .unwrap();
        let med = service_token(&s, "med").await;
        let res = get(&s, &format!("/api/v1/users/{PUPIL}"), Some(&med)).await;
        assert_eq!(problem(res, 404, "NOT_FOUND").await, nobody);

        // No token, a made-up one, a revoked one: one 401 with a challenge.
        let res = get(&s, &format!("/api/v1/users/{PUPIL}"), None).await;
        assert!(res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        let missing = problem(res, 401, "AUTH_INVALID_TOKEN").await;
        let made_up = problem(
            get(&s, &format!("/api/v1/users/{PUPIL}"), Some("abc")).await,
            401,
            "AUTH_INVALID_TOKEN",
        )
        .await;
        assert_eq!(missing, made_up);
        let res = s
            .http
            .post(format!("{}/oidc/revoke", s.base))
            .basic_auth("rp", Some(SECRET))
            .form(&[("token", t.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let revoked = problem(
            get(&s, &format!("/api/v1/users/{PUPIL}"), Some(&t)).await,
            401,
            "AUTH_INVALID_TOKEN",
        )
        .await;
        assert_eq!(revoked, missing);
        // A client-credentials token cannot ask for /me.
        let t = service_token(&s, "rp").await;
        problem(get(&s, "/api/v1/me", Some(&t)).await, 403, "AUTH_FORBIDDEN").await;
        // Any other path under /api/v1 is a problem+json 404.
        problem(
            get(&s, "/api/v1/nothing/here", Some(&t)).await,
            404,
            "NOT_FOUND",
        )
        .await;
    }
}

#[tokio::test]
async fn me_answers_with_the_persons_token_as_the_claims_do() {
    for d in dialects() {
        let s = api_server(&d).await;
        let v = Visitor::new(&s);
        let code = code_for(&s, &v, "med", "").await;
        let body = exchange(&s, "med", &code, None).await.1;
        let token = body["access_token"].as_str().unwrap().to_owned();
        let (status, me) = get_json(&s, "/api/v1/me", &token).await;
        assert_eq!(status, 200, "{d:?} {me}");
        assert_eq!(me["id"], TEACHER);
        assert_eq!(me["given_name"], "Karen");
        assert_eq!(me["email"], "kn@skole.dk");
        assert_eq!(me["package"], "medium");
        // A person's token is no service token.
        let res = get(&s, &format!("/api/v1/users/{PUPIL}"), Some(&token)).await;
        problem(res, 403, "AUTH_FORBIDDEN").await;
        // The audit names the service, the package and the person.
        let teacher = person_id(&s, TEACHER).await;
        let ev = api_events(&s)
            .await
            .into_iter()
            .find(|e| e.action == actions::API_LOOKUP)
            .unwrap();
        assert_eq!(ev.actor, "service:med");
        assert_eq!(ev.subjects, format!("[{teacher}]"));
        let details: Value = serde_json::from_str(&ev.details).unwrap();
        assert_eq!(details["package"], "medium");
        assert_eq!(details["endpoint"], "/api/v1/me");
    }
}

#[tokio::test]
async fn institutions_have_name_groups_and_hierarchy_and_are_audited() {
    for d in dialects() {
        let s = api_server(&d).await;
        let t = service_token(&s, "mini").await;
        let (status, i) = get_json(&s, "/api/v1/institutions/101001", &t).await;
        assert_eq!(status, 200, "{d:?} {i}");
        assert_eq!(i["name"], "Skole 101001");
        assert_eq!(i["municipality_code"], "101");
        assert_eq!(i["groups"].as_array().unwrap().len(), 2, "{i}");
        assert_eq!(i["hierarchy"]["levels"][0]["level"], "1");
        let ev = api_events(&s).await;
        assert!(ev
            .iter()
            .any(|e| e.action == actions::API_INSTITUTION
                && e.institution.as_deref() == Some("101001")));
    }
}

#[tokio::test]
async fn every_lookup_is_audited_before_it_is_sent_or_not_sent_at_all() {
    for d in dialects() {
        let s = api_server(&d).await;
        let t = service_token(&s, "rp").await;
        let (status, _) = get_json(&s, &format!("/api/v1/users/{PUPIL}"), &t).await;
        assert_eq!(status, 200);
        let pupil = person_id(&s, PUPIL).await;
        let ev = api_events(&s).await;
        assert_eq!(ev.len(), 1, "{d:?}");
        assert_eq!(ev[0].action, actions::API_LOOKUP);
        assert_eq!(ev[0].actor, "service:rp");
        assert_eq!(ev[0].subjects, format!("[{pupil}]"));
        let details: Value = serde_json::from_str(&ev[0].details).unwrap();
        assert_eq!(details["package"], "small");
        assert_eq!(details["client_id"], "rp");
        // A 404 sends no personal data and writes no event.
        get(&s, "/api/v1/users/nobody", Some(&t)).await;
        assert_eq!(api_events(&s).await.len(), 1);

        // The audit log cannot be written: a 500 and no data.
        s.db.raw("ALTER TABLE audit_events RENAME TO audit_events_away")
            .await;
        let res = get(&s, &format!("/api/v1/users/{PUPIL}"), Some(&t)).await;
        let body = problem(res, 500, "STORE_FAILURE").await;
        assert!(!body.to_string().contains("Alma"), "{body}");
        s.db.raw("ALTER TABLE audit_events_away RENAME TO audit_events")
            .await;
    }
}

#[tokio::test]
async fn a_service_over_its_rate_gets_429_with_retry_after() {
    let d = &dialects()[0];
    let s = api_server(d).await;
    let t = service_token(&s, "mini").await;
    let mut limited = None;
    // The default bucket holds 100 requests and refills 50 a second.
    for _ in 0..400 {
        let res = get(&s, "/api/v1/institutions/101001", Some(&t)).await;
        if res.status() == 429 {
            limited = Some(res);
            break;
        }
    }
    let res = limited.expect("no 429 within 400 requests");
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    problem(res, 429, "RATE_LIMITED").await;
    // Another service has its own bucket.
    let other = service_token(&s, "rp").await;
    assert_eq!(
        get(&s, "/api/v1/institutions/101001", Some(&other))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn the_openapi_document_is_served_and_matches_docs_openapi_json() {
    let generated = tilgang_web::api::openapi_json();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var("TILGANG_UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json differs from the handlers' OpenAPI document: run \
         `cargo run -- openapi > docs/openapi.json` (or `TILGANG_UPDATE_OPENAPI=1 cargo test -p \
         tilgang-web --test http openapi`) and commit it"
    );
    let doc: Value = serde_json::from_str(&generated).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for p in [
        "/api/v1/me",
        "/api/v1/users/{id}",
        "/api/v1/institutions/{number}",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p}");
    }

    let s = TestServer::start(&dialects()[0]).await;
    let served: Value = s.get("/api/openapi.json").await.json().await.unwrap();
    assert_eq!(served, doc);
    // The docs page and its assets come from the binary.
    let res = s.get("/api/docs/").await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("swagger-ui"), "{page}");
    assert!(
        !page.contains("https://"),
        "nothing loaded from elsewhere: {page}"
    );
    assert_eq!(s.get("/api/docs/swagger-ui-bundle.js").await.status(), 200);
}

/// The export as one download (JSON by default, a OneRoster zip on
/// request), audited per page; refused exactly like an unknown
/// institution.
#[tokio::test]
async fn an_approved_service_exports_json_or_a_oneroster_zip_and_others_get_404() {
    for d in dialects() {
        let s = api_server(&d).await;
        let t = service_token(&s, "lrg").await;
        let res = get(&s, "/api/v1/institutions/101001/export", Some(&t)).await;
        assert_eq!(res.status(), 200, "{d:?}");
        let h = res.headers().clone();
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(h["cache-control"], "no-store");
        assert!(h["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename="));
        assert_eq!(h["x-tilgang-package"], "large");
        assert!(h.contains_key("x-tilgang-made-at"));
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["header"]["service"], "lrg", "{body}");
        let persons = body["persons"].as_array().unwrap();
        assert!(!persons.is_empty(), "{body}");
        assert!(body.to_string().contains("Alma"), "{body}");
        let pupil = person_id(&s, PUPIL).await;
        let exported: Vec<_> =
            s.db.store
                .audit_page(0, 100_000)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.action == actions::SHARING_EXPORTED)
                .collect();
        assert!(!exported.is_empty(), "{d:?}");
        assert!(exported
            .iter()
            .all(|e| e.actor == "service:lrg" && e.institution.as_deref() == Some("101001")));
        assert!(exported
            .iter()
            .any(|e| e.subjects.contains(&pupil.to_string())));

        // Not approved there, and no such institution: the same answer.
        let elsewhere = problem(
            get(&s, "/api/v1/institutions/202002/export", Some(&t)).await,
            404,
            "NOT_FOUND",
        )
        .await;
        let nowhere = problem(
            get(&s, "/api/v1/institutions/999999/export", Some(&t)).await,
            404,
            "NOT_FOUND",
        )
        .await;
        assert_eq!(elsewhere, nowhere, "{d:?}");
        let lookup = get(&s, "/api/v1/institutions/999999", Some(&t)).await;
        assert_eq!(problem(lookup, 404, "NOT_FOUND").await, nowhere);
        // A service with no agreement at all: the same again.
        let none = service_token(&s, "min").await;
        let res = get(&s, "/api/v1/institutions/101001/export", Some(&none)).await;
        assert_eq!(problem(res, 404, "NOT_FOUND").await, nowhere);

        // The OneRoster bundle.
        let res = s
            .http
            .get(format!("{}/api/v1/institutions/101001/export", s.base))
            .bearer_auth(&t)
            .header("accept", "application/zip")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/zip");
        let bytes = res.bytes().await.unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
        let mut users = String::new();
        std::io::Read::read_to_string(&mut zip.by_name("users.csv").unwrap(), &mut users).unwrap();
        assert!(users.contains("Alma"), "{users}");
        assert!(users.contains("Karen"), "{users}");
    }
}

/// The changes feed: records after an approval and a re-import, a cursor
/// that resumes after them, and a made-up cursor as 422.
#[tokio::test]
async fn the_changes_feed_resumes_by_cursor_and_rejects_a_bad_one() {
    for d in dialects() {
        let s = api_server(&d).await;
        let t = service_token(&s, "lrg").await;
        s.db.clock.advance(time::Duration::seconds(10));
        let mut doc = roster("101001");
        doc["persons"][0]["given_name"] = "Alma-Marie".into();
        s.db.import_json(&doc).await;

        let (status, first) = get_json(&s, "/api/v1/changes", &t).await;
        assert_eq!(status, 200, "{d:?} {first}");
        let changes = first["changes"].as_array().unwrap();
        assert!(
            changes.iter().any(|c| c["person"] == PUPIL),
            "{d:?} {first}"
        );
        let cursor = first["next_cursor"].as_str().unwrap().to_owned();
        assert_eq!(first["has_more"], false);
        let audited =
            s.db.store
                .audit_page(0, 100_000)
                .await
                .unwrap()
                .into_iter()
                .any(|e| e.action == actions::API_CHANGES && e.actor == "service:lrg");
        assert!(audited, "{d:?}");

        // Nothing new yet; then a second change, and only it.
        let (status, same) = get_json(&s, &format!("/api/v1/changes?since={cursor}"), &t).await;
        assert_eq!(status, 200, "{same}");
        assert_eq!(same["changes"].as_array().unwrap().len(), 0, "{same}");
        s.db.clock.advance(time::Duration::seconds(10));
        let second_at = s.db.clock.now().unix_timestamp();
        doc["persons"][0]["given_name"] = "Alma".into();
        s.db.import_json(&doc).await;
        let (status, next) =
            get_json(&s, &format!("/api/v1/changes?since={cursor}&limit=50"), &t).await;
        assert_eq!(status, 200, "{next}");
        let newer = next["changes"].as_array().unwrap();
        assert!(!newer.is_empty(), "{next}");
        assert!(newer.iter().all(|c| c["at"] == second_at), "{next}");
        assert_ne!(next["next_cursor"], cursor.as_str());

        // A cursor it never handed out, and a limit out of range.
        let res = get(&s, "/api/v1/changes?since=bm9wZQ", Some(&t)).await;
        problem(res, 422, "CHANGES_CURSOR_INVALID").await;
        let res = get(&s, "/api/v1/changes?limit=0", Some(&t)).await;
        problem(res, 422, "CHANGES_LIMIT_INVALID").await;
        let res = get(&s, "/api/v1/changes?limit=lots", Some(&t)).await;
        problem(res, 422, "CHANGES_LIMIT_INVALID").await;

        // Past the feed's retention, a cursor before the cut is gone: 410.
        s.db.clock.advance(time::Duration::days(401));
        let rules = tilgang_core::lifecycle::Rules::default();
        let job = tilgang_core::lifecycle::Job::ChangesRetention;
        tilgang_core::lifecycle::run(
            &*s.db.store,
            &*s.db.clock,
            &rules,
            job,
            false,
            "cli",
            "test",
            0,
        )
        .await
        .unwrap();
        let t = service_token(&s, "lrg").await;
        let res = get(&s, &format!("/api/v1/changes?since={cursor}"), Some(&t)).await;
        problem(res, 410, "CHANGES_CURSOR_EXPIRED").await;
    }
}

/// Which keys a person's record carries under each package, for a pupil,
/// an employee and a contact person (`/users/{id}`), and for the employee
/// at login (`/me`).
const MEDIUM_KEYS: [&str; 5] = [
    "cpr",
    "cpr_type",
    "photo_id",
    "local_person_id",
    "birth_date",
];
const LARGE_KEYS: [&str; 3] = ["address", "phones", "contacts"];

fn keys_present(p: &Value, keys: &[&str]) -> Vec<String> {
    keys.iter()
        .filter(|k| p.get(**k).is_some())
        .map(|k| (*k).to_owned())
        .collect()
}

#[tokio::test]
async fn lookups_carry_every_field_of_the_package_for_pupil_employee_and_contact() {
    for d in dialects() {
        let s = api_server(&d).await;
        let user = |u: &str| format!("/api/v1/users/{u}");
        let mut tokens = vec![];
        for client in ["mini", "rp", "med", "lrg", "auth"] {
            tokens.push((client, service_token(&s, client).await));
        }
        for (client, t) in &tokens {
            let rank = ["mini", "rp", "med", "lrg", "auth"]
                .iter()
                .position(|c| c == client)
                .unwrap();
            let (status, pupil) = get_json(&s, &user(PUPIL), t).await;
            assert_eq!(status, 200, "{d:?} {client} {pupil}");
            let (_, teacher) = get_json(&s, &user(TEACHER), t).await;
            let (_, parent) = get_json(&s, &user(PARENT), t).await;
            // Small and up: role details, initials and occupation.
            let role = &teacher["roles"][0];
            assert_eq!(
                role["initials"].as_str(),
                (rank >= 1).then_some("KN"),
                "{client} {teacher}"
            );
            assert_eq!(role["occupation"].as_str(), (rank >= 1).then_some("Lærer"));
            assert_eq!(
                pupil["roles"][0]["student_number"].as_str(),
                (rank >= 1).then_some("17")
            );
            // Medium and up: CPR with its type, photo id, local person id.
            let medium = |p: &Value, held: &[&str]| {
                let want: Vec<String> = if rank >= 2 {
                    held.iter().map(|k| (*k).to_owned()).collect()
                } else {
                    vec![]
                };
                assert_eq!(keys_present(p, &MEDIUM_KEYS), want, "{client} {p}");
            };
            medium(&pupil, &MEDIUM_KEYS);
            medium(&teacher, &["cpr", "cpr_type"]);
            medium(&parent, &["cpr", "cpr_type"]);
            if rank >= 2 {
                assert_eq!(pupil["cpr"], "3002201234");
                assert_eq!(pupil["cpr_type"], "fictitious");
                assert_eq!(teacher["cpr"], "0101801234");
                assert_eq!(teacher["cpr_type"], "cpr");
                assert_eq!(pupil["photo_id"], "foto-17");
                assert_eq!(pupil["local_person_id"], "elev-17");
            }
            // Large and up: address with municipality code, phones marked
            // protectable, contact relations (both ways).
            let large: Vec<String> = if rank >= 3 {
                vec!["address".into(), "phones".into(), "contacts".into()]
            } else {
                vec![]
            };
            assert_eq!(
                keys_present(&parent, &LARGE_KEYS),
                large,
                "{client} {parent}"
            );
            if rank >= 3 {
                assert_eq!(parent["address"]["municipality_code"], "751");
                assert_eq!(parent["phones"][0]["protectable"], true);
                for p in [&pupil, &parent] {
                    let c = &p["contacts"][0];
                    assert_eq!(c["institution"], "101001", "{p}");
                    assert_eq!(
                        (c["pupil"].as_str(), c["contact"].as_str()),
                        (Some(PUPIL), Some(PARENT))
                    );
                    assert_eq!(c["relation"], "Mor");
                    assert_eq!(c["custody"], true);
                    assert_eq!(c["access_level"], 1);
                }
                assert_eq!(pupil["protected"], false);
            }
            // The audit event says whether a CPR number went out.
            let last = api_events(&s).await.pop().unwrap();
            let details: Value = serde_json::from_str(&last.details).unwrap();
            assert_eq!(details["cpr_released"], rank >= 2, "{client} {details}");
        }

        // /me: the employee at login, per package.
        for (client, rank) in [("rp", 1), ("med", 2), ("lrg", 3)] {
            let v = Visitor::new(&s);
            let code = code_for(&s, &v, client, "").await;
            let body = exchange(&s, client, &code, None).await.1;
            let token = body["access_token"].as_str().unwrap().to_owned();
            let (status, me) = get_json(&s, "/api/v1/me", &token).await;
            assert_eq!(status, 200, "{d:?} {client} {me}");
            assert_eq!(me["roles"][0]["initials"], "KN", "{me}");
            assert_eq!(me.get("cpr").is_some(), rank >= 2, "{client} {me}");
            assert_eq!(me.get("protected").is_some(), rank >= 3, "{client} {me}");
        }
    }
}

#[tokio::test]
async fn protected_persons_under_large_get_aliases_and_under_authority_real_data_with_the_flag() {
    for d in dialects() {
        let s = api_server(&d).await;
        let path = format!("/api/v1/users/{PROTECTED}");
        // Large: alias names, the flag, no address or phones.
        let t = service_token(&s, "lrg").await;
        let (_, p) = get_json(&s, &path, &t).await;
        assert_eq!(
            (p["given_name"].as_str(), p["protected"].as_bool()),
            (Some("Anders"), Some(true))
        );
        assert!(
            p.get("address").is_none() && p.get("phones").is_none(),
            "{p}"
        );
        // Authority: the real names with the flag, address and phones
        // (each marked protectable).
        let t = service_token(&s, "auth").await;
        let (_, p) = get_json(&s, &path, &t).await;
        assert_eq!(
            (p["given_name"].as_str(), p["protected"].as_bool()),
            (Some("Bo"), Some(true))
        );
        assert_eq!(p["phones"][0]["protectable"], true, "{p}");
        assert_eq!(p["address"]["street"], "Hemmelig Vej 9");
    }
}

/// An export of a generated institution read by a slow client in small
/// pieces: what the server has produced but the client not yet read stays
/// within the HTTP layer's buffer, a couple of pages and the (small)
/// socket buffers, far below the export's size.
#[tokio::test]
async fn a_slow_reader_of_a_large_export_keeps_the_servers_buffer_bounded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const PERSONS: usize = 6000;
    const PAGE: usize = 100;
    for d in dialects() {
        let s = TestServer::start_streaming(&d, PAGE).await;
        // A generated institution: pupils with addresses and phones.
        let persons: Vec<Value> = (0..PERSONS)
            .map(|i| {
                serde_json::json!({
                    "user_id": format!("gen{i:05}"), "given_name": format!("Elev{i}"),
                    "family_name": "Genereret", "email": format!("e{i}@skole.example"),
                    "phones": [{"kind": "mobile", "number": format!("+45{:08}", 20_000_000 + i)}],
                    "address": {"street": format!("Skolevej {i}"), "postal_code": "8000", "city": "Aarhus C"},
                    "roles": [{"role": "Elev", "grade_level": format!("{}", i % 10), "student_number": format!("{i}")}]
                })
            })
            .collect();
        let doc = serde_json::json!({
            "format": "tilgang-roster/1",
            "institution": {"number": "303003", "name": "Stor Skole", "type": "school"},
            "persons": persons, "groups": [], "contacts": []
        });
        s.db.import_json(&doc).await;
        s.db.store
            .add_service(
                &service("lrg", Package::Large),
                s.db.clock.now(),
                tilgang_core::audit::NewEvent::new("test", "oidc.service.added"),
            )
            .await
            .unwrap();
        approve(&s, "lrg", "303003", Package::Large, Filters::default()).await;
        let t = service_token(&s, "lrg").await;
        let produced = || async {
            let text = s.get("/metrics").await.text().await.unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix("tilgang_export_bytes_total "))
                .unwrap()
                .parse::<u64>()
                .unwrap()
        };
        let before = produced().await;

        // A raw HTTP/1.1 client with a small receive buffer, reading 2 KiB
        // at a time and checking the server's lead every 32 KiB.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .set_recv_buffer_size(tilgang_testkit::SMALL_SOCKET_BUFFER)
            .unwrap();
        let addr = s.base.trim_start_matches("http://").parse().unwrap();
        let mut conn = socket.connect(addr).await.unwrap();
        let req = format!(
            "GET /api/v1/institutions/303003/export HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nConnection: close\r\n\r\n"
        );
        conn.write_all(req.as_bytes()).await.unwrap();
        let mut buf = [0u8; 2048];
        let (mut received, mut lead_max, mut next_check) = (0u64, 0u64, 0u64);
        loop {
            let n = conn.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            received += n as u64;
            if received >= next_check {
                next_check = received + 32 * 1024;
                // Let the server run as far ahead as it would.
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                let lead = (produced().await - before).saturating_sub(received);
                lead_max = lead_max.max(lead);
            }
        }
        let total = produced().await - before;
        // The body (chunked) and the headers are what the client got.
        assert!(received >= total, "{d:?}: {received} < {total}");
        // What may be in flight: hyper's write buffer (it takes another
        // chunk while it holds less than 408 KiB), the page it took last,
        // both sockets' buffers (doubled by the kernel), and a margin of
        // two pages. A server that ran ahead of its reader would lead by
        // nearly the whole export.
        let page = total / (PERSONS / PAGE) as u64;
        let bound = 417_792 + page + 4 * u64::from(tilgang_testkit::SMALL_SOCKET_BUFFER) + 2 * page;
        eprintln!("{d:?}: export {total} bytes, lead at most {lead_max} (bound {bound})");
        assert!(
            total > 2 * bound,
            "{d:?}: the export ({total} bytes) must dwarf the bound ({bound})"
        );
        assert!(lead_max <= bound, "{d:?}: the server ran {lead_max} bytes ahead of its reader (bound {bound}, export {total})");
    }
}
