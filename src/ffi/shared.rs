//! `nb_shared_open`: a breaker shared by every process of the host that
//! opens the same name (see the Rust `SharedBreaker` for the semantics;
//! the handle it gives is an ordinary `nb_breaker`).

use super::breaker::{c_str, nb_breaker};
use super::config;
use super::handle;
use super::nb_result;
use super::panic::{boundary, try_out, try_ref};
use std::ffi::c_char;

/// `nb_shared_open` flag: take the region's config when it differs from
/// `cfg`, instead of failing with `NB_CONFIG_MISMATCH`.
pub const NB_SHARED_ADOPT: u32 = 1;

/// `nb_shared_open` flag: make `cfg` the region's config when it differs
/// (a deploy that changes thresholds), as a reconfigure that every other
/// process takes within 10 ms. A region with another window still gives
/// `NB_CONFIG_MISMATCH`. Wins over `NB_SHARED_ADOPT`.
pub const NB_SHARED_REPLACE: u32 = 2;

/// Opens (or creates) the breaker every process of the host shares under
/// `name_or_path`: a bare name (1..=200 of `[A-Za-z0-9._-]`) is the file
/// `/dev/shm/nanobreaker-v4-<name>` (`v4`: the region's layout version, so
/// libraries of another layout use another file), anything with a `/` is a
/// path. The first
/// opener's `cfg` is the region's (and its `stripes`); a later opener with
/// another config gets `NB_CONFIG_MISMATCH` unless `flags` has
/// `NB_SHARED_ADOPT` (take the region's) or `NB_SHARED_REPLACE` (make
/// `cfg` the region's). `mode` is the file's mode if this process creates
/// it (0: 0600, the owning user's processes only). Open it in each process
/// after any fork: a mapping made before a fork is shared, but the
/// watcher thread that brings other processes' reconfigurations and
/// transitions to this one's listeners is not.
///
/// On `NB_OK` writes a breaker handle to `*out` (free it with
/// `nb_breaker_free`; every other `nb_breaker_*` and `nb_acquire`/`nb_record`
/// call works on it). Errors: `NB_INVALID_ARGUMENT` (a bad name, or an
/// unknown flag), `NB_INVALID_CONFIG`, `NB_CONFIG_MISMATCH`,
/// `NB_SHARED_CORRUPT` (the file is not a region this library can use:
/// another layout version, garbage, another kind of clock),
/// `NB_SHARED_IO` (a system call failed; `errno` says why).
///
/// # Safety
/// `name_or_path` is NULL or a NUL-terminated string; `cfg` is NULL or an
/// `nb_config` of at least `cfg->size` bytes; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn nb_shared_open(
    name_or_path: *const c_char,
    cfg: *const config::nb_config,
    mode: u32,
    flags: u32,
    out: *mut *mut nb_breaker,
) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let out = try_out!(out);
        if name_or_path.is_null() {
            return nb_result::NB_NULL_ARGUMENT;
        }
        if flags & !(NB_SHARED_ADOPT | NB_SHARED_REPLACE) != 0 || mode > 0o7777 {
            return nb_result::NB_INVALID_ARGUMENT;
        }
        // SAFETY: NUL-terminated (caller's contract).
        let Some(name) = (unsafe { c_str(name_or_path, 4096) }) else {
            return nb_result::NB_INVALID_ARGUMENT;
        };
        // SAFETY: forwarded from the caller.
        let (config, stripes) = match unsafe { config::read(cfg) } {
            Ok(c) => c,
            Err(r) => return r,
        };
        // SAFETY: `out` is non-NULL and writable (caller's contract).
        unsafe { open(name, config, stripes, mode, flags, out) }
    })
}

/// The body of `nb_shared_open` once its arguments are read.
///
/// # Safety
/// `out` is non-NULL and writable.
#[cfg(unix)]
unsafe fn open(
    name: &str,
    config: crate::Config,
    stripes: u32,
    mode: u32,
    flags: u32,
    out: *mut *mut nb_breaker,
) -> nb_result {
    use crate::{SharedError, SharedOptions};
    let mut b = crate::CircuitBreaker::builder().config(config);
    if stripes != 0 {
        b = b.stripes(stripes);
    }
    let options = SharedOptions::default()
        .mode(if mode == 0 { 0o600 } else { mode })
        .adopt(flags & NB_SHARED_ADOPT != 0)
        .replace(flags & NB_SHARED_REPLACE != 0);
    match b.build_shared(name, options) {
        Ok(shared) => {
            // SAFETY: non-NULL and writable (caller's contract).
            unsafe { out.write(handle::arc_into(shared.breaker().clone())) };
            nb_result::NB_OK
        }
        Err(SharedError::BadName | SharedError::BadPath) => nb_result::NB_INVALID_ARGUMENT,
        Err(SharedError::Config(_)) => nb_result::NB_INVALID_CONFIG,
        Err(SharedError::ConfigMismatch(_)) => nb_result::NB_CONFIG_MISMATCH,
        Err(SharedError::Io(_, e)) => {
            set_errno(e.raw_os_error().unwrap_or(libc::EIO));
            nb_result::NB_SHARED_IO
        }
        Err(_) => nb_result::NB_SHARED_CORRUPT,
    }
}

/// Shared breakers need Unix.
///
/// # Safety
/// None needed.
#[cfg(not(unix))]
unsafe fn open(_: &str, _: crate::Config, _: u32, _: u32, _: u32, _: *mut *mut nb_breaker) -> nb_result {
    nb_result::NB_SHARED_IO
}

#[cfg(target_os = "linux")]
fn set_errno(e: i32) {
    // SAFETY: the calling thread's errno, always a valid pointer.
    unsafe { *libc::__errno_location() = e };
}

#[cfg(all(unix, not(target_os = "linux")))]
fn set_errno(_: i32) {}

/// Does now what each process's watcher thread does every 10 ms for a
/// shared breaker: takes the region's config if another process
/// reconfigured it, and delivers to this process's listeners every
/// transition they have not heard. For an in-process breaker, delivers
/// waiting events. `NB_NULL_ARGUMENT` for NULL.
///
/// # Safety
/// `b` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn nb_shared_sync(b: *const nb_breaker) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let cb = try_ref!(b);
        #[cfg(unix)]
        crate::shared::watch::sync(cb);
        #[cfg(not(unix))]
        cb.deliver_events();
        nb_result::NB_OK
    })
}
