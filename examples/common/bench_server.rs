//! What the load kit's two baselines share: the command line (`CERT_DIR ADDR`) and the
//! webhook's own listener, TLS and HTTP settings (`server::start_with` with `serve`'s
//! defaults), around an `app` of their own. Included with `#[path]` by
//! `examples/baseline_server.rs` and `examples/kube_core_baseline.rs`.

use std::time::Duration;

use axum::Router;
use image_config_webhook::Policy;
use image_config_webhook::server::limit::{
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_PEER, EVICTABLE_AFTER,
};
use image_config_webhook::server::tls::{TlsSettings, TlsVersion};
use image_config_webhook::server::{
    AppState, DEFAULT_IDLE_TIMEOUT, ServeConfig, shutdown_signal, start_with,
};

/// Serves `app` on the command line's address with the certificates of its directory until
/// SIGTERM or Ctrl-C; `name` is said when ready and in the usage line.
pub async fn run(name: &str, app: fn(AppState) -> Router) {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "certs".to_owned()));
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:9443".to_owned());
    let Ok(listen) = listen.parse() else {
        eprintln!("usage: {name} CERT_DIR ADDR");
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
        idle_timeout: DEFAULT_IDLE_TIMEOUT,
        write_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(10),
        shutdown_timeout: Duration::from_secs(5),
        max_connections: DEFAULT_MAX_CONNECTIONS,
        max_connections_per_peer: DEFAULT_MAX_CONNECTIONS_PER_PEER,
        body_budgets: Default::default(),
        evictable_after: EVICTABLE_AFTER,
        policy: Policy::default(),
        cluster_context: None,
    };
    match start_with(config, app).await {
        Ok(running) => {
            eprintln!("{name} ready on {}", running.addr);
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
