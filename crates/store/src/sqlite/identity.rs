//! Accounts and sessions on SQLite.

use super::{db, head, insert_audit, CachedRow, SqliteStore};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use tilgang_core::audit::{chain, NewEvent};
use tilgang_core::identity::account::FailureState;
use tilgang_core::identity::session::{NewSession, SessionRecord};
use tilgang_core::roster::Actor;
use tilgang_core::store::{AccountRecord, Child, IdentityStore};
use tilgang_core::Result;
use time::OffsetDateTime;

/// The account columns, joined to the person; `?1` picks the person.
pub(super) const ACCOUNT: &str = "SELECT p.id, p.user_id, p.given_name, p.family_name, p.inactive_since IS NOT NULL,
        a.password_hash, a.password_set_at, coalesce(a.failed_logins, 0), coalesce(a.lockouts, 0), a.locked_until,
        (SELECT group_concat(DISTINCT r.actor) FROM roles r WHERE r.person_id = p.id AND r.ended_on IS NULL),
        (SELECT r.grade_level FROM roles r WHERE r.person_id = p.id AND r.ended_on IS NULL AND r.actor = 'Elev' LIMIT 1),
        EXISTS (SELECT 1 FROM contacts c WHERE c.contact_id = p.id AND c.ended_on IS NULL),
        EXISTS (SELECT 1 FROM provider_users u WHERE u.person_id = p.id)
     FROM persons p LEFT JOIN accounts a ON a.person_id = p.id";

pub(super) fn account_row(r: &Row<'_>) -> rusqlite::Result<AccountRecord> {
    let mut actors: Vec<Actor> = r
        .get::<_, Option<String>>(10)?
        .unwrap_or_default()
        .split(',')
        .filter_map(Actor::parse)
        .collect();
    if r.get::<_, bool>(12)? {
        actors.push(Actor::ContactPerson);
    }
    // A provider portal login is an external person (adult password rules).
    if r.get::<_, bool>(13)? && !actors.contains(&Actor::External) {
        actors.push(Actor::External);
    }
    Ok(AccountRecord {
        person_id: r.get(0)?,
        user_id: r.get(1)?,
        given_name: r.get(2)?,
        family_name: r.get(3)?,
        inactive: r.get(4)?,
        actors,
        grade_level: r.get(11)?,
        password_hash: r.get(5)?,
        password_set_at: r.get(6)?,
        failed_logins: r.get(7)?,
        lockouts: r.get(8)?,
        locked_until: r.get(9)?,
    })
}

const SESSION: &str =
    "SELECT s.id_hash, s.person_id, p.user_id, p.given_name, s.csrf, s.acr, s.amr, s.created_at,
        s.last_seen_at, s.expires_at, s.user_agent
     FROM sessions s JOIN persons p ON p.id = s.person_id";

fn session_row(r: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    let hash: Vec<u8> = r.get(0)?;
    let amr: String = r.get(6)?;
    Ok(SessionRecord {
        id_hash: hash.try_into().unwrap_or([0; 32]),
        person_id: r.get(1)?,
        user_id: r.get(2)?,
        given_name: r.get(3)?,
        csrf: r.get(4)?,
        acr: r.get(5)?,
        amr: amr
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        created_at: r.get(7)?,
        last_seen_at: r.get(8)?,
        expires_at: r.get(9)?,
        user_agent: r.get(10)?,
    })
}

const CHILDREN: &str = "SELECT p.given_name, p.family_name, i.name, c.custody
     FROM contacts c JOIN persons p ON p.id = c.pupil_id JOIN institutions i ON i.id = c.institution_id
     WHERE c.contact_id = ?1 AND c.ended_on IS NULL ORDER BY p.given_name, p.family_name, i.name";

/// Makes the account row when it does not exist yet.
pub(super) fn ensure_account(conn: &Connection, person_id: i64, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO accounts (person_id, created_at, updated_at) VALUES (?1, ?2, ?2) ON CONFLICT (person_id) DO NOTHING",
        params![person_id, now],
    )
    .map_err(db)
    .map(drop)
}

