//! One `Config`, layered with figment: defaults, then `tilgang.toml` (or the
//! file `--config` names), then `TILGANG_*` environment variables. A secret
//! may come from a file: `TILGANG_DATABASE_URL_FILE=/run/secrets/db`.
//! Unknown keys are an error that names the key.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tilgang_core::identity::account::LockoutPolicy;
use tilgang_core::identity::password::{HashParams, Policy};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `sqlite://PATH` (the default, created on first start) or `postgres://…`.
    pub database_url: String,
    /// Where `serve` listens.
    pub listen: String,
    /// The master key file (created at first start, mode 0600). CPR numbers
    /// and stored secrets are encrypted under keys derived from it.
    pub master_key_path: PathBuf,
    /// `text` for people, `json` for log collectors.
    pub log_format: LogFormat,
    /// A tracing filter, e.g. `info` or `tilgang=debug,info`.
    pub log_level: String,
    /// Login attempts one client address may make in ten minutes. Generous:
    /// a whole school often shares one address.
    pub login_per_address_limit: i64,
    /// Login attempts over all addresses in ten minutes.
    pub login_overall_limit: i64,
    /// The address people reach tilgang at (scheme, host, port), used as
    /// the WebAuthn origin and in the links on printed login cards. Empty
    /// means `http://localhost:PORT` from `listen`, for trying it out.
    pub public_url: String,
    /// Argon2id cost of new password hashes (`m_kib`, `t`, `p`); stored
    /// hashes with other parameters are re-hashed at their next login.
    pub password_hash: HashParams,
    /// Password rules: minimum lengths per actor group, the young-pupil
    /// exception, strength scores, and an optional `rotation_days`.
    pub password_policy: Policy,
    /// Consecutive failures that lock an account.
    pub lockout_threshold: u32,
    /// The growing lock delays in seconds; the last one repeats.
    pub lockout_delays_seconds: Vec<i64>,
    /// After this many lockouts in a row, only staff can unlock; unset
    /// (the default) never locks for good.
    pub lockout_permanent_after: Option<u32>,
    /// A session ends after this many minutes without use.
    pub session_idle_minutes: i64,
    /// A session ends this many hours after login, used or not.
    pub session_lifetime_hours: i64,
    /// Extra contacts for `/.well-known/security.txt`, such as
    /// `mailto:security@kommune.dk`; the reporting page is always listed.
    pub security_contacts: Vec<String>,
    /// Sign an audit checkpoint after this many new events …
    pub audit_checkpoint_every_events: i64,
    /// … or this many minutes after the last one, whichever comes first.
    pub audit_checkpoint_every_minutes: i64,
    /// Audit events older than this lose their content (six months, as
    /// the state LMS agreement keeps logs); whole events go after the
    /// longest period of any action, up to a signed checkpoint.
    pub audit_retention_days: i64,
    /// Periods per audit action, overriding `audit_retention_days`:
    /// `[audit_retention_by_action]` with `"login.succeeded" = 90`. The
    /// keys must be audit actions (`core::audit::actions`).
    pub audit_retention_by_action: BTreeMap<String, i64>,
    /// Changes feed rows older than this are removed (400 days: longer
    /// than the six months providers have to delete, so a provider that
    /// polls at least monthly never misses an end or a deletion).
    pub changes_retention_days: i64,
    /// Unused accounts of pupils, employees and contact persons are closed
    /// after this many days (12 months) …
    pub lifecycle_close_unused_days: i64,
    /// … those of externals after this many (3 months). Admins, leaders
    /// and holders of granted rights are never closed.
    pub lifecycle_close_unused_external_days: i64,
    /// Persons inactive this long are archived (operators only see them).
    pub lifecycle_archive_after_days: i64,
    /// Persons inactive this long have their personal data erased; unset
    /// leaves erasure to `tilgang person erase`.
    pub lifecycle_erase_after_days: Option<i64>,
    /// Import input files kept by tilgang are deleted after this many days.
    pub lifecycle_import_files_days: i64,
    /// The server runs each lifecycle job at most this often (one replica
    /// at a time).
    pub lifecycle_every_hours: i64,
    /// The SMTP server for e-mail notices to institution admins (a new or
    /// changed data access request); unset sends none.
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    /// The sender, `tilgang <noreply@kommune.dk>`; needed with `smtp_host`.
    pub smtp_from: Option<String>,
    pub smtp_username: Option<String>,
    /// Best from a file: `TILGANG_SMTP_PASSWORD_FILE`.
    pub smtp_password: Option<String>,
    /// STARTTLS (required); `false` only for a relay on localhost.
    pub smtp_starttls: bool,
    /// Data API requests per second one service may make on average
    /// (per replica: N replicas allow N times this) …
    pub api_rate_per_second: f64,
    /// … and in a burst.
    pub api_rate_burst: u32,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        let rules = tilgang_core::lifecycle::Rules::default();
        Config {
            database_url: "sqlite://./tilgang.db".into(),
            listen: "127.0.0.1:8080".into(),
            master_key_path: "./tilgang.key".into(),
            log_format: LogFormat::Text,
            log_level: "info".into(),
            login_per_address_limit: 3_000,
            login_overall_limit: 200_000,
            public_url: String::new(),
            password_hash: HashParams::default(),
            password_policy: Policy::default(),
            lockout_threshold: 3,
            lockout_delays_seconds: vec![60, 5 * 60, 15 * 60, 60 * 60],
            lockout_permanent_after: None,
            session_idle_minutes: 30,
            session_lifetime_hours: 12,
            security_contacts: Vec::new(),
            audit_checkpoint_every_events: 10_000,
            audit_checkpoint_every_minutes: 60,
            audit_retention_days: rules.audit.default_days,
            audit_retention_by_action: BTreeMap::new(),
            changes_retention_days: rules.changes_days,
            lifecycle_close_unused_days: rules.close_unused_days,
            lifecycle_close_unused_external_days: rules.close_unused_external_days,
            lifecycle_archive_after_days: rules.archive_after_days,
            lifecycle_erase_after_days: rules.erase_after_days,
            lifecycle_import_files_days: rules.import_files_days,
            lifecycle_every_hours: 24,
            smtp_host: None,
            smtp_port: 587,
            smtp_from: None,
            smtp_username: None,
            smtp_password: None,
            smtp_starttls: true,
            api_rate_per_second: 50.0,
            api_rate_burst: 100,
        }
    }
}

