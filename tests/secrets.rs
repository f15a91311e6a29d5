//! The secret stores: one contract for every store, the file store's promises, `auto`'s
//! fallback and the index that finds each secret again.
//!
//! The keyutils and Secret Service tests run for real where the machine allows; otherwise they
//! print `skipped: <reason>` and pass. Set `ELITEA_TEST_REQUIRE_SECRET_SERVICE=1` (CI does) to
//! make a Secret Service that cannot be started a failure instead.

mod common;

use elitea_tokens::domain::Secret;
use elitea_tokens::paths::Paths;
use elitea_tokens::secrets::{
    FailingStore, FileStore, KeyringStore, KeyutilsStore, MemoryStore, Op, STORE_ENV, SecretKey, SecretStore,
    Secrets, StoreChoice, StoreError, StoreErrorKind, StoreKind, When,
};
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A server name no other test (or earlier run, for the OS keyrings) uses.
fn unique_server(tag: &str) -> String {
    format!("https://{tag}-{}.test.invalid", Uuid::new_v4().simple())
}

#[derive(Debug)]
enum Step<'a> {
    Set(&'a SecretKey, &'a str),
    Get(&'a SecretKey, Option<&'a str>),
    Delete(&'a SecretKey, bool),
}

/// What every store promises. Run against memory, file, keyutils and the Secret Service.
fn contract(store: &dyn SecretStore) {
    use Step::*;
    let server_a = unique_server("a");
    let server_b = unique_server("b");
    let uuid = Uuid::new_v4();
    let token_a = SecretKey::token(&server_a, uuid);
    // The same uuid on another server is another secret.
    let token_b = SecretKey::token(&server_b, uuid);
    let credential_a = SecretKey::credential(&server_a);
    let other_token_a = SecretKey::token(&server_a, Uuid::new_v4());
    let odd_value = "tok-Ωλ/+= \"quoted\" \\ back\tslash";
    let long_value = "x".repeat(512);

    let steps = [
        Get(&token_a, None),
        Delete(&token_a, false),
        Set(&token_a, "value-a-1"),
        Get(&token_a, Some("value-a-1")),
        Get(&token_b, None),
        Get(&credential_a, None),
        Get(&other_token_a, None),
        Set(&token_b, "value-b-1"),
        Set(&credential_a, "credential-a"),
        Get(&token_a, Some("value-a-1")),
        Get(&token_b, Some("value-b-1")),
        Get(&credential_a, Some("credential-a")),
        // Overwrite one; the others stay.
        Set(&token_a, "value-a-2"),
        Get(&token_a, Some("value-a-2")),
        Get(&token_b, Some("value-b-1")),
        Get(&credential_a, Some("credential-a")),
        Set(&other_token_a, odd_value),
        Get(&other_token_a, Some(odd_value)),
        Set(&other_token_a, &long_value),
        Get(&other_token_a, Some(&long_value)),
        Delete(&token_a, true),
        Get(&token_a, None),
        Delete(&token_a, false),
        Get(&token_b, Some("value-b-1")),
        Get(&credential_a, Some("credential-a")),
        Delete(&credential_a, true),
        Get(&credential_a, None),
        Get(&token_b, Some("value-b-1")),
        Delete(&token_b, true),
        Delete(&other_token_a, true),
        Get(&other_token_a, None),
    ];
    for (n, step) in steps.iter().enumerate() {
        let context = format!("{} store, step {n}: {step:?}", store.kind());
        match step {
            Set(key, value) => store
                .set(key, &Secret::new(*value))
                .unwrap_or_else(|e| panic!("{context}: {e}")),
            Get(key, want) => {
                let got = store.get(key).unwrap_or_else(|e| panic!("{context}: {e}"));
                assert_eq!(got.as_ref().map(|s| s.expose()), *want, "{context}");
                let held = store.holds(key).unwrap_or_else(|e| panic!("{context}: {e}"));
                assert_eq!(held, want.is_some(), "{context}: holds");
            }
            Delete(key, want) => {
                let got = store.delete(key).unwrap_or_else(|e| panic!("{context}: {e}"));
                assert_eq!(got, *want, "{context}");
            }
        }
        // Asked together, the keys get the answers each gets alone.
        let keys = [&token_a, &token_b, &credential_a, &other_token_a].map(|k| (*k).clone());
        let each: Vec<bool> = keys.iter().map(|k| store.holds(k).unwrap()).collect();
        assert_eq!(store.holds_each(&keys).unwrap(), each, "{context}: holds_each");
    }
}

#[test]
fn memory_store_keeps_the_contract() {
    contract(&MemoryStore::new());
}

#[test]
fn file_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract(&FileStore::open_in(&dir.path().join("secrets")).unwrap());
}

