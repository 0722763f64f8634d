//! Where a breaker's words live.
//!
//! Every word the engine shares between calls (the state word and its
//! line, the stripes, the window, the counters) sits in a [`Words`]: a
//! pointer to a `T` (or a `[T]`) that is either the breaker's own heap
//! allocation or a part of a shared-memory region that several processes
//! map (see `shared/`). The engine reads both the same way, through
//! `Deref`, so one engine serves both, and loom, the property model and
//! the long-life tests, which run it on the heap, check the code a shared
//! breaker runs. A `Words` costs what a `Box` does.
//!
//! A [`Placer`] makes them while a breaker is built: on the heap, or, for a
//! shared breaker, at the next free offset of a region (writing the
//! initial values only when this process creates the region).

use std::ops::Deref;
use std::ptr::NonNull;

/// A `T` (or `[T]`) the breaker reads through a pointer: owned (a leaked
/// `Box`, freed on drop) or borrowed from a mapped region that outlives it.
pub(crate) struct Words<T: ?Sized> {
    ptr: NonNull<T>,
    owned: bool,
}

// SAFETY: a `Words` is a `Box` (owned) or a shared reference into a region
// kept mapped for its life (borrowed); both are Send and Sync when `T` is.
unsafe impl<T: ?Sized + Send + Sync> Send for Words<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for Words<T> {}

impl<T: ?Sized> Words<T> {
    pub(crate) fn boxed(b: Box<T>) -> Words<T> {
        // SAFETY: `Box::into_raw` is never null.
        Words { ptr: unsafe { NonNull::new_unchecked(Box::into_raw(b)) }, owned: true }
    }
}

impl<T: ?Sized> Deref for Words<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: `ptr` is a live `Box` (owned) or points into a mapping
        // the breaker holds open for as long as this `Words` lives
        // (`Placer::region`'s contract), aligned and initialised.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: ?Sized> Drop for Words<T> {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: made by `Box::into_raw` in `boxed`, freed once, here.
            drop(unsafe { Box::from_raw(self.ptr.as_ptr()) });
        }
    }
}

/// Types made only of `u64`s (atomic or not) and arrays and cache-line
/// padding of them: every bit pattern is a valid value, so one may be read
/// from a region another process wrote, whatever it wrote.
///
/// # Safety
///
/// Implement only for such types: no pointers, references, enums, bools or
/// padding bytes that matter.
pub(crate) unsafe trait Plain {}

#[cfg(not(loom))]
mod plain {
    use super::Plain;
    // SAFETY: each is a `u64`, an array of `Plain`, or `Plain` padded.
    unsafe impl Plain for u64 {}
    // SAFETY: as above.
    unsafe impl Plain for crate::sync::AtomicU64 {}
    // SAFETY: as above.
    unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}
    // SAFETY: as above.
    unsafe impl<T: Plain> Plain for crossbeam_utils::CachePadded<T> {}
}

// Under loom the atomics are loom's, which live on the heap only: no
// region is built there, and the bound is met for all.
// SAFETY: never used to read a region under loom (`shared` is not built).
#[cfg(loom)]
unsafe impl<T> Plain for T {}

/// Makes a breaker's [`Words`]: on the heap, or carved from a region.
pub(crate) enum Placer {
    Heap,
    #[cfg(all(feature = "shared", unix, not(loom)))]
    Region(crate::shared::Carve),
}

impl Placer {
    /// Whether the words go into a region (shared by processes).
    pub(crate) fn is_region(&self) -> bool {
        !matches!(self, Placer::Heap)
    }

    /// One `T`.
    pub(crate) fn one<T: Plain>(&mut self, value: T) -> Words<T> {
        match self {
            Placer::Heap => Words::boxed(Box::new(value)),
            #[cfg(all(feature = "shared", unix, not(loom)))]
            Placer::Region(c) => {
                let p = c.take::<T>(1);
                Words { ptr: c.init(p, 0, value), owned: false }
            }
        }
    }

    /// `len` of `T`, the `i`th `init(i)`.
    #[allow(unused_mut)] // used mutably only with `shared`
    pub(crate) fn many<T: Plain>(&mut self, len: usize, mut init: impl FnMut(usize) -> T) -> Words<[T]> {
        match self {
            Placer::Heap => Words::boxed((0..len).map(init).collect()),
            #[cfg(all(feature = "shared", unix, not(loom)))]
            Placer::Region(c) => {
                let p = c.take::<T>(len);
                for i in 0..len {
                    c.init(p, i, init(i));
                }
                Words { ptr: NonNull::slice_from_raw_parts(p, len), owned: false }
            }
        }
    }
}
