//! The last-resort store: an owner-only JSON file.

use super::{SecretKey, SecretStore, StoreError, StoreKind};
use crate::domain::Secret;
use crate::fsx::{Access, create_private_dir, write_atomic};
use crate::paths::Paths;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const VERSION: u32 = 1;

/// Secrets in `<data dir>/secrets/secrets.json`, mode `0600` in a `0700` directory:
///
/// ```json
/// { "version": 1, "secrets": { "token:<uuid>@<server>": "<value>", "credential@<server>": "<value>" } }
/// ```
///
/// Each write replaces the file atomically ([`write_atomic`]), under a lock file beside it so two
/// processes do not lose each other's secrets. A file that cannot be parsed is reported as
/// `Corrupt` and never overwritten: it may be the only copy of a token value.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
}

#[derive(Serialize, Deserialize, Default)]
struct SecretsFile {
    version: u32,
    /// Account → value; a BTreeMap keeps the file's order stable between writes.
    secrets: BTreeMap<String, String>,
}

impl FileStore {
    pub const DIR_NAME: &'static str = "secrets";
    pub const FILE_NAME: &'static str = "secrets.json";

    /// Where the file store keeps its file under `paths`; opens nothing.
    pub fn location(paths: &Paths) -> PathBuf {
        paths.data_dir.join(Self::DIR_NAME).join(Self::FILE_NAME)
    }

    /// The store at [`FileStore::location`].
    pub fn open(paths: &Paths) -> Result<FileStore, StoreError> {
        FileStore::open_in(&paths.data_dir.join(Self::DIR_NAME))
    }

    /// The store in `dir` (created `0700` if missing). Logs a warning the first time this
    /// process opens it: the user should know their tokens sit in a plain file, once (a
    /// command may open it twice, to read and then to write).
    pub fn open_in(dir: &Path) -> Result<FileStore, StoreError> {
        static WARNED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
        create_private_dir(dir)
            .map_err(|e| StoreError::io(format!("file store: cannot create {}: {e}", dir.display())))?;
        let path = dir.join(Self::FILE_NAME);
        let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
        if !warned.contains(&path) {
            tracing::warn!(
                path = %path.display(),
                "secrets are stored in a plain file, protected only by file permissions: anyone who \
                 can read this user's files can read them; run a Secret Service or set \
                 ELITEA_SECRET_STORE to keep them in a keyring"
            );
            warned.push(path.clone());
        }
        drop(warned);
        Ok(FileStore {
            lock_path: dir.join(format!(".{}.lock", Self::FILE_NAME)),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<SecretsFile, StoreError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(SecretsFile {
                    version: VERSION,
                    ..SecretsFile::default()
                });
            }
            Err(e) => {
                return Err(StoreError::io(format!(
                    "cannot read {}: {e}",
                    self.path.display()
                )));
            }
        };
        let file: SecretsFile =
            serde_json::from_slice(&bytes).map_err(|e| corrupt_json(&self.path, "secrets file", &e))?;
        if file.version != VERSION {
            return Err(StoreError::corrupt(format!(
                "{} has version {}, this tool reads version {VERSION}; it was left as it is",
                self.path.display(),
                file.version
            )));
        }
        Ok(file)
    }

    fn write(&self, file: &SecretsFile) -> Result<(), StoreError> {
        let mut bytes = serde_json::to_vec_pretty(file)
            .map_err(|e| StoreError::io(format!("cannot encode {}: {e}", self.path.display())))?;
        bytes.push(b'\n');
        write_atomic(&self.path, &bytes, Access::OwnerOnly)
            .map_err(|e| StoreError::io(format!("cannot write {}: {e}", self.path.display())))
    }

    /// Read, change, write back (only if `change` says it changed something), under the lock.
    fn update<T>(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> (T, bool),
    ) -> Result<T, StoreError> {
        let _lock = lock_file(&self.lock_path)?;
        let mut file = self.read()?;
        let (out, changed) = change(&mut file.secrets);
        if changed {
            self.write(&file)?;
        }
        Ok(out)
    }
}

impl SecretStore for FileStore {
    fn kind(&self) -> StoreKind {
        StoreKind::File
    }

    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, StoreError> {
        // Reads skip the lock: writes are atomic renames, so a reader sees a whole file.
        Ok(self
            .read()?
            .secrets
            .get(&key.account())
            .map(|v| Secret::new(v.as_str())))
    }

    fn set(&self, key: &SecretKey, value: &Secret) -> Result<(), StoreError> {
        self.update(|secrets| {
            let value = value.expose();
            let changed = secrets.get(&key.account()).map(String::as_str) != Some(value);
            if changed {
                secrets.insert(key.account(), value.to_string());
            }
            ((), changed)
        })
    }

    fn delete(&self, key: &SecretKey) -> Result<bool, StoreError> {
        self.update(|secrets| {
            let removed = secrets.remove(&key.account()).is_some();
            (removed, removed)
        })
    }
}

/// A `Corrupt` error for a JSON file that did not parse. Only the position is reported:
/// serde's own message can quote the content, which may be a secret.
pub(super) fn corrupt_json(path: &Path, what: &str, e: &serde_json::Error) -> StoreError {
    let problem = match e.classify() {
        serde_json::error::Category::Eof => "it ends too early",
        serde_json::error::Category::Syntax => "it is not valid JSON",
        _ => "its content is not what this tool wrote",
    };
    StoreError::corrupt(format!(
        "{} is not a valid {what}: {problem} (line {}, column {}); it was left as it is: fix or remove it",
        path.display(),
        e.line(),
        e.column()
    ))
}

/// Takes an exclusive lock on `path` (created `0600` if missing), held until the file is
/// dropped. Locks are per open file, so threads of one process exclude each other too.
pub(super) fn lock_file(path: &Path) -> Result<File, StoreError> {
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options
        .open(path)
        .map_err(|e| StoreError::io(format!("cannot open lock file {}: {e}", path.display())))?;
    file.lock()
        .map_err(|e| StoreError::io(format!("cannot lock {}: {e}", path.display())))?;
    Ok(file)
}