/// Environment variables that belong to tooling, not to the config.
const NOT_CONFIG: &[&str] = &[
    "config",
    "test_postgres_url",
    "log",
    "bin",
    BENCH_DISABLE_API_AUDIT_KEY,
];

/// `TILGANG_BENCH_DISABLE_API_AUDIT=1`: the data API writes no audit
/// events. For `bench/api.sh` only, to measure what the audit costs; never
/// a config key, and `serve` says loudly that it is on.
pub const BENCH_DISABLE_API_AUDIT: &str = "TILGANG_BENCH_DISABLE_API_AUDIT";
const BENCH_DISABLE_API_AUDIT_KEY: &str = "bench_disable_api_audit";

impl Config {
    /// Loads the layers. `file` is the explicit `--config`; without it,
    /// `./tilgang.toml` is read when present.
    pub fn load(file: Option<&Path>) -> Result<Config, String> {
        let cfg: Config = Self::figment(file)?.extract().map_err(|e| {
            let mut msg = String::new();
            for err in e {
                msg.push_str(&format!("configuration error: {err}\n"));
            }
            msg.trim_end().to_owned()
        })?;
        cfg.validate()
            .map_err(|e| format!("configuration error: {e}"))?;
        Ok(cfg)
    }

    /// Checks what the types alone cannot.
    fn validate(&self) -> Result<(), String> {
        self.password_hash
            .validate()
            .map_err(|e| format!("password_hash: {e}"))?;
        self.password_policy
            .validate()
            .map_err(|e| format!("password_policy: {e}"))?;
        if self.lockout_threshold == 0 || self.lockout_delays_seconds.is_empty() {
            return Err(
                "lockout_threshold must be at least 1 and lockout_delays_seconds not empty".into(),
            );
        }
        if self.audit_checkpoint_every_events < 1 || self.audit_checkpoint_every_minutes < 1 {
            return Err(
                "audit_checkpoint_every_events and audit_checkpoint_every_minutes must be at least 1"
                    .into(),
            );
        }
        self.lifecycle()
            .validate()
            .map_err(|e| format!("lifecycle: {e}"))?;
        if self.lifecycle_every_hours < 1 {
            return Err("lifecycle_every_hours must be at least 1".into());
        }
        if self.smtp_host.is_some() && self.smtp_from.as_deref().unwrap_or("").is_empty() {
            return Err("smtp_from is needed when smtp_host is set".into());
        }
        if self.smtp_username.is_some() != self.smtp_password.is_some() {
            return Err("smtp_username and smtp_password go together".into());
        }
        if self.api_rate_per_second.is_nan()
            || self.api_rate_per_second <= 0.0
            || self.api_rate_burst < 1
        {
            return Err("api_rate_per_second must be above 0 and api_rate_burst at least 1".into());
        }
        if self.session_idle_minutes < 1 || self.session_lifetime_hours < 1 {
            return Err(
                "session_idle_minutes and session_lifetime_hours must be at least 1".into(),
            );
        }
        Ok(())
    }

