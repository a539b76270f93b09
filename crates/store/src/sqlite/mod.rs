//! The SQLite store: the embedded default. One writer connection behind an
//! async mutex (SQLite has one writer anyway; WAL lets readers go on), and a
//! small pool of reader connections. Work runs on blocking threads.

pub(crate) mod anonymize;
mod api;
mod changes;
mod export;
mod factors;
mod identity;
mod lifecycle;
mod mydata;
pub(crate) mod oidc;
mod portal;
mod reports;
mod sharing;
mod staff;

pub use anonymize::{anonymize, AnonymizeReport};

use crate::codec::{address_from, address_json, phones_from, phones_json};
use crate::group::{self, Write};
use crate::SQLITE_MIGRATIONS;
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, ToSql};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tilgang_core::audit::checkpoint::{AuditKey, Checkpoint};
use tilgang_core::audit::search::{Query, Scope};
use tilgang_core::audit::{chain, Event, Head, NewEvent};
use tilgang_core::roster::import::native::parse_date;
use tilgang_core::roster::*;
use tilgang_core::store::*;
use tilgang_core::{Error, Result};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// The table `migrate` keeps its record in.
pub(crate) const SCHEMA_MIGRATIONS_DDL: &str =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)";

/// A person from columns 1-15 of `SELECT p.id, p.user_id, p.given_name,
/// p.family_name, p.alias_given_name, p.alias_family_name, p.cpr_enc,
/// p.birth_date, p.gender, p.email, p.phones, p.address, p.protected,
/// p.source_system, p.local_person_id, p.photo_id` (the CPR stays sealed
/// in column 6).
pub(crate) fn person_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Person> {
    Ok(Person {
        user_id: r.get(1)?,
        given_name: r.get(2)?,
        family_name: r.get(3)?,
        alias_given_name: r.get(4)?,
        alias_family_name: r.get(5)?,
        cpr: None,
        birth_date: opt_date(r.get(7)?),
        gender: r
            .get::<_, Option<String>>(8)?
            .as_deref()
            .and_then(Gender::parse),
        email: r.get(9)?,
        phones: phones_from(r.get(10)?),
        address: address_from(r.get(11)?),
        protected: r.get(12)?,
        source_system: r.get(13)?,
        local_person_id: r.get(14)?,
        photo_id: r.get(15)?,
    })
}

pub(crate) fn db(e: rusqlite::Error) -> Error {
    Error::store(e)
}

fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

pub struct SqliteStore {
    path: PathBuf,
    writer: Arc<AsyncMutex<Connection>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// One permit per reader connection.
    reading: Arc<tokio::sync::Semaphore>,
    /// Held while the store is open; the checkpointer stops without it.
    _checkpointer: Arc<()>,
    /// Small audited writes waiting for the writer (`crate::group`).
    group: group::GroupCommit,
}

/// Page cache per connection, in KiB: the writer gets a large one (imports
/// touch every index), readers a modest one.
const WRITER_CACHE_KIB: i64 = 256 * 1024;
const READER_CACHE_KIB: i64 = 16 * 1024;
/// Reads at once, each on its own connection (kept for reuse). Every
/// commit resets the page cache of each reader connection, and a lookup
/// then fetches its pages again: with a connection per concurrent request
/// (32 and more under load) an audited lookup cost twice an unaudited one
/// (`bench/api.sh`). SQLite reads are CPU-bound here, so a few more
/// connections than cores keep the cores busy.
fn readers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 2
}
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 256;
/// The most of the file SQLite maps (it caps this at its compile-time
/// limit, 2 GiB in the bundled build).
const MMAP_BYTES: i64 = 1 << 36;

/// `Connection::query_row` through the connection's statement cache: the
/// plain one parses its SQL on every call.
pub(crate) trait CachedRow {
    fn cached_row<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T>;
}

