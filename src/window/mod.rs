//! The outcome windows and the striped counters behind them: `stripe.rs`
//! (where counters live and why), `count.rs` (the ring of the last `n`
//! outcomes) and `time.rs` (buckets of the last `length`).

#[cfg(all(test, not(loom)))]
mod clean_tests;
mod count;
#[cfg(feature = "capi")]
mod fast;
mod stripe;
mod time;

#[cfg(loom)]
pub use count::hooks as clean_hooks;
pub(crate) use count::Clean;
#[cfg(feature = "capi")]
pub(crate) use count::POSITION_MASK;
#[cfg(all(feature = "shared", unix, not(loom)))]
pub(crate) use stripe::forget_home;
pub(crate) use stripe::Stripe;
#[cfg(feature = "capi")]
pub(crate) use stripe::{new_id, swap_home, thread_id};

use crate::config::Window;
use crate::era::{self, parity};
use crate::state::Word;
use crate::stats::Latency;
use crate::sync::{AtomicU64, Ordering};
use crate::words::{Placer, Words};
use crossbeam_utils::CachePadded;

/// What a window holds, or what the totals add up to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

/// What a fast success did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fast {
    /// Recorded; nothing to decide.
    Done,
    /// Recorded, and the window grew: judge it.
    Judge,
    /// Recorded, and the ring may have become clean: settle it (see
    /// `count.rs`), with no verdict.
    Settle,
    /// Not a count window: take the long way.
    Slow,
}

/// One outcome to record, with what the window needs to place it.
#[derive(Clone, Copy)]
pub(crate) struct Entry {
    /// The era it belongs to.
    pub(crate) generation: u64,
    pub(crate) failed: bool,
    pub(crate) slow: bool,
    /// When it was recorded, in ns since the breaker was built (time
    /// windows only).
    pub(crate) now: u64,
    /// When the era began, in ns since the breaker was built.
    pub(crate) start: u64,
    /// `minimum_calls`, for judging a success that may complete it.
    pub(crate) minimum: u64,
    /// If the outcome was timed.
    pub(crate) timing: Option<Timing>,
}

/// When a timed outcome was recorded (ns since the breaker was built), and
/// how long its call took if it was timed from its start.
#[derive(Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) now: u64,
    pub(crate) took: Option<u64>,
}

/// The windows and the stripes, built once for a window shape.
pub(crate) struct Windows {
    stripes: Words<[CachePadded<Stripe>]>,
    stripe_mask: usize,
    /// `u64::MAX`, or 0 for a breaker of one stripe (see `homed`).
    home_mask: u64,
    kind: Kind,
    /// Per-stripe call latency, with `record_latency(true)`.
    latency: Option<Latency>,
}

/// Where stripe `k` of `stripes` starts its cursor in a count ring of `n`:
/// `k / stripes` of the way round (at laps 0 it has counted `position -
/// start` outcomes).
fn start(k: usize, n: u64, stripes: usize) -> u64 {
    k as u64 * n / stripes as u64
}

enum Kind {
    Count(Words<[AtomicU64]>),
    Time(time::Buckets),
}

impl Windows {
    pub(crate) fn new(window: Window, stripes: u32, record_latency: bool, placer: &mut Placer) -> Windows {
        crate::sync::init_per_cpu();
        let stripes = stripes.clamp(1, crate::config::MAX_STRIPES).next_power_of_two() as usize;
        let ring = match window {
            // At least one slot, whatever the (validated) config says: the
            // ring is indexed unchecked (see `count::record`).
            Window::Count(n) => n.max(1) as u64,
            Window::Time { .. } => 0,
        };
        let stripe_words = placer.many(stripes, |k| {
            CachePadded::new(Stripe { calls: AtomicU64::new(start(k, ring, stripes)), ..Stripe::default() })
        });
        let kind = match window {
            Window::Count(_) => Kind::Count(placer.many(ring as usize, |_| AtomicU64::new(0))),
            Window::Time { length, buckets } => {
                Kind::Time(time::Buckets::new(stripes, length, buckets, placer))
            }
        };
        Windows {
            stripes: stripe_words,
            stripe_mask: stripes - 1,
            home_mask: if stripes == 1 { 0 } else { u64::MAX },
            kind,
            latency: record_latency.then(|| Latency::new(stripes, placer)),
        }
    }

