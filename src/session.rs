//! What a command or the daemon works with: the server and credential it resolved, the secret
//! store, the state, and the embedded sandbox when it runs on one.

use crate::api::{Client, ClientOptions, ServerUrl};
use crate::clock::{Clock, SystemClock};
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
/// Reading a secret the index places in a store opens only that store, without the probe
/// (write, read, delete in each candidate) that choosing where new secrets go needs; so
/// reading the credential at start-up costs one store's read.
pub struct LazySecrets {
    paths: Paths,
    choice: Option<StoreChoice>,
    opened: OnceLock<std::result::Result<Secrets, String>>,
    /// Stores opened for reading alone, by kind.
    readers: std::sync::Mutex<Vec<(StoreKind, Arc<dyn SecretStore>)>>,
}

impl LazySecrets {
    pub fn new(paths: Paths) -> LazySecrets {
        LazySecrets::with_choice(paths, None)
    }

    /// `choice`: `None` reads `ELITEA_SECRET_STORE`.
    pub fn with_choice(paths: Paths, choice: Option<StoreChoice>) -> LazySecrets {
        LazySecrets {
            paths,
            choice,
            opened: OnceLock::new(),
            readers: std::sync::Mutex::default(),
        }
    }

    fn chosen(&self) -> std::result::Result<StoreChoice, StoreError> {
        match self.choice {
            Some(choice) => Ok(choice),
            None => match std::env::var(STORE_ENV) {
                Ok(value) if !value.trim().is_empty() => value
                    .parse::<StoreChoice>()
                    .map_err(|e| StoreError::unavailable(format!("{STORE_ENV}: {e}"))),
                _ => Ok(StoreChoice::Auto),
            },
        }
    }

    /// What the index says of `key`, when that can stand in for the stores: nothing opened
    /// fully yet, an index to ask, and the store it names one the choice allows. `Some(None)`:
    /// the index records no such secret.
    fn indexed(&self, key: &SecretKey) -> Option<Option<StoreKind>> {
        self.indexed_each(std::slice::from_ref(key))?.pop()
    }

    /// [`indexed`](Self::indexed) for many keys, from one read of the index; `None` when any
    /// of them needs the stores themselves.
    fn indexed_each(&self, keys: &[SecretKey]) -> Option<Vec<Option<StoreKind>>> {
        if self.opened.get().is_some() {
            return None;
        }
        let said = crate::secrets::indexed_stores(&self.paths, keys).ok()??;
        let choice = self.chosen().ok()?;
        said.into_iter()
            .map(|said| match (choice, said) {
                (StoreChoice::Only(StoreKind::Memory), _) => None,
                (StoreChoice::Auto, _) | (StoreChoice::Only(_), None) => Some(said),
                (StoreChoice::Only(only), Some(kind)) => (only == kind).then_some(said),
            })
            .collect()
    }

    /// Where `key` would be read from, asked of the index once: a caller decides by it whether
    /// the read may wait on a keyring, then hands it to [`get_located`](Self::get_located).
    pub fn locate(&self, key: &SecretKey) -> Located {
        Located(self.indexed(key))
    }

    /// [`get`](SecretStore::get) where [`locate`](Self::locate) found `key`.
    pub fn get_located(
        &self,
        key: &SecretKey,
        located: &Located,
    ) -> std::result::Result<Option<Secret>, StoreError> {
        match located.0 {
            Some(Some(kind)) => self.reader(kind)?.get(key),
            _ => self.store()?.get(key),
        }
    }

    fn reader(&self, kind: StoreKind) -> std::result::Result<Arc<dyn SecretStore>, StoreError> {
        let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, store)) = readers.iter().find(|(k, _)| *k == kind) {
            return Ok(Arc::clone(store));
        }
        let store: Arc<dyn SecretStore> = Arc::from(crate::secrets::open_kind(kind, &self.paths)?);
        readers.push((kind, Arc::clone(&store)));
        Ok(store)
    }

    fn store(&self) -> std::result::Result<&Secrets, StoreError> {
        self.opened
            .get_or_init(|| {
                let choice = self.chosen().map_err(|e| e.message)?;
                Secrets::open(choice, &self.paths).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|message| StoreError::unavailable(message.clone()))
    }
}

impl SecretStore for LazySecrets {
    fn kind(&self) -> StoreKind {
        match (self.store(), self.choice) {
            (Ok(store), _) => store.kind(),
            // The store that was asked for and does not work.
            (Err(_), Some(StoreChoice::Only(kind))) => kind,
            (Err(_), _) => StoreKind::Memory,
        }
    }
    fn get(&self, key: &SecretKey) -> std::result::Result<Option<Secret>, StoreError> {
        self.get_located(key, &self.locate(key))
    }
    fn holds(&self, key: &SecretKey) -> std::result::Result<bool, StoreError> {
        match self.indexed(key) {
            Some(said) => Ok(said.is_some()),
            None => self.store()?.holds(key),
        }
    }
    fn holds_each(&self, keys: &[SecretKey]) -> std::result::Result<Vec<bool>, StoreError> {
        match self.indexed_holds_each(keys) {
            Some(held) => Ok(held),
            None => self.store()?.holds_each(keys),
        }
    }
    fn indexed_holds_each(&self, keys: &[SecretKey]) -> Option<Vec<bool>> {
        self.indexed_each(keys)
            .map(|said| said.iter().map(Option::is_some).collect())
    }
    fn set(&self, key: &SecretKey, value: &Secret) -> std::result::Result<(), StoreError> {
        self.store()?.set(key, value)
    }
    fn delete(&self, key: &SecretKey) -> std::result::Result<bool, StoreError> {
        self.store()?.delete(key)
    }
}

