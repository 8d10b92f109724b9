//! The one test harness, shared by the test files, split by concern:
//!
//! - [`tmp`]: temporary directories;
//! - [`pki`]: a CA and the certificates it signs;
//! - [`tls`]: TLS client configurations and bounded connects;
//! - [`http`]: HTTP/1.1 clients (hyper's, and a raw one) and their [`http::Reply`];
//! - [`server`]: the webhook server in the test process (fixture, config, start, stop);
//! - [`binary`]: the real binary (spawn, wait until ready, exit, CPU and memory);
//! - here: waiting, metrics text, AdmissionReview documents.
//!
//! Each test crate compiles this module and uses a part of it, hence the `dead_code`
//! allowance; it spawns processes, reads files and waits on the clock, which the pure core may
//! not (clippy.toml), hence the other.
#![allow(dead_code)]
#![allow(clippy::disallowed_methods)]

pub mod binary;
pub mod http;
pub mod pki;
pub mod server;
pub mod tls;
pub mod tmp;

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Bound on any single network exchange of a test (connect, handshake, request).
pub const IO: Duration = Duration::from_secs(20);

/// The value of one series (`name` or `name{labels}`) in a text exposition.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)
            .filter(|rest| rest.starts_with(' '))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    })
}

/// `future`, or a panic naming `what` when it takes longer than `limit`.
pub async fn within<F: Future>(what: &str, limit: Duration, future: F) -> F::Output {
    match tokio::time::timeout(limit, future).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: nothing within {limit:?}"),
    }
}

/// Polls `check` until it holds; returns how long that took.
pub async fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if check() {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// An AdmissionReview of `api_version` for a CREATE of the Image `cluster` with `spec`, as the
/// API server sends it.
pub fn image_review(uid: &str, api_version: &str, spec: Value) -> Value {
    let object = json!({
        "apiVersion": "config.openshift.io/v1",
        "kind": "Image",
        "metadata": {"name": "cluster"},
        "spec": spec
    });
    let mut review = review_of(uid, "CREATE", &object, None);
    review["apiVersion"] = json!(api_version);
    review
}

/// An `admission.k8s.io/v1` AdmissionReview of `operation` on the Image `object` (and `old`),
/// as the API server sends it.
pub fn review_of(uid: &str, operation: &str, object: &Value, old: Option<&Value>) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "config.openshift.io", "version": "v1", "kind": "Image"},
            "resource": {"group": "config.openshift.io", "version": "v1", "resource": "images"},
            "name": "cluster",
            "operation": operation,
            "userInfo": {"username": "system:admin"},
            "object": object,
            "oldObject": old,
            "dryRun": false
        }
    })
}
