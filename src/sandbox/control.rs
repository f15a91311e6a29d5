//! The control API under `/_sandbox/`: runtime knobs for tests that run the sandbox as a
//! subprocess. Not part of the ELITEA contract, never subject to faults, and unauthenticated
//! (the sandbox listens on loopback), so it must never be exposed beyond the local machine.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::answers::Refusal;
use super::data::{USERS, user_by_login};
use super::faults::FaultRule;
use super::state::AppState;

type Shared = Arc<AppState>;

/// Name of the tokens minted by `POST /_sandbox/credential`.
const CREDENTIAL_NAME: &str = "sandbox-credential";

pub(crate) fn router() -> Router<Shared> {
    let mut router = Router::new();
    for slash in ["", "/"] {
        router = router
            .route(&format!("/_sandbox/health{slash}"), get(health))
            .route(
                &format!("/_sandbox/faults{slash}"),
                get(get_faults).put(put_faults).delete(clear_faults),
            )
            .route(&format!("/_sandbox/hits{slash}"), get(hits))
            .route(&format!("/_sandbox/clock{slash}"), post(advance_clock))
            .route(&format!("/_sandbox/credential{slash}"), post(credential))
            .route(&format!("/_sandbox/seed{slash}"), post(seed));
    }
    router
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| Refusal::BadRequest(format!("invalid body: {e}")))
}

async fn health(State(state): State<Shared>) -> Response {
    Json(json!({
        "ok": true,
        "url": state.url,
        "now": state.clock.now().to_rfc3339(),
    }))
    .into_response()
}

async fn hits(State(state): State<Shared>) -> Response {
    let hits: std::collections::BTreeMap<String, u64> = state
        .hits()
        .into_iter()
        .map(|(route, n)| (route.to_string(), n))
        .collect();
    Json(hits).into_response()
}

async fn get_faults(State(state): State<Shared>) -> Response {
    Json(state.faults()).into_response()
}

/// Replaces the whole rule list: `[{"route":"create","latency_ms":0,"failure_rate":1.0,"failure":"html"}]`.
async fn put_faults(State(state): State<Shared>, body: Bytes) -> Result<Response, Refusal> {
    state.set_faults(parse::<Vec<FaultRule>>(&body)?);
    Ok(Json(state.faults()).into_response())
}

async fn clear_faults(State(state): State<Shared>) -> Response {
    state.set_faults(Vec::new());
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    advance_seconds: f64,
}

async fn advance_clock(State(state): State<Shared>, body: Bytes) -> Result<Response, Refusal> {
    let body: ClockBody = parse(&body)?;
    let ms = body.advance_seconds * 1000.0;
    if !ms.is_finite() || ms.abs() > 1e15 {
        return Err(Refusal::BadRequest("advance_seconds is out of range".into()));
    }
    state.clock.advance(chrono::Duration::milliseconds(ms as i64));
    Ok(Json(json!({
        "now": state.clock.now().to_rfc3339(),
        "offset_seconds": state.clock.offset().num_milliseconds() as f64 / 1000.0,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialBody {
    #[serde(default = "default_user")]
    user: String,
}

fn default_user() -> String {
    USERS[0].login.to_owned()
}

/// Mints a never-expiring token for a fixed user (`sandbox`, id 3, or `other`, id 4).
async fn credential(State(state): State<Shared>, body: Bytes) -> Result<Response, Refusal> {
    let body: CredentialBody = if body.is_empty() {
        CredentialBody { user: default_user() }
    } else {
        parse(&body)?
    };
    let Some(user) = user_by_login(&body.user) else {
        let known: Vec<&str> = USERS.iter().map(|u| u.login).collect();
        return Err(Refusal::BadRequest(format!(
            "unknown user {:?}; known users: {}",
            body.user,
            known.join(", ")
        )));
    };
    let row = state
        .store
        .insert(user.id, CREDENTIAL_NAME, None)
        .map_err(|e| Refusal::internal("mint credential", &e))?;
    Ok(Json(json!({
        "token": row.token,
        "uuid": row.uuid,
        "user_id": row.user_id,
    }))
    .into_response())
}

/// At most this many tokens per seeding call: enough for any benchmark, small enough that a
/// typo cannot fill the disk.
const MAX_SEED: usize = 200_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedBody {
    count: usize,
    #[serde(default = "default_user")]
    user: String,
    #[serde(default = "default_prefix")]
    prefix: String,
    /// Lifetimes in seconds, used in turn (`null`: never); empty means every token never expires.
    #[serde(default)]
    expires_in: Vec<Option<i64>>,
}

fn default_prefix() -> String {
    "seed".to_owned()
}

/// Creates `count` tokens at once (for pagination, scale and benchmarks), named
/// `<prefix>-00001`..., with lifetimes taken in turn from `expires_in`.
async fn seed(State(state): State<Shared>, body: Bytes) -> Result<Response, Refusal> {
    let body: SeedBody = parse(&body)?;
    if body.count == 0 || body.count > MAX_SEED {
        return Err(Refusal::BadRequest(format!("count must be from 1 to {MAX_SEED}")));
    }
    if body.prefix.is_empty() || body.prefix == super::data::RESERVED_NAME {
        return Err(Refusal::BadRequest(
            "prefix must be a non-empty, unreserved name".into(),
        ));
    }
    if body
        .expires_in
        .iter()
        .flatten()
        .any(|&secs| !(1..=100 * 365 * 86_400).contains(&secs))
    {
        return Err(Refusal::BadRequest(
            "each expires_in must be null or from 1 second to 100 years".into(),
        ));
    }
    let Some(user) = user_by_login(&body.user) else {
        return Err(Refusal::BadRequest(format!("unknown user {:?}", body.user)));
    };
    let width = body.count.to_string().len().max(5);
    let prefix = body.prefix.clone();
    let names = (1..=body.count).map(move |i| format!("{prefix}-{i:0width$}"));
    let lifetimes = body.expires_in;
    let created = state
        .store
        .insert_many(user.id, names, state.clock.now(), |i| {
            if lifetimes.is_empty() {
                None
            } else {
                lifetimes[i % lifetimes.len()]
            }
        })
        .map_err(|e| Refusal::internal("seed tokens", &e))?;
    Ok(Json(json!({ "created": created })).into_response())
}
