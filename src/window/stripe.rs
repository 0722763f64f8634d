//! Stripes: where the hot counters live, one `CachePadded` block per
//! group of threads.
//!
//! A counter that every thread writes is one cache line that every core
//! fights over. So each thread is given a home stripe, picked once per
//! thread, round robin, and moved on when its cursor CAS finds another
//! thread there (`rehome`, as Java's LongAdder does); the hot path writes
//! only there. Totals and rates are summed over the stripes only when
//! someone asks (a failure that may trip, a metrics snapshot).

use crate::sync::{thread_local, AtomicU64};
use std::cell::Cell;

/// One stripe of the hot counters, written by the threads homed on it.
#[derive(Default)]
#[repr(C)]
pub(crate) struct Stripe {
    /// Count window: the stripe's cursor `[laps 40 | position 24]` (see
    /// `count.rs`). Time window: outcomes recorded, all time.
    pub(crate) calls: AtomicU64,
    /// Count window: `2^40 * n` for every time `laps` wrapped.
    pub(crate) lapped: AtomicU64,
    /// Count window: where this stripe's cursor started.
    pub(crate) start: u64,
    /// This stripe's share of each era's live counts, by parity (see
    /// `era.rs`): outcomes, failures, slow calls in the window (count
    /// window), or outcomes since the era began (time window).
    pub(crate) live: [[AtomicU64; 3]; 2],
    pub(crate) failures: AtomicU64,
    pub(crate) slow: AtomicU64,
    pub(crate) ignored: AtomicU64,
    /// When the latest timed success and failure were recorded here: ns
    /// since the breaker was built, plus one (0: none yet).
    pub(crate) last_success: AtomicU64,
    pub(crate) last_failure: AtomicU64,
    pub(crate) rejected: AtomicU64,
}

// SAFETY: `u64`s (atomic or not) and arrays of them.
#[cfg(not(loom))]
unsafe impl crate::words::Plain for Stripe {}

#[cfg(not(loom))]
thread_local! {
    static HOME: Cell<usize> = const { Cell::new(usize::MAX) };
}
// (loom's macro predates `const` initialisers; same declaration otherwise.)
#[cfg(loom)]
thread_local! {
    static HOME: Cell<usize> = Cell::new(usize::MAX);
}

/// Moves the calling thread to the next stripe: called when its cursor CAS
/// found another thread on the same stripe. Threads that collide spread
/// out after a few calls and then stay apart.
#[cold]
pub(crate) fn rehome() {
    HOME.with(|h| h.set(h.get().wrapping_add(1) & (usize::MAX >> 1)));
}

/// The calling thread's home: a number picked once per thread (round
/// robin), the same for every breaker, moved on by `rehome`.
#[inline]
pub(crate) fn home() -> usize {
    HOME.with(|h| {
        let v = h.get();
        if v != usize::MAX {
            return v;
        }
        let v = crate::sync::next_thread_ticket() & (usize::MAX >> 1);
        h.set(v);
        v
    })
}
