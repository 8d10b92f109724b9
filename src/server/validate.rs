//! `POST /validate`: one AdmissionReview in, one out, within budgets of memory, time and output.
//!
//! The path of a request, and what bounds each step:
//!
//! 1. **Headers.** Not JSON: 415. A `Content-Length` over [`MAX_BODY_BYTES`]: 413, before any byte
//!    of the body is read.
//! 2. **Deadline.** `?timeout=` (the API server sends the webhook's `timeoutSeconds`), capped at
//!    [`MAX_REQUEST_TIMEOUT`], or `--request-timeout`. Everything below happens before it.
//! 3. **Body.** Its bytes are taken from a process-wide budget of bodies in flight before they
//!    are held: the declared `Content-Length` at once (so a refused client has sent nothing
//!    yet), a chunked body frame by frame. Bodies up to [`SMALL_BODY_BYTES`] (every real Image
//!    review) and larger ones have separate budgets ([`BodyBudgets`]), so that stalled large
//!    bodies cannot starve the API server's small ones. Each connection also has a budget
//!    Each client address also has budgets over all its connections and streams
//!    ([`PEER_SMALL_BODY_BUDGET`], [`PEER_LARGE_BODY_BUDGET`]). Over any:
//!    503 with `Retry-After`, counted in
//!    `image_config_webhook_requests_rejected_total{reason="body_budget"}`. Not there by the
//!    deadline: 408.
//! 4. **Review.** Behind a lane: bodies up to [`SMALL_BODY_BYTES`] (every real Image review)
//!    share [`small_lane_permits`] slots, larger ones go one at a time, so that the memory of
//!    reviews in progress is bounded and a large review never delays a small one or `/healthz`.
//!    A body up to [`INLINE_BODY_BYTES`] (every review the API server sends) is judged on the
//!    connection's own task, unless the cluster context has mirror sets (its model is rebuilt
//!    per review); a larger one, or one with mirror sets, off the async workers, on a small pool
//!    of review threads. A review still queued or running at the
//!    deadline is answered with a failure (`code` 504) and counted (`reason="review_timeout"`);
//!    the work itself keeps its slot until it ends, so abandoned work cannot pile up.
//! 5. **Answer.** The engine bounds the warnings and causes it sends (see
//!    [`crate::review`]); the connection's writes have a timeout (see [`super::limit`]).
//!
//! Every path records one `requests_total` sample and logs at most one line, through a rate
//! budget; the in-flight gauge is held by a guard, and a panic anywhere in the handler is caught
//! and answered 500 in the review's own apiVersion.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use kube_core::response::Status;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::AppState;
use super::limit::Connection;
use crate::engine::FindingClass;
use crate::envelope::{ADMISSION_V1, ADMISSION_V1BETA1, salvage_uid_from_bytes};
use crate::review::{ReviewError, ReviewErrorKind, response_bytes, review_within};

/// Largest AdmissionReview body accepted (the API server's own limit for objects is 3 MiB of
/// etcd data; an UPDATE carries two objects).
pub const MAX_BODY_BYTES: usize = 7 * 1024 * 1024;

/// How many bytes of request bodies may be held at once across all connections; a body that
/// would pass its budget is refused with 503 and `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyBudgets {
    /// For bodies up to [`SMALL_BODY_BYTES`]. Default 16 MiB: 64 bodies of that size, thousands
    /// of real reviews.
    pub small: usize,
    /// For larger bodies and chunked ones. Default 16 MiB: two bodies of the largest size.
    pub large: usize,
}

impl Default for BodyBudgets {
    fn default() -> Self {
        BodyBudgets {
            small: 16 * 1024 * 1024,
            large: 16 * 1024 * 1024,
        }
    }
}

/// Bytes of small request bodies one client address may hold at once, over all its connections
/// and streams: the API server's reviews are a few KiB, while 64 stalled uploads of 256 KiB from
/// one address would hold the whole small budget.
pub const PEER_SMALL_BODY_BUDGET: usize = 512 * 1024;

