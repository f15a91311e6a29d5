//! Watching files: the open workspaces' IDE settings and the tool's own state. A hand edit of a
//! settings file, or another daemon's rotation, makes the daemon re-read, plan its reminders
//! again and tell the client. Bursts are debounced; a file that does not parse yet is skipped
//! until its next change.

use super::backend::Shared;
use notify::RecursiveMode;
use notify_debouncer_mini::{DebounceEventResult, new_debouncer};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Events closer together than this are one change.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// What to watch: each folder's `.vscode` and `.idea` (or the folder itself until they exist,
/// to see them appear), and the state directory.
fn targets(folders: &[PathBuf], state_dir: PathBuf) -> Vec<PathBuf> {
    let mut targets = Vec::new();
    for folder in folders {
        for sub in [".vscode", ".idea"] {
            let dir = folder.join(sub);
            targets.push(if dir.is_dir() { dir } else { folder.clone() });
        }
    }
    targets.push(state_dir);
    targets.sort();
    targets.dedup();
    targets
}

/// Starts watching; the watcher lives as long as the daemon.
pub async fn start(shared: Arc<Shared>) {
    let Ok(session) = shared.session().await else {
        return;
    };
    let state_dir = session.service.state().dir().to_path_buf();
    let config_dir = session.paths.config_dir.clone();
    if let Err(e) = std::fs::create_dir_all(&state_dir) {
        tracing::warn!("cannot create the state directory to watch it: {e}");
    }
    // `true` when the config changed (a login or a setting from the terminal).
    let (events, mut changes) = tokio::sync::mpsc::unbounded_channel::<bool>();
    let config_for_events = config_dir.clone();
    let debouncer = new_debouncer(DEBOUNCE, move |result: DebounceEventResult| {
        let relevant = match result {
            Ok(events) => {
                // Temporary files of atomic writes and lock files are not changes.
                let changed: Vec<_> = events
                    .iter()
                    .filter(|event| {
                        let name = event
                            .path
                            .file_name()
                            .and_then(|n| n.to_str())
                            .unwrap_or_default();
                        !(name.ends_with(".tmp") || name.ends_with(".lock"))
                    })
                    .collect();
                (!changed.is_empty()).then(|| changed.iter().any(|e| e.path.starts_with(&config_for_events)))
            }
            Err(e) => {
                tracing::warn!("file watching failed: {e}");
                None
            }
        };
        if let Some(config) = relevant {
            let _ = events.send(config);
        }
    });
    let mut debouncer = match debouncer {
        Ok(debouncer) => debouncer,
        Err(e) => {
            tracing::warn!("cannot watch files; changes made outside the daemon are seen on restart: {e}");
            return;
        }
    };
    let _ = std::fs::create_dir_all(&config_dir);
    let mut watched = targets(&shared.folders(), state_dir);
    watched.push(config_dir);
    for target in watched {
        if let Err(e) = debouncer.watcher().watch(&target, RecursiveMode::NonRecursive) {
            tracing::warn!("cannot watch {}: {e}", target.display());
        }
    }
    tokio::spawn(async move {
        let _watching = debouncer;
        while let Some(config_changed) = changes.recv().await {
            let Ok(session) = shared.session().await else {
                continue;
            };
            let snapshot = |shared: &Shared| {
                let memory = shared.memory.read().unwrap_or_else(|e| e.into_inner());
                (memory.state.clone(), memory.in_use.clone())
            };
            let (state_before, in_use_before) = snapshot(&shared);
            shared.reload_state(&session);
            let (state_after, in_use_after) = snapshot(&shared);
            // The daemon's own writes were already taken into account: nothing to tell.
            let reason = if in_use_before != in_use_after {
                "settings_edited"
            } else if state_before != state_after {
                "state_changed"
            } else if config_changed {
                // The server and credential in use change with `elitea/login` or a restart;
                // clients refresh what they show.
                "config_changed"
            } else {
                continue;
            };
            tracing::debug!(reason, "files changed");
            shared.invalidate();
            shared.notify_changed(reason).await;
        }
    });
}
