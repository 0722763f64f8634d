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

mod builder;
mod hold;
mod member;
mod threads;
mod wire;

pub use builder::FleetBuilder;

use crate::breaker::CircuitBreaker;
use crate::registry::Registry;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;

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
