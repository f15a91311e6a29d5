//! In-memory stores for tests: one that keeps secrets, and one that fails or stalls on demand.

use super::{SecretKey, SecretStore, StoreError, StoreErrorKind, StoreKind};
use crate::domain::Secret;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Secrets in this process's memory. Clones share the same secrets, so a test can keep one
/// clone to look inside after handing the other to [`super::Secrets`].
#[derive(Clone)]
pub struct MemoryStore {
    kind: StoreKind,
    map: Arc<Mutex<HashMap<SecretKey, Secret>>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::with_kind(StoreKind::Memory)
    }

    /// A memory store that reports itself as `kind`: a stand-in for a keyring or a file in
    /// routing tests.
    pub fn with_kind(kind: StoreKind) -> MemoryStore {
        MemoryStore {
            kind,
            map: Arc::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    pub fn contains(&self, key: &SecretKey) -> bool {
        self.lock().contains_key(key)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SecretKey, Secret>> {
        // A panic elsewhere cannot leave the map half-changed: every change is one call.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("kind", &self.kind)
            .field("len", &self.len())
            .finish()
    }
}

impl SecretStore for MemoryStore {
    fn kind(&self) -> StoreKind {
        self.kind
    }

    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, StoreError> {
        Ok(self.lock().get(key).cloned())
    }

    fn set(&self, key: &SecretKey, value: &Secret) -> Result<(), StoreError> {
        self.lock().insert(key.clone(), value.clone());
        Ok(())
    }

    fn delete(&self, key: &SecretKey) -> Result<bool, StoreError> {
        Ok(self.lock().remove(key).is_some())
    }
}

/// A store operation, for [`FailingStore`] rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Get,
    Set,
    Delete,
}

impl Op {
    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Get => "get",
            Op::Set => "set",
            Op::Delete => "delete",
        })
    }
}

/// Which calls a [`FailingStore`] rule hits. Calls are counted from 1, per operation when the
/// rule names one, over all operations otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    Nth(usize),
    FromNth(usize),
}

impl When {
    fn hits(self, n: usize) -> bool {
        match self {
            When::Always => true,
            When::Nth(k) => n == k,
            When::FromNth(k) => n >= k,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Rule {
    op: Option<Op>,
    when: When,
    error: StoreErrorKind,
}

#[derive(Default)]
struct Counters {
    per_op: [usize; 3],
    total: usize,
}

/// Wraps a store and makes chosen calls fail, or every call stall first: the "failing store"
/// that rotation and fallback tests need. Clones share rules and call counts.
///
/// ```
/// use elitea_tokens::secrets::{FailingStore, MemoryStore, Op, StoreErrorKind, StoreKind, When};
/// // A keyring that is never there.
/// let keyring = FailingStore::unavailable(StoreKind::Keyring);
/// // A store whose second write fails.
/// let flaky = FailingStore::wrap(MemoryStore::new()).fail(Some(Op::Set), When::Nth(2), StoreErrorKind::Io);
/// ```
#[derive(Clone)]
pub struct FailingStore {
    inner: Arc<dyn SecretStore>,
    rules: Vec<Rule>,
    delay: Option<Duration>,
    counters: Arc<Mutex<Counters>>,
}

impl FailingStore {
    /// Passes every call to `inner` until rules are added.
    pub fn wrap(inner: impl SecretStore + 'static) -> FailingStore {
        FailingStore {
            inner: Arc::new(inner),
            rules: Vec::new(),
            delay: None,
            counters: Arc::default(),
        }
    }

    /// A store of `kind` whose every call fails as `Unavailable`.
    pub fn unavailable(kind: StoreKind) -> FailingStore {
        FailingStore::wrap(MemoryStore::with_kind(kind)).fail(None, When::Always, StoreErrorKind::Unavailable)
    }

    /// A store of `kind` whose every call first waits `delay`, like a keyring showing an unlock
    /// prompt nobody answers.
    pub fn blocking(kind: StoreKind, delay: Duration) -> FailingStore {
        FailingStore::wrap(MemoryStore::with_kind(kind)).stall(delay)
    }

    /// Makes the calls that `op` (or any operation, for `None`) and `when` pick fail with `error`.
    pub fn fail(mut self, op: Option<Op>, when: When, error: StoreErrorKind) -> FailingStore {
        self.rules.push(Rule { op, when, error });
        self
    }

    /// Makes every call wait `delay` before doing anything.
    pub fn stall(mut self, delay: Duration) -> FailingStore {
        self.delay = Some(delay);
        self
    }

    /// How many calls of `op` were made (failed ones included).
    pub fn calls(&self, op: Op) -> usize {
        self.lock().per_op[op.index()]
    }

    fn lock(&self) -> MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self, op: Op) -> Result<(), StoreError> {
        if let Some(delay) = self.delay {
            std::thread::sleep(delay);
        }
        let (nth_of_op, nth) = {
            let mut c = self.lock();
            c.per_op[op.index()] += 1;
            c.total += 1;
            (c.per_op[op.index()], c.total)
        };
        for rule in &self.rules {
            let n = match rule.op {
                Some(rule_op) if rule_op != op => continue,
                Some(_) => nth_of_op,
                None => nth,
            };
            if rule.when.hits(n) {
                return Err(StoreError::new(
                    rule.error,
                    format!(
                        "{} store (test stand-in): injected {:?} failure on {op} call {n}",
                        self.inner.kind(),
                        rule.error
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl SecretStore for FailingStore {
    fn kind(&self) -> StoreKind {
        self.inner.kind()
    }

    fn get(&self, key: &SecretKey) -> Result<Option<Secret>, StoreError> {
        self.check(Op::Get)?;
        self.inner.get(key)
    }

    fn set(&self, key: &SecretKey, value: &Secret) -> Result<(), StoreError> {
        self.check(Op::Set)?;
        self.inner.set(key, value)
    }

    fn delete(&self, key: &SecretKey) -> Result<bool, StoreError> {
        self.check(Op::Delete)?;
        self.inner.delete(key)
    }
}
