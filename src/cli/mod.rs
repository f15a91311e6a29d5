//! The command line: clap commands over the service, human tables or `--json`.

mod args;
mod render;
mod sandbox_cmd;

pub use args::Cli;

use crate::api::ClientOptions;
use crate::domain::{Query, Secret, SortDirection};
use crate::error::{Error, ErrorKind, Result};
use crate::service::{ApplyRequest, PreviewRequest, RotateOptions, RotationReport, RotationStep, Selector};
use crate::session::{Connection, CredentialSource, Session};
use crate::state::Ide;
use args::{
    ApplyArgs, Command, CreateArgs, DeleteArgs, GlobalArgs, IdeArg, ListArgs, PreviewArgs, PreviewIde,
    RotateArgs,
};
use clap::Parser;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::ops::ControlFlow;
use std::process::ExitCode;
use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};
use uuid::Uuid;

/// Exit codes; documented in `docs/cli.md`.
pub fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidInput => 2,
        ErrorKind::CredentialRejected | ErrorKind::CredentialMissing => 3,
        ErrorKind::NotFound | ErrorKind::NameTaken | ErrorKind::AmbiguousName | ErrorKind::ValueNotStored => {
            4
        }
        ErrorKind::Unreachable => 5,
        ErrorKind::KeyringUnavailable => 6,
        ErrorKind::ServerError | ErrorKind::Protocol | ErrorKind::Aborted | ErrorKind::Local => 1,
    }
}

