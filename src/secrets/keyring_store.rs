//! The OS keyring and the Linux kernel keyring, through keyring v4 (`keyring-core` entries).

use super::{SERVICE, SecretKey, SecretStore, StoreError, StoreErrorKind, StoreKind};
use crate::domain::Secret;
use keyring_core::Entry;
use std::sync::mpsc;
use std::time::Duration;

/// The platforms where keyring v4's `v1` feature uses the Secret Service (through zbus).
macro_rules! secret_service_platform {
    ($($item:item)*) => {$(
        #[cfg(all(unix, not(any(target_os = "macos", target_os = "ios", target_os = "android"))))]
        $item
    )*};
}

/// The platform keyring: Secret Service on Linux and BSD, the Keychain on macOS, Credential
/// Manager on Windows, as keyring v4's `v1` feature picks it.
///
/// Items are filed under service `elitea-tokens` and the key's account string. On the Secret
/// Service they go to the default collection (the login keyring), with the label
/// `ELITEA token <uuid> on <server>` (or `ELITEA login credential for <server>`) so a keyring
/// browser shows what they are.
///
/// Every call runs on a helper thread and gives up after the timeout: a locked keyring may
/// wait on an unlock prompt that nobody sees. The helper thread is left to finish on its own.
///
/// keyring v4 connects to the platform store once per process, on first use, and keeps the
/// outcome: a Secret Service that was not running then stays unavailable until the tool
/// restarts.
#[derive(Debug, Clone)]
pub struct KeyringStore {
    timeout: Duration,
}

impl KeyringStore {
    /// Long enough to type a keyring password into an unlock prompt.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
    /// For connecting to the keyring service, which needs no person.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

    /// What "keyring" is on this platform.
    pub fn platform() -> &'static str {
        if cfg!(target_os = "macos") {
            "macOS Keychain"
        } else if cfg!(target_os = "windows") {
            "Windows Credential Manager"
        } else if cfg!(all(unix, not(any(target_os = "ios", target_os = "android")))) {
            "Secret Service"
        } else {
            "none on this platform"
        }
    }

    /// Connects to the platform keyring without writing anything. `Unavailable` when there is
    /// none: no D-Bus session, no Secret Service on it, an unsupported platform.
    pub fn open() -> Result<KeyringStore, StoreError> {
        KeyringStore::open_with_timeout(KeyringStore::DEFAULT_TIMEOUT)
    }

    /// [`KeyringStore::open`] with `timeout` for each later call.
    pub fn open_with_timeout(timeout: Duration) -> Result<KeyringStore, StoreError> {
        let store = KeyringStore { timeout };
        // keyring v4 (`v1`) connects once per process, on first use, and keeps the outcome.
        store.bounded(
            KeyringStore::CONNECT_TIMEOUT.min(timeout),
            "connect to",
            None,
            || {
                keyring::Entry::store_status().as_ref().map_err(store_error)?;
                Ok(())
            },
        )?;
        Ok(store)
    }

    fn what(op: &str, key: Option<&SecretKey>) -> String {
        match key {
            Some(key) => format!("keyring ({}): {op} {key}", KeyringStore::platform()),
            None => format!("keyring ({}): {op}", KeyringStore::platform()),
        }
    }

    /// Runs `call` on a helper thread and waits at most `timeout` for it.
    fn bounded<T: Send + 'static>(
        &self,
        timeout: Duration,
        op: &str,
        key: Option<&SecretKey>,
        call: impl FnOnce() -> Result<T, Mapped> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("elitea-keyring".into())
            .spawn(move || {
                let _ = tx.send(call());
            })
            .map_err(|e| {
                StoreError::unavailable(format!("{}: cannot start a thread: {e}", Self::what(op, key)))
            })?;
        match rx.recv_timeout(timeout) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(mapped)) => Err(mapped.into_error(&Self::what(op, key))),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(StoreError::new(
                StoreErrorKind::Timeout,
                format!(
                    "{}: no answer within {}s; is the keyring locked and waiting for an unlock prompt?",
                    Self::what(op, key),
                    timeout.as_secs_f32()
                ),
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(StoreError::unavailable(format!(
                "{}: the keyring call failed without an answer",
                Self::what(op, key)
            ))),
        }
    }

    fn call<T: Send + 'static>(
        &self,
        op: &str,
        key: &SecretKey,
        call: impl FnOnce(&Entry) -> keyring_core::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let owned = key.clone();
        self.bounded(self.timeout, op, Some(key), move || {
            let entry = keyring_entry(&owned).map_err(|e| store_error(&e))?;
            call(&entry).map_err(|e| store_error(&e))
        })
    }
}

