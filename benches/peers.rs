//! The same workloads through nanobreaker, the floor and the Rust peers, in
//! one run (see `common/peers.rs` for how each is configured):
//! `cargo bench --bench peers`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::time::Duration;

#[path = "common/peers.rs"]
mod peers;
use peers::{Breaker, NAMES};

fn closed(c: &mut Criterion) {
    let mut g = c.benchmark_group("closed, 1 call in 64 fails");
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for name in NAMES {
        let b = Breaker::new(name);
        let mut i = 0u64;
        g.bench_function(BenchmarkId::from_parameter(name), |bench| {
            bench.iter(|| {
                i += 1;
                b.call(i % 64 == 0)
            })
        });
    }
    g.finish();
}

fn healthy(c: &mut Criterion) {
    let mut g = c.benchmark_group("closed, every call succeeds");
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for name in NAMES {
        let b = Breaker::new(name);
        g.bench_function(BenchmarkId::from_parameter(name), |bench| bench.iter(|| b.call(false)));
    }
    g.finish();
}

fn open(c: &mut Criterion) {
    let mut g = c.benchmark_group("open, rejecting");
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for name in NAMES {
        let b = Breaker::new(name);
        b.open();
        assert!(!b.call(false), "{name} should reject once open");
        g.bench_function(BenchmarkId::from_parameter(name), |bench| bench.iter(|| b.call(false)));
    }
    g.finish();
}

criterion_group!(benches, healthy, closed, open);
criterion_main!(benches);
