//! The language-server side: `initialize`, `shutdown`, and one handler per `elitea/*` request.
//! Handlers translate between the protocol (`ext`) and the service; mutations go through the
//! actor; reads are answered from the daemon's memory when it can.

use super::actor::Actor;
use super::ext::{self, *};
use super::prefetch::Prefetch;
use super::scheduler::InUse;
use crate::domain::{Expiration, ListedTokens, PageSize, Query, Secret, Token};
use crate::error::{Error, ErrorKind};
use crate::reminders::SortedByUuid;
use crate::service::{ApplyRequest, PreviewRequest, RotateOptions, RotationStep, Selector};
use crate::session::{Connection, CredentialSource, Session};
use crate::state::Ide;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use tower_lsp_server::jsonrpc::{self, ErrorCode};
use tower_lsp_server::ls_types::NumberOrString;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer};
use uuid::Uuid;

/// The application error code every `elitea/*` failure carries; `data.kind` says which.
pub const APPLICATION_ERROR: i64 = -32001;

/// The server's list as the daemon keeps it: in the server's order (nothing waits for a sort;
/// each answer pages it, each plan picks the tokens in use out of it), shared by every answer
/// made from it.
pub type TokenList = Arc<ListedTokens>;

/// How long the work put off until the first fetch of the list is done (see
/// `Backend::warm_up_after_answer`) waits for it before it starts anyway.
const SETTLE_AT_MOST: std::time::Duration = std::time::Duration::from_secs(1);

/// How long after the first fetch the put-off work starts: long enough for a call that waited
/// for the list to be answered first (its answer crosses several tasks, so a yield is not
/// enough). Starting the watcher's threads holds the runtime's thread for a while (0.1 to
/// 0.2 ms), and the end of the list's thread interrupts it (see `Prefetch::release`).
const SETTLE_AFTER_FETCH: std::time::Duration = std::time::Duration::from_millis(20);

/// How long the token list is answered from memory before the server is asked again.
const LIST_MAX_AGE: chrono::Duration = chrono::Duration::minutes(5);

/// Turns a domain error into a JSON-RPC error with a stable `data.kind`.
pub fn rpc_error(error: Error) -> jsonrpc::Error {
    jsonrpc::Error {
        code: ErrorCode::ServerError(APPLICATION_ERROR),
        message: error.message.clone().into(),
        data: serde_json::to_value(&error).ok(),
    }
}

fn invalid(message: impl Into<String>) -> jsonrpc::Error {
    rpc_error(Error::invalid(message))
}

/// What the daemon knows, shared by the handlers and its background tasks.
#[derive(Default)]
pub struct Memory {
    /// The last token list from the server, as it came, and when; shared, so a read costs no
    /// copy.
    pub tokens: Option<(TokenList, DateTime<Utc>)>,
    /// The list is known to be out of date (a mutation): ask the server next time, but keep
    /// it to answer from while the server cannot be reached.
    pub tokens_dirty: bool,
    /// Counts invalidations, so a fetch that was under way when the list went out of date
    /// does not mark its answer fresh.
    pub generation: u64,
    /// Fetches of the list finished so far, and how the last one failed, if it did, with the
    /// `generation` it started in: a caller that waited for a fetch answers with its failure
    /// rather than asking again at once, unless the list went out of date meanwhile (a login).
    pub fetches: u64,
    pub fetch_failed: Option<(u64, Error)>,
    /// Whether this machine holds each token's full value.
    pub stored: HashMap<Uuid, bool>,
    /// A digest of the tool's state as last read, to tell when it changes; the state itself
    /// is not kept (it can hold thousands of records), only what the daemon needs of it, below.
    pub state_fingerprint: Option<u64>,
    /// Tokens the open workspaces use: which folders use each, and the tool's record of it.
    pub in_use: SortedByUuid<InUse>,
}

/// What a reload of the state and the workspaces' settings changed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reloaded {
    /// Which tokens the open workspaces use.
    pub in_use: bool,
    /// The tool's state (tokens created, workspaces applied).
    pub state: bool,
}

