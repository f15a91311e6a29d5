//! Benchmark 3, writing settings: `apply` into a `.vscode/settings.json` full of comments and an `.idea`
//! file with many components, at growing sizes, to show the cost and that it is linear.

use crate::micro::Estimates;
use crate::report::{Report, Section};
use crate::stats::seconds;
use criterion::{BenchmarkId, Criterion};
use elitea_tokens::domain::{DisplayType, Flavor, Profile, Secret};
use elitea_tokens::ide::{files, git};
use elitea_tokens::state::Ide;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub const LINES: [usize; 3] = [200, 1_000, 5_000];

fn profile(project_id: i64) -> Profile {
    Profile {
        server_url: "https://elitea.example.com".into(),
        project_id,
        model_name: "gpt-5-mini".into(),
        integration_uid: format!("{project_id}_gpt-5-mini"),
        integration_name: format!("Project {project_id}"),
        display_type: DisplayType::Split,
        verify_ssl: true,
    }
}

/// A `settings.json` of exactly `lines` lines, a third of them comments of both kinds, with
/// nested objects, arrays and trailing commas, as a long-lived user file looks.
pub fn settings_json(lines: usize) -> String {
    let mut out = String::from("{\n");
    let mut i = 0;
    while out.lines().count() + 10 < lines {
        let _ = write!(
            out,
            "  // Group {i}: settings someone tuned by hand.\n  \
             \"editor.setting{i}\": {i},\n  \
             /* kept for the team: see the wiki page {i} */\n  \
             \"files.exclude{i}\": {{\n    \
             \"**/build{i}\": true, // generated\n    \
             \"**/.cache{i}\": false,\n  \
             }},\n  \
             \"list{i}\": [\"a\", \"b\", // trailing comma next\n    \"c\",],\n  \
             \"text{i}\": \"some value with \\\"quotes\\\" and // not a comment\",\n"
        );
        i += 1;
    }
    while out.lines().count() + 2 < lines {
        out.push_str("  // padding comment\n");
    }
    out.push_str("  \"last\": true\n}\n");
    out
}

/// An `.idea/elitea.xml` of about `lines` lines with many components besides the plugin's.
pub fn idea_xml(lines: usize) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<project version=\"4\">\n");
    let mut i = 0;
    while out.lines().count() + 6 < lines {
        let _ = write!(
            out,
            "  <!-- component {i}, kept byte for byte -->\n  \
             <component name=\"Component{i}\">\n    \
             <option name=\"enabled\" value=\"true\" />\n    \
             <option name=\"path\" value=\"$PROJECT_DIR$/module{i} &amp; more\" />\n  \
             </component>\n"
        );
        i += 1;
    }
    out.push_str("</project>\n");
    out
}

