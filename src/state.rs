//! The breaker's states and the packed state word.
//!
//! Everything a call must agree on lives in one `AtomicU64`, changed only
//! by compare-and-swap:
//!
//! ```text
//!  63                               10   9    8    7   6    3 2     0
//! +-----------------------------------+----+----+----+-------+-------+
//! |          generation (54)          | EV | CF | SL | level | state |
//! +-----------------------------------+----+----+----+-------+-------+
//! ```
//!
//! - `state`: a [`State`].
//! - `level`: how many half-open trials in a row have failed; the open wait
//!   grows by the backoff multiplier per level (kept up to 15).
//! - `SL`: the slow-call rule is on, so `acquire` reads the clock.
//! - `CF`: the consecutive-failures rule is on, so successes take the long
//!   way (they restart the run of failures).
//! - `EV`: transition events wait for delivery to listeners (see
//!   `events.rs`); the next call delivers some.
//! - `generation`: bumped by every transition. Every permit carries the
//!   generation it was issued in, and an outcome whose generation is not
//!   the current one is dropped: liveness is always equality with the
//!   current word, never serial-number arithmetic. What a generation needs
//!   beyond this word (its deadline, its half-open probes, its window
//!   counts) is published before the generation becomes visible (see
//!   `era.rs`).
//!
//! With no flag set and the state `Closed`, the low 10 bits are zero: the
//! hot path tests one mask.
//!
//! The generation is 54 bits: at one transition every 20 ns, faster than a
//! transition can run, it wraps after 11 years. Only a permit held across
//! exactly a multiple of 2^54 transitions could be mistaken for a fresh one.

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
#[non_exhaustive]
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
const LEVEL_MASK: u64 = 0xF << LEVEL_SHIFT;
/// The slow-call rule is on.
pub(crate) const SLOW_RULE: u64 = 1 << 7;
/// The consecutive-failures rule is on.
pub(crate) const CONSECUTIVE_RULE: u64 = 1 << 8;
/// Events wait for delivery.
pub(crate) const EVENTS: u64 = 1 << 9;
pub(crate) const GEN_SHIFT: u32 = 10;
/// The generation's bits (after shifting down).
pub(crate) const GEN_MASK: u64 = (1 << (64 - GEN_SHIFT)) - 1;
/// The highest backoff level kept.
pub(crate) const MAX_LEVEL: u32 = 15;

/// What `acquire` must find clear to hand out a plain permit at once:
/// `Closed`, no slow-call rule, no events waiting.
pub(crate) const ACQUIRE_FAST: u64 = STATE_MASK | SLOW_RULE | EVENTS;
/// What `record` compares against the permit to count a success at once:
/// the generation, `Closed`, no consecutive-failures rule.
pub(crate) const RECORD_FAST: u64 = !(LEVEL_MASK | SLOW_RULE | EVENTS);

/// A decoded state word. Plain data: it is loaded from and stored to the
/// atomic as a `u64`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word(pub(crate) u64);

impl Word {
    /// The word of a fresh breaker: closed, generation 0, no flags.
    pub(crate) const INITIAL: Word = Word(0);

    pub(crate) const fn state(self) -> State {
        State::from_bits(self.0)
    }
    pub(crate) const fn level(self) -> u32 {
        ((self.0 & LEVEL_MASK) >> LEVEL_SHIFT) as u32
    }
    pub(crate) const fn generation(self) -> u64 {
        self.0 >> GEN_SHIFT
    }
    pub(crate) const fn has(self, flag: u64) -> bool {
        self.0 & flag != 0
    }

    /// Whether a success of a permit of `generation` may be counted at once
    /// in this word: the permit's generation, `Closed`, no
    /// consecutive-failures rule (the bits of `RECORD_FAST`).
    #[inline]
    pub(crate) const fn takes_fast_success(self, generation: u64) -> bool {
        (self.0 ^ generation << GEN_SHIFT) & RECORD_FAST == 0
    }

    /// The word of a new state entered from this one: next generation, the
    /// given backoff level, the same flags.
    pub(crate) const fn enter(self, state: State, level: u32) -> Word {
        let gen = (self.generation().wrapping_add(1) & GEN_MASK) << GEN_SHIFT;
        let level = if level > MAX_LEVEL { MAX_LEVEL } else { level } as u64;
        let flags = self.0 & (SLOW_RULE | CONSECUTIVE_RULE | EVENTS);
        Word(gen | flags | level << LEVEL_SHIFT | state as u64)
    }

    /// Like `enter`, but `skip` more generations ahead (test support: walks
    /// tag wraps without running billions of transitions).
    pub(crate) const fn enter_skipping(self, state: State, skip: u64) -> Word {
        // The generation is the top 54 bits: wrapping here wraps it.
        Word(self.enter(state, 0).0.wrapping_add(skip << GEN_SHIFT))
    }

    /// The same word with `flag` set or cleared.
    pub(crate) const fn with(self, flag: u64, on: bool) -> Word {
        Word(if on { self.0 | flag } else { self.0 & !flag })
    }
}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Word")
            .field("state", &self.state())
            .field("generation", &self.generation())
            .field("level", &self.level())
            .field("slow_rule", &self.has(SLOW_RULE))
            .field("consecutive_rule", &self.has(CONSECUTIVE_RULE))
            .field("events", &self.has(EVENTS))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let w = Word::INITIAL.with(SLOW_RULE, true).enter(State::HalfOpen, 3);
        assert_eq!((w.state(), w.generation(), w.level()), (State::HalfOpen, 1, 3));
        assert!(w.has(SLOW_RULE) && !w.has(CONSECUTIVE_RULE) && !w.has(EVENTS));
        let o = w.with(EVENTS, true).enter(State::Open, 99);
        assert_eq!((o.state(), o.generation(), o.level()), (State::Open, 2, MAX_LEVEL));
        assert!(o.has(EVENTS) && o.has(SLOW_RULE));
        assert!(!o.with(EVENTS, false).has(EVENTS));
    }

    #[test]
    fn the_fast_masks_see_what_they_must() {
        let closed = Word::INITIAL.enter(State::Closed, 0);
        assert_eq!(closed.0 & ACQUIRE_FAST, 0);
        assert_ne!(closed.with(SLOW_RULE, true).0 & ACQUIRE_FAST, 0);
        assert_ne!(closed.with(EVENTS, true).0 & ACQUIRE_FAST, 0);
        assert_eq!(closed.with(CONSECUTIVE_RULE, true).0 & ACQUIRE_FAST, 0);
        let fast = |w: Word, gen: u64| w.takes_fast_success(gen);
        assert!(
            fast(closed, 1) && fast(closed.with(SLOW_RULE, true), 1) && fast(closed.with(EVENTS, true), 1)
        );
        assert!(!fast(closed, 2), "another generation");
        assert!(!fast(closed.with(CONSECUTIVE_RULE, true), 1));
        for s in [State::Open, State::HalfOpen, State::Disabled, State::MetricsOnly, State::ForcedOpen] {
            assert!(!fast(Word::INITIAL.enter(s, 0), 1), "{s:?}");
        }
    }

    #[test]
    fn generation_wraps_within_its_bits() {
        let top = Word(GEN_MASK << GEN_SHIFT | SLOW_RULE);
        let next = top.enter(State::Open, 0);
        assert_eq!((next.generation(), next.state()), (0, State::Open));
        assert!(next.has(SLOW_RULE));
    }
}
