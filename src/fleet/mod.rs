//! Breakers that agree across a fleet of hosts through Redis (feature
//! `redis`). This is the design note; the code follows it.
//!
//! ```no_run
//! use nanobreaker::{CircuitBreaker, Fleet};
//! use std::sync::Arc;
//! // In every instance of the service:
//! let fleet = Fleet::builder("redis://10.0.0.5:6379/").build()?;
//! let orders = Arc::new(CircuitBreaker::builder().name("orders-db").build()?);
//! fleet.join(&orders)?;
//! // Calls stay local: no network on this path.
//! if let Ok(permit) = orders.try_acquire() {
//!     permit.success();
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The model
//!
//! Every instance keeps its own breaker, with its own rules, and every call
//! stays on it: `try_acquire` and the outcomes are the engine's local
//! atomics, the same instructions with the feature on or off. One thread
//! per [`Fleet`] (`nanobreaker-fleet`) talks to Redis, once per `interval`
//! (default 100 ms), with one round trip for all of its breakers: for each,
//! one call of one Lua script (`tick.lua`), atomic in Redis. The script
//!
//! 1. adds what this instance recorded since its last tick (calls,
//!    failures, slow calls: differences of the breaker's running totals)
//!    to the fleet's window, a time window of 10 buckets kept in Redis;
//! 2. judges the fleet's window by the breaker's own rules
//!    (`minimum_calls`, `failure_rate_threshold`,
//!    `slow_call_rate_threshold`) and trips the fleet's breaker;
//! 3. runs the fleet's half-open trial (below);
//! 4. answers the fleet's state: generation, state, time left, whether
//!    this instance holds the trial;
//! 5. when it tripped, closed, reopened or reset the fleet's breaker,
//!    publishes the breaker's name on `ns:events`. Each `Fleet` has a
//!    second thread (`nanobreaker-fleet-events`) subscribed there, which
//!    wakes the fleet thread for a tick at once: a trip reaches every
//!    listening instance in a round trip or two, and the interval is only
//!    the bound when a message is lost (pub/sub is best effort).
//!
//! The instance then makes its breaker agree (see `member.rs`):
//!
//! - fleet `Open`, or `HalfOpen` held by another instance: the local
//!   breaker is *held* open: it enters `Open` (reason [`Reason::Fleet`](crate::Reason::Fleet))
//!   with a deadline of the fleet's time left plus a margin of three
//!   intervals and the Redis timeout, renewed at each tick. A hold is a
//!   lease: if the fleet thread stops renewing it (Redis is unreachable,
//!   the thread is starved) the deadline passes and the breaker goes back
//!   to deciding alone.
//! - fleet `HalfOpen` held by this instance: the local breaker starts its
//!   trial (`HalfOpen`, reason `Fleet`) and runs it by its own rules, with
//!   its own `half_open_permits`; when the local trial ends (closed or
//!   reopened) the next tick reports it and the fleet follows.
//! - fleet `Closed`: a breaker the fleet held is closed (reason `Fleet`).
//!   A breaker that tripped on its own numbers is left alone: each
//!   instance keeps its local protection.
//!
//! Operator states (`Disabled`, `MetricsOnly`, `ForcedOpen`) are never
//! touched, and a breaker in one does not claim trials. While the fleet is
//! open its decision wins: a breaker that tripped alone takes the fleet's
//! deadline, a `reset` is held again at the next tick. When the fleet
//! closes, it closes only a breaker still in the generation it held: one
//! that something else moved since is left to its own rules.
//!
//! # Half-open across the fleet
//!
//! When the fleet's open wait has passed, the first instance that has
//! demand (it rejected calls since its last tick) claims the trial: the
//! script makes it the owner, with a lease of `half_open_max_wait` plus a
//! margin. Every other instance stays held. So a trial sends at most
//! `half_open_permits` probes fleet-wide, from one instance, whatever the
//! fleet's size. (An owner cut off from Redis goes on with its trial as its
//! own while the next owner runs the next: that trial may see twice the
//! permits.) The owner's verdict closes or reopens the fleet (a
//! reopening raises the backoff level, as one breaker does). If the owner
//! dies or is cut off, its lease expires and the next instance with demand
//! starts a new trial: a lost owner delays recovery by one lease, never
//! wedges it.
//!
//! # Time
//!
//! Every fleet time (open until, lease until, the window's buckets) is
//! Redis's clock (`TIME`), read inside the script: hosts' clocks never
//! meet. The instance turns "time left" into its own clock's deadline.
//!
//! # Redis down, slow or partitioned
//!
//! Calls never wait for Redis. A tick that fails (connection refused, a
//! reply later than `timeout`) counts a degradation, logs it (`tracing`,
//! target `nanobreaker::fleet`) and releases every hold at once: a held
//! breaker keeps the fleet's last known deadline, or two intervals from
//! now if that is later (so that one slow reply does not send every
//! instance into a trial of its own at once), and then decides alone, as a
//! breaker without a fleet. Outcomes recorded
//! meanwhile are not sent later (they would land in a later bucket and
//! trip the fleet on old news). The thread reconnects at the next tick;
//! the first tick that succeeds rejoins.
//!
//! # Nothing in Redis is trusted
//!
//! The script and the instance both check what they read: a key of
//! another type, a state that is not 0, 1 or 2, a generation that is not
//! an integer below 2^53, a level above 15, a deadline further ahead than
//! four times the longest wait (`max_open_wait` open, the lease half-open)
//! and a minute (loose, so that instances whose configs differ during a
//! rolling deploy agree): the script starts the fleet's breaker afresh
//! (closed, next generation); counts that are not counts empty the window.
//! A reply out of range makes that breaker decide alone for the tick.
//! Every key expires (`PEXPIRE`, refreshed by each tick): a fleet that
//! goes away leaves nothing behind. Generations are compared for equality
//! only, never ordered, so a fleet state that expired and started again
//! at 0 is one more change, not a horizon.
//!
//! # Keys
//!
//! With namespace `ns` (default `nanobreaker`) and breaker name `name`:
//!
//! | key                    | type | holds                                          |
//! |------------------------|------|------------------------------------------------|
//! | `ns:{name}:state`      | hash | `gen`, `state`, `until` (ms), `level`, `owner` |
//! | `ns:{name}:window`     | hash | `<bucket>:c`, `:f`, `:s` for the current `gen` |
//! | `ns:events`            | channel | the name of a breaker the fleet moved   |
//!
//! The braces are a Redis Cluster hash tag: one breaker's keys live on one
//! node. (The client is redis-rs's plain connection: a standalone Redis or
//! a primary; the keys are ready for a cluster client.) The window is
//! deleted at every fleet transition. Under an `allkeys-*` eviction policy
//! Redis may evict the state key of an open fleet: the fleet then starts
//! closed, as after any expiry.
//!
//! # Limits
//!
//! - A fleet trial is claimed by an instance that turned calls away since
//!   its last tick. Callers that read `state()` and never call
//!   `try_acquire` while it is open create no demand: the fleet stays open
//!   until one does.
//! - [`Fleet::sync`] and dropping a [`Fleet`] wait for the thread's tick in
//!   progress, which is bounded by `timeout` once connected; resolving the
//!   host name of the URL is not (use an address, or a resolver you trust).
//!
//! # What the fleet does not share
//!
//! `consecutive_failures` stays local (a run of failures is one
//! connection's story). A count window's breaker is judged in the fleet
//! by a time window of [`FleetBuilder::window`] (default 10 s). Jitter is
//! not applied to the fleet's open wait. Every instance should run the
//! same config for a breaker: each tick judges by the config of the
//! instance that sends it.

