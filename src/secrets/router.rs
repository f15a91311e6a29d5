//! [`Secrets`]: the store the tool uses, chosen once per run, with the index that remembers which
//! store holds each secret.

use super::index::Index;
use super::{
    FileStore, KeyringStore, KeyutilsStore, MemoryStore, STORE_ENV, SecretKey, SecretStore, StoreChoice,
    StoreError, StoreErrorKind, StoreKind,
};
use crate::domain::Secret;
use crate::paths::Paths;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long `auto` gives each store to pass its test write.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The server name of the throwaway secret a probe writes; `.invalid` can never be a real host.
const PROBE_SERVER: &str = "probe.elitea-tokens.invalid";

/// How one store did in `auto`'s probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub kind: StoreKind,
    pub result: Result<(), StoreError>,
    pub took: Duration,
}

type Opener = Box<dyn FnOnce() -> Result<Box<dyn SecretStore>, StoreError> + Send>;

struct Candidate {
    kind: StoreKind,
    open: Opener,
    /// Open it even when an earlier store won the probe, so secrets it holds stay reachable.
    keep_untried: bool,
}

/// The secret store the tool uses: new secrets go to the primary store, and each secret is found
/// again in the store the index says holds it. See the module docs.
pub struct Secrets {
    primary: Box<dyn SecretStore>,
    others: Vec<Box<dyn SecretStore>>,
    /// `None` for `memory`: its secrets die with the process, so recording them would only
    /// mislead later runs.
    index: Option<Index>,
    probes: Vec<ProbeOutcome>,
    choice: Option<StoreChoice>,
}

impl Secrets {
    /// Opens the store `choice` names, with the index in `paths.state_dir`.
    ///
    /// `Only(kind)` opens exactly that store, without a test write, and fails as `Unavailable`
    /// if it cannot be opened. `Auto` probes keyring → keyutils (Linux) → file, each with a
    /// write, read and delete of a throwaway secret under [`PROBE_TIMEOUT`], and makes the
    /// first that works the primary store.
    pub fn open(choice: StoreChoice, paths: &Paths) -> Result<Secrets, StoreError> {
        let index = Index::new(paths.state_dir.join(Index::FILE_NAME));
        match choice {
            StoreChoice::Only(StoreKind::Memory) => Ok(Secrets {
                primary: Box::new(MemoryStore::new()),
                others: Vec::new(),
                index: None,
                probes: Vec::new(),
                choice: Some(choice),
            }),
            StoreChoice::Only(kind) => {
                let started = Instant::now();
                let primary = open_kind(kind, paths).map_err(|e| {
                    StoreError::unavailable(format!(
                        "{STORE_ENV}={kind} asks for the {}, which does not work here: {}",
                        kind.describe(),
                        e.message
                    ))
                })?;
                let took_ms = started.elapsed().as_millis();
                tracing::debug!(store = %kind, took_ms, "secret store chosen by {STORE_ENV}");
                Ok(Secrets {
                    primary,
                    others: Vec::new(),
                    index: Some(index),
                    probes: Vec::new(),
                    choice: Some(choice),
                })
            }
            StoreChoice::Auto => {
                let mut candidates = vec![candidate(StoreKind::Keyring, paths, true)];
                if cfg!(target_os = "linux") {
                    candidates.push(candidate(StoreKind::Keyutils, paths, true));
                }
                // Opening the file store warns loudly: only do it when it may hold secrets. A
                // broken index is reported by the first get or set, not here.
                let file_in_use =
                    FileStore::location(paths).exists() || index.mentions(StoreKind::File).unwrap_or(false);
                candidates.push(candidate(StoreKind::File, paths, file_in_use));
                let mut secrets = Secrets::probe_candidates(candidates, Some(index), PROBE_TIMEOUT)?;
                secrets.choice = Some(choice);
                Ok(secrets)
            }
        }
    }

