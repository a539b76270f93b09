//! Lifecycle jobs, leases and the person's data on PostgreSQL: the SQLite
//! implementation (`sqlite/lifecycle.rs`) with set-based statements.

use super::identity::audit;
use super::{db, execute, query, PgStore};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tilgang_core::audit::{Event, NewEvent};
use tilgang_core::store::changes::NewChange;
use tilgang_core::store::lifecycle::{
    with_changed, Affected, LifecycleStore, PersonData, PERSON_TABLES,
};
use tilgang_core::Result;
use time::{Date, OffsetDateTime};

/// As on SQLite; `Leder` and `Ledelse` are `rights::ADMIN_ROLES`.
const UNUSED: &str = "SELECT p.id, p.user_id FROM accounts a JOIN persons p ON p.id = a.person_id
     WHERE a.closed_at IS NULL AND p.inactive_since IS NULL
       AND coalesce(a.last_login_at, a.password_set_at, a.created_at) <
           CASE WHEN EXISTS (SELECT 1 FROM roles r WHERE r.person_id = p.id AND r.ended_on IS NULL AND r.actor <> 'Ekstern')
                  OR EXISTS (SELECT 1 FROM contacts c WHERE c.contact_id = p.id AND c.ended_on IS NULL)
                THEN $1::bigint ELSE $2::bigint END
       AND NOT EXISTS (SELECT 1 FROM roles r WHERE r.person_id = p.id AND r.ended_on IS NULL AND r.role IN ('Leder', 'Ledelse'))
       AND NOT EXISTS (SELECT 1 FROM right_grants g WHERE g.person_id = p.id)
       AND NOT EXISTS (SELECT 1 FROM operator_grants o WHERE o.person_id = p.id)
       AND NOT EXISTS (SELECT 1 FROM municipality_grants g WHERE g.person_id = p.id)
     ORDER BY p.id";

fn affected(rows: Vec<tokio_postgres::Row>) -> Result<Vec<Affected>> {
    rows.iter()
        .map(|r| {
            Ok(Affected {
                person_id: r.try_get(0).map_err(db)?,
                user_id: r.try_get(1).map_err(db)?,
            })
        })
        .collect()
}

fn ids_of(rows: Vec<tokio_postgres::Row>) -> Result<Vec<i64>> {
    rows.iter().map(|r| r.try_get(0).map_err(db)).collect()
}

/// Removes every way to log in (see the SQLite twin).
async fn clear_credentials<C: GenericClient>(c: &C, ids: &[i64], now: i64) -> Result<()> {
    execute(
        c,
        "UPDATE accounts SET password_hash = NULL, activation_hash = NULL, activation_expires_at = NULL,
         updated_at = $2 WHERE person_id = ANY($1)",
        &[&ids, &now],
    )
    .await?;
    for t in [
        "sessions",
        "second_factors",
        "recovery_codes",
        "factor_ceremonies",
        "login_cards",
    ] {
        execute(
            c,
            &format!("DELETE FROM {t} WHERE person_id = ANY($1)"),
            &[&ids],
        )
        .await?;
    }
    Ok(())
}

#[async_trait]
impl LifecycleStore for PgStore {
    async fn take_lease(
        &self,
        job: &str,
        holder: &str,
        now: i64,
        lease_s: i64,
        min_interval_s: i64,
    ) -> Result<bool> {
        let n = execute(
            &self.conn().await?,
            "INSERT INTO job_leases (job, holder, lease_until) VALUES ($1, $2, $3::bigint + $4::bigint)
             ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until
             WHERE job_leases.lease_until <= $3::bigint
               AND ($5::bigint <= 0 OR job_leases.last_run_at IS NULL OR job_leases.last_run_at <= $3::bigint - $5::bigint)",
            &[&job, &holder, &now, &lease_s, &min_interval_s],
        )
        .await?;
        Ok(n == 1)
    }

