//! The C ABI: a thin layer over the Rust API, declared in
//! `include/nanobreaker.h` (generated from this module by cbindgen).
//!
//! Rules, after rustls-ffi:
//! - every function that can fail returns an [`nb_result`]; out-parameters
//!   are written only when it is `NB_OK` (or as documented for `NB_REJECTED`);
//! - every body runs inside a panic boundary (`panic.rs`): no unwind reaches C;
//! - NULL is checked everywhere and answered with `NB_NULL_ARGUMENT`;
//!   enum-valued inputs are taken as `uint32_t` and checked
//!   (`NB_INVALID_ARGUMENT`), since an out-of-range C enum must never become
//!   a Rust enum;
//! - handles are opaque, made by `_new` and released by `_free` (NULL is a
//!   no-op), and safe to share between threads.
#![allow(non_camel_case_types)]

mod config;
mod panic;

pub use config::*;

use crate::{CircuitBreaker, Outcome, RawPermit, Reason, State};
use panic::guard;
use std::ffi::{c_char, c_void};
use std::panic::AssertUnwindSafe;

/// The result of a call through the C ABI.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum nb_result {
    /// Success.
    NB_OK = 0,
    /// The breaker rejected the call (open, forced open, or half-open full).
    NB_REJECTED = 1,
    /// A required pointer argument was NULL.
    NB_NULL_ARGUMENT = 2,
    /// A configuration value is out of range; `nb_config_invalid_field` names it.
    NB_INVALID_CONFIG = 3,
    /// An enum-valued argument is out of range.
    NB_INVALID_ARGUMENT = 4,
    /// The permit was issued by a different breaker; nothing was recorded.
    NB_FOREIGN_PERMIT = 5,
    /// A bug in nanobreaker panicked; the call had no effect.
    NB_PANIC = 6,
}

/// A breaker's state (values as `nb_state` below).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum nb_state {
    /// Calls flow and are recorded.
    NB_STATE_CLOSED = 0,
    /// Calls are rejected until the open wait passes.
    NB_STATE_OPEN = 1,
    /// A few probe calls decide.
    NB_STATE_HALF_OPEN = 2,
    /// Every call allowed, nothing recorded.
    NB_STATE_DISABLED = 3,
    /// Every call allowed and recorded; never trips.
    NB_STATE_METRICS_ONLY = 4,
    /// Every call rejected.
    NB_STATE_FORCED_OPEN = 5,
    /// Returned by `nb_breaker_state(NULL)`.
    NB_STATE_UNKNOWN = 255,
}

/// The outcome of a call, for `nb_record`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum nb_outcome {
    /// The call worked.
    NB_SUCCESS = 0,
    /// The call failed.
    NB_FAILURE = 1,
    /// Not counted (cancelled, a caller error, ...).
    NB_IGNORED = 2,
}

/// Why a transition happened (see `nb_transition`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum nb_reason {
    /// The failure rate reached its threshold.
    NB_REASON_FAILURE_RATE = 0,
    /// The slow-call rate reached its threshold.
    NB_REASON_SLOW_CALL_RATE = 1,
    /// Too many failures in a row.
    NB_REASON_CONSECUTIVE_FAILURES = 2,
    /// The open wait passed.
    NB_REASON_OPEN_WAIT_ELAPSED = 3,
    /// The half-open probes succeeded.
    NB_REASON_PROBES_SUCCEEDED = 4,
    /// The half-open probes failed.
    NB_REASON_PROBES_FAILED = 5,
    /// The half-open probes were slow.
    NB_REASON_PROBES_SLOW = 6,
    /// The probes did not report within the half-open limit.
    NB_REASON_HALF_OPEN_TIMEOUT = 7,
    /// `nb_breaker_reset` or `nb_breaker_transition_to`.
    NB_REASON_MANUAL = 8,
}

impl From<State> for nb_state {
    fn from(s: State) -> Self {
        match s {
            State::Closed => nb_state::NB_STATE_CLOSED,
            State::Open => nb_state::NB_STATE_OPEN,
            State::HalfOpen => nb_state::NB_STATE_HALF_OPEN,
            State::Disabled => nb_state::NB_STATE_DISABLED,
            State::MetricsOnly => nb_state::NB_STATE_METRICS_ONLY,
            State::ForcedOpen => nb_state::NB_STATE_FORCED_OPEN,
        }
    }
}

