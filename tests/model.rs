//! Random operation sequences against a small sequential reference model:
//! on one thread the breaker must agree with it exactly, step by step.
//!
//! The model covers count and time windows, the slow-call and
//! consecutive-failures rules, both half-open policies, operator states,
//! reconfiguration, clock jumps (hours to years, and backwards), a mock
//! clock started just before the end of its range, and bursts of hundreds
//! of transitions (generation jumps).

use nanobreaker::{CircuitBreaker, Clock, HalfOpenPolicy, Outcome, RawPermit, State, Window};
use proptest::prelude::*;
use std::collections::VecDeque;
use std::time::Duration;

const MS: u64 = 1_000_000;
const PERMITS: u32 = 3;
const OPEN_WAIT: u64 = 1000 * MS;
const MAX_OPEN_WAIT: u64 = 5000 * MS;
const HALF_OPEN_MAX_WAIT: u64 = 3000 * MS;
const SLOW: u64 = 300 * MS;

#[derive(Clone, Copy, Debug)]
enum Shape {
    Count(usize),
    /// Buckets of this many ms, this many of them.
    Time {
        len_ms: u64,
        buckets: u64,
    },
}

#[derive(Clone, Debug)]
struct Setup {
    shape: Shape,
    slow_rule: bool,
    consecutive: Option<u32>,
    policy: HalfOpenPolicy,
    /// Where the mock clock starts (near the end of its range, or at 0).
    clock_start: u64,
}

#[derive(Clone, Debug)]
enum Op {
    Acquire,
    Report(usize, Outcome),
    Drop(usize),
    Advance(u64),
    Rewind(u64),
    Reconfigure {
        threshold: f64,
        minimum: u32,
        policy: HalfOpenPolicy,
    },
    Reset,
    To(State),
    /// This many resets in a row: the generation jumps.
    Churn(u32),
    /// A run of healthy calls: acquire and report a success, this many
    /// times (a ring of successes is marked clean, and its successes move
    /// no cursor: see `window/count.rs`).
    Healthy(u32),
}

fn setup() -> impl Strategy<Value = Setup> {
    let shape = prop_oneof![
        (1usize..8).prop_map(Shape::Count),
        ((1u64..400), (1u64..6)).prop_map(|(len_ms, buckets)| Shape::Time { len_ms, buckets }),
    ];
    let policy = prop_oneof![Just(HalfOpenPolicy::FailureRate), Just(HalfOpenPolicy::FirstFailureReopens)];
    let clock_start = prop_oneof![Just(0u64), (0u64..10_000).prop_map(|ms| u64::MAX - ms * MS)];
    (shape, any::<bool>(), prop::option::of(1u32..5), policy, clock_start).prop_map(
        |(shape, slow_rule, consecutive, policy, clock_start)| Setup {
            shape,
            slow_rule,
            consecutive,
            policy,
            clock_start,
        },
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => Just(Op::Acquire),
        12 => (any::<usize>(), prop_oneof![
            3 => Just(Outcome::Success),
            3 => Just(Outcome::Failure),
            1 => Just(Outcome::Ignored)
        ]).prop_map(|(i, o)| Op::Report(i, o)),
        1 => any::<usize>().prop_map(Op::Drop),
        4 => (0u64..800).prop_map(|ms| Op::Advance(ms * MS)),
        1 => prop_oneof![
            Just(3_600_000 * MS),                // an hour
            Just(3 * 3_600_000 * MS),            // three hours
            Just(400 * 24 * 3_600_000 * MS),     // over a year
        ].prop_map(Op::Advance),
        1 => (1u64..500).prop_map(|ms| Op::Rewind(ms * MS)),
        1 => (prop_oneof![Just(0.25), Just(0.5), Just(1.0)], 1u32..8,
              prop_oneof![Just(HalfOpenPolicy::FailureRate), Just(HalfOpenPolicy::FirstFailureReopens)])
            .prop_map(|(threshold, minimum, policy)| Op::Reconfigure { threshold, minimum, policy }),
        1 => Just(Op::Reset),
        1 => prop_oneof![
            Just(State::Open), Just(State::HalfOpen), Just(State::Disabled),
            Just(State::MetricsOnly), Just(State::ForcedOpen), Just(State::Closed)
        ].prop_map(Op::To),
        1 => prop_oneof![1u32..4, 250u32..300, 500u32..600].prop_map(Op::Churn),
        2 => (1u32..20).prop_map(Op::Healthy),
    ]
}

