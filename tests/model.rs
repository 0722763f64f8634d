//! Random operation sequences against a small sequential reference model:
//! on one thread the breaker must agree with it exactly, step by step.

use nanobreaker::{CircuitBreaker, Outcome, RawPermit, State, Window};
use proptest::prelude::*;
use std::collections::VecDeque;
use std::time::Duration;

const WINDOW: usize = 6;
const PERMITS: u32 = 3;
const OPEN_WAIT_MS: u64 = 1000;
const MAX_OPEN_WAIT_MS: u64 = 5000;
const HALF_OPEN_MAX_WAIT_MS: u64 = 3000;

#[derive(Clone, Debug)]
enum Op {
    Acquire,
    Report(usize, Outcome),
    Drop(usize),
    Advance(u64),
    Reconfigure { threshold: f64, minimum: u32 },
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Acquire),
        6 => (any::<usize>(), prop_oneof![
            3 => Just(Outcome::Success),
            3 => Just(Outcome::Failure),
            1 => Just(Outcome::Ignored)
        ]).prop_map(|(i, o)| Op::Report(i, o)),
        1 => any::<usize>().prop_map(Op::Drop),
        2 => (0u64..4000).prop_map(Op::Advance),
        1 => (prop_oneof![Just(0.25), Just(0.5), Just(1.0)], 1u32..8)
            .prop_map(|(threshold, minimum)| Op::Reconfigure { threshold, minimum }),
        1 => Just(Op::Reset),
    ]
}

/// The reference: the documented rules, written the plain way.
struct Model {
    state: State,
    generation: u32,
    level: u32,
    deadline: u64,
    window: VecDeque<bool>, // failed?
    taken: u32,
    ok: u32,
    fail: u32,
    threshold: f64,
    minimum: u32,
    now: u64,
    calls: u64,
    failures: u64,
    ignored: u64,
    rejected: u64,
}

impl Model {
    fn enter(&mut self, state: State, level: u32) {
        self.state = state;
        self.generation += 1;
        self.level = level.min(15);
        self.taken = 0;
        self.ok = 0;
        self.fail = 0;
        self.window.clear();
        match state {
            State::Open => {
                let wait = (OPEN_WAIT_MS << self.level.min(20)).min(MAX_OPEN_WAIT_MS);
                self.deadline = self.now + wait * 1_000_000;
            }
            State::HalfOpen => self.deadline = self.now + HALF_OPEN_MAX_WAIT_MS * 1_000_000,
            _ => {}
        }
    }

    /// `Ok(generation)` or `Err(retry_after)`.
    fn acquire(&mut self) -> Result<u32, u64> {
        loop {
            match self.state {
                State::Closed => return Ok(self.generation),
                State::Open if self.now >= self.deadline => {
                    self.enter(State::HalfOpen, self.level);
                    self.taken = 1;
                    return Ok(self.generation);
                }
                State::Open => {
                    self.rejected += 1;
                    return Err(self.deadline - self.now);
                }
                State::HalfOpen if self.taken < PERMITS => {
                    self.taken += 1;
                    return Ok(self.generation);
                }
                State::HalfOpen if self.now >= self.deadline => self.enter(State::Open, self.level + 1),
                State::HalfOpen => {
                    self.rejected += 1;
                    return Err(self.deadline - self.now);
                }
                s => unreachable!("{s:?}"),
            }
        }
    }

