"""Request headers (User-Agent) are stored one line, without controls, bidi characters or NUL."""

from __future__ import annotations

import pytest

from portal.domain.text import header_text


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("Mozilla/5.0 (X11)", "Mozilla/5.0 (X11)"),
        ("curl/8\r\nX-Forged: yes", "curl/8 X-Forged: yes"),
        ("evil\u202egnp.exe", "evilgnp.exe"),
        ("nul\x00byte\x1b[31m", "nulbyte[31m"),
        ("  padded  ", "padded"),
        ("\u2066\x07", None),
        ("", None),
        (None, None),
    ],
)
def test_a_header_is_stored_as_one_clean_line(raw: str | None, stored: str | None) -> None:
    assert header_text(raw) == stored


def test_a_header_is_cut_to_its_limit() -> None:
    assert header_text("x" * 1000) == "x" * 400
    assert header_text("x" * 1000, limit=300) == "x" * 300
