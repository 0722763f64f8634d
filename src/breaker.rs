//! The circuit breaker: admission, recording, and the transitions between
//! states.
//!
//! # The hot path
//!
//! `try_acquire` in `Closed` is one load of the state word (plus one clock
//! read when the slow-call rule is on). `success` is one load of the state
//! word to check the permit's generation, then the window's record: in a
//! count window one compare-and-swap of the cursor on the thread's own
//! stripe and one load of the slot. Nothing there takes a lock, allocates,
//! or writes a line another core writes. Everything else (a failure that
//! may trip, open, half-open, transitions, listeners) is the slow path.
//!
//! # Transitions
//!
//! Every transition is one compare-and-swap of the state word from the
//! exact word the deciding thread read, so of any number of threads racing
//! to trip, to start a trial or to end one, exactly one wins; the others see
//! their CAS fail and look again. The winner then publishes the deadline of
//! the new state (the open wait, or the half-open limit) tagged with the new
//! generation, and hands the event to the listeners. A reader that finds the
//! deadline not yet published treats the breaker as still open.

use crate::config::{default_stripes, Config, ConfigError};
use crate::events::{Dispatcher, Listener, Reason, Transition};
use crate::metrics::Metrics;
use crate::state::{State, Word, GEN_MASK};
use crate::sync::{lock, ArcCell, AtomicU32, AtomicU64, Mutex, Ordering};
use crate::window::{Tally, Windows};
use crossbeam_utils::CachePadded;
use quanta::Clock;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// What became of a protected call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Outcome {
    /// The call worked.
    Success = 0,
    /// The call failed, and the failure counts against the dependency.
    Failure = 1,
    /// Neither: cancelled, a caller's mistake, or anything not to be counted.
    Ignored = 2,
}

/// Marks a permit taken while the slow-call rule was off: no start time.
const NO_START: u64 = u64::MAX;

/// The plain data of a permit, for layers that cannot hold a borrow (the C
/// ABI). Pass it back to [`CircuitBreaker::record`] exactly once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawPermit {
    /// The generation the permit was issued in.
    pub generation: u32,
    /// When the call started (ns on the breaker's clock), or `u64::MAX`.
    pub start: u64,
}

/// Why a call was not let through, and when to try again.
///
/// ```
/// use nanobreaker::{CircuitBreaker, State};
/// let cb = CircuitBreaker::builder().build().unwrap();
/// cb.transition_to(State::Open);
/// let r = cb.try_acquire().unwrap_err();
/// assert_eq!(r.state(), State::Open);
/// assert!(r.retry_after() > std::time::Duration::ZERO);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    state: State,
    retry_after: Duration,
}

impl Rejected {
    /// How long until the breaker may let a call through again
    /// (`Duration::MAX` when forced open).
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// The state that rejected the call.
    pub fn state(&self) -> State {
        self.state
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "circuit breaker is {}; retry after {:?}", self.state, self.retry_after)
    }
}

impl std::error::Error for Rejected {}

/// The error of [`CircuitBreaker::call`]: the breaker said no, or the call
/// itself failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Error<E> {
    /// The breaker rejected the call; it was not made.
    Rejected(Rejected),
    /// The call was made and returned this error.
    Inner(E),
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Rejected(r) => r.fmt(f),
            Error::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Rejected(r) => Some(r),
            Error::Inner(e) => Some(e),
        }
    }
}

/// Leave to make one call. Report how it went with [`success`](Permit::success),
/// [`failure`](Permit::failure) or [`ignore`](Permit::ignore); a permit
/// dropped without a report counts as ignored (and gives back its half-open
/// slot).
///
/// ```
/// use nanobreaker::CircuitBreaker;
/// let cb = CircuitBreaker::builder().build().unwrap();
/// if let Ok(permit) = cb.try_acquire() {
///     permit.success();
/// }
/// assert_eq!(cb.metrics().successes, 1);
/// ```
#[must_use = "a permit dropped without a report counts as ignored"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    raw: RawPermit,
}

