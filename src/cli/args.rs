//! The command line's grammar.

use crate::domain::{DisplayType, Expiration, Flavor, PageSize, ProfileChoices, SortKey};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "elitea-tokens",
    version,
    about = "Manage ELITEA personal access tokens",
    long_about = "Manage ELITEA personal access tokens: create, list, delete, and check them.\n\n\
                  Try it without an account: `elitea-tokens --sandbox create my-first-token`.",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// ELITEA server origin, e.g. https://next.elitea.ai (`sandbox` = the embedded sandbox)
    #[arg(long, env = "ELITEA_SERVER", global = true, value_name = "URL")]
    pub server: Option<String>,

    /// Personal token to authenticate with (prefer the environment variable to the flag)
    #[arg(
        long,
        env = "ELITEA_TOKEN",
        global = true,
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,

    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,

    /// Work against the embedded sandbox in the data directory (overrides --server)
    #[arg(long, global = true)]
    pub sandbox: bool,

    /// Allow plain http:// to a machine other than this one (sends the token unencrypted)
    #[arg(long, global = true)]
    pub insecure_http: bool,

    /// Time allowed for a whole request
    #[arg(long, env = "ELITEA_TIMEOUT", global = true, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// Time allowed to connect
    #[arg(long, global = true, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,

    /// More log lines on stderr (-v, -vv); never a token
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List tokens as the Personal Tokens page does
    List(ListArgs),
    /// Create a token and print its full value once
    Create(CreateArgs),
    /// Delete a token (permanent; asks to type its name)
    Delete(DeleteArgs),
    /// Show the server, the secret store, whether the credential works, and how the tokens stand
    Status,
    /// Check a personal token with the server and keep it as this machine's credential
    Login,
    /// Forget the credential kept for the server
    Logout,
    /// Show exactly what `apply` would write for a token
    Preview(PreviewArgs),
    /// Write a token's IDE settings into a workspace
    Apply(ApplyArgs),
    /// Replace a token with a successor everywhere it is used, then delete it
    Rotate(RotateArgs),
    /// Run an ELITEA-compatible token service on this machine
    Sandbox(SandboxArgs),
    /// Serve editors: LSP-style JSON-RPC on stdin/stdout (see docs/protocol.md)
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show only tokens whose name contains this (any case)
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// Sort by
    #[arg(long, value_enum, default_value = "name")]
    pub sort: SortArg,
    /// Sort in descending order
    #[arg(long)]
    pub desc: bool,
    /// Page to show, from 1
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub page: u64,
    /// Tokens per page: 5, 10, 50 or 100
    #[arg(long, default_value = "10", value_name = "N")]
    pub page_size: PageSize,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SortArg {
    Name,
    Expires,
}

impl From<SortArg> for SortKey {
    fn from(arg: SortArg) -> SortKey {
        match arg {
            SortArg::Name => SortKey::Name,
            SortArg::Expires => SortKey::Expires,
        }
    }
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Token name: letters, digits, `-` and `_`
    pub name: String,
    /// never, or a whole number with a unit: 45m, 12h, 30d, 2w (also `30 days`)
    #[arg(long, default_value = "30d", value_name = "PERIOD")]
    pub expires: Expiration,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["name", "uuid"]))]
pub struct DeleteArgs {
    /// Name of the token to delete
    pub name: Option<String>,
    /// Delete exactly the token with this uuid (when several share a name)
    #[arg(long, value_name = "UUID")]
    pub uuid: Option<Uuid>,
    /// Confirm without a prompt by repeating the token's name
    #[arg(long, value_name = "NAME")]
    pub confirm: Option<String>,
}

/// Which IDE's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IdeArg {
    Vscode,
    Jetbrains,
    All,
}

/// How the IDE settings are made; each overrides `config.toml`.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// Extension generation: current (eliteacode), legacy (alitacode) or both
    #[arg(long, value_name = "FLAVOR")]
    pub flavor: Option<Flavor>,
    /// Project id [default: your personal project]
    #[arg(long, value_name = "ID")]
    pub project: Option<i64>,
    /// Model name [default: the project's default model, as the web UI picks it]
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// How answers are shown: append, split, replace or prepend [default: split]
    #[arg(long, value_name = "TYPE")]
    pub display_type: Option<DisplayType>,
    /// Write verifySsl false (only for a server without a valid certificate)
    #[arg(long)]
    pub no_verify_ssl: bool,
    /// Integration uid [default: <project>_<model>]
    #[arg(long, value_name = "UID")]
    pub integration_uid: Option<String>,
    /// Integration name [default: Project <project>]
    #[arg(long, value_name = "NAME")]
    pub integration_name: Option<String>,
}

