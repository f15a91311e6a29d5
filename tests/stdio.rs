//! The binary's `serve` over each kind of standard input and output it can be given: pipes
//! (JetBrains, Rust's `Command`), Unix socket pairs (libuv: VS Code, Neovim) and plain files (a
//! shell's redirections). Pipes and sockets are read and written in non-blocking mode; a
//! conversation bigger than a pipe's buffer must arrive whole and in order, and the descriptors
//! must be left blocking again for whoever shares them. Also the thread `serve` fetches the
//! token list on as it starts, which must end once the daemon has answered from that list.
#![cfg(unix)]

mod common;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `elitea/status` requests sent without reading the answers in between: their answers
/// overflow a pipe's or a socket's buffer, so the daemon's writes have to wait.
const STATUS_REQUESTS: i64 = 4_000;
const SHUTDOWN: i64 = STATUS_REQUESTS + 1;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Pipes,
    SocketPairs,
    Files,
}

fn frame(message: &Value) -> Vec<u8> {
    let body = message.to_string();
    format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

/// `initialize`; once it is answered, `initialized` and the status requests; once they are all
/// answered (a request still running at `shutdown` would be cancelled), shutdown and exit.
fn conversation(workspace: &std::path::Path) -> [Vec<u8>; 3] {
    let uri = format!("file://{}", workspace.display());
    let opening = frame(
        &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "processId": null, "rootUri": uri, "capabilities": {},
        "workspaceFolders": [{"uri": uri, "name": "workspace"}]}}),
    );
    let mut rest = frame(&json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}));
    for id in 1..=STATUS_REQUESTS {
        rest.extend(frame(
            &json!({"jsonrpc": "2.0", "id": id, "method": "elitea/status", "params": {}}),
        ));
    }
    let mut closing = frame(&json!({"jsonrpc": "2.0", "id": SHUTDOWN, "method": "shutdown"}));
    closing.extend(frame(&json!({"jsonrpc": "2.0", "method": "exit"})));
    [opening, rest, closing]
}

/// The next `count` answers (messages with an id and no method) in `reader`, fewer at its end.
fn answers(reader: &mut impl BufRead, count: usize) -> Vec<Value> {
    let mut answers = Vec::new();
    loop {
        let mut length = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).expect("read a header") == 0 {
                return answers;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(value) = line.strip_prefix("Content-Length: ") {
                length = Some(value.parse::<usize>().expect("a length"));
            }
        }
        let mut body = vec![0; length.expect("Content-Length")];
        reader.read_exact(&mut body).expect("a whole body");
        let message: Value = serde_json::from_slice(&body).expect("a JSON body");
        if message.get("method").is_none() {
            answers.push(message);
            if answers.len() == count {
                return answers;
            }
        }
    }
}

fn nonblocking(fd: &OwnedFd) -> bool {
    OFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFL).expect("F_GETFL"))
        .contains(OFlag::O_NONBLOCK)
}

/// Runs one conversation over `kind`; returns the answers and, for pipes and sockets, whether
/// the daemon's ends were non-blocking while it served, and after it exited.
fn converse(kind: Kind, server: &str, token: &str) -> (Vec<Value>, Option<(bool, bool)>) {
    let home = tempfile::tempdir().unwrap();
    let workspace = home.path().join("workspace");
    std::fs::create_dir_all(&workspace).unwrap();
    let [opening, requests, closing] = conversation(&workspace);
    let mut command = Command::new(common::BIN);
    command
        .arg("serve")
        .env("ELITEA_TOKENS_HOME", home.path())
        .env("ELITEA_SECRET_STORE", "file")
        .env("ELITEA_SERVER", server)
        .env("ELITEA_TOKEN", token)
        .stderr(Stdio::null());

    // Each kind: the client's ends, and duplicates of the daemon's ends kept to look at later.
    let (to_daemon, from_daemon, daemon_ends): (Box<dyn Write + Send>, Box<dyn Read>, Vec<OwnedFd>) =
        match kind {
            Kind::Pipes => {
                let (daemon_in, client_out) = std::io::pipe().unwrap();
                let (client_in, daemon_out) = std::io::pipe().unwrap();
                let kept = vec![
                    daemon_in.try_clone().unwrap().into(),
                    daemon_out.try_clone().unwrap().into(),
                ];
                command.stdin(daemon_in).stdout(daemon_out);
                (Box::new(client_out), Box::new(client_in), kept)
            }
            Kind::SocketPairs => {
                let (client_out, daemon_in) = UnixStream::pair().unwrap();
                let (client_in, daemon_out) = UnixStream::pair().unwrap();
                let kept = vec![
                    daemon_in.try_clone().unwrap().into(),
                    daemon_out.try_clone().unwrap().into(),
                ];
                command
                    .stdin(OwnedFd::from(daemon_in))
                    .stdout(OwnedFd::from(daemon_out));
                (Box::new(client_out), Box::new(client_in), kept)
            }
            Kind::Files => {
                let input = home.path().join("input");
                // A file cannot wait for the `initialize` answer, so the conversation stops there.
                std::fs::write(&input, &opening).unwrap();
                let output = home.path().join("output");
                command
                    .stdin(std::fs::File::open(&input).unwrap())
                    .stdout(std::fs::File::create(&output).unwrap());
                let status = command.status().expect("the daemon runs");
                assert!(status.success(), "{kind:?}: {status}");
                let mut output = BufReader::new(std::fs::File::open(&output).unwrap());
                return (answers(&mut output, usize::MAX), None);
            }
        };
    let mut child = command.spawn().expect("the daemon starts");
    // Command kept its own copies of the daemon's ends; only the duplicates remain here.
    drop(command);
    let mut to_daemon = to_daemon;
    to_daemon
        .write_all(&opening)
        .expect("the daemon reads `initialize`");
    let mut from_daemon = BufReader::new(from_daemon);
    let mut answered = answers(&mut from_daemon, 1);
    let nonblocking_while_serving = daemon_ends.iter().all(nonblocking);
    // The requests from another thread, as the daemon's answers fill the pipe while it reads.
    let writer = std::thread::spawn(move || {
        to_daemon
            .write_all(&requests)
            .expect("the daemon reads every request");
        to_daemon
    });
    answered.extend(answers(&mut from_daemon, STATUS_REQUESTS as usize));
    let mut to_daemon = writer.join().expect("the writer thread");
    to_daemon
        .write_all(&closing)
        .expect("the daemon reads shutdown and exit");
    answered.extend(answers(&mut from_daemon, 1));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "{kind:?}: the daemon did not exit after `exit`"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{kind:?}: {status}");
    // The input was kept open: the daemon stopped at `exit`, not at the end of its input.
    drop(to_daemon);
    (
        answered,
        Some((nonblocking_while_serving, daemon_ends.iter().any(nonblocking))),
    )
}

