//! The Markdown report: the machine, a summary of every goal, then one section per benchmark
//! with its table.

use std::fmt::Write as _;

/// One goal and whether this run met it.
pub struct Goal {
    pub benchmark: &'static str,
    pub goal: String,
    pub figure: String,
    pub met: bool,
}

/// One benchmark's section.
pub struct Section {
    pub title: &'static str,
    /// What was measured and how, in a few sentences.
    pub how: String,
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    /// Observations under the table.
    pub notes: Vec<String>,
}

impl Section {
    pub fn new(title: &'static str, how: impl Into<String>, header: &[&'static str]) -> Section {
        Section {
            title,
            how: how.into(),
            header: header.to_vec(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len(), "{}: row width", self.title);
        self.rows.push(cells);
    }
}

#[derive(Default)]
pub struct Report {
    pub machine: Vec<(String, String)>,
    pub mode: String,
    pub command: String,
    pub goals: Vec<Goal>,
    pub sections: Vec<Section>,
}

impl Report {
    pub fn goal(
        &mut self,
        benchmark: &'static str,
        goal: impl Into<String>,
        figure: impl Into<String>,
        met: bool,
    ) {
        self.goals.push(Goal {
            benchmark,
            goal: goal.into(),
            figure: figure.into(),
            met,
        });
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Benchmarks\n");
        let _ = writeln!(
            out,
            "Written by the benchmark suite (`benches/suite`), {}. Regenerate with `{}`; \
             [how the suite works](#how-the-suite-works) is at the end. What profiling found, and \
             the figures before and after each fix, are in [performance.md](performance.md).\n",
            self.mode, self.command
        );
        let _ = writeln!(out, "## The machine\n");
        for (key, value) in &self.machine {
            let _ = writeln!(out, "- {key}: {value}");
        }
        let _ = writeln!(out, "\n## Goals\n");
        table(
            &mut out,
            &["benchmark", "goal", "this run", "met"],
            self.goals.iter().map(|g| {
                vec![
                    g.benchmark.to_string(),
                    g.goal.clone(),
                    g.figure.clone(),
                    if g.met { "yes" } else { "**no**" }.to_string(),
                ]
            }),
        );
        for section in &self.sections {
            let _ = writeln!(out, "\n## {}\n\n{}\n", section.title, section.how);
            table(&mut out, &section.header, section.rows.iter().cloned());
            if !section.notes.is_empty() {
                out.push('\n');
                for note in &section.notes {
                    let _ = writeln!(out, "- {note}");
                }
            }
        }
        out.push_str(HOW);
        out
    }
}

fn table(out: &mut String, header: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(
        out,
        "|{}|",
        header.iter().map(|_| "---").collect::<Vec<_>>().join("|")
    );
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
}

const HOW: &str = "
## How the suite works

- One command runs everything: `cargo bench --bench suite` (the full mode, which rewrites this
  file) or `cargo bench --bench suite -- --quick` (a few iterations, written to
  `target/benchmarks-quick.md`; CI runs it so the suite cannot rot). `--out PATH` writes elsewhere.
- Whole-process figures come from the suite's own driver: it spawns the release binaries, speaks
  JSON-RPC to them over pipes, and interleaves subject and reference run by run, so a busy moment
  of the machine falls on both. Medians and interquartile ranges, never means.
- In-process figures come from criterion (its median and median absolute deviation); its raw
  data is under `target/criterion`.
- The sandbox runs as its own process (`elitea-tokens sandbox`), seeded through its control API
  (`POST /_sandbox/seed`). Every run starts from empty temporary directories.
- The daemon measured is `elitea-tokens` as users get it: the suite builds it with `cargo build
  --release --locked` (a bench target's own build of the binary carries the dev-dependencies'
  features). The do-nothing language server and the same server with the whole of
  elitea-tokens linked in but never run (a process of the daemon's size) are the two binaries
  of `benches/reference`, built the same way; both read and write stdio as tower-lsp-server's
  examples do (`tokio::io::stdin()`, `stdout()`). `typos-lsp` is installed from crates.io into
  `target/bench-tools` by the suite on its first run.
- Nothing here is a test: no figure fails a build. A missed goal is marked **no** above;
  [performance.md](performance.md#goals-still-missed-and-why) says why.
";