mod hold;
mod member;
mod wire;

use crate::breaker::CircuitBreaker;
use crate::registry::Registry;
use member::Member;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Settings of a [`Fleet`]; [`Fleet::builder`] makes one.
///
/// ```
/// use nanobreaker::{Fleet, FleetError};
/// use std::time::Duration;
/// // Redis need not be up: until it answers, every breaker decides alone.
/// let fleet = Fleet::builder("redis://127.0.0.1:6379/")
///     .namespace("checkout")
///     .interval(Duration::from_millis(250))
///     .build()?;
/// let too_fast = Fleet::builder("redis://127.0.0.1:6379/").interval(Duration::ZERO).build();
/// assert_eq!(too_fast.unwrap_err(), FleetError::Setting("interval"));
/// # Ok::<(), FleetError>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct FleetBuilder {
    url: String,
    namespace: String,
    interval: Duration,
    timeout: Duration,
    window: Duration,
    instance: Option<String>,
}

impl FleetBuilder {
    /// The prefix of every key (default `nanobreaker`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// How often the fleet thread talks to Redis (default 100 ms, from
    /// 1 ms to 1 hour): each instance sends one command per breaker per
    /// interval, in one round trip, and one more round trip when a fleet
    /// transition is announced (at most one per tenth of an interval). A
    /// trip reaches every listening instance at once, and every instance
    /// within about one interval even if the announcement is lost.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// How long to wait for Redis to connect or answer before the tick
    /// fails and the breakers decide alone (default 100 ms, from 1 ms to
    /// 1 minute).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The fleet's window for a breaker with a count window (default 10 s,
    /// from 10 ms to 1 day). A time window's breaker uses its own length.
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// This instance's name in Redis (a trial's owner). Default: the
    /// process id and a random number. Two instances must not share one.
    pub fn instance(mut self, id: impl Into<String>) -> Self {
        self.instance = Some(id.into());
        self
    }

