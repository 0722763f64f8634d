//! The outcome windows and the striped counters behind them.
//!
//! # Why stripes
//!
//! A counter that every thread writes is one cache line that every core
//! fights over. So each thread is given a home *stripe* (a `CachePadded`
//! block of counters), picked once per thread, round robin, and moved on
//! when its cursor CAS finds another thread there (`rehome`); the hot path
//! writes only there. Totals and rates are summed over the stripes only when
//! someone asks (a failure that may trip, a metrics snapshot).
//!
//! # Count window
//!
//! One ring of `n` slots shared by all stripes. Each stripe has its own
//! cursor, starting `k / stripes` of the way round, that walks the ring one
//! slot per outcome (see `advance`: the cursor word holds the slot itself,
//! so no division is on the hot path). A slot holds one outcome tagged with
//! the generation it was recorded in; only slots of the current generation
//! are counted, so a new `Closed` era starts empty without clearing
//! anything, and an outcome from an old era never counts. The counts of
//! live outcomes, failures and slow calls are also kept per stripe, as
//! deltas (see `record_count`), and summed when a failure or slow call might
//! trip the breaker: O(stripes), not O(n). Read while others record, that
//! sum can be off by more than the records in flight, so it only filters:
//! when it says "trip", the ring itself is read to confirm (`tally`).
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
    /// Outcomes recorded (success or failure). In a count window this is
    /// the stripe's cursor `[laps: 40 | position: 24]` instead; see `advance`.
    calls: AtomicU64,
    /// Count window: `2^40 * n` for every time `laps` wrapped.
    lapped: AtomicU64,
    /// Count window: where this stripe's cursor started.
    start: u64,
    /// Count window: this stripe's share of the live counts (outcomes,
    /// failures, slow calls), each `[generation: 21 | count: 43]`; see
    /// `record_count`.
    live: [AtomicU64; 3],
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

/// Moves the calling thread to the next stripe: called when its cursor CAS
/// found another thread on the same stripe (LongAdder's rehash). Threads
/// that collide spread out after a few calls and then stay apart.
#[cold]
fn rehome() {
    HOME.with(|h| h.set(h.get().wrapping_add(1) & (usize::MAX >> 1)));
}

/// The calling thread's home: a number picked once per thread (round
/// robin), the same for every breaker, moved on by `rehome` when it
/// collides with another thread's.
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

/// A count-window cursor: `[laps: 40 | position: 24]`.
const POSITION_BITS: u32 = 24;
const POSITION_MASK: u64 = (1 << POSITION_BITS) - 1;

/// A live-count word: `[generation: 21 | count: 43]`.
const LIVE_BITS: u32 = 43;
const LIVE_MASK: u64 = (1 << LIVE_BITS) - 1;
const GEN_TAG_MASK: u32 = (1 << (64 - LIVE_BITS)) - 1;

