//! `elitea-tokens sandbox`: the ELITEA-compatible service as a foreground process.

use super::args::SandboxArgs;
use crate::error::{Error, ErrorKind, Result};
use crate::paths::Paths;
use crate::sandbox::{DbLocation, Sandbox, SandboxOptions};
use std::io::Write;

pub async fn run(args: &SandboxArgs) -> Result<()> {
    if let Some(addr) = args.addr
        && !addr.ip().is_loopback()
        && !args.allow_remote
    {
        return Err(Error::invalid(format!(
            "{addr} is not a loopback address; the sandbox's control API has no authentication, so pass --allow-remote if you mean it"
        )));
    }
    let db = match &args.db {
        Some(path) if path.as_os_str() == ":memory:" => DbLocation::Memory,
        Some(path) => DbLocation::File(path.clone()),
        None => {
            let paths = Paths::discover()?;
            crate::session::ensure_data_dir(&paths)?;
            DbLocation::File(paths.sandbox_db())
        }
    };
    let embedded = args.db.is_none();
    let options = SandboxOptions {
        addr: args.addr.unwrap_or(SandboxOptions::default().addr),
        db,
        faults: args.faults.clone(),
        auth_cache: args.auth_cache,
        public_project_id: args.public_project_id,
    };
    // With the embedded sandbox's database and no address, also take its port: the URL that
    // stored secrets and IDE settings name stays the same.
    let sandbox = if embedded && args.addr.is_none() {
        crate::session::start_sandbox_on(&Paths::discover()?, options).await?
    } else {
        Sandbox::start(options)
            .await
            .map_err(|e| Error::new(ErrorKind::Local, format!("cannot start the sandbox: {e}")))?
    };
    // These two lines are the interface for scripts and tests: read them, then use the server.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "ELITEA_SERVER={}", sandbox.url());
    let _ = writeln!(stdout, "ELITEA_TOKEN={}", sandbox.bootstrap_token());
    let _ = stdout.flush();
    drop(stdout);
    eprintln!("sandbox listening on {} (Ctrl-C to stop)", sandbox.url());
    sandbox
        .serve_until_stopped()
        .await
        .map_err(|e| Error::new(ErrorKind::Local, e.to_string()))
}
