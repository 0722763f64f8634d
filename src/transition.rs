//! Transitions: moving the breaker from one state word to the next.
//!
//! Every transition is one compare-and-swap of the state word from the
//! exact word the deciding thread read, so of any number of threads racing
//! to trip, to start a trial or to end one, exactly one wins; the others see
//! their CAS fail and look again. Before its CAS, each contender publishes
//! what the new generation needs (its deadline or start time, an empty
//! trial, empty window counts; see `era.rs`), so no thread ever sees a
//! state without them, and a contender preempted anywhere blocks and
//! misleads no one. After its CAS, the winner announces the event (see
//! `events.rs`).

use crate::breaker::CircuitBreaker;
use crate::clock::saturating_nanos;
use crate::config::Config;
use crate::era::{self, micros_ceil, parity, Ext, Probes};
use crate::events::{self, Transition, Why};
use crate::state::{State, Word};
use crate::sync::Ordering;
use std::time::Duration;

impl CircuitBreaker {
    /// Moves from exactly `from` to `to` (`from.enter(..)`): publishes what
    /// `to` needs, swaps the word, tells the listeners. Returns the word now
    /// in place: `Ok(to)`, or `Err(actual)` if the word was not `from`.
    pub(crate) fn transition(&self, from: Word, to: Word, why: impl Into<Why>) -> Result<Word, Word> {
        self.transition_until(from, to, why, None)
    }

    /// `transition`, with `until` (ns on the breaker's clock) as the new
    /// generation's deadline instead of the one its config gives (the
    /// fleet's hold: see `fleet/`).
    pub(crate) fn transition_until(
        &self,
        from: Word,
        to: Word,
        why: impl Into<Why>,
        until: Option<u64>,
    ) -> Result<Word, Word> {
        let Why { reason, window } = why.into();
        let now = self.now();
        let g = to.generation();
        let p = parity(g);
        let word = &self.hot.word;
        let ext = match until {
            Some(at) => Ext::new(g, to.state(), micros_ceil(at)),
            None => self.ext_at(to, now),
        };
        era::publish(&self.hot.ext[p], word, from, ext.0, |cur| Ext(cur).is_for(g, to.state()))?;
        match to.state() {
            State::HalfOpen => {
                let empty = Probes::empty(g).0;
                era::publish(&self.hot.probes[p], word, from, empty, |cur| cur == empty)?;
            }
            s if s.records() => {
                self.windows.prepare(word, from, g)?;
                let zero = era::counter(g, 0);
                era::publish(&self.cold.consecutive[p], word, from, zero, |cur| cur == zero)?;
            }
            _ => {}
        }
        // AcqRel: transitions form one chain of CASes, and the new word
        // publishes everything written above (Release); Acquire on failure
        // so the caller can act on the word it got.
        if let Err(actual) = word.compare_exchange(from.0, to.0, Ordering::AcqRel, Ordering::Acquire) {
            return Err(Word(actual));
        }
        // A competitor aiming at another state (a manual transition racing
        // an automatic one, a trial's timeout racing its last probe) may
        // have published the copy last: put ours there (see `repair_ext`).
        self.repair_ext(to, ext);
        // Relaxed: informational.
        self.cold.last_transition.store(now, Ordering::Relaxed);
        self.cold.stats.transition(reason, to.state() == State::Open);
        let event = Transition {
            from: from.state(),
            to: to.state(),
            reason,
            at: Duration::from_nanos(now),
            generation: g,
            window,
        };
        // A shared breaker's leftover events are delivered by each
        // process's watcher: `EV` is one flag for every process, and a call
        // in a process whose own queue is empty would clear it.
        if self.events.emit(&event, || self.load().generation()) && !self.events.is_shared() {
            events::flag(word, true);
        }
        Ok(to)
    }

