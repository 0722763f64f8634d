//! `nb_metrics` and `nb_breaker_metrics`.

use super::breaker::nb_breaker;
use super::panic::{boundary, try_ref};
use super::sized::{self, field_ends, SizedStruct};
use super::{nb_result, nb_state};

/// A snapshot of a breaker's rates and totals (see `nb_breaker_metrics`).
/// `size`, written by the library, is how many bytes of it the library
/// filled: a field that ends beyond `size` is one the library does not
/// know (it is zero). Later versions add fields at the end.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct nb_metrics {
    /// Bytes filled by the library (at most the caller's `sizeof`).
    pub size: usize,
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
    /// The current generation (transitions so far).
    pub generation: u64,
    /// Transition events dropped because listeners fell more than 64 behind.
    pub events_lost: u64,
    /// Calls counted as failures because they ran past `call_timeout`
    /// (Rust's `Policy`; the C ABI never counts one itself).
    pub timeouts: u64,
    /// Nanoseconds since the latest timed success, or `UINT64_MAX` if none
    /// (a program built against a newer header checks that `size` covers
    /// this field: an older library leaves it zero):
    /// a success reads no clock unless the window is a time window or a
    /// slow-call rule is set.
    pub since_last_success_ns: u64,
    /// Nanoseconds since the latest failure, or `UINT64_MAX` if none yet.
    pub since_last_failure_ns: u64,
    /// Times the breaker entered `NB_STATE_OPEN` (trips, failed or timed-out
    /// trials, `nb_breaker_transition_to`).
    pub opens: u64,
    /// Half-open probes that succeeded.
    pub probes_succeeded: u64,
    /// Half-open probes that failed (or were slow).
    pub probes_failed: u64,
    /// Transitions by reason, indexed by `nb_reason`. Room for 16 reasons,
    /// so that a later one needs no new field; entries past the last
    /// reason this library knows are zero.
    pub transitions_by_reason: [u64; NB_MAX_REASONS],
}

// SAFETY: repr(C), `size: usize` first, no padding (two u32 then 8-byte
// fields; checked by the test below), integers and floats only.
unsafe impl SizedStruct for nb_metrics {
    const FIELD_ENDS: &'static [usize] = field_ends!(nb_metrics;
        state, half_open_in_flight, failure_rate, slow_call_rate, window_calls,
        window_failures, window_slow_calls, calls, successes, failures, slow_calls,
        ignored, rejected, since_last_transition_ns, generation, events_lost, timeouts,
        since_last_success_ns, since_last_failure_ns, opens, probes_succeeded, probes_failed,
        transitions_by_reason);
}

/// Writes a snapshot of the breaker's rates and totals to the caller's
/// `nb_metrics` of `size` bytes (pass `sizeof(nb_metrics)`): the fields
/// both sides know, then zeros; `out->size` says how many bytes the library
/// filled. `NB_INVALID_ARGUMENT` if `size` does not cover the `size` field.
///
/// # Safety
/// `b` is NULL or a live handle; `out` is NULL or writable for `size` bytes.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_metrics(
    b: *const nb_breaker,
    out: *mut nb_metrics,
    size: usize,
) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let b = try_ref!(b);
        let metrics = || {
            let m = b.metrics();
            nb_metrics {
                size: std::mem::size_of::<nb_metrics>(),
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
                since_last_transition_ns: nanos(Some(m.since_last_transition)),
                generation: m.generation,
                events_lost: m.events_lost,
                timeouts: m.timeouts,
                since_last_success_ns: nanos(m.since_last_success),
                since_last_failure_ns: nanos(m.since_last_failure),
                opens: m.opens,
                probes_succeeded: m.probes_succeeded,
                probes_failed: m.probes_failed,
                transitions_by_reason: by_reason(&m.transitions_by_reason),
            }
        };
        // SAFETY: forwarded from the caller.
        unsafe { sized::write_out(out, size, false, metrics) }
    })
}

/// The size of `nb_metrics::transitions_by_reason`: at least the number
/// of `nb_reason` values, now and in every release of this ABI major.
pub const NB_MAX_REASONS: usize = 16;
const _: () = assert!(crate::Reason::ALL.len() <= NB_MAX_REASONS);

fn by_reason(counts: &[u64]) -> [u64; NB_MAX_REASONS] {
    let mut out = [0; NB_MAX_REASONS];
    out[..counts.len()].copy_from_slice(counts);
    out
}

/// Nanoseconds, saturated; `UINT64_MAX` for none.
fn nanos(d: Option<std::time::Duration>) -> u64 {
    d.map_or(u64::MAX, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    #[test]
    fn field_ends_cover_the_struct() {
        super::sized::check_field_ends::<super::nb_metrics>();
    }
}
