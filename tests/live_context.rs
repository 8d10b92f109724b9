//! `serve --cluster-context` against a fake API server: a loopback HTTPS server started here
//! that speaks enough of the Kubernetes list and watch protocol for the four kinds (a list with
//! its resourceVersion; `?watch=true` streaming newline-delimited events from a
//! resourceVersion; 404 for a kind on demand; a watch cut off cleanly or mid-stream), and a
//! kubeconfig naming it with its CA. The webhook runs in this process on another loopback port.
//!
//! What it shows: a new ImageDigestMirrorSet reaches the policy the next review judges with
//! within 2 s and changes the next verdict (a warning it brings appears within 2 s, and goes
//! when it is deleted), over connections whose key exchange is the post-quantum X25519MLKEM768;
//! an API server that is down, or that does not serve a kind, leaves the webhook ready and
//! judging without that context (`context_synced{kind}` 0), and a kind that appears later is
//! picked up; a watch that breaks is resumed and later changes arrive, and one that cannot be
//! opened again leaves the objects last seen until the kind is listed anew. Every wait is
//! bounded; nothing but loopback is contacted.
// Outside the pure core (clippy.toml): sockets, temp files and the clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use common::http::{one_shot, request, review_request};
use common::pki::Ca;
use common::server::{Fixture, metric, start, stop};
use common::tmp::TempDir;
use common::{image_review, wait_until};
use image_config_webhook::server::Running;
use image_config_webhook::server::watch::ApiServer;

/// The longest any wait here may take.
const LIMIT: Duration = Duration::from_secs(10);
/// How soon a change must reach the next review.
const PROMPT: Duration = Duration::from_secs(2);

const IDMS: &str = "imagedigestmirrorsets";
const ITMS: &str = "imagetagmirrorsets";
const ICSP: &str = "imagecontentsourcepolicies";
const CV: &str = "clusterversions";

/// The four resources: plural, group, version, kind.
const RESOURCES: [(&str, &str, &str, &str); 4] = [
    (IDMS, "config.openshift.io", "v1", "ImageDigestMirrorSet"),
    (ITMS, "config.openshift.io", "v1", "ImageTagMirrorSet"),
    (
        ICSP,
        "operator.openshift.io",
        "v1alpha1",
        "ImageContentSourcePolicy",
    ),
    (CV, "config.openshift.io", "v1", "ClusterVersion"),
];

const RELEASE: &str = "quay.io/openshift-release-dev/ocp-release@sha256:4c3a8b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b";

// ---------------------------------------------------------------------------------------------
// The fake API server
// ---------------------------------------------------------------------------------------------

type Body = BoxBody<Bytes, std::io::Error>;
type Chunk = Result<Frame<Bytes>, std::io::Error>;

/// One resource's objects, its event log and its open watches.
#[derive(Default)]
struct Resource {
    objects: BTreeMap<String, Value>,
    /// Every event, with the resourceVersion it made, for watches that start from an older one.
    log: Vec<(u64, Bytes)>,
    watches: Vec<mpsc::UnboundedSender<Chunk>>,
    /// Answer 404, as an API server that does not serve the kind.
    missing: bool,
}

#[derive(Default)]
struct State {
    resource_version: u64,
    resources: HashMap<&'static str, Resource>,
}

/// A loopback HTTPS server speaking list and watch for the four resources.
struct FakeApi {
    addr: SocketAddr,
    ca: Ca,
    state: Mutex<State>,
    /// The key exchange group of each connection, in the order they were accepted.
    groups: Mutex<Vec<rustls::NamedGroup>>,
}

