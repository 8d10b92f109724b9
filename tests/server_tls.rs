//! Integration tests of the webhook server (`image-config-webhook serve`) over real TLS on
//! loopback, for what needs a connection: keep-alive, slow clients, mTLS, TLS versions, HTTP/2,
//! certificate rotation by kubelet-style symlink swap, graceful shutdown, metrics on both
//! listeners, IPv6, and the real binary (SIGTERM, start-up failures). What depends on the
//! request alone (status codes, envelope errors, verdicts, probes) is tested without sockets in
//! `src/server/tests.rs`.
//!
//! The harness is `tests/common/`: certificates generated with rcgen (a CA and leaves for
//! localhost, 127.0.0.1 and ::1) written to a unique directory under the system temp dir,
//! removed at the end. Every server listens on an ephemeral port; every network wait is bounded.
// Outside the pure core (clippy.toml): it reads fixtures, spawns the binary and times things.
#![allow(clippy::disallowed_methods)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::process::Command;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::KeyPair;
use rustls::{ClientConfig, HandshakeKind, NamedGroup};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

mod common;
use common::binary::{cpu_seconds, failed_start, spawn_binary, start_binary, wait_exit_blocking};
use common::http::{
    H1, Reply, collect, one_shot, plain_get, post_head, read_reply, read_until_closed, request,
    review_request,
};
use common::pki::{Ca, Leaf, not_after_of, serial_of};
use common::server::{Fixture, metric, serve_config, start, stop};
use common::tls::{ALL_VERSIONS, client_config, client_offering_groups, peer_der, tls_connect};
use common::tmp::TempDir;
use common::{IO, metric_value, wait_until, within};

use image_config_webhook::server::Running;
use image_config_webhook::server::tls::TlsVersion;

const V1: &str = "admission.k8s.io/v1";
const R2_FIELD: &str = "spec.registrySources.blockedRegistries[0]";

const IN_FLIGHT: &str = "image_config_webhook_requests_in_flight";
const EXPIRY: &str = "image_config_webhook_certificate_expiry_timestamp_seconds";
const RELOAD_OK: &str = "image_config_webhook_certificate_reloads_total{result=\"success\"}";
const RELOAD_FAILED: &str = "image_config_webhook_certificate_reloads_total{result=\"failure\"}";

/// A request body fed through a channel, to send a body in pieces through hyper.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

// ---------------------------------------------------------------------------------------------
// Reviews, metrics, waiting
// ---------------------------------------------------------------------------------------------

fn review(uid: &str, api_version: &str, spec: Value) -> Value {
    common::image_review(uid, api_version, spec)
}

fn allowed_review(uid: &str) -> Value {
    review(uid, V1, json!({}))
}

fn denied_review(uid: &str) -> Value {
    review(
        uid,
        V1,
        json!({"registrySources": {"blockedRegistries": ["registry.io/myrepo:latest"]}}),
    )
}

fn assert_allowed(reply: &Reply, uid: &str, api_version: &str) {
    assert_eq!(reply.status, 200, "allowed review: {}", reply.text());
    let doc = reply.json();
    assert_eq!(doc["apiVersion"], api_version, "{doc}");
    assert_eq!(doc["kind"], "AdmissionReview", "{doc}");
    assert_eq!(doc["response"]["uid"], uid, "{doc}");
    assert_eq!(doc["response"]["allowed"], true, "{doc}");
}

fn assert_denied(reply: &Reply, uid: &str, api_version: &str) {
    assert_eq!(reply.status, 200, "denied review: {}", reply.text());
    let doc = reply.json();
    assert_eq!(doc["apiVersion"], api_version, "{doc}");
    assert_eq!(doc["kind"], "AdmissionReview", "{doc}");
    let response = &doc["response"];
    assert_eq!(response["uid"], uid, "{doc}");
    assert_eq!(response["allowed"], false, "{doc}");
    assert_eq!(response["status"]["code"], 422, "{doc}");
    assert_eq!(response["status"]["reason"], "Invalid", "{doc}");
    assert_eq!(
        response["status"]["details"]["causes"][0]["field"], R2_FIELD,
        "{doc}"
    );
}

