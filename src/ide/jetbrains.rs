//! JetBrains IDE settings: ELITEA's component in `.idea/alita.xml` (legacy plugin) or
//! `.idea/elitea.xml` (current plugin).
//!
//! The file belongs to the IDE as much as to us, so it is edited, never re-serialised: quick-xml
//! only locates byte ranges, and the new text is the old text with a few splices (a changed
//! `value`, a missing `<option>`, a missing component). Everything else — other components, other
//! options, comments, the declaration, quoting and whitespace — survives byte-for-byte.

use std::collections::BTreeMap;
use std::ops::Range;

use quick_xml::XmlVersion;
use quick_xml::escape::{EscapeError, escape, resolve_predefined_entity};
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

/// Which plugin generation the file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JetBrainsFlavor {
    /// `.idea/alita.xml`, read by the plugin before the ELITEA rename.
    Legacy,
    /// `.idea/elitea.xml`.
    Current,
}

impl JetBrainsFlavor {
    /// The file's name inside `.idea/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Legacy => "alita.xml",
            Self::Current => "elitea.xml",
        }
    }

    /// The `name` of our `<component>`.
    pub fn component(self) -> &'static str {
        match self {
            Self::Legacy => "AlitaSettings",
            Self::Current => "EliteASettings",
        }
    }

    /// The value of the `provider` option.
    pub fn provider(self) -> &'static str {
        match self {
            Self::Legacy => "ALITA_EYE",
            Self::Current => "ELITEA_EYE",
        }
    }
}

/// The eight options, as the web UI writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JetBrainsSettings {
    /// `SPLIT`, `APPEND`, ...: the upper-case of the VS Code `displayType`.
    pub display_type: String,
    /// `Project <project_id>`.
    pub integration_name: String,
    /// `<project_id>_<model name>`.
    pub integration_uid: String,
    pub llm_custom_model_enabled: bool,
    pub llm_custom_model_name: String,
    pub llm_server_url: String,
    pub project_id: i64,
}

