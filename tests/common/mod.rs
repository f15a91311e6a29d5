//! Helpers shared by the end-to-end tests: the sandbox and the CLI as real subprocesses.
#![allow(dead_code)]

pub mod logs;
pub mod lsp;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_elitea-tokens");

/// What a finished command printed, and how it ended.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Output {
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// An in-process sandbox without the auth cache, so a deleted or expired credential fails at once.
pub async fn in_process_sandbox() -> elitea_tokens::sandbox::Sandbox {
    elitea_tokens::sandbox::Sandbox::start(elitea_tokens::sandbox::SandboxOptions {
        auth_cache: Duration::ZERO,
        ..elitea_tokens::sandbox::SandboxOptions::default()
    })
    .await
    .expect("the sandbox starts")
}

/// `elitea-tokens` with `args` (a `sandbox` command line) as a subprocess, killed on drop,
/// once it has printed its server and bootstrap token, which are returned with it.
pub async fn start_sandbox(args: &[&str], home: &Path) -> (Child, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("ELITEA_TOKENS_HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the sandbox");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut server = String::new();
    let mut token = String::new();
    let read = async {
        while server.is_empty() || token.is_empty() {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("the sandbox printed its two lines");
            if let Some(url) = line.strip_prefix("ELITEA_SERVER=") {
                server = url.to_string();
            } else if let Some(value) = line.strip_prefix("ELITEA_TOKEN=") {
                token = value.to_string();
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("sandbox start-up");
    (child, server, token)
}

/// `elitea-tokens sandbox --db :memory:` running as a subprocess, killed on drop.
pub struct SandboxProcess {
    child: Child,
    pub server: String,
    pub token: String,
    pub home: tempfile::TempDir,
    http: reqwest::Client,
}

impl SandboxProcess {
    pub async fn start() -> SandboxProcess {
        Self::start_with(&[]).await
    }

    pub async fn start_with(extra: &[&str]) -> SandboxProcess {
        let home = tempfile::tempdir().unwrap();
        let mut args = vec!["sandbox", "--db", ":memory:", "--auth-cache", "0s"];
        args.extend_from_slice(extra);
        let (child, server, token) = start_sandbox(&args, home.path()).await;
        SandboxProcess {
            child,
            server,
            token,
            home,
            http: {
                let _ = rustls::crypto::ring::default_provider().install_default();
                reqwest::Client::new()
            },
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ELITEA_SERVER", self.server.clone()),
            ("ELITEA_TOKEN", self.token.clone()),
            ("ELITEA_TOKENS_HOME", self.home.path().display().to_string()),
        ]
    }

    /// Runs the CLI against this sandbox.
    pub async fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[]).await
    }

    /// Runs the CLI with some environment variables replaced.
    pub async fn run_with(&self, args: &[&str], overrides: &[(&str, &str)]) -> Output {
        let mut env: Vec<(String, String)> =
            self.env().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        for (key, value) in overrides {
            env.retain(|(k, _)| k != key);
            env.push((key.to_string(), value.to_string()));
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_binary(args, &env).await
    }

    /// Runs the CLI inside a pseudo-terminal (util-linux `script`), typing `input`.
    pub async fn run_in_terminal(&self, script: &Path, args: &[&str], input: &str) -> Output {
        let command_line = std::iter::once(BIN.to_string())
            .chain(args.iter().map(|a| shell_quote(a)))
            .collect::<Vec<_>>()
            .join(" ");
        let mut command = Command::new(script);
        command.args(["-q", "-e", "-c", &command_line, "/dev/null"]);
        for (key, value) in self.env() {
            command.env(key, value);
        }
        command.env("NO_COLOR", "1");
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use tokio::io::AsyncWriteExt;
            let mut stdin = child.stdin.take().unwrap();
            // Let the prompt appear before typing, as a person would.
            tokio::time::sleep(Duration::from_millis(300)).await;
            stdin.write_all(input.as_bytes()).await.unwrap();
        }
        let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("the command finished")
            .unwrap();
        Output::from(out)
    }

    /// Creates a token straight through the API (as another client would); returns its uuid.
    pub async fn create_direct(&self, name: &str, expires: Value) -> String {
        let answer: Value = self
            .http
            .post(format!("{}/api/v2/auth/token/", self.server))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({"name": name, "expires": expires}))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["uuid"].as_str().unwrap().to_string()
    }

    /// The names of every token, straight from the API.
    pub async fn names(&self) -> Vec<String> {
        let list: Vec<Value> = self
            .http
            .get(format!("{}/api/v2/auth/token/", self.server))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list.iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// Sets the sandbox's fault rules through its control API.
    pub async fn set_faults(&self, rules: Value) {
        let status = self
            .http
            .put(format!("{}/_sandbox/faults", self.server))
            .json(&rules)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{status}");
    }
}

/// Runs the binary with exactly these variables on top of a clean environment.
pub async fn run_binary(args: &[&str], env: &[(&str, &str)]) -> Output {
    run_binary_with_stdin(args, env, "").await
}

/// Runs the binary with these variables and `input` on stdin (closed after it).
pub async fn run_binary_with_stdin(args: &[&str], env: &[(&str, &str)], input: &str) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("ELITEA_SERVER")
        .env_remove("ELITEA_TOKEN")
        .env_remove("ELITEA_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the command finished")
        .unwrap();
    Output::from(out)
}

/// Whether `token` has the shape the VS Code extension accepts.
pub fn jwt_shape(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    parts.len() == 3
        && parts.iter().all(|p| ok(p))
        && parts[2].len() == 86
        && token.starts_with("eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.")
}

/// Replaces the random `...abcd` values so tables can be snapshotted.
pub fn mask_values(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            line.split(' ')
                .map(|word| {
                    if word.len() == 7 && word.starts_with("...") {
                        "...XXXX"
                    } else {
                        word
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A loopback URL where nothing listens.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}
