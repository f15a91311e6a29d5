//! Rotation: a successor is created, kept, checked, put everywhere the old token was, and only
//! then is the old token deleted. Each step is written to a journal first, so a process killed
//! at any point is resumed (or rolled back) by the next run, and the files always hold a token
//! that works.

use super::{Selector, Service};
use crate::domain::{Expiration, Secret, TokenSummary, successor_name};
use crate::error::{Error, ErrorKind, Result};
use crate::fsx::{Access, write_atomic};
use crate::ide::{files::VSCODE_TOKEN_KEYS, vscode};
use crate::secrets::SecretKey;
use crate::state::{Ide, TokenRecord};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// Where a rotation stands. Each is recorded in the journal before the next begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationStep {
    /// The successor's name and period are chosen; nothing exists yet.
    Planned,
    /// The successor exists on the server.
    Created,
    /// Its value is in the secret store.
    Stored,
    /// The server accepts it.
    Verified,
    /// Every recorded workspace (and the login) uses it.
    Installed,
    /// The old token is gone; the journal is removed.
    Done,
}

impl RotationStep {
    pub fn as_str(self) -> &'static str {
        match self {
            RotationStep::Planned => "planned",
            RotationStep::Created => "created",
            RotationStep::Stored => "stored",
            RotationStep::Verified => "verified",
            RotationStep::Installed => "installed",
            RotationStep::Done => "done",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Journal {
    server: String,
    old_uuid: Option<Uuid>,
    old_name: String,
    new_name: String,
    period: String,
    step: RotationStep,
    new_uuid: Option<Uuid>,
    started_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct RotateOptions {
    /// The successor's period; by default the old token's, as this tool recorded it (30 days
    /// for tokens made elsewhere).
    pub expires: Option<Expiration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationOutcome {
    /// The successor is in place and the old token is gone.
    Rotated,
    /// The successor is in place; the old token could not be deleted yet (resume retries).
    OldTokenKept,
    /// Nothing changed: the half-made successor was removed.
    RolledBack,
}

#[derive(Debug, Clone, Serialize)]
pub struct RotationReport {
    pub outcome: RotationOutcome,
    pub old_name: String,
    pub old_uuid: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<TokenSummary>,
    /// IDE files that now hold the successor.
    pub updated_files: Vec<PathBuf>,
    /// Whether the login credential was the old token and now is the successor.
    pub credential_replaced: bool,
    pub warnings: Vec<String>,
    /// The successor's full value (printed once by `rotate`, never serialized).
    #[serde(skip)]
    pub value: Option<Secret>,
}

/// Reports each step; `Break` stops the rotation where it stands, as a killed process would.
pub type Progress<'a> = &'a mut (dyn FnMut(RotationStep) -> ControlFlow<()> + Send);

fn interrupted(step: RotationStep) -> Error {
    Error::new(
        ErrorKind::Aborted,
        format!(
            "rotation interrupted after step `{}`; it resumes on the next run",
            step.as_str()
        ),
    )
}

impl Service {
    fn journal_path(&self) -> PathBuf {
        self.state.dir().join("rotation.json")
    }

    fn read_journal(&self) -> Result<Option<Journal>> {
        match std::fs::read(self.journal_path()) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::new(
                    ErrorKind::Local,
                    format!(
                        "the rotation journal {} is damaged: {e}",
                        self.journal_path().display()
                    ),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::new(
                ErrorKind::Local,
                format!("cannot read the rotation journal: {e}"),
            )),
        }
    }

    fn save_journal(&self, journal: &Journal) -> Result<()> {
        crate::fsx::create_private_dir(self.state.dir()).map_err(|e| {
            Error::new(
                ErrorKind::Local,
                format!("cannot create the state directory: {e}"),
            )
        })?;
        let text = serde_json::to_vec_pretty(journal).map_err(|e| {
            Error::new(
                ErrorKind::Local,
                format!("cannot encode the rotation journal: {e}"),
            )
        })?;
        write_atomic(&self.journal_path(), &text, Access::OwnerOnly).map_err(|e| {
            Error::new(
                ErrorKind::Local,
                format!("cannot write the rotation journal: {e}"),
            )
        })
    }

    fn clear_journal(&self) {
        if let Err(e) = std::fs::remove_file(self.journal_path())
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove the rotation journal: {e}");
        }
    }

    /// Advances the journal and tells the caller; a `Break` leaves the journal where it is.
    fn advance(&self, journal: &mut Journal, step: RotationStep, progress: Progress) -> Result<()> {
        journal.step = step;
        self.save_journal(journal)?;
        match progress(step) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(interrupted(step)),
        }
    }

    /// Whether a rotation was left unfinished on this machine.
    pub fn rotation_pending(&self) -> bool {
        self.journal_path().exists()
    }

    /// Rotates a token. An unfinished rotation is resumed first.
    pub async fn rotate(
        &self,
        selector: &Selector,
        options: &RotateOptions,
        progress: Progress<'_>,
    ) -> Result<RotationReport> {
        if let Some(journal) = self.read_journal()? {
            return Err(Error::invalid(format!(
                "the rotation of `{}` started {} is unfinished; run `rotate --resume` first",
                journal.old_name,
                journal.started_at.format("%Y-%m-%d %H:%M UTC")
            )));
        }
        let server = self.server().to_string();
        let state = self.state.read()?;
        let (old_uuid, old_name) = match self.find(selector).await {
            Ok(token) => (Some(token.uuid), token.name.into()),
            // The old token is already gone: rotation still makes and installs a new one where
            // this machine used it.
            Err(e) if e.kind == ErrorKind::NotFound => {
                let known = match selector {
                    Selector::Uuid(uuid) => state
                        .workspaces
                        .iter()
                        .find(|w| w.server == server && w.uuid == *uuid)
                        .map(|w| (w.uuid, w.name.clone()))
                        .or_else(|| state.token(&server, *uuid).map(|t| (t.uuid, t.name.clone()))),
                    Selector::Name(name) => state
                        .workspaces
                        .iter()
                        .filter(|w| w.server == server && &w.name == name)
                        .map(|w| (w.uuid, w.name.clone()))
                        .chain(
                            state
                                .tokens
                                .iter()
                                .filter(|t| t.server == server && &t.name == name)
                                .map(|t| (t.uuid, t.name.clone())),
                        )
                        .next(),
                };
                let Some((uuid, name)) = known else { return Err(e) };
                (Some(uuid), name)
            }
            Err(e) => return Err(e),
        };
        let period = match options.expires {
            Some(expires) => expires,
            None => old_uuid
                .and_then(|uuid| state.token(&server, uuid))
                .and_then(|t| t.period.parse().ok())
                .unwrap_or_default(),
        };
        period
            .expires_at(self.now())
            .map_err(|e| Error::invalid(e.to_string()))?;
        let names: Vec<String> = self
            .client
            .list_tokens()
            .await?
            .into_iter()
            .map(|t| t.name.into())
            .collect();
        let new_name = successor_name(&old_name, self.now().date_naive(), |n| {
            names.iter().any(|t| t == n)
        });
        let mut journal = Journal {
            server,
            old_uuid,
            old_name,
            new_name,
            period: period.to_string(),
            step: RotationStep::Planned,
            new_uuid: None,
            started_at: self.now(),
        };
        self.advance(&mut journal, RotationStep::Planned, progress)?;
        self.drive(journal, None, progress).await
    }

    /// Finishes (or rolls back) a rotation a previous run left unfinished. `None` when there is
    /// none for this server.
    pub async fn resume_rotation(&self, progress: Progress<'_>) -> Result<Option<RotationReport>> {
        match self.read_journal()? {
            Some(journal) if journal.server == self.server() => {
                self.drive(journal, None, progress).await.map(Some)
            }
            _ => Ok(None),
        }
    }

    async fn drive(
        &self,
        mut journal: Journal,
        mut value: Option<Secret>,
        progress: Progress<'_>,
    ) -> Result<RotationReport> {
        let mut report = RotationReport {
            outcome: RotationOutcome::Rotated,
            old_name: journal.old_name.clone(),
            old_uuid: journal.old_uuid,
            new: None,
            updated_files: Vec::new(),
            credential_replaced: false,
            warnings: Vec::new(),
            value: None,
        };
        loop {
            match journal.step {
                RotationStep::Planned => {
                    // A create whose answer was lost may still have made the token: remove any
                    // token with the successor's name (its value is unknown, so it is useless).
                    self.remove_orphans(&journal.new_name).await?;
                    let period: Expiration = journal.period.parse().unwrap_or_default();
                    let created = match self.client.create_token(&journal.new_name, period).await {
                        Ok(created) => created,
                        Err(e) => {
                            if self.remove_orphans(&journal.new_name).await.is_ok() {
                                self.clear_journal();
                            }
                            return Err(
                                Error::from(e).context("the successor could not be created; nothing changed")
                            );
                        }
                    };
                    journal.new_uuid = Some(created.token.uuid);
                    value = Some(created.value);
                    self.advance(&mut journal, RotationStep::Created, progress)?;
                }
                RotationStep::Created => {
                    let new_uuid = journal.new_uuid.ok_or_else(|| damaged("created", "new_uuid"))?;
                    let Some(secret) = self.successor_value(&value, new_uuid).await.ok().flatten() else {
                        // Killed between create and store: the value is lost with the process.
                        return self
                            .roll_back(
                                &journal,
                                report,
                                "the successor's value was lost before it was kept",
                            )
                            .await;
                    };
                    let key = self.token_key(new_uuid);
                    let kept = secret.clone();
                    if let Err(e) = self.with_secrets(move |store| store.set(&key, &kept)).await {
                        let rolled = self.roll_back(&journal, report, "").await;
                        return Err(match rolled {
                            Ok(_) => e.context("the successor's value could not be kept, so it was deleted again; nothing changed"),
                            Err(cleanup) => cleanup,
                        });
                    }
                    let record = TokenRecord {
                        server: journal.server.clone(),
                        uuid: new_uuid,
                        name: journal.new_name.clone(),
                        period: journal.period.clone(),
                        created_at: self.now(),
                        expires: journal
                            .period
                            .parse::<Expiration>()
                            .ok()
                            .and_then(|p| p.expires_at(self.now()).ok().flatten()),
                    };
                    self.state.update(|s| {
                        s.forget_token(&record.server, record.uuid);
                        s.tokens.push(record);
                    })?;
                    value = Some(secret);
                    self.advance(&mut journal, RotationStep::Stored, progress)?;
                }
                RotationStep::Stored => {
                    let new_uuid = journal.new_uuid.ok_or_else(|| damaged("stored", "new_uuid"))?;
                    let Some(secret) = self.successor_value(&value, new_uuid).await? else {
                        return self
                            .roll_back(
                                &journal,
                                report,
                                "the successor's value is missing from the secret store",
                            )
                            .await;
                    };
                    match self.client.with_credential(secret.clone()).list_tokens().await {
                        Ok(_) => {}
                        Err(e) if e.kind == ErrorKind::CredentialRejected => {
                            return self
                                .roll_back(&journal, report, "the server refused the successor")
                                .await;
                        }
                        Err(e) => {
                            return Err(Error::from(e).context(
                                "the successor could not be checked; the old token still works, and `rotate --resume` continues",
                            ));
                        }
                    }
                    value = Some(secret);
                    self.advance(&mut journal, RotationStep::Verified, progress)?;
                }
                RotationStep::Verified => {
                    let new_uuid = journal.new_uuid.ok_or_else(|| damaged("verified", "new_uuid"))?;
                    let secret = self.successor_value(&value, new_uuid).await?.ok_or_else(|| {
                        Error::new(
                            ErrorKind::KeyringUnavailable,
                            "the successor's value is missing from the secret store",
                        )
                    })?;
                    self.install(&journal, new_uuid, &secret, &mut report).await?;
                    value = Some(secret);
                    self.advance(&mut journal, RotationStep::Installed, progress)?;
                }
                RotationStep::Installed => {
                    let new_uuid = journal.new_uuid.ok_or_else(|| damaged("installed", "new_uuid"))?;
                    let secret = self.successor_value(&value, new_uuid).await.ok().flatten();
                    if let Some(old_uuid) = journal.old_uuid {
                        // The successor is certain to work; the old credential may be the token
                        // being deleted.
                        let client = secret
                            .clone()
                            .map(|s| self.client.with_credential(s))
                            .unwrap_or_else(|| self.client.clone());
                        match client.delete_token(old_uuid).await {
                            Ok(()) => {}
                            Err(e) if e.kind == ErrorKind::NotFound => {}
                            Err(e) => {
                                report.outcome = RotationOutcome::OldTokenKept;
                                report.warnings.push(format!(
                                    "the successor is in place, but the old token could not be deleted ({}); `rotate --resume` retries",
                                    e.message
                                ));
                                report.new = Some(self.summary_of(new_uuid, &journal).await);
                                report.value = secret;
                                return Ok(report);
                            }
                        }
                        let key = self.token_key(old_uuid);
                        if let Err(e) = self.with_secrets(move |store| store.delete(&key)).await {
                            report
                                .warnings
                                .push(format!("the old token's stored value could not be removed: {e}"));
                        }
                        let server = journal.server.clone();
                        self.state.update(|s| s.forget_token(&server, old_uuid))?;
                    }
                    report.new = Some(self.summary_of(new_uuid, &journal).await);
                    report.value = secret;
                    journal.step = RotationStep::Done;
                    self.clear_journal();
                    let _ = progress(RotationStep::Done);
                    return Ok(report);
                }
                RotationStep::Done => {
                    self.clear_journal();
                    return Ok(report);
                }
            }
        }
    }

    /// The successor's value: the one this run holds, else the stored one. The store is asked
    /// only when needed (a keyring call can cost a D-Bus round trip or a prompt).
    async fn successor_value(&self, held: &Option<Secret>, uuid: Uuid) -> Result<Option<Secret>> {
        match held {
            Some(secret) => Ok(Some(secret.clone())),
            None => self.stored_value(uuid).await,
        }
    }

    /// Deletes every token named `name` (leftovers of a create whose value was never kept).
    async fn remove_orphans(&self, name: &str) -> Result<()> {
        for token in self.client.list_tokens().await? {
            if token.name == name {
                tracing::info!(uuid = %token.uuid, "removing a leftover token of an interrupted rotation");
                match self.client.delete_token(token.uuid).await {
                    Ok(()) => {}
                    Err(e) if e.kind == ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// Undoes a rotation that has not reached any file: the successor and its value go.
    async fn roll_back(
        &self,
        journal: &Journal,
        mut report: RotationReport,
        why: &str,
    ) -> Result<RotationReport> {
        if let Some(new_uuid) = journal.new_uuid {
            match self.client.delete_token(new_uuid).await {
                Ok(()) => {}
                Err(e) if e.kind == ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::from(e).context(
                        "the rotation could not be rolled back yet (the leftover successor is recorded and removed on the next run)",
                    ));
                }
            }
            let key = self.token_key(new_uuid);
            let _ = self.with_secrets(move |store| store.delete(&key)).await;
            let server = journal.server.clone();
            self.state.update(|s| s.forget_token(&server, new_uuid))?;
        }
        self.clear_journal();
        report.outcome = RotationOutcome::RolledBack;
        if !why.is_empty() {
            report
                .warnings
                .push(format!("{why}; the rotation was rolled back and nothing changed"));
        }
        Ok(report)
    }

    /// Puts the successor into every recorded workspace and the login, and moves the records.
    async fn install(
        &self,
        journal: &Journal,
        new_uuid: Uuid,
        value: &Secret,
        report: &mut RotationReport,
    ) -> Result<()> {
        let Some(old_uuid) = journal.old_uuid else {
            return Ok(());
        };
        let state = self.state.read()?;
        let workspaces: Vec<_> = state
            .workspaces_of(&journal.server, old_uuid)
            .into_iter()
            .cloned()
            .collect();
        let mut failures = Vec::new();
        for record in workspaces.iter().filter(|w| w.ide == Ide::Vscode) {
            let path = record.workspace.join(".vscode/settings.json");
            match replace_token_in_settings(&path, value) {
                Ok(true) => report.updated_files.push(path),
                Ok(false) => report.warnings.push(format!(
                    "{} no longer holds the token; it was left as it is",
                    path.display()
                )),
                Err(e) => failures.push(format!("{}: {e}", path.display())),
            }
        }
        if !failures.is_empty() {
            return Err(Error::new(
                ErrorKind::Local,
                format!(
                    "rotation paused: {}. The old token still works; fix the file and run `rotate --resume`",
                    failures.join("; ")
                ),
            ));
        }
        // The login credential: replaced only when it is the token being rotated.
        let credential_key = SecretKey::Credential {
            server: journal.server.clone(),
        };
        let key = credential_key.clone();
        let current = self
            .with_secrets(move |store| store.get(&key))
            .await
            .unwrap_or(None);
        if current.as_ref().and_then(Secret::token_uuid) == Some(old_uuid) {
            let new_value = value.clone();
            self.with_secrets(move |store| store.set(&credential_key, &new_value))
                .await?;
            report.credential_replaced = true;
        }
        let server = journal.server.clone();
        let new_name = journal.new_name.clone();
        self.state.update(|s| {
            for w in s
                .workspaces
                .iter_mut()
                .filter(|w| w.server == server && w.uuid == old_uuid)
            {
                w.uuid = new_uuid;
                w.name = new_name.clone();
            }
        })?;
        Ok(())
    }

    async fn summary_of(&self, uuid: Uuid, journal: &Journal) -> TokenSummary {
        match self.client.get_token(uuid).await {
            Ok(token) => token.summary(self.now()),
            Err(_) => TokenSummary {
                uuid,
                name: journal.new_name.clone(),
                value: String::from("..."),
                expires: None,
                status: crate::domain::ExpiryStatus::Ok,
                label: String::from("unknown"),
            },
        }
    }
}

/// Replaces the token in the token keys a settings file has; `false` when it has none.
fn replace_token_in_settings(path: &Path, value: &Secret) -> std::result::Result<bool, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.to_string()),
    };
    let present = vscode::read_keys(&text, &VSCODE_TOKEN_KEYS)
        .map_err(|e| format!("not valid JSON with comments ({e})"))?;
    if present.is_empty() {
        return Ok(false);
    }
    let entries: Vec<(&str, serde_json::Value)> = present
        .iter()
        .map(|(key, _)| {
            (
                key.as_str(),
                serde_json::Value::String(value.expose().to_string()),
            )
        })
        .collect();
    let updated =
        vscode::set_keys(&text, &entries).map_err(|e| format!("not valid JSON with comments ({e})"))?;
    write_atomic(path, updated.as_bytes(), Access::OwnerOnly).map_err(|e| e.to_string())?;
    Ok(true)
}

fn damaged(step: &str, field: &str) -> Error {
    Error::new(
        ErrorKind::Local,
        format!("the rotation journal is damaged (step `{step}` without `{field}`); remove it to start over"),
    )
}
