//! Threads sharing one breaker: ns per call per thread at 1, 2, 4, 8 and 16
//! threads, for nanobreaker, the shared-counter floor and the peers:
//! `cargo bench --bench contention`.
//!
//! The threads are started once per breaker and wait at a barrier; each
//! measurement releases them to make `iters` calls each (1 in 64 fails: the
//! breakers stay closed) and reports the slowest thread's time, so the
//! figure is the time per call per thread when all run at once. Thread
//! counts above the machine's cores are skipped (they measure the
//! scheduler); `NB_THREADS=1,2,4,8,16` forces a list.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

#[path = "common/peers.rs"]
#[allow(dead_code)] // `open` is for benches/peers.rs
mod peers;
use peers::{Breaker, NAMES};

struct Pool {
    go: Arc<Barrier>,
    done: Arc<Barrier>,
    iters: Arc<AtomicU64>,
    times: Arc<Vec<AtomicU64>>,
    stop: Arc<AtomicBool>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Pool {
    fn new(breaker: Arc<Breaker>, threads: usize) -> Pool {
        let go = Arc::new(Barrier::new(threads + 1));
        let done = Arc::new(Barrier::new(threads + 1));
        let iters = Arc::new(AtomicU64::new(0));
        let times = Arc::new((0..threads).map(|_| AtomicU64::new(0)).collect::<Vec<_>>());
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..threads)
            .map(|t| {
                let (b, go, done, iters, times, stop) =
                    (breaker.clone(), go.clone(), done.clone(), iters.clone(), times.clone(), stop.clone());
                std::thread::spawn(move || loop {
                    go.wait();
                    if stop.load(Relaxed) {
                        return;
                    }
                    let n = iters.load(Relaxed);
                    let start = Instant::now();
                    for i in 0..n {
                        std::hint::black_box(b.call((i + t as u64 * 7) % 64 == 0));
                    }
                    times[t].store(start.elapsed().as_nanos() as u64, Relaxed);
                    done.wait();
                })
            })
            .collect();
        Pool { go, done, iters, times, stop, workers }
    }

    /// Every thread makes `iters` calls at once; the slowest thread's time.
    fn run(&self, iters: u64) -> Duration {
        self.iters.store(iters, Relaxed);
        self.go.wait();
        self.done.wait();
        Duration::from_nanos(self.times.iter().map(|t| t.load(Relaxed)).max().unwrap_or(0))
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        self.go.wait();
        for w in self.workers.drain(..) {
            w.join().unwrap();
        }
    }
}

fn thread_counts() -> Vec<usize> {
    if let Ok(list) = std::env::var("NB_THREADS") {
        return list.split(',').map(|n| n.trim().parse().expect("NB_THREADS: numbers")).collect();
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    [1, 2, 4, 8, 16].into_iter().filter(|t| *t <= cores).collect()
}

fn contention(c: &mut Criterion) {
    let mut g = c.benchmark_group("contention: ns per call per thread");
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(30);
    for name in NAMES {
        for threads in thread_counts() {
            let pool = Pool::new(Arc::new(Breaker::new(name)), threads);
            g.bench_function(BenchmarkId::new(*name, threads), |b| b.iter_custom(|iters| pool.run(iters)));
        }
    }
    g.finish();
}

criterion_group!(benches, contention);
criterion_main!(benches);
