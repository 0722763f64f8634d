//! Transition events and their delivery to listeners.
//!
//! # Who runs listeners
//!
//! A transition is decided by one compare-and-swap on the state word, by a
//! thread making a call. That thread writes the event into a ring of 64
//! slots (slot `generation % 64`) and then, if no other thread is
//! delivering, delivers: events in generation order, each to every
//! listener in the order they were added, outside any lock. A thread
//! delivers at most 8 events per call (its own and earlier ones still
//! waiting); if more wait, it sets the state word's `EV` flag and the next
//! call, on whichever thread, delivers the next 8. So a listener runs on
//! some thread making a call on the breaker, soon after the transition,
//! never while the engine holds anything, and no call is handed more than
//! 8 events' worth of listener work. `CircuitBreaker::deliver_events`
//! delivers on demand.
//!
//! If listeners fall more than 64 events behind, the oldest are dropped
//! and counted (`Metrics::events_lost`); delivery goes on from the oldest
//! still in the ring. A listener that panics is caught; the breaker and
//! the other listeners go on.
//!
//! # The ring
//!
//! Events go through a ring of 64 records (`ring.rs`), keyed by
//! generation; each queue of listeners reads it from its own cursor, one
//! word `[next generation | busy]` taken by compare-and-swap; nothing
//! waits on it. An in-process breaker makes its ring with its first
//! listener; until then a transition writes nothing. A shared breaker's
//! ring is in its region, written by every process's transitions; each
//! process's listeners read it from their own cursor, on a call that makes
//! a transition and on the process's watcher thread (see `shared/`).

mod ring;

use crate::state::{State, Word, EVENTS};
use crate::sync::{fence, ArcCell, AtomicU64, OnceBox, Ordering};
use crate::words::Words;
pub(crate) use ring::Ring;
use ring::Slot;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

/// Why a breaker changed state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
#[non_exhaustive]
pub enum Reason {
    /// The failure rate reached `failure_rate_threshold`.
    FailureRate = 0,
    /// The slow-call rate reached `slow_call_rate_threshold`.
    SlowCallRate = 1,
    /// `consecutive_failures` failures in a row.
    ConsecutiveFailures = 2,
    /// The open wait passed and a call came: the trial begins.
    OpenWaitElapsed = 3,
    /// The half-open probes succeeded.
    ProbesSucceeded = 4,
    /// The half-open probes failed.
    ProbesFailed = 5,
    /// The half-open probes were slow.
    ProbesSlow = 6,
    /// The trial was still undecided after `half_open_max_wait`.
    HalfOpenTimeout = 7,
    /// `reset()` or `transition_to()`.
    Manual = 8,
    /// The fleet's breaker (see `Fleet`, feature `redis`) opened, started
    /// its trial here, or closed.
    Fleet = 9,
}

impl Reason {
    /// Every reason, in the order of their values.
    pub const ALL: [Reason; 10] = [
        Reason::FailureRate,
        Reason::SlowCallRate,
        Reason::ConsecutiveFailures,
        Reason::OpenWaitElapsed,
        Reason::ProbesSucceeded,
        Reason::ProbesFailed,
        Reason::ProbesSlow,
        Reason::HalfOpenTimeout,
        Reason::Manual,
        Reason::Fleet,
    ];

    /// A short lowercase name.
    pub const fn name(self) -> &'static str {
        match self {
            Reason::FailureRate => "failure_rate",
            Reason::SlowCallRate => "slow_call_rate",
            Reason::ConsecutiveFailures => "consecutive_failures",
            Reason::OpenWaitElapsed => "open_wait_elapsed",
            Reason::ProbesSucceeded => "probes_succeeded",
            Reason::ProbesFailed => "probes_failed",
            Reason::ProbesSlow => "probes_slow",
            Reason::HalfOpenTimeout => "half_open_timeout",
            Reason::Manual => "manual",
            Reason::Fleet => "fleet",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One state change, as listeners see it.
///
/// ```
/// use nanobreaker::{CircuitBreaker, State, Reason};
/// use std::sync::{Arc, Mutex};
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let s = seen.clone();
/// let cb = CircuitBreaker::builder()
///     .on_transition(move |t| s.lock().unwrap().push((t.from, t.to, t.reason)))
///     .build()
///     .unwrap();
/// cb.transition_to(State::ForcedOpen);
/// assert_eq!(*seen.lock().unwrap(), [(State::Closed, State::ForcedOpen, Reason::Manual)]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transition {
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
    /// Why.
    pub reason: Reason,
    /// When, as time since the breaker was built (on its clock).
    pub at: Duration,
    /// The generation entered (bumped by every transition).
    pub generation: u64,
    /// For a trip by a rate ([`Reason::FailureRate`],
    /// [`Reason::SlowCallRate`]): what the window held when it tripped.
    /// `None` for the other reasons (and, rarely, if a writer preempted for
    /// 64 transitions spoiled the event's slot).
    pub window: Option<WindowCounts>,
}

/// What a window held when a rate tripped the breaker (see
/// [`Transition::window`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WindowCounts {
    /// Outcomes in the window.
    pub calls: u64,
    /// Failures among them.
    pub failures: u64,
    /// Slow calls among them.
    pub slow_calls: u64,
}

