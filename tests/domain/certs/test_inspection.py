"""inspect as a whole: never raises, sorts findings, insists on an aware clock."""

from __future__ import annotations

from datetime import datetime

import pytest

from portal.domain.certs import Code, Usage, inspect, inspection
from tests import certfactory as cf
from tests.domain.certs.helpers import NOW, check, good_cert, plain


def test_internal_error_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(_data: bytes) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(inspection, "extract", explode)
    report = inspect(plain(), usage=Usage.BOTH, now=NOW)
    assert report.codes == [Code.INTERNAL_ERROR]
    assert not report.acceptable


def test_findings_are_sorted_errors_first() -> None:
    report = check(cf.pem(good_cert(days=10, key_size=1024)))
    ranks = [("error", "warning", "info").index(f.severity) for f in report.findings]
    assert ranks == sorted(ranks)


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        inspect(plain(), usage=Usage.BOTH, now=datetime(2026, 1, 1))  # noqa: DTZ001
