//! The token list, fetched as the process starts. An editor starts the daemon and asks for
//! the list as soon as `initialize` is answered; fetching it needs nothing from `initialize`
//! unless that names another server, so it begins at once, on a thread of its own on the other
//! core, while the runtime starts and `initialize` is read and answered. The thread opens a
//! session of its own for the GET and keeps it: its HTTP client, connections and runtime end
//! with it, so nothing the daemon goes on using is driven by a runtime that is gone (a pooled
//! keep-alive connection would otherwise carry the daemon's next requests and die with the thread). What
//! it read to open that session (configuration, server, credential) is handed over, so the
//! daemon's own session, opened as the first call arrives, reads no file again. Of the list, only
//! the body crosses over, piece by piece as the thread reads it, and the daemon's own thread
//! parses each piece while the thread reads the next. Reading takes less time than parsing, so
//! once the last piece is in, the thread parses the back half of what the daemon's thread has
//! not taken, on another CPU (where there is one), and the list is kept in those two parts
//! (see [`Shares`] and [`ListedTokens`]). The backend takes the list when `initialize` asked
//! for the same connection, and only as its first fetch, before anything could have changed it
//! (see `Shared::fetch`).
//! The thread ends only once the daemon has answered from the list ([`Prefetch::release`]):
//! what it frees as it ends would interrupt the daemon's thread while it answers.

use crate::api::{ApiError, ListReader, item_boundary};
use crate::domain::{ListedTokens, Token};
use crate::session::{Connection, CredentialSource, Resolved, Session};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// The list as it was fetched, and when its GET started.
pub type Fetched = (Result<ListedTokens, ApiError>, DateTime<Utc>);

/// What the thread sends, in this order: the answer, then its body's pieces, then the end.
enum Sent {
    /// The server answered; the reader for its body, and when the GET started.
    Answer(ListReader, DateTime<Utc>),
    Piece(Bytes),
    /// The end of the body, none of it parsed by the thread.
    End,
    /// The end of the body, and the items the thread parsed after `Shares::rest_from`.
    EndWithRest(Result<Vec<Token>, ApiError>),
    /// No answer came (after the client's retries, if the failure was transient), or the
    /// server refused.
    Failed(ApiError, DateTime<Utc>),
    /// The body was cut off: the daemon's own fetch asks again.
    CutOff,
}

/// How the two threads share the body's parse. Held only to note a piece or choose the rest.
#[derive(Debug, Default)]
struct Shares {
    /// The end of the pieces the daemon's thread has taken to parse (offsets in the body).
    taken: u64,
    /// The `,` after which the thread parses the rest; the daemon's thread stops before it.
    rest_from: Option<u64>,
}

/// The least left for the daemon's thread to parse that the thread shares: below it, the
/// hand-over of a second part costs more than it saves (200 tokens or so).
const LEAST_SHARED: u64 = 32 * 1024;

pub struct Prefetch {
    /// What the list was fetched for: the daemon's defaults, before `initializationOptions`.
    fetched_for: Connection,
    pub list: Option<Prefetched>,
    /// A copy of what the thread read to open its session, once it has: the daemon opens its
    /// own from it (see [`Prefetch::take_resolved`]).
    resolved: Arc<Mutex<Option<Resolved>>>,
    /// Dropped to let the thread end (see [`Prefetch::release`]).
    release: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

/// The list on its way from the thread.
pub struct Prefetched {
    sent: mpsc::UnboundedReceiver<Sent>,
    shares: Arc<Mutex<Shares>>,
}

impl Prefetched {
    /// The list, parsed here as its pieces arrive. `None` when the thread has nothing to stand
    /// for a fetch: it opened no session or no runtime, it ended early, or the body was cut
    /// off (then the daemon's own fetch asks again, with its retries).
    pub async fn receive(mut self) -> Option<Fetched> {
        let (reader, started) = match self.sent.recv().await? {
            Sent::Answer(reader, started) => (reader, started),
            Sent::Failed(e, started) => return Some((Err(e), started)),
            _ => return None,
        };
        let mut front = Front::new(reader, self.shares);
        loop {
            let done = match self.sent.recv().await? {
                Sent::Piece(piece) => match front.take(piece) {
                    Ok(()) => continue,
                    Err(e) => Err(e),
                },
                Sent::End => front.finish(None),
                Sent::EndWithRest(rest) => front.finish(Some(rest)),
                Sent::Answer(..) | Sent::Failed(..) | Sent::CutOff => return None,
            };
            return Some((done, started));
        }
    }
}

/// The daemon's side of the parse: the body from its start, up to where the thread's share
/// begins, if it takes one.
struct Front {
    reader: ListReader,
    shares: Arc<Mutex<Shares>>,
    /// The offset of the next piece.
    next: u64,
    /// The body from where the thread's share begins, kept in case its parse is not used. Once
    /// it holds anything, this side has stopped: every later piece is held too.
    held: Vec<Bytes>,
}

impl Front {
    fn new(reader: ListReader, shares: Arc<Mutex<Shares>>) -> Front {
        Front {
            reader,
            shares,
            next: 0,
            held: Vec::new(),
        }
    }

