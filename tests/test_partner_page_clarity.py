"""The partner page at first sight (issue 14, "Partner page clarity"): the steps with their
state and the current one marked, fingerprints to copy and read aloud, a finished state
that thanks and summarises, refused forms that land on their errors, and a footer that
never offers a placeholder address. The states themselves are decided in
portal.domain.partner_progress (tests/domain/test_partner_progress.py); these tests check
the page shows them.
"""

from __future__ import annotations

import re
from datetime import timedelta

from flask import Flask
from sqlalchemy.orm import Session

from portal.domain.certs import colon_fingerprint
from portal.domain.partner_progress import read_aloud
from portal.extensions import keyring
from portal.models import Certificate, ChangeWindow, Submission
from portal.services import acknowledgements, links, windows
from portal.timeutil import format_in_zone, utcnow
from tests import certfactory, factories
from tests.conftest import reconfigure
from tests.linkhelpers import Shared, browser_form, partner_cert, share
from tests.schedulehelpers import receive
from tests.test_languages import GERMAN, english_left, visible_text

ZONE = "Europe/Berlin"
STEP = re.compile(
    r'<li class="step step-(?P<state>\w+)"(?P<current> aria-current="step")?>\s*'
    r'<a href="#(?P<key>\w+)">(?P<name>[^<]*)</a>\s*'
    r'<span class="step-state">(?P<label>.*?)</span>\s*'
    r'<span class="step-next">(?P<next>[^<]*)</span>',
    re.S,
)


def steps(page: str) -> list[tuple[str, str]]:
    """(section, state) of each step the page lists, in order; '*' marks aria-current."""
    return [(m["key"], m["state"] + ("*" if m["current"] else "")) for m in STEP.finditer(page)]


def step_label(page: str, key: str) -> str:
    """The state a step says in words, without marks or tags."""
    (found,) = [m["label"] for m in STEP.finditer(page) if m["key"] == key]
    return re.sub(r"<[^>]+>|[✓→]", "", found).strip()


def _with_our_certificate(session: Session, **link_options: object) -> tuple[Shared, Certificate]:
    identity = factories.identity(session, organisation="Acme Widgets")
    partner = factories.partner(session, identity, name="Globex Trading", timezone=ZONE)
    ours = factories.identity_certificate(session, keyring(), identity)
    ours.activate_at = utcnow() + timedelta(days=10)
    session.flush()
    return share(session, partner, **link_options), ours


def _downloaded(session: Session, shared: Shared) -> None:
    shared.link.download_count = 1
    session.flush()


def _staff_window(session: Session, shared: Shared) -> ChangeWindow:
    return windows.propose_window_as_staff(
        session, factories.ACTOR, shared.partner, starts_at=utcnow() + timedelta(days=20),
        timezone=ZONE, now=utcnow(),
    )  # fmt: skip


def _partner_window(session: Session, shared: Shared) -> ChangeWindow:
    return windows.propose_window(
        session, factories.ACTOR, shared.link, starts_at=utcnow() + timedelta(days=21),
        timezone=ZONE, contact_name=None, contact_email=None, now=utcnow(),
    )  # fmt: skip


def _acknowledge(session: Session, shared: Shared, certificate: Certificate | None) -> None:
    acknowledgements.acknowledge(
        session, factories.ACTOR, shared.link, certificate=certificate, installed_on=None,
        contact_name=None, now=utcnow(),
    )  # fmt: skip


def _finished(session: Session) -> tuple[Shared, Certificate, Submission, ChangeWindow]:
    """A link on which the partner did everything: downloaded, sent, agreed, confirmed."""
    shared, ours = _with_our_certificate(session)
    _downloaded(session, shared)
    submission = receive(session, shared.link)
    window = _staff_window(session, shared)
    windows.accept_window(session, factories.ACTOR, window, by_partner=True, now=utcnow())
    _acknowledge(session, shared, ours)
    session.commit()
    return shared, ours, submission, window


