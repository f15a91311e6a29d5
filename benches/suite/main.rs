//! The benchmark suite: start-up, listing, writing settings, the command line, idle and memory,
//! and the scheduler's scale, each measured beside its reference in the same run, written to
//! `docs/benchmarks.md`.
//!
//! ```text
//! cargo bench --bench suite              # full mode: rewrites docs/benchmarks.md
//! cargo bench --bench suite -- --quick   # a few iterations: target/benchmarks-quick.md
//! cargo bench --bench suite -- --out PATH --only startup,listing,settings,cli,idle,scheduler
//! cargo bench --bench suite -- --write-link-order   # records link/startup.order (callgrind)
//! ```

mod cli;
mod fixture;
mod idle;
mod link_order;
mod listing;
mod lsp;
mod micro;
mod report;
mod scheduler;
mod settings_write;
mod startup;
mod stats;

use std::path::{Path, PathBuf};
use std::process::Command;

/// How much of everything to do.
pub struct Settings {
    pub quick: bool,
    pub startup_runs: usize,
    pub first_runs: usize,
    pub repeat_runs: usize,
    pub cli_runs: usize,
    pub idle_secs: u64,
    pub idle_settle_secs: u64,
    pub list_sizes: Vec<usize>,
}

impl Settings {
    fn new(quick: bool) -> Settings {
        if quick {
            Settings {
                quick,
                startup_runs: 5,
                first_runs: 3,
                repeat_runs: 20,
                cli_runs: 5,
                idle_secs: 6,
                idle_settle_secs: 2,
                list_sizes: vec![10, 1_000, 10_000],
            }
        } else {
            Settings {
                quick,
                startup_runs: 50,
                // The plain GET spreads widely (an interquartile range of 270 to 660 µs at
                // 10 tokens in a run of 21): a few more samples steady the ratio's median.
                first_runs: 61,
                repeat_runs: 500,
                cli_runs: 50,
                idle_secs: 60,
                idle_settle_secs: 5,
                list_sizes: vec![10, 1_000, 10_000],
            }
        }
    }
}

const BENCHMARKS: [&str; 6] = ["startup", "listing", "settings", "cli", "idle", "scheduler"];

fn main() {
    // cargo passes `--bench`; anything else unknown is refused.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let mut quick = false;
    let mut out = None;
    let mut only: Vec<String> = BENCHMARKS.iter().map(|s| s.to_string()).collect();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--write-link-order" => {
                link_order::write();
                return;
            }
            "--out" => out = args.next().map(PathBuf::from),
            "--only" => {
                only = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::to_string)
                    .collect()
            }
            other => {
                eprintln!(
                    "unknown argument `{other}`; use --quick, --out PATH, --only {}, \
                     or --write-link-order",
                    BENCHMARKS.join(",")
                );
                std::process::exit(2);
            }
        }
    }
    if let Some(unknown) = only.iter().find(|o| !BENCHMARKS.contains(&o.as_str())) {
        eprintln!("unknown benchmark `{unknown}`; known: {}", BENCHMARKS.join(", "));
        std::process::exit(2);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = out.unwrap_or_else(|| {
        if quick {
            manifest.join("target/benchmarks-quick.md")
        } else {
            manifest.join("docs/benchmarks.md")
        }
    });
    let settings = Settings::new(quick);
    let wants = |name: &str| only.iter().any(|o| o == name);

    let mut report = report::Report {
        machine: machine(),
        mode: if quick {
            "quick mode (a few iterations: the figures show the suite works, not how fast)".into()
        } else {
            format!("full mode, {}", chrono::Utc::now().format("%Y-%m-%d"))
        },
        command: if quick {
            "cargo bench --bench suite -- --quick"
        } else {
            "cargo bench --bench suite"
        }
        .into(),
        ..Default::default()
    };

    // In process, with criterion.
    let criterion_dir = manifest.join("target/criterion");
    let mut criterion = micro::criterion(&settings, &criterion_dir);
    if wants("settings") {
        settings_write::bench(&mut criterion);
    }
    if wants("scheduler") {
        scheduler::bench(&mut criterion);
    }
    if wants("listing") {
        listing::bench(&mut criterion);
    }
    let estimates = micro::read(&criterion_dir);

    // Whole processes, with the suite's driver.
    if wants("startup") {
        eprintln!("1. start-up");
        startup::run(&settings, &mut report);
    }
    if wants("listing") {
        eprintln!("2. listing");
        listing::run(&settings, &mut report);
        listing::add_in_process(&estimates, &mut report);
    }
    if wants("settings") {
        settings_write::run(&estimates, &mut report);
    }
    if wants("cli") {
        eprintln!("4. command line");
        cli::run(&settings, &mut report);
    }
    if wants("idle") {
        eprintln!("5. idle ({}s)", settings.idle_secs);
        idle::run(&settings, &mut report);
    }
    if wants("scheduler") {
        scheduler::run(&estimates, &mut report);
    }
    report.sections.sort_by_key(|s| s.title);
    report.goals.sort_by_key(|g| g.benchmark);

    let markdown = report.markdown();
    if let Some(dir) = out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&out, &markdown).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
    println!("{markdown}");
    eprintln!("written to {}", out.display());
}

/// The machine, as far as the suite can tell.
fn machine() -> Vec<(String, String)> {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let field = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once(':').or_else(|| l.split_once('=')))
            .map(|(_, v)| v.trim().trim_matches('"').to_string())
            .unwrap_or_else(|| "unknown".into())
    };
    let cpuinfo = read("/proc/cpuinfo");
    let memory_kb: f64 = field(&read("/proc/meminfo"), "MemTotal")
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let binary_size = std::fs::metadata(fixture::bin()).map(|m| m.len()).unwrap_or(0);
    vec![
        ("CPU".into(), field(&cpuinfo, "model name")),
        (
            "cores".into(),
            std::thread::available_parallelism()
                .map(|n| n.to_string())
                .unwrap_or_default(),
        ),
        ("memory".into(), format!("{:.1} GB", memory_kb / 1e6)),
        ("OS".into(), field(&read("/etc/os-release"), "PRETTY_NAME")),
        (
            "kernel".into(),
            read("/proc/sys/kernel/osrelease").trim().to_string(),
        ),
        ("compiler".into(), rustc),
        (
            "build".into(),
            format!(
                "`cargo build --release` for `elitea-tokens` and the reference servers, cargo's \
                 `bench` profile for the in-process benchmarks (both fat LTO, 1 codegen unit, \
                 stripped); `elitea-tokens` is {:.1} MB",
                binary_size as f64 / 1e6
            ),
        ),
    ]
}