/// What the index said of a secret ([`LazySecrets::locate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Located(Option<Option<StoreKind>>);

impl Located {
    /// In the plain-file store: a small local file, read on the caller's thread like the state,
    /// with no keyring to wait on and so no trip to the blocking pool.
    pub fn in_place(self) -> bool {
        self.0 == Some(Some(StoreKind::File))
    }
}

/// How to reach the server: what the command line or the editor asked for.
#[derive(Clone)]
pub struct Connection {
    /// An origin, or `sandbox`; `None` uses the server `login` remembered.
    pub server: Option<String>,
    /// A credential given explicitly (`--token`, `ELITEA_TOKEN`).
    pub token: Option<Secret>,
    /// Run against the embedded sandbox.
    pub sandbox: bool,
    pub insecure_http: bool,
    pub client: ClientOptions,
    /// Where "now" comes from, and how deadlines are waited for (tests use tokio's clock, to pause it).
    pub clock: Arc<dyn Clock>,
    /// The tool's directories; `None` finds them (`ELITEA_TOKENS_HOME` or the platform's).
    pub paths: Option<Paths>,
    /// The secret store; `None` reads `ELITEA_SECRET_STORE` (default `auto`).
    pub store: Option<StoreChoice>,
}

impl Default for Connection {
    fn default() -> Self {
        Connection {
            server: None,
            token: None,
            sandbox: false,
            insecure_http: false,
            client: ClientOptions::default(),
            clock: Arc::new(SystemClock),
            paths: None,
            store: None,
        }
    }
}

impl Connection {
    /// Whether to run against the embedded sandbox.
    pub fn wants_sandbox(&self) -> bool {
        self.sandbox
            || self
                .server
                .as_deref()
                .is_some_and(|s| s.trim().eq_ignore_ascii_case("sandbox"))
    }
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

/// What a session against a server is opened from, once read: the paths, the configuration,
/// the server and its credential. The list's fetch at start reads them while `initialize` is
/// on its way, and the daemon opens its own session from a copy (see
/// [`Resolved::for_another_session`]) instead of reading the same files again once it has
/// answered, when its first call is arriving.
pub struct Resolved {
    paths: Paths,
    config: Config,
    secrets: Arc<LazySecrets>,
    server: ServerUrl,
    credential: Secret,
}

impl Resolved {
    /// Reads the configuration and the credential for `connection`, which is not the sandbox.
    pub async fn read(connection: &Connection, source: CredentialSource) -> Result<Resolved> {
        let (paths, config, secrets) = local_files(connection)?;
        let given = connection.server.as_deref().filter(|s| !s.trim().is_empty());
        let server = given.or(config.server.as_deref()).ok_or_else(|| {
            Error::invalid(
                "no server given: pass --server URL or set ELITEA_SERVER, or log in with `elitea-tokens login --server URL` \
                 (or use --sandbox to try the tool without an account)",
            )
        })?;
        let server =
            ServerUrl::parse(server, connection.insecure_http).map_err(|e| Error::invalid(e.to_string()))?;
        let flag_token = connection.token.clone().filter(|t| !t.is_empty());
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
        Ok(Resolved {
            paths,
            config,
            secrets,
            server,
            credential,
        })
    }

    /// The same, for a session of its own: its secret store opens afresh on first use, as a
    /// store opened here (a keyring's connection) belongs to the thread that opened it.
    pub fn for_another_session(&self) -> Resolved {
        Resolved {
            paths: self.paths.clone(),
            config: self.config.clone(),
            secrets: Arc::new(LazySecrets::with_choice(self.paths.clone(), self.secrets.choice)),
            server: self.server.clone(),
            credential: self.credential.clone(),
        }
    }
}

/// The paths `connection` names (or the user's), the configuration there, and the secret
/// store, not opened yet.
fn local_files(connection: &Connection) -> Result<(Paths, Config, Arc<LazySecrets>)> {
    let paths = match &connection.paths {
        Some(paths) => paths.clone(),
        None => Paths::discover()?,
    };
    let config = Config::load(&paths.config_dir)?;
    let secrets = Arc::new(LazySecrets::with_choice(paths.clone(), connection.store));
    Ok((paths, config, secrets))
}

impl Session {
    pub async fn open(connection: &Connection, source: CredentialSource) -> Result<Session> {
        if !connection.wants_sandbox() {
            let resolved = Resolved::read(connection, source).await?;
            return Session::from_resolved(resolved, connection);
        }
        let (paths, config, secrets) = local_files(connection)?;
        let sandbox = start_embedded_sandbox(&paths).await?;
        let server = ServerUrl::parse(sandbox.url(), false)
            .map_err(|e| Error::new(ErrorKind::Local, e.to_string()))?;
        let credential = match source {
            CredentialSource::Given(secret) => secret,
            CredentialSource::Resolve => Secret::new(sandbox.bootstrap_token()),
        };
        let resolved = Resolved {
            paths,
            config,
            secrets,
            server,
            credential,
        };
        let mut session = Session::from_resolved(resolved, connection)?;
        session.sandbox = Some(sandbox);
        Ok(session)
    }

