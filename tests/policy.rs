//! Policies: classifiers set once, a bulkhead whose rejections never trip
//! the breaker, fallbacks (chains, failures, panics, re-entry, depth), and
//! call timeouts, on the mock clock.

use nanobreaker::classify::{grpc, GrpcCode, HttpStatus, IoErrorKind};
use nanobreaker::{Bulkhead, CallError, CircuitBreaker, Clock, FallbackOn, MockClock, Policy, State, Window};
use std::io;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Trips on the first failure.
fn touchy() -> (Arc<CircuitBreaker>, MockClock) {
    let (clock, mock) = Clock::mock();
    let cb = CircuitBreaker::builder()
        .clock(clock)
        .window(Window::count(10))
        .minimum_calls(1)
        .failure_rate_threshold(0.01)
        .jitter(0.0)
        .build()
        .unwrap();
    (Arc::new(cb), mock)
}

#[test]
fn classifiers_set_once_decide_every_call() {
    let (cb, _) = touchy();
    let http = Policy::new(cb.clone()).classifier(HttpStatus);
    for s in [200u16, 204, 301, 400, 404, 422] {
        assert_eq!(http.call(|| Ok::<u16, u16>(s)), Ok(s));
    }
    assert_eq!(cb.state(), State::Closed, "4xx are ignored");
    assert_eq!((cb.metrics().successes, cb.metrics().ignored), (3, 3));
    let _ = http.call(|| Ok::<u16, u16>(429));
    assert_eq!(cb.state(), State::Open, "429 is a failure");

    let (cb, _) = touchy();
    let g = Policy::new(cb.clone()).classifier(GrpcCode);
    let _ = g.call(|| Err::<(), i32>(grpc::NOT_FOUND));
    assert_eq!(cb.state(), State::Closed);
    let _ = g.call(|| Err::<(), i32>(grpc::UNAVAILABLE));
    assert_eq!(cb.state(), State::Open);

    let (cb, _) = touchy();
    let i = Policy::new(cb.clone()).classifier(IoErrorKind);
    let _ = i.call(|| Err::<(), _>(io::Error::from(io::ErrorKind::PermissionDenied)));
    assert_eq!(cb.state(), State::Closed);
    let _ = i.call(|| Err::<(), _>(io::Error::from(io::ErrorKind::ConnectionReset)));
    assert_eq!(cb.state(), State::Open);
}

#[test]
fn bulkhead_rejections_never_trip_the_breaker() {
    let (cb, _) = touchy();
    let bulkhead = Arc::new(Bulkhead::new(1).unwrap());
    let policy = Policy::new(cb.clone()).bulkhead(bulkhead.clone());
    for _ in 0..1000 {
        let outer = policy.call(|| {
            // The one place is taken by this call: the inner one is refused.
            let inner = policy.call(|| Ok::<(), ()>(()));
            assert!(matches!(inner, Err(CallError::BulkheadFull(_))), "{inner:?}");
            Ok::<(), ()>(())
        });
        assert_eq!(outer, Ok(()));
    }
    let m = cb.metrics();
    assert_eq!(cb.state(), State::Closed);
    assert_eq!((m.failures, m.successes, m.ignored), (0, 1000, 1000));
    assert_eq!(bulkhead.rejected(), 1000);
    assert_eq!(bulkhead.in_flight(), 0);
}

#[test]
fn bulkhead_under_threads_counts_no_failure() {
    let (cb, _) = touchy();
    let policy = Arc::new(Policy::new(cb.clone()).bulkhead(Arc::new(Bulkhead::new(1).unwrap())));
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let p = policy.clone();
            std::thread::spawn(move || {
                for _ in 0..5_000 {
                    let _ = p.call(|| {
                        std::hint::spin_loop();
                        Ok::<(), ()>(())
                    });
                }
            })
        })
        .collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(cb.state(), State::Closed);
    assert_eq!(cb.metrics().failures, 0);
}

#[test]
fn fallback_on_rejection_and_optionally_on_failure() {
    let (cb, _) = touchy();
    let policy = Policy::new(cb.clone());
    let fb = |_: &CallError<&str>| Ok("fallback");
    // A failure without FallbackOn::RejectionOrFailure: no fallback.
    assert_eq!(policy.call_or(FallbackOn::Rejection, || Err("down"), &[&fb]), Err(CallError::Inner("down")));
    assert_eq!(cb.state(), State::Open);
    // Now rejected: the fallback answers, and the breaker is not touched.
    let before = cb.metrics();
    assert_eq!(policy.call_or(FallbackOn::Rejection, || Ok("live"), &[&fb]), Ok("fallback"));
    assert_eq!(cb.metrics().failures, before.failures);
    cb.reset();
    assert_eq!(policy.call_or(FallbackOn::RejectionOrFailure, || Err("down"), &[&fb]), Ok("fallback"));
    assert_eq!(cb.metrics().failures, before.failures + 1, "the failure is counted once");
}

#[test]
fn a_chain_of_failing_fallbacks_returns_the_last_error() {
    let (cb, _) = touchy();
    cb.transition_to(State::ForcedOpen);
    let policy = Policy::new(cb.clone());
    let seen = std::sync::Mutex::new(Vec::new());
    let a = |e: &CallError<u32>| {
        seen.lock().unwrap().push(e.is_rejection());
        Err(1)
    };
    let b = |e: &CallError<u32>| {
        seen.lock().unwrap().push(e.is_rejection());
        Err(2)
    };
    let c = |_: &CallError<u32>| Ok(3);
    assert_eq!(policy.call_or(FallbackOn::Rejection, || Ok(0), &[&a, &b]), Err(CallError::Inner(2)));
    assert_eq!(*seen.lock().unwrap(), [true, false]);
    assert_eq!(policy.call_or(FallbackOn::Rejection, || Ok(0), &[&a, &b, &c]), Ok(3));
    // Longer than the policy allows: refused before anything runs.
    let ran = AtomicU32::new(0);
    let counting = |_: &CallError<u32>| {
        ran.fetch_add(1, Relaxed);
        Err(9)
    };
    let too_many =
        policy.call_or(FallbackOn::Rejection, || Ok(0), &[&counting, &counting, &counting, &counting]);
    assert_eq!(too_many, Err(CallError::FallbackTooDeep));
    assert_eq!(ran.load(Relaxed), 0);
}

