//! The chaos run (examples/chaos), scaled down, with its pass criteria;
//! and the upstream faults a caller must survive: an upstream that hangs,
//! resets, sends garbage, or closes mid-body.
#![cfg(feature = "tower")]

#[path = "../examples/chaos/main.rs"]
#[allow(dead_code)]
mod chaos;

use chaos::servers::{next_client, serve_mock, Fault, MockServer};
use chaos::{run, Plan};
use http_body_util::{BodyExt, Empty};
use nanobreaker::{CircuitBreaker, Config, State, Window};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// The tests here share the machine's two cores: one at a time, so the
/// latency criteria measure the run, not its neighbours.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_short_chaos_run_meets_every_criterion_and_fails_them_without_breakers() {
    let _one = ONE_AT_A_TIME.lock().await;
    let with = run(Plan::short(true)).await;
    chaos::print(&with);
    let v = with.violations();
    assert!(v.is_empty(), "with breakers: {v:?}");
    // The slow phase began with every breaker closed (they closed in the
    // healed phase), so tripping on slow calls was tested.
    assert!(with.closed_after[0].is_some());
    // What the breakers prevent: without them, D's slowness reaches A and
    // D takes the whole load while failing.
    let without = run(Plan::short(false)).await;
    chaos::print(&without);
    assert!(!without.violations().is_empty(), "without breakers the criteria fail");
    assert!(without.phases[3].p99 >= Duration::from_millis(150), "A waits on slow D without breakers");
    assert!(
        without.phases[1].upstream_received > 10 * with.phases[1].upstream_received,
        "breakers shed D's load while it fails"
    );
}

fn config() -> Config {
    let mut c = Config::default();
    c.window = Window::count(10);
    c.minimum_calls = 3;
    c.open_wait = Duration::from_secs(60);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_upstream_fault_is_a_clear_error_a_failure_and_leaks_no_permit() {
    let _one = ONE_AT_A_TIME.lock().await;
    for fault in [Fault::Hang, Fault::Reset, Fault::Garbage] {
        let mock = Arc::new(MockServer::default());
        mock.set_fault(fault);
        let addr = serve_mock(mock.clone()).await;
        let cb = Arc::new(CircuitBreaker::builder().config(config()).build().unwrap());
        let client = next_client(Some(cb.clone()), Duration::from_millis(300));
        for _ in 0..3 {
            let req = http::Request::get(format!("http://{addr}/")).body(Empty::new()).unwrap();
            // No call may hang: the timeout under the breaker ends a hung one.
            let r = tokio::time::timeout(Duration::from_secs(5), client.clone().oneshot(req)).await;
            let err = r.expect("no stuck call").expect_err("a fault is an error");
            // A hang ends at the timeout; the others fail at once, in hyper.
            let timed_out = err.is::<tower::timeout::error::Elapsed>();
            assert_eq!(timed_out, fault == Fault::Hang, "{fault:?}: {err:?}");
        }
        let m = cb.metrics();
        assert_eq!((m.failures, m.half_open_in_flight), (3, 0), "{fault:?}: {m:?}");
        assert_eq!(cb.state(), State::Open, "{fault:?}");
        let req = http::Request::get(format!("http://{addr}/")).body(Empty::new()).unwrap();
        let received = mock.received.load(std::sync::atomic::Ordering::Relaxed);
        assert!(client.clone().oneshot(req).await.is_err());
        assert_eq!(mock.received.load(std::sync::atomic::Ordering::Relaxed), received, "open: not called");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_closing_mid_body_fails_the_read_but_counted_at_the_head() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mock = Arc::new(MockServer::default());
    mock.set_fault(Fault::CloseMidBody);
    let addr = serve_mock(mock).await;
    let cb = Arc::new(CircuitBreaker::builder().config(config()).build().unwrap());
    let client = next_client(Some(cb.clone()), Duration::from_millis(300));
    let req = http::Request::get(format!("http://{addr}/")).body(Empty::new()).unwrap();
    let resp = client.oneshot(req).await.expect("the head arrives");
    assert_eq!(resp.status(), 200);
    let body =
        tokio::time::timeout(Duration::from_secs(5), resp.into_body().collect()).await.expect("no hang");
    assert!(body.is_err(), "the caller sees the body cut short");
    // The layer classifies at the response head (see src/layer.rs): the
    // call counted as a success, and its permit is not leaked.
    let m = cb.metrics();
    assert_eq!((m.successes, m.failures, m.half_open_in_flight), (1, 0, 0));
}
