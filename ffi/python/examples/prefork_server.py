#!/usr/bin/env python3
"""A gunicorn-style prefork HTTP server whose workers share one breaker.

The master binds one listening socket and forks N workers; each worker
opens the shared breaker (after the fork) and serves ``GET /orders`` on the
inherited socket by calling a flaky upstream through the breaker, answering
503 with Retry-After when the breaker rejects. The upstream is a tiny HTTP
server in the master that fails (500) during an outage.

    python3 examples/prefork_server.py              # the demo (the default)
    python3 examples/prefork_server.py --scale 0.5  # a shorter demo
    python3 examples/prefork_server.py --serve --port 8000
        # serve until Ctrl-C; the upstream is down 10 s out of every 30

The demo drives itself: healthy, outage, recovery. It fires requests at
its own workers from the master, prints how many reached the upstream
during the outage (a few: the calls that tripped the breaker, then
``half_open_permits`` probes per trial, across all workers), checks that
the breaker closed again after the outage, stops the workers, and exits 0
if all that held (1 otherwise).

With gunicorn, the same is a post_fork hook: see gunicorn.conf.py.
"""

import argparse
import collections
import http.client
import http.server
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback

try:
    import nanobreaker as nb
except ImportError:  # run from a checkout: ffi/python is the package's home
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import nanobreaker as nb

# The trip needs at most max(minimum_calls, failure_rate_threshold *
# window_size) = 10 failures; then each trial lets 2 probes through. One
# stripe keeps the count window exact across workers (with several, calls
# recorded at once may overwrite each other's slots, so a trip may take a
# few more failures: README, "What concurrency does to the window").
CONFIG = nb.Config(
    stripes=1,
    window_size=20,
    minimum_calls=10,
    failure_rate_threshold=0.5,
    open_wait=0.3,
    max_open_wait=0.6,
    jitter=0.1,
    half_open_permits=2,
    half_open_max_wait=2.0,
)
TRIP_AFTER = max(CONFIG.minimum_calls, math.ceil(CONFIG.failure_rate_threshold * CONFIG.window_size))


# --- The upstream (in the master) --------------------------------------------


