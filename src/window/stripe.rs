//! Stripes: where the hot counters live, one `CachePadded` block per
//! group of threads.
//!
//! A counter that every thread writes is one cache line that every core
//! fights over. So each thread is given a home stripe, picked once per
//! thread, round robin, and the hot path writes only there. Totals and
//! rates are summed over the stripes only when someone asks (a failure that
//! may trip, a metrics snapshot).
//!
//! Threads that share a stripe move apart, as Java's LongAdder does, but
//! without a failed compare-and-swap to tell them (the hot path is one
//! `fetch_add`): each record leaves the thread's id in the stripe's
//! `owner` word, and a thread that finds someone else's id there twice in
//! a row moves to a stripe picked from its own id (`claim`), so two
//! colliding threads part instead of moving in step. A thread alone on its
//! stripe finds its own id: one load of a word in the line it just wrote.

use crate::sync::{thread_local, AtomicU64, Ordering};
use std::cell::Cell;

/// One stripe of the hot counters, written by the threads homed on it.
#[derive(Default)]
#[repr(C)]
pub(crate) struct Stripe {
    /// Count window: the stripe's cursor `[laps 17 | position 47]` (see
    /// `count.rs`). Time window: outcomes recorded, all time.
    pub(crate) calls: AtomicU64,
    /// Count window: `2^17 * n` for every time `laps` wrapped.
    pub(crate) lapped: AtomicU64,
    /// Count window: where this stripe's cursor started.
    pub(crate) start: u64,
    /// The id of the thread that recorded here last (see the module docs).
    pub(crate) owner: AtomicU64,
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

/// A thread's home: `[strike 1 | id 63]`. The id is unique to the thread
/// (a ticket, salted per process; never 0, which is a stripe no thread has
/// claimed) and its low bits pick the stripe; the strike bit says the
/// thread found another thread's id on its stripe at its last record. A
/// thread alone never moves, so one thread sees an exact ring (see
/// `count.rs`).
const STRIKE: u64 = 1 << 63;
/// No home yet.
const UNSET: u64 = u64::MAX;

#[cfg(not(loom))]
thread_local! {
    static HOME: Cell<u64> = const { Cell::new(UNSET) };
}
// (loom's macro predates `const` initialisers; same declaration otherwise.)
#[cfg(loom)]
thread_local! {
    static HOME: Cell<u64> = Cell::new(UNSET);
}

/// The calling thread's home (see `STRIKE`): picked once per thread,
/// round robin, the same for every breaker, moved on by `claim`.
///
/// Nothing here or in `check` can panic (`try_with`, not `with`: a thread
/// whose thread-locals are gone records on stripe 1 with a strike): they
/// are on the path the C ABI runs outside its panic boundary.
#[inline(always)]
pub(crate) fn home() -> u64 {
    let v = HOME.try_with(Cell::get).unwrap_or(GONE);
    if v != UNSET {
        return v;
    }
    first_home()
}

/// A thread's first record: its ticket.
#[cold]
fn first_home() -> u64 {
    let v = (crate::sync::next_thread_ticket() as u64 & !STRIKE).max(1);
    set_home(v);
    v
}

/// The home of a thread whose thread-locals are gone.
const GONE: u64 = 1 | STRIKE;

fn set_home(v: u64) {
    let _ = HOME.try_with(|h| h.set(v));
}

/// Notes that the calling thread, at `home`, recorded on `stripe`: the
/// whole cost for a thread alone on its stripe is this load and compare.
#[inline]
pub(crate) fn check(stripe: &Stripe, home: u64) {
    // Relaxed: a hint of who else records here; nothing is published.
    if stripe.owner.load(Ordering::Relaxed) != home {
        claim(stripe, home);
    }
}

/// The stripe's owner is not the caller (or the caller carries a strike):
/// take the stripe, and move on at the second strike in a row.
#[cold]
fn claim(stripe: &Stripe, home: u64) {
    let id = home & !STRIKE;
    // Relaxed: as in `check`.
    let owner = stripe.owner.load(Ordering::Relaxed);
    if owner == id {
        return set_home(id); // alone again: the strike is cleared
    }
    // Relaxed: as in `check`.
    stripe.owner.store(id, Ordering::Relaxed);
    // A stripe no thread has claimed is not a collision.
    let next = match (owner, home & STRIKE) {
        (0, _) => home,
        (_, 0) => home | STRIKE,
        _ => moved(id),
    };
    set_home(next);
}

/// The id a thread moves to: its own id, mixed (splitmix64's finalizer, a
/// bijection in which every output bit depends on every input bit), so two
/// threads that collide on one stripe (equal low bits, different ids)
/// leave for unrelated stripes.
fn moved(id: u64) -> u64 {
    let mut z = id;
    z = (z ^ z >> 30).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ z >> 27).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ z >> 31) & !STRIKE).max(1) // 0 is "no owner"
}

