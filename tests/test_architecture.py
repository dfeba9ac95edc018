"""Rules of the house that no single behaviour test would notice being broken."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICES = Path(__file__).resolve().parent.parent / "portal" / "services"
# Ending a transaction is the caller's decision (a request, a command, portal.jobs).
TRANSACTION_ENDERS = frozenset({"commit", "rollback"})


def transaction_calls(source: str) -> list[tuple[int, str]]:
    """(line, code) of every commit(...) or rollback(...) call in SOURCE.

    A call on a module imported from portal.services (schedule.rollback, say) is a
    service, not a transaction, and does not count.
    """
    tree = ast.parse(source)
    service_modules = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("portal.services")
        for alias in node.names
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        if isinstance(function, ast.Attribute) and function.attr in TRANSACTION_ENDERS:
            receiver = function.value
            if isinstance(receiver, ast.Name) and receiver.id in service_modules:
                continue
            found.append((node.lineno, ast.unparse(node)))
        elif isinstance(function, ast.Name) and function.id in TRANSACTION_ENDERS:
            found.append((node.lineno, ast.unparse(node)))
    return sorted(found)


def test_services_never_commit() -> None:
    offenders = [
        f"{path.relative_to(SERVICES.parent.parent)}:{line}: {code}"
        for path in sorted(SERVICES.rglob("*.py"))
        for line, code in transaction_calls(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "services flush; their caller commits or rolls back"


def test_the_commit_rule_sees_what_it_should() -> None:
    source = (
        "from portal.services import schedule\n"
        "session.commit()\n"
        "db.session.rollback()\n"
        "rollback()\n"
        "schedule.rollback(session, actor)\n"
        "session.begin_nested()\n"
        "def rollback(): pass\n"
    )
    assert [line for line, _ in transaction_calls(source)] == [2, 3, 4]


MAX_FUNCTION_LINES = 50


def test_no_service_function_is_longer_than_a_screen() -> None:
    too_long = [
        f"{path.relative_to(SERVICES.parent.parent)}:{node.lineno} {node.name} ({length} lines)"
        for path in sorted(SERVICES.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (length := (node.end_lineno or node.lineno) - node.lineno + 1) > MAX_FUNCTION_LINES
    ]
    assert too_long == [], "split these into well-named steps"


def test_email_wording_lives_in_templates() -> None:
    written_here = [
        f"{path.relative_to(SERVICES.parent.parent)}:{keyword.value.lineno} {keyword.arg}"
        for path in sorted(SERVICES.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute | ast.Name)
        and getattr(node.func, "attr", getattr(node.func, "id", None)) == "queue_email"
        for keyword in node.keywords
        if keyword.arg in ("subject", "body")
        and isinstance(keyword.value, ast.Constant | ast.JoinedStr | ast.BinOp | ast.Tuple)
    ]
    assert written_here == [], "render the email from templates/emails/ (portal.services.emails)"
