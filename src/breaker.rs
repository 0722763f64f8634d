//! The circuit breaker: what it holds and its public API. The call paths
//! live in `admission.rs` (acquire), `recording.rs` (outcomes) and
//! `transition.rs` (moving between states).
//!
//! # The hot path
//!
//! `try_acquire` in `Closed` is one load of the state word and one mask
//! test (plus one clock read when the slow-call rule is on). `success` is
//! one load of the state word to check the permit's generation, then the
//! window's record: in a count window one `fetch_add` on the cursor of
//! the thread's own stripe, one load of its owner word and one of the
//! slot. Nothing there
//! takes a lock, allocates, or writes a line another core writes.
//! Everything else (a failure that may trip, open, half-open, transitions,
//! listeners) is the slow path, which also takes no lock and allocates
//! nothing.

use crate::builder::Builder;
use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::era::{parity, Ext};
use crate::events::{self, Events, Transition};
use crate::name::Name;
use crate::state::{State, Word, CONSECUTIVE_RULE, SLOW_RULE};
use crate::stats::Stats;
use crate::sync::{lock, ArcCell, AtomicU64, Mutex, Ordering};
use crate::window::Windows;
use crate::words::Words;
use crossbeam_utils::CachePadded;
use std::fmt;
use std::sync::Arc;

/// The words every call reads, in one line that only transitions and
/// reconfiguration write. `repr(C)`, as every type of a breaker's words:
/// processes built from different compilations share them (see `shared/`).
#[repr(C)]
pub(crate) struct Hot {
    /// The state word (see `state.rs`).
    pub(crate) word: AtomicU64,
    /// The rules a record applies (see `Rules`).
    pub(crate) rules: AtomicU64,
    /// `[half_open_permits 32 | minimum_calls 32]` (see `Limits`): what
    /// admission to a trial and the judging of a success read without
    /// loading the config.
    pub(crate) limits: AtomicU64,
    /// Each generation's deadline or start time, by parity (see `era.rs`).
    pub(crate) ext: [AtomicU64; 2],
    /// Each half-open trial's probes, by parity (see `era.rs`).
    pub(crate) probes: [AtomicU64; 2],
    /// A count window's clean mark: the slot value of a success of the era
    /// whose ring holds nothing else (see `window/count.rs`).
    pub(crate) clean: crate::window::Clean,
}

/// The words that calls write less often: failures in a row, the time of
/// the last transition, the transition and trial counters.
#[derive(Default)]
#[repr(C)]
pub(crate) struct Cold {
    /// Failures in a row, by era parity (see `era.rs`).
    pub(crate) consecutive: [AtomicU64; 2],
    /// When the last transition happened (ns). Informational.
    pub(crate) last_transition: AtomicU64,
    pub(crate) stats: Stats,
}

/// The parts of the config a record needs without loading it:
/// `[consecutive-failures limit 16 | slow-call nanoseconds 48]`, 0 = off.
#[derive(Clone, Copy)]
pub(crate) struct Rules {
    pub(crate) consecutive: u64,
    pub(crate) slow_nanos: u64,
}

const SLOW_BITS: u32 = 48;

/// `half_open_permits` and `minimum_calls`, packed in one word.
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) permits: u32,
    pub(crate) minimum: u32,
}

impl Limits {
    pub(crate) fn of(c: &Config) -> Limits {
        Limits { permits: c.half_open_permits, minimum: c.minimum_calls }
    }
    pub(crate) fn packed(self) -> u64 {
        u64::from(self.permits) << 32 | u64::from(self.minimum)
    }
    pub(crate) fn unpack(v: u64) -> Limits {
        Limits { permits: (v >> 32) as u32, minimum: v as u32 }
    }
}

