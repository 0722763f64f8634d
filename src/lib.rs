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
//! `state.rs`, what each generation publishes before it is visible in
//! `era.rs`, the windows in `window/`, the call paths in `admission.rs`,
//! `recording.rs` and `transition.rs`, listener delivery in `events.rs`.
//!
//! The C ABI (`src/ffi`, `include/nanobreaker.h`) is behind the `capi`
//! feature, off by default: a Rust user compiles neither it nor cbindgen.
//! `ffi/c/build.sh` builds the C library.
//!
//! Around the breaker, none of it on the hot path: names ([`Name`]), a
//! [`Registry`] of named breakers (`registry/`), a [`Policy`] with a
//! classifier ([`classify`]), a [`Bulkhead`], call timeouts and fallbacks
//! (`policy/`), and exporters read at scrape time (`export/`:
//! [`Registry::render_prometheus`] always; `prometheus`, `metrics`,
//! `tracing` and `serde` behind cargo features of those names).

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod admission;
mod breaker;
mod builder;
mod bulkhead;
mod call;
pub mod classify;
mod clock;
mod config;
mod era;
mod events;
mod export;
#[cfg(all(feature = "capi", not(loom)))]
#[doc(hidden)]
pub mod ffi;
/// The clean mark's protocol, for loom models (`loom-tests/`).
#[cfg(loom)]
#[doc(hidden)]
pub use window::clean_hooks;
#[cfg(all(feature = "redis", not(loom)))]
pub mod fleet;
#[cfg(feature = "tower")]
pub mod layer;
mod metrics;
mod name;
mod permit;
mod policy;
mod recording;
mod registry;
#[cfg(not(loom))]
mod rseq;
#[cfg(all(feature = "shared", unix, not(loom)))]
pub mod shared;
mod state;
mod stats;
mod sync;
mod transition;
mod window;
mod words;

pub use breaker::CircuitBreaker;
pub use builder::Builder;
pub use bulkhead::{Bulkhead, BulkheadFull, BulkheadGuard};
pub use classify::Classifier;
pub use clock::{Clock, MockClock};
pub use config::{
    Config, ConfigError, HalfOpenPolicy, Window, MAX_CONSECUTIVE_FAILURES, MAX_HALF_OPEN_PERMITS,
    MAX_MINIMUM_CALLS_PER_BUCKET, MAX_SLOW_CALL_DURATION, MAX_STRIPES, MAX_WAIT, MAX_WINDOW_BUCKETS,
    MAX_WINDOW_CALLS, MIN_BUCKET,
};
pub use events::{Reason, Transition, WindowCounts};
#[cfg(feature = "tracing")]
pub use export::trace::trace_transitions;
#[cfg(feature = "prometheus")]
pub use export::RegistryCollector;
#[cfg(all(feature = "redis", not(loom)))]
pub use fleet::{Fleet, FleetBuilder, FleetError, FleetStatus};
pub use metrics::Metrics;
pub use name::Name;
pub use permit::{Error, Outcome, OwnedPermit, Permit, RawPermit, Rejected};
pub use policy::{CallError, FallbackOn, Policy, MAX_FALLBACK_DEPTH};
pub use registry::{
    BreakerSnapshot, Pattern, Registry, RegistryBuilder, RegistryError, DEFAULT_CAPACITY, MAX_NAME_LEN,
};
#[cfg(all(feature = "shared", unix, not(loom)))]
pub use shared::{SharedBreaker, SharedError, SharedOptions, LAYOUT_VERSION};
pub use state::State;
pub use stats::{LatencyHistogram, LATENCY_BUCKETS};
