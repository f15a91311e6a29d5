//! A token value that cannot be printed by accident.

use std::fmt;

/// A full token value (or a login credential). `Debug` and `Display` show only `...` and the last
/// four characters, so a value that reaches a log line, an error or a panic message stays secret.
/// The value itself is reachable only through [`Secret::expose`], which is easy to grep for.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The full value. Call it only where the value must leave the process on purpose: an HTTP
    /// header, the secret store, a settings file the user asked for, stdout of `create`.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `...` and the last four characters, as the web UI's Token value column shows them.
    pub fn hint(&self) -> String {
        last_chars_hint(&self.0, 4)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `uuid` claim of an ELITEA token (a JWT), which names the token it is. The signature
    /// is not checked: only the server can, and this is used to recognise, not to trust.
    pub fn token_uuid(&self) -> Option<uuid::Uuid> {
        use base64::Engine;
        let payload = self.0.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        #[derive(serde::Deserialize)]
        struct Claims {
            uuid: uuid::Uuid,
        }
        serde_json::from_slice::<Claims>(&bytes).ok().map(|c| c.uuid)
    }
}

/// `...` followed by the last `n` characters of `value`.
pub(crate) fn last_chars_hint(value: &str, n: usize) -> String {
    let tail: String = {
        let chars: Vec<char> = value.chars().collect();
        chars[chars.len().saturating_sub(n)..].iter().collect()
    };
    format!("...{tail}")
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.hint())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hint())
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_show_only_the_last_four() {
        let secret = Secret::new("eyJhbGciOiJIUzUxMiJ9.payload.signatureXYZW");
        assert_eq!(format!("{secret}"), "...XYZW");
        assert_eq!(format!("{secret:?}"), "Secret(...XYZW)");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Secret(...XYZW))");
    }

    #[test]
    fn the_uuid_claim_names_the_token() {
        // {"uuid":"62b82885-6cd8-4b07-a0c2-5fc239c22ffa","expires":null}
        let token = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJ1dWlkIjoiNjJiODI4ODUtNmNkOC00YjA3LWEwYzItNWZjMjM5YzIyZmZhIiwiZXhwaXJlcyI6bnVsbH0.sig";
        assert_eq!(
            Secret::new(token).token_uuid(),
            Some(uuid::Uuid::parse_str("62b82885-6cd8-4b07-a0c2-5fc239c22ffa").unwrap())
        );
        for not_a_jwt in ["", "abc", "a.b.c", "a.!!!.c"] {
            assert_eq!(Secret::new(not_a_jwt).token_uuid(), None);
        }
    }

    #[test]
    fn short_values_do_not_panic() {
        assert_eq!(Secret::new("ab").hint(), "...ab");
        assert_eq!(Secret::new("").hint(), "...");
    }
}
