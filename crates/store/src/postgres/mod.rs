//! The PostgreSQL store, for several replicas sharing one database. A
//! deadpool connection pool; an import transaction (one institution, or
//! several behind savepoints) holds a connection of its own, with one round
//! trip per read, binary `COPY` for inserts and `unnest`-batched updates, so
//! a national import costs a few dozen round trips per institution whatever
//! its size. An import transaction dropped without `commit` is rolled back
//! before its connection is pooled again, or the connection is closed.
//!
//! Import transactions are serialised across all replicas by a
//! transaction-level advisory lock (as SQLite's single writer does): two
//! institutions often share persons (a consultant serving two schools), and
//! concurrent inserts of the same person would otherwise fail or deadlock.
//! Readers never wait for it.
//!
//! The bulk tables (roles, memberships, contacts) have no per-row foreign
//! key checks (see the migration); [`check_refs`] refuses the placeholder
//! ids an unresolved reference would carry, and triggers refuse deleting a
//! row that is still referenced.

use crate::codec::{address_from, address_json, phones_from, phones_json};
use crate::{redact_url, POSTGRES_MIGRATIONS};
use async_trait::async_trait;
use bytes::Bytes;
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use std::time::Duration;
use tilgang_core::audit::checkpoint::{AuditKey, Checkpoint};
use tilgang_core::audit::search::{Query, Scope};
use tilgang_core::audit::{chain, Event, Head, NewEvent};
use tilgang_core::roster::*;
use tilgang_core::store::*;
use tilgang_core::{Error, Result};
use time::{Date, OffsetDateTime};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{IsolationLevel, NoTls, Row};

mod audit;
mod changes;
mod export;
mod factors;
mod identity;
mod lifecycle;
mod mydata;
mod oidc;
mod portal;
mod reports;
mod sharing;
mod snapshot;
mod staff;

pub use snapshot::anonymize;

/// `pg_advisory_xact_lock` key serialising migrations ("tilgang" + 1).
const MIGRATE_LOCK: i64 = 0x7469_6c67_616e_6701;
/// `pg_advisory_xact_lock` key serialising import transactions.
const IMPORT_LOCK: i64 = 0x7469_6c67_616e_6702;
const POOL_SIZE: usize = 16;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an abandoned import transaction may take to roll back before
/// its connection is closed instead.
const ROLLBACK_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) type Param<'a> = &'a (dyn ToSql + Sync);

/// A database error as a store error: severity, SQLSTATE, message and
/// constraint, never the DETAIL line (which can quote key values).
/// A person from columns 1-15 of `SELECT p.id, p.user_id, p.given_name,
/// p.family_name, p.alias_given_name, p.alias_family_name, p.cpr_enc,
/// p.birth_date, p.gender, p.email, p.phones, p.address, p.protected,
/// p.source_system, p.local_person_id, p.photo_id` (the CPR stays sealed
/// in column 6).
fn person_row(r: &Row) -> Result<Person> {
    Ok(Person {
        user_id: r.try_get(1).map_err(db)?,
        given_name: r.try_get(2).map_err(db)?,
        family_name: r.try_get(3).map_err(db)?,
        alias_given_name: r.try_get(4).map_err(db)?,
        alias_family_name: r.try_get(5).map_err(db)?,
        cpr: None,
        birth_date: r.try_get(7).map_err(db)?,
        gender: r
            .try_get::<_, Option<&str>>(8)
            .map_err(db)?
            .and_then(Gender::parse),
        email: r.try_get(9).map_err(db)?,
        phones: phones_from(r.try_get(10).map_err(db)?),
        address: address_from(r.try_get(11).map_err(db)?),
        protected: r.try_get(12).map_err(db)?,
        source_system: r.try_get(13).map_err(db)?,
        local_person_id: r.try_get(14).map_err(db)?,
        photo_id: r.try_get(15).map_err(db)?,
    })
}

fn db(e: tokio_postgres::Error) -> Error {
    Error::Store(describe(&e))
}

fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(d) = e.as_db_error() {
        let mut msg = format!("{} {}: {}", d.severity(), d.code().code(), d.message());
        if let Some(c) = d.constraint() {
            msg.push_str(&format!(" (constraint {c})"));
        }
        return msg;
    }
    // tokio-postgres keeps the cause out of its own message.
    match std::error::Error::source(e) {
        Some(src) => format!("{e}: {src}"),
        None => e.to_string(),
    }
}

fn pool_err(e: PoolError) -> Error {
    match e {
        PoolError::Backend(e) => db(e),
        e => Error::Store(format!("PostgreSQL connection pool: {e}")),
    }
}

fn existing(id: i64, digest: i64, ended: bool) -> Existing {
    Existing { id, digest, ended }
}

fn table_name(t: EndTable) -> &'static str {
    match t {
        EndTable::Groups => "roster_groups",
        EndTable::Roles => "roles",
        EndTable::Memberships => "memberships",
        EndTable::Contacts => "contacts",
    }
}

/// The tables imports fill have no per-row foreign-key checks (see the
/// migration); ids come from the same transaction, and an unresolved
/// reference reaches here as a non-positive placeholder. Refused as SQLite's
/// foreign keys refuse it.
fn check_refs(table: &str, mut ids: impl Iterator<Item = i64>) -> Result<()> {
    if ids.any(|id| id <= 0) {
        return Err(Error::Store(format!(
            "{table}: a row refers to a record that is not stored (foreign key)"
        )));
    }
    Ok(())
}

