"""The dashboard and the expiring list cost as much at 3 partners as at 63.

Every part of the dashboard is an aggregate or a bounded list, so its cost does not grow
with the data: the same request over a small data set and over a twenty times larger one
(certificates in every expiry bucket, with and without replacements, links, submissions,
acknowledgements, audit events) must send the same number of SQL statements and load the
no more ORM objects than its bounded lists hold, and no statement may read certificate
bytes (DER).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event, insert

from portal.extensions import keyring
from portal.models import Acknowledgement, Certificate
from portal.models.base import Base
from portal.services import audit
from portal.timeutil import utcnow
from tests import certfactory, factories
from tests.querycount import counting, describe

DAY = timedelta(days=1)
# Expiry distances: expired, within 1, 7, 14, 30, 90 days, and far away.
DISTANCES = (-2 * DAY, DAY / 2, 5 * DAY, 10 * DAY, 20 * DAY, 60 * DAY, 200 * DAY)
_serial = itertools.count(10_000)
# ORM objects one request may load: the signed-in user and session, the latest 10 events,
# the 10 drafts shown with their contacts. Not more at 63 partners or at 10,000.
MOST_OBJECTS = 2 + 10 + 2 * 10


def seed(session, identity, partners: int, *, submissions: int, events: int) -> None:
    """PARTNERS partners, certificates at every distance (every third replaced), every
    fourth with an upload link, SUBMISSIONS received uploads, EVENTS audit events."""
    now = utcnow()
    der = certfactory.der(certfactory.make_cert(now=now, days=5)[0])
    made = [factories.partner(session, identity) for _ in range(partners)]
    rows = []
    for i, partner in enumerate(made):
        rows.append(certificate(partner.id, der, now, expires=DISTANCES[i % len(DISTANCES)]))
        if i % 3 == 0:  # a replacement scheduled in a week
            rows.append(certificate(partner.id, der, now, expires=400 * DAY, activate=7 * DAY))
    session.execute(insert(Certificate), rows)
    for i, partner in enumerate(made):
        if i % 4 == 1:
            link = factories.share_link(session, partner)
            if submissions > 0:
                factories.submission(session, link)
                submissions -= 1
        if i % 2 == 0:
            session.add(Acknowledgement(partner_id=partner.id, created_at=now))
    # Through the chain, as every writer of audit events must (it assigns their ids).
    audit.chain_rows(
        session,
        [
            {"occurred_at": now, "actor": "seed", "action": "partner.updated",
             "object_type": "partner", "object_id": str(made[0].id), "summary": f"Event {n}",
             "details": {}}
            for n in range(events)
        ],
    )  # fmt: skip
    session.flush()


def certificate(partner_id, der, now, *, expires, activate=-30 * DAY):
    n = next(_serial)
    return {
        "partner_id": partner_id, "usage": "both", "der": der, "chain_pem": "",
        "sha256": f"{n:064x}", "sha1": f"{n:040x}", "subject": "CN=X", "issuer": "CN=X",
        "serial": str(n), "not_before": now - 400 * DAY, "not_after": now + expires,
        "key_type": "RSA", "source": "uploaded", "activate_at": now + activate,
        "created_at": now - 400 * DAY,
    }  # fmt: skip


@contextmanager
def loading() -> Iterator[Counter[str]]:
    """Count the ORM objects loaded inside the block, per model."""
    loaded: Counter[str] = Counter()

    def record(target: Any, context: Any) -> None:
        loaded[type(target).__name__] += 1

    event.listen(Base, "load", record, propagate=True)
    try:
        yield loaded
    finally:
        event.remove(Base, "load", record)


def cost_per_page(client, connection) -> dict[str, tuple[list[str], Counter[str]]]:
    """The statements and loaded objects of the dashboard, the expiring list, a page after."""
    first = client.get("/expiring?within=90").get_data(as_text=True)
    cursor = re.search(r'href="/expiring\?after=([^&"]+)', first)
    position = cursor.group(1) if cursor else "20200101T000000.000000~1~signing"
    found = {}
    for path in (
        "/",
        "/expiring?within=90",
        "/expiring?within=30&owner=partner&replacement=none",
        f"/expiring?within=90&after={position}",
    ):
        with counting(connection) as statements, loading() as loaded:
            response = client.get(path)
        assert response.status_code == 200, path
        found[path.split("&after=")[0] + (" (next page)" if "after=" in path else "")] = (
            statements,
            loaded,
        )
    return found


def test_statements_do_not_grow_with_data(app, session, connection, make_user, login) -> None:
    ours = factories.identity(session)
    mine = factories.identity_certificate(session, keyring(), ours, days=700)
    mine.activate_at = utcnow() + 10 * DAY  # upcoming: partners are asked to acknowledge
    seed(session, ours, 3, submissions=1, events=5)
    session.commit()
    client = login(make_user("viewer"))
    client.get("/")  # warm: the first request loads what every later one has cached
    small = cost_per_page(client, connection)

    seed(session, ours, 60, submissions=12, events=300)
    session.commit()
    large = cost_per_page(client, connection)

    page = client.get("/").get_data(as_text=True)
    assert "more within 90 days" in page  # the larger data set overflows the bounded list
    for path, (statements, loaded) in small.items():
        more, more_loaded = large[path]
        assert len(more) == len(statements), (
            f"{path}: {len(statements)} statements at 3 partners, {len(more)} at 63\n"
            f"--- small:\n{describe(statements)}\n--- large:\n{describe(more)}"
        )
        # Bounded lists may fill up (drafts: 1 at 3 partners, 10 at 63), never beyond a list.
        assert "Certificate" not in more_loaded, f"{path} loads certificates: {more_loaded}"
        assert sum(more_loaded.values()) <= MOST_OBJECTS, f"{path}: {loaded} -> {more_loaded}"
        reads_der = [s for s in more if re.search(r"certificates(_\d+)?\.der\b", s)]
        assert not reads_der, f"{path} reads certificate bytes:\n{describe(reads_der)}"