    /// Parses `piece`, or the part of it before the thread's share.
    fn take(&mut self, mut piece: Bytes) -> Result<(), ApiError> {
        let start = self.next;
        self.next += piece.len() as u64;
        let rest_from = if self.held.is_empty() {
            let mut shares = self.shares.lock().unwrap_or_else(|e| e.into_inner());
            if shares.rest_from.is_none() {
                shares.taken = self.next;
            }
            shares.rest_from
        } else {
            Some(start)
        };
        if let Some(comma) = rest_from.filter(|&comma| comma < self.next) {
            let mine = comma.saturating_sub(start) as usize;
            self.held.push(piece.split_off(mine));
        }
        self.reader.push(&piece)
    }

    /// The list, once the body has ended: `rest` is the thread's parse of its share, if it
    /// took one. It is used only when this side ended with a whole item, which confirms that
    /// the share began between two items; otherwise, or if that parse failed, the held part
    /// of the body is parsed here (so an error reads as it would for one parse).
    fn finish(mut self, rest: Option<Result<Vec<Token>, ApiError>>) -> Result<ListedTokens, ApiError> {
        if let Some(Ok(rest)) = rest {
            self.reader.settle()?;
            if self.reader.ends_after_an_item() {
                return Ok(self.reader.finish_with(rest));
            }
        }
        for piece in std::mem::take(&mut self.held) {
            self.reader.push(&piece)?;
        }
        self.reader.finish().map(ListedTokens::from)
    }
}

/// With the whole body in `pieces` (`length` bytes): chooses where the thread's share begins,
/// halfway through what the daemon's thread has not taken yet, if that is worth sharing, and
/// notes it. Nothing is shared when the pieces were not kept.
fn choose_the_rest(pieces: &[Bytes], length: u64, shares: &Mutex<Shares>) -> Option<u64> {
    let mut shares = shares.lock().unwrap_or_else(|e| e.into_inner());
    let left = length.checked_sub(shares.taken)?;
    if left < LEAST_SHARED {
        return None;
    }
    let aim = shares.taken + left / 2;
    let mut start = 0;
    for piece in pieces {
        let end = start + piece.len() as u64;
        if end > aim {
            let from = aim.saturating_sub(start) as usize;
            if let Some(comma) = item_boundary(piece, from) {
                let comma = start + comma as u64;
                shares.rest_from = Some(comma);
                return Some(comma);
            }
        }
        start = end;
    }
    None
}

/// Parses the body after the `,` at `comma` with `reader`.
fn parse_the_rest(pieces: &[Bytes], comma: u64, mut reader: ListReader) -> Result<Vec<Token>, ApiError> {
    let mut start = 0;
    for piece in pieces {
        let end = start + piece.len() as u64;
        if end > comma + 1 {
            let from = (comma + 1).saturating_sub(start) as usize;
            reader.push(&piece[from..])?;
        }
        start = end;
    }
    reader.finish()
}

/// Reads the list's answer and sends it on, piece by piece, until the receiver is gone; at
/// the end, parses its share of the body if it may `share` (see [`Shares`]). Once the list is
/// sent, waits for `released` (see [`Prefetch::release`]) before it lets go of the body's
/// pieces, and its caller of the session.
async fn fetch_into(
    session: &Session,
    sender: &mpsc::UnboundedSender<Sent>,
    shares: &Mutex<Shares>,
    share: bool,
    released: oneshot::Receiver<()>,
) -> Result<(), mpsc::error::SendError<Sent>> {
    let started = session.service.now();
    let mut answer = match session.service.client().list_answer().await {
        Ok(answer) => answer,
        Err(e) => return sender.send(Sent::Failed(e, started)),
    };
    sender.send(Sent::Answer(answer.reader(), started))?;
    let mut pieces = Vec::new();
    loop {
        match answer.piece().await {
            Ok(Some(piece)) => {
                if share {
                    pieces.push(piece.clone());
                }
                sender.send(Sent::Piece(piece))?;
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!("the list fetched at start was cut off: {}", e.message);
                return sender.send(Sent::CutOff);
            }
        }
    }
    let length = pieces.iter().map(|piece| piece.len() as u64).sum();
    let last = match choose_the_rest(&pieces, length, shares) {
        Some(comma) => {
            let reader = answer.reader_for_the_rest(comma, length);
            Sent::EndWithRest(parse_the_rest(&pieces, comma, reader))
        }
        None => Sent::End,
    };
    sender.send(last)?;
    // Sent or dropped, go on.
    let _ = released.await;
    Ok(())
}

impl Prefetch {
    /// Fetches the list for `connection` on a new thread. `None` when that would start the
    /// embedded sandbox (a server in this process, and its files: only once `initialize`
    /// confirms it) or no thread can be started.
    pub fn start(connection: Connection) -> Option<Prefetch> {
        Prefetch::start_with(connection, None)
    }

