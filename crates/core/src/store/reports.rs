//! Security reports sent through the public reporting page: kept for the
//! operators, acknowledged to the reporter with a reference.

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
}

/// `SR-<year>-<id>`: the reference the reporter quotes when writing again.
pub fn reference(received_at: OffsetDateTime, id: i64) -> String {
    format!("SR-{}-{id:04}", received_at.year())
}