def _page(client, shared: Shared, **headers: str) -> str:
    response = client.get(shared.page, headers=headers)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _tucked(page: str, section: str, action: str) -> bool:
    """Whether the form posting to ACTION sits in a closed <details> of SECTION."""
    body = page[page.index(f'<section id="{section}"') :]
    body = body[: body.index("</section>")]
    form_at = body.index(f'action="{action}"')
    opened = body.rfind('<details class="another">', 0, form_at)
    return opened != -1 and body.find("</details>", opened) > form_at


# ---------------------------------------------------------------------------
# Steps and their states
# ---------------------------------------------------------------------------


def test_a_fresh_page_lists_the_four_steps_with_the_first_current(client, session) -> None:
    shared, _ = _with_our_certificate(session)
    session.commit()

    page = _page(client, shared)

    assert steps(page) == [
        ("ours", "current*"), ("upload", "todo"), ("window", "todo"), ("installed", "todo"),
    ]  # fmt: skip
    assert page.count('aria-current="step"') == 1
    assert step_label(page, "ours") == "do this now"
    assert step_label(page, "window") == "to do"
    # What happens after each step, in one sentence each.
    nexts = [m["next"] for m in STEP.finditer(page)]
    assert "we check it at once; then a person reviews it and you get an email" in nexts[1].lower()
    assert all(sentence.strip() for sentence in nexts)
    assert "Please complete the steps below by" in page
    assert 'id="summary"' not in page
    assert '<section id="ours" class="step-section is-current">' in page
    # The upload form invites the upload: not tucked away.
    assert not _tucked(page, "upload", f"{shared.page}/upload")
    # The section ids the steps link to are kept.
    for key in ("ours", "upload", "window", "installed"):
        assert f'<section id="{key}"' in page


def test_only_the_steps_the_link_asks_for(client, session) -> None:
    shared, _ = _with_our_certificate(session, can_download=False)
    session.commit()
    page = _page(client, shared)
    assert steps(page) == [("upload", "current*"), ("window", "todo")]
    assert '<section id="installed"' not in page
    # The headings count as the list does: 1 and 2, not 2 and 3.
    headings = re.findall(r"<h2>(\d+)\. ([^<]+)</h2>", page)
    assert headings == [("1", "Your certificate"), ("2", "The change window")]


def test_after_the_download_the_upload_is_current(client, session) -> None:
    shared, _ = _with_our_certificate(session)
    _downloaded(session, shared)
    session.commit()
    page = _page(client, shared)
    assert steps(page)[:2] == [("ours", "done"), ("upload", "current*")]
    assert step_label(page, "ours") == "done"


def test_uploaded_and_waiting_says_so_first_and_tucks_the_form_away(client, session) -> None:
    shared, _ = _with_our_certificate(session)
    _downloaded(session, shared)
    receive(session, shared.link)
    session.commit()

    page = _page(client, shared)

    assert steps(page)[1:3] == [("upload", "done"), ("window", "current*")]
    assert step_label(page, "upload") == "sent, waiting for review"
    section = page[page.index('<section id="upload"') :]
    waiting = section.index("A person reviews it now")
    assert waiting < section.index("Need to send another certificate?")
    assert _tucked(page, "upload", f"{shared.page}/upload")
    # Still there for a second certificate: the same form, fields and button.
    fields = browser_form(page, f"{shared.page}/upload")
    assert {"pasted", "usage", "contact_name"} <= set(fields)
    assert "Check the certificate" in section


def test_a_rejected_certificate_makes_the_upload_current_again_with_the_reason(
    client, session
) -> None:
    shared, _ = _with_our_certificate(session)
    _downloaded(session, shared)
    submission = receive(session, shared.link)
    submission.status = "rejected"
    submission.rejection_reason = "The CN must be GLOBEXAS2."
    session.commit()

    page = _page(client, shared)

    assert steps(page)[1] == ("upload", "current*")
    assert step_label(page, "upload") == "do this now: send another certificate"
    assert (
        "We could not accept the certificate you sent: The CN must be GLOBEXAS2. "
        "Please send another one." in page
    )
    assert not _tucked(page, "upload", f"{shared.page}/upload")


def test_an_approval_from_an_earlier_exchange_does_not_do_this_links_upload(
    client, session
) -> None:
    shared, _ = _with_our_certificate(session)
    earlier = receive(session, shared.link)
    earlier.status = "approved"
    earlier.created_at = shared.link.created_at - timedelta(days=300)
    session.commit()
    page = _page(client, shared)
    assert ("upload", "todo") in steps(page)
    assert not _tucked(page, "upload", f"{shared.page}/upload")


