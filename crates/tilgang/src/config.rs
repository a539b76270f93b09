//! One `Config`, layered with figment: defaults, then `tilgang.toml` (or the
//! file `--config` names), then `TILGANG_*` environment variables. A secret
//! may come from a file: `TILGANG_DATABASE_URL_FILE=/run/secrets/db`.
//! Unknown keys are an error that names the key.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "sqlite://./tilgang.db".into(),
            listen: "127.0.0.1:8080".into(),
            master_key_path: "./tilgang.key".into(),
            log_format: LogFormat::Text,
            log_level: "info".into(),
            login_per_address_limit: 3_000,
            login_overall_limit: 200_000,
            public_url: String::new(),
        }
    }
}

/// Environment variables that belong to tooling, not to the config.
const NOT_CONFIG: &[&str] = &["config", "test_postgres_url", "log", "bin"];

impl Config {
    /// Loads the layers. `file` is the explicit `--config`; without it,
    /// `./tilgang.toml` is read when present.
    pub fn load(file: Option<&Path>) -> Result<Config, String> {
        Self::figment(file)?.extract().map_err(|e| {
            let mut msg = String::new();
            for err in e {
                msg.push_str(&format!("configuration error: {err}\n"));
            }
            msg.trim_end().to_owned()
        })
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
        fig = fig.merge(Env::prefixed("TILGANG_").filter(|k| {
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

    /// The effective config with secrets hidden, for `config check`.
    pub fn redacted(&self) -> Config {
        Config {
            database_url: tilgang_store::redact_url(&self.database_url),
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
            Ok(())
        });
    }
}
