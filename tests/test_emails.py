"""Email wording lives in templates/emails/; typed text never decides where a link goes."""

from __future__ import annotations

import pytest
from jinja2 import DictLoader, UndefinedError

from portal.assets import asset_dir
from portal.services import emails, outbox
from tests import factories


def use_templates(monkeypatch, templates: dict[str, str]) -> None:
    environment = emails.build_environment(DictLoader(templates))
    monkeypatch.setattr(emails, "_environment", lambda: environment)


def test_every_email_template_sets_a_subject() -> None:
    folder = asset_dir("templates") / "emails"
    names = sorted(path.name for path in folder.glob("*.txt"))
    assert names  # the folder is where the services look
    for name in names:
        assert "{% set subject %}" in (folder / name).read_text(encoding="utf-8"), name


def test_the_link_goes_where_the_template_says_and_only_there(session) -> None:
    other = factories.share_link(session, factories.partner(session))
    typed = f"Globex {{{{ link_url }}}} [link 0123] {outbox.LINK_MARK} [[link:{other.id}]]"
    link = factories.share_link(session, factories.partner(session, name=typed))

    email = emails.render("share_link", share_link=link, sender_org=typed)

    assert not isinstance(email.body, str)
    assert [part for part in email.body if part is outbox.LINK] == [outbox.LINK]
    head, _link, tail = email.body
    assert head.endswith("Open this link (no account needed):\n")
    assert tail.startswith("\n\nThe link works until ")
    assert f"asks {typed} (AS2 ID" in head  # typed text stays text, braces and all
    stored = outbox.compose_body(email.body, link.id)
    assert stored.count(outbox.LINK_MARK) == 1  # the typed mark is gone; the template's stays


def test_text_is_not_escaped_and_missing_values_fail_loudly(monkeypatch) -> None:
    template = "{% set subject %}S {{ a }}{% endset %}\n{{ a }}\n"
    use_templates(monkeypatch, {"emails/t.txt": template})

    assert emails.render("t", a="A & B <c>") == emails.Email("S A & B <c>", "A & B <c>\n")
    with pytest.raises(UndefinedError, match="'a' is undefined"):
        emails.render("t")


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("no subject\n", "sets no subject"),
        ("{% set subject %}{{ link_url }}{% endset %}\n{{ link_url }}\n", "link in the subject"),
        ("{% set subject %}S{% endset %}\n{{ link_url }} {{ link_url }}\n", "more than once"),
    ],
)
def test_a_template_that_misplaces_things_is_refused(monkeypatch, template, problem) -> None:
    use_templates(monkeypatch, {"emails/t.txt": template})

    with pytest.raises(ValueError, match=problem):
        emails.render("t")
