//! The panic boundary and the pointer checks every `extern "C"` body uses
//! (after rustls-ffi's `ffi_panic_boundary!` and `try_ref_from_ptr!`).

use std::panic::{catch_unwind, UnwindSafe};

/// Runs `f`, turning a panic into `on_panic`.
///
/// Every `extern "C"` body goes through here (via [`boundary!`]). The engine
/// does not panic on any input; this is the guarantee that a bug still
/// cannot unwind into a C frame (which would be undefined behaviour).
#[inline(always)]
pub(crate) fn guard<T>(on_panic: T, f: impl FnOnce() -> T + UnwindSafe) -> T {
    catch_unwind(f).unwrap_or(on_panic)
}

/// `boundary!(on_panic, { body })`: runs `body` inside the panic boundary.
/// `return` in `body` returns from the body, with the function's type. The
/// body captures the arguments by value (`move`: they are pointers and
/// integers), so it needs no stack round trip when it is not inlined.
macro_rules! boundary {
    ($on_panic:expr, $body:block) => {
        $crate::ffi::panic::guard($on_panic, ::std::panic::AssertUnwindSafe(move || $body))
    };
}

/// `try_ref!(h)`: borrows the value behind the handle `h` (see
/// `handle.rs`), or returns `NB_NULL_ARGUMENT` for NULL.
macro_rules! try_ref {
    ($p:expr) => {
        // SAFETY: every handle argument of an nb_ function is NULL or a live
        // handle for the call (the function's documented contract).
        match unsafe { $crate::ffi::handle::as_ref($p) } {
            Some(r) => r,
            None => return $crate::ffi::nb_result::NB_NULL_ARGUMENT,
        }
    };
}

/// `try_mut!(p)`: borrows `*p` mutably, or returns `NB_NULL_ARGUMENT` for
/// NULL. Only for in-out arguments that hold a value the library wrote
/// (an `nb_permit`), never for out-parameters that may be uninitialised.
macro_rules! try_mut {
    ($p:expr) => {
        // SAFETY: the pointer is NULL or valid for reads and writes, holds an
        // initialised value (the function's documented contract), and no
        // other reference to it exists during the call.
        match unsafe { ($p).as_mut() } {
            Some(r) => r,
            None => return $crate::ffi::nb_result::NB_NULL_ARGUMENT,
        }
    };
}

/// `try_out!(p)`: an out-parameter, or `NB_NULL_ARGUMENT` for NULL.
macro_rules! try_out {
    ($p:expr) => {{
        let p = $p;
        if p.is_null() {
            return $crate::ffi::nb_result::NB_NULL_ARGUMENT;
        }
        p
    }};
}

pub(crate) use {boundary, try_mut, try_out, try_ref};
