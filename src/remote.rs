//! `replay --server`: send the same requests to a live webhook instead of the in-process engine,
//! over HTTPS with HTTP/1.1 keep-alive, the way the API server calls it.
// An adapter (clippy.toml): it reads the CA bundle and times the calls to a live webhook.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::{Request, Uri, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use kube_core::response::Status;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::engine::Verdict;
use crate::envelope::{ADMISSION_V1, AdmissionRequest};
use crate::replay::{Judge, JudgeError};

/// System CA bundles tried when no `--ca` is given.
const SYSTEM_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// How long one call may take by default (`--timeout`): the webhook configuration's own
/// `timeoutSeconds` (5 s), past which the API server gives up on the call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// An HTTP/1.1 connection to the webhook, ready for a request.
type Connection = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// A live webhook. Shared by the threads of `replay --concurrency`: each call takes an idle
/// keep-alive connection (or opens one) and gives it back when the answer has come.
pub struct Remote {
    runtime: tokio::runtime::Runtime,
    uri: Uri,
    /// `HOST:PORT`.
    address: String,
    connector: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
    timeout: Duration,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("uri", &self.uri)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Why `replay --server` cannot use a webhook, or why one call to it gave no verdict. Which
/// side is at fault is told by [`RemoteError::is_unreachable`] and [`RemoteError::is_answer`].
#[derive(Debug)]
pub struct RemoteError {
    /// What went wrong.
    kind: RemoteErrorKind,
    /// The cause, when another library reported it.
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// The kinds of [`RemoteError`], grouped by fault: the flags, the way to the webhook, or the
/// webhook's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemoteErrorKind {
    /// `--server` is not a URL.
    NotAUrl(String),
    /// `--server` is not an `https://` URL.
    NotHttps(String),
    /// `--server` names no host.
    NoHost(String),
    /// The host is not a name or address TLS can verify.
    ServerName(String),
    /// No `--ca` was given and none of the system CA bundles exists.
    NoSystemBundle,
    /// The CA bundle cannot be read.
    ReadBundle(PathBuf),
    /// The CA bundle is not PEM.
    NotPem(PathBuf),
    /// A certificate of the CA bundle cannot be trusted.
    UnusableCa(PathBuf),
    /// The CA bundle holds no certificate.
    EmptyBundle(PathBuf),
    /// rustls refuses the client configuration.
    TlsSetup,
    /// The async runtime cannot start.
    Runtime,
    /// The TCP connection to `HOST:PORT` failed: the webhook is unreachable.
    Connect(String),
    /// The TLS handshake with `HOST:PORT` failed: the webhook is unreachable.
    TlsHandshake(String),
    /// The HTTP/1.1 handshake with `HOST:PORT` failed: the webhook is unreachable.
    HttpHandshake(String),
    /// The connection to `HOST:PORT` broke before a request could be sent: the webhook is
    /// unreachable.
    HttpConnection(String),
    /// The request could not be built.
    BuildRequest,
    /// The request to `HOST:PORT` failed: the webhook is unreachable.
    Request(String),
    /// The answer of `HOST:PORT` could not be read whole: the webhook is unreachable.
    ReadAnswer(String),
    /// `HOST:PORT` did not answer within the timeout (`--timeout`): the webhook is
    /// unreachable.
    Timeout(String, Duration),
    /// The answer, with this HTTP status, is not JSON; its body on one line.
    NotJson(u16, String),
    /// The answer, with this HTTP status, is not an AdmissionReview; its body on one line.
    NotAReview(u16, String),
    /// The answer is for another uid.
    OtherUid,
    /// The answer has no `allowed`.
    NoAllowed,
    /// The answer's `status` cannot be read.
    BadStatus,
}

impl RemoteError {
    fn new(kind: RemoteErrorKind) -> Self {
        RemoteError { kind, source: None }
    }

