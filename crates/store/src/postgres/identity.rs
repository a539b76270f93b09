//! Accounts and sessions on PostgreSQL: the SQLite implementation
//! (`sqlite/identity.rs`) query for query. Each change runs in one
//! transaction with its audit events, sealed onto the head row locked
//! `FOR UPDATE` (as `append_audit` does).

use super::{db, execute, query, read_head, write_audit, PgStore};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tilgang_core::audit::{chain, NewEvent};
use tilgang_core::identity::account::FailureState;
use tilgang_core::identity::session::{NewSession, SessionRecord};
use tilgang_core::roster::Actor;
use tilgang_core::store::{AccountRecord, Child, IdentityStore};
use tilgang_core::Result;
use time::OffsetDateTime;
use tokio_postgres::Row;

/// The account columns, joined to the person; the caller adds the `WHERE`.
/// Actors come in the order their first active role was stored (as SQLite's
/// `group_concat(DISTINCT …)` along `roles_person` yields them).
const ACCOUNT: &str = "SELECT p.id, p.user_id, p.given_name, p.family_name, p.inactive_since IS NOT NULL,
        a.password_hash, a.password_set_at, coalesce(a.failed_logins, 0), coalesce(a.lockouts, 0), a.locked_until,
        (SELECT array_agg(x.actor ORDER BY x.first) FROM (
            SELECT r.actor, min(r.id) AS first FROM roles r WHERE r.person_id = p.id AND r.ended_on IS NULL GROUP BY r.actor) x),
        (SELECT r.grade_level FROM roles r WHERE r.person_id = p.id AND r.ended_on IS NULL AND r.actor = 'Elev'
         ORDER BY r.id LIMIT 1),
        EXISTS (SELECT 1 FROM contacts c WHERE c.contact_id = p.id AND c.ended_on IS NULL),
        EXISTS (SELECT 1 FROM provider_users u WHERE u.person_id = p.id)
     FROM persons p LEFT JOIN accounts a ON a.person_id = p.id";

fn account_row(r: &Row) -> Result<AccountRecord> {
    let mut actors: Vec<Actor> = r
        .try_get::<_, Option<Vec<String>>>(10)
        .map_err(db)?
        .unwrap_or_default()
        .iter()
        .filter_map(|a| Actor::parse(a))
        .collect();
    if r.try_get::<_, bool>(12).map_err(db)? {
        actors.push(Actor::ContactPerson);
    }
    // A provider portal login is an external person (adult password rules).
    if r.try_get::<_, bool>(13).map_err(db)? && !actors.contains(&Actor::External) {
        actors.push(Actor::External);
    }
    Ok(AccountRecord {
        person_id: r.try_get(0).map_err(db)?,
        user_id: r.try_get(1).map_err(db)?,
        given_name: r.try_get(2).map_err(db)?,
        family_name: r.try_get(3).map_err(db)?,
        inactive: r.try_get(4).map_err(db)?,
        actors,
        grade_level: r.try_get(11).map_err(db)?,
        password_hash: r.try_get(5).map_err(db)?,
        password_set_at: r.try_get(6).map_err(db)?,
        failed_logins: r.try_get(7).map_err(db)?,
        lockouts: r.try_get(8).map_err(db)?,
        locked_until: r.try_get(9).map_err(db)?,
    })
}

const SESSION: &str =
    "SELECT s.id_hash, s.person_id, p.user_id, p.given_name, s.csrf, s.acr, s.amr, s.created_at,
        s.last_seen_at, s.expires_at, s.user_agent
     FROM sessions s JOIN persons p ON p.id = s.person_id";

fn session_row(r: &Row) -> Result<SessionRecord> {
    let hash: Vec<u8> = r.try_get(0).map_err(db)?;
    let amr: &str = r.try_get(6).map_err(db)?;
    Ok(SessionRecord {
        id_hash: hash.try_into().unwrap_or([0; 32]),
        person_id: r.try_get(1).map_err(db)?,
        user_id: r.try_get(2).map_err(db)?,
        given_name: r.try_get(3).map_err(db)?,
        csrf: r.try_get(4).map_err(db)?,
        acr: r.try_get(5).map_err(db)?,
        amr: amr
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        created_at: r.try_get(7).map_err(db)?,
        last_seen_at: r.try_get(8).map_err(db)?,
        expires_at: r.try_get(9).map_err(db)?,
        user_agent: r.try_get(10).map_err(db)?,
    })
}

