//! One protected call in each state, as a function to run `n` times: shared
//! by the instruction-count bench (`benches/instructions.rs`) and its
//! regression test (`tests/instructions.rs`).

use nanobreaker::{CircuitBreaker, Clock, State, Window};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// (name, what it measures).
pub const SCENARIOS: &[(&str, &str)] = &[
    ("floor", "one relaxed load + one fetch_add"),
    ("closed_success", "try_acquire + success, closed, count window"),
    ("closed_failure", "try_acquire + failure / success alternating, closed, count window"),
    ("closed_1_in_64", "try_acquire + success, 1 call in 64 a failure, closed, count window"),
    ("closed_success_time", "try_acquire + success, closed, time window"),
    ("closed_success_slow_rule", "try_acquire + success, closed, slow-call rule on (2 clock reads)"),
    ("open_rejected", "try_acquire rejected, open"),
    ("open_rejected_coarse", "try_acquire rejected, open, Clock::coarse()"),
    ("half_open_probe", "try_acquire + ignore, half-open"),
];

fn breaker(clock: &Clock, f: impl FnOnce(nanobreaker::Builder) -> nanobreaker::Builder) -> CircuitBreaker {
    f(CircuitBreaker::builder()
        .clock(clock.clone())
        .failure_rate_threshold(1.0)
        .half_open_permits(511)
        .open_wait(Duration::from_secs(3600))
        .backoff(2.0, Duration::from_secs(3600)))
    .build()
    .expect("valid config")
}

/// Runs `name` `n` times. Returns false for an unknown name.
///
/// The clock is made (and calibrated, which takes a varying number of
/// instructions) before this is called: callgrind counts only inside it.
#[inline(never)]
pub fn run(name: &str, n: u64, clock: &Clock) -> bool {
    match name {
        "floor" => {
            let (state, counter) = (AtomicU64::new(0), AtomicU64::new(0));
            for _ in 0..n {
                if black_box(&state).load(Relaxed) == 0 {
                    black_box(&counter).fetch_add(1, Relaxed);
                }
            }
        }
        "closed_success" => {
            let cb = breaker(clock, |b| b);
            for _ in 0..n {
                black_box(&cb).try_acquire().unwrap().success();
            }
        }
        "closed_failure" => {
            // Alternate so the rate stays at 0.5 < 1.0; report the pair / 2.
            let cb = breaker(clock, |b| b);
            for i in 0..n {
                let p = black_box(&cb).try_acquire().unwrap();
                if i % 2 == 0 {
                    p.failure()
                } else {
                    p.success()
                }
            }
        }
        "closed_1_in_64" => {
            // The same loop, spelled out as the others are: a shared helper
            // compiles to another loop and changes the counts.
            let cb = breaker(clock, |b| b);
            for i in 0..n {
                let p = black_box(&cb).try_acquire().unwrap();
                if i % 64 == 0 {
                    p.failure()
                } else {
                    p.success()
                }
            }
        }
        "closed_success_time" => {
            let cb = breaker(clock, |b| b.window(Window::time(Duration::from_secs(60), 10)));
            for _ in 0..n {
                black_box(&cb).try_acquire().unwrap().success();
            }
        }
        "closed_success_slow_rule" => {
            let cb = breaker(clock, |b| b.slow_call(Duration::from_secs(10), 1.0));
            for _ in 0..n {
                black_box(&cb).try_acquire().unwrap().success();
            }
        }
        "open_rejected" => {
            let cb = breaker(clock, |b| b);
            cb.transition_to(State::Open);
            for _ in 0..n {
                assert!(black_box(&cb).try_acquire().is_err());
            }
        }
        "open_rejected_coarse" => {
            let coarse = Clock::coarse().expect("the coarse clock's thread starts");
            let cb = breaker(&coarse, |b| b);
            cb.transition_to(State::Open);
            for _ in 0..n {
                assert!(black_box(&cb).try_acquire().is_err());
            }
        }
        "half_open_probe" => {
            let cb = breaker(clock, |b| b);
            cb.transition_to(State::HalfOpen);
            for _ in 0..n {
                black_box(&cb).try_acquire().unwrap().ignore();
            }
        }
        _ => return false,
    }
    true
}

/// Instructions per call of `name`, from two callgrind runs of `exe` (with
/// `args` before the scenario arguments) at `n` and `2n` calls: the
/// difference cancels start-up. `None` if valgrind is missing.
pub fn instructions_per_call(exe: &std::path::Path, args: &[&str], name: &str, n: u64) -> Option<f64> {
    let count = |calls: u64| -> Option<u64> {
        let out = std::process::Command::new("valgrind")
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null", "--toggle-collect=*scenarios*run*"])
            .arg(exe)
            .args(args)
            .env("NB_SCENARIO", name)
            .env("NB_CALLS", calls.to_string())
            .output()
            .ok()?;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "callgrind run of {name} failed:\n{err}");
        let line = err.lines().find(|l| l.contains("I   refs:") || l.contains("Collected :"))?;
        line.rsplit(':').next()?.trim().replace(',', "").parse().ok()
    };
    let (a, b) = (count(n)?, count(2 * n)?);
    Some((b as f64 - a as f64) / n as f64)
}
