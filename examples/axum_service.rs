//! An axum service whose handler calls a flaky upstream through the
//! breaker, with a fallback: `GET /price` asks the upstream (another axum
//! server on 127.0.0.1) through hyper-util's client wrapped in
//! `CircuitBreakerLayer`, one breaker per upstream host from a registry.
//! While the upstream fails, the breaker opens and the handler answers at
//! once from its last good price (`x-price-source: cache`) instead of
//! waiting on the upstream; `GET /metrics` shows the breakers in
//! Prometheus' text format.
//!
//! `cargo run --example axum_service --features tower`
//!
//! tests/layer.rs runs the same `run()` and asserts on its summary.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use nanobreaker::layer::{ByAuthority, CircuitBreakerLayer, CircuitBreakerService, HttpResponse, Keyed};
use nanobreaker::{Config, Error, Registry, State as BreakerState, Window};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::{Layer, ServiceExt};

/// The upstream: answers its price, or 503 while `failing`.
#[derive(Default)]
pub struct Upstream {
    pub failing: AtomicBool,
    /// Requests that reached it.
    pub served: AtomicU64,
}

fn upstream_router(up: Arc<Upstream>) -> Router {
    Router::new()
        .route(
            "/price",
            get(|State(up): State<Arc<Upstream>>| async move {
                up.served.fetch_add(1, Ordering::Relaxed);
                if up.failing.load(Ordering::Relaxed) {
                    (StatusCode::SERVICE_UNAVAILABLE, "down").into_response()
                } else {
                    "42".into_response()
                }
            }),
        )
        .with_state(up)
}

/// The client the handler calls the upstream with: hyper-util's, behind a
/// breaker per upstream host.
type UpstreamClient =
    CircuitBreakerService<Client<HttpConnector, Empty<Bytes>>, Keyed<ByAuthority>, HttpResponse>;

#[derive(Clone)]
struct App {
    client: UpstreamClient,
    registry: Arc<Registry>,
    upstream: String,
    last_price: Arc<AtomicU64>,
}

/// `GET /price`: the upstream's answer, or the last good one while its
/// breaker is open.
async fn price(State(app): State<App>) -> Response {
    let req = hyper::Request::get(format!("{}/price", app.upstream)).body(Empty::new()).expect("request");
    match app.client.clone().oneshot(req).await {
        Ok(r) if r.status().is_success() => {
            let body = r.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            if let Some(p) = std::str::from_utf8(&body).ok().and_then(|s| s.parse().ok()) {
                app.last_price.store(p, Ordering::Relaxed);
            }
            ([("x-price-source", "upstream")], body).into_response()
        }
        Ok(r) => (StatusCode::BAD_GATEWAY, format!("upstream answered {}", r.status())).into_response(),
        // The fallback: no call was made, the answer is immediate.
        Err(Error::Rejected(rejected)) => {
            let mut resp =
                ([("x-price-source", "cache")], app.last_price.load(Ordering::Relaxed).to_string())
                    .into_response();
            let secs = rejected.retry_after().as_secs().max(1);
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            resp
        }
        Err(e) => {
            (StatusCode::BAD_GATEWAY, format!("upstream unreachable: {:?}", e.into_inner())).into_response()
        }
    }
}

async fn metrics(State(app): State<App>) -> String {
    app.registry.render_prometheus()
}

/// Serves `router` on an ephemeral loopback port until the runtime ends.
async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    addr
}

/// The breakers' config: a small window, a 1 s open wait.
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

/// What a run saw, from the service's own clients.
#[derive(Debug)]
pub struct Summary {
    /// Healthy phase: answers from the upstream.
    pub healthy_from_upstream: u32,
    /// Outage: requests to the service, answers it gave (200 from the
    /// cache, or an error status), how many of them came from the cache,
    /// requests that reached the upstream, the slowest cached answer.
    pub outage_sent: u32,
    pub outage_ok: u32,
    pub outage_from_cache: u32,
    pub outage_reached_upstream: u64,
    pub slowest_cached: Duration,
    /// The breaker's state at the end of the outage.
    pub state_in_outage: BreakerState,
    /// How long after the upstream healed the service answered from it again.
    pub recovered_after: Option<Duration>,
    /// `GET /metrics` named the upstream's breaker.
    pub metrics_name_breaker: bool,
}