/// Forgets the calling thread's home: its next record takes a new ticket.
/// For a forked child (see `sync::next_thread_ticket`).
#[cfg(all(feature = "shared", not(loom)))]
pub(crate) fn forget_home() {
    set_home(UNSET);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn colliding_threads_part_and_a_lone_thread_stays() {
        let stripe = Stripe::default();
        HOME.with(|h| h.set(8));
        for _ in 0..3 {
            check(&stripe, home());
            assert_eq!(home(), 8, "a stripe no one claimed is taken without a strike");
            assert_eq!(stripe.owner.load(Ordering::Relaxed), 8);
        }
        // A strike carried from another breaker's stripe is cleared by a
        // record on a stripe the thread holds, and never moves it.
        HOME.with(|h| h.set(8 | STRIKE));
        check(&stripe, home());
        assert_eq!(home(), 8, "alone: the strike is cleared");
        let fresh = Stripe::default();
        HOME.with(|h| h.set(8 | STRIKE));
        check(&fresh, home());
        assert_eq!(home(), 8 | STRIKE, "an unclaimed stripe is no second strike");
        // Another thread (id 16: the same stripe for up to 8 stripes) records
        // between each of ours.
        HOME.with(|h| h.set(8));
        for _ in 0..2 {
            stripe.owner.store(16, Ordering::Relaxed);
            check(&stripe, home());
        }
        let (a, b) = (home(), moved(16));
        assert_ne!(a, 8, "two strikes in a row: moved");
        assert_ne!(a & 7, b & 7, "the two colliding threads leave for different stripes of 8");
        assert_eq!(a & STRIKE, 0);
    }

    #[test]
    fn two_threads_on_one_stripe_move_apart() {
        // Two threads start on stripe 0 of 8 (ids 8 and 16) and record on
        // the same breaker's stripes until each is alone on its own.
        let stripes: std::sync::Arc<Vec<Stripe>> =
            std::sync::Arc::new((0..8).map(|_| Stripe::default()).collect());
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let threads: Vec<_> = [8u64, 16]
            .into_iter()
            .map(|id| {
                let (stripes, barrier) = (stripes.clone(), barrier.clone());
                std::thread::spawn(move || {
                    HOME.with(|h| h.set(id));
                    barrier.wait();
                    // Both threads meet every 1024 records (the same count
                    // for both, so neither waits alone) and stop once two
                    // stripes are owned, or after 2^22 records.
                    let mut calls = 0u64;
                    loop {
                        let h = home();
                        let stripe = &stripes[(h & 7) as usize];
                        // Relaxed: as in `advance`.
                        stripe.calls.fetch_add(1, Ordering::Relaxed);
                        check(stripe, h);
                        calls += 1;
                        if calls % 1024 == 0 {
                            barrier.wait();
                            let owned =
                                stripes.iter().filter(|s| s.owner.load(Ordering::Relaxed) != 0).count();
                            let mine = home() & 7;
                            barrier.wait();
                            if owned == 2 || calls == 1 << 22 {
                                return mine;
                            }
                        }
                    }
                })
            })
            .collect();
        let homes: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_ne!(homes[0], homes[1], "the two threads still share stripe {}", homes[0]);
    }
}