    /// Checks the settings and starts the fleet thread. Redis is not
    /// contacted here: the first tick connects.
    pub fn build(self) -> Result<Fleet, FleetError> {
        let within = |d: Duration, lo: Duration, hi: Duration| lo <= d && d <= hi;
        let ms = Duration::from_millis;
        if !within(self.interval, ms(1), ms(3_600_000)) {
            return Err(FleetError::Setting("interval"));
        }
        if !within(self.timeout, ms(1), ms(60_000)) {
            return Err(FleetError::Setting("timeout"));
        }
        if !within(self.window, ms(10), ms(86_400_000)) {
            return Err(FleetError::Setting("window"));
        }
        if self.namespace.is_empty() {
            return Err(FleetError::Setting("namespace"));
        }
        let client = redis::Client::open(self.url.as_str()).map_err(|e| FleetError::Url(e.to_string()))?;
        let id = self.instance.clone().unwrap_or_else(random_id);
        if id.is_empty() {
            return Err(FleetError::Setting("instance"));
        }
        let shared = Arc::new(Shared {
            control: Mutex::new(Control::default()),
            wake: Condvar::new(),
            status: Mutex::new(FleetStatus::default()),
        });
        let worker = Worker {
            shared: Arc::clone(&shared),
            client,
            id,
            channel: wire::channel(&self.namespace),
            settings: self,
            con: None,
            members: Vec::new(),
        };
        let listener = Listener {
            shared: Arc::clone(&shared),
            client: worker.client.clone(),
            channel: worker.channel.clone(),
            timeout: worker.settings.timeout,
            retry: worker.settings.interval,
        };
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| FleetError::Redis(format!("cannot start the {name} thread: {e}")))
        };
        let thread = spawn("nanobreaker-fleet", Box::new(move || worker.run()))?;
        let fleet = Fleet { shared, thread: Some(thread) };
        spawn("nanobreaker-fleet-events", Box::new(move || listener.run()))?;
        Ok(fleet)
    }
}

impl fmt::Debug for FleetBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the URL: it may hold a password.
        f.debug_struct("FleetBuilder")
            .field("namespace", &self.namespace)
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("window", &self.window)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

fn random_id() -> String {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    format!("{}-{random:016x}", std::process::id())
}

