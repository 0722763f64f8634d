//! The breaker's states and the packed state word.
//!
//! All of a breaker's state that must change together lives in one
//! `AtomicU64`, changed only by compare-and-swap, so a transition, a
//! half-open admission and a probe result are each one atomic step:
//!
//! ```text
//!  63           43 42  33 32  24 23  15 14   6 5    3 2   0
//! +---------------+------+------+------+------+------+-----+
//! |  generation   | slow | fail |  ok  | taken| level|state|
//! |    21 bits    |  9   |  9   |  9   |  9   |  4   |  3  |
//! +---------------+------+------+------+------+------+-----+
//! ```
//!
//! - `state`: a [`State`].
//! - `level`: how many half-open trials in a row have failed; the open wait
//!   grows by the backoff multiplier per level (capped at 15).
//! - `taken`, `ok`, `fail`, `slow`: half-open bookkeeping, zero in every
//!   other state. `taken` is the probe slots handed out and not given back
//!   (a probe that reports keeps its slot: the trial admits at most
//!   `half_open_permits` calls); `ok`, `fail` and `slow` are what the probes
//!   reported.
//! - `generation`: bumped by every transition. Every permit carries the
//!   generation it was issued in; an outcome whose generation is not the
//!   current one is stale and is dropped. Outcomes in the windows are tagged
//!   with it too, so entering `Closed` starts an empty window at no cost.
//!   It wraps after 2^21 transitions: a permit held across exactly that many
//!   would be taken as fresh.

use std::fmt;

/// The state of a circuit breaker.
///
/// ```
/// use nanobreaker::{CircuitBreaker, State};
/// let cb = CircuitBreaker::builder().build().unwrap();
/// assert_eq!(cb.state(), State::Closed);
/// cb.transition_to(State::ForcedOpen);
/// assert!(cb.try_acquire().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum State {
    /// Calls flow and their outcomes are recorded; the breaker trips when a
    /// rate passes its threshold.
    Closed = 0,
    /// Calls are rejected at once until the open wait has passed.
    Open = 1,
    /// A bounded number of probe calls decide whether to close or reopen.
    HalfOpen = 2,
    /// Operator state: every call is allowed and nothing is recorded.
    Disabled = 3,
    /// Operator state: every call is allowed and recorded; the breaker never trips.
    MetricsOnly = 4,
    /// Operator state: every call is rejected until another state is chosen.
    ForcedOpen = 5,
}

impl State {
    pub(crate) const fn from_bits(bits: u64) -> State {
        match bits & STATE_MASK {
            0 => State::Closed,
            1 => State::Open,
            2 => State::HalfOpen,
            3 => State::Disabled,
            4 => State::MetricsOnly,
            _ => State::ForcedOpen,
        }
    }

    /// Whether outcomes recorded in this state go into the window.
    pub(crate) const fn records(self) -> bool {
        matches!(self, State::Closed | State::MetricsOnly)
    }

    /// A short lowercase name, as used in logs and by the C ABI.
    pub const fn name(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
            State::Disabled => "disabled",
            State::MetricsOnly => "metrics_only",
            State::ForcedOpen => "forced_open",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const STATE_MASK: u64 = 0b111;
const LEVEL_SHIFT: u32 = 3;
const FIELD_BITS: u32 = 9;
const FIELD_MASK: u64 = (1 << FIELD_BITS) - 1;
const TAKEN_SHIFT: u32 = 7;
const OK_SHIFT: u32 = TAKEN_SHIFT + FIELD_BITS;
const FAIL_SHIFT: u32 = OK_SHIFT + FIELD_BITS;
const SLOW_SHIFT: u32 = FAIL_SHIFT + FIELD_BITS;
const GEN_SHIFT: u32 = SLOW_SHIFT + FIELD_BITS;
/// Generations are compared modulo this.
pub(crate) const GEN_MASK: u32 = (1 << (64 - GEN_SHIFT)) - 1;
/// The highest backoff level kept.
pub(crate) const MAX_LEVEL: u32 = 15;

/// A decoded state word. Plain data: it is loaded from and stored to the
/// atomic as a `u64`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word(pub(crate) u64);

impl Word {
    /// The word of a fresh breaker: closed, generation 0.
    pub(crate) const INITIAL: Word = Word(0);

    pub(crate) const fn state(self) -> State {
        State::from_bits(self.0)
    }
    pub(crate) const fn level(self) -> u32 {
        ((self.0 >> LEVEL_SHIFT) & 0xF) as u32
    }
    pub(crate) const fn generation(self) -> u32 {
        (self.0 >> GEN_SHIFT) as u32
    }
    pub(crate) const fn taken(self) -> u32 {
        ((self.0 >> TAKEN_SHIFT) & FIELD_MASK) as u32
    }
    pub(crate) const fn ok(self) -> u32 {
        ((self.0 >> OK_SHIFT) & FIELD_MASK) as u32
    }
    pub(crate) const fn fail(self) -> u32 {
        ((self.0 >> FAIL_SHIFT) & FIELD_MASK) as u32
    }
    pub(crate) const fn slow(self) -> u32 {
        ((self.0 >> SLOW_SHIFT) & FIELD_MASK) as u32
    }

    /// The word of a new state entered from this one: next generation,
    /// probe counters cleared, the given backoff level.
    pub(crate) const fn enter(self, state: State, level: u32) -> Word {
        let gen = (self.generation().wrapping_add(1) & GEN_MASK) as u64;
        let level = if level > MAX_LEVEL { MAX_LEVEL } else { level } as u64;
        Word(gen << GEN_SHIFT | level << LEVEL_SHIFT | state as u64)
    }

    /// The same state and generation with new probe counters (each at most 511).
    pub(crate) const fn with_probes(self, taken: u32, ok: u32, fail: u32, slow: u32) -> Word {
        let keep = self.0 & (STATE_MASK | 0xF << LEVEL_SHIFT | (GEN_MASK as u64) << GEN_SHIFT);
        Word(
            keep | (taken as u64 & FIELD_MASK) << TAKEN_SHIFT
                | (ok as u64 & FIELD_MASK) << OK_SHIFT
                | (fail as u64 & FIELD_MASK) << FAIL_SHIFT
                | (slow as u64 & FIELD_MASK) << SLOW_SHIFT,
        )
    }
}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Word")
            .field("state", &self.state())
            .field("generation", &self.generation())
            .field("level", &self.level())
            .field("taken", &self.taken())
            .field("ok", &self.ok())
            .field("fail", &self.fail())
            .field("slow", &self.slow())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let w = Word::INITIAL.enter(State::HalfOpen, 3).with_probes(511, 7, 500, 2);
        assert_eq!(w.state(), State::HalfOpen);
        assert_eq!(w.generation(), 1);
        assert_eq!(w.level(), 3);
        assert_eq!((w.taken(), w.ok(), w.fail(), w.slow()), (511, 7, 500, 2));
        let o = w.enter(State::Open, 99);
        assert_eq!((o.state(), o.generation(), o.level()), (State::Open, 2, MAX_LEVEL));
        assert_eq!((o.taken(), o.ok(), o.fail(), o.slow()), (0, 0, 0, 0));
    }

    #[test]
    fn generation_wraps() {
        let mut w = Word::INITIAL;
        for _ in 0..GEN_MASK {
            w = w.enter(State::Closed, 0);
        }
        assert_eq!(w.generation(), GEN_MASK);
        assert_eq!(w.enter(State::Open, 0).generation(), 0);
    }
}
