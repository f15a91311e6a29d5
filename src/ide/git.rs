//! Whether a file that holds a token could end up in a git commit, and the `.gitignore` fix.

use crate::fsx::{Access, write_atomic};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

/// Runs git in `dir` (without taking optional locks, so a check never blocks the user's own
/// git); `None` when git cannot be run at all.
fn git(dir: &Path, args: &[&str]) -> Option<std::process::Output> {
    Command::new("git")
        .arg("--no-optional-locks")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
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
    let Some(output) = git(dir, &args) else {
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
        for (file, expected) in cases {
            assert_eq!(status(&file), expected, "{}", file.display());
        }
    }
}
