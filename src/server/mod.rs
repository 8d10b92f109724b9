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
//! `--probe-addr` also serves the last three over plain HTTP, for clusters that probe over HTTP.
//!
//! Hygiene, each with its flag: TLS handshake timeout, first-request (header) timeout so a slow
//! client cannot hold a connection, a per-request deadline honouring the API server's
//! `?timeout=10s`, a 7 MiB body limit decided from `Content-Length` before the body is read,
//! `TCP_NODELAY`, certificate hot reload (see [`tls`]), graceful drain on SIGTERM/SIGINT, and a
//! limit on concurrent connections (`--max-connections`, default
//! [`limit::DEFAULT_MAX_CONNECTIONS`]) enforced before the TLS handshake: a connection over the
//! limit is closed at once (see [`limit`]).

pub mod limit;
pub mod metrics;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_server::accept::{DefaultAcceptor, TcpConfigAcceptor, TcpSocketConfig};
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;

use crate::policy::Policy;
use crate::review::{ReviewError, review};
use limit::LimitAcceptor;
use metrics::Metrics;
use tls::{CertError, TlsSettings};

/// Largest AdmissionReview body accepted (the API server's own limit for objects is 3 MiB of
/// etcd data; an UPDATE carries two objects).
pub const MAX_BODY_BYTES: usize = 7 * 1024 * 1024;

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
    /// headers. Longer than the API server's own idle timeout (90 s), so that the client, not the
    /// server, closes idle connections: a POST on a connection the server is just closing fails
    /// and is not retried.
    pub idle_timeout: Duration,
    /// Deadline for a request without `?timeout=`.
    pub request_timeout: Duration,
    /// How long in-flight requests may take to finish at shutdown.
    pub shutdown_timeout: Duration,
    /// Most connections open at once on the HTTPS listener, handshaking ones included; one more
    /// is closed as soon as it is accepted (see [`limit`]).
    pub max_connections: usize,
    /// The rule settings.
    pub policy: Policy,
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
    policy: Arc<Policy>,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    default_timeout: Duration,
}

impl AppState {
    /// State for a router; `ready` starts false.
    pub fn new(policy: Policy, default_timeout: Duration) -> Self {
        AppState {
            policy: Arc::new(policy),
            metrics: Arc::new(Metrics::new()),
            ready: Arc::new(AtomicBool::new(false)),
            default_timeout,
        }
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
        .route("/validate", post(validate))
        .with_state(state)
}

fn probes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(|| async {
            error(
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

/// A JSON error for requests that are not admission reviews at all.
fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

#[derive(Debug, Deserialize)]
struct ValidateQuery {
    timeout: Option<String>,
}

/// `POST /validate`.
async fn validate(
    State(state): State<AppState>,
    Query(query): Query<ValidateQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    state.metrics.in_flight().inc();
    let response = validate_inner(&state, query, &headers, body, started).await;
    state.metrics.in_flight().dec();
    response
}

async fn validate_inner(
    state: &AppState,
    query: ValidateQuery,
    headers: &HeaderMap,
    body: Body,
    started: Instant,
) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        state.metrics.request("", false, 415, started.elapsed());
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
        );
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        state.metrics.request("", false, 413, started.elapsed());
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the AdmissionReview is larger than 7 MiB",
        );
    }
    let deadline = query
        .timeout
        .as_deref()
        .and_then(parse_duration)
        .unwrap_or(state.default_timeout);
    let collected =
        tokio::time::timeout(deadline, Limited::new(body, MAX_BODY_BYTES).collect()).await;
    let bytes = match collected {
        Err(_) => {
            state.metrics.request("", false, 408, started.elapsed());
            return error(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive before the deadline",
            );
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            state.metrics.request("", false, 413, started.elapsed());
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the AdmissionReview is larger than 7 MiB",
            );
        }
        Ok(Err(e)) => {
            state.metrics.request("", false, 400, started.elapsed());
            return error(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the request body: {e}"),
            );
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| review(&bytes, &state.policy)));
    let elapsed = started.elapsed();
    match outcome {
        Ok(Ok(reviewed)) => {
            let verdict = &reviewed.verdict;
            let request = &reviewed.review.request;
            let code = verdict.status.code;
            state
                .metrics
                .request(request.operation.as_str(), verdict.allowed, code, elapsed);
            state.metrics.findings(&verdict.findings);
            tracing::info!(
                uid = %request.uid,
                operation = request.operation.as_str(),
                name = %request.name,
                dry_run = request.dry_run,
                allowed = verdict.allowed,
                code,
                rules = ?verdict.rules,
                skipped = verdict.skipped,
                latency_us = elapsed.as_micros() as u64,
                "admission review"
            );
            json_response(StatusCode::OK, reviewed.body)
        }
        Ok(Err(e)) => bad_review(state, &e, elapsed),
        Err(_) => {
            let uid = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .as_ref()
                .and_then(crate::envelope::salvage_uid);
            state.metrics.request("", false, 500, elapsed);
            tracing::error!(
                uid = uid.as_deref().unwrap_or(""),
                "internal error: the engine panicked"
            );
            let message = "internal error in image-config-webhook; please report it";
            match uid {
                Some(uid) => {
                    let status = kube_core::response::Status::failure(message, "InternalError")
                        .with_code(500);
                    let body = crate::review::response_bytes(
                        crate::envelope::ADMISSION_V1,
                        &uid,
                        false,
                        &status,
                        &[],
                    );
                    json_response(StatusCode::INTERNAL_SERVER_ERROR, body)
                }
                None => error(StatusCode::INTERNAL_SERVER_ERROR, message),
            }
        }
    }
}