pub struct Shared {
    pub client: Client,
    pub options: RwLock<InitializationOptions>,
    pub folders: RwLock<Vec<PathBuf>>,
    pub session: tokio::sync::RwLock<Option<Result<Arc<Session>, Error>>>,
    /// What `initialize` asked for, until the session opens: `initialize` answers at once and
    /// the session (credential, client, state) opens once that answer is written (the list
    /// may be on its way already, see `prefetch`).
    pub pending: std::sync::Mutex<Option<Connection>>,
    /// The list fetched as the process started (see `prefetch`), while `initialize` has not
    /// ruled it out; the first fetch takes it.
    pub prefetch: std::sync::Mutex<Option<Prefetch>>,
    pub memory: RwLock<Memory>,
    pub actor: Actor,
    /// Wakes the reminder scheduler to plan again.
    pub reschedule: tokio::sync::Notify,
    /// Held while the token list is fetched: callers that arrive meanwhile (the fetch at
    /// start, a `listTokens`, the scheduler) wait for that answer instead of asking again.
    pub fetching: tokio::sync::Mutex<()>,
    /// Set once the files are watched (see `watch::ensure`).
    pub watching: tokio::sync::OnceCell<()>,
    /// Turns true once the `initialize` answer has been written (see `transport::run`).
    pub initialize_answered: tokio::sync::watch::Receiver<bool>,
}

impl Shared {
    /// The open session, opened by the first caller.
    pub async fn session(&self) -> Result<Arc<Session>, jsonrpc::Error> {
        if let Some(opened) = &*self.session.read().await {
            return Self::answer(opened);
        }
        // The first caller opens it; the others wait on the lock and find it open.
        let mut slot = self.session.write().await;
        if slot.is_none() {
            // Cloned, not taken: a caller cancelled while it opens must leave it for the next.
            let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let Some(connection) = pending else {
                return Err(invalid("the daemon is not initialized yet"));
            };
            // What the list's thread read for the same connection stands in for reading the
            // files again (`initialize` dropped the prefetch if it asked for another one).
            let resolved = self
                .prefetch
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .and_then(Prefetch::take_resolved);
            let opened = match resolved {
                Some(resolved) => Session::from_resolved(resolved, &connection),
                None => Session::open(&connection, CredentialSource::Resolve).await,
            }
            .map(Arc::new);
            match &opened {
                Ok(session) => {
                    self.reload_state(session);
                }
                Err(e) => tracing::warn!("not connected: {}", e.message),
            }
            *slot = Some(opened);
            self.pending.lock().unwrap_or_else(|e| e.into_inner()).take();
        }
        match &*slot {
            Some(opened) => Self::answer(opened),
            None => Err(invalid("the daemon is not initialized yet")),
        }
    }

    /// The list fetched as the process started, taken at most once.
    fn take_prefetched(&self) -> Option<super::prefetch::Prefetched> {
        self.prefetch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .and_then(|p| p.list.take())
    }

    fn answer(opened: &Result<Arc<Session>, Error>) -> Result<Arc<Session>, jsonrpc::Error> {
        match opened {
            Ok(session) => Ok(Arc::clone(session)),
            Err(error) => Err(rpc_error(error.clone())),
        }
    }

    pub fn folders(&self) -> Vec<PathBuf> {
        self.folders.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn memory(&self) -> std::sync::RwLockReadGuard<'_, Memory> {
        self.memory.read().unwrap_or_else(|e| e.into_inner())
    }

