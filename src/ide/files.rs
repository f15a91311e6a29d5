//! The IDE files of a workspace for a profile and a token: what they would become (preview)
//! and writing them (apply).

use super::git::{self, GitStatus};
use super::jetbrains::{self, JetBrainsFlavor, JetBrainsSettings};
use super::vscode;
use crate::domain::{Flavor, Profile, Secret};
use crate::fsx::{Access, write_atomic};
use crate::state::Ide;
use serde::Serialize;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Written in place of a token whose full value this machine does not have.
pub const TOKEN_PLACEHOLDER: &str = "<full token value is not stored on this machine>";

/// One file as it would be written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedFile {
    pub path: PathBuf,
    /// Relative to the workspace, with `/`: `.vscode/settings.json`.
    pub relative: String,
    /// `jsonc` or `xml`: the language id an editor would use to show it.
    pub language: &'static str,
    pub content: String,
    /// Whether the file exists now.
    pub exists: bool,
    /// Whether writing it would change anything.
    pub changes: bool,
    /// Whether it holds the full token (then it is written owner-only and checked against git).
    pub holds_token: bool,
}

/// A file that does not parse, so it is left alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} cannot be updated: it is not valid {what} ({detail}); fix it by hand, nothing was written")]
pub struct BrokenFile {
    pub path: String,
    pub what: &'static str,
    pub detail: String,
}

/// The `settings.json` keys for a flavor, in the order the web UI writes them.
pub fn vscode_entries(profile: &Profile, flavor: Flavor, token: &str) -> Vec<(&'static str, Value)> {
    let p = profile;
    let mut entries = Vec::new();
    if flavor.includes_legacy() {
        entries.extend([
            ("alitacode.providerServerURL", json!(p.server_url)),
            ("alitacode.LLMServerUrl", json!(p.server_url)),
            ("alitacode.modelName", json!(p.model_name)),
            ("alitacode.LLMModelName", json!(p.model_name)),
            ("alitacode.authToken", json!(token)),
            ("alitacode.LLMAuthToken", json!(token)),
            ("alitacode.projectId", json!(p.project_id)),
            ("alitacode.integrationUid", json!(p.integration_uid)),
            ("alitacode.defaultViewMode", json!(p.display_type.as_str())),
            ("alitacode.verifySsl", json!(p.verify_ssl)),
        ]);
    }
    if flavor.includes_current() {
        entries.extend([
            ("eliteacode.LLMServerUrl", json!(p.server_url)),
            ("eliteacode.LLMModelName", json!(p.model_name)),
            ("eliteacode.LLMAuthToken", json!(token)),
            ("eliteacode.projectId", json!(p.project_id)),
            ("eliteacode.integrationUid", json!(p.integration_uid)),
            ("eliteacode.displayType", json!(p.display_type.as_str())),
            ("eliteacode.verifySsl", json!(p.verify_ssl)),
            ("eliteacode.debug", json!(false)),
        ]);
    }
    entries
}

/// Keys that hold the token, for telling which token a settings file uses.
pub const VSCODE_TOKEN_KEYS: [&str; 3] = [
    "eliteacode.LLMAuthToken",
    "alitacode.LLMAuthToken",
    "alitacode.authToken",
];

/// The user's own choice, which we add when missing but never overwrite.
const USER_OWNED_KEYS: [&str; 1] = ["eliteacode.debug"];

pub fn jetbrains_settings(profile: &Profile) -> JetBrainsSettings {
    JetBrainsSettings {
        display_type: profile.display_type.as_str().to_ascii_uppercase(),
        integration_name: profile.integration_name.clone(),
        integration_uid: profile.integration_uid.clone(),
        llm_custom_model_enabled: true,
        llm_custom_model_name: profile.model_name.clone(),
        llm_server_url: profile.server_url.clone(),
        project_id: profile.project_id,
    }
}

