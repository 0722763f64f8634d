//! Fallbacks: what a [`Policy`] returns instead when a call is rejected
//! (or, if asked, fails), tried in order.
//!
//! A fallback never calls back into the breaker it covers: while one runs,
//! the breaker is on this thread's *cover stack*, and a [`Policy`] call on
//! a covered breaker is refused with [`CallError::Reentrant`] without
//! touching it (a fallback that retried its own breaker would only be
//! rejected again, or worse, count twice). Fallbacks nest (a fallback may
//! call another policy with its own fallbacks) at most
//! [`MAX_FALLBACK_DEPTH`] deep on one thread. The stack is a fixed array in
//! a thread-local: nothing is allocated. A panicking fallback unwinds
//! through the caller as any panic does, leaving the stack as it found it;
//! the call it covered was already recorded, once.
//!
//! The guard covers calls through a `Policy` only: a fallback handed the
//! bare `CircuitBreaker` can still call it directly.

use super::{CallError, Policy};
use crate::breaker::CircuitBreaker;
use crate::classify::Classifier;
use crate::permit::Outcome;
use crate::sync::thread_local;
use std::cell::Cell;

/// The deepest fallbacks nest on one thread.
pub const MAX_FALLBACK_DEPTH: usize = 8;

/// When a fallback runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FallbackOn {
    /// Only when the call was not made: rejected by the breaker or the
    /// bulkhead.
    Rejection,
    /// Also when the call failed (an error the classifier counts as a
    /// failure, or a timeout).
    RejectionOrFailure,
}

struct Stack {
    depth: Cell<usize>,
    covered: [Cell<usize>; MAX_FALLBACK_DEPTH],
}

thread_local! {
    static STACK: Stack = Stack { depth: Cell::new(0), covered: Default::default() };
}

fn addr(cb: &CircuitBreaker) -> usize {
    cb as *const CircuitBreaker as usize
}

/// Whether a fallback of `cb` runs on this thread now.
#[inline]
pub(super) fn covering(cb: &CircuitBreaker) -> bool {
    STACK.with(|s| {
        let d = s.depth.get();
        d != 0 && s.covered[..d].iter().any(|c| c.get() == addr(cb))
    })
}

/// `cb` on the cover stack until dropped.
struct Cover;

impl Cover {
    fn push(cb: &CircuitBreaker) -> Option<Cover> {
        STACK.with(|s| {
            let d = s.depth.get();
            if d == MAX_FALLBACK_DEPTH {
                return None;
            }
            s.covered[d].set(addr(cb));
            s.depth.set(d + 1);
            Some(Cover)
        })
    }
}

impl Drop for Cover {
    fn drop(&mut self) {
        // Also while unwinding from a panicking fallback.
        let _ = STACK.try_with(|s| s.depth.set(s.depth.get() - 1));
    }
}

/// A fallback: given the error so far, a value or its own error.
pub type Fallback<'a, T, E> = &'a dyn Fn(&CallError<E>) -> Result<T, E>;

impl<C> Policy<C> {
    /// [`call`](Self::call), and on a rejection (or, with
    /// [`FallbackOn::RejectionOrFailure`], a failure) the `fallbacks` in
    /// order until one returns `Ok`. Each is given the error so far (the
    /// call's, then the previous fallback's as [`CallError::Inner`]); if
    /// all fail the last error is returned. More fallbacks than the
    /// policy's `max_fallbacks` is refused with
    /// [`CallError::FallbackTooDeep`] before anything runs.
    ///
    /// ```
    /// use nanobreaker::{CallError, CircuitBreaker, FallbackOn, Policy, State};
    /// use std::sync::Arc;
    /// let cb = Arc::new(CircuitBreaker::builder().build().unwrap());
    /// let policy = Policy::new(cb.clone());
    /// cb.transition_to(State::ForcedOpen);
    /// let cached = |_: &CallError<&str>| Ok("cached");
    /// let r = policy.call_or(FallbackOn::Rejection, || Ok("live"), &[&cached]);
    /// assert_eq!(r, Ok("cached"));
    /// ```
    pub fn call_or<T, E>(
        &self,
        on: FallbackOn,
        f: impl FnOnce() -> Result<T, E>,
        fallbacks: &[Fallback<'_, T, E>],
    ) -> Result<T, CallError<E>>
    where
        C: Classifier<T, E>,
    {
        if fallbacks.len() > self.max_fallbacks {
            return Err(CallError::FallbackTooDeep);
        }
        let (r, outcome) = self.run(f);
        let mut err = match r {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let wanted = match &err {
            // The guard's own refusals: falling back would only recurse.
            CallError::Reentrant | CallError::FallbackTooDeep => false,
            CallError::Rejected(_) | CallError::BulkheadFull(_) => true,
            CallError::Timeout(_) => on == FallbackOn::RejectionOrFailure,
            CallError::Inner(_) => on == FallbackOn::RejectionOrFailure && outcome == Outcome::Failure,
        };
        if !wanted {
            return Err(err);
        }
        for fallback in fallbacks {
            let Some(_cover) = Cover::push(&self.breaker) else {
                return Err(CallError::FallbackTooDeep);
            };
            match fallback(&err) {
                Ok(v) => return Ok(v),
                Err(e) => err = CallError::Inner(e),
            }
        }
        Err(err)
    }
}
