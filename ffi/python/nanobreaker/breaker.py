"""`Breaker` and `Permit`: a handle to a breaker of the C library, in this
process or shared by every process of the host.

Threads: a `Breaker` may be used from any number of threads at once (the
library is lock-free; ctypes releases the GIL around each call), except
`close`, which must not race with other calls on the same breaker. A
`Permit` belongs to one thread at a time.

Listeners: ``on_transition`` callbacks run inside some thread's call on the
breaker (usually the call that made the transition) or, for a shared
breaker, on the process's watcher thread, which hears the other
processes' transitions every 10 ms (``sync`` does it at once). An
exception a listener raises is caught, logged (logger "nanobreaker") and
counted (``Metrics.listener_errors``): it never crosses into C.
"""

import atexit
import ctypes
import errno
import itertools
import logging
import os
import threading
import time
import weakref
from ctypes import byref, sizeof

from . import _lib
from .config import Config, Metrics, State, Transition
from .errors import ConfigError, ConfigMismatch, Error, PermitSpent, Rejected, SharedCorrupt

_log = logging.getLogger("nanobreaker")
_c = _lib.lib
# The hot calls, looked up once. Tests replace _nb_acquire_ex to make the
# library "fail" (NB_PANIC), as the C++ and Go wrappers' tests do.
_nb_acquire_ex = _c.nb_acquire_ex
_nb_record = _c.nb_record

_NOT_A_PERMIT = object()  # a fail-open permit's raw value: nothing to record


def _error(r, what):
    return Error("%s failed" % what, r)


class Permit:
    """Leave to make one call. Report it once, with `success`, `failure`
    or `ignore` (a second report raises `PermitSpent`). A permit dropped
    unreported records "ignored", releasing its half-open slot.

    ``failed_open`` is True for a permit granted because the library
    failed (NB_PANIC): the call goes ahead, and its report records nothing.
    """

    __slots__ = ("_breaker", "_raw", "_pending")

    def __init__(self, breaker, raw):
        self._breaker = breaker
        self._raw = raw
        self._pending = True

    @property
    def pending(self):
        """Whether an outcome is still owed."""
        return self._pending

    @property
    def failed_open(self):
        return self._raw is _NOT_A_PERMIT

    def success(self):
        """The call worked."""
        self._record(_lib.NB_SUCCESS)

    def failure(self):
        """The call failed."""
        self._record(_lib.NB_FAILURE)

    def ignore(self):
        """The call does not count (cancelled, a caller's error, ...)."""
        self._record(_lib.NB_IGNORED)

    def _record(self, outcome):
        if not self._pending:
            raise PermitSpent("the permit was recorded already", _lib.NB_PERMIT_SPENT)
        self._pending = False
        if self._raw is _NOT_A_PERMIT:
            return
        r = _nb_record(self._breaker._handle(), byref(self._raw), outcome)
        if r != _lib.NB_OK:
            raise _error(r, "nb_record")

    def __del__(self):
        if getattr(self, "_pending", False) and self._raw is not _NOT_A_PERMIT and self._breaker._h:
            self._pending = False
            _nb_record(self._breaker._h, byref(self._raw), _lib.NB_IGNORED)

    def __reduce__(self):
        raise TypeError("a Permit belongs to its process: it cannot be pickled")

    def __repr__(self):
        kind = "failed-open " if self.failed_open else ""
        return "<nanobreaker.Permit %s%s>" % (kind, "pending" if self._pending else "spent")


class _Guard:
    """`Breaker.guard`'s context manager."""

    __slots__ = ("_breaker", "_permit")

    def __init__(self, breaker):
        self._breaker = breaker

    def __enter__(self):
        self._permit = self._breaker.acquire()
        return self._permit

    def __exit__(self, exc_type, exc, tb):
        p = self._permit
        if p.pending:
            if exc_type is None:
                p.success()
            elif issubclass(exc_type, Exception):
                p.failure()
            else:  # KeyboardInterrupt, CancelledError, ...: the caller gave up
                p.ignore()
        return False


