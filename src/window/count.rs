//! The count window: the last `n` outcomes, in one ring shared by all
//! stripes.
//!
//! Each stripe has its own cursor, starting `k / stripes` of the way round,
//! that walks the ring one slot per outcome (`advance`: the cursor word
//! holds the slot itself, so no division is on the hot path). A slot holds
//! one outcome tagged with the full generation it was recorded in; only
//! slots of the current generation are counted, so a new era starts empty
//! without clearing anything, and an outcome from an old era never counts,
//! however old.
//!
//! The counts of live outcomes, failures and slow calls are also kept per
//! stripe, as deltas (`count_change`), and summed when a decision needs
//! them: O(stripes), not O(n). Read while others record, that sum can be
//! off by more than the records in flight (a reader descheduled between two
//! stripes sees one stripe from before and another from after), so it only
//! filters: when it says "trip", the ring itself is read to confirm.
//!
//! One thread always writes through the same cursor, so a single thread
//! sees an exact ring of its last `n` outcomes. Under concurrency every
//! slot still holds exactly one real outcome and none is counted twice, but
//! which `n` outcomes the ring holds is approximate: the cursors of
//! different stripes advance at their own speeds.
//!
//! A success writes its slot only if the slot holds something else, so in
//! a healthy breaker the ring stays read-only and shared by every core.
//!
//! A healthy breaker's ring goes further: once every slot holds a success
//! of the current era, the ring is *clean*, and a success changes nothing
//! in it wherever it lands, so a ring in that state is the same whichever
//! slot the cursors point at. While the ring is clean a success moves no
//! cursor: it is counted on its CPU's own counter with no locked
//! instruction (`Stripe::solo`, `rseq.rs`), and the breaker's state word
//! and the `clean` mark are all it reads. The mark (`settle`) is the slot
//! value of a success of the clean era, next to the state word; a settler
//! puts up a pending mark of its own (which no success takes), reads every
//! slot, and only then turns it into the mark, so a settler stopped
//! half-way (a killed process of a shared breaker, a long ring) leaves
//! nothing a success trusts, and no settler can finish another's. A write
//! that replaces a success takes any mark for another value down
//! (`dirty`). Settling and taking down race, so each side orders its own
//! write before its read of the other's word with a `SeqCst` fence: of a
//! settler and a writer racing, at least one sees the other, and the mark
//! is never left up over a slot that holds something else. The mark only ever stands for what every slot holds, so a thread
//! that records alone still sees an exact ring of its last `n` outcomes.

use super::stripe::{check, Stripe};
use super::{Fast, Tally};
use crate::era::{self, parity};
use crate::state::GEN_MASK;
use crate::sync::{fence, AtomicU64, Ordering};

/// A cursor: `[laps 17 | position 47]` (see `advance`).
pub(super) const POSITION_BITS: u32 = 47;
pub(crate) const POSITION_MASK: u64 = (1 << POSITION_BITS) - 1;

/// A slot: `[generation 54 | present | slow | fail]`; 0 is empty.
pub(super) const GENERATION_SHIFT: u32 = 3;
pub(super) const PRESENT: u64 = 0b100;
const SLOW: u64 = 0b010;
const FAIL: u64 = 0b001;

/// The slot value of an outcome.
#[inline]
pub(super) const fn slot_value(generation: u64, failed: bool, slow: bool) -> u64 {
    generation << GENERATION_SHIFT | PRESENT | (slow as u64) << 1 | failed as u64
}

