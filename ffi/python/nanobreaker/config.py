"""`Config`, the enums (`State`, `Reason`, `WindowKind`,
`HalfOpenPolicy`), and the value types `Metrics` and `Transition`.

Durations are seconds here (floats; `Config` also takes a
``datetime.timedelta``) and nanoseconds in the C structs; the conversion
rounds to the nearest nanosecond.
"""

import dataclasses
import enum
import datetime
import numbers
import operator
from ctypes import byref, sizeof
from typing import Dict, Optional

from . import _lib
from .errors import ConfigError


class State(str, enum.Enum):
    """A breaker's state. A `str`: ``breaker.state == "open"`` holds."""

    CLOSED = "closed"  #: calls flow and are recorded
    OPEN = "open"  #: calls are rejected until the open wait passes
    HALF_OPEN = "half_open"  #: a few probe calls decide
    DISABLED = "disabled"  #: every call allowed, nothing recorded
    METRICS_ONLY = "metrics_only"  #: every call allowed and recorded; never trips
    FORCED_OPEN = "forced_open"  #: every call rejected
    UNKNOWN = "unknown"  #: a closed handle, or a state newer than this package

    def __str__(self):
        return self.value

    @classmethod
    def from_code(cls, code):
        """The state of an ``nb_state`` value (UNKNOWN for one it lacks)."""
        return _STATES[code] if 0 <= code < len(_STATES) else cls.UNKNOWN

    @property
    def code(self):
        """The ``nb_state`` value (255 for UNKNOWN)."""
        return 255 if self is State.UNKNOWN else _STATES.index(self)


_STATES = [State.CLOSED, State.OPEN, State.HALF_OPEN, State.DISABLED, State.METRICS_ONLY, State.FORCED_OPEN]


class Reason(str, enum.Enum):
    """Why a transition happened (``nb_reason``)."""

    FAILURE_RATE = "failure_rate"
    SLOW_CALL_RATE = "slow_call_rate"
    CONSECUTIVE_FAILURES = "consecutive_failures"
    OPEN_WAIT_ELAPSED = "open_wait_elapsed"
    PROBES_SUCCEEDED = "probes_succeeded"
    PROBES_FAILED = "probes_failed"
    PROBES_SLOW = "probes_slow"
    HALF_OPEN_TIMEOUT = "half_open_timeout"
    MANUAL = "manual"
    FLEET = "fleet"
    UNKNOWN = "unknown"  #: a reason newer than this package

    def __str__(self):
        return self.value

    @classmethod
    def from_code(cls, code):
        """The reason of an ``nb_reason`` value (UNKNOWN for one it lacks)."""
        reasons = list(cls)[:-1]
        return reasons[code] if 0 <= code < len(reasons) else cls.UNKNOWN


class WindowKind(enum.IntEnum):
    """``nb_config.window_kind``."""

    COUNT = 0  #: the last `window_size` calls
    TIME = 1  #: the last `window_length` seconds, in `window_size` buckets


class HalfOpenPolicy(enum.IntEnum):
    """``nb_config.half_open_policy``: how a half-open trial is decided."""

    FIRST_FAILURE = 0  #: the first failed probe reopens (gobreaker, Polly)
    FAILURE_RATE = 1  #: the probes' failure rate decides (resilience4j)


def _default_raw():
    raw = _lib.nb_config()
    r = _lib.lib.nb_config_default(byref(raw), sizeof(raw))
    if r != _lib.NB_OK:  # pragma: no cover - only a broken library
        raise ImportError("nb_config_default failed: %s" % _lib.result_str(r))
    return raw


_D = _default_raw()
_NS = 1e9
# Config field -> (nb_config field, kind): "s" seconds <-> ns, "u32", "f64".
_FIELDS = {
    "failure_rate_threshold": ("failure_rate_threshold", "f64"),
    "minimum_calls": ("minimum_calls", "u32"),
    "window_kind": ("window_kind", "u32"),
    "window_size": ("window_size", "u32"),
    "window_length": ("window_length_ns", "s"),
    "slow_call_duration": ("slow_call_duration_ns", "s"),
    "slow_call_rate_threshold": ("slow_call_rate_threshold", "f64"),
    "consecutive_failures": ("consecutive_failures", "u32"),
    "half_open_permits": ("half_open_permits", "u32"),
    "open_wait": ("open_wait_ns", "s"),
    "backoff_multiplier": ("backoff_multiplier", "f64"),
    "max_open_wait": ("max_open_wait_ns", "s"),
    "jitter": ("jitter", "f64"),
    "half_open_max_wait": ("half_open_max_wait_ns", "s"),
    "stripes": ("stripes", "u32"),
    "half_open_policy": ("half_open_policy", "u32"),
}


