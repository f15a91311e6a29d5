//! The ELITEA endpoints (`/api/v2/...`), the router that stacks auth, faults and request
//! logging around them, and the error answers shared by the other modules.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::DateTime;
use serde::Serialize;

use super::answers::Refusal;
use super::auth::{self, Caller};
use super::control;
use super::create::{self, Rejection};
use super::data;
use super::faults::{self, ConnectionClosed};
use super::state::AppState;
use super::store::TokenRow;

type Shared = Arc<AppState>;

pub(crate) fn router(state: Shared) -> Router {
    let mut api: Router<Shared> = Router::new();
    // Every path answers with and without the trailing slash, like the real backend.
    for slash in ["", "/"] {
        api = api
            .route(
                &format!("/api/v2/auth/token{slash}"),
                get(list_tokens).post(create_token),
            )
            .route(
                &format!("/api/v2/auth/token/{{uuid}}{slash}"),
                get(get_token).delete(delete_token),
            )
            .route(&format!("/api/v2/social/author{slash}"), get(author))
            .route(
                &format!("/api/v2/configurations/models/{{project_id}}{slash}"),
                get(models),
            );
    }
    api.route_layer(from_fn_with_state(state.clone(), auth::require))
        .fallback(not_found)
        // Faults wrap auth too: a proxy in front of the backend fails before it checks anything.
        .layer(from_fn_with_state(state.clone(), faults::inject))
        // Added after the fault layer, so the control API is never subject to faults.
        .merge(control::router())
        .layer(from_fn(log_request))
        .with_state(state)
}

/// One line per request. Only method, path, status and time: never headers (the
/// Authorization header is a credential) and never bodies (create returns a secret).
async fn log_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = next.run(req).await;
    let latency_ms = format!("{:.1}", started.elapsed().as_secs_f64() * 1000.0);
    if response.extensions().get::<ConnectionClosed>().is_some() {
        tracing::info!(%method, %path, status = "closed", %latency_ms, "sandbox request");
    } else {
        let status = response.status().as_u16();
        tracing::info!(%method, %path, status, %latency_ms, "sandbox request");
    }
    response
}

/// The token object, keys in the order the Python backend's `jsonify` sorts them.
#[derive(Serialize)]
struct TokenJson<'a> {
    expires: Option<String>,
    id: i64,
    name: &'a str,
    token: String,
    user_id: i64,
    uuid: &'a str,
}

impl<'a> TokenJson<'a> {
    fn new(row: &'a TokenRow, full: bool) -> Self {
        let token = if full {
            row.token.clone()
        } else {
            // List and get only ever show "..." and the last 7 characters.
            let tail = row.token.len().saturating_sub(7);
            format!("...{}", row.token.get(tail..).unwrap_or_default())
        };
        TokenJson {
            expires: row.expires.and_then(rfc1123),
            id: row.id,
            name: &row.name,
            token,
            user_id: row.user_id,
            uuid: &row.uuid,
        }
    }
}

/// `Thu, 03 Sep 2026 17:50:43 GMT`, as Flask writes datetimes.
fn rfc1123(unix: i64) -> Option<String> {
    DateTime::from_timestamp(unix, 0).map(|at| at.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
}

async fn list_tokens(
    State(state): State<Shared>,
    Extension(Caller(user)): Extension<Caller>,
) -> Result<Response, Refusal> {
    let rows = state
        .store
        .list(user.id)
        .map_err(|e| Refusal::internal("list tokens", &e))?;
    let body: Vec<TokenJson<'_>> = rows.iter().map(|r| TokenJson::new(r, false)).collect();
    Ok(Json(body).into_response())
}

async fn get_token(
    State(state): State<Shared>,
    Extension(Caller(user)): Extension<Caller>,
    Path(uuid): Path<String>,
) -> Result<Response, Refusal> {
    let row = owned_token(&state, user.id, &uuid)?;
    Ok(Json(TokenJson::new(&row, false)).into_response())
}

async fn delete_token(
    State(state): State<Shared>,
    Extension(Caller(user)): Extension<Caller>,
    Path(uuid): Path<String>,
) -> Result<Response, Refusal> {
    owned_token(&state, user.id, &uuid)?;
    state
        .store
        .delete(&uuid)
        .map_err(|e| Refusal::internal("delete token", &e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The caller's token `uuid`, or the backend's answers: 400 unknown, 403 `null` not yours.
fn owned_token(state: &AppState, user_id: i64, uuid: &str) -> Result<TokenRow, Refusal> {
    match state.store.get(uuid) {
        Ok(Some(row)) if row.user_id == user_id => Ok(row),
        Ok(Some(_)) => Err(Refusal::NotYours),
        Ok(None) => Err(Refusal::BadRequest(format!("token with uid {uuid} not found"))),
        Err(e) => Err(Refusal::internal("get token", &e)),
    }
}

async fn create_token(
    State(state): State<Shared>,
    Extension(Caller(user)): Extension<Caller>,
    body: Bytes,
) -> Result<Response, Refusal> {
    let new = match create::parse(&body, state.clock.now()) {
        Ok(new) => new,
        Err(Rejection::Invalid(message)) => return Err(Refusal::BadRequest(message)),
        Err(Rejection::Crash(why)) => {
            // What makes the Python backend raise; not a sandbox problem, so debug only.
            tracing::debug!("answering 500 like the Python backend: {why}");
            return Err(Refusal::Internal);
        }
    };
    let row = state
        .store
        .insert(user.id, &new.name, new.expires)
        .map_err(|e| Refusal::internal("create token", &e))?;
    Ok(Json(TokenJson::new(&row, true)).into_response())
}

async fn author(State(state): State<Shared>, Extension(Caller(user)): Extension<Caller>) -> Response {
    Json(data::author(&user, &state.url, state.public_project_id)).into_response()
}

async fn models(
    State(state): State<Shared>,
    Extension(Caller(user)): Extension<Caller>,
    Path(project_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    // Flask's `<int:project_id>` converter: anything else is not a route at all.
    let project_id = project_id.parse::<i64>().map_err(|_| Refusal::NotFound)?;
    let include_shared = query
        .get("include_shared")
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
    // Not a member of that project: the same answer as another user's token.
    data::models(&user, project_id, include_shared, state.public_project_id)
        .map(|body| Json(body).into_response())
        .ok_or(Refusal::NotYours)
}

async fn not_found() -> Refusal {
    Refusal::NotFound
}
