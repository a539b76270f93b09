//! The lifecycle commands (`jobs`, `anonymize`, `person`) and the job
//! scheduler `serve` runs beside the audit checkpoints.

use crate::cli::{AnonymizeArgs, JobsCommand, PersonCommand};
use crate::commands::open;
use crate::config::Config;
use anyhow::{bail, Context as _, Result};
use serde_json::json;
use std::process::ExitCode;
use std::sync::Arc;
use tilgang_core::audit::{actions, NewEvent};
use tilgang_core::lifecycle::{self, person, Job, Rules};
use tilgang_core::{Clock, Error, SystemClock};

/// Who holds a job's lease: this process on this host.
fn holder() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}", std::process::id())
}

/// Runs the due lifecycle jobs every hour; each job runs at most once per
/// `every_hours` over all replicas (the lease row decides who).
pub async fn scheduler(state: Arc<tilgang_web::AppState>, rules: Rules, every_hours: i64) {
    let holder = holder();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let done = lifecycle::run_due(
            &*state.store,
            &*state.clock,
            &rules,
            &holder,
            every_hours * 3600,
        )
        .await;
        for (job, r) in done {
            match r {
                Ok(Some(o)) => tracing::info!(
                    job = job.name(),
                    found = o.affected.len(),
                    changed = o.changed,
                    "lifecycle job ran"
                ),
                Ok(None) => {}
                Err(e) => tracing::warn!(job = job.name(), error = %e, "lifecycle job failed"),
            }
        }
    }
}

pub async fn jobs(cfg: &Config, cmd: JobsCommand) -> Result<ExitCode> {
    let rules = cfg.lifecycle();
    match cmd {
        JobsCommand::List => {
            for job in Job::ALL {
                println!("{:<20} {}", job.name(), job.describe(&rules));
            }
            println!(
                "\nThe server runs each at most every {} hour(s); `tilgang jobs run NAME [--dry-run]` runs one now.",
                cfg.lifecycle_every_hours
            );
        }
        JobsCommand::Run {
            name,
            dry_run,
            json,
        } => {
            let Some(job) = Job::parse(&name) else {
                bail!(lifecycle::unknown_job(&name));
            };
            let (store, _) = open(cfg).await?;
            let out = lifecycle::run(
                &*store,
                &SystemClock,
                &rules,
                job,
                dry_run,
                "cli",
                &holder(),
                0,
            )
            .await?;
            let Some(out) = out else {
                println!(
                    "{name} is running elsewhere (another replica holds its lease); nothing done."
                );
                return Ok(ExitCode::from(4));
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(ExitCode::SUCCESS);
            }
            if !out.details.is_null() {
                retention_summary(job, &out);
            } else if dry_run {
                println!(
                    "{name} (dry run): would change {} person(s); nothing was written.",
                    out.affected.len()
                );
                for a in &out.affected {
                    println!("  #{} {}", a.person_id, a.user_id);
                }
            } else {
                println!(
                    "{name}: found {}, changed {}; the summary is in the audit log ({}).",
                    out.affected.len(),
                    out.changed,
                    job.action()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What a retention job did or (dry run) would do, in words.
fn retention_summary(job: Job, out: &lifecycle::Outcome) {
    let name = job.name();
    let d = &out.details;
    let (remove, clear, tail) = if out.dry_run {
        ("would remove", "clear", " (dry run: nothing was written)")
    } else {
        ("removed", "cleared", "")
    };
    if job == Job::ChangesRetention {
        match (d["through"].as_i64(), d["rows"].as_u64()) {
            (Some(seq), Some(rows)) if rows > 0 => println!(
                "{name}: {remove} {rows} changes feed row(s), through sequence {seq}{tail}."
            ),
            _ => println!("{name}: no changes feed rows are past their retention."),
        }
        return;
    }
    let counts = |key: &str| -> Vec<(String, u64)> {
        d[key]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(a, n)| (a.clone(), n.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (removed, redacted) = (counts("removed"), counts("redacted"));
    if removed.is_empty() && redacted.is_empty() {
        println!("{name}: no audit events are past their retention.");
        return;
    }
    let total = |c: &[(String, u64)]| c.iter().map(|(_, n)| n).sum::<u64>();
    println!(
        "{name}: {remove} {} whole event(s) through sequence {} and {clear} the content of {}{tail}.",
        total(&removed),
        d["removed_through"].as_i64().unwrap_or(0),
        total(&redacted)
    );
    for (what, c) in [("removed", &removed), ("cleared", &redacted)] {
        for (action, n) in c {
            println!("  {what:<8} {n:>10}  {action}");
        }
    }
    if !out.dry_run {
        println!("The summary is in the audit log ({}).", job.action());
    }
}

pub async fn anonymize(cfg: &Config, args: AnonymizeArgs) -> Result<()> {
    let (store, _) = open(cfg).await?;
    if args.out.exists() {
        bail!("{} exists; choose a new file", args.out.display());
    }
    let report = tilgang_store::anonymize(&cfg.database_url, &args.out)
        .await
        .with_context(|| format!("writing {}", args.out.display()))?;
    let ev = NewEvent::new("cli", actions::DATABASE_ANONYMIZED)
        .details(json!({"out": args.out.display().to_string(), "persons": report.persons}));
    store.append_audit(SystemClock.now(), vec![ev]).await?;
    println!(
        "Wrote {}: {} person(s), every personal field replaced; ids and relations kept.",
        args.out.display(),
        report.persons
    );
    Ok(())
}

pub async fn person(cfg: &Config, cmd: PersonCommand) -> Result<ExitCode> {
    let (store, keys) = open(cfg).await?;
    match cmd {
        PersonCommand::Export { id, out } => {
            let pid = person::find(&*store, &id).await?;
            let doc = person::export(&*store, &keys, &SystemClock, pid, "cli").await?;
            let text = serde_json::to_string_pretty(&doc)? + "\n";
            match out {
                Some(path) => {
                    std::fs::write(&path, text)
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!(
                        "Wrote everything held about person #{pid} to {} (it contains personal data, CPR too: hand it over securely).",
                        path.display()
                    );
                }
                None => print!("{text}"),
            }
        }
        PersonCommand::Erase { id, reason } => {
            if reason.trim().is_empty() {
                bail!("give a reason with --reason (a request's reference)");
            }
            let pid = person::find(&*store, &id).await?;
            match person::erase(&*store, &SystemClock, pid, "cli", reason.trim()).await {
                Ok(person::Erased::Done) => println!(
                    "Erased the personal data of person #{pid}; the audit log refers to them as #{pid} only."
                ),
                Ok(person::Erased::Already) => {
                    println!("Person #{pid} was erased before; nothing left to erase.")
                }
                Err(Error::Refused(msg)) => {
                    eprintln!("Not erased: {msg}.");
                    return Ok(ExitCode::from(3));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
