//! Fixed users, the author object and the model catalogue the sandbox serves.

use serde_json::{Value, json};

/// The platform's own token name: reserved on create, hidden from list.
pub(crate) const RESERVED_NAME: &str = "elitea-system";

#[derive(Debug, Clone, Copy)]
pub(crate) struct User {
    pub id: i64,
    /// Name used by the control API (`POST /_sandbox/credential {"user": ...}`).
    pub login: &'static str,
    pub email: &'static str,
    pub name: &'static str,
    /// Preferred personal project id; moved if it collides with the public project.
    personal_project: i64,
}

/// The first user owns the bootstrap token; the second exists to test cross-user access.
pub(crate) const USERS: [User; 2] = [
    User {
        id: 3,
        login: "sandbox",
        email: "sandbox@elitea.local",
        name: "Sandbox User",
        personal_project: 27,
    },
    User {
        id: 4,
        login: "other",
        email: "other@elitea.local",
        name: "Other User",
        personal_project: 28,
    },
];

pub(crate) fn user_by_id(id: i64) -> Option<User> {
    USERS.iter().copied().find(|u| u.id == id)
}

pub(crate) fn user_by_login(login: &str) -> Option<User> {
    USERS.iter().copied().find(|u| u.login == login)
}

impl User {
    /// Never the public project, whatever id the public project was configured with.
    pub(crate) fn personal_project_id(&self, public_project_id: i64) -> i64 {
        if self.personal_project == public_project_id {
            self.personal_project + 1000
        } else {
            self.personal_project
        }
    }
}

/// `GET /api/v2/social/author/`.
pub(crate) fn author(user: &User, api_url: &str, public_project_id: i64) -> Value {
    json!({
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "avatar": null,
        "api_url": api_url,
        "personal_project_id": user.personal_project_id(public_project_id),
        "last_login": null,
        "groups": [],
    })
}

struct Model {
    name: &'static str,
    context_window: u64,
    max_output_tokens: u64,
    supports_reasoning: bool,
}

const PERSONAL_MODELS: &[Model] = &[Model {
    name: "gpt-5-mini",
    context_window: 400_000,
    max_output_tokens: 128_000,
    supports_reasoning: true,
}];

const PUBLIC_MODELS: &[Model] = &[
    Model {
        name: "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
        context_window: 200_000,
        max_output_tokens: 64_000,
        supports_reasoning: true,
    },
    Model {
        name: "gpt-4.1",
        context_window: 1_047_576,
        max_output_tokens: 32_768,
        supports_reasoning: false,
    },
];

/// `GET /api/v2/configurations/models/{project_id}`, or `None` when the user is not a member
/// of the project (the caller answers 403 `null`, like other permission failures).
///
/// The user's personal project owns `gpt-5-mini` (its default) and, with `include_shared`,
/// sees the public project's models as shared. The public project owns the other two and
/// has the Claude model as its default.
pub(crate) fn models(
    user: &User,
    project_id: i64,
    include_shared: bool,
    public_project_id: i64,
) -> Option<Value> {
    let personal = user.personal_project_id(public_project_id);
    let mut items = Vec::new();
    let (default_name, default_project) = if project_id == personal {
        items.extend(entries(PERSONAL_MODELS, personal, false, true));
        if include_shared {
            items.extend(entries(PUBLIC_MODELS, public_project_id, true, false));
        }
        (PERSONAL_MODELS[0].name, personal)
    } else if project_id == public_project_id {
        items.extend(entries(PUBLIC_MODELS, public_project_id, false, true));
        (PUBLIC_MODELS[0].name, public_project_id)
    } else {
        return None;
    };
    Some(json!({
        "total": items.len(),
        "items": items,
        "default_model_name": default_name,
        "default_model_project_id": default_project,
    }))
}

/// The first model of a list is that project's default; shared entries are never the
/// default of the project that borrows them.
fn entries(models: &[Model], project_id: i64, shared: bool, first_is_default: bool) -> Vec<Value> {
    models
        .iter()
        .enumerate()
        .map(|(i, m)| {
            json!({
                "id": project_id * 100 + i as i64 + 1,
                "name": m.name,
                "elitea_title": m.name,
                "type": "llm",
                "project_id": project_id,
                "shared": shared,
                "default": first_is_default && i == 0,
                "context_window": m.context_window,
                "max_output_tokens": m.max_output_tokens,
                "supports_reasoning": m.supports_reasoning,
                "status": "active",
            })
        })
        .collect()
}
