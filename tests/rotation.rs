//! Rotation with a failure at every step: a killed process, server faults and a failing secret
//! store. Each case ends with a working token in the workspace's files and, once the journal
//! has been replayed, no leftover token on the server.

mod common;

use elitea_tokens::api::{Client, ClientOptions, ServerUrl};
use elitea_tokens::clock::SystemClock;
use elitea_tokens::config::Config;
use elitea_tokens::domain::{Expiration, Secret};
use elitea_tokens::ide::vscode;
use elitea_tokens::sandbox::{Failure, FaultRule, Route, Sandbox};
use elitea_tokens::secrets::{FailingStore, MemoryStore, Op, SecretKey, SecretStore, StoreErrorKind, When};
use elitea_tokens::service::{
    ApplyRequest, Parts, RotateOptions, RotationOutcome, RotationStep, Selector, Service,
};
use elitea_tokens::state::{Ide, State};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A sandbox, a workspace holding a token applied by the tool, and the stores behind it.
struct World {
    sandbox: Sandbox,
    memory: MemoryStore,
    home: tempfile::TempDir,
    workspace: PathBuf,
}

impl World {
    async fn new() -> World {
        let sandbox = common::in_process_sandbox().await;
        let home = tempfile::tempdir().unwrap();
        let workspace = home.path().join("project");
        std::fs::create_dir_all(workspace.join(".vscode")).unwrap();
        std::fs::write(
            workspace.join(".vscode/settings.json"),
            "{\n    // my editor\n    \"editor.tabSize\": 4,\n}\n",
        )
        .unwrap();
        let world = World {
            sandbox,
            memory: MemoryStore::new(),
            home,
            workspace,
        };
        let service = world.service(Arc::new(world.memory.clone()));
        service
            .create("VSCode-Dev", "30d".parse().unwrap())
            .await
            .unwrap();
        service
            .apply(&ApplyRequest {
                selector: Selector::Name("VSCode-Dev".into()),
                ides: vec![Ide::Vscode],
                workspace: world.workspace.clone(),
                flavor: None,
                choices: Default::default(),
                gitignore: false,
            })
            .await
            .unwrap();
        world
    }

    /// A fresh service, as a new process would have, over the given store.
    fn service(&self, secrets: Arc<dyn SecretStore>) -> Service {
        let client = Client::new(
            ServerUrl::parse(self.sandbox.url(), false).unwrap(),
            Secret::new(self.sandbox.bootstrap_token()),
            ClientOptions {
                retry_delay: Duration::from_millis(5),
                request_timeout: Duration::from_secs(3),
                ..ClientOptions::default()
            },
        )
        .unwrap();
        Service::new(Parts {
            client,
            clock: Arc::new(SystemClock),
            secrets,
            state: State::new(&self.home.path().join("state")),
            config: Config::default(),
        })
    }

    fn plain(&self) -> Service {
        self.service(Arc::new(self.memory.clone()))
    }

    fn settings(&self) -> PathBuf {
        self.workspace.join(".vscode/settings.json")
    }

    /// The token the workspace's settings hold.
    fn token_in_files(&self) -> String {
        let text = std::fs::read_to_string(self.settings()).unwrap();
        assert!(
            text.contains("// my editor"),
            "the user's comment survives: {text}"
        );
        let keys = vscode::read_keys(&text, &["eliteacode.LLMAuthToken", "alitacode.LLMAuthToken"]).unwrap();
        assert_eq!(keys.len(), 2, "{text}");
        assert_eq!(keys[0].1, keys[1].1, "both flavors hold the same token");
        keys[0].1.as_str().unwrap().to_string()
    }

    /// The files' token authenticates against the server.
    async fn assert_files_work(&self, case: &str) {
        self.sandbox.set_faults(vec![]);
        let token = self.token_in_files();
        let client = Client::new(
            ServerUrl::parse(self.sandbox.url(), false).unwrap(),
            Secret::new(token),
            ClientOptions::default(),
        )
        .unwrap();
        if let Err(e) = client.list_tokens().await {
            panic!("{case}: the token in the files does not work: {e}");
        }
    }

    /// Names of the tokens on the server that rotation made or kept (not the bootstrap one).
    async fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .plain()
            .client()
            .list_tokens()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name.to_string())
            .filter(|n| n.starts_with("VSCode-Dev"))
            .collect();
        names.sort();
        names
    }
}

