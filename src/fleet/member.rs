//! One breaker's part in the fleet: what it sends each tick and how it
//! follows the fleet's answer (see `mod.rs`, "The model").

use super::wire::{Reply, Send};
use crate::breaker::CircuitBreaker;
use crate::state::State;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// A breaker of this instance and what its fleet thread remembers of it.
/// The breaker is held weakly: the fleet never keeps one alive (a dropped
/// or evicted breaker stops taking part; the worker holds each strongly
/// only for the length of a tick).
pub(crate) struct Member {
    pub(crate) breaker: Weak<CircuitBreaker>,
    /// The fleet generation last answered (`None` before the first answer
    /// and after a failed tick: outcomes are added only to a generation
    /// this instance has seen).
    seen: Option<u64>,
    /// The breaker's running totals at the last tick.
    totals: Totals,
    /// The local generation the fleet holds open.
    held: Option<u64>,
    /// The fleet's trial claimed here: (fleet generation, the local
    /// generation running it, or `None` if it could not start, which
    /// reports as reopened at once rather than leaving the fleet to wait
    /// out the lease).
    trial: Option<(u64, Option<u64>)>,
    /// The fleet's last known deadline on the breaker's clock: where a
    /// released hold ends.
    until: u64,
}

#[derive(Clone, Copy, Default, PartialEq, Debug)]
struct Totals {
    calls: u64,
    failures: u64,
    slow: u64,
    rejected: u64,
}

impl Totals {
    fn of(cb: &CircuitBreaker) -> Totals {
        let m = cb.metrics();
        Totals { calls: m.calls, failures: m.failures, slow: m.slow_calls, rejected: m.rejected }
    }
}

impl Member {
    pub(crate) fn new(breaker: &Arc<CircuitBreaker>) -> Member {
        let totals = Totals::of(breaker);
        Member { breaker: Arc::downgrade(breaker), seen: None, totals, held: None, trial: None, until: 0 }
    }

    /// Whether this member is `b`'s.
    pub(crate) fn is(&self, b: &Arc<CircuitBreaker>) -> bool {
        std::ptr::eq(self.breaker.as_ptr(), Arc::as_ptr(b))
    }

    /// What this tick sends for `cb` (this member's breaker): the outcomes
    /// since the last one, whether calls were turned away in a state the
    /// fleet drives (demand for a trial: an operator's `ForcedOpen` is
    /// not), and the trial's verdict.
    pub(crate) fn send(&mut self, cb: &CircuitBreaker) -> Send {
        let now = Totals::of(cb);
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let drivable = matches!(cb.load().state(), State::Closed | State::Open | State::HalfOpen);
        let send = Send {
            seen: self.seen,
            calls: d(now.calls, self.totals.calls),
            failures: d(now.failures, self.totals.failures),
            slow: d(now.slow, self.totals.slow),
            demand: drivable && now.rejected != self.totals.rejected,
            verdict: self.trial.and_then(|(fleet, local)| match local {
                Some(t) => Some((fleet, cb.trial_verdict(t)?)),
                None => Some((fleet, false)),
            }),
        };
        // Sent or lost with the tick: never sent twice, never late.
        self.totals = now;
        send
    }

    /// Makes the breaker agree with the fleet's answer. `margin` is how
    /// long past the fleet's deadline a hold lasts if it is not renewed.
    pub(crate) fn follow(&mut self, cb: &CircuitBreaker, r: &Reply, margin: Duration) {
        self.until = cb.now().saturating_add(r.left.as_nanos() as u64);
        let hold = self.until.saturating_add(margin.as_nanos() as u64);
        if self.trial.is_some_and(|(fleet, _)| fleet != r.generation) {
            self.trial = None; // the verdict was taken (or the trial lost)
        }
        match r.state {
            FleetState::HalfOpen if r.mine => {
                if self.trial.is_none() {
                    self.held = cb.hold_open(hold);
                    let local = self.held.and_then(|g| cb.begin_fleet_trial(g));
                    if local.is_some() {
                        self.held = None;
                    }
                    self.trial = Some((r.generation, local));
                }
            }
            FleetState::Open | FleetState::HalfOpen => {
                self.held = match self.held {
                    Some(g) if cb.set_deadline(g, hold) => Some(g),
                    _ => cb.hold_open(hold),
                };
            }
            FleetState::Closed => {
                if let Some(g) = self.held.take() {
                    cb.close_hold(g);
                }
            }
        }
        self.seen = Some(r.generation);
    }

    /// The breaker decides alone from now on (the tick failed, or it left
    /// the fleet). A hold ends at the fleet's last known deadline, or
    /// `grace` from now if that is later: after one failed tick the fleet
    /// is given the next one to come back before every held instance,
    /// whose fleet deadline may be long past, starts a trial of its own at
    /// once. A trial running here goes on, and is remembered: if the fleet
    /// still has it in force when Redis answers again, its verdict is
    /// reported then rather than a second trial started.
    pub(crate) fn release(&mut self, grace: Duration) {
        if let (Some(g), Some(cb)) = (self.held.take(), self.breaker.upgrade()) {
            let at = self.until.max(cb.now().saturating_add(grace.as_nanos() as u64));
            cb.set_deadline(g, at);
        }
        self.seen = None;
    }
}

/// The fleet's breaker's state, as the script answers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FleetState {
    Closed,
    Open,
    HalfOpen,
}
