//! What the C ABI's fast path (`ffi/fast/`) needs of the windows: where a
//! success is counted, for a caller that counts one itself, and the end of
//! such a success when the caller's add lands where the library must
//! finish it.

use super::{count, stripe, Clean, Fast, Kind, Stripe, Windows};
use crate::sync::{AtomicU64, Ordering};
use crossbeam_utils::CachePadded;

/// A count window's words, as `Windows::success_words` gives them: stripe
/// `k`'s cursor is at `cursors + k * stride` bytes for `k <= stripe_mask`
/// (each stripe's `calls`, one slice element apart; a position is a
/// cursor under `POSITION_MASK`); a success's slot value is
/// `generation << generation_shift | present`.
pub(crate) struct SuccessWords {
    pub(crate) cursors: *mut u64,
    /// Stripe 0's per-CPU count (`Stripe::solo`), `stride` apart as the
    /// cursors.
    pub(crate) solo: *mut u64,
    pub(crate) stride: usize,
    pub(crate) stripe_mask: usize,
    pub(crate) slots: *const AtomicU64,
    pub(crate) ring: u64,
    pub(crate) generation_shift: u32,
    pub(crate) present: u64,
}

impl Windows {
    /// Where a success is counted, for a caller that counts one itself
    /// (the C ABI's fast path, `ffi/fast/`); `None` for a time window.
    pub(crate) fn success_words(&self) -> Option<SuccessWords> {
        let Kind::Count(slots) = &self.kind else { return None };
        // A field of stripe 0, derived from the slice's own pointer (so
        // `field + k * stride` stays within what it may reach).
        let base = self.stripes.as_ptr();
        let field = |f: &AtomicU64| {
            let offset = f.as_ptr() as usize - base as usize;
            base.cast::<u8>().cast_mut().wrapping_add(offset).cast::<u64>()
        };
        Some(SuccessWords {
            cursors: field(&self.stripes[0].calls),
            solo: field(&self.stripes[0].solo),
            stride: std::mem::size_of::<CachePadded<Stripe>>(),
            stripe_mask: self.stripe_mask,
            slots: slots.as_ptr().cast(),
            ring: slots.len() as u64,
            generation_shift: count::GENERATION_SHIFT,
            present: count::PRESENT,
        })
    }

    /// Finishes a success of `generation` whose add to stripe `k`'s cursor
    /// a caller made itself and landed on `position` (see
    /// `success_words`; `clean`: the breaker's clean mark, see `count.rs`);
    /// with no generation, only the cursor's lap (the
    /// success takes the long way). `None` if this is not a count window
    /// or there is no stripe `k`; else whether to judge or settle, as
    /// `record_success`. A caller on its own thread's stripe is noted
    /// there (`stripe::check`), so threads that record this way still part
    /// when they collide (the caller asks for its stripe again after).
    pub(crate) fn success_landed(
        &self,
        clean: &Clean,
        k: usize,
        position: u64,
        generation: Option<u64>,
    ) -> Option<Fast> {
        let (Kind::Count(slots), Some(stripe)) = (&self.kind, self.stripes.get(k)) else { return None };
        let outcome = generation.map(|g| (g, count::slot_value(g, false, false)));
        let judge = count::landed(slots, stripe, clean, position, outcome);
        if outcome.is_none() {
            // The outcome takes the long way, which counts it there: the
            // add is taken back from the totals (the slot it handed out
            // keeps what it held).
            // Release: a reader that sees this sees the add it takes back
            // (see `count::calls`), so the total never reads one low.
            stripe.lapped.fetch_sub(1, Ordering::Release);
        }
        let (own, _, home) = self.homed();
        if own == k {
            stripe::check(stripe, home);
        }
        Some(judge)
    }
}
