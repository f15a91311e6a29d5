//! VS Code `.vscode/settings.json`: sets, removes and reads ELITEA's keys in a file that belongs
//! to the user.
//!
//! The file is JSON with comments. Every edit keeps every comment and every byte of formatting we
//! do not touch (one exception: adding keys drops blank lines just inside the root object's
//! braces). Most writes are byte splices at the offsets jsonc-parser's fast AST parser reports:
//! values replaced where they stand, new keys appended after the last member the way the CST
//! lays them out (a unit test holds the two to the same output). The rarer shapes (a blank file,
//! a one-line object, blank lines inside the braces) go through jsonc-parser's concrete syntax
//! tree, which is several times slower to build on a large file.
//! Keys are flat (VS Code's `eliteacode.LLMAuthToken` is one key, not a path).

use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{
    CstContainerNode, CstInputValue, CstLeafNode, CstNode, CstObject, CstObjectProp, CstRootNode,
};
use serde_json::Value;

/// Where a settings file does not parse: 1-based line and column, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct JsoncError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// VS Code writes settings with four spaces; used when the file shows no indentation of its own.
const DEFAULT_INDENT: &str = "    ";

const BOM: char = '\u{feff}';

/// Sets each `(key, value)` in the root object of a settings.json text and returns the new text.
/// - An existing key keeps its position (and any comments around it); only its value changes.
///   A value that is already equal is left untouched byte for byte.
/// - New keys are appended at the end of the root object, in the given order, with the file's
///   indentation (detect tabs vs N spaces from the existing members; default 4 spaces, as VS Code
///   writes), and the file's line ending (CRLF files stay CRLF). A trailing comma the user had
///   stays valid JSONC.
/// - An empty or whitespace-only text (or a text holding only comments) becomes an object with the keys.
/// - A text that does not parse, or whose root is not an object, is an error; the caller never
///   overwrites such a file.
/// - The result ends with a newline if the input did (or was empty).
pub fn set_keys(text: &str, entries: &[(&str, Value)]) -> Result<String, JsoncError> {
    set_keys_keeping(text, entries, &[])
}

/// [`set_keys`], except that the keys in `kept` are only added, never changed: settings the
/// user owns once they are there (one parse of the file instead of reading them first).
pub fn set_keys_keeping(text: &str, entries: &[(&str, Value)], kept: &[&str]) -> Result<String, JsoncError> {
    let (bom, body) = split_bom(text);
    // The common shapes are edited as bytes at the offsets the fast AST parser reports; the
    // CST (several times slower to build) lays out everything else.
    if let Some(edited) = splice(body, entries, kept) {
        return Ok(if edited == body {
            text.to_string()
        } else {
            format!("{bom}{edited}")
        });
    }
    set_keys_in_tree(bom, body, entries, kept)
}

/// [`set_keys_keeping`] through jsonc-parser's CST: blank files, one-line objects, nested
/// values, and whatever the splice leaves alone.
fn set_keys_in_tree(
    bom: &str,
    body: &str,
    entries: &[(&str, Value)],
    kept: &[&str],
) -> Result<String, JsoncError> {
    let text = format!("{bom}{body}");
    let blank = body.trim().is_empty();
    // A blank file is rebuilt from nothing (its stray whitespace would otherwise sit around the
    // new object); a lone CRLF seeds the line ending the user's editor chose.
    let seed = match (blank, body.contains("\r\n")) {
        (true, true) => "\r\n",
        (true, false) => "",
        (false, _) => body,
    };
    let root = parse(seed)?;
    // A file with no value (blank, or only comments) gets a new object.
    let mut changed = root.value().is_none();
    let object = match root.value() {
        None => root.object_value_or_set(),
        Some(value) => value
            .as_object()
            .ok_or_else(|| not_an_object(&root, &value, body))?,
    };
    let mut new_entries = Vec::new();
    for (key, value) in entries {
        match last_prop(&object, key) {
            Some(_) if kept.contains(key) => {}
            Some(prop) if prop.to_serde_value().as_ref() == Some(value) => {}
            Some(prop) => {
                prop.set_value(to_input(value));
                changed = true;
            }
            None => new_entries.push((*key, value)),
        }
    }
    if !changed && new_entries.is_empty() {
        return Ok(text);
    }

    if !new_entries.is_empty() {
        let indent = detect_indent(&object);
        // jsonc-parser would lay out a one-line object with two spaces; break it up first and
        // indent every line it made with the file's (or VS Code's) indentation.
        if !object.children().iter().any(CstNode::is_newline) {
            object.ensure_multiline();
            for child in object.children() {
                if let CstNode::Leaf(CstLeafNode::Whitespace(whitespace)) = &child
                    && child.previous_sibling().is_some_and(|node| node.is_newline())
                {
                    whitespace.set_value(indent.clone());
                }
            }
        }
        for (key, value) in new_entries {
            // A placeholder first, so the line is indented before a nested value is laid out
            // relative to it.
            let prop = object.append(key, CstInputValue::Null);
            if let Some(CstNode::Leaf(CstLeafNode::Whitespace(whitespace))) = prop.previous_sibling() {
                whitespace.set_value(indent.clone());
            }
            prop.set_value(to_input(value));
        }
    }

    let ends_with_newline = blank || body.ends_with('\n');
    if !ends_with_newline {
        remove_trailing_newline(&root);
    }
    Ok(format!("{bom}{root}"))
}

