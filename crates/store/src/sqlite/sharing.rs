//! Sharing on SQLite: providers, requests, approvals, blocks, history and
//! licences; every write with its audit events and history rows.

use super::identity::audit;
use super::{db, CachedRow, SqliteStore};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use tilgang_core::audit::NewEvent;
use tilgang_core::roster::import::native::parse_date;
use tilgang_core::sharing::agreement::{
    Approval, Block, HistoryEntry, NewProvider, NewRequest, Provider, RequestRecord, RequestStatus,
    ServiceLink,
};
use tilgang_core::sharing::licence::{Licence, LicenceScope, NewLicence};
use tilgang_core::store::sharing::{history_of, SharingStore, Verdict};
use tilgang_core::{Error, Result};
use time::OffsetDateTime;

fn conv(e: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(e.to_string().into())
}

/// Audit events and their history rows, in the caller's transaction.
fn record(conn: &Connection, at: OffsetDateTime, events: Vec<NewEvent>) -> Result<()> {
    let t = at.unix_timestamp();
    for (client, inst, actor, action, details) in history_of(&events) {
        conn.execute(
            "INSERT INTO sharing_history (client_id, institution, at, actor, action, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![client, inst, t, actor, action, details],
        )
        .map_err(db)?;
    }
    audit(conn, at, events)
}

const PROVIDER: &str =
    "SELECT id, name, cvr, address, contact, security_contact, authority, created_at FROM sharing_providers";

fn provider_row(r: &Row) -> rusqlite::Result<Provider> {
    Ok(Provider {
        id: r.get(0)?,
        name: r.get(1)?,
        cvr: r.get(2)?,
        address: r.get(3)?,
        contact: r.get(4)?,
        security_contact: r.get(5)?,
        authority: r.get(6)?,
        created_at: r.get(7)?,
    })
}

const REQUEST: &str = "SELECT id, client_id, institution, spec, status, created_at, created_by, decided_at, decided_by, reason FROM sharing_requests";

fn request_row(r: &Row) -> rusqlite::Result<RequestRecord> {
    let spec: String = r.get(3)?;
    let status: String = r.get(4)?;
    Ok(RequestRecord {
        id: r.get(0)?,
        client_id: r.get(1)?,
        institution: r.get(2)?,
        spec: serde_json::from_str(&spec).map_err(conv)?,
        status: RequestStatus::parse(&status).ok_or_else(|| conv(status))?,
        created_at: r.get(5)?,
        created_by: r.get(6)?,
        decided_at: r.get(7)?,
        decided_by: r.get(8)?,
        reason: r.get(9)?,
    })
}

const APPROVAL: &str = "SELECT id, client_id, institution, version, request_id, spec, approved_by, approved_at, ended_at, ended_by, end_reason FROM sharing_approvals";

fn approval_row(r: &Row) -> rusqlite::Result<Approval> {
    let spec: String = r.get(5)?;
    Ok(Approval {
        id: r.get(0)?,
        client_id: r.get(1)?,
        institution: r.get(2)?,
        version: r.get(3)?,
        request_id: r.get(4)?,
        spec: serde_json::from_str(&spec).map_err(conv)?,
        approved_by: r.get(6)?,
        approved_at: r.get(7)?,
        ended_at: r.get(8)?,
        ended_by: r.get(9)?,
        end_reason: r.get(10)?,
    })
}

const BLOCK: &str =
    "SELECT client_id, institution, blocked_at, blocked_by, reason FROM sharing_blocks";

fn block_row(r: &Row) -> rusqlite::Result<Block> {
    Ok(Block {
        client_id: r.get(0)?,
        institution: r.get(1)?,
        blocked_at: r.get(2)?,
        blocked_by: r.get(3)?,
        reason: r.get(4)?,
    })
}

const LICENCE: &str = "SELECT id, client_id, institution, scope, target, valid_from, valid_to, granted_by, consent, created_at, withdrawn_at, withdrawn_by FROM licences";

