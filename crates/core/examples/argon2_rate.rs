//! Bare Argon2id verifications per second with tilgang's default parameters,
//! on as many threads as asked (default: all cores), for `bench/login.sh`.
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
    println!("{:.1}", total as f64 / started.elapsed().as_secs_f64());
}
