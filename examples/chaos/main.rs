//! A chaos run on loopback: a cascade A -> B -> C -> D of real HTTP
//! services, each calling the next through the tower layer (A with a
//! fallback), and D a mock upstream whose failures are injected while a
//! load generator calls A. Phases: baseline, D fails 50%, D turns slow,
//! recovery. The run checks the pass criteria, writes a chart, and runs
//! again without breakers to show what they prevent.
//!
//! ```text
//! cargo run --release --example chaos --features tower            # short run (~40 s, both runs)
//! cargo run --release --example chaos --features tower -- --full  # 10 minutes each, chart in benches/results/
//! ```
//!
//! tests/chaos.rs runs the short plan and asserts the criteria.

mod chart;
pub mod servers;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use nanobreaker::{CircuitBreaker, Config, State, Window};
use servers::{next_client, serve_hop, serve_mock, HopStats, MockServer};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The timing of a run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub baseline: Duration,
    pub failing: Duration,
    pub slow: Duration,
    pub recovery: Duration,
    /// D's latency while slow.
    pub slow_latency: Duration,
    /// The breakers' open wait; the recovery deadline scales with it.
    pub open_wait: Duration,
    /// Concurrent callers of A.
    pub workers: usize,
    pub breakers: bool,
}

/// The full run's open wait: the recovery criterion (every breaker closed
/// within 60 s of D healing) is for this; a plan with a shorter wait gets
/// a proportionally shorter deadline.
const FULL_OPEN_WAIT: Duration = Duration::from_secs(5);
const FULL_CLOSE_DEADLINE: Duration = Duration::from_secs(60);

impl Plan {
    /// Ten minutes: 2 baseline, 3 failing, 2 slow, 3 recovery.
    pub fn full(breakers: bool) -> Plan {
        Plan {
            baseline: Duration::from_secs(120),
            failing: Duration::from_secs(180),
            slow: Duration::from_secs(120),
            recovery: Duration::from_secs(180),
            slow_latency: Duration::from_millis(200),
            open_wait: FULL_OPEN_WAIT,
            workers: 4,
            breakers,
        }
    }

    /// The same, scaled down to under 20 s for CI.
    pub fn short(breakers: bool) -> Plan {
        Plan {
            baseline: Duration::from_secs(3),
            failing: Duration::from_secs(4),
            slow: Duration::from_secs(4),
            recovery: Duration::from_secs(6),
            slow_latency: Duration::from_millis(200),
            open_wait: Duration::from_millis(500),
            workers: 4,
            breakers,
        }
    }

    /// How long after D heals every breaker must be closed.
    pub fn close_deadline(&self) -> Duration {
        FULL_CLOSE_DEADLINE.mul_f64(self.open_wait.as_secs_f64() / FULL_OPEN_WAIT.as_secs_f64())
    }

    fn ends(&self) -> [Duration; 4] {
        let a = self.baseline;
        let b = a + self.failing;
        let c = b + self.slow;
        [a, b, c, c + self.recovery]
    }

    fn breaker_config(&self) -> Config {
        let mut c = Config::default();
        c.window = Window::count(50);
        c.minimum_calls = 20;
        c.failure_rate_threshold = 0.5;
        c.slow_call_duration = Some(Duration::from_millis(50));
        c.slow_call_rate_threshold = 0.5;
        c.open_wait = self.open_wait;
        c.backoff_multiplier = 1.0;
        c.max_open_wait = self.open_wait;
        c.jitter = 0.2;
        c.half_open_permits = 3;
        c
    }
}

/// What A answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Ok,
    Fallback,
    Error,
}

/// One call to A: when it started (since the run began), how long it took.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub at: Duration,
    pub took: Duration,
    pub answer: Answer,
}

/// A phase's numbers.
#[derive(Clone, Debug, Default)]
pub struct PhaseStats {
    pub requests: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub errors: usize,
    pub fallbacks: usize,
    /// Requests D received.
    pub upstream_received: u64,
}

impl PhaseStats {
    pub fn error_rate(&self) -> f64 {
        self.errors as f64 / self.requests.max(1) as f64
    }
    pub fn fallback_rate(&self) -> f64 {
        self.fallbacks as f64 / self.requests.max(1) as f64
    }
}

