//! Expiry reminders: a task that sleeps until the next deadline (never polls), sends what is
//! due, and plans again when woken (a snooze, a file change, a mutation).

use super::backend::{Shared, run_rotation};
use super::ext::{self, TOKEN_EXPIRING, TokenExpiringParams};
use crate::domain::{Reminder, ReminderKind, Secret, expiry_label, plan};
use crate::error::Result;
use crate::ide::{files::VSCODE_TOKEN_KEYS, vscode};
use crate::reminders::{ByUuid, Created, ReminderLog, SortedByUuid, created_records, watched_tokens};
use crate::service::{RotateOptions, Selector};
use crate::session::Session;
use crate::state::{Ide, StateData};
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tower_lsp_server::ls_types::{MessageActionItem, MessageType};
use uuid::Uuid;

/// How long a `window/showMessageRequest` may stay unanswered before the daemon stops waiting.
const PROMPT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const ROTATE_NOW: &str = "Rotate now";
const REMIND_TOMORROW: &str = "Remind me tomorrow";

/// A token the open workspaces use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InUse {
    /// The folders that use it, sorted; each folder's name is one allocation shared by all
    /// its tokens.
    pub folders: Box<[Arc<str>]>,
    /// The tool's record of it, when the tool created it: what reminders need when the server
    /// cannot be reached.
    pub created: Option<Created>,
}

impl InUse {
    pub fn folder_names(&self) -> Vec<String> {
        self.folders.iter().map(|f| f.to_string()).collect()
    }
}

/// Whether two scans found the same tokens in the same folders (the records aside).
pub fn same_folders(a: &SortedByUuid<InUse>, b: &SortedByUuid<InUse>) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((a_uuid, a_used), (b_uuid, b_used))| a_uuid == b_uuid && a_used.folders == b_used.folders)
}

