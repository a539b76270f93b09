//! The OpenID Connect provider over HTTP on both dialects: the
//! `openidconnect` crate as an independent relying party through the real
//! login pages, and one test per OpenID Foundation Basic OP conformance
//! module (named after it), plus RFC 9700's checks on an authorization
//! server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret,
    CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope,
    TokenResponse,
};
use serde_json::{json, Value};
use tilgang_core::oidc::{hash_token, Package, Service};
use tilgang_core::Clock;
use tilgang_testkit::{dialects, small_roster, Dialect, TestServer, Visitor, PASSWORD};

pub(crate) const CB: &str = "https://rp.example/cb";
pub(crate) const SECRET: &str = "the-service-secret-with-plenty-of-entropy-0123456789";
pub(crate) const TEACHER: &str = "101001t1";

pub(crate) fn service(id: &str, package: Package) -> Service {
    Service {
        client_id: id.into(),
        name: format!("Service {id}"),
        secret_hash: Some(hash_token(SECRET)),
        jwks_uri: None,
        jwks: None,
        redirect_uris: vec![CB.into(), "https://rp.example/other".into()],
        post_logout_redirect_uris: vec!["https://rp.example/bye".into()],
        grants: vec![
            "authorization_code".into(),
            "refresh_token".into(),
            "client_credentials".into(),
        ],
        package,
        min_acr: "urn:tilgang:loa:1".into(),
        public: false,
        id_token_alg: "RS256".into(),
        pairwise_salt: [4; 32],
        created_at: 0,
    }
}

/// A server whose clock is the real time (the relying party checks `exp`
/// against its own clock), with the small roster, a password for the
/// teacher, and services `rp` (small), `min` (minimal), `med` (medium),
/// `pub` (public), `es` (ES256 ID tokens).
pub(crate) async fn server(d: &Dialect) -> TestServer {
    server_with(d, Default::default()).await
}

/// [`server`] with a login configuration of the test's own.
pub(crate) async fn server_with(
    d: &Dialect,
    login: tilgang_core::identity::login::LoginConfig,
) -> TestServer {
    let s = TestServer::start_with(d, login).await;
    #[allow(clippy::disallowed_methods)]
    s.db.clock.set(time::OffsetDateTime::now_utc());
    s.db.import_json(&small_roster("101001")).await;
    s.set_password(TEACHER).await;
    let at = s.db.clock.now();
    let ev = || tilgang_core::audit::NewEvent::new("test", "oidc.service.added");
    s.db.store
        .add_service(&service("rp", Package::Small), at, ev())
        .await
        .unwrap();
    s.db.store
        .add_service(&service("min", Package::Minimal), at, ev())
        .await
        .unwrap();
    s.db.store
        .add_service(&service("med", Package::Medium), at, ev())
        .await
        .unwrap();
    let mut public = service("pub", Package::Small);
    public.public = true;
    public.secret_hash = None;
    public.grants = vec!["authorization_code".into(), "refresh_token".into()];
    s.db.store.add_service(&public, at, ev()).await.unwrap();
    let mut es = service("es", Package::Small);
    es.id_token_alg = "ES256".into();
    s.db.store.add_service(&es, at, ev()).await.unwrap();
    for (client, package) in [
        ("rp", Package::Small),
        ("med", Package::Medium),
        ("pub", Package::Small),
        ("es", Package::Small),
    ] {
        approve(&s, client, package).await;
    }
    s
}

/// The institution approves `package` for a service (claims follow the
/// institution's approval; without one a service gets the minimal package).
async fn approve(s: &TestServer, client: &str, package: Package) {
    crate::sharing::approve(s, client, "101001", package).await;
}