/// Bytes of large request bodies one client address may hold at once: one of the largest size.
pub const PEER_LARGE_BODY_BUDGET: usize = MAX_BODY_BYTES;

/// Bodies up to this size take the small budget and the small review lane. A real Image review
/// is a few KiB; the largest legal Image (3 × 1,024 entries of 256 characters) is about 800 KiB
/// per object, so large bodies are rare and only hostile ones are near the limit.
pub const SMALL_BODY_BYTES: usize = 256 * 1024;

/// The budget, in estimated bytes, of a small body's decoded tree ([`crate::bounded`]): 64 times
/// the largest small body. Real reviews need a few hundred KiB.
pub const SMALL_REVIEW_BUDGET: usize = 16 * 1024 * 1024;

/// The budget of a large body's decoded tree. An Image whose old and new objects each hold
/// 20,000 `allowedRegistriesForImport` entries needs about 30 MiB; the largest list fleet
/// telemetry has seen holds 669 entries. A body past the budget is answered 413.
pub const LARGE_REVIEW_BUDGET: usize = 64 * 1024 * 1024;

/// Bodies up to this size (every Image review the API server sends is a few KiB) are judged
/// on the connection's own task, without a hand-off to a review thread: their review is bounded
/// by their size (about 0.26 ms for 16 KiB of registry entries, the worst measured, against
/// 13 µs for a typical review), so the deadline cannot pass during one. Larger bodies go to the
/// review threads, where the deadline is kept.
pub const INLINE_BODY_BYTES: usize = 16 * 1024;

/// The API server's own maximum for a webhook's `timeoutSeconds`; a longer `?timeout=` is cut
/// to it.
pub const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What a client is told to wait before retrying a request refused for lack of budget.
const RETRY_AFTER_SECONDS: &str = "1";

/// Reviews of small bodies run at most this many at once: one per core, at least two.
pub fn small_lane_permits() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

/// The budgets shared by every request.
#[derive(Debug)]
pub struct Budgets {
    /// Bytes of small bodies in flight, process-wide.
    small_bodies: Arc<Semaphore>,
    /// Bytes of large and chunked bodies in flight, process-wide.
    large_bodies: Arc<Semaphore>,
    /// Slots for reviews of small bodies.
    small_lane: Arc<Semaphore>,
    /// The one slot for a review of a large body.
    large_lane: Arc<Semaphore>,
    /// The threads reviews of small bodies run on, one per slot.
    small_pool: ReviewPool,
    /// The thread reviews of large bodies run on. Its own, so that only one thread's malloc
    /// arena ever holds a large review's memory (an arena keeps what it had, for the next).
    large_pool: ReviewPool,
}

impl Budgets {
    /// Budgets with these body budgets.
    pub fn new(bodies: BodyBudgets) -> Self {
        let small = small_lane_permits();
        Budgets {
            small_bodies: Arc::new(Semaphore::new(bodies.small)),
            large_bodies: Arc::new(Semaphore::new(bodies.large)),
            small_lane: Arc::new(Semaphore::new(small)),
            large_lane: Arc::new(Semaphore::new(1)),
            small_pool: ReviewPool::new("review", small),
            large_pool: ReviewPool::new("review-large", 1),
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads for reviews. Not tokio's blocking pool: that one starts a new thread
/// when all are busy, and each new thread gets its own malloc arena, which keeps the memory of
/// a large review long after it ended. A few long-lived threads reuse theirs.
#[derive(Debug)]
struct ReviewPool {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl ReviewPool {
    fn new(name: &str, threads: usize) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only to take a job, not to run it.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            // A job catches its own panics.
                            Ok(job) => job(),
                            // The server is gone.
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a review thread");
            }
        }
        ReviewPool { jobs }
    }

    /// Runs `work` on a pool thread; its result, or `None` when it panicked or the pool is gone.
    fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> tokio::sync::oneshot::Receiver<Option<T>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let out = catch_unwind(AssertUnwindSafe(work)).ok();
            let _ = tx.send(out);
        });
        // A send error drops the job, and with it `tx`: the receiver then reports `None`.
        let _ = self.jobs.send(job);
        rx
    }
}

