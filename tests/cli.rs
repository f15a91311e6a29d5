//! The command line end to end: the real binary as a subprocess against a sandbox subprocess.

mod common;

use common::{SandboxProcess, jwt_shape};
use serde_json::Value;

#[tokio::test]
async fn create_prints_only_the_token_and_refuses_a_taken_name() {
    let sandbox = SandboxProcess::start().await;
    let out = sandbox
        .run(&["create", "VSCode-MacBook-Dev", "--expires", "30d"])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let token = out.stdout.trim_end_matches('\n');
    assert!(
        !token.contains('\n'),
        "stdout holds the token alone: {:?}",
        out.stdout
    );
    assert!(jwt_shape(token), "not an ELITEA token: {token:?}");
    assert_eq!(token.len(), 226);
    assert!(
        out.stderr.contains("only time the full token is shown"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(token), "the token must not reach stderr");

    // (arguments, exit code, text expected on stderr)
    let cases: &[(&[&str], i32, &str)] = &[
        (&["create", "VSCode-MacBook-Dev"], 4, "already exists"),
        (&["create", "bad name"], 2, "only letters, digits"),
        (&["create", "elitea-system"], 2, "reserved"),
        (&["create", "zero", "--expires", "0d"], 2, "at least 1 day"),
        (
            &["create", "soon", "--expires", "3 fortnights"],
            2,
            "use `never` or a whole number",
        ),
        (
            &["create", "far", "--expires", "417000w"],
            2,
            "after the year 9999",
        ),
        (&["list", "--page-size", "7"], 2, "use 5, 10, 50 or 100"),
        (&["delete"], 2, "required"),
    ];
    for (args, code, message) in cases {
        let out = sandbox.run(args).await;
        assert_eq!(out.code, *code, "{args:?}: {out:?}");
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
        assert!(
            out.stdout.is_empty(),
            "{args:?}: nothing on stdout, got {:?}",
            out.stdout
        );
    }
    let names = sandbox.names().await;
    assert_eq!(
        names.iter().filter(|n| *n == "VSCode-MacBook-Dev").count(),
        1,
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| ["zero", "soon", "far", "bad name"].contains(&n.as_str()))
    );
}

