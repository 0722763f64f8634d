//! Permits (leave to make one call), outcomes, and the errors of a
//! protected call.

use crate::breaker::CircuitBreaker;
use crate::state::State;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// What became of a protected call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
#[non_exhaustive]
pub enum Outcome {
    /// The call worked.
    Success = 0,
    /// The call failed, and the failure counts against the dependency.
    Failure = 1,
    /// Neither: cancelled, a caller's mistake, or anything not to be counted.
    Ignored = 2,
}

/// Marks a permit taken while the slow-call rule was off: no start time.
pub(crate) const NO_START: u64 = u64::MAX;

/// The plain data of a permit, for code that cannot hold a borrow of the
/// breaker: give it back to [`CircuitBreaker::record`] of the breaker that
/// issued it. It is neither `Copy` nor `Clone`, and only a breaker makes
/// one, so it cannot be forged or recorded twice. Dropping it unrecorded
/// records nothing (a half-open slot it holds is freed when the trial
/// ends); prefer [`Permit`] or [`OwnedPermit`], which record on drop.
///
/// ```
/// use nanobreaker::{CircuitBreaker, Outcome};
/// let cb = CircuitBreaker::builder().build().unwrap();
/// let raw = cb.acquire().unwrap();
/// cb.record(raw, Outcome::Success);
/// ```
#[derive(Debug, PartialEq, Eq)]
#[must_use = "give a RawPermit back to `CircuitBreaker::record`"]
pub struct RawPermit {
    pub(crate) generation: u64,
    pub(crate) start: u64,
}

impl RawPermit {
    /// The generation the permit was issued in.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Rebuilds a permit from parts handed across the C ABI.
    #[allow(dead_code)] // used by the C ABI only
    pub(crate) fn from_parts(generation: u64, start: u64) -> RawPermit {
        RawPermit { generation, start }
    }
}

/// Why a call was not let through, and when to try again.
///
/// ```
/// use nanobreaker::{CircuitBreaker, State};
/// let cb = CircuitBreaker::builder().build().unwrap();
/// cb.transition_to(State::Open);
/// let r = cb.try_acquire().unwrap_err();
/// assert_eq!(r.state(), State::Open);
/// assert!(r.retry_after() > std::time::Duration::ZERO);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    pub(crate) state: State,
    /// `retry_after` in ns, `u64::MAX` for `Duration::MAX`: a rejection
    /// makes no `Duration` (a division) unless asked.
    pub(crate) retry_nanos: u64,
}

impl Rejected {
    /// How long until the breaker may let a call through again
    /// (`Duration::MAX` when forced open). In half-open with every permit
    /// taken, the time until the trial must end.
    pub fn retry_after(&self) -> Duration {
        match self.retry_nanos {
            u64::MAX => Duration::MAX,
            n => Duration::from_nanos(n),
        }
    }

    /// The state that rejected the call.
    pub fn state(&self) -> State {
        self.state
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "circuit breaker is {}; retry after {:?}", self.state, self.retry_after())
    }
}

impl fmt::Debug for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("state", &self.state)
            .field("retry_after", &self.retry_after())
            .finish()
    }
}

impl std::error::Error for Rejected {}

/// The error of [`CircuitBreaker::call`]: the breaker said no, or the call
/// itself failed.
///
/// ```
/// use nanobreaker::{CircuitBreaker, Error};
/// use std::error::Error as _;
/// let cb = CircuitBreaker::builder().build().unwrap();
/// let e = cb.call(|| Err::<(), _>(std::io::Error::other("refused"))).unwrap_err();
/// assert_eq!(e.to_string(), "the protected call failed");
/// assert_eq!(e.source().unwrap().to_string(), "refused");
/// ```
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error<E> {
    /// The breaker rejected the call; it was not made.
    Rejected(Rejected),
    /// The call was made and returned this error.
    Inner(E),
}

impl<E> Error<E> {
    /// The call's own error, if it was made and failed.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Error::Inner(e) => Some(e),
            Error::Rejected(_) => None,
        }
    }
}

impl<E: Into<Box<dyn std::error::Error + Send + Sync>>> Error<E> {
    /// The error as tower's `BoxError`: a [`Rejected`] for a rejection
    /// (find it with `downcast_ref::<Rejected>()`), the call's own error
    /// otherwise. `Error<BoxError>` is not itself a `std::error::Error`
    /// (a `Box<dyn Error>` is not one), so layers above the breaker that
    /// want `BoxError` get this.
    ///
    /// ```
    /// use nanobreaker::{CircuitBreaker, Error, Rejected, State};
    /// type BoxError = Box<dyn std::error::Error + Send + Sync>;
    /// let cb = CircuitBreaker::builder().build().unwrap();
    /// cb.transition_to(State::Open);
    /// let e: Error<BoxError> = cb.call(|| Ok::<(), BoxError>(())).unwrap_err();
    /// assert!(e.into_box_error().is::<Rejected>());
    /// ```
    pub fn into_box_error(self) -> Box<dyn std::error::Error + Send + Sync> {
        match self {
            Error::Rejected(r) => Box::new(r),
            Error::Inner(e) => e.into(),
        }
    }
}

