//! A point-in-time view of a breaker's rates and totals, and how a breaker
//! takes one (`metrics`, `latency`, `memory_bytes`).

use crate::breaker::{Cold, Hot};
use crate::config::Config;
use crate::era::parity;
use crate::events::Reason;
use crate::state::State;
use crate::stats::{Latency, LatencyHistogram};
use crate::sync::Ordering;
use crossbeam_utils::CachePadded;
use std::time::Duration;

/// What [`CircuitBreaker::metrics`](crate::CircuitBreaker::metrics) returns.
///
/// The `window_*` fields and the rates describe the current window (empty
/// outside `Closed` and `MetricsOnly`); the totals count every outcome since
/// the breaker was built. Taken while other threads record, a snapshot is
/// approximate; taken while none do, it is exact and `successes + failures
/// == calls`.
///
/// ```
/// use nanobreaker::{CircuitBreaker, State};
/// let cb = CircuitBreaker::builder().build().unwrap();
/// let m = cb.metrics();
/// assert_eq!(m.state, State::Closed);
/// assert_eq!(m.calls, 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Metrics {
    /// The state a call would have found when the snapshot was taken (see
    /// [`CircuitBreaker::state`](crate::CircuitBreaker::state)).
    pub state: State,
    /// Failures / outcomes in the window (0 when the window is empty).
    pub failure_rate: f64,
    /// Slow calls / outcomes in the window (0 when the window is empty).
    pub slow_call_rate: f64,
    /// Outcomes in the window.
    pub window_calls: u64,
    /// Failures in the window.
    pub window_failures: u64,
    /// Slow calls in the window.
    pub window_slow_calls: u64,
    /// Outcomes recorded (successes and failures), all time.
    pub calls: u64,
    /// Successes recorded, all time.
    pub successes: u64,
    /// Failures recorded, all time.
    pub failures: u64,
    /// Slow calls recorded (successes or failures), all time.
    pub slow_calls: u64,
    /// Outcomes not counted: ignored, dropped permits, and stale outcomes
    /// (from a generation the breaker has left).
    pub ignored: u64,
    /// Calls rejected.
    pub rejected: u64,
    /// Time since the last transition (since the breaker was built if none).
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub since_last_transition: Duration,
    /// Half-open probes admitted and not yet reported.
    pub half_open_in_flight: u32,
    /// The current generation (bumped by every transition).
    pub generation: u64,
    /// Transition events dropped because listeners fell more than 64
    /// behind.
    pub events_lost: u64,
    /// Calls that ran past their `call_timeout` (counted also among the
    /// failures), all time. Counted only on the timeout path.
    pub timeouts: u64,
    /// Time since the latest success was recorded; `None` if there was
    /// none. Only timed successes count: a success reads no clock unless the
    /// window is a time window, a slow-call rule is set, or the breaker
    /// records latency ([`Builder::record_latency`](crate::Builder::record_latency)).
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub since_last_success: Option<Duration>,
    /// Time since the latest failure was recorded (every failure is timed);
    /// `None` if there was none.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub since_last_failure: Option<Duration>,
    /// Times the breaker entered `Open` (trips, failed or timed-out trials,
    /// and `transition_to(State::Open)`), all time. `ForcedOpen` is not
    /// `Open`.
    pub opens: u64,
    /// Transitions by reason, indexed by `Reason as usize` (see
    /// [`Metrics::transitions`]), all time.
    pub transitions_by_reason: [u64; Reason::ALL.len()],
    /// Half-open probes that reported a success, all time.
    pub probes_succeeded: u64,
    /// Half-open probes that reported a failure, all time.
    pub probes_failed: u64,
}

impl Metrics {
    /// Transitions made for `reason`, all time.
    ///
    /// ```
    /// use nanobreaker::{CircuitBreaker, Reason, State};
    /// let cb = CircuitBreaker::builder().build().unwrap();
    /// cb.transition_to(State::ForcedOpen);
    /// assert_eq!(cb.metrics().transitions(Reason::Manual), 1);
    /// assert_eq!(cb.metrics().opens, 0, "forced open is not open");
    /// ```
    pub fn transitions(&self, reason: Reason) -> u64 {
        self.transitions_by_reason[reason as usize]
    }
}

