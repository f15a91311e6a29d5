//! The shared reminder log: exclusive claims across threads and processes, snoozes, pruning,
//! recovery from a damaged file, and two daemons sharing one log through a token's whole life.

use chrono::{DateTime, Duration, TimeZone, Utc};
use elitea_tokens::domain::{ReminderKind, Watched, plan, reminder_key};
use elitea_tokens::reminders::ReminderLog;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Barrier};
use uuid::Uuid;

use ReminderKind::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

fn keys(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| reminder_key(Uuid::from_u128(i as u128), OneDay))
        .collect()
}

/// Every key is won exactly once overall, and the winners together cover them all.
fn assert_each_once(all: &[String], won: impl IntoIterator<Item = String>) {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for key in won {
        *counts.entry(key).or_default() += 1;
    }
    assert!(counts.values().all(|&c| c == 1), "a key was claimed twice");
    assert_eq!(counts.len(), all.len(), "a key was never claimed");
}

#[test]
fn claims_are_exclusive_across_threads() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let all = keys(200);
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (state, all, barrier) = (state.clone(), all.clone(), barrier.clone());
            std::thread::spawn(move || {
                // Each thread its own instance, order and batch size, as separate daemons would.
                let log = ReminderLog::new(&state);
                let mut order = all;
                order.rotate_left(t * 25);
                if t % 2 == 1 {
                    order.reverse();
                }
                barrier.wait();
                let mut won = Vec::new();
                for batch in order.chunks(t + 1) {
                    won.extend(log.claim(batch).unwrap());
                }
                won
            })
        })
        .collect();
    let won: Vec<String> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert_each_once(&all, won);
    let data = ReminderLog::new(&state).load().unwrap();
    let shown: HashSet<String> = data.shown_keys().map(String::from).collect();
    assert_eq!(shown, all.iter().cloned().collect::<HashSet<_>>());
}

const CHILD_DIR: &str = "ELITEA_TOKENS_TEST_REMINDERS_DIR";
const CHILD_OUT: &str = "ELITEA_TOKENS_TEST_REMINDERS_OUT";

/// Run by `claims_are_exclusive_across_processes` as a separate process; a no-op otherwise.
#[test]
fn claim_child_process() {
    let (Ok(dir), Ok(out)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_OUT)) else {
        return;
    };
    let log = ReminderLog::new(Path::new(&dir));
    let won: Vec<String> = keys(200)
        .chunks(3)
        .flat_map(|batch| log.claim(batch).unwrap())
        .collect();
    std::fs::write(out, won.join("\n")).unwrap();
}

#[test]
fn claims_are_exclusive_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let children: Vec<_> = (0..2)
        .map(|i| {
            let out = dir.path().join(format!("won-{i}"));
            let child = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["claim_child_process", "--exact", "--test-threads=1"])
                .env(CHILD_DIR, &state)
                .env(CHILD_OUT, &out)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            (child, out)
        })
        .collect();
    let mut won = Vec::new();
    for (mut child, out) in children {
        assert!(child.wait().unwrap().success());
        let text = std::fs::read_to_string(out).unwrap();
        won.extend(text.lines().filter(|l| !l.is_empty()).map(String::from));
    }
    assert_each_once(&keys(200), won);
}

#[test]
fn claims_return_new_keys_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = ReminderLog::new(dir.path());
    let owned = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<Vec<_>>();
    assert_eq!(log.claim(&[]).unwrap(), Vec::<String>::new());
    assert!(!log.path().exists(), "an empty claim writes nothing");
    let [a, b, c] = ["a:one_day", "b:one_day", "c:one_day"];
    assert_eq!(log.claim(&owned(&[b, a, b])).unwrap(), [b, a]);
    assert_eq!(log.claim(&owned(&[a, c, b])).unwrap(), [c]);
    assert!(log.claim(&owned(&[a, b, c])).unwrap().is_empty());
}

#[test]
fn snoozes_persist_across_instances() {
    let dir = tempfile::tempdir().unwrap();
    let uuid = Uuid::from_u128(7);
    ReminderLog::new(dir.path()).snooze(uuid, t0()).unwrap();
    let data = ReminderLog::new(dir.path()).load().unwrap();
    assert_eq!(data.snoozed_until(uuid), Some(t0()));
    assert_eq!(data.snoozed_until(Uuid::from_u128(8)), None);
    // A new snooze replaces the old one, shorter or not.
    ReminderLog::new(dir.path())
        .snooze(uuid, t0() - Duration::hours(1))
        .unwrap();
    let data = ReminderLog::new(dir.path()).load().unwrap();
    assert_eq!(data.snoozed_until(uuid), Some(t0() - Duration::hours(1)));
}

