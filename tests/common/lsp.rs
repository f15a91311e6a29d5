//! A small LSP client for tests: framed JSON-RPC over any byte stream, a record of every
//! message (for transcripts), and answers to the server's own requests.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// A message the server sent.
pub type Incoming = Value;

pub struct TestClient {
    writer: Box<dyn AsyncWrite + Unpin + Send>,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    next_id: i64,
    /// Notifications and server requests seen while waiting for responses.
    pub pending: Vec<Incoming>,
    /// Every message, both ways, in order: `("->" | "<-", message)`.
    pub transcript: Vec<(String, Value)>,
}

impl TestClient {
    pub fn new(
        reader: impl tokio::io::AsyncRead + Unpin + Send + 'static,
        writer: impl AsyncWrite + Unpin + Send + 'static,
    ) -> TestClient {
        let (tx, incoming) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(reader);
            loop {
                let mut length = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(n) = line.strip_prefix("Content-Length: ") {
                        length = n.parse::<usize>().ok();
                    }
                }
                let Some(length) = length else { return };
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).await.is_err() {
                    return;
                }
                let Ok(message) = serde_json::from_slice::<Value>(&body) else {
                    return;
                };
                if tx.send(message).is_err() {
                    return;
                }
            }
        });
        TestClient {
            writer: Box::new(writer),
            incoming,
            next_id: 0,
            pending: Vec::new(),
            transcript: Vec::new(),
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
        self.writer.flush().await.unwrap();
    }

    pub async fn send(&mut self, message: Value) {
        self.transcript.push(("->".into(), message.clone()));
        let body = serde_json::to_vec(&message).unwrap();
        let mut framed = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        framed.extend(body);
        self.send_raw(&framed).await;
    }

    /// The next message from the server, within `limit`.
    pub async fn receive(&mut self, limit: Duration) -> Option<Incoming> {
        let message = tokio::time::timeout(limit, self.incoming.recv())
            .await
            .ok()
            .flatten()?;
        self.transcript.push(("<-".into(), message.clone()));
        Some(message)
    }

    /// Sends a request and waits for its response; other messages are kept in `pending`.
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            let message = self
                .receive(Duration::from_secs(60))
                .await
                .unwrap_or_else(|| panic!("no response to {method}"));
            if message.get("id") == Some(&json!(id)) && message.get("method").is_none() {
                return message;
            }
            self.pending.push(message);
        }
    }

    pub async fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await;
    }

    /// Waits for a message the predicate accepts (looking at `pending` first).
    pub async fn wait_for(&mut self, limit: Duration, accept: impl Fn(&Value) -> bool) -> Option<Value> {
        if let Some(i) = self.pending.iter().position(&accept) {
            return Some(self.pending.remove(i));
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.receive(left).await?;
            if accept(&message) {
                return Some(message);
            }
            self.pending.push(message);
        }
    }

    /// Answers a server-to-client request.
    pub async fn respond(&mut self, id: Value, result: Value) {
        self.send(json!({"jsonrpc": "2.0", "id": id, "result": result}))
            .await;
    }

    pub async fn initialize(&mut self, folders: &[&std::path::Path], options: Value) -> Value {
        let folders: Vec<Value> = folders
            .iter()
            .map(|f| json!({"uri": format!("file://{}", f.display()), "name": "ws"}))
            .collect();
        let result = self
            .request(
                "initialize",
                json!({"capabilities": {}, "workspaceFolders": folders, "initializationOptions": options}),
            )
            .await;
        self.notify("initialized", json!({})).await;
        result
    }
}

pub fn method_of(message: &Value) -> &str {
    message.get("method").and_then(Value::as_str).unwrap_or_default()
}
