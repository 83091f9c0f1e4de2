//! Plain HTTP/1.1 over one kept-alive TCP connection per caller (hyper's
//! low-level client): a long-poll player holds one for its polls and one
//! for its sends, as a browser would.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Read buffer of every connection, in bytes.
const READ_BUFFER: usize = 16 * 1024;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("http: {0}")]
    Hyper(#[from] hyper::Error),
    #[error("bad request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("timed out")]
    Timeout,
}

/// Connects a socket to `addr` with `TCP_NODELAY`, as the server's are.
pub async fn tcp(addr: SocketAddr) -> Result<TcpStream, HttpError> {
    let s = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
        .await
        .map_err(|_| HttpError::Timeout)?
        .map_err(HttpError::Connect)?;
    s.set_nodelay(true).map_err(HttpError::Connect)?;
    Ok(s)
}

/// One HTTP/1.1 connection, reopened when the server closes it.
pub struct Conn {
    addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    /// A connection to `addr` (opened on first use).
    pub fn new(addr: SocketAddr) -> Self {
        Conn {
            addr,
            host: addr.to_string(),
            sender: None,
        }
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, HttpError> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let io = TokioIo::new(tcp(self.addr).await?);
            // A fixed, small read buffer: hyper's adaptive one grows to
            // hundreds of KiB on a backlog, and thousands of those churn
            // freshly mapped pages, which on this machine costs more than
            // the reading itself.
            let (sender, conn) = http1::Builder::new()
                .read_buf_exact_size(Some(READ_BUFFER))
                .handshake(io)
                .await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        // Invariant: set just above.
        let s = self.sender.as_mut().expect("sender is set");
        s.ready().await?;
        Ok(s)
    }

    /// Sends a request and reads the whole response body. A request that
    /// fails on a kept-alive connection (the server may close one that was
    /// idle) is tried once more on a new one: every request this tool makes
    /// is idempotent (polls name `after`, sends carry client seqs).
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), HttpError> {
        let reused = self.sender.as_ref().is_some_and(|s| !s.is_closed());
        match self.request_once(method, path, headers, body.clone()).await {
            Err(_) if reused => self.request_once(method, path, headers, body).await,
            r => r,
        }
    }

    async fn request_once(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), HttpError> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body))?;
        let result = async {
            let resp = self.sender().await?.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, HttpError>((status, body))
        }
        .await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    /// Sends a GET and returns the response head with its streaming body.
    pub async fn stream(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response<hyper::body::Incoming>, HttpError> {
        let mut req = Request::builder()
            .method("GET")
            .uri(path)
            .header("host", &self.host);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::new()))?;
        Ok(self.sender().await?.send_request(req).await?)
    }
}
