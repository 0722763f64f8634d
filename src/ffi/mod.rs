//! The C ABI: a thin layer over the Rust API, declared in
//! `include/nanobreaker.h` (generated from this module by cbindgen).
//!
//! Rules, after rustls-ffi:
//! - every function that can fail returns an [`nb_result`]; out-parameters
//!   are written only when it is `NB_OK` (or as documented for `NB_REJECTED`);
//! - every body runs inside a panic boundary (`boundary!` in `panic.rs`):
//!   no unwind reaches C;
//! - NULL is checked everywhere (`try_ref!`, `try_out!`) and answered with
//!   `NB_NULL_ARGUMENT`;
//!   enum-valued inputs are taken as `uint32_t` and checked
//!   (`NB_INVALID_ARGUMENT`), since an out-of-range C enum must never become
//!   a Rust enum;
//! - handles are opaque, made by `_new` and released by `_free` (NULL is a
//!   no-op), and safe to share between threads.
//!
//! Files by what they export: `breaker` (the handle and operator calls),
//! `permit` (acquire and record), `config`, `metrics`, `listeners`,
//! `registry` (named breakers and the Prometheus render); `handle` holds
//! the casts between opaque handles and their Rust values.
#![allow(non_camel_case_types)]

mod breaker;
mod config;
mod fast;
mod handle;
mod listeners;
mod metrics;
mod panic;
mod permit;
mod registry;
mod registry_builder;
mod shared;
mod sized;

pub use breaker::*;
pub use config::*;
pub use fast::*;
pub use listeners::*;
pub use metrics::*;
pub use permit::*;
pub use registry::*;
pub use registry_builder::*;
pub use shared::*;

use crate::{Outcome, State};
use std::ffi::c_char;

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
    /// The permit was issued by a different breaker (or by one since freed);
    /// nothing was recorded.
    NB_FOREIGN_PERMIT = 5,
    /// A bug in nanobreaker panicked; the call had no effect.
    NB_PANIC = 6,
    /// The permit was recorded already; nothing was recorded this time.
    NB_PERMIT_SPENT = 7,
    /// The registry is at capacity and no breaker in it may be evicted.
    NB_REGISTRY_FULL = 8,
    /// The registry holds no breaker for the key.
    NB_NOT_FOUND = 9,
    /// The library could not allocate memory.
    NB_OUT_OF_MEMORY = 10,
    /// A system call on a shared breaker's file failed; `errno` says why.
    NB_SHARED_IO = 11,
    /// The shared breaker's file is not a region this library can use
    /// (another layout version, garbage, another kind of clock).
    NB_SHARED_CORRUPT = 12,
    /// The shared breaker exists with another config (see
    /// `NB_SHARED_ADOPT`).
    NB_CONFIG_MISMATCH = 13,
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
    /// The fleet's breaker (Redis, Rust API) opened, started its trial
    /// here, or closed.
    NB_REASON_FLEET = 9,
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

pub(crate) fn state_from_u32(s: u32) -> Option<State> {
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

pub(crate) fn outcome_from_u32(o: u32) -> Option<Outcome> {
    Some(match o {
        0 => Outcome::Success,
        1 => Outcome::Failure,
        2 => Outcome::Ignored,
        _ => return None,
    })
}

/// The library's version, e.g. "0.1.0" (compare `NB_VERSION_STRING`, the
/// header's). A static string; never free it.
#[no_mangle]
pub extern "C" fn nb_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The library's version as one number, `major * 1000000 + minor * 1000 +
/// patch` (compare `NB_VERSION_NUM`, the header's). A program built
/// against header version H runs with library version L when L has H's
/// `NB_ABI_MAJOR` (the SONAME guarantees it for a dynamically linked one)
/// and, if it uses functions added after its oldest supported library,
/// `nb_version_num() >= ` the version that added them.
#[no_mangle]
pub extern "C" fn nb_version_num() -> u32 {
    const fn num(s: &str) -> u32 {
        let b = s.as_bytes();
        let mut i = 0;
        let mut n = 0;
        while i < b.len() {
            n = n * 10 + (b[i] - b'0') as u32;
            i += 1;
        }
        n
    }
    const V: u32 = num(env!("CARGO_PKG_VERSION_MAJOR")) * 1_000_000
        + num(env!("CARGO_PKG_VERSION_MINOR")) * 1_000
        + num(env!("CARGO_PKG_VERSION_PATCH"));
    V
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
        7 => "NB_PERMIT_SPENT\0",
        8 => "NB_REGISTRY_FULL\0",
        9 => "NB_NOT_FOUND\0",
        10 => "NB_OUT_OF_MEMORY\0",
        11 => "NB_SHARED_IO\0",
        12 => "NB_SHARED_CORRUPT\0",
        13 => "NB_CONFIG_MISMATCH\0",
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
    static NAMES: [&str; 10] = [
        "failure_rate\0",
        "slow_call_rate\0",
        "consecutive_failures\0",
        "open_wait_elapsed\0",
        "probes_succeeded\0",
        "probes_failed\0",
        "probes_slow\0",
        "half_open_timeout\0",
        "manual\0",
        "fleet\0",
    ];
    NAMES.get(r as usize).copied().unwrap_or("unknown\0").as_ptr().cast()
}
