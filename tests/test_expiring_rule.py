"""The SQL form of the in-force rule (portal.services.expiring) agrees with portal.domain.inforce.

Random certificate sets (ties in activate_at and approval, withdrawn, undated, "both" and
single-usage, expired, scheduled) for identities and partners: the rows the database finds
expiring, their buckets and their replacements must be exactly what the domain rule finds.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from portal.domain.reports import DIGEST_BUCKETS, CertRow, expiring_soon
from portal.models import Certificate
from portal.services import expiring
from portal.timeutil import utcnow
from tests import factories

DAY = timedelta(days=1)


def _moment(rng: random.Random, now, spread: int):
    # Few distinct values, so that ties in activate_at and approval are common.
    return now + timedelta(days=rng.choice(range(-spread, spread + 1, 5)))


def seed_random(session, rng: random.Random, now, *, owners: int = 12, per_owner: int = 6):
    identities = [factories.identity(session) for _ in range(2)]
    partners = [factories.partner(session, rng.choice(identities)) for _ in range(owners)]
    owned = [("identity_id", i.id) for i in identities] + [("partner_id", p.id) for p in partners]
    values, n = [], 0
    for column, owner_id in owned:
        for _ in range(rng.randint(1, per_owner)):
            n += 1
            activate = None if rng.random() < 0.15 else _moment(rng, now, 60)
            approved = None
            if activate is not None and rng.random() < 0.6:
                approved = rng.choice([activate, _moment(rng, now, 60)])
            not_after = now + timedelta(days=rng.randint(-20, 200), hours=rng.choice([0, 1, 12]))
            values.append(
                {
                    column: owner_id, "usage": rng.choice(["signing", "encryption", "both"]),
                    "der": b"x", "chain_pem": "", "sha256": f"{n:064x}", "sha1": f"{n:040x}",
                    "subject": "CN=X", "issuer": "CN=X", "serial": str(n),
                    "not_before": now - 900 * DAY, "not_after": not_after, "key_type": "RSA",
                    "source": "uploaded", "activate_at": activate, "approved_at": approved,
                    "withdrawn_at": now - DAY if rng.random() < 0.1 else None,
                    "created_at": now - 900 * DAY,
                }
            )  # fmt: skip
    session.execute(insert(Certificate), values)
    session.flush()


def domain_rows(session) -> list[CertRow]:
    certificates = session.scalars(select(Certificate).order_by(Certificate.id))
    return [
        CertRow(
            id=c.id,
            owner=f"identity:{c.identity_id}" if c.identity_id else f"partner:{c.partner_id}",
            owner_name="",
            usage=c.usage,
            not_after=c.not_after,
            activate_at=c.activate_at,
            withdrawn_at=c.withdrawn_at,
            approved_at=c.approved_at,
        )
        for c in certificates
    ]


def summary(found, *, buckets=True):
    return sorted(
        (e.certificate.id, e.usage, e.bucket if buckets else None, e.days_left,
         e.replacement and e.replacement.id)
        for e in found
    )  # fmt: skip


@pytest.mark.parametrize("seed", range(8))
def test_sql_rule_matches_the_domain_rule(session, seed) -> None:
    rng = random.Random(seed)
    now = utcnow().replace(microsecond=0)
    seed_random(session, rng, now)
    reference = expiring_soon(
        domain_rows(session), now=now, overlap=7 * DAY, buckets=DIGEST_BUCKETS
    )
    found = expiring.expiring(session, now=now, buckets=DIGEST_BUCKETS)
    assert summary(found) == summary(reference)
    assert found, "the data set should have something expiring"
    # The counts agree with the rows, and the keyset pages walk every row exactly once.
    counted = expiring.counts(session, now=now, limits=DIGEST_BUCKETS)
    assert sum(counted.values()) == len(found)
    assert counted.get((0, False), 0) + counted.get((0, True), 0) == len(
        [e for e in found if e.days_left < 0]
    )
    walked, after = [], None
    while True:
        page = expiring.page(session, now=now, where=expiring.Filter(90), per_page=3, after=after)
        walked.extend(page.rows)
        if page.next_cursor is None:
            break
        after = expiring.Cursor.decode(page.next_cursor.encode())
    assert summary(walked, buckets=False) == summary(found, buckets=False)
    order = [(e.certificate.not_after, e.certificate.id, e.usage != "signing") for e in walked]
    assert order == sorted(order)


def test_filters_by_owner_and_replacement(session) -> None:
    rng = random.Random(99)
    now = utcnow().replace(microsecond=0)
    seed_random(session, rng, now, owners=20)
    every = expiring.listed(session, now=now, where=expiring.Filter(90), limit=None)
    partners = expiring.listed(
        session, now=now, where=expiring.Filter(90, "partner", "none"), limit=None
    )
    assert summary(partners) == summary(
        e for e in every if e.certificate.owner.startswith("partner:") and e.replacement is None
    )
    expired = expiring.listed(session, now=now, where=expiring.Filter(0), limit=None)
    assert summary(expired, buckets=False) == summary(
        (e for e in every if e.days_left < 0), buckets=False
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "x",
        "20261130T120000.000000~1~both",
        "20261130T120000~1~signing",
        "1~2~3",
        "20261399T120000.000000~1~signing",
    ],
)
def test_a_bad_cursor_is_refused(text) -> None:
    with pytest.raises(ValueError, match="list position"):
        expiring.Cursor.decode(text)