    fn record(&mut self, generation: u32, outcome: Outcome) {
        if generation != self.generation {
            self.ignored += 1;
            return;
        }
        if outcome == Outcome::Ignored {
            self.ignored += 1;
        } else {
            self.calls += 1;
            self.failures += (outcome == Outcome::Failure) as u64;
        }
        match self.state {
            State::Closed => {
                if outcome == Outcome::Ignored {
                    return;
                }
                let failed = outcome == Outcome::Failure;
                self.window.push_back(failed);
                if self.window.len() > WINDOW {
                    self.window.pop_front();
                }
                let calls = self.window.len() as f64;
                let fails = self.window.iter().filter(|f| **f).count() as f64;
                if failed
                    && self.window.len() >= (self.minimum as usize).min(WINDOW)
                    && fails >= self.threshold * calls
                {
                    self.enter(State::Open, 0);
                }
            }
            State::HalfOpen => {
                match outcome {
                    Outcome::Ignored => self.taken -= 1,
                    Outcome::Success => self.ok += 1,
                    Outcome::Failure => self.fail += 1,
                }
                if self.fail as f64 >= self.threshold * PERMITS as f64 {
                    self.enter(State::Open, self.level + 1);
                } else if self.ok + self.fail >= PERMITS {
                    self.enter(State::Closed, 0);
                }
            }
            s => unreachable!("{s:?}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn breaker_matches_the_model(ops in proptest::collection::vec(op(), 1..200)) {
        let (clock, mock) = quanta::Clock::mock();
        let cb = CircuitBreaker::builder()
            .clock(clock)
            .window(Window::count(WINDOW as u32))
            .minimum_calls(3)
            .failure_rate_threshold(0.5)
            .open_wait(Duration::from_millis(OPEN_WAIT_MS))
            .backoff(2.0, Duration::from_millis(MAX_OPEN_WAIT_MS))
            .jitter(0.0)
            .half_open_permits(PERMITS)
            .half_open_max_wait(Duration::from_millis(HALF_OPEN_MAX_WAIT_MS))
            .stripes(4)
            .build()
            .unwrap();
        let mut m = Model {
            state: State::Closed, generation: 0, level: 0, deadline: 0, window: VecDeque::new(),
            taken: 0, ok: 0, fail: 0, threshold: 0.5, minimum: 3, now: 0,
            calls: 0, failures: 0, ignored: 0, rejected: 0,
        };
        let mut held: Vec<(RawPermit, u32)> = Vec::new();
        for op in ops {
            match op {
                Op::Acquire => {
                    let real = cb.acquire();
                    let model = m.acquire();
                    match (real, model) {
                        (Ok(p), Ok(g)) => held.push((p, g)),
                        (Err(r), Err(wait)) => prop_assert_eq!(r.retry_after(), Duration::from_nanos(wait)),
                        (real, model) => prop_assert!(false, "acquire: real {:?} model {:?}", real, model),
                    }
                }
                Op::Report(i, outcome) if !held.is_empty() => {
                    let (p, g) = held.remove(i % held.len());
                    cb.record(p, outcome);
                    m.record(g, outcome);
                }
                Op::Drop(i) if !held.is_empty() => {
                    let (p, g) = held.remove(i % held.len());
                    cb.record(p, Outcome::Ignored); // what dropping a `Permit` does
                    m.record(g, Outcome::Ignored);
                }
                Op::Report(..) | Op::Drop(_) => {}
                Op::Advance(ms) => {
                    mock.increment(Duration::from_millis(ms));
                    m.now += ms * 1_000_000;
                }
                Op::Reconfigure { threshold, minimum } => {
                    let mut c = cb.config();
                    c.failure_rate_threshold = threshold;
                    c.minimum_calls = minimum;
                    cb.reconfigure(c).unwrap();
                    m.threshold = threshold;
                    m.minimum = minimum;
                }
                Op::Reset => {
                    cb.reset();
                    m.enter(State::Closed, 0);
                }
            }
            let r = cb.metrics();
            prop_assert_eq!(r.state, m.state);
            prop_assert_eq!(r.window_calls, m.window.len() as u64);
            prop_assert_eq!(r.window_failures, m.window.iter().filter(|f| **f).count() as u64);
            prop_assert_eq!((r.calls, r.failures, r.ignored, r.rejected), (m.calls, m.failures, m.ignored, m.rejected));
            if m.state == State::HalfOpen {
                prop_assert_eq!(r.half_open_in_flight, m.taken - m.ok - m.fail);
            }
        }
    }
}
