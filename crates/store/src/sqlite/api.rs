//! The data API's reads on SQLite: each on one reader connection in one
//! read transaction (one snapshot, one hop to a blocking thread).

use super::export::{export_institution_on, export_person_on};
use super::identity::account_on;
use super::oidc::{claims_source_on, service_on, token_on};
use super::sharing::{approvals_on, block_on, providers_on, requests_on, service_link_on};
use super::{db, SqliteStore};
use async_trait::async_trait;
use rusqlite::Connection;
use tilgang_core::store::api::{ApiStore, CallerRead, PersonRead, StandingRead};
use tilgang_core::Result;

/// Runs `f` in one read transaction on `conn`.
fn snapshot<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    let tx = conn.unchecked_transaction().map_err(db)?;
    let out = f(&tx)?;
    tx.commit().map_err(db)?;
    Ok(out)
}

fn caller_on(c: &Connection, hash: &[u8; 32], sealed_client: Option<&str>) -> Result<CallerRead> {
    let stored = token_on(c, hash)?;
    let Some(client_id) = CallerRead::client_of(stored.as_ref(), sealed_client) else {
        return Ok(CallerRead::default());
    };
    let service = service_on(c, &client_id)?;
    let provider = match service_link_on(c, &client_id)?.and_then(|l| l.provider_id) {
        Some(id) => providers_on(c)?.into_iter().find(|p| p.id == id),
        None => None,
    };
    Ok(CallerRead {
        stored,
        service,
        provider,
    })
}

fn person_on(c: &Connection, client_id: &str, user_id: &str) -> Result<Option<PersonRead>> {
    let Some(account) = account_on(c, user_id)? else {
        return Ok(None);
    };
    let Some(claims) = claims_source_on(c, account.person_id)? else {
        return Ok(None);
    };
    let mut at = Vec::with_capacity(claims.institutions.len());
    for inst in &claims.institutions {
        let requests = requests_on(c, Some(client_id), Some(&inst.number))?;
        let row = match export_institution_on(c, &inst.number)? {
            Some(i) => export_person_on(c, i.id, claims.person_id)?,
            None => None,
        };
        at.push(StandingRead::new(
            inst.number.clone(),
            block_on(c, client_id, &inst.number)?.is_some(),
            approvals_on(c, client_id, &inst.number)?,
            &requests,
            row,
        ));
    }
    Ok(Some(PersonRead {
        account,
        claims,
        at,
    }))
}

#[async_trait]
impl ApiStore for SqliteStore {
    async fn caller_read(
        &self,
        token_hash: &[u8; 32],
        sealed_client: Option<&str>,
    ) -> Result<CallerRead> {
        let (hash, sealed_client) = (*token_hash, sealed_client.map(str::to_owned));
        self.read(move |conn| snapshot(conn, |c| caller_on(c, &hash, sealed_client.as_deref())))
            .await
    }

    async fn person_read(&self, client_id: &str, user_id: &str) -> Result<Option<PersonRead>> {
        let (client_id, user_id) = (client_id.to_owned(), user_id.to_owned());
        self.read(move |conn| snapshot(conn, |c| person_on(c, &client_id, &user_id)))
            .await
    }

    async fn caller_person_read(
        &self,
        token_hash: &[u8; 32],
        client_id: &str,
        user_id: &str,
    ) -> Result<(CallerRead, Option<PersonRead>)> {
        let (hash, client_id, user_id) = (*token_hash, client_id.to_owned(), user_id.to_owned());
        self.read(move |conn| {
            snapshot(conn, |c| {
                Ok((
                    caller_on(c, &hash, Some(&client_id))?,
                    person_on(c, &client_id, &user_id)?,
                ))
            })
        })
        .await
    }
}
