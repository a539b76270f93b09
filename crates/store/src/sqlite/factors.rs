//! Second factors, recovery codes and ceremonies on SQLite.

use super::identity::{audit, ensure_account, insert_session};
use super::{db, CachedRow, SqliteStore};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use tilgang_core::audit::NewEvent;
use tilgang_core::identity::session::NewSession;
use tilgang_core::store::factors::{
    Added, Ceremony, FactorKind, FactorStore, FactorUse, NewFactor, SecondFactor,
};
use tilgang_core::Result;
use time::OffsetDateTime;

const FACTOR: &str =
    "SELECT id, person_id, kind, label, secret_enc, last_step, credential_id, credential,
        user_handle, created_at, last_used_at FROM second_factors";

fn factor_row(r: &Row<'_>) -> rusqlite::Result<SecondFactor> {
    let kind: String = r.get(2)?;
    Ok(SecondFactor {
        id: r.get(0)?,
        person_id: r.get(1)?,
        kind: FactorKind::parse(&kind).unwrap_or(FactorKind::Totp),
        label: r.get(3)?,
        secret_enc: r.get(4)?,
        last_step: r.get(5)?,
        credential_id: r.get(6)?,
        credential: r.get(7)?,
        user_handle: r.get(8)?,
        created_at: r.get(9)?,
        last_used_at: r.get(10)?,
    })
}

fn ceremony_row(r: &Row<'_>) -> rusqlite::Result<Ceremony> {
    Ok(Ceremony {
        person_id: r.get(0)?,
        state: r.get(1)?,
    })
}

fn insert_codes(conn: &Connection, person_id: i64, hashes: &[[u8; 32]], now: i64) -> Result<()> {
    conn.execute(
        "DELETE FROM recovery_codes WHERE person_id = ?1",
        [person_id],
    )
    .map_err(db)?;
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO recovery_codes (person_id, code_hash, created_at) VALUES (?1, ?2, ?3)",
        )
        .map_err(db)?;
    for h in hashes {
        stmt.execute(params![person_id, &h[..], now]).map_err(db)?;
    }
    Ok(())
}

/// Refuses the transaction's work so far; the caller reports `false`.
struct Refused;

impl SqliteStore {
    /// Like `write`, but `Ok(Err(_))` from `f` rolls back: a refusal writes
    /// nothing.
    async fn write_or_refuse<T: Send + 'static, R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<std::result::Result<T, R>> + Send + 'static,
    ) -> Result<std::result::Result<T, R>> {
        let conn = self.writer.clone().lock_owned().await;
        tokio::task::spawn_blocking(move || {
            conn.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
            match f(&conn) {
                Ok(Ok(v)) => {
                    conn.execute_batch("COMMIT").map_err(db)?;
                    Ok(Ok(v))
                }
                Ok(Err(r)) => {
                    conn.execute_batch("ROLLBACK").map_err(db)?;
                    Ok(Err(r))
                }
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(e)
                }
            }
        })
        .await
        .map_err(tilgang_core::Error::store)?
    }
}

