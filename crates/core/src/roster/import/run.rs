//! One import run: validate everything first (every problem reported, nothing
//! written when any is an error), then import institution by institution,
//! each in its own transaction. Parsing and preparation run on a producer
//! thread while the store writes, so both cores work.

use super::native::parse_document;
use super::source::is_native_member;
use super::{oneroster, Format, Issues, Location, Mode, Parsed, Source};
use crate::audit::actions;
use crate::audit::NewEvent;
use crate::crypto::DataKeys;
use crate::roster::apply::{apply, prepare, Context, Prepared, Summary};
use crate::store::{ImportTx, Store};
use crate::{Clock, Error, Result};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

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

/// The members of a source that hold native documents.
fn native_members(source: &Source) -> Result<Vec<String>> {
    let members = source.members()?;
    Ok(match source {
        Source::File(_) => members,
        _ => members
            .into_iter()
            .filter(|m| is_native_member(m))
            .collect(),
    })
}

/// Reads every native document of one member, one unit at a time. A single
/// NDJSON file is streamed line by line, so memory stays flat however large.
fn member_units(
    source: &Source,
    member: &str,
    mut f: impl FnMut(Unit) -> Result<()>,
) -> Result<()> {
    let label = source.label(member);
    let lower = member.to_ascii_lowercase();
    let named_ndjson = lower.ends_with(".ndjson") || lower.ends_with(".jsonl");
    if let Source::File(path) = source {
        if named_ndjson || first_line_is_a_document(path)? {
            use std::io::BufRead;
            let file = std::fs::File::open(path).map_err(|e| Error::io(&label, e))?;
            let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
            let mut line = Vec::new();
            let mut n = 0u64;
            loop {
                line.clear();
                n += 1;
                if reader
                    .read_until(b'\n', &mut line)
                    .map_err(|e| Error::io(&label, e))?
                    == 0
                {
                    return Ok(());
                }
                if !line.iter().all(u8::is_ascii_whitespace) {
                    f(Unit {
                        loc: Location::line(label.clone(), n),
                        bytes: std::mem::take(&mut line),
                    })?;
                }
            }
        }
    }
    let Some(bytes) = source.read_member(member)? else {
        return Ok(());
    };
    if named_ndjson {
        for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if !line.iter().all(u8::is_ascii_whitespace) {
                f(Unit {
                    loc: Location::line(label.clone(), i as u64 + 1),
                    bytes: line.to_vec(),
                })?;
            }
        }
        Ok(())
    } else {
        f(Unit {
            loc: Location::file(label),
            bytes,
        })
    }
}

/// Whether a file's first line is a whole JSON document (NDJSON), rather
/// than the start of one pretty-printed document.
fn first_line_is_a_document(path: &std::path::Path) -> Result<bool> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    let mut first = Vec::new();
    std::io::BufReader::new(file)
        .read_until(b'\n', &mut first)
        .map_err(|e| Error::io(path.display().to_string(), e))?;
    Ok(first.ends_with(b"\n") && serde_json::from_slice::<serde::de::IgnoredAny>(&first).is_ok())
}

fn wanted(parsed: &Parsed, only: &Option<String>) -> bool {
    only.as_deref()
        .is_none_or(|n| parsed.roster.institution.number == n)
}

/// One member's issues, and the institutions it delivers (with where).
type MemberCheck = (Issues, Vec<(String, Location)>);

/// Validates the whole input. Returns the mode, the issues, the number of
/// institutions, and (for OneRoster, which must be read whole anyway) the
/// parsed rosters. Native members are validated in parallel.
fn validate(
    source: &Source,
    format: Format,
    opts: &Options,
) -> Result<(Mode, Issues, usize, Option<Vec<Parsed>>)> {
    let mut issues = Issues::default();
    let mut found: Vec<(String, Location)> = Vec::new();
    let (mode, kept) = match format {
        Format::Native => {
            let mode = if opts.delta { Mode::Delta } else { Mode::Full };
            let per_member: Vec<Result<MemberCheck>> = native_members(source)?
                .par_iter()
                .map(|m| {
                    let mut issues = Issues::default();
                    let mut found = Vec::new();
                    member_units(source, m, |u| {
                        if let Some(p) = parse_document(&u.bytes, &u.loc, mode, true, &mut issues) {
                            if wanted(&p, &opts.institution) {
                                found.push((p.roster.institution.number, p.location));
                            }
                        }
                        Ok(())
                    })?;
                    Ok((issues, found))
                })
                .collect();
            for r in per_member {
                let (i, f) = r?;
                issues.0.extend(i.0);
                found.extend(f);
            }
            (mode, None)
        }
        Format::OneRoster => {
            let (mode, parsed) = oneroster::parse_bundle(source, &mut issues)?;
            let mode = if opts.delta { Mode::Delta } else { mode };
            let parsed: Vec<Parsed> = parsed
                .into_iter()
                .filter(|p| wanted(p, &opts.institution))
                .collect();
            found = parsed
                .iter()
                .map(|p| (p.roster.institution.number.clone(), p.location.clone()))
                .collect();
            (mode, Some(parsed))
        }
    };
    let mut seen: HashMap<&str, &Location> = HashMap::new();
    for (n, loc) in &found {
        if let Some(first) = seen.get(n.as_str()) {
            issues.error(loc, Some("institution.number"), format!("institution {n} is also delivered by {first}; deliver each institution once per import"));
        } else {
            seen.insert(n, loc);
        }
    }
    if let Some(n) = &opts.institution {
        if seen.is_empty() && !issues.has_errors() {
            return Err(Error::UnknownInstitution(format!(
                "{n}: the input holds no institution with this number"
            )));
        }
    }
    Ok((mode, issues, seen.len(), kept))
}

