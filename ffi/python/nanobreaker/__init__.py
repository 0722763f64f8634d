"""nanobreaker: a lock-free circuit breaker, over its C library (ctypes).

One breaker per dependency; ask it before each call, and tell it how the
call went::

    import nanobreaker

    cb = nanobreaker.Breaker(nanobreaker.Config(minimum_calls=10, open_wait=5.0))

    try:
        with cb.guard():          # Rejected if open; an exception is a failure
            reply = fetch_orders()
    except nanobreaker.Rejected as e:
        reply = cached_orders()   # the fallback; e.retry_after is in seconds

    # or: cb.call(fetch_orders), or permit = cb.acquire() ... permit.success()

Every process of a host can share one breaker (gunicorn or uWSGI workers):
open it in each worker, after the fork::

    cb = nanobreaker.Breaker.open_shared("orders-db")  # a file in /dev/shm

The library is found through ``NANOBREAKER_LIB`` (a path to
``libnanobreaker.so``), then the system's library path, then this source
tree's ``target/release`` and ``target/debug``.
"""

from ._lib import path as library_path
from ._lib import lib as _c
from .breaker import Breaker, Permit
from .config import Config, HalfOpenPolicy, Metrics, Reason, State, Transition, WindowKind
from .errors import ConfigError, ConfigMismatch, Error, PermitSpent, Rejected, SharedCorrupt

__version__ = "0.1.0"

__all__ = [
    "Breaker",
    "Config",
    "ConfigError",
    "ConfigMismatch",
    "Error",
    "HalfOpenPolicy",
    "Metrics",
    "Permit",
    "PermitSpent",
    "Reason",
    "Rejected",
    "SharedCorrupt",
    "State",
    "Transition",
    "WindowKind",
    "library_path",
    "library_version",
]


def library_version():
    """The loaded C library's version, e.g. "0.1.0" (``nb_version``)."""
    return _c.nb_version().decode("ascii", "replace")