impl CachedRow for Connection {
    fn cached_row<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

fn open_conn(path: &Path, cache_kib: i64) -> Result<Connection> {
    let conn = Connection::open(path)
        .map_err(|e| Error::io(format!("SQLite database {}", path.display()), e))?;
    conn.execute_batch(
        "PRAGMA page_size = 16384;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA busy_timeout = 10000;
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(db)?;
    // Foreign keys are declared for the reader and enforced by PostgreSQL;
    // here the import's diff guarantees them, and checking them row by row
    // would cost a tenth of a national import.
    // Fewer, larger checkpoints: pages rewritten within one are copied once.
    // Memory-mapped reads: every commit (an audit group, say) resets each
    // reader's page cache, and without the map each page was then copied
    // in again by a read(2) (`bench/api.sh` profile).
    conn.execute_batch(&format!(
        "PRAGMA cache_size = -{cache_kib}; PRAGMA wal_autocheckpoint = 16384; PRAGMA mmap_size = {MMAP_BYTES};"
    ))
    .map_err(db)?;
    // A lookup alone runs about twenty distinct statements on a reader;
    // the default cache of 16 evicted and re-parsed them.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// How often the checkpointer copies the WAL back into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Starts a thread that runs a passive checkpoint on its own connection
/// every [`CHECKPOINT_EVERY`] while the store is open (it stops when the
/// returned token is dropped). Passive: it never waits for, nor blocks,
/// the writer or a reader. Without it the writer's own commit ran the
/// checkpoint whenever the WAL reached `wal_autocheckpoint` pages, and
/// every audited lookup waiting on that group commit waited ~100 ms
/// (`bench/api.sh` p99); the writer's automatic checkpoint stays as the
/// backstop (a CLI import with no server running, say).
fn checkpointer(path: PathBuf) -> Arc<()> {
    let alive = Arc::new(());
    let token = Arc::downgrade(&alive);
    let spawned = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            let mut conn = None;
            loop {
                std::thread::sleep(CHECKPOINT_EVERY);
                if token.strong_count() == 0 {
                    return;
                }
                if conn.is_none() {
                    conn = open_conn(&path, 1024).ok();
                }
                if let Some(c) = &conn {
                    // Busy or failed: the next round, or the writer, does it.
                    let _ = c.execute_batch("PRAGMA wal_checkpoint(PASSIVE)");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no SQLite checkpoint thread; the writer checkpoints alone");
    }
    alive
}

impl SqliteStore {
    /// Opens (creating when missing) the database file at `path`.
    pub fn open(path: &str) -> Result<Self> {
        let path = PathBuf::from(path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
        }
        let writer = open_conn(&path, WRITER_CACHE_KIB)?;
        Ok(SqliteStore {
            _checkpointer: checkpointer(path.clone()),
            path,
            writer: Arc::new(AsyncMutex::new(writer)),
            readers: Arc::new(Mutex::new(Vec::new())),
            reading: Arc::new(tokio::sync::Semaphore::new(readers())),
            group: group::GroupCommit::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a reader connection on a blocking thread.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let readers = self.readers.clone();
        let path = self.path.clone();
        let permit = self
            .reading
            .clone()
            .acquire_owned()
            .await
            .map_err(Error::store)?;
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match pooled {
                Some(c) => c,
                None => open_conn(&path, READER_CACHE_KIB)?,
            };
            let out = f(&conn);
            readers.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
            drop(permit);
            out
        })
        .await
        .map_err(Error::store)?
    }

    /// Runs `f` inside a write transaction on the writer connection.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.writer.clone().lock_owned().await;
        tokio::task::spawn_blocking(move || transaction(&conn, f))
            .await
            .map_err(Error::store)?
    }

    /// Writes tokens and events in the next group transaction with whatever
    /// else waits for the writer (`crate::group`); returns after it commits.
    pub(crate) async fn write_grouped(&self, write: Write) -> Result<()> {
        self.group
            .submit(&self.writer, write, |conn, mut batch| {
                tokio::task::spawn_blocking(move || {
                    let mut writes = batch.take_writes();
                    let outcome = transaction(&conn, |c| {
                        oidc::insert_tokens(c, &group::take_tokens(&mut writes))?;
                        insert_audit(c, &group::seal(head(c)?, writes))
                    });
                    batch.answer(&outcome);
                    // The writer is released only after every caller is answered.
                    drop(conn);
                });
            })
            .await
    }
}

/// Runs `f` in an immediate transaction: committed when it succeeds,
/// rolled back when it fails.
fn transaction<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("COMMIT").map_err(db)?;
            Ok(v)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

pub(crate) fn head(conn: &Connection) -> Result<Head> {
    let mut stmt = conn
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")
        .map_err(db)?;
    stmt.query_row([], |r| {
        let hash: Vec<u8> = r.get(1)?;
        Ok(Head {
            seq: r.get(0)?,
            hash: hash.try_into().unwrap_or([0; 32]),
        })
    })
    .map_err(db)
}

pub(crate) fn insert_audit(conn: &Connection, events: &[Event]) -> Result<()> {
    let Some(last) = events.last() else {
        return Ok(());
    };
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO audit_events (seq, at_us, actor, action, institution, subjects, details, prev_hash, hash,
             content_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(db)?;
    for e in events {
        stmt.execute(params![
            e.seq,
            e.at_us,
            e.actor,
            e.action,
            e.institution,
            e.subjects,
            e.details,
            &e.prev_hash[..],
            &e.hash[..],
            e.content_hash.as_ref().map(|c| &c[..]),
        ])
        .map_err(db)?;
    }
    conn.prepare_cached("UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1")
        .map_err(db)?
        .execute(params![last.seq, &last.hash[..]])
        .map_err(db)?;
    Ok(())
}

/// A person's columns from `given_name` to `updated_at` (`?2`..`?18`), as
/// both the insert and the update bind them.
fn with_person_columns<T>(r: &PersonRow<'_>, now: &str, f: impl FnOnce(&[&dyn ToSql]) -> T) -> T {
    let p = r.person;
    let birth_date = date(p.birth_date);
    let gender = p.gender.map(|g| g.as_str());
    let phones = phones_json(&p.phones);
    let address = address_json(&p.address);
    f(&[
        &p.given_name,
        &p.family_name,
        &p.alias_given_name,
        &p.alias_family_name,
        &r.cpr_enc,
        &r.cpr_hash,
        &birth_date,
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
    ])
}

fn existing(id: i64, digest: i64, ended: bool) -> Existing {
    Existing { id, digest, ended }
}

fn date(d: Option<Date>) -> Option<String> {
    d.map(|d| d.to_string())
}

fn table_name(t: EndTable) -> &'static str {
    match t {
        EndTable::Groups => "roster_groups",
        EndTable::Roles => "roles",
        EndTable::Memberships => "memberships",
        EndTable::Contacts => "contacts",
    }
}

/// One import transaction on the writer connection.
pub struct SqliteTx {
    conn: OwnedMutexGuard<Connection>,
    done: bool,
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

impl SqliteTx {
    fn each<T>(
        &self,
        sql: &str,
        rows: &[T],
        mut f: impl FnMut(&mut rusqlite::CachedStatement<'_>, &T) -> rusqlite::Result<()>,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut stmt = self.conn.prepare_cached(sql).map_err(db)?;
        for r in rows {
            f(&mut stmt, r).map_err(db)?;
        }
        Ok(())
    }

    fn keyed<K>(
        &self,
        sql: &str,
        inst: i64,
        key: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<Option<K>>,
    ) -> Result<Vec<(K, Existing)>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(db)?;
        let rows = stmt
            .query_map([inst], |r| {
                let e = existing(r.get("id")?, r.get("digest")?, r.get("ended")?);
                Ok(key(r)?.map(|k| (k, e)))
            })
            .map_err(db)?;
        let mut out = Vec::new();
        for r in rows {
            if let Some(kv) = r.map_err(db)? {
                out.push(kv);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl ImportTx for SqliteTx {
    async fn institution(&mut self, number: &str) -> Result<Option<Existing>> {
        self.conn
            .query_row(
                "SELECT id, digest FROM institutions WHERE number = ?1",
                [number],
                |r| Ok(existing(r.get(0)?, r.get(1)?, false)),
            )
            .optional()
            .map_err(db)
    }

    async fn insert_institution(
        &mut self,
        i: &InstitutionRow<'_>,
        now: OffsetDateTime,
    ) -> Result<i64> {
        let now = ts(now);
        self.conn
            .execute(
                "INSERT INTO institutions (number, name, kind, municipality_code, source_system, school_year, digest, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                params![i.number, i.name, i.kind.as_str(), i.municipality_code, i.source_system, i.school_year, i.digest, now],
            )
            .map_err(db)?;
        Ok(self.conn.last_insert_rowid())
    }

    async fn update_institution(
        &mut self,
        id: i64,
        i: &InstitutionRow<'_>,
        now: OffsetDateTime,
    ) -> Result<()> {
        self.conn
            .execute(
                "UPDATE institutions SET name = ?2, kind = ?3, municipality_code = ?4, source_system = ?5, school_year = ?6,
                 digest = ?7, updated_at = ?8 WHERE id = ?1",
                params![id, i.name, i.kind.as_str(), i.municipality_code, i.source_system, i.school_year, i.digest, ts(now)],
            )
            .map_err(db)?;
        Ok(())
    }

    async fn import_digest(&mut self, institution: i64) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT import_digest FROM institutions WHERE id = ?1",
                [institution],
                |r| r.get(0),
            )
            .map_err(db)
    }

    async fn set_import_digest(&mut self, institution: i64, digest: Option<i64>) -> Result<()> {
        self.conn
            .execute(
                "UPDATE institutions SET import_digest = ?2 WHERE id = ?1",
                params![institution, digest],
            )
            .map_err(db)
            .map(drop)
    }

    async fn persons(&mut self, user_ids: &[&str]) -> Result<Vec<(String, Existing)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, digest, inactive_since IS NOT NULL FROM persons WHERE user_id = ?1",
            )
            .map_err(db)?;
        let mut out = Vec::new();
        for u in user_ids {
            if let Some(e) = stmt
                .query_row([u], |r| Ok(existing(r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
                .map_err(db)?
            {
                out.push(((*u).to_owned(), e));
            }
        }
        Ok(out)
    }

    async fn insert_persons(
        &mut self,
        rows: &[PersonRow<'_>],
        now: OffsetDateTime,
    ) -> Result<Vec<i64>> {
        let now = ts(now);
        let mut ids = Vec::with_capacity(rows.len());
        let conn = &*self.conn;
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO persons (user_id, given_name, family_name, alias_given_name, alias_family_name, cpr_enc, cpr_hash,
                 birth_date, gender, email, phones, address, protected, source_system, local_person_id, photo_id, digest,
                 created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?18)",
            )
            .map_err(db)?;
        for r in rows {
            with_person_columns(r, &now, |cols| {
                let mut values: Vec<&dyn ToSql> = Vec::with_capacity(18);
                values.push(&r.person.user_id);
                values.extend_from_slice(cols);
                stmt.execute(&*values)
            })
            .map_err(db)?;
            ids.push(conn.last_insert_rowid());
        }
        Ok(ids)
    }

    async fn update_persons(
        &mut self,
        rows: &[(i64, PersonRow<'_>)],
        now: OffsetDateTime,
    ) -> Result<()> {
        let now = ts(now);
        self.each(
            "UPDATE persons SET given_name = ?2, family_name = ?3, alias_given_name = ?4, alias_family_name = ?5, cpr_enc = ?6,
             cpr_hash = ?7, birth_date = ?8, gender = ?9, email = ?10, phones = ?11, address = ?12, protected = ?13,
             source_system = ?14, local_person_id = ?15, photo_id = ?16, digest = ?17, updated_at = ?18 WHERE id = ?1",
            rows,
            |stmt, (id, r)| {
                with_person_columns(r, &now, |cols| {
                    let mut values: Vec<&dyn ToSql> = Vec::with_capacity(18);
                    values.push(id);
                    values.extend_from_slice(cols);
                    stmt.execute(&*values)
                })
                .map(drop)
            },
        )
    }

    async fn set_inactive(&mut self, ids: &[i64], since: Option<Date>) -> Result<()> {
        let since = date(since);
        self.each(
            "UPDATE persons SET inactive_since = ?2 WHERE id = ?1",
            ids,
            |stmt, id| stmt.execute(params![id, since]).map(drop),
        )
    }

    async fn unlinked_persons(&mut self, ids: &[i64]) -> Result<Vec<i64>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT NOT EXISTS (SELECT 1 FROM roles WHERE person_id = ?1 AND ended_on IS NULL)
                    AND NOT EXISTS (SELECT 1 FROM contacts WHERE pupil_id = ?1 AND ended_on IS NULL)
                    AND NOT EXISTS (SELECT 1 FROM contacts WHERE contact_id = ?1 AND ended_on IS NULL)",
            )
            .map_err(db)?;
        let mut out = Vec::new();
        for id in ids {
            if stmt.query_row([id], |r| r.get::<_, bool>(0)).map_err(db)? {
                out.push(*id);
            }
        }
        Ok(out)
    }

    async fn groups(&mut self, inst: i64) -> Result<Vec<(String, Existing)>> {
        self.keyed(
            "SELECT ext_id, id, digest, ended_on IS NOT NULL AS ended FROM roster_groups WHERE institution_id = ?1",
            inst,
            |r| r.get(0).map(Some),
        )
    }

    async fn insert_groups(
        &mut self,
        inst: i64,
        rows: &[(&Group, i64)],
        now: OffsetDateTime,
    ) -> Result<Vec<i64>> {
        let now = ts(now);
        let mut ids = Vec::with_capacity(rows.len());
        let conn = &*self.conn;
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO roster_groups (institution_id, ext_id, name, kind, level, line, from_date, to_date, digest, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
            )
            .map_err(db)?;
        for (g, digest) in rows {
            stmt.execute(params![
                inst,
                g.id,
                g.name,
                g.kind.as_str(),
                g.level,
                g.line,
                date(g.from),
                date(g.to),
                digest,
                now
            ])
            .map_err(db)?;
            ids.push(conn.last_insert_rowid());
        }
        Ok(ids)
    }

    async fn update_groups(
        &mut self,
        rows: &[(i64, &Group, i64)],
        now: OffsetDateTime,
    ) -> Result<()> {
        let now = ts(now);
        self.each(
            "UPDATE roster_groups SET name = ?2, kind = ?3, level = ?4, line = ?5, from_date = ?6, to_date = ?7, digest = ?8,
             ended_on = NULL, updated_at = ?9 WHERE id = ?1",
            rows,
            |stmt, (id, g, digest)| {
                stmt.execute(params![id, g.name, g.kind.as_str(), g.level, g.line, date(g.from), date(g.to), digest, now])
                    .map(drop)
            },
        )
    }

    async fn roles(&mut self, inst: i64) -> Result<Vec<((i64, RoleKind), Existing)>> {
        self.keyed(
            "SELECT person_id, role, id, digest, ended_on IS NOT NULL AS ended FROM roles WHERE institution_id = ?1",
            inst,
            |r| Ok(RoleKind::parse(&r.get::<_, String>(1)?).map(|k| (r.get::<_, i64>(0).unwrap_or(-1), k))),
        )
    }

    async fn insert_roles(
        &mut self,
        inst: i64,
        rows: &[(i64, &Role, i64)],
        now: OffsetDateTime,
    ) -> Result<()> {
        let now = ts(now);
        self.each(
            "INSERT INTO roles (institution_id, person_id, role, actor, grade_level, student_number, main_group, initials, occupation,
             digest, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
            rows,
            |stmt, (pid, r, digest)| {
                stmt.execute(params![
                    inst,
                    pid,
                    r.role.as_str(),
                    r.role.actor().as_str(),
                    r.grade_level,
                    r.student_number,
                    r.main_group,
                    r.initials,
                    r.occupation,
                    digest,
                    now
                ])
                .map(drop)
            },
        )
    }

    async fn update_roles(
        &mut self,
        rows: &[(i64, &Role, i64)],
        now: OffsetDateTime,
    ) -> Result<()> {
        let now = ts(now);
        self.each(
            "UPDATE roles SET grade_level = ?2, student_number = ?3, main_group = ?4, initials = ?5, occupation = ?6, digest = ?7,
             ended_on = NULL, updated_at = ?8 WHERE id = ?1",
            rows,
            |stmt, (id, r, digest)| {
                stmt.execute(params![id, r.grade_level, r.student_number, r.main_group, r.initials, r.occupation, digest, now])
                    .map(drop)
            },
        )
    }

    async fn memberships(&mut self, inst: i64) -> Result<Vec<((i64, i64), Existing)>> {
        self.keyed(
            "SELECT m.group_id, m.person_id, m.id AS id, 0 AS digest, m.ended_on IS NOT NULL AS ended
             FROM memberships m JOIN roster_groups g ON g.id = m.group_id WHERE g.institution_id = ?1",
            inst,
            |r| Ok(Some((r.get(0)?, r.get(1)?))),
        )
    }

    async fn insert_memberships(&mut self, rows: &[(i64, i64)], now: OffsetDateTime) -> Result<()> {
        let now = ts(now);
        self.each(
            "INSERT INTO memberships (group_id, person_id, created_at) VALUES (?1, ?2, ?3)",
            rows,
            |stmt, (g, p)| stmt.execute(params![g, p, now]).map(drop),
        )
    }

    async fn contacts(&mut self, inst: i64) -> Result<Vec<((i64, i64), Existing)>> {
        self.keyed(
            "SELECT pupil_id, contact_id, id, digest, ended_on IS NOT NULL AS ended FROM contacts WHERE institution_id = ?1",
            inst,
            |r| Ok(Some((r.get(0)?, r.get(1)?))),
        )
    }

    async fn insert_contacts(
        &mut self,
        inst: i64,
        rows: &[ContactRow],
        now: OffsetDateTime,
    ) -> Result<()> {
        let now = ts(now);
        self.each(
            "INSERT INTO contacts (institution_id, pupil_id, contact_id, relation, custody, access_level, digest, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            rows,
            |stmt, c| {
                stmt.execute(params![inst, c.pupil, c.contact, c.relation.as_str(), c.custody, c.access_level, c.digest, now])
                    .map(drop)
            },
        )
    }

    async fn update_contacts(
        &mut self,
        rows: &[(i64, ContactRow)],
        now: OffsetDateTime,
    ) -> Result<()> {
        let now = ts(now);
        self.each(
            "UPDATE contacts SET relation = ?2, custody = ?3, access_level = ?4, digest = ?5, ended_on = NULL, updated_at = ?6 WHERE id = ?1",
            rows,
            |stmt, (id, c)| {
                stmt.execute(params![id, c.relation.as_str(), c.custody, c.access_level, c.digest, now])
                    .map(drop)
            },
        )
    }

    async fn end_rows(&mut self, table: EndTable, ids: &[i64], on: Date) -> Result<()> {
        let on = on.to_string();
        let sql = format!(
            "UPDATE {} SET ended_on = ?2 WHERE id = ?1",
            table_name(table)
        );
        self.each(&sql, ids, |stmt, id| {
            stmt.execute(params![id, on]).map(drop)
        })
    }

    async fn reopen_rows(&mut self, table: EndTable, ids: &[i64]) -> Result<()> {
        let sql = format!(
            "UPDATE {} SET ended_on = NULL WHERE id = ?1",
            table_name(table)
        );
        self.each(&sql, ids, |stmt, id| stmt.execute([id]).map(drop))
    }

    async fn audit_head(&mut self) -> Result<Head> {
        head(&self.conn)
    }

    async fn insert_audit(&mut self, events: &[Event]) -> Result<()> {
        insert_audit(&self.conn, events)
    }

    async fn insert_changes(
        &mut self,
        rows: &[tilgang_core::store::changes::NewChange],
        now: OffsetDateTime,
    ) -> Result<()> {
        changes::insert_changes(&self.conn, rows, now)
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        self.conn.execute_batch("COMMIT").map_err(db)?;
        self.done = true;
        Ok(())
    }
}

#[async_trait]
impl RosterStore for SqliteStore {
    async fn begin_import(&self) -> Result<Box<dyn ImportTx + '_>> {
        let conn = self.writer.clone().lock_owned().await;
        conn.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
        Ok(Box::new(SqliteTx { conn, done: false }))
    }

    async fn institutions(&self) -> Result<Vec<InstitutionInfo>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT i.number, i.name, i.kind, i.municipality_code, i.school_year,
                     (SELECT count(DISTINCT person_id) FROM roles r WHERE r.institution_id = i.id AND r.ended_on IS NULL)
                     FROM institutions i ORDER BY i.number",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(InstitutionInfo {
                        number: r.get(0)?,
                        name: r.get(1)?,
                        kind: InstitutionKind::parse(&r.get::<_, String>(2)?).unwrap_or(InstitutionKind::Other),
                        municipality_code: r.get(3)?,
                        school_year: r.get(4)?,
                        active_persons: r.get(5)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn institution_roster(
        &self,
        number: &str,
    ) -> Result<Option<(InstitutionRoster, Vec<StoredPerson>)>> {
        let number = number.to_owned();
        self.read(move |conn| read_roster(conn, &number)).await
    }

    async fn counts(&self) -> Result<Counts> {
        self.read(|conn| {
            conn.cached_row(
                "SELECT (SELECT count(*) FROM institutions), (SELECT count(*) FROM persons),
                        (SELECT count(*) FROM persons WHERE inactive_since IS NULL), (SELECT count(*) FROM roles),
                        (SELECT count(*) FROM roster_groups), (SELECT count(*) FROM memberships),
                        (SELECT count(*) FROM contacts), (SELECT seq FROM audit_head WHERE id = 1)",
                [],
                |r| {
                    Ok(Counts {
                        institutions: r.get(0)?,
                        persons: r.get(1)?,
                        active_persons: r.get(2)?,
                        roles: r.get(3)?,
                        groups: r.get(4)?,
                        memberships: r.get(5)?,
                        contacts: r.get(6)?,
                        audit_events: r.get(7)?,
                    })
                },
            )
            .map_err(db)
        })
        .await
    }
}

pub(crate) fn opt_date(s: Option<String>) -> Option<Date> {
    s.as_deref().and_then(parse_date)
}

fn read_roster(
    conn: &Connection,
    number: &str,
) -> Result<Option<(InstitutionRoster, Vec<StoredPerson>)>> {
    let inst = conn
        .cached_row(
            "SELECT id, number, name, kind, municipality_code, source_system, school_year FROM institutions WHERE number = ?1",
            [number],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    Institution {
                        number: r.get(1)?,
                        name: r.get(2)?,
                        kind: InstitutionKind::parse(&r.get::<_, String>(3)?).unwrap_or(InstitutionKind::Other),
                        municipality_code: r.get(4)?,
                    },
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            },
        )
        .optional()
        .map_err(db)?;
    let Some((id, institution, source_system, school_year)) = inst else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare(
            "SELECT p.id, p.user_id, p.given_name, p.family_name, p.alias_given_name, p.alias_family_name, p.cpr_enc, p.birth_date,
                    p.gender, p.email, p.phones, p.address, p.protected, p.source_system, p.local_person_id, p.photo_id, p.inactive_since
             FROM persons p WHERE p.id IN (
                SELECT person_id FROM roles WHERE institution_id = ?1 AND ended_on IS NULL
                UNION SELECT contact_id FROM contacts WHERE institution_id = ?1 AND ended_on IS NULL
                UNION SELECT pupil_id FROM contacts WHERE institution_id = ?1 AND ended_on IS NULL)
             ORDER BY p.user_id",
        )
        .map_err(db)?;
    let stored: Vec<StoredPerson> = stmt
        .query_map([id], |r| {
            Ok(StoredPerson {
                id: r.get(0)?,
                person: person_row(r)?,
                cpr_enc: r.get(6)?,
                inactive_since: opt_date(r.get(16)?),
            })
        })
        .map_err(db)?
        .collect::<rusqlite::Result<_>>()
        .map_err(db)?;
    let mut stmt = conn
        .prepare(
            "SELECT p.user_id, r.role, r.grade_level, r.student_number, r.main_group, r.initials, r.occupation
             FROM roles r JOIN persons p ON p.id = r.person_id WHERE r.institution_id = ?1 AND r.ended_on IS NULL
             ORDER BY p.user_id, r.role",
        )
        .map_err(db)?;
    let roles = stmt
        .query_map([id], |r| {
            Ok(RoleKind::parse(&r.get::<_, String>(1)?).map(|role| Role {
                user_id: r.get(0).unwrap_or_default(),
                role,
                grade_level: r.get(2).unwrap_or_default(),
                student_number: r.get(3).unwrap_or_default(),
                main_group: r.get(4).unwrap_or_default(),
                initials: r.get(5).unwrap_or_default(),
                occupation: r.get(6).unwrap_or_default(),
            }))
        })
        .map_err(db)?
        .filter_map(|r| r.transpose())
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    let mut stmt = conn
        .prepare(
            "SELECT ext_id, name, kind, level, line, from_date, to_date FROM roster_groups
             WHERE institution_id = ?1 AND ended_on IS NULL ORDER BY ext_id",
        )
        .map_err(db)?;
    let groups = stmt
        .query_map([id], |r| {
            Ok(Group {
                id: r.get(0)?,
                name: r.get(1)?,
                kind: GroupKind::parse(&r.get::<_, String>(2)?).unwrap_or(GroupKind::Other),
                level: r.get(3)?,
                line: r.get(4)?,
                from: opt_date(r.get(5)?),
                to: opt_date(r.get(6)?),
            })
        })
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    let mut stmt = conn
        .prepare(
            "SELECT g.ext_id, p.user_id FROM memberships m JOIN roster_groups g ON g.id = m.group_id JOIN persons p ON p.id = m.person_id
             WHERE g.institution_id = ?1 AND m.ended_on IS NULL AND g.ended_on IS NULL ORDER BY g.ext_id, p.user_id",
        )
        .map_err(db)?;
    let memberships = stmt
        .query_map([id], |r| {
            Ok(Membership {
                group: r.get(0)?,
                user_id: r.get(1)?,
            })
        })
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    let mut stmt = conn
        .prepare(
            "SELECT pp.user_id, cp.user_id, c.relation, c.custody, c.access_level FROM contacts c
             JOIN persons pp ON pp.id = c.pupil_id JOIN persons cp ON cp.id = c.contact_id
             WHERE c.institution_id = ?1 AND c.ended_on IS NULL ORDER BY pp.user_id, cp.user_id",
        )
        .map_err(db)?;
    let contacts = stmt
        .query_map([id], |r| {
            Ok(ContactRelation {
                pupil: r.get(0)?,
                contact: r.get(1)?,
                relation: Relation::parse(&r.get::<_, String>(2)?).unwrap_or(Relation::Other),
                custody: r.get(3)?,
                access_level: r.get(4)?,
            })
        })
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    let roster = InstitutionRoster {
        institution,
        source_system,
        school_year,
        persons: stored.iter().map(|s| s.person.clone()).collect(),
        roles,
        groups,
        memberships,
        contacts,
        ended: tilgang_core::roster::Ended::default(),
    };
    Ok(Some((roster, stored)))
}

pub(crate) fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    let prev: Vec<u8> = r.get(7)?;
    let hash: Vec<u8> = r.get(8)?;
    Ok(Event {
        seq: r.get(0)?,
        at_us: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        institution: r.get(4)?,
        subjects: r.get(5)?,
        details: r.get(6)?,
        prev_hash: prev.try_into().unwrap_or([0xff; 32]),
        hash: hash.try_into().unwrap_or([0xff; 32]),
        content_hash: r
            .get::<_, Option<Vec<u8>>>(9)?
            .map(|c| c.try_into().unwrap_or([0xff; 32])),
        redacted_at_us: r.get(10)?,
    })
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, at: OffsetDateTime, events: Vec<NewEvent>) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.write_grouped(Write {
            tokens: Vec::new(),
            at,
            events,
        })
        .await
    }

    async fn stored_head(&self) -> Result<Head> {
        self.read(head).await
    }

    async fn audit_page(&self, after: i64, limit: usize) -> Result<Vec<Event>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, at_us, actor, action, institution, subjects, details, prev_hash, hash,
                     content_hash, redacted_at_us
                     FROM audit_events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map(params![after, limit as i64], event_row)
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn audit_search(&self, scope: &Scope, q: &Query) -> Result<Vec<Event>> {
        let (all, numbers) = match scope {
            Scope::All => (true, "[]".to_owned()),
            Scope::Institutions(n) => (false, serde_json::to_string(n).map_err(Error::store)?),
        };
        let q = q.clone();
        self.read(move |conn| {
            // Each filter is `?n IS NULL OR …`, so one cached statement
            // serves every combination; the indexes of 0011 carry the
            // selective ones.
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, at_us, actor, action, institution, subjects, details, prev_hash, hash,
                     content_hash, redacted_at_us
                     FROM audit_events e
                     WHERE (?1 IS NULL OR e.seq < ?1)
                       AND (?2 IS NULL OR e.action = ?2)
                       AND (?3 IS NULL OR e.at_us >= ?3)
                       AND (?4 IS NULL OR e.at_us < ?4)
                       AND (?5 IS NULL OR e.institution = ?5)
                       AND (?6 IS NULL OR EXISTS (SELECT 1 FROM json_each(e.subjects) j WHERE j.value = ?6))
                       AND (?7 IS NULL OR e.actor = 'service:' || ?7
                            OR (json_valid(e.details) AND json_type(e.details) = 'object'
                                AND json_extract(e.details, '$.client_id') = ?7))
                       AND (?8 OR e.institution IN (SELECT value FROM json_each(?9))
                            OR (e.institution IS NULL AND EXISTS (
                                SELECT 1 FROM json_each(e.subjects) j
                                WHERE j.value IN (
                                    SELECT r.person_id FROM roles r JOIN institutions i ON i.id = r.institution_id
                                    WHERE i.number IN (SELECT value FROM json_each(?9))
                                    UNION
                                    SELECT c.contact_id FROM contacts c JOIN institutions i ON i.id = c.institution_id
                                    WHERE i.number IN (SELECT value FROM json_each(?9))))))
                     ORDER BY e.seq DESC LIMIT ?10",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map(
                    params![
                        q.after,
                        q.action,
                        q.from_us,
                        q.to_us,
                        q.institution,
                        q.person,
                        q.service,
                        all,
                        numbers,
                        q.limit as i64
                    ],
                    event_row,
                )
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn audit_key(&self) -> Result<Option<AuditKey>> {
        self.read(|conn| {
            conn.cached_row(
                "SELECT id, public_key, sealed_private, created_at_us FROM audit_keys ORDER BY created_at_us, id LIMIT 1",
                [],
                |r| {
                    let public: Vec<u8> = r.get(1)?;
                    Ok(AuditKey {
                        id: r.get(0)?,
                        public: public.try_into().unwrap_or([0; 32]),
                        sealed_private: r.get(2)?,
                        created_at_us: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn insert_audit_key(
        &self,
        key: &AuditKey,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        let key = key.clone();
        self.write(move |conn| {
            let exists: bool = conn
                .cached_row("SELECT EXISTS (SELECT 1 FROM audit_keys)", [], |r| r.get(0))
                .map_err(db)?;
            if exists {
                return Ok(());
            }
            conn.execute(
                "INSERT INTO audit_keys (id, public_key, sealed_private, created_at_us) VALUES (?1, ?2, ?3, ?4)",
                params![key.id, &key.public[..], key.sealed_private, key.created_at_us],
            )
            .map_err(db)?;
            let (sealed, _) = chain::seal(head(conn)?, at, vec![event]);
            insert_audit(conn, &sealed)
        })
        .await
    }

    async fn add_checkpoint(&self, cp: &Checkpoint) -> Result<()> {
        let cp = cp.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO audit_checkpoints (seq, hash, at_us, key_id, signature) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (seq) DO NOTHING",
                params![cp.seq, &cp.hash[..], cp.at_us, cp.key_id, cp.signature],
            )
            .map(drop)
            .map_err(db)
        })
        .await
    }

    async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>> {
        Ok(self
            .checkpoints_where("ORDER BY seq DESC LIMIT 1", 0)
            .await?
            .pop())
    }

    async fn checkpoint_before(&self, at_us: i64) -> Result<Option<Checkpoint>> {
        Ok(self
            .checkpoints_where("WHERE at_us < ?1 ORDER BY seq DESC LIMIT 1", at_us)
            .await?
            .pop())
    }

    async fn prune_audit(
        &self,
        through_seq: i64,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<u64> {
        self.write(move |conn| {
            let removed = conn
                .execute(
                    "DELETE FROM audit_events WHERE seq <= ?1",
                    params![through_seq],
                )
                .map_err(db)?;
            let mut event = event;
            event.details["removed"] = serde_json::json!(removed);
            let (sealed, _) = chain::seal(head(conn)?, at, vec![event]);
            insert_audit(conn, &sealed)?;
            Ok(removed as u64)
        })
        .await
    }

    async fn audit_counts_through(&self, through_seq: i64) -> Result<Vec<(String, u64)>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT action, count(*) FROM audit_events WHERE seq <= ?1 GROUP BY action ORDER BY action",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([through_seq], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn redacted_through(&self, action: &str) -> Result<i64> {
        let action = action.to_owned();
        self.read(move |conn| redacted_through(conn, &action)).await
    }

    async fn redact_audit(
        &self,
        action: &str,
        after: i64,
        through: i64,
        at_us: i64,
        limit: Option<usize>,
    ) -> Result<(u64, i64)> {
        // The (action, seq) index of 0011 walks exactly the range.
        const DUE: &str = "FROM audit_events WHERE action = ?1 AND seq > ?2 AND seq <= ?3
                           AND content_hash IS NOT NULL AND redacted_at_us IS NULL";
        let action = action.to_owned();
        let Some(limit) = limit else {
            return self
                .read(move |conn| {
                    let n: i64 = conn
                        .prepare_cached(&format!("SELECT count(*) {DUE}"))
                        .and_then(|mut s| {
                            s.query_row(params![action, after, through], |r| r.get(0))
                        })
                        .map_err(db)?;
                    Ok((n as u64, redacted_through(conn, &action)?))
                })
                .await;
        };
        self.write(move |conn| {
            let last: Option<i64> = conn
                .prepare_cached(&format!(
                    "SELECT max(seq) FROM (SELECT seq {DUE} ORDER BY seq LIMIT ?4)"
                ))
                .and_then(|mut s| {
                    s.query_row(params![action, after, through, limit as i64], |r| r.get(0))
                })
                .map_err(db)?;
            let upto = last.unwrap_or(through);
            let n = conn
                .prepare_cached(&format!(
                    "UPDATE audit_events SET actor = '', institution = NULL, subjects = ?5,
                     details = ?6, redacted_at_us = ?7
                     WHERE seq IN (SELECT seq {DUE} AND seq <= ?4)"
                ))
                .and_then(|mut s| {
                    s.execute(params![
                        action,
                        after,
                        through,
                        upto,
                        chain::REDACTED_SUBJECTS,
                        chain::REDACTED_DETAILS,
                        at_us
                    ])
                })
                .map_err(db)? as u64;
            let upto = if (n as usize) < limit { through } else { upto };
            conn.prepare_cached(
                "INSERT INTO audit_redactions (action, through_seq) VALUES (?1, ?2)
                 ON CONFLICT (action) DO UPDATE SET through_seq = max(through_seq, excluded.through_seq)",
            )
            .and_then(|mut s| s.execute(params![action, upto]))
            .map_err(db)?;
            Ok((n, upto))
        })
        .await
    }

    async fn checkpoints(&self, after: i64, limit: usize) -> Result<Vec<Checkpoint>> {
        self.checkpoints_where(&format!("WHERE seq > ?1 ORDER BY seq LIMIT {limit}"), after)
            .await
    }
}

fn redacted_through(conn: &Connection, action: &str) -> Result<i64> {
    conn.prepare_cached("SELECT through_seq FROM audit_redactions WHERE action = ?1")
        .and_then(|mut s| s.query_row([action], |r| r.get(0)).optional())
        .map(|v| v.unwrap_or(0))
        .map_err(db)
}

impl SqliteStore {
    async fn checkpoints_where(&self, tail: &str, after: i64) -> Result<Vec<Checkpoint>> {
        let sql =
            format!("SELECT seq, hash, at_us, key_id, signature FROM audit_checkpoints {tail}");
        let with_param = tail.contains("?1");
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
            let map = |r: &rusqlite::Row<'_>| {
                let hash: Vec<u8> = r.get(1)?;
                Ok(Checkpoint {
                    seq: r.get(0)?,
                    hash: hash.try_into().unwrap_or([0xff; 32]),
                    at_us: r.get(2)?,
                    key_id: r.get(3)?,
                    signature: r.get(4)?,
                })
            };
            let rows = if with_param {
                stmt.query_map(params![after], map)
            } else {
                stmt.query_map([], map)
            }
            .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn dialect(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<Migrated> {
        self.write(|conn| {
            conn.execute_batch(SCHEMA_MIGRATIONS_DDL).map_err(db)?;
            let current: i64 = conn
                .cached_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))
                .map_err(db)?;
            let known = SQLITE_MIGRATIONS.last().map(|m| m.version).unwrap_or(0);
            if current > known {
                return Err(Error::SchemaTooNew { found: current, known });
            }
            let mut applied = Vec::new();
            for m in SQLITE_MIGRATIONS.iter().filter(|m| m.version > current) {
                conn.execute_batch(m.sql).map_err(|e| Error::Store(format!("migration {}: {e}", m.name)))?;
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, datetime('now'))",
                    params![m.version, m.name],
                )
                .map_err(db)?;
                applied.push(m.name.to_owned());
            }
            Ok(Migrated { applied, version: known })
        })
        .await
    }

    async fn refresh_statistics(&self) -> Result<()> {
        self.write(|conn| conn.execute_batch("PRAGMA optimize").map_err(db))
            .await
    }

    async fn ping(&self) -> Result<()> {
        self.read(|conn| conn.cached_row("SELECT 1", [], |_| Ok(())).map_err(db))
            .await
    }
}

/// A plain connection, for tools and tests that need raw SQL (tamper tests,
/// `anonymize`).
pub struct RawConnection(Connection);

impl RawConnection {
    pub fn open(path: &str) -> Result<Self> {
        open_conn(Path::new(path), READER_CACHE_KIB).map(RawConnection)
    }
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        self.0.execute_batch(sql).map_err(db)
    }
}