    /// `auto` over the given stores, in order, for tests: a keyring stand-in that fails or
    /// stalls, then a file store.
    pub fn auto(
        candidates: Vec<Box<dyn SecretStore>>,
        index_path: PathBuf,
        probe_timeout: Duration,
    ) -> Result<Secrets, StoreError> {
        let candidates = candidates
            .into_iter()
            .map(|store| Candidate {
                kind: store.kind(),
                open: Box::new(move || Ok(store)),
                keep_untried: true,
            })
            .collect();
        let mut secrets = Secrets::probe_candidates(candidates, Some(Index::new(index_path)), probe_timeout)?;
        secrets.choice = Some(StoreChoice::Auto);
        Ok(secrets)
    }

    /// Fixed stores, no probe: new secrets go to `primary`, and the index routes to `others`.
    pub fn with_stores(
        primary: Box<dyn SecretStore>,
        others: Vec<Box<dyn SecretStore>>,
        index_path: PathBuf,
    ) -> Secrets {
        Secrets {
            primary,
            others,
            index: Some(Index::new(index_path)),
            probes: Vec::new(),
            choice: None,
        }
    }

    /// Where new secrets go.
    pub fn primary(&self) -> StoreKind {
        self.primary.kind()
    }

    /// True when new secrets go to the plain file: no keyring worked (or the user chose it).
    pub fn is_fallback(&self) -> bool {
        self.primary() == StoreKind::File
    }

    /// The stores open in this run, primary first.
    pub fn stores(&self) -> Vec<StoreKind> {
        self.all().map(|s| s.kind()).collect()
    }

    /// What `auto` found, store by store, in probe order; empty for an explicit choice.
    pub fn probes(&self) -> &[ProbeOutcome] {
        &self.probes
    }

    /// The index file, if this run keeps one.
    pub fn index_path(&self) -> Option<&Path> {
        self.index.as_ref().map(Index::path)
    }

    fn probe_candidates(
        candidates: Vec<Candidate>,
        index: Option<Index>,
        timeout: Duration,
    ) -> Result<Secrets, StoreError> {
        let started = Instant::now();
        let mut probes = Vec::new();
        let mut primary: Option<Box<dyn SecretStore>> = None;
        let mut others = Vec::new();
        for c in candidates {
            if primary.is_none() {
                let (store, outcome) = probe(c.kind, c.open, timeout);
                let took_ms = outcome.took.as_millis();
                match &outcome.result {
                    Ok(()) => tracing::debug!(store = %c.kind, took_ms, "secret store probe: works"),
                    Err(e) => {
                        tracing::debug!(store = %c.kind, took_ms, error = %e, "secret store probe: fails")
                    }
                }
                probes.push(outcome);
                primary = store;
            } else if c.keep_untried {
                match (c.open)() {
                    Ok(store) => others.push(store),
                    Err(e) => tracing::debug!(store = %c.kind, error = %e, "secret store not opened"),
                }
            }
        }
        let Some(primary) = primary else {
            return Err(StoreError::unavailable(format!(
                "no secret store works here: {}",
                failures(&probes)
            )));
        };
        tracing::debug!(
            store = %primary.kind(),
            took_ms = started.elapsed().as_millis(),
            "secret store chosen by probing"
        );
        if primary.kind() == StoreKind::File {
            tracing::warn!(
                "no keyring works here ({}); new secrets go to a plain file",
                failures(&probes)
            );
        }
        Ok(Secrets {
            primary,
            others,
            index,
            probes,
            choice: None,
        })
    }

    fn all(&self) -> impl Iterator<Item = &dyn SecretStore> {
        std::iter::once(self.primary.as_ref()).chain(self.others.iter().map(|s| s.as_ref()))
    }

    fn store_of(&self, kind: StoreKind) -> Option<&dyn SecretStore> {
        self.all().find(|s| s.kind() == kind)
    }

