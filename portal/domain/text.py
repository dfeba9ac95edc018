"""Text hygiene for what people type: control characters stripped, bidi controls refused.

Control characters (C0 but tab/CR/LF in multi-line text, DEL, C1) are stripped: nobody means
to type them, they come from pasting, and dropping them loses nothing a reader could see.
Bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E/F, U+061C) are refused instead:
they reorder what an approver reads ("Trojan Source"), and silently removing them would
change the meaning the sender saw on their own screen, so the sender is asked to fix it.
NUL is refused too (PortalForm's own check): it marks malformed input, not a paste.
"""

from __future__ import annotations

import re

BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
BIDI_REFUSAL = "Remove the invisible text-direction characters (such as U+202E) from this field."
_CONTROLS = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_BREAKS = re.compile(r"[\t\r\n]+")


def strip_controls(text: str, *, multiline: bool = False) -> str:
    """TEXT without control characters (NUL stays for the caller to refuse).

    Multi-line text keeps tab, CR and LF; single-line text gets one space for each run of them.
    """
    text = _CONTROLS.sub("", text)
    return text if multiline else _LINE_BREAKS.sub(" ", text)


def has_bidi_controls(text: str) -> bool:
    """Whether TEXT holds a bidirectional control character."""
    return not BIDI_CONTROLS.isdisjoint(text)


def clean_text(text: str, *, multiline: bool = False) -> str:
    """TEXT with controls stripped; ValueError (BIDI_REFUSAL) if it holds a bidi control or NUL."""
    if has_bidi_controls(text):
        raise ValueError(BIDI_REFUSAL)
    if "\x00" in text:
        raise ValueError("Remove the NUL character.")
    return strip_controls(text, multiline=multiline)


def header_text(value: str | None, *, limit: int = 400) -> str | None:
    """A request header (User-Agent) fit to store and show: one line, no NUL, no control or
    bidi character, at most LIMIT characters; None when nothing is left.

    Unlike typed text, a header is nobody's words to fix, so bidi controls are dropped,
    not refused.
    """
    if not value:
        return None
    kept = "".join(ch for ch in value if ch not in BIDI_CONTROLS and ch != "\x00")
    return strip_controls(kept).strip()[:limit] or None
