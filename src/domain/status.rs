//! How close a token is to lapsing, and the label the Personal Tokens page would show.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Tokens with this much time left or less are flagged.
pub const WARNING_WINDOW: Duration = Duration::days(7);

/// The Expiration column's mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ExpiryStatus {
    /// More than 7 days left.
    Ok,
    /// 7 days or less left.
    Warning,
    /// Past its expiry.
    Expired,
    /// Never expires.
    Never,
}

impl ExpiryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpiryStatus::Ok => "ok",
            ExpiryStatus::Warning => "warning",
            ExpiryStatus::Expired => "expired",
            ExpiryStatus::Never => "never",
        }
    }
}

/// The status of a token expiring at `expires` (`None` = never), seen at `now`.
pub fn expiry_status(expires: Option<DateTime<Utc>>, now: DateTime<Utc>) -> ExpiryStatus {
    match expires {
        None => ExpiryStatus::Never,
        Some(at) if at <= now => ExpiryStatus::Expired,
        Some(at) if at - now <= WARNING_WINDOW => ExpiryStatus::Warning,
        Some(_) => ExpiryStatus::Ok,
    }
}

/// `in 23 days`, `in 1 day`, `in 5 hours`, `in 12 minutes`, `Never` or `Expired`.
///
/// The time left is rounded up in the largest unit that fits, so a label never claims less
/// time than there is, and `in 7 days` always carries the warning mark while `in 8 days` never does.
pub fn expiry_label(expires: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(at) = expires else {
        return "Never".to_string();
    };
    if at <= now {
        return "Expired".to_string();
    }
    let left = (at - now).num_seconds();
    let ceil_div = |n: i64, d: i64| (n + d - 1) / d;
    let minutes = ceil_div(left, 60);
    let (count, unit) = if minutes < 60 {
        (minutes, "minute")
    } else if ceil_div(left, 3600) < 24 {
        (ceil_div(left, 3600), "hour")
    } else {
        (ceil_div(left, 86_400), "day")
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("in {count} {unit}{plural}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn status_and_label_across_every_boundary() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let d = Duration::days;
        let h = Duration::hours;
        let m = Duration::minutes;
        let s = Duration::seconds;
        use ExpiryStatus::*;
        let cases: Vec<(Option<Duration>, ExpiryStatus, &str)> = vec![
            (None, Never, "Never"),
            (Some(d(23)), Ok, "in 23 days"),
            (Some(d(8)), Ok, "in 8 days"),
            (Some(d(7) + s(1)), Ok, "in 8 days"),
            (Some(d(7)), Warning, "in 7 days"),
            (Some(d(7) - s(1)), Warning, "in 7 days"),
            (Some(d(2)), Warning, "in 2 days"),
            (Some(d(1) + s(1)), Warning, "in 2 days"),
            (Some(d(1)), Warning, "in 1 day"),
            (Some(h(23) + m(30)), Warning, "in 1 day"),
            (Some(h(23)), Warning, "in 23 hours"),
            (Some(h(5)), Warning, "in 5 hours"),
            (Some(h(1)), Warning, "in 1 hour"),
            (Some(m(59) + s(30)), Warning, "in 1 hour"),
            (Some(m(12)), Warning, "in 12 minutes"),
            (Some(m(1)), Warning, "in 1 minute"),
            (Some(s(1)), Warning, "in 1 minute"),
            (Some(s(0)), Expired, "Expired"),
            (Some(-s(1)), Expired, "Expired"),
            (Some(-d(400)), Expired, "Expired"),
        ];
        for (left, status, label) in cases {
            let expires = left.map(|span| now + span);
            assert_eq!(expiry_status(expires, now), status, "{left:?}");
            assert_eq!(expiry_label(expires, now), label, "{left:?}");
        }
    }
}
