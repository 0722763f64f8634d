//! One thread: ns per protected call in each state, beside the floor (one
//! relaxed load plus one uncontended `fetch_add`, the least any shared
//! breaker could do), measured in the same run.
//!
//! `cargo bench --bench breaker`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use nanobreaker::{CircuitBreaker, State, Window};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

fn closed(window: Window, slow: bool) -> CircuitBreaker {
    let b = CircuitBreaker::builder().window(window).failure_rate_threshold(1.0).minimum_calls(100_000);
    let b = if slow { b.slow_call(Duration::from_secs(10), 1.0) } else { b };
    b.build().unwrap()
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("one_thread");
    let state = AtomicU64::new(0);
    let counter = AtomicU64::new(0);
    g.bench_function("floor: load + fetch_add", |b| {
        b.iter(|| {
            if black_box(&state).load(Relaxed) == 0 {
                black_box(&counter).fetch_add(1, Relaxed);
            }
        })
    });

    let windows = [("count", Window::count(100)), ("time", Window::time(Duration::from_secs(60), 10))];
    for (name, window) in windows {
        for slow in [false, true] {
            let rule = if slow { "+slow rule" } else { "" };
            let cb = closed(window, slow);
            g.bench_function(format!("closed success, {name} window{rule}"), |b| {
                b.iter(|| black_box(&cb).try_acquire().unwrap().success())
            });
            let cb = closed(window, slow);
            // A failure alone would trip the breaker; pair it with a success so
            // the rate stays at 0.5 (below 1.0) and the state stays closed.
            g.bench_function(format!("closed failure+success (2 calls), {name} window{rule}"), |b| {
                b.iter(|| {
                    black_box(&cb).try_acquire().unwrap().failure();
                    black_box(&cb).try_acquire().unwrap().success();
                })
            });
        }
    }

    let hour = Duration::from_secs(3600);
    let cb = CircuitBreaker::builder().open_wait(hour).backoff(2.0, hour).build().unwrap();
    cb.transition_to(State::Open);
    g.bench_function("open rejected", |b| b.iter(|| black_box(&cb).try_acquire().is_err()));
    let coarse = nanobreaker::Clock::coarse().expect("the coarse clock's thread starts");
    let cb = CircuitBreaker::builder().clock(coarse).open_wait(hour).backoff(2.0, hour).build().unwrap();
    cb.transition_to(State::Open);
    g.bench_function("open rejected, Clock::coarse()", |b| b.iter(|| black_box(&cb).try_acquire().is_err()));

    let cb = CircuitBreaker::builder().half_open_permits(511).build().unwrap();
    cb.transition_to(State::HalfOpen);
    g.bench_function("half-open probe (acquire + ignore)", |b| {
        b.iter(|| black_box(&cb).try_acquire().unwrap().ignore())
    });
    g.finish();
}

criterion_group!(benches_group, benches);
criterion_main!(benches_group);
