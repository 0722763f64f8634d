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
//! `owner` word. A thread alone finds its own id there: one load of a word
//! in the line it just wrote. A thread that finds another's id takes the
//! stripe back and carries a strike for its next `PATIENCE` records on
//! that stripe; another thread's id found again while the strike lasts
//! means the two take turns on the line, and the thread moves to a stripe
//! mixed from its own id (`claim`), so two colliding threads part rather
//! than move in step. A stripe no thread has claimed is no collision, and
//! a breaker of one stripe has nowhere to move to, so it never checks.

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
    /// Count window: the successes CPU `k` (this stripe's number) counted
    /// while the ring was clean, moving no cursor (see `count.rs`);
    /// written only by per-CPU adds (`sync::per_cpu`).
    pub(crate) solo: AtomicU64,
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

/// A thread's home: `[strike 8 | id 56]`. The id is unique to the thread
/// (a ticket plus one, salted per process; never 0, which is a stripe no
/// thread has claimed) and its low bits pick the stripe. `strike` counts
/// down the records a strike lasts (0: none); while it lasts the home
/// differs from every owner word, so each record takes `claim`. A thread
/// alone moves only if it finds the ids of threads gone on two stripes
/// within `PATIENCE` records, and stays once it holds the stripes it
/// records on, so one thread sees an exact ring (see `count.rs`).
const ID_BITS: u32 = 56;
const ID_MASK: u64 = (1 << ID_BITS) - 1;
/// How many of its own records in a row a thread must make on its stripe,
/// after finding another thread's id there, before that stops counting
/// against it: longer than the runs two threads hammering one line make
/// between each other's records.
const PATIENCE: u64 = 255;
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

/// The calling thread's home (see `ID_BITS`): picked once per thread,
/// round robin, the same for every breaker, moved on by `claim`.
///
/// Nothing here or in `check` can panic (`try_with`, not `with`: a thread
/// whose thread-locals are gone records on stripe 1 and never moves):
/// they are on the path the C ABI runs outside its panic boundary.
#[inline(always)]
pub(crate) fn home() -> u64 {
    let v = HOME.try_with(Cell::get).unwrap_or(GONE);
    if v != UNSET {
        return v;
    }
    first_home()
}

/// The calling thread's id (its home without the strike): its low bits
/// pick its stripe. For the C ABI's fast path (`ffi/fast/`).
#[cfg(feature = "capi")]
pub(crate) fn thread_id() -> u64 {
    home() & ID_MASK
}

/// Makes `home` (a whole home, strike and all, as this gave it; 0 changes
/// nothing) the calling thread's, and returns the one it had. For the C
/// ABI's fast path (`ffi/fast/`): a binding lends its own callers' homes
/// to the thread that records for them, strikes included, so that they
/// part when they collide as threads do.
#[cfg(feature = "capi")]
pub(crate) fn swap_home(home: u64) -> u64 {
    let old = self::home();
    if home != 0 {
        set_home(home);
    }
    old
}

/// A new id: the next ticket, salted (see `sync::next_thread_ticket`).
pub(crate) fn new_id() -> u64 {
    ((crate::sync::next_thread_ticket() as u64).wrapping_add(1) & ID_MASK).max(1)
}

/// A thread's first record: its ticket.
#[cold]
fn first_home() -> u64 {
    let v = new_id();
    set_home(v);
    v
}

/// The home of a thread whose thread-locals are gone.
const GONE: u64 = 1;

fn set_home(v: u64) {
    let _ = HOME.try_with(|h| h.set(v));
}

/// Notes that the calling thread, at `home`, recorded on `stripe`: the
/// whole cost for a thread alone on its stripe is this load and compare.
#[inline]
pub(crate) fn check(stripe: &Stripe, home: u64) {
    // Relaxed: a hint of who else records here; nothing is published.
    let owner = stripe.owner.load(Ordering::Relaxed);
    if owner != home {
        claim(stripe, home, owner);
    }
}

