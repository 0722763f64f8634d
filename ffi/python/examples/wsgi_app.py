"""A WSGI app whose gunicorn workers share one circuit breaker.

    cd ffi/python/examples
    gunicorn -c gunicorn.conf.py wsgi_app:app

gunicorn.conf.py's post_fork hook calls `open_breaker` in each worker.
Settings come from the environment: ORDERS_BREAKER (the shared breaker's
name or path, default "orders-db": a file in /dev/shm) and
ORDERS_URL (the upstream).
"""

import http.client
import math
import os
import urllib.request

import nanobreaker as nb

BREAKER = os.environ.get("ORDERS_BREAKER", "orders-db")
UPSTREAM = os.environ.get("ORDERS_URL", "http://127.0.0.1:9000/orders")
CONFIG = nb.Config(minimum_calls=10, open_wait=5.0, half_open_permits=2)

#: This worker's handle, opened after the fork by `open_breaker`.
breaker = None


def open_breaker():
    """Opens this process's handle on the shared breaker (once)."""
    global breaker
    if breaker is None:
        breaker = nb.Breaker.open_shared(BREAKER, CONFIG)
    return breaker


def fetch_orders():
    """The upstream call; raises OSError (URLError, HTTPError: a 4xx or 5xx) on failure."""
    with urllib.request.urlopen(UPSTREAM, timeout=2) as reply:
        return reply.read()


def app(environ, start_response):
    # Without the post_fork hook (another server), open on first use: that
    # too is after the fork.
    cb = open_breaker()
    try:
        body = cb.call(fetch_orders)
    except nb.Rejected as e:
        wait = 3600 if math.isinf(e.retry_after) else max(1, math.ceil(e.retry_after))
        start_response("503 Service Unavailable", [("Content-Type", "text/plain"), ("Retry-After", str(wait))])
        return [b"orders unavailable, retry later\n"]
    except (OSError, http.client.HTTPException):  # URLError and HTTPError are OSErrors
        start_response("502 Bad Gateway", [("Content-Type", "text/plain")])
        return [b"upstream failed\n"]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
