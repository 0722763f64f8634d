//! The outcome windows and the striped counters behind them.
//!
//! # Why stripes
//!
//! A counter that every thread writes is one cache line that every core
//! fights over. So each thread is given a home *stripe* (a `CachePadded`
//! block of counters), picked once per thread, round robin, and the hot path
//! writes only there. Totals and rates are summed over the stripes only when
//! someone asks (a failure that may trip, a metrics snapshot).
//!
//! # Count window
//!
//! One ring of `n` slots shared by all stripes. Each stripe has its own
//! cursor, starting at `k * n / stripes`, and writes the slot at
//! `(start + cursor) % n`. A slot holds one outcome tagged with the
//! generation it was recorded in; only slots of the current generation are
//! counted, so a new `Closed` era starts empty without clearing anything, and
//! an outcome from an old era never counts.
//!
//! One thread always writes through the same cursor, so a single thread sees
//! an exact ring of its last `n` outcomes. Under concurrency every slot
//! still holds exactly one real outcome and none is counted twice, but which
//! `n` outcomes the ring holds is approximate: the cursors of different
//! stripes advance at their own speeds, so an outcome is overwritten after
//! `n` records on average instead of exactly. The error is bounded by the
//! ring: the window always holds `min(n, calls)` real outcomes of the
//! current generation, and with one thread or one stripe it is exact.
//!
//! A success writes its slot only if the slot holds something else, so in a
//! healthy breaker the ring stays read-only and shared by every core.
//!
//! # Time window
//!
//! Per stripe, `b` buckets of `length / b`. Each bucket keeps three words
//! (calls, failures, slow), each `[tag: 32 | count: 32]` where the tag is the
//! low 8 bits of the generation and the low 24 bits of the bucket's epoch
//! (time since the breaker was built, in bucket lengths). A record
//! compare-and-swaps one word: if the tag is its own it adds one; if the tag
//! is older it starts the bucket anew with a count of one (the bucket turn);
//! if the tag is newer the record belongs to a dead bucket and is dropped.
//! Turn and record are one atomic step, so no record in a live bucket is
//! lost and none from a dead bucket is counted. A reader counts only words
//! whose tag is of the current generation and within the last `b` epochs.
//! A 24-bit epoch wraps after 2^24 bucket lengths (4.6 hours of 1 ms
//! buckets, 194 days of 1 s buckets): a stripe left idle for exactly a
//! multiple of that could show one stale bucket for one window.

use crate::config::Window;
use crate::sync::{thread_local, AtomicU32, AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use std::cell::Cell;
use strength_reduce::StrengthReducedU64;

/// One stripe of the hot counters, written by the threads homed on it.
#[derive(Default)]
pub(crate) struct Stripe {
    /// Outcomes recorded (success or failure). In a count window, also the
    /// stripe's cursor into the ring.
    pub(crate) calls: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) slow: AtomicU64,
    pub(crate) ignored: AtomicU64,
    pub(crate) rejected: AtomicU64,
}

/// What a window holds, or what the totals add up to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

#[cfg(not(loom))]
thread_local! {
    static HOME: Cell<usize> = const { Cell::new(usize::MAX) };
}
// (loom's macro predates `const` initialisers; same declaration otherwise.)
#[cfg(loom)]
thread_local! {
    static HOME: Cell<usize> = Cell::new(usize::MAX);
}

/// The calling thread's home: a number picked once per thread, the same for
/// every breaker.
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

/// One outcome in a count-window slot: `[generation: 21 | present | slow | fail]`.
const PRESENT: u32 = 0b100;
const SLOW: u32 = 0b010;
const FAIL: u32 = 0b001;

/// The windows and the stripes, built once for a window shape.
pub(crate) struct Windows {
    stripes: Box<[CachePadded<Stripe>]>,
    stripe_mask: usize,
    kind: Kind,
}

enum Kind {
    Count {
        slots: Box<[AtomicU32]>,
        len: StrengthReducedU64,
        /// `log2(stripes)`: stripe `k` starts at `k * n >> shift`.
        shift: u32,
    },
    Time {
        /// Stripe-major: stripe `k` owns `words[k * stride ..][.. 3 * buckets]`.
        words: Box<[CachePadded<[AtomicU64; 16]>]>,
        stride: usize,
        buckets: u64,
        bucket_nanos: StrengthReducedU64,
    },
}

const EPOCH_BITS: u32 = 24;
const EPOCH_MASK: u32 = (1 << EPOCH_BITS) - 1;

