//! Every transition, driven by a mock clock.

use nanobreaker::MockClock;
use nanobreaker::{
    CircuitBreaker, Config, Error, HalfOpenPolicy, Outcome, Reason, State, Transition, Window,
    MAX_MINIMUM_CALLS_PER_BUCKET,
};
use std::future::Future;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);

/// A breaker on a mock clock, no jitter, recording its transitions.
fn breaker(
    f: impl FnOnce(nanobreaker::Builder) -> nanobreaker::Builder,
) -> (CircuitBreaker, MockClock, Arc<Mutex<Vec<Transition>>>) {
    let (clock, mock) = nanobreaker::Clock::mock();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let b = CircuitBreaker::builder()
        .clock(clock)
        .jitter(0.0)
        .minimum_calls(4)
        .window(Window::count(10))
        .open_wait(5 * SEC)
        .half_open_permits(2)
        .on_transition(move |t| s.lock().unwrap().push(*t));
    (f(b).build().unwrap(), mock, seen)
}

fn fail(cb: &CircuitBreaker, n: usize) {
    for _ in 0..n {
        cb.try_acquire().unwrap().failure();
    }
}

fn succeed(cb: &CircuitBreaker, n: usize) {
    for _ in 0..n {
        cb.try_acquire().unwrap().success();
    }
}

fn path(seen: &Mutex<Vec<Transition>>) -> Vec<(State, State, Reason)> {
    seen.lock().unwrap().iter().map(|t| (t.from, t.to, t.reason)).collect()
}

#[test]
fn trips_on_failure_rate_only_after_minimum_calls() {
    let (cb, _, seen) = breaker(|b| b);
    fail(&cb, 3);
    assert_eq!(cb.state(), State::Closed, "3 < minimum_calls");
    fail(&cb, 1);
    assert_eq!(cb.state(), State::Open);
    assert_eq!(path(&seen), [(State::Closed, State::Open, Reason::FailureRate)]);
}

#[test]
fn rate_below_threshold_stays_closed() {
    let (cb, _, _) = breaker(|b| b.failure_rate_threshold(0.5));
    for _ in 0..50 {
        succeed(&cb, 2);
        fail(&cb, 1);
    }
    assert_eq!(cb.state(), State::Closed);
    let m = cb.metrics();
    assert_eq!(m.window_calls, 10);
    assert!(m.failure_rate > 0.25 && m.failure_rate < 0.45, "{}", m.failure_rate);
}

#[test]
fn count_window_forgets_the_oldest() {
    let (cb, _, _) = breaker(|b| b.window(Window::count(4)).failure_rate_threshold(1.0));
    fail(&cb, 3);
    succeed(&cb, 1);
    assert_eq!(cb.metrics().window_failures, 3);
    succeed(&cb, 3);
    assert_eq!(cb.metrics().window_failures, 0, "all three failures aged out");
    assert_eq!(cb.state(), State::Closed);
}

#[test]
fn open_rejects_until_the_wait_then_half_open_closes_on_success() {
    let (cb, mock, seen) = breaker(|b| b);
    fail(&cb, 4);
    let r = cb.try_acquire().unwrap_err();
    assert_eq!((r.state(), r.retry_after()), (State::Open, 5 * SEC));
    mock.advance(2 * SEC);
    assert_eq!(cb.try_acquire().unwrap_err().retry_after(), 3 * SEC);
    mock.advance(3 * SEC);
    let p1 = cb.try_acquire().unwrap();
    assert_eq!(cb.state(), State::HalfOpen);
    let p2 = cb.try_acquire().unwrap();
    assert_eq!(cb.try_acquire().unwrap_err().state(), State::HalfOpen, "only 2 probes");
    p1.success();
    assert_eq!(cb.state(), State::HalfOpen);
    p2.success();
    assert_eq!(cb.state(), State::Closed);
    assert_eq!(cb.metrics().window_calls, 0, "a fresh window");
    assert_eq!(
        path(&seen),
        [
            (State::Closed, State::Open, Reason::FailureRate),
            (State::Open, State::HalfOpen, Reason::OpenWaitElapsed),
            (State::HalfOpen, State::Closed, Reason::ProbesSucceeded),
        ]
    );
    assert_eq!(cb.metrics().rejected, 3);
}

