"""Fuzzing inspect: whatever bytes a partner sends, a Report comes back."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.domain.certs import MAX_INPUT_BYTES, Code, Report, Usage, inspect
from tests import certfactory as cf

# Mutated input makes cryptography warn (BER fallback, odd serials); that is expected here.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def seeds() -> tuple[bytes, ...]:
    """Valid uploads to mutate: PEM with a chain, DER, and PKCS#7 in DER and PEM."""
    ca, ca_key = cf.make_ca(now=NOW)
    leaf, _ = cf.make_cert(now=NOW, issuer=(ca, ca_key))
    encoding = serialization.Encoding
    return (
        cf.pem(leaf, ca),
        cf.der(leaf),
        pkcs7.serialize_certificates([leaf, ca], encoding.DER),
        pkcs7.serialize_certificates([leaf], encoding.PEM),
    )


def assert_report(data: bytes) -> None:
    """inspect answers with a JSON-safe Report and never hits its internal-error net."""
    report = inspect(data, usage=Usage.BOTH, now=NOW)
    assert isinstance(report, Report)
    assert Code.INTERNAL_ERROR not in report.codes
    json.dumps(report.to_dict())


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid upload with a few bit flips, truncations, insertions or deletions."""
    data = bytearray(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        if not data:
            break
        position = draw(st.integers(min_value=0, max_value=len(data) - 1))
        operation = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "byte"]))
        if operation == "flip":
            data[position] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif operation == "truncate":
            del data[position:]
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif operation == "delete":
            del data[position : position + draw(st.integers(min_value=1, max_value=16))]
        else:
            data[position] = draw(st.integers(min_value=0, max_value=255))
    return bytes(data)


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_give_a_report(data: bytes) -> None:
    assert_report(data)


@FUZZ
@given(mutated())
def test_mutated_certificates_give_a_report(data: bytes) -> None:
    assert_report(data)


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=1, max_size=64), st.integers(min_value=0, max_value=2048))
def test_der_prefixes_with_long_lengths(tail: bytes, length: int) -> None:
    # DER headers that announce more content than there is, or the BER indefinite form.
    header = b"\x30\x82" + length.to_bytes(2, "big")
    assert_report(header + tail)
    assert_report(b"\x30\x80" + tail)
    assert_report((header + tail) * (MAX_INPUT_BYTES // (len(header + tail) * 64) + 1))
