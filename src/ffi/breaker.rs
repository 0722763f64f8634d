//! `nb_breaker`: the handle, its life (`_new`, `_free`) and the operator
//! calls (state, name, transition, reset, reconfigure).

use super::config::{self, nb_config};
use super::handle::{self, Opaque};
use super::panic::{boundary, try_out, try_ref};
use super::{nb_result, nb_state, state_from_u32};
use crate::{CircuitBreaker, Name};
use std::ffi::{c_char, CStr};
use std::sync::Arc;

/// A handle to a circuit breaker. Opaque; made by `nb_breaker_new` (or
/// `nb_registry_get`), released by `nb_breaker_free`. Several handles may
/// name one breaker (each `nb_registry_get` of a key gives a new one); the
/// breaker lives until its last handle is freed and no registry holds it.
/// Every function taking a `const nb_breaker *` may be called from any
/// number of threads at once.
pub struct nb_breaker {
    _private: [u8; 0],
}

// SAFETY: every `nb_breaker *` the library hands out (`nb_breaker_new`,
// `nb_breaker_clone`, `nb_registry_get`/`find`, the handle lent by
// `nb_registry_for_each`) is made by `handle::arc_into` of an
// `Arc<CircuitBreaker>`.
unsafe impl Opaque for nb_breaker {
    type Rust = CircuitBreaker;
    const ARC: bool = true;
}

/// The longest name `nb_breaker_new_named` and a registry's builder take,
/// in bytes.
pub const NB_MAX_NAME_LEN: usize = 256;
const _: () = assert!(NB_MAX_NAME_LEN == crate::registry::MAX_NAME_LEN);

/// Makes a breaker from `cfg` (start from `nb_config_default`). On `NB_OK`
/// writes the new handle to `*out`; the caller frees it with
/// `nb_breaker_free`. On `NB_INVALID_CONFIG`, `nb_config_invalid_field(cfg)`
/// names the bad field.
///
/// # Safety
/// `cfg` is NULL or points to an `nb_config` of at least `cfg->size` bytes;
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_new(cfg: *const nb_config, out: *mut *mut nb_breaker) -> nb_result {
    // SAFETY: forwarded from the caller; NULL is no name.
    unsafe { new(cfg, std::ptr::null(), out) }
}

/// As `nb_breaker_new`, with a name (a NUL-terminated UTF-8 string of at
/// most `NB_MAX_NAME_LEN` bytes, copied; `NB_INVALID_ARGUMENT` otherwise),
/// which `nb_breaker_name` gives back and metrics carry.
///
/// # Safety
/// As `nb_breaker_new`; `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_new_named(
    cfg: *const nb_config,
    name: *const c_char,
    out: *mut *mut nb_breaker,
) -> nb_result {
    if name.is_null() {
        return nb_result::NB_NULL_ARGUMENT;
    }
    // SAFETY: forwarded from the caller.
    unsafe { new(cfg, name, out) }
}

/// The body of `nb_breaker_new` and `nb_breaker_new_named`.
///
/// # Safety
/// As `nb_breaker_new_named`, `name` NULL meaning no name.
unsafe fn new(cfg: *const nb_config, name: *const c_char, out: *mut *mut nb_breaker) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let out = try_out!(out);
        // SAFETY: forwarded from the caller.
        let (config, stripes) = match unsafe { config::read(cfg) } {
            Ok(c) => c,
            Err(r) => return r,
        };
        let mut b = CircuitBreaker::builder().config(config);
        if !name.is_null() {
            // SAFETY: a NUL-terminated string (caller's contract).
            match unsafe { c_str(name, NB_MAX_NAME_LEN) } {
                Some(s) => b = b.name(Name::from(s.to_owned())),
                None => return nb_result::NB_INVALID_ARGUMENT,
            }
        }
        if stripes != 0 {
            b = b.stripes(stripes);
        }
        let cb = match b.build() {
            Ok(cb) => cb,
            Err(_) => return nb_result::NB_INVALID_CONFIG,
        };
        // SAFETY: `out` is non-NULL and writable (caller's contract).
        unsafe { out.write(handle::arc_into(Arc::new(cb))) };
        nb_result::NB_OK
    })
}

/// A NUL-terminated string of at most `max` bytes that is UTF-8, or None.
///
/// # Safety
/// `p` is non-NULL and NUL-terminated.
pub(crate) unsafe fn c_str<'a>(p: *const c_char, max: usize) -> Option<&'a str> {
    // SAFETY: NUL-terminated (caller's contract).
    let s = unsafe { CStr::from_ptr(p) }.to_str().ok()?;
    (s.len() <= max).then_some(s)
}

