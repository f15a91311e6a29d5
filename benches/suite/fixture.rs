//! What the benchmarks run against: the release binaries, a sandbox process seeded with tokens,
//! and an `ELITEA_TOKENS_HOME` logged in to it.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// `elitea-tokens` as users get it (`cargo build --release`), built once per run. Not cargo's
/// `CARGO_BIN_EXE_elitea-tokens`: a bench target builds the binary with the dev-dependencies'
/// features (tokio's test-util, regex with its Unicode tables: 40 % more relocations at start).
/// `ELITEA_BENCH_BIN=PATH` measures another build instead (an earlier commit's, to compare
/// before and after on the same machine).
pub fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("ELITEA_BENCH_BIN") {
            return PathBuf::from(path);
        }
        let map = [("ELITEA_TOKENS_LINK_MAP", link_map_path())];
        cargo_build(&["--release", "--bin", "elitea-tokens"], &map)
            .into_iter()
            .next()
            .expect("cargo names the built binary")
    })
}

/// The linker's map of the binary the suite built (`build.rs` writes it when asked): the
/// function at each address of the stripped binary. None for a binary from `ELITEA_BENCH_BIN`.
pub fn link_map() -> Option<PathBuf> {
    bin();
    Some(link_map_path()).filter(|_| std::env::var_os("ELITEA_BENCH_BIN").is_none())
}

fn link_map_path() -> PathBuf {
    target_dir().join("release/elitea-tokens.map")
}

/// The start-up references of `benches/reference` (see its `Cargo.toml`): the do-nothing
/// server, and the same with elitea-tokens linked in.
pub fn reference_servers() -> (PathBuf, PathBuf) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/reference/Cargo.toml");
    let target = target_dir();
    let built = cargo_build(
        &[
            "--release".as_ref(),
            "--bins".as_ref(),
            "--manifest-path".as_ref(),
            manifest.as_os_str(),
            "--target-dir".as_ref(),
            target.as_os_str(),
        ],
        &[],
    );
    let find = |name: &str| {
        built
            .iter()
            .find(|path| path.file_name().is_some_and(|f| f == name))
            .cloned()
            .unwrap_or_else(|| panic!("cargo names the built {name}"))
    };
    (find("nothing-lsp"), find("nothing-lsp-linked"))
}

/// The version of `typos-lsp` the suite installs when none is on the machine.
const TYPOS_LSP: &str = "0.1.57";

/// A tokio runtime for the suite's own HTTP calls (seeding, the plain-GET reference).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