#[tokio::test]
async fn serve_answers_over_pipes_sockets_and_files_and_leaves_them_blocking() {
    let sandbox = common::SandboxProcess::start().await;
    for kind in [Kind::Pipes, Kind::SocketPairs, Kind::Files] {
        let (server, token) = (sandbox.server.clone(), sandbox.token.clone());
        let (answers, nonblocking) = tokio::task::spawn_blocking(move || converse(kind, &server, &token))
            .await
            .expect("the conversation");
        // Requests run concurrently, so answers may come in another order.
        let mut ids: Vec<i64> = answers.iter().filter_map(|a| a["id"].as_i64()).collect();
        ids.sort_unstable();
        assert_eq!(
            answers[0]["result"]["serverInfo"]["name"], "elitea-tokens",
            "{kind:?}"
        );
        let Some((while_serving, after)) = nonblocking else {
            assert_eq!(ids, [0], "{kind:?}: the `initialize` answer alone");
            continue;
        };
        let expected: Vec<i64> = (0..=SHUTDOWN).collect();
        assert_eq!(ids, expected, "{kind:?}: every answer, once");
        let statuses = answers
            .iter()
            .filter(|a| a["result"]["secretStore"] == "file")
            .count();
        assert_eq!(
            statuses, STATUS_REQUESTS as usize,
            "{kind:?}: every status answered"
        );
        let answered: usize = answers.iter().map(|a| a.to_string().len()).sum();
        // Several times a pipe's buffer (64 KiB) and a Unix socket's (208 KiB by default).
        assert!(answered > 768 << 10, "{kind:?}: only {answered} bytes of answers");
        assert!(while_serving, "{kind:?}: served in non-blocking mode");
        assert!(!after, "{kind:?}: the descriptors are blocking again");
    }
}

/// The names of a process's threads.
#[cfg(target_os = "linux")]
fn thread_names(pid: u32) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_string())
        .collect()
}

/// Waits until the process `pid` has a thread that fetches the list, or has none, as `wanted`.
#[cfg(target_os = "linux")]
async fn until_fetching(pid: u32, wanted: bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while thread_names(pid).iter().any(|name| name == "elitea-prefetch") != wanted {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The thread that fetches the list as the process starts keeps its connection and buffers
/// until the daemon has answered from the list, and then ends: a daemon that runs for days
/// holds none of it. The daemon goes on with its own session.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_thread_that_fetched_the_list_at_start_ends_after_the_first_answer() {
    let sandbox = common::in_process_sandbox().await;
    let home = tempfile::tempdir().unwrap();
    let mut daemon = tokio::process::Command::new(common::BIN)
        .arg("serve")
        .env("ELITEA_TOKENS_HOME", home.path())
        .env("ELITEA_SECRET_STORE", "file")
        .env("ELITEA_SERVER", sandbox.url())
        .env("ELITEA_TOKEN", sandbox.bootstrap_token())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the daemon starts");
    let pid = daemon.id().expect("a running daemon");
    // It waits for the list to be answered from, which takes `initialize` first.
    until_fetching(pid, true, "the thread starts with the process").await;
    let mut client =
        common::lsp::TestClient::new(daemon.stdout.take().unwrap(), daemon.stdin.take().unwrap());
    client.initialize(&[], json!({})).await;
    let listed = client.request("elitea/listTokens", json!({})).await;
    assert_eq!(listed["result"]["total"], json!(1), "{listed}");
    until_fetching(pid, false, "the thread ends once the list has been answered from").await;
    let refreshed = client
        .request("elitea/listTokens", json!({"refresh": true}))
        .await;
    assert_eq!(refreshed["result"]["total"], json!(1), "{refreshed}");
    let hits = sandbox
        .hits()
        .get(&elitea_tokens::sandbox::Route::ListTokens)
        .copied();
    assert_eq!(hits, Some(2), "the list fetched at start, then the refresh");
}