    /// Whether recording needs the time.
    pub(crate) fn needs_clock(&self) -> bool {
        matches!(self.kind, Kind::Time(_))
    }

    /// The stripe of the calling thread.
    #[inline(always)]
    pub(crate) fn stripe(&self) -> (usize, &Stripe) {
        self.stripe_of(stripe::home())
    }

    #[inline(always)]
    fn stripe_of(&self, home: u64) -> (usize, &Stripe) {
        let k = home as usize & self.stripe_mask;
        debug_assert!(k < self.stripes.len());
        // SAFETY: `stripes` holds `stripe_mask + 1` stripes (see `new`).
        (k, unsafe { self.stripes.get_unchecked(k) })
    }

    /// The stripe of the calling thread, its number and the thread's home
    /// (see `stripe.rs`); with one stripe, home 0 (`home_mask`), which
    /// `stripe::check` takes for the owner of a stripe no one claims:
    /// there is nowhere to move to.
    #[inline(always)]
    fn homed(&self) -> (usize, &Stripe, u64) {
        let home = stripe::home() & self.home_mask;
        let (k, stripe) = self.stripe_of(home);
        (k, stripe, home)
    }

    /// Counts a success of `generation` in a ring marked clean for it
    /// (`clean`, see `count.rs`): no slot, no cursor, one per-CPU add on
    /// the stripe numbered as the CPU. `false` if the ring is not clean,
    /// or this CPU has no stripe or cannot add now: record it the
    /// ordinary way. The whole hot path of a healthy breaker.
    #[inline(always)]
    pub(crate) fn success_on_clean(&self, clean: &Clean, generation: u64) -> bool {
        // The mark first: a ring that is not clean (or a process that never
        // settles one) is told by one load of a line already in hand.
        count::is_clean(clean, count::slot_value(generation, false, false))
            && crate::sync::per_cpu().is_some_and(|p| p.add(|cpu| self.stripes.get(cpu).map(|s| &s.solo)))
    }

    /// Records a success of `generation` if this is a count window (see
    /// `record` for `clean`).
    #[inline(always)]
    pub(crate) fn record_success(&self, clean: &Clean, generation: u64) -> Fast {
        match &self.kind {
            Kind::Count(slots) => {
                let (_, stripe, home) = self.homed();
                count::record(
                    slots,
                    stripe,
                    clean,
                    home,
                    generation,
                    count::slot_value(generation, false, false),
                )
            }
            Kind::Time(_) => Fast::Slow,
        }
    }

    /// Records one success or failure (see [`Entry`]). Returns whether a
    /// success should be judged or the ring settled (see `count::record`
    /// and `time::Buckets::record`; failures and slow calls are always
    /// judged by the caller). `live()` says whether the era is still
    /// current; `clean` is the breaker's clean mark (see `count.rs`), next
    /// to its state word.
    pub(crate) fn record(&self, clean: &Clean, e: Entry, live: impl Fn() -> bool) -> Fast {
        let (k, stripe, home) = self.homed();
        let judge = match &self.kind {
            Kind::Count(slots) => {
                let v = count::slot_value(e.generation, e.failed, e.slow);
                count::record(slots, stripe, clean, home, e.generation, v)
            }
            Kind::Time(b) => {
                let judge = b.record(k, stripe, e, live);
                stripe::check(stripe, home);
                if judge {
                    Fast::Judge
                } else {
                    Fast::Done
                }
            }
        };
        Self::count_totals(stripe, e.failed, e.slow);
        self.note(k, stripe, e.failed, e.timing);
        judge
    }