fn read_existing(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn locate(workspace: Option<&Path>, relative: &str) -> PathBuf {
    match workspace {
        Some(dir) => dir.join(relative),
        None => PathBuf::from(relative),
    }
}

fn read_in(workspace: Option<&Path>, path: &Path) -> std::io::Result<Option<String>> {
    match workspace {
        Some(_) => read_existing(path),
        None => Ok(None),
    }
}

/// Where VS Code's settings are, relative to the workspace; the one file that holds the token.
const VSCODE_SETTINGS: &str = ".vscode/settings.json";

/// The file of `ide` in `workspace` that [`plan`] puts the full token in, if any: the file to
/// start a git check of ([`git::Checks`]) before planning.
pub fn token_file(workspace: &Path, ide: Ide) -> Option<PathBuf> {
    match ide {
        Ide::Vscode => Some(workspace.join(VSCODE_SETTINGS)),
        Ide::Jetbrains => None,
    }
}

/// Why planning failed.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Broken(#[from] BrokenFile),
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// What the IDE files of `workspace` would become (with no workspace: the files on their own,
/// as the web page shows them). `token` is `None` when this machine does not hold the full
/// value: the placeholder is shown instead.
pub fn plan(
    workspace: Option<&Path>,
    ide: Ide,
    flavor: Flavor,
    profile: &Profile,
    token: Option<&Secret>,
) -> Result<Vec<PlannedFile>, PlanError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| PlanError::Io { path, source }
    };
    match ide {
        Ide::Vscode => {
            let relative = VSCODE_SETTINGS;
            let path = locate(workspace, relative);
            let existing = read_in(workspace, &path).map_err(io(&path))?;
            let text = existing.as_deref().unwrap_or("");
            let broken = |e: vscode::JsoncError| BrokenFile {
                path: path.display().to_string(),
                what: "JSON with comments",
                detail: e.to_string(),
            };
            let value = token.map(Secret::expose).unwrap_or(TOKEN_PLACEHOLDER);
            let entries = vscode_entries(profile, flavor, value);
            let content = vscode::set_keys_keeping(text, &entries, &USER_OWNED_KEYS).map_err(broken)?;
            Ok(vec![PlannedFile {
                changes: existing.as_deref() != Some(content.as_str()),
                exists: existing.is_some(),
                path,
                relative: relative.to_string(),
                language: "jsonc",
                content,
                holds_token: true,
            }])
        }
        Ide::Jetbrains => {
            let mut flavors = Vec::new();
            if flavor.includes_current() {
                flavors.push(JetBrainsFlavor::Current);
            }
            if flavor.includes_legacy() {
                flavors.push(JetBrainsFlavor::Legacy);
            }
            let settings = jetbrains_settings(profile);
            flavors
                .into_iter()
                .map(|f| {
                    let relative = format!(".idea/{}", f.file_name());
                    let path = locate(workspace, &relative);
                    let existing = read_in(workspace, &path).map_err(io(&path))?;
                    let content =
                        jetbrains::render(existing.as_deref(), f, &settings).map_err(|e| BrokenFile {
                            path: path.display().to_string(),
                            what: "XML",
                            detail: e.to_string(),
                        })?;
                    Ok(PlannedFile {
                        changes: existing.as_deref() != Some(content.as_str()),
                        exists: existing.is_some(),
                        path,
                        relative,
                        language: "xml",
                        content,
                        holds_token: false,
                    })
                })
                .collect()
        }
    }
}

/// A file after `write`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WrittenFile {
    pub path: PathBuf,
    pub relative: String,
    /// `created`, `updated` or `unchanged`.
    pub outcome: &'static str,
    pub holds_token: bool,
    pub git: GitStatus,
    /// The `.gitignore` this write added an entry to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gitignore_added: Option<PathBuf>,
}

/// Writes planned files atomically. A file that holds a token is made owner-only, checked
/// against git (by the check started in `checks`, or one made now), and (with
/// `add_to_gitignore`) added to the workspace's `.gitignore`.
pub fn write(
    workspace: &Path,
    files: &[PlannedFile],
    add_to_gitignore: bool,
    checks: &mut git::Checks,
) -> std::io::Result<Vec<WrittenFile>> {
    let mut written = Vec::with_capacity(files.len());
    for file in files {
        let outcome = match (file.exists, file.changes) {
            (false, _) => "created",
            (true, true) => "updated",
            (true, false) => "unchanged",
        };
        if file.changes || !file.exists {
            if let Some(dir) = file.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let access = if file.holds_token {
                Access::OwnerOnly
            } else {
                Access::Keep
            };
            write_atomic(&file.path, file.content.as_bytes(), access)?;
        } else if file.holds_token {
            // Unchanged content still gets narrowed permissions.
            write_atomic(&file.path, file.content.as_bytes(), Access::OwnerOnly)?;
        }
        let mut status = if file.holds_token {
            checks.status(&file.path)
        } else {
            GitStatus::Ignored
        };
        let mut gitignore_added = None;
        if add_to_gitignore && status == GitStatus::NotIgnored {
            gitignore_added = git::ignore(workspace, &file.relative)?;
            status = git::status(&file.path);
        }
        written.push(WrittenFile {
            path: file.path.clone(),
            relative: file.relative.clone(),
            outcome,
            holds_token: file.holds_token,
            git: status,
            gitignore_added,
        });
    }
    Ok(written)
}
