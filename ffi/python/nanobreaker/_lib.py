"""Loads libnanobreaker and declares the C ABI (include/nanobreaker.h).

Everything here mirrors the header: the structs field for field, the
constants, and a prototype (argtypes and restype) for every function the
package calls. The rest of the package uses `lib` and never guesses a type.

Where the library comes from, first match wins:

1. ``NANOBREAKER_LIB``: a path to ``libnanobreaker.so`` (nothing else is
   tried when it is set);
2. ``ctypes.util.find_library("nanobreaker")``: an installed library
   (``ffi/c/install.sh``);
3. this source tree's ``target/release`` then ``target/debug`` (``sh
   ffi/c/build.sh [--release]``), when the package runs from a checkout.

A library that lacks a function this package needs, or whose version is
not one this package supports, is skipped (or refused, for
``NANOBREAKER_LIB``) with a message saying why.
"""

import ctypes
import ctypes.util
import os
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_double,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)

# --- Constants (the header's #defines and enums) -----------------------------

NB_VERSION_MAJOR = 0
NB_VERSION_MINOR = 1
NB_VERSION_PATCH = 0
NB_VERSION_NUM = NB_VERSION_MAJOR * 1000000 + NB_VERSION_MINOR * 1000 + NB_VERSION_PATCH
#: The oldest library this package runs with: 0.1.0 added nb_shared_open.
MIN_VERSION_NUM = 1000
NB_MAX_NAME_LEN = 256
NB_MAX_REASONS = 16
NB_SHARED_ADOPT = 1
NB_SHARED_REPLACE = 2
UINT64_MAX = (1 << 64) - 1
UINT32_MAX = (1 << 32) - 1

# nb_result
NB_OK = 0
NB_REJECTED = 1
NB_NULL_ARGUMENT = 2
NB_INVALID_CONFIG = 3
NB_INVALID_ARGUMENT = 4
NB_FOREIGN_PERMIT = 5
NB_PANIC = 6
NB_PERMIT_SPENT = 7
NB_REGISTRY_FULL = 8
NB_NOT_FOUND = 9
NB_OUT_OF_MEMORY = 10
NB_SHARED_IO = 11
NB_SHARED_CORRUPT = 12
NB_CONFIG_MISMATCH = 13

# nb_outcome
NB_SUCCESS = 0
NB_FAILURE = 1
NB_IGNORED = 2


# --- Structs -----------------------------------------------------------------


class nb_config(Structure):
    """``struct nb_config``: fill it with ``nb_config_default`` first."""

    _fields_ = [
        ("size", c_size_t),
        ("failure_rate_threshold", c_double),
        ("minimum_calls", c_uint32),
        ("window_kind", c_uint32),
        ("window_size", c_uint32),
        ("reserved", c_uint32),
        ("window_length_ns", c_uint64),
        ("slow_call_duration_ns", c_uint64),
        ("slow_call_rate_threshold", c_double),
        ("consecutive_failures", c_uint32),
        ("half_open_permits", c_uint32),
        ("open_wait_ns", c_uint64),
        ("backoff_multiplier", c_double),
        ("max_open_wait_ns", c_uint64),
        ("jitter", c_double),
        ("half_open_max_wait_ns", c_uint64),
        ("stripes", c_uint32),
        ("half_open_policy", c_uint32),
    ]


class nb_transition(Structure):
    """``struct nb_transition`` (``from`` is spelled ``from_`` here)."""

    _fields_ = [
        ("size", c_uint32),
        ("from_", c_uint32),
        ("to", c_uint32),
        ("reason", c_uint32),
        ("generation", c_uint64),
        ("at_ns", c_uint64),
    ]


class nb_metrics(Structure):
    """``struct nb_metrics``: pass ``sizeof`` to ``nb_breaker_metrics``."""

    _fields_ = [
        ("size", c_size_t),
        ("state", c_uint32),
        ("half_open_in_flight", c_uint32),
        ("failure_rate", c_double),
        ("slow_call_rate", c_double),
        ("window_calls", c_uint64),
        ("window_failures", c_uint64),
        ("window_slow_calls", c_uint64),
        ("calls", c_uint64),
        ("successes", c_uint64),
        ("failures", c_uint64),
        ("slow_calls", c_uint64),
        ("ignored", c_uint64),
        ("rejected", c_uint64),
        ("since_last_transition_ns", c_uint64),
        ("generation", c_uint64),
        ("events_lost", c_uint64),
        ("timeouts", c_uint64),
        ("since_last_success_ns", c_uint64),
        ("since_last_failure_ns", c_uint64),
        ("opens", c_uint64),
        ("probes_succeeded", c_uint64),
        ("probes_failed", c_uint64),
        ("transitions_by_reason", c_uint64 * NB_MAX_REASONS),
    ]


class nb_permit(Structure):
    """``struct nb_permit``: opaque, 32 bytes for the whole ABI major."""

    _fields_ = [("opaque", c_uint64 * 4)]


