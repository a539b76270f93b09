//! The export benchmark (bench/export.sh): generates and imports the
//! synthetic roster into a SQLite file unless it is there, grants a
//! benchmark service a package for export at every institution, then
//! exports one institution of ~1,000 pupils and every institution through
//! `sharing::export` (audit included), dropping the bytes it makes, one
//! export at a time and then two at a time, and prints persons/s and MB/s.
//! In the store crate so that a release build needs neither the web crate
//! nor the binary.
//!
//!   cargo run --release -p tilgang-store --example export_load -- \
//!       DB_FILE MASTER_KEY_PATH INSTITUTIONS [small|medium|large] [json|oneroster] [PAGE]

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Instant;
use tilgang_core::audit::NewEvent;
use tilgang_core::crypto::DataKeys;
use tilgang_core::oidc::{self, Package, Service};
use tilgang_core::sharing::agreement::{
    self, Addressee, Decider, Delivery, Filters, NewProvider, RequestSpec, ServiceLink,
};
use tilgang_core::sharing::export::{self, Format};
use tilgang_core::{Clock, SystemClock};

const SERVICE: &str = "bench-export";

/// Pulls every chunk of `e` (as a client reading as fast as it can) and
/// drops it; the export's progress counts the bytes.
async fn drain(e: &mut export::Export) -> tilgang_core::Result<export::Progress> {
    while e.next_chunk().await?.is_some() {}
    Ok(e.progress())
}

type Result<T> = std::result::Result<T, Box<dyn StdError>>;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(db), Some(key), Some(n)) = (args.first(), args.get(1), args.get(2)) else {
        return Err("usage: export_load DB_FILE MASTER_KEY_PATH INSTITUTIONS [package] [json|oneroster] [page]".into());
    };
    let n: usize = n.parse()?;
    let package = Package::parse(args.get(3).map_or("small", |s| s.as_str()))
        .ok_or("package: small, medium, large")?;
    let format = match args.get(4).map_or("json", |s| s.as_str()) {
        "json" => Format::Json,
        "oneroster" => Format::OneRoster,
        f => return Err(format!("format {f}: json or oneroster").into()),
    };
    let page: usize = args.get(5).map_or(Ok(export::PAGE_SIZE), |s| s.parse())?;
    let fresh = !std::path::Path::new(db).exists();
    let store = tilgang_store::open(&format!("sqlite://{db}")).await?;
    store.migrate().await?;
    let keys = DataKeys::load_or_create(std::path::Path::new(key))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    if fresh {
        import(&*store, &keys, &*clock, db, n).await?;
    }
    let institutions = store.institutions().await?;
    grant(&*store, &*clock, package, &institutions).await?;

    // One institution of about 1,000 pupils (the one nearest 1,100 persons
    // with staff), then every institution.
    let single = institutions
        .iter()
        .min_by_key(|i| (i.active_persons - 1_100).abs())
        .ok_or("no institution imported")?;
    let mut e = export::open(
        store.clone(),
        clock.clone(),
        keys.clone(),
        SERVICE,
        &single.number,
        format,
    )
    .await?
    .with_page_size(page);
    let t = Instant::now();
    let p = drain(&mut e).await?;
    let s = t.elapsed().as_secs_f64();
    println!(
        "one institution ({}, {} persons): {:.3} s, {:.0} persons/s, {:.1} MB/s, {} audit events",
        single.number,
        p.persons,
        s,
        p.persons as f64 / s,
        p.bytes as f64 / s / 1e6,
        p.audit_events
    );

    // Every institution, one export at a time (one client), then two at
    // a time (a client exporting the country with two connections).
    for streams in [1, 2] {
        let t = Instant::now();
        let mut tasks = Vec::new();
        for part in 0..streams {
            let numbers: Vec<String> = institutions
                .iter()
                .skip(part)
                .step_by(streams)
                .map(|i| i.number.clone())
                .collect();
            let (store, clock, keys) = (store.clone(), clock.clone(), keys.clone());
            tasks.push(tokio::spawn(async move {
                let mut sum = (0u64, 0u64, 0u64);
                for number in numbers {
                    let mut e = export::open(
                        store.clone(),
                        clock.clone(),
                        keys.clone(),
                        SERVICE,
                        &number,
                        format,
                    )
                    .await?
                    .with_page_size(page);
                    let p = drain(&mut e).await?;
                    sum = (sum.0 + p.persons, sum.1 + p.bytes, sum.2 + p.audit_events);
                }
                Ok::<_, tilgang_core::Error>(sum)
            }));
        }
        let (mut persons, mut bytes, mut events) = (0u64, 0u64, 0u64);
        for task in tasks {
            let (p, b, e) = task.await??;
            (persons, bytes, events) = (persons + p, bytes + b, events + e);
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "all {} institutions, {streams} export(s) at a time: {persons} persons, {:.1} MB, {:.2} s, {:.0} persons/s, {:.1} MB/s, {events} audit events",
            institutions.len(),
            bytes as f64 / 1e6,
            s,
            persons as f64 / s,
            bytes as f64 / s / 1e6,
        );
    }
    Ok(())
}