class _Stats:
    """Counters kept by the package, shared with the listeners."""

    def __init__(self):
        self.lock = threading.Lock()
        self.failed_open = 0
        self.listener_errors = 0

    def add(self, name):
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)


# Listener trampolines by token (the userdata passed to C): each stays
# alive until the library frees its userdata, when the breaker is gone,
# which may be after `close` (a call on another thread, or the shared
# breaker's watcher thread, may still hold the breaker for a moment).
_LISTENERS = {}
_tokens = itertools.count(1)


def _free_listener(token):
    _LISTENERS.pop(token, None)


_FREE_LISTENER = _lib.FREE_CALLBACK(_free_listener)

# Shared breakers with listeners: closed at exit, before the interpreter
# goes, so that their watcher thread never calls into a finalizing one
# (ctypes would end that thread with pthread_exit, which cannot unwind
# through the library's frames: the process would abort).
_SHARED_WITH_LISTENERS = weakref.WeakSet()


@atexit.register
def _close_shared_listeners():
    tokens = []
    for b in list(_SHARED_WITH_LISTENERS):
        tokens.extend(b._tokens)
        b.close()
    # Until the library lets go of their listeners (a watcher thread may
    # hold a breaker for a moment after close).
    deadline = time.monotonic() + 0.5
    while any(t in _LISTENERS for t in tokens) and time.monotonic() < deadline:
        time.sleep(0.002)


def _name_bytes(name, what):
    if isinstance(name, str):
        name = name.encode("utf-8")
    if not isinstance(name, bytes) or b"\0" in name:
        raise ValueError("%s must be a str without NUL characters, not %r" % (what, name))
    return name


