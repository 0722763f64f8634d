"""The Python API over an in-process breaker."""

import ctypes
import dataclasses
import datetime
import functools
import gc
import os
import pickle
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
from unittest import mock

from support import REPO, nb
from nanobreaker import _lib, breaker as breaker_module

OPEN_WAIT = 0.15


def quick(**kw):
    """A breaker config that trips after 5 failures and waits OPEN_WAIT."""
    base = dict(window_size=10, minimum_calls=5, open_wait=OPEN_WAIT, jitter=0.0, half_open_permits=2)
    base.update(kw)
    return nb.Config(**base)


def fail(cb, n):
    for _ in range(n):
        cb.acquire().failure()


def trip(cb):
    while cb.state == nb.State.CLOSED:
        cb.acquire().failure()


class ConfigTest(unittest.TestCase):
    def test_defaults_are_the_librarys(self):
        c = nb.Config()
        self.assertEqual(c.minimum_calls, 20)
        self.assertEqual(c.window_kind, nb.WindowKind.COUNT)
        self.assertEqual(c.window_size, 100)
        self.assertEqual(c.open_wait, 5.0)
        self.assertEqual(c.half_open_permits, 5)
        self.assertEqual(c.failure_rate_threshold, 0.5)
        raw = c.to_c()
        self.assertEqual(raw.size, ctypes.sizeof(_lib.nb_config))
        self.assertEqual(raw.open_wait_ns, 5_000_000_000)

    def test_round_trip_and_units(self):
        c = quick(window_kind=nb.WindowKind.TIME, window_length=datetime.timedelta(seconds=2), window_size=4)
        self.assertEqual(c.to_c().window_length_ns, 2_000_000_000)
        with nb.Breaker(c) as cb:
            got = cb.config
        self.assertEqual(got.window_kind, nb.WindowKind.TIME)
        self.assertEqual(got.window_length, 2.0)
        self.assertEqual(got.open_wait, OPEN_WAIT)
        self.assertEqual(dataclasses.replace(got, window_length=c.window_length.total_seconds()), dataclasses.replace(c, window_length=2.0))

    def test_bad_configs_name_the_field(self):
        cases = {
            "failure_rate_threshold": dict(failure_rate_threshold=0.0),
            "half_open_permits": dict(half_open_permits=0),
            "jitter": dict(jitter=1.0),
            "backoff_multiplier": dict(backoff_multiplier=0.5),
            "window": dict(window_size=0),
        }
        for field, kw in cases.items():
            with self.subTest(field=field):
                with self.assertRaises(nb.ConfigError) as e:
                    nb.Breaker(nb.Config(**kw))
                self.assertEqual(e.exception.field, field)
                self.assertEqual(e.exception.code, _lib.NB_INVALID_CONFIG)
                self.assertIsInstance(e.exception, ValueError)
                with self.assertRaises(nb.ConfigError):
                    nb.Config(**kw).validate()
        # What the C struct cannot hold is refused before the library sees it.
        for kw in (dict(minimum_calls=-1), dict(minimum_calls=2**32), dict(minimum_calls=1.5), dict(open_wait=-1),
                   dict(open_wait="1"), dict(jitter=None), dict(open_wait=float("inf")), dict(half_open_permits=True)):
            with self.subTest(kw=kw):
                with self.assertRaises(nb.ConfigError) as e:
                    nb.Config(**kw).to_c()
                self.assertEqual(e.exception.field, next(iter(kw)))
        self.assertIs(quick().validate().__class__, nb.Config)

    def test_reconfigure(self):
        with nb.Breaker(quick()) as cb:
            cb.reconfigure(quick(open_wait=1.5))
            self.assertEqual(cb.config.open_wait, 1.5)
            with self.assertRaises(nb.ConfigError) as e:
                cb.reconfigure(quick(window_size=50))
            self.assertEqual(e.exception.field, "window")
            with self.assertRaises(nb.ConfigError):
                cb.reconfigure(quick(jitter=2.0))
            self.assertEqual(cb.config.open_wait, 1.5, "a bad config changes nothing")


