//! The server's JSON, as `elitea-api.md` describes it. Unknown fields are ignored.

use crate::domain::{Model, Secret, Token, last_chars_hint};
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};
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

/// An `expires` date: the backend's own format first, then any other.
pub(crate) fn parse_date(text: &str) -> Option<DateTime<Utc>> {
    imf_fixdate(text).or_else(|| any_date(text))
}

/// Every date format `expires` may come in.
fn any_date(text: &str) -> Option<DateTime<Utc>> {
    // httpdate reads the three HTTP date formats in a fraction of chrono's RFC 2822 parser's time.
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

/// The backend's own format, IMF-fixdate (`Sat, 01 Jan 2028 00:00:00 GMT`), read by position
/// into chrono's date and time, which check the calendar; the weekday must be the date's, and
/// the year within httpdate's 1970 to 9999, so that what this reads httpdate reads the same.
/// Every token of a list has such a date. Read by httpdate, which checks the weekday by turning
/// the date into a `SystemTime` and back, and then turned into chrono's time (a third calendar
/// pass), the dates took about a twentieth of the daemon's CPU time on a first call of 10,000
/// tokens. Anything not of exactly this shape goes to [`any_date`].
fn imf_fixdate(text: &str) -> Option<DateTime<Utc>> {
    const WEEKDAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
    ];
    let b: &[u8; 29] = text.as_bytes().try_into().ok()?;
    let separators = [
        (3, b','),
        (4, b' '),
        (7, b' '),
        (11, b' '),
        (16, b' '),
        (19, b':'),
        (22, b':'),
    ];
    if separators.iter().any(|&(at, byte)| b[at] != byte) || &b[25..] != b" GMT" {
        return None;
    }
    let number = |from: usize, to: usize| {
        b[from..to].iter().try_fold(0u32, |n, &digit| {
            digit.is_ascii_digit().then(|| n * 10 + u32::from(digit - b'0'))
        })
    };
    let weekday = WEEKDAYS.iter().position(|name| name[..] == b[0..3])?;
    let month = MONTHS.iter().position(|name| name[..] == b[8..11])? as u32 + 1;
    let year = number(12, 16).filter(|year| *year >= 1970)?;
    let date = NaiveDate::from_ymd_opt(year as i32, month, number(5, 7)?)?;
    let time = NaiveTime::from_hms_opt(number(17, 19)?, number(20, 22)?, number(23, 25)?)?;
    (date.weekday().num_days_from_monday() as usize == weekday).then(|| date.and_time(time).and_utc())
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

    /// The backend's format is read by position exactly as httpdate reads it: every day from
    /// 1970 to 2200 (at a time of day that changes with it) under its own weekday, and under
    /// the next day's, which both refuse.
    #[test]
    fn imf_fixdates_read_as_httpdate_reads_them() {
        let first = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        let last = chrono::NaiveDate::from_ymd_opt(2200, 12, 31).unwrap();
        for (i, date) in first.iter_days().take_while(|date| *date <= last).enumerate() {
            let i = i as u32;
            let at = date
                .and_hms_opt(i % 24, i * 7 % 60, i * 13 % 60)
                .unwrap()
                .and_utc();
            let text = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
            assert_eq!(imf_fixdate(&text), Some(at), "{text}");
            assert_eq!(any_date(&text), Some(at), "{text}");
            let next_weekday = (at + chrono::Duration::days(1)).format("%a").to_string();
            let wrong = format!("{next_weekday}{}", &text[3..]);
            assert_eq!(imf_fixdate(&wrong), None, "{wrong}");
            assert_eq!(any_date(&wrong), None, "{wrong}");
        }
    }

    /// Whatever IMF-fixdate read by position accepts, httpdate and chrono read the same; what it
    /// refuses is theirs to read. Each byte of a few dates is changed to each of a few others,
    /// and the dates are cut short and run on.
    #[test]
    fn dates_not_quite_imf_fixdate_are_left_to_the_general_parsers() {
        let dates = [
            "Sat, 01 Jan 2028 00:00:00 GMT",
            "Thu, 29 Feb 2024 23:59:59 GMT",
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ];
        let mut taken = 0;
        for date in dates {
            assert_eq!(imf_fixdate(date), any_date(date), "{date}");
            let mut variants: Vec<String> = (0..date.len()).map(|end| date[..end].to_string()).collect();
            variants.extend([format!("{date} "), format!(" {date}"), date.replace("GMT", "UTC")]);
            for at in 0..date.len() {
                for byte in ["0", "1", "3", "6", "9", " ", ",", ":", "x", "-", "+", "é"] {
                    variants.push(format!("{}{byte}{}", &date[..at], &date[at + 1..]));
                }
            }
            for variant in variants {
                match imf_fixdate(&variant) {
                    Some(read) => {
                        assert_eq!(Some(read), any_date(&variant), "{variant}");
                        taken += 1;
                    }
                    None => assert!(
                        httpdate::parse_http_date(&variant).is_err() || variant.len() != 29,
                        "httpdate reads {variant:?}, IMF-fixdate by position does not"
                    ),
                }
            }
        }
        assert!(taken > 40, "only {taken} variants were read by position");
    }
}
