//! The tower layer (feature `tower`): admission, classification, permits
//! held by the response future, a breaker per host, readiness.
#![cfg(feature = "tower")]

use nanobreaker::layer::{ByAuthority, CircuitBreakerLayer, GrpcResponse, HttpResponse};
use nanobreaker::{CircuitBreaker, Clock, Config, Error, Registry, State, Window};
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{service_fn, Layer, Service, ServiceExt};

type Resp = http::Response<()>;

fn config() -> Config {
    let mut c = Config::default();
    c.window = Window::count(4);
    c.minimum_calls = 2;
    c.half_open_permits = 1;
    c.open_wait = Duration::from_secs(10);
    c.jitter = 0.0;
    c
}

fn breaker(clock: Clock) -> Arc<CircuitBreaker> {
    Arc::new(CircuitBreaker::builder().config(config()).clock(clock).stripes(1).build().unwrap())
}

fn request(uri: &str) -> http::Request<()> {
    http::Request::builder().uri(uri).body(()).unwrap()
}

fn status(code: u16) -> Resp {
    http::Response::builder().status(code).body(()).unwrap()
}

/// An upstream answering each request with the status in its path
/// ("/503"), counting the calls that reach it.
fn upstream(
    calls: Arc<AtomicU32>,
) -> impl Service<http::Request<()>, Response = Resp, Error = std::io::Error> + Clone {
    service_fn(move |req: http::Request<()>| {
        calls.fetch_add(1, Ordering::Relaxed);
        let code = req.uri().path().trim_start_matches('/').parse().unwrap_or(200);
        async move { Ok(status(code)) }
    })
}