#[async_trait]
impl FactorStore for SqliteStore {
    async fn user_id_of(&self, person_id: i64) -> Result<Option<String>> {
        self.read(move |conn| {
            conn.cached_row(
                "SELECT user_id FROM persons WHERE id = ?1",
                [person_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn second_factors(&self, person_id: i64) -> Result<Vec<SecondFactor>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!("{FACTOR} WHERE person_id = ?1 ORDER BY id"))
                .map_err(db)?;
            let rows = stmt.query_map([person_id], factor_row).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn passkey_by_credential(&self, credential_id: &[u8]) -> Result<Option<SecondFactor>> {
        let cid = credential_id.to_vec();
        self.read(move |conn| {
            conn.cached_row(
                &format!("{FACTOR} WHERE credential_id = ?1 AND kind = 'passkey'"),
                [cid],
                factor_row,
            )
            .optional()
            .map_err(db)
        })
        .await
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
        let f = factor.clone();
        let ceremony = ceremony.to_vec();
        let recovery = recovery.to_vec();
        self.write_or_refuse(move |conn| {
            let now = at.unix_timestamp();
            let gone = conn
                .execute(
                    "DELETE FROM factor_ceremonies WHERE key_hash = ?1 AND expires_at > ?2",
                    params![ceremony, now],
                )
                .map_err(db)?
                == 0;
            if gone {
                return Ok(Err(Added::CeremonyGone));
            }
            let existing: i64 = conn
                .cached_row(
                    "SELECT count(*) FROM second_factors WHERE person_id = ?1",
                    [f.person_id],
                    |r| r.get(0),
                )
                .map_err(db)?;
            if existing > 0 && only_first {
                return Ok(Err(Added::NotFirst));
            }
            ensure_account(conn, f.person_id, now)?;
            conn.execute(
                "INSERT INTO second_factors (person_id, kind, label, secret_enc, last_step, credential_id, credential,
                    user_handle, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    f.person_id,
                    f.kind.as_str(),
                    f.label,
                    f.secret_enc,
                    f.last_step,
                    f.credential_id,
                    f.credential,
                    f.user_handle,
                    now
                ],
            )
            .map_err(db)?;
            let id = conn.last_insert_rowid();
            let first = existing == 0;
            if first {
                insert_codes(conn, f.person_id, &recovery, now)?;
            }
            audit(conn, at, vec![event])?;
            Ok(Ok(Added::Stored { id, first }))
        })
        .await
        .map(|r| r.unwrap_or_else(|refused| refused))
    }

    async fn remove_factor(
        &self,
        person_id: i64,
        factor_id: i64,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<bool> {
        self.write_or_refuse(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM second_factors WHERE id = ?1 AND person_id = ?2",
                    params![factor_id, person_id],
                )
                .map_err(db)?;
            if n == 0 {
                return Ok(Err(Refused));
            }
            conn.execute(
                "DELETE FROM recovery_codes WHERE person_id = ?1
                 AND NOT EXISTS (SELECT 1 FROM second_factors WHERE person_id = ?1)",
                [person_id],
            )
            .map_err(db)?;
            audit(conn, at, vec![event])?;
            Ok(Ok(()))
        })
        .await
        .map(|r| r.is_ok())
    }

    async fn replace_recovery_codes(
        &self,
        person_id: i64,
        hashes: &[[u8; 32]],
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        let hashes = hashes.to_vec();
        self.write(move |conn| {
            insert_codes(conn, person_id, &hashes, at.unix_timestamp())?;
            audit(conn, at, vec![event])
        })
        .await
    }

    async fn unused_recovery_codes(&self, person_id: i64) -> Result<i64> {
        self.read(move |conn| {
            conn.cached_row(
                "SELECT count(*) FROM recovery_codes WHERE person_id = ?1 AND used_at IS NULL",
                [person_id],
                |r| r.get(0),
            )
            .map_err(db)
        })
        .await
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
        let factor = factor.clone();
        let replaces = replaces.map(|h| h.to_vec());
        let s = session.clone();
        self.write_or_refuse(move |conn| {
            let now = at.unix_timestamp();
            let n = match &factor {
                FactorUse::Totp { factor_id, step } => conn.execute(
                    "UPDATE second_factors SET last_step = ?3, last_used_at = ?4
                     WHERE id = ?1 AND person_id = ?2 AND kind = 'totp' AND (last_step IS NULL OR last_step < ?3)",
                    params![factor_id, person_id, step, now],
                ),
                FactorUse::Passkey {
                    factor_id,
                    credential,
                } => conn.execute(
                    "UPDATE second_factors SET credential = ?3, last_used_at = ?4
                     WHERE id = ?1 AND person_id = ?2 AND kind = 'passkey'",
                    params![factor_id, person_id, credential, now],
                ),
                FactorUse::Recovery { code_hash } => conn.execute(
                    "UPDATE recovery_codes SET used_at = ?3
                     WHERE person_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
                    params![person_id, &code_hash[..], now],
                ),
            }
            .map_err(db)?;
            if n != 1 {
                return Ok(Err(Refused));
            }
            ensure_account(conn, person_id, now)?;
            conn.execute(
                "UPDATE accounts SET failed_logins = 0, updated_at = ?2 WHERE person_id = ?1",
                params![person_id, now],
            )
            .map_err(db)?;
            if let Some(old) = &replaces {
                conn.execute("DELETE FROM sessions WHERE id_hash = ?1", [old])
                    .map_err(db)?;
            }
            insert_session(conn, person_id, &s)?;
            audit(conn, at, vec![event])?;
            Ok(Ok(()))
        })
        .await
        .map(|r| r.is_ok())
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
        let (key, kind, state) = (key.to_vec(), kind.to_owned(), state.to_vec());
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM factor_ceremonies WHERE expires_at <= ?1",
                [now],
            )
            .map_err(db)?;
            conn.execute(
                "INSERT INTO factor_ceremonies (key_hash, person_id, kind, state, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (key_hash) DO UPDATE SET person_id = excluded.person_id, kind = excluded.kind,
                    state = excluded.state, expires_at = excluded.expires_at",
                params![key, person_id, kind, state, expires_at],
            )
            .map_err(db)
            .map(drop)
        })
        .await
    }

    async fn ceremony(&self, key: &[u8; 32], kind: &str, now: i64) -> Result<Option<Ceremony>> {
        let (key, kind) = (key.to_vec(), kind.to_owned());
        self.read(move |conn| {
            conn.cached_row(
                "SELECT person_id, state FROM factor_ceremonies WHERE key_hash = ?1 AND kind = ?2 AND expires_at > ?3",
                params![key, kind, now],
                ceremony_row,
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn take_ceremony(
        &self,
        key: &[u8; 32],
        kind: &str,
        now: i64,
    ) -> Result<Option<Ceremony>> {
        let (key, kind) = (key.to_vec(), kind.to_owned());
        self.write(move |conn| {
            conn.cached_row(
                "DELETE FROM factor_ceremonies WHERE key_hash = ?1 AND kind = ?2 AND expires_at > ?3
                 RETURNING person_id, state",
                params![key, kind, now],
                ceremony_row,
            )
            .optional()
            .map_err(db)
        })
        .await
    }
}
