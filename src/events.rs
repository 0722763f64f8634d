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
//! A slot is a head `[generation 54 | from 3 | to 3 | reason 4]`, a time
//! `[generation tag 11 | micros 53]` and, for a trip's window, three counts
//! `[generation tag 11 | present 1 | count 52]`. A writer claims the head by
//! compare-and-swap (marking it busy with its generation), writes the time
//! by compare-and-swap and the counts, then the head. Counts whose tag is
//! not the event's (a writer of an older lap wrote them late) read as no
//! window. Every write expects the
//! value it read, so a writer preempted while 64 other transitions go by
//! finds a later generation there and gives its event up (counted lost)
//! instead of overwriting a newer one; a reader checks the head before and
//! after reading the time (a seqlock read) and skips a slot that already
//! holds a later lap. The delivery cursor is one word `[next generation |
//! busy]`, taken by compare-and-swap; nothing waits on it.
//!
//! The ring exists once the first listener is added; until then a
//! transition writes nothing.

use crate::state::{State, Word, EVENTS};
use crate::sync::{fence, ArcCell, AtomicU64, OnceBox, Ordering};
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
}

impl Reason {
    /// Every reason, in the order of their values.
    pub const ALL: [Reason; 9] = [
        Reason::FailureRate,
        Reason::SlowCallRate,
        Reason::ConsecutiveFailures,
        Reason::OpenWaitElapsed,
        Reason::ProbesSucceeded,
        Reason::ProbesFailed,
        Reason::ProbesSlow,
        Reason::HalfOpenTimeout,
        Reason::Manual,
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

const RING: u64 = 64;
/// Events one call delivers at most.
pub(crate) const BUDGET: usize = 8;
/// The low bits of a head being written (reason 15 is no reason).
const BUSY: u64 = 0x3FF;
const TAG_SHIFT: u32 = 53;
const MICROS: u64 = (1 << TAG_SHIFT) - 1;

/// Listeners and, once there are any, their queue.
pub(crate) struct Events {
    queue: OnceBox<Queue>,
}

struct Queue {
    listeners: ArcCell<Vec<Listener>>,
    heads: [AtomicU64; RING as usize],
    times: [AtomicU64; RING as usize],
    /// The window of a trip: calls, failures, slow calls, each
    /// `[generation tag 11 | present 1 | count 52]`.
    windows: [[AtomicU64; 3]; RING as usize],
    /// `[next generation to deliver | busy]`.
    cursor: AtomicU64,
    lost: AtomicU64,
}

fn head(e: &Transition) -> u64 {
    e.generation << 10 | (e.from as u64) << 7 | (e.to as u64) << 4 | e.reason as u64
}

fn time_word(generation: u64, at: Duration) -> u64 {
    let micros = u64::try_from(at.as_micros()).unwrap_or(u64::MAX).min(MICROS);
    generation << TAG_SHIFT | micros
}

const PRESENT: u64 = 1 << 52;

/// Whether a time or count word carries `generation`'s tag.
fn tagged(word: u64, generation: u64) -> bool {
    word >> TAG_SHIFT == generation & ((1 << (64 - TAG_SHIFT)) - 1)
}

fn window_word(generation: u64, count: Option<u64>) -> u64 {
    let tag = generation << TAG_SHIFT;
    count.map_or(tag, |c| tag | PRESENT | c.min(PRESENT - 1))
}

/// The window in `words`, if all three are `generation`'s and present.
fn window_counts(generation: u64, words: [u64; 3]) -> Option<WindowCounts> {
    let [calls, failures, slow_calls] =
        words.map(|w| (tagged(w, generation) && w & PRESENT != 0).then_some(w & (PRESENT - 1)));
    Some(WindowCounts { calls: calls?, failures: failures?, slow_calls: slow_calls? })
}

/// What a slot holds for the generation a reader wants.
enum Slot {
    Ready(Transition),
    /// Not written yet.
    Waiting,
    /// Holds a later lap: that event is lost.
    Lapped,
}

impl Queue {
    /// A queue delivering from generation `next`, or, with `None`, one
    /// whose cursor is held until `Events::add` sets it.
    fn new(listeners: Vec<Listener>, next: Option<u64>) -> Queue {
        Queue {
            listeners: ArcCell::new(listeners),
            heads: std::array::from_fn(|_| AtomicU64::new(0)),
            times: std::array::from_fn(|_| AtomicU64::new(0)),
            windows: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            cursor: AtomicU64::new(next.map_or(1, |n| n << 1)),
            lost: AtomicU64::new(0),
        }
    }

    /// Writes `e` into its slot, unless a later lap already holds it.
    fn write(&self, e: &Transition) {
        let i = (e.generation % RING) as usize;
        let g = e.generation;
        let lost = || {
            // Relaxed: a statistic.
            self.lost.fetch_add(1, Ordering::Relaxed);
        };
        // Acquire: read what an earlier writer published before claiming.
        let mut h = self.heads[i].load(Ordering::Acquire);
        loop {
            if h >> 10 >= g {
                return lost(); // a later lap (or a writer of it) is here
            }
            // Acquire on both: the claim is ordered before the time write.
            match self.heads[i].compare_exchange(h, g << 10 | BUSY, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => break,
                Err(actual) => h = actual,
            }
        }
        // Relaxed: the time is published by the head's Release below.
        let t = self.times[i].load(Ordering::Relaxed);
        if !self.write_time(i, g, e.at, t) {
            return lost();
        }
        // Relaxed: published by the head's Release below. A writer of an
        // older lap may still overwrite these; its tag tells the reader.
        let counts = e.window.map(|w| [w.calls, w.failures, w.slow_calls]);
        for (k, word) in self.windows[i].iter().enumerate() {
            word.store(window_word(g, counts.map(|c| c[k])), Ordering::Relaxed);
        }
        // SeqCst: publishes the time and counts with the head (Release), and is
        // ordered before this thread's look at the cursor in `deliver`
        // (no lost wake-up: see there).
        if self.heads[i]
            .compare_exchange(g << 10 | BUSY, head(e), Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            lost();
        }
    }

    /// Writes the time of generation `g` into slot `i`, whose head `g` has
    /// claimed, from `t`, the time last read there. A writer of another
    /// lap, preempted after its own look at the head, may still land its
    /// time: then this writes over it (that writer's head CAS will fail),
    /// for as long as the head is `g`'s, so a claimed slot is never left
    /// busy. Returns false once a later lap took the slot.
    fn write_time(&self, i: usize, g: u64, at: std::time::Duration, mut t: u64) -> bool {
        loop {
            // Relaxed: the head is only compared. If a later lap claims it
            // after this look, the CAS below may still land; that lap's
            // own loop then writes over it.
            if self.heads[i].load(Ordering::Relaxed) != g << 10 | BUSY {
                return false;
            }
            // Relaxed: the time is published by the head's Release.
            match self.times[i].compare_exchange(t, time_word(g, at), Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(actual) => t = actual,
            }
        }
    }

    fn read(&self, generation: u64) -> Slot {
        let i = (generation % RING) as usize;
        // SeqCst: see `write`; its Acquire half makes the time readable.
        let h = self.heads[i].load(Ordering::SeqCst);
        if h >> 10 > generation {
            return Slot::Lapped;
        }
        if h >> 10 < generation || h & 0x3FF == BUSY {
            return Slot::Waiting;
        }
        // Relaxed, then an Acquire fence and a second look at the head: a
        // later lap that took the slot meanwhile changed the head.
        let t = self.times[i].load(Ordering::Relaxed);
        // Relaxed: as above.
        let window = self.windows[i].each_ref().map(|w| w.load(Ordering::Relaxed));
        fence(Ordering::Acquire);
        // Relaxed: ordered by the fence.
        if self.heads[i].load(Ordering::Relaxed) != h || !tagged(t, generation) {
            return Slot::Waiting;
        }
        let field = |shift: u32| (h >> shift) & 0b111;
        Slot::Ready(Transition {
            from: State::from_bits(field(7)),
            to: State::from_bits(field(4)),
            reason: Reason::ALL[((h & 0xF) as usize).min(Reason::ALL.len() - 1)],
            at: Duration::from_micros(t & MICROS),
            generation,
            window: window_counts(generation, window),
        })
    }

    /// Delivers up to `BUDGET` events in order. Returns true if events
    /// still wait after spending the budget.
    fn deliver(&self) -> bool {
        let mut budget = BUDGET;
        loop {
            // A SeqCst fence between a thread's last write (a head in
            // `write`, or the cursor freed below) and its look at the
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
            if matches!(self.read(next), Slot::Waiting) {
                return false;
            }
            // SeqCst: as above.
            if self.cursor.compare_exchange(c, c | 1, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                continue;
            }
            let listeners = self.listeners.load();
            while budget > 0 {
                match self.read(next) {
                    Slot::Waiting => break,
                    Slot::Lapped => {
                        // Relaxed: a statistic.
                        self.lost.fetch_add(1, Ordering::Relaxed);
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
                return !matches!(self.read(next), Slot::Waiting);
            }
            // Look again: an event written while the cursor was busy is
            // ours to deliver (its writer saw the cursor taken and left).
        }
    }
}

impl Events {
    pub(crate) fn new(listeners: Vec<Listener>) -> Events {
        let events = Events { queue: OnceBox::new() };
        if !listeners.is_empty() {
            events.queue.get_or_init(|| Queue::new(listeners, Some(1)));
        }
        events
    }

    /// Adds a listener; it sees the transitions after the queue exists.
    /// `current` reads the state word's generation. Returns true if events
    /// still wait (the caller sets `EV`).
    pub(crate) fn add(&self, l: Listener, current: impl Fn() -> u64) -> bool {
        let (q, installed) = self.queue.install(|| Queue::new(vec![l.clone()], None));
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
        q.deliver()
    }

    /// Queues `event` and delivers what this call may. Returns true if
    /// events still wait (the caller sets `EV`).
    pub(crate) fn emit(&self, event: &Transition) -> bool {
        // SeqCst fence: see `add`.
        fence(Ordering::SeqCst);
        match self.queue.get() {
            Some(q) => {
                q.write(event);
                q.deliver()
            }
            None => false,
        }
    }

    /// Delivers what this call may. Returns true if events still wait.
    pub(crate) fn deliver(&self) -> bool {
        self.queue.get().is_some_and(Queue::deliver)
    }

    /// Events dropped because listeners fell more than 64 behind.
    pub(crate) fn lost(&self) -> u64 {
        // Relaxed: a statistic.
        self.queue.get().map_or(0, |q| q.lost.load(Ordering::Relaxed))
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The writer of generation 65 claimed slot 1, and the writer of
    /// generation 1, preempted since before that claim, landed its time
    /// after 65 read the time word: 65's first CAS fails. Its event must
    /// still be written, not left busy (which stalls delivery for a lap).
    #[test]
    fn a_claimed_slot_is_written_even_if_an_older_lap_lands_its_time() {
        let q = Queue::new(Vec::new(), Some(65));
        let e = Transition {
            from: State::Closed,
            to: State::Open,
            reason: Reason::Manual,
            at: Duration::from_micros(7),
            generation: 65,
            window: None,
        };
        q.heads[1].store(65 << 10 | BUSY, Ordering::Relaxed);
        let seen = q.times[1].load(Ordering::Relaxed);
        q.times[1].store(time_word(1, Duration::from_micros(3)), Ordering::Relaxed); // the older lap lands
        assert!(q.write_time(1, 65, e.at, seen));
        q.heads[1].store(head(&e), Ordering::Relaxed);
        assert!(matches!(q.read(65), Slot::Ready(t) if t == e));
        // A later lap that took the slot wins.
        q.heads[1].store(129 << 10 | BUSY, Ordering::Relaxed);
        assert!(!q.write_time(1, 65, e.at, seen));
    }
}
