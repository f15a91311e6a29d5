//! What the tool remembers between runs, in the state directory: the tokens it created (and
//! the period each was made with, for rotation) and every workspace a token was written to.
//! No secret is ever written here.

use crate::error::{Error, ErrorKind, Result};
use crate::fsx::{Access, create_private_dir, write_atomic};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// Which IDE a workspace's files are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Ide {
    Vscode,
    Jetbrains,
}

impl Ide {
    pub fn as_str(self) -> &'static str {
        match self {
            Ide::Vscode => "vscode",
            Ide::Jetbrains => "jetbrains",
        }
    }
}

/// A token this tool created.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenRecord {
    pub server: String,
    pub uuid: Uuid,
    pub name: String,
    /// The period it was created with (`30 days`, `never`), so rotation can repeat it.
    pub period: String,
    pub created_at: DateTime<Utc>,
    /// When it expires (`None`: never), so reminders fire even when the server is unreachable.
    #[serde(default)]
    pub expires: Option<DateTime<Utc>>,
}

/// A token written into a workspace's IDE files.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorkspaceRecord {
    pub server: String,
    pub uuid: Uuid,
    pub name: String,
    /// Absolute path of the workspace folder.
    pub workspace: PathBuf,
    pub ide: Ide,
    pub flavor: crate::domain::Flavor,
    pub applied_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct StateData {
    pub tokens: Vec<TokenRecord>,
    pub workspaces: Vec<WorkspaceRecord>,
}

impl StateData {
    /// A digest of the whole state, so a daemon can tell a change without keeping a copy.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        self.hash(&mut hasher);
        hasher.finish()
    }

    pub fn token(&self, server: &str, uuid: Uuid) -> Option<&TokenRecord> {
        self.tokens.iter().find(|t| t.server == server && t.uuid == uuid)
    }

    /// The workspaces where a token is in use.
    pub fn workspaces_of(&self, server: &str, uuid: Uuid) -> Vec<&WorkspaceRecord> {
        self.workspaces
            .iter()
            .filter(|w| w.server == server && w.uuid == uuid)
            .collect()
    }

    /// Records that `record.workspace` now holds `record.uuid` for that IDE, replacing what that
    /// workspace held before for the same server and IDE.
    pub fn record_workspace(&mut self, record: WorkspaceRecord) {
        self.workspaces.retain(|w| {
            !(w.server == record.server && w.workspace == record.workspace && w.ide == record.ide)
        });
        self.workspaces.push(record);
    }

    pub fn forget_token(&mut self, server: &str, uuid: Uuid) {
        self.tokens.retain(|t| !(t.server == server && t.uuid == uuid));
    }
}

/// The state file, read and written under an exclusive lock so that two processes (a terminal
/// and an IDE's daemon) never lose each other's records.
#[derive(Debug, Clone)]
pub struct State {
    dir: PathBuf,
}

impl State {
    pub fn new(state_dir: &Path) -> State {
        State {
            dir: state_dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    fn local_error(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::new(
            ErrorKind::Local,
            format!("cannot {what} in {}: {e}", self.dir.display()),
        )
    }

    /// Holds the lock for as long as the returned file lives.
    pub fn lock(&self) -> Result<File> {
        create_private_dir(&self.dir).map_err(|e| self.local_error("create the state directory", e))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("state.lock"))
            .map_err(|e| self.local_error("open the lock file", e))?;
        lock.lock().map_err(|e| self.local_error("lock the state", e))?;
        Ok(lock)
    }

    /// The current state; a missing file is empty.
    pub fn read(&self) -> Result<StateData> {
        match std::fs::read(self.file()) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::new(
                    ErrorKind::Local,
                    format!(
                        "{} is damaged ({e}); move it aside to start afresh (it holds no secrets)",
                        self.file().display()
                    ),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StateData::default()),
            Err(e) => Err(self.local_error("read the state", e)),
        }
    }

    /// Changes the state under the lock and writes it back atomically.
    pub fn update<T>(&self, change: impl FnOnce(&mut StateData) -> T) -> Result<T> {
        let _lock = self.lock()?;
        let mut data = self.read()?;
        let result = change(&mut data);
        let text = serde_json::to_vec_pretty(&data).map_err(|e| self.local_error("encode the state", e))?;
        write_atomic(&self.file(), &text, Access::OwnerOnly)
            .map_err(|e| self.local_error("write the state", e))?;
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(workspace: &str, uuid: u128, ide: Ide) -> WorkspaceRecord {
        WorkspaceRecord {
            server: "https://s".into(),
            uuid: Uuid::from_u128(uuid),
            name: format!("t{uuid}"),
            workspace: PathBuf::from(workspace),
            ide,
            flavor: crate::domain::Flavor::Both,
            applied_at: Utc::now(),
        }
    }

    #[test]
    fn workspace_records_replace_what_a_workspace_held() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::new(&dir.path().join("state"));
        state
            .update(|s| {
                s.record_workspace(record("/w1", 1, Ide::Vscode));
                s.record_workspace(record("/w1", 1, Ide::Jetbrains));
                s.record_workspace(record("/w2", 1, Ide::Vscode));
                s.record_workspace(record("/w1", 2, Ide::Vscode));
            })
            .unwrap();
        let data = state.read().unwrap();
        let of_1: Vec<_> = data
            .workspaces_of("https://s", Uuid::from_u128(1))
            .iter()
            .map(|w| (w.workspace.display().to_string(), w.ide))
            .collect();
        assert_eq!(
            of_1,
            vec![
                ("/w1".to_string(), Ide::Jetbrains),
                ("/w2".to_string(), Ide::Vscode)
            ]
        );
        assert_eq!(data.workspaces_of("https://s", Uuid::from_u128(2)).len(), 1);
    }

    #[test]
    fn concurrent_updates_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::new(dir.path());
        std::thread::scope(|scope| {
            for n in 0..8u128 {
                let state = state.clone();
                scope.spawn(move || {
                    state
                        .update(|s| s.record_workspace(record(&format!("/w{n}"), n, Ide::Vscode)))
                        .unwrap()
                });
            }
        });
        assert_eq!(state.read().unwrap().workspaces.len(), 8);
    }
}
