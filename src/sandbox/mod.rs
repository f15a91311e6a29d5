//! `elitea-tokens sandbox`: an ELITEA-compatible personal-token service (axum + SQLite) for
//! trying the product without an account, for plugin development and for tests.
//!
//! On the ELITEA wire contract (`/api/v2/...`, see `elitea-api.md`) the sandbox answers like
//! the real Python backend: the same paths (with or without the trailing slash), the same token
//! objects and JWTs, the same status codes and error messages. Start it with [`Sandbox::start`];
//! [`Sandbox::bootstrap_token`] is a never-expiring token of the sandbox user to begin with.
//!
//! # Data
//! - Users: `sandbox` (id 3, `sandbox@elitea.local`, personal project 27) owns the bootstrap
//!   token `sandbox-bootstrap`; `other` (id 4, personal project 28) exists to test that another
//!   user's token answers 403 `null`. A personal project never equals the public project id.
//! - Each user has a hidden `elitea-system` token (list never shows it; create refuses the name).
//! - Models: the personal project owns `gpt-5-mini` (its default); with `include_shared=true` it
//!   also lists the public project's `eu.anthropic.claude-sonnet-4-5-20250929-v1:0` and
//!   `gpt-4.1` as shared. The public project lists those two, Claude being its default. Any
//!   other project id answers 403 `null` (not a member), a non-numeric id 404.
//! - A file database (`DbLocation::File`, WAL mode) keeps tokens, the signing key and the
//!   bootstrap token across restarts; `DbLocation::Memory` starts empty every time. If the
//!   bootstrap token gets deleted through the API, the next start creates a new one.
//!
//! # Clock and auth cache
//! "Now" is the real clock plus an offset moved by [`Sandbox::advance_clock`] or
//! `POST /_sandbox/clock`. Like the real backend, a successful authentication is cached
//! (`SandboxOptions::auth_cache`, default 60 s of sandbox time), so a just-deleted or
//! just-expired token keeps working that long; `Duration::ZERO` disables the cache.
//!
//! # Fault rules
//! Faults apply to the ELITEA routes only, before authentication, like a proxy in front of the
//! backend. Syntax (`FaultRule::from_str`, the CLI's `--fault`):
//!
//! ```text
//! ROUTE:KNOB[,KNOB]
//!   ROUTE    any | list | get | create | delete | author | models
//!   KNOB     latency=DURATION        200ms, 1.5s, 0ms
//!            fail=RATE[:FAILURE]     RATE from 0 to 1
//!   FAILURE  400..599 (default 500)  that status, JSON body {"error": "<reason phrase>"}
//!            html                    502 text/html, an nginx "Bad Gateway" page
//!            signin                  200 text/html, a sign-in page (an SSO proxy, a portal)
//!            truncated               200 application/json, the first half of the real body
//!                                    (the real handler runs: a create still creates)
//!            close                   the connection is dropped without any response
//! ```
//!
//! Examples: `list:latency=200ms`, `create:fail=0.5:500`, `any:fail=1:html`,
//! `get:fail=1:truncated`, `delete:fail=1:close`, `models:latency=50ms,fail=0.2:503`.
//! Rules apply in order; each sleeps its latency, then fails with its probability; the first
//! failure wins. `any` also covers unknown paths.
//!
//! # Control API
//! Under `/_sandbox/`, outside the ELITEA contract so no client mistakes it for the backend.
//! It needs **no authentication**: the sandbox listens on loopback (127.0.0.1) by default, so
//! only local processes reach it; do not bind the sandbox to a public address. Never subject
//! to faults. Errors are 400 `{"error": "..."}`.
//!
//! | call | body | answer |
//! |---|---|---|
//! | `GET /_sandbox/health` | | `{"ok": true, "url": "<origin>", "now": "<RFC 3339 sandbox time>"}` |
//! | `GET /_sandbox/faults` | | the active rules |
//! | `GET /_sandbox/hits` | | requests seen per route since the start, e.g. `{"list": 3, "create": 1}` |
//! | `PUT /_sandbox/faults` | `[{"route":"create","latency_ms":0,"failure_rate":1.0,"failure":"html"}]` | 200, the active rules (replaces all) |
//! | `DELETE /_sandbox/faults` | | 204, no faults |
//! | `POST /_sandbox/clock` | `{"advance_seconds": 3600}` | `{"now": "...", "offset_seconds": 3600.0}` |
//! | `POST /_sandbox/credential` | `{"user": "other"}` (default `sandbox`) | `{"token": "<full JWT>", "uuid": "...", "user_id": 4}` |
//! | `POST /_sandbox/seed` | `{"count": 10000, "prefix": "seed", "expires_in": [86400, null]}` | `{"created": 10000}`: tokens `seed-00001`... made in one transaction, lifetimes (seconds, `null` never) taken in turn |
//!
//! In the JSON rule, `route` is one of the route words above, `latency_ms` (default 0) an
//! integer, `failure_rate` (default 0) from 0 to 1, and `failure` (default 500) a status number
//! or `"html"`, `"truncated"`, `"close"`. Credentials minted by the control API are
//! never-expiring tokens named `sandbox-credential`.
//!
//! # Logging
//! One `tracing` line per request: method, path, status (or `closed`), latency. Token values,
//! request bodies and the `Authorization` header are never logged.

