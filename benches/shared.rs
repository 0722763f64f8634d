//! A shared breaker (feature `shared`) beside an in-process one, in the
//! same run: one thread, and two contenders (2 threads on an in-process
//! breaker vs 2 processes on a shared one). Also prints the size of a
//! shared region for the default and the compact configs.
//!
//! `cargo bench --bench shared --features shared`
//!
//! The second process is this binary started again with
//! `NB_BENCH_CONTENDER=<region path>`: it calls the shared breaker in a
//! loop until it is killed.

use criterion::{black_box, Criterion};
use nanobreaker::{CircuitBreaker, Clock, Config, SharedBreaker, SharedOptions, State, Window};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config() -> Config {
    let mut c = Config::default();
    c.failure_rate_threshold = 1.0;
    c.minimum_calls = 1_000_000;
    c
}

fn region(name: &str) -> String {
    let p = std::env::temp_dir().join(format!("nb-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p.to_str().unwrap().to_owned()
}

fn shared(path: &str, c: Config) -> SharedBreaker {
    CircuitBreaker::builder().config(c).build_shared(path, SharedOptions::default()).unwrap()
}

fn one_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("shared/one_thread");
    let (state, counter) = (AtomicU64::new(0), AtomicU64::new(0));
    g.bench_function("floor: load + fetch_add", |b| {
        b.iter(|| {
            if black_box(&state).load(Relaxed) == 0 {
                black_box(&counter).fetch_add(1, Relaxed);
            }
        })
    });
    let local = CircuitBreaker::builder().config(config()).build().unwrap();
    g.bench_function("closed success, in-process", |b| {
        b.iter(|| black_box(&local).try_acquire().unwrap().success())
    });
    let path = region("one");
    let sh = shared(&path, config());
    g.bench_function("closed success, shared", |b| {
        b.iter(|| black_box(&*sh).try_acquire().unwrap().success())
    });
    // Open: a rejection reads the clock (the precise TSC clock in-process,
    // CLOCK_MONOTONIC for a shared breaker; the monotonic in-process
    // breaker separates the clock's cost from the region's).
    let hour = Duration::from_secs(3600);
    let mut open = config();
    open.open_wait = hour;
    open.max_open_wait = hour;
    let local = CircuitBreaker::builder().config(open.clone()).build().unwrap();
    local.transition_to(State::Open);
    g.bench_function("open rejected, in-process", |b| b.iter(|| black_box(&local).try_acquire().is_err()));
    let mono = CircuitBreaker::builder().config(open.clone()).clock(Clock::monotonic()).build().unwrap();
    mono.transition_to(State::Open);
    g.bench_function("open rejected, in-process, CLOCK_MONOTONIC", |b| {
        b.iter(|| black_box(&mono).try_acquire().is_err())
    });
    let path_open = region("open");
    let sh_open = shared(&path_open, open);
    sh_open.transition_to(State::Open);
    g.bench_function("open rejected, shared", |b| b.iter(|| black_box(&*sh_open).try_acquire().is_err()));
    g.finish();
    for p in [path, path_open] {
        let _ = std::fs::remove_file(p);
    }
}

/// ns per call on this thread while one other contender (a thread or a
/// process) calls the same breaker as fast as it can.
fn two_contenders(c: &mut Criterion) {
    let mut g = c.benchmark_group("shared/two_contenders");
    let local = Arc::new(CircuitBreaker::builder().config(config()).build().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let other = {
        let (cb, stop) = (local.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                cb.try_acquire().unwrap().success();
            }
        })
    };
    g.bench_function("closed success, 2 threads, in-process", |b| {
        b.iter(|| black_box(&*local).try_acquire().unwrap().success())
    });
    stop.store(true, Relaxed);
    other.join().unwrap();

    let path = region("two");
    let sh = shared(&path, config());
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env("NB_BENCH_CONTENDER", &path)
        .spawn()
        .unwrap();
    // Wait until the contender calls (the region's call count moves).
    let t = Instant::now();
    let before = sh.metrics().calls;
    while sh.metrics().calls < before + 1000 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
    g.bench_function("closed success, 2 processes, shared", |b| {
        b.iter(|| black_box(&*sh).try_acquire().unwrap().success())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    g.finish();
    let _ = std::fs::remove_file(path);
}

fn region_sizes() {
    let size = |c: Config, stripes: u32| {
        let path = region("size");
        let cb = CircuitBreaker::builder()
            .config(c)
            .stripes(stripes)
            .build_shared(&path, SharedOptions::default());
        let len = std::fs::metadata(cb.unwrap().path()).unwrap().len();
        let _ = std::fs::remove_file(path);
        len
    };
    let mut time = Config::default();
    time.window = Window::time(Duration::from_secs(60), 12);
    println!(
        "region bytes: default config (count 100), 8 stripes: {}; 1 stripe (compact): {}; time window 60 s x 12, 8 stripes: {}",
        size(Config::default(), 8),
        size(Config::default(), 1),
        size(time, 8)
    );
}

fn main() {
    if let Ok(path) = std::env::var("NB_BENCH_CONTENDER") {
        let cb = CircuitBreaker::builder()
            .config(config())
            .build_shared(&path, SharedOptions::default().adopt(true))
            .unwrap();
        loop {
            cb.try_acquire().unwrap().success();
        }
    }
    region_sizes();
    let mut c = Criterion::default().configure_from_args();
    one_thread(&mut c);
    two_contenders(&mut c);
    c.final_summary();
}