pub async fn run() -> Summary {
    let up = Arc::new(Upstream::default());
    let upstream_addr = serve(upstream_router(up.clone())).await;
    let registry = Arc::new(Registry::builder().default_config(config()).build().expect("registry"));
    let client = CircuitBreakerLayer::keyed(registry.clone(), ByAuthority)
        .classifier(HttpResponse)
        .layer(Client::builder(TokioExecutor::new()).build_http());
    let app = App {
        client,
        registry: registry.clone(),
        upstream: format!("http://{upstream_addr}"),
        last_price: Arc::new(AtomicU64::new(0)),
    };
    let router = Router::new().route("/price", get(price)).route("/metrics", get(metrics)).with_state(app);
    let service = serve(router).await;

    // The service's own client (no breaker: we want to see every answer).
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let ask = |path: &str| {
        let client = client.clone();
        let uri = format!("http://{service}{path}");
        async move {
            let r = client.get(uri.parse().expect("uri")).await.expect("the service answers");
            let source = r.headers().get("x-price-source").map(|v| v.to_str().unwrap_or("").to_owned());
            let status = r.status();
            let body = r.into_body().collect().await.expect("body").to_bytes();
            (status, source.unwrap_or_default(), body)
        }
    };

    let mut healthy_from_upstream = 0;
    for _ in 0..30 {
        let (status, source, _) = ask("/price").await;
        healthy_from_upstream += (status == StatusCode::OK && source == "upstream") as u32;
    }

    up.failing.store(true, Ordering::Relaxed);
    let served_before = up.served.load(Ordering::Relaxed);
    let (outage_sent, mut outage_ok, mut outage_from_cache, mut slowest_cached) = (200, 0, 0, Duration::ZERO);
    for _ in 0..outage_sent {
        let t = Instant::now();
        let (status, source, body) = ask("/price").await;
        outage_ok += (status == StatusCode::OK) as u32;
        if source == "cache" {
            assert_eq!(&body[..], b"42", "the cache holds the last good price");
            outage_from_cache += 1;
            slowest_cached = slowest_cached.max(t.elapsed());
        }
    }
    let outage_reached_upstream = up.served.load(Ordering::Relaxed) - served_before;
    let breaker = registry.find(&upstream_addr.to_string()).expect("a breaker for the upstream");
    let state_in_outage = breaker.state();

    up.failing.store(false, Ordering::Relaxed);
    let healed = Instant::now();
    let mut recovered_after = None;
    while healed.elapsed() < Duration::from_secs(5) {
        let (_, source, _) = ask("/price").await;
        if source == "upstream" && breaker.state() == BreakerState::Closed {
            recovered_after = Some(healed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (_, _, text) = ask("/metrics").await;
    let needle = format!("name=\"{upstream_addr}\"");
    let metrics_name_breaker = std::str::from_utf8(&text).is_ok_and(|t| t.contains(&needle));
    Summary {
        healthy_from_upstream,
        outage_sent,
        outage_ok,
        outage_from_cache,
        outage_reached_upstream,
        slowest_cached,
        state_in_outage,
        recovered_after,
        metrics_name_breaker,
    }
}

#[allow(dead_code)] // tests/layer.rs includes this file for `run`
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let s = run().await;
    println!("healthy: {}/30 answered from the upstream", s.healthy_from_upstream);
    println!(
        "outage: {} requests, {} answered 200 ({} from the cache, slowest {:?}), {} reached the upstream; breaker {}",
        s.outage_sent, s.outage_ok, s.outage_from_cache, s.slowest_cached, s.outage_reached_upstream, s.state_in_outage
    );
    match s.recovered_after {
        Some(d) => println!("recovery: answering from the upstream {d:?} after it healed"),
        None => println!("recovery: not within 5 s"),
    }
}
