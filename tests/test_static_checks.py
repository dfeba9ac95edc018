"""Bandit finds nothing of medium or high severity in portal/, and every exception says why."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.liveserver import has_module

ROOT = Path(__file__).resolve().parent.parent
NOSEC = re.compile(r"#\s*nosec\b(?P<rest>.*)$")


def test_every_nosec_names_its_check_and_gives_a_reason() -> None:
    for path in (ROOT / "portal").rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = NOSEC.search(line)
            if match:
                assert re.match(r"\s+B\d{3}\s+#\s*\S", match["rest"]), f"{path}:{number}"


@pytest.mark.skipif(not has_module("bandit"), reason="bandit is in the test extras")
def test_bandit_finds_no_medium_or_high_issue() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bandit", "-q", "-c", "pyproject.toml", "-r", "portal",
         "--severity-level", "medium", "-f", "txt"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:]
