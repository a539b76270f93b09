//! The audit chain on PostgreSQL: appending (the head row locked so
//! replicas append in order), paging for verify, search, checkpoints and
//! retention.

use super::*;
use crate::group::{self, Write};

pub(crate) fn event_row(r: &Row) -> Result<Event> {
    Ok(Event {
        seq: r.try_get(0).map_err(db)?,
        at_us: r.try_get(1).map_err(db)?,
        actor: r.try_get(2).map_err(db)?,
        action: r.try_get(3).map_err(db)?,
        institution: r.try_get(4).map_err(db)?,
        subjects: r.try_get(5).map_err(db)?,
        details: r.try_get(6).map_err(db)?,
        prev_hash: hash32(r.try_get(7).map_err(db)?, 0xff),
        hash: hash32(r.try_get(8).map_err(db)?, 0xff),
        content_hash: r
            .try_get::<_, Option<Vec<u8>>>(9)
            .map_err(db)?
            .map(|c| hash32(c, 0xff)),
        redacted_at_us: r.try_get(10).map_err(db)?,
    })
}

impl PgStore {
    /// Writes tokens and events in the next group transaction with whatever
    /// else waits in this process (`crate::group`); returns after it
    /// commits.
    pub(crate) async fn write_grouped(&self, write: Write) -> Result<()> {
        self.group
            .submit(&self.group_writer, write, |guard, mut batch| {
                let pool = self.pool.clone();
                tokio::spawn(async move {
                    let outcome = write_group(&pool, batch.take_writes()).await;
                    batch.answer(&outcome);
                    drop(guard);
                });
            })
            .await
    }
}

/// One group transaction: the tokens first, then the head row locked (so
/// other replicas wait for it as briefly as possible), every event sealed
/// after it, the head moved once.
async fn write_group(pool: &Pool, mut writes: Vec<Write>) -> Result<()> {
    let mut c = pool.get().await.map_err(pool_err)?;
    // Dropped uncommitted (on an error), the transaction queues a
    // ROLLBACK ahead of anything the next user of the connection sends.
    let tx = c.transaction().await.map_err(db)?;
    super::oidc::insert_tokens(&tx, &group::take_tokens(&mut writes)).await?;
    let events = group::seal(read_head(&tx, true).await?, writes);
    write_audit(&tx, &events).await?;
    tx.commit().await.map_err(db)
}

