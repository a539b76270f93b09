//! Second factors, recovery codes and ceremonies on PostgreSQL: the SQLite
//! implementation (`sqlite/factors.rs`) query for query. A refused use
//! rolls its transaction back, so it writes nothing.

use super::identity::{audit, ensure_account, insert_session};
use super::{db, execute, query, PgStore};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tilgang_core::audit::NewEvent;
use tilgang_core::identity::session::NewSession;
use tilgang_core::store::factors::{
    Added, Ceremony, FactorKind, FactorStore, FactorUse, NewFactor, SecondFactor,
};
use tilgang_core::Result;
use time::OffsetDateTime;
use tokio_postgres::Row;

const FACTOR: &str =
    "SELECT id, person_id, kind, label, secret_enc, last_step, credential_id, credential,
        user_handle, created_at, last_used_at FROM second_factors";

fn factor_row(r: &Row) -> Result<SecondFactor> {
    let kind: &str = r.try_get(2).map_err(db)?;
    Ok(SecondFactor {
        id: r.try_get(0).map_err(db)?,
        person_id: r.try_get(1).map_err(db)?,
        kind: FactorKind::parse(kind).unwrap_or(FactorKind::Totp),
        label: r.try_get(3).map_err(db)?,
        secret_enc: r.try_get(4).map_err(db)?,
        last_step: r.try_get(5).map_err(db)?,
        credential_id: r.try_get(6).map_err(db)?,
        credential: r.try_get(7).map_err(db)?,
        user_handle: r.try_get(8).map_err(db)?,
        created_at: r.try_get(9).map_err(db)?,
        last_used_at: r.try_get(10).map_err(db)?,
    })
}

fn ceremony_row(r: &Row) -> Result<Ceremony> {
    Ok(Ceremony {
        person_id: r.try_get(0).map_err(db)?,
        state: r.try_get(1).map_err(db)?,
    })
}

async fn insert_codes<C: GenericClient>(
    c: &C,
    person_id: i64,
    hashes: &[[u8; 32]],
    now: i64,
) -> Result<()> {
    execute(
        c,
        "DELETE FROM recovery_codes WHERE person_id = $1",
        &[&person_id],
    )
    .await?;
    let hashes: Vec<&[u8]> = hashes.iter().map(|h| &h[..]).collect();
    execute(
        c,
        "INSERT INTO recovery_codes (person_id, code_hash, created_at)
         SELECT $1, h, $3 FROM unnest($2::bytea[]) AS h",
        &[&person_id, &hashes, &now],
    )
    .await
    .map(drop)
}