fn state_from_u32(s: u32) -> Option<State> {
    Some(match s {
        0 => State::Closed,
        1 => State::Open,
        2 => State::HalfOpen,
        3 => State::Disabled,
        4 => State::MetricsOnly,
        5 => State::ForcedOpen,
        _ => return None,
    })
}

fn outcome_from_u32(o: u32) -> Option<Outcome> {
    Some(match o {
        0 => Outcome::Success,
        1 => Outcome::Failure,
        2 => Outcome::Ignored,
        _ => return None,
    })
}

/// Leave to make one call: plain data the caller keeps (on its stack) and
/// passes to `nb_record` exactly once. A permit never recorded holds its
/// half-open slot until the trial times out.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct nb_permit {
    /// Which breaker issued it (checked by `nb_record`).
    pub breaker_id: u64,
    /// When the call started (ns on the breaker's clock), or UINT64_MAX.
    pub start_ns: u64,
    /// The breaker generation it was issued in.
    pub generation: u64,
}

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

/// One state change, passed to an `nb_transition_callback`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct nb_transition {
    /// The `nb_state` left.
    pub from: u32,
    /// The `nb_state` entered.
    pub to: u32,
    /// An `nb_reason`.
    pub reason: u32,
    /// Zero.
    pub reserved: u32,
    /// The generation entered.
    pub generation: u64,
    /// When, in ns since the breaker was made.
    pub at_ns: u64,
}

/// Called on every transition, in order, on the thread that caused it, never
/// on the success path. `userdata` is what was passed to
/// `nb_breaker_on_transition`; it must be safe to use from any thread.
pub type nb_transition_callback =
    Option<unsafe extern "C" fn(t: *const nb_transition, userdata: *mut c_void)>;

/// Releases a listener's `userdata` when the breaker is freed.
pub type nb_free_callback = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

struct UserData {
    ptr: *mut c_void,
    free: nb_free_callback,
}

// SAFETY: `nb_breaker_on_transition` requires userdata usable from any
// thread; nanobreaker only passes the pointer back to the caller's functions.
unsafe impl Send for UserData {}
// SAFETY: as above.
unsafe impl Sync for UserData {}

impl UserData {
    /// (A method, so closures capture the whole `UserData`, which is `Send`.)
    fn ptr(&self) -> *mut c_void {
        self.ptr
    }
}

impl Drop for UserData {
    fn drop(&mut self) {
        if let Some(free) = self.free {
            // SAFETY: the caller gave this function for this pointer, to be
            // called once when the breaker is freed; this is that once.
            unsafe { free(self.ptr) }
        }
    }
}

/// A circuit breaker. Opaque; made by `nb_breaker_new`, released by
/// `nb_breaker_free`. Every function taking a `const nb_breaker *` may be
/// called from any number of threads at once.
pub struct nb_breaker {
    id: u64,
    inner: CircuitBreaker,
}

/// Borrows a handle, or `None` for NULL.
///
/// # Safety
/// `p` is NULL or a live pointer from `nb_breaker_new`.
unsafe fn handle<'a>(p: *const nb_breaker) -> Option<&'a nb_breaker> {
    // SAFETY: forwarded from the caller.
    unsafe { p.as_ref() }
}

/// The library version, e.g. "0.1.0". A static string; never free it.
#[no_mangle]
pub extern "C" fn nb_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// A static, human-readable name for an `nb_result` ("NB_OK", ...), or
/// "NB_UNKNOWN_RESULT". Never free it.
#[no_mangle]
pub extern "C" fn nb_result_str(r: u32) -> *const c_char {
    let s: &'static str = match r {
        0 => "NB_OK\0",
        1 => "NB_REJECTED\0",
        2 => "NB_NULL_ARGUMENT\0",
        3 => "NB_INVALID_CONFIG\0",
        4 => "NB_INVALID_ARGUMENT\0",
        5 => "NB_FOREIGN_PERMIT\0",
        6 => "NB_PANIC\0",
        _ => "NB_UNKNOWN_RESULT\0",
    };
    s.as_ptr().cast()
}

/// A static name for an `nb_state` ("closed", "open", ...), or "unknown".
#[no_mangle]
pub extern "C" fn nb_state_str(s: u32) -> *const c_char {
    static NAMES: [&str; 6] =
        ["closed\0", "open\0", "half_open\0", "disabled\0", "metrics_only\0", "forced_open\0"];
    NAMES.get(s as usize).copied().unwrap_or("unknown\0").as_ptr().cast()
}