/// The webhook's default listen address is `[::]:8443`: a machine without IPv6 cannot run it
/// on its defaults, so the IPv6 tests fail there (with the reason) rather than skip and pass.
#[track_caller]
fn require_ipv6_loopback() {
    if let Err(e) = std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)) {
        panic!(
            "this machine has no IPv6 loopback ({e}); the webhook's default listen address \
             [::]:8443 needs it (run serve with --listen 0.0.0.0:8443 on such a machine)"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Keep-alive
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let fx = Fixture::new("keep-alive");
    let running = start(fx.config()).await;
    let mut conn = H1::open(running.addr, &fx.client()).await.unwrap();
    for i in 0..6 {
        let uid = format!("keep-{i}");
        let reply = conn
            .review(&if i % 2 == 0 {
                allowed_review(&uid)
            } else {
                denied_review(&uid)
            })
            .await
            .unwrap_or_else(|e| panic!("request {i} on the kept-alive connection: {e}"));
        if i % 2 == 0 {
            assert_allowed(&reply, &uid, V1);
        } else {
            assert_denied(&reply, &uid, V1);
        }
        assert_ne!(reply.header("connection"), Some("close"), "request {i}");
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        let reply = conn
            .send(request("GET", path, None, Bytes::new()))
            .await
            .unwrap_or_else(|e| panic!("GET {path} on the kept-alive connection: {e}"));
        assert_eq!(reply.status, 200, "GET {path}: {}", reply.text());
    }
    stop(running).await;
}

/// The header-read timeout bounds a new connection's first request, not the idle time between
/// requests: an idle kept-alive connection must outlive it (the API server keeps idle
/// connections for 90 s and does not retry a POST on a connection the server closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_outlive_the_header_read_timeout() {
    let fx = Fixture::new("idle");
    let mut config = fx.config();
    config.header_read_timeout = Duration::from_secs(1);
    config.idle_timeout = Duration::from_secs(30);
    let running = start(config).await;
    let mut conn = H1::open(running.addr, &fx.client()).await.unwrap();
    let reply = conn.review(&allowed_review("idle-1")).await.unwrap();
    assert_allowed(&reply, "idle-1", V1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let reply = conn
        .review(&denied_review("idle-2"))
        .await
        .unwrap_or_else(|e| panic!("the idle connection was closed after 2.5 s: {e}"));
    assert_denied(&reply, "idle-2", V1);
    stop(running).await;
}

// ---------------------------------------------------------------------------------------------
// 2. Slow clients
// ---------------------------------------------------------------------------------------------

/// Sends `prefix`, then one header byte every 500 ms until the server closes the connection.
/// Returns how long after the first dribbled byte's start the connection closed, and how many
/// header bytes went out.
async fn dribble_headers(mut tls: TlsStream<TcpStream>, prefix: Vec<u8>) -> (Duration, usize) {
    const HEADER: &[u8] = b"Content-Type: application/json\r\nX-Slow-Client: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let started = Instant::now();
    if tls.write_all(&prefix).await.is_err() || tls.flush().await.is_err() {
        return (started.elapsed(), 0);
    }
    let mut sent = 0;
    let mut buf = [0u8; 1024];
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.tick().await;
    while started.elapsed() < Duration::from_secs(15) && sent < HEADER.len() {
        tokio::select! {
            read = tls.read(&mut buf) => match read {
                Ok(0) | Err(_) => return (started.elapsed(), sent),
                Ok(_) => {}
            },
            _ = tick.tick() => {
                if tls.write_all(&HEADER[sent..=sent]).await.is_err() || tls.flush().await.is_err() {
                    return (started.elapsed(), sent);
                }
                sent += 1;
            }
        }
    }
    (started.elapsed(), sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_clients_are_cut_off_while_others_are_served() {
    let fx = Fixture::new("slow-headers");
    let mut config = fx.config();
    config.header_read_timeout = Duration::from_secs(1);
    config.idle_timeout = Duration::from_secs(1);
    let running = start(config).await;
    let (addr, tls) = (running.addr, fx.client());

    // A new connection whose first request crawls in.
    let first = tls_connect(addr, &tls).await.unwrap();
    let first = tokio::spawn(dribble_headers(
        first,
        b"POST /validate HTTP/1.1\r\n".to_vec(),
    ));
    // A kept-alive connection whose second request crawls in.
    let mut second = tls_connect(addr, &tls).await.unwrap();
    let body = serde_json::to_vec(&allowed_review("before-slow")).unwrap();
    second
        .write_all(
            post_head("/validate", &format!("Content-Length: {}\r\n", body.len())).as_bytes(),
        )
        .await
        .unwrap();
    second.write_all(&body).await.unwrap();
    let reply = within("first request", IO, read_reply(&mut second))
        .await
        .unwrap();
    assert_allowed(&reply, "before-slow", V1);
    let second = tokio::spawn(dribble_headers(
        second,
        b"POST /validate HTTP/1.1\r\n".to_vec(),
    ));

    // Meanwhile other clients are served promptly.
    let mut served = 0;
    let mut slowest = Duration::ZERO;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !(first.is_finished() && second.is_finished()) && Instant::now() < deadline {
        let sent = Instant::now();
        let reply = one_shot(addr, &tls, review_request(&allowed_review("meanwhile")))
            .await
            .unwrap_or_else(|e| panic!("a normal client was not served during the slow ones: {e}"));
        assert_allowed(&reply, "meanwhile", V1);
        slowest = slowest.max(sent.elapsed());
        served += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (first_closed, first_sent) = within("slow client 1", IO, first).await.unwrap();
    let (second_closed, second_sent) = within("slow client 2", IO, second).await.unwrap();
    println!(
        "slow clients cut after {first_closed:?} and {second_closed:?}; {served} normal requests, slowest {slowest:?}"
    );
    for (which, closed, sent) in [
        ("first request", first_closed, first_sent),
        ("kept-alive request", second_closed, second_sent),
    ] {
        assert!(
            closed < Duration::from_secs(6),
            "{which}: a client dribbling headers was connected for {closed:?} ({sent} header bytes) with header_read_timeout 1 s"
        );
        assert!(
            closed >= Duration::from_millis(500),
            "{which}: closed after {closed:?}, before the timeout could have expired"
        );
    }
    assert!(
        served >= 2,
        "only {served} normal requests during the slow clients"
    );
    assert!(
        slowest < Duration::from_secs(3),
        "a normal request took {slowest:?} while slow clients were connected"
    );
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_finish_the_tls_handshake_are_dropped() {
    let fx = Fixture::new("handshake-timeout");
    let mut config = fx.config();
    config.handshake_timeout = Duration::from_secs(1);
    config.header_read_timeout = Duration::from_secs(10);
    let running = start(config).await;
    let addr = running.addr;

    // One says nothing at all; one starts a ClientHello record and stops.
    let silent = tokio::spawn(async move {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let connected = Instant::now();
        let got = within("silent client", IO, read_until_closed(&mut tcp)).await;
        (connected.elapsed(), got)
    });
    let partial = tokio::spawn(async move {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let connected = Instant::now();
        tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
            .await
            .unwrap();
        let got = within("partial ClientHello", IO, read_until_closed(&mut tcp)).await;
        (connected.elapsed(), got)
    });
    // Meanwhile a normal client is served.
    let reply = one_shot(
        addr,
        &fx.client(),
        review_request(&allowed_review("normal")),
    )
    .await
    .unwrap();
    assert_allowed(&reply, "normal", V1);

    for (which, task) in [("silent", silent), ("partial ClientHello", partial)] {
        let (after, got) = task.await.unwrap();
        println!("{which} TCP client dropped after {after:?}");
        assert!(
            after >= Duration::from_millis(900) && after < Duration::from_secs(6),
            "{which} TCP client dropped after {after:?} with handshake_timeout 1 s"
        );
        assert!(
            got.is_empty() || got[0] == 0x15,
            "{which}: expected nothing or a TLS alert, got {got:?}"
        );
    }
    stop(running).await;
}

// ---------------------------------------------------------------------------------------------
// 3. mTLS and TLS versions
// ---------------------------------------------------------------------------------------------

/// Connects and posts a review; any failure (handshake, alert, reset) is an Err.
async fn attempt_review(addr: SocketAddr, config: &Arc<ClientConfig>) -> Result<Reply, String> {
    one_shot(addr, config, review_request(&allowed_review("attempt"))).await
}

/// The fixture's server with `--client-ca`: a new client CA, and the running server.
async fn start_mtls(fx: &Fixture) -> (Ca, Running) {
    let client_ca = Ca::new("API server client CA");
    let client_ca_file = fx.dir.write("client-ca.crt", &client_ca.pem);
    let mut config = fx.config();
    config.tls.client_ca = Some(client_ca_file);
    (client_ca, start(config).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_serves_only_clients_with_a_certificate_from_the_client_ca() {
    let fx = Fixture::new("mtls");
    let (client_ca, running) = start_mtls(&fx).await;
    let addr = running.addr;

    let good = client_ca.client_leaf(10);
    let with_cert = client_config(&fx.ca, ALL_VERSIONS, Some(&good), &[b"http/1.1"]);
    assert_allowed(
        &attempt_review(addr, &with_cert).await.unwrap(),
        "attempt",
        V1,
    );

    let rogue_ca = Ca::new("rogue CA");
    let rogue = rogue_ca.client_leaf(11);
    let server_ca_client = fx.ca.client_leaf(12);
    let refused = [
        (
            "no certificate, TLS 1.3",
            client_config(&fx.ca, ALL_VERSIONS, None, &[]),
        ),
        (
            "no certificate, TLS 1.2",
            client_config(&fx.ca, &[&rustls::version::TLS12], None, &[]),
        ),
        (
            "certificate from another CA",
            client_config(&fx.ca, ALL_VERSIONS, Some(&rogue), &[]),
        ),
        (
            "certificate from the serving CA, not the client CA",
            client_config(&fx.ca, ALL_VERSIONS, Some(&server_ca_client), &[]),
        ),
    ];
    for (which, config) in refused {
        let outcome = attempt_review(addr, &config).await;
        assert!(outcome.is_err(), "{which}: served: {outcome:?}");
    }
    // The refusals did not disturb the server.
    assert_allowed(
        &attempt_review(addr, &with_cert).await.unwrap(),
        "attempt",
        V1,
    );
    stop(running).await;
}

/// `image_config_webhook_tls_handshake_failures_total{reason}` of `running`, once it reaches
/// `count`.
async fn handshake_failures_reach(running: &Running, reason: &str, count: f64) {
    let series =
        format!("image_config_webhook_tls_handshake_failures_total{{reason=\"{reason}\"}}");
    wait_until(&series, IO, || metric(running, &series) == Some(count)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_handshakes_are_counted_by_reason() {
    let fx = Fixture::new("handshake-failures");
    let (client_ca, running) = start_mtls(&fx).await;
    let addr = running.addr;
    for reason in [
        "peer_rejected_certificate",
        "no_client_certificate",
        "protocol",
    ] {
        handshake_failures_reach(&running, reason, 0.0).await;
    }

    // A client that does not trust the serving CA refuses the certificate with an alert.
    let other_ca = Ca::new("another CA");
    let leaf = client_ca.client_leaf(20);
    let distrustful = client_config(&other_ca, ALL_VERSIONS, Some(&leaf), &[]);
    assert!(tls_connect(addr, &distrustful).await.is_err());
    handshake_failures_reach(&running, "peer_rejected_certificate", 1.0).await;

    // mTLS: a client without a certificate.
    let anonymous = client_config(&fx.ca, ALL_VERSIONS, None, &[b"http/1.1"]);
    assert!(attempt_review(addr, &anonymous).await.is_err());
    handshake_failures_reach(&running, "no_client_certificate", 1.0).await;

    // Plain HTTP on the TLS port.
    let mut plain = TcpStream::connect(addr).await.expect("connect");
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let _ = read_until_closed(&mut plain).await;
    handshake_failures_reach(&running, "protocol", 1.0).await;

    // A good client is served, and counted nowhere.
    let good = client_config(&fx.ca, ALL_VERSIONS, Some(&leaf), &[b"http/1.1"]);
    assert_allowed(&attempt_review(addr, &good).await.unwrap(), "attempt", V1);
    handshake_failures_reach(&running, "peer_rejected_certificate", 1.0).await;
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls13_only_refuses_tls12_clients() {
    let fx = Fixture::new("tls-versions");
    let tls12_only = client_config(&fx.ca, &[&rustls::version::TLS12], None, &[b"http/1.1"]);
    let tls13_only = client_config(&fx.ca, &[&rustls::version::TLS13], None, &[b"http/1.1"]);

    let mut strict = fx.config();
    strict.tls.min_version = TlsVersion::Tls13;
    let strict = start(strict).await;
    let refused = tls_connect(strict.addr, &tls12_only).await;
    assert!(
        refused.is_err(),
        "a TLS 1.2 client completed a handshake with a TLS 1.3-only server"
    );
    let tls = tls_connect(strict.addr, &tls13_only).await.unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    drop(tls);
    assert_allowed(
        &attempt_review(strict.addr, &tls13_only).await.unwrap(),
        "attempt",
        V1,
    );

    // The default (1.2) still serves a TLS 1.2 client.
    let lenient = start(fx.config()).await;
    let tls = tls_connect(lenient.addr, &tls12_only).await.unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    drop(tls);
    assert_allowed(
        &attempt_review(lenient.addr, &tls12_only).await.unwrap(),
        "attempt",
        V1,
    );
    stop(strict).await;
    stop(lenient).await;
}

/// The key exchange group a handshake of `client` with `addr` settles on, the protocol version
/// and whether the server asked for another key share (a HelloRetryRequest, one more round trip).
async fn negotiated(
    addr: SocketAddr,
    client: &Arc<ClientConfig>,
) -> (NamedGroup, rustls::ProtocolVersion, HandshakeKind) {
    let tls = tls_connect(addr, client).await.unwrap();
    let conn = tls.get_ref().1;
    (
        conn.negotiated_key_exchange_group().unwrap().name(),
        conn.protocol_version().unwrap(),
        conn.handshake_kind().unwrap(),
    )
}

/// What kube-apiserver on Go 1.24+ offers (X25519MLKEM768 first, with X25519 as the fallback
/// share) gets the hybrid, in one round trip, under either `--tls-min-version`; a client without
/// it, or preferring X25519, gets X25519; a TLS 1.2 client cannot use the hybrid (TLS 1.3 only)
/// and gets X25519.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_post_quantum_hybrid_is_negotiated_when_the_client_offers_it() {
    use rustls::crypto::aws_lc_rs::kx_group::{X25519, X25519MLKEM768};
    use rustls::version::{TLS12, TLS13};
    let fx = Fixture::new("pq-kex");
    let hybrid_first = client_offering_groups(&fx.ca, ALL_VERSIONS, &[X25519MLKEM768, X25519]);
    let classic = client_offering_groups(&fx.ca, ALL_VERSIONS, &[X25519]);
    let classic_first = client_offering_groups(&fx.ca, ALL_VERSIONS, &[X25519, X25519MLKEM768]);
    let hybrid_over_tls12 = client_offering_groups(&fx.ca, &[&TLS12], &[X25519MLKEM768, X25519]);
    let tls13 = rustls::ProtocolVersion::TLSv1_3;

    let lenient = start(fx.config()).await;
    assert_eq!(
        negotiated(lenient.addr, &hybrid_first).await,
        (NamedGroup::X25519MLKEM768, tls13, HandshakeKind::Full)
    );
    assert_eq!(
        negotiated(lenient.addr, &classic).await,
        (NamedGroup::X25519, tls13, HandshakeKind::Full)
    );
    // The server follows the client's order among the groups both have.
    assert_eq!(
        negotiated(lenient.addr, &classic_first).await,
        (NamedGroup::X25519, tls13, HandshakeKind::Full)
    );
    assert_eq!(
        negotiated(lenient.addr, &hybrid_over_tls12).await,
        (
            NamedGroup::X25519,
            rustls::ProtocolVersion::TLSv1_2,
            HandshakeKind::Full
        )
    );
    assert_allowed(
        &attempt_review(lenient.addr, &hybrid_first).await.unwrap(),
        "attempt",
        V1,
    );

    let mut strict = fx.config();
    strict.tls.min_version = TlsVersion::Tls13;
    let strict = start(strict).await;
    let hybrid_tls13_only = client_offering_groups(&fx.ca, &[&TLS13], &[X25519MLKEM768, X25519]);
    for client in [&hybrid_first, &hybrid_tls13_only] {
        assert_eq!(
            negotiated(strict.addr, client).await,
            (NamedGroup::X25519MLKEM768, tls13, HandshakeKind::Full)
        );
    }
    assert_eq!(
        negotiated(strict.addr, &classic).await,
        (NamedGroup::X25519, tls13, HandshakeKind::Full)
    );
    assert_allowed(
        &attempt_review(strict.addr, &hybrid_first).await.unwrap(),
        "attempt",
        V1,
    );
    stop(strict).await;
    stop(lenient).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_offered_only_when_enabled() {
    let fx = Fixture::new("http2");
    let offers_h2 = client_config(&fx.ca, ALL_VERSIONS, None, &[b"h2", b"http/1.1"]);

    let http1 = start(fx.config()).await;
    let tls = tls_connect(http1.addr, &offers_h2).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    drop(tls);
    assert_allowed(
        &one_shot(
            http1.addr,
            &offers_h2,
            review_request(&allowed_review("h1")),
        )
        .await
        .unwrap(),
        "h1",
        V1,
    );

    let mut config = fx.config();
    config.tls.http2 = true;
    let http2 = start(config).await;
    let tls = tls_connect(http2.addr, &offers_h2).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = within(
        "h2 handshake",
        IO,
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    for (i, review) in [allowed_review("h2-a"), denied_review("h2-d")]
        .iter()
        .enumerate()
    {
        let body = serde_json::to_vec(review).unwrap();
        let req = hyper::Request::post("https://localhost/validate")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let reply = within("h2 request", IO, async {
            collect(sender.send_request(req).await.unwrap()).await
        })
        .await
        .unwrap();
        if i == 0 {
            assert_allowed(&reply, "h2-a", V1);
        } else {
            assert_denied(&reply, "h2-d", V1);
        }
    }
    drop(sender);
    conn.abort();
    // A client that wants only HTTP/1.1 is still served by the HTTP/2-enabled server.
    assert_allowed(
        &attempt_review(http2.addr, &fx.client()).await.unwrap(),
        "attempt",
        V1,
    );
    stop(http1).await;
    stop(http2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_uploads_do_not_leak_the_in_flight_gauge() {
    let fx = Fixture::new("aborted");
    let mut config = fx.config();
    config.tls.http2 = true;
    config.request_timeout = Duration::from_secs(30);
    let running = start(config).await;
    let body = serde_json::to_vec(&allowed_review("aborted")).unwrap();
    let half = body.len() / 2;

    // HTTP/1.1: headers and half the body, then the TCP connection goes away.
    let mut tls = tls_connect(running.addr, &fx.client()).await.unwrap();
    tls.write_all(
        post_head("/validate", &format!("Content-Length: {}\r\n", body.len())).as_bytes(),
    )
    .await
    .unwrap();
    tls.write_all(&body[..half]).await.unwrap();
    tls.flush().await.unwrap();
    wait_until("HTTP/1.1 request in flight", IO, || {
        metric(&running, IN_FLIGHT) == Some(1.0)
    })
    .await;
    drop(tls);
    wait_until(
        "in-flight gauge back to 0 after an aborted HTTP/1.1 upload",
        Duration::from_secs(5),
        || metric(&running, IN_FLIGHT) == Some(0.0),
    )
    .await;

    // HTTP/2: the same, with the stream's connection torn down.
    let offers_h2 = client_config(&fx.ca, ALL_VERSIONS, None, &[b"h2"]);
    let tls = tls_connect(running.addr, &offers_h2).await.unwrap();
    let (mut sender, conn) = within(
        "h2 handshake",
        IO,
        hyper::client::conn::http2::handshake::<_, _, ChannelBody>(
            TokioExecutor::new(),
            TokioIo::new(tls),
        ),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let req = hyper::Request::post("https://localhost/validate")
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(ChannelBody(rx))
        .unwrap();
    let response = tokio::spawn(sender.send_request(req));
    tx.send(Bytes::copy_from_slice(&body[..half]))
        .await
        .unwrap();
    wait_until("HTTP/2 request in flight", IO, || {
        metric(&running, IN_FLIGHT) == Some(1.0)
    })
    .await;
    conn.abort();
    response.abort();
    drop(tx);
    drop(sender);
    wait_until(
        "in-flight gauge back to 0 after an aborted HTTP/2 upload",
        Duration::from_secs(5),
        || metric(&running, IN_FLIGHT) == Some(0.0),
    )
    .await;
    stop(running).await;
}

// ---------------------------------------------------------------------------------------------
// 4. Certificate rotation
// ---------------------------------------------------------------------------------------------

/// Writes a generation directory (`..2026_x`) holding tls.crt and tls.key.
fn write_generation(dir: &TempDir, generation: &str, cert_pem: &str, key_pem: &str) {
    dir.write(&format!("{generation}/tls.crt"), cert_pem);
    dir.write(&format!("{generation}/tls.key"), key_pem);
}

/// Points `..data` at `generation` atomically, the way kubelet does.
fn swap_data(dir: &TempDir, generation: &str) {
    let tmp = dir.path().join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(generation, &tmp).expect("..data_tmp symlink");
    std::fs::rename(&tmp, dir.path().join("..data")).expect("rename over ..data");
}

/// New connections until one is served `want`; how long that took.
async fn wait_for_peer(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    want: &Leaf,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    let mut last = Vec::new();
    while started.elapsed() < limit {
        match tls_connect(addr, config).await {
            Ok(tls) if peer_der(&tls) == want.der.as_ref() => return started.elapsed(),
            Ok(tls) => last = peer_der(&tls),
            Err(e) => panic!("connection failed while waiting for a new certificate: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "new connections still get serial {} {limit:?} after the swap, not serial {}",
        serial_of(&last),
        serial_of(want.der.as_ref())
    );
}

/// A new connection gets `want` and is served a verdict.
async fn assert_served_with(addr: SocketAddr, config: &Arc<ClientConfig>, want: &Leaf) {
    let mut conn = H1::open(addr, config).await.unwrap();
    assert_eq!(
        serial_of(&conn.peer),
        serial_of(want.der.as_ref()),
        "certificate served to a new connection"
    );
    assert_eq!(conn.peer, want.der.as_ref());
    assert_allowed(
        &conn.review(&allowed_review("after")).await.unwrap(),
        "after",
        V1,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotate_by_symlink_swap_without_failed_requests() {
    let dir = TempDir::new("rotation");
    let ca = Ca::new("rotation CA");
    let a = ca.server_leaf(0xA1, 2040);
    write_generation(&dir, "..2026_a", &a.cert_pem, &a.key_pem);
    std::os::unix::fs::symlink("..2026_a", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/tls.crt", dir.path().join("tls.crt")).unwrap();
    std::os::unix::fs::symlink("..data/tls.key", dir.path().join("tls.key")).unwrap();
    let mut config = serve_config(&dir.path().join("tls.crt"), &dir.path().join("tls.key"));
    config.cert_poll_interval = Duration::from_millis(500);
    config.header_read_timeout = Duration::from_secs(5);
    let running = start(config).await;
    let (addr, tls) = (
        running.addr,
        client_config(&ca, ALL_VERSIONS, None, &[b"http/1.1"]),
    );
    assert_served_with(addr, &tls, &a).await;
    assert_eq!(metric(&running, EXPIRY), Some(a.not_after as f64));

    // A request loop, a new connection per request, for 3 s.
    let loop_tls = tls.clone();
    let requests = tokio::spawn(async move {
        let until = Instant::now() + Duration::from_secs(3);
        let mut results: Vec<Result<Vec<u8>, String>> = Vec::new();
        let mut i = 0;
        while Instant::now() < until {
            let uid = format!("loop-{i}");
            let outcome = match H1::open(addr, &loop_tls).await {
                Ok(mut conn) => match conn.review(&allowed_review(&uid)).await {
                    Ok(reply) if reply.status == 200 && reply.json()["response"]["uid"] == uid => {
                        Ok(conn.peer)
                    }
                    Ok(reply) => Err(format!("{uid}: HTTP {}: {}", reply.status, reply.text())),
                    Err(e) => Err(format!("{uid}: {e}")),
                },
                Err(e) => Err(format!("{uid}: {e}")),
            };
            results.push(outcome);
            i += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        results
    });

    tokio::time::sleep(Duration::from_secs(1)).await;
    // A connection opened before the swap keeps its certificate and keeps working.
    let mut old = H1::open(addr, &tls).await.unwrap();
    assert_eq!(old.peer, a.der.as_ref());
    let b = ca.server_leaf(0xB2, 2041);
    write_generation(&dir, "..2026_b", &b.cert_pem, &b.key_pem);
    swap_data(&dir, "..2026_b");
    let took = wait_for_peer(addr, &tls, &b, Duration::from_secs(5)).await;
    println!("the new certificate was served {took:?} after the swap");
    assert_allowed(
        &old.review(&allowed_review("old-conn")).await.unwrap(),
        "old-conn",
        V1,
    );
    drop(old);

    let results = within("request loop", Duration::from_secs(15), requests)
        .await
        .unwrap();
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during the rotation: {failures:?}",
        failures.len(),
        results.len()
    );
    assert!(results.len() >= 5, "only {} requests in 3 s", results.len());
    let served: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|der| serial_of(der))
        .collect();
    assert!(
        served
            .iter()
            .all(|s| *s == serial_of(a.der.as_ref()) || *s == serial_of(b.der.as_ref())),
        "unexpected certificates served: {served:?}"
    );
    assert_eq!(metric(&running, EXPIRY), Some(b.not_after as f64));
    assert!(metric(&running, RELOAD_OK).unwrap_or(0.0) >= 2.0);

    // Corrupt rotation 1: garbage in tls.crt.
    let failed = metric(&running, RELOAD_FAILED).unwrap_or(0.0);
    write_generation(&dir, "..2026_c", "this is not a certificate\n", &b.key_pem);
    swap_data(&dir, "..2026_c");
    wait_until(
        "a failed reload counted for a garbage certificate",
        Duration::from_secs(5),
        || metric(&running, RELOAD_FAILED).unwrap_or(0.0) > failed,
    )
    .await;
    assert_served_with(addr, &tls, &b).await;
    assert_eq!(metric(&running, EXPIRY), Some(b.not_after as f64));

    // Corrupt rotation 2: a certificate with a key that does not match it.
    let failed = metric(&running, RELOAD_FAILED).unwrap_or(0.0);
    let c = ca.server_leaf(0xC3, 2042);
    let stranger = KeyPair::generate().unwrap().serialize_pem();
    write_generation(&dir, "..2026_d", &c.cert_pem, &stranger);
    swap_data(&dir, "..2026_d");
    wait_until(
        "a failed reload counted for a mismatched key",
        Duration::from_secs(5),
        || metric(&running, RELOAD_FAILED).unwrap_or(0.0) > failed,
    )
    .await;
    assert_served_with(addr, &tls, &b).await;
    assert_eq!(metric(&running, EXPIRY), Some(b.not_after as f64));

    // And a good pair after the failures is picked up again.
    let d = ca.server_leaf(0xD4, 2043);
    write_generation(&dir, "..2026_e", &d.cert_pem, &d.key_pem);
    swap_data(&dir, "..2026_e");
    wait_for_peer(addr, &tls, &d, Duration::from_secs(5)).await;
    assert_served_with(addr, &tls, &d).await;
    assert_eq!(metric(&running, EXPIRY), Some(d.not_after as f64));
    stop(running).await;
}

const ATTEMPTS_POLL: &str =
    "image_config_webhook_certificate_reload_attempts_total{trigger=\"poll\"}";
const ATTEMPTS_WATCH: &str =
    "image_config_webhook_certificate_reload_attempts_total{trigger=\"watch\"}";

/// A directory laid out the way kubelet mounts a Secret: `tls.crt -> ..data/tls.crt`,
/// `..data -> ..2026_a`.
fn kubelet_dir(tag: &str, leaf: &Leaf) -> TempDir {
    let dir = TempDir::new(tag);
    write_generation(&dir, "..2026_a", &leaf.cert_pem, &leaf.key_pem);
    std::os::unix::fs::symlink("..2026_a", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/tls.crt", dir.path().join("tls.crt")).unwrap();
    std::os::unix::fs::symlink("..data/tls.key", dir.path().join("tls.key")).unwrap();
    dir
}

/// Reading the certificate files makes inotify events of their own (open, access,
/// close-without-write) when they sit in the watched directory itself, as with `--cert-dir` on
/// plain files; the reloader once woke on them and so re-read the files in a loop, using more than
/// a core while idle. Idle, it must look only once per poll interval, in either layout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_server_reads_its_certificates_once_per_poll_interval() {
    let ca = Ca::new("idle CA");
    let a = ca.server_leaf(0xA1, 2040);
    let plain = TempDir::new("idle-reload-plain");
    plain.write("tls.crt", &a.cert_pem);
    plain.write("tls.key", &a.key_pem);
    let kubelet = kubelet_dir("idle-reload-kubelet", &a);
    for (layout, dir) in [("plain files", &plain), ("kubelet symlinks", &kubelet)] {
        let mut config = serve_config(&dir.path().join("tls.crt"), &dir.path().join("tls.key"));
        let poll = Duration::from_millis(500);
        config.cert_poll_interval = poll;
        let running = start(config).await;
        let before = (
            metric(&running, ATTEMPTS_POLL).expect("poll attempts exported"),
            metric(&running, ATTEMPTS_WATCH).expect("watch attempts exported"),
        );
        let idle = Duration::from_secs(3);
        tokio::time::sleep(idle).await;
        let polls = metric(&running, ATTEMPTS_POLL).unwrap() - before.0;
        let watches = metric(&running, ATTEMPTS_WATCH).unwrap() - before.1;
        let most = (idle.as_secs_f64() / poll.as_secs_f64()).ceil() + 1.0;
        assert!(
            polls + watches <= most,
            "{layout}: {polls} poll and {watches} watch reload attempts in {idle:?} of idleness with a {poll:?} poll interval (at most {most})"
        );
        assert!(
            polls >= 2.0,
            "{layout}: the poll still runs: {polls} attempts"
        );
        assert_eq!(
            watches, 0.0,
            "{layout}: nothing changed, yet the watch woke the reloader"
        );
        assert_eq!(
            metric(&running, RELOAD_OK),
            Some(1.0),
            "{layout}: no reload beyond the first load"
        );
        stop(running).await;
    }
}

/// A certificate rewritten in place (no symlink swap) is picked up through the watch, well before
/// a long poll interval would notice it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_written_in_place_is_served_without_waiting_for_the_poll() {
    let fx = Fixture::new("in-place");
    let mut config = fx.config();
    config.cert_poll_interval = Duration::from_secs(3600);
    let running = start(config).await;
    let tls = fx.client();
    assert_served_with(running.addr, &tls, &fx.leaf).await;
    let b = fx.ca.server_leaf(0xB2, 2041);
    // The key first, then the certificate: the pair is torn in between.
    std::fs::write(&fx.key, &b.key_pem).unwrap();
    std::fs::write(&fx.cert, &b.cert_pem).unwrap();
    let took = wait_for_peer(running.addr, &tls, &b, Duration::from_secs(5)).await;
    println!("the rewritten certificate was served {took:?} after the write");
    assert_served_with(running.addr, &tls, &b).await;
    assert_eq!(metric(&running, EXPIRY), Some(b.not_after as f64));
    assert!(
        metric(&running, ATTEMPTS_WATCH).unwrap_or(0.0) >= 1.0,
        "the change was seen by the watch"
    );
    stop(running).await;
}

// ---------------------------------------------------------------------------------------------
// 5. Graceful shutdown
// ---------------------------------------------------------------------------------------------

/// Starts a server with a probe listener and a request whose body is half sent.
async fn server_with_request_in_flight(
    fx: &Fixture,
    uid: &str,
) -> (Running, TlsStream<TcpStream>, Vec<u8>) {
    let mut config = fx.config();
    config.probe_addr = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    config.shutdown_timeout = Duration::from_secs(10);
    config.request_timeout = Duration::from_secs(30);
    let running = start(config).await;
    let probe = running.probe_addr.expect("probe address");
    assert_eq!(plain_get(probe, "/readyz").await.unwrap().status, 200);
    let body = serde_json::to_vec(&denied_review(uid)).unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut tls = tls_connect(running.addr, &fx.client()).await.unwrap();
    tls.write_all(
        post_head("/validate", &format!("Content-Length: {}\r\n", body.len())).as_bytes(),
    )
    .await
    .unwrap();
    tls.write_all(first).await.unwrap();
    tls.flush().await.unwrap();
    wait_until("the request in flight", IO, || {
        metric(&running, IN_FLIGHT) == Some(1.0)
    })
    .await;
    (running, tls, rest.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_an_in_flight_request_finish() {
    let fx = Fixture::new("drain");
    let (running, mut tls, rest) = server_with_request_in_flight(&fx, "drain").await;
    let (addr, probe) = (running.addr, running.probe_addr.unwrap());

    let began = Instant::now();
    running.begin_shutdown();
    // Not ready any more: whether refused or answered, /readyz must not say 200.
    match plain_get(probe, "/readyz").await {
        Ok(reply) => assert_eq!(
            reply.status,
            503,
            "/readyz while draining: {}",
            reply.text()
        ),
        Err(e) => println!("note: /readyz on the probe listener while draining: {e}"),
    }
    // No new connections are served.
    let newcomer = attempt_review(addr, &fx.client()).await;
    assert!(
        newcomer.is_err(),
        "a new connection was served while draining: {newcomer:?}"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    tls.write_all(&rest).await.unwrap();
    tls.flush().await.unwrap();
    let reply = within("the in-flight response", IO, read_reply(&mut tls))
        .await
        .expect("the in-flight request is answered");
    assert_denied(&reply, "drain", V1);
    drop(tls);

    within("wait after drain", Duration::from_secs(15), running.wait())
        .await
        .expect("wait returns Ok");
    let took = began.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "shutdown took {took:?} with nothing left in flight (shutdown_timeout 10 s)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_503_on_the_probe_listener_while_draining() {
    let fx = Fixture::new("drain-readyz");
    let (running, mut tls, rest) = server_with_request_in_flight(&fx, "drain-readyz").await;
    let probe = running.probe_addr.unwrap();
    running.begin_shutdown();
    let readyz = plain_get(probe, "/readyz").await;
    let healthz = plain_get(probe, "/healthz").await;
    // Let the drain finish before asserting, so the server stops either way.
    tls.write_all(&rest).await.unwrap();
    let _ = within("the in-flight response", IO, read_reply(&mut tls)).await;
    drop(tls);
    let _ = within("wait", Duration::from_secs(15), running.wait()).await;
    let readyz = readyz.unwrap_or_else(|e| panic!("/readyz while draining: {e}"));
    assert_eq!(readyz.status, 503, "{}", readyz.text());
    let healthz = healthz.unwrap_or_else(|e| panic!("/healthz while draining: {e}"));
    assert_eq!(healthz.status, 200, "{}", healthz.text());
}

// ---------------------------------------------------------------------------------------------
// 6. Metrics
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_reviews_findings_and_the_certificate() {
    let fx = Fixture::new("metrics");
    let mut config = fx.config();
    config.probe_addr = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let running = start(config).await;
    let mut conn = H1::open(running.addr, &fx.client()).await.unwrap();
    assert_allowed(
        &conn.review(&allowed_review("m-allowed")).await.unwrap(),
        "m-allowed",
        V1,
    );
    assert_denied(
        &conn.review(&denied_review("m-denied")).await.unwrap(),
        "m-denied",
        V1,
    );
    let unsupported = conn
        .send(request("POST", "/validate", Some("text/plain"), "{}"))
        .await
        .unwrap();
    assert_eq!(unsupported.status, 415);
    drop(conn);

    let over_tls = one_shot(
        running.addr,
        &fx.client(),
        request("GET", "/metrics", None, Bytes::new()),
    )
    .await
    .unwrap();
    let over_probe = plain_get(running.probe_addr.unwrap(), "/metrics")
        .await
        .unwrap();
    let expected_expiry = not_after_of(fx.leaf.der.as_ref());
    assert_eq!(
        expected_expiry,
        rcgen::date_time_ymd(2040, 1, 1).unix_timestamp()
    );
    for (which, reply) in [("TLS", over_tls), ("probe", over_probe)] {
        assert_eq!(reply.status, 200, "{which}");
        assert!(
            reply
                .header("content-type")
                .is_some_and(|ct| ct.starts_with("application/openmetrics-text")),
            "{which}: {:?}",
            reply.header("content-type")
        );
        let text = reply.text();
        let value = |series: &str| metric_value(&text, series);
        let context = format!("{which} /metrics:\n{text}");
        assert_eq!(
            value(
                r#"image_config_webhook_requests_total{operation="CREATE",allowed="true",code="200"}"#
            ),
            Some(1.0),
            "{context}"
        );
        assert_eq!(
            value(
                r#"image_config_webhook_requests_total{operation="CREATE",allowed="false",code="422"}"#
            ),
            Some(1.0),
            "{context}"
        );
        assert_eq!(
            value(
                r#"image_config_webhook_requests_total{operation="",allowed="false",code="415"}"#
            ),
            Some(1.0),
            "{context}"
        );
        assert!(
            value(r#"image_config_webhook_rule_findings_total{rule="R2",kind="error"}"#)
                .is_some_and(|n| n >= 1.0),
            "{context}"
        );
        assert_eq!(value(EXPIRY), Some(expected_expiry as f64), "{context}");
        assert_eq!(value(IN_FLIGHT), Some(0.0), "{context}");
        assert_eq!(value(RELOAD_OK), Some(1.0), "{context}");
        assert_eq!(
            value("image_config_webhook_request_duration_seconds_count"),
            Some(3.0),
            "{context}"
        );
        assert!(text.trim_end().ends_with("# EOF"), "{context}");
    }
    stop(running).await;
}

// ---------------------------------------------------------------------------------------------
// 7. IPv6
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_loopback_is_served() {
    require_ipv6_loopback();
    let fx = Fixture::new("ipv6");
    let mut config = fx.config();
    config.listen = SocketAddr::from((Ipv6Addr::LOCALHOST, 0));
    let running = start(config).await;
    assert!(running.addr.is_ipv6(), "bound {}", running.addr);
    assert_denied(
        &attempt_review_of(running.addr, &fx.client(), &denied_review("v6"))
            .await
            .unwrap(),
        "v6",
        V1,
    );
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_wildcard_listener_also_accepts_ipv4() {
    require_ipv6_loopback();
    let fx = Fixture::new("dual-stack");
    let mut config = fx.config();
    config.listen = SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0));
    let running = start(config).await;
    let port = running.addr.port();
    for target in [
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
    ] {
        let reply = attempt_review_of(target, &fx.client(), &allowed_review("dual"))
            .await
            .unwrap_or_else(|e| panic!("{target} through a [::] listener: {e}"));
        assert_allowed(&reply, "dual", V1);
    }
    stop(running).await;
}

async fn attempt_review_of(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    review: &Value,
) -> Result<Reply, String> {
    one_shot(addr, config, review_request(review)).await
}

// ---------------------------------------------------------------------------------------------
// 8. The real binary
// ---------------------------------------------------------------------------------------------

/// Kills the child on drop (a failed assertion must not leave a server behind).
/// A behaviour bound, not a benchmark: an idle webhook must cost next to nothing. The reload loop
/// this guards against used about 1.4 cores; the bound is 1 % of a core over 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_binary_uses_almost_no_cpu() {
    // Plain files in the watched directory: the layout in which reads made events.
    let fx = Fixture::new("idle-cpu");
    let stderr = fx.dir.path().join("stderr.log");
    let (child, _, _) = start_binary(fx.dir.path(), &stderr, &["--cert-poll-interval", "1s"]).await;
    let pid = child.0.id();
    // Let start-up work settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let window = Duration::from_secs(5);
    let before = cpu_seconds(pid);
    tokio::time::sleep(window).await;
    let used = cpu_seconds(pid) - before;
    let share = used / window.as_secs_f64();
    println!(
        "idle CPU: {used:.3} s in {window:?} ({:.2} % of a core)",
        share * 100.0
    );
    assert!(
        share < 0.01,
        "an idle webhook used {:.1} % of a core over {window:?}; stderr:\n{}",
        share * 100.0,
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_then_exits_zero_on_sigterm() {
    let fx = Fixture::new("binary");
    let stderr = fx.dir.path().join("stderr.log");
    let (mut child, addr, _) = start_binary(fx.dir.path(), &stderr, &[]).await;

    let reply = attempt_review_of(addr, &fx.client(), &denied_review("binary"))
        .await
        .unwrap();
    assert_denied(&reply, "binary", V1);
    assert_eq!(
        reply.json()["response"]["status"]["code"],
        422,
        "{}",
        reply.text()
    );

    let pid = child.0.id().to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(kill.success(), "kill -TERM {pid}: {kill}");
    let status = tokio::task::spawn_blocking(move || {
        let status = wait_exit_blocking(&mut child.0, Duration::from_secs(10));
        (status, child)
    })
    .await
    .unwrap();
    let log = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert_eq!(
        status.0.and_then(|s| s.code()),
        Some(0),
        "exit after SIGTERM: {:?}; stderr:\n{log}",
        status.0
    );
}

#[test]
fn binary_exits_2_naming_a_missing_cert_dir() {
    let dir = TempDir::new("missing-dir");
    let missing = dir.path().join("no-such-dir");
    let (code, errors, log) = failed_start(dir.path(), &missing);
    assert_eq!(code, Some(2), "stderr:\n{log}");
    let file = missing.join("tls.crt").display().to_string();
    assert_eq!(errors.len(), 1, "one error line expected; stderr:\n{log}");
    assert!(
        errors[0].contains(&file),
        "{:?} does not name {file}",
        errors[0]
    );
}

#[test]
fn binary_exits_2_naming_a_key_that_does_not_match() {
    let fx = Fixture::new("mismatch");
    let stranger = KeyPair::generate().unwrap().serialize_pem();
    let cert_dir = fx.dir.path().join("mismatched");
    fx.dir.write("mismatched/tls.crt", &fx.leaf.cert_pem);
    let key = fx.dir.write("mismatched/tls.key", &stranger);
    let (code, errors, log) = failed_start(fx.dir.path(), &cert_dir);
    assert_eq!(code, Some(2), "stderr:\n{log}");
    assert_eq!(errors.len(), 1, "one error line expected; stderr:\n{log}");
    let file = key.display().to_string();
    assert!(
        errors[0].contains(&file) && errors[0].contains("does not match the certificate"),
        "{:?} does not name {file} and the mismatch",
        errors[0]
    );
}

#[test]
fn binary_exits_2_naming_an_address_in_use() {
    let fx = Fixture::new("in-use");
    let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let stderr = fx.dir.path().join("stderr.log");
    let mut child = spawn_binary(
        &[
            "serve",
            "--cert-dir",
            fx.dir.path().to_str().unwrap(),
            "--listen",
            &listen,
        ],
        &stderr,
    );
    let status = wait_exit_blocking(&mut child.0, Duration::from_secs(10));
    let log = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert_eq!(status.and_then(|s| s.code()), Some(2), "stderr:\n{log}");
    let errors: Vec<&str> = log.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line expected; stderr:\n{log}");
    assert!(
        errors[0].contains(&format!("cannot listen on {listen}")),
        "{:?} does not name {listen}",
        errors[0]
    );
    drop(taken);
}