/// Institutions committed together at most, and the longest a group stays
/// open: few commits, yet little work lost to a crash. Each institution is
/// atomic either way: a group commits whole or not at all.
const GROUP_MAX: usize = 64;
const GROUP_TIME: Duration = Duration::from_secs(2);

async fn finish(tx: Box<dyn ImportTx + '_>, dry_run: bool) -> Result<()> {
    if dry_run {
        drop(tx);
        Ok(())
    } else {
        tx.commit().await
    }
}

/// Runs one import. Nothing is written when validation finds an error.
pub async fn run(
    store: &dyn Store,
    keys: &DataKeys,
    clock: &dyn Clock,
    source: &Source,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<RunReport> {
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
            let send = |p: Parsed, digest: Option<i64>| -> Result<()> {
                if wanted(&p, &only) {
                    // The receiver is gone only when the writer failed.
                    return tx
                        .send(Ok(prepare(p, &keys, digest)))
                        .map_err(|_| Error::Store("import stopped".into()));
                }
                Ok(())
            };
            let result = match kept {
                Some(parsed) => parsed.into_iter().try_for_each(|p| send(p, None)),
                None => native_members(&source).and_then(|members| {
                    members.par_iter().try_for_each(|m| {
                        member_units(&source, m, |u| {
                            let mut issues = Issues::default();
                            match parse_document(&u.bytes, &u.loc, mode, false, &mut issues) {
                                Some(p) => {
                                    send(p, Some(xxhash_rust::xxh3::xxh3_64(&u.bytes) as i64))
                                }
                                // Validated a moment ago: the input changed under us.
                                None => Err(Error::ImportInvalid(issues.0)),
                            }
                        })
                    })
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
        let mut group: Option<(Box<dyn ImportTx + '_>, usize, Instant)> = None;
        let mut committed = 0;
        for prepared in rx.iter() {
            let prepared = prepared?;
            let (tx, n, _) = match &mut group {
                Some(g) => g,
                None => group.insert((store.begin_import().await?, 0, Instant::now())),
            };
            match apply(&mut **tx, &prepared, &ctx).await {
                Ok(s) => {
                    progress.imported(&prepared.parsed.roster.institution.number, &s);
                    summary.add(&s);
                    imported += 1;
                    *n += 1;
                }
                // Dropping the group's transaction rolls it back whole: no
                // institution is half-applied, and groups committed before
                // stay. (Savepoints per institution would keep the others
                // in this group, but SQLite's sub-journal costs a fifth of
                // the import's time.)
                Err(e) => return Err(e),
            }
            if group
                .as_ref()
                .is_some_and(|(_, n, started)| *n >= GROUP_MAX || started.elapsed() >= GROUP_TIME)
            {
                if let Some((tx, _, _)) = group.take() {
                    finish(tx, opts.dry_run).await?;
                    committed += 1;
                    // Tables that started empty have grown: tell the planner
                    // before it picks sequential scans for the look-ups.
                    if committed == 1 && !opts.dry_run {
                        store.refresh_statistics().await?;
                    }
                }
            }
        }
        if let Some((tx, _, _)) = group.take() {
            finish(tx, opts.dry_run).await?;
        }
        if !opts.dry_run {
            store.refresh_statistics().await?;
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
        let event =
            NewEvent::new(opts.actor.clone(), actions::ROSTER_IMPORT).details(serde_json::json!({
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
