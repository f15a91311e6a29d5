//! Benchmark 5, idle and memory: the daemon tracking 10,000 tokens with reminders scheduled, left alone.
//! Context switches of all its threads are read from `/proc` once a second (reading them does
//! not wake the process); one reminder is due in the middle of the window, so the figure shows
//! the daemon wakes for that deadline and for nothing else.

use crate::Settings;
use crate::fixture::{self, SandboxProcess};
use crate::listing::LIFETIMES;
use crate::lsp::{Lsp, initialize_params};
use crate::report::{Report, Section};
use crate::stats::megabytes;
use chrono::{Duration as Days, Utc};
use elitea_tokens::domain::Flavor;
use elitea_tokens::paths::Paths;
use elitea_tokens::state::{Ide, StateData, TokenRecord, WorkspaceRecord};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

const TOKENS: usize = 10_000;

/// Context switches (voluntary + involuntary) of each thread of `pid`, by thread id.
fn switches(pid: u32) -> HashMap<String, (String, u64)> {
    let mut threads = HashMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return threads;
    };
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let count: u64 = status
            .lines()
            .filter(|l| {
                l.starts_with("voluntary_ctxt_switches") || l.starts_with("nonvoluntary_ctxt_switches")
            })
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        threads.insert(
            task.file_name().to_string_lossy().into_owned(),
            (name.trim().to_string(), count),
        );
    }
    threads
}

/// Switches between two readings: growth of surviving threads, all of a new thread's, and one
/// for each thread that ended.
fn delta(before: &HashMap<String, (String, u64)>, after: &HashMap<String, (String, u64)>) -> u64 {
    let grown: u64 = after
        .iter()
        .map(|(tid, (_, n))| n - before.get(tid).map_or(0, |(_, b)| (*b).min(*n)))
        .sum();
    let ended = before.keys().filter(|tid| !after.contains_key(*tid)).count() as u64;
    grown + ended
}

