//! TLS clients of the webhook: client configurations trusting a test CA, bounded connects.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::IO;
use super::pki::{Ca, Leaf};

/// TLS 1.3 and 1.2.
pub const ALL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A client trusting `ca`, speaking `versions`, offering `alpn`, with `identity` for mTLS.
pub fn client_config(
    ca: &Ca,
    versions: &[&'static rustls::SupportedProtocolVersion],
    identity: Option<&Leaf>,
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    with_provider(
        rustls::crypto::aws_lc_rs::default_provider(),
        ca,
        versions,
        identity,
        alpn,
    )
}

/// A client as [`client_config`] without identity, offering exactly the key exchange `groups`,
/// in that order (rustls sends a key share for the first, and for X25519 with a hybrid first).
pub fn client_offering_groups(
    ca: &Ca,
    versions: &[&'static rustls::SupportedProtocolVersion],
    groups: &[&'static dyn SupportedKxGroup],
) -> Arc<ClientConfig> {
    let provider = CryptoProvider {
        kx_groups: groups.to_vec(),
        ..rustls::crypto::aws_lc_rs::default_provider()
    };
    with_provider(provider, ca, versions, None, &[b"http/1.1"])
}

fn with_provider(
    provider: CryptoProvider,
    ca: &Ca,
    versions: &[&'static rustls::SupportedProtocolVersion],
    identity: Option<&Leaf>,
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der.clone()).expect("CA in the root store");
    let builder = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .expect("client TLS versions")
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(leaf) => builder
            .with_client_auth_cert(vec![leaf.der.clone()], leaf.key())
            .expect("client certificate"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// TCP connect and TLS handshake, bounded; the server name is the address's IP (an IP SAN).
pub async fn tls_connect(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let connect = async {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        handshake(addr, config, tcp).await
    };
    tokio::time::timeout(IO, connect)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("TLS connect timed out")))
}

/// [`tls_connect`] from the loopback address `from` (127.0.0.2, say: another client).
pub async fn tls_connect_from(
    from: Ipv4Addr,
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let connect = async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from((from, 0)))?;
        let tcp = socket.connect(addr).await?;
        handshake(addr, config, tcp).await
    };
    tokio::time::timeout(IO, connect)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("TLS connect timed out")))
}

async fn handshake(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    tcp: TcpStream,
) -> std::io::Result<TlsStream<TcpStream>> {
    TlsConnector::from(config.clone())
        .connect(ServerName::from(addr.ip()), tcp)
        .await
}

/// The DER of the certificate the server presented.
pub fn peer_der(tls: &TlsStream<TcpStream>) -> Vec<u8> {
    tls.get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|c| c.as_ref().to_vec())
        .unwrap_or_default()
}
