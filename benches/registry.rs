//! A registry get of an existing key, one thread and contended, a
//! Prometheus scrape of 10,000 breakers (text and prometheus-client), and
//! the memory of 10,000 compact breakers.
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

fn registry_with_latency(n: usize) -> Registry {
    let reg = Registry::builder().stripes(1).record_latency(true).build().unwrap();
    for i in 0..n {
        reg.with(&format!("service-{i:05}"), |cb| cb.try_acquire().unwrap().success()).unwrap();
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
    g.sample_size(10);
    g.bench_function("render_prometheus, 10,000 breakers", |b| {
        b.iter(|| black_box(&reg).render_prometheus().len())
    });
    let timed = registry_with_latency(10_000);
    g.bench_function("render_prometheus, 10,000 breakers with latency", |b| {
        b.iter(|| black_box(&timed).render_prometheus().len())
    });
    #[cfg(feature = "prometheus")]
    {
        let mut prom = prometheus_client::registry::Registry::default();
        prom.register_collector(Box::new(nanobreaker::RegistryCollector::new(reg.clone())));
        g.bench_function("prometheus-client encode, 10,000 breakers", |b| {
            b.iter(|| {
                let mut text = String::new();
                prometheus_client::encoding::text::encode(&mut text, &prom).unwrap();
                text.len()
            })
        });
    }
    g.finish();
    println!("scrape of 10,000 breakers: {} KiB of text", reg.render_prometheus().len() / 1024);
    println!("memory of 10,000 compact breakers in a registry: {} KiB (estimate; tests/registry_memory.rs measures the heap)", reg.memory_bytes() / 1024);
}

criterion_group!(registry_benches, benches);
criterion_main!(registry_benches);
