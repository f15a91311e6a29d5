//! What a command works with: the server and credential it resolved, the secret store, the
//! state, and the embedded sandbox when it runs on one.

use super::args::GlobalArgs;
use crate::api::{Client, ClientOptions, ServerUrl};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::domain::Secret;
use crate::error::{Error, ErrorKind, Result};
use crate::paths::Paths;
use crate::sandbox::{DbLocation, Sandbox, SandboxOptions};
use crate::secrets::{STORE_ENV, SecretKey, SecretStore, Secrets, StoreChoice, StoreError, StoreKind};
use crate::service::{Parts, Service};
use crate::state::State;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

/// The secret store, opened on first use: commands that need no secret never probe a keyring.
pub struct LazySecrets {
    paths: Paths,
    opened: OnceLock<std::result::Result<Secrets, String>>,
}

impl LazySecrets {
    pub fn new(paths: Paths) -> LazySecrets {
        LazySecrets {
            paths,
            opened: OnceLock::new(),
        }
    }

    fn store(&self) -> std::result::Result<&Secrets, StoreError> {
        self.opened
            .get_or_init(|| {
                let choice = match std::env::var(STORE_ENV) {
                    Ok(value) if !value.trim().is_empty() => value
                        .parse::<StoreChoice>()
                        .map_err(|e| format!("{STORE_ENV}: {e}"))?,
                    _ => StoreChoice::Auto,
                };
                Secrets::open(choice, &self.paths).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|message| StoreError::unavailable(message.clone()))
    }
}

impl SecretStore for LazySecrets {
    fn kind(&self) -> StoreKind {
        self.store().map(|s| s.kind()).unwrap_or(StoreKind::Memory)
    }
    fn get(&self, key: &SecretKey) -> std::result::Result<Option<Secret>, StoreError> {
        self.store()?.get(key)
    }
    fn set(&self, key: &SecretKey, value: &Secret) -> std::result::Result<(), StoreError> {
        self.store()?.set(key, value)
    }
    fn delete(&self, key: &SecretKey) -> std::result::Result<bool, StoreError> {
        self.store()?.delete(key)
    }
}

/// Whether the command runs against the embedded sandbox.
pub fn wants_sandbox(global: &GlobalArgs) -> bool {
    global.sandbox
        || global
            .server
            .as_deref()
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("sandbox"))
}

/// Where the credential comes from.
pub enum CredentialSource {
    /// `--token`, `ELITEA_TOKEN`, or the stored login credential.
    Resolve,
    /// Given by the caller (`login` reads it from stdin or a prompt).
    Given(Secret),
}

pub struct Session {
    pub service: Service,
    pub paths: Paths,
    /// Kept alive for the command's duration; dropped (and stopped) with the session.
    pub sandbox: Option<Sandbox>,
}

impl Session {
    pub async fn open(global: &GlobalArgs, source: CredentialSource) -> Result<Session> {
        let paths = Paths::discover()?;
        let config = Config::load(&paths.config_dir)?;
        let secrets = Arc::new(LazySecrets::new(paths.clone()));
        let options = ClientOptions {
            connect_timeout: global.connect_timeout,
            request_timeout: global.timeout,
            ..ClientOptions::default()
        };
        let flag_token = global
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(Secret::new);
        let (server, credential, sandbox) = if wants_sandbox(global) {
            let sandbox = start_embedded_sandbox(&paths).await?;
            let server = ServerUrl::parse(sandbox.url(), false)
                .map_err(|e| Error::new(ErrorKind::Local, e.to_string()))?;
            let credential = match source {
                CredentialSource::Given(secret) => secret,
                CredentialSource::Resolve => Secret::new(sandbox.bootstrap_token()),
            };
            (server, credential, Some(sandbox))
        } else {
            let given = global.server.as_deref().filter(|s| !s.trim().is_empty());
            let server = given.or(config.server.as_deref()).ok_or_else(|| {
                Error::invalid(
                    "no server given: pass --server URL or set ELITEA_SERVER, or log in with `elitea-tokens login --server URL` \
                     (or use --sandbox to try the tool without an account)",
                )
            })?;
            let server =
                ServerUrl::parse(server, global.insecure_http).map_err(|e| Error::invalid(e.to_string()))?;
            let credential = match source {
                CredentialSource::Given(secret) => secret,
                CredentialSource::Resolve => match flag_token {
                    Some(token) => token,
                    None => stored_credential(&secrets, &server).await?.ok_or_else(|| {
                        Error::new(
                            ErrorKind::CredentialMissing,
                            format!(
                                "no credential for {server}: log in with `elitea-tokens login --server {server}`, or set ELITEA_TOKEN"
                            ),
                        )
                    })?,
                },
            };
            (server, credential, None)
        };
        let client = Client::new(server, credential, options)?;
        let service = Service::new(Parts {
            client,
            clock: Arc::new(SystemClock),
            secrets: secrets.clone(),
            state: State::new(&paths.state_dir),
            config,
        });
        Ok(Session {
            service,
            paths,
            sandbox,
        })
    }

    pub fn on_sandbox(&self) -> bool {
        self.sandbox.is_some()
    }
}

async fn stored_credential(secrets: &Arc<LazySecrets>, server: &ServerUrl) -> Result<Option<Secret>> {
    let secrets = Arc::clone(secrets);
    let key = SecretKey::Credential {
        server: server.as_str().to_string(),
    };
    tokio::task::spawn_blocking(move || secrets.get(&key))
        .await
        .map_err(|e| Error::new(ErrorKind::Local, e.to_string()))?
        .or_else(|e| {
            tracing::warn!("cannot read the stored credential: {e}");
            Ok(None)
        })
}

/// The port the embedded sandbox listened on last time, so its URL (which IDE settings and
/// stored secrets are keyed by) stays the same from one command to the next.
fn remembered_port(paths: &Paths) -> u16 {
    std::fs::read_to_string(paths.data_dir.join("sandbox.port"))
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// Creates the data directory (the embedded sandbox's home).
pub fn ensure_data_dir(paths: &Paths) -> Result<()> {
    std::fs::create_dir_all(&paths.data_dir).map_err(|e| {
        Error::new(
            ErrorKind::Local,
            format!(
                "cannot create the data directory {}: {e}",
                paths.data_dir.display()
            ),
        )
    })
}

/// Starts a sandbox on the remembered loopback port (or any free one) and remembers the port.
pub async fn start_sandbox_on(paths: &Paths, mut options: SandboxOptions) -> Result<Sandbox> {
    ensure_data_dir(paths)?;
    let port = remembered_port(paths);
    options.addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let sandbox = match Sandbox::start(options.clone()).await {
        Ok(sandbox) => sandbox,
        Err(_) if port != 0 => {
            options.addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            Sandbox::start(options).await.map_err(sandbox_error)?
        }
        Err(e) => return Err(sandbox_error(e)),
    };
    if sandbox.addr().port() != port {
        let _ = std::fs::write(
            paths.data_dir.join("sandbox.port"),
            sandbox.addr().port().to_string(),
        );
    }
    Ok(sandbox)
}

fn sandbox_error(e: crate::sandbox::SandboxError) -> Error {
    Error::new(
        ErrorKind::Local,
        format!("cannot start the embedded sandbox: {e}"),
    )
}

/// The sandbox kept in the data directory, started in this process.
async fn start_embedded_sandbox(paths: &Paths) -> Result<Sandbox> {
    let options = SandboxOptions {
        db: DbLocation::File(paths.sandbox_db()),
        ..SandboxOptions::default()
    };
    start_sandbox_on(paths, options).await
}
