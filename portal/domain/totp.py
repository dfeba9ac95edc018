"""Time-based one-time passwords (RFC 6238) and recovery codes, given the time.

A code is accepted for its own 30-second step and the one before and after (clock
drift), and only for a step later than the last one used, so a code works once.

Recovery codes are 80 random bits each. They are stored as salted SHA-256, not with a
slow password hash: a slow hash protects guessable secrets, and 2**80 guesses per code
stay out of reach however fast the hash is; the salt makes equal codes hash apart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import Final

import pyotp
import segno

__all__ = [
    "RECOVERY_CODE_COUNT",
    "hash_recovery_code",
    "matching_step",
    "new_recovery_codes",
    "new_secret",
    "normalise_code",
    "provisioning_uri",
    "qr_svg",
    "recovery_code_matches",
]

STEP_SECONDS: Final = 30
DIGITS: Final = 6
WINDOW: Final = 1  # steps accepted either side of the current one
RECOVERY_CODE_COUNT: Final = 10
_RECOVERY_BYTES: Final = 10  # 80 bits, 16 base32 characters
_SALT_BYTES: Final = 16
_SEPARATORS: Final = re.compile(r"[\s-]+")


def new_secret() -> str:
    """A new random TOTP secret: 160 bits as base32 text (what authenticator apps take)."""
    return pyotp.random_base32(length=32)


def normalise_code(code: str) -> str:
    """CODE without spaces or dashes, upper-cased (codes are read off a screen or paper)."""
    return _SEPARATORS.sub("", code).upper()


def matching_step(secret: str, code: str, *, now: datetime, after_step: int | None) -> int | None:
    """The time step CODE is valid for at NOW (±1 step), if later than AFTER_STEP, else None."""
    code = normalise_code(code)
    if len(code) != DIGITS or not (code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = int(now.timestamp()) // STEP_SECONDS
    for step in range(current - WINDOW, current + WINDOW + 1):
        if after_step is not None and step <= after_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """The otpauth:// address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_svg(text: str, *, title: str) -> str:
    """TEXT as a QR code in inline SVG markup: no script, no style attribute, no image file."""
    return str(segno.make(text, error="m").svg_inline(scale=4, title=title, border=4))


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """COUNT random recovery codes, shown as XXXX-XXXX-XXXX-XXXX."""
    codes = []
    for _ in range(count):
        raw = base64.b32encode(secrets.token_bytes(_RECOVERY_BYTES)).decode("ascii")
        codes.append("-".join(raw[i : i + 4] for i in range(0, len(raw), 4)))
    return codes


def hash_recovery_code(code: str, *, salt: bytes | None = None) -> str:
    """Salted SHA-256 of a recovery code as 'salt-hex$digest-hex' (see the module docstring)."""
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.sha256(salt + normalise_code(code).encode("ascii", "replace")).hexdigest()
    return f"{salt.hex()}${digest}"


def recovery_code_matches(stored: str, code: str) -> bool:
    """Whether CODE is the recovery code whose hash is STORED."""
    salt_hex, _, _digest = stored.partition("$")
    try:
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    return hmac.compare_digest(hash_recovery_code(code, salt=salt), stored)