def test_a_window_we_proposed_is_theirs_to_accept(client, session) -> None:
    shared, _ = _with_our_certificate(session)
    _downloaded(session, shared)
    receive(session, shared.link)
    window = _staff_window(session, shared)
    session.commit()

    page = _page(client, shared)

    assert steps(page)[2] == ("window", "current*")
    assert step_label(page, "window") == "do this now: accept our time or propose another"
    assert f"We propose: <strong>{format_in_zone(window.starts_at, ZONE)}</strong>" in page
    accept = f"{shared.page}/window/{window.id}/accept"
    assert f'formaction="{accept}#window"' in page
    assert not _tucked(page, "window", f"{shared.page}/window")  # or propose another


def test_a_window_they_proposed_waits_on_us(client, session) -> None:
    shared, ours = _with_our_certificate(session)
    _downloaded(session, shared)
    receive(session, shared.link)
    window = _partner_window(session, shared)
    _acknowledge(session, shared, ours)
    session.commit()

    page = _page(client, shared)

    assert steps(page) == [
        ("ours", "done"), ("upload", "done"), ("window", "waiting"), ("installed", "done"),
    ]  # fmt: skip
    assert 'aria-current="step"' not in page
    assert step_label(page, "window") == "proposed, waiting for our answer"
    assert "You have done your part. We will confirm the time you proposed" in page
    assert f"You proposed <strong>{format_in_zone(window.starts_at, ZONE)}</strong>" in page
    assert _tucked(page, "window", f"{shared.page}/window")
    assert 'id="summary"' not in page  # not finished: we have not agreed yet


# ---------------------------------------------------------------------------
# Finished
# ---------------------------------------------------------------------------


def test_finished_leads_with_thanks_and_what_was_agreed(client, session) -> None:
    shared, ours, submission, window = _finished(session)

    page = _page(client, shared)

    assert steps(page) == [
        ("ours", "done"), ("upload", "done"), ("window", "done"), ("installed", "done"),
    ]  # fmt: skip
    summary_at = page.index('id="summary"')
    assert summary_at < page.index('<ol class="steps"') < page.index('<section id="ours"')
    summary = page[summary_at : page.index("</section>", summary_at)]
    assert "Thank you: everything is done" in summary
    assert format_in_zone(window.starts_at, ZONE) in summary  # their zone, UTC beside
    assert "UTC)" in summary
    assert colon_fingerprint(ours.sha256) in summary
    assert read_aloud(ours.sha256) in summary
    assert colon_fingerprint(submission.sha256) in summary
    assert "received, waiting for review" in summary
    assert "Please complete the steps below by" not in page
    # Nothing offers itself as if nothing had happened.
    assert _tucked(page, "upload", f"{shared.page}/upload")
    assert _tucked(page, "installed", f"{shared.page}/acknowledge")
    assert "Need to send another certificate?" in page
    assert "Installed it again? Confirm once more" in page


def test_finished_with_an_approved_certificate_and_an_upload_only_link(client, session) -> None:
    shared, _ = _with_our_certificate(session, can_download=False)
    submission = receive(session, shared.link)
    submission.status = "approved"
    window = _partner_window(session, shared)
    windows.accept_window(session, factories.ACTOR, window, by_partner=False, now=utcnow())
    session.commit()

    page = _page(client, shared)

    assert steps(page) == [("upload", "done"), ("window", "done")]
    summary = page[page.index('id="summary"') :]
    summary = summary[: summary.index("</section>")]
    assert "approved" in summary
    assert "Our certificate" not in summary  # the link offered none
    assert step_label(page, "upload") == "approved"


def test_an_acknowledgement_of_an_older_certificate_asks_again(client, session) -> None:
    shared, _ = _with_our_certificate(session)
    older = factories.identity_certificate(session, keyring(), shared.partner.identity)
    older.activate_at = utcnow() - timedelta(days=1)
    session.flush()
    _acknowledge(session, shared, older)
    session.commit()

    page = _page(client, shared)

    assert ("installed", "todo") in steps(page)
    assert "You confirmed on" in page
    assert "We have a newer certificate for you since then" in page
    assert not _tucked(page, "installed", f"{shared.page}/acknowledge")


