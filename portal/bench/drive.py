"""Concurrent clients against the served portal: the partner page beside the bare route,
staff pages, machine uploads. Latencies are whole requests over keep-alive loopback."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from portal.bench.clients import Answer, Client
from portal.bench.serve import BARE_PREFIX

CLIENTS = 4


@dataclass
class Timings:
    """Latencies of one kind of request, and the answers that were not what was expected."""

    seconds: list[float] = field(default_factory=list)
    errors: int = 0
    # The unexpected statuses and how often each came (0: no answer at all).
    unexpected: dict[int, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, answer: Answer, expected: Sequence[int]) -> None:
        """Record one answer (thread-safe)."""
        with self._lock:
            self.seconds.append(answer.seconds)
            if answer.status not in expected:
                self.errors += 1
                self.unexpected[answer.status] = self.unexpected.get(answer.status, 0) + 1

    def p_ms(self, percent: float) -> float:
        """The PERCENT-th percentile (nearest rank) in milliseconds; 0.0 with no samples."""
        if not self.seconds:
            return 0.0
        ordered = sorted(self.seconds)
        rank = max(1, math.ceil(percent / 100 * len(ordered)))
        return round(ordered[rank - 1] * 1000, 2)

    def rps(self, concurrency: int) -> float:
        """Requests per second while CONCURRENCY clients each wait for their answers."""
        total = sum(self.seconds)
        return round(len(self.seconds) * concurrency / total, 1) if total else 0.0


def _in_parallel(clients: Sequence[Client], work: Callable[[int, Client], object]) -> None:
    """Run WORK(index, client) on every client at once; re-raise the first failure."""
    with ThreadPoolExecutor(len(clients)) as pool:
        for future in [pool.submit(work, n, c) for n, c in enumerate(clients)]:
            future.result()


def partner_page(clients: Sequence[Client], tokens: Sequence[str], requests: int) -> dict[str, Any]:
    """/s/<token> and the bare route in turn on each client (so both see the same load).

    Throughput is CLIENTS / mean latency of that route: the rate it serves while every
    client is always waiting for one of the two.
    """
    real, bare = Timings(), Timings()
    per_client = max(1, math.ceil(requests / len(clients)))

    def work(index: int, client: Client) -> None:
        for n in range(per_client):
            token = tokens[(index * per_client + n) % len(tokens)]
            order = ((real, f"/s/{token}"), (bare, f"{BARE_PREFIX}/"))
            for timings, path in order if n % 2 == 0 else order[::-1]:
                timings.add(client.get(path), (200,))

    _in_parallel(clients, lambda i, c: [c.get(f"/s/{tokens[0]}"), c.get(f"{BARE_PREFIX}/")])
    _in_parallel(clients, work)
    rps, bare_rps = real.rps(len(clients)), bare.rps(len(clients))
    return {
        "rps": rps,
        "p50_ms": real.p_ms(50),
        "p95_ms": real.p_ms(95),
        "bare_rps": bare_rps,
        "bare_p50_ms": bare.p_ms(50),
        "ratio": round(rps / bare_rps, 3) if bare_rps else 0.0,
        "requests": len(real.seconds),
        "errors": real.errors + bare.errors,
        "unexpected": {**bare.unexpected, **real.unexpected},
    }


@dataclass(frozen=True)
class Page:
    """A page to time: its path, extra headers, and the statuses that count as success."""

    path: str
    headers: dict[str, str] = field(default_factory=dict)
    expected: tuple[int, ...] = (200,)


def time_page(clients: Sequence[Client], page: Page, requests: int) -> Timings:
    """REQUESTS requests of PAGE spread over the clients at once (one unmeasured warm-up each)."""
    timings = Timings()
    per_client = max(1, math.ceil(requests / len(clients)))
    _in_parallel(clients, lambda i, c: c.get(page.path, page.headers))

    def work(_index: int, client: Client) -> None:
        for _ in range(per_client):
            timings.add(client.get(page.path, page.headers), page.expected)

    _in_parallel(clients, work)
    return timings


def uploads(clients: Sequence[Client], tokens: Sequence[str], pems: Sequence[bytes]) -> Timings:
    """POST each PEM to /s/<token>/certificate (a different link each), clients at once."""
    timings = Timings()
    jobs = list(zip(tokens, pems, strict=False))

    def work(index: int, client: Client) -> None:
        for token, pem in jobs[index :: len(clients)]:
            answer = client.request(
                "POST",
                f"/s/{token}/certificate",
                body=pem,
                headers={"Content-Type": "application/x-pem-file"},
            )
            timings.add(answer, (201,))

    _in_parallel(clients, work)
    return timings