#[test]
fn secrets_with_the_index_keep_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = Secrets::with_stores(
        Box::new(MemoryStore::with_kind(StoreKind::Keyring)),
        vec![Box::new(MemoryStore::with_kind(StoreKind::File))],
        dir.path().join("index.json"),
    );
    contract(&secrets);
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn file_store_keeps_one_private_json_copy_of_each_secret() {
    let home = tempfile::tempdir().unwrap();
    let paths = Paths::under(home.path().to_path_buf());
    let store = FileStore::open(&paths).unwrap();
    assert_eq!(store.path(), FileStore::location(&paths));
    assert_eq!(store.path(), paths.data_dir.join("secrets").join("secrets.json"));
    let key = SecretKey::token("https://next.elitea.ai", Uuid::new_v4());
    let credential = SecretKey::credential("https://next.elitea.ai");
    store.set(&key, &Secret::new("first-value-0001")).unwrap();
    store.set(&key, &Secret::new("second-value-0002")).unwrap();
    store.set(&credential, &Secret::new("credential-0003")).unwrap();

    #[cfg(unix)]
    {
        assert_eq!(mode(store.path()), 0o600, "the secrets file is owner-only");
        assert_eq!(
            mode(store.path().parent().unwrap()),
            0o700,
            "its directory is owner-only"
        );
    }
    let text = fs::read_to_string(store.path()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "version": 1,
            "secrets": {
                key.account(): "second-value-0002",
                credential.account(): "credential-0003",
            }
        })
    );
    assert_eq!(text.matches("second-value-0002").count(), 1);
    assert!(!text.contains("first-value-0001"), "an overwritten value is gone");
    // No backup or temporary file holds a copy.
    for entry in fs::read_dir(store.path().parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        if path != store.path() {
            let other = fs::read(&path).unwrap();
            assert!(other.is_empty(), "{} holds data", path.display());
        }
    }
}

#[test]
fn file_store_reports_a_corrupt_file_and_leaves_it_alone() {
    // (what is in the file, a fragment the error must say)
    let cases = [
        ("{\"version\": 1, \"secrets\": {", "ends too early"),
        ("", "ends too early"),
        ("not json at all", "not valid JSON"),
        (
            "{\"version\": 1, \"secrets\": \"tok-LEAKED-VALUE\"}",
            "not what this tool wrote",
        ),
        (
            "{\"version\": 1, \"secrets\": {\"credential@x\": [\"tok-LEAKED-VALUE\"]}}",
            "not what this tool wrote",
        ),
        ("{\"version\": 9, \"secrets\": {}}", "version 9"),
    ];
    let key = SecretKey::credential("https://next.elitea.ai");
    for (content, says) in cases {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open_in(dir.path()).unwrap();
        fs::write(store.path(), content).unwrap();
        let errors = [
            store.get(&key).map(|_| ()).unwrap_err(),
            store.set(&key, &Secret::new("new-value")).unwrap_err(),
            store.delete(&key).map(|_| ()).unwrap_err(),
        ];
        for e in errors {
            assert_eq!(e.kind, StoreErrorKind::Corrupt, "{content:?}: {e}");
            assert!(e.message.contains(says), "{content:?}: {e}");
            assert!(e.message.contains("secrets.json"), "{content:?}: {e}");
            assert!(!e.message.contains("LEAKED"), "the error quotes the file: {e}");
        }
        assert_eq!(
            fs::read_to_string(store.path()).unwrap(),
            content,
            "the file was not overwritten"
        );
    }
}

/// Runs `f` and returns what it logged at `warn` and above on this thread.
fn captured_warnings(f: impl FnOnce()) -> String {
    common::logs::captured(tracing::Level::WARN, f)
}

/// A command may open the file store twice (to read, then to write): the warning comes once
/// per file, and again for another file.
#[test]
fn opening_the_file_store_warns_once_per_file() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let warning = "plain file, protected only by file permissions";
    for (dir, warns) in [(&first, true), (&first, false), (&second, true), (&second, false)] {
        let log = captured_warnings(|| {
            FileStore::open_in(dir.path()).unwrap();
        });
        assert_eq!(log.contains(warning), warns, "{log}");
    }
}

#[test]
fn auto_falls_back_to_the_file_when_no_keyring_works() {
    // (the keyring stand-in, the error kind its probe must report)
    let cases: Vec<(&str, FailingStore, StoreErrorKind)> = vec![
        (
            "absent",
            FailingStore::unavailable(StoreKind::Keyring),
            StoreErrorKind::Unavailable,
        ),
        (
            "locked",
            FailingStore::wrap(MemoryStore::with_kind(StoreKind::Keyring)).fail(
                Some(Op::Set),
                When::Always,
                StoreErrorKind::Denied,
            ),
            StoreErrorKind::Denied,
        ),
        (
            "waiting on a prompt",
            FailingStore::blocking(StoreKind::Keyring, Duration::from_secs(120)),
            StoreErrorKind::Timeout,
        ),
    ];
    // Long enough for the file store's fsyncs on a busy CI disk; far shorter than the stand-in
    // keyring's 120 s wait, so giving up on it is what ends its probe.
    let probe_timeout = Duration::from_secs(2);
    for (name, keyring, kind) in cases {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let mut secrets = None;
        let log = captured_warnings(|| {
            secrets = Some(
                Secrets::auto(
                    vec![
                        Box::new(keyring.clone()),
                        Box::new(FileStore::open_in(&dir.path().join("secrets")).unwrap()),
                    ],
                    dir.path().join("index.json"),
                    probe_timeout,
                )
                .unwrap(),
            );
        });
        let secrets = secrets.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{name}: the probe gave up in time"
        );
        assert_eq!(secrets.primary(), StoreKind::File, "{name}");
        assert!(secrets.is_fallback(), "{name}");
        let probes = secrets.probes();
        assert_eq!(probes.len(), 2, "{name}: {probes:?}");
        assert_eq!(probes[0].kind, StoreKind::Keyring);
        assert_eq!(
            probes[0].result.as_ref().unwrap_err().kind,
            kind,
            "{name}: {probes:?}"
        );
        assert_eq!(probes[1].result, Ok(()), "{name}");
        assert!(log.contains("no keyring works here"), "{name}: {log}");
        assert!(log.contains("plain file"), "{name}: {log}");

        let key = SecretKey::token("https://next.elitea.ai", Uuid::new_v4());
        secrets.set(&key, &Secret::new("fallback-value")).unwrap();
        assert_eq!(secrets.get(&key).unwrap().unwrap().expose(), "fallback-value");
        let file = fs::read_to_string(dir.path().join("secrets").join("secrets.json")).unwrap();
        assert!(
            file.contains("fallback-value"),
            "{name}: the value went to the file"
        );
    }
}

