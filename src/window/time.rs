//! The time window: per stripe, `b` buckets of `length / b`.
//!
//! Each bucket keeps three words (outcomes, failures, slow calls), each
//! `[tag 8 | stamp 40 | count 16]`. A stamp numbers a bucket-length of time
//! within an era, from 1 at the era's start (`ext`, see `era.rs`): buckets
//! are aligned to the moment the era began. The buckets come in two sets,
//! by the era's parity, and an era's set is emptied (every word set to
//! `[tag | 0 | 0]`) before the era becomes visible, like every per-era word
//! (see `era.rs`), so a new era starts empty however soon after the last
//! one, and the tally counts the words of the current set whose stamp is one
//! of the last `b`.
//!
//! The tag is the era's generation halved (its parity picks the set), so the
//! words of one set never hold the same value in two eras fewer
//! than 512 transitions apart. That is what keeps a contender that lost the
//! race to prepare an era from emptying a word of that era once it is live:
//! its CAS expects a value of an earlier era (see `era.rs`). It also makes a
//! late writer of an earlier era drop its record instead of landing it.
//!
//! A record compare-and-swaps one word: if the stamp is its own it adds
//! one; if the stamp is older it starts the bucket anew with a count of one
//! (the turn); if it is newer the record is late and is dropped from the
//! window. Turn and record are one atomic step, so no record in a live
//! bucket is lost and none from a dead bucket is counted.
//!
//! Stamps are 40 bits: with 1 ms buckets (the shortest) an era counts for
//! 34 years before its stamps stop moving. Counts are 16 bits per stripe
//! and bucket: the record that fills a bucket's outcome count halves all
//! three counts (failures and slow calls first, so a reader in between sees
//! a lower rate, never a higher one). While it does, other records to that
//! bucket are dropped. A full bucket thus keeps its rates, weighted to its
//! latest outcomes, and an outage that starts in a busy bucket still shows.

use super::stripe::Stripe;
use super::{Entry, Tally};
use crate::era::{self, parity};
use crate::state::Word;
use crate::sync::{AtomicU64, Ordering};
use crate::words::{Placer, Words};
use crossbeam_utils::CachePadded;
use strength_reduce::StrengthReducedU64;

const COUNT_BITS: u32 = 16;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
const TAG_SHIFT: u32 = 56;
const MAX_STAMP: u64 = (1 << (TAG_SHIFT - COUNT_BITS)) - 1;

/// The empty word of `generation`'s era: its tag, stamp 0, count 0.
const fn empty(generation: u64) -> u64 {
    (generation >> 1) << TAG_SHIFT
}

/// The buckets of every stripe, in two sets by era parity, set-major then
/// stripe-major: stripe `k` of set `p` owns `3 * buckets` words from
/// `(p * stripes + k) * stride * 16` (in lines of 16 words).
pub(super) struct Buckets {
    words: Words<[CachePadded<[AtomicU64; 16]>]>,
    stripes: usize,
    stride: usize,
    buckets: u64,
    /// `buckets`, for the bucket index without a division.
    per_lap: StrengthReducedU64,
    /// The bucket length in ns.
    len: StrengthReducedU64,
}

/// What a record did to a bucket word.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bump {
    Added,
    /// Added one, and the count is now full.
    Filled,
    Turned,
    Late,
    Full,
    /// The writer's era is over.
    Stale,
}

/// Adds one to `word` for stamp `stamp` of the era `empty` is the empty
/// word of: turns a bucket of an older stamp, drops the record if the
/// bucket holds a newer one or is full, or if the word or `live()` says the
/// writer's era is over.
#[inline(always)]
fn bump(word: &AtomicU64, empty: u64, stamp: u64, live: &impl Fn() -> bool) -> Bump {
    // Relaxed: the word is self-contained (tag, stamp and count change in
    // one step).
    let mut cur = word.load(Ordering::Relaxed);
    loop {
        if cur >> TAG_SHIFT != empty >> TAG_SHIFT {
            return Bump::Stale;
        }
        let (s, n) = ((cur >> COUNT_BITS) & MAX_STAMP, cur & COUNT_MASK);
        let (new, how) = if s == stamp {
            if n == COUNT_MASK {
                return Bump::Full;
            }
            (cur + 1, if n + 1 == COUNT_MASK { Bump::Filled } else { Bump::Added })
        } else if s > stamp {
            return Bump::Late;
        } else {
            (empty | stamp << COUNT_BITS | 1, Bump::Turned)
        };
        if !live() {
            return Bump::Stale;
        }
        // Release: a contender preparing the next era of this set that reads
        // this value (Acquire, `era::publish`) then sees the state word that
        // `live()` saw, and no longer `from`; Relaxed on failure: retried.
        match word.compare_exchange_weak(cur, new, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return how,
            Err(actual) => cur = actual,
        }
    }
}

