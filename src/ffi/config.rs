//! `nb_config`: the C view of [`Config`], and its conversion.

use super::nb_result;
use super::panic::boundary;
use super::sized::{self, field_ends, SizeError, SizedStruct};
use crate::{Config, HalfOpenPolicy, Window};
use std::ffi::c_char;
use std::time::Duration;

/// `nb_config.window_kind`: a window of the last `window_size` calls.
pub const NB_WINDOW_COUNT: u32 = 0;
/// `nb_config.window_kind`: a window of the last `window_length_ns`, in
/// `window_size` buckets.
pub const NB_WINDOW_TIME: u32 = 1;

/// A breaker's configuration. Always start from `nb_config_default`, which
/// sets `size` and every default; then change the fields you need.
///
/// `size` lets later versions add fields at the end, both ways: a library
/// reads only the fields both it and the caller know. A program built
/// against an older header (smaller struct) gets the defaults for the
/// fields it lacks; one built against a newer header (larger struct) works
/// with an older library as long as it leaves the fields that library does
/// not know at their default, zero (else `NB_INVALID_CONFIG`, field
/// "size": a setting the library cannot honour is refused, not ignored).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct nb_config {
    /// `sizeof(nb_config)`, set by `nb_config_default`.
    pub size: usize,
    /// Trip when the failure rate reaches this, in (0, 1]. Default 0.5.
    pub failure_rate_threshold: f64,
    /// Judge no rate before this many outcomes. Default 20.
    pub minimum_calls: u32,
    /// `NB_WINDOW_COUNT` (default) or `NB_WINDOW_TIME`.
    pub window_kind: u32,
    /// Calls in a count window (default 100), or buckets in a time window.
    pub window_size: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// A time window's length in ns (ignored for count windows).
    pub window_length_ns: u64,
    /// A call taking at least this long is slow; 0 (default) turns the rule off.
    pub slow_call_duration_ns: u64,
    /// Trip when the slow-call rate reaches this, in (0, 1]. Default 1.0.
    pub slow_call_rate_threshold: f64,
    /// Also trip after this many failures in a row; 0 (default) is off.
    pub consecutive_failures: u32,
    /// Probes admitted in half-open, 1..511. Default 5.
    pub half_open_permits: u32,
    /// Open wait after the first trip, ns. Default 5 s.
    pub open_wait_ns: u64,
    /// Open-wait growth per failed trial, >= 1. Default 2.
    pub backoff_multiplier: f64,
    /// The longest open wait, ns. Default 60 s.
    pub max_open_wait_ns: u64,
    /// Spread of each open wait, either way, in [0, 1). Default 0.2.
    pub jitter: f64,
    /// A trial whose probes have not all reported after this reopens, ns. Default 30 s.
    pub half_open_max_wait_ns: u64,
    /// Stripes for the hot counters, 1..64; 0 (default) picks by core count.
    pub stripes: u32,
    /// How a half-open trial is decided: `NB_HALF_OPEN_FIRST_FAILURE`
    /// (default) or `NB_HALF_OPEN_FAILURE_RATE`.
    pub half_open_policy: u32,
}

/// `nb_config.half_open_policy`: the first failed probe reopens; all
/// permits succeeding closes (gobreaker, Polly).
pub const NB_HALF_OPEN_FIRST_FAILURE: u32 = 0;
/// `nb_config.half_open_policy`: the probes' failure rate decides
/// (resilience4j).
pub const NB_HALF_OPEN_FAILURE_RATE: u32 = 1;

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

