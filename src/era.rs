//! What a generation needs beyond the state word, and how it is published
//! before the generation becomes visible.
//!
//! # The rule
//!
//! A generation `g` owns a few words besides the state word: its deadline
//! or start time (`ext`), its half-open probe counts, its window's live
//! counts and its run of consecutive failures. Each kind comes in two
//! copies, indexed by `g % 2`: generation `g` writes only its own copy,
//! which generation `g - 1` (the one still current while `g` is being
//! prepared) never reads.
//!
//! Every thread contending to move the breaker from word `w` (generation
//! `g - 1`) to generation `g` first writes `g`'s copies, then tries the
//! state CAS. A copy is written by compare-and-swap from the value last
//! read, and only while the state word is still exactly `w`, so:
//!
//! - when `g` becomes visible, every copy it owns is already written for
//!   `g`: no reader ever sees a state without its deadline, and no window
//!   of `g` starts with another era's counts;
//! - a contender that lost (or was preempted) cannot overwrite anything
//!   once `g` is visible: its CAS expects a value from before `g`'s
//!   preparation, which the winner replaced, and which `g` never writes
//!   back, since every such word carries a tag of its generation (the time
//!   window's bucket words too, see `window/time.rs`);
//! - nothing is a lock: a preempted contender delays no one.
//!
//! Writers of a generation's counters check the copy's tag against their
//! own generation; readers take the copy of the current state word's
//! generation. A tag is the low bits of the generation, compared only for
//! equality. Two generations of one parity meet in one copy only if a
//! thread is preempted between reading a copy and writing it while 2^k
//! transitions happen (k = 28 for probes, 38 for counters: hours of
//! back-to-back transitions; 9 for time buckets, whose 8-bit tag leaves
//! their stamps 40 bits), and even then its CAS must find the exact value it
//! read. The `ext` tag is 8 bits, to leave its time 53: there the
//! exact value includes the time to the microsecond, so a stale write needs
//! 256 transitions within one microsecond of the clock (with the coarse
//! clock, one millisecond) during the preemption, and writes a deadline of
//! that same moment.
//!
//! ```text
//! ext:     [ tag 8 | state 3 | micros 53 ]    Open, HalfOpen: the deadline
//!                                             other states: the start time
//! probes:  [ tag 28 | slow 9 | fail 9 | ok 9 | taken 9 ]
//! counter: [ tag 38 | count 26 ]               live counts, consecutive failures
//! ```
//!
//! Times are microseconds on the breaker's clock since it was built (53
//! bits: 285 years, more than the longest wait, 100 years, plus any process
//! lifetime).

use crate::state::{State, Word};
use crate::sync::{AtomicU64, Ordering};

/// The copy of generation `g`.
#[inline]
pub(crate) const fn parity(generation: u64) -> usize {
    (generation & 1) as usize
}

const EXT_TAG_SHIFT: u32 = 56;
const EXT_STATE_SHIFT: u32 = 53;
/// The largest time an `ext` word holds, in microseconds.
pub(crate) const MAX_MICROS: u64 = (1 << EXT_STATE_SHIFT) - 1;

/// A generation's deadline (`Open`, `HalfOpen`) or start time (the others).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ext(pub(crate) u64);

impl Ext {
    pub(crate) fn new(generation: u64, state: State, micros: u64) -> Ext {
        let tag = generation & ((1 << (64 - EXT_TAG_SHIFT)) - 1);
        Ext(tag << EXT_TAG_SHIFT | (state as u64) << EXT_STATE_SHIFT | micros.min(MAX_MICROS))
    }
    pub(crate) fn is_for(self, generation: u64, state: State) -> bool {
        self.0 >> EXT_STATE_SHIFT == Ext::new(generation, state, 0).0 >> EXT_STATE_SHIFT
    }
    pub(crate) fn tag_matches(self, generation: u64) -> bool {
        self.0 >> EXT_TAG_SHIFT == Ext::new(generation, State::Closed, 0).0 >> EXT_TAG_SHIFT
    }
    /// Whether this copy of `generation` holds a competitor's value for
    /// another state (see `CircuitBreaker::repair_ext`).
    pub(crate) fn needs_repair(self, generation: u64, state: State) -> bool {
        self.tag_matches(generation) && !self.is_for(generation, state)
    }
    /// The time it holds, in nanoseconds.
    pub(crate) fn nanos(self) -> u64 {
        (self.0 & MAX_MICROS) * 1000
    }
}

/// Nanoseconds to whole microseconds, rounded up (a deadline is never early).
pub(crate) fn micros_ceil(nanos: u64) -> u64 {
    nanos.div_ceil(1000)
}

const FIELD: u32 = 9;
const FIELD_MASK: u64 = (1 << FIELD) - 1;
const PROBE_TAG_SHIFT: u32 = 4 * FIELD;

/// A half-open trial's probes: admitted (`taken`) and reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Probes(pub(crate) u64);

