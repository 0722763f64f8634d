//! The ring of transition records: 64 slots, slot `generation % 64`,
//! written by whichever thread's compare-and-swap made the transition and
//! read by each listener queue from its own cursor. Its words are plain
//! atomics, so for a shared breaker it lives in the region and every
//! process's transitions reach every process's listeners.
//!
//! A slot is a head `[generation 54 | from 3 | to 3 | reason 4]`, a time
//! `[generation tag 11 | micros 53]` and, for a trip's window, three counts
//! `[generation tag 11 | present 1 | count 52]`. A writer claims the head by
//! compare-and-swap (marking it busy with its generation), writes the time
//! by compare-and-swap and the counts, then the head. Counts whose tag is
//! not the event's (a writer of an older lap wrote them late) read as no
//! window. Every write expects the value it read, so a writer preempted
//! while 64 other transitions go by finds a later generation there and
//! gives its event up (counted lost) instead of overwriting a newer one; a
//! reader checks the head before and after reading the time (a seqlock
//! read) and skips a slot that already holds a later lap.

use super::{Reason, Transition, WindowCounts};
use crate::state::State;
use crate::sync::{fence, AtomicU64, Ordering};
use std::time::Duration;

pub(super) const RING: u64 = 64;
/// The low bits of a head being written (reason 15 is no reason).
const BUSY: u64 = 0x3FF;
const TAG_SHIFT: u32 = 53;
const MICROS: u64 = (1 << TAG_SHIFT) - 1;
const PRESENT: u64 = 1 << 52;

/// The ring's words.
#[repr(C)]
pub(crate) struct Ring {
    heads: [AtomicU64; RING as usize],
    times: [AtomicU64; RING as usize],
    /// The window of a trip: calls, failures, slow calls.
    windows: [[AtomicU64; 3]; RING as usize],
    /// Events a writer gave up because a later lap held their slot.
    lost: AtomicU64,
}

// SAFETY: `u64`s (atomic) and arrays of them.
#[cfg(not(loom))]
unsafe impl crate::words::Plain for Ring {}

/// What a slot holds for the generation a reader wants.
pub(super) enum Slot {
    Ready(Transition),
    /// Not written yet.
    Waiting,
    /// Holds a later lap: that event is lost.
    Lapped,
}

fn head(e: &Transition) -> u64 {
    e.generation << 10 | (e.from as u64) << 7 | (e.to as u64) << 4 | e.reason as u64
}

fn time_word(generation: u64, at: Duration) -> u64 {
    let micros = u64::try_from(at.as_micros()).unwrap_or(u64::MAX).min(MICROS);
    generation << TAG_SHIFT | micros
}

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

impl Ring {
    pub(crate) fn new() -> Ring {
        Ring {
            heads: std::array::from_fn(|_| AtomicU64::new(0)),
            times: std::array::from_fn(|_| AtomicU64::new(0)),
            windows: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            lost: AtomicU64::new(0),
        }
    }

    /// Events writers gave up.
    pub(super) fn lost(&self) -> u64 {
        // Relaxed: a statistic.
        self.lost.load(Ordering::Relaxed)
    }

    fn give_up(&self) {
        // Relaxed: a statistic.
        self.lost.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes `e` into its slot, unless a later lap already holds it.
    pub(super) fn write(&self, e: &Transition) {
        let i = (e.generation % RING) as usize;
        let g = e.generation;
        // Acquire: read what an earlier writer published before claiming.
        let mut h = self.heads[i].load(Ordering::Acquire);
        loop {
            if h >> 10 >= g {
                return self.give_up(); // a later lap (or a writer of it) is here
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
            return self.give_up();
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
            self.give_up();
        }
    }

    /// Writes the time of generation `g` into slot `i`, whose head `g` has
    /// claimed, from `t`, the time last read there. A writer of another
    /// lap, preempted after its own look at the head, may still land its
    /// time: then this writes over it (that writer's head CAS will fail),
    /// for as long as the head is `g`'s, so a claimed slot is never left
    /// busy. Returns false once a later lap took the slot.
    fn write_time(&self, i: usize, g: u64, at: Duration, mut t: u64) -> bool {
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

    pub(super) fn read(&self, generation: u64) -> Slot {
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
        let r = Ring::new();
        let e = Transition {
            from: State::Closed,
            to: State::Open,
            reason: Reason::Manual,
            at: Duration::from_micros(7),
            generation: 65,
            window: None,
        };
        r.heads[1].store(65 << 10 | BUSY, Ordering::Relaxed);
        let seen = r.times[1].load(Ordering::Relaxed);
        r.times[1].store(time_word(1, Duration::from_micros(3)), Ordering::Relaxed); // the older lap lands
        assert!(r.write_time(1, 65, e.at, seen));
        r.heads[1].store(head(&e), Ordering::Relaxed);
        assert!(matches!(r.read(65), Slot::Ready(t) if t == e));
        // A later lap that took the slot wins.
        r.heads[1].store(129 << 10 | BUSY, Ordering::Relaxed);
        assert!(!r.write_time(1, 65, e.at, seen));
    }
}
