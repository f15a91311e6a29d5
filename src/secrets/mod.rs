//! Where token values and login credentials are kept.
//!
//! ELITEA shows a personal token's full value only once, when it is created, so the tool keeps
//! it, and the user's login credential, in a secret store: the OS keyring when there is one.
//!
//! # What a secret is called
//!
//! A [`SecretKey`] names a secret per server: a token's value (`Token { server, uuid }`) or the
//! login credential of a server (`Credential { server }`). Every store files it under the
//! service `elitea-tokens` and an account string:
//!
//! | key                          | account                        |
//! |------------------------------|--------------------------------|
//! | `Token { server, uuid }`     | `token:<uuid>@<server>`        |
//! | `Credential { server }`      | `credential@<server>`          |
//!
//! `<server>` is the server URL as the profile has it (`https://next.elitea.ai`), so two
//! servers that happen to hold tokens with the same uuid never share an entry.
//!
//! # The stores
//!
//! | store      | where the value lives                                                         |
//! |------------|-------------------------------------------------------------------------------|
//! | `keyring`  | the OS keyring: Secret Service (GNOME Keyring, KWallet) on Linux and BSD, the login Keychain on macOS, Credential Manager on Windows. Item: service `elitea-tokens`, account as above (on the Secret Service the attributes `service` and `username`). |
//! | `keyutils` | the Linux kernel key service, a `user` key described `elitea-tokens:<account>` in the session keyring, linked to the user's persistent keyring. Kernel memory only, never on disk: **lost at reboot**, and after logout once the persistent keyring expires (`/proc/sys/kernel/keys/persistent_keyring_expiry`, 3 days by default). Readable by the user's other processes. A process without a session keyring (no PAM login: some containers, CI, services) may be able to add keys but not read them back; `auto` then passes keyutils over. |
//! | `file`     | `<data dir>/secrets/secrets.json`: plain JSON, mode `0600` in a `0700` directory, replaced atomically. Protected only by file permissions: anyone who can read the user's files (root, a backup, a synced home directory) can read the tokens. |
//! | `memory`   | this process only; for tests and for `ELITEA_SECRET_STORE=memory`. |
//!
//! # Which store is used
//!
//! `ELITEA_SECRET_STORE` picks it ([`StoreChoice`]): `auto` (the default), or exactly one of
//! `keyring`, `keyutils`, `file`, `memory`. An explicit store is opened without any test
//! write; if it does not work, the tool fails with a message that says so rather than putting
//! the secret somewhere else.
//!
//! With `auto`, [`Secrets::open`] tries `keyring`, then `keyutils` (Linux only), then `file`,
//! and puts new secrets in the first that passes a write, read and delete of a throwaway
//! secret (under the server name `probe.elitea-tokens.invalid`, deleted again). Each try has
//! 3 seconds: a keyring can wait forever on an unlock prompt nobody sees, and such a keyring
//! counts as not working for this run. A locked Secret Service with no prompt to show refuses
//! at once. The probes' cost is logged at `debug`. Later keyring calls have 60 seconds, time
//! enough to answer an unlock prompt.
//!
//! When neither works (a server without a desktop session, a container, a locked keyring) new
//! secrets go to the plain file, and the tool says so: a warning in the log when the choice is
//! made and the first time a process opens the file, and `status` shows the store as a fallback
//! ([`Secrets::is_fallback`]). To avoid it, run a Secret Service; on a headless Linux box,
//! `gnome-keyring-daemon --unlock --components=secrets` inside a D-Bus session.
//!
//! # Finding a secret again
//!
//! The store that works can change between runs: a keyring locked today is unlocked
//! tomorrow. So the tool remembers which store holds each secret in an index,
//! `<state dir>/secrets-index.json` (account → store name; no secret values). `get` and
//! `delete` go to the store the index names; a value written to the file while the keyring was
//! locked is found in the file later. Writing a secret again puts it in today's store and
//! deletes the old copy. If the index names a store that does not work now, the tool reports
//! that store as unavailable instead of answering "not stored". A secret the index does not
//! know (the index was removed) is looked for in every store in use.
//!
//! No error or log line carries a secret value: errors name the account (server and token
//! uuid) and the store, never the value.

mod file;
mod index;
mod keyring_store;
mod memory;
mod router;

pub use file::FileStore;
pub use keyring_store::{KeyringStore, KeyutilsStore};
pub use memory::{FailingStore, MemoryStore, Op, When};
pub use router::{ProbeOutcome, Secrets, indexed_stores, open_kind};

