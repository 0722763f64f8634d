//! A point-in-time view of a breaker's rates and totals.

use crate::events::Reason;
use crate::state::State;
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
