//! `tilgang anonymize`: a copy of a generated municipality in which no
//! original personal value is left in any text or blob cell.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aho_corasick::AhoCorasick;
use rusqlite::types::ValueRef;
use std::collections::HashSet;
use tilgang_core::audit::NewEvent;
use tilgang_core::identity::session::NewSession;
use tilgang_core::roster::import::native;
use tilgang_core::roster::synth::{self, Scale, SynthOptions};
use tilgang_core::Clock;
use tilgang_testkit::{Dialect, TestDb};

/// Every text cell, and every blob as text and as hex, of every table.
fn cells(path: &std::path::Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out = Vec::new();
    for t in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = stmt.column_count();
        let names: Vec<String> = stmt
            .column_names()
            .iter()
            .map(|c| format!("{t}.{c}"))
            .collect();
        let mut rows = stmt.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            for (i, name) in names.iter().enumerate().take(n) {
                match r.get_ref(i).unwrap() {
                    ValueRef::Text(s) => {
                        out.push((name.clone(), String::from_utf8_lossy(s).into_owned()))
                    }
                    ValueRef::Blob(b) => {
                        // Text kept as a blob is searched as text; binary
                        // (hashes, ciphertext) only as hex, or its random
                        // bytes could spell a short name between two
                        // non-letters now and then.
                        if let Ok(text) = std::str::from_utf8(b) {
                            out.push((name.clone(), text.to_owned()));
                        }
                        out.push((name.clone(), hex::encode(b)));
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

fn is_word(c: Option<char>) -> bool {
    c.is_some_and(char::is_alphanumeric)
}

/// The source's CPR ciphertexts and look-up hashes, and a few row counts,
/// read with the dialect's own client.
async fn source_facts(db: &TestDb) -> (Vec<(Vec<u8>, i64)>, Vec<i64>) {
    const CPR: &str = "SELECT cpr_enc, cpr_hash FROM persons WHERE cpr_enc IS NOT NULL";
    if let Some(path) = db.url.strip_prefix("sqlite://") {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mut stmt = conn.prepare(CPR).unwrap();
        let cpr = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let counts = COUNTS
            .iter()
            .map(|sql| conn.query_row(sql, [], |r| r.get(0)).unwrap())
            .collect();
        return (cpr, counts);
    }
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let cpr = client
        .query(CPR, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut counts = Vec::new();
    for sql in COUNTS {
        counts.push(client.query_one(sql, &[]).await.unwrap().get(0));
    }
    (cpr, counts)
}

const COUNTS: [&str; 5] = [
    "SELECT count(*) FROM persons",
    "SELECT count(*) FROM memberships",
    "SELECT count(*) FROM roles",
    "SELECT count(*) FROM contacts",
    "SELECT count(*) FROM accounts",
];

#[tokio::test]
async fn an_anonymised_copy_of_a_generated_municipality_holds_no_personal_value() {
    for d in tilgang_testkit::dialects() {
        anonymised_copy_holds_no_personal_value(&d).await;
    }
}

async fn anonymised_copy_holds_no_personal_value(dialect: &Dialect) {
    let db = TestDb::new(dialect).await;
    // A municipality's first institutions (the whole 25 take long in debug builds).
    let opts = SynthOptions {
        institutions: 4,
        ..SynthOptions::for_scale(Scale::Municipality, 3)
    };
    let dir = db.dir().join("synth");
    std::fs::create_dir_all(&dir).unwrap();
    let mut values: HashSet<String> = HashSet::new();
    let mut some_users = Vec::new();
    for i in 0..opts.institutions {
        let roster = synth::institution(&opts, i);
        for p in &roster.persons {
            let v = [
                Some(p.user_id.clone()),
                Some(p.given_name.clone()),
                Some(p.family_name.clone()),
                p.alias_given_name.clone(),
                p.alias_family_name.clone(),
                p.cpr.as_ref().map(|c| c.expose().to_owned()),
                p.birth_date.map(|d| d.to_string()),
                p.email.clone(),
                p.local_person_id.clone(),
                p.photo_id.clone(),
                p.address.as_ref().and_then(|a| a.street.clone()),
            ];
            values.extend(v.into_iter().flatten());
            values.extend(p.phones.iter().map(|ph| ph.number.clone()));
        }
        for r in &roster.roles {
            values.extend(r.student_number.clone());
            values.extend(r.initials.clone());
        }
        some_users.extend(roster.persons.iter().step_by(97).map(|p| p.user_id.clone()));
        let path = dir.join(format!("{}.json", roster.institution.number));
        std::fs::write(path, serde_json::to_vec(&native::to_raw(&roster)).unwrap()).unwrap();
    }
    crate::import_from(&db, &dir, false, false).await.unwrap();
    // Secrets too: passwords, sessions.
    for u in &some_users {
        let id = db.store.account(u).await.unwrap().unwrap().person_id;
        let hash = format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ${u}secret");
        let ev = NewEvent::new("test", "account.password_set").subjects(vec![id]);
        db.store
            .set_password(id, &hash, db.clock.now(), ev)
            .await
            .unwrap();
        values.insert(hash);
        let s = NewSession::new(
            id,
            db.clock.now().unix_timestamp(),
            3600,
            "1",
            &["pwd"],
            None,
        );
        values.insert(hex::encode(s.id_hash));
        let ev = NewEvent::new("anonymous", "login.failed")
            .subjects(vec![id])
            .details(serde_json::json!({"login": u, "address": "192.0.2.7"}));
        db.store
            .record_login(id, None, &s, db.clock.now(), ev)
            .await
            .unwrap();
    }
    values.insert("192.0.2.7".into());
    // What only the database holds: CPR ciphertexts and look-up hashes.
    let (cpr, counts_src) = source_facts(&db).await;
    for (enc, hash) in cpr {
        values.insert(hex::encode(enc));
        values.insert(hash.to_string());
    }
    assert!(
        values.len() > 1_000,
        "a real municipality: {}",
        values.len()
    );

    let out = db.dir().join("anon.db");
    let report = tilgang_store::anonymize(&db.url, &out).await.unwrap();
    assert!(report.persons > 500, "{report:?}");
    assert!(
        tilgang_store::anonymize(&db.url, &out).await.is_err(),
        "an existing file is never overwritten"
    );

    // Short values (two-letter names) match only whole cells; longer ones
    // anywhere between word boundaries.
    let (short, long): (Vec<&String>, Vec<&String>) =
        values.iter().partition(|v| v.chars().count() < 3);
    let short: HashSet<&str> = short.into_iter().map(String::as_str).collect();
    let ac = AhoCorasick::new(&long).unwrap();
    let copy = cells(&out);
    let mut found = Vec::new();
    for (col, text) in &copy {
        if short.contains(text.as_str()) {
            found.push(format!("{col}: {text:?}"));
        }
        for m in ac.find_overlapping_iter(text) {
            let before = text[..m.start()].chars().next_back();
            let after = text[m.end()..].chars().next();
            if !is_word(before) && !is_word(after) {
                found.push(format!(
                    "{col}: {:?} in {text:?}",
                    long[m.pattern().as_usize()]
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "{} personal value(s) left, e.g. {:?}",
        found.len(),
        &found[..found.len().min(10)]
    );

    // Relations kept, gender gone.
    let conn = rusqlite::Connection::open(&out).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    for (sql, n) in COUNTS.iter().zip(counts_src) {
        assert_eq!(count(sql), n, "{sql} on {dialect:?}");
    }
    assert_eq!(
        count("SELECT count(*) FROM persons WHERE gender IS NOT NULL"),
        0
    );
    assert_eq!(count("SELECT count(*) FROM sessions"), 0);

    // tilgang itself can open the copy and read a roster from it.
    let copy = tilgang_store::open(&format!("sqlite://{}", out.display()))
        .await
        .unwrap();
    let first = &copy.institutions().await.unwrap()[0].number;
    let (_, persons) = copy.institution_roster(first).await.unwrap().unwrap();
    assert!(!persons.is_empty());
}
