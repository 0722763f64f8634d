//! `nb_permit`: leave to make one call, and the calls that issue and spend
//! it (`nb_acquire`, `nb_record`).

use super::breaker::nb_breaker;
use super::panic::{boundary, try_mut, try_out, try_ref};
use super::{nb_outcome, nb_result, outcome_from_u32};
use crate::recording::Recorded;
use crate::RawPermit;

/// `opaque[3]` of a permit `nb_acquire` issued and nobody recorded yet.
pub(super) const LIVE: u64 = u64::from_be_bytes(*b"NBPERMIT");
/// `opaque[3]` of a permit `nb_record` has recorded.
pub(super) const SPENT: u64 = u64::from_be_bytes(*b"NBSPENT!");

/// Leave to make one call: written by `nb_acquire`, passed by pointer to
/// `nb_record` exactly once, which marks it spent. The caller keeps it (on
/// its stack, typically) but never reads or writes its contents, which are
/// private to the library and may change meaning in any release. Its size
/// is fixed for the whole ABI major version (`NB_ABI_MAJOR`): it is the one
/// struct that carries no `size` field, so that a permit costs nothing to
/// set up. A permit belongs to one thread at a time. A permit never
/// recorded holds its half-open slot until the trial times out.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct nb_permit {
    /// Private to the library.
    pub opaque: [u64; 4],
}

impl nb_permit {
    fn issue(breaker_id: u64, p: &RawPermit) -> nb_permit {
        nb_permit { opaque: [breaker_id, p.generation, p.start, LIVE] }
    }

    /// The permit `b` issued, if this is one that may still be recorded:
    /// else why not (`NB_PERMIT_SPENT`, `NB_FOREIGN_PERMIT`, or
    /// `NB_INVALID_ARGUMENT` for bytes `nb_acquire` never wrote).
    #[inline(always)]
    pub(super) fn live_for(&self, b: &crate::CircuitBreaker) -> Result<RawPermit, nb_result> {
        let [breaker_id, generation, start, mark] = self.opaque;
        if mark != LIVE {
            return Err(not_live(mark));
        }
        if breaker_id != b.id {
            return Err(nb_result::NB_FOREIGN_PERMIT);
        }
        Ok(RawPermit::from_parts(generation, start))
    }
}

/// Asks to make a call; see `nb_acquire_ex`.
///
/// # Safety
/// As `nb_acquire_ex`.
#[no_mangle]
pub unsafe extern "C" fn nb_acquire(b: *const nb_breaker, out: *mut nb_permit) -> nb_result {
    // SAFETY: forwarded from the caller.
    unsafe { acquire(b, out, std::ptr::null_mut()) }
}

/// Asks to make a call. `NB_OK`: `*out` holds the permit; make the call and
/// pass the permit to `nb_record`. `NB_REJECTED`: do not make the call;
/// `*out` is untouched and, if `retry_after_ns` is not NULL, it receives how
/// long until the breaker may let a call through (UINT64_MAX when forced
/// open). `NB_PANIC`: the library failed; see "Fail open" in the README
/// (the usual answer is to make the call anyway, unrecorded).
///
/// # Safety
/// `b` is NULL or a live handle; `out` is NULL or writable;
/// `retry_after_ns` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn nb_acquire_ex(
    b: *const nb_breaker,
    out: *mut nb_permit,
    retry_after_ns: *mut u64,
) -> nb_result {
    // SAFETY: forwarded from the caller.
    unsafe { acquire(b, out, retry_after_ns) }
}

/// The body of `nb_acquire` and `nb_acquire_ex`, inlined into both: one
/// exported function calling another would go through the GOT (exported
/// symbols may be interposed), an indirect jump on every call.
///
/// # Safety
/// As `nb_acquire_ex`.
#[inline(always)]
unsafe fn acquire(b: *const nb_breaker, out: *mut nb_permit, retry_after_ns: *mut u64) -> nb_result {
    // The hot path runs outside the panic boundary: pointer tests, one load
    // and one test (`acquire_fast`), none of which can panic; the boundary
    // would cost a frame of its own on every call (LLVM outlines the body
    // of `catch_unwind`). Everything else runs inside it.
    let b = try_ref!(b);
    let out = try_out!(out);
    let w = match b.acquire_fast() {
        Ok(p) => {
            // SAFETY: non-NULL and writable (caller's contract).
            unsafe { out.write(nb_permit::issue(b.id, &p)) };
            return nb_result::NB_OK;
        }
        Err(w) => w,
    };
    boundary!(nb_result::NB_PANIC, {
        match b.acquire_slow(w) {
            Ok(p) => {
                // SAFETY: non-NULL and writable (caller's contract).
                unsafe { out.write(nb_permit::issue(b.id, &p)) };
                nb_result::NB_OK
            }
            Err(r) => {
                if !retry_after_ns.is_null() {
                    let ns = u64::try_from(r.retry_after().as_nanos()).unwrap_or(u64::MAX);
                    // SAFETY: non-NULL and writable (caller's contract).
                    unsafe { retry_after_ns.write(ns) };
                }
                nb_result::NB_REJECTED
            }
        }
    })
}