/// Frees this handle. The breaker itself goes, with each listener's
/// userdata (through its free callback), when its last handle is freed and
/// no registry holds it. NULL is a no-op. No other thread may use this
/// handle during or after this call (other handles of the breaker stay
/// valid).
///
/// # Safety
/// `b` is NULL or a live handle, freed only once.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_free(b: *mut nb_breaker) {
    // SAFETY: NULL or a live handle, freed once (caller's contract).
    boundary!((), { unsafe { handle::free(b) } })
}

/// A second handle to the breaker `b` names (free each with
/// `nb_breaker_free`): for a second owner, such as another thread's
/// object. Handles are counted, not distinct: the pointer written to
/// `*out` equals `b`.
///
/// # Safety
/// `b` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_clone(b: *const nb_breaker, out: *mut *mut nb_breaker) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let out = try_out!(out);
        // SAFETY: NULL or a live handle (caller's contract).
        let Some(arc) = (unsafe { handle::arc_clone(b) }) else { return nb_result::NB_NULL_ARGUMENT };
        // SAFETY: non-NULL and writable (caller's contract).
        unsafe { out.write(handle::arc_into(arc)) };
        nb_result::NB_OK
    })
}

/// The breaker's name (empty if it has none): `*name` points to `*len`
/// bytes of UTF-8, valid while the handle lives, **not** NUL-terminated
/// (print it with `"%.*s", (int)len, name`).
///
/// # Safety
/// `b` is NULL or a live handle; `name` and `len` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_name(
    b: *const nb_breaker,
    name: *mut *const c_char,
    len: *mut usize,
) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let b = try_ref!(b);
        let (name, len) = (try_out!(name), try_out!(len));
        let s = b.name();
        // SAFETY: both non-NULL and writable (caller's contract).
        unsafe {
            name.write(s.as_ptr().cast());
            len.write(s.len());
        }
        nb_result::NB_OK
    })
}

/// The breaker's state, or `NB_STATE_UNKNOWN` for NULL.
///
/// # Safety
/// `b` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_state(b: *const nb_breaker) -> nb_state {
    boundary!(nb_state::NB_STATE_UNKNOWN, {
        // SAFETY: `b` is NULL or a live handle (caller's contract).
        match unsafe { handle::as_ref(b) } {
            Some(b) => b.state().into(),
            None => nb_state::NB_STATE_UNKNOWN,
        }
    })
}

/// Moves the breaker to `state` (an `nb_state`, not `NB_STATE_UNKNOWN`).
///
/// # Safety
/// `b` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_transition_to(b: *const nb_breaker, state: u32) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let b = try_ref!(b);
        let Some(state) = state_from_u32(state) else { return nb_result::NB_INVALID_ARGUMENT };
        b.transition_to(state);
        nb_result::NB_OK
    })
}

/// Back to closed, with an empty window and no backoff.
///
/// # Safety
/// `b` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_reset(b: *const nb_breaker) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        try_ref!(b).reset();
        nb_result::NB_OK
    })
}

/// Replaces the configuration at run time, whole, or not at all. The window
/// (kind, size, length) cannot change (`NB_INVALID_CONFIG`, field "window");
/// `stripes` is fixed at `nb_breaker_new` and ignored here.
///
/// # Safety
/// `b` is NULL or a live handle; `cfg` as in `nb_breaker_new`.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_reconfigure(b: *const nb_breaker, cfg: *const nb_config) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let b = try_ref!(b);
        // SAFETY: forwarded from the caller.
        let (config, _stripes) = match unsafe { config::read(cfg) } {
            Ok(c) => c,
            Err(r) => return r,
        };
        match b.reconfigure(config) {
            Ok(()) => nb_result::NB_OK,
            Err(_) => nb_result::NB_INVALID_CONFIG,
        }
    })
}

/// Writes the configuration in force to the caller's `nb_config` of `size`
/// bytes (`sizeof(nb_config)`), as `nb_config_default` does.
///
/// # Safety
/// `b` is NULL or a live handle; `out` is NULL or writable for `size` bytes.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_config(
    b: *const nb_breaker,
    out: *mut nb_config,
    size: usize,
) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let b = try_ref!(b);
        // SAFETY: forwarded from the caller.
        unsafe { config::write_out(out, size, &b.config()) }
    })
}