    /// The deadline or start time of `to`, entered at `now`.
    pub(crate) fn ext_at(&self, to: Word, now: u64) -> Ext {
        let config = self.config.load();
        let at = match to.state() {
            State::Open => now.saturating_add(self.open_wait(&config, to.level(), to.generation())),
            State::HalfOpen => now.saturating_add(saturating_nanos(config.half_open_max_wait)),
            _ => now,
        };
        Ext::new(to.generation(), to.state(), micros_ceil(at))
    }

    /// Makes `w`'s copy of `ext` its own, if it holds a competitor's value
    /// for another state: contenders for one generation aiming at
    /// different states all publish before their CAS, and the last to
    /// publish may not be the winner. The winner repairs the copy right
    /// after its CAS, and so does any reader that gets there first (with
    /// `ext` computed at the reader's time: a deadline a little late,
    /// never early), so no one acts on the wrong value. The copy is
    /// compare-and-swapped from the wrong value only: the first repair
    /// stands. Returns the copy now.
    pub(crate) fn repair_ext(&self, w: Word, ext: Ext) -> Ext {
        let (g, copy) = (w.generation(), &self.hot.ext[parity(w.generation())]);
        // Acquire: as in `ext`.
        let mut cur = Ext(copy.load(Ordering::Acquire));
        // A copy whose tag is not `g`'s belongs to a later generation: `w`
        // is stale, nothing to repair.
        while cur.needs_repair(g, w.state()) {
            // AcqRel: as in `era::publish`.
            match copy.compare_exchange(cur.0, ext.0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return ext,
                Err(actual) => cur = Ext(actual),
            }
        }
        cur
    }

    /// The open wait at backoff `level`, with the jitter of the opening of
    /// `generation`, never more than `max_open_wait`.
    pub(crate) fn open_wait(&self, config: &Config, level: u32, generation: u64) -> u64 {
        let base = config.open_wait.as_secs_f64() * config.backoff_multiplier.powi(level as i32);
        let factor = 1.0 + config.jitter * (2.0 * self.random(generation) - 1.0);
        let wait = (base * factor).min(config.max_open_wait.as_secs_f64());
        (wait * 1e9) as u64
    }

    /// A uniform number in [0, 1) for the opening of `generation`: a hash
    /// (splitmix64) of the generation and this breaker's id, so the jitter
    /// is drawn once per opening, whoever computes it, and breakers that
    /// trip together still spread out.
    fn random(&self, generation: u64) -> f64 {
        let seed = self.id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.origin;
        let mut z = seed ^ generation.wrapping_mul(0xD1B5_4A32_D192_ED03);
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::clock::Clock;

    /// Two contenders for generation 1: a trip (to `Open`) and an operator
    /// (to `Disabled`). Both publish; the operator publishes last but the
    /// trip wins the CAS, and is preempted before its repair. A reader
    /// must not take the operator's start time for the open deadline.
    #[test]
    fn a_reader_never_acts_on_a_losing_contenders_copy() {
        let (clock, _mock) = Clock::mock();
        let cb = CircuitBreaker::builder()
            .clock(clock)
            .open_wait(Duration::from_secs(1))
            .jitter(0.0)
            .build()
            .unwrap();
        let from = cb.load();
        let (trip, operator) = (from.enter(State::Open, 0), from.enter(State::Disabled, 0));
        let copy = &cb.hot.ext[parity(1)];
        copy.store(cb.ext_at(trip, 0).0, Ordering::Relaxed);
        copy.store(cb.ext_at(operator, 0).0, Ordering::Relaxed); // published last
        cb.hot.word.store(trip.0, Ordering::Relaxed); // the trip's CAS won; no repair yet
        let r = cb.try_acquire().unwrap_err();
        assert_eq!((r.state(), r.retry_after()), (State::Open, Duration::from_secs(1)));
        assert_eq!(cb.state(), State::Open);
        // The winner's own repair, late, finds the copy right and leaves it.
        assert_eq!(cb.repair_ext(trip, cb.ext_at(trip, 0)), cb.ext_at(trip, 0));
    }
}