impl Permit<'_> {
    /// The call worked.
    #[inline]
    pub fn success(self) {
        self.record(Outcome::Success)
    }

    /// The call failed.
    #[inline]
    pub fn failure(self) {
        self.record(Outcome::Failure)
    }

    /// The call is not to be counted.
    pub fn ignore(self) {
        self.record(Outcome::Ignored)
    }

    /// Reports `outcome`.
    #[inline]
    pub fn record(self, outcome: Outcome) {
        let this = std::mem::ManuallyDrop::new(self);
        this.breaker.record(this.raw, outcome);
    }

    /// The plain data of this permit, consuming it without a report: the
    /// caller must pass it to [`CircuitBreaker::record`] later.
    pub fn into_raw(self) -> RawPermit {
        std::mem::ManuallyDrop::new(self).raw
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.breaker.record(self.raw, Outcome::Ignored);
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").field("generation", &self.raw.generation).finish()
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

/// The values the hot path needs, in the same line as the state word: both
/// change rarely and are read on every call.
struct Hot {
    word: AtomicU64,
    /// `[consecutive_failures: 16 | slow_call_nanos: 48]`, 0 = rule off.
    rules: AtomicU64,
}

const SLOW_BITS: u32 = 48;

fn pack_rules(c: &Config) -> u64 {
    let slow = c.slow_call_duration.map_or(0, |d| (d.as_nanos() as u64).clamp(1, (1 << SLOW_BITS) - 1));
    let consecutive = c.consecutive_failures.map_or(0, |n| n.min(0xFFFF) as u64);
    consecutive << SLOW_BITS | slow
}

/// A circuit breaker. Share it between threads by reference or `Arc`: every
/// method takes `&self`.
///
/// ```
/// use nanobreaker::{CircuitBreaker, Window, State};
/// use std::time::Duration;
///
/// let (clock, mock) = nanobreaker::quanta::Clock::mock();
/// let cb = CircuitBreaker::builder()
///     .failure_rate_threshold(0.5)
///     .minimum_calls(4)
///     .window(Window::count(10))
///     .open_wait(Duration::from_secs(5))
///     .jitter(0.0)
///     .clock(clock)
///     .build()?;
/// for _ in 0..4 {
///     cb.try_acquire().unwrap().failure();
/// }
/// assert_eq!(cb.state(), State::Open);
/// let rejected = cb.try_acquire().unwrap_err();
/// assert_eq!(rejected.retry_after(), Duration::from_secs(5));
/// mock.increment(Duration::from_secs(5));
/// cb.try_acquire().unwrap().success(); // the first probe
/// assert_eq!(cb.state(), State::HalfOpen);
/// # Ok::<(), nanobreaker::ConfigError>(())
/// ```
pub struct CircuitBreaker {
    hot: CachePadded<Hot>,
    /// The deadline (ns) of the current `Open` or `HalfOpen` state...
    deadline: AtomicU64,
    /// ...valid when this equals the state word's generation.
    deadline_generation: AtomicU32,
    /// Orders the publishers of `deadline` (see `publish_deadline`).
    publishing: Mutex<()>,
    /// Failures in a row, for the consecutive-failures rule. Not padded:
    /// written only by failures, read by successes only when the rule is on.
    consecutive: AtomicU32,
    /// When the last transition happened (ns).
    last_transition: AtomicU64,
    windows: Windows,
    config: ArcCell<Config>,
    clock: Clock,
    origin: u64,
    events: Dispatcher,
}

/// Builds a [`CircuitBreaker`]; every setter has the default of
/// [`Config::default`].
///
/// ```
/// use nanobreaker::{CircuitBreaker, Window};
/// use std::time::Duration;
/// let cb = CircuitBreaker::builder()
///     .failure_rate_threshold(0.5)
///     .minimum_calls(20)
///     .window(Window::time(Duration::from_secs(60), 10))
///     .slow_call(Duration::from_millis(500), 0.8)
///     .open_wait(Duration::from_secs(5))
///     .half_open_permits(5)
///     .build()
///     .unwrap();
/// # drop(cb);
/// ```
#[must_use]
pub struct Builder {
    config: Config,
    clock: Option<Clock>,
    stripes: Option<u32>,
    listeners: Vec<Listener>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder").field("config", &self.config).field("stripes", &self.stripes).finish()
    }
}