    /// The error for a secret the index places in a store this run does not use.
    fn not_in_use(&self, key: &SecretKey, kind: StoreKind) -> StoreError {
        let probe = self
            .probes
            .iter()
            .find(|p| p.kind == kind)
            .and_then(|p| p.result.as_ref().err());
        let (error_kind, why) = match (self.choice, probe) {
            (Some(StoreChoice::Only(chosen)), _) => (
                StoreErrorKind::Unavailable,
                format!("{STORE_ENV}={chosen} uses only the {chosen} store"),
            ),
            (_, Some(e)) => (e.kind, e.message.clone()),
            _ => (
                StoreErrorKind::Unavailable,
                "it is not open in this run".to_string(),
            ),
        };
        StoreError::new(
            error_kind,
            format!("the secret {key} is kept in the {kind} store, which is not available: {why}"),
        )
    }

    /// A secret the index does not know: the primary store, then the others. Only the
    /// primary's errors count; the others are a best-effort search.
    fn search(&self, key: &SecretKey) -> Result<Option<Secret>, StoreError> {
        if let Some(value) = self.primary.get(key)? {
            return Ok(Some(value));
        }
        for store in &self.others {
            match store.get(key) {
                Ok(Some(value)) => return Ok(Some(value)),
                Ok(None) => {}
                Err(e) => tracing::debug!(store = %store.kind(), error = %e, "secret search skipped a store"),
            }
        }
        Ok(None)
    }
}

impl SecretStore for Secrets {
    fn kind(&self) -> StoreKind {
        self.primary()
    }

    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, StoreError> {
        let Some(index) = &self.index else {
            return self.primary.get(key);
        };
        match index.lookup(key)? {
            Some(kind) => match self.store_of(kind) {
                Some(store) => store.get(key),
                None => Err(self.not_in_use(key, kind)),
            },
            None => self.search(key),
        }
    }

    fn holds(&self, key: &SecretKey) -> Result<bool, StoreError> {
        match &self.index {
            Some(index) if index.lookup(key)?.is_some() => Ok(true),
            _ => Ok(self.get(key)?.is_some()),
        }
    }

    fn holds_each(&self, keys: &[SecretKey]) -> Result<Vec<bool>, StoreError> {
        let Some(index) = &self.index else {
            return keys.iter().map(|key| self.holds(key)).collect();
        };
        // One read of the index for them all; only secrets it does not know are searched for.
        let recorded = index.read()?;
        keys.iter()
            .map(|key| Ok(recorded.contains_key(&key.account()) || self.get(key)?.is_some()))
            .collect()
    }

    fn set(&self, key: &SecretKey, value: &Secret) -> Result<(), StoreError> {
        self.primary.set(key, value)?;
        let Some(index) = &self.index else {
            return Ok(());
        };
        // The value is written before the index points at it: a failure in between leaves the
        // index naming the old copy, never a store without one.
        let here = self.primary.kind();
        let before = index.record(key, here)?;
        if let Some(old) = before.filter(|old| *old != here) {
            // The secret moved (a keyring works again): drop the copy left behind.
            match self.store_of(old) {
                Some(store) => {
                    if let Err(e) = store.delete(key) {
                        let error = e.to_string();
                        tracing::warn!(%key, store = %old, error, "an old copy of the secret remains");
                    }
                }
                None => tracing::warn!(key = %key, store = %old, "an old copy of the secret may remain"),
            }
        }
        Ok(())
    }

    fn delete(&self, key: &SecretKey) -> Result<bool, StoreError> {
        let Some(index) = &self.index else {
            return self.primary.delete(key);
        };
        match index.lookup(key)? {
            Some(kind) => {
                let store = self.store_of(kind).ok_or_else(|| self.not_in_use(key, kind))?;
                let deleted = store.delete(key)?;
                index.forget(key)?;
                Ok(deleted)
            }
            None => {
                let mut deleted = self.primary.delete(key)?;
                for store in &self.others {
                    match store.delete(key) {
                        Ok(d) => deleted |= d,
                        Err(e) => {
                            tracing::debug!(store = %store.kind(), error = %e, "delete skipped a store")
                        }
                    }
                }
                Ok(deleted)
            }
        }
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("stores", &self.stores())
            .field("index", &self.index_path())
            .field("probes", &self.probes)
            .finish()
    }
}

