//! Anonymised copies of a SQLite database, for a vendor to debug on: every
//! personal field replaced as the state LMS agreement describes, ids and
//! relations kept. A table this code does not know stops the copy, so a new
//! table with personal data cannot slip through unreviewed.

use super::{db, open_conn, CachedRow};
use rusqlite::Connection;
use std::path::Path;
use tilgang_core::{Error, Result};

/// What a copy holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnonymizeReport {
    pub persons: i64,
}

/// Every table of the schema and what happens to it. Changing the schema
/// means deciding here.
const TABLES: &[(&str, &str)] = &[
    ("schema_migrations", ""),
    ("institutions", "UPDATE institutions SET import_digest = NULL"),
    // Before `persons`: a person licence names its holder by user id.
    (
        "licences",
        "UPDATE licences SET target = coalesce((SELECT 'u' || p.id FROM persons p WHERE p.user_id = licences.target), 'u0'),
         consent = CASE WHEN consent IS NULL THEN NULL ELSE 'consent ' || id END
         WHERE scope = 'person'",
    ),
    (
        "persons",
        "UPDATE persons SET user_id = 'u' || id, given_name = 'Fornavn' || id, family_name = 'Efternavn' || id,
         alias_given_name = CASE WHEN alias_given_name IS NULL THEN NULL ELSE 'Aliasfornavn' || id END,
         alias_family_name = CASE WHEN alias_family_name IS NULL THEN NULL ELSE 'Aliasefternavn' || id END,
         cpr_enc = NULL, cpr_hash = NULL,
         birth_date = CASE WHEN birth_date IS NULL THEN NULL ELSE '1900-01-01' END,
         gender = NULL,
         email = CASE WHEN email IS NULL THEN NULL ELSE 'u' || id || '@example.invalid' END,
         phones = NULL, address = NULL, local_person_id = NULL, photo_id = NULL, digest = 0",
    ),
    ("roster_groups", ""),
    (
        "roles",
        "UPDATE roles SET student_number = CASE WHEN student_number IS NULL THEN NULL ELSE 'S' || id END,
         initials = CASE WHEN initials IS NULL THEN NULL ELSE 'I' || id END, digest = 0",
    ),
    ("memberships", ""),
    ("contacts", ""),
    // The feed names persons by the user id they had; the copy's are 'u' || id.
    (
        "changes",
        "UPDATE changes SET user_id = CASE WHEN person_id IS NULL THEN NULL ELSE 'u' || person_id END,
         pupil_user_id = CASE WHEN pupil_id IS NULL THEN NULL ELSE 'u' || pupil_id END",
    ),
    ("changes_head", ""),
    // Details hold login names as typed, addresses and free text; the
    // chain of the copy no longer verifies, which is as it should be.
    ("audit_events", "UPDATE audit_events SET details = 'null'"),
    ("audit_head", ""),
    // Action names and sequence numbers only (retention's progress).
    ("audit_redactions", ""),
    ("changes_retention", ""),
    (
        "accounts",
        "UPDATE accounts SET password_hash = NULL, activation_hash = NULL, activation_expires_at = NULL",
    ),
    ("sessions", "DELETE FROM sessions"),
    ("login_attempts", "DELETE FROM login_attempts"),
    (
        "second_factors",
        "UPDATE second_factors SET label = kind || ' ' || id, secret_enc = NULL,
         credential_id = CASE WHEN credential_id IS NULL THEN NULL ELSE randomblob(16) END,
         credential = NULL, user_handle = NULL",
    ),
    ("recovery_codes", "UPDATE recovery_codes SET code_hash = randomblob(32)"),
    ("factor_ceremonies", "DELETE FROM factor_ceremonies"),
    ("right_grants", "UPDATE right_grants SET reason = 'reason ' || rowid"),
    ("operator_grants", "UPDATE operator_grants SET reason = 'reason ' || person_id"),
    (
        "municipality_grants",
        "UPDATE municipality_grants SET reason = 'reason ' || rowid",
    ),
    ("login_cards", "UPDATE login_cards SET code_hash = randomblob(32)"),
    (
        "oidc_services",
        "UPDATE oidc_services SET secret_hash = CASE WHEN secret_hash IS NULL THEN NULL ELSE randomblob(32) END,
         pairwise_salt = randomblob(16)",
    ),
    ("oidc_keys", "DELETE FROM oidc_keys"),
    ("oidc_pending", "DELETE FROM oidc_pending"),
    ("oidc_codes", "DELETE FROM oidc_codes"),
    ("oidc_tokens", "DELETE FROM oidc_tokens"),
    ("oidc_assertions", "DELETE FROM oidc_assertions"),
    ("audit_keys", "DELETE FROM audit_keys"),
    ("audit_checkpoints", ""),
    (
        "security_reports",
        "UPDATE security_reports SET contact = '', summary = 'report ' || id, details = ''",
    ),
    ("job_leases", "UPDATE job_leases SET holder = 'host'"),
    // Provider contacts may name people; reasons and history are free text.
    (
        "sharing_providers",
        "UPDATE sharing_providers SET contact = 'contact ' || id, security_contact = 'security ' || id",
    ),
    ("sharing_services", ""),
    ("sharing_requests", "UPDATE sharing_requests SET reason = CASE WHEN reason IS NULL THEN NULL ELSE 'reason ' || id END"),
    ("sharing_approvals", "UPDATE sharing_approvals SET end_reason = CASE WHEN end_reason IS NULL THEN NULL ELSE 'reason ' || id END"),
    ("sharing_blocks", "UPDATE sharing_blocks SET reason = 'reason'"),
    ("sharing_history", "UPDATE sharing_history SET details = '{}'"),
    ("oidc_role_choices", ""),
    // Only links; the persons row is anonymised with the rest.
    ("provider_users", "UPDATE provider_users SET created_by = 'operator'"),
];