impl<E> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Rejected(r) => r.fmt(f),
            // The error itself is the `source()`: not repeated here.
            Error::Inner(_) => f.write_str("the protected call failed"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Rejected(_) => None,
            Error::Inner(e) => Some(e),
        }
    }
}

/// What a permit dropped unreported records: `Failure` while the thread
/// unwinds from a panic (the call panicked: it failed, as gobreaker and
/// resilience4j count it), `Ignored` otherwise (the caller walked away, or
/// the future was cancelled).
fn dropped() -> Outcome {
    if std::thread::panicking() {
        Outcome::Failure
    } else {
        Outcome::Ignored
    }
}

/// Leave to make one call. Report how it went with [`success`](Permit::success),
/// [`failure`](Permit::failure) or [`ignore`](Permit::ignore); a permit
/// dropped without a report counts as ignored (and gives back its
/// half-open slot), or as a failure if dropped by a panic.
///
/// ```
/// use nanobreaker::CircuitBreaker;
/// let cb = CircuitBreaker::builder().build().unwrap();
/// if let Ok(permit) = cb.try_acquire() {
///     permit.success();
/// }
/// assert_eq!(cb.metrics().successes, 1);
/// ```
#[must_use = "a permit dropped without a report counts as ignored"]
pub struct Permit<'a> {
    pub(crate) breaker: &'a CircuitBreaker,
    pub(crate) raw: std::mem::ManuallyDrop<RawPermit>,
}

/// Reports on a permit's parts; shared by [`Permit`] and [`OwnedPermit`].
macro_rules! permit_methods {
    ($breaker:ty) => {
        /// The call worked.
        #[inline]
        pub fn success(self) {
            self.record(Outcome::Success)
        }

        /// The call failed.
        #[inline]
        pub fn failure(self) {
            self.record(Outcome::Failure)
        }

        /// The call is not to be counted.
        pub fn ignore(self) {
            self.record(Outcome::Ignored)
        }

        /// Reports `outcome`.
        #[inline]
        pub fn record(self, outcome: Outcome) {
            let (breaker, raw) = self.into_parts();
            breaker.record(raw, outcome);
        }

        /// The plain data of this permit, consuming it without a report:
        /// the caller must pass it to [`CircuitBreaker::record`] later.
        pub fn into_raw(self) -> RawPermit {
            self.into_parts().1
        }

        /// Takes the permit apart without running its `Drop`.
        #[inline]
        fn into_parts(self) -> ($breaker, RawPermit) {
            let mut this = std::mem::ManuallyDrop::new(self);
            // SAFETY: `this` is never used or dropped again, so each field
            // is moved out exactly once.
            unsafe { (std::ptr::read(&this.breaker), std::mem::ManuallyDrop::take(&mut this.raw)) }
        }
    };
}

impl<'a> Permit<'a> {
    permit_methods!(&'a CircuitBreaker);
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // SAFETY: `drop` runs once, and `raw` is not used after it.
        let raw = unsafe { std::mem::ManuallyDrop::take(&mut self.raw) };
        self.breaker.record(raw, dropped());
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").field("generation", &self.raw.generation).finish()
    }
}

/// A [`Permit`] that owns a handle to its breaker, for spawned tasks and
/// anything that must be `'static` (as tokio's `acquire_owned`).
///
/// ```
/// use nanobreaker::CircuitBreaker;
/// use std::sync::Arc;
/// let cb = Arc::new(CircuitBreaker::builder().build().unwrap());
/// let permit = cb.try_acquire_owned().unwrap();
/// std::thread::spawn(move || permit.success()).join().unwrap();
/// assert_eq!(cb.metrics().successes, 1);
/// ```
#[must_use = "a permit dropped without a report counts as ignored"]
pub struct OwnedPermit {
    pub(crate) breaker: Arc<CircuitBreaker>,
    pub(crate) raw: std::mem::ManuallyDrop<RawPermit>,
}

impl OwnedPermit {
    permit_methods!(Arc<CircuitBreaker>);
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        // SAFETY: `drop` runs once, and `raw` is not used after it.
        let raw = unsafe { std::mem::ManuallyDrop::take(&mut self.raw) };
        self.breaker.record(raw, dropped());
    }
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit").field("generation", &self.raw.generation).finish()
    }
}
