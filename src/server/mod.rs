//! The webhook server: the pure core behind TLS.
//!
//! Endpoints (HTTPS on `--listen`, default `[::]:8443`):
//! - `POST /validate`: an `admission.k8s.io/v1` (or v1beta1) AdmissionReview in, the same
//!   apiVersion and kind out, with the request's uid.
//! - `GET /healthz`: the process is alive.
//! - `GET /readyz`: a certificate is loaded and the listener is up; 503 from the moment
//!   shutdown starts.
//! - `GET /metrics`: Prometheus text format.
//! - anything else: 404.
//!
//! `--probe-addr` also serves the last three over plain HTTP, with the same timeouts and its
//! own connection limits, so that kubelet and Prometheus are never locked out by clients of the
//! webhook port.
//!
//! Hygiene, each with its flag: TLS handshake timeout, first-request (header) timeout so a slow
//! client cannot hold a connection, a short keep-alive idle timeout, a write timeout, a limit on
//! concurrent connections in all and per client address enforced before the TLS handshake (see
//! [`limit`]), `TCP_NODELAY`, certificate hot reload and a daily expiry warning (see [`tls`]), and
//! graceful drain on SIGTERM/SIGINT. What bounds a request's memory, time and output is in
//! [`validate`].
//!
//! With `--cluster-context`, [`watch`] keeps the cluster context (mirror sets, release image)
//! current from the API server and publishes a new policy per change; neither the start, nor
//! readiness, nor a review waits for it.
// An adapter (clippy.toml): sockets, certificate files, deadlines and latencies.
#![allow(clippy::disallowed_methods)]

pub mod handshake;
pub mod limit;
pub mod metrics;
pub mod tls;
pub mod validate;
pub mod watch;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_server::accept::{DefaultAcceptor, TcpConfigAcceptor, TcpSocketConfig};
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};

use crate::policy::Policy;
use limit::{LimitAcceptor, Limits};
use metrics::Metrics;
use tls::{CertError, TlsSettings};
pub use validate::BodyBudgets;
pub use validate::MAX_BODY_BYTES;
use validate::{Budgets, LogBudget};

/// Default for `--idle-timeout`. The API server reconnects cheaply (one TLS handshake, well
/// under a millisecond of CPU here) and writes of the Image object are rare, so keep-alive buys
/// little, while a long idle timeout lets idle connections hoard the connection slots.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// HTTP/2 streams one connection may have open at once (only with `--http2`).
pub const HTTP2_MAX_CONCURRENT_STREAMS: u32 = 8;

/// Everything `serve` needs, checked.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where to listen for HTTPS.
    pub listen: SocketAddr,
    /// Where to serve plain-HTTP probes and metrics, if anywhere.
    pub probe_addr: Option<SocketAddr>,
    /// Certificates and TLS options.
    pub tls: TlsSettings,
    /// How often to look at the certificate files, on top of the directory watch.
    pub cert_poll_interval: Duration,
    /// How long a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// How long a new connection may take to send its first request's headers.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may sit idle or take to send the next request's
    /// headers (default [`DEFAULT_IDLE_TIMEOUT`]).
    pub idle_timeout: Duration,
    /// How long a write to a client may make no progress.
    pub write_timeout: Duration,
    /// Deadline for a request without `?timeout=`.
    pub request_timeout: Duration,
    /// How long in-flight requests may take to finish at shutdown.
    pub shutdown_timeout: Duration,
    /// Most connections open at once on the HTTPS listener, handshaking ones included; one more
    /// is closed as soon as it is accepted (see [`limit`]).
    pub max_connections: usize,
    /// Most connections open at once from one client address.
    pub max_connections_per_peer: usize,
    /// How long a connection must have been idle before it may be closed to make room for a
    /// new one when every slot is taken (see [`limit`]).
    pub evictable_after: Duration,
    /// Bytes of request bodies held at once, process-wide.
    pub body_budgets: BodyBudgets,
    /// The rule settings.
    pub policy: Policy,
    /// Watch the cluster context through this API server and judge with it (see [`watch`]);
    /// `None`: judge with `policy` as it is.
    pub cluster_context: Option<watch::ApiServer>,
}

/// Why the server could not start or stopped with an error.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerError {
    /// The certificate material is unusable.
    Cert(CertError),
    /// An address cannot be bound.
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The system's reason.
        error: std::io::Error,
    },
    /// The server failed while running.
    Io(std::io::Error),
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerError::Cert(e) => write!(f, "certificate: {e}"),
            ServerError::Bind { addr, error } => write!(f, "cannot listen on {addr}: {error}"),
            ServerError::Io(e) => write!(f, "server error: {e}"),
        }
    }
}

impl std::error::Error for ServerError {}

/// Shared by every request.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The policy reviews judge with; the cluster-context watch publishes a new one per change.
    policy: Arc<ArcSwap<Policy>>,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    default_timeout: Duration,
    budgets: Arc<Budgets>,
    log_budget: Arc<LogBudget>,
}

