//! Every `elitea/*` request and notification, typed. `docs/protocol.md` documents each one and a
//! test fails when a method here is missing there. Field names are camelCase, as in LSP.

use crate::domain::{
    DisplayType, ExpiryStatus, Flavor, ProfileChoices, SortDirection, SortKey, StatusCounts,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tower_lsp_server::ls_types::NumberOrString;
use uuid::Uuid;

pub const STATUS: &str = "elitea/status";
pub const LOGIN: &str = "elitea/login";
pub const LIST_TOKENS: &str = "elitea/listTokens";
pub const CREATE_TOKEN: &str = "elitea/createToken";
pub const PREVIEW_SETTINGS: &str = "elitea/previewSettings";
pub const APPLY_SETTINGS: &str = "elitea/applySettings";
pub const DELETE_TOKEN: &str = "elitea/deleteToken";
pub const ROTATE_TOKEN: &str = "elitea/rotateToken";
pub const SNOOZE_REMINDER: &str = "elitea/snoozeReminder";
pub const TOKEN_EXPIRING: &str = "elitea/tokenExpiring";
pub const TOKENS_CHANGED: &str = "elitea/tokensChanged";

/// Every method and notification, for the documentation test.
pub const ALL_METHODS: [&str; 11] = [
    STATUS,
    LOGIN,
    LIST_TOKENS,
    CREATE_TOKEN,
    PREVIEW_SETTINGS,
    APPLY_SETTINGS,
    DELETE_TOKEN,
    ROTATE_TOKEN,
    SNOOZE_REMINDER,
    TOKEN_EXPIRING,
    TOKENS_CHANGED,
];

/// `initializationOptions` of `initialize`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InitializationOptions {
    /// An ELITEA origin, or `sandbox`; default: the server `login` remembered.
    pub server: Option<String>,
    /// Use the embedded sandbox.
    pub sandbox: bool,
    pub insecure_http: bool,
    /// The notifications the client renders itself (`elitea/tokenExpiring`,
    /// `elitea/tokensChanged`). A client that does not list `elitea/tokenExpiring` gets
    /// `window/showMessageRequest` reminders instead.
    pub notifications: Vec<String>,
}