impl JetBrainsSettings {
    /// The options in the web UI's order, `provider` last; values unescaped.
    fn options(&self, flavor: JetBrainsFlavor) -> [(&'static str, String); 8] {
        [
            ("displayType", self.display_type.clone()),
            ("integrationName", self.integration_name.clone()),
            ("integrationUid", self.integration_uid.clone()),
            ("llmCustomModelEnabled", self.llm_custom_model_enabled.to_string()),
            ("llmCustomModelName", self.llm_custom_model_name.clone()),
            ("llmServerUrl", self.llm_server_url.clone()),
            ("projectId", self.project_id.to_string()),
            ("provider", flavor.provider().to_owned()),
        ]
    }
}

/// Why a file cannot be edited safely, at a 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct XmlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// What a new file starts from; our component is then added like in any other file, so a fresh
/// file and an edited one cannot drift apart. Gives exactly the web UI's layout.
const EMPTY_PROJECT: &str =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<project version=\"4\">\n</project>\n";

/// IntelliJ's own indentation unit, for files that give no hint.
const DEFAULT_INDENT: &str = "  ";

/// The file's new text. `existing` is the current file (`None`, empty or blank = no file yet: the
/// web UI's layout). An existing file keeps everything but our eight values; our component or
/// missing options are added with the file's own indentation and line endings. A file that is not
/// well formed, or whose root is not `<project>`, is an error.
pub fn render(
    existing: Option<&str>,
    flavor: JetBrainsFlavor,
    settings: &JetBrainsSettings,
) -> Result<String, XmlError> {
    let (bom, body) = split_bom(existing.unwrap_or(""));
    if is_blank(body) {
        return render(Some(EMPTY_PROJECT), flavor, settings);
    }
    let doc = scan(body, flavor.component())?;
    let style = Style::detect(body);
    let wanted = settings.options(flavor);
    let root_indent = indent_at(body, doc.root.start).unwrap_or("");
    // Siblings set the indentation; without any, one unit deeper than the parent.
    let component_indent = last_indent(body, &doc.root_children)
        .map_or_else(|| format!("{root_indent}{}", style.unit), str::to_owned);
    let edits = match &doc.component {
        Some(component) => set_options(body, component, &wanted, &component_indent, &style),
        None => {
            let block = component_block(flavor, &wanted, &component_indent, &style);
            vec![insert_children(
                body,
                &doc.root,
                ROOT,
                root_indent,
                &[block],
                style.eol,
            )]
        }
    };
    Ok(format!("{bom}{}", apply(body, edits)))
}

/// Our component exists: each option's value is set in place, missing options go at its end.
fn set_options(
    src: &str,
    component: &Component,
    wanted: &[(&str, String)],
    fallback_indent: &str,
    style: &Style,
) -> Vec<Edit> {
    let component_indent = indent_at(src, component.elem.start).unwrap_or(fallback_indent);
    let option_indent = last_indent(src, &component.children)
        .map_or_else(|| format!("{component_indent}{}", style.unit), str::to_owned);
    let mut edits = Vec::new();
    let mut missing = Vec::new();
    for (name, value) in wanted {
        let mut found = false;
        // Every copy of a duplicated option is set, so no reader can pick a stale one.
        for option in component.options.iter().filter(|o| o.name == *name) {
            found = true;
            match &option.value {
                // Already right: leave its bytes (quoting, entity spelling) alone.
                Some(current) if current.text == *value => {}
                Some(current) => edits.push(Edit::new(current.range.clone(), escape_attr(value))),
                None => edits.push(Edit::new(
                    option.name_end..option.name_end,
                    format!(" value=\"{}\"", escape_attr(value)),
                )),
            }
        }
        if !found {
            missing.push(format!("{option_indent}{}", option_tag(name, value)));
        }
    }
    if !missing.is_empty() {
        edits.push(insert_children(
            src,
            &component.elem,
            COMPONENT,
            component_indent,
            &missing,
            style.eol,
        ));
    }
    edits
}

/// Our whole component, as the web UI lays it out, indented by `indent`.
fn component_block(
    flavor: JetBrainsFlavor,
    wanted: &[(&str, String)],
    indent: &str,
    style: &Style,
) -> String {
    let Style { eol, unit } = style;
    let mut block = format!("{indent}<{COMPONENT} name=\"{}\">", flavor.component());
    for (name, value) in wanted {
        block.push_str(&format!("{eol}{indent}{unit}{}", option_tag(name, value)));
    }
    block.push_str(&format!("{eol}{indent}</{COMPONENT}>"));
    block
}

/// Reads our component's options back (name → unescaped value). `Ok(None)` when the component is
/// absent (or the file is empty). Options without a `value` attribute are left out.
pub fn read(existing: &str, flavor: JetBrainsFlavor) -> Result<Option<BTreeMap<String, String>>, XmlError> {
    let (_, body) = split_bom(existing);
    if is_blank(body) {
        return Ok(None);
    }
    let doc = scan(body, flavor.component())?;
    Ok(doc.component.map(|component| {
        component
            .options
            .into_iter()
            .filter_map(|option| Some((option.name, option.value?.text)))
            .collect()
    }))
}

const ROOT: &str = "project";
const COMPONENT: &str = "component";
const OPTION: &str = "option";

/// `<option name=".." value=".." />`, spaced as IntelliJ writes it.
fn option_tag(name: &str, value: &str) -> String {
    format!(
        "<{OPTION} name=\"{}\" value=\"{}\" />",
        escape_attr(name),
        escape_attr(value)
    )
}

/// quick-xml's escape (`<>&'"` and CR), plus LF and TAB: an XML reader turns literal ones in an
/// attribute into spaces, and a value must read back exactly as written.
fn escape_attr(value: &str) -> String {
    let escaped = escape(value);
    if escaped.contains(['\n', '\t']) {
        escaped.replace('\n', "&#10;").replace('\t', "&#9;")
    } else {
        escaped.into_owned()
    }
}

/// One splice: replace `range` of the old text with `text` (an insertion when empty).
struct Edit {
    range: Range<usize>,
    text: String,
}

impl Edit {
    fn new(range: Range<usize>, text: String) -> Self {
        Self { range, text }
    }
}

fn apply(src: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|edit| edit.range.start);
    let mut out = String::with_capacity(src.len() + edits.iter().map(|e| e.text.len()).sum::<usize>());
    let mut at = 0;
    for edit in edits {
        debug_assert!(edit.range.start >= at, "edits overlap");
        out.push_str(&src[at..edit.range.start]);
        out.push_str(&edit.text);
        at = edit.range.end;
    }
    out.push_str(&src[at..]);
    out
}

