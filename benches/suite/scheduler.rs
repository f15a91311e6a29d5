//! Benchmark 6, scale of the scheduler: rebuilding the reminder schedule of 1,000 to 100,000 tokens and
//! finding the next deadline, to show it grows no worse than n log n.

use crate::micro::Estimates;
use crate::report::{Report, Section};
use crate::stats::seconds;
use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{BenchmarkId, Criterion};
use elitea_tokens::domain::{ListedTokens, ReminderKind, Token, Watched, plan, reminder_key};
use elitea_tokens::reminders::{Created, LogData, SortedByUuid, created_records, watched_tokens};
use elitea_tokens::state::{StateData, TokenRecord};
use std::borrow::Borrow;
use std::hint::black_box;
use uuid::Uuid;

pub const SIZES: [usize; 3] = [1_000, 10_000, 100_000];
const SERVER: &str = "https://elitea.example.com";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0)
        .single()
        .expect("a valid instant")
}

/// What the daemon holds for `n` tokens in use: the server's list (in the server's order, as
/// the daemon keeps it), each token in use with the tool's record of it, the reminder log (a
/// tenth of the tokens already reminded once, a hundredth snoozed).
pub struct World {
    pub listed: ListedTokens,
    pub in_use: SortedByUuid<Option<Created>>,
    pub log: LogData,
}

pub fn world(n: usize) -> World {
    let now = now();
    let mut listed = Vec::with_capacity(n);
    let mut state = StateData::default();
    let mut log = LogData::default();
    for i in 0..n {
        // Distinct and scattered, as random (v4) uuids are: an odd multiplier is a bijection.
        let uuid = Uuid::from_u128((i as u128 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835));
        // Expiries from an hour to a year away, and every fifth never.
        let expires = (i % 5 != 0).then(|| now + Duration::minutes(60 + (i as i64 * 7_907) % 525_600));
        let name = format!("token-{i:06}");
        listed.push(Token {
            uuid,
            id: i as i64,
            name: name.as_str().into(),
            masked: "...abcdefg".into(),
            expires,
        });
        state.tokens.push(TokenRecord {
            server: SERVER.into(),
            uuid,
            name,
            period: "30 days".into(),
            created_at: now - Duration::days(2),
            expires,
        });
        if i % 10 == 0 {
            log.mark_shown(reminder_key(uuid, ReminderKind::SevenDays));
        }
        if i % 100 == 0 {
            log.snoozes.insert(uuid, now + Duration::hours(5));
        }
    }
    // As the daemon keeps them: the list in the server's order (by id), and each token in use
    // with its record, from reading the state.
    let mut records = created_records(&state, SERVER, |_| true);
    let in_use = listed.iter().map(|t| (t.uuid, records.remove(&t.uuid))).collect();
    World {
        listed: listed.into(),
        in_use,
        log,
    }
}

fn watched(world: &World) -> impl Iterator<Item = Watched> + '_ {
    watched_tokens(&world.in_use, Option::as_ref, Some(&world.listed))
}

fn schedule(world: &World, watched: impl IntoIterator<Item = impl Borrow<Watched>>) -> Option<DateTime<Utc>> {
    plan(
        watched,
        now(),
        |u, k| world.log.is_shown(u, k),
        |u| world.log.snoozed_until(u),
    )
    .next
}

pub fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("scheduler");
    for n in SIZES {
        let world = world(n);
        group.bench_function(BenchmarkId::new("rebuild", n), |b| {
            b.iter(|| black_box(schedule(&world, watched(&world))))
        });
        let watched: Vec<Watched> = watched(&world).collect();
        group.bench_function(BenchmarkId::new("plan", n), |b| {
            b.iter(|| black_box(schedule(&world, &watched)))
        });
    }
    group.finish();
}

pub fn run(estimates: &Estimates, report: &mut Report) {
    let mut section = Section::new(
        "6. Scale of the scheduler",
        "In-process (criterion). *rebuild*: what the daemon does each time it plans: the tokens in \
         use (each with the tool's record of it, in uuid order, as the daemon keeps them) joined \
         with the server's list (kept in the server's order; every token is in use here, so each \
         plan sorts a copy of the list by uuid) by `reminders::watched_tokens`, streamed into \
         `domain::plan` (every token's reminders against the shared log's shown keys and snoozes, \
         what is due, and the next deadline). *plan*: `domain::plan` alone, over the watched \
         tokens collected beforehand. A tenth of the tokens \
         have a reminder already shown, a hundredth are snoozed. The last column divides the time by \
         n log n, relative to 1,000 tokens: at or under 1.0 means no worse than n log n.",
        &[
            "tokens",
            "rebuild",
            "spread",
            "plan",
            "spread",
            "per token (rebuild)",
            "rebuild / (n log n), rel.",
        ],
    );
    let n_log_n = |n: usize| n as f64 * (n as f64).log2();
    let base = estimates.get(&format!("scheduler/rebuild/{}", SIZES[0])).median / n_log_n(SIZES[0]);
    // The largest ratio of the sizes above the reference size (which is 1.0 by definition).
    let mut worst = 0.0_f64;
    for n in SIZES {
        let rebuild = estimates.get(&format!("scheduler/rebuild/{n}"));
        let plan = estimates.get(&format!("scheduler/plan/{n}"));
        let relative = rebuild.median / n_log_n(n) / base;
        if n > SIZES[0] {
            worst = worst.max(relative);
        }
        section.row(vec![
            n.to_string(),
            seconds(rebuild.median),
            rebuild.spread_text(),
            seconds(plan.median),
            plan.spread_text(),
            seconds(rebuild.median / n as f64),
            format!("{relative:.2}"),
        ]);
    }
    let at_100k = estimates.get(&format!("scheduler/rebuild/{}", SIZES[2])).median;
    report.goal(
        "6. Scheduler",
        "no worse than n log n up to 100,000 tokens",
        format!(
            "{} for 100,000; at most {worst:.2} of n log n, relative to 1,000",
            seconds(at_100k)
        ),
        worst <= 1.0,
    );
    report.sections.push(section);
}