impl WindowCounts {
    /// Failures / calls (0 for an empty window).
    pub fn failure_rate(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.failures as f64 / self.calls as f64
        }
    }
}

/// Why a transition happens: its reason, and for a trip by a rate the
/// window that tripped it.
#[derive(Clone, Copy)]
pub(crate) struct Why {
    pub(crate) reason: Reason,
    pub(crate) window: Option<WindowCounts>,
}

impl From<Reason> for Why {
    fn from(reason: Reason) -> Why {
        Why { reason, window: None }
    }
}

/// A transition listener.
pub(crate) type Listener = Arc<dyn Fn(&Transition) + Send + Sync>;

/// Events one call delivers at most.
pub(crate) const BUDGET: usize = 8;

/// Listeners, their ring (in-process breakers) and their place in it.
struct Queue {
    listeners: ArcCell<Vec<Listener>>,
    /// The ring of an in-process breaker; a shared one's is in `Events`.
    own: Option<Box<Ring>>,
    /// `[next generation to deliver | busy]`.
    cursor: AtomicU64,
    /// Events this queue found lapped before it read them, or gave up
    /// waiting for (see `Events::skip_stalled`).
    lapped: AtomicU64,
    /// 1 + the generation `skip_stalled` last found unwritten (0: none).
    #[cfg_attr(not(all(feature = "shared", unix)), allow(dead_code))] // shared breakers only
    stalled: AtomicU64,
}

/// Listeners and, once there are any, their queue.
pub(crate) struct Events {
    /// A shared breaker's ring, in its region: written by every
    /// transition, listeners or not (other processes may have some).
    shared: Option<Words<Ring>>,
    queue: OnceBox<Queue>,
}

impl Queue {
    /// A queue delivering from generation `next`, or, with `None`, one
    /// whose cursor is held until `Events::add` sets it. `own`: it keeps
    /// its own ring (an in-process breaker).
    fn new(listeners: Vec<Listener>, next: Option<u64>, own: bool) -> Queue {
        Queue {
            listeners: ArcCell::new(listeners),
            own: own.then(|| Box::new(Ring::new())),
            cursor: AtomicU64::new(next.map_or(1, |n| n << 1)),
            lapped: AtomicU64::new(0),
            stalled: AtomicU64::new(0),
        }
    }

    /// Delivers up to `BUDGET` events of `ring` in order. Returns true if
    /// events still wait after spending the budget. `current` reads the
    /// state word's generation: a slot lapped by a generation past it is
    /// garbage (a hostile shared ring), not a lost event to step over, so
    /// heads from the future cannot send the cursor on for ever. (It is
    /// read afresh each time: a bound read once would go stale while this
    /// thread delivers, and an event written meanwhile would wait for good.)
    fn deliver(&self, ring: &Ring, current: &impl Fn() -> u64) -> bool {
        let mut budget = BUDGET;
        loop {
            // A SeqCst fence between a thread's last write (a head in
            // `Ring::write`, or the cursor freed below) and its look at the
            // other word: either the writer then sees the cursor free (and
            // delivers), or the thread that freed it, looking again, sees
            // the slot. No lost wake-up.
            fence(Ordering::SeqCst);
            // SeqCst: see the fence.
            let c = self.cursor.load(Ordering::SeqCst);
            if c & 1 != 0 {
                return false; // another thread delivers, and looks again when done
            }
            let mut next = c >> 1;
            if !pending(ring, next, current) {
                return false;
            }
            // SeqCst: as above.
            if self.cursor.compare_exchange(c, c | 1, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                continue;
            }
            let listeners = self.listeners.load();
            let _delivering = Delivering::enter();
            while budget > 0 {
                match ring.read(next) {
                    Slot::Waiting => break,
                    Slot::Lapped if next > current() => break,
                    Slot::Lapped => {
                        // Relaxed: a statistic.
                        self.lapped.fetch_add(1, Ordering::Relaxed);
                    }
                    Slot::Ready(e) => {
                        for l in listeners.iter() {
                            // A panicking listener must not take the breaker
                            // or the other listeners with it.
                            let _ = catch_unwind(AssertUnwindSafe(|| l(&e)));
                        }
                    }
                }
                next += 1;
                budget -= 1;
            }
            // SeqCst: see the load above.
            self.cursor.store(next << 1, Ordering::SeqCst);
            if budget == 0 {
                return pending(ring, next, current);
            }
            // Look again: an event written while the cursor was busy is
            // ours to deliver (its writer saw the cursor taken and left).
        }
    }
}

