//! Audit retention: how long each kind of event keeps its content, and the
//! job that applies it. Events of a kind whose retention has passed lose
//! their personal content (redacted; the version 2 link still verifies
//! from the content hash); whole events go once the LONGEST retention has
//! passed, up to the newest signed checkpoint before that cut, so the rest
//! stays verifiable from it. One summary event records what was done.
//!
//! Both cuts go by signed checkpoints: an event is due once a checkpoint
//! signed before its kind's cut covers it, so it is done at most one
//! checkpoint interval (an hour by default) late, and every bound is a
//! sequence number the indexes (`action, seq`) serve.

use super::{actions, NewEvent};
use crate::store::Store;
use crate::{Clock, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

/// Events one redaction transaction clears at most.
pub const CHUNK: usize = 10_000;

/// The retention periods, in days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Every action without its own period (six months).
    pub default_days: i64,
    /// Periods per registered action (`core::audit::actions`).
    pub by_action: BTreeMap<String, i64>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            default_days: 183,
            by_action: BTreeMap::new(),
        }
    }
}

impl Retention {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if let Some(a) = self.by_action.keys().find(|a| !actions::is_known(a)) {
            return Err(format!(
                "audit_retention_by_action: {a:?} is not an audit action (see `tilgang audit search --help` or docs/operations.md for the list)"
            ));
        }
        if self.default_days < 1 || self.by_action.values().any(|d| *d < 1) {
            return Err("audit retention periods must be at least 1 day".into());
        }
        Ok(())
    }

    /// The period of `action`.
    pub fn days(&self, action: &str) -> i64 {
        self.by_action
            .get(action)
            .copied()
            .unwrap_or(self.default_days)
    }

    /// The longest period: whole events go after it.
    pub fn longest(&self) -> i64 {
        self.by_action
            .values()
            .copied()
            .fold(self.default_days, i64::max)
    }
}

/// What a run did, or (dry run) would do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Whole events removed up to this sequence number (a signed checkpoint).
    pub removed_through: Option<i64>,
    /// Events removed, per action.
    pub removed: BTreeMap<String, u64>,
    /// Events whose content was cleared, per action.
    pub redacted: BTreeMap<String, u64>,
}

impl Report {
    pub fn removed_total(&self) -> u64 {
        self.removed.values().sum()
    }
    pub fn redacted_total(&self) -> u64 {
        self.redacted.values().sum()
    }
}

fn micros(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

/// Applies `retention` now. A dry run only counts. A run that removes or
/// redacts anything writes one `audit.pruned` event with the counts per
/// action (in the transaction of the removal when there is one); a run
/// with nothing due writes nothing.
pub async fn apply(
    store: &dyn Store,
    clock: &dyn Clock,
    retention: &Retention,
    dry_run: bool,
    actor: &str,
) -> Result<Report> {
    let now = clock.now();
    let cut_at = |days: i64| micros(now - time::Duration::days(days));
    let mut report = Report::default();

    // The prefix cut: whole events older than the longest period.
    let longest = retention.longest();
    let cut = store.checkpoint_before(cut_at(longest)).await?;
    let floor = cut.as_ref().map_or(0, |c| c.seq);
    let first = store.audit_page(0, 1).await?.first().map(|e| e.seq);
    if first.is_some_and(|f| f <= floor) {
        report.removed_through = Some(floor);
        report.removed = store
            .audit_counts_through(floor)
            .await?
            .into_iter()
            .collect();
    }

    // Redaction: kinds with a shorter period lose their content, between
    // the prefix cut and their own cut.
    let mut upto_by_days: BTreeMap<i64, Option<i64>> = BTreeMap::new();
    for (action, _) in actions::ALL {
        let days = retention.days(action);
        if days >= longest {
            continue;
        }
        let upto = match upto_by_days.get(&days) {
            Some(u) => *u,
            None => {
                let u = store.checkpoint_before(cut_at(days)).await?.map(|c| c.seq);
                upto_by_days.insert(days, u);
                u
            }
        };
        let Some(upto) = upto else { continue };
        let mut after = store.redacted_through(action).await?.max(floor);
        let mut count = 0;
        if dry_run {
            if after < upto {
                count = store.redact_audit(action, after, upto, 0, None).await?.0;
            }
        } else {
            while after < upto {
                let (n, through) = store
                    .redact_audit(action, after, upto, micros(now), Some(CHUNK))
                    .await?;
                count += n;
                after = through;
                if n < CHUNK as u64 {
                    break;
                }
            }
        }
        if count > 0 {
            report.redacted.insert((*action).to_owned(), count);
        }
    }

    if dry_run || (report.removed.is_empty() && report.redacted.is_empty()) {
        return Ok(report);
    }
    let ev = NewEvent::new(actor, actions::AUDIT_PRUNED).details(json!({
        "through_seq": report.removed_through,
        "retention_days": retention.default_days,
        "retention_by_action": retention.by_action,
        "removed_by_action": report.removed,
        "redacted_by_action": report.redacted,
    }));
    match report.removed_through {
        Some(seq) => {
            store.prune_audit(seq, now, ev).await?;
        }
        None => store.append_audit(now, vec![ev]).await?,
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn periods_per_action_and_the_longest() {
        let mut r = Retention::default();
        r.by_action.insert(actions::LOGIN_SUCCEEDED.into(), 90);
        r.by_action.insert(actions::SHARING_APPROVED.into(), 1825);
        assert!(r.validate().is_ok());
        assert_eq!(r.days(actions::LOGIN_SUCCEEDED), 90);
        assert_eq!(r.days(actions::LOGOUT), 183);
        assert_eq!(r.longest(), 1825);
        r.by_action.insert("login.succeded".into(), 90);
        let err = r.validate().unwrap_err();
        assert!(err.contains("login.succeded"), "{err}");
        let zero = Retention {
            default_days: 0,
            ..Default::default()
        };
        assert!(zero.validate().is_err());
    }
}
