//! Command-line interface. Every command's help says what it does and gives
//! an example.

use crate::config::LogFormat;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "tilgang",
    version,
    about = "tilgang: one login and controlled data access for schools and day-care",
    long_about = "tilgang is an identity and data-access hub for schools and day-care: it imports \
the roster from the schools' administrative systems, signs pupils, staff and parents in to \
the providers' services, and shares only the data each institution approved.",
    after_help = "Examples:\n  tilgang demo                      run a demo municipality on http://127.0.0.1:8080\n  tilgang import ./roster/          import native JSON or a OneRoster bundle\n  tilgang serve --listen 0.0.0.0:8080\n\nConfiguration: defaults, then tilgang.toml, then TILGANG_* variables (see `tilgang config check`)."
)]
pub struct Cli {
    /// Configuration file (default: ./tilgang.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve tilgang over HTTP (migrates the database first).
    #[command(after_help = "Example:\n  tilgang serve --listen 0.0.0.0:8080 --log-format json")]
    Serve(ServeArgs),
    /// Run a demo: a generated municipality in ./tilgang-demo.db, served over HTTP.
    #[command(after_help = "Example:\n  tilgang demo --listen 127.0.0.1:8080")]
    Demo(DemoArgs),
    /// Import a roster: native JSON/NDJSON or a OneRoster 1.2 CSV bundle (file, directory or zip).
    #[command(
        after_help = "Examples:\n  tilgang import ./export/                 every institution in the directory\n  tilgang import roster.zip --format oneroster --dry-run\n  tilgang import changes.json --delta --institution 101001"
    )]
    Import(ImportArgs),
    /// Export one institution's roster as native JSON (CPR numbers left out unless asked for).
    #[command(after_help = "Example:\n  tilgang export --institution 101001 --out 101001.json")]
    Export(ExportArgs),
    /// Generate a synthetic roster in the native format (no real person in it).
    #[command(
        after_help = "Examples:\n  tilgang gen --out ./synth --scale municipality\n  tilgang gen --out ./national --scale national --seed 7"
    )]
    Gen(GenArgs),
    /// Print the data API's OpenAPI 3.1 document (what docs/openapi.json holds).
    #[command(after_help = "Example:\n  tilgang openapi > docs/openapi.json")]
    Openapi,
    /// Apply database migrations and exit.
    #[command(
        after_help = "Example:\n  TILGANG_DATABASE_URL=postgres://tilgang@db/tilgang tilgang migrate"
    )]
    Migrate,
    /// Audit trail tools.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Check that a running tilgang is ready (for container health checks); exits non-zero if not.
    #[command(after_help = "Example:\n  tilgang healthcheck --url http://127.0.0.1:8080")]
    Healthcheck(HealthcheckArgs),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// List the security reports sent through the public reporting page, newest first.
    #[command(after_help = "Example:\n  tilgang security-reports")]
    SecurityReports,
    /// Accounts: activation codes, passwords, unlocking.
    #[command(subcommand)]
    User(UserCommand),
    /// Services (OpenID Connect clients): register, list, show, remove.
    #[command(subcommand)]
    Service(crate::services::ServiceCommand),
    /// OpenID Connect signing keys.
    #[command(subcommand)]
    Keys(crate::services::KeysCommand),
    /// Providers (organisations that run services): register, list, mark as public authority.
    #[command(subcommand)]
    Provider(crate::sharing::ProviderCommand),
    /// Data access agreements: requests, approvals, revocations, blocks, history.
    #[command(subcommand)]
    Sharing(crate::sharing::SharingCommand),
    /// Licences: which institutions, groups and persons may use a service.
    #[command(subcommand)]
    Licence(crate::sharing::LicenceCommand),
    /// Lifecycle jobs (closing unused accounts, archiving, erasure): list them, or run one now.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Write an anonymised copy of the database (a SQLite file, also from PostgreSQL) for a vendor to debug on.
    #[command(
        after_help = "Example:\n  tilgang anonymize --out tilgang-anon.db\n\nEvery personal field is replaced (names, login names, e-mails, birth dates, CPR numbers, phones,\naddresses, gender, password hashes, second-factor secrets, recovery codes, sessions, tokens, keys);\nids and relations are kept. The copy's audit chain no longer verifies (event details are cleared)."
    )]
    Anonymize(AnonymizeArgs),
    /// The rights of a person: export everything held about them, or erase it.
    #[command(subcommand)]
    Person(PersonCommand),
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List the jobs and the rules they apply.
    #[command(after_help = "Example:\n  tilgang jobs list")]
    List,
    /// Run one job now (waits for no schedule; refused while another replica runs it).
    #[command(
        after_help = "Examples:\n  tilgang jobs run close-unused --dry-run   list the accounts it would close\n  tilgang jobs run archive-inactive\n  tilgang jobs run audit-retention --dry-run   count the audit events it would clear or remove"
    )]
    Run {
        /// close-unused, archive-inactive, erase-expired, purge-import-files,
        /// changes-retention or audit-retention.
        name: String,
        /// List what the job would change; change nothing, write no audit event.
        #[arg(long)]
        dry_run: bool,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct AnonymizeArgs {
    /// The SQLite file to write (must not exist).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum PersonCommand {
    /// Everything tilgang holds about a person, as JSON (audited); ID is a user id or an internal id (#12).
    #[command(after_help = "Example:\n  tilgang person export abcd1234 --out abcd1234.json")]
    Export {
        id: String,
        /// Output file (default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Erase a person's personal data (audited); refused while the roster still delivers them.
    #[command(
        after_help = "Example:\n  tilgang person erase abcd1234 --reason 'request 2026-114'"
    )]
    Erase {
        id: String,
        /// Why (a request's reference); kept in the audit log.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Issue a one-time activation code with which the person sets a password (valid 7 days).
    #[command(after_help = "Example:\n  tilgang user activation-code abcd1234")]
    ActivationCode { user_id: String },
    /// Set a person's password, read from standard input (checked against the password policy).
    #[command(
        after_help = "Example:\n  printf '%s\\n' 'a long pass phrase' | tilgang user set-password abcd1234"
    )]
    SetPassword { user_id: String },
    /// Lift a lockout after failed logins.
    #[command(after_help = "Example:\n  tilgang user unlock abcd1234")]
    Unlock { user_id: String },
    /// Remove a person's second factors and recovery codes (they lost them); check who they are first.
    #[command(after_help = "Example:\n  tilgang user reset-factors abcd1234")]
    ResetFactors { user_id: String },
    /// Give an employee a right at an institution: pupil_reset (reset pupils' logins; for a school whose roster has no leader yet, leaders grant it on /staff) or institution_admin (the municipality names them the school's admin: data access agreements, audit search, rights); or, with --municipality, municipality_admin (an admin of every institution of the municipality, deciding data access requests for all of them at once on /municipality/CODE); or, with neither, operator (security reports on /operator).
    #[command(
        after_help = "Examples:\n  tilgang user grant-right abcd1234 --institution 101001 --reason 'vikar i 1.A'\n  tilgang user grant-right efgh5678 --institution 101001 --right institution_admin --reason 'skolesekretær, aftale med kommunen'\n  tilgang user grant-right ijkl9012 --municipality 751 --right municipality_admin --reason 'skoleafdelingen, aftale om dataadgang'\n  tilgang user grant-right mnop3456 --right operator --reason 'driftsvagt, IT-afdelingen'"
    )]
    GrantRight {
        user_id: String,
        /// pupil_reset or institution_admin (the default: pupil_reset); municipality_admin with --municipality; operator with neither.
        #[arg(long)]
        right: Option<String>,
        #[command(flatten)]
        at: RightScope,
        /// Why; kept in the audit log.
        #[arg(long)]
        reason: String,
    },
    /// Take back a right given with grant-right or on /staff.
    #[command(
        after_help = "Examples:\n  tilgang user revoke-right abcd1234 --institution 101001\n  tilgang user revoke-right ijkl9012 --municipality 751 --right municipality_admin --reason 'ny stilling'"
    )]
    RevokeRight {
        user_id: String,
        /// pupil_reset or institution_admin (the default: pupil_reset); municipality_admin with --municipality; operator with neither.
        #[arg(long)]
        right: Option<String>,
        #[command(flatten)]
        at: RightScope,
        /// Why; kept in the audit log.
        #[arg(long, default_value = "")]
        reason: String,
    },
}