#[test]
fn auto_uses_the_first_store_that_works_and_keeps_the_rest_open() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = MemoryStore::with_kind(StoreKind::Keyring);
    let file = MemoryStore::with_kind(StoreKind::File);
    let secrets = Secrets::auto(
        vec![Box::new(keyring.clone()), Box::new(file.clone())],
        dir.path().join("index.json"),
        Duration::from_secs(3),
    )
    .unwrap();
    assert_eq!(secrets.primary(), StoreKind::Keyring);
    assert!(!secrets.is_fallback());
    assert_eq!(secrets.stores(), vec![StoreKind::Keyring, StoreKind::File]);
    assert_eq!(
        secrets.probes().len(),
        1,
        "stores after the first that works are not probed"
    );
    assert!(keyring.is_empty(), "the probe's throwaway secret is deleted");
    assert!(file.is_empty());
}

#[test]
fn auto_fails_clearly_when_nothing_works() {
    let dir = tempfile::tempdir().unwrap();
    let err = Secrets::auto(
        vec![
            Box::new(FailingStore::unavailable(StoreKind::Keyring)),
            Box::new(FailingStore::unavailable(StoreKind::File)),
        ],
        dir.path().join("index.json"),
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert_eq!(err.kind, StoreErrorKind::Unavailable);
    assert!(
        err.message.starts_with("no secret store works here: keyring: "),
        "{err}"
    );
    assert!(err.message.contains("; file: "), "{err}");
}

fn index_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_index_routes_each_secret_to_the_store_that_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("state").join("secrets-index.json");
    let keyring = MemoryStore::with_kind(StoreKind::Keyring);
    let file_dir = dir.path().join("secrets");
    let server = "https://next.elitea.ai";
    let (a, b) = (
        SecretKey::token(server, Uuid::new_v4()),
        SecretKey::token(server, Uuid::new_v4()),
    );
    let credential = SecretKey::credential(server);

    // Day 1: the keyring is locked, so `a` and the credential go to the file.
    let locked = FailingStore::wrap(keyring.clone()).fail(None, When::Always, StoreErrorKind::Denied);
    let day1 = Secrets::auto(
        vec![Box::new(locked), Box::new(FileStore::open_in(&file_dir).unwrap())],
        index.clone(),
        Duration::from_secs(1),
    )
    .unwrap();
    assert_eq!(day1.primary(), StoreKind::File);
    day1.set(&a, &Secret::new("value-a")).unwrap();
    day1.set(&credential, &Secret::new("value-credential")).unwrap();
    assert!(keyring.is_empty());

    // Day 2: the keyring works again. New secrets go there; the old ones are found in the file.
    let day2 = Secrets::auto(
        vec![
            Box::new(keyring.clone()),
            Box::new(FileStore::open_in(&file_dir).unwrap()),
        ],
        index.clone(),
        Duration::from_secs(1),
    )
    .unwrap();
    assert_eq!(day2.primary(), StoreKind::Keyring);
    day2.set(&b, &Secret::new("value-b")).unwrap();
    assert_eq!(day2.get(&a).unwrap().unwrap().expose(), "value-a");
    assert_eq!(day2.get(&b).unwrap().unwrap().expose(), "value-b");
    assert!(keyring.contains(&b) && !keyring.contains(&a));
    assert_eq!(
        index_json(&index),
        serde_json::json!({
            "version": 1,
            "secrets": { a.account(): "file", b.account(): "keyring", credential.account(): "file" }
        })
    );
    let index_text = fs::read_to_string(&index).unwrap();
    assert!(!index_text.contains("value-"), "the index holds no secret values");

    // Deleting goes to the store that holds the secret.
    assert!(day2.delete(&credential).unwrap());
    assert!(
        !fs::read_to_string(file_dir.join("secrets.json"))
            .unwrap()
            .contains("value-credential")
    );
    assert!(!day2.delete(&credential).unwrap());

    // Writing `a` again moves it to the keyring and drops the file's copy.
    day2.set(&a, &Secret::new("value-a-2")).unwrap();
    assert!(keyring.contains(&a));
    assert!(
        !fs::read_to_string(file_dir.join("secrets.json"))
            .unwrap()
            .contains("value-a")
    );
    assert_eq!(day2.get(&a).unwrap().unwrap().expose(), "value-a-2");
    assert_eq!(
        index_json(&index),
        serde_json::json!({ "version": 1, "secrets": { a.account(): "keyring", b.account(): "keyring" } })
    );
}

