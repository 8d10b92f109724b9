//! Issue 15, item 1: renewing the serving certificate and rotating the CA of the plain overlay
//! without a window of failed calls, played with the commands the README shows.
//!
//! The cluster is modelled the way it behaves: "applying" the output directory gives the API
//! server the new caBundle at once (it rebuilds its client when the webhook configuration
//! changes), and the pods the new Secret later (kubelet swaps the mounted `..data` symlink a
//! minute or so afterwards; here 600 ms). Meanwhile a client that trusts only the current bundle
//! calls the live server over a new TLS connection each time, verifying the Service's DNS name,
//! as the API server does. Renewal (bundle unchanged) and the three steps of a CA rotation must
//! cost no call, and calls must happen in every window, the one between bundle and Secret
//! included.
// Outside the pure core (clippy.toml): it runs the binary, reads files and waits on the clock.
#![allow(clippy::disallowed_methods)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::sync::watch;
use tokio_rustls::TlsConnector;

use common::binary::{BIN, run_ok};
use common::http::{collect, review_request};
use common::pki::serial_of;
use common::server::{metric, serve_config, start, stop};
use common::tmp::TempDir;
use common::{image_review, within};
use image_config_webhook::server::Running;

/// The name the API server verifies: the Service's DNS name.
const SERVICE_NAME: &str = "image-config-webhook.image-config-webhook.svc";
/// How long after the bundle the pods get the new Secret (kubelet's delay, shortened).
const KUBELET_LAG: Duration = Duration::from_millis(600);
/// Calls each window must see at least.
const MIN_CALLS: usize = 3;
const RELOAD_FAILED: &str = "image_config_webhook_certificate_reloads_total{result=\"failure\"}";

/// The windows of the play, in order; a call is counted in the window in which it started.
const WINDOWS: &[&str] = &[
    "initial",
    "renew: bundle applied",
    "renew: Secret swapped",
    "rotate-ca: bundle (old + new CA) applied",
    "rotate-ca: Secret swapped (same pair)",
    "renew from the new CA: bundle applied",
    "renew from the new CA: Secret swapped",
    "rotate-ca --finish: bundle (new CA) applied",
    "rotate-ca --finish: Secret swapped",
];

/// The `certs` commands the play runs, as `subcommands|flags` (values left out, flags sorted):
/// the documents may show these and no other renewal or rotation command.
const PLAYED: &[&str] = &[
    "certs|--ca-dir --out",
    "certs renew|--ca-dir --out",
    "certs rotate-ca|--ca-dir --out",
    "certs rotate-ca|--ca-dir --finish --out",
    "certs check|--ca-bundle --cert-dir",
];

/// The flags of those commands that take a value.
const VALUE_FLAGS: &[&str] = &["--ca-dir", "--out", "--ca-bundle", "--cert-dir"];

/// `certs renew --ca-dir X --out Y` as `certs renew|--ca-dir --out`.
fn shape(words: &[&str]) -> String {
    let mut path = Vec::new();
    let mut flags = Vec::new();
    let mut words = words.iter();
    while let Some(word) = words.next() {
        if word.starts_with("--") {
            flags.push(*word);
            if VALUE_FLAGS.contains(word) {
                words.next();
            }
        } else if flags.is_empty() {
            path.push(*word);
        }
    }
    flags.sort_unstable();
    format!("{}|{}", path.join(" "), flags.join(" "))
}

/// One call of the client: the window it started in, and the certificate served or the error.
struct Call {
    window: usize,
    outcome: Result<Vec<u8>, String>,
}

/// The operator's machine (CA dir, output dir), the API server's bundle, and the pod's mount.
struct Cluster {
    _root: TempDir,
    ca: PathBuf,
    out: PathBuf,
    pod: PathBuf,
    bundle: watch::Sender<Vec<u8>>,
    generation: AtomicUsize,
}