/// Breakers of this instance that agree with the same breakers of every
/// other instance through Redis. See the [module docs](self) for the model.
///
/// Dropping the fleet stops its thread and hands every breaker it held
/// back to its own rules.
pub struct Fleet {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// What a [`Fleet`] has done, for metrics and health checks.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct FleetStatus {
    /// The last tick with breakers to send reached Redis.
    pub connected: bool,
    /// Ticks that reached Redis (a tick with no breaker to send is not
    /// counted, nor does it contact Redis).
    pub ticks: u64,
    /// Ticks that did not (each released the breakers to their own rules).
    pub failed_ticks: u64,
    /// Times the fleet went from connected to not.
    pub degradations: u64,
    /// Commands sent (one per breaker per tick, in one round trip).
    pub commands: u64,
    /// Fleet trips decided by this instance's ticks.
    pub trips: u64,
    /// Fleet trials this instance claimed (each ran here, alone, or was
    /// reported failed at once if the breaker could not start it).
    pub trials: u64,
    /// Replies for one breaker that did not check out: that breaker
    /// decided alone for the tick.
    pub bad_replies: u64,
    /// The breakers taking part at the last tick.
    pub breakers: usize,
    /// The events thread is subscribed: fleet transitions wake this
    /// instance at once instead of at its next tick.
    pub listening: bool,
    /// Why the last failed tick failed.
    pub last_error: Option<String>,
}

/// Why a [`Fleet`] could not be built, joined or synced.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FleetError {
    /// The Redis URL does not parse.
    Url(String),
    /// A setting out of range (its name).
    Setting(&'static str),
    /// A breaker without a name cannot be matched across instances.
    Unnamed,
    /// A breaker of this name already takes part.
    Duplicate(String),
    /// A tick did not reach Redis, or its reply did not check out.
    Redis(String),
    /// A breaker in shared memory: each process of its host would send the
    /// same totals and drive the same words. Join it from a registry of
    /// in-process breakers instead.
    Shared,
    /// The fleet thread has stopped (it panicked).
    Stopped,
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetError::Url(e) => write!(f, "invalid Redis URL: {e}"),
            FleetError::Setting(s) => write!(f, "fleet setting `{s}` is out of range"),
            FleetError::Unnamed => f.write_str("a breaker needs a name to join a fleet"),
            FleetError::Duplicate(n) => write!(f, "a breaker named {n:?} already takes part"),
            FleetError::Redis(e) => write!(f, "fleet tick failed: {e}"),
            FleetError::Shared => f.write_str("a shared-memory breaker cannot join a fleet"),
            FleetError::Stopped => f.write_str("the fleet thread has stopped"),
        }
    }
}

impl std::error::Error for FleetError {}

impl Fleet {
    /// Settings for a fleet whose Redis is at `url` (`redis://host:port/db`,
    /// `redis://:password@host/`, `redis+unix:///path`).
    pub fn builder(url: impl Into<String>) -> FleetBuilder {
        FleetBuilder {
            url: url.into(),
            namespace: "nanobreaker".into(),
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(100),
            window: Duration::from_secs(10),
            instance: None,
        }
    }

    /// `breaker` takes part from the next tick, under its name. The fleet
    /// holds it weakly: dropping the breaker ends its part.
    pub fn join(&self, breaker: &Arc<CircuitBreaker>) -> Result<(), FleetError> {
        #[cfg(all(feature = "shared", unix))]
        if breaker.region.is_some() {
            return Err(FleetError::Shared);
        }
        if breaker.name().is_empty() {
            return Err(FleetError::Unnamed);
        }
        let mut c = self.shared.control();
        c.sources.retain(|s| s.alive());
        let taken = c.sources.iter().any(|s| match s {
            Source::Breaker(w) => w.upgrade().is_some_and(|b| b.name() == breaker.name()),
            Source::Registry(_) => false,
        });
        if taken {
            return Err(FleetError::Duplicate(breaker.name().to_string()));
        }
        c.sources.push(Source::Breaker(Arc::downgrade(breaker)));
        Ok(())
    }

