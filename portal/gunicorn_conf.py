"""Gunicorn settings: `gunicorn -c python:portal.gunicorn_conf 'portal:create_app()'`.

The Docker image runs exactly that. Each value can be changed through the environment
(PORTAL_WEB_*), so one image serves a laptop and a production host. The access log goes to
standard output through portal.logs.GunicornLogger, which redacts share-link tokens and
credential headers; every process is stateless (sessions, rate limits, uploads and work
live in the database and Redis), so any number of these can serve behind a load balancer.
"""

from __future__ import annotations

import faulthandler
import os
import sys
from typing import Any


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = os.environ.get("PORTAL_WEB_BIND", "0.0.0.0:8000")
# Processes, each with threads: requests wait on the database and the network, rarely on CPU.
workers = _int("PORTAL_WEB_WORKERS", 2)
threads = _int("PORTAL_WEB_THREADS", 4)
worker_class = "gthread"
# A request longer than this is a stuck worker: gunicorn replaces it (uploads are 64 KiB).
timeout = _int("PORTAL_WEB_TIMEOUT", 60)
graceful_timeout = _int("PORTAL_WEB_GRACEFUL_TIMEOUT", 30)
keepalive = _int("PORTAL_WEB_KEEPALIVE", 5)
# Workers are replaced after this many requests (with jitter), bounding slow memory growth.
max_requests = _int("PORTAL_WEB_MAX_REQUESTS", 5000)
max_requests_jitter = max_requests // 10
# Heartbeat files in memory, not on a container's overlay disk (a slow disk kills workers).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108  # nosec B108  # heartbeats only
accesslog = "-"
errorlog = "-"
logger_class = "portal.logs.GunicornLogger"
# No preloading: each worker builds the app after the fork, so no database connection or
# thread is ever shared between processes.
preload_app = False


def post_fork(server: Any, worker: Any) -> None:
    """On a crash (SIGSEGV, SIGABRT...), print every thread's Python stack to the error log."""
    faulthandler.enable(file=sys.stderr, all_threads=True)