#[tokio::test]
async fn http_failures_trip_and_then_calls_never_reach_the_upstream() {
    let (clock, mock) = Clock::mock();
    let cb = breaker(clock);
    let calls = Arc::new(AtomicU32::new(0));
    let mut svc =
        CircuitBreakerLayer::new(cb.clone()).classifier(HttpResponse).layer(upstream(calls.clone()));

    for (path, code) in [("/200", 200), ("/404", 404)] {
        let r = svc.ready().await.unwrap().call(request(path)).await.unwrap();
        assert_eq!(r.status(), code);
    }
    let m = cb.metrics();
    assert_eq!((m.successes, m.ignored, m.failures), (1, 1, 0), "404 is the caller's: ignored");
    let r = svc.ready().await.unwrap().call(request("/503")).await.unwrap();
    assert_eq!(r.status(), 503, "the response still reaches the caller");
    assert_eq!(cb.state(), State::Open, "one success, one 503: 50% trips");

    let before = calls.load(Ordering::Relaxed);
    match svc.ready().await.unwrap().call(request("/200")).await {
        Err(Error::Rejected(r)) => assert_eq!(r.retry_after(), Duration::from_secs(10)),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(calls.load(Ordering::Relaxed), before, "a rejected call never reaches the upstream");

    // After the wait, one probe; its success closes the breaker.
    mock.advance(Duration::from_secs(10));
    let r = svc.ready().await.unwrap().call(request("/200")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(cb.state(), State::Closed);
}

#[tokio::test]
async fn an_inner_error_is_a_failure_and_comes_back_as_inner() {
    let (clock, _mock) = Clock::mock();
    let cb = breaker(clock);
    let inner = service_fn(|_: http::Request<()>| async { Err::<Resp, _>(std::io::Error::other("reset")) });
    let svc = CircuitBreakerLayer::new(cb.clone()).classifier(HttpResponse).layer(inner);
    match svc.oneshot(request("/")).await {
        Err(Error::Inner(e)) => assert_eq!(e.to_string(), "reset"),
        other => panic!("{other:?}"),
    }
    assert_eq!(cb.metrics().failures, 1);
}

/// A future that never completes.
struct Never;
impl Future for Never {
    type Output = Result<Resp, std::io::Error>;
    fn poll(self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Pending
    }
}

#[tokio::test]
async fn a_dropped_response_future_is_ignored_and_frees_its_probe_slot() {
    let (clock, _mock) = Clock::mock();
    let cb = breaker(clock);
    cb.transition_to(State::HalfOpen);
    let mut svc = CircuitBreakerLayer::new(cb.clone()).layer(service_fn(|_: http::Request<()>| Never));
    let pending = svc.ready().await.unwrap().call(request("/"));
    assert_eq!(cb.metrics().half_open_in_flight, 1);
    assert!(matches!(svc.ready().await.unwrap().call(request("/")).await, Err(Error::Rejected(_))));
    drop(pending); // the caller gave up (a timeout above, a client gone)
    let m = cb.metrics();
    assert_eq!((m.half_open_in_flight, m.ignored, m.failures), (0, 1, 0));
    assert_eq!(cb.state(), State::HalfOpen, "nothing was decided");
    let _second = svc.ready().await.unwrap().call(request("/"));
    assert_eq!(cb.metrics().half_open_in_flight, 1, "the slot was given back");
}

#[tokio::test]
async fn one_bad_host_does_not_open_the_door_for_the_others() {
    let (clock, _mock) = Clock::mock();
    let reg = Arc::new(Registry::builder().default_config(config()).clock(clock).stripes(1).build().unwrap());
    let calls = Arc::new(AtomicU32::new(0));
    let mut svc =
        CircuitBreakerLayer::keyed(reg.clone(), ByAuthority).classifier(HttpResponse).layer(upstream(calls));
    for _ in 0..2 {
        let _ = svc.ready().await.unwrap().call(request("http://bad:80/500")).await;
    }
    assert_eq!(reg.find("bad:80").unwrap().state(), State::Open);
    assert!(matches!(
        svc.ready().await.unwrap().call(request("http://bad:80/200")).await,
        Err(Error::Rejected(_))
    ));
    let ok = svc.ready().await.unwrap().call(request("http://good:80/200")).await.unwrap();
    assert_eq!(ok.status(), 200);
    // A request without an authority is keyed by its Host header.
    let req = http::Request::builder().uri("/200").header("host", "good:80").body(()).unwrap();
    svc.ready().await.unwrap().call(req).await.unwrap();
    // Host lowercased, userinfo dropped, the scheme's port filled in.
    svc.ready().await.unwrap().call(request("http://user:secret@GOOD/200")).await.unwrap();
    assert_eq!(reg.find("good:80").unwrap().metrics().successes, 3);
    svc.ready().await.unwrap().call(request("https://good/200")).await.unwrap();
    assert!(reg.find("good:443").is_some());
    assert_eq!(reg.len(), 3);
    // No authority, no Host: no key, through unprotected.
    svc.ready().await.unwrap().call(request("/200")).await.unwrap();
    assert_eq!(reg.len(), 3);
}

#[tokio::test]
async fn a_full_registry_fails_open_unprotected() {
    let (clock, _mock) = Clock::mock();
    let reg =
        Arc::new(Registry::builder().default_config(config()).clock(clock).capacity(1).build().unwrap());
    reg.get("held:1").unwrap().transition_to(State::Open); // open: never evicted
    let calls = Arc::new(AtomicU32::new(0));
    let svc = CircuitBreakerLayer::keyed(reg.clone(), ByAuthority).layer(upstream(calls.clone()));
    let r = svc.oneshot(request("http://other:1/200")).await.unwrap();
    assert_eq!((r.status().as_u16(), calls.load(Ordering::Relaxed)), (200, 1));
    assert!(reg.find("other:1").is_none(), "unprotected, unrecorded");
}

#[test]
fn grpc_responses_are_judged_by_their_status_header() {
    use nanobreaker::{Classifier, Outcome};
    let grpc = |http: u16, code: Option<&str>| {
        let mut b = http::Response::builder().status(http);
        if let Some(c) = code {
            b = b.header("grpc-status", c);
        }
        Ok::<_, ()>(b.body(()).unwrap())
    };
    assert_eq!(GrpcResponse.classify(&grpc(200, Some("14"))), Outcome::Failure, "UNAVAILABLE");
    assert_eq!(GrpcResponse.classify(&grpc(200, Some("4"))), Outcome::Failure, "DEADLINE_EXCEEDED");
    assert_eq!(GrpcResponse.classify(&grpc(200, Some("5"))), Outcome::Ignored, "NOT_FOUND");
    assert_eq!(GrpcResponse.classify(&grpc(200, Some("0"))), Outcome::Success);
    assert_eq!(GrpcResponse.classify(&grpc(200, None)), Outcome::Success, "status in the trailers");
    assert_eq!(GrpcResponse.classify(&grpc(503, None)), Outcome::Failure, "a proxy's 503");
    assert_eq!(GrpcResponse.classify(&grpc(200, Some("junk"))), Outcome::Failure, "unparsable: UNKNOWN");
    assert_eq!(GrpcResponse.classify(&grpc(302, None)), Outcome::Failure, "not gRPC: UNKNOWN");
    assert_eq!(GrpcResponse.classify(&grpc(404, None)), Outcome::Ignored);
    assert_eq!(GrpcResponse.classify(&Err::<Resp, ()>(())), Outcome::Failure);
}

#[tokio::test]
async fn readiness_is_the_inner_services_even_while_open() {
    let (clock, _mock) = Clock::mock();
    let cb = breaker(clock);
    cb.transition_to(State::Open);
    let mut svc = CircuitBreakerLayer::new(cb).layer(upstream(Arc::new(AtomicU32::new(0))));
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    assert!(
        matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))),
        "open is reported by call, not readiness"
    );
    assert!(matches!(svc.call(request("/")).await, Err(Error::Rejected(_))));
}