/// Whether generation `next`'s slot holds something to deliver or step
/// over: a record, or a later lap's (an event lost) if the state word has
/// reached `next` (else the lap is garbage from a hostile shared ring).
fn pending(ring: &Ring, next: u64, current: &impl Fn() -> u64) -> bool {
    match ring.read(next) {
        Slot::Ready(_) => true,
        Slot::Waiting => false,
        Slot::Lapped => next <= current(),
    }
}

/// Marks the calling thread as running listeners while it lives, so that
/// a listener that asks for delivery (`Events::deliver_all`) does not wait
/// for itself.
struct Delivering {
    /// The thread's mark before (unused under loom, which has no marks).
    #[cfg_attr(loom, allow(dead_code))]
    before: bool,
}

#[cfg(not(loom))]
thread_local! {
    static DELIVERING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Delivering {
    fn enter() -> Delivering {
        #[cfg(not(loom))]
        return Delivering { before: DELIVERING.with(|d| d.replace(true)) };
        #[cfg(loom)]
        Delivering { before: false }
    }

    /// Whether this thread is running listeners.
    #[cfg_attr(not(all(feature = "shared", unix)), allow(dead_code))] // shared breakers only
    fn here() -> bool {
        #[cfg(not(loom))]
        return DELIVERING.with(|d| d.get());
        #[cfg(loom)]
        false
    }
}

impl Drop for Delivering {
    /// Restores the mark: a listener's own call that delivered another
    /// breaker's events leaves this thread still delivering.
    fn drop(&mut self) {
        #[cfg(not(loom))]
        DELIVERING.with(|d| d.set(self.before));
    }
}

impl Events {
    /// Events for `listeners`, which hear from generation `next` on (a
    /// shared region's ring holds its earlier ones); `shared` is a shared
    /// breaker's ring.
    pub(crate) fn new(listeners: Vec<Listener>, shared: Option<Words<Ring>>, next: u64) -> Events {
        let own = shared.is_none();
        let events = Events { shared, queue: OnceBox::new() };
        if !listeners.is_empty() {
            events.queue.get_or_init(|| Queue::new(listeners, Some(next), own));
        }
        events
    }

    fn ring<'a>(&'a self, q: &'a Queue) -> &'a Ring {
        match (&self.shared, &q.own) {
            (Some(r), _) => r,
            (None, Some(r)) => r,
            (None, None) => unreachable!("an in-process queue has its own ring"),
        }
    }

    /// Whether the ring is in a region other processes write too.
    pub(crate) fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Adds a listener; it sees the transitions after the queue exists.
    /// `current` reads the state word's generation. Returns true if events
    /// still wait (the caller sets `EV`).
    pub(crate) fn add(&self, l: Listener, current: impl Fn() -> u64) -> bool {
        let own = self.shared.is_none();
        let (q, installed) = self.queue.install(|| Queue::new(vec![l.clone()], None, own));
        if !installed {
            q.listeners.update(|v| {
                let mut v = v.clone();
                v.push(l.clone());
                v
            });
            return false;
        }
        // SeqCst fence: pairs with the one in `emit`. Either the winner of
        // a transition sees the queue (and writes its event), or this
        // thread sees its generation (and starts after it).
        fence(Ordering::SeqCst);
        // SeqCst: frees the cursor, delivering from the next generation.
        q.cursor.store((current() + 1) << 1, Ordering::SeqCst);
        q.deliver(self.ring(q), &current)
    }

    /// Queues `event` and delivers what this call may; `current` reads the
    /// state word's generation. Returns true if events still wait (the
    /// caller sets `EV`).
    pub(crate) fn emit(&self, event: &Transition, current: impl Fn() -> u64) -> bool {
        if let Some(r) = &self.shared {
            r.write(event);
        }
        // SeqCst fence: see `add`.
        fence(Ordering::SeqCst);
        match self.queue.get() {
            Some(q) => {
                if let Some(r) = &q.own {
                    r.write(event);
                }
                q.deliver(self.ring(q), &current)
            }
            None => false,
        }
    }

    /// Delivers what this call may; `current` reads the state word's
    /// generation. Returns true if events still wait.
    pub(crate) fn deliver(&self, current: impl Fn() -> u64) -> bool {
        self.queue.get().is_some_and(|q| q.deliver(self.ring(q), &current))
    }

    /// Delivers every event written so far before returning: if another
    /// thread is delivering (it holds the cursor), waits for it to finish,
    /// then delivers the rest. Off every call path (a shared breaker's
    /// `sync`). From inside a listener, delivers what it may and returns.
    #[cfg_attr(not(all(feature = "shared", unix)), allow(dead_code))] // shared breakers only
    pub(crate) fn deliver_all(&self, current: impl Fn() -> u64) {
        let Some(q) = self.queue.get() else { return };
        let ring = self.ring(q);
        loop {
            while q.deliver(ring, &current) {}
            // SeqCst: as the cursor's other loads (see `Queue::deliver`).
            let c = q.cursor.load(Ordering::SeqCst);
            if c & 1 != 0 {
                if Delivering::here() {
                    return;
                }
                std::thread::yield_now(); // another thread delivers: let it finish
            } else if !pending(ring, c >> 1, &current) {
                return; // free, and nothing written waits
            }
        }
    }

    /// Called by a shared breaker's watcher on each tick, with the state
    /// word's generation `upto`: gives up the record this queue waits for
    /// if its transition happened (`upto` is past it) but the record was
    /// still unwritten at the previous tick too. Its writer was killed or
    /// stopped between its state CAS and its ring write, and without this
    /// every process's listeners would wait behind it until the ring laps
    /// (64 transitions, which may take days). Counted in `lost`.
    #[cfg_attr(not(all(feature = "shared", unix)), allow(dead_code))] // shared breakers only
    pub(crate) fn skip_stalled(&self, upto: u64) {
        let Some(q) = self.queue.get() else { return };
        // SeqCst: as the cursor's other loads (see `Queue::deliver`).
        let c = q.cursor.load(Ordering::SeqCst);
        let next = c >> 1;
        let stalled = c & 1 == 0 && next <= upto && matches!(self.ring(q).read(next), Slot::Waiting);
        // Relaxed: the watcher's own note from one tick to the next.
        let before = q.stalled.swap(if stalled { next + 1 } else { 0 }, Ordering::Relaxed);
        if stalled
            && before == next + 1
            // SeqCst: as above; fails if a delivery moved the cursor.
            && q.cursor.compare_exchange(c, (next + 1) << 1, Ordering::SeqCst, Ordering::SeqCst).is_ok()
        {
            // Relaxed: a statistic.
            q.lapped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events dropped: given up by a writer (a later lap held the slot),
    /// or lapped before these listeners read them (more than 64 behind).
    pub(crate) fn lost(&self) -> u64 {
        let q = self.queue.get();
        // Relaxed: a statistic.
        let lapped = q.map_or(0, |q| q.lapped.load(Ordering::Relaxed));
        let ring = self.shared.as_deref().or(q.and_then(|q| q.own.as_deref()));
        lapped + ring.map_or(0, Ring::lost)
    }
}

/// Sets or clears `EV` on the state word, keeping everything else.
pub(crate) fn flag(word: &AtomicU64, on: bool) {
    // Relaxed: the flag only asks some later call to deliver; the events
    // themselves are published through the ring.
    let mut w = Word(word.load(Ordering::Relaxed));
    while w.has(EVENTS) != on {
        // Relaxed: as above.
        match word.compare_exchange_weak(w.0, w.with(EVENTS, on).0, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => w = Word(actual),
        }
    }
}
