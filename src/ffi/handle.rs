//! Opaque handles (after rustls-ffi's `Castable`): C sees `nb_breaker`,
//! `nb_registry`, ...; each is a zero-sized marker that is never itself
//! created, and a pointer to it is really a pointer to its Rust type,
//! made by `Arc::into_raw` (shared handles: several may name one value)
//! or `Box::into_raw` (owned ones). The casts live here, once. (The
//! markers are written out by hand, not by a macro, so that cbindgen sees
//! them.)

use std::sync::Arc;

/// A C-visible marker type standing for `Self::Rust`.
///
/// # Safety
/// Every non-NULL `*const Self` the library hands out comes from
/// [`arc_into`] (if `ARC`) or [`box_into`] (if not) of a `Self::Rust`.
pub(crate) unsafe trait Opaque {
    /// The value behind the handle.
    type Rust;
    /// Whether handles are `Arc`s (else `Box`es).
    const ARC: bool;
}

/// A new handle to `value`, shared.
pub(crate) fn arc_into<H: Opaque>(value: Arc<H::Rust>) -> *mut H {
    debug_assert!(H::ARC);
    Arc::into_raw(value).cast_mut().cast()
}

/// A new handle owning `value`.
pub(crate) fn box_into<H: Opaque>(value: H::Rust) -> *mut H {
    debug_assert!(!H::ARC);
    Box::into_raw(Box::new(value)).cast()
}

/// Borrows the value behind `p`, or `None` for NULL.
///
/// # Safety
/// `p` is NULL or a live handle, not freed during `'a`.
#[inline(always)]
pub(crate) unsafe fn as_ref<'a, H: Opaque>(p: *const H) -> Option<&'a H::Rust> {
    // SAFETY: a live handle points to a `H::Rust` made by `arc_into` or
    // `box_into` (`Opaque`'s contract), alive for 'a (caller's contract).
    unsafe { p.cast::<H::Rust>().as_ref() }
}

/// A new count of the value behind the shared handle `p`, or `None` for
/// NULL.
///
/// # Safety
/// `p` is NULL or a live shared handle.
pub(crate) unsafe fn arc_clone<H: Opaque>(p: *const H) -> Option<Arc<H::Rust>> {
    debug_assert!(H::ARC);
    if p.is_null() {
        return None;
    }
    let p = p.cast::<H::Rust>();
    // SAFETY: made by `Arc::into_raw` in `arc_into` (`Opaque`'s contract);
    // the handle's own count keeps it alive while we add one.
    unsafe {
        Arc::increment_strong_count(p);
        Some(Arc::from_raw(p))
    }
}

/// Borrows the value behind an owned handle mutably, or `None` for NULL.
///
/// # Safety
/// `p` is NULL or a live owned handle that nothing else uses during `'a`.
pub(crate) unsafe fn as_mut<'a, H: Opaque>(p: *mut H) -> Option<&'a mut H::Rust> {
    debug_assert!(!H::ARC);
    // SAFETY: as `as_ref`; unique for 'a (caller's contract), and a Box's
    // value may be mutated through its raw pointer.
    unsafe { p.cast::<H::Rust>().as_mut() }
}

/// Releases a handle: drops the `Box`, or this handle's `Arc` count. NULL
/// is a no-op.
///
/// # Safety
/// `p` is NULL or a live handle, released only once and not used after.
pub(crate) unsafe fn free<H: Opaque>(p: *mut H) {
    if p.is_null() {
        return;
    }
    let p = p.cast::<H::Rust>();
    if H::ARC {
        // SAFETY: made by `Arc::into_raw` in `arc_into`; this handle's count
        // is given back once (caller's contract).
        drop(unsafe { Arc::from_raw(p) });
    } else {
        // SAFETY: made by `Box::into_raw` in `box_into`, freed once.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// Takes the value out of an owned handle, freeing it.
///
/// # Safety
/// As [`free`], for an owned handle.
pub(crate) unsafe fn take<H: Opaque>(p: *mut H) -> Option<H::Rust> {
    debug_assert!(!H::ARC);
    // SAFETY: made by `Box::into_raw` in `box_into`, taken once (caller's
    // contract).
    (!p.is_null()).then(|| *unsafe { Box::from_raw(p.cast::<H::Rust>()) })
}
