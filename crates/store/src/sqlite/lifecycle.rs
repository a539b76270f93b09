//! Lifecycle jobs, leases and the person's data on SQLite.

use super::identity::audit;
use super::{db, ts, CachedRow, SqliteStore};
use async_trait::async_trait;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};
use tilgang_core::audit::{Event, NewEvent};
use tilgang_core::store::changes::NewChange;
use tilgang_core::store::lifecycle::{
    with_changed, Affected, LifecycleStore, PersonData, PERSON_TABLES,
};
use tilgang_core::Result;
use time::{Date, OffsetDateTime};

/// Active roles that count as special rights (`rights::ADMIN_ROLES`):
/// their accounts are never closed for disuse.
const UNUSED: &str = "SELECT p.id, p.user_id FROM accounts a JOIN persons p ON p.id = a.person_id
     WHERE a.closed_at IS NULL AND p.inactive_since IS NULL
       AND coalesce(a.last_login_at, a.password_set_at, a.created_at) <
           CASE WHEN EXISTS (SELECT 1 FROM roles r WHERE r.person_id = p.id AND r.ended_on IS NULL AND r.actor <> 'Ekstern')
                  OR EXISTS (SELECT 1 FROM contacts c WHERE c.contact_id = p.id AND c.ended_on IS NULL)
                THEN ?1 ELSE ?2 END
       AND NOT EXISTS (SELECT 1 FROM roles r WHERE r.person_id = p.id AND r.ended_on IS NULL AND r.role IN ('Leder', 'Ledelse'))
       AND NOT EXISTS (SELECT 1 FROM right_grants g WHERE g.person_id = p.id)
       AND NOT EXISTS (SELECT 1 FROM operator_grants o WHERE o.person_id = p.id)
       AND NOT EXISTS (SELECT 1 FROM municipality_grants g WHERE g.person_id = p.id)
     ORDER BY p.id";

fn affected(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<Vec<Affected>> {
    let mut stmt = conn.prepare(sql).map_err(db)?;
    let rows = stmt
        .query_map(p, |r| {
            Ok(Affected {
                person_id: r.get(0)?,
                user_id: r.get(1)?,
            })
        })
        .map_err(db)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
}

/// Removes every way to log in: password, activation code, sessions,
/// second factors, recovery codes, ceremonies, login card.
fn clear_credentials(conn: &Connection, id: i64, now: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE accounts SET password_hash = NULL, activation_hash = NULL, activation_expires_at = NULL,
         updated_at = ?2 WHERE person_id = ?1",
    )
    .and_then(|mut s| s.execute(params![id, now]))
    .map_err(db)?;
    for t in [
        "sessions",
        "second_factors",
        "recovery_codes",
        "factor_ceremonies",
        "login_cards",
    ] {
        conn.prepare_cached(&format!("DELETE FROM {t} WHERE person_id = ?1"))
            .and_then(|mut s| s.execute([id]))
            .map_err(db)?;
    }
    Ok(())
}

/// Runs `sql` (`?1` the person, `?2` now) for each person; where it changed
/// a row, the person's credentials go too. One transaction with the job's
/// audit event, which records how many changed.
async fn mark_and_clear(
    store: &SqliteStore,
    sql: &'static str,
    ids: &[i64],
    at: OffsetDateTime,
    event: NewEvent,
) -> Result<u64> {
    let ids = ids.to_vec();
    store
        .write(move |conn| {
            let now = at.unix_timestamp();
            let mut changed = 0u64;
            for id in ids {
                let n = conn
                    .prepare_cached(sql)
                    .and_then(|mut s| s.execute(params![id, now]))
                    .map_err(db)?;
                if n > 0 {
                    clear_credentials(conn, id, now)?;
                    changed += 1;
                }
            }
            audit(conn, at, vec![with_changed(event, changed)])?;
            Ok(changed)
        })
        .await
}