impl Cluster {
    fn new() -> Cluster {
        let root = TempDir::new("renewal");
        let (ca, out, pod) = (
            root.path().join("ca"),
            root.path().join("out"),
            root.path().join("pod"),
        );
        std::fs::create_dir_all(&pod).unwrap();
        Cluster {
            _root: root,
            ca,
            out,
            pod,
            bundle: watch::channel(Vec::new()).0,
            generation: AtomicUsize::new(0),
        }
    }

    /// `image-config-webhook certs <args>` with `--ca-dir` and `--out` of this cluster.
    fn certs(&self, args: &[&str]) -> String {
        let mut all: Vec<&str> = vec!["certs"];
        all.extend(args);
        all.extend(["--ca-dir", path(&self.ca), "--out", path(&self.out)]);
        assert!(
            PLAYED.contains(&shape(&all).as_str()),
            "{all:?} is not in PLAYED"
        );
        run_ok(&all)
    }

    /// The exit code of `certs check --ca-bundle <bundle> --cert-dir <dir>`.
    fn check(&self, bundle: &Path, dir: &Path) -> i32 {
        let args = [
            "certs",
            "check",
            "--ca-bundle",
            path(bundle),
            "--cert-dir",
            path(dir),
        ];
        assert!(PLAYED.contains(&shape(&args).as_str()));
        let out = Command::new(BIN).args(args).output().unwrap();
        println!(
            "certs check {}:\n{}",
            bundle.display(),
            String::from_utf8_lossy(&out.stdout)
        );
        out.status.code().unwrap_or(-1)
    }

    fn bundle_file(&self) -> PathBuf {
        self.out.join("ca.crt")
    }

    /// The API server's side of `kubectl apply`: the caBundle, at once.
    fn apply_bundle(&self) {
        let bundle = std::fs::read(self.bundle_file()).unwrap();
        self.bundle.send_replace(bundle);
    }

