//! The daemon in-process: the real tower-lsp-server `Server` over two `tokio::io::duplex` pairs,
//! driven by a test client that answers the server's requests. Transcripts are snapshotted.

mod common;

use common::lsp::{TestClient, method_of};
use elitea_tokens::clock::TokioClock;
use elitea_tokens::daemon;
use elitea_tokens::domain::Secret;
use elitea_tokens::paths::Paths;
use elitea_tokens::sandbox::{Failure, FaultRule, Route};
use elitea_tokens::secrets::{FileStore, StoreChoice, StoreKind};
use elitea_tokens::session::{Connection, CredentialSource, Session};
use elitea_tokens::state::{State, TokenRecord};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn start(defaults: Connection) -> TestClient {
    let (client_write, server_read) = tokio::io::duplex(1 << 16);
    let (server_write, client_read) = tokio::io::duplex(1 << 16);
    tokio::spawn(daemon::serve_with(defaults, server_read, server_write));
    TestClient::new(client_read, client_write)
}

fn defaults(server: &str, token: &str, home: &Path) -> Connection {
    Connection {
        server: Some(server.to_string()),
        token: Some(Secret::new(token)),
        clock: Arc::new(TokioClock::default()),
        paths: Some(Paths::under(home.to_path_buf())),
        store: Some(StoreChoice::Only(StoreKind::Memory)),
        ..Connection::default()
    }
}

