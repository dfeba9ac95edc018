"""Partner pages and partner emails in English and German (issue 14, Languages).

"No English left" is checked by comparison: the German text may share with the English
text of the same page or email only the words in ALLOWED (identifiers, formats, zone
names) and what the test put in (names, AS2 IDs, fingerprints).
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from sqlalchemy import select

from portal.domain.languages import TRANSLATIONS_DIR
from portal.extensions import keyring
from portal.models import OutboxMessage
from portal.services import emails, links
from portal.timeutil import utcnow
from tests import factories
from tests.linkhelpers import share
from tests.test_email_html import contexts

GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}
PO = TRANSLATIONS_DIR / "de" / "LC_MESSAGES" / "messages.po"
MO = TRANSLATIONS_DIR / "de" / "LC_MESSAGES" / "messages.mo"
PARTNER_EMAILS = (
    "share_link", "campaign_started", "campaign_request", "campaign_reminder",
    "campaign_request_reminder", "submission_approved", "submission_rejected", "window_proposed",
    "certificate_in_force",
)  # fmt: skip
# The emails only staff receive (English, as staff pages are).
STAFF_EMAILS = ("expiry_digest", "submission_received")
# Words German shares with English that are not English left behind.
ALLOWED = {
    "as2",
    "sha",
    "256",
    "pem",
    "der",
    "cer",
    "p7c",
    "pkcs",
    "p7b",
    "crt",
    "key",
    "p12",
    "pfx",
    "ics",
    "json",
    "etag",
    "if",
    "none",
    "match",
    "utc",
    "curl",
    "send",
    "accept",
    "next_change_at",
    "kib",
    "mailto",
    "english",
    "deutsch",
    "partner",
    "link",
    "status",
    "upload",
    "uploads",
    "portal",
    "cet",
    "cest",
    "co",
    "line",
    "script",
    "alert",
    # The same word in both languages.
    "in",
    "an",
    "all",
    "so",
    "name",
    "text",
    "optional",
    "software",
    "team",
    "europe",
    "berlin",
    "america",
    "new_york",
}


class _Text(HTMLParser):
    """The visible text of a page: no tags, scripts, <code>/<pre> (commands, IDs) or options
    of the zone picker (zone names)."""

    SKIP = {"script", "style", "code", "pre", "datalist"}

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        for name, value in attrs:  # text people read without it being an element's text
            if name in ("aria-label", "title", "placeholder") and value:
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def visible_text(html: str) -> str:
    """The words a reader sees on HTML."""
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


def words(text: str) -> set[str]:
    """The words of TEXT in lower case, numbers and single letters left out."""
    found = {w.lower() for w in re.findall(r"[^\W\d]\w+", text)}
    return {w for w in found if not re.fullmatch(r"[0-9a-f]{2}", w)}  # fingerprints' bytes


def english_left(german: str, english: str, *known: str) -> set[str]:
    """Words of GERMAN that are English: in ENGLISH too and neither allowed nor KNOWN."""
    allowed = ALLOWED | words(" ".join(known))
    return (words(german) & words(english)) - allowed


# The page ------------------------------------------------------------------------------------


def _partner_with_certificate(session):
    identity = factories.identity(session, organisation="Acme Widgets")
    partner = factories.partner(session, identity, name="Globex Trading", timezone="Europe/Berlin")
    certificate = factories.identity_certificate(session, keyring(), identity)
    certificate.activate_at = utcnow() - timedelta(hours=1)
    session.flush()
    shared = share(session, partner)
    session.commit()
    return shared, certificate


def _known(shared, certificate) -> tuple[str, ...]:
    identity = shared.partner.identity
    return (
        shared.partner.name, shared.partner.as2_id, identity.organisation, identity.as2_id,
        certificate.subject, "Europe Berlin", "MEZ MESZ", "portal localhost example",
    )  # fmt: skip


def test_a_german_browser_gets_the_partner_page_in_german_with_no_english_left(
    client, session
) -> None:
    shared, certificate = _partner_with_certificate(session)

    english = client.get(shared.page, headers={"Accept-Language": "en-US"})
    german = client.get(shared.page, headers=GERMAN)

    assert german.status_code == 200
    page = german.get_data(as_text=True)
    assert '<html lang="de">' in page
    assert "Unsere Zertifikate" in page
    assert "AS2-Kennung" in page
    text = visible_text(page)
    left = english_left(
        text, visible_text(english.get_data(as_text=True)), *_known(shared, certificate)
    )
    assert left == set(), left
    # Dates in German form, the UTC time beside them.
    assert re.search(r"\d{1,2}\. \w+ \d{4}, \d\d:\d\d ME(S)?Z \(", text), text
    # The stored language (of the emails) is left alone: staff decide it.
    session.refresh(shared.partner)
    assert shared.partner.language == "en"


def test_english_is_the_default_and_for_unsupported_languages(client, session) -> None:
    shared, _ = _partner_with_certificate(session)
    for header in ({}, {"Accept-Language": "fr-FR,fr;q=0.9"}):
        page = client.get(shared.page, headers=header).get_data(as_text=True)
        assert '<html lang="en">' in page
        assert "1. Our certificates" in page


def test_the_switcher_overrides_the_browser_and_goes_back_to_the_same_page(client, session) -> None:
    shared, _ = _partner_with_certificate(session)
    page = client.get(shared.page, headers=GERMAN).get_data(as_text=True)
    switch = f"{shared.page}/language/en"
    assert f'href="{switch}"' in page  # a plain link: works without JavaScript

    answer = client.get(switch + "?next=https://evil.example/", headers=GERMAN)

    assert answer.status_code == 302
    assert answer.headers["Location"].endswith(shared.page)  # never elsewhere
    cookie = answer.headers["Set-Cookie"]
    assert "portal_lang=en" in cookie
    assert "Path=/s/" in cookie
    assert "HttpOnly" in cookie
    again = client.get(shared.page, headers=GERMAN).get_data(as_text=True)
    assert '<html lang="en">' in again
    assert "1. Our certificates" in again
    client.get(f"{shared.page}/language/de")
    assert "1. Unsere Zertifikate" in client.get(shared.page).get_data(as_text=True)


def test_the_switcher_refuses_a_language_we_do_not_ship(client, session) -> None:
    shared, _ = _partner_with_certificate(session)
    assert client.get(f"{shared.page}/language/xx").status_code == 404
    assert client.get(f"{shared.page}/language/..%2F").status_code == 404


def test_staff_pages_stay_english_whatever_the_browser(client) -> None:
    page = client.get("/login", headers=GERMAN).get_data(as_text=True)
    assert "Unsere" not in page
    assert "Anmelden" not in page


def test_the_unknown_and_expired_link_pages_in_german(client, session) -> None:
    unknown = client.get("/s/not-a-token", headers=GERMAN)
    assert unknown.status_code == 404
    text = visible_text(unknown.get_data(as_text=True))
    assert "Dieser Link funktioniert nicht mehr" in text
    assert "Dieser Link ist ungültig" in text

    shared = share(session, now=utcnow() - timedelta(days=30))
    session.commit()
    expired = client.get(shared.page, headers=GERMAN)
    assert expired.status_code == 410
    assert "Dieser Link ist abgelaufen" in expired.get_data(as_text=True)

    revoked = share(session)
    links.revoke(session, factories.ACTOR, revoked.link, utcnow())
    session.commit()
    gone = client.get(revoked.page, headers=GERMAN).get_data(as_text=True)
    english = client.get(revoked.page).get_data(as_text=True)
    assert "zurückgezogen" in gone
    assert english_left(visible_text(gone), visible_text(english), "portal localhost") == set()


def test_a_refused_form_answers_in_german(client, session) -> None:
    shared, _ = _partner_with_certificate(session)
    page = client.get(shared.page, headers=GERMAN).get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    csrf = token.group(1) if token else ""
    answer = client.post(
        f"{shared.page}/window",
        data={"csrf_token": csrf, "date": "2027-13-45", "time": "10:00", "timezone": "Mars/Base"},
        headers=GERMAN,
    )
    assert answer.status_code == 422
    text = visible_text(answer.get_data(as_text=True))
    assert "Diese Zeitzone kennen wir nicht" in text
    assert "Not a valid" not in text


# Emails --------------------------------------------------------------------------------------


def _email_text(email: emails.Email) -> tuple[str, str, str]:
    def joined(body) -> str:
        return body if isinstance(body, str) else "".join(p for p in body if isinstance(p, str))

    return email.subject, joined(email.body), visible_text(joined(email.html or ""))


def test_every_email_is_a_partner_or_a_staff_email() -> None:
    assert {kind.removesuffix("_ours") for kind in contexts()} == {*PARTNER_EMAILS, *STAFF_EMAILS}


def test_every_partner_email_in_german_has_no_english_left() -> None:
    checked = set()
    for kind, context in contexts().items():
        name = kind.removesuffix("_ours")  # the same email about one of our certificates
        if name not in PARTNER_EMAILS:
            continue
        checked.add(name)
        english = emails.render(name, **context)
        german = emails.render(name, language="de", **context)
        assert german.subject != english.subject, kind
        for de_part, en_part in zip(_email_text(german), _email_text(english), strict=True):
            assert de_part.strip(), kind
            left = english_left(de_part, en_part, "Evil Globex Acme second line")
            assert left == set(), (kind, left, de_part)
        assert "Guten Tag," in german.body[0] if not isinstance(german.body, str) else True
    assert checked == set(PARTNER_EMAILS)


def test_no_email_names_a_usage_by_its_code() -> None:
    for kind, context in contexts().items():
        for language in ("en", "de"):
            email = emails.render(kind.removesuffix("_ours"), language=language, **context)
            for part in _email_text(email):
                # "both sides" is English; "the both certificate" is a code in a sentence.
                assert not re.search(r"\b(?:the|a|for) both\b", part), (kind, language, part)


def test_the_in_force_notice_reaches_each_partner_in_its_language(session) -> None:
    identity = factories.identity(session, organisation="Acme Corp")
    certificate = factories.identity_certificate(session, keyring(), identity)
    certificate.activate_at = utcnow()
    berlin = factories.partner(
        session, identity, name="Berlin Trading", as2_id="BERLIN", language="de",
        contact_emails=["edi@berlin.example"],
    )  # fmt: skip
    tokyo = factories.partner(
        session, identity, name="Tokyo Goods", as2_id="TOKYO",
        contact_emails=["edi@tokyo.example", "ops@tokyo.example"],
    )  # fmt: skip
    session.flush()

    queued = emails.queue_by_language(
        session, "certificate_in_force", [berlin, tokyo], dedupe_key="notice:1",
        certificate=certificate,
    )  # fmt: skip

    mails = {tuple(m.recipients): m for m in queued}
    assert set(mails) == {("edi@berlin.example",), ("edi@tokyo.example", "ops@tokyo.example")}
    german, english = (
        mails[("edi@berlin.example",)],
        mails[("edi@tokyo.example", "ops@tokyo.example")],
    )
    assert german.subject.startswith("AS2-Zertifikat jetzt in Kraft: Acme Corp")
    assert "ist seit" in german.body
    assert english.subject.startswith("AS2 certificate now in force: Acme Corp")
    # Queued again (a retried run): nothing new.
    emails.queue_by_language(
        session, "certificate_in_force", [berlin, tokyo], dedupe_key="notice:1",
        certificate=certificate,
    )  # fmt: skip
    assert len(session.scalars(select(OutboxMessage)).all()) == 2


def test_german_campaign_email_dates_read_german_with_utc_beside() -> None:
    context = contexts()["campaign_started"]
    from datetime import UTC, datetime

    german = emails.render(
        "campaign_started", language="de", activate_at=datetime(2027, 3, 1, 9, 30, tzinfo=UTC),
        **context,
    )  # fmt: skip
    body = (
        german.body
        if isinstance(german.body, str)
        else "".join(p for p in german.body if isinstance(p, str))
    )
    assert "1. März 2027, 10:30 MEZ (Europe/Berlin), das ist 1. März 2027, 09:30 UTC" in body
    assert "am 1. März 2027, 09:30 UTC" in german.subject


def test_an_unknown_language_falls_back_to_english() -> None:
    context = contexts()["share_link"]
    assert emails.render("share_link", language="xx", **context) == emails.render(
        "share_link", **context
    )


def test_a_german_partner_receives_its_share_link_in_german(session) -> None:
    partner = factories.partner(session, name="Globex Trading", language="de")
    shared = share(session, partner)
    links.email_link(session, factories.ACTOR, shared.link, sender_org="Acme Widgets")
    session.commit()
    message = session.scalars(select(OutboxMessage)).one()
    assert "Austausch von AS2-Zertifikaten" in message.subject
    assert "Guten Tag," in message.body
    assert "Bitte leiten Sie ihn nicht weiter." in message.body
    assert message.html_body is not None
    assert "Öffnen Sie diesen Link" in message.html_body


def test_a_german_partner_receives_the_campaign_email_in_german(runner, session) -> None:
    identity = factories.identity(session, organisation="Acme Corp")
    certificate = factories.identity_certificate(session, keyring(), identity)
    factories.partner(
        session, identity, name="Berlin Trading", as2_id="BERLIN", language="de",
        contact_emails=["edi@berlin.example"], timezone="Europe/Berlin",
    )  # fmt: skip
    factories.partner(
        session, identity, name="Tokyo Goods", as2_id="TOKYO",
        contact_emails=["edi@tokyo.example"], timezone="Asia/Tokyo",
    )  # fmt: skip
    session.commit()
    at = (utcnow() + timedelta(days=10)).replace(second=0, microsecond=0)
    result = runner.invoke(
        args=[
            "campaign", "start", "--identity", identity.as2_id, "--certificate",
            certificate.sha256, "--activate-at", at.strftime("%Y-%m-%dT%H:%MZ"),
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    mails = {m.recipients[0]: m for m in session.scalars(select(OutboxMessage))}
    berlin, tokyo = mails["edi@berlin.example"], mails["edi@tokyo.example"]
    assert "wechselt sein AS2-Zertifikat am" in berlin.subject
    assert "Der Wechsel erfolgt am" in berlin.body
    assert "changes its AS2 certificate on" in tokyo.subject  # English as before


# The language of a partner -------------------------------------------------------------------


def test_portal_partner_add_takes_a_language(runner, session) -> None:
    identity = factories.identity(session, as2_id="ACMEPROD")
    session.commit()
    result = runner.invoke(
        args=[
            "partner", "add", "--name", "Globex", "--as2-id", "GLOBEX", "--identity",
            identity.as2_id, "--email", "edi@globex.example", "--language", "de",
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    from portal.models import Partner

    partner = session.scalars(select(Partner).where(Partner.as2_id == "GLOBEX")).one()
    assert partner.language == "de"
    refused = runner.invoke(
        args=[
            "partner", "add", "--name", "Initech", "--as2-id", "INITECH", "--identity",
            identity.as2_id, "--email", "edi@initech.example", "--language", "fr",
        ]
    )  # fmt: skip
    assert refused.exit_code != 0


# The catalog ---------------------------------------------------------------------------------


def test_every_german_message_is_translated_and_none_is_fuzzy() -> None:
    catalog = read_po(PO.open("rb"))
    for message in catalog:
        if not message.id:
            continue
        assert not message.fuzzy, message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), message.id


def test_the_compiled_catalog_is_the_po_file_compiled() -> None:
    def plain(value):
        return tuple(value) if isinstance(value, list | tuple) else value

    source = {plain(m.id): plain(m.string) for m in read_po(PO.open("rb")) if m.id}
    compiled = {plain(m.id): plain(m.string) for m in read_mo(MO.open("rb")) if m.id}
    assert compiled == source


def test_the_catalog_holds_every_message_the_code_and_templates_mark(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    pot = tmp_path / "messages.pot"
    subprocess.run(  # noqa: S603  (our own interpreter, fixed arguments)
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
         "-k", "_l", "-k", "lazy_gettext", "--no-location", "-o", str(pot), "."],
        cwd=root, check=True, capture_output=True,
    )  # fmt: skip
    marked = {m.id for m in read_po(pot.open("rb")) if m.id}
    translated = {m.id for m in read_po(PO.open("rb")) if m.id}
    assert marked - translated == set()


# Check messages ------------------------------------------------------------------------------


def _domain_messages() -> set[str]:
    """The findings' messages the domain writes without values (literal strings)."""
    import ast

    found = set()
    for path in (Path(__file__).resolve().parent.parent / "portal/domain/certs").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) in ("error", "warning", "info")
                and len(node.args) == 2
                and isinstance(node.args[1], ast.Constant)
            ):
                found.add(node.args[1].value)
    return found


