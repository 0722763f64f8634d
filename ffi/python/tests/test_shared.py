"""Breakers shared between processes: multiprocessing workers (fork and
spawn) through healthy, outage and recovery phases, some killed with
SIGKILL mid-outage; config mismatch and adopt; hostile files."""

import dataclasses
import errno
import multiprocessing
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from support import nb

CONFIG = nb.Config(
    window_size=20,
    minimum_calls=10,
    open_wait=0.2,
    max_open_wait=0.4,  # recovery comes soon after the outage
    jitter=0.0,
    half_open_permits=3,
    half_open_max_wait=0.5,  # a killed worker's probes come back this soon
    stripes=2,
)

# Phases, in seconds from the start every worker waits for.
OUTAGE, RECOVERY, END = 0.6, 1.8, 2.8
KILL_AT = OUTAGE + 0.4
WORKERS = 4
# Each worker's slots: attempts, admitted, rejected, recorded, probes
# (admitted in the outage after the worker saw the breaker open), ready.
ATTEMPTS, ADMITTED, REJECTED, RECORDED, PROBES, READY = range(6)
FIELDS = 6


def worker(slot, path, start, books):
    """Calls through the shared breaker until END, keeping its counts in
    `books` (shared memory: a killed worker's counts survive it)."""
    base = slot * FIELDS
    cb = nb.Breaker.open_shared(path, CONFIG)
    books[base + READY] = 1
    while start.value == 0:
        time.sleep(0.001)
    tripped = False
    while True:
        t = time.time() - start.value
        if t >= END:
            break
        outage = OUTAGE <= t < RECOVERY
        books[base + ATTEMPTS] += 1
        try:
            permit = cb.acquire()
        except nb.Rejected:
            books[base + REJECTED] += 1
            tripped = tripped or outage
        else:
            books[base + ADMITTED] += 1
            if outage and tripped:
                books[base + PROBES] += 1
            time.sleep(0.0002)  # the call
            if outage:
                permit.failure()
            else:
                permit.success()
            books[base + RECORDED] += 1
        time.sleep(0.001)
    cb.close()