# ---------------------------------------------------------------------------
# Fingerprints
# ---------------------------------------------------------------------------


def test_each_fingerprint_has_a_hidden_copy_button_and_a_read_aloud_form(client, session) -> None:
    shared, ours = _with_our_certificate(session)
    session.commit()

    page = _page(client, shared)

    for value, element in (
        (ours.sha256, f"fp-ours-{ours.id}-sha256"),
        (ours.sha1, f"fp-ours-{ours.id}-sha1"),
    ):
        assert (
            f'<span class="fp-full" id="{element}"><code>{colon_fingerprint(value)}</code>' in page
        )
        button = re.search(rf'<button [^>]*data-copy-from="{element}"[^>]*>([^<]*)</button>', page)
        assert button is not None, element
        assert " hidden" in button.group(0)  # shown by static/partner.js only
        assert 'type="button"' in button.group(0)  # never submits a form
        assert button.group(1) == "Copy"
        assert f'<code class="fp-short">{read_aloud(value)}</code>' in page
    # The script is a static file of our own; no inline script anywhere.
    assert '<script src="/static/partner.js" defer></script>' in page
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert client.get("/static/partner.js").status_code == 200
    css = page.index("/static/partner.css")
    assert page.index("/static/portal.css") < css


# ---------------------------------------------------------------------------
# Refused forms land on their errors
# ---------------------------------------------------------------------------


def test_every_submit_button_posts_to_its_own_section(client, session) -> None:
    shared, _ = _with_our_certificate(session)
    window = _staff_window(session, shared)
    session.commit()
    page = _page(client, shared)
    for action, section in (
        ("upload", "upload"), ("window", "window"), (f"window/{window.id}/accept", "window"),
        ("acknowledge", "installed"),
    ):  # fmt: skip
        assert f'formaction="{shared.page}/{action}#{section}"' in page, action


def test_a_refused_upload_shows_its_error_summary_where_the_page_lands(client, session) -> None:
    shared, _ = _with_our_certificate(session)
    session.commit()
    data = browser_form(_page(client, shared), f"{shared.page}/upload")

    answer = client.post(f"{shared.page}/upload", data=data)  # no file, nothing pasted

    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    summary = re.search(r'<div class="error-summary" id="upload-errors"[^>]*>', page)
    assert summary is not None
    assert 'tabindex="-1"' in summary.group(0)
    assert "data-focus-on-load" in summary.group(0)
    assert '<a href="#certificate">' in page  # the summary points at the field
    upload = page.index('<section id="upload"')
    assert upload < summary.start() < page.index('<section id="window"')
    assert not _tucked(page, "upload", f"{shared.page}/upload")


def test_a_refused_upload_after_one_was_received_shows_the_form_open(client, session) -> None:
    shared, _ = _with_our_certificate(session)
    receive(session, shared.link)
    session.commit()
    data = browser_form(_page(client, shared), f"{shared.page}/upload")
    page = client.post(f"{shared.page}/upload", data=data).get_data(as_text=True)
    assert 'id="upload-errors"' in page
    assert not _tucked(page, "upload", f"{shared.page}/upload")


def test_a_refused_window_and_acknowledgement_summarise_their_errors(client, session) -> None:
    shared, _ = _with_our_certificate(session)
    session.commit()
    page = _page(client, shared)
    window = browser_form(page, f"{shared.page}/window")
    window.update(date="2027-13-45", time="10:00", timezone="Mars/Base")
    refused = client.post(f"{shared.page}/window", data=window).get_data(as_text=True)
    assert re.search(r'<div class="error-summary" id="window-errors" tabindex="-1"', refused)
    assert '<a href="#timezone">' in refused

    ack = browser_form(page, f"{shared.page}/acknowledge")
    ack.update(installed_on="not a day")
    answer = client.post(f"{shared.page}/acknowledge", data=ack)
    assert answer.status_code == 422
    assert 'id="installed-errors"' in answer.get_data(as_text=True)