class Breaker:
    """A circuit breaker.

    ``Breaker(config=None, name=None)`` makes one in this process
    (`Config` defaults when None); `Breaker.open_shared` opens one shared by
    every process of the host. Close it with `close` (or a ``with`` block);
    a forgotten one is closed when it is garbage collected.

    Fail open: if the library fails internally (NB_PANIC, a bug),
    `acquire` lets the call through, unrecorded, and counts it in
    ``metrics().failed_open``; with ``fail_closed=True`` it raises
    `Error` instead. The C++ and Go wrappers do the same.
    """

    _h = None  # the nb_breaker *, None once closed (or never opened)

    def __init__(self, config=None, name=None, *, fail_closed=False):
        raw = (config if config is not None else Config()).to_c()
        h = ctypes.c_void_p()
        if name is None:
            r = _c.nb_breaker_new(byref(raw), byref(h))
        else:
            r = _c.nb_breaker_new_named(byref(raw), _name_bytes(name, "name"), byref(h))
        if r == _lib.NB_INVALID_ARGUMENT:
            raise ValueError("a breaker's name is at most %d bytes of UTF-8: %r" % (_lib.NB_MAX_NAME_LEN, name))
        _check_config(r, raw, "nb_breaker_new")
        self._adopt(h.value, fail_closed, shared=False)

    def _adopt(self, handle, fail_closed, shared):
        self._h = handle
        self._fail_closed = fail_closed
        self._shared = shared
        self._stats = _Stats()
        self._tokens = []  # of this handle's listeners

    @classmethod
    def open_shared(cls, name_or_path, config=None, mode=0o600, adopt=False, *, replace=False, fail_closed=False):
        """Opens (or creates) the breaker every process of the host shares
        under `name_or_path`: a bare name (1..200 of ``[A-Za-z0-9._-]``)
        is a file in ``/dev/shm`` (``nanobreaker-v4-<name>``: ``v4`` is the
        library's region layout); anything with a ``/`` is a path. Open it
        in each process *after* any fork (a mapping
        survives a fork, but the watcher thread that brings the other
        processes' transitions and reconfigurations does not).

        The first opener's config is the region's; opening with another
        raises `ConfigMismatch`, unless ``adopt=True`` (then the region's
        config is taken) or ``replace=True`` (then `config` becomes the
        region's, and every other process takes it; the window cannot
        change). `mode` is the file's mode if this call creates
        it. Raises `SharedCorrupt` for a file that is not a usable region,
        `OSError` (with ``errno``) when a system call fails, `ValueError`
        for a bad name, `ConfigError` for a bad config.
        """
        path = os.fsencode(name_or_path)
        if b"\0" in path:
            raise ValueError("a shared breaker's name or path has no NUL characters: %r" % (name_or_path,))
        if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o7777:
            raise ValueError("mode must be file permission bits, 0..0o7777, not %r" % (mode,))
        raw = (config if config is not None else Config()).to_c()
        flags = (_lib.NB_SHARED_ADOPT if adopt else 0) | (_lib.NB_SHARED_REPLACE if replace else 0)
        h = ctypes.c_void_p()
        r = _c.nb_shared_open(path, byref(raw), mode, flags, byref(h))
        where = os.fsdecode(path)
        if r == _lib.NB_SHARED_IO:
            e = ctypes.get_errno() or errno.EIO
            raise OSError(e, os.strerror(e), where)
        if r == _lib.NB_CONFIG_MISMATCH:
            raise ConfigMismatch("%s exists with another config (adopt=True takes it)" % where, r)
        if r == _lib.NB_SHARED_CORRUPT:
            raise SharedCorrupt("%s is not a shared breaker this library can use" % where, r)
        if r == _lib.NB_INVALID_ARGUMENT:
            raise ValueError(
                "bad shared breaker name %r: a bare name is 1..200 of [A-Za-z0-9._-], a path has a '/'" % where
            )
        _check_config(r, raw, "nb_shared_open")
        b = cls.__new__(cls)
        b._adopt(h.value, fail_closed, shared=True)
        return b

    def _handle(self):
        h = self._h
        if not h:
            raise ValueError("operation on a closed breaker")
        return h

    # --- Protected calls ------------------------------------------------

    def acquire(self):
        """A `Permit` to make one call, or raises `Rejected` (with
        ``retry_after`` in seconds and the ``state``)."""
        p = _lib.nb_permit()
        retry = ctypes.c_uint64()
        r = _nb_acquire_ex(self._handle(), byref(p), byref(retry))
        if r == _lib.NB_OK:
            return Permit(self, p)
        if r == _lib.NB_REJECTED:
            wait = float("inf") if retry.value == _lib.UINT64_MAX else retry.value / 1e9
            raise Rejected(wait, self.state)
        if r == _lib.NB_PANIC and not self._fail_closed:
            self._stats.add("failed_open")
            return Permit(self, _NOT_A_PERMIT)
        raise _error(r, "nb_acquire_ex")

    def try_acquire(self):
        """A `Permit`, or None if the breaker rejects (no exception)."""
        try:
            return self.acquire()
        except Rejected:
            return None

    def guard(self):
        """A context manager around one call: ``with cb.guard():`` raises
        `Rejected` on entry if the breaker rejects; a block that raises an
        `Exception` records a failure, one that returns a success, and one
        left by another `BaseException` (KeyboardInterrupt, a cancelled
        task) is ignored. ``as p`` gives the `Permit`, to record it
        yourself inside the block."""
        return _Guard(self)

    def call(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` if the breaker lets it, recorded as
        `guard` does; returns its value, or raises `Rejected` or what fn
        raised."""
        with _Guard(self):
            return fn(*args, **kwargs)

    # --- State ----------------------------------------------------------

    @property
    def state(self):
        """The current `State` (`State.UNKNOWN` once closed)."""
        h = self._h
        return State.from_code(_c.nb_breaker_state(h)) if h else State.UNKNOWN

    @property
    def name(self):
        """The breaker's name ("" if none; a shared breaker has none)."""
        p, n = ctypes.c_void_p(), ctypes.c_size_t()
        r = _c.nb_breaker_name(self._handle(), byref(p), byref(n))
        if r != _lib.NB_OK:
            raise _error(r, "nb_breaker_name")
        return ctypes.string_at(p.value, n.value).decode("utf-8", "replace") if n.value else ""

    @property
    def shared(self):
        """Whether this breaker came from `open_shared`."""
        return self._shared

    def metrics(self):
        """A `Metrics` snapshot."""
        m = _lib.nb_metrics()
        r = _c.nb_breaker_metrics(self._handle(), byref(m), sizeof(m))
        if r != _lib.NB_OK:
            raise _error(r, "nb_breaker_metrics")
        return Metrics.from_c(m, self._stats.failed_open, self._stats.listener_errors)

    def reset(self):
        """Back to closed, with an empty window and no backoff."""
        self._check(_c.nb_breaker_reset(self._handle()), "nb_breaker_reset")

    def transition_to(self, state):
        """Moves the breaker to `state` (a `State` or its name)."""
        s = State(state)
        if s is State.UNKNOWN:
            raise ValueError("cannot move a breaker to the unknown state")
        self._check(_c.nb_breaker_transition_to(self._handle(), s.code), "nb_breaker_transition_to")

    @property
    def config(self):
        """The `Config` in force."""
        raw = _lib.nb_config()
        self._check(_c.nb_breaker_config(self._handle(), byref(raw), sizeof(raw)), "nb_breaker_config")
        return Config.from_c(raw)

    def reconfigure(self, config):
        """Replaces the config, whole or not at all (`ConfigError`
        otherwise). The window (kind, size, length) cannot change; the
        stripes stay. A shared breaker's other processes take it within
        10 ms."""
        raw = config.to_c()
        _check_config(_c.nb_breaker_reconfigure(self._handle(), byref(raw)), raw, "nb_breaker_reconfigure")

    def _check(self, r, what):
        if r != _lib.NB_OK:
            raise _error(r, what)

    # --- Listeners --------------------------------------------------------

    def on_transition(self, callback):
        """Calls ``callback(transition)`` (a `Transition`) on every state
        change from now on, in order, for as long as the breaker lives;
        returns `callback` (so it works as a decorator). For a shared
        breaker, that is every process's transitions. The callback must
        not block for long, nor close this breaker; what it raises is
        logged and counted, never propagated. A callback that refers to
        its breaker keeps it alive until `close`."""
        stats = self._stats

        def trampoline(t, _userdata):
            try:
                callback(Transition.from_c(t.contents))
            except BaseException:  # nothing may unwind into the library
                stats.add("listener_errors")
                _log.exception("nanobreaker: transition listener %r raised", callback)

        fn = _lib.TRANSITION_CALLBACK(trampoline)
        token = next(_tokens)
        _LISTENERS[token] = fn
        r = _c.nb_breaker_on_transition(self._handle(), fn, token, _FREE_LISTENER)
        if r != _lib.NB_OK:
            del _LISTENERS[token]  # not registered: the library never frees it
            raise _error(r, "nb_breaker_on_transition")
        self._tokens.append(token)
        if self._shared:
            _SHARED_WITH_LISTENERS.add(self)
        return callback

    def sync(self):
        """For a shared breaker, does now what the watcher thread does every
        10 ms: takes another process's reconfiguration and delivers the
        transitions this process's listeners have not heard. For an
        in-process breaker, delivers waiting events."""
        self._check(_c.nb_shared_sync(self._handle()), "nb_shared_sync")

    # --- Lifetime ---------------------------------------------------------

    def close(self):
        """Frees the handle (idempotent). No call on this breaker may run
        on another thread meanwhile; later calls raise ValueError."""
        h, self._h = self._h, None
        if h:
            _c.nb_breaker_free(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        if self._h:
            self.close()

    def __reduce__(self):
        raise TypeError("a Breaker belongs to its process: open it in each one (Breaker.open_shared)")

    def __repr__(self):
        if not self._h:
            return "<nanobreaker.Breaker closed>"
        name = self.name
        return "<nanobreaker.Breaker%s%s %s>" % (" shared" if self._shared else "", " %r" % name if name else "", self.state)


def _check_config(r, raw, what):
    if r == _lib.NB_INVALID_CONFIG:
        field = _c.nb_config_invalid_field(byref(raw))
        raise ConfigError(field.decode() if field else "window")
    if r != _lib.NB_OK:
        raise _error(r, what)