impl AppState {
    /// State for a router with the default body budgets; `ready` starts false.
    pub fn new(policy: Policy, default_timeout: Duration) -> Self {
        Self::with_budgets(policy, default_timeout, BodyBudgets::default())
    }

    /// State for a router; `ready` starts false.
    pub fn with_budgets(policy: Policy, default_timeout: Duration, bodies: BodyBudgets) -> Self {
        AppState {
            policy: Arc::new(ArcSwap::from_pointee(policy)),
            metrics: Arc::new(Metrics::new()),
            ready: Arc::new(AtomicBool::new(false)),
            default_timeout,
            budgets: Arc::new(Budgets::new(bodies)),
            log_budget: Arc::default(),
        }
    }

    /// The policy a review starting now judges with (with the cluster context as last
    /// published by the watch, if any).
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Marks the server ready or not.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
}

/// The HTTPS application. Layers: none beyond axum's routing; body limits, deadlines and panic
/// handling are done in [`validate`] itself so that every failure can still echo the uid.
pub fn router(state: AppState) -> Router {
    probes()
        .route("/validate", post(validate::validate))
        .with_state(state)
}

fn probes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(|| async {
            validate::error(
                StatusCode::NOT_FOUND,
                "not found; the webhook path is /validate",
            )
        })
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// Parses `10s`, `500ms`, `2m`, `1h` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number.parse().ok()?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    // A number too large for a Duration is no duration: never a panic.
    Duration::try_from_secs_f64(secs).ok()
}

/// A started server.
#[derive(Debug)]
pub struct Running {
    /// The HTTPS address actually bound (useful with port 0).
    pub addr: SocketAddr,
    /// The plain-HTTP probe address actually bound.
    pub probe_addr: Option<SocketAddr>,
    /// Request state (readiness, metrics).
    pub state: AppState,
    handle: axum_server::Handle<SocketAddr>,
    probe_handle: Option<axum_server::Handle<SocketAddr>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    reloader: tokio::task::JoinHandle<()>,
    /// The cluster-context watch, when on.
    watch: Option<tokio::task::JoinHandle<()>>,
    expiry: tokio::task::JoinHandle<()>,
    shutdown_timeout: Duration,
}

impl Running {
    /// Starts graceful shutdown: not ready at once, no new connections, in-flight requests
    /// finish within the shutdown timeout. The plain-HTTP probe listener keeps answering
    /// (`/readyz` 503, `/healthz` 200) until the drain is over.
    pub fn begin_shutdown(&self) {
        self.state.set_ready(false);
        self.handle.graceful_shutdown(Some(self.shutdown_timeout));
    }

    /// Waits until the server has stopped, then stops the probe listener.
    pub async fn wait(self) -> Result<(), ServerError> {
        let result = self.server.await;
        if let Some(h) = &self.probe_handle {
            h.graceful_shutdown(Some(Duration::from_secs(1)));
        }
        self.reloader.abort();
        if let Some(watch) = &self.watch {
            watch.abort();
        }
        self.expiry.abort();
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ServerError::Io(e)),
            Err(e) => Err(ServerError::Io(std::io::Error::other(e))),
        }
    }
}

/// Binds a TCP listener; an IPv6 wildcard also accepts IPv4, whatever `bindv6only` says.
/// Returns it with the address actually bound (useful with port 0).
fn bind(addr: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), ServerError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let fail = |error| ServerError::Bind { addr, error };
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(fail)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false).map_err(fail)?;
    }
    socket.set_reuse_address(true).map_err(fail)?;
    socket.set_nonblocking(true).map_err(fail)?;
    socket.bind(&addr.into()).map_err(fail)?;
    socket.listen(1024).map_err(fail)?;
    let listener: std::net::TcpListener = socket.into();
    let bound = listener.local_addr().map_err(fail)?;
    Ok((listener, bound))
}

/// Loads the certificate, binds the listeners and starts serving. Returns once both listeners
/// are bound and the server is ready.
pub async fn start(config: ServeConfig) -> Result<Running, ServerError> {
    start_with(config, router).await
}

