//! The command line: clap commands over the service, human tables or `--json`.

mod args;
mod render;
mod sandbox_cmd;

pub use args::Cli;

use crate::api::{Client, ClientOptions, ServerUrl};
use crate::clock::SystemClock;
use crate::domain::{Query, Secret, SortDirection};
use crate::error::{Error, ErrorKind, Result};
use crate::paths::Paths;
use crate::sandbox::{DbLocation, Sandbox, SandboxOptions};
use crate::service::{Selector, Service};
use args::{Command, CreateArgs, DeleteArgs, GlobalArgs, ListArgs};
use clap::Parser;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

/// Exit codes; documented in `docs/cli.md`.
pub fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidInput => 2,
        ErrorKind::CredentialRejected | ErrorKind::CredentialMissing => 3,
        ErrorKind::NotFound | ErrorKind::NameTaken | ErrorKind::AmbiguousName => 4,
        ErrorKind::Unreachable => 5,
        ErrorKind::ServerError | ErrorKind::Protocol | ErrorKind::Aborted | ErrorKind::Local => 1,
    }
}

/// Parses the arguments, runs the command and turns the outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose);
    let json = cli.global.json;
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            render::error(&error, json);
            ExitCode::from(exit_code(error.kind))
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ELITEA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .try_init();
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Sandbox(args) => sandbox_cmd::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::List(args) => {
            let session = Session::open(&cli.global).await?;
            list(&session, &args, cli.global.json).await
        }
        Command::Create(args) => {
            let session = Session::open(&cli.global).await?;
            create(&session, &args, cli.global.json).await
        }
        Command::Delete(args) => {
            let session = Session::open(&cli.global).await?;
            delete(&session, &args, cli.global.json).await
        }
        Command::Status => {
            let session = Session::open(&cli.global).await?;
            status(&session, cli.global.json).await
        }
    }
}

/// The service a command works with, and the embedded sandbox when it runs on one.
struct Session {
    service: Service,
    /// Kept alive for the command's duration; dropped (and stopped) with the session.
    sandbox: Option<Sandbox>,
}

impl Session {
    async fn open(global: &GlobalArgs) -> Result<Session> {
        let wants_sandbox = global.sandbox
            || global
                .server
                .as_deref()
                .is_some_and(|s| s.trim().eq_ignore_ascii_case("sandbox"));
        let options = ClientOptions {
            connect_timeout: global.connect_timeout,
            request_timeout: global.timeout,
            ..ClientOptions::default()
        };
        let (server, credential, sandbox) = if wants_sandbox {
            let sandbox = start_embedded_sandbox().await?;
            let server = ServerUrl::parse(sandbox.url(), false)
                .map_err(|e| Error::new(ErrorKind::Local, e.to_string()))?;
            let credential = Secret::new(sandbox.bootstrap_token());
            (server, credential, Some(sandbox))
        } else {
            let server = global.server.as_deref().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
                Error::invalid(
                    "no server given: pass --server URL or set ELITEA_SERVER (or use --sandbox to try the tool without an account)",
                )
            })?;
            let server =
                ServerUrl::parse(server, global.insecure_http).map_err(|e| Error::invalid(e.to_string()))?;
            let credential = global
                .token
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::CredentialMissing,
                        "no credential given: set ELITEA_TOKEN to a personal token (or pass --token)",
                    )
                })?;
            (server, Secret::new(credential), None)
        };
        let client = Client::new(server, credential, options)?;
        Ok(Session {
            service: Service::new(client, Arc::new(SystemClock)),
            sandbox,
        })
    }

    fn on_sandbox(&self) -> bool {
        self.sandbox.is_some()
    }
}

/// Starts the sandbox kept in the data directory on a free loopback port, in this process.
async fn start_embedded_sandbox() -> Result<Sandbox> {
    let paths = Paths::discover()?;
    std::fs::create_dir_all(&paths.data_dir).map_err(|e| {
        Error::new(
            ErrorKind::Local,
            format!(
                "cannot create the data directory {}: {e}",
                paths.data_dir.display()
            ),
        )
    })?;
    let options = SandboxOptions {
        db: DbLocation::File(paths.sandbox_db()),
        ..SandboxOptions::default()
    };
    Sandbox::start(options).await.map_err(|e| {
        Error::new(
            ErrorKind::Local,
            format!("cannot start the embedded sandbox: {e}"),
        )
    })
}

async fn list(session: &Session, args: &ListArgs, json: bool) -> Result<ExitCode> {
    let query = Query {
        search: args.search.clone(),
        sort: args.sort.into(),
        direction: if args.desc {
            SortDirection::Desc
        } else {
            SortDirection::Asc
        },
        page: usize::try_from(args.page).unwrap_or(usize::MAX),
        page_size: args.page_size,
    };
    let list = session.service.list(&query).await?;
    render::list(&list, session.on_sandbox(), json);
    Ok(ExitCode::SUCCESS)
}

async fn create(session: &Session, args: &CreateArgs, json: bool) -> Result<ExitCode> {
    let created = session.service.create(&args.name, args.expires).await?;
    render::created(&created, session.service.now(), json);
    Ok(ExitCode::SUCCESS)
}

async fn delete(session: &Session, args: &DeleteArgs, json: bool) -> Result<ExitCode> {
    let selector = match (&args.uuid, &args.name) {
        (Some(uuid), _) => Selector::Uuid(*uuid),
        (None, Some(name)) => Selector::Name(name.clone()),
        (None, None) => return Err(Error::invalid("name the token to delete, or pass --uuid")),
    };
    let token = session.service.find(&selector).await?;
    if let (Some(name), Selector::Uuid(_)) = (&args.name, &selector)
        && name != &token.name
    {
        return Err(Error::invalid(format!(
            "token {} is named `{}`, not `{name}`; nothing deleted",
            token.uuid, token.name
        )));
    }
    confirm_delete(&token.name, args.confirm.as_deref())?;
    session.service.delete(&token).await?;
    render::deleted(&token.summary(session.service.now()), json);
    Ok(ExitCode::SUCCESS)
}

/// Deleting is permanent: the user types the name, or repeats it with `--confirm`.
fn confirm_delete(name: &str, confirm: Option<&str>) -> Result<()> {
    let typed = match confirm {
        Some(given) => given.to_string(),
        None if std::io::stdin().is_terminal() => {
            eprint!("Deleting `{name}` is permanent. Type its name to confirm: ");
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).map_err(|e| {
                Error::new(
                    ErrorKind::Aborted,
                    format!("could not read the confirmation: {e}; nothing deleted"),
                )
            })?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
        None => {
            return Err(Error::invalid(format!(
                "deleting is permanent; without a terminal to ask on, pass --confirm {name}"
            )));
        }
    };
    if typed == name {
        Ok(())
    } else if confirm.is_some() {
        Err(Error::invalid(format!(
            "--confirm `{typed}` does not match the token's name `{name}`; nothing deleted"
        )))
    } else {
        Err(Error::new(
            ErrorKind::Aborted,
            format!("`{typed}` does not match `{name}`; nothing deleted"),
        ))
    }
}

async fn status(session: &Session, json: bool) -> Result<ExitCode> {
    let report = session.service.status().await;
    render::status(&report, session.on_sandbox(), json);
    Ok(match &report.problem {
        None => ExitCode::SUCCESS,
        Some(problem) => ExitCode::from(exit_code(problem.kind)),
    })
}