    fn caused<E: Into<Box<dyn std::error::Error + Send + Sync>>>(
        kind: RemoteErrorKind,
    ) -> impl FnOnce(E) -> RemoteError {
        move |source| RemoteError {
            kind,
            source: Some(source.into()),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &RemoteErrorKind {
        &self.kind
    }

    /// Whether no answer came: the connection, the TLS handshake or the call failed or timed
    /// out. Nothing is known about the request.
    pub fn is_unreachable(&self) -> bool {
        use RemoteErrorKind as K;
        matches!(
            self.kind,
            K::Connect(_)
                | K::TlsHandshake(_)
                | K::HttpHandshake(_)
                | K::HttpConnection(_)
                | K::Request(_)
                | K::ReadAnswer(_)
                | K::Timeout(..)
        )
    }

    /// Whether the webhook answered, but not with a usable verdict.
    pub fn is_answer(&self) -> bool {
        use RemoteErrorKind as K;
        matches!(
            self.kind,
            K::NotJson(..) | K::NotAReview(..) | K::OtherUid | K::NoAllowed | K::BadStatus
        )
    }
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use RemoteErrorKind as K;
        match &self.kind {
            K::NotAUrl(url) => write!(f, "{url:?} is not a URL")?,
            K::NotHttps(url) => write!(f, "{url:?}: the webhook is served over https://")?,
            K::NoHost(url) => write!(f, "{url:?} has no host")?,
            K::ServerName(host) => write!(f, "{host:?} is not a TLS server name")?,
            K::NoSystemBundle => f.write_str("no --ca given and no system CA bundle found")?,
            K::ReadBundle(path) => write!(f, "{}: cannot read", path.display())?,
            K::NotPem(path) => write!(f, "{}: not a PEM bundle", path.display())?,
            K::UnusableCa(path) => write!(f, "{}: unusable CA certificate", path.display())?,
            K::EmptyBundle(path) => write!(f, "{}: holds no certificate", path.display())?,
            K::TlsSetup => f.write_str("TLS setup")?,
            K::Runtime => f.write_str("cannot start the async runtime")?,
            K::Connect(address) => write!(f, "cannot connect to {address}")?,
            K::TlsHandshake(address) => write!(f, "TLS handshake with {address} failed")?,
            K::HttpHandshake(address) => write!(f, "HTTP handshake with {address} failed")?,
            K::HttpConnection(address) => write!(f, "HTTP connection to {address} failed")?,
            K::BuildRequest => f.write_str("cannot build the request")?,
            K::Request(address) => write!(f, "request to {address} failed")?,
            K::ReadAnswer(address) => write!(f, "cannot read the answer of {address}")?,
            K::Timeout(address, timeout) => {
                write!(f, "no answer from {address} within {timeout:?} (--timeout)")?
            }
            K::NotJson(status, body) => write!(f, "HTTP {status}: {body}")?,
            K::NotAReview(status, body) => write!(
                f,
                "HTTP {status}: the answer is not an AdmissionReview: {body}"
            )?,
            K::OtherUid => f.write_str(
                "the webhook answered with another uid; the API server would count the call as failed",
            )?,
            K::NoAllowed => f.write_str("the answer has no `allowed`")?,
            K::BadStatus => f.write_str("unreadable status")?,
        }
        match &self.source {
            Some(source) => write!(f, ": {source}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for RemoteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<RemoteError> for JudgeError {
    /// An unreachable webhook is [`JudgeError::Unreachable`]; any other failure, of the
    /// answer or of the request, is [`JudgeError::Refuse`].
    fn from(e: RemoteError) -> Self {
        if e.is_unreachable() {
            JudgeError::Unreachable(Box::new(e))
        } else {
            JudgeError::Refuse(Box::new(e))
        }
    }
}

impl Remote {
    /// A client for `https://HOST[:PORT]/PATH`, trusting `ca` (PEM) or the system bundle, with
    /// calls bounded by [`DEFAULT_TIMEOUT`].
    pub fn new(url: &str, ca: Option<&Path>) -> Result<Self, RemoteError> {
        use RemoteErrorKind as K;
        let uri: Uri = url
            .parse()
            .map_err(RemoteError::caused(K::NotAUrl(url.to_owned())))?;
        if uri.scheme_str() != Some("https") {
            return Err(RemoteError::new(K::NotHttps(url.to_owned())));
        }
        let host = uri
            .host()
            .ok_or_else(|| RemoteError::new(K::NoHost(url.to_owned())))?
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let bare_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let server_name = ServerName::try_from(bare_host)
            .map_err(RemoteError::caused(K::ServerName(host.clone())))?;
        let roots = root_store(ca)?;
        let mut config = rustls::ClientConfig::builder_with_provider(crate::crypto::provider())
            .with_safe_default_protocol_versions()
            .map_err(RemoteError::caused(K::TlsSetup))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // Calls come from several threads at once (`block_on` on each); the connections'
        // tasks run on the runtime's own two workers.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(RemoteError::caused(K::Runtime))?;
        Ok(Remote {
            runtime,
            uri,
            address: format!("{host}:{port}"),
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
            timeout: DEFAULT_TIMEOUT,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Bounds each call (connecting, the TLS handshake, the request and the whole answer) by
    /// `timeout`.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Posts one AdmissionReview; returns the HTTP status and the body. Every failure before
    /// the whole answer has arrived is one of the unreachable kinds
    /// ([`RemoteError::is_unreachable`]).
    pub fn post(&self, body: Vec<u8>) -> Result<(u16, Vec<u8>), RemoteError> {
        let idle = self.take_idle();
        let timeout = self.timeout;
        let answer = self
            .runtime
            .block_on(async { tokio::time::timeout(timeout, self.call(idle, body)).await });
        match answer {
            Ok(Ok((status, bytes, connection))) => {
                self.idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(connection);
                Ok((status, bytes))
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(RemoteError::new(RemoteErrorKind::Timeout(
                self.address.clone(),
                timeout,
            ))),
        }
    }

    /// An idle connection still open, if any.
    fn take_idle(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(connection) = idle.pop() {
            if !connection.is_closed() {
                return Some(connection);
            }
        }
        None
    }

    async fn call(
        &self,
        idle: Option<Connection>,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>, Connection), RemoteError> {
        use RemoteErrorKind as K;
        // A kept-alive connection takes a request only once it has finished with the last
        // answer (`ready`); one that was closed meanwhile is replaced.
        let reused = match idle {
            Some(mut c) => c.ready().await.ok().map(|()| c),
            None => None,
        };
        let mut connection = match reused {
            Some(c) => c,
            None => {
                let mut c =
                    connect(&self.connector, self.server_name.clone(), &self.address).await?;
                c.ready()
                    .await
                    .map_err(RemoteError::caused(K::HttpConnection(self.address.clone())))?;
                c
            }
        };
        let path = self.uri.path_and_query().map_or("/", |p| p.as_str());
        let request = Request::post(path)
            .header(header::HOST, self.address.as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(RemoteError::caused(K::BuildRequest))?;
        let response = connection
            .send_request(request)
            .await
            .map_err(RemoteError::caused(K::Request(self.address.clone())))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(RemoteError::caused(K::ReadAnswer(self.address.clone())))?
            .to_bytes();
        Ok((status, bytes.to_vec(), connection))
    }
}

/// The CA certificates to trust: `ca`, or the first system bundle found.
fn root_store(ca: Option<&Path>) -> Result<rustls::RootCertStore, RemoteError> {
    use RemoteErrorKind as K;
    let bundle = match ca {
        Some(path) => path.to_owned(),
        None => SYSTEM_BUNDLES
            .iter()
            .map(Path::new)
            .find(|p| p.exists())
            .ok_or_else(|| RemoteError::new(K::NoSystemBundle))?
            .to_owned(),
    };
    let pem = std::fs::read(&bundle).map_err(RemoteError::caused(K::ReadBundle(bundle.clone())))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(RemoteError::caused(K::NotPem(bundle.clone())))?;
        roots
            .add(cert)
            .map_err(RemoteError::caused(K::UnusableCa(bundle.clone())))?;
    }
    if roots.is_empty() {
        return Err(RemoteError::new(K::EmptyBundle(bundle)));
    }
    Ok(roots)
}

async fn connect(
    connector: &tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
    address: &str,
) -> Result<Connection, RemoteError> {
    use RemoteErrorKind as K;
    let tcp = TcpStream::connect(address)
        .await
        .map_err(RemoteError::caused(K::Connect(address.to_owned())))?;
    let _ = tcp.set_nodelay(true);
    let tls = connector
        .connect(server_name, tcp)
        .await
        .map_err(RemoteError::caused(K::TlsHandshake(address.to_owned())))?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(RemoteError::caused(K::HttpHandshake(address.to_owned())))?;
    tokio::spawn(connection);
    Ok(sender)
}

/// The AdmissionReview the API server would send for `request`.
pub fn review_body(request: &AdmissionRequest) -> Vec<u8> {
    let mut r = json!({
        "uid": request.uid,
        "name": request.name,
        "operation": request.operation.as_str(),
        "userInfo": {"username": "image-config-webhook-replay"},
        "object": request.object,
        "oldObject": request.old_object,
        "dryRun": request.dry_run,
    });
    if let Some(kind) = &request.kind {
        r["kind"] = json!({"group": kind.group, "version": kind.version, "kind": kind.name});
    }
    if let Some(resource) = &request.resource {
        r["resource"] = json!({"group": resource.group, "version": resource.version, "resource": resource.name});
    }
    if !request.sub_resource.is_empty() {
        r["subResource"] = json!(request.sub_resource);
    }
    let review = json!({"apiVersion": ADMISSION_V1, "kind": "AdmissionReview", "request": r});
    serde_json::to_vec(&review).unwrap_or_default()
}

impl Judge for Remote {
    fn judge(&self, request: &AdmissionRequest) -> Result<Verdict, JudgeError> {
        let (status, body) = self.post(review_body(request)).map_err(JudgeError::from)?;
        verdict_from(status, &body, &request.uid).map_err(JudgeError::from)
    }

    fn knows_rules(&self) -> bool {
        false
    }
}

/// The verdict in a webhook's answer to the request `uid`.
fn verdict_from(status: u16, body: &[u8], uid: &str) -> Result<Verdict, RemoteError> {
    use RemoteErrorKind as K;
    let doc: Value = serde_json::from_slice(body).map_err(|_| {
        RemoteError::new(K::NotJson(status, one_line(&String::from_utf8_lossy(body))))
    })?;
    let response = doc
        .get("response")
        .ok_or_else(|| RemoteError::new(K::NotAReview(status, one_line(&doc.to_string()))))?;
    if response.get("uid").and_then(Value::as_str) != Some(uid) {
        return Err(RemoteError::new(K::OtherUid));
    }
    let allowed = response
        .get("allowed")
        .and_then(Value::as_bool)
        .ok_or_else(|| RemoteError::new(K::NoAllowed))?;
    let status = match response.get("status") {
        Some(s) => serde_json::from_value::<Status>(s.clone())
            .map_err(RemoteError::caused(K::BadStatus))?,
        None => Status::success(),
    };
    let warnings = response
        .get("warnings")
        .and_then(Value::as_array)
        .map(|w| {
            w.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok(Verdict {
        allowed,
        skipped: false,
        skip_reason: None,
        status,
        warnings,
        rules: Vec::new(),
        findings: Vec::new(),
    })
}

/// `text` on one line (whitespace runs become one space), cut after 300 characters.
fn one_line(text: &str) -> String {
    const MAX: usize = 300;
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &joined[..at]),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unusable_answer_is_one_line() {
        let e = verdict_from(500, b"line one\nline two\n", "u").map_err(|e| e.to_string());
        assert_eq!(e, Err("HTTP 500: line one line two".to_owned()));
        let long = "x ".repeat(1000);
        let e = verdict_from(502, long.as_bytes(), "u")
            .unwrap_err()
            .to_string();
        assert!(
            !e.contains('\n') && e.len() < 400 && e.ends_with("..."),
            "{e}"
        );
    }
}
