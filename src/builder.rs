//! Building a breaker: the builder's setters and the initial words.

use crate::breaker::{CircuitBreaker, Cold, Hot, Limits, Rules};
use crate::clock::Clock;
use crate::config::{default_stripes, Config, ConfigError, HalfOpenPolicy};
use crate::era::Ext;
use crate::events::{Events, Listener, Ring, Transition};
use crate::name::Name;
use crate::state::{State, Word};
use crate::sync::{ArcCell, AtomicU64, Mutex, Ordering};
use crate::window::Windows;
use crate::words::{Placer, Words};
use crossbeam_utils::CachePadded;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

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
    pub(crate) config: Config,
    pub(crate) clock: Option<Clock>,
    pub(crate) stripes: Option<u32>,
    listeners: Vec<Listener>,
    pub(crate) name: Name,
    pub(crate) record_latency: bool,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("stripes", &self.stripes)
            .finish()
    }
}

/// Setters that put their one argument into one `Config` field.
macro_rules! config_setters {
    ($( $(#[$doc:meta])* $name:ident($arg:ident: $ty:ty) => $field:ident; )*) => {$(
        $(#[$doc])*
        pub fn $name(mut self, $arg: $ty) -> Self {
            self.config.$field = $arg;
            self
        }
    )*};
}

impl Builder {
    pub(crate) fn new() -> Builder {
        Builder {
            config: Config::default(),
            clock: None,
            stripes: None,
            listeners: Vec::new(),
            name: Name::EMPTY,
            record_latency: false,
        }
    }

    /// Names the breaker: a `&'static str` costs nothing, a `String` is
    /// allocated once here. [`CircuitBreaker::name`] reads it back.
    ///
    /// ```
    /// use nanobreaker::CircuitBreaker;
    /// let host = String::from("db-1");
    /// let cb = CircuitBreaker::builder().name(host).build().unwrap();
    /// assert_eq!(cb.name(), "db-1");
    /// ```
    pub fn name(mut self, name: impl Into<Name>) -> Self {
        self.name = name.into();
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }
    config_setters! {
        /// Trip at this failure rate, in (0, 1].
        failure_rate_threshold(rate: f64) => failure_rate_threshold;
        /// Judge no rate before this many outcomes.
        minimum_calls(n: u32) => minimum_calls;
        /// The window the rates are computed over.
        window(window: crate::Window) => window;
        /// How long to stay open after the first trip.
        open_wait(wait: Duration) => open_wait;
        /// Spread each open wait by up to this fraction either way, in [0, 1).
        jitter(fraction: f64) => jitter;
        /// How many probes half-open admits.
        half_open_permits(n: u32) => half_open_permits;
        /// End a trial still undecided after this.
        half_open_max_wait(wait: Duration) => half_open_max_wait;
        /// How a half-open trial is decided.
        half_open_policy(policy: HalfOpenPolicy) => half_open_policy;
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
    /// Multiply the open wait by `multiplier` per failed trial, up to `max`.
    pub fn backoff(mut self, multiplier: f64, max: Duration) -> Self {
        self.config.backoff_multiplier = multiplier;
        self.config.max_open_wait = max;
        self
    }
    /// The clock (default [`Clock::precise`]; [`Clock::coarse`] for the
    /// cheapest rejections, [`Clock::mock`] in tests).
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
    /// Record how long each call takes, in a histogram per stripe (see
    /// [`CircuitBreaker::latency`]). Every call is then timed: two clock
    /// reads per call, as with a slow-call rule. Default off.
    pub fn record_latency(mut self, on: bool) -> Self {
        self.record_latency = on;
        self
    }
    /// Calls `f` on every transition, in order, off the hot path (see
    /// [`CircuitBreaker::on_transition`] for who runs it).
    pub fn on_transition(mut self, f: impl Fn(&Transition) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(f));
        self
    }

    /// Checks the configuration and builds the breaker.
    pub fn build(self) -> Result<CircuitBreaker, ConfigError> {
        let stripes = self.checked()?;
        let clock = self.clock.clone().unwrap_or_default();
        let origin = clock.raw();
        let words = place(&self.config, stripes, self.record_latency, &mut Placer::Heap);
        Ok(self.assemble(words, clock, origin))
    }

    /// Validates the config and the stripe count; returns the stripes.
    pub(crate) fn checked(&self) -> Result<u32, ConfigError> {
        self.config.validate()?;
        let stripes = self.stripes.unwrap_or_else(default_stripes);
        if stripes == 0 || stripes > crate::config::MAX_STRIPES {
            return Err(ConfigError::new("stripes", "must be 1..=64"));
        }
        Ok(stripes)
    }

    /// The breaker over `words` (on the heap, or in a shared region).
    pub(crate) fn assemble(self, words: Placed, clock: Clock, origin: u64) -> CircuitBreaker {
        let Placed { hot, cold, windows, ring } = words;
        // Listeners hear what comes after now: a region opened by other
        // processes has moved on. (Relaxed: the file lock published its
        // words to this process.)
        let next = Word(hot.word.load(Ordering::Relaxed)).generation() + 1;
        CircuitBreaker {
            hot,
            id: crate::sync::next_id(),
            cold,
            windows,
            config: ArcCell::new(self.config),
            reconfiguring: Mutex::new(()),
            clock,
            origin,
            events: Events::new(self.listeners, ring, next),
            name: self.name,
            #[cfg(all(feature = "shared", unix, not(loom)))]
            region: None,
        }
    }
}

/// A breaker's words, placed.
pub(crate) struct Placed {
    pub(crate) hot: Words<CachePadded<Hot>>,
    pub(crate) cold: Words<Cold>,
    pub(crate) windows: Windows,
    /// A shared breaker's ring of transition records (an in-process one
    /// makes its ring with its first listener).
    pub(crate) ring: Option<Words<Ring>>,
}

/// Places the words of a breaker with `config`, `stripes` stripes and a
/// latency histogram if `record_latency`, with their initial values.
pub(crate) fn place(config: &Config, stripes: u32, record_latency: bool, placer: &mut Placer) -> Placed {
    let rules = Rules::of(config);
    // Generation 0 is Closed from time 0: its copies (parity 0) start as
    // zero words, which are its tags with nothing counted.
    let word = rules.flags(Word::INITIAL, record_latency);
    let hot = Hot {
        word: AtomicU64::new(word.0),
        rules: AtomicU64::new(rules.packed()),
        limits: AtomicU64::new(Limits::of(config).packed()),
        ext: [AtomicU64::new(Ext::new(0, State::Closed, 0).0), AtomicU64::new(u64::MAX)],
        probes: [AtomicU64::new(0), AtomicU64::new(0)],
        clean: Default::default(),
    };
    Placed {
        hot: placer.one(CachePadded::new(hot)),
        cold: placer.one(Cold::default()),
        windows: Windows::new(config.window, stripes, record_latency, placer),
        ring: placer.is_region().then(|| placer.one(Ring::new())),
    }
}