#[test]
fn a_secret_in_a_store_that_does_not_work_now_is_an_error_not_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("secrets-index.json");
    let keyring = MemoryStore::with_kind(StoreKind::Keyring);
    let key = SecretKey::token("https://next.elitea.ai", Uuid::new_v4());
    Secrets::with_stores(Box::new(keyring.clone()), vec![], index.clone())
        .set(&key, &Secret::new("kept-in-keyring"))
        .unwrap();

    // The keyring is locked in this run: the file store is primary.
    let locked = FailingStore::wrap(keyring.clone()).fail(None, When::Always, StoreErrorKind::Denied);
    let secrets = Secrets::auto(
        vec![
            Box::new(locked),
            Box::new(MemoryStore::with_kind(StoreKind::File)),
        ],
        index.clone(),
        Duration::from_secs(1),
    )
    .unwrap();
    let check = |e: StoreError| {
        assert_eq!(e.kind, StoreErrorKind::Denied, "{e}");
        assert!(e.message.contains("kept in the keyring store"), "{e}");
        assert!(e.message.contains(&key.account()), "{e}");
        assert!(!e.message.contains("kept-in-keyring"), "{e}");
    };
    check(secrets.get(&key).unwrap_err());
    check(secrets.delete(&key).unwrap_err());
    assert!(keyring.contains(&key), "nothing was deleted");
    assert_eq!(
        index_json(&index)["secrets"][key.account()],
        "keyring",
        "the index still knows"
    );

    // An explicit store uses only that store, and says why the secret is out of reach.
    let home = tempfile::tempdir().unwrap();
    let paths = Paths::under(home.path().to_path_buf());
    let only_file = Secrets::open(StoreChoice::Only(StoreKind::File), &paths).unwrap();
    fs::create_dir_all(&paths.state_dir).unwrap();
    fs::copy(&index, only_file.index_path().unwrap()).unwrap();
    let e = only_file.get(&key).unwrap_err();
    assert_eq!(e.kind, StoreErrorKind::Unavailable);
    assert!(
        e.message
            .contains("ELITEA_SECRET_STORE=file uses only the file store"),
        "{e}"
    );
}

#[test]
fn secrets_the_index_does_not_know_are_searched_in_every_store() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = MemoryStore::with_kind(StoreKind::Keyring);
    let file = MemoryStore::with_kind(StoreKind::File);
    let key = SecretKey::credential("https://next.elitea.ai");
    // Written before there was an index (or after it was removed).
    file.set(&key, &Secret::new("found-anyway")).unwrap();
    let broken = FailingStore::unavailable(StoreKind::Keyutils);
    let secrets = Secrets::with_stores(
        Box::new(keyring.clone()),
        vec![Box::new(broken), Box::new(file.clone())],
        dir.path().join("index.json"),
    );
    assert_eq!(secrets.get(&key).unwrap().unwrap().expose(), "found-anyway");
    let missing = SecretKey::credential("https://other.example");
    assert_eq!(
        secrets.get(&missing).unwrap(),
        None,
        "a broken other store is skipped, not an error"
    );
    assert!(secrets.delete(&key).unwrap());
    assert!(file.is_empty());
    assert!(!secrets.delete(&key).unwrap());
}

#[test]
fn a_failed_write_changes_neither_the_index_nor_the_stores() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index.json");
    let inner = MemoryStore::with_kind(StoreKind::Keyring);
    let flaky = FailingStore::wrap(inner.clone()).fail(Some(Op::Set), When::Nth(2), StoreErrorKind::Io);
    let secrets = Secrets::with_stores(Box::new(flaky.clone()), vec![], index.clone());
    let (a, b) = (
        SecretKey::credential("https://a.example"),
        SecretKey::credential("https://b.example"),
    );
    secrets.set(&a, &Secret::new("value-a")).unwrap();
    let e = secrets.set(&b, &Secret::new("value-b")).unwrap_err();
    assert_eq!(e.kind, StoreErrorKind::Io);
    assert!(e.message.contains("set call 2"), "{e}");
    assert!(!inner.contains(&b));
    assert_eq!(index_json(&index)["secrets"].as_object().unwrap().len(), 1);
    secrets.set(&b, &Secret::new("value-b")).unwrap();
    assert_eq!(flaky.calls(Op::Set), 3);
}

