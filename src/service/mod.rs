//! The operations users name (list, create, delete, status, login, preview, apply, rotate),
//! shared by the command line and the daemon. This is the one place that sequences the server,
//! the clock, the secret store, the IDE files and the state.

mod login;
mod rotate;
mod settings;

pub use login::{LoginReport, logout};
pub use rotate::{RotateOptions, RotationOutcome, RotationReport, RotationStep};
pub use settings::{ApplyReport, ApplyRequest, Preview, PreviewRequest};

use crate::api::Client;
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::{Expiration, Query, Secret, StatusCounts, Token, TokenSummary, check_name};
use crate::error::{Error, ErrorKind, Result};
use crate::secrets::{SecretKey, SecretStore, StoreKind};
use crate::state::{State, TokenRecord};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use uuid::Uuid;

/// One page of the token table.
#[derive(Debug, Clone, Serialize)]
pub struct TokenList {
    pub server: String,
    pub page: usize,
    pub pages: usize,
    pub page_size: usize,
    pub total: usize,
    pub tokens: Vec<TokenSummary>,
}

/// A token just created, with its full value.
#[derive(Debug, Clone)]
pub struct Created {
    pub token: Token,
    pub value: Secret,
    /// Where the full value is kept, or why it could not be.
    pub stored_in: std::result::Result<StoreKind, String>,
}

/// A token deleted, and the workspaces that still hold it.
#[derive(Debug, Clone, Serialize)]
pub struct Deleted {
    pub token: TokenSummary,
    /// Workspaces this tool wrote the token to: their IDE files now hold a dead token.
    pub still_used_in: Vec<PathBuf>,
}

/// How a command names the token it acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Name(String),
    Uuid(Uuid),
}

/// Whether the credential works, as `status` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub server: String,
    /// Where secrets are kept: `keyring`, `keyutils`, `file` or `memory`.
    pub secret_store: StoreKind,
    /// True when no keyring works and secrets sit in an owner-only file.
    pub secret_store_is_fallback: bool,
    /// `ok`, or the error kind that stopped the check.
    pub credential: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Error>,
    pub tokens: Option<StatusCounts>,
}

/// What the service works with. Each part is an IO edge a test can replace.
pub struct Parts {
    pub client: Client,
    pub clock: Arc<dyn Clock>,
    pub secrets: Arc<dyn SecretStore>,
    pub state: State,
    pub config: Config,
}

/// The operations, over one server and one credential.
pub struct Service {
    client: Client,
    clock: Arc<dyn Clock>,
    secrets: Arc<dyn SecretStore>,
    state: State,
    config: Config,
}

impl Service {
    pub fn new(parts: Parts) -> Service {
        Service {
            client: parts.client,
            clock: parts.clock,
            secrets: parts.secrets,
            state: parts.state,
            config: parts.config,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn secret_store(&self) -> StoreKind {
        self.secrets.kind()
    }

    /// True when no keyring works and secrets sit in an owner-only file.
    pub fn secrets_are_fallback(&self) -> bool {
        self.secrets.kind() == StoreKind::File
    }

    fn token_key(&self, uuid: Uuid) -> SecretKey {
        SecretKey::Token {
            server: self.server().to_string(),
            uuid,
        }
    }

    /// Runs a secret-store call off the async runtime: keyring calls can block (an unlock
    /// prompt, a slow D-Bus).
    async fn with_secrets<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn SecretStore) -> std::result::Result<T, crate::secrets::StoreError> + Send + 'static,
    ) -> Result<T> {
        let secrets = Arc::clone(&self.secrets);
        tokio::task::spawn_blocking(move || call(secrets.as_ref()))
            .await
            .map_err(|e| Error::new(ErrorKind::Local, format!("the secret store call failed: {e}")))?
            .map_err(|e| Error::new(ErrorKind::KeyringUnavailable, e.to_string()))
    }

    /// The full value of a token, if this machine keeps it.
    pub async fn stored_value(&self, uuid: Uuid) -> Result<Option<Secret>> {
        let key = self.token_key(uuid);
        self.with_secrets(move |store| store.get(&key)).await
    }

    /// Whether this machine keeps each token's full value, as cheaply as the store can tell:
    /// from the secret index when it can answer, otherwise in one trip to the blocking pool.
    pub async fn are_stored(&self, uuids: &[Uuid]) -> Result<Vec<bool>> {
        let keys: Vec<SecretKey> = uuids.iter().map(|uuid| self.token_key(*uuid)).collect();
        // The index is a small local file, read in place like the state: the trip to the
        // blocking pool that a keyring call needs would cost more than the read.
        if let Some(held) = self.secrets.indexed_holds_each(&keys) {
            return Ok(held);
        }
        self.with_secrets(move |store| store.holds_each(&keys)).await
    }

