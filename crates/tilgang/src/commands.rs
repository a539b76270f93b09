//! The subcommands. Each loads what it needs, calls core and store, and
//! reports in words an operator can act on.

use crate::cli::*;
use crate::config::{Config, LogFormat};
use anyhow::{bail, Context as _, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use tilgang_core::audit::actions;
use tilgang_core::audit::{checkpoint, NewEvent};
use tilgang_core::crypto::DataKeys;
use tilgang_core::roster::apply::Summary;
use tilgang_core::roster::import::run::{self, Options, Progress};
use tilgang_core::roster::import::{native, Format, Source};
use tilgang_core::roster::synth::{self, Scale, SynthOptions};
use tilgang_core::store::Store;
use tilgang_core::{Clock, Error, SystemClock};

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let config = || Config::load(cli.config.as_deref()).map_err(anyhow::Error::msg);
    match cli.command {
        Command::Serve(args) => {
            let mut cfg = config()?;
            if let Some(l) = args.listen {
                cfg.listen = l;
            }
            if let Some(f) = args.log_format {
                cfg.log_format = f;
            }
            init_logging(&cfg);
            let (store, keys) = open(&cfg).await?;
            serve(store, keys, &cfg, None).await?;
        }
        Command::Demo(args) => demo(args).await?,
        Command::Openapi => print!("{}", tilgang_web::api::openapi_json()),
        Command::Import(args) => return import(&config()?, args).await,
        Command::Export(args) => export(&config()?, args).await?,
        Command::Gen(args) => gen(args)?,
        Command::Migrate => {
            let cfg = config()?;
            let store = tilgang_store::open(&cfg.database_url).await?;
            let m = store.migrate().await?;
            if m.applied.is_empty() {
                println!(
                    "The {} database is up to date (schema version {}).",
                    store.dialect(),
                    m.version
                );
            } else {
                println!(
                    "Applied {} to the {} database; schema version {}.",
                    m.applied.join(", "),
                    store.dialect(),
                    m.version
                );
            }
        }
        Command::Audit(AuditCommand::Verify) => return audit_verify(&config()?).await,
        Command::Audit(AuditCommand::Checkpoint(cmd)) => audit_checkpoint(&config()?, cmd).await?,
        Command::Audit(AuditCommand::Search(args)) => audit_search(&config()?, args).await?,
        Command::Audit(AuditCommand::Prune) => {
            let run = JobsCommand::Run {
                name: tilgang_core::lifecycle::Job::AuditRetention.name().into(),
                dry_run: false,
                json: false,
            };
            return crate::lifecycle::jobs(&config()?, run).await;
        }
        Command::Healthcheck(args) => return healthcheck(&config()?, args).await,
        Command::SecurityReports => {
            let (store, _) = open(&config()?).await?;
            let reports = store.reports().await?;
            if reports.is_empty() {
                println!("No security reports.");
            }
            for r in reports {
                let at = time::OffsetDateTime::from_unix_timestamp(r.received_at)?;
                println!("{} received {at}", r.reference);
                println!(
                    "  contact: {}",
                    if r.contact.is_empty() {
                        "(none given)"
                    } else {
                        &r.contact
                    }
                );
                match (r.acknowledged_at, &r.acknowledged_by) {
                    (Some(at), by) => println!(
                        "  status: acknowledged {} by {}",
                        time::OffsetDateTime::from_unix_timestamp(at)?,
                        by.as_deref().unwrap_or("?")
                    ),
                    (None, _) => println!("  status: new"),
                }
                println!("  summary: {}", r.summary);
                for line in r.details.lines() {
                    println!("  | {line}");
                }
                println!();
            }
        }
        Command::User(cmd) => return user(&config()?, cmd).await,
        Command::Service(cmd) => {
            return crate::services::service(open(&config()?).await?, cmd).await
        }
        Command::Keys(cmd) => return crate::services::keys(open(&config()?).await?, cmd).await,
        Command::Provider(cmd) => {
            let cfg = config()?;
            return crate::sharing::provider(open(&cfg).await?, cfg.login(), cmd).await;
        }
        Command::Sharing(cmd) => {
            return crate::sharing::sharing(open(&config()?).await?, cmd).await
        }
        Command::Licence(cmd) => {
            return crate::sharing::licence(open(&config()?).await?, cmd).await
        }
        Command::Jobs(cmd) => return crate::lifecycle::jobs(&config()?, cmd).await,
        Command::Anonymize(args) => crate::lifecycle::anonymize(&config()?, args).await?,
        Command::Person(cmd) => return crate::lifecycle::person(&config()?, cmd).await,
        Command::Config(ConfigCommand::Check) => {
            let cfg = config()?;
            println!("The configuration is valid. Effective values (secrets hidden):\n");
            print!("{}", toml_like(&cfg.redacted()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn toml_like(cfg: &Config) -> String {
    let value = serde_json::to_value(cfg).unwrap_or_default();
    let mut out = String::new();
    if let Some(map) = value.as_object() {
        for (k, v) in map {
            out.push_str(&format!("{k} = {v}\n"));
        }
    }
    out
}

fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match cfg.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Opens and migrates the store, and loads (or creates) the master key.
pub(crate) async fn open(cfg: &Config) -> Result<(Arc<dyn Store>, DataKeys)> {
    let store = tilgang_store::open(&cfg.database_url)
        .await
        .with_context(|| format!("opening {}", tilgang_store::redact_url(&cfg.database_url)))?;
    let m = store.migrate().await?;
    if !m.applied.is_empty() {
        tracing::info!(applied = ?m.applied, "database migrated");
    }
    let keys = DataKeys::load_or_create(&cfg.master_key_path)?;
    Ok((store, keys))
}

async fn serve(
    store: Arc<dyn Store>,
    keys: DataKeys,
    cfg: &Config,
    banner: Option<String>,
) -> Result<()> {
    let listen = cfg.listen.as_str();
    // OIDC signing keys: generated at first start (the server also rotates
    // them on schedule as it signs).
    tilgang_web::oidc::ensure_keys(&*store, &keys, &SystemClock, &Default::default()).await?;
    let state = Arc::new(tilgang_web::AppState {
        store,
        clock: Arc::new(SystemClock),
        metrics: Default::default(),
        version: env!("CARGO_PKG_VERSION"),
        login: cfg.login(),
        hashing: tilgang_web::hashing_permits(),
        keys: Arc::new(keys),
        public_url: cfg.public_url(),
        security_contacts: cfg.security_contacts.clone(),
        oidc: Default::default(),
        smtp: cfg.smtp(),
        api: tilgang_web::api::ApiState::new(cfg.api()),
    });
    // The checkpoint key exists before anyone asks for it; then a
    // checkpoint is signed whenever one is due (every replica may try).
    checkpoint::signing_key(&*state.store, &state.keys, &*state.clock).await?;
    tokio::spawn(checkpoints(state.clone(), cfg.checkpoints()));
    tokio::spawn(crate::lifecycle::scheduler(
        state.clone(),
        cfg.lifecycle(),
        cfg.lifecycle_every_hours,
    ));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "tilgang is serving");
    if let Some(b) = banner {
        println!("{b} http://{addr}/");
    }
    tilgang_web::serve(listener, state, shutdown()).await?;
    Ok(())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn demo(args: DemoArgs) -> Result<()> {
    let cfg = Config {
        database_url: format!("sqlite://{}", args.database.display()),
        master_key_path: args.database.with_extension("key"),
        listen: args.listen,
        ..Config::default()
    };
    init_logging(&cfg);
    let fresh = !args.database.exists();
    let (store, keys) = open(&cfg).await?;
    if fresh || store.counts().await?.institutions == 0 {
        println!(
            "Generating a demo municipality into {} …",
            args.database.display()
        );
        let dir = tempfile_dir()?;
        write_synth(
            &SynthOptions::for_scale(Scale::Municipality, 1),
            dir.path(),
            false,
            0,
        )?;
        let report = run::run(
            &*store,
            &keys,
            &SystemClock,
            &Source::open(dir.path())?,
            &import_options("demo", false, false, None, None),
            &run::NoProgress,
        )
        .await?;
        println!("{}", summary_text(&report.summary, report.institutions));
        let _ = std::fs::remove_dir_all(dir.path());
    } else {
        println!("Reusing {}.", args.database.display());
    }
    serve(store, keys, &cfg, Some("tilgang demo is running on".into())).await
}

struct TempDir(std::path::PathBuf);
impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}
fn tempfile_dir() -> Result<TempDir> {
    let dir = std::env::temp_dir().join(format!("tilgang-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(TempDir(dir))
}

fn import_options(
    actor: &str,
    delta: bool,
    dry_run: bool,
    format: Option<Format>,
    institution: Option<String>,
) -> Options {
    Options {
        format,
        institution,
        delta,
        dry_run,
        actor: actor.to_owned(),
    }
}

struct Bar(ProgressBar);
impl Progress for Bar {
    fn validated(&self, institutions: usize) {
        self.0.set_length(institutions as u64);
        self.0.set_message("importing");
    }
    fn imported(&self, number: &str, _summary: &Summary) {
        self.0.set_message(format!("institution {number}"));
        self.0.inc(1);
    }
}

async fn import(cfg: &Config, args: ImportArgs) -> Result<ExitCode> {
    let (store, keys) = open(cfg).await?;
    let source = Source::open(&args.path)?;
    let format = args.format.map(|f| match f {
        FormatArg::Native => Format::Native,
        FormatArg::Oneroster => Format::OneRoster,
    });
    let bar = if std::io::stderr().is_terminal() && !args.json {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg:30} [{bar:40}] {pos}/{len} institutions ({eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b.set_message("validating");
        b
    } else {
        ProgressBar::hidden()
    };
    let opts = import_options("cli", args.delta, args.dry_run, format, args.institution);
    let started = std::time::Instant::now();
    let result = run::run(
        &*store,
        &keys,
        &SystemClock,
        &source,
        &opts,
        &Bar(bar.clone()),
    )
    .await;
    bar.finish_and_clear();
    match result {
        Ok(report) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                for w in &report.warnings {
                    eprintln!("{w}");
                }
                let what = if report.dry_run {
                    "Dry run (nothing written)"
                } else {
                    "Imported"
                };
                println!(
                    "{what}: {} in {:.1} s",
                    summary_text(&report.summary, report.institutions),
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(Error::ImportInvalid(issues)) => {
            let errors = issues.iter().filter(|i| i.is_error()).count();
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"code": "ROSTER_IMPORT_INVALID", "issues": issues})
                    )?
                );
            } else {
                for i in &issues {
                    eprintln!("{i}");
                }
                eprintln!("The import was rejected: {errors} error(s). Nothing was written. Fix the input and run the import again.");
            }
            Ok(ExitCode::from(3))
        }
        Err(e) => Err(e.into()),
    }
}

fn summary_text(s: &Summary, institutions: usize) -> String {
    let t = |name: &str, t: &tilgang_core::roster::apply::Tally| {
        format!(
            "{name}: {} created, {} updated, {} ended, {} unchanged",
            t.created, t.updated, t.ended, t.unchanged
        )
    };
    format!(
        "{institutions} institution(s)\n  {}\n  {}\n  {}\n  {}\n  {}\n  {}\n  persons inactivated: {}, reactivated: {}",
        t("institutions", &s.institutions),
        t("persons", &s.persons),
        t("roles", &s.roles),
        t("groups", &s.groups),
        t("memberships", &s.memberships),
        t("contact relations", &s.contacts),
        s.inactivated,
        s.reactivated
    )
}

async fn export(cfg: &Config, args: ExportArgs) -> Result<()> {
    let (store, keys) = open(cfg).await?;
    let Some((mut roster, stored)) = store.institution_roster(&args.institution).await? else {
        bail!(
            "no institution {} in the roster (see the institutions with `tilgang export --help`)",
            args.institution
        );
    };
    if args.include_cpr {
        for (p, s) in roster.persons.iter_mut().zip(&stored) {
            p.cpr = s
                .cpr_enc
                .as_deref()
                .map(|b| keys.decrypt_cpr(b))
                .transpose()?;
        }
    }
    let event = NewEvent::new("cli", actions::ROSTER_EXPORT)
        .institution(args.institution.clone())
        .subjects(stored.iter().map(|s| s.id).collect())
        .details(serde_json::json!({"format": "native", "include_cpr": args.include_cpr}));
    store.append_audit(SystemClock.now(), vec![event]).await?;
    let json = serde_json::to_vec_pretty(&native::to_raw(&roster))?;
    match args.out {
        Some(path) => {
            std::fs::write(&path, &json).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "Wrote {} persons of institution {} to {}.",
                roster.persons.len(),
                args.institution,
                path.display()
            );
        }
        None => std::io::stdout().write_all(&json)?,
    }
    Ok(())
}

/// A stable choice of roughly `percent`% of user ids (FNV-1a).
fn chosen(user_id: &str, percent: u8) -> bool {
    let h = user_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    h % 100 < u64::from(percent)
}

fn write_synth(
    opts: &SynthOptions,
    dir: &Path,
    progress: bool,
    changed_percent: u8,
) -> Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let bar = if progress && std::io::stderr().is_terminal() {
        ProgressBar::new(opts.institutions as u64)
    } else {
        ProgressBar::hidden()
    };
    let persons: usize = (0..opts.institutions)
        .into_par_iter()
        .map(|i| -> Result<usize> {
            let mut roster = synth::institution(opts, i);
            for p in roster
                .persons
                .iter_mut()
                .filter(|p| chosen(&p.user_id, changed_percent))
            {
                p.family_name.push_str("-Ny");
            }
            let raw = native::to_raw(&roster);
            let path = dir.join(format!("{}.json", roster.institution.number));
            let mut f = std::io::BufWriter::new(
                std::fs::File::create(&path)
                    .with_context(|| format!("creating {}", path.display()))?,
            );
            serde_json::to_writer(&mut f, &raw)?;
            f.flush()?;
            bar.inc(1);
            Ok(roster.persons.len())
        })
        .try_reduce(|| 0, |a, b| Ok(a + b))?;
    bar.finish_and_clear();
    Ok(persons)
}

fn gen(args: GenArgs) -> Result<()> {
    let scale = match args.scale {
        ScaleArg::School => Scale::School,
        ScaleArg::Municipality => Scale::Municipality,
        ScaleArg::National => Scale::National,
    };
    let mut opts = SynthOptions::for_scale(scale, args.seed);
    if let Some(n) = args.institutions {
        opts.institutions = n;
    }
    let started = std::time::Instant::now();
    let persons = write_synth(&opts, &args.out, true, args.changed_percent)?;
    println!(
        "Wrote {} institution(s) with {persons} person records to {} in {:.1} s. Import with: tilgang import {}",
        opts.institutions,
        args.out.display(),
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}

async fn audit_verify(cfg: &Config) -> Result<ExitCode> {
    let store = tilgang_store::open(&cfg.database_url).await?;
    store.migrate().await?;
    match checkpoint::verify_store(&*store).await? {
        Ok(v) => {
            println!(
                "audit chain intact: {} event(s), {} signed checkpoint(s), head {} {}",
                v.events,
                v.checkpoints,
                v.head.seq,
                hex_short(&v.head.hash)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(b) => {
            println!("audit chain BROKEN at sequence {}: {}", b.seq, b.reason);
            Ok(ExitCode::from(1))
        }
    }
}

/// Signs audit checkpoints while the server runs (retention is a
/// lifecycle job, `audit-retention`).
async fn checkpoints(state: Arc<tilgang_web::AppState>, policy: checkpoint::CheckpointPolicy) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        let made =
            checkpoint::checkpoint_if_due(&*state.store, &state.keys, &*state.clock, policy, false)
                .await;
        match made {
            Ok(Some(cp)) => tracing::info!(seq = cp.seq, "audit checkpoint signed"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "audit checkpoint failed"),
        }
    }
}

async fn audit_checkpoint(cfg: &Config, cmd: CheckpointCommand) -> Result<()> {
    let (store, keys) = open(cfg).await?;
    match cmd {
        CheckpointCommand::Make => {
            let policy = checkpoint::CheckpointPolicy::default();
            match checkpoint::checkpoint_if_due(&*store, &keys, &SystemClock, policy, true).await? {
                Some(cp) => println!("{}", serde_json::to_string_pretty(&cp)?),
                None => println!("Nothing new since the last checkpoint."),
            }
        }
        CheckpointCommand::Export { out } => {
            checkpoint::signing_key(&*store, &keys, &SystemClock).await?;
            let key = store.audit_key().await?.map(|k| k.jwk());
            let mut all = Vec::new();
            loop {
                let after = all.last().map_or(0, |c: &checkpoint::Checkpoint| c.seq);
                let page = store.checkpoints(after, 10_000).await?;
                if page.is_empty() {
                    break;
                }
                all.extend(page);
            }
            let doc = serde_json::to_string_pretty(&serde_json::json!({
                "key": key,
                "checkpoints": all,
            }))?;
            match out {
                Some(path) => {
                    std::fs::write(&path, doc + "\n")
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!("Wrote {} checkpoint(s) to {}.", all.len(), path.display());
                }
                None => println!("{doc}"),
            }
        }
    }
    Ok(())
}

fn hex_short(h: &[u8; 32]) -> String {
    h.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

async fn healthcheck(cfg: &Config, args: HealthcheckArgs) -> Result<ExitCode> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let base = args.url.unwrap_or_else(|| format!("http://{}", cfg.listen));
    let Some(hostport) = base
        .strip_prefix("http://")
        .map(|s| s.trim_end_matches('/'))
    else {
        bail!("--url must start with http:// (the check runs next to the server, before any TLS proxy)");
    };
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(hostport).await?;
        s.write_all(
            format!("GET /readyz HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf).into_owned())
    };
    match tokio::time::timeout(std::time::Duration::from_secs(5), attempt).await {
        Ok(Ok(resp)) if resp.starts_with("HTTP/1.1 200") => {
            println!("ready: {base}");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Ok(resp)) => {
            println!(
                "not ready: {base} answered {}",
                resp.lines().next().unwrap_or("")
            );
            Ok(ExitCode::from(1))
        }
        Ok(Err(e)) => {
            println!("not ready: {base}: {e}");
            Ok(ExitCode::from(1))
        }
        Err(_) => {
            println!("not ready: {base} did not answer within 5 s");
            Ok(ExitCode::from(1))
        }
    }
}

/// `user grant-right` and `user revoke-right`, at an institution or for a
/// municipality.
async fn set_right(
    store: &dyn tilgang_core::store::Store,
    user_id: &str,
    right: Option<&str>,
    at: &RightScope,
    reason: &str,
    grant: bool,
) -> Result<ExitCode> {
    use tilgang_core::identity::rights::{
        self, GrantOutcome, INSTITUTION_ADMIN, MUNICIPALITY_ADMIN, OPERATOR, PUPIL_RESET,
    };
    if right == Some(OPERATOR) {
        if at.institution.is_some() || at.municipality.is_some() {
            bail!("the operator right is not tied to an institution; leave out --institution and --municipality");
        }
        let outcome =
            rights::operator_set_operator(store, &SystemClock, user_id, reason, grant, "cli")
                .await?;
        match outcome {
            GrantOutcome::Done => println!(
                "{user_id} {} an operator (security reports on /operator).",
                if grant { "is now" } else { "is no longer" }
            ),
            GrantOutcome::Unchanged => println!("{user_id} was not an operator; nothing changed."),
            GrantOutcome::NoReason => bail!("give a reason with --reason"),
            GrantOutcome::NotFound => bail!("no person with user id {user_id}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (outcome, right, place) = match (&at.institution, &at.municipality) {
        (Some(number), _) => {
            let right = right.unwrap_or(PUPIL_RESET);
            let outcome = rights::operator_set_right(
                store,
                &SystemClock,
                right,
                number,
                user_id,
                reason,
                grant,
                "cli",
            )
            .await?;
            (outcome, right, format!("institution {number}"))
        }
        (None, Some(code)) => {
            let right = right.unwrap_or(MUNICIPALITY_ADMIN);
            let outcome = rights::operator_set_municipality_right(
                store,
                &SystemClock,
                right,
                code,
                user_id,
                reason,
                grant,
                "cli",
            )
            .await?;
            (outcome, right, format!("municipality {code}"))
        }
        (None, None) => bail!("name the place with --institution or --municipality"),
    };
    match outcome {
        GrantOutcome::Done if grant && right == MUNICIPALITY_ADMIN => {
            println!("{user_id} is now a municipality admin of {place} (an admin at each of its institutions).")
        }
        GrantOutcome::Done if grant && right == INSTITUTION_ADMIN => {
            println!("{user_id} is now an institution admin at {place}.")
        }
        GrantOutcome::Done if grant => {
            println!("{user_id} may now reset pupils' logins at {place}.")
        }
        GrantOutcome::Done => println!(
            "{user_id} no longer holds the granted right {right} at {place} (a right from a roster role stays)."
        ),
        GrantOutcome::Unchanged => {
            println!("{user_id} held no granted right {right} at {place}; nothing changed.")
        }
        GrantOutcome::NoReason => bail!("give a reason with --reason"),
        GrantOutcome::NotFound if at.municipality.is_some() => {
            bail!("{user_id} is not an active employee anywhere")
        }
        GrantOutcome::NotFound => {
            bail!("{user_id} is not an active employee of {place}")
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn user(cfg: &Config, cmd: UserCommand) -> Result<ExitCode> {
    use tilgang_core::identity::login::{self, SetPassword};
    let (store, _keys) = open(cfg).await?;
    let login_cfg = cfg.login();
    let user_id = match &cmd {
        UserCommand::ActivationCode { user_id }
        | UserCommand::SetPassword { user_id }
        | UserCommand::Unlock { user_id }
        | UserCommand::ResetFactors { user_id } => user_id,
        UserCommand::GrantRight {
            user_id,
            right,
            at,
            reason,
        }
        | UserCommand::RevokeRight {
            user_id,
            right,
            at,
            reason,
        } => {
            let grant = matches!(cmd, UserCommand::GrantRight { .. });
            return set_right(&*store, user_id, right.as_deref(), at, reason, grant).await;
        }
    };
    let Some(account) = store.account(user_id).await? else {
        bail!("no person with user id {user_id} in the roster");
    };
    match cmd {
        UserCommand::ActivationCode { .. } => {
            let code =
                login::issue_activation(&*store, &SystemClock, &login_cfg, &account, "cli").await?;
            println!(
                "Activation code for {} {} ({user_id}): {code}",
                account.given_name, account.family_name
            );
            println!("It works once, for 7 days, at /activate. Hand it over in person or in a sealed letter.");
        }
        UserCommand::SetPassword { .. } => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\n', '\r']);
            match login::set_password(&*store, &SystemClock, &login_cfg, &account, password, "cli")
                .await?
            {
                SetPassword::Done => {
                    println!("The password of {user_id} is set; their sessions were ended.")
                }
                SetPassword::Rejected(problems) => {
                    for p in &problems {
                        eprintln!("refused: {}", p.code());
                    }
                    eprintln!("The password was not set: it does not meet the password policy.");
                    return Ok(ExitCode::from(3));
                }
                SetPassword::BadCode => bail!("the password was not set"),
            }
        }
        UserCommand::GrantRight { .. } | UserCommand::RevokeRight { .. } => {}
        UserCommand::Unlock { .. } => {
            let ev =
                NewEvent::new("cli", actions::ACCOUNT_UNLOCKED).subjects(vec![account.person_id]);
            store
                .unlock(account.person_id, SystemClock.now(), ev)
                .await?;
            println!("{user_id} is unlocked.");
        }
        UserCommand::ResetFactors { .. } => {
            // One factor at a time, each audited; the last takes the
            // recovery codes with it.
            let factors = store.second_factors(account.person_id).await?;
            for f in &factors {
                let ev = NewEvent::new("cli", actions::FACTOR_REMOVED)
                    .subjects(vec![account.person_id])
                    .details(serde_json::json!({"factor": f.id, "reset": true}));
                store
                    .remove_factor(account.person_id, f.id, SystemClock.now(), ev)
                    .await?;
            }
            println!(
                "{user_id}: {} second factor(s) and the recovery codes removed; they can add new ones after logging in with their password.",
                factors.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A day (`2026-11-01`, its start; with `end`, the start of the next day)
/// or an RFC 3339 time, as microseconds since the epoch.
fn time_arg(s: &str, end: bool) -> Result<i64> {
    let day = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &day) {
        let d = if end { d.next_day().unwrap_or(d) } else { d };
        return Ok(d.midnight().assume_utc().unix_timestamp() * 1_000_000);
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| anyhow::anyhow!("{s:?} is neither a day (2026-11-01) nor an RFC 3339 time"))?;
    Ok((t.unix_timestamp_nanos() / 1_000) as i64)
}

async fn audit_search(cfg: &Config, a: AuditSearchArgs) -> Result<()> {
    use tilgang_core::audit::search::{self, Query, Scope};
    if let Some(action) = &a.action {
        if !actions::is_known(action) {
            anyhow::bail!(
                "unknown action {action:?}; the actions are listed in docs/operations.md"
            );
        }
    }
    let (store, _) = open(cfg).await?;
    let person = match &a.person {
        Some(u) => Some(
            store
                .account(u)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no person with user id {u:?}"))?
                .person_id,
        ),
        None => None,
    };
    let query = Query {
        person,
        service: a.service,
        action: a.action,
        from_us: a.from.as_deref().map(|s| time_arg(s, false)).transpose()?,
        to_us: a.to.as_deref().map(|s| time_arg(s, true)).transpose()?,
        institution: a.institution,
        after: a.after,
        limit: a.limit,
    };
    let page = search::search(&*store, &SystemClock, "cli", &Scope::All, &query).await?;
    for e in &page.events {
        println!("{}", serde_json::to_string(e)?);
    }
    match page.next {
        Some(n) => eprintln!("{} event(s); more with --after {n}", page.events.len()),
        None => eprintln!("{} event(s); no more", page.events.len()),
    }
    Ok(())
}