    fn memory_mut(&self) -> std::sync::RwLockWriteGuard<'_, Memory> {
        self.memory.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Re-reads the state and the open workspaces' settings (after a mutation, or when a file
    /// changed), so "which token is used where" is current.
    /// Returns what changed, compared in place (the state can be large; no copies).
    pub fn reload_state(&self, session: &Session) -> Reloaded {
        let state = match session.service.state().read() {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!("cannot read the state: {}", e.message);
                return Reloaded::default();
            }
        };
        let fingerprint = state.fingerprint();
        let in_use = super::scheduler::scan_in_use(&self.folders(), &state, session.service.server());
        // Freed before the lock is taken: the state is done with once scanned.
        drop(state);
        let mut memory = self.memory_mut();
        let reloaded = Reloaded {
            in_use: !super::scheduler::same_folders(&memory.in_use, &in_use),
            state: memory.state_fingerprint != Some(fingerprint),
        };
        memory.state_fingerprint = Some(fingerprint);
        memory.in_use = in_use;
        reloaded
    }

    /// After a create, delete or rotation, whatever its outcome: a failure may still have
    /// changed the server or the files on the way (a write whose answer was lost, a delete whose
    /// local clean-up failed), so the list is asked for again and the state read again.
    pub fn changes_attempted(&self, session: &Session) {
        self.invalidate();
        self.reload_state(session);
    }

    /// Forgets the token list so the next read asks the server.
    pub fn invalidate(&self) {
        // A list fetched at start is now out of date too.
        drop(self.take_prefetched());
        let mut memory = self.memory_mut();
        memory.tokens_dirty = true;
        memory.generation += 1;
        memory.stored.clear();
    }

    /// The token list: from memory when fresh, else from the server; the last known list,
    /// marked stale, when the server cannot be reached.
    pub async fn tokens(
        &self,
        session: &Session,
        refresh: bool,
    ) -> Result<(TokenList, DateTime<Utc>, bool), Error> {
        let answer_from_memory = |memory: &Memory| match &memory.tokens {
            Some((tokens, at))
                if !refresh && !memory.tokens_dirty && session.service.now() - *at < LIST_MAX_AGE =>
            {
                Some((Arc::clone(tokens), *at, false))
            }
            _ => None,
        };
        if let Some(answer) = answer_from_memory(&self.memory()) {
            return Ok(answer);
        }
        // One fetch at a time; whoever waited for it answers from what it brought, or with
        // its failure (a refresh asks again: what it waited for may have left before the
        // refresh was asked for).
        let fetches_before = self.memory().fetches;
        let _fetching = self.fetching.lock().await;
        if let Some(answer) = answer_from_memory(&self.memory()) {
            return Ok(answer);
        }
        let waited_for = {
            let memory = self.memory();
            match &memory.fetch_failed {
                Some((generation, error))
                    if !refresh && memory.fetches != fetches_before && *generation == memory.generation =>
                {
                    Some(error.clone())
                }
                _ => None,
            }
        };
        let outcome = match waited_for {
            Some(error) => Err(error),
            None => self.fetch(session, refresh).await,
        };
        match outcome {
            Ok(answer) => Ok(answer),
            Err(e)
                if matches!(
                    e.kind,
                    ErrorKind::Unreachable | ErrorKind::ServerError | ErrorKind::Protocol
                ) =>
            {
                match &self.memory().tokens {
                    Some((tokens, at)) => Ok((Arc::clone(tokens), *at, true)),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// One GET of the list, remembered: the list when it came, the failure when not. The
    /// first fetch takes the one started with the process instead, unless it is a refresh.
    async fn fetch(
        &self,
        session: &Session,
        refresh: bool,
    ) -> Result<(TokenList, DateTime<Utc>, bool), Error> {
        let generation = self.memory().generation;
        let prefetched = match self.take_prefetched() {
            Some(fetching) if !refresh => fetching.receive().await,
            _ => None,
        };
        let (fetched, now) = match prefetched {
            Some(fetched) => fetched,
            None => {
                let now = session.service.now();
                let listed = session.service.client().list_tokens().await;
                (listed.map(ListedTokens::from), now)
            }
        };
        let mut memory = self.memory_mut();
        memory.fetches += 1;
        match fetched {
            Ok(mut tokens) => {
                // Shrunk where it lies (a large part is its own mapping, which shrinks in
                // place) rather than copied into an `Arc<[Token]>`: a megabyte of fresh pages
                // for 10,000 tokens.
                tokens.shrink_to_fit();
                let tokens = Arc::new(tokens);
                memory.tokens = Some((Arc::clone(&tokens), now));
                memory.tokens_dirty = memory.generation != generation;
                memory.fetch_failed = None;
                Ok((tokens, now, false))
            }
            Err(e) => {
                let error = Error::from(e);
                memory.fetch_failed = Some((generation, error.clone()));
                Err(error)
            }
        }
    }

    /// Open workspace folders whose IDE files use the token.
    pub fn used_in(&self, uuid: Uuid) -> Vec<String> {
        self.memory()
            .in_use
            .get(&uuid)
            .map(InUse::folder_names)
            .unwrap_or_default()
    }

    /// Whether this machine holds each token's value, looked up once and then remembered.
    async fn stored(&self, session: &Session, uuids: &[Uuid]) -> HashMap<Uuid, bool> {
        let mut known: HashMap<Uuid, bool> = HashMap::new();
        let mut missing = Vec::new();
        {
            let memory = self.memory();
            for uuid in uuids {
                match memory.stored.get(uuid) {
                    Some(stored) => {
                        known.insert(*uuid, *stored);
                    }
                    None => missing.push(*uuid),
                }
            }
        }
        if !missing.is_empty() {
            let found = match session.service.are_stored(&missing).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::debug!("cannot tell which tokens are stored: {}", e.message);
                    vec![false; missing.len()]
                }
            };
            let mut memory = self.memory_mut();
            for (uuid, stored) in missing.into_iter().zip(found) {
                memory.stored.insert(uuid, stored);
                known.insert(uuid, stored);
            }
        }
        known
    }

    async fn rows(&self, session: &Session, tokens: &[&Token]) -> Vec<TokenRow> {
        let uuids: Vec<Uuid> = tokens.iter().map(|t| t.uuid).collect();
        let stored = self.stored(session, &uuids).await;
        let now = session.service.now();
        tokens
            .iter()
            .map(|t| {
                row(
                    t,
                    now,
                    stored.get(&t.uuid).copied().unwrap_or(false),
                    self.used_in(t.uuid),
                )
            })
            .collect()
    }

    pub async fn notify_changed(&self, reason: &str) {
        self.reschedule.notify_one();
        if self.wants(TOKENS_CHANGED) {
            self.client
                .send_notification::<ext::TokensChanged>(TokensChangedParams {
                    reason: reason.to_string(),
                })
                .await;
        }
    }

    /// Whether the client declared it renders this notification itself.
    pub fn wants(&self, method: &str) -> bool {
        self.options
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .notifications
            .iter()
            .any(|m| m == method)
    }
}

pub fn row(token: &Token, now: DateTime<Utc>, stored: bool, used_in: Vec<String>) -> TokenRow {
    let summary = token.summary(now);
    TokenRow {
        uuid: summary.uuid,
        name: summary.name,
        value: summary.value,
        expires: summary.expires,
        status: summary.status,
        label: summary.label,
        stored,
        used_in,
    }
}

fn selector(token: &TokenRef) -> Result<Selector, jsonrpc::Error> {
    match (&token.uuid, &token.name) {
        (Some(uuid), _) => Ok(Selector::Uuid(*uuid)),
        (None, Some(name)) if !name.is_empty() => Ok(Selector::Name(name.clone())),
        _ => Err(invalid("name the token with `name` or `uuid`")),
    }
}

fn parse_expires(text: &Option<String>) -> Result<Option<Expiration>, jsonrpc::Error> {
    text.as_deref()
        .map(|t| t.parse::<Expiration>().map_err(|e| invalid(e.to_string())))
        .transpose()
}

/// Runs a rotation through the actor, reporting its steps as `$/progress` under
/// `work_done_token` when one is given, and refreshes what the daemon knows afterwards.
pub async fn run_rotation(
    shared: &Arc<Shared>,
    session: &Arc<Session>,
    selector: Selector,
    options: RotateOptions,
    work_done_token: Option<NumberOrString>,
) -> Result<crate::service::RotationReport, Error> {
    // Steps travel to a task that reports them; the rotation itself never waits on the client.
    let (steps, mut step_queue) = tokio::sync::mpsc::unbounded_channel::<RotationStep>();
    let reporter = work_done_token.map(|token| {
        let client = shared.client.clone();
        tokio::spawn(async move {
            let progress = client.progress(token, "Rotating token").begin().await;
            while let Some(step) = step_queue.recv().await {
                progress.report(step.as_str()).await;
            }
            progress.finish().await;
        })
    });
    let worker = Arc::clone(session);
    let report = shared
        .actor
        .run(async move {
            let mut on_step = move |step: RotationStep| {
                let _ = steps.send(step);
                ControlFlow::Continue(())
            };
            worker.service.rotate(&selector, &options, &mut on_step).await
        })
        .await
        .ok_or_else(|| Error::new(ErrorKind::Local, "the daemon is shutting down"))?;
    if let Some(reporter) = reporter {
        let _ = reporter.await;
    }
    shared.changes_attempted(session);
    let report = report?;
    shared.notify_changed("rotated").await;
    Ok(report)
}

pub struct Backend {
    pub shared: Arc<Shared>,
    /// What `initialize` starts from before `initializationOptions` apply.
    defaults: Connection,
}

impl Backend {
    /// `initialize_answered` turns true once the transport has written the `initialize` answer.
    pub fn new(
        client: Client,
        defaults: Connection,
        initialize_answered: tokio::sync::watch::Receiver<bool>,
        prefetch: Option<Prefetch>,
    ) -> Backend {
        Backend {
            defaults,
            shared: Arc::new(Shared {
                client,
                options: RwLock::default(),
                folders: RwLock::default(),
                session: tokio::sync::RwLock::new(None),
                pending: std::sync::Mutex::new(None),
                prefetch: std::sync::Mutex::new(prefetch),
                memory: RwLock::default(),
                actor: Actor::spawn(),
                reschedule: tokio::sync::Notify::new(),
                fetching: tokio::sync::Mutex::new(()),
                watching: tokio::sync::OnceCell::new(),
                initialize_answered,
            }),
        }
    }

    fn workspace(&self, given: &Option<String>) -> Result<PathBuf, jsonrpc::Error> {
        match given {
            Some(path) => Ok(PathBuf::from(path)),
            None => self
                .shared
                .folders()
                .into_iter()
                .next()
                .ok_or_else(|| invalid("no workspace folder is open; pass `workspace`")),
        }
    }

    pub async fn status(&self, _: StatusParams) -> jsonrpc::Result<StatusResult> {
        let session = self.shared.session().await?;
        let report = session.service.status().await;
        Ok(StatusResult {
            server: report.server,
            sandbox: session.on_sandbox(),
            secret_store: report.secret_store.to_string(),
            secret_store_is_fallback: report.secret_store_is_fallback,
            credential: report.credential,
            problem: report.problem.map(|e| ErrorData {
                kind: e.kind.to_string(),
                message: e.message,
            }),
            tokens: report.tokens,
            workspace_folders: self
                .shared
                .folders()
                .iter()
                .map(|f| f.display().to_string())
                .collect(),
        })
    }

    pub async fn login(&self, params: LoginParams) -> jsonrpc::Result<LoginResult> {
        let shared = Arc::clone(&self.shared);
        let defaults = self.defaults.clone();
        let outcome = self
            .shared
            .actor
            .run(async move {
                let connection = Connection {
                    server: Some(params.server),
                    insecure_http: params.insecure_http,
                    token: None,
                    sandbox: false,
                    ..defaults
                };
                let session = Session::open(
                    &connection,
                    CredentialSource::Given(Secret::new(params.token.trim())),
                )
                .await?;
                let report = session.service.login(&session.paths.config_dir).await?;
                let session = Arc::new(session);
                shared.reload_state(&session);
                shared.pending.lock().unwrap_or_else(|e| e.into_inner()).take();
                *shared.session.write().await = Some(Ok(session));
                // Drops the list fetched at start too.
                shared.invalidate();
                // Another sign-in's list is no fallback for this one.
                shared.memory_mut().tokens = None;
                Ok::<_, Error>(report)
            })
            .await
            .ok_or_else(|| invalid("the daemon is shutting down"))?
            .map_err(rpc_error)?;
        // A daemon that started signed out watches files from its first login.
        if let Ok(session) = self.shared.session().await {
            tokio::spawn(super::watch::ensure(Arc::clone(&self.shared), session));
        }
        self.shared.notify_changed("login").await;
        Ok(LoginResult {
            server: outcome.server,
            user: outcome.user,
            personal_project_id: outcome.personal_project_id,
            secret_store: outcome.secret_store.to_string(),
            secret_store_is_fallback: outcome.secret_store_is_fallback,
        })
    }

    pub async fn list_tokens(&self, params: ListTokensParams) -> jsonrpc::Result<ListTokensResult> {
        let session = self.shared.session().await?;
        let page_size = match params.page_size {
            Some(n) => PageSize::try_from(n).map_err(invalid)?,
            None => PageSize::default(),
        };
        let query = Query {
            search: params.search,
            sort: params.sort.unwrap_or_default(),
            direction: params.direction.unwrap_or_default(),
            page: params.page.unwrap_or(1).max(1),
            page_size,
        };
        let (tokens, fetched_at, stale) = self
            .shared
            .tokens(&session, params.refresh)
            .await
            .map_err(rpc_error)?;
        let page = query.run(tokens.iter());
        let rows = self.shared.rows(&session, &page.rows).await;
        Ok(ListTokensResult {
            server: session.service.server().to_string(),
            page: page.page,
            pages: page.pages,
            page_size: page_size.get(),
            total: page.total,
            stale,
            fetched_at: Some(fetched_at),
            tokens: rows,
        })
    }

    pub async fn create_token(&self, params: CreateTokenParams) -> jsonrpc::Result<CreateTokenResult> {
        let session = self.shared.session().await?;
        let expiration = parse_expires(&params.expires)?.unwrap_or_default();
        let worker = Arc::clone(&session);
        let created = self
            .shared
            .actor
            .run(async move { worker.service.create(&params.name, expiration).await })
            .await
            .ok_or_else(|| invalid("the daemon is shutting down"))?;
        self.shared.changes_attempted(&session);
        let created = created.map_err(rpc_error)?;
        self.shared.notify_changed("created").await;
        let now = session.service.now();
        let (stored_in, store_problem) = match &created.stored_in {
            Ok(kind) => (Some(kind.to_string()), None),
            Err(problem) => (None, Some(problem.clone())),
        };
        Ok(CreateTokenResult {
            token: row(&created.token, now, stored_in.is_some(), Vec::new()),
            value: created.value.expose().to_string(),
            stored_in,
            store_problem,
        })
    }

    pub async fn preview_settings(
        &self,
        params: PreviewSettingsParams,
    ) -> jsonrpc::Result<PreviewSettingsResult> {
        let session = self.shared.session().await?;
        let ide = match params.ide {
            IdeParam::Vscode => Ide::Vscode,
            IdeParam::Jetbrains => Ide::Jetbrains,
            IdeParam::All => return Err(invalid("preview one IDE at a time: `vscode` or `jetbrains`")),
        };
        let workspace = params
            .workspace
            .clone()
            .map(PathBuf::from)
            .or_else(|| self.shared.folders().into_iter().next());
        let request = PreviewRequest {
            selector: selector(&params.token)?,
            ide,
            flavor: params.profile.flavor,
            workspace,
            choices: params.profile.choices(),
        };
        let preview = session.service.preview(&request).await.map_err(rpc_error)?;
        Ok(PreviewSettingsResult {
            token_known: preview.token_known,
            note: preview.note,
            files: preview
                .files
                .into_iter()
                .map(|f| SettingsFile {
                    file_name: f.path.display().to_string(),
                    relative: f.relative,
                    language_id: f.language.to_string(),
                    content: f.content,
                })
                .collect(),
        })
    }

    pub async fn apply_settings(&self, params: ApplySettingsParams) -> jsonrpc::Result<ApplySettingsResult> {
        let session = self.shared.session().await?;
        let request = ApplyRequest {
            selector: selector(&params.token)?,
            ides: match params.ide {
                IdeParam::Vscode => vec![Ide::Vscode],
                IdeParam::Jetbrains => vec![Ide::Jetbrains],
                IdeParam::All => vec![Ide::Vscode, Ide::Jetbrains],
            },
            workspace: self.workspace(&params.workspace)?,
            flavor: params.profile.flavor,
            choices: params.profile.choices(),
            gitignore: params.gitignore,
        };
        let worker = Arc::clone(&session);
        let report = self
            .shared
            .actor
            .run(async move { worker.service.apply(&request).await })
            .await
            .ok_or_else(|| invalid("the daemon is shutting down"))?
            .map_err(rpc_error)?;
        self.shared.reload_state(&session);
        self.shared.notify_changed("applied").await;
        Ok(ApplySettingsResult {
            workspace: report.workspace.display().to_string(),
            files: report
                .files
                .iter()
                .map(|f| WrittenFileResult {
                    file_name: f.path.display().to_string(),
                    relative: f.relative.clone(),
                    outcome: f.outcome.to_string(),
                    holds_token: f.holds_token,
                    git: serde_json::to_value(f.git)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                })
                .collect(),
            warnings: report.warnings,
        })
    }

    pub async fn delete_token(&self, params: DeleteTokenParams) -> jsonrpc::Result<DeleteTokenResult> {
        let session = self.shared.session().await?;
        let selector = selector(&params.token)?;
        let worker = Arc::clone(&session);
        let deleted = self
            .shared
            .actor
            .run(async move {
                let token = worker.service.find(&selector).await?;
                if params.confirm != token.name {
                    return Err(Error::invalid(format!(
                        "the confirmation `{}` does not match the token's name `{}`; nothing deleted",
                        params.confirm, token.name
                    )));
                }
                worker.service.delete(&token).await
            })
            .await
            .ok_or_else(|| invalid("the daemon is shutting down"))?;
        self.shared.changes_attempted(&session);
        let deleted = deleted.map_err(rpc_error)?;
        self.shared.notify_changed("deleted").await;
        let d = deleted.token;
        Ok(DeleteTokenResult {
            deleted: TokenRow {
                uuid: d.uuid,
                name: d.name,
                value: d.value,
                expires: d.expires,
                status: d.status,
                label: d.label,
                stored: false,
                used_in: Vec::new(),
            },
            still_used_in: deleted
                .still_used_in
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        })
    }

    pub async fn rotate_token(&self, params: RotateTokenParams) -> jsonrpc::Result<RotateTokenResult> {
        let session = self.shared.session().await?;
        let selector = selector(&params.token)?;
        let options = RotateOptions {
            expires: parse_expires(&params.expires)?,
        };
        let report = run_rotation(
            &self.shared,
            &session,
            selector,
            options,
            params.work_done_token.clone(),
        )
        .await
        .map_err(rpc_error)?;
        let now = session.service.now();
        Ok(RotateTokenResult {
            outcome: serde_json::to_value(report.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            old_name: report.old_name,
            old_uuid: report.old_uuid,
            new: report.new.map(|n| TokenRow {
                used_in: self.shared.used_in(n.uuid),
                uuid: n.uuid,
                name: n.name,
                value: n.value,
                expires: n.expires,
                status: crate::domain::expiry_status(n.expires, now),
                label: crate::domain::expiry_label(n.expires, now),
                stored: true,
            }),
            updated_files: report
                .updated_files
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            credential_replaced: report.credential_replaced,
            warnings: report.warnings,
        })
    }

    pub async fn snooze_reminder(
        &self,
        params: SnoozeReminderParams,
    ) -> jsonrpc::Result<SnoozeReminderResult> {
        let session = self.shared.session().await?;
        let until = params
            .until
            .unwrap_or_else(|| session.service.now() + chrono::Duration::hours(24));
        super::scheduler::snooze(&session, params.uuid, until).map_err(rpc_error)?;
        self.shared.reschedule.notify_one();
        Ok(SnoozeReminderResult {
            uuid: params.uuid,
            until,
        })
    }
}

impl Backend {
    /// Once the `initialize` answer is out, opens the session and fetches the token list (or
    /// takes the one fetched as the process started), so
    /// the work overlaps the client reading that answer, sending `initialized` and making its
    /// first call, which then finds the list in memory or on its way. It waits for the answer
    /// to be written, so it never delays it. The list is what a client's first view and the
    /// reminders both need; a failure is only logged here: the call that waited for it
    /// reports it. Work that would hold up that call waits until it has been answered: the
    /// watcher's threads start, and the thread that fetched the list at start ends.
    fn warm_up_after_answer(&self) {
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            let session = shared.warm_up().await;
            let prefetch = shared.prefetch.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(prefetch) = prefetch {
                prefetch.release();
            }
            if let Some(session) = session {
                tokio::spawn(super::watch::ensure(shared, session));
            }
        });
    }
}

