//! Configuration: the values a breaker decides by, their defaults, and their
//! validation.
//!
//! A [`Config`] is checked whole by [`Config::validate`] before a breaker is
//! built or reconfigured; a bad value is a [`ConfigError`] naming the field,
//! and nothing is applied.

use std::fmt;
use std::time::Duration;

/// The largest number of half-open probes: the probe counters live in 9-bit
/// fields of the state word (see `state.rs`).
pub const MAX_HALF_OPEN_PERMITS: u32 = 511;

/// The largest count window; outcomes are kept one per 4-byte slot.
pub const MAX_WINDOW_CALLS: u32 = 1 << 24;

/// The largest number of buckets in a time window.
pub const MAX_WINDOW_BUCKETS: u32 = 1 << 12;

/// A time window's `minimum_calls`, at most, per bucket: what one stripe's
/// bucket holds once it is full (see `Config::minimum_calls`).
pub const MAX_MINIMUM_CALLS_PER_BUCKET: u32 = 1 << 15;

/// The shortest bucket of a time window.
pub const MIN_BUCKET: Duration = Duration::from_millis(1);

/// The most stripes the hot counters are spread over.
pub const MAX_STRIPES: u32 = 64;

/// The longest `consecutive_failures` run.
pub const MAX_CONSECUTIVE_FAILURES: u32 = u16::MAX as u32;

/// The longest `slow_call_duration`: 2^48 ns, about 78 hours (the rule's
/// threshold lives in 48 bits beside the state word).
pub const MAX_SLOW_CALL_DURATION: Duration = Duration::from_nanos((1 << 48) - 1);

/// The longest `max_open_wait` and `half_open_max_wait`: 100 years.
pub const MAX_WAIT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Which outcomes a breaker judges by.
///
/// ```
/// use nanobreaker::Window;
/// use std::time::Duration;
/// let last_100_calls = Window::count(100);
/// let last_minute = Window::time(Duration::from_secs(60), 12); // 12 buckets of 5 s
/// assert_ne!(last_100_calls, last_minute);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum Window {
    /// The last `n` recorded outcomes (a ring buffer of `n` slots).
    Count(u32),
    /// The outcomes of the last `length`, kept in `buckets` buckets of
    /// `length / buckets` each; a bucket older than `length` is never counted.
    Time {
        /// How far back the window looks.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        length: Duration,
        /// How many buckets the window is cut into.
        buckets: u32,
    },
}

impl Window {
    /// A window of the last `n` outcomes.
    pub const fn count(n: u32) -> Window {
        Window::Count(n)
    }

    /// A window of the last `length`, in `buckets` buckets.
    pub const fn time(length: Duration, buckets: u32) -> Window {
        Window::Time { length, buckets }
    }
}

/// How a half-open trial is decided.
///
/// ```
/// use nanobreaker::{CircuitBreaker, HalfOpenPolicy};
/// // resilience4j's rule: judge the probes' failure rate once they report.
/// let cb = CircuitBreaker::builder().half_open_policy(HalfOpenPolicy::FailureRate).build().unwrap();
/// # drop(cb);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum HalfOpenPolicy {
    /// The first probe that fails (or is slow, with the slow-call rule on)
    /// reopens the breaker; `half_open_permits` successes close it. The
    /// rule of gobreaker, Polly and failsafe-go, and the default.
    #[default]
    FirstFailureReopens,
    /// The trial reopens as soon as the probes' failure (or slow-call) rate
    /// over `half_open_permits` reaches its threshold, and closes when all
    /// permits reported below both: resilience4j's rule.
    FailureRate,
}

/// Everything a breaker decides by. `Config::default()` gives the documented
/// defaults; change fields and pass it to
/// [`Builder::config`](crate::Builder::config) or
/// [`CircuitBreaker::reconfigure`](crate::CircuitBreaker::reconfigure).
///
/// ```
/// use nanobreaker::Config;
/// use std::time::Duration;
/// let mut c = Config::default();
/// c.failure_rate_threshold = 0.25;
/// c.open_wait = Duration::from_secs(1);
/// assert!(c.validate().is_ok());
/// c.failure_rate_threshold = 1.5;
/// assert_eq!(c.validate().unwrap_err().field(), "failure_rate_threshold");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[non_exhaustive]
pub struct Config {
    /// Trip when the failure rate in the window is at least this (0, 1]. Default 0.5.
    pub failure_rate_threshold: f64,
    /// No rate is judged before the window holds this many outcomes (>= 1).
    /// A count window smaller than this judges once it is full. A time
    /// window holds 32768 to 65535 outcomes per bucket and stripe once its
    /// buckets fill, so this is at most [`MAX_MINIMUM_CALLS_PER_BUCKET`]
    /// times its buckets. Default 20.
    pub minimum_calls: u32,
    /// The window the rates are computed over. Default `Window::count(100)`.
    pub window: Window,
    /// A call taking at least this long is slow. `None` (the default) turns
    /// the slow-call rule off, and with it every clock read on the hot path.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub slow_call_duration: Option<Duration>,
    /// Trip when the slow-call rate is at least this (0, 1]. Default 1.0.
    pub slow_call_rate_threshold: f64,
    /// Also trip after this many failures in a row (gobreaker's rule). Default off.
    pub consecutive_failures: Option<u32>,
    /// How long the breaker stays open after the first trip. Default 5 s.
    /// Deadlines are kept to the microsecond, rounded up.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub open_wait: Duration,
    /// Each failed half-open trial multiplies the open wait by this (>= 1). Default 2.
    pub backoff_multiplier: f64,
    /// The open wait never grows past this. Default 60 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub max_open_wait: Duration,
    /// Each opening's wait is spread by up to this fraction either way, drawn
    /// once per opening, in [0, 1). Default 0.2.
    pub jitter: f64,
    /// How many probes half-open admits, 1..=511. Default 5.
    pub half_open_permits: u32,
    /// A half-open trial still undecided after this reopens, whatever the
    /// number of free permits. Default 30 s.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub half_open_max_wait: Duration,
    /// How a half-open trial is decided. Default
    /// [`HalfOpenPolicy::FirstFailureReopens`].
    pub half_open_policy: HalfOpenPolicy,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            failure_rate_threshold: 0.5,
            minimum_calls: 20,
            window: Window::Count(100),
            slow_call_duration: None,
            slow_call_rate_threshold: 1.0,
            consecutive_failures: None,
            open_wait: Duration::from_secs(5),
            backoff_multiplier: 2.0,
            max_open_wait: Duration::from_secs(60),
            jitter: 0.2,
            half_open_permits: 5,
            half_open_max_wait: Duration::from_secs(30),
            half_open_policy: HalfOpenPolicy::FirstFailureReopens,
        }
    }
}