fn erase_one(conn: &Connection, id: i64, at: OffsetDateTime) -> Result<bool> {
    let now = at.unix_timestamp();
    // Licences name a person by user id, which erasure replaces.
    conn.prepare_cached(
        "DELETE FROM licences WHERE scope = 'person' AND target IN
         (SELECT user_id FROM persons WHERE id = ?1 AND inactive_since IS NOT NULL AND erased_at IS NULL)",
    )
    .and_then(|mut s| s.execute([id]))
    .map_err(db)?;
    let n = conn
        .prepare_cached(
            "UPDATE persons SET user_id = 'erased-' || id, given_name = '', family_name = '',
             alias_given_name = NULL, alias_family_name = NULL, cpr_enc = NULL, cpr_hash = NULL,
             birth_date = NULL, gender = NULL, email = NULL, phones = NULL, address = NULL,
             local_person_id = NULL, photo_id = NULL, digest = 0, updated_at = ?3,
             archived_at = coalesce(archived_at, ?2), erased_at = ?2
             WHERE id = ?1 AND inactive_since IS NOT NULL AND erased_at IS NULL",
        )
        .and_then(|mut s| s.execute(params![id, now, ts(at)]))
        .map_err(db)?;
    if n == 0 {
        return Ok(false);
    }
    conn.prepare_cached(
        "UPDATE roles SET student_number = NULL, initials = NULL, occupation = NULL WHERE person_id = ?1",
    )
    .and_then(|mut s| s.execute([id]))
    .map_err(db)?;
    clear_credentials(conn, id, now)?;
    for t in [
        "accounts",
        "right_grants",
        "operator_grants",
        "municipality_grants",
        "oidc_tokens",
        "oidc_role_choices",
    ] {
        conn.prepare_cached(&format!("DELETE FROM {t} WHERE person_id = ?1"))
            .and_then(|mut s| s.execute([id]))
            .map_err(db)?;
    }
    Ok(true)
}

