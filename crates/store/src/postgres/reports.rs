//! Security reports on PostgreSQL.

use super::identity::audit;
use super::{db, query, PgStore};
use async_trait::async_trait;
use tilgang_core::audit::NewEvent;
use tilgang_core::store::reports::{reference, NewReport, Report, ReportStore};
use tilgang_core::Result;
use time::OffsetDateTime;

#[async_trait]
impl ReportStore for PgStore {
    async fn add_report(
        &self,
        report: &NewReport,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<Report> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let received_at = at.unix_timestamp();
        let rows = query(
            &tx,
            "INSERT INTO security_reports (received_at, contact, summary, details) VALUES ($1, $2, $3, $4) RETURNING id",
            &[&received_at, &report.contact, &report.summary, &report.details],
        )
        .await?;
        let id: i64 = rows
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(db)?
            .unwrap_or(0);
        let reference = reference(at, id);
        let mut event = event;
        event.details = serde_json::json!({"reference": reference});
        audit(&tx, at, vec![event]).await?;
        tx.commit().await.map_err(db)?;
        Ok(Report {
            id,
            reference,
            received_at,
            contact: report.contact.clone(),
            summary: report.summary.clone(),
            details: report.details.clone(),
        })
    }

    async fn reports(&self) -> Result<Vec<Report>> {
        let rows = query(
            &self.conn().await?,
            "SELECT id, received_at, contact, summary, details FROM security_reports ORDER BY id DESC",
            &[],
        )
        .await?;
        rows.iter()
            .map(|r| {
                let (id, received_at): (i64, i64) =
                    (r.try_get(0).map_err(db)?, r.try_get(1).map_err(db)?);
                Ok(Report {
                    id,
                    reference: OffsetDateTime::from_unix_timestamp(received_at)
                        .map(|at| reference(at, id))
                        .unwrap_or_default(),
                    received_at,
                    contact: r.try_get(2).map_err(db)?,
                    summary: r.try_get(3).map_err(db)?,
                    details: r.try_get(4).map_err(db)?,
                })
            })
            .collect()
    }
}