#[test]
fn failed_trials_back_off_exponentially_up_to_the_cap() {
    let (cb, mock, _) = breaker(|b| b.backoff(2.0, 12 * SEC).failure_rate_threshold(0.5));
    fail(&cb, 4);
    for expected in [5, 10, 12, 12] {
        assert_eq!(cb.try_acquire().unwrap_err().retry_after(), expected * SEC);
        mock.advance(expected * SEC);
        cb.try_acquire().unwrap().failure(); // 1 of 2 probes failed: rate 0.5
        assert_eq!(cb.state(), State::Open);
    }
    mock.advance(12 * SEC);
    succeed(&cb, 2);
    assert_eq!(cb.state(), State::Closed);
    fail(&cb, 4);
    assert_eq!(cb.try_acquire().unwrap_err().retry_after(), 5 * SEC, "closing resets the backoff");
}

#[test]
fn jitter_spreads_each_opening_within_bounds() {
    let (cb, mock, _) = breaker(|b| b.jitter(0.5).backoff(1.0, 10 * SEC));
    let mut waits = Vec::new();
    fail(&cb, 4);
    for _ in 0..20 {
        let w = cb.try_acquire().unwrap_err().retry_after();
        assert_eq!(cb.try_acquire().unwrap_err().retry_after(), w, "drawn once per opening");
        assert!(w >= SEC * 5 / 2 && w <= SEC * 15 / 2, "{w:?}");
        waits.push(w);
        mock.advance(8 * SEC);
        cb.try_acquire().unwrap().failure();
    }
    waits.sort();
    waits.dedup();
    assert!(waits.len() > 10, "jitter varies: {waits:?}");
}

#[test]
fn jitter_never_takes_the_wait_past_max_open_wait() {
    let (cb, mock, _) = breaker(|b| b.jitter(0.9).backoff(2.0, 6 * SEC));
    fail(&cb, 4);
    let mut at_cap = 0;
    for _ in 0..40 {
        let w = cb.try_acquire().unwrap_err().retry_after();
        assert!(w <= 6 * SEC, "{w:?} is past max_open_wait");
        at_cap += (w == 6 * SEC) as u32;
        mock.advance(6 * SEC);
        cb.try_acquire().unwrap().failure();
    }
    assert!(at_cap > 0, "the cap is reached");
}

#[test]
fn old_successes_in_a_time_window_do_not_hide_a_new_outage() {
    let (cb, mock, _) = breaker(|b| b.window(Window::time(10 * SEC, 10)).minimum_calls(10));
    succeed(&cb, 1000);
    mock.advance(11 * SEC); // the successes age out
    fail(&cb, 9);
    assert_eq!(cb.state(), State::Closed, "9 < minimum_calls");
    fail(&cb, 1);
    assert_eq!(cb.state(), State::Open);
}

#[test]
fn time_window_counts_only_the_last_length() {
    let (cb, mock, _) = breaker(|b| b.window(Window::time(10 * SEC, 5)).minimum_calls(1));
    fail(&cb, 1);
    // Trips at once (1 of 1 failed): reset and look at the window instead.
    cb.transition_to(State::MetricsOnly);
    fail(&cb, 2);
    mock.advance(4 * SEC);
    succeed(&cb, 2);
    assert_eq!(cb.metrics().window_calls, 4);
    mock.advance(6 * SEC);
    assert_eq!((cb.metrics().window_calls, cb.metrics().window_failures), (2, 0));
    mock.advance(4 * SEC);
    assert_eq!(cb.metrics().window_calls, 0);
}

