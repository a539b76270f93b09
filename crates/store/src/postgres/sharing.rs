//! Sharing on PostgreSQL: the SQLite implementation (`sqlite/sharing.rs`)
//! query for query. A decision locks its request row, so two admins
//! deciding at once make one decision.

use super::{db, execute, query, read_head, write_audit, PgStore};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tilgang_core::audit::{chain, NewEvent};
use tilgang_core::roster::import::native::parse_date;
use tilgang_core::sharing::agreement::{
    Approval, Block, HistoryEntry, NewProvider, NewRequest, Provider, RequestRecord, RequestStatus,
    ServiceLink,
};
use tilgang_core::sharing::licence::{Licence, LicenceScope, NewLicence};
use tilgang_core::store::sharing::{history_of, SharingStore, Verdict};
use tilgang_core::{Error, Result};
use time::OffsetDateTime;
use tokio_postgres::Row;

async fn record<C: GenericClient>(c: &C, at: OffsetDateTime, events: Vec<NewEvent>) -> Result<()> {
    let t = at.unix_timestamp();
    for (client, inst, actor, action, details) in history_of(&events) {
        execute(
            c,
            "INSERT INTO sharing_history (client_id, institution, at, actor, action, details) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&client, &inst, &t, &actor, &action, &details],
        )
        .await?;
    }
    let (sealed, _) = chain::seal(read_head(c, true).await?, at, events);
    write_audit(c, &sealed).await
}

fn bad(what: &str) -> Error {
    Error::Store(format!("unreadable sharing row: {what}"))
}

fn first_id(rows: &[Row]) -> Result<i64> {
    rows.first()
        .ok_or_else(|| bad("no id returned"))?
        .try_get(0)
        .map_err(db)
}

const PROVIDER: &str =
    "SELECT id, name, cvr, address, contact, security_contact, authority, created_at FROM sharing_providers";

fn provider_row(r: &Row) -> Result<Provider> {
    Ok(Provider {
        id: r.try_get(0).map_err(db)?,
        name: r.try_get(1).map_err(db)?,
        cvr: r.try_get(2).map_err(db)?,
        address: r.try_get(3).map_err(db)?,
        contact: r.try_get(4).map_err(db)?,
        security_contact: r.try_get(5).map_err(db)?,
        authority: r.try_get(6).map_err(db)?,
        created_at: r.try_get(7).map_err(db)?,
    })
}

const REQUEST: &str = "SELECT id, client_id, institution, spec, status, created_at, created_by, decided_at, decided_by, reason FROM sharing_requests";

fn request_row(r: &Row) -> Result<RequestRecord> {
    let spec: String = r.try_get(3).map_err(db)?;
    let status: String = r.try_get(4).map_err(db)?;
    Ok(RequestRecord {
        id: r.try_get(0).map_err(db)?,
        client_id: r.try_get(1).map_err(db)?,
        institution: r.try_get(2).map_err(db)?,
        spec: serde_json::from_str(&spec).map_err(Error::store)?,
        status: RequestStatus::parse(&status).ok_or_else(|| bad(&status))?,
        created_at: r.try_get(5).map_err(db)?,
        created_by: r.try_get(6).map_err(db)?,
        decided_at: r.try_get(7).map_err(db)?,
        decided_by: r.try_get(8).map_err(db)?,
        reason: r.try_get(9).map_err(db)?,
    })
}

const APPROVAL: &str = "SELECT id, client_id, institution, version, request_id, spec, approved_by, approved_at, ended_at, ended_by, end_reason FROM sharing_approvals";

fn approval_row(r: &Row) -> Result<Approval> {
    let spec: String = r.try_get(5).map_err(db)?;
    Ok(Approval {
        id: r.try_get(0).map_err(db)?,
        client_id: r.try_get(1).map_err(db)?,
        institution: r.try_get(2).map_err(db)?,
        version: r.try_get(3).map_err(db)?,
        request_id: r.try_get(4).map_err(db)?,
        spec: serde_json::from_str(&spec).map_err(Error::store)?,
        approved_by: r.try_get(6).map_err(db)?,
        approved_at: r.try_get(7).map_err(db)?,
        ended_at: r.try_get(8).map_err(db)?,
        ended_by: r.try_get(9).map_err(db)?,
        end_reason: r.try_get(10).map_err(db)?,
    })
}

const BLOCK: &str =
    "SELECT client_id, institution, blocked_at, blocked_by, reason FROM sharing_blocks";

