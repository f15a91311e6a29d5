//! Preview and apply: the IDE files for a token, shown or written.

use super::{Selector, Service};
use crate::domain::{Flavor, Profile, ProfileChoices, TokenSummary};
use crate::error::{Error, ErrorKind, Result};
use crate::ide::{self, PlannedFile, WrittenFile};
use crate::state::{Ide, WorkspaceRecord};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct PreviewRequest {
    pub selector: Selector,
    pub ide: Ide,
    pub flavor: Option<Flavor>,
    /// Merge into this workspace's files, as `apply` would; `None` shows the files on their own.
    pub workspace: Option<PathBuf>,
    pub choices: ProfileChoices,
}

/// What `apply` would write.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub token: TokenSummary,
    /// Whether this machine holds the full value (otherwise the files show a placeholder).
    pub token_known: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub profile: Profile,
    pub files: Vec<PlannedFile>,
}

#[derive(Debug, Clone)]
pub struct ApplyRequest {
    pub selector: Selector,
    pub ides: Vec<Ide>,
    pub workspace: PathBuf,
    pub flavor: Option<Flavor>,
    pub choices: ProfileChoices,
    /// Add files that hold the token to the workspace's `.gitignore` when git would see them.
    pub gitignore: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    pub token: TokenSummary,
    pub workspace: PathBuf,
    pub files: Vec<WrittenFile>,
    /// Things the user should act on (a token file git would commit, for one).
    pub warnings: Vec<String>,
}

fn not_stored_note(name: &str) -> String {
    format!(
        "the full value of `{name}` is known only to the machine that created it (the server never shows it again); \
         `rotate {name}` makes a successor whose value this machine keeps"
    )
}

impl Service {
    /// The IDE profile the web UI would make for the chosen (or personal) project.
    pub async fn profile(&self, overrides: &ProfileChoices) -> Result<Profile> {
        let choices = self.config.choices(overrides);
        let author = self.client.author().await?;
        let project_id = choices.project_id.unwrap_or(author.personal_project_id);
        let models = self.client.models(project_id).await?;
        Profile::build(
            &author.api_url,
            project_id,
            self.config.public_project_id(),
            &models.items,
            &choices,
        )
        .map_err(|e| Error::invalid(e.to_string()))
    }

    fn flavor(&self, asked: Option<Flavor>) -> Flavor {
        asked.or(self.config.flavor).unwrap_or_default()
    }

    pub async fn preview(&self, request: &PreviewRequest) -> Result<Preview> {
        let token = self.find(&request.selector).await?;
        let value = self.stored_value(token.uuid).await.unwrap_or_else(|e| {
            tracing::warn!("cannot read the secret store: {e}");
            None
        });
        let profile = self.profile(&request.choices).await?;
        let workspace = match &request.workspace {
            Some(dir) => Some(workspace_dir(dir)?),
            None => None,
        };
        let files = ide::plan(
            workspace.as_deref(),
            request.ide,
            self.flavor(request.flavor),
            &profile,
            value.as_ref(),
        )
        .map_err(plan_error)?;
        let needs_token = request.ide == Ide::Vscode;
        Ok(Preview {
            token: token.summary(self.now()),
            token_known: value.is_some(),
            note: (value.is_none() && needs_token).then(|| not_stored_note(&token.name)),
            profile,
            files,
        })
    }

    pub async fn apply(&self, request: &ApplyRequest) -> Result<ApplyReport> {
        let token = self.find(&request.selector).await?;
        let workspace = workspace_dir(&request.workspace)?;
        let value = self.stored_value(token.uuid).await?;
        if value.is_none() && request.ides.contains(&Ide::Vscode) {
            return Err(Error::new(
                ErrorKind::ValueNotStored,
                not_stored_note(&token.name),
            ));
        }
        let profile = self.profile(&request.choices).await?;
        let flavor = self.flavor(request.flavor);
        let mut checks = ide::git::Checks::start(
            request
                .ides
                .iter()
                .filter_map(|ide| ide::token_file(&workspace, *ide)),
        );
        // Plan every file first: a broken file stops everything before anything is written.
        let mut planned = Vec::new();
        for ide in &request.ides {
            planned.push((
                *ide,
                ide::plan(Some(&workspace), *ide, flavor, &profile, value.as_ref()).map_err(plan_error)?,
            ));
        }
        let mut files = Vec::new();
        for (ide, plan) in &planned {
            let written = ide::write(&workspace, plan, request.gitignore, &mut checks).map_err(|e| {
                Error::new(
                    ErrorKind::Local,
                    format!("cannot write in {}: {e}", workspace.display()),
                )
            })?;
            files.extend(written);
            let record = WorkspaceRecord {
                server: self.server().to_string(),
                uuid: token.uuid,
                name: token.name.to_string(),
                workspace: workspace.clone(),
                ide: *ide,
                flavor,
                applied_at: self.now(),
            };
            self.state.update(|s| s.record_workspace(record))?;
        }
        let warnings = files.iter().filter_map(git_warning).collect();
        Ok(ApplyReport {
            token: token.summary(self.now()),
            workspace,
            files,
            warnings,
        })
    }
}

/// A warning for a token file git would pick up.
pub(crate) fn git_warning(file: &WrittenFile) -> Option<String> {
    match file.git {
        ide::GitStatus::Tracked => Some(format!(
            "{} holds a personal token and is tracked by git: its next commit would publish the token. \
             Stop tracking it with `git rm --cached {}` and add it to .gitignore (--gitignore does that)",
            file.relative, file.relative
        )),
        ide::GitStatus::NotIgnored => Some(format!(
            "{} holds a personal token and no .gitignore covers it: `git add .` would pick it up. \
             Pass --gitignore to add it to the workspace's .gitignore",
            file.relative
        )),
        _ => None,
    }
}

fn workspace_dir(dir: &Path) -> Result<PathBuf> {
    let canonical = dir
        .canonicalize()
        .map_err(|e| Error::invalid(format!("workspace {} cannot be used: {e}", dir.display())))?;
    if !canonical.is_dir() {
        return Err(Error::invalid(format!(
            "workspace {} is not a folder",
            dir.display()
        )));
    }
    Ok(canonical)
}

fn plan_error(e: ide::files::PlanError) -> Error {
    match e {
        ide::files::PlanError::Broken(broken) => Error::invalid(broken.to_string()),
        ide::files::PlanError::Io { .. } => Error::new(ErrorKind::Local, e.to_string()),
    }
}