pub(crate) fn write(c: &Config) -> nb_config {
    let (window_kind, window_size, window_length_ns) = match c.window {
        Window::Count(n) => (NB_WINDOW_COUNT, n, 0),
        Window::Time { length, buckets } => (NB_WINDOW_TIME, buckets, nanos(length)),
    };
    nb_config {
        size: std::mem::size_of::<nb_config>(),
        failure_rate_threshold: c.failure_rate_threshold,
        minimum_calls: c.minimum_calls,
        window_kind,
        window_size,
        reserved: 0,
        window_length_ns,
        slow_call_duration_ns: c.slow_call_duration.map_or(0, nanos),
        slow_call_rate_threshold: c.slow_call_rate_threshold,
        consecutive_failures: c.consecutive_failures.unwrap_or(0),
        half_open_permits: c.half_open_permits,
        open_wait_ns: nanos(c.open_wait),
        backoff_multiplier: c.backoff_multiplier,
        max_open_wait_ns: nanos(c.max_open_wait),
        jitter: c.jitter,
        half_open_max_wait_ns: nanos(c.half_open_max_wait),
        stripes: 0,
        half_open_policy: match c.half_open_policy {
            HalfOpenPolicy::FailureRate => NB_HALF_OPEN_FAILURE_RATE,
            _ => NB_HALF_OPEN_FIRST_FAILURE,
        },
    }
}

/// Converts and checks; the error is the name of the bad field.
fn convert(c: &nb_config) -> Result<(Config, u32), &'static str> {
    let window = match c.window_kind {
        NB_WINDOW_COUNT => Window::Count(c.window_size),
        NB_WINDOW_TIME => {
            Window::Time { length: Duration::from_nanos(c.window_length_ns), buckets: c.window_size }
        }
        _ => return Err("window_kind"),
    };
    let half_open_policy = match c.half_open_policy {
        NB_HALF_OPEN_FIRST_FAILURE => HalfOpenPolicy::FirstFailureReopens,
        NB_HALF_OPEN_FAILURE_RATE => HalfOpenPolicy::FailureRate,
        _ => return Err("half_open_policy"),
    };
    let config = Config {
        failure_rate_threshold: c.failure_rate_threshold,
        minimum_calls: c.minimum_calls,
        window,
        slow_call_duration: (c.slow_call_duration_ns != 0)
            .then(|| Duration::from_nanos(c.slow_call_duration_ns)),
        slow_call_rate_threshold: c.slow_call_rate_threshold,
        consecutive_failures: (c.consecutive_failures != 0).then_some(c.consecutive_failures),
        open_wait: Duration::from_nanos(c.open_wait_ns),
        backoff_multiplier: c.backoff_multiplier,
        max_open_wait: Duration::from_nanos(c.max_open_wait_ns),
        jitter: c.jitter,
        half_open_permits: c.half_open_permits,
        half_open_max_wait: Duration::from_nanos(c.half_open_max_wait_ns),
        half_open_policy,
    };
    config.validate().map_err(|e| e.field())?;
    if c.stripes > crate::MAX_STRIPES {
        return Err("stripes");
    }
    Ok((config, c.stripes))
}

// SAFETY: repr(C), `size: usize` first, no padding (every field is 4 or 8
// bytes and 8-byte fields sit at multiples of 8; checked by the test
// below), integers and floats only.
unsafe impl SizedStruct for nb_config {
    const FIELD_ENDS: &'static [usize] = field_ends!(nb_config;
        failure_rate_threshold, minimum_calls, window_kind, window_size, reserved,
        window_length_ns, slow_call_duration_ns, slow_call_rate_threshold,
        consecutive_failures, half_open_permits, open_wait_ns, backoff_multiplier,
        max_open_wait_ns, jitter, half_open_max_wait_ns, stripes, half_open_policy);
}

/// Reads `*cfg`, honouring its `size` (see `sized`).
///
/// # Safety
/// `cfg` is NULL or points to at least `cfg->size` readable bytes.
pub(crate) unsafe fn read_checked(cfg: *const nb_config) -> Result<(Config, u32), (nb_result, &'static str)> {
    if cfg.is_null() {
        return Err((nb_result::NB_NULL_ARGUMENT, "config"));
    }
    // SAFETY: non-NULL, and `cfg->size` bytes readable (caller's contract).
    let c = unsafe { sized::read(cfg, write(&Config::default())) }.map_err(|e| match e {
        SizeError::TooSmall | SizeError::UnknownField => (nb_result::NB_INVALID_CONFIG, "size"),
    })?;
    convert(&c).map_err(|field| (nb_result::NB_INVALID_CONFIG, field))
}