/// Generates `n` institutions (seed 1, as `tilgang gen`) next to the
/// database and imports them.
async fn import(
    store: &dyn tilgang_core::store::Store,
    keys: &DataKeys,
    clock: &dyn Clock,
    db: &str,
    n: usize,
) -> Result<()> {
    use tilgang_core::roster::import::{native, run, Source};
    use tilgang_core::roster::synth::{self, Scale, SynthOptions};
    let dir = std::path::PathBuf::from(format!("{db}.roster"));
    std::fs::create_dir_all(&dir)?;
    let mut opts = SynthOptions::for_scale(Scale::National, 1);
    opts.institutions = n;
    let t = Instant::now();
    std::thread::scope(|s| {
        for part in 0..2 {
            let (dir, opts) = (&dir, &opts);
            s.spawn(move || {
                for i in (part..opts.institutions).step_by(2) {
                    let r = synth::institution(opts, i);
                    let json = serde_json::to_vec(&native::to_raw(&r)).unwrap_or_default();
                    let _ = std::fs::write(dir.join(format!("{i:05}.json")), json);
                }
            });
        }
    });
    eprintln!(
        "generated {n} institutions in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let opts = run::Options {
        format: None,
        institution: None,
        delta: false,
        dry_run: false,
        actor: "bench".into(),
    };
    run::run(
        store,
        keys,
        clock,
        &Source::open(&dir)?,
        &opts,
        &run::NoProgress,
    )
    .await?;
    eprintln!("imported in {:.1} s", t.elapsed().as_secs_f64());
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// Registers the benchmark service and approves `package` for export at
/// every institution (once: a second run finds the approvals in force).
async fn grant(
    store: &dyn tilgang_core::store::Store,
    clock: &dyn Clock,
    package: Package,
    institutions: &[tilgang_core::store::InstitutionInfo],
) -> Result<()> {
    if store.service(SERVICE).await?.is_none() {
        let service = Service {
            client_id: SERVICE.into(),
            name: "Export benchmark".into(),
            secret_hash: Some(oidc::hash_token("bench")),
            jwks_uri: None,
            jwks: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grants: vec!["client_credentials".into()],
            package,
            min_acr: "urn:tilgang:loa:1".into(),
            public: false,
            id_token_alg: "RS256".into(),
            pairwise_salt: oidc::random_salt(),
            created_at: clock.now().unix_timestamp(),
        };
        store
            .add_service(
                &service,
                clock.now(),
                NewEvent::new("bench", "oidc.service.added"),
            )
            .await?;
        let provider = agreement::add_provider(
            store,
            clock,
            "bench",
            &NewProvider {
                name: "Benchmark A/S".into(),
                cvr: "12345678".into(),
                address: "Vej 1".into(),
                contact: "bench@example.invalid".into(),
                security_contact: "bench@example.invalid".into(),
            },
        )
        .await?;
        agreement::link_service(
            store,
            clock,
            "bench",
            &ServiceLink {
                client_id: SERVICE.into(),
                provider_id: Some(provider),
                licence_required: false,
            },
        )
        .await?;
    }
    let missing: Vec<String> = {
        let mut v = Vec::new();
        for i in institutions {
            let a = agreement::current_approval(store, SERVICE, &i.number).await?;
            if !a.is_some_and(|a| a.spec.package == package && a.spec.delivery.export()) {
                v.push(i.number.clone());
            }
        }
        v
    };
    if missing.is_empty() {
        return Ok(());
    }
    let spec = RequestSpec {
        purpose: "Export benchmark".into(),
        package,
        delivery: Delivery::Export,
        filters: Filters::default(),
        sub_processors: vec![],
        locations: vec!["DK".into()],
        retention: "deleted after the run".into(),
        dpa_reference: "BENCH".into(),
    };
    let t = Instant::now();
    let ids = agreement::request(
        store,
        clock,
        "bench",
        SERVICE,
        &spec,
        &Addressee::List(missing),
    )
    .await?;
    for (_, id) in &ids {
        agreement::approve(store, clock, Decider::Operator("bench"), *id).await?;
    }
    eprintln!(
        "approved {package:?} for export at {} institutions in {:.1} s",
        ids.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
