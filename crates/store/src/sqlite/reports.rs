//! Security reports and the operator right on SQLite.

use super::identity::audit;
use super::{db, CachedRow, SqliteStore};
use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Row};
use tilgang_core::audit::NewEvent;
use tilgang_core::store::reports::{reference, NewReport, Report, ReportStore};
use tilgang_core::Result;
use time::OffsetDateTime;

const COLUMNS: &str =
    "id, received_at, contact, summary, details, acknowledged_at, acknowledged_by";

fn report_row(r: &Row<'_>) -> rusqlite::Result<Report> {
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
        acknowledged_at: r.get(5)?,
        acknowledged_by: r.get(6)?,
    })
}

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
                acknowledged_at: None,
                acknowledged_by: None,
            })
        })
        .await
    }

    async fn reports(&self) -> Result<Vec<Report>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM security_reports ORDER BY id DESC"
                ))
                .map_err(db)?;
            let rows = stmt.query_map([], report_row).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn acknowledge_report(
        &self,
        id: i64,
        by: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<Option<Report>> {
        let by = by.to_owned();
        self.write(move |conn| {
            let report = conn
                .cached_row(
                    &format!(
                        "UPDATE security_reports SET acknowledged_at = ?2, acknowledged_by = ?3
                         WHERE id = ?1 AND acknowledged_at IS NULL RETURNING {COLUMNS}"
                    ),
                    params![id, at.unix_timestamp(), by],
                    report_row,
                )
                .optional()
                .map_err(db)?;
            if let Some(r) = &report {
                let mut event = event;
                event.details = serde_json::json!({"reference": r.reference});
                audit(conn, at, vec![event])?;
            }
            Ok(report)
        })
        .await
    }

    async fn is_operator(&self, person_id: i64) -> Result<bool> {
        self.read(move |conn| {
            conn.cached_row(
                "SELECT 1 FROM operator_grants WHERE person_id = ?1",
                [person_id],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(db)
        })
        .await
    }

    async fn grant_operator(
        &self,
        person_id: i64,
        reason: &str,
        by: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        self.audited_change(
            "INSERT INTO operator_grants (person_id, reason, granted_by, granted_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (person_id) DO UPDATE SET reason = excluded.reason,
               granted_by = excluded.granted_by, granted_at = excluded.granted_at",
            vec![person_id.into(), reason.to_owned().into(), by.to_owned().into(), at.unix_timestamp().into()],
            at,
            event,
        )
        .await
        .map(drop)
    }

    async fn revoke_operator(
        &self,
        person_id: i64,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool> {
        let sql = "DELETE FROM operator_grants WHERE person_id = ?1";
        Ok(self
            .audited_change(sql, vec![person_id.into()], at, event)
            .await?
            > 0)
    }
}
