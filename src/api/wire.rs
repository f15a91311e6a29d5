//! The server's JSON, as `elitea-api.md` describes it. Unknown fields are ignored.

use crate::domain::{Model, Secret, Token, last_chars_hint};
use chrono::{DateTime, Utc};
use compact_str::CompactString;
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

/// A token object from list or get (`token` masked) or from create (`token` full).
#[derive(Debug, Deserialize)]
pub(crate) struct WireToken<V> {
    pub uuid: Uuid,
    pub id: i64,
    pub name: CompactString,
    pub token: V,
    #[serde(deserialize_with = "date_or_null")]
    pub expires: Option<DateTime<Utc>>,
}

impl WireToken<CompactString> {
    pub fn into_token(self) -> Token {
        Token {
            uuid: self.uuid,
            id: self.id,
            name: self.name,
            masked: self.token,
            expires: self.expires,
        }
    }
}

impl WireToken<Secret> {
    /// The created token as list will show it later, and its full value.
    pub fn split(self) -> (Token, Secret) {
        let token = Token {
            uuid: self.uuid,
            id: self.id,
            name: self.name,
            masked: last_chars_hint(self.token.expose(), 7).into(),
            expires: self.expires,
        };
        (token, self.token)
    }
}

/// `expires` comes as RFC 1123 GMT from the Python backend, RFC 3339 from the Go port, or null.
/// Read in place, without a `String` per token: a list holds thousands.
fn date_or_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    struct DateOrNull;
    impl<'de> serde::de::Visitor<'de> for DateOrNull {
        type Value = Option<DateTime<Utc>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a date or null")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_str(self)
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
            parse_date(text)
                .map(Some)
                .ok_or_else(|| E::custom("`expires` is neither an RFC 1123 nor an RFC 3339 date"))
        }
    }
    deserializer.deserialize_option(DateOrNull)
}

pub(crate) fn parse_date(text: &str) -> Option<DateTime<Utc>> {
    // httpdate reads the backend's IMF-fixdate in a fraction of chrono's RFC 2822 parser's time.
    httpdate::parse_http_date(text)
        .ok()
        .map(DateTime::<Utc>::from)
        .or_else(|| {
            DateTime::parse_from_rfc2822(text)
                .or_else(|_| DateTime::parse_from_rfc3339(text))
                .ok()
                .map(|d| d.with_timezone(&Utc))
        })
}

/// The error body of a 400: `{"error": "..."}`.
#[derive(Debug, Deserialize)]
pub(crate) struct WireError {
    pub error: String,
}

/// The signed-in user, from `GET /api/v2/social/author/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// The origin to write into IDE settings.
    pub api_url: String,
    pub personal_project_id: i64,
}

/// The models of a project, from `GET /api/v2/configurations/models/{project_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Models {
    #[serde(default)]
    pub total: Option<u64>,
    #[serde(default)]
    pub items: Vec<Model>,
    #[serde(default)]
    pub default_model_name: Option<String>,
    #[serde(default)]
    pub default_model_project_id: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn both_date_formats_and_null() {
        let at = Utc.with_ymd_and_hms(2026, 9, 3, 17, 50, 43).unwrap();
        let cases = [
            (r#""Thu, 03 Sep 2026 17:50:43 GMT""#, Some(at)),
            (r#""Thu, 03 Sep 2026 17:50:43 +0000""#, Some(at)),
            (r#""Thu, 03 Sep 2026 19:50:43 +0200""#, Some(at)),
            (r#""2026-09-03T17:50:43Z""#, Some(at)),
            (r#""2026-09-03T17:50:43.000000Z""#, Some(at)),
            ("null", None),
        ];
        for (json, expected) in cases {
            let body = format!(
                r#"{{"expires": {json}, "id": 12, "name": "n", "token": "...gnrJ6Qw", "user_id": 3,
                    "uuid": "62b82885-6cd8-4b07-a0c2-5fc239c22ffa", "project_id": null}}"#
            );
            let token: WireToken<String> = serde_json::from_str(&body).unwrap();
            assert_eq!(token.expires, expected, "{json}");
        }
        let bad = r#"{"expires": "next tuesday", "id": 1, "name": "n", "token": "...", "uuid": "62b82885-6cd8-4b07-a0c2-5fc239c22ffa"}"#;
        assert!(serde_json::from_str::<WireToken<String>>(bad).is_err());
    }
}