impl FakeApi {
    async fn start() -> Arc<FakeApi> {
        let ca = Ca::new("fake API server CA");
        let leaf = ca.server_leaf(7, 2040);
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der.clone()], leaf.key())
            .expect("server config");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let mut state = State::default();
        for (plural, ..) in RESOURCES {
            state.resources.insert(plural, Resource::default());
        }
        let fake = Arc::new(FakeApi {
            addr,
            ca,
            state: Mutex::new(state),
            groups: Mutex::new(Vec::new()),
        });
        let server = fake.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, fake) = (acceptor.clone(), server.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    if let Some(group) = tls.get_ref().1.negotiated_key_exchange_group() {
                        fake.groups.lock().unwrap().push(group.name());
                    }
                    let service = service_fn(move |req| {
                        let fake = fake.clone();
                        async move { Ok::<_, Infallible>(fake.answer(&req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        fake
    }

    /// A kubeconfig naming this server, trusting its CA, with a token.
    fn kubeconfig(&self, dir: &TempDir) -> std::path::PathBuf {
        kubeconfig_for(dir, self.addr, &self.ca)
    }

    fn answer(&self, req: &Request<Incoming>) -> Response<Body> {
        let path = req.uri().path();
        let query = req.uri().query().unwrap_or("");
        let Some(&(plural, group, version, kind)) = RESOURCES
            .iter()
            .find(|(p, g, v, _)| path == format!("/apis/{g}/{v}/{p}"))
        else {
            return not_found(path);
        };
        let param = |key: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        };
        let mut state = self.state.lock().unwrap();
        let current = state.resource_version;
        let resource = state.resources.get_mut(plural).unwrap();
        if resource.missing {
            return not_found(path);
        }
        if !matches!(param("watch"), Some("true" | "1")) {
            let list = json!({
                "apiVersion": format!("{group}/{version}"),
                "kind": format!("{kind}List"),
                "metadata": {"resourceVersion": current.to_string()},
                "items": resource.objects.values().cloned().collect::<Vec<_>>(),
            });
            return full(StatusCode::OK, list.to_string());
        }
        let from: u64 = param("resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let (tx, rx) = mpsc::unbounded_channel();
        for (_, event) in resource.log.iter().filter(|(rv, _)| *rv > from) {
            let _ = tx.send(Ok(Frame::data(event.clone())));
        }
        resource.watches.push(tx);
        let events = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        });
        Response::builder()
            .header("content-type", "application/json")
            .body(StreamBody::new(events).boxed())
            .unwrap()
    }

    /// Creates or replaces an object, as ADDED or MODIFIED to every watch of its resource.
    fn apply(&self, plural: &'static str, name: &str, mut object: Value) {
        let (_, group, version, kind) = *RESOURCES.iter().find(|r| r.0 == plural).unwrap();
        let mut state = self.state.lock().unwrap();
        state.resource_version += 1;
        let rv = state.resource_version;
        object["apiVersion"] = json!(format!("{group}/{version}"));
        object["kind"] = json!(kind);
        object["metadata"] = json!({"name": name, "resourceVersion": rv.to_string()});
        let resource = state.resources.get_mut(plural).unwrap();
        let kind = if resource.objects.contains_key(name) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        resource.objects.insert(name.to_owned(), object.clone());
        resource.event(rv, kind, object);
    }

    /// Deletes an object, as DELETED to every watch.
    fn delete(&self, plural: &'static str, name: &str) {
        let mut state = self.state.lock().unwrap();
        state.resource_version += 1;
        let rv = state.resource_version;
        let resource = state.resources.get_mut(plural).unwrap();
        if let Some(mut object) = resource.objects.remove(name) {
            object["metadata"]["resourceVersion"] = json!(rv.to_string());
            resource.event(rv, "DELETED", object);
        }
    }

    /// Serves the resource (or answers 404 for it).
    fn set_missing(&self, plural: &'static str, missing: bool) {
        self.state
            .lock()
            .unwrap()
            .resources
            .get_mut(plural)
            .unwrap()
            .missing = missing;
    }

    /// Ends every watch of the resource: cleanly (the last chunk, as an API server's watch
    /// timeout does) or mid-stream (the connection cut without it).
    fn break_watches(&self, plural: &'static str, abruptly: bool) {
        let mut state = self.state.lock().unwrap();
        let resource = state.resources.get_mut(plural).unwrap();
        for watch in resource.watches.drain(..) {
            if abruptly {
                let _ = watch.send(Err(std::io::Error::other("cut off")));
            }
        }
    }

    /// Watches of the resource still open.
    fn watches(&self, plural: &'static str) -> usize {
        let mut state = self.state.lock().unwrap();
        let resource = state.resources.get_mut(plural).unwrap();
        resource.watches.retain(|w| !w.is_closed());
        resource.watches.len()
    }
}

impl Resource {
    fn event(&mut self, rv: u64, kind: &str, object: Value) {
        let line = Bytes::from(json!({"type": kind, "object": object}).to_string() + "\n");
        self.log.push((rv, line.clone()));
        self.watches
            .retain(|w| w.send(Ok(Frame::data(line.clone()))).is_ok());
    }
}

fn full(status: StatusCode, text: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(text)).map_err(|e| match e {}).boxed())
        .unwrap()
}

