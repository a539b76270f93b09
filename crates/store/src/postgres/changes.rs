//! The changes feed on PostgreSQL. Seq numbers come from the one-row
//! `changes_head`, updated in the writer's transaction: the row stays
//! locked until commit, so writers (on every replica) commit in seq order
//! and a reader never later finds a row below a cursor it was given.

use super::{db, execute, query, PgStore};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tilgang_core::store::changes::{ChangeKind, ChangeOp, ChangesStore, NewChange, StoredChange};
use tilgang_core::{Error, Result};
use time::OffsetDateTime;

/// Appends `rows` in one statement; user ids not given are read from
/// `persons` (before an erasure replaces them).
pub(crate) async fn insert_changes<C: GenericClient>(
    c: &C,
    rows: &[NewChange],
    at: OffsetDateTime,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let n = i64::try_from(rows.len()).map_err(Error::store)?;
    let last: i64 = query(
        c,
        "UPDATE changes_head SET seq = seq + $1 WHERE id = 1 RETURNING seq",
        &[&n],
    )
    .await?
    .first()
    .ok_or_else(|| Error::Store("changes_head row missing".into()))?
    .try_get(0)
    .map_err(db)?;
    let institution: Vec<&str> = rows.iter().map(|r| r.institution.as_str()).collect();
    let kind: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    let op: Vec<&str> = rows.iter().map(|r| r.op.as_str()).collect();
    let record: Vec<Option<&str>> = rows.iter().map(|r| r.record.as_deref()).collect();
    let person: Vec<Option<i64>> = rows.iter().map(|r| r.person_id).collect();
    let user: Vec<Option<&str>> = rows.iter().map(|r| r.user_id.as_deref()).collect();
    let pupil: Vec<Option<i64>> = rows.iter().map(|r| r.pupil_id).collect();
    let pupil_user: Vec<Option<&str>> = rows.iter().map(|r| r.pupil_user_id.as_deref()).collect();
    let actors: Vec<i16> = rows.iter().map(|r| i16::from(r.actors)).collect();
    let grade: Vec<i16> = rows.iter().map(|r| i16::from(r.grade)).collect();
    let first = last - n;
    let at = at.unix_timestamp();
    query(
        c,
        "INSERT INTO changes (seq, at, institution, kind, op, record, person_id, user_id,
         pupil_id, pupil_user_id, actors, grade)
         SELECT $1 + t.n, $2, t.institution, t.kind, t.op, t.record, t.person,
                coalesce(t.usr, p.user_id), t.pupil, coalesce(t.pupil_usr, q.user_id), t.actors, t.grade
         FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[],
                     $9::bigint[], $10::text[], $11::smallint[], $12::smallint[])
              WITH ORDINALITY AS t(institution, kind, op, record, person, usr, pupil, pupil_usr, actors, grade, n)
         LEFT JOIN persons p ON p.id = t.person
         LEFT JOIN persons q ON q.id = t.pupil",
        &[
            &first,
            &at,
            &institution,
            &kind,
            &op,
            &record,
            &person,
            &user,
            &pupil,
            &pupil_user,
            &actors,
            &grade,
        ],
    )
    .await?;
    Ok(())
}

fn change_row(r: &tokio_postgres::Row) -> Result<StoredChange> {
    let kind: String = r.try_get(3).map_err(db)?;
    let op: String = r.try_get(4).map_err(db)?;
    let small = |i: usize| -> Result<u8> {
        let v: i16 = r.try_get(i).map_err(db)?;
        u8::try_from(v).map_err(Error::store)
    };
    Ok(StoredChange {
        seq: r.try_get(0).map_err(db)?,
        at: r.try_get(1).map_err(db)?,
        change: NewChange {
            institution: r.try_get(2).map_err(db)?,
            kind: ChangeKind::parse(&kind)
                .ok_or_else(|| Error::Store(format!("unknown change kind {kind}")))?,
            op: ChangeOp::parse(&op)
                .ok_or_else(|| Error::Store(format!("unknown change op {op}")))?,
            record: r.try_get(5).map_err(db)?,
            person_id: r.try_get(6).map_err(db)?,
            user_id: r.try_get(7).map_err(db)?,
            pupil_id: r.try_get(8).map_err(db)?,
            pupil_user_id: r.try_get(9).map_err(db)?,
            actors: small(10)?,
            grade: small(11)?,
        },
    })
}

#[async_trait]
impl ChangesStore for PgStore {
    async fn changes_after(
        &self,
        after: i64,
        institutions: &[String],
        limit: usize,
    ) -> Result<Vec<StoredChange>> {
        if institutions.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).map_err(Error::store)?;
        let c = self.conn().await?;
        query(
            &c,
            "SELECT seq, at, institution, kind, op, record, person_id, user_id, pupil_id,
             pupil_user_id, actors, grade FROM changes
             WHERE seq > $1 AND institution = ANY($2) ORDER BY seq LIMIT $3",
            &[&after, &institutions, &limit],
        )
        .await?
        .iter()
        .map(change_row)
        .collect()
    }

    async fn changes_head(&self) -> Result<i64> {
        let c = self.conn().await?;
        query(&c, "SELECT seq FROM changes_head WHERE id = 1", &[])
            .await?
            .first()
            .ok_or_else(|| Error::Store("changes_head row missing".into()))?
            .try_get(0)
            .map_err(db)
    }

    async fn changes_pruned_through(&self) -> Result<i64> {
        let c = self.conn().await?;
        query(
            &c,
            "SELECT pruned_through FROM changes_retention WHERE id = 1",
            &[],
        )
        .await?
        .first()
        .ok_or_else(|| Error::Store("changes_retention row missing".into()))?
        .try_get(0)
        .map_err(db)
    }

    async fn changes_before(&self, before: i64) -> Result<Option<(i64, u64)>> {
        let c = self.conn().await?;
        // Walks the old rows only (times grow with seq), not the table.
        let newer = query(
            &c,
            "SELECT seq FROM changes WHERE at >= $1 ORDER BY seq LIMIT 1",
            &[&before],
        )
        .await?;
        let through: Option<i64> = match newer.first() {
            Some(r) => Some(r.try_get::<_, i64>(0).map_err(db)? - 1),
            None => query(&c, "SELECT max(seq) FROM changes", &[])
                .await?
                .first()
                .map_or(Ok(None), |r| r.try_get(0).map_err(db))?,
        };
        let Some(through) = through.filter(|t| *t > 0) else {
            return Ok(None);
        };
        let rows: i64 = query(
            &c,
            "SELECT count(*) FROM changes WHERE seq <= $1",
            &[&through],
        )
        .await?
        .first()
        .map_or(Ok(0), |r| r.try_get(0).map_err(db))?;
        Ok(Some((through, rows as u64)))
    }

    async fn prune_changes(&self, through: i64, limit: usize) -> Result<u64> {
        let limit = i64::try_from(limit).map_err(Error::store)?;
        let mut c = self.conn().await?;
        let tx = c.transaction().await.map_err(db)?;
        let rows = query(
            &tx,
            "WITH gone AS (DELETE FROM changes WHERE seq IN
                 (SELECT seq FROM changes WHERE seq <= $1 ORDER BY seq LIMIT $2) RETURNING seq)
             SELECT count(*), max(seq) FROM gone",
            &[&through, &limit],
        )
        .await?;
        let (n, upto) = super::chunk_done(&rows, limit, through)?;
        execute(
            &tx,
            "UPDATE changes_retention SET pruned_through = greatest(pruned_through, $1) WHERE id = 1",
            &[&upto],
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(n as u64)
    }
}
