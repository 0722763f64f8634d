//! Every breaker measured, behind one interface: nanobreaker, the floor,
//! and the Rust peers, each configured as close to nanobreaker's defaults as
//! its API allows:
//!
//! - nanobreaker: count window of 100, trip at 50% failures after 20 calls,
//!   5 s open wait.
//! - recloser 1.x: `error_rate(0.5)`, `closed_len(100)` (its ring is also a
//!   count window; it has no separate minimum, the ring must fill), 5 s wait.
//! - failsafe 1.x, default policy: success rate over a time window, or else 5
//!   consecutive failures (its default; no count window exists), jittered
//!   backoff. failsafe "consecutive": `consecutive_failures(5)`, constant 5 s.
//! - circuitbreaker-rs 0.1: `failure_threshold(0.5)`, `min_throughput(20)`,
//!   5 s cooldown (its counts are all-time, not windowed).
//!
//! Workloads: `call(fail)` makes one protected call that fails when `fail`
//! (1 call in 64 in the benches: the breakers stay closed); `open()` trips
//! the breaker for an hour so `call` measures a rejection.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

#[derive(Debug)]
pub struct Boom;
impl std::fmt::Display for Boom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("boom")
    }
}
impl std::error::Error for Boom {}

fn work(fail: bool) -> Result<(), Boom> {
    if std::hint::black_box(fail) {
        Err(Boom)
    } else {
        Ok(())
    }
}

// One breaker per benchmark: the size difference between variants is no cost.
#[allow(clippy::large_enum_variant)]
pub enum Breaker {
    /// One relaxed load of a shared word plus one shared `fetch_add`: the
    /// least any shared breaker can do.
    Floor(AtomicU64, AtomicU64),
    Nano(nanobreaker::CircuitBreaker),
    Recloser(recloser::Recloser),
    FailsafeDefault(Box<dyn Fn(bool) -> bool + Send + Sync>),
    FailsafeConsecutive(Box<dyn Fn(bool) -> bool + Send + Sync>),
    CircuitbreakerRs(circuitbreaker_rs::CircuitBreaker<circuitbreaker_rs::DefaultPolicy, Boom>),
}

pub const NAMES: &[&str] = &[
    "floor",
    "nanobreaker",
    "nanobreaker (coarse clock)",
    "recloser",
    "failsafe (default)",
    "failsafe (consecutive)",
    "circuitbreaker-rs",
];

impl Breaker {
    pub fn new(name: &str) -> Breaker {
        let wait = Duration::from_secs(5);
        match name {
            "floor" => Breaker::Floor(AtomicU64::new(0), AtomicU64::new(0)),
            "nanobreaker" => {
                Breaker::Nano(nanobreaker::CircuitBreaker::builder().open_wait(wait).build().unwrap())
            }
            "nanobreaker (coarse clock)" => Breaker::Nano(
                nanobreaker::CircuitBreaker::builder()
                    .open_wait(wait)
                    .clock(nanobreaker::Clock::coarse().unwrap())
                    .build()
                    .unwrap(),
            ),
            "recloser" => Breaker::Recloser(
                recloser::Recloser::custom().error_rate(0.5).closed_len(100).open_wait(wait).build(),
            ),
            "failsafe (default)" => {
                use failsafe::CircuitBreaker;
                let cb = failsafe::Config::new().build();
                Breaker::FailsafeDefault(Box::new(move |fail| cb.call(|| work(fail)).is_ok()))
            }
            "failsafe (consecutive)" => {
                use failsafe::CircuitBreaker;
                let policy =
                    failsafe::failure_policy::consecutive_failures(5, failsafe::backoff::constant(wait));
                let cb = failsafe::Config::new().failure_policy(policy).build();
                Breaker::FailsafeConsecutive(Box::new(move |fail| cb.call(|| work(fail)).is_ok()))
            }
            "circuitbreaker-rs" => Breaker::CircuitbreakerRs(
                circuitbreaker_rs::CircuitBreaker::<circuitbreaker_rs::DefaultPolicy, Boom>::builder()
                    .failure_threshold(0.5)
                    .min_throughput(20)
                    .cooldown(wait)
                    .build(),
            ),
            _ => panic!("unknown breaker {name}"),
        }
    }

    /// One protected call; `true` if it was made and worked.
    #[inline]
    pub fn call(&self, fail: bool) -> bool {
        match self {
            Breaker::Floor(state, counter) => {
                if state.load(Relaxed) == 0 {
                    counter.fetch_add(1, Relaxed);
                    work(fail).is_ok()
                } else {
                    false
                }
            }
            Breaker::Nano(cb) => cb.call(|| work(fail)).is_ok(),
            Breaker::Recloser(cb) => cb.call(|| work(fail)).is_ok(),
            Breaker::FailsafeDefault(f) | Breaker::FailsafeConsecutive(f) => f(fail),
            Breaker::CircuitbreakerRs(cb) => cb.call(|| work(fail)).is_ok(),
        }
    }

    /// Trips the breaker; calls are then rejected for at least an hour
    /// (5 s for the peers whose wait cannot be changed after building: the
    /// benches re-trip them often enough).
    pub fn open(&self) {
        match self {
            Breaker::Floor(state, _) => state.store(1, Relaxed),
            Breaker::Nano(cb) => {
                let mut c = cb.config();
                c.open_wait = Duration::from_secs(3600);
                c.max_open_wait = c.open_wait;
                cb.reconfigure(c).unwrap();
                cb.transition_to(nanobreaker::State::Open);
            }
            Breaker::CircuitbreakerRs(cb) => {
                cb.force_open();
            }
            _ => {
                for _ in 0..200 {
                    self.call(true);
                }
            }
        }
    }
}
