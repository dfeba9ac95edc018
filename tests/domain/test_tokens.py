"""Link tokens, durations and redaction (no app)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal.domain.tokens import LinkSigner, new_link_id, parse_duration, redact_tokens

KEY_A = "a" * 40
KEY_B = "b" * 40


def test_round_trip_and_opaque_ids() -> None:
    signer = LinkSigner([KEY_A])
    link_id = new_link_id()
    token = signer.sign(link_id)
    assert token.startswith(link_id + ".")
    assert signer.unsign(token) == link_id
    assert new_link_id() != link_id


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # last char (spare bits too)
        lambda t: t[:-10] + ("A" if t[-10] != "A" else "B") + t[-9:],  # signature changed
        lambda t: ("y" if t[0] == "x" else "x") + t[1:],  # id changed
        lambda t: t.split(".")[0],  # no signature
        lambda t: t + "." + t,
        lambda t: "",
        lambda t: "../../etc/passwd",
        lambda t: t * 20,  # absurdly long
    ],
)
def test_forged_tokens_are_refused(mangle) -> None:
    signer = LinkSigner([KEY_A])
    assert signer.unsign(mangle(signer.sign(new_link_id()))) is None


def test_another_key_is_refused_and_rotation_keeps_old_tokens() -> None:
    old = LinkSigner([KEY_A])
    token = old.sign("abcdefghijklmnopqrstuv")
    assert LinkSigner([KEY_B]).unsign(token) is None
    rotated = LinkSigner([KEY_A, KEY_B])  # newest last signs; both verify
    assert rotated.unsign(token) == "abcdefghijklmnopqrstuv"
    assert rotated.sign("abcdefghijklmnopqrstuv") != token
    assert LinkSigner([KEY_B]).unsign(rotated.sign("abcdefghijklmnopqrstuv")) is not None


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="32 characters"):
        LinkSigner(["short"])
    with pytest.raises(ValueError, match="32 characters"):
        LinkSigner([])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),
        ("14d", timedelta(days=14)),
        (" 2d ", timedelta(days=2)),
        ("365d", timedelta(days=365)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "14", "d", "1w", "-1d", "0s", "366d", "1.5h", "99999999d"])
def test_bad_durations_say_why(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|some time|at most"):
        parse_duration(text)


def test_redaction_keeps_the_shape_of_paths() -> None:
    line = 'GET /s/AbC_d-ef.SiGn4tUrE/certificates/ab12.pem HTTP/1.1" 200'
    assert redact_tokens(line) == 'GET /s/[redacted]/certificates/ab12.pem HTTP/1.1" 200'
    assert redact_tokens("/partners/3") == "/partners/3"
