//! The daemon's standard input and output. Editors connect them to pipes (JetBrains, Rust's
//! `Command`) or to Unix socket pairs (libuv: VS Code, Neovim). Those are put in non-blocking
//! mode and read and written by the runtime's own event loop: no helper thread to start before
//! the first answer, and no hand-off between threads for each message. A terminal or a file
//! goes through tokio's blocking stdio instead, as non-blocking mode would also change the
//! descriptor for every other process that shares it (a shell's terminal).

use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncWrite};

pub type Input = Pin<Box<dyn AsyncRead + Send>>;
pub type Output = Pin<Box<dyn AsyncWrite + Send>>;

/// Standard input and output as async streams, and what to put back when serving ends. Must
/// be called inside the runtime, whose event loop the descriptors join.
#[cfg(unix)]
pub fn open() -> (Input, Output, Restore) {
    use std::os::fd::AsFd;
    let mut restore = Restore::default();
    let input = unix::input(std::io::stdin().as_fd(), &mut restore);
    let output = unix::output(std::io::stdout().as_fd(), &mut restore);
    (input, output, restore)
}

#[cfg(not(unix))]
pub fn open() -> (Input, Output, Restore) {
    (
        Box::pin(tokio::io::stdin()),
        Box::pin(tokio::io::stdout()),
        Restore,
    )
}

/// The descriptors switched to non-blocking mode, each with the flags it had: one can be
/// shared with the process that started the daemon (a shell's `( … ) | consumer`), so they go
/// back as they were found.
#[cfg(unix)]
#[derive(Default)]
pub struct Restore(Vec<(std::os::fd::OwnedFd, nix::fcntl::OFlag)>);

#[cfg(not(unix))]
pub struct Restore;

impl Restore {
    pub fn apply(self) {
        #[cfg(unix)]
        for (fd, flags) in self.0 {
            let _ = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(flags));
        }
    }
}

#[cfg(unix)]
mod unix {
    use super::Restore;
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use std::os::fd::{BorrowedFd, OwnedFd};
    use std::os::unix::fs::FileTypeExt;
    use std::pin::Pin;
    use tokio::io::{AsyncRead, AsyncWrite};

    enum Kind {
        Pipe,
        Socket,
        Other,
    }

    /// A duplicate of `fd` (closing it leaves 0 and 1 open) and what kind of file it is.
    fn duplicate(fd: BorrowedFd<'_>) -> Option<(OwnedFd, Kind)> {
        let owned = fd.try_clone_to_owned().ok()?;
        let file = std::fs::File::from(owned);
        let kind = match file.metadata().map(|m| m.file_type()) {
            Ok(t) if t.is_fifo() => Kind::Pipe,
            Ok(t) if t.is_socket() => Kind::Socket,
            _ => Kind::Other,
        };
        Some((file.into(), kind))
    }

    /// Hands `fd` to `convert`, which puts it in non-blocking mode; notes the flags to put back,
    /// or puts them back at once when `convert` fails.
    fn nonblocking<T>(
        fd: OwnedFd,
        restore: &mut Restore,
        convert: impl FnOnce(OwnedFd) -> std::io::Result<T>,
    ) -> Option<T> {
        let flags = OFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GETFL).ok()?);
        let kept = fd.try_clone().ok()?;
        match convert(fd) {
            Ok(converted) => {
                if !flags.contains(OFlag::O_NONBLOCK) {
                    restore.0.push((kept, flags));
                }
                Some(converted)
            }
            Err(_) => {
                let _ = fcntl(&kept, FcntlArg::F_SETFL(flags));
                None
            }
        }
    }

    /// A Unix stream socket (a socket pair's end); a TCP socket is refused, as it has no Unix
    /// address.
    fn unix_stream(fd: OwnedFd) -> std::io::Result<tokio::net::UnixStream> {
        let stream = std::os::unix::net::UnixStream::from(fd);
        stream.local_addr()?;
        stream.set_nonblocking(true)?;
        tokio::net::UnixStream::from_std(stream)
    }

    pub fn input(fd: BorrowedFd<'_>, restore: &mut Restore) -> Pin<Box<dyn AsyncRead + Send>> {
        let reader: Option<Pin<Box<dyn AsyncRead + Send>>> = match duplicate(fd) {
            Some((fd, Kind::Pipe)) => {
                nonblocking(fd, restore, tokio::net::unix::pipe::Receiver::from_owned_fd)
                    .map(|pipe| Box::pin(pipe) as _)
            }
            Some((fd, Kind::Socket)) => nonblocking(fd, restore, unix_stream).map(|s| Box::pin(s) as _),
            Some((_, Kind::Other)) | None => None,
        };
        reader.unwrap_or_else(|| Box::pin(tokio::io::stdin()))
    }

    pub fn output(fd: BorrowedFd<'_>, restore: &mut Restore) -> Pin<Box<dyn AsyncWrite + Send>> {
        let writer: Option<Pin<Box<dyn AsyncWrite + Send>>> = match duplicate(fd) {
            Some((fd, Kind::Pipe)) => nonblocking(fd, restore, tokio::net::unix::pipe::Sender::from_owned_fd)
                .map(|pipe| Box::pin(pipe) as _),
            Some((fd, Kind::Socket)) => nonblocking(fd, restore, unix_stream).map(|s| Box::pin(s) as _),
            Some((_, Kind::Other)) | None => None,
        };
        writer.unwrap_or_else(|| blocking_output(fd))
    }

    /// Writes each frame whole: a duplicate of descriptor 1 as a `tokio::fs::File`, not
    /// `tokio::io::stdout`, which goes through std's line-buffered `Stdout` and so sends a
    /// frame's header at its last newline and its body only on the flush (two writes, from two
    /// trips to the blocking pool, with the client waiting between them).
    fn blocking_output(fd: BorrowedFd<'_>) -> Pin<Box<dyn AsyncWrite + Send>> {
        match fd.try_clone_to_owned() {
            Ok(fd) => Box::pin(tokio::fs::File::from_std(fd.into())),
            Err(_) => Box::pin(tokio::io::stdout()),
        }
    }
}