struct Workspace {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

/// A git repository (git checks run on every write of a file holding a token) with the file.
fn workspace(relative: &str, content: &str) -> Workspace {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = crate::fixture::workspace(dir.path());
    std::fs::write(path.join(".gitignore"), ".vscode/settings.json\n").expect(".gitignore");
    let file = path.join(relative);
    std::fs::create_dir_all(file.parent().expect("a parent")).expect("dirs");
    std::fs::write(&file, content).expect("the settings file");
    Workspace { _dir: dir, path }
}

fn plan(ws: &Path, ide: Ide, profile: &Profile, token: &Secret) -> Vec<files::PlannedFile> {
    files::plan(Some(ws), ide, Flavor::Current, profile, Some(token)).expect("the file plans")
}

pub fn bench(c: &mut Criterion) {
    let tokens = [
        Secret::new("bench-token-value-a"),
        Secret::new("bench-token-value-b"),
    ];
    let profiles = [profile(27), profile(28)];
    let mut group = c.benchmark_group("settings");
    for lines in LINES {
        for (ide, relative, content) in [
            (Ide::Vscode, ".vscode/settings.json", settings_json(lines)),
            (Ide::Jetbrains, ".idea/elitea.xml", idea_xml(lines)),
        ] {
            let ws = workspace(relative, &content);
            let name = ide.as_str();
            // Alternate the token (VS Code) or the project (JetBrains) so every write changes.
            let mut turn = 0usize;
            group.bench_function(BenchmarkId::new(format!("{name}-edit"), lines), |b| {
                b.iter(|| {
                    turn += 1;
                    plan(&ws.path, ide, &profiles[turn % 2], &tokens[turn % 2])
                })
            });
            group.bench_function(BenchmarkId::new(format!("{name}-apply"), lines), |b| {
                b.iter(|| {
                    turn += 1;
                    // As the daemon applies: the git check of the token's file starts first.
                    let mut checks = git::Checks::start(files::token_file(&ws.path, ide));
                    let planned = plan(&ws.path, ide, &profiles[turn % 2], &tokens[turn % 2]);
                    files::write(&ws.path, &planned, false, &mut checks).expect("written")
                })
            });
        }
    }
    group.finish();
}

pub fn run(estimates: &Estimates, report: &mut Report) {
    let mut section = Section::new(
        "3. Writing settings",
        "In-process (criterion). *add keys*: plan the first write into the file: read it, parse it \
         (jsonc-parser's AST parser for `settings.json`, the new keys spliced in after the last \
         member as its CST would lay them out; quick-xml for the `.idea` file), add the plugin's \
         keys or component, render; comments and everything else kept. Nothing is written, so every \
         iteration is a first time. *apply*: what re-applying and rotation do once the keys are \
         there: plan (the changed values located with the AST parser and replaced in place), then \
         the atomic write (temporary file, fsync, rename, directory fsync, owner-only for the file \
         holding the token) and, for that file, the git check (one `git status` in a real \
         repository, started before the plan, as the daemon starts it, and read after the \
         write). Every iteration changes the file (two tokens or two projects in turn).",
        &[
            "file",
            "lines",
            "size",
            "add keys",
            "apply",
            "spread (apply)",
            "add keys, per 1,000 lines",
        ],
    );
    let mut worst_apply = 0.0_f64;
    let mut worst_first = 0.0_f64;
    let mut linear = true;
    for (name, relative, make) in [
        (
            "vscode",
            ".vscode/settings.json",
            settings_json as fn(usize) -> String,
        ),
        ("jetbrains", ".idea/elitea.xml", idea_xml),
    ] {
        let mut per_line = Vec::new();
        for lines in LINES {
            let edit = estimates.get(&format!("settings/{name}-edit/{lines}"));
            let apply = estimates.get(&format!("settings/{name}-apply/{lines}"));
            worst_apply = worst_apply.max(apply.median);
            worst_first = worst_first.max(edit.median);
            per_line.push(edit.median / lines as f64);
            section.row(vec![
                format!("`{relative}`"),
                lines.to_string(),
                format!("{:.0} KB", make(lines).len() as f64 / 1000.0),
                seconds(edit.median),
                seconds(apply.median),
                apply.spread_text(),
                seconds(edit.median / lines as f64 * 1000.0),
            ]);
        }
        // Linear: the cost per line of the largest file is no more than 1.5x the smallest's.
        linear &= per_line.last().copied().unwrap_or(0.0) <= 1.5 * per_line[0];
    }
    report.goal(
        "3. Writing settings",
        "apply under 5 ms",
        format!("{} at worst (5,000 lines)", seconds(worst_apply)),
        worst_apply < 5e-3,
    );
    report.goal(
        "3. Writing settings",
        "first write (keys added) under 5 ms",
        format!("{} at worst (5,000 lines)", seconds(worst_first)),
        worst_first < 5e-3,
    );
    report.goal(
        "3. Writing settings",
        "linear in the file's size",
        if linear {
            "cost per line flat from 200 to 5,000 lines"
        } else {
            "cost per line grows"
        },
        linear,
    );
    report.sections.push(section);
}
