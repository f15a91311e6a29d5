//! Validation of the create body, with the real backend's messages and quirks:
//! duplicate names and any length are fine, zero or negative values give an
//! already-expired token, `true` counts as 1 (Python's bool is an int) and a `null`
//! value is a server error.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::data::RESERVED_NAME;

/// A create request that passed validation.
#[derive(Debug, PartialEq)]
pub(crate) struct NewToken {
    pub name: String,
    /// Whole seconds; `None` = never.
    pub expires: Option<DateTime<Utc>>,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Rejection {
    /// 400 `{"error": message}`.
    Invalid(String),
    /// What makes the Python backend raise: answered 500 with its HTML error page.
    Crash(&'static str),
}

const MEASURES: [(&str, i64); 5] = [
    ("days", 86_400),
    ("weeks", 7 * 86_400),
    ("hours", 3_600),
    ("minutes", 60),
    ("seconds", 1),
];

fn invalid(message: impl Into<String>) -> Rejection {
    Rejection::Invalid(message.into())
}

pub(crate) fn parse(body: &[u8], now: DateTime<Utc>) -> Result<NewToken, Rejection> {
    let body: Value =
        serde_json::from_slice(body).map_err(|e| invalid(format!("Request body is not valid JSON: {e}")))?;
    let Value::Object(body) = body else {
        return Err(invalid("Request body must be a JSON object"));
    };

    // Python's `if not name`: missing, null and "" are all "required". Non-strings too: the
    // backend would store their text, but no client sends one.
    let name = match body.get("name") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        _ => return Err(invalid("Name is required")),
    };
    if name == RESERVED_NAME {
        return Err(invalid(format!("Name \"{RESERVED_NAME}\" is reserved")));
    }

    let expires = match body.get("expires") {
        None | Some(Value::Null) => None,
        Some(Value::Object(expires)) => {
            let seconds_per_unit = match expires.get("measure") {
                None => return Err(invalid(r#"expires must have "measure" key"#)),
                Some(measure) => MEASURES
                    .iter()
                    .find(|(m, _)| Some(*m) == measure.as_str())
                    .map(|(_, secs)| *secs)
                    .ok_or_else(|| {
                        invalid("expires measure be in {'days', 'weeks', 'hours', 'minutes', 'seconds'}")
                    })?,
            };
            let value = match expires.get("value") {
                None => return Err(invalid(r#"expires must have "value" key"#)),
                Some(value) => int_value(value)?,
            };
            Some(expiry(now, value, seconds_per_unit)?)
        }
        // Neither an object nor null: it certainly has no "measure".
        Some(_) => return Err(invalid(r#"expires must have "measure" key"#)),
    };
    Ok(NewToken { name, expires })
}

fn int_value(value: &Value) -> Result<i64, Rejection> {
    let type_name = match value {
        Value::Null => return Err(Rejection::Crash("expires value is null")),
        Value::Bool(b) => return Ok(i64::from(*b)),
        Value::Number(n) => {
            if let Some(n) = n.as_i64() {
                return Ok(n);
            }
            if n.is_u64() {
                // A Python int, but too far in the future for a datetime.
                return Err(Rejection::Crash("expires value overflows"));
            }
            "float"
        }
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    };
    Err(invalid(format!("expires must be int, got {type_name}")))
}

fn expiry(now: DateTime<Utc>, value: i64, unit: i64) -> Result<DateTime<Utc>, Rejection> {
    let overflow = Rejection::Crash("expiry out of range");
    let at = value
        .checked_mul(unit)
        .and_then(Duration::try_seconds)
        .and_then(|d| now.checked_add_signed(d))
        .ok_or(overflow)?;
    // Whole seconds: that is what the database column and the RFC 1123 date can carry.
    DateTime::from_timestamp(at.timestamp(), 0).ok_or(Rejection::Crash("expiry out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 500_000_000).unwrap_or_default()
    }

    #[test]
    fn computes_expiry_in_whole_seconds() {
        let t = parse(br#"{"name":"a","expires":{"measure":"weeks","value":2}}"#, now());
        let at = DateTime::from_timestamp(1_700_000_000 + 14 * 86_400, 0);
        assert_eq!(t.map(|t| t.expires), Ok(at));
    }

    #[test]
    fn huge_values_do_not_panic() {
        let t = parse(
            br#"{"name":"a","expires":{"measure":"weeks","value":9223372036854775807}}"#,
            now(),
        );
        assert!(matches!(t, Err(Rejection::Crash(_))));
    }
}
