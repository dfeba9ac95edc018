"""The bench's answer: the machine, the JSON document, and a table against the goals."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

# The goals of the scale work (the issue): a figure passes when it is within its goal.
PARTNER_PAGE_RATIO_GOAL = 0.5  # at least half the bare route's throughput
PAGE_P95_GOAL_MS = 50.0  # every staff page at N partners
PAGE_RATIO_GOAL = 1.5  # at most 1.5 times its figure at 100 partners
CAMPAIGN_GOAL_S = 10.0
RUN_DUE_GOAL_S = 10.0
WORKER_RSS_GOAL_MB = 150.0


def machine() -> str:
    """CPU model, cores, RAM, OS and Python, in one line."""
    cpu = platform.processor() or platform.machine()
    ram = "? GB"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GB"
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {ram} RAM, {platform.platform()}, "
        f"Python {platform.python_version()}"
    )


def versions() -> dict[str, str]:
    """Versions of the portal and the libraries that shape the figures."""
    found = {}
    for name in (
        "cert-exchange-portal",
        "flask",
        "sqlalchemy",
        "gunicorn",
        "psycopg",
        "cryptography",
    ):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def table(doc: dict[str, Any]) -> str:
    """A readable table: figure, at 100 partners, at N, ratio, goal, pass/fail."""
    n = doc["partners"]
    small = doc["small_partners"]
    header = f"{'figure':<28}{f'at {small}':>12}{f'at {n}':>12}{'ratio':>8}  {'goal':<24}result"
    lines = [
        f"portal bench: {n} partners on {doc['database']} ({doc['timestamp']})",
        f"machine: {doc['machine']}",
        "",
        header,
        "-" * len(header),
    ]
    page = doc["partner_page"]
    lines.append(f"{'bare route rps':<28}{'':>12}{page['bare_rps']:>12}")
    lines.append(
        f"{'partner page rps':<28}{'':>12}{page['rps']:>12}{page['ratio']:>8}  "
        f"{'>= 0.5 x bare':<24}{_verdict(page['ratio'] >= PARTNER_PAGE_RATIO_GOAL)}"
    )
    lines.append(f"{'partner page p50 ms':<28}{'':>12}{page['p50_ms']:>12}")
    lines.append(f"{'partner page p95 ms':<28}{'':>12}{page['p95_ms']:>12}")
    for name, figures in doc["pages"].items():
        ok = figures["p95_ms_large"] < PAGE_P95_GOAL_MS and figures["ratio"] <= PAGE_RATIO_GOAL
        lines.append(
            f"{name + ' p95 ms':<28}{figures['p95_ms_small']:>12}"
            f"{figures['p95_ms_large']:>12}{figures['ratio']:>8}  "
            f"{'< 50 ms, <= 1.5x':<24}{_verdict(ok)}"
        )
    campaign = doc["campaign"]
    rows = [
        ("upload p95 ms", doc["upload_p95_ms"], "", ""),
        (
            f"campaign start s ({campaign['partners']} p.)",
            doc["campaign_5000_s"],
            "< 10 s",
            _verdict(doc["campaign_5000_s"] < CAMPAIGN_GOAL_S),
        ),
        (
            f"campaign delivery s ({campaign['emails_received']} m.)",
            doc["campaign_delivery_s"],
            "",
            "",
        ),
        (
            "run-due 10000 effects s",
            doc["run_due_10000_s"],
            "< 10 s",
            _verdict(doc["run_due_10000_s"] < RUN_DUE_GOAL_S),
        ),
        (
            "worker peak RSS MB",
            doc["worker_rss_mb"],
            "< 150 MB",
            _verdict(doc["worker_rss_mb"] < WORKER_RSS_GOAL_MB),
        ),
    ]
    for name, value, goal, verdict in rows:
        lines.append(f"{name:<28}{'':>12}{value:>12}{'':>8}  {goal:<24}{verdict}")
    if doc.get("errors"):
        lines.append(f"\nunexpected answers: {doc['errors']} (see the JSON for each figure)")
    if doc.get("worker_timeouts"):
        lines.append(
            f"gunicorn killed a worker {doc['worker_timeouts']} times for a request over its "
            "30 s timeout"
        )
    return "\n".join(lines)
