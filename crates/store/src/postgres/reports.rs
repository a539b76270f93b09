//! Security reports and the operator right on PostgreSQL: the SQLite
//! implementation (`sqlite/reports.rs`) query for query.

use super::identity::audit;
use super::staff::audited_change;
use super::{db, query, PgStore};
use async_trait::async_trait;
use tilgang_core::audit::NewEvent;
use tilgang_core::store::reports::{reference, NewReport, Report, ReportStore};
use tilgang_core::Result;
use time::OffsetDateTime;
use tokio_postgres::Row;

const COLUMNS: &str =
    "id, received_at, contact, summary, details, acknowledged_at, acknowledged_by";

fn report_row(r: &Row) -> Result<Report> {
    let (id, received_at): (i64, i64) = (r.try_get(0).map_err(db)?, r.try_get(1).map_err(db)?);
    Ok(Report {
        id,
        reference: OffsetDateTime::from_unix_timestamp(received_at)
            .map(|at| reference(at, id))
            .unwrap_or_default(),
        received_at,
        contact: r.try_get(2).map_err(db)?,
        summary: r.try_get(3).map_err(db)?,
        details: r.try_get(4).map_err(db)?,
        acknowledged_at: r.try_get(5).map_err(db)?,
        acknowledged_by: r.try_get(6).map_err(db)?,
    })
}

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
            acknowledged_at: None,
            acknowledged_by: None,
        })
    }

    async fn reports(&self) -> Result<Vec<Report>> {
        let rows = query(
            &self.conn().await?,
            &format!("SELECT {COLUMNS} FROM security_reports ORDER BY id DESC"),
            &[],
        )
        .await?;
        rows.iter().map(report_row).collect()
    }

    async fn acknowledge_report(
        &self,
        id: i64,
        by: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<Option<Report>> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let rows = query(
            &tx,
            &format!(
                "UPDATE security_reports SET acknowledged_at = $2, acknowledged_by = $3
                 WHERE id = $1 AND acknowledged_at IS NULL RETURNING {COLUMNS}"
            ),
            &[&id, &at.unix_timestamp(), &by],
        )
        .await?;
        let report = rows.first().map(report_row).transpose()?;
        if let Some(r) = &report {
            let mut event = event;
            event.details = serde_json::json!({"reference": r.reference});
            audit(&tx, at, vec![event]).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(report)
    }

    async fn is_operator(&self, person_id: i64) -> Result<bool> {
        let rows = query(
            &self.conn().await?,
            "SELECT 1 FROM operator_grants WHERE person_id = $1",
            &[&person_id],
        )
        .await?;
        Ok(!rows.is_empty())
    }

    async fn grant_operator(
        &self,
        person_id: i64,
        reason: &str,
        by: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        audited_change(
            self,
            "INSERT INTO operator_grants (person_id, reason, granted_by, granted_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (person_id) DO UPDATE SET reason = excluded.reason,
               granted_by = excluded.granted_by, granted_at = excluded.granted_at",
            &[&person_id, &reason, &by, &at.unix_timestamp()],
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
        let sql = "DELETE FROM operator_grants WHERE person_id = $1";
        Ok(audited_change(self, sql, &[&person_id], at, event).await? > 0)
    }
}
