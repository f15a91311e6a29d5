//! Benchmark 1, start-up: from spawning the server to its `initialize` answer, against a do-nothing
//! tower-lsp-server program and a published Rust language server.

use crate::Settings;
use crate::fixture::{self, SandboxProcess};
use crate::link_order;
use crate::lsp::{Lsp, initialize_params};
use crate::report::{Report, Section};
use crate::stats::{Summary, ratio};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The do-nothing server with the whole product linked in.
const LINKED: &str = "do-nothing tower-lsp-server, elitea-tokens linked in";

/// Spawns the server, sends `initialize`, returns the time to its answer, then closes it.
fn start_once(mut command: Command, workspace: &Path, options: serde_json::Value) -> Duration {
    let started = Instant::now();
    let mut server = Lsp::spawn(&mut command);
    let (answered, answer) = server.timed_request("initialize", initialize_params(workspace, options));
    let elapsed = answered - started;
    answer.unwrap_or_else(|e| panic!("initialize failed: {e}"));
    server.notify("initialized", json!({}));
    server.close();
    elapsed
}

/// The orders of a Williams design for `n` subjects: each subject runs first equally often and, within
/// the rounds, runs right after every other subject equally often (once for an even `n`, twice
/// for an odd `n`, which needs the rounds mirrored too).
fn balanced_orders(n: usize) -> Vec<Vec<usize>> {
    // 0, 1, n-1, 2, n-2, ...: the steps between neighbours are all different modulo n.
    let first: Vec<usize> = (0..n)
        .map(|j| {
            if j % 2 == 1 {
                j.div_ceil(2)
            } else {
                (n - j / 2) % n
            }
        })
        .collect();
    let mut orders: Vec<Vec<usize>> = (0..n)
        .map(|shift| first.iter().map(|s| (s + shift) % n).collect())
        .collect();
    if n % 2 == 1 {
        let mirrored: Vec<Vec<usize>> = orders.iter().map(|o| o.iter().rev().copied().collect()).collect();
        orders.extend(mirrored);
    }
    let mut follows = vec![vec![0usize; n]; n];
    for order in &orders {
        for pair in order.windows(2) {
            follows[pair[0]][pair[1]] += 1;
        }
    }
    let each = if n % 2 == 1 { 2 } else { 1 };
    assert!(
        (0..n).all(|a| (0..n).all(|b| follows[a][b] == if a == b { 0 } else { each })),
        "unbalanced start-up orders for {n} subjects: {orders:?}"
    );
    orders
}

pub fn run(settings: &Settings, report: &mut Report) {
    let dir = tempfile::tempdir().expect("temp dir");
    let sandbox = SandboxProcess::start();
    let home = dir.path().join("home");
    let store = fixture::login(&home, &sandbox);
    let workspace = fixture::workspace(dir.path());
    let (nothing, linked) = fixture::reference_servers();
    let typos = fixture::typos_lsp();

    type Subject<'a> = (&'static str, Box<dyn Fn() -> Command + 'a>, serde_json::Value);
    let mut subjects: Vec<Subject> = vec![
        (
            "elitea-tokens serve",
            Box::new(|| {
                let mut c = fixture::command(&home);
                c.arg("serve");
                c
            }),
            json!({"notifications": ["elitea/tokenExpiring", "elitea/tokensChanged"]}),
        ),
        (
            "do-nothing tower-lsp-server",
            Box::new(|| Command::new(&nothing)),
            json!(null),
        ),
        (LINKED, Box::new(|| Command::new(&linked)), json!(null)),
    ];
    if let Some(typos) = &typos {
        subjects.push((
            "typos-lsp 0.1.57 (crates.io)",
            Box::new(move || Command::new(typos)),
            json!(null),
        ));
    }
    // One warm-up round so every binary is in the page cache.
    for (_, command, options) in &subjects {
        start_once(command(), &workspace, options.clone());
    }
    // A start-up is slower right after a heavy one (typos-lsp), so the order of each round
    // follows a balanced design: over a whole cycle of rounds, every subject runs right after
    // every other one equally often.
    let orders = balanced_orders(subjects.len());
    let rounds = settings.startup_runs.div_ceil(orders.len()) * orders.len();
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); subjects.len()];
    for order in orders.iter().cycle().take(rounds) {
        for &i in order {
            let (_, command, options) = &subjects[i];
            samples[i].push(start_once(command(), &workspace, options.clone()));
        }
    }

    let summaries: Vec<Summary> = samples.iter().map(|s| Summary::of(s)).collect();
    let baseline = summaries[1].median;
    let mut section = Section::new(
        "1. Start-up",
        format!(
            "Wall time from spawning the process to reading the last byte of its answer to \
             `initialize` (one workspace folder; on the suite's reader thread, before the answer is \
             parsed), over pipes, as an editor starts a server. The daemon is logged in to a sandbox \
             (credential in the `{store}` store) and has a git workspace. Subjects run in turn, \
             {rounds} rounds after one warm-up round, in orders of a Williams design: over every \
             {} rounds, each subject runs right after each other one equally often.",
            orders.len()
        ),
        &["server", "median", "spread", "reference", "ratio"],
    );
    for ((name, _, _), summary) in subjects.iter().zip(&summaries) {
        section.row(vec![
            name.to_string(),
            summary.median_text(),
            summary.spread_text(),
            "do-nothing tower-lsp-server".into(),
            ratio(summary.median, baseline),
        ]);
    }
    // The same daemon against the do-nothing server of its own size: what the daemon does
    // before it answers, apart from loading its code.
    section.row(vec![
        subjects[0].0.to_string(),
        summaries[0].median_text(),
        summaries[0].spread_text(),
        LINKED.into(),
        ratio(summaries[0].median, summaries[2].median),
    ]);
    let size = |path: &Path| std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / 1e6);
    section.notes.push(format!(
        "Binary sizes: `elitea-tokens` {:.1} MB, the do-nothing server {:.1} MB, the do-nothing \
         server with elitea-tokens linked in {:.1} MB (`benches/reference`: the \
         product is reachable, so the linker keeps it and the loader relocates it, but never \
         runs). The last row compares the daemon with that server of its own size.",
        size(fixture::bin()),
        size(&nothing),
        size(&linked),
    ));
    section.notes.push(match link_order::coverage() {
        Some((found, total)) => format!(
            "`elitea-tokens` is linked with the functions of its start-up laid out together \
             (`link/startup.order`, written by `--write-link-order`; see `build.rs`): {found} of \
             its {total} names are in this build.{}",
            if settings.quick {
                " Quick mode builds without fat LTO, which renames functions: a low count here \
                 says nothing of the file."
            } else if found * 10 < total * 9 {
                " The file is stale (a new compiler, dependency or build setting renames \
                 functions); write it again for the full gain."
            } else {
                ""
            }
        ),
        None => "The start-up order (`link/startup.order`) was not checked: there is no \
                 link map of this build (a binary from `ELITEA_BENCH_BIN`, or a target other \
                 than x86_64 Linux)."
            .into(),
    });
    if typos.is_none() {
        section
            .notes
            .push("typos-lsp could not be installed on this machine; its row is missing.".into());
    }
    let ours = summaries[0].median / baseline;
    report.goal(
        "1. Start-up",
        "within 1.2x of a do-nothing tower-lsp-server",
        format!(
            "{} vs {} ({:.2}x)",
            summaries[0].median_text(),
            summaries[1].median_text(),
            ours
        ),
        ours <= 1.2,
    );
    report.sections.push(section);
}
