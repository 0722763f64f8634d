//! Recording outcomes: the window in `Closed`, the probes in `HalfOpen`,
//! and the decisions they trigger.

use crate::breaker::{CircuitBreaker, Limits, Rules};
use crate::config::{Config, HalfOpenPolicy};
use crate::era::{self, parity, Probes};
use crate::events::{Reason, Why, WindowCounts};
use crate::permit::{Outcome, RawPermit, NO_START};
use crate::state::{State, Word, CONSECUTIVE_RULE};
use crate::sync::Ordering;
use crate::window::{Entry, Fast, Tally, Timing};

/// What `CircuitBreaker::record_fast` did.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// Recorded; nothing to decide.
    Done,
    /// Recorded in the era of this word; the window must be judged.
    Judge(Word),
    /// Recorded in the era of this word; the ring may have become clean.
    Settle(Word),
    /// Not recorded: take the long way.
    Not,
}

impl Recorded {
    /// What a success recorded in a count window of the era of `w` asks.
    fn after(fast: Fast, w: Word) -> Recorded {
        match fast {
            Fast::Done => Recorded::Done,
            Fast::Judge => Recorded::Judge(w),
            Fast::Settle => Recorded::Settle(w),
            Fast::Slow => Recorded::Not,
        }
    }
}

/// Whether the outcomes in `t` trip a breaker configured by `config`, and why.
fn verdict(config: &Config, t: Tally) -> Option<Reason> {
    if t.calls == 0 || t.calls < config.effective_minimum() {
        None
    } else if t.failures as f64 >= config.failure_rate_threshold * t.calls as f64 {
        Some(Reason::FailureRate)
    } else if config.slow_call_duration.is_some()
        && t.slow as f64 >= config.slow_call_rate_threshold * t.calls as f64
    {
        Some(Reason::SlowCallRate)
    } else {
        None
    }
}

/// Whether a trial with these probe counts is decided: the state to enter
/// and why.
fn trial(config: &Config, p: Probes) -> Option<(State, Reason)> {
    let permits = config.half_open_permits;
    let slow_rule = config.slow_call_duration.is_some();
    let (fails, slow) = match config.half_open_policy {
        HalfOpenPolicy::FirstFailureReopens => (p.fail() >= 1, slow_rule && p.slow() >= 1),
        HalfOpenPolicy::FailureRate => (
            p.fail() as f64 >= config.failure_rate_threshold * permits as f64,
            slow_rule && p.slow() as f64 >= config.slow_call_rate_threshold * permits as f64,
        ),
    };
    let done = match config.half_open_policy {
        HalfOpenPolicy::FirstFailureReopens => p.ok() >= permits,
        HalfOpenPolicy::FailureRate => p.ok() + p.fail() >= permits,
    };
    if fails {
        Some((State::Open, Reason::ProbesFailed))
    } else if slow {
        Some((State::Open, Reason::ProbesSlow))
    } else if done {
        Some((State::Closed, Reason::ProbesSucceeded))
    } else {
        None
    }
}

impl CircuitBreaker {
    /// Reports the outcome of a call made on `permit` (from
    /// [`acquire`](Self::acquire)). An outcome from an earlier generation
    /// (the breaker changed state since the permit was issued) is dropped.
    #[inline(always)]
    pub fn record(&self, permit: RawPermit, outcome: Outcome) {
        let fast = self.record_fast(&permit, outcome);
        if fast != Recorded::Done {
            self.record_rest(permit, outcome, fast)
        }
    }

    /// The hot path of `record`: an untimed success in `Closed` with a
    /// count window and no consecutive-failures rule is one generation
    /// check and one slot write. It is atomics and arithmetic only, with no
    /// operation that can panic (no indexing that is not proven in bounds,
    /// no allocation, no config, no listener), so the C ABI runs it outside
    /// its panic boundary (see `ffi/permit.rs`); `record_rest` does the
    /// rest inside it.
    #[inline(always)]
    pub(crate) fn record_fast(&self, permit: &RawPermit, outcome: Outcome) -> Recorded {
        if outcome == Outcome::Success && permit.start == NO_START {
            let w = self.load();
            if w.takes_fast_success(permit.generation) {
                if self.windows.success_on_clean(&self.hot.clean, permit.generation) {
                    return Recorded::Done;
                }
                return Recorded::after(self.windows.record_success(&self.hot.clean, permit.generation), w);
            }
        }
        Recorded::Not
    }