secret_service_platform! {
    /// What a keyring browser (Seahorse, KWallet) shows for the item.
    fn label(key: &SecretKey) -> String {
        match key {
            SecretKey::Token { server, uuid } => format!("ELITEA token {uuid} on {server}"),
            SecretKey::Credential { server } => format!("ELITEA login credential for {server}"),
        }
    }

    fn keyring_entry(key: &SecretKey) -> keyring_core::Result<Entry> {
        keyring::Entry::store_status().as_ref().map_err(|_| keyring_core::Error::NoDefaultStore)?;
        let label = label(key);
        // `v1` made the Secret Service store keyring-core's default store; build on it with a label.
        let modifiers = std::collections::HashMap::from([("label", label.as_str())]);
        Entry::new_with_modifiers(SERVICE, &key.account(), &modifiers)
    }
}

#[cfg(not(all(unix, not(any(target_os = "macos", target_os = "ios", target_os = "android")))))]
fn keyring_entry(key: &SecretKey) -> keyring_core::Result<Entry> {
    keyring::Entry::new(SERVICE, &key.account()).map(|entry| entry.inner)
}

impl SecretStore for KeyringStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Keyring
    }

    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, StoreError> {
        self.call("get", key, entry_get)
    }

    fn set(&self, key: &SecretKey, value: &Secret) -> Result<(), StoreError> {
        let value = value.clone();
        self.call("set", key, move |entry| entry.set_password(value.expose()))
    }

    fn delete(&self, key: &SecretKey) -> Result<bool, StoreError> {
        self.call("delete", key, entry_delete)
    }
}

/// The Linux kernel key service, through keyring v4's keyutils store
/// (`linux-keyutils-keyring-store`).
///
/// A secret is a `user` key described `elitea-tokens:<account>`, added to the session keyring
/// and linked to the user's persistent keyring. The kernel keeps keys in memory only: they are
/// **lost at reboot**, and once the user is logged out they last until the persistent keyring
/// expires (`/proc/sys/kernel/keys/persistent_keyring_expiry`, three days by default). Any
/// process of the same user can read them. Not available outside Linux.
#[derive(Debug, Clone)]
pub struct KeyutilsStore {
    #[cfg(target_os = "linux")]
    store: std::sync::Arc<linux_keyutils_keyring_store::Store>,
}

impl KeyutilsStore {
    /// The keyutils store. Makes no system call: a kernel or sandbox that refuses keyutils is
    /// found out by the first get or set.
    pub fn open() -> Result<KeyutilsStore, StoreError> {
        #[cfg(target_os = "linux")]
        {
            let store = linux_keyutils_keyring_store::Store::new()
                .map_err(|e| store_error(&e).into_error("keyutils: open"))?;
            Ok(KeyutilsStore { store })
        }
        #[cfg(not(target_os = "linux"))]
        {
            Err(StoreError::unavailable(
                "keyutils: the kernel key service exists only on Linux",
            ))
        }
    }

