//! `tilgang provider …`, `tilgang sharing …` and `tilgang licence …`: the
//! operator's side of sharing. Decisions from the CLI are the operator's
//! (audited as `cli`): for institutions whose roster delivers no leader
//! yet, and for a municipality deciding for all its institutions.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use std::process::ExitCode;
use std::sync::Arc;
use tilgang_core::crypto::DataKeys;
use tilgang_core::identity::login::{self, LoginConfig};
use tilgang_core::sharing::agreement::{
    self, Addressee, Decider, NewProvider, RequestSpec, RequestStatus, ServiceLink,
};
use tilgang_core::sharing::licence::{self, Grantor, LicenceScope, NewLicence};
use tilgang_core::sharing::portal;
use tilgang_core::store::Store;
use tilgang_core::SystemClock;

const OPERATOR: &str = "cli";

#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// Register a provider (an organisation that runs services).
    #[command(
        after_help = "Example:\n  tilgang provider add --name \"Matteforlaget A/S\" --cvr 87654321 \\\n      --address \"Forlagsvej 2, 8000 Aarhus C\" --contact kontakt@matte.dk --security-contact security@matte.dk"
    )]
    Add {
        #[arg(long)]
        name: String,
        /// The company number (CVR): eight digits.
        #[arg(long)]
        cvr: String,
        #[arg(long, default_value = "")]
        address: String,
        #[arg(long)]
        contact: String,
        /// Where security incidents are reported.
        #[arg(long)]
        security_contact: String,
    },
    /// List providers.
    #[command(after_help = "Example:\n  tilgang provider list")]
    List,
    /// Show a provider and its services.
    #[command(after_help = "Example:\n  tilgang provider show 1")]
    Show { id: i64 },
    /// Mark a provider as a public authority (may receive the authority package), or unmark it.
    #[command(
        after_help = "Example:\n  tilgang provider mark-authority 3\n  tilgang provider mark-authority 3 --off"
    )]
    MarkAuthority {
        id: i64,
        #[arg(long)]
        off: bool,
    },
    /// Link a registered service to its provider (and set whether logins need a licence).
    #[command(
        after_help = "Example:\n  tilgang provider link 1 --service matematikfessor --licence-required"
    )]
    Link {
        id: i64,
        #[arg(long)]
        service: String,
        #[arg(long)]
        licence_required: bool,
    },
    /// Logins for a provider's people to the provider portal (/provider).
    #[command(subcommand)]
    User(ProviderUserCommand),
}

#[derive(Debug, Subcommand)]
pub enum ProviderUserCommand {
    /// Make a portal login for a provider; prints its user id and an activation code.
    #[command(
        after_help = "Example:\n  tilgang provider user add 1 --name \"Sofie Berg\" --email sofie@matte.dk"
    )]
    Add {
        /// The provider's id (`tilgang provider list`).
        provider_id: i64,
        /// Full name.
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
    },
    /// List a provider's portal logins.
    #[command(after_help = "Example:\n  tilgang provider user list 1")]
    List { provider_id: i64 },
}

#[derive(Debug, Args)]
pub struct Target {
    /// One institution number.
    #[arg(long, conflicts_with_all = ["municipality", "institutions"])]
    pub institution: Option<String>,
    /// Every institution of this municipality (code).
    #[arg(long, conflicts_with = "institutions")]
    pub municipality: Option<String>,
    /// A comma-separated list of institution numbers.
    #[arg(long, value_delimiter = ',')]
    pub institutions: Vec<String>,
}

