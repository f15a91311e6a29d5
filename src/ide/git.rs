//! Whether a file that holds a token could end up in a git commit, and the `.gitignore` fix.

use crate::fsx::{Access, write_atomic};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// How git sees a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GitStatus {
    /// Not inside a git work tree.
    NoRepository,
    /// git is not installed: nothing could be checked.
    GitMissing,
    /// Committed (or staged): its content would be in the next commit that adds it.
    Tracked,
    /// Not tracked and not ignored: `git add .` would pick it up.
    NotIgnored,
    /// Covered by a `.gitignore` rule.
    Ignored,
}

impl GitStatus {
    /// Whether a token in this file is at risk of being committed.
    pub fn is_exposed(self) -> bool {
        matches!(self, GitStatus::Tracked | GitStatus::NotIgnored)
    }
}

/// git in `dir`, without taking optional locks, so a check never blocks the user's own git.
fn git_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("git");
    command
        .arg("--no-optional-locks")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// Runs git in `dir`; `None` when git cannot be run at all.
fn git(dir: &Path, args: &[&str]) -> Option<std::process::Output> {
    git_command(dir, args).output().ok()
}

/// How git sees `file` (which need not exist yet).
pub fn status(file: &Path) -> GitStatus {
    let dir = match file.parent() {
        Some(dir) if dir.exists() => dir,
        _ => return GitStatus::NoRepository,
    };
    if file.exists() {
        return status_of_existing(dir, file);
    }
    let Some(inside) = git(dir, &["rev-parse", "--is-inside-work-tree"]) else {
        return GitStatus::GitMissing;
    };
    if !inside.status.success() {
        return GitStatus::NoRepository;
    }
    let path = file.to_string_lossy();
    if git(dir, &["ls-files", "--error-unmatch", "--", &path]).is_some_and(|o| o.status.success()) {
        return GitStatus::Tracked;
    }
    match git(dir, &["check-ignore", "-q", "--", &path]) {
        Some(o) if o.status.success() => GitStatus::Ignored,
        _ => GitStatus::NotIgnored,
    }
}

/// One `git status` for a file that exists (every apply asks, so one process rather than
/// three): `!!` ignored, `??` untracked, any other line or none at all (clean) tracked.
fn status_of_existing(dir: &Path, file: &Path) -> GitStatus {
    read_status(status_command(dir, file).output().ok())
}

fn status_command(dir: &Path, file: &Path) -> Command {
    let path = file.to_string_lossy();
    let args = [
        "status",
        "--porcelain=v1",
        "-z",
        "--ignored=matching",
        "--untracked-files=all",
        "--",
        &path,
    ];
    git_command(dir, &args)
}

fn read_status(output: Option<std::process::Output>) -> GitStatus {
    let Some(output) = output else {
        return GitStatus::GitMissing;
    };
    if !output.status.success() {
        return GitStatus::NoRepository;
    }
    match output.stdout.get(..2) {
        Some(b"!!") => GitStatus::Ignored,
        Some(b"??") => GitStatus::NotIgnored,
        _ => GitStatus::Tracked,
    }
}

/// Checks of the files that will hold a token, started before those files are planned and
/// written, so that git's start (most of a check's few milliseconds) runs alongside that work.
/// For a file that exists, the content decides only whether git prints ` M` or nothing, and
/// both read as tracked: the status comes from the index and the ignore rules, so the write in
/// between (an atomic rename: the file never goes missing) does not change it. A file that does
/// not exist yet is checked when asked for, after it is written.
#[derive(Debug, Default)]
pub struct Checks {
    started: Vec<(PathBuf, Child)>,
}

impl Checks {
    pub fn start(files: impl IntoIterator<Item = PathBuf>) -> Checks {
        // Git for Windows opens a file it hashes without `FILE_SHARE_DELETE`, so a rename over
        // it at that moment would fail: there the check waits for the write.
        if cfg!(not(unix)) {
            return Checks::default();
        }
        let started = files
            .into_iter()
            .filter_map(|file| {
                let dir = file.parent().filter(|_| file.exists())?;
                let mut command = status_command(dir, &file);
                let child = command.stdout(Stdio::piped()).spawn().ok()?;
                Some((file, child))
            })
            .collect();
        Checks { started }
    }

    /// How git sees `file`: the started check's answer, or a check made now.
    pub fn status(&mut self, file: &Path) -> GitStatus {
        match self.started.iter().position(|(started, _)| started == file) {
            Some(at) => {
                let (_, child) = self.started.swap_remove(at);
                read_status(child.wait_with_output().ok())
            }
            None => status(file),
        }
    }
}