#[async_trait]
impl AuditStore for PgStore {
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
        read_head(&self.conn().await?, false).await
    }

    async fn audit_page(&self, after: i64, limit: usize) -> Result<Vec<Event>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = query(
            &self.conn().await?,
            "SELECT seq, at_us, actor, action, institution, subjects, details, prev_hash, hash,
                     content_hash, redacted_at_us
             FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &limit],
        )
        .await?;
        rows.iter().map(event_row).collect()
    }

    async fn audit_search(&self, scope: &Scope, q: &Query) -> Result<Vec<Event>> {
        let (all, numbers): (bool, Vec<String>) = match scope {
            Scope::All => (true, Vec::new()),
            Scope::Institutions(n) => (false, n.clone()),
        };
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        // Each filter is `$n IS NULL OR …`, so one prepared statement
        // serves every combination; the indexes of 0011 carry the
        // selective ones (the GIN index the person filter).
        let rows = query(
            &self.conn().await?,
            "SELECT seq, at_us, actor, action, institution, subjects, details, prev_hash, hash,
                     content_hash, redacted_at_us
             FROM audit_events e
             WHERE ($1::bigint IS NULL OR e.seq < $1)
               AND ($2::text IS NULL OR e.action = $2)
               AND ($3::bigint IS NULL OR e.at_us >= $3)
               AND ($4::bigint IS NULL OR e.at_us < $4)
               AND ($5::text IS NULL OR e.institution = $5)
               AND ($6::bigint IS NULL OR e.subjects::jsonb @> jsonb_build_array($6::bigint))
               AND ($7::text IS NULL OR e.actor = 'service:' || $7
                    OR (jsonb_typeof(e.details::jsonb) = 'object' AND e.details::jsonb ->> 'client_id' = $7))
               AND ($8 OR e.institution = ANY($9)
                    OR (e.institution IS NULL AND EXISTS (
                        SELECT 1 FROM jsonb_array_elements_text(e.subjects::jsonb) j
                        WHERE j.value::bigint IN (
                            SELECT r.person_id FROM roles r JOIN institutions i ON i.id = r.institution_id
                            WHERE i.number = ANY($9)
                            UNION
                            SELECT c.contact_id FROM contacts c JOIN institutions i ON i.id = c.institution_id
                            WHERE i.number = ANY($9)))))
             ORDER BY e.seq DESC LIMIT $10",
            &[
                &q.after,
                &q.action,
                &q.from_us,
                &q.to_us,
                &q.institution,
                &q.person,
                &q.service,
                &all,
                &numbers,
                &limit,
            ],
        )
        .await?;
        rows.iter().map(event_row).collect()
    }

    async fn audit_key(&self) -> Result<Option<AuditKey>> {
        let rows = query(
            &self.conn().await?,
            "SELECT id, public_key, sealed_private, created_at_us FROM audit_keys ORDER BY created_at_us, id LIMIT 1",
            &[],
        )
        .await?;
        rows.first()
            .map(|r| {
                let public: Vec<u8> = r.try_get(1).map_err(db)?;
                Ok(AuditKey {
                    id: r.try_get(0).map_err(db)?,
                    public: public.try_into().unwrap_or([0; 32]),
                    sealed_private: r.try_get(2).map_err(db)?,
                    created_at_us: r.try_get(3).map_err(db)?,
                })
            })
            .transpose()
    }

    async fn insert_audit_key(
        &self,
        key: &AuditKey,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<()> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        // The audit head's row lock orders racing replicas; the first wins.
        let head = read_head(&tx, true).await?;
        if !query(&tx, "SELECT 1 FROM audit_keys LIMIT 1", &[])
            .await?
            .is_empty()
        {
            return tx.commit().await.map_err(db);
        }
        execute(
            &tx,
            "INSERT INTO audit_keys (id, public_key, sealed_private, created_at_us) VALUES ($1, $2, $3, $4)",
            &[&key.id, &&key.public[..], &key.sealed_private, &key.created_at_us],
        )
        .await?;
        let (sealed, _) = chain::seal(head, at, vec![event]);
        write_audit(&tx, &sealed).await?;
        tx.commit().await.map_err(db)
    }

    async fn add_checkpoint(&self, cp: &Checkpoint) -> Result<()> {
        execute(
            &self.conn().await?,
            "INSERT INTO audit_checkpoints (seq, hash, at_us, key_id, signature) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (seq) DO NOTHING",
            &[&cp.seq, &&cp.hash[..], &cp.at_us, &cp.key_id, &cp.signature],
        )
        .await
        .map(drop)
    }

    async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>> {
        let rows = query(
            &self.conn().await?,
            "SELECT seq, hash, at_us, key_id, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?;
        Ok(rows
            .iter()
            .map(checkpoint_row)
            .collect::<Result<Vec<_>>>()?
            .pop())
    }

    async fn checkpoint_before(&self, at_us: i64) -> Result<Option<Checkpoint>> {
        let rows = query(
            &self.conn().await?,
            "SELECT seq, hash, at_us, key_id, signature FROM audit_checkpoints WHERE at_us < $1 ORDER BY seq DESC LIMIT 1",
            &[&at_us],
        )
        .await?;
        Ok(rows
            .iter()
            .map(checkpoint_row)
            .collect::<Result<Vec<_>>>()?
            .pop())
    }

    async fn prune_audit(
        &self,
        through_seq: i64,
        at: OffsetDateTime,
        event: NewEvent,
    ) -> Result<u64> {
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let head = read_head(&tx, true).await?;
        let removed = execute(
            &tx,
            "DELETE FROM audit_events WHERE seq <= $1",
            &[&through_seq],
        )
        .await?;
        let mut event = event;
        event.details["removed"] = serde_json::json!(removed);
        let (sealed, _) = chain::seal(head, at, vec![event]);
        write_audit(&tx, &sealed).await?;
        tx.commit().await.map_err(db)?;
        Ok(removed)
    }

    async fn audit_counts_through(&self, through_seq: i64) -> Result<Vec<(String, u64)>> {
        let rows = query(
            &self.conn().await?,
            "SELECT action, count(*) FROM audit_events WHERE seq <= $1 GROUP BY action ORDER BY action",
            &[&through_seq],
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(db)?,
                    r.try_get::<_, i64>(1).map_err(db)? as u64,
                ))
            })
            .collect()
    }

    async fn redacted_through(&self, action: &str) -> Result<i64> {
        redacted_through(&self.conn().await?, action).await
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
        const DUE: &str = "FROM audit_events WHERE action = $1 AND seq > $2 AND seq <= $3
                           AND content_hash IS NOT NULL AND redacted_at_us IS NULL";
        let Some(limit) = limit else {
            let c = self.conn().await?;
            let n: i64 = query(
                &c,
                &format!("SELECT count(*) {DUE}"),
                &[&action, &after, &through],
            )
            .await?
            .first()
            .map_or(Ok(0), |r| r.try_get(0).map_err(db))?;
            return Ok((n as u64, redacted_through(&c, action).await?));
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let rows = query(
            &tx,
            &format!(
                "WITH due AS (SELECT seq {DUE} ORDER BY seq LIMIT $4),
                 done AS (UPDATE audit_events e SET actor = '', institution = NULL, subjects = $5,
                          details = $6, redacted_at_us = $7
                          FROM due WHERE e.seq = due.seq RETURNING e.seq)
                 SELECT count(*), max(seq) FROM done"
            ),
            &[
                &action,
                &after,
                &through,
                &limit,
                &chain::REDACTED_SUBJECTS,
                &chain::REDACTED_DETAILS,
                &at_us,
            ],
        )
        .await?;
        let (n, upto) = chunk_done(&rows, limit, through)?;
        execute(
            &tx,
            "INSERT INTO audit_redactions (action, through_seq) VALUES ($1, $2)
             ON CONFLICT (action) DO UPDATE
             SET through_seq = greatest(audit_redactions.through_seq, excluded.through_seq)",
            &[&action, &upto],
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok((n as u64, upto))
    }

    async fn checkpoints(&self, after: i64, limit: usize) -> Result<Vec<Checkpoint>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = query(
            &self.conn().await?,
            "SELECT seq, hash, at_us, key_id, signature FROM audit_checkpoints WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &limit],
        )
        .await?;
        rows.iter().map(checkpoint_row).collect()
    }
}

async fn redacted_through<C: GenericClient>(c: &C, action: &str) -> Result<i64> {
    query(
        c,
        "SELECT through_seq FROM audit_redactions WHERE action = $1",
        &[&action],
    )
    .await?
    .first()
    .map_or(Ok(0), |r| r.try_get(0).map_err(db))
}

fn checkpoint_row(r: &Row) -> Result<Checkpoint> {
    let hash: Vec<u8> = r.try_get(1).map_err(db)?;
    Ok(Checkpoint {
        seq: r.try_get(0).map_err(db)?,
        hash: hash.try_into().unwrap_or([0xff; 32]),
        at_us: r.try_get(2).map_err(db)?,
        key_id: r.try_get(3).map_err(db)?,
        signature: r.try_get(4).map_err(db)?,
    })
}
