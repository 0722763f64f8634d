//! `nb_fast_path`: what a caller needs to hand out a permit in `Closed`
//! without calling into the library, and `nb_acquire_fast`, the header's
//! `static inline` function that does it (a plain load and a test, as
//! `CircuitBreaker::acquire` does in Rust). For C, the call saved; for Go,
//! a cgo crossing saved on every `Allow`.

use super::breaker::nb_breaker;
use super::nb_result;
use super::panic::{boundary, try_ref};
use super::permit::LIVE;
use super::sized::{self, field_ends, SizedStruct};
use crate::permit::NO_START;
use crate::state::{ACQUIRE_FAST, GEN_SHIFT};

/// How to hand out a permit of one breaker without calling the library
/// (`nb_acquire_fast` in this header). Every value is the library's own and
/// may differ between releases: read them from `nb_breaker_fast_path`,
/// never spell them in a program. Carries its size (pass
/// `sizeof(nb_fast_path)`), like `nb_metrics`.
///
/// The rule: load `*word` with acquire ordering; if `word & mask` is 0, the
/// permit is `{breaker_id, word >> shift, start, live}` in `opaque` order;
/// otherwise call `nb_acquire`. Valid while the handle it came from lives.
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
}

// SAFETY: `#[repr(C)]`, `size` first, then a pointer and five `u64`s: no
// padding where a pointer is 4 or 8 bytes (`size` and `word` fill the
// first 8 or 16), and every bit pattern is a valid `usize`, `u64` or raw
// pointer.
unsafe impl SizedStruct for nb_fast_path {
    const FIELD_ENDS: &'static [usize] =
        field_ends!(nb_fast_path; word, mask, shift, breaker_id, start, live);
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
        let fast = || nb_fast_path {
            size: std::mem::size_of::<nb_fast_path>(),
            word: b.hot.word.as_ptr().cast_const(),
            mask: ACQUIRE_FAST,
            shift: GEN_SHIFT.into(),
            breaker_id: b.id,
            start: NO_START,
            live: LIVE,
        };
        // SAFETY: forwarded from the caller.
        unsafe { sized::write_out(out, size, false, fast) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::nb_permit;

    #[test]
    fn field_ends_cover_the_struct() {
        sized::check_field_ends::<nb_fast_path>();
    }

    #[test]
    fn a_fast_permit_is_the_permit_nb_acquire_gives() {
        let handle = {
            let mut cfg = std::mem::MaybeUninit::<crate::ffi::nb_config>::zeroed();
            let mut out = std::ptr::null_mut();
            let size = std::mem::size_of::<crate::ffi::nb_config>();
            // SAFETY: a writable config of `size` bytes, then a default
            // config and a writable out-parameter.
            unsafe {
                assert_eq!(crate::ffi::nb_config_default(cfg.as_mut_ptr(), size), nb_result::NB_OK);
                assert_eq!(crate::ffi::nb_breaker_new(cfg.as_ptr(), &mut out), nb_result::NB_OK);
            }
            out
        };
        let mut fast = nb_fast_path {
            size: 0,
            word: std::ptr::null(),
            mask: 0,
            shift: 0,
            breaker_id: 0,
            start: 0,
            live: 0,
        };
        // SAFETY: a live handle and a writable struct of that size.
        assert_eq!(
            unsafe { nb_breaker_fast_path(handle, &mut fast, std::mem::size_of::<nb_fast_path>()) },
            nb_result::NB_OK
        );
        // SAFETY: `word` points into the live breaker.
        let w = unsafe { fast.word.read_volatile() };
        assert_eq!(w & fast.mask, 0, "a new breaker is closed");
        let mine = nb_permit { opaque: [fast.breaker_id, w >> fast.shift, fast.start, fast.live] };
        let mut theirs = nb_permit::default();
        // SAFETY: as above.
        assert_eq!(unsafe { crate::ffi::nb_acquire(handle, &mut theirs) }, nb_result::NB_OK);
        assert_eq!(mine, theirs);
        let mut mine = mine;
        // SAFETY: as above; the permit is the library's own.
        assert_eq!(unsafe { crate::ffi::nb_success(handle, &mut mine) }, nb_result::NB_OK);
        // SAFETY: the handle is freed once.
        unsafe { crate::ffi::nb_breaker_free(handle) };
    }
}
