//! Models 5 and 6: concurrent trips, and reconfigure racing decisions.
#![cfg(loom)]

use loom::thread;
use loom_tests::{breaker, fail_from_threads, fail_in_thread};
use nanobreaker::{State, Window};

/// Model 5: Concurrent trips: of several threads whose failures each pass the
/// threshold, exactly one performs Closed -> Open, and listeners see exactly
/// one transition event.
#[test]
fn exactly_one_thread_trips() {
    loom::model(|| {
        let (cb, _, seen) = breaker(|b| b.minimum_calls(1).failure_rate_threshold(0.5).stripes(2));
        fail_from_threads(&cb, 2);
        assert_eq!(cb.state(), State::Open);
        assert_eq!(seen.path(), [(State::Closed, State::Open)]);
    });
}

/// Model 5b: The same with the consecutive-failures rule.
#[test]
fn exactly_one_thread_trips_on_consecutive_failures() {
    loom::model(|| {
        let (cb, _, seen) =
            breaker(|b| b.consecutive_failures(2).failure_rate_threshold(1.0).minimum_calls(100).stripes(2));
        fail_from_threads(&cb, 2);
        assert_eq!(seen.path(), [(State::Closed, State::Open)]);
    });
}

/// Model 6: `reconfigure` racing a record: the trip decision sees the old config or
/// the new one, never a mix. Old: threshold 0.5, minimum 4. New: threshold
/// 1.0, minimum 2. With S, F, F in the window neither trips (3 < 4; 0.67 <
/// 1.0); only a mix (threshold 0.5 with minimum 2) would.
#[test]
fn reconfigure_is_never_seen_half_applied() {
    loom::model(|| {
        let (cb, _, seen) =
            breaker(|b| b.window(Window::count(4)).failure_rate_threshold(0.5).minimum_calls(4));
        cb.try_acquire().unwrap().success();
        cb.try_acquire().unwrap().failure();
        let reconf = {
            let cb = cb.clone();
            thread::spawn(move || {
                let mut c = cb.config();
                c.failure_rate_threshold = 1.0;
                c.minimum_calls = 2;
                cb.reconfigure(c).unwrap();
            })
        };
        cb.try_acquire().unwrap().failure();
        reconf.join().unwrap();
        assert_eq!(cb.state(), State::Closed, "a mixed config tripped: {:?}", seen.path());
        assert_eq!(cb.config().minimum_calls, 2);
    });
}

/// Model 5c: A trip racing a manual transition never overwrites it: the operator's
/// `ForcedOpen` is where the breaker ends. Every transition reaches the
/// listener exactly once, in order, by the time both calls have returned,
/// with no one asking for delivery (no lost wake-up in the event queue).
#[test]
fn a_trip_never_overwrites_a_manual_transition() {
    loom::model(|| {
        let (cb, _, seen) = breaker(|b| b.minimum_calls(1));
        let tripper = fail_in_thread(&cb);
        cb.transition_to(State::ForcedOpen);
        tripper.join().unwrap();
        assert_eq!(cb.state(), State::ForcedOpen, "{:?}", seen.path());
        let path = seen.path();
        let n = cb.metrics().generation as usize;
        assert_eq!(path.len(), n, "{n} transitions, delivered {path:?}");
        assert_eq!(path.first().map(|p| p.0), Some(State::Closed), "{path:?}");
        assert!(path.windows(2).all(|w| w[0].1 == w[1].0), "out of order: {path:?}");
        assert_eq!(path.last().map(|p| p.1), Some(State::ForcedOpen));
    });
}