impl ProfileArgs {
    pub fn choices(&self) -> ProfileChoices {
        ProfileChoices {
            project_id: self.project,
            model: self.model.clone(),
            integration_uid: self.integration_uid.clone(),
            integration_name: self.integration_name.clone(),
            display_type: self.display_type,
            verify_ssl: self.no_verify_ssl.then_some(false),
        }
    }
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["name", "uuid"]))]
pub struct PreviewArgs {
    /// Name of the token
    pub name: Option<String>,
    /// The token's uuid (when several share a name)
    #[arg(long, value_name = "UUID")]
    pub uuid: Option<Uuid>,
    /// Which IDE's files
    #[arg(long, value_enum)]
    pub ide: PreviewIde,
    /// Merge into this workspace's existing files, as `apply` would
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    #[command(flatten)]
    pub profile: ProfileArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PreviewIde {
    Vscode,
    Jetbrains,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["name", "uuid"]))]
pub struct ApplyArgs {
    /// Name of the token
    pub name: Option<String>,
    /// The token's uuid (when several share a name)
    #[arg(long, value_name = "UUID")]
    pub uuid: Option<Uuid>,
    /// Which IDE's files
    #[arg(long, value_enum, default_value = "all")]
    pub ide: IdeArg,
    /// The workspace (project folder) to write into
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub workspace: PathBuf,
    /// Add files that hold the token to the workspace's .gitignore when git would see them
    #[arg(long)]
    pub gitignore: bool,
    #[command(flatten)]
    pub profile: ProfileArgs,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["name", "uuid", "resume"]))]
pub struct RotateArgs {
    /// Name of the token to replace
    pub name: Option<String>,
    /// The token's uuid (when several share a name)
    #[arg(long, value_name = "UUID")]
    pub uuid: Option<Uuid>,
    /// The successor's period [default: the old token's, or 30d]
    #[arg(long, value_name = "PERIOD")]
    pub expires: Option<Expiration>,
    /// Finish (or roll back) a rotation that was interrupted
    #[arg(long, conflicts_with_all = ["name", "uuid", "expires"])]
    pub resume: bool,
}

/// `elitea-tokens serve` on its own: what an editor runs. It has its own small grammar so that a
/// daemon's start does not build the whole command line's (which was a third of the
/// instructions from `exec` to the `initialize` answer).
#[derive(Debug, Parser)]
#[command(
    name = "elitea-tokens serve",
    bin_name = "elitea-tokens serve",
    version,
    about = "Serve editors: LSP-style JSON-RPC on stdin/stdout (see docs/protocol.md)",
    long_about = "Serve editors: LSP-style JSON-RPC on stdin/stdout (see docs/protocol.md).\n\n\
                  It connects with the client's initializationOptions.server, else ELITEA_SERVER, \
                  else the server `login` remembered; with ELITEA_TOKEN or the stored credential."
)]
pub struct ServeCli {
    #[command(flatten)]
    pub args: ServeArgs,
    /// More log lines on stderr (-v, -vv); never a token
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Also write the log to this file (never a token)
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    /// Accepted for compatibility with editors that pass it; stdio is the only transport
    #[arg(long, hide = true)]
    pub stdio: bool,
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to listen on (port 0 = any free port) [default: the embedded sandbox's port]
    #[arg(long, value_name = "IP:PORT")]
    pub addr: Option<SocketAddr>,
    /// SQLite database (`:memory:` for a throwaway run) [default: the embedded sandbox's]
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Fault to inject, e.g. `list:latency=200ms`, `create:fail=0.5:500` (repeatable)
    #[arg(long = "fault", value_name = "RULE")]
    pub faults: Vec<crate::sandbox::FaultRule>,
    /// How long a successful authentication is cached, as the real backend does
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub auth_cache: Duration,
    /// Id of the deployment's Public project
    #[arg(long, default_value_t = 1, value_name = "ID")]
    pub public_project_id: i64,
    /// Allow listening on an address other than loopback (the control API has no auth)
    #[arg(long)]
    pub allow_remote: bool,
}
