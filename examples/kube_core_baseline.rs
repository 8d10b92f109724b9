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

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use image_config_webhook::Policy;
use image_config_webhook::server::tls::{TlsSettings, TlsVersion};
use image_config_webhook::server::{AppState, ServeConfig, shutdown_signal, start_with};
use kube_core::DynamicObject;
use kube_core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use std::time::Duration;

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
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "certs".to_owned()));
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:9443".to_owned());
    let Ok(listen) = listen.parse() else {
        eprintln!("usage: kube_core_baseline CERT_DIR ADDR");
        std::process::exit(2);
    };
    let config = ServeConfig {
        listen,
        probe_addr: None,
        tls: TlsSettings {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
            client_ca: None,
            min_version: TlsVersion::Tls12,
            http2: false,
        },
        cert_poll_interval: Duration::from_secs(10),
        handshake_timeout: Duration::from_secs(5),
        header_read_timeout: Duration::from_secs(5),
        idle_timeout: image_config_webhook::server::DEFAULT_IDLE_TIMEOUT,
        write_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(10),
        shutdown_timeout: Duration::from_secs(5),
        max_connections: image_config_webhook::server::limit::DEFAULT_MAX_CONNECTIONS,
        max_connections_per_peer:
            image_config_webhook::server::limit::DEFAULT_MAX_CONNECTIONS_PER_PEER,
        body_budgets: Default::default(),
        evictable_after: image_config_webhook::server::limit::EVICTABLE_AFTER,
        policy: Policy::default(),
    };
    match start_with(config, app).await {
        Ok(running) => {
            eprintln!("kube-core baseline ready on {}", running.addr);
            shutdown_signal().await;
            running.begin_shutdown();
            let _ = running.wait().await;
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