def test_the_translated_check_messages_are_the_domains_wording(app) -> None:
    from portal.web.partner.findings import STATIC_FINDINGS

    listed = {message._args[0] for message in STATIC_FINDINGS}
    assert listed == _domain_messages()


def test_a_check_message_reads_german_on_a_german_page(app) -> None:
    from portal.domain.certs import Finding
    from portal.domain.certs.model import Code, Severity
    from portal.web.partner.i18n import finding_text

    message = next(m for m in _domain_messages() if m.startswith("This is the certificate we"))
    finding = Finding(Code.SAME_AS_CURRENT, Severity.WARNING, message)
    with app.test_request_context("/s/x", headers=GERMAN):
        assert finding_text(finding).startswith("Dieses Zertifikat liegt uns bereits vor")
    with app.test_request_context("/s/x"):
        assert finding_text(finding) == message


def test_staff_set_a_partners_language_on_the_partner_form(operator_client, session) -> None:
    from portal.models import Partner

    identity = factories.identity(session)
    session.commit()
    form = {
        "name": "Globex", "as2_id": "GLOBEXDE", "identity_id": str(identity.id),
        "contact_emails": "edi@globex.example", "timezone": "Europe/Berlin", "language": "de",
    }  # fmt: skip
    assert operator_client.post("/partners/new", data=form).status_code == 302
    partner = session.scalars(select(Partner).where(Partner.as2_id == "GLOBEXDE")).one()
    assert partner.language == "de"
    page = operator_client.get(f"/partners/{partner.id}").get_data(as_text=True)
    assert "Deutsch" in page
    edit = operator_client.get(f"/partners/{partner.id}/edit").get_data(as_text=True)
    assert '<option selected value="de">' in edit
    refused = operator_client.post(f"/partners/{partner.id}/edit", data={**form, "language": "fr"})
    assert refused.status_code == 422
    assert (
        operator_client.post(
            f"/partners/{partner.id}/edit", data={**form, "language": "en"}
        ).status_code
        == 302
    )
    session.expire_all()
    assert session.get(Partner, partner.id).language == "en"
