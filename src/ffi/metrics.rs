//! `nb_metrics` and `nb_breaker_metrics`.

use super::breaker::nb_breaker;
use super::panic::{boundary, try_out, try_ref};
use super::{nb_result, nb_state};

/// A snapshot of a breaker's rates and totals (see `nb_breaker_metrics`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct nb_metrics {
    /// An `nb_state`.
    pub state: u32,
    /// Half-open probes admitted and not yet reported.
    pub half_open_in_flight: u32,
    /// Failures / outcomes in the window, 0..1.
    pub failure_rate: f64,
    /// Slow calls / outcomes in the window, 0..1.
    pub slow_call_rate: f64,
    /// Outcomes in the window.
    pub window_calls: u64,
    /// Failures in the window.
    pub window_failures: u64,
    /// Slow calls in the window.
    pub window_slow_calls: u64,
    /// Outcomes recorded, all time.
    pub calls: u64,
    /// Successes, all time.
    pub successes: u64,
    /// Failures, all time.
    pub failures: u64,
    /// Slow calls, all time.
    pub slow_calls: u64,
    /// Ignored, dropped or stale outcomes, all time.
    pub ignored: u64,
    /// Rejected calls, all time.
    pub rejected: u64,
    /// Nanoseconds since the last transition.
    pub since_last_transition_ns: u64,
}

/// Writes a snapshot of the breaker's rates and totals to `*out`.
///
/// # Safety
/// `b` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_metrics(b: *const nb_breaker, out: *mut nb_metrics) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let b = try_ref!(b);
        let out = try_out!(out);
        let m = b.inner.metrics();
        let metrics = nb_metrics {
            state: nb_state::from(m.state) as u32,
            half_open_in_flight: m.half_open_in_flight,
            failure_rate: m.failure_rate,
            slow_call_rate: m.slow_call_rate,
            window_calls: m.window_calls,
            window_failures: m.window_failures,
            window_slow_calls: m.window_slow_calls,
            calls: m.calls,
            successes: m.successes,
            failures: m.failures,
            slow_calls: m.slow_calls,
            ignored: m.ignored,
            rejected: m.rejected,
            since_last_transition_ns: u64::try_from(m.since_last_transition.as_nanos()).unwrap_or(u64::MAX),
        };
        // SAFETY: non-NULL and writable (caller's contract).
        unsafe { out.write(metrics) };
        nb_result::NB_OK
    })
}