impl Shared {
    /// See [`Backend::warm_up_after_answer`]: the open session, once the first fetch is done
    /// and a call that waited for it has been answered, or after a while when the server is
    /// slow to answer (changes made meanwhile are found when the watcher reads the files
    /// again). `None` when the daemon ends first or no session opens.
    async fn warm_up(self: &Arc<Self>) -> Option<Arc<Session>> {
        let mut answered = self.initialize_answered.clone();
        answered.wait_for(|written| *written).await.ok()?;
        let session = self.session().await.ok()?;
        let fetch = tokio::spawn({
            let (shared, session) = (Arc::clone(self), Arc::clone(&session));
            async move {
                if let Err(e) = shared.tokens(&session, false).await {
                    tracing::debug!("token list not fetched at start: {}", e.message);
                }
            }
        });
        let _ = tokio::time::timeout(SETTLE_AT_MOST, fetch).await;
        tokio::time::sleep(SETTLE_AFTER_FETCH).await;
        Some(session)
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> jsonrpc::Result<InitializeResult> {
        let options: InitializationOptions = match params.initialization_options {
            Some(value) => {
                serde_json::from_value(value).map_err(|e| invalid(format!("initializationOptions: {e}")))?
            }
            None => InitializationOptions::default(),
        };
        let folders: Vec<PathBuf> = params
            .workspace_folders
            .unwrap_or_default()
            .iter()
            .filter_map(|f| f.uri.to_file_path().map(|p| p.into_owned()))
            .collect();
        *self.shared.folders.write().unwrap_or_else(|e| e.into_inner()) = folders;
        let defaults = self.defaults.clone();
        let connection = Connection {
            server: options.server.clone().or(defaults.server.clone()),
            sandbox: options.sandbox || defaults.sandbox,
            insecure_http: options.insecure_http || defaults.insecure_http,
            ..defaults
        };
        *self.shared.options.write().unwrap_or_else(|e| e.into_inner()) = options;
        {
            let mut prefetch = self.shared.prefetch.lock().unwrap_or_else(|e| e.into_inner());
            if prefetch.as_ref().is_some_and(|p| !p.serves(&connection)) {
                tracing::debug!("initialize names another connection than the list was fetched for at start");
                *prefetch = None;
            }
        }
        *self.shared.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(connection);
        self.warm_up_after_answer();
        Ok(InitializeResult {
            server_info: Some(ServerInfo {
                name: "elitea-tokens".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            capabilities: ServerCapabilities {
                experimental: Some(
                    serde_json::json!({ "elitea": { "version": 1, "methods": ext::ALL_METHODS } }),
                ),
                ..ServerCapabilities::default()
            },
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        // Reminders reach the client from this point on. The session has been opening since
        // the `initialize` answer went out.
        let _ = self.shared.session().await;
        super::scheduler::start(Arc::clone(&self.shared));
    }

    async fn shutdown(&self) -> jsonrpc::Result<()> {
        Ok(())
    }
}