fn hash32(v: Vec<u8>, default: u8) -> [u8; 32] {
    v.try_into().unwrap_or([default; 32])
}

/// Prepares (cached per connection) and runs a query.
async fn query<C: GenericClient>(c: &C, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(db)?;
    c.query(&stmt, params).await.map_err(db)
}

async fn execute<C: GenericClient>(c: &C, sql: &str, params: &[Param<'_>]) -> Result<u64> {
    let stmt = c.prepare_cached(sql).await.map_err(db)?;
    c.execute(&stmt, params).await.map_err(db)
}

async fn read_head<C: GenericClient>(c: &C, lock: bool) -> Result<Head> {
    let sql = if lock {
        "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE"
    } else {
        "SELECT seq, hash FROM audit_head WHERE id = 1"
    };
    let rows = query(c, sql, &[]).await?;
    let row = rows
        .first()
        .ok_or_else(|| Error::Store("the audit_head row is missing".into()))?;
    Ok(Head {
        seq: row.try_get(0).map_err(db)?,
        hash: hash32(row.try_get(1).map_err(db)?, 0),
    })
}

/// A retention chunk's `SELECT count(*), max(seq)` of the rows it
/// handled: how many, and how far the range is now done (to `through`
/// when fewer than `limit` were left).
fn chunk_done(rows: &[Row], limit: i64, through: i64) -> Result<(i64, i64)> {
    let row = rows
        .first()
        .ok_or_else(|| Error::Store("a retention chunk returned no count".into()))?;
    let n: i64 = row.try_get(0).map_err(db)?;
    let last: Option<i64> = row.try_get(1).map_err(db)?;
    Ok(match last {
        Some(l) if n >= limit => (n, l),
        _ => (n, through),
    })
}

/// Stores sealed events and moves the head, in one round trip.
async fn write_audit<C: GenericClient>(c: &C, events: &[Event]) -> Result<()> {
    let Some(last) = events.last() else {
        return Ok(());
    };
    let seq: Vec<i64> = events.iter().map(|e| e.seq).collect();
    let at: Vec<i64> = events.iter().map(|e| e.at_us).collect();
    let actor: Vec<&str> = events.iter().map(|e| e.actor.as_str()).collect();
    let action: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    let inst: Vec<Option<&str>> = events.iter().map(|e| e.institution.as_deref()).collect();
    let subjects: Vec<&str> = events.iter().map(|e| e.subjects.as_str()).collect();
    let details: Vec<&str> = events.iter().map(|e| e.details.as_str()).collect();
    let prev: Vec<&[u8]> = events.iter().map(|e| &e.prev_hash[..]).collect();
    let hash: Vec<&[u8]> = events.iter().map(|e| &e.hash[..]).collect();
    let content: Vec<Option<&[u8]>> = events
        .iter()
        .map(|e| e.content_hash.as_ref().map(|c| &c[..]))
        .collect();
    execute(
        c,
        "WITH ins AS (
            INSERT INTO audit_events (seq, at_us, actor, action, institution, subjects, details, prev_hash, hash,
                                      content_hash)
            SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                                 $8::bytea[], $9::bytea[], $12::bytea[]))
         UPDATE audit_head SET seq = $10, hash = $11 WHERE id = 1",
        &[&seq, &at, &actor, &action, &inst, &subjects, &details, &prev, &hash, &last.seq, &&last.hash[..], &content],
    )
    .await?;
    Ok(())
}

pub struct PgStore {
    pool: Pool,
    /// Small audited writes waiting for a group transaction, and the lock
    /// one group transaction at a time holds in this process
    /// (`crate::group`; replicas meet at the audit head's row lock).
    group: crate::group::GroupCommit,
    group_writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl PgStore {
    /// Connects to the database a `postgres://` URL names and checks that a
    /// connection works. Does not migrate.
    pub async fn connect(url: &str) -> Result<Self> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| {
            Error::Config(format!(
                "database_url {}: {}",
                redact_url(url),
                describe(&e)
            ))
        })?;
        Self::from_config(config, &redact_url(url)).await
    }

    /// Like [`PgStore::connect`], from a parsed configuration; `label`
    /// names the database in messages (never with a password).
    pub async fn from_config(mut config: tokio_postgres::Config, label: &str) -> Result<Self> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("tilgang");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| Error::Config(format!("PostgreSQL connection pool: {e}")))?;
        let store = PgStore {
            pool,
            group: Default::default(),
            group_writer: Default::default(),
        };
        store.ping().await.map_err(|e| {
            Error::Store(format!("cannot use the PostgreSQL database {label}: {e}"))
        })?;
        Ok(store)
    }

    async fn conn(&self) -> Result<Object> {
        self.pool.get().await.map_err(pool_err)
    }
}

/// Holds a connection that may be inside a transaction. Dropped while still
/// holding it, it detaches the connection from the pool and closes it, so
/// the server rolls back and nobody else gets it mid-transaction.
struct Detach(Option<Object>);

impl Drop for Detach {
    fn drop(&mut self) {
        if let Some(obj) = self.0.take() {
            drop(Object::take(obj));
        }
    }
}

/// Disposes of a connection whose transaction was neither committed nor
/// rolled back. On a Tokio runtime, a task sends `ROLLBACK` and returns the
/// connection to the pool only once that succeeded (a dry run does not cost
/// a reconnect); when it fails, times out, or there is no runtime, the
/// connection is detached from the pool and closed, which makes the server
/// roll back.
fn abandon(obj: Object) {
    let guard = Detach(Some(obj));
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let mut guard = guard;
            let rolled_back = match &guard.0 {
                Some(c) => matches!(
                    tokio::time::timeout(ROLLBACK_TIMEOUT, c.batch_execute("ROLLBACK")).await,
                    Ok(Ok(()))
                ),
                None => false,
            };
            if rolled_back {
                // Idle again: back to the pool.
                drop(guard.0.take());
            }
        });
    }
}