/// Halves the count of `word` if it still holds `head` (its tag and stamp),
/// rounding up (the outcome word) or down (failures, slow calls), so that
/// no rate rises.
fn halve(word: &AtomicU64, head: u64, up: bool) {
    // Relaxed: as in `bump`.
    let mut cur = word.load(Ordering::Relaxed);
    while cur >> COUNT_BITS == head >> COUNT_BITS {
        let new = head | (((cur & COUNT_MASK) + up as u64) / 2);
        // Release: the outcome word is halved last, and a reader that sees
        // it halved (Acquire in `tally`) sees the others halved too.
        match word.compare_exchange_weak(cur, new, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => cur = actual,
        }
    }
}

impl Buckets {
    pub(super) fn new(
        stripes: usize,
        length: std::time::Duration,
        buckets: u32,
        placer: &mut Placer,
    ) -> Buckets {
        let stride = (3 * buckets as usize).div_ceil(16);
        let len = (length / buckets).as_nanos() as u64;
        Buckets {
            words: placer
                .many(2 * stride * stripes, |_| CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0)))),
            stripes,
            stride,
            buckets: buckets as u64,
            per_lap: StrengthReducedU64::new(buckets as u64),
            len: StrengthReducedU64::new(len),
        }
    }

    fn word(&self, generation: u64, stripe: usize, bucket: usize, field: usize) -> &AtomicU64 {
        let i = (parity(generation) * self.stripes + stripe) * self.stride * 16 + bucket * 3 + field;
        &self.words[i / 16][i % 16]
    }

    /// The stamp of time `now` in the era that started at `start` (both ns
    /// since the breaker was built).
    fn stamp(&self, now: u64, start: u64) -> u64 {
        (now.saturating_sub(start) / self.len + 1).min(MAX_STAMP)
    }

    /// Records one outcome `e` on stripe `k`; `live()` says whether the era is
    /// still current. Returns whether a success here should be judged: it
    /// turned a bucket (the window moved on), or the era has seen at most
    /// `minimum` outcomes on this stripe (so the window may have just
    /// reached `minimum_calls`).
    pub(super) fn record(&self, k: usize, stripe: &Stripe, e: Entry, live: impl Fn() -> bool) -> bool {
        let Entry { generation, failed, slow, now, start, minimum, .. } = e;
        let stamp = self.stamp(now, start);
        let b = (stamp % self.per_lap) as usize;
        let empty = empty(generation);
        let word = |f| self.word(generation, k, b, f);
        let mut judge = match bump(word(0), empty, stamp, &live) {
            Bump::Late | Bump::Full | Bump::Stale => false,
            how => {
                if failed {
                    bump(word(1), empty, stamp, &live);
                }
                if slow {
                    bump(word(2), empty, stamp, &live);
                }
                if how == Bump::Filled {
                    self.halve(word, empty | stamp << COUNT_BITS);
                }
                how == Bump::Turned
            }
        };
        // Relaxed: a statistic.
        stripe.calls.fetch_add(1, Ordering::Relaxed);
        // Outcomes of this era on this stripe, counted up to `minimum + 1`:
        // if the window just reached `minimum` outcomes, this stripe's
        // share is at most `minimum`.
        let c = &stripe.live[parity(generation)][0];
        let cap = minimum.min(era::COUNT_MASK - 2);
        // Relaxed: a self-contained counter (see `era::add`).
        let cur = c.load(Ordering::Relaxed);
        if era::counter_is_for(cur, generation) && cur & era::COUNT_MASK <= cap {
            judge |= era::add(c, generation, 1).is_some_and(|n| n <= minimum);
        }
        judge
    }

    /// Halves the bucket whose words `word(f)` gives, if they still hold
    /// `head` (tag and stamp): outcomes last (see the module doc).
    #[cold]
    fn halve<'a>(&self, word: impl Fn(usize) -> &'a AtomicU64, head: u64) {
        for f in [1, 2, 0] {
            halve(word(f), head, f == 0);
        }
    }

    /// Empties the set of the era `from` leads to, while the state word is
    /// still `from` (see `era.rs`).
    pub(super) fn prepare(&self, state: &AtomicU64, from: Word, generation: u64) -> Result<(), Word> {
        let empty = empty(generation);
        for k in 0..self.stripes {
            for b in 0..self.buckets as usize {
                for f in 0..3 {
                    era::publish(self.word(generation, k, b, f), state, from, empty, |cur| cur == empty)?;
                }
            }
        }
        Ok(())
    }

    /// What the window of `generation` (an era that started at `start`)
    /// holds at `now`: the buckets of its set whose outcome word's stamp is
    /// one of the last `b`. A failure or slow word counts only with the
    /// stamp of its outcome word: older, it is from an earlier lap of the
    /// bucket (the outcome word's turn restarted it); newer, it was written
    /// after a clock stepped back.
    pub(super) fn tally(&self, generation: u64, now: u64, start: u64) -> Tally {
        let current = self.stamp(now, start);
        // Once the stamps saturate (2^40 buckets into one era) every record
        // lands in the last one, which halving keeps to its latest outcomes:
        // only it counts, or the buckets before it would never age out.
        let oldest =
            if current == MAX_STAMP { MAX_STAMP } else { (current + 1).saturating_sub(self.buckets).max(1) };
        // Acquire for the outcome word: see `halve`. Relaxed for the others.
        let read = |k, b, f: usize| {
            self.word(generation, k, b, f).load(if f == 0 { Ordering::Acquire } else { Ordering::Relaxed })
        };
        let tag = empty(generation) >> TAG_SHIFT;
        let mut t = Tally::default();
        for k in 0..self.stripes {
            for b in 0..self.buckets as usize {
                let calls = read(k, b, 0);
                let stamp = (calls >> COUNT_BITS) & MAX_STAMP;
                if calls >> TAG_SHIFT != tag || !(oldest..=current).contains(&stamp) {
                    continue;
                }
                let head = calls >> COUNT_BITS;
                let count = |w: u64| if w >> COUNT_BITS == head { w & COUNT_MASK } else { 0 };
                t.calls += calls & COUNT_MASK;
                t.failures += count(read(k, b, 1));
                t.slow += count(read(k, b, 2));
            }
        }
        t
    }

    pub(super) fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.words)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::Duration;

    fn entry(generation: u64, failed: bool) -> Entry {
        Entry { generation, failed, slow: false, now: 0, start: 0, minimum: 0, timing: None }
    }

    /// A contender that lost the race to prepare era 2 read a word of era
    /// 0 and was preempted before its CAS; era 2 then records the same
    /// outcomes into that word. The word must not come back to the value
    /// the loser read, or its late CAS would empty a live bucket.
    #[test]
    fn a_live_word_never_returns_to_a_value_of_an_earlier_era() {
        let b = Buckets::new(1, Duration::from_secs(10), 10, &mut Placer::Heap);
        let stripe = Stripe::default();
        let state = AtomicU64::new(0);
        for _ in 0..3 {
            b.record(0, &stripe, entry(0, false), || true);
        }
        let seen = b.word(0, 0, 1, 0).load(Ordering::Relaxed);
        b.prepare(&state, Word(0), 2).unwrap();
        b.record(0, &stripe, entry(2, false), || true);
        b.record(0, &stripe, entry(2, false), || true);
        b.record(0, &stripe, entry(2, true), || true);
        assert_eq!(b.tally(2, 0, 0), Tally { calls: 3, failures: 1, slow: 0 });
        assert_ne!(b.word(2, 0, 1, 0).load(Ordering::Relaxed), seen, "era 2's word equals era 0's");
        // A late writer of era 0 drops its record.
        b.record(0, &stripe, entry(0, true), || true);
        assert_eq!(b.tally(2, 0, 0), Tally { calls: 3, failures: 1, slow: 0 });
    }

    /// Past 2^16 outcomes a bucket halves its counts: it keeps its failure
    /// rate, never raises it by rounding, and never holds fewer than 2^15
    /// outcomes.
    #[test]
    fn a_full_bucket_keeps_its_rate() {
        let b = Buckets::new(1, Duration::from_secs(10), 1, &mut Placer::Heap);
        let stripe = Stripe::default();
        for i in 0..300_000u64 {
            b.record(0, &stripe, entry(0, i % 4 == 0), || true);
            if i > 1 << 16 && i % 1000 == 0 {
                let t = b.tally(0, 0, 0);
                assert!((1 << 15..1 << 16).contains(&t.calls), "{t:?}");
                let rate = t.failures as f64 / t.calls as f64;
                assert!((0.249..0.251).contains(&rate), "rate {rate} after {i}: {t:?}");
            }
        }
        // Exactly at the halving: 65535 outcomes, half of them failures
        // (rounded down) become 32768 and 16383, not a higher rate.
        let b = Buckets::new(1, Duration::from_secs(10), 1, &mut Placer::Heap);
        for i in 0..COUNT_MASK {
            b.record(0, &stripe, entry(0, i % 2 == 1), || true);
        }
        assert_eq!(b.tally(0, 0, 0), Tally { calls: 1 << 15, failures: (1 << 14) - 1, slow: 0 });
    }
}
