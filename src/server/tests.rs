//! The router's answers, through `tower::ServiceExt::oneshot`: no socket, no TLS. Everything
//! that depends only on the request (status codes, content types, envelope errors, verdicts,
//! probes, metrics) is asserted here; `tests/server_tls.rs` and `tests/adversarial.rs` keep
//! what needs a connection (handshakes, mTLS, keep-alive, rotation, limits, drain).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, header};
use hyper::body::Frame;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{AppState, MAX_BODY_BYTES, parse_duration, router};
use crate::policy::Policy;

const V1: &str = "admission.k8s.io/v1";
const V1BETA1: &str = "admission.k8s.io/v1beta1";
const R2_FIELD: &str = "spec.registrySources.blockedRegistries[0]";
const BLOCKED: &str = "registry.io/myrepo:latest";

/// The default deadline of the test state: longer than any test waits.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A status, the `Content-Type` and the body of one answer.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "HTTP {} body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    /// The `error` of a plain JSON error answer.
    fn error(&self) -> String {
        let doc = self.json();
        doc["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error string: {doc}"))
            .to_owned()
    }
}

/// Sends one request to a fresh router over `state`.
async fn send(state: &AppState, request: Request<Body>) -> Answer {
    let response = router(state.clone())
        .oneshot(request)
        .await
        .unwrap_or_else(|e: Infallible| match e {});
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("the answer's body");
    Answer {
        status,
        content_type,
        body: body.to_vec(),
    }
}

fn state() -> AppState {
    AppState::new(Policy::default(), DEFAULT_TIMEOUT)
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}

/// `POST uri` with `content_type` (if any) and `body`.
fn post(uri: &str, content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut builder = Request::post(uri);
    if let Some(ct) = content_type {
        builder = builder.header(header::CONTENT_TYPE, ct);
    }
    builder.body(body.into()).expect("request")
}

/// `POST /validate` of `review` as JSON.
fn post_review(review: &Value) -> Request<Body> {
    post("/validate", Some("application/json"), review.to_string())
}

/// A CREATE of the Image `cluster` with `spec`, as the API server sends it.
fn review(uid: &str, api_version: &str, spec: Value) -> Value {
    let object = json!({"apiVersion": "config.openshift.io/v1", "kind": "Image",
        "metadata": {"name": "cluster"}, "spec": spec});
    let request = json!({"uid": uid, "name": "cluster", "operation": "CREATE",
        "kind": {"group": "config.openshift.io", "version": "v1", "kind": "Image"},
        "resource": {"group": "config.openshift.io", "version": "v1", "resource": "images"},
        "userInfo": {"username": "system:admin"}, "object": object, "oldObject": null,
        "dryRun": false});
    json!({"apiVersion": api_version, "kind": "AdmissionReview", "request": request})
}

fn allowed(uid: &str, api_version: &str) -> Value {
    review(uid, api_version, json!({}))
}

/// Denied by R2: the release registry is blocked.
fn denied(uid: &str, api_version: &str) -> Value {
    review(
        uid,
        api_version,
        json!({"registrySources": {"blockedRegistries": [BLOCKED]}}),
    )
}

/// A 200 review answer in `api_version` for `uid`; returns its `response`.
fn verdict(answer: &Answer, uid: &str, api_version: &str) -> Value {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    let doc = answer.json();
    assert_eq!(doc["apiVersion"], api_version, "{doc}");
    assert_eq!(doc["kind"], "AdmissionReview", "{doc}");
    assert_eq!(doc["response"]["uid"], uid, "{doc}");
    doc["response"].clone()
}

/// A 200 answer refusing a malformed review (`allowed: false`, code 400); returns the message.
fn malformed(answer: &Answer, uid: &str, api_version: &str) -> String {
    let response = verdict(answer, uid, api_version);
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 400, "{response}");
    response["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A request body that yields `chunks`, then ends, or stalls for ever with `stall`.
struct Pieces {
    chunks: VecDeque<Bytes>,
    stall: bool,
}

impl Pieces {
    fn body(chunks: impl IntoIterator<Item = Bytes>, stall: bool) -> Body {
        Body::new(Pieces {
            chunks: chunks.into_iter().collect(),
            stall,
        })
    }
}

impl hyper::body::Body for Pieces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.chunks.pop_front() {
            Some(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
            // Never woken: the handler's deadline must end the wait.
            None if self.stall => Poll::Pending,
            None => Poll::Ready(None),
        }
    }
}