fn target_dir() -> PathBuf {
    // The bench binary lives in target/<profile>/deps.
    let exe = std::env::current_exe().expect("the suite's own path");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs `cargo build --locked` with `args` and `env`; returns the executables it names.
fn cargo_build<S: AsRef<std::ffi::OsStr>>(args: &[S], env: &[(&str, PathBuf)]) -> Vec<PathBuf> {
    let output = Command::new(cargo())
        .args(["build", "--quiet", "--locked", "--message-format", "json"])
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "cargo build failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .collect()
}

/// `typos-lsp` from PATH, or installed from crates.io into `target/bench-tools`.
pub fn typos_lsp() -> Option<PathBuf> {
    let root = target_dir().join("bench-tools");
    let installed = root.join("bin/typos-lsp");
    if installed.exists() {
        return Some(installed);
    }
    if let Ok(path) = which("typos-lsp") {
        return Some(path);
    }
    eprintln!("installing typos-lsp {TYPOS_LSP} into {} (once)", root.display());
    let status = Command::new(cargo())
        .args([
            "install",
            "--quiet",
            "--locked",
            "typos-lsp",
            "--version",
            TYPOS_LSP,
            "--root",
        ])
        .arg(&root)
        .status();
    match status {
        Ok(s) if s.success() && installed.exists() => Some(installed),
        _ => {
            eprintln!("typos-lsp could not be installed; its reference column stays empty");
            None
        }
    }
}

pub fn which(program: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .ok_or(())
}

/// An `elitea-tokens sandbox` process on a free loopback port, with an in-memory database.
pub struct SandboxProcess {
    child: Child,
    pub url: String,
    pub token: String,
}

impl SandboxProcess {
    pub fn start() -> SandboxProcess {
        let mut child = Command::new(bin())
            .args(["sandbox", "--db", ":memory:", "--addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the sandbox");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let (mut url, mut token) = (String::new(), String::new());
        while url.is_empty() || token.is_empty() {
            let line = lines
                .next()
                .and_then(Result::ok)
                .expect("the sandbox prints its URL and token");
            if let Some(v) = line.strip_prefix("ELITEA_SERVER=") {
                url = v.to_string();
            } else if let Some(v) = line.strip_prefix("ELITEA_TOKEN=") {
                token = v.to_string();
            }
        }
        SandboxProcess { child, url, token }
    }

    pub fn list_url(&self) -> String {
        format!("{}/api/v2/auth/token/", self.url)
    }

    /// Creates `count` tokens, lifetimes (seconds, `None` never) taken in turn.
    pub fn seed(&self, count: usize, prefix: &str, expires_in: &[Option<i64>]) {
        if count == 0 {
            return;
        }
        let body = json!({"count": count, "prefix": prefix, "expires_in": expires_in});
        let answer = self.post(&format!("{}/_sandbox/seed", self.url), &body);
        assert_eq!(answer["created"], count, "seeding: {answer}");
    }

    /// Creates one token through the ELITEA API; returns the token object (with its value).
    pub fn create(&self, name: &str, seconds: i64) -> Value {
        let body = json!({"name": name, "expires": {"measure": "seconds", "value": seconds}});
        self.post(&self.list_url(), &body)
    }

    /// The whole token list, as the server sends it.
    pub fn list(&self) -> Vec<Value> {
        let url = self.list_url();
        runtime().block_on(async {
            let answer: Value = reqwest::Client::new()
                .get(url)
                .bearer_auth(&self.token)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .expect("list")
                .json()
                .await
                .expect("a JSON list");
            answer.as_array().cloned().expect("a list")
        })
    }

    fn post(&self, url: &str, body: &Value) -> Value {
        runtime().block_on(async {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(&self.token)
                .json(body)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .unwrap_or_else(|e| panic!("POST {url}: {e}"))
                .json()
                .await
                .expect("a JSON answer")
        })
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A command for the binary with `ELITEA_TOKENS_HOME` set and the environment cleared of
/// anything that would choose another server.
pub fn command(home: &Path) -> Command {
    with_home(Command::new(bin()), home)
}

/// The binary run by `program` (a profiler) with `args` before it, in [`command`]'s environment.
pub fn command_under(home: &Path, program: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(program);
    command.args(args).arg(bin());
    with_home(command, home)
}

fn with_home(mut command: Command, home: &Path) -> Command {
    command
        .env("ELITEA_TOKENS_HOME", home)
        .env_remove("ELITEA_SERVER")
        .env_remove("ELITEA_TOKEN")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    command
}

/// `elitea-tokens login` into `home` with the sandbox's bootstrap token; returns the secret
/// store that took the credential.
pub fn login(home: &Path, sandbox: &SandboxProcess) -> String {
    let mut child = command(home)
        .args(["--json", "login", "--server", &sandbox.url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run login");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{}\n", sandbox.token).as_bytes())
        .expect("write the token");
    let output = child.wait_with_output().expect("login finishes");
    assert!(
        output.status.success(),
        "login failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).expect("login --json");
    answer["secret_store"].as_str().unwrap_or("unknown").to_string()
}

/// A workspace folder: a git repository with an empty `.vscode`.
pub fn workspace(dir: &Path) -> PathBuf {
    let ws = dir.join("workspace");
    std::fs::create_dir_all(ws.join(".vscode")).expect("workspace");
    let _ = Command::new("git")
        .args(["init", "--quiet"])
        .current_dir(&ws)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    ws
}
