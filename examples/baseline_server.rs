//! The load benchmark's no-op baseline: the webhook's own TLS and HTTP stack (listener,
//! acceptors, timeouts) answering every `POST /validate` with a constant AdmissionReview,
//! so that a load run measures what the engine adds on top.
//!
//! `cargo run --release --example baseline_server -- CERT_DIR ADDR`
// Outside the pure core (clippy.toml): it reads fixtures, spawns the binary and times things.
#![allow(clippy::disallowed_methods)]

use axum::Router;
use axum::http::header;
use axum::routing::post;
use image_config_webhook::Policy;
use image_config_webhook::server::tls::{TlsSettings, TlsVersion};
use image_config_webhook::server::{AppState, ServeConfig, shutdown_signal, start_with};
use std::time::Duration;

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
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "certs".to_owned()));
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:9443".to_owned());
    let Ok(listen) = listen.parse() else {
        eprintln!("usage: baseline_server CERT_DIR ADDR");
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
            eprintln!("baseline ready on {}", running.addr);
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
