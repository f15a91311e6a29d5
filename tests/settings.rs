//! Login, preview, apply and delete through the real binary against a sandbox subprocess, with
//! real files in a real git repository and the owner-only file secret store.

mod common;

use common::SandboxProcess;
use elitea_tokens::ide::{jetbrains, vscode};
use std::path::Path;
use std::process::Command;

const SETTINGS: &str = r#"// Team settings
{
    "editor.formatOnSave": true, // keep
    /* Python */
    "[python]": {
        "editor.tabSize": 4,
    },
    "eliteacode.debug": true,
}
"#;

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.invalid"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        status.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

/// A git repository with a settings file of the user's own.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    std::fs::create_dir(dir.path().join(".vscode")).unwrap();
    std::fs::write(dir.path().join(".vscode/settings.json"), SETTINGS).unwrap();
    dir
}

/// Runs the CLI against the sandbox with the owner-only file store (CI has no keyring).
async fn run(sandbox: &SandboxProcess, args: &[&str]) -> common::Output {
    sandbox.run_with(args, &[("ELITEA_SECRET_STORE", "file")]).await
}

#[tokio::test]
async fn apply_writes_settings_that_authenticate_and_keeps_everything_else() {
    let sandbox = SandboxProcess::start().await;
    let created = run(&sandbox, &["create", "VSCode-Dev", "--expires", "30d"]).await;
    assert_eq!(created.code, 0, "{created:?}");
    let token = created.stdout.trim().to_string();
    assert!(created.stderr.contains("kept in the file store"), "{created:?}");

    let dir = workspace();
    let ws = dir.path().to_str().unwrap();
    let out = run(&sandbox, &["apply", "VSCode-Dev", "--workspace", ws]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("updated") && out.stdout.contains("created"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("no .gitignore covers it"),
        "warns that git would pick the token up: {out:?}"
    );
    assert!(!out.stderr.contains(&token) && !out.stdout.contains(&token));

    let settings_path = dir.path().join(".vscode/settings.json");
    let settings = std::fs::read_to_string(&settings_path).unwrap();
    for comment in ["// Team settings", "// keep", "/* Python */"] {
        assert!(settings.contains(comment), "{comment} survives: {settings}");
    }
    let values = vscode::read_keys(
        &settings,
        &[
            "eliteacode.LLMAuthToken",
            "alitacode.authToken",
            "eliteacode.LLMServerUrl",
            "eliteacode.projectId",
            "eliteacode.LLMModelName",
            "eliteacode.integrationUid",
            "eliteacode.verifySsl",
            "eliteacode.debug",
            "editor.formatOnSave",
        ],
    )
    .unwrap();
    let get = |key: &str| {
        values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("eliteacode.LLMAuthToken"), token.as_str());
    assert_eq!(get("alitacode.authToken"), token.as_str());
    assert_eq!(get("eliteacode.LLMServerUrl"), sandbox.server.as_str());
    assert_eq!(get("eliteacode.projectId"), 27);
    assert_eq!(get("eliteacode.LLMModelName"), "gpt-5-mini");
    assert_eq!(get("eliteacode.integrationUid"), "27_gpt-5-mini");
    assert_eq!(get("eliteacode.verifySsl"), true);
    assert_eq!(get("eliteacode.debug"), true, "the user's own choice is kept");
    assert_eq!(get("editor.formatOnSave"), true);
    insta::assert_snapshot!(
        "applied_settings",
        settings
            .replace(&token, "<token>")
            .replace(&sandbox.server, "<server>")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&settings_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a file holding a token is owner-only");
    }

    // The token in the file authenticates.
    let works = reqwest::Client::new()
        .get(format!("{}/api/v2/auth/token/", sandbox.server))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(works.status(), 200);

    for flavor in [
        jetbrains::JetBrainsFlavor::Current,
        jetbrains::JetBrainsFlavor::Legacy,
    ] {
        let xml = std::fs::read_to_string(dir.path().join(".idea").join(flavor.file_name())).unwrap();
        assert!(!xml.contains(&token), "no token in JetBrains files");
        let options = jetbrains::read(&xml, flavor).unwrap().unwrap();
        assert_eq!(options["llmServerUrl"], sandbox.server);
        assert_eq!(options["projectId"], "27");
        assert_eq!(options["provider"], flavor.provider());
    }

    // --gitignore adds the entry; git then ignores the file and nothing is said.
    let out = run(
        &sandbox,
        &[
            "apply",
            "VSCode-Dev",
            "--workspace",
            ws,
            "--ide",
            "vscode",
            "--gitignore",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains(".gitignore"), "{out:?}");
    assert!(!out.stderr.contains("warning"), "{out:?}");
    let gitignore = std::fs::read_to_string(dir.path().join(".gitignore")).unwrap();
    assert!(
        gitignore.lines().any(|l| l == "/.vscode/settings.json"),
        "{gitignore}"
    );
    let again = std::fs::read_to_string(&settings_path).unwrap();
    assert_eq!(again, settings, "applying twice changes nothing");

    // A tracked settings file is called out.
    git(dir.path(), &["add", "-f", ".vscode/settings.json"]);
    git(dir.path(), &["commit", "-q", "-m", "settings"]);
    let out = run(
        &sandbox,
        &["apply", "VSCode-Dev", "--workspace", ws, "--ide", "vscode"],
    )
    .await;
    assert!(out.stderr.contains("is tracked by git"), "{out:?}");

    // Deleting the token warns that the workspace still holds it.
    let out = run(&sandbox, &["delete", "VSCode-Dev", "--confirm", "VSCode-Dev"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("still holds this token"), "{out:?}");
}

#[tokio::test]
async fn preview_shows_what_apply_writes_and_refusals_are_clear() {
    let sandbox = SandboxProcess::start().await;
    let created = run(&sandbox, &["create", "preview-me"]).await;
    let token = created.stdout.trim().to_string();

    let preview = run(&sandbox, &["preview", "preview-me", "--ide", "vscode"]).await;
    assert_eq!(preview.code, 0, "{preview:?}");
    let empty = tempfile::tempdir().unwrap();
    let out = run(
        &sandbox,
        &[
            "apply",
            "preview-me",
            "--ide",
            "vscode",
            "--workspace",
            empty.path().to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let written = std::fs::read_to_string(empty.path().join(".vscode/settings.json")).unwrap();
    assert_eq!(preview.stdout, written, "preview is exactly what apply writes");
    assert!(written.contains(&token));

    let jetbrains = run(
        &sandbox,
        &[
            "preview",
            "preview-me",
            "--ide",
            "jetbrains",
            "--flavor",
            "current",
        ],
    )
    .await;
    assert_eq!(jetbrains.code, 0, "{jetbrains:?}");
    insta::assert_snapshot!(
        "preview_jetbrains_current",
        jetbrains.stdout.replace(&sandbox.server, "<server>")
    );

    // A token made elsewhere: its value is unknown here.
    sandbox
        .create_direct("made-elsewhere", serde_json::Value::Null)
        .await;
    let preview = run(&sandbox, &["preview", "made-elsewhere", "--ide", "vscode"]).await;
    assert_eq!(preview.code, 0, "{preview:?}");
    assert!(
        preview
            .stdout
            .contains("<full token value is not stored on this machine>"),
        "{preview:?}"
    );
    assert!(
        preview
            .stderr
            .contains("known only to the machine that created it"),
        "{preview:?}"
    );

    let dir = workspace();
    let ws = dir.path().to_str().unwrap();
    // (arguments, exit code, message)
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["apply", "made-elsewhere", "--workspace", ws, "--ide", "vscode"],
            4,
            "rotate made-elsewhere",
        ),
        (
            vec!["apply", "preview-me", "--workspace", ws, "--project", "1"],
            2,
            "Public project",
        ),
        (
            vec!["apply", "preview-me", "--workspace", ws, "--model", "gpt-9"],
            2,
            "no model named `gpt-9`",
        ),
        (
            vec!["apply", "preview-me", "--workspace", "/nonexistent/dir"],
            2,
            "cannot be used",
        ),
        (
            vec!["apply", "missing", "--workspace", ws],
            4,
            "no token named `missing`",
        ),
    ];
    for (args, code, message) in cases {
        let out = run(&sandbox, &args).await;
        assert_eq!(out.code, code, "{args:?}: {out:?}");
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".vscode/settings.json")).unwrap(),
        SETTINGS,
        "refused applies write nothing"
    );

    std::fs::write(
        dir.path().join(".vscode/settings.json"),
        "{\n  \"a\": 1\n  \"b\": 2\n}\n",
    )
    .unwrap();
    let out = run(&sandbox, &["apply", "preview-me", "--workspace", ws]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("line 2"), "says where it is broken: {out:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".vscode/settings.json")).unwrap(),
        "{\n  \"a\": 1\n  \"b\": 2\n}\n",
        "a broken file is never overwritten"
    );
    assert!(
        !dir.path().join(".idea").exists(),
        "nothing is written when one file is broken"
    );
}

#[tokio::test]
async fn login_keeps_the_credential_and_logout_forgets_it() {
    let sandbox = SandboxProcess::start().await;
    let home = sandbox.home.path().to_str().unwrap().to_string();
    let base = [
        ("ELITEA_TOKENS_HOME", home.as_str()),
        ("ELITEA_SECRET_STORE", "file"),
    ];
    let server = sandbox.server.as_str();
    let with_server = |extra: &[(&'static str, &'static str)]| {
        let mut env: Vec<(&str, &str)> = base.to_vec();
        env.push(("ELITEA_SERVER", server));
        env.extend_from_slice(extra);
        env
    };
    let out = common::run_binary_with_stdin(&["login"], &with_server(&[]), "not-a-token\n").await;
    assert_eq!(out.code, 3, "a bad credential is refused: {out:?}");

    let login = format!("{}\n", sandbox.token);
    let out = common::run_binary_with_stdin(&["login"], &with_server(&[]), &login).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("Logged in to") && out.stdout.contains("file store"),
        "{out:?}"
    );
    assert!(!out.stdout.contains(&sandbox.token) && !out.stderr.contains(&sandbox.token));
    let secrets = std::fs::read_to_string(sandbox.home.path().join("data/secrets/secrets.json")).unwrap();
    assert!(
        secrets.contains(&sandbox.token),
        "the credential is kept in the store"
    );
    let config = std::fs::read_to_string(sandbox.home.path().join("config/config.toml")).unwrap();
    assert!(
        config.contains(&sandbox.server) && !config.contains(&sandbox.token),
        "{config}"
    );

    // No server, no token given: the login is used.
    let out = common::run_binary(&["--json", "status"], &base).await;
    assert_eq!(out.code, 0, "{out:?}");
    let status: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(status["credential"], "ok");
    assert_eq!(status["secret_store"], "file");
    assert_eq!(status["secret_store_is_fallback"], true);

    let out = common::run_binary(&["logout"], &base).await;
    assert_eq!(out.code, 0, "{out:?}");
    let out = common::run_binary(&["list"], &with_server(&[])).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("elitea-tokens login"), "{out:?}");
}