impl Builder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }
    /// Trip at this failure rate, in (0, 1].
    pub fn failure_rate_threshold(mut self, rate: f64) -> Self {
        self.config.failure_rate_threshold = rate;
        self
    }
    /// Judge no rate before this many outcomes.
    pub fn minimum_calls(mut self, n: u32) -> Self {
        self.config.minimum_calls = n;
        self
    }
    /// The window the rates are computed over.
    pub fn window(mut self, window: crate::Window) -> Self {
        self.config.window = window;
        self
    }
    /// Calls of at least `duration` are slow; trip at this slow-call `rate`.
    pub fn slow_call(mut self, duration: Duration, rate: f64) -> Self {
        self.config.slow_call_duration = Some(duration);
        self.config.slow_call_rate_threshold = rate;
        self
    }
    /// Also trip after `n` failures in a row.
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.config.consecutive_failures = Some(n);
        self
    }
    /// How long to stay open after the first trip.
    pub fn open_wait(mut self, wait: Duration) -> Self {
        self.config.open_wait = wait;
        self
    }
    /// Multiply the open wait by `multiplier` per failed trial, up to `max`.
    pub fn backoff(mut self, multiplier: f64, max: Duration) -> Self {
        self.config.backoff_multiplier = multiplier;
        self.config.max_open_wait = max;
        self
    }
    /// Spread each open wait by up to this fraction either way, in [0, 1).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.config.jitter = fraction;
        self
    }
    /// How many probes half-open admits.
    pub fn half_open_permits(mut self, n: u32) -> Self {
        self.config.half_open_permits = n;
        self
    }
    /// End a trial whose probes have not all reported after this.
    pub fn half_open_max_wait(mut self, wait: Duration) -> Self {
        self.config.half_open_max_wait = wait;
        self
    }
    /// The clock (default `quanta::Clock::new()`; tests use `Clock::mock()`).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }
    /// How many stripes to spread the hot counters over (rounded up to a
    /// power of two, 1..=64). Default: the machine's parallelism, at most 16.
    /// One stripe makes the smallest breaker, for services that keep
    /// thousands of them.
    pub fn stripes(mut self, n: u32) -> Self {
        self.stripes = Some(n);
        self
    }
    /// Calls `f` on every transition, in order, off the hot path.
    pub fn on_transition(mut self, f: impl Fn(&Transition) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(f));
        self
    }

    /// Checks the configuration and builds the breaker.
    pub fn build(self) -> Result<CircuitBreaker, ConfigError> {
        self.config.validate()?;
        let stripes = self.stripes.unwrap_or_else(default_stripes);
        if stripes == 0 || stripes > crate::config::MAX_STRIPES {
            return Err(ConfigError::new("stripes", "must be 1..=64"));
        }
        let clock = self.clock.unwrap_or_default();
        let origin = clock.raw();
        let rules = pack_rules(&self.config);
        Ok(CircuitBreaker {
            hot: CachePadded::new(Hot {
                word: AtomicU64::new(Word::INITIAL.0),
                rules: AtomicU64::new(rules),
            }),
            deadline: AtomicU64::new(0),
            deadline_generation: AtomicU32::new(u32::MAX),
            publishing: Mutex::new(()),
            consecutive: AtomicU32::new(0),
            last_transition: AtomicU64::new(0),
            windows: Windows::new(self.config.window, stripes),
            config: ArcCell::new(self.config),
            clock,
            origin,
            events: Dispatcher::new(self.listeners),
        })
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker").field("state", &self.state()).finish_non_exhaustive()
    }
}

impl CircuitBreaker {
    /// A builder with every default.
    pub fn builder() -> Builder {
        Builder { config: Config::default(), clock: None, stripes: None, listeners: Vec::new() }
    }

    /// Nanoseconds on the breaker's clock since it was built.
    #[inline]
    fn now(&self) -> u64 {
        self.clock.delta_as_nanos(self.origin, self.clock.raw())
    }

    #[inline]
    fn load(&self) -> Word {
        // Acquire: pairs with the transition CAS (AcqRel), so a thread that
        // sees a new state also sees what its winner wrote before the CAS.
        Word(self.hot.word.load(Ordering::Acquire))
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.load().state()
    }