mod answers;
mod auth;
mod clock;
mod conn;
mod control;
mod create;
mod data;
mod faults;
mod jwt;
mod routes;
mod state;
mod stop;
mod store;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use faults::{FAULT_SYNTAX, Failure, FaultRule, FaultRuleParseError, Route};

use conn::{AbortableListener, ConnHandle};
use state::AppState;
use store::Store;

/// How long [`Sandbox::shutdown`] waits for open requests before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How to run the sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Port 0 picks any free port. Loopback by default: the control API has no auth.
    pub addr: SocketAddr,
    pub db: DbLocation,
    pub faults: Vec<FaultRule>,
    /// How long a successful authentication stays cached (sandbox time); zero disables it.
    pub auth_cache: Duration,
    /// The Public project's id (shared models live there; never a personal project).
    pub public_project_id: i64,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            db: DbLocation::Memory,
            faults: Vec::new(),
            auth_cache: Duration::from_secs(60),
            public_project_id: 1,
        }
    }
}

/// Where the sandbox keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// Fresh and empty on every start.
    Memory,
    /// A SQLite file, created if missing (with its parent directories), kept across restarts.
    File(PathBuf),
}

impl DbLocation {
    fn display_path(&self) -> PathBuf {
        match self {
            DbLocation::Memory => PathBuf::from(":memory:"),
            DbLocation::File(path) => path.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the directory for the sandbox database {}: {source}", path.display())]
    DatabaseDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the sandbox database {}: {source}", path.display())]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

/// A running sandbox. Dropping it stops the server too; [`Sandbox::shutdown`] also waits.
pub struct Sandbox {
    url: String,
    addr: SocketAddr,
    bootstrap: String,
    state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// Opens the database, binds, spawns the server task and returns once it is listening.
    pub async fn start(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        if !opts.addr.ip().is_loopback() {
            tracing::warn!(
                addr = %opts.addr,
                "sandbox bound to a non-loopback address: its /_sandbox/ control API has no authentication"
            );
        }
        let db = opts.db.clone();
        // SQLite file IO is blocking; keep it off the async workers.
        let (store, bootstrap) = tokio::task::spawn_blocking(move || open_store(&db))
            .await
            .unwrap_or_else(|join| {
                Err(SandboxError::DatabaseDir {
                    path: opts.db.display_path(),
                    source: std::io::Error::other(join.to_string()),
                })
            })?;

        let listener =
            tokio::net::TcpListener::bind(opts.addr)
                .await
                .map_err(|source| SandboxError::Bind {
                    addr: opts.addr,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
            addr: opts.addr,
            source,
        })?;
        let url = origin(addr);

        let state = Arc::new(AppState::new(
            store,
            opts.faults,
            opts.auth_cache,
            opts.public_project_id,
            url.clone(),
        ));
        let app = routes::router(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = axum::serve(
            AbortableListener(listener),
            app.into_make_service_with_connect_info::<ConnHandle>(),
        )
        .with_graceful_shutdown(async move {
            // Either an explicit stop or the handle being dropped.
            let _ = stopped.await;
        });
        let task = tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!("sandbox server stopped: {e}");
            }
        });
        tracing::info!(%url, "sandbox listening");
        Ok(Sandbox {
            url,
            addr,
            bootstrap,
            state,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The origin, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address actually bound (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The full JWT of the never-expiring bootstrap token (the same on every start of a file db).
    pub fn bootstrap_token(&self) -> &str {
        &self.bootstrap
    }

    /// Replaces the active fault rules.
    pub fn set_faults(&self, faults: Vec<FaultRule>) {
        self.state.set_faults(faults);
    }

    /// The active fault rules.
    pub fn faults(&self) -> Vec<FaultRule> {
        self.state.faults()
    }

    /// How many requests each route has received since the start (unknown paths under `Any`).
    pub fn hits(&self) -> std::collections::HashMap<Route, u64> {
        self.state.hits()
    }

    /// Moves the sandbox's "now" forward (tokens expire, the auth cache lapses).
    pub fn advance_clock(&self, by: chrono::Duration) {
        self.state.clock.advance(by);
    }

    /// Stops accepting, lets open requests finish (up to a few seconds), then returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await.is_err()
        {
            task.abort();
        }
        tracing::info!(url = %self.url, "sandbox stopped");
    }

    /// Serves until Ctrl-C (or SIGTERM, where there is one), then shuts down gracefully. An
    /// error when the server ended by itself first (it logged why).
    pub async fn serve_until_stopped(mut self) -> std::io::Result<()> {
        let Some(task) = self.task.as_mut() else {
            return Ok(());
        };
        let ended = tokio::select! {
            () = stop::stop_requested() => false,
            _ = task => {
                self.task = None;
                true
            }
        };
        self.shutdown().await;
        if ended {
            return Err(std::io::Error::other("the sandbox server stopped by itself"));
        }
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl std::fmt::Debug for Sandbox {
    // Hand-written so the bootstrap token never ends up in a debug print or log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn open_store(db: &DbLocation) -> Result<(Store, String), SandboxError> {
    let file = match db {
        DbLocation::Memory => None,
        DbLocation::File(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| SandboxError::DatabaseDir {
                    path: path.clone(),
                    source,
                })?;
            }
            Some(path.as_path())
        }
    };
    Store::open(file).map_err(|source| SandboxError::Database {
        path: db.display_path(),
        source,
    })
}

/// `http://127.0.0.1:PORT`; an unspecified bind address is reached through loopback.
fn origin(addr: SocketAddr) -> String {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{addr}")
}