/// Reports the outcome (an `nb_outcome`) of the call made on `*permit`,
/// and marks the permit spent. Nothing is recorded, and the permit is left
/// as it was, when the answer is not `NB_OK`:
/// - `NB_PERMIT_SPENT`: this permit was recorded already (a permit counts
///   once, so a half-open probe can never count as two);
/// - `NB_FOREIGN_PERMIT`: another breaker issued it, including one since
///   freed whose memory `b` now reuses (every breaker has a fresh id);
/// - `NB_INVALID_ARGUMENT`: an unknown outcome, or `*permit` was not
///   written by `nb_acquire`.
///
/// A permit from before a state change is accepted, spent, and dropped (it
/// is stale), as in the Rust API.
///
/// # Safety
/// `b` is NULL or a live handle; `permit` is NULL or points to an
/// `nb_permit` that no other thread uses during the call.
#[no_mangle]
pub unsafe extern "C" fn nb_record(b: *const nb_breaker, permit: *mut nb_permit, outcome: u32) -> nb_result {
    // SAFETY: forwarded from the caller.
    unsafe { record(b, permit, outcome) }
}

/// The body of `nb_record`, `nb_success`, `nb_failure` and `nb_ignore`,
/// inlined into each (see `acquire`).
///
/// # Safety
/// As `nb_record`.
#[inline(always)]
unsafe fn record(b: *const nb_breaker, permit: *mut nb_permit, outcome: u32) -> nb_result {
    // As in `acquire`: the checks and the engine's hot path
    // (`record_fast`, which cannot panic) run outside the panic boundary,
    // the rest inside it.
    let b = try_ref!(b);
    let permit = try_mut!(permit);
    let Some(outcome) = outcome_from_u32(outcome) else { return nb_result::NB_INVALID_ARGUMENT };
    let raw = match permit.live_for(b) {
        Ok(raw) => raw,
        Err(r) => return r,
    };
    permit.opaque[3] = SPENT;
    let fast = b.record_fast(&raw, outcome);
    if fast == Recorded::Done {
        return nb_result::NB_OK;
    }
    boundary!(nb_result::NB_PANIC, {
        b.record_rest(raw, outcome, fast);
        nb_result::NB_OK
    })
}

/// Why a permit that is not live is refused (off the hot path).
#[cold]
fn not_live(mark: u64) -> nb_result {
    if mark == SPENT {
        nb_result::NB_PERMIT_SPENT
    } else {
        nb_result::NB_INVALID_ARGUMENT
    }
}

/// `nb_record(b, permit, NB_SUCCESS)`.
///
/// # Safety
/// As `nb_record`.
#[no_mangle]
pub unsafe extern "C" fn nb_success(b: *const nb_breaker, permit: *mut nb_permit) -> nb_result {
    // SAFETY: forwarded from the caller.
    unsafe { record(b, permit, nb_outcome::NB_SUCCESS as u32) }
}

/// `nb_record(b, permit, NB_FAILURE)`.
///
/// # Safety
/// As `nb_record`.
#[no_mangle]
pub unsafe extern "C" fn nb_failure(b: *const nb_breaker, permit: *mut nb_permit) -> nb_result {
    // SAFETY: forwarded from the caller.
    unsafe { record(b, permit, nb_outcome::NB_FAILURE as u32) }
}

/// `nb_record(b, permit, NB_IGNORED)`: releases the permit (and its
/// half-open slot) without counting the call.
///
/// # Safety
/// As `nb_record`.
#[no_mangle]
pub unsafe extern "C" fn nb_ignore(b: *const nb_breaker, permit: *mut nb_permit) -> nb_result {
    // SAFETY: forwarded from the caller.
    unsafe { record(b, permit, nb_outcome::NB_IGNORED as u32) }
}