fn fault(route: Route, failure: Failure) -> Vec<FaultRule> {
    vec![FaultRule {
        route,
        latency: Duration::ZERO,
        failure_rate: 1.0,
        failure,
    }]
}

#[tokio::test]
async fn a_rotation_killed_after_any_step_resumes_or_rolls_back() {
    use RotationStep::*;
    // (step after which the process dies, what the next run does)
    let cases = [
        (Planned, RotationOutcome::Rotated),
        (Created, RotationOutcome::RolledBack),
        (Stored, RotationOutcome::Rotated),
        (Verified, RotationOutcome::Rotated),
        (Installed, RotationOutcome::Rotated),
    ];
    for (kill_after, expected) in cases {
        let world = World::new().await;
        let case = format!("killed after {kill_after:?}");
        let before = world.token_in_files();
        let mut die = |step: RotationStep| {
            if step == kill_after {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let error = world
            .plain()
            .rotate(
                &Selector::Name("VSCode-Dev".into()),
                &RotateOptions::default(),
                &mut die,
            )
            .await
            .expect_err(&case);
        assert!(error.message.contains("interrupted"), "{case}: {error}");
        world.assert_files_work(&case).await;
        assert!(world.names().await.len() <= 2, "{case}: at most one leftover");

        // The next run (a new process) replays the journal.
        let service = world.plain();
        assert!(service.rotation_pending(), "{case}");
        let mut go_on = |_: RotationStep| ControlFlow::Continue(());
        let report = service.resume_rotation(&mut go_on).await.unwrap().expect(&case);
        assert_eq!(report.outcome, expected, "{case}: {report:?}");
        assert!(!service.rotation_pending(), "{case}: the journal is gone");
        world.assert_files_work(&case).await;
        let names = world.names().await;
        assert_eq!(names.len(), 1, "{case}: exactly one token left: {names:?}");
        match expected {
            RotationOutcome::RolledBack => {
                assert_eq!(names, vec!["VSCode-Dev"], "{case}");
                assert_eq!(world.token_in_files(), before, "{case}");
            }
            _ => {
                assert!(names[0].starts_with("VSCode-Dev-20"), "{case}: {names:?}");
                assert_ne!(world.token_in_files(), before, "{case}");
                let new = report.new.as_ref().unwrap();
                assert_eq!(new.name, names[0]);
                assert!(world.memory.contains(&SecretKey::Token {
                    server: world.sandbox.url().to_string(),
                    uuid: new.uuid,
                }));
            }
        }
    }
}

#[tokio::test]
async fn server_faults_at_each_step_never_leave_the_files_without_a_working_token() {
    // (case, faults set when a step is reached (None = before starting), outcome of the first run)
    struct Case {
        name: &'static str,
        at: Option<RotationStep>,
        faults: Vec<FaultRule>,
        first_run_ok: bool,
    }
    let cases = vec![
        Case {
            name: "create fails",
            at: Some(RotationStep::Planned),
            faults: fault(Route::CreateToken, Failure::Status(500)),
            first_run_ok: false,
        },
        Case {
            name: "create's answer is cut (the token exists, its value is lost)",
            at: Some(RotationStep::Planned),
            faults: fault(Route::CreateToken, Failure::TruncatedJson),
            first_run_ok: false,
        },
        Case {
            name: "the check of the successor cannot reach the server",
            at: Some(RotationStep::Stored),
            faults: fault(Route::ListTokens, Failure::CloseConnection),
            first_run_ok: false,
        },
        Case {
            name: "the old token cannot be deleted",
            at: Some(RotationStep::Installed),
            faults: fault(Route::DeleteToken, Failure::Status(503)),
            first_run_ok: true,
        },
    ];
    for case in cases {
        let world = World::new().await;
        let sandbox = &world.sandbox;
        let faults = case.faults.clone();
        let at = case.at;
        let mut inject = move |step: RotationStep| {
            if Some(step) == at {
                sandbox.set_faults(faults.clone());
            }
            ControlFlow::Continue(())
        };
        let first = world
            .plain()
            .rotate(
                &Selector::Name("VSCode-Dev".into()),
                &RotateOptions::default(),
                &mut inject,
            )
            .await;
        assert_eq!(first.is_ok(), case.first_run_ok, "{}: {first:?}", case.name);
        world.assert_files_work(case.name).await;
        assert!(
            world.names().await.len() <= 2,
            "{}: at most one leftover",
            case.name
        );

        // Faults cleared: the next run finishes what is left.
        let service = world.plain();
        let mut go_on = |_: RotationStep| ControlFlow::Continue(());
        if service.rotation_pending() {
            service.resume_rotation(&mut go_on).await.unwrap();
        }
        assert!(!service.rotation_pending(), "{}", case.name);
        world.assert_files_work(case.name).await;
        let names = world.names().await;
        assert_eq!(
            names.len(),
            1,
            "{}: no leftover after the replay: {names:?}",
            case.name
        );
    }
}

#[tokio::test]
async fn a_failing_secret_store_rolls_the_rotation_back() {
    let world = World::new().await;
    let before = world.token_in_files();
    let failing =
        FailingStore::wrap(world.memory.clone()).fail(Some(Op::Set), When::Always, StoreErrorKind::Denied);
    let service = world.service(Arc::new(failing));
    let mut go_on = |_: RotationStep| ControlFlow::Continue(());
    let error = service
        .rotate(
            &Selector::Name("VSCode-Dev".into()),
            &RotateOptions::default(),
            &mut go_on,
        )
        .await
        .unwrap_err();
    assert!(error.message.contains("nothing changed"), "{error}");
    assert!(!service.rotation_pending());
    assert_eq!(world.names().await, vec!["VSCode-Dev"]);
    assert_eq!(world.token_in_files(), before);
    world.assert_files_work("failing store").await;
}

#[tokio::test]
async fn rotation_installs_a_new_token_even_when_the_old_one_is_gone() {
    let world = World::new().await;
    let service = world.plain();
    let old = service.find(&Selector::Name("VSCode-Dev".into())).await.unwrap();
    service.client().delete_token(old.uuid).await.unwrap();
    let mut go_on = |_: RotationStep| ControlFlow::Continue(());
    let report = service
        .rotate(
            &Selector::Name("VSCode-Dev".into()),
            &RotateOptions::default(),
            &mut go_on,
        )
        .await
        .unwrap();
    assert_eq!(report.outcome, RotationOutcome::Rotated);
    assert_eq!(
        report.updated_files,
        vec![world.settings().canonicalize().unwrap()]
    );
    world.assert_files_work("old token gone").await;
    let names = world.names().await;
    assert_eq!(names.len(), 1);
    assert!(names[0].starts_with("VSCode-Dev-20"));
}

#[tokio::test]
async fn rotation_keeps_the_period_and_replaces_the_login_credential() {
    let world = World::new().await;
    let service = world.plain();
    let old = service.find(&Selector::Name("VSCode-Dev".into())).await.unwrap();
    let old_value = service.stored_value(old.uuid).await.unwrap().unwrap();
    let credential = SecretKey::Credential {
        server: world.sandbox.url().to_string(),
    };
    world.memory.set(&credential, &old_value).unwrap();
    let mut go_on = |_: RotationStep| ControlFlow::Continue(());
    let report = service
        .rotate(
            &Selector::Name("VSCode-Dev".into()),
            &RotateOptions::default(),
            &mut go_on,
        )
        .await
        .unwrap();
    assert!(report.credential_replaced);
    let new_value = report.value.clone().unwrap();
    assert_eq!(world.memory.get(&credential).unwrap().unwrap(), new_value);
    let new = report.new.unwrap();
    let lifetime = new.expires.unwrap() - chrono::Utc::now();
    assert!(
        (lifetime - chrono::Duration::days(30)).num_minutes().abs() <= 2,
        "30 days again: {lifetime}"
    );
    assert!(
        world
            .memory
            .get(&SecretKey::Token {
                server: world.sandbox.url().to_string(),
                uuid: old.uuid
            })
            .unwrap()
            .is_none(),
        "the old value is forgotten"
    );
    // A second rotation the same day still gets a unique name.
    let report = service
        .rotate(
            &Selector::Uuid(new.uuid),
            &RotateOptions {
                expires: Some(Expiration::Never),
            },
            &mut go_on,
        )
        .await
        .unwrap();
    let second = report.new.unwrap();
    assert!(second.name.ends_with("-2"), "{}", second.name);
    assert_eq!(second.expires, None);
    world.assert_files_work("second rotation").await;
}