use crate::domain::Secret;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// The keyring service every secret of the tool is filed under.
pub const SERVICE: &str = "elitea-tokens";

/// The environment variable that picks the store.
pub const STORE_ENV: &str = "ELITEA_SECRET_STORE";

/// A kind of secret store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The platform keyring: Secret Service, macOS Keychain or Windows Credential Manager.
    Keyring,
    /// The Linux kernel key service; values are lost at reboot.
    Keyutils,
    /// A plain JSON file readable only by the user.
    File,
    /// This process's memory.
    Memory,
}

impl StoreKind {
    pub const ALL: [StoreKind; 4] = [
        StoreKind::Keyring,
        StoreKind::Keyutils,
        StoreKind::File,
        StoreKind::Memory,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Keyring => "keyring",
            StoreKind::Keyutils => "keyutils",
            StoreKind::File => "file",
            StoreKind::Memory => "memory",
        }
    }

    /// A longer name for people: what the store is on this platform.
    pub fn describe(self) -> String {
        match self {
            StoreKind::Keyring => format!("keyring ({})", KeyringStore::platform()),
            StoreKind::Keyutils => "keyutils (Linux kernel keyring, cleared at reboot)".to_string(),
            StoreKind::File => "file (plain file, protected only by file permissions)".to_string(),
            StoreKind::Memory => "memory (this process only)".to_string(),
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const KIND_NAMES: &str = "keyring, keyutils, file, memory";
const CHOICE_NAMES: &str = "auto, keyring, keyutils, file, memory";

impl FromStr for StoreKind {
    type Err = ParseStoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        StoreKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| ParseStoreError::new(s, KIND_NAMES))
    }
}

/// Which store to use, as `ELITEA_SECRET_STORE` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreChoice {
    /// Probe keyring → keyutils → file and use the first that works.
    #[default]
    Auto,
    /// Exactly this store, or an error.
    Only(StoreKind),
}

impl StoreChoice {
    /// Reads `ELITEA_SECRET_STORE`; unset or empty means `auto`.
    pub fn from_env() -> Result<StoreChoice, ParseStoreError> {
        let value = std::env::var(STORE_ENV).ok();
        StoreChoice::from_env_value(value.as_deref())
    }

    /// [`StoreChoice::from_env`] for a given value, so it can be tested without the process
    /// environment.
    pub fn from_env_value(value: Option<&str>) -> Result<StoreChoice, ParseStoreError> {
        match value {
            None => Ok(StoreChoice::Auto),
            Some(v) if v.trim().is_empty() => Ok(StoreChoice::Auto),
            Some(v) => v.parse().map_err(|e: ParseStoreError| e.with_variable(STORE_ENV)),
        }
    }
}

impl fmt::Display for StoreChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreChoice::Auto => f.write_str("auto"),
            StoreChoice::Only(kind) => kind.fmt(f),
        }
    }
}

impl FromStr for StoreChoice {
    type Err = ParseStoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("auto") {
            return Ok(StoreChoice::Auto);
        }
        s.parse::<StoreKind>()
            .map(StoreChoice::Only)
            .map_err(|_| ParseStoreError::new(s, CHOICE_NAMES))
    }
}

/// A store name that is not one of the known names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseStoreError {
    pub value: String,
    /// The accepted names, comma separated.
    pub expected: &'static str,
    /// The environment variable the value came from, if any.
    pub variable: Option<&'static str>,
}

impl fmt::Display for ParseStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(variable) = self.variable {
            write!(f, "{variable}=")?;
        }
        write!(
            f,
            "{:?} is not a secret store: use one of {}",
            self.value, self.expected
        )
    }
}

impl std::error::Error for ParseStoreError {}

impl ParseStoreError {
    fn new(value: &str, expected: &'static str) -> Self {
        ParseStoreError {
            value: value.to_string(),
            expected,
            variable: None,
        }
    }

    fn with_variable(mut self, variable: &'static str) -> Self {
        self.variable = Some(variable);
        self
    }
}

/// What a secret is: per server and per token uuid, or the login credential of a server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecretKey {
    /// The full value of a personal token.
    Token { server: String, uuid: Uuid },
    /// The credential the user logs in to a server with.
    Credential { server: String },
}

impl SecretKey {
    pub fn token(server: impl Into<String>, uuid: Uuid) -> SecretKey {
        SecretKey::Token {
            server: server.into(),
            uuid,
        }
    }