/// One institution's import transaction on a connection of its own.
pub struct PgTx {
    conn: Option<Object>,
}

impl Drop for PgTx {
    fn drop(&mut self) {
        if let Some(obj) = self.conn.take() {
            abandon(obj);
        }
    }
}

impl PgTx {
    fn c(&self) -> Result<&Object> {
        self.conn
            .as_ref()
            .ok_or_else(|| Error::Store("the import transaction is closed".into()))
    }

    async fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        query(self.c()?, sql, params).await
    }

    async fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        execute(self.c()?, sql, params).await
    }

    /// `n` fresh ids from a table's identity sequence, in one round trip.
    async fn next_ids(&self, table: &'static str, n: usize) -> Result<Vec<i64>> {
        let sql = format!("SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, $1::bigint)");
        let n = i64::try_from(n).map_err(Error::store)?;
        self.query(&sql, &[&n])
            .await?
            .iter()
            .map(|r| r.try_get(0).map_err(db))
            .collect()
    }

    /// Starts a binary `COPY … FROM STDIN`.
    async fn copy_in(&self, sql: &str, types: &[Type]) -> Result<BinaryCopyInWriter> {
        let c = self.c()?;
        let stmt = c.prepare_cached(sql).await.map_err(db)?;
        let sink = c.copy_in::<_, Bytes>(&stmt).await.map_err(db)?;
        Ok(BinaryCopyInWriter::new(sink, types))
    }

    /// Rows of `(key columns…, id, digest, ended)`, keyed by `key`.
    async fn keyed<K>(
        &self,
        sql: &str,
        inst: i64,
        key: impl Fn(&Row) -> Result<Option<K>>,
    ) -> Result<Vec<(K, Existing)>> {
        let rows = self.query(sql, &[&inst]).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let e = existing(
                r.try_get("id").map_err(db)?,
                r.try_get("digest").map_err(db)?,
                r.try_get("ended").map_err(db)?,
            );
            if let Some(k) = key(r)? {
                out.push((k, e));
            }
        }
        Ok(out)
    }
}

const PERSON_COPY: &str = "COPY persons (id, user_id, given_name, family_name, alias_given_name, alias_family_name, cpr_enc,
     cpr_hash, birth_date, gender, email, phones, address, protected, source_system, local_person_id, photo_id, digest,
     created_at, updated_at) FROM STDIN (FORMAT binary)";
const PERSON_TYPES: &[Type] = &[
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::BYTEA,
    Type::INT8,
    Type::DATE,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::BOOL,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
];
const GROUP_COPY: &str = "COPY roster_groups (id, institution_id, ext_id, name, kind, level, line, from_date, to_date, digest,
     created_at, updated_at) FROM STDIN (FORMAT binary)";
const GROUP_TYPES: &[Type] = &[
    Type::INT8,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::DATE,
    Type::DATE,
    Type::INT8,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
];
const ROLE_COPY: &str = "COPY roles (institution_id, person_id, role, actor, grade_level, student_number, main_group, initials,
     occupation, digest, created_at, updated_at) FROM STDIN (FORMAT binary)";
const ROLE_TYPES: &[Type] = &[
    Type::INT8,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
];
const MEMBERSHIP_COPY: &str =
    "COPY memberships (group_id, person_id, created_at) FROM STDIN (FORMAT binary)";
const MEMBERSHIP_TYPES: &[Type] = &[Type::INT8, Type::INT8, Type::TIMESTAMPTZ];
const CONTACT_COPY: &str =
    "COPY contacts (institution_id, pupil_id, contact_id, relation, custody, access_level, digest,
     created_at, updated_at) FROM STDIN (FORMAT binary)";
const CONTACT_TYPES: &[Type] = &[
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::TEXT,
    Type::BOOL,
    Type::INT2,
    Type::INT8,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
];

#[async_trait]
impl ImportTx for PgTx {
    async fn institution(&mut self, number: &str) -> Result<Option<Existing>> {
        let rows = self
            .query(
                "SELECT id, digest FROM institutions WHERE number = $1",
                &[&number],
            )
            .await?;
        rows.first()
            .map(|r| {
                Ok(existing(
                    r.try_get(0).map_err(db)?,
                    r.try_get(1).map_err(db)?,
                    false,
                ))
            })
            .transpose()
    }

    async fn insert_institution(
        &mut self,
        i: &InstitutionRow<'_>,
        now: OffsetDateTime,
    ) -> Result<i64> {
        let rows = self
            .query(
                "INSERT INTO institutions (number, name, kind, municipality_code, source_system, school_year, digest, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
                &[&i.number, &i.name, &i.kind.as_str(), &i.municipality_code, &i.source_system, &i.school_year, &i.digest, &now],
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| Error::Store("INSERT … RETURNING returned no row".into()))?;
        row.try_get(0).map_err(db)
    }

    async fn update_institution(
        &mut self,
        id: i64,
        i: &InstitutionRow<'_>,
        now: OffsetDateTime,
    ) -> Result<()> {
        self.execute(
            "UPDATE institutions SET name = $2, kind = $3, municipality_code = $4, source_system = $5, school_year = $6,
             digest = $7, updated_at = $8 WHERE id = $1",
            &[&id, &i.name, &i.kind.as_str(), &i.municipality_code, &i.source_system, &i.school_year, &i.digest, &now],
        )
        .await?;
        Ok(())
    }

