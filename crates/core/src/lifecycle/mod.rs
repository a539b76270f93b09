//! The lifecycle of accounts and personal data: the rules (when an unused
//! account is closed, an inactive person archived, their data erased), the
//! jobs that apply them on a schedule or by hand, and the person's rights
//! (export, erase) in [`person`].
//!
//! A person is inactive from the day the roster stops delivering them
//! (`inactive_since`, set by the import): no login, not in exports. Every job
//! is idempotent (conditional updates) and takes a lease row first, so
//! replicas sharing a database never run the same job at once. A run writes
//! one audit event with its summary; a dry run writes nothing.

pub mod former;
pub mod person;

use crate::audit::retention::{self, Retention};
use crate::audit::{actions, NewEvent};
use crate::store::lifecycle::{with_changed, Affected};
use crate::store::Store;
use crate::{Clock, Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::Duration;

/// The rules, in days; defaults from the seeds (002, 003).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    /// An unused account of a pupil, employee or contact person is closed
    /// after this many days (12 months).
    pub close_unused_days: i64,
    /// … of an external (trainee, external role) after this many (3 months).
    pub close_unused_external_days: i64,
    /// An inactive person is archived after this many days (3 years).
    pub archive_after_days: i64,
    /// An inactive person's data is erased after this many days; `None`
    /// keeps archived persons until an operator erases them.
    pub erase_after_days: Option<i64>,
    /// Import input files kept by tilgang are deleted after this many days.
    pub import_files_days: i64,
    /// How long audit events keep their content, per action.
    pub audit: Retention,
    /// Changes feed rows are removed after this many days (longer than
    /// the six months within which providers must delete, so a provider
    /// that polls at least monthly never misses an end or a deletion).
    pub changes_days: i64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            close_unused_days: 365,
            close_unused_external_days: 92,
            archive_after_days: 3 * 365 + 1,
            erase_after_days: Some(5 * 365 + 1),
            import_files_days: 90,
            audit: Retention::default(),
            changes_days: 400,
        }
    }
}

impl Rules {
    pub fn validate(&self) -> std::result::Result<(), String> {
        let days = [
            self.close_unused_days,
            self.close_unused_external_days,
            self.archive_after_days,
            self.import_files_days,
            self.changes_days,
        ];
        if days.iter().any(|d| *d < 1) {
            return Err("every lifecycle period must be at least 1 day".into());
        }
        if self
            .erase_after_days
            .is_some_and(|e| e < self.archive_after_days)
        {
            return Err("erase_after_days must not be shorter than archive_after_days".into());
        }
        self.audit.validate()
    }
}

/// The scheduled jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    CloseUnused,
    ArchiveInactive,
    EraseExpired,
    PurgeImportFiles,
    ChangesRetention,
    AuditRetention,
}