/// Moves `stripe`'s cursor one slot round a ring of `n` and returns the
/// slot it was on. `home` is the calling thread's (see `stripe.rs`).
///
/// One `fetch_add`, no loop: the cursor is `[laps 17 | position 47]`, and
/// a position below `n` is the slot itself, so no division is on the hot
/// path. The thread whose add lands on position `n` (or any multiple of
/// it) owns that lap's end: it folds `n` positions into one lap with a
/// second `fetch_add` of `2^47 - n`. Records that land meanwhile, past the
/// end, take slot `position mod n` (`lap`), which is where they would have
/// landed had the fold come first: every fold subtracts a multiple of `n`,
/// so `position mod n` walks the ring one slot per record whatever the
/// order, and `laps * n + position` counts every record exactly (see
/// `calls`).
///
/// The position never overflows into `laps`: it exceeds `n` by at most `n`
/// for each thread stopped between its two adds, so past `2^47` would take
/// `2^23` such threads on one stripe with the largest ring (`n = 2^24`),
/// more threads than Linux can have (`PID_MAX_LIMIT` is `2^22`). (Through
/// the C ABI's fast path a Go goroutine makes the first add and the
/// library the fold: `2^23` goroutines stopped at once between the two,
/// on one stripe, would be the same overflow.) When
/// `laps` wraps (after 2^17 laps) the folding thread adds the lost
/// `2^17 * n` to `lapped`.
#[inline(always)]
pub(super) fn advance(stripe: &Stripe, n: u64, home: u64) -> usize {
    // Relaxed: the cursor only hands out positions and counts; the slots
    // carry their own data.
    let pos = stripe.calls.fetch_add(1, Ordering::Relaxed) & POSITION_MASK;
    check(stripe, home);
    if pos < n {
        pos as usize
    } else {
        lap(stripe, pos, n)
    }
}

/// A record that landed at or past the ring's end: its slot, and the fold
/// if this record owns a lap's end (see `advance`). A position past every
/// legitimate one (only a hostile shared region can hold one) keeps its
/// records on this path, each in a slot of the ring.
#[cold]
fn lap(stripe: &Stripe, pos: u64, n: u64) -> usize {
    let Some(slot) = pos.checked_rem(n) else { return 0 };
    if slot == 0 {
        let fold = (1 << POSITION_BITS) - n;
        // Relaxed: as in `advance`.
        let old = stripe.calls.fetch_add(fold, Ordering::Relaxed);
        if old.wrapping_add(fold) < old {
            // Relaxed: a statistic.
            stripe.lapped.fetch_add(n << (64 - POSITION_BITS), Ordering::Relaxed);
        }
    }
    slot as usize
}

/// Writes outcome `v` of `generation` into the next slot of `stripe`'s
/// cursor and keeps the live counts in step. Returns `Judge` if the
/// window grew (a success that fills it may bring it to `minimum_calls`,
/// or leave it clean), `Settle` for a success at slot 0 of a ring not
/// marked clean: once every few laps of a stripe (`SETTLE_LAPS`) the ring
/// is looked at again (see `settle`), so a ring whose last failure was
/// pushed out, or whose mark was lost to a race, is marked within 8 laps.
#[inline]
pub(super) fn record(
    slots: &[AtomicU64],
    stripe: &Stripe,
    clean: &Clean,
    home: u64,
    generation: u64,
    v: u64,
) -> Fast {
    let i = advance(stripe, slots.len() as u64, home);
    write_slot(slots, stripe, clean, i, generation, v)
}

/// `write` into slot `i`, by way of `write_at_zero` for slot 0.
#[inline(always)]
fn write_slot(
    slots: &[AtomicU64],
    stripe: &Stripe,
    clean: &Clean,
    i: usize,
    generation: u64,
    v: u64,
) -> Fast {
    if i == 0 {
        return write_at_zero(slots, stripe, clean, generation, v);
    }
    write(slots, stripe, clean, i, generation, v)
}

/// How often a stripe's lap looks at a ring not marked clean again (see
/// `record`): on its first lap and every 8th after, so a breaker that
/// keeps failing now and then, and is never clean, reads the other
/// stripes' lines (`Windows::settle`'s estimate) once per 8 laps of each.
const SETTLE_LAPS: u64 = 8;

/// `write` at slot 0, and `Settle` if that changed nothing in a ring not
/// marked clean for `v`, on a lap that looks (`SETTLE_LAPS`).
#[cold]
fn write_at_zero(slots: &[AtomicU64], stripe: &Stripe, clean: &Clean, generation: u64, v: u64) -> Fast {
    match write(slots, stripe, clean, 0, generation, v) {
        // Relaxed: the laps only space the looks out.
        Fast::Done
            if !is_clean(clean, v)
                && (stripe.calls.load(Ordering::Relaxed) >> POSITION_BITS) % SETTLE_LAPS == 1 =>
        {
            Fast::Settle
        }
        wrote => wrote,
    }
}