/// A static name for an `nb_reason` ("failure_rate", ...), or "unknown".
#[no_mangle]
pub extern "C" fn nb_reason_str(r: u32) -> *const c_char {
    static NAMES: [&str; 9] = [
        "failure_rate\0",
        "slow_call_rate\0",
        "consecutive_failures\0",
        "open_wait_elapsed\0",
        "probes_succeeded\0",
        "probes_failed\0",
        "probes_slow\0",
        "half_open_timeout\0",
        "manual\0",
    ];
    NAMES.get(r as usize).copied().unwrap_or("unknown\0").as_ptr().cast()
}

/// Makes a breaker from `cfg` (start from `nb_config_default`). On `NB_OK`
/// writes the new handle to `*out`; the caller frees it with
/// `nb_breaker_free`. On `NB_INVALID_CONFIG`, `nb_config_invalid_field(cfg)`
/// names the bad field.
///
/// # Safety
/// `cfg` is NULL or points to an `nb_config` of at least `cfg->size` bytes;
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_new(cfg: *const nb_config, out: *mut *mut nb_breaker) -> nb_result {
    guard(
        nb_result::NB_PANIC,
        AssertUnwindSafe(|| {
            if out.is_null() {
                return nb_result::NB_NULL_ARGUMENT;
            }
            // SAFETY: forwarded from the caller.
            let (config, stripes) = match unsafe { config::read(cfg) } {
                Ok(c) => c,
                Err(r) => return r,
            };
            let mut b = CircuitBreaker::builder().config(config);
            if stripes != 0 {
                b = b.stripes(stripes);
            }
            let inner = match b.build() {
                Ok(cb) => cb,
                Err(_) => return nb_result::NB_INVALID_CONFIG,
            };
            let handle = Box::new(nb_breaker { id: crate::sync::next_id(), inner });
            // SAFETY: `out` is non-NULL and writable (caller's contract).
            unsafe { out.write(Box::into_raw(handle)) };
            nb_result::NB_OK
        }),
    )
}

/// Frees a breaker made by `nb_breaker_new`, and then each listener's
/// userdata through its free callback. NULL is a no-op. No other thread may
/// use the breaker during or after this call.
///
/// # Safety
/// `b` is NULL or a live handle from `nb_breaker_new`, freed only once.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_free(b: *mut nb_breaker) {
    guard(
        (),
        AssertUnwindSafe(|| {
            if !b.is_null() {
                // SAFETY: a live handle from `Box::into_raw` in `nb_breaker_new`,
                // not used again (caller's contract).
                drop(unsafe { Box::from_raw(b) });
            }
        }),
    )
}

/// Asks to make a call; see `nb_acquire_ex`.
///
/// # Safety
/// As `nb_acquire_ex`.
#[no_mangle]
pub unsafe extern "C" fn nb_acquire(b: *const nb_breaker, out: *mut nb_permit) -> nb_result {
    // SAFETY: forwarded from the caller.
    unsafe { nb_acquire_ex(b, out, std::ptr::null_mut()) }
}

/// Asks to make a call. `NB_OK`: `*out` holds the permit; make the call and
/// pass the permit to `nb_record`. `NB_REJECTED`: do not make the call;
/// `*out` is untouched and, if `retry_after_ns` is not NULL, it receives how
/// long until the breaker may let a call through (UINT64_MAX when forced
/// open).
///
/// # Safety
/// `b` is NULL or a live handle; `out` is NULL or writable;
/// `retry_after_ns` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn nb_acquire_ex(
    b: *const nb_breaker,
    out: *mut nb_permit,
    retry_after_ns: *mut u64,
) -> nb_result {
    guard(
        nb_result::NB_PANIC,
        AssertUnwindSafe(|| {
            // SAFETY: forwarded from the caller.
            let Some(b) = (unsafe { handle(b) }) else { return nb_result::NB_NULL_ARGUMENT };
            if out.is_null() {
                return nb_result::NB_NULL_ARGUMENT;
            }
            match b.inner.acquire() {
                Ok(p) => {
                    let permit = nb_permit { breaker_id: b.id, start_ns: p.start, generation: p.generation };
                    // SAFETY: non-NULL and writable (caller's contract).
                    unsafe { out.write(permit) };
                    nb_result::NB_OK
                }
                Err(r) => {
                    if !retry_after_ns.is_null() {
                        let ns = u64::try_from(r.retry_after().as_nanos()).unwrap_or(u64::MAX);
                        // SAFETY: non-NULL and writable (caller's contract).
                        unsafe { retry_after_ns.write(ns) };
                    }
                    nb_result::NB_REJECTED
                }
            }
        }),
    )
}