fn tag(generation: u32, epoch: u64) -> u32 {
    (generation & 0xFF) << EPOCH_BITS | (epoch as u32 & EPOCH_MASK)
}

/// Whether tag `a` belongs to a later bucket than tag `b`.
fn newer(a: u32, b: u32) -> bool {
    let (ga, gb) = (a >> EPOCH_BITS, b >> EPOCH_BITS);
    if ga != gb {
        return (ga.wrapping_sub(gb) & 0xFF) < 0x80;
    }
    let d = (a & EPOCH_MASK).wrapping_sub(b & EPOCH_MASK) & EPOCH_MASK;
    d != 0 && d < 1 << (EPOCH_BITS - 1)
}

/// Adds one to the `[tag | count]` word for `tag`, turning the bucket if it
/// holds an older tag, dropping the record if it holds a newer one.
fn bump(word: &AtomicU64, tag: u32) {
    // Relaxed throughout: the word is self-contained (tag and count change in
    // one step) and publishes nothing else.
    let mut cur = word.load(Ordering::Relaxed);
    loop {
        let cur_tag = (cur >> 32) as u32;
        let new = if cur_tag == tag {
            if cur as u32 == u32::MAX {
                return; // saturated: 4 billion outcomes in one bucket of one stripe
            }
            cur + 1
        } else if newer(cur_tag, tag) {
            return;
        } else {
            (tag as u64) << 32 | 1
        };
        match word.compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => cur = actual,
        }
    }
}

