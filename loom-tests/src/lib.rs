//! Loom model checks of the nanobreaker engine. The models are in `tests/`;
//! run them with
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p loom-tests --profile loom
//! ```
//!
//! Without `--cfg loom` this crate is empty. Helpers shared by the models
//! live here.
#![cfg(loom)]

use nanobreaker::{Builder, CircuitBreaker, State, Transition, Window};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The transitions a breaker's listener saw, in delivery order.
#[derive(Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<Transition>>>);

impl Seen {
    /// (from, to) pairs.
    pub fn path(&self) -> Vec<(State, State)> {
        self.0.lock().unwrap().iter().map(|t| (t.from, t.to)).collect()
    }

    /// How many transitions went from `from` to `to`.
    pub fn count(&self, from: State, to: State) -> usize {
        self.path().iter().filter(|p| **p == (from, to)).count()
    }
}

/// A small breaker on a mock clock, with a listener, built by `f`.
pub fn breaker(f: impl FnOnce(Builder) -> Builder) -> (Arc<CircuitBreaker>, nanobreaker::MockClock, Seen) {
    let (clock, mock) = nanobreaker::Clock::mock();
    let seen = Seen::default();
    let s = seen.clone();
    let b = CircuitBreaker::builder()
        .clock(clock)
        .window(Window::count(4))
        .minimum_calls(1)
        .jitter(0.0)
        .stripes(1)
        .open_wait(Duration::from_secs(1))
        .on_transition(move |t| s.0.lock().unwrap().push(*t));
    (Arc::new(f(b).build().unwrap()), mock, seen)
}

/// Spawns `n` threads that each make one call and report it failed (if the
/// breaker lets them), and waits for them.
pub fn fail_from_threads(cb: &Arc<CircuitBreaker>, n: usize) {
    let threads: Vec<_> = (0..n).map(|_| fail_in_thread(cb)).collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// Spawns a thread that makes one call and reports it failed (if the
/// breaker lets it).
pub fn fail_in_thread(cb: &Arc<CircuitBreaker>) -> loom::thread::JoinHandle<()> {
    let cb = cb.clone();
    loom::thread::spawn(move || {
        if let Ok(p) = cb.try_acquire() {
            p.failure();
        }
    })
}
