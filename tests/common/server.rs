//! The webhook server in the test process: certificates in a temp dir, a config with short
//! timeouts on an ephemeral loopback port, bounded start and stop.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use image_config_webhook::policy::Policy;
use image_config_webhook::server::tls::{TlsSettings, TlsVersion};
use image_config_webhook::server::{self, Running, ServeConfig};

use super::pki::{Ca, Leaf};
use super::tls::{ALL_VERSIONS, client_config};
use super::tmp::TempDir;
use super::{IO, metric_value, within};

/// A temp dir with `tls.crt` and `tls.key` from a fresh CA.
pub struct Fixture {
    /// The directory (`--cert-dir` for the binary).
    pub dir: TempDir,
    /// The CA that signed the serving certificate.
    pub ca: Ca,
    /// The serving certificate.
    pub leaf: Leaf,
    /// `tls.crt`.
    pub cert: PathBuf,
    /// `tls.key`.
    pub key: PathBuf,
}

impl Fixture {
    /// A fresh CA and serving certificate (valid until 2040) in a temp dir tagged `tag`.
    pub fn new(tag: &str) -> Fixture {
        let dir = TempDir::new(tag);
        let ca = Ca::new("image-config-webhook test CA");
        let leaf = ca.server_leaf(1, 2040);
        let cert = dir.write("tls.crt", &leaf.cert_pem);
        let key = dir.write("tls.key", &leaf.key_pem);
        Fixture {
            dir,
            ca,
            leaf,
            cert,
            key,
        }
    }

    /// [`serve_config`] for this fixture's certificate.
    pub fn config(&self) -> ServeConfig {
        serve_config(&self.cert, &self.key)
    }

    /// A client trusting the CA, TLS 1.2 and 1.3, offering HTTP/1.1.
    pub fn client(&self) -> Arc<ClientConfig> {
        client_config(&self.ca, ALL_VERSIONS, None, &[b"http/1.1"])
    }
}

/// A server config with small timeouts, listening on 127.0.0.1:0.
pub fn serve_config(cert: &Path, key: &Path) -> ServeConfig {
    ServeConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        probe_addr: None,
        tls: TlsSettings {
            cert: cert.to_owned(),
            key: key.to_owned(),
            client_ca: None,
            min_version: TlsVersion::Tls12,
            http2: false,
        },
        cert_poll_interval: Duration::from_millis(500),
        handshake_timeout: Duration::from_secs(3),
        header_read_timeout: Duration::from_secs(3),
        idle_timeout: Duration::from_secs(3),
        write_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(5),
        shutdown_timeout: Duration::from_secs(5),
        max_connections: server::limit::DEFAULT_MAX_CONNECTIONS,
        max_connections_per_peer: server::limit::DEFAULT_MAX_CONNECTIONS_PER_PEER,
        body_budgets: Default::default(),
        evictable_after: server::limit::EVICTABLE_AFTER,
        policy: Policy::default(),
        cluster_context: None,
    }
}

/// Starts the server, bounded.
pub async fn start(config: ServeConfig) -> Running {
    within("server start", IO, server::start(config))
        .await
        .unwrap_or_else(|e| panic!("the server does not start: {e}"))
}

/// Graceful stop; `wait` must return Ok.
pub async fn stop(running: Running) {
    running.begin_shutdown();
    within("server stop", IO, running.wait())
        .await
        .unwrap_or_else(|e| panic!("the server did not stop cleanly: {e}"));
}

/// One series of the running server's metrics.
pub fn metric(running: &Running, series: &str) -> Option<f64> {
    metric_value(&running.state.metrics().encode(), series)
}
