//! A personal token as the server lists it.

use super::secret::last_chars_hint;
use super::status::{ExpiryStatus, expiry_label, expiry_status};
use chrono::{DateTime, Utc};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One token as list and get return it: the value is masked (`...` + last 7 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub uuid: Uuid,
    pub id: i64,
    pub name: CompactString,
    /// The server's masked value, `...` followed by the last 7 characters.
    pub masked: CompactString,
    pub expires: Option<DateTime<Utc>>,
}

impl Token {
    /// `...` and the last 4 characters, the web UI's Token value column.
    pub fn hint(&self) -> String {
        last_chars_hint(self.masked.trim_start_matches('.'), 4)
    }

    pub fn status(&self, now: DateTime<Utc>) -> ExpiryStatus {
        expiry_status(self.expires, now)
    }

    pub fn label(&self, now: DateTime<Utc>) -> String {
        expiry_label(self.expires, now)
    }

    pub fn summary(&self, now: DateTime<Utc>) -> TokenSummary {
        TokenSummary {
            uuid: self.uuid,
            name: self.name.to_string(),
            value: self.hint(),
            expires: self.expires,
            status: self.status(now),
            label: self.label(now),
        }
    }
}

/// A token row for people and scripts: what the table shows, and the `--json` shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSummary {
    pub uuid: Uuid,
    pub name: String,
    /// `...` and the last 4 characters.
    pub value: String,
    /// RFC 3339 in UTC, or `null` for never.
    pub expires: Option<DateTime<Utc>>,
    pub status: ExpiryStatus,
    pub label: String,
}

/// The longest name the web UI accepts.
pub const MAX_NAME_LEN: usize = 768;

/// The name the platform keeps for its own token.
pub const RESERVED_NAME: &str = "elitea-system";

/// Checks a new token's name against the web UI's rule: letters, digits, `-` and `_`, at most
/// 768 characters. (The backend checks nothing; tokens made elsewhere may break the rule.)
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a token needs a name".to_string());
    }
    if name == RESERVED_NAME {
        return Err(format!(
            "`{RESERVED_NAME}` is reserved for the platform's own token; choose another name"
        ));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "a token name is at most {MAX_NAME_LEN} characters; this one has {}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "`{name}` contains {bad:?}; a token name may hold only letters, digits, `-` and `_` (for example VSCode-MacBook-Dev)"
        ));
    }
    Ok(())
}

/// How many tokens are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    pub total: usize,
    pub ok: usize,
    pub warning: usize,
    pub expired: usize,
    pub never: usize,
}

impl StatusCounts {
    pub fn of(tokens: &[Token], now: DateTime<Utc>) -> StatusCounts {
        let mut counts = StatusCounts {
            total: tokens.len(),
            ..StatusCounts::default()
        };
        for token in tokens {
            match token.status(now) {
                ExpiryStatus::Ok => counts.ok += 1,
                ExpiryStatus::Warning => counts.warning += 1,
                ExpiryStatus::Expired => counts.expired += 1,
                ExpiryStatus::Never => counts.never += 1,
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_is_the_last_four_of_the_masked_value() {
        let token = Token {
            uuid: Uuid::nil(),
            id: 1,
            name: "x".into(),
            masked: "...gnrJ6Qw".into(),
            expires: None,
        };
        assert_eq!(token.hint(), "...J6Qw");
    }

    #[test]
    fn names_follow_the_web_ui_rule() {
        let long = "a".repeat(MAX_NAME_LEN + 1);
        let cases: Vec<(&str, Option<&str>)> = vec![
            ("VSCode-MacBook-Dev", None),
            ("ci_token_2", None),
            (&long[..MAX_NAME_LEN], None),
            ("", Some("needs a name")),
            ("elitea-system", Some("reserved")),
            (&long, Some("at most 768")),
            ("my token", Some("contains ' '")),
            ("naïve", Some("only letters, digits")),
        ];
        for (name, problem) in cases {
            match (check_name(name), problem) {
                (Ok(()), None) => {}
                (Err(e), Some(p)) => assert!(e.contains(p), "{name}: {e}"),
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
    }
}