#[async_trait]
impl FactorStore for PgStore {
    async fn user_id_of(&self, person_id: i64) -> Result<Option<String>> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            "SELECT user_id FROM persons WHERE id = $1",
            &[&person_id],
        )
        .await?;
        rows.first().map(|r| r.try_get(0).map_err(db)).transpose()
    }

    async fn second_factors(&self, person_id: i64) -> Result<Vec<SecondFactor>> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            &format!("{FACTOR} WHERE person_id = $1 ORDER BY id"),
            &[&person_id],
        )
        .await?;
        rows.iter().map(factor_row).collect()
    }

    async fn passkey_by_credential(&self, credential_id: &[u8]) -> Result<Option<SecondFactor>> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            &format!("{FACTOR} WHERE credential_id = $1 AND kind = 'passkey'"),
            &[&credential_id],
        )
        .await?;
        rows.first().map(factor_row).transpose()
    }

    async fn add_factor(
        &self,
        factor: &NewFactor,
        ceremony: &[u8; 32],
        only_first: bool,
        recovery: &[[u8; 32]],
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<Added> {
        let f = factor;
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let now = at.unix_timestamp();
        let gone = execute(
            &tx,
            "DELETE FROM factor_ceremonies WHERE key_hash = $1 AND expires_at > $2",
            &[&&ceremony[..], &now],
        )
        .await?
            == 0;
        if gone {
            tx.rollback().await.map_err(db)?;
            return Ok(Added::CeremonyGone);
        }
        ensure_account(&tx, f.person_id, now).await?;
        // The account row, locked: two enrolments of one person take turns,
        // so only one of them is the first.
        execute(
            &tx,
            "SELECT 1 FROM accounts WHERE person_id = $1 FOR UPDATE",
            &[&f.person_id],
        )
        .await?;
        let existing: i64 = query(
            &tx,
            "SELECT count(*) FROM second_factors WHERE person_id = $1",
            &[&f.person_id],
        )
        .await?
        .first()
        .map(|r| r.try_get(0).map_err(db))
        .transpose()?
        .unwrap_or(0);
        if existing > 0 && only_first {
            tx.rollback().await.map_err(db)?;
            return Ok(Added::NotFirst);
        }
        let id: i64 = query(
            &tx,
            "INSERT INTO second_factors (person_id, kind, label, secret_enc, last_step, credential_id, credential,
                user_handle, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            &[
                &f.person_id,
                &f.kind.as_str(),
                &f.label,
                &f.secret_enc,
                &f.last_step,
                &f.credential_id,
                &f.credential,
                &f.user_handle,
                &now,
            ],
        )
        .await?
        .first()
        .map(|r| r.try_get(0).map_err(db))
        .transpose()?
        .unwrap_or(0);
        let first = existing == 0;
        if first {
            insert_codes(&tx, f.person_id, recovery, now).await?;
        }
        audit(&tx, at, vec![event]).await?;
        tx.commit().await.map_err(db)?;
        Ok(Added::Stored { id, first })
    }

    async fn remove_factor(
        &self,
        person_id: i64,
        factor_id: i64,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let n = execute(
            &tx,
            "DELETE FROM second_factors WHERE id = $1 AND person_id = $2",
            &[&factor_id, &person_id],
        )
        .await?;
        if n == 0 {
            tx.rollback().await.map_err(db)?;
            return Ok(false);
        }
        execute(
            &tx,
            "DELETE FROM recovery_codes WHERE person_id = $1
             AND NOT EXISTS (SELECT 1 FROM second_factors WHERE person_id = $1)",
            &[&person_id],
        )
        .await?;
        audit(&tx, at, vec![event]).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn replace_recovery_codes(
        &self,
        person_id: i64,
        hashes: &[[u8; 32]],
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        insert_codes(&tx, person_id, hashes, at.unix_timestamp()).await?;
        audit(&tx, at, vec![event]).await?;
        tx.commit().await.map_err(db)
    }

    async fn unused_recovery_codes(&self, person_id: i64) -> Result<i64> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            "SELECT count(*) FROM recovery_codes WHERE person_id = $1 AND used_at IS NULL",
            &[&person_id],
        )
        .await?;
        Ok(rows
            .first()
            .map(|r| r.try_get(0).map_err(db))
            .transpose()?
            .unwrap_or(0))
    }

    async fn use_factor(
        &self,
        person_id: i64,
        factor: &FactorUse,
        replaces: Option<&[u8; 32]>,
        session: &NewSession,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let now = at.unix_timestamp();
        let n = match factor {
            FactorUse::Totp { factor_id, step } => {
                execute(
                    &tx,
                    "UPDATE second_factors SET last_step = $3, last_used_at = $4
                     WHERE id = $1 AND person_id = $2 AND kind = 'totp' AND (last_step IS NULL OR last_step < $3)",
                    &[factor_id, &person_id, step, &now],
                )
                .await?
            }
            FactorUse::Passkey {
                factor_id,
                credential,
            } => {
                execute(
                    &tx,
                    "UPDATE second_factors SET credential = $3, last_used_at = $4
                     WHERE id = $1 AND person_id = $2 AND kind = 'passkey'",
                    &[factor_id, &person_id, credential, &now],
                )
                .await?
            }
            FactorUse::Recovery { code_hash } => {
                execute(
                    &tx,
                    "UPDATE recovery_codes SET used_at = $3
                     WHERE person_id = $1 AND code_hash = $2 AND used_at IS NULL",
                    &[&person_id, &&code_hash[..], &now],
                )
                .await?
            }
        };
        if n != 1 {
            tx.rollback().await.map_err(db)?;
            return Ok(false);
        }
        ensure_account(&tx, person_id, now).await?;
        execute(
            &tx,
            "UPDATE accounts SET failed_logins = 0, updated_at = $2 WHERE person_id = $1",
            &[&person_id, &now],
        )
        .await?;
        if let Some(old) = replaces {
            execute(&tx, "DELETE FROM sessions WHERE id_hash = $1", &[&&old[..]]).await?;
        }
        insert_session(&tx, person_id, session).await?;
        audit(&tx, at, vec![event]).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn put_ceremony(
        &self,
        key: &[u8; 32],
        kind: &str,
        person_id: Option<i64>,
        state: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        execute(
            &tx,
            "DELETE FROM factor_ceremonies WHERE key_hash IN (
                SELECT key_hash FROM factor_ceremonies WHERE expires_at <= $1 FOR UPDATE SKIP LOCKED)",
            &[&now],
        )
        .await?;
        execute(
            &tx,
            "INSERT INTO factor_ceremonies (key_hash, person_id, kind, state, expires_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (key_hash) DO UPDATE SET person_id = excluded.person_id, kind = excluded.kind,
                state = excluded.state, expires_at = excluded.expires_at",
            &[&&key[..], &person_id, &kind, &state, &expires_at],
        )
        .await?;
        tx.commit().await.map_err(db)
    }

    async fn ceremony(&self, key: &[u8; 32], kind: &str, now: i64) -> Result<Option<Ceremony>> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            "SELECT person_id, state FROM factor_ceremonies WHERE key_hash = $1 AND kind = $2 AND expires_at > $3",
            &[&&key[..], &kind, &now],
        )
        .await?;
        rows.first().map(ceremony_row).transpose()
    }

    async fn take_ceremony(
        &self,
        key: &[u8; 32],
        kind: &str,
        now: i64,
    ) -> Result<Option<Ceremony>> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            "DELETE FROM factor_ceremonies WHERE key_hash = $1 AND kind = $2 AND expires_at > $3
             RETURNING person_id, state",
            &[&&key[..], &kind, &now],
        )
        .await?;
        rows.first().map(ceremony_row).transpose()
    }
}
