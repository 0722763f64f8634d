"""The exceptions of nanobreaker.

Every one derives from `Error`, whose ``code`` is the C library's
``nb_result`` (an int) when one caused it. They pickle (their ``args`` are
their constructor's), so they cross ``multiprocessing`` boundaries.
"""

import math

from . import _lib


class Error(Exception):
    """A nanobreaker call failed; ``code`` is its ``nb_result`` (or None)."""

    def __init__(self, message, code=None):
        super().__init__(message, code)
        self.message = message
        self.code = code

    def __str__(self):
        if self.code is None:
            return self.message
        return "%s (%s)" % (self.message, _lib.result_str(self.code))


class ConfigError(Error, ValueError):
    """A configuration value is out of range; ``field`` names it (the
    `Config` field, or what the library calls it: "window", "size")."""

    def __init__(self, field, detail=None):
        text = "invalid config field %r" % field + (": %s" % detail if detail else "")
        super().__init__(text, _lib.NB_INVALID_CONFIG)
        self.args = (field, detail)
        self.field = field


class Rejected(Error):
    """The breaker rejected the call, which was not made.

    ``retry_after``: seconds until the breaker may let a call through
    (``math.inf`` when forced open); ``state``: the breaker's `State` when
    it rejected (open, forced open, or half-open with every probe out).
    """

    def __init__(self, retry_after, state):
        wait = "never (forced open)" if math.isinf(retry_after) else "%.3f s" % retry_after
        super().__init__("circuit breaker rejected the call (%s); retry after %s" % (state, wait), _lib.NB_REJECTED)
        self.args = (retry_after, state)
        self.retry_after = retry_after
        self.state = state


class PermitSpent(Error):
    """The permit was recorded already; nothing was recorded this time."""


class ConfigMismatch(Error):
    """The shared breaker exists with another config (open it with
    ``adopt=True`` to take the region's)."""


class SharedCorrupt(Error):
    """The shared breaker's file is not a region this library can use
    (another layout version, garbage, another kind of clock)."""
