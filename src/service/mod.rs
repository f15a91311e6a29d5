//! The operations users name (list, create, delete, status), shared by the command line and
//! the daemon. This is the one place that sequences the server, the clock and, later, the
//! secret store and the IDE files.

use crate::api::Client;
use crate::clock::Clock;
use crate::domain::{Expiration, Query, Secret, StatusCounts, Token, TokenSummary, check_name};
use crate::error::{Error, ErrorKind, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
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
    /// `ok`, or the error kind that stopped the check.
    pub credential: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Error>,
    pub tokens: Option<StatusCounts>,
}

/// The operations, over one server and one credential.
pub struct Service {
    client: Client,
    clock: Arc<dyn Clock>,
}

impl Service {
    pub fn new(client: Client, clock: Arc<dyn Clock>) -> Service {
        Service { client, clock }
    }

    pub fn server(&self) -> &str {
        self.client.server().as_str()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
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
        Ok(Created {
            token: created.token,
            value: created.value,
        })
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
                    .filter(|t| &t.name == name)
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

    /// Deletes a token the caller has found and confirmed.
    pub async fn delete(&self, token: &Token) -> Result<()> {
        self.client.delete_token(token.uuid).await?;
        tracing::info!(uuid = %token.uuid, "deleted token");
        Ok(())
    }

    /// Which server, whether the credential works, and how the tokens stand.
    pub async fn status(&self) -> StatusReport {
        let server = self.server().to_string();
        match self.client.list_tokens().await {
            Ok(tokens) => StatusReport {
                server,
                credential: "ok".to_string(),
                problem: None,
                tokens: Some(StatusCounts::of(&tokens, self.now())),
            },
            Err(error) => StatusReport {
                server,
                credential: error.kind.as_str().to_string(),
                problem: Some(error.into()),
                tokens: None,
            },
        }
    }
}