/// The value of one series (`name` or `name{labels}`) in a text exposition.
fn metric_in(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    })
}

fn metric(state: &AppState, series: &str) -> Option<f64> {
    metric_in(&state.metrics().encode(), series)
}

const IN_FLIGHT: &str = "image_config_webhook_requests_in_flight";

// ---------------------------------------------------------------------------------------------
// Verdicts
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn reviews_get_a_verdict_with_the_uid_and_the_api_version() {
    let state = state();
    for api_version in [V1, V1BETA1] {
        let answer = send(&state, post_review(&allowed("uid-allowed", api_version))).await;
        let response = verdict(&answer, "uid-allowed", api_version);
        assert_eq!(response["allowed"], true, "{response}");

        let answer = send(&state, post_review(&denied("uid-denied", api_version))).await;
        let response = verdict(&answer, "uid-denied", api_version);
        assert_eq!(response["allowed"], false, "{response}");
        let status = &response["status"];
        assert_eq!(status["code"], 422, "{response}");
        assert_eq!(status["reason"], "Invalid", "{response}");
        let cause = &status["details"]["causes"][0];
        assert_eq!(cause["field"], R2_FIELD, "{response}");
        assert_eq!(cause["reason"], "FieldValueInvalid", "{response}");
        let message = status["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("Invalid value: \"{BLOCKED}\"")),
            "{message}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Requests that are not judged
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_paths_are_404_with_a_json_error() {
    let state = state();
    for method in [Method::GET, Method::POST] {
        let request = Request::builder()
            .method(method.clone())
            .uri("/nope")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .expect("request");
        let answer = send(&state, request).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method} /nope");
        assert!(answer.error().contains("/validate"), "{}", answer.text());
    }
}

#[tokio::test]
async fn other_methods_on_validate_are_405() {
    let answer = send(&state(), get("/validate")).await;
    assert_eq!(
        answer.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{}",
        answer.text()
    );
}

