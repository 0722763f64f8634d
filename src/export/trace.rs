//! `tracing` (feature `tracing`): one structured event per transition.

use crate::breaker::CircuitBreaker;
use crate::events::Transition;
use crate::state::State;
use std::sync::{Arc, Weak};

/// Emits one event for `t` of the breaker behind `cb` (target
/// `nanobreaker`; `WARN` when it opens, `INFO` otherwise).
pub(crate) fn event(cb: &Weak<CircuitBreaker>, t: &Transition) {
    let Some(cb) = cb.upgrade() else { return };
    // A trip carries the window that tripped it; otherwise the window now.
    let window = t.window.unwrap_or_else(|| {
        let m = cb.metrics();
        let mut w = crate::WindowCounts::default();
        (w.calls, w.failures, w.slow_calls) = (m.window_calls, m.window_failures, m.window_slow_calls);
        w
    });
    let threshold = cb.config.load().failure_rate_threshold;
    let (name, from, to, reason) = (cb.name(), t.from.name(), t.to.name(), t.reason.name());
    let at_ms = t.at.as_millis() as u64;
    macro_rules! emit {
        ($level:expr) => {
            tracing::event!(
                target: "nanobreaker",
                $level,
                name,
                from,
                to,
                reason,
                failure_rate = window.failure_rate(),
                threshold,
                window_calls = window.calls,
                window_failures = window.failures,
                window_slow_calls = window.slow_calls,
                generation = t.generation,
                at_ms,
                "circuit breaker {name}: {from} -> {to} ({reason})"
            )
        };
    }
    if matches!(t.to, State::Open | State::ForcedOpen) {
        emit!(tracing::Level::WARN);
    } else {
        emit!(tracing::Level::INFO);
    }
}

/// Emits a `tracing` event (target `nanobreaker`) for every transition of
/// `cb`, with the fields name, from, to, reason, failure_rate, threshold,
/// window_calls, window_failures, window_slow_calls, generation and at_ms.
/// A registry does this for each breaker it makes when the `tracing`
/// feature is on.
///
/// For a trip by a rate the window fields are the window that tripped it
/// ([`Transition::window`](crate::Transition::window)); for the other
/// transitions, the window when the event is delivered.
///
/// ```
/// use nanobreaker::CircuitBreaker;
/// use std::sync::Arc;
/// let cb = Arc::new(CircuitBreaker::builder().name("db").build().unwrap());
/// nanobreaker::trace_transitions(&cb);
/// ```
pub fn trace_transitions(cb: &Arc<CircuitBreaker>) {
    let w = Arc::downgrade(cb);
    cb.on_transition(move |t| event(&w, t));
}
