//! What an IDE needs to reach ELITEA, and how the web UI picks the model.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A model offered to a project (`GET /api/v2/configurations/models/{project_id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    pub name: String,
    pub project_id: i64,
    #[serde(default)]
    pub shared: bool,
    #[serde(default)]
    pub default: bool,
}

/// The web UI's choice: the first default model of the project; else the project's first model;
/// else any default model; else the first model.
pub fn choose_model(models: &[Model], project_id: i64) -> Option<&Model> {
    let own = |m: &&Model| m.project_id == project_id;
    models
        .iter()
        .filter(own)
        .find(|m| m.default)
        .or_else(|| models.iter().find(own))
        .or_else(|| models.iter().find(|m| m.default))
        .or_else(|| models.first())
}

/// Which extension generation the files are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// `eliteacode.*` keys and `.idea/elitea.xml` (extension 0.4.1 and later).
    Current,
    /// `alitacode.*` keys and `.idea/alita.xml` (up to 0.4.0).
    Legacy,
    /// Both, as the web UI's older download writes them.
    #[default]
    Both,
}

impl Flavor {
    pub fn includes_current(self) -> bool {
        matches!(self, Flavor::Current | Flavor::Both)
    }

    pub fn includes_legacy(self) -> bool {
        matches!(self, Flavor::Legacy | Flavor::Both)
    }
}

impl FromStr for Flavor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "current" => Ok(Flavor::Current),
            "legacy" => Ok(Flavor::Legacy),
            "both" => Ok(Flavor::Both),
            other => Err(format!("`{other}` is not a flavor; use current, legacy or both")),
        }
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::Current => "current",
            Flavor::Legacy => "legacy",
            Flavor::Both => "both",
        })
    }
}

/// How the extension shows answers (`displayType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DisplayType {
    Append,
    #[default]
    Split,
    Replace,
    Prepend,
}

impl DisplayType {
    pub fn as_str(self) -> &'static str {
        match self {
            DisplayType::Append => "append",
            DisplayType::Split => "split",
            DisplayType::Replace => "replace",
            DisplayType::Prepend => "prepend",
        }
    }
}

impl FromStr for DisplayType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "append" => Ok(DisplayType::Append),
            "split" => Ok(DisplayType::Split),
            "replace" => Ok(DisplayType::Replace),
            "prepend" => Ok(DisplayType::Prepend),
            other => Err(format!(
                "`{other}` is not a display type; use append, split, replace or prepend"
            )),
        }
    }
}

/// Everything the IDE files say, the token aside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// The author's `api_url`: the origin the extension calls.
    pub server_url: String,
    pub project_id: i64,
    pub model_name: String,
    /// `<project_id>_<model name>`, unless overridden.
    pub integration_uid: String,
    /// `Project <project_id>`, unless overridden.
    pub integration_name: String,
    pub display_type: DisplayType,
    pub verify_ssl: bool,
}

/// Choices the user can make; everything else comes from the server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileChoices {
    pub project_id: Option<i64>,
    pub model: Option<String>,
    pub integration_uid: Option<String>,
    pub integration_name: Option<String>,
    pub display_type: Option<DisplayType>,
    pub verify_ssl: Option<bool>,
}

/// Why settings cannot be made for a project.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error(
        "project {0} is the Public project, which IDE settings cannot use; use your personal project (the default) or another private one with --project"
    )]
    PublicProject(i64),
    #[error(
        "project {0} offers no model; choose another project with --project, or add a model to it in ELITEA"
    )]
    NoModel(i64),
    #[error("project {project} has no model named `{model}`; it offers: {offered}")]
    UnknownModel {
        project: i64,
        model: String,
        offered: String,
    },
}