#[test]
fn a_failing_store_fails_the_calls_its_rules_name() {
    use Op::{Delete, Get, Set};
    let key = SecretKey::credential("https://a.example");
    // (rules, the calls made in order, which of them fail)
    type Case<'a> = (&'a [(Option<Op>, When)], &'a [Op], &'a [bool]);
    let cases: [Case; 6] = [
        (&[], &[Get, Set, Delete], &[false, false, false]),
        (&[(None, When::Always)], &[Get, Set, Delete], &[true, true, true]),
        (
            &[(Some(Get), When::Always)],
            &[Get, Set, Get],
            &[true, false, true],
        ),
        (&[(None, When::Nth(2))], &[Get, Set, Get], &[false, true, false]),
        (
            &[(Some(Set), When::Nth(2))],
            &[Set, Get, Set, Set],
            &[false, false, true, false],
        ),
        (
            &[(Some(Delete), When::FromNth(2))],
            &[Delete, Delete, Delete],
            &[false, true, true],
        ),
    ];
    for (rules, calls, fails) in cases {
        let mut store = FailingStore::wrap(MemoryStore::new());
        for (op, when) in rules {
            store = store.fail(*op, *when, StoreErrorKind::Unavailable);
        }
        let got: Vec<bool> = calls
            .iter()
            .map(|op| match op {
                Get => store.get(&key).is_err(),
                Set => store.set(&key, &Secret::new("v")).is_err(),
                Delete => store.delete(&key).is_err(),
            })
            .collect();
        assert_eq!(got, fails, "{rules:?}");
        assert_eq!(store.calls(Set), calls.iter().filter(|op| **op == Set).count());
    }
}

#[test]
fn the_store_choice_comes_from_elitea_secret_store() {
    const CHOICES: &str = "auto, keyring, keyutils, file, memory";
    let ok = [
        (None, StoreChoice::Auto),
        (Some(""), StoreChoice::Auto),
        (Some("  "), StoreChoice::Auto),
        (Some("auto"), StoreChoice::Auto),
        (Some("AUTO"), StoreChoice::Auto),
        (Some("keyring"), StoreChoice::Only(StoreKind::Keyring)),
        (Some(" Keyring "), StoreChoice::Only(StoreKind::Keyring)),
        (Some("keyutils"), StoreChoice::Only(StoreKind::Keyutils)),
        (Some("file"), StoreChoice::Only(StoreKind::File)),
        (Some("memory"), StoreChoice::Only(StoreKind::Memory)),
    ];
    for (value, want) in ok {
        assert_eq!(StoreChoice::from_env_value(value), Ok(want), "{value:?}");
    }
    for value in ["keychain", "files", "secret-service", "none"] {
        let e = StoreChoice::from_env_value(Some(value)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{STORE_ENV}={value:?} is not a secret store: use one of {}",
                CHOICES
            )
        );
    }
    assert_eq!(
        "auto".parse::<StoreKind>().unwrap_err().to_string(),
        "\"auto\" is not a secret store: use one of keyring, keyutils, file, memory"
    );
    for kind in StoreKind::ALL {
        assert_eq!(kind.to_string().parse::<StoreKind>(), Ok(kind));
        assert_eq!(
            StoreChoice::Only(kind).to_string().parse::<StoreChoice>(),
            Ok(StoreChoice::Only(kind))
        );
        assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{kind}\""));
        assert_eq!(
            serde_json::from_str::<StoreKind>(&format!("\"{kind}\"")).unwrap(),
            kind
        );
    }
    assert_eq!(StoreChoice::Auto.to_string(), "auto");
}

#[test]
fn secret_keys_map_to_keyring_accounts() {
    let uuid: Uuid = "3f2a4a8e-0d1c-4c55-9a7b-2f1e6d3c9b10".parse().unwrap();
    let cases = [
        (
            SecretKey::token("https://next.elitea.ai", uuid),
            "token:3f2a4a8e-0d1c-4c55-9a7b-2f1e6d3c9b10@https://next.elitea.ai",
        ),
        (
            SecretKey::credential("https://next.elitea.ai"),
            "credential@https://next.elitea.ai",
        ),
        // A server with an `@` still maps back: the uuid never has one.
        (
            SecretKey::token("https://user@host.example", uuid),
            "token:3f2a4a8e-0d1c-4c55-9a7b-2f1e6d3c9b10@https://user@host.example",
        ),
    ];
    for (key, account) in cases {
        assert_eq!(key.account(), account);
        assert_eq!(key.to_string(), account);
        assert_eq!(SecretKey::from_account(account), Some(key.clone()));
        assert_eq!(key.server(), account.split_once('@').unwrap().1);
    }
    for bad in ["token:not-a-uuid@x", "token:", "other@x", ""] {
        assert_eq!(SecretKey::from_account(bad), None, "{bad:?}");
    }
}