/// Removes these keys from the root object (used when the user switches flavor), keeping the rest.
pub fn remove_keys(text: &str, keys: &[&str]) -> Result<String, JsoncError> {
    let (bom, body) = split_bom(text);
    let root = parse(body)?;
    let Some(object) = root_object(&root, body)? else {
        return Ok(text.to_string());
    };
    let mut changed = false;
    for prop in object.properties() {
        // Every occurrence goes: leaving an earlier duplicate would bring its value back to life.
        if prop
            .decoded_name()
            .is_some_and(|name| keys.contains(&name.as_str()))
        {
            prop.remove();
            changed = true;
        }
    }
    if !changed {
        return Ok(text.to_string());
    }
    Ok(format!("{bom}{root}"))
}

/// Reads the root object's values for these keys (absent keys are skipped), for noticing which
/// token a settings file holds. Comments and trailing commas are accepted.
pub fn read_keys(text: &str, keys: &[&str]) -> Result<Vec<(String, Value)>, JsoncError> {
    let (_, body) = split_bom(text);
    // The AST parser is several times faster than building the CST; the CST below is only
    // for files with no object (blank, only comments: no keys) and the precise error otherwise.
    if let Ok(Value::Object(map)) = jsonc_parser::parse_to_serde_value::<Value>(body, &options()) {
        return Ok(keys
            .iter()
            .filter_map(|key| Some((key.to_string(), map.get(*key)?.clone())))
            .collect());
    }
    let root = parse(body)?;
    let Some(object) = root_object(&root, body)? else {
        return Ok(Vec::new());
    };
    Ok(keys
        .iter()
        .filter_map(|key| {
            let value = last_prop(&object, key)?.to_serde_value()?;
            Some((key.to_string(), value))
        })
        .collect())
}