/// Why `/validate` answers without a verdict from the engine.
#[derive(Debug)]
pub enum Rejection {
    /// The body is not declared as JSON: 415.
    UnsupportedMediaType,
    /// The body is larger than [`MAX_BODY_BYTES`]: 413.
    TooLarge,
    /// The body would pass the connection's or the process's body budget: 503 with
    /// `Retry-After`.
    BodyBudget,
    /// The body did not arrive before the deadline: 408.
    BodyTimeout,
    /// The body could not be read: 400.
    Body(String),
    /// The body is not an AdmissionReview the engine can judge: 400, or 200 with the message
    /// when a uid could be read.
    Review(ReviewError),
    /// The review did not finish before the deadline: 504, or 200 with the failure when a uid
    /// could be read.
    ReviewTimeout {
        /// The deadline that passed.
        deadline: Duration,
        /// The uid and apiVersion, when they could be read from the body.
        echo: Option<(String, &'static str)>,
    },
    /// The handler panicked: 500, in the review's own apiVersion when a uid could be read.
    Panic {
        /// The uid and apiVersion, when they could be read from the body.
        echo: Option<(String, &'static str)>,
    },
}

impl Rejection {
    /// The HTTP status of the answer, for the metrics (a verdict-shaped answer is 200 on the
    /// wire; the metric keeps the status code inside it).
    fn code(&self) -> u16 {
        match self {
            Rejection::UnsupportedMediaType => 415,
            Rejection::TooLarge => 413,
            Rejection::BodyBudget => 503,
            Rejection::BodyTimeout => 408,
            Rejection::Body(_) => 400,
            Rejection::Review(e) => e.kind().code_and_reason().0,
            Rejection::ReviewTimeout { .. } => 504,
            Rejection::Panic { .. } => 500,
        }
    }

    /// The `reason` label of `requests_rejected_total`.
    fn reason(&self) -> &'static str {
        match self {
            Rejection::UnsupportedMediaType => "unsupported_media_type",
            Rejection::TooLarge => "too_large",
            Rejection::BodyBudget => "body_budget",
            Rejection::BodyTimeout => "body_timeout",
            Rejection::Body(_) => "body",
            Rejection::Review(e) if e.kind() == ReviewErrorKind::TooLarge => "review_budget",
            Rejection::Review(_) => "malformed_review",
            Rejection::ReviewTimeout { .. } => "review_timeout",
            Rejection::Panic { .. } => "panic",
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        match self {
            Rejection::UnsupportedMediaType => error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/json",
            ),
            Rejection::TooLarge => error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the AdmissionReview is larger than 7 MiB",
            ),
            Rejection::BodyBudget => {
                let mut response = error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many request bodies in flight; retry shortly",
                );
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECONDS),
                );
                response
            }
            Rejection::BodyTimeout => error(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive before the deadline",
            ),
            Rejection::Body(message) => error(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the request body: {message}"),
            ),
            // With a uid the API server shows our message to the user instead of a generic failure.
            Rejection::Review(e) => match e.to_response() {
                Some(body) => json_response(StatusCode::OK, body),
                None => error(
                    StatusCode::from_u16(e.kind().code_and_reason().0)
                        .unwrap_or(StatusCode::BAD_REQUEST),
                    &e.to_string(),
                ),
            },
            Rejection::ReviewTimeout { deadline, echo } => {
                let message = format!(
                    "image-config-webhook could not finish the review within {deadline:?}; the webhook is overloaded or the object is unusually large"
                );
                failure(StatusCode::GATEWAY_TIMEOUT, echo, &message, "Timeout")
            }
            Rejection::Panic { echo } => failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                echo,
                "internal error in image-config-webhook; please report it",
                "InternalError",
            ),
        }
    }
}