def test_a_refused_acceptance_shows_its_error_in_the_window_section(client, session) -> None:
    shared, _ = _with_our_certificate(session)
    window = _partner_window(session, shared)  # theirs: they cannot accept it
    session.commit()

    answer = client.post(f"{shared.page}/window/{window.id}/accept", data={})

    assert answer.status_code == 409
    page = answer.get_data(as_text=True)
    error = re.search(
        r'<p class="flash flash-error" id="page-error" tabindex="-1" data-focus-on-load', page
    )
    assert error is not None
    assert (
        page.index('<section id="window"') < error.start() < page.index('<section id="installed"')
    )


def test_a_refused_upload_of_a_used_up_link_shows_its_error_in_the_upload_section(
    client, session
) -> None:
    shared, _ = _with_our_certificate(session, max_uploads=1)
    session.commit()
    data = browser_form(_page(client, shared), f"{shared.page}/upload")
    receive(session, shared.link)  # the last upload goes while the page is open
    session.commit()
    data["pasted"] = certfactory.pem(partner_cert()).decode()

    answer = client.post(f"{shared.page}/upload", data=data)

    page = answer.get_data(as_text=True)
    assert answer.status_code == 409, page
    error = page.index('id="page-error"')
    assert page.index('<section id="upload"') < error < page.index('<section id="window"')


# ---------------------------------------------------------------------------
# The footer never offers a placeholder address
# ---------------------------------------------------------------------------


def _footer(page: str) -> str:
    return page[page.index('<footer class="partner-foot">') :]


def test_no_contact_configured_and_none_on_the_identity(app: Flask, client, session) -> None:
    reconfigure(app, CONTACT_EMAIL="portal@localhost")
    shared, _ = _with_our_certificate(session)
    session.commit()
    page = _page(client, shared)
    assert "portal@localhost" not in page
    assert "Questions? Reply to the email that brought you this link." in _footer(page)


def test_the_identitys_contact_stands_in_for_an_unconfigured_portal(
    app: Flask, client, session
) -> None:
    reconfigure(app, CONTACT_EMAIL="portal@localhost")
    shared, _ = _with_our_certificate(session)
    shared.partner.identity.contact_email = "edi@acme.example"
    session.commit()
    page = _page(client, shared)
    assert "portal@localhost" not in page
    assert 'Questions? Write to <a href="mailto:edi@acme.example">' in _footer(page)


def test_a_configured_contact_and_the_identitys_are_both_offered(
    app: Flask, client, session
) -> None:
    reconfigure(app, CONTACT_EMAIL="certs@acme.example")
    shared, _ = _with_our_certificate(session)
    shared.partner.identity.contact_email = "edi@acme.example"
    session.commit()
    footer = _footer(_page(client, shared))
    assert 'mailto:certs@acme.example">' in footer
    assert 'mailto:edi@acme.example">' in footer
    shared.partner.identity.contact_email = "edi@example.com"  # a placeholder too
    session.commit()
    footer = _footer(_page(client, shared))
    assert "example.com" not in footer
    assert 'Questions? Write to <a href="mailto:certs@acme.example">' in footer


def test_pages_of_links_that_do_not_work_never_show_the_placeholder(
    app: Flask, client, session
) -> None:
    reconfigure(app, CONTACT_EMAIL="portal@localhost")
    unknown = client.get("/s/not-a-token").get_data(as_text=True)
    assert "portal@localhost" not in unknown
    assert "reply to the email that brought you the link" in unknown

    revoked, _ = _with_our_certificate(session)
    revoked.partner.identity.contact_email = "edi@acme.example"
    links.revoke(session, factories.ACTOR, revoked.link, utcnow())
    session.commit()
    gone = client.get(revoked.page)
    assert gone.status_code == 410
    text = gone.get_data(as_text=True)
    assert "portal@localhost" not in text
    assert "or write to edi@acme.example" in text


# ---------------------------------------------------------------------------
# German
# ---------------------------------------------------------------------------


