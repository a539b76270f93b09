//! The changes feed on SQLite: rows appended in the writer's transaction
//! (one writer at a time, so seq order is commit order), pages by cursor.

use super::{db, CachedRow, SqliteStore};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use tilgang_core::store::changes::{ChangeKind, ChangeOp, ChangesStore, NewChange, StoredChange};
use tilgang_core::{Error, Result};
use time::OffsetDateTime;

/// Appends `rows` numbered from the counter row; user ids not given are
/// read from `persons` (before an erasure replaces them).
pub(crate) fn insert_changes(
    conn: &Connection,
    rows: &[NewChange],
    at: OffsetDateTime,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let n = rows.len() as i64;
    let last: i64 = conn
        .prepare_cached("UPDATE changes_head SET seq = seq + ?1 WHERE id = 1 RETURNING seq")
        .and_then(|mut s| s.query_row([n], |r| r.get(0)))
        .map_err(db)?;
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO changes (seq, at, institution, kind, op, record, person_id, user_id,
             pupil_id, pupil_user_id, actors, grade)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,
                     coalesce(?8, (SELECT user_id FROM persons WHERE id = ?7)),
                     ?9, coalesce(?10, (SELECT user_id FROM persons WHERE id = ?9)), ?11, ?12)",
        )
        .map_err(db)?;
    let at = at.unix_timestamp();
    for (i, c) in rows.iter().enumerate() {
        stmt.execute(params![
            last - n + 1 + i as i64,
            at,
            c.institution,
            c.kind.as_str(),
            c.op.as_str(),
            c.record,
            c.person_id,
            c.user_id,
            c.pupil_id,
            c.pupil_user_id,
            c.actors,
            c.grade,
        ])
        .map_err(db)?;
    }
    Ok(())
}

pub(crate) fn change_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredChange> {
    let bad = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown change {what}").into(),
        )
    };
    let kind: String = r.get(3)?;
    let op: String = r.get(4)?;
    Ok(StoredChange {
        seq: r.get(0)?,
        at: r.get(1)?,
        change: NewChange {
            institution: r.get(2)?,
            kind: ChangeKind::parse(&kind).ok_or_else(|| bad(3, "kind"))?,
            op: ChangeOp::parse(&op).ok_or_else(|| bad(4, "op"))?,
            record: r.get(5)?,
            person_id: r.get(6)?,
            user_id: r.get(7)?,
            pupil_id: r.get(8)?,
            pupil_user_id: r.get(9)?,
            actors: r.get(10)?,
            grade: r.get(11)?,
        },
    })
}

#[async_trait]
impl ChangesStore for SqliteStore {
    async fn changes_after(
        &self,
        after: i64,
        institutions: &[String],
        limit: usize,
    ) -> Result<Vec<StoredChange>> {
        if institutions.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let list = serde_json::to_string(institutions).map_err(|e| Error::Store(e.to_string()))?;
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, at, institution, kind, op, record, person_id, user_id, pupil_id,
                     pupil_user_id, actors, grade FROM changes
                     WHERE seq > ?1 AND institution IN (SELECT value FROM json_each(?2))
                     ORDER BY seq LIMIT ?3",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map(params![after, list, limit as i64], change_row)
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn changes_head(&self) -> Result<i64> {
        self.read(|conn| {
            conn.cached_row("SELECT seq FROM changes_head WHERE id = 1", [], |r| {
                r.get(0)
            })
            .map_err(db)
        })
        .await
    }

    async fn changes_pruned_through(&self) -> Result<i64> {
        self.read(|conn| {
            conn.cached_row(
                "SELECT pruned_through FROM changes_retention WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .map_err(db)
        })
        .await
    }

    async fn changes_before(&self, before: i64) -> Result<Option<(i64, u64)>> {
        self.read(move |conn| {
            // Walks the old rows only (times grow with seq), not the table.
            let newer: Option<i64> = conn
                .cached_row(
                    "SELECT seq FROM changes WHERE at >= ?1 ORDER BY seq LIMIT 1",
                    [before],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?;
            let through: Option<i64> = match newer {
                Some(s) => Some(s - 1),
                None => conn
                    .query_row("SELECT max(seq) FROM changes", [], |r| r.get(0))
                    .map_err(db)?,
            };
            let Some(through) = through.filter(|t| *t > 0) else {
                return Ok(None);
            };
            let rows: i64 = conn
                .cached_row(
                    "SELECT count(*) FROM changes WHERE seq <= ?1",
                    [through],
                    |r| r.get(0),
                )
                .map_err(db)?;
            Ok(Some((through, rows as u64)))
        })
        .await
    }

    async fn prune_changes(&self, through: i64, limit: usize) -> Result<u64> {
        self.write(move |conn| {
            let last: Option<i64> = conn
                .cached_row(
                    "SELECT max(seq) FROM (SELECT seq FROM changes WHERE seq <= ?1 ORDER BY seq LIMIT ?2)",
                    params![through, limit as i64],
                    |r| r.get(0),
                )
                .map_err(db)?;
            let upto = last.unwrap_or(through);
            let n = conn
                .execute("DELETE FROM changes WHERE seq <= ?1", [upto])
                .map_err(db)? as u64;
            let upto = if (n as usize) < limit { through } else { upto };
            conn.execute(
                "UPDATE changes_retention SET pruned_through = max(pruned_through, ?1) WHERE id = 1",
                [upto],
            )
            .map_err(db)?;
            Ok(n)
        })
        .await
    }
}