/// Adds `items` (already indented, possibly several lines each) as the last children of `parent`.
fn insert_children(
    src: &str,
    parent: &Elem,
    tag: &str,
    parent_indent: &str,
    items: &[String],
    eol: &str,
) -> Edit {
    match parent.close {
        Some(close) => {
            let line = line_start(src, close);
            if line > parent.open_end && src[line..close].chars().all(is_indent_char) {
                // `</tag>` on its own line: new lines go just above it.
                let text = items.iter().map(|item| format!("{item}{eol}")).collect();
                Edit::new(line..line, text)
            } else {
                // `<tag ...></tag>` or `...<last/></tag>` on one line: break the line.
                let mut text: String = items.iter().map(|item| format!("{eol}{item}")).collect();
                text.push_str(&format!("{eol}{parent_indent}"));
                Edit::new(close..close, text)
            }
        }
        None => {
            // `<tag .../>` becomes `<tag ...>`, the items, `</tag>`; its attributes stay as written.
            let open = &src[parent.start..parent.open_end];
            let head = open
                .strip_suffix("/>")
                .unwrap_or(open)
                .trim_end_matches(is_xml_space);
            let mut text = format!("{head}>");
            for item in items {
                text.push_str(&format!("{eol}{item}"));
            }
            text.push_str(&format!("{eol}{parent_indent}</{tag}>"));
            Edit::new(parent.start..parent.open_end, text)
        }
    }
}

/// The file's line ending and indentation unit, so added lines look like their neighbours.
struct Style {
    eol: &'static str,
    unit: String,
}

impl Style {
    fn detect(src: &str) -> Self {
        let eol = match src.find('\n') {
            Some(i) if src[..i].ends_with('\r') => "\r\n",
            _ => "\n",
        };
        let mut unit: Option<String> = None;
        for line in src.lines() {
            let rest = line.trim_start_matches(is_indent_char);
            let indent = &line[..line.len() - rest.len()];
            // Only markup lines: text or CDATA lines (JSON in workspace.xml) say nothing.
            if indent.is_empty() || !rest.starts_with('<') {
                continue;
            }
            if indent.starts_with('\t') {
                unit = Some("\t".to_owned());
                break;
            }
            if indent.chars().all(|c| c == ' ') && unit.as_ref().is_none_or(|u| indent.len() < u.len()) {
                unit = Some(indent.to_owned());
            }
        }
        Self {
            eol,
            unit: unit.unwrap_or_else(|| DEFAULT_INDENT.to_owned()),
        }
    }
}

fn is_indent_char(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_blank(src: &str) -> bool {
    src.chars().all(is_xml_space)
}

fn split_bom(src: &str) -> (&str, &str) {
    match src.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", src),
    }
}

fn line_start(src: &str, pos: usize) -> usize {
    src[..pos].rfind('\n').map_or(0, |i| i + 1)
}

/// The whitespace before `pos` on its line, when nothing else precedes it there.
fn indent_at(src: &str, pos: usize) -> Option<&str> {
    let before = &src[line_start(src, pos)..pos];
    before.chars().all(is_indent_char).then_some(before)
}

/// The indentation of the last of `starts` that begins its own line.
fn last_indent<'a>(src: &'a str, starts: &[usize]) -> Option<&'a str> {
    starts.iter().rev().find_map(|&start| indent_at(src, start))
}

// ---- scanning -----------------------------------------------------------------------------------

/// Where an element is: its start tag spans `start..open_end`; `close` is where `</..>` starts,
/// `None` for a self-closing element.
#[derive(Debug, Clone, Default)]
struct Elem {
    start: usize,
    open_end: usize,
    close: Option<usize>,
}

#[derive(Debug)]
struct Value {
    /// The raw value between the quotes.
    range: Range<usize>,
    /// Unescaped and normalised, as an XML reader (and the plugin) sees it.
    text: String,
}

#[derive(Debug)]
struct OptionElem {
    name: String,
    /// Just after the `name` attribute's closing quote: where a missing `value` goes.
    name_end: usize,
    value: Option<Value>,
}

#[derive(Debug)]
struct Component {
    elem: Elem,
    /// Starts of the child elements, for their indentation.
    children: Vec<usize>,
    options: Vec<OptionElem>,
}

#[derive(Debug)]
struct Doc {
    root: Elem,
    root_children: Vec<usize>,
    /// The first `<component name="{ours}">` directly under `<project>`.
    component: Option<Component>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Root,
    Ours,
    Other,
}

