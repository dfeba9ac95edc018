"""Certificate aliases: safe for every keystore, stable, distinct across generations."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from portal.domain.aliases import certificate_alias

OLD = "a1" * 32
NEW = "b2" * 32


def test_alias_is_the_safe_as2_id_and_the_fingerprints_start() -> None:
    assert certificate_alias("ACME Corp/AS2", OLD) == "acme-corp-as2-a1a1a1a1a1a1a1a1"


def test_two_generations_of_one_owner_never_share_an_alias() -> None:
    assert certificate_alias("ACME", OLD) != certificate_alias("ACME", NEW)


def test_the_same_certificate_always_gets_the_same_alias() -> None:
    assert certificate_alias("ACME", OLD.upper()) == certificate_alias("ACME", OLD)


@given(st.text(max_size=200))
def test_any_as2_id_gives_a_short_keystore_safe_alias(as2_id: str) -> None:
    alias = certificate_alias(as2_id, NEW)
    assert re.fullmatch(r"[a-z0-9._-]{1,48}-[0-9a-f]{16}", alias)
