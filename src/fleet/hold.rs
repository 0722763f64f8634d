//! What the fleet does to a local breaker: hold it open, start the fleet's
//! trial on it, close it. Each acts on a generation the fleet names, so the
//! fleet changes only what it set itself (see `mod.rs`). None of this is on
//! a call path: the fleet thread runs it.

use crate::breaker::CircuitBreaker;
use crate::era::{micros_ceil, parity, Ext};
use crate::events::Reason;
use crate::state::{State, GEN_MASK};
use crate::sync::Ordering;

impl CircuitBreaker {
    /// Holds the breaker open until `until` (ns on its clock): `Closed` or
    /// `HalfOpen` enter `Open` (reason `Fleet`) with that deadline; `Open`
    /// keeps its generation and takes that deadline. Returns the generation
    /// that holds, or `None` for an operator state, which the fleet never
    /// overrides.
    pub(crate) fn hold_open(&self, until: u64) -> Option<u64> {
        let mut w = self.load();
        loop {
            match w.state() {
                State::Open => {
                    if self.set_deadline(w.generation(), until) {
                        return Some(w.generation());
                    }
                    let now = self.load();
                    if now == w {
                        // The word did not move, yet its deadline copy is
                        // not its generation's (a hostile shared region):
                        // nothing to hold by.
                        return None;
                    }
                    w = now;
                }
                State::Closed | State::HalfOpen => {
                    match self.transition_until(
                        w,
                        w.enter(State::Open, w.level()),
                        Reason::Fleet,
                        Some(until),
                    ) {
                        Ok(now) => return Some(now.generation()),
                        Err(actual) => w = actual,
                    }
                }
                _ => return None,
            }
        }
    }

    /// Makes `until` the deadline of generation `g`, if the breaker is still
    /// `Open` in `g`. A call that read the old deadline may still start a
    /// trial with it; the fleet renews a hold long before it runs out, so
    /// that happens only when the fleet has stopped renewing, and then the
    /// breaker deciding alone is what is meant.
    pub(crate) fn set_deadline(&self, g: u64, until: u64) -> bool {
        let copy = &self.hot.ext[parity(g)];
        let new = Ext::new(g, State::Open, micros_ceil(until));
        // Acquire: as in `ext`.
        let mut cur = Ext(copy.load(Ordering::Acquire));
        loop {
            // Checked against the word, not the copy's 8-bit tag: the copy
            // may be a later generation's of the same parity.
            let w = self.load();
            if w.state() != State::Open || w.generation() != g || !cur.tag_matches(g) {
                return false;
            }
            // AcqRel: as in `era::publish`; a copy of `g` replaced by
            // another copy of `g`.
            match copy.compare_exchange(cur.0, new.0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(actual) => cur = Ext(actual),
            }
        }
    }

    /// Starts the fleet's trial here: `Open` in generation `g` (the hold)
    /// enters `HalfOpen` (reason `Fleet`), run by the breaker's own rules.
    /// Returns the trial's generation.
    pub(crate) fn begin_fleet_trial(&self, g: u64) -> Option<u64> {
        let w = self.load();
        if w.state() != State::Open || w.generation() != g {
            return None;
        }
        self.transition(w, w.enter(State::HalfOpen, w.level()), Reason::Fleet)
            .ok()
            .map(|now| now.generation())
    }

    /// Closes the breaker if it is still `Open` in generation `g` (the
    /// hold): the fleet's breaker closed.
    pub(crate) fn close_hold(&self, g: u64) -> bool {
        let w = self.load();
        w.state() == State::Open
            && w.generation() == g
            && self.transition(w, w.enter(State::Closed, 0), Reason::Fleet).is_ok()
    }

