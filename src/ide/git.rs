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

fn git(dir: &Path, args: &[&str]) -> Option<std::process::ExitStatus> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
}

/// How git sees `file` (which need not exist yet).
pub fn status(file: &Path) -> GitStatus {
    let dir = match file.parent() {
        Some(dir) if dir.exists() => dir,
        _ => return GitStatus::NoRepository,
    };
    let Some(inside) = git(dir, &["rev-parse", "--is-inside-work-tree"]) else {
        return GitStatus::GitMissing;
    };
    if !inside.success() {
        return GitStatus::NoRepository;
    }
    let path = file.to_string_lossy();
    if git(dir, &["ls-files", "--error-unmatch", "--", &path]).is_some_and(|s| s.success()) {
        return GitStatus::Tracked;
    }
    match git(dir, &["check-ignore", "-q", "--", &path]) {
        Some(s) if s.success() => GitStatus::Ignored,
        _ => GitStatus::NotIgnored,
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
