//! Bearer authentication, answered like the real backend: 403 `text/plain` `Access Denied`
//! for anything wrong, and a short-lived cache of successes (the real backend keeps one for
//! about 60 s, so a deleted or expired token keeps working that long; tests rely on it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::answers::Refusal;
use super::data::{User, user_by_id};
use super::jwt;
use super::state::AppState;

/// The authenticated user, put into request extensions for the handlers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller(pub User);

/// Past this many entries, expired ones are swept on insert so the map cannot grow forever.
const SWEEP_AT: usize = 4096;

pub(crate) struct AuthCache {
    ttl: chrono::Duration,
    /// token uuid -> (user id, valid until in sandbox time). Keyed by uuid, never the secret.
    entries: Mutex<HashMap<String, (i64, DateTime<Utc>)>>,
}

impl AuthCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        AuthCache {
            ttl: chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn enabled(&self) -> bool {
        self.ttl > chrono::Duration::zero()
    }

    fn get(&self, uuid: &str, now: DateTime<Utc>) -> Option<i64> {
        if !self.enabled() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(uuid)
            .filter(|(_, until)| now < *until)
            .map(|(user_id, _)| *user_id)
    }

    fn put(&self, uuid: String, user_id: i64, now: DateTime<Utc>) {
        if !self.enabled() {
            return;
        }
        let until = now
            .checked_add_signed(self.ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= SWEEP_AT {
            entries.retain(|_, (_, until)| now < *until);
        }
        entries.insert(uuid, (user_id, until));
    }
}

/// Middleware on the ELITEA routes.
pub(crate) async fn require(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    match authenticate(&state, req.headers()) {
        Ok(user) => {
            req.extensions_mut().insert(Caller(user));
            next.run(req).await
        }
        Err(refusal) => refusal.into_response(),
    }
}

fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<User, Refusal> {
    let token = bearer(headers).ok_or(Refusal::AccessDenied)?;
    let uuid = jwt::verify(state.store.key(), token).ok_or(Refusal::AccessDenied)?;
    let now = state.clock.now();
    if let Some(user_id) = state.auth_cache.get(&uuid, now) {
        return user_by_id(user_id).ok_or(Refusal::AccessDenied);
    }
    let row = state
        .store
        .get(&uuid)
        .map_err(|e| Refusal::internal("auth lookup", &e))?
        .ok_or(Refusal::AccessDenied)?;
    if row.expired_at(now) {
        return Err(Refusal::AccessDenied);
    }
    let user = user_by_id(row.user_id).ok_or(Refusal::AccessDenied)?;
    state.auth_cache.put(uuid, row.user_id, now);
    Ok(user)
}

/// The token from `Authorization: Bearer <token>`; the scheme word is case-insensitive.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(char::is_whitespace)?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