fn block_row(r: &Row) -> Result<Block> {
    Ok(Block {
        client_id: r.try_get(0).map_err(db)?,
        institution: r.try_get(1).map_err(db)?,
        blocked_at: r.try_get(2).map_err(db)?,
        blocked_by: r.try_get(3).map_err(db)?,
        reason: r.try_get(4).map_err(db)?,
    })
}

const LICENCE: &str = "SELECT id, client_id, institution, scope, target, valid_from, valid_to, granted_by, consent, created_at, withdrawn_at, withdrawn_by FROM licences";

fn licence_row(r: &Row) -> Result<Licence> {
    let scope: String = r.try_get(3).map_err(db)?;
    let target: String = r.try_get(4).map_err(db)?;
    let from: String = r.try_get(5).map_err(db)?;
    let to: Option<String> = r.try_get(6).map_err(db)?;
    Ok(Licence {
        id: r.try_get(0).map_err(db)?,
        new: NewLicence {
            client_id: r.try_get(1).map_err(db)?,
            institution: r.try_get(2).map_err(db)?,
            scope: LicenceScope::from_parts(&scope, &target).ok_or_else(|| bad(&scope))?,
            valid_from: parse_date(&from).ok_or_else(|| bad(&from))?,
            valid_to: match to {
                Some(t) => Some(parse_date(&t).ok_or_else(|| bad(&t))?),
                None => None,
            },
            granted_by: r.try_get(7).map_err(db)?,
            consent: r.try_get(8).map_err(db)?,
        },
        created_at: r.try_get(9).map_err(db)?,
        withdrawn_at: r.try_get(10).map_err(db)?,
        withdrawn_by: r.try_get(11).map_err(db)?,
    })
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(Error::store)
}

#[async_trait]
impl SharingStore for PgStore {
    async fn add_provider(
        &self,
        p: &NewProvider,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<i64> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let rows = query(
            &tx,
            "INSERT INTO sharing_providers (name, cvr, address, contact, security_contact, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[&p.name, &p.cvr, &p.address, &p.contact, &p.security_contact, &at.unix_timestamp()],
        )
        .await?;
        let id = first_id(&rows)?;
        let mut event = event;
        event.details["provider"] = id.into();
        record(&tx, at, vec![event]).await?;
        tx.commit().await.map_err(db)?;
        Ok(id)
    }

    async fn providers(&self) -> Result<Vec<Provider>> {
        let rows = query(&self.conn().await?, &format!("{PROVIDER} ORDER BY id"), &[]).await?;
        rows.iter().map(provider_row).collect()
    }

