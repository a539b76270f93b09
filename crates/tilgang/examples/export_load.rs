//! The export benchmark (bench/export.sh): over an imported roster, grants
//! a benchmark service a package for export at every institution, then
//! exports each institution through `sharing::export` (audit included)
//! into a byte counter, and prints persons/s and MB/s. One line per figure.
//!
//!   cargo run --release -p tilgang --example export_load -- \
//!       DATABASE_URL MASTER_KEY_PATH [small|minimal|medium|large] [json|oneroster] [PAGE]

use anyhow::{bail, Context, Result};
use std::io::Write;
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

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SERVICE: &str = "bench-export";

/// Counts what would go over the wire.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(url), Some(key)) = (args.first(), args.get(1)) else {
        bail!("usage: export_load DATABASE_URL MASTER_KEY_PATH [package] [json|oneroster] [page]");
    };
    let package = Package::parse(args.get(2).map_or("small", |s| s.as_str()))
        .context("package: minimal, small, medium, large")?;
    let format = match args.get(3).map_or("json", |s| s.as_str()) {
        "json" => Format::Json,
        "oneroster" => Format::OneRoster,
        f => bail!("format {f}: json or oneroster"),
    };
    let page: usize = args.get(4).map_or(Ok(export::PAGE_SIZE), |s| s.parse())?;
    let store = tilgang_store::open(url).await?;
    store.migrate().await?;
    let keys = DataKeys::load_or_create(std::path::Path::new(key))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let institutions = store.institutions().await?;
    grant(&*store, &*clock, package, &institutions).await?;

    // One institution of about 1,000 pupils (the one nearest 1,100 persons
    // with staff), then every institution.
    let single = institutions
        .iter()
        .min_by_key(|i| (i.active_persons - 1_100).abs())
        .context("no institution imported")?;
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
    let p = export::write_all(&mut e, &mut Counter(0)).await?;
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

    let t = Instant::now();
    let (mut persons, mut bytes, mut events) = (0u64, 0u64, 0u64);
    for i in &institutions {
        let mut e = export::open(
            store.clone(),
            clock.clone(),
            keys.clone(),
            SERVICE,
            &i.number,
            format,
        )
        .await?
        .with_page_size(page);
        let p = export::write_all(&mut e, &mut Counter(0)).await?;
        persons += p.persons;
        bytes += p.bytes;
        events += p.audit_events;
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "all {} institutions: {persons} persons, {:.1} MB, {:.2} s",
        institutions.len(),
        bytes as f64 / 1e6,
        s
    );
    println!("persons/s: {:.0}", persons as f64 / s);
    println!("MB/s: {:.1}", bytes as f64 / s / 1e6);
    println!("audit events: {events}");
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