    pub fn credential(server: impl Into<String>) -> SecretKey {
        SecretKey::Credential {
            server: server.into(),
        }
    }

    pub fn server(&self) -> &str {
        match self {
            SecretKey::Token { server, .. } | SecretKey::Credential { server } => server,
        }
    }

    /// The account string stores file the secret under: `token:<uuid>@<server>` or
    /// `credential@<server>`. Never ambiguous: a uuid has no `@`, and the server is the rest.
    pub fn account(&self) -> String {
        match self {
            SecretKey::Token { server, uuid } => format!("token:{uuid}@{server}"),
            SecretKey::Credential { server } => format!("credential@{server}"),
        }
    }

    /// The inverse of [`SecretKey::account`].
    pub fn from_account(account: &str) -> Option<SecretKey> {
        if let Some(server) = account.strip_prefix("credential@") {
            return Some(SecretKey::credential(server));
        }
        let (uuid, server) = account.strip_prefix("token:")?.split_once('@')?;
        Some(SecretKey::token(server, uuid.parse().ok()?))
    }
}

impl fmt::Display for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.account())
    }
}

/// Why a store could not do what was asked. The message names the store and the key, never a
/// secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    pub kind: StoreErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreErrorKind {
    /// The store is not there or does not work here: no D-Bus session, no Secret Service, not
    /// this platform, not the store `ELITEA_SECRET_STORE` picked.
    Unavailable,
    /// The store did not answer in time (a keyring waiting on an unlock prompt).
    Timeout,
    /// The store refused: locked, a prompt dismissed, permission denied.
    Denied,
    /// The stored data cannot be read: a malformed secrets file or index, an unreadable value.
    Corrupt,
    /// Reading or writing a file failed.
    Io,
}

impl StoreError {
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
        StoreError {
            kind,
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Unavailable, message)
    }

    pub fn corrupt(message: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Corrupt, message)
    }

    pub fn io(message: impl Into<String>) -> StoreError {
        StoreError::new(StoreErrorKind::Io, message)
    }
}

/// A place secrets can be kept. Implementations are synchronous and may block (a keyring can
/// wait on the user); async callers run them in `spawn_blocking`.
pub trait SecretStore: Send + Sync {
    fn kind(&self) -> StoreKind;
    /// The value, or `None` when nothing is stored under `key`.
    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, StoreError>;
    /// Stores `value` under `key`, replacing any value there.
    fn set(&self, key: &SecretKey, value: &Secret) -> Result<(), StoreError>;
    /// Removes the value; `true` if there was one.
    fn delete(&self, key: &SecretKey) -> Result<bool, StoreError>;
    /// Whether a value is kept under `key`. Stores that remember where secrets are answer
    /// without reading the value (the token table asks this for every row it shows).
    fn holds(&self, key: &SecretKey) -> Result<bool, StoreError> {
        Ok(self.get(key)?.is_some())
    }
    /// [`holds`](Self::holds) for each key; stores with an index read it once for them all.
    fn holds_each(&self, keys: &[SecretKey]) -> Result<Vec<bool>, StoreError> {
        keys.iter().map(|key| self.holds(key)).collect()
    }
    /// [`holds_each`](Self::holds_each) from a small local index alone, touching no store (so
    /// never waiting on a keyring): `None` when there is no index that can answer.
    fn indexed_holds_each(&self, _keys: &[SecretKey]) -> Option<Vec<bool>> {
        None
    }
}

/// A shared store is a store: lets callers hand an `Arc<Secrets>` (or a test store they keep a
/// handle on) to code that wants a `SecretStore`.
impl<T: SecretStore + ?Sized> SecretStore for std::sync::Arc<T> {
    fn kind(&self) -> StoreKind {
        (**self).kind()
    }

    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, StoreError> {
        (**self).get(key)
    }

    fn set(&self, key: &SecretKey, value: &Secret) -> Result<(), StoreError> {
        (**self).set(key, value)
    }

    fn delete(&self, key: &SecretKey) -> Result<bool, StoreError> {
        (**self).delete(key)
    }

    fn holds(&self, key: &SecretKey) -> Result<bool, StoreError> {
        (**self).holds(key)
    }

    fn holds_each(&self, keys: &[SecretKey]) -> Result<Vec<bool>, StoreError> {
        (**self).holds_each(keys)
    }

    fn indexed_holds_each(&self, keys: &[SecretKey]) -> Option<Vec<bool>> {
        (**self).indexed_holds_each(keys)
    }
}