#[tokio::test]
async fn list_searches_sorts_and_pages() {
    let sandbox = SandboxProcess::start().await;
    for (name, expires) in [
        ("jetbrains-ci", "3d"),
        ("Local-Dev", "never"),
        ("VSCode-MacBook-Dev", "30d"),
        ("vscode-linux", "90d"),
        ("short-test", "45m"),
    ] {
        let out = sandbox.run(&["create", name, "--expires", expires]).await;
        assert_eq!(out.code, 0, "{out:?}");
    }
    for n in 0..18 {
        sandbox
            .create_direct(
                &format!("bulk-{n:02}"),
                serde_json::json!({"measure": "days", "value": 10 + n}),
            )
            .await;
    }

    let table = sandbox.run(&["list", "--search", "dev"]).await;
    assert_eq!(table.code, 0, "{table:?}");
    insta::assert_snapshot!("list_search_dev", common::mask_values(&table.stdout));

    let table = sandbox
        .run(&["list", "--sort", "expires", "--page-size", "5"])
        .await;
    insta::assert_snapshot!("list_by_expiry_first_page", common::mask_values(&table.stdout));

    // (arguments, names on the page in order, (page, pages, total))
    type Case<'a> = (&'a [&'a str], &'a [&'a str], (u64, u64, u64));
    let cases: &[Case] = &[
        (
            &["--search", "VSCODE"],
            &["vscode-linux", "VSCode-MacBook-Dev"],
            (1, 1, 2),
        ),
        (
            &["--sort", "expires", "--desc", "--page-size", "5"],
            &[
                "Local-Dev",
                "sandbox-bootstrap",
                "vscode-linux",
                "VSCode-MacBook-Dev",
                "bulk-17",
            ],
            (1, 5, 24),
        ),
        (
            &["--page", "3"],
            &[
                "sandbox-bootstrap",
                "short-test",
                "vscode-linux",
                "VSCode-MacBook-Dev",
            ],
            (3, 3, 24),
        ),
        (
            &["--page", "2", "--page-size", "5", "--search", "bulk"],
            &["bulk-05", "bulk-06", "bulk-07", "bulk-08", "bulk-09"],
            (2, 4, 18),
        ),
        (
            &["--page-size", "50", "--search", "nothing-like-this"],
            &[],
            (1, 1, 0),
        ),
        (&["--page", "9"], &[], (9, 3, 24)),
    ];
    for (args, names, (page, pages, total)) in cases {
        let mut full = vec!["--json", "list"];
        full.extend_from_slice(args);
        let out = sandbox.run(&full).await;
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        let json: Value = serde_json::from_str(&out.stdout).expect("one JSON document");
        let got: Vec<&str> = json["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(got, *names, "{args:?}");
        let counts = (
            json["page"].as_u64(),
            json["pages"].as_u64(),
            json["total"].as_u64(),
        );
        assert_eq!(counts, (Some(*page), Some(*pages), Some(*total)), "{args:?}");
    }

    let out = sandbox.run(&["--json", "list", "--search", "jetbrains"]).await;
    let json: Value = serde_json::from_str(&out.stdout).unwrap();
    let row = &json["tokens"][0];
    assert_eq!(row["status"], "warning");
    assert_eq!(row["label"], "in 3 days");
    assert!(row["value"].as_str().unwrap().starts_with("...") && row["value"].as_str().unwrap().len() == 7);
    assert!(row["uuid"].as_str().unwrap().len() == 36);
    assert_eq!(json["server"], sandbox.server.as_str());
}

#[tokio::test]
async fn delete_asks_for_the_name_and_refuses_ambiguity() {
    let sandbox = SandboxProcess::start().await;
    assert_eq!(sandbox.run(&["create", "to-delete"]).await.code, 0);
    let cases: &[(&[&str], i32, &str)] = &[
        (&["delete", "to-delete"], 2, "pass --confirm to-delete"),
        (
            &["delete", "to-delete", "--confirm", "to-delet"],
            2,
            "does not match",
        ),
        (
            &["delete", "missing", "--confirm", "missing"],
            4,
            "no token named `missing`",
        ),
    ];
    for (args, code, message) in cases {
        let out = sandbox.run(args).await;
        assert_eq!(out.code, *code, "{args:?}: {out:?}");
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
    }
    assert!(
        sandbox.names().await.contains(&"to-delete".to_string()),
        "refused deletes delete nothing"
    );

    let out = sandbox
        .run(&["--json", "delete", "to-delete", "--confirm", "to-delete"])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let json: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["deleted"]["name"], "to-delete");
    assert!(!sandbox.names().await.contains(&"to-delete".to_string()));

    // Two tokens with one name, made elsewhere (the backend allows it).
    let first = sandbox.create_direct("twin", Value::Null).await;
    let second = sandbox.create_direct("twin", Value::Null).await;
    let out = sandbox.run(&["delete", "twin", "--confirm", "twin"]).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("2 tokens are named `twin`"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&first) && out.stderr.contains(&second),
        "lists both uuids: {}",
        out.stderr
    );
    let out = sandbox
        .run(&["--json", "delete", "twin", "--confirm", "twin"])
        .await;
    let json: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["error"]["kind"], "ambiguous_name");
    assert_eq!(json["error"]["candidates"].as_array().unwrap().len(), 2);

    let out = sandbox
        .run(&["delete", "--uuid", &first, "--confirm", "twin"])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(sandbox.names().await.iter().filter(|n| *n == "twin").count(), 1);
    let out = sandbox
        .run(&[
            "delete",
            "other-name",
            "--uuid",
            &second,
            "--confirm",
            "other-name",
        ])
        .await;
    assert_eq!(
        out.code, 2,
        "a name that contradicts the uuid is refused: {out:?}"
    );
}

#[tokio::test]
async fn delete_on_a_terminal_asks_to_type_the_name() {
    let Some(script) = common::which("script") else {
        eprintln!("skipped: `script` (util-linux) is not installed, so no terminal can be simulated");
        return;
    };
    let sandbox = SandboxProcess::start().await;
    assert_eq!(sandbox.run(&["create", "typed"]).await.code, 0);
    // A wrong answer keeps the token; the right one deletes it.
    for (answer, code, kept) in [("nope\n", 1, true), ("typed\n", 0, false)] {
        let out = sandbox
            .run_in_terminal(&script, &["delete", "typed"], answer)
            .await;
        assert_eq!(out.code, code, "{out:?}");
        assert!(out.stdout.contains("Type its name to confirm"), "{out:?}");
        assert_eq!(
            sandbox.names().await.contains(&"typed".to_string()),
            kept,
            "{out:?}"
        );
    }
}

