//! The reminder log in the state directory: which expiry reminders have been shown, and the
//! snoozes. Every daemon on the machine (one per IDE window) shares it, so a notice is sent once
//! however many windows are open, and a restart does not repeat one.
//!
//! `reminders.json` (no secrets, owner-only, replaced atomically):
//!
//! ```json
//! {
//!   "version": 1,
//!   "shown": ["<uuid>:seven_days", "<uuid>:expired"],
//!   "snoozes": { "<uuid>": "2026-03-01T09:00:00Z" }
//! }
//! ```
//!
//! `shown` holds the keys of `domain::reminder_key`, sorted; unknown keys are kept as they are
//! (a newer daemon may write kinds this one does not know). Changes happen under an exclusive
//! lock on `reminders.lock`; reads need none, since the file is only ever replaced whole.

use crate::domain::{ListedTokens, Plan, Reminder, ReminderKind, Token, Watched};
use crate::error::{Error, ErrorKind, Result};
use crate::fsx::{Access, create_private_dir, write_atomic};
use crate::state::StateData;
use chrono::{DateTime, Utc};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use uuid::Uuid;

const VERSION: u32 = 1;

/// The shared log of shown reminders and snoozes.
#[derive(Debug, Clone)]
pub struct ReminderLog {
    dir: PathBuf,
    file: PathBuf,
}

/// A snapshot of the log, for planning.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "LogFile")]
pub struct LogData {
    /// Keys (`<uuid>:<kind>`) of the reminders already shown or superseded, as in the file;
    /// kinds this daemon does not know (a newer daemon's) included.
    shown: HashSet<String, foldhash::fast::RandomState>,
    /// The same for the kinds this daemon knows, a bit per kind by token: looked up for every
    /// token at every plan, so without formatting a key (a 17-byte entry, not a string).
    shown_kinds: ByUuid<u8>,
    /// When each snoozed token may be reminded again.
    pub snoozes: ByUuid<DateTime<Utc>>,
}

/// The file as read.
#[derive(Deserialize, Default)]
#[serde(default)]
struct LogFile {
    shown: Vec<String>,
    snoozes: ByUuid<DateTime<Utc>>,
}

impl From<LogFile> for LogData {
    fn from(file: LogFile) -> LogData {
        let mut data = LogData {
            snoozes: file.snoozes,
            ..LogData::default()
        };
        for key in file.shown {
            data.mark_shown(key);
        }
        data
    }
}

fn kind_bit(kind: ReminderKind) -> u8 {
    1 << kind as u8
}

// One bit per kind in a `u8`: a ninth kind needs a wider mask.
const _: () = assert!(ReminderKind::ALL.len() <= u8::BITS as usize);

impl LogData {
    /// The `shown` argument of `domain::plan`: `|u, k| data.is_shown(u, k)`.
    pub fn is_shown(&self, uuid: Uuid, kind: ReminderKind) -> bool {
        self.shown_kinds
            .get(&uuid)
            .is_some_and(|kinds| kinds & kind_bit(kind) != 0)
    }

    /// Whether the key is in the log, whatever its kind.
    pub fn is_key_shown(&self, key: &str) -> bool {
        self.shown.contains(key)
    }

    /// Adds a key; `false` when it was there already.
    pub fn mark_shown(&mut self, key: String) -> bool {
        if let Some((uuid, kind)) = parse_key(&key) {
            *self.shown_kinds.entry(uuid).or_default() |= kind_bit(kind);
        }
        self.shown.insert(key)
    }

    /// Every key in the log, in no particular order.
    pub fn shown_keys(&self) -> impl Iterator<Item = &str> {
        self.shown.iter().map(String::as_str)
    }

    /// The `snoozed_until` argument of `domain::plan`: `|u| data.snoozed_until(u)`.
    pub fn snoozed_until(&self, uuid: Uuid) -> Option<DateTime<Utc>> {
        self.snoozes.get(&uuid).copied()
    }
}

/// The file as written: sorted, so that it diffs and reads well.
#[derive(Serialize)]
struct OnDisk<'a> {
    version: u32,
    shown: Vec<&'a str>,
    snoozes: BTreeMap<Uuid, DateTime<Utc>>,
}

impl ReminderLog {
    pub fn new(state_dir: &Path) -> ReminderLog {
        ReminderLog {
            dir: state_dir.to_path_buf(),
            file: state_dir.join("reminders.json"),
        }
    }