/// Reports the outcome (an `nb_outcome`) of the call made on `permit`.
/// Record each permit once. `NB_FOREIGN_PERMIT` if another breaker issued
/// it, `NB_INVALID_ARGUMENT` for an unknown outcome; in both cases nothing
/// is recorded. A permit from before a state change is accepted and dropped
/// (it is stale), as in the Rust API.
///
/// # Safety
/// `b` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn nb_record(b: *const nb_breaker, permit: nb_permit, outcome: u32) -> nb_result {
    guard(
        nb_result::NB_PANIC,
        AssertUnwindSafe(|| {
            // SAFETY: forwarded from the caller.
            let Some(b) = (unsafe { handle(b) }) else { return nb_result::NB_NULL_ARGUMENT };
            let Some(outcome) = outcome_from_u32(outcome) else { return nb_result::NB_INVALID_ARGUMENT };
            if permit.breaker_id != b.id {
                return nb_result::NB_FOREIGN_PERMIT;
            }
            b.inner.record(RawPermit::from_parts(permit.generation, permit.start_ns), outcome);
            nb_result::NB_OK
        }),
    )
}

/// `nb_record(b, permit, NB_SUCCESS)`.
///
/// # Safety
/// As `nb_record`.
#[no_mangle]
pub unsafe extern "C" fn nb_success(b: *const nb_breaker, permit: nb_permit) -> nb_result {
    // SAFETY: forwarded from the caller.
    unsafe { nb_record(b, permit, nb_outcome::NB_SUCCESS as u32) }
}

/// `nb_record(b, permit, NB_FAILURE)`.
///
/// # Safety
/// As `nb_record`.
#[no_mangle]
pub unsafe extern "C" fn nb_failure(b: *const nb_breaker, permit: nb_permit) -> nb_result {
    // SAFETY: forwarded from the caller.
    unsafe { nb_record(b, permit, nb_outcome::NB_FAILURE as u32) }
}

/// `nb_record(b, permit, NB_IGNORED)`.
///
/// # Safety
/// As `nb_record`.
#[no_mangle]
pub unsafe extern "C" fn nb_ignore(b: *const nb_breaker, permit: nb_permit) -> nb_result {
    // SAFETY: forwarded from the caller.
    unsafe { nb_record(b, permit, nb_outcome::NB_IGNORED as u32) }
}

/// The breaker's state, or `NB_STATE_UNKNOWN` for NULL.
///
/// # Safety
/// `b` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_state(b: *const nb_breaker) -> nb_state {
    guard(
        nb_state::NB_STATE_UNKNOWN,
        AssertUnwindSafe(|| {
            // SAFETY: forwarded from the caller.
            match unsafe { handle(b) } {
                Some(b) => b.inner.state().into(),
                None => nb_state::NB_STATE_UNKNOWN,
            }
        }),
    )
}

/// Writes a snapshot of the breaker's rates and totals to `*out`.
///
/// # Safety
/// `b` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_metrics(b: *const nb_breaker, out: *mut nb_metrics) -> nb_result {
    guard(
        nb_result::NB_PANIC,
        AssertUnwindSafe(|| {
            // SAFETY: forwarded from the caller.
            let Some(b) = (unsafe { handle(b) }) else { return nb_result::NB_NULL_ARGUMENT };
            if out.is_null() {
                return nb_result::NB_NULL_ARGUMENT;
            }
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
                since_last_transition_ns: u64::try_from(m.since_last_transition.as_nanos())
                    .unwrap_or(u64::MAX),
            };
            // SAFETY: non-NULL and writable (caller's contract).
            unsafe { out.write(metrics) };
            nb_result::NB_OK
        }),
    )
}

