//! When the expiry reminders of watched tokens fall due. Pure: the caller supplies `now`, what
//! has been shown and the snoozes (see `crate::reminders` for the shared log behind them).
//!
//! Rules:
//! - A long token (lifetime of 1 day or more, or unknown) is reminded 7 days, 1 day and 1 hour
//!   before it expires, and when it expires.
//! - A short token (known lifetime under 1 day) is reminded once at 20 % of its lifetime left,
//!   and when it expires.
//! - A reminder at or before the token's creation is dropped: the user just chose the period
//!   (a 3-day token starts with its 1-day reminder; a 7-day token never gets "7 days left").
//! - Catching up (a week offline) sends only the most urgent reminder reached; the older unshown
//!   ones are superseded, marked shown without being sent.
//! - A snooze silences a token's reminders until it ends (a reminder reached meanwhile is sent
//!   then), except `Expired`, which is never deferred: a lapsed token breaks the workspace.

use chrono::{DateTime, Duration, Utc};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::fmt;
use uuid::Uuid;

/// Tokens whose lifetime is shorter than this are short: they get one reminder, not three.
const SHORT_LIFETIME: Duration = Duration::days(1);

/// A token whose expiry is watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub uuid: Uuid,
    /// Inline when short (most names): the daemon builds one per token in use at every plan.
    pub name: CompactString,
    pub expires: DateTime<Utc>,
    /// `expires - created_at`, when known (tokens this tool made); `None` for tokens made elsewhere.
    pub lifetime: Option<Duration>,
}

/// Which reminder of a token's life. The snake_case names are stable ids (log keys, JSON-RPC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ReminderKind {
    SevenDays,
    OneDay,
    OneHour,
    ShortLifetime,
    Expired,
}

impl ReminderKind {
    pub const ALL: [ReminderKind; 5] = [
        ReminderKind::SevenDays,
        ReminderKind::OneDay,
        ReminderKind::OneHour,
        ReminderKind::ShortLifetime,
        ReminderKind::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReminderKind::SevenDays => "seven_days",
            ReminderKind::OneDay => "one_day",
            ReminderKind::OneHour => "one_hour",
            ReminderKind::ShortLifetime => "short_lifetime",
            ReminderKind::Expired => "expired",
        }
    }

    /// How urgent the notice is: a week ahead is news, a day or an hour (or a short token's
    /// last fifth) asks for action, an expired token already breaks things.
    pub fn severity(self) -> Severity {
        match self {
            ReminderKind::SevenDays => Severity::Info,
            ReminderKind::OneDay | ReminderKind::OneHour | ReminderKind::ShortLifetime => Severity::Warning,
            ReminderKind::Expired => Severity::Error,
        }
    }
}

impl fmt::Display for ReminderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a notice is shown (maps onto LSP's `MessageType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One notice about one token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    pub uuid: Uuid,
    pub name: String,
    pub kind: ReminderKind,
    /// When it falls due (before any snooze).
    pub at: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

impl Reminder {
    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }

    /// `<uuid>:<kind>`, the id under which the shared log records it as shown.
    pub fn key(&self) -> String {
        reminder_key(self.uuid, self.kind)
    }
}

/// `<uuid>:<kind>` (hyphenated lowercase uuid, snake_case kind).
pub fn reminder_key(uuid: Uuid, kind: ReminderKind) -> String {
    format!("{}:{}", uuid.hyphenated(), kind.as_str())
}

/// A token's reminders as (kind, instant), in time order, without allocating.
#[derive(Clone, Copy)]
struct Schedule {
    items: [(ReminderKind, DateTime<Utc>); 4],
    len: usize,
}

impl Schedule {
    fn as_slice(&self) -> &[(ReminderKind, DateTime<Utc>)] {
        &self.items[..self.len]
    }

    fn push(&mut self, kind: ReminderKind, at: DateTime<Utc>) {
        self.items[self.len] = (kind, at);
        self.len += 1;
    }
}

