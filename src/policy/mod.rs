//! A [`Policy`]: a breaker with what surrounds a call, set once: a
//! classifier, a bulkhead, a call timeout, and fallbacks.
//!
//! # Order
//!
//! The layers nest as resilience4j recommends, outermost first:
//! `retry(breaker(timeout(bulkhead(call))))`. The breaker admits the call
//! first (a rejection costs nothing more); then the bulkhead, whose
//! rejection is recorded as *ignored* (the caller is busy, not the
//! dependency: a full bulkhead never trips the breaker); then the call,
//! timed when a timeout is set; then the classifier decides what the
//! result counts as. Retry goes outside (see the README): never retry a
//! [`CallError::Rejected`] before its `retry_after`.
//!
//! # Cost
//!
//! Everything is generic and inlined: with no bulkhead and no timeout a
//! `Policy::call` is `CircuitBreaker::call_with` with the classifier, plus
//! two predictable branches and one thread-local read (the fallback guard,
//! see `fallback.rs`). `CircuitBreaker::call` itself is unchanged.

mod fallback;
mod timeout;

pub use fallback::{FallbackOn, MAX_FALLBACK_DEPTH};

use crate::breaker::CircuitBreaker;
use crate::bulkhead::{Bulkhead, BulkheadFull};
use crate::classify::{Classifier, ErrIsFailure};
use crate::permit::{Outcome, Permit, Rejected};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Why a [`Policy`] call did not return the call's value.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError<E> {
    /// The breaker rejected the call; it was not made.
    Rejected(Rejected),
    /// The bulkhead was full; the call was not made (and the breaker did
    /// not count it).
    BulkheadFull(BulkheadFull),
    /// The call ran past the policy's `call_timeout` (counted as a failure
    /// and in `Metrics::timeouts`); its result, if it had one, is dropped.
    Timeout(Duration),
    /// The call was made and returned this error (or a fallback did).
    Inner(E),
    /// A fallback called back into the breaker it covers: refused, not made.
    Reentrant,
    /// More fallbacks than the policy allows, or fallbacks nested deeper
    /// than [`MAX_FALLBACK_DEPTH`] on this thread: refused, not made.
    FallbackTooDeep,
}

impl<E> CallError<E> {
    /// The call's own error, if it was made and failed.
    pub fn into_inner(self) -> Option<E> {
        match self {
            CallError::Inner(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the call was refused before it ran (rejected by the
    /// breaker or the bulkhead, or refused by the fallback guard).
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            CallError::Rejected(_)
                | CallError::BulkheadFull(_)
                | CallError::Reentrant
                | CallError::FallbackTooDeep
        )
    }
}

impl<E> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Rejected(r) => r.fmt(f),
            CallError::BulkheadFull(b) => b.fmt(f),
            CallError::Timeout(d) => write!(f, "the protected call timed out after {d:?}"),
            CallError::Inner(_) => f.write_str("the protected call failed"),
            CallError::Reentrant => f.write_str("a fallback called back into the breaker it covers"),
            CallError::FallbackTooDeep => f.write_str("too many fallbacks"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CallError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Inner(e) => Some(e),
            _ => None,
        }
    }
}

/// A breaker with a classifier, an optional bulkhead, an optional call
/// timeout and a fallback limit, all set once.
///
/// ```
/// use nanobreaker::{classify::HttpStatus, Bulkhead, CallError, CircuitBreaker, Policy};
/// use std::sync::Arc;
/// let cb = Arc::new(CircuitBreaker::builder().name("api").build().unwrap());
/// let policy = Policy::new(cb.clone())
///     .classifier(HttpStatus)
///     .bulkhead(Arc::new(Bulkhead::new(64).unwrap()));
/// let r: Result<u16, CallError<u16>> = policy.call(|| Ok(404)); // ignored
/// assert_eq!(r, Ok(404));
/// let _ = policy.call(|| Ok::<u16, u16>(503)); // a failure
/// assert_eq!((cb.metrics().ignored, cb.metrics().failures), (1, 1));
/// ```
pub struct Policy<C = ErrIsFailure> {
    breaker: Arc<CircuitBreaker>,
    classifier: C,
    bulkhead: Option<Arc<Bulkhead>>,
    call_timeout: Option<Duration>,
    max_fallbacks: usize,
}

impl<C> fmt::Debug for Policy<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("breaker", &self.breaker)
            .field("bulkhead", &self.bulkhead)
            .field("call_timeout", &self.call_timeout)
            .finish_non_exhaustive()
    }
}