#[test]
fn an_explicit_choice_opens_that_store_without_probing() {
    let home = tempfile::tempdir().unwrap();
    let paths = Paths::under(home.path().to_path_buf());

    let file = Secrets::open(StoreChoice::Only(StoreKind::File), &paths).unwrap();
    assert_eq!((file.primary(), file.is_fallback()), (StoreKind::File, true));
    assert!(file.probes().is_empty());
    assert!(!FileStore::location(&paths).exists(), "no test write");
    assert_eq!(
        file.index_path(),
        Some(paths.state_dir.join("secrets-index.json").as_path())
    );

    let memory = Secrets::open(StoreChoice::Only(StoreKind::Memory), &paths).unwrap();
    assert_eq!(
        (memory.primary(), memory.is_fallback()),
        (StoreKind::Memory, false)
    );
    assert_eq!(
        memory.index_path(),
        None,
        "memory secrets are not indexed: they die with the process"
    );
    let key = SecretKey::credential("https://next.elitea.ai");
    memory.set(&key, &Secret::new("in-memory")).unwrap();
    assert_eq!(memory.get(&key).unwrap().unwrap().expose(), "in-memory");
    assert!(!paths.state_dir.exists());

    // The keyring may or may not exist where the tests run; either way the answer is clear.
    match Secrets::open(StoreChoice::Only(StoreKind::Keyring), &paths) {
        Ok(keyring) => assert_eq!(keyring.primary(), StoreKind::Keyring),
        Err(e) => {
            assert_eq!(e.kind, StoreErrorKind::Unavailable);
            assert!(
                e.message
                    .starts_with("ELITEA_SECRET_STORE=keyring asks for the keyring ("),
                "{e}"
            );
        }
    }
}

#[test]
fn auto_opens_a_working_store_on_this_machine() {
    let home = tempfile::tempdir().unwrap();
    let paths = Paths::under(home.path().to_path_buf());
    let started = Instant::now();
    let secrets = Secrets::open(StoreChoice::Auto, &paths).unwrap();
    eprintln!(
        "auto chose {} in {:?}: {:?}",
        secrets.primary().describe(),
        started.elapsed(),
        secrets.probes()
    );
    assert_ne!(secrets.primary(), StoreKind::Memory);
    assert_eq!(secrets.is_fallback(), secrets.primary() == StoreKind::File);
    let key = SecretKey::token(unique_server("auto"), Uuid::new_v4());
    secrets.set(&key, &Secret::new("auto-value")).unwrap();
    assert_eq!(secrets.get(&key).unwrap().unwrap().expose(), "auto-value");
    assert!(secrets.delete(&key).unwrap());
}

const CHILD_ENV: &str = "ELITEA_TEST_CHILD";

/// True in the child process a test started to run itself in a prepared environment.
fn is_child(test: &str) -> bool {
    std::env::var(CHILD_ENV).as_deref() == Ok(test)
}

/// How a test that re-ran itself in a child process ended.
enum Child {
    Passed(String),
    /// The environment could not be prepared (the wrapper exited 77): why.
    Unprepared(String),
}