/// Whether the ring is marked clean for `v`, the value of a success (see
/// `settle`).
#[inline(always)]
pub(super) fn is_clean(clean: &Clean, v: u64) -> bool {
    // Relaxed: the mark is one self-contained value, and a success that
    // finds it moves no other word (see the module docs).
    clean.mark.load(Ordering::Relaxed) == v
}

/// `record` for a caller that made the cursor's add itself and landed on
/// `position` (the C ABI's fast path, `ffi/fast/`): the lap's end if it
/// owns one, then the slot if there is an outcome to write (`None`: the
/// state changed since the caller's check, and the outcome takes the long
/// way). A position the cursor never handed out (a caller breaking the
/// rule) still writes a slot of the ring, but may leave the cursor
/// unfolded for good: that stripe's records then all take `lap`.
#[cfg(feature = "capi")]
pub(super) fn landed(
    slots: &[AtomicU64],
    stripe: &Stripe,
    clean: &Clean,
    position: u64,
    outcome: Option<(u64, u64)>,
) -> Fast {
    let n = slots.len() as u64;
    let i = if position < n { position as usize } else { lap(stripe, position, n) };
    outcome.map_or(Fast::Done, |(generation, v)| write_slot(slots, stripe, clean, i, generation, v))
}

/// Writes outcome `v` of `generation` into slot `i`; see `record`.
#[inline(always)]
fn write(slots: &[AtomicU64], stripe: &Stripe, clean: &Clean, i: usize, generation: u64, v: u64) -> Fast {
    debug_assert!(i < slots.len());
    // SAFETY: `advance` and `landed` give a slot of the ring: below `n`,
    // the ring's length, which is never 0 (`Windows::new` makes at least
    // one slot).
    let slot = unsafe { slots.get_unchecked(i) };
    // Relaxed: a slot is one self-contained value; readers need no other
    // memory ordered with it. The load first keeps the line shared (no
    // write) when the slot already holds this outcome, as it does for
    // every success in a healthy breaker.
    if slot.load(Ordering::Relaxed) == v {
        return Fast::Done;
    }
    // Relaxed: as above; the swap's answer is what makes the counts exact.
    let old = slot.swap(v, Ordering::Relaxed);
    if old == v {
        return Fast::Done;
    }
    if old & (PRESENT | SLOW | FAIL) == PRESENT {
        dirty(clean, v);
    }
    count_change(stripe, generation, old, v)
}

/// After `v` replaced a success in a slot: a ring marked clean for that
/// success is clean no more. (Only such a write can take a clean ring's
/// last slot of the mark's value away: a slot that held anything else kept
/// every settler's reading from passing, before the write and after it.)
#[cold]
fn dirty(clean: &Clean, v: u64) {
    // SeqCst: the slot's write before the mark's read, against `settle`'s
    // mark before its reads of the slots (see the module docs).
    fence(Ordering::SeqCst);
    // Relaxed: ordered by the fence.
    let mut c = clean.mark.load(Ordering::Relaxed);
    // Down, whatever settlers make of it meanwhile (a pending mark turned
    // into the mark for another value must not stay up either).
    while c != 0 && c != v {
        // Relaxed: the mark carries no other data.
        match clean.mark.compare_exchange_weak(c, 0, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => c = actual,
        }
    }
}

/// The largest ring that is ever marked clean: settling reads every slot,
/// on the thread of the call that asked, so a larger ring (up to 2^24
/// slots) keeps taking the cursor rather than stall one call for
/// milliseconds.
pub(super) const MAX_CLEAN: usize = 1 << 16;

/// The clean mark, and the tickets its settlers take: side by side in the
/// state word's line (`Hot`), written only when a ring becomes clean or
/// stops being clean.
#[derive(Default)]
#[repr(C)]
pub(crate) struct Clean {
    /// The slot value of a success of the era whose ring holds nothing
    /// else; 0, or a settler's pending mark (see `settle`), otherwise.
    pub(crate) mark: AtomicU64,
    /// Settlers taken so far: each pending mark is its own.
    tickets: AtomicU64,
}