    /// Notes a timed outcome on stripe `k`: its time, and its latency if
    /// recorded.
    fn note(&self, k: usize, stripe: &Stripe, failed: bool, timing: Option<Timing>) {
        let Some(t) = timing else { return };
        let last = if failed { &stripe.last_failure } else { &stripe.last_success };
        // Relaxed: a statistic. Racing writers on one stripe may leave the
        // earlier of two close times; a load and a store cost less than an
        // atomic max.
        if last.load(Ordering::Relaxed) <= t.now {
            // Relaxed: as above.
            last.store(t.now + 1, Ordering::Relaxed);
        }
        if let (Some(l), Some(took)) = (&self.latency, t.took) {
            l.record(k, took);
        }
    }

    /// The latency histogram, with `record_latency(true)`.
    pub(crate) fn latency(&self) -> Option<&Latency> {
        self.latency.as_ref()
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
    pub(crate) fn record_total(&self, failed: bool, slow: bool, timing: Option<Timing>) {
        let (k, stripe, home) = self.homed();
        self.note(k, stripe, failed, timing);
        match &self.kind {
            // Moving the cursor past a slot is harmless: it is written again
            // a lap later, and a new era starts with no slots anyway.
            Kind::Count(slots) => {
                count::advance(stripe, slots.len() as u64, home);
            }
            Kind::Time(_) => {
                // Relaxed: a statistic.
                stripe.calls.fetch_add(1, Ordering::Relaxed);
            }
        }
        Self::count_totals(stripe, failed, slow);
    }

    /// Adds one to the calling thread's stripe counter `field`.
    #[inline(always)]
    pub(crate) fn count(&self, field: impl Fn(&Stripe) -> &AtomicU64) {
        // Relaxed: a statistic.
        field(self.stripe().1).fetch_add(1, Ordering::Relaxed);
    }

    /// Starts the window of the era `from` leads to (see `era.rs`): every
    /// stripe's live counts zero and tagged with the new generation, and a
    /// time window's bucket set empty, written while the state word is
    /// still `from`.
    pub(crate) fn prepare(&self, state: &AtomicU64, from: Word, generation: u64) -> Result<(), Word> {
        let zero = era::counter(generation, 0);
        for stripe in self.stripes.iter() {
            for c in &stripe.live[parity(generation)] {
                era::publish(c, state, from, zero, |cur| cur == zero)?;
            }
        }
        match &self.kind {
            Kind::Time(b) => b.prepare(state, from, generation),
            Kind::Count(_) => Ok(()),
        }
    }

    /// Applies `judge` to what the window holds for `generation` at `now`
    /// (an era that started at `start`), cheaply when it can: a count
    /// window first judges its per-stripe live counts (O(stripes)), and
    /// only if that yields a verdict judges the ring itself (O(n)) to
    /// confirm it. A time window's tally is already cheap and is judged
    /// once. A count window that holds nothing but successes of
    /// `generation` is marked clean (`count::settle`).
    pub(crate) fn judge<R>(
        &self,
        clean: &Clean,
        generation: u64,
        now: u64,
        start: u64,
        judge: impl Fn(Tally) -> Option<R>,
    ) -> Option<R> {
        match &self.kind {
            Kind::Count(slots) => {
                let estimate = self.estimate(generation);
                if judge(estimate).is_some() {
                    return judge(count::tally(slots, generation));
                }
                self.settle_with(slots, clean, generation, estimate);
                None
            }
            Kind::Time(b) => judge(b.tally(generation, now, start)),
        }
    }

    /// Marks a count window clean for `generation` if it holds nothing but
    /// its successes (see `count::settle`): after a success that may have
    /// made it so.
    pub(crate) fn settle(&self, clean: &Clean, generation: u64) {
        if let Kind::Count(slots) = &self.kind {
            self.settle_with(slots, clean, generation, self.estimate(generation));
        }
    }

    /// Settles a ring the estimate says is full of successes, if it is
    /// worth it: no larger than `count::MAX_CLEAN` (settling reads every
    /// slot, on the caller's thread), and in a process whose threads can
    /// count per CPU (another process sharing the breaker settles it for
    /// itself).
    fn settle_with(&self, slots: &[AtomicU64], clean: &Clean, generation: u64, estimate: Tally) {
        if slots.len() <= count::MAX_CLEAN
            && estimate == (Tally { calls: slots.len() as u64, failures: 0, slow: 0 })
            && crate::sync::per_cpu().is_some()
        {
            count::settle(slots, clean, generation);
        }
    }

    /// A count window's per-stripe live counts of `generation`, summed.
    fn estimate(&self, generation: u64) -> Tally {
        count::estimate(self.stripes.iter().map(|s| &**s), generation)
    }

    /// What the window holds for `generation` at `now`: each slot or bucket
    /// read once, so every outcome counted is a real one and none twice.
    pub(crate) fn tally(&self, generation: u64, now: u64, start: u64) -> Tally {
        match &self.kind {
            Kind::Count(slots) => count::tally(slots, generation),
            Kind::Time(b) => b.tally(generation, now, start),
        }
    }

    /// Outcomes recorded, all time, summed over the stripes.
    pub(crate) fn calls(&self) -> u64 {
        self.stripes
            .iter()
            .enumerate()
            .map(|(k, s)| match &self.kind {
                Kind::Count(slots) => {
                    let n = slots.len() as u64;
                    count::calls(s, n, start(k, n, self.stripes.len()))
                }
                // Relaxed: statistics.
                Kind::Time(_) => s.calls.load(Ordering::Relaxed),
            })
            .fold(0, u64::wrapping_add)
    }

    /// The latest of one time over the stripes (see `Stripe::last_success`).
    /// In ns since the breaker was built.
    pub(crate) fn latest(&self, field: impl Fn(&Stripe) -> &AtomicU64) -> Option<u64> {
        // Relaxed: statistics.
        let t = self.stripes.iter().map(|s| field(s).load(Ordering::Relaxed)).max().unwrap_or(0);
        t.checked_sub(1)
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
            Kind::Count(slots) => std::mem::size_of_val(&**slots),
            Kind::Time(b) => b.heap_bytes(),
        };
        kind + std::mem::size_of_val(&*self.stripes) + self.latency.as_ref().map_or(0, Latency::heap_bytes)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn entry(generation: u64, failed: bool, slow: bool) -> Entry {
        Entry { generation, failed, slow, now: 0, start: 0, minimum: 0, timing: None }
    }
    use std::time::Duration;

    /// A clean mark that is not set (see `count.rs`): for a record that
    /// no judge settles.
    fn unmarked() -> Clean {
        Clean::default()
    }

    /// A window whose live counters are ready for `generation` (what a
    /// transition does before the era becomes visible).
    fn windows(window: Window, stripes: u32, generations: &[u64]) -> Windows {
        let w = Windows::new(window, stripes, false, &mut Placer::Heap);
        let state = AtomicU64::new(0);
        for &g in generations {
            w.prepare(&state, Word(0), g).unwrap();
        }
        w
    }

    #[test]
    fn count_window_is_an_exact_ring_for_one_thread() {
        let w = windows(Window::count(5), 4, &[1]);
        for i in 0..12 {
            w.record(&unmarked(), entry(1, i % 3 == 0, false), || true);
        }
        // The last 5 of 0..12 are 7..12; failures at 9.
        assert_eq!(w.tally(1, 0, 0), Tally { calls: 5, failures: 1, slow: 0 });
        assert_eq!(w.tally(3, 0, 0), Tally::default(), "another generation sees nothing");
    }

    #[test]
    fn a_success_that_grows_the_window_asks_to_be_judged() {
        let w = windows(Window::count(3), 1, &[1]);
        let clean = unmarked();
        for _ in 0..3 {
            assert!(w.record_success(&clean, 1) == Fast::Judge);
        }
        // Unmarked, the first lap's first slot asks too (a mark lost to a
        // race is set again)...
        assert!(w.record_success(&clean, 1) == Fast::Settle, "slot 0 of a ring not marked clean");
        // ...and settling marks a ring of successes clean: then none asks
        // (in a process that can count per CPU: the only one that marks).
        if crate::sync::per_cpu().is_none() {
            return;
        }
        w.settle(&clean, 1);
        let success = count::slot_value(1, false, false);
        assert_eq!(clean.mark.load(Ordering::Relaxed), success, "marked clean");
        for _ in 0..6 {
            assert!(w.record_success(&clean, 1) == Fast::Done, "the window is full and clean");
        }
        // A failure takes the mark down; within 8 laps a success asks again.
        w.record(&clean, entry(1, true, false), || true);
        assert_eq!(clean.mark.load(Ordering::Relaxed), 0, "a failure in the ring: not clean");
        let asked: Vec<_> = (0..24).map(|_| w.record_success(&clean, 1)).collect();
        assert_eq!(asked.iter().filter(|&&a| a == Fast::Settle).count(), 1, "one lap in 8 asks: {asked:?}");
        assert!(!asked.contains(&Fast::Judge), "a success that does not grow the window is not judged");
        assert_eq!(w.judge(&clean, 1, 0, 0, |_| None::<()>), None, "a judge settles too");
        assert_eq!(clean.mark.load(Ordering::Relaxed), success, "clean again");
        // A mark for another era, or a ring with a hole, is not settled.
        let w = windows(Window::count(3), 1, &[1]);
        w.record_success(&clean, 1);
        w.record_success(&clean, 1);
        clean.mark.store(0, Ordering::Relaxed);
        assert_eq!(w.judge(&clean, 1, 0, 0, |_| None::<()>), None);
        assert_eq!(clean.mark.load(Ordering::Relaxed), 0, "two of three slots: not clean");
    }

    #[test]
    fn time_window_ages_out_buckets() {
        let w = windows(Window::time(Duration::from_secs(10), 10), 2, &[3]);
        let s = 1_000_000_000;
        w.record(&unmarked(), entry(3, true, false), || true);
        w.record(&unmarked(), Entry { now: 5 * s, start: 0, ..entry(3, false, true) }, || true);
        assert_eq!(w.tally(3, 9 * s, 0), Tally { calls: 2, failures: 1, slow: 1 });
        assert_eq!(w.tally(3, 10 * s, 0), Tally { calls: 1, failures: 0, slow: 1 });
        assert_eq!(w.tally(3, 15 * s, 0), Tally::default());
        // A record in a reused bucket turns it; an old record into it is dropped.
        w.record(&unmarked(), Entry { now: 20 * s, start: 0, ..entry(3, false, false) }, || true);
        w.record(&unmarked(), Entry { now: 10 * s, start: 0, ..entry(3, true, false) }, || true);
        assert_eq!(w.tally(3, 20 * s, 0), Tally { calls: 1, failures: 0, slow: 0 });
    }

    #[test]
    fn a_new_era_of_a_time_window_starts_empty_even_mid_bucket() {
        let w = windows(Window::time(Duration::from_secs(10), 10), 1, &[1, 2]);
        let s = 1_000_000_000;
        for _ in 0..5 {
            w.record(&unmarked(), Entry { now: s / 2, start: 0, ..entry(1, true, false) }, || true);
        }
        // Era 2 starts 0.7 s in, inside the bucket that holds era 1's failures.
        let start = 7 * s / 10;
        assert_eq!(w.tally(2, start, start), Tally::default());
        w.record(&unmarked(), Entry { now: s, start, ..entry(2, false, false) }, || true);
        assert_eq!(w.tally(2, s, start), Tally { calls: 1, failures: 0, slow: 0 });
        assert_eq!(w.tally(2, start + 10 * s, start), Tally::default(), "aged out");
    }

    #[test]
    fn cursor_counts_across_laps_and_lap_wraps() {
        let w = windows(Window::count(3), 2, &[1]);
        for i in 0..10 {
            w.record(&unmarked(), entry(1, i % 2 == 0, false), || true);
        }
        assert_eq!(w.calls(), 10);
        assert_eq!(w.tally(1, 0, 0).calls, 3);
        // Put this thread's cursor just before `laps` wraps: laps = 2^17 - 1,
        // position 2 (the last slot). Two more records must count two more:
        // the first takes slot 2, the second lands on the lap's end and its
        // fold wraps `laps`.
        let (_, stripe) = w.stripe();
        stripe.calls.store((u64::MAX >> count::POSITION_BITS) << count::POSITION_BITS | 2, Ordering::Relaxed);
        let jumped = w.calls();
        w.record(&unmarked(), entry(1, false, false), || true);
        w.record(&unmarked(), entry(1, false, false), || true); // folds the lap: wraps laps
        assert_eq!(w.calls(), jumped.wrapping_add(2));
    }

    #[test]
    fn records_past_a_pending_fold_take_their_slots_and_count_once() {
        let w = windows(Window::count(3), 1, &[1]);
        let (_, stripe) = w.stripe();
        // Another thread's add landed on position 3, the lap's end, and it
        // stopped before folding the lap: the cursor reads 4.
        stripe.calls.store(4, Ordering::Relaxed);
        let mut mine = Vec::new();
        for i in 0..20u64 {
            if i == 9 {
                // It wakes and folds (our own folds happened meanwhile).
                stripe.calls.fetch_add((1 << count::POSITION_BITS) - 3, Ordering::Relaxed);
            }
            let failed = i % 4 == 1 || i % 7 == 0;
            w.record(&unmarked(), entry(1, failed, false), || true);
            mine.push(failed);
            assert_eq!(w.calls(), 4 + i + 1, "every record counted once (step {i})");
            if mine.len() >= 3 {
                let last3 = mine[mine.len() - 3..].iter().filter(|&&f| f).count() as u64;
                assert_eq!(w.tally(1, 0, 0), Tally { calls: 3, failures: last3, slow: 0 }, "step {i}");
            }
        }
        let pos = stripe.calls.load(Ordering::Relaxed) & count::POSITION_MASK;
        assert!(pos <= 3, "every lap folded: position {pos}");
    }

    #[test]
    fn live_counts_match_the_ring_even_with_stale_writers() {
        let w = windows(Window::count(7), 4, &[5]);
        let state = AtomicU64::new(0);
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut generation = 5;
        for step in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if step % 500 == 0 {
                generation += 1; // a new era: starts empty
                w.prepare(&state, Word(0), generation).unwrap();
                assert_eq!(count::estimate(w.stripes.iter().map(|s| &**s), generation), Tally::default());
            }
            // One record in eight comes from a stale permit of an old era.
            let g = if x % 8 == 0 { generation - 1 - (x >> 8) % 3 } else { generation };
            w.record(&unmarked(), entry(g, x & 0x10 != 0, x & 0x20 != 0), || true);
            let est = count::estimate(w.stripes.iter().map(|s| &**s), generation);
            assert_eq!(est, w.tally(generation, 0, 0), "step {step}");
        }
    }

    #[test]
    fn live_counts_match_the_ring_after_concurrent_records() {
        for round in 0..20 {
            let w = std::sync::Arc::new(windows(Window::count(100), 2, &[0]));
            let threads: Vec<_> = (0..4u64)
                .map(|t| {
                    let w = w.clone();
                    std::thread::spawn(move || {
                        for i in 0..20_000u64 {
                            if (i + t) % 3 == 0 {
                                w.record(&unmarked(), entry(0, true, false), || true);
                            } else {
                                assert!(w.record_success(&unmarked(), 0) != Fast::Slow);
                            }
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(count::estimate(w.stripes.iter().map(|s| &**s), 0), w.tally(0, 0, 0), "round {round}");
            assert_eq!(w.calls(), 80_000);
        }
    }

    #[test]
    fn preparing_an_era_is_refused_once_the_state_moved() {
        let w = Windows::new(Window::count(4), 2, false, &mut Placer::Heap);
        let state = AtomicU64::new(Word::INITIAL.0);
        let moved = Word::INITIAL.enter(crate::State::Open, 0);
        state.store(moved.0, Ordering::Relaxed);
        assert_eq!(w.prepare(&state, Word::INITIAL, 1), Err(moved));
    }
}