/// Moves the breaker to `state` (an `nb_state`, not `NB_STATE_UNKNOWN`).
///
/// # Safety
/// `b` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_transition_to(b: *const nb_breaker, state: u32) -> nb_result {
    guard(
        nb_result::NB_PANIC,
        AssertUnwindSafe(|| {
            // SAFETY: forwarded from the caller.
            let Some(b) = (unsafe { handle(b) }) else { return nb_result::NB_NULL_ARGUMENT };
            let Some(state) = state_from_u32(state) else { return nb_result::NB_INVALID_ARGUMENT };
            b.inner.transition_to(state);
            nb_result::NB_OK
        }),
    )
}

/// Back to closed, with an empty window and no backoff.
///
/// # Safety
/// `b` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_reset(b: *const nb_breaker) -> nb_result {
    guard(
        nb_result::NB_PANIC,
        AssertUnwindSafe(|| {
            // SAFETY: forwarded from the caller.
            let Some(b) = (unsafe { handle(b) }) else { return nb_result::NB_NULL_ARGUMENT };
            b.inner.reset();
            nb_result::NB_OK
        }),
    )
}

/// Replaces the configuration at run time, whole, or not at all. The window
/// (kind, size, length) cannot change (`NB_INVALID_CONFIG`, field "window");
/// `stripes` is fixed at `nb_breaker_new` and ignored here.
///
/// # Safety
/// `b` is NULL or a live handle; `cfg` as in `nb_breaker_new`.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_reconfigure(b: *const nb_breaker, cfg: *const nb_config) -> nb_result {
    guard(
        nb_result::NB_PANIC,
        AssertUnwindSafe(|| {
            // SAFETY: forwarded from the caller.
            let Some(b) = (unsafe { handle(b) }) else { return nb_result::NB_NULL_ARGUMENT };
            // SAFETY: forwarded from the caller.
            let (config, _stripes) = match unsafe { config::read(cfg) } {
                Ok(c) => c,
                Err(r) => return r,
            };
            match b.inner.reconfigure(config) {
                Ok(()) => nb_result::NB_OK,
                Err(_) => nb_result::NB_INVALID_CONFIG,
            }
        }),
    )
}

/// Writes the configuration in force to `*out` (with `size` set).
///
/// # Safety
/// `b` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_config(b: *const nb_breaker, out: *mut nb_config) -> nb_result {
    guard(
        nb_result::NB_PANIC,
        AssertUnwindSafe(|| {
            // SAFETY: forwarded from the caller.
            let Some(b) = (unsafe { handle(b) }) else { return nb_result::NB_NULL_ARGUMENT };
            if out.is_null() {
                return nb_result::NB_NULL_ARGUMENT;
            }
            let c = config::write(&b.inner.config());
            // SAFETY: non-NULL and writable (caller's contract).
            unsafe { out.write(c) };
            nb_result::NB_OK
        }),
    )
}

/// Adds a transition listener: `callback(&transition, userdata)` on every
/// state change, in order. `free_userdata` (may be NULL) is called with
/// `userdata` once, when the breaker is freed.
///
/// # Safety
/// `b` is NULL or a live handle; `callback` and `free_userdata` are NULL or
/// valid functions; `userdata` is usable from any thread until freed.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_on_transition(
    b: *const nb_breaker,
    callback: nb_transition_callback,
    userdata: *mut c_void,
    free_userdata: nb_free_callback,
) -> nb_result {
    guard(
        nb_result::NB_PANIC,
        AssertUnwindSafe(|| {
            // SAFETY: forwarded from the caller.
            let Some(b) = (unsafe { handle(b) }) else { return nb_result::NB_NULL_ARGUMENT };
            let Some(callback) = callback else { return nb_result::NB_NULL_ARGUMENT };
            let data = UserData { ptr: userdata, free: free_userdata };
            b.inner.on_transition(move |t| {
                let t = nb_transition {
                    from: nb_state::from(t.from) as u32,
                    to: nb_state::from(t.to) as u32,
                    reason: reason_to_u32(t.reason),
                    reserved: 0,
                    generation: t.generation,
                    at_ns: u64::try_from(t.at.as_nanos()).unwrap_or(u64::MAX),
                };
                // SAFETY: a valid function given with this userdata (caller's
                // contract); `t` lives across the call.
                unsafe { callback(&t, data.ptr()) }
            });
            nb_result::NB_OK
        }),
    )
}

fn reason_to_u32(r: Reason) -> u32 {
    r as u32
}