impl Probes {
    /// No probe yet, for generation `g`.
    pub(crate) fn empty(generation: u64) -> Probes {
        Probes(generation << PROBE_TAG_SHIFT)
    }
    pub(crate) fn tag_matches(self, generation: u64) -> bool {
        self.0 >> PROBE_TAG_SHIFT == Probes::empty(generation).0 >> PROBE_TAG_SHIFT
    }
    fn field(self, k: u32) -> u32 {
        ((self.0 >> (k * FIELD)) & FIELD_MASK) as u32
    }
    pub(crate) fn taken(self) -> u32 {
        self.field(0)
    }
    pub(crate) fn ok(self) -> u32 {
        self.field(1)
    }
    pub(crate) fn fail(self) -> u32 {
        self.field(2)
    }
    pub(crate) fn slow(self) -> u32 {
        self.field(3)
    }
    /// The same trial with new counts (each at most 511).
    pub(crate) fn with(self, taken: u32, ok: u32, fail: u32, slow: u32) -> Probes {
        let keep = self.0 & !((1 << PROBE_TAG_SHIFT) - 1);
        let f = |v: u32, k: u32| (v as u64 & FIELD_MASK) << (k * FIELD);
        Probes(keep | f(taken, 0) | f(ok, 1) | f(fail, 2) | f(slow, 3))
    }
}

/// A counter word: `[tag 38 | count 26]`. Counts wrap modulo 2^26; a sum
/// over stripes is read back as signed (see `Counter::signed`).
pub(crate) const COUNT_BITS: u32 = 26;
pub(crate) const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// A counter for generation `generation`, starting at `count`.
#[inline]
pub(crate) const fn counter(generation: u64, count: u64) -> u64 {
    generation << COUNT_BITS | (count & COUNT_MASK)
}

/// Whether counter word `c` belongs to `generation`.
#[inline]
pub(crate) const fn counter_is_for(c: u64, generation: u64) -> bool {
    (c ^ counter(generation, 0)) >> COUNT_BITS == 0
}

/// Adds `delta` to counter `c` if it belongs to `generation`; a counter of
/// another generation is left alone (that generation no longer counts, or
/// the caller's permit is stale). Returns the new count, or `None`.
pub(crate) fn add(c: &AtomicU64, generation: u64, delta: i64) -> Option<u64> {
    // Relaxed: the word is self-contained (tag and count change in one
    // step) and publishes nothing else.
    let mut cur = c.load(Ordering::Relaxed);
    loop {
        if !counter_is_for(cur, generation) {
            return None;
        }
        let n = (cur & COUNT_MASK).wrapping_add(delta as u64) & COUNT_MASK;
        // Relaxed: as above.
        match c.compare_exchange_weak(cur, counter(generation, n), Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Some(n),
            Err(actual) => cur = actual,
        }
    }
}

/// Publishes `desired` into `word` for the generation `from` leads to,
/// unless `done(current)` says it is already there. Written only while the
/// state word is still `from`: returns the state word found otherwise.
pub(crate) fn publish(
    word: &AtomicU64,
    state: &AtomicU64,
    from: Word,
    desired: u64,
    done: impl Fn(u64) -> bool,
) -> Result<(), Word> {
    // Acquire: a copy written by a competitor is read whole with what it
    // published before.
    let mut cur = word.load(Ordering::Acquire);
    loop {
        if done(cur) {
            return Ok(());
        }
        // Acquire: the check that the generation is still being prepared.
        // The CAS below is what makes it stick: it fails if anyone wrote
        // the copy since `cur` was read, and the winner always does before
        // its state CAS.
        let now = Word(state.load(Ordering::Acquire));
        if now != from {
            return Err(now);
        }
        // AcqRel: the copy is published before the state CAS (Release)
        // that makes the generation visible; Acquire on failure to retry
        // from what is there.
        match word.compare_exchange(cur, desired, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(()),
            Err(actual) => cur = actual,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_round_trips_and_tags() {
        let e = Ext::new(5, State::Open, 1234);
        assert_eq!(e.nanos(), 1_234_000);
        assert!(e.is_for(5, State::Open) && !e.is_for(5, State::HalfOpen) && !e.is_for(7, State::Open));
        assert!(e.tag_matches(5) && !e.tag_matches(3));
        assert_eq!(Ext::new(1, State::Closed, u64::MAX).nanos(), MAX_MICROS * 1000);
        assert_eq!(micros_ceil(1001), 2);
        assert_eq!(micros_ceil(1000), 1);
    }

    #[test]
    fn probes_round_trip() {
        let p = Probes::empty(9).with(511, 3, 2, 1);
        assert_eq!((p.taken(), p.ok(), p.fail(), p.slow()), (511, 3, 2, 1));
        assert!(p.tag_matches(9) && !p.tag_matches(11));
    }

    #[test]
    fn counters_ignore_other_generations() {
        let c = AtomicU64::new(counter(4, 0));
        assert_eq!(add(&c, 4, 3), Some(3));
        assert_eq!(add(&c, 4, -5), Some(COUNT_MASK - 1), "wraps modulo 2^26");
        assert_eq!(add(&c, 6, 1), None);
        assert!(counter_is_for(c.load(Ordering::Relaxed), 4));
    }
}