#[test]
fn slow_calls_trip_the_slow_call_rule() {
    let (cb, mock, seen) = breaker(|b| b.slow_call(Duration::from_millis(500), 0.5));
    for _ in 0..4 {
        let p = cb.try_acquire().unwrap();
        mock.advance(Duration::from_millis(600));
        p.success();
    }
    assert_eq!(cb.state(), State::Open);
    assert_eq!(path(&seen)[0].2, Reason::SlowCallRate);
    assert_eq!(cb.metrics().slow_calls, 4);
}

#[test]
fn fast_calls_are_not_slow() {
    let (cb, mock, _) = breaker(|b| b.slow_call(Duration::from_millis(500), 0.5));
    for _ in 0..10 {
        let p = cb.try_acquire().unwrap();
        mock.advance(Duration::from_millis(499));
        p.success();
    }
    assert_eq!((cb.state(), cb.metrics().slow_calls), (State::Closed, 0));
}

#[test]
fn consecutive_failures_trip_and_a_success_restarts_the_count() {
    let (cb, _, seen) = breaker(|b| b.consecutive_failures(3).failure_rate_threshold(1.0).minimum_calls(100));
    fail(&cb, 2);
    succeed(&cb, 1);
    fail(&cb, 2);
    assert_eq!(cb.state(), State::Closed);
    fail(&cb, 1);
    assert_eq!(cb.state(), State::Open);
    assert_eq!(path(&seen)[0].2, Reason::ConsecutiveFailures);
}

