"""gunicorn on loopback, as the Dockerfile runs it (2 workers x 4 threads), for the bench."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

WORKERS = 2
THREADS = 4
START_TIMEOUT = 90.0  # seconds for /healthz to answer
# Where wsgi.py mounts the bare Flask app beside the portal.
BARE_PREFIX = "/__bare"


class ServerFailedError(RuntimeError):
    """gunicorn did not come up; the message ends with its log."""


@dataclass
class Server:
    """A running gunicorn master; stop() ends it and its workers."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    # The highest VmHWM seen of each worker pid (a worker gunicorn replaces keeps its figure).
    peaks: dict[int, float] = field(default_factory=dict)

    @property
    def base(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        """The pids of the master's children (gunicorn's workers)."""
        children = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                children.append(int(entry.name))
        return sorted(children)

    def sample_rss(self) -> None:
        """Read each worker's peak resident set (VmHWM) now, keeping the highest per pid."""
        for pid in self.worker_pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    self.peaks[pid] = max(self.peaks.get(pid, 0.0), int(line.split()[1]) / 1024)

    def worker_timeouts(self) -> int:
        """How many times gunicorn killed a worker for a request over its timeout (30 s)."""
        try:
            return self.log.read_text(errors="replace").count("WORKER TIMEOUT")
        except OSError:
            return 0

    def stop(self) -> None:
        """SIGTERM the master (it stops its workers), SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(env: Mapping[str, str], folder: Path) -> Server:
    """Start gunicorn with ENV added to ours; returns once /healthz answers 200."""
    port = free_port()
    log = folder / "gunicorn.log"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(WORKERS),
        "--threads",
        str(THREADS),
        "--access-logfile",
        "-",
        "--logger-class",
        "portal.logs.GunicornLogger",
        "portal.bench.wsgi:make_application()",
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603  (our own interpreter and arguments)
            command,
            env={**os.environ, **env, "PORTAL_BASE_URL": f"http://127.0.0.1:{port}"},
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
    server = Server(process, port, log)
    try:
        _wait_healthy(server)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerFailedError(
                f"gunicorn exited ({server.process.returncode}): {_tail(server.log)}"
            )
        try:
            with urllib.request.urlopen(f"{server.base}/healthz", timeout=5) as answer:  # noqa: S310  # nosec B310  # our own http:// loopback server
                if answer.status == 200 and len(server.worker_pids()) >= WORKERS:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise ServerFailedError(
        f"gunicorn did not answer /healthz in {START_TIMEOUT:.0f}s: {_tail(server.log)}"
    )


def _tail(log: Path) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").splitlines()[-5:])
    except OSError:
        return "(no log)"
