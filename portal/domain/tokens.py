"""Share-link tokens: an itsdangerous signature over an opaque random link id.

The token proves only that we issued the id; the database row decides purposes,
expiry, revocation and use counts. Keys form a list so they can rotate: the newest
signs, every listed key verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from datetime import timedelta
from urllib.parse import unquote

from itsdangerous import BadSignature, Signer

LINK_SALT = "portal.share-link.v1"
LINK_ID_BYTES = 16
_LINK_ID = re.compile(r"^[A-Za-z0-9_-]{16,32}$")
_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_LINK_LIFETIME = timedelta(days=365)


class LinkSigner:
    """Signs link ids into URL tokens and reads them back."""

    def __init__(self, keys: Sequence[str]) -> None:
        """Build from signing keys, oldest first; the last one signs."""
        if not keys or any(len(key) < 32 for key in keys):
            raise ValueError("Link signing keys must be at least 32 characters each.")
        # itsdangerous signs with the last key of a list and verifies with any.
        self._signer = Signer(list(keys), salt=LINK_SALT, digest_method=hashlib.sha256)
        self._keys = list(keys)

    def sign(self, link_id: str) -> str:
        """The URL token for LINK_ID."""
        return self._signer.sign(link_id).decode("ascii")

    def unsign(self, token: str) -> str | None:
        """The link id a genuine token carries, or None for anything forged or mangled."""
        if len(token) > 200:
            return None
        try:
            link_id = self._signer.unsign(token).decode("ascii")
        except (BadSignature, UnicodeError):
            return None
        if not _LINK_ID.fullmatch(link_id):
            return None
        # base64 leaves spare bits in the last character: accept only the one canonical
        # spelling of a token (verified against every key, newest first).
        for key in reversed(self._keys):
            if hmac.compare_digest(token, self._signer_for(key).sign(link_id).decode("ascii")):
                return link_id
        return None

    def _signer_for(self, key: str) -> Signer:
        return Signer(key, salt=LINK_SALT, digest_method=hashlib.sha256)


def new_link_id() -> str:
    """A fresh opaque link id (128 random bits) that never starts with '-'.

    An id starting with '-' would read as an option in `portal link revoke ID`.
    """
    while True:
        link_id = secrets.token_urlsafe(LINK_ID_BYTES)
        if not link_id.startswith("-"):
            return link_id


def parse_duration(text: str) -> timedelta:
    """Read '90s', '30m', '12h' or '14d'; ValueError with a readable message otherwise."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(
            f"{text[:20]!r} is not a duration; write a number and s, m, h or d, e.g. 14d."
        )
    duration = timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    if duration <= timedelta(0):
        raise ValueError("A link must live for some time; use at least 1m.")
    if duration > MAX_LINK_LIFETIME:
        raise ValueError("A link can live at most 365 days.")
    return duration


def redact_tokens(text: str) -> str:
    """Replace share-link tokens however a request spelled them, so they never reach a log.

    A server accepts a link path in many spellings (/s%2F<token>, /%73/<token>, //S//<token>,
    a token inside ?next=..., double-encoded), so each run of non-blank characters is
    percent-decoded until it stops changing and has its slashes collapsed before matching;
    a run that holds a link path or anything shaped like a signed token is logged decoded,
    redacted and with control characters escaped. Other text is left exactly as it was.
    """
    return _RUN.sub(_redact_run, text)


def escape_controls(text: str) -> str:
    """TEXT with control characters (CR, LF, ESC, ...) written as escapes: one log line each."""
    return _CONTROL.sub(lambda match: match.group(0).encode("unicode_escape").decode("ascii"), text)


def _redact_run(match: re.Match[str]) -> str:
    original = match.group(0)
    decoded = _fully_decoded(original)
    if decoded is None:
        return REDACTED  # nested deeper than any server decodes: nothing of it is logged
    if not (_LINK_PATH.search(decoded) or _TOKEN_SHAPE.search(decoded)):
        return original
    redacted = _TOKEN_SHAPE.sub(REDACTED, _LINK_PATH.sub(f"/s/{REDACTED}", decoded))
    return escape_controls(redacted)


def _fully_decoded(text: str) -> str | None:
    """TEXT percent-decoded until it no longer changes; None if it still does after many rounds."""
    for _ in range(_MAX_DECODE_ROUNDS):
        decoded = unquote(text, errors="replace")
        if decoded == text:
            return text
        text = decoded
    return None


REDACTED = "[redacted]"
_MAX_DECODE_ROUNDS = 10
# Runs of characters a URL can be made of; quotes and blanks end one.
_RUN = re.compile(r"[^\s\"'<>]+")
# After decoding: a link path however its slashes are doubled, up to the next delimiter.
_LINK_PATH = re.compile(r"[/\\]+s[/\\]+[^/\\?#&\s\"'<>]+", re.IGNORECASE)
# The token's own shape: a link id, a dot, an HMAC-SHA256 signature (both URL-safe base64).
_TOKEN_SHAPE = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{40,}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