impl Target {
    fn addressee(self) -> Result<Addressee> {
        Ok(match (self.institution, self.municipality) {
            (Some(i), _) => Addressee::Institution(i),
            (_, Some(m)) => Addressee::Municipality(m),
            _ if !self.institutions.is_empty() => Addressee::List(self.institutions),
            _ => bail!("name --institution, --municipality or --institutions"),
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum SharingCommand {
    /// Send a data access request for a service (the request as a JSON file; see docs/operations.md).
    #[command(
        after_help = "Examples:\n  tilgang sharing request --service matematikfessor --spec request.json --institution 101001\n  tilgang sharing request --service matematikfessor --spec request.json --municipality 751"
    )]
    Request {
        #[arg(long)]
        service: String,
        /// JSON: purpose, package, delivery, filters, sub_processors, locations, retention, dpa_reference.
        #[arg(long, value_name = "FILE")]
        spec: std::path::PathBuf,
        #[command(flatten)]
        to: Target,
    },
    /// List requests (newest first), of a service and/or at an institution.
    #[command(after_help = "Example:\n  tilgang sharing list --institution 101001 --pending")]
    List {
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        institution: Option<String>,
        /// Only those waiting for a decision.
        #[arg(long)]
        pending: bool,
    },
    /// Approve a pending request (or, with --municipality, every pending request of a service there).
    #[command(
        after_help = "Examples:\n  tilgang sharing approve 17\n  tilgang sharing approve --municipality 751 --service matematikfessor"
    )]
    Approve {
        request: Option<i64>,
        #[arg(long, requires = "service")]
        municipality: Option<String>,
        #[arg(long)]
        service: Option<String>,
    },
    /// Reject a pending request, with a reason the provider sees.
    #[command(after_help = "Example:\n  tilgang sharing reject 17 --reason \"no DPA signed\"")]
    Reject {
        request: i64,
        #[arg(long)]
        reason: String,
    },
    /// Revoke the approval in force at once (the service falls back to the minimal package).
    #[command(
        after_help = "Example:\n  tilgang sharing revoke --service matematikfessor --institution 101001 --reason \"contract ended\""
    )]
    Revoke {
        #[arg(long)]
        service: String,
        #[arg(long)]
        institution: String,
        #[arg(long)]
        reason: String,
    },
    /// Block a service at an institution: no data, no login.
    #[command(
        after_help = "Example:\n  tilgang sharing block --service spilapp --institution 101001 --reason \"not approved for pupils\""
    )]
    Block {
        #[arg(long)]
        service: String,
        #[arg(long)]
        institution: String,
        #[arg(long)]
        reason: String,
    },
    /// Lift a block.
    #[command(
        after_help = "Example:\n  tilgang sharing unblock --service spilapp --institution 101001"
    )]
    Unblock {
        #[arg(long)]
        service: String,
        #[arg(long)]
        institution: String,
    },
    /// The full history of a service at an institution, and where it stands now.
    #[command(
        after_help = "Example:\n  tilgang sharing history --service matematikfessor --institution 101001"
    )]
    History {
        #[arg(long)]
        service: String,
        #[arg(long)]
        institution: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum LicenceCommand {
    /// Grant a service to an institution, a group or a person.
    #[command(
        after_help = "Examples:\n  tilgang licence grant --service matematikfessor --institution 101001 --from 2026-08-01 --to 2027-07-31\n  tilgang licence grant --service matematikfessor --institution 101001 --group 5A --from 2026-08-01\n  tilgang licence grant --service matematikfessor --institution 101001 --person abcd1234 --from 2026-08-01 --consent ORDER-118"
    )]
    Grant {
        #[arg(long)]
        service: String,
        #[arg(long)]
        institution: String,
        /// A group id (the class or team in the source system).
        #[arg(long, conflicts_with = "person")]
        group: Option<String>,
        /// A user id.
        #[arg(long)]
        person: Option<String>,
        /// First day (YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// Last day (YYYY-MM-DD); open when left out.
        #[arg(long)]
        to: Option<String>,
        /// Granted by the provider with the institution's consent: its reference.
        #[arg(long)]
        consent: Option<String>,
    },
    /// Withdraw a licence.
    #[command(after_help = "Example:\n  tilgang licence withdraw 12")]
    Withdraw { id: i64 },
    /// List licences of a service and/or at an institution.
    #[command(after_help = "Example:\n  tilgang licence list --institution 101001")]
    List {
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        institution: Option<String>,
    },
    /// Grant in bulk from CSV: service,institution,scope,target,from,to (nothing is granted if any line is wrong).
    #[command(
        after_help = "Example:\n  tilgang licence import licences.csv\n\nlicences.csv:\n  service,institution,scope,target,from,to\n  matematikfessor,101001,institution,,2026-08-01,2027-07-31\n  matematikfessor,101002,group,5A,2026-08-01,"
    )]
    Import {
        file: std::path::PathBuf,
        /// Granted by the provider with the institutions' consent: its reference.
        #[arg(long)]
        consent: Option<String>,
    },
}