    /// The log file. The daemon's watcher leaves it aside: the scheduler reads it at every
    /// deadline, and a change to it (a reminder shown, a snooze) only ever defers one.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// Snapshot for planning. A missing file is empty. A damaged file is logged and read as
    /// empty rather than stopping reminders (the worst case is a repeated notice); it is
    /// replaced on the next change.
    pub fn load(&self) -> Result<LogData> {
        Ok(self.read()?.unwrap_or_default())
    }

    /// For each key not yet shown, marks it shown and returns it, in the order given. Keys
    /// already claimed (by this or another daemon) are not returned: only the claimer sends.
    pub fn claim(&self, keys: &[String]) -> Result<Vec<String>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.update(|data| {
            let won: Vec<String> = keys
                .iter()
                .filter(|k| data.mark_shown((*k).clone()))
                .cloned()
                .collect();
            let changed = !won.is_empty();
            (won, changed)
        })
    }

    /// Claims a plan's due and superseded reminders together, and returns the due reminders
    /// this daemon won, the ones it should send.
    pub fn claim_plan(&self, plan: &Plan) -> Result<Vec<Reminder>> {
        let won: HashSet<String> = self.claim(&plan.keys_to_claim())?.into_iter().collect();
        Ok(plan
            .due
            .iter()
            .filter(|r| won.contains(&r.key()))
            .cloned()
            .collect())
    }

    /// Silences a token's reminders (except `Expired`) until `until`, replacing an earlier
    /// snooze; a past `until` lifts it.
    pub fn snooze(&self, uuid: Uuid, until: DateTime<Utc>) -> Result<()> {
        self.update(|data| {
            let changed = data.snoozes.insert(uuid, until) != Some(until);
            ((), changed)
        })
    }

    /// Drops the entries of tokens not in `live` (deleted, or rotated away), keeping the file
    /// small. Keys that name no token are dropped too.
    pub fn prune(&self, live: &[Uuid]) -> Result<()> {
        let live: HashSet<Uuid> = live.iter().copied().collect();
        self.update(|data| {
            let before = (data.shown.len(), data.snoozes.len());
            data.shown
                .retain(|key| key_uuid(key).is_some_and(|u| live.contains(&u)));
            data.shown_kinds.retain(|uuid, _| live.contains(uuid));
            data.snoozes.retain(|uuid, _| live.contains(uuid));
            ((), before != (data.shown.len(), data.snoozes.len()))
        })
    }

    fn local_error(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::new(
            ErrorKind::Local,
            format!("cannot {what} in {}: {e}", self.dir.display()),
        )
    }

    /// The file's contents; `None` when it is damaged (logged).
    fn read(&self) -> Result<Option<LogData>> {
        match std::fs::read(&self.file) {
            Ok(bytes) => match serde_json::from_slice::<LogData>(&bytes) {
                Ok(data) => Ok(Some(data)),
                Err(e) => {
                    tracing::warn!(
                        file = %self.file.display(),
                        error = %e,
                        "the reminder log is damaged; starting afresh (a reminder may repeat)"
                    );
                    Ok(None)
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Some(LogData::default())),
            Err(e) => Err(self.local_error("read the reminder log", e)),
        }
    }

    /// Changes the log under the lock; writes it only when `change` says it changed something
    /// (or the file was damaged), so idle daemons do not rewrite it.
    fn update<T>(&self, change: impl FnOnce(&mut LogData) -> (T, bool)) -> Result<T> {
        create_private_dir(&self.dir).map_err(|e| self.local_error("create the state directory", e))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("reminders.lock"))
            .map_err(|e| self.local_error("open the reminder lock", e))?;
        lock.lock()
            .map_err(|e| self.local_error("lock the reminder log", e))?;
        let read = self.read()?;
        let damaged = read.is_none();
        let mut data = read.unwrap_or_default();
        let (result, changed) = change(&mut data);
        if changed || damaged {
            let mut shown: Vec<&str> = data.shown.iter().map(String::as_str).collect();
            shown.sort_unstable();
            let disk = OnDisk {
                version: VERSION,
                shown,
                snoozes: data.snoozes.iter().map(|(u, t)| (*u, *t)).collect(),
            };
            let text = serde_json::to_vec_pretty(&disk)
                .map_err(|e| self.local_error("encode the reminder log", e))?;
            write_atomic(&self.file, &text, Access::OwnerOnly)
                .map_err(|e| self.local_error("write the reminder log", e))?;
        }
        drop(lock);
        Ok(result)
    }
}

/// The token a key is about: the part before the first `:`.
fn key_uuid(key: &str) -> Option<Uuid> {
    key.split_once(':')
        .and_then(|(uuid, _)| Uuid::parse_str(uuid).ok())
}

