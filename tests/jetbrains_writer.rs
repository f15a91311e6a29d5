//! The JetBrains writer against a corpus of realistic `.idea` files in `tests/fixtures/jetbrains`.
//! Every well-formed fixture is rendered for both flavors, snapshotted, and checked for what the
//! snapshots cannot show at a glance: values read back exactly, nothing else in the file moved,
//! and a second write changes nothing. Fixtures named `broken_*` must be refused.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use elitea_tokens::ide::jetbrains::{JetBrainsFlavor, JetBrainsSettings, XmlError, read, render};
use quick_xml::events::Event;
use quick_xml::reader::Reader;

const FLAVORS: [JetBrainsFlavor; 2] = [JetBrainsFlavor::Legacy, JetBrainsFlavor::Current];

const MODEL: &str = r#"a<b&"c'"#;
const SERVER: &str = "https://elitea.example.com/api?tenant=acme&region=eu";

/// Values chosen to need escaping: the web UI would have written a broken file with them.
fn settings() -> JetBrainsSettings {
    JetBrainsSettings {
        display_type: "SPLIT".into(),
        integration_name: "Project 42".into(),
        integration_uid: format!("42_{MODEL}"),
        llm_custom_model_enabled: true,
        llm_custom_model_name: MODEL.into(),
        llm_server_url: SERVER.into(),
        project_id: 42,
    }
}

/// The eight options `settings()` must produce, written out independently of the library.
fn our_options(flavor: JetBrainsFlavor) -> BTreeMap<String, String> {
    let provider = match flavor {
        JetBrainsFlavor::Legacy => "ALITA_EYE",
        JetBrainsFlavor::Current => "ELITEA_EYE",
    };
    [
        ("displayType", "SPLIT".to_owned()),
        ("integrationName", "Project 42".to_owned()),
        ("integrationUid", format!("42_{MODEL}")),
        ("llmCustomModelEnabled", "true".to_owned()),
        ("llmCustomModelName", MODEL.to_owned()),
        ("llmServerUrl", SERVER.to_owned()),
        ("projectId", "42".to_owned()),
        ("provider", provider.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn tag(flavor: JetBrainsFlavor) -> &'static str {
    match flavor {
        JetBrainsFlavor::Legacy => "legacy",
        JetBrainsFlavor::Current => "current",
    }
}

struct Fixture {
    name: String,
    /// `None`: no file yet.
    text: Option<String>,
}

fn corpus() -> Vec<Fixture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jetbrains");
    let mut fixtures: Vec<Fixture> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "xml"))
        .map(|path| Fixture {
            name: path.file_stem().unwrap().to_string_lossy().into_owned(),
            text: Some(std::fs::read_to_string(&path).unwrap()),
        })
        .collect();
    fixtures.sort_by(|a, b| a.name.cmp(&b.name));
    fixtures.insert(
        0,
        Fixture {
            name: "no_file".into(),
            text: None,
        },
    );
    fixtures
}

fn is_broken(fixture: &Fixture) -> bool {
    fixture.name.starts_with("broken_")
}

/// A `<component>` directly under the root: its `name` and its exact text.
#[derive(Debug, PartialEq)]
struct ComponentText {
    name: String,
    range: Range<usize>,
    text: String,
}

/// The root's components, found with quick-xml independently of the writer.
fn components(xml: &str) -> Vec<ComponentText> {
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let mut reader = Reader::from_str(xml);
    let mut depth = 0;
    let mut out = Vec::new();
    loop {
        let start = reader.buffer_position() as usize;
        let event = reader.read_event().unwrap();
        match event {
            Event::Start(ref e) | Event::Empty(ref e) if depth == 1 && e.name().as_ref() == "component" => {
                let name = e.try_get_attribute("name").unwrap().unwrap().value.into_owned();
                if matches!(event, Event::Start(_)) {
                    reader.read_to_end(e.name()).unwrap();
                }
                let end = reader.buffer_position() as usize;
                out.push(ComponentText {
                    name,
                    range: start..end,
                    text: xml[start..end].to_owned(),
                });
            }
            Event::Start(_) => depth += 1,
            Event::End(_) => depth -= 1,
            Event::Eof => return out,
            _ => {}
        }
    }
}

fn comments(xml: &str) -> Vec<String> {
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    loop {
        let start = reader.buffer_position() as usize;
        match reader.read_event().unwrap() {
            Event::Comment(_) => out.push(xml[start..reader.buffer_position() as usize].to_owned()),
            Event::Eof => return out,
            _ => {}
        }
    }
}

#[test]
fn writes_every_fixture() {
    let settings = settings();
    for fixture in corpus().iter().filter(|f| !is_broken(f)) {
        for flavor in FLAVORS {
            let case = format!("{}_{}", fixture.name, tag(flavor));
            let input = fixture.text.as_deref();
            let output = render(input, flavor, &settings).unwrap_or_else(|e| panic!("{case}: {e}"));
            insta::assert_snapshot!(case.as_str(), visible(&output));
            check_output(&case, input.unwrap_or(""), &output, flavor);
        }
    }
}

