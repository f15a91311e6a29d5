//! Benchmark 4, the command line: `elitea-tokens list` end to end against a sandbox with 100 tokens.

use crate::Settings;
use crate::fixture::{self, SandboxProcess};
use crate::listing::LIFETIMES;
use crate::report::{Report, Section};
use crate::stats::{Summary, ratio};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TOKENS: usize = 100;

fn time(command: &mut Command) -> Duration {
    let started = Instant::now();
    let status = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the command runs");
    let elapsed = started.elapsed();
    assert!(status.success(), "{command:?} failed");
    elapsed
}

pub fn run(settings: &Settings, report: &mut Report) {
    let dir = tempfile::tempdir().expect("temp dir");
    let sandbox = SandboxProcess::start();
    sandbox.seed(TOKENS - 1, "seed", &LIFETIMES);
    let home = dir.path().join("home");
    let store = fixture::login(&home, &sandbox);
    let curl = fixture::which("curl").ok();

    let plain = |table: bool| {
        let mut c = fixture::command(&home);
        c.args(if table {
            vec!["list"]
        } else {
            vec!["--json", "list"]
        });
        c
    };
    let curl_get = |curl: &std::path::Path| {
        let mut c = Command::new(curl);
        c.args(["--silent", "--fail", "--output", "/dev/null", "--header"])
            .arg(format!("Authorization: Bearer {}", sandbox.token))
            .arg(sandbox.list_url());
        c
    };
    // Warm-up.
    time(&mut plain(true));
    if let Some(curl) = &curl {
        time(&mut curl_get(curl));
    }
    let (mut table, mut json, mut reference) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..settings.cli_runs {
        table.push(time(&mut plain(true)));
        json.push(time(&mut plain(false)));
        if let Some(curl) = &curl {
            reference.push(time(&mut curl_get(curl)));
        }
    }
    let table = Summary::of(&table);
    let json = Summary::of(&json);
    let mut section = Section::new(
        "4. The command line",
        format!(
            "Wall time of `elitea-tokens list` from spawn to exit, output to a pipe, against a sandbox \
             process holding {TOKENS} tokens: process start, config, the credential from the `{store}` \
             store, one HTTP GET, the table. The reference is `curl` fetching the same list (process \
             start and the same GET, nothing rendered). {} runs each, interleaved.",
            settings.cli_runs
        ),
        &["command", "median", "spread", "reference", "ratio"],
    );
    let cells = |name: &str, s: &Summary| match &curl {
        Some(_) => {
            let r = Summary::of(&reference);
            vec![
                name.into(),
                s.median_text(),
                s.spread_text(),
                format!("curl: {}", r.median_text()),
                ratio(s.median, r.median),
            ]
        }
        None => vec![
            name.into(),
            s.median_text(),
            s.spread_text(),
            "curl not installed".into(),
            "–".into(),
        ],
    };
    section.row(cells("elitea-tokens list", &table));
    section.row(cells("elitea-tokens --json list", &json));
    report.goal(
        "4. Command line",
        "`list` with 100 tokens under 20 ms",
        table.median_text(),
        table.median < 0.020,
    );
    report.sections.push(section);
}