/// Names a token: by uuid, or by name (refused when several share it).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRef {
    pub name: Option<String>,
    pub uuid: Option<Uuid>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct StatusParams {}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusResult {
    pub server: String,
    pub sandbox: bool,
    pub secret_store: String,
    pub secret_store_is_fallback: bool,
    /// `ok`, or the error kind that stopped the check.
    pub credential: String,
    pub problem: Option<ErrorData>,
    pub tokens: Option<StatusCounts>,
    pub workspace_folders: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorData {
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginParams {
    pub server: String,
    pub token: String,
    #[serde(default)]
    pub insecure_http: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginResult {
    pub server: String,
    pub user: Option<String>,
    pub personal_project_id: i64,
    pub secret_store: String,
    pub secret_store_is_fallback: bool,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ListTokensParams {
    pub search: Option<String>,
    pub sort: Option<SortKey>,
    pub direction: Option<SortDirection>,
    /// 1-based.
    pub page: Option<usize>,
    /// 5, 10, 50 or 100.
    pub page_size: Option<u32>,
    /// Ask the server even when the daemon's copy is fresh.
    pub refresh: bool,
}

/// A row of the token table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRow {
    pub uuid: Uuid,
    pub name: String,
    /// `...` and the last 4 characters.
    pub value: String,
    pub expires: Option<DateTime<Utc>>,
    pub status: ExpiryStatus,
    pub label: String,
    /// Whether this machine holds the full value.
    pub stored: bool,
    /// Open workspace folders whose IDE settings use this token.
    pub used_in: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTokensResult {
    pub server: String,
    pub page: usize,
    pub pages: usize,
    pub page_size: usize,
    pub total: usize,
    /// True when the server could not be reached and the rows are the last known ones.
    pub stale: bool,
    pub fetched_at: Option<DateTime<Utc>>,
    pub tokens: Vec<TokenRow>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTokenParams {
    pub name: String,
    /// `never`, `45m`, `12h`, `30d`, `2w`...; default 30 days.
    #[serde(default)]
    pub expires: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTokenResult {
    pub token: TokenRow,
    /// The full value, shown this once.
    pub value: String,
    /// Where the value is kept, or `null` with `storeProblem`.
    pub stored_in: Option<String>,
    pub store_problem: Option<String>,
}

/// How IDE settings are made; each overrides `config.toml`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProfileParams {
    pub flavor: Option<Flavor>,
    pub project: Option<i64>,
    pub model: Option<String>,
    pub display_type: Option<DisplayType>,
    pub verify_ssl: Option<bool>,
    pub integration_uid: Option<String>,
    pub integration_name: Option<String>,
}

impl ProfileParams {
    pub fn choices(&self) -> ProfileChoices {
        ProfileChoices {
            project_id: self.project,
            model: self.model.clone(),
            integration_uid: self.integration_uid.clone(),
            integration_name: self.integration_name.clone(),
            display_type: self.display_type,
            verify_ssl: self.verify_ssl,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdeParam {
    Vscode,
    Jetbrains,
    All,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewSettingsParams {
    #[serde(flatten)]
    pub token: TokenRef,
    pub ide: IdeParam,
    /// Merge into this folder's files; default: the first workspace folder.
    #[serde(default)]
    pub workspace: Option<String>,
    #[serde(flatten)]
    pub profile: ProfileParams,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsFile {
    /// Absolute path.
    pub file_name: String,
    /// Relative to the workspace, with `/`.
    pub relative: String,
    /// `jsonc` or `xml`.
    pub language_id: String,
    pub content: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewSettingsResult {
    pub token_known: bool,
    pub note: Option<String>,
    pub files: Vec<SettingsFile>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplySettingsParams {
    #[serde(flatten)]
    pub token: TokenRef,
    pub ide: IdeParam,
    /// Default: the first workspace folder.
    #[serde(default)]
    pub workspace: Option<String>,
    #[serde(default)]
    pub gitignore: bool,
    #[serde(flatten)]
    pub profile: ProfileParams,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WrittenFileResult {
    pub file_name: String,
    pub relative: String,
    /// `created`, `updated` or `unchanged`.
    pub outcome: String,
    pub holds_token: bool,
    /// `tracked`, `not_ignored`, `ignored`, `no_repository` or `git_missing`.
    pub git: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplySettingsResult {
    pub workspace: String,
    pub files: Vec<WrittenFileResult>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteTokenParams {
    #[serde(flatten)]
    pub token: TokenRef,
    /// The token's exact name, as the user typed it to confirm.
    pub confirm: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteTokenResult {
    pub deleted: TokenRow,
    pub still_used_in: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotateTokenParams {
    #[serde(flatten)]
    pub token: TokenRef,
    #[serde(default)]
    pub expires: Option<String>,
    /// Progress is reported with `$/progress` under this token, when given.
    #[serde(default)]
    pub work_done_token: Option<NumberOrString>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotateTokenResult {
    /// `rotated`, `old_token_kept` or `rolled_back`.
    pub outcome: String,
    pub old_name: String,
    pub old_uuid: Option<Uuid>,
    pub new: Option<TokenRow>,
    pub updated_files: Vec<String>,
    pub credential_replaced: bool,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnoozeReminderParams {
    pub uuid: Uuid,
    /// Default: 24 hours from now ("Remind me tomorrow").
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnoozeReminderResult {
    pub uuid: Uuid,
    pub until: DateTime<Utc>,
}

/// Server → client: a token an open workspace uses is about to lapse, or has.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenExpiringParams {
    pub uuid: Uuid,
    pub name: String,
    pub expires: DateTime<Utc>,
    pub label: String,
    /// `info`, `warning` or `error`.
    pub severity: String,
    /// `seven_days`, `one_day`, `one_hour`, `short_lifetime` or `expired`.
    pub kind: String,
    /// What the client may offer: `rotate`, `snooze`.
    pub actions: Vec<String>,
    /// Open workspace folders that use the token.
    pub workspaces: Vec<String>,
}

/// Server → client: the token list or where tokens are used changed (a hand edit of a settings
/// file, another daemon's rotation); clients refresh what they show.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokensChangedParams {
    /// `settings_edited`, `state_changed`, `config_changed`, `created`, `deleted`, `rotated`,
    /// `applied` or `login`.
    pub reason: String,
}

pub enum TokenExpiring {}
impl tower_lsp_server::ls_types::notification::Notification for TokenExpiring {
    type Params = TokenExpiringParams;
    const METHOD: &'static str = TOKEN_EXPIRING;
}

pub enum TokensChanged {}
impl tower_lsp_server::ls_types::notification::Notification for TokensChanged {
    type Params = TokensChangedParams;
    const METHOD: &'static str = TOKENS_CHANGED;
}
