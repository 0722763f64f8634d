//! `nb_registry`: named breakers made on first use, from C. Built with an
//! `nb_registry_builder` (`registry_builder.rs`: set, then build);
//! `nb_registry_get` hands out `nb_breaker` handles; the Prometheus text of
//! every breaker comes from `nb_registry_render_prometheus`.
//!
//! Strings: keys (per call, possibly from a request) are bytes with a
//! length, `key` and `key_len`, UTF-8, not NUL-terminated; patterns and
//! names given once to the builder are NUL-terminated.

use super::breaker::nb_breaker;
use super::handle::{self, Opaque};
use super::nb_result;
use super::panic::{boundary, try_out, try_ref};
use crate::registry::{Registry, RegistryError};
use crate::CircuitBreaker;
use std::ffi::{c_char, c_int, c_void};
use std::sync::Arc;

/// Named breakers, made on first use. Every function taking a
/// `const nb_registry *` may be called from any number of threads at once.
pub struct nb_registry {
    _private: [u8; 0],
}

// SAFETY: every `nb_registry *` is made by `handle::box_into` of a
// `Registry`.
unsafe impl Opaque for nb_registry {
    type Rust = Registry;
    const ARC: bool = false;
}

/// Called by `nb_registry_for_each` with each breaker (a handle lent for
/// the call, which the callback must not free: `nb_breaker_clone` it to
/// keep it), its name
/// (`name_len` bytes, not NUL-terminated) and `userdata`. Return 0 to go
/// on, anything else to stop.
pub type nb_registry_visit_callback = Option<
    unsafe extern "C" fn(
        b: *const nb_breaker,
        name: *const c_char,
        name_len: usize,
        userdata: *mut c_void,
    ) -> c_int,
>;

/// Frees a registry. Handles to its breakers stay valid; each breaker goes
/// when its last handle does. NULL is a no-op. No other thread may use the
/// registry during or after this call.
///
/// # Safety
/// `r` is NULL or a live registry, freed once.
#[no_mangle]
pub unsafe extern "C" fn nb_registry_free(r: *mut nb_registry) {
    // SAFETY: NULL or a live registry, freed once (caller's contract).
    boundary!((), { unsafe { handle::free(r) } })
}

pub(super) fn error(e: &RegistryError) -> nb_result {
    match e {
        RegistryError::Full { .. } => nb_result::NB_REGISTRY_FULL,
        RegistryError::Config { .. } => nb_result::NB_INVALID_CONFIG,
        _ => nb_result::NB_INVALID_ARGUMENT,
    }
}

/// The key `(key, len)` as a str, or the result to return.
///
/// # Safety
/// `key` is NULL or readable for `len` bytes.
unsafe fn key<'a>(key: *const c_char, len: usize) -> Result<&'a str, nb_result> {
    if len == 0 {
        return Ok(""); // empty: the registry refuses it (NB_INVALID_ARGUMENT)
    }
    if key.is_null() {
        return Err(nb_result::NB_NULL_ARGUMENT);
    }
    // SAFETY: readable for `len` bytes (caller's contract).
    let bytes = unsafe { std::slice::from_raw_parts(key.cast::<u8>(), len) };
    std::str::from_utf8(bytes).map_err(|_| nb_result::NB_INVALID_ARGUMENT)
}

/// The body of `nb_registry_get` and `nb_registry_find`: checks the
/// arguments, then hands out a new handle to what `lookup` finds for the
/// key.
///
/// # Safety
/// As `nb_registry_get`.
unsafe fn by_key(
    r: *const nb_registry,
    key: *const c_char,
    key_len: usize,
    out: *mut *mut nb_breaker,
    lookup: impl FnOnce(&Registry, &str) -> Result<Arc<CircuitBreaker>, nb_result>,
) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let r = try_ref!(r);
        let out = try_out!(out);
        // SAFETY: forwarded from the caller.
        let key = match unsafe { self::key(key, key_len) } {
            Ok(k) => k,
            Err(e) => return e,
        };
        match lookup(r, key) {
            Ok(b) => {
                // SAFETY: `out` is non-NULL and writable (caller's contract).
                unsafe { out.write(handle::arc_into(b)) };
                nb_result::NB_OK
            }
            Err(e) => e,
        }
    })
}

/// The breaker named by the `key_len` bytes at `key` (UTF-8), made now
/// from its config if the registry has none; two threads asking for a new
/// key get the same breaker. On `NB_OK` writes a new handle to `*out`:
/// free it with `nb_breaker_free` (while a handle lives the breaker is
/// never evicted). `NB_INVALID_ARGUMENT`: the key is empty, not UTF-8 or
/// longer than `max_key_len`. `NB_REGISTRY_FULL`: at capacity with nothing
/// evictable. Finding an existing key takes no lock and allocates nothing
/// (the handle is one more count on the breaker).
///
/// # Safety
/// `r` is NULL or a live registry; `key` is NULL or readable for `key_len`
/// bytes; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn nb_registry_get(
    r: *const nb_registry,
    key: *const c_char,
    key_len: usize,
    out: *mut *mut nb_breaker,
) -> nb_result {
    // SAFETY: forwarded from the caller.
    unsafe { by_key(r, key, key_len, out, |r, k| r.get(k).map_err(|e| error(&e))) }
}