/// One bucket of the time window: its stamp and counts.
#[derive(Clone, Copy, Default)]
struct Bucket {
    stamp: u64,
    calls: u64,
    failures: u64,
    slow: u64,
}

/// The reference: the documented rules, written the plain way.
struct Model {
    s: Setup,
    state: State,
    generation: u64,
    level: u32,
    deadline: u64,
    era_start: u64,
    ring: VecDeque<(bool, bool)>, // (failed, slow), count window
    buckets: Vec<Bucket>,         // time window
    era_count: u64,               // outcomes this era, time window, up to minimum + 1
    consecutive: u32,
    taken: u32,
    ok: u32,
    fail: u32,
    slow_n: u32,
    threshold: f64,
    minimum: u32,
    policy: HalfOpenPolicy,
    now: u64,
    calls: u64,
    failures: u64,
    slow_calls: u64,
    ignored: u64,
    rejected: u64,
}

impl Model {
    fn new(s: Setup) -> Model {
        let buckets = match s.shape {
            Shape::Time { buckets, .. } => vec![Bucket::default(); buckets as usize],
            Shape::Count(_) => Vec::new(),
        };
        Model {
            policy: s.policy,
            s,
            state: State::Closed,
            generation: 0,
            level: 0,
            deadline: 0,
            era_start: 0,
            ring: VecDeque::new(),
            buckets,
            era_count: 0,
            consecutive: 0,
            taken: 0,
            ok: 0,
            fail: 0,
            slow_n: 0,
            threshold: 0.5,
            minimum: 3,
            now: 0,
            calls: 0,
            failures: 0,
            slow_calls: 0,
            ignored: 0,
            rejected: 0,
        }
    }

    fn enter(&mut self, state: State, level: u32) {
        self.state = state;
        self.generation += 1;
        self.level = level.min(15);
        (self.taken, self.ok, self.fail, self.slow_n) = (0, 0, 0, 0);
        match state {
            State::Open => {
                let wait = OPEN_WAIT.saturating_mul(1 << self.level.min(20)).min(MAX_OPEN_WAIT);
                self.deadline = self.now + wait;
            }
            State::HalfOpen => self.deadline = self.now + HALF_OPEN_MAX_WAIT,
            State::Closed | State::MetricsOnly => {
                self.era_start = self.now;
                self.ring.clear();
                self.buckets.iter_mut().for_each(|b| *b = Bucket::default());
                self.era_count = 0;
                self.consecutive = 0;
            }
            _ => {}
        }
    }

    fn effective_minimum(&self) -> u64 {
        match self.s.shape {
            Shape::Count(n) => (self.minimum as u64).min(n as u64),
            Shape::Time { .. } => self.minimum as u64,
        }
    }

    fn stamp(&self, len_ms: u64) -> u64 {
        self.now.saturating_sub(self.era_start) / (len_ms * MS) + 1
    }

    /// (calls, failures, slow) in the window now.
    fn window(&self) -> (u64, u64, u64) {
        if !matches!(self.state, State::Closed | State::MetricsOnly) {
            return (0, 0, 0);
        }
        match self.s.shape {
            Shape::Count(_) => {
                let f = self.ring.iter().filter(|o| o.0).count() as u64;
                let s = self.ring.iter().filter(|o| o.1).count() as u64;
                (self.ring.len() as u64, f, s)
            }
            Shape::Time { len_ms, buckets } => {
                let cur = self.stamp(len_ms);
                let oldest = (cur + 1).saturating_sub(buckets).max(1);
                self.buckets
                    .iter()
                    .filter(|b| (oldest..=cur).contains(&b.stamp))
                    .fold((0, 0, 0), |t, b| (t.0 + b.calls, t.1 + b.failures, t.2 + b.slow))
            }
        }
    }

    /// The state a call would find now.
    fn visible(&self) -> State {
        match self.state {
            State::Open if self.now >= self.deadline => State::HalfOpen,
            State::HalfOpen if self.now >= self.deadline => State::Open,
            s => s,
        }
    }