#[tokio::test]
async fn the_content_type_must_be_json() {
    let state = state();
    let body = allowed("ct", V1).to_string();
    let plain = send(&state, post("/validate", Some("text/plain"), body.clone())).await;
    assert_eq!(plain.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(plain.error().contains("Content-Type"), "{}", plain.text());

    let missing = send(&state, post("/validate", None, body.clone())).await;
    assert_eq!(missing.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let with_charset = post("/validate", Some("application/json; charset=utf-8"), body);
    let answer = send(&state, with_charset).await;
    assert_eq!(verdict(&answer, "ct", V1)["allowed"], true);
}

#[tokio::test]
async fn malformed_json_with_a_readable_uid_is_answered_as_a_review() {
    let truncated = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"abc","operation":"CREATE","object":{"spec":{"#;
    let request = post("/validate", Some("application/json"), truncated);
    let answer = send(&state(), request).await;
    let message = malformed(&answer, "abc", V1);
    assert!(message.contains("malformed JSON"), "{message}");
}

#[tokio::test]
async fn a_bad_v1beta1_request_is_answered_in_v1beta1_with_its_uid() {
    let bad =
        json!({"apiVersion": V1BETA1, "kind": "AdmissionReview", "request": {"uid": "beta-bad"}});
    let answer = send(&state(), post_review(&bad)).await;
    let message = malformed(&answer, "beta-bad", V1BETA1);
    assert!(message.contains("request.operation"), "{message}");
}

#[tokio::test]
async fn a_body_without_a_request_is_400() {
    let answer = send(&state(), post_review(&json!({"kind": "AdmissionReview"}))).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.error().contains("no request"), "{}", answer.text());
}

#[tokio::test]
async fn invalid_utf8_in_the_uid_is_400() {
    let mut body = allowed("UIDX", V1).to_string().into_bytes();
    let at = body.windows(4).position(|w| w == b"UIDX").expect("the uid");
    body[at] = 0xff;
    let answer = send(&state(), post("/validate", Some("application/json"), body)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert!(!answer.error().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Size and time
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_declared_length_over_the_limit_is_413_before_the_body_is_read() {
    let state = state();
    for length in [8_000_000, MAX_BODY_BYTES + 1] {
        // The body never comes: the answer must come from the headers alone.
        let request = Request::post("/validate")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, length)
            .body(Pieces::body([], true))
            .expect("request");
        let answer = tokio::time::timeout(Duration::from_secs(2), send(&state, request))
            .await
            .unwrap_or_else(|_| panic!("Content-Length {length}: no answer"));
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{length}");
        assert!(answer.error().contains("7 MiB"), "{}", answer.text());
    }
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_is_413() {
    let state = state();
    // 8 MiB in 64 KiB frames, no Content-Length.
    let chunk = Bytes::from(vec![b' '; 64 * 1024]);
    let body = Pieces::body(std::iter::repeat_n(chunk, 128), false);
    let answer = send(&state, post("/validate", Some("application/json"), body)).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(!answer.error().is_empty());
    assert_eq!(metric(&state, IN_FLIGHT), Some(0.0));
}

#[tokio::test]
async fn the_timeout_parameter_bounds_a_stalled_body_with_408() {
    let state = state();
    let request = Request::post("/validate?timeout=300ms")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, 1000)
        .body(Pieces::body(
            [Bytes::from_static(b"{\"apiVersion\":")],
            true,
        ))
        .expect("request");
    let sent = Instant::now();
    let answer = send(&state, request).await;
    let waited = sent.elapsed();
    assert_eq!(
        answer.status,
        StatusCode::REQUEST_TIMEOUT,
        "{}",
        answer.text()
    );
    assert!(!answer.error().is_empty());
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "?timeout=300ms answered after {waited:?} (the default is {DEFAULT_TIMEOUT:?})"
    );
    assert_eq!(metric(&state, IN_FLIGHT), Some(0.0));
}

#[tokio::test]
async fn a_huge_timeout_parameter_is_capped_not_a_panic() {
    let state = state();
    for timeout in ["99999999999999999999", "1e400", "1h", "-5s", "NaN"] {
        let uri = format!("/validate?timeout={timeout}");
        let body = denied("t", V1).to_string();
        let answer = send(&state, post(&uri, Some("application/json"), body)).await;
        let response = verdict(&answer, "t", V1);
        assert_eq!(response["allowed"], false, "?timeout={timeout}");
    }
    let panics = "image_config_webhook_requests_rejected_total{reason=\"panic\"}";
    assert_eq!(metric(&state, panics), Some(0.0));
}

// ---------------------------------------------------------------------------------------------
// Probes and metrics
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn healthz_is_ok_and_readyz_follows_readiness() {
    let state = state();
    let healthz = send(&state, get("/healthz")).await;
    assert_eq!(
        (healthz.status, healthz.text().as_str()),
        (StatusCode::OK, "ok\n")
    );

    let readyz = send(&state, get("/readyz")).await;
    assert_eq!(
        readyz.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "before ready"
    );
    state.set_ready(true);
    let readyz = send(&state, get("/readyz")).await;
    assert_eq!(readyz.status, StatusCode::OK, "ready");
    state.set_ready(false);
    let readyz = send(&state, get("/readyz")).await;
    assert_eq!(readyz.status, StatusCode::SERVICE_UNAVAILABLE, "draining");
}

#[tokio::test]
async fn metrics_count_answers_and_findings_in_openmetrics_text() {
    let state = state();
    send(&state, post_review(&allowed("m-allowed", V1))).await;
    send(&state, post_review(&denied("m-denied", V1))).await;
    send(&state, post("/validate", Some("text/plain"), "{}")).await;

    let answer = send(&state, get("/metrics")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer
            .content_type
            .as_deref()
            .is_some_and(|ct| ct.starts_with("application/openmetrics-text")),
        "{:?}",
        answer.content_type
    );
    let text = answer.text();
    let value = |series: &str| metric_in(&text, series);
    let requests =
        |labels: &str| value(&format!("image_config_webhook_requests_total{{{labels}}}"));
    assert_eq!(
        requests(r#"operation="CREATE",allowed="true",code="200""#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        requests(r#"operation="CREATE",allowed="false",code="422""#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        requests(r#"operation="",allowed="false",code="415""#),
        Some(1.0),
        "{text}"
    );
    let r2 = value(r#"image_config_webhook_rule_findings_total{rule="R2",kind="error"}"#);
    assert!(r2.is_some_and(|n| n >= 1.0), "{text}");
    assert_eq!(value(IN_FLIGHT), Some(0.0), "{text}");
    let durations = "image_config_webhook_request_duration_seconds_count";
    assert_eq!(value(durations), Some(3.0), "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------------------------

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
    // Too large for a Duration: no duration, never a panic.
    assert_eq!(parse_duration("99999999999999999999"), None);
    assert_eq!(parse_duration("99999999999999999999h"), None);
    assert_eq!(parse_duration(&"9".repeat(400)), None);
}