impl Profile {
    /// Builds the profile the way the web UI does, with the user's overrides.
    pub fn build(
        api_url: &str,
        project_id: i64,
        public_project_id: i64,
        models: &[Model],
        choices: &ProfileChoices,
    ) -> Result<Profile, ProfileError> {
        if project_id == public_project_id {
            return Err(ProfileError::PublicProject(project_id));
        }
        let model_name = match &choices.model {
            Some(wanted) => models
                .iter()
                .find(|m| &m.name == wanted)
                .map(|m| m.name.clone())
                .ok_or_else(|| ProfileError::UnknownModel {
                    project: project_id,
                    model: wanted.clone(),
                    offered: models
                        .iter()
                        .map(|m| m.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?,
            None => choose_model(models, project_id)
                .map(|m| m.name.clone())
                .ok_or(ProfileError::NoModel(project_id))?,
        };
        Ok(Profile {
            server_url: api_url.trim_end_matches('/').to_string(),
            project_id,
            integration_uid: choices
                .integration_uid
                .clone()
                .unwrap_or_else(|| format!("{project_id}_{model_name}")),
            integration_name: choices
                .integration_name
                .clone()
                .unwrap_or_else(|| format!("Project {project_id}")),
            model_name,
            display_type: choices.display_type.unwrap_or_default(),
            verify_ssl: choices.verify_ssl.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str, project_id: i64, default: bool) -> Model {
        Model {
            name: name.into(),
            project_id,
            shared: project_id == 1,
            default,
        }
    }

    #[test]
    fn the_model_is_chosen_as_the_web_ui_does() {
        let cases: Vec<(Vec<Model>, Option<&str>)> = vec![
            (
                vec![
                    model("shared-default", 1, true),
                    model("own", 27, false),
                    model("own-default", 27, true),
                ],
                Some("own-default"),
            ),
            (
                vec![model("shared-default", 1, true), model("own", 27, false)],
                Some("own"),
            ),
            (
                vec![model("shared", 1, false), model("shared-default", 1, true)],
                Some("shared-default"),
            ),
            (
                vec![model("first", 1, false), model("second", 1, false)],
                Some("first"),
            ),
            (vec![], None),
        ];
        for (models, expected) in cases {
            assert_eq!(
                choose_model(&models, 27).map(|m| m.name.as_str()),
                expected,
                "{models:?}"
            );
        }
    }

    #[test]
    fn profile_defaults_and_refusals() {
        let models = vec![model("gpt-5-mini", 27, true), model("gpt-4.1", 1, false)];
        let profile = Profile::build(
            "https://next.elitea.ai/",
            27,
            1,
            &models,
            &ProfileChoices::default(),
        )
        .unwrap();
        assert_eq!(profile.server_url, "https://next.elitea.ai");
        assert_eq!(profile.integration_uid, "27_gpt-5-mini");
        assert_eq!(profile.integration_name, "Project 27");
        assert_eq!(profile.display_type, DisplayType::Split);
        assert!(profile.verify_ssl);

        let chosen = ProfileChoices {
            model: Some("gpt-4.1".into()),
            verify_ssl: Some(false),
            display_type: Some(DisplayType::Append),
            ..ProfileChoices::default()
        };
        let profile = Profile::build("https://x", 27, 1, &models, &chosen).unwrap();
        assert_eq!(
            (profile.model_name.as_str(), profile.integration_uid.as_str()),
            ("gpt-4.1", "27_gpt-4.1")
        );
        assert!(!profile.verify_ssl);

        let public = Profile::build("https://x", 1, 1, &models, &ProfileChoices::default()).unwrap_err();
        assert!(public.to_string().contains("Public project"), "{public}");
        let none = Profile::build("https://x", 27, 1, &[], &ProfileChoices::default()).unwrap_err();
        assert_eq!(none, ProfileError::NoModel(27));
        let unknown = ProfileChoices {
            model: Some("gpt-9".into()),
            ..ProfileChoices::default()
        };
        let err = Profile::build("https://x", 27, 1, &models, &unknown)
            .unwrap_err()
            .to_string();
        assert!(err.contains("offers: gpt-5-mini, gpt-4.1"), "{err}");
    }
}