/// A configuration value that is out of range: the field it names and what
/// that field accepts.
///
/// ```
/// use nanobreaker::{CircuitBreaker, ConfigError};
/// let err = CircuitBreaker::builder().half_open_permits(0).build().unwrap_err();
/// assert_eq!(err.field(), "half_open_permits");
/// println!("{err}"); // half_open_permits: must be 1..=511
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigError {
    field: &'static str,
    expected: &'static str,
}

impl ConfigError {
    pub(crate) const fn new(field: &'static str, expected: &'static str) -> Self {
        ConfigError { field, expected }
    }

    /// The name of the field that is wrong, as spelled in [`Config`].
    pub const fn field(&self) -> &'static str {
        self.field
    }

    /// What the field accepts.
    pub const fn expected(&self) -> &'static str {
        self.expected
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.expected)
    }
}

impl std::error::Error for ConfigError {}

fn check(ok: bool, field: &'static str, expected: &'static str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(field, expected))
    }
}

fn rate(x: f64) -> bool {
    x > 0.0 && x <= 1.0 // false for NaN
}

impl Config {
    /// Checks every field; the first bad one is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(rate(self.failure_rate_threshold), "failure_rate_threshold", "must be in (0, 1]")?;
        check(self.minimum_calls >= 1, "minimum_calls", "must be at least 1")?;
        match self.window {
            Window::Count(n) => check(
                (1..=MAX_WINDOW_CALLS).contains(&n),
                "window",
                "a count window must hold 1..=16777216 calls",
            )?,
            Window::Time { length, buckets } => {
                check(
                    (1..=MAX_WINDOW_BUCKETS).contains(&buckets),
                    "window",
                    "a time window must have 1..=4096 buckets",
                )?;
                check(
                    length / buckets >= MIN_BUCKET && length.as_nanos() < u64::MAX as u128 / 2,
                    "window",
                    "a time window's buckets must each be at least 1 ms",
                )?;
                check(
                    self.minimum_calls as u64 <= MAX_MINIMUM_CALLS_PER_BUCKET as u64 * buckets as u64,
                    "minimum_calls",
                    "with a time window, at most 32768 per bucket",
                )?;
            }
        }
        if let Some(d) = self.slow_call_duration {
            check(
                !d.is_zero() && d <= MAX_SLOW_CALL_DURATION,
                "slow_call_duration",
                "must be greater than zero and at most 2^48 ns (78 hours)",
            )?;
        }
        check(rate(self.slow_call_rate_threshold), "slow_call_rate_threshold", "must be in (0, 1]")?;
        if let Some(n) = self.consecutive_failures {
            check((1..=MAX_CONSECUTIVE_FAILURES).contains(&n), "consecutive_failures", "must be 1..=65535")?;
        }
        check(!self.open_wait.is_zero(), "open_wait", "must be greater than zero")?;
        check(
            self.backoff_multiplier >= 1.0 && self.backoff_multiplier <= 1e6,
            "backoff_multiplier",
            "must be in [1, 1e6]",
        )?;
        check(self.max_open_wait >= self.open_wait, "max_open_wait", "must be at least open_wait")?;
        check(self.max_open_wait <= MAX_WAIT, "max_open_wait", "must be at most 100 years")?;
        check((0.0..1.0).contains(&self.jitter), "jitter", "must be in [0, 1)")?;
        check(
            (1..=MAX_HALF_OPEN_PERMITS).contains(&self.half_open_permits),
            "half_open_permits",
            "must be 1..=511",
        )?;
        check(
            !self.half_open_max_wait.is_zero() && self.half_open_max_wait <= MAX_WAIT,
            "half_open_max_wait",
            "must be greater than zero and at most 100 years",
        )?;
        Ok(())
    }

    /// How many outcomes must be in the window before a rate is judged.
    pub(crate) fn effective_minimum(&self) -> u64 {
        match self.window {
            Window::Count(n) => self.minimum_calls.min(n) as u64,
            Window::Time { .. } => self.minimum_calls as u64,
        }
    }
}

/// The default number of stripes: the machine's parallelism, rounded up to
/// a power of two, at most 16 (so a default breaker stays under 4 KiB).
pub(crate) fn default_stripes() -> u32 {
    static STRIPES: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *STRIPES.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        (n.min(16) as u32).next_power_of_two()
    })
}
