//! Call timeouts: measured after the fact for blocking calls (and for
//! futures without the `tokio` feature), enforced by `tokio::time::timeout`
//! for futures with it.
//!
//! A timed-out call records one failure through its permit and counts one
//! timeout; its late result never reaches the breaker (the permit is
//! spent, or the future dropped), so a timeout racing a late success is
//! counted once, as the timeout.

use super::{CallError, Policy};
use crate::breaker::CircuitBreaker;
use crate::classify::Classifier;
use std::future::Future;
use std::time::Duration;

/// If the call that started at `start` (breaker time) took `limit` or
/// more, counts the timeout and returns its error.
pub(super) fn late<E>(cb: &CircuitBreaker, start: u64, limit: Duration) -> Option<CallError<E>> {
    let took = cb.now().saturating_sub(start);
    if u128::from(took) >= limit.as_nanos() {
        cb.count_timeout();
        return Some(CallError::Timeout(limit));
    }
    None
}

impl<C> Policy<C> {
    /// Awaits `fut` through the policy, with no runtime of its own. A
    /// future dropped before it finishes (cancelled) counts as ignored.
    ///
    /// With a `call_timeout`: under the `tokio` feature the future is
    /// dropped when the timeout passes (on tokio's clock) and the call
    /// counts as a timeout failure; without it the future runs to its end
    /// and counts as a timeout failure if that took `call_timeout` or
    /// longer on the breaker's clock (its result dropped), so no runtime
    /// is tied to the crate.
    ///
    /// ```
    /// # use nanobreaker::{CircuitBreaker, Policy};
    /// # use std::sync::Arc;
    /// # async fn fetch() -> Result<u32, std::io::Error> { Ok(1) }
    /// # async fn run(policy: Policy) {
    /// let n = policy.call_async(fetch()).await;
    /// # }
    /// ```
    pub async fn call_async<T, E>(&self, fut: impl Future<Output = Result<T, E>>) -> Result<T, CallError<E>>
    where
        C: Classifier<T, E>,
    {
        let (permit, _place) = self.admit()?;
        let r = match self.call_timeout {
            None => fut.await,
            #[cfg(feature = "tokio")]
            Some(limit) => match tokio::time::timeout(limit, fut).await {
                Ok(r) => r,
                Err(_elapsed) => {
                    // The future is dropped: it can report nothing later.
                    permit.failure();
                    self.breaker.count_timeout();
                    return Err(CallError::Timeout(limit));
                }
            },
            #[cfg(not(feature = "tokio"))]
            Some(limit) => {
                let start = self.breaker.now();
                let r = fut.await;
                if let Some(e) = late(&self.breaker, start, limit) {
                    permit.failure();
                    return Err(e);
                }
                r
            }
        };
        permit.record(self.classifier.classify(&r));
        r.map_err(CallError::Inner)
    }
}
