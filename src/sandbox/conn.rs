//! A TCP listener whose connections can be killed from inside a handler.
//!
//! `Failure::CloseConnection` must look to a client like a dropped socket, not like an HTTP
//! response. A response body that errors is not enough (hyper may already have sent the status
//! line), so each accepted stream carries an abort flag: the fault middleware sets it, the
//! next write fails, and hyper drops the connection without sending a byte.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

pub(crate) struct AbortableListener(pub TcpListener);

impl Listener for AbortableListener {
    type Io = AbortableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let stream = AbortableStream {
                        inner: stream,
                        abort: Arc::new(AtomicBool::new(false)),
                    };
                    return (stream, addr);
                }
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning (same policy as axum's own).
                    tracing::error!("sandbox accept error: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

pub(crate) struct AbortableStream {
    inner: TcpStream,
    abort: Arc<AtomicBool>,
}

impl AbortableStream {
    fn aborted(&self) -> bool {
        self.abort.load(Ordering::Acquire)
    }
}

fn aborted_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "sandbox fault: close")
}

impl AsyncRead for AbortableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.aborted() {
            return Poll::Ready(Err(aborted_error()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for AbortableStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.aborted() {
            return Poll::Ready(Err(aborted_error()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.aborted() {
            return Poll::Ready(Err(aborted_error()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.aborted() {
            return Poll::Ready(Err(aborted_error()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Per-connection handle, available to handlers as `ConnectInfo<ConnHandle>`.
#[derive(Clone)]
pub(crate) struct ConnHandle {
    abort: Arc<AtomicBool>,
}

impl ConnHandle {
    /// Makes the connection fail on its next read or write, so no response goes out.
    pub(crate) fn abort(&self) {
        self.abort.store(true, Ordering::Release);
    }
}

impl Connected<IncomingStream<'_, AbortableListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, AbortableListener>) -> Self {
        ConnHandle {
            abort: stream.io().abort.clone(),
        }
    }
}