    async fn release_lease(&self, job: &str, holder: &str, now: i64, ran: bool) -> Result<()> {
        execute(
            &self.conn().await?,
            "UPDATE job_leases SET lease_until = 0,
             last_run_at = CASE WHEN $4::boolean THEN $3::bigint ELSE last_run_at END
             WHERE job = $1 AND holder = $2",
            &[&job, &holder, &now, &ran],
        )
        .await
        .map(drop)
    }

    async fn unused_accounts(&self, before: i64, before_external: i64) -> Result<Vec<Affected>> {
        affected(query(&self.conn().await?, UNUSED, &[&before, &before_external]).await?)
    }

    async fn close_accounts(
        &self,
        ids: &[i64],
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<u64> {
        mark_and_clear(
            self,
            "UPDATE accounts SET closed_at = $2, updated_at = $2
             WHERE person_id = ANY($1) AND closed_at IS NULL RETURNING person_id",
            ids,
            at,
            event,
        )
        .await
    }

    async fn archivable(&self, before: Date) -> Result<Vec<Affected>> {
        affected(
            query(
                &self.conn().await?,
                "SELECT id, user_id FROM persons WHERE inactive_since < $1 AND archived_at IS NULL ORDER BY id",
                &[&before],
            )
            .await?,
        )
    }

    async fn archive_persons(
        &self,
        ids: &[i64],
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<u64> {
        mark_and_clear(self, "UPDATE persons SET archived_at = $2
             WHERE id = ANY($1) AND archived_at IS NULL AND inactive_since IS NOT NULL RETURNING id", ids, at, event).await
    }

    async fn erasable(&self, before: Date) -> Result<Vec<Affected>> {
        affected(
            query(
                &self.conn().await?,
                "SELECT id, user_id FROM persons WHERE inactive_since < $1 AND erased_at IS NULL ORDER BY id",
                &[&before],
            )
            .await?,
        )
    }

    async fn erase_persons(&self, ids: &[i64], at: OffsetDateTime, event: NewEvent) -> Result<u64> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let now = at.unix_timestamp();
        // The user ids the providers know, read before they are replaced:
        // `deleted` at every institution where the person held a role or a
        // contact relation.
        let deleted = query(
            &tx,
            "SELECT DISTINCT i.number, p.id, p.user_id FROM persons p
             JOIN (SELECT institution_id, person_id FROM roles
                   UNION SELECT institution_id, pupil_id FROM contacts
                   UNION SELECT institution_id, contact_id FROM contacts) l ON l.person_id = p.id
             JOIN institutions i ON i.id = l.institution_id
             WHERE p.id = ANY($1) AND p.inactive_since IS NOT NULL AND p.erased_at IS NULL
             ORDER BY p.id, i.number",
            &[&ids],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(NewChange::deleted(
                r.try_get(0).map_err(db)?,
                r.try_get(1).map_err(db)?,
                r.try_get(2).map_err(db)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
        // Licences name a person by user id, which erasure replaces.
        execute(
            &tx,
            "DELETE FROM licences WHERE scope = 'person' AND target IN
             (SELECT user_id FROM persons WHERE id = ANY($1) AND inactive_since IS NOT NULL AND erased_at IS NULL)",
            &[&ids],
        )
        .await?;
        let erased = ids_of(
            query(
                &tx,
                "UPDATE persons SET user_id = 'erased-' || id::text, given_name = '', family_name = '',
                 alias_given_name = NULL, alias_family_name = NULL, cpr_enc = NULL, cpr_hash = NULL,
                 birth_date = NULL, gender = NULL, email = NULL, phones = NULL, address = NULL,
                 local_person_id = NULL, photo_id = NULL, digest = 0, updated_at = $3,
                 archived_at = coalesce(archived_at, $2), erased_at = $2
                 WHERE id = ANY($1) AND inactive_since IS NOT NULL AND erased_at IS NULL RETURNING id",
                &[&ids, &now, &at],
            )
            .await?,
        )?;
        execute(
            &tx,
            "UPDATE roles SET student_number = NULL, initials = NULL, occupation = NULL WHERE person_id = ANY($1)",
            &[&erased],
        )
        .await?;
        clear_credentials(&tx, &erased, now).await?;
        for t in [
            "accounts",
            "right_grants",
            "operator_grants",
            "municipality_grants",
            "oidc_tokens",
            "oidc_role_choices",
        ] {
            execute(
                &tx,
                &format!("DELETE FROM {t} WHERE person_id = ANY($1)"),
                &[&erased],
            )
            .await?;
        }
        let changed = erased.len() as u64;
        audit(&tx, at, vec![with_changed(event, changed)]).await?;
        // After the audit head, the lock order of every changes writer.
        super::changes::insert_changes(&tx, &deleted, at).await?;
        tx.commit().await.map_err(db)?;
        Ok(changed)
    }

    async fn person_data(&self, person_id: i64) -> Result<Option<PersonData>> {
        let c = self.conn().await?;
        let head = query(
            &c,
            "SELECT cpr_enc, inactive_since IS NULL, erased_at IS NOT NULL FROM persons WHERE id = $1",
            &[&person_id],
        )
        .await?;
        let Some(h) = head.first() else {
            return Ok(None);
        };
        let cpr_enc: Option<Vec<u8>> = h.try_get(0).map_err(db)?;
        let delivered: bool = h.try_get(1).map_err(db)?;
        let erased: bool = h.try_get(2).map_err(db)?;
        let mut tables = serde_json::Map::new();
        for (table, col) in PERSON_TABLES {
            let rows = query(
                &c,
                &format!("SELECT row_to_json(t)::text FROM {table} t WHERE {col} = $1"),
                &[&person_id],
            )
            .await?;
            let mut out = Vec::new();
            for r in rows {
                let text: String = r.try_get(0).map_err(db)?;
                out.push(
                    serde_json::from_str::<serde_json::Value>(&text)
                        .map_err(|e| tilgang_core::Error::Store(format!("{table} as JSON: {e}")))?,
                );
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
    }

    async fn person_id(&self, user_id: &str) -> Result<Option<i64>> {
        let rows = query(
            &self.conn().await?,
            "SELECT id FROM persons WHERE user_id = $1",
            &[&user_id],
        )
        .await?;
        rows.first().map(|r| r.try_get(0).map_err(db)).transpose()
    }

    async fn person_audit(&self, person_id: i64) -> Result<Vec<Event>> {
        let rows = query(
            &self.conn().await?,
            "SELECT seq, at_us, actor, action, institution, subjects, details, prev_hash, hash,
                     content_hash, redacted_at_us
             FROM audit_events
             WHERE position(',' || $1::bigint::text || ',' in ',' || trim(subjects, '[]') || ',') > 0
                OR actor = 'person:' || $1::bigint::text
             ORDER BY seq",
            &[&person_id],
        )
        .await?;
        rows.iter().map(super::audit::event_row).collect()
    }
}

/// Runs `sql` (`$1` the persons, `$2` now, returning the ids it changed);
/// the changed persons' credentials go too. One transaction with the job's
/// audit event, which records how many changed.
async fn mark_and_clear(
    store: &PgStore,
    sql: &str,
    ids: &[i64],
    at: OffsetDateTime,
    event: NewEvent,
) -> Result<u64> {
    let mut c = store.conn().await?;
    let tx = c.transaction().await.map_err(db)?;
    let now = at.unix_timestamp();
    let marked = ids_of(query(&tx, sql, &[&ids, &now]).await?)?;
    clear_credentials(&tx, &marked, now).await?;
    let changed = marked.len() as u64;
    audit(&tx, at, vec![with_changed(event, changed)]).await?;
    tx.commit().await.map_err(db)?;
    Ok(changed)
}