    /// As [`Prefetch::start`], before the process's log subscriber is installed, so that the
    /// thread starts and builds its runtime meanwhile (the GET leaves that much sooner). It
    /// opens its session, which may log (a warning about the plain-file store, say), only once
    /// `logs_ready` has been sent to or dropped.
    pub fn start_before_logs(
        connection: Connection,
        logs_ready: std::sync::mpsc::Receiver<()>,
    ) -> Option<Prefetch> {
        Prefetch::start_with(connection, Some(logs_ready))
    }

    fn start_with(
        connection: Connection,
        logs_ready: Option<std::sync::mpsc::Receiver<()>>,
    ) -> Option<Prefetch> {
        if connection.wants_sandbox() {
            return None;
        }
        let (sender, sent) = mpsc::unbounded_channel();
        let shares = Arc::new(Mutex::new(Shares::default()));
        let list = Prefetched {
            sent,
            shares: Arc::clone(&shares),
        };
        let opening = connection.clone();
        let resolved = Arc::new(Mutex::new(None));
        let handed = Arc::clone(&resolved);
        let (release, released) = oneshot::channel();
        let thread = spawn_beside_this_thread("elitea-prefetch", move |cpus| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Some(logs_ready) = logs_ready {
                // Sent, or dropped if the daemon gave up before it had logs: either way, go on.
                let _ = logs_ready.recv();
            }
            let runtime = match runtime {
                Ok(runtime) => runtime,
                Err(e) => {
                    tracing::debug!("no list fetched at start: no runtime: {e}");
                    return;
                }
            };
            // With one CPU, both parts would be parsed on it, and the sharing would be all cost.
            let share = cpus.beside.is_some();
            runtime.block_on(async move {
                // Threads the session starts (a keyring's D-Bus connection) are not confined.
                cpus.anywhere();
                let read = Resolved::read(&opening, CredentialSource::Resolve).await;
                let opened = read.and_then(|read| {
                    *handed.lock().unwrap_or_else(|e| e.into_inner()) = Some(read.for_another_session());
                    Session::from_resolved(read, &opening)
                });
                cpus.beside();
                let session = match opened {
                    Ok(session) => session,
                    // The daemon opens its own session and reports the same failure.
                    Err(e) => {
                        tracing::debug!("no list fetched at start: {}", e.message);
                        return;
                    }
                };
                if fetch_into(&session, &sender, &shares, share, released)
                    .await
                    .is_err()
                {
                    tracing::debug!("the list fetched at start is no longer wanted");
                }
            });
            // A keyring read may have left a blocking thread behind; nothing waits on it.
            runtime.shutdown_background();
        });
        let thread = match thread {
            Ok(thread) => thread,
            Err(e) => {
                tracing::debug!("no list fetched at start: no thread: {e}");
                return None;
            }
        };
        Some(Prefetch {
            fetched_for: connection,
            list: Some(list),
            resolved,
            release,
            thread,
        })
    }

    /// Lets the thread end, once the daemon has answered from the list: until then it keeps
    /// what it fetched the list with (its session, connection and runtime, and the body's
    /// pieces). Ending as soon as the list was sent, the thread gave memory back to the kernel
    /// while the daemon's thread joined the list's two parts and answered: each return is a
    /// TLB shootdown that interrupts the other CPU, and the daemon's thread waited in the
    /// kernel meanwhile (kernel tracepoints, 1,000 tokens). Ending later took 0.11 ms off a
    /// 1,000-token first call and 0.04 ms off a 10-token one (150 alternating calls each).
    /// The thread's handle is for a caller that waits for its end.
    pub fn release(self) -> std::thread::JoinHandle<()> {
        drop(self.release);
        self.thread
    }

