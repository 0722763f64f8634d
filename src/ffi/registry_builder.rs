//! `nb_registry_builder`: a registry's settings from C, in rustls-ffi's
//! builder pattern (set, then `nb_registry_build`). `registry.rs` has the
//! registry itself.

use super::breaker::c_str;
use super::config::{self, nb_config};
use super::handle::{self, Opaque};
use super::listeners::{nb_free_callback, nb_transition, UserData};
use super::nb_result;
use super::panic::{boundary, try_out};
use super::registry::{error, nb_registry};
use crate::registry::{Pattern, RegistryBuilder, MAX_NAME_LEN};
use std::ffi::{c_char, c_void};
use std::time::Duration;

/// Settings for a registry, made by `nb_registry_builder_new`, consumed by
/// `nb_registry_build` (or freed by `nb_registry_builder_free`). Not for
/// use by two threads at once.
pub struct nb_registry_builder {
    _private: [u8; 0],
}

// SAFETY: every `nb_registry_builder *` is made by `handle::box_into` of a
// `RegistryBuilder`.
unsafe impl Opaque for nb_registry_builder {
    type Rust = RegistryBuilder;
    const ARC: bool = false;
}

/// A registry-wide transition listener: the breaker's name (`name_len`
/// bytes, not NUL-terminated) and its transition. Runs as an
/// `nb_transition_callback` does (see there), under the same rules.
pub type nb_registry_transition_callback = Option<
    unsafe extern "C" fn(
        name: *const c_char,
        name_len: usize,
        t: *const nb_transition,
        userdata: *mut c_void,
    ),
>;

/// `try_builder!(p)`: the builder behind `p`, mutably, or
/// `NB_NULL_ARGUMENT`.
macro_rules! try_builder {
    ($p:expr) => {
        // SAFETY: NULL or a live builder that no other thread uses (the
        // functions' contract).
        match unsafe { handle::as_mut($p) } {
            Some(b) => b,
            None => return nb_result::NB_NULL_ARGUMENT,
        }
    };
}

/// Applies `f` to the builder (taken out and put back: the Rust builder
/// is by value).
fn update(b: &mut RegistryBuilder, f: impl FnOnce(RegistryBuilder) -> RegistryBuilder) {
    let taken = std::mem::replace(b, RegistryBuilder::new());
    *b = f(taken);
}

/// Reads a config for the builder: as `nb_breaker_new` reads one
/// (`NB_INVALID_CONFIG` with `nb_config_invalid_field`); its `stripes` is
/// ignored (see `nb_registry_builder_stripes`).
///
/// # Safety
/// As `nb_breaker_new`'s `cfg`.
unsafe fn read_config(cfg: *const nb_config) -> Result<crate::Config, nb_result> {
    // SAFETY: forwarded.
    unsafe { config::read(cfg) }.map(|(c, _stripes)| c)
}

/// A new builder: every breaker gets `nb_config_default`'s config, no
/// templates, no TTL, capacity 100000. Free it with
/// `nb_registry_builder_free` unless it is passed to `nb_registry_build`.
///
/// # Safety
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn nb_registry_builder_new(out: *mut *mut nb_registry_builder) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let out = try_out!(out);
        // SAFETY: non-NULL and writable (caller's contract).
        unsafe { out.write(handle::box_into(RegistryBuilder::new())) };
        nb_result::NB_OK
    })
}

/// Frees a builder not passed to `nb_registry_build`. NULL is a no-op.
///
/// # Safety
/// `b` is NULL or a live builder, freed once.
#[no_mangle]
pub unsafe extern "C" fn nb_registry_builder_free(b: *mut nb_registry_builder) {
    // SAFETY: NULL or a live builder, freed once (caller's contract).
    boundary!((), { unsafe { handle::free(b) } })
}

/// The config of every breaker that no template or name matches.
///
/// # Safety
/// `b` is NULL or a live builder; `cfg` as in `nb_breaker_new`.
#[no_mangle]
pub unsafe extern "C" fn nb_registry_builder_default_config(
    b: *mut nb_registry_builder,
    cfg: *const nb_config,
) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let b = try_builder!(b);
        // SAFETY: forwarded from the caller.
        let config = match unsafe { read_config(cfg) } {
            Ok(c) => c,
            Err(r) => return r,
        };
        update(b, |b| b.default_config(config));
        nb_result::NB_OK
    })
}

/// The config of every breaker whose name matches `pattern` (`*` matches
/// any run of characters, e.g. `"payments.*"`); the first matching
/// template added wins. `NB_INVALID_ARGUMENT` for a pattern that is empty,
/// not UTF-8 or longer than `NB_MAX_NAME_LEN` bytes.
///
/// # Safety
/// `b` is NULL or a live builder; `pattern` is NULL or NUL-terminated;
/// `cfg` as in `nb_breaker_new`.
#[no_mangle]
pub unsafe extern "C" fn nb_registry_builder_template(
    b: *mut nb_registry_builder,
    pattern: *const c_char,
    cfg: *const nb_config,
) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let b = try_builder!(b);
        if pattern.is_null() {
            return nb_result::NB_NULL_ARGUMENT;
        }
        // SAFETY: NUL-terminated (caller's contract).
        let Some(pattern) = (unsafe { c_str(pattern, MAX_NAME_LEN) }) else {
            return nb_result::NB_INVALID_ARGUMENT;
        };
        if Pattern::new(pattern).is_err() {
            return nb_result::NB_INVALID_ARGUMENT;
        }
        // SAFETY: forwarded from the caller.
        let config = match unsafe { read_config(cfg) } {
            Ok(c) => c,
            Err(r) => return r,
        };
        // The pattern was checked above, so `template` cannot fail here.
        update(b, |b| b.template(pattern, config).expect("pattern checked"));
        nb_result::NB_OK
    })
}