/// A pending mark: this bit, which no slot value has (a generation is 54
/// bits, shifted left by 3), so no success takes it for a clean ring, and
/// the settler's ticket. A settler killed mid-way (a process of a shared
/// breaker) leaves this, never the mark.
const PENDING: u64 = 1 << 63;

/// Marks the ring clean for `generation` (the estimate says every slot
/// holds one of its successes), unless it is already: puts up the pending
/// mark, reads every slot, then turns it into the mark if every slot holds
/// the success, or takes it down. O(n), once each time the ring becomes
/// clean.
pub(super) fn settle(slots: &[AtomicU64], clean: &Clean, generation: u64) {
    let c = slot_value(generation, false, false);
    // Relaxed: a shortcut; the exchanges and the reads below decide.
    let cur = clean.mark.load(Ordering::Relaxed);
    if cur == c {
        return;
    }
    // Relaxed: only uniqueness matters. Each settler's pending mark is its
    // own, so none can turn another's into the mark: a settler whose
    // reading passed, then stalled while a writer took its pending mark
    // down and another settler put one up, finds that one, not its own.
    // (2^63 settles before a ticket comes round.)
    let pending = PENDING | clean.tickets.fetch_add(1, Ordering::Relaxed) & !PENDING;
    if clean.mark.compare_exchange(cur, pending, Ordering::Relaxed, Ordering::Relaxed).is_err() {
        return;
    }
    // SeqCst: the pending mark before the reads of the slots, against
    // `dirty`.
    fence(Ordering::SeqCst);
    // Relaxed: ordered by the fence.
    let settled = if slots.iter().all(|s| s.load(Ordering::Relaxed) == c) { c } else { 0 };
    // Relaxed: the mark carries no other data. A writer that took the
    // pending mark down meanwhile wins: the exchange fails.
    let _ = clean.mark.compare_exchange(pending, settled, Ordering::Relaxed, Ordering::Relaxed);
}

/// Adds to `stripe`'s live counts what one swap did to a slot: `-old` in
/// the old outcome's era and `+new` in the new one's. A counter belongs to
/// one era (its tag); a delta for another era is dropped (that era no
/// longer counts, or the writer's permit is stale). So, whenever no write
/// is in flight, the counters of era `g` summed over the stripes equal the
/// slots holding `g`, exactly, even when a late writer with a stale permit
/// overwrites a live slot. Returns what to do after (see `record`).
#[cold]
fn count_change(stripe: &Stripe, generation: u64, old: u64, new: u64) -> Fast {
    let fields = |v: u64| [(v & PRESENT != 0) as i64, (v & FAIL) as i64, ((v & SLOW) >> 1) as i64];
    let (o, n) = (fields(old), fields(new));
    let old_gen = old >> 3;
    let live = &stripe.live[parity(generation)];
    if old & PRESENT != 0 && old_gen == generation {
        for (k, c) in live.iter().enumerate() {
            if n[k] != o[k] {
                era::add(c, generation, n[k] - o[k]);
            }
        }
        return Fast::Done;
    }
    // Only an era after the writer's can still count (the writer's permit
    // is stale and it overwrote a live slot): an older era's counter is
    // never read again, and with a 38-bit tag an era 2^38 back would
    // alias the current one. The distance is taken on the generation's 54
    // bits, like every generation (see `state.rs`).
    let later = (old_gen.wrapping_sub(generation) & GEN_MASK).wrapping_sub(1) < GEN_MASK / 2;
    if old & PRESENT != 0 && later {
        for (k, c) in stripe.live[parity(old_gen)].iter().enumerate() {
            if o[k] != 0 {
                era::add(c, old_gen, -o[k]);
            }
        }
    }
    let grew = era::add(&live[0], generation, 1).is_some();
    for k in 1..3 {
        if n[k] != 0 {
            era::add(&live[k], generation, n[k]);
        }
    }
    if grew {
        Fast::Judge
    } else {
        Fast::Done
    }
}

