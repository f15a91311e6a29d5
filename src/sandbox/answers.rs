//! The backend's non-success answers, byte for byte: shared by auth, routes and control.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// A refusal, small enough to travel in a `Result` and turned into a response at the edge.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// 403 `text/plain` `Access Denied`: missing, malformed, unknown or expired credential.
    AccessDenied,
    /// 403 with the JSON body `null`: somebody else's token or project.
    NotYours,
    /// 400 `{"error": message}`.
    BadRequest(String),
    /// Werkzeug's 404 page.
    NotFound,
    /// Werkzeug's 500 page; the cause was logged where it happened.
    Internal,
}

impl Refusal {
    /// A real failure of the sandbox itself (SQLite): logged, answered like the backend would.
    pub(crate) fn internal(context: &str, error: &dyn std::error::Error) -> Refusal {
        tracing::error!("sandbox {context} failed: {error}");
        Refusal::Internal
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::AccessDenied => (
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "text/plain")],
                "Access Denied",
            )
                .into_response(),
            Refusal::NotYours => (StatusCode::FORBIDDEN, Json(Value::Null)).into_response(),
            Refusal::BadRequest(message) => (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({ "error": message })),
            )
                .into_response(),
            Refusal::NotFound => html(StatusCode::NOT_FOUND, NOT_FOUND_PAGE),
            Refusal::Internal => html(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR_PAGE),
        }
    }
}

fn html(status: StatusCode, page: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

const NOT_FOUND_PAGE: &str = "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n\
<h1>Not Found</h1>\n<p>The requested URL was not found on the server. If you entered the URL \
manually please check your spelling and try again.</p>\n";

const INTERNAL_ERROR_PAGE: &str = "<!doctype html>\n<html lang=en>\n\
<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n<p>The server \
encountered an internal error and was unable to complete your request. Either the server is \
overloaded or there is an error in the application.</p>\n";