#[test]
fn a_thundering_herd_in_half_open_admits_exactly_the_permits() {
    for _ in 0..20 {
        let (cb, mock, _) = breaker(|b| b.half_open_permits(3));
        fail(&cb, 4);
        mock.advance(5 * SEC);
        let cb = Arc::new(cb);
        let barrier = Arc::new(Barrier::new(8));
        let admitted: Vec<_> = (0..8)
            .map(|_| {
                let (cb, barrier) = (cb.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    cb.acquire().ok()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect();
        assert_eq!(admitted.len(), 3);
        assert_eq!(cb.metrics().half_open_in_flight, 3);
        for p in admitted {
            cb.record(p, Outcome::Success);
        }
        assert_eq!(cb.state(), State::Closed);
    }
}

#[test]
fn a_slow_success_from_before_a_trip_does_not_count() {
    let (cb, mock, _) = breaker(|b| b.half_open_permits(1));
    let old = cb.try_acquire().unwrap(); // issued while closed
    fail(&cb, 4);
    mock.advance(5 * SEC);
    let probe = cb.try_acquire().unwrap();
    assert_eq!(cb.state(), State::HalfOpen);
    old.success(); // stale: must not close the breaker
    assert_eq!(cb.state(), State::HalfOpen);
    assert_eq!(cb.metrics().half_open_in_flight, 1);
    probe.failure();
    assert_eq!(cb.state(), State::Open);
    let m = cb.metrics();
    assert_eq!((m.calls, m.successes, m.ignored), (5, 0, 1));
}

#[test]
fn a_stale_failure_does_not_reopen() {
    let (cb, mock, _) = breaker(|b| b);
    let old = cb.acquire().unwrap();
    fail(&cb, 4);
    mock.advance(5 * SEC);
    succeed(&cb, 2);
    assert_eq!(cb.state(), State::Closed);
    fail(&cb, 3);
    cb.record(old, Outcome::Failure); // would be the 4th failure of 4
    assert_eq!(cb.state(), State::Closed);
    assert_eq!(cb.metrics().window_failures, 3);
}

#[test]
fn probes_that_never_report_end_the_trial_after_half_open_max_wait() {
    let (cb, mock, seen) = breaker(|b| b.half_open_max_wait(10 * SEC).backoff(2.0, 60 * SEC));
    fail(&cb, 4);
    mock.advance(5 * SEC);
    let lost: Vec<_> = (0..2).map(|_| cb.acquire().unwrap()).collect(); // never reported
    mock.advance(9 * SEC);
    assert_eq!(cb.try_acquire().unwrap_err().retry_after(), SEC);
    mock.advance(SEC);
    let r = cb.try_acquire().unwrap_err();
    assert_eq!((r.state(), r.retry_after()), (State::Open, 10 * SEC));
    mock.advance(10 * SEC);
    succeed(&cb, 2);
    assert_eq!(cb.state(), State::Closed);
    for p in lost {
        cb.record(p, Outcome::Failure); // late and stale
    }
    assert_eq!(cb.state(), State::Closed);
    assert!(path(&seen).contains(&(State::HalfOpen, State::Open, Reason::HalfOpenTimeout)));
}

#[test]
fn a_dropped_permit_gives_back_its_half_open_slot() {
    let (cb, mock, _) = breaker(|b| b.half_open_permits(1));
    fail(&cb, 4);
    mock.advance(5 * SEC);
    drop(cb.try_acquire().unwrap());
    assert_eq!(cb.state(), State::HalfOpen);
    assert_eq!(cb.metrics().half_open_in_flight, 0);
    cb.try_acquire().unwrap().ignore();
    succeed(&cb, 1);
    assert_eq!(cb.state(), State::Closed);
    assert_eq!(cb.metrics().ignored, 2);
}

#[test]
fn under_the_rate_policy_a_trial_reopens_once_the_rate_cannot_fall_below() {
    let (cb, mock, _) = breaker(|b| b.half_open_permits(4).half_open_policy(HalfOpenPolicy::FailureRate));
    fail(&cb, 4);
    mock.advance(5 * SEC);
    succeed(&cb, 1);
    fail(&cb, 1);
    assert_eq!(cb.state(), State::HalfOpen, "1 of 4 failed: the trial goes on");
    fail(&cb, 1); // 2 of 4 permits failed: the rate can no longer fall below 0.5
    assert_eq!(cb.state(), State::Open);
}

#[test]
fn by_default_the_first_failed_probe_reopens_and_all_permits_must_succeed() {
    let (cb, mock, seen) = breaker(|b| b.half_open_permits(4));
    fail(&cb, 4);
    mock.advance(5 * SEC);
    succeed(&cb, 3);
    assert_eq!(cb.state(), State::HalfOpen);
    fail(&cb, 1);
    assert_eq!(cb.state(), State::Open, "one failure reopens");
    mock.advance(10 * SEC);
    succeed(&cb, 4);
    assert_eq!(cb.state(), State::Closed, "four successes close");
    let reasons: Vec<_> = path(&seen).into_iter().map(|p| p.2).collect();
    assert!(reasons.contains(&Reason::ProbesFailed) && reasons.ends_with(&[Reason::ProbesSucceeded]));
}

#[test]
fn a_slow_probe_reopens_under_the_default_policy() {
    let (cb, mock, seen) = breaker(|b| b.slow_call(SEC, 1.0).half_open_permits(3));
    fail(&cb, 4);
    mock.advance(5 * SEC);
    let p = cb.try_acquire().unwrap();
    mock.advance(2 * SEC);
    p.success(); // slow
    assert_eq!(cb.state(), State::Open);
    assert_eq!(path(&seen).last().unwrap().2, Reason::ProbesSlow);
}

#[test]
fn a_panicking_listener_does_not_break_the_breaker() {
    let (cb, mock, seen) = breaker(|b| b.on_transition(|_| panic!("listener bug")));
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    fail(&cb, 4);
    mock.advance(5 * SEC);
    succeed(&cb, 2);
    std::panic::set_hook(quiet);
    assert_eq!(cb.state(), State::Closed);
    assert_eq!(path(&seen).len(), 3, "the other listener saw every transition");
}

#[test]
fn operator_states() {
    let (cb, _, _) = breaker(|b| b);
    assert!(cb.transition_to(State::Disabled));
    fail(&cb, 20);
    assert_eq!((cb.state(), cb.metrics().calls), (State::Disabled, 0), "records nothing");

    cb.transition_to(State::MetricsOnly);
    fail(&cb, 20);
    let m = cb.metrics();
    assert_eq!((m.state, m.window_failures, m.failure_rate), (State::MetricsOnly, 10, 1.0), "never trips");

    cb.transition_to(State::ForcedOpen);
    let r = cb.try_acquire().unwrap_err();
    assert_eq!((r.state(), r.retry_after()), (State::ForcedOpen, Duration::MAX));

    cb.reset();
    assert_eq!(cb.state(), State::Closed);
    assert_eq!(cb.metrics().window_calls, 0);
    succeed(&cb, 1);
}

#[test]
fn manual_open_waits_then_probes() {
    let (cb, mock, _) = breaker(|b| b);
    cb.transition_to(State::Open);
    assert_eq!(cb.try_acquire().unwrap_err().retry_after(), 5 * SEC);
    mock.advance(5 * SEC);
    assert!(cb.try_acquire().is_ok());
    assert_eq!(cb.state(), State::HalfOpen);
}

#[test]
fn every_bad_config_value_names_its_field() {
    type Mutation = fn(&mut Config);
    let cases: Vec<(Mutation, &str)> = vec![
        (|c| c.failure_rate_threshold = 0.0, "failure_rate_threshold"),
        (|c| c.failure_rate_threshold = 1.01, "failure_rate_threshold"),
        (|c| c.failure_rate_threshold = f64::NAN, "failure_rate_threshold"),
        (|c| c.minimum_calls = 0, "minimum_calls"),
        (|c| c.window = Window::count(0), "window"),
        (|c| c.window = Window::count(u32::MAX), "window"),
        (|c| c.window = Window::time(SEC, 0), "window"),
        (|c| c.window = Window::time(Duration::from_millis(9), 10), "window"),
        (
            |c| {
                c.window = Window::time(SEC, 2);
                c.minimum_calls = 2 * MAX_MINIMUM_CALLS_PER_BUCKET + 1;
            },
            "minimum_calls",
        ),
        (|c| c.slow_call_duration = Some(Duration::ZERO), "slow_call_duration"),
        (|c| c.slow_call_rate_threshold = f64::NAN, "slow_call_rate_threshold"),
        (|c| c.slow_call_rate_threshold = -1.0, "slow_call_rate_threshold"),
        (|c| c.consecutive_failures = Some(0), "consecutive_failures"),
        (|c| c.open_wait = Duration::ZERO, "open_wait"),
        (|c| c.backoff_multiplier = 0.5, "backoff_multiplier"),
        (|c| c.backoff_multiplier = f64::NAN, "backoff_multiplier"),
        (|c| c.max_open_wait = Duration::from_secs(1), "max_open_wait"),
        (|c| c.max_open_wait = Duration::MAX, "max_open_wait"),
        (|c| c.jitter = 1.0, "jitter"),
        (|c| c.jitter = -0.1, "jitter"),
        (|c| c.jitter = f64::NAN, "jitter"),
        (|c| c.half_open_permits = 0, "half_open_permits"),
        (|c| c.half_open_permits = 512, "half_open_permits"),
        (|c| c.half_open_max_wait = Duration::ZERO, "half_open_max_wait"),
    ];
    for (mutate, field) in cases {
        let mut c = Config::default();
        mutate(&mut c);
        let err = CircuitBreaker::builder().config(c.clone()).build().unwrap_err();
        assert_eq!(err.field(), field, "{c:?}");
        assert!(err.to_string().starts_with(field));
        // Refused whole at run time too.
        let cb = CircuitBreaker::builder().build().unwrap();
        assert_eq!(cb.reconfigure(c).unwrap_err().field(), field);
        assert_eq!(cb.config(), Config::default());
    }
    assert_eq!(CircuitBreaker::builder().stripes(0).build().unwrap_err().field(), "stripes");
    assert_eq!(CircuitBreaker::builder().stripes(65).build().unwrap_err().field(), "stripes");
}

#[test]
fn reconfigure_applies_whole_and_keeps_the_window_shape() {
    let (cb, _, _) = breaker(|b| b);
    let mut c = cb.config();
    c.failure_rate_threshold = 1.0;
    c.minimum_calls = 6;
    cb.reconfigure(c.clone()).unwrap();
    fail(&cb, 5);
    assert_eq!(cb.state(), State::Closed);
    fail(&cb, 1);
    assert_eq!(cb.state(), State::Open);
    c.window = Window::count(11);
    assert_eq!(cb.reconfigure(c).unwrap_err().field(), "window");
}

#[test]
fn reconfigure_turns_on_the_slow_call_rule() {
    let (cb, mock, _) = breaker(|b| b);
    let mut c = cb.config();
    c.slow_call_duration = Some(SEC);
    c.slow_call_rate_threshold = 0.5;
    cb.reconfigure(c).unwrap();
    for _ in 0..4 {
        let p = cb.try_acquire().unwrap();
        mock.advance(2 * SEC);
        p.success();
    }
    assert_eq!(cb.state(), State::Open);
}

#[test]
fn listeners_see_transitions_in_order_with_their_time() {
    let (cb, mock, seen) = breaker(|b| b);
    let late = Arc::new(Mutex::new(0));
    let l = late.clone();
    cb.on_transition(move |_| *l.lock().unwrap() += 1);
    mock.advance(3 * SEC);
    fail(&cb, 4);
    let t = seen.lock().unwrap()[0];
    assert_eq!((t.at, t.generation), (3 * SEC, 1));
    assert_eq!(*late.lock().unwrap(), 1);
    assert!(cb.metrics().since_last_transition.is_zero());
}

#[test]
fn call_classifies_and_rejects() {
    let (cb, _, _) = breaker(|b| b);
    assert_eq!(cb.call(|| Ok::<_, &str>(1)), Ok(1));
    for _ in 0..3 {
        assert_eq!(cb.call(|| Err::<(), _>("boom")), Err(Error::Inner("boom")));
    }
    let mut ran = false;
    match cb.call(|| {
        ran = true;
        Ok::<_, ()>(())
    }) {
        Err(Error::Rejected(r)) => assert_eq!(r.state(), State::Open),
        other => panic!("{other:?}"),
    }
    assert!(!ran, "a rejected call is not made");
    let (cb, _, _) = breaker(|b| b);
    for _ in 0..10 {
        let _ = cb.call_with(|| Err::<(), _>(404), |_| Outcome::Ignored);
    }
    assert_eq!((cb.state(), cb.metrics().ignored), (State::Closed, 10));
}

#[test]
fn a_panicking_call_counts_as_a_failure_and_goes_on_unwinding() {
    let (cb, _, _) = breaker(|b| b);
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for _ in 0..4 {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cb.call(|| -> Result<(), ()> { panic!("boom") })
        }));
        assert!(r.is_err(), "the panic continues");
    }
    std::panic::set_hook(quiet);
    let m = cb.metrics();
    assert_eq!((m.failures, m.ignored), (4, 0));
    assert_eq!(cb.state(), State::Open, "four panics of four calls trip the breaker");
}