    /// `Ok((generation, start))` or `Err(retry_after)`.
    fn acquire(&mut self) -> Result<(u64, Option<u64>), u64> {
        let start = self.s.slow_rule.then_some(self.now);
        loop {
            match self.state {
                State::Closed | State::MetricsOnly | State::Disabled => return Ok((self.generation, start)),
                State::ForcedOpen => {
                    self.rejected += 1;
                    return Err(u64::MAX);
                }
                State::Open if self.now >= self.deadline => self.enter(State::HalfOpen, self.level),
                State::Open => {
                    self.rejected += 1;
                    return Err(self.deadline - self.now);
                }
                State::HalfOpen if self.now >= self.deadline => self.enter(State::Open, self.level + 1),
                State::HalfOpen if self.taken < PERMITS => {
                    self.taken += 1;
                    return Ok((self.generation, start));
                }
                State::HalfOpen => {
                    self.rejected += 1;
                    return Err(self.deadline - self.now);
                }
                s => unreachable!("{s:?}"),
            }
        }
    }

    fn trial(&mut self) {
        let permits = PERMITS as f64;
        let (failed, slow, done) = match self.policy {
            HalfOpenPolicy::FirstFailureReopens => {
                (self.fail >= 1, self.s.slow_rule && self.slow_n >= 1, self.ok >= PERMITS)
            }
            _ => (
                self.fail as f64 >= self.threshold * permits,
                self.s.slow_rule && self.slow_n as f64 >= permits, // slow threshold 1.0
                self.ok + self.fail >= PERMITS,
            ),
        };
        if failed || slow {
            self.enter(State::Open, self.level + 1);
        } else if done {
            self.enter(State::Closed, 0);
        }
    }

    /// Records into the window; returns whether a success should be judged.
    fn record_window(&mut self, failed: bool, slow: bool) -> bool {
        match self.s.shape {
            Shape::Count(n) => {
                let grew = self.ring.len() < n;
                self.ring.push_back((failed, slow));
                if self.ring.len() > n {
                    self.ring.pop_front();
                }
                grew
            }
            Shape::Time { len_ms, buckets } => {
                let stamp = self.stamp(len_ms);
                let b = &mut self.buckets[(stamp % buckets) as usize];
                let mut judge = false;
                if b.stamp <= stamp {
                    if b.stamp < stamp {
                        *b = Bucket { stamp, ..Bucket::default() };
                        judge = true;
                    }
                    b.calls += 1;
                    b.failures += failed as u64;
                    b.slow += slow as u64;
                }
                if self.era_count <= self.minimum as u64 {
                    self.era_count += 1;
                    judge |= self.era_count <= self.minimum as u64;
                }
                judge
            }
        }
    }