def wait_single_threaded(timeout=1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open("/proc/self/status") as f:
                if "Threads:\t1\n" in f.read():
                    return
        except OSError:
            return
        time.sleep(0.005)


class SharedTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nanobreaker-py-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def region(self, name="region"):
        return os.path.join(self.tmp, name)

    def run_workers(self, method, kill):
        if method == "fork":
            # The watcher thread of an earlier test's breakers ends within
            # 10 ms of their close; Python 3.12+ warns of a fork with threads.
            wait_single_threaded()
        ctx = multiprocessing.get_context(method)
        path = self.region()
        books = ctx.RawArray("Q", WORKERS * FIELDS)
        start = ctx.RawValue("d", 0.0)
        procs = [ctx.Process(target=worker, args=(k, path, start, books)) for k in range(WORKERS)]
        # Fork first, then open here: a fork copies no thread, and this
        # process's watcher thread starts with its first shared breaker.
        for p in procs:
            p.start()
        self.addCleanup(lambda: [p.kill() for p in procs if p.is_alive()])
        cb = nb.Breaker.open_shared(path, CONFIG)
        self.addCleanup(cb.close)
        heard = []
        cb.on_transition(heard.append)  # the workers' transitions: this process makes none
        deadline = time.monotonic() + 30
        while not all(books[k * FIELDS + READY] for k in range(WORKERS)):
            self.assertTrue(all(p.is_alive() for p in procs), "a worker died before starting")
            self.assertLess(time.monotonic(), deadline, "workers never started")
            time.sleep(0.01)
        start.value = time.time() + 0.05
        while time.time() < start.value + KILL_AT:
            time.sleep(0.01)
        state_in_outage = cb.state
        killed = procs[:kill]
        for p in killed:
            p.kill()  # SIGKILL
        for p in procs:
            p.join(timeout=30)
            self.assertEqual(p.exitcode, -signal.SIGKILL if p in killed else 0)

        for _ in range(3):  # the watcher does it too, every 10 ms
            cb.sync()
        m = cb.metrics()
        heard_then = list(heard)

        def total(field):
            return sum(books[k * FIELDS + field] for k in range(WORKERS))

        attempts, admitted, rejected, recorded, probes = (total(f) for f in (ATTEMPTS, ADMITTED, REJECTED, RECORDED, PROBES))
        report = "attempts %d admitted %d rejected %d recorded %d probes %d; %s; heard %s" % (
            attempts, admitted, rejected, recorded, probes, m, heard_then)
        # The books balance: a killed worker may die between a count and the next.
        self.assertTrue(0 <= attempts - (admitted + rejected) <= kill, report)
        self.assertTrue(0 <= admitted - recorded <= kill, report)
        # The breaker's own counts (every process's) agree with the books.
        self.assertLessEqual(abs(m.successes + m.failures + m.ignored - recorded), kill, report)
        self.assertLessEqual(abs(m.rejected - rejected), kill, report)
        self.assertGreater(rejected, 0, report)
        # The outage tripped it, and the workers' transitions reached this
        # process's listener, every one, in order.
        self.assertNotEqual(state_in_outage, nb.State.CLOSED, report)
        self.assertGreaterEqual(m.opens, 1, report)
        self.assertEqual([t.generation for t in heard_then], list(range(1, m.generation + 1)), report)
        self.assertEqual(heard_then[0].to_state, nb.State.OPEN, report)
        self.assertEqual(heard_then[0].reason, nb.Reason.FAILURE_RATE, report)
        trials = sum(t.to_state == nb.State.HALF_OPEN for t in heard_then)
        self.assertGreaterEqual(trials, 1, report)
        # Probes: at most half_open_permits per trial, across every worker.
        self.assertLessEqual(probes, trials * CONFIG.half_open_permits, report)

        # Closed at the end: after the recovery, or after a few successes
        # here (a killed probe's slot comes back at half_open_max_wait).
        deadline = time.monotonic() + 5
        while cb.state != nb.State.CLOSED and time.monotonic() < deadline:
            permit = cb.try_acquire()
            if permit:
                permit.success()
            time.sleep(0.005)
        self.assertEqual(cb.state, nb.State.CLOSED, cb.metrics())
        cb.sync()
        self.assertEqual(heard[-1].to_state, nb.State.CLOSED)
        self.assertEqual(heard[-1].reason, nb.Reason.PROBES_SUCCEEDED)
        self.assertEqual(cb.metrics().events_lost, 0)

    def test_fork_workers_one_killed(self):
        self.run_workers("fork", kill=1)

    def test_spawn_workers_two_killed(self):
        self.run_workers("spawn", kill=2)

    def test_config_mismatch_and_adopt(self):
        path = self.region()
        with nb.Breaker.open_shared(path, CONFIG) as a:
            other = nb.Config(minimum_calls=5)
            with self.assertRaises(nb.ConfigMismatch) as e:
                nb.Breaker.open_shared(path, other)
            self.assertEqual(e.exception.code, 13)
            with nb.Breaker.open_shared(path, other, adopt=True) as b:
                # (stripes read back 0: they are fixed when a breaker is made)
                self.assertEqual(b.config, dataclasses.replace(CONFIG, stripes=0))
                self.assertTrue(b.shared)
                heard = []
                b.on_transition(heard.append)
                while a.state == nb.State.CLOSED:
                    a.acquire().failure()
                self.assertEqual(b.state, nb.State.OPEN, "one breaker, two handles")
                b.sync()
                self.assertEqual([t.to_state for t in heard], [nb.State.OPEN])
                # A reconfiguration reaches the other handle (sync: now).
                a.reconfigure(dataclasses.replace(CONFIG, open_wait=0.35))
                b.sync()
                self.assertEqual(b.config.open_wait, 0.35)
            with nb.Breaker.open_shared(path, CONFIG, adopt=True) as c:
                self.assertEqual(c.config.open_wait, 0.35)
                # Or replaced: the config given becomes the region's, for
                # every handle.
                with nb.Breaker.open_shared(path, dataclasses.replace(CONFIG, open_wait=0.3), replace=True):
                    c.sync()
                    self.assertEqual(c.config.open_wait, 0.3)

    def test_random_bytes_raise_shared_corrupt(self):
        for size in (1, 8, 100, 4096, 65536):
            with self.subTest(size=size):
                path = self.region("garbage-%d" % size)
                with open(path, "wb") as f:
                    f.write(os.urandom(size))
                for adopt in (False, True):
                    with self.assertRaises(nb.SharedCorrupt):
                        nb.Breaker.open_shared(path, CONFIG, adopt=adopt)

    def test_names_paths_and_errors(self):
        with self.assertRaises(FileNotFoundError) as e:
            nb.Breaker.open_shared(os.path.join(self.tmp, "no", "such", "dir"), CONFIG)
        self.assertEqual(e.exception.errno, errno.ENOENT)
        self.assertIn("no/such/dir", str(e.exception))
        for bad in ("", "bad name", "a" * 201, "é", "x\0y"):
            with self.subTest(name=bad):
                with self.assertRaises(ValueError):
                    nb.Breaker.open_shared(bad, CONFIG)
        for mode in (-1, 0o10000, "0600"):
            with self.assertRaises(ValueError):
                nb.Breaker.open_shared(self.region(), CONFIG, mode=mode)
        with self.assertRaises(nb.ConfigError):
            nb.Breaker.open_shared(self.region(), nb.Config(jitter=5.0))
        path = self.region("moded")
        nb.Breaker.open_shared(path, CONFIG, mode=0o640).close()
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o640)
        # A path-like works as well as a str.
        nb.Breaker.open_shared(pathlib.Path(path), CONFIG).close()

    def test_exit_with_a_listener_while_others_transition(self):
        """A process that exits while its watcher thread is delivering
        other processes' transitions to its listener exits cleanly (the
        package closes such breakers at exit: a callback into a finalizing
        interpreter would abort the process)."""
        churn = dict(window_size=4, minimum_calls=2, open_wait=0.001, max_open_wait=0.001, jitter=0.0, half_open_permits=1)
        path = self.region()
        cb = nb.Breaker.open_shared(path, nb.Config(**churn))
        self.addCleanup(cb.close)
        stop = []

        def transitions():
            while not stop:
                permit = cb.try_acquire()
                if permit:
                    permit.failure()
                time.sleep(0.0001)

        thread = threading.Thread(target=transitions)
        thread.start()
        self.addCleanup(thread.join)
        self.addCleanup(stop.append, True)
        child = (
            "import sys, time, nanobreaker as nb\n"
            "cb = nb.Breaker.open_shared(sys.argv[1], nb.Config(**%r))\n"
            "heard = []\n"
            "cb.on_transition(heard.append)\n"
            "time.sleep(float(sys.argv[2]))\n"
            "cb.sync()\n"
            "assert heard, 'heard no transition'\n"
        ) % (churn,)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        for i in range(12):
            run = subprocess.run([sys.executable, "-c", child, path, str(0.03 + 0.011 * i)], env=env,
                                 stderr=subprocess.PIPE, timeout=60)
            self.assertEqual(run.returncode, 0, run.stderr.decode())

    @unittest.skipUnless(os.path.isdir("/dev/shm"), "no /dev/shm")
    def test_a_bare_name_lives_in_dev_shm(self):
        name = "py-test-%d-%d" % (os.getpid(), time.monotonic_ns())
        with nb.Breaker.open_shared(name, CONFIG) as cb:
            # nanobreaker-<name>, or with the layout version: nanobreaker-v4-<name>
            files = [f for f in os.listdir("/dev/shm") if f.startswith("nanobreaker-") and f.endswith("-" + name)]
            for f in files:
                self.addCleanup(os.unlink, os.path.join("/dev/shm", f))
            self.assertEqual(len(files), 1, os.listdir("/dev/shm"))
            cb.acquire().success()
        with nb.Breaker.open_shared(name, CONFIG) as again:
            self.assertEqual(again.metrics().successes, 1)


if __name__ == "__main__":
    unittest.main()