#[test]
fn a_permit_dropped_while_a_panic_unwinds_counts_as_a_failure() {
    let (cb, _, _) = breaker(|b| b);
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _permit = cb.try_acquire().unwrap();
        panic!("the caller's code panicked mid-call");
    }));
    std::panic::set_hook(quiet);
    drop(cb.try_acquire().unwrap()); // dropped normally: ignored
    let m = cb.metrics();
    assert_eq!((m.failures, m.ignored), (1, 1));
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[test]
fn call_async_records_and_a_cancelled_future_is_ignored() {
    let (cb, _, _) = breaker(|b| b);
    assert_eq!(block_on(cb.call_async(async { Ok::<_, ()>(3) })), Ok(3));
    assert_eq!(block_on(cb.call_async(async { Err::<(), _>(4) })), Err(Error::Inner(4)));
    {
        let fut = cb.call_async(std::future::pending::<Result<(), ()>>());
        let mut fut = std::pin::pin!(fut);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
    } // dropped mid-call
    let m = cb.metrics();
    assert_eq!((m.successes, m.failures, m.ignored), (1, 1, 1));
}

#[test]
fn memory_per_breaker() {
    let default = CircuitBreaker::builder().stripes(16).build().unwrap();
    assert!(default.memory_bytes() <= 4096, "{}", default.memory_bytes());
    let compact = CircuitBreaker::builder().stripes(1).window(Window::count(16)).build().unwrap();
    assert!(compact.memory_bytes() <= 1024, "{}", compact.memory_bytes());
}

