//! `nb_breaker`: the handle, its life (`_new`, `_free`) and the operator
//! calls (state, transition, reset, reconfigure).

use super::config::{self, nb_config};
use super::panic::{boundary, try_out, try_ref};
use super::{nb_result, nb_state, state_from_u32};
use crate::CircuitBreaker;

/// A circuit breaker. Opaque; made by `nb_breaker_new`, released by
/// `nb_breaker_free`. Every function taking a `const nb_breaker *` may be
/// called from any number of threads at once.
pub struct nb_breaker {
    /// Unique in the process, never reused: a permit names its breaker by
    /// it, so a permit of a freed breaker is refused by one that reuses its
    /// memory.
    pub(crate) id: u64,
    pub(crate) inner: CircuitBreaker,
}

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
    boundary!(nb_result::NB_PANIC, {
        let out = try_out!(out);
        // SAFETY: forwarded from the caller.
        let (config, stripes) = match unsafe { config::read(cfg) } {
            Ok(c) => c,
            Err(r) => return r,
        };
        let mut b = CircuitBreaker::builder().config(config);
        if stripes != 0 {
            b = b.stripes(stripes);
        }
        let inner = match b.build() {
            Ok(cb) => cb,
            Err(_) => return nb_result::NB_INVALID_CONFIG,
        };
        let handle = Box::new(nb_breaker { id: crate::sync::next_id(), inner });
        // SAFETY: `out` is non-NULL and writable (caller's contract).
        unsafe { out.write(Box::into_raw(handle)) };
        nb_result::NB_OK
    })
}

/// Frees a breaker made by `nb_breaker_new`, and then each listener's
/// userdata through its free callback. NULL is a no-op. No other thread may
/// use the breaker during or after this call.
///
/// # Safety
/// `b` is NULL or a live handle from `nb_breaker_new`, freed only once.
#[no_mangle]
pub unsafe extern "C" fn nb_breaker_free(b: *mut nb_breaker) {
    boundary!((), {
        if !b.is_null() {
            // SAFETY: a live handle from `Box::into_raw` in `nb_breaker_new`,
            // not used again (caller's contract).
            drop(unsafe { Box::from_raw(b) });
        }
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
        match unsafe { b.as_ref() } {
            Some(b) => b.inner.state().into(),
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
        b.inner.transition_to(state);
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
        try_ref!(b).inner.reset();
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
        match b.inner.reconfigure(config) {
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
        unsafe { config::write_out(out, size, &b.inner.config()) }
    })
}