/// The changes-feed rows of erasing a person (if erasable): `deleted` at
/// every institution where they held a role or a contact relation.
fn deletions(conn: &Connection, id: i64) -> Result<Vec<NewChange>> {
    let mut stmt = conn
        .prepare_cached(
            // One indexed branch per link, the person by primary key only
            // (`+` keeps SQLite off the index of inactive persons, which it
            // would otherwise scan whole for each person erased).
            "SELECT i.number, p.user_id FROM roles l JOIN institutions i ON i.id = l.institution_id
               JOIN persons p ON p.id = l.person_id
               WHERE l.person_id = ?1 AND p.id = ?1 AND +p.inactive_since IS NOT NULL AND p.erased_at IS NULL
             UNION SELECT i.number, p.user_id FROM contacts l JOIN institutions i ON i.id = l.institution_id
               JOIN persons p ON p.id = l.pupil_id
               WHERE l.pupil_id = ?1 AND p.id = ?1 AND +p.inactive_since IS NOT NULL AND p.erased_at IS NULL
             UNION SELECT i.number, p.user_id FROM contacts l JOIN institutions i ON i.id = l.institution_id
               JOIN persons p ON p.id = l.contact_id
               WHERE l.contact_id = ?1 AND p.id = ?1 AND +p.inactive_since IS NOT NULL AND p.erased_at IS NULL
             ORDER BY 1",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map([id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(db)?;
    let mut out = Vec::new();
    for r in rows {
        let (institution, user_id) = r.map_err(db)?;
        out.push(NewChange::deleted(institution, id, user_id));
    }
    Ok(out)
}

/// One row as a JSON object: blobs as hex.
fn row_json(names: &[String], r: &rusqlite::Row<'_>) -> rusqlite::Result<serde_json::Value> {
    let mut m = serde_json::Map::new();
    for (i, name) in names.iter().enumerate() {
        let v = match r.get_ref(i)? {
            ValueRef::Null => serde_json::Value::Null,
            ValueRef::Integer(n) => n.into(),
            ValueRef::Real(f) => f.into(),
            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
            ValueRef::Blob(b) => b
                .iter()
                .map(|x| format!("{x:02x}"))
                .collect::<String>()
                .into(),
        };
        m.insert(name.clone(), v);
    }
    Ok(serde_json::Value::Object(m))
}

#[async_trait]
impl LifecycleStore for SqliteStore {
    async fn take_lease(
        &self,
        job: &str,
        holder: &str,
        now: i64,
        lease_s: i64,
        min_interval_s: i64,
    ) -> Result<bool> {
        let (job, holder) = (job.to_owned(), holder.to_owned());
        self.write(move |conn| {
            let n = conn
                .execute(
                    "INSERT INTO job_leases (job, holder, lease_until) VALUES (?1, ?2, ?3 + ?4)
                     ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until
                     WHERE job_leases.lease_until <= ?3
                       AND (?5 <= 0 OR job_leases.last_run_at IS NULL OR job_leases.last_run_at <= ?3 - ?5)",
                    params![job, holder, now, lease_s, min_interval_s],
                )
                .map_err(db)?;
            Ok(n == 1)
        })
        .await
    }

    async fn release_lease(&self, job: &str, holder: &str, now: i64, ran: bool) -> Result<()> {
        let (job, holder) = (job.to_owned(), holder.to_owned());
        self.write(move |conn| {
            conn.execute(
                "UPDATE job_leases SET lease_until = 0,
                 last_run_at = CASE WHEN ?4 THEN ?3 ELSE last_run_at END
                 WHERE job = ?1 AND holder = ?2",
                params![job, holder, now, ran],
            )
            .map_err(db)
            .map(drop)
        })
        .await
    }

    async fn unused_accounts(&self, before: i64, before_external: i64) -> Result<Vec<Affected>> {
        self.read(move |conn| affected(conn, UNUSED, params![before, before_external]))
            .await
    }

    async fn close_accounts(
        &self,
        ids: &[i64],
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<u64> {
        mark_and_clear(self, "UPDATE accounts SET closed_at = ?2, updated_at = ?2 WHERE person_id = ?1 AND closed_at IS NULL", ids, at, event).await
    }

    async fn archivable(&self, before: Date) -> Result<Vec<Affected>> {
        let before = before.to_string();
        self.read(move |conn| {
            affected(
                conn,
                "SELECT id, user_id FROM persons WHERE inactive_since < ?1 AND archived_at IS NULL ORDER BY id",
                [before],
            )
        })
        .await
    }

    async fn archive_persons(
        &self,
        ids: &[i64],
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<u64> {
        mark_and_clear(self, "UPDATE persons SET archived_at = ?2 WHERE id = ?1 AND archived_at IS NULL AND inactive_since IS NOT NULL", ids, at, event).await
    }

    async fn erasable(&self, before: Date) -> Result<Vec<Affected>> {
        let before = before.to_string();
        self.read(move |conn| {
            affected(
                conn,
                "SELECT id, user_id FROM persons WHERE inactive_since < ?1 AND erased_at IS NULL ORDER BY id",
                [before],
            )
        })
        .await
    }

    async fn erase_persons(&self, ids: &[i64], at: OffsetDateTime, event: NewEvent) -> Result<u64> {
        let ids = ids.to_vec();
        self.write(move |conn| {
            let mut changed = 0u64;
            let mut deleted = Vec::new();
            for id in ids {
                // The user id the providers know, read before it is replaced.
                deleted.extend(deletions(conn, id)?);
                if erase_one(conn, id, at)? {
                    changed += 1;
                }
            }
            audit(conn, at, vec![with_changed(event, changed)])?;
            super::changes::insert_changes(conn, &deleted, at)?;
            Ok(changed)
        })
        .await
    }

    async fn person_data(&self, person_id: i64) -> Result<Option<PersonData>> {
        self.read(move |conn| {
            let head: Option<(Option<Vec<u8>>, bool, bool)> = conn
                .cached_row(
                    "SELECT cpr_enc, inactive_since IS NULL, erased_at IS NOT NULL FROM persons WHERE id = ?1",
                    [person_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(db)?;
            let Some((cpr_enc, delivered, erased)) = head else {
                return Ok(None);
            };
            let mut tables = serde_json::Map::new();
            for (table, col) in PERSON_TABLES {
                let mut stmt = conn
                    .prepare(&format!("SELECT * FROM {table} WHERE {col} = ?1"))
                    .map_err(db)?;
                let names: Vec<String> =
                    stmt.column_names().iter().map(|c| (*c).to_owned()).collect();
                let mut out = Vec::new();
                let mut rows = stmt.query([person_id]).map_err(db)?;
                while let Some(r) = rows.next().map_err(db)? {
                    out.push(row_json(&names, r).map_err(db)?);
                }
                let key = if *table == "contacts" {
                    format!("{table}.{col}")
                } else {
                    (*table).to_owned()
                };
                tables.insert(key, out.into());
            }
            Ok(Some(PersonData {
                person_id,
                tables,
                cpr_enc,
                delivered,
                erased,
            }))
        })
        .await
    }

    async fn person_id(&self, user_id: &str) -> Result<Option<i64>> {
        let user_id = user_id.to_owned();
        self.read(move |conn| {
            conn.cached_row(
                "SELECT id FROM persons WHERE user_id = ?1",
                [user_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn person_audit(&self, person_id: i64) -> Result<Vec<Event>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT seq, at_us, actor, action, institution, subjects, details, prev_hash, hash,
                     content_hash, redacted_at_us
                     FROM audit_events
                     WHERE instr(',' || trim(subjects, '[]') || ',', ',' || ?1 || ',') > 0
                        OR actor = 'person:' || ?1
                     ORDER BY seq",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map([person_id], super::event_row)
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }
}
