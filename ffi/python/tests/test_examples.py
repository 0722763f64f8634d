"""The examples: the prefork server's demo, and the gunicorn hook's app."""

import http.server
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import threading
import unittest
from unittest import mock

from support import EXAMPLES, PACKAGE_HOME, nb


class PreforkServerTest(unittest.TestCase):
    def test_demo(self):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [PACKAGE_HOME, os.environ.get("PYTHONPATH")])))
        run = subprocess.run(
            [sys.executable, os.path.join(EXAMPLES, "prefork_server.py"), "--demo", "--workers", "2", "--scale", "0.5"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=120,
        )
        out = run.stdout.decode()
        self.assertEqual(run.returncode, 0, out)
        hits = re.search(r"upstream hits during the outage: (\d+) of (\d+) requests \(at most (\d+)", out)
        self.assertIsNotNone(hits, out)
        hits, requests, bound = map(int, hits.groups())
        self.assertLessEqual(hits, bound, out)
        self.assertLess(hits, requests, out)
        self.assertIn("closed -> open (failure_rate)", out)
        self.assertIn("half_open -> closed (probes_succeeded)", out)
        self.assertIn("recovered: the breaker closed", out)
        self.assertIn("workers stopped; OK", out)


class Upstream(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):
        self.send_response(Upstream.status)
        self.end_headers()
        self.wfile.write(b'{"orders": []}')

    def log_message(self, *args):
        pass


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class GunicornHookTest(unittest.TestCase):
    """gunicorn.conf.py's post_fork opens the breaker that wsgi_app uses
    (gunicorn itself is not needed: the hook and the app are called as
    gunicorn would)."""

    def test_post_fork_opens_the_shared_breaker(self):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        env = {"ORDERS_BREAKER": os.path.join(tmp.name, "orders"), "ORDERS_URL": "http://%s:%d/orders" % server.server_address}
        patch = mock.patch.dict(os.environ, env)
        patch.start()
        self.addCleanup(patch.stop)
        sys.path.insert(0, EXAMPLES)
        self.addCleanup(sys.path.remove, EXAMPLES)
        sys.modules.pop("wsgi_app", None)
        conf = load("gunicorn_conf", os.path.join(EXAMPLES, "gunicorn.conf.py"))
        self.assertEqual(conf.workers, 4)
        conf.post_fork(server=None, worker=None)
        app = sys.modules["wsgi_app"]
        self.addCleanup(app.breaker.close)
        self.assertTrue(app.breaker.shared)

        def get():
            seen = {}

            def start_response(status, headers):
                seen["status"], seen["headers"] = status, dict(headers)

            body = b"".join(app.app({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, start_response))
            return seen["status"], seen["headers"], body

        self.assertEqual(get()[0], "200 OK")
        Upstream.status = 500
        self.addCleanup(setattr, Upstream, "status", 200)
        failed = 0
        while True:
            status, headers, _ = get()
            if status != "502 Bad Gateway":
                break
            failed += 1
        # The 10th outcome (minimum_calls) is judged: 9 of 10 failed.
        self.assertEqual(failed, app.CONFIG.minimum_calls - 1)
        self.assertEqual(status, "503 Service Unavailable")
        self.assertIn(headers["Retry-After"], {"4", "5", "6"}, "open_wait 5 s, jitter 0.2")
        self.assertEqual(app.breaker.state, nb.State.OPEN)


if __name__ == "__main__":
    unittest.main()
