//! How long a new token lives: never, or a whole number of minutes, hours, days or weeks.

use chrono::{DateTime, Datelike, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The units the ELITEA create form offers (the backend's `measure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Minutes,
    Hours,
    Days,
    Weeks,
}

impl Unit {
    /// The word the backend expects in `measure`.
    pub fn measure(self) -> &'static str {
        match self {
            Unit::Minutes => "minutes",
            Unit::Hours => "hours",
            Unit::Days => "days",
            Unit::Weeks => "weeks",
        }
    }

    fn minutes(self) -> i64 {
        match self {
            Unit::Minutes => 1,
            Unit::Hours => 60,
            Unit::Days => 60 * 24,
            Unit::Weeks => 60 * 24 * 7,
        }
    }

    fn singular(self) -> &'static str {
        match self {
            Unit::Minutes => "minute",
            Unit::Hours => "hour",
            Unit::Days => "day",
            Unit::Weeks => "week",
        }
    }

    fn from_word(word: &str) -> Option<Unit> {
        Some(match word {
            "m" | "min" | "mins" | "minute" | "minutes" => Unit::Minutes,
            "h" | "hr" | "hrs" | "hour" | "hours" => Unit::Hours,
            "d" | "day" | "days" => Unit::Days,
            "w" | "wk" | "wks" | "week" | "weeks" => Unit::Weeks,
            _ => return None,
        })
    }
}

/// A token's lifetime as the user chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expiration {
    Never,
    After { value: u32, unit: Unit },
}

impl Default for Expiration {
    /// The web form's default: 30 days.
    fn default() -> Self {
        Expiration::After {
            value: 30,
            unit: Unit::Days,
        }
    }
}

/// Why an expiration was refused. The message always says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpirationError {
    #[error(
        "`{0}` is not an expiration; use `never` or a whole number with a unit: 45m, 12h, 30d, 2w (or `30 days`, `2 weeks`)"
    )]
    Malformed(String),
    #[error(
        "an expiration must be at least 1 {unit}; `{input}` would make a token that is already expired (use `never` for no expiry)"
    )]
    NotPositive { input: String, unit: &'static str },
    #[error(
        "`{0}` ends after the year 9999; choose a shorter period, or `never` for a token that does not expire"
    )]
    TooFar(String),
}

/// The latest instant a token may expire at: the end of year 9999.
fn latest_expiry() -> DateTime<Utc> {
    DateTime::<Utc>::MAX_UTC
        .with_year(9999)
        .and_then(|d| d.with_month(12))
        .and_then(|d| d.with_day(31))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl Expiration {
    /// The whole lifetime, or `None` for never.
    pub fn duration(self) -> Option<Duration> {
        match self {
            Expiration::Never => None,
            Expiration::After { value, unit } => Some(Duration::minutes(i64::from(value) * unit.minutes())),
        }
    }

    /// When a token created at `now` expires; refuses periods that end after the year 9999.
    pub fn expires_at(self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, ExpirationError> {
        match self.duration() {
            None => Ok(None),
            Some(span) => match now.checked_add_signed(span) {
                Some(at) if at <= latest_expiry() => Ok(Some(at)),
                _ => Err(ExpirationError::TooFar(self.to_string())),
            },
        }
    }

    /// The backend's `expires` create field: `{"measure": "days", "value": 30}` or `null`.
    pub fn to_wire(self) -> serde_json::Value {
        match self {
            Expiration::Never => serde_json::Value::Null,
            Expiration::After { value, unit } => {
                serde_json::json!({ "measure": unit.measure(), "value": value })
            }
        }
    }

    /// The period closest to a token's observed lifetime, for rotation: an exact number of weeks,
    /// days or hours when it is one, otherwise minutes (at least one).
    pub fn from_lifetime(lifetime: Duration) -> Expiration {
        let minutes = lifetime.num_minutes().max(1);
        // The server computes expiry from its own clock: tolerate a minute of skew.
        let round = |unit: Unit| {
            let per = unit.minutes();
            let nearest = (minutes + per / 2) / per;
            (nearest > 0 && (nearest * per - minutes).abs() <= 1).then_some(nearest)
        };
        for unit in [Unit::Weeks, Unit::Days, Unit::Hours] {
            if let Some(value) = round(unit).and_then(|n| u32::try_from(n).ok()) {
                return Expiration::After { value, unit };
            }
        }
        Expiration::After {
            value: u32::try_from(minutes).unwrap_or(u32::MAX),
            unit: Unit::Minutes,
        }
    }
}

impl fmt::Display for Expiration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expiration::Never => f.write_str("never"),
            Expiration::After { value: 1, unit } => write!(f, "1 {}", unit.singular()),
            Expiration::After { value, unit } => write!(f, "{value} {}", unit.measure()),
        }
    }
}