/// Writes an anonymised copy of the SQLite database at `src` to `out`
/// (which must not exist). On failure no file is left behind.
pub fn anonymize(src: &str, out: &Path) -> Result<AnonymizeReport> {
    if out.exists() {
        return Err(Error::io(out.display().to_string(), "exists already"));
    }
    let result = copy_and_scrub(src, out);
    if result.is_err() {
        let _ = std::fs::remove_file(out);
    }
    result
}

fn copy_and_scrub(src: &str, out: &Path) -> Result<AnonymizeReport> {
    let source = open_conn(Path::new(src), 16 * 1024)?;
    let out_str = out
        .to_str()
        .ok_or_else(|| Error::io(out.display().to_string(), "not a UTF-8 path"))?;
    // A consistent snapshot, even while a server writes.
    source.execute("VACUUM INTO ?1", [out_str]).map_err(db)?;
    drop(source);
    scrub(out)
}

/// Refuses a schema with a table this file does not know.
pub(crate) fn check_tables(tables: &[String]) -> Result<()> {
    match tables.iter().find(|t| !TABLES.iter().any(|(k, _)| k == t)) {
        Some(unknown) => Err(Error::Store(format!(
            "anonymize does not know the table {unknown}; refusing to write a copy that may hold personal data (decide its treatment in store/src/sqlite/anonymize.rs)"
        ))),
        None => Ok(()),
    }
}

/// Replaces every personal field of the copy at `out` in place, leaving no
/// old value in free pages or a journal.
pub(crate) fn scrub(out: &Path) -> Result<AnonymizeReport> {
    let conn = Connection::open(out).map_err(|e| Error::io(out.display().to_string(), e))?;
    conn.execute_batch("PRAGMA journal_mode = DELETE; PRAGMA secure_delete = ON;")
        .map_err(db)?;
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .map_err(db)?;
    let tables: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .map_err(db)?
        .collect::<rusqlite::Result<_>>()
        .map_err(db)?;
    drop(stmt);
    check_tables(&tables)?;
    conn.execute_batch("BEGIN").map_err(db)?;
    for (table, sql) in TABLES {
        if !sql.is_empty() && tables.iter().any(|t| t == table) {
            conn.execute_batch(sql)
                .map_err(|e| Error::Store(format!("anonymizing {table}: {e}")))?;
        }
    }
    conn.execute_batch("COMMIT").map_err(db)?;
    conn.execute_batch("VACUUM").map_err(db)?;
    let persons = conn
        .cached_row("SELECT count(*) FROM persons", [], |r| r.get(0))
        .map_err(db)?;
    Ok(AnonymizeReport { persons })
}