/// Replaces every uuid inside a text with `<uuid>`.
fn mask_uuids(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if rest.len() >= 36 && rest.is_char_boundary(36) && uuid::Uuid::parse_str(&rest[..36]).is_ok() {
            out.push_str("<uuid>");
            rest = &rest[36..];
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Replaces what changes from run to run (uuids, tokens, times, ports, paths) with placeholders.
fn normalize(value: &Value, replacements: &[(&str, &str)]) -> Value {
    match value {
        Value::String(s) => {
            let mut s = s.clone();
            for (from, to) in replacements {
                s = s.replace(from, to);
            }
            s = mask_uuids(&s);
            if s == "<uuid>" {
                "<uuid>".into()
            } else if s.starts_with("eyJ") {
                "<token>".into()
            } else if chrono::DateTime::parse_from_rfc3339(&s).is_ok() {
                "<time>".into()
            } else if s.len() == 7 && s.starts_with("...") {
                "...<last4>".into()
            } else {
                Value::String(s)
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| normalize(v, replacements)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalize(v, replacements)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[tokio::test]
async fn every_request_round_trips_and_the_transcript_holds() {
    let sandbox = common::in_process_sandbox().await;
    let home = tempfile::tempdir().unwrap();
    let workspace = home.path().join("ws");
    std::fs::create_dir_all(&workspace).unwrap();
    let workspace = workspace.canonicalize().unwrap();
    let mut client = start(defaults(sandbox.url(), sandbox.bootstrap_token(), home.path()));
    let init = client
        .initialize(
            &[&workspace],
            json!({"notifications": ["elitea/tokenExpiring", "elitea/tokensChanged"]}),
        )
        .await;
    assert_eq!(init["result"]["serverInfo"]["name"], "elitea-tokens");

    let status = client.request("elitea/status", json!({})).await;
    assert_eq!(status["result"]["credential"], "ok", "{status}");

    let created = client
        .request(
            "elitea/createToken",
            json!({"name": "VSCode-Dev", "expires": "30d"}),
        )
        .await;
    let value = created["result"]["value"].as_str().unwrap().to_string();
    assert_eq!(value.len(), 226);
    assert_eq!(created["result"]["storedIn"], "memory");
    let taken = client
        .request("elitea/createToken", json!({"name": "VSCode-Dev"}))
        .await;
    assert_eq!(taken["error"]["data"]["kind"], "name_taken");

    let applied = client
        .request(
            "elitea/applySettings",
            json!({"name": "VSCode-Dev", "ide": "all"}),
        )
        .await;
    assert_eq!(
        applied["result"]["files"].as_array().unwrap().len(),
        3,
        "{applied}"
    );
    let settings = std::fs::read_to_string(workspace.join(".vscode/settings.json")).unwrap();
    assert!(settings.contains(&value));

    let listed = client
        .request("elitea/listTokens", json!({"search": "vscode"}))
        .await;
    let row = &listed["result"]["tokens"][0];
    assert_eq!(row["name"], "VSCode-Dev");
    assert_eq!(row["stored"], true);
    assert_eq!(row["usedIn"], json!([workspace.display().to_string()]));
    assert_eq!(listed["result"]["stale"], false);

    let preview = client
        .request(
            "elitea/previewSettings",
            json!({"name": "VSCode-Dev", "ide": "jetbrains", "flavor": "current"}),
        )
        .await;
    assert_eq!(preview["result"]["files"][0]["languageId"], "xml");

    let wrong = client
        .request(
            "elitea/deleteToken",
            json!({"name": "VSCode-Dev", "confirm": "vscode-dev"}),
        )
        .await;
    assert_eq!(wrong["error"]["code"], daemon::APPLICATION_ERROR);
    assert_eq!(wrong["error"]["data"]["kind"], "invalid_input");

    let rotated = client
        .request(
            "elitea/rotateToken",
            json!({"name": "VSCode-Dev", "workDoneToken": "rotation-1"}),
        )
        .await;
    assert_eq!(rotated["result"]["outcome"], "rotated", "{rotated}");
    let steps: Vec<String> = client
        .pending
        .iter()
        .filter(|m| method_of(m) == "$/progress")
        .filter_map(|m| m["params"]["value"]["message"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        steps,
        vec!["planned", "created", "stored", "verified", "installed", "done"]
    );
    let new_name = rotated["result"]["new"]["name"].as_str().unwrap().to_string();
    let settings = std::fs::read_to_string(workspace.join(".vscode/settings.json")).unwrap();
    assert!(!settings.contains(&value), "the old token left the file");

    let snoozed = client
        .request(
            "elitea/snoozeReminder",
            json!({"uuid": rotated["result"]["new"]["uuid"]}),
        )
        .await;
    assert!(snoozed["result"]["until"].is_string(), "{snoozed}");
    let deleted = client
        .request(
            "elitea/deleteToken",
            json!({"name": new_name, "confirm": new_name}),
        )
        .await;
    assert_eq!(
        deleted["result"]["stillUsedIn"],
        json!([workspace.display().to_string()]),
        "{deleted}"
    );
    client.request("shutdown", Value::Null).await;

    let home_path = home.path().canonicalize().unwrap().display().to_string();
    // The rotated token is named after the day the test runs.
    let dated = new_name
        .strip_prefix("VSCode-Dev-")
        .expect("rotation keeps the base name");
    assert!(
        chrono::NaiveDate::parse_from_str(dated, "%Y-%m-%d").is_ok(),
        "{new_name}"
    );
    let replacements = [
        (sandbox.url(), "<server>"),
        (home_path.as_str(), "<home>"),
        (new_name.as_str(), "VSCode-Dev-<date>"),
    ];
    // Requests and responses in order; notifications travel on their own path and may pass a
    // response, so they are listed apart, sorted, leaving out the file watcher's (timing).
    let normalized = |m: &Value| normalize(m, &replacements);
    let exchanges: Vec<Value> = client
        .transcript
        .iter()
        .filter(|(_, m)| m.get("id").is_some())
        .map(|(direction, m)| json!({direction.as_str(): normalized(m)}))
        .collect();
    let mut notifications: Vec<String> = client
        .transcript
        .iter()
        .filter(|(_, m)| m.get("id").is_none() && method_of(m) != "initialized")
        .filter(|(_, m)| {
            !["settings_edited", "state_changed"].contains(&m["params"]["reason"].as_str().unwrap_or(""))
        })
        .map(|(_, m)| normalized(m).to_string())
        .collect();
    notifications.sort();
    let transcript = json!({"exchanges": exchanges, "notifications": notifications});
    insta::assert_json_snapshot!("daemon_transcript", transcript);
}

#[tokio::test]
async fn malformed_json_rpc_gets_errors_and_the_daemon_keeps_serving() {
    let home = tempfile::tempdir().unwrap();
    let mut client = start(defaults(&common::closed_port_url(), "x", home.path()));
    client.initialize(&[], json!({})).await;
    let unknown = client.request("elitea/nothing", json!({})).await;
    assert_eq!(unknown["error"]["code"], -32601);
    let wrong = client.request("elitea/createToken", json!({"nam": "x"})).await;
    assert_eq!(wrong["error"]["code"], -32602);
    let size = client.request("elitea/listTokens", json!({"pageSize": 7})).await;
    assert_eq!(size["error"]["data"]["kind"], "invalid_input");
    // (raw bytes, the error code they get)
    let malformed: [(&[u8], i64); 4] = [
        (b"Content-Length: 9\r\n\r\n{not json", -32700),
        (b"Content-Type: application/json\r\n\r\n", -32700),
        (b"Content-Length: nine\r\n\r\n", -32700),
        (b"Content-Length: 2\r\n\r\n[]", -32600),
    ];
    for (bytes, code) in malformed {
        client.send_raw(bytes).await;
        let answer = client
            .wait_for(Duration::from_secs(10), |m| m["error"]["code"] == code)
            .await;
        assert!(
            answer.is_some(),
            "{:?} gets {code}",
            String::from_utf8_lossy(bytes)
        );
    }
    let offline = client.request("elitea/listTokens", json!({})).await;
    assert_eq!(offline["error"]["data"]["kind"], "unreachable", "{offline}");
}

/// A token with a known expiry in a workspace's settings, for the scheduler tests (no server:
/// the expiry comes from the state, as when the server cannot be reached).
fn watched_workspace(
    home: &Path,
    server: &str,
    expires_in: chrono::Duration,
    lifetime: chrono::Duration,
) -> (std::path::PathBuf, uuid::Uuid) {
    use base64::Engine;
    let uuid = uuid::Uuid::new_v4();
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!(r#"{{"uuid":"{uuid}","expires":null}}"#));
    let token = format!("eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.{claims}.test-signature");
    let workspace = home.join("ws");
    std::fs::create_dir_all(workspace.join(".vscode")).unwrap();
    std::fs::write(
        workspace.join(".vscode/settings.json"),
        format!("{{\n    \"eliteacode.LLMAuthToken\": \"{token}\"\n}}\n"),
    )
    .unwrap();
    let now = chrono::Utc::now();
    State::new(&Paths::under(home.to_path_buf()).state_dir)
        .update(|s| {
            s.tokens.push(TokenRecord {
                server: server.to_string(),
                uuid,
                name: "VSCode-Dev".into(),
                period: "30 days".into(),
                created_at: now + expires_in - lifetime,
                expires: Some(now + expires_in),
            })
        })
        .unwrap();
    (workspace.canonicalize().unwrap(), uuid)
}

#[tokio::test(start_paused = true)]
async fn reminders_fire_at_their_virtual_instants_and_a_snooze_moves_them() {
    let home = tempfile::tempdir().unwrap();
    let server = common::closed_port_url();
    // 8 days left: the 7-day reminder is due in exactly 1 day.
    let day = chrono::Duration::days(1);
    let (workspace, uuid) = watched_workspace(home.path(), &server, day * 8, day * 30);
    let mut client = start(defaults(&server, "x", home.path()));
    let started = tokio::time::Instant::now();
    client
        .initialize(&[&workspace], json!({"notifications": ["elitea/tokenExpiring"]}))
        .await;
    let is_reminder = |m: &Value| method_of(m) == "elitea/tokenExpiring";
    let first = client
        .wait_for(Duration::from_secs(3 * 86_400), is_reminder)
        .await
        .expect("a reminder");
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        (elapsed - 86_400.0).abs() < 5.0,
        "fired after {elapsed} s, not 1 day"
    );
    assert_eq!(first["params"]["kind"], "seven_days");
    assert_eq!(first["params"]["uuid"], uuid.to_string());
    assert_eq!(
        first["params"]["workspaces"],
        json!([workspace.display().to_string()])
    );

    // Snoozed past the 1-day reminder's time: it comes when the snooze ends instead.
    let until = chrono::Utc::now() + day * 8 - chrono::Duration::hours(12);
    let snoozed = client
        .request("elitea/snoozeReminder", json!({"uuid": uuid, "until": until}))
        .await;
    assert!(snoozed["result"].is_object(), "{snoozed}");
    let second = client
        .wait_for(Duration::from_secs(10 * 86_400), is_reminder)
        .await
        .expect("a reminder");
    assert_eq!(second["params"]["kind"], "one_day");
    let elapsed = started.elapsed().as_secs_f64();
    assert!(elapsed > 7.4 * 86_400.0, "the snooze held it back: {elapsed}");

    let last = client
        .wait_for(Duration::from_secs(3 * 86_400), |m| {
            method_of(m) == "elitea/tokenExpiring" && m["params"]["kind"] == "expired"
        })
        .await
        .expect("the final notice");
    assert_eq!(last["params"]["severity"], "error");
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        (elapsed - 8.0 * 86_400.0).abs() < 5.0,
        "expired notice after {elapsed} s"
    );
}

#[tokio::test]
async fn the_protocol_document_names_every_method() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md")).unwrap();
    for method in daemon::ext::ALL_METHODS {
        assert!(
            doc.contains(&format!("### `{method}`")),
            "docs/protocol.md has no section for {method}"
        );
    }
}

/// A daemon serving a workspace whose settings hold a token 20 days from expiry (nothing due),
/// with its session open and its files watched once `elitea/status` has answered.
async fn watching_a_workspace(
    home: &Path,
    server: &str,
    notifications: Value,
) -> (TestClient, std::path::PathBuf, uuid::Uuid) {
    let day = chrono::Duration::days(1);
    let (workspace, uuid) = watched_workspace(home, server, day * 20, day * 30);
    let mut client = start(defaults(server, "x", home));
    client
        .initialize(&[&workspace], json!({"notifications": notifications}))
        .await;
    let status = client.request("elitea/status", json!({})).await;
    assert!(status.get("result").is_some(), "{status}");
    (client, workspace, uuid)
}

#[tokio::test]
async fn a_hand_edit_of_settings_is_noticed_and_the_reminders_follow_it() {
    let home = tempfile::tempdir().unwrap();
    let server = common::closed_port_url();
    let day = chrono::Duration::days(1);
    // The workspace starts with a token 20 days from expiry: nothing is due.
    let (mut client, workspace, first) = watching_a_workspace(
        home.path(),
        &server,
        json!(["elitea/tokenExpiring", "elitea/tokensChanged"]),
    )
    .await;
    assert!(
        client
            .wait_for(Duration::from_millis(500), |m| method_of(m)
                == "elitea/tokenExpiring")
            .await
            .is_none(),
        "nothing is due for {first}"
    );

    // By hand, the user puts in another token, 3 days from expiry: its reminder is due now.
    let other = home.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let (_, second) = watched_workspace(&other, &server, day * 3, day * 30);
    let text = std::fs::read_to_string(other.join("ws/.vscode/settings.json")).unwrap();
    // The second token's record lives in the other home; copy it into this daemon's state.
    let other_state = State::new(&Paths::under(other.clone()).state_dir).read().unwrap();
    State::new(&Paths::under(home.path().to_path_buf()).state_dir)
        .update(|s| s.tokens.extend(other_state.tokens.clone()))
        .unwrap();
    std::fs::write(workspace.join(".vscode/settings.json"), text).unwrap();

    let changed = client
        .wait_for(Duration::from_secs(10), |m| {
            method_of(m) == "elitea/tokensChanged" && m["params"]["reason"] == "settings_edited"
        })
        .await;
    assert!(changed.is_some(), "the edit is noticed");
    let reminder = client
        .wait_for(Duration::from_secs(10), |m| {
            method_of(m) == "elitea/tokenExpiring"
        })
        .await
        .expect("the new token's reminder");
    assert_eq!(reminder["params"]["uuid"], second.to_string());
    assert_eq!(reminder["params"]["kind"], "seven_days");
}

/// How many times the sandbox has been asked for the token list.
fn list_hits(sandbox: &elitea_tokens::sandbox::Sandbox) -> u64 {
    sandbox.hits().get(&Route::ListTokens).copied().unwrap_or(0)
}

/// As [`start`], with the list fetched for `defaults` as the process starts, as
/// `elitea-tokens serve` does.
fn start_prefetched(defaults: Connection) -> TestClient {
    let prefetch = daemon::Prefetch::start(defaults.clone());
    assert!(prefetch.is_some(), "the prefetch thread starts");
    let (client_write, server_read) = tokio::io::duplex(1 << 16);
    let (server_write, client_read) = tokio::io::duplex(1 << 16);
    tokio::spawn(daemon::serve_prefetched(
        defaults,
        prefetch,
        server_read,
        server_write,
    ));
    TestClient::new(client_read, client_write)
}

/// The two ways a daemon starts: fetching once `initialize` is answered, and from the
/// process's start.
type Start = fn(Connection) -> TestClient;

const STARTS: [(&str, Start); 2] = [
    ("after initialize", start),
    ("with the process", start_prefetched),
];

/// Waits until the sandbox has been asked for the list `hits` times.
async fn until_list_hits(sandbox: &elitea_tokens::sandbox::Sandbox, hits: u64, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while list_hits(sandbox) < hits {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: the list is never fetched"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The list is fetched before any call asks for it (as soon as the `initialize` answer is
/// out, or as the process starts): the first `listTokens` answers from that fetch and the
/// server is asked once.
#[tokio::test]
async fn the_list_is_fetched_once_the_initialize_answer_is_out() {
    for (how, start) in STARTS {
        let sandbox = common::in_process_sandbox().await;
        let home = tempfile::tempdir().unwrap();
        let mut client = start(defaults(sandbox.url(), sandbox.bootstrap_token(), home.path()));
        client.initialize(&[], json!({})).await;
        until_list_hits(&sandbox, 1, how).await;
        let listed = client.request("elitea/listTokens", json!({})).await;
        assert_eq!(listed["result"]["total"], 1, "{how}: {listed}");
        assert_eq!(
            list_hits(&sandbox),
            1,
            "{how}: the first call answers from the fetch at start"
        );
    }
}

/// Started with the process, the fetch needs no `initialize`, and the daemon goes on with its
/// own session once the thread (with its session and HTTP connection) is gone: a token created
/// then shows in the next list.
#[tokio::test]
async fn the_list_is_fetched_as_the_process_starts_and_the_daemon_goes_on_without_it() {
    let sandbox = common::in_process_sandbox().await;
    let home = tempfile::tempdir().unwrap();
    let mut client = start_prefetched(defaults(sandbox.url(), sandbox.bootstrap_token(), home.path()));
    until_list_hits(&sandbox, 1, "before initialize").await;
    client.initialize(&[], json!({})).await;
    let listed = client.request("elitea/listTokens", json!({})).await;
    assert_eq!(listed["result"]["total"], 1, "{listed}");
    assert_eq!(list_hits(&sandbox), 1, "answered from the fetch at start");
    let created = client
        .request("elitea/createToken", json!({"name": "after-start"}))
        .await;
    assert!(created.get("result").is_some(), "{created}");
    let listed = client.request("elitea/listTokens", json!({})).await;
    // The new token shows: the list was asked for again (by this call or the reminders').
    assert_eq!(listed["result"]["total"], 2, "{listed}");
}

/// Started before the process's log subscriber, as `serve` starts it, the fetch opens its
/// session (which may log) only once the daemon says its logs are ready: no GET before that,
/// and the list once it is said, or once the daemon drops the sender.
#[tokio::test]
async fn a_fetch_started_before_the_logs_waits_for_them() {
    for say in ["sent", "dropped"] {
        let sandbox = common::in_process_sandbox().await;
        let home = tempfile::tempdir().unwrap();
        let (logs_ready, logs_awaited) = std::sync::mpsc::channel();
        let prefetch = daemon::Prefetch::start_before_logs(
            defaults(sandbox.url(), sandbox.bootstrap_token(), home.path()),
            logs_awaited,
        );
        assert!(prefetch.is_some(), "{say}: the prefetch thread starts");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            list_hits(&sandbox),
            0,
            "{say}: fetched before the logs were ready"
        );
        if say == "sent" {
            logs_ready.send(()).unwrap();
        } else {
            drop(logs_ready);
        }
        until_list_hits(&sandbox, 1, say).await;
    }
}

/// The daemon opens its session from what the fetch at start read (the configuration and the
/// stored credential) instead of reading the files again as its first call arrives: a
/// credential removed after that read is still the one its calls carry. A daemon without the
/// fetch reads the files when it opens its session, and finds no credential.
#[tokio::test]
async fn the_daemon_opens_its_session_from_what_the_fetch_at_start_read() {
    for (how, start) in STARTS {
        let sandbox = common::in_process_sandbox().await;
        let home = tempfile::tempdir().unwrap();
        let signed_in = Connection {
            server: None,
            token: None,
            store: Some(StoreChoice::Only(StoreKind::File)),
            ..defaults(sandbox.url(), "", home.path())
        };
        let login = Connection {
            server: Some(sandbox.url().to_string()),
            ..signed_in.clone()
        };
        let credential = Secret::new(sandbox.bootstrap_token());
        let session = Session::open(&login, CredentialSource::Given(credential))
            .await
            .unwrap();
        session.service.login(&session.paths.config_dir).await.unwrap();
        drop(session);
        let hits_at_login = list_hits(&sandbox);

        let mut client = start(signed_in);
        if how == "with the process" {
            until_list_hits(&sandbox, hits_at_login + 1, how).await;
        }
        let secrets = FileStore::location(&Paths::under(home.path().to_path_buf()));
        std::fs::remove_file(&secrets).unwrap();
        client.initialize(&[], json!({})).await;
        let created = client
            .request("elitea/createToken", json!({"name": "after-the-file-went"}))
            .await;
        if how == "with the process" {
            assert!(created.get("result").is_some(), "{how}: {created}");
        } else {
            assert!(
                created["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("no credential"),
                "{how}: {created}"
            );
        }
    }
}

/// What was fetched at start is not used when `initialize` asks for another connection, when
/// the first call asks for a refresh, or when a change came first.
#[tokio::test]
async fn the_fetch_at_start_is_left_when_it_cannot_stand_for_the_server() {
    #[derive(Clone, Copy, Debug)]
    enum Case {
        AnotherServer,
        Refresh,
        CreatedFirst,
    }
    for case in [Case::AnotherServer, Case::Refresh, Case::CreatedFirst] {
        let sandbox = common::in_process_sandbox().await;
        let other = common::in_process_sandbox().await;
        let home = tempfile::tempdir().unwrap();
        let mut client = start_prefetched(defaults(sandbox.url(), sandbox.bootstrap_token(), home.path()));
        until_list_hits(&sandbox, 1, "at start").await;
        let options = match case {
            Case::AnotherServer => json!({"server": other.url()}),
            _ => json!({}),
        };
        client.initialize(&[], options).await;
        let (params, total) = match case {
            Case::AnotherServer => (json!({}), None),
            Case::Refresh => (json!({"refresh": true}), Some(1)),
            Case::CreatedFirst => {
                let created = client
                    .request("elitea/createToken", json!({"name": "first"}))
                    .await;
                assert!(created.get("result").is_some(), "{case:?}: {created}");
                (json!({}), Some(2))
            }
        };
        let listed = client.request("elitea/listTokens", params).await;
        match case {
            // The other server does not know this credential; what matters is who was asked.
            Case::AnotherServer => {
                until_list_hits(&other, 1, "the other server").await;
                assert_eq!(list_hits(&sandbox), 1, "{case:?}: {listed}");
            }
            _ => {
                assert_eq!(listed["result"]["total"], json!(total), "{case:?}: {listed}");
                assert!(list_hits(&sandbox) >= 2, "{case:?}: the server asked again");
            }
        }
    }
}

/// A first call that arrives while the fetch at start is under way waits for it, and when it
/// fails answers with that failure instead of asking the server again at once; the next call
/// asks again. Failures that are not retried: a 500, and a body that is not a whole list (the
/// fetch at start parses it on the daemon's thread, piece by piece).
#[tokio::test]
async fn a_first_call_shares_the_fetch_at_start_and_its_failure() {
    let failures = [
        (Failure::Status(500), "server_error"),
        (Failure::TruncatedJson, "protocol"),
    ];
    for (failure, kind) in failures {
        for (how, start) in STARTS {
            let sandbox = common::in_process_sandbox().await;
            // Not retried: one fetch is one request, slow enough to be waited for.
            sandbox.set_faults(vec![FaultRule {
                route: Route::ListTokens,
                latency: Duration::from_secs(2),
                failure_rate: 1.0,
                failure,
            }]);
            let home = tempfile::tempdir().unwrap();
            let mut client = start(defaults(sandbox.url(), sandbox.bootstrap_token(), home.path()));
            client.initialize(&[], json!({})).await;
            let first = client.request("elitea/listTokens", json!({})).await;
            assert_eq!(first["error"]["data"]["kind"], kind, "{how}: {first}");
            assert_eq!(
                list_hits(&sandbox),
                1,
                "{how}: the first call waited for the fetch at start"
            );
            let second = client.request("elitea/listTokens", json!({})).await;
            assert_eq!(second["error"]["data"]["kind"], kind, "{how}: {second}");
            assert_eq!(list_hits(&sandbox), 2, "{how}: the next call asks again");
        }
    }
}

/// A daemon that started signed out watches files from its first `elitea/login` on.
#[tokio::test]
async fn a_daemon_started_signed_out_watches_files_after_login() {
    let sandbox = common::in_process_sandbox().await;
    let home = tempfile::tempdir().unwrap();
    let signed_out = Connection {
        token: None,
        ..defaults(sandbox.url(), "", home.path())
    };
    let mut client = start(signed_out);
    client
        .initialize(&[], json!({"notifications": ["elitea/tokensChanged"]}))
        .await;
    let status = client.request("elitea/status", json!({})).await;
    assert!(status.get("error").is_some(), "signed out: {status}");
    let login = client
        .request(
            "elitea/login",
            json!({"server": sandbox.url(), "token": sandbox.bootstrap_token(), "insecureHttp": true}),
        )
        .await;
    assert!(login.get("result").is_some(), "{login}");
    let changed =
        |m: &Value| method_of(m) == "elitea/tokensChanged" && m["params"]["reason"] == "state_changed";
    State::new(&Paths::under(home.path().to_path_buf()).state_dir)
        .update(|s| {
            s.tokens.push(TokenRecord {
                server: sandbox.url().to_string(),
                uuid: uuid::Uuid::new_v4(),
                name: "made-in-a-terminal".into(),
                period: "7 days".into(),
                created_at: chrono::Utc::now(),
                expires: None,
            })
        })
        .unwrap();
    let told = client.wait_for(Duration::from_secs(10), changed).await;
    assert!(told.is_some(), "the state change after login is told");
}

/// The daemon keeps a digest of the state, not the state: a change made elsewhere (a terminal
/// creating a token) is still told; another window's snooze, which only rewrites the reminder
/// log, is not a change to tell.
#[tokio::test]
async fn a_state_change_elsewhere_is_told_and_a_snooze_elsewhere_is_not() {
    let home = tempfile::tempdir().unwrap();
    let server = common::closed_port_url();
    let day = chrono::Duration::days(1);
    let (mut client, _, uuid) =
        watching_a_workspace(home.path(), &server, json!(["elitea/tokensChanged"])).await;
    let changed = |m: &Value| method_of(m) == "elitea/tokensChanged";
    let state_dir = Paths::under(home.path().to_path_buf()).state_dir;

    elitea_tokens::reminders::ReminderLog::new(&state_dir)
        .snooze(uuid, chrono::Utc::now() + day)
        .unwrap();
    let told = client.wait_for(Duration::from_millis(1000), changed).await;
    assert!(told.is_none(), "a snooze is not a change: {told:?}");

    State::new(&state_dir)
        .update(|s| {
            s.tokens.push(TokenRecord {
                server: server.clone(),
                uuid: uuid::Uuid::new_v4(),
                name: "made-in-a-terminal".into(),
                period: "7 days".into(),
                created_at: chrono::Utc::now(),
                expires: Some(chrono::Utc::now() + day * 7),
            })
        })
        .unwrap();
    let told = client
        .wait_for(Duration::from_secs(10), changed)
        .await
        .expect("the state change is told");
    assert_eq!(told["params"]["reason"], "state_changed", "{told}");
}

#[tokio::test(start_paused = true)]
async fn a_generic_client_gets_a_message_request_and_remind_me_tomorrow_snoozes() {
    let home = tempfile::tempdir().unwrap();
    let server = common::closed_port_url();
    let day = chrono::Duration::days(1);
    // 3 days left: the 7-day reminder is due at once.
    let (workspace, _) = watched_workspace(home.path(), &server, day * 3, day * 30);
    let mut client = start(defaults(&server, "x", home.path()));
    let started = tokio::time::Instant::now();
    client.initialize(&[&workspace], json!({})).await;
    let ask = |m: &Value| method_of(m) == "window/showMessageRequest";
    let request = client
        .wait_for(Duration::from_secs(60), ask)
        .await
        .expect("a message request");
    let titles: Vec<&str> = request["params"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, vec!["Rotate now", "Remind me tomorrow"]);
    assert!(
        request["params"]["message"]
            .as_str()
            .unwrap()
            .contains("VSCode-Dev")
    );
    client
        .respond(request["id"].clone(), json!({"title": "Remind me tomorrow"}))
        .await;

    // The 1-day reminder (due 2 days in) comes; the snooze held nothing past it, and no
    // reminder came in between.
    let next = client
        .wait_for(Duration::from_secs(5 * 86_400), ask)
        .await
        .expect("the next request");
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        (elapsed - 2.0 * 86_400.0).abs() < 5.0,
        "the 1-day reminder after {elapsed} s"
    );
    assert!(
        next["params"]["message"].as_str().unwrap().contains("in 1 day"),
        "{next}"
    );
}

#[tokio::test]
async fn degraded_modes_list_from_memory_and_work_without_a_keyring() {
    let sandbox = common::in_process_sandbox().await;
    let home = tempfile::tempdir().unwrap();
    let mut defaults = defaults(sandbox.url(), sandbox.bootstrap_token(), home.path());
    // A keyring that is not there (no session bus in this process).
    defaults.store = Some(StoreChoice::Only(StoreKind::Keyring));
    let mut client = start(defaults);
    client.initialize(&[], json!({})).await;
    let listed = client.request("elitea/listTokens", json!({})).await;
    assert_eq!(listed["result"]["stale"], false, "{listed}");
    let status = client.request("elitea/status", json!({})).await;
    assert_eq!(status["result"]["credential"], "ok", "{status}");
    assert_eq!(status["result"]["secretStore"], "keyring", "{status}");
    let created = client
        .request("elitea/createToken", json!({"name": "no-keyring"}))
        .await;
    assert_eq!(created["result"]["storedIn"], Value::Null, "{created}");
    assert!(
        created["result"]["storeProblem"]
            .as_str()
            .unwrap()
            .contains("ELITEA_SECRET_STORE"),
        "{created}"
    );

    let fresh = client.request("elitea/listTokens", json!({})).await;
    assert_eq!(fresh["result"]["total"], 2, "{fresh}");

    // The server goes away: the list comes from memory, marked stale.
    sandbox.shutdown().await;
    let stale = client
        .request("elitea/listTokens", json!({"refresh": true}))
        .await;
    assert_eq!(stale["result"]["stale"], true, "{stale}");
    let names: Vec<&str> = stale["result"]["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["no-keyring", "sandbox-bootstrap"],
        "the last known list, with the new token"
    );
    let create = client
        .request("elitea/createToken", json!({"name": "offline"}))
        .await;
    assert_eq!(create["error"]["data"]["kind"], "unreachable", "{create}");
}

#[tokio::test]
async fn the_first_list_and_the_scheduler_share_one_fetch() {
    let sandbox = common::in_process_sandbox().await;
    // A slow list: the client's first call arrives while the scheduler's fetch is under way.
    sandbox.set_faults(vec!["list:latency=400ms".parse().unwrap()]);
    let home = tempfile::tempdir().unwrap();
    // A token in use, so the scheduler asks for the list as soon as the session opens.
    let day = chrono::Duration::days(1);
    let (workspace, _) = watched_workspace(home.path(), sandbox.url(), day * 20, day * 30);
    let mut client = start(defaults(sandbox.url(), sandbox.bootstrap_token(), home.path()));
    client.initialize(&[&workspace], json!({})).await;
    let listed = client.request("elitea/listTokens", json!({})).await;
    assert_eq!(listed["result"]["stale"], false, "{listed}");
    assert_eq!(listed["result"]["total"], 1, "{listed}");
    let lists = |sandbox: &elitea_tokens::sandbox::Sandbox| sandbox.hits().get(&Route::ListTokens).copied();
    assert_eq!(lists(&sandbox), Some(1), "one fetch served both");

    // A refresh still asks the server.
    let refreshed = client
        .request("elitea/listTokens", json!({"refresh": true}))
        .await;
    assert_eq!(refreshed["result"]["stale"], false, "{refreshed}");
    assert_eq!(lists(&sandbox), Some(2));
}

/// A create whose answer is cut off may still have made the token, so a failed change asks the
/// server for the list again rather than answering from memory.
#[tokio::test]
async fn a_failed_create_still_asks_the_server_again() {
    let sandbox = common::in_process_sandbox().await;
    let home = tempfile::tempdir().unwrap();
    let mut client = start(defaults(sandbox.url(), sandbox.bootstrap_token(), home.path()));
    client.initialize(&[], json!({})).await;
    let listed = client.request("elitea/listTokens", json!({})).await;
    assert_eq!(listed["result"]["total"], 1, "{listed}");
    // The server makes the token and the answer arrives cut in half.
    sandbox.set_faults(vec!["create:fail=1:truncated".parse().unwrap()]);
    let created = client
        .request("elitea/createToken", json!({"name": "answer-lost"}))
        .await;
    assert!(created.get("error").is_some(), "{created}");
    sandbox.set_faults(Vec::new());
    let listed = client.request("elitea/listTokens", json!({})).await;
    assert_eq!(
        listed["result"]["total"], 2,
        "the token made on the server shows: {listed}"
    );
}