@dataclasses.dataclass
class Config:
    """A breaker's configuration (``nb_config``); the defaults are the
    library's (``nb_config_default``). Durations are in seconds.

    >>> Config(minimum_calls=10, open_wait=0.5).open_wait
    0.5
    """

    #: Trip when the failure rate reaches this, in (0, 1].
    failure_rate_threshold: float = _D.failure_rate_threshold
    #: Judge no rate before this many outcomes.
    minimum_calls: int = _D.minimum_calls
    #: `WindowKind.COUNT` (the last `window_size` calls) or `WindowKind.TIME`.
    window_kind: WindowKind = WindowKind(_D.window_kind)
    #: Calls in a count window, or buckets in a time window.
    window_size: int = _D.window_size
    #: A time window's length (ignored for count windows).
    window_length: float = _D.window_length_ns / _NS
    #: A call taking at least this long is slow; 0 turns the rule off.
    slow_call_duration: float = _D.slow_call_duration_ns / _NS
    #: Trip when the slow-call rate reaches this, in (0, 1].
    slow_call_rate_threshold: float = _D.slow_call_rate_threshold
    #: Also trip after this many failures in a row; 0 is off.
    consecutive_failures: int = _D.consecutive_failures
    #: Probes admitted in half-open, 1..511.
    half_open_permits: int = _D.half_open_permits
    #: Open wait after the first trip.
    open_wait: float = _D.open_wait_ns / _NS
    #: Open-wait growth per failed trial, >= 1.
    backoff_multiplier: float = _D.backoff_multiplier
    #: The longest open wait.
    max_open_wait: float = _D.max_open_wait_ns / _NS
    #: Spread of each open wait, either way, in [0, 1).
    jitter: float = _D.jitter
    #: A trial whose probes have not all reported after this reopens.
    half_open_max_wait: float = _D.half_open_max_wait_ns / _NS
    #: Stripes for the hot counters, 1..64; 0 picks by core count.
    stripes: int = _D.stripes
    #: How a half-open trial is decided (`HalfOpenPolicy`).
    half_open_policy: HalfOpenPolicy = HalfOpenPolicy(_D.half_open_policy)

    def to_c(self):
        """This config as an ``nb_config`` (from ``nb_config_default``, so
        ``size`` is set). Raises `ConfigError` for a value the struct
        cannot hold (negative, too large, not a number); the library
        judges the rest."""
        raw = _default_raw()
        for name, (c_name, kind) in _FIELDS.items():
            value = getattr(self, name)
            try:
                if kind == "u32":
                    if isinstance(value, bool):
                        raise ValueError("%r is not an integer" % (value,))
                    c_value = operator.index(value)
                    if not 0 <= c_value <= _lib.UINT32_MAX:
                        raise ValueError("%r is out of range for a uint32" % (value,))
                    setattr(raw, c_name, c_value)
                    continue
                if isinstance(value, datetime.timedelta) and kind == "s":
                    value = value.total_seconds()
                if isinstance(value, bool) or not isinstance(value, numbers.Real):
                    raise ValueError("%r is not a number" % (value,))
                if kind == "s":
                    ns = float(value) * _NS
                    if not 0 <= ns < 2.0**64:
                        raise ValueError("%r is not a duration in seconds, >= 0" % (value,))
                    c_value = min(int(round(ns)), _lib.UINT64_MAX)
                else:
                    c_value = float(value)
            except (TypeError, ValueError, OverflowError) as e:
                raise ConfigError(name, str(e)) from None
            setattr(raw, c_name, c_value)
        return raw

    @classmethod
    def from_c(cls, raw):
        """The `Config` of an ``nb_config``."""
        values = {}
        for name, (c_name, kind) in _FIELDS.items():
            value = getattr(raw, c_name)
            values[name] = value / _NS if kind == "s" else value
        values["window_kind"] = _enum_or_int(WindowKind, values["window_kind"])
        values["half_open_policy"] = _enum_or_int(HalfOpenPolicy, values["half_open_policy"])
        return cls(**values)

    def validate(self):
        """Raises `ConfigError` (naming the field) unless the library
        would accept this config; returns it otherwise."""
        raw = self.to_c()
        field = _lib.lib.nb_config_invalid_field(byref(raw))
        if field is not None:
            raise ConfigError(field.decode())
        return self