impl crate::CircuitBreaker {
    /// A snapshot of the rates and totals.
    ///
    /// ```
    /// use nanobreaker::CircuitBreaker;
    /// let cb = CircuitBreaker::builder().build().unwrap();
    /// cb.try_acquire().unwrap().failure();
    /// cb.try_acquire().unwrap().success();
    /// let m = cb.metrics();
    /// assert_eq!((m.calls, m.failures, m.window_calls), (2, 1, 2));
    /// assert_eq!(m.failure_rate, 0.5);
    /// ```
    pub fn metrics(&self) -> Metrics {
        let now = self.now();
        let w = self.load();
        let t = if w.state().records() {
            self.windows.tally(w.generation(), now, self.ext(w).nanos())
        } else {
            Default::default()
        };
        let rate = |n: u64| if t.calls == 0 { 0.0 } else { n as f64 / t.calls as f64 };
        let stats = self.cold.stats.view();
        let age = |t: u64| Duration::from_nanos(now.saturating_sub(t));
        // Failures before calls: a failure is counted after its call, so
        // the successes derived below are not inflated by a failure seen
        // without its call; the subtraction saturates all the same.
        let failures = self.windows.sum(|s| &s.failures);
        let calls = self.windows.calls();
        let in_flight = if w.state() == State::HalfOpen {
            // Acquire: as in `ext`.
            let p = crate::era::Probes(self.hot.probes[parity(w.generation())].load(Ordering::Acquire));
            if p.tag_matches(w.generation()) {
                p.taken().saturating_sub(p.ok() + p.fail())
            } else {
                0
            }
        } else {
            0
        };
        Metrics {
            state: self.visible(w),
            failure_rate: rate(t.failures),
            slow_call_rate: rate(t.slow),
            window_calls: t.calls,
            window_failures: t.failures,
            window_slow_calls: t.slow,
            calls,
            successes: calls.saturating_sub(failures),
            failures,
            slow_calls: self.windows.sum(|s| &s.slow),
            ignored: self.windows.sum(|s| &s.ignored),
            rejected: self.windows.sum(|s| &s.rejected),
            // Relaxed: informational.
            since_last_transition: Duration::from_nanos(
                now.saturating_sub(self.cold.last_transition.load(Ordering::Relaxed)),
            ),
            half_open_in_flight: in_flight,
            generation: w.generation(),
            events_lost: self.events.lost(),
            timeouts: stats.timeouts,
            since_last_success: self.windows.latest(|s| &s.last_success).map(age),
            since_last_failure: self.windows.latest(|s| &s.last_failure).map(age),
            opens: stats.opens,
            transitions_by_reason: stats.transitions,
            probes_succeeded: stats.probes_ok,
            probes_failed: stats.probes_failed,
        }
    }

    /// How long calls took, for a breaker built with
    /// [`record_latency(true)`](crate::Builder::record_latency); `None`
    /// otherwise. See [`LatencyHistogram`].
    pub fn latency(&self) -> Option<LatencyHistogram> {
        self.windows.latency().map(Latency::histogram)
    }

    /// Outcomes and rejections seen, all time: what a registry watches to
    /// tell an idle breaker (it moves on every call, and costs the calls
    /// nothing).
    pub(crate) fn activity(&self) -> u64 {
        self.windows
            .calls()
            .wrapping_add(self.windows.sum(|s| &s.ignored))
            .wrapping_add(self.windows.sum(|s| &s.rejected))
    }

    /// Bytes this breaker takes: the struct and what it owns on the heap
    /// or in its shared region (not counting listeners).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + std::mem::size_of::<CachePadded<Hot>>()
            + std::mem::size_of::<Cold>()
            + self.windows.heap_bytes()
            + std::mem::size_of::<Config>()
            + self.name.heap_bytes()
    }
}