/// The stripe's `owner` is not the caller's home: another thread recorded
/// here, or the caller carries a strike (see the module docs).
#[cold]
fn claim(stripe: &Stripe, home: u64, owner: u64) {
    if home == 0 {
        return; // a breaker of one stripe (see `Windows::homed`): nowhere to go
    }
    let (id, strike) = (home & ID_MASK, home >> ID_BITS);
    if owner == id {
        // One more record of its own: the strike wears off.
        return set_home(id | strike.saturating_sub(1) << ID_BITS);
    }
    // Relaxed: as in `check`.
    stripe.owner.store(id, Ordering::Relaxed);
    if owner == 0 {
        return; // a stripe no thread has claimed is no collision
    }
    set_home(if strike == 0 { id | PATIENCE << ID_BITS } else { moved(id) });
}

/// The id a thread moves to: its own id, mixed (splitmix64's finalizer, a
/// bijection in which every output bit depends on every input bit), so two
/// threads that collide on one stripe (equal low bits, different ids)
/// leave for unrelated stripes.
fn moved(id: u64) -> u64 {
    let mut z = id;
    z = (z ^ z >> 30).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ z >> 27).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ z >> 31) & ID_MASK).max(1) // 0 is "no owner"
}

/// Forgets the calling thread's home: its next record takes a new ticket.
/// For a forked child (see `sync::next_thread_ticket`).
#[cfg(all(feature = "shared", unix, not(loom)))]
pub(crate) fn forget_home() {
    set_home(UNSET);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Plays two threads, ids `a` and `b`, taking turns on one stripe in
    /// runs of `run_a` and `run_b` records, `rounds` times; returns their
    /// homes after.
    fn take_turns(stripe: &Stripe, a: u64, b: u64, run_a: u32, run_b: u32, rounds: u32) -> (u64, u64) {
        let (mut ha, mut hb) = (a, b);
        for _ in 0..rounds {
            for (h, run) in [(&mut ha, run_a), (&mut hb, run_b)] {
                set_home(*h);
                for _ in 0..run {
                    if home() & 7 == a & 7 {
                        check(stripe, home()); // still on the shared stripe
                    }
                }
                *h = home();
            }
        }
        (ha, hb)
    }

    #[test]
    fn a_lone_thread_stays_and_an_unclaimed_stripe_is_no_collision() {
        let stripe = Stripe::default();
        set_home(8);
        for _ in 0..3 {
            check(&stripe, home());
            assert_eq!(home(), 8, "a stripe no one claimed is taken without a strike");
            assert_eq!(stripe.owner.load(Ordering::Relaxed), 8);
        }
        // A visitor now and then: a strike that wears off, never a move.
        let (a, _) = take_turns(&stripe, 8, 16, 1_000, 1, 50);
        assert_eq!(a & ID_MASK, 8, "a thread that mostly records alone stays");
    }

    #[test]
    fn a_one_stripe_breaker_never_touches_the_threads_home() {
        // `Windows::homed` passes home 0 for a breaker of one stripe; an
        // owner left there (a region of an older build, or a hostile one)
        // must not give the thread id 0.
        let stripe = Stripe::default();
        stripe.owner.store(12_345, Ordering::Relaxed);
        set_home(8);
        check(&stripe, 0);
        assert_eq!(home(), 8);
        assert_eq!(stripe.owner.load(Ordering::Relaxed), 12_345);
    }

    #[test]
    fn threads_taking_turns_on_one_stripe_part() {
        // Runs of 1 (fine-grained contention) and of 20 (two cores trading
        // one cache line): one of the two moves off the shared stripe.
        for run in [1, 20] {
            let stripe = Stripe::default();
            let (a, b) = take_turns(&stripe, 8, 16, run, run, 40);
            assert!(a & 7 != 0 || b & 7 != 0, "runs of {run}: both still on stripe 0 ({a:#x}, {b:#x})");
        }
    }

    #[test]
    fn two_colliding_threads_leave_for_different_stripes() {
        // Both find each other at once: the mix sends them apart (for these
        // ids, to different stripes of 8; one that lands on a stripe in use
        // again moves on again).
        assert_ne!(moved(8) & 7, moved(16) & 7);
    }
}
