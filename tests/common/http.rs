//! HTTP/1.1 clients: hyper's over a TLS connection, and a raw reader for requests that hyper
//! would not send (stalled, oversized, smuggled) and for the plain-HTTP probe listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::IO;
use super::tls::{peer_der, tls_connect};

/// An HTTP response, from hyper or from the raw reader.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// What the raw reader read past this response (the start of another, or nothing).
    pub trailing: Vec<u8>,
}

impl Reply {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as text, cut after 2,000 characters (for messages about large answers).
    pub fn excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        match text.char_indices().nth(2000) {
            Some((i, _)) => format!("{}... ({} bytes)", &text[..i], self.body.len()),
            None => text.into_owned(),
        }
    }

    /// The body as JSON; fails the test when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "HTTP {} body is not JSON ({e}): {}",
                self.status,
                self.excerpt()
            )
        })
    }
}

/// One HTTP/1.1 connection through hyper's client, reusable (keep-alive).
pub struct H1 {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    /// The DER of the certificate the server presented.
    pub peer: Vec<u8>,
}

impl H1 {
    /// TLS connect, then the HTTP/1.1 handshake, bounded.
    pub async fn open(addr: SocketAddr, config: &Arc<ClientConfig>) -> Result<H1, String> {
        let tls = tls_connect(addr, config)
            .await
            .map_err(|e| format!("TLS connect to {addr}: {e}"))?;
        let peer = peer_der(&tls);
        let (sender, conn) =
            tokio::time::timeout(IO, hyper::client::conn::http1::handshake(TokioIo::new(tls)))
                .await
                .map_err(|_| "HTTP handshake timed out".to_owned())?
                .map_err(|e| format!("HTTP handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(H1 { sender, peer })
    }

    /// One exchange on the connection, bounded.
    pub async fn send(&mut self, request: hyper::Request<Full<Bytes>>) -> Result<Reply, String> {
        let exchange = async {
            self.sender
                .ready()
                .await
                .map_err(|e| format!("connection not ready: {e}"))?;
            let response = self
                .sender
                .send_request(request)
                .await
                .map_err(|e| format!("request failed: {e}"))?;
            collect(response).await
        };
        tokio::time::timeout(IO, exchange)
            .await
            .map_err(|_| "request timed out".to_owned())?
    }

    /// `POST /validate` of `review`.
    pub async fn review(&mut self, review: &Value) -> Result<Reply, String> {
        self.send(review_request(review)).await
    }
}

/// A hyper response, read whole.
pub async fn collect(response: hyper::Response<hyper::body::Incoming>) -> Result<Reply, String> {
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("response body: {e}"))?
        .to_bytes();
    Ok(Reply {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect(),
        body: body.to_vec(),
        trailing: Vec::new(),
    })
}

/// A request to `localhost`.
pub fn request(
    method: &str,
    uri: &str,
    content_type: Option<&str>,
    body: impl Into<Bytes>,
) -> hyper::Request<Full<Bytes>> {
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "localhost");
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    builder.body(Full::new(body.into())).expect("request")
}

/// `POST /validate` of `review` as JSON.
pub fn review_request(review: &Value) -> hyper::Request<Full<Bytes>> {
    request(
        "POST",
        "/validate",
        Some("application/json"),
        serde_json::to_vec(review).expect("review JSON"),
    )
}

/// One request on a fresh connection.
pub async fn one_shot(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    request: hyper::Request<Full<Bytes>>,
) -> Result<Reply, String> {
    H1::open(addr, config).await?.send(request).await
}

/// The head of a `POST` with the given framing header line(s).
pub fn post_head(path: &str, framing: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{framing}\r\n"
    )
}

/// Reads one HTTP/1.1 response (Content-Length framed, or up to EOF) from a raw stream; what
/// arrived past its body is kept in [`Reply::trailing`].
pub async fn read_reply<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<Reply> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "closed after {} bytes of response head: {:?}",
                    buf.len(),
                    String::from_utf8_lossy(&buf)
                ),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut body = buf[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
        trailing: Vec::new(),
    };
    assert!(
        reply.header("transfer-encoding").is_none(),
        "the raw reader does not decode chunked responses: {head}"
    );
    match reply.header("content-length").and_then(|v| v.parse().ok()) {
        Some(length) => {
            while body.len() < length {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "closed inside the response body",
                    ));
                }
                body.extend_from_slice(&chunk[..n]);
            }
            reply.trailing = body.split_off(length);
        }
        None => body.extend(read_until_closed(stream).await),
    }
    reply.body = body;
    Ok(reply)
}

/// Reads until the peer closes (EOF or error); returns what arrived.
pub async fn read_until_closed<S: AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
}

/// `GET path` over plain HTTP (the probe listener), bounded.
pub async fn plain_get(addr: SocketAddr, path: &str) -> std::io::Result<Reply> {
    let exchange = async {
        let mut tcp = TcpStream::connect(addr).await?;
        tcp.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        read_reply(&mut tcp).await
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("plain HTTP request timed out")))
}