    /// `record_fast` for a success of `generation` whose add to stripe
    /// `k`'s cursor the caller made itself, by the C ABI's rule
    /// (`ffi/fast/`), landing on `position`. The state word is tested
    /// again as `record_fast` tests it: if the breaker left the permit's
    /// `Closed` era since the caller's test (or the caller never made
    /// it), only the cursor's lap is kept and the success takes the long
    /// way (`Recorded::Not`). Atomics and arithmetic only, as
    /// `record_fast`; `None` for a time window or a stripe that does not
    /// exist (nothing touched).
    #[cfg(feature = "capi")]
    pub(crate) fn record_landed(&self, generation: u64, k: usize, position: u64) -> Option<Recorded> {
        let w = self.load();
        let fast = w.takes_fast_success(generation);
        let landed = self.windows.success_landed(&self.hot.clean, k, position, fast.then_some(generation))?;
        Some(if fast { Recorded::after(landed, w) } else { Recorded::Not })
    }

    /// What `record_fast` left: a judgement, or the whole long way.
    #[inline]
    pub(crate) fn record_rest(&self, permit: RawPermit, outcome: Outcome, fast: Recorded) {
        match fast {
            Recorded::Done => {}
            Recorded::Judge(w) => self.judge(w, 0, 0),
            Recorded::Settle(w) => self.settle(w),
            Recorded::Not => self.record_slow(permit, outcome),
        }
    }

    #[inline(never)]
    fn record_slow(&self, permit: RawPermit, outcome: Outcome) {
        let g = permit.generation;
        let w = self.load();
        if w.generation() != g {
            return self.count_ignored();
        }
        match w.state() {
            State::Disabled => return,
            State::Open | State::ForcedOpen => return self.count_ignored(),
            _ => {}
        }
        // The clock is read before the generation is checked again: a
        // record then never carries a time later than the state it passed
        // (see `window/time.rs`). Every failure is timed (for
        // `Metrics::since_last_failure`; a failure takes the long way anyway).
        let timed = permit.start != NO_START;
        let failed = outcome == Outcome::Failure;
        let clocked = timed || failed || self.windows.needs_clock();
        let now = if clocked { self.now() } else { 0 };
        let w = self.load();
        if w.generation() != g {
            return self.count_ignored();
        }
        let timing = clocked.then(|| Timing { now, took: timed.then(|| now.saturating_sub(permit.start)) });
        // Relaxed: one self-contained word; see `reconfigure`.
        let rules = Rules::unpack(self.hot.rules.load(Ordering::Relaxed));
        let slow = timed && rules.slow_nanos != 0 && now.saturating_sub(permit.start) >= rules.slow_nanos;
        match (w.state(), outcome) {
            (State::HalfOpen, _) => self.record_probe(w, outcome, slow, timing),
            (_, Outcome::Ignored) => self.count_ignored(),
            (State::Closed | State::MetricsOnly, _) => {
                let ext = self.ext(w);
                if !ext.tag_matches(g) {
                    return self.count_ignored(); // a later era took this copy: stale
                }
                // Relaxed: a self-contained word; see `reconfigure`.
                let minimum = Limits::unpack(self.hot.limits.load(Ordering::Relaxed)).minimum.into();
                let live = || self.load().generation() == g;
                let entry = Entry { generation: g, failed, slow, now, start: ext.nanos(), minimum, timing };
                let judge = self.windows.record(&self.hot.clean, entry, live);
                if w.has(CONSECUTIVE_RULE) {
                    self.count_consecutive(w, failed, rules.consecutive);
                }
                if failed || slow || judge == Fast::Judge {
                    self.judge(w, now, ext.nanos());
                } else if judge == Fast::Settle {
                    self.settle(w);
                }
            }
            // No permit is issued in the other states; dropping is the safe
            // answer.
            _ => self.count_ignored(),
        }
    }

