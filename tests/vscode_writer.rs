//! The VS Code settings writer against a corpus of users' settings files
//! (`tests/fixtures/vscode/*.jsonc`): what it writes (snapshots), and what it must never break.

use std::fs;
use std::path::{Path, PathBuf};

use elitea_tokens::ide::vscode::{JsoncError, read_keys, remove_keys, set_keys};
use jsonc_parser::ParseOptions;
use jsonc_parser::cst::CstRootNode;
use serde_json::{Map, Value, json};

const SERVER: &str = "https://next.elitea.ai";
const MODEL: &str = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0";
const UID: &str = "42_eu.anthropic.claude-sonnet-4-5-20250929-v1:0";
/// Shaped like an ELITEA token but plainly a test value.
const TOKEN: &str = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.test-claims.test-signature";

/// The 18 keys of the "both" flavor (legacy `alitacode` and current `eliteacode`), in the order the
/// web UI lists them.
fn both_flavors() -> Vec<(&'static str, Value)> {
    vec![
        ("alitacode.providerServerURL", json!(SERVER)),
        ("alitacode.LLMServerUrl", json!(SERVER)),
        ("alitacode.modelName", json!(MODEL)),
        ("alitacode.LLMModelName", json!(MODEL)),
        ("alitacode.authToken", json!(TOKEN)),
        ("alitacode.LLMAuthToken", json!(TOKEN)),
        ("alitacode.projectId", json!(42)),
        ("alitacode.integrationUid", json!(UID)),
        ("alitacode.defaultViewMode", json!("split")),
        ("alitacode.verifySsl", json!(false)),
        ("eliteacode.LLMServerUrl", json!(SERVER)),
        ("eliteacode.LLMModelName", json!(MODEL)),
        ("eliteacode.LLMAuthToken", json!(TOKEN)),
        ("eliteacode.projectId", json!(42)),
        ("eliteacode.integrationUid", json!(UID)),
        ("eliteacode.displayType", json!("split")),
        ("eliteacode.verifySsl", json!(false)),
        ("eliteacode.debug", json!(false)),
    ]
}

fn fixtures() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vscode");
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonc"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 15, "the corpus went missing: {paths:?}");
    paths
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap().to_str().unwrap().to_string();
            (name, fs::read_to_string(&path).unwrap())
        })
        .collect()
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/vscode/{name}.jsonc"));
    fs::read_to_string(path).unwrap()
}

/// The root object as VS Code would read it (the last of duplicate keys wins); `{}` for no value.
fn parsed(text: &str) -> Map<String, Value> {
    let root = CstRootNode::parse(text, &ParseOptions::default()).unwrap();
    match root.to_serde_value() {
        Some(Value::Object(map)) => map,
        None => Map::new(),
        Some(other) => panic!("root is not an object: {other}"),
    }
}

/// Every comment in a JSONC text, found by a scan that knows strings from comments.
fn comments(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let end = text[i..].find(['\r', '\n']).map_or(text.len(), |n| i + n);
                found.push(&text[i..end]);
                i = end;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..].find("*/").map_or(text.len(), |n| i + 2 + n + 2);
                found.push(&text[i..end]);
                i = end;
            }
            _ => i += 1,
        }
    }
    found
}

/// The text as the snapshot shows it: a carriage return is invisible in a `.snap` file (and insta
/// compares line endings loosely), so it is drawn as `␍`.
fn visible(text: &str) -> String {
    text.replace('\r', "␍")
}

#[test]
fn corpus_snapshots_and_invariants() {
    let entries = both_flavors();
    let owned: Vec<&str> = entries.iter().map(|(key, _)| *key).collect();
    for (name, input) in fixtures() {
        let result = set_keys(&input, &entries);
        if name.starts_with("broken_") {
            let err = result.expect_err(&name);
            insta::assert_snapshot!(name.clone(), format!("error: {err}"));
            continue;
        }
        let output = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        insta::assert_snapshot!(name.clone(), visible(&output));

        // Our keys hold the new values.
        let after = parsed(&output);
        for (key, value) in &entries {
            assert_eq!(after.get(*key), Some(value), "{name}: {key}");
        }
        // Every other key keeps its value, and none appears or vanishes.
        let before = parsed(&input);
        for (key, value) in &before {
            if !owned.contains(&key.as_str()) {
                assert_eq!(after.get(key), Some(value), "{name}: {key} changed");
            }
        }
        for key in after.keys() {
            assert!(
                owned.contains(&key.as_str()) || before.contains_key(key),
                "{name}: {key} appeared"
            );
        }
        // Every comment survives, character for character.
        for comment in comments(&input) {
            assert!(output.contains(comment), "{name}: lost comment {comment:?}");
        }
        // Strict JSONC (comments and trailing commas, nothing looser), as VS Code reads it.
        assert!(
            read_keys(&output, &owned).is_ok(),
            "{name}: output does not parse"
        );
        // Line endings and the final newline follow the input.
        if input.contains("\r\n") {
            assert!(
                !output.replace("\r\n", "").contains('\n'),
                "{name}: lone \\n in a CRLF file"
            );
        } else {
            assert!(!output.contains('\r'), "{name}: CR in an LF file");
        }
        let input_ends_with_newline = input.trim().is_empty() || input.ends_with('\n');
        assert_eq!(
            output.ends_with('\n'),
            input_ends_with_newline,
            "{name}: final newline"
        );
        // Writing again changes nothing.
        assert_eq!(
            set_keys(&output, &entries).unwrap(),
            output,
            "{name}: not idempotent"
        );
    }
}