pub(super) fn insert_session(conn: &Connection, person_id: i64, s: &NewSession) -> Result<()> {
    conn.execute(
        "INSERT INTO sessions (id_hash, person_id, csrf, acr, amr, created_at, last_seen_at, expires_at, user_agent)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)",
        params![&s.id_hash[..], person_id, s.csrf, s.acr, s.amr.join(" "), s.created_at, s.expires_at, s.user_agent],
    )
    .map_err(db)?;
    // A session is a use of the account: the lifecycle closes accounts by it.
    conn.execute(
        "UPDATE accounts SET last_login_at = ?2 WHERE person_id = ?1",
        params![person_id, s.created_at],
    )
    .map_err(db)
    .map(drop)
}

pub(super) fn audit(conn: &Connection, at: OffsetDateTime, events: Vec<NewEvent>) -> Result<()> {
    let (sealed, _) = chain::seal(head(conn)?, at, events);
    insert_audit(conn, &sealed)
}

#[async_trait]
impl IdentityStore for SqliteStore {
    async fn account(&self, user_id: &str) -> Result<Option<AccountRecord>> {
        let user_id = user_id.to_owned();
        self.read(move |conn| account_on(conn, &user_id)).await
    }

    async fn account_by_activation(
        &self,
        code_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<AccountRecord>> {
        let code_hash = code_hash.to_vec();
        self.read(move |conn| {
            conn.cached_row(
                &format!("{ACCOUNT} WHERE a.activation_hash = ?1 AND a.activation_expires_at > ?2"),
                params![code_hash, now],
                account_row,
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn set_activation(
        &self,
        person_id: i64,
        code_hash: &[u8; 32],
        expires_at: i64,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        let code_hash = code_hash.to_vec();
        self.write(move |conn| {
            let now = at.unix_timestamp();
            ensure_account(conn, person_id, now)?;
            conn.execute(
                "UPDATE accounts SET activation_hash = ?2, activation_expires_at = ?3, updated_at = ?4 WHERE person_id = ?1",
                params![person_id, code_hash, expires_at, now],
            )
            .map_err(db)?;
            audit(conn, at, vec![event])
        })
        .await
    }

    async fn set_password(
        &self,
        person_id: i64,
        phc: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        let phc = phc.to_owned();
        self.write(move |conn| {
            let now = at.unix_timestamp();
            ensure_account(conn, person_id, now)?;
            conn.execute(
                "UPDATE accounts SET password_hash = ?2, password_set_at = ?3, activation_hash = NULL, activation_expires_at = NULL,
                 failed_logins = 0, lockouts = 0, locked_until = NULL, closed_at = NULL, updated_at = ?3 WHERE person_id = ?1",
                params![person_id, phc, now],
            )
            .map_err(db)?;
            conn.execute("DELETE FROM sessions WHERE person_id = ?1", [person_id]).map_err(db)?;
            audit(conn, at, vec![event])
        })
        .await
    }

    async fn record_failure(
        &self,
        person_id: i64,
        state: FailureState,
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> Result<()> {
        self.write(move |conn| {
            let now = at.unix_timestamp();
            ensure_account(conn, person_id, now)?;
            conn.execute(
                "UPDATE accounts SET failed_logins = ?2, lockouts = ?3, locked_until = ?4, updated_at = ?5 WHERE person_id = ?1",
                params![person_id, state.failed_logins, state.lockouts, state.locked_until, now],
            )
            .map_err(db)?;
            audit(conn, at, events)
        })
        .await
    }

    async fn unlock(&self, person_id: i64, at: OffsetDateTime, event: NewEvent) -> Result<()> {
        self.write(move |conn| {
            let now = at.unix_timestamp();
            ensure_account(conn, person_id, now)?;
            conn.execute(
                "UPDATE accounts SET failed_logins = 0, lockouts = 0, locked_until = NULL, updated_at = ?2 WHERE person_id = ?1",
                params![person_id, now],
            )
            .map_err(db)?;
            audit(conn, at, vec![event])
        })
        .await
    }

    async fn record_login(
        &self,
        person_id: i64,
        rehash: Option<&str>,
        session: &NewSession,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        let rehash = rehash.map(str::to_owned);
        let s = session.clone();
        self.write(move |conn| {
            let now = at.unix_timestamp();
            ensure_account(conn, person_id, now)?;
            conn.execute(
                "UPDATE accounts SET failed_logins = 0, lockouts = 0, locked_until = NULL,
                 password_hash = coalesce(?2, password_hash), updated_at = ?3 WHERE person_id = ?1",
                params![person_id, rehash, now],
            )
            .map_err(db)?;
            insert_session(conn, person_id, &s)?;
            audit(conn, at, vec![event])
        })
        .await
    }

    async fn session(&self, id_hash: &[u8; 32]) -> Result<Option<SessionRecord>> {
        let id_hash = id_hash.to_vec();
        self.read(move |conn| {
            conn.cached_row(
                &format!("{SESSION} WHERE s.id_hash = ?1"),
                [id_hash],
                session_row,
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn touch_session(&self, id_hash: &[u8; 32], now: i64) -> Result<()> {
        let id_hash = id_hash.to_vec();
        self.write(move |conn| {
            conn.execute(
                "UPDATE sessions SET last_seen_at = ?2 WHERE id_hash = ?1",
                params![id_hash, now],
            )
            .map_err(db)
            .map(drop)
        })
        .await
    }

    async fn end_session(
        &self,
        id_hash: &[u8; 32],
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        let id_hash = id_hash.to_vec();
        self.write(move |conn| {
            conn.execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])
                .map_err(db)?;
            audit(conn, at, vec![event])
        })
        .await
    }

    async fn sessions_of(&self, person_id: i64) -> Result<Vec<SessionRecord>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "{SESSION} WHERE s.person_id = ?1 ORDER BY s.created_at DESC"
                ))
                .map_err(db)?;
            let rows = stmt.query_map([person_id], session_row).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn children_of(&self, person_id: i64) -> Result<Vec<Child>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(CHILDREN).map_err(db)?;
            let rows = stmt
                .query_map([person_id], |r| {
                    Ok(Child {
                        given_name: r.get(0)?,
                        family_name: r.get(1)?,
                        institution: r.get(2)?,
                        custody: r.get(3)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn count_attempts(
        &self,
        buckets: &[String],
        minute: i64,
        window: i64,
    ) -> Result<Vec<i64>> {
        let buckets = buckets.to_vec();
        self.write(move |conn| {
            conn.execute("DELETE FROM login_attempts WHERE minute <= ?1", [minute - window]).map_err(db)?;
            let mut counts = Vec::with_capacity(buckets.len());
            for bucket in &buckets {
                conn.execute(
                    "INSERT INTO login_attempts (bucket, minute, count) VALUES (?1, ?2, 1)
                     ON CONFLICT (bucket, minute) DO UPDATE SET count = count + 1",
                    params![bucket, minute],
                )
                .map_err(db)?;
                counts.push(
                    conn.cached_row(
                        "SELECT coalesce(sum(count), 0) FROM login_attempts WHERE bucket = ?1 AND minute > ?2",
                        params![bucket, minute - window],
                        |r| r.get(0),
                    )
                    .map_err(db)?,
                );
            }
            Ok(counts)
        })
        .await
    }
}

pub(super) fn account_on(conn: &Connection, user_id: &str) -> Result<Option<AccountRecord>> {
    conn.cached_row(
        &format!("{ACCOUNT} WHERE p.user_id = ?1"),
        [user_id],
        account_row,
    )
    .optional()
    .map_err(db)
}
