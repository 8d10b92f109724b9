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
//!
//! Three more bounds live here, because they belong to the connection:
//! - **Per peer.** One client address may hold at most `max_per_peer` of the slots (the API
//!   server needs a handful), so one pod cannot take them all; over it, the connection is closed
//!   the same way and counted with `reason="per_peer"`.
//! - **Write timeout.** A write that makes no progress for the write timeout fails, closing the
//!   connection: a client that does not read its answer cannot hold the answer's memory.
//! - **The peer's body budgets.** Each request carries an [`Arc<Connection>`] extension with the
//!   peer's address and the budgets, shared by all of the peer's connections and streams, for the
//!   bytes of request bodies it holds at once (see [`super::validate`]).
//! - **Idle connections make room.** When every slot is taken, the connection that has been idle
//!   longest (at least [`EVICTABLE_AFTER`]: no byte read or written) is closed to make room for
//!   the new one, so that idle keep-alive connections cannot lock new clients out; only when
//!   every connection is busy is the new one refused. An idle kept-alive client, such as the API
//!   server, simply opens a new connection for its next request.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

use super::metrics::Metrics;

/// Default for `--max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Default for `--max-connections-per-peer`: an eighth of the default limit. kube-apiserver
/// opens a few connections per webhook (Go keeps up to 25 idle ones per host).
pub const DEFAULT_MAX_CONNECTIONS_PER_PEER: usize = 128;

/// Connections allowed on the plain-HTTP probe listener (kubelet and Prometheus need a few).
pub const PROBE_MAX_CONNECTIONS: usize = 64;

/// Connections one peer may hold on the probe listener.
pub const PROBE_MAX_CONNECTIONS_PER_PEER: usize = 8;

/// Default for `--write-timeout`.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection must have been idle before it may be closed to make room.
pub const EVICTABLE_AFTER: Duration = Duration::from_secs(1);

/// How long a new connection waits for the slot of an evicted one.
const EVICTION_WAIT: Duration = Duration::from_millis(500);

/// What a request knows about its connection.
#[derive(Debug)]
pub struct Connection {
    peer: SocketAddr,
    budgets: PeerBudgets,
}

impl Connection {
    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Bytes of small request bodies the peer may hold at once, over all its connections.
    pub fn small_body_budget(&self) -> &Arc<Semaphore> {
        &self.budgets.small
    }

    /// Bytes of large request bodies the peer may hold at once, over all its connections.
    pub fn large_body_budget(&self) -> &Arc<Semaphore> {
        &self.budgets.large
    }
}

/// One peer's body budgets.
#[derive(Debug, Clone)]
struct PeerBudgets {
    small: Arc<Semaphore>,
    large: Arc<Semaphore>,
}

/// One peer's connections and budgets.
#[derive(Debug)]
struct Peer {
    connections: usize,
    budgets: PeerBudgets,
}

/// The per-connection settings of a listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most open connections.
    pub max: usize,
    /// Most open connections from one IP address.
    pub max_per_peer: usize,
    /// Longest a write may make no progress.
    pub write_timeout: Duration,
    /// Bytes of small request bodies one peer may hold at once.
    pub peer_small_body_budget: usize,
    /// Bytes of large request bodies one peer may hold at once.
    pub peer_large_body_budget: usize,
    /// How long a connection must have been idle before it may be closed to make room
    /// (default [`EVICTABLE_AFTER`]).
    pub evictable_after: Duration,
}

/// Wraps an acceptor chain so that at most `max` connections are open at once.
#[derive(Debug, Clone)]
pub struct LimitAcceptor<A> {
    inner: A,
    permits: Arc<Semaphore>,
    peers: Arc<Mutex<HashMap<IpAddr, Peer>>>,
    open: Arc<OpenConnections>,
    limits: Limits,
    listener: &'static str,
    metrics: Arc<Metrics>,
    rejections: Arc<Rejections>,
}

impl<A> LimitAcceptor<A> {
    /// At most `limits.max` (at least 1) open connections through `inner`; `listener` labels
    /// the metrics (`webhook` or `probe`).
    pub fn new(inner: A, limits: Limits, listener: &'static str, metrics: Arc<Metrics>) -> Self {
        let max = limits.max.clamp(1, Semaphore::MAX_PERMITS);
        metrics.connection_limit(listener, max);
        LimitAcceptor {
            inner,
            permits: Arc::new(Semaphore::new(max)),
            peers: Arc::default(),
            open: Arc::new(OpenConnections::new()),
            limits: Limits {
                max,
                max_per_peer: limits.max_per_peer.max(1),
                ..limits
            },
            listener,
            rejections: Arc::new(Rejections {
                listener,
                metrics: metrics.clone(),
                last_warned: AtomicU64::new(0),
            }),
            metrics,
        }
    }