/// Makes the account row when it does not exist yet.
pub(super) async fn ensure_account<C: GenericClient>(
    c: &C,
    person_id: i64,
    now: i64,
) -> Result<()> {
    execute(
        c,
        "INSERT INTO accounts (person_id, created_at, updated_at) VALUES ($1, $2, $2) ON CONFLICT (person_id) DO NOTHING",
        &[&person_id, &now],
    )
    .await
    .map(drop)
}

/// Seals the events onto the locked head and stores them.
pub(super) async fn audit<C: GenericClient>(
    c: &C,
    at: OffsetDateTime,
    events: Vec<NewEvent>,
) -> Result<()> {
    let (sealed, _) = chain::seal(read_head(c, true).await?, at, events);
    write_audit(c, &sealed).await
}

pub(super) async fn insert_session<C: GenericClient>(
    c: &C,
    person_id: i64,
    s: &NewSession,
) -> Result<()> {
    let amr = s.amr.join(" ");
    execute(
        c,
        "INSERT INTO sessions (id_hash, person_id, csrf, acr, amr, created_at, last_seen_at, expires_at, user_agent)
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8)",
        &[
            &&s.id_hash[..],
            &person_id,
            &s.csrf,
            &s.acr,
            &amr,
            &s.created_at,
            &s.expires_at,
            &s.user_agent,
        ],
    )
    .await?;
    // A session is a use of the account: the lifecycle closes accounts by it.
    execute(
        c,
        "UPDATE accounts SET last_login_at = $2 WHERE person_id = $1",
        &[&person_id, &s.created_at],
    )
    .await
    .map(drop)
}

impl PgStore {
    pub(super) async fn account_where(
        &self,
        cond: &str,
        params: &[super::Param<'_>],
    ) -> Result<Option<AccountRecord>> {
        let c = self.conn().await?;
        let rows = query(&c, &format!("{ACCOUNT} WHERE {cond}"), params).await?;
        rows.first().map(account_row).transpose()
    }
}

#[async_trait]
impl IdentityStore for PgStore {
    async fn account(&self, user_id: &str) -> Result<Option<AccountRecord>> {
        self.account_where("p.user_id = $1", &[&user_id]).await
    }

    async fn account_by_activation(
        &self,
        code_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<AccountRecord>> {
        self.account_where(
            "a.activation_hash = $1 AND a.activation_expires_at > $2",
            &[&&code_hash[..], &now],
        )
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
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let now = at.unix_timestamp();
        ensure_account(&tx, person_id, now).await?;
        execute(
            &tx,
            "UPDATE accounts SET activation_hash = $2, activation_expires_at = $3, updated_at = $4 WHERE person_id = $1",
            &[&person_id, &&code_hash[..], &expires_at, &now],
        )
        .await?;
        audit(&tx, at, vec![event]).await?;
        tx.commit().await.map_err(db)
    }

    async fn set_password(
        &self,
        person_id: i64,
        phc: &str,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let now = at.unix_timestamp();
        ensure_account(&tx, person_id, now).await?;
        execute(
            &tx,
            "UPDATE accounts SET password_hash = $2, password_set_at = $3, activation_hash = NULL, activation_expires_at = NULL,
             failed_logins = 0, lockouts = 0, locked_until = NULL, closed_at = NULL, updated_at = $3 WHERE person_id = $1",
            &[&person_id, &phc, &now],
        )
        .await?;
        execute(
            &tx,
            "DELETE FROM sessions WHERE person_id = $1",
            &[&person_id],
        )
        .await?;
        audit(&tx, at, vec![event]).await?;
        tx.commit().await.map_err(db)
    }

    async fn record_failure(
        &self,
        person_id: i64,
        state: FailureState,
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> Result<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let now = at.unix_timestamp();
        ensure_account(&tx, person_id, now).await?;
        execute(
            &tx,
            "UPDATE accounts SET failed_logins = $2, lockouts = $3, locked_until = $4, updated_at = $5 WHERE person_id = $1",
            &[&person_id, &state.failed_logins, &state.lockouts, &state.locked_until, &now],
        )
        .await?;
        audit(&tx, at, events).await?;
        tx.commit().await.map_err(db)
    }

    async fn unlock(&self, person_id: i64, at: OffsetDateTime, event: NewEvent) -> Result<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let now = at.unix_timestamp();
        ensure_account(&tx, person_id, now).await?;
        execute(
            &tx,
            "UPDATE accounts SET failed_logins = 0, lockouts = 0, locked_until = NULL, updated_at = $2 WHERE person_id = $1",
            &[&person_id, &now],
        )
        .await?;
        audit(&tx, at, vec![event]).await?;
        tx.commit().await.map_err(db)
    }

