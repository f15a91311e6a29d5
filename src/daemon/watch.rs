//! Watching files: the open workspaces' IDE settings and the tool's own state. A hand edit of a
//! settings file, or another daemon's rotation, makes the daemon re-read, plan its reminders
//! again and tell the client. Bursts are debounced; a file that does not parse yet is skipped
//! until its next change. notify is used directly rather than through notify-debouncer-mini,
//! whose events carry no kind: opening a file is not a change, and only the kind tells.

use super::backend::Shared;
use crate::reminders::ReminderLog;
use crate::session::Session;
use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// Events closer together than this are one change.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Whether an event can mean new content. Opening and reading are not changes: inotify reports
/// every open of a watched file, so counting them would make the daemon's own read of the
/// state after a change look like another change, and it would re-read forever. A close after
/// writing is kept (an editor writing in place ends with one).
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

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

/// Starts watching, once; the watcher lives as long as the daemon. Nothing waits for it: the
/// files are read again once the watches are in place (debounced like any change, so the
/// daemon's own write under way is not mistaken for another's), so a change made between the
/// session's first read and then is told too.
pub async fn ensure(shared: Arc<Shared>, session: Arc<Session>) {
    shared
        .watching
        .get_or_init(|| async {
            let state_dir = session.service.state().dir().to_path_buf();
            let config_dir = session.paths.config_dir.clone();
            let folders = shared.folders();
            // notify adds each watch through its own thread and waits for it: on the
            // blocking pool, so the runtime goes on answering meanwhile (and with the first
            // fetch, when the server was too slow to wait for).
            let set_up = tokio::task::spawn_blocking(move || watch(folders, state_dir, config_dir)).await;
            match set_up {
                Ok(Some((watcher, changes))) => {
                    tokio::spawn(follow(Arc::clone(&shared), watcher, changes));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("cannot watch files: {e}"),
            }
        })
        .await;
}

/// Creates the watcher and its watches; `None` when files cannot be watched at all.
fn watch(
    folders: Vec<PathBuf>,
    state_dir: PathBuf,
    config_dir: PathBuf,
) -> Option<(RecommendedWatcher, UnboundedReceiver<bool>)> {
    if let Err(e) = std::fs::create_dir_all(&state_dir) {
        tracing::warn!("cannot create the state directory to watch it: {e}");
    }
    // `true` when the config changed (a login or a setting from the terminal).
    let (events, changes) = tokio::sync::mpsc::unbounded_channel::<bool>();
    let events_for_start = events.clone();
    let config_for_events = config_dir.clone();
    // Not a change to re-read the state for (4 MB with 10,000 tokens): see `ReminderLog::path`.
    let reminder_log = ReminderLog::new(&state_dir).path().to_path_buf();
    let watcher = notify::recommended_watcher(move |result: notify::Result<Event>| match result {
        Ok(event) => {
            if !is_change(&event.kind) {
                return;
            }
            // Temporary files of atomic writes, lock files and the reminder log are not changes.
            let changed: Vec<_> = event
                .paths
                .iter()
                .filter(|path| {
                    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                    !(name.ends_with(".tmp") || name.ends_with(".lock") || **path == reminder_log)
                })
                .collect();
            if !changed.is_empty() {
                let _ = events.send(changed.iter().any(|p| p.starts_with(&config_for_events)));
            }
        }
        Err(e) => tracing::warn!("file watching failed: {e}"),
    });
    let mut watcher = match watcher {
        Ok(watcher) => watcher,
        Err(e) => {
            tracing::warn!("cannot watch files; changes made outside the daemon are seen on restart: {e}");
            return None;
        }
    };
    let _ = std::fs::create_dir_all(&config_dir);
    let mut watched = targets(&folders, state_dir);
    watched.push(config_dir);
    for target in watched {
        if let Err(e) = watcher.watch(&target, RecursiveMode::NonRecursive) {
            tracing::warn!("cannot watch {}: {e}", target.display());
        }
    }
    // With the watches in place, the files are read again once, as after a change, for what
    // changed before (the configuration is only read again on its next change).
    let _ = events_for_start.send(false);
    Some((watcher, changes))
}

/// Re-reads what changed, debounced, and tells the client; owns the watcher.
async fn follow(shared: Arc<Shared>, watcher: RecommendedWatcher, mut changes: UnboundedReceiver<bool>) {
    let _watching = watcher;
    while let Some(first) = changes.recv().await {
        // A burst (an editor's save, an atomic rename, another daemon's rotation) is one
        // change: wait for it to settle, then take everything that came meanwhile.
        tokio::time::sleep(DEBOUNCE).await;
        let mut config_changed = first;
        while let Ok(more) = changes.try_recv() {
            config_changed |= more;
        }
        reread(&shared, config_changed).await;
    }
}

/// Reads the state and the workspaces' settings again and tells the client what changed.
async fn reread(shared: &Shared, config_changed: bool) {
    let Ok(session) = shared.session().await else {
        return;
    };
    let reloaded = shared.reload_state(&session);
    // The old state and the file's text are freed: give the pages back before waiting.
    crate::memory::release_free();
    // The daemon's own writes were already taken into account: nothing to tell.
    let reason = if reloaded.in_use {
        "settings_edited"
    } else if reloaded.state {
        "state_changed"
    } else if config_changed {
        // The server and credential in use change with `elitea/login` or a restart;
        // clients refresh what they show.
        "config_changed"
    } else {
        return;
    };
    tracing::debug!(reason, "files changed");
    shared.invalidate();
    shared.notify_changed(reason).await;
}