fn bad_review(state: &AppState, e: &ReviewError, elapsed: Duration) -> Response {
    state.metrics.request("", false, 400, elapsed);
    tracing::warn!(uid = e.uid.as_deref().unwrap_or(""), error = %e, "malformed admission review");
    match e.to_response() {
        // With a uid the API server shows our message to the user instead of a generic failure.
        Some(body) => json_response(StatusCode::OK, body),
        None => error(StatusCode::BAD_REQUEST, &e.message),
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
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
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
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
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ServerError::Io(e)),
            Err(e) => Err(ServerError::Io(std::io::Error::other(e))),
        }
    }
}

/// Binds a TCP listener; an IPv6 wildcard also accepts IPv4, whatever `bindv6only` says.
fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, ServerError> {
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
    Ok(socket.into())
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
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    if loaded.not_after < now {
        tracing::warn!(
            cert = %config.tls.cert.display(),
            not_after = loaded.not_after,
            "the serving certificate has expired; the API server will refuse it until it is rotated"
        );
    }
    let state = AppState::new(config.policy.clone(), config.request_timeout);
    state.metrics.cert_loaded(loaded.not_after);
    state.metrics.cert_reload("success");

    let listener = bind(config.listen)?;
    let addr = listener.local_addr().map_err(|error| ServerError::Bind {
        addr: config.listen,
        error,
    })?;
    let probe_listener = config.probe_addr.map(bind).transpose()?;
    let probe_addr = match &probe_listener {
        Some(l) => Some(
            l.local_addr()
                .map_err(|error| ServerError::Bind { addr, error })?,
        ),
        None => None,
    };

    let rustls = RustlsConfig::from_config(loaded.config.clone());
    let acceptor = LimitAcceptor::new(
        RustlsAcceptor::new(rustls.clone())
            .handshake_timeout(config.handshake_timeout)
            .acceptor(TcpConfigAcceptor::new(TcpSocketConfig::new().nodelay(true))),
        config.max_connections,
        "webhook",
        state.metrics.clone(),
    );
    let handle = axum_server::Handle::new();
    let mut server = axum_server::from_tcp(listener)
        .map_err(|error| ServerError::Bind { addr, error })?
        .acceptor(acceptor)
        .handle(handle.clone())
        .first_request_timeout(config.header_read_timeout);
    if !config.tls.http2 {
        server = server.http1_only();
    }
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(config.idle_timeout)
        .keep_alive(true);
    let app = app(state.clone());
    let server = tokio::spawn(server.serve(app.into_make_service()));

    let probe_handle = match probe_listener {
        Some(listener) => {
            let h = axum_server::Handle::new();
            let probe_server = axum_server::from_tcp(listener)
                .map_err(|error| ServerError::Bind { addr, error })?
                .acceptor(LimitAcceptor::new(
                    DefaultAcceptor::new(),
                    limit::PROBE_MAX_CONNECTIONS,
                    "probe",
                    state.metrics.clone(),
                ))
                .handle(h.clone())
                .first_request_timeout(config.header_read_timeout)
                .http1_only();
            tokio::spawn(
                probe_server.serve(probes().with_state(state.clone()).into_make_service()),
            );
            Some(h)
        }
        None => None,
    };

    let reloader = tokio::spawn(tls::reload_loop(
        config.tls.clone(),
        loaded,
        rustls,
        config.cert_poll_interval,
        state.metrics.clone(),
    ));

    if handle.listening().await.is_none() {
        return Err(ServerError::Bind {
            addr,
            error: std::io::Error::other("listener did not start"),
        });
    }
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
        shutdown_timeout: config.shutdown_timeout,
    })
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
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("10d"), None);
        assert_eq!(parse_duration(""), None);
    }
}