/// `name: n` for each thread that switched between the first and the last reading.
fn by_thread(readings: &[HashMap<String, (String, u64)>]) -> String {
    let (Some(first), Some(last)) = (readings.first(), readings.last()) else {
        return "none".into();
    };
    let mut counts: Vec<(String, u64)> = last
        .iter()
        .map(|(tid, (name, n))| (name.clone(), n - first.get(tid).map_or(0, |(_, b)| (*b).min(*n))))
        .filter(|(_, n)| *n > 0)
        .collect();
    counts.sort();
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(name, n)| format!("{name}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

pub fn run(settings: &Settings, report: &mut Report) {
    let dir = tempfile::tempdir().expect("temp dir");
    let sandbox = SandboxProcess::start();
    sandbox.seed(TOKENS - 2, "seed", &LIFETIMES);
    let home = dir.path().join("home");
    let store = fixture::login(&home, &sandbox);
    let workspace = fixture::workspace(dir.path());
    let settle = Duration::from_secs(settings.idle_settle_secs);
    let window = Duration::from_secs(settings.idle_secs);

    // The one token with a deadline inside the window: its 7-day reminder falls in the middle.
    let created = Instant::now();
    let window_starts = created + Duration::from_secs(1) + settle;
    let due_after = (window_starts + window / 2) - created;
    let special = sandbox.create("due-in-the-window", 7 * 86_400 + due_after.as_secs() as i64);
    let special_uuid = special["uuid"].as_str().and_then(|u| u.parse::<Uuid>().ok());

    // Every token is recorded as created by the tool a day ago and applied to the workspace, so
    // the daemon tracks all of them.
    let listed = sandbox.list();
    assert_eq!(listed.len(), TOKENS);
    let server = sandbox.url.clone();
    let now = Utc::now();
    let mut state = StateData::default();
    for token in &listed {
        let uuid: Uuid = token["uuid"].as_str().and_then(|u| u.parse().ok()).expect("uuid");
        let name = token["name"].as_str().unwrap_or_default().to_string();
        state.tokens.push(TokenRecord {
            server: server.clone(),
            uuid,
            name: name.clone(),
            period: "30 days".into(),
            created_at: now - Days::days(1),
            expires: None,
        });
        state.workspaces.push(WorkspaceRecord {
            server: server.clone(),
            uuid,
            name,
            workspace: workspace.clone(),
            ide: Ide::Jetbrains,
            flavor: Flavor::Current,
            applied_at: now,
        });
    }
    let state_dir = Paths::under(home.clone()).state_dir;
    std::fs::create_dir_all(&state_dir).expect("state dir");
    std::fs::write(
        state_dir.join("state.json"),
        serde_json::to_vec(&state).expect("state JSON"),
    )
    .expect("write the state");

    let mut command = fixture::command(&home);
    // `ELITEA_BENCH_WRAP="valgrind --tool=massif"`, say: the daemon runs under that program.
    if let Some(wrapper) = std::env::var("ELITEA_BENCH_WRAP")
        .ok()
        .filter(|w| !w.trim().is_empty())
    {
        let mut words = wrapper.split_whitespace();
        let program = words.next().expect("a non-empty wrapper");
        let mut wrapped = std::process::Command::new(program);
        wrapped.args(words).arg(fixture::bin());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        command = wrapped;
    }
    command.arg("serve");
    if let Some(log) = std::env::var_os("ELITEA_BENCH_DAEMON_LOG") {
        command.arg("--log-file").arg(log);
    }
    let mut lsp = Lsp::spawn(&mut command);
    let pid = lsp.pid();
    lsp.request(
        "initialize",
        initialize_params(
            &workspace,
            json!({"notifications": ["elitea/tokenExpiring", "elitea/tokensChanged"]}),
        ),
    )
    .expect("initialize");
    lsp.notify("initialized", json!({}));
    let first = lsp.request("elitea/listTokens", json!({})).expect("listTokens");
    assert_eq!(first["total"], TOKENS);
    let rss_busy = status_kb(pid, "VmRSS");
    std::thread::sleep(window_starts.saturating_duration_since(Instant::now()));

    // The window: one reading a second.
    let tracer = std::env::var_os("ELITEA_BENCH_STRACE").map(|out| {
        std::process::Command::new("strace")
            .args(["-f", "-tt", "-o"])
            .arg(out)
            .args(["-p", &pid.to_string()])
            .spawn()
            .expect("strace")
    });
    let started = Instant::now();
    let mut readings = vec![switches(pid)];
    let mut per_second = Vec::new();
    for second in 1..=settings.idle_secs {
        std::thread::sleep((started + Duration::from_secs(second)).saturating_duration_since(Instant::now()));
        let now = switches(pid);
        per_second.push(delta(readings.last().expect("a reading"), &now));
        readings.push(now);
    }
    if let Some(mut tracer) = tracer {
        let _ = tracer.kill();
        let _ = tracer.wait();
    }
    let reminder = lsp.wait_for("elitea/tokenExpiring", Duration::ZERO);
    let rss = status_kb(pid, "VmRSS");
    let hwm = status_kb(pid, "VmHWM");
    let threads: Vec<String> = {
        let mut names: Vec<String> = readings
            .last()
            .expect("a reading")
            .values()
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        names
    };
    lsp.close();

    // Which seconds hold the deadline: the one the reminder arrived in, the one before (the
    // deadline falls on a whole second of the token's expiry, and sending takes a moment) and
    // the one after (the watcher's debounced event for the reminder log, 200 ms later).
    let due_second = reminder
        .as_ref()
        .map(|(at, _)| at.saturating_duration_since(started).as_secs() as usize);
    let at_deadline = |i: usize| due_second.is_some_and(|d| i + 1 >= d && i <= d + 1);
    let scheduled: u64 = per_second
        .iter()
        .enumerate()
        .filter(|(i, _)| at_deadline(*i))
        .map(|(_, n)| n)
        .sum();
    let unscheduled: u64 = per_second
        .iter()
        .enumerate()
        .filter(|(i, _)| !at_deadline(*i))
        .map(|(_, n)| n)
        .sum();
    let busy_seconds: Vec<String> = per_second
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| format!("{i}–{}s: {n}", i + 1))
        .collect();

    let mut section = Section::new(
        "5. Idle and memory",
        format!(
            "The daemon (credential in the `{store}` store) is logged in to a sandbox process with \
             {TOKENS} tokens, every one recorded as applied to its workspace, so it tracks and schedules \
             reminders for all of them. After `initialize` and a first `elitea/listTokens` it is left \
             alone for {}s, {}s after start-up. One token's 7-day reminder is due in the middle of \
             the window. Context switches of all threads come from `/proc/<pid>/task/*/status`, \
             read once a second; memory from `/proc/<pid>/status` at the end.",
            settings.idle_secs, settings.idle_settle_secs
        ),
        &["measure", "value", "reference", "ratio"],
    );
    section.row(vec![
        "context switches at scheduled deadlines".into(),
        format!(
            "{scheduled} (the reminder arrived {})",
            reminder
                .as_ref()
                .map(|(at, _)| format!(
                    "{:.1}s into the window",
                    at.saturating_duration_since(started).as_secs_f64()
                ))
                .unwrap_or_else(|| "**never**".into())
        ),
        "–".into(),
        "–".into(),
    ]);
    section.row(vec![
        "context switches at any other time".into(),
        unscheduled.to_string(),
        "goal: 0".into(),
        "–".into(),
    ]);
    section.row(vec![
        "resident memory (VmRSS) at the end".into(),
        megabytes(rss),
        "goal: 15 MB".into(),
        format!("{:.2}x", rss as f64 / 15_000.0),
    ]);
    section.row(vec![
        "peak resident memory (VmHWM)".into(),
        megabytes(hwm),
        "–".into(),
        "–".into(),
    ]);
    section.row(vec![
        "resident memory right after the first list".into(),
        megabytes(rss_busy),
        "–".into(),
        "–".into(),
    ]);
    section.notes.push(format!(
        "Seconds with any switch: {}.",
        if busy_seconds.is_empty() {
            "none".into()
        } else {
            busy_seconds.join(", ")
        }
    ));
    section
        .notes
        .push(format!("Threads at the end: {}.", threads.join(", ")));
    section.notes.push(format!(
        "Switches by thread over the window: {}.",
        by_thread(&readings)
    ));
    if special_uuid.is_none() {
        section
            .notes
            .push("The token due in the window could not be created.".into());
    }
    report.goal(
        "5. Idle",
        "no wake-ups but scheduled deadlines",
        format!(
            "{unscheduled} switches outside deadlines in {}s",
            settings.idle_secs
        ),
        unscheduled == 0 && reminder.is_some(),
    );
    report.goal(
        "5. Idle",
        "resident memory under 15 MB",
        megabytes(rss),
        rss < 15_000,
    );
    report.sections.push(section);
}
