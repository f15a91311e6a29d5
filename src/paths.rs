//! Where the tool keeps its files: config, data (the embedded sandbox) and state.

use crate::error::{Error, ErrorKind, Result};
use std::path::PathBuf;

/// The tool's own directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub config_dir: PathBuf,
    pub data_dir: PathBuf,
    pub state_dir: PathBuf,
}

/// Puts every directory under one folder: for tests, and for a portable setup.
pub const HOME_ENV: &str = "ELITEA_TOKENS_HOME";

impl Paths {
    /// The platform's directories (XDG on Linux, `~/Library` on macOS, `%APPDATA%` on
    /// Windows), or all under `$ELITEA_TOKENS_HOME` when it is set.
    pub fn discover() -> Result<Paths> {
        if let Some(home) = std::env::var_os(HOME_ENV).filter(|v| !v.is_empty()) {
            return Ok(Paths::under(PathBuf::from(home)));
        }
        let dirs = directories::ProjectDirs::from("ai", "elitea", "elitea-tokens").ok_or_else(|| {
            Error::new(
                ErrorKind::Local,
                format!(
                    "cannot find a home directory for the tool's files; set {HOME_ENV} to a folder it may use"
                ),
            )
        })?;
        Ok(Paths {
            config_dir: dirs.config_dir().to_path_buf(),
            data_dir: dirs.data_dir().to_path_buf(),
            state_dir: dirs
                .state_dir()
                .unwrap_or_else(|| dirs.data_local_dir())
                .to_path_buf(),
        })
    }

    pub fn under(home: PathBuf) -> Paths {
        Paths {
            config_dir: home.join("config"),
            data_dir: home.join("data"),
            state_dir: home.join("state"),
        }
    }

    /// The embedded sandbox's database.
    pub fn sandbox_db(&self) -> PathBuf {
        self.data_dir.join("sandbox.sqlite3")
    }
}