#[test]
fn new_keys_take_the_files_indentation() {
    let entries = [("eliteacode.debug", json!(false))];
    let cases = [
        ("tabs", ",\n\t\"eliteacode.debug\": false\n}\n"),
        ("two_spaces", "],\n  \"eliteacode.debug\": false\n}\n"),
        ("typical", "background\n    \"eliteacode.debug\": false\n}\n"),
        ("empty", "{\n    \"eliteacode.debug\": false\n}\n"),
        ("empty_object", "{\n    \"eliteacode.debug\": false\n}\n"),
        ("single_line", "\n    \"eliteacode.debug\": false\n}\n"),
    ];
    for (name, tail) in cases {
        let output = set_keys(&fixture(name), &entries).unwrap();
        assert!(output.ends_with(tail), "{name}: {output:?}");
    }
    // A file that does not indent at all gets no indentation either.
    let output = set_keys("{\n\"a\": 1\n}\n", &entries).unwrap();
    assert_eq!(output, "{\n\"a\": 1,\n\"eliteacode.debug\": false\n}\n");
    // A one-line object is broken up, its comment included, with VS Code's indentation.
    let output = set_keys("{ /* mine */ \"a\": 1 }", &entries).unwrap();
    assert_eq!(
        output,
        "{\n    /* mine */ \"a\": 1,\n    \"eliteacode.debug\": false\n}"
    );
}

#[test]
fn a_file_without_a_value_keeps_its_comments_and_its_last_line() {
    let entries = [("eliteacode.debug", json!(false))];
    let object = "{\n    \"eliteacode.debug\": false\n}";
    assert_eq!(
        set_keys("// notes", &entries).unwrap(),
        format!("// notes\n{object}")
    );
    assert_eq!(
        set_keys("/* notes */\n", &entries).unwrap(),
        format!("/* notes */\n{object}\n")
    );
    assert_eq!(set_keys("  \n\t\n", &entries).unwrap(), format!("{object}\n"));
    assert_eq!(set_keys("", &entries).unwrap(), format!("{object}\n"));
}

#[test]
fn crlf_stays_crlf() {
    let output = set_keys(&fixture("crlf"), &both_flavors()).unwrap();
    assert!(
        output.contains("\r\n    \"eliteacode.debug\": false\r\n}\r\n"),
        "{output:?}"
    );
    assert_eq!(output.matches('\n').count(), output.matches("\r\n").count());
    // A blank file that was saved with a Windows line ending keeps it too.
    let output = set_keys("\r\n", &[("eliteacode.debug", json!(true))]).unwrap();
    assert_eq!(output, "{\r\n    \"eliteacode.debug\": true\r\n}\r\n");
}