fn date(s: &str, what: &str) -> Result<time::Date> {
    tilgang_core::roster::import::native::parse_date(s)
        .with_context(|| format!("{what} {s:?} is not a date (YYYY-MM-DD)"))
}

fn ts(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| t.to_string())
}

pub async fn provider(
    (store, _): (Arc<dyn Store>, DataKeys),
    login_cfg: LoginConfig,
    cmd: ProviderCommand,
) -> Result<ExitCode> {
    let (store, clock) = (&*store, &SystemClock);
    match cmd {
        ProviderCommand::User(ProviderUserCommand::Add {
            provider_id,
            name,
            email,
        }) => {
            let user_id = portal::add_user(store, clock, OPERATOR, provider_id, &name, &email)
                .await
                .with_context(|| format!("provider {provider_id}"))?;
            let Some(account) = store.account(&user_id).await? else {
                bail!("the new login {user_id} was not found");
            };
            let code =
                login::issue_activation(store, clock, &login_cfg, &account, OPERATOR).await?;
            println!("Provider login {user_id} made for {name}.");
            println!("Activation code: {code}");
            println!("It works once at /activate; then log in at /login and go to /provider. Hand it over over a safe channel.");
        }
        ProviderCommand::User(ProviderUserCommand::List { provider_id }) => {
            let users = store.provider_users(provider_id).await?;
            if users.is_empty() {
                println!("Provider {provider_id} has no portal logins. Add one with `tilgang provider user add {provider_id}`.");
            }
            for u in users {
                println!("{:<14} {}", u.user_id, u.name);
            }
        }
        ProviderCommand::Add {
            name,
            cvr,
            address,
            contact,
            security_contact,
        } => {
            let p = NewProvider {
                name,
                cvr,
                address,
                contact,
                security_contact,
            };
            let id = agreement::add_provider(store, clock, OPERATOR, &p).await?;
            println!("Provider {id} registered. Link its services with `tilgang provider link {id} --service CLIENT_ID`.");
        }
        ProviderCommand::List => {
            let list = store.providers().await?;
            if list.is_empty() {
                println!("No providers are registered. Add one with `tilgang provider add`.");
            }
            println!("{:<5} {:<9} {:<10} NAME", "ID", "CVR", "AUTHORITY");
            for p in list {
                let auth = if p.authority { "yes" } else { "no" };
                println!("{:<5} {:<9} {:<10} {}", p.id, p.cvr, auth, p.name);
            }
        }
        ProviderCommand::Show { id } => {
            let Some(p) = store.providers().await?.into_iter().find(|p| p.id == id) else {
                eprintln!("No provider {id}.");
                return Ok(ExitCode::from(2));
            };
            println!("{}", serde_json::to_string_pretty(&p)?);
            for s in store.services().await? {
                if let Some(l) = store.service_link(&s.client_id).await? {
                    if l.provider_id == Some(id) {
                        let lic = if l.licence_required {
                            " (licence required)"
                        } else {
                            ""
                        };
                        println!("service: {} ({}){lic}", s.client_id, s.name);
                    }
                }
            }
        }
        ProviderCommand::MarkAuthority { id, off } => {
            if !agreement::mark_authority(store, clock, OPERATOR, id, !off).await? {
                eprintln!("No provider {id}.");
                return Ok(ExitCode::from(2));
            }
            if off {
                println!("Provider {id} is no longer marked as a public authority; an authority package it holds acts as large from now on.");
            } else {
                println!("Provider {id} is marked as a public authority: it may ask for the authority package.");
            }
        }
        ProviderCommand::Link {
            id,
            service,
            licence_required,
        } => {
            let link = ServiceLink {
                client_id: service.clone(),
                provider_id: Some(id),
                licence_required,
            };
            agreement::link_service(store, clock, OPERATOR, &link).await?;
            println!("Service {service} belongs to provider {id}.");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn sharing(
    (store, _): (Arc<dyn Store>, DataKeys),
    cmd: SharingCommand,
) -> Result<ExitCode> {
    let (store, clock) = (&*store, &SystemClock);
    let op = Decider::Operator(OPERATOR);
    match cmd {
        SharingCommand::Request { service, spec, to } => {
            let text = std::fs::read_to_string(&spec)
                .with_context(|| format!("reading {}", spec.display()))?;
            let spec: RequestSpec = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a valid request", spec.display()))?;
            let sent =
                agreement::request(store, clock, OPERATOR, &service, &spec, &to.addressee()?)
                    .await?;
            for (inst, id) in &sent {
                println!("request {id} to institution {inst}");
            }
            if spec.package == tilgang_core::sharing::Package::Minimal {
                println!("The minimal package needs no approval; the requests are listed.");
            }
        }
        SharingCommand::List {
            service,
            institution,
            pending,
        } => {
            let list = store
                .requests(service.as_deref(), institution.as_deref())
                .await?;
            println!(
                "{:<6} {:<24} {:<12} {:<10} {:<11} CREATED",
                "ID", "SERVICE", "INSTITUTION", "PACKAGE", "STATUS"
            );
            for r in list {
                if pending && r.status != RequestStatus::Pending {
                    continue;
                }
                println!(
                    "{:<6} {:<24} {:<12} {:<10} {:<11} {}",
                    r.id,
                    r.client_id,
                    r.institution,
                    r.spec.package.as_str(),
                    r.status.as_str(),
                    ts(r.created_at)
                );
            }
        }
        SharingCommand::Approve {
            request,
            municipality,
            service,
        } => match (request, municipality, service) {
            (Some(id), None, _) => {
                let a = agreement::approve(store, clock, op, id).await?;
                println!(
                    "Approved: {} at {} now has the {} package (version {}).",
                    a.client_id,
                    a.institution,
                    a.spec.package.as_str(),
                    a.version
                );
            }
            (None, Some(m), Some(s)) => {
                let made =
                    agreement::approve_for_municipality(store, clock, op, &m, &s, None).await?;
                for a in &made {
                    println!("Approved at {} (version {}).", a.institution, a.version);
                }
                println!("{} approval(s) for {s} in municipality {m}.", made.len());
            }
            _ => bail!("name a request id, or --municipality and --service"),
        },
        SharingCommand::Reject { request, reason } => {
            agreement::reject(store, clock, op, request, &reason).await?;
            println!("Request {request} rejected.");
        }
        SharingCommand::Revoke {
            service,
            institution,
            reason,
        } => {
            if agreement::revoke(store, clock, op, &service, &institution, &reason).await? {
                println!("Revoked: {service} gets only the minimal package at {institution} from now on.");
            } else {
                eprintln!("{service} has no approval in force at {institution}.");
                return Ok(ExitCode::from(2));
            }
        }
        SharingCommand::Block {
            service,
            institution,
            reason,
        } => {
            if agreement::set_block(store, clock, op, &service, &institution, Some(&reason)).await?
            {
                println!("Blocked: {service} gets no data and no logins at {institution}.");
            } else {
                println!("{service} was already blocked at {institution}.");
            }
        }
        SharingCommand::Unblock {
            service,
            institution,
        } => {
            if agreement::set_block(store, clock, op, &service, &institution, None).await? {
                println!("Unblocked {service} at {institution}.");
            } else {
                println!("{service} was not blocked at {institution}.");
            }
        }
        SharingCommand::History {
            service,
            institution,
        } => {
            let a = agreement::agreement(store, &service, &institution).await?;
            match &a.approval {
                Some(ap) => println!(
                    "In force: version {}, {} package, approved by {} at {}",
                    ap.version,
                    ap.spec.package.as_str(),
                    ap.approved_by,
                    ts(ap.approved_at)
                ),
                None => println!("In force: minimal package (no approval)"),
            }
            if let Some(p) = &a.pending {
                println!(
                    "Pending: request {} for the {} package",
                    p.id,
                    p.spec.package.as_str()
                );
                let changes = agreement::changes(a.approval.as_ref().map(|x| &x.spec), &p.spec);
                println!("  changes: {}", serde_json::to_string(&changes)?);
            }
            if let Some(b) = &a.block {
                println!(
                    "Blocked since {} by {}: {}",
                    ts(b.blocked_at),
                    b.blocked_by,
                    b.reason
                );
            }
            println!();
            for h in store.history(&service, &institution).await? {
                println!(
                    "{} {:<20} {:<16} {}",
                    ts(h.at),
                    h.action,
                    h.actor,
                    h.details
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn licence(
    (store, _): (Arc<dyn Store>, DataKeys),
    cmd: LicenceCommand,
) -> Result<ExitCode> {
    let (store, clock) = (&*store, &SystemClock);
    let grantor = |consent: Option<String>| match consent {
        Some(c) => Grantor::Provider { consent: c },
        None => Grantor::Institution,
    };
    match cmd {
        LicenceCommand::Grant {
            service,
            institution,
            group,
            person,
            from,
            to,
            consent,
        } => {
            let scope = match (group, person) {
                (Some(g), _) => LicenceScope::Group(g),
                (_, Some(p)) => LicenceScope::Person(p),
                _ => LicenceScope::Institution,
            };
            let l = NewLicence {
                client_id: service,
                institution,
                scope,
                valid_from: date(&from, "--from")?,
                valid_to: to.as_deref().map(|t| date(t, "--to")).transpose()?,
                granted_by: OPERATOR.into(),
                consent: None,
            };
            let ids = licence::grant(store, clock, OPERATOR, &grantor(consent), vec![l]).await?;
            println!("Licence {} granted.", ids[0]);
        }
        LicenceCommand::Withdraw { id } => {
            if licence::withdraw(store, clock, OPERATOR, id).await? {
                println!("Licence {id} withdrawn.");
            } else {
                eprintln!("No live licence {id}.");
                return Ok(ExitCode::from(2));
            }
        }
        LicenceCommand::List {
            service,
            institution,
        } => {
            println!(
                "{:<5} {:<24} {:<12} {:<12} {:<12} {:<11} {:<11} STATE",
                "ID", "SERVICE", "INSTITUTION", "SCOPE", "TARGET", "FROM", "TO"
            );
            for l in store
                .licences(service.as_deref(), institution.as_deref())
                .await?
            {
                let n = &l.new;
                println!(
                    "{:<5} {:<24} {:<12} {:<12} {:<12} {:<11} {:<11} {}",
                    l.id,
                    n.client_id,
                    n.institution,
                    n.scope.kind(),
                    n.scope.target(),
                    n.valid_from.to_string(),
                    n.valid_to.map(|d| d.to_string()).unwrap_or_default(),
                    if l.withdrawn_at.is_some() {
                        "withdrawn"
                    } else {
                        "live"
                    }
                );
            }
        }
        LicenceCommand::Import { file, consent } => {
            let data =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let rows = match licence::parse_csv(&data, OPERATOR) {
                Ok(rows) => rows,
                Err(issues) => {
                    for i in &issues {
                        eprintln!("{}: {i}", file.display());
                    }
                    eprintln!("{} error(s); nothing was granted.", issues.len());
                    return Ok(ExitCode::from(2));
                }
            };
            let n = rows.len();
            licence::grant(store, clock, OPERATOR, &grantor(consent), rows).await?;
            println!("{n} licence(s) granted from {}.", file.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