fn not_found(path: &str) -> Response<Body> {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": format!("the server could not find the requested resource ({path})"),
                        "reason": "NotFound", "details": {}, "code": 404});
    full(StatusCode::NOT_FOUND, status.to_string())
}

fn kubeconfig_for(dir: &TempDir, addr: SocketAddr, ca: &Ca) -> std::path::PathBuf {
    use base64::Engine as _;
    let ca_data = base64::engine::general_purpose::STANDARD.encode(&ca.pem);
    dir.write(
        "kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: https://{addr}\n    certificate-authority-data: {ca_data}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: fake}}\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{token: not-a-secret}}\n"
        ),
    )
}

fn idms(source: &str) -> Value {
    json!({"spec": {"imageDigestMirrors": [{"source": source, "mirrors": ["mirror.local/x"]}]}})
}

// ---------------------------------------------------------------------------------------------
// The webhook
// ---------------------------------------------------------------------------------------------

/// The webhook with `--cluster-context` on the kubeconfig `api`.
async fn webhook(fx: &Fixture, api: ApiServer) -> Running {
    let mut config = fx.config();
    config.cluster_context = Some(api);
    let started = Instant::now();
    let running = start(config).await;
    assert!(
        started.elapsed() < PROMPT,
        "the start does not wait for the API server: {:?}",
        started.elapsed()
    );
    running
}

fn synced(running: &Running, kind: &str) -> Option<f64> {
    metric(
        running,
        &format!("image_config_webhook_context_synced{{kind=\"{kind}\"}}"),
    )
}

fn objects(running: &Running, kind: &str) -> Option<f64> {
    metric(
        running,
        &format!("image_config_webhook_context_objects{{kind=\"{kind}\"}}"),
    )
}