#[test]
fn a_fallback_never_calls_back_into_its_breaker() {
    let (cb, _) = touchy();
    cb.transition_to(State::ForcedOpen);
    let policy = Policy::new(cb.clone());
    let (other, _) = touchy();
    let other = Policy::new(other);
    let calls_back = |_: &CallError<()>| match policy.call(|| Ok::<(), ()>(())) {
        Err(CallError::Reentrant) => Err(()),
        r => panic!("re-entered: {r:?}"),
    };
    let calls_other = |_: &CallError<()>| other.call(|| Ok::<(), ()>(())).map_err(|_| ());
    let rejected_before = cb.metrics().rejected;
    assert_eq!(policy.call_or(FallbackOn::Rejection, || Ok(()), &[&calls_back, &calls_other]), Ok(()));
    assert_eq!(cb.metrics().rejected, rejected_before + 1, "the re-entry never reached the breaker");
    assert_eq!(other.breaker().metrics().successes, 1);
    // Outside the fallback the breaker is reachable again.
    cb.reset();
    assert_eq!(policy.call(|| Ok::<(), ()>(())), Ok(()));
}

#[test]
fn a_panicking_fallback_unwinds_and_leaves_everything_as_it_was() {
    let (cb, _) = touchy();
    let policy = Policy::new(cb.clone());
    let boom = |_: &CallError<()>| -> Result<(), ()> { panic!("fallback bug") };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        policy.call_or(FallbackOn::RejectionOrFailure, || Err(()), &[&boom])
    }));
    assert!(r.is_err(), "the panic goes on");
    assert_eq!(cb.metrics().failures, 1, "the call was counted once, before the fallback");
    // The cover stack was unwound: the same breaker is callable again here,
    // and fallbacks still nest.
    cb.reset();
    assert_eq!(policy.call(|| Ok::<(), ()>(())), Ok(()));
    cb.transition_to(State::ForcedOpen);
    let ok = |_: &CallError<()>| Ok(());
    assert_eq!(policy.call_or(FallbackOn::Rejection, || Ok(()), &[&ok]), Ok(()));
}

#[test]
fn fallbacks_nest_only_so_deep() {
    // Nine breakers, each forced open, each falling back to the next.
    let policies: Vec<Policy> = (0..10)
        .map(|_| {
            let cb = Arc::new(CircuitBreaker::builder().build().unwrap());
            cb.transition_to(State::ForcedOpen);
            Policy::new(cb)
        })
        .collect();
    fn chain(ps: &[Policy]) -> Result<usize, CallError<()>> {
        let next =
            |_: &CallError<()>| if ps.len() > 1 { chain(&ps[1..]).map_err(|_| ()) } else { Ok(ps.len()) };
        ps[0].call_or(FallbackOn::Rejection, || Ok(0), &[&next])
    }
    assert_eq!(chain(&policies[..8]), Ok(1), "8 deep is allowed");
    assert!(chain(&policies[..10]).is_err(), "10 deep is refused");
}

#[test]
fn a_blocking_call_past_its_timeout_counts_once_as_a_timeout() {
    let (cb, mock) = touchy();
    let policy = Policy::new(cb.clone()).call_timeout(Duration::from_secs(1));
    assert_eq!(policy.call(|| Ok::<u32, ()>(1)), Ok(1));
    let r = policy.call(|| {
        mock.advance(Duration::from_secs(2));
        Ok::<u32, ()>(2) // a late success: dropped
    });
    assert_eq!(r, Err(CallError::Timeout(Duration::from_secs(1))));
    let m = cb.metrics();
    assert_eq!((m.timeouts, m.failures, m.successes, m.calls), (1, 1, 1, 2));
    assert_eq!(cb.state(), State::Open);
}

#[test]
fn async_calls_go_through_the_policy() {
    let (cb, _) = touchy();
    let policy = Policy::new(cb.clone()).classifier(HttpStatus);
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    assert_eq!(rt.block_on(policy.call_async(async { Ok::<u16, u16>(404) })), Ok(404));
    assert_eq!(cb.metrics().ignored, 1);
    let _ = rt.block_on(policy.call_async(async { Ok::<u16, u16>(500) }));
    assert_eq!(cb.state(), State::Open);
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn a_future_past_its_timeout_is_dropped_and_counted_once() {
    let (cb, _) = touchy();
    let policy = Policy::new(cb.clone()).call_timeout(Duration::from_millis(100));
    let finished = Arc::new(AtomicU32::new(0));
    let f = finished.clone();
    let r = policy
        .call_async(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            f.fetch_add(1, Relaxed); // the late success: never reached
            Ok::<u32, ()>(7)
        })
        .await;
    assert_eq!(r, Err(CallError::Timeout(Duration::from_millis(100))));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(finished.load(Relaxed), 0, "the future was dropped");
    let m = cb.metrics();
    assert_eq!((m.timeouts, m.failures, m.successes, m.calls), (1, 1, 0, 1));
    // In time: a success.
    cb.reset();
    let r = policy
        .call_async(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<u32, ()>(8)
        })
        .await;
    assert_eq!(r, Ok(8));
}
