//! A small synchronous JSON-RPC client over a child's stdio, with `Content-Length` framing: the
//! way an editor starts and talks to a language server, without an editor's own overhead.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// How long any single answer may take before the suite gives up on the server.
const PATIENCE: Duration = Duration::from_secs(60);

pub struct Lsp {
    child: Child,
    stdin: Option<ChildStdin>,
    incoming: Receiver<(Instant, Value)>,
    next_id: i64,
    /// Notifications received so far, with the instant each arrived.
    pub notifications: Vec<(Instant, Value)>,
}

impl Lsp {
    /// Starts the server with piped stdin and stdout; stderr is discarded.
    pub fn spawn(command: &mut Command) -> Lsp {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, incoming) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Some(read) = read_frame(&mut reader) {
                if sender.send(read).is_err() {
                    break;
                }
            }
        });
        Lsp {
            child,
            stdin: Some(stdin),
            incoming,
            next_id: 0,
            notifications: Vec::new(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn send(&mut self, message: &Value) {
        let body = serde_json::to_vec(message).expect("JSON");
        let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        frame.extend_from_slice(&body);
        let stdin = self.stdin.as_mut().expect("stdin is open until close");
        stdin.write_all(&frame).expect("the server reads its stdin");
        stdin.flush().expect("flush");
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// The next message that is not a request from the server (those are answered with
    /// `null` here, as a client that offers nothing would), or `None` after `timeout`.
    fn receive(&mut self, timeout: Duration) -> Option<(Instant, Value)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, message) = match self.incoming.recv_timeout(left) {
                Ok(received) => received,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            };
            if message.get("method").is_some()
                && let Some(server_id) = message.get("id")
            {
                let answer = json!({"jsonrpc": "2.0", "id": server_id, "result": null});
                self.send(&answer);
                continue;
            }
            return Some((at, message));
        }
    }

    /// Sends a request and waits for its answer; `Err` holds a JSON-RPC error object.
    /// Notifications received meanwhile are kept.
    pub fn request(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.timed_request(method, params).1
    }

    /// As [`Lsp::request`], with the instant the answer's last byte was read: the answer is
    /// read on a thread of its own, and the hand-over to the caller's thread (a wake-up of
    /// another thread) and the answer's JSON parse are not the server's time.
    pub fn timed_request(&mut self, method: &str, params: Value) -> (Instant, Result<Value, Value>) {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let Some((at, message)) = self.receive(PATIENCE) else {
                panic!("no answer to {method} within {PATIENCE:?}");
            };
            if message.get("method").is_some() {
                self.notifications.push((at, message));
            } else if message["id"] == json!(id) {
                return match message.get("error") {
                    Some(error) => (at, Err(error.clone())),
                    None => (at, Ok(message["result"].clone())),
                };
            }
        }
    }

    /// Waits up to `timeout` for a notification named `method`.
    pub fn wait_for(&mut self, method: &str, timeout: Duration) -> Option<(Instant, Value)> {
        if let Some(found) = self.notifications.iter().find(|(_, m)| m["method"] == method) {
            return Some(found.clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, message) = self.receive(left)?;
            self.notifications.push((at, message.clone()));
            if message["method"] == method {
                return Some((at, message));
            }
        }
    }

    /// `shutdown`, `exit`, and a wait for the process (killed if it lingers).
    pub fn close(mut self) {
        let _ = self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Lsp {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The next message, and the instant its last byte was read (before it is parsed).
fn read_frame(reader: &mut impl BufRead) -> Option<(Instant, Value)> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length?];
    reader.read_exact(&mut body).ok()?;
    let read = Instant::now();
    Some((read, serde_json::from_slice(&body).ok()?))
}

/// The `initialize` parameters every server in the suite gets: one workspace folder.
pub fn initialize_params(workspace: &std::path::Path, options: Value) -> Value {
    let uri = format!("file://{}", workspace.display());
    json!({
        "processId": std::process::id(),
        "rootUri": uri,
        "capabilities": {"window": {"workDoneProgress": true}},
        "workspaceFolders": [{"uri": uri, "name": "workspace"}],
        "initializationOptions": options,
    })
}
