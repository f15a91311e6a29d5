//! A personal token as the server lists it.

use super::secret::last_chars_hint;
use super::status::{ExpiryStatus, expiry_label, expiry_status};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One token as list and get return it: the value is masked (`...` + last 7 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub uuid: Uuid,
    pub id: i64,
    pub name: String,
    /// The server's masked value, `...` followed by the last 7 characters.
    pub masked: String,
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
            name: self.name.clone(),
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
}