#[tokio::test]
async fn rotate_puts_the_successor_in_the_files_and_the_next_command_finishes_an_interrupted_one() {
    use elitea_tokens::api::{Client, ClientOptions, ServerUrl};
    use elitea_tokens::clock::SystemClock;
    use elitea_tokens::config::Config;
    use elitea_tokens::domain::Secret;
    use elitea_tokens::paths::Paths;
    use elitea_tokens::secrets::{Secrets, StoreChoice, StoreKind};
    use elitea_tokens::service::{Parts, RotateOptions, RotationStep, Selector, Service};
    use elitea_tokens::state::State;
    use std::ops::ControlFlow;
    use std::sync::Arc;

    let sandbox = SandboxProcess::start().await;
    let dir = workspace();
    let ws = dir.path().to_str().unwrap();
    let settings = dir.path().join(".vscode/settings.json");
    let token_in_file = || {
        let text = std::fs::read_to_string(&settings).unwrap();
        let keys = vscode::read_keys(&text, &["eliteacode.LLMAuthToken"]).unwrap();
        keys[0].1.as_str().unwrap().to_string()
    };
    let old = run(&sandbox, &["create", "VSCode-Dev"])
        .await
        .stdout
        .trim()
        .to_string();
    assert_eq!(
        run(
            &sandbox,
            &["apply", "VSCode-Dev", "--workspace", ws, "--ide", "vscode"]
        )
        .await
        .code,
        0
    );

    let out = run(&sandbox, &["rotate", "VSCode-Dev"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let new = out.stdout.trim().to_string();
    assert!(common::jwt_shape(&new) && new != old, "{out:?}");
    assert_eq!(token_in_file(), new);
    assert!(
        out.stderr.contains("Rotated `VSCode-Dev` to `VSCode-Dev-20"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains(&format!("updated {}", settings.canonicalize().unwrap().display())),
        "{out:?}"
    );
    let names = sandbox.names().await;
    assert!(
        !names.contains(&"VSCode-Dev".to_string()),
        "the old token is deleted: {names:?}"
    );
    let successor = names
        .iter()
        .find(|n| n.starts_with("VSCode-Dev-20"))
        .unwrap()
        .clone();

    // A rotation dies after the successor was checked; the next command, any command, finishes it.
    let paths = Paths::under(sandbox.home.path().to_path_buf());
    let secrets = Secrets::open(StoreChoice::Only(StoreKind::File), &paths).unwrap();
    let client = Client::new(
        ServerUrl::parse(&sandbox.server, false).unwrap(),
        Secret::new(&sandbox.token),
        ClientOptions::default(),
    )
    .unwrap();
    let service = Service::new(Parts {
        client,
        clock: Arc::new(SystemClock),
        secrets: Arc::new(secrets),
        state: State::new(&paths.state_dir),
        config: Config::default(),
    });
    let mut die = |step: RotationStep| {
        if step == RotationStep::Verified {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let interrupted = service
        .rotate(
            &Selector::Name(successor.clone()),
            &RotateOptions::default(),
            &mut die,
        )
        .await;
    assert!(interrupted.is_err());
    assert_eq!(token_in_file(), new, "the files still hold the working token");

    let out = run(&sandbox, &["list"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("An interrupted rotation of"), "{out:?}");
    assert!(out.stderr.contains("was finished"), "{out:?}");
    let third = token_in_file();
    assert_ne!(third, new, "the successor's successor is in the file");
    let works = reqwest::Client::new()
        .get(format!("{}/api/v2/auth/token/", sandbox.server))
        .bearer_auth(&third)
        .send()
        .await
        .unwrap();
    assert_eq!(works.status(), 200);
    assert!(!sandbox.names().await.contains(&successor));
    let out = run(&sandbox, &["rotate", "--resume"]).await;
    assert!(out.stdout.contains("No interrupted rotation."), "{out:?}");
}
