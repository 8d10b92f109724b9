//! Failed TLS handshakes, made visible: counted by reason in
//! `image_config_webhook_tls_handshake_failures_total{reason}` and logged at warn, at most one
//! line per reason per minute, with the peer's address. A refused client certificate, a client
//! that does not trust the serving CA, or no common protocol version otherwise leave no trace
//! on the webhook's side.
//!
//! [`HandshakeAcceptor`] wraps the TLS acceptor (inside the connection limit, so that a refused
//! connection is not counted here too).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum_server::accept::Accept;
use rustls::AlertDescription;
use tokio::net::TcpStream;

use super::metrics::Metrics;

/// How often, at most, one reason is logged.
pub const LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The reasons a handshake fails, as counted (a fixed set: the label cannot grow).
pub const REASONS: &[&str] = &[
    "timeout",
    "closed",
    "peer_rejected_certificate",
    "peer_alert",
    "no_client_certificate",
    "client_certificate_refused",
    "incompatible",
    "protocol",
    "other",
];

/// Why a handshake failed, from the acceptor's error: one of [`REASONS`].
pub fn reason(error: &io::Error) -> &'static str {
    if let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return match tls {
            rustls::Error::AlertReceived(
                AlertDescription::BadCertificate
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateUnknown
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateRevoked
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::AccessDenied,
            ) => "peer_rejected_certificate",
            rustls::Error::AlertReceived(_) => "peer_alert",
            rustls::Error::NoCertificatesPresented => "no_client_certificate",
            rustls::Error::InvalidCertificate(_) => "client_certificate_refused",
            rustls::Error::PeerIncompatible(_) => "incompatible",
            rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. }
            | rustls::Error::PeerMisbehaved(_) => "protocol",
            _ => "other",
        };
    }
    match error.kind() {
        io::ErrorKind::TimedOut => "timeout",
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => "closed",
        _ => "other",
    }
}

/// Counts and logs failed handshakes of the acceptor it wraps.
#[derive(Debug, Clone)]
pub struct HandshakeAcceptor<A> {
    inner: A,
    failures: Arc<Failures>,
}

#[derive(Debug)]
struct Failures {
    metrics: Arc<Metrics>,
    /// When each reason was last logged.
    logged: Mutex<HashMap<&'static str, Instant>>,
}

impl<A> HandshakeAcceptor<A> {
    /// Wraps `inner`, a TLS acceptor.
    pub fn new(inner: A, metrics: Arc<Metrics>) -> Self {
        metrics.handshake_reasons(REASONS);
        HandshakeAcceptor {
            inner,
            failures: Arc::new(Failures {
                metrics,
                logged: Mutex::new(HashMap::new()),
            }),
        }
    }
}

impl Failures {
    fn record(&self, peer: Option<SocketAddr>, error: &io::Error) {
        let reason = reason(error);
        self.metrics.handshake_failed(reason);
        let now = Instant::now();
        let log = match self.logged.lock() {
            Ok(mut logged) => match logged.get(reason) {
                Some(last) if now.duration_since(*last) < LOG_INTERVAL => false,
                _ => {
                    logged.insert(reason, now);
                    true
                }
            },
            Err(_) => false,
        };
        if log {
            let peer = peer.map(|p| p.to_string()).unwrap_or_default();
            tracing::warn!(
                reason,
                peer,
                error = %error,
                "TLS handshake failed (at most one line per reason per minute; \
                 see image_config_webhook_tls_handshake_failures_total)"
            );
        }
    }
}

impl<A, S> Accept<TcpStream, S> for HandshakeAcceptor<A>
where
    A: Accept<TcpStream, S> + Clone + Send + Sync + 'static,
    A::Future: Send + 'static,
    S: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = io::Result<(A::Stream, A::Service)>> + Send>,
    >;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let peer = stream.peer_addr().ok();
        let failures = self.failures.clone();
        let accepting = self.inner.accept(stream, service);
        Box::pin(async move {
            let accepted = accepting.await;
            if let Err(error) = &accepted {
                failures.record(peer, error);
            }
            accepted
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_come_from_the_tls_error_or_the_io_kind() {
        let tls = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        assert_eq!(
            reason(&tls(rustls::Error::AlertReceived(
                AlertDescription::UnknownCA
            ))),
            "peer_rejected_certificate"
        );
        assert_eq!(
            reason(&tls(rustls::Error::NoCertificatesPresented)),
            "no_client_certificate"
        );
        assert_eq!(
            reason(&io::Error::new(
                io::ErrorKind::TimedOut,
                "tls handshake timed out"
            )),
            "timeout"
        );
        assert_eq!(
            reason(&io::Error::from(io::ErrorKind::UnexpectedEof)),
            "closed"
        );
        assert_eq!(reason(&io::Error::other("x")), "other");
        for r in REASONS {
            assert!(!r.is_empty());
        }
    }
}