#[path = "../examples/tower_http.rs"]
mod tower_http;

#[tokio::test]
async fn over_real_sockets_the_breaker_turns_an_outage_into_fast_rejections_and_closes_after() {
    let s = tower_http::run().await;
    assert_eq!(s.healthy_ok, 50, "no breaker-induced failure while healthy: {s:?}");
    assert_eq!(s.state_in_outage, State::Open, "{s:?}");
    // minimum_calls (10) of 503s trip it; the rest never leave the process.
    assert!(s.outage_reached_upstream <= 10, "{s:?}");
    assert_eq!(s.outage_rejected as u64 + s.outage_reached_upstream, s.outage_sent as u64, "{s:?}");
    assert!(s.slowest_rejection < Duration::from_millis(200), "a rejection is local: {s:?}");
    let closed = s.closed_after.expect("closes after the upstream heals");
    assert!(
        closed >= Duration::from_millis(500) && closed < Duration::from_secs(2),
        "the rest of the 1 s open wait, then probes: {s:?}"
    );
}

#[path = "../examples/axum_service.rs"]
mod axum_service;

#[tokio::test]
async fn an_axum_handler_answers_from_its_fallback_while_the_upstream_is_down() {
    let s = axum_service::run().await;
    assert_eq!(s.healthy_from_upstream, 30, "no breaker-induced failure while healthy: {s:?}");
    assert_eq!(s.state_in_outage, State::Open, "{s:?}");
    assert!(s.outage_reached_upstream <= 10, "minimum_calls of 503s trip it: {s:?}");
    assert_eq!(s.outage_from_cache as u64 + s.outage_reached_upstream, s.outage_sent as u64, "{s:?}");
    assert_eq!(s.outage_ok, s.outage_from_cache, "every cached answer is a 200, every 503 a 502: {s:?}");
    assert!(s.slowest_cached < Duration::from_millis(200), "a fallback is local: {s:?}");
    let back = s.recovered_after.expect("answers from the upstream again after it heals");
    assert!(back >= Duration::from_millis(500) && back < Duration::from_secs(2), "{s:?}");
    assert!(s.metrics_name_breaker, "/metrics shows the upstream's breaker: {s:?}");
}

#[path = "../examples/tonic_client.rs"]
mod tonic_client;

#[tokio::test]
async fn a_tonic_client_gets_unavailable_from_the_breaker_while_the_server_is_down() {
    let s = tonic_client::run().await;
    assert_eq!(s.healthy_ok, 30, "no breaker-induced failure while healthy: {s:?}");
    assert_eq!(s.state_in_outage, State::Open, "UNAVAILABLE in the status header is a failure: {s:?}");
    assert!(s.outage_reached_server <= 10, "minimum_calls of failures trip it: {s:?}");
    assert_eq!(s.outage_rejected as u64 + s.outage_reached_server, s.outage_sent as u64, "{s:?}");
    assert!(s.slowest_rejection < Duration::from_millis(200), "a rejection is local: {s:?}");
    let closed = s.closed_after.expect("closes after the server heals");
    assert!(closed >= Duration::from_millis(500) && closed < Duration::from_secs(2), "{s:?}");
}
