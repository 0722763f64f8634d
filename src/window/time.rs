//! The time window: per stripe, `b` buckets of `length / b`.
//!
//! Each bucket keeps three words (outcomes, failures, slow calls), each
//! `[stamp 44 | count 20]`. A stamp numbers a bucket-length of time within
//! an era, from 1 at the era's start (`ext`, see `era.rs`): buckets are
//! aligned to the moment the era began. The buckets come in two sets, by
//! the era's parity, and an era's set is zeroed before the era becomes
//! visible (like every per-era word, see `era.rs`), so a new era starts
//! empty however soon after the last one, and the tally counts the words
//! of the current set whose stamp is one of the last `b`.
//!
//! A record compare-and-swaps one word: if the stamp is its own it adds
//! one; if the stamp is older it starts the bucket anew with a count of one
//! (the turn); if it is newer the record is late and is dropped from the
//! window. Turn and record are one atomic step, so no record in a live
//! bucket is lost and none from a dead bucket is counted. Before each CAS
//! the writer checks that its generation is still the current one, so a
//! late writer never lands in the next era of its parity (unless preempted
//! between that check and the CAS while two transitions happen and the
//! word comes back to the exact value it read).
//!
//! Stamps are 44 bits: with 1 ms buckets (the shortest) an era counts for
//! 557 years, past the end of the clock's own nanoseconds. Counts saturate
//! at 2^20 - 1 per stripe and bucket; once a bucket's outcome count is
//! full, further outcomes skip all three words, so its failure and slow
//! rates stay true to the outcomes it holds.

use super::stripe::Stripe;
use super::{Entry, Tally};
use crate::era::{self, parity};
use crate::state::Word;
use crate::sync::{AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use strength_reduce::StrengthReducedU64;

const COUNT_BITS: u32 = 20;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
const MAX_STAMP: u64 = (1 << (64 - COUNT_BITS)) - 1;

/// The buckets of every stripe, in two sets by era parity, set-major then
/// stripe-major: stripe `k` of set `p` owns `3 * buckets` words from
/// `(p * stripes + k) * stride * 16` (in lines of 16 words).
pub(super) struct Buckets {
    words: Box<[CachePadded<[AtomicU64; 16]>]>,
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
    Turned,
    Late,
    Full,
    /// The writer's era is over.
    Stale,
}

/// Adds one to `word` for `stamp`: turns a bucket of an older stamp,
/// drops the record if the bucket holds a newer one or is full, or if
/// `live()` says the writer's era is over.
fn bump(word: &AtomicU64, stamp: u64, live: &impl Fn() -> bool) -> Bump {
    // Relaxed throughout: the word is self-contained (stamp and count
    // change in one step) and publishes nothing else.
    let mut cur = word.load(Ordering::Relaxed);
    loop {
        let (s, n) = (cur >> COUNT_BITS, cur & COUNT_MASK);
        let (new, how) = if s == stamp {
            if n == COUNT_MASK {
                return Bump::Full;
            }
            (cur + 1, Bump::Added)
        } else if s > stamp {
            return Bump::Late;
        } else {
            (stamp << COUNT_BITS | 1, Bump::Turned)
        };
        if !live() {
            return Bump::Stale;
        }
        // Relaxed: as above.
        match word.compare_exchange_weak(cur, new, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return how,
            Err(actual) => cur = actual,
        }
    }
}

impl Buckets {
    pub(super) fn new(stripes: usize, length: std::time::Duration, buckets: u32) -> Buckets {
        let stride = (3 * buckets as usize).div_ceil(16);
        let len = (length / buckets).as_nanos() as u64;
        Buckets {
            words: (0..2 * stride * stripes)
                .map(|_| CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
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
        let Entry { generation, failed, slow, now, start, minimum } = e;
        let stamp = self.stamp(now, start);
        let b = (stamp % self.per_lap) as usize;
        let mut judge = match bump(self.word(generation, k, b, 0), stamp, &live) {
            Bump::Late | Bump::Full | Bump::Stale => false,
            how => {
                if failed {
                    bump(self.word(generation, k, b, 1), stamp, &live);
                }
                if slow {
                    bump(self.word(generation, k, b, 2), stamp, &live);
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

    /// Empties the set of the era `from` leads to, while the state word is
    /// still `from` (see `era.rs`).
    pub(super) fn prepare(&self, state: &AtomicU64, from: Word, generation: u64) -> Result<(), Word> {
        for k in 0..self.stripes {
            for b in 0..self.buckets as usize {
                for f in 0..3 {
                    era::publish(self.word(generation, k, b, f), state, from, 0, |cur| cur == 0)?;
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
        let oldest = (current + 1).saturating_sub(self.buckets).max(1);
        // Relaxed: see `bump`.
        let read = |k, b, f| self.word(generation, k, b, f).load(Ordering::Relaxed);
        let mut t = Tally::default();
        for k in 0..self.stripes {
            for b in 0..self.buckets as usize {
                let calls = read(k, b, 0);
                let stamp = calls >> COUNT_BITS;
                if !(oldest..=current).contains(&stamp) {
                    continue;
                }
                let count = |w: u64| if w >> COUNT_BITS == stamp { w & COUNT_MASK } else { 0 };
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