/// What the index in `paths.state_dir` says of each key, from one read and without opening any
/// store: `None` when there is no index to ask; per key, `None` when it records no such secret,
/// `Some(kind)` when `kind` holds it.
pub fn indexed_stores(
    paths: &Paths,
    keys: &[SecretKey],
) -> Result<Option<Vec<Option<StoreKind>>>, StoreError> {
    let path = paths.state_dir.join(Index::FILE_NAME);
    if !path.exists() {
        return Ok(None);
    }
    let index = Index::new(path).read()?;
    Ok(Some(
        keys.iter()
            .map(|key| index.get(&key.account()).copied())
            .collect(),
    ))
}

/// Opens one store as it is, without a test write: for reading a secret the index places
/// there, so a start-up reads its credential without probing every store.
pub fn open_kind(kind: StoreKind, paths: &Paths) -> Result<Box<dyn SecretStore>, StoreError> {
    Ok(match kind {
        StoreKind::Keyring => Box::new(KeyringStore::open()?),
        StoreKind::Keyutils => Box::new(KeyutilsStore::open()?),
        StoreKind::File => Box::new(FileStore::open(paths)?),
        StoreKind::Memory => Box::new(MemoryStore::new()),
    })
}

fn candidate(kind: StoreKind, paths: &Paths, keep_untried: bool) -> Candidate {
    let paths = paths.clone();
    Candidate {
        kind,
        open: Box::new(move || open_kind(kind, &paths)),
        keep_untried,
    }
}

fn failures(probes: &[ProbeOutcome]) -> String {
    probes
        .iter()
        .filter_map(|p| {
            p.result
                .as_ref()
                .err()
                .map(|e| format!("{}: {}", p.kind, e.message))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Opens the store and runs a throwaway write, read and delete on a helper thread, giving up
/// after `timeout`. A store that does not answer is left behind with its thread.
fn probe(kind: StoreKind, open: Opener, timeout: Duration) -> (Option<Box<dyn SecretStore>>, ProbeOutcome) {
    let started = Instant::now();
    let (tx, rx) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("elitea-secret-probe".into())
        .spawn(move || {
            let result = open().and_then(|store| round_trip(store.as_ref()).map(|()| store));
            let _ = tx.send(result);
        });
    let result = match spawned {
        Err(e) => Err(StoreError::unavailable(format!(
            "{kind}: cannot start a probe thread: {e}"
        ))),
        Ok(_) => match rx.recv_timeout(timeout) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(StoreError::new(
                StoreErrorKind::Timeout,
                format!(
                    "{kind}: no answer within {}s (a locked keyring waiting on an unlock prompt?)",
                    timeout.as_secs_f32()
                ),
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(StoreError::unavailable(format!(
                "{kind}: the probe failed without an answer"
            ))),
        },
    };
    let took = started.elapsed();
    match result {
        Ok(store) => (
            Some(store),
            ProbeOutcome {
                kind,
                result: Ok(()),
                took,
            },
        ),
        Err(e) => (
            None,
            ProbeOutcome {
                kind,
                result: Err(e),
                took,
            },
        ),
    }
}

fn round_trip(store: &dyn SecretStore) -> Result<(), StoreError> {
    let key = SecretKey::token(PROBE_SERVER, Uuid::new_v4());
    let value = Secret::new(format!("probe-{}", Uuid::new_v4().simple()));
    if let Err(e) = store.set(&key, &value) {
        // A store can fail half way (keyutils adds the key, then fails to link it): tidy up.
        let _ = store.delete(&key);
        return Err(e);
    }
    let read = store.get(&key);
    // Delete even when the read failed, so no throwaway is left behind.
    let deleted = store.delete(&key);
    match read? {
        Some(found) if found == value => {}
        Some(_) => {
            return Err(StoreError::corrupt(
                "a test value read back different from what was written",
            ));
        }
        None => {
            return Err(StoreError::unavailable(
                "a test value was not found right after it was written",
            ));
        }
    }
    if !deleted? {
        return Err(StoreError::unavailable(
            "a test value was not found when deleting it",
        ));
    }
    Ok(())
}
