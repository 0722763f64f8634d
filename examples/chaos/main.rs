//! A chaos run on loopback: a cascade A -> B -> C -> D of real HTTP
//! services, each calling the next through the tower layer (A with a
//! fallback), and D a mock upstream whose failures are injected while a
//! load generator calls A. Phases: baseline, D fails 50%, D healed, D slow,
//! recovery. The run checks the pass criteria, writes a chart, and runs
//! again without breakers to show what they prevent.
//!
//! The load is closed-loop (4 callers, each sending its next request when
//! the last is answered), so a phase in which A answers fast has more
//! requests: percentiles are per request, and "answered by D" (goodput)
//! and fallbacks are shares of requests.
//!
//! ```text
//! cargo run --release --example chaos --features tower            # short run (~40 s, both runs)
//! cargo run --release --example chaos --features tower -- --full  # 10 minutes each, chart in target/chaos-full.svg
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

/// The phases, in order: what D does in each.
pub const PHASES: [&str; 5] = ["baseline", "D fails 50%", "D healed", "D slow", "recovery"];
const FAILING: usize = 1;
const HEALED: usize = 2;
const SLOW: usize = 3;
const RECOVERY: usize = 4;

/// The timing of a run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// How long each of `PHASES` lasts.
    pub phases: [Duration; 5],
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
    /// Ten minutes: 1.5 baseline, 2.5 failing, 1 healed, 2 slow, 3 recovery.
    pub fn full(breakers: bool) -> Plan {
        Plan {
            phases: [90, 150, 60, 120, 180].map(Duration::from_secs),
            slow_latency: Duration::from_millis(200),
            open_wait: FULL_OPEN_WAIT,
            workers: 4,
            breakers,
        }
    }

    /// The same, scaled down to 18 s for CI.
    pub fn short(breakers: bool) -> Plan {
        Plan {
            phases: [3, 3, 4, 3, 5].map(Duration::from_secs),
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

    /// When each phase ends, from the start.
    fn ends(&self) -> [Duration; 5] {
        let mut at = Duration::ZERO;
        self.phases.map(|d| {
            at += d;
            at
        })
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

    /// Sets D for the start of phase `i`.
    fn enter(&self, i: usize, mock: &MockServer) {
        let (fail, latency) = match i {
            FAILING => (50, 0),
            SLOW => (0, self.slow_latency.as_millis() as u64),
            _ => (0, 0),
        };
        mock.failure_percent.store(fail, Ordering::Relaxed);
        mock.latency_ms.store(latency, Ordering::Relaxed);
    }
}

/// What A answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// D's answer, through every hop.
    Ok,
    /// A's fallback.
    Fallback,
    /// No answer, or an error status: what A's callers see as a failure.
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
    pub max: Duration,
    pub answered: usize,
    pub errors: usize,
    pub fallbacks: usize,
    /// Requests D received.
    pub upstream_received: u64,
    /// Calls the breakers rejected, all hops.
    pub rejections: u64,
}

impl PhaseStats {
    fn share(&self, n: usize) -> f64 {
        n as f64 / self.requests.max(1) as f64
    }
    pub fn error_rate(&self) -> f64 {
        self.share(self.errors)
    }
    pub fn fallback_rate(&self) -> f64 {
        self.share(self.fallbacks)
    }
    /// Requests D answered (goodput).
    pub fn answered_rate(&self) -> f64 {
        self.share(self.answered)
    }
}

fn stats(samples: &[Sample]) -> PhaseStats {
    let mut took: Vec<_> = samples.iter().map(|s| s.took).collect();
    took.sort();
    let q = |q: f64| {
        took.get(((took.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or_default()
    };
    let count = |a: Answer| samples.iter().filter(|s| s.answer == a).count();
    PhaseStats {
        requests: samples.len(),
        p50: q(0.5),
        p99: q(0.99),
        max: took.last().copied().unwrap_or_default(),
        answered: count(Answer::Ok),
        errors: count(Answer::Error),
        fallbacks: count(Answer::Fallback),
        upstream_received: 0,
        rejections: 0,
    }
}

/// A run's results.
#[derive(Debug)]
pub struct Report {
    pub plan: Plan,
    /// By phase, as `PHASES`.
    pub phases: [PhaseStats; 5],
    /// After D healed (from failing, from slow), when every breaker was
    /// closed again (None: not within the phase).
    pub closed_after: [Option<Duration>; 2],
    pub samples: Vec<Sample>,
    /// Every 50 ms: A's, B's and C's breaker states.
    pub states: Vec<(Duration, [State; 3])>,
    /// When each phase began.
    pub starts: [Duration; 5],
}

impl Report {
    /// The pass criteria, each that failed with its numbers.
    pub fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        let base = &self.phases[0];
        if base.rejections > 0 || base.errors > 0 {
            v.push(format!(
                "baseline: {} breaker rejections and {} errors (none allowed)",
                base.rejections, base.errors
            ));
        }
        for i in [FAILING, SLOW] {
            let p = &self.phases[i];
            if p.p99 > base.p99 * 2 {
                v.push(format!("{}: p99 {:?} > 2 x baseline p99 {:?}", PHASES[i], p.p99, base.p99));
            }
            if p.error_rate() >= 0.05 {
                v.push(format!("{}: error rate {:.2}% >= 5%", PHASES[i], 100.0 * p.error_rate()));
            }
        }
        if self.plan.breakers {
            for (k, i) in [HEALED, RECOVERY].into_iter().enumerate() {
                match self.closed_after[k] {
                    Some(d) if d <= self.plan.close_deadline() => {}
                    other => v.push(format!(
                        "{}: breakers closed after {other:?}, deadline {:?}",
                        PHASES[i],
                        self.plan.close_deadline()
                    )),
                }
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
    let hops: [Arc<HopStats>; 3] = Default::default();
    let c = serve_hop(next_client(to_d.clone(), timeout), hop(d), false, hops[2].clone()).await;
    let b = serve_hop(next_client(to_c.clone(), timeout), hop(c), false, hops[1].clone()).await;
    let a = serve_hop(next_client(to_b.clone(), timeout), hop(b), true, hops[0].clone()).await;
    let rejections = || hops.iter().map(|h| h.rejected.load(Ordering::Relaxed)).sum::<u64>();

    let start = Instant::now();
    let planned = plan.ends();
    let end = planned[4];
    let samples = Arc::new(Mutex::new(Vec::new()));
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let a_uri = hop(a);
    let workers: Vec<_> = (0..plan.workers)
        .map(|_| {
            let (client, uri, samples) = (client.clone(), a_uri.clone(), samples.clone());
            tokio::spawn(async move {
                while start.elapsed() < end {
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
    // At each phase's start (and the run's end): D's count, the rejections.
    let mut starts = [Duration::ZERO; 5];
    let mut received = [0u64; 6];
    let mut rejected = [0u64; 6];
    let mut phase = 0;
    let mut closed_after = [None; 2];
    while start.elapsed() < end {
        let mut now = start.elapsed();
        if phase < 4 && now >= planned[phase] {
            phase += 1;
            received[phase] = mock.received.load(Ordering::Relaxed);
            rejected[phase] = rejections();
            plan.enter(phase, &mock);
            now = start.elapsed();
            starts[phase] = now;
        }
        let s = [state(&to_b), state(&to_c), state(&to_d)];
        let healed = match phase {
            HEALED => Some(0),
            RECOVERY => Some(1),
            _ => None,
        };
        if let Some(k) = healed {
            if closed_after[k].is_none() && s.iter().all(|s| matches!(s, State::Closed | State::Disabled)) {
                closed_after[k] = Some(now - starts[phase]);
            }
        }
        states.push((now, s));
        // Every 50 ms, and at each phase's end exactly.
        let next = planned.iter().copied().find(|e| *e > now).unwrap_or(now);
        tokio::time::sleep(Duration::from_millis(50).min(next.saturating_sub(now))).await;
    }
    received[5] = mock.received.load(Ordering::Relaxed);
    rejected[5] = rejections();
    for w in workers {
        let _ = w.await;
    }
    let samples = std::mem::take(&mut *samples.lock().expect("samples"));
    // A phase's calls are those wholly inside it: one in flight when D
    // changes belongs to neither side.
    let bounds: Vec<Duration> = starts.iter().copied().chain([end]).collect();
    let phases = std::array::from_fn(|i| {
        let inside: Vec<Sample> =
            samples.iter().copied().filter(|s| s.at >= bounds[i] && s.at + s.took <= bounds[i + 1]).collect();
        let mut p = stats(&inside);
        p.upstream_received = received[i + 1] - received[i];
        p.rejections = rejected[i + 1] - rejected[i];
        p
    });
    let closed_after = if plan.breakers { closed_after } else { [Some(Duration::ZERO); 2] };
    Report { plan, phases, closed_after, samples, states, starts }
}

pub fn print(r: &Report) {
    println!("{}:", if r.plan.breakers { "with breakers" } else { "without breakers" });
    for (name, p) in PHASES.iter().zip(&r.phases) {
        println!(
            "  {name:<12} {:>8} requests  p50 {:>9.3?}  p99 {:>9.3?}  max {:>9.3?}  answered by D {:>6.2}%  fallbacks {:>6.2}%  errors {:>5.2}%  D received {:>8}  rejected {}",
            p.requests,
            p.p50,
            p.p99,
            p.max,
            100.0 * p.answered_rate(),
            100.0 * p.fallback_rate(),
            100.0 * p.error_rate(),
            p.upstream_received,
            p.rejections,
        );
    }
    if r.plan.breakers {
        println!(
            "  every breaker closed {:?} after D healed from failing, {:?} after it healed from slow (deadline {:?})",
            r.closed_after[0],
            r.closed_after[1],
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

    let out = if full { "target/chaos-full.svg" } else { "target/chaos-short.svg" };
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
