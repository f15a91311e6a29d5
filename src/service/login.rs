//! Login and logout: the credential checked against the server, kept in the secret store, and
//! the server remembered in the config.

use super::Service;
use crate::config::Config;
use crate::error::Result;
use crate::secrets::{SecretKey, StoreKind};
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
pub struct LoginReport {
    pub server: String,
    /// The signed-in user's name or e-mail, as the server tells it.
    pub user: Option<String>,
    pub personal_project_id: i64,
    pub secret_store: StoreKind,
    pub secret_store_is_fallback: bool,
}

impl Service {
    /// Checks the service's credential with the server, then keeps it and remembers the server.
    pub async fn login(&self, config_dir: &Path) -> Result<LoginReport> {
        let author = self.client.author().await?;
        self.client.list_tokens().await?;
        let key = SecretKey::Credential {
            server: self.server().to_string(),
        };
        let credential = self.client.credential().clone();
        self.with_secrets(move |store| store.set(&key, &credential))
            .await?;
        let mut config = Config::load(config_dir)?;
        config.server = Some(self.server().to_string());
        config.save(config_dir)?;
        Ok(LoginReport {
            server: self.server().to_string(),
            user: author.name.or(author.email),
            personal_project_id: author.personal_project_id,
            secret_store: self.secrets.kind(),
            secret_store_is_fallback: self.secrets_are_fallback(),
        })
    }
}

/// Forgets the credential kept for `server`; returns whether there was one.
pub fn logout(secrets: &dyn crate::secrets::SecretStore, config_dir: &Path, server: &str) -> Result<bool> {
    let key = SecretKey::Credential {
        server: server.to_string(),
    };
    let removed = secrets
        .delete(&key)
        .map_err(|e| crate::error::Error::new(crate::error::ErrorKind::KeyringUnavailable, e.to_string()))?;
    let mut config = Config::load(config_dir)?;
    if config.server.as_deref() == Some(server) {
        config.server = None;
        config.save(config_dir)?;
    }
    Ok(removed)
}
