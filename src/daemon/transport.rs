//! The edge between stdio and tower-lsp-server. tower-lsp-server's reader stops for good at the
//! first body that is not JSON (its framed stream ends after an error), which would turn one
//! malformed message into a dead daemon. Frames are checked here first: a well-formed message
//! passes through untouched; anything else is answered with a JSON-RPC error and skipped.

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch};

/// The id of the client's `initialize` request, once read: the relay out tells when its answer
/// has been written.
type InitializeId = Arc<Mutex<Option<Value>>>;

/// The largest message accepted; a bigger `Content-Length` is refused rather than buffered.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

fn frame(body: &[u8]) -> Vec<u8> {
    let mut framed = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    framed.extend_from_slice(body);
    framed
}

fn error_frame(code: i64, message: &str) -> Vec<u8> {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    frame(body.to_string().as_bytes())
}

/// Reads one frame: `Ok(Some(Ok(body)))`, `Ok(Some(Err(problem)))` for a bad header block
/// (already consumed), `Ok(None)` at the end of input.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> std::io::Result<Option<Result<Vec<u8>, String>>> {
    let mut length: Option<Result<usize, String>> = None;
    let mut saw_header = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if saw_header {
                break;
            }
            continue;
        }
        saw_header = true;
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = Some(
                value
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| format!("invalid Content-Length `{}`", value.trim())),
            );
        }
    }
    let length = match length {
        None => return Ok(Some(Err("missing Content-Length header".into()))),
        Some(Err(problem)) => return Ok(Some(Err(problem))),
        Some(Ok(n)) if n > MAX_MESSAGE => return Ok(Some(Err(format!("message of {n} bytes is too large")))),
        Some(Ok(n)) => n,
    };
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(Some(Ok(body)))
}

/// Copies well-formed messages from `input` to the server; answers the rest through `errors`.
async fn relay_input<I, W>(
    input: I,
    mut server: W,
    errors: mpsc::UnboundedSender<Vec<u8>>,
    initialize_id: InitializeId,
) where
    I: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = BufReader::new(input);
    loop {
        let body = match read_frame(&mut reader).await {
            Ok(Some(Ok(body))) => body,
            Ok(Some(Err(problem))) => {
                tracing::warn!("bad message framing: {problem}");
                let _ = errors.send(error_frame(-32700, &format!("Parse error: {problem}")));
                continue;
            }
            // End of input (or a read error): the server sees its input close and stops.
            Ok(None) | Err(_) => return,
        };
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(message)) => {
                if message.get("method").and_then(Value::as_str) == Some("initialize") {
                    *initialize_id.lock().unwrap_or_else(|e| e.into_inner()) = message.get("id").cloned();
                }
                if server.write_all(&frame(&body)).await.is_err() || server.flush().await.is_err() {
                    return;
                }
            }
            Ok(_) => {
                let _ = errors.send(error_frame(
                    -32600,
                    "Invalid request: a message must be a JSON object",
                ));
            }
            Err(e) => {
                tracing::warn!("a message is not JSON: {e}");
                let _ = errors.send(error_frame(-32700, &format!("Parse error: {e}")));
            }
        }
    }
}