impl Windows {
    pub(crate) fn new(window: Window, stripes: u32) -> Windows {
        let stripes = stripes.clamp(1, crate::config::MAX_STRIPES).next_power_of_two() as usize;
        let kind = match window {
            Window::Count(n) => Kind::Count {
                slots: (0..n).map(|_| AtomicU32::new(0)).collect(),
                len: StrengthReducedU64::new(n as u64),
                shift: stripes.trailing_zeros(),
            },
            Window::Time { length, buckets } => {
                let stride = (3 * buckets as usize).div_ceil(16);
                let bucket_nanos = (length / buckets).as_nanos() as u64;
                Kind::Time {
                    words: (0..stride * stripes)
                        .map(|_| CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))))
                        .collect(),
                    stride,
                    buckets: buckets as u64,
                    bucket_nanos: StrengthReducedU64::new(bucket_nanos),
                }
            }
        };
        Windows {
            stripes: (0..stripes).map(|_| CachePadded::new(Stripe::default())).collect(),
            stripe_mask: stripes - 1,
            kind,
        }
    }

    /// Whether recording needs the time.
    pub(crate) fn needs_clock(&self) -> bool {
        matches!(self.kind, Kind::Time { .. })
    }

    /// The stripe of the calling thread.
    #[inline]
    pub(crate) fn stripe(&self) -> (usize, &Stripe) {
        let k = home() & self.stripe_mask;
        (k, &self.stripes[k])
    }

    /// Records one success or failure of `generation`, at `now` (nanoseconds
    /// since the breaker was built; unused by count windows).
    #[inline]
    pub(crate) fn record(&self, generation: u32, failed: bool, slow: bool, now: u64) {
        let (k, stripe) = self.stripe();
        match &self.kind {
            Kind::Count { slots, len, shift } => {
                // Relaxed: the cursor only hands out positions; the slots it
                // points at carry their own data.
                let c = stripe.calls.fetch_add(1, Ordering::Relaxed);
                let start = (k as u64 * len.get()) >> shift;
                let i = (c.wrapping_add(start) % *len) as usize;
                let v = generation << 3 | PRESENT | (slow as u32) << 1 | failed as u32;
                // Relaxed: a slot is one self-contained value; readers need
                // no other memory to be ordered with it.
                if slots[i].load(Ordering::Relaxed) != v {
                    slots[i].store(v, Ordering::Relaxed);
                }
            }
            Kind::Time { words, stride, bucket_nanos, buckets, .. } => {
                let epoch = now / *bucket_nanos;
                let t = tag(generation, epoch);
                let base = k * stride * 16 + (epoch % *buckets) as usize * 3;
                let word = |i: usize| &words[(base + i) / 16][(base + i) % 16];
                bump(word(0), t);
                if failed {
                    bump(word(1), t);
                }
                if slow {
                    bump(word(2), t);
                }
                // Relaxed: a statistic, summed only for metrics.
                stripe.calls.fetch_add(1, Ordering::Relaxed);
            }
        }
        if failed {
            // Relaxed: statistics.
            stripe.failures.fetch_add(1, Ordering::Relaxed);
        }
        if slow {
            stripe.slow.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a probe outcome (half-open), which goes in the totals only.
    pub(crate) fn record_total(&self, failed: bool, slow: bool) {
        let (_, stripe) = self.stripe();
        // Relaxed: statistics. (In a count window this also moves the
        // cursor, which is harmless: a new generation starts with no slots.)
        stripe.calls.fetch_add(1, Ordering::Relaxed);
        if failed {
            stripe.failures.fetch_add(1, Ordering::Relaxed);
        }
        if slow {
            stripe.slow.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// What the window holds for `generation` at `now`.
    pub(crate) fn tally(&self, generation: u32, now: u64) -> Tally {
        let mut t = Tally::default();
        match &self.kind {
            Kind::Count { slots, .. } => {
                let want = (generation << 3 | PRESENT) & !(SLOW | FAIL);
                for s in slots.iter() {
                    // Relaxed: see `record`.
                    let v = s.load(Ordering::Relaxed);
                    if v & !(SLOW | FAIL) == want {
                        t.calls += 1;
                        t.failures += (v & FAIL) as u64;
                        t.slow += ((v & SLOW) >> 1) as u64;
                    }
                }
            }
            Kind::Time { words, stride, buckets, bucket_nanos } => {
                let epoch = now / *bucket_nanos;
                let live = |w: u64| {
                    let tg = (w >> 32) as u32;
                    let age = (epoch as u32).wrapping_sub(tg) & EPOCH_MASK;
                    tg >> EPOCH_BITS == generation & 0xFF && (age as u64) < *buckets
                };
                for k in 0..self.stripes.len() {
                    for b in 0..*buckets as usize {
                        let base = k * stride * 16 + b * 3;
                        let mut counts = [0u64; 3];
                        for (i, c) in counts.iter_mut().enumerate() {
                            // Relaxed: see `bump`.
                            let w = words[(base + i) / 16][(base + i) % 16].load(Ordering::Relaxed);
                            if live(w) {
                                *c = w & 0xFFFF_FFFF;
                            }
                        }
                        t.calls += counts[0];
                        t.failures += counts[1];
                        t.slow += counts[2];
                    }
                }
            }
        }
        t
    }

    /// Sums one counter over the stripes.
    pub(crate) fn sum(&self, field: impl Fn(&Stripe) -> &AtomicU64) -> u64 {
        // Relaxed: statistics; a snapshot taken while others record is
        // approximate anyway.
        self.stripes.iter().map(|s| field(s).load(Ordering::Relaxed)).fold(0, u64::wrapping_add)
    }

    /// Bytes on the heap.
    pub(crate) fn heap_bytes(&self) -> usize {
        let kind = match &self.kind {
            Kind::Count { slots, .. } => std::mem::size_of_val(&**slots),
            Kind::Time { words, .. } => std::mem::size_of_val(&**words),
        };
        kind + std::mem::size_of_val(&*self.stripes)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn count_window_is_an_exact_ring_for_one_thread() {
        let w = Windows::new(Window::Count(5), 4);
        for i in 0..12 {
            w.record(1, i % 3 == 0, false, 0);
        }
        // The last 5 of 0..12 are 7..12; failures at 9.
        assert_eq!(w.tally(1, 0), Tally { calls: 5, failures: 1, slow: 0 });
        assert_eq!(w.tally(2, 0), Tally::default(), "another generation sees nothing");
    }

    #[test]
    fn time_window_ages_out_buckets() {
        let w = Windows::new(Window::time(Duration::from_secs(10), 10), 2);
        let s = 1_000_000_000;
        w.record(3, true, false, 0);
        w.record(3, false, true, 5 * s);
        assert_eq!(w.tally(3, 9 * s), Tally { calls: 2, failures: 1, slow: 1 });
        assert_eq!(w.tally(3, 10 * s), Tally { calls: 1, failures: 0, slow: 1 });
        assert_eq!(w.tally(3, 15 * s), Tally::default());
        // A record in a reused bucket turns it; an old record into it is dropped.
        w.record(3, false, false, 20 * s);
        w.record(3, true, false, 10 * s);
        assert_eq!(w.tally(3, 20 * s), Tally { calls: 1, failures: 0, slow: 0 });
    }

    #[test]
    fn tags_order() {
        assert!(newer(tag(1, 5), tag(1, 4)));
        assert!(!newer(tag(1, 4), tag(1, 5)));
        assert!(newer(tag(2, 0), tag(1, 9)));
        assert!(newer(tag(0, 0), tag(255, 0)));
        assert!(!newer(tag(1, 4), tag(1, 4)));
    }
}
