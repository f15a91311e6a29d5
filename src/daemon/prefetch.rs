//! The session and the token list, started with the process. An editor starts the daemon and
//! asks for the list as soon as `initialize` is answered; opening the session and fetching the
//! list need nothing from `initialize` unless it names another server, so they begin at once
//! on a thread of their own, on the other core, while the runtime starts and `initialize` is
//! read and answered. The backend takes what they bring only when `initialize` asked for the
//! same connection, and the list only as its first fetch, before anything could have changed
//! it (see `Shared::session` and `Shared::fetch`).

use crate::api::ApiError;
use crate::domain::Token;
use crate::error::Error;
use crate::session::{Connection, CredentialSource, Session};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio::sync::oneshot;

/// The list as the thread fetched it, and when its GET started.
pub type Fetched = (Result<Vec<Token>, ApiError>, DateTime<Utc>);

pub struct Prefetch {
    /// What was opened: the daemon's defaults, before `initializationOptions`.
    opened_for: Connection,
    pub session: Option<oneshot::Receiver<Result<Arc<Session>, Error>>>,
    pub list: Option<oneshot::Receiver<Fetched>>,
}

impl Prefetch {
    /// Opens the session for `connection` and fetches the list on a new thread. `None` when
    /// it would start the embedded sandbox (a server in this process, and its files: only once
    /// `initialize` confirms it) or no thread can be started.
    pub fn start(connection: Connection) -> Option<Prefetch> {
        if connection.wants_sandbox() {
            return None;
        }
        let (session_sender, session) = oneshot::channel();
        let (list_sender, list) = oneshot::channel();
        let opening = connection.clone();
        let thread = std::thread::Builder::new()
            .name("elitea-prefetch".into())
            .spawn(move || {
                // Its own runtime: the daemon's starts meanwhile on the main thread. The HTTP
                // connection ends with it; the daemon's next request opens another.
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                    return;
                };
                runtime.block_on(async move {
                    let opened = Session::open(&opening, CredentialSource::Resolve)
                        .await
                        .map(Arc::new);
                    let session = opened.as_ref().ok().map(Arc::clone);
                    if session_sender.send(opened).is_err() {
                        return;
                    }
                    let Some(session) = session else {
                        return;
                    };
                    let started = session.service.now();
                    let fetched = session.service.client().list_tokens().await;
                    let _ = list_sender.send((fetched, started));
                });
                // A keyring read may have left a blocking thread behind; nothing waits on it.
                runtime.shutdown_background();
            })
            .ok()?;
        run_beside_this_thread(&thread);
        Some(Prefetch {
            opened_for: connection,
            session: Some(session),
            list: Some(list),
        })
    }

    /// Whether `initialize` asked for the connection this opened: the same server, the same
    /// sandbox choice and the same leave for plain HTTP (the rest of a connection is the
    /// daemon's, which `initialize` cannot change).
    pub fn serves(&self, connection: &Connection) -> bool {
        let opened = &self.opened_for;
        opened.server == connection.server
            && opened.sandbox == connection.sandbox
            && opened.insecure_http == connection.insecure_http
    }
}

/// Moves `thread` off the CPU the caller runs on. Linux starts a new thread on its parent's
/// CPU, and an idle CPU takes no work from a busy one until it next wakes; so the thread would
/// wait for the main thread to answer `initialize` and block, and start no sooner than it
/// would without a thread. Only CPUs the process may already use are kept.
#[cfg(target_os = "linux")]
fn run_beside_this_thread(thread: &std::thread::JoinHandle<()>) {
    use std::os::unix::thread::JoinHandleExt;
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `cpu_set_t` is plain data, for which all zeroes is the empty set; the calls get
    // its true size, and `thread` is a live thread (its handle is held, so it is not reaped).
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        let here = libc::sched_getcpu();
        if here < 0 || libc::sched_getaffinity(0, size, &mut allowed) != 0 {
            return;
        }
        libc::CPU_CLR(here as usize, &mut allowed);
        if libc::CPU_COUNT(&allowed) > 0 {
            libc::pthread_setaffinity_np(thread.as_pthread_t(), size, &allowed);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn run_beside_this_thread(_: &std::thread::JoinHandle<()>) {}
