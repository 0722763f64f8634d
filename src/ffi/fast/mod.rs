//! `nb_fast_path`: what a caller needs to hand out a permit in `Closed`
//! without calling into the library, and `nb_acquire_fast`, the header's
//! `static inline` function that does it (a plain load and a test, as
//! `CircuitBreaker::acquire` does in Rust). For C, the call saved; for Go,
//! a cgo crossing saved on every `Allow`.

use super::breaker::nb_breaker;
use super::nb_permit;
use super::nb_result;
use super::panic::{boundary, try_mut, try_ref};
use super::permit::{LIVE, SPENT};
use super::sized::{self, field_ends, SizedStruct};
use crate::permit::{Outcome, NO_START};
use crate::recording::Recorded;
use crate::state::{ACQUIRE_FAST, GEN_SHIFT, RECORD_FAST};
use crate::window::POSITION_MASK;

/// How to hand out a permit of one breaker, and record a success, without
/// calling the library (`nb_acquire_fast` in this header; the Go binding).
/// Every value is the library's own and may differ between releases: read
/// them from `nb_breaker_fast_path`, never spell them in a program. Valid
/// while the handle it came from lives. Carries its size (pass
/// `sizeof(nb_fast_path)`), like `nb_metrics`.
///
/// The permit rule: load `*word` with acquire ordering; if `word & mask`
/// is 0, the permit is `{breaker_id, word >> shift, start, live}` in
/// `opaque` order; otherwise call `nb_acquire`.
///
/// The success rule, when `cursors` is not NULL (a count window), for a
/// permit `p` with `p[0] == breaker_id`, `p[2] == start` and `p[3] == live`
/// (any other: call `nb_record`):
/// 1. load `*word` with acquire ordering; unless
///    `(word ^ p[1] << shift) & record_mask` is 0, call `nb_record`;
/// 2. pick a stripe `k <= stripe_mask`: `nb_thread_stripe() & stripe_mask`,
///    the one the library records the thread's other outcomes on (so one
///    thread sees an exact window), kept per thread and asked again after
///    each `nb_success_landed` (the library may move a thread off a
///    contended stripe); add 1 to the `uint64_t`
///    at `cursors + k * cursor_stride` bytes (an atomic fetch-and-add,
///    relaxed ordering is enough); `position` is the value before the add
///    `& position_mask`;
/// 3. if `position < ring` and `slots[position]` (an atomic load, relaxed)
///    is `p[1] << slot_shift | slot_success`, the success is recorded: set
///    `p[3] = spent`. Otherwise call `nb_success_landed(b, &p, k, position)`,
///    which finishes it.
///
/// The clean rule, when `clean` is not NULL (a count window, in a process
/// whose threads have glibc's rseq area): after step 1, if `*clean` (an
/// atomic load, relaxed) is `p[1] << slot_shift | slot_success`, the ring
/// holds nothing but this era's successes and the success may skip steps 2
/// and 3: add 1 to the `uint64_t` of the CPU `c` the thread runs on, at
/// `solo + c * cursor_stride` bytes (`c <= stripe_mask`), in a restartable
/// sequence (`rseq(2)`) over the thread's rseq area at `rseq_offset` bytes
/// from the thread pointer: check the area's `cpu_id` is `c`, load, add,
/// store, with the kernel's abort on preemption; then set `p[3] = spent`.
/// If the sequence cannot run (another CPU, `c > stripe_mask`, an abort),
/// follow steps 2 and 3. The header's `nb_success_fast` does this on
/// x86-64 Linux with GCC or Clang.
///
/// Never write `*word`, `*clean`, a cursor, a CPU's counter or a slot any
/// other way.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct nb_fast_path {
    /// The struct's size in bytes: set by the caller, then by the library
    /// to the bytes it filled.
    pub size: usize,
    /// The breaker's state word. Load it with acquire ordering; never
    /// write it.
    pub word: *const u64,
    /// The bits of the word that must be clear for a permit without a
    /// call.
    pub mask: u64,
    /// `opaque[1]` of such a permit is the word shifted right by this.
    pub shift: u64,
    /// `opaque[0]` of such a permit.
    pub breaker_id: u64,
    /// `opaque[2]` of such a permit.
    pub start: u64,
    /// `opaque[3]` of such a permit.
    pub live: u64,
    /// Stripe 0's cursor (the success rule); NULL: no such rule (a time
    /// window), record with `nb_record`.
    pub cursors: *mut u64,
    /// The ring of the window's slots (the success rule).
    pub slots: *const u64,
    /// The bits of `word ^ generation << shift` that must be clear for a
    /// success without a call.
    pub record_mask: u64,
    /// The bytes from one stripe's cursor to the next.
    pub cursor_stride: u64,
    /// The largest stripe number (stripes are numbered from 0).
    pub stripe_mask: u64,
    /// The bits of a cursor that are its position.
    pub position_mask: u64,
    /// The number of slots.
    pub ring: u64,
    /// A success's slot holds its generation shifted left by this...
    pub slot_shift: u64,
    /// ...with these bits set.
    pub slot_success: u64,
    /// `opaque[3]` of a recorded permit.
    pub spent: u64,
    /// The clean mark (the clean rule); NULL: no such rule.
    pub clean: *const u64,
    /// CPU 0's count of successes on a clean ring (the clean rule).
    pub solo: *mut u64,
    /// The thread's rseq area, in bytes from the thread pointer (the clean
    /// rule).
    pub rseq_offset: i64,
}