/// Whether `body` is the server's answer to the request with `id`.
fn answers(body: &[u8], id: &Value) -> bool {
    #[derive(serde::Deserialize)]
    struct Reply {
        id: Option<Value>,
        method: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Reply>(body)
        .is_ok_and(|reply| reply.method.is_none() && reply.id.as_ref() == Some(id))
}

/// Copies the server's frames to `output`, with the relay's error answers between them, and
/// sets `answered` once the answer to `initialize` has been written.
async fn relay_output<R, O>(
    server: R,
    mut errors: mpsc::UnboundedReceiver<Vec<u8>>,
    mut output: O,
    initialize_id: InitializeId,
    answered: watch::Sender<bool>,
) where
    R: AsyncRead + Unpin,
    O: AsyncWrite + Unpin,
{
    let mut reader = BufReader::new(server);
    let mut errors_open = true;
    loop {
        let mut answers_initialize = false;
        let framed = tokio::select! {
            next = read_frame(&mut reader) => match next {
                Ok(Some(Ok(body))) => {
                    // Looked for only until found: the frames before it are few and small.
                    if !*answered.borrow() {
                        let id = initialize_id.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        answers_initialize = id.is_some_and(|id| answers(&body, &id));
                    }
                    frame(&body)
                }
                Ok(Some(Err(_))) => continue,
                Ok(None) | Err(_) => break,
            },
            error = errors.recv(), if errors_open => match error {
                Some(framed) => framed,
                None => {
                    errors_open = false;
                    continue;
                }
            },
        };
        if output.write_all(&framed).await.is_err() || output.flush().await.is_err() {
            return;
        }
        if answers_initialize {
            // No yield of the CPU here: what follows the answer (opening the session from what
            // the list's thread read) is short, and a yield handed the CPU to whatever was
            // queued on it, which could be a local server the list's GET had just woken, for
            // as long as that server took to answer, the client queued behind it.
            answered.send_replace(true);
        }
    }
    // The server is done; answers to malformed input still queued go out last.
    while let Ok(framed) = errors.try_recv() {
        let _ = output.write_all(&framed).await;
    }
    let _ = output.flush().await;
}

/// Runs the service between `input` and `output` behind the checks above, until the client
/// sends `exit` or closes the input. `answered` turns true once the answer to `initialize` has
/// been written to `output`, for work that must not delay it.
pub async fn run<I, O>(
    input: I,
    output: O,
    service: tower_lsp_server::LspService<super::Backend>,
    socket: tower_lsp_server::ClientSocket,
    answered: watch::Sender<bool>,
) where
    I: AsyncRead + Unpin + Send + 'static,
    O: AsyncWrite + Unpin,
{
    let (to_server, server_input) = tokio::io::duplex(1 << 20);
    let (server_output, from_server) = tokio::io::duplex(1 << 20);
    let (errors, error_queue) = mpsc::unbounded_channel();
    // The input relay runs on its own: after `exit` the client may keep its end open, and the
    // daemon must not wait for it.
    let initialize_id = InitializeId::default();
    let reading = tokio::spawn(relay_input(input, to_server, errors, Arc::clone(&initialize_id)));
    let server = tower_lsp_server::Server::new(server_input, server_output, socket).serve(service);
    tokio::join!(
        server,
        relay_output(from_server, error_queue, output, initialize_id, answered)
    );
    reading.abort();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn only_the_answer_to_the_request_answers_it() {
        let cases: [(&str, Value, bool); 6] = [
            (r#"{"jsonrpc":"2.0","id":1,"result":{}}"#, json!(1), true),
            (
                r#"{"jsonrpc":"2.0","id":"a","error":{"code":1,"message":"m"}}"#,
                json!("a"),
                true,
            ),
            (r#"{"jsonrpc":"2.0","id":2,"result":{}}"#, json!(1), false),
            (r#"{"jsonrpc":"2.0","id":"1","result":{}}"#, json!(1), false),
            // A request from the server that happens to use the same id is not an answer.
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"window/showMessageRequest","params":{}}"#,
                json!(1),
                false,
            ),
            (
                r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"m"}}"#,
                json!(1),
                false,
            ),
        ];
        for (body, id, expected) in cases {
            assert_eq!(answers(body.as_bytes(), &id), expected, "{body} answers {id}");
        }
    }

    /// A parse error the relay writes first, and a notification from the server, do not count as
    /// the `initialize` answer; the answer does, once it is written.
    #[tokio::test]
    async fn initialize_counts_as_answered_once_its_answer_is_written() {
        let (mut server, from_server) = tokio::io::duplex(1 << 16);
        let (output, mut client) = tokio::io::duplex(1 << 16);
        let (errors, error_queue) = mpsc::unbounded_channel();
        let (answered, mut answered_seen) = watch::channel(false);
        let initialize_id = InitializeId::default();
        *initialize_id.lock().unwrap() = Some(json!(7));
        let relay = tokio::spawn(relay_output(
            from_server,
            error_queue,
            output,
            initialize_id,
            answered,
        ));

        errors.send(error_frame(-32700, "Parse error")).unwrap();
        let notification =
            br#"{"jsonrpc":"2.0","method":"window/logMessage","params":{"type":3,"message":"m"}}"#;
        server.write_all(&frame(notification)).await.unwrap();
        let mut received = vec![0; 4096];
        let mut seen = 0;
        while !String::from_utf8_lossy(&received[..seen]).contains("logMessage")
            || !String::from_utf8_lossy(&received[..seen]).contains("Parse error")
        {
            seen += client.read(&mut received[seen..]).await.unwrap();
        }
        assert!(!*answered_seen.borrow(), "not answered before the answer");

        server
            .write_all(&frame(br#"{"jsonrpc":"2.0","id":7,"result":{}}"#))
            .await
            .unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), answered_seen.wait_for(|a| *a))
            .await
            .expect("answered in time")
            .unwrap();
        let mut answer = vec![0; 4096];
        let n = client.read(&mut answer).await.unwrap();
        assert!(
            String::from_utf8_lossy(&answer[..n]).contains(r#""id":7"#),
            "the answer was written"
        );
        drop(server);
        drop(errors);
        relay.await.unwrap();
    }
}
