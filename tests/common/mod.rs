//! Helpers shared by the test files (servers, documents, deployment): each test crate
//! uses a subset, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod binary;

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Reads until the peer closes (EOF or error); returns what arrived.
pub async fn read_until_closed<S: AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
}

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
    json!({
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "config.openshift.io", "version": "v1", "kind": "Image"},
            "resource": {"group": "config.openshift.io", "version": "v1", "resource": "images"},
            "name": "cluster",
            "operation": "CREATE",
            "userInfo": {"username": "system:admin"},
            "object": {
                "apiVersion": "config.openshift.io/v1",
                "kind": "Image",
                "metadata": {"name": "cluster"},
                "spec": spec
            },
            "oldObject": null,
            "dryRun": false
        }
    })
}