def test_the_finished_page_in_german_has_no_english_left(client, session) -> None:
    shared, ours, _submission, _window = _finished(session)

    german = _page(client, shared, **GERMAN)
    english = _page(client, shared)

    assert "Vielen Dank: Alles ist erledigt" in german
    assert "Möchten Sie ein weiteres Zertifikat senden?" in german
    assert "Zum Vorlesen:" in german
    assert "Kopieren" in german
    assert "Fragen? Antworten Sie auf die E-Mail" in german
    identity = shared.partner.identity
    known = (
        shared.partner.name, shared.partner.as2_id, identity.organisation, identity.as2_id,
        ours.subject, "Europe Berlin", "MEZ MESZ",
    )  # fmt: skip
    assert english_left(visible_text(german), visible_text(english), *known) == set()


def test_the_step_states_and_a_rejection_read_german(client, session) -> None:
    shared, _ = _with_our_certificate(session)
    _downloaded(session, shared)
    submission = receive(session, shared.link)
    submission.status = "rejected"
    submission.rejection_reason = "Falscher Name."
    session.commit()

    page = _page(client, shared, **GERMAN)

    assert step_label(page, "ours") == "erledigt"
    assert step_label(page, "upload") == "jetzt erledigen: ein anderes Zertifikat senden"
    assert step_label(page, "window") == "offen"
    assert "Wir konnten das von Ihnen gesendete Zertifikat nicht annehmen: Falscher Name." in page
    assert "Wir prüfen es sofort" in page


# ---------------------------------------------------------------------------
# What belongs to this exchange (review findings)
# ---------------------------------------------------------------------------


def _ids(page: str) -> list[str]:
    return re.findall(r'\sid="([^"]+)"', page)


def test_no_id_repeats_on_the_page_in_any_state(client, session) -> None:
    shared, _ours = _with_our_certificate(session)
    session.commit()
    pages = {
        "fresh": _page(client, shared),
        "refused window": client.post(
            f"{shared.page}/window", data={"date": "soon", "contact_email": "nobody"}
        ).get_data(as_text=True),
        "refused acknowledgement": client.post(
            f"{shared.page}/acknowledge", data={"installed_on": "someday"}
        ).get_data(as_text=True),
    }
    for state, page in pages.items():
        ids = _ids(page)
        assert sorted({i for i in ids if ids.count(i) > 1}) == [], state
    # Each refusal's summary links to its own form's field.
    assert 'href="#window_contact_email"' in pages["refused window"]
    assert 'id="window_contact_email"' in pages["refused window"]


def test_a_window_agreed_in_an_earlier_exchange_does_not_do_this_ones_step(client, session) -> None:
    identity = factories.identity(session)
    partner = factories.partner(session, identity, timezone=ZONE)
    year_ago = utcnow() - timedelta(days=400)
    old = windows.propose_window_as_staff(
        session, factories.ACTOR, partner, starts_at=year_ago + timedelta(days=2),
        timezone=ZONE, now=year_ago,
    )  # fmt: skip
    windows.accept_window(session, factories.ACTOR, old, by_partner=True, now=year_ago)
    ours = factories.identity_certificate(session, keyring(), identity)
    ours.activate_at = utcnow() + timedelta(days=10)
    session.flush()
    shared = share(session, partner, can_upload=False)
    _downloaded(session, shared)
    _acknowledge(session, shared, ours)
    session.commit()

    page = _page(client, shared)

    assert dict(steps(page))["window"] == "current*"
    assert 'id="summary"' not in page  # not finished: no thank-you panel
    assert f'action="{shared.page}/window"' in page  # a new time can be proposed


def test_confirming_our_newest_certificate_through_an_earlier_link_counts_as_downloaded(
    client, session
) -> None:
    shared, ours = _with_our_certificate(session)
    earlier = share(session, shared.partner)
    _acknowledge(session, earlier, ours)
    session.commit()

    page = _page(client, shared)  # this link downloaded nothing

    assert dict(steps(page))["ours"] == "done"
    assert dict(steps(page))["installed"] == "done"


def test_a_download_link_with_nothing_of_ours_yet_asks_for_no_download(client, session) -> None:
    shared = share(session)
    session.commit()

    page = _page(client, shared)

    assert [key for key, _state in steps(page)] == ["upload", "window"]
    assert "<h2>Our certificates</h2>" in page
    assert "We have no new certificate for you yet" in page
    assert '<section id="installed"' not in page