// SAFETY: `#[repr(C)]`, `size` first, then a pointer, five `u64`s, two
// pointers, eight `u64`s, two pointers and an `i64`: no padding where a
// pointer is 4 or 8 bytes (`size` and `word` fill the first 8 or 16
// bytes, `cursors` and `slots` the next 8 or 16 after `live`, `clean` and
// `solo` the 8 or 16 after `spent`), and every bit pattern is a valid
// `usize`, `u64`, `i64` or raw pointer.
unsafe impl SizedStruct for nb_fast_path {
    const FIELD_ENDS: &'static [usize] = field_ends!(nb_fast_path; word, mask, shift, breaker_id, start, live,
        cursors, slots, record_mask, cursor_stride, stripe_mask, position_mask, ring, slot_shift, slot_success, spent,
        clean, solo, rseq_offset);
}

/// Fills `*out` (`size` bytes: pass `sizeof(nb_fast_path)`) with breaker
/// `b`'s fast path. `NB_INVALID_ARGUMENT` if `size` does not cover the
/// `size` field.
///
/// # Safety
/// `b` is NULL or a live handle; `out` is NULL or writable for `size`
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_fast_path(
    b: *const nb_breaker,
    out: *mut nb_fast_path,
    size: usize,
) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let b = try_ref!(b);
        let fast = || {
            let mut f = nb_fast_path {
                size: std::mem::size_of::<nb_fast_path>(),
                word: b.hot.word.as_ptr().cast_const(),
                mask: ACQUIRE_FAST,
                shift: GEN_SHIFT.into(),
                breaker_id: b.id,
                start: NO_START,
                live: LIVE,
                // No success rule (a time window) unless filled below.
                cursors: std::ptr::null_mut(),
                slots: std::ptr::null(),
                record_mask: RECORD_FAST,
                cursor_stride: 0,
                stripe_mask: 0,
                position_mask: 0,
                ring: 0,
                slot_shift: 0,
                slot_success: 0,
                spent: SPENT,
                // No clean rule unless filled below.
                clean: std::ptr::null(),
                solo: std::ptr::null_mut(),
                rseq_offset: 0,
            };
            if let Some(w) = b.windows.success_words() {
                f.cursors = w.cursors;
                f.slots = w.slots.cast();
                f.cursor_stride = w.stride as u64;
                f.stripe_mask = w.stripe_mask as u64;
                f.position_mask = POSITION_MASK;
                f.ring = w.ring;
                f.slot_shift = w.generation_shift.into();
                f.slot_success = w.present;
                if let Some(offset) = crate::rseq::offset() {
                    f.clean = b.hot.clean.mark.as_ptr().cast_const();
                    f.solo = w.solo;
                    f.rseq_offset = offset;
                }
            }
            f
        };
        // SAFETY: forwarded from the caller.
        unsafe { sized::write_out(out, size, false, fast) }
    })
}