    pub(crate) fn count_ignored(&self) {
        self.windows.count(|s| &s.ignored);
    }

    /// Failures in a row: one counter per era (see `era.rs`).
    fn count_consecutive(&self, w: Word, failed: bool, limit: u64) {
        let g = w.generation();
        let c = &self.cold.consecutive[parity(g)];
        if failed {
            if era::add(c, g, 1).is_some_and(|n| n >= limit) && w.state() == State::Closed {
                self.trip(w, Reason::ConsecutiveFailures);
            }
            return;
        }
        // Relaxed: a self-contained counter. The load keeps the line shared
        // while no failures come.
        let mut cur = c.load(Ordering::Relaxed);
        while era::counter_is_for(cur, g) && cur & era::COUNT_MASK != 0 {
            // Relaxed: as above.
            match c.compare_exchange_weak(cur, era::counter(g, 0), Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }

    /// After an outcome that may trip the breaker: trip if a rate is reached.
    #[cold]
    fn judge(&self, w: Word, now: u64, start: u64) {
        if w.state() != State::Closed {
            return; // MetricsOnly never trips
        }
        let config = self.config.load();
        let why = |t: Tally| {
            let window = WindowCounts { calls: t.calls, failures: t.failures, slow_calls: t.slow };
            verdict(&config, t).map(|reason| Why { reason, window: Some(window) })
        };
        if let Some(why) = self.windows.judge(&self.hot.clean, w.generation(), now, start, why) {
            self.trip(w, why);
        }
    }

    /// After a success that may have left the ring clean: mark it so (see
    /// `window/count.rs`). No verdict: a success that does not grow the
    /// window never trips it.
    #[cold]
    fn settle(&self, w: Word) {
        if w.state() == State::Closed {
            self.windows.settle(&self.hot.clean, w.generation());
        }
    }

    /// Closed -> Open, unless another thread moved the breaker first.
    fn trip(&self, w: Word, why: impl Into<Why>) {
        self.decide(w, State::Open, 0, why);
    }

    /// Moves from `w`'s generation to `state`, as a decision taken in that
    /// generation: if another thread moved the breaker first, the decision
    /// is moot; a word that changed only in its flags is tried again.
    fn decide(&self, mut w: Word, state: State, level: u32, why: impl Into<Why>) {
        let (g, why) = (w.generation(), why.into());
        while let Err(actual) = self.transition(w, w.enter(state, level), why) {
            if actual.generation() != g {
                return;
            }
            w = actual;
        }
    }

    /// A probe's outcome: count it in the trial, and end the trial when it
    /// is decided.
    fn record_probe(&self, w: Word, outcome: Outcome, slow: bool, timing: Option<Timing>) {
        if outcome == Outcome::Ignored {
            self.count_ignored();
        } else {
            self.windows.record_total(outcome == Outcome::Failure, slow, timing);
            self.cold.stats.probe(outcome == Outcome::Failure);
        }
        let config = self.config.load();
        let g = w.generation();
        let probes = &self.hot.probes[parity(g)];
        // Acquire: the trial's counts, as published.
        let mut cur = Probes(probes.load(Ordering::Acquire));
        loop {
            let now = self.load();
            if now.generation() != g || !cur.tag_matches(g) {
                return; // the trial ended meanwhile: this outcome is stale
            }
            let (mut taken, mut ok, mut fail) = (cur.taken(), cur.ok(), cur.fail());
            match outcome {
                Outcome::Ignored => taken = taken.saturating_sub(1),
                Outcome::Success => ok += 1,
                Outcome::Failure => fail += 1,
            }
            let next = cur.with(taken, ok, fail, cur.slow() + slow as u32);
            // AcqRel: the counts are what the decision reads.
            match probes.compare_exchange_weak(cur.0, next.0, Ordering::AcqRel, Ordering::Acquire) {
                Err(actual) => cur = Probes(actual),
                Ok(_) => {
                    let Some((state, reason)) = trial(&config, next) else { return };
                    let level = if state == State::Open { now.level() + 1 } else { 0 };
                    // The counts with this outcome are in: whoever moves the
                    // breaker, the trial is decided.
                    return self.decide(now, state, level, reason);
                }
            }
        }
    }
}