fn stats(samples: &[Sample]) -> PhaseStats {
    let mut took: Vec<_> = samples.iter().map(|s| s.took).collect();
    took.sort();
    let q = |q: f64| {
        took.get(((took.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or_default()
    };
    PhaseStats {
        requests: samples.len(),
        p50: q(0.5),
        p99: q(0.99),
        errors: samples.iter().filter(|s| s.answer == Answer::Error).count(),
        fallbacks: samples.iter().filter(|s| s.answer == Answer::Fallback).count(),
        upstream_received: 0,
    }
}

/// A run's results.
#[derive(Debug)]
pub struct Report {
    pub plan: Plan,
    pub baseline: PhaseStats,
    pub failing: PhaseStats,
    pub slow: PhaseStats,
    pub recovery: PhaseStats,
    /// After D healed, when every breaker was closed (None: not by the end).
    pub closed_after: Option<Duration>,
    pub samples: Vec<Sample>,
    /// Every 50 ms: A's, B's and C's breaker states.
    pub states: Vec<(Duration, [State; 3])>,
}

impl Report {
    /// The pass criteria, each that failed with its numbers.
    pub fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.baseline.errors + self.baseline.fallbacks > 0 {
            v.push(format!(
                "baseline: {} errors and {} fallbacks (none allowed)",
                self.baseline.errors, self.baseline.fallbacks
            ));
        }
        for (name, p) in [("D failing", &self.failing), ("D slow", &self.slow)] {
            if p.p99 > self.baseline.p99 * 2 {
                v.push(format!("{name}: p99 {:?} > 2 x baseline p99 {:?}", p.p99, self.baseline.p99));
            }
            if p.error_rate() >= 0.05 {
                v.push(format!("{name}: error rate {:.2}% >= 5%", 100.0 * p.error_rate()));
            }
        }
        match self.closed_after {
            Some(d) if d <= self.plan.close_deadline() => {}
            other => {
                v.push(format!("breakers closed after {other:?}, deadline {:?}", self.plan.close_deadline()))
            }
        }
        v
    }
}

pub async fn run(plan: Plan) -> Report {
    let mock = Arc::new(MockServer::default());
    let d = serve_mock(mock.clone()).await;
    let breaker = |name: &'static str| {
        plan.breakers.then(|| {
            Arc::new(
                CircuitBreaker::builder().name(name).config(plan.breaker_config()).build().expect("config"),
            )
        })
    };
    let (to_b, to_c, to_d) = (breaker("a->b"), breaker("b->c"), breaker("c->d"));
    let timeout = Duration::from_secs(2);
    let hop = |next: std::net::SocketAddr| format!("http://{next}/").parse::<hyper::Uri>().expect("uri");
    let stats_a = Arc::new(HopStats::default());
    let c = serve_hop(next_client(to_d.clone(), timeout), hop(d), false, Arc::new(HopStats::default())).await;
    let b = serve_hop(next_client(to_c.clone(), timeout), hop(c), false, Arc::new(HopStats::default())).await;
    let a = serve_hop(next_client(to_b.clone(), timeout), hop(b), true, stats_a).await;

    let start = Instant::now();
    // The planned phase ends; `ends` becomes the actual switch times.
    let planned = plan.ends();
    let mut ends = planned;
    let samples = Arc::new(Mutex::new(Vec::new()));
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let a_uri = hop(a);
    let workers: Vec<_> = (0..plan.workers)
        .map(|_| {
            let (client, uri, samples) = (client.clone(), a_uri.clone(), samples.clone());
            tokio::spawn(async move {
                while start.elapsed() < planned[3] {
                    let at = start.elapsed();
                    let req = Request::get(uri.clone()).body(Empty::new()).expect("request");
                    let answer = match client.request(req).await {
                        Ok(r) if r.status() == 200 => {
                            let fallback = r.headers().contains_key("x-fallback");
                            match r.into_body().collect().await {
                                Ok(_) if fallback => Answer::Fallback,
                                Ok(_) => Answer::Ok,
                                Err(_) => Answer::Error,
                            }
                        }
                        _ => Answer::Error,
                    };
                    samples.lock().expect("samples").push(Sample { at, took: start.elapsed() - at, answer });
                }
            })
        })
        .collect();

    let state = |cb: &Option<Arc<CircuitBreaker>>| cb.as_ref().map_or(State::Disabled, |cb| cb.state());
    let mut states = Vec::new();
    let mut received = [0u64; 4];
    let mut phase = 0;
    let mut closed_after = None;
    while start.elapsed() < planned[3] {
        let mut now = start.elapsed();
        if phase < 3 && now >= planned[phase] {
            received[phase] = mock.received.load(Ordering::Relaxed);
            now = start.elapsed();
            ends[phase] = now;
            phase += 1;
            match phase {
                1 => mock.failure_percent.store(50, Ordering::Relaxed),
                2 => {
                    mock.failure_percent.store(0, Ordering::Relaxed);
                    mock.latency_ms.store(plan.slow_latency.as_millis() as u64, Ordering::Relaxed);
                }
                _ => mock.latency_ms.store(0, Ordering::Relaxed),
            }
        }
        let s = [state(&to_b), state(&to_c), state(&to_d)];
        if phase == 3
            && closed_after.is_none()
            && s.iter().all(|s| matches!(s, State::Closed | State::Disabled))
        {
            closed_after = Some(now - ends[2]);
        }
        states.push((now, s));
        // Every 50 ms, and at each phase's end exactly.
        let next = planned.iter().copied().find(|e| *e > now).unwrap_or(now);
        tokio::time::sleep(Duration::from_millis(50).min(next.saturating_sub(now))).await;
    }
    ends[3] = planned[3];
    received[3] = mock.received.load(Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let samples = std::mem::take(&mut *samples.lock().expect("samples"));
    // A phase's calls are those wholly inside it: one in flight when D
    // changes belongs to neither side.
    let between = |from: Duration, to: Duration| -> Vec<Sample> {
        samples.iter().copied().filter(|s| s.at >= from && s.at + s.took <= to).collect()
    };
    let phase_stats = |i: usize, from: Duration, to: Duration| {
        let mut p = stats(&between(from, to));
        p.upstream_received = received[i] - if i == 0 { 0 } else { received[i - 1] };
        p
    };
    Report {
        baseline: phase_stats(0, Duration::ZERO, ends[0]),
        failing: phase_stats(1, ends[0], ends[1]),
        slow: phase_stats(2, ends[1], ends[2]),
        recovery: phase_stats(3, ends[2], ends[3]),
        closed_after: if plan.breakers { closed_after } else { Some(Duration::ZERO) },
        plan,
        samples,
        states,
    }
}

pub fn print(r: &Report) {
    let title = if r.plan.breakers { "with breakers" } else { "without breakers" };
    println!("{title}:");
    for (name, p) in [
        ("baseline", &r.baseline),
        ("D fails 50%", &r.failing),
        ("D slow", &r.slow),
        ("recovery", &r.recovery),
    ] {
        println!(
            "  {name:<12} {:>7} requests  p50 {:>9.3?}  p99 {:>9.3?}  errors {:>5.2}%  fallbacks {:>6.2}%  D received {}",
            p.requests,
            p.p50,
            p.p99,
            100.0 * p.error_rate(),
            100.0 * p.fallback_rate(),
            p.upstream_received
        );
    }
    if r.plan.breakers {
        println!(
            "  every breaker closed {:?} after D healed (deadline {:?})",
            r.closed_after,
            r.plan.close_deadline()
        );
    }
}

#[allow(dead_code)] // tests/chaos.rs includes this file for `run`
#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--full");
    let plan = |b| if full { Plan::full(b) } else { Plan::short(b) };
    let with = run(plan(true)).await;
    print(&with);
    let without = run(plan(false)).await;
    print(&without);

    let out = if full { "benches/results/chaos.svg" } else { "target/chaos-short.svg" };
    match chart::draw(out, &with, &without) {
        Ok(()) => println!("chart: {out}"),
        Err(e) => println!("chart failed: {e}"),
    }
    let v = with.violations();
    if v.is_empty() {
        println!("pass: every criterion met with breakers");
    } else {
        println!("FAIL with breakers:\n  {}", v.join("\n  "));
        std::process::exit(1);
    }
    println!("without breakers: {}", without.violations().join("; "));
}