#[test]
fn breaker_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<CircuitBreaker>();
}

#[test]
fn metrics_count_transitions_by_reason_opens_probes_and_last_outcomes() {
    let (cb, mock, _) = breaker(|b| b.half_open_permits(1));
    let m = cb.metrics();
    assert_eq!((m.since_last_success, m.since_last_failure, m.opens), (None, None, 0));
    succeed(&cb, 1);
    assert_eq!(cb.metrics().since_last_success, None, "an untimed success reads no clock");
    mock.advance(SEC);
    fail(&cb, 3); // 3 of 4: trips
    mock.advance(2 * SEC);
    assert_eq!(cb.metrics().since_last_failure, Some(2 * SEC));
    mock.advance(3 * SEC);
    cb.try_acquire().unwrap().failure(); // the probe fails: open again
    mock.advance(10 * SEC);
    cb.try_acquire().unwrap().success(); // this one closes it
    let m = cb.metrics();
    assert_eq!(m.opens, 2);
    assert_eq!((m.probes_succeeded, m.probes_failed), (1, 1));
    assert_eq!(m.transitions(Reason::FailureRate), 1);
    assert_eq!(m.transitions(Reason::OpenWaitElapsed), 2);
    assert_eq!(m.transitions(Reason::ProbesFailed), 1);
    assert_eq!(m.transitions(Reason::ProbesSucceeded), 1);
    assert_eq!(m.transitions_by_reason.iter().sum::<u64>(), m.generation);
    assert_eq!(m.since_last_failure, Some(10 * SEC));
}

