//! One breaker's part in the fleet: what it sends each tick and how it
//! follows the fleet's answer (see `mod.rs`, "The model").

use super::wire::{Reply, Send};
use crate::breaker::CircuitBreaker;
use std::sync::Arc;
use std::time::Duration;

/// A breaker of this instance and what its fleet thread remembers of it.
pub(crate) struct Member {
    pub(crate) breaker: Arc<CircuitBreaker>,
    /// The fleet generation last answered (`None` before the first answer
    /// and after a failed tick: outcomes are added only to a generation
    /// this instance has seen).
    seen: Option<u64>,
    /// The breaker's running totals at the last tick.
    totals: Totals,
    /// The local generation the fleet holds open.
    held: Option<u64>,
    /// The fleet's trial run here: (fleet generation, local generation).
    trial: Option<(u64, u64)>,
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
    pub(crate) fn new(breaker: Arc<CircuitBreaker>) -> Member {
        let totals = Totals::of(&breaker);
        Member { breaker, seen: None, totals, held: None, trial: None, until: 0 }
    }

    /// What this tick sends: the outcomes since the last one, whether calls
    /// were turned away (demand for a trial), and the trial's verdict.
    pub(crate) fn send(&mut self) -> Send {
        let now = Totals::of(&self.breaker);
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let send = Send {
            seen: self.seen,
            calls: d(now.calls, self.totals.calls),
            failures: d(now.failures, self.totals.failures),
            slow: d(now.slow, self.totals.slow),
            demand: now.rejected != self.totals.rejected,
            verdict: self.trial.and_then(|(fleet, local)| Some((fleet, self.breaker.trial_verdict(local)?))),
        };
        // Sent or lost with the tick: never sent twice, never late.
        self.totals = now;
        send
    }

    /// Makes the breaker agree with the fleet's answer. `margin` is how
    /// long past the fleet's deadline a hold lasts if it is not renewed.
    pub(crate) fn follow(&mut self, r: &Reply, margin: Duration) {
        let cb = &self.breaker;
        let now = cb.now();
        self.until = now.saturating_add(r.left.as_nanos() as u64);
        if self.trial.is_some_and(|(fleet, _)| fleet != r.generation) {
            self.trial = None; // the verdict was taken (or the trial lost)
        }
        match r.state {
            FleetState::HalfOpen if r.mine => {
                if self.trial.is_none() {
                    let hold = self.until.saturating_add(margin.as_nanos() as u64);
                    self.trial = cb
                        .hold_open(hold)
                        .and_then(|g| cb.begin_fleet_trial(g))
                        .map(|local| (r.generation, local));
                    self.held = None;
                }
            }
            FleetState::Open | FleetState::HalfOpen => {
                let hold = self.until.saturating_add(margin.as_nanos() as u64);
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

    /// The tick failed: the breaker decides alone from now on. A hold ends
    /// at the fleet's last known deadline (not the margin past it); a trial
    /// running here goes on as the breaker's own.
    pub(crate) fn release(&mut self) {
        if let Some(g) = self.held.take() {
            self.breaker.set_deadline(g, self.until);
        }
        self.trial = None;
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
