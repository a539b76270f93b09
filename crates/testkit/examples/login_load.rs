//! Load generator for `bench/login.sh`: CLIENTS concurrent browsers, each
//! fetching the login form (for its CSRF cookie) and posting a password,
//! for SECONDS; prints successful logins per second and their number.
//!
//!     login_load BASE_URL SECONDS CLIENTS PASSWORD USER...
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (base, seconds, clients, password, users) = (
        args[0].clone(),
        args[1].parse::<u64>().unwrap(),
        args[2].parse::<usize>().unwrap(),
        args[3].clone(),
        args[4..].to_vec(),
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (http, base, password, user) = (
                http.clone(),
                base.clone(),
                password.clone(),
                users[i % users.len()].clone(),
            );
            tokio::spawn(async move {
                let (mut ok, mut refused) = (0u64, 0u64);
                while Instant::now() < until {
                    let form = http.get(format!("{base}/login")).send().await.unwrap();
                    let csrf = form
                        .headers()
                        .get_all("set-cookie")
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .find_map(|v| v.strip_prefix("__Host-tilgang-csrf="))
                        .and_then(|v| v.split(';').next())
                        .unwrap()
                        .to_owned();
                    let _ = form.bytes().await;
                    let res = http
                        .post(format!("{base}/login"))
                        .header("cookie", format!("__Host-tilgang-csrf={csrf}"))
                        .form(&[
                            ("login", user.as_str()),
                            ("password", password.as_str()),
                            ("csrf", csrf.as_str()),
                        ])
                        .send()
                        .await
                        .unwrap();
                    if res.status() == reqwest::StatusCode::SEE_OTHER {
                        ok += 1;
                    } else {
                        refused += 1;
                    }
                }
                (ok, refused)
            })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        let (o, r) = t.await.unwrap();
        ok += o;
        refused += r;
    }
    if refused > 0 {
        eprintln!("warning: {refused} logins refused");
    }
    println!("{:.1} {ok}", ok as f64 / started.elapsed().as_secs_f64());
}
