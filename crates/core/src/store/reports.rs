//! Security reports sent through the public reporting page: kept for the
//! operators, acknowledged to the reporter with a reference; and who is an
//! operator on the web (the `operator` right, granted only by the CLI).

use crate::audit::NewEvent;
use crate::Result;
use async_trait::async_trait;
use time::OffsetDateTime;

/// A report as the reporter wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReport {
    /// How to reach the reporter (optional: anonymous reports are welcome).
    pub contact: String,
    pub summary: String,
    pub details: String,
}

/// A stored report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub id: i64,
    /// The reference given to the reporter, e.g. `SR-2026-0007`.
    pub reference: String,
    /// Unix seconds.
    pub received_at: i64,
    pub contact: String,
    pub summary: String,
    pub details: String,
    /// When an operator acknowledged it (Unix seconds); `None`: new.
    pub acknowledged_at: Option<i64>,
    /// Who acknowledged it (`person:<id>` or `cli`).
    pub acknowledged_by: Option<String>,
}

#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Stores a report with its audit event; returns it with its reference.
    async fn add_report(
        &self,
        report: &NewReport,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<Report>;
    /// Every report, newest first.
    async fn reports(&self) -> Result<Vec<Report>>;
    /// Marks a new report acknowledged, with its event (whose details the
    /// store sets to the reference); `None` (and nothing written) when
    /// there is no such report or it was acknowledged already.
    async fn acknowledge_report(
        &self,
        id: i64,
        by: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<Option<Report>>;
    /// Whether the person holds the operator right.
    async fn is_operator(&self, person_id: i64) -> Result<bool>;
    /// Grants the operator right (replacing an earlier grant), with its event.
    async fn grant_operator(
        &self,
        person_id: i64,
        reason: &str,
        by: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()>;
    /// Takes the right back; false (and nothing written) when not held.
    async fn revoke_operator(
        &self,
        person_id: i64,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool>;
}

/// `SR-<year>-<id>`: the reference the reporter quotes when writing again.
pub fn reference(received_at: OffsetDateTime, id: i64) -> String {
    format!("SR-{}-{id:04}", received_at.year())
}
