//! `tilgang anonymize` from PostgreSQL: one consistent snapshot (a
//! read-only repeatable-read transaction) of every table, copied row by row
//! into a new SQLite file with tilgang's SQLite schema, which the SQLite
//! anonymiser then scrubs in place. The source is only read.

use super::{db as pg, PgStore};
use crate::sqlite::anonymize::{check_tables, scrub, AnonymizeReport};
use futures_util::{pin_mut, TryStreamExt};
use rusqlite::types::Value;
use std::path::Path;
use std::sync::mpsc;
use tilgang_core::{Error, Result};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};
use tokio_postgres::types::Type;
use tokio_postgres::Row;

/// Rows sent to the SQLite writer at a time.
const BATCH: usize = 2_000;

enum Msg {
    Table(String, Vec<String>),
    Rows(Vec<Vec<Value>>),
}

/// Writes an anonymised SQLite copy of the PostgreSQL database behind
/// `store` to `out` (which must not exist). On failure no file is left.
pub async fn anonymize(store: &PgStore, out: &Path) -> Result<AnonymizeReport> {
    if out.exists() {
        return Err(Error::io(out.display().to_string(), "exists already"));
    }
    let result = copy(store, out).await.and_then(|()| scrub(out));
    if result.is_err() {
        let _ = std::fs::remove_file(out);
    }
    result
}

async fn copy(store: &PgStore, out: &Path) -> Result<()> {
    let mut c = store.conn().await?;
    let tx = c
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(pg)?;
    let tables: Vec<String> = tx
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
            &[],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    check_tables(&tables)?;

    let (send, recv) = mpsc::sync_channel::<Msg>(4);
    let path = out.to_path_buf();
    let writer = std::thread::spawn(move || write_sqlite(&path, recv));
    let copied = async {
        for table in &tables {
            let stream = tx
                .query_raw(&format!("SELECT * FROM {table}"), std::iter::empty::<i32>())
                .await
                .map_err(pg)?;
            pin_mut!(stream);
            let mut batch = Vec::with_capacity(BATCH);
            let mut started = false;
            while let Some(row) = stream.try_next().await.map_err(pg)? {
                if !started {
                    let cols = row.columns().iter().map(|c| c.name().to_owned()).collect();
                    send_msg(&send, Msg::Table(table.clone(), cols))?;
                    started = true;
                }
                batch.push(values(table, &row)?);
                if batch.len() == BATCH {
                    send_msg(&send, Msg::Rows(std::mem::take(&mut batch)))?;
                }
            }
            if !batch.is_empty() {
                send_msg(&send, Msg::Rows(batch))?;
            }
        }
        Ok::<(), Error>(())
    }
    .await;
    drop(send);
    let written = writer
        .join()
        .map_err(|_| Error::Store("the SQLite writer stopped".into()))?;
    tx.rollback().await.map_err(pg)?;
    // The writer's own error says more than "the writer stopped".
    written.and(copied)
}

fn send_msg(send: &mpsc::SyncSender<Msg>, msg: Msg) -> Result<()> {
    send.send(msg)
        .map_err(|_| Error::Store("the SQLite writer stopped".into()))
}

/// Creates the SQLite schema at `path` and inserts what arrives, in one
/// transaction; no journal outlives it.
fn write_sqlite(path: &Path, recv: mpsc::Receiver<Msg>) -> Result<()> {
    let conn =
        rusqlite::Connection::open(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    conn.execute_batch("PRAGMA journal_mode = DELETE; PRAGMA foreign_keys = OFF; BEGIN;")
        .map_err(crate::sqlite::db)?;
    conn.execute_batch(crate::sqlite::SCHEMA_MIGRATIONS_DDL)
        .map_err(crate::sqlite::db)?;
    for m in crate::SQLITE_MIGRATIONS {
        conn.execute_batch(m.sql)
            .map_err(|e| Error::Store(format!("migration {}: {e}", m.name)))?;
    }
    let mut insert = String::new();
    let mut table = String::new();
    // Whatever the receiver does not take is dropped with the channel, so
    // the sender sees the error and stops.
    for msg in recv {
        match msg {
            Msg::Table(t, cols) => {
                // The source's rows replace what the migrations seeded
                // (the audit head, say).
                conn.execute_batch(&format!("DELETE FROM {t}"))
                    .map_err(|e| Error::Store(format!("copying {t}: {e}")))?;
                insert = format!(
                    "INSERT INTO {t} ({}) VALUES ({})",
                    cols.join(", "),
                    (1..=cols.len())
                        .map(|i| format!("?{i}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                table = t;
            }
            Msg::Rows(rows) => {
                let mut stmt = conn
                    .prepare_cached(&insert)
                    .map_err(|e| Error::Store(format!("copying {table}: {e}")))?;
                for row in rows {
                    stmt.execute(rusqlite::params_from_iter(row))
                        .map_err(|e| Error::Store(format!("copying {table}: {e}")))?;
                }
            }
        }
    }
    conn.execute_batch("COMMIT").map_err(crate::sqlite::db)
}

/// One PostgreSQL row as SQLite values, in the encodings the SQLite store
/// uses (timestamps as RFC 3339 text, dates as ISO text, booleans as 0/1).
fn values(table: &str, row: &Row) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let bad =
            |e: tokio_postgres::Error| Error::Store(format!("reading {table}.{}: {e}", col.name()));
        let t = col.type_();
        let v = if *t == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)
                .map_err(bad)?
                .map(Value::Integer)
        } else if *t == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)
                .map_err(bad)?
                .map(|v| Value::Integer(v.into()))
        } else if *t == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)
                .map_err(bad)?
                .map(|v| Value::Integer(v.into()))
        } else if *t == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)
                .map_err(bad)?
                .map(|v| Value::Integer(v.into()))
        } else if *t == Type::FLOAT8 {
            row.try_get::<_, Option<f64>>(i)
                .map_err(bad)?
                .map(Value::Real)
        } else if *t == Type::TEXT || *t == Type::VARCHAR || *t == Type::NAME {
            row.try_get::<_, Option<String>>(i)
                .map_err(bad)?
                .map(Value::Text)
        } else if *t == Type::BYTEA {
            row.try_get::<_, Option<Vec<u8>>>(i)
                .map_err(bad)?
                .map(Value::Blob)
        } else if *t == Type::TIMESTAMPTZ {
            row.try_get::<_, Option<OffsetDateTime>>(i)
                .map_err(bad)?
                .map(|v| Value::Text(v.format(&Rfc3339).unwrap_or_default()))
        } else if *t == Type::DATE {
            row.try_get::<_, Option<Date>>(i)
                .map_err(bad)?
                .map(|v| Value::Text(v.to_string()))
        } else if *t == Type::JSON || *t == Type::JSONB {
            row.try_get::<_, Option<serde_json::Value>>(i)
                .map_err(bad)?
                .map(|v| Value::Text(v.to_string()))
        } else {
            return Err(Error::Store(format!(
                "anonymize cannot copy {table}.{} of type {t}; teach store/src/postgres/snapshot.rs",
                col.name()
            )));
        };
        out.push(v.unwrap_or(Value::Null));
    }
    Ok(out)
}
