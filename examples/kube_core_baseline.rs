//! The load benchmark's second baseline: a typical Rust admission webhook on the webhook's own
//! TLS and HTTP stack (the same listener, acceptors and timeouts as `baseline_server`). Every
//! `POST /validate` body is decoded with kube-core's `AdmissionReview<DynamicObject>`, converted
//! to an `AdmissionRequest` and answered allowed with `AdmissionResponse::from(&req)`, as
//! kube-rs's `admission_controller` example does, without any policy. A load run compares the
//! webhook with what a decode-and-allow webhook costs on the same stack (`benches/load.sh`).
//!
//! `cargo run --release --example kube_core_baseline -- CERT_DIR ADDR`
// Outside the pure core (clippy.toml): it reads the command line and certificate files.
#![allow(clippy::disallowed_methods)]

#[path = "common/bench_server.rs"]
mod bench_server;

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use image_config_webhook::server::AppState;
use kube_core::DynamicObject;
use kube_core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};

/// Decodes the review, allows it, and encodes the answer: a JSON body that is not an
/// AdmissionReview is answered 400 (as a JSON-extractor webhook would), a review without a
/// request is answered with kube-core's "invalid" response.
async fn validate(body: Bytes) -> Response {
    let review = match serde_json::from_slice::<AdmissionReview<DynamicObject>>(&body) {
        Ok(review) => review,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let response = match TryInto::<AdmissionRequest<DynamicObject>>::try_into(review) {
        Ok(req) => AdmissionResponse::from(&req),
        Err(e) => AdmissionResponse::invalid(e.to_string()),
    };
    match serde_json::to_vec(&response.into_review()) {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn app(state: AppState) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .with_state(state)
}

#[tokio::main]
async fn main() {
    bench_server::run("kube-core baseline", app).await;
}