impl FromStr for Expiration {
    type Err = ExpirationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let text = input.trim().to_ascii_lowercase();
        if text == "never" {
            return Ok(Expiration::Never);
        }
        let malformed = || ExpirationError::Malformed(input.trim().to_string());
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '-' || c == '+'))
            .ok_or_else(malformed)?;
        let (number, word) = text.split_at(split);
        let unit = Unit::from_word(word.trim()).ok_or_else(malformed)?;
        if number.is_empty() {
            return Err(malformed());
        }
        let value: i64 = number.parse().map_err(|_| {
            if number.starts_with('-') || number.chars().filter(|c| c.is_ascii_digit()).count() < 19 {
                malformed()
            } else {
                ExpirationError::TooFar(input.trim().to_string())
            }
        })?;
        if value <= 0 {
            return Err(ExpirationError::NotPositive {
                input: input.trim().to_string(),
                unit: unit.singular(),
            });
        }
        let value = u32::try_from(value).map_err(|_| ExpirationError::TooFar(input.trim().to_string()))?;
        // No calendar reaches past year 9999 from today with more than this many minutes.
        if i64::from(value) * unit.minutes() > 8_000 * 366 * 24 * 60 {
            return Err(ExpirationError::TooFar(input.trim().to_string()));
        }
        Ok(Expiration::After { value, unit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn parses_every_accepted_form() {
        let after = |value, unit| Expiration::After { value, unit };
        let cases = [
            ("never", Expiration::Never),
            ("NEVER", Expiration::Never),
            ("45m", after(45, Unit::Minutes)),
            ("45 minutes", after(45, Unit::Minutes)),
            ("1 minute", after(1, Unit::Minutes)),
            ("12h", after(12, Unit::Hours)),
            ("12 hours", after(12, Unit::Hours)),
            ("30d", after(30, Unit::Days)),
            ("30 days", after(30, Unit::Days)),
            ("1 day", after(1, Unit::Days)),
            ("2w", after(2, Unit::Weeks)),
            ("2 weeks", after(2, Unit::Weeks)),
            (" 2W ", after(2, Unit::Weeks)),
            ("+3d", after(3, Unit::Days)),
        ];
        for (input, expected) in cases {
            assert_eq!(input.parse::<Expiration>(), Ok(expected), "input {input:?}");
        }
    }

    #[test]
    fn refuses_bad_input_with_a_message_that_says_what_is_allowed() {
        let cases = [
            ("", "is not an expiration; use `never`"),
            ("30", "is not an expiration"),
            ("d", "is not an expiration"),
            ("30 fortnights", "is not an expiration"),
            ("thirty days", "is not an expiration"),
            ("3.5d", "is not an expiration"),
            ("0d", "at least 1 day"),
            ("-5m", "at least 1 minute"),
            ("0 weeks", "at least 1 week"),
            ("99999999999999999999d", "after the year 9999"),
            ("5000000000w", "after the year 9999"),
            ("500000w", "after the year 9999"),
        ];
        for (input, message) in cases {
            let err = input.parse::<Expiration>().expect_err(input);
            assert!(err.to_string().contains(message), "{input:?}: {err}");
        }
    }

    #[test]
    fn expiry_is_refused_past_year_9999_against_the_clock() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let ok: Expiration = "300000w".parse().unwrap();
        assert!(ok.expires_at(now).unwrap().unwrap().year() < 9999);
        let far: Expiration = "417000w".parse().unwrap();
        assert!(matches!(far.expires_at(now), Err(ExpirationError::TooFar(_))));
        assert_eq!(Expiration::Never.expires_at(now), Ok(None));
    }

    #[test]
    fn wire_form_and_display() {
        assert_eq!(
            Expiration::default().to_wire(),
            serde_json::json!({"measure": "days", "value": 30})
        );
        assert_eq!(Expiration::Never.to_wire(), serde_json::Value::Null);
        assert_eq!(Expiration::default().to_string(), "30 days");
        assert_eq!("1w".parse::<Expiration>().unwrap().to_string(), "1 week");
    }

    #[test]
    fn lifetime_maps_back_to_the_period_that_made_it() {
        let cases = [
            (Duration::days(30), "30 days"),
            (Duration::days(14), "2 weeks"),
            (Duration::hours(12), "12 hours"),
            (Duration::minutes(45), "45 minutes"),
            (Duration::days(30) + Duration::seconds(40), "30 days"),
            (Duration::days(30) - Duration::seconds(50), "30 days"),
            (Duration::seconds(10), "1 minute"),
        ];
        for (lifetime, expected) in cases {
            assert_eq!(Expiration::from_lifetime(lifetime).to_string(), expected);
        }
    }
}
