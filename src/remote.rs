//! `replay --server`: send the same requests to a live webhook instead of the in-process engine,
//! over HTTPS with HTTP/1.1 keep-alive, the way the API server calls it.

use std::path::Path;
use std::sync::Arc;
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
use crate::replay::Judge;

/// System CA bundles tried when no `--ca` is given.
const SYSTEM_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// How long one call may take, as the API server's `timeoutSeconds` would bound it.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A live webhook.
pub struct Remote {
    runtime: tokio::runtime::Runtime,
    uri: Uri,
    host: String,
    port: u16,
    connector: tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
    sender: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// A client for `https://HOST[:PORT]/PATH`, trusting `ca` (PEM) or the system bundle.
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
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        Ok(Remote {
            runtime,
            uri,
            host,
            port,
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
            sender: None,
        })
    }

    /// Posts one AdmissionReview; returns the HTTP status and the body.
    pub fn post(&mut self, body: Vec<u8>) -> Result<(u16, Vec<u8>), String> {
        let previous = self.sender.take();
        let path = self
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let host = format!("{}:{}", self.host, self.port);
        let (connector, server_name) = (self.connector.clone(), self.server_name.clone());
        let (result, sender) = self.runtime.block_on(async move {
            // Reuse the keep-alive connection; open a new one when it is gone.
            let mut sender = match previous {
                Some(s) if !s.is_closed() => s,
                _ => match connect(&connector, server_name, &host).await {
                    Ok(s) => s,
                    Err(e) => return (Err(e), None),
                },
            };
            let request = match Request::post(path)
                .header(header::HOST, host.as_str())
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body)))
            {
                Ok(r) => r,
                Err(e) => return (Err(format!("cannot build the request: {e}")), None),
            };
            let call = async {
                let response = sender
                    .send_request(request)
                    .await
                    .map_err(|e| format!("request failed: {e}"))?;
                let status = response.status().as_u16();
                let bytes = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| format!("cannot read the response: {e}"))?
                    .to_bytes();
                Ok::<_, String>((status, bytes.to_vec()))
            };
            match tokio::time::timeout(CALL_TIMEOUT, call).await {
                Ok(Ok(out)) => (Ok(out), Some(sender)),
                Ok(Err(e)) => (Err(e), None),
                Err(_) => (Err(format!("no answer within {CALL_TIMEOUT:?}")), None),
            }
        });
        self.sender = sender;
        result
    }
}

async fn connect(
    connector: &tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
    address: &str,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, String> {
    let tcp = tokio::time::timeout(CALL_TIMEOUT, TcpStream::connect(address))
        .await
        .map_err(|_| format!("cannot connect to {address}: timed out"))?
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let tls = tokio::time::timeout(CALL_TIMEOUT, connector.connect(server_name, tcp))
        .await
        .map_err(|_| format!("TLS handshake with {address} timed out"))?
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
    fn judge(&mut self, request: &AdmissionRequest) -> Result<Verdict, String> {
        let (status, body) = self.post(review_body(request))?;
        let doc: Value = serde_json::from_slice(&body)
            .map_err(|_| format!("HTTP {status}: {}", String::from_utf8_lossy(&body).trim()))?;
        let response = doc
            .get("response")
            .ok_or_else(|| format!("HTTP {status}: the answer is not an AdmissionReview: {doc}"))?;
        if response.get("uid").and_then(Value::as_str) != Some(request.uid.as_str()) {
            return Err("the webhook answered with another uid; the API server would count the call as failed".to_owned());
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

    fn knows_rules(&self) -> bool {
        false
    }
}