/// Runs `test` of this test binary again in a child process, through `wrapper` (a shell script
/// that prepares the environment, exits 77 if it cannot, and ends with `exec "$@"`), with a
/// time limit. Panics with the child's output if the test failed there.
fn rerun_in(test: &str, wrapper: &str, env: &[(&str, &OsStr)], log_dir: &Path) -> Child {
    let log = log_dir.join("child.log");
    let out = fs::File::create(&log).unwrap();
    let mut command = Command::new("sh");
    command
        .args(["-c", wrapper, "sh"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test)
        .env("LOG_DIR", log_dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = fs::read_to_string(&log).unwrap_or_default();
    if status.code() == Some(77) {
        return Child::Unprepared(output);
    }
    assert!(
        status.success(),
        "{test} failed in its child process ({status}):\n{output}"
    );
    // A filter that matched nothing also exits 0: make sure the test ran.
    assert!(
        output.contains("1 passed"),
        "{test} did not run in its child process:\n{output}"
    );
    Child::Passed(output)
}

/// Starts a private D-Bus session with `gnome-keyring-daemon` (unlocked with a throwaway
/// password when `unlock`) and re-runs `test` inside it; `None` when the daemon is missing or does
/// not start (then the caller skips). The daemon keeps its keyrings in a temporary home.
fn rerun_with_gnome_keyring(test: &str, unlock: bool) -> Option<String> {
    let required = std::env::var("ELITEA_TEST_REQUIRE_SECRET_SERVICE").is_ok_and(|v| v == "1");
    let skip = |reason: String| {
        assert!(!required, "ELITEA_TEST_REQUIRE_SECRET_SERVICE=1, but {reason}");
        eprintln!("skipped: {reason}");
        None
    };
    if !cfg!(target_os = "linux") {
        return skip("the Secret Service tests run on Linux only".into());
    }
    for tool in ["dbus-run-session", "gnome-keyring-daemon"] {
        if which(tool).is_none() {
            return skip(format!(
                "{tool} is not installed (apt-get install dbus-daemon gnome-keyring)"
            ));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let runtime = dir.path().join("run");
    fs::create_dir_all(&home).unwrap();
    elitea_tokens::fsx::create_private_dir(&runtime).unwrap();
    let start = if unlock {
        r#"printf %s "$KEYRING_PASSWORD" | gnome-keyring-daemon --unlock --components=secrets"#
    } else {
        "gnome-keyring-daemon --start --components=secrets"
    };
    let wrapper = format!(
        r#"exec dbus-run-session -- sh -c '{start} >"$LOG_DIR/daemon.log" 2>&1 || exit 77
exec "$@"' sh "$@""#
    );
    let started = Instant::now();
    let outcome = rerun_in(
        test,
        &wrapper,
        &[
            ("HOME", home.as_os_str()),
            ("XDG_DATA_HOME", home.join(".local/share").as_os_str()),
            ("XDG_RUNTIME_DIR", runtime.as_os_str()),
            ("DBUS_SESSION_BUS_ADDRESS", OsStr::new("")),
            ("KEYRING_PASSWORD", OsStr::new("elitea-tests")),
        ],
        dir.path(),
    );
    match outcome {
        Child::Passed(output) => Some(format!("ran in {:?}\n{output}", started.elapsed())),
        Child::Unprepared(output) => {
            let daemon = fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
            skip(format!("gnome-keyring-daemon did not start: {daemon}{output}"))
        }
    }
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(tool))
        .find(|path| path.is_file())
}

/// Whether keyutils works in this process: a key can be written, read and deleted.
fn keyutils_works() -> Result<KeyutilsStore, String> {
    if !cfg!(target_os = "linux") {
        return Err("keyutils exists only on Linux".into());
    }
    let store = KeyutilsStore::open().map_err(|e| e.to_string())?;
    let key = SecretKey::token(unique_server("keyutils-check"), Uuid::new_v4());
    let checked = store
        .set(&key, &Secret::new("check"))
        .and_then(|()| store.get(&key));
    let _ = store.delete(&key);
    match checked {
        Ok(Some(_)) => Ok(store),
        Ok(None) => Err("a key written was not found".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs `body` with a working keyutils store. A process without a session keyring (no PAM
/// login: containers, CI) can add keys but not read them back; then the test re-runs itself
/// under `keyctl session -`, which gives it one. Skips when that is not possible either.
fn with_keyutils(test: &str, body: impl FnOnce(KeyutilsStore)) {
    match keyutils_works() {
        Ok(store) => return body(store),
        Err(e) if is_child(test) => panic!("keyutils does not work even in a new session keyring: {e}"),
        Err(e) if !cfg!(target_os = "linux") => return eprintln!("skipped: {e}"),
        Err(e) if which("keyctl").is_none() => {
            return eprintln!(
                "skipped: keyutils does not work in this process ({e}), \
                 and keyctl (apt-get install keyutils) is not there to start a session keyring"
            );
        }
        Err(e) => {
            eprintln!("keyutils does not work in this process ({e}); re-running under `keyctl session`")
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let wrapper = r#"keyctl session - true >"$LOG_DIR/keyctl.log" 2>&1 || exit 77
exec keyctl session - "$@""#;
    match rerun_in(test, wrapper, &[], dir.path()) {
        Child::Passed(output) => eprintln!("{test}: ran in a new session keyring\n{output}"),
        Child::Unprepared(_) => {
            let why = fs::read_to_string(dir.path().join("keyctl.log")).unwrap_or_default();
            eprintln!("skipped: keyutils does not work here, and `keyctl session` fails: {why}");
        }
    }
}

#[test]
fn keyutils_store_keeps_the_contract() {
    with_keyutils("keyutils_store_keeps_the_contract", |store| contract(&store));
}

#[test]
fn keyutils_secrets_outlive_the_process_that_wrote_them() {
    const TEST: &str = "keyutils_secrets_outlive_the_process_that_wrote_them";
    const READER: &str = "ELITEA_TEST_READ_ACCOUNT";
    if let Ok(account) = std::env::var(READER) {
        // The second process: read what the first wrote.
        let key = SecretKey::from_account(&account).unwrap();
        let value = KeyutilsStore::open().unwrap().get(&key).unwrap();
        assert_eq!(
            value.as_ref().map(|v| v.expose()),
            Some("written-by-another-process")
        );
        return;
    }
    with_keyutils(TEST, |store| {
        let key = SecretKey::token(unique_server("keyutils-across"), Uuid::new_v4());
        store
            .set(&key, &Secret::new("written-by-another-process"))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let account = key.account();
        let result = std::panic::catch_unwind(|| {
            rerun_in(
                TEST,
                r#"exec "$@""#,
                &[(READER, OsStr::new(&account))],
                dir.path(),
            )
        });
        store.delete(&key).unwrap();
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    });
}

/// The Secret Service under a private `dbus-run-session` and `gnome-keyring-daemon`, unlocked
/// with a throwaway password, with its keyrings in a temporary home.
#[test]
fn secret_service_store_keeps_the_contract() {
    const TEST: &str = "secret_service_store_keeps_the_contract";
    if is_child(TEST) {
        // Inside the D-Bus session.
        let store =
            KeyringStore::open().unwrap_or_else(|e| panic!("the Secret Service should be running: {e}"));
        contract(&store);
        // Other Secret Service clients see the item under the documented attributes and label.
        if which("secret-tool").is_some() {
            let (server, uuid) = (unique_server("interop"), Uuid::new_v4());
            let key = SecretKey::token(&server, uuid);
            store.set(&key, &Secret::new("seen-by-secret-tool")).unwrap();
            let attributes = ["service", "elitea-tokens", "username", &key.account()];
            let lookup = Command::new("secret-tool")
                .arg("lookup")
                .args(attributes)
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&lookup.stdout), "seen-by-secret-tool");
            let search = Command::new("secret-tool")
                .arg("search")
                .args(attributes)
                .output()
                .unwrap();
            let search = String::from_utf8_lossy(&search.stdout);
            assert!(
                search.contains(&format!("label = ELITEA token {uuid} on {server}")),
                "{search}"
            );
            store.delete(&key).unwrap();
            eprintln!("secret-tool finds the item by service and username, with its label");
        }
        let home = tempfile::tempdir().unwrap();
        let secrets = Secrets::open(StoreChoice::Auto, &Paths::under(home.path().to_path_buf())).unwrap();
        assert_eq!(secrets.primary(), StoreKind::Keyring, "{:?}", secrets.probes());
        assert!(!secrets.is_fallback());
        eprintln!(
            "auto picked {} in {:?}",
            secrets.primary().describe(),
            secrets.probes()[0].took
        );
        return;
    }
    if let Some(report) = rerun_with_gnome_keyring(TEST, true) {
        eprintln!("secret service: {report}");
    }
}

/// A Secret Service whose default keyring is locked (or missing) cannot take a secret without
/// a prompt nobody will answer: `auto` passes it over within the probe time.
#[test]
fn auto_passes_over_a_locked_secret_service() {
    const TEST: &str = "auto_passes_over_a_locked_secret_service";
    if is_child(TEST) {
        let home = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let secrets = Secrets::open(StoreChoice::Auto, &Paths::under(home.path().to_path_buf())).unwrap();
        let probes = secrets.probes();
        eprintln!(
            "locked keyring: auto picked {} in {:?}: {probes:?}",
            secrets.primary(),
            started.elapsed()
        );
        assert_ne!(secrets.primary(), StoreKind::Keyring, "{probes:?}");
        let keyring = probes[0].result.as_ref().unwrap_err();
        assert!(
            matches!(keyring.kind, StoreErrorKind::Denied | StoreErrorKind::Timeout),
            "{keyring}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        return;
    }
    if let Some(report) = rerun_with_gnome_keyring(TEST, false) {
        eprintln!("locked secret service: {report}");
    }
}

/// A daemon whose credential is in the Secret Service: the thread started with the process
/// reads it there and fetches the list, and the daemon goes on using the store from its own
/// runtime (a created token's value is kept there, and the list says so).
#[test]
fn the_daemon_starts_from_a_credential_in_the_secret_service() {
    const TEST: &str = "the_daemon_starts_from_a_credential_in_the_secret_service";
    if !is_child(TEST) {
        if let Some(report) = rerun_with_gnome_keyring(TEST, true) {
            eprintln!("secret service: {report}");
        }
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sandbox = common::SandboxProcess::start().await;
        let home = sandbox.home.path().display().to_string();
        let login = common::run_binary_with_stdin(
            &["--json", "login", "--server", &sandbox.server],
            &[("ELITEA_TOKENS_HOME", &home)],
            &format!("{}\n", sandbox.token),
        )
        .await;
        assert_eq!(login.code, 0, "{}", login.stderr);
        let login: serde_json::Value = serde_json::from_str(&login.stdout).unwrap();
        assert_eq!(login["secret_store"], "keyring", "{login}");

        let mut daemon = tokio::process::Command::new(common::BIN)
            .arg("serve")
            .env_remove("ELITEA_SERVER")
            .env_remove("ELITEA_TOKEN")
            .env("ELITEA_TOKENS_HOME", &home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let (stdout, stdin) = (daemon.stdout.take().unwrap(), daemon.stdin.take().unwrap());
        let mut client = common::lsp::TestClient::new(stdout, stdin);
        client.initialize(&[], serde_json::json!({})).await;
        let row = |listed: &serde_json::Value, name: &str| {
            listed["result"]["tokens"]
                .as_array()
                .and_then(|rows| rows.iter().find(|row| row["name"] == name).cloned())
                .unwrap_or_else(|| panic!("no `{name}` in {listed}"))
        };
        let listed = client.request("elitea/listTokens", serde_json::json!({})).await;
        assert_eq!(listed["result"]["total"], 1, "{listed}");

        let created = client
            .request(
                "elitea/createToken",
                serde_json::json!({"name": "kept-in-the-keyring"}),
            )
            .await;
        assert_eq!(created["result"]["storedIn"], "keyring", "{created}");
        let listed = client.request("elitea/listTokens", serde_json::json!({})).await;
        assert_eq!(listed["result"]["total"], 2, "{listed}");
        assert_eq!(row(&listed, "kept-in-the-keyring")["stored"], true, "{listed}");
        client.request("shutdown", serde_json::Value::Null).await;
        client.notify("exit", serde_json::json!(null)).await;
        let status = tokio::time::timeout(Duration::from_secs(10), daemon.wait())
            .await
            .expect("the daemon exits")
            .unwrap();
        assert!(status.success(), "{status}");
    });
}