    /// A session from what was read already: only its HTTP client is new.
    pub fn from_resolved(resolved: Resolved, connection: &Connection) -> Result<Session> {
        let Resolved {
            paths,
            config,
            secrets,
            server,
            credential,
        } = resolved;
        let client = Client::new(server, credential, connection.client.clone())?;
        let service = Service::new(Parts {
            client,
            clock: Arc::clone(&connection.clock),
            secrets,
            state: State::new(&paths.state_dir),
            config,
        });
        Ok(Session {
            service,
            paths,
            sandbox: None,
        })
    }

    pub fn on_sandbox(&self) -> bool {
        self.sandbox.is_some()
    }
}

async fn stored_credential(secrets: &Arc<LazySecrets>, server: &ServerUrl) -> Result<Option<Secret>> {
    let key = SecretKey::Credential {
        server: server.as_str().to_string(),
    };
    let located = secrets.locate(&key);
    let read = if located.in_place() {
        secrets.get_located(&key, &located)
    } else {
        let secrets = Arc::clone(secrets);
        tokio::task::spawn_blocking(move || secrets.get_located(&key, &located))
            .await
            .map_err(|e| Error::new(ErrorKind::Local, e.to_string()))?
    };
    read.or_else(|e| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    /// A fresh process answers "kept here?" from the index alone, for one key or many, as the
    /// opened store would.
    #[test]
    fn the_index_answers_what_the_store_would() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path().to_path_buf());
        let only_file = Some(StoreChoice::Only(StoreKind::File));
        let server = "https://elitea.example";
        let kept = SecretKey::token(server, Uuid::new_v4());
        let absent = SecretKey::token(server, Uuid::new_v4());
        let writer = LazySecrets::with_choice(paths.clone(), only_file);
        writer.set(&kept, &Secret::new("value")).unwrap();

        let reader = LazySecrets::with_choice(paths, only_file);
        let keys = [kept.clone(), absent.clone(), kept.clone()];
        assert_eq!(
            reader.indexed_each(&keys),
            Some(vec![Some(StoreKind::File), None, Some(StoreKind::File)])
        );
        assert_eq!(reader.holds_each(&keys).unwrap(), vec![true, false, true]);
        assert!(
            reader.opened.get().is_none(),
            "answered without opening the stores"
        );
        assert_eq!(
            keys.iter().map(|k| writer.holds(k).unwrap()).collect::<Vec<_>>(),
            vec![true, false, true]
        );
        // The answer without a trip to the blocking pool: from the index while no store is
        // open, and none once the writer's store is open (the store answers then).
        assert_eq!(reader.indexed_holds_each(&keys), Some(vec![true, false, true]));
        assert_eq!(writer.indexed_holds_each(&keys), None);
    }

    /// The credential comes straight from the plain file when the index places it there; any
    /// other answer (not indexed, a store already open) is left to the blocking pool.
    #[test]
    fn a_credential_in_the_plain_file_is_read_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path().to_path_buf());
        let only_file = Some(StoreChoice::Only(StoreKind::File));
        let server = "https://elitea.example";
        let credential = SecretKey::Credential {
            server: server.to_string(),
        };
        let other = SecretKey::Credential {
            server: "https://other.example".to_string(),
        };
        let writer = LazySecrets::with_choice(paths.clone(), only_file);
        assert!(!writer.locate(&credential).in_place(), "no index yet");
        writer.set(&credential, &Secret::new("the-credential")).unwrap();

        let reader = LazySecrets::with_choice(paths.clone(), only_file);
        let located = reader.locate(&credential);
        assert!(located.in_place(), "read in place");
        let read = reader.get_located(&credential, &located).unwrap();
        assert_eq!(
            read.map(|s| s.expose().to_string()),
            Some("the-credential".to_string())
        );
        assert!(
            !reader.locate(&other).in_place(),
            "not indexed: the stores decide"
        );
        assert!(reader.opened.get().is_none(), "read without opening the stores");
        assert!(
            !writer.locate(&credential).in_place(),
            "an open store answers itself"
        );
        // A choice that rules the file out (`ELITEA_SECRET_STORE=keyring`) is left to the stores.
        let keyring_only = LazySecrets::with_choice(paths, Some(StoreChoice::Only(StoreKind::Keyring)));
        assert!(!keyring_only.locate(&credential).in_place());
    }
}