#[test]
fn prune_keeps_only_live_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let log = ReminderLog::new(dir.path());
    let [live, gone] = [Uuid::from_u128(1), Uuid::from_u128(2)];
    let claimed: Vec<String> = [live, gone]
        .into_iter()
        .flat_map(|u| [reminder_key(u, SevenDays), reminder_key(u, OneDay)])
        .chain(["not-a-uuid:one_day".to_string()])
        .collect();
    log.claim(&claimed).unwrap();
    log.snooze(live, t0()).unwrap();
    log.snooze(gone, t0()).unwrap();
    log.prune(&[live]).unwrap();
    let data = log.load().unwrap();
    let expected: HashSet<String> = [reminder_key(live, SevenDays), reminder_key(live, OneDay)].into();
    assert_eq!(
        data.shown_keys().map(String::from).collect::<HashSet<_>>(),
        expected
    );
    assert!(data.is_shown(live, OneDay) && !data.is_shown(gone, OneDay));
    assert_eq!(data.snoozes.keys().collect::<Vec<_>>(), [&live]);
}

#[test]
fn the_file_is_sorted_owner_only_json() {
    let dir = tempfile::tempdir().unwrap();
    let log = ReminderLog::new(&dir.path().join("state"));
    assert_eq!(log.load().unwrap(), Default::default(), "a missing file is empty");
    log.claim(&["b:expired".into(), "a:expired".into()]).unwrap();
    log.snooze(Uuid::from_u128(1), t0()).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(log.path()).unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "version": 1,
            "shown": ["a:expired", "b:expired"],
            "snoozes": { "00000000-0000-0000-0000-000000000001": "2026-03-01T09:00:00Z" }
        })
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(log.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[test]
fn a_damaged_file_reads_as_empty_and_is_rewritten() {
    for damage in [&b"{\"shown\": [\"a:one_d"[..], b"\x00\xff garbage", b"[]", b""] {
        let dir = tempfile::tempdir().unwrap();
        let log = ReminderLog::new(dir.path());
        std::fs::write(log.path(), damage).unwrap();
        assert_eq!(log.load().unwrap(), Default::default());
        // Pruning changes nothing in an empty log, but still replaces the damaged file.
        log.prune(&[]).unwrap();
        assert!(serde_json::from_slice::<serde_json::Value>(&std::fs::read(log.path()).unwrap()).is_ok());
        std::fs::write(log.path(), damage).unwrap();
        assert_eq!(log.claim(&["a:one_day".into()]).unwrap(), ["a:one_day"]);
        assert!(log.load().unwrap().is_key_shown("a:one_day"));
    }
}

/// A daemon as the `serve` task runs it: load, plan, claim, send what it won.
struct Daemon {
    log: ReminderLog,
    next: Option<DateTime<Utc>>,
}

impl Daemon {
    fn new(state: &Path) -> Daemon {
        Daemon {
            log: ReminderLog::new(state),
            next: None,
        }
    }

    fn tick(&mut self, tokens: &[Watched], now: DateTime<Utc>) -> Vec<ReminderKind> {
        let data = self.log.load().unwrap();
        let plan = plan(tokens, now, |u, k| data.is_shown(u, k), |u| data.snoozed_until(u));
        self.next = plan.next;
        self.log
            .claim_plan(&plan)
            .unwrap()
            .into_iter()
            .map(|r| r.kind)
            .collect()
    }
}

fn thirty_day_token() -> Watched {
    Watched {
        uuid: Uuid::from_u128(30),
        name: "ci".into(),
        expires: t0() + Duration::days(30),
        lifetime: Some(Duration::days(30)),
    }
}

/// Both daemons plan from the same snapshot before either claims, every 7 minutes through the
/// token's life: each notice is sent once, in order, at the first step on or after it is due.
#[test]
fn two_daemons_racing_send_each_notice_once() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = [thirty_day_token()];
    let expires = tokens[0].expires;
    let logs = [ReminderLog::new(dir.path()), ReminderLog::new(dir.path())];
    let step = Duration::minutes(7);
    let mut sent = Vec::new();
    let mut now = t0();
    let mut turn = 0usize;
    while now <= expires + Duration::days(1) {
        let plans: Vec<_> = logs
            .iter()
            .map(|log| {
                let data = log.load().unwrap();
                plan(
                    &tokens,
                    now,
                    |u, k| data.is_shown(u, k),
                    |u| data.snoozed_until(u),
                )
            })
            .collect();
        assert_eq!(plans[0], plans[1]);
        for i in [turn % 2, (turn + 1) % 2] {
            for r in logs[i].claim_plan(&plans[i]).unwrap() {
                sent.push((i, r.kind, now));
            }
        }
        now += step;
        turn += 1;
    }
    let first_step_at = |at: DateTime<Utc>| {
        let minutes = (at - t0()).num_minutes();
        t0() + step * ((minutes + 6) / 7) as i32
    };
    let expected: Vec<_> = [
        (SevenDays, expires - Duration::days(7)),
        (OneDay, expires - Duration::days(1)),
        (OneHour, expires - Duration::hours(1)),
        (Expired, expires),
    ]
    .into_iter()
    .map(|(kind, at)| (kind, first_step_at(at)))
    .collect();
    let got: Vec<_> = sent.iter().map(|&(_, kind, at)| (kind, at)).collect();
    assert_eq!(got, expected);
    let senders: HashSet<usize> = sent.iter().map(|&(i, _, _)| i).collect();
    assert_eq!(senders.len(), 2, "either daemon may win a race: {sent:?}");
}

