//! `elitea-tokens serve`: the daemon editors start. LSP-style JSON-RPC over stdio
//! (tower-lsp-server): every operation as an `elitea/*` request, expiry reminders while an IDE
//! is open, and file watching. The protocol is in `docs/protocol.md`.

mod actor;
mod backend;
pub mod ext;
mod prefetch;
mod scheduler;
mod stdio;
mod transport;
mod watch;

pub use backend::{APPLICATION_ERROR, Backend};
pub use prefetch::Prefetch;

use crate::clock::SystemClock;
use crate::domain::Secret;
use crate::session::Connection;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tower_lsp_server::{ClientSocket, LspService};

/// The connection a daemon starts from: `ELITEA_SERVER` and `ELITEA_TOKEN` from its
/// environment, and the wall clock, whose timers fire at the instant even across a suspend
/// (tests start from a `TokioClock` instead, to pause time).
pub fn default_connection() -> Connection {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    Connection {
        server: env("ELITEA_SERVER"),
        token: env("ELITEA_TOKEN").map(|t| Secret::new(t.trim())),
        clock: Arc::new(SystemClock),
        ..Connection::default()
    }
}

/// The service with every `elitea/*` method registered; `initialize` starts from `defaults`
/// and takes the list `prefetch` fetched for them when it asks for the same connection;
/// `initialize_answered` turns true once the `initialize` answer is written.
fn service(
    defaults: Connection,
    prefetch: Option<Prefetch>,
    initialize_answered: tokio::sync::watch::Receiver<bool>,
) -> (LspService<Backend>, ClientSocket) {
    LspService::build(move |client| Backend::new(client, defaults, initialize_answered, prefetch))
        .custom_method(ext::STATUS, Backend::status)
        .custom_method(ext::LOGIN, Backend::login)
        .custom_method(ext::LIST_TOKENS, Backend::list_tokens)
        .custom_method(ext::CREATE_TOKEN, Backend::create_token)
        .custom_method(ext::PREVIEW_SETTINGS, Backend::preview_settings)
        .custom_method(ext::APPLY_SETTINGS, Backend::apply_settings)
        .custom_method(ext::DELETE_TOKEN, Backend::delete_token)
        .custom_method(ext::ROTATE_TOKEN, Backend::rotate_token)
        .custom_method(ext::SNOOZE_REMINDER, Backend::snooze_reminder)
        .finish()
}

/// Serves the editor on standard input and output until it exits or closes its input,
/// starting from `defaults` (see [`default_connection`]) and the list `prefetch` fetched for them.
pub async fn serve_stdio(defaults: Connection, prefetch: Option<Prefetch>) {
    let (input, output, restore) = stdio::open();
    serve_prefetched(defaults, prefetch, input, output).await;
    restore.apply();
}

/// Serves one client over a byte stream pair until it exits or closes its input.
pub async fn serve<I, O>(input: I, output: O)
where
    I: AsyncRead + Unpin + Send + 'static,
    O: AsyncWrite + Unpin,
{
    serve_with(default_connection(), input, output).await;
}

/// As [`serve_with`], with the list [`Prefetch::start`] began to fetch for `defaults`.
pub async fn serve_prefetched<I, O>(defaults: Connection, prefetch: Option<Prefetch>, input: I, output: O)
where
    I: AsyncRead + Unpin + Send + 'static,
    O: AsyncWrite + Unpin,
{
    let (answered, initialize_answered) = tokio::sync::watch::channel(false);
    let (service, socket) = service(defaults, prefetch, initialize_answered);
    transport::run(input, output, service, socket, answered).await;
}

/// As [`serve`], starting from `defaults` (tests give paths, a store and a clock).
pub async fn serve_with<I, O>(defaults: Connection, input: I, output: O)
where
    I: AsyncRead + Unpin + Send + 'static,
    O: AsyncWrite + Unpin,
{
    serve_prefetched(defaults, None, input, output).await;
}