impl Rules {
    pub(crate) fn of(c: &Config) -> Rules {
        // Validation bounds both (`MAX_SLOW_CALL_DURATION`,
        // `MAX_CONSECUTIVE_FAILURES`): nothing is capped here.
        Rules {
            consecutive: c.consecutive_failures.map_or(0, u64::from),
            slow_nanos: c.slow_call_duration.map_or(0, |d| d.as_nanos() as u64),
        }
    }
    pub(crate) fn packed(self) -> u64 {
        self.consecutive << SLOW_BITS | self.slow_nanos
    }
    pub(crate) fn unpack(v: u64) -> Rules {
        Rules { consecutive: v >> SLOW_BITS, slow_nanos: v & ((1 << SLOW_BITS) - 1) }
    }
    /// `w` with the rule flags these rules ask for; `timed`: latency is
    /// recorded, so every call is timed.
    pub(crate) fn flags(self, w: Word, timed: bool) -> Word {
        w.with(SLOW_RULE, self.slow_nanos != 0 || timed).with(CONSECUTIVE_RULE, self.consecutive != 0)
    }
}

/// A circuit breaker. Share it between threads by reference or `Arc`: every
/// method takes `&self`.
///
/// ```
/// use nanobreaker::{CircuitBreaker, Clock, State, Window};
/// use std::time::Duration;
///
/// let (clock, mock) = Clock::mock();
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
/// mock.advance(Duration::from_secs(5));
/// cb.try_acquire().unwrap().success(); // the first probe
/// assert_eq!(cb.state(), State::HalfOpen);
/// # Ok::<(), nanobreaker::ConfigError>(())
/// ```
pub struct CircuitBreaker {
    /// The line every call reads (on the heap, or in a shared region: see
    /// `words.rs`).
    pub(crate) hot: Words<CachePadded<Hot>>,
    /// Unique in the process, never reused (`sync::next_id`): the C ABI's
    /// permits name their breaker by it, and it seeds the jitter. Never
    /// written after build.
    pub(crate) id: u64,
    pub(crate) cold: Words<Cold>,
    pub(crate) windows: Windows,
    pub(crate) config: ArcCell<Config>,
    /// Serialises `reconfigure`, which no call path reaches.
    pub(crate) reconfiguring: Mutex<()>,
    pub(crate) clock: Clock,
    pub(crate) origin: u64,
    pub(crate) events: Events,
    pub(crate) name: Name,
    /// The mapped region a shared breaker's words live in (see `shared/`).
    #[cfg(all(feature = "shared", unix, not(loom)))]
    pub(crate) region: Option<Arc<crate::shared::Mapping>>,
}

// SAFETY: `u64`s (atomic) and arrays of them.
#[cfg(not(loom))]
unsafe impl crate::words::Plain for Hot {}
// SAFETY: as above (`Stats` is too).
#[cfg(not(loom))]
unsafe impl crate::words::Plain for Cold {}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl CircuitBreaker {
    /// A builder with every default.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// The breaker's name (empty if built without one). No allocation.
    ///
    /// ```
    /// use nanobreaker::CircuitBreaker;
    /// let cb = CircuitBreaker::builder().name("inventory").build().unwrap();
    /// assert_eq!(cb.name(), "inventory");
    /// ```
    #[inline]
    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    /// The breaker's name as a cheap handle (a clone shares the text).
    pub fn name_handle(&self) -> &Name {
        &self.name
    }