/// Writes `c` into the caller's `size`-byte `nb_config` at `out`.
///
/// # Safety
/// `out` is NULL or writable for `size` bytes.
pub(crate) unsafe fn write_out(out: *mut nb_config, size: usize, c: &Config) -> nb_result {
    // SAFETY: forwarded. The caller's size goes in `size`: the zeroed
    // fields this library does not know then read back as unset.
    unsafe { sized::write_out(out, size, true, || write(c)) }
}

/// # Safety
/// As `read_checked`.
pub(crate) unsafe fn read(cfg: *const nb_config) -> Result<(Config, u32), nb_result> {
    // SAFETY: forwarded.
    unsafe { read_checked(cfg) }.map_err(|(r, _)| r)
}

/// Fills the caller's `nb_config` with every default: `size` is the
/// caller's `sizeof(nb_config)`. The fields this library knows get their
/// defaults, any later ones (a newer header's) zero, and `out->size` is set
/// to `size`. `NB_INVALID_ARGUMENT` if `size` does not even cover the
/// `size` field.
///
/// # Safety
/// `out` is NULL or writable for `size` bytes.
#[no_mangle]
pub unsafe extern "C" fn nb_config_default(out: *mut nb_config, size: usize) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        // SAFETY: forwarded from the caller.
        unsafe { write_out(out, size, &Config::default()) }
    })
}

/// NULL if `cfg` is valid; otherwise the name of the first bad field, as a
/// static string ("failure_rate_threshold", "window", "size", ...; "config"
/// for a NULL `cfg`). Never free it.
///
/// # Safety
/// `cfg` is NULL or points to at least `cfg->size` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn nb_config_invalid_field(cfg: *const nb_config) -> *const c_char {
    boundary!(std::ptr::null(), {
        // SAFETY: forwarded from the caller.
        match unsafe { read_checked(cfg) } {
            Ok(_) => std::ptr::null(),
            Err((_, field)) => c_name(field),
        }
    })
}

/// The NUL-terminated static copy of a field name.
fn c_name(field: &str) -> *const c_char {
    const NAMES: &[&str] = &[
        "config\0",
        "size\0",
        "window_kind\0",
        "stripes\0",
        "failure_rate_threshold\0",
        "minimum_calls\0",
        "window\0",
        "slow_call_duration\0",
        "slow_call_rate_threshold\0",
        "consecutive_failures\0",
        "open_wait\0",
        "backoff_multiplier\0",
        "max_open_wait\0",
        "jitter\0",
        "half_open_permits\0",
        "half_open_max_wait\0",
        "half_open_policy\0",
    ];
    NAMES.iter().find(|n| n.strip_suffix('\0') == Some(field)).copied().unwrap_or("config\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn every_config_field_name_has_a_c_string() {
        for field in [
            "failure_rate_threshold",
            "minimum_calls",
            "window",
            "slow_call_duration",
            "slow_call_rate_threshold",
            "consecutive_failures",
            "open_wait",
            "backoff_multiplier",
            "max_open_wait",
            "jitter",
            "half_open_permits",
            "half_open_max_wait",
            "stripes",
        ] {
            // SAFETY: `c_name` returns a static NUL-terminated string.
            assert_eq!(unsafe { CStr::from_ptr(c_name(field)) }.to_str().unwrap(), field);
        }
    }

    #[test]
    fn field_ends_cover_the_struct() {
        sized::check_field_ends::<nb_config>();
    }

    #[test]
    fn round_trips_the_default() {
        let c = write(&Config::default());
        assert_eq!(convert(&c).unwrap(), (Config::default(), 0));
    }
}