struct Frame {
    name: String,
    start: usize,
    role: Role,
}

struct Attr {
    key: String,
    range: Range<usize>,
    text: String,
}

/// Parses the whole file, checking it is well formed, and notes the byte ranges we may edit.
fn scan(src: &str, component_name: &str) -> Result<Doc, XmlError> {
    let mut reader = Reader::from_str(src);
    reader.config_mut().check_comments = true;
    let mut version = XmlVersion::Implicit1_0;
    let mut has_doctype = false;
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Elem> = None;
    let mut root_children = Vec::new();
    let mut component: Option<Component> = None;

    loop {
        let start = to_usize(reader.buffer_position());
        let event = reader
            .read_event()
            .map_err(|e| error_at(src, to_usize(reader.error_position()), e.to_string()))?;
        let end = to_usize(reader.buffer_position());
        match event {
            Event::Start(ref tag) | Event::Empty(ref tag) => {
                let self_closing = matches!(event, Event::Empty(_));
                let name = tag.name().as_ref().to_owned();
                let attrs = attributes(src, start, tag, version)?;
                let elem = Elem {
                    start,
                    open_end: end,
                    close: None,
                };
                let role = match stack.len() {
                    0 if root.is_some() => {
                        return Err(error_at(
                            src,
                            start,
                            "a second root element; the file may hold only one `<project>`",
                        ));
                    }
                    0 if name != ROOT => {
                        let message = format!("the root element is `<{name}>`, expected `<{ROOT}>`");
                        return Err(error_at(src, start, message));
                    }
                    0 => {
                        root = Some(elem);
                        Role::Root
                    }
                    1 => {
                        root_children.push(start);
                        let ours = name == COMPONENT
                            && component.is_none()
                            && attrs.iter().any(|a| a.key == "name" && a.text == component_name);
                        if ours {
                            component = Some(Component {
                                elem,
                                children: Vec::new(),
                                options: Vec::new(),
                            });
                            Role::Ours
                        } else {
                            Role::Other
                        }
                    }
                    _ => {
                        if let (Some(component), Some(Frame { role: Role::Ours, .. })) =
                            (component.as_mut(), stack.last())
                        {
                            component.children.push(start);
                            if name == OPTION {
                                component.options.extend(option_elem(attrs));
                            }
                        }
                        Role::Other
                    }
                };
                if !self_closing {
                    stack.push(Frame { name, start, role });
                }
            }
            Event::End(_) => {
                // quick-xml has already matched the name against the open element.
                let frame = stack
                    .pop()
                    .ok_or_else(|| error_at(src, start, "a closing tag with no open element"))?;
                let closed = match frame.role {
                    Role::Root => root.as_mut(),
                    Role::Ours => component.as_mut().map(|c| &mut c.elem),
                    Role::Other => None,
                };
                if let Some(elem) = closed {
                    elem.close = Some(start);
                }
            }
            Event::Text(_) => {
                let text = &src[start..end];
                if stack.is_empty()
                    && let Some(offset) = text.find(|c| !is_xml_space(c))
                {
                    return Err(error_at(src, start + offset, outside_root(root.is_some())));
                }
            }
            Event::GeneralRef(ref reference) => {
                if stack.is_empty() {
                    return Err(error_at(src, start, outside_root(root.is_some())));
                }
                let known = match reference.resolve_char_ref() {
                    Ok(Some(_)) => true,
                    Ok(None) => has_doctype || resolve_predefined_entity(&src[start + 1..end - 1]).is_some(),
                    Err(e) => return Err(error_at(src, start, e.to_string())),
                };
                if !known {
                    let message = format!("unknown entity `{}`", &src[start..end]);
                    return Err(error_at(src, start, message));
                }
            }
            Event::CData(_) if stack.is_empty() => {
                return Err(error_at(src, start, outside_root(root.is_some())));
            }
            Event::Decl(ref decl) => {
                if start != 0 {
                    return Err(error_at(
                        src,
                        start,
                        "the XML declaration must be at the very start",
                    ));
                }
                version = decl
                    .xml_version()
                    .map_err(|e| error_at(src, start, e.to_string()))?;
            }
            Event::DocType(_) => {
                if root.is_some() {
                    return Err(error_at(src, start, "DOCTYPE after the root element"));
                }
                has_doctype = true;
            }
            Event::CData(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => {
                if let Some(open) = stack.last() {
                    let message = format!("`<{}>` is not closed before the end of the file", open.name);
                    return Err(error_at(src, open.start, message));
                }
                let Some(root) = root else {
                    return Err(error_at(
                        src,
                        end,
                        format!("no root element; expected `<{ROOT}>`"),
                    ));
                };
                return Ok(Doc {
                    root,
                    root_children,
                    component,
                });
            }
        }
    }
}

fn outside_root(after: bool) -> &'static str {
    if after {
        "content after the end of the root element `<project>`"
    } else {
        "content before the root element `<project>`"
    }
}