impl Job {
    pub const ALL: &'static [Job] = &[
        Job::CloseUnused,
        Job::ArchiveInactive,
        Job::EraseExpired,
        Job::PurgeImportFiles,
        Job::ChangesRetention,
        Job::AuditRetention,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Job::CloseUnused => "close-unused",
            Job::ArchiveInactive => "archive-inactive",
            Job::EraseExpired => "erase-expired",
            Job::PurgeImportFiles => "purge-import-files",
            Job::ChangesRetention => "changes-retention",
            Job::AuditRetention => "audit-retention",
        }
    }

    /// The audit action a run of the job writes.
    pub fn action(self) -> &'static str {
        match self {
            Job::CloseUnused => actions::LIFECYCLE_CLOSE_UNUSED,
            Job::ArchiveInactive => actions::LIFECYCLE_ARCHIVE_INACTIVE,
            Job::EraseExpired => actions::LIFECYCLE_ERASE_EXPIRED,
            Job::PurgeImportFiles => actions::LIFECYCLE_PURGE_IMPORT_FILES,
            Job::ChangesRetention => actions::LIFECYCLE_CHANGES_RETENTION,
            Job::AuditRetention => actions::AUDIT_PRUNED,
        }
    }

    pub fn parse(name: &str) -> Option<Job> {
        Job::ALL.iter().copied().find(|j| j.name() == name)
    }

    /// What the job does under `rules`, for `jobs list`.
    pub fn describe(self, rules: &Rules) -> String {
        match self {
            Job::CloseUnused => format!(
                "close accounts unused for {} days ({} for externals), except admins, leaders and holders of granted rights",
                rules.close_unused_days, rules.close_unused_external_days
            ),
            Job::ArchiveInactive => format!(
                "archive persons inactive for {} days (then only operators see them)",
                rules.archive_after_days
            ),
            Job::EraseExpired => match rules.erase_after_days {
                Some(d) => format!("erase the personal data of persons inactive for {d} days"),
                None => "off (erase_after_days is not set): only `person erase` erases".into(),
            },
            Job::PurgeImportFiles => format!(
                "delete import input files older than {} days (tilgang keeps none today: always 0)",
                rules.import_files_days
            ),
            Job::ChangesRetention => format!(
                "remove changes feed rows older than {} days (an older cursor gets CHANGES_CURSOR_EXPIRED)",
                rules.changes_days
            ),
            Job::AuditRetention => {
                let mut s = format!(
                    "clear the content of audit events past their period ({} days",
                    rules.audit.default_days
                );
                for (a, d) in &rules.audit.by_action {
                    s.push_str(&format!(", {a} {d}"));
                }
                s.push_str(&format!(
                    "); remove whole events after {} days, up to a signed checkpoint",
                    rules.audit.longest()
                ));
                s
            }
        }
    }
}

/// What a run did, or (dry run) would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub job: &'static str,
    pub dry_run: bool,
    /// The persons concerned, in id order.
    pub affected: Vec<Affected>,
    /// Rows changed (0 in a dry run).
    pub changed: u64,
    /// What a job that concerns no person found (the retention jobs'
    /// counts), else null.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

/// How long a run may hold its lease before another replica may take over
/// (a crashed holder does not block the job for longer).
const LEASE_S: i64 = 30 * 60;

/// Runs one job. `min_interval_s > 0` (the scheduler) skips it when it ran
/// less than that ago; the CLI passes 0. Returns `None` when another
/// replica holds the job's lease (or it ran recently).
#[allow(clippy::too_many_arguments)]
pub async fn run(
    store: &dyn Store,
    clock: &dyn Clock,
    rules: &Rules,
    job: Job,
    dry_run: bool,
    actor: &str,
    holder: &str,
    min_interval_s: i64,
) -> Result<Option<Outcome>> {
    if dry_run {
        return Ok(Some(apply(store, clock, rules, job, true, actor).await?));
    }
    let now = clock.now().unix_timestamp();
    if !store
        .take_lease(job.name(), holder, now, LEASE_S, min_interval_s)
        .await?
    {
        return Ok(None);
    }
    let out = apply(store, clock, rules, job, false, actor).await;
    let ran = out.is_ok();
    store
        .release_lease(job.name(), holder, clock.now().unix_timestamp(), ran)
        .await?;
    out.map(Some)
}