    async fn set_provider_authority(
        &self,
        id: i64,
        authority: bool,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let n = execute(
            &tx,
            "UPDATE sharing_providers SET authority = $2 WHERE id = $1",
            &[&id, &authority],
        )
        .await?;
        if n == 1 {
            record(&tx, at, vec![event]).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(n == 1)
    }

    async fn link_service(
        &self,
        link: &ServiceLink,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        execute(
            &tx,
            "INSERT INTO sharing_services (client_id, provider_id, licence_required) VALUES ($1, $2, $3)
             ON CONFLICT (client_id) DO UPDATE SET provider_id = excluded.provider_id, licence_required = excluded.licence_required",
            &[&link.client_id, &link.provider_id, &link.licence_required],
        )
        .await?;
        record(&tx, at, vec![event]).await?;
        tx.commit().await.map_err(db)
    }

    async fn service_link(&self, client_id: &str) -> Result<Option<ServiceLink>> {
        let rows = query(
            &self.conn().await?,
            "SELECT client_id, provider_id, licence_required FROM sharing_services WHERE client_id = $1",
            &[&client_id],
        )
        .await?;
        rows.first()
            .map(|r| {
                Ok(ServiceLink {
                    client_id: r.try_get(0).map_err(db)?,
                    provider_id: r.try_get(1).map_err(db)?,
                    licence_required: r.try_get(2).map_err(db)?,
                })
            })
            .transpose()
    }

    async fn add_requests(
        &self,
        rows: &[NewRequest],
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> Result<Vec<i64>> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let t = at.unix_timestamp();
        let mut ids = Vec::with_capacity(rows.len());
        for r in rows {
            execute(
                &tx,
                "UPDATE sharing_requests SET status = 'superseded', decided_at = $3
                 WHERE client_id = $1 AND institution = $2 AND status IN ('pending', 'listed')",
                &[&r.client_id, &r.institution, &t],
            )
            .await?;
            let spec = json(&r.spec)?;
            let got = query(
                &tx,
                "INSERT INTO sharing_requests (client_id, institution, spec, status, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[&r.client_id, &r.institution, &spec, &r.status.as_str(), &t, &r.created_by],
            )
            .await?;
            ids.push(first_id(&got)?);
        }
        let mut events = events;
        for (e, id) in events.iter_mut().zip(&ids) {
            e.details["request"] = (*id).into();
        }
        record(&tx, at, events).await?;
        tx.commit().await.map_err(db)?;
        Ok(ids)
    }

    async fn request(&self, id: i64) -> Result<Option<RequestRecord>> {
        let rows = query(
            &self.conn().await?,
            &format!("{REQUEST} WHERE id = $1"),
            &[&id],
        )
        .await?;
        rows.first().map(request_row).transpose()
    }

    async fn requests(
        &self,
        client_id: Option<&str>,
        institution: Option<&str>,
    ) -> Result<Vec<RequestRecord>> {
        let rows = query(
            &self.conn().await?,
            &format!("{REQUEST} WHERE ($1::TEXT IS NULL OR client_id = $1) AND ($2::TEXT IS NULL OR institution = $2) ORDER BY id DESC"),
            &[&client_id, &institution],
        )
        .await?;
        rows.iter().map(request_row).collect()
    }

    async fn decide(
        &self,
        request_id: i64,
        verdict: &Verdict,
        by: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<Option<Option<Approval>>> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let t = at.unix_timestamp();
        let rows = query(
            &tx,
            &format!("{REQUEST} WHERE id = $1 AND status = 'pending' FOR UPDATE"),
            &[&request_id],
        )
        .await?;
        let Some(r) = rows.first().map(request_row).transpose()? else {
            return Ok(None);
        };
        let (status, reason) = match verdict {
            Verdict::Approve => ("approved", None),
            Verdict::Reject { reason } => ("rejected", Some(reason.clone())),
        };
        execute(
            &tx,
            "UPDATE sharing_requests SET status = $2, decided_at = $3, decided_by = $4, reason = $5 WHERE id = $1",
            &[&request_id, &status, &t, &by, &reason],
        )
        .await?;
        let mut approval = None;
        if *verdict == Verdict::Approve {
            execute(
                &tx,
                "UPDATE sharing_approvals SET ended_at = $3, ended_by = $4, end_reason = 'superseded'
                 WHERE client_id = $1 AND institution = $2 AND ended_at IS NULL",
                &[&r.client_id, &r.institution, &t, &by],
            )
            .await?;
            let spec = json(&r.spec)?;
            let got = query(
                &tx,
                "INSERT INTO sharing_approvals (client_id, institution, version, request_id, spec, approved_by, approved_at)
                 SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3, $4, $5, $6 FROM sharing_approvals WHERE client_id = $1 AND institution = $2
                 RETURNING id, version",
                &[&r.client_id, &r.institution, &r.id, &spec, &by, &t],
            )
            .await?;
            let row = got.first().ok_or_else(|| bad("no approval returned"))?;
            approval = Some(Approval {
                id: row.try_get(0).map_err(db)?,
                version: row.try_get(1).map_err(db)?,
                client_id: r.client_id,
                institution: r.institution,
                request_id: r.id,
                spec: r.spec,
                approved_by: by.to_owned(),
                approved_at: t,
                ended_at: None,
                ended_by: None,
                end_reason: None,
            });
        }
        let mut event = event;
        if let Some(a) = &approval {
            event.details["version"] = a.version.into();
        }
        record(&tx, at, vec![event]).await?;
        tx.commit().await.map_err(db)?;
        Ok(Some(approval))
    }

    async fn revoke(
        &self,
        client_id: &str,
        institution: &str,
        by: &str,
        reason: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let n = execute(
            &tx,
            "UPDATE sharing_approvals SET ended_at = $3, ended_by = $4, end_reason = $5
             WHERE client_id = $1 AND institution = $2 AND ended_at IS NULL",
            &[&client_id, &institution, &at.unix_timestamp(), &by, &reason],
        )
        .await?;
        if n > 0 {
            record(&tx, at, vec![event]).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(n > 0)
    }

    async fn set_block(
        &self,
        client_id: &str,
        institution: &str,
        by: &str,
        reason: Option<&str>,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let n = match reason {
            Some(reason) => {
                execute(
                    &tx,
                    "INSERT INTO sharing_blocks (client_id, institution, blocked_at, blocked_by, reason) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (client_id, institution) DO NOTHING",
                    &[&client_id, &institution, &at.unix_timestamp(), &by, &reason],
                )
                .await?
            }
            None => {
                execute(
                    &tx,
                    "DELETE FROM sharing_blocks WHERE client_id = $1 AND institution = $2",
                    &[&client_id, &institution],
                )
                .await?
            }
        };
        if n > 0 {
            record(&tx, at, vec![event]).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(n > 0)
    }

    async fn approvals(&self, client_id: &str, institution: &str) -> Result<Vec<Approval>> {
        let rows = query(
            &self.conn().await?,
            &format!("{APPROVAL} WHERE client_id = $1 AND institution = $2 ORDER BY version"),
            &[&client_id, &institution],
        )
        .await?;
        rows.iter().map(approval_row).collect()
    }

    async fn block(&self, client_id: &str, institution: &str) -> Result<Option<Block>> {
        let rows = query(
            &self.conn().await?,
            &format!("{BLOCK} WHERE client_id = $1 AND institution = $2"),
            &[&client_id, &institution],
        )
        .await?;
        rows.first().map(block_row).transpose()
    }

    async fn blocks(&self, institution: Option<&str>) -> Result<Vec<Block>> {
        let rows = query(
            &self.conn().await?,
            &format!(
                "{BLOCK} WHERE ($1::TEXT IS NULL OR institution = $1) ORDER BY institution, client_id"
            ),
            &[&institution],
        )
        .await?;
        rows.iter().map(block_row).collect()
    }

    async fn history(&self, client_id: &str, institution: &str) -> Result<Vec<HistoryEntry>> {
        let rows = query(
            &self.conn().await?,
            "SELECT at, actor, action, details FROM sharing_history WHERE client_id = $1 AND institution = $2 ORDER BY id",
            &[&client_id, &institution],
        )
        .await?;
        rows.iter()
            .map(|r| {
                let details: String = r.try_get(3).map_err(db)?;
                Ok(HistoryEntry {
                    at: r.try_get(0).map_err(db)?,
                    actor: r.try_get(1).map_err(db)?,
                    action: r.try_get(2).map_err(db)?,
                    details: serde_json::from_str(&details).map_err(Error::store)?,
                })
            })
            .collect()
    }

    async fn add_licences(
        &self,
        rows: &[NewLicence],
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> Result<Vec<i64>> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let t = at.unix_timestamp();
        let mut ids = Vec::with_capacity(rows.len());
        for l in rows {
            let from = l.valid_from.to_string();
            let to = l.valid_to.map(|d| d.to_string());
            let got = query(
                &tx,
                "INSERT INTO licences (client_id, institution, scope, target, valid_from, valid_to, granted_by, consent, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                &[
                    &l.client_id,
                    &l.institution,
                    &l.scope.kind(),
                    &l.scope.target(),
                    &from,
                    &to,
                    &l.granted_by,
                    &l.consent,
                    &t,
                ],
            )
            .await?;
            ids.push(first_id(&got)?);
        }
        let mut events = events;
        for (e, id) in events.iter_mut().zip(&ids) {
            e.details["licence"] = (*id).into();
        }
        record(&tx, at, events).await?;
        tx.commit().await.map_err(db)?;
        Ok(ids)
    }

    async fn withdraw_licence(
        &self,
        id: i64,
        by: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let n = execute(
            &tx,
            "UPDATE licences SET withdrawn_at = $2, withdrawn_by = $3 WHERE id = $1 AND withdrawn_at IS NULL",
            &[&id, &at.unix_timestamp(), &by],
        )
        .await?;
        if n > 0 {
            record(&tx, at, vec![event]).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(n > 0)
    }

    async fn licences(
        &self,
        client_id: Option<&str>,
        institution: Option<&str>,
    ) -> Result<Vec<Licence>> {
        let rows = query(
            &self.conn().await?,
            &format!("{LICENCE} WHERE ($1::TEXT IS NULL OR client_id = $1) AND ($2::TEXT IS NULL OR institution = $2) ORDER BY id"),
            &[&client_id, &institution],
        )
        .await?;
        rows.iter().map(licence_row).collect()
    }
}