#[test]
fn latency_is_recorded_only_when_asked_for() {
    let (cb, mock, _) = breaker(|b| b);
    cb.try_acquire().unwrap().success();
    assert_eq!(cb.latency(), None);
    let (cb, mock2, _) = breaker(|b| b.record_latency(true));
    drop(mock);
    for ms in [1u64, 2, 3, 100] {
        let p = cb.try_acquire().unwrap();
        mock2.advance(Duration::from_millis(ms));
        if ms == 100 {
            p.failure();
        } else {
            p.success();
        }
    }
    cb.try_acquire().unwrap().ignore(); // not a latency
    let h = cb.latency().unwrap();
    assert_eq!(h.count(), 4);
    assert_eq!(h.sum(), Duration::from_millis(106));
    assert!(h.quantile(0.5) >= Duration::from_millis(2) && h.quantile(0.5) <= Duration::from_millis(4));
    assert!(h.quantile(1.0) >= Duration::from_millis(100) && h.quantile(1.0) <= Duration::from_millis(200));
    let m = cb.metrics();
    assert_eq!(
        (m.since_last_success, m.since_last_failure),
        (Some(Duration::from_millis(100)), Some(Duration::ZERO))
    );
}

#[test]
fn a_trip_by_a_rate_tells_listeners_the_window_that_tripped_it() {
    let (cb, mock, seen) = breaker(|b| b);
    succeed(&cb, 1);
    fail(&cb, 3);
    mock.advance(5 * SEC);
    cb.try_acquire().unwrap().success();
    let seen = seen.lock().unwrap();
    let w = seen[0].window.expect("a trip by the failure rate carries its window");
    assert_eq!((seen[0].reason, w.calls, w.failures, w.slow_calls), (Reason::FailureRate, 4, 3, 0));
    assert_eq!(w.failure_rate(), 0.75);
    assert!(seen[1..].iter().all(|t| t.window.is_none()), "{seen:?}");
}
