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
        spawn_beside_this_thread("elitea-prefetch", move || {
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

/// Starts `work` on a thread on another CPU than the caller's. Linux starts a new thread on
/// its parent's CPU, and an idle CPU takes no work from a busy one until it next wakes; so the
/// thread would wait for the main thread to answer `initialize` and block, and start no sooner
/// than it would without a thread. Once running, the thread gets back every CPU the process may
/// use, so neither it nor the threads it starts (a keyring's D-Bus connection) stay confined.
fn spawn_beside_this_thread(
    name: &str,
    work: impl FnOnce() + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let cpus = cpus::allowed();
    // Held until the thread is placed, so that it cannot undo the placement before it is made.
    let placing = Arc::new(std::sync::Mutex::new(()));
    let placed = placing.lock().unwrap_or_else(|e| e.into_inner());
    let thread = std::thread::Builder::new().name(name.into()).spawn({
        let placing = Arc::clone(&placing);
        move || {
            drop(placing.lock().unwrap_or_else(|e| e.into_inner()));
            cpus::run_on(cpus.as_ref());
            work();
        }
    })?;
    cpus::move_off_this_cpu(&thread, cpus.as_ref());
    drop(placed);
    Ok(thread)
}

/// CPU affinity, where Linux lets a process choose it; elsewhere, nothing.
#[cfg(target_os = "linux")]
mod cpus {
    use libc::cpu_set_t;
    use std::mem::size_of;

    /// The CPUs the process may use; `None` if they cannot be read.
    pub fn allowed() -> Option<cpu_set_t> {
        // SAFETY: all zeroes is the empty set (plain data), and the call gets its true size.
        unsafe {
            let mut allowed: cpu_set_t = std::mem::zeroed();
            (libc::sched_getaffinity(0, size_of::<cpu_set_t>(), &mut allowed) == 0).then_some(allowed)
        }
    }

    /// Lets the calling thread run on `cpus`.
    pub fn run_on(cpus: Option<&cpu_set_t>) {
        if let Some(cpus) = cpus {
            // SAFETY: a valid set, passed with its true size; 0 names the calling thread.
            unsafe {
                libc::sched_setaffinity(0, size_of::<cpu_set_t>(), cpus);
            }
        }
    }

    /// Moves `thread` to the CPUs of `cpus` other than the caller's, if there are any.
    pub fn move_off_this_cpu(thread: &std::thread::JoinHandle<()>, cpus: Option<&cpu_set_t>) {
        use std::os::unix::thread::JoinHandleExt;
        let Some(&cpus) = cpus else {
            return;
        };
        let mut elsewhere = cpus;
        // SAFETY: the CPU number is checked to be one before it is cleared from a valid set;
        // `thread` is live (its handle is held, so it is not reaped), and the call gets the
        // set's true size.
        unsafe {
            let here = libc::sched_getcpu();
            if here < 0 {
                return;
            }
            libc::CPU_CLR(here as usize, &mut elsewhere);
            if libc::CPU_COUNT(&elsewhere) > 0 {
                libc::pthread_setaffinity_np(thread.as_pthread_t(), size_of::<cpu_set_t>(), &elsewhere);
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod cpus {
    pub fn allowed() -> Option<()> {
        None
    }
    pub fn run_on(_: Option<&()>) {}
    pub fn move_off_this_cpu(_: &std::thread::JoinHandle<()>, _: Option<&()>) {}
}
