//! Audit log throughput for `bench/audit.sh`: appends EVENTS events shaped
//! like data-access events in batches of BATCH (as a request's own path
//! writes them: one transaction per batch), then verifies the whole chain.
//! Prints "append_per_s verify_per_s".
//!
//!     audit_rate DATABASE_URL EVENTS BATCH
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;
use tilgang_core::audit::checkpoint::verify_store;
use tilgang_core::audit::NewEvent;
use tilgang_core::{Clock, SystemClock};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = &args[0];
    let events: usize = args[1].parse().unwrap();
    let batch: usize = args[2].parse().unwrap();
    let store = tilgang_store::open(url).await.unwrap();
    store.migrate().await.unwrap();
    let started = Instant::now();
    let mut written = 0;
    while written < events {
        let n = batch.min(events - written);
        let batch: Vec<NewEvent> = (written..written + n)
            .map(|i| {
                NewEvent::new("service:9f2c1d7e", "data.lookup")
                    .institution(format!("{}", 101_001 + i % 1300))
                    .subjects(vec![i as i64 + 1])
                    .details(serde_json::json!({
                        "package": "small",
                        "delivery": "lookup",
                        "fields": ["given_name", "family_name", "roles", "groups"],
                    }))
            })
            .collect();
        store.append_audit(SystemClock.now(), batch).await.unwrap();
        written += n;
    }
    let append = written as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let v = verify_store(&*store).await.unwrap().unwrap();
    let verify = v.events as f64 / started.elapsed().as_secs_f64();
    println!("{append:.0} {verify:.0}");
}
