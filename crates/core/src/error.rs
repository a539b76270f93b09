//! The one error type of tilgang, with stable codes that clients and
//! operators can search for. Messages never contain CPR numbers or secrets.

use crate::roster::import::Issue;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the import was rejected with {} error(s); nothing was written", .0.iter().filter(|i| i.is_error()).count())]
    ImportInvalid(Vec<Issue>),
    #[error("{0}")]
    ImportUnsupported(String),
    #[error("unknown institution {0}")]
    UnknownInstitution(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("key material: {0}")]
    Crypto(String),
    #[error("database: {0}")]
    Store(String),
    #[error("the database schema is at version {found}, newer than this tilgang knows ({known}); upgrade tilgang")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("audit chain broken at sequence {seq}: {reason}")]
    AuditBroken { seq: i64, reason: String },
    /// An action the rules forbid in the current state; the message says
    /// what must change first.
    #[error("refused: {0}")]
    Refused(String),
    #[error("{context}: {message}")]
    Io { context: String, message: String },
    /// A request the domain refuses, with its own stable code (for example
    /// `SHARING_PURPOSE_REQUIRED`) and a message saying what to do.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// What the request points at existed but is gone for good (HTTP
    /// 410), such as a changes feed cursor older than the feed's
    /// retention; the message says how to start again.
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// No valid credentials: a missing, unknown, expired or revoked token
    /// (HTTP 401). The message never says which.
    #[error("{0}")]
    Unauthenticated(String),
    /// Valid credentials of the wrong kind for the request, such as a
    /// person's token on a service endpoint (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// The caller's request budget is spent; it may try again after
    /// `retry_after_s` seconds (HTTP 429).
    #[error("too many requests; retry after {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
}

impl Error {
    /// A stable code, part of the public interface: never change one.
    pub fn code(&self) -> &'static str {
        match self {
            Error::ImportInvalid(_) => "ROSTER_IMPORT_INVALID",
            Error::ImportUnsupported(_) => "ROSTER_IMPORT_UNSUPPORTED",
            Error::UnknownInstitution(_) => "ROSTER_UNKNOWN_INSTITUTION",
            Error::NotFound(_) => "NOT_FOUND",
            Error::Config(_) => "CONFIG_INVALID",
            Error::Crypto(_) => "CRYPTO_KEY",
            Error::Store(_) => "STORE_FAILURE",
            Error::SchemaTooNew { .. } => "STORE_SCHEMA_TOO_NEW",
            Error::AuditBroken { .. } => "AUDIT_CHAIN_BROKEN",
            Error::Refused(_) => "REFUSED",
            Error::Io { .. } => "IO",
            Error::Invalid { code, .. } | Error::Gone { code, .. } => code,
            Error::Unauthenticated(_) => "AUTH_INVALID_TOKEN",
            Error::Forbidden(_) => "AUTH_FORBIDDEN",
            Error::RateLimited { .. } => "RATE_LIMITED",
        }
    }

    pub fn io(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Error::Io {
            context: context.into(),
            message: err.to_string(),
        }
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn store(err: impl std::fmt::Display) -> Self {
        Error::Store(err.to_string())
    }
}