/// The token and the kind of a key this daemon can read (`domain::reminder_key`'s form).
fn parse_key(key: &str) -> Option<(Uuid, ReminderKind)> {
    let (uuid, kind) = key.split_once(':')?;
    let kind = ReminderKind::ALL.into_iter().find(|k| k.as_str() == kind)?;
    Some((Uuid::parse_str(uuid).ok()?, kind))
}

/// A map keyed by token uuid. The uuids are random already, so a fast hash (foldhash, seeded per
/// map) does; SipHash cost a third of the reminder join at 100,000 tokens.
pub type ByUuid<V> = HashMap<Uuid, V, foldhash::fast::RandomState>;

/// What reminders need of a token this tool created: its name, for when the server cannot be
/// reached, and its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub name: CompactString,
    pub created_at: DateTime<Utc>,
    pub expires: Option<DateTime<Utc>>,
}

/// The state's records of `server`'s tokens that `wanted` keeps, by uuid; the first record of a
/// uuid wins, as `StateData::token` finds it.
pub fn created_records(state: &StateData, server: &str, wanted: impl Fn(Uuid) -> bool) -> ByUuid<Created> {
    let mut records = ByUuid::default();
    for record in state
        .tokens
        .iter()
        .filter(|r| r.server == server && wanted(r.uuid))
    {
        records.entry(record.uuid).or_insert_with(|| Created {
            name: record.name.as_str().into(),
            created_at: record.created_at,
            expires: record.expires,
        });
    }
    records
}

/// Values keyed by token uuid, kept in uuid order: found by binary search, and joined with a
/// list in the same order in one sequential pass. The reminder join at 100,000 tokens was
/// bound by memory latency when every listed token jumped to a random slot of a hash table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortedByUuid<V>(Box<[(Uuid, V)]>);

impl<V> SortedByUuid<V> {
    pub fn get(&self, uuid: &Uuid) -> Option<&V> {
        let at = self.0.binary_search_by_key(uuid, |(key, _)| *key).ok()?;
        Some(&self.0[at].1)
    }

    pub fn contains_key(&self, uuid: &Uuid) -> bool {
        self.get(uuid).is_some()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// In uuid order.
    pub fn iter(&self) -> impl Iterator<Item = (&Uuid, &V)> {
        self.0.iter().map(|(uuid, value)| (uuid, value))
    }
}

impl<V> Default for SortedByUuid<V> {
    fn default() -> Self {
        SortedByUuid(Box::default())
    }
}

/// Sorts; of entries with the same uuid, the first is kept.
impl<V> FromIterator<(Uuid, V)> for SortedByUuid<V> {
    fn from_iter<I: IntoIterator<Item = (Uuid, V)>>(entries: I) -> Self {
        let mut entries: Vec<(Uuid, V)> = entries.into_iter().collect();
        entries.sort_by_key(|(uuid, _)| *uuid);
        entries.dedup_by_key(|(uuid, _)| *uuid);
        SortedByUuid(entries.into_boxed_slice())
    }
}

/// With at most this many tokens in use, or few beside the list, a plan picks them out of the
/// server's list by looking each listed token up among them (their keys stay in the cache);
/// otherwise it sorts a copy of the whole list, so the join still walks memory in order (a
/// lookup per token in a large table, or a sorted index into the list, waits on memory at
/// 100,000 tokens).
const LOOKED_UP_IN_USE: usize = 256;

/// Whether a plan looks the listed tokens up among those in use rather than sorting the list.
fn looks_up(in_use: usize, listed: usize) -> bool {
    in_use <= LOOKED_UP_IN_USE || in_use.saturating_mul(16) <= listed
}

/// The tokens to remind about: those in use whose expiry is known, from the server's list
/// (`listed`, whose uuids are distinct) or, for a token the list lacks (the server cannot be
/// reached, or the token is gone), from the tool's record of it (`record_of` a value of
/// `in_use`). In uuid order, produced as they are consumed: planning streams through both
/// sides once. The daemon keeps the list in the server's order, so that its first answer waits
/// for no sort; the listed tokens in use are put in uuid order here (a list already in that
/// order is merged as it is).
pub fn watched_tokens<'a, V, F>(
    in_use: &'a SortedByUuid<V>,
    record_of: F,
    listed: Option<&'a ListedTokens>,
) -> WatchedTokens<'a, V, F>
where
    F: Fn(&V) -> Option<&Created>,
{
    let [front, back] = listed.map_or([&[][..], &[][..]], ListedTokens::parts);
    let sorted = |part: &[Token]| part.is_sorted_by_key(|token| token.uuid);
    let listed = match (front, back) {
        // A list in one part, already in uuid order, is merged where it lies.
        (part, []) | ([], part) if sorted(part) => Cow::Borrowed(part),
        _ => {
            let listed = front.iter().chain(back);
            let mut picked: Vec<Token> = if looks_up(in_use.len(), front.len() + back.len()) {
                listed
                    .filter(|token| in_use.contains_key(&token.uuid))
                    .cloned()
                    .collect()
            } else {
                listed.cloned().collect()
            };
            // As one 128-bit integer, big-endian: the same order as the bytes', in one comparison.
            picked.sort_unstable_by_key(|token| token.uuid.as_u128());
            Cow::Owned(picked)
        }
    };
    WatchedTokens {
        in_use: &in_use.0,
        listed,
        listed_at: 0,
        record_of,
    }
}

