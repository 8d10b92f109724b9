//! The load benchmark's no-op baseline: the webhook's own TLS and HTTP stack (listener,
//! acceptors, timeouts) answering every `POST /validate` with a constant AdmissionReview,
//! so that a load run measures what the engine adds on top.
//!
//! `cargo run --release --example baseline_server -- CERT_DIR ADDR`
// Outside the pure core (clippy.toml): it reads fixtures, spawns the binary and times things.
#![allow(clippy::disallowed_methods)]

#[path = "common/bench_server.rs"]
mod bench_server;

use axum::Router;
use axum::http::header;
use axum::routing::post;
use image_config_webhook::server::AppState;

const CONSTANT: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"baseline","allowed":true,"status":{"status":"Success","code":200}}}"#;

fn app(state: AppState) -> Router {
    Router::new()
        .route(
            "/validate",
            post(|| async { ([(header::CONTENT_TYPE, "application/json")], CONSTANT) }),
        )
        .with_state(state)
}

#[tokio::main]
async fn main() {
    bench_server::run("baseline", app).await;
}