    /// Asks to make a call. `Ok` holds a [`Permit`] to report the outcome
    /// on; `Err` says why not and when to try again.
    ///
    /// ```
    /// use nanobreaker::CircuitBreaker;
    /// let cb = CircuitBreaker::builder().build().unwrap();
    /// match cb.try_acquire() {
    ///     Ok(permit) => permit.success(),
    ///     Err(rejected) => println!("retry in {:?}", rejected.retry_after()),
    /// };
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        self.acquire().map(|raw| Permit { breaker: self, raw })
    }

    /// [`try_acquire`](Self::try_acquire) without the borrow: the caller
    /// must hand the permit to [`record`](Self::record) exactly once
    /// (a half-open slot is held until then, or until the trial times out).
    #[inline]
    pub fn acquire(&self) -> Result<RawPermit, Rejected> {
        // Relaxed: one self-contained word; see `reconfigure`.
        let rules = self.hot.rules.load(Ordering::Relaxed);
        let w = self.load();
        match w.state() {
            State::Closed | State::MetricsOnly | State::Disabled => Ok(self.permit(w, rules)),
            _ => self.acquire_slow(w, rules),
        }
    }

    #[inline]
    fn permit(&self, w: Word, rules: u64) -> RawPermit {
        let slow_rule = rules & ((1 << SLOW_BITS) - 1) != 0;
        RawPermit { generation: w.generation(), start: if slow_rule { self.now() } else { NO_START } }
    }

    #[cold]
    fn acquire_slow(&self, mut w: Word, rules: u64) -> Result<RawPermit, Rejected> {
        loop {
            match w.state() {
                State::Closed | State::MetricsOnly | State::Disabled => return Ok(self.permit(w, rules)),
                State::ForcedOpen => return Err(self.reject(State::ForcedOpen, Duration::MAX)),
                State::Open => match (self.deadline_of(w), self.now()) {
                    (Some(d), now) if now >= d => {
                        let probe = w.enter(State::HalfOpen, w.level()).with_probes(1, 0, 0, 0);
                        match self.transition(w, probe, Reason::OpenWaitElapsed) {
                            Ok(new) => return Ok(self.permit(new, rules)),
                            Err(actual) => w = actual,
                        }
                    }
                    (Some(d), now) => return Err(self.reject(State::Open, Duration::from_nanos(d - now))),
                    // The winner of the trip has not published its deadline yet.
                    (None, _) => return Err(self.reject(State::Open, self.config.load().open_wait)),
                },
                State::HalfOpen => {
                    let permits = self.config.load().half_open_permits;
                    if w.taken() < permits {
                        let next = w.with_probes(w.taken() + 1, w.ok(), w.fail(), w.slow());
                        // Acquire both ways, as in `load`: the word taken
                        // or found is acted on; a failed CAS looks again.
                        match self.hot.word.compare_exchange_weak(
                            w.0,
                            next.0,
                            Ordering::Acquire,
                            Ordering::Acquire,
                        ) {
                            Ok(_) => return Ok(self.permit(next, rules)),
                            Err(actual) => w = Word(actual),
                        }
                        continue;
                    }
                    match (self.deadline_of(w), self.now()) {
                        (Some(d), now) if now >= d => {
                            let open = w.enter(State::Open, w.level() + 1);
                            match self.transition(w, open, Reason::HalfOpenTimeout) {
                                Ok(new) | Err(new) => w = new,
                            }
                        }
                        (Some(d), now) => {
                            return Err(self.reject(State::HalfOpen, Duration::from_nanos(d - now)))
                        }
                        (None, _) => return Err(self.reject(State::HalfOpen, Duration::ZERO)),
                    }
                }
            }
        }
    }

    fn reject(&self, state: State, retry_after: Duration) -> Rejected {
        // Relaxed: a statistic.
        self.windows.stripe().1.rejected.fetch_add(1, Ordering::Relaxed);
        Rejected { state, retry_after }
    }

    fn deadline_of(&self, w: Word) -> Option<u64> {
        // Acquire: pairs with the Release in `transition`, so the deadline
        // read next is at least the one published for this generation. (It
        // may be a later one if the state moved on; then any CAS from `w`
        // fails and only a retry-after hint is affected.)
        if self.deadline_generation.load(Ordering::Acquire) == w.generation() {
            // Relaxed: ordered by the Acquire above.
            Some(self.deadline.load(Ordering::Relaxed))
        } else {
            None
        }
    }

    /// Reports the outcome of a call made on `permit` (from
    /// [`acquire`](Self::acquire)). An outcome from an earlier generation
    /// (the breaker changed state since the permit was issued) is dropped.
    #[inline(always)]
    pub fn record(&self, permit: RawPermit, outcome: Outcome) {
        // The hot path: an untimed success in `Closed` with a count window
        // and no consecutive-failures rule is one generation check and one
        // slot write. Everything else goes the long way.
        if outcome == Outcome::Success && permit.start == NO_START {
            let w = self.load();
            // Relaxed: one self-contained word; see `reconfigure`.
            let no_consecutive = self.hot.rules.load(Ordering::Relaxed) >> SLOW_BITS == 0;
            if w.generation() == permit.generation
                && w.state().records()
                && no_consecutive
                && self.windows.record_success(w.generation())
            {
                return;
            }
        }
        self.record_slow(permit, outcome)
    }

    #[inline(never)]
    fn record_slow(&self, permit: RawPermit, outcome: Outcome) {
        // The clock is read before the generation is checked: a time-window
        // record then never carries an epoch later than the state it passed.
        let timed = permit.start != NO_START;
        let now = if timed || self.windows.needs_clock() { self.now() } else { 0 };
        let w = self.load();
        if w.generation() != permit.generation {
            return self.count_ignored();
        }
        // Relaxed: one self-contained word.
        let rules = self.hot.rules.load(Ordering::Relaxed);
        let slow_nanos = rules & ((1 << SLOW_BITS) - 1);
        let slow = timed && slow_nanos != 0 && now.saturating_sub(permit.start) >= slow_nanos;
        match (w.state(), outcome) {
            (State::Disabled, _) => {}
            (State::HalfOpen, _) => self.record_probe(w, outcome, slow),
            (_, Outcome::Ignored) => self.count_ignored(),
            (State::Closed | State::MetricsOnly, _) => {
                let failed = outcome == Outcome::Failure;
                self.windows.record(w.generation(), failed, slow, now);
                let consecutive = (rules >> SLOW_BITS) as u32;
                if consecutive != 0 {
                    self.count_consecutive(w, failed, consecutive);
                }
                if failed || slow {
                    self.evaluate(w, now);
                }
            }
            // No permit is issued in these states; a matching generation
            // cannot reach here, but dropping is the safe answer.
            (State::Open | State::ForcedOpen, _) => self.count_ignored(),
        }
    }

    fn count_ignored(&self) {
        // Relaxed: a statistic.
        self.windows.stripe().1.ignored.fetch_add(1, Ordering::Relaxed);
    }

    fn count_consecutive(&self, w: Word, failed: bool, limit: u32) {
        if !failed {
            // Relaxed: a heuristic counter; the load keeps the line shared
            // while no failures come.
            if self.consecutive.load(Ordering::Relaxed) != 0 {
                self.consecutive.store(0, Ordering::Relaxed);
            }
            return;
        }
        // Relaxed: the trip itself is decided by the CAS in `transition`.
        let n = self.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= limit && w.state() == State::Closed {
            let _ = self.transition(w, w.enter(State::Open, 0), Reason::ConsecutiveFailures);
        }
    }

    /// After a failure or slow call in `Closed`: trip if a rate is reached.
    #[cold]
    fn evaluate(&self, w: Word, now: u64) {
        if w.state() != State::Closed {
            return; // MetricsOnly never trips
        }
        let config = self.config.load();
        if let Some(reason) = self.windows.judge(w.generation(), now, |t| verdict(&config, t)) {
            let _ = self.transition(w, w.enter(State::Open, 0), reason);
        }
    }

    /// A probe's outcome: count it in the state word, and end the trial
    /// when it is decided.
    fn record_probe(&self, mut w: Word, outcome: Outcome, slow: bool) {
        if outcome == Outcome::Ignored {
            self.count_ignored();
        } else {
            self.windows.record_total(outcome == Outcome::Failure, slow);
        }
        let config = self.config.load();
        let permits = config.half_open_permits as f64;
        let generation = w.generation();
        loop {
            let (mut taken, mut ok, mut fail, mut slow_n) = (w.taken(), w.ok(), w.fail(), w.slow());
            match outcome {
                Outcome::Ignored => taken = taken.saturating_sub(1),
                Outcome::Success => ok += 1,
                Outcome::Failure => fail += 1,
            }
            slow_n += slow as u32;
            let (next, reason) = if fail as f64 >= config.failure_rate_threshold * permits {
                (w.enter(State::Open, w.level() + 1), Some(Reason::ProbesFailed))
            } else if config.slow_call_duration.is_some()
                && slow_n as f64 >= config.slow_call_rate_threshold * permits
            {
                (w.enter(State::Open, w.level() + 1), Some(Reason::ProbesSlow))
            } else if ok + fail >= config.half_open_permits {
                (w.enter(State::Closed, 0), Some(Reason::ProbesSucceeded))
            } else {
                (w.with_probes(taken, ok, fail, slow_n), None)
            };
            let result = match reason {
                Some(reason) => self.transition(w, next, reason),
                // AcqRel as in `transition`: probe counts are part of the
                // state the next decision reads.
                None => self
                    .hot
                    .word
                    .compare_exchange_weak(w.0, next.0, Ordering::AcqRel, Ordering::Acquire)
                    .map(Word)
                    .map_err(Word),
            };
            match result {
                Ok(_) => return,
                Err(actual) if actual.generation() == generation => w = actual,
                Err(_) => return, // the trial ended meanwhile: this outcome is stale
            }
        }
    }

    /// Moves from exactly `from` to `to`; on success publishes the new
    /// state's deadline and tells the listeners. Returns the word now in
    /// place: `Ok(to)`, or `Err(actual)` if another thread moved first.
    fn transition(&self, from: Word, to: Word, reason: Reason) -> Result<Word, Word> {
        // AcqRel: transitions form one chain of CASes; Acquire on failure so
        // the caller can act on the word it got.
        if let Err(actual) = self.hot.word.compare_exchange(from.0, to.0, Ordering::AcqRel, Ordering::Acquire)
        {
            return Err(Word(actual));
        }
        // Read here, not passed in: the record path skips the clock when the
        // config does not need it, but a transition always needs the time.
        let now = self.now();
        let config = self.config.load();
        let deadline = match to.state() {
            State::Open => {
                Some(now.saturating_add(self.open_wait(&config, to.level(), now, to.generation())))
            }
            State::HalfOpen => Some(now.saturating_add(config.half_open_max_wait.as_nanos() as u64)),
            _ => None,
        };
        if let Some(d) = deadline {
            self.publish_deadline(to.generation(), d);
        }
        if matches!(to.state(), State::Closed | State::MetricsOnly) {
            // Relaxed: a heuristic counter, restarted with the era.
            self.consecutive.store(0, Ordering::Relaxed);
        }
        // Relaxed: informational.
        self.last_transition.store(now, Ordering::Relaxed);
        self.events.emit(Transition {
            from: from.state(),
            to: to.state(),
            reason,
            at: Duration::from_nanos(now),
            generation: to.generation(),
        });
        Ok(to)
    }

    /// Publishes the deadline of the state entered at `generation`, unless a
    /// later state has already published its own: the winner of a
    /// transition can be preempted between its CAS and this call while
    /// other threads move the breaker on, and a late publication must never
    /// replace a newer one (the breaker would wait for a deadline that never
    /// comes). The lock orders the publishers; readers never take it, and
    /// it is only taken by a transition into `Open` or `HalfOpen`.
    fn publish_deadline(&self, generation: u32, deadline: u64) {
        let _publishing = lock(&self.publishing);
        // Relaxed: only publishers write the tag, and they hold the lock.
        let current = self.deadline_generation.load(Ordering::Relaxed);
        let ahead = current.wrapping_sub(generation) & GEN_MASK;
        if current != u32::MAX && ahead != 0 && ahead < GEN_MASK / 2 {
            return; // a later state's deadline is already out
        }
        // Relaxed, then Release on the tag: a reader that sees the tag
        // (Acquire) sees this deadline.
        self.deadline.store(deadline, Ordering::Relaxed);
        self.deadline_generation.store(generation, Ordering::Release);
    }

    /// The open wait at backoff `level`, with the jitter of the opening of
    /// `generation` at `now`.
    fn open_wait(&self, config: &Config, level: u32, now: u64, generation: u32) -> u64 {
        let base = config.open_wait.as_secs_f64() * config.backoff_multiplier.powi(level as i32);
        let base = base.min(config.max_open_wait.as_secs_f64());
        let factor = if config.jitter > 0.0 {
            1.0 + config.jitter * (2.0 * self.random(now, generation) - 1.0)
        } else {
            1.0
        };
        (base * factor * 1e9) as u64
    }

    /// A uniform number in [0, 1) for the opening of `generation` at `now`:
    /// a hash (splitmix64) of the time, the generation and this breaker's
    /// clock origin, so breakers that trip together still spread out, with
    /// no state to keep.
    fn random(&self, now: u64, generation: u32) -> f64 {
        let mut z = now ^ self.origin.rotate_left(32) ^ (generation as u64) << 43;
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Moves to `state` now, whatever the current one (resilience4j's
    /// `transitionTo...State`). Entering `Open` starts a fresh open wait;
    /// entering `Closed` or `MetricsOnly` starts an empty window. Returns
    /// `false` if the breaker was already in `state`.
    ///
    /// ```
    /// use nanobreaker::{CircuitBreaker, State};
    /// let cb = CircuitBreaker::builder().build().unwrap();
    /// assert!(cb.transition_to(State::Disabled));
    /// assert!(!cb.transition_to(State::Disabled));
    /// assert!(cb.try_acquire().is_ok());
    /// ```
    pub fn transition_to(&self, state: State) -> bool {
        let mut w = self.load();
        loop {
            if w.state() == state {
                return false;
            }
            match self.transition(w, w.enter(state, 0), Reason::Manual) {
                Ok(_) => return true,
                Err(actual) => w = actual,
            }
        }
    }

    /// Back to `Closed` with an empty window and no backoff, whatever the
    /// current state.
    ///
    /// ```
    /// use nanobreaker::{CircuitBreaker, State};
    /// let cb = CircuitBreaker::builder().build().unwrap();
    /// cb.transition_to(State::ForcedOpen);
    /// cb.reset();
    /// assert_eq!(cb.state(), State::Closed);
    /// ```
    pub fn reset(&self) {
        let mut w = self.load();
        loop {
            match self.transition(w, w.enter(State::Closed, 0), Reason::Manual) {
                Ok(_) => return,
                Err(actual) => w = actual,
            }
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        Config::clone(&self.config.load())
    }

    /// Replaces the configuration, whole, at run time. It is validated
    /// first; on error nothing changes. The window's shape (kind, size and
    /// buckets) is fixed when the breaker is built: a `config` with another
    /// window is refused with a `ConfigError` naming `window`.
    ///
    /// Each decision (trip, trial result, open wait, admission) reads one
    /// config, old or new, never a mix. A call in flight may be classified
    /// (slow or not) by the old rules and judged by the new thresholds.
    ///
    /// ```
    /// use nanobreaker::CircuitBreaker;
    /// let cb = CircuitBreaker::builder().build().unwrap();
    /// let mut c = cb.config();
    /// c.failure_rate_threshold = 0.9;
    /// cb.reconfigure(c).unwrap();
    /// assert_eq!(cb.config().failure_rate_threshold, 0.9);
    /// let mut bad = cb.config();
    /// bad.jitter = 2.0;
    /// assert_eq!(cb.reconfigure(bad).unwrap_err().field(), "jitter");
    /// ```
    pub fn reconfigure(&self, config: Config) -> Result<(), ConfigError> {
        config.validate()?;
        if config.window != self.config.load().window {
            return Err(ConfigError::new("window", "cannot change after the breaker is built"));
        }
        let rules = pack_rules(&config);
        self.config.store(config);
        // Relaxed: one self-contained word, read on its own.
        self.hot.rules.store(rules, Ordering::Relaxed);
        Ok(())
    }

    /// Adds a transition listener at run time.
    pub fn on_transition(&self, f: impl Fn(&Transition) + Send + Sync + 'static) {
        self.events.add(Arc::new(f));
    }

    /// Runs `f` if the breaker lets it, and records `Ok` as success and
    /// `Err` as failure.
    ///
    /// ```
    /// use nanobreaker::{CircuitBreaker, Error};
    /// let cb = CircuitBreaker::builder().build().unwrap();
    /// let r: Result<u32, Error<&str>> = cb.call(|| Ok(7));
    /// assert_eq!(r, Ok(7));
    /// assert_eq!(cb.call(|| Err::<u32, _>("down")), Err(Error::Inner("down")));
    /// ```
    pub fn call<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, Error<E>> {
        self.call_with(f, |r| if r.is_ok() { Outcome::Success } else { Outcome::Failure })
    }

    /// Like [`call`](Self::call), with `classify` deciding what each result
    /// counts as (for example: a "not found" error is ignored, not a failure).
    ///
    /// ```
    /// use nanobreaker::{CircuitBreaker, Outcome};
    /// let cb = CircuitBreaker::builder().build().unwrap();
    /// let _ = cb.call_with(|| Err::<(), _>(404), |r| match r {
    ///     Err(404) => Outcome::Ignored,
    ///     Err(_) => Outcome::Failure,
    ///     Ok(_) => Outcome::Success,
    /// });
    /// assert_eq!(cb.metrics().ignored, 1);
    /// ```
    pub fn call_with<T, E>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
    ) -> Result<T, Error<E>> {
        let permit = self.try_acquire().map_err(Error::Rejected)?;
        // If `f` panics, the permit is dropped and the call counts as ignored.
        let r = f();
        permit.record(classify(&r));
        r.map_err(Error::Inner)
    }

    /// Awaits `fut` if the breaker lets it, with no runtime of its own: a
    /// future dropped before it finishes (cancelled) counts as ignored.
    ///
    /// ```
    /// # use nanobreaker::CircuitBreaker;
    /// # async fn fetch() -> Result<u32, std::io::Error> { Ok(1) }
    /// # async fn run(cb: &CircuitBreaker) {
    /// let n = cb.call_async(fetch()).await;
    /// # }
    /// ```
    pub async fn call_async<T, E>(&self, fut: impl Future<Output = Result<T, E>>) -> Result<T, Error<E>> {
        self.call_async_with(fut, |r| if r.is_ok() { Outcome::Success } else { Outcome::Failure }).await
    }

    /// [`call_async`](Self::call_async) with a classifier.
    pub async fn call_async_with<T, E>(
        &self,
        fut: impl Future<Output = Result<T, E>>,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
    ) -> Result<T, Error<E>> {
        let permit = self.try_acquire().map_err(Error::Rejected)?;
        let r = fut.await;
        permit.record(classify(&r));
        r.map_err(Error::Inner)
    }

    /// A snapshot of the rates and totals.
    ///
    /// ```
    /// use nanobreaker::CircuitBreaker;
    /// let cb = CircuitBreaker::builder().build().unwrap();
    /// cb.try_acquire().unwrap().failure();
    /// cb.try_acquire().unwrap().success();
    /// let m = cb.metrics();
    /// assert_eq!((m.calls, m.failures, m.window_calls), (2, 1, 2));
    /// assert_eq!(m.failure_rate, 0.5);
    /// ```
    pub fn metrics(&self) -> Metrics {
        let now = self.now();
        let w = self.load();
        let t =
            if w.state().records() { self.windows.tally(w.generation(), now) } else { Default::default() };
        let rate = |n: u64| if t.calls == 0 { 0.0 } else { n as f64 / t.calls as f64 };
        let calls = self.windows.calls();
        let failures = self.windows.sum(|s| &s.failures);
        Metrics {
            state: w.state(),
            failure_rate: rate(t.failures),
            slow_call_rate: rate(t.slow),
            window_calls: t.calls,
            window_failures: t.failures,
            window_slow_calls: t.slow,
            calls,
            successes: calls.wrapping_sub(failures),
            failures,
            slow_calls: self.windows.sum(|s| &s.slow),
            ignored: self.windows.sum(|s| &s.ignored),
            rejected: self.windows.sum(|s| &s.rejected),
            // Relaxed: informational.
            since_last_transition: Duration::from_nanos(
                now.saturating_sub(self.last_transition.load(Ordering::Relaxed)),
            ),
            half_open_in_flight: if w.state() == State::HalfOpen {
                w.taken() - (w.ok() + w.fail()).min(w.taken())
            } else {
                0
            },
            generation: w.generation() & GEN_MASK,
        }
    }

    /// Bytes this breaker takes: the struct and what it owns on the heap
    /// (not counting listeners).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.windows.heap_bytes() + std::mem::size_of::<Config>()
    }
}