    /// How the fleet's trial that entered `HalfOpen` in generation `t`
    /// went: `None` while it runs, `Some(true)` if the breaker went from it
    /// to `Closed` (its probes, or an operator's `reset`: the operator
    /// vouched for the dependency). Anything else (the trial reopened,
    /// timed out, an operator state) counts as reopened.
    pub(crate) fn trial_verdict(&self, t: u64) -> Option<bool> {
        let w = self.load();
        if w.generation() == t {
            // One word, judged as a call would see it: Open once the
            // trial's max wait has passed.
            return (self.visible(w) != State::HalfOpen).then_some(false);
        }
        // The next generation as the word counts (it wraps within its bits).
        Some(w.state() == State::Closed && w.generation() == t.wrapping_add(1) & GEN_MASK)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::{CircuitBreaker, Clock, Reason, State};
    use std::time::Duration;

    fn breaker() -> (CircuitBreaker, crate::MockClock) {
        let (clock, mock) = Clock::mock();
        let cb = CircuitBreaker::builder().clock(clock).build().unwrap();
        (cb, mock)
    }

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn a_hold_keeps_the_breaker_open_past_its_own_wait_until_released() {
        let (cb, mock) = breaker();
        let g = cb.hold_open(cb.now() + 100 * SEC).unwrap();
        assert_eq!(cb.state(), State::Open);
        mock.advance(Duration::from_secs(60));
        assert!(cb.try_acquire().is_err(), "the config's 5 s wait does not end a hold");
        // Renewed: same generation, later deadline.
        assert_eq!(cb.hold_open(cb.now() + 100 * SEC), Some(g));
        // Released (the fleet went away): the deadline is now.
        assert!(cb.set_deadline(g, cb.now()));
        assert!(cb.try_acquire().is_ok(), "decides alone again: a local trial");
        assert_eq!(cb.state(), State::HalfOpen);
        assert!(!cb.set_deadline(g, 0), "a generation that moved on is not touched");
        assert_eq!(cb.metrics().transitions(Reason::Fleet), 1);
    }

    #[test]
    fn the_fleet_trial_runs_by_the_breakers_rules_and_reports_its_verdict() {
        let (cb, _mock) = breaker();
        let g = cb.hold_open(cb.now() + 100 * SEC).unwrap();
        let t = cb.begin_fleet_trial(g).unwrap();
        assert_eq!(cb.trial_verdict(t), None);
        for _ in 0..5 {
            cb.try_acquire().unwrap().success();
        }
        assert_eq!(cb.trial_verdict(t), Some(true));
        assert_eq!(cb.state(), State::Closed);

        let g = cb.hold_open(cb.now() + 100 * SEC).unwrap();
        let t = cb.begin_fleet_trial(g).unwrap();
        cb.try_acquire().unwrap().failure();
        assert_eq!(cb.trial_verdict(t), Some(false));
    }

    #[test]
    fn a_trial_that_closes_across_the_generation_wrap_reads_as_closed() {
        let (cb, _mock) = breaker();
        // The reset lands on 1 + skip, the hold on 2 + skip, and the trial
        // on the last generation: closing it wraps the generation to 0.
        cb.__reset_skipping(crate::state::GEN_MASK - 3);
        let t = cb.begin_fleet_trial(cb.hold_open(cb.now() + SEC).unwrap()).unwrap();
        assert_eq!(t, crate::state::GEN_MASK);
        for _ in 0..5 {
            cb.try_acquire().unwrap().success();
        }
        assert_eq!((cb.state(), cb.metrics().generation), (State::Closed, 0));
        assert_eq!(cb.trial_verdict(t), Some(true));
    }

    #[test]
    fn an_unanswered_trial_is_reopened_at_its_max_wait_without_any_call() {
        let (cb, mock) = breaker();
        let t = cb.begin_fleet_trial(cb.hold_open(cb.now() + SEC).unwrap()).unwrap();
        mock.advance(Duration::from_secs(31));
        assert_eq!(cb.trial_verdict(t), Some(false));
    }

    #[test]
    fn operator_states_and_other_generations_are_left_alone() {
        let (cb, _mock) = breaker();
        cb.transition_to(State::Disabled);
        assert_eq!(cb.hold_open(cb.now() + SEC), None);
        assert_eq!(cb.state(), State::Disabled);
        cb.reset();
        let g = cb.hold_open(cb.now() + SEC).unwrap();
        cb.reset();
        assert!(!cb.close_hold(g), "a reset moved it on: not the fleet's hold");
        assert_eq!(cb.begin_fleet_trial(g), None);
        let g = cb.hold_open(cb.now() + SEC).unwrap();
        assert!(cb.close_hold(g));
        assert_eq!(cb.state(), State::Closed);
    }
}
