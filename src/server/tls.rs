//! Serving certificates: PEM files -> rustls `ServerConfig`, and hot reload.
//!
//! kubelet updates a mounted Secret by writing a new timestamped directory and swapping the
//! `..data` symlink, so a watch on the files themselves misses the change. The reloader watches
//! the directory (inotify through `notify`) and also polls; whenever the bytes of the certificate,
//! key or client CA change, it builds a new config. A new pair is used only when it parses and the
//! key matches the certificate; otherwise the last good one stays in service, and the failure is
//! logged and counted. A change is used only once two reads 100 ms apart agree, so that a read
//! in the middle of a swap (the certificate from the old directory, the key from the new) is
//! not counted as a failed rotation. New connections get the new certificate; open connections keep theirs.
//!
//! Expiry ahead of time: [`warn_if_expiring`] logs a warning while the served certificate expires
//! within 30 days, at start, with every new certificate, and once a day from [`expiry_watch`],
//! which sleeps a whole day between looks so that an idle server is not woken for it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::metrics::Metrics;
use crate::certs::check;
use crate::crypto::provider;

/// The lowest TLS version accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    #[value(name = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[value(name = "1.3")]
    Tls13,
}

/// Where the certificate material lives and how TLS is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The certificate chain (leaf first), PEM.
    pub cert: PathBuf,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA bundle that client certificates must chain to; `None` disables client auth.
    pub client_ca: Option<PathBuf>,
    /// Lowest TLS version.
    pub min_version: TlsVersion,
    /// Offer HTTP/2 through ALPN.
    pub http2: bool,
}

/// Why certificate material cannot be used. Each names the file and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertError {
    /// The file at fault.
    pub file: PathBuf,
    /// What is wrong.
    pub problem: String,
}

impl std::fmt::Display for CertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.problem)
    }
}

impl std::error::Error for CertError {}

/// A loaded, checked config and facts about its leaf certificate.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The rustls config to serve with.
    pub config: Arc<ServerConfig>,
    /// The leaf certificate's notAfter, in Unix seconds.
    pub not_after: i64,
    /// The bytes it was built from, to notice changes.
    snapshot: Snapshot,
}

/// The raw bytes of the files, compared to notice changes (symlink swaps included).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|e| CertError {
        file: path.to_owned(),
        problem: format!("cannot read: {e}"),
    })
}

impl TlsSettings {
    fn snapshot(&self) -> Result<Snapshot, CertError> {
        Ok(Snapshot {
            cert: read(&self.cert)?,
            key: read(&self.key)?,
            client_ca: self.client_ca.as_deref().map(read).transpose()?,
        })
    }

    /// Reads and checks the files and builds the config.
    pub fn load(&self) -> Result<Loaded, CertError> {
        self.build(self.snapshot()?)
    }