/// As `nb_registry_get`, but never makes a breaker: `NB_NOT_FOUND` if the
/// registry has none for the key.
///
/// # Safety
/// As `nb_registry_get`.
#[no_mangle]
pub unsafe extern "C" fn nb_registry_find(
    r: *const nb_registry,
    key: *const c_char,
    key_len: usize,
    out: *mut *mut nb_breaker,
) -> nb_result {
    // SAFETY: forwarded from the caller.
    unsafe { by_key(r, key, key_len, out, |r, k| r.find(k).ok_or(nb_result::NB_NOT_FOUND)) }
}

/// Removes the breaker of a key from the registry (`NB_NOT_FOUND` if
/// none). Handles to it stay valid; a later get makes a new breaker.
///
/// # Safety
/// `r` is NULL or a live registry; `key` is NULL or readable for `key_len`
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn nb_registry_remove(
    r: *const nb_registry,
    key: *const c_char,
    key_len: usize,
) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let r = try_ref!(r);
        // SAFETY: forwarded from the caller.
        let key = match unsafe { self::key(key, key_len) } {
            Ok(k) => k,
            Err(e) => return e,
        };
        match r.remove(key) {
            Some(_) => nb_result::NB_OK,
            None => nb_result::NB_NOT_FOUND,
        }
    })
}

/// How many breakers the registry holds (0 for NULL).
///
/// # Safety
/// `r` is NULL or a live registry.
#[no_mangle]
pub unsafe extern "C" fn nb_registry_len(r: *const nb_registry) -> usize {
    // SAFETY: NULL or a live registry (caller's contract).
    boundary!(0, { unsafe { handle::as_ref(r) }.map_or(0, Registry::len) })
}

/// Evicts the breakers idle for the TTL now (closed ones nobody holds a
/// handle to); returns how many went (0 for NULL or no TTL).
///
/// # Safety
/// `r` is NULL or a live registry.
#[no_mangle]
pub unsafe extern "C" fn nb_registry_evict_idle(r: *const nb_registry) -> usize {
    // SAFETY: NULL or a live registry (caller's contract).
    boundary!(0, { unsafe { handle::as_ref(r) }.map_or(0, Registry::evict_idle) })
}

/// Calls `visit` with each breaker of the registry (in no set order) until
/// it returns non-zero. The callback may call the registry and the breaker,
/// but not free either.
///
/// # Safety
/// `r` is NULL or a live registry; `visit` as `nb_registry_visit_callback`
/// says, given `userdata`.
#[no_mangle]
pub unsafe extern "C" fn nb_registry_for_each(
    r: *const nb_registry,
    visit: nb_registry_visit_callback,
    userdata: *mut c_void,
) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let r = try_ref!(r);
        let Some(visit) = visit else { return nb_result::NB_NULL_ARGUMENT };
        let mut stop = false;
        r.for_each_claimed(|b| {
            if !stop {
                // A counted handle for the call (so the breaker outlives an
                // eviction or removal the callback causes, and one the
                // callback clones is never one the registry dropped).
                let (name, len) = (b.name().as_ptr(), b.name().len());
                let h = handle::arc_into::<nb_breaker>(b);
                // SAFETY: a valid function (caller's contract); the handle,
                // the name it owns and userdata are live across the call.
                stop = unsafe { visit(h, name.cast(), len, userdata) } != 0;
                // SAFETY: made just above, freed once; the callback only
                // borrowed it (nb_registry_visit_callback's contract).
                unsafe { handle::free(h) };
            }
        });
        nb_result::NB_OK
    })
}

/// Every breaker's metrics in the Prometheus text exposition format (the
/// families of the README's "Metrics" section), read now. On `NB_OK`,
/// `*text` is a NUL-terminated string of `*len` bytes (without the NUL)
/// that the caller frees with `nb_string_free`.
///
/// # Safety
/// `r` is NULL or a live registry; `text` and `len` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn nb_registry_render_prometheus(
    r: *const nb_registry,
    text: *mut *mut c_char,
    len: *mut usize,
) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let r = try_ref!(r);
        let (text, len) = (try_out!(text), try_out!(len));
        let rendered = r.render_prometheus();
        // SAFETY: both non-NULL and writable (caller's contract).
        unsafe { c_string(&rendered, text, len) }
    })
}

/// Copies `s` into a `malloc`ed NUL-terminated string for the caller
/// (`nb_string_free` frees it). A key may hold a NUL byte, so `*len` (not
/// the first NUL) is the length.
///
/// # Safety
/// `text` and `len` are non-NULL and writable.
unsafe fn c_string(s: &str, text: *mut *mut c_char, len: *mut usize) -> nb_result {
    // SAFETY: malloc has no preconditions; NULL is checked below.
    let p = unsafe { libc::malloc(s.len() + 1) }.cast::<u8>();
    if p.is_null() {
        return nb_result::NB_OUT_OF_MEMORY;
    }
    // SAFETY: `p` is a fresh block of `s.len() + 1` bytes, apart from `s`.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
        p.add(s.len()).write(0);
        text.write(p.cast());
        len.write(s.len());
    }
    nb_result::NB_OK
}

/// Frees a string the library allocated (`nb_registry_render_prometheus`).
/// NULL is a no-op.
///
/// # Safety
/// `s` is NULL or such a string, freed once.
#[no_mangle]
pub unsafe extern "C" fn nb_string_free(s: *mut c_char) {
    // SAFETY: NULL or a block from `malloc` in `c_string`, freed once
    // (caller's contract); free(NULL) is a no-op.
    unsafe { libc::free(s.cast()) }
}
