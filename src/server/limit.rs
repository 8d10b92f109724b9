//! The limit on concurrent connections, enforced before the TLS handshake.
//!
//! [`LimitAcceptor`] is the outermost acceptor: it takes a permit from a semaphore as soon as a
//! TCP connection is accepted, before any TLS or HTTP work, and holds it for the life of the
//! connection (handshake, requests, keep-alive idle time). When no permit is left the connection
//! is closed at once (the client sees the connection closed or reset before its handshake
//! completes) and counted in `image_config_webhook_connections_rejected_total`; the accept does
//! not wait, because a waiting connection would still hold a file descriptor and a task, which is
//! what the limit is there to bound. A slot is freed when the connection closes, including when
//! a client that never finishes its handshake is cut off by the handshake timeout, or one that
//! never sends a request by the first-request timeout.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::metrics::Metrics;

/// Default for `--max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Connections allowed on the plain-HTTP probe listener (kubelet and Prometheus need a few).
pub const PROBE_MAX_CONNECTIONS: usize = 64;

/// Wraps an acceptor chain so that at most `max` connections are open at once.
#[derive(Debug, Clone)]
pub struct LimitAcceptor<A> {
    inner: A,
    permits: Arc<Semaphore>,
    listener: &'static str,
    metrics: Arc<Metrics>,
    last_warned: Arc<AtomicU64>,
}

impl<A> LimitAcceptor<A> {
    /// At most `max` (at least 1) open connections through `inner`; `listener` labels the
    /// metrics (`webhook` or `probe`).
    pub fn new(inner: A, max: usize, listener: &'static str, metrics: Arc<Metrics>) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        metrics.connection_limit(listener, max);
        LimitAcceptor {
            inner,
            permits: Arc::new(Semaphore::new(max)),
            listener,
            metrics,
            last_warned: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Logs a rejection at most every 10 seconds, so that a flood cannot flood the log.
    fn warn_rejected(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_warned.load(Ordering::Relaxed);
        if now >= last.saturating_add(10)
            && self
                .last_warned
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                listener = self.listener,
                "connection limit reached: closing new connections until some close \
                 (see image_config_webhook_connections_rejected_total)"
            );
        }
    }
}

/// Keeps a slot taken and the open-connections gauge up while it lives.
#[derive(Debug)]
struct Slot {
    _permit: OwnedSemaphorePermit,
    listener: &'static str,
    metrics: Arc<Metrics>,
}

impl Slot {
    fn new(permit: OwnedSemaphorePermit, listener: &'static str, metrics: Arc<Metrics>) -> Self {
        metrics.connection_opened(listener);
        Slot {
            _permit: permit,
            listener,
            metrics,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.metrics.connection_closed(self.listener);
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send>>;

impl<A, I, S> Accept<I, S> for LimitAcceptor<A>
where
    A: Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
    I: Send + 'static,
{
    type Stream = Counted<A::Stream>;
    type Service = A::Service;
    type Future = BoxFuture<(Self::Stream, Self::Service)>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // Closed before any TLS work: no handshake, no task beyond this one.
                drop(stream);
                self.metrics.connection_rejected(self.listener);
                self.warn_rejected();
                return Box::pin(std::future::ready(Err(io::Error::other(
                    "connection limit reached",
                ))));
            }
        };
        let slot = Slot::new(permit, self.listener, self.metrics.clone());
        // The slot moves into the future: a handshake that fails or times out frees it.
        let inner = self.inner.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = inner.await?;
            Ok((
                Counted {
                    inner: stream,
                    _slot: slot,
                },
                service,
            ))
        })
    }
}

/// A connection holding one slot of the limit until it is dropped.
#[derive(Debug)]
pub struct Counted<S> {
    inner: S,
    _slot: Slot,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
