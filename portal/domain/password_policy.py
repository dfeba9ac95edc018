"""Which passwords staff may choose: long enough, not common, not an obvious pattern.

The common list (common_passwords.txt beside this file) holds the 10,000 most used
passwords. A password is refused when it is on the list, or when what is left after
stripping digits and symbols from both ends (and undoing l33t spelling) is on it
("Password2024!", "dr@gon123456"); when it is one character, two characters or a short
unit repeated; when it is mostly a sequence or a keyboard walk ("abcdefghijkl",
"1qaz2wsx3edc"); or when it contains the account's email name or domain.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

MIN_LENGTH = 12
MAX_LENGTH = 1024

# Straight runs a typist's fingers or the alphabet make; a walk is a run along one.
_WALKS = (
    "abcdefghijklmnopqrstuvwxyz",
    "01234567890",
    "1234567890-=",
    "qwertyuiop[]\\",
    "asdfghjkl;'",
    "zxcvbnm,./",
    "qwertzuiopü",
    "azertyuiop",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/",
    "qazwsxedcrfvtgbyhnujmikolp",
    "!@#$%^&*()_+",
)
_WALK_TEXT = "|".join(_WALKS + tuple(walk[::-1] for walk in _WALKS))
_LEET = str.maketrans({"@": "a", "4": "a", "0": "o", "1": "i", "!": "i", "3": "e", "$": "s"})
_LEET_MORE = str.maketrans({"5": "s", "7": "t", "1": "l", "|": "l", "+": "t", "9": "g"})
_EDGES = re.compile(r"^[\W\d_]+|[\W\d_]+$")
# Fewer characters than this outside walks and sequences: the password is a pattern.
_MIN_FREE = 4
_MIN_WALK = 3
# Context words shorter than this are too common to refuse inside a password.
_MIN_CONTEXT = 4

COMMON = (
    "This password is too common: it is on the list of passwords attackers try first. "
    "Choose a longer phrase of unrelated words."
)
PATTERN = (
    "This password is a pattern (repeated characters, a sequence or a keyboard walk). "
    "Choose a longer phrase of unrelated words."
)
PERSONAL = "Do not use your email address or its parts in your password."


@cache
def common_passwords() -> frozenset[str]:
    """The bundled list of common passwords, lower-cased (read once)."""
    text = resources.files("portal.domain").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def password_problem(password: str, *, email: str | None = None) -> str | None:
    """Why PASSWORD may not be chosen (by the account EMAIL), or None when it may."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    lowered = password.lower()
    if _is_common(lowered):
        return COMMON
    if _is_repetition(lowered) or _is_walk(lowered):
        return PATTERN
    if email and _contains_context(lowered, email):
        return PERSONAL
    return None


def _is_common(lowered: str) -> bool:
    common = common_passwords()
    squeezed = re.sub(r"\s+", "", lowered)
    core = _EDGES.sub("", squeezed)
    candidates = {lowered, squeezed, core}
    for table in (_LEET, _LEET_MORE):
        spelled = squeezed.translate(table)
        candidates |= {spelled, _EDGES.sub("", spelled), core.translate(table)}
    return any(len(candidate) >= 3 and candidate in common for candidate in candidates)


def _is_repetition(lowered: str) -> bool:
    """Two distinct characters or fewer, or a unit shorter than the minimum repeated."""
    if len(set(lowered)) <= 2:
        return True
    for size in range(1, MIN_LENGTH):
        if len(lowered) % size == 0 and lowered[:size] * (len(lowered) // size) == lowered:
            return True
    return False


def _is_walk(lowered: str) -> bool:
    """Fewer than _MIN_FREE characters outside runs along a keyboard row or a sequence."""
    free = 0
    index = 0
    while index < len(lowered):
        length = _MIN_WALK
        while index + length <= len(lowered) and lowered[index : index + length] in _WALK_TEXT:
            length += 1
        run = length - 1
        if run >= _MIN_WALK:
            index += run
        else:
            free += 1
            index += 1
    return free < _MIN_FREE


def _contains_context(lowered: str, email: str) -> bool:
    local, _, domain = email.lower().partition("@")
    words = {local, domain.split(".")[0], *re.split(r"[._+\-]", local)}
    compact = re.sub(r"[\W_]+", "", lowered)
    return any(len(word) >= _MIN_CONTEXT and (word in lowered or word in compact) for word in words)