    async fn import_digest(&mut self, institution: i64) -> Result<Option<i64>> {
        let rows = self
            .query(
                "SELECT import_digest FROM institutions WHERE id = $1",
                &[&institution],
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| Error::Store(format!("institution {institution} is not stored")))?;
        row.try_get(0).map_err(db)
    }

    async fn set_import_digest(&mut self, institution: i64, digest: Option<i64>) -> Result<()> {
        self.execute(
            "UPDATE institutions SET import_digest = $2 WHERE id = $1",
            &[&institution, &digest],
        )
        .await?;
        Ok(())
    }

    async fn persons(&mut self, user_ids: &[&str]) -> Result<Vec<(String, Existing)>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .query(
                "SELECT user_id, id, digest, inactive_since IS NOT NULL FROM persons WHERE user_id = ANY($1::text[])",
                &[&user_ids],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(db)?,
                    existing(
                        r.try_get(1).map_err(db)?,
                        r.try_get(2).map_err(db)?,
                        r.try_get(3).map_err(db)?,
                    ),
                ))
            })
            .collect()
    }

    async fn insert_persons(
        &mut self,
        rows: &[PersonRow<'_>],
        now: OffsetDateTime,
    ) -> Result<Vec<i64>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids = self.next_ids("persons", rows.len()).await?;
        let writer = self.copy_in(PERSON_COPY, PERSON_TYPES).await?;
        futures_util::pin_mut!(writer);
        for (id, r) in ids.iter().zip(rows) {
            let p = r.person;
            let gender = p.gender.map(|g| g.as_str());
            let phones = phones_json(&p.phones);
            let address = address_json(&p.address);
            writer
                .as_mut()
                .write(&[
                    id,
                    &p.user_id,
                    &p.given_name,
                    &p.family_name,
                    &p.alias_given_name,
                    &p.alias_family_name,
                    &r.cpr_enc,
                    &r.cpr_hash,
                    &p.birth_date,
                    &gender,
                    &p.email,
                    &phones,
                    &address,
                    &p.protected,
                    &p.source_system,
                    &p.local_person_id,
                    &p.photo_id,
                    &r.digest,
                    &now,
                    &now,
                ])
                .await
                .map_err(db)?;
        }
        writer.finish().await.map_err(db)?;
        Ok(ids)
    }

    async fn update_persons(
        &mut self,
        rows: &[(i64, PersonRow<'_>)],
        now: OffsetDateTime,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let id: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
        let given: Vec<&str> = rows
            .iter()
            .map(|(_, r)| r.person.given_name.as_str())
            .collect();
        let family: Vec<&str> = rows
            .iter()
            .map(|(_, r)| r.person.family_name.as_str())
            .collect();
        let alias_given: Vec<Option<&str>> = rows
            .iter()
            .map(|(_, r)| r.person.alias_given_name.as_deref())
            .collect();
        let alias_family: Vec<Option<&str>> = rows
            .iter()
            .map(|(_, r)| r.person.alias_family_name.as_deref())
            .collect();
        let cpr_enc: Vec<Option<&[u8]>> = rows.iter().map(|(_, r)| r.cpr_enc.as_deref()).collect();
        let cpr_hash: Vec<Option<i64>> = rows.iter().map(|(_, r)| r.cpr_hash).collect();
        let birth: Vec<Option<Date>> = rows.iter().map(|(_, r)| r.person.birth_date).collect();
        let gender: Vec<Option<&str>> = rows
            .iter()
            .map(|(_, r)| r.person.gender.map(|g| g.as_str()))
            .collect();
        let email: Vec<Option<&str>> = rows
            .iter()
            .map(|(_, r)| r.person.email.as_deref())
            .collect();
        let phones: Vec<Option<String>> = rows
            .iter()
            .map(|(_, r)| phones_json(&r.person.phones))
            .collect();
        let address: Vec<Option<String>> = rows
            .iter()
            .map(|(_, r)| address_json(&r.person.address))
            .collect();
        let protected: Vec<bool> = rows.iter().map(|(_, r)| r.person.protected).collect();
        let source: Vec<Option<&str>> = rows
            .iter()
            .map(|(_, r)| r.person.source_system.as_deref())
            .collect();
        let local: Vec<Option<&str>> = rows
            .iter()
            .map(|(_, r)| r.person.local_person_id.as_deref())
            .collect();
        let photo: Vec<Option<&str>> = rows
            .iter()
            .map(|(_, r)| r.person.photo_id.as_deref())
            .collect();
        let digest: Vec<i64> = rows.iter().map(|(_, r)| r.digest).collect();
        self.execute(
            "UPDATE persons SET given_name = u.given_name, family_name = u.family_name, alias_given_name = u.alias_given_name,
                 alias_family_name = u.alias_family_name, cpr_enc = u.cpr_enc, cpr_hash = u.cpr_hash, birth_date = u.birth_date,
                 gender = u.gender, email = u.email, phones = u.phones, address = u.address, protected = u.protected,
                 source_system = u.source_system, local_person_id = u.local_person_id, photo_id = u.photo_id, digest = u.digest,
                 updated_at = $18
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[], $7::bigint[], $8::date[],
                         $9::text[], $10::text[], $11::text[], $12::text[], $13::boolean[], $14::text[], $15::text[], $16::text[],
                         $17::bigint[])
                 AS u(id, given_name, family_name, alias_given_name, alias_family_name, cpr_enc, cpr_hash, birth_date, gender,
                      email, phones, address, protected, source_system, local_person_id, photo_id, digest)
             WHERE persons.id = u.id",
            &[
                &id,
                &given,
                &family,
                &alias_given,
                &alias_family,
                &cpr_enc,
                &cpr_hash,
                &birth,
                &gender,
                &email,
                &phones,
                &address,
                &protected,
                &source,
                &local,
                &photo,
                &digest,
                &now,
            ],
        )
        .await?;
        Ok(())
    }

    async fn set_inactive(&mut self, ids: &[i64], since: Option<Date>) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.execute(
            "UPDATE persons SET inactive_since = $2 WHERE id = ANY($1::bigint[])",
            &[&ids, &since],
        )
        .await?;
        Ok(())
    }

    async fn unlinked_persons(&mut self, ids: &[i64]) -> Result<Vec<i64>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .query(
                "SELECT u.id FROM unnest($1::bigint[]) WITH ORDINALITY AS u(id, n)
                 WHERE NOT EXISTS (SELECT 1 FROM roles WHERE person_id = u.id AND ended_on IS NULL)
                   AND NOT EXISTS (SELECT 1 FROM contacts WHERE pupil_id = u.id AND ended_on IS NULL)
                   AND NOT EXISTS (SELECT 1 FROM contacts WHERE contact_id = u.id AND ended_on IS NULL)
                 ORDER BY u.n",
                &[&ids],
            )
            .await?;
        rows.iter().map(|r| r.try_get(0).map_err(db)).collect()
    }

    async fn groups(&mut self, inst: i64) -> Result<Vec<(String, Existing)>> {
        self.keyed(
            "SELECT ext_id, id, digest, ended_on IS NOT NULL AS ended FROM roster_groups WHERE institution_id = $1",
            inst,
            |r| r.try_get(0).map(Some).map_err(db),
        )
        .await
    }

    async fn insert_groups(
        &mut self,
        inst: i64,
        rows: &[(&Group, i64)],
        now: OffsetDateTime,
    ) -> Result<Vec<i64>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids = self.next_ids("roster_groups", rows.len()).await?;
        let writer = self.copy_in(GROUP_COPY, GROUP_TYPES).await?;
        futures_util::pin_mut!(writer);
        for (id, (g, digest)) in ids.iter().zip(rows) {
            let kind = g.kind.as_str();
            writer
                .as_mut()
                .write(&[
                    id, &inst, &g.id, &g.name, &kind, &g.level, &g.line, &g.from, &g.to, digest,
                    &now, &now,
                ])
                .await
                .map_err(db)?;
        }
        writer.finish().await.map_err(db)?;
        Ok(ids)
    }

    async fn update_groups(
        &mut self,
        rows: &[(i64, &Group, i64)],
        now: OffsetDateTime,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let id: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let name: Vec<&str> = rows.iter().map(|r| r.1.name.as_str()).collect();
        let kind: Vec<&str> = rows.iter().map(|r| r.1.kind.as_str()).collect();
        let level: Vec<Option<&str>> = rows.iter().map(|r| r.1.level.as_deref()).collect();
        let line: Vec<Option<&str>> = rows.iter().map(|r| r.1.line.as_deref()).collect();
        let from: Vec<Option<Date>> = rows.iter().map(|r| r.1.from).collect();
        let to: Vec<Option<Date>> = rows.iter().map(|r| r.1.to).collect();
        let digest: Vec<i64> = rows.iter().map(|r| r.2).collect();
        self.execute(
            "UPDATE roster_groups SET name = u.name, kind = u.kind, level = u.level, line = u.line, from_date = u.from_date,
                 to_date = u.to_date, digest = u.digest, ended_on = NULL, updated_at = $9
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::date[], $7::date[], $8::bigint[])
                 AS u(id, name, kind, level, line, from_date, to_date, digest)
             WHERE roster_groups.id = u.id",
            &[&id, &name, &kind, &level, &line, &from, &to, &digest, &now],
        )
        .await?;
        Ok(())
    }

    async fn roles(&mut self, inst: i64) -> Result<Vec<((i64, RoleKind), Existing)>> {
        self.keyed(
            "SELECT person_id, role, id, digest, ended_on IS NOT NULL AS ended FROM roles WHERE institution_id = $1",
            inst,
            |r| {
                let role: &str = r.try_get(1).map_err(db)?;
                match RoleKind::parse(role) {
                    Some(k) => Ok(Some((r.try_get(0).map_err(db)?, k))),
                    None => Ok(None),
                }
            },
        )
        .await
    }

    async fn insert_roles(
        &mut self,
        inst: i64,
        rows: &[(i64, &Role, i64)],
        now: OffsetDateTime,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        check_refs("roles", rows.iter().map(|r| r.0).chain([inst]))?;
        let writer = self.copy_in(ROLE_COPY, ROLE_TYPES).await?;
        futures_util::pin_mut!(writer);
        for (pid, r, digest) in rows {
            let role = r.role.as_str();
            let actor = r.role.actor().as_str();
            writer
                .as_mut()
                .write(&[
                    &inst,
                    pid,
                    &role,
                    &actor,
                    &r.grade_level,
                    &r.student_number,
                    &r.main_group,
                    &r.initials,
                    &r.occupation,
                    digest,
                    &now,
                    &now,
                ])
                .await
                .map_err(db)?;
        }
        writer.finish().await.map_err(db)?;
        Ok(())
    }

    async fn update_roles(
        &mut self,
        rows: &[(i64, &Role, i64)],
        now: OffsetDateTime,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let id: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let grade: Vec<Option<&str>> = rows.iter().map(|r| r.1.grade_level.as_deref()).collect();
        let number: Vec<Option<&str>> =
            rows.iter().map(|r| r.1.student_number.as_deref()).collect();
        let main: Vec<Option<&str>> = rows.iter().map(|r| r.1.main_group.as_deref()).collect();
        let initials: Vec<Option<&str>> = rows.iter().map(|r| r.1.initials.as_deref()).collect();
        let occupation: Vec<Option<&str>> =
            rows.iter().map(|r| r.1.occupation.as_deref()).collect();
        let digest: Vec<i64> = rows.iter().map(|r| r.2).collect();
        self.execute(
            "UPDATE roles SET grade_level = u.grade_level, student_number = u.student_number, main_group = u.main_group,
                 initials = u.initials, occupation = u.occupation, digest = u.digest, ended_on = NULL, updated_at = $8
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
                 AS u(id, grade_level, student_number, main_group, initials, occupation, digest)
             WHERE roles.id = u.id",
            &[&id, &grade, &number, &main, &initials, &occupation, &digest, &now],
        )
        .await?;
        Ok(())
    }

    async fn memberships(&mut self, inst: i64) -> Result<Vec<((i64, i64), Existing)>> {
        self.keyed(
            "SELECT m.group_id, m.person_id, m.id AS id, 0::bigint AS digest, m.ended_on IS NOT NULL AS ended
             FROM memberships m JOIN roster_groups g ON g.id = m.group_id WHERE g.institution_id = $1",
            inst,
            |r| Ok(Some((r.try_get(0).map_err(db)?, r.try_get(1).map_err(db)?))),
        )
        .await
    }

    async fn insert_memberships(&mut self, rows: &[(i64, i64)], now: OffsetDateTime) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        check_refs("memberships", rows.iter().flat_map(|r| [r.0, r.1]))?;
        let writer = self.copy_in(MEMBERSHIP_COPY, MEMBERSHIP_TYPES).await?;
        futures_util::pin_mut!(writer);
        for (g, p) in rows {
            writer.as_mut().write(&[g, p, &now]).await.map_err(db)?;
        }
        writer.finish().await.map_err(db)?;
        Ok(())
    }

    async fn contacts(&mut self, inst: i64) -> Result<Vec<((i64, i64), Existing)>> {
        self.keyed(
            "SELECT pupil_id, contact_id, id, digest, ended_on IS NOT NULL AS ended FROM contacts WHERE institution_id = $1",
            inst,
            |r| Ok(Some((r.try_get(0).map_err(db)?, r.try_get(1).map_err(db)?))),
        )
        .await
    }

    async fn insert_contacts(
        &mut self,
        inst: i64,
        rows: &[ContactRow],
        now: OffsetDateTime,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        check_refs(
            "contacts",
            rows.iter().flat_map(|c| [c.pupil, c.contact]).chain([inst]),
        )?;
        let writer = self.copy_in(CONTACT_COPY, CONTACT_TYPES).await?;
        futures_util::pin_mut!(writer);
        for c in rows {
            let relation = c.relation.as_str();
            let level = c.access_level.map(i16::from);
            writer
                .as_mut()
                .write(&[
                    &inst, &c.pupil, &c.contact, &relation, &c.custody, &level, &c.digest, &now,
                    &now,
                ])
                .await
                .map_err(db)?;
        }
        writer.finish().await.map_err(db)?;
        Ok(())
    }

    async fn update_contacts(
        &mut self,
        rows: &[(i64, ContactRow)],
        now: OffsetDateTime,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let id: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let relation: Vec<&str> = rows.iter().map(|r| r.1.relation.as_str()).collect();
        let custody: Vec<bool> = rows.iter().map(|r| r.1.custody).collect();
        let level: Vec<Option<i16>> = rows
            .iter()
            .map(|r| r.1.access_level.map(i16::from))
            .collect();
        let digest: Vec<i64> = rows.iter().map(|r| r.1.digest).collect();
        self.execute(
            "UPDATE contacts SET relation = u.relation, custody = u.custody, access_level = u.access_level, digest = u.digest,
                 ended_on = NULL, updated_at = $6
             FROM unnest($1::bigint[], $2::text[], $3::boolean[], $4::smallint[], $5::bigint[])
                 AS u(id, relation, custody, access_level, digest)
             WHERE contacts.id = u.id",
            &[&id, &relation, &custody, &level, &digest, &now],
        )
        .await?;
        Ok(())
    }

    async fn end_rows(&mut self, table: EndTable, ids: &[i64], on: Date) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE {} SET ended_on = $2 WHERE id = ANY($1::bigint[])",
            table_name(table)
        );
        self.execute(&sql, &[&ids, &on]).await?;
        Ok(())
    }

    async fn reopen_rows(&mut self, table: EndTable, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE {} SET ended_on = NULL WHERE id = ANY($1::bigint[])",
            table_name(table)
        );
        self.execute(&sql, &[&ids]).await?;
        Ok(())
    }

    async fn audit_head(&mut self) -> Result<Head> {
        read_head(self.c()?, true).await
    }

    async fn insert_audit(&mut self, events: &[Event]) -> Result<()> {
        write_audit(self.c()?, events).await
    }

    async fn insert_changes(
        &mut self,
        rows: &[tilgang_core::store::changes::NewChange],
        now: OffsetDateTime,
    ) -> Result<()> {
        changes::insert_changes(self.c()?, rows, now).await
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        let obj = self
            .conn
            .take()
            .ok_or_else(|| Error::Store("the import transaction is closed".into()))?;
        match obj.batch_execute("COMMIT").await {
            // Idle again: back to the pool.
            Ok(()) => Ok(()),
            Err(e) => {
                abandon(obj);
                Err(db(e))
            }
        }
    }
}

