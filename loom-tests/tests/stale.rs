//! Model 2: stale generations.
#![cfg(loom)]

use loom::thread;
use loom_tests::breaker;
use nanobreaker::{Outcome, State};
use std::time::Duration;

/// Model 2: A success issued while closed, reported while the breaker trips and
/// starts a trial, is never counted in the trial: it can neither close the
/// breaker nor take a probe's place. Every outcome is counted exactly once,
/// as a call or as ignored.
#[test]
fn a_stale_success_never_closes_the_breaker() {
    loom::model(|| {
        let (cb, mock, seen) = breaker(|b| b.half_open_permits(1).failure_rate_threshold(0.5));
        let old = cb.acquire().unwrap(); // issued in Closed, generation 0
        let stale = {
            let cb = cb.clone();
            thread::spawn(move || cb.record(old, Outcome::Success))
        };
        // Trip, wait, probe, and the probe fails.
        cb.try_acquire().unwrap().failure();
        assert_eq!(cb.state(), State::Open);
        mock.advance(Duration::from_secs(1));
        let probe = cb.acquire().unwrap();
        cb.record(probe, Outcome::Failure);
        stale.join().unwrap();

        assert_eq!(cb.state(), State::Open, "{:?}", seen.path());
        assert_eq!(seen.count(State::HalfOpen, State::Closed), 0);
        let m = cb.metrics();
        assert_eq!(m.calls + m.ignored, 3, "each outcome counted once: {m:?}");
        assert_eq!(m.failures, 2);
    });
}

/// Model 2b: A stale failure racing a probe's success never reopens the breaker.
#[test]
fn a_stale_failure_never_reopens_the_breaker() {
    loom::model(|| {
        let (cb, mock, seen) = breaker(|b| b.half_open_permits(1));
        // Issued in generation 0: the trial is generation 2, the same
        // parity, so it shares the trial's per-era words.
        let old = cb.acquire().unwrap();
        cb.transition_to(State::Open);
        mock.advance(Duration::from_secs(1));
        let probe = cb.acquire().unwrap(); // the trial's one probe
        let stale = {
            let cb = cb.clone();
            thread::spawn(move || cb.record(old, Outcome::Failure))
        };
        cb.record(probe, Outcome::Success);
        stale.join().unwrap();
        assert_eq!(cb.state(), State::Closed, "{:?}", seen.path());
        assert_eq!(cb.metrics().failures, 0);
    });
}
