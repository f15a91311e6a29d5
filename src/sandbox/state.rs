//! Shared server state, owned by the server task and by the `Sandbox` handle.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use super::auth::AuthCache;
use super::clock::Clock;
use super::faults::{FaultRule, Route};
use super::store::Store;

pub(crate) struct AppState {
    pub store: Store,
    pub clock: Clock,
    pub auth_cache: AuthCache,
    pub public_project_id: i64,
    /// The sandbox's own origin, served as the author's `api_url`.
    pub url: String,
    faults: RwLock<Vec<FaultRule>>,
    /// Requests seen per route (unknown paths count as `Any`), faulted or not: lets tests
    /// prove which calls a client repeats.
    hits: Mutex<HashMap<Route, u64>>,
}

impl AppState {
    pub(crate) fn new(
        store: Store,
        faults: Vec<FaultRule>,
        auth_cache: Duration,
        public_project_id: i64,
        url: String,
    ) -> Self {
        AppState {
            store,
            clock: Clock::default(),
            auth_cache: AuthCache::new(auth_cache),
            public_project_id,
            url,
            faults: RwLock::new(faults),
            hits: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn faults(&self) -> Vec<FaultRule> {
        self.faults
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub(crate) fn set_faults(&self, faults: Vec<FaultRule>) {
        *self
            .faults
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = faults;
    }

    pub(crate) fn count_hit(&self, route: Route) {
        *self
            .hits
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(route)
            .or_default() += 1;
    }

    pub(crate) fn hits(&self) -> HashMap<Route, u64> {
        self.hits
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}