#[async_trait]
impl RosterStore for PgStore {
    async fn begin_import(&self) -> Result<Box<dyn ImportTx + '_>> {
        let obj = self.conn().await?;
        let tx = PgTx { conn: Some(obj) };
        // From here on, dropping `tx` rolls back.
        tx.c()?
            .batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock({IMPORT_LOCK})"
            ))
            .await
            .map_err(db)?;
        Ok(Box::new(tx))
    }

    async fn institutions(&self) -> Result<Vec<InstitutionInfo>> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            "SELECT i.number, i.name, i.kind, i.municipality_code, i.school_year,
             (SELECT count(DISTINCT person_id) FROM roles r WHERE r.institution_id = i.id AND r.ended_on IS NULL)
             FROM institutions i ORDER BY i.number COLLATE \"C\"",
            &[],
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok(InstitutionInfo {
                    number: r.try_get(0).map_err(db)?,
                    name: r.try_get(1).map_err(db)?,
                    kind: InstitutionKind::parse(r.try_get(2).map_err(db)?)
                        .unwrap_or(InstitutionKind::Other),
                    municipality_code: r.try_get(3).map_err(db)?,
                    school_year: r.try_get(4).map_err(db)?,
                    active_persons: r.try_get(5).map_err(db)?,
                })
            })
            .collect()
    }

    async fn institution_roster(
        &self,
        number: &str,
    ) -> Result<Option<(InstitutionRoster, Vec<StoredPerson>)>> {
        let mut c = self.conn().await?;
        // One snapshot for all the reads.
        let tx = c
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let out = read_roster(&tx, number).await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn counts(&self) -> Result<Counts> {
        let c = self.conn().await?;
        let rows = query(
            &c,
            "SELECT (SELECT count(*) FROM institutions), (SELECT count(*) FROM persons),
                    (SELECT count(*) FROM persons WHERE inactive_since IS NULL), (SELECT count(*) FROM roles),
                    (SELECT count(*) FROM roster_groups), (SELECT count(*) FROM memberships),
                    (SELECT count(*) FROM contacts), (SELECT seq FROM audit_head WHERE id = 1)",
            &[],
        )
        .await?;
        let r = rows
            .first()
            .ok_or_else(|| Error::Store("counts returned no row".into()))?;
        Ok(Counts {
            institutions: r.try_get(0).map_err(db)?,
            persons: r.try_get(1).map_err(db)?,
            active_persons: r.try_get(2).map_err(db)?,
            roles: r.try_get(3).map_err(db)?,
            groups: r.try_get(4).map_err(db)?,
            memberships: r.try_get(5).map_err(db)?,
            contacts: r.try_get(6).map_err(db)?,
            audit_events: r.try_get::<_, Option<i64>>(7).map_err(db)?.unwrap_or(0),
        })
    }
}