#[tokio::test]
async fn status_reports_the_server_credential_and_counts() {
    let sandbox = SandboxProcess::start().await;
    sandbox.run(&["create", "soon", "--expires", "2d"]).await;
    sandbox
        .create_direct("old", serde_json::json!({"measure": "minutes", "value": -5}))
        .await;
    let out = sandbox.run(&["--json", "status"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let json: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["credential"], "ok");
    assert_eq!(
        json["tokens"],
        serde_json::json!({"total": 3, "ok": 0, "warning": 1, "expired": 1, "never": 1})
    );
    let text = sandbox.run(&["status"]).await;
    assert!(text.stdout.contains("Credential:   works"), "{text:?}");
    assert!(
        text.stdout
            .contains("3 (0 ok, 1 expiring within 7 days, 1 expired, 1 never expiring)"),
        "{text:?}"
    );

    let rejected = sandbox
        .run_with(&["status"], &[("ELITEA_TOKEN", "not-a-token")])
        .await;
    assert_eq!(rejected.code, 3, "{rejected:?}");
    assert!(rejected.stdout.contains("credential_rejected"), "{rejected:?}");
    let list = sandbox
        .run_with(&["list"], &[("ELITEA_TOKEN", "not-a-token")])
        .await;
    assert_eq!(list.code, 3, "{list:?}");
    let missing = sandbox.run_with(&["list"], &[("ELITEA_TOKEN", "")]).await;
    assert_eq!(missing.code, 3, "{missing:?}");
    assert!(missing.stderr.contains("set ELITEA_TOKEN"), "{missing:?}");

    let closed = common::closed_port_url();
    let unreachable = sandbox
        .run_with(&["status"], &[("ELITEA_SERVER", closed.as_str())])
        .await;
    assert_eq!(unreachable.code, 5, "{unreachable:?}");
    let insecure = sandbox
        .run_with(&["list"], &[("ELITEA_SERVER", "http://elitea.example")])
        .await;
    assert_eq!(insecure.code, 2, "{insecure:?}");
    assert!(insecure.stderr.contains("--insecure-http"), "{insecure:?}");
}

#[tokio::test]
async fn the_embedded_sandbox_keeps_its_tokens_between_commands() {
    let home = tempfile::tempdir().unwrap();
    let home_dir = home.path().to_str().unwrap().to_string();
    let env = [
        ("ELITEA_TOKENS_HOME", home_dir.as_str()),
        ("ELITEA_SERVER", ""),
        ("ELITEA_TOKEN", ""),
    ];
    let run = |args: &'static [&'static str]| common::run_binary(args, &env);
    let created = run(&["--sandbox", "create", "first-token", "--expires", "2w"]).await;
    assert_eq!(created.code, 0, "{created:?}");
    assert!(jwt_shape(created.stdout.trim()));
    let listed = common::run_binary(
        &["--json", "list"],
        &[
            ("ELITEA_TOKENS_HOME", home_dir.as_str()),
            ("ELITEA_SERVER", "sandbox"),
            ("ELITEA_TOKEN", ""),
        ],
    )
    .await;
    assert_eq!(listed.code, 0, "{listed:?}");
    let json: Value = serde_json::from_str(&listed.stdout).unwrap();
    let names: Vec<&str> = json["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["first-token", "sandbox-bootstrap"]);
    assert!(json["server"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    let status = run(&["status"]).await;
    assert_eq!(
        status.code, 2,
        "without --sandbox no server is configured: {status:?}"
    );
    assert!(status.stderr.contains("no server given"), "{status:?}");
    assert!(home.path().join("data").join("sandbox.sqlite3").exists());
}

#[tokio::test]
async fn elitea_log_chooses_what_is_logged_and_warns_when_it_cannot_be_read() {
    let sandbox = SandboxProcess::start().await;
    // (ELITEA_LOG, a line expected on stderr, a line that must not be there)
    let cases = [
        (
            "elitea_tokens=debug",
            Some("request"),
            Some("warning: ignoring ELITEA_LOG"),
        ),
        ("elitea_tokens::api=debug", Some("request"), None),
        ("elitea_tokens::secrets=debug,warn", None, Some("request")),
        ("warn", None, Some("request")),
        (
            "elitea_tokens=loud",
            Some("warning: ignoring ELITEA_LOG"),
            Some("request"),
        ),
    ];
    for (directives, expected, absent) in cases {
        let out = sandbox.run_with(&["list"], &[("ELITEA_LOG", directives)]).await;
        assert_eq!(out.code, 0, "{directives}: {out:?}");
        if let Some(expected) = expected {
            assert!(out.stderr.contains(expected), "{directives}: {}", out.stderr);
        }
        if let Some(absent) = absent {
            assert!(!out.stderr.contains(absent), "{directives}: {}", out.stderr);
        }
        assert!(
            !out.stderr.contains(&sandbox.token),
            "{directives}: the token reached stderr"
        );
    }
}

#[tokio::test]
async fn serve_takes_its_options_with_or_without_the_parser() {
    let home = tempfile::tempdir().unwrap();
    let home_dir = home.path().to_str().unwrap();
    let log = home.path().join("daemon.log");
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{}}}"#;
    let initialize = format!("Content-Length: {}\r\n\r\n{body}", body.len());
    // (arguments, whether it reads stdin, exit code, expected on stdout, expected on stderr).
    // Editors pass nothing or `--stdio`, which skip the command-line parser; anything else goes
    // through it. A command line that is refused, or `--help`, exits without reading stdin, so
    // it is given none (writing to it could meet a closed pipe).
    let cases: [(&[&str], bool, i32, &str, &str); 5] = [
        (&["serve"], true, 0, r#""name":"elitea-tokens""#, ""),
        (&["serve", "--stdio"], true, 0, r#""name":"elitea-tokens""#, ""),
        (
            &["serve", "--log-file", log.to_str().unwrap(), "-v"],
            true,
            0,
            r#""name":"elitea-tokens""#,
            "",
        ),
        (
            &["serve", "--stdio", "--port", "1"],
            false,
            2,
            "",
            "unexpected argument '--port'",
        ),
        (&["serve", "--help"], false, 0, "--log-file", ""),
    ];
    for (args, reads_stdin, code, stdout, stderr) in cases {
        let input = if reads_stdin { initialize.as_str() } else { "" };
        let out = common::run_binary_with_stdin(args, &[("ELITEA_TOKENS_HOME", home_dir)], input).await;
        assert_eq!(out.code, code, "{args:?}: {out:?}");
        assert!(out.stdout.contains(stdout), "{args:?}: {out:?}");
        assert!(out.stderr.contains(stderr), "{args:?}: {out:?}");
    }
    assert!(log.exists(), "--log-file was not taken");
}

/// `serve` starts fetching the list before its log subscriber is installed; the session that
/// fetch opens reads the credential from the plain file, and the warning that the file store
/// gives once per process must still reach stderr: exactly once, whichever of the daemon's
/// threads opens the store first, and without the credential in it.
#[tokio::test]
async fn serve_warns_once_that_its_credential_sits_in_a_plain_file() {
    use tokio::process::Command;
    let sandbox = SandboxProcess::start().await;
    let home = tempfile::tempdir().unwrap();
    let home_dir = home.path().to_str().unwrap();
    let env = [("ELITEA_TOKENS_HOME", home_dir), ("ELITEA_SECRET_STORE", "file")];
    let login = common::run_binary_with_stdin(
        &["login", "--server", &sandbox.server],
        &env,
        &format!("{}\n", sandbox.token),
    )
    .await;
    assert_eq!(login.code, 0, "{login:?}");

    let mut child = Command::new(common::BIN)
        .arg("serve")
        .envs(env)
        .env_remove("ELITEA_SERVER")
        .env_remove("ELITEA_TOKEN")
        .env_remove("ELITEA_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the daemon starts");
    let mut client = common::lsp::TestClient::new(child.stdout.take().unwrap(), child.stdin.take().unwrap());
    client.initialize(&[home.path()], serde_json::json!({})).await;
    let listed = client.request("elitea/listTokens", serde_json::json!({})).await;
    assert_eq!(listed["result"]["total"], 1, "{listed}");
    client.request("shutdown", Value::Null).await;
    client.notify("exit", Value::Null).await;
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the daemon exits after `exit`")
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warning = "secrets are stored in a plain file, protected only by file permissions";
    assert_eq!(stderr.matches(warning).count(), 1, "{stderr}");
    assert!(!stderr.contains(&sandbox.token), "the credential reached stderr");
}

/// `elitea-tokens sandbox` stops gracefully on Ctrl-C and on SIGTERM: it exits with success
/// rather than dying by the signal, and a sandbox kept in a file finds its tokens again at the
/// next start.
#[cfg(unix)]
#[tokio::test]
async fn the_sandbox_stops_cleanly_on_ctrl_c_and_sigterm() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sandbox.db");
    let args = ["sandbox", "--db", db.to_str().unwrap(), "--addr", "127.0.0.1:0"];
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let list = |server: &str, token: &str| {
        http.get(format!("{server}/api/v2/auth/token/"))
            .bearer_auth(token)
            .send()
    };
    for (round, signal) in ["INT", "TERM"].into_iter().enumerate() {
        let (mut child, server, token) = common::start_sandbox(&args, dir.path()).await;
        let listed: Vec<Value> = list(&server, &token).await.unwrap().json().await.unwrap();
        // One token more each round: the one created in the round before is still there.
        assert_eq!(listed.len(), round + 1, "before SIG{signal}: {listed:?}");
        http.post(format!("{server}/api/v2/auth/token/"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"name": format!("kept-{round}"), "expires": {"measure": "days", "value": 1}}))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
        let pid = child.id().expect("a running sandbox").to_string();
        let sent = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
            .await
            .unwrap_or_else(|_| panic!("the sandbox did not stop on SIG{signal}"))
            .unwrap();
        assert!(status.success(), "SIG{signal}: {status:?}");
    }
}
