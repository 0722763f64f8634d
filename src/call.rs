//! Running a call under the breaker: `call` and its classifier and async
//! forms, built on `try_acquire` and the permit.

use crate::breaker::CircuitBreaker;
use crate::permit::{Error, Outcome};
use std::future::Future;

impl CircuitBreaker {
    /// Runs `f` if the breaker lets it, and records `Ok` as success and
    /// `Err` as failure. A panic in `f` counts as a failure and goes on
    /// unwinding.
    ///
    /// ```
    /// use nanobreaker::{CircuitBreaker, Error};
    /// let cb = CircuitBreaker::builder().build().unwrap();
    /// let r: Result<u32, Error<&str>> = cb.call(|| Ok(7));
    /// assert_eq!(r, Ok(7));
    /// assert_eq!(cb.call(|| Err::<u32, _>("down")), Err(Error::Inner("down")));
    /// ```
    pub fn call<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, Error<E>> {
        self.call_with(f, |r| if r.is_ok() { Outcome::Success } else { Outcome::Failure })
    }

    /// Like [`call`](Self::call), with `classify` deciding what each result
    /// counts as (for example: a "not found" error is ignored, not a failure).
    ///
    /// ```
    /// use nanobreaker::{CircuitBreaker, Outcome};
    /// let cb = CircuitBreaker::builder().build().unwrap();
    /// let _ = cb.call_with(|| Err::<(), _>(404), |r| match r {
    ///     Err(404) => Outcome::Ignored,
    ///     Err(_) => Outcome::Failure,
    ///     Ok(_) => Outcome::Success,
    /// });
    /// assert_eq!(cb.metrics().ignored, 1);
    /// ```
    pub fn call_with<T, E>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
    ) -> Result<T, Error<E>> {
        let permit = self.try_acquire().map_err(Error::Rejected)?;
        // If `f` panics, the permit is dropped while unwinding: a failure.
        let r = f();
        permit.record(classify(&r));
        r.map_err(Error::Inner)
    }

    /// Awaits `fut` if the breaker lets it, with no runtime of its own: a
    /// future dropped before it finishes (cancelled) counts as ignored, one
    /// that panics as a failure. The future is `Send` when `fut` and the
    /// values are, so it can be spawned (with the breaker in an `Arc`
    /// moved into the task).
    ///
    /// ```
    /// # use nanobreaker::CircuitBreaker;
    /// # async fn fetch() -> Result<u32, std::io::Error> { Ok(1) }
    /// # async fn run(cb: &CircuitBreaker) {
    /// let n = cb.call_async(fetch()).await;
    /// # }
    /// ```
    pub async fn call_async<T, E>(&self, fut: impl Future<Output = Result<T, E>>) -> Result<T, Error<E>> {
        self.call_async_with(fut, |r| if r.is_ok() { Outcome::Success } else { Outcome::Failure }).await
    }

    /// [`call_async`](Self::call_async) with a classifier.
    pub async fn call_async_with<T, E>(
        &self,
        fut: impl Future<Output = Result<T, E>>,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
    ) -> Result<T, Error<E>> {
        let permit = self.try_acquire().map_err(Error::Rejected)?;
        let r = fut.await;
        permit.record(classify(&r));
        r.map_err(Error::Inner)
    }
}