    /// Takes one of the peer's slots, or `None` when it holds all it may.
    fn take_peer_slot(&self, ip: IpAddr) -> Option<(PeerSlot, PeerBudgets)> {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let peer = peers.entry(ip).or_insert_with(|| Peer {
            connections: 0,
            budgets: PeerBudgets {
                small: Arc::new(Semaphore::new(self.limits.peer_small_body_budget)),
                large: Arc::new(Semaphore::new(self.limits.peer_large_body_budget)),
            },
        });
        if peer.connections >= self.limits.max_per_peer {
            return None;
        }
        peer.connections += 1;
        Some((
            PeerSlot {
                ip,
                peers: self.peers.clone(),
            },
            peer.budgets.clone(),
        ))
    }

    /// Takes what a new connection from `peer` holds before its handshake, or names the limit
    /// (`per_peer` or `limit`) that refuses it.
    fn claim(&self, peer: Option<SocketAddr>) -> Result<Claim, &'static str> {
        let peer_slot = match peer {
            Some(addr) => Some(self.take_peer_slot(addr.ip()).ok_or("per_peer")?),
            None => None,
        };
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            // Full: make room by closing the connection idle longest, if there is one.
            Err(_)
                if self
                    .open
                    .evict_for(peer.map(|p| p.ip()), self.limits.evictable_after) =>
            {
                None
            }
            Err(_) => return Err("limit"),
        };
        let (peer_slot, budgets) = match peer_slot {
            Some((slot, budgets)) => (Some(slot), budgets),
            None => (
                None,
                PeerBudgets {
                    small: Arc::new(Semaphore::new(self.limits.peer_small_body_budget)),
                    large: Arc::new(Semaphore::new(self.limits.peer_large_body_budget)),
                },
            ),
        };
        Ok(Claim {
            peer_slot,
            budgets,
            permit,
        })
    }

    fn reject<T: Send + 'static>(&self, reason: &'static str) -> BoxFuture<T> {
        let error = self.rejections.reject(reason);
        Box::pin(std::future::ready(Err(error)))
    }
}

/// What a new connection holds before its handshake.
struct Claim {
    /// One of its address's slots (none when the address is unknown).
    peer_slot: Option<PeerSlot>,
    /// Its address's body budgets.
    budgets: PeerBudgets,
    /// A slot of the listener's limit; `None` while an idle connection closes to make room.
    permit: Option<OwnedSemaphorePermit>,
}

/// Counting and logging refused connections.
#[derive(Debug)]
struct Rejections {
    listener: &'static str,
    metrics: Arc<Metrics>,
    last_warned: AtomicU64,
}

impl Rejections {
    /// Counts a refused connection, logs it at most every 10 seconds, and returns the error.
    fn reject(&self, reason: &'static str) -> io::Error {
        self.metrics.connection_rejected(self.listener, reason);
        self.warn_rejected(reason);
        io::Error::other(match reason {
            "per_peer" => "per-peer connection limit reached",
            _ => "connection limit reached",
        })
    }

    /// Logs a rejection at most every 10 seconds, so that a flood cannot flood the log.
    fn warn_rejected(&self, reason: &'static str) {
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
                reason,
                "connection limit reached: closing new connections until some close \
                 (see image_config_webhook_connections_rejected_total)"
            );
        }
    }
}

/// One of a peer's slots, given back on drop.
#[derive(Debug)]
struct PeerSlot {
    ip: IpAddr,
    peers: Arc<Mutex<HashMap<IpAddr, Peer>>>,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(peer) = peers.get_mut(&self.ip) {
            peer.connections = peer.connections.saturating_sub(1);
            if peer.connections == 0 {
                peers.remove(&self.ip);
            }
        }
    }
}

/// When a connection last read or wrote, and the means to close it from outside.
#[derive(Debug)]
struct Activity {
    /// The client's address.
    ip: Option<IpAddr>,
    /// Milliseconds since the registry's epoch.
    last: AtomicU64,
    /// Requests being handled: a busy connection is never closed to make room.
    busy: AtomicUsize,
    evicted: AtomicBool,
    /// The task waiting to read, woken to see the eviction.
    reader: Mutex<Option<Waker>>,
}

/// The open connections of a listener, to find the one idle longest.
#[derive(Debug)]
struct OpenConnections {
    epoch: Instant,
    next: AtomicU64,
    all: Mutex<HashMap<u64, Arc<Activity>>>,
}