    /// What the thread read to open its session (the configuration, the server and the
    /// credential), if it has by now, so that the daemon's own session reads no file again:
    /// it opens as the daemon's first call arrives. `None` when the thread has not got that far
    /// or could not (the daemon then opens its session itself and reports why it cannot).
    pub fn take_resolved(&self) -> Option<Resolved> {
        self.resolved.lock().unwrap_or_else(|e| e.into_inner()).take()
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

/// The CPUs the list's thread may run on: every one the process may use, or only those other
/// than the daemon's thread's CPU when the thread was started.
struct Placement {
    anywhere: Option<cpus::Set>,
    beside: Option<cpus::Set>,
}

impl Placement {
    fn anywhere(&self) {
        cpus::run_on(self.anywhere.as_ref());
    }

    /// Keeps the thread off the daemon's thread's CPU. Left free, the scheduler puts a thread
    /// that wakes another beside it: the two parsed the list on one CPU while the other one
    /// was idle (timing points on both threads, 10,000 tokens), and the daemon's thread parsed
    /// nothing while the thread read the body. Kept apart, the daemon's thread, which is free
    /// to move, is moved away from the thread if it ever comes to it.
    fn beside(&self) {
        cpus::run_on(self.beside.as_ref());
    }
}

/// Starts `work` on a thread on another CPU than the caller's. On the machines measured, a new
/// thread first ran on its parent's CPU once the parent blocked, even with the other CPU idle
/// (a thread spawned while its parent spun for 0.6 ms first ran after 0.65 ms, and after
/// 0.09 ms when moved); so it would wait for the main thread to answer `initialize`, and start
/// no sooner than the work would without a thread. `work` is told the CPUs it may choose from.
fn spawn_beside_this_thread(
    name: &str,
    work: impl FnOnce(Placement) + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let anywhere = cpus::allowed();
    let placement = Placement {
        beside: cpus::other_than_this_one(anywhere.as_ref()),
        anywhere,
    };
    let beside = placement.beside;
    // Held until the thread is placed, so that it cannot change its placement before it is made.
    let placing = Arc::new(std::sync::Mutex::new(()));
    let placed = placing.lock().unwrap_or_else(|e| e.into_inner());
    let thread = std::thread::Builder::new().name(name.into()).spawn({
        let placing = Arc::clone(&placing);
        move || {
            drop(placing.lock().unwrap_or_else(|e| e.into_inner()));
            work(placement);
        }
    })?;
    cpus::place(&thread, beside.as_ref());
    drop(placed);
    Ok(thread)
}

/// CPU affinity, where Linux lets a process choose it; elsewhere, nothing.
#[cfg(target_os = "linux")]
mod cpus {
    use std::mem::size_of;

    pub type Set = libc::cpu_set_t;

    /// The CPUs the process may use; `None` if they cannot be read.
    pub fn allowed() -> Option<Set> {
        // SAFETY: all zeroes is the empty set (plain data), and the call gets its true size.
        unsafe {
            let mut allowed: Set = std::mem::zeroed();
            (libc::sched_getaffinity(0, size_of::<Set>(), &mut allowed) == 0).then_some(allowed)
        }
    }

    /// The CPUs of `cpus` other than the caller's, if there are any.
    pub fn other_than_this_one(cpus: Option<&Set>) -> Option<Set> {
        let mut others = *cpus?;
        // SAFETY: the CPU number is checked to be within the set before it is cleared from it.
        unsafe {
            let here = libc::sched_getcpu();
            if here < 0 || here as usize >= libc::CPU_SETSIZE as usize {
                return None;
            }
            libc::CPU_CLR(here as usize, &mut others);
            (libc::CPU_COUNT(&others) > 0).then_some(others)
        }
    }

    /// Lets the calling thread run on `cpus`.
    pub fn run_on(cpus: Option<&Set>) {
        if let Some(cpus) = cpus {
            // SAFETY: a valid set, passed with its true size; 0 names the calling thread.
            unsafe {
                libc::sched_setaffinity(0, size_of::<Set>(), cpus);
            }
        }
    }

    /// Lets `thread` run on `cpus`.
    pub fn place(thread: &std::thread::JoinHandle<()>, cpus: Option<&Set>) {
        use std::os::unix::thread::JoinHandleExt;
        if let Some(cpus) = cpus {
            // SAFETY: `thread` is live (its handle is held, so it is not reaped), and the call
            // gets the set's true size.
            unsafe {
                libc::pthread_setaffinity_np(thread.as_pthread_t(), size_of::<Set>(), cpus);
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod cpus {
    pub type Set = ();
    pub fn allowed() -> Option<Set> {
        None
    }
    pub fn other_than_this_one(_: Option<&Set>) -> Option<Set> {
        None
    }
    pub fn run_on(_: Option<&Set>) {}
    pub fn place(_: &std::thread::JoinHandle<()>, _: Option<&Set>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ServerUrl;
    use crate::sandbox::{Sandbox, SandboxOptions};
    use std::time::Duration;

    /// The thread keeps what it fetched the list with once the list is in, and ends once it is
    /// released: for a list of a few items and for one large enough to share.
    #[tokio::test]
    async fn the_thread_ends_once_released() {
        let sandbox = Sandbox::start(SandboxOptions::default()).await.unwrap();
        let home = tempfile::tempdir().unwrap();
        let connection = Connection {
            server: Some(sandbox.url().to_string()),
            token: Some(crate::domain::Secret::new(sandbox.bootstrap_token())),
            paths: Some(crate::paths::Paths::under(home.path().to_path_buf())),
            store: Some(crate::secrets::StoreChoice::Only(
                crate::secrets::StoreKind::Memory,
            )),
            ..Connection::default()
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        for (seeded, listed) in [(0, 1), (3_999, 4_000)] {
            if seeded > 0 {
                http.post(format!("{}/_sandbox/seed", sandbox.url()))
                    .json(&serde_json::json!({"count": seeded}))
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .unwrap();
            }
            let mut prefetch = Prefetch::start(connection.clone()).expect("a thread");
            let (list, _) = prefetch.list.take().unwrap().receive().await.expect("a list");
            assert_eq!(list.unwrap().len(), listed);
            // Time enough to end, had it not waited.
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(
                !prefetch.thread.is_finished(),
                "{listed} tokens: the thread waits"
            );
            let thread = prefetch.release();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !thread.is_finished() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{listed} tokens: the thread ends"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }

    fn server() -> ServerUrl {
        ServerUrl::parse("https://next.elitea.ai", false).unwrap()
    }

    /// The list as one reader reads the whole body, or its error's message.
    fn read_alone(body: &[u8]) -> Result<Vec<Token>, String> {
        let mut reader = ListReader::new(&server(), 200, Some(body.len() as u64));
        reader
            .push(body)
            .and_then(|()| reader.finish())
            .map_err(|e| e.message)
    }

    /// What the two threads make of `pieces`, the daemon's thread having taken `taken` of them
    /// when the last one is read; and, if the thread took a share, whether it was joined.
    fn read_shared(pieces: &[Bytes], taken: usize) -> (Result<Vec<Token>, String>, Option<bool>) {
        let length: u64 = pieces.iter().map(|piece| piece.len() as u64).sum();
        let shares = Arc::new(Mutex::new(Shares::default()));
        let mut front = Front::new(ListReader::new(&server(), 200, Some(length)), Arc::clone(&shares));
        let mut read = || {
            for piece in &pieces[..taken] {
                front.take(piece.clone())?;
            }
            let rest = choose_the_rest(pieces, length, &shares).map(|comma| {
                let reader = ListReader::for_the_rest(&server(), 200, comma, length);
                let rest = parse_the_rest(pieces, comma, reader);
                // A share begun inside a name below fails to parse (an item follows the name),
                // but nothing may rely on that: it is taken as read, with no items.
                let at = comma as usize;
                let body: Vec<u8> = pieces.iter().flat_map(|piece| piece.iter().copied()).collect();
                if body[at - 2..at] == *b"a}" {
                    Ok(Vec::new())
                } else {
                    rest
                }
            });
            for piece in &pieces[taken..] {
                front.take(piece.clone())?;
            }
            Ok::<_, ApiError>(rest)
        };
        let rest = match read() {
            Ok(rest) => rest,
            Err(e) => return (Err(e.message), None),
        };
        let joined = rest
            .as_ref()
            .map(|rest| rest.is_ok() && front.reader.ends_after_an_item());
        let list = front.finish(rest).map(|list| list.parts().concat());
        (list.map_err(|e| e.message), joined)
    }

    /// A share that begins just after an item the daemon's thread holds in part from an earlier
    /// piece (the rest of it, in the share's piece, shorter than what is held) is joined: that
    /// item is parsed once the share's start is reached. The thread's part is taken as given
    /// (here, no items), so the list shows whether it was joined.
    #[test]
    fn a_share_after_an_item_cut_by_a_piece_is_joined() {
        let item = |i: usize| {
            format!(
                r#"{{"uuid":"{i:08x}-2222-4333-8444-555555555555","id":{i},"name":"n","token":"...abcdefg","expires":null}}"#
            )
        };
        let body = format!("[{},{},{}]", item(1), item(2), item(3));
        let second = body.find(&item(2)).unwrap();
        let comma = second + item(2).len();
        let whole = read_alone(body.as_bytes()).unwrap();
        for cut in [second + item(2).len() / 2 + 1, comma - 1] {
            let pieces = [
                Bytes::copy_from_slice(&body.as_bytes()[..cut]),
                Bytes::copy_from_slice(&body.as_bytes()[cut..]),
            ];
            let shares = Arc::new(Mutex::new(Shares {
                taken: 0,
                rest_from: Some(comma as u64),
            }));
            let mut front = Front::new(ListReader::new(&server(), 200, None), shares);
            for piece in pieces {
                front.take(piece).unwrap();
            }
            let list = front.finish(Some(Ok(Vec::new()))).unwrap();
            assert_eq!(list.parts().concat(), whole[..2], "cut at {cut}");
        }
    }

    /// However the body comes in pieces and however far the daemon's thread has got when the
    /// last one is read, the shared parse reads as one parse of the whole body: the same list,
    /// or the same error. Names holding `},{` make some shares begin inside a string, which must
    /// never be joined; errors sit before and after where the shares begin.
    #[test]
    fn a_shared_parse_reads_as_one() {
        let item = |i: usize, name: &str, id: &str| {
            format!(
                r#"{{"expires":"Sat, 01 Jan 2028 00:00:00 GMT","id":{id},"name":"{name}","token":"...abcdefg","user_id":1,"uuid":"{i:08x}-2222-4333-8444-555555555555"}}"#
            )
        };
        let list = |name: &dyn Fn(usize) -> String, bad: Option<usize>| {
            let items: Vec<String> = (0..2_000)
                .map(|i| item(i, &name(i), if Some(i) == bad { r#""x""# } else { "7" }))
                .collect();
            format!("[{}]", items.join(", "))
        };
        let plain = |i: usize| format!("seed-{i:05}");
        let accented = |i: usize| format!("s\u{e9}ed-\u{1f511}-{i:05}");
        let fooling = |i: usize| format!("a}},{{\\\"uuid\\\" {i}");
        let bodies = [
            list(&plain, None),
            list(&fooling, None),
            list(&plain, Some(30)),
            list(&plain, Some(1_990)),
            list(&fooling, Some(1_500)),
            list(&plain, None).trim_end_matches(']').to_string(),
            list(&accented, None),
            list(&accented, Some(1_200)),
        ];
        // Shares joined and not, in the bodies of plain names and in the fooling one.
        let mut shares = [[0; 2]; 2];
        for (number, body) in bodies.iter().enumerate() {
            let alone = read_alone(body.as_bytes());
            assert_eq!(
                alone.is_ok(),
                [0, 1, 6].contains(&number),
                "body {number}: {alone:?}"
            );
            // Sizes that split characters of two and four bytes, as well as round ones.
            for size in [4_093, 4_096, 16_384, 16_411, 65_536] {
                let pieces: Vec<Bytes> = body.as_bytes().chunks(size).map(Bytes::copy_from_slice).collect();
                // Four points where the thread shares, and one where nothing is left to share.
                for taken in [0, 1, 3, pieces.len() / 2, pieces.len()] {
                    let (shared, was_joined) = read_shared(&pieces, taken);
                    assert_eq!(shared, alone, "body {number}, pieces of {size}, {taken} taken");
                    let kind = match number {
                        0 | 6 => Some(0),
                        1 => Some(1),
                        _ => None,
                    };
                    if let (Some(joined), Some(kind)) = (was_joined, kind) {
                        shares[kind][usize::from(joined)] += 1;
                    }
                }
            }
        }
        let [[plain_apart, plain_joined], [fooled_apart, fooled_joined]] = shares;
        assert_eq!(plain_apart, 0, "a share of plain names begins between items");
        assert!(
            plain_joined > 0 && fooled_joined > 0 && fooled_apart > 0,
            "{shares:?}"
        );
    }
}
