//! The hot path allocates nothing: a counting global allocator watches a
//! million acquire/record pairs in every state.

use nanobreaker::{CircuitBreaker, Outcome, State, Window};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts, per thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CALLS: u64 = 1_000_000;

/// Allocations made by `f` on this thread, after one warm-up call (which may
/// set up per-thread state once: the stripe home, arc-swap's debt node).
fn allocations(mut f: impl FnMut(u64)) -> u64 {
    f(0);
    let before = ALLOCATIONS.with(Cell::get);
    for i in 1..=CALLS {
        f(i);
    }
    ALLOCATIONS.with(Cell::get) - before
}

fn breaker(window: Window, slow: bool) -> CircuitBreaker {
    let b = CircuitBreaker::builder().window(window).failure_rate_threshold(1.0).half_open_permits(511);
    let b = if slow { b.slow_call(Duration::from_secs(10), 1.0) } else { b };
    b.build().unwrap()
}

#[test]
fn no_allocation_per_call_in_any_state() {
    let windows = [Window::count(100), Window::time(Duration::from_secs(60), 10)];
    for window in windows {
        for slow in [false, true] {
            let cb = breaker(window, slow);
            // Closed: successes, and failures that evaluate the window (one
            // in two, so the rate stays below 1.0 and the state closed).
            let n = allocations(|i| {
                let p = cb.acquire().unwrap();
                cb.record(p, if i % 2 == 0 { Outcome::Failure } else { Outcome::Success });
            });
            assert_eq!((n, cb.state()), (0, State::Closed), "closed, {window:?}, slow rule {slow}");

            for state in [State::MetricsOnly, State::Disabled] {
                cb.transition_to(state);
                let n = allocations(|i| {
                    let p = cb.acquire().unwrap();
                    cb.record(p, if i % 3 == 0 { Outcome::Failure } else { Outcome::Success });
                });
                assert_eq!(n, 0, "{state:?}, {window:?}");
            }

            for state in [State::Open, State::ForcedOpen] {
                cb.transition_to(state);
                let n = allocations(|_| assert!(cb.try_acquire().is_err()));
                assert_eq!(n, 0, "{state:?} rejecting, {window:?}");
            }

            cb.transition_to(State::HalfOpen);
            let n = allocations(|_| {
                let p = cb.acquire().unwrap();
                cb.record(p, Outcome::Ignored); // gives the slot back: stays half-open
            });
            assert_eq!((n, cb.state()), (0, State::HalfOpen), "half-open probes, {window:?}");
        }
    }
}