    fn build(&self, snapshot: Snapshot) -> Result<Loaded, CertError> {
        let cert_err = |problem: String| CertError {
            file: self.cert.clone(),
            problem,
        };
        let key_err = |problem: String| CertError {
            file: self.key.clone(),
            problem,
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&snapshot.cert)
            .collect::<Result<_, _>>()
            .map_err(|e| cert_err(format!("not a PEM certificate chain: {e}")))?;
        let leaf = chain
            .first()
            .ok_or_else(|| cert_err("holds no certificate".to_owned()))?;
        let not_after = not_after(leaf).map_err(cert_err)?;
        let key = PrivateKeyDer::from_pem_slice(&snapshot.key)
            .map_err(|e| key_err(format!("not a PEM private key: {e}")))?;

        let versions: &[&rustls::SupportedProtocolVersion] = match self.min_version {
            TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .map_err(|e| cert_err(format!("TLS setup: {e}")))?;
        let builder = match (&self.client_ca, &snapshot.client_ca) {
            (Some(path), Some(bytes)) => {
                let ca_err = |problem: String| CertError {
                    file: path.clone(),
                    problem,
                };
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(bytes) {
                    let cert =
                        cert.map_err(|e| ca_err(format!("not a PEM certificate bundle: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| ca_err(format!("unusable CA certificate: {e}")))?;
                }
                if roots.is_empty() {
                    return Err(ca_err("holds no certificate".to_owned()));
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|e| ca_err(format!("cannot verify clients with it: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
            _ => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                key_err("does not match the certificate".to_owned())
            }
            other => key_err(format!("unusable private key: {other}")),
        })?;
        config.alpn_protocols = if self.http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        Ok(Loaded {
            config: Arc::new(config),
            not_after,
            snapshot,
        })
    }

    /// The directories to watch: those holding the files (where kubelet swaps `..data`).
    fn watched_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .map(|p| {
                p.parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .to_owned()
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }
}

/// The leaf's notAfter in Unix seconds.
fn not_after(leaf: &CertificateDer<'_>) -> Result<i64, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| format!("the first certificate does not parse: {e}"))?;
    Ok(cert.validity().not_after.timestamp())
}

/// How long the certificate files must stay unchanged before a change is used, and how long a
/// burst of directory events (kubelet's swap makes several) is gathered into one reload.
const SETTLE: Duration = Duration::from_millis(100);

/// Why the reloader looked at the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// The poll interval passed.
    Poll,
    /// The directory watch saw an event that can change the pair.
    Watch,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Poll => "poll",
            Trigger::Watch => "watch",
        }
    }
}

/// Keeps `target` serving the newest good certificate until the task is dropped.
pub async fn reload_loop(
    settings: TlsSettings,
    mut current: Loaded,
    target: axum_server::tls_rustls::RustlsConfig,
    poll: Duration,
    metrics: Arc<Metrics>,
) {
    // One pending wake at most: the watcher drops events while one is queued (coalescing).
    let (wake_tx, mut wake) = tokio::sync::mpsc::channel::<()>(1);
    // The watcher lives as long as this task; without it, polling alone still reloads.
    let _watcher = watch(&settings.watched_dirs(), wake_tx);
    let mut ticker = tokio::time::interval(poll.max(Duration::from_millis(50)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick completes at once; the files were just read by `load`.
    ticker.tick().await;
    let mut last_seen = current.snapshot.clone();
    let mut unreadable = false;
    // Set when two reads disagreed (a swap in progress): look again after SETTLE.
    let mut retry = false;
    loop {
        let trigger = if retry {
            retry = false;
            tokio::time::sleep(SETTLE).await;
            Trigger::Watch
        } else {
            tokio::select! {
                _ = ticker.tick() => Trigger::Poll,
                Some(()) = wake.recv() => {
                    // Gather the rest of the burst into this one look.
                    tokio::time::sleep(SETTLE).await;
                    while wake.try_recv().is_ok() {}
                    Trigger::Watch
                }
            }
        };
        metrics.cert_reload_attempt(trigger.as_str());
        let snapshot = match settings.snapshot() {
            Ok(s) => s,
            Err(e) => {
                // A file that stays unreadable is reported once, not at every poll.
                if !unreadable {
                    tracing::warn!(error = %e, "certificate files unreadable; keeping the current certificate");
                    metrics.cert_reload("failure");
                    unreadable = true;
                }
                continue;
            }
        };
        unreadable = false;
        if snapshot == last_seen {
            continue;
        }
        // A swap may be in progress: the certificate read before kubelet renames `..data` and
        // the key after would be a torn pair that does not match. Use the files only once two
        // reads SETTLE apart agree; otherwise look again.
        tokio::time::sleep(SETTLE).await;
        match settings.snapshot() {
            Ok(again) if again == snapshot => {}
            _ => {
                retry = true;
                continue;
            }
        }
        last_seen = snapshot.clone();
        match settings.build(snapshot) {
            Ok(loaded) => {
                target.reload_from_config(loaded.config.clone());
                metrics.cert_loaded(loaded.not_after);
                metrics.cert_reload("success");
                tracing::info!(not_after = loaded.not_after, "serving a new certificate");
                warn_if_expiring(&settings.cert, loaded.not_after);
                current = loaded;
            }
            Err(e) => {
                metrics.cert_reload("failure");
                tracing::error!(error = %e, not_after = current.not_after, "new certificate rejected; keeping the current one");
            }
        }
    }
}

/// How often the served certificate's expiry is looked at, besides at start and whenever a new
/// one is served: once a day, the period of the warning it may log.
pub const EXPIRY_CHECK_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Logs a warning when the certificate `cert` (notAfter `not_after`, Unix seconds) expires
/// within 30 days or has expired (the decision: [`crate::certs::check::expiry_warning`]).
pub fn warn_if_expiring(cert: &Path, not_after: i64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    if let Some(message) = check::expiry_warning(not_after, now) {
        tracing::warn!(
            cert = %cert.display(),
            not_after = %check::rfc3339(not_after),
            days_left = (not_after - now).div_euclid(check::DAY),
            "{message}"
        );
    }
}

/// Looks at the served certificate's expiry once every [`EXPIRY_CHECK_INTERVAL`] (one timer,
/// no other wake-up) and warns as [`warn_if_expiring`] does, until the task is dropped.
pub async fn expiry_watch(cert: PathBuf, metrics: Arc<Metrics>) {
    loop {
        tokio::time::sleep(EXPIRY_CHECK_INTERVAL).await;
        warn_if_expiring(&cert, metrics.cert_not_after());
    }
}

/// Whether a directory event can change the certificate pair. Reading the files (ours included)
/// produces open, access and close-without-write events; waking on those made every reload
/// schedule the next one.
fn can_change_pair(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        // Create, write, rename (the `..data` swap), remove, chmod, and events the backend
        // could not classify (a queue overflow among them).
        EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Remove(_)
        | EventKind::Any
        | EventKind::Other => true,
    }
}

fn watch(
    dirs: &[PathBuf],
    wake: tokio::sync::mpsc::Sender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let handler = move |event: notify::Result<notify::Event>| {
        let relevant = match &event {
            Ok(event) => can_change_pair(&event.kind),
            // The watch itself failed (e.g. the queue overflowed): look at the files.
            Err(_) => true,
        };
        if relevant {
            // Full means a wake is already pending: this event is coalesced into it.
            let _ = wake.try_send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch certificate directories; polling only");
            return None;
        }
    };
    for dir in dirs {
        if let Err(e) = watcher.watch(dir, notify::RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory; polling only");
        }
    }
    Some(watcher)
}

#[cfg(test)]
mod tests {
    use notify::EventKind;
    use notify::event::{
        AccessKind, AccessMode, CreateKind, DataChange, MetadataKind, ModifyKind, RemoveKind,
        RenameMode,
    };

    use super::can_change_pair;

    #[test]
    fn reads_do_not_wake_the_reloader() {
        for kind in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Read),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Access(AccessKind::Close(AccessMode::Any)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)),
        ] {
            assert!(!can_change_pair(&kind), "{kind:?}");
        }
    }

    #[test]
    fn changes_wake_the_reloader() {
        for kind in [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Create(CreateKind::File),
            EventKind::Create(CreateKind::Folder),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Permissions)),
            EventKind::Remove(RemoveKind::File),
            EventKind::Any,
            EventKind::Other,
        ] {
            assert!(can_change_pair(&kind), "{kind:?}");
        }
    }
}
