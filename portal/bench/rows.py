"""Row builders for one trading partner's history: certificates, links, submissions, audit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from portal.bench.certs import CertMaker, certificate_fields
from portal.domain.certs import inspect
from portal.domain.tokens import new_link_id
from portal.domain.vocab import SubmissionStatus, Usage, WindowProposer, WindowStatus

AUDIT_PER_PARTNER = 100
TIMEZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC", "Europe/London")
WORDS = ("Logistics", "Retail", "Foods", "Pharma", "Motors", "Textiles", "Chemicals", "Steel")
_AUDIT_ACTIONS = (
    ("link.opened", "Partner opened link {link}"),
    ("certificate.downloaded", "Partner downloaded our certificate (pem) via link {link}"),
    ("link.created", "Created link {link} (download, upload)"),
    ("partner.updated", "Updated partner {as2_id}: contacts"),
    ("window.proposed", "Proposed the change window via link {link}"),
)


def partner_row(i: int, identity_id: int) -> dict[str, Any]:
    """Partner number I of IDENTITY_ID (names sort like real ones, AS2 IDs are unique)."""
    return {
        "name": f"{WORDS[i % len(WORDS)]} Partner {i:06d}",
        "as2_id": f"BENCHP{i:06d}",
        "identity_id": identity_id,
        "environment": "production",
        "timezone": TIMEZONES[i % len(TIMEZONES)],
    }


def contact_rows(i: int, partner_id: int) -> list[dict[str, Any]]:
    """One or two contact addresses."""
    emails = [f"edi{i}@partner{i}.example"]
    if i % 3 == 0:
        emails.append(f"it{i}@partner{i}.example")
    return [{"partner_id": partner_id, "email": email} for email in emails]


def certificate_rows(
    maker: CertMaker, i: int, partner_id: int, admin_id: int, now: datetime
) -> list[dict[str, Any]]:
    """The previous (expired) certificate, the one in force, for every tenth a scheduled one."""
    cn = f"BENCHP{i:06d}"
    expiry = now + timedelta(days=20 + (i * 37) % 700)
    plan = [
        (now - timedelta(days=800), now - timedelta(days=30), now - timedelta(days=790)),
        (now - timedelta(days=60), expiry, now - timedelta(days=50)),
    ]
    if i % 10 == 0:
        plan.append(
            (now - timedelta(days=1), now + timedelta(days=730), now + timedelta(days=10 + i % 50))
        )
    rows = []
    for not_before, not_after, activate_at in plan:
        der = maker.der(cn, "Bench Partner", not_before=not_before, not_after=not_after, slot=i)
        rows.append(
            {
                **certificate_fields(der),
                "partner_id": partner_id,
                "usage": Usage.BOTH.value,
                "source": "uploaded",
                "activate_at": activate_at,
                "approved_by_id": admin_id,
                "approved_at": activate_at - timedelta(days=2),
                "created_at": not_before,
            }
        )
    return rows


def link_row(partner_id: int, admin_id: int, now: datetime) -> dict[str, Any]:
    """An open link for downloading and uploading (three uploads)."""
    return {
        "id": new_link_id(),
        "partner_id": partner_id,
        "can_download": True,
        "can_upload": True,
        "expires_at": now + timedelta(days=14),
        "max_uploads": 3,
        "uploads_used": 0,
        "opened_count": 0,
        "download_count": 0,
        "created_by_id": admin_id,
        "created_at": now - timedelta(days=1),
    }


def submission_rows(
    maker: CertMaker,
    i: int,
    partner_id: int,
    link_id: str,
    current: dict[str, Any],
    current_id: int,
    admin_id: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """Every fifth partner: the approved upload of its current certificate; every twentieth
    (offset 3): a received upload waiting in the approval queue."""
    rows = []
    if i % 5 == 0:
        rows.append(
            _submission(
                current["der"],
                partner_id,
                link_id,
                now,
                {
                    "status": SubmissionStatus.APPROVED.value,
                    "certificate_id": current_id,
                    "reviewed_by_id": admin_id,
                    "reviewed_at": now - timedelta(days=52),
                },
            )
        )
    if i % 20 == 3:
        der = maker.der(
            f"BENCHP{i:06d}",
            "Bench Partner",
            not_before=now - timedelta(days=1),
            not_after=now + timedelta(days=400),
            slot=1,
        )
        rows.append(_submission(der, partner_id, link_id, now, {}))
    return rows


def _submission(
    der: bytes, partner_id: int, link_id: str, now: datetime, fields: dict[str, Any]
) -> dict[str, Any]:
    fields_ = certificate_fields(der)
    report = inspect(der, usage=Usage.BOTH, now=now).to_dict()
    row = {
        "partner_id": partner_id,
        "link_id": link_id,
        "usage": Usage.BOTH.value,
        "der": der,
        "chain_pem": "",
        "sha256": fields_["sha256"],
        "report": report,
        "status": SubmissionStatus.RECEIVED.value,
        "created_at": now - timedelta(days=1),
        "contact_name": "EDI team",
        "contact_email": "edi@partner.example",
        "certificate_id": None,
        "reviewed_by_id": None,
        "reviewed_at": None,
    }
    row.update(fields)
    return row


def window_row(i: int, partner_id: int, link_id: str, now: datetime) -> dict[str, Any]:
    """A change window the partner proposed (every third one accepted)."""
    return {
        "partner_id": partner_id,
        "link_id": link_id,
        "starts_at": now + timedelta(days=5 + i % 40, hours=i % 24),
        "timezone": TIMEZONES[i % len(TIMEZONES)],
        "proposed_by": WindowProposer.PARTNER.value,
        "status": (WindowStatus.ACCEPTED if i % 3 == 0 else WindowStatus.PROPOSED).value,
        "contact_name": "EDI team",
        "contact_email": f"edi{i}@partner{i}.example",
        "created_at": now - timedelta(days=2),
    }


def audit_rows(
    i: int, partner_id: int, link_id: str, admin: tuple[int, str], now: datetime
) -> list[dict[str, Any]]:
    """AUDIT_PER_PARTNER events about the partner, spread over the last two years."""
    as2_id = f"BENCHP{i:06d}"
    rows = []
    for n in range(AUDIT_PER_PARTNER):
        action, summary = _AUDIT_ACTIONS[n % len(_AUDIT_ACTIONS)]
        by_staff = action in ("link.created", "partner.updated")
        rows.append(
            {
                "occurred_at": now
                - timedelta(days=730)
                + timedelta(minutes=n * 10_000 + i % 9_000),
                "actor_id": admin[0] if by_staff else None,
                "actor": admin[1] if by_staff else f"partner {as2_id} (link {link_id[:8]})",
                "action": action,
                "object_type": "partner",
                "object_id": str(partner_id),
                "summary": summary.format(link=link_id, as2_id=as2_id),
                "details": {"link_id": link_id},
                "client_address": "192.0.2.10",
                "user_agent": "Mozilla/5.0 (bench)",
            }
        )
    return rows