/// The calling thread's stripe for `nb_fast_path`'s success rule (take it
/// `& stripe_mask`): the stripe the library records this thread's outcomes
/// on now, so a thread keeps one window cursor whichever way it records.
/// Never 0. It changes when the library moves the thread off a contended
/// stripe (noticed in `nb_success_landed` as well as in `nb_record`) and in
/// a forked child: `nb_success_fast` keeps it in a thread-local and asks
/// again after each `nb_success_landed`.
#[no_mangle]
pub extern "C" fn nb_thread_stripe() -> u64 {
    // Nothing here can panic (see `stripe::home`).
    crate::window::thread_id()
}

/// A new stripe value, as a new thread would get (for `& stripe_mask`),
/// for a binding that gives stripes to callers of its own: the Go binding
/// gives one to each P (the scheduler's processor). Never 0.
#[no_mangle]
pub extern "C" fn nb_stripe_new() -> u64 {
    // Nothing here can panic (see `stripe::home`).
    crate::window::new_id()
}

/// Makes `stripe` (a value from `nb_stripe_new`, `nb_thread_stripe` or
/// this function; 0 changes nothing) the calling thread's stripe and
/// returns the one it had, as an opaque value to pass back. For a binding
/// whose callers are not threads: the Go binding counts each goroutine's
/// outcomes on its P's stripe, whichever OS thread runs the call, by
/// swapping the P's stripe in around `nb_record` and `nb_success_landed`
/// and keeping what it gets back (the library may have moved it off a
/// contended stripe, and notes collisions in it as it does a thread's).
#[no_mangle]
pub extern "C" fn nb_thread_stripe_swap(stripe: u64) -> u64 {
    // Nothing here can panic (see `stripe::home`).
    crate::window::swap_home(stripe)
}

/// Finishes a success recorded by `nb_fast_path`'s success rule whose add
/// to stripe `stripe`'s cursor landed on `position` (the value before the
/// add, under `position_mask`): writes its slot and makes any decision it
/// brings, then marks `*permit` spent. Refuses the permit as `nb_record`
/// does (`NB_PERMIT_SPENT`, `NB_FOREIGN_PERMIT`, `NB_INVALID_ARGUMENT`,
/// and a timed permit, which the rule never takes), recording nothing, and
/// `NB_INVALID_ARGUMENT` for a stripe past `stripe_mask` or a breaker with
/// no success rule.
///
/// # Safety
/// As `nb_record`; `position` is what the add gave.
#[no_mangle]
pub unsafe extern "C" fn nb_success_landed(
    b: *const nb_breaker,
    permit: *mut nb_permit,
    stripe: u64,
    position: u64,
) -> nb_result {
    // As `nb_record`: the checks and the hot path (`record_landed`, which
    // cannot panic) outside the panic boundary, a decision inside it.
    let b = try_ref!(b);
    let permit = try_mut!(permit);
    let Ok(k) = usize::try_from(stripe) else { return nb_result::NB_INVALID_ARGUMENT };
    // A permit the rule would not have taken means the caller broke it (the
    // rule checks the permit before the add): nothing is touched, not even
    // the cursor, which may be another breaker's.
    let raw = match permit.live_for(b) {
        Ok(raw) => raw,
        Err(r) => return r,
    };
    if raw.start != NO_START || position > POSITION_MASK {
        return nb_result::NB_INVALID_ARGUMENT; // a timed permit; never a masked position
    }
    let Some(fast) = b.record_landed(raw.generation, k, position) else {
        return nb_result::NB_INVALID_ARGUMENT;
    };
    permit.opaque[3] = SPENT;
    if fast == Recorded::Done {
        return nb_result::NB_OK;
    }
    boundary!(nb_result::NB_PANIC, {
        b.record_rest(raw, Outcome::Success, fast);
        nb_result::NB_OK
    })
}

#[cfg(test)]
mod tests;