fn option_elem(attrs: Vec<Attr>) -> Option<OptionElem> {
    let mut name = None;
    let mut value = None;
    for attr in attrs {
        match attr.key.as_str() {
            // +1: past the closing quote.
            "name" => name = Some((attr.text, attr.range.end + 1)),
            "value" => {
                value = Some(Value {
                    range: attr.range,
                    text: attr.text,
                })
            }
            _ => {}
        }
    }
    let (name, name_end) = name?;
    Some(OptionElem {
        name,
        name_end,
        value,
    })
}

/// Every attribute of a start tag, checked (quotes, duplicates, `<`, references) and unescaped.
fn attributes(
    src: &str,
    tag_start: usize,
    tag: &BytesStart,
    version: XmlVersion,
) -> Result<Vec<Attr>, XmlError> {
    // quick-xml reports attribute problems relative to the text after `<`.
    let content_start = tag_start + 1;
    let mut out = Vec::new();
    for attr in tag.attributes() {
        let attr = attr.map_err(|e| attr_error(src, content_start, e))?;
        // quick-xml gives slices, not offsets; a reader over `&str` borrows them from `src`.
        let raw: &str = &attr.value;
        let at = offset_within(src, raw)
            .ok_or_else(|| error_at(src, tag_start, "attribute value not found in the source"))?;
        if let Some(i) = raw.find('<') {
            return Err(error_at(
                src,
                at + i,
                "`<` in an attribute value must be written `&lt;`",
            ));
        }
        let text = attr.normalized_value(version).map_err(|e| match e {
            quick_xml::Error::Escape(EscapeError::UnterminatedEntity(r)) => error_at(
                src,
                at + r.start,
                "`&` in an attribute value must be written `&amp;`",
            ),
            quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(r, name)) => {
                let amp = raw[..r.start].rfind('&').unwrap_or(0);
                error_at(src, at + amp, format!("unknown entity `&{name};`"))
            }
            other => error_at(src, at, other.to_string()),
        })?;
        out.push(Attr {
            key: attr.key.as_ref().to_owned(),
            range: at..at + raw.len(),
            text: text.into_owned(),
        });
    }
    Ok(out)
}

fn attr_error(src: &str, base: usize, error: AttrError) -> XmlError {
    let (pos, message) = match error {
        AttrError::ExpectedEq(p) => (p, "an attribute name must be followed by `=`".to_owned()),
        AttrError::ExpectedValue(p) => (p, "`=` must be followed by a quoted value".to_owned()),
        AttrError::UnquotedValue(p) => (p, "an attribute value must be in quotes".to_owned()),
        AttrError::ExpectedQuote(p, q) => {
            (p, format!("an attribute value lacks its closing `{}`", q as char))
        }
        AttrError::Duplicated(p, _) => (p, "the same attribute twice in one tag".to_owned()),
    };
    error_at(src, base + pos, message)
}

/// Where `inner` (a slice of `outer`) starts in `outer`.
fn offset_within(outer: &str, inner: &str) -> Option<usize> {
    let start = inner.as_ptr().addr().checked_sub(outer.as_ptr().addr())?;
    (start + inner.len() <= outer.len()).then_some(start)
}

fn to_usize(position: u64) -> usize {
    usize::try_from(position).unwrap_or(usize::MAX)
}

/// An error at byte `offset`, as the 1-based line and column (in characters) an editor shows.
fn error_at(src: &str, offset: usize, message: impl Into<String>) -> XmlError {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line_begin = line_start(src, offset);
    XmlError {
        line: before.matches('\n').count() + 1,
        column: before[line_begin..].chars().count() + 1,
        message: message.into(),
    }
}