    /// Every breaker of `registry`, now and later, takes part (a breaker
    /// of the same name joined with [`join`](Self::join) takes precedence).
    pub fn join_registry(&self, registry: &Arc<Registry>) {
        self.shared.control().sources.push(Source::Registry(Arc::downgrade(registry)));
    }

    /// Ends the part of the breaker named `name` (joined with
    /// [`join`](Self::join)) at the next tick, handing it back to its own
    /// rules.
    pub fn leave(&self, name: &str) {
        self.shared.control().sources.retain(|s| match s {
            Source::Breaker(w) => w.upgrade().is_some_and(|b| b.name() != name),
            Source::Registry(_) => true,
        });
    }

    /// Runs a tick now and waits for it: what the thread does every
    /// interval. For tests and for a prompt start. Not from a transition
    /// listener: the fleet thread itself may be the one delivering.
    pub fn sync(&self) -> Result<(), FleetError> {
        let mut c = self.shared.control();
        c.requested += 1;
        let want = c.requested;
        self.shared.wake.notify_all();
        while c.done < want && !c.dead {
            c = self.shared.wake.wait(c).unwrap_or_else(|e| e.into_inner());
        }
        if c.done < want {
            return Err(FleetError::Stopped);
        }
        c.last.clone().unwrap_or(Ok(()))
    }

    /// What the fleet has done so far.
    pub fn status(&self) -> FleetStatus {
        lock(&self.shared.status).clone()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.shared.control().stop = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet").field("status", &self.status()).finish_non_exhaustive()
    }
}

enum Source {
    Breaker(Weak<CircuitBreaker>),
    Registry(Weak<Registry>),
}

impl Source {
    fn alive(&self) -> bool {
        match self {
            Source::Breaker(w) => w.strong_count() > 0,
            Source::Registry(w) => w.strong_count() > 0,
        }
    }
}

#[derive(Default)]
struct Control {
    sources: Vec<Source>,
    stop: bool,
    /// The fleet thread has ended.
    dead: bool,
    requested: u64,
    done: u64,
    /// The last tick's result (`None`: no breaker took part).
    last: Option<Result<(), FleetError>>,
}

struct Shared {
    control: Mutex<Control>,
    wake: Condvar,
    status: Mutex<FleetStatus>,
}

impl Shared {
    fn control(&self) -> MutexGuard<'_, Control> {
        lock(&self.control)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing under these locks can panic half-way through a change.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The events thread: listens on the namespace's channel and wakes the
/// fleet thread for a tick at once when any instance's tick changed a
/// fleet breaker (a trip reaches every instance in a round trip, not an
/// interval). Best effort: without it, ticks still come every interval.
struct Listener {
    shared: Arc<Shared>,
    client: redis::Client,
    channel: String,
    timeout: Duration,
    retry: Duration,
}

impl Listener {
    /// How often a blocked read looks at whether the fleet was dropped.
    const POLL: Duration = Duration::from_millis(100);
    /// A subscription is renewed this often: one that a NAT or a proxy
    /// dropped without a word would otherwise go deaf for good.
    const RENEW: Duration = Duration::from_secs(30);
    /// The longest wait between attempts to subscribe.
    const MAX_RETRY: Duration = Duration::from_secs(10);

    fn run(self) {
        let mut retry = self.retry;
        while !self.shared.control().stop {
            match self.listen() {
                Ok(()) => retry = self.retry,
                Err(e) => {
                    tracing::debug!(target: "nanobreaker::fleet", error = %e, "events channel unavailable; ticks go on every interval");
                    // Whole waits (the fleet thread's wake-ups are not
                    // for us), doubling up to MAX_RETRY.
                    let until = Instant::now() + retry;
                    let mut c = self.shared.control();
                    while !c.stop && Instant::now() < until {
                        let left = until.saturating_duration_since(Instant::now());
                        c = self.shared.wake.wait_timeout(c, left).unwrap_or_else(|e| e.into_inner()).0;
                    }
                    retry = (retry * 2).min(Self::MAX_RETRY.max(self.retry));
                }
            }
        }
    }

