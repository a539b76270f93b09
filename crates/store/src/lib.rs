//! The store traits of `tilgang-core`, implemented for SQLite (the embedded
//! default) and PostgreSQL (for several replicas). Migrations are per
//! dialect, embedded in the binary, and applied in order.

mod codec;
mod group;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;
use tilgang_core::store::Store;
use tilgang_core::{Error, Result};

/// A migration: version, name, SQL.
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migrations {
    ($dialect:literal: $($version:literal $name:literal),+ $(,)?) => {
        &[$(Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../migrations/", $dialect, "/", $name, ".sql")),
        }),+]
    };
}

pub(crate) const SQLITE_MIGRATIONS: &[Migration] = migrations!("sqlite": 1 "0001_roster_audit", 2 "0002_identity", 3 "0003_factors", 4 "0004_staff_cards", 5 "0005_oidc", 6 "0006_audit_checkpoints", 7 "0007_security_reports", 8 "0008_sharing", 9 "0009_lifecycle", 10 "0010_oidc_roles", 11 "0011_audit_search", 12 "0012_changes", 14 "0014_provider_portal", 16 "0016_export", 17 "0017_municipality_admins", 18 "0018_operators", 19 "0019_retention");
pub(crate) const POSTGRES_MIGRATIONS: &[Migration] = migrations!("postgres": 1 "0001_roster_audit", 2 "0002_identity", 3 "0003_factors", 4 "0004_staff_cards", 5 "0005_oidc", 6 "0006_audit_checkpoints", 7 "0007_security_reports", 8 "0008_sharing", 9 "0009_lifecycle", 10 "0010_oidc_roles", 11 "0011_audit_search", 12 "0012_changes", 14 "0014_provider_portal", 16 "0016_export", 17 "0017_municipality_admins", 18 "0018_operators", 19 "0019_retention");

/// Opens the store a database URL names: `sqlite://PATH` (created when
/// missing) or `postgres://…`. Does not migrate.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Ok(Arc::new(sqlite::SqliteStore::open(path)?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(url).await?))
    } else {
        Err(Error::Config(format!(
            "database_url must start with sqlite:// or postgres://, not {:?}",
            url.split("://").next().unwrap_or("")
        )))
    }
}

/// Writes an anonymised SQLite copy of the database a URL names to `out`
/// (which must not exist): from SQLite by `VACUUM INTO`, from PostgreSQL by
/// copying one consistent snapshot; then every personal field is replaced.
pub async fn anonymize(url: &str, out: &std::path::Path) -> Result<sqlite::AnonymizeReport> {
    match url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Some(path) => {
            let (path, out) = (path.to_owned(), out.to_owned());
            tokio::task::spawn_blocking(move || sqlite::anonymize(&path, &out))
                .await
                .map_err(Error::store)?
        }
        None => postgres::anonymize(&postgres::PgStore::connect(url).await?, out).await,
    }
}

/// A database URL with any password replaced, for logs and messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}://{}:***{}", &url[..s], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// `'Leder', 'Ledelse'`: the admin roles as an SQL list (constants, not input).
pub(crate) fn admin_roles_sql() -> String {
    tilgang_core::identity::rights::ADMIN_ROLES
        .iter()
        .map(|r| format!("'{}'", r.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}