    /// Nanoseconds on the breaker's clock since it was built.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        self.clock.since(self.origin)
    }

    #[inline]
    pub(crate) fn load(&self) -> Word {
        // Acquire: pairs with the transition CAS (AcqRel), so a thread that
        // sees a new generation also sees what its contenders published
        // for it before the CAS (see `era.rs`).
        Word(self.hot.word.load(Ordering::Acquire))
    }

    /// The deadline or start time of `w`'s generation (see `repair_ext`
    /// for a copy that holds a competitor's value).
    #[inline]
    pub(crate) fn ext(&self, w: Word) -> Ext {
        // Acquire: see `load`; the copy was published before `w`.
        let e = Ext(self.hot.ext[parity(w.generation())].load(Ordering::Acquire));
        if e.needs_repair(w.generation(), w.state()) {
            return self.repair_ext_now(w);
        }
        e
    }

    #[cold]
    fn repair_ext_now(&self, w: Word) -> Ext {
        self.repair_ext(w, self.ext_at(w, self.now()))
    }

    /// The state a call would find now: like the state word, except that an
    /// `Open` breaker whose wait has passed reads as `HalfOpen` (the next
    /// call starts a trial), and a `HalfOpen` one past its
    /// `half_open_max_wait` reads as `Open` (the next call ends the trial),
    /// as gobreaker's `State()` does.
    pub fn state(&self) -> State {
        self.visible(self.load())
    }

    pub(crate) fn visible(&self, w: Word) -> State {
        match w.state() {
            State::Open if self.now() >= self.ext(w).nanos() => State::HalfOpen,
            State::HalfOpen if self.now() >= self.ext(w).nanos() => State::Open,
            s => s,
        }
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
            match self.transition(w, w.enter(state, 0), events::Reason::Manual) {
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
        self.__reset_skipping(0);
    }

    /// Test support, not part of the API: `reset`, as if `skip` more
    /// resets had happened first. The long-life tests use it to cross every
    /// tag's wrap without running billions of transitions.
    #[doc(hidden)]
    pub fn __reset_skipping(&self, skip: u64) {
        let mut w = self.load();
        while let Err(actual) =
            self.transition(w, w.enter_skipping(State::Closed, skip), events::Reason::Manual)
        {
            w = actual;
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
    /// Reconfigurations are applied one at a time, each whole (the only
    /// lock in the engine, never taken by a call). Each decision (trip,
    /// trial result, open wait, admission) reads one config, old or new,
    /// never a mix. A call in flight may be classified (slow or not) by the
    /// old rules and judged by the new thresholds; a wait already running
    /// keeps the deadline it was given.
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
        let _one_at_a_time = lock(&self.reconfiguring);
        if config.window != self.config.load().window {
            return Err(ConfigError::new("window", "cannot change after the breaker is built"));
        }
        #[cfg(all(feature = "shared", unix, not(loom)))]
        if let Some(region) = &self.region {
            // Under the file lock, so that the region's config and the rules
            // every process records by change together. (A process killed
            // between the two leaves a config whose rules every other
            // process's watcher applies again: see `watch.rs`.)
            region.locked(|| {
                region.store_config(&config);
                self.apply(config);
            });
            return Ok(());
        }
        self.apply(config);
        Ok(())
    }

    /// Makes `config` (validated, of this breaker's window) the one calls
    /// follow: the rules and minimum words, the state word's rule flags,
    /// and this process's copy. Under `reconfiguring`.
    pub(crate) fn apply(&self, config: Config) {
        let rules = Rules::of(&config);
        let limits = Limits::of(&config);
        self.config.store(config);
        // Relaxed: each word is self-contained and read on its own; the
        // lock orders whole reconfigurations.
        self.hot.rules.store(rules.packed(), Ordering::Relaxed);
        // Relaxed: as above.
        self.hot.limits.store(limits.packed(), Ordering::Relaxed);
        let mut w = self.load();
        loop {
            let want = rules.flags(w, self.windows.latency().is_some());
            if want == w {
                return;
            }
            // AcqRel: part of the state word's chain of CASes.
            match self.hot.word.compare_exchange_weak(w.0, want.0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(actual) => w = Word(actual),
            }
        }
    }

    /// Adds a transition listener at run time; it sees the transitions
    /// that happen after it is added.
    ///
    /// Who runs listeners: the thread whose call made the transition, right
    /// after it, or, if another thread is delivering at that moment, that
    /// thread or the next call on the breaker (any thread). Events arrive in
    /// order, one at a time, never while the breaker holds anything; a call
    /// is handed at most 8 events. A listener may call the breaker (read its
    /// state, even make calls); it must not block for long, since it runs
    /// on a caller's thread. A panicking listener is caught.
    pub fn on_transition(&self, f: impl Fn(&Transition) + Send + Sync + 'static) {
        if self.events.add(Arc::new(f), || self.load().generation()) && !self.events.is_shared() {
            events::flag(&self.hot.word, true);
        }
    }

    /// Delivers waiting transition events to the listeners now (at most 8),
    /// on this thread. Calls do this on their own; this is for a breaker
    /// that may see no more calls for a while.
    pub fn deliver_events(&self) {
        events::flag(&self.hot.word, false);
        if self.events.deliver(|| self.load().generation()) && !self.events.is_shared() {
            events::flag(&self.hot.word, true);
        }
    }

    /// Counts a call that ran past its timeout (the timeout path only).
    pub(crate) fn count_timeout(&self) {
        self.cold.stats.timeout();
    }
}