/// [`start`] with another application on the same TLS and HTTP stack: the load benchmark's
/// baseline answers a constant body through exactly the listener, acceptors and timeouts the
/// webhook uses.
pub async fn start_with(
    config: ServeConfig,
    app: fn(AppState) -> Router,
) -> Result<Running, ServerError> {
    let loaded = config.tls.load().map_err(ServerError::Cert)?;
    // At start, then once a day (`expiry`) and with every new certificate (the reloader).
    tls::warn_if_expiring(&config.tls.cert, loaded.not_after);
    let state = AppState::with_budgets(
        config.policy.clone(),
        config.request_timeout,
        config.body_budgets,
    );
    state.metrics.cert_loaded(loaded.not_after);
    state.metrics.cert_reload("success");

    let (listener, addr) = bind(config.listen)?;
    let probe = config.probe_addr.map(bind).transpose()?;
    let probe_addr = probe.as_ref().map(|(_, a)| *a);

    let rustls = RustlsConfig::from_config(loaded.config.clone());
    let handle = axum_server::Handle::new();
    let server = tokio::spawn(serve_webhook(
        &config,
        listener,
        rustls.clone(),
        handle.clone(),
        app(state.clone()),
        state.metrics.clone(),
    )?);
    let probe_handle = match probe {
        Some((listener, _)) => Some(serve_probes(&config, listener, state.clone())?),
        None => None,
    };
    let reloader = tokio::spawn(tls::reload_loop(
        config.tls.clone(),
        loaded,
        rustls,
        config.cert_poll_interval,
        state.metrics.clone(),
    ));
    let expiry = tokio::spawn(tls::expiry_watch(
        config.tls.cert.clone(),
        state.metrics.clone(),
    ));

    if handle.listening().await.is_none() {
        return Err(ServerError::Bind {
            addr,
            error: std::io::Error::other("listener did not start"),
        });
    }
    // Started, never waited for: readiness and reviews do not depend on the API server.
    let watch = config.cluster_context.clone().map(|api_server| {
        tokio::spawn(watch::run(
            api_server,
            config.policy.clone(),
            state.policy.clone(),
            state.metrics.clone(),
        ))
    });
    state.set_ready(true);
    tracing::info!(%addr, probe_addr = ?probe_addr, "image-config-webhook ready");
    Ok(Running {
        addr,
        probe_addr,
        state,
        handle,
        probe_handle,
        server,
        reloader,
        watch,
        expiry,
        shutdown_timeout: config.shutdown_timeout,
    })
}

/// The HTTPS listener: connection limits, then TLS, then HTTP with its timeouts.
fn serve_webhook(
    config: &ServeConfig,
    listener: std::net::TcpListener,
    rustls: RustlsConfig,
    handle: axum_server::Handle<SocketAddr>,
    app: Router,
    metrics: Arc<Metrics>,
) -> Result<impl Future<Output = std::io::Result<()>> + use<>, ServerError> {
    let addr = config.listen;
    let acceptor = LimitAcceptor::new(
        handshake::HandshakeAcceptor::new(
            RustlsAcceptor::new(rustls)
                .handshake_timeout(config.handshake_timeout)
                .acceptor(TcpConfigAcceptor::new(TcpSocketConfig::new().nodelay(true))),
            metrics.clone(),
        ),
        Limits {
            max: config.max_connections,
            max_per_peer: config.max_connections_per_peer,
            write_timeout: config.write_timeout,
            peer_small_body_budget: validate::PEER_SMALL_BODY_BUDGET,
            peer_large_body_budget: validate::PEER_LARGE_BODY_BUDGET,
            evictable_after: config.evictable_after,
        },
        "webhook",
        metrics,
    );
    let mut server = axum_server::from_tcp(listener)
        .map_err(|error| ServerError::Bind { addr, error })?
        .acceptor(acceptor)
        .handle(handle)
        .first_request_timeout(config.header_read_timeout);
    if !config.tls.http2 {
        server = server.http1_only();
    }
    let builder = server.http_builder();
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(config.idle_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(HTTP2_MAX_CONCURRENT_STREAMS)
        .keep_alive_interval(Some(config.idle_timeout))
        .keep_alive_timeout(config.handshake_timeout);
    Ok(server.serve(app.into_make_service()))
}

/// The plain-HTTP probe listener: the same timeouts as the webhook's, its own limits.
fn serve_probes(
    config: &ServeConfig,
    listener: std::net::TcpListener,
    state: AppState,
) -> Result<axum_server::Handle<SocketAddr>, ServerError> {
    let addr = config.probe_addr.unwrap_or(config.listen);
    let handle = axum_server::Handle::new();
    let mut server = axum_server::from_tcp(listener)
        .map_err(|error| ServerError::Bind { addr, error })?
        .acceptor(LimitAcceptor::new(
            DefaultAcceptor::new(),
            Limits {
                max: limit::PROBE_MAX_CONNECTIONS,
                max_per_peer: limit::PROBE_MAX_CONNECTIONS_PER_PEER,
                write_timeout: config.write_timeout,
                peer_small_body_budget: 0,
                peer_large_body_budget: 0,
                evictable_after: config.evictable_after,
            },
            "probe",
            state.metrics.clone(),
        ))
        .handle(handle.clone())
        .first_request_timeout(config.header_read_timeout)
        .http1_only();
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(config.idle_timeout)
        .keep_alive(true);
    tokio::spawn(server.serve(probes().with_state(state).into_make_service()));
    Ok(handle)
}

/// Runs until `shutdown` completes, then drains.
pub async fn run(
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let running = start(config).await?;
    shutdown.await;
    tracing::info!("shutting down: not ready, draining in-flight requests");
    running.begin_shutdown();
    running.wait().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM (what Kubernetes sends) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// The default certificate paths, relative to the working directory.
pub fn default_cert_paths() -> (PathBuf, PathBuf) {
    (
        PathBuf::from("certs/tls.crt"),
        PathBuf::from("certs/tls.key"),
    )
}

#[cfg(test)]
mod tests;