async fn read_roster<C: GenericClient>(
    c: &C,
    number: &str,
) -> Result<Option<(InstitutionRoster, Vec<StoredPerson>)>> {
    let rows = query(
        c,
        "SELECT id, number, name, kind, municipality_code, source_system, school_year FROM institutions WHERE number = $1",
        &[&number],
    )
    .await?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    let id: i64 = r.try_get(0).map_err(db)?;
    let institution = Institution {
        number: r.try_get(1).map_err(db)?,
        name: r.try_get(2).map_err(db)?,
        kind: InstitutionKind::parse(r.try_get(3).map_err(db)?).unwrap_or(InstitutionKind::Other),
        municipality_code: r.try_get(4).map_err(db)?,
    };
    let source_system: Option<String> = r.try_get(5).map_err(db)?;
    let school_year: Option<String> = r.try_get(6).map_err(db)?;

    // Pipelined: five queries, one wait.
    let inst: [Param<'_>; 1] = [&id];
    let (persons, roles, groups, memberships, contacts) = futures_util::try_join!(
        query(
            c,
            "SELECT p.id, p.user_id, p.given_name, p.family_name, p.alias_given_name, p.alias_family_name, p.cpr_enc, p.birth_date,
                    p.gender, p.email, p.phones, p.address, p.protected, p.source_system, p.local_person_id, p.photo_id, p.inactive_since
             FROM persons p WHERE p.id IN (
                SELECT person_id FROM roles WHERE institution_id = $1 AND ended_on IS NULL
                UNION SELECT contact_id FROM contacts WHERE institution_id = $1 AND ended_on IS NULL
                UNION SELECT pupil_id FROM contacts WHERE institution_id = $1 AND ended_on IS NULL)
             ORDER BY p.user_id COLLATE \"C\"",
            &inst,
        ),
        query(
            c,
            "SELECT p.user_id, r.role, r.grade_level, r.student_number, r.main_group, r.initials, r.occupation
             FROM roles r JOIN persons p ON p.id = r.person_id WHERE r.institution_id = $1 AND r.ended_on IS NULL
             ORDER BY p.user_id COLLATE \"C\", r.role COLLATE \"C\"",
            &inst,
        ),
        query(
            c,
            "SELECT ext_id, name, kind, level, line, from_date, to_date FROM roster_groups
             WHERE institution_id = $1 AND ended_on IS NULL ORDER BY ext_id COLLATE \"C\"",
            &inst,
        ),
        query(
            c,
            "SELECT g.ext_id, p.user_id FROM memberships m JOIN roster_groups g ON g.id = m.group_id JOIN persons p ON p.id = m.person_id
             WHERE g.institution_id = $1 AND m.ended_on IS NULL AND g.ended_on IS NULL
             ORDER BY g.ext_id COLLATE \"C\", p.user_id COLLATE \"C\"",
            &inst,
        ),
        query(
            c,
            "SELECT pp.user_id, cp.user_id, c.relation, c.custody, c.access_level FROM contacts c
             JOIN persons pp ON pp.id = c.pupil_id JOIN persons cp ON cp.id = c.contact_id
             WHERE c.institution_id = $1 AND c.ended_on IS NULL ORDER BY pp.user_id COLLATE \"C\", cp.user_id COLLATE \"C\"",
            &inst,
        ),
    )?;

    let stored = persons
        .iter()
        .map(|r| {
            Ok(StoredPerson {
                id: r.try_get(0).map_err(db)?,
                person: person_row(r)?,
                cpr_enc: r.try_get(6).map_err(db)?,
                inactive_since: r.try_get(16).map_err(db)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut role_list = Vec::with_capacity(roles.len());
    for r in &roles {
        let Some(role) = RoleKind::parse(r.try_get(1).map_err(db)?) else {
            continue;
        };
        role_list.push(Role {
            user_id: r.try_get(0).map_err(db)?,
            role,
            grade_level: r.try_get(2).map_err(db)?,
            student_number: r.try_get(3).map_err(db)?,
            main_group: r.try_get(4).map_err(db)?,
            initials: r.try_get(5).map_err(db)?,
            occupation: r.try_get(6).map_err(db)?,
        });
    }
    let groups = groups
        .iter()
        .map(|r| {
            Ok(Group {
                id: r.try_get(0).map_err(db)?,
                name: r.try_get(1).map_err(db)?,
                kind: GroupKind::parse(r.try_get(2).map_err(db)?).unwrap_or(GroupKind::Other),
                level: r.try_get(3).map_err(db)?,
                line: r.try_get(4).map_err(db)?,
                from: r.try_get(5).map_err(db)?,
                to: r.try_get(6).map_err(db)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let memberships = memberships
        .iter()
        .map(|r| {
            Ok(Membership {
                group: r.try_get(0).map_err(db)?,
                user_id: r.try_get(1).map_err(db)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let contacts = contacts
        .iter()
        .map(|r| {
            Ok(ContactRelation {
                pupil: r.try_get(0).map_err(db)?,
                contact: r.try_get(1).map_err(db)?,
                relation: Relation::parse(r.try_get(2).map_err(db)?).unwrap_or(Relation::Other),
                custody: r.try_get(3).map_err(db)?,
                access_level: r
                    .try_get::<_, Option<i16>>(4)
                    .map_err(db)?
                    .and_then(|l| u8::try_from(l).ok()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let roster = InstitutionRoster {
        institution,
        source_system,
        school_year,
        persons: stored.iter().map(|s| s.person.clone()).collect(),
        roles: role_list,
        groups,
        memberships,
        contacts,
        ended: Ended::default(),
    };
    Ok(Some((roster, stored)))
}

#[async_trait]
impl Store for PgStore {
    fn dialect(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> Result<Migrated> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        // Replicas starting together take turns; the later ones find the
        // work done.
        tx.batch_execute(&format!(
            "SELECT pg_advisory_xact_lock({MIGRATE_LOCK});
             CREATE TABLE IF NOT EXISTS schema_migrations (
                version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        ))
        .await
        .map_err(db)?;
        let current: i64 = tx
            .query_one(
                "SELECT coalesce(max(version), 0)::bigint FROM schema_migrations",
                &[],
            )
            .await
            .map_err(db)?
            .try_get(0)
            .map_err(db)?;
        let known = POSTGRES_MIGRATIONS.last().map(|m| m.version).unwrap_or(0);
        if current > known {
            return Err(Error::SchemaTooNew {
                found: current,
                known,
            });
        }
        let mut applied = Vec::new();
        for m in POSTGRES_MIGRATIONS.iter().filter(|m| m.version > current) {
            tx.batch_execute(m.sql).await.map_err(|e| match db(e) {
                Error::Store(msg) => Error::Store(format!("migration {}: {msg}", m.name)),
                other => other,
            })?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[&m.version, &m.name],
            )
            .await
            .map_err(db)?;
            applied.push(m.name.to_owned());
        }
        tx.commit().await.map_err(db)?;
        Ok(Migrated {
            applied,
            version: known,
        })
    }

    async fn refresh_statistics(&self) -> Result<()> {
        let c = self.conn().await?;
        c.batch_execute(
            "ANALYZE institutions, persons, roster_groups, roles, memberships, contacts",
        )
        .await
        .map_err(db)
    }

    async fn ping(&self) -> Result<()> {
        self.conn()
            .await?
            .simple_query("SELECT 1")
            .await
            .map_err(db)?;
        Ok(())
    }
}

/// These run only when `TILGANG_TEST_POSTGRES_URL` names a server; each test
/// creates (and drops) a database of its own, so they may run in parallel.
#[cfg(test)]
mod tests;