/// The per-stripe live counts of `generation`, summed; see the module docs.
pub(super) fn estimate<'a>(stripes: impl Iterator<Item = &'a Stripe>, generation: u64) -> Tally {
    let mut sums = [0u64; 3];
    for stripe in stripes {
        for (sum, c) in sums.iter_mut().zip(&stripe.live[parity(generation)]) {
            // Relaxed: see `count_change`.
            let c = c.load(Ordering::Relaxed);
            if era::counter_is_for(c, generation) {
                *sum = sum.wrapping_add(c & era::COUNT_MASK);
            }
        }
    }
    // A "negative" sum (one stripe's -1 seen without another's +1) reads
    // as zero: the true sum is at most the ring's 2^24 slots.
    let [calls, failures, slow] = sums.map(|s| {
        let s = s & era::COUNT_MASK;
        if s >= 1 << (era::COUNT_BITS - 1) {
            0
        } else {
            s
        }
    });
    Tally { calls, failures, slow }
}

/// What the ring holds for `generation`: each slot read once, so every
/// outcome counted is a real one and none twice. O(n).
pub(super) fn tally(slots: &[AtomicU64], generation: u64) -> Tally {
    let mut t = Tally::default();
    // Relaxed: each slot is self-contained; see `record`.
    for v in slots.iter().map(|s| s.load(Ordering::Relaxed)) {
        if v & PRESENT != 0 && v >> 3 == generation {
            t.calls += 1;
            t.failures += v & FAIL;
            t.slow += (v & SLOW) >> 1;
        }
    }
    t
}

/// Outcomes recorded through `stripe`'s cursor, and the successes its CPU
/// counted on a clean ring, all time. `start`: where the cursor started.
pub(super) fn calls(stripe: &Stripe, n: u64, start: u64) -> u64 {
    // Acquire, and first: a take-back (`Windows::success_landed`) seen
    // here brings the cursor add it takes back with it, so the sum is
    // never one low (on a new breaker: never u64::MAX).
    let lapped = stripe.lapped.load(Ordering::Acquire);
    // Relaxed: statistics.
    let c = stripe.calls.load(Ordering::Relaxed);
    let laps_and_pos = (c >> POSITION_BITS).wrapping_mul(n).wrapping_add(c & POSITION_MASK);
    // Relaxed: as above.
    let solo = stripe.solo.load(Ordering::Relaxed);
    lapped.wrapping_add(laps_and_pos).wrapping_sub(start).wrapping_add(solo)
}

/// The clean mark's protocol alone, for loom models of settlers and
/// writers racing on one ring (`loom-tests/tests/windows.rs`): a breaker
/// reaches `settle` only through records, which cannot put two settlers of
/// one era side by side.
#[cfg(loom)]
pub mod hooks {
    use super::{slot_value, Clean, Stripe};
    use crate::sync::{AtomicU64, Ordering};

    /// A ring of successes of one era, and its mark.
    pub struct Ring {
        slots: Vec<AtomicU64>,
        clean: Clean,
        stripe: Stripe,
        generation: u64,
    }

    impl Ring {
        /// `n` slots, each a success of `generation`; no mark.
        pub fn full(n: usize, generation: u64) -> Ring {
            let v = slot_value(generation, false, false);
            let slots = (0..n).map(|_| AtomicU64::new(v)).collect();
            Ring { slots, clean: Clean::default(), stripe: Stripe::default(), generation }
        }

        /// What a breaker's settle does.
        pub fn settle(&self) {
            super::settle(&self.slots, &self.clean, self.generation);
        }

        /// A failure written into slot `i`, as a record writes it.
        pub fn fail(&self, i: usize) {
            let v = slot_value(self.generation, true, false);
            super::write(&self.slots, &self.stripe, &self.clean, i, self.generation, v);
        }

        /// Whether a success would take the ring for clean.
        pub fn marked(&self) -> bool {
            super::is_clean(&self.clean, slot_value(self.generation, false, false))
        }

        /// Whether every slot holds a success.
        pub fn all_successes(&self) -> bool {
            let v = slot_value(self.generation, false, false);
            // Relaxed: read after the threads joined.
            self.slots.iter().all(|s| s.load(Ordering::Relaxed) == v)
        }
    }
}
