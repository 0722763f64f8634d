//! The breaker's time: precise (the TSC, through `quanta`), coarse (one
//! load of a time kept by a background thread), or a mock for tests.
//!
//! A breaker measures time as nanoseconds since it was built. The mock is
//! a free-running `u64` that may start anywhere and wrap: a breaker reads
//! it as a signed offset from its value at build, so time moves on across
//! the wrap, and a mock turned back before the build reads as zero.

use crate::sync::{AtomicU64, Ordering};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Where a breaker reads the time.
///
/// ```
/// use nanobreaker::{CircuitBreaker, Clock, State};
/// use std::time::Duration;
/// let (clock, mock) = Clock::mock();
/// let cb = CircuitBreaker::builder().clock(clock).open_wait(Duration::from_secs(5)).jitter(0.0).build()?;
/// cb.transition_to(State::Open);
/// mock.advance(Duration::from_secs(5));
/// assert!(cb.try_acquire().is_ok()); // the first half-open probe
/// # Ok::<(), nanobreaker::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Clock {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Precise(quanta::Clock),
    Coarse,
    #[cfg(all(feature = "shared", unix))]
    Monotonic,
    Mock(Arc<AtomicU64>),
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.inner {
            Inner::Precise(_) => "Clock::precise",
            Inner::Coarse => "Clock::coarse",
            #[cfg(all(feature = "shared", unix))]
            Inner::Monotonic => "Clock::monotonic",
            Inner::Mock(_) => "Clock::mock",
        })
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::precise()
    }
}

impl Clock {
    /// The default: the CPU's time-stamp counter where it is reliable, the
    /// OS monotonic clock otherwise (`quanta`). A read costs a few ns.
    pub fn precise() -> Clock {
        Clock { inner: Inner::Precise(quanta::Clock::new()) }
    }

    /// A clock read with one load of a time that a background thread
    /// (started once per process, named `nanobreaker-clock`) refreshes
    /// every millisecond. Open-state rejections become about as cheap as a
    /// counter increment; the price is up to about a millisecond of error
    /// in every wait and in the slow-call rule, and one thread. Fails only
    /// if that thread cannot be started.
    pub fn coarse() -> std::io::Result<Clock> {
        coarse::start()?;
        Ok(Clock { inner: Inner::Coarse })
    }

    /// The OS's `CLOCK_MONOTONIC` in nanoseconds (feature `shared`, Unix):
    /// one time base for every process of the host, so the clock of shared
    /// breakers (see [`SharedBreaker`](crate::SharedBreaker)). A read is a
    /// vDSO call on Linux, no system call: about 20 ns.
    #[cfg(all(feature = "shared", unix))]
    pub fn monotonic() -> Clock {
        Clock { inner: Inner::Monotonic }
    }

    /// A clock that moves only when told to, for tests: the [`MockClock`]
    /// moves it. It starts at 0.
    pub fn mock() -> (Clock, MockClock) {
        Clock::mock_at(0)
    }

    /// A mock clock starting at `raw` (anywhere in the `u64` range: the
    /// breaker only looks at differences).
    pub fn mock_at(raw: u64) -> (Clock, MockClock) {
        let now = Arc::new(AtomicU64::new(raw));
        (Clock { inner: Inner::Mock(now.clone()) }, MockClock(now))
    }

    /// Whether every process of the host reads the same time from this
    /// clock (`CLOCK_MONOTONIC`), so a shared region may hold its times.
    #[cfg(all(feature = "shared", unix))]
    pub(crate) fn host_wide(&self) -> bool {
        matches!(self.inner, Inner::Monotonic)
    }

    /// The raw reading that `since` measures from.
    pub(crate) fn raw(&self) -> u64 {
        match &self.inner {
            Inner::Precise(c) => c.raw(),
            Inner::Coarse => coarse::now(),
            #[cfg(all(feature = "shared", unix))]
            Inner::Monotonic => monotonic_now(),
            // Relaxed: the mock is a self-contained value.
            Inner::Mock(m) => m.load(Ordering::Relaxed),
        }
    }

