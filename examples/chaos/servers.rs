//! The chaos run's servers, all on 127.0.0.1: the mock upstream D (its
//! failure rate, latency and fault mode set at run time) and the hops A, B,
//! C, each an HTTP service calling the next through the tower layer.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use nanobreaker::layer::{CircuitBreakerLayer, HttpResponse};
use nanobreaker::{CircuitBreaker, Rejected};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower::util::BoxCloneService;
use tower::{BoxError, Layer, ServiceExt};

/// How the mock upstream misbehaves (besides its failure rate and latency).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Fault {
    /// Answers normally.
    None = 0,
    /// Accepts the request and never answers.
    Hang = 1,
    /// Closes the connection without answering (a reset to the client).
    Reset = 2,
    /// Answers with bytes that are not HTTP.
    Garbage = 3,
    /// Sends the head and half the body, then closes.
    CloseMidBody = 4,
}

/// The mock upstream's settings, changed while it serves.
#[derive(Default)]
pub struct MockServer {
    /// Percent of requests answered 503.
    pub failure_percent: AtomicU32,
    /// Added before every answer, in ms.
    pub latency_ms: AtomicU64,
    /// A `Fault` as u32.
    pub fault: AtomicU32,
    /// Requests received.
    pub received: AtomicU64,
}

impl MockServer {
    pub fn set_fault(&self, f: Fault) {
        self.fault.store(f as u32, Ordering::Relaxed);
    }

    fn fault(&self) -> Fault {
        match self.fault.load(Ordering::Relaxed) {
            1 => Fault::Hang,
            2 => Fault::Reset,
            3 => Fault::Garbage,
            4 => Fault::CloseMidBody,
            _ => Fault::None,
        }
    }

    /// Whether request `n` fails: a fixed pattern (a multiplicative hash of
    /// `n`), so runs are repeatable.
    fn fails(&self, n: u64) -> bool {
        (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % 100
            < self.failure_percent.load(Ordering::Relaxed) as u64
    }
}

/// Serves the mock upstream on an ephemeral loopback port.
pub async fn serve_mock(mock: Arc<MockServer>) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { continue };
            let mock = mock.clone();
            tokio::spawn(async move {
                match mock.fault() {
                    Fault::Hang => {
                        mock.received.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    }
                    Fault::Reset => {
                        mock.received.fetch_add(1, Ordering::Relaxed);
                        // A zero linger closes with RST, not FIN (and, being
                        // zero, never blocks the drop it is deprecated for).
                        #[allow(deprecated)]
                        let _ = stream.set_linger(Some(Duration::ZERO));
                        return;
                    }
                    Fault::Garbage => {
                        mock.received.fetch_add(1, Ordering::Relaxed);
                        let _ = stream.read(&mut [0; 4096]).await; // the request first
                        let _ = stream.write_all(b"\x00\x01garbage, not HTTP\r\n\r\n").await;
                        return;
                    }
                    Fault::CloseMidBody => {
                        mock.received.fetch_add(1, Ordering::Relaxed);
                        let _ = stream.read(&mut [0; 4096]).await;
                        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhalf").await;
                        return;
                    }
                    Fault::None => {}
                }
                let svc = hyper::service::service_fn(move |_req: Request<Incoming>| {
                    let mock = mock.clone();
                    async move {
                        let n = mock.received.fetch_add(1, Ordering::Relaxed);
                        let latency = mock.latency_ms.load(Ordering::Relaxed);
                        if latency > 0 {
                            tokio::time::sleep(Duration::from_millis(latency)).await;
                        }
                        let status =
                            if mock.fails(n) { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
                        Ok::<_, std::convert::Infallible>(response(status, "from D"))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

pub fn response(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    Response::builder().status(status).body(Full::new(Bytes::from_static(body.as_bytes()))).expect("response")
}

/// A client for the next hop: hyper-util's, under a timeout, under the
/// breaker if there is one (retry(breaker(timeout(call))): a timeout is a
/// failure the breaker sees, and a caller giving up above would be ignored).
pub type Next = BoxCloneService<Request<Empty<Bytes>>, Response<Incoming>, BoxError>;

pub fn next_client(breaker: Option<Arc<CircuitBreaker>>, timeout: Duration) -> Next {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let timed = tower::timeout::TimeoutLayer::new(timeout).layer(client);
    match breaker {
        None => BoxCloneService::new(timed),
        Some(cb) => BoxCloneService::new(
            CircuitBreakerLayer::new(cb)
                .classifier(HttpResponse)
                .layer(timed)
                .map_err(|e| e.into_box_error()),
        ),
    }
}

/// A hop's counters.
#[derive(Default)]
pub struct HopStats {
    pub rejected: AtomicU64,
    pub fallbacks: AtomicU64,
}

/// Serves a hop: each request calls `next` at `uri`; a 200 is passed on,
/// anything else (an error status, a timeout, a rejection) is a 503, or,
/// with `fallback`, a 200 marked `x-fallback: 1`.
pub async fn serve_hop(next: Next, uri: hyper::Uri, fallback: bool, stats: Arc<HopStats>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (next, uri, stats) = (next.clone(), uri.clone(), stats.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req: Request<Incoming>| {
                    let (next, uri, stats) = (next.clone(), uri.clone(), stats.clone());
                    async move {
                        let req = Request::get(uri.clone()).body(Empty::new()).expect("request");
                        let ok = match next.oneshot(req).await {
                            Ok(r) if r.status() == StatusCode::OK => r.into_body().collect().await.is_ok(),
                            Ok(_) => false,
                            Err(e) => {
                                if e.is::<Rejected>() {
                                    stats.rejected.fetch_add(1, Ordering::Relaxed);
                                }
                                false
                            }
                        };
                        let resp = match (ok, fallback) {
                            (true, _) => response(StatusCode::OK, "ok"),
                            (false, true) => {
                                stats.fallbacks.fetch_add(1, Ordering::Relaxed);
                                let mut r = response(StatusCode::OK, "fallback");
                                r.headers_mut().insert("x-fallback", http::HeaderValue::from_static("1"));
                                r
                            }
                            (false, false) => response(StatusCode::SERVICE_UNAVAILABLE, "upstream failed"),
                        };
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}
