"""Staff manage share links: create, see (or not) their URLs, revoke, email; and the
`portal link create|revoke` commands.
"""

from __future__ import annotations

import html
import re
import secrets
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.domain.certs import colon_fingerprint
from portal.extensions import keyring
from portal.models import Partner, ShareLink
from portal.services import links, outbox
from portal.timeutil import utcnow
from tests import factories
from tests.linkhelpers import (
    audit_events,
    outbox_for,
    share,
)

# ---------------------------------------------------------------------------
# Staff pages
# ---------------------------------------------------------------------------


def link_form(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "link-purposes": ["download", "upload"],
        "link-expires": "14d",
        "link-max_uploads": "3",
    }
    data.update({f"link-{name}": value for name, value in fields.items()})
    return data


def links_of(session: Session, partner: Partner) -> list[ShareLink]:
    return list(session.scalars(select(ShareLink).where(ShareLink.partner_id == partner.id)))


@pytest.mark.parametrize(
    ("purposes", "can_download", "can_upload", "max_uploads"),
    [
        (["download", "upload"], True, True, 2),
        (["download"], True, False, 0),
        (["upload"], False, True, 2),
    ],
)
def test_operator_creates_a_link_and_sees_its_url(
    app, session, make_user, login, purposes, can_download, can_upload, max_uploads
) -> None:
    operator = make_user("operator")
    staff = login(operator)
    partner = factories.partner(session)
    before = utcnow()

    response = staff.post(
        f"/partners/{partner.id}/links",
        data=link_form(purposes=purposes, expires="14d", max_uploads="2"),
    )

    assert response.status_code == 302
    assert response.location.endswith(f"/partners/{partner.id}#links")
    (link,) = links_of(session, partner)
    assert (link.can_download, link.can_upload) == (can_download, can_upload)
    assert link.max_uploads == max_uploads
    assert before + timedelta(days=14) <= link.expires_at <= utcnow() + timedelta(days=14)
    assert link.created_by_id == operator.id
    (event,) = audit_events(session, "link.created", partner=partner)
    assert event.details["link_id"] == link.id
    assert event.actor == operator.email

    page = staff.get(response.location).get_data(as_text=True)
    assert f"Link {link.id} created" in page
    assert f"<code>{link.id}</code>" in page
    urls = re.findall(r'value="(https?://[^"]+/s/[^"]+)"', page)
    assert len(urls) == 1
    assert urls[0].startswith(app.config["BASE_URL"] + "/s/")
    partner_page = staff.get(urls[0].removeprefix(app.config["BASE_URL"]))
    assert partner_page.status_code == 200
    assert partner.name in partner_page.get_data(as_text=True)


BAD_LINK_FORMS = [
    ({"expires": "forever"}, "is not a duration"),
    ({"expires": "400d"}, "at most 365 days"),
    ({"expires": ""}, "Please fill in this field"),
    ({"purposes": []}, "Choose at least one purpose"),
    ({"purposes": ["everything"]}, "Choose only among the options offered"),
    ({"purposes": ["upload"], "max_uploads": "0"}, "at least one upload"),
    ({"max_uploads": "21"}, "from 0 to 20"),
]


def test_bad_link_form_is_422_with_a_message(operator_client, session) -> None:
    partner = factories.partner(session)

    for fields, says in BAD_LINK_FORMS:
        response = operator_client.post(f"/partners/{partner.id}/links", data=link_form(**fields))

        assert response.status_code == 422, fields
        assert says in html.unescape(response.get_data(as_text=True)), fields
    assert links_of(session, partner) == []
    assert audit_events(session, "link.created", partner=partner) == []


def test_viewer_sees_links_but_not_their_urls(viewer_client, session) -> None:
    shared = share(session)

    page = viewer_client.get(f"/partners/{shared.partner.id}").get_data(as_text=True)

    assert f"<code>{shared.link.id}</code>" in page
    assert "/s/" not in page
    assert shared.token not in page
    assert "Create link" not in page
    assert "Revoke" not in page
    response = viewer_client.post(f"/partners/{shared.partner.id}/links", data=link_form())
    assert response.status_code == 403
    revoke = viewer_client.post(f"/partners/{shared.partner.id}/links/{shared.link.id}/revoke")
    assert revoke.status_code == 403
    assert links_of(session, shared.partner) == [shared.link]


def test_revoking_a_link_stops_it_once(operator_client, client, session) -> None:
    shared = share(session)
    path = f"/partners/{shared.partner.id}/links/{shared.link.id}/revoke"

    response = operator_client.post(path, follow_redirects=True)

    assert response.status_code == 200
    assert f"Link {shared.link.id} revoked" in response.get_data(as_text=True)
    assert len(audit_events(session, "link.revoked", shared.link)) == 1
    assert client.get(shared.page).status_code == 410

    again = operator_client.post(path, follow_redirects=True)

    assert again.status_code == 200
    page = again.get_data(as_text=True)
    assert "flash-error" in page
    assert "already revoked" in page
    assert len(audit_events(session, "link.revoked", shared.link)) == 1