    pub fn server(&self) -> &str {
        self.client.server().as_str()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Resolves when the service's clock reads `at`.
    pub fn sleep_until(&self, at: DateTime<Utc>) -> crate::clock::Sleep {
        self.clock.sleep_until(at)
    }

    /// The table as the Personal Tokens page would show it.
    pub async fn list(&self, query: &Query) -> Result<TokenList> {
        let tokens = self.client.list_tokens().await?;
        let now = self.now();
        let page = query.run(&tokens);
        Ok(TokenList {
            server: self.server().to_string(),
            page: page.page,
            pages: page.pages,
            page_size: query.page_size.get(),
            total: page.total,
            tokens: page.rows.iter().map(|t| t.summary(now)).collect(),
        })
    }

    /// Creates a token after checking what the backend does not: a valid, unused name and a
    /// period that makes sense.
    pub async fn create(&self, name: &str, expiration: Expiration) -> Result<Created> {
        check_name(name).map_err(Error::invalid)?;
        expiration
            .expires_at(self.now())
            .map_err(|e| Error::invalid(e.to_string()))?;
        let existing = self.client.list_tokens().await?;
        if let Some(taken) = existing.iter().find(|t| t.name == name) {
            return Err(Error::new(
                ErrorKind::NameTaken,
                format!(
                    "a token named `{name}` already exists (uuid {}, {}); choose another name, or delete it first",
                    taken.uuid,
                    taken.label(self.now()).to_lowercase()
                ),
            ));
        }
        let created = self.client.create_token(name, expiration).await?;
        tracing::info!(uuid = %created.token.uuid, "created token");
        let stored_in = self.keep(&created.token, &created.value, expiration).await;
        Ok(Created {
            token: created.token,
            value: created.value,
            stored_in,
        })
    }

    /// Keeps a new token's full value and remembers how it was made. The server never shows
    /// the value again, so this happens before anything else.
    async fn keep(
        &self,
        token: &Token,
        value: &Secret,
        expiration: Expiration,
    ) -> std::result::Result<StoreKind, String> {
        let key = self.token_key(token.uuid);
        let secret = value.clone();
        let stored = self
            .with_secrets(move |store| store.set(&key, &secret).map(|()| store.kind()))
            .await
            .map_err(|e| e.message);
        let record = TokenRecord {
            server: self.server().to_string(),
            uuid: token.uuid,
            name: token.name.to_string(),
            period: expiration.to_string(),
            created_at: self.now(),
            expires: token.expires,
        };
        if let Err(e) = self.state.update(|s| {
            s.forget_token(&record.server, record.uuid);
            s.tokens.push(record);
        }) {
            tracing::warn!("cannot record the new token: {e}");
        }
        stored
    }

    /// The one token a selector names. A name shared by several tokens (made elsewhere: the
    /// backend allows it) is refused with the candidates, so the caller can choose by uuid.
    pub async fn find(&self, selector: &Selector) -> Result<Token> {
        match selector {
            Selector::Uuid(uuid) => Ok(self.client.get_token(*uuid).await?),
            Selector::Name(name) => {
                let now = self.now();
                let mut matches: Vec<Token> = self
                    .client
                    .list_tokens()
                    .await?
                    .into_iter()
                    .filter(|t| t.name == name)
                    .collect();
                match matches.len() {
                    0 => Err(Error::new(
                        ErrorKind::NotFound,
                        format!(
                            "no token named `{name}` on {}; `list --search` shows what there is",
                            self.server()
                        ),
                    )),
                    1 => Ok(matches.remove(0)),
                    n => {
                        let mut error = Error::new(
                            ErrorKind::AmbiguousName,
                            format!("{n} tokens are named `{name}`; choose one with --uuid"),
                        );
                        error.candidates = matches.iter().map(|t| t.summary(now)).collect();
                        Err(error)
                    }
                }
            }
        }
    }

    /// Deletes a token the caller has found and confirmed, and its stored value; reports the
    /// workspaces that still hold it.
    pub async fn delete(&self, token: &Token) -> Result<Deleted> {
        self.client.delete_token(token.uuid).await?;
        tracing::info!(uuid = %token.uuid, "deleted token");
        let key = self.token_key(token.uuid);
        if let Err(e) = self.with_secrets(move |store| store.delete(&key)).await {
            tracing::warn!("the deleted token's stored value could not be removed: {e}");
        }
        let server = self.server().to_string();
        let still_used_in = self.state.update(|s| {
            s.forget_token(&server, token.uuid);
            s.workspaces_of(&server, token.uuid)
                .into_iter()
                .map(|w| w.workspace.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
        })?;
        Ok(Deleted {
            token: token.summary(self.now()),
            still_used_in,
        })
    }

    /// Which server, whether the credential works, and how the tokens stand.
    pub async fn status(&self) -> StatusReport {
        let server = self.server().to_string();
        let secret_store = self.secrets.kind();
        let secret_store_is_fallback = self.secrets_are_fallback();
        match self.client.list_tokens().await {
            Ok(tokens) => StatusReport {
                server,
                secret_store,
                secret_store_is_fallback,
                credential: "ok".to_string(),
                problem: None,
                tokens: Some(StatusCounts::of(&tokens, self.now())),
            },
            Err(error) => StatusReport {
                server,
                secret_store,
                secret_store_is_fallback,
                credential: error.kind.as_str().to_string(),
                problem: Some(error.into()),
                tokens: None,
            },
        }
    }
}
