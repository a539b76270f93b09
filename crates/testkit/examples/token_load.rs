//! Load generator for `bench/token.sh`: refresh grants and full code flows
//! (authorize with a logged-in session, then the token request) over HTTP.
//! Each of CLIENTS workers logs in once with a password before the clock
//! starts, so the figures exclude the login. Prints the rate, p50 and p99
//! latency in milliseconds and the number of completed operations.
//!
//!     token_load refresh|code BASE_URL SECONDS CLIENTS CLIENT_ID SECRET
//!         REDIRECT_URI VERIFIER CHALLENGE PASSWORD USER...
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reqwest::{Client, StatusCode};
use std::time::{Duration, Instant};

struct Setup {
    base: String,
    client_id: String,
    secret: String,
    redirect_uri: String,
    verifier: String,
    challenge: String,
}

fn cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// A password login; returns the session cookie.
async fn login(http: &Client, base: &str, user: &str, password: &str) -> String {
    let form = http.get(format!("{base}/login")).send().await.unwrap();
    let csrf = cookie(&form, "__Host-tilgang-csrf").unwrap();
    let res = http
        .post(format!("{base}/login"))
        .header("cookie", format!("__Host-tilgang-csrf={csrf}"))
        .form(&[("login", user), ("password", password), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "login of {user} failed"
    );
    cookie(&res, "__Host-tilgang").unwrap()
}

/// One authorization request and the token request for its code.
async fn code_flow(http: &Client, s: &Setup, session: &str) -> Option<serde_json::Value> {
    let mut url = url_with(
        &format!("{}/oidc/authorize", s.base),
        &[
            ("response_type", "code"),
            ("client_id", &s.client_id),
            ("redirect_uri", &s.redirect_uri),
            ("scope", "openid"),
            ("state", "bench"),
            ("nonce", "bench"),
            ("code_challenge", &s.challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let res = http
        .get(&url)
        .header("cookie", format!("__Host-tilgang={session}"))
        .send()
        .await
        .ok()?;
    url = res.headers().get("location")?.to_str().ok()?.to_owned();
    let code = url
        .split_once('?')?
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix("code="))?
        .to_owned();
    token(
        http,
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &s.redirect_uri),
            ("code_verifier", &s.verifier),
        ],
    )
    .await
}

fn url_with(base: &str, params: &[(&str, &str)]) -> String {
    let q: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect();
    format!("{base}?{}", q.join("&"))
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn token(http: &Client, s: &Setup, form: &[(&str, &str)]) -> Option<serde_json::Value> {
    let res = http
        .post(format!("{}/oidc/token", s.base))
        .basic_auth(&s.client_id, Some(&s.secret))
        .form(form)
        .send()
        .await
        .ok()?;
    if res.status() != StatusCode::OK {
        return None;
    }
    res.json().await.ok()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args[0].clone();
    let seconds: u64 = args[2].parse().unwrap();
    let clients: usize = args[3].parse().unwrap();
    let setup = std::sync::Arc::new(Setup {
        base: args[1].clone(),
        client_id: args[4].clone(),
        secret: args[5].clone(),
        redirect_uri: args[6].clone(),
        verifier: args[7].clone(),
        challenge: args[8].clone(),
    });
    let password = args[9].clone();
    let users = args[10..].to_vec();
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Logins (and the first code flow for refresh) before the clock starts.
    let mut starts = Vec::new();
    for i in 0..clients {
        let session = login(&http, &setup.base, &users[i % users.len()], &password).await;
        let refresh = if mode == "refresh" {
            let body = code_flow(&http, &setup, &session).await.unwrap();
            body["refresh_token"].as_str().unwrap().to_owned()
        } else {
            String::new()
        };
        starts.push((session, refresh));
    }

    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = starts
        .into_iter()
        .map(|(session, mut refresh)| {
            let (http, setup, mode) = (http.clone(), setup.clone(), mode.clone());
            tokio::spawn(async move {
                let (mut times, mut failed) = (Vec::new(), 0u64);
                while Instant::now() < until {
                    let t = Instant::now();
                    let ok = if mode == "refresh" {
                        let form = [("grant_type", "refresh_token"), ("refresh_token", &refresh)];
                        match token(&http, &setup, &form).await {
                            Some(body) => {
                                refresh = body["refresh_token"].as_str().unwrap().to_owned();
                                true
                            }
                            None => false,
                        }
                    } else {
                        code_flow(&http, &setup, &session).await.is_some()
                    };
                    if ok {
                        times.push(t.elapsed());
                    } else {
                        failed += 1;
                        if mode == "refresh" {
                            // The family is revoked: nothing more to rotate.
                            break;
                        }
                    }
                }
                (times, failed)
            })
        })
        .collect();
    let (mut times, mut failed) = (Vec::new(), 0);
    for t in tasks {
        let (ts, f) = t.await.unwrap();
        times.extend(ts);
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    if failed > 0 {
        eprintln!("warning: {failed} {mode} operations failed");
    }
    times.sort();
    let pct = |p: f64| {
        times
            .get(((times.len() as f64 * p) as usize).min(times.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{:.1} {:.2} {:.2} {}",
        times.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        times.len()
    );
}