/// Parses the arguments, runs the command and turns the outcome into an exit code.
pub fn main() -> ExitCode {
    let command_line: Vec<_> = std::env::args_os().collect();
    if let [_, first, options @ ..] = command_line.as_slice()
        && first == "serve"
    {
        // Editors start `serve` with no options, or only `--stdio`: that case skips clap,
        // whose parser is built at run time.
        if options.is_empty() || options == ["--stdio"] {
            return serve(&args::ServeArgs::default(), 0);
        }
        let serve_cli = args::ServeCli::parse_from(&command_line[1..]);
        return serve(&serve_cli.args, serve_cli.verbose);
    }
    let cli = Cli::parse();
    if let Command::Serve(args) = &cli.command {
        return serve(args, cli.global.verbose);
    }
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

/// Installs the log subscriber. `ELITEA_LOG` takes `target=level` directives (tracing's
/// `Targets` syntax, such as `elitea_tokens=debug,warn`); without it the filter is a plain level.
/// `Targets` rather than `EnvFilter`: it matches targets by prefix without regular expressions,
/// so the regex engine is not part of the binary every IDE window loads.
fn init_logs(verbose: u8, default: tracing::Level, writer: BoxMakeWriter, ansi: bool) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{Layer, Registry};
    let level = match verbose {
        0 => default,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    let plain = || -> Box<dyn Layer<Registry> + Send + Sync> { Box::new(LevelFilter::from_level(level)) };
    let filter = match std::env::var("ELITEA_LOG") {
        Ok(directives) if !directives.trim().is_empty() => match directives.parse::<Targets>() {
            Ok(targets) => Box::new(targets),
            Err(e) => {
                eprintln!(
                    "warning: ignoring ELITEA_LOG ({e}); it takes directives such as `elitea_tokens=debug,warn`"
                );
                plain()
            }
        },
        _ => plain(),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(ansi),
        )
        .try_init();
}

fn init_logging(verbose: u8) {
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    init_logs(
        verbose,
        tracing::Level::WARN,
        BoxMakeWriter::new(std::io::stderr),
        ansi,
    );
}

/// `serve`: the daemon on stdin/stdout; logs go to stderr (and `--log-file`), never stdout.
fn serve(args: &args::ServeArgs, verbose: u8) -> ExitCode {
    crate::memory::keep_large_buffers_apart();
    // The token list is fetched from now, on a thread of its own, while the log subscriber is
    // installed, the runtime starts and `initialize` is read and answered (see
    // `daemon::prefetch`); the thread opens its session once the logs are ready.
    let defaults = crate::daemon::default_connection();
    let (logs_ready, logs_awaited) = std::sync::mpsc::channel();
    let prefetch = crate::daemon::Prefetch::start_before_logs(defaults.clone(), logs_awaited);
    let log_file = match &args.log_file {
        Some(path) => match std::fs::OpenOptions::new().create(true).append(true).open(path) {
            Ok(file) => Some(std::sync::Mutex::new(file)),
            Err(e) => {
                eprintln!("error: cannot open the log file {}: {e}", path.display());
                return ExitCode::from(exit_code(ErrorKind::Local));
            }
        },
        None => None,
    };
    let writer = match log_file {
        Some(file) => BoxMakeWriter::new(std::io::stderr.and(file)),
        None => BoxMakeWriter::new(std::io::stderr),
    };
    init_logs(verbose, tracing::Level::INFO, writer, false);
    let _ = logs_ready.send(());
    // Blocking-pool threads (a keyring; stdin and stdout when neither pipes nor sockets) stay
    // parked rather than exit after tokio's default 10 s: an idle daemon wakes only for its
    // deadlines.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_keep_alive(std::time::Duration::from_secs(24 * 60 * 60))
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(crate::daemon::serve_stdio(defaults, prefetch));
    // A client may keep stdin open after `exit`; a thread blocked reading it (a terminal's)
    // must not hold the process.
    runtime.shutdown_background();
    ExitCode::SUCCESS
}

/// The connection the global options describe.
fn connection(global: &GlobalArgs) -> Connection {
    Connection {
        server: global.server.clone(),
        token: global
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(Secret::new),
        sandbox: global.sandbox,
        insecure_http: global.insecure_http,
        client: ClientOptions {
            connect_timeout: global.connect_timeout,
            request_timeout: global.timeout,
            ..ClientOptions::default()
        },
        ..Connection::default()
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let global = &cli.global;
    let json = global.json;
    match &cli.command {
        Command::Sandbox(args) => sandbox_cmd::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Login => login(global).await,
        Command::Logout => logout(global).await,
        command => {
            let session = Session::open(&connection(global), CredentialSource::Resolve).await?;
            resume_pending_rotation(&session, command).await;
            match command {
                Command::List(args) => list(&session, args, json).await,
                Command::Create(args) => create(&session, args, json).await,
                Command::Delete(args) => delete(&session, args, json).await,
                Command::Status => status(&session, json).await,
                Command::Preview(args) => preview(&session, args, json).await,
                Command::Apply(args) => apply(&session, args, json).await,
                Command::Rotate(args) => rotate(&session, args, json).await,
                Command::Sandbox(_) | Command::Login | Command::Logout | Command::Serve(_) => {
                    unreachable!("handled above")
                }
            }
        }
    }
}

fn selector(name: &Option<String>, uuid: &Option<Uuid>) -> Result<Selector> {
    match (uuid, name) {
        (Some(uuid), _) => Ok(Selector::Uuid(*uuid)),
        (None, Some(name)) => Ok(Selector::Name(name.clone())),
        (None, None) => Err(Error::invalid("name the token, or pass --uuid")),
    }
}

/// A rotation a killed process left unfinished is completed (or rolled back) before anything
/// else, so no command works with half-rotated files. A failure here is reported, not fatal.
async fn resume_pending_rotation(session: &Session, command: &Command) {
    if matches!(command, Command::Rotate(args) if args.resume) || !session.service.rotation_pending() {
        return;
    }
    let mut quiet = |_: RotationStep| ControlFlow::Continue(());
    match session.service.resume_rotation(&mut quiet).await {
        Ok(Some(report)) => render::resumed(&report),
        Ok(None) => {}
        Err(e) => eprintln!(
            "warning: an interrupted rotation could not be finished yet: {}",
            e.message
        ),
    }
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
    let selector = selector(&args.name, &args.uuid)?;
    let token = session.service.find(&selector).await?;
    if let (Some(name), Selector::Uuid(_)) = (&args.name, &selector)
        && name != token.name
    {
        return Err(Error::invalid(format!(
            "token {} is named `{}`, not `{name}`; nothing deleted",
            token.uuid, token.name
        )));
    }
    confirm_delete(&token.name, args.confirm.as_deref())?;
    let deleted = session.service.delete(&token).await?;
    render::deleted(&deleted, json);
    Ok(ExitCode::SUCCESS)
}

async fn status(session: &Session, json: bool) -> Result<ExitCode> {
    let report = session.service.status().await;
    render::status(&report, session.on_sandbox(), json);
    Ok(match &report.problem {
        None => ExitCode::SUCCESS,
        Some(problem) => ExitCode::from(exit_code(problem.kind)),
    })
}

/// Reads the credential for `login`: from stdin when it is not a terminal (so it never sits
/// in the shell history or the process list), else from a prompt that does not echo.
fn read_credential(global: &GlobalArgs) -> Result<Secret> {
    if let Some(token) = global.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(Secret::new(token));
    }
    let text = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("ELITEA personal token (input hidden): ")
            .map_err(|e| Error::new(ErrorKind::Aborted, format!("could not read the token: {e}")))?
    } else {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| {
            Error::new(
                ErrorKind::Aborted,
                format!("could not read the token from stdin: {e}"),
            )
        })?;
        text
    };
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::new(
            ErrorKind::CredentialMissing,
            "no token given; nothing changed",
        ));
    }
    Ok(Secret::new(token))
}