    fn record(&mut self, generation: u64, start: Option<u64>, outcome: Outcome) {
        if generation != self.generation || self.state == State::Disabled {
            if generation != self.generation {
                self.ignored += 1;
            }
            return;
        }
        let slow = start.is_some_and(|t| self.now.saturating_sub(t) >= SLOW);
        let failed = outcome == Outcome::Failure;
        if outcome == Outcome::Ignored {
            self.ignored += 1;
        } else {
            self.calls += 1;
            self.failures += failed as u64;
            self.slow_calls += slow as u64;
        }
        match self.state {
            State::HalfOpen => {
                match outcome {
                    Outcome::Ignored => self.taken = self.taken.saturating_sub(1),
                    Outcome::Success => self.ok += 1,
                    _ => self.fail += 1,
                }
                self.slow_n += slow as u32;
                self.trial();
            }
            State::Closed | State::MetricsOnly if outcome != Outcome::Ignored => {
                let judge = self.record_window(failed, slow);
                if let Some(limit) = self.s.consecutive {
                    if failed {
                        self.consecutive += 1;
                        if self.consecutive >= limit && self.state == State::Closed {
                            return self.enter(State::Open, 0);
                        }
                    } else {
                        self.consecutive = 0;
                    }
                }
                if (failed || slow || judge) && self.state == State::Closed {
                    let (calls, fails, slows) = self.window();
                    if calls > 0 && calls >= self.effective_minimum() {
                        let trips = fails as f64 >= self.threshold * calls as f64
                            || (self.s.slow_rule && slows as f64 >= calls as f64);
                        if trips {
                            self.enter(State::Open, 0);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

fn build(s: &Setup) -> (CircuitBreaker, nanobreaker::MockClock) {
    let (clock, mock) = Clock::mock_at(s.clock_start);
    let window = match s.shape {
        Shape::Count(n) => Window::count(n as u32),
        Shape::Time { len_ms, buckets } => {
            Window::time(Duration::from_millis(len_ms * buckets), buckets as u32)
        }
    };
    let mut b = CircuitBreaker::builder()
        .clock(clock)
        .window(window)
        .minimum_calls(3)
        .failure_rate_threshold(0.5)
        .open_wait(Duration::from_nanos(OPEN_WAIT))
        .backoff(2.0, Duration::from_nanos(MAX_OPEN_WAIT))
        .jitter(0.0)
        .half_open_permits(PERMITS)
        .half_open_max_wait(Duration::from_nanos(HALF_OPEN_MAX_WAIT))
        .half_open_policy(s.policy)
        .stripes(4);
    if s.slow_rule {
        b = b.slow_call(Duration::from_nanos(SLOW), 1.0);
    }
    if let Some(n) = s.consecutive {
        b = b.consecutive_failures(n);
    }
    (b.build().unwrap(), mock)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn breaker_matches_the_model(s in setup(), ops in proptest::collection::vec(op(), 1..200)) {
        let (cb, mock) = build(&s);
        let mut m = Model::new(s);
        let mut held: Vec<(RawPermit, u64, Option<u64>)> = Vec::new();
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::Acquire => {
                    let real = cb.acquire();
                    let model = m.acquire();
                    match (real, model) {
                        (Ok(p), Ok((g, start))) => {
                            prop_assert_eq!(p.generation(), g, "step {}", step);
                            held.push((p, g, start));
                        }
                        (Err(r), Err(wait)) => {
                            let want = if wait == u64::MAX { Duration::MAX } else { Duration::from_nanos(wait) };
                            prop_assert_eq!(r.retry_after(), want, "step {}", step);
                        }
                        (real, model) => prop_assert!(false, "step {}: acquire: real {:?} model {:?}", step, real, model),
                    }
                }
                Op::Report(i, outcome) if !held.is_empty() => {
                    let (p, g, start) = held.remove(i % held.len());
                    cb.record(p, outcome);
                    m.record(g, start, outcome);
                }
                Op::Drop(i) if !held.is_empty() => {
                    let (p, g, start) = held.remove(i % held.len());
                    cb.record(p, Outcome::Ignored); // what dropping a `Permit` does
                    m.record(g, start, Outcome::Ignored);
                }
                Op::Report(..) | Op::Drop(_) => {}
                Op::Advance(ns) => {
                    mock.advance(Duration::from_nanos(ns));
                    m.now += ns;
                }
                Op::Rewind(ns) => {
                    // The breaker reads a clock before its build as its build.
                    let back = ns.min(m.now);
                    mock.rewind(Duration::from_nanos(back));
                    m.now -= back;
                }
                Op::Reconfigure { threshold, minimum, policy } => {
                    let mut c = cb.config();
                    c.failure_rate_threshold = threshold;
                    c.minimum_calls = minimum;
                    c.half_open_policy = policy;
                    cb.reconfigure(c).unwrap();
                    (m.threshold, m.minimum, m.policy) = (threshold, minimum, policy);
                }
                Op::Reset => {
                    cb.reset();
                    m.enter(State::Closed, 0);
                }
                Op::To(state) => {
                    if cb.transition_to(state) {
                        m.enter(state, 0);
                    } else {
                        prop_assert_eq!(m.state, state);
                    }
                }
                Op::Churn(n) => {
                    for _ in 0..n {
                        cb.reset();
                        m.enter(State::Closed, 0);
                    }
                }
                Op::Healthy(n) => {
                    for _ in 0..n {
                        match (cb.acquire(), m.acquire()) {
                            (Ok(p), Ok((g, start))) => {
                                cb.record(p, Outcome::Success);
                                m.record(g, start, Outcome::Success);
                            }
                            (Err(_), Err(_)) => {}
                            (real, model) => {
                                prop_assert!(false, "step {}: acquire: real {:?} model {:?}", step, real, model)
                            }
                        }
                    }
                }
            }
            let r = cb.metrics();
            let (calls, fails, slows) = m.window();
            prop_assert_eq!(r.state, m.visible(), "step {}", step);
            prop_assert_eq!(r.generation, m.generation, "step {}", step);
            prop_assert_eq!((r.window_calls, r.window_failures, r.window_slow_calls), (calls, fails, slows), "step {}", step);
            prop_assert_eq!(
                (r.calls, r.failures, r.slow_calls, r.ignored, r.rejected),
                (m.calls, m.failures, m.slow_calls, m.ignored, m.rejected),
                "step {}", step
            );
            if m.state == State::HalfOpen {
                prop_assert_eq!(r.half_open_in_flight, m.taken - m.ok - m.fail, "step {}", step);
            }
        }
    }
}
