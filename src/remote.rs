//! `replay --server`: send the same requests to a live webhook instead of the in-process engine,
//! over HTTPS with HTTP/1.1 keep-alive, the way the API server calls it.

use std::path::Path;
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

impl Remote {
    /// A client for `https://HOST[:PORT]/PATH`, trusting `ca` (PEM) or the system bundle, with
    /// calls bounded by [`DEFAULT_TIMEOUT`].
    pub fn new(url: &str, ca: Option<&Path>) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        if uri.scheme_str() != Some("https") {
            return Err(format!("{url:?}: the webhook is served over https://"));
        }
        let host = uri
            .host()
            .ok_or_else(|| format!("{url:?} has no host"))?
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let bare_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let server_name = ServerName::try_from(bare_host)
            .map_err(|e| format!("{host:?} is not a TLS server name: {e}"))?;

        let bundle = match ca {
            Some(path) => path.to_owned(),
            None => SYSTEM_BUNDLES
                .iter()
                .map(Path::new)
                .find(|p| p.exists())
                .ok_or("no --ca given and no system CA bundle found")?
                .to_owned(),
        };
        let pem = std::fs::read(&bundle)
            .map_err(|e| format!("{}: cannot read: {e}", bundle.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("{}: not a PEM bundle: {e}", bundle.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{}: unusable CA certificate: {e}", bundle.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("{}: holds no certificate", bundle.display()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // Calls come from several threads at once (`block_on` on each); the connections'
        // tasks run on the runtime's own two workers.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
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
    /// the whole answer has arrived is [`JudgeError::Unreachable`].
    pub fn post(&self, body: Vec<u8>) -> Result<(u16, Vec<u8>), JudgeError> {
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
            Ok(Err(e)) => Err(JudgeError::Unreachable(e)),
            Err(_) => Err(JudgeError::Unreachable(format!(
                "no answer from {} within {timeout:?} (--timeout)",
                self.address
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
    ) -> Result<(u16, Vec<u8>, Connection), String> {
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
                    .map_err(|e| format!("HTTP connection to {} failed: {e}", self.address))?;
                c
            }
        };
        let path = self.uri.path_and_query().map_or("/", |p| p.as_str());
        let request = Request::post(path)
            .header(header::HOST, self.address.as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let response = connection
            .send_request(request)
            .await
            .map_err(|e| format!("request to {} failed: {e}", self.address))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("cannot read the answer of {}: {e}", self.address))?
            .to_bytes();
        Ok((status, bytes.to_vec(), connection))
    }
}

async fn connect(
    connector: &tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
    address: &str,
) -> Result<Connection, String> {
    let tcp = TcpStream::connect(address)
        .await
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let tls = connector
        .connect(server_name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {address} failed: {e}"))?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| format!("HTTP handshake with {address} failed: {e}"))?;
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
        let (status, body) = self.post(review_body(request))?;
        verdict_from(status, &body, &request.uid).map_err(JudgeError::Refuse)
    }

    fn knows_rules(&self) -> bool {
        false
    }
}

/// The verdict in a webhook's answer to the request `uid`.
fn verdict_from(status: u16, body: &[u8], uid: &str) -> Result<Verdict, String> {
    let doc: Value = serde_json::from_slice(body).map_err(|_| {
        format!(
            "HTTP {status}: {}",
            one_line(&String::from_utf8_lossy(body))
        )
    })?;
    let response = doc.get("response").ok_or_else(|| {
        format!(
            "HTTP {status}: the answer is not an AdmissionReview: {}",
            one_line(&doc.to_string())
        )
    })?;
    if response.get("uid").and_then(Value::as_str) != Some(uid) {
        return Err(
            "the webhook answered with another uid; the API server would count the call as failed"
                .to_owned(),
        );
    }
    let allowed = response
        .get("allowed")
        .and_then(Value::as_bool)
        .ok_or("the answer has no `allowed`")?;
    let status = match response.get("status") {
        Some(s) => serde_json::from_value::<Status>(s.clone())
            .map_err(|e| format!("unreadable status: {e}"))?,
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
        let e = verdict_from(500, b"line one\nline two\n", "u").unwrap_err();
        assert_eq!(e, "HTTP 500: line one line two");
        let long = "x ".repeat(1000);
        let e = verdict_from(502, long.as_bytes(), "u").unwrap_err();
        assert!(
            !e.contains('\n') && e.len() < 400 && e.ends_with("..."),
            "{e}"
        );
    }
}