    /// Nanoseconds from the raw reading `origin` to now (0 if now is before).
    #[inline]
    pub(crate) fn since(&self, origin: u64) -> u64 {
        match &self.inner {
            Inner::Precise(c) => c.delta_as_nanos(origin, c.raw()),
            Inner::Coarse => coarse::now().saturating_sub(origin),
            #[cfg(all(feature = "shared", unix))]
            Inner::Monotonic => monotonic_now().saturating_sub(origin),
            Inner::Mock(m) => {
                // Relaxed: as in `raw`. A signed difference, so the mock may
                // wrap past u64::MAX and time still moves on.
                let d = m.load(Ordering::Relaxed).wrapping_sub(origin) as i64;
                d.max(0) as u64
            }
        }
    }
}

/// `CLOCK_MONOTONIC` now, in ns.
#[cfg(all(feature = "shared", unix))]
#[inline]
fn monotonic_now() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to fill; CLOCK_MONOTONIC always
    // exists, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

/// `d` in nanoseconds, `u64::MAX` past 584 years.
pub(crate) fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Moves a [`Clock::mock`] clock.
///
/// ```
/// use nanobreaker::Clock;
/// use std::time::Duration;
/// let (_clock, mock) = Clock::mock_at(u64::MAX - 5);
/// mock.advance(Duration::from_nanos(10)); // wraps: fine
/// assert_eq!(mock.raw(), 4);
/// ```
#[derive(Clone)]
pub struct MockClock(Arc<AtomicU64>);

impl fmt::Debug for MockClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MockClock").field(&self.raw()).finish()
    }
}

impl MockClock {
    /// Moves time forward by `d` (wrapping at the end of the `u64` range).
    pub fn advance(&self, d: Duration) {
        // Relaxed: a self-contained value; tests order their own threads.
        self.0.fetch_add(saturating_nanos(d), Ordering::Relaxed);
    }

    /// Moves time back by `d` (a clock that steps backwards).
    pub fn rewind(&self, d: Duration) {
        // Relaxed: as above.
        self.0.fetch_sub(saturating_nanos(d), Ordering::Relaxed);
    }

    /// The raw reading, in nanoseconds from wherever it started.
    pub fn raw(&self) -> u64 {
        // Relaxed: as above.
        self.0.load(Ordering::Relaxed)
    }
}

/// The coarse clock: a process-wide time in nanoseconds, refreshed by one
/// thread. Outside loom's model (it is never used under loom), so it uses
/// std's atomics directly.
mod coarse {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    use std::time::Duration;

    static NOW: AtomicU64 = AtomicU64::new(0);
    static STARTED: OnceLock<Result<(), String>> = OnceLock::new();
    const TICK: Duration = Duration::from_millis(1);

    /// Starts the refresher once; `NOW` is set before this returns. Without
    /// the thread time would stand still, so failing to start it is an
    /// error at build, never a silent stop in a call.
    pub(super) fn start() -> std::io::Result<()> {
        let started = STARTED.get_or_init(|| {
            let clock = quanta::Clock::new();
            let origin = clock.raw();
            let read = move || clock.delta_as_nanos(origin, clock.raw()).max(1);
            // Relaxed: a self-contained value.
            NOW.store(read(), Ordering::Relaxed);
            std::thread::Builder::new()
                .name("nanobreaker-clock".into())
                .spawn(move || loop {
                    std::thread::sleep(TICK);
                    // Relaxed: as above.
                    NOW.store(read(), Ordering::Relaxed);
                })
                .map(drop)
                .map_err(|e| e.to_string())
        });
        started.clone().map_err(std::io::Error::other)
    }

    #[inline]
    pub(super) fn now() -> u64 {
        // Relaxed: a self-contained value.
        NOW.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_mock_started_near_the_end_wraps_and_moves_on() {
        let (clock, mock) = Clock::mock_at(u64::MAX - 1_000);
        let origin = clock.raw();
        mock.advance(Duration::from_nanos(5_000));
        assert_eq!(clock.since(origin), 5_000);
        mock.rewind(Duration::from_nanos(10_000));
        assert_eq!(clock.since(origin), 0, "before the origin reads as zero");
    }

    #[test]
    fn coarse_time_moves() {
        let clock = Clock::coarse().unwrap();
        let origin = clock.raw();
        let start = std::time::Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        // The refresher is a thread: on a loaded machine it may run late,
        // so wait for it (never long), but never see time run ahead.
        loop {
            let t = clock.since(origin);
            let real = start.elapsed();
            assert!(t <= real.as_nanos() as u64 + 10_000_000, "coarse time ran ahead: {t} ns in {real:?}");
            if t >= 10_000_000 {
                break;
            }
            assert!(real < Duration::from_secs(5), "coarse time stuck at {t} ns after {real:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