/// The config of the breaker named exactly `name` (before any template).
///
/// # Safety
/// `b` is NULL or a live builder; `name` is NULL or NUL-terminated; `cfg`
/// as in `nb_breaker_new`.
#[no_mangle]
pub unsafe extern "C" fn nb_registry_builder_named(
    b: *mut nb_registry_builder,
    name: *const c_char,
    cfg: *const nb_config,
) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let b = try_builder!(b);
        if name.is_null() {
            return nb_result::NB_NULL_ARGUMENT;
        }
        // SAFETY: NUL-terminated (caller's contract).
        let Some(name) = (unsafe { c_str(name, MAX_NAME_LEN) }).filter(|n| !n.is_empty()) else {
            return nb_result::NB_INVALID_ARGUMENT;
        };
        // SAFETY: forwarded from the caller.
        let config = match unsafe { read_config(cfg) } {
            Ok(c) => c,
            Err(r) => return r,
        };
        update(b, |b| b.named(name, config));
        nb_result::NB_OK
    })
}

/// Registry settings, 0 leaving one as it is: `capacity` (breakers held
/// at most; default 100000), `ttl_ns` (closed breakers idle this long are
/// evicted; default never), `stripes` (of every breaker, at most 64;
/// default as `nb_config_default`), `max_key_len` (bytes; default 256).
/// `nb_registry_build` refuses stripes over 64 (`NB_INVALID_ARGUMENT`).
///
/// # Safety
/// `b` is NULL or a live builder.
#[no_mangle]
pub unsafe extern "C" fn nb_registry_builder_settings(
    b: *mut nb_registry_builder,
    capacity: usize,
    ttl_ns: u64,
    stripes: u32,
    max_key_len: usize,
) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let b = try_builder!(b);
        update(b, |mut b| {
            if capacity != 0 {
                b = b.capacity(capacity);
            }
            if max_key_len != 0 {
                b = b.max_key_len(max_key_len);
            }
            if ttl_ns != 0 {
                b = b.ttl(Duration::from_nanos(ttl_ns));
            }
            if stripes != 0 {
                b = b.stripes(stripes);
            }
            b
        });
        nb_result::NB_OK
    })
}

/// Whether every breaker records how long its calls take (off by
/// default): the Prometheus render then carries the
/// `nanobreaker_call_duration_seconds` histogram. Costs a clock read per
/// call.
///
/// # Safety
/// `b` is NULL or a live builder.
#[no_mangle]
pub unsafe extern "C" fn nb_registry_builder_record_latency(
    b: *mut nb_registry_builder,
    on: bool,
) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let b = try_builder!(b);
        update(b, |b| b.record_latency(on));
        nb_result::NB_OK
    })
}

/// A listener for the transitions of every breaker of the registry.
/// `free_userdata` (may be NULL) is called once with `userdata` when the
/// registry and all its breakers are gone (or with the builder, if it is
/// freed unbuilt). At most one: a second replaces the first (whose
/// userdata is freed).
///
/// # Safety
/// `b` is NULL or a live builder; the callback and `userdata` as in
/// `nb_breaker_on_transition`.
#[no_mangle]
pub unsafe extern "C" fn nb_registry_builder_on_transition(
    b: *mut nb_registry_builder,
    callback: nb_registry_transition_callback,
    userdata: *mut c_void,
    free_userdata: nb_free_callback,
) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        let b = try_builder!(b);
        let Some(callback) = callback else { return nb_result::NB_NULL_ARGUMENT };
        UserData::register(userdata, free_userdata, |data| {
            update(b, |b| {
                b.on_transition(move |name, t| {
                    let t = nb_transition::of(t);
                    // SAFETY: a valid function given with this userdata
                    // (caller's contract); `name` and `t` live across the call.
                    unsafe { callback(name.as_ptr().cast(), name.len(), &t, data.ptr()) }
                })
            })
        });
        nb_result::NB_OK
    })
}

/// Makes the registry. The builder is consumed whatever the result (do not
/// use or free it after). On `NB_OK` writes the registry to `*out`; free it
/// with `nb_registry_free`. `NB_INVALID_ARGUMENT`: a setting is out of
/// range.
///
/// # Safety
/// `b` is NULL or a live builder; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn nb_registry_build(
    b: *mut nb_registry_builder,
    out: *mut *mut nb_registry,
) -> nb_result {
    boundary!(nb_result::NB_PANIC, {
        // SAFETY: NULL or a live builder, consumed once (caller's contract).
        let Some(builder) = (unsafe { handle::take(b) }) else { return nb_result::NB_NULL_ARGUMENT };
        let out = try_out!(out);
        match builder.build() {
            Ok(r) => {
                // SAFETY: non-NULL and writable (caller's contract).
                unsafe { out.write(handle::box_into(r)) };
                nb_result::NB_OK
            }
            Err(e) => error(&e),
        }
    })
}