/// Daemons sleeping until their plan's `next`: notices land on the exact instants, a restart
/// and a late starter repeat nothing, a week offline yields one notice, a snooze defers the
/// 1-hour notice but not the expiry.
#[test]
fn a_token_life_with_restarts_offline_and_snooze() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = [thirty_day_token()];
    let (uuid, expires) = (tokens[0].uuid, tokens[0].expires);
    let days = Duration::days;

    // Two daemons wake at whichever `next` is sooner, each time in a different order.
    let mut a = Daemon::new(dir.path());
    let mut b = Daemon::new(dir.path());
    assert!(a.tick(&tokens, t0()).is_empty());
    assert!(b.tick(&tokens, t0()).is_empty());
    let mut sent = Vec::new();
    for round in 0.. {
        let now = a.next.into_iter().chain(b.next).min().unwrap();
        if now > expires - days(2) {
            break;
        }
        let (first, second) = if round % 2 == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        sent.extend(first.tick(&tokens, now).into_iter().map(|k| (k, now)));
        sent.extend(second.tick(&tokens, now).into_iter().map(|k| (k, now)));
        assert_eq!(a.next, b.next);
    }
    assert_eq!(sent, [(SevenDays, expires - days(7))]);

    // A restarted daemon and one started late repeat nothing.
    let mut a = Daemon::new(dir.path());
    assert!(a.tick(&tokens, expires - days(6)).is_empty());
    assert_eq!(a.next, Some(expires - days(1)));

    // Both offline until 12 hours before expiry: just the 1-day notice (no 7-day one was left).
    let mut b = Daemon::new(dir.path());
    let now = expires - Duration::hours(12);
    assert_eq!(b.tick(&tokens, now), [OneDay]);
    assert!(a.tick(&tokens, now).is_empty());

    // Snoozed until half an hour before expiry: the 1-hour notice waits for the snooze end.
    a.log.snooze(uuid, expires - Duration::minutes(30)).unwrap();
    assert!(a.tick(&tokens, expires - Duration::hours(1)).is_empty());
    assert_eq!(a.next, Some(expires - Duration::minutes(30)));
    assert_eq!(b.tick(&tokens, expires - Duration::minutes(30)), [OneHour]);
    assert!(a.tick(&tokens, expires - Duration::minutes(30)).is_empty());

    // A snooze past expiry does not hold back the expiry notice.
    b.log.snooze(uuid, expires + days(1)).unwrap();
    assert_eq!(a.tick(&tokens, expires), [Expired]);
    assert!(b.tick(&tokens, expires).is_empty());
    assert_eq!((a.next, b.next), (None, None));
    assert!(
        Daemon::new(dir.path())
            .tick(&tokens, expires + days(3))
            .is_empty()
    );

    // Once the token is deleted its entries go.
    a.log.prune(&[]).unwrap();
    assert_eq!(a.log.load().unwrap(), Default::default());
}

