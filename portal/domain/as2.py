"""AS2 identifiers (RFC 4130 section 6.2): rules shared by forms, CLI and services."""

from __future__ import annotations

MAX_AS2_ID_LENGTH = 128


def as2_id_problem(value: str) -> str | None:
    """Return why VALUE is not a usable AS2 ID, or None when it is.

    RFC 4130 allows 1 to 128 printable ASCII characters; we also refuse spaces,
    quotes and backslashes, which would need quoting in AS2-From/AS2-To headers
    and which many AS2 products mishandle.
    """
    if not value:
        return "Enter an AS2 ID."
    if len(value) > MAX_AS2_ID_LENGTH:
        return f"An AS2 ID has at most {MAX_AS2_ID_LENGTH} characters."
    if any(not 0x21 <= ord(char) <= 0x7E or char in '"\\' for char in value):
        return "An AS2 ID uses printable ASCII without spaces, quotes or backslashes."
    return None