/// The text with each entry set by splicing bytes, or `None` for the shapes left to the CST.
///
/// A key that is there has its value's bytes replaced (the last of duplicate keys, as VS Code
/// reads it; an equal value is left byte for byte). New keys are written after the last member
/// exactly as the CST would append them: a comma after that member if it had none, then each
/// key on its own line with the members' indentation and the file's line ending, after any
/// comment on the comma's line, with a trailing comma when the object used one. Only a
/// multi-line object with members and scalar new values qualifies, without blank lines just
/// inside its braces (the CST drops those), with plain indentation and one kind of line ending.
fn splice(body: &str, entries: &[(&str, Value)], kept: &[&str]) -> Option<String> {
    use jsonc_parser::ast::Value as Ast;
    use jsonc_parser::common::Ranged;
    let parsed = jsonc_parser::parse_to_ast(body, &Default::default(), &options()).ok()?;
    let Some(Ast::Object(object)) = parsed.value else {
        return None;
    };
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut new_entries = Vec::new();
    for (i, (key, value)) in entries.iter().enumerate() {
        if entries[..i].iter().any(|(earlier, _)| earlier == key) {
            return None;
        }
        let Some(prop) = object.properties.iter().rfind(|p| p.name.as_str() == *key) else {
            new_entries.push((*key, value));
            continue;
        };
        if kept.contains(key) {
            continue;
        }
        let range = prop.value.range();
        let current = &body[range.start..range.end];
        let same = jsonc_parser::parse_to_serde_value::<Value>(current, &options())
            .is_ok_and(|current| &current == value);
        if !same {
            edits.push((range.start, range.end, serde_json::to_string(value).ok()?));
        }
    }
    if !new_entries.is_empty() {
        let last = object.properties.last()?;
        let (open, close) = (object.range.start, object.range.end - 1);
        let indent = members_indent(body, open, &object.properties)?;
        let newline = line_ending(body)?;
        let after = last.value.range().end;
        if new_entries
            .iter()
            .any(|(_, value)| value.is_array() || value.is_object())
            || opens_with_blank_line(&body[open + 1..close])
            || closes_with_blank_line(&body[after..close])
        {
            return None;
        }
        let trailing = trivia_then_comma(body, after, close)?;
        let mut insert = String::new();
        let at = match trailing {
            Some(comma) => comments_on_line(body, comma + 1, close),
            None => {
                edits.push((after, after, ",".to_string()));
                comments_on_line(body, after, close)
            }
        };
        // The CST keeps a trailing comma style: the new last member gets one if the old had one.
        let trailing_comma = trailing.is_some();
        for (i, (key, value)) in new_entries.iter().enumerate() {
            if i > 0 && !trailing_comma {
                insert.push(',');
            }
            insert.push_str(newline);
            insert.push_str(indent);
            insert.push_str(&serde_json::to_string(key).ok()?);
            insert.push_str(": ");
            insert.push_str(&serde_json::to_string(value).ok()?);
            if trailing_comma {
                insert.push(',');
            }
        }
        edits.push((at, at, insert));
    }
    edits.sort_by_key(|&(start, _, _)| start);
    let mut out = String::with_capacity(body.len() + edits.iter().map(|e| e.2.len()).sum::<usize>());
    let mut at = 0;
    for (start, end, replacement) in edits {
        out.push_str(&body[at..start]);
        out.push_str(&replacement);
        at = end;
    }
    out.push_str(&body[at..]);
    Some(out)
}

/// The indentation the CST path gives new members ([`detect_indent`]): that of the first member
/// starting its own line, or VS Code's four spaces when none does. `None` (leave it to the CST)
/// when that line starts with something other than spaces and tabs, or the indentation is empty.
fn members_indent<'t>(
    body: &'t str,
    open: usize,
    props: &[jsonc_parser::ast::ObjectProp],
) -> Option<&'t str> {
    use jsonc_parser::common::Ranged;
    for prop in props {
        let start = prop.range().start;
        let Some(line_start) = body[open..start].rfind('\n').map(|i| open + i + 1) else {
            continue;
        };
        let indent = &body[line_start..start];
        return (!indent.is_empty() && indent.bytes().all(|b| b == b' ' || b == b'\t')).then_some(indent);
    }
    Some(DEFAULT_INDENT)
}

/// The file's one kind of line ending; `None` for a file that mixes them.
fn line_ending(body: &str) -> Option<&'static str> {
    let crlf = body.matches("\r\n").count();
    match (crlf, body.matches('\n').count()) {
        (0, _) => Some("\n"),
        (crlf, lf) if crlf == lf => Some("\r\n"),
        _ => None,
    }
}

/// Whether the text just inside the open brace is a blank line (the CST removes it when it adds).
fn opens_with_blank_line(inside: &str) -> bool {
    starts_with_blank_line(inside.split('\n'))
}

/// Whether a blank line comes just before the close brace.
fn closes_with_blank_line(tail: &str) -> bool {
    starts_with_blank_line(tail.rsplit('\n'))
}

/// Lines in the order they are met from a brace: the rest of the brace's line is empty, and so
/// is a whole line after it.
fn starts_with_blank_line<'t>(mut lines: impl Iterator<Item = &'t str>) -> bool {
    let blank = |line: Option<&str>| line.is_some_and(|line| line.trim().is_empty());
    blank(lines.next()) && blank(lines.next()) && lines.next().is_some()
}

/// From `from` to the close brace there are only whitespace, comments and at most one comma.
/// `Some(Some(offset))` of that comma, `Some(None)` when there is none, `None` when the tail
/// holds no line break (a one-line object: the CST lays that out).
fn trivia_then_comma(body: &str, from: usize, close: usize) -> Option<Option<usize>> {
    let tail = &body[from..close];
    let mut comma = None;
    let mut newline = false;
    let mut i = 0;
    while i < tail.len() {
        let rest = &tail[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/")? + 2;
        } else {
            match rest.as_bytes()[0] {
                b',' if comma.is_none() => comma = Some(from + i),
                b'\n' => newline = true,
                b' ' | b'\t' | b'\r' => {}
                _ => return None,
            }
            i += 1;
        }
    }
    newline.then_some(comma)
}

