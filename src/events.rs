//! Transition events and their delivery to listeners.
//!
//! A transition is decided by one compare-and-swap on the state word, by
//! whichever thread wins it; that thread then hands the event here. Events
//! are delivered in generation order (the order of the CASes), one at a
//! time, to every listener in the order they were added, never while a lock
//! is held and never on the success path. Two threads that win transitions
//! back to back may reach this module in the other order; the later one
//! parks its event and the earlier one delivers both. A listener that panics
//! is caught; the breaker and the other listeners go on.

use crate::state::{State, GEN_MASK};
use crate::sync::{lock, Mutex};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

/// Why a breaker changed state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Reason {
    /// The failure rate reached `failure_rate_threshold`.
    FailureRate = 0,
    /// The slow-call rate reached `slow_call_rate_threshold`.
    SlowCallRate = 1,
    /// `consecutive_failures` failures in a row.
    ConsecutiveFailures = 2,
    /// The open wait passed and a call came: the trial begins.
    OpenWaitElapsed = 3,
    /// The half-open probes reported below both thresholds.
    ProbesSucceeded = 4,
    /// The half-open probes' failure rate reached the threshold.
    ProbesFailed = 5,
    /// The half-open probes' slow-call rate reached the threshold.
    ProbesSlow = 6,
    /// The probes did not all report within `half_open_max_wait`.
    HalfOpenTimeout = 7,
    /// `reset()` or `transition_to()`.
    Manual = 8,
}

impl Reason {
    /// A short lowercase name.
    pub const fn name(self) -> &'static str {
        match self {
            Reason::FailureRate => "failure_rate",
            Reason::SlowCallRate => "slow_call_rate",
            Reason::ConsecutiveFailures => "consecutive_failures",
            Reason::OpenWaitElapsed => "open_wait_elapsed",
            Reason::ProbesSucceeded => "probes_succeeded",
            Reason::ProbesFailed => "probes_failed",
            Reason::ProbesSlow => "probes_slow",
            Reason::HalfOpenTimeout => "half_open_timeout",
            Reason::Manual => "manual",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One state change, as listeners see it.
///
/// ```
/// use nanobreaker::{CircuitBreaker, State, Reason};
/// use std::sync::{Arc, Mutex};
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let s = seen.clone();
/// let cb = CircuitBreaker::builder()
///     .on_transition(move |t| s.lock().unwrap().push((t.from, t.to, t.reason)))
///     .build()
///     .unwrap();
/// cb.transition_to(State::ForcedOpen);
/// assert_eq!(*seen.lock().unwrap(), [(State::Closed, State::ForcedOpen, Reason::Manual)]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
    /// Why.
    pub reason: Reason,
    /// When, as time since the breaker was built (on its clock).
    pub at: Duration,
    /// The generation entered (bumped by every transition, modulo 2^21).
    pub generation: u32,
}

/// A transition listener.
pub(crate) type Listener = Arc<dyn Fn(&Transition) + Send + Sync>;

pub(crate) struct Dispatcher {
    inner: Mutex<Inner>,
}

struct Inner {
    listeners: Arc<[Listener]>,
    /// Events whose turn has not come.
    parked: Vec<Transition>,
    /// The generation of the next event to deliver.
    next: u32,
    /// Whether some thread is delivering now.
    busy: bool,
}

impl Dispatcher {
    pub(crate) fn new(listeners: Vec<Listener>) -> Dispatcher {
        Dispatcher {
            inner: Mutex::new(Inner {
                listeners: listeners.into(),
                parked: Vec::new(),
                next: 1,
                busy: false,
            }),
        }
    }

    pub(crate) fn add(&self, l: Listener) {
        let mut g = lock(&self.inner);
        let mut v: Vec<Listener> = g.listeners.iter().cloned().collect();
        v.push(l);
        g.listeners = v.into();
    }

    /// Delivers `event` once every earlier generation's event has been.
    pub(crate) fn emit(&self, event: Transition) {
        let mut g = lock(&self.inner);
        g.parked.push(event);
        if g.busy {
            return; // the thread delivering will see it
        }
        g.busy = true;
        loop {
            let next = g.next;
            let Some(i) = g.parked.iter().position(|e| e.generation == next) else { break };
            let e = g.parked.swap_remove(i);
            g.next = next.wrapping_add(1) & GEN_MASK;
            let listeners = g.listeners.clone();
            drop(g);
            for l in listeners.iter() {
                // A panicking listener must not take the breaker or the
                // other listeners with it.
                let _ = catch_unwind(AssertUnwindSafe(|| l(&e)));
            }
            g = lock(&self.inner);
        }
        g.busy = false;
    }
}
