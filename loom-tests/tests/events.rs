//! Model 10: transition events.
#![cfg(loom)]

use loom::thread;
use loom_tests::breaker;
use nanobreaker::State;

/// Two threads make transitions at once (a trip and an operator's): each
/// is delivered to the listener exactly once, in generation order, by the
/// time both calls have returned, with no one asking for delivery.
#[test]
fn every_transition_is_delivered_once_in_order() {
    loom::model(|| {
        let (cb, _, seen) = breaker(|b| b.minimum_calls(1));
        let tripper = {
            let cb = cb.clone();
            thread::spawn(move || {
                if let Ok(p) = cb.try_acquire() {
                    p.failure();
                }
            })
        };
        cb.transition_to(State::ForcedOpen);
        tripper.join().unwrap();
        let path = seen.path();
        let n = cb.metrics().generation as usize;
        assert_eq!(path.len(), n, "{n} transitions, delivered {path:?}");
        assert_eq!(path.first().map(|p| p.0), Some(State::Closed), "{path:?}");
        assert!(path.windows(2).all(|w| w[0].1 == w[1].0), "out of order: {path:?}");
        assert_eq!(path.last().map(|p| p.1), Some(State::ForcedOpen), "{path:?}");
    });
}
