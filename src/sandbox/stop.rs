//! Waiting for Ctrl-C, or SIGTERM where there is one, to stop the sandbox gracefully.
//!
//! tokio's own signal handling is not compiled in on Unix: with it, every runtime the process
//! builds sets it up as it starts (a socket pair and a table of every signal), the daemon's two
//! runtimes among them, which do not handle signals. Here signal-hook's handler writes a byte to
//! a socket that the runtime waits on (the self-pipe pattern), set up only by the sandbox.

/// Resolves at the first Ctrl-C or SIGTERM after the call. If the handlers cannot be set up,
/// it never resolves: the signals then end the process as they would any other.
#[cfg(unix)]
pub async fn stop_requested() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use tokio::io::AsyncReadExt;

    let listen = || -> std::io::Result<tokio::net::UnixStream> {
        let (read, write) = std::os::unix::net::UnixStream::pair()?;
        // The handler must not block: a full socket drops the byte, and one is enough.
        write.set_nonblocking(true)?;
        signal_hook::low_level::pipe::register(SIGINT, write.try_clone()?)?;
        signal_hook::low_level::pipe::register(SIGTERM, write)?;
        read.set_nonblocking(true)?;
        tokio::net::UnixStream::from_std(read)
    };
    match listen() {
        Ok(mut read) => {
            let mut byte = [0u8; 1];
            if let Err(e) = read.read_exact(&mut byte).await {
                tracing::error!("cannot wait for Ctrl-C: {e}");
                std::future::pending::<()>().await;
            }
        }
        Err(e) => {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    }
}

/// Resolves at the first Ctrl-C after the call. If it cannot be listened for, it never
/// resolves: Ctrl-C then ends the process as it would any other.
#[cfg(not(unix))]
pub async fn stop_requested() {
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::error!("cannot listen for Ctrl-C: {e}");
        std::future::pending::<()>().await;
    }
}
