//! The fleet (feature `redis`) in one run against a real redis-server on
//! loopback: the hot path of a breaker in a fleet beside the same breaker
//! alone and the floor (they must be the same: calls never leave the
//! process), then how long a trip seen by one instance takes to open 8
//! instances, and the commands per second each instance sends.
//!
//! `cargo bench --bench fleet --features redis`

#[path = "../tests/support/redis.rs"]
mod redis_server;

use criterion::{black_box, Criterion};
use nanobreaker::{CircuitBreaker, Config, Fleet, State};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const INTERVAL: Duration = Duration::from_millis(100);

fn config() -> Config {
    let mut c = Config::default();
    c.minimum_calls = 10;
    c.open_wait = Duration::from_secs(3600);
    c.max_open_wait = Duration::from_secs(3600);
    c
}

fn member(url: &str, name: &str, c: Config) -> (Arc<CircuitBreaker>, Fleet) {
    let cb = Arc::new(CircuitBreaker::builder().name(name.to_string()).config(c).build().unwrap());
    let fleet = Fleet::builder(url).interval(INTERVAL).build().unwrap();
    fleet.join(&cb).unwrap();
    fleet.sync().unwrap();
    (cb, fleet)
}

fn hot_path(c: &mut Criterion, url: &str) {
    let mut g = c.benchmark_group("fleet/one_thread");
    let (state, counter) = (AtomicU64::new(0), AtomicU64::new(0));
    g.bench_function("floor: load + fetch_add", |b| {
        b.iter(|| {
            if black_box(&state).load(Relaxed) == 0 {
                black_box(&counter).fetch_add(1, Relaxed);
            }
        })
    });
    let mut healthy = config();
    healthy.failure_rate_threshold = 1.0;
    healthy.minimum_calls = 1_000_000;
    let alone = CircuitBreaker::builder().config(healthy.clone()).build().unwrap();
    g.bench_function("closed success, alone", |b| {
        b.iter(|| black_box(&alone).try_acquire().unwrap().success())
    });
    let (joined, _fleet) = member(url, "bench-closed", healthy);
    g.bench_function("closed success, in a fleet", |b| {
        b.iter(|| black_box(&*joined).try_acquire().unwrap().success())
    });
    let open = CircuitBreaker::builder().config(config()).build().unwrap();
    open.transition_to(State::Open);
    g.bench_function("open rejected, alone", |b| b.iter(|| black_box(&open).try_acquire().is_err()));
    let (held, _f) = member(url, "bench-open", config());
    let (other, _g) = member(url, "bench-open", config());
    for _ in 0..10 {
        other.try_acquire().unwrap().failure();
    }
    while held.state() != State::Open {
        std::thread::sleep(Duration::from_millis(5));
    }
    g.bench_function("open rejected, held by the fleet", |b| {
        b.iter(|| black_box(&*held).try_acquire().is_err())
    });
    g.finish();
}

fn propagation(url: &str) {
    // (a) from the first failure, ticks as they come; (b) from the end of
    // the tick that tripped the fleet (the rest is the events channel).
    let (mut natural, mut announced) = (Vec::new(), Vec::new());
    for trial in 0..10 {
        for (k, out) in [(0, &mut natural), (1, &mut announced)] {
            let name = format!("bench-propagation-{trial}-{k}");
            let fleet: Vec<_> = (0..8).map(|_| member(url, &name, config())).collect();
            while !fleet.iter().all(|(_, f)| f.status().listening) {
                std::thread::sleep(Duration::from_millis(1));
            }
            let mut start = Instant::now();
            for _ in 0..10 {
                fleet[0].0.try_acquire().unwrap().failure();
            }
            if k == 1 {
                fleet[0].1.sync().unwrap();
                start = Instant::now();
            }
            while !fleet.iter().all(|(cb, _)| cb.state() == State::Open) {
                std::thread::sleep(Duration::from_micros(100));
            }
            out.push(start.elapsed());
        }
    }
    for (what, took) in
        [("first failure on one instance", &mut natural), ("the tripping tick", &mut announced)]
    {
        took.sort();
        println!(
            "{what} to open on all 8 (interval {INTERVAL:?}, 10 trials): median {:?}, max {:?}",
            took[took.len() / 2],
            took[took.len() - 1]
        );
    }
}

fn commands_per_second(url: &str) {
    let breakers: Vec<_> = (0..10)
        .map(|i| Arc::new(CircuitBreaker::builder().name(format!("bench-ops-{i}")).build().unwrap()))
        .collect();
    let fleet = Fleet::builder(url).interval(INTERVAL).build().unwrap();
    breakers.iter().for_each(|b| fleet.join(b).unwrap());
    fleet.sync().unwrap();
    let (before, start) = (fleet.status(), Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let after = fleet.status();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "one instance, 10 breakers, interval {INTERVAL:?}: {:.1} commands/s in {:.1} round trips/s",
        (after.commands - before.commands) as f64 / secs,
        (after.ticks - before.ticks) as f64 / secs
    );
}

fn main() {
    let Some(redis) = redis_server::Redis::start() else { return };
    let url = redis.url();
    let mut c = Criterion::default().configure_from_args();
    hot_path(&mut c, &url);
    c.final_summary();
    propagation(&url);
    commands_per_second(&url);
}