fn schedule(token: &Watched) -> Schedule {
    let expires = token.expires;
    let mut schedule = Schedule {
        items: [(ReminderKind::Expired, expires); 4],
        len: 0,
    };
    // A creation instant outside chrono's range is as good as "long ago".
    let created = token.lifetime.and_then(|l| expires.checked_sub_signed(l));
    let after_creation = |at: DateTime<Utc>| created.is_none_or(|c| at > c);
    match token.lifetime {
        // A token that never lived (clock skew, bad data) has nothing to warn about.
        Some(l) if l <= Duration::zero() => {}
        Some(l) if l < SHORT_LIFETIME => {
            if let Some(at) = expires.checked_sub_signed(l / 5) {
                schedule.push(ReminderKind::ShortLifetime, at);
            }
        }
        _ => {
            for (kind, before) in [
                (ReminderKind::SevenDays, Duration::days(7)),
                (ReminderKind::OneDay, Duration::days(1)),
                (ReminderKind::OneHour, Duration::hours(1)),
            ] {
                if let Some(at) = expires
                    .checked_sub_signed(before)
                    .filter(|&at| after_creation(at))
                {
                    schedule.push(kind, at);
                }
            }
        }
    }
    schedule.push(ReminderKind::Expired, expires);
    schedule
}

/// Every reminder a token gets over its life, in time order.
pub fn reminders_for(token: &Watched) -> Vec<Reminder> {
    schedule(token)
        .as_slice()
        .iter()
        .map(|&(kind, at)| reminder(token, kind, at))
        .collect()
}

fn reminder(token: &Watched, kind: ReminderKind, at: DateTime<Utc>) -> Reminder {
    Reminder {
        uuid: token.uuid,
        name: token.name.to_string(),
        kind,
        at,
        expires: token.expires,
    }
}

/// What is due and what comes next, given what has been shown and snoozed.
///
/// The daemon claims `due` and `superseded` together in the shared log and sends only the due
/// reminders its claim won, then sleeps until `next`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// At most one per token: the most urgent unshown reminder reached, in time order.
    pub due: Vec<Reminder>,
    /// Keys of older unshown reminders made moot by a more urgent one: mark shown, never send.
    /// Grouped by token (uuid order), each in time order.
    pub superseded: Vec<String>,
    /// The earliest instant after `now` at which the plan changes; `None` when nothing is left.
    pub next: Option<DateTime<Utc>>,
}

impl Plan {
    /// Every key to mark shown: the due reminders' and the superseded ones.
    pub fn keys_to_claim(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.due.iter().map(Reminder::key).collect();
        keys.extend(self.superseded.iter().cloned());
        keys
    }
}

