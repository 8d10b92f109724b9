//! The binary's one TLS crypto provider: rustls with aws-lc-rs. The server
//! ([`crate::server::tls`]), the client of `replay --server` ([`crate::remote`]) and
//! `certs check` ([`crate::certs::check`]) build their configs from [`provider`]; the Kubernetes
//! client of `serve --cluster-context` (kube) installs aws-lc-rs's default provider as rustls's
//! process default, which with the rustls feature `prefer-post-quantum` has the same groups in the
//! same order and the same suites (a test below holds it to that), so it offers the hybrid first
//! to the API server as well. ring is not compiled in at all (rcgen uses aws-lc-rs too).
//!
//! Key exchange groups, in this order: X25519MLKEM768 (X25519 combined with ML-KEM-768,
//! draft-ietf-tls-ecdhe-mlkem; TLS 1.3 only), X25519, secp256r1, secp384r1. rustls's server takes
//! the first group in the *client's* list that it supports: kube-apiserver built with Go 1.24 or
//! newer lists X25519MLKEM768 first and sends a key share for it, so it gets the hybrid with no
//! extra round trip; an older client gets X25519 (or a NIST curve) as before.
//!
//! Cipher suites: exactly those the ring provider offered before the switch, strongest first:
//! TLS 1.3 AES-256-GCM, AES-128-GCM, ChaCha20-Poly1305; with `--tls-min-version 1.2` also the
//! TLS 1.2 ECDHE suites (ECDSA or RSA) with the same three AEADs. Nothing with CBC, RSA key
//! exchange or finite-field DH.

use std::sync::Arc;

use rustls::SupportedCipherSuite;
use rustls::crypto::aws_lc_rs::{self, cipher_suite, kx_group};
use rustls::crypto::{CryptoProvider, SupportedKxGroup};

/// The key exchange groups offered, in order.
pub static KX_GROUPS: &[&dyn SupportedKxGroup] = &[
    kx_group::X25519MLKEM768,
    kx_group::X25519,
    kx_group::SECP256R1,
    kx_group::SECP384R1,
];

/// The cipher suites offered, in order (rustls uses only those of the enabled versions).
pub static CIPHER_SUITES: &[SupportedCipherSuite] = &[
    cipher_suite::TLS13_AES_256_GCM_SHA384,
    cipher_suite::TLS13_AES_128_GCM_SHA256,
    cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// aws-lc-rs with [`KX_GROUPS`] and [`CIPHER_SUITES`], for every TLS config of the binary.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        kx_groups: KX_GROUPS.to_vec(),
        cipher_suites: CIPHER_SUITES.to_vec(),
        ..aws_lc_rs::default_provider()
    })
}

#[cfg(test)]
mod tests {
    use rustls::{CipherSuite, NamedGroup};

    use super::provider;

    /// The provider kube's client uses (see the module documentation).
    #[test]
    fn the_default_provider_offers_the_same() {
        let ours = provider();
        let default = rustls::crypto::aws_lc_rs::default_provider();
        let names = |p: &rustls::crypto::CryptoProvider| {
            (
                p.kx_groups.iter().map(|g| g.name()).collect::<Vec<_>>(),
                p.cipher_suites
                    .iter()
                    .map(|s| s.suite())
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(names(&default), names(&ours));
    }

    #[test]
    fn the_hybrid_group_comes_first() {
        let groups: Vec<NamedGroup> = provider().kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(
            groups,
            [
                NamedGroup::X25519MLKEM768,
                NamedGroup::X25519,
                NamedGroup::secp256r1,
                NamedGroup::secp384r1,
            ]
        );
    }

    /// The ring provider's defaults of rustls 0.23, offered before the switch to aws-lc-rs.
    #[test]
    fn the_cipher_suites_are_those_offered_with_ring() {
        let suites: Vec<CipherSuite> = provider().cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(
            suites,
            [
                CipherSuite::TLS13_AES_256_GCM_SHA384,
                CipherSuite::TLS13_AES_128_GCM_SHA256,
                CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
                CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            ]
        );
    }
}