/// Where a right holds: one institution, or a whole municipality.
#[derive(Debug, Args)]
#[group(required = false, multiple = false)]
pub struct RightScope {
    /// The institution number.
    #[arg(long)]
    pub institution: Option<String>,
    /// The municipality code (as the roster's institutions carry it).
    #[arg(long)]
    pub municipality: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides `listen` in the config).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Log format (overrides `log_format`).
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The demo database (created with a generated municipality when missing).
    #[arg(long, value_name = "FILE", default_value = "./tilgang-demo.db")]
    pub database: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Native,
    Oneroster,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A file, a directory or a zip.
    pub path: PathBuf,
    /// The input format (detected from the content when left out).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Import only this institution.
    #[arg(long, value_name = "NUMBER")]
    pub institution: Option<String>,
    /// Apply only what the input names (a full import ends what it leaves out).
    #[arg(long)]
    pub delta: bool,
    /// Validate and count the changes, but write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long, value_name = "NUMBER")]
    pub institution: String,
    /// Output file (default: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Include CPR numbers (audited; handle the file as confidential).
    #[arg(long)]
    pub include_cpr: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScaleArg {
    School,
    Municipality,
    National,
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Output directory (one JSON document per institution).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "school")]
    pub scale: ScaleArg,
    /// Number of institutions (overrides the scale's).
    #[arg(long)]
    pub institutions: Option<usize>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Change this percentage of the persons (a new family name), to
    /// benchmark re-imports of a slightly changed roster.
    #[arg(long, default_value_t = 0, value_name = "PERCENT")]
    pub changed_percent: u8,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain; name the first broken link and exit non-zero if any.
    #[command(after_help = "Example:\n  tilgang audit verify")]
    Verify,
    /// Apply audit retention now: clear the content of events past their
    /// action's period, remove whole events past the longest, up to the
    /// newest signed checkpoint before that cut. The same as `tilgang jobs
    /// run audit-retention` (the server runs it with the lifecycle jobs).
    #[command(
        after_help = "Example:\n  tilgang audit prune\n  tilgang jobs run audit-retention --dry-run"
    )]
    Prune,
    /// Signed checkpoints of the chain: make one now, or export them all.
    #[command(subcommand)]
    Checkpoint(CheckpointCommand),
    /// Search the audit log (every event; the search itself is audited),
    /// newest first, one JSON event per line; the last line names the
    /// cursor for the next page.
    #[command(
        after_help = "Example:\n  tilgang audit search --person 101001p1 --from 2026-11-01 --limit 20\n  tilgang audit search --action oidc.login --service lms --after 4711"
    )]
    Search(AuditSearchArgs),
}