/// The mirror sets of a kind the next review judges with, by name.
fn digest_sets(running: &Running) -> Vec<String> {
    running
        .state
        .policy()
        .context()
        .map(|c| {
            c.digest_mirror_sets
                .iter()
                .map(|s| s.name.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The warnings of the answer to a CREATE of an Image with `spec` (allowed).
async fn review_warnings(fx: &Fixture, running: &Running, spec: &Value) -> Vec<String> {
    let review = image_review("uid-live", "admission.k8s.io/v1", spec.clone());
    let reply = one_shot(running.addr, &fx.client(), review_request(&review))
        .await
        .expect("a review");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let answer = reply.json();
    assert_eq!(answer.pointer("/response/allowed"), Some(&json!(true)));
    answer
        .pointer("/response/warnings")
        .and_then(Value::as_array)
        .map(|w| {
            w.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Posts reviews of an Image with `spec` until the answer's warnings hold `warning` (or, when
/// `present` is false, no longer hold it); returns how long that took, or fails after `limit`.
async fn until_warned(
    what: &str,
    limit: Duration,
    fx: &Fixture,
    running: &Running,
    spec: &Value,
    warning: &str,
    present: bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let warnings = review_warnings(fx, running, spec).await;
        if warnings.iter().any(|w| w == warning) == present {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{what}: not within {limit:?}; the last warnings: {warnings:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Ready, and a review answered (allowed).
async fn ready_and_judging(fx: &Fixture, running: &Running) {
    let ready = one_shot(
        running.addr,
        &fx.client(),
        request("GET", "/readyz", None, ""),
    )
    .await
    .expect("/readyz");
    assert_eq!(ready.status, 200, "{}", ready.text());
    let review = image_review("uid-1", "admission.k8s.io/v1", json!({}));
    let reply = one_shot(running.addr, &fx.client(), review_request(&review))
        .await
        .expect("a review");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json().pointer("/response/allowed"),
        Some(&json!(true))
    );
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_mirror_set_reaches_the_next_review_within_two_seconds() {
    let api = FakeApi::start().await;
    api.apply(
        CV,
        "version",
        json!({"status": {"desired": {"image": RELEASE}}}),
    );
    api.apply(IDMS, "first", idms("quay.io/a"));
    let dir = TempDir::new("live-context");
    let fx = Fixture::new("live-context");
    let running = webhook(&fx, ApiServer::Kubeconfig(api.kubeconfig(&dir))).await;
    wait_until("every kind synced", LIMIT, || {
        RESOURCES
            .iter()
            .all(|(.., kind)| synced(&running, kind) == Some(1.0))
    })
    .await;
    assert_eq!(digest_sets(&running), ["first"]);
    assert_eq!(
        running
            .state
            .policy()
            .context()
            .and_then(|c| c.release_image.clone()),
        Some(RELEASE.to_owned())
    );
    assert_eq!(objects(&running, "ImageDigestMirrorSet"), Some(1.0));
    assert_eq!(objects(&running, "ClusterVersion"), Some(1.0));
    // The kube client offers the post-quantum hybrid first, as Go's does (src/crypto.rs).
    let groups = api.groups.lock().unwrap().clone();
    assert!(!groups.is_empty(), "no connection from the kube client");
    assert!(
        groups
            .iter()
            .all(|g| *g == rustls::NamedGroup::X25519MLKEM768),
        "{groups:?}"
    );
    // An Image that blocks the registry of the second IDMS's mirror: W22 warns only once that
    // IDMS exists (MIRRORS.md §8 (b)), so the verdict shows which mirror sets it was judged with.
    let spec = json!({"registrySources": {"blockedRegistries": ["mirror.second.example.net"]}});
    let w22 = "spec.registrySources.blockedRegistries[0]: \"mirror.second.example.net\" blocks \
               the mirror \"mirror.second.example.net/b\" of \"quay.io/b\": pulls skip it";
    let before = review_warnings(&fx, &running, &spec).await;
    assert!(before.is_empty(), "no W22 without the IDMS: {before:?}");
    // Once the watch is open, a new object is an event, not a relist.
    wait_until("the IDMS watch is open", LIMIT, || api.watches(IDMS) > 0).await;
    api.apply(
        IDMS,
        "second",
        json!({"spec": {"imageDigestMirrors": [{"source": "quay.io/b", "mirrors": ["mirror.second.example.net/b"]}]}}),
    );
    let took = until_warned(
        "the next verdict warns of the new IDMS's blocked mirror",
        PROMPT,
        &fx,
        &running,
        &spec,
        w22,
        true,
    )
    .await;
    eprintln!("a new IDMS changed the next verdict in {took:?}");
    assert_eq!(digest_sets(&running), ["first", "second"]);
    assert_eq!(objects(&running, "ImageDigestMirrorSet"), Some(2.0));
    api.delete(IDMS, "first");
    wait_until("the deleted IDMS is gone", PROMPT, || {
        digest_sets(&running) == ["second"]
    })
    .await;
    ready_and_judging(&fx, &running).await;
    assert_eq!(review_warnings(&fx, &running, &spec).await, [w22]);
    // Deleted, the IDMS no longer speaks in the next verdict.
    api.delete(IDMS, "second");
    let took = until_warned(
        "the next verdict no longer warns of the deleted IDMS",
        PROMPT,
        &fx,
        &running,
        &spec,
        w22,
        false,
    )
    .await;
    eprintln!("a deleted IDMS left the next verdict in {took:?}");
    assert_eq!(digest_sets(&running), Vec::<String>::new());
    assert_eq!(
        review_warnings(&fx, &running, &spec).await,
        Vec::<String>::new()
    );
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_that_is_down_leaves_the_webhook_ready_and_judging() {
    // A port nothing listens on: every list is refused.
    let closed = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let dir = TempDir::new("live-context-down");
    let fx = Fixture::new("live-context-down");
    let ca = Ca::new("nobody's CA");
    let running = webhook(
        &fx,
        ApiServer::Kubeconfig(kubeconfig_for(&dir, closed, &ca)),
    )
    .await;
    ready_and_judging(&fx, &running).await;
    // Some tries later, still nothing synced and still judging, without context.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for (.., kind) in RESOURCES {
        assert_eq!(synced(&running, kind), Some(0.0), "{kind}");
        assert_eq!(objects(&running, kind), Some(0.0), "{kind}");
    }
    assert!(running.state.policy().context().is_none());
    ready_and_judging(&fx, &running).await;
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_the_api_server_does_not_serve_is_judged_without_and_picked_up_later() {
    let api = FakeApi::start().await;
    api.set_missing(ICSP, true);
    api.apply(IDMS, "release", idms("quay.io/a"));
    let dir = TempDir::new("live-context-404");
    let fx = Fixture::new("live-context-404");
    let running = webhook(&fx, ApiServer::Kubeconfig(api.kubeconfig(&dir))).await;
    wait_until("the served kinds synced", LIMIT, || {
        [
            "ImageDigestMirrorSet",
            "ImageTagMirrorSet",
            "ClusterVersion",
        ]
        .iter()
        .all(|kind| synced(&running, kind) == Some(1.0))
    })
    .await;
    assert_eq!(synced(&running, "ImageContentSourcePolicy"), Some(0.0));
    assert_eq!(digest_sets(&running), ["release"]);
    ready_and_judging(&fx, &running).await;
    // The kind appears (its CRD installed): the next try lists it.
    api.apply(
        ICSP,
        "old",
        json!({"spec": {"repositoryDigestMirrors": [{"source": "registry.redhat.io", "mirrors": ["m.local/rh"]}]}}),
    );
    api.set_missing(ICSP, false);
    wait_until("the ICSP kind synced", LIMIT, || {
        synced(&running, "ImageContentSourcePolicy") == Some(1.0)
    })
    .await;
    assert_eq!(objects(&running, "ImageContentSourcePolicy"), Some(1.0));
    let icsp = running
        .state
        .policy()
        .context()
        .map(|c| c.content_source_policies.len());
    assert_eq!(icsp, Some(1));
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_that_breaks_is_resumed_and_later_changes_arrive() {
    let api = FakeApi::start().await;
    let dir = TempDir::new("live-context-break");
    let fx = Fixture::new("live-context-break");
    let running = webhook(&fx, ApiServer::Kubeconfig(api.kubeconfig(&dir))).await;
    wait_until("the IDMS and ITMS watches are open", LIMIT, || {
        api.watches(IDMS) > 0 && api.watches(ITMS) > 0
    })
    .await;
    assert_eq!(synced(&running, "ImageDigestMirrorSet"), Some(1.0));
    // Cut off mid-stream: kube reads the cut as the end of the watch (as it reads an API
    // server's watch timeout) and watches again from the last resourceVersion.
    api.break_watches(IDMS, true);
    api.apply(IDMS, "after-cut", idms("quay.io/c"));
    wait_until("the IDMS made after the cut is judged with", LIMIT, || {
        digest_sets(&running) == ["after-cut"]
    })
    .await;
    wait_until("IDMS synced again", LIMIT, || {
        synced(&running, "ImageDigestMirrorSet") == Some(1.0)
    })
    .await;
    // Ended cleanly, as an API server's watch timeout does: resumed from its resourceVersion.
    api.break_watches(ITMS, false);
    wait_until("the ITMS watch is open again", LIMIT, || {
        api.watches(ITMS) > 0
    })
    .await;
    api.apply(
        ITMS,
        "tags",
        json!({"spec": {"imageTagMirrors": [{"source": "docker.io", "mirrors": ["m.local/d"]}]}}),
    );
    wait_until("the ITMS made after the end is judged with", PROMPT, || {
        running
            .state
            .policy()
            .context()
            .is_some_and(|c| c.tag_mirror_sets.len() == 1)
    })
    .await;
    assert_eq!(synced(&running, "ImageTagMirrorSet"), Some(1.0));
    // And the cut watch works again too.
    wait_until("the IDMS watch is open again", LIMIT, || {
        api.watches(IDMS) > 0
    })
    .await;
    api.apply(IDMS, "later", idms("quay.io/d"));
    wait_until("a later IDMS is judged with", PROMPT, || {
        digest_sets(&running) == ["after-cut", "later"]
    })
    .await;
    // A watch that cannot be opened again (the kind gone for a while): unavailable, judged
    // with the objects last seen, then listed anew when it is back.
    api.set_missing(IDMS, true);
    api.break_watches(IDMS, false);
    wait_until("IDMS unavailable", LIMIT, || {
        synced(&running, "ImageDigestMirrorSet") == Some(0.0)
    })
    .await;
    assert_eq!(digest_sets(&running), ["after-cut", "later"]);
    ready_and_judging(&fx, &running).await;
    api.delete(IDMS, "after-cut");
    api.apply(IDMS, "during-outage", idms("quay.io/e"));
    api.set_missing(IDMS, false);
    wait_until("IDMS resumed with a fresh list", LIMIT, || {
        synced(&running, "ImageDigestMirrorSet") == Some(1.0)
            && digest_sets(&running) == ["during-outage", "later"]
    })
    .await;
    stop(running).await;
}
