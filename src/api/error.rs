//! One error type for every way a call to the server can fail.

pub use crate::error::ErrorKind;

/// A failed call, with a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// The HTTP status, when the server answered at all.
    pub status: Option<u16>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
            status: None,
        }
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Worth another try for a call that changes nothing.
    pub(crate) fn is_transient(&self) -> bool {
        match self.kind {
            ErrorKind::Unreachable => true,
            ErrorKind::ServerError => matches!(self.status, Some(502..=504)),
            _ => false,
        }
    }
}

/// What serde_json found wrong with an answer, and where, without the text it found: its
/// "invalid type" and "invalid value" messages quote a string they met (in a token's answer
/// that string can be a value), and a field's own parser may quote a character of it in
/// backticks (uuid's "found `X` at 3"). Field names in backticks are kept.
pub(crate) fn json_problem(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let mut shown = String::with_capacity(message.len());
    let mut quote = None;
    let mut escaped = false;
    for c in message.chars() {
        match quote {
            Some('"') => match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => {
                    quote = None;
                    shown.push_str("…\"");
                }
                _ => escaped = false,
            },
            Some(_) => {
                if c == '`' {
                    quote = None;
                    shown.push_str("…`");
                }
            }
            None => {
                shown.push(c);
                let names_a_field = shown.ends_with("field `");
                quote = match c {
                    '"' => Some('"'),
                    '`' if !names_a_field => Some('`'),
                    _ => None,
                };
            }
        }
    }
    shown
}

/// Makes a server's text safe to show: anything shaped like a JWT is replaced, and the text is
/// cut to one short line. Error bodies are not ours; they could echo a credential back.
pub(crate) fn sanitize_server_text(text: &str) -> String {
    const LIMIT: usize = 200;
    let words: Vec<String> = text
        .split_whitespace()
        .map(|word| {
            let segments: Vec<&str> = word.split('.').collect();
            let jwt_like = segments.len() >= 3
                && segments
                    .iter()
                    .filter(|s| {
                        s.len() >= 16
                            && s.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    })
                    .count()
                    >= 2;
            let long_opaque = word.len() >= 40
                && word
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.=+/".contains(&b));
            if jwt_like || long_opaque {
                "[redacted]".to_string()
            } else {
                word.to_string()
            }
        })
        .collect();
    let line = words.join(" ");
    if line.chars().count() > LIMIT {
        let cut: String = line.chars().take(LIMIT).collect();
        format!("{cut}…")
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde_json's messages keep their shape and position, and lose the strings they quote.
    #[test]
    fn json_problems_quote_no_string() {
        let cases = [
            (
                r#"{"id": "SECRET \" VALUE"}"#,
                r#"invalid type: string "…", expected i64 at line 1 column 24"#,
            ),
            (r#"{"id": 1"#, "EOF while parsing an object at line 1 column 8"),
            (r#"{"id": 1.}"#, "invalid number at line 1 column 10"),
            (r#"{}"#, "missing field `id`"),
            (r#"{"id": 1, "id": 2}"#, "duplicate field `id`"),
            (
                r#"{"id": 1, "uuid": "S-CRET-VALUE-0000-0000-000000000000"}"#,
                "UUID parsing failed: invalid character: found `…` at 0 at line 1 column 55",
            ),
        ];
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Item {
            id: i64,
            uuid: Option<uuid::Uuid>,
        }
        for (text, expected) in cases {
            let error = serde_json::from_str::<Item>(text).unwrap_err();
            assert_eq!(json_problem(&error), expected, "{text}");
        }
    }

    #[test]
    fn server_text_never_carries_a_token() {
        let jwt = format!(
            "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.{}.{}",
            "eyJ1dWlkIjoiYWJjIiwiZXhwaXJlcyI6bnVsbH0",
            "A".repeat(86)
        );
        let cases = [
            (format!("bad token {jwt} here"), "bad token [redacted] here"),
            (
                "token with uid 62b82885 not found".to_string(),
                "token with uid 62b82885 not found",
            ),
            (format!("opaque {}", "x".repeat(64)), "opaque [redacted]"),
            ("  multi\n line\ttext ".to_string(), "multi line text"),
        ];
        for (input, expected) in cases {
            assert_eq!(sanitize_server_text(&input), expected);
        }
        assert!(sanitize_server_text(&"word ".repeat(100)).ends_with('…'));
    }
}