#: ``nb_transition_callback``: ``void (*)(const nb_transition *, void *)``.
TRANSITION_CALLBACK = CFUNCTYPE(None, POINTER(nb_transition), c_void_p)
#: ``nb_free_callback``: ``void (*)(void *)``.
FREE_CALLBACK = CFUNCTYPE(None, c_void_p)

_handle = c_void_p  # const nb_breaker *
_out_handle = POINTER(c_void_p)  # nb_breaker **
_cfg = POINTER(nb_config)

# name: (restype, argtypes)
PROTOTYPES = {
    "nb_version": (c_char_p, []),
    "nb_version_num": (c_uint32, []),
    "nb_result_str": (c_char_p, [c_uint32]),
    "nb_breaker_new": (c_uint32, [_cfg, _out_handle]),
    "nb_breaker_new_named": (c_uint32, [_cfg, c_char_p, _out_handle]),
    "nb_breaker_free": (None, [_handle]),
    "nb_breaker_name": (c_uint32, [_handle, POINTER(c_void_p), POINTER(c_size_t)]),
    "nb_breaker_state": (c_uint32, [_handle]),
    "nb_breaker_transition_to": (c_uint32, [_handle, c_uint32]),
    "nb_breaker_reset": (c_uint32, [_handle]),
    "nb_breaker_reconfigure": (c_uint32, [_handle, _cfg]),
    "nb_breaker_config": (c_uint32, [_handle, _cfg, c_size_t]),
    "nb_config_default": (c_uint32, [_cfg, c_size_t]),
    "nb_config_invalid_field": (c_char_p, [_cfg]),
    "nb_breaker_on_transition": (c_uint32, [_handle, TRANSITION_CALLBACK, c_void_p, FREE_CALLBACK]),
    "nb_breaker_metrics": (c_uint32, [_handle, POINTER(nb_metrics), c_size_t]),
    "nb_acquire_ex": (c_uint32, [_handle, POINTER(nb_permit), POINTER(c_uint64)]),
    "nb_record": (c_uint32, [_handle, POINTER(nb_permit), c_uint32]),
    "nb_shared_open": (c_uint32, [c_char_p, _cfg, c_uint32, c_uint32, _out_handle]),
    "nb_shared_sync": (c_uint32, [_handle]),
}


def _repo_candidates():
    """This checkout's built libraries, if the package runs from one."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    if not os.path.isfile(os.path.join(root, "Cargo.toml")):
        return []
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(root, "target")
    return [os.path.join(target, profile, "libnanobreaker.so") for profile in ("release", "debug")]


def _declare(path):
    """The library at `path` with every prototype declared, or raises
    OSError (cannot load) or ImportError (missing functions, bad version)."""
    # use_errno: NB_SHARED_IO leaves errno set; ctypes keeps a copy of it
    # after each call (ctypes.get_errno). CDLL releases the GIL around each
    # call, so a listener run by another thread can take it meanwhile.
    dll = ctypes.CDLL(path, use_errno=True)
    missing = [name for name in PROTOTYPES if not hasattr(dll, name)]
    if missing:
        raise ImportError("%s lacks %s (a library older than this package?)" % (path, ", ".join(missing)))
    for name, (restype, argtypes) in PROTOTYPES.items():
        fn = getattr(dll, name)
        fn.restype = restype
        fn.argtypes = argtypes
    num = dll.nb_version_num()
    version = dll.nb_version().decode("ascii", "replace")
    if num < MIN_VERSION_NUM or num // 1000000 != NB_VERSION_MAJOR:
        raise ImportError(
            "%s is nanobreaker %s; this package needs %d.x, at least %d.%d.%d"
            % (
                path,
                version,
                NB_VERSION_MAJOR,
                MIN_VERSION_NUM // 1000000,
                MIN_VERSION_NUM // 1000 % 1000,
                MIN_VERSION_NUM % 1000,
            )
        )
    return dll, path


def load():
    """Finds, loads and declares the library: (CDLL, where it came from)."""
    env = os.environ.get("NANOBREAKER_LIB")
    if env:
        candidates = [env]
    else:
        candidates = [c for c in [ctypes.util.find_library("nanobreaker")] + _repo_candidates() if c]
    tried = []
    for path in candidates:
        if os.sep in path and not os.path.exists(path):
            tried.append("%s: no such file" % path)
            continue
        try:
            return _declare(path)
        except (OSError, ImportError) as e:
            tried.append(str(e))
    raise ImportError(
        "nanobreaker: cannot load libnanobreaker.so. Set NANOBREAKER_LIB to its path, "
        "install it (ffi/c/install.sh), or build it in the repository "
        "(sh ffi/c/build.sh --release).%s" % ("".join("\n  tried " + t for t in tried) or "\n  nothing found")
    )


lib, path = load()


def result_str(r):
    """The name of an ``nb_result`` ("NB_OK", ...)."""
    return lib.nb_result_str(r).decode("ascii", "replace")