#[test]
fn an_existing_key_changes_in_place_and_an_equal_one_not_at_all() {
    let input = fixture("old_keys");
    let output = set_keys(
        &input,
        &[
            ("eliteacode.LLMAuthToken", json!(TOKEN)),
            ("eliteacode.displayType", json!("split")),
        ],
    )
    .unwrap();
    // Same lines, same order; only the token's value differs, and the comment before it stays.
    let changed: Vec<(&str, &str)> = input
        .lines()
        .zip(output.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        changed,
        [(
            r#"    "eliteacode.LLMAuthToken": /* masked, does not work */ "...gnrJ6Qw","#,
            &*format!(r#"    "eliteacode.LLMAuthToken": /* masked, does not work */ "{TOKEN}","#)
        )]
    );
    assert_eq!(input.lines().count(), output.lines().count());

    // All values already equal: the text comes back byte for byte.
    let same = [
        ("eliteacode.displayType", json!("split")),
        ("eliteacode.projectId", json!(7)),
    ];
    assert_eq!(set_keys(&input, &same).unwrap(), input);
}

#[test]
fn a_duplicate_key_updates_the_last_occurrence() {
    let input = fixture("old_keys");
    let output = set_keys(&input, &[("eliteacode.LLMModelName", json!(MODEL))]).unwrap();
    assert!(
        output.contains(r#""eliteacode.LLMModelName": "gpt-4o","#),
        "{output}"
    );
    assert!(
        output.contains(&format!(r#""eliteacode.LLMModelName": "{MODEL}","#)),
        "{output}"
    );
    assert_eq!(
        read_keys(&output, &["eliteacode.LLMModelName"]).unwrap(),
        [("eliteacode.LLMModelName".to_string(), json!(MODEL))]
    );
}

#[test]
fn dots_are_part_of_the_key_not_nesting() {
    let output = set_keys(
        "{\n    \"eliteacode\": {\"debug\": true}\n}\n",
        &[("eliteacode.debug", json!(false))],
    )
    .unwrap();
    assert_eq!(
        output,
        "{\n    \"eliteacode\": {\"debug\": true},\n    \"eliteacode.debug\": false\n}\n"
    );
}

#[test]
fn a_trailing_comma_stays_valid() {
    let output = set_keys(&fixture("trailing_commas"), &[("eliteacode.debug", json!(false))]).unwrap();
    assert!(
        output.ends_with(
            "  \"typescript.tsdk\": \"node_modules/typescript/lib\",\n  \"eliteacode.debug\": false,\n}\n"
        ),
        "{output}"
    );
}

#[test]
fn object_values_are_laid_out_with_the_files_indentation() {
    let entries = [("eliteacode.extra", json!({"a": 1, "b": [true]}))];
    let output = set_keys(&fixture("tabs"), &entries).unwrap();
    assert!(
        output.ends_with("\t\"eliteacode.extra\": {\n\t\t\"a\": 1,\n\t\t\"b\": [true]\n\t}\n}\n"),
        "{output:?}"
    );
    let output = set_keys("", &entries).unwrap();
    assert_eq!(
        output,
        "{\n    \"eliteacode.extra\": {\n        \"a\": 1,\n        \"b\": [true]\n    }\n}\n"
    );
    assert_eq!(set_keys(&output, &entries).unwrap(), output);
}

#[test]
fn strings_are_escaped() {
    let value = "say \"hi\"\\ and\ttab — ünïcödé";
    let output = set_keys("{}", &[("eliteacode.note", json!(value))]).unwrap();
    assert_eq!(
        read_keys(&output, &["eliteacode.note"]).unwrap(),
        [("eliteacode.note".to_string(), json!(value))]
    );
}

#[test]
fn a_byte_order_mark_survives() {
    let output = set_keys(
        "\u{feff}{\n    \"a\": 1\n}\n",
        &[("eliteacode.debug", json!(false))],
    )
    .unwrap();
    assert_eq!(
        output,
        "\u{feff}{\n    \"a\": 1,\n    \"eliteacode.debug\": false\n}\n"
    );
}

#[test]
fn broken_files_say_where() {
    let entries = both_flavors();
    let err = set_keys(&fixture("broken_missing_comma"), &entries).unwrap_err();
    assert_eq!((err.line, err.column), (2, 26), "{err}");
    assert_eq!(err.message, "Expected comma");

    let err = set_keys(&fixture("broken_unterminated_string"), &entries).unwrap_err();
    assert_eq!((err.line, err.column), (3, 38), "{err}");
    assert_eq!(err.message, "Unterminated string literal");

    // A quote lost mid-file: the string runs on into the next line, and the error lands where
    // that stops making sense.
    let err = set_keys(&fixture("broken_lost_quote"), &entries).unwrap_err();
    assert_eq!((err.line, err.column), (4, 6), "{err}");

    let err = set_keys(&fixture("broken_root_array"), &entries).unwrap_err();
    assert_eq!(
        err,
        JsoncError {
            line: 2,
            column: 1,
            message: "the settings must be an object, found an array".to_string()
        }
    );
    assert_eq!(
        err.to_string(),
        "line 2, column 1: the settings must be an object, found an array"
    );

    // Looser dialects VS Code rejects are rejected here too.
    for text in [
        "{'a': 1}",
        "{a: 1}",
        "{\"a\": 0x10}",
        "\"just a string\"",
        "{} {}",
    ] {
        assert!(set_keys(text, &entries).is_err(), "{text}");
    }
    // The same errors from the other two functions.
    let broken = fixture("broken_missing_comma");
    let err = set_keys(&broken, &entries).unwrap_err();
    assert_eq!(remove_keys(&broken, &["a"]).unwrap_err(), err);
    assert_eq!(read_keys(&broken, &["a"]).unwrap_err(), err);
    let array = fixture("broken_root_array");
    assert!(remove_keys(&array, &["a"]).is_err());
    assert!(read_keys(&array, &["a"]).is_err());
}

#[test]
fn remove_keys_takes_out_only_ours() {
    let input = fixture("old_keys");
    let legacy = [
        "alitacode.providerServerURL",
        "alitacode.authToken",
        "alitacode.projectId",
    ];
    let output = remove_keys(&input, &legacy).unwrap();
    assert_eq!(
        output,
        r#"{
    "editor.fontSize": 13,
    // ELITEA Code, set up from the web UI's download in March
    "eliteacode.LLMServerUrl": "https://eye.projectalita.ai",
    "eliteacode.LLMAuthToken": /* masked, does not work */ "...gnrJ6Qw",
    "eliteacode.projectId": 7,
    "eliteacode.displayType": "split",
    "eliteacode.verifySsl": true, // our proxy has a real certificate
    "eliteacode.debug": false,
    // pasted twice; VS Code reads the second one
    "eliteacode.LLMModelName": "gpt-4o",
    "eliteacode.LLMModelName": "gpt-5-mini",
    "telemetry.telemetryLevel": "off"
}
"#
    );

    // Both occurrences of a duplicate go, or the first would come back to life.
    let output = remove_keys(&input, &["eliteacode.LLMModelName"]).unwrap();
    assert!(!output.contains("LLMModelName"), "{output}");

    // The last member: the comma before it goes too.
    let output = remove_keys(&input, &["telemetry.telemetryLevel"]).unwrap();
    assert!(output.ends_with("\"gpt-5-mini\"\n}\n"), "{output}");

    // Nothing to remove: byte for byte the same.
    for (name, text) in fixtures()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("broken_"))
    {
        assert_eq!(remove_keys(&text, &["no.such.key"]).unwrap(), text, "{name}");
    }
}

#[test]
fn remove_undoes_set() {
    let entries = both_flavors();
    let keys: Vec<&str> = entries.iter().map(|(key, _)| *key).collect();
    for name in [
        "typical",
        "tabs",
        "crlf",
        "trailing_commas",
        "two_spaces",
        "unicode",
    ] {
        let input = fixture(name);
        let written = set_keys(&input, &entries).unwrap();
        let removed = remove_keys(&written, &keys).unwrap();
        let mut expected = parsed(&input);
        expected.retain(|key, _| !keys.contains(&key.as_str()));
        assert_eq!(parsed(&removed), expected, "{name}");
        for comment in comments(&input) {
            assert!(removed.contains(comment), "{name}: lost comment {comment:?}");
        }
    }
    // Our own keys only, in a file we made: what is left is an empty object.
    let written = set_keys("", &entries).unwrap();
    assert_eq!(remove_keys(&written, &keys).unwrap(), "{}\n");
}

#[test]
fn read_keys_finds_the_token_in_place() {
    let input = fixture("old_keys");
    let found = read_keys(
        &input,
        &[
            "eliteacode.LLMAuthToken",
            "alitacode.authToken",
            "alitacode.LLMAuthToken",
            "eliteacode.verifySsl",
        ],
    )
    .unwrap();
    assert_eq!(
        found,
        [
            ("eliteacode.LLMAuthToken".to_string(), json!("...gnrJ6Qw")),
            ("alitacode.authToken".to_string(), json!("...gnrJ6Qw")),
            ("eliteacode.verifySsl".to_string(), json!(true)),
        ]
    );
    // Comments, trailing commas, and files with no value at all.
    assert_eq!(
        read_keys(&fixture("trailing_commas"), &["search.exclude"]).unwrap(),
        [(
            "search.exclude".to_string(),
            json!({"**/node_modules": true, "**/dist": true})
        )]
    );
    for name in ["empty", "blank", "only_comments", "empty_object"] {
        assert_eq!(
            read_keys(&fixture(name), &["eliteacode.LLMAuthToken"]).unwrap(),
            [],
            "{name}"
        );
    }
    // A commented-out key is not a key.
    assert_eq!(
        read_keys(&fixture("typical"), &["eliteacode.LLMAuthToken"]).unwrap(),
        []
    );
}