pub(crate) fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get(reqwest::header::LOCATION)
        .unwrap_or_else(|| panic!("no Location on {}", res.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

pub(crate) fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn path_of(s: &TestServer, url: &str) -> String {
    url.strip_prefix(&s.base).unwrap_or(url).to_owned()
}

/// The pending request id in a path such as `/login?pending=…`.
pub(crate) fn pending_of(path: &str) -> String {
    query_of(&format!("http://x{path}"))["pending"].clone()
}

/// Submits the login page at `login` (which carries a pending
/// authorization request) as the teacher with `password`; returns where
/// the login sends the browser.
pub(crate) async fn log_in_at(v: &Visitor, login: &str, password: &str) -> String {
    let pending = pending_of(login);
    let res = v
        .submit(
            login,
            "/login",
            &[
                ("login", TEACHER),
                ("password", password),
                ("pending", &pending),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    location(&res)
}

/// Starts an authorization request (path and query), logs in through the
/// login page when sent there, and returns the final redirect to the
/// service.
pub(crate) async fn authorize(s: &TestServer, v: &Visitor, path: &str) -> String {
    let res = v.get(path).await;
    assert_eq!(res.status(), 303, "{path}: {}", res.text().await.unwrap());
    let mut loc = location(&res);
    if loc.starts_with("/login?") {
        let back = log_in_at(v, &loc, PASSWORD).await;
        assert!(back.starts_with("/oidc/authorize?pending="), "{back}");
        let res = v.get(&back).await;
        assert_eq!(res.status(), 303);
        loc = location(&res);
    }
    let _ = s;
    loc
}

pub(crate) fn auth_path(client: &str, extra: &str) -> String {
    format!(
        "/oidc/authorize?response_type=code&client_id={client}&redirect_uri={}&scope=openid%20profile%20email&state=st8&nonce=n0nce{extra}",
        url::form_urlencoded::byte_serialize(CB.as_bytes()).collect::<String>()
    )
}

pub(crate) async fn token_request(
    s: &TestServer,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, Value) {
    let mut req = s.http.post(format!("{}/oidc/token", s.base)).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A client-credentials request authenticated with a client assertion
/// (`private_key_jwt`).
async fn with_assertion(s: &TestServer, assertion: &str) -> (u16, Value) {
    token_request(
        s,
        &[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ],
        None,
    )
    .await
}

pub(crate) async fn exchange(
    s: &TestServer,
    client: &str,
    code: &str,
    verifier: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CB),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    token_request(s, &form, Some((client, SECRET))).await
}

pub(crate) async fn userinfo(s: &TestServer, token: &str) -> (u16, Value) {
    let res = s
        .http
        .get(format!("{}/oidc/userinfo", s.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub(crate) fn id_token_claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

fn rp_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// oidcc-server: the full code + PKCE flow with the `openidconnect` crate
/// as the relying party: discovery, the real login page, ID token
/// validation (signature, issuer, audience, nonce, expiry), userinfo,
/// refresh rotation, revocation and logout.
#[tokio::test]
async fn oidcc_server_full_flow_with_an_independent_relying_party() {
    for d in dialects() {
        for (client_id, alg) in [("rp", "RS256"), ("es", "ES256")] {
            let s = server(&d).await;
            let http = rp_http();
            let meta = CoreProviderMetadata::discover_async(
                IssuerUrl::new(s.base.clone()).unwrap(),
                &http,
            )
            .await
            .unwrap();
            let client = CoreClient::from_provider_metadata(
                meta,
                ClientId::new(client_id.into()),
                Some(ClientSecret::new(SECRET.into())),
            )
            .set_redirect_uri(RedirectUrl::new(CB.into()).unwrap());
            let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
            let (url, csrf, nonce) = client
                .authorize_url(
                    CoreAuthenticationFlow::AuthorizationCode,
                    CsrfToken::new_random,
                    Nonce::new_random,
                )
                .add_scope(Scope::new("profile".into()))
                .set_pkce_challenge(challenge)
                .url();
            let v = Visitor::new(&s);
            let back = authorize(&s, &v, &path_of(&s, url.as_str())).await;
            assert!(back.starts_with(CB), "{back}");
            let q = query_of(&back);
            assert_eq!(&q["state"], csrf.secret());
            assert_eq!(q["iss"], s.base, "RFC 9207");
            let tokens = client
                .exchange_code(AuthorizationCode::new(q["code"].clone()))
                .unwrap()
                .set_pkce_verifier(verifier)
                .request_async(&http)
                .await
                .unwrap();
            let id_token = tokens.id_token().unwrap();
            let verifier = client.id_token_verifier();
            let claims = id_token.claims(&verifier, &nonce).unwrap();
            assert_eq!(claims.subject().as_str(), TEACHER);
            assert_eq!(
                claims.given_name().unwrap().get(None).unwrap().as_str(),
                "Karen"
            );
            assert_eq!(
                claims.auth_context_ref(),
                Some(&AuthenticationContextClass::new("urn:tilgang:loa:1".into()))
            );
            assert!(claims.auth_time().is_some() && claims.auth_method_refs().is_some());
            assert_eq!(
                serde_json::to_value(id_token.signing_alg().unwrap()).unwrap(),
                alg,
                "{d:?}"
            );
            let expected = AccessTokenHash::from_token(
                tokens.access_token(),
                id_token.signing_alg().unwrap(),
                id_token.signing_key(&verifier).unwrap(),
            )
            .unwrap();
            assert_eq!(claims.access_token_hash(), Some(&expected));

            let info: CoreUserInfoClaims = client
                .user_info(
                    tokens.access_token().clone(),
                    Some(claims.subject().clone()),
                )
                .unwrap()
                .request_async(&http)
                .await
                .unwrap();
            assert_eq!(
                info.family_name().unwrap().get(None).unwrap().as_str(),
                "Nielsen"
            );

            // Refresh rotation: a new refresh token each time.
            let refresh = tokens.refresh_token().unwrap().clone();
            let again = client
                .exchange_refresh_token(&refresh)
                .unwrap()
                .request_async(&http)
                .await
                .unwrap();
            let refresh2 = again.refresh_token().unwrap().clone();
            assert_ne!(refresh2.secret(), refresh.secret());
            assert!(again
                .id_token()
                .unwrap()
                .claims(&client.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
                .is_ok());

            // Revocation of the current refresh token ends the grant (the
            // crate refuses a plain-HTTP revocation URL, so by hand).
            let res = s
                .http
                .post(format!("{}/oidc/revoke", s.base))
                .basic_auth(client_id, Some(SECRET))
                .form(&[
                    ("token", refresh2.secret().as_str()),
                    ("token_type_hint", "refresh_token"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            assert!(client
                .exchange_refresh_token(&refresh2)
                .unwrap()
                .request_async(&http)
                .await
                .is_err());
            assert_eq!(userinfo(&s, again.access_token().secret()).await.0, 401);

            // RP-initiated logout with the ID token as hint: straight back.
            let hint = id_token.to_string();
            let res = v
                .get(&format!(
                    "/oidc/logout?id_token_hint={hint}&post_logout_redirect_uri={}&state=bye",
                    url::form_urlencoded::byte_serialize(b"https://rp.example/bye")
                        .collect::<String>()
                ))
                .await;
            assert_eq!(res.status(), 303);
            assert_eq!(location(&res), "https://rp.example/bye?state=bye");
            assert_eq!(v.get("/account").await.status(), 303, "the session ended");
        }
    }
}

/// The Config OP plan's discovery checks, and the JWKS.
#[tokio::test]
async fn discovery_and_jwks_are_consistent() {
    for d in dialects() {
        let s = server(&d).await;
        let doc: Value = s
            .get("/.well-known/openid-configuration")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(doc["issuer"], s.base);
        for key in [
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "jwks_uri",
            "end_session_endpoint",
            "revocation_endpoint",
            "introspection_endpoint",
        ] {
            assert!(doc[key].as_str().unwrap().starts_with(&s.base), "{key}");
        }
        assert_eq!(doc["response_types_supported"], json!(["code"]));
        assert_eq!(doc["request_parameter_supported"], false);
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert!(doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g != "implicit" && g != "password"));
        let jwks: Value = s.get("/oidc/jwks").await.json().await.unwrap();
        let algs: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["alg"].as_str().unwrap())
            .collect();
        assert!(
            algs.contains(&"RS256") && algs.contains(&"ES256"),
            "{algs:?}"
        );
        for k in jwks["keys"].as_array().unwrap() {
            assert!(k.get("d").is_none(), "no private part is published");
        }
        // A rotation keeps the old key published.
        let before = jwks["keys"].as_array().unwrap().len();
        tilgang_web::oidc::rotate(
            &*s.db.store,
            &s.db.keys,
            &*s.db.clock,
            &Default::default(),
            tilgang_core::oidc::keys::Alg::RS256,
            "test",
        )
        .await
        .unwrap();
        let jwks: Value = s.get("/oidc/jwks").await.json().await.unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), before + 1, "{d:?}");
    }
}

pub(crate) async fn code_for(s: &TestServer, v: &Visitor, client: &str, extra: &str) -> String {
    let back = authorize(s, v, &auth_path(client, extra)).await;
    let q = query_of(&back);
    q.get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code in {back}"))
}

/// oidcc-codereuse: the second use fails and revokes what the first got.
#[tokio::test]
async fn oidcc_codereuse() {
    for d in dialects() {
        let s = server(&d).await;
        let v = Visitor::new(&s);
        let code = code_for(&s, &v, "rp", "").await;
        let (status, first) = exchange(&s, "rp", &code, None).await;
        assert_eq!(status, 200, "{first}");
        let access = first["access_token"].as_str().unwrap();
        assert_eq!(userinfo(&s, access).await.0, 200);
        let (status, second) = exchange(&s, "rp", &code, None).await;
        assert_eq!(
            (status, second["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        assert_eq!(
            userinfo(&s, access).await.0,
            401,
            "{d:?}: tokens from a reused code are revoked"
        );
        let (_, r) = token_request(
            &s,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ],
            Some(("rp", SECRET)),
        )
        .await;
        assert_eq!(r["error"], "invalid_grant");
    }
}

/// oidcc-codereuse-30seconds, and the 60-second code lifetime.
#[tokio::test]
async fn oidcc_codereuse_30seconds_and_codes_expire_after_60_seconds() {
    for d in dialects() {
        let s = server(&d).await;
        let v = Visitor::new(&s);
        let code = code_for(&s, &v, "rp", "").await;
        assert_eq!(exchange(&s, "rp", &code, None).await.0, 200);
        s.db.clock.advance(time::Duration::seconds(30));
        assert_eq!(
            exchange(&s, "rp", &code, None).await.1["error"],
            "invalid_grant"
        );
        let late = code_for(&s, &v, "rp", "").await;
        s.db.clock.advance(time::Duration::seconds(61));
        assert_eq!(
            exchange(&s, "rp", &late, None).await.1["error"],
            "invalid_grant",
            "{d:?}"
        );
    }
}

/// oidcc-ensure-registered-redirect-uri and RFC 9700's exact matching:
/// an unregistered or merely similar redirect URI gets an error page,
/// never a redirect (no open redirector).
#[tokio::test]
async fn oidcc_ensure_registered_redirect_uri_never_redirects() {
    for d in dialects() {
        let s = server(&d).await;
        for bad in [
            "https://evil.example/cb",
            "https://rp.example/cb/",
            "https://rp.example/cb?x=1",
            "https://rp.example/cb#f",
            "https://RP.example/cb",
            "http://rp.example/cb",
        ] {
            let path = format!(
                "/oidc/authorize?response_type=code&client_id=rp&scope=openid&redirect_uri={}",
                url::form_urlencoded::byte_serialize(bad.as_bytes()).collect::<String>()
            );
            let res = Visitor::new(&s).get(&path).await;
            assert_eq!(res.status(), 400, "{bad}");
            assert!(res.headers().get("location").is_none(), "{bad}");
            assert!(res.text().await.unwrap().contains("registreret"));
        }
        // No redirect_uri at all, and an unknown client: error pages too.
        let res = Visitor::new(&s)
            .get("/oidc/authorize?response_type=code&client_id=rp&scope=openid")
            .await;
        assert_eq!(res.status(), 400);
        let res = Visitor::new(&s).get(&auth_path("nobody", "")).await;
        assert_eq!(res.status(), 400, "{d:?}");
        assert!(res.headers().get("location").is_none());
    }
}

/// oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported,
/// oidcc-response-type-missing, and friends: errors go back with `state`
/// and `iss`.
#[tokio::test]
async fn oidcc_request_objects_and_missing_response_type_are_refused_cleanly() {
    for d in dialects() {
        let s = server(&d).await;
        let v = Visitor::new(&s);
        let cases = [
            (auth_path("rp", "&request=eyJhbGciOiJub25lIn0.eyJpc3MiOiJycCJ9."), "request_not_supported"),
            (auth_path("rp", "&request_uri=https%3A%2F%2Frp.example%2Freq"), "request_uri_not_supported"),
            (auth_path("rp", "").replace("response_type=code&", ""), "invalid_request"),
            (auth_path("rp", "").replace("response_type=code", "response_type=token"), "unsupported_response_type"),
            (auth_path("rp", "").replace("response_type=code", "response_type=code%20id_token"), "unsupported_response_type"),
            (auth_path("rp", "").replace("scope=openid%20profile%20email", "scope=profile"), "invalid_scope"),
            (auth_path("rp", "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=plain"), "invalid_request"),
            (auth_path("pub", ""), "invalid_request"),
        ];
        for (path, error) in cases {
            let res = v.get(&path).await;
            assert_eq!(res.status(), 303, "{path}");
            let q = query_of(&location(&res));
            assert_eq!(q["error"], error, "{d:?} {path}");
            assert_eq!(q["state"], "st8");
            assert_eq!(q["iss"], s.base);
        }
    }
}

/// oidcc-prompt-none-not-logged-in, oidcc-prompt-none-logged-in,
/// oidcc-prompt-login.
#[tokio::test]
async fn oidcc_prompt_none_and_prompt_login() {
    for d in dialects() {
        let s = server(&d).await;
        let v = Visitor::new(&s);
        let res = v.get(&auth_path("rp", "&prompt=none")).await;
        let q = query_of(&location(&res));
        assert_eq!(q["error"], "login_required");
        assert_eq!(q["iss"], s.base);
        code_for(&s, &v, "rp", "").await;
        let q = query_of(&location(&v.get(&auth_path("rp", "&prompt=none")).await));
        assert!(q.contains_key("code"), "{q:?}");
        // prompt=login: the login page again, then a code.
        let res = v.get(&auth_path("rp", "&prompt=login")).await;
        assert!(location(&res).starts_with("/login?pending="), "{d:?}");
        let code = code_for(&s, &v, "rp", "&prompt=login").await;
        assert_eq!(exchange(&s, "rp", &code, None).await.0, 200);
        // prompt=consent is accepted (the institution consents for the service).
        code_for(&s, &v, "rp", "&prompt=consent").await;
    }
}

/// oidcc-max-age-1 and oidcc-max-age-10000: `auth_time` tells when the
/// person logged in.
#[tokio::test]
async fn oidcc_max_age_1_and_max_age_10000() {
    for d in dialects() {
        let s = server(&d).await;
        let v = Visitor::new(&s);
        let code = code_for(&s, &v, "rp", "").await;
        let first = id_token_claims(
            exchange(&s, "rp", &code, None).await.1["id_token"]
                .as_str()
                .unwrap(),
        );
        s.db.clock.advance(time::Duration::seconds(2));
        let code = code_for(&s, &v, "rp", "&max_age=10000").await;
        let same = id_token_claims(
            exchange(&s, "rp", &code, None).await.1["id_token"]
                .as_str()
                .unwrap(),
        );
        assert_eq!(same["auth_time"], first["auth_time"]);
        let res = v.get(&auth_path("rp", "&max_age=1")).await;
        assert!(
            location(&res).starts_with("/login?"),
            "{d:?}: a new login is needed"
        );
        let code = code_for(&s, &v, "rp", "&max_age=1").await;
        let fresh = id_token_claims(
            exchange(&s, "rp", &code, None).await.1["id_token"]
                .as_str()
                .unwrap(),
        );
        assert!(fresh["auth_time"].as_i64().unwrap() > first["auth_time"].as_i64().unwrap());
    }
}

/// oidcc-ensure-request-without-nonce-succeeds-for-code-flow,
/// oidcc-ensure-request-with-unknown-parameter-succeeds,
/// oidcc-ensure-other-scope-order-succeeds, oidcc-display-page,
/// oidcc-display-popup, oidcc-ui-locales, oidcc-claims-locales,
/// oidcc-ensure-request-with-acr-values-succeeds, oidcc-id-token-hint,
/// oidcc-scope-profile/email/address/phone/all: each succeeds.
#[tokio::test]
async fn oidcc_parameter_variants_succeed() {
    for d in dialects() {
        let s = server(&d).await;
        let v = Visitor::new(&s);
        let code = code_for(&s, &v, "rp", "").await;
        let hint = exchange(&s, "rp", &code, None).await.1["id_token"]
            .as_str()
            .unwrap()
            .to_owned();
        for extra in [
            "&extra_parameter=whatever&foo=bar",
            "&display=page",
            "&display=popup",
            "&ui_locales=en%20da",
            "&claims_locales=da",
            "&acr_values=urn%3Atilgang%3Aloa%3A1",
            &format!("&id_token_hint={hint}"),
        ] {
            let code = code_for(&s, &v, "rp", extra).await;
            assert_eq!(exchange(&s, "rp", &code, None).await.0, 200, "{extra}");
        }
        let no_nonce = auth_path("rp", "").replace("&nonce=n0nce", "");
        let q = query_of(&authorize(&s, &v, &no_nonce).await);
        let (_, body) = exchange(&s, "rp", &q["code"], None).await;
        assert!(id_token_claims(body["id_token"].as_str().unwrap())
            .get("nonce")
            .is_none());
        for scope in [
            "openid%20email%20profile",
            "email%20openid",
            "openid%20address",
            "openid%20phone",
            "openid%20profile%20email%20address%20phone",
        ] {
            let path = auth_path("med", "")
                .replace("scope=openid%20profile%20email", &format!("scope={scope}"));
            let q = query_of(&authorize(&s, &v, &path).await);
            let (status, body) = exchange(&s, "med", &q["code"], None).await;
            assert_eq!(status, 200, "{d:?} {scope}");
            let (_, info) = userinfo(&s, body["access_token"].as_str().unwrap()).await;
            assert_eq!(info["sub"], TEACHER);
            if scope.contains("email") {
                assert_eq!(info["email"], "kn@skole.dk", "{scope}");
            }
        }
    }
}

/// oidcc-login-hint: the login page is filled in with the hint.
#[tokio::test]
async fn oidcc_login_hint_fills_in_the_login_page() {
    let s = server(&dialects()[0]).await;
    let v = Visitor::new(&s);
    let res = v
        .get(&auth_path("rp", "&login_hint=101001t1&ui_locales=en"))
        .await;
    let loc = location(&res);
    assert!(
        loc.contains("login_hint=101001t1") && loc.contains("lang=en"),
        "{loc}"
    );
    let html = v.get(&loc).await.text().await.unwrap();
    assert!(
        html.contains("value=\"101001t1\"") && html.contains("lang=\"en\""),
        "{html}"
    );
}

/// oidcc-claims-essential: an essential claim asked for in `claims` is
/// released without its scope, within the package.
#[tokio::test]
async fn oidcc_claims_essential() {
    for d in dialects() {
        let s = server(&d).await;
        let v = Visitor::new(&s);
        let claims = url::form_urlencoded::byte_serialize(
            br#"{"userinfo":{"name":{"essential":true}},"id_token":{"email":{"essential":true}}}"#,
        )
        .collect::<String>();
        let path = auth_path("rp", &format!("&claims={claims}"))
            .replace("scope=openid%20profile%20email", "scope=openid");
        let q = query_of(&authorize(&s, &v, &path).await);
        let (_, body) = exchange(&s, "rp", &q["code"], None).await;
        let (_, info) = userinfo(&s, body["access_token"].as_str().unwrap()).await;
        assert_eq!(info["name"], "Karen Nielsen", "{d:?}");
        assert!(info.get("given_name").is_none());
        // The small package releases no e-mail, essential or not.
        assert!(id_token_claims(body["id_token"].as_str().unwrap())
            .get("email")
            .is_none());
    }
}

/// oidcc-userinfo-get, oidcc-userinfo-post-header, oidcc-userinfo-post-body.
#[tokio::test]
async fn oidcc_userinfo_get_post_header_and_post_body() {
    for d in dialects() {
        let s = server(&d).await;
        let v = Visitor::new(&s);
        let code = code_for(&s, &v, "rp", "").await;
        let access = exchange(&s, "rp", &code, None).await.1["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(userinfo(&s, &access).await.1["sub"], TEACHER);
        let url = format!("{}/oidc/userinfo", s.base);
        let header: Value = s
            .http
            .post(&url)
            .bearer_auth(&access)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(header["sub"], TEACHER);
        let body: Value = s
            .http
            .post(&url)
            .form(&[("access_token", &access)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["sub"], TEACHER, "{d:?}");
        assert_eq!(userinfo(&s, "not-a-token").await.0, 401);
        // Each of the three reads is the service reading the teacher's data:
        // audited with the claim names, never their values.
        let reads: Vec<_> =
            s.db.store
                .audit_page(0, 100_000)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.action == tilgang_core::audit::actions::OIDC_USERINFO)
                .collect();
        assert_eq!(reads.len(), 3, "{d:?}");
        assert_eq!(reads[0].actor, "service:rp");
        assert!(reads[0].details.contains("\"sub\"") && !reads[0].details.contains(TEACHER));
        let res = s.http.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert!(res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
    }
}

/// oidcc-refresh-token: rotation, and reuse revoking the whole family.
#[tokio::test]
async fn oidcc_refresh_token_rotation_and_reuse_detection() {
    for d in dialects() {
        let s = server(&d).await;
        let v = Visitor::new(&s);
        let code = code_for(&s, &v, "rp", "").await;
        let first = exchange(&s, "rp", &code, None).await.1;
        let r1 = first["refresh_token"].as_str().unwrap();
        let refresh = |t: String| {
            let s = &s;
            async move {
                token_request(
                    s,
                    &[("grant_type", "refresh_token"), ("refresh_token", &t)],
                    Some(("rp", SECRET)),
                )
                .await
            }
        };
        let (status, second) = refresh(r1.to_owned()).await;
        assert_eq!(status, 200);
        let r2 = second["refresh_token"].as_str().unwrap().to_owned();
        let a2 = second["access_token"].as_str().unwrap().to_owned();
        assert_eq!(userinfo(&s, &a2).await.0, 200);
        // Another client cannot use it.
        let (_, other) = token_request(
            &s,
            &[("grant_type", "refresh_token"), ("refresh_token", &r2)],
            Some(("med", SECRET)),
        )
        .await;
        assert_eq!(other["error"], "invalid_grant");
        // The rotated-out token again: the whole family is revoked.
        let (status, reused) = refresh(r1.to_owned()).await;
        assert_eq!(
            (status, reused["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        assert_eq!(refresh(r2).await.1["error"], "invalid_grant", "{d:?}");
        assert_eq!(userinfo(&s, &a2).await.0, 401);
        let actions: Vec<String> =
            s.db.store
                .audit_page(0, 10_000)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.action)
                .collect();
        assert!(
            actions.contains(&"oidc.refresh.reused".to_owned())
                && actions.contains(&"oidc.token.refreshed".to_owned())
        );
    }
}

/// oidcc-ensure-request-with-valid-pkce-succeeds; a wrong verifier, a
/// verifier without a challenge (PKCE downgrade, RFC 9700) and a public
/// client without PKCE are refused.
#[tokio::test]
async fn oidcc_pkce_valid_succeeds_and_downgrades_are_refused() {
    for d in dialects() {
        let s = server(&d).await;
        let v = Visitor::new(&s);
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let pkce = "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";
        let code = code_for(&s, &v, "rp", pkce).await;
        assert_eq!(exchange(&s, "rp", &code, Some(verifier)).await.0, 200);
        let code = code_for(&s, &v, "rp", pkce).await;
        assert_eq!(
            exchange(
                &s,
                "rp",
                &code,
                Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx")
            )
            .await
            .1["error"],
            "invalid_grant"
        );
        let code = code_for(&s, &v, "rp", pkce).await;
        assert_eq!(
            exchange(&s, "rp", &code, None).await.1["error"],
            "invalid_grant"
        );
        let code = code_for(&s, &v, "rp", "").await;
        assert_eq!(
            exchange(&s, "rp", &code, Some(verifier)).await.1["error"],
            "invalid_grant",
            "{d:?}: downgrade"
        );
        // A public client: PKCE, no secret.
        let code = code_for(&s, &v, "pub", pkce).await;
        let (status, body) = token_request(
            &s,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", verifier),
                ("client_id", "pub"),
            ],
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
}

/// Client authentication: basic, post, wrong secret, two methods at once;
/// unknown grants.
#[tokio::test]
async fn token_endpoint_client_authentication_and_grants() {
    for d in dialects() {
        let s = server(&d).await;
        let cc = [
            ("grant_type", "client_credentials"),
            ("scope", "roster:read"),
        ];
        let (status, body) = token_request(&s, &cc, Some(("rp", SECRET))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        assert!(body.get("id_token").is_none() && body.get("refresh_token").is_none());
        let mut post = cc.to_vec();
        post.extend([("client_id", "rp"), ("client_secret", SECRET)]);
        assert_eq!(token_request(&s, &post, None).await.0, 200);
        let res = s
            .http
            .post(format!("{}/oidc/token", s.base))
            .form(&cc)
            .basic_auth("rp", Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        assert!(res.headers().contains_key("www-authenticate"));
        assert_eq!(
            token_request(&s, &post, Some(("rp", SECRET))).await.1["error"],
            "invalid_request"
        );
        assert_eq!(
            token_request(&s, &cc, Some(("nobody", SECRET))).await.1["error"],
            "invalid_client"
        );
        let (_, e) = token_request(
            &s,
            &[
                ("grant_type", "password"),
                ("username", "x"),
                ("password", "y"),
            ],
            Some(("rp", SECRET)),
        )
        .await;
        assert_eq!(e["error"], "unsupported_grant_type");
        let (_, e) = token_request(
            &s,
            &[("grant_type", "client_credentials"), ("client_id", "pub")],
            None,
        )
        .await;
        assert_eq!(e["error"], "unauthorized_client", "{d:?}");
    }
}

/// RFC 7662 introspection and RFC 7009 revocation.
#[tokio::test]
async fn introspection_and_revocation() {
    for d in dialects() {
        let s = server(&d).await;
        let v = Visitor::new(&s);
        let code = code_for(&s, &v, "min", "").await;
        let body = exchange(&s, "min", &code, None).await.1;
        let access = body["access_token"].as_str().unwrap();
        let introspect = |client: &'static str, token: String| {
            let s = &s;
            async move {
                s.http
                    .post(format!("{}/oidc/introspect", s.base))
                    .basic_auth(client, Some(SECRET))
                    .form(&[("token", token)])
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            }
        };
        let i = introspect("min", access.to_owned()).await;
        assert_eq!(i["active"], true);
        assert_eq!(i["client_id"], "min");
        let sub = i["sub"].as_str().unwrap();
        assert_ne!(sub, TEACHER, "minimal package: pairwise subject");
        assert_eq!(
            introspect("rp", access.to_owned()).await["active"],
            false,
            "another client's token"
        );
        let revoke = s
            .http
            .post(format!("{}/oidc/revoke", s.base))
            .basic_auth("min", Some(SECRET))
            .form(&[("token", access), ("token_type_hint", "access_token")])
            .send()
            .await
            .unwrap();
        assert_eq!(revoke.status(), 200);
        assert_eq!(
            introspect("min", access.to_owned()).await["active"],
            false,
            "{d:?}"
        );
        let unknown = s
            .http
            .post(format!("{}/oidc/revoke", s.base))
            .basic_auth("min", Some(SECRET))
            .form(&[("token", "no-such-token")])
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), 200);
    }
}

/// Claims per package: minimal gets a pairwise subject and no names, small
/// names, medium e-mail; actor groups, institutions and acr always.
#[tokio::test]
async fn claims_follow_the_package() {
    for d in dialects() {
        let s = server(&d).await;
        let v = Visitor::new(&s);
        let mut subs = Vec::new();
        for (client, names, email) in [
            ("min", false, false),
            ("rp", true, false),
            ("med", true, true),
        ] {
            let code = code_for(&s, &v, client, "").await;
            let body = exchange(&s, client, &code, None).await.1;
            let claims = id_token_claims(body["id_token"].as_str().unwrap());
            assert_eq!(claims["actor_groups"], json!(["Medarbejder"]), "{client}");
            assert_eq!(claims["institutions"][0]["number"], "101001");
            assert_eq!(claims["acr"], "urn:tilgang:loa:1");
            assert_eq!(claims["amr"], json!(["pwd"]));
            assert_eq!(claims["nonce"], "n0nce");
            assert_eq!(claims.get("name").is_some(), names, "{d:?} {client}");
            assert_eq!(claims.get("email").is_some(), email, "{client}");
            subs.push(claims["sub"].as_str().unwrap().to_owned());
        }
        assert_ne!(subs[0], TEACHER);
        assert_eq!(subs[1], TEACHER);
        let actions: Vec<String> =
            s.db.store
                .audit_page(0, 10_000)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.action)
                .collect();
        assert!(
            actions.contains(&"oidc.login".to_owned())
                && actions.contains(&"oidc.token.issued".to_owned())
        );
    }
}

/// acr_values asking for two factors sends a one-factor session to step up.
#[tokio::test]
async fn two_factor_acr_values_send_the_person_to_step_up() {
    for d in dialects() {
        let s = server(&d).await;
        let v = Visitor::new(&s);
        code_for(&s, &v, "rp", "").await;
        let res = v
            .get(&auth_path("rp", "&acr_values=urn%3Atilgang%3Aloa%3A2"))
            .await;
        let loc = location(&res);
        assert!(
            loc.starts_with("/login/step-up?next=%2Foidc%2Fauthorize%3Fpending%3D"),
            "{d:?} {loc}"
        );
        let q = query_of(&location(
            &v.get(&auth_path(
                "rp",
                "&acr_values=urn%3Atilgang%3Aloa%3A2&prompt=none",
            ))
            .await,
        ));
        assert_eq!(q["error"], "interaction_required");
    }
}

/// RP-initiated logout: an unregistered post-logout URI gets an error page;
/// without a hint the person confirms first.
#[tokio::test]
async fn rp_initiated_logout_checks_the_uri_and_confirms_without_a_hint() {
    for d in dialects() {
        let s = server(&d).await;
        let v = Visitor::new(&s);
        code_for(&s, &v, "rp", "").await;
        let res = v
            .get("/oidc/logout?client_id=rp&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F")
            .await;
        assert_eq!(res.status(), 400);
        assert!(res.headers().get("location").is_none());
        let page = v
            .get(
                "/oidc/logout?client_id=rp&post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fbye",
            )
            .await;
        assert_eq!(page.status(), 200);
        let res = v
            .submit(
                "/oidc/logout?client_id=rp&post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fbye",
                "/oidc/logout",
                &[
                    ("client_id", "rp"),
                    ("post_logout_redirect_uri", "https://rp.example/bye"),
                ],
            )
            .await;
        assert_eq!(res.status(), 303, "{d:?}");
        assert_eq!(location(&res), "https://rp.example/bye");
        assert_eq!(v.get("/account").await.status(), 303);
    }
}

/// Keys are replaced on schedule (90 days); the old key stays published
/// until the ID tokens it signed have expired.
#[tokio::test]
async fn keys_rotate_on_schedule_and_old_keys_stay_published_until_retired() {
    use tilgang_core::oidc::keys::{current, Alg};
    for d in dialects() {
        let s = server(&d).await;
        let cfg = tilgang_core::oidc::OidcConfig::default();
        let ensure =
            || tilgang_web::oidc::ensure_keys(&*s.db.store, &s.db.keys, &*s.db.clock, &cfg);
        let first = ensure().await.unwrap();
        let now = s.db.clock.now().unix_timestamp();
        let rsa1 = current(&first, Alg::RS256, now).unwrap().kid.clone();
        assert_eq!(
            ensure().await.unwrap().len(),
            2,
            "no rotation before it is due"
        );
        s.db.clock.advance(time::Duration::days(91));
        let later = ensure().await.unwrap();
        let now = s.db.clock.now().unix_timestamp();
        assert_eq!(later.len(), 4, "{d:?}");
        assert_ne!(current(&later, Alg::RS256, now).unwrap().kid, rsa1);
        // Each new key is a key rotation in the audit log: the first ones
        // and the scheduled ones, per algorithm.
        let rotations: Vec<_> =
            s.db.store
                .audit_page(0, 100_000)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.action == tilgang_core::audit::actions::OIDC_KEY_ROTATED)
                .map(|e| e.details)
                .collect();
        assert_eq!(rotations.len(), 4, "{d:?}: {rotations:?}");
        assert!(rotations.iter().any(|r| r.contains("\"schedule\"")));
        let jwks: Value = s.get("/oidc/jwks").await.json().await.unwrap();
        assert!(jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == rsa1.as_str()));
        s.db.clock
            .advance(time::Duration::seconds(cfg.id_token_lifetime_s + 61));
        let jwks: Value = s.get("/oidc/jwks").await.json().await.unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
        assert!(!jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == rsa1.as_str()));
    }
}

/// The authorization endpoint by POST, and a failed password on the way
/// keeps the pending request.
#[tokio::test]
async fn authorization_by_post_survives_a_wrong_password() {
    for d in dialects() {
        let s = server(&d).await;
        let v = Visitor::new(&s);
        let res = v
            .post(
                "/oidc/authorize",
                &[
                    ("response_type", "code"),
                    ("client_id", "rp"),
                    ("redirect_uri", CB),
                    ("scope", "openid"),
                    ("state", "p"),
                ],
            )
            .await;
        let loc = location(&res);
        let pending = query_of(&format!("http://x{loc}"))["pending"].clone();
        let wrong = v
            .submit(
                &loc,
                "/login",
                &[
                    ("login", TEACHER),
                    ("password", "wrong"),
                    ("pending", &pending),
                ],
            )
            .await;
        assert_eq!(wrong.status(), 401);
        assert!(wrong
            .text()
            .await
            .unwrap()
            .contains(&format!("name=\"pending\" value=\"{pending}\"")));
        let ok = v
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
        let back = v.get(&location(&ok)).await;
        let q = query_of(&location(&back));
        assert_eq!(q["state"], "p", "{d:?}");
        assert_eq!(exchange(&s, "rp", &q["code"], None).await.0, 200);
        // The pending request is gone once its code is issued.
        let again = v.get(&format!("/oidc/authorize?pending={pending}")).await;
        assert_eq!(again.status(), 400);
    }
}

/// private_key_jwt (RFC 7523) with inline keys: a signed assertion
/// authenticates once; a replay, a wrong audience, a long life or another
/// key is refused.
#[tokio::test]
async fn private_key_jwt_client_authentication() {
    use tilgang_core::oidc::keys::{generate, Alg, Signer};
    for d in dialects() {
        let s = server(&d).await;
        let now = s.db.clock.now().unix_timestamp();
        let theirs = tilgang_core::crypto::DataKeys::from_master(&[9; 32]);
        let key = generate(Alg::ES256, &theirs, now).unwrap();
        let other = generate(Alg::RS256, &theirs, now).unwrap();
        let mut svc = service("jwt", Package::Small);
        svc.secret_hash = None;
        svc.jwks = Some(
            json!({"keys": [serde_json::from_str::<Value>(&key.public_jwk).unwrap()]}).to_string(),
        );
        s.db.store
            .add_service(
                &svc,
                s.db.clock.now(),
                tilgang_core::audit::NewEvent::new("test", "oidc.service.added"),
            )
            .await
            .unwrap();
        let token_url = format!("{}/oidc/token", s.base);
        let assertion = |rec: &tilgang_core::oidc::keys::KeyRecord,
                         aud: &str,
                         exp: i64,
                         jti: &str| {
            Signer::open(rec, &theirs)
                .unwrap()
                .sign_jwt(&json!({"iss": "jwt", "sub": "jwt", "aud": aud, "exp": exp, "iat": now, "jti": jti}))
                .unwrap()
        };
        let call = |a: String| {
            let s = &s;
            async move { with_assertion(s, &a).await }
        };
        let good = assertion(&key, &token_url, now + 60, "j1");
        let (status, body) = call(good.clone()).await;
        assert_eq!(status, 200, "{d:?} {body}");
        assert_eq!(call(good).await.0, 401, "replay");
        assert_eq!(
            call(assertion(
                &key,
                "https://elsewhere.example/token",
                now + 60,
                "j2"
            ))
            .await
            .0,
            401
        );
        assert_eq!(
            call(assertion(&key, &token_url, now + 3600, "j3")).await.0,
            401,
            "too long-lived"
        );
        assert_eq!(
            call(assertion(&key, &token_url, now - 1, "j4")).await.0,
            401,
            "expired"
        );
        assert_eq!(
            call(assertion(&other, &token_url, now + 60, "j5")).await.0,
            401,
            "unregistered key"
        );
        assert_eq!(
            call(assertion(&key, &s.base, now + 60, "j6")).await.0,
            200,
            "the issuer as audience"
        );
        // A secret does not authenticate a private_key_jwt client.
        let (status, _) = token_request(
            &s,
            &[("grant_type", "client_credentials")],
            Some(("jwt", SECRET)),
        )
        .await;
        assert_eq!(status, 401);
    }
}

/// A parameter sent twice is refused (RFC 6749 §3.1, §3.2); a repeated
/// redirect URI gets the error page.
#[tokio::test]
async fn repeated_parameters_are_refused() {
    for d in dialects() {
        let s = server(&d).await;
        let v = Visitor::new(&s);
        let q = query_of(&location(&v.get(&auth_path("rp", "&scope=openid")).await));
        assert_eq!(q["error"], "invalid_request", "{d:?}");
        assert_eq!(q["iss"], s.base);
        let res = v
            .get(&auth_path(
                "rp",
                "&redirect_uri=https%3A%2F%2Frp.example%2Fother",
            ))
            .await;
        assert_eq!(res.status(), 400);
        assert!(res.headers().get("location").is_none());
        let (status, body) = token_request(
            &s,
            &[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
            Some(("rp", SECRET)),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request"))
        );
    }
}

/// private_key_jwt with the service's keys at a JWKS URI. They are
/// cached: a second assertion does not fetch
/// again; a new `kid` (the service rotated its keys) refetches once, but
/// not sooner than the minimum interval after the last fetch, so made-up
/// kids cannot make tilgang hammer the service's server.
#[tokio::test]
async fn jwks_uri_keys_are_cached_and_refetched_once_for_a_new_kid() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use tilgang_core::oidc::keys::{generate, Alg, KeyRecord, Signer};
    let s = server(&dialects()[0]).await;
    let theirs = tilgang_core::crypto::DataKeys::from_master(&[7; 32]);
    let now = s.db.clock.now().unix_timestamp();
    let (old, new) = (
        generate(Alg::ES256, &theirs, now).unwrap(),
        generate(Alg::ES256, &theirs, now).unwrap(),
    );
    let published =
        |k: &KeyRecord| json!({"keys": [serde_json::from_str::<Value>(&k.public_jwk).unwrap()]});
    let served = Arc::new(Mutex::new(published(&old)));
    let hits = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let app = {
        let (served, hits) = (served.clone(), hits.clone());
        axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let (served, hits) = (served.clone(), hits.clone());
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let body = served.lock().unwrap().clone();
                    ([("cache-control", "max-age=600")], axum::Json(body))
                }
            }),
        )
    };
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut svc = service("cached", Package::Small);
    svc.secret_hash = None;
    svc.jwks_uri = Some(uri);
    s.db.store
        .add_service(
            &svc,
            s.db.clock.now(),
            tilgang_core::audit::NewEvent::new("test", "oidc.service.added"),
        )
        .await
        .unwrap();
    let jti = AtomicUsize::new(0);
    let call = |key: &KeyRecord| {
        let now = s.db.clock.now().unix_timestamp();
        let assertion = Signer::open(key, &theirs)
            .unwrap()
            .sign_jwt(&json!({"iss": "cached", "sub": "cached", "aud": format!("{}/oidc/token", s.base), "exp": now + 60, "jti": jti.fetch_add(1, Ordering::SeqCst).to_string()}))
            .unwrap();
        let s = &s;
        async move { with_assertion(s, &assertion).await.0 }
    };
    assert_eq!(call(&old).await, 200);
    assert_eq!(call(&old).await, 200);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the second assertion used the cache"
    );
    // The service rotates its key. Right after a fetch, an unknown kid does
    // not refetch (and fails); once the interval has passed it does, once.
    *served.lock().unwrap() = published(&new);
    assert_eq!(call(&new).await, 401);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    s.db.clock.advance(time::Duration::seconds(31));
    assert_eq!(call(&new).await, 200);
    assert_eq!(call(&new).await, 200);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // Made-up kids within the interval: no more fetches.
    for _ in 0..3 {
        assert_eq!(call(&old).await, 401);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    task.abort();
}