impl OpenConnections {
    fn new() -> Self {
        OpenConnections {
            epoch: Instant::now(),
            next: AtomicU64::new(0),
            all: Mutex::default(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn add(self: &Arc<Self>, ip: Option<IpAddr>) -> Registered {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity {
            ip,
            last: AtomicU64::new(self.now()),
            busy: AtomicUsize::new(0),
            evicted: AtomicBool::new(false),
            reader: Mutex::new(None),
        });
        self.all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, activity.clone());
        Registered {
            id,
            activity,
            open: self.clone(),
        }
    }

    /// Makes room for a new connection from `newcomer` by closing one that is not handling a
    /// request: the one idle longest, if it has been idle for `least`; otherwise, so that many
    /// clients cannot keep every slot young by reconnecting, the idlest of the address that
    /// holds the most connections, if it holds more than the newcomer's address does (counting
    /// the newcomer). Returns whether one was closed.
    fn evict_for(&self, newcomer: Option<IpAddr>, least: Duration) -> bool {
        let now = self.now();
        let least = u64::try_from(least.as_millis()).unwrap_or(u64::MAX);
        let all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        let idle = |a: &&Arc<Activity>| {
            !a.evicted.load(Ordering::Relaxed) && a.busy.load(Ordering::Relaxed) == 0
        };
        let idlest = all
            .values()
            .filter(idle)
            .min_by_key(|a| a.last.load(Ordering::Relaxed))
            .filter(|a| now.saturating_sub(a.last.load(Ordering::Relaxed)) >= least)
            .cloned();
        let victim = idlest.or_else(|| {
            let mut held: HashMap<Option<IpAddr>, usize> = HashMap::new();
            for a in all.values() {
                *held.entry(a.ip).or_default() += 1;
            }
            let mine = held.get(&newcomer).copied().unwrap_or(0) + 1;
            let (&heaviest, &count) = held.iter().max_by_key(|(_, n)| **n)?;
            (heaviest != newcomer && count > mine)
                .then(|| {
                    all.values()
                        .filter(idle)
                        .filter(|a| a.ip == heaviest)
                        .min_by_key(|a| a.last.load(Ordering::Relaxed))
                        .cloned()
                })
                .flatten()
        });
        drop(all);
        let Some(victim) = victim else {
            return false;
        };
        victim.evicted.store(true, Ordering::Relaxed);
        if let Some(waker) = victim
            .reader
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            waker.wake();
        }
        true
    }
}

/// A connection's entry in [`OpenConnections`], removed on drop.
#[derive(Debug)]
struct Registered {
    id: u64,
    activity: Arc<Activity>,
    open: Arc<OpenConnections>,
}

impl Registered {
    fn touch(&self) {
        self.activity.last.store(self.open.now(), Ordering::Relaxed);
    }

    fn evicted(&self) -> bool {
        self.activity.evicted.load(Ordering::Relaxed)
    }

    fn wake_on_eviction(&self, waker: &Waker) {
        let mut slot = self
            .activity
            .reader
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.open
            .all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// Keeps a slot taken and the open-connections gauge up while it lives.
#[derive(Debug)]
struct Slot {
    _permit: OwnedSemaphorePermit,
    _peer: Option<PeerSlot>,
    listener: &'static str,
    metrics: Arc<Metrics>,
}

impl Slot {
    fn new(
        permit: OwnedSemaphorePermit,
        peer: Option<PeerSlot>,
        listener: &'static str,
        metrics: Arc<Metrics>,
    ) -> Self {
        metrics.connection_opened(listener);
        Slot {
            _permit: permit,
            _peer: peer,
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

impl<A, S> Accept<TcpStream, S> for LimitAcceptor<A>
where
    A: Accept<TcpStream, WithConnection<S>> + Clone + Send + Sync + 'static,
    S: Send + 'static,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Counted<A::Stream>;
    type Service = A::Service;
    type Future = BoxFuture<(Self::Stream, Self::Service)>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let peer = stream.peer_addr().ok();
        let Claim {
            peer_slot,
            budgets,
            permit,
        } = match self.claim(peer) {
            Ok(claim) => claim,
            Err(reason) => {
                // Closed before any TLS work: no handshake, no task beyond this one.
                drop(stream);
                return self.reject(reason);
            }
        };
        let connection = Arc::new(Connection {
            peer: peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
            budgets,
        });
        let registered = self.open.add(peer.map(|p| p.ip()));
        let service = WithConnection {
            inner: service,
            connection,
            activity: registered.activity.clone(),
        };
        let write_timeout = self.limits.write_timeout;
        let permits = self.permits.clone();
        let (listener, metrics) = (self.listener, self.metrics.clone());
        let inner = self.inner.clone();
        let rejections = self.rejections.clone();
        Box::pin(async move {
            let permit = match permit {
                Some(permit) => permit,
                // The evicted connection gives its slot back as it closes.
                None => match tokio::time::timeout(EVICTION_WAIT, permits.acquire_owned()).await {
                    Ok(Ok(permit)) => {
                        metrics.connection_evicted(listener);
                        permit
                    }
                    _ => {
                        drop(stream);
                        return Err(rejections.reject("limit"));
                    }
                },
            };
            // The slot moves into the future: a handshake that fails or times out frees it.
            let slot = Slot::new(permit, peer_slot, listener, metrics);
            let (stream, service) = inner.accept(stream, service).await?;
            Ok((
                Counted {
                    inner: stream,
                    _slot: slot,
                    registered,
                    write_timeout,
                    stalled: None,
                },
                service,
            ))
        })
    }
}

/// A connection's service, adding the [`Connection`] to each request's extensions and marking
/// the connection busy while a request is handled.
#[derive(Debug, Clone)]
pub struct WithConnection<S> {
    inner: S,
    connection: Arc<Connection>,
    activity: Arc<Activity>,
}

impl<S, B> tower::Service<axum::http::Request<B>> for WithConnection<S>
where
    S: tower::Service<axum::http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Busy<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: axum::http::Request<B>) -> Self::Future {
        request.extensions_mut().insert(self.connection.clone());
        self.activity.busy.fetch_add(1, Ordering::Relaxed);
        Busy {
            inner: Box::pin(self.inner.call(request)),
            activity: self.activity.clone(),
        }
    }
}

/// A request's handling, during which its connection is busy.
pub struct Busy<F> {
    inner: Pin<Box<F>>,
    activity: Arc<Activity>,
}

impl<F: Future> Future for Busy<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<F> Drop for Busy<F> {
    fn drop(&mut self) {
        self.activity.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<F> std::fmt::Debug for Busy<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Busy").finish_non_exhaustive()
    }
}

fn evicted() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "closed while idle to make room for a new connection",
    )
}

