//! Bare Argon2id verifications per second with tilgang's default parameters,
//! on as many threads as asked (default: all cores), for `bench/login.sh`.
//! Prints the rate and the CPU milliseconds one verification took.
//!
//!     cargo run --release -p tilgang-core --example argon2_rate -- [SECONDS] [THREADS]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};
use tilgang_core::identity::password::{hash_password, verify_password, HashParams};

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let threads: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let phc = hash_password(
        "rolig blæksprutte spiser kanelsnegle",
        &HashParams::default(),
    )
    .unwrap();
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let counts: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let phc = phc.clone();
                s.spawn(move || {
                    let mut n = 0;
                    while Instant::now() < until {
                        assert!(
                            verify_password("rolig blæksprutte spiser kanelsnegle", &phc).unwrap()
                        );
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total: u64 = counts.iter().sum();
    let cpu_ms = cpu_seconds() * 1000.0 / total as f64;
    println!(
        "{:.1} {cpu_ms:.2}",
        total as f64 / started.elapsed().as_secs_f64()
    );
}

/// User and system CPU time of this process so far, from /proc (Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15, in clock ticks (100 a second).
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}