async fn apply(
    store: &dyn Store,
    clock: &dyn Clock,
    rules: &Rules,
    job: Job,
    dry_run: bool,
    actor: &str,
) -> Result<Outcome> {
    let at = clock.now();
    let days = |d: i64| at - Duration::days(d);
    let retention = |details: serde_json::Value, changed: u64| Outcome {
        job: job.name(),
        dry_run,
        affected: Vec::new(),
        changed,
        details,
    };
    match job {
        Job::AuditRetention => {
            let r = retention::apply(store, clock, &rules.audit, dry_run, actor).await?;
            let changed = if dry_run {
                0
            } else {
                r.removed_total() + r.redacted_total()
            };
            return Ok(retention(json!(r), changed));
        }
        Job::ChangesRetention => {
            let (found, removed) = changes_retention(store, clock, rules, dry_run, actor).await?;
            let found = found.unwrap_or(ChangesCut {
                through: 0,
                rows: 0,
            });
            return Ok(retention(json!(found), removed));
        }
        _ => {}
    }
    let affected = match job {
        Job::CloseUnused => {
            store
                .unused_accounts(
                    days(rules.close_unused_days).unix_timestamp(),
                    days(rules.close_unused_external_days).unix_timestamp(),
                )
                .await?
        }
        Job::ArchiveInactive => {
            store
                .archivable(days(rules.archive_after_days).date())
                .await?
        }
        Job::EraseExpired => match rules.erase_after_days {
            Some(d) => store.erasable(days(d).date()).await?,
            None => Vec::new(),
        },
        // tilgang reads import files where the operator points it and keeps
        // no copy; nothing to delete until it does.
        Job::PurgeImportFiles | Job::ChangesRetention | Job::AuditRetention => Vec::new(),
    };
    let mut out = Outcome {
        job: job.name(),
        dry_run,
        affected,
        changed: 0,
        details: serde_json::Value::Null,
    };
    if dry_run {
        return Ok(out);
    }
    let ids: Vec<i64> = out.affected.iter().map(|a| a.person_id).collect();
    let event = NewEvent::new(actor, job.action())
        .subjects(ids.clone())
        .details(json!({"job": job.name(), "found": ids.len(), "rules": rules}));
    out.changed = match job {
        Job::CloseUnused => store.close_accounts(&ids, at, event).await?,
        Job::ArchiveInactive => store.archive_persons(&ids, at, event).await?,
        Job::EraseExpired => store.erase_persons(&ids, at, event).await?,
        Job::PurgeImportFiles | Job::ChangesRetention | Job::AuditRetention => {
            store.append_audit(at, vec![with_changed(event, 0)]).await?;
            0
        }
    };
    Ok(out)
}

/// What the changes feed's retention found: the rows up to `through`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChangesCut {
    pub through: i64,
    pub rows: u64,
}

/// Removes changes feed rows older than `rules.changes_days`, oldest first
/// in chunks of [`retention::CHUNK`], each in its own transaction that
/// also records the cut (a cursor before it is then refused as expired,
/// never silently skipped). One summary event when anything went.
async fn changes_retention(
    store: &dyn Store,
    clock: &dyn Clock,
    rules: &Rules,
    dry_run: bool,
    actor: &str,
) -> Result<(Option<ChangesCut>, u64)> {
    let at = clock.now();
    let before = (at - Duration::days(rules.changes_days)).unix_timestamp();
    let Some((through, rows)) = store.changes_before(before).await? else {
        return Ok((None, 0));
    };
    let found = Some(ChangesCut { through, rows });
    if dry_run || rows == 0 {
        return Ok((found, 0));
    }
    let mut removed = 0;
    loop {
        let n = store.prune_changes(through, retention::CHUNK).await?;
        removed += n;
        if n < retention::CHUNK as u64 {
            break;
        }
    }
    let ev = NewEvent::new(actor, actions::LIFECYCLE_CHANGES_RETENTION).details(json!({
        "job": Job::ChangesRetention.name(),
        "through_seq": through,
        "changes_days": rules.changes_days,
        "changed": removed,
    }));
    store.append_audit(at, vec![ev]).await?;
    Ok((found, removed))
}

/// Runs every job (in order: close, archive, erase, purge, the changes
/// feed's retention, the audit log's retention) that is due;
/// the server calls this on a schedule.
pub async fn run_due(
    store: &dyn Store,
    clock: &dyn Clock,
    rules: &Rules,
    holder: &str,
    min_interval_s: i64,
) -> Vec<(Job, Result<Option<Outcome>>)> {
    let mut done = Vec::new();
    for job in Job::ALL {
        let r = run(
            store,
            clock,
            rules,
            *job,
            false,
            "system:lifecycle",
            holder,
            min_interval_s,
        )
        .await;
        done.push((*job, r));
    }
    done
}

/// An unknown job name, with the known ones.
pub fn unknown_job(name: &str) -> Error {
    let known: Vec<&str> = Job::ALL.iter().map(|j| j.name()).collect();
    Error::NotFound(format!("job {name:?}; the jobs are {}", known.join(", ")))
}