/// What is due at `now` and when to look again.
///
/// `shown(uuid, kind)` tells whether a reminder was already shown (by any daemon), `snoozed_until(uuid)`
/// gives a token's snooze; a snooze that has ended defers nothing. Linear in the number of
/// tokens (plus sorting what is due), with at most a few `shown` lookups per token and no
/// allocation for tokens with nothing due. Tokens should be distinct by uuid; an exact repeat
/// (the same token listed by two workspaces) is harmless.
pub fn plan(
    tokens: impl IntoIterator<Item = impl Borrow<Watched>>,
    now: DateTime<Utc>,
    shown: impl Fn(Uuid, ReminderKind) -> bool,
    snoozed_until: impl Fn(Uuid) -> Option<DateTime<Utc>>,
) -> Plan {
    let mut due = Vec::new();
    let mut superseded = Vec::new();
    let mut next: Option<DateTime<Utc>> = None;
    let mut sooner = |at: DateTime<Utc>| {
        if next.is_none_or(|n| at < n) {
            next = Some(at);
        }
    };

    for token in tokens {
        let token = token.borrow();
        let schedule = schedule(token);
        let items = schedule.as_slice();
        let reached = items.partition_point(|&(_, at)| at <= now);
        let mut snooze_cache = None;
        let mut snooze =
            || *snooze_cache.get_or_insert_with(|| snoozed_until(token.uuid).filter(|&s| s > now));

        // The past: only the latest reminder reached can be due; if it was shown, everything
        // before it was settled when it was.
        if let Some((older, &[(kind, at)])) = items[..reached].split_last_chunk::<1>()
            && !shown(token.uuid, kind)
        {
            match snooze().filter(|_| kind != ReminderKind::Expired) {
                Some(until) => sooner(until),
                None => due.push(reminder(token, kind, at)),
            }
            for &(older_kind, _) in older {
                if !shown(token.uuid, older_kind) {
                    superseded.push((token.uuid, older_kind));
                }
            }
        }

        // The future: the earliest unshown reminder, after any snooze. Deferred instants grow
        // with `at`, so past the first unshown one only `Expired` (never deferred) can be sooner.
        let mut first: Option<DateTime<Utc>> = None;
        for &(kind, at) in &items[reached..] {
            let effective = match kind {
                ReminderKind::Expired => at,
                _ => snooze().map_or(at, |until| until.max(at)),
            };
            if first.is_none_or(|f| effective < f) && !shown(token.uuid, kind) {
                first = Some(effective);
            }
        }
        if let Some(at) = first {
            sooner(at);
        }
    }

    // Sorting by time then key puts exact repeats side by side.
    due.sort_unstable_by_key(|r| (r.at, r.kind, r.uuid));
    due.dedup_by(|a, b| a.uuid == b.uuid && a.kind == b.kind);
    superseded.sort_unstable();
    superseded.dedup();
    Plan {
        due,
        superseded: superseded
            .into_iter()
            .map(|(uuid, kind)| reminder_key(uuid, kind))
            .collect(),
        next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReminderKind::*;
    use chrono::TimeZone;
    use std::collections::{HashMap, HashSet};

    fn d(n: i64) -> Duration {
        Duration::days(n)
    }
    fn h(n: i64) -> Duration {
        Duration::hours(n)
    }
    fn m(n: i64) -> Duration {
        Duration::minutes(n)
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
    }

    fn token(n: u128, expires: DateTime<Utc>, lifetime: Option<Duration>) -> Watched {
        Watched {
            uuid: Uuid::from_u128(n),
            name: compact_str::format_compact!("token-{n}"),
            expires,
            lifetime,
        }
    }

    fn key(n: u128, kind: ReminderKind) -> String {
        reminder_key(Uuid::from_u128(n), kind)
    }

    #[test]
    fn schedules_by_lifetime() {
        let exp = t0() + d(30);
        // (lifetime, expected (kind, time before expiry))
        type Expected = Vec<(ReminderKind, Duration)>;
        let cases: Vec<(Option<Duration>, Expected)> = vec![
            (
                Some(d(30)),
                vec![
                    (SevenDays, d(7)),
                    (OneDay, d(1)),
                    (OneHour, h(1)),
                    (Expired, d(0)),
                ],
            ),
            (
                None,
                vec![
                    (SevenDays, d(7)),
                    (OneDay, d(1)),
                    (OneHour, h(1)),
                    (Expired, d(0)),
                ],
            ),
            (
                Some(d(8)),
                vec![
                    (SevenDays, d(7)),
                    (OneDay, d(1)),
                    (OneHour, h(1)),
                    (Expired, d(0)),
                ],
            ),
            // Born inside the 7-day window, or exactly on a threshold: that threshold is dropped.
            (Some(d(7)), vec![(OneDay, d(1)), (OneHour, h(1)), (Expired, d(0))]),
            (Some(d(3)), vec![(OneDay, d(1)), (OneHour, h(1)), (Expired, d(0))]),
            (Some(d(1)), vec![(OneHour, h(1)), (Expired, d(0))]),
            // Short tokens: one reminder at 20 % of the lifetime left.
            (
                Some(h(24) - m(1)),
                vec![(ShortLifetime, (h(24) - m(1)) / 5), (Expired, d(0))],
            ),
            (Some(h(3)), vec![(ShortLifetime, m(36)), (Expired, d(0))]),
            (Some(m(45)), vec![(ShortLifetime, m(9)), (Expired, d(0))]),
            (Some(Duration::zero()), vec![(Expired, d(0))]),
            (Some(-h(1)), vec![(Expired, d(0))]),
        ];
        for (lifetime, expected) in cases {
            let t = token(1, exp, lifetime);
            let got: Vec<_> = reminders_for(&t)
                .into_iter()
                .map(|r| (r.kind, exp - r.at))
                .collect();
            assert_eq!(got, expected, "lifetime {lifetime:?}");
        }
        let r = &reminders_for(&token(1, exp, Some(h(3))))[0];
        assert_eq!(r.at, exp - m(36));
        assert_eq!(r.key(), "00000000-0000-0000-0000-000000000001:short_lifetime");
        assert_eq!((r.name.as_str(), r.expires), ("token-1", exp));
    }

    #[test]
    fn kinds_have_stable_ids_and_severities() {
        for kind in ReminderKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        let severities: Vec<_> = ReminderKind::ALL.iter().map(|k| k.severity().as_str()).collect();
        assert_eq!(severities, ["info", "warning", "warning", "warning", "error"]);
        assert_eq!(serde_json::to_value(Severity::Warning).unwrap(), "warning");
    }

    struct Case {
        name: &'static str,
        lifetime: Option<Duration>,
        /// Relative to expiry.
        now: Duration,
        shown: &'static [ReminderKind],
        /// Snooze end, relative to expiry.
        snooze: Option<Duration>,
        due: Option<ReminderKind>,
        superseded: &'static [ReminderKind],
        /// Relative to expiry.
        next: Option<Duration>,
    }

    #[test]
    fn plans_one_token() {
        let exp = t0() + d(30);
        let base = Case {
            name: "",
            lifetime: Some(d(30)),
            now: -d(30),
            shown: &[],
            snooze: None,
            due: None,
            superseded: &[],
            next: None,
        };
        let cases = [
            Case {
                name: "just created",
                next: Some(-d(7)),
                ..base
            },
            Case {
                name: "a nanosecond before the 7-day mark",
                now: -d(7) - Duration::nanoseconds(1),
                next: Some(-d(7)),
                ..base
            },
            Case {
                name: "at == now is due",
                now: -d(7),
                due: Some(SevenDays),
                next: Some(-d(1)),
                ..base
            },
            Case {
                name: "shown reminders are not due again",
                now: -d(7) + h(5),
                shown: &[SevenDays],
                next: Some(-d(1)),
                ..base
            },
            Case {
                name: "a week offline: only the most urgent is due",
                now: -h(2),
                due: Some(OneDay),
                superseded: &[SevenDays],
                next: Some(-h(1)),
                ..base
            },
            Case {
                name: "offline past expiry: only Expired",
                now: d(1),
                due: Some(Expired),
                superseded: &[SevenDays, OneDay, OneHour],
                ..base
            },
            Case {
                name: "superseded only lists what is unshown",
                now: d(1),
                shown: &[OneDay],
                due: Some(Expired),
                superseded: &[SevenDays, OneHour],
                ..base
            },
            Case {
                name: "everything shown: nothing left",
                now: d(1),
                shown: &[SevenDays, OneDay, OneHour, Expired],
                ..base
            },
            Case {
                name: "latest shown settles the older ones",
                now: d(1),
                shown: &[Expired],
                ..base
            },
            Case {
                name: "unknown lifetime",
                lifetime: None,
                now: -d(400),
                next: Some(-d(7)),
                ..base
            },
            Case {
                name: "snooze defers a reached reminder, next is the snooze end",
                now: -d(1) + m(1),
                shown: &[SevenDays],
                snooze: Some(-h(12)),
                next: Some(-h(12)),
                ..base
            },
            Case {
                name: "at the snooze end it is due",
                now: -h(12),
                shown: &[SevenDays],
                snooze: Some(-h(12)),
                due: Some(OneDay),
                next: Some(-h(1)),
                ..base
            },
            Case {
                name: "snooze defers a future reminder",
                now: -d(10),
                snooze: Some(-d(6)),
                next: Some(-d(6)),
                ..base
            },
            Case {
                name: "snooze past expiry: next is the expiry",
                now: -m(30),
                shown: &[SevenDays, OneDay],
                snooze: Some(d(1)),
                next: Some(d(0)),
                ..base
            },
            Case {
                name: "Expired ignores the snooze",
                now: d(0),
                shown: &[SevenDays, OneDay],
                snooze: Some(d(1)),
                due: Some(Expired),
                superseded: &[OneHour],
                ..base
            },
            Case {
                name: "an ended snooze defers nothing",
                now: -d(7),
                snooze: Some(-d(7)),
                due: Some(SevenDays),
                next: Some(-d(1)),
                ..base
            },
            Case {
                name: "3-hour token: first look",
                lifetime: Some(h(3)),
                now: -h(3),
                next: Some(-m(36)),
                ..base
            },
            Case {
                name: "3-hour token: 20 % left",
                lifetime: Some(h(3)),
                now: -m(36),
                due: Some(ShortLifetime),
                next: Some(d(0)),
                ..base
            },
            Case {
                name: "45-minute token: 20 % left",
                lifetime: Some(m(45)),
                now: -m(9),
                due: Some(ShortLifetime),
                next: Some(d(0)),
                ..base
            },
            Case {
                name: "45-minute token expired",
                lifetime: Some(m(45)),
                now: m(1),
                due: Some(Expired),
                superseded: &[ShortLifetime],
                ..base
            },
        ];
        for case in cases {
            let shown: HashSet<ReminderKind> = case.shown.iter().copied().collect();
            let snooze = case.snooze.map(|s| exp + s);
            let t = token(1, exp, case.lifetime);
            let plan = plan(
                std::slice::from_ref(&t),
                exp + case.now,
                |u, k| u == t.uuid && shown.contains(&k),
                |_| snooze,
            );
            let due: Vec<_> = plan.due.iter().map(|r| r.kind).collect();
            assert_eq!(
                due,
                case.due.into_iter().collect::<Vec<_>>(),
                "{}: due",
                case.name
            );
            if let Some(r) = plan.due.first() {
                assert_eq!(
                    r,
                    &reminders_for(&t).into_iter().find(|x| x.kind == r.kind).unwrap()
                );
            }
            let superseded: Vec<_> = case.superseded.iter().map(|&k| key(1, k)).collect();
            assert_eq!(plan.superseded, superseded, "{}: superseded", case.name);
            assert_eq!(plan.next, case.next.map(|n| exp + n), "{}: next", case.name);
        }
    }

    #[test]
    fn plans_many_tokens_in_time_order() {
        let now = t0();
        let tokens = [
            token(1, now + h(1), None),                 // OneHour due now
            token(2, now + d(3), None),                 // SevenDays due, 4 days ago
            token(3, now + d(10), Some(d(30))),         // next at now + 3d
            token(4, now + h(2), Some(h(3))),           // next at now + 1h24m
            token(2, now + d(3), None),                 // a repeat is harmless
            token(5, now - Duration::seconds(1), None), // expired a second ago
        ];
        let plan = plan(&tokens, now, |_, _| false, |_| None);
        let due: Vec<_> = plan.due.iter().map(|r| (r.uuid.as_u128(), r.kind)).collect();
        assert_eq!(due, [(2, SevenDays), (5, Expired), (1, OneHour)]);
        let superseded = [
            (1, SevenDays),
            (1, OneDay),
            (5, SevenDays),
            (5, OneDay),
            (5, OneHour),
        ]
        .map(|(n, kind)| key(n, kind));
        assert_eq!(plan.superseded, superseded);
        assert_eq!(
            plan.next,
            Some(now + h(1)),
            "token 1 expires before token 4 reaches 20 %"
        );
        assert_eq!(plan.keys_to_claim().len(), 8);
        assert_eq!(
            super::plan(&[] as &[Watched], now, |_, _| false, |_| None),
            Plan::default()
        );
    }

    /// 100,000 tokens spread over 60 days either side of `now`, a third with their latest
    /// reminder shown and a fifth snoozed for a day: checked against the rules token by token.
    #[test]
    fn plans_100_000_tokens() {
        let now = t0();
        let n = 100_000u128;
        let tokens: Vec<Watched> = (0..n)
            .map(|i| {
                let offset = Duration::minutes(i as i64 * 2 * 60 * 24 * 60 / n as i64) - d(60);
                token(i, now + offset, Some(d(90)))
            })
            .collect();
        let latest_reached = |t: &Watched| {
            let left = t.expires - now;
            [
                (Expired, d(0)),
                (OneHour, h(1)),
                (OneDay, d(1)),
                (SevenDays, d(7)),
            ]
            .into_iter()
            .find(|&(_, before)| left <= before)
            .map(|(kind, _)| kind)
        };
        let shown: HashSet<String> = tokens
            .iter()
            .filter(|t| t.uuid.as_u128() % 3 == 0)
            .filter_map(|t| latest_reached(t).map(|k| reminder_key(t.uuid, k)))
            .collect();
        let snoozes: HashMap<Uuid, DateTime<Utc>> = tokens
            .iter()
            .filter(|t| t.uuid.as_u128() % 5 == 1)
            .map(|t| (t.uuid, now + d(1)))
            .collect();
        let plan = plan(
            &tokens,
            now,
            |u, k| shown.contains(&key(u.as_u128(), k)),
            |u| snoozes.get(&u).copied(),
        );

        let due: HashMap<Uuid, ReminderKind> = plan.due.iter().map(|r| (r.uuid, r.kind)).collect();
        assert_eq!(due.len(), plan.due.len());
        assert!(plan.due.windows(2).all(|w| w[0].at <= w[1].at));
        let superseded: HashSet<&str> = plan.superseded.iter().map(String::as_str).collect();
        let mut expected_superseded = 0;
        for t in &tokens {
            let i = t.uuid.as_u128();
            let expected = latest_reached(t)
                .filter(|_| i % 3 != 0)
                .filter(|&k| k == Expired || i % 5 != 1);
            assert_eq!(due.get(&t.uuid).copied(), expected, "token {i}");
            if let Some(kind) = latest_reached(t).filter(|_| i % 3 != 0) {
                let older = reminders_for(t).into_iter().take_while(|r| r.kind != kind);
                for r in older {
                    assert!(superseded.contains(r.key().as_str()), "token {i}: {}", r.key());
                    expected_superseded += 1;
                }
            }
        }
        assert_eq!(plan.superseded.len(), expected_superseded);
        // The soonest future reminder, a snoozed token's (other than Expired) waiting a day.
        let first_future = tokens
            .iter()
            .flat_map(|t| reminders_for(t).into_iter().map(move |r| (t.uuid.as_u128(), r)))
            .filter(|(_, r)| r.at > now)
            .map(|(i, r)| match r.kind {
                Expired => r.at,
                _ if i % 5 == 1 => r.at.max(now + d(1)),
                _ => r.at,
            })
            .min();
        assert!(first_future.is_some_and(|f| f < now + d(1)));
        assert_eq!(plan.next, first_future);
    }
}