/// A week offline past the 7-day and 1-day marks sends one notice and marks the other shown.
#[test]
fn catching_up_sends_only_the_most_urgent() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = [thirty_day_token()];
    let expires = tokens[0].expires;
    let mut daemon = Daemon::new(dir.path());
    assert!(daemon.tick(&tokens, t0() + Duration::days(20)).is_empty());
    assert_eq!(daemon.tick(&tokens, expires - Duration::hours(2)), [OneDay]);
    let data = daemon.log.load().unwrap();
    let shown: HashSet<String> = data.shown_keys().map(String::from).collect();
    let expected: HashSet<String> = [SevenDays, OneDay]
        .map(|k| reminder_key(tokens[0].uuid, k))
        .into();
    assert_eq!(shown, expected);
    assert_eq!(daemon.next, Some(expires - Duration::hours(1)));
}

/// Which tokens the daemon reminds about, and with what expiry and lifetime: the server's list
/// first, the state's record when the server's list lacks the token, records of other servers
/// ignored, never-expiring tokens left out.
#[test]
fn watched_tokens_join_the_list_and_the_state() {
    use elitea_tokens::domain::{ListedTokens, Token, Watched};
    use elitea_tokens::reminders::{Created, SortedByUuid, created_records, watched_tokens};
    use elitea_tokens::state::{StateData, TokenRecord};
    let server = "https://elitea.example.com";
    let id = |n: u128| Uuid::from_u128(n);
    let at = |days: i64| t0() + Duration::days(days);
    let listed = |n: u128, name: &str, expires: Option<DateTime<Utc>>| Token {
        uuid: id(n),
        id: n as i64,
        name: name.into(),
        masked: "...abcdefg".into(),
        expires,
    };
    let record = |n: u128, on: &str, name: &str, expires: Option<DateTime<Utc>>| TokenRecord {
        server: on.into(),
        uuid: id(n),
        name: name.into(),
        period: "30 days".into(),
        created_at: at(-30),
        expires,
    };
    let list = vec![
        listed(1, "listed-and-recorded", Some(at(5))),
        listed(2, "listed-only", Some(at(6))),
        listed(3, "never", None),
    ];
    let state = StateData {
        tokens: vec![
            record(1, server, "old-name", Some(at(1))),
            record(4, server, "recorded-only", Some(at(7))),
            record(5, "https://other.example.com", "elsewhere", Some(at(8))),
            record(4, server, "a-later-duplicate", Some(at(9))),
        ],
        workspaces: Vec::new(),
    };
    let records = created_records(&state, server, |uuid| uuid != id(6));
    assert_eq!(
        records.len(),
        2,
        "other servers' records and unwanted uuids are left out"
    );
    let in_use: SortedByUuid<Option<&Created>> = (1..=6)
        .rev()
        .map(id)
        .map(|uuid| (uuid, records.get(&uuid)))
        .collect();
    let watched = |listed: Option<&[Token]>| {
        let listed = listed.map(|list| ListedTokens::from(list.to_vec()));
        watched_tokens(&in_use, |record| *record, listed.as_ref()).collect::<Vec<_>>()
    };
    let expected_online = vec![
        Watched {
            uuid: id(1),
            name: "listed-and-recorded".into(),
            expires: at(5),
            lifetime: Some(Duration::days(35)),
        },
        Watched {
            uuid: id(2),
            name: "listed-only".into(),
            expires: at(6),
            lifetime: None,
        },
        Watched {
            uuid: id(4),
            name: "recorded-only".into(),
            expires: at(7),
            lifetime: Some(Duration::days(37)),
        },
    ];
    // A list in uuid order; any other order (the server's, as the daemon keeps it) comes out
    // the same, and so does a list with tokens no workspace uses.
    let mut reversed = list.clone();
    reversed.reverse();
    let mut with_unused = vec![
        listed(7, "unused", Some(at(2))),
        listed(0, "unused-too", Some(at(3))),
    ];
    with_unused.extend(list.iter().cloned());
    for (order, list) in [
        ("uuid", &list),
        ("reversed", &reversed),
        ("with unused", &with_unused),
    ] {
        assert_eq!(watched(Some(list)), expected_online, "list in {order} order");
    }
    // Offline: only what the state recorded for this server.
    let expected_offline = vec![
        Watched {
            uuid: id(1),
            name: "old-name".into(),
            expires: at(1),
            lifetime: Some(Duration::days(31)),
        },
        Watched {
            uuid: id(4),
            name: "recorded-only".into(),
            expires: at(7),
            lifetime: Some(Duration::days(37)),
        },
    ];
    assert_eq!(watched(None), expected_offline);
}
