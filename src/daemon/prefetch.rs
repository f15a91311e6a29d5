//! The token list, fetched as the process starts. An editor starts the daemon and asks for
//! the list as soon as `initialize` is answered; fetching it needs nothing from `initialize`
//! unless that names another server, so it begins at once, on a thread of its own on the other
//! core, while the runtime starts and `initialize` is read and answered. The thread opens a
//! session of its own for the GET and keeps it: its HTTP client, connections and runtime end
//! with it, so nothing the daemon goes on using is driven by a runtime that is gone (an HTTP/2
//! connection would otherwise carry the daemon's next requests and die with the thread). Only
//! the body crosses over, piece by piece as the thread reads it, and the daemon's own thread
//! parses each piece while the thread reads the next (reading and parsing a list take about as
//! long as each other). The backend takes the list when `initialize` asked for the same
//! connection, and only as its first fetch, before anything could have changed it (see
//! `Shared::fetch`).

use crate::api::{ApiError, ListReader};
use crate::domain::Token;
use crate::session::{Connection, CredentialSource, Session};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio::sync::mpsc;

/// The list as it was fetched, and when its GET started.
pub type Fetched = (Result<Vec<Token>, ApiError>, DateTime<Utc>);

/// What the thread sends, in this order: the answer, then its body's pieces, then the end.
enum Sent {
    /// The server answered; the reader for its body, and when the GET started.
    Answer(ListReader, DateTime<Utc>),
    Piece(bytes::Bytes),
    End,
    /// No answer came (after the client's retries, if the failure was transient), or the
    /// server refused.
    Failed(ApiError, DateTime<Utc>),
    /// The body was cut off: the daemon's own fetch asks again.
    CutOff,
}

pub struct Prefetch {
    /// What the list was fetched for: the daemon's defaults, before `initializationOptions`.
    fetched_for: Connection,
    pub list: Option<Prefetched>,
}

/// The list on its way from the thread.
pub struct Prefetched(mpsc::UnboundedReceiver<Sent>);

impl Prefetched {
    /// The list, parsed here as its pieces arrive. `None` when the thread has nothing to stand
    /// for a fetch: it opened no session or no runtime, it ended early, or the body was cut
    /// off (then the daemon's own fetch asks again, with its retries).
    pub async fn receive(mut self) -> Option<Fetched> {
        let (mut list, started) = match self.0.recv().await? {
            Sent::Answer(reader, started) => (reader, started),
            Sent::Failed(e, started) => return Some((Err(e), started)),
            Sent::Piece(_) | Sent::End | Sent::CutOff => return None,
        };
        loop {
            match self.0.recv().await? {
                Sent::Piece(piece) => {
                    if let Err(e) = list.push(&piece) {
                        return Some((Err(e), started));
                    }
                }
                Sent::End => return Some((list.finish(), started)),
                Sent::Answer(..) | Sent::Failed(..) | Sent::CutOff => return None,
            }
        }
    }
}

/// Reads the list's answer and sends it on, piece by piece, until the receiver is gone.
async fn fetch_into(
    session: &Session,
    sender: &mpsc::UnboundedSender<Sent>,
) -> Result<(), mpsc::error::SendError<Sent>> {
    let started = session.service.now();
    let mut answer = match session.service.client().list_answer().await {
        Ok(answer) => answer,
        Err(e) => return sender.send(Sent::Failed(e, started)),
    };
    sender.send(Sent::Answer(answer.reader(), started))?;
    loop {
        match answer.piece().await {
            Ok(Some(piece)) => sender.send(Sent::Piece(piece))?,
            Ok(None) => return sender.send(Sent::End),
            Err(e) => {
                tracing::debug!("the list fetched at start was cut off: {}", e.message);
                return sender.send(Sent::CutOff);
            }
        }
    }
}

impl Prefetch {
    /// Fetches the list for `connection` on a new thread. `None` when that would start the
    /// embedded sandbox (a server in this process, and its files: only once `initialize`
    /// confirms it) or no thread can be started.
    pub fn start(connection: Connection) -> Option<Prefetch> {
        if connection.wants_sandbox() {
            return None;
        }
        let (sender, list) = mpsc::unbounded_channel();
        let opening = connection.clone();
        let started = spawn_beside_this_thread("elitea-prefetch", move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => {
                    tracing::debug!("no list fetched at start: no runtime: {e}");
                    return;
                }
            };
            runtime.block_on(async move {
                let session = match Session::open(&opening, CredentialSource::Resolve).await {
                    Ok(session) => session,
                    // The daemon opens its own session and reports the same failure.
                    Err(e) => {
                        tracing::debug!("no list fetched at start: {}", e.message);
                        return;
                    }
                };
                if fetch_into(&session, &sender).await.is_err() {
                    tracing::debug!("the list fetched at start is no longer wanted");
                }
            });
            // A keyring read may have left a blocking thread behind; nothing waits on it.
            runtime.shutdown_background();
        });
        if let Err(e) = started {
            tracing::debug!("no list fetched at start: no thread: {e}");
            return None;
        }
        Some(Prefetch {
            fetched_for: connection,
            list: Some(Prefetched(list)),
        })
    }

    /// Whether `initialize` asked for the connection the list was fetched for: the same
    /// server, the same sandbox choice and the same leave for plain HTTP (the rest of a
    /// connection is the daemon's, which `initialize` cannot change).
    pub fn serves(&self, connection: &Connection) -> bool {
        let fetched = &self.fetched_for;
        fetched.server == connection.server
            && fetched.sandbox == connection.sandbox
            && fetched.insecure_http == connection.insecure_http
    }
}

/// Starts `work` on a thread on another CPU than the caller's. On the machines measured, a new
/// thread first ran on its parent's CPU once the parent blocked, even with the other CPU idle
/// (a thread spawned while its parent spun for 0.6 ms first ran after 0.65 ms, and after
/// 0.09 ms when moved); so it would wait for the main thread to answer `initialize`, and start
/// no sooner than the work would without a thread. Once running, the thread gets back every CPU
/// the process may use, so neither it nor the threads it starts (a keyring's D-Bus connection)
/// stay confined.
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
        // SAFETY: the CPU number is checked to be within the set before it is cleared from it;
        // `thread` is live (its handle is held, so it is not reaped), and the call gets the
        // set's true size.
        unsafe {
            let here = libc::sched_getcpu();
            if here < 0 || here as usize >= libc::CPU_SETSIZE as usize {
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