impl Policy<ErrIsFailure> {
    /// A policy around `breaker`: `Ok` a success, `Err` a failure, no
    /// bulkhead, no timeout, at most 3 fallbacks.
    pub fn new(breaker: Arc<CircuitBreaker>) -> Policy<ErrIsFailure> {
        Policy { breaker, classifier: ErrIsFailure, bulkhead: None, call_timeout: None, max_fallbacks: 3 }
    }
}

impl<C> Policy<C> {
    /// Classifies every result with `classifier` (see [`crate::classify`]).
    pub fn classifier<D>(self, classifier: D) -> Policy<D> {
        Policy {
            breaker: self.breaker,
            classifier,
            bulkhead: self.bulkhead,
            call_timeout: self.call_timeout,
            max_fallbacks: self.max_fallbacks,
        }
    }

    /// Limits concurrent calls with `bulkhead` (share one `Arc` between
    /// policies to share the limit).
    pub fn bulkhead(mut self, bulkhead: Arc<Bulkhead>) -> Self {
        self.bulkhead = Some(bulkhead);
        self
    }

    /// A call still running after `timeout` is a timeout failure (see
    /// [`call`](Self::call) for blocking calls and
    /// [`call_async`](Self::call_async) for futures).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = Some(timeout);
        self
    }

    /// How many fallbacks one call may be given (default 3, at most
    /// [`MAX_FALLBACK_DEPTH`]; more is clamped to it).
    pub fn max_fallbacks(mut self, n: usize) -> Self {
        self.max_fallbacks = n.min(MAX_FALLBACK_DEPTH);
        self
    }

    /// The breaker.
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }

    /// The breaker's permit and, with a bulkhead, a place in it; refused
    /// inside a fallback of this breaker.
    #[inline]
    fn admit<E>(&self) -> Result<(Permit<'_>, Option<crate::bulkhead::BulkheadGuard<'_>>), CallError<E>> {
        if fallback::covering(&self.breaker) {
            return Err(CallError::Reentrant);
        }
        let permit = self.breaker.try_acquire().map_err(CallError::Rejected)?;
        let place = match &self.bulkhead {
            None => None,
            Some(b) => match b.try_enter() {
                Ok(g) => Some(g),
                Err(full) => {
                    // The dependency did not fail: not counted.
                    permit.ignore();
                    return Err(CallError::BulkheadFull(full));
                }
            },
        };
        Ok((permit, place))
    }

    /// Runs `f` through the policy and returns what became of it.
    ///
    /// With a `call_timeout`, a blocking call cannot be interrupted (no
    /// thread can be stopped safely): it runs to its end, and if that took
    /// `call_timeout` or longer (on the breaker's clock) it counts as a
    /// timeout failure and its result is dropped, as an async timeout
    /// drops its future. To bound the wait itself, give the blocking call
    /// its own deadline (socket timeouts) or run it on a thread and use
    /// [`call_async`](Self::call_async).
    ///
    /// ```
    /// use nanobreaker::{CallError, CircuitBreaker, Policy};
    /// use std::sync::Arc;
    /// let policy = Policy::new(Arc::new(CircuitBreaker::builder().build().unwrap()));
    /// assert_eq!(policy.call(|| Ok::<_, ()>(1)), Ok(1));
    /// assert_eq!(policy.call(|| Err::<(), _>("no")), Err(CallError::Inner("no")));
    /// ```
    #[inline]
    pub fn call<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, CallError<E>>
    where
        C: Classifier<T, E>,
    {
        self.run(f).0
    }

    /// `call`, also telling what the breaker counted.
    #[inline]
    fn run<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> (Result<T, CallError<E>>, Outcome)
    where
        C: Classifier<T, E>,
    {
        let (permit, _place) = match self.admit() {
            Ok(p) => p,
            Err(e) => return (Err(e), Outcome::Ignored),
        };
        let start = self.call_timeout.map(|_| self.breaker.now());
        let r = f();
        if let (Some(limit), Some(start)) = (self.call_timeout, start) {
            if let Some(e) = timeout::late(&self.breaker, start, limit) {
                permit.failure();
                return (Err(e), Outcome::Failure);
            }
        }
        let outcome = self.classifier.classify(&r);
        permit.record(outcome);
        (r.map_err(CallError::Inner), outcome)
    }
}
