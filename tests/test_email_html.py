"""Every email has an HTML alternative from its own template, framed by one shared layout with
inline styles only; the link comes from PORTAL_BASE_URL at delivery, typed text is escaped."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from types import SimpleNamespace as Obj
from typing import Any, cast

import pytest
from jinja2 import TemplateNotFound

from portal import jobs
from portal.assets import asset_dir
from portal.services import emails, outbox
from portal.services.mailer import Mailer, SmtpSettings
from portal.timeutil import utcnow
from tests import factories

FOLDER = asset_dir("templates") / "emails"
EVIL = 'Evil <script>alert(1)</script> & "Co"'
ESCAPED = "Evil &lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;Co&#34;"
BASE = "https://portal.example"
WHEN = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)


def names() -> list[str]:
    return sorted(path.stem for path in FOLDER.glob("*.txt"))


def contexts() -> dict[str, dict[str, Any]]:
    """Values for every email, a person's text (names, a note, a reason) hostile everywhere."""
    identity = Obj(organisation=EVIL, as2_id="ACME")
    partner = Obj(name=EVIL, as2_id="GLOBEX", timezone="Europe/Berlin", identity=identity)
    certificate = Obj(usage="both", sha256="ab" * 32, not_after=WHEN, activate_at=WHEN,
                      partner=partner, identity=identity)  # fmt: skip
    ours = Obj(usage="signing", sha256="cd" * 32, not_after=WHEN, activate_at=WHEN,
               partner=None, identity=identity)  # fmt: skip
    submission = Obj(partner=partner, usage="encryption", sha256="ef" * 32, id=7)
    campaign = {"identity": identity, "certificate": certificate, "partner": partner,
                "local_time": "2027-03-01 10:30 CET", "utc_time": "2027-03-01 09:30",
                "expires_at": WHEN}  # fmt: skip
    return {
        "share_link": {
            "share_link": Obj(partner=partner, can_download=True, can_upload=True, expires_at=WHEN),
            "sender_org": EVIL,
        },
        "campaign_started": {**campaign, "request_upload": True, "message": f"{EVIL}\nline 2"},
        "campaign_reminder": {**campaign, "days": 3, "awaiting_ack": True, "awaiting_upload": True},
        "campaign_request": {
            **campaign,
            "certificate": None,
            "expiring_before": WHEN,
            "message": f"{EVIL}\nline 2",
        },
        "campaign_request_reminder": {
            **campaign,
            "certificate": None,
            "days": 3,
            "awaiting_ack": False,
            "awaiting_upload": True,
        },
        "certificate_in_force": {"certificate": certificate},
        "certificate_in_force_ours": {"certificate": ours},
        "expiry_digest": {
            "day": "2027-01-01",
            "count": 1,
            "buckets": [(7, [Obj(owner_name=EVIL, usages="signing", not_after=WHEN, days_left=5)])],
        },
        "submission_approved": {"submission": submission, "certificate": certificate},
        "submission_received": {"submission": submission},
        "submission_rejected": {"submission": submission, "reason": f"{EVIL}\nsecond line"},
        "window_proposed": {"partner": partner, "window": Obj(starts_at=WHEN)},
    }


def test_every_email_has_an_html_template_and_the_layout_loads_nothing_from_outside() -> None:
    html = {path.stem for path in FOLDER.glob("*.html")}
    assert "_layout" in html
    assert set(names()) == html - {"_layout"}
    for path in FOLDER.glob("*.html"):
        source = path.read_text()
        for outside in ("<link", "<img", "<script", "<style", "src=", "url(", "@import", "http"):
            assert outside not in source.lower(), f"{path.name} has {outside}"
        if path.stem != "_layout":
            assert '{% extends "emails/_layout.html" %}' in source, path.name


def test_every_context_here_covers_every_email() -> None:
    assert {name.removesuffix("_ours") for name in contexts()} == set(names())


def test_each_email_delivered_has_an_html_part_with_its_link_and_typed_text_escaped(
    session, smtp_server
) -> None:
    handler, port = smtp_server
    link = factories.share_link(session, factories.partner(session))
    with_link = set()
    for kind, context in contexts().items():
        name = kind.removesuffix("_ours")
        rendered = emails.render(name, **context)
        places_link = not isinstance(rendered.body, str)
        if places_link:
            with_link.add(kind)
        emails.queue(
            session, name, recipients=[f"{kind}@globex.example"], dedupe_key=kind,
            link_id=link.id if places_link else None, **context,
        )  # fmt: skip
    session.commit()
    assert with_link == {
        "share_link", "campaign_started", "campaign_reminder", "campaign_request",
        "campaign_request_reminder",
    }  # fmt: skip
    url = f"{BASE}/s/{link.id}.signed-token"
    mailer = Mailer(
        SmtpSettings(host="127.0.0.1", port=port, tls="none", user=None, password=None,
                     sender="portal@acme.example", timeout=5)
    )  # fmt: skip
    try:
        delivery = jobs.deliver_outbox(session, mailer.send, lambda _id: url, now=utcnow())
    finally:
        mailer.close()

    assert (delivery.sent, delivery.failed) == (len(contexts()), 0)
    by_kind = {e.rcpt_tos[0].split("@")[0]: parsed(e) for e in handler.messages}
    assert set(by_kind) == set(contexts())
    for kind, message in by_kind.items():
        text, html = parts(message)
        assert "<script" not in html, kind
        if kind != "certificate_in_force_ours":  # names no one's typed text
            assert ESCAPED in html, kind  # the typed name, note or reason: escaped
            assert EVIL in text, kind  # and as typed in the plain text
        assert "max-width: 640px" in html, kind  # the shared layout
        assert outbox.LINK_MARK not in html + text
        links = re.findall(r"<a [^>]*>", html)
        if kind in with_link:
            assert links == [f'<a href="{url}">'], kind
            assert url in text, kind
        else:
            assert links == [], kind
            assert "http" not in html.lower(), kind
    rejected = parts(by_kind["submission_rejected"])[1]
    assert "white-space: pre-wrap" in rejected  # the reason's lines are kept


def test_an_html_template_without_the_layout_is_still_escaped(monkeypatch) -> None:
    from jinja2 import DictLoader

    environment = emails.build_environment(
        DictLoader({
            "emails/_layout.html": "<div>{% block content %}{% endblock %}</div>",
            "emails/x.txt": "{% set subject %}S{% endset %}{{ a }}\n",
            "emails/x.html": '{% extends "emails/_layout.html" %}{% block content %}{{ a }}'
                             "{% endblock %}",
        })
    )  # fmt: skip
    monkeypatch.setattr(emails, "_environment", lambda: environment)
    assert emails.render("x", a=EVIL).html == f"<div>{ESCAPED}</div>"


def test_the_layout_is_no_email_of_its_own() -> None:
    with pytest.raises(TemplateNotFound):
        emails.render("_layout")


def parsed(envelope: Any) -> EmailMessage:
    return cast(EmailMessage, message_from_bytes(envelope.content, policy=policy.default))


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()