/// A failure answered as a denial when the uid is known (the API server shows the message), as
/// a plain JSON error otherwise.
fn failure(
    status: StatusCode,
    echo: Option<(String, &'static str)>,
    message: &str,
    reason: &str,
) -> Response {
    match echo {
        Some((uid, api_version)) => {
            let status_body = Status::failure(message, reason).with_code(status.as_u16());
            json_response(
                StatusCode::OK,
                response_bytes(api_version, &uid, false, &status_body, &[]),
            )
        }
        None => error(status, message),
    }
}

/// A JSON error for requests that are not admission reviews at all.
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The uid and apiVersion of a body that could not be judged, read without decoding it whole.
fn echo_of(bytes: &[u8]) -> Option<(String, &'static str)> {
    let uid = salvage_uid_from_bytes(bytes)?;
    // The apiVersion leads a review the API server sends; only the head is searched.
    let head = bytes.get(..4096).unwrap_or(bytes);
    let needle = b"\"admission.k8s.io/v1beta1\"";
    let v1beta1 = head.windows(needle.len()).any(|w| w == needle);
    Some((
        uid,
        if v1beta1 {
            ADMISSION_V1BETA1
        } else {
            ADMISSION_V1
        },
    ))
}

/// Keeps a gauge one higher while it lives, whichever way the work it counts ends.
struct Counting(Gauge);

impl Counting {
    fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Counting(gauge.clone())
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What a review produced, kept small: the decoded objects are dropped on the blocking thread.
struct Judged {
    body: Vec<u8>,
    /// The request body's budget, given back once the answer is written.
    held: Vec<OwnedSemaphorePermit>,
    uid: String,
    operation: &'static str,
    name: String,
    dry_run: bool,
    allowed: bool,
    code: u16,
    rules: Vec<&'static str>,
    skipped: bool,
    /// `(rule, class, how many)`, listed and counted-only findings together.
    findings: Vec<(&'static str, FindingClass, usize)>,
}

/// `POST /validate`.
pub(super) async fn validate(State(state): State<AppState>, request: Request) -> Response {
    let started = Instant::now();
    let _in_flight = Counting::new(state.metrics.in_flight());
    let peer = request
        .extensions()
        .get::<Arc<Connection>>()
        .map(|c| c.peer());
    // A panic anywhere below, the engine included, is answered; the body is kept aside so that
    // the answer can still echo the uid.
    let salvage: Arc<std::sync::Mutex<Option<axum::body::Bytes>>> = Arc::default();
    let outcome = CatchUnwind::new(judge(&state, request, salvage.clone())).await;
    let result = match outcome {
        Ok(result) => result,
        Err(()) => {
            let bytes = salvage.lock().ok().and_then(|mut b| b.take());
            Err(Rejection::Panic {
                echo: bytes.as_deref().and_then(echo_of),
            })
        }
    };
    let elapsed = started.elapsed();
    match result {
        Ok(judged) => {
            state
                .metrics
                .request(judged.operation, judged.allowed, judged.code, elapsed);
            state.metrics.findings(&judged.findings);
            // The budget is asked only for a line that would be written.
            if tracing::enabled!(tracing::Level::INFO) && state.log_budget.allow() {
                tracing::info!(
                    uid = %sanitize(&judged.uid, MAX_LOGGED_UID),
                    operation = judged.operation,
                    name = %sanitize(&judged.name, MAX_LOGGED_NAME),
                    dry_run = judged.dry_run,
                    allowed = judged.allowed,
                    code = judged.code,
                    rules = ?judged.rules,
                    skipped = judged.skipped,
                    latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
                    "admission review"
                );
            }
            let answer = axum::body::Bytes::from_owner(Answer {
                body: judged.body,
                _held: judged.held,
            });
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                Body::from(answer),
            )
                .into_response()
        }
        Err(rejection) => {
            state.metrics.request("", false, rejection.code(), elapsed);
            state.metrics.rejected(rejection.reason());
            log_rejection(&state, &rejection, peer);
            rejection.into_response()
        }
    }
}

fn log_rejection(state: &AppState, rejection: &Rejection, peer: Option<std::net::SocketAddr>) {
    let written = match rejection {
        Rejection::Review(_) | Rejection::ReviewTimeout { .. } => {
            tracing::enabled!(tracing::Level::WARN)
        }
        _ => tracing::enabled!(tracing::Level::INFO),
    };
    // Formatted here, when a line is written, not for every request.
    let peer = peer.map(|p| p.to_string()).unwrap_or_default();
    let peer = peer.as_str();
    match rejection {
        Rejection::Panic { echo } => {
            // Always logged: a panic is a bug to report, and it cannot be caused at a high rate
            // without the rate showing in the metrics too.
            let uid = echo.as_ref().map(|(u, _)| sanitize(u, MAX_LOGGED_UID));
            tracing::error!(
                uid = uid.as_deref().unwrap_or(""),
                peer,
                "internal error: the engine panicked"
            );
        }
        // The budget is asked only for a line that would be written.
        _ if !written || !state.log_budget.allow() => {}
        Rejection::Review(e) => {
            let uid = e.uid().map(|u| sanitize(u, MAX_LOGGED_UID));
            tracing::warn!(
                uid = uid.as_deref().unwrap_or(""),
                peer,
                error = %sanitize(&e.to_string(), MAX_LOGGED_MESSAGE),
                "admission review not judged"
            );
        }
        Rejection::ReviewTimeout { deadline, echo } => {
            let uid = echo.as_ref().map(|(u, _)| sanitize(u, MAX_LOGGED_UID));
            tracing::warn!(
                uid = uid.as_deref().unwrap_or(""),
                peer,
                deadline_ms = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
                "review not finished before the deadline; answered with a failure"
            );
        }
        other => tracing::info!(
            peer,
            reason = other.reason(),
            code = other.code(),
            "request refused"
        ),
    }
}

/// Steps 1 to 4 of the module's description.
async fn judge(
    state: &AppState,
    request: Request,
    salvage: Arc<std::sync::Mutex<Option<axum::body::Bytes>>>,
) -> Result<Judged, Rejection> {
    let (parts, body) = request.into_parts();
    if !is_json(&parts.headers) {
        return Err(Rejection::UnsupportedMediaType);
    }
    let declared = declared_length(&parts.headers);
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(Rejection::TooLarge);
    }
    let timeout = request_timeout(parts.uri.query(), state.default_timeout);
    let deadline = tokio::time::Instant::now() + timeout;
    let connection = parts.extensions.get::<Arc<Connection>>().cloned();
    let (bytes, held) = tokio::time::timeout_at(
        deadline,
        collect(body, declared, &state.budgets, connection.as_deref()),
    )
    .await
    .map_err(|_| Rejection::BodyTimeout)??;
    if let Ok(mut slot) = salvage.lock() {
        *slot = Some(bytes.clone());
    }

    let (lane, pool, budget) = if bytes.len() <= SMALL_BODY_BYTES {
        (
            &state.budgets.small_lane,
            &state.budgets.small_pool,
            SMALL_REVIEW_BUDGET,
        )
    } else {
        (
            &state.budgets.large_lane,
            &state.budgets.large_pool,
            LARGE_REVIEW_BUDGET,
        )
    };
    let timed_out = |bytes: &[u8]| Rejection::ReviewTimeout {
        deadline: timeout,
        echo: echo_of(bytes),
    };
    let Ok(Ok(slot)) = tokio::time::timeout_at(deadline, lane.clone().acquire_owned()).await else {
        return Err(timed_out(&bytes));
    };
    let running = Counting::new(state.metrics.reviews_running());
    let policy = state.policy.load_full();
    // A cluster context with mirror sets is modelled again in every review, at a cost that grows
    // with the mirror sets: such a review goes to the pool, under its deadline.
    let mirrored = policy.context().is_some_and(|c| {
        !(c.digest_mirror_sets.is_empty()
            && c.tag_mirror_sets.is_empty()
            && c.content_source_policies.is_empty())
    });
    if bytes.len() <= INLINE_BODY_BYTES && !mirrored {
        // Judged where it arrived: a review this small takes microseconds, less than handing it
        // to a pool thread and back would (two context switches on a busy core).
        let judged = judge_bytes(&bytes, &policy, budget);
        drop((slot, running));
        let mut judged = judged.map_err(Rejection::Review)?;
        judged.held = held;
        return Ok(judged);
    }
    let work_bytes = bytes.clone();
    let work = pool.run(move || {
        // The lane's slot and the gauge are held until the work ends, even when the answer has
        // already gone out as a timeout; the body's budget too, and then it goes with the
        // answer until that is written out.
        let _held = (slot, running);
        (judge_bytes(&work_bytes, &policy, budget), held)
    });
    match tokio::time::timeout_at(deadline, work).await {
        Err(_) => Err(timed_out(&bytes)),
        Ok(Err(_)) | Ok(Ok(None)) => Err(Rejection::Panic {
            echo: echo_of(&bytes),
        }),
        Ok(Ok(Some((judged, held)))) => {
            let mut judged = judged.map_err(Rejection::Review)?;
            judged.held = held;
            Ok(judged)
        }
    }
}

/// An answer's bytes with the budget of the request body they answer: the budget is given back
/// when the connection has written the bytes out (or dropped them), so that clients that do not
/// read their answers hold budget, not unaccounted memory.
struct Answer {
    body: Vec<u8>,
    _held: Vec<OwnedSemaphorePermit>,
}

impl AsRef<[u8]> for Answer {
    fn as_ref(&self) -> &[u8] {
        &self.body
    }
}

fn judge_bytes(
    bytes: &[u8],
    policy: &crate::policy::Policy,
    budget: usize,
) -> Result<Judged, ReviewError> {
    let reviewed = review_within(bytes, policy, budget)?;
    let request = reviewed.request;
    let verdict = reviewed.verdict;
    // A few distinct (rule, class) pairs, however many findings: one metric update each.
    let mut findings: Vec<(&'static str, FindingClass, usize)> = reviewed.unlisted_findings;
    for &(rule, class) in &verdict.findings {
        match findings
            .iter_mut()
            .find(|(r, c, _)| *r == rule && *c == class)
        {
            Some(entry) => entry.2 += 1,
            None => findings.push((rule, class, 1)),
        }
    }
    Ok(Judged {
        body: reviewed.body,
        held: Vec::new(),
        uid: request.uid,
        operation: request.operation.as_str(),
        name: request.name,
        dry_run: request.dry_run,
        allowed: verdict.allowed,
        code: verdict.status.code,
        rules: verdict.rules,
        skipped: verdict.skipped,
        findings,
    })
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// The request's deadline: `?timeout=` when it parses, else `default`; never over
/// [`MAX_REQUEST_TIMEOUT`].
fn request_timeout(query: Option<&str>, default: Duration) -> Duration {
    query
        .and_then(timeout_parameter)
        .unwrap_or(default)
        .min(MAX_REQUEST_TIMEOUT)
}

/// The `timeout` parameter of a query string (`timeout=10s`), when it parses.
fn timeout_parameter(query: &str) -> Option<Duration> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("timeout="))
        .and_then(super::parse_duration)
}

/// Reads the body, taking its bytes from the budgets before holding them: the declared length at
/// once, a chunked body frame by frame. Returns the bytes and the budget they hold.
async fn collect(
    mut body: Body,
    declared: Option<u64>,
    budgets: &Budgets,
    connection: Option<&Connection>,
) -> Result<(axum::body::Bytes, Vec<OwnedSemaphorePermit>), Rejection> {
    let mut process: Option<OwnedSemaphorePermit> = None;
    let mut per_peer: Option<OwnedSemaphorePermit> = None;
    let small = declared.is_some_and(|len| len <= SMALL_BODY_BYTES as u64);
    let mut reserve = |n: usize| -> Result<(), Rejection> {
        let n = u32::try_from(n).map_err(|_| Rejection::TooLarge)?;
        let budget = if small {
            &budgets.small_bodies
        } else {
            &budgets.large_bodies
        };
        take(&mut process, budget, n)?;
        if let Some(c) = connection {
            let peer = if small {
                c.small_body_budget()
            } else {
                c.large_body_budget()
            };
            take(&mut per_peer, peer, n)?;
        }
        Ok(())
    };
    // hyper holds a body to its declared length; more or less is a body error.
    let declared = declared.and_then(|n| usize::try_from(n).ok());
    if let Some(n) = declared {
        reserve(n)?;
    }
    let mut chunks: Vec<axum::body::Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Rejection::Body(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        total = total.saturating_add(data.len());
        if total > MAX_BODY_BYTES {
            return Err(Rejection::TooLarge);
        }
        if declared.is_none() {
            reserve(data.len())?;
        }
        chunks.push(data);
    }
    let bytes = match chunks.len() {
        0 => axum::body::Bytes::new(),
        1 => chunks.swap_remove(0),
        _ => {
            let mut joined = Vec::with_capacity(total);
            for chunk in &chunks {
                joined.extend_from_slice(chunk);
            }
            axum::body::Bytes::from(joined)
        }
    };
    Ok((bytes, process.into_iter().chain(per_peer).collect()))
}

/// Adds `n` permits of `budget` to `permit`, or refuses.
fn take(
    permit: &mut Option<OwnedSemaphorePermit>,
    budget: &Arc<Semaphore>,
    n: u32,
) -> Result<(), Rejection> {
    let more = budget
        .clone()
        .try_acquire_many_owned(n)
        .map_err(|_| Rejection::BodyBudget)?;
    match permit {
        Some(p) => p.merge(more),
        None => *permit = Some(more),
    }
    Ok(())
}

/// Most characters of a uid written to the log (the answer still echoes it whole).
pub const MAX_LOGGED_UID: usize = 128;
/// Most characters of an object name written to the log (a DNS subdomain's maximum).
pub const MAX_LOGGED_NAME: usize = 253;
/// Most characters of an error message written to the log.
const MAX_LOGGED_MESSAGE: usize = 1024;

/// A request-derived string made safe for a log line: control characters (newlines, ESC) are
/// escaped as `\n`, `\u{1b}`, and anything past `max` characters is cut, saying how much.
pub fn sanitize(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max) + 16);
    for (count, c) in s.chars().enumerate() {
        if count == max {
            let rest = s.chars().count() - max;
            out.push_str(&format!("…({rest} more characters)"));
            break;
        }
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Control characters, the Unicode line and paragraph separators (which some log viewers break
/// lines at) and the bidirectional overrides (which reorder what a reader sees).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// A token bucket for per-request log lines: a flood of requests cannot flood the log. Lines
/// over the budget are dropped and counted; the next line that passes reports how many.
#[derive(Debug)]
pub struct LogBudget {
    /// Tokens, when they were last refilled, and when drops were last reported.
    state: std::sync::Mutex<(f64, Instant, Instant)>,
    suppressed: AtomicU64,
}

/// Per-request log lines per second, on average.
pub const LOG_LINES_PER_SECOND: f64 = 50.0;
/// Per-request log lines allowed in a burst.
pub const LOG_BURST: f64 = 200.0;
/// How often, at most, a line reports how many lines were dropped.
pub const LOG_DROP_REPORT_INTERVAL: Duration = Duration::from_secs(10);

impl Default for LogBudget {
    fn default() -> Self {
        let now = Instant::now();
        // The first drops are reported as soon as a line passes again.
        let reported = now.checked_sub(LOG_DROP_REPORT_INTERVAL).unwrap_or(now);
        LogBudget {
            state: std::sync::Mutex::new((LOG_BURST, now, reported)),
            suppressed: AtomicU64::new(0),
        }
    }
}

impl LogBudget {
    /// Whether one more line may be written now. Lines over the budget are counted; at most
    /// every [`LOG_DROP_REPORT_INTERVAL`], one line says how many.
    pub fn allow(&self) -> bool {
        let (allowed, report) = match self.state.lock() {
            Ok(mut state) => {
                let now = Instant::now();
                let refill = now.duration_since(state.1).as_secs_f64() * LOG_LINES_PER_SECOND;
                state.0 = (state.0 + refill).min(LOG_BURST);
                state.1 = now;
                let allowed = state.0 >= 1.0;
                if allowed {
                    state.0 -= 1.0;
                }
                let report = allowed
                    && self.suppressed.load(Ordering::Relaxed) > 0
                    && now.duration_since(state.2) >= LOG_DROP_REPORT_INTERVAL;
                if report {
                    state.2 = now;
                }
                (allowed, report)
            }
            Err(_) => (true, false),
        };
        if !allowed {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
        } else if report {
            let dropped = self.suppressed.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                tracing::warn!(
                    dropped,
                    "per-request log lines dropped by the log rate budget"
                );
            }
        }
        allowed
    }
}

/// A future whose panic is caught and returned as `Err(())`.
struct CatchUnwind<F> {
    inner: Pin<Box<F>>,
}

impl<F> CatchUnwind<F> {
    fn new(inner: F) -> Self {
        CatchUnwind {
            inner: Box::pin(inner),
        }
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.inner;
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_escapes_control_characters_and_truncates() {
        assert_eq!(sanitize("abc", 128), "abc");
        assert_eq!(sanitize("a\nb\u{1b}[31mc", 128), "a\\nb\\u{1b}[31mc");
        assert_eq!(
            sanitize("a\u{2028}b\u{202e}c", 128),
            "a\\u{2028}b\\u{202e}c"
        );
        assert_eq!(sanitize("abcdef", 3), "abc…(3 more characters)");
        assert_eq!(sanitize("ééé", 2), "éé…(1 more characters)");
    }

    #[test]
    fn log_budget_allows_a_burst_then_drops() {
        let budget = LogBudget::default();
        let allowed = (0..1000).filter(|_| budget.allow()).count();
        // The burst, plus what refilled while the loop ran.
        assert!(
            (LOG_BURST as usize..LOG_BURST as usize + 20).contains(&allowed),
            "{allowed}"
        );
    }

    #[test]
    fn timeout_parameter_is_read_from_the_query() {
        assert_eq!(
            timeout_parameter("timeout=10s"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            timeout_parameter("a=b&timeout=500ms"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(timeout_parameter("timeout=99999999999999999999"), None);
        assert_eq!(timeout_parameter("x=1"), None);
    }

    #[test]
    fn request_timeout_is_capped_at_the_api_servers_maximum() {
        let default = Duration::from_secs(10);
        assert_eq!(request_timeout(None, default), default);
        assert_eq!(
            request_timeout(Some("timeout=5s"), default),
            Duration::from_secs(5)
        );
        assert_eq!(
            request_timeout(Some("timeout=1h"), default),
            MAX_REQUEST_TIMEOUT
        );
        assert_eq!(
            request_timeout(Some("timeout=99999999999999999999"), default),
            default
        );
        assert_eq!(request_timeout(Some("timeout=1e400"), default), default);
        assert_eq!(request_timeout(Some("timeout=-1s"), default), default);
    }

    #[test]
    fn echo_reads_uid_and_version() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1beta1","request":{"uid":"u-1"}}"#;
        assert_eq!(echo_of(body), Some(("u-1".to_owned(), ADMISSION_V1BETA1)));
        let body = br#"{"apiVersion":"admission.k8s.io/v1","request":{"uid":"u-2"}}"#;
        assert_eq!(echo_of(body), Some(("u-2".to_owned(), ADMISSION_V1)));
    }
}
