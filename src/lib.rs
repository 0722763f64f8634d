//! A lock-free circuit breaker with a C ABI.
//!
//! A circuit breaker stops a service from hammering a dependency that is
//! failing: it counts outcomes, trips [`Open`](State::Open) when failures or
//! slow calls pass a threshold, rejects calls at once while open, and lets a
//! few probe calls through ([`HalfOpen`](State::HalfOpen)) to decide when to
//! close again.
//!
//! ```
//! use nanobreaker::{CircuitBreaker, Error, State, Window};
//! use std::time::Duration;
//!
//! let cb = CircuitBreaker::builder()
//!     .failure_rate_threshold(0.5)
//!     .minimum_calls(20)
//!     .window(Window::count(100))
//!     .open_wait(Duration::from_secs(5))
//!     .build()?;
//!
//! match cb.try_acquire() {
//!     Ok(permit) => permit.success(), // or .failure(), .ignore()
//!     Err(rejected) => println!("retry in {:?}", rejected.retry_after()),
//! }
//! let r: Result<u32, Error<std::io::Error>> = cb.call(|| Ok(42));
//! assert_eq!(cb.state(), State::Closed);
//! # Ok::<(), nanobreaker::ConfigError>(())
//! ```
//!
//! The design of each part is explained where it lives: the state word in
//! `state.rs`, the windows and stripes in `window.rs`, transitions and the
//! hot path in `breaker.rs`, listener delivery in `events.rs`.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod breaker;
mod config;
mod events;
#[cfg(not(loom))]
pub mod ffi;
mod metrics;
mod state;
mod sync;
mod window;

pub use breaker::{Builder, CircuitBreaker, Error, Outcome, Permit, RawPermit, Rejected};
pub use config::{
    Config, ConfigError, Window, MAX_HALF_OPEN_PERMITS, MAX_STRIPES, MAX_WINDOW_BUCKETS, MAX_WINDOW_CALLS,
    MIN_BUCKET,
};
pub use events::{Reason, Transition};
pub use metrics::Metrics;
pub use state::State;

/// The clock crate, re-exported so callers name the same `Clock` type the
/// builder takes (`nanobreaker::quanta::Clock::mock()` in tests).
pub use quanta;
