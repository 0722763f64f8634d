//! A flaky dependency, called through a breaker from several threads, with a
//! live timeline: `cargo run --release --example demo`.
//!
//! The dependency goes through four phases: normal (10% failures), outage
//! (80% failures), high latency (calls take 150 ms, over the 100 ms slow-call
//! limit) and recovery. Watch the breaker open in the outage, probe, reopen
//! with a longer wait, trip on slow calls, and close again after recovery.

use nanobreaker::{CircuitBreaker, Error, State, Window};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Phase {
    name: &'static str,
    secs: u64,
    failure_percent: u64,
    latency: Duration,
}

const PHASES: [Phase; 4] = [
    Phase { name: "normal", secs: 5, failure_percent: 10, latency: Duration::from_millis(4) },
    Phase { name: "outage", secs: 7, failure_percent: 80, latency: Duration::from_millis(4) },
    Phase { name: "high latency", secs: 6, failure_percent: 5, latency: Duration::from_millis(150) },
    Phase { name: "recovery", secs: 8, failure_percent: 2, latency: Duration::from_millis(4) },
];
const THREADS: usize = 8;

fn main() {
    let start = Instant::now();
    let cb = Arc::new(
        CircuitBreaker::builder()
            .failure_rate_threshold(0.5)
            .minimum_calls(20)
            .window(Window::time(Duration::from_secs(4), 8))
            .slow_call(Duration::from_millis(100), 0.5)
            .open_wait(Duration::from_secs(1))
            .backoff(2.0, Duration::from_secs(4))
            .half_open_permits(5)
            .on_transition(move |t| {
                println!(
                    "{:>6.1}s   ==> {} -> {}  ({})",
                    start.elapsed().as_secs_f64(),
                    t.from,
                    t.to,
                    t.reason
                )
            })
            .build()
            .expect("a valid config"),
    );

    let phase = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let (calls, rejected, failed) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));

    let workers: Vec<_> = (0..THREADS)
        .map(|i| {
            let (cb, phase, done) = (cb.clone(), phase.clone(), done.clone());
            let (calls, rejected, failed) = (calls.clone(), rejected.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (i as u64 + 1);
                while !done.load(Relaxed) {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let p = &PHASES[phase.load(Relaxed)];
                    let r = cb.call(|| {
                        std::thread::sleep(p.latency);
                        if rng % 100 < p.failure_percent {
                            Err("dependency failed")
                        } else {
                            Ok(())
                        }
                    });
                    match r {
                        Ok(()) => calls.fetch_add(1, Relaxed),
                        Err(Error::Rejected(r)) => {
                            rejected.fetch_add(1, Relaxed);
                            // A real client would back off; sleep a little so the demo's
                            // counts stay readable.
                            std::thread::sleep(r.retry_after().min(Duration::from_millis(5)));
                            0
                        }
                        Err(_) => {
                            calls.fetch_add(1, Relaxed);
                            failed.fetch_add(1, Relaxed)
                        }
                    };
                }
            })
        })
        .collect();

    println!("nanobreaker demo: {THREADS} threads calling a flaky dependency through one breaker\n");
    println!("  time  phase         state         fail%  slow%  calls  failed  rejected");
    for (i, p) in PHASES.iter().enumerate() {
        phase.store(i, Relaxed);
        println!(
            "{:>6.1}s --- phase: {} ({}% failures, {:?} per call) ---",
            start.elapsed().as_secs_f64(),
            p.name,
            p.failure_percent,
            p.latency
        );
        for _ in 0..p.secs {
            std::thread::sleep(Duration::from_secs(1));
            let m = cb.metrics();
            let state = match m.state {
                State::HalfOpen => "HALF-OPEN",
                State::Open => "OPEN",
                s => s.name(),
            };
            println!(
                "{:>6.1}s  {:<12}  {:<12} {:>5.1}  {:>5.1}  {:>5}  {:>6}  {:>8}",
                start.elapsed().as_secs_f64(),
                p.name,
                state,
                m.failure_rate * 100.0,
                m.slow_call_rate * 100.0,
                calls.swap(0, Relaxed),
                failed.swap(0, Relaxed),
                rejected.swap(0, Relaxed),
            );
        }
    }
    done.store(true, Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
    let m = cb.metrics();
    println!(
        "\nfinal state: {}; all time: {} calls, {} failed, {} slow, {} rejected",
        m.state, m.calls, m.failures, m.slow_calls, m.rejected
    );
}
