"""gunicorn config: one circuit breaker shared by every worker of the host.

    cd ffi/python/examples
    gunicorn -c gunicorn.conf.py wsgi_app:app

Each worker opens the shared breaker in post_fork, after the fork: the
breaker's region is a mapped file, and a mapping made before a fork would
be shared, but each process needs its own watcher thread (it delivers the
other workers' transitions to this worker's listeners and takes their
reconfigurations), and a fork does not copy threads. So never open it in
the master, even with preload_app. (uWSGI: the same in a function
decorated with uwsgidecorators.postfork.)
"""

bind = "127.0.0.1:8000"
workers = 4
preload_app = True  # fine: the app module opens nothing at import


def post_fork(server, worker):
    import wsgi_app

    wsgi_app.open_breaker()
