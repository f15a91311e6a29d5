//! VS Code `.vscode/settings.json`: sets, removes and reads ELITEA's keys in a file that belongs
//! to the user.
//!
//! The file is JSON with comments. Edits go through jsonc-parser's concrete syntax tree, which
//! keeps every comment and every byte of formatting we do not touch (one exception: appending
//! drops blank lines just inside the root object's braces). When every key is already there
//! (rotation, re-applying), the values' own bytes are replaced at the offsets the AST parser
//! reports, which is several times faster on a large file and touches nothing else.
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
    let (bom, body) = split_bom(text);
    // Rotation and re-applying only change values that are already there: replace exactly
    // their bytes, found with the fast AST parser. Adding keys needs the CST's layout.
    if let Some(replaced) = replace_in_place(body, entries) {
        return Ok(if replaced == body {
            text.to_string()
        } else {
            format!("{bom}{replaced}")
        });
    }
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
            Some(prop) if prop.to_serde_value().as_ref() == Some(value) => {}
            Some(prop) => {
                prop.set_value(to_input(value));
                changed = true;
            }
            None => new_entries.push((*key, value)),
        }
    }
    if !changed && new_entries.is_empty() {
        return Ok(text.to_string());
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

/// The text with each entry's value replaced where it stands (the last of duplicate keys, as
/// VS Code reads it), or `None` when a key is missing or the text does not parse as an object
/// (the CST path adds keys and reports errors). Equal values are left byte for byte.
fn replace_in_place(body: &str, entries: &[(&str, Value)]) -> Option<String> {
    use jsonc_parser::ast::Value as Ast;
    use jsonc_parser::common::Ranged;
    let parsed = jsonc_parser::parse_to_ast(body, &Default::default(), &options()).ok()?;
    let Some(Ast::Object(object)) = parsed.value else {
        return None;
    };
    let mut edits = Vec::new();
    for (key, value) in entries {
        let prop = object.properties.iter().rfind(|p| p.name.as_str() == *key)?;
        let range = prop.value.range();
        let current = &body[range.start..range.end];
        let same = jsonc_parser::parse_to_serde_value::<Value>(current, &options())
            .is_ok_and(|current| &current == value);
        if !same {
            edits.push((range.start, range.end, serde_json::to_string(value).ok()?));
        }
    }
    edits.sort_by_key(|&(start, _, _)| start);
    let mut out = String::with_capacity(body.len() + 64);
    let mut at = 0;
    for (start, end, replacement) in edits {
        out.push_str(&body[at..start]);
        out.push_str(&replacement);
        at = end;
    }
    out.push_str(&body[at..]);
    Some(out)
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