/// Where new members go after `from` (just past a comma): after the comments that follow on
/// the same line, as the CST keeps a member's same-line comment with it.
fn comments_on_line(body: &str, from: usize, close: usize) -> usize {
    let tail = &body[from..close];
    let mut end = 0;
    let mut i = 0;
    while i < tail.len() {
        let rest = &tail[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
            // A line comment's own line break (and `\r`) stays after the new members' text.
            end = i - usize::from(tail[..i].ends_with('\r'));
            break;
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |j| j + 2);
            end = i;
        } else if rest.starts_with([' ', '\t']) {
            i += 1;
        } else {
            break;
        }
    }
    from + end
}

/// VS Code's own dialect: comments and trailing commas, nothing looser (a missing comma or a
/// single-quoted string is an error there too, so it is one here).
fn options() -> ParseOptions {
    ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

fn parse(text: &str) -> Result<CstRootNode, JsoncError> {
    CstRootNode::parse(text, &options()).map_err(|e| JsoncError {
        line: e.line_display(),
        column: e.column_display(),
        message: e.kind().to_string(),
    })
}

/// The root object, `None` for a file with no value at all (blank or only comments).
fn root_object(root: &CstRootNode, text: &str) -> Result<Option<CstObject>, JsoncError> {
    match root.value() {
        None => Ok(None),
        Some(value) => value
            .as_object()
            .map(Some)
            .ok_or_else(|| not_an_object(root, &value, text)),
    }
}

fn not_an_object(root: &CstRootNode, value: &CstNode, text: &str) -> JsoncError {
    // The CST keeps no offsets; the text before the value is the sum of the nodes before it.
    let offset: usize = root
        .children()
        .iter()
        .take(value.child_index())
        .map(|node| node.to_string().len())
        .sum();
    let (line, column) = line_column(text, offset);
    let found = match value {
        CstNode::Container(CstContainerNode::Array(_)) => "an array",
        CstNode::Leaf(CstLeafNode::StringLit(_)) => "a string",
        CstNode::Leaf(CstLeafNode::NumberLit(_)) => "a number",
        CstNode::Leaf(CstLeafNode::BooleanLit(_)) => "a boolean",
        CstNode::Leaf(CstLeafNode::NullKeyword(_)) => "null",
        _ => "not an object",
    };
    JsoncError {
        line,
        column,
        message: format!("the settings must be an object, found {found}"),
    }
}

/// 1-based line and column of a byte offset, counted as jsonc-parser counts them in its errors
/// (characters, with `\r\n` one line break).
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// VS Code honours the last of duplicate keys, so that is the one to read and update.
fn last_prop(object: &CstObject, key: &str) -> Option<CstObjectProp> {
    object
        .properties()
        .into_iter()
        .rfind(|prop| prop.decoded_name().as_deref() == Some(key))
}

/// The indentation of the root object's members, taken from the first member that starts its
/// own line (tabs, any number of spaces, or none); a file that shows none gets VS Code's four
/// spaces.
fn detect_indent(object: &CstObject) -> String {
    object
        .properties()
        .iter()
        .find_map(|prop| {
            prop.indent_text().or_else(|| {
                prop.previous_sibling()
                    .filter(CstNode::is_newline)
                    .map(|_| String::new())
            })
        })
        .unwrap_or_else(|| DEFAULT_INDENT.to_string())
}

/// Drops the line break jsonc-parser adds after a new root value, for a file that had none.
fn remove_trailing_newline(root: &CstRootNode) {
    if let Some(last) = root.children().last()
        && last.is_newline()
        && let CstNode::Leaf(leaf) = last.clone()
    {
        leaf.remove();
    }
}

fn split_bom(text: &str) -> (&str, &str) {
    match text.strip_prefix(BOM) {
        Some(body) => (&text[..BOM.len_utf8()], body),
        None => ("", text),
    }
}

fn to_input(value: &Value) -> CstInputValue {
    match value {
        Value::Null => CstInputValue::Null,
        Value::Bool(b) => CstInputValue::Bool(*b),
        Value::Number(n) => CstInputValue::Number(n.to_string()),
        Value::String(s) => CstInputValue::String(s.clone()),
        Value::Array(items) => CstInputValue::Array(items.iter().map(to_input).collect()),
        Value::Object(map) => {
            CstInputValue::Object(map.iter().map(|(k, v)| (k.clone(), to_input(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    //! The splice must write exactly what the CST writes, on every shape it accepts.

    use super::*;
    use serde_json::json;

    const NEW_KEYS: [(&str, &str); 3] = [
        ("eliteacode.LLMServerUrl", "https://next.elitea.ai"),
        ("eliteacode.LLMAuthToken", "test \"quoted\" \\ value"),
        ("eliteacode.integrationUid", "42_ünïcode"),
    ];

    fn entries(existing: &[&'static str]) -> Vec<(&'static str, Value)> {
        let mut entries: Vec<(&str, Value)> = NEW_KEYS.iter().map(|(k, v)| (*k, json!(v))).collect();
        entries.push(("eliteacode.projectId", json!(42)));
        entries.push(("eliteacode.verifySsl", json!(false)));
        // Keys the files may already hold, so edits and appends happen in one write.
        entries.extend(existing.iter().map(|key| (*key, json!("changed"))));
        entries
    }

    /// Shapes around the last member and the braces, each with what the splice must do.
    const SHAPES: &[(&str, &str, bool)] = &[
        ("plain", "{\n    \"a\": 1,\n    \"b\": \"x\"\n}\n", true),
        ("trailing comma", "{\n  \"a\": 1,\n  \"b\": 2,\n}\n", true),
        ("same-line comment", "{\n\t\"a\": 1 // one\n}\n", true),
        (
            "comment after the comma",
            "{\n    \"a\": 1, /* one */ // two\n}",
            true,
        ),
        (
            "comment on its own line",
            "{\n    \"a\": 1,\n    // \"b\": 2\n}\n",
            true,
        ),
        (
            "comment before a comma",
            "{\n    \"a\": 1 /* c */\n    ,\n}\n",
            true,
        ),
        ("crlf", "{\r\n    \"a\": 1 // one\r\n}\r\n", true),
        (
            "nested last value",
            "{\n  \"a\": {\n    \"b\": [1, 2]\n  }\n}\n",
            true,
        ),
        (
            "brace on the first member's line",
            "{ \"a\": 1,\n  \"b\": 2\n}\n",
            true,
        ),
        ("indented close brace", "{\n    \"a\": 1\n    }\n", true),
        (
            "comment above the object",
            "// settings\n{\n    \"a\": 1\n}\n",
            true,
        ),
        ("one line", "{ \"a\": 1 }\n", false),
        ("empty object", "{\n}\n", false),
        ("blank line at the end", "{\n    \"a\": 1\n\n}\n", false),
        ("blank line at the start", "{\n\n    \"a\": 1\n}\n", false),
        ("no indentation", "{\n\"a\": 1\n}\n", false),
        (
            "comment starts the first line",
            "{\n    /* c */ \"a\": 1\n}\n",
            false,
        ),
        ("mixed line endings", "{\r\n    \"a\": 1\n}\n", false),
        ("close brace after the value", "{\n    \"a\": 1}\n", false),
        ("not an object", "[1]\n", false),
    ];

    #[test]
    fn the_splice_writes_what_the_tree_writes() {
        for (shape, text, spliced) in SHAPES {
            for (existing, kept) in [(&[][..], &[][..]), (&["a"], &[]), (&["a"], &["a"])] {
                let entries = entries(existing);
                let fast = splice(text, &entries, kept);
                assert_eq!(fast.is_some(), *spliced, "{shape}: spliced or not");
                if let Some(fast) = fast {
                    let tree = set_keys_in_tree("", text, &entries, kept).unwrap();
                    assert_eq!(fast, tree, "{shape} (existing {existing:?}, kept {kept:?})");
                }
            }
        }
    }

    #[test]
    fn the_corpus_is_spliced_where_it_can_be_and_matches_the_tree() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vscode");
        let mut spliced = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let (_, body) = split_bom(&text);
            let entries = entries(&["editor.fontSize", "alitacode.projectId"]);
            let kept = ["editor.fontSize"];
            if let Some(fast) = splice(body, &entries, &kept) {
                spliced += 1;
                assert_eq!(fast, set_keys_in_tree("", body, &entries, &kept).unwrap());
            }
        }
        assert!(spliced >= 8, "only {spliced} of the corpus took the splice");
    }
}