def test_emailing_a_link_queues_a_placeholder_never_the_token(operator_client, session) -> None:
    partner = factories.partner(session, contact_emails=["a@globex.example", "b@globex.example"])
    shared = share(session, partner)

    response = operator_client.post(
        f"/partners/{partner.id}/links/{shared.link.id}/email", follow_redirects=True
    )

    assert response.status_code == 200
    assert "queued" in response.get_data(as_text=True)
    (message,) = outbox_for(session, shared.link)
    assert message.recipients == ["a@globex.example", "b@globex.example"]
    assert message.link_id == shared.link.id
    assert message.body.count(outbox.LINK_MARK) == 1  # where the URL goes when sent
    assert shared.token not in message.body
    assert shared.token not in message.subject
    assert "/s/" not in message.body
    assert len(audit_events(session, "link.emailed", shared.link)) == 1


def test_emailing_a_revoked_link_is_refused(operator_client, session) -> None:
    shared = share(session)
    links.revoke(session, factories.ACTOR, shared.link, utcnow())

    response = operator_client.post(
        f"/partners/{shared.partner.id}/links/{shared.link.id}/email", follow_redirects=True
    )

    assert "no longer works" in response.get_data(as_text=True)
    assert outbox_for(session, shared.link) == []


def test_link_actions_check_the_link_belongs_to_the_partner(operator_client, session) -> None:
    shared = share(session)
    other = factories.partner(session)

    for link_id in (shared.link.id, "x" * 22):
        for action in ("revoke", "email"):
            response = operator_client.post(f"/partners/{other.id}/links/{link_id}/{action}")
            assert response.status_code == 404, (link_id, action)

    session.refresh(shared.link)
    assert shared.link.revoked_at is None
    assert outbox_for(session, shared.link) == []


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def test_cli_link_create_prints_id_then_a_working_url(app, runner, client, session) -> None:
    partner = factories.partner(session)
    ours = factories.identity_certificate(session, keyring(), partner.identity)
    before = utcnow()

    result = runner.invoke(
        args=[
            "link",
            "create",
            "--partner",
            partner.as2_id,
            "--purpose",
            "download",
            "--expires",
            "2h",
        ]
    )

    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    (link,) = links_of(session, partner)
    assert lines[0] == link.id
    url = lines[-1]
    assert url.startswith(app.config["BASE_URL"] + "/s/")
    assert (link.can_download, link.can_upload, link.max_uploads) == (True, False, 0)
    assert before + timedelta(hours=2) <= link.expires_at <= utcnow() + timedelta(hours=2)
    page = client.get(url.removeprefix(app.config["BASE_URL"]))
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert colon_fingerprint(ours.sha256) in text
    assert 'id="upload"' not in text


CLI_MISUSE = [
    ["--expires", "3x"],
    ["--expires", "0m"],
    ["--expires", "366d"],
    ["--purpose", "foo"],
    ["--purpose", ","],
    ["--purpose", "download,foo"],
    ["--max-uploads", "21"],
]


def test_cli_link_create_misuse_exits_2(runner, session) -> None:
    partner = factories.partner(session)
    session.commit()

    for args in CLI_MISUSE:
        result = runner.invoke(args=["link", "create", "--partner", partner.as2_id, *args])
        assert result.exit_code == 2, (args, result.output)
        assert "--expires" in result.output or "--purpose" in result.output or "21" in result.output

    assert links_of(session, partner) == []


def test_cli_link_create_for_an_unknown_partner_exits_1(runner, session) -> None:
    count = select(func.count()).select_from(ShareLink)
    before = session.scalar(count)

    result = runner.invoke(args=["link", "create", "--partner", "NOBODY-AT-ALL"])

    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert "NOBODY-AT-ALL" in result.output
    assert session.scalar(count) == before


def test_cli_link_revoke_then_again_then_unknown(runner, client, session, monkeypatch) -> None:
    # An id that cannot be mistaken for an option (see the test below for one that can).
    monkeypatch.setattr(links, "new_link_id", lambda: "L" + secrets.token_urlsafe(16))
    shared = share(session)
    session.commit()  # the refusals below roll back the command's session, which is this one

    first = runner.invoke(args=["link", "revoke", shared.link.id])

    assert first.exit_code == 0, first.output
    assert f"Revoked link {shared.link.id}" in first.output
    assert client.get(shared.page).status_code == 410
    assert len(audit_events(session, "link.revoked", shared.link)) == 1

    second = runner.invoke(args=["link", "revoke", shared.link.id])
    assert second.exit_code == 1
    assert "already revoked" in second.output
    assert len(second.output.strip().splitlines()) == 1
    assert len(audit_events(session, "link.revoked", shared.link)) == 1

    unknown = runner.invoke(args=["link", "revoke", "no-such-link-id-here"])
    assert unknown.exit_code == 1
    assert len(unknown.output.strip().splitlines()) == 1


def test_a_link_id_never_starts_with_a_dash_so_the_cli_can_revoke_it(
    runner, client, session, monkeypatch
) -> None:
    """Regression: one id in 64 started with '-', which `link revoke ID` read as an option."""
    partner = factories.partner(session)
    real = secrets.token_urlsafe
    calls: list[int | None] = []

    def dash_first(nbytes: int | None = None) -> str:
        """The first random id drawn starts with '-', as one in 64 does."""
        calls.append(nbytes)
        return "-" + real(nbytes)[1:] if len(calls) == 1 else real(nbytes)

    with monkeypatch.context() as patch:
        patch.setattr(secrets, "token_urlsafe", dash_first)
        shared = share(session, partner)
    session.commit()

    result = runner.invoke(args=["link", "revoke", shared.link.id])

    assert result.exit_code == 0, result.output
    assert client.get(shared.page).status_code == 410