/// A connection holding one slot of the limit until it is dropped, whose writes time out.
#[derive(Debug)]
pub struct Counted<S> {
    inner: S,
    _slot: Slot,
    registered: Registered,
    write_timeout: Duration,
    /// Running while a write is pending; reset by any progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> Counted<S> {
    /// Passes a write's result through, failing it once writes have made no progress for the
    /// write timeout.
    fn timed<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let timeout = self.write_timeout;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.stalled = None;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client did not read the answer within the write timeout",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.registered.evicted() {
            return Poll::Ready(Err(evicted()));
        }
        let filled = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Pending => {
                self.registered.wake_on_eviction(cx.waker());
                // An eviction between the check above and the registration of the waker.
                if self.registered.evicted() {
                    return Poll::Ready(Err(evicted()));
                }
                Poll::Pending
            }
            Poll::Ready(result) => {
                if buf.filled().len() > filled {
                    self.registered.touch();
                }
                Poll::Ready(result)
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.timed(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.timed(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.timed(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.timed(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([127, 0, 0, last]))
    }

    #[test]
    fn the_idlest_connection_makes_room_once_idle_long_enough() {
        let open = Arc::new(OpenConnections::new());
        let a = open.add(ip(2));
        // Activity is kept in milliseconds: make `a` the idlest without a tie.
        std::thread::sleep(Duration::from_millis(5));
        let _b = open.add(ip(3));
        // Both just opened: nothing idle for 1 s, and no address holds more than the newcomer's.
        assert!(!open.evict_for(ip(4), Duration::from_secs(1)));
        // Idle for zero: the idlest (the first) goes.
        assert!(open.evict_for(ip(4), Duration::ZERO));
        assert!(a.evicted());
    }

    #[test]
    fn an_address_holding_more_makes_room_for_one_holding_less() {
        let open = Arc::new(OpenConnections::new());
        let hoarded: Vec<Registered> = (0..3).map(|_| open.add(ip(2))).collect();
        let mine = open.add(ip(9));
        // Fresh connections only, but 127.0.0.2 holds three and 127.0.0.9 (with the newcomer) two.
        assert!(open.evict_for(ip(9), Duration::from_secs(60)));
        assert_eq!(hoarded.iter().filter(|r| r.evicted()).count(), 1);
        assert!(!mine.evicted());
        // The hoarder itself gets no room that way.
        assert!(!open.evict_for(ip(2), Duration::from_secs(60)));
    }

    #[test]
    fn a_connection_handling_a_request_is_never_closed_to_make_room() {
        let open = Arc::new(OpenConnections::new());
        let busy = open.add(ip(2));
        busy.activity.busy.fetch_add(1, Ordering::Relaxed);
        assert!(!open.evict_for(ip(3), Duration::ZERO));
        assert!(!busy.evicted());
    }
}
