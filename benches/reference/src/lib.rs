//! The do-nothing language server both reference binaries run.

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{InitializeParams, InitializeResult};
use tower_lsp_server::{LanguageServer, LspService, Server};

struct Nothing;

impl LanguageServer for Nothing {
    async fn initialize(&self, _: InitializeParams) -> Result<InitializeResult> {
        Ok(InitializeResult::default())
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }
}

/// Serves stdin/stdout until `exit`, answering `initialize` with empty capabilities.
pub fn serve_nothing() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let (service, socket) = LspService::new(|_| Nothing);
        Server::new(tokio::io::stdin(), tokio::io::stdout(), socket)
            .serve(service)
            .await;
    });
    // As the daemon does: a client may keep stdin open after `exit`.
    runtime.shutdown_background();
}
