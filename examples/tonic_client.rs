//! A tonic gRPC client through the breaker: a `Channel` to a gRPC server
//! on 127.0.0.1 (tonic's standard health service, made to fail on demand
//! with `UNAVAILABLE` by an interceptor), wrapped in `CircuitBreakerLayer`
//! with the `GrpcResponse` classifier, under a generated client.
//!
//! A `Channel` sends path-only URIs (`/grpc.health.v1.Health/Check`), so
//! `ByAuthority` finds no host in them: give each channel (one endpoint)
//! its breaker with `CircuitBreakerLayer::new`, as here, or key a registry
//! by method with a closure. A rejection reaches the generated client as
//! a `tonic::Status`; the `map_err` below makes it `UNAVAILABLE` (tonic
//! would call it `UNKNOWN`), with the wait in its message.
//!
//! `cargo run --example tonic_client --features tower`
//!
//! tests/layer.rs runs the same `run()` and asserts on its summary.

use nanobreaker::layer::{CircuitBreakerLayer, GrpcResponse};
use nanobreaker::{CircuitBreaker, Config, Error, State, Window};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::server::{HealthReporter, HealthService};
use tower::ServiceBuilder;

/// The server's behaviour, settable while it runs.
#[derive(Default)]
pub struct Upstream {
    /// Fail every call with `UNAVAILABLE`.
    pub failing: AtomicBool,
    /// Calls that reached it.
    pub served: AtomicU64,
}

/// Serves the health service on an ephemeral loopback port.
pub async fn serve(up: Arc<Upstream>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    let health = HealthService::from_health_reporter(HealthReporter::new());
    let svc = HealthServer::with_interceptor(health, move |req| {
        up.served.fetch_add(1, Ordering::Relaxed);
        match up.failing.load(Ordering::Relaxed) {
            true => Err(Status::unavailable("upstream down")),
            false => Ok(req),
        }
    });
    tokio::spawn(async move {
        Server::builder()
            .add_service(svc)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .expect("serve")
    });
    addr
}

/// The breaker's config: a small window, a 1 s open wait.
fn config() -> Config {
    let mut c = Config::default();
    c.window = Window::count(20);
    c.minimum_calls = 10;
    c.failure_rate_threshold = 0.5;
    c.open_wait = Duration::from_secs(1);
    c.jitter = 0.0;
    c.half_open_permits = 1;
    c
}

/// What a run saw.
#[derive(Debug)]
pub struct Summary {
    /// Healthy phase: calls answered.
    pub healthy_ok: u32,
    /// Outage: calls made, calls that reached the server, calls the
    /// breaker rejected (`UNAVAILABLE`, "circuit open"), the slowest of those.
    pub outage_sent: u32,
    pub outage_reached_server: u64,
    pub outage_rejected: u32,
    pub slowest_rejection: Duration,
    /// The breaker's state at the end of the outage.
    pub state_in_outage: State,
    /// How long after the server healed the breaker closed.
    pub closed_after: Option<Duration>,
}

pub async fn run() -> Summary {
    let up = Arc::new(Upstream::default());
    let addr = serve(up.clone()).await;
    let channel =
        Channel::from_shared(format!("http://{addr}")).expect("uri").connect().await.expect("connect");
    let breaker =
        Arc::new(CircuitBreaker::builder().name("health").config(config()).build().expect("breaker"));
    let svc = ServiceBuilder::new()
        .map_err(|e: Error<tonic::transport::Error>| match e {
            Error::Rejected(r) => {
                Box::new(Status::unavailable(format!("circuit open, retry after {:?}", r.retry_after())))
                    as tower::BoxError
            }
            e => e.into_box_error(),
        })
        .layer(CircuitBreakerLayer::new(breaker.clone()).classifier(GrpcResponse))
        .service(channel);
    let mut client = HealthClient::new(svc);
    let check = || tonic::Request::new(HealthCheckRequest { service: String::new() });

    let mut healthy_ok = 0;
    for _ in 0..30 {
        healthy_ok += client.check(check()).await.is_ok() as u32;
    }

    up.failing.store(true, Ordering::Relaxed);
    let served_before = up.served.load(Ordering::Relaxed);
    let (outage_sent, mut outage_rejected, mut slowest_rejection) = (200, 0, Duration::ZERO);
    for _ in 0..outage_sent {
        let t = Instant::now();
        match client.check(check()).await {
            Err(s) if s.code() == Code::Unavailable && s.message().starts_with("circuit open") => {
                outage_rejected += 1;
                slowest_rejection = slowest_rejection.max(t.elapsed());
            }
            Err(s) => assert_eq!(s.code(), Code::Unavailable, "the server's own error: {s:?}"),
            Ok(_) => panic!("the server is failing every call"),
        }
    }
    let outage_reached_server = up.served.load(Ordering::Relaxed) - served_before;
    let state_in_outage = breaker.state();

    up.failing.store(false, Ordering::Relaxed);
    let healed = Instant::now();
    let mut closed_after = None;
    while healed.elapsed() < Duration::from_secs(5) {
        let _ = client.check(check()).await;
        if breaker.state() == State::Closed {
            closed_after = Some(healed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Summary {
        healthy_ok,
        outage_sent,
        outage_reached_server,
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
    println!("healthy: {}/30 checks answered", s.healthy_ok);
    println!(
        "outage: {} calls, {} reached the server, {} rejected by the breaker (slowest {:?}); breaker {}",
        s.outage_sent, s.outage_reached_server, s.outage_rejected, s.slowest_rejection, s.state_in_outage
    );
    match s.closed_after {
        Some(d) => println!("recovery: closed {d:?} after the server healed"),
        None => println!("recovery: still not closed after 5 s"),
    }
}