    async fn record_login(
        &self,
        person_id: i64,
        rehash: Option<&str>,
        session: &NewSession,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let now = at.unix_timestamp();
        ensure_account(&tx, person_id, now).await?;
        execute(
            &tx,
            "UPDATE accounts SET failed_logins = 0, lockouts = 0, locked_until = NULL,
             password_hash = coalesce($2, password_hash), updated_at = $3 WHERE person_id = $1",
            &[&person_id, &rehash, &now],
        )
        .await?;
        insert_session(&tx, person_id, session).await?;
        audit(&tx, at, vec![event]).await?;
        tx.commit().await.map_err(db)
    }

    async fn session(&self, id_hash: &[u8; 32]) -> Result<Option<SessionRecord>> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            &format!("{SESSION} WHERE s.id_hash = $1"),
            &[&&id_hash[..]],
        )
        .await?;
        rows.first().map(session_row).transpose()
    }

    async fn touch_session(&self, id_hash: &[u8; 32], now: i64) -> Result<()> {
        let c = self.conn().await?;
        execute(
            &c,
            "UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1",
            &[&&id_hash[..], &now],
        )
        .await
        .map(drop)
    }

    async fn end_session(
        &self,
        id_hash: &[u8; 32],
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        execute(
            &tx,
            "DELETE FROM sessions WHERE id_hash = $1",
            &[&&id_hash[..]],
        )
        .await?;
        audit(&tx, at, vec![event]).await?;
        tx.commit().await.map_err(db)
    }

    async fn sessions_of(&self, person_id: i64) -> Result<Vec<SessionRecord>> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            &format!("{SESSION} WHERE s.person_id = $1 ORDER BY s.created_at DESC"),
            &[&person_id],
        )
        .await?;
        rows.iter().map(session_row).collect()
    }

    async fn children_of(&self, person_id: i64) -> Result<Vec<Child>> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            "SELECT p.given_name, p.family_name, i.name, c.custody
             FROM contacts c JOIN persons p ON p.id = c.pupil_id JOIN institutions i ON i.id = c.institution_id
             WHERE c.contact_id = $1 AND c.ended_on IS NULL
             ORDER BY p.given_name COLLATE \"C\", p.family_name COLLATE \"C\", i.name COLLATE \"C\"",
            &[&person_id],
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Child {
                    given_name: r.try_get(0).map_err(db)?,
                    family_name: r.try_get(1).map_err(db)?,
                    institution: r.try_get(2).map_err(db)?,
                    custody: r.try_get(3).map_err(db)?,
                })
            })
            .collect()
    }

    async fn count_attempts(
        &self,
        buckets: &[String],
        minute: i64,
        window: i64,
    ) -> Result<Vec<i64>> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let oldest = minute - window;
        // Rows another attempt is deleting right now are left to it, so
        // concurrent clean-ups never wait on each other (nor deadlock); they
        // lie outside the window either way.
        execute(
            &tx,
            "DELETE FROM login_attempts WHERE (bucket, minute) IN (
                SELECT bucket, minute FROM login_attempts WHERE minute <= $1 FOR UPDATE SKIP LOCKED)",
            &[&oldest],
        )
        .await?;
        let mut counts = Vec::with_capacity(buckets.len());
        for bucket in buckets {
            execute(
                &tx,
                "INSERT INTO login_attempts (bucket, minute, count) VALUES ($1, $2, 1)
                 ON CONFLICT (bucket, minute) DO UPDATE SET count = login_attempts.count + 1",
                &[bucket, &minute],
            )
            .await?;
            let rows = query(
                &tx,
                "SELECT coalesce(sum(count), 0)::bigint FROM login_attempts WHERE bucket = $1 AND minute > $2",
                &[bucket, &oldest],
            )
            .await?;
            counts.push(
                rows.first()
                    .map(|r| r.try_get(0).map_err(db))
                    .transpose()?
                    .unwrap_or(0),
            );
        }
        tx.commit().await.map_err(db)?;
        Ok(counts)
    }
}