fn licence_row(r: &Row) -> rusqlite::Result<Licence> {
    let (scope, target): (String, String) = (r.get(3)?, r.get(4)?);
    let from: String = r.get(5)?;
    let to: Option<String> = r.get(6)?;
    Ok(Licence {
        id: r.get(0)?,
        new: NewLicence {
            client_id: r.get(1)?,
            institution: r.get(2)?,
            scope: LicenceScope::from_parts(&scope, &target).ok_or_else(|| conv(&scope))?,
            valid_from: parse_date(&from).ok_or_else(|| conv(&from))?,
            valid_to: match to {
                Some(t) => Some(parse_date(&t).ok_or_else(|| conv(&t))?),
                None => None,
            },
            granted_by: r.get(7)?,
            consent: r.get(8)?,
        },
        created_at: r.get(9)?,
        withdrawn_at: r.get(10)?,
        withdrawn_by: r.get(11)?,
    })
}

fn all<T>(
    conn: &Connection,
    sql: &str,
    p: &[&dyn rusqlite::ToSql],
    f: fn(&Row) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db)?;
    let rows = stmt.query_map(p, f).map_err(db)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(Error::store)
}

#[async_trait]
impl SharingStore for SqliteStore {
    async fn add_provider(
        &self,
        p: &NewProvider,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<i64> {
        let p = p.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO sharing_providers (name, cvr, address, contact, security_contact, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![p.name, p.cvr, p.address, p.contact, p.security_contact, at.unix_timestamp()],
            )
            .map_err(db)?;
            let id = conn.last_insert_rowid();
            let mut event = event;
            event.details["provider"] = id.into();
            record(conn, at, vec![event])?;
            Ok(id)
        })
        .await
    }

    async fn providers(&self) -> Result<Vec<Provider>> {
        self.read(providers_on).await
    }

    async fn set_provider_authority(
        &self,
        id: i64,
        authority: bool,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool> {
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE sharing_providers SET authority = ?2 WHERE id = ?1",
                    params![id, authority],
                )
                .map_err(db)?;
            if n == 1 {
                record(conn, at, vec![event])?;
            }
            Ok(n == 1)
        })
        .await
    }

    async fn link_service(
        &self,
        link: &ServiceLink,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        let link = link.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO sharing_services (client_id, provider_id, licence_required) VALUES (?1, ?2, ?3)
                 ON CONFLICT (client_id) DO UPDATE SET provider_id = excluded.provider_id, licence_required = excluded.licence_required",
                params![link.client_id, link.provider_id, link.licence_required],
            )
            .map_err(db)?;
            record(conn, at, vec![event])
        })
        .await
    }

    async fn service_link(&self, client_id: &str) -> Result<Option<ServiceLink>> {
        let client_id = client_id.to_owned();
        self.read(move |conn| service_link_on(conn, &client_id))
            .await
    }

    async fn add_requests(
        &self,
        rows: &[NewRequest],
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> Result<Vec<i64>> {
        let rows = rows.to_vec();
        self.write(move |conn| {
            let t = at.unix_timestamp();
            let mut ids = Vec::with_capacity(rows.len());
            for r in &rows {
                conn.execute(
                    "UPDATE sharing_requests SET status = 'superseded', decided_at = ?3
                     WHERE client_id = ?1 AND institution = ?2 AND status IN ('pending', 'listed')",
                    params![r.client_id, r.institution, t],
                )
                .map_err(db)?;
                conn.execute(
                    "INSERT INTO sharing_requests (client_id, institution, spec, status, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![r.client_id, r.institution, json(&r.spec)?, r.status.as_str(), t, r.created_by],
                )
                .map_err(db)?;
                ids.push(conn.last_insert_rowid());
            }
            let mut events = events;
            for (e, id) in events.iter_mut().zip(&ids) {
                e.details["request"] = (*id).into();
            }
            record(conn, at, events)?;
            Ok(ids)
        })
        .await
    }

    async fn request(&self, id: i64) -> Result<Option<RequestRecord>> {
        self.read(move |conn| {
            conn.cached_row(&format!("{REQUEST} WHERE id = ?1"), [id], request_row)
                .optional()
                .map_err(db)
        })
        .await
    }

    async fn requests(
        &self,
        client_id: Option<&str>,
        institution: Option<&str>,
    ) -> Result<Vec<RequestRecord>> {
        let (c, i) = (client_id.map(str::to_owned), institution.map(str::to_owned));
        self.read(move |conn| requests_on(conn, c.as_deref(), i.as_deref()))
            .await
    }

    async fn decide(
        &self,
        request_id: i64,
        verdict: &Verdict,
        by: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<Option<Option<Approval>>> {
        let (verdict, by) = (verdict.clone(), by.to_owned());
        self.write(move |conn| {
            let t = at.unix_timestamp();
            let Some(r) = conn
                .cached_row(
                    &format!("{REQUEST} WHERE id = ?1 AND status = 'pending'"),
                    [request_id],
                    request_row,
                )
                .optional()
                .map_err(db)?
            else {
                return Ok(None);
            };
            let (status, reason) = match &verdict {
                Verdict::Approve => ("approved", None),
                Verdict::Reject { reason } => ("rejected", Some(reason.clone())),
            };
            conn.execute(
                "UPDATE sharing_requests SET status = ?2, decided_at = ?3, decided_by = ?4, reason = ?5 WHERE id = ?1",
                params![request_id, status, t, by, reason],
            )
            .map_err(db)?;
            let mut approval = None;
            if verdict == Verdict::Approve {
                conn.execute(
                    "UPDATE sharing_approvals SET ended_at = ?3, ended_by = ?4, end_reason = 'superseded'
                     WHERE client_id = ?1 AND institution = ?2 AND ended_at IS NULL",
                    params![r.client_id, r.institution, t, by],
                )
                .map_err(db)?;
                let version: i64 = conn
                    .cached_row(
                        "SELECT COALESCE(MAX(version), 0) + 1 FROM sharing_approvals WHERE client_id = ?1 AND institution = ?2",
                        params![r.client_id, r.institution],
                        |row| row.get(0),
                    )
                    .map_err(db)?;
                conn.execute(
                    "INSERT INTO sharing_approvals (client_id, institution, version, request_id, spec, approved_by, approved_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![r.client_id, r.institution, version, r.id, json(&r.spec)?, by, t],
                )
                .map_err(db)?;
                approval = Some(Approval {
                    id: conn.last_insert_rowid(),
                    client_id: r.client_id,
                    institution: r.institution,
                    version,
                    request_id: r.id,
                    spec: r.spec,
                    approved_by: by,
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
            record(conn, at, vec![event])?;
            Ok(Some(approval))
        })
        .await
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
        let (c, i, by, reason) = (
            client_id.to_owned(),
            institution.to_owned(),
            by.to_owned(),
            reason.to_owned(),
        );
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE sharing_approvals SET ended_at = ?3, ended_by = ?4, end_reason = ?5
                     WHERE client_id = ?1 AND institution = ?2 AND ended_at IS NULL",
                    params![c, i, at.unix_timestamp(), by, reason],
                )
                .map_err(db)?;
            if n > 0 {
                record(conn, at, vec![event])?;
            }
            Ok(n > 0)
        })
        .await
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
        let (c, i, by, reason) = (
            client_id.to_owned(),
            institution.to_owned(),
            by.to_owned(),
            reason.map(str::to_owned),
        );
        self.write(move |conn| {
            let n = match &reason {
                Some(reason) => conn.execute(
                    "INSERT INTO sharing_blocks (client_id, institution, blocked_at, blocked_by, reason) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (client_id, institution) DO NOTHING",
                    params![c, i, at.unix_timestamp(), by, reason],
                ),
                None => conn.execute(
                    "DELETE FROM sharing_blocks WHERE client_id = ?1 AND institution = ?2",
                    params![c, i],
                ),
            }
            .map_err(db)?;
            if n > 0 {
                record(conn, at, vec![event])?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn approvals(&self, client_id: &str, institution: &str) -> Result<Vec<Approval>> {
        let (c, i) = (client_id.to_owned(), institution.to_owned());
        self.read(move |conn| approvals_on(conn, &c, &i)).await
    }

    async fn block(&self, client_id: &str, institution: &str) -> Result<Option<Block>> {
        let (c, i) = (client_id.to_owned(), institution.to_owned());
        self.read(move |conn| block_on(conn, &c, &i)).await
    }

    async fn blocks(&self, institution: Option<&str>) -> Result<Vec<Block>> {
        let i = institution.map(str::to_owned);
        self.read(move |conn| {
            all(
                conn,
                &format!("{BLOCK} WHERE (?1 IS NULL OR institution = ?1) ORDER BY institution, client_id"),
                &[&i],
                block_row,
            )
        })
        .await
    }

    async fn history(&self, client_id: &str, institution: &str) -> Result<Vec<HistoryEntry>> {
        let (c, i) = (client_id.to_owned(), institution.to_owned());
        self.read(move |conn| {
            all(
                conn,
                "SELECT at, actor, action, details FROM sharing_history WHERE client_id = ?1 AND institution = ?2 ORDER BY id",
                &[&c, &i],
                |r| {
                    let details: String = r.get(3)?;
                    Ok(HistoryEntry {
                        at: r.get(0)?,
                        actor: r.get(1)?,
                        action: r.get(2)?,
                        details: serde_json::from_str(&details).map_err(conv)?,
                    })
                },
            )
        })
        .await
    }

    async fn add_licences(
        &self,
        rows: &[NewLicence],
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> Result<Vec<i64>> {
        let rows = rows.to_vec();
        self.write(move |conn| {
            let mut ids = Vec::with_capacity(rows.len());
            let mut stmt = conn
                .prepare(
                    "INSERT INTO licences (client_id, institution, scope, target, valid_from, valid_to, granted_by, consent, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(db)?;
            for l in &rows {
                stmt.execute(params![
                    l.client_id,
                    l.institution,
                    l.scope.kind(),
                    l.scope.target(),
                    l.valid_from.to_string(),
                    l.valid_to.map(|d| d.to_string()),
                    l.granted_by,
                    l.consent,
                    at.unix_timestamp()
                ])
                .map_err(db)?;
                ids.push(conn.last_insert_rowid());
            }
            let mut events = events;
            for (e, id) in events.iter_mut().zip(&ids) {
                e.details["licence"] = (*id).into();
            }
            record(conn, at, events)?;
            Ok(ids)
        })
        .await
    }

    async fn withdraw_licence(
        &self,
        id: i64,
        by: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool> {
        let by = by.to_owned();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE licences SET withdrawn_at = ?2, withdrawn_by = ?3 WHERE id = ?1 AND withdrawn_at IS NULL",
                    params![id, at.unix_timestamp(), by],
                )
                .map_err(db)?;
            if n > 0 {
                record(conn, at, vec![event])?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn licences(
        &self,
        client_id: Option<&str>,
        institution: Option<&str>,
    ) -> Result<Vec<Licence>> {
        let (c, i) = (client_id.map(str::to_owned), institution.map(str::to_owned));
        self.read(move |conn| {
            all(
                conn,
                &format!("{LICENCE} WHERE (?1 IS NULL OR client_id = ?1) AND (?2 IS NULL OR institution = ?2) ORDER BY id"),
                &[&c, &i],
                licence_row,
            )
        })
        .await
    }
}

pub(super) fn providers_on(conn: &Connection) -> Result<Vec<Provider>> {
    all(conn, &format!("{PROVIDER} ORDER BY id"), &[], provider_row)
}

pub(super) fn service_link_on(conn: &Connection, client_id: &str) -> Result<Option<ServiceLink>> {
    conn.cached_row(
        "SELECT client_id, provider_id, licence_required FROM sharing_services WHERE client_id = ?1",
        [client_id],
        |r| {
            Ok(ServiceLink {
                client_id: r.get(0)?,
                provider_id: r.get(1)?,
                licence_required: r.get(2)?,
            })
        },
    )
    .optional()
    .map_err(db)
}

pub(super) fn requests_on(
    conn: &Connection,
    client_id: Option<&str>,
    institution: Option<&str>,
) -> Result<Vec<RequestRecord>> {
    all(
        conn,
        &format!("{REQUEST} WHERE (?1 IS NULL OR client_id = ?1) AND (?2 IS NULL OR institution = ?2) ORDER BY id DESC"),
        &[&client_id, &institution],
        request_row,
    )
}

pub(super) fn approvals_on(
    conn: &Connection,
    client_id: &str,
    institution: &str,
) -> Result<Vec<Approval>> {
    all(
        conn,
        &format!("{APPROVAL} WHERE client_id = ?1 AND institution = ?2 ORDER BY version"),
        &[&client_id, &institution],
        approval_row,
    )
}

pub(super) fn block_on(
    conn: &Connection,
    client_id: &str,
    institution: &str,
) -> Result<Option<Block>> {
    conn.cached_row(
        &format!("{BLOCK} WHERE client_id = ?1 AND institution = ?2"),
        params![client_id, institution],
        block_row,
    )
    .optional()
    .map_err(db)
}