    fn call<T>(
        &self,
        op: &str,
        key: &SecretKey,
        call: impl FnOnce(&Entry) -> keyring_core::Result<T>,
    ) -> Result<T, StoreError> {
        let what = || format!("keyutils: {op} {key}");
        #[cfg(target_os = "linux")]
        {
            use keyring_core::api::CredentialStoreApi;
            // An explicit description: the default `keyring:<user>@<service>` is ambiguous when
            // the user part (our account) holds an `@`.
            let description = format!("{SERVICE}:{}", key.account());
            let modifiers = std::collections::HashMap::from([("description", description.as_str())]);
            let entry = self
                .store
                .build(SERVICE, &key.account(), Some(&modifiers))
                .map_err(|e| store_error(&e).into_error(&what()))?;
            call(&entry).map_err(|e| store_error(&e).into_error(&what()))
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = call;
            Err(StoreError::unavailable(format!("{}: only on Linux", what())))
        }
    }
}

impl SecretStore for KeyutilsStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Keyutils
    }

    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, StoreError> {
        self.call("get", key, entry_get)
    }

    fn set(&self, key: &SecretKey, value: &Secret) -> Result<(), StoreError> {
        self.call("set", key, |entry| {
            // The kernel may take the key and then refuse to link or read it (no session
            // keyring): remove what was added rather than leave a copy nobody can reach.
            entry.set_password(value.expose()).inspect_err(|_| {
                let _ = entry.delete_credential();
            })
        })
    }

    fn delete(&self, key: &SecretKey) -> Result<bool, StoreError> {
        self.call("delete", key, entry_delete)
    }
}

fn entry_get(entry: &Entry) -> keyring_core::Result<Option<Secret>> {
    match entry.get_password() {
        Ok(value) => Ok(Some(Secret::new(value))),
        Err(keyring_core::Error::NoEntry) => Ok(None),
        Err(e) => Err(e),
    }
}

fn entry_delete(entry: &Entry) -> keyring_core::Result<bool> {
    match entry.delete_credential() {
        Ok(()) => Ok(true),
        Err(keyring_core::Error::NoEntry) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A keyring error reduced to a kind and a text that holds no secret; the caller adds which
/// store, operation and key it was.
struct Mapped {
    kind: StoreErrorKind,
    detail: String,
}

impl Mapped {
    fn into_error(self, what: &str) -> StoreError {
        StoreError::new(self.kind, format!("{what}: {}", self.detail))
    }
}

fn store_error(e: &keyring_core::Error) -> Mapped {
    use keyring_core::Error as E;
    let (kind, detail) = match e {
        // Platform errors are D-Bus, Keychain or kernel messages; they carry no secret values.
        E::PlatformFailure(err) => (StoreErrorKind::Unavailable, err.to_string()),
        E::NoStorageAccess(err) => (StoreErrorKind::Denied, format!("access refused: {err}")),
        E::NoDefaultStore => (
            StoreErrorKind::Unavailable,
            "no keyring service on this system".to_string(),
        ),
        E::NoEntry => (StoreErrorKind::Unavailable, "no such entry".to_string()),
        // These two hold the stored bytes: never show them.
        E::BadEncoding(_) => (
            StoreErrorKind::Corrupt,
            "the stored value is not UTF-8 text".to_string(),
        ),
        E::BadDataFormat(..) => (
            StoreErrorKind::Corrupt,
            "the stored value is malformed".to_string(),
        ),
        E::BadStoreFormat(reason) => (
            StoreErrorKind::Corrupt,
            format!("the store is malformed: {reason}"),
        ),
        E::Ambiguous(items) => (
            StoreErrorKind::Corrupt,
            format!(
                "{} items match this entry; remove the extra ones with the keyring's own tool",
                items.len()
            ),
        ),
        E::TooLong(name, limit) => (
            StoreErrorKind::Unavailable,
            format!("the {name} is longer than this keyring allows ({limit})"),
        ),
        E::Invalid(name, reason) => (
            StoreErrorKind::Unavailable,
            format!("the keyring refuses the {name}: {reason}"),
        ),
        E::NotSupportedByStore(issue) => (StoreErrorKind::Unavailable, format!("not supported: {issue}")),
        _ => (
            StoreErrorKind::Unavailable,
            "unexpected keyring error".to_string(),
        ),
    };
    Mapped { kind, detail }
}