impl Drop for Checks {
    /// Checks nobody asked for (a file failed to plan or to write) are stopped and reaped:
    /// `git status` without optional locks writes nothing, so stopping it is safe.
    fn drop(&mut self) {
        for (_, child) in &mut self.started {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Adds `/<relative>` to `<workspace>/.gitignore`, keeping what is there. Returns the
/// `.gitignore` path, or `None` when the entry was already present.
pub fn ignore(workspace: &Path, relative: &str) -> std::io::Result<Option<PathBuf>> {
    let gitignore = workspace.join(".gitignore");
    let existing = match std::fs::read_to_string(&gitignore) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let entry = format!("/{}", relative.trim_start_matches('/'));
    if existing
        .lines()
        .any(|line| line.trim() == entry || line.trim() == relative)
    {
        return Ok(None);
    }
    let newline = if existing.contains("\r\n") { "\r\n" } else { "\n" };
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push_str(newline);
    }
    text.push_str("# ELITEA settings hold a personal token (added by elitea-tokens)");
    text.push_str(newline);
    text.push_str(&entry);
    text.push_str(newline);
    write_atomic(&gitignore, text.as_bytes(), Access::Keep)?;
    Ok(Some(gitignore))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "git {args:?}");
    }

    /// Every status, for files that exist (one `git status`) and files that do not (the
    /// three-step path), in one repository.
    #[test]
    fn status_tells_tracked_ignored_and_exposed_files() {
        if Command::new("git").arg("--version").output().is_err() {
            eprintln!("git is not installed; nothing to check");
            return;
        }
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("settings.json"), "{}").unwrap();
        let repo = tempfile::tempdir().unwrap();
        let root = repo.path();
        run(root, &["init", "--quiet"]);
        std::fs::write(
            root.join(".gitignore"),
            "ignored.json\ntracked-ignored.json\nnot-made.json\n",
        )
        .unwrap();
        for name in [
            "tracked.json",
            "modified.json",
            "tracked-ignored.json",
            "ignored.json",
            "loose.json",
        ] {
            std::fs::write(root.join(name), "{}").unwrap();
        }
        run(root, &["add", "tracked.json", "modified.json", ".gitignore"]);
        run(root, &["add", "--force", "tracked-ignored.json"]);
        run(root, &["commit", "--quiet", "-m", "files"]);
        std::fs::write(root.join("modified.json"), "{\"changed\": true}").unwrap();

        let cases = [
            (root.join("tracked.json"), GitStatus::Tracked),
            (root.join("modified.json"), GitStatus::Tracked),
            (root.join("tracked-ignored.json"), GitStatus::Tracked),
            (root.join("ignored.json"), GitStatus::Ignored),
            (root.join("loose.json"), GitStatus::NotIgnored),
            (root.join("not-yet.json"), GitStatus::NotIgnored),
            (root.join("not-made.json"), GitStatus::Ignored),
            (outside.path().join("settings.json"), GitStatus::NoRepository),
            (outside.path().join("absent.json"), GitStatus::NoRepository),
            (
                outside.path().join("no/such/dir/settings.json"),
                GitStatus::NoRepository,
            ),
        ];
        for (file, expected) in &cases {
            assert_eq!(status(file), *expected, "{}", file.display());
        }

        // Started ahead and finished before the file is rewritten (atomically, as an apply
        // does: the widest gap an apply can open), then read, the checks answer the same; a
        // file that did not exist is checked once it does.
        let mut checks = Checks::start(cases.iter().map(|(file, _)| file.clone()));
        let existing = cases.iter().filter(|(file, _)| file.exists()).count();
        assert_eq!(existing, 6);
        let expected_started = if cfg!(unix) { existing } else { 0 };
        assert_eq!(
            checks.started.len(),
            expected_started,
            "a check per existing file"
        );
        for (_, child) in &mut checks.started {
            child.wait().unwrap();
        }
        for (file, _) in &cases {
            if file.parent().is_some_and(Path::exists) {
                write_atomic(file, b"{\"rewritten\": true}", Access::OwnerOnly).unwrap();
            }
        }
        for (file, expected) in &cases {
            assert_eq!(checks.status(file), *expected, "started: {}", file.display());
        }
        assert!(checks.started.is_empty(), "every started check was read");

        // Checks nobody reads are stopped and reaped when dropped.
        let checks = Checks::start([root.join("tracked.json"), root.join("loose.json")]);
        let pids: Vec<u32> = checks.started.iter().map(|(_, c)| c.id()).collect();
        assert_eq!(pids.len(), if cfg!(unix) { 2 } else { 0 }, "both files exist");
        drop(checks);
        for pid in pids.into_iter().filter(|_| cfg!(target_os = "linux")) {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists(),
                "check {pid} is reaped"
            );
        }
    }
}
