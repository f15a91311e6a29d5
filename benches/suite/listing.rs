//! Benchmark 2, listing: `elitea/listTokens` over stdio, the first call (HTTP included) against a plain
//! HTTP GET of the same list, and repeat calls answered from the daemon's memory.

use crate::Settings;
use crate::fixture::{self, SandboxProcess, runtime};
use crate::lsp::{Lsp, initialize_params};
use crate::report::{Report, Section};
use crate::stats::{Summary, ratio, seconds};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// Lifetimes the seeded tokens get in turn: a spread of dates, and some that never expire.
pub const LIFETIMES: [Option<i64>; 6] = [
    Some(9 * 86_400),
    Some(30 * 86_400),
    None,
    Some(90 * 86_400),
    Some(14 * 86_400),
    Some(365 * 86_400),
];

/// The repeat calls: the table as first shown, and a search with a sort by expiry.
const REPEAT_QUERIES: [(&str, &str); 2] = [
    ("default page (sort by name)", r#"{}"#),
    (
        "search `seed-0` + sort by expiry, desc, 50 rows",
        r#"{"search": "seed-0", "sort": "expires", "direction": "desc", "pageSize": 50}"#,
    ),
];

fn daemon(home: &Path, workspace: &Path) -> Lsp {
    let mut command = fixture::command(home);
    command.arg("serve");
    let mut lsp = Lsp::spawn(&mut command);
    lsp.request("initialize", initialize_params(workspace, json!({})))
        .expect("initialize");
    lsp.notify("initialized", json!({}));
    lsp
}

fn list(lsp: &mut Lsp, params: Value, expected_total: usize) -> Duration {
    let started = Instant::now();
    let (answered, answer) = lsp.timed_request("elitea/listTokens", params);
    let elapsed = answered - started;
    let answer = answer.unwrap_or_else(|e| panic!("listTokens failed: {e}"));
    assert!(
        answer["total"]
            .as_u64()
            .is_some_and(|t| t as usize <= expected_total),
        "listTokens answered {answer}"
    );
    elapsed
}

/// A plain GET of the list with reqwest alone: a new client (built inside the timing, as the
/// daemon builds its own; so a new connection; no root certificates loaded, as neither the
/// daemon nor curl loads them for `http://`), the whole body read.
fn plain_get(sandbox: &SandboxProcess) -> Duration {
    let url = sandbox.list_url();
    runtime().block_on(async {
        let started = Instant::now();
        let client = reqwest::Client::builder()
            .tls_certs_only([])
            .build()
            .expect("an HTTP client");
        let body = client
            .get(&url)
            .bearer_auth(&sandbox.token)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("GET the list")
            .bytes()
            .await
            .expect("the body");
        let elapsed = started.elapsed();
        assert!(body.starts_with(b"["), "the list is a JSON array");
        elapsed
    })
}

pub fn run(settings: &Settings, report: &mut Report) {
    let mut first = Section::new(
        "2a. Listing: the first call",
        "A fresh daemon per sample (initialized, nothing cached), then the time from sending \
         `elitea/listTokens` (default page) to reading its answer's last byte (on the suite's \
         reader thread, before the answer is parsed): the session, one HTTP GET of the whole list \
         from a sandbox process, parsing, search, sort, the page's rows and the JSON-RPC answer. The daemon starts the GET on a thread of its own as its process starts (with its \
         own credential read and HTTP client), while it answers `initialize`, and opens its session \
         once that answer is written; the suite sends `initialized` and the call as soon as it has \
         read that answer, so the call still waits for the rest of that work. The reference is the \
         same GET with reqwest alone \
         (a new client built inside the timing, no root certificates loaded for `http://`, the whole \
         body read, nothing parsed), run \
         alternately with the daemon.",
        &[
            "tokens",
            "daemon, first call",
            "spread",
            "plain GET",
            "spread",
            "ratio",
        ],
    );
    let mut repeat = Section::new(
        "2b. Listing: repeat calls",
        "One daemon, after its first call: the round trip of `elitea/listTokens` over stdio, answered \
         from memory (search, sort and page included).",
        &["tokens", "query", "median", "spread"],
    );
    let mut worst_first = 0.0_f64;
    let mut repeat_10k = 0.0_f64;
    for &n in &settings.list_sizes {
        let dir = tempfile::tempdir().expect("temp dir");
        let sandbox = SandboxProcess::start();
        // The bootstrap token the daemon logs in with is the n-th.
        sandbox.seed(n - 1, "seed", &LIFETIMES);
        let home = dir.path().join("home");
        fixture::login(&home, &sandbox);
        let workspace = fixture::workspace(dir.path());
        assert_eq!(sandbox.list().len(), n, "the sandbox holds {n} tokens");

        // Warm-up: both paths once.
        plain_get(&sandbox);
        let mut lsp = daemon(&home, &workspace);
        list(&mut lsp, json!({}), n);
        lsp.close();

        let (mut ours, mut reference) = (Vec::new(), Vec::new());
        for run in 0..settings.first_runs {
            let mut measure_daemon = || {
                let mut lsp = daemon(&home, &workspace);
                ours.push(list(&mut lsp, json!({}), n));
                lsp.close();
            };
            if run % 2 == 0 {
                measure_daemon();
                reference.push(plain_get(&sandbox));
            } else {
                reference.push(plain_get(&sandbox));
                measure_daemon();
            }
        }
        let (ours, reference) = (Summary::of(&ours), Summary::of(&reference));
        worst_first = worst_first.max(ours.median / reference.median);
        first.row(vec![
            n.to_string(),
            ours.median_text(),
            ours.spread_text(),
            reference.median_text(),
            reference.spread_text(),
            ratio(ours.median, reference.median),
        ]);

        let mut lsp = daemon(&home, &workspace);
        list(&mut lsp, json!({}), n);
        for (label, params) in REPEAT_QUERIES {
            let params: Value = serde_json::from_str(params).expect("query JSON");
            let samples: Vec<Duration> = (0..settings.repeat_runs)
                .map(|_| list(&mut lsp, params.clone(), n))
                .collect();
            let summary = Summary::of(&samples);
            if n == 10_000 {
                repeat_10k = repeat_10k.max(summary.median);
            }
            repeat.row(vec![
                n.to_string(),
                label.into(),
                summary.median_text(),
                summary.spread_text(),
            ]);
        }
        lsp.close();
    }
    report.goal(
        "2. Listing",
        "first call within 1.2x of a plain GET",
        format!("{worst_first:.2}x at worst"),
        worst_first <= 1.2,
    );
    if settings.list_sizes.contains(&10_000) {
        report.goal(
            "2. Listing",
            "repeat call, 10,000 tokens, under 1 ms",
            format!("{} at worst", seconds(repeat_10k)),
            repeat_10k < 1e-3,
        );
    }
    report.sections.push(first);
    report.sections.push(repeat);
}

/// The in-process half of a repeat call: the query over 10,000 tokens in memory.
pub fn bench(c: &mut criterion::Criterion) {
    use elitea_tokens::domain::{PageSize, Query, SortDirection, SortKey};
    let world = crate::scheduler::world(10_000);
    let mut group = c.benchmark_group("listing");
    group.bench_function("query-default/10000", |b| {
        b.iter(|| std::hint::black_box(Query::default().run(&world.listed).rows.len()))
    });
    let search = Query {
        search: Some("token-0".into()),
        sort: SortKey::Expires,
        direction: SortDirection::Desc,
        page: 1,
        page_size: PageSize::try_from(50).expect("a page size"),
    };
    group.bench_function("query-search-sort/10000", |b| {
        b.iter(|| std::hint::black_box(search.run(&world.listed).rows.len()))
    });
    group.finish();
}

/// Adds the in-process figures under the stdio round trips.
pub fn add_in_process(estimates: &crate::micro::Estimates, report: &mut Report) {
    let Some(section) = report.sections.iter_mut().find(|s| s.title.starts_with("2b")) else {
        return;
    };
    for (label, id) in [
        (
            "in process: `Query::run`, default page",
            "listing/query-default/10000",
        ),
        (
            "in process: `Query::run`, search + sort by expiry, 50 rows",
            "listing/query-search-sort/10000",
        ),
    ] {
        let e = estimates.get(id);
        section.row(vec![
            "10000".into(),
            label.into(),
            seconds(e.median),
            e.spread_text(),
        ]);
    }
}