#[derive(Debug, Args)]
pub struct AuditSearchArgs {
    /// The person's user id (login name); events naming them as a subject.
    #[arg(long)]
    pub person: Option<String>,
    /// A service's client id: events it caused or that name it.
    #[arg(long)]
    pub service: Option<String>,
    /// An action such as `login.failed` (see docs/operations.md).
    #[arg(long)]
    pub action: Option<String>,
    /// From this day (YYYY-MM-DD) or time (RFC 3339), inclusive, UTC.
    #[arg(long)]
    pub from: Option<String>,
    /// Up to this day (YYYY-MM-DD, inclusive) or time (RFC 3339, exclusive).
    #[arg(long)]
    pub to: Option<String>,
    /// The institution number the events concern.
    #[arg(long)]
    pub institution: Option<String>,
    /// At most this many events (1 to 500).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Continue after this sequence number (the cursor the previous page printed).
    #[arg(long)]
    pub after: Option<i64>,
}

#[derive(Debug, Subcommand)]
pub enum CheckpointCommand {
    /// Sign the chain's current head now (the server also does this on a
    /// schedule); prints the checkpoint as JSON.
    #[command(after_help = "Example:\n  tilgang audit checkpoint make")]
    Make,
    /// Write every signed checkpoint and the public key as JSON, for keeping
    /// somewhere the database's administrators cannot change it.
    #[command(
        after_help = "Example:\n  tilgang audit checkpoint export --out checkpoints-2026-12.json"
    )]
    Export {
        /// The file to write (standard output when left out).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Base URL of the running server (default: http:// + `listen` from the config).
    #[arg(long)]
    pub url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load the configuration, report errors, print the effective values (secrets hidden).
    #[command(after_help = "Example:\n  TILGANG_LISTEN=0.0.0.0:80 tilgang config check")]
    Check,
}
