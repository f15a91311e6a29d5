//! Which store holds each secret: `<state dir>/secrets-index.json`, account → store name.

use super::file::{corrupt_json, lock_file};
use super::{SecretKey, StoreError, StoreKind};
use crate::fsx::{Access, write_atomic};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const VERSION: u32 = 1;

/// The index file. It holds no secret values, only where each one is; it is still written
/// `0600` because the accounts name the user's servers and tokens.
#[derive(Debug, Clone)]
pub(super) struct Index {
    path: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct IndexFile {
    version: u32,
    secrets: BTreeMap<String, StoreKind>,
}

impl Index {
    pub(super) const FILE_NAME: &'static str = "secrets-index.json";

    pub(super) fn new(path: PathBuf) -> Index {
        Index { path }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn lookup(&self, key: &SecretKey) -> Result<Option<StoreKind>, StoreError> {
        Ok(self.read()?.get(&key.account()).copied())
    }

    /// Whether any secret is recorded in `kind`.
    pub(super) fn mentions(&self, kind: StoreKind) -> Result<bool, StoreError> {
        Ok(self.read()?.values().any(|k| *k == kind))
    }

    /// Records that `kind` holds `key`; returns the store recorded before, if any.
    pub(super) fn record(&self, key: &SecretKey, kind: StoreKind) -> Result<Option<StoreKind>, StoreError> {
        self.update(|secrets| {
            let before = secrets.insert(key.account(), kind);
            (before, before != Some(kind))
        })
    }

    pub(super) fn forget(&self, key: &SecretKey) -> Result<(), StoreError> {
        self.update(|secrets| ((), secrets.remove(&key.account()).is_some()))
    }

    /// Every record (account → store), read once.
    pub(super) fn read(&self) -> Result<BTreeMap<String, StoreKind>, StoreError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => {
                return Err(StoreError::io(format!(
                    "cannot read {}: {e}",
                    self.path.display()
                )));
            }
        };
        let file: IndexFile = serde_json::from_slice(&bytes).map_err(|e| {
            let mut err = corrupt_json(&self.path, "secret index", &e);
            err.message.push_str(concat!(
                " (it holds no secrets, only which store keeps each one;",
                " without it every store in use is searched)"
            ));
            err
        })?;
        if file.version != VERSION {
            return Err(StoreError::corrupt(format!(
                "{} has version {}, this tool reads version {VERSION}",
                self.path.display(),
                file.version
            )));
        }
        Ok(file.secrets)
    }

    fn update<T>(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, StoreKind>) -> (T, bool),
    ) -> Result<T, StoreError> {
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir)
            .map_err(|e| StoreError::io(format!("cannot create {}: {e}", dir.display())))?;
        let name = self
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(Self::FILE_NAME);
        let _lock = lock_file(&dir.join(format!(".{name}.lock")))?;
        let mut secrets = self.read()?;
        let (out, changed) = change(&mut secrets);
        if changed {
            let file = IndexFile {
                version: VERSION,
                secrets,
            };
            let mut bytes = serde_json::to_vec_pretty(&file)
                .map_err(|e| StoreError::io(format!("cannot encode {}: {e}", self.path.display())))?;
            bytes.push(b'\n');
            write_atomic(&self.path, &bytes, Access::OwnerOnly)
                .map_err(|e| StoreError::io(format!("cannot write {}: {e}", self.path.display())))?;
        }
        Ok(out)
    }
}