async fn login(global: &GlobalArgs) -> Result<ExitCode> {
    let credential = read_credential(global)?;
    let session = Session::open(&connection(global), CredentialSource::Given(credential)).await?;
    let report = session.service.login(&session.paths.config_dir).await?;
    render::logged_in(&report, global.json);
    Ok(ExitCode::SUCCESS)
}

async fn logout(global: &GlobalArgs) -> Result<ExitCode> {
    let paths = crate::paths::Paths::discover()?;
    let config = crate::config::Config::load(&paths.config_dir)?;
    let server = match global.server.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(server) => crate::api::ServerUrl::parse(server, true)
            .map_err(|e| Error::invalid(e.to_string()))?
            .to_string(),
        None => config
            .server
            .clone()
            .ok_or_else(|| Error::invalid("not logged in: no server is configured (pass --server URL)"))?,
    };
    let secrets = crate::session::LazySecrets::new(paths.clone());
    let removed = crate::service::logout(&secrets, &paths.config_dir, &server)?;
    render::logged_out(&server, removed, global.json);
    Ok(ExitCode::SUCCESS)
}

async fn preview(session: &Session, args: &PreviewArgs, json: bool) -> Result<ExitCode> {
    let request = PreviewRequest {
        selector: selector(&args.name, &args.uuid)?,
        ide: match args.ide {
            PreviewIde::Vscode => Ide::Vscode,
            PreviewIde::Jetbrains => Ide::Jetbrains,
        },
        flavor: args.profile.flavor,
        workspace: args.workspace.clone(),
        choices: args.profile.choices(),
    };
    let preview = session.service.preview(&request).await?;
    render::preview(&preview, json);
    Ok(ExitCode::SUCCESS)
}

async fn apply(session: &Session, args: &ApplyArgs, json: bool) -> Result<ExitCode> {
    let ides = match args.ide {
        IdeArg::Vscode => vec![Ide::Vscode],
        IdeArg::Jetbrains => vec![Ide::Jetbrains],
        IdeArg::All => vec![Ide::Vscode, Ide::Jetbrains],
    };
    let request = ApplyRequest {
        selector: selector(&args.name, &args.uuid)?,
        ides,
        workspace: args.workspace.clone(),
        flavor: args.profile.flavor,
        choices: args.profile.choices(),
        gitignore: args.gitignore,
    };
    let report = session.service.apply(&request).await?;
    render::applied(&report, json);
    Ok(ExitCode::SUCCESS)
}

async fn rotate(session: &Session, args: &RotateArgs, json: bool) -> Result<ExitCode> {
    let mut progress = |step: RotationStep| {
        tracing::info!(step = step.as_str(), "rotation");
        ControlFlow::Continue(())
    };
    let report: RotationReport = if args.resume {
        match session.service.resume_rotation(&mut progress).await? {
            Some(report) => report,
            None => {
                render::nothing_to_resume(json);
                return Ok(ExitCode::SUCCESS);
            }
        }
    } else {
        let options = RotateOptions {
            expires: args.expires,
        };
        session
            .service
            .rotate(&selector(&args.name, &args.uuid)?, &options, &mut progress)
            .await?
    };
    render::rotated(&report, json);
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
