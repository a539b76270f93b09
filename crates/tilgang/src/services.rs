//! `tilgang service …` and `tilgang keys …`: registering the services that
//! sign people in through tilgang, and rotating the signing keys.

use anyhow::{bail, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use std::process::ExitCode;
use std::sync::Arc;
use tilgang_core::audit::actions;
use tilgang_core::audit::NewEvent;
use tilgang_core::crypto::DataKeys;
use tilgang_core::identity::session::{ACR_ONE_FACTOR, ACR_TWO_FACTOR};
use tilgang_core::oidc::keys::Alg;
use tilgang_core::oidc::{self, Package, Service};
use tilgang_core::store::Store;
use tilgang_core::{Clock, SystemClock};

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Register a service; a confidential client's secret is printed once and stored hashed.
    #[command(
        after_help = "Examples:\n  tilgang service add --client-id matematikfessor --name \"Matematikfessor\" \\\n      --redirect-uri https://app.example.dk/callback --package small\n  tilgang service add --client-id skoleapp --name Skoleapp --public \\\n      --redirect-uri dk.skoleapp:/callback --package minimal\n  tilgang service add --client-id dataapi --name \"Data API\" --grant client-credentials"
    )]
    Add(AddArgs),
    /// List the registered services.
    #[command(after_help = "Example:\n  tilgang service list --json")]
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one service's registration (never its secret).
    #[command(after_help = "Example:\n  tilgang service show matematikfessor")]
    Show { client_id: String },
    /// Remove a service; every code and token issued to it stops working.
    #[command(after_help = "Example:\n  tilgang service remove matematikfessor")]
    Remove { client_id: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GrantArg {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PackageArg {
    Minimal,
    Small,
    Medium,
    Large,
    Authority,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The client id the service sends (letters, digits, `-`, `_`, `.`).
    #[arg(long)]
    pub client_id: String,
    /// The name people see.
    #[arg(long)]
    pub name: String,
    /// An exact redirect URI (repeat for several).
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    /// An exact URI to return to after logout (repeat for several).
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Allowed grants (repeat); default: authorization-code and refresh-token.
    #[arg(long = "grant", value_enum)]
    pub grants: Vec<GrantArg>,
    /// The data package the service asks for; what it gets at each institution is what that institution approved (`tilgang sharing`), minimal without an approval.
    #[arg(long, value_enum, default_value = "minimal")]
    pub package: PackageArg,
    /// Require two factors for every login to this service.
    #[arg(long)]
    pub two_factor: bool,
    /// A public client (browser or mobile app): no secret, PKCE required.
    #[arg(long)]
    pub public: bool,
    /// Authenticate with private_key_jwt using the keys at this URI (no secret).
    #[arg(long, value_name = "URI", conflicts_with_all = ["public", "jwks"])]
    pub jwks_uri: Option<String>,
    /// Authenticate with private_key_jwt using the public keys in this JWKS file (no secret).
    #[arg(long, value_name = "FILE", conflicts_with = "public")]
    pub jwks: Option<std::path::PathBuf>,
    /// ID token signing algorithm.
    #[arg(long, default_value = "RS256", value_parser = ["RS256", "ES256"])]
    pub id_token_alg: String,
    /// Logins need a licence (`tilgang licence grant`); without one the user gets a page saying whom to ask.
    #[arg(long)]
    pub licence_required: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make new signing keys now; the old ones stay published until the tokens they signed expire.
    #[command(after_help = "Example:\n  tilgang keys rotate")]
    Rotate,
    /// List the published signing keys.
    #[command(after_help = "Example:\n  tilgang keys list")]
    List,
}

fn valid_uri(u: &str) -> bool {
    // Exact strings are compared; a fragment is never allowed (RFC 6749 §3.1.2).
    url_like(u) && !u.contains('#')
}

fn url_like(u: &str) -> bool {
    match u.split_once(':') {
        Some((scheme, rest)) => {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.is_empty()
                && !u.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

pub async fn service(
    (store, _keys): (Arc<dyn Store>, DataKeys),
    cmd: ServiceCommand,
) -> Result<ExitCode> {
    let at = SystemClock.now();
    match cmd {
        ServiceCommand::Add(a) => {
            if a.client_id.is_empty()
                || a.client_id.len() > 100
                || !a
                    .client_id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                bail!("the client id may hold letters, digits, '-', '_' and '.' (at most 100)");
            }
            let mut grants: Vec<&str> = a
                .grants
                .iter()
                .map(|g| match g {
                    GrantArg::AuthorizationCode => oidc::GRANT_CODE,
                    GrantArg::RefreshToken => oidc::GRANT_REFRESH,
                    GrantArg::ClientCredentials => oidc::GRANT_CLIENT_CREDENTIALS,
                })
                .collect();
            if grants.is_empty() {
                grants = vec![oidc::GRANT_CODE, oidc::GRANT_REFRESH];
            }
            grants.dedup();
            if grants.contains(&oidc::GRANT_CODE) && a.redirect_uris.is_empty() {
                bail!("the code flow needs at least one --redirect-uri");
            }
            if a.public && grants.contains(&oidc::GRANT_CLIENT_CREDENTIALS) {
                bail!("a public client cannot use client credentials");
            }
            for u in a.redirect_uris.iter().chain(&a.post_logout_redirect_uris) {
                if !valid_uri(u) {
                    bail!("{u:?} is not an absolute URI without a fragment");
                }
            }
            let jwks = match &a.jwks {
                Some(path) => {
                    let text = std::fs::read_to_string(path)?;
                    let doc: serde_json::Value = serde_json::from_str(&text)?;
                    let keys = doc["keys"].as_array().map(Vec::len).unwrap_or(0);
                    if keys == 0 || text.contains("\"d\"") {
                        bail!("{} must be a JWKS with public keys only", path.display());
                    }
                    Some(doc.to_string())
                }
                None => None,
            };
            let secret =
                (!a.public && a.jwks_uri.is_none() && jwks.is_none()).then(oidc::random_token);
            let package = match a.package {
                PackageArg::Minimal => Package::Minimal,
                PackageArg::Small => Package::Small,
                PackageArg::Medium => Package::Medium,
                PackageArg::Large => Package::Large,
                PackageArg::Authority => Package::Authority,
            };
            let s = Service {
                client_id: a.client_id.clone(),
                name: a.name,
                secret_hash: secret.as_deref().map(oidc::hash_token),
                jwks_uri: a.jwks_uri,
                jwks,
                redirect_uris: a.redirect_uris,
                post_logout_redirect_uris: a.post_logout_redirect_uris,
                grants: grants.iter().map(|g| (*g).to_owned()).collect(),
                package,
                min_acr: if a.two_factor {
                    ACR_TWO_FACTOR
                } else {
                    ACR_ONE_FACTOR
                }
                .to_owned(),
                public: a.public,
                id_token_alg: a.id_token_alg,
                pairwise_salt: oidc::random_salt(),
                created_at: at.unix_timestamp(),
            };
            let ev = NewEvent::new("cli", actions::OIDC_SERVICE_ADDED).details(
                json!({"client_id": s.client_id, "package": package.as_str(), "grants": s.grants}),
            );
            store.add_service(&s, at, ev).await?;
            if a.licence_required {
                let link = tilgang_core::sharing::agreement::ServiceLink {
                    client_id: s.client_id.clone(),
                    provider_id: None,
                    licence_required: true,
                };
                tilgang_core::sharing::agreement::link_service(&*store, &SystemClock, "cli", &link)
                    .await?;
            }
            println!(
                "Service {} registered ({} package).",
                s.client_id,
                package.as_str()
            );
            if let Some(secret) = secret {
                println!("client_secret: {secret}");
                println!("The secret is shown this once and stored only as a hash; hand it to the provider over a safe channel.");
            }
        }
        ServiceCommand::List { json } => {
            let services = store.services().await?;
            if json {
                let list: Vec<_> = services.iter().map(describe).collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if services.is_empty() {
                println!("No services are registered. Add one with `tilgang service add`.");
            } else {
                println!("{:<28} {:<10} {:<8} NAME", "CLIENT ID", "PACKAGE", "TYPE");
                for s in &services {
                    let kind = if s.public { "public" } else { "secret" };
                    println!(
                        "{:<28} {:<10} {:<8} {}",
                        s.client_id,
                        s.package.as_str(),
                        kind,
                        s.name
                    );
                }
            }
        }
        ServiceCommand::Show { client_id } => match store.service(&client_id).await? {
            Some(s) => println!("{}", serde_json::to_string_pretty(&describe(&s))?),
            None => {
                eprintln!("No service with client id {client_id}.");
                return Ok(ExitCode::from(2));
            }
        },
        ServiceCommand::Remove { client_id } => {
            let ev = NewEvent::new("cli", actions::OIDC_SERVICE_REMOVED)
                .details(json!({"client_id": client_id}));
            if store.remove_service(&client_id, at, ev).await? {
                println!("Service {client_id} removed; its codes and tokens no longer work.");
            } else {
                eprintln!("No service with client id {client_id}.");
                return Ok(ExitCode::from(2));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(s: &Service) -> serde_json::Value {
    json!({
        "client_id": s.client_id,
        "name": s.name,
        "client_type": if s.public { "public" } else { "confidential" },
        "token_endpoint_auth_method": if s.public { "none" } else if s.jwks_uri.is_some() || s.jwks.is_some() { "private_key_jwt" } else { "client_secret_basic" },
        "jwks_uri": s.jwks_uri,
        "redirect_uris": s.redirect_uris,
        "post_logout_redirect_uris": s.post_logout_redirect_uris,
        "grant_types": s.grants,
        "package": s.package.as_str(),
        "min_acr": s.min_acr,
        "id_token_signed_response_alg": s.id_token_alg,
        "subject_type": if s.package == Package::Minimal { "pairwise" } else { "public" },
    })
}

pub async fn keys((store, keys): (Arc<dyn Store>, DataKeys), cmd: KeysCommand) -> Result<ExitCode> {
    let config = oidc::OidcConfig::default();
    match cmd {
        KeysCommand::Rotate => {
            tilgang_web::oidc::ensure_keys(&*store, &keys, &SystemClock, &config).await?;
            for &alg in Alg::ALL {
                let kid =
                    tilgang_web::oidc::rotate(&*store, &keys, &SystemClock, &config, alg, "cli")
                        .await?;
                println!("{}: new key {kid}", alg.as_str());
            }
            println!(
                "The previous keys stay published until the ID tokens they signed have expired."
            );
            println!("Running servers pick up the new keys within a minute.");
        }
        KeysCommand::List => {
            let now = SystemClock.now().unix_timestamp();
            for k in store.signing_keys(now).await? {
                let state = if k.signs_at(now) {
                    "signing"
                } else {
                    "published"
                };
                println!("{} {:<5} {:<9} {}", k.alg.as_str(), "", state, k.kid);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