class BreakerTest(unittest.TestCase):
    def setUp(self):
        self.cb = nb.Breaker(quick(), name="orders")
        self.addCleanup(self.cb.close)

    def test_trips_and_rejects_with_retry_after(self):
        cb = self.cb
        self.assertEqual(cb.state, nb.State.CLOSED)
        self.assertEqual(cb.state, "closed")
        self.assertEqual(cb.name, "orders")
        fail(cb, 5)
        self.assertEqual(cb.state, nb.State.OPEN)
        with self.assertRaises(nb.Rejected) as e:
            cb.acquire()
        self.assertEqual(e.exception.state, nb.State.OPEN)
        self.assertGreater(e.exception.retry_after, 0)
        self.assertLessEqual(e.exception.retry_after, OPEN_WAIT)
        self.assertEqual(e.exception.code, _lib.NB_REJECTED)
        self.assertIsNone(cb.try_acquire())
        m = cb.metrics()
        self.assertEqual((m.failures, m.rejected, m.opens), (5, 2, 1))

    def test_half_open_then_recovery(self):
        cb = self.cb
        fail(cb, 5)
        time.sleep(OPEN_WAIT + 0.02)
        p1, p2 = cb.acquire(), cb.acquire()
        self.assertEqual(cb.state, nb.State.HALF_OPEN)
        with self.assertRaises(nb.Rejected) as e:
            cb.acquire()
        self.assertEqual(e.exception.state, nb.State.HALF_OPEN)
        p1.success()
        self.assertEqual(cb.state, nb.State.HALF_OPEN)
        p2.success()
        self.assertEqual(cb.state, nb.State.CLOSED)
        self.assertEqual(cb.metrics().transitions(nb.Reason.PROBES_SUCCEEDED), 1)

    def test_failed_probe_reopens_with_backoff(self):
        cb = self.cb
        fail(cb, 5)
        time.sleep(OPEN_WAIT + 0.02)
        cb.acquire().failure()
        self.assertEqual(cb.state, nb.State.OPEN)
        with self.assertRaises(nb.Rejected) as e:
            cb.acquire()
        # backoff_multiplier 2: the second open wait is twice the first.
        self.assertGreater(e.exception.retry_after, OPEN_WAIT * 1.5)
        self.assertEqual(cb.metrics().transitions("probes_failed"), 1)

    def test_guard(self):
        cb = self.cb
        with cb.guard():
            pass
        with self.assertRaises(KeyError):
            with cb.guard():
                raise KeyError("boom")

        class Cancelled(BaseException):
            pass

        with self.assertRaises(Cancelled):
            with cb.guard():
                raise Cancelled()
        with cb.guard() as p:
            p.ignore()  # recorded by hand: the guard records nothing more
        m = cb.metrics()
        self.assertEqual((m.successes, m.failures, m.ignored), (1, 1, 2))
        trip(cb)
        entered = []
        with self.assertRaises(nb.Rejected):
            with cb.guard():
                entered.append(1)
        self.assertEqual(entered, [], "a rejected guard does not run its block")

    def test_call(self):
        cb = self.cb
        self.assertEqual(cb.call(lambda a, b=0: a + b, 2, b=3), 5)
        with self.assertRaises(ZeroDivisionError):
            cb.call(lambda: 1 / 0)
        m = cb.metrics()
        self.assertEqual((m.successes, m.failures), (1, 1))
        trip(cb)
        called = []
        with self.assertRaises(nb.Rejected):
            cb.call(called.append, 1)
        self.assertEqual(called, [])

    def test_permit_records_once(self):
        cb = self.cb
        p = cb.acquire()
        self.assertTrue(p.pending)
        p.success()
        self.assertFalse(p.pending)
        for again in (p.success, p.failure, p.ignore):
            with self.assertRaises(nb.PermitSpent):
                again()
        m = cb.metrics()
        self.assertEqual((m.calls, m.successes, m.failures, m.ignored), (1, 1, 0, 0))

    def test_permit_dropped_unreported_is_ignored(self):
        cb = self.cb
        fail(cb, 5)
        time.sleep(OPEN_WAIT + 0.02)
        p = cb.acquire()
        cb.acquire()  # dropped at once: its half-open slot comes back
        self.assertEqual(cb.metrics().half_open_in_flight, 1)
        del p
        self.assertEqual(cb.metrics().half_open_in_flight, 0)
        self.assertEqual(cb.metrics().ignored, 2)

    def test_listeners_hear_transitions(self):
        cb = self.cb
        heard = []
        cb.on_transition(heard.append)

        @cb.on_transition
        def second(t):  # kept alive by the breaker, not by this name
            heard.append(("second", t.to_state))

        del second
        gc.collect()
        fail(cb, 5)
        time.sleep(OPEN_WAIT + 0.02)
        cb.acquire().success()
        cb.acquire().success()
        cb.transition_to(nb.State.FORCED_OPEN)
        cb.reset()
        firsts = [t for t in heard if isinstance(t, nb.Transition)]
        self.assertEqual(
            [(t.from_state, t.to_state, t.reason) for t in firsts],
            [
                (nb.State.CLOSED, nb.State.OPEN, nb.Reason.FAILURE_RATE),
                (nb.State.OPEN, nb.State.HALF_OPEN, nb.Reason.OPEN_WAIT_ELAPSED),
                (nb.State.HALF_OPEN, nb.State.CLOSED, nb.Reason.PROBES_SUCCEEDED),
                (nb.State.CLOSED, nb.State.FORCED_OPEN, nb.Reason.MANUAL),
                (nb.State.FORCED_OPEN, nb.State.CLOSED, nb.Reason.MANUAL),
            ],
        )
        self.assertEqual([t.generation for t in firsts], [1, 2, 3, 4, 5])
        self.assertTrue(all(a.at <= b.at for a, b in zip(firsts, firsts[1:])))
        self.assertEqual([h for h in heard if isinstance(h, tuple)], [("second", t.to_state) for t in firsts])

    def test_a_raising_listener_is_caught_logged_and_counted(self):
        cb = self.cb
        heard = []

        def bad(t):
            raise RuntimeError("listener bug")

        cb.on_transition(bad)
        cb.on_transition(heard.append)
        with self.assertLogs("nanobreaker", "ERROR") as logs:
            fail(cb, 5)
        self.assertIn("listener bug", "\n".join(logs.output))
        self.assertEqual(len(heard), 1, "the next listener still hears it")
        self.assertEqual(cb.state, nb.State.OPEN)
        self.assertEqual(cb.metrics().listener_errors, 1)

    def test_listener_may_call_the_breaker(self):
        cb = self.cb
        states = []
        cb.on_transition(lambda t: states.append(cb.state))
        fail(cb, 5)
        self.assertEqual(states, [nb.State.OPEN])

    def test_manual_states(self):
        cb = self.cb
        cb.transition_to("forced_open")
        with self.assertRaises(nb.Rejected) as e:
            cb.acquire()
        self.assertEqual(e.exception.retry_after, float("inf"))
        self.assertEqual(e.exception.state, nb.State.FORCED_OPEN)
        cb.transition_to(nb.State.DISABLED)
        fail(cb, 10)
        self.assertEqual(cb.state, nb.State.DISABLED)
        cb.reset()
        self.assertEqual(cb.state, nb.State.CLOSED)
        for bad in ("unknown", "bogus", 3):
            with self.assertRaises(ValueError):
                cb.transition_to(bad)

    def test_metrics(self):
        cb = self.cb
        m = cb.metrics()
        self.assertEqual((m.state, m.calls, m.generation), (nb.State.CLOSED, 0, 0))
        self.assertIsNone(m.since_last_failure)
        cb.acquire().success()
        cb.acquire().success()
        cb.acquire().ignore()
        cb.acquire().failure()
        m = cb.metrics()
        self.assertEqual((m.calls, m.successes, m.failures, m.ignored, m.rejected), (3, 2, 1, 1, 0))
        self.assertEqual((m.window_calls, m.window_failures), (3, 1))
        self.assertAlmostEqual(m.failure_rate, 1 / 3)
        self.assertIsNotNone(m.since_last_failure)
        self.assertIsNone(m.since_last_success, "a count window times no success")
        trip(cb)
        m = cb.metrics()
        self.assertEqual((m.state, m.opens, m.generation), (nb.State.OPEN, 1, 1))
        self.assertEqual(m.transitions(nb.Reason.FAILURE_RATE), 1)
        self.assertEqual(sum(m.transitions_by_reason.values()), 1)
        self.assertEqual(dataclasses.asdict(m)["opens"], 1)

    def test_fail_open_when_the_library_fails(self):
        def panicking(h, permit, retry):
            return _lib.NB_PANIC

        with mock.patch.object(breaker_module, "_nb_acquire_ex", panicking):
            p = self.cb.acquire()
            self.assertTrue(p.failed_open)
            p.failure()  # records nothing
            with self.assertRaises(nb.PermitSpent):
                p.success()
            self.assertEqual(self.cb.call(lambda: 7), 7)
            with nb.Breaker(quick(), fail_closed=True) as strict:
                with self.assertRaises(nb.Error) as e:
                    strict.acquire()
                self.assertEqual(e.exception.code, _lib.NB_PANIC)
        m = self.cb.metrics()
        self.assertEqual((m.failed_open, m.calls), (2, 0))

    def test_bad_names(self):
        for name in ("a\0b", "x" * (_lib.NB_MAX_NAME_LEN + 1), 42):
            with self.subTest(name=name):
                with self.assertRaises(ValueError):
                    nb.Breaker(name=name)
        with nb.Breaker(name="é" * 10) as cb:
            self.assertEqual(cb.name, "é" * 10)
        with nb.Breaker() as cb:
            self.assertEqual(cb.name, "")

    def test_close(self):
        cb = nb.Breaker(quick())
        p = cb.acquire()
        with cb:
            pass
        cb.close()  # idempotent
        self.assertEqual(cb.state, nb.State.UNKNOWN)
        for use in (cb.acquire, cb.metrics, cb.reset, cb.sync, p.success, functools.partial(cb.on_transition, print)):
            with self.assertRaises(ValueError):
                use()
        del p, cb  # neither frees anything again
        gc.collect()
        self.assertIn("closed", repr(nb.Breaker.__new__(nb.Breaker)))

    def test_handles_do_not_pickle(self):
        with self.assertRaises(TypeError):
            pickle.dumps(self.cb)
        with self.assertRaises(TypeError):
            pickle.dumps(self.cb.acquire())
        e = pickle.loads(pickle.dumps(nb.Rejected(0.5, nb.State.OPEN)))
        self.assertEqual((e.retry_after, e.state), (0.5, nb.State.OPEN))
        e = pickle.loads(pickle.dumps(nb.ConfigError("jitter")))
        self.assertEqual(e.field, "jitter")

    def test_threads(self):
        cb = nb.Breaker(nb.Config(minimum_calls=1000000))
        self.addCleanup(cb.close)
        heard = []
        cb.on_transition(heard.append)

        def run():
            for i in range(2000):
                with cb.guard() as p:
                    if i % 100 == 0:
                        p.ignore()

        threads = [threading.Thread(target=run) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        m = cb.metrics()
        self.assertEqual((m.calls, m.successes, m.ignored), (7920, 7920, 80))

    def test_version(self):
        self.assertGreaterEqual(_lib.lib.nb_version_num(), _lib.MIN_VERSION_NUM)
        self.assertRegex(nb.library_version(), r"^\d+\.\d+\.\d+")
        self.assertTrue(os.path.exists(nb.library_path) or "/" not in nb.library_path)


HEADER = os.path.join(REPO, "include", "nanobreaker.h")


@unittest.skipUnless(shutil.which("gcc") and os.path.exists(HEADER), "needs gcc and the repository's header")
class LayoutTest(unittest.TestCase):
    """The ctypes structs are the header's, field for field."""

    def test_structs_match_the_header(self):
        structs = [_lib.nb_config, _lib.nb_metrics, _lib.nb_transition, _lib.nb_permit]
        lines = []
        for s in structs:
            name = s.__name__
            lines.append('printf("%s sizeof %%zu\\n", sizeof(%s));' % (name, name))
            for field, _ in s._fields_:
                c_field = "from" if field == "from_" else field
                lines.append('printf("%s %s %%zu\\n", offsetof(%s, %s));' % (name, field, name, c_field))
        src = "#include <stddef.h>\n#include <stdio.h>\n#include \"nanobreaker.h\"\nint main(void) {\n%s\nreturn 0;\n}\n" % "\n".join(lines)
        with tempfile.TemporaryDirectory() as tmp:
            exe = os.path.join(tmp, "layout")
            subprocess.run(
                ["gcc", "-std=c99", "-I", os.path.dirname(HEADER), "-x", "c", "-", "-o", exe],
                input=src.encode(), check=True,
            )
            out = subprocess.run([exe], check=True, stdout=subprocess.PIPE).stdout.decode()
        expected = []
        for s in structs:
            expected.append("%s sizeof %d" % (s.__name__, ctypes.sizeof(s)))
            expected.extend("%s %s %d" % (s.__name__, f, getattr(s, f).offset) for f, _ in s._fields_)
        self.assertEqual(out.split("\n")[:-1], expected)


if __name__ == "__main__":
    unittest.main()
