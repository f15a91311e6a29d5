//! The real binary, started the way an editor starts it, driven by a third-party LSP client:
//! `vscode-jsonrpc` from npm (the library VS Code's language client is built on), against a
//! sandbox subprocess. `.ci/run` installs the package; elsewhere the test says why it skips.

mod common;

use common::SandboxProcess;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

#[tokio::test]
async fn vscode_jsonrpc_drives_every_operation_and_gets_a_reminder() {
    let client_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lsp-client");
    let installed = client_dir.join("node_modules/vscode-jsonrpc").is_dir();
    let node = common::which("node");
    if node.is_none() || !installed {
        let why = "node or tests/lsp-client/node_modules is missing (run `npm ci --prefix tests/lsp-client`)";
        assert!(std::env::var_os("CI").is_none(), "CI must run this test: {why}");
        eprintln!("skipped: {why}");
        return;
    }
    let sandbox = SandboxProcess::start().await;
    let workspace = sandbox.home.path().join("workspace");
    std::fs::create_dir_all(&workspace).unwrap();
    let workspace = workspace.canonicalize().unwrap();
    let output = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new(node.unwrap())
            .arg(client_dir.join("drive.mjs"))
            .env("ELITEA_TOKENS_BIN", common::BIN)
            .env("WORKSPACE", &workspace)
            .env("ELITEA_SERVER", &sandbox.server)
            .env("ELITEA_TOKEN", &sandbox.token)
            .env("ELITEA_TOKENS_HOME", sandbox.home.path())
            .env("ELITEA_SECRET_STORE", "file")
            .output(),
    )
    .await
    .expect("the client finished")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the client failed:\n{stdout}\n{stderr}");
    let summary: Value = serde_json::from_str(stdout.trim()).expect("a JSON summary");
    assert_eq!(summary["server"], "elitea-tokens");
    assert_eq!(summary["status"], "ok");
    assert_eq!(summary["createdLength"], 226);
    assert_eq!(summary["duplicate"], -32001);
    assert_eq!(summary["previewHasToken"], true);
    assert_eq!(
        summary["appliedFiles"],
        serde_json::json!([".vscode/settings.json"])
    );
    assert_eq!(summary["fileHasToken"], true);
    assert_eq!(
        summary["listed"],
        serde_json::json!([{"name": "VSCode-Node", "stored": true, "usedIn": 1}])
    );
    assert_eq!(summary["rotated"], "rotated");
    assert_eq!(
        summary["progress"],
        serde_json::json!(["planned", "created", "stored", "verified", "installed", "done"])
    );
    assert_eq!(summary["fileChanged"], true);
    assert_eq!(summary["wrongConfirm"], -32001);
    assert_eq!(summary["reminder"]["kind"], "short_lifetime");
    assert_eq!(summary["reminder"]["severity"], "warning");
    let after = summary["reminder"]["afterSeconds"].as_f64().unwrap();
    assert!(
        (40.0..=55.0).contains(&after),
        "due 48 s into a 1-minute token, came after {after} s"
    );
    assert_eq!(summary["deleted"], true);
    assert_eq!(summary["exitCode"], 0);
    let changes = summary["changes"].as_array().unwrap();
    for reason in ["applied", "created", "deleted", "rotated"] {
        assert!(
            changes.iter().any(|r| r == reason),
            "tokensChanged for {reason}: {changes:?}"
        );
    }
    let log = stderr.to_string();
    assert!(!log.contains(&sandbox.token), "no token in the daemon's log");
}
