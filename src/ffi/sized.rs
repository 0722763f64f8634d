//! Structs that carry their size, read and written "both ways" (as Linux's
//! `copy_struct_from_user` does): the library touches only the bytes that
//! both it and the caller know, so a program built against an older header
//! (a smaller struct) and one built against a newer header (a larger one)
//! both work with this library.
//!
//! - Reading (`nb_config` in): the caller's `size` says how many bytes it
//!   has. Fields wholly inside both sides' sizes are read; fields the
//!   caller lacks take their defaults; bytes the caller has beyond this
//!   library's struct must be zero (a non-zero one is a setting this
//!   library cannot honour, refused rather than silently ignored).
//! - Writing (`nb_config`, `nb_metrics` out): the caller passes its
//!   `sizeof`; the library writes the common prefix and zeroes the rest of
//!   the caller's bytes, never a byte beyond them.

use super::nb_result;
use super::panic::try_out;

/// A `#[repr(C)]` struct whose first field is its size in bytes (`size_t`).
///
/// # Safety
/// `Self` is `#[repr(C)]`, starts with a `usize` size field, has no
/// padding, and every bit pattern of its bytes is a valid value (integers,
/// floats and raw pointers only).
pub(crate) unsafe trait SizedStruct: Copy {
    /// The end offset of every field, ascending; the last is the struct size.
    const FIELD_ENDS: &'static [usize];
}

/// The largest field boundary at or below `size`.
fn whole_fields<T: SizedStruct>(size: usize) -> usize {
    T::FIELD_ENDS.iter().copied().take_while(|&end| end <= size).last().unwrap_or(0)
}

/// Why a sized read failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SizeError {
    /// `size` does not even cover the size field.
    TooSmall,
    /// The caller set a field this library does not know.
    UnknownField,
}

/// Reads a caller's `T`: `defaults` overwritten by the fields the caller
/// has; `size` set to ours.
///
/// # Safety
/// `p` is non-NULL and points to at least `p->size` readable bytes (the
/// size field itself is read first, so at least `size_of::<usize>()`).
pub(crate) unsafe fn read<T: SizedStruct>(p: *const T, defaults: T) -> Result<T, SizeError> {
    let ours = std::mem::size_of::<T>();
    // SAFETY: `p` is readable for the size field, which every version has
    // first (caller's contract); read_unaligned asks nothing of alignment.
    let size = unsafe { p.cast::<usize>().read_unaligned() };
    if size < std::mem::size_of::<usize>() {
        return Err(SizeError::TooSmall);
    }
    if size > ours {
        // SAFETY: `size` bytes are readable (caller's contract), size > ours.
        let tail = unsafe { std::slice::from_raw_parts(p.cast::<u8>().add(ours), size - ours) };
        if tail.iter().any(|b| *b != 0) {
            return Err(SizeError::UnknownField);
        }
    }
    let known = whole_fields::<T>(size.min(ours));
    let mut value = defaults;
    // SAFETY: `known` <= the caller's size and <= size_of::<T>(), so the
    // source is readable and the destination (a local T) writable; the two
    // do not overlap; any bytes make a valid T (trait contract).
    unsafe {
        std::ptr::copy_nonoverlapping(p.cast::<u8>(), (&raw mut value).cast::<u8>(), known);
        (&raw mut value).cast::<usize>().write(ours);
    }
    Ok(value)
}

/// An out-parameter of the caller's `size` bytes (`nb_config`,
/// `nb_metrics`, `nb_fast_path` out): `NB_NULL_ARGUMENT` for NULL,
/// `NB_INVALID_ARGUMENT` if `size` does not cover the size field (then
/// `value` is not made), else `value()` written as `write` writes it.
///
/// # Safety
/// `out` is NULL or writable for `size` bytes.
pub(crate) unsafe fn write_out<T: SizedStruct>(
    out: *mut T,
    size: usize,
    size_is_callers: bool,
    value: impl FnOnce() -> T,
) -> nb_result {
    let out = try_out!(out);
    if size < std::mem::size_of::<usize>() {
        return nb_result::NB_INVALID_ARGUMENT;
    }
    // SAFETY: non-NULL, writable for `size` bytes (caller's contract), and
    // `size` covers the size field.
    unsafe { write(out, size, &value(), size_is_callers) };
    nb_result::NB_OK
}

/// Writes `value` into the caller's `size` bytes at `out`: the common
/// prefix, then zeros; the size field says how many bytes hold the
/// library's values (`min(size, ours)`), or the caller's size when
/// `size_is_callers` (for structs the caller passes back in, like
/// `nb_config`, whose zeroed tail then reads as "unset").
///
/// # Safety
/// `out` is non-NULL and writable for `size` bytes, `size >= size_of::<usize>()`.
unsafe fn write<T: SizedStruct>(out: *mut T, size: usize, value: &T, size_is_callers: bool) {
    let ours = std::mem::size_of::<T>();
    let n = size.min(ours);
    // SAFETY: `out` is writable for `size` >= n bytes (caller's contract);
    // `value` is readable for ours >= n; they do not overlap (`value` is
    // the library's own).
    unsafe {
        std::ptr::copy_nonoverlapping((value as *const T).cast::<u8>(), out.cast::<u8>(), n);
        std::ptr::write_bytes(out.cast::<u8>().add(n), 0, size - n);
        out.cast::<usize>().write_unaligned(if size_is_callers { size } else { n });
    }
}

/// `FIELD_ENDS` for a struct: name every field after `size`, in order.
/// (Each field ends where the next begins; the last at the struct's end.)
macro_rules! field_ends {
    ($t:ty; $($field:ident),+ $(,)?) => {
        &[$(::std::mem::offset_of!($t, $field)),+, ::std::mem::size_of::<$t>()]
    };
}
pub(crate) use field_ends;

#[cfg(test)]
pub(crate) fn check_field_ends<T: SizedStruct>() {
    let ends = T::FIELD_ENDS;
    assert_eq!(ends[0], std::mem::size_of::<usize>(), "size comes first");
    assert!(ends.windows(2).all(|w| w[0] < w[1]), "ascending");
    assert_eq!(*ends.last().unwrap(), std::mem::size_of::<T>(), "every field listed, no tail padding");
}