    /// Subscribes and wakes the fleet thread on each message, at most once
    /// per tenth of an interval (at most 100 ms): a burst of transitions,
    /// or of messages from anyone who may publish there, is one tick.
    /// Returns to renew the subscription.
    fn listen(&self) -> redis::RedisResult<()> {
        let mut con = self.client.get_connection_with_timeout(self.timeout)?;
        con.set_read_timeout(Some(self.timeout))?;
        let mut events = con.as_pubsub();
        events.subscribe(&self.channel)?;
        events.set_read_timeout(Some(Self::POLL))?;
        lock(&self.shared.status).listening = true;
        let (start, gap) = (Instant::now(), (self.retry / 10).min(Self::POLL));
        let (mut last, mut pending): (Option<Instant>, bool) = (None, false);
        let result = loop {
            if self.shared.control().stop || start.elapsed() >= Self::RENEW {
                break Ok(());
            }
            match events.get_message() {
                Ok(_) => pending = true,
                Err(e) if e.is_timeout() => {}
                Err(e) => break Err(e),
            }
            if pending && last.is_none_or(|t| t.elapsed() >= gap) {
                (last, pending) = (Some(Instant::now()), false);
                self.shared.control().requested += 1;
                self.shared.wake.notify_all();
            }
        };
        lock(&self.shared.status).listening = false;
        result
    }
}

/// The fleet thread's own state.
struct Worker {
    shared: Arc<Shared>,
    client: redis::Client,
    id: String,
    settings: FleetBuilder,
    con: Option<(redis::Connection, String)>,
    /// The namespace's events channel (`wire::channel`).
    channel: String,
    /// One per breaker taking part: its member and its keys.
    members: Vec<(Member, [String; 2])>,
}

/// Marks the fleet thread gone however it ends (a panic included), so
/// that `sync` never waits for it.
struct Finished(Arc<Shared>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.control().dead = true;
        self.0.wake.notify_all();
    }
}

impl Worker {
    fn run(mut self) {
        let _finished = Finished(Arc::clone(&self.shared));
        let mut next = Instant::now();
        loop {
            let mut c = self.shared.control();
            loop {
                if c.stop {
                    drop(c);
                    self.members.iter_mut().for_each(|(m, _)| m.release(Duration::ZERO));
                    return;
                }
                let now = Instant::now();
                if c.requested > c.done || now >= next {
                    break;
                }
                c = self.shared.wake.wait_timeout(c, next - now).unwrap_or_else(|e| e.into_inner()).0;
            }
            let (requested, breakers) = (c.requested, self.breakers(&mut c));
            drop(c);
            next = Instant::now() + self.settings.interval;
            // Strong for this tick only.
            let live = self.update_members(breakers);
            let result = self.tick(&live);
            drop(live);
            self.record(&result);
            let mut c = self.shared.control();
            c.done = requested;
            c.last = result;
            self.shared.wake.notify_all();
        }
    }

    /// The breakers taking part now, one per name.
    fn breakers(&self, c: &mut Control) -> Vec<Arc<CircuitBreaker>> {
        c.sources.retain(Source::alive);
        let mut out: Vec<Arc<CircuitBreaker>> = Vec::new();
        let mut add = |b: Arc<CircuitBreaker>| {
            if !b.name().is_empty() && !out.iter().any(|o| o.name() == b.name()) {
                out.push(b);
            }
        };
        // Breakers joined by name first: they win over a registry's of the
        // same name.
        for s in &c.sources {
            if let Source::Breaker(w) = s {
                w.upgrade().into_iter().for_each(&mut add);
            }
        }
        for s in &c.sources {
            if let Some(r) = match s {
                Source::Registry(w) => w.upgrade(),
                Source::Breaker(_) => None,
            } {
                r.for_each_claimed(&mut add);
            }
        }
        out
    }