    pub fn figment(file: Option<&Path>) -> Result<Figment, String> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(f) if !f.exists() => {
                return Err(format!("configuration file {} does not exist", f.display()))
            }
            Some(f) => fig = fig.merge(Toml::file_exact(f)),
            None if Path::new("tilgang.toml").exists() => {
                fig = fig.merge(Toml::file_exact("tilgang.toml"))
            }
            None => {}
        }
        // `__` nests: TILGANG_PASSWORD_POLICY__MIN_LEN_PUPIL=10.
        fig = fig.merge(Env::prefixed("TILGANG_").split("__").filter(|k| {
            let k = k.as_str().to_ascii_lowercase();
            !k.ends_with("_file") && !NOT_CONFIG.contains(&k.as_str()) && !k.starts_with("test_")
        }));
        // `*_FILE` variants: the value is read from the file named.
        for (key, path) in std::env::vars() {
            let Some(name) = key
                .strip_prefix("TILGANG_")
                .and_then(|k| k.strip_suffix("_FILE"))
            else {
                continue;
            };
            let value = std::fs::read_to_string(&path)
                .map_err(|e| format!("{key}: cannot read {path}: {e}"))?;
            fig = fig.merge((
                name.to_ascii_lowercase(),
                value.trim_end_matches(['\n', '\r']).to_owned(),
            ));
        }
        Ok(fig)
    }

    /// The login settings this config asks for.
    pub fn login(&self) -> tilgang_core::identity::login::LoginConfig {
        tilgang_core::identity::login::LoginConfig {
            per_address_limit: self.login_per_address_limit,
            overall_limit: self.login_overall_limit,
            hash: self.password_hash,
            policy: self.password_policy.clone(),
            lockout: LockoutPolicy {
                threshold: self.lockout_threshold,
                delays_s: self.lockout_delays_seconds.clone(),
                permanent_after: self.lockout_permanent_after,
            },
            idle_timeout_s: self.session_idle_minutes * 60,
            session_lifetime_s: self.session_lifetime_hours * 3600,
            ..Default::default()
        }
    }

    /// `public_url` without a trailing slash; when unset, the local address
    /// `serve` listens on, as `localhost` (a secure context for browsers).
    pub fn public_url(&self) -> String {
        if !self.public_url.is_empty() {
            return self.public_url.trim_end_matches('/').to_owned();
        }
        let port = self.listen.rsplit(':').next().unwrap_or("8080");
        format!("http://localhost:{port}")
    }

    pub fn checkpoints(&self) -> tilgang_core::audit::checkpoint::CheckpointPolicy {
        tilgang_core::audit::checkpoint::CheckpointPolicy {
            every_events: self.audit_checkpoint_every_events,
            every_s: self.audit_checkpoint_every_minutes * 60,
        }
    }

    /// The data API's settings: the rate limit from the config; the audit
    /// on unless the benchmark-only variable switches it off.
    pub fn api(&self) -> tilgang_web::api::ApiConfig {
        let audit_off = std::env::var(BENCH_DISABLE_API_AUDIT).is_ok_and(|v| v == "1");
        if audit_off {
            tracing::error!(
                "{BENCH_DISABLE_API_AUDIT}=1: the data API sends personal data WITHOUT audit \
                 events. This is for benchmarks only; never run a real server like this."
            );
            eprintln!(
                "WARNING: {BENCH_DISABLE_API_AUDIT}=1 - data API audit is OFF (benchmarks only)"
            );
        }
        tilgang_web::api::ApiConfig {
            rate_per_second: self.api_rate_per_second,
            rate_burst: self.api_rate_burst,
            audit: !audit_off,
            ..Default::default()
        }
    }

    /// The lifecycle rules this config asks for.
    pub fn lifecycle(&self) -> tilgang_core::lifecycle::Rules {
        tilgang_core::lifecycle::Rules {
            close_unused_days: self.lifecycle_close_unused_days,
            close_unused_external_days: self.lifecycle_close_unused_external_days,
            archive_after_days: self.lifecycle_archive_after_days,
            erase_after_days: self.lifecycle_erase_after_days,
            import_files_days: self.lifecycle_import_files_days,
            audit: tilgang_core::audit::retention::Retention {
                default_days: self.audit_retention_days,
                by_action: self.audit_retention_by_action.clone(),
            },
            changes_days: self.changes_retention_days,
        }
    }

    /// Where e-mail notices go, when `smtp_host` is set.
    pub fn smtp(&self) -> Option<tilgang_web::notices::SmtpConfig> {
        let host = self.smtp_host.clone().filter(|h| !h.is_empty())?;
        Some(tilgang_web::notices::SmtpConfig {
            host,
            port: self.smtp_port,
            from: self.smtp_from.clone().unwrap_or_default(),
            username: self.smtp_username.clone(),
            password: self.smtp_password.clone(),
            starttls: self.smtp_starttls,
        })
    }

    /// The effective config with secrets hidden, for `config check`.
    pub fn redacted(&self) -> Config {
        Config {
            database_url: tilgang_store::redact_url(&self.database_url),
            smtp_password: self.smtp_password.as_ref().map(|_| "***".to_owned()),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    // figment::Jail hands back its large error type by design.
    #![allow(clippy::unwrap_used, clippy::result_large_err)]
    use super::*;

    #[test]
    fn defaults_then_file_then_env() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "tilgang.toml",
                "listen = \"0.0.0.0:9000\"\nlog_level = \"debug\"",
            )?;
            jail.set_env("TILGANG_LOG_LEVEL", "warn");
            let c = Config::load(None).unwrap();
            assert_eq!(c.database_url, "sqlite://./tilgang.db");
            assert_eq!(c.listen, "0.0.0.0:9000");
            assert_eq!(c.log_level, "warn");
            Ok(())
        });
    }

    #[test]
    fn login_settings_come_from_the_file_and_nested_environment_keys() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "tilgang.toml",
                "session_idle_minutes = 15\n[password_policy]\nrotation_days = 180\n",
            )?;
            jail.set_env("TILGANG_PASSWORD_POLICY__MIN_LEN_PUPIL", "10");
            jail.set_env("TILGANG_PASSWORD_HASH__M_KIB", "65536");
            let login = Config::load(None).unwrap().login();
            assert_eq!(login.idle_timeout_s, 15 * 60);
            assert_eq!(login.policy.rotation_days, Some(180));
            assert_eq!(login.policy.min_len_pupil, 10);
            assert_eq!(login.policy.min_len_employee, 12, "defaults stay");
            assert_eq!(login.hash.m_kib, 65536);
            jail.set_env("TILGANG_PASSWORD_POLICY__MAX_LEN", "20");
            let err = Config::load(None).unwrap_err();
            assert!(err.contains("password_policy"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn audit_retention_per_action_comes_from_a_table_and_unknown_actions_are_named() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "tilgang.toml",
                "changes_retention_days = 500\n[audit_retention_by_action]\n\"login.succeeded\" = 90\n\"sharing.approved\" = 1825\n",
            )?;
            let rules = Config::load(None).unwrap().lifecycle();
            assert_eq!(rules.audit.days("login.succeeded"), 90);
            assert_eq!(rules.audit.days("sharing.approved"), 1825);
            assert_eq!(rules.audit.days("logout"), 183, "the default");
            assert_eq!(rules.changes_days, 500);
            jail.create_file(
                "tilgang.toml",
                "[audit_retention_by_action]\n\"login.suceeded\" = 90\n",
            )?;
            let err = Config::load(None).unwrap_err();
            assert!(err.contains("login.suceeded"), "{err}");
            jail.create_file("tilgang.toml", "audit_retention_days = 0\n")?;
            assert!(Config::load(None).is_err());
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_is_named() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("tilgang.toml", "listne = \"0.0.0.0:9000\"")?;
            let err = Config::load(None).unwrap_err();
            assert!(err.contains("listne"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn secrets_come_from_files() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("db-url", "postgres://tilgang:hunter2@db/tilgang\n")?;
            jail.set_env("TILGANG_DATABASE_URL_FILE", "db-url");
            let c = Config::load(None).unwrap();
            assert_eq!(c.database_url, "postgres://tilgang:hunter2@db/tilgang");
            assert_eq!(
                c.redacted().database_url,
                "postgres://tilgang:***@db/tilgang"
            );
            jail.create_file("smtp-pw", "s3cret\n")?;
            jail.set_env("TILGANG_SMTP_HOST", "smtp.kommune.dk");
            jail.set_env("TILGANG_SMTP_FROM", "tilgang <noreply@kommune.dk>");
            jail.set_env("TILGANG_SMTP_USERNAME", "tilgang");
            jail.set_env("TILGANG_SMTP_PASSWORD_FILE", "smtp-pw");
            let c = Config::load(None).unwrap();
            let smtp = c.smtp().unwrap();
            assert_eq!((smtp.port, smtp.starttls), (587, true));
            assert_eq!(smtp.password.as_deref(), Some("s3cret"));
            assert_eq!(c.redacted().smtp_password.as_deref(), Some("***"));
            Ok(())
        });
    }
}