fn check_output(case: &str, input: &str, output: &str, flavor: JetBrainsFlavor) {
    let ours = flavor.component();

    // Our eight values read back exactly, next to whatever else the plugin keeps there.
    let mut expected: BTreeMap<String, String> = read(input, flavor).unwrap().unwrap_or_default();
    expected.extend(our_options(flavor));
    assert_eq!(read(output, flavor).unwrap(), Some(expected), "{case}: options");

    // The web UI's bug, fixed: special characters are escaped, in the spelling quick-xml uses.
    assert!(
        output.contains(r#"value="a&lt;b&amp;&quot;c&apos;""#),
        "{case}: model escaped"
    );
    assert!(
        output.contains("tenant=acme&amp;region=eu"),
        "{case}: URL escaped"
    );

    // Other components survive byte-for-byte, in order; ours appears exactly once.
    let before = components(input);
    let after = components(output);
    let others = |list: &[ComponentText]| -> Vec<(String, String)> {
        let list = list.iter().filter(|c| c.name != ours);
        list.map(|c| (c.name.clone(), c.text.clone())).collect()
    };
    assert_eq!(others(&after), others(&before), "{case}: other components");
    assert_eq!(
        after.iter().filter(|c| c.name == ours).count(),
        1,
        "{case}: one component"
    );

    // When our component was there, everything around it is untouched.
    if let (Some(old), Some(new)) = (
        before.iter().find(|c| c.name == ours),
        after.iter().find(|c| c.name == ours),
    ) {
        let (input, output) = (strip_bom(input), strip_bom(output));
        assert_eq!(
            output[..new.range.start],
            input[..old.range.start],
            "{case}: text before"
        );
        assert_eq!(
            output[new.range.end..],
            input[old.range.end..],
            "{case}: text after"
        );
    }

    for comment in comments(input) {
        assert!(output.contains(&comment), "{case}: lost comment {comment}");
    }
    if let Some(decl) = input.lines().next().filter(|line| line.contains("<?xml")) {
        assert!(output.starts_with(decl), "{case}: declaration");
    }
    assert_eq!(
        input.starts_with('\u{feff}'),
        output.starts_with('\u{feff}'),
        "{case}: BOM"
    );

    // Line endings are the file's own, down to the last line's.
    if !input.trim().is_empty() {
        assert_eq!(
            input.ends_with('\n'),
            output.ends_with('\n'),
            "{case}: final newline"
        );
    }
    let lf_only = output.replace("\r\n", "");
    if input.contains("\r\n") {
        assert!(!lf_only.contains('\n'), "{case}: a bare LF in a CRLF file");
    } else {
        assert!(!output.contains('\r'), "{case}: CR in an LF file");
    }

    // A second write with the same settings is a no-op.
    let again = render(Some(output), flavor, &settings()).unwrap();
    assert_eq!(again, output, "{case}: not idempotent");
}

/// Snapshots normalise line endings and a BOM is invisible: show both, since keeping them matters.
fn visible(text: &str) -> String {
    text.replace('\r', "␍").replace('\u{feff}', "[BOM]")
}

fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

#[test]
fn rejects_broken_files() {
    // Where each problem is, as an editor shows it (1-based line, column).
    let expected_positions = [
        ("broken_missing_root_end", (2, 1)),
        ("broken_root_not_project", (2, 1)),
        ("broken_truncated", (5, 5)),
        ("broken_unclosed_component", (5, 1)),
        ("broken_webui_unescaped", (5, 75)),
    ];
    let settings = settings();
    let mut seen = 0;
    for fixture in corpus().iter().filter(|f| is_broken(f)) {
        let input = fixture.text.as_deref().unwrap();
        let mut errors = Vec::new();
        for flavor in FLAVORS {
            let error: XmlError = render(Some(input), flavor, &settings).expect_err(&fixture.name);
            assert_eq!(
                read(input, flavor),
                Err(error.clone()),
                "{}: read agrees",
                fixture.name
            );
            let lines: Vec<&str> = input.split('\n').collect();
            assert!(
                error.line >= 1 && error.line <= lines.len(),
                "{}: {error}",
                fixture.name
            );
            let width = lines[error.line - 1].chars().count();
            assert!(
                error.column >= 1 && error.column <= width + 1,
                "{}: {error}",
                fixture.name
            );
            errors.push(error);
        }
        assert_eq!(
            errors[0], errors[1],
            "{}: same error for both flavors",
            fixture.name
        );
        let error = &errors[0];
        let (_, position) = expected_positions
            .iter()
            .find(|(name, _)| *name == fixture.name)
            .unwrap_or_else(|| panic!("{}: add its expected position", fixture.name));
        assert_eq!((error.line, error.column), *position, "{}: {error}", fixture.name);
        insta::assert_snapshot!(fixture.name.as_str(), error.to_string());
        seen += 1;
    }
    assert_eq!(seen, expected_positions.len());
}

#[test]
fn a_new_file_is_exactly_the_web_ui_layout() {
    let settings = JetBrainsSettings {
        display_type: "SPLIT".into(),
        integration_name: "Project 1".into(),
        integration_uid: "1_gpt-5-mini".into(),
        llm_custom_model_enabled: true,
        llm_custom_model_name: "gpt-5-mini".into(),
        llm_server_url: "https://next.elitea.ai".into(),
        project_id: 123,
    };
    let expected = r#"<?xml version="1.0" encoding="UTF-8"?>
<project version="4">
  <component name="AlitaSettings">
    <option name="displayType" value="SPLIT" />
    <option name="integrationName" value="Project 1" />
    <option name="integrationUid" value="1_gpt-5-mini" />
    <option name="llmCustomModelEnabled" value="true" />
    <option name="llmCustomModelName" value="gpt-5-mini" />
    <option name="llmServerUrl" value="https://next.elitea.ai" />
    <option name="projectId" value="123" />
    <option name="provider" value="ALITA_EYE" />
  </component>
</project>
"#;
    assert_eq!(
        render(None, JetBrainsFlavor::Legacy, &settings).unwrap(),
        expected
    );
    let current = expected
        .replace("AlitaSettings", "EliteASettings")
        .replace("ALITA_EYE", "ELITEA_EYE");
    assert_eq!(
        render(None, JetBrainsFlavor::Current, &settings).unwrap(),
        current
    );
    for blank in ["", "\n", "  \r\n"] {
        assert_eq!(
            render(Some(blank), JetBrainsFlavor::Current, &settings).unwrap(),
            current
        );
    }
}

#[test]
fn flavors_name_the_file_component_and_provider() {
    use JetBrainsFlavor::*;
    assert_eq!(
        [Legacy.file_name(), Legacy.component(), Legacy.provider()],
        ["alita.xml", "AlitaSettings", "ALITA_EYE"]
    );
    assert_eq!(
        [Current.file_name(), Current.component(), Current.provider()],
        ["elitea.xml", "EliteASettings", "ELITEA_EYE"]
    );
}

#[test]
fn awkward_values_read_back_exactly() {
    let mut settings = settings();
    for value in [
        "tab\there",
        "two\nlines",
        "cr\r\nlf",
        "  spaced  ",
        "ünïcødé ✓",
        "&amp; already",
        "",
    ] {
        settings.llm_custom_model_name = value.to_owned();
        let output = render(None, JetBrainsFlavor::Current, &settings).unwrap();
        let options = read(&output, JetBrainsFlavor::Current).unwrap().unwrap();
        assert_eq!(options["llmCustomModelName"], value, "{output}");
        assert_eq!(
            output.lines().count(),
            13,
            "a value must not break the layout: {output}"
        );
    }
}

#[test]
fn every_copy_of_a_duplicated_option_is_set() {
    let input = "<project>\n  <component name=\"EliteASettings\">\n    <option name=\"projectId\" value=\"1\" />\n    <option name=\"projectId\" value=\"2\" />\n  </component>\n</project>\n";
    let output = render(Some(input), JetBrainsFlavor::Current, &settings()).unwrap();
    assert_eq!(
        output
            .matches(r#"<option name="projectId" value="42" />"#)
            .count(),
        2,
        "{output}"
    );
    assert_eq!(output.matches("name=\"projectId\"").count(), 2, "{output}");
}

#[test]
fn only_our_component_is_read() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jetbrains/extra_option.xml"),
    )
    .unwrap();
    let current = read(&text, JetBrainsFlavor::Current).unwrap().unwrap();
    assert_eq!(current["displayType"], "REPLACE");
    assert_eq!(current["showInlineHints"], "false");
    // Nested `<option>`s inside a list belong to the list, not to the component.
    assert!(!current.contains_key(""), "{current:?}");
    let legacy = read(&text, JetBrainsFlavor::Legacy).unwrap().unwrap();
    assert_eq!(legacy["llmServerUrl"], "https://old.elitea.example/?a=1&b=2");
    assert!(
        !legacy.contains_key("integrationName"),
        "an option without a value is not read"
    );
    assert_eq!(read("<project/>", JetBrainsFlavor::Current).unwrap(), None);
    assert_eq!(read("", JetBrainsFlavor::Current).unwrap(), None);
}

#[test]
fn other_malformations_are_refused_where_they_are() {
    let cases = [
        ("<project/>\n<project/>\n", (2, 1)),
        ("<project/>\ntrailing text\n", (2, 1)),
        ("  <?xml version=\"1.0\"?>\n<project/>", (1, 3)),
        ("<project>\n  <!-- a -- b -->\n</project>", (2, 10)),
        ("<project>\n  <component name=\"a<b\" />\n</project>", (2, 21)),
        (
            "<project>\n  <component name=\"x\" name=\"y\" />\n</project>",
            (2, 23),
        ),
        ("<project>\n  <component name=x />\n</project>", (2, 19)),
        ("<project>&nbsp;</project>", (1, 10)),
        ("<project>\n  <option value=\"&bogus;\" />\n</project>", (2, 18)),
        ("<!-- only a comment -->\n", (2, 1)),
        ("</project>", (1, 1)),
    ];
    for (input, position) in cases {
        let error = render(Some(input), JetBrainsFlavor::Current, &settings()).expect_err(input);
        assert_eq!((error.line, error.column), position, "{input:?}: {error}");
    }
}
