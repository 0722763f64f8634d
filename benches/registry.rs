//! A registry get of an existing key, one thread and contended, and the
//! memory of 10,000 compact breakers.
//!
//! `cargo bench --bench registry`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use nanobreaker::Registry;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

fn registry(n: usize) -> Registry {
    let reg = Registry::builder().stripes(1).build().unwrap();
    for i in 0..n {
        reg.get(&format!("service-{i:05}")).unwrap();
    }
    reg
}

/// `threads` threads each doing `iters` of `f`; the mean time per op per thread.
fn contended(threads: usize, iters: u64, f: impl Fn() + Send + Sync + 'static) -> Duration {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(threads));
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let (f, barrier) = (f.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let t = Instant::now();
                for _ in 0..iters {
                    f();
                }
                t.elapsed()
            })
        })
        .collect();
    let total: Duration = hs.into_iter().map(|h| h.join().unwrap()).sum();
    total / threads as u32
}

fn benches(c: &mut Criterion) {
    let reg = Arc::new(registry(10_000));
    let mut g = c.benchmark_group("registry");
    g.bench_function("get existing (Arc clone), 1 thread", |b| {
        b.iter(|| drop(black_box(&reg).get(black_box("service-04242")).unwrap()))
    });
    g.bench_function("with existing (no clone), 1 thread", |b| {
        b.iter(|| black_box(&reg).with(black_box("service-04242"), |cb| black_box(cb.name().len())).unwrap())
    });
    for threads in [2, 4] {
        let r = reg.clone();
        g.bench_function(format!("get existing, same key, {threads} threads (per thread)"), |b| {
            b.iter_custom(|iters| {
                let r = r.clone();
                contended(threads, iters, move || {
                    drop(black_box(&r).get(black_box("service-04242")).unwrap())
                })
            })
        });
        let r = reg.clone();
        g.bench_function(format!("with existing, same key, {threads} threads (per thread)"), |b| {
            b.iter_custom(|iters| {
                let r = r.clone();
                contended(threads, iters, move || {
                    black_box(&r).with(black_box("service-04242"), |cb| black_box(cb.name().len())).unwrap();
                })
            })
        });
    }
    g.finish();
    println!("memory of 10,000 compact breakers in a registry: {} KiB (estimate; tests/registry_memory.rs measures the heap)", reg.memory_bytes() / 1024);
}

criterion_group!(registry_benches, benches);
criterion_main!(registry_benches);