    /// Keeps a member per breaker, in the order of `breakers` (returned):
    /// a breaker gone (or replaced under its name) is handed back to its
    /// own rules first.
    fn update_members(&mut self, breakers: Vec<Arc<CircuitBreaker>>) -> Vec<Arc<CircuitBreaker>> {
        let mut old: Vec<(Member, [String; 2])> = std::mem::take(&mut self.members);
        for b in &breakers {
            let member = match old.iter().position(|(m, _)| m.is(b)) {
                Some(i) => old.swap_remove(i),
                None => (Member::new(b), wire::keys(&self.settings.namespace, b.name())),
            };
            self.members.push(member);
        }
        old.iter_mut().for_each(|(m, _)| m.release(Duration::ZERO));
        breakers
    }

    fn margin(&self) -> Duration {
        self.settings.interval * 3 + self.settings.timeout
    }

    /// One round trip for every member; on a failure every breaker is
    /// handed back to its own rules and the connection dropped.
    fn tick(&mut self, live: &[Arc<CircuitBreaker>]) -> Option<Result<(), FleetError>> {
        if self.members.is_empty() {
            return None;
        }
        let result = self.round_trip(live);
        if result.is_err() {
            self.con = None;
            let grace = self.settings.interval * 2;
            self.members.iter_mut().for_each(|(m, _)| m.release(grace));
        }
        Some(result)
    }

    fn round_trip(&mut self, live: &[Arc<CircuitBreaker>]) -> Result<(), FleetError> {
        let err = |e: redis::RedisError| FleetError::Redis(e.to_string());
        if self.con.is_none() {
            self.con = Some(wire::connect(&self.client, self.settings.timeout).map_err(err)?);
        }
        let margin = self.margin();
        let Some((con, sha)) = self.con.as_mut() else { unreachable!("connected above") };
        let mut pipe = redis::pipe();
        let t =
            wire::Tick { sha, id: &self.id, window: self.settings.window, margin, channel: &self.channel };
        for ((m, keys), cb) in self.members.iter_mut().zip(live) {
            let send = m.send(cb);
            wire::tick(&mut pipe, &t, cb.name(), keys, &cb.config(), &send);
        }
        lock(&self.shared.status).commands += self.members.len() as u64;
        let replies: Vec<Vec<i64>> = pipe.query(con).map_err(err)?;
        if replies.len() != self.members.len() {
            let n = (replies.len(), self.members.len());
            return Err(FleetError::Redis(format!("{} replies to {} ticks", n.0, n.1)));
        }
        let mut status = lock(&self.shared.status);
        for (((m, _), cb), r) in self.members.iter_mut().zip(live).zip(replies) {
            match wire::Reply::parse(r) {
                Ok(reply) => {
                    status.trips += u64::from(matches!(
                        reply.happened,
                        wire::Happened::TrippedOnFailures | wire::Happened::TrippedOnSlowCalls
                    ));
                    status.trials += u64::from(reply.happened == wire::Happened::TrialClaimed);
                    m.follow(cb, &reply, margin);
                }
                Err(e) => {
                    // This breaker alone decides alone; the others agree.
                    m.release(self.settings.interval * 2);
                    status.bad_replies += 1;
                    status.last_error = Some(format!("reply out of range for {}: {:?}", cb.name(), e.0));
                }
            }
        }
        Ok(())
    }

    fn record(&self, result: &Option<Result<(), FleetError>>) {
        let mut s = lock(&self.shared.status);
        s.breakers = self.members.len();
        match result {
            None => {}
            Some(Ok(())) => {
                if !s.connected && s.ticks + s.failed_ticks > 0 {
                    tracing::info!(target: "nanobreaker::fleet", "Redis reachable again: the fleet's breakers agree again");
                }
                s.connected = true;
                s.ticks += 1;
            }
            Some(Err(e)) => {
                if s.connected || s.ticks + s.failed_ticks == 0 {
                    s.degradations += 1;
                    tracing::warn!(target: "nanobreaker::fleet", error = %e, "Redis unreachable: each breaker decides alone");
                }
                s.connected = false;
                s.failed_ticks += 1;
                s.last_error = Some(e.to_string());
            }
        }
    }
}
