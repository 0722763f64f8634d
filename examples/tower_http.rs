//! The tower layer over real sockets: a flaky upstream HTTP server on
//! 127.0.0.1, called through `CircuitBreakerLayer` with hyper-util's
//! client, one breaker per upstream (keyed by authority). The upstream is
//! healthy, then fails every call, then recovers; the breaker trips, turns
//! the outage into fast local rejections, and closes again.
//!
//! `cargo run --example tower_http --features tower`
//!
//! tests/layer.rs runs the same `run()` and asserts on its summary.

use bytes::Bytes;
use http_body_util::Empty;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use nanobreaker::layer::{ByAuthority, CircuitBreakerLayer, HttpResponse};
use nanobreaker::{Config, Error, Registry, State, Window};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::{Layer, Service, ServiceExt};

/// The upstream's behaviour, settable while it runs.
#[derive(Default)]
pub struct Upstream {
    /// Answer 503 to every request.
    pub failing: AtomicBool,
    /// Requests that reached it.
    pub served: AtomicU64,
}

/// Serves `upstream` on an ephemeral loopback port until the runtime ends.
pub async fn serve(upstream: Arc<Upstream>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let up = upstream.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| {
                    up.served.fetch_add(1, Ordering::Relaxed);
                    let status = if up.failing.load(Ordering::Relaxed) {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    };
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            Response::builder().status(status).body(Empty::<Bytes>::new()).unwrap(),
                        )
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

/// What a run saw.
#[derive(Debug)]
pub struct Summary {
    /// Healthy phase: requests answered 200.
    pub healthy_ok: u32,
    /// Outage phase: requests sent, requests that reached the upstream,
    /// requests rejected by the breaker, and the slowest rejection.
    pub outage_sent: u32,
    pub outage_reached_upstream: u64,
    pub outage_rejected: u32,
    pub slowest_rejection: Duration,
    /// The breaker's state at the end of the outage.
    pub state_in_outage: State,
    /// Recovery: how long after the upstream healed the breaker closed
    /// (None: it did not within the run).
    pub closed_after: Option<Duration>,
}

/// The breaker's config: a small window and a 1 s open wait (long beside
/// the outage loop, so no probe reaches the failing upstream in it).
fn config() -> Config {
    let mut c = Config::default();
    c.window = Window::count(20);
    c.minimum_calls = 10;
    c.failure_rate_threshold = 0.5;
    c.open_wait = Duration::from_secs(1);
    c.jitter = 0.0;
    c.half_open_permits = 2;
    c
}

pub async fn run() -> Summary {
    let upstream = Arc::new(Upstream::default());
    let addr = serve(upstream.clone()).await;
    let registry = Arc::new(Registry::builder().default_config(config()).build().expect("registry"));
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut svc =
        CircuitBreakerLayer::keyed(registry.clone(), ByAuthority).classifier(HttpResponse).layer(client);
    let uri = format!("http://{addr}/");
    let get = || Request::get(&uri).body(Empty::<Bytes>::new()).expect("request");

    let mut healthy_ok = 0;
    for _ in 0..50 {
        if let Ok(r) = svc.ready().await.expect("ready").call(get()).await {
            healthy_ok += (r.status() == StatusCode::OK) as u32;
        }
    }

    upstream.failing.store(true, Ordering::Relaxed);
    let served_before = upstream.served.load(Ordering::Relaxed);
    let (mut outage_rejected, mut slowest_rejection) = (0, Duration::ZERO);
    let outage_sent = 200;
    for _ in 0..outage_sent {
        let t = Instant::now();
        if let Err(Error::Rejected(_)) = svc.ready().await.expect("ready").call(get()).await {
            outage_rejected += 1;
            slowest_rejection = slowest_rejection.max(t.elapsed());
        }
    }
    let outage_reached_upstream = upstream.served.load(Ordering::Relaxed) - served_before;
    let breaker = registry.find(&addr.to_string()).expect("a breaker for the upstream");
    let state_in_outage = breaker.state();

    upstream.failing.store(false, Ordering::Relaxed);
    let healed = Instant::now();
    let mut closed_after = None;
    while healed.elapsed() < Duration::from_secs(5) {
        let _ = svc.ready().await.expect("ready").call(get()).await;
        if breaker.state() == State::Closed {
            closed_after = Some(healed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Summary {
        healthy_ok,
        outage_sent,
        outage_reached_upstream,
        outage_rejected,
        slowest_rejection,
        state_in_outage,
        closed_after,
    }
}

#[allow(dead_code)] // tests/layer.rs includes this file for `run`
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let s = run().await;
    println!("healthy: {}/50 answered 200", s.healthy_ok);
    println!(
        "outage: {} sent, {} reached the upstream, {} rejected by the breaker (slowest rejection {:?}); breaker {}",
        s.outage_sent, s.outage_reached_upstream, s.outage_rejected, s.slowest_rejection, s.state_in_outage
    );
    match s.closed_after {
        Some(d) => println!("recovery: closed {d:?} after the upstream healed"),
        None => println!("recovery: still not closed after 5 s"),
    }
}
