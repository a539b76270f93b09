//! Security reports on SQLite.

use super::identity::audit;
use super::{db, SqliteStore};
use async_trait::async_trait;
use rusqlite::params;
use tilgang_core::audit::NewEvent;
use tilgang_core::store::reports::{reference, NewReport, Report, ReportStore};
use tilgang_core::Result;
use time::OffsetDateTime;

#[async_trait]
impl ReportStore for SqliteStore {
    async fn add_report(
        &self,
        report: &NewReport,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<Report> {
        let report = report.clone();
        self.write(move |conn| {
            let received_at = at.unix_timestamp();
            conn.execute(
                "INSERT INTO security_reports (received_at, contact, summary, details) VALUES (?1, ?2, ?3, ?4)",
                params![received_at, report.contact, report.summary, report.details],
            )
            .map_err(db)?;
            let id = conn.last_insert_rowid();
            let reference = reference(at, id);
            let mut event = event;
            event.details = serde_json::json!({"reference": reference});
            audit(conn, at, vec![event])?;
            Ok(Report {
                id,
                reference,
                received_at,
                contact: report.contact,
                summary: report.summary,
                details: report.details,
            })
        })
        .await
    }

    async fn reports(&self) -> Result<Vec<Report>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare("SELECT id, received_at, contact, summary, details FROM security_reports ORDER BY id DESC")
                .map_err(db)?;
            let rows = stmt
                .query_map([], |r| {
                    let (id, received_at): (i64, i64) = (r.get(0)?, r.get(1)?);
                    Ok(Report {
                        id,
                        reference: OffsetDateTime::from_unix_timestamp(received_at)
                            .map(|at| reference(at, id))
                            .unwrap_or_default(),
                        received_at,
                        contact: r.get(2)?,
                        summary: r.get(3)?,
                        details: r.get(4)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }
}