/// Which tokens the open workspaces use: the token in each `.vscode/settings.json` (known by
/// its uuid claim, so a hand edit counts), and the JetBrains workspaces recorded in the state;
/// with the state's record of each, so the daemon keeps what reminders need and not the state.
pub fn scan_in_use(folders: &[PathBuf], state: &StateData, server: &str) -> SortedByUuid<InUse> {
    let names: Vec<Arc<str>> = folders
        .iter()
        .map(|f| Arc::from(f.display().to_string()))
        .collect();
    let mut in_use: ByUuid<Vec<Arc<str>>> = ByUuid::default();
    for (folder, name) in folders.iter().zip(&names) {
        let path = folder.join(".vscode/settings.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        // A file being written or edited may not parse yet; it is read again on its next change.
        let Ok(values) = vscode::read_keys(&text, &VSCODE_TOKEN_KEYS) else {
            continue;
        };
        for (_, value) in values {
            if let Some(uuid) = value.as_str().and_then(|v| Secret::new(v).token_uuid()) {
                in_use.entry(uuid).or_default().push(Arc::clone(name));
            }
        }
    }
    for record in &state.workspaces {
        if record.server == server
            && record.ide == Ide::Jetbrains
            && let Some(at) = folders.iter().position(|f| f == &record.workspace)
        {
            in_use
                .entry(record.uuid)
                .or_default()
                .push(Arc::clone(&names[at]));
        }
    }
    let mut created = created_records(state, server, |uuid| in_use.contains_key(&uuid));
    in_use
        .into_iter()
        .map(|(uuid, mut folders)| {
            folders.sort();
            folders.dedup();
            let used = InUse {
                folders: folders.into_boxed_slice(),
                created: created.remove(&uuid),
            };
            (uuid, used)
        })
        .collect()
}

pub fn snooze(session: &Session, uuid: Uuid, until: DateTime<Utc>) -> Result<()> {
    ReminderLog::new(session.service.state().dir()).snooze(uuid, until)
}

/// Starts the scheduler; it runs until the daemon exits.
pub fn start(shared: Arc<Shared>) {
    tokio::spawn(async move {
        loop {
            let next = tick(&shared).await;
            let deadline = match (next, shared.session().await) {
                (Some(at), Ok(session)) => session.service.sleep_until(at),
                // Nothing to wait for: sleep until something changes.
                _ => Box::pin(std::future::pending()),
            };
            // Freed memory (a big list parsed, the state read again) goes back to the system
            // before the daemon sleeps.
            crate::memory::release_free();
            tokio::select! {
                _ = deadline => {}
                _ = shared.reschedule.notified() => {}
            }
        }
    });
}

/// Sends the reminders that are due; returns when the next one is.
async fn tick(shared: &Arc<Shared>) -> Option<DateTime<Utc>> {
    let session = shared.session().await.ok()?;
    // The expiry of tokens made elsewhere comes from the server's list (memory when fresh);
    // with no token in use there is nothing to ask the server about.
    let nothing_in_use = shared
        .memory
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .in_use
        .is_empty();
    if nothing_in_use {
        return None;
    }
    if let Err(e) = shared.tokens(&session, false).await {
        tracing::debug!("token list unavailable, planning from local state: {}", e.message);
    }
    let log = ReminderLog::new(session.service.state().dir());
    let data = match log.load() {
        Ok(data) => data,
        Err(e) => {
            tracing::warn!("cannot read the reminder log: {}", e.message);
            return None;
        }
    };
    let now = session.service.now();
    // The tokens to watch (those in use whose expiry is known) stream from memory into the plan.
    let planned = {
        let memory = shared.memory.read().unwrap_or_else(|e| e.into_inner());
        let listed = memory.tokens.as_ref().map(|(tokens, _)| &**tokens);
        plan(
            watched_tokens(&memory.in_use, |used| used.created.as_ref(), listed),
            now,
            |uuid, kind| data.is_shown(uuid, kind),
            |uuid| data.snoozed_until(uuid),
        )
    };
    let claimed = match log.claim(&planned.keys_to_claim()) {
        Ok(claimed) => claimed,
        Err(e) => {
            tracing::warn!("cannot update the reminder log: {}", e.message);
            return planned.next;
        }
    };
    for reminder in planned.due.iter().filter(|r| claimed.contains(&r.key())) {
        send(shared, &session, reminder).await;
    }
    planned.next
}

fn message(reminder: &Reminder, label: &str) -> String {
    match reminder.kind {
        ReminderKind::Expired => format!(
            "The ELITEA token `{}` has expired; the IDE can no longer reach ELITEA. Rotate it to get a new one.",
            reminder.name
        ),
        _ => format!(
            "The ELITEA token `{}` expires {label}. Rotate it now to keep the IDE working.",
            reminder.name
        ),
    }
}

async fn send(shared: &Arc<Shared>, session: &Arc<Session>, reminder: &Reminder) {
    let now = session.service.now();
    let label = expiry_label(Some(reminder.expires), now).to_lowercase();
    let workspaces = shared
        .memory
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .in_use
        .get(&reminder.uuid)
        .map(InUse::folder_names)
        .unwrap_or_default();
    tracing::info!(uuid = %reminder.uuid, kind = reminder.kind.as_str(), "reminder");
    if shared.wants(TOKEN_EXPIRING) {
        shared
            .client
            .send_notification::<ext::TokenExpiring>(TokenExpiringParams {
                uuid: reminder.uuid,
                name: reminder.name.clone(),
                expires: reminder.expires,
                label: expiry_label(Some(reminder.expires), now),
                severity: reminder.severity().as_str().to_string(),
                kind: reminder.kind.as_str().to_string(),
                actions: vec!["rotate".into(), "snooze".into()],
                workspaces,
            })
            .await;
        return;
    }
    // A generic LSP client: a message with two buttons, from a task of its own with a
    // timeout, so no handler ever waits on the user.
    let shared = Arc::clone(shared);
    let session = Arc::clone(session);
    let reminder = reminder.clone();
    tokio::spawn(async move {
        let typ = match reminder.kind {
            ReminderKind::Expired => MessageType::ERROR,
            ReminderKind::SevenDays => MessageType::INFO,
            _ => MessageType::WARNING,
        };
        let actions = vec![
            MessageActionItem {
                title: ROTATE_NOW.into(),
                properties: Default::default(),
            },
            MessageActionItem {
                title: REMIND_TOMORROW.into(),
                properties: Default::default(),
            },
        ];
        let asked = shared
            .client
            .show_message_request(typ, message(&reminder, &label), Some(actions));
        let choice = match tokio::time::timeout(PROMPT_TIMEOUT, asked).await {
            Ok(Ok(Some(item))) => item.title,
            _ => return,
        };
        if choice == ROTATE_NOW {
            let selector = Selector::Uuid(reminder.uuid);
            match run_rotation(&shared, &session, selector, RotateOptions::default(), None).await {
                Ok(report) => {
                    let name = report.new.map(|n| n.name).unwrap_or_default();
                    shared
                        .client
                        .show_message(
                            MessageType::INFO,
                            format!("Rotated `{}`: now `{name}`.", reminder.name),
                        )
                        .await;
                }
                Err(e) => {
                    shared
                        .client
                        .show_message(MessageType::ERROR, format!("Rotation failed: {}", e.message))
                        .await;
                }
            }
        } else if choice == REMIND_TOMORROW {
            let until = session.service.now() + chrono::Duration::hours(24);
            if let Err(e) = snooze(&session, reminder.uuid, until) {
                tracing::warn!("cannot snooze: {}", e.message);
            }
            shared.reschedule.notify_one();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Flavor;
    use crate::state::{TokenRecord, WorkspaceRecord};
    use base64::Engine;
    use std::path::Path;

    const SERVER: &str = "https://elitea.example.com";

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn token_with_claim(uuid: Uuid) -> String {
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!(r#"{{"uuid":"{uuid}","expires":null}}"#));
        format!("eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.{claims}.signature")
    }

    fn record(n: u128, server: &str, name: &str, days: i64) -> TokenRecord {
        let at = chrono::Utc::now();
        TokenRecord {
            server: server.into(),
            uuid: id(n),
            name: name.into(),
            period: "30 days".into(),
            created_at: at,
            expires: Some(at + chrono::Duration::days(days)),
        }
    }

    fn applied(n: u128, server: &str, workspace: &Path, ide: Ide) -> WorkspaceRecord {
        WorkspaceRecord {
            server: server.into(),
            uuid: id(n),
            name: format!("token-{n}"),
            workspace: workspace.to_path_buf(),
            ide,
            flavor: Flavor::Current,
            applied_at: chrono::Utc::now(),
        }
    }

    /// Two open folders: `a` names token 1 in its settings.json; the state records token 2 in
    /// both for JetBrains, token 3 in a folder that is not open, token 4 on another server and
    /// token 5 for VS Code (read from the files, not the records).
    #[test]
    fn the_scan_keeps_tokens_in_use_with_shared_folder_names_and_their_records() {
        let dir = tempfile::tempdir().unwrap();
        let [a, b, closed] = ["a", "b", "closed"].map(|n| dir.path().join(n));
        std::fs::create_dir_all(a.join(".vscode")).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let settings = format!(
            "{{\n  // the user's comment\n  \"eliteacode.LLMAuthToken\": \"{}\"\n}}\n",
            token_with_claim(id(1))
        );
        std::fs::write(a.join(".vscode/settings.json"), settings).unwrap();
        let mut state = StateData {
            tokens: vec![
                record(1, SERVER, "one", 10),
                record(2, SERVER, "two", 20),
                record(2, SERVER, "two-later-duplicate", 99),
                record(3, SERVER, "three", 30),
                record(1, "https://other.example.com", "one-elsewhere", 40),
            ],
            workspaces: vec![
                applied(2, SERVER, &b, Ide::Jetbrains),
                applied(2, SERVER, &a, Ide::Jetbrains),
                applied(3, SERVER, &closed, Ide::Jetbrains),
                applied(4, "https://other.example.com", &a, Ide::Jetbrains),
                applied(5, SERVER, &b, Ide::Vscode),
            ],
        };
        let folders = vec![a.clone(), b.clone()];
        let scan = scan_in_use(&folders, &state, SERVER);

        let uuids: Vec<Uuid> = scan.iter().map(|(uuid, _)| *uuid).collect();
        assert_eq!(uuids, [id(1), id(2)]);
        let used = |scan: &SortedByUuid<InUse>, n: u128| scan.get(&id(n)).cloned().expect("in use");
        let names = |n: u128| used(&scan, n).folder_names();
        assert_eq!(names(1), [a.display().to_string()]);
        assert_eq!(names(2), [a.display().to_string(), b.display().to_string()]);
        assert!(
            Arc::ptr_eq(&used(&scan, 1).folders[0], &used(&scan, 2).folders[0]),
            "one string per folder"
        );
        let created = |n: u128| used(&scan, n).created.map(|c| c.name.to_string());
        assert_eq!(created(1).as_deref(), Some("one"), "this server's record");
        assert_eq!(created(2).as_deref(), Some("two"), "the first record wins");

        // A record changing is not a change of folders; a folder closing is.
        state.tokens[0].expires = None;
        let rescan = scan_in_use(&folders, &state, SERVER);
        assert!(same_folders(&scan, &rescan));
        assert_ne!(used(&scan, 1).created, used(&rescan, 1).created);
        let closed_b = scan_in_use(&folders[..1], &state, SERVER);
        assert!(!same_folders(&scan, &closed_b));
        assert!(same_folders(&SortedByUuid::default(), &SortedByUuid::default()));
    }
}