/// The merge of [`watched_tokens`]: two sequences in uuid order, walked once.
pub struct WatchedTokens<'a, V, F> {
    /// The tokens in use not reached yet.
    in_use: &'a [(Uuid, V)],
    /// The listed tokens (all, or those in use), in uuid order, and how many are behind.
    listed: Cow<'a, [Token]>,
    listed_at: usize,
    record_of: F,
}

impl<V, F> Iterator for WatchedTokens<'_, V, F>
where
    F: Fn(&V) -> Option<&Created>,
{
    type Item = Watched;

    fn next(&mut self) -> Option<Watched> {
        // Ends with the tokens in use; the rest of the list is not read.
        while let Some(((uuid, value), rest)) = self.in_use.split_first() {
            let uuid = *uuid;
            match self.listed.get(self.listed_at) {
                // Listed, not in use.
                Some(token) if token.uuid < uuid => self.listed_at += 1,
                // In use and listed: the server's name and expiry, the record's creation.
                Some(token) if token.uuid == uuid => {
                    self.listed_at += 1;
                    self.in_use = rest;
                    if let Some(expires) = token.expires {
                        return Some(Watched {
                            uuid,
                            name: token.name.clone(),
                            expires,
                            lifetime: (self.record_of)(value).map(|r| expires - r.created_at),
                        });
                    }
                }
                // In use, not listed: as the tool recorded it, if it did.
                _ => {
                    self.in_use = rest;
                    if let Some(record) = (self.record_of)(value)
                        && let Some(expires) = record.expires
                    {
                        return Some(Watched {
                            uuid,
                            name: record.name.clone(),
                            expires,
                            lifetime: Some(expires - record.created_at),
                        });
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::{LogData, SortedByUuid};
    use crate::domain::{ReminderKind, reminder_key};
    use uuid::Uuid;

    /// Keys as the file holds them: the kinds this daemon knows are looked up by token and
    /// kind; every key, known or not, stays in the log as it was.
    #[test]
    fn the_log_answers_by_token_and_kind_and_keeps_every_key() {
        let (a, b) = (Uuid::from_u128(0xa), Uuid::from_u128(0xb));
        let keys = [
            reminder_key(a, ReminderKind::SevenDays),
            reminder_key(a, ReminderKind::Expired),
            format!("{b}:a_kind_from_a_newer_daemon"),
            "not-a-uuid:one_day".to_string(),
        ];
        let data: LogData =
            serde_json::from_value(serde_json::json!({"version": 1, "shown": keys})).expect("a log");
        let cases = [
            (a, ReminderKind::SevenDays, true),
            (a, ReminderKind::Expired, true),
            (a, ReminderKind::OneDay, false),
            (b, ReminderKind::SevenDays, false),
        ];
        for (uuid, kind, shown) in cases {
            assert_eq!(data.is_shown(uuid, kind), shown, "{uuid} {kind:?}");
        }
        let mut kept: Vec<&str> = data.shown_keys().collect();
        kept.sort_unstable();
        let mut expected: Vec<&str> = keys.iter().map(String::as_str).collect();
        expected.sort_unstable();
        assert_eq!(kept, expected);

        let mut data = data;
        assert!(!data.mark_shown(keys[0].clone()), "already there");
        assert!(data.mark_shown(reminder_key(b, ReminderKind::OneHour)));
        assert!(data.is_shown(b, ReminderKind::OneHour));
    }

    /// The join agrees with a lookup of each token in use, whichever way it picks the listed
    /// tokens (a lookup among a few tokens in use, a sorted copy of the list among many) and
    /// whatever the list's order.
    #[test]
    fn watched_tokens_match_a_lookup_for_few_and_many_tokens_in_use() {
        use super::{Created, looks_up, watched_tokens};
        use crate::domain::{ListedTokens, Token, Watched};
        use chrono::{Duration, TimeZone, Utc};
        let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
        // Scattered, as random (v4) uuids are: an odd multiplier is a bijection.
        let uuid = |i: u128| Uuid::from_u128((i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835));
        let expires = |i: u128| (i % 3 != 1).then(|| t0 + Duration::hours(i as i64));
        let listed: Vec<Token> = (0..1_000u128)
            .map(|i| Token {
                uuid: uuid(i),
                id: i as i64,
                name: format!("listed-{i}").into(),
                masked: "...abcdefg".into(),
                expires: expires(i),
            })
            .collect();
        // Tokens in use: every `step`-th listed one, and as many the list lacks (`i` from 1,000).
        let in_use = |step: usize| -> SortedByUuid<Created> {
            (0..1_000u128)
                .step_by(step)
                .flat_map(|i| [i, i + 1_000])
                .map(|i| {
                    let created = Created {
                        name: format!("recorded-{i}").into(),
                        created_at: t0 - Duration::days(1),
                        expires: expires(i + 1),
                    };
                    (uuid(i), created)
                })
                .collect()
        };
        let looked_up = |in_use: &SortedByUuid<Created>, listed: &[Token]| -> Vec<Watched> {
            in_use
                .iter()
                .filter_map(|(uuid, created)| match listed.iter().find(|t| t.uuid == *uuid) {
                    Some(token) => token.expires.map(|expires| Watched {
                        uuid: *uuid,
                        name: token.name.clone(),
                        expires,
                        lifetime: Some(expires - created.created_at),
                    }),
                    None => created.expires.map(|expires| Watched {
                        uuid: *uuid,
                        name: created.name.clone(),
                        expires,
                        lifetime: Some(expires - created.created_at),
                    }),
                })
                .collect()
        };
        // Both ways are taken below; a few hundred in use beside a long list are looked up.
        let policy = [
            (2, 1_000, true),
            (256, 1_000, true),
            (2_000, 1_000, false),
            (300, 100_000, true),
            (10_000, 100_000, false),
        ];
        for (in_use, listed, expected) in policy {
            assert_eq!(
                looks_up(in_use, listed),
                expected,
                "{in_use} in use, {listed} listed"
            );
        }
        let mut by_uuid = listed.clone();
        by_uuid.sort_by_key(|t| t.uuid);
        let mut reversed = listed.clone();
        reversed.reverse();
        for step in [1_000, 100, 10, 1] {
            let in_use = in_use(step);
            let few = looks_up(in_use.len(), listed.len());
            for (order, list) in [("by id", &listed), ("by uuid", &by_uuid), ("reversed", &reversed)] {
                let expected = looked_up(&in_use, list);
                assert!(
                    expected.len() > in_use.len() / 2,
                    "the case watches most tokens in use"
                );
                // In one part, or in two as the first fetch is parsed, split anywhere.
                for split in [0, 1, list.len() / 2, list.len()] {
                    let (front, back) = list.split_at(split);
                    let parts = ListedTokens::in_two_parts(front.to_vec(), back.to_vec());
                    let watched: Vec<Watched> =
                        watched_tokens(&in_use, |created| Some(created), Some(&parts)).collect();
                    assert_eq!(
                        watched,
                        expected,
                        "{} in use (few: {few}), list {order}, split at {split}",
                        in_use.len()
                    );
                }
            }
        }
    }

    #[test]
    fn sorted_by_uuid_finds_each_key_and_keeps_the_first_of_a_repeat() {
        let id = Uuid::from_u128;
        let table: SortedByUuid<&str> = [(id(30), "c"), (id(10), "a"), (id(20), "b"), (id(10), "a-again")]
            .into_iter()
            .collect();
        assert_eq!(table.len(), 3);
        let keys: Vec<u128> = table.iter().map(|(uuid, _)| uuid.as_u128()).collect();
        assert_eq!(keys, [10, 20, 30]);
        let cases = [
            (10, Some("a")),
            (20, Some("b")),
            (30, Some("c")),
            (0, None),
            (15, None),
            (40, None),
        ];
        for (n, expected) in cases {
            assert_eq!(table.get(&id(n)).copied(), expected, "uuid {n}");
            assert_eq!(table.contains_key(&id(n)), expected.is_some(), "uuid {n}");
        }
        assert!(SortedByUuid::<()>::default().is_empty());
    }
}
