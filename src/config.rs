//! The user's choices, kept in `config.toml` in the config directory: the server they logged in
//! to and how IDE settings are made. No secret is ever written here.

use crate::domain::{Flavor, ProfileChoices};
use crate::error::{Error, ErrorKind, Result};
use crate::fsx::{Access, write_atomic};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The Public project's id on a default deployment.
pub const DEFAULT_PUBLIC_PROJECT_ID: i64 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The server `login` stored a credential for; used when no `--server` is given.
    pub server: Option<String>,
    /// The deployment's Public project, which IDE settings must not use.
    pub public_project_id: Option<i64>,
    /// Which extension generation to write for.
    pub flavor: Option<Flavor>,
    /// Project, model and display choices for IDE settings (`[settings]`).
    pub settings: ProfileChoices,
}

impl Config {
    pub fn path(config_dir: &Path) -> PathBuf {
        config_dir.join("config.toml")
    }

    /// Reads the config; a missing file is the default. A file that does not parse is an error
    /// that names the file and the place, and is never overwritten.
    pub fn load(config_dir: &Path) -> Result<Config> {
        let path = Config::path(config_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::Local,
                    format!("cannot read {}: {e}", path.display()),
                ));
            }
        };
        toml::from_str(&text).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("{} is not valid: {}", path.display(), e.to_string().trim()),
            )
        })
    }

    pub fn save(&self, config_dir: &Path) -> Result<()> {
        let path = Config::path(config_dir);
        std::fs::create_dir_all(config_dir).map_err(|e| {
            Error::new(
                ErrorKind::Local,
                format!("cannot create {}: {e}", config_dir.display()),
            )
        })?;
        let text = toml::to_string_pretty(self)
            .map_err(|e| Error::new(ErrorKind::Local, format!("cannot write the config: {e}")))?;
        write_atomic(&path, text.as_bytes(), Access::Keep)
            .map_err(|e| Error::new(ErrorKind::Local, format!("cannot write {}: {e}", path.display())))
    }

    pub fn public_project_id(&self) -> i64 {
        self.public_project_id.unwrap_or(DEFAULT_PUBLIC_PROJECT_ID)
    }

    /// The configured choices, overridden by the command's own.
    pub fn choices(&self, overrides: &ProfileChoices) -> ProfileChoices {
        let s = &self.settings;
        ProfileChoices {
            project_id: overrides.project_id.or(s.project_id),
            model: overrides.model.clone().or_else(|| s.model.clone()),
            integration_uid: overrides
                .integration_uid
                .clone()
                .or_else(|| s.integration_uid.clone()),
            integration_name: overrides
                .integration_name
                .clone()
                .or_else(|| s.integration_name.clone()),
            display_type: overrides.display_type.or(s.display_type),
            verify_ssl: overrides.verify_ssl.or(s.verify_ssl),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_a_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Config::load(dir.path()).unwrap(), Config::default());
        let config = Config {
            server: Some("https://next.elitea.ai".into()),
            flavor: Some(Flavor::Current),
            settings: ProfileChoices {
                project_id: Some(27),
                verify_ssl: Some(false),
                ..ProfileChoices::default()
            },
            ..Config::default()
        };
        config.save(dir.path()).unwrap();
        assert_eq!(Config::load(dir.path()).unwrap(), config);
        std::fs::write(Config::path(dir.path()), "server = [").unwrap();
        let err = Config::load(dir.path()).unwrap_err();
        assert!(err.message.contains("config.toml is not valid"), "{err}");
        std::fs::write(Config::path(dir.path()), "servr = \"x\"").unwrap();
        assert!(
            Config::load(dir.path())
                .unwrap_err()
                .message
                .contains("unknown field")
        );
    }
}
