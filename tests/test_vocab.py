"""The enums are the one source of the closed sets: the CHECKs, choices and labels follow them."""

from __future__ import annotations

import re
from enum import StrEnum

import pytest
from sqlalchemy import CheckConstraint

from portal.domain.roles import Role
from portal.domain.vocab import (
    SUBSCRIBABLE_EVENTS,
    USAGES_IN_FORCE,
    Environment,
    OutboxKind,
    SubmissionStatus,
    Usage,
    WebhookEvent,
    WindowProposer,
    WindowStatus,
    usages_served,
    values_of,
)
from portal.models import Base
from portal.web.forms import USAGE_CHOICES, USAGE_LABELS


def _check_values(table: str, name: str) -> set[str]:
    constraints = [
        c
        for c in Base.metadata.tables[table].constraints
        if isinstance(c, CheckConstraint) and c.name == f"ck_{table}_{name}"
    ]
    assert len(constraints) == 1, (table, name)
    sql = str(constraints[0].sqltext)
    match = re.fullmatch(rf"{name} IN \((.*)\)", sql)
    assert match, sql
    return {value.strip().strip("'") for value in match.group(1).split(",")}


@pytest.mark.parametrize(
    ("table", "column", "enum"),
    [
        ("users", "role", Role),
        ("identities", "environment", Environment),
        ("partners", "environment", Environment),
        ("certificates", "usage", Usage),
        ("pending_keys", "usage", Usage),
        ("submissions", "usage", Usage),
        ("submissions", "status", SubmissionStatus),
        ("change_windows", "status", WindowStatus),
        ("change_windows", "proposed_by", WindowProposer),
        ("outbox_messages", "kind", OutboxKind),
        ("webhook_deliveries", "event", WebhookEvent),
    ],
)
def test_check_constraints_hold_exactly_the_enum_values(
    table: str, column: str, enum: type[StrEnum]
) -> None:
    assert _check_values(table, column) == set(values_of(enum))


def test_every_usage_has_a_form_label() -> None:
    assert set(USAGE_LABELS) == set(Usage)
    assert [value for value, _ in USAGE_CHOICES] == [usage.value for usage in USAGE_LABELS]


def test_both_covers_signing_and_encryption_once() -> None:
    assert Usage.BOTH.covers == (Usage.SIGNING, Usage.ENCRYPTION)
    assert Usage.SIGNING.covers == (Usage.SIGNING,)
    assert Usage.ENCRYPTION.covers == (Usage.ENCRYPTION,)
    assert usages_served("both") == ("signing", "encryption")
    assert USAGES_IN_FORCE == ("signing", "encryption")
    with pytest.raises(ValueError, match="nonsense"):
        usages_served("nonsense")


def test_usage_label_filter_reads_both_as_a_sentence(app) -> None:
    usage_label = app.jinja_env.filters["usage_label"]
    assert usage_label("both") == "signing and encryption"
    assert usage_label("signing") == "signing"
    assert usage_label("odd") == "odd"


def test_subscriptions_hold_every_event_but_the_test_one() -> None:
    assert _check_values("webhook_subscriptions", "event") == set(values_of(WebhookEvent)) - {
        WebhookEvent.TEST.value
    }
    assert set(SUBSCRIBABLE_EVENTS) == set(WebhookEvent) - {WebhookEvent.TEST}


# Internal codes in sentences ------------------------------------------------------------------

# Attributes holding a closed set's value (an enum's code): never written into a sentence.
_CODE_ATTRIBUTES = {"usage", "status", "kind", "action", "role", "proposer", "event", "state"}


def _coded_interpolations(path) -> list[str]:
    """The flash() and error_page() sentences of PATH that interpolate a code attribute."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        name = getattr(getattr(node, "func", None), "id", None)
        if not isinstance(node, ast.Call) or name not in ("flash", "error_page"):
            continue
        for sentence in (a for a in node.args if isinstance(a, ast.JoinedStr)):
            for value in (v for v in sentence.values if isinstance(v, ast.FormattedValue)):
                if isinstance(value.value, ast.Attribute) and value.value.attr in _CODE_ATTRIBUTES:
                    found.append(f"{path.name}:{node.lineno} {ast.unparse(value.value)}")
    return found


def test_no_staff_or_sign_in_message_puts_a_code_in_a_sentence() -> None:
    from pathlib import Path

    web = Path(__file__).resolve().parent.parent / "portal" / "web"
    paths = [*web.glob("staff/*.py"), *web.glob("auth/*.py")]
    assert len(paths) > 10
    assert [f for path in paths for f in _coded_interpolations(path)] == []


def test_no_email_writes_a_usage_without_its_words() -> None:
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "templates" / "emails"
    bare = re.compile(r"\{\{[^}|]*\.usages?\s*\}\}|usage=[\w.]*\.usage\s*[,)]")
    found = [
        f"{path.name}: {match.group(0)}"
        for path in sorted(folder.glob("*.*"))
        for match in bare.finditer(path.read_text(encoding="utf-8"))
        if "expiry_digest" not in path.name  # usages in force: 'signing', 'encryption'
    ]
    assert found == []


def test_no_page_writes_a_usage_code_where_people_read_it() -> None:
    """Staff and partner pages say 'signing and encryption', never the stored code 'both'."""
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "templates"
    bare = re.compile(r"\{\{[^}|]*\.usage\s*\}\}")
    found = [
        f"{path.relative_to(folder)}: {match.group(0)}"
        for path in sorted(folder.rglob("*.html"))
        if "emails" not in path.parts
        for match in bare.finditer(path.read_text(encoding="utf-8"))
    ]
    assert found == []