class Upstream:
    """A tiny HTTP server that answers 500 while ``outage`` is set and
    counts the requests that reach it."""

    def __init__(self):
        self.outage = False
        self.hits = 0
        self.lock = threading.Lock()
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with upstream.lock:
                    upstream.hits += 1
                    down = upstream.outage
                body = b"upstream down\n" if down else b'{"orders": [1, 2, 3]}\n'
                self.send_response(500 if down else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        # Bound now (the workers need its address), served after the fork:
        # the master forks with no thread running.
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = self.server.server_address

    def start(self):
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class UpstreamError(Exception):
    pass


def call_upstream(address):
    """GET the orders; raises UpstreamError on a 5xx or a network error."""
    conn = http.client.HTTPConnection(*address, timeout=2)
    try:
        conn.request("GET", "/orders")
        reply = conn.getresponse()
        body = reply.read()
    except OSError as e:
        raise UpstreamError(str(e)) from e
    finally:
        conn.close()
    if reply.status >= 500:
        raise UpstreamError("upstream answered %d" % reply.status)
    return body


def retry_after_header(seconds):
    """Retry-After is whole seconds, at least 1 (forced open: an hour)."""
    return str(3600 if math.isinf(seconds) else max(1, math.ceil(seconds)))


# --- The workers ---------------------------------------------------------------


def worker_main(listener, upstream_address, region):
    # Open the shared breaker here, in the worker, after the fork. The
    # region is a mapped file: a mapping made before the fork would be
    # shared, but each process has its own watcher thread, which delivers
    # the other processes' transitions to this process's listeners and
    # takes their reconfigurations, and a fork does not copy threads. A
    # worker that opens its own gets its own watcher. (gunicorn: the
    # post_fork hook, see gunicorn.conf.py; uWSGI: @postfork.)
    breaker = nb.Breaker.open_shared(region, CONFIG)

    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = 5

        def do_GET(self):
            if self.path == "/health":
                return self.reply(200, b"ok\n")
            try:
                with breaker.guard():  # an UpstreamError records a failure
                    body = call_upstream(upstream_address)
            except nb.Rejected as e:
                self.reply(503, b"orders unavailable, retry later\n", {"Retry-After": retry_after_header(e.retry_after)})
            except UpstreamError:
                self.reply(502, b"upstream failed\n")
            else:
                self.reply(200, body)

        def reply(self, status, body, headers=()):
            self.send_response(status)
            for k, v in dict(headers).items():
                self.send_header(k, v)
            self.send_header("X-Worker", str(os.getpid()))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    # The inherited listening socket, shared by every worker (the kernel
    # hands each connection to one of them). It is non-blocking, so a
    # worker that loses the race for a connection goes back to waiting.
    server = http.server.HTTPServer(listener.getsockname(), Handler, bind_and_activate=False)
    server.socket.close()
    server.socket = listener
    server.timeout = 0.1
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the master stops us
    while not stopping:
        server.handle_request()
    breaker.close()


def fork_worker(listener, upstream, region):
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        upstream.server.socket.close()  # the master's, not ours
        worker_main(listener, upstream.address, region)
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def stop_workers(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    failed = 0
    for pid in pids:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                failed += status != 0
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                failed += 1
                break
            time.sleep(0.01)
    return failed


# --- The master's demo -----------------------------------------------------------


def get(address, path="/orders"):
    """(status, Retry-After or None) of one request to the workers."""
    conn = http.client.HTTPConnection(*address, timeout=5)
    try:
        conn.request("GET", path)
        reply = conn.getresponse()
        reply.read()
        return reply.status, reply.getheader("Retry-After")
    finally:
        conn.close()


def fire(address, clients, until):
    """Requests from `clients` threads until `until()` is true: counts of
    each status, and of 503s that carried Retry-After."""
    counts = collections.Counter()
    lock = threading.Lock()

    def client():
        while not until():
            try:
                status, retry_after = get(address)
            except OSError:
                status, retry_after = "error", None
            with lock:
                counts[status] += 1
                counts["retry-after"] += retry_after is not None
            time.sleep(0.002)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts


def total(counts):
    return sum(n for k, n in counts.items() if k != "retry-after")


def after(seconds):
    end = time.monotonic() + seconds
    return lambda: time.monotonic() >= end


def demo(address, upstream, region, workers, scale, clients):
    breaker = nb.Breaker.open_shared(region, CONFIG)  # the master's own view
    heard = []
    breaker.on_transition(heard.append)  # every worker's transitions
    deadline = time.monotonic() + 10
    while True:  # the workers are up when one answers
        try:
            if get(address, "/health")[0] == 200:
                break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)

    ok = True
    healthy = fire(address, clients, after(1.0 * scale))
    print("healthy:  %5d requests: %d ok" % (total(healthy), healthy[200]))

    hits_before, heard_before = upstream.hits, len(heard)
    upstream.outage = True
    outage = fire(address, clients, after(2.5 * scale))
    upstream.outage = False
    breaker.sync()
    hits = upstream.hits - hits_before
    during = heard[heard_before:]
    trials = sum(t.to_state == nb.State.HALF_OPEN for t in during)
    requests = total(outage)
    # Each (single-threaded) worker may have a call in flight when the
    # outage starts (which may succeed, so the trip takes one more
    # failure) and one when the breaker trips (which still reaches the
    # upstream).
    in_flight = 2 * workers
    bound = TRIP_AFTER + in_flight + trials * CONFIG.half_open_permits
    print(
        "outage:   %5d requests: %d failed upstream (502), %d rejected by the breaker (503, %d with Retry-After)"
        % (requests, outage[502], outage[503], outage["retry-after"])
    )
    print(
        "upstream hits during the outage: %d of %d requests (at most %d: %d to trip, %d in flight, %d trials x %d probes)"
        % (hits, requests, bound, TRIP_AFTER, in_flight, trials, CONFIG.half_open_permits)
    )
    if not any(t.to_state == nb.State.OPEN for t in during):
        print("FAIL: the breaker never opened during the outage")
        ok = False
    if hits > bound:
        print("FAIL: too many upstream calls during the outage")
        ok = False

    start = time.monotonic()
    recovery = fire(address, clients, lambda: breaker.state == nb.State.CLOSED or time.monotonic() - start > 10)
    took = time.monotonic() - start
    settled = fire(address, clients, after(0.5 * scale))
    if breaker.state == nb.State.CLOSED and 0 < settled[200] == total(settled):
        print(
            "recovered: the breaker closed %.2f s after the outage ended (%d requests meanwhile); then %d of %d ok"
            % (took, total(recovery), settled[200], total(settled))
        )
    else:
        print("FAIL: not recovered: state %s, after the outage %r" % (breaker.state, dict(settled)))
        ok = False
    breaker.sync()
    print("transitions (every worker's, heard by the master):")
    for t in heard:
        print("  %7.3f s  %s -> %s (%s)" % (t.at, t.from_state, t.to_state, t.reason))
    m = breaker.metrics()
    print("breaker totals (all workers): %d calls, %d failures, %d rejected, %d opens" % (m.calls, m.failures, m.rejected, m.opens))
    breaker.close()
    return ok


def serve(upstream, every, down_for):
    print("upstream down %g s out of every %g s; Ctrl-C to stop" % (down_for, every))
    start = time.monotonic()
    while True:
        phase = (time.monotonic() - start) % every
        down = phase >= every - down_for
        if down != upstream.outage:
            upstream.outage = down
            print("upstream %s" % ("DOWN" if down else "up"), flush=True)
        time.sleep(0.1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--port", type=int, default=0, help="0: any free port")
    ap.add_argument("--breaker", help="shared breaker name or path (default: a file in a new temp dir)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--demo", action="store_true", help="run the self-driving scenario (the default)")
    mode.add_argument("--serve", action="store_true", help="serve until interrupted")
    ap.add_argument("--scale", type=float, default=1.0, help="demo phase length factor")
    ap.add_argument("--clients", type=int, default=4, help="demo client threads")
    args = ap.parse_args(argv)

    tmp = None
    region = args.breaker
    if region is None:
        tmp = tempfile.mkdtemp(prefix="nanobreaker-prefork-")
        region = os.path.join(tmp, "orders")
    listener = socket.create_server(("127.0.0.1", args.port), backlog=128)
    listener.setblocking(False)
    address = listener.getsockname()
    upstream = Upstream()
    # Fork first, while the master runs no thread and has opened no
    # breaker; then the master's own threads (the upstream, the clients).
    pids = [fork_worker(listener, upstream, region) for _ in range(args.workers)]
    print("master %d: %d workers %s on http://%s:%d/orders, breaker %s" % (os.getpid(), len(pids), pids, *address, region), flush=True)
    upstream.start()
    ok = True
    try:
        if args.serve:
            serve(upstream, 30.0, 10.0)
        else:
            ok = demo(address, upstream, region, len(pids), args.scale, args.clients)
    except KeyboardInterrupt:
        pass
    finally:
        failed = stop_workers(pids)
        upstream.stop()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    if failed:
        print("FAIL: %d workers did not exit cleanly" % failed)
        ok = False
    print("workers stopped; %s" % ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