/// Adds `delta` to the live-count `counter` for generation `generation`:
/// restarts a counter of an older generation, ignores `delta` if the
/// counter already belongs to a newer one.
fn add_live(counter: &AtomicU64, generation: u32, delta: i64) {
    if delta == 0 {
        return;
    }
    let generation = generation & GEN_TAG_MASK;
    // Relaxed: the word is self-contained (tag and count change in one
    // step) and publishes nothing else.
    let mut cur = counter.load(Ordering::Relaxed);
    loop {
        let tag = (cur >> LIVE_BITS) as u32;
        let base = if tag == generation {
            cur & LIVE_MASK
        } else if tag.wrapping_sub(generation) & GEN_TAG_MASK < 1 << 20 {
            return; // the counter belongs to a newer generation
        } else {
            0
        };
        let next = (generation as u64) << LIVE_BITS | (base.wrapping_add(delta as u64) & LIVE_MASK);
        // Relaxed: as above.
        match counter.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => cur = actual,
        }
    }
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
        // Relaxed: as above.
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
            Window::Count(n) => Kind::Count { slots: (0..n).map(|_| AtomicU32::new(0)).collect() },
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
        // Stripe k's cursor starts k/stripes of the way round a count ring
        // (at laps 0: it counts `position - start` outcomes).
        let ring = match window {
            Window::Count(n) => n as u64,
            Window::Time { .. } => 0,
        };
        Windows {
            stripes: (0..stripes as u64)
                .map(|k| {
                    let start = k * ring / stripes as u64;
                    CachePadded::new(Stripe { calls: AtomicU64::new(start), start, ..Stripe::default() })
                })
                .collect(),
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

    /// Records a fast success of `generation` if this is a count window:
    /// the whole hot path of a healthy breaker. `false` for a time window.
    #[inline]
    pub(crate) fn record_success(&self, generation: u32) -> bool {
        match &self.kind {
            Kind::Count { slots } => {
                Self::record_count(slots, self.stripe().1, generation << 3 | PRESENT);
                true
            }
            Kind::Time { .. } => false,
        }
    }

    /// Moves `stripe`'s cursor one slot round a ring of `n` and returns the
    /// slot it was on.
    ///
    /// The cursor is `[laps: 40 | position: 24]` (a ring holds at most 2^24
    /// slots), moved by compare-and-swap, so the slot comes straight from
    /// the word with no division on the hot path, and the stripe's count of
    /// outcomes is `laps * n + position - start` (see `calls`). When `laps`
    /// wraps (after 2^40 laps), the winner adds the lost `2^40 * n` to
    /// `lapped`.
    #[inline]
    fn advance(stripe: &Stripe, n: u64) -> u64 {
        // Relaxed: the cursor only hands out positions and counts; the slots
        // carry their own data.
        let mut cur = stripe.calls.load(Ordering::Relaxed);
        loop {
            let pos = cur & POSITION_MASK;
            let next =
                if pos + 1 == n { (cur & !POSITION_MASK).wrapping_add(1 << POSITION_BITS) } else { cur + 1 };
            // Relaxed: as above.
            match stripe.calls.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    if next < cur {
                        // Relaxed: a statistic.
                        stripe.lapped.fetch_add(n << (64 - POSITION_BITS), Ordering::Relaxed);
                    }
                    return pos;
                }
                Err(actual) => {
                    rehome();
                    cur = actual;
                }
            }
        }
    }

    /// Writes outcome `v` into the next slot of `stripe`'s cursor and keeps
    /// the live counts in step.
    ///
    /// The counts are kept as deltas per stripe, so no thread writes another
    /// stripe's line: the slot changes by one `swap`, and the writer adds
    /// to its own stripe's counters what the swap did, `-old` in the old
    /// outcome's generation and `+new` in the new one's. Each counter is
    /// tagged with one generation: a delta for a newer generation restarts
    /// it, a delta for an older one is dropped (that era no longer counts).
    /// So, whenever no write is in flight, the counters of generation `g`
    /// summed over the stripes equal the slots holding `g`, exactly, even
    /// when a late writer with a stale permit overwrites a live slot. The
    /// sums wrap modulo 2^43; the true value is at most the ring's size.
    #[inline]
    fn record_count(slots: &[AtomicU32], stripe: &Stripe, v: u32) {
        let i = Self::advance(stripe, slots.len() as u64) as usize;
        // `i < slots.len()`; `get` keeps the bounds panic off the hot path.
        let Some(slot) = slots.get(i) else { return };
        // Relaxed: a slot is one self-contained value; readers need no other
        // memory ordered with it. The load first keeps the line shared (no
        // write) when the slot already holds this outcome, as it does for
        // every success in a healthy breaker.
        if slot.load(Ordering::Relaxed) == v {
            return;
        }
        // Relaxed: as above; the swap's answer is what makes the counts exact.
        let old = slot.swap(v, Ordering::Relaxed);
        if old != v {
            Self::count_change(stripe, old, v);
        }
    }

    #[cold]
    fn count_change(stripe: &Stripe, old: u32, new: u32) {
        let fields = |v: u32| [(v & PRESENT != 0) as i64, (v & FAIL) as i64, ((v & SLOW) >> 1) as i64];
        let (old_gen, new_gen) = (old >> 3, new >> 3);
        let (o, n) = (fields(old), fields(new));
        for (k, counter) in stripe.live.iter().enumerate() {
            if old & PRESENT != 0 && old_gen == new_gen {
                add_live(counter, new_gen, n[k] - o[k]);
            } else {
                if old & PRESENT != 0 {
                    add_live(counter, old_gen, -o[k]);
                }
                add_live(counter, new_gen, n[k]);
            }
        }
    }

    /// Records one success or failure of `generation`, at `now` (nanoseconds
    /// since the breaker was built; unused by count windows).
    pub(crate) fn record(&self, generation: u32, failed: bool, slow: bool, now: u64) {
        let (k, stripe) = self.stripe();
        match &self.kind {
            Kind::Count { slots } => {
                let v = generation << 3 | PRESENT | (slow as u32) << 1 | failed as u32;
                Self::record_count(slots, stripe, v);
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
        Self::count_totals(stripe, failed, slow);
    }

    fn count_totals(stripe: &Stripe, failed: bool, slow: bool) {
        if failed {
            // Relaxed: statistics.
            stripe.failures.fetch_add(1, Ordering::Relaxed);
        }
        if slow {
            // Relaxed: statistics.
            stripe.slow.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a probe outcome (half-open), which goes in the totals only.
    pub(crate) fn record_total(&self, failed: bool, slow: bool) {
        let (_, stripe) = self.stripe();
        match &self.kind {
            // Moving the cursor past a slot is harmless: it is written again
            // a lap later, and a new generation starts with no slots anyway.
            Kind::Count { slots } => {
                Self::advance(stripe, slots.len() as u64);
            }
            Kind::Time { .. } => {
                // Relaxed: a statistic.
                stripe.calls.fetch_add(1, Ordering::Relaxed);
            }
        }
        Self::count_totals(stripe, failed, slow);
    }

    /// Applies `judge` to what the window holds for `generation` at `now`,
    /// cheaply when it can: a count window first judges its per-stripe live
    /// counts (O(stripes)), and only if that yields a verdict judges the
    /// ring itself (`tally`, O(n)) to confirm it. The per-stripe sums are
    /// exact when no record is in flight, but read while others record they
    /// can be off by more than the records in flight (a reader descheduled
    /// between two stripes sees one stripe's count from before and
    /// another's from after), so they only ever filter. A time window's
    /// tally is already cheap and is judged once.
    pub(crate) fn judge<R>(
        &self,
        generation: u32,
        now: u64,
        judge: impl Fn(Tally) -> Option<R>,
    ) -> Option<R> {
        match &self.kind {
            Kind::Count { .. } => {
                judge(self.estimate(generation))?;
                judge(self.tally(generation, now))
            }
            Kind::Time { .. } => judge(self.tally(generation, now)),
        }
    }

    /// The per-stripe live counts of a count window, summed; see `judge`.
    fn estimate(&self, generation: u32) -> Tally {
        let mut sums = [0u64; 3];
        for stripe in self.stripes.iter() {
            for (sum, counter) in sums.iter_mut().zip(&stripe.live) {
                // Relaxed: see `record_count`.
                let c = counter.load(Ordering::Relaxed);
                if (c >> LIVE_BITS) as u32 == generation & GEN_TAG_MASK {
                    *sum = sum.wrapping_add(c);
                }
            }
        }
        // A "negative" sum (a stripe's -1 seen without another's +1) reads
        // as zero.
        let [calls, failures, slow] =
            sums.map(|s| if s & LIVE_MASK >= 1 << (LIVE_BITS - 1) { 0 } else { s & LIVE_MASK });
        Tally { calls, failures, slow }
    }

    /// What the window holds for `generation` at `now`: each slot or bucket
    /// read once, so every outcome counted is a real one and none twice.
    /// O(n) for a count window, O(stripes * buckets) for a time window.
    pub(crate) fn tally(&self, generation: u32, now: u64) -> Tally {
        let mut t = Tally::default();
        match &self.kind {
            Kind::Count { slots } => {
                // Relaxed: each slot is self-contained; see `record_count`.
                for v in slots.iter().map(|s| s.load(Ordering::Relaxed)) {
                    if v & PRESENT != 0 && v >> 3 == generation {
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

    /// Outcomes recorded, all time, summed over the stripes.
    pub(crate) fn calls(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| {
                // Relaxed: statistics.
                let c = s.calls.load(Ordering::Relaxed);
                match &self.kind {
                    Kind::Count { slots } => {
                        let n = slots.len() as u64;
                        let laps_and_pos =
                            (c >> POSITION_BITS).wrapping_mul(n).wrapping_add(c & POSITION_MASK);
                        // Relaxed: statistics.
                        let lapped = s.lapped.load(Ordering::Relaxed);
                        lapped.wrapping_add(laps_and_pos).wrapping_sub(s.start)
                    }
                    Kind::Time { .. } => c,
                }
            })
            .fold(0, u64::wrapping_add)
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
    fn cursor_counts_across_laps_and_lap_wraps() {
        let w = Windows::new(Window::Count(3), 2);
        for i in 0..10 {
            w.record(1, i % 2 == 0, false, 0);
        }
        assert_eq!(w.calls(), 10);
        assert_eq!(w.tally(1, 0).calls, 3);
        // Put this thread's cursor just before `laps` wraps: laps = 2^40 - 1,
        // position 2 (the last slot). Two more records must count two more.
        let (_, stripe) = w.stripe();
        stripe.calls.store(POSITION_MASK << POSITION_BITS | 2, Ordering::Relaxed);
        let jumped = w.calls();
        w.record(1, false, false, 0); // wraps laps
        w.record(1, false, false, 0);
        assert_eq!(w.calls(), jumped.wrapping_add(2));
    }

    #[test]
    fn live_counts_match_the_ring_even_with_stale_writers() {
        let w = Windows::new(Window::Count(7), 4);
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut generation = 5;
        for step in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if step % 500 == 0 {
                generation += 1; // a new era: starts empty
                assert_eq!(w.estimate(generation), Tally::default());
            }
            // One record in eight comes from a stale permit of an old era.
            let g = if x % 8 == 0 { generation - 1 - (x >> 8) as u32 % 3 } else { generation };
            w.record(g, x & 0x10 != 0, x & 0x20 != 0, 0);
            assert_eq!(w.estimate(generation), w.tally(generation, 0), "step {step}");
        }
    }

    #[test]
    fn live_counts_match_the_ring_after_concurrent_records() {
        for round in 0..20 {
            let w = std::sync::Arc::new(Windows::new(Window::Count(100), 2));
            let threads: Vec<_> = (0..4u64)
                .map(|t| {
                    let w = w.clone();
                    std::thread::spawn(move || {
                        for i in 0..20_000u64 {
                            if (i + t) % 3 == 0 {
                                w.record(0, true, false, 0);
                            } else {
                                assert!(w.record_success(0));
                            }
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(w.estimate(0), w.tally(0, 0), "round {round}");
            assert_eq!(w.calls(), 80_000);
        }
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