def _enum_or_int(kind, value):
    try:
        return kind(value)
    except ValueError:
        return value


def _seconds(ns):
    """Nanoseconds as seconds; None for UINT64_MAX ("none")."""
    return None if ns == _lib.UINT64_MAX else ns / _NS


@dataclasses.dataclass(frozen=True)
class Transition:
    """One state change, as a listener hears it."""

    from_state: State
    to_state: State
    reason: Reason
    #: The generation entered (transitions so far, across every process
    #: for a shared breaker).
    generation: int
    #: When, in seconds since the breaker (or its shared region) was made.
    at: float

    @classmethod
    def from_c(cls, t):
        return cls(
            State.from_code(t.from_),
            State.from_code(t.to),
            Reason.from_code(t.reason),
            t.generation,
            t.at_ns / _NS,
        )


@dataclasses.dataclass
class Metrics:
    """A snapshot of a breaker's rates and totals (``nb_metrics``).

    The totals of a shared breaker are every process's. ``failed_open``
    and ``listener_errors`` are this object's, kept by the package.
    """

    state: State
    half_open_in_flight: int
    failure_rate: float
    slow_call_rate: float
    window_calls: int
    window_failures: int
    window_slow_calls: int
    calls: int
    successes: int
    failures: int
    slow_calls: int
    #: Ignored, dropped or stale outcomes.
    ignored: int
    rejected: int
    since_last_transition: float
    generation: int
    events_lost: int
    timeouts: int
    #: Seconds since the latest timed success (None if none, or unknown
    #: to the library); a success is timed only with a time window or a
    #: slow-call rule.
    since_last_success: Optional[float]
    #: Seconds since the latest failure (None if none).
    since_last_failure: Optional[float]
    opens: int
    probes_succeeded: int
    probes_failed: int
    #: Transitions by reason (the reasons this package knows).
    transitions_by_reason: Dict[Reason, int]
    #: Calls let through because the library failed (NB_PANIC: fail open).
    failed_open: int = 0
    #: Exceptions raised by transition listeners, caught and logged.
    listener_errors: int = 0

    @classmethod
    def from_c(cls, m, failed_open=0, listener_errors=0):
        def since(name):
            # A field beyond m.size is one the library does not know.
            if getattr(_lib.nb_metrics, name).offset + 8 > m.size:
                return None
            return _seconds(getattr(m, name))

        return cls(
            state=State.from_code(m.state),
            half_open_in_flight=m.half_open_in_flight,
            failure_rate=m.failure_rate,
            slow_call_rate=m.slow_call_rate,
            window_calls=m.window_calls,
            window_failures=m.window_failures,
            window_slow_calls=m.window_slow_calls,
            calls=m.calls,
            successes=m.successes,
            failures=m.failures,
            slow_calls=m.slow_calls,
            ignored=m.ignored,
            rejected=m.rejected,
            since_last_transition=m.since_last_transition_ns / _NS,
            generation=m.generation,
            events_lost=m.events_lost,
            timeouts=m.timeouts,
            since_last_success=since("since_last_success_ns"),
            since_last_failure=since("since_last_failure_ns"),
            opens=m.opens,
            probes_succeeded=m.probes_succeeded,
            probes_failed=m.probes_failed,
            transitions_by_reason={r: m.transitions_by_reason[i] for i, r in enumerate(list(Reason)[:-1])},
            failed_open=failed_open,
            listener_errors=listener_errors,
        )

    def transitions(self, reason):
        """How many transitions happened for `reason` (a `Reason` or its name)."""
        return self.transitions_by_reason.get(Reason(reason), 0)