    /// kubelet's side: the Secret's files in a new directory, then `..data` swapped to it.
    fn swap_secret(&self) {
        let n = self.generation.fetch_add(1, Ordering::SeqCst);
        let generation = format!("..gen_{n}");
        let dir = self.pod.join(&generation);
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["tls.crt", "tls.key", "ca.crt"] {
            std::fs::copy(self.out.join(file), dir.join(file)).unwrap();
        }
        let tmp = self.pod.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&generation, &tmp).unwrap();
        std::fs::rename(&tmp, self.pod.join("..data")).unwrap();
        for file in ["tls.crt", "tls.key"] {
            let link = self.pod.join(file);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(format!("..data/{file}"), link).unwrap();
            }
        }
    }

    /// The serving certificate in the output directory, DER.
    fn out_leaf(&self) -> Vec<u8> {
        leaf_of(&self.out.join("tls.crt"))
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

fn leaf_of(file: &Path) -> Vec<u8> {
    CertificateDer::pem_file_iter(file)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .as_ref()
        .to_vec()
}

/// A client config trusting exactly the certificates of `bundle`.
fn trusting(bundle: &[u8]) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(bundle) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// One admission call over a new connection, verifying the Service's DNS name; the served
/// certificate.
async fn call(addr: SocketAddr, config: &Arc<ClientConfig>, uid: &str) -> Result<Vec<u8>, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let name = ServerName::try_from(SERVICE_NAME).unwrap();
    let tls = TlsConnector::from(config.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let peer = common::tls::peer_der(&tls);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(conn);
    let review = image_review(uid, "admission.k8s.io/v1", serde_json::json!({}));
    let response = sender
        .send_request(review_request(&review))
        .await
        .map_err(|e| format!("request: {e}"))?;
    let reply = collect(response).await?;
    if reply.status != 200 || reply.json()["response"]["uid"] != uid {
        return Err(format!("HTTP {}: {}", reply.status, reply.text()));
    }
    Ok(peer)
}

/// Calls until `stop`, each with the client config of the bundle current at the time.
async fn keep_calling(
    addr: SocketAddr,
    mut bundle: watch::Receiver<Vec<u8>>,
    window: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    calls: Arc<Mutex<Vec<Call>>>,
) {
    let mut config = trusting(&bundle.borrow_and_update());
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        if bundle.has_changed().unwrap_or(false) {
            config = trusting(&bundle.borrow_and_update());
        }
        let started_in = window.load(Ordering::SeqCst);
        let outcome = call(addr, &config, &format!("call-{i}")).await;
        calls.lock().unwrap().push(Call {
            window: started_in,
            outcome,
        });
        i += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until window `w` has seen `n` successful calls (the last of them served `want`, when
/// given), failing on the first failed call.
async fn calls_in(calls: &Mutex<Vec<Call>>, w: usize, n: usize, want: Option<&[u8]>) {
    loop {
        {
            let calls = calls.lock().unwrap();
            if let Some(failed) = calls.iter().find(|c| c.outcome.is_err()) {
                panic!(
                    "a call failed in window {:?}: {:?}",
                    WINDOWS[failed.window], failed.outcome
                );
            }
            let served: Vec<&Vec<u8>> = calls
                .iter()
                .filter(|c| c.window == w)
                .filter_map(|c| c.outcome.as_ref().ok())
                .collect();
            let wanted =
                want.is_none_or(|want| served.last().is_some_and(|s| s.as_slice() == want));
            if served.len() >= n && wanted {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_and_ca_rotation_fail_no_call() {
    within("the whole renewal", Duration::from_secs(30), play()).await;
}

/// The control: the way the issue describes, a new CA each time (`certs --force`, no kept CA),
/// fails calls in the window between the bundle and the Secret. This is what the steps avoid,
/// and it shows that the client above does notice a certificate its bundle does not verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_ca_with_every_renewal_fails_calls_until_kubelet_catches_up() {
    let cluster = Cluster::new();
    let out = path(&cluster.out);
    run_ok(&["certs", "--out", out]);
    cluster.apply_bundle();
    cluster.swap_secret();
    let running = start(serve_config(
        &cluster.pod.join("tls.crt"),
        &cluster.pod.join("tls.key"),
    ))
    .await;
    let config = trusting(&cluster.bundle.borrow());
    call(running.addr, &config, "before").await.unwrap();
    run_ok(&["certs", "--out", out, "--force"]);
    cluster.apply_bundle();
    let config = trusting(&cluster.bundle.borrow());
    let refused = call(running.addr, &config, "in-the-window").await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("invalid peer certificate")),
        "{refused:?}"
    );
    cluster.swap_secret();
    let leaf = cluster.out_leaf();
    let mut served = Vec::new();
    for _ in 0..200 {
        if let Ok(peer) = call(running.addr, &config, "after").await {
            served = peer;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(served, leaf, "served once kubelet swapped the Secret");
    stop(running).await;
}

async fn play() {
    let cluster = Cluster::new();
    // Install: a kept CA, the bundle and the pair; applied (bundle, then Secret).
    cluster.certs(&[]);
    let first_ca = std::fs::read(cluster.ca.join("ca.crt")).unwrap();
    cluster.apply_bundle();
    cluster.swap_secret();
    let running = start(serve_config(
        &cluster.pod.join("tls.crt"),
        &cluster.pod.join("tls.key"),
    ))
    .await;
    // A server reading the output directory itself (`serve --cert-dir`), which `renew` rewrites
    // in place: it must never read a torn pair.
    let local = start(serve_config(
        &cluster.out.join("tls.crt"),
        &cluster.out.join("tls.key"),
    ))
    .await;

    let window = Arc::new(AtomicUsize::new(0));
    let stop_calls = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let client = tokio::spawn(keep_calling(
        running.addr,
        cluster.bundle.subscribe(),
        window.clone(),
        stop_calls.clone(),
        calls.clone(),
    ));
    let leaf0 = cluster.out_leaf();
    calls_in(&calls, 0, MIN_CALLS, Some(&leaf0)).await;

    // Renew: a new pair from the same CA; the bundle does not change.
    let bundle = std::fs::read(cluster.bundle_file()).unwrap();
    let printed = cluster.certs(&["renew"]);
    assert!(printed.contains("caBundle: unchanged"), "{printed}");
    assert_eq!(std::fs::read(cluster.bundle_file()).unwrap(), bundle);
    let leaf1 = cluster.out_leaf();
    assert_ne!(leaf1, leaf0);
    assert_eq!(cluster.check(&cluster.bundle_file(), &cluster.out), 0);
    step(&cluster, &window, &calls, 1, &leaf0, &leaf1).await;
    served_locally(&local, &cluster.bundle_file(), &leaf1).await;

    // CA rotation, step 1: the bundle trusts both CAs; the pair is unchanged, so dropping the
    // old CA now is refused.
    cluster.certs(&["rotate-ca"]);
    let both = std::fs::read(cluster.bundle_file()).unwrap();
    assert_eq!(CertificateDer::pem_slice_iter(&both).count(), 2);
    assert_eq!(cluster.out_leaf(), leaf1);
    refused(&cluster, &["certs", "rotate-ca", "--finish"]);
    // The window the steps avoid: the new CA alone does not verify the pair the pods serve.
    assert_eq!(cluster.check(&cluster.ca.join("ca.crt"), &cluster.pod), 1);
    assert_eq!(cluster.check(&cluster.bundle_file(), &cluster.pod), 0);
    step(&cluster, &window, &calls, 3, &leaf1, &leaf1).await;

    // Step 2: a pair from the new CA; the bundle (both CAs) does not change.
    let printed = cluster.certs(&["renew"]);
    assert!(printed.contains("caBundle: unchanged"), "{printed}");
    let leaf2 = cluster.out_leaf();
    assert_eq!(cluster.check(&cluster.ca.join("ca.crt"), &cluster.out), 0);
    step(&cluster, &window, &calls, 5, &leaf1, &leaf2).await;
    served_locally(&local, &cluster.bundle_file(), &leaf2).await;

    // Step 3: the bundle is the new CA alone; the previous CA is deleted.
    cluster.certs(&["rotate-ca", "--finish"]);
    let last = std::fs::read(cluster.bundle_file()).unwrap();
    assert_eq!(last, std::fs::read(cluster.ca.join("ca.crt")).unwrap());
    assert_ne!(last, first_ca);
    assert!(!cluster.ca.join("ca-previous.key").exists());
    assert_eq!(cluster.check(&cluster.bundle_file(), &cluster.pod), 0);
    step(&cluster, &window, &calls, 7, &leaf2, &leaf2).await;

    stop_calls.store(true, Ordering::SeqCst);
    within("the client stops", Duration::from_secs(5), client)
        .await
        .unwrap();
    let calls = std::mem::take(&mut *calls.lock().unwrap());
    let failed: Vec<String> = calls
        .iter()
        .filter_map(|c| {
            c.outcome
                .as_ref()
                .err()
                .map(|e| format!("{}: {e}", WINDOWS[c.window]))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} calls failed: {failed:?}",
        failed.len(),
        calls.len()
    );
    for (w, name) in WINDOWS.iter().enumerate() {
        let n = calls.iter().filter(|c| c.window == w).count();
        println!("{name}: {n} calls");
        assert!(n >= MIN_CALLS, "{name}: only {n} calls");
    }
    // The failure series appears with the first failed reload.
    assert_eq!(metric(&local, RELOAD_FAILED), None, "a torn pair was read");
    assert_eq!(metric(&running, RELOAD_FAILED), None);
    stop(local).await;
    stop(running).await;
}

/// Applies the output: the bundle (window `w`), calls in that window while the pods still serve
/// `before`; then the Secret (window `w + 1`), until the pods serve `after`.
async fn step(
    cluster: &Cluster,
    window: &AtomicUsize,
    calls: &Mutex<Vec<Call>>,
    w: usize,
    before: &[u8],
    after: &[u8],
) {
    window.store(w, Ordering::SeqCst);
    cluster.apply_bundle();
    tokio::time::sleep(KUBELET_LAG).await;
    calls_in(calls, w, MIN_CALLS, Some(before)).await;
    window.store(w + 1, Ordering::SeqCst);
    cluster.swap_secret();
    calls_in(calls, w + 1, MIN_CALLS, Some(after)).await;
    println!(
        "{} -> {}: serial {}",
        WINDOWS[w],
        WINDOWS[w + 1],
        serial_of(after)
    );
}

/// The server reading the output directory serves `want` to a client of its bundle.
async fn served_locally(local: &Running, bundle: &Path, want: &[u8]) {
    let bundle = std::fs::read(bundle).unwrap();
    let config = trusting(&bundle);
    for _ in 0..200 {
        if call(local.addr, &config, "local").await.unwrap() == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "the server on the output directory never served serial {}",
        serial_of(want)
    );
}

/// `args` (with the cluster's `--ca-dir` and `--out`) exits 2 and changes nothing.
fn refused(cluster: &Cluster, args: &[&str]) {
    let before = std::fs::read(cluster.bundle_file()).unwrap();
    let out = Command::new(BIN)
        .args(args)
        .args(["--ca-dir", path(&cluster.ca), "--out", path(&cluster.out)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?} must be refused");
    println!("{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(cluster.bundle_file()).unwrap(), before);
}

/// Item 4: a serving certificate that expires within 30 days is logged at start, with the days
/// left, the notAfter and the file (then once a day, and with every new certificate; the
/// decision itself is unit-tested in `certs::check`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_expiring_within_30_days_is_logged_at_start() {
    let dir = TempDir::new("expiring");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(10) + time::Duration::hours(1);
    let cert = params.self_signed(&key).unwrap();
    dir.write("tls.crt", &cert.pem());
    dir.write("tls.key", &key.serialize_pem());
    let stderr = dir.path().join("stderr");
    let (child, _, _) = common::binary::start_binary(dir.path(), &stderr, &[]).await;
    drop(child);
    let log = std::fs::read_to_string(&stderr).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("the serving certificate expires in 10 days"))
        .unwrap_or_else(|| panic!("no expiry warning at start:\n{log}"));
    println!("{line}");
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains(&dir.path().join("tls.crt").display().to_string()),
        "{line}"
    );
    assert!(line.contains("days_left=10"), "{line}");
    let date = image_config_webhook::certs::check::rfc3339(params.not_after.unix_timestamp());
    assert!(line.contains(&date), "{line} names {date}");
}

/// The renewal and rotation commands of the documents are those the play runs, and the
/// walk-through (certs/README.md) shows every one of them.
#[test]
fn the_documented_commands_are_the_ones_played() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut walkthrough = std::collections::BTreeSet::new();
    for doc in [
        "certs/README.md",
        "README.md",
        "docs/operating.md",
        "manifests/README.md",
    ] {
        let text = std::fs::read_to_string(repo.join(doc)).unwrap();
        for (at, _) in text.match_indices("image-config-webhook certs ") {
            let rest = &text[at + "image-config-webhook ".len()..];
            let end = rest.find(['`', '\n', '#', '|']).unwrap_or(rest.len());
            let words: Vec<&str> = rest[..end].split_whitespace().collect();
            let kept = words.contains(&"--ca-dir")
                || ["renew", "rotate-ca", "check"].contains(&words.get(1).copied().unwrap_or(""));
            if !kept {
                continue;
            }
            let shape = shape(&words);
            assert!(
                PLAYED.contains(&shape.as_str()),
                "{doc}: `image-config-webhook {}` is not a command the play runs ({shape})",
                words.join(" ")
            );
            if doc == "certs/README.md" {
                walkthrough.insert(shape);
            }
        }
    }
    for played in PLAYED {
        assert!(
            walkthrough.contains(*played),
            "certs/README.md does not show {played}"
        );
    }
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    for step in [
        "certs --ca-dir",
        "certs renew",
        "certs rotate-ca",
        "rotate-ca --finish",
        "certs\n  check",
    ] {
        assert!(
            readme.contains(step) || readme.contains(&step.replace("\n  ", " ")),
            "README.md's certificate section names `{step}`"
        );
    }
}
