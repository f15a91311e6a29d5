//! The errors every operation can end in, each with a stable kind for scripts and plugins.

use crate::api::ApiError;
use crate::domain::TokenSummary;
use serde::Serialize;
use std::fmt;

/// What went wrong, as a stable word that scripts and plugins match on (`data.kind` in JSON-RPC,
/// `error.kind` in `--json` output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The server refused the credential (403 `Access Denied`, 401).
    CredentialRejected,
    /// No credential was given.
    CredentialMissing,
    /// No such token (the server answers 400 `token with uid ... not found`).
    NotFound,
    /// A token with that name already exists.
    NameTaken,
    /// Several tokens share the name; pick one by uuid.
    AmbiguousName,
    /// The request's content was refused, by this tool or by the server.
    InvalidInput,
    /// The server failed (5xx).
    ServerError,
    /// No answer: DNS, connection refused, timeout.
    Unreachable,
    /// An answer that is not the ELITEA API: HTML from a proxy, truncated JSON, a redirect.
    Protocol,
    /// The token's full value is not kept on this machine (it was made elsewhere).
    ValueNotStored,
    /// No secret store works, or it refused.
    KeyringUnavailable,
    /// The user did not confirm.
    Aborted,
    /// A local file or the embedded sandbox failed.
    Local,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::CredentialRejected => "credential_rejected",
            ErrorKind::CredentialMissing => "credential_missing",
            ErrorKind::NotFound => "not_found",
            ErrorKind::NameTaken => "name_taken",
            ErrorKind::AmbiguousName => "ambiguous_name",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::ServerError => "server_error",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Protocol => "protocol",
            ErrorKind::ValueNotStored => "value_not_stored",
            ErrorKind::KeyringUnavailable => "keyring_unavailable",
            ErrorKind::Aborted => "aborted",
            ErrorKind::Local => "local",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed operation, with a message a person can act on.
#[derive(Debug, Clone, thiserror::Error, Serialize)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// For `ambiguous_name`: the tokens that share the name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<TokenSummary>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            candidates: Vec::new(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// Adds what it means for the operation: `"<what>: <cause>"`.
    pub fn context(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl From<ApiError> for Error {
    fn from(error: ApiError) -> Self {
        Error::new(error.kind, error.message)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
