//! One import run: validate everything first (every problem reported, nothing
//! written when any is an error), then import institution by institution,
//! each in its own transaction. Parsing and preparation run on a producer
//! thread while the store writes, so both cores work.

use super::native::parse_document;
use super::source::is_native_member;
use super::{oneroster, Format, Issues, Location, Mode, Parsed, Source};
use crate::audit::NewEvent;
use crate::crypto::DataKeys;
use crate::roster::apply::{import_institution, prepare, Context, Prepared, Summary};
use crate::store::Store;
use crate::{Clock, Error, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::mpsc;

#[derive(Debug, Clone)]
pub struct Options {
    pub format: Option<Format>,
    /// Import only this institution's documents.
    pub institution: Option<String>,
    pub delta: bool,
    pub dry_run: bool,
    pub actor: String,
}

/// Told about progress; the CLI draws a bar, tests ignore it.
pub trait Progress: Send + Sync {
    fn validated(&self, _institutions: usize) {}
    fn imported(&self, _number: &str, _summary: &Summary) {}
}

pub struct NoProgress;
impl Progress for NoProgress {}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub format: Format,
    pub mode: Mode,
    pub dry_run: bool,
    pub institutions: usize,
    pub warnings: Vec<super::Issue>,
    pub summary: Summary,
}

/// A native unit of input: one JSON document, or one NDJSON line.
struct Unit {
    loc: Location,
    bytes: Vec<u8>,
}

/// Reads every native document of a source, one unit at a time.
fn native_units(source: &Source, mut f: impl FnMut(Unit) -> Result<()>) -> Result<()> {
    let members = source.members()?;
    let single = matches!(source, Source::File(_));
    for m in members.iter().filter(|m| single || is_native_member(m)) {
        let Some(bytes) = source.read_member(m)? else { continue };
        let label = source.label(m);
        let lower = m.to_ascii_lowercase();
        let ndjson = lower.ends_with(".ndjson") || lower.ends_with(".jsonl") || (single && looks_like_ndjson(&bytes));
        if ndjson {
            for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                f(Unit {
                    loc: Location::line(label.clone(), i as u64 + 1),
                    bytes: line.to_vec(),
                })?;
            }
        } else {
            f(Unit {
                loc: Location::file(label),
                bytes,
            })?;
        }
    }
    Ok(())
}

/// Several JSON values on separate lines, rather than one pretty document.
fn looks_like_ndjson(bytes: &[u8]) -> bool {
    let mut lines = bytes.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace));
    let first = lines.next().unwrap_or_default();
    serde_json::from_slice::<serde::de::IgnoredAny>(first).is_ok() && lines.next().is_some()
}

fn wanted(parsed: &Parsed, only: &Option<String>) -> bool {
    only.as_deref().is_none_or(|n| parsed.roster.institution.number == n)
}

/// Validates the whole input. Returns the mode, warnings, the number of
/// institutions, and (for OneRoster, which must be read whole anyway) the
/// parsed rosters.
fn validate(source: &Source, format: Format, opts: &Options) -> Result<(Mode, Issues, usize, Option<Vec<Parsed>>)> {
    let mut issues = Issues::default();
    let mut seen: HashMap<String, Location> = HashMap::new();
    let mut note = |p: &Parsed, issues: &mut Issues| {
        let n = &p.roster.institution.number;
        if let Some(first) = seen.get(n) {
            issues.error(&p.location, Some("institution.number"), format!("institution {n} is also delivered by {first}; deliver each institution once per import"));
        } else {
            seen.insert(n.clone(), p.location.clone());
        }
    };
    let (mode, kept) = match format {
        Format::Native => {
            let mode = if opts.delta { Mode::Delta } else { Mode::Full };
            native_units(source, |u| {
                if let Some(p) = parse_document(&u.bytes, &u.loc, mode, true, &mut issues) {
                    if wanted(&p, &opts.institution) {
                        note(&p, &mut issues);
                    }
                }
                Ok(())
            })?;
            (mode, None)
        }
        Format::OneRoster => {
            let (mode, parsed) = oneroster::parse_bundle(source, &mut issues)?;
            let mode = if opts.delta { Mode::Delta } else { mode };
            let parsed: Vec<Parsed> = parsed.into_iter().filter(|p| wanted(p, &opts.institution)).collect();
            for p in &parsed {
                note(p, &mut issues);
            }
            (mode, Some(parsed))
        }
    };
    if let Some(n) = &opts.institution {
        if seen.is_empty() && !issues.has_errors() {
            return Err(Error::UnknownInstitution(format!("{n}: the input holds no institution with this number")));
        }
    }
    Ok((mode, issues, seen.len(), kept))
}

/// Runs one import. Nothing is written when validation finds an error.
pub async fn run(store: &dyn Store, keys: &DataKeys, clock: &dyn Clock, source: &Source, opts: &Options, progress: &dyn Progress) -> Result<RunReport> {
    let format = match opts.format {
        Some(f) => f,
        None => super::detect_format(source)?,
    };
    let (mode, issues, institutions, kept) = validate(source, format, opts)?;
    if issues.has_errors() {
        return Err(Error::ImportInvalid(issues.0));
    }
    progress.validated(institutions);
    let ctx = Context {
        actor: opts.actor.clone(),
        now: clock.now(),
        mode,
        dry_run: opts.dry_run,
    };

    let (tx, rx) = mpsc::sync_channel::<Result<Prepared>>(4);
    let producer = {
        let source = source.clone();
        let keys = keys.clone();
        let only = opts.institution.clone();
        std::thread::spawn(move || {
            let send = |p: Parsed| {
                if wanted(&p, &only) {
                    // The receiver is gone only when the writer failed.
                    return tx.send(Ok(prepare(p, &keys))).map_err(|_| Error::Store("import stopped".into()));
                }
                Ok(())
            };
            let result = match kept {
                Some(parsed) => parsed.into_iter().try_for_each(send),
                None => native_units(&source, |u| {
                    let mut issues = Issues::default();
                    match parse_document(&u.bytes, &u.loc, mode, false, &mut issues) {
                        Some(p) => send(p),
                        // Validated a moment ago: the input changed under us.
                        None => Err(Error::ImportInvalid(issues.0)),
                    }
                }),
            };
            if let Err(e) = result {
                let _ = tx.send(Err(e));
            }
        })
    };

    let mut summary = Summary::default();
    let mut imported = 0;
    let outcome: Result<()> = async {
        for prepared in rx.iter() {
            let prepared = prepared?;
            let s = import_institution(store, &prepared, &ctx).await?;
            progress.imported(&prepared.parsed.roster.institution.number, &s);
            summary.add(&s);
            imported += 1;
        }
        Ok(())
    }
    .await;
    drop(rx);
    let _ = producer.join();
    outcome?;

    let report = RunReport {
        format,
        mode,
        dry_run: opts.dry_run,
        institutions: imported,
        warnings: issues.0,
        summary,
    };
    if !opts.dry_run {
        let event = NewEvent::new(opts.actor.clone(), "roster.import").details(serde_json::json!({
            "source": source.path().display().to_string(),
            "format": report.format,
            "mode": report.mode,
            "institutions": report.institutions,
            "warnings": report.warnings.len(),
            "summary": report.summary,
        }));
        store.append_audit(clock.now(), vec![event]).await?;
    }
    Ok(report)
}
