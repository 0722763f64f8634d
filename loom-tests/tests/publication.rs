//! Model 8: what a generation needs is there before anyone sees it. (The
//! losing contender's late publication is checked by hand, step by step, in
//! `src/transition.rs`'s tests: its window is deeper than loom's bound.)
#![cfg(loom)]

use loom_tests::{breaker, fail_in_thread};
use nanobreaker::{Rejected, State};
use std::time::Duration;

/// A rejection from a breaker just tripped (open wait 1 s, mock clock
/// standing still) must carry the whole wait.
fn check(r: &Rejected) {
    assert_eq!(
        (r.state(), r.retry_after()),
        (State::Open, Duration::from_secs(1)),
        "a deadline not yet published"
    );
}

/// Model 8: a call racing a trip sees the breaker closed, or open with its
/// deadline: never open without one (which would read as a wait already
/// over and start a trial at once).
#[test]
fn a_new_state_is_never_seen_without_its_deadline() {
    loom::model(|| {
        let (cb, _, seen) = breaker(|b| b.minimum_calls(1));
        let tripper = fail_in_thread(&cb);
        if let Err(r) = cb.acquire() {
            check(&r);
        }
        tripper.join().unwrap();
        assert_eq!(seen.path(), [(State::Closed, State::Open)]);
        check(&cb.acquire().unwrap_err());
    });
}
